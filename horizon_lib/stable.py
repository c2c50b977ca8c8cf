"""Symmetric α-stable noise: the heavy-tailed gradient-noise model of the paper (THEORY.md §3).

A symmetric α-stable variable SαS(σ) has characteristic function

    E exp(iuX) = exp(−σ^α |u|^α),      0 < α ≤ 2,

so α = 2 is a Gaussian of variance 2σ² and α = 1 a Cauchy variable of scale σ. Draws use the
Chambers–Mallows–Stuck (CMS) representation: with V ~ U(−π/2, π/2) and W ~ Exp(1) independent,

    X = σ · sin(αV) / cos(V)^{1/α} · ( cos((1 − α)V) / W )^{(1 − α)/α}.

References: Chambers, Mallows & Stuck (1976), "A method for simulating stable random
variables", JASA 71; Weron (1996), "On the Chambers–Mallows–Stuck method", Stat. Prob. Lett. 28.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ._checks import as_tensor, check_finite

__all__ = ["sample_symmetric_stable", "check_alpha"]


def check_alpha(alpha: torch.Tensor, *, low: float = 0.0, low_open: bool = True,
                name: str = "alpha") -> None:
    """Raise ``ValueError`` unless every α lies in (low, 2] (or [low, 2] when ``low_open`` is off)."""
    check_finite(alpha, name)
    bad = (alpha <= low) if low_open else (alpha < low)
    if bool(bad.any()) or bool((alpha > 2).any()):
        bracket = "(" if low_open else "["
        raise ValueError(
            f"{name} must lie in {bracket}{low:g}, 2]; got {alpha.flatten()[:8].tolist()}"
        )


def _open_half_pi(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The largest value of ``dtype`` strictly below π/2 (float32(π/2) itself exceeds π/2)."""
    half_pi = torch.tensor(math.pi / 2, dtype=dtype, device=device)
    return torch.nextafter(half_pi, torch.zeros_like(half_pi))


def _uniform_angle_and_exponential(shape, *, generator, dtype, device):
    """V ~ U(−π/2, π/2) clamped to the open interval, W ~ Exp(1) bounded away from 0."""
    lim = _open_half_pi(dtype, device)
    v = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    v = (v - 0.5) * math.pi
    v = torch.clamp(v, -lim, lim)
    w = torch.empty(shape, dtype=dtype, device=device).exponential_(generator=generator)
    w = torch.clamp_min(w, torch.finfo(dtype).tiny)
    return v, w


def sample_symmetric_stable(
    alpha,
    size: Sequence[int] | int = (),
    *,
    scale=1.0,
    loc=0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw symmetric α-stable variables SαS(σ) + m by Chambers–Mallows–Stuck.

    Args:
        alpha: tail index α ∈ (0, 2]; a float or a tensor that broadcasts against ``size``.
        size: leading shape of the draw; the result has shape ``broadcast(size, alpha, scale, loc)``.
        scale: scale σ > 0 of the characteristic function exp(−σ^α |u|^α) (broadcasts).
        loc: location m (broadcasts).
        generator: the ``torch.Generator`` the draws come from (keyword-only; never global seeding).
        dtype, device: default to those of a tensor ``alpha``, else float32 on the CPU.

    Returns:
        Tensor of the broadcast shape, of ``dtype`` on ``device``.

    Raises:
        ValueError: α outside (0, 2], σ ≤ 0, or a non-finite parameter.

    The α = 1 case is exactly σ tan V (Cauchy); α = 2 gives 2σ √W sin V, a Gaussian of variance
    2σ² (THEORY.md §3).

    >>> g = torch.Generator().manual_seed(0)
    >>> x = sample_symmetric_stable(1.5, (2, 3), generator=g)
    >>> tuple(x.shape), x.dtype
    ((2, 3), torch.float32)
    """
    if dtype is None:
        dtype = alpha.dtype if torch.is_tensor(alpha) and alpha.is_floating_point() else torch.float32
    if device is None:
        device = alpha.device if torch.is_tensor(alpha) else torch.device("cpu")
    a = as_tensor(alpha, dtype=dtype, device=device)
    s = as_tensor(scale, dtype=dtype, device=device)
    m = as_tensor(loc, dtype=dtype, device=device)
    check_alpha(a)
    check_finite(s, "scale")
    check_finite(m, "loc")
    if bool((s <= 0).any()):
        raise ValueError(f"scale σ must be > 0; got {s.flatten()[:8].tolist()}")
    size = (size,) if isinstance(size, int) else tuple(size)
    shape = torch.broadcast_shapes(size, a.shape, s.shape, m.shape)

    v, w = _uniform_angle_and_exponential(shape, generator=generator, dtype=dtype, device=device)
    if a.numel() == 1:
        x = _cms_symmetric_scalar(float(a), v, w)
    else:
        x = _cms_symmetric_tensor(a, v, w)
    return x * s + m


def _cms_symmetric_scalar(alpha: float, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """CMS for one α; the special cases avoid the 0·∞ forms of the general formula."""
    if alpha == 1.0:
        return torch.tan(v)
    if alpha == 2.0:
        return 2.0 * torch.sqrt(w) * torch.sin(v)
    cos_v = torch.cos(v)
    x = torch.sin(alpha * v) / cos_v.pow(1.0 / alpha)
    return x * (torch.cos((1.0 - alpha) * v) / w).pow((1.0 - alpha) / alpha)


def _cms_symmetric_tensor(alpha: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """CMS with a broadcasting tensor of α; α = 1 entries take the exact Cauchy form tan V."""
    cos_v = torch.cos(v)
    x = torch.sin(alpha * v) / cos_v.pow(1.0 / alpha)
    x = x * (torch.cos((1.0 - alpha) * v) / w).pow((1.0 - alpha) / alpha)
    return torch.where(alpha == 1.0, torch.tan(v), x)
