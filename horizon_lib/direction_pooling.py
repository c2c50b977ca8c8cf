"""Pooling the matched statistic over random directions: a mixture of scales (the experiment,
"How heavy are real gradient tails?").

The diagnostics pool the per-sequence means ψ(ℓ) of K random unit parameter directions w_k into
one sample of K·B values per lag (:func:`horizon_lib.matched.orient_per_lag`). Each direction
has its own location and scale σ_k(ℓ), so the pool is a mixture (1/K) Σ_k SαS(σ_k), whose tails
are heavier than those of any one direction: K Gaussian directions with different σ_k already
give an ECF α̂ below 2. The empirical mean over N sequences along one fixed direction, which is
what the window's N counts (theory/window, SNR(ℓ, N)), sees one direction's law.

This module separates the two readings of the same samples:

* ``pooled``: α̂ of the raw pool, as the diagnostics report it;
* ``per_direction``: α̂ of each direction's B values alone (noisier: B, not K·B, samples);
* ``standardized``: α̂ of the pool after each (lag, direction) is centred at its median and
  divided by its interquartile range, so that only the shape of the law is pooled;
* ``log_scale_spread``: the standard deviation over directions of log IQR, the size of the
  mixture.

:func:`directions_sample_size` carries the per-direction reading to the window: N̂_k(ℓ) of each
direction from its own m̄, σ̂ and α̂ by the SNR rule, and the smallest grid N at which at least
half of the directions detect the lag.

:func:`gaussian_mixture_alpha` gives the reference: what the ECF estimator reads on the pool of
K Gaussian directions whose log-scales spread by a given amount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .diagnostics import estimated_sample_size
from .tail_index import MIN_SAMPLES, ecf_tail_index, ecf_tail_index_or_nan, sample_quantiles

__all__ = [
    "DirectionPooling",
    "MixtureReference",
    "split_directions",
    "standardize_directions",
    "direction_pooling",
    "gaussian_mixture_alpha",
    "DirectionsSampleSize",
    "directions_sample_size",
]


@dataclass(frozen=True)
class DirectionPooling:
    """Tail indices of K pooled directions, read three ways (module docstring).

    Attributes:
        pooled: (lag,) α̂ of the raw pool of K·B samples.
        per_direction: (lag, K) α̂ of each direction's B samples.
        standardized: (lag,) α̂ of the pool with each direction centred and scaled.
        log_scale_spread: (lag,) standard deviation over the K directions of log IQR
            (NaN for K = 1).
    """

    pooled: torch.Tensor
    per_direction: torch.Tensor
    standardized: torch.Tensor
    log_scale_spread: torch.Tensor


@dataclass(frozen=True)
class MixtureReference:
    """The ECF α̂ of pooled Gaussian directions with log-normal scales (one entry per spread).

    Attributes:
        spread: (s,) standard deviation of the directions' log-scales drawn.
        measured_spread: (s,) median over replicates of the same spread as
            :func:`direction_pooling` measures it (sample standard deviation of log IQR).
        alpha: (s,) median over replicates of the pooled α̂.
        alpha_low, alpha_high: (s,) its 5 % and 95 % quantiles over replicates.
    """

    spread: torch.Tensor
    measured_spread: torch.Tensor
    alpha: torch.Tensor
    alpha_low: torch.Tensor
    alpha_high: torch.Tensor


@dataclass(frozen=True)
class DirectionsSampleSize:
    """Sample sizes of each direction read alone (:func:`directions_sample_size`).

    Attributes:
        per_direction: (lag, K) N̂_k(ℓ): the first grid N with SNR > ε for direction k's own
            m̄, σ̂, α̂; inf where no grid N detects it or the direction has no scale.
        half: (lag,) the smallest grid N at which at least half of the K directions detect the
            lag (the ⌈K/2⌉-th smallest N̂_k).
    """

    per_direction: torch.Tensor
    half: torch.Tensor


def split_directions(samples: torch.Tensor, directions: int) -> torch.Tensor:
    """The pooled samples (lag, K·B), direction-major as the diagnostics store them, as
    (lag, K, B).

    Raises:
        ValueError: ``samples`` is not a 2-D floating tensor, ``directions`` is not a positive
            integer dividing its second dimension, or a direction has fewer than
            ``MIN_SAMPLES`` samples.
    """
    if not torch.is_tensor(samples) or not samples.is_floating_point() or samples.dim() != 2:
        raise ValueError("samples must be a floating-point tensor (lag, directions·batch)")
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions must be a positive integer; got {directions!r}")
    if samples.shape[1] % directions:
        raise ValueError(f"{samples.shape[1]} samples per lag do not split into {directions} "
                         "directions of equal size")
    batch = samples.shape[1] // directions
    if batch < MIN_SAMPLES:
        raise ValueError(f"each direction needs at least {MIN_SAMPLES} samples for a tail "
                         f"index; got {batch}")
    return samples.reshape(samples.shape[0], directions, batch)


def _quartiles(x: torch.Tensor) -> torch.Tensor:
    """(lag, K, B) → (lag, K, 3): the 25 %, 50 % and 75 % sample quantiles of each direction."""
    n_lag, n_dir, n_b = x.shape
    flat = x.reshape(n_lag * n_dir, n_b)
    finite = torch.isfinite(flat).all(1, keepdim=True)
    q = sample_quantiles(torch.where(finite, flat, torch.zeros_like(flat)), [0.25, 0.5, 0.75])
    return torch.where(finite, q, torch.full_like(q, math.nan)).reshape(n_lag, n_dir, 3)


def standardize_directions(x: torch.Tensor) -> torch.Tensor:
    """Centre each (lag, direction) at its median and divide it by its interquartile range, then
    pool: (lag, K, B) → (lag, K·B).

    For a stable law the IQR is proportional to the scale σ at fixed α, so the standardized
    directions share one law when they share α. A lag where some direction has a zero IQR or a
    non-finite sample is all NaN (no scale to divide by).
    """
    return _standardize(x, _quartiles(x))


def _standardize(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    iqr = q[..., 2] - q[..., 0]
    ok = (iqr > 0).all(1) & torch.isfinite(iqr).all(1)
    z = (x - q[..., 1:2]) / torch.where(iqr > 0, iqr, torch.ones_like(iqr))[..., None]
    z = torch.where(ok[:, None, None], z, torch.full_like(z, math.nan))
    return z.reshape(x.shape[0], -1)


def direction_pooling(samples: torch.Tensor, directions: int) -> DirectionPooling:
    """α̂ of the pooled samples of one model, raw, per direction and standardized.

    Args:
        samples: (lag, K·B) oriented per-sequence means, direction-major (the diagnostics'
            ``samples``).
        directions: K.

    Returns:
        :class:`DirectionPooling`. A lag or direction without a scale (zero IQR, a non-finite
        sample) is NaN, as in the diagnostics.

    >>> g = torch.Generator().manual_seed(0)
    >>> scales = torch.tensor([0.3, 1.0, 3.0]).repeat_interleave(4000)
    >>> x = (torch.randn(1, 12000, generator=g, dtype=torch.float64) * scales)
    >>> fit = direction_pooling(x, 3)
    >>> round(float(fit.pooled), 1), round(float(fit.standardized), 1)
    (0.9, 2.0)
    """
    x = split_directions(samples, directions)
    n_lag, n_dir, n_b = x.shape
    pooled = ecf_tail_index_or_nan(samples).alpha
    per_direction = ecf_tail_index_or_nan(x.reshape(n_lag * n_dir, n_b)).alpha
    q = _quartiles(x)
    standardized = ecf_tail_index_or_nan(_standardize(x, q)).alpha
    iqr = q[..., 2] - q[..., 0]
    log_iqr = torch.where(iqr > 0, iqr, torch.full_like(iqr, math.nan)).log()
    spread = (log_iqr.std(1) if n_dir > 1
              else torch.full((n_lag,), math.nan, dtype=log_iqr.dtype, device=x.device))
    return DirectionPooling(pooled, per_direction.reshape(n_lag, n_dir), standardized,
                            spread.to(torch.float64))


def gaussian_mixture_alpha(spreads, directions: int, batch: int, *, replicates: int = 200,
                           generator: torch.Generator | None = None,
                           dtype: torch.dtype = torch.float64) -> MixtureReference:
    """The ECF α̂ that pooling alone produces: K Gaussian directions of B samples each, with
    log-scales drawn from N(0, s²), pooled, for every spread s in ``spreads``.

    A pooled α̂ near this curve at the measured spread is explained by the mixture of scales; one
    far below it is heavy-tailed within the directions too.

    Raises:
        ValueError: a negative or non-finite spread, fewer than 2 directions, fewer than
            ``MIN_SAMPLES`` samples per direction, or fewer than 2 replicates.
    """
    s = torch.as_tensor(spreads, dtype=torch.float64).reshape(-1)
    if s.numel() == 0 or not bool((torch.isfinite(s) & (s >= 0)).all()):
        raise ValueError(f"spreads must be finite and ≥ 0; got {s.tolist()}")
    if directions < 2:
        raise ValueError(f"a mixture needs at least 2 directions; got {directions}")
    if batch < MIN_SAMPLES:
        raise ValueError(f"batch must be at least {MIN_SAMPLES}; got {batch}")
    if replicates < 2:
        raise ValueError(f"replicates must be at least 2; got {replicates}")
    alpha, measured = [], []
    for spread in s.tolist():
        log_scale = spread * torch.randn(replicates, directions, 1, generator=generator,
                                         dtype=dtype)
        x = torch.randn(replicates, directions, batch, generator=generator,
                        dtype=dtype) * log_scale.exp()
        alpha.append(ecf_tail_index(x.reshape(replicates, -1)).alpha)
        q = sample_quantiles(x.reshape(replicates * directions, batch), [0.25, 0.75])
        measured.append((q[:, 1] - q[:, 0]).log().reshape(replicates, directions).std(1))
    a = torch.stack(alpha).to(torch.float64)
    probs = torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)
    lo, mid, hi = torch.quantile(a, probs, dim=1)
    return MixtureReference(s, torch.stack(measured).to(torch.float64).median(1).values,
                            mid, lo, hi)


def directions_sample_size(samples: torch.Tensor, directions: int, n_grid,
                           eps: float) -> DirectionsSampleSize:
    """N̂(ℓ) of each direction from its own B samples, by the diagnostics' SNR rule.

    For direction k the mean m̄_k(ℓ), and σ̂_k(ℓ), α̂_k(ℓ) by ECF regression on its B samples
    give N̂_k(ℓ) = the first N of ``n_grid`` with |m̄_k| N^{1/κ_α̂} / σ̂_k > ε, by the
    diagnostics' own rule (:func:`horizon_lib.diagnostics.estimated_sample_size`); the lag's
    summary is the smallest N at which at least half of the directions detect it.

    Args:
        samples: (lag, K·B) oriented per-sequence means, direction-major.
        directions: K.
        n_grid: strictly increasing sample sizes.
        eps: the SNR threshold ε > 0.

    Returns:
        :class:`DirectionsSampleSize`.

    >>> g = torch.Generator().manual_seed(1)
    >>> x = 0.2 + torch.randn(1, 4 * 2000, generator=g, dtype=torch.float64)
    >>> r = directions_sample_size(x, 4, [4, 40, 400], 1.0)
    >>> r.half.tolist()      # unit Gaussian: σ = 1/√2, SNR = 0.2·√(2N) > 1 from N = 12.5
    [40.0]
    """
    x = split_directions(samples, directions)
    n_lag, n_dir, n_b = x.shape
    fit = ecf_tail_index_or_nan(x.reshape(n_lag * n_dir, n_b))
    mean = x.mean(-1).reshape(-1).to(torch.float64)
    need = estimated_sample_size(mean, fit.scale, fit.alpha, n_grid, eps)[0]
    need = need.reshape(n_lag, n_dir)
    half = need.kthvalue(math.ceil(n_dir / 2), dim=1).values
    return DirectionsSampleSize(need, half)
