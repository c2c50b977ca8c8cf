"""The learnability window H_N of a decreasing envelope: root finding, closed forms (theory/window).

With |m(ℓ)| = c f(ℓ) and constant α, σ, a lag is detectable with N samples exactly when
f(ℓ) ≥ θ_N = C N^{−1/κ_α}, C = ε σ / c. For a non-increasing f the window is

    H_N = sup{ℓ ≥ ℓ_min : f(ℓ) ≥ C N^{−1/κ_α}},        H_N = 0 when the set is empty.

Three ways to compute it, all vectorised over (N, α, C) pairs:

* :func:`learnability_window`: any decreasing callable f, by Chandrupatla's bracketing root
  finder (``scipy.optimize.elementwise.find_root``) on log f(ℓ) − log θ_N, all pairs at once;
* :func:`window_from_envelope`: a tabulated f on a lag grid, interpolated linearly in log f
  (exact for exponential pieces), inverted exactly by ``torch.searchsorted``;
* the closed forms (derived in theory/window; the tests check them against the root finder):

  ======================  =================  =========================================
  decay                   f(ℓ)               root ℓ* of f(ℓ) = C N^{−1/κ_α}
  ======================  =================  =========================================
  exponential             A e^{−ℓ/τ}         τ log(A/C) + (τ/κ_α) log N    (logarithmic in N)
  power law               A ℓ^{−β}           (A/C)^{1/β} N^{1/(β κ_α)}     (polynomial)
  logarithmic             A (log ℓ)^{−γ}     exp((A/C)^{1/γ} N^{1/(γ κ_α)}) (exponential)
  ======================  =================  =========================================

  and H_N = ℓ* when ℓ* ≥ ℓ_min, else 0.

Singular regimes: as α ↓ 1, κ_α → ∞ and θ_N → C, so H_N tends to the single-sample window
sup{ℓ : f(ℓ) ≥ C}, finite and independent of N (heavy tails stop the window from growing). A
window that reaches the end of the search range (``lag_max``, or the last tabulated lag) is
returned as +inf: it is at least that long and the data cannot say more.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.optimize import elementwise

from .concentration import kappa
from .horizon import _check_positive, _check_sample_sizes, _dtype_device, _tensors

__all__ = [
    "window_threshold",
    "learnability_window",
    "window_from_envelope",
    "window_exponential",
    "window_power_law",
    "window_logarithmic",
    "CLOSED_FORMS",
]

#: log f below this stands in for log 0 (an envelope that underflows keeps the bracket finite).
_LOG_FLOOR = -1e300


def _pairs(n, alpha, C, *law):
    """(N, κ_α, C) as broadcast tensors, checked: N ≥ 1, α ∈ (1, 2], C > 0; their dtype and
    device are those of the first floating tensor among n, α, C and the law's parameters."""
    dtype, device = _dtype_device(n, alpha, C, *law)
    nn, a, c = (torch.as_tensor(v, dtype=dtype, device=device) for v in (n, alpha, C))
    nn, a, c = _tensors(nn, a, c, names=("n", "alpha", "C"))
    _check_sample_sizes(nn)
    _check_positive(c, "C")
    return torch.broadcast_tensors(nn, kappa(a), c)


def window_threshold(n, alpha, C) -> torch.Tensor:
    """Detection level of the envelope θ_N = C N^{−1/κ_α} (equal to ε_th when α, σ are constant).

    Args:
        n: budgets N ≥ 1; alpha: α ∈ (1, 2]; C: C = ε σ / c > 0; all broadcast together.

    Returns:
        Tensor of the broadcast shape.

    Raises:
        ValueError: N < 1, α ∉ (1, 2], C ≤ 0, NaN or empty input.

    >>> round(window_threshold(100.0, 2.0, 1.0).item(), 12)
    0.1
    """
    nn, k, c = _pairs(n, alpha, C)
    return c * torch.exp(-torch.log(nn) / k)


def _check_lag_range(lag_min: float, lag_max: float) -> None:
    if not (math.isfinite(lag_min) and math.isfinite(lag_max)):
        raise ValueError("lag_min and lag_max must be finite")
    if not 0 <= lag_min < lag_max:
        raise ValueError(f"need 0 ≤ lag_min < lag_max; got lag_min={lag_min}, lag_max={lag_max}")


def _check_decreasing_callable(f, params, lag_min, lag_max, probes):
    """Evaluate f on a probe grid; ValueError unless f is finite, ≥ 0 and non-increasing there."""
    if lag_min > 0:
        grid = np.geomspace(lag_min, lag_max, probes)
    else:
        grid = np.concatenate([[0.0], np.geomspace(lag_max * 1e-9, lag_max, probes - 1)])
    shape = (probes,) + (1,) * max((p.ndim for p in params), default=0)
    with np.errstate(all="ignore"):
        vals = np.asarray(f(grid.reshape(shape), *params), dtype=np.float64)
    if not np.all(np.isfinite(vals)) or np.any(vals < 0):
        raise ValueError(
            f"f must be finite and ≥ 0 on [lag_min, lag_max] = [{lag_min:g}, {lag_max:g}] "
            "(the logarithmic law needs lag_min > 1)"
        )
    if np.any(np.diff(vals, axis=0) > 0):
        raise ValueError("f must be non-increasing in ℓ (a decreasing envelope is required)")


def learnability_window(
    f: Callable,
    n,
    alpha,
    *,
    C,
    params: tuple = (),
    lag_min: float = 1.0,
    lag_max: float = 1e9,
    probes: int = 257,
) -> torch.Tensor:
    """H_N = sup{ℓ ∈ [ℓ_min, ℓ_max] : f(ℓ) ≥ C N^{−1/κ_α}} for a decreasing f, by root finding.

    All (N, α, C, params) combinations are solved in one vectorised call of Chandrupatla's
    method (``scipy.optimize.elementwise.find_root``) on g(ℓ) = log f(ℓ) − log θ_N, to the
    root finder's default tolerance (a few ulps of ℓ).

    Args:
        f: the envelope, f(lags, *params) → values, elementwise on numpy float64 arrays
            (``numpy`` or any array-API-compatible code), non-increasing in ℓ and ≥ 0.
        n: budgets N ≥ 1; alpha: α ∈ (1, 2]; C: C > 0. These broadcast together.
        params: numpy-compatible arrays of per-pair parameters of f, broadcasting with the
            pairs (the solver compresses converged elements, so f must take its parameters
            from here, never from a closure over arrays).
        lag_min: ℓ_min, start of the window (default 1, the first lag).
        lag_max: end of the search range; a window reaching it is returned as +inf.
        probes: size of the log-spaced grid on which f is checked to be non-increasing. The
            check sees f only there: a rise between two probes passes it, and the root found is
            then one crossing of θ_N, not necessarily the largest (raise ``probes``, or use
            :func:`window_from_envelope` on sampled values, for an envelope with bumps).

    Returns:
        Tensor of shape broadcast(n, alpha, C, *params): H_N; 0 where f(ℓ_min) < θ_N (nothing
        is detectable), +inf where f(ℓ_max) ≥ θ_N. dtype/device of the first tensor given
        (float64 for Python numbers).

    Raises:
        ValueError: N < 1, α ∉ (1, 2], C ≤ 0, NaN, an empty input, a bad lag range, or an f
            that increases, is negative or is not finite on the probe grid.

    >>> tau, A = 10.0, 1.0
    >>> h = learnability_window(lambda l, t: A * np.exp(-l / t), 100.0, 2.0, C=0.01,
    ...                         params=(np.array(tau),))
    >>> round(h.item(), 6)  # closed form τ log(A/C) + (τ/κ) log N = 10·log 100 + 5·log 100
    69.077553
    """
    _check_lag_range(float(lag_min), float(lag_max))
    if int(probes) < 2:
        raise ValueError(f"probes must be ≥ 2; got {probes}")
    dtype, device = _dtype_device(n, alpha, C)
    nn, k, c = _pairs(n, alpha, C)
    ps = tuple(np.asarray(p, dtype=np.float64) for p in params)
    if any(np.isnan(p).any() for p in ps):
        raise ValueError("params must not contain NaN")
    _check_decreasing_callable(f, ps, float(lag_min), float(lag_max), int(probes))

    log_theta = (torch.log(c) - torch.log(nn) / k).detach().cpu().double().numpy()
    shape = np.broadcast_shapes(log_theta.shape, *(p.shape for p in ps))
    log_theta = np.broadcast_to(log_theta, shape)
    ps = tuple(np.broadcast_to(p, shape) for p in ps)

    def g(lag, lt, *p):
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(np.asarray(f(lag, *p), dtype=np.float64)), _LOG_FLOOR) - lt

    lo = np.full(shape, float(lag_min))
    hi = np.full(shape, float(lag_max))
    g_lo, g_hi = g(lo, log_theta, *ps), g(hi, log_theta, *ps)
    out = np.zeros(shape)
    out[g_hi >= 0] = math.inf
    inside = (g_lo >= 0) & (g_hi < 0)
    if inside.any():
        res = elementwise.find_root(g, (lo[inside], hi[inside]),
                                    args=(log_theta[inside],) + tuple(p[inside] for p in ps))
        if not np.all(res.success):
            raise ValueError("root finding failed: f returned a non-finite value inside "
                             "[lag_min, lag_max]")
        out[inside] = res.x  # converged: bracket below tolerance, or g(x) = 0 exactly
    return torch.as_tensor(out, dtype=dtype, device=device)


def window_from_envelope(lags, f, n, alpha, *, C) -> torch.Tensor:
    """H_N of a tabulated, non-increasing envelope, interpolating log f linearly between lags.

    For each (N, α, C) the last grid lag with f ≥ θ_N is found by ``torch.searchsorted`` and
    the crossing is solved exactly on the next interval, where log f is linear in ℓ.

    Args:
        lags: strictly increasing lags ℓ, shape (lag,); the window starts at ``lags[0]``.
        f: f(ℓ) > 0, non-increasing, shape (lag,).
        n, alpha, C: budgets N ≥ 1, α ∈ (1, 2], C > 0, broadcasting together to shape P.

    Returns:
        Tensor of shape P: 0 where f(ℓ_1) < θ_N, +inf where f(ℓ_last) ≥ θ_N (the window
        reaches past the table), else the interpolated crossing.

    Raises:
        ValueError: empty or mismatched tables, non-increasing lags, f ≤ 0, an f that increases
            anywhere, N < 1, α ∉ (1, 2], C ≤ 0, NaN.

    >>> round(window_from_envelope([1, 2, 3], [1.0, 0.5, 0.25], 4.0, 2.0, C=2 ** 0.5).item(), 9)
    1.5
    """
    lag, fv = _tensors(lags, f, names=("lags", "f"))
    if lag.dim() != 1 or fv.shape != lag.shape:
        raise ValueError(f"lags and f must be 1-D of equal length; got {tuple(lag.shape)} "
                         f"and {tuple(fv.shape)}")
    if lag.numel() > 1 and bool((lag[1:] <= lag[:-1]).any()):
        raise ValueError("lags must be strictly increasing")
    _check_positive(fv, "envelope f")
    if bool((fv[1:] > fv[:-1]).any()):
        raise ValueError("f must be non-increasing in ℓ (a decreasing envelope is required)")
    nn, k, c = _pairs(n, alpha, C)
    nn, k, c = nn.to(fv), k.to(fv), c.to(fv)
    neg_log_f = -torch.log(fv)  # non-decreasing: searchsorted needs it sorted ascending
    neg_log_theta = torch.log(nn) / k - torch.log(c)
    count = torch.searchsorted(neg_log_f, neg_log_theta.reshape(-1), right=True)
    count = count.reshape(neg_log_theta.shape)  # number of grid lags with f ≥ θ_N
    last = lag.numel()
    i = (count - 1).clamp(0, max(last - 2, 0))
    j = (i + 1).clamp(max=last - 1)
    y0, y1 = neg_log_f[i], neg_log_f[j]
    span = torch.where(y1 > y0, y1 - y0, torch.ones_like(y0))
    frac = ((neg_log_theta - y0) / span).clamp(0, 1)
    cross = lag[i] + frac * (lag[j] - lag[i])
    out = torch.where(count == 0, torch.zeros_like(cross), cross)
    return torch.where(count >= last, torch.full_like(cross, math.inf), out)


# --------------------------------------------------------------------------- closed forms


def _closed(root: torch.Tensor, lag_min: float) -> torch.Tensor:
    if not math.isfinite(lag_min) or lag_min < 0:
        raise ValueError(f"lag_min must be finite and ≥ 0; got {lag_min}")
    return torch.where(root >= lag_min, root, torch.zeros_like(root))


def window_exponential(n, alpha, *, A, tau, C, lag_min: float = 1.0) -> torch.Tensor:
    """Closed form for f(ℓ) = A e^{−ℓ/τ}: H_N = τ log(A/C) + (τ/κ_α) log N (logarithmic in N).

    Args:
        n, alpha: N ≥ 1, α ∈ (1, 2]; A > 0, tau: τ > 0, C > 0; all broadcast together.
        lag_min: windows shorter than ℓ_min are 0 (nothing detectable).

    Returns:
        Tensor of the broadcast shape.

    Raises:
        ValueError: N < 1, α ∉ (1, 2], A, τ or C ≤ 0, NaN.

    >>> round(window_exponential(100.0, 2.0, A=1.0, tau=10.0, C=0.01).item(), 6)
    69.077553
    """
    nn, k, c = _pairs(n, alpha, C, A, tau)
    a, t = _tensors(A, tau, names=("A", "tau"))
    _check_positive(a, "A")
    _check_positive(t, "tau τ")
    a, t = a.to(c), t.to(c)
    return _closed(t * (torch.log(a) - torch.log(c)) + t / k * torch.log(nn), lag_min)


def window_power_law(n, alpha, *, A, beta, C, lag_min: float = 1.0) -> torch.Tensor:
    """Closed form for f(ℓ) = A ℓ^{−β}: H_N = (A/C)^{1/β} N^{1/(β κ_α)} (polynomial in N).

    Args:
        n, alpha: N ≥ 1, α ∈ (1, 2]; A > 0, beta: β > 0, C > 0; all broadcast together.
        lag_min: windows shorter than ℓ_min are 0.

    Returns:
        Tensor of the broadcast shape (computed in log space; +inf on overflow).

    Raises:
        ValueError: N < 1, α ∉ (1, 2], A, β or C ≤ 0, NaN.

    >>> round(window_power_law(100.0, 2.0, A=1.0, beta=1.0, C=0.01).item(), 6)
    1000.0
    """
    nn, k, c = _pairs(n, alpha, C, A, beta)
    a, b = _tensors(A, beta, names=("A", "beta"))
    _check_positive(a, "A")
    _check_positive(b, "beta β")
    a, b = a.to(c), b.to(c)
    return _closed(torch.exp((torch.log(a) - torch.log(c) + torch.log(nn) / k) / b), lag_min)


def window_logarithmic(n, alpha, *, A, gamma, C, lag_min: float = 1.0) -> torch.Tensor:
    """Closed form for f(ℓ) = A (log ℓ)^{−γ}: H_N = exp((A/C)^{1/γ} N^{1/(γ κ_α)}) (exponential).

    Args:
        n, alpha: N ≥ 1, α ∈ (1, 2]; A > 0, gamma: γ > 0, C > 0; all broadcast together.
        lag_min: windows shorter than ℓ_min are 0 (the root always exceeds 1).

    Returns:
        Tensor of the broadcast shape; +inf once the window overflows the dtype.

    Raises:
        ValueError: N < 1, α ∉ (1, 2], A, γ or C ≤ 0, NaN.

    >>> round(window_logarithmic(16.0, 2.0, A=1.0, gamma=1.0, C=0.5).item(), 6)  # exp(2 · 16^{1/2})
    2980.957987
    """
    nn, k, c = _pairs(n, alpha, C, A, gamma)
    a, g = _tensors(A, gamma, names=("A", "gamma"))
    _check_positive(a, "A")
    _check_positive(g, "gamma γ")
    a, g = a.to(c), g.to(c)
    log_root = torch.exp((torch.log(a) - torch.log(c) + torch.log(nn) / k) / g)
    return _closed(torch.exp(log_root), lag_min)


#: The closed forms by regime name (the names :mod:`horizon_lib.regimes` uses).
CLOSED_FORMS = {
    "exponential": window_exponential,
    "power": window_power_law,
    "logarithmic": window_logarithmic,
}
