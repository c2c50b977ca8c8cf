"""Tail index α of symmetric α-stable samples by ECF regression, and the shared checks
(theory/noise).

Both estimators are batched: samples of shape (..., sample) give one estimate per leading index,
so the 128 lags of an experiment are estimated in one call, on the CPU or a GPU.

* **ECF regression** (Koutrouvelis 1980). For SαS(σ) with any location, |φ(u)|² = exp(−2σ^α|u|^α),
  so y(u) = log(−log|φ̂(u)|²) = log(2σ^α) + α log|u| is a line in log|u|. On the grid
  u ∈ [0.05, 3]/ŝ (ŝ = IQR/1.349), keeping 0.01 < |φ̂|² < 0.95, a weighted least-squares fit
  gives α̂ (slope) and σ̂ = (e^{intercept}/2)^{1/α̂}. The weights are the inverse delta-method
  variances of y(u_k) under the SαS law of a first unweighted fit (so the fit leans on the grid
  points the data pin down best, and the weights do not correlate with the errors they weight).
* **McCulloch (1986)**, in :mod:`horizon_lib.tail_index_mcculloch`: α̂ from the quantile ratio
  ν̂ = (q₉₅ − q₀₅)/(q₇₅ − q₂₅) and a shipped table. This module holds what both estimators share:
  the sample checks, McCulloch's sample quantiles (the p-quantile interpolates the sorted sample
  at position np + ½; the ECF's scale ŝ uses them too), the reliability flags and
  :class:`TailIndexFit`.

Reliability flags (theory/noise, as in the paper's code release): at least ``RELIABLE_MIN_SAMPLES``
samples, σ̂ > 0 and finite, enough informative ECF grid points, and α̂ neither ≤ 1.01 nor
≥ 1.99 (pinned at the ends of (1, 2]) while n < ``PINNED_MIN_SAMPLES``. Bootstrap intervals and
the combined rule are in :mod:`horizon_lib.tail_index_bootstrap`.

Not used, and why (see the chapter "Estimating the tail index"): Hill's estimator is biased for
α near 2 (the stable tail is reached only far out), and ``scipy.stats.levy_stable.fit`` is
maximum likelihood through numerical densities: minutes per series of 10⁴.

References: Koutrouvelis (1980), JASA 75, 918–928; McCulloch (1986), Comm. Stat. Simul. Comput.
15, 1109–1136.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "MIN_SAMPLES",
    "RELIABLE_MIN_SAMPLES",
    "PINNED_MIN_SAMPLES",
    "TailIndexFit",
    "check_samples",
    "sample_quantiles",
    "ecf_tail_index",
    "ecf_tail_index_or_nan",
    "hill_tail_index",
]

#: Fewer samples than this raise ``ValueError`` (the 5% quantile needs a neighbour on each side).
MIN_SAMPLES = 20
#: Fewer samples than this give an estimate flagged unreliable (the paper's release uses 500).
RELIABLE_MIN_SAMPLES = 500
#: Below this many samples an α̂ within 0.01 of 1 or 2 is flagged unreliable (pinned).
PINNED_MIN_SAMPLES = 2000
ECF_U_RANGE = (0.05, 3.0)
ECF_POINTS = 16
ECF_KEEP = (0.01, 0.95)          # informative range of |φ̂|²
ECF_KEEP_RELAXED = (1e-4, 0.999)  # used (and flagged) when fewer than 5 points are informative
ALPHA_FLOOR = 0.1                 # α̂ is clipped to [ALPHA_FLOOR, 2]


@dataclass(frozen=True)
class TailIndexFit:
    """Batched tail-index estimate; every field has the leading (batch) shape of the samples.

    Attributes:
        alpha: α̂ ∈ [0.1, 2] (ECF) or [0.5, 2] (McCulloch, the table's range).
        scale: σ̂ > 0 in the units of the samples.
        reliable: bool, False where a reliability condition (module docstring) fails.
    """

    alpha: torch.Tensor
    scale: torch.Tensor
    reliable: torch.Tensor


def check_samples(x: torch.Tensor, *, min_samples: int = MIN_SAMPLES,
                  name: str = "samples") -> torch.Tensor:
    """Validate samples (..., sample) and return them as (batch, sample).

    Raises:
        ValueError: not a floating tensor, no sample axis, fewer than ``min_samples`` samples,
            a NaN or inf, or a series whose interquartile range is zero (constant or mostly
            constant: no scale to estimate, and every estimator would divide by zero).
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (..., sample)")
    if x.dim() == 0 or x.shape[-1] < min_samples:
        got = 0 if x.dim() == 0 else x.shape[-1]
        raise ValueError(f"{name} needs at least {min_samples} samples per series; got {got}")
    flat = x.reshape(-1, x.shape[-1])
    if not bool(torch.isfinite(torch.stack(torch.aminmax(flat.detach()))).all()):
        bad = ~torch.isfinite(flat).all(-1)        # only to name the series in the message
        raise ValueError(f"{name} must be finite (no NaN or inf); series {_first(bad)} is not")
    return flat


def _first(mask: torch.Tensor) -> list[int]:
    return torch.nonzero(mask).flatten()[:5].tolist()


def _positions(n: int, probs) -> tuple[torch.Tensor, torch.Tensor]:
    """0-based lower ranks k and weights t with q_p = (1 − t) x_(k) + t x_(k+1), h = np + ½."""
    h = torch.tensor([n * float(p) + 0.5 for p in probs], dtype=torch.float64)
    k = torch.clamp(torch.floor(h), 1, n - 1)
    return (k - 1).long(), (h - k).clamp(0.0, 1.0)


def _partition_select(x: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Order statistics ``ranks`` of each row of x (batch, n) by ``numpy.partition``.

    numpy releases the GIL while it partitions, so large batches are split over torch's
    intra-op thread count (the partition is the one step of the estimators torch cannot
    parallelise itself).
    """
    workers = min(torch.get_num_threads(), x.shape[0])
    if workers < 2 or x.size < (1 << 17):
        return np.take(np.partition(x, ranks, axis=-1), ranks, axis=-1)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(lambda rows: np.take(np.partition(rows, ranks, axis=-1), ranks, axis=-1),
                         np.array_split(x, workers))
        return np.concatenate(list(parts))


def sample_quantiles(x: torch.Tensor, probs, *, is_sorted: bool = False) -> torch.Tensor:
    """McCulloch's sample quantiles of rows (batch, sample) → (batch, prob).

    The p-quantile interpolates the order statistics at position np + ½. Unsorted rows are
    partially sorted around the needed ranks only (``numpy.partition``, rows split over torch's
    threads; a full sort on a GPU).
    """
    k, t = _positions(x.shape[-1], probs)
    ranks = torch.unique(torch.cat([k, k + 1]))
    if is_sorted:
        vals = x[..., ranks.to(x.device)]
    elif x.device.type == "cpu":
        vals = torch.from_numpy(_partition_select(x.detach().contiguous().numpy(), ranks.numpy()))
    else:
        vals = torch.sort(x, dim=-1).values[..., ranks.to(x.device)]
    pos = {int(r): i for i, r in enumerate(ranks.tolist())}
    lo = vals[..., [pos[int(v)] for v in k]]
    hi = vals[..., [pos[int(v) + 1] for v in k]]
    return lo + t.to(vals.device, vals.dtype) * (hi - lo)


def _check_iqr(iqr: torch.Tensor, name: str = "samples") -> None:
    bad = ~(iqr > 0)
    if bool(bad.any()):
        raise ValueError(f"{name}: series {_first(bad)} have a zero interquartile range "
                         "(constant or mostly constant); their tail index is undefined")


def _pinned(alpha: torch.Tensor, n: int) -> torch.Tensor:
    # at or below 1.01 (an estimate under 1 is no more trustworthy than one at 1) or ≥ 1.99
    near = (alpha <= 1.01) | (alpha >= 1.99)
    return near & (n < PINNED_MIN_SAMPLES)


def _reliable(alpha: torch.Tensor, scale: torch.Tensor, n: int) -> torch.Tensor:
    ok = torch.isfinite(alpha) & torch.isfinite(scale) & (scale > 0)
    return ok & ~_pinned(alpha, n) & (n >= RELIABLE_MIN_SAMPLES)


# --------------------------------------------------------------------------- ECF regression


def _cis(angle: torch.Tensor) -> torch.Tensor:
    """e^{i·angle} from real cosines and sines (vectorised; ``torch.polar`` is 3× slower on CPU)."""
    return torch.complex(torch.cos(angle), torch.sin(angle))


def _ecf_modulus(x: torch.Tensor, u0: torch.Tensor, du: torch.Tensor, k: int, *,
                 block: int = 1 << 17) -> torch.Tensor:
    """|φ̂(u_j)|² on the linear grid u_j = u0 + j·du (j < k) for samples x (batch, n).

    e^{iu_j x} = e^{iu0 x} (e^{i du x})^j: two complex exponentials per sample and k − 1 complex
    products replace 2k sines and cosines (the recurrence's rounding stays below 10⁻⁶ in float32
    for k ≤ 64). Blocks of ``block`` elements keep the working set in cache.
    """
    b, n = x.shape
    if x.device.type != "cpu":
        block = 1 << 24          # a GPU wants few large kernels, not cache-sized blocks
    ns = min(n, block)
    bs = max(1, block // ns)
    ctype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
    sums = torch.zeros(b, k, dtype=ctype, device=x.device)
    for i in range(0, b, bs):
        for j in range(0, n, ns):
            xx = x[i:i + bs, j:j + ns]
            z = _cis(xx * u0[i:i + bs, None])
            r = _cis(xx * du[i:i + bs, None])
            acc = [z.sum(-1)]
            for _ in range(1, k):
                acc.append(z.mul_(r).sum(-1))
            sums[i:i + bs] += torch.stack(acc, -1)
    m = sums / n
    return m.real ** 2 + m.imag ** 2


def ecf_model_modulus(u: torch.Tensor, alpha: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """|φ(u)| = exp(−(σ|u|)^α) of SαS(σ), broadcasting α, σ (batch,) against u (batch, K)."""
    return torch.exp(-(scale[:, None] * u.abs()) ** alpha[:, None])


@dataclass(frozen=True)
class _EcfRegression:
    """The weighted line and what the bootstrap needs to refit it: α̂ = Σ_k coef_k y_k."""

    alpha_raw: torch.Tensor
    intercept: torch.Tensor
    coef: torch.Tensor       # (batch, K), zero off the kept points
    strict_points: torch.Tensor


def _wls(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
    """Batched weighted least squares of y on x (batch, K): slope, intercept, slope = Σ coef·y."""
    sw = w.sum(-1).clamp_min(torch.finfo(w.dtype).tiny)
    xm = (w * x).sum(-1) / sw
    dx = x - xm[:, None]
    coef = w * dx / (w * dx * dx).sum(-1).clamp_min(torch.finfo(w.dtype).tiny)[:, None]
    slope = (coef * y).sum(-1)
    return slope, (w * y).sum(-1) / sw - slope * xm, coef


def _ecf_regression(p: torch.Tensor, u: torch.Tensor, n: int) -> _EcfRegression:
    """Fit y = log(−log P) on log u, twice: unweighted, then with inverse delta-method variances.

    Under SαS, Var(P̂_k) ≈ (4P/n)[(1 + |φ(2u_k)|)/2 − P] with P = |φ(u_k)|² and
    |φ(2u)| = P^{2^{α−1}}; Var(y_k) = Var(P̂_k)/(P log P)². The variances use the first fit's
    line, not the noisy P̂_k, so the weights do not correlate with the errors they weight.
    """
    strict = (p > ECF_KEEP[0]) & (p < ECF_KEEP[1])
    relaxed = (p > ECF_KEEP_RELAXED[0]) & (p < ECF_KEEP_RELAXED[1])
    n_strict = strict.sum(-1)
    keep = torch.where((n_strict >= 5)[:, None], strict, relaxed)
    y = torch.log(-torch.log(p.clamp(1e-30, 1.0 - 1e-7)))
    x = torch.log(u)
    w = keep.to(p.dtype)
    slope, intercept, _ = _wls(x, y, w)
    a0 = slope.clamp(ALPHA_FLOOR, 2.0)
    log_p_fit = -torch.exp(intercept[:, None] + a0[:, None] * x)        # log P on the line
    p_fit = torch.exp(log_p_fit).clamp(1e-30, 1.0 - 1e-7)
    var_p = (4.0 * p_fit / n) * ((1.0 + p_fit ** (2.0 ** (a0[:, None] - 1.0))) / 2.0 - p_fit)
    var_y = var_p.clamp_min(1e-30) / (p_fit * log_p_fit) ** 2
    w = torch.where(keep, 1.0 / var_y, torch.zeros_like(var_y))
    slope, intercept, coef = _wls(x, y, w)
    slope = torch.where(keep.sum(-1) >= 2, slope, torch.full_like(slope, math.nan))
    return _EcfRegression(slope, intercept, coef, n_strict)


def _ecf_grid(x: torch.Tensor, n_points: int, u_range):
    """Per-series grid start u0 and step du (u ∈ u_range/ŝ, ŝ = IQR/1.349) and the midquartile."""
    q = sample_quantiles(x, [0.25, 0.75])
    iqr = q[:, 1] - q[:, 0]
    _check_iqr(iqr)
    s_hat = iqr / 1.349
    lo, hi = (float(v) for v in u_range)
    return lo / s_hat, (hi - lo) / (n_points - 1) / s_hat, 0.5 * (q[:, 0] + q[:, 1])


def _check_grid(n_points: int, u_range) -> None:
    if int(n_points) < 3:
        raise ValueError(f"n_points (ECF grid size) must be ≥ 3; got {n_points}")
    lo, hi = (float(v) for v in u_range)
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"u_range must satisfy 0 < low < high < inf; got {u_range}")


def _ecf_fit(x: torch.Tensor, *, n_points: int, u_range):
    """(grid, |φ̂|², regression, TailIndexFit) for :func:`ecf_tail_index` and the bootstrap."""
    _check_grid(n_points, u_range)
    flat = check_samples(x)
    u0, du, centre = _ecf_grid(flat, n_points, u_range)
    p = _ecf_modulus(flat - centre[:, None], u0, du, int(n_points))
    u = u0[:, None] + du[:, None] * torch.arange(int(n_points), dtype=u0.dtype, device=u0.device)
    n = flat.shape[-1]
    reg = _ecf_regression(p, u, n)
    alpha = reg.alpha_raw.clamp(ALPHA_FLOOR, 2.0)
    scale = (torch.exp(reg.intercept) / 2.0) ** (1.0 / alpha)
    reliable = _reliable(alpha, scale, n) & (reg.strict_points >= 5)
    shape = x.shape[:-1]
    fit = TailIndexFit(alpha.reshape(shape), scale.reshape(shape), reliable.reshape(shape))
    return u, p, reg, fit


def ecf_tail_index(x: torch.Tensor, *, n_points: int = ECF_POINTS,
                   u_range: tuple[float, float] = ECF_U_RANGE) -> TailIndexFit:
    """Koutrouvelis' ECF regression for SαS samples, batched (theory/noise, estimator (i)).

    Args:
        x: samples (..., sample) of one SαS law per leading index (any location).
        n_points: size K of the linear grid of u.
        u_range: the grid's ends in units of 1/ŝ, ŝ = IQR/1.349 of each series.

    Returns:
        :class:`TailIndexFit` with fields of shape (...): α̂ clipped to [0.1, 2], σ̂, reliable.
        α̂ is NaN (and flagged) only where fewer than two grid points were informative.

    Raises:
        ValueError: fewer than ``MIN_SAMPLES`` samples, NaN or inf, a series with zero IQR,
            or a bad grid.

    >>> g = torch.Generator().manual_seed(0)
    >>> from horizon_lib.stable import sample_symmetric_stable
    >>> x = sample_symmetric_stable(torch.tensor([[1.5], [2.0]]), (2, 20000), generator=g)
    >>> fit = ecf_tail_index(x)
    >>> [round(a, 1) for a in fit.alpha.tolist()]
    [1.5, 2.0]
    """
    return _ecf_fit(x, n_points=n_points, u_range=u_range)[3]


def ecf_tail_index_or_nan(x: torch.Tensor) -> TailIndexFit:
    """:func:`ecf_tail_index` of each row of (row, sample), where a row without a scale gets NaN.

    A row whose interquartile range is zero (a transport that underflowed to 0, a closed gate)
    or that holds a NaN or inf (a diverged model) has no tail index: its α̂ and σ̂ are NaN and
    it is flagged unreliable, instead of the whole batch raising as :func:`ecf_tail_index` does.
    The experiment's 128 lags are fitted this way, one row per lag.

    Raises:
        ValueError: ``x`` is not a floating tensor of shape (row, sample), or has fewer than
            ``MIN_SAMPLES`` samples per row.
    """
    if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() != 2:
        raise ValueError("x must be a floating-point tensor (row, sample)")
    if x.shape[1] < MIN_SAMPLES:
        raise ValueError(f"x needs at least {MIN_SAMPLES} samples per row; got {x.shape[1]}")
    finite = torch.isfinite(x).all(1)
    # the estimator's own quartiles (partial selection, its interpolation convention), so this
    # guard agrees with the zero-IQR check inside ecf_tail_index
    q = sample_quantiles(torch.where(finite[:, None], x, torch.zeros_like(x)), [0.25, 0.75])
    ok = ((q[:, 1] - q[:, 0]) > 0) & finite
    alpha = torch.full((x.shape[0],), math.nan, dtype=torch.float64, device=x.device)
    scale, reliable = alpha.clone(), torch.zeros_like(ok)
    if bool(ok.any()):
        fit = ecf_tail_index(x[ok])
        alpha[ok], scale[ok] = fit.alpha.to(alpha), fit.scale.to(alpha)
        reliable[ok] = fit.reliable
    return TailIndexFit(alpha, scale, reliable)


# --------------------------------------------------------------------------- Hill (not used)


def hill_tail_index(x: torch.Tensor, *, fraction: float = 0.1) -> torch.Tensor:
    """Hill's estimator on |x|, batched: shown in the chapter to explain why it is *not* used.

    α̂ = 1 / mean_{i ≤ k} log(|x|_(i) / |x|_(k+1)) over the k = ⌈fraction·n⌉ largest moduli.
    It assumes a Pareto tail beyond |x|_(k+1); an α-stable law reaches its power tail only far
    out when α is near 2, so Hill's α̂ is biased upward there (and exceeds 2 at α = 2).

    Args:
        x: samples (..., sample). fraction: share k/n of the upper order statistics used.

    Returns:
        α̂ of shape (...), unclipped.

    Raises:
        ValueError: as :func:`check_samples`, or fraction outside (0, 1) leaving k < 2.
    """
    flat = check_samples(x)
    n = flat.shape[-1]
    k = math.ceil(float(fraction) * n)
    if not (0.0 < float(fraction) < 1.0) or k < 2 or k >= n:
        raise ValueError(f"fraction must lie in (0, 1) with 2 ≤ ⌈fraction·n⌉ < n; got {fraction}")
    top = torch.topk(flat.abs(), k + 1, dim=-1).values
    if bool((top[:, -1] <= 0).any()):
        raise ValueError("samples: the (k+1)-th largest modulus is zero; "
                         "Hill's estimator is undefined")
    logs = torch.log(top[:, :k] / top[:, -1:])
    return (1.0 / logs.mean(-1)).reshape(x.shape[:-1])
