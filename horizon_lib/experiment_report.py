"""Summaries of the experiment's results that the five chapters draw and check (the experiment).

Pure functions from :class:`~horizon_lib.experiment.ExperimentResults` (or its diagnostics
dicts) to small tensors: Ĥ_N over seeds, per-unit time scales τ_q, learning curves.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

__all__ = ["stack_over_seeds", "unit_timescales", "fit_timescale", "constgate_timescale",
           "rank_correlation", "load_or_run", "profile_facts", "glue_profile_facts"]


def stack_over_seeds(results, cell: str, optimizer: str, key: str) -> torch.Tensor:
    """Diagnostics ``key`` of every seed of (cell, optimizer), stacked: (seed, ...)."""
    seeds = results.config.seeds
    return torch.stack([results.diagnostics[(cell, optimizer, s)][key] for s in seeds])


def fit_timescale(lags: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
    """τ of a whole envelope f̂(ℓ) (lag,): :func:`horizon_lib.envelope.fit_time_scales` on one
    column."""
    from .envelope import fit_time_scales

    return fit_time_scales(lags, env.reshape(-1, 1)).tau[0]


def unit_timescales(diag: dict) -> torch.Tensor:
    """τ_q of every hidden unit of one model, fitted on its per-unit envelope: (hidden,)."""
    from .envelope import fit_time_scales

    return fit_time_scales(diag["lags"], diag["unit_envelope"]).tau


def constgate_timescale(s: float) -> float:
    """ConstGate's exact time scale τ = −1/log(1 − s) (19.5 at s = 0.05)."""
    from .envelope import constgate_time_scale

    return constgate_time_scale(s)


def rank_correlation(x, y) -> float:
    """Spearman's ρ of paired values (``scipy.stats.spearmanr``), NaN where it is undefined.

    Undefined: fewer than 3 pairs, or either side constant (SGD gives every unit the same base
    rate Λ; at a small profile every cell can reach the same Ĥ_N). scipy would warn and return
    NaN for a constant side; this returns NaN without the warning. ρ is rounded to 12 decimals:
    it is a ratio of integers, and a claim's bound (0.8: two adjacent swaps among five) must not
    fail on scipy's last bit (it gives 0.7999999999999999 there).

    >>> rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    0.8
    >>> rank_correlation([1, 2, 3], [5, 5, 5])
    nan
    """
    import numpy as np
    from scipy.stats import spearmanr

    xs, ys = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (x, y))
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must pair up; got {xs.size} and {ys.size} values")
    if xs.size < 3 or np.all(xs == xs[0]) or np.all(ys == ys[0]):
        return float("nan")
    return round(float(spearmanr(xs, ys).statistic), 12)


def load_or_run(profile_name: str, *, device="cpu", progress: bool = True,
                changes: Mapping[str, Any] | None = None):
    """The experiment of a profile from the build's results folder
    (:func:`~horizon_lib.experiment.default_results_dir`; computed and cached when absent).

    ``changes`` (:meth:`~horizon_lib.experiment_config.ExperimentConfig.changed`, e.g.
    ``{"hidden": 64, "train.epochs": 40}``) alter the profile's configuration; the changed
    configuration has its own cache entries, and the line printed says what ran.
    """
    from .experiment import default_results_dir, run_experiment
    from .experiment_config import profile

    cfg = profile(profile_name)
    if changes:
        cfg = cfg.changed(changes)
        listed = ", ".join(f"{k} = {v!r}" for k, v in changes.items())
        print(f"experiment: the {profile_name} profile with {listed}")
    return run_experiment(cfg, results_dir=default_results_dir(), device=device,
                          progress=progress)


def profile_facts(profile_name: str) -> dict:
    """The sizes of a profile that the chapters quote, read from its configuration.

    Keys: ``T``, ``D``, ``H`` (hidden units), ``seeds`` (count), ``epochs``, ``task_lags`` (text),
    ``lags`` (count of diagnostic lags), ``lag_max``, ``n_min``, ``n_max`` (budget grid),
    ``n_diag`` (diagnostic sequences), ``directions`` (K), ``samples_per_lag`` (K · n_diag),
    ``time_scales`` (τ_q per cell over all seeds: H · seeds).
    """
    from .experiment_config import profile

    cfg = profile(profile_name)
    return {
        "T": cfg.task.T, "D": cfg.task.D, "H": cfg.hidden, "seeds": len(cfg.seeds),
        "epochs": cfg.train.epochs, "task_lags": ", ".join(str(v) for v in cfg.task.lags),
        "lags": len(cfg.diagnostics.lags), "lag_max": max(cfg.diagnostics.lags),
        "n_min": min(cfg.diagnostics.n_grid), "n_max": max(cfg.diagnostics.n_grid),
        "n_diag": cfg.task.n_diag, "directions": cfg.diagnostics.directions,
        "samples_per_lag": cfg.diagnostics.directions * cfg.task.n_diag,
        "time_scales": cfg.hidden * len(cfg.seeds),
    }


def glue_profile_facts(*profile_names: str) -> dict:
    """Glue :func:`profile_facts` of each profile as ``<profile>_<key>`` (``{glue:text}`book_H```),
    so a chapter quotes the sizes of the profiles without typing them; returns the glued values."""
    from myst_nb import glue

    out = {}
    for name in profile_names:
        for key, value in profile_facts(name).items():
            glue(f"{name}_{key}", value, display=False)
            out[f"{name}_{key}"] = value
    return out
