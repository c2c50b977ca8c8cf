"""κ_α and the N^{−1/κ_α} law, on problems with known answers."""

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import cuda
from horizon_lib.concentration import (
    deviation_quantiles,
    fit_concentration_rate,
    kappa,
    sample_mean_deviations,
)


def test_kappa_known_values_and_domain():
    assert kappa(2.0) == 2.0 and kappa(1.5) == 3.0 and kappa(1.25) == pytest.approx(5.0)
    t = kappa(torch.tensor([2.0, 1.5]))
    assert torch.allclose(t, torch.tensor([2.0, 3.0]))
    for bad in (1.0, 0.5, 2.1, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            kappa(bad)
    with pytest.raises(ValueError):
        kappa(torch.tensor([1.0]))


def test_deviation_quantiles_match_numpy_lower_quantile():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 101, 4, generator=g, dtype=torch.float64)
    q = deviation_quantiles(x, [0.5, 0.9])
    ref = np.quantile(x.numpy(), [0.5, 0.9], axis=1, method="inverted_cdf")
    assert np.allclose(q.numpy(), np.moveaxis(ref, 0, 1))


def test_gaussian_mean_quantile_is_exact_law():
    # α = 2, σ = 1: X̄_N ~ N(0, 2/N), so the median of |X̄_N| is √(2/N) · Φ⁻¹(0.75)
    g = torch.Generator().manual_seed(1)
    n_grid = [1, 10, 100]
    d = sample_mean_deviations([2.0], n_grid, 20_000, generator=g, dtype=torch.float64)
    med = deviation_quantiles(d, [0.5])[0, 0]
    exact = np.sqrt(2 / np.array(n_grid)) * stats.norm.ppf(0.75)
    assert np.allclose(med.numpy(), exact, rtol=0.03)  # median s.e. ≈ 1.1% at 2·10⁴ replicates


@pytest.mark.parametrize("alpha", [1.3, 1.7, 2.0])
def test_fitted_rate_recovers_minus_one_over_kappa(alpha):
    g = torch.Generator().manual_seed(2)
    n_grid = [10, 100, 1000]
    d = sample_mean_deviations([alpha], n_grid, 3000, generator=g)
    fit = fit_concentration_rate(n_grid, d, n_boot=50, generator=g)
    # over 15 seeds the slope's sd is 0.005–0.006: a fixed 5 sd, and the bootstrap s.e. must
    # agree with that spread (an s.e. that grew from a bug would otherwise loosen the test)
    err = abs(fit.slope.item() + 1 / kappa(alpha))
    assert err < 0.03
    assert 0.0025 < fit.se.item() < 0.012
    assert fit.ci_low.item() < fit.slope.item() < fit.ci_high.item()


def test_chunking_keeps_the_law_of_the_deviations():
    # chunks draw their uniforms one after another, so a seeded result depends on the chunk
    # size (documented) but not its law: 4 chunks of 500 against one of 2000, column by column
    from scipy import stats

    one = sample_mean_deviations([1.5], [5, 50], 2000, generator=torch.Generator().manual_seed(3))
    four = sample_mean_deviations([1.5], [5, 50], 2000, generator=torch.Generator().manual_seed(3),
                                  max_draws_per_chunk=500 * 50)
    assert one.shape == four.shape == (1, 2000, 2) and not torch.equal(one, four)
    for j in range(2):
        assert stats.ks_2samp(one[0, :, j].numpy(), four[0, :, j].numpy()).pvalue > 1e-3


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_grid=[]), "n_grid"),
    (dict(n_grid=[0, 10]), "N"),
    (dict(n_grid=[10, 5]), "increasing"),
    (dict(replicates=0), "replicates"),
    (dict(alphas=[0.0]), "alpha"),
    (dict(scale=0.0), "scale σ must be > 0"),
    (dict(scale=-1.0), "scale σ must be > 0"),
])
def test_bad_input_raises(kwargs, match):
    args = dict(alphas=[1.5], n_grid=[1, 10], replicates=10, scale=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        sample_mean_deviations(args["alphas"], args["n_grid"], args["replicates"],
                               scale=args["scale"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_deviation_quantiles_reject_a_non_finite_deviation(bad):
    # kthvalue sorts a NaN last: without the check the median of [0, 1, 2, 3, NaN] comes back as
    # the finite 2, a quantile of the wrong sample
    x = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]).reshape(1, 5, 1)
    assert deviation_quantiles(x, [0.5]).item() == 2.0
    x[0, 4, 0] = bad
    with pytest.raises(ValueError, match="deviations must be finite"):
        deviation_quantiles(x, [0.5])


@pytest.mark.parametrize("p", [0.0, 1.0, -0.5, 1.5])
def test_deviation_quantiles_reject_a_level_outside_0_1(p):
    with pytest.raises(ValueError, match=r"quantile level p must lie in \(0, 1\)"):
        deviation_quantiles(torch.ones(1, 5, 2), [0.5, p])


def test_fit_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        fit_concentration_rate([1, 10], torch.ones(2, 5, 3))
    with pytest.raises(ValueError, match="at least two sample sizes"):
        fit_concentration_rate([10], torch.ones(1, 5, 1))
    with pytest.raises(ValueError, match="n_boot must be ≥ 2"):
        fit_concentration_rate([1, 10], torch.ones(1, 5, 2), n_boot=1)
    with pytest.raises(ValueError, match=r"quantile level p must lie in \(0, 1\)"):
        fit_concentration_rate([1, 10], torch.ones(1, 5, 2), prob=1.0)
    with pytest.raises(ValueError, match="finite"):
        fit_concentration_rate([1, 10], torch.full((1, 5, 2), float("nan")))
    with pytest.raises(ValueError, match="signed=False"):
        fit_concentration_rate([1, 10], -torch.ones(1, 5, 2))


@cuda
def test_cuda_batch_runs_on_device():
    g = torch.Generator(device="cuda").manual_seed(0)
    d = sample_mean_deviations([1.5, 2.0], [10, 100], 2000, generator=g, device="cuda")
    assert d.device.type == "cuda"
    fit = fit_concentration_rate([10, 100], d, n_boot=10, generator=g)
    assert fit.slope.device.type == "cuda"
    # the point fit is the CPU's on the same draws, and the CUDA draws have the right law:
    # the median's slope is −1/κ_α (s.e. ≈ 0.02 at R = 2000 over one decade of N)
    cpu = fit_concentration_rate([10, 100], d.cpu(), n_boot=10)
    assert torch.allclose(fit.slope.cpu(), cpu.slope, atol=1e-5)
    assert torch.allclose(cpu.slope, -1 / kappa(torch.tensor([1.5, 2.0])), atol=0.1)


def test_signed_deviations_are_the_signed_means():
    a = sample_mean_deviations([1.5, 2.0], [5, 50], 64, generator=torch.Generator().manual_seed(4))
    s = sample_mean_deviations([1.5, 2.0], [5, 50], 64, generator=torch.Generator().manual_seed(4),
                               signed=True)
    assert torch.equal(s.abs(), a) and bool((s < 0).any())
