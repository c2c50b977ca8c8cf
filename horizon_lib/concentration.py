"""Concentration of empirical means under α-stable noise (theory/noise).

For i.i.d. X_i ~ SαS(σ) with location m, stability gives the exact identity in distribution

    X̄_N − m  =ᵈ  σ N^{1/α − 1} S  =  σ N^{−1/κ_α} S,       κ_α = α / (α − 1),

with S ~ SαS(1). Every quantile of |X̄_N − m| therefore falls as N^{−1/κ_α}: N^{−1/2} for the
Gaussian (α = 2) and ever more slowly as α ↓ 1 (κ_α → ∞). This module measures that rate by
Monte Carlo: quantiles, not means, since for α near 1 the mean of |X̄_N − m| has infinite
variance and its fitted slope misleads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ._checks import as_tensor, check_finite
from ._progress import progress_bar
from .stable import check_alpha, sample_symmetric_stable

__all__ = [
    "kappa",
    "sample_mean_deviations",
    "deviation_quantiles",
    "RateFit",
    "fit_concentration_rate",
]


def kappa(alpha):
    """Concentration exponent κ_α = α / (α − 1) of theory/noise (the paper's κ_α).

    Args:
        alpha: tail index α ∈ (1, 2], a float or a tensor.

    Returns:
        κ_α, of the same kind as ``alpha``: 2 at α = 2, growing without bound as α ↓ 1.

    Raises:
        ValueError: α ∉ (1, 2] (at α ≤ 1 empirical means do not concentrate at all).

    >>> kappa(2.0), kappa(1.5)
    (2.0, 3.0)
    """
    if torch.is_tensor(alpha):
        check_alpha(alpha, low=1.0)
        return alpha / (alpha - 1.0)
    a = float(alpha)
    if not (math.isfinite(a) and 1.0 < a <= 2.0):
        raise ValueError(f"alpha must lie in (1, 2] for κ_α = α/(α − 1); got {alpha!r}")
    return a / (a - 1.0)


def _check_n_grid(n_grid: Sequence[int]) -> list[int]:
    n = [int(v) for v in n_grid]
    if len(n) == 0:
        raise ValueError("n_grid must not be empty")
    if any(v < 1 for v in n):
        raise ValueError(f"every sample size N in n_grid must be ≥ 1; got {n}")
    if any(b <= a for a, b in zip(n, n[1:])):
        raise ValueError(f"n_grid must be strictly increasing; got {n}")
    return n


def sample_mean_deviations(
    alphas,
    n_grid: Sequence[int],
    replicates: int,
    *,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    max_draws_per_chunk: int = 1 << 24,
    progress: bool = False,
    signed: bool = False,
) -> torch.Tensor:
    """Monte-Carlo draws of |X̄_N − m| for every α and every N of a grid, in one batched pass.

    Each replicate is one stream of N_max = max(n_grid) SαS(σ) draws; its running sums give
    X̄_N − m at every N of the grid at once (so the N columns of one replicate are correlated,
    while each column has exactly the law σ N^{−1/κ_α} |S|).

    Args:
        alphas: tail indices α ∈ (0, 2], shape (alpha,).
        n_grid: strictly increasing sample sizes N ≥ 1, shape (n,).
        replicates: number R ≥ 1 of independent replicates.
        scale: σ of the noise.
        generator: source of randomness (keyword-only).
        dtype, device: of the draws and the result.
        max_draws_per_chunk: memory bound: replicates are processed in chunks of this many draws
            (each chunk draws its own uniforms, so a seeded result depends on this bound; its
            law does not).
        progress: show a tqdm bar over chunks.
        signed: return X̄_N − m itself (each column is then SαS(σ N^{−1/κ_α}) with the same α,
            so a tail-index estimator can be run on it); default |X̄_N − m|.

    Returns:
        Tensor (alpha, replicate, n) of |X̄_N − m| (or X̄_N − m when ``signed``).

    Raises:
        ValueError: empty or non-increasing ``n_grid``, N < 1, R < 1, α ∉ (0, 2], σ ≤ 0.
    """
    n = _check_n_grid(n_grid)
    if int(replicates) < 1:
        raise ValueError(f"replicates must be ≥ 1; got {replicates}")
    a = as_tensor(alphas, dtype=dtype, device=device).reshape(-1)
    check_alpha(a)
    check_finite(as_tensor(scale, dtype=dtype, device=device), "scale")
    if scale <= 0:
        raise ValueError(f"scale σ must be > 0; got {scale}")
    n_max = n[-1]
    cols = torch.as_tensor([v - 1 for v in n], device=device)
    denom = torch.as_tensor(n, dtype=dtype, device=device)
    per_chunk = max(1, max_draws_per_chunk // (a.numel() * n_max))
    out = torch.empty(a.numel(), int(replicates), len(n), dtype=dtype, device=device)
    starts = range(0, int(replicates), per_chunk)
    for start in progress_bar(starts, desc="replicates", enabled=progress):
        r = min(per_chunk, int(replicates) - start)
        x = sample_symmetric_stable(a.view(-1, 1, 1), (a.numel(), r, n_max), scale=scale,
                                    generator=generator, dtype=dtype, device=device)
        sums = torch.cumsum(x, dim=-1).index_select(-1, cols)
        means = sums / denom
        out[:, start:start + r] = means if signed else means.abs()
    return out


def deviation_quantiles(deviations: torch.Tensor, probs: Sequence[float]) -> torch.Tensor:
    """Empirical quantiles over replicates by partial selection (``kthvalue``, no full sort).

    Args:
        deviations: tensor (..., replicate, n) of |X̄_N − m|.
        probs: quantile levels p ∈ (0, 1), shape (prob,).

    Returns:
        Tensor (..., prob, n): the ⌈pR⌉-th smallest value for each p (the lower empirical quantile).

    Raises:
        ValueError: a NaN or an infinity in ``deviations`` (``kthvalue`` sorts a NaN last, so the
            quantile would come back finite and wrong), p ∉ (0, 1).
    """
    check_finite(deviations, "deviations")
    return _quantiles(deviations, probs)


def _quantiles(deviations: torch.Tensor, probs: Sequence[float]) -> torch.Tensor:
    """:func:`deviation_quantiles` without the finiteness pass (for inputs already checked)."""
    r = deviations.shape[-2]
    out = []
    for p in probs:
        if not 0.0 < float(p) < 1.0:
            raise ValueError(f"quantile level p must lie in (0, 1); got {p}")
        k = min(r, max(1, math.ceil(float(p) * r)))
        out.append(torch.kthvalue(deviations, k, dim=-2).values)
    return torch.stack(out, dim=-2)


@dataclass(frozen=True)
class RateFit:
    """Fitted concentration rate: log q_p(|X̄_N − m|) = intercept + slope · log N.

    Attributes (each a tensor (alpha,)): ``slope`` (−1/κ_α in theory), ``intercept``,
    ``se`` (bootstrap standard error of the slope), ``ci_low``/``ci_high`` (95% percentile
    bootstrap interval).
    """

    slope: torch.Tensor
    intercept: torch.Tensor
    se: torch.Tensor
    ci_low: torch.Tensor
    ci_high: torch.Tensor


def _ols(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares slope and intercept of y (..., n) on x (n,)."""
    xc = x - x.mean()
    slope = (y * xc).sum(-1) / (xc * xc).sum()
    return slope, y.mean(-1) - slope * x.mean()


def fit_concentration_rate(
    n_grid: Sequence[int],
    deviations: torch.Tensor,
    *,
    prob: float = 0.5,
    n_boot: int = 200,
    generator: torch.Generator | None = None,
) -> RateFit:
    """Fit the log-log slope of the p-quantile of |X̄_N − m| against N, with a bootstrap CI.

    The bootstrap resamples whole replicates (rows), so the correlation between the N columns
    of one replicate is kept and the interval stays honest.

    Args:
        n_grid: the sample sizes N, shape (n,).
        deviations: tensor (alpha, replicate, n) from :func:`sample_mean_deviations`.
        prob: the quantile level p (0.5: the median).
        n_boot: number of bootstrap resamples (≥ 2).
        generator: source of the resampling indices.

    Returns:
        :class:`RateFit` with tensors of shape (alpha,).

    Raises:
        ValueError: a bad shape or grid, NaN, negative (signed) deviations, n_boot < 2.
    """
    n = _check_n_grid(n_grid)
    if deviations.dim() != 3 or deviations.shape[-1] != len(n):
        raise ValueError(
            f"deviations must have shape (alpha, replicate, {len(n)}); "
            f"got {tuple(deviations.shape)}"
        )
    if len(n) < 2:
        raise ValueError("fitting a rate needs at least two sample sizes")
    if n_boot < 2:
        raise ValueError(f"n_boot must be ≥ 2; got {n_boot}")
    check_finite(deviations, "deviations")
    if bool((deviations < 0).any()):
        raise ValueError("deviations must be |X̄_N − m| ≥ 0 (sample_mean_deviations with "
                         "signed=False); got negative values")
    x = torch.log(torch.as_tensor(n, dtype=deviations.dtype, device=deviations.device))
    q = _quantiles(deviations, [prob])[..., 0, :]      # deviations checked finite above
    slope, intercept = _ols(x, torch.log(q))
    a, r, _ = deviations.shape
    boot = torch.empty(n_boot, a, dtype=deviations.dtype, device=deviations.device)
    for b in range(n_boot):
        idx = torch.randint(r, (r,), generator=generator, device=deviations.device)
        qb = _quantiles(deviations.index_select(1, idx), [prob])[..., 0, :]
        boot[b] = _ols(x, torch.log(qb))[0]
    lo, hi = torch.quantile(
        boot, torch.tensor([0.025, 0.975], dtype=boot.dtype, device=boot.device), dim=0)
    return RateFit(slope=slope, intercept=intercept, se=boot.std(0), ci_low=lo, ci_high=hi)
