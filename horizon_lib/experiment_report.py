"""Summaries of the experiment's results that the five chapters draw and check (THEORY.md §6).

Pure functions from :class:`~horizon_lib.experiment.ExperimentResults` (or its diagnostics
dicts) to small tensors: Ĥ_N over seeds, per-unit time scales τ_q, learning curves.
"""

from __future__ import annotations

import math

import torch

__all__ = ["stack_over_seeds", "unit_timescales", "fit_timescale", "constgate_timescale",
           "load_or_run"]


def stack_over_seeds(results, cell: str, optimizer: str, key: str) -> torch.Tensor:
    """Diagnostics ``key`` of every seed of (cell, optimizer), stacked: (seed, ...)."""
    seeds = results.config.seeds
    return torch.stack([results.diagnostics[(cell, optimizer, s)][key] for s in seeds])


def fit_timescale(lags: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
    """τ from the least-squares line log|μ(ℓ)| = a + b ℓ, τ = −1/b (THEORY.md §2).

    Args:
        lags: (lag,) lags ℓ.
        env: (..., lag) positive envelope values |μ^{(q)}(ℓ)|.

    Returns:
        Tensor (...): τ; +inf where the fitted slope is ≥ 0 (no decay over the grid).
    """
    x = lags.to(torch.float64)
    y = torch.log(env.to(torch.float64).clamp_min(1e-300))
    xc = x - x.mean()
    b = ((y - y.mean(-1, keepdim=True)) * xc).sum(-1) / (xc * xc).sum()
    return torch.where(b < 0, -1.0 / b, torch.full_like(b, math.inf))


def unit_timescales(diag: dict) -> torch.Tensor:
    """τ_q of every hidden unit of one model, fitted on its per-unit envelope: (hidden,)."""
    return fit_timescale(diag["lags"], diag["unit_envelope"].T)


def constgate_timescale(s: float) -> float:
    """ConstGate's exact time scale τ = −1/log(1 − s) (19.5 at s = 0.05)."""
    if not 0 < s < 1:
        raise ValueError(f"gate s must lie in (0, 1); got {s}")
    return -1.0 / math.log1p(-s)


def load_or_run(profile_name: str, *, device="cpu", progress: bool = True, **changes):
    """The experiment of a profile from ``_build/results`` (computed and cached when absent)."""
    from .experiment import default_results_dir, profile, run_experiment

    cfg = profile(profile_name)
    if changes:
        cfg = cfg.replace(**changes)
    return run_experiment(cfg, results_dir=default_results_dir(), device=device,
                          progress=progress)
