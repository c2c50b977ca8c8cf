"""Time-scale spectra and the envelopes they make: why f decays as it does (theory/window).

A network whose units forget at time scales τ_q has an envelope that is a mixture of
exponentials, f(ℓ) ≈ Σ_q c_q e^{−ℓ/τ_q} ≈ ∫ e^{−ℓ/τ} p(τ) dτ = E[e^{−ℓ/T}], T ~ p. The shape
of p decides the decay law of f, hence the regime of the learnability window:

* **narrow** (a point mass at τ): f(ℓ) = e^{−ℓ/τ}, exponential;
* **Pareto tail** P(T > τ) = (τ_min/τ)^β, τ ≥ τ_min: substituting u = ℓ/τ,
  f(ℓ) = Γ(β + 1) (τ_min/ℓ)^β P(β, ℓ/τ_min), with P the regularised lower incomplete gamma
  function, so f ~ Γ(β + 1) τ_min^β ℓ^{−β} (power law; theory/window writes the amplitude
  as β Γ(β) τ_min^β, the same number);
* **log-type tail** P(T > τ) = (y₀/log τ)^γ, τ ≥ e^{y₀} (T = e^Y with Y Pareto(γ, y₀)):
  f(ℓ) = ∫₀¹ exp(−ℓ exp(−y₀ z^{−1/γ})) dz ~ P(T > ℓ) = y₀^γ (log ℓ)^{−γ} (logarithmic decay).
  The approach is slow: corrections are of relative order γ γ_E / log ℓ (γ_E Euler's
  constant), so fitted indices converge to γ only as log ℓ grows.

Each spectrum gives its exact envelope (:meth:`envelope`), the asymptotic law's parameters
(:meth:`asymptote`, the keywords the closed forms of ``window.py`` take) and time scales for a
finite set of units (:meth:`quantile`, :func:`sample_timescales`, :func:`stratified_timescales`),
whose mixture :func:`mixture_envelope` is what a network with H units would show.
:func:`quadrature_envelope` computes E[e^{−ℓ/T}] for any spectrum from its tail quantile
alone, the reference that does not use a spectrum's own closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate, special

__all__ = [
    "NarrowSpectrum",
    "ParetoSpectrum",
    "LogParetoSpectrum",
    "sample_timescales",
    "stratified_timescales",
    "mixture_envelope",
    "quadrature_envelope",
]


def _lags(lags) -> tuple[np.ndarray, torch.dtype, torch.device]:
    dtype = lags.dtype if torch.is_tensor(lags) and lags.is_floating_point() else torch.float64
    device = lags.device if torch.is_tensor(lags) else torch.device("cpu")
    x = np.asarray(lags.detach().cpu() if torch.is_tensor(lags) else lags, dtype=np.float64)
    if x.size == 0:
        raise ValueError("lags must not be empty")
    if np.isnan(x).any() or (x < 0).any() or np.isinf(x).any():
        raise ValueError("lags must be finite and ≥ 0")
    return x, dtype, device


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
    return v


def _uniform(u) -> torch.Tensor:
    u = torch.as_tensor(u, dtype=u.dtype if torch.is_tensor(u) else torch.float64)
    if bool(torch.isnan(u).any()) or bool(((u < 0) | (u >= 1)).any()):
        raise ValueError("quantile levels u must lie in [0, 1)")
    return u


def _tail(z) -> torch.Tensor:
    z = torch.as_tensor(z, dtype=z.dtype if torch.is_tensor(z) else torch.float64)
    if bool(torch.isnan(z).any()) or bool(((z <= 0) | (z > 1)).any()):
        raise ValueError("upper-tail probabilities z must lie in (0, 1]")
    return z


@dataclass(frozen=True)
class NarrowSpectrum:
    """All units share one time scale τ: f(ℓ) = e^{−ℓ/τ} (exponential regime)."""

    tau: float

    regime = "exponential"

    def __post_init__(self):
        _positive(self.tau, "tau τ")

    def quantile(self, u) -> torch.Tensor:
        """τ for every level u ∈ [0, 1) (a point mass)."""
        return torch.full_like(_uniform(u), self.tau)

    def tail_quantile(self, z) -> torch.Tensor:
        """τ for every upper-tail probability z ∈ (0, 1] (a point mass)."""
        return torch.full_like(_tail(z), self.tau)

    def envelope(self, lags) -> torch.Tensor:
        """f(ℓ) = e^{−ℓ/τ}, shape of ``lags``."""
        x, dtype, device = _lags(lags)
        return torch.as_tensor(np.exp(-x / self.tau), dtype=dtype, device=device)

    def asymptote(self) -> dict:
        """Keywords of :func:`horizon_lib.window.window_exponential`: A, tau."""
        return {"A": 1.0, "tau": float(self.tau)}


@dataclass(frozen=True)
class ParetoSpectrum:
    """Pareto time scales, P(T > τ) = (τ_min/τ)^β: f(ℓ) ~ Γ(β + 1) τ_min^β ℓ^{−β} (power law)."""

    beta: float
    tau_min: float = 1.0

    regime = "power"

    def __post_init__(self):
        _positive(self.beta, "beta β")
        _positive(self.tau_min, "tau_min")

    def quantile(self, u) -> torch.Tensor:
        """τ(u) = τ_min (1 − u)^{−1/β}."""
        return self.tail_quantile(1.0 - _uniform(u))

    def tail_quantile(self, z) -> torch.Tensor:
        """τ with P(T > τ) = z ∈ (0, 1]: τ_min z^{−1/β} (no rounding of 1 − z near the tail)."""
        return self.tau_min * torch.pow(_tail(z), -1.0 / self.beta)

    def envelope(self, lags) -> torch.Tensor:
        """Exact f(ℓ) = Γ(β + 1) (τ_min/ℓ)^β P(β, ℓ/τ_min), f(0) = 1."""
        x, dtype, device = _lags(lags)
        b, s = self.beta, x / self.tau_min
        with np.errstate(divide="ignore", invalid="ignore"):
            log_f = special.gammaln(b + 1) - b * np.log(s) + np.log(special.gammainc(b, s))
        f = np.where(s > 0, np.exp(log_f), 1.0)
        return torch.as_tensor(f, dtype=dtype, device=device)

    def asymptote(self) -> dict:
        """Keywords of :func:`horizon_lib.window.window_power_law`: A = Γ(β+1) τ_min^β, beta."""
        return {"A": float(math.gamma(self.beta + 1) * self.tau_min ** self.beta),
                "beta": float(self.beta)}


@dataclass(frozen=True)
class LogParetoSpectrum:
    """Log-type tail, P(T > τ) = (y₀/log τ)^γ for τ ≥ e^{y₀}: f(ℓ) ~ y₀^γ (log ℓ)^{−γ}."""

    gamma: float
    log_tau_min: float = 1.0

    regime = "logarithmic"

    def __post_init__(self):
        _positive(self.gamma, "gamma γ")
        _positive(self.log_tau_min, "log_tau_min y₀")

    def quantile(self, u) -> torch.Tensor:
        """τ(u) = exp(y₀ (1 − u)^{−1/γ}) (+inf once it overflows the dtype: a unit that never
        forgets)."""
        return self.tail_quantile(1.0 - _uniform(u))

    def tail_quantile(self, z) -> torch.Tensor:
        """τ with P(T > τ) = z ∈ (0, 1]: exp(y₀ z^{−1/γ}) (+inf once it overflows)."""
        return torch.exp(self.log_tau_min * torch.pow(_tail(z), -1.0 / self.gamma))

    def envelope(self, lags, *, rtol: float = 1e-10) -> torch.Tensor:
        """Exact f(ℓ) = ∫₀¹ exp(−ℓ exp(−y₀ z^{−1/γ})) dz: no closed form, so this is
        :func:`quadrature_envelope` of this spectrum."""
        return quadrature_envelope(self, lags, rtol=rtol)

    def asymptote(self) -> dict:
        """Keywords of :func:`horizon_lib.window.window_logarithmic`: A = y₀^γ, gamma."""
        return {"A": float(self.log_tau_min ** self.gamma), "gamma": float(self.gamma)}


def sample_timescales(spectrum, n_units: int, *, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """Draw H i.i.d. unit time scales τ_q from ``spectrum`` by inverse transform.

    Args:
        spectrum: a spectrum of this module; n_units: H ≥ 1.
        generator: source of randomness (keyword-only); dtype, device: of the result.

    Returns:
        Tensor (hidden,).

    Raises:
        ValueError: H < 1.
    """
    if int(n_units) < 1:
        raise ValueError(f"n_units H must be ≥ 1; got {n_units}")
    u = torch.rand(int(n_units), generator=generator, dtype=dtype, device=device)
    return spectrum.quantile(u)


def stratified_timescales(spectrum, n_units: int, *, dtype: torch.dtype = torch.float64,
                          device: torch.device | str = "cpu") -> torch.Tensor:
    """Deterministic unit time scales τ_q = F⁻¹((q − ½)/H), q = 1..H: the spectrum's H-quantiles.

    Returns:
        Tensor (hidden,). Raises: ValueError for H < 1.

    >>> stratified_timescales(ParetoSpectrum(1.0), 2).tolist()
    [1.3333333333333333, 4.0]
    """
    if int(n_units) < 1:
        raise ValueError(f"n_units H must be ≥ 1; got {n_units}")
    u = (torch.arange(int(n_units), dtype=dtype, device=device) + 0.5) / int(n_units)
    return spectrum.quantile(u)


def mixture_envelope(lags, tau, weights=None) -> torch.Tensor:
    """f(ℓ) = Σ_q w_q e^{−ℓ/τ_q} / Σ_q w_q, computed with a log-sum-exp (no underflow to 0 early).

    Args:
        lags: ℓ ≥ 0, shape (lag,).
        tau: τ_q > 0 (+inf allowed: a unit that never forgets), shape (..., hidden).
        weights: w_q ≥ 0 (not all zero), broadcasting with ``tau``; default uniform.

    Returns:
        Tensor (..., lag), dtype/device of ``tau``.

    Raises:
        ValueError: τ ≤ 0 or NaN, lags < 0 or NaN, negative or all-zero weights, empty input.

    >>> mixture_envelope([0.0, 1.0], torch.tensor([1.0, math.inf], dtype=torch.float64)).tolist()
    [1.0, 0.6839397205857212]
    """
    t = torch.as_tensor(tau, dtype=torch.float64) if not torch.is_tensor(tau) else tau
    if t.numel() == 0:
        raise ValueError("tau must not be empty")
    if bool(torch.isnan(t).any()) or bool((t <= 0).any()):
        raise ValueError("time scales τ_q must be > 0 and not NaN")
    x, _, _ = _lags(lags)
    ell = torch.as_tensor(x, dtype=t.dtype, device=t.device).reshape(-1)
    w = torch.ones_like(t) if weights is None else torch.as_tensor(weights, dtype=t.dtype,
                                                                    device=t.device)
    if bool(torch.isnan(w).any()) or bool((w < 0).any()):
        raise ValueError("weights must be ≥ 0 and not NaN")
    w = torch.broadcast_to(w, t.shape)
    total = w.sum(-1, keepdim=True)
    if bool((total <= 0).any()):
        raise ValueError("weights must not all be zero")
    log_terms = torch.log(w / total).unsqueeze(-2) - ell.unsqueeze(-1) / t.unsqueeze(-2)
    return torch.exp(torch.logsumexp(log_terms, dim=-1))


def quadrature_envelope(spectrum, lags, *, rtol: float = 1e-10) -> torch.Tensor:
    """f(ℓ) = E[e^{−ℓ/T}] = ∫₀¹ exp(−ℓ / τ(z)) dz, from the spectrum's tail quantile τ(z) alone.

    The mixture of exponentials of prop-spectra (theory/window) written over the upper-tail
    probability z = P(T > τ), where the slow units that carry the long lags sit (a steep
    power law puts the mass of f(ℓ) at z ~ (τ_min/ℓ)^β, far below float64's resolution of
    1 − z, hence ``tail_quantile`` rather than ``quantile``), and integrated by adaptive
    quadrature (``scipy.integrate.quad_vec``, all lags at once). It never calls the spectrum's
    :meth:`envelope`, so it checks the closed forms and, in the spectra chapter, their
    asymptotic laws independently of the derivation.

    Args:
        spectrum: any object with ``tail_quantile(z)`` (a tensor of z ∈ (0, 1] to τ > 0, +inf
            allowed); lags: ℓ ≥ 0. rtol: relative tolerance of the quadrature (keyword-only).

    Returns:
        Tensor, shape of ``lags``, in their floating dtype (float64 otherwise).

    Raises:
        ValueError: empty, negative or non-finite lags; rtol not in (0, 1).

    >>> lags = torch.tensor([0.0, 10.0, 100.0], dtype=torch.float64)
    >>> spec = ParetoSpectrum(1.5, 2.0)
    >>> bool(torch.allclose(quadrature_envelope(spec, lags), spec.envelope(lags), rtol=1e-9))
    True
    """
    x, dtype, device = _lags(lags)
    if not 0 < float(rtol) < 1:
        raise ValueError(f"rtol must lie in (0, 1); got {rtol!r}")
    flat = x.reshape(-1)

    def tau_at(z) -> np.ndarray:
        z = torch.as_tensor(np.atleast_1d(z), dtype=torch.float64)
        return spectrum.tail_quantile(z).numpy()

    # quad_vec controls the error of the whole vector, so lags whose f is 1e−20 of another's
    # would get no digits: divide each lag by a rough value of its f first (trapezoid over
    # log z, z from 1e−300 to 1), then integrate f(ℓ)/scale(ℓ) ≈ 1 for every lag
    log_z = np.linspace(-300 * math.log(10), 0.0, 3001)
    z = np.exp(log_z)
    weights = np.exp(-flat[:, None] / tau_at(z)[None, :]) * z[None, :]
    scale = integrate.trapezoid(weights, log_z, axis=1)
    scale = np.where(scale > 0, scale, 1.0)     # f underflows: the quadrature returns 0 anyway

    def integrand(zz):
        return np.exp(-flat / tau_at(max(zz, 5e-324))[0]) / scale

    f, _ = integrate.quad_vec(integrand, 0.0, 1.0, epsabs=0.0, epsrel=float(rtol), norm="max")
    return torch.as_tensor((f * scale).reshape(x.shape), dtype=dtype, device=device)
