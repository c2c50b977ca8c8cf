"""The detection constant ε(δ, α) and the power it promises, against closed forms
and Monte Carlo."""

import math

import pytest
import torch

from horizon_lib.concentration import kappa, sample_mean_deviations
from horizon_lib.detection import detection_probability
from horizon_lib.detection_constant import detection_epsilon, detection_power


def test_closed_forms():
    # α = 2: |S| is |N(0, 2)|, so ε = √2 Φ⁻¹(1 − δ/2); α = 1: Cauchy, ε = tan(π(1 − δ)/2)
    assert detection_epsilon(0.05, 2.0) == pytest.approx(math.sqrt(2) * 1.959963985, rel=1e-9)
    assert detection_epsilon(0.5, 1.0) == pytest.approx(1.0)
    assert detection_epsilon(0.1, 1.0) == pytest.approx(math.tan(0.45 * math.pi))


def test_epsilon_grows_as_tails_get_heavier_and_is_the_power_quantile():
    eps = detection_epsilon(0.1, torch.tensor([1.2, 1.5, 1.8, 2.0], dtype=torch.float64))
    assert eps.shape == (4,) and bool((eps.diff() < 0).all())
    for a, e in zip([1.2, 1.5, 1.8, 2.0], eps.tolist()):
        assert detection_power(a, e) == pytest.approx(0.9, abs=1e-6)


def test_epsilon_is_continuous_where_scipy_snaps_alpha_to_one():
    # scipy treats 1 < α ≤ 1.005 as α = 1: without the interpolation ε(0.01, ·) jumped 2.4 %
    # between 1.005 and 1.0051; the slope just above is about −290 per unit α, so neighbouring
    # values 2e−4 apart may differ by ~0.1 % of ε, not more
    alphas = [1.0, 1.0001, 1.002, 1.0049, 1.005, 1.0051, 1.0061, 1.008]
    eps = [detection_epsilon(0.01, a) for a in alphas]
    assert all(b < a for a, b in zip(eps, eps[1:]))                    # strictly decreasing
    for (a0, e0), (a1, e1) in zip(zip(alphas, eps), zip(alphas[1:], eps[1:])):
        assert (e0 - e1) / e0 < 0.002 * (a1 - a0) / 1e-4 + 1e-6, (a0, a1, e0, e1)
    assert detection_epsilon(0.01, 0.9999) > eps[0]                     # and below 1 too


def test_monte_carlo_power_at_epsilon_is_one_minus_delta():
    # choose m so that the predicted N(δ) = (ε σ/|m|)^κ is exactly 100 at α = 1.5, σ = 1
    alpha, delta, r = 1.5, 0.2, 4000
    eps = detection_epsilon(delta, alpha)
    m = eps * 100 ** (-1 / kappa(alpha))
    d = sample_mean_deviations([alpha], [10, 100, 1000], r,
                               generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    power = detection_probability(d[0], [m])[0]  # Monte Carlo, measured by the detection module
    se = math.sqrt(delta * (1 - delta) / r)  # binomial s.e. ≈ 0.0063
    assert power[1].item() == pytest.approx(1 - delta, abs=4 * se)
    snr = m * torch.tensor([10.0, 100.0, 1000.0]) ** (1 / kappa(alpha))
    theory = torch.as_tensor(detection_power(alpha, snr))
    assert torch.allclose(power, theory, atol=4 * 0.008)


@pytest.mark.parametrize("call, match", [
    (lambda: detection_epsilon(0.0, 1.5), "delta"),
    (lambda: detection_epsilon(1.0, 1.5), "delta"),
    (lambda: detection_epsilon(float("nan"), 1.5), "delta"),
    (lambda: detection_epsilon(0.1, 2.5), "alpha"),
    (lambda: detection_epsilon(0.1, torch.tensor([1.5, 0.0])), "alpha"),
    (lambda: detection_power(0.0, 1.0), "alpha"),
    (lambda: detection_power(1.5, -1.0), "snr"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
