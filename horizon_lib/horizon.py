"""The detection rule: SNR(ℓ, N), the minimal sample size N(ℓ), Ĥ_N on a lag grid, ε_th, master fit.

theory/window. A lag ℓ whose matched statistic has mean m(ℓ), α-stable scale σ(ℓ) and tail index
α(ℓ) is **detectable** with N samples when

    SNR(ℓ, N) = |m(ℓ)| N^{1/κ_α} / σ(ℓ)  >  ε,            κ_α = α/(α − 1),

so the minimal sample size is N(ℓ) = (ε σ / |m|)^{κ_α}, and with |m(ℓ)| ∝ f(ℓ) it scales as
f(ℓ)^{−κ_α}. On a lag grid the window is read off N(ℓ) in two ways, kept apart by name:

* :func:`largest_detectable_lag`: max{ℓ : N(ℓ) ≤ N} (theory/window and the code release);
* :func:`contiguous_window`: the largest ℓ such that *every* grid lag up to it is detectable.

The two agree when N(ℓ) increases with ℓ; a measured N̂(ℓ) need not, and then they differ.
The continuous window of a decreasing envelope and its closed forms live in ``window.py``; the
fits of log N(ℓ) against log f(ℓ) in ``complexity_fit.py``.

Conventions: α̂, σ̂ and m̄ are estimates the caller passes as tensors (from the stable and
matched-statistic modules, or synthetic); α must lie in (1, 2]; as α ↓ 1, κ_α → ∞ and
N^{1/κ_α} → 1, so SNR stops growing with N and N(ℓ) tends to 0 (one sample suffices) or to +∞
(no N suffices), never NaN. Python scalars are computed in float64; tensors keep their dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_finite
from .concentration import kappa

__all__ = [
    "snr",
    "minimal_sample_size",
    "GridSampleSize",
    "first_detectable_n",
    "largest_detectable_lag",
    "contiguous_window",
    "epsilon_threshold",
]


# --------------------------------------------------------------------------- argument handling


def _dtype_device(*xs) -> tuple[torch.dtype, torch.device]:
    """dtype/device of the first floating tensor among ``xs``; float64 on the CPU otherwise."""
    for x in xs:
        if torch.is_tensor(x) and x.is_floating_point():
            return x.dtype, x.device
    for x in xs:
        if torch.is_tensor(x):
            return torch.float64, x.device
    return torch.float64, torch.device("cpu")


def _tensors(*xs, names: tuple[str, ...]) -> list[torch.Tensor]:
    """Each of ``xs`` as a finite tensor of the common dtype/device; ValueError names a bad one."""
    dtype, device = _dtype_device(*xs)
    out = []
    for x, name in zip(xs, names):
        t = torch.as_tensor(x, dtype=dtype, device=device)
        if t.numel() == 0:
            raise ValueError(f"{name} must not be empty")
        if bool(torch.isnan(t).any()):
            raise ValueError(f"{name} must not contain NaN")
        out.append(t)
    return out


def _check_positive(x: torch.Tensor, name: str) -> None:
    check_finite(x, name)
    if bool((x <= 0).any()):
        raise ValueError(f"{name} must be > 0; got {x.flatten()[:8].tolist()}")


def _check_sample_sizes(n: torch.Tensor, name: str = "sample size N") -> None:
    check_finite(n, name)
    if bool((n < 1).any()):
        raise ValueError(f"{name} must be ≥ 1; got {n.flatten()[:8].tolist()}")


def _check_increasing(x: torch.Tensor, name: str) -> None:
    if x.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {tuple(x.shape)}")
    if x.numel() > 1 and bool((x[1:] <= x[:-1]).any()):
        raise ValueError(f"{name} must be strictly increasing")


def _check_n_required(n_required: torch.Tensor) -> None:
    if bool((n_required < 0).any()):
        raise ValueError("n_required must be ≥ 0 (+inf marks a lag that no N on the grid detects)")


# --------------------------------------------------------------------------- SNR and N(ℓ)


def snr(mean, scale, alpha, n) -> torch.Tensor:
    """Signal-to-noise ratio SNR(ℓ, N) = |m̄(ℓ)| N^{1/κ_α} / σ̂(ℓ) (theory/window).

    Args:
        mean: m̄(ℓ), the mean of the matched statistic (sign ignored), shape S (e.g. (lag,)).
        scale: σ̂(ℓ) > 0, broadcasting against ``mean``.
        alpha: α̂(ℓ) ∈ (1, 2], broadcasting against ``mean``.
        n: sample sizes N ≥ 1, shape (n,) (or a scalar).

    Returns:
        Tensor of shape broadcast(S) + (n,): the SNR of every lag at every N.

    Raises:
        ValueError: α ∉ (1, 2], σ̂ ≤ 0, N < 1, NaN or empty input.

    >>> snr(0.5, 1.0, 2.0, [1, 4, 16]).tolist()
    [0.5, 1.0, 2.0]
    """
    m, s, a, nn = _tensors(mean, scale, alpha, n, names=("mean", "scale", "alpha", "n"))
    check_finite(m, "mean")
    _check_positive(s, "scale σ")
    _check_sample_sizes(nn)
    k = kappa(a)
    m, s, k = torch.broadcast_tensors(m, s, k)
    nn = nn.reshape(-1)
    return (m.abs() / s).unsqueeze(-1) * torch.exp(torch.log(nn) / k.unsqueeze(-1))


def minimal_sample_size(mean, scale, alpha, eps) -> torch.Tensor:
    """Minimal sample size N(ℓ) = (ε σ̂ / |m̄|)^{κ_α}: SNR(ℓ, N) > ε exactly when N > N(ℓ).

    The continuous formula of theory/window (computed in log space, so it overflows to +inf
    rather than to NaN). Values below 1 mean that a single sample already detects the lag.

    Args:
        mean: m̄(ℓ), shape S; m̄ = 0 gives N(ℓ) = +inf.
        scale: σ̂(ℓ) > 0, broadcasting.
        alpha: α̂(ℓ) ∈ (1, 2], broadcasting.
        eps: detection threshold ε > 0 (a float or broadcasting tensor).

    Returns:
        Tensor of shape broadcast(S): N(ℓ) ∈ [0, +inf].

    Raises:
        ValueError: α ∉ (1, 2], σ̂ ≤ 0, ε ≤ 0, NaN or empty input.

    >>> round(minimal_sample_size(0.5, 1.0, 2.0, 2.0).item(), 12)
    16.0
    """
    m, s, a, e = _tensors(mean, scale, alpha, eps, names=("mean", "scale", "alpha", "eps"))
    check_finite(m, "mean")
    _check_positive(s, "scale σ")
    _check_positive(e, "eps ε")
    k = kappa(a)
    log_n = k * (torch.log(e) + torch.log(s) - torch.log(m.abs()))
    return torch.exp(log_n)


@dataclass(frozen=True)
class GridSampleSize:
    """The first N of a grid that detects each lag, with "none on the grid" made explicit.

    Attributes:
        n_required: tensor S of grid values; +inf where no N of the grid detects the lag
            (the code release writes −1 there).
        found: bool tensor S, False exactly where ``n_required`` is +inf.
    """

    n_required: torch.Tensor
    found: torch.Tensor


def first_detectable_n(mean, scale, alpha, n_grid, eps) -> GridSampleSize:
    """N̂(ℓ) on a grid: the smallest N of ``n_grid`` with SNR(ℓ, N) > ε (the release's rule).

    Args:
        mean, scale, alpha: m̄(ℓ), σ̂(ℓ) > 0, α̂(ℓ) ∈ (1, 2], broadcasting to shape S.
        n_grid: strictly increasing sample sizes N ≥ 1, shape (n,).
        eps: threshold ε > 0.

    Returns:
        :class:`GridSampleSize` with tensors of shape S.

    Raises:
        ValueError: empty or non-increasing grid, N < 1, α ∉ (1, 2], σ̂ ≤ 0, ε ≤ 0, NaN.

    >>> r = first_detectable_n([1.0, 0.1], 1.0, 2.0, [1, 10, 100], 2.0)
    >>> r.n_required.tolist(), r.found.tolist()
    ([10.0, inf], [True, False])
    """
    grid = _tensors(n_grid, names=("n_grid",))[0]
    _check_increasing(grid, "n_grid")
    e = _tensors(eps, names=("eps",))[0]
    _check_positive(e, "eps ε")
    ratio = snr(mean, scale, alpha, grid)
    detect = ratio > e.to(ratio).unsqueeze(-1)
    found = detect.any(-1)
    first = torch.argmax(detect.to(torch.uint8), dim=-1)
    values = grid.to(ratio)[first]
    return GridSampleSize(torch.where(found, values, torch.full_like(values, math.inf)), found)


# --------------------------------------------------------------------------- Ĥ_N on a lag grid


def _detectable(lags, n_required, n):
    lag, need, nn = _tensors(lags, n_required, n, names=("lags", "n_required", "n"))
    _check_increasing(lag, "lags")
    if bool((lag < 1).any()):
        raise ValueError("every lag ℓ must be ≥ 1")
    _check_n_required(need)
    if need.shape[-1:] != lag.shape:
        raise ValueError(
            f"n_required must end in the lag axis ({lag.numel()}); got shape {tuple(need.shape)}"
        )
    nn = nn.reshape(-1)
    _check_sample_sizes(nn)
    return lag, need.unsqueeze(-1) <= nn  # (..., lag, n)


def largest_detectable_lag(lags, n_required, n) -> torch.Tensor:
    """Ĥ_N = max{ℓ in the grid : N(ℓ) ≤ N}, 0 when no lag is detectable (the release's definition).

    A lag far out can count while shorter lags are still undetectable; see
    :func:`contiguous_window` for the window with no holes.

    Args:
        lags: strictly increasing lags ℓ ≥ 1, shape (lag,).
        n_required: N(ℓ) or N̂(ℓ), shape (..., lag); +inf for "none on the grid".
        n: sample budgets N ≥ 1, shape (n,).

    Returns:
        Tensor (..., n) of lags (dtype of the computation), 0 where nothing is detectable.

    Raises:
        ValueError: empty or non-increasing lags, ℓ < 1, N < 1, negative N(ℓ), NaN, shape mismatch.

    >>> largest_detectable_lag([1, 2, 3], [10.0, 1e9, 20.0], [5, 50]).tolist()
    [0.0, 3.0]
    """
    lag, det = _detectable(lags, n_required, n)
    return torch.where(det, lag.unsqueeze(-1), torch.zeros_like(lag).unsqueeze(-1)).amax(-2)


def contiguous_window(lags, n_required, n) -> torch.Tensor:
    """Ĥ_N as a window: the largest grid lag ℓ_k such that every ℓ_1 … ℓ_k is detectable.

    Args:
        lags, n_required, n: as in :func:`largest_detectable_lag`.

    Returns:
        Tensor (..., n), 0 where the first lag of the grid is not detectable.

    Raises:
        ValueError: as :func:`largest_detectable_lag`.

    >>> contiguous_window([1, 2, 3], [10.0, 1e9, 20.0], [5, 50]).tolist()
    [0.0, 1.0]
    """
    lag, det = _detectable(lags, n_required, n)
    prefix = torch.cumprod(det.to(torch.uint8), dim=-2).bool()
    return torch.where(prefix, lag.unsqueeze(-1), torch.zeros_like(lag).unsqueeze(-1)).amax(-2)


# --------------------------------------------------------------------------- threshold ε_th


def epsilon_threshold(f, n_required, alpha, n) -> torch.Tensor:
    """Detectability threshold ε_th(ℓ; N) = f(ℓ) (N(ℓ)/N)^{1/κ_α(ℓ)} (theory/window).

    f(ℓ) ≥ ε_th(ℓ; N) exactly when N(ℓ) ≤ N, so the envelope crosses the threshold at Ĥ_N.
    With |m| = c f and constant α, σ it is the flat line C N^{−1/κ_α}, C = ε σ / c.

    Args:
        f: envelope f(ℓ) > 0, shape S.
        n_required: continuous N(ℓ) ∈ [0, +inf], broadcasting against ``f``.
        alpha: α̂(ℓ) ∈ (1, 2], broadcasting.
        n: budgets N ≥ 1, shape (n,).

    Returns:
        Tensor broadcast(S) + (n,); +inf where N(ℓ) = +inf.

    Raises:
        ValueError: f ≤ 0, negative N(ℓ), α ∉ (1, 2], N < 1, NaN or empty input.

    >>> th = epsilon_threshold([0.5, 0.25], [16.0, 64.0], 2.0, [4.0])
    >>> th.squeeze(-1).round(decimals=12).tolist()
    [1.0, 1.0]
    """
    fv, need, a, nn = _tensors(f, n_required, alpha, n, names=("f", "n_required", "alpha", "n"))
    _check_positive(fv, "envelope f")
    _check_n_required(need)
    nn = nn.reshape(-1)
    _check_sample_sizes(nn)
    k = kappa(a)
    fv, need, k = torch.broadcast_tensors(fv, need, k)
    log_ratio = torch.log(need).unsqueeze(-1) - torch.log(nn)  # log(N(ℓ)/N)
    log_th = torch.log(fv).unsqueeze(-1) + log_ratio / k.unsqueeze(-1)
    return torch.exp(log_th)
