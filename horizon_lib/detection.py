"""Monte-Carlo detection: the principled sample size N(ℓ) of chapter concentration, measured,
not assumed.

A lag with mean signal m(ℓ) is detected at sample size N when the empirical mean of N
matched-statistic draws ψ_i(ℓ) = m(ℓ) + noise lands within |m(ℓ)| of the truth with probability
at least 1 − δ:

    P( |ψ̄_N(ℓ) − m(ℓ)| < |m(ℓ)| ) ≥ 1 − δ.

Here the probability is estimated from replicates of actual draws: ``deviations`` holds
|ψ̄_N − m| per replicate and N, e.g. from :func:`horizon_lib.sample_mean_deviations` (running
means of SαS streams). Since ψ̄_N − m does not depend on m, one set of streams serves every lag
(common random numbers: the lags' estimates are correlated, each one is exact in law).

With the ⌈(1 − δ) R⌉-th smallest of R deviations, q̂_N, the rule reads |m(ℓ)| > q̂_N, which is
how :func:`monte_carlo_sample_size` evaluates it. For SαS noise the exact answer is
N(ℓ) = (ε_δ σ / |m|)^{κ_α} with ε_δ the (1 − δ) quantile of a unit |S|: a check on the SNR rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .complexity_fit import sample_complexity_fit
from .horizon import GridSampleSize, _check_increasing, _check_positive, _check_sample_sizes

__all__ = [
    "detection_probability",
    "monte_carlo_sample_size",
    "SlopeBootstrap",
    "bootstrap_sample_complexity_slope",
]


def _check_inputs(deviations: torch.Tensor, signal, n_grid=None):
    if not torch.is_tensor(deviations) or deviations.dim() < 2:
        raise ValueError("deviations must be a tensor (..., replicate, n)")
    if deviations.numel() == 0:
        raise ValueError("deviations must not be empty")
    if bool(torch.isnan(deviations).any()) or bool((deviations < 0).any()):
        raise ValueError("deviations |ψ̄_N − m| must be ≥ 0 and not NaN")
    s = torch.as_tensor(signal, dtype=deviations.dtype, device=deviations.device).reshape(-1)
    if s.numel() == 0:
        raise ValueError("signal must not be empty")
    _check_positive(s, "signal |m(ℓ)|")
    grid = None
    if n_grid is not None:
        grid = torch.as_tensor(n_grid, dtype=deviations.dtype, device=deviations.device)
        if grid.numel() == 0:
            raise ValueError("n_grid must not be empty")
        _check_increasing(grid, "n_grid")
        _check_sample_sizes(grid, "every N of n_grid")
        if grid.numel() != deviations.shape[-1]:
            raise ValueError(f"n_grid has {grid.numel()} sizes but deviations has "
                             f"{deviations.shape[-1]} columns")
    return s, grid


def _order_index(replicates: int, delta: float) -> int:
    """k = ⌈(1 − δ) R⌉, robust to (1 − δ) R landing a rounding error above an integer."""
    if not 0.0 < float(delta) < 1.0:
        raise ValueError(f"delta δ must lie in (0, 1); got {delta}")
    return min(replicates, max(1, math.ceil((1.0 - float(delta)) * replicates - 1e-9)))


def detection_probability(deviations: torch.Tensor, signal) -> torch.Tensor:
    """Monte-Carlo P̂(|ψ̄_N − m| < |m(ℓ)|): the fraction of replicates that detect each lag.

    Args:
        deviations: |ψ̄_N − m| per replicate, shape (..., replicate, n).
        signal: |m(ℓ)| > 0 per lag, shape (lag,).

    Returns:
        Tensor (..., lag, n) of detection probabilities in [0, 1].

    Raises:
        ValueError: deviations not (..., replicate, n), negative or NaN; signal ≤ 0 or empty.

    >>> detection_probability(torch.tensor([[0.1], [0.3]]), [0.2, 0.5]).squeeze(-1).tolist()
    [0.5, 1.0]
    """
    s, _ = _check_inputs(deviations, signal)
    hits = deviations.unsqueeze(-3) < s.reshape(-1, 1, 1)  # (..., lag, replicate, n)
    return hits.to(deviations.dtype).mean(-2)


def monte_carlo_sample_size(deviations: torch.Tensor, signal, n_grid, *,
                            delta: float) -> GridSampleSize:
    """N̂(ℓ): the first N of the grid with P̂(|ψ̄_N − m| < |m(ℓ)|) ≥ 1 − δ.

    Evaluated through the order statistic q̂_N (the ⌈(1 − δ)R⌉-th smallest deviation at N):
    P̂ ≥ 1 − δ exactly when q̂_N < |m(ℓ)|.

    Args:
        deviations: |ψ̄_N − m|, shape (..., replicate, n), columns in the order of ``n_grid``.
        signal: |m(ℓ)| > 0, shape (lag,).
        n_grid: the strictly increasing N ≥ 1 of the columns, shape (n,).
        delta: miss probability δ ∈ (0, 1).

    Returns:
        :class:`horizon_lib.horizon.GridSampleSize` with tensors (..., lag); +inf and
        ``found = False`` where no N of the grid reaches 1 − δ.

    Raises:
        ValueError: bad shapes, an empty, non-increasing or sub-1 grid, δ ∉ (0, 1), signal ≤ 0.
    """
    s, grid = _check_inputs(deviations, signal, n_grid)
    k = _order_index(deviations.shape[-2], delta)
    return _sample_size(deviations.transpose(-1, -2).contiguous(), s, grid, k)


def _sample_size(dev_t: torch.Tensor, s: torch.Tensor, grid: torch.Tensor,
                 k: int) -> GridSampleSize:
    """The rule on checked input; ``dev_t`` is (..., n, replicate), contiguous for kthvalue."""
    q = torch.kthvalue(dev_t, k, dim=-1).values  # (..., n)
    detect = q.unsqueeze(-2) < s.reshape(-1, 1)  # (..., lag, n)
    found = detect.any(-1)
    first = torch.argmax(detect.to(torch.uint8), dim=-1)
    values = grid[first]
    return GridSampleSize(torch.where(found, values, torch.full_like(values, math.inf)), found)


@dataclass(frozen=True)
class SlopeBootstrap:
    """Slope of log N̂(ℓ) on −log f(ℓ) (theory/window: κ_α) with a bootstrap over replicates.

    Attributes: ``slope`` (fit on all replicates), ``se`` (bootstrap standard deviation),
    ``ci_low``/``ci_high`` (percentile interval), ``n_points`` (lags used in the main fit),
    ``samples`` (the bootstrap slopes, a tensor (kept,): resamples with fewer than 3 interior
    lags have no slope and are left out, so kept ≤ n_boot).
    """

    slope: float
    se: float
    ci_low: float
    ci_high: float
    n_points: int
    samples: torch.Tensor


def _interior_slope(n_req: GridSampleSize, f: torch.Tensor, grid: torch.Tensor) -> tuple:
    """Slope on the lags detected strictly inside the grid (not "none", not at the first N)."""
    keep = n_req.found & (n_req.n_required > grid[0])
    if int(keep.sum()) < 3:
        return math.nan, int(keep.sum())
    fit = sample_complexity_fit(f[keep], n_req.n_required[keep])
    return fit.slope, fit.n_points


def bootstrap_sample_complexity_slope(
    deviations: torch.Tensor,
    signal,
    f,
    n_grid,
    *,
    delta: float,
    n_boot: int = 200,
    level: float = 0.95,
    generator: torch.Generator | None = None,
) -> SlopeBootstrap:
    """Fit log N̂(ℓ) = a + b (−log f(ℓ)) on Monte-Carlo N̂ and bootstrap b over replicates.

    Lags whose N̂ lies at the first grid point (left-censored) or beyond the grid are left out
    of each fit. Resampling whole replicates keeps the correlation between lags and sizes.

    Args:
        deviations: |ψ̄_N − m|, shape (replicate, n).
        signal: |m(ℓ)| > 0 per lag, shape (lag,); f: f(ℓ) > 0 per lag, shape (lag,)
            (the fit uses f, so any m ∝ f gives the same slope).
        n_grid: the N of the columns, shape (n,).
        delta: miss probability δ ∈ (0, 1).
        n_boot: bootstrap resamples (≥ 2); level: interval level in (0, 1).
        generator: source of the resampling indices (keyword-only).

    Returns:
        :class:`SlopeBootstrap`.

    Raises:
        ValueError: deviations not 2-D, fewer than 3 usable lags, bad δ, level, n_boot, shapes.
    """
    if not torch.is_tensor(deviations) or deviations.dim() != 2:
        raise ValueError("deviations must be a tensor (replicate, n)")
    if int(n_boot) < 2:
        raise ValueError(f"n_boot must be ≥ 2; got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1); got {level}")
    s, grid = _check_inputs(deviations, signal, n_grid)
    fv = torch.as_tensor(f, dtype=deviations.dtype, device=deviations.device).reshape(-1)
    if fv.shape != s.shape:
        raise ValueError(f"f and signal must have one value per lag; got {fv.numel()} and "
                         f"{s.numel()}")
    k = _order_index(deviations.shape[0], delta)
    dev_t = deviations.t().contiguous()  # (n, replicate)
    slope, used = _interior_slope(_sample_size(dev_t, s, grid, k), fv, grid)
    if math.isnan(slope):
        raise ValueError(f"only {used} lags are detected strictly inside the N grid; need ≥ 3 "
                         "(widen n_grid or change the signal)")
    r = deviations.shape[0]
    chunk = max(1, min(int(n_boot), (1 << 24) // max(1, dev_t.numel())))
    boots = []
    for start in range(0, int(n_boot), chunk):
        b = min(chunk, int(n_boot) - start)
        idx = torch.randint(r, (b, r), generator=generator, device=deviations.device)
        resampled = dev_t[:, idx].transpose(0, 1).contiguous()  # (boot, n, replicate)
        n_b = _sample_size(resampled, s, grid, k)  # tensors (boot, lag)
        for i in range(b):
            one = GridSampleSize(n_b.n_required[i], n_b.found[i])
            boots.append(_interior_slope(one, fv, grid)[0])
    samples = torch.tensor(boots, dtype=torch.float64)
    samples = samples[torch.isfinite(samples)]
    if samples.numel() < 2:
        raise ValueError(f"only {samples.numel()} of {int(n_boot)} bootstrap resamples kept ≥ 3 "
                         "interior lags: the slope has no bootstrap interval")
    lo, hi = torch.quantile(samples, torch.tensor([0.5 - level / 2, 0.5 + level / 2],
                                                  dtype=torch.float64)).tolist()
    return SlopeBootstrap(float(slope), float(samples.std()), lo, hi, used, samples)
