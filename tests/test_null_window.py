"""The sign-flip null of the detection rule, on samples with known means."""

import math

import pytest
import torch

from conftest import cuda
from horizon_lib.diagnostics import estimated_sample_size
from horizon_lib.null_window import sign_flip_null

GRID = [25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800]


def _samples(mean, lags=12, k=8, b=384, seed=0):
    g = torch.Generator().manual_seed(seed)
    return mean + torch.randn(lags, k * b, generator=g, dtype=torch.float64)


def test_noise_alone_is_detected_once_the_budget_outgrows_the_directions():
    # zero-mean Gaussian statistics, K = 8 directions of B = 384: the orientation leaves
    # |m̄| ≈ √(2/π)/√384 ≈ 0.041 per direction; the rule compares it with ε σ̂ N^{-1/2}, where
    # σ̂ = 1/√2 is the SαS scale of N(0, 1), so noise starts being "detected" near
    # N ≈ (2.33 · 0.707 / 0.041)² ≈ 1600: little at N ≤ 800, most lags at N = 12800
    null = sign_flip_null(_samples(0.0), 8, GRID, 2.33, replicates=10,
                          generator=torch.Generator().manual_seed(1))
    share = null.detected.mean(0)
    assert float(share[GRID.index(800)]) < 0.1 and float(share[-1]) > 0.5
    assert null.budget_with_power(0.1) == 800                # the last grid N below ≈ 1600
    assert null.n_required.shape == (10, 12)


def test_a_real_mean_is_removed_by_the_flips():
    # a mean of 1σ is detected at the first budget; flipped, the same magnitudes read as
    # noise: nothing at small N
    x = _samples(1.0)
    fit_need, _ = estimated_sample_size(x.mean(1), x.std(1), torch.full((12,), 2.0), GRID, 2.33)
    assert bool((fit_need == 25).all())
    null = sign_flip_null(x, 8, GRID, 2.33, replicates=5,
                          generator=torch.Generator().manual_seed(2))
    assert float(null.detected[:, 0].mean()) == 0.0


def test_bad_input():
    x = _samples(0.0, lags=2, k=2, b=64)
    with pytest.raises(ValueError, match="replicates"):
        sign_flip_null(x, 2, GRID, 2.33, replicates=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        sign_flip_null(x, 2, [50, 25], 2.33)
    with pytest.raises(ValueError, match="directions"):
        sign_flip_null(x, 3, GRID, 2.33)
    null = sign_flip_null(x, 2, [1e9], 2.33, replicates=1)
    assert math.isnan(null.budget_with_power(-1.0))


@cuda
def test_the_null_of_cuda_samples_is_the_cpus():
    # the same flips (a CPU generator), the same reading on the device: N̂ may differ only where
    # rounding moves an SNR across ε, so at most one lag of the 12 per replicate and budget
    x = _samples(0.0)
    cpu, gpu = (sign_flip_null(s, 8, GRID, 2.33, replicates=4,
                               generator=torch.Generator().manual_seed(3))
                for s in (x, x.cuda()))
    assert (gpu.detected.cpu() - cpu.detected).abs().max() <= 1 / 12
    assert bool((cpu.detected[:, -1] > 0.5).all())       # there is something to compare
