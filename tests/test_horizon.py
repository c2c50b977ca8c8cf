"""The detection rule of theory/window: SNR, N(ℓ), first N on a grid, Ĥ_N on a lag grid, ε_th."""

import math

import pytest
import torch

from conftest import cuda
from horizon_lib.horizon import (
    contiguous_window,
    epsilon_threshold,
    first_detectable_n,
    largest_detectable_lag,
    minimal_sample_size,
    snr,
)


def test_snr_gaussian_rate_and_shape():
    # α = 2: SNR = |m| √N / σ
    m = torch.tensor([0.5, -1.0], dtype=torch.float64)
    out = snr(m, 2.0, 2.0, [1.0, 4.0, 100.0])
    assert out.shape == (2, 3)
    expected = torch.tensor([[0.25, 0.5, 2.5], [0.5, 1.0, 5.0]], dtype=torch.float64)
    assert torch.allclose(out, expected, rtol=1e-14)


def test_snr_exceeds_eps_exactly_beyond_minimal_sample_size():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(50, generator=g, dtype=torch.float64) + 0.01
    s = torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    a = 1.05 + 0.95 * torch.rand(50, generator=g, dtype=torch.float64)
    n_req = minimal_sample_size(m, s, a, 3.0)
    at = snr(m, s, a, torch.tensor([1.0]))  # just check shapes line up first
    assert at.shape == (50, 1)
    for i in range(50):
        if n_req[i] >= 1:
            n_i = n_req[i].item()
            both = snr(m[i], s[i], a[i], [n_i * (1 - 1e-9), n_i * (1 + 1e-9)])
            assert both[0] < 3.0 < both[1]


def test_minimal_sample_size_gaussian_known_value_and_singular_cases():
    # N = (ε σ / |m|)^2 at α = 2: (2 · 1 / 0.5)^2 = 16
    assert minimal_sample_size(0.5, 1.0, 2.0, 2.0).item() == pytest.approx(16.0, rel=1e-14)
    assert minimal_sample_size(0.0, 1.0, 1.5, 2.0).item() == math.inf  # no signal
    # α ↓ 1: κ → ∞, so N(ℓ) → +inf when εσ > |m| and → 0 when εσ < |m|; never NaN
    near_one = minimal_sample_size(torch.tensor([0.5, 4.0], dtype=torch.float64), 1.0,
                                   1.0 + 1e-12, 2.0)
    assert near_one.tolist() == [math.inf, 0.0]


def test_first_detectable_n_is_the_smallest_grid_n_above_the_continuous_n():
    g = torch.Generator().manual_seed(1)
    grid = torch.logspace(0, 4, 17, dtype=torch.float64)
    m = torch.rand(200, generator=g, dtype=torch.float64) * 0.3 + 1e-3
    a = 1.1 + 0.9 * torch.rand(200, generator=g, dtype=torch.float64)
    res = first_detectable_n(m, 1.0, a, grid, 1.0)
    cont = minimal_sample_size(m, 1.0, a, 1.0)
    for i in range(200):
        above = grid[grid > cont[i] * (1 + 1e-12)]
        if above.numel():
            assert res.found[i] and res.n_required[i] == above[0]
        else:
            assert not res.found[i] and res.n_required[i] == math.inf


def test_none_on_the_grid_is_explicit():
    res = first_detectable_n([1.0, 1e-6], 1.0, 1.5, [10, 100], 2.0)
    assert res.found.tolist() == [True, False]
    assert res.n_required.tolist() == [10.0, math.inf]


def test_largest_lag_and_contiguous_window_differ_when_n_is_not_monotone():
    # the release's behaviour (the experiment): a far lag detectable while nearer ones are not
    lags = [2, 4, 8, 16, 32]
    need = [50.0, 800.0, 25.0, 25.0, 25.0]
    n = [10, 25, 50, 800, 1000]
    assert largest_detectable_lag(lags, need, n).tolist() == [0, 32, 32, 32, 32]
    assert contiguous_window(lags, need, n).tolist() == [0, 0, 2, 32, 32]


def test_lag_grid_windows_agree_for_monotone_n_and_batch():
    lags = torch.arange(1, 11, dtype=torch.float64)
    need = torch.stack([2.0 ** lags, 3.0 ** lags])  # (seed, lag), increasing in ℓ
    n = torch.tensor([1.0, 5.0, 100.0, 1e6], dtype=torch.float64)
    a, b = largest_detectable_lag(lags, need, n), contiguous_window(lags, need, n)
    assert a.shape == (2, 4) and torch.equal(a, b)
    assert a[0].tolist() == [0.0, 2.0, 6.0, 10.0]  # 2^6 = 64 ≤ 100 < 128


def test_epsilon_threshold_crosses_f_at_the_largest_detectable_lag():
    g = torch.Generator().manual_seed(2)
    lags = torch.arange(1, 101, dtype=torch.float64)
    f = torch.exp(-lags / 20.0)
    alpha = 1.3 + 0.6 * torch.rand(100, generator=g, dtype=torch.float64)
    sigma = 0.5 + torch.rand(100, generator=g, dtype=torch.float64)
    need = minimal_sample_size(0.3 * f, sigma, alpha, 1.5)
    n = torch.tensor([500.0, 8000.0], dtype=torch.float64)
    th = epsilon_threshold(f, need, alpha, n)  # (lag, n)
    above = f.unsqueeze(-1) >= th
    crossing = torch.where(above, lags.unsqueeze(-1), torch.zeros(1, dtype=torch.float64)).amax(0)
    assert torch.equal(crossing, largest_detectable_lag(lags, need, n))


def test_epsilon_threshold_is_flat_for_constant_alpha_and_sigma():
    # |m| = c f: ε_th = (ε σ / c) N^{−1/κ}, the same at every lag
    f = torch.tensor([1.0, 0.3, 0.01], dtype=torch.float64)
    need = minimal_sample_size(0.5 * f, 2.0, 1.5, 1.2)
    th = epsilon_threshold(f, need, 1.5, [100.0])
    assert torch.allclose(th, torch.full_like(th, 1.2 * 2.0 / 0.5 * 100 ** (-1 / 3)), rtol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: snr(1.0, 1.0, 1.0, [10]), r"alpha must lie in \(1, 2\]"),
        (lambda: snr(1.0, 1.0, 2.01, [10]), r"alpha must lie in \(1, 2\]"),
        (lambda: snr(1.0, 0.0, 1.5, [10]), "scale σ must be > 0"),
        (lambda: snr(1.0, 1.0, 1.5, [0.5]), "sample size N must be ≥ 1"),
        (lambda: snr(float("nan"), 1.0, 1.5, [10]), "mean must not contain NaN"),
        (lambda: snr(1.0, 1.0, 1.5, []), "n must not be empty"),
        (lambda: minimal_sample_size(1.0, 1.0, 1.5, 0.0), "eps ε must be > 0"),
        (lambda: minimal_sample_size(1.0, 1.0, float("nan"), 1.0), "alpha must not contain NaN"),
        (lambda: first_detectable_n(1.0, 1.0, 1.5, [10, 5], 1.0), "n_grid must be strictly"),
        (lambda: first_detectable_n(1.0, 1.0, 1.5, [], 1.0), "n_grid must not be empty"),
        (lambda: first_detectable_n(1.0, 1.0, 1.5, [0, 5], 1.0), "sample size N must be ≥ 1"),
        (lambda: largest_detectable_lag([], [], [10]), "lags must not be empty"),
        (lambda: largest_detectable_lag([2, 1], [1.0, 1.0], [10]), "lags must be strictly"),
        (lambda: largest_detectable_lag([0, 1], [1.0, 1.0], [10]), "every lag ℓ must be ≥ 1"),
        (lambda: largest_detectable_lag([[1, 2]], [1.0, 1.0], [10]), "lags must be one-dim"),
        (lambda: first_detectable_n(1.0, 1.0, 1.5, [[5, 10]], 1.0), "n_grid must be one-dim"),
        (lambda: contiguous_window([1, 2], [1.0, -1.0], [10]), "n_required must be ≥ 0"),
        (lambda: contiguous_window([1, 2], [1.0, 1.0, 1.0], [10]), "end in the lag axis"),
        (lambda: contiguous_window([1, 2], [1.0, float("nan")], [10]), "n_required must not"),
        (lambda: contiguous_window([1, 2], [1.0, 1.0], [0.0]), "sample size N must be ≥ 1"),
        (lambda: epsilon_threshold([1.0, 0.0], [1.0, 1.0], 1.5, [10]), "envelope f must be > 0"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@cuda
def test_windows_and_first_n_on_cuda_equal_the_cpus():
    lags = torch.arange(1, 11, dtype=torch.float64)
    need = torch.stack([2.0 ** lags, 3.0 ** lags])
    n = torch.tensor([1.0, 5.0, 100.0, 1e6], dtype=torch.float64)
    for window in (largest_detectable_lag, contiguous_window):
        gpu = window(lags.cuda(), need.cuda(), n.cuda())
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), window(lags, need, n))
    m = torch.tensor([0.5, 0.2, 0.05], dtype=torch.float64)
    grid = [10, 100, 1000, 10_000]
    cpu, gpu = (first_detectable_n(x, 1.0, 1.5, grid, 2.0) for x in (m, m.cuda()))
    assert gpu.n_required.device.type == "cuda"
    assert torch.equal(gpu.n_required.cpu(), cpu.n_required)
    assert torch.equal(gpu.found.cpu(), cpu.found)
