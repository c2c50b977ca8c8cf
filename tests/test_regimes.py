"""Regime fits and AIC/BIC selection on envelopes with known laws (theory/window)."""

import numpy as np
import pytest
import torch

from horizon_lib.regimes import fit_regime, select_regime
from horizon_lib.spectra import LogParetoSpectrum, NarrowSpectrum, ParetoSpectrum
from horizon_lib.window import CLOSED_FORMS, learnability_window

LAGS = np.geomspace(16, 1e4, 64)


def _noisy(f, seed, sd=0.02):
    g = torch.Generator().manual_seed(seed)
    return f * torch.exp(sd * torch.randn(f.shape, generator=g, dtype=f.dtype))


@pytest.mark.parametrize(
    "name, law, params",
    [
        ("exponential", lambda x: 2.0 * np.exp(-x / 300.0), {"A": 2.0, "tau": 300.0}),
        ("power", lambda x: 0.5 * x ** -1.7, {"A": 0.5, "beta": 1.7}),
        ("logarithmic", lambda x: 3.0 * np.log(x) ** -2.5, {"A": 3.0, "gamma": 2.5}),
        ("tempered", lambda x: 1.5 * x ** -0.8 * np.exp(-(x / 2000.0) ** 1.3),
         {"A": 1.5, "beta": 0.8, "lag_c": 2000.0, "k": 1.3}),
    ],
)
def test_each_fit_recovers_its_own_law_exactly(name, law, params):
    fit = fit_regime(name, LAGS, law(LAGS))
    for key, value in params.items():
        assert fit.params[key] == pytest.approx(value, rel=1e-6)
    assert np.allclose(fit.evaluate(LAGS), law(LAGS), rtol=1e-6)
    # torch in, torch out: integer lags give float64 values, not values cast to integers
    lags_int = torch.arange(2, 40)
    got = fit.evaluate(lags_int)
    assert got.dtype == torch.float64
    assert np.allclose(got.numpy(), law(np.arange(2.0, 40.0)), rtol=1e-6)


@pytest.mark.parametrize(
    "spectrum", [NarrowSpectrum(400.0), ParetoSpectrum(1.0), LogParetoSpectrum(1.0)]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bic_selects_the_spectrums_regime_under_noise(spectrum, seed):
    f = _noisy(spectrum.envelope(torch.tensor(LAGS)), seed)
    sel = select_regime(LAGS, f)
    assert sel.best.name == spectrum.regime
    assert set(sel.fits) == {"exponential", "power", "logarithmic", "tempered"}


def test_fitted_parameters_feed_the_closed_forms():
    spec = ParetoSpectrum(1.2)
    fit = fit_regime("power", LAGS, spec.envelope(torch.tensor(LAGS)))
    n = torch.logspace(0, 4, 9, dtype=torch.float64)
    closed = CLOSED_FORMS[fit.name](n, 1.6, C=1e-3, **fit.params)
    numeric = learnability_window(lambda x: fit.evaluate(x), n, 1.6, C=1e-3, lag_max=1e12)
    assert torch.allclose(closed, numeric, rtol=1e-9)
    assert fit.params["beta"] == pytest.approx(1.2, abs=1e-6)


def test_aic_and_bic_are_the_gaussian_criteria():
    fit = fit_regime("power", LAGS, _noisy(torch.tensor(LAGS ** -1.0), 3))
    n = 64
    base = n * np.log(fit.rss / n)
    assert fit.aic == pytest.approx(base + 4) and fit.bic == pytest.approx(base + 2 * np.log(n))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fit_regime("linear", LAGS, LAGS), "regime must be one of"),
        (lambda: fit_regime("power", LAGS[:5], LAGS[:5]), "needs ≥ 6 lags"),
        (lambda: fit_regime("power", LAGS, -LAGS), "must be finite and > 0"),
        (lambda: fit_regime("power", LAGS[::-1], LAGS), "strictly increasing"),
        (lambda: fit_regime("power", LAGS, np.full(64, np.nan)), "must not contain NaN"),
        (lambda: fit_regime("power", LAGS, LAGS[:10]), "equal length"),
        (lambda: fit_regime("logarithmic", np.arange(1.0, 9.0), np.ones(8)), "every lag > 1"),
        (lambda: select_regime(LAGS, LAGS ** -1.0, criterion="r2"), "criterion must be"),
        (lambda: select_regime(LAGS, LAGS ** -1.0, candidates=()), "at least one regime"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
