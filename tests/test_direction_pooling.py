"""Pooling directions: mixtures of known scales, where the pooled and per-direction tail indices
are known."""

import math

import pytest
import torch

from horizon_lib.direction_pooling import (
    direction_pooling,
    directions_sample_size,
    gaussian_mixture_alpha,
    split_directions,
    standardize_directions,
)
from horizon_lib.stable import sample_symmetric_stable

K, B, LAGS = 8, 2000, 4
LOG_SCALES = torch.linspace(-1.0, 1.0, K, dtype=torch.float64)   # sd 0.65 over directions


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def pooled_samples(alpha, log_scales, *, locations=None, seed=0):
    """(lag, K·B) direction-major: direction k is loc_k + e^{log_scales[k]} · SαS(1)."""
    x = sample_symmetric_stable(alpha, (LAGS, K, B), generator=gen(seed), dtype=torch.float64)
    x = x * log_scales.exp()[None, :, None]
    if locations is not None:
        x = x + locations[None, :, None]
    return x.reshape(LAGS, K * B)


def test_gaussian_directions_of_different_scales_pool_into_a_heavy_looking_law():
    fit = direction_pooling(pooled_samples(2.0, LOG_SCALES), K)
    # the pool is a scale mixture: ECF reads heavy tails where no direction has any
    assert float(fit.pooled.max()) < 1.75
    # each direction alone and the standardized pool are Gaussian (ECF s.e. ≈ 0.01 at 16 000
    # samples, ≈ 0.03 at 2 000)
    assert float((fit.standardized - 2.0).abs().max()) < 0.04
    assert abs(float(fit.per_direction.median()) - 2.0) < 0.03
    torch.testing.assert_close(fit.log_scale_spread,
                               torch.full((LAGS,), float(LOG_SCALES.std()),
                                          dtype=torch.float64), atol=0.06, rtol=0)


def test_standardizing_recovers_the_common_alpha_of_shifted_and_scaled_stable_directions():
    locations = torch.linspace(-5.0, 5.0, K, dtype=torch.float64)
    fit = direction_pooling(pooled_samples(1.5, LOG_SCALES, locations=locations, seed=1), K)
    assert float((fit.standardized - 1.5).abs().max()) < 0.05
    assert abs(float(fit.per_direction.median()) - 1.5) < 0.05
    # the raw pool mixes locations as well as scales (a broader, flatter body), so it misreads α
    assert bool(((fit.pooled - 1.5).abs() > 0.1).all())


def test_directions_of_one_scale_read_the_same_pooled_or_standardized():
    fit = direction_pooling(pooled_samples(1.7, torch.zeros(K, dtype=torch.float64), seed=2), K)
    torch.testing.assert_close(fit.pooled, fit.standardized, atol=0.03, rtol=0)
    assert float(fit.log_scale_spread.max()) < 0.1       # only the IQRs' sampling noise


def test_a_direction_without_spread_leaves_its_lag_without_a_standardized_index():
    x = split_directions(pooled_samples(1.5, LOG_SCALES, seed=3), K).clone()
    x[1, 4] = 0.0                                        # a transport that underflowed to 0
    fit = direction_pooling(x.reshape(LAGS, -1), K)
    assert math.isnan(float(fit.standardized[1])) and math.isnan(float(fit.per_direction[1, 4]))
    assert math.isnan(float(fit.log_scale_spread[1]))
    keep = [0, 2, 3]
    assert bool(torch.isfinite(fit.standardized[keep]).all())
    assert bool(torch.isfinite(fit.per_direction[1, :4]).all())
    assert bool(torch.isnan(standardize_directions(x)[1]).all())


def test_split_is_direction_major_as_the_diagnostics_store_it():
    psi = torch.arange(2 * 3 * 20, dtype=torch.float64).reshape(2, 3, 20)  # (lag, K, batch)
    torch.testing.assert_close(split_directions(psi.flatten(1), 3), psi)


@pytest.mark.parametrize("samples, directions, match", [
    (torch.randn(2, 100), 3, "equal size"),
    (torch.randn(2, 100), 0, "positive integer"),
    (torch.randn(2, 100), True, "positive integer"),
    (torch.randn(2, 100), 2.5, "positive integer"),
    (torch.randn(2, 4, 25), 4, "lag, directions"),
    (torch.arange(200).reshape(2, 100), 4, "floating"),
    (torch.randn(2, 100), 10, "at least"),
])
def test_bad_samples_or_directions_are_refused(samples, directions, match):
    with pytest.raises(ValueError, match=match):
        split_directions(samples, directions)


def test_the_gaussian_mixture_reference_falls_with_the_spread_of_scales():
    ref = gaussian_mixture_alpha([0.0, 0.3, 0.6, 0.9], 8, 400, replicates=100, generator=gen(4))
    assert float(ref.alpha[0]) > 1.97                       # no mixture: Gaussian
    assert bool((ref.alpha[1:] < ref.alpha[:-1]).all())      # wider spread, heavier-looking pool
    assert bool((ref.alpha_low <= ref.alpha).all() and (ref.alpha <= ref.alpha_high).all())
    # the measured spread (sample sd of log IQR) tracks the drawn one, plus the IQRs' noise
    torch.testing.assert_close(ref.measured_spread[1:], ref.spread[1:], atol=0.1, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(spreads=[-0.1], directions=8, batch=100), "≥ 0"),
    (dict(spreads=[], directions=8, batch=100), "≥ 0"),
    (dict(spreads=[0.5], directions=1, batch=100), "2 directions"),
    (dict(spreads=[0.5], directions=8, batch=5), "batch"),
    (dict(spreads=[0.5], directions=8, batch=100, replicates=1), "replicates"),
])
def test_bad_reference_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gaussian_mixture_alpha(**kwargs)


def test_each_direction_needs_the_sample_size_its_own_signal_to_noise_asks():
    # unit Gaussian directions (SαS scale σ = 1/√2) with means m_k: SNR = m_k √(2N) > ε = 1
    # from N = 1/(2 m_k²) = 50, 12.5, 3.125, 0.78
    means = torch.tensor([0.1, 0.2, 0.4, 0.8], dtype=torch.float64)
    x = torch.randn(1, 4, 20_000, generator=gen(6), dtype=torch.float64) + means[None, :, None]
    grid = list(range(1, 201))
    r = directions_sample_size(x.reshape(1, -1), 4, grid, 1.0)
    need = r.per_direction[0]
    # m̄, σ̂ and α̂ from 20 000 samples each: N̂ within about 20 % of N* (and one grid step)
    lo = torch.tensor([40.0, 10.0, 2.0, 1.0], dtype=torch.float64)
    hi = torch.tensor([62.0, 16.0, 5.0, 1.0], dtype=torch.float64)
    assert bool(((need >= lo) & (need <= hi)).all()), need
    assert float(r.half[0]) == float(need[2])          # two of the four detect from there


def test_a_direction_without_a_scale_never_detects():
    x = torch.randn(2, 3, 100, generator=gen(7), dtype=torch.float64) + 1.0
    x[1, 0] = 0.0
    r = directions_sample_size(x.reshape(2, -1), 3, [1, 10, 100], 1.0)
    assert math.isinf(float(r.per_direction[1, 0]))
    assert bool(torch.isfinite(r.per_direction[0]).all())
    with pytest.raises(ValueError, match="eps"):
        directions_sample_size(x.reshape(2, -1), 3, [1, 10, 100], 0.0)


from conftest import cuda  # noqa: E402


@cuda
def test_pooling_on_cuda_matches_cpu():
    x = pooled_samples(1.5, LOG_SCALES, seed=5)
    cpu, gpu = direction_pooling(x, K), direction_pooling(x.cuda(), K)
    assert gpu.standardized.device.type == "cuda"
    for field in ("pooled", "per_direction", "standardized", "log_scale_spread"):
        torch.testing.assert_close(getattr(gpu, field).cpu(), getattr(cpu, field),
                                   rtol=1e-9, atol=1e-12)
