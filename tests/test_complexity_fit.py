"""Fits of log N(ℓ) against −log f(ℓ): the slope κ_α, the master fit's slope 1, and bad input."""

import math

import pytest
import torch

from horizon_lib.complexity_fit import (
    master_fit,
    normalized_master_fit,
    sample_complexity_fit,
    scaling_fit,
)
from horizon_lib.concentration import kappa
from horizon_lib.horizon import first_detectable_n, minimal_sample_size


def test_exact_law_gives_slope_kappa_and_master_slope_one():
    f = torch.exp(-torch.arange(1, 30, dtype=torch.float64) / 10.0)
    for alpha in (1.2, 1.5, 2.0):
        need = minimal_sample_size(0.7 * f, 1.3, alpha, 2.0)
        fit = sample_complexity_fit(f, need)
        assert fit.slope == pytest.approx(kappa(alpha), rel=1e-10)
        assert fit.r2 == pytest.approx(1.0, abs=1e-12)
        assert fit.ci_low <= fit.slope <= fit.ci_high
        assert master_fit(f, need, alpha).slope == pytest.approx(1.0, rel=1e-10)


def test_master_fit_with_per_lag_alpha_and_grid_quantisation():
    g = torch.Generator().manual_seed(0)
    f = torch.logspace(0, -2, 40, dtype=torch.float64)
    alpha = 1.4 + 0.4 * torch.rand(40, generator=g, dtype=torch.float64)
    grid = torch.logspace(0, 8, 161, dtype=torch.float64)  # ratio 10^0.05 between sizes
    res = first_detectable_n(0.5 * f, 1.0, alpha, grid, 1.0)
    fit = master_fit(f, res.n_required, alpha)
    # quantisation moves log N̂ by at most log(10^0.05) ≈ 0.115, a small fraction of the range
    assert fit.n_points == int(res.found.sum())
    assert abs(fit.slope - 1.0) < 0.02 and fit.ci_low < 1.0 < fit.ci_high


def test_lags_censored_at_the_first_budget_flatten_the_fit_unless_dropped():
    # exact SNR rule on a grid that starts above the N(ℓ) of the strong lags: those lags read
    # N̂ = N₁ (only N(ℓ) ≤ N₁ is known) and pull the slope down; n_min = N₁ drops them
    f = torch.logspace(0, -2, 60, dtype=torch.float64)
    alpha = 1.5
    grid = 25 * 2 ** (torch.arange(0, 60, dtype=torch.float64) / 8)     # ratio 2^(1/8)
    res = first_detectable_n(3 * f, 1.0, alpha, grid, 2.0)
    at_first = res.found & (res.n_required == grid[0])
    assert int(at_first.sum()) >= 10                       # the problem is there to see
    biased = sample_complexity_fit(f, res.n_required)
    fair = sample_complexity_fit(f, res.n_required, n_min=float(grid[0]))
    assert not biased.ci_low <= kappa(alpha) <= biased.ci_high        # 3 is excluded
    assert fair.slope == pytest.approx(kappa(alpha), abs=0.01)   # only grid rounding enters
    assert fair.censored == int(at_first.sum()) and biased.censored == 0
    assert fair.n_points == int(res.found.sum()) - fair.censored
    master = master_fit(f, res.n_required, alpha, n_min=float(grid[0]))
    assert master.slope == pytest.approx(1.0, abs=0.005) and master.censored == fair.censored
    with pytest.raises(ValueError, match="n_min must be > 0"):
        master_fit(f, res.n_required, alpha, n_min=0)


@pytest.mark.parametrize("C", [0.05, 1.0, 20.0])
def test_normalized_master_fit_is_exact_where_the_release_form_drifts(C):
    # N(ℓ) = (C / f)^κ(ℓ) with α drifting over the lags: log N = κ log C + κ(−log f), so the
    # release's slope picks up the κ(ℓ) log C term (exact only for C = 1); divided by κ it is 1
    f = torch.logspace(0, -2, 40, dtype=torch.float64)
    alpha = torch.linspace(1.9, 1.3, 40, dtype=torch.float64)
    need = (C / f) ** kappa(alpha)
    fit = normalized_master_fit(f, need, alpha)
    assert fit.slope == pytest.approx(1.0, rel=1e-10)
    assert fit.intercept == pytest.approx(math.log(C), abs=1e-10)
    release = master_fit(f, need, alpha).slope
    if C == 1.0:
        assert release == pytest.approx(1.0, rel=1e-10)
    else:
        assert abs(release - 1.0) > 0.02                 # the drift the normalisation removes


def test_lags_with_none_on_the_grid_are_dropped():
    f = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.01], dtype=torch.float64)
    need = torch.tensor([4.0, 16.0, 64.0, 256.0, math.inf], dtype=torch.float64)
    fit = sample_complexity_fit(f, need)
    assert fit.n_points == 4 and fit.slope == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sample_complexity_fit([1.0, 0.5], [1.0, 2.0]), "needs ≥ 3 usable points"),
        (lambda: sample_complexity_fit([1.0, 0.5, 0.1], [1.0, 2.0]), "one value per lag"),
        (lambda: sample_complexity_fit([1.0, -0.5, 0.1], [1.0, 2.0, 3.0]), "envelope f must be"),
        (lambda: sample_complexity_fit([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), "abscissa is constant"),
        (lambda: sample_complexity_fit([1.0, 0.5, 0.1], [1.0, 2.0, 3.0], level=1.5), "level"),
        (lambda: sample_complexity_fit([], []), "f must not be empty"),
        (lambda: master_fit([1.0, 0.5, 0.1], [1.0, 2.0, 3.0], 1.0), r"alpha must lie in \(1, 2\]"),
        (lambda: master_fit([1.0, 0.5, 0.1], [1.0, 2.0, 3.0], [1.5, 1.5]), "one value per lag"),
        (lambda: master_fit([1.0, 0.5, float("nan")], [1.0, 2.0, 3.0], 1.5), "f must not contain"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_scaling_fit_recovers_power_laws_of_the_envelope():
    # known answers: y = c f^b exactly gives slope b with r² = 1
    f = torch.logspace(0, -6, 25, dtype=torch.float64)
    for b in (0.5, 1.0, 2.5):
        fit = scaling_fit(f, 0.3 * f ** b)
        assert fit.slope == pytest.approx(b, rel=1e-10)
        assert fit.r2 == pytest.approx(1.0, abs=1e-12) and fit.n_points == 25


def test_scaling_fit_interval_covers_the_true_slope_under_noise():
    g = torch.Generator().manual_seed(3)
    f = torch.logspace(0, -3, 200, dtype=torch.float64)
    y = f * torch.exp(0.2 * torch.randn(200, generator=g, dtype=torch.float64))
    fit = scaling_fit(f, y)
    assert fit.ci_low < 1.0 < fit.ci_high and fit.ci_high - fit.ci_low < 0.1


def test_scaling_fit_when_sigma_follows_f_the_snr_rule_loses_the_lag():
    # |m| ∝ f and σ ∝ f: N(ℓ) = (εσ/|m|)^κ is the same at every lag, so its fit has slope 0
    f = torch.logspace(0, -4, 30, dtype=torch.float64)
    mean, scale = 0.2 * f, 0.5 * f
    assert scaling_fit(f, mean.abs()).slope == pytest.approx(1.0, rel=1e-10)
    assert scaling_fit(f, scale).slope == pytest.approx(1.0, rel=1e-10)
    need = minimal_sample_size(mean, scale, 1.5, 2.0)
    assert sample_complexity_fit(f, need).slope == pytest.approx(0.0, abs=1e-9)


def test_scaling_fit_drops_zero_and_infinite_values_and_rejects_bad_input():
    f = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.0625], dtype=torch.float64)
    y = torch.tensor([1.0, 0.25, 0.0, 1 / 64, math.inf], dtype=torch.float64)
    fit = scaling_fit(f, y)
    assert fit.n_points == 3 and fit.slope == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(ValueError, match="one value per lag"):
        scaling_fit(f, y[:3])
    with pytest.raises(ValueError, match="must not contain NaN"):
        scaling_fit(f, torch.full_like(f, math.nan))
    with pytest.raises(ValueError, match="needs ≥ 3 usable points"):
        scaling_fit(f[:2], y[:2])
    with pytest.raises(ValueError, match="not the signed mean"):
        scaling_fit(f, torch.tensor([1.0, -0.25, 0.1, 0.01, 0.001], dtype=torch.float64))


def test_grouped_fit_separates_the_groups_offsets_from_the_trend():
    # three seeds with slope 1 each but offsets that grow as f falls across seeds: pooled,
    # the offsets leak into the slope; grouped, each seed's line has slope exactly 1 and the
    # interval (t on 2 df from the slopes' spread) collapses onto it
    f = torch.cat([torch.logspace(0, -1, 10, dtype=torch.float64) * 10.0 ** -k
                   for k in range(3)])
    y = f * torch.tensor([1.0, 3.0, 9.0], dtype=torch.float64).repeat_interleave(10)
    seeds = torch.arange(3).repeat_interleave(10)
    pooled = scaling_fit(f, y)
    grouped = scaling_fit(f, y, groups=seeds)
    assert abs(pooled.slope - 1.0) > 0.1
    assert grouped.slope == pytest.approx(1.0, rel=1e-12) and grouped.groups == 3
    assert grouped.ci_low == pytest.approx(1.0, abs=1e-9) and grouped.n_points == 30
    # noisy slopes: the interval is the t interval of the per-group slopes
    g = torch.Generator().manual_seed(0)
    noisy = y * torch.exp(0.3 * torch.randn(30, generator=g, dtype=torch.float64))
    fit = scaling_fit(f, noisy, groups=seeds)
    per = [scaling_fit(f[seeds == s], noisy[seeds == s]).slope for s in range(3)]
    from scipy import stats

    spread = torch.tensor(per, dtype=torch.float64).std().item()
    half = stats.t.ppf(0.975, 2) * spread / math.sqrt(3)
    assert fit.slope == pytest.approx(sum(per) / 3, rel=1e-12)
    assert fit.ci_high - fit.slope == pytest.approx(half, rel=1e-9)
    # the master fit drops censored lags before grouping; too few groups is an error
    need = (2.0 / f) ** 2
    assert master_fit(f, need, 2.0, groups=seeds).slope == pytest.approx(1.0, rel=1e-10)
    with pytest.raises(ValueError, match="≥ 2 groups"):
        scaling_fit(f, y, groups=torch.zeros(30))
    with pytest.raises(ValueError, match="label every lag"):
        scaling_fit(f, y, groups=seeds[:5])
