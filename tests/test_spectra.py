"""Time-scale spectra (theory/window): exact envelopes against quadrature, tails, mixtures."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from conftest import cuda
from horizon_lib.spectra import (
    LogParetoSpectrum,
    NarrowSpectrum,
    ParetoSpectrum,
    mixture_envelope,
    quadrature_envelope,
    sample_timescales,
    stratified_timescales,
)


@pytest.mark.parametrize("beta, tau_min", [(0.5, 1.0), (1.0, 2.0), (2.3, 0.5)])
def test_pareto_envelope_matches_quadrature_of_the_mixture(beta, tau_min):
    def density(t):
        return beta * tau_min ** beta * t ** (-1 - beta)

    spec = ParetoSpectrum(beta, tau_min)
    lags = np.array([0.3, 2.0, 17.0, 150.0])
    exact = spec.envelope(torch.tensor(lags, dtype=torch.float64)).numpy()
    for lag, value in zip(lags, exact):
        ref = integrate.quad(lambda t: np.exp(-lag / t) * density(t), tau_min, np.inf,
                             epsabs=0, epsrel=1e-11, limit=200)[0]
        assert value == pytest.approx(ref, rel=1e-8)
    assert spec.envelope([0.0]).item() == 1.0


@pytest.mark.parametrize("gamma, y0", [(0.7, 1.0), (1.5, 0.5), (3.0, 2.0)])
def test_log_pareto_envelope_matches_quadrature_over_log_time_scales(gamma, y0):
    def density(y):  # Y = log T ~ Pareto(γ, y₀)
        return gamma * y0 ** gamma * y ** (-1 - gamma)

    spec = LogParetoSpectrum(gamma, y0)
    for lag in (0.5, 5.0, 300.0):
        ref = integrate.quad(lambda y: np.exp(-lag * np.exp(-y)) * density(y), y0, np.inf,
                             epsabs=0, epsrel=1e-11, limit=400)[0]
        assert spec.envelope([lag]).item() == pytest.approx(ref, rel=1e-7)


def test_tails_reach_their_asymptotic_laws():
    # Pareto: f ℓ^β / (Γ(β+1) τ_min^β) → 1 exponentially fast in ℓ/τ_min
    spec = ParetoSpectrum(1.3, 2.0)
    lags = torch.tensor([100.0, 1000.0], dtype=torch.float64)
    law = spec.asymptote()["A"] * lags ** -1.3
    assert torch.allclose(spec.envelope(lags), law, rtol=1e-12)
    # log type: f (log ℓ)^γ / y₀^γ → 1 with an O(γ γ_E / log ℓ) correction (module docstring)
    log_spec = LogParetoSpectrum(1.0, 1.0)
    big = torch.tensor([1e4, 1e8, 1e16], dtype=torch.float64)
    ratio = log_spec.envelope(big) * torch.log(big) / log_spec.asymptote()["A"]
    err = (ratio - 1).abs()
    assert (err[1:] < err[:-1]).all() and err[-1] < 0.03
    assert (err < 1.5 * 0.5772 / torch.log(big)).all()  # 1.5 × the first-order γ γ_E / log ℓ


@pytest.mark.parametrize(
    "spec",
    [NarrowSpectrum(20.0), ParetoSpectrum(1.0, 1.0), ParetoSpectrum(0.5, 2.0),
     ParetoSpectrum(5.0, 0.5), LogParetoSpectrum(1.0, 1.0), LogParetoSpectrum(2.0, 0.5)],
    ids=repr,
)
def test_quadrature_envelope_matches_every_exact_envelope(spec):
    # up to lag 1e6: the steep Pareto envelope falls to 4e−30 there, where the integrand's
    # mass sits at z ~ 1e−30, far below float64's resolution of a level u = 1 − z
    lags = torch.logspace(0, 6, 40, dtype=torch.float64)
    exact = spec.envelope(lags)
    quad = quadrature_envelope(spec, lags)
    # atol only for the narrow envelope's subnormals and zeros beyond lag ~1.4e4
    assert torch.allclose(quad, exact, rtol=1e-12, atol=1e-300)
    assert (quad[exact == 0] == 0).all()


def test_quadrature_envelope_of_a_two_point_spectrum():
    class TwoUnits:  # half the units at τ = 3, half at τ = 50: f = (e^{−ℓ/3} + e^{−ℓ/50}) / 2
        @staticmethod
        def tail_quantile(z):
            return torch.where(z <= 0.5, 50.0, 3.0).to(torch.float64)

    lags = np.array([0.0, 1.0, 10.0, 100.0, 1000.0])
    expected = 0.5 * (np.exp(-lags / 3) + np.exp(-lags / 50))
    got = quadrature_envelope(TwoUnits(), lags).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_tail_quantile_is_the_quantile_at_one_minus_z():
    for spec in (NarrowSpectrum(4.0), ParetoSpectrum(1.7, 2.0), LogParetoSpectrum(1.2, 0.8)):
        u = torch.tensor([0.0, 0.25, 0.5, 0.875], dtype=torch.float64)
        assert torch.allclose(spec.quantile(u), spec.tail_quantile(1 - u), rtol=1e-15)
    # far in the tail, where 1 − z rounds to 1: P(T > τ) = (τ_min/τ)^β = z exactly
    z = torch.tensor([1e-30, 1e-200], dtype=torch.float64)
    tau = ParetoSpectrum(2.0, 3.0).tail_quantile(z)
    assert torch.allclose((3.0 / tau) ** 2.0, z, rtol=1e-14)


def test_narrow_spectrum_is_exponential():
    spec = NarrowSpectrum(12.0)
    lags = torch.arange(0, 50, dtype=torch.float64)
    assert torch.allclose(spec.envelope(lags), torch.exp(-lags / 12.0), rtol=1e-15)
    assert (stratified_timescales(spec, 5) == 12.0).all()


def test_mixture_of_stratified_units_approaches_the_exact_envelope():
    spec = ParetoSpectrum(1.0)
    lags = torch.tensor([1.0, 5.0, 20.0], dtype=torch.float64)
    tau = stratified_timescales(spec, 20_000)
    # stratified quantiles are a midpoint rule in z: measured error 4e-8 at ℓ = 20, 1e-10 at 1
    assert torch.allclose(mixture_envelope(lags, tau), spec.envelope(lags), rtol=1e-6)


def test_sampled_timescales_follow_the_spectrum():
    g = torch.Generator().manual_seed(0)
    tau = sample_timescales(ParetoSpectrum(2.0, 1.0), 100_000, generator=g)
    # P(T > 3) = 3^{−2} = 1/9; binomial s.e. ≈ 0.001
    assert (tau > 3).double().mean().item() == pytest.approx(1 / 9, abs=0.005)
    assert (tau >= 1).all()


def test_mixture_envelope_batches_and_weights():
    tau = torch.tensor([[1.0, 10.0], [2.0, 2.0]], dtype=torch.float64)
    lags = torch.tensor([0.0, 3.0], dtype=torch.float64)
    f = mixture_envelope(lags, tau, weights=torch.tensor([3.0, 1.0], dtype=torch.float64))
    assert f.shape == (2, 2)
    assert f[0, 1].item() == pytest.approx(0.75 * math.exp(-3) + 0.25 * math.exp(-0.3))
    # far lags: the log-sum-exp keeps the slow unit instead of underflowing to 0
    far = mixture_envelope([2000.0], torch.tensor([1.0, 100.0], dtype=torch.float64))
    assert far.item() == pytest.approx(0.5 * math.exp(-20), rel=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: NarrowSpectrum(0.0), "tau τ must be finite and > 0"),
        (lambda: ParetoSpectrum(-1.0), "beta β must be finite and > 0"),
        (lambda: ParetoSpectrum(1.0, float("nan")), "tau_min must be finite and > 0"),
        (lambda: LogParetoSpectrum(0.0), "gamma γ must be finite and > 0"),
        (lambda: ParetoSpectrum(1.0).envelope([]), "lags must not be empty"),
        (lambda: ParetoSpectrum(1.0).envelope([-1.0]), "lags must be finite and ≥ 0"),
        (lambda: ParetoSpectrum(1.0).quantile(torch.tensor([1.0])), r"u must lie in \[0, 1\)"),
        (lambda: ParetoSpectrum(1.0).tail_quantile(torch.tensor([0.0])),
         r"z must lie in \(0, 1\]"),
        (lambda: LogParetoSpectrum(1.0).tail_quantile([1.5]), r"z must lie in \(0, 1\]"),
        (lambda: quadrature_envelope(ParetoSpectrum(1.0), [1.0], rtol=0.0),
         r"rtol must lie in \(0, 1\)"),
        (lambda: quadrature_envelope(ParetoSpectrum(1.0), [-1.0]), "lags must be finite"),
        (lambda: stratified_timescales(ParetoSpectrum(1.0), 0), "n_units H must be ≥ 1"),
        (lambda: sample_timescales(ParetoSpectrum(1.0), 0), "n_units H must be ≥ 1"),
        (lambda: mixture_envelope([1.0], torch.tensor([0.0])), "τ_q must be > 0"),
        (lambda: mixture_envelope([1.0], torch.tensor([])), "tau must not be empty"),
        (lambda: mixture_envelope([1.0], torch.tensor([1.0]), weights=torch.tensor([0.0])),
         "weights must not all be zero"),
        (lambda: mixture_envelope([1.0], torch.tensor([1.0, 2.0]),
                                  weights=torch.tensor([1.0, -0.5])),
         "weights must be ≥ 0 and not NaN"),
        (lambda: mixture_envelope([1.0], torch.tensor([1.0, 2.0]),
                                  weights=torch.tensor([1.0, float("nan")])),
         "weights must be ≥ 0 and not NaN"),
        (lambda: mixture_envelope([float("nan")], torch.tensor([1.0])), "lags must be finite"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@cuda
def test_mixture_envelope_on_cuda_equals_the_cpus():
    tau = stratified_timescales(ParetoSpectrum(1.0), 512)
    lags = torch.tensor([1.0, 5.0, 20.0, 2000.0], dtype=torch.float64)
    gpu = mixture_envelope(lags.cuda(), tau.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), mixture_envelope(lags, tau), rtol=1e-12, atol=0)
