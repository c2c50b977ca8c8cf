"""H_N: theory/window closed forms against numeric inversion, monotonicity, singular regimes."""

import math

import numpy as np
import pytest
import torch

from conftest import cuda
from horizon_lib.concentration import kappa
from horizon_lib.window import (
    CLOSED_FORMS,
    learnability_window,
    window_exponential,
    window_from_envelope,
    window_logarithmic,
    window_power_law,
    window_threshold,
)


def exp_law(lag, A, tau):
    return A * np.exp(-lag / tau)


def power_law(lag, A, beta):
    return A * lag ** (-beta)


def log_law(lag, A, gamma):
    return A * np.log(lag) ** (-gamma)


def _random_pairs(rng, size):
    n = np.exp(rng.uniform(0, np.log(1e5), size))
    alpha = rng.uniform(1.05, 2.0, size)
    C = np.exp(rng.uniform(np.log(0.01), np.log(0.5), size))
    return n, alpha, C


def test_exponential_closed_form_matches_root_finding_on_random_parameters():
    rng = np.random.default_rng(0)
    n, alpha, C = _random_pairs(rng, 500)
    A, tau = rng.uniform(0.5, 3.0, 500), rng.uniform(1.0, 200.0, 500)
    closed = window_exponential(n, alpha, A=A, tau=tau, C=C)
    numeric = learnability_window(exp_law, n, alpha, C=C, params=(A, tau), lag_max=1e7)
    assert (closed > 0).all()
    assert torch.allclose(numeric, closed, rtol=1e-10, atol=0)


def test_power_law_closed_form_matches_root_finding_on_random_parameters():
    rng = np.random.default_rng(1)
    n, alpha, C = _random_pairs(rng, 500)
    A, beta = rng.uniform(0.5, 3.0, 500), rng.uniform(0.3, 3.0, 500)
    closed = window_power_law(n, alpha, A=A, beta=beta, C=C)
    numeric = learnability_window(power_law, n, alpha, C=C, params=(A, beta), lag_max=1e300)
    assert torch.isfinite(closed).all() and (closed >= 1).all()
    assert torch.allclose(numeric, closed, rtol=1e-10, atol=0)


def test_logarithmic_closed_form_matches_root_finding_on_random_parameters():
    rng = np.random.default_rng(2)
    n, alpha, C = _random_pairs(rng, 500)
    A, gamma = rng.uniform(0.3, 1.0, 500), rng.uniform(1.0, 3.0, 500)
    closed = window_logarithmic(n, alpha, A=A, gamma=gamma, C=C, lag_min=1.5)
    numeric = learnability_window(log_law, n, alpha, C=C, params=(A, gamma), lag_min=1.5,
                                  lag_max=1e300)
    finite = torch.isfinite(closed)
    assert finite.sum() > 400  # the rest overflow float64 (H_N > 1e300), as documented
    assert torch.allclose(numeric[finite], closed[finite], rtol=1e-10, atol=0)
    assert torch.isinf(numeric[~finite]).all()  # beyond lag_max: returned as +inf


def test_window_from_envelope_is_exact_for_a_tabulated_exponential():
    # log f is linear in ℓ, so the log-linear interpolation reproduces the closed form exactly
    lags = torch.arange(1, 1001, dtype=torch.float64)
    f = 2.0 * torch.exp(-lags / 40.0)
    n = torch.logspace(0, 4, 50, dtype=torch.float64)
    for alpha in (1.2, 1.6, 2.0):
        tab = window_from_envelope(lags, f, n, alpha, C=0.05)
        closed = window_exponential(n, alpha, A=2.0, tau=40.0, C=0.05)
        assert torch.allclose(tab, closed, rtol=1e-12)


def test_window_from_envelope_matches_root_finding_on_a_power_law_table():
    lags = torch.logspace(0, 3, 400, dtype=torch.float64)
    f = lags ** -1.3
    n, alpha = torch.logspace(0, 4, 40, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64)
    tab = window_from_envelope(lags, f, n, alpha, C=0.3)
    exact = window_power_law(n, alpha, A=1.0, beta=1.3, C=0.3)
    inside = exact < 1000
    # between grid lags the table is log-linear, the law log-log: error ≤ (Δ log ℓ)² β/8 relative
    assert torch.allclose(tab[inside], exact[inside], rtol=1e-4)
    assert torch.isinf(tab[~inside]).all()


@pytest.mark.parametrize("law", ["exponential", "power", "logarithmic"])
def test_window_grows_with_n_and_with_alpha(law):
    params = {"exponential": dict(A=1.0, tau=30.0), "power": dict(A=1.0, beta=0.8),
              "logarithmic": dict(A=1.0, gamma=2.0)}[law]
    n = torch.logspace(0, 5, 60, dtype=torch.float64)
    alpha = torch.linspace(1.01, 2.0, 40, dtype=torch.float64)
    h = CLOSED_FORMS[law](n[:, None], alpha[None, :], C=0.05, **params)
    assert (h[1:] >= h[:-1]).all()  # non-decreasing in N at every α
    assert (h[:, 1:] >= h[:, :-1]).all()  # non-decreasing in α at every N
    assert (h[-1, 1:] > h[-1, :-1]).all()  # and strictly so at N > 1


def test_numeric_window_is_monotone_in_n_and_alpha_for_a_generic_envelope():
    def stretched(lag):  # f = exp(−√ℓ): not one of the three closed forms
        return np.exp(-np.sqrt(lag))

    n = torch.logspace(0, 6, 30, dtype=torch.float64)[:, None]
    alpha = torch.linspace(1.05, 2.0, 20, dtype=torch.float64)[None, :]
    h = learnability_window(stretched, n, alpha, C=0.01, lag_max=1e6)
    assert (h[1:] >= h[:-1]).all() and (h[:, 1:] >= h[:, :-1]).all()
    # the root solves √ℓ = log(1/C) + (1/κ) log N exactly
    root = (math.log(100) + torch.log(n) / kappa(alpha)) ** 2
    assert torch.allclose(h, root, rtol=1e-10)


def test_window_is_zero_when_nothing_is_detectable():
    # f(ℓ_min) < θ_N: A e^{−1/τ} = 0.01 e^{−0.1} < C N^{−1/κ} for C = 1, N = 1
    assert window_exponential(1.0, 1.5, A=0.01, tau=10.0, C=1.0).item() == 0.0
    assert learnability_window(exp_law, 1.0, 1.5, C=1.0, params=(0.01, 10.0)).item() == 0.0
    assert window_power_law(1.0, 2.0, A=0.1, beta=1.0, C=1.0).item() == 0.0
    assert window_from_envelope([1, 2, 3], [0.1, 0.05, 0.01], 1.0, 2.0, C=1.0).item() == 0.0
    # a negative exponential root (τ log(A/C) < −(τ/κ) log N) is clamped to 0 as well
    assert window_exponential(10.0, 2.0, A=1.0, tau=5.0, C=100.0, lag_min=0.0).item() == 0.0


def test_alpha_two_is_gaussian_rate():
    # κ_2 = 2: θ_N = C / √N
    assert kappa(2.0) == 2.0
    assert window_threshold(400.0, 2.0, 3.0).item() == pytest.approx(3.0 / 20.0, rel=1e-14)
    h = window_exponential(400.0, 2.0, A=1.0, tau=10.0, C=0.1)
    assert h.item() == pytest.approx(10 * math.log(10) + 5 * math.log(400), rel=1e-14)


def test_alpha_to_one_gives_the_finite_single_sample_window():
    # As α ↓ 1, κ_α → ∞ and θ_N → C: H_N tends to sup{ℓ : f(ℓ) ≥ C}, the same for every N.
    n = torch.tensor([1.0, 1e3, 1e8], dtype=torch.float64)
    a = 1.0 + 1e-12
    limit = 10.0 * math.log(1.0 / 0.05)  # τ log(A/C) with A = 1, τ = 10, C = 0.05
    for h in (window_exponential(n, a, A=1.0, tau=10.0, C=0.05),
              learnability_window(exp_law, n, a, C=0.05, params=(1.0, 10.0))):
        assert torch.isfinite(h).all()
        assert torch.allclose(h, torch.full_like(h, limit), rtol=1e-9)
    assert math.isfinite(kappa(a))


def test_dtype_and_device_follow_inputs():
    n32 = torch.tensor([10.0, 100.0], dtype=torch.float32)
    assert window_power_law(n32, 1.5, A=1.0, beta=1.0, C=0.1).dtype == torch.float32
    assert learnability_window(exp_law, n32, 1.5, C=0.1, params=(1.0, 5.0)).dtype == torch.float32
    assert window_exponential(10.0, 1.5, A=1.0, tau=5.0, C=0.1).dtype == torch.float64
    # the law's parameters count too: a float32 τ or β gives a float32 window
    tau32 = torch.tensor([5.0, 8.0], dtype=torch.float32)
    assert window_exponential(10.0, 1.5, A=1.0, tau=tau32, C=0.1).dtype == torch.float32
    assert window_power_law(10.0, 1.5, A=torch.tensor(1.0, dtype=torch.float32), beta=1.0,
                            C=0.1).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=10.0, alpha=1.0), r"alpha must lie in \(1, 2\]"),
        (dict(n=10.0, alpha=2.5), r"alpha must lie in \(1, 2\]"),
        (dict(n=0.5, alpha=1.5), r"sample size N must be ≥ 1"),
        (dict(n=float("nan"), alpha=1.5), "n must not contain NaN"),
        (dict(n=[], alpha=1.5), "n must not be empty"),
        (dict(n=10.0, alpha=float("nan")), "alpha must not contain NaN"),
    ],
)
def test_bad_pairs_raise_value_error_naming_the_problem(kwargs, match):
    for fn in (
        lambda n, alpha: window_exponential(n, alpha, A=1.0, tau=5.0, C=0.1),
        lambda n, alpha: window_power_law(n, alpha, A=1.0, beta=1.0, C=0.1),
        lambda n, alpha: window_logarithmic(n, alpha, A=1.0, gamma=1.0, C=0.1),
        lambda n, alpha: learnability_window(exp_law, n, alpha, C=0.1, params=(1.0, 5.0)),
        lambda n, alpha: window_from_envelope([1, 2], [1.0, 0.5], n, alpha, C=0.1),
        lambda n, alpha: window_threshold(n, alpha, 0.1),
    ):
        with pytest.raises(ValueError, match=match):
            fn(**kwargs)


def test_bad_envelopes_and_parameters_raise():
    with pytest.raises(ValueError, match="non-increasing"):
        learnability_window(lambda lag: lag, 10.0, 1.5, C=0.1)
    with pytest.raises(ValueError, match="non-increasing"):
        window_from_envelope([1, 2, 3], [1.0, 0.5, 0.6], 10.0, 1.5, C=0.1)
    with pytest.raises(ValueError, match="finite and ≥ 0"):
        learnability_window(log_law, 10.0, 1.5, C=0.1, params=(1.0, 1.0), lag_min=1.0)
    with pytest.raises(ValueError, match="params must not contain NaN"):
        learnability_window(exp_law, 10.0, 1.5, C=0.1, params=(1.0, float("nan")))
    with pytest.raises(ValueError, match="lag_min < lag_max"):
        learnability_window(exp_law, 10.0, 1.5, C=0.1, params=(1.0, 5.0), lag_min=5, lag_max=2)
    with pytest.raises(ValueError, match="lags must be strictly increasing"):
        window_from_envelope([1, 1, 3], [1.0, 0.5, 0.2], 10.0, 1.5, C=0.1)
    with pytest.raises(ValueError, match="lags must not be empty"):
        window_from_envelope([], [], 10.0, 1.5, C=0.1)
    with pytest.raises(ValueError, match="envelope f must be > 0"):
        window_from_envelope([1, 2], [1.0, 0.0], 10.0, 1.5, C=0.1)
    with pytest.raises(ValueError, match="equal length"):
        window_from_envelope([1, 2, 3], [1.0, 0.5], 10.0, 1.5, C=0.1)
    with pytest.raises(ValueError, match="C must be > 0"):
        window_threshold(10.0, 1.5, -1.0)
    with pytest.raises(ValueError, match="tau τ must be > 0"):
        window_exponential(10.0, 1.5, A=1.0, tau=0.0, C=0.1)
    for lag_min in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="lag_min must be finite and ≥ 0"):
            window_exponential(10.0, 1.5, A=1.0, tau=5.0, C=0.1, lag_min=lag_min)
    with pytest.raises(ValueError, match="beta β must be > 0"):
        window_power_law(10.0, 1.5, A=1.0, beta=-1.0, C=0.1)
    with pytest.raises(ValueError, match="gamma γ must be > 0"):
        window_logarithmic(10.0, 1.5, A=1.0, gamma=0.0, C=0.1)
    with pytest.raises(ValueError, match="A must be > 0"):
        window_power_law(10.0, 1.5, A=0.0, beta=1.0, C=0.1)
    with pytest.raises(ValueError, match="probes must be ≥ 2; got 1"):
        learnability_window(exp_law, 10.0, 1.5, C=0.1, params=(1.0, 5.0), probes=1)


def test_a_nan_between_the_probes_fails_the_root_finding_loudly():
    # with probes = 2 the check sees f only at ℓ_min = 1 and ℓ_max = 1e9, where this f is a
    # finite, decreasing exponential; the NaN it returns in between, where the crossing of θ_N
    # lies (ℓ ≈ 69 for the exponential alone), must not come back as a window
    def holed(lag, A, tau):
        return np.where((lag > 1.5) & (lag < 1e8), np.nan, A * np.exp(-lag / tau))

    whole = learnability_window(exp_law, 100.0, 2.0, C=0.01, params=(1.0, 10.0), probes=2)
    assert whole.item() == pytest.approx(10 * math.log(100) + 5 * math.log(100), rel=1e-10)
    with pytest.raises(ValueError, match="root finding failed: f returned a non-finite value"):
        learnability_window(holed, 100.0, 2.0, C=0.01, params=(1.0, 10.0), probes=2)


@cuda
def test_tabulated_window_on_cuda_matches_cpu():
    lags = torch.arange(1, 1001, dtype=torch.float64)
    f = torch.exp(-lags / 40.0)
    n = torch.logspace(0, 4, 50, dtype=torch.float64)
    cpu = window_from_envelope(lags, f, n, 1.5, C=0.05)
    gpu = window_from_envelope(lags.cuda(), f.cuda(), n.cuda(), 1.5, C=0.05)
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-12)
    closed = window_exponential(n.cuda(), 1.5, A=1.0, tau=40.0, C=0.05)
    assert closed.device.type == "cuda" and torch.allclose(closed.cpu(), cpu, rtol=1e-12)
