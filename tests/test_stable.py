"""The symmetric α-stable sampler against known laws (Gaussian, Cauchy) and scipy."""

import math

import pytest
import torch
from scipy import stats

from conftest import cuda
from horizon_lib.stable import sample_symmetric_stable


def gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_broadcast(dtype):
    x = sample_symmetric_stable(1.5, (3, 4), generator=gen(), dtype=dtype)
    assert x.shape == (3, 4) and x.dtype == dtype
    alpha = torch.tensor([[1.2], [1.8]], dtype=dtype)
    y = sample_symmetric_stable(alpha, (2, 5), generator=gen(),
                                scale=torch.tensor([1.0, 2, 3, 4, 5]))
    assert y.shape == (2, 5) and y.dtype == dtype  # dtype follows a tensor α


def test_generator_reproducibility():
    a = sample_symmetric_stable(1.3, (1000,), generator=gen(7))
    b = sample_symmetric_stable(1.3, (1000,), generator=gen(7))
    c = sample_symmetric_stable(1.3, (1000,), generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_alpha_two_is_gaussian_of_variance_two_sigma_squared():
    sigma = 1.7
    x = sample_symmetric_stable(2.0, (400_000,), scale=sigma, generator=gen(1), dtype=torch.float64)
    # variance 2σ²; the sample variance's relative s.e. is √(2/n) ≈ 0.0022, 5 s.e. allowed
    assert x.var().item() == pytest.approx(2 * sigma**2, rel=0.011)
    assert stats.kstest(x.numpy(), stats.norm(scale=sigma * math.sqrt(2)).cdf).pvalue > 1e-3


def test_alpha_one_is_cauchy():
    x = sample_symmetric_stable(1.0, (100_000,), scale=0.5, loc=3.0, generator=gen(2),
                                dtype=torch.float64)
    assert stats.kstest(x.numpy(), stats.cauchy(loc=3.0, scale=0.5).cdf).pvalue > 1e-3


def test_tensor_alpha_path_matches_cauchy_at_one():
    a = torch.tensor([1.0, 1.5], dtype=torch.float64).view(2, 1)
    x = sample_symmetric_stable(a, (2, 50_000), generator=gen(3))
    assert stats.kstest(x[0].numpy(), stats.cauchy().cdf).pvalue > 1e-3
    # the α = 1.5 row of the same call: KS on 4000 of its draws against scipy's law
    assert stats.kstest(x[1, :4000].numpy(), stats.levy_stable(1.5, 0.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [1.1, 1.5, 1.9])
def test_ks_against_scipy_levy_stable(alpha):
    # scipy's levy_stable with β = 0 has characteristic function exp(−|σu|^α), the same law
    x = sample_symmetric_stable(alpha, (4000,), scale=2.0, generator=gen(4), dtype=torch.float64)
    p = stats.kstest(x.numpy(), stats.levy_stable(alpha, 0.0, scale=2.0).cdf).pvalue
    assert p > 1e-3


def test_float32_never_gives_nan_or_inf_at_the_angle_edges():
    x = sample_symmetric_stable(torch.tensor([0.6, 1.2, 1.7, 2.0]).view(4, 1), (4, 2_000_000),
                                generator=gen(5))
    assert bool(torch.isfinite(x).all())


@pytest.mark.parametrize("bad, match", [
    (dict(alpha=0.0), r"alpha must lie in \(0, 2\]; got \[0\.0\]"),
    (dict(alpha=2.5), r"alpha must lie in \(0, 2\]; got \[2\.5\]"),
    (dict(alpha=float("nan")), "alpha must be finite"),
    (dict(alpha=1.5, scale=0.0), "scale σ must be > 0"),
    (dict(alpha=1.5, scale=-1.0), "scale σ must be > 0"),
    (dict(alpha=1.5, loc=float("inf")), "loc must be finite"),
])
def test_bad_input_raises(bad, match):
    alpha = bad.pop("alpha")
    with pytest.raises(ValueError, match=match):
        sample_symmetric_stable(alpha, (10,), generator=gen(), **bad)


@cuda
def test_cuda_draws_follow_the_law():
    g = gen(0, "cuda")
    x = sample_symmetric_stable(torch.tensor(1.5, device="cuda"), (20_000,), generator=g)
    assert x.device.type == "cuda"
    assert stats.kstest(x.cpu().double().numpy(), stats.levy_stable(1.5, 0.0).cdf).pvalue > 1e-3


# --------------------------------------------------------------------------- general α-stable (S0)

from horizon_lib.stable import s0_to_s1_location, s1_to_s0_location, sample_stable  # noqa: E402

# (α, β) grid: below, at and above α = 1, symmetric and skewed (β = ±1 included)
GRID = [(0.7, -1.0), (0.7, 0.5), (1.0, -0.6), (1.0, 1.0), (1.3, 0.8), (1.7, -0.4), (1.95, 1.0)]


@pytest.fixture
def scipy_s0(monkeypatch):
    """scipy's levy_stable switched to Nolan's S0 for the test (restored afterwards)."""
    monkeypatch.setattr(stats.levy_stable, "parameterization", "S0")
    return stats.levy_stable


@pytest.mark.parametrize("alpha, beta", GRID)
def test_ks_against_scipy_s0(alpha, beta, scipy_s0):
    x = sample_stable(alpha, beta, (1500,), scale=1.5, loc=0.3, generator=gen(10),
                      dtype=torch.float64)
    assert stats.kstest(x.numpy(), scipy_s0(alpha, beta, loc=0.3, scale=1.5).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha, beta", [(0.7, 0.5), (1.0, 1.0), (1.5, -0.8)])
def test_s1_draws_through_the_converter_match_scipy_s1(alpha, beta):
    # σ = 2 so that the α = 1 shift (2/π)βσ log σ is not zero
    loc0 = s1_to_s0_location(alpha, beta, 2.0, -1.0)
    x = sample_stable(alpha, beta, (1500,), scale=2.0, loc=loc0, generator=gen(11),
                      dtype=torch.float64)
    assert stats.levy_stable.parameterization == "S1"
    assert stats.kstest(x.numpy(),
                        stats.levy_stable(alpha, beta, loc=-1.0, scale=2.0).cdf).pvalue > 1e-3


def test_location_converter_known_values_and_round_trip():
    # α = 1.5: tan(3π/4) = −1, so μ₀ = μ₁ + βσ·(−1); α = 1: μ₀ = μ₁ + (2/π)βσ log σ
    assert s1_to_s0_location(1.5, 1.0, 2.0, 0.0) == pytest.approx(-2.0)
    assert s1_to_s0_location(1.0, 0.5, math.e, 0.0) == pytest.approx(2 / math.pi * 0.5 * math.e)
    assert s1_to_s0_location(2.0, 1.0, 3.0, 0.7) == 0.7  # tan(π) = 0: no shift at α = 2
    a = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    back = s0_to_s1_location(a, 0.3, 1.7, s1_to_s0_location(a, 0.3, 1.7, 0.2))
    assert torch.allclose(back, torch.full_like(a, 0.2))
    assert torch.allclose(s1_to_s0_location(a, 0.3, 1.7, 0.2),
                          torch.tensor([s1_to_s0_location(float(v), 0.3, 1.7, 0.2) for v in a],
                                       dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_draw_is_continuous_through_alpha_one(dtype):
    # same uniforms, α = 1 ± 10⁻⁶: the draws move by O(10⁻⁶); "S1 − β tan(πα/2)" in float32 moves
    # them by ~0.04 (measured while writing this test)
    ref = sample_stable(torch.tensor(1.0, dtype=dtype), 0.8, (50_000,), generator=gen(12))
    for a in (1.0 + 1e-6, 1.0 - 1e-6):
        x = sample_stable(torch.tensor(a, dtype=dtype), 0.8, (50_000,), generator=gen(12))
        assert (x - ref).abs().median().item() < 1e-5


def test_closure_under_addition():
    # SαS(σ₁) + SαS(σ₂) = SαS((σ₁^α + σ₂^α)^{1/α}) (stability, theory/noise)
    alpha, s1, s2 = 1.4, 0.7, 2.0
    x = sample_symmetric_stable(alpha, (3000,), scale=s1, generator=gen(13), dtype=torch.float64)
    y = sample_symmetric_stable(alpha, (3000,), scale=s2, generator=gen(14), dtype=torch.float64)
    s = (s1**alpha + s2**alpha) ** (1 / alpha)
    assert stats.kstest((x + y).numpy(), stats.levy_stable(alpha, 0.0, scale=s).cdf).pvalue > 1e-3


def test_gaussian_limit_ignores_beta():
    x = sample_stable(2.0, 0.9, (100_000,), scale=0.5, generator=gen(15), dtype=torch.float64)
    assert stats.kstest(x.numpy(), stats.norm(scale=0.5 * math.sqrt(2)).cdf).pvalue > 1e-3


def test_broadcast_parameters_draw_each_law(scipy_s0):
    alpha = torch.tensor([1.0, 1.6], dtype=torch.float64).view(2, 1, 1)
    beta = torch.tensor([-0.5, 0.9], dtype=torch.float64).view(1, 2, 1)
    x = sample_stable(alpha, beta, (2, 2, 1500), scale=torch.tensor(2.0, dtype=torch.float64),
                      generator=gen(16))
    assert x.shape == (2, 2, 1500) and x.dtype == torch.float64
    for i in range(2):
        for j in range(2):
            law = scipy_s0(float(alpha[i, 0, 0]), float(beta[0, j, 0]), scale=2.0)
            assert stats.kstest(x[i, j].numpy(), law.cdf).pvalue > 1e-3


def test_float32_skewed_draws_stay_finite_near_and_at_alpha_one():
    a = torch.tensor([0.6, 1.0 - 1e-6, 1.0, 1.0 + 1e-6, 1.9]).view(5, 1)
    x = sample_stable(a, torch.tensor([1.0, -1.0]).view(2, 1, 1),
                      (2, 5, 500_000), generator=gen(17))
    assert bool(torch.isfinite(x).all())


def test_dtype_follows_any_tensor_argument():
    x = sample_stable(1.5, 0.2, (4,), scale=torch.tensor(1.0, dtype=torch.float64), generator=gen())
    assert x.dtype == torch.float64


@pytest.mark.parametrize("bad, match", [
    (dict(beta=1.5), "beta"), (dict(beta=float("nan")), "beta"), (dict(alpha=-0.1), "alpha"),
    (dict(scale=0.0), "scale"), (dict(loc=float("nan")), "loc"),
])
def test_general_sampler_bad_input_raises(bad, match):
    args = dict(alpha=1.5, beta=0.0, scale=1.0, loc=0.0) | bad
    with pytest.raises(ValueError, match=match):
        sample_stable(args["alpha"], args["beta"], (10,), scale=args["scale"], loc=args["loc"],
                      generator=gen())


@cuda
def test_cuda_skewed_draws_follow_the_law(scipy_s0):
    g = gen(0, "cuda")
    x = sample_stable(torch.tensor(1.0, device="cuda"), 0.7, (5000,), generator=g)
    assert x.device.type == "cuda"
    assert stats.kstest(x.cpu().double().numpy(), scipy_s0(1.0, 0.7).cdf).pvalue > 1e-3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_draws_keep_the_tails(dtype):
    # drawn in float32 and rounded: the 0.999 quantile of SαS(1.5) stays scipy's to a few %
    # (drawn on bfloat16's own uniform grid it was 0.42× scipy's)
    x = sample_symmetric_stable(1.5, 100_000, generator=torch.Generator().manual_seed(8),
                                dtype=dtype)
    assert x.dtype == dtype
    q = torch.quantile(x.float(), torch.tensor([0.001, 0.999])).tolist()
    ref = stats.levy_stable.ppf([0.001, 0.999], 1.5, 0.0)
    assert q[0] / ref[0] == pytest.approx(1.0, abs=0.15) and q[1] / ref[1] == pytest.approx(
        1.0, abs=0.15)


@pytest.mark.parametrize("alpha", [1.001, 1.1, 1.5])
@pytest.mark.parametrize("beta", [-1.0, 1.0])
def test_skewed_float32_draws_are_finite_at_the_ends_of_the_uniform_grid(alpha, beta):
    # the outermost float32 grid points of U₁ made the skewed kernel's denominator cancel to 0
    # (−inf at α = 1.1, β = 1 for U₁ = 0 and 2⁻²⁴); the kernel the sampler calls, on them
    from horizon_lib.stable import _prepare_uniforms, _skewed

    step = 2.0 ** -24
    v = torch.tensor([0.0, step, 2 * step, 1 - step, 1 - 2 * step, 0.5], dtype=torch.float32)
    w = torch.tensor([0.5, 0.0, 1 - step, 0.5, 0.0, 1 - step], dtype=torch.float32)
    _prepare_uniforms(v, w)
    x = _skewed(alpha, beta, v, w)
    assert x.dtype == torch.float32 and bool(torch.isfinite(x).all()), x
