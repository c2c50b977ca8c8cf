"""The symmetric α-stable sampler against known laws (Gaussian, Cauchy) and scipy."""

import math

import numpy as np
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
    y = sample_symmetric_stable(alpha, (2, 5), generator=gen(), scale=torch.tensor([1.0, 2, 3, 4, 5]))
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


@pytest.mark.parametrize("bad", [dict(alpha=0.0), dict(alpha=2.5), dict(alpha=float("nan")),
                                 dict(alpha=1.5, scale=0.0), dict(alpha=1.5, scale=-1.0),
                                 dict(alpha=1.5, loc=float("inf"))])
def test_bad_input_raises(bad):
    alpha = bad.pop("alpha")
    with pytest.raises(ValueError):
        sample_symmetric_stable(alpha, (10,), generator=gen(), **bad)


@cuda
def test_cuda_draws_follow_the_law():
    g = gen(0, "cuda")
    x = sample_symmetric_stable(torch.tensor(1.5, device="cuda"), (20_000,), generator=g)
    assert x.device.type == "cuda"
    assert stats.kstest(x.cpu().double().numpy(), stats.levy_stable(1.5, 0.0).cdf).pvalue > 1e-3
