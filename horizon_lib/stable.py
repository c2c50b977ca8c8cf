"""α-stable noise: the heavy-tailed gradient-noise model of the paper (theory/noise).

**Parameterization.** Every draw is in Nolan's S0 parameterization, S(α, β, σ, μ; 0): with
Z ~ S(α, β; 0) standard, Y = σ Z + μ, and the characteristic function of Z is

    E e^{iuZ} = exp(−|u|^α [1 + iβ sign(u) tan(πα/2) (|u|^{1−α} − 1)])    α ≠ 1,
    E e^{iuZ} = exp(−|u|   [1 + iβ sign(u) (2/π) log|u|])                α = 1.

S0 is continuous in all four parameters (through α = 1 too), so it is the one to sample in.
The more common S1 (Samorodnitsky–Taqqu; scipy's default) has the same α, β, σ and the
location μ₁ = μ₀ − βσ tan(πα/2) (α ≠ 1), μ₁ = μ₀ − (2/π)βσ log σ (α = 1): convert with
:func:`s1_to_s0_location` / :func:`s0_to_s1_location`. For β = 0 (SαS) the two coincide and

    E exp(iuX) = exp(−σ^α |u|^α),      0 < α ≤ 2,

so α = 2 is a Gaussian of variance 2σ² and α = 1 a Cauchy variable of scale σ.

**Method.** Chambers–Mallows–Stuck with V ~ U(−π/2, π/2), W ~ Exp(1). Writing b = β tan(πα/2),

    A = (sin αV + b cos αV) / cos V,    Z = W cos V / (cos((1 − α)V) + b sin((1 − α)V)),
    X₀ = A · expm1(((α − 1)/α) log Z) + (sin αV − 2b sin((α + 1)V/2) sin((α − 1)V/2)) / cos V,

which is S1's CMS draw A·Z^{(α−1)/α} minus b, rearranged so that no two large terms cancel:
each product stays finite as α → 1 (b ~ 1/(α − 1) meets factors of order α − 1), so the draw
is continuous through α = 1 in float32 as in float64. Computing "S1 minus b" directly loses all
digits in float32 within 10⁻⁶ of α = 1. At α = 1 the exact form is Weron's

    X₀ = (2/π) [(π/2 + βV) tan V − β log((π/2) W cos V / (π/2 + βV))].

The symmetric case β = 0 has its own fast path, X = sin(αV)/cos V · Z^{(α−1)/α} (exactly tan V
at α = 1 and 2√W sin V at α = 2), computed in place on the two uniform buffers. On the CPU the
draw is processed in blocks of 2¹⁶ elements so that its passes stay in cache; the uniforms are
drawn in one call first, so the result does not depend on the block size.

**Float32 traps handled.** float32(π/2) > π/2, so V is clamped to the largest float strictly
below π/2 (an unclamped angle gives cos V ≤ 0 and a NaN about once in 5·10⁷ draws); W = 0 (the
uniform's zero) is replaced by half the uniform's grid step, the midpoint of the event it stands
for. Float32 draws come from uniforms on a 2⁻²⁴ grid, so they resolve the law down to tail
probabilities of about 10⁻⁷; use float64 for rarer events.

References: Chambers, Mallows & Stuck (1976), JASA 71, 340–344; Weron (1996), Stat. Prob. Lett.
28, 165–171; Nolan (2020), *Univariate Stable Distributions*, §1.3 and §3.3.1.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ._checks import as_tensor, check_finite

__all__ = [
    "check_alpha",
    "check_beta",
    "sample_stable",
    "sample_symmetric_stable",
    "s1_to_s0_location",
    "s0_to_s1_location",
]


def check_alpha(alpha: torch.Tensor, *, low: float = 0.0, low_open: bool = True,
                name: str = "alpha") -> None:
    """Raise ``ValueError`` unless every α lies in (low, 2] (or [low, 2] when ``low_open``
    is off)."""
    check_finite(alpha, name)
    bad = (alpha <= low) if low_open else (alpha < low)
    if bool(bad.any()) or bool((alpha > 2).any()):
        bracket = "(" if low_open else "["
        raise ValueError(
            f"{name} must lie in {bracket}{low:g}, 2]; got {alpha.flatten()[:8].tolist()}"
        )


def check_beta(beta: torch.Tensor, name: str = "beta") -> None:
    """Raise ``ValueError`` unless every skewness β lies in [−1, 1]."""
    check_finite(beta, name)
    if bool((beta.abs() > 1).any()):
        raise ValueError(f"{name} (skewness β) must lie in [-1, 1]; "
                         f"got {beta.flatten()[:8].tolist()}")


def _check_scale(scale: torch.Tensor) -> None:
    check_finite(scale, "scale")
    if bool((scale <= 0).any()):
        raise ValueError(f"scale σ must be > 0; got {scale.flatten()[:8].tolist()}")


def _resolve(args, dtype, device):
    """dtype/device: given ones win, else those of the floating tensor arguments, else
    float32/CPU."""
    tensors = [a for a in args if torch.is_tensor(a)]
    if dtype is None:
        floats = [t.dtype for t in tensors if t.is_floating_point()]
        dtype = floats[0] if floats else torch.float32
        for d in floats[1:]:
            dtype = torch.promote_types(dtype, d)
    if device is None:
        device = tensors[0].device if tensors else torch.device("cpu")
    return dtype, torch.device(device)


#: Elements per block on the CPU: the dozen in-place passes of a draw then stay in the L2 cache.
_BLOCK = 1 << 16


def _prepare_uniforms(v: torch.Tensor, w: torch.Tensor) -> None:
    """In place: U₁ ↦ V ~ U(−π/2, π/2) on the open interval, U₂ ↦ W = −log(1 − U₂) ~ Exp(1) > 0."""
    half_pi = torch.tensor(math.pi / 2, dtype=v.dtype)
    lim = float(torch.nextafter(half_pi, torch.zeros_like(half_pi)))  # float32(π/2) > π/2
    v.sub_(0.5).mul_(math.pi).clamp_(-lim, lim)
    w.neg_().log1p_().neg_().clamp_min_(torch.finfo(w.dtype).eps / 4)  # U = 0 ↦ mid-cell


def _tan_half_pi_alpha(a):
    """tan(πα/2) as −1/tan(π(α − 1)/2): accurate near α = 1 (α − 1 is exact), exactly 0 at α = 2."""
    if not torch.is_tensor(a):
        return 0.0 if a == 2.0 else -1.0 / math.tan(math.pi * (a - 1.0) / 2)
    t = -1.0 / torch.tan((a - 1.0) * (math.pi / 2))
    return torch.where(a == 2.0, torch.zeros_like(t), t)


def _symmetric_kernel(a, v: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Standard SαS by CMS into ``out``, destroying v and w:
    sin(αV)/cos V · (W cos V/cos((1−α)V))^{1−1/α}."""
    cos_v = torch.cos(v)
    torch.mul(v, 1.0 - a, out=out).cos_()
    w.mul_(cos_v).div_(out).log_().mul_((a - 1.0) / a).exp_()
    torch.mul(v, a, out=out).sin_()
    return out.div_(cos_v).mul_(w)


def _general_kernel(a, b, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Standard S(α, β; 0) for α ≠ 1 in the cancellation-free form of the module docstring."""
    bt = b * _tan_half_pi_alpha(a)
    cos_v = torch.cos(v)
    av, dv = v * a, v * (1.0 - a)
    log_z = torch.log(w * cos_v / (torch.cos(dv) + bt * torch.sin(dv)))
    big = (torch.sin(av) + bt * torch.cos(av)) / cos_v * torch.expm1(log_z * ((a - 1.0) / a))
    cos_gap = -2.0 * torch.sin(v * ((a + 1.0) / 2)) * torch.sin(v * ((a - 1.0) / 2))
    return big + (torch.sin(av) + bt * cos_gap) / cos_v


def _weron_alpha_one(b, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Standard S(1, β; 0) (= S1 at σ = 1), Weron's exact α = 1 form."""
    bent = math.pi / 2 + b * v
    log_term = torch.log((math.pi / 2) * w * torch.cos(v) / bent)
    return (bent * torch.tan(v) - b * log_term) * (2 / math.pi)


def sample_stable(
    alpha,
    beta=0.0,
    size: Sequence[int] | int = (),
    *,
    scale=1.0,
    loc=0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw α-stable variables S(α, β, σ, μ; 0) (Nolan's S0) by Chambers–Mallows–Stuck.

    Args:
        alpha: tail index α ∈ (0, 2] (float or tensor; broadcasts).
        beta: skewness β ∈ [−1, 1] (broadcasts); β = 0 takes the symmetric fast path.
        size: leading shape; the result has shape ``broadcast(size, alpha, beta, scale, loc)``,
            so one call draws for many (α, β, σ, μ) at once.
        scale: σ > 0 (broadcasts).
        loc: the S0 location μ₀ (broadcasts); from an S1 location use :func:`s1_to_s0_location`.
        generator: the ``torch.Generator`` the draws come from (keyword-only; no global seeding).
        dtype, device: default to those of the tensor arguments, else float32 on the CPU
            (float16 and bfloat16 are drawn in float32 and rounded).

    Returns:
        Tensor of the broadcast shape (sample dimensions as given by ``size``).

    Raises:
        ValueError: α ∉ (0, 2], β ∉ [−1, 1], σ ≤ 0, or a non-finite parameter.

    The standard draw is continuous in α through α = 1 (see the module docstring); α = 1 itself
    uses Weron's exact form, not an interpolation.

    >>> g = torch.Generator().manual_seed(0)
    >>> sample_stable(1.0, 0.5, (2, 3), generator=g).shape
    torch.Size([2, 3])
    """
    dtype, device = _resolve((alpha, beta, scale, loc), dtype, device)
    if torch.finfo(dtype).bits < 32 if dtype.is_floating_point else False:
        # float16 / bfloat16 uniforms sit on a grid of 2⁻¹¹ / 2⁻⁸: the tails would be cut off
        # (bfloat16 draws take a few thousand distinct values), so draw in float32 and round
        return sample_stable(alpha, beta, size, scale=scale, loc=loc, generator=generator,
                             dtype=torch.float32, device=device).to(dtype)
    a = as_tensor(alpha, dtype=dtype, device=device)
    b = as_tensor(beta, dtype=dtype, device=device)
    s = as_tensor(scale, dtype=dtype, device=device)
    m = as_tensor(loc, dtype=dtype, device=device)
    check_alpha(a)
    check_beta(b)
    _check_scale(s)
    check_finite(m, "loc")
    size = (size,) if isinstance(size, int) else tuple(size)
    shape = torch.broadcast_shapes(size, a.shape, b.shape, s.shape, m.shape)
    numel = math.prod(shape)
    symmetric = not bool((b != 0).any())
    flat = [_flat(t, shape) for t in (a, b, s, m)]
    u = torch.rand((2, numel), generator=generator, dtype=dtype, device=device)
    out = torch.empty(numel, dtype=dtype, device=device)
    block = _BLOCK if device.type == "cpu" else max(numel, 1)
    for lo in range(0, numel, block):
        hi = min(numel, lo + block)
        a_, b_, s_, m_ = (t[lo:hi] if torch.is_tensor(t) else t for t in flat)
        v, w, x = u[0, lo:hi], u[1, lo:hi], out[lo:hi]
        _prepare_uniforms(v, w)
        if symmetric:
            _symmetric_kernel(a_, v, w, x)
        else:
            x.copy_(_skewed(a_, b_, v, w))
        _affine(x, s_, m_)
    return out.reshape(shape)


def _flat(t: torch.Tensor, shape):
    """A float for a one-element parameter, else the parameter broadcast to ``shape`` and
    flattened."""
    return float(t) if t.numel() == 1 else t.expand(shape).reshape(-1)


def _skewed(a, b, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Standard S(α, β; 0) for β ≠ 0 somewhere: Weron's form where α = 1, the general one
    elsewhere. Float32 uniforms are computed in float64: the general form divides by
    cos((1−α)V) + β tan(πα/2) sin((1−α)V), which cancels to 0 at one end of V's range, and at the
    outermost float32 grid points of V it gave ±inf (about once in 10⁷ draws near α = 1, β = ±1)."""
    if v.dtype == torch.float32:
        a, b = (t.double() if torch.is_tensor(t) else t for t in (a, b))
        return _skewed(a, b, v.double(), w.double()).float()
    if not torch.is_tensor(a):
        return _weron_alpha_one(b, v, w) if a == 1.0 else _general_kernel(a, b, v, w)
    one = a == 1.0
    x = _general_kernel(torch.where(one, torch.full_like(a, 0.5), a), b, v, w)
    return torch.where(one, _weron_alpha_one(b, v, w), x) if bool(one.any()) else x


def _affine(x: torch.Tensor, s, m) -> torch.Tensor:
    """σx + μ in place (σ, μ floats or flat tensors of x's length)."""
    if torch.is_tensor(s) or s != 1.0:
        x.mul_(s)
    if torch.is_tensor(m) or m != 0.0:
        x.add_(m)
    return x


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
    """Draw symmetric α-stable variables SαS(σ) + m: :func:`sample_stable` with β = 0.

    Args:
        alpha: tail index α ∈ (0, 2]; a float or a tensor that broadcasts against ``size``.
        size: leading shape of the draw; the result has shape
            ``broadcast(size, alpha, scale, loc)``.
        scale: scale σ > 0 of the characteristic function exp(−σ^α |u|^α) (broadcasts).
        loc: location m (broadcasts).
        generator: the ``torch.Generator`` the draws come from (keyword-only; never global seeding).
        dtype, device: default to those of the tensor arguments, else float32 on the CPU.

    Returns:
        Tensor of the broadcast shape, of ``dtype`` on ``device``.

    Raises:
        ValueError: α outside (0, 2], σ ≤ 0, or a non-finite parameter.

    The α = 1 case is exactly σ tan V (Cauchy); α = 2 gives 2σ √W sin V, a Gaussian of variance
    2σ² (theory/noise).

    >>> g = torch.Generator().manual_seed(0)
    >>> x = sample_symmetric_stable(1.5, (2, 3), generator=g)
    >>> tuple(x.shape), x.dtype
    ((2, 3), torch.float32)
    """
    return sample_stable(alpha, 0.0, size, scale=scale, loc=loc, generator=generator,
                         dtype=dtype, device=device)


def s1_to_s0_location(alpha, beta, scale, loc):
    """The S0 location μ₀ of the law whose S1 location is μ₁ (α, β, σ shared).

    μ₀ = μ₁ + βσ tan(πα/2) for α ≠ 1 and μ₀ = μ₁ + (2/π)βσ log σ for α = 1 (Nolan 2020,
    Prop. 1.7). Floats or broadcasting tensors; the result follows ``torch`` broadcasting.
    """
    return loc + _s0_minus_s1(alpha, beta, scale)


def s0_to_s1_location(alpha, beta, scale, loc):
    """The S1 location μ₁ = μ₀ − βσ tan(πα/2) (α ≠ 1), μ₀ − (2/π)βσ log σ (α = 1)."""
    return loc - _s0_minus_s1(alpha, beta, scale)


def _s0_minus_s1(alpha, beta, scale):
    if not any(torch.is_tensor(x) for x in (alpha, beta, scale)):
        if alpha == 1.0:
            return (2 / math.pi) * beta * scale * math.log(scale)
        return beta * scale * _tan_half_pi_alpha(float(alpha))
    dtype, device = _resolve((alpha, beta, scale), None, None)
    a, b, s = (as_tensor(x, dtype=dtype, device=device) for x in (alpha, beta, scale))
    safe = torch.where(a == 1.0, torch.full_like(a, 0.5), a)
    return torch.where(a == 1.0, (2 / math.pi) * b * s * torch.log(s),
                       b * s * _tan_half_pi_alpha(safe))
