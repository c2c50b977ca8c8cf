"""The detection constant ε(δ, α) and the detection power it promises (chapter concentration).

A lag is detected at sample size N when the empirical mean of its statistic lands within |m| of
the true mean m, i.e. |X̄_N − m| < |m| (the estimate has the right sign and at most 100% relative
error). For i.i.d. SαS(σ) noise, X̄_N − m = σ N^{−1/κ_α} S with S unit SαS (theory/noise), so

    P(detect) = P(|S| < SNR),     SNR = |m| N^{1/κ_α} / σ,

and requiring P(detect) ≥ 1 − δ gives the principled threshold

    SNR ≥ ε(δ, α) = q_{1−δ}(|S|) = F_S⁻¹(1 − δ/2),

the (1 − δ) quantile of the modulus of a unit SαS variable (F_S its distribution function; S is
symmetric). The minimal sample size is then N = (ε σ / |m|)^{κ_α}. The paper's release uses a fixed
SNR threshold instead (0.1, later 20); this module gives the δ-calibrated one and the power curve it
promises; ``horizon_lib.detection.detection_probability`` measures that power by Monte Carlo.

Values: ε(δ, 2) = √2 Φ⁻¹(1 − δ/2) (Gaussian of variance 2), ε(δ, 1) = tan(π(1 − δ)/2) (Cauchy),
otherwise ``scipy.stats.levy_stable.ppf`` (cached per (δ, α)). scipy evaluates 0 < |α − 1| ≤ 0.005
as α = 1, so there ε is interpolated linearly between α = 1 and |α − 1| = 0.006 (continuous in α;
the quantile's curvature over that span is far below its slope).
"""

from __future__ import annotations

import functools
import math

import torch
from scipy import stats

from ._checks import check_finite
from .stable import check_alpha

__all__ = ["detection_epsilon", "detection_power"]


def _check_delta(delta: float) -> float:
    d = float(delta)
    if not (math.isfinite(d) and 0.0 < d < 1.0):
        raise ValueError("delta (the allowed miss probability δ) must lie in (0, 1); "
                         f"got {delta!r}")
    return d


@functools.lru_cache(maxsize=4096)
def _epsilon(delta: float, alpha: float) -> float:
    if alpha == 2.0:
        return math.sqrt(2.0) * float(stats.norm.ppf(1.0 - delta / 2.0))
    if alpha == 1.0:
        return math.tan(math.pi * (1.0 - delta) / 2.0)
    if abs(alpha - 1.0) < _SNAP_EDGE:
        # scipy evaluates 0 < |α − 1| ≤ 0.005 as α = 1 (a 2.4 % jump at δ = 0.01 just above
        # 1.005, which κ_α ≈ 200 turns into a factor ~100 in N): interpolate linearly between
        # the exact Cauchy value and scipy's at |α − 1| = _SNAP_EDGE, where it is not snapped
        edge = 1.0 + math.copysign(_SNAP_EDGE, alpha - 1.0)
        w = abs(alpha - 1.0) / _SNAP_EDGE
        return (1.0 - w) * _epsilon(delta, 1.0) + w * _epsilon(delta, edge)
    return float(stats.levy_stable.ppf(1.0 - delta / 2.0, alpha, 0.0))


#: Below this distance from α = 1 scipy's levy_stable snaps to α = 1 (it does so up to 0.005).
_SNAP_EDGE = 0.006


def detection_epsilon(delta: float, alpha):
    """ε(δ, α) = q_{1−δ}(|S|), S ~ SαS(1): the SNR at which detection succeeds with prob. 1 − δ.

    Args:
        delta: allowed miss probability δ ∈ (0, 1).
        alpha: tail index α ∈ (0, 2], a float or a tensor of any shape (e.g. (lag,) of α̂).

    Returns:
        A float for a float α, else a tensor of α's shape, dtype and device.

    Raises:
        ValueError: δ ∉ (0, 1) or α ∉ (0, 2] or not finite.

    >>> round(detection_epsilon(0.05, 2.0), 4)   # √2 · 1.95996
    2.7718
    >>> round(detection_epsilon(0.5, 1.0), 4)    # Cauchy: tan(π/4)
    1.0
    """
    d = _check_delta(delta)
    if not torch.is_tensor(alpha):
        a = float(alpha)
        if not (math.isfinite(a) and 0.0 < a <= 2.0):
            raise ValueError(f"alpha must lie in (0, 2]; got {alpha!r}")
        return _epsilon(d, a)
    check_alpha(alpha)
    flat = alpha.detach().reshape(-1).cpu().tolist()
    values = [_epsilon(d, float(a)) for a in flat]
    dtype = alpha.dtype if alpha.is_floating_point() else torch.float64
    return torch.tensor(values, dtype=dtype, device=alpha.device).reshape(alpha.shape)


def detection_power(alpha: float, snr):
    """Theoretical detection power P(|S| < SNR) = 2 F_S(SNR) − 1 for unit SαS S.

    Args:
        alpha: tail index α ∈ (0, 2] (a float).
        snr: SNR ≥ 0 = |m| N^{1/κ_α}/σ, a float or an array/tensor (evaluated on the CPU).

    Returns:
        numpy array (or float) of the power at each SNR.

    Raises:
        ValueError: α ∉ (0, 2] or a negative or non-finite SNR.
    """
    a = float(alpha)
    if not (math.isfinite(a) and 0.0 < a <= 2.0):
        raise ValueError(f"alpha must lie in (0, 2]; got {alpha!r}")
    s = torch.as_tensor(snr, dtype=torch.float64).cpu()
    check_finite(s, "snr")
    if bool((s < 0).any()):
        raise ValueError("snr must be ≥ 0")
    s = s.numpy()
    if a == 2.0:
        out = 2.0 * stats.norm.cdf(s / math.sqrt(2.0)) - 1.0
    elif a == 1.0:
        out = 2.0 * stats.cauchy.cdf(s) - 1.0
    else:
        out = 2.0 * stats.levy_stable.cdf(s, a, 0.0) - 1.0
    return out
