"""Diagnostics of one trained model: f̂(ℓ), ψ(ℓ), α̂(ℓ), σ̂(ℓ), N̂(ℓ) and Ĥ_N
(theory/window, the experiment).

One function, :func:`diagnose_model`, on the caller's device:

1. forward pass on the diagnostic split, in chunks: ŷ, the transported state s, the retention
   d and the rest r of diag(J_t) (and e_t for the LSTM), δ_t = (ŷ_t − y_t) W_out;
2. the optimizer base rates Λ^{(q)} from the optimizer state kept with the weights, by
   :func:`~horizon_lib.base_rates.base_rates_from_moments`;
3. ψ by forward-mode JVP along K random unit directions (the same K for every chunk) and its
   per-sequence means for every lag; the per-unit envelope mean |μ^{(q)}(ℓ)| (f̂ = Σ_q) by the
   library's :func:`~horizon_lib.envelope.estimate_envelope` on the same d, r, e and Λ, chunks
   pooled with :meth:`~horizon_lib.envelope.Envelope.combine`;
4. each (direction, lag) oriented once by the sign of its full-sample mean, the K·B samples of
   each lag pooled: m̄(ℓ), and α̂(ℓ), σ̂(ℓ) by ECF regression batched over lags (also for the
   first 1, 2, 4, … directions, to see α̂ converge in K);
5. N̂(ℓ) on the N grid by the SNR rule, Ĥ_N both as the largest detectable lag (the release's
   definition) and as the contiguous window;
6. a Monte-Carlo check of detection: resampling the pooled samples, the fraction of empirical
   means X̄_N with |X̄_N − m̄| < |m̄| at every N of the grid, and the first N where it reaches
   1 − δ.

The model protocol: ``model(x)`` returns ŷ (batch, time, out) and ``model(x, return_terms=True)``
a dict with ``yhat``, ``state`` (batch, time, hidden), ``d``, ``r``, optionally ``e`` (LSTM:
∂h_t/∂c_t), and ``readout`` W_out (out, hidden). A model whose ``returns_state`` attribute is
true also answers ``model(x, return_state=True)`` with the state alone, which the JVP then
differentiates instead of the whole dict.
"""

from __future__ import annotations

import math

import torch
from torch.func import functional_call

from .base_rates import base_rates_from_moments
from .envelope import Envelope, estimate_envelope
from .matched import matched_statistic, orient_per_lag, random_unit_directions, state_jvp
from .tail_index import ecf_tail_index_or_nan
from .training import TrainConfig

__all__ = ["diagnose_model", "monte_carlo_detection", "estimated_sample_size",
           "envelope_sample_size", "MC_MAX_FRACTION"]

#: Revision of what :func:`diagnose_model` returns, part of the cache key of its results: bump it
#: when a diagnostic's definition or its rounding changes (2: f̂ is ``estimate_envelope``'s, Λ
#: from base_rates; 3: ψ by running products and blocked contraction, JVP of the state alone;
#: 4: the zero-spread guard of the tail fits uses the estimator's own quartiles; 5: the
#: Monte-Carlo check resamples N ≤ n/10 only, NaN beyond; f̂ exact for retentions < D_FLOOR).
REVISION = 5
ALPHA_MIN = 1.0 + 1e-3  # α̂ is floored here for κ_α (α ≤ 1: empirical means never concentrate)
#: The Monte-Carlo check resamples at most this fraction of a lag's samples (m-out-of-n bootstrap).
MC_MAX_FRACTION = 0.1


def _base_rate(params: dict, opt_state: dict, train: TrainConfig, step: int,
               names: list[str] | None, hidden: int) -> torch.Tensor:
    """Λ^{(q)} (hidden,) float64 from the trainer's raw optimizer state, through
    :func:`~horizon_lib.base_rates.base_rates_from_moments`; SGD or no state kept: Λ = η."""
    if names is None:
        names = [n for n, p in params.items() if p.shape == (hidden, hidden)]
    if train.optimizer == "sgd" or not opt_state:
        return torch.full((hidden,), float(train.lr), dtype=torch.float64)
    rates = base_rates_from_moments([opt_state[n] for n in names], optimizer=train.optimizer,
                                    lr=train.lr, eps=train.eps, beta2=train.betas[1],
                                    step=max(int(step), 1))
    return rates.row_mean


def monte_carlo_detection(samples: torch.Tensor, n_grid, *, replicates: int,
                          max_fraction: float = MC_MAX_FRACTION,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Fraction of resampled empirical means with |X̄_N − m̄| < |m̄|, for every lag and N.

    An m-out-of-n bootstrap: N indices are drawn with replacement from the n samples of a lag,
    only for N ≤ ``max_fraction`` · n. Resampling N comparable to n (or beyond it) draws from
    the empirical distribution, whose variance is finite, so its means concentrate at the
    Gaussian rate N^{−1/2} instead of N^{−1/κ_α} and detection is overstated for α < 2; the
    m-out-of-n bootstrap is consistent only while N/n → 0 (Athreya 1987; Arcones and Giné 1989).

    Args:
        samples: (lag, sample) oriented per-sequence means; m̄ is their mean per lag.
        n_grid: sample sizes N (strictly increasing).
        replicates: R ≥ 1 resampling replicates.
        max_fraction: largest N / n resampled, in (0, 1].

    Returns:
        Tensor (lag, n) of detection probabilities; NaN where N > max_fraction · n (not measured).

    Raises:
        ValueError: replicates < 1 or max_fraction outside (0, 1].
    """
    if int(replicates) < 1:
        raise ValueError(f"replicates must be ≥ 1; got {replicates}")
    if not 0.0 < max_fraction <= 1.0:
        raise ValueError(f"max_fraction must lie in (0, 1]; got {max_fraction}")
    n = torch.as_tensor(list(n_grid), device=samples.device)
    out = torch.full((samples.shape[0], len(n)), math.nan, dtype=samples.dtype,
                     device=samples.device)
    measured = n <= max_fraction * samples.shape[1]
    if not bool(measured.any()):
        return out
    n = n[measured]
    m = samples.mean(1)
    for i in range(samples.shape[0]):
        idx = torch.randint(samples.shape[1], (replicates, int(n[-1])), generator=generator)
        means = samples[i][idx.to(samples.device)].cumsum(1)[:, n - 1] / n
        out[i, measured] = ((means - m[i]).abs() < m[i].abs()).to(samples.dtype).mean(0)
    return out


class _Clock:
    """``with clock("stage"):`` adds the stage's wall time to a dict (no-op without one)."""

    def __init__(self, store: dict | None):
        self.store = store

    def __call__(self, stage: str):
        import contextlib
        import time

        @contextlib.contextmanager
        def timed():
            t0 = time.perf_counter()
            yield
            if self.store is not None:
                self.store[stage] = self.store.get(stage, 0.0) + time.perf_counter() - t0
        return timed()


def estimated_sample_size(mean: torch.Tensor, scale: torch.Tensor, alpha: torch.Tensor, n_grid,
                          eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """N̂ on the grid from estimated m̄, σ̂, α̂ by the SNR rule (theory/window).

    α̂ is floored at :data:`ALPHA_MIN` for κ_α; an entry whose mean, scale or index cannot be
    estimated (NaN, σ̂ ≤ 0: a transport that underflowed, a diverged model) is never detected.

    Returns:
        (n_required, valid): the first N of ``n_grid`` with SNR > ε (inf where none, or where
        not valid), and where all three estimates exist; both of the shape of ``mean``.
    """
    from .horizon import first_detectable_n

    alpha = alpha.clamp(ALPHA_MIN, 2.0)
    valid = (torch.isfinite(scale) & (scale > 0) & torch.isfinite(mean)
             & torch.isfinite(alpha))
    one = torch.ones_like(mean)
    found = first_detectable_n(torch.where(valid, mean, 0 * one),
                               torch.where(valid, scale.to(mean), one),
                               torch.where(valid, alpha.to(mean), 2 * one),
                               list(n_grid), eps)
    return torch.where(valid, found.n_required, torch.full_like(mean, math.inf)), valid


def envelope_sample_size(mean: torch.Tensor, f: torch.Tensor, scale: torch.Tensor,
                         alpha: torch.Tensor, n_grid, eps: float
                         ) -> tuple[torch.Tensor, float]:
    """N̂(ℓ) that the envelope predicts: :func:`estimated_sample_size` with the measured mean
    m̄(ℓ) replaced by c f̂(ℓ), σ̂ and α̂ as measured (theory/window: m(ℓ) ∝ f(ℓ)).

    The one constant c matches the two in the median over the lags, c = exp median_ℓ
    log(|m̄(ℓ)| / f̂(ℓ)) (lags where both are positive and finite); where m̄ follows f̂, the
    prediction is the measured N̂, and where it departs, so does the prediction.

    Args:
        mean, f, scale, alpha: m̄(ℓ), f̂(ℓ), σ̂(ℓ), α̂(ℓ) of one model, each (lag,).
        n_grid, eps: as in :func:`estimated_sample_size`.

    Returns:
        (n_required (lag,), c); c is NaN, and nothing is detected, when no lag has both.

    Raises:
        ValueError: mean, f, scale, alpha of different shapes.

    >>> f = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    >>> need, c = envelope_sample_size(3 * f, f, torch.ones(3), torch.full((3,), 2.0),
    ...                                [1, 10, 100], 2.0)
    >>> need.tolist(), round(c, 12)
    ([1.0, 10.0, 10.0], 3.0)
    """
    if not mean.shape == f.shape == scale.shape == alpha.shape:
        raise ValueError(f"mean, f, scale and alpha must share one shape (lag,); got "
                         f"{[tuple(t.shape) for t in (mean, f, scale, alpha)]}")
    m, fv = mean.double().abs(), f.double()
    ok = torch.isfinite(m) & (m > 0) & torch.isfinite(fv) & (fv > 0)
    c = float(torch.exp(torch.log(m[ok] / fv[ok]).median())) if bool(ok.any()) else math.nan
    need, _ = estimated_sample_size(c * fv, scale.double(), alpha, n_grid, eps)
    return need, c


def _first_n(ok: torch.Tensor, n_grid) -> torch.Tensor:
    grid = torch.as_tensor(list(n_grid), dtype=torch.float64)
    first = torch.argmax(ok.to(torch.uint8), dim=-1)
    return torch.where(ok.any(-1), grid[first], torch.full_like(grid[first], math.inf))


def diagnose_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg, *,
                   train: TrainConfig, opt_state: dict | None = None, step: int = 1,
                   delta: float = 0.1, timings: dict | None = None) -> dict:
    """Every diagnostic of one trained model (module docstring), as a dict of CPU tensors.

    Args:
        model: a trained model following the protocol above, on the device of ``x``.
        x, y: the diagnostic split (batch, time, input) and (batch, time, out).
        cfg: :class:`~horizon_lib.experiment_config.DiagnosticsConfig` (lags, n_grid, eps, K, …).
        train: the model's training configuration (optimizer and η for Λ).
        opt_state: parameter name → second-moment tensor kept with the weights (AdamW, RMSprop);
            Λ^{(q)} is read from it by :func:`~horizon_lib.base_rates.base_rates_from_moments`
            (without it, and for SGD, Λ = η).
        step: optimizer steps taken (AdamW bias correction).
        delta: 1 − δ is the detection probability the Monte-Carlo check asks for.
        timings: a dict that receives the wall time (s) of each stage: ``forward``, ``jvp``,
            ``transport`` (ψ), ``envelope`` (f̂), ``tail_index``, ``window``, ``monte_carlo``.

    Returns:
        dict with ``lags`` (lag,), ``n_grid`` (n,), ``f`` (lag,) = ``estimate_envelope(...).f``
        on the diagnostic split, ``unit_envelope`` (lag, hidden) its per-unit parts (float64),
        ``rate`` (hidden,), ``mean``, ``alpha``, ``scale``, ``reliable``, ``n_required`` (lag,),
        ``h_largest``, ``h_contiguous`` (n,), ``mc_detection`` (lag, n) (NaN where
        N > MC_MAX_FRACTION · K·batch), ``n_mc`` (lag,) (NaN: not reached within that range),
        ``alpha_by_k`` (k, lag) with ``k_values``, ``samples`` (lag, K·batch),
        ``alpha_instantaneous`` (lag,): α̂ of ψ_t at the last step instead of per-sequence means.

    Raises:
        ValueError: a lag outside [1, T); RuntimeError: an estimator module is missing.
    """
    from .horizon import contiguous_window, largest_detectable_lag
    clock = _Clock(timings)
    t_len = x.shape[1]
    if any(not 1 <= ell < t_len for ell in cfg.lags):
        raise ValueError(f"diagnostic lags must lie in [1, T) = [1, {t_len}); got {list(cfg.lags)}")
    model.eval()
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b for n, b in model.named_buffers()}
    hidden = int(model(x[:1], return_terms=True)["state"].shape[-1])
    names = (model.recurrent_parameter_names() if hasattr(model, "recurrent_parameter_names")
             else None)
    rate = _base_rate(params, opt_state or {}, train, step, names, hidden).to(x.device)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    w = random_unit_directions(params, cfg.directions, generator=gen)

    def state_fn(p, xb):
        if getattr(model, "returns_state", False):    # the state alone, no diagnostic terms
            return functional_call(model, (p, buffers), (xb,), {"return_state": True})
        return functional_call(model, (p, buffers), (xb,), {"return_terms": True})["state"]

    psi, inst, envelopes = [], [], []
    for lo in range(0, x.shape[0], cfg.batch):
        xb, yb = x[lo:lo + cfg.batch], y[lo:lo + cfg.batch]
        with clock("forward"), torch.no_grad():
            terms = model(xb, return_terms=True)
            delta_h = (terms["yhat"] - yb) @ terms["readout"]
            delta_s = delta_h * terms["e"] if terms.get("e") is not None else delta_h
        with clock("jvp"):
            v = state_jvp(state_fn, params, w, xb)
        with clock("transport"):
            p, p_inst = matched_statistic(terms["d"], terms["r"], delta_s, v, cfg.lags,
                                          rate=rate, instantaneous=True)
        with clock("envelope"):
            envelopes.append(estimate_envelope(terms["d"], terms["r"], cfg.lags, base_rate=rate,
                                               e=terms.get("e")))
        psi.append(p)
        inst.append(p_inst)
    psi = torch.cat(psi, dim=2)                                  # (lag, K, batch)
    unit_env = Envelope.combine(envelopes).per_unit.to(torch.float64)
    inst = torch.cat(inst, dim=2)
    samples = orient_per_lag(psi)                                # (lag, K·batch)
    inst_samples = (inst * torch.sign(psi.mean(-1, keepdim=True))).flatten(1)
    mean = samples.mean(1)
    with clock("tail_index"):
        fit = ecf_tail_index_or_nan(samples)
        alpha_hat, scale_hat = fit.alpha, fit.scale
        alpha_inst = ecf_tail_index_or_nan(inst_samples).alpha
        n_seq = psi.shape[2]
        k_values = [k for k in (1, 2, 4, 8, 16, 32)
                    if k < cfg.directions and k * n_seq >= 32] + [cfg.directions]
        alpha_by_k = torch.stack([ecf_tail_index_or_nan(orient_per_lag(psi[:, :k])).alpha
                                  for k in k_values])
    with clock("window"):
        n_required, valid = estimated_sample_size(mean, scale_hat, alpha_hat, cfg.n_grid,
                                                  cfg.eps)
    lags = torch.tensor(cfg.lags, dtype=torch.float64)
    n_grid = torch.tensor(cfg.n_grid, dtype=torch.float64)
    out = {
        "lags": lags, "n_grid": n_grid, "f": unit_env.sum(1), "unit_envelope": unit_env,
        "rate": rate, "mean": mean, "alpha": alpha_hat, "scale": scale_hat,
        "alpha_instantaneous": alpha_inst,
        "reliable": fit.reliable & valid, "n_required": n_required,
        "h_largest": largest_detectable_lag(lags, n_required.cpu(), n_grid),
        "h_contiguous": contiguous_window(lags, n_required.cpu(), n_grid),
        "alpha_by_k": alpha_by_k, "k_values": torch.tensor(k_values),
        "samples": samples.to(torch.float32),
    }
    if cfg.mc_replicates > 0:
        with clock("monte_carlo"):
            det = monte_carlo_detection(samples, cfg.n_grid, replicates=cfg.mc_replicates,
                                        generator=gen)
        out["mc_detection"] = det
        # the first measured N with P ≥ 1 − δ; NaN (not measured) when none is and some N lay
        # beyond the bootstrap's reach, inf when every N was measured and none detects
        first = _first_n(det >= 1 - delta, cfg.n_grid)
        unmeasured = torch.isnan(det).any(-1)
        out["n_mc"] = torch.where(torch.isinf(first) & unmeasured,
                                  torch.full_like(first, math.nan), first)
    return {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in out.items()}
