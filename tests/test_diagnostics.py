"""diagnose_model reads f̂ and Λ from the library's one definition of each (issue 6c).

Known answers: f̂ is :func:`horizon_lib.envelope.estimate_envelope` on the forward terms of the
whole diagnostic split (the diagnostics compute it per chunk and pool), and Λ is
:func:`horizon_lib.base_rates.optimizer_base_rates` of the live torch optimizer whose second
moments the diagnostics are handed as plain tensors.
"""

import math

import numpy as np
import pytest
import torch

from horizon_lib.base_rates import optimizer_base_rates
from horizon_lib.diagnostics import diagnose_model, envelope_sample_size, estimated_sample_size
from horizon_lib.envelope import estimate_envelope
from horizon_lib.experiment_config import DiagnosticsConfig
from horizon_lib.sequence_model import build_model
from horizon_lib.training import TrainConfig

B, T, D, H = 12, 14, 3, 5   # K·B = 24 ≥ the tail-index fit's 20 samples
LAGS = (1, 2, 4, 9, 13)


def _data():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    y = torch.randn(B, T, 1, generator=g, dtype=torch.float64)
    return x, y


def _stepped(cell, opt_cls, **kwargs):
    """A float64 model of ``cell`` after 3 steps of a torch optimizer on the MSE of the data."""
    model = build_model(cell, D, H, 0.05, torch.Generator().manual_seed(3)).double()
    opt = opt_cls(model.parameters(), **kwargs)
    x, y = _data()
    for _ in range(3):
        opt.zero_grad()
        (model(x) - y).pow(2).mean().backward()
        opt.step()
    return model, opt


# batch 8 < B: two chunks (8 and 4 sequences) pooled by Envelope.combine
CFG = DiagnosticsConfig(lags=LAGS, n_grid=(2, 4, 8), directions=2, batch=8, mc_replicates=0)


@pytest.mark.parametrize("cell", ["diaggate", "gru", "lstm"])
def test_adamw_diagnostics_use_the_library_envelope_and_base_rates(cell):
    model, opt = _stepped(cell, torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.99), eps=1e-7,
                          weight_decay=1e-4)
    names = dict(model.named_parameters())
    state = {n: opt.state[p]["exp_avg_sq"] for n, p in names.items()}
    train = TrainConfig(optimizer="adamw", lr=1e-2, betas=(0.9, 0.99), eps=1e-7)
    x, y = _data()
    out = diagnose_model(model, x, y, CFG, train=train, opt_state=state, step=3)

    live = optimizer_base_rates(opt, model.cell.recurrent_weights())
    torch.testing.assert_close(out["rate"], live.row_mean, rtol=1e-12, atol=0)
    assert not torch.allclose(live.row_mean, torch.full_like(live.row_mean, 1e-2))  # adaptive

    with torch.no_grad():
        terms = model(x, return_terms=True)
    assert (terms["e"] is not None) == (cell == "lstm")
    want = estimate_envelope(terms["d"], terms["r"], LAGS, base_rate=live.row_mean, e=terms["e"])
    torch.testing.assert_close(out["unit_envelope"], want.per_unit, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["f"], want.f, rtol=1e-12, atol=0)
    assert out["f"].dtype == torch.float64 and out["alpha_instantaneous"].shape == (len(LAGS),)


def test_rmsprop_and_sgd_base_rates_and_float32_envelope():
    model, opt = _stepped("diaggate", torch.optim.RMSprop, lr=1e-2, alpha=0.99, eps=1e-8)
    state = {n: opt.state[p]["square_avg"] for n, p in model.named_parameters()}
    x, y = _data()
    out = diagnose_model(model, x, y, CFG, train=TrainConfig(optimizer="rmsprop", lr=1e-2),
                         opt_state=state, step=3)
    live = optimizer_base_rates(opt, model.cell.recurrent_weights())
    torch.testing.assert_close(out["rate"], live.row_mean, rtol=1e-12, atol=0)

    # SGD: Λ = η for every unit; a float32 model's envelope agrees to float32 rounding
    model = model.float()
    x, y = x.float(), y.float()
    out = diagnose_model(model, x, y, CFG, train=TrainConfig(optimizer="sgd", lr=0.05))
    torch.testing.assert_close(out["rate"], torch.full((H,), 0.05, dtype=torch.float64))
    with torch.no_grad():
        terms = model(x, return_terms=True)
    want = estimate_envelope(terms["d"], terms["r"], LAGS, base_rate=0.05)
    torch.testing.assert_close(out["f"], want.f.double(), rtol=1e-5, atol=0)


def test_exact_zero_retention_is_treated_as_the_envelope_module_does():
    # ConstGate with s = 1: d = 0 exactly, so the first-order Γ of a window is r at ℓ = 1 and
    # Σ_k r_k ∏_{j≠k} d_j = 0 for ℓ ≥ 2 (the old D_FLOOR clamp gave ~1e−6·r there instead)
    model = build_model("constgate", D, H, 1.0, torch.Generator().manual_seed(3)).double()
    x, y = _data()
    with torch.no_grad():
        terms = model(x, return_terms=True)
    assert bool((terms["d"] == 0).all())
    out = diagnose_model(model, x, y, CFG, train=TrainConfig(optimizer="sgd", lr=0.05))
    want = estimate_envelope(terms["d"], terms["r"], LAGS, base_rate=0.05)
    torch.testing.assert_close(out["f"], want.f, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["f"][0], 0.05 * terms["r"].abs().mean((0, 1)).sum())
    assert bool((out["f"][1:] == 0).all())


def test_monte_carlo_detection_of_gaussian_means_and_its_reach():
    # known answer: X ~ N(m, σ²) gives P(|X̄_N − m| < |m|) = 2Φ(|m|√N/σ) − 1; the m-out-of-n
    # bootstrap measures N ≤ n/10 only and leaves larger N as NaN
    from scipy import stats

    from horizon_lib.diagnostics import monte_carlo_detection

    g = torch.Generator().manual_seed(5)
    m = torch.tensor([0.02, -0.05, 0.1], dtype=torch.float64)
    samples = m[:, None] + torch.randn(3, 20000, generator=g, dtype=torch.float64)
    grid = [25, 100, 400, 2000, 4000, 30000]
    det = monte_carlo_detection(samples, grid, replicates=2000, generator=g)
    assert torch.isnan(det[:, 4:]).all() and not torch.isnan(det[:, :4]).any()
    m_bar = samples.mean(1).abs().numpy()          # the check is centred on the sample's m̄
    want = 2 * stats.norm.cdf(m_bar[:, None] * np.sqrt(grid[:4])) - 1
    # binomial standard error of 2000 replicates is ≤ 0.011; the bootstrap's own variance
    # (σ̂ ≈ σ) adds less than that
    assert np.abs(det[:, :4].numpy() - want).max() < 0.04
    assert torch.isnan(monte_carlo_detection(samples[:, :100], [25, 50], replicates=10)).all()
    with pytest.raises(ValueError, match="max_fraction"):
        monte_carlo_detection(samples, grid, replicates=10, max_fraction=0.0)
    with pytest.raises(ValueError, match="replicates"):
        monte_carlo_detection(samples, grid, replicates=0)


def test_a_diagnostic_lag_as_long_as_the_sequence_raises():
    # ψ at lag ℓ needs v_{t−ℓ} with t < T, so ℓ = T has no window (ℓ = T − 1 = 13 is in LAGS)
    model = build_model("diaggate", D, H, 0.05, torch.Generator().manual_seed(3)).double()
    x, y = _data()
    cfg = DiagnosticsConfig(lags=(1, T), n_grid=(2, 4), directions=1, batch=8, mc_replicates=0)
    with pytest.raises(ValueError, match=r"diagnostic lags must lie in \[1, T\) = \[1, 14\)"):
        diagnose_model(model, x, y, cfg, train=TrainConfig(optimizer="sgd", lr=0.1))


from conftest import cuda  # noqa: E402


@cuda
@pytest.mark.parametrize("cell", ["diaggate", "lstm"])
def test_diagnostics_on_cuda_match_cpu(cell):
    # the directions and the Monte-Carlo indices come from CPU generators, so both devices
    # diagnose the same draws; only float64 rounding differs
    model, _ = _stepped(cell, torch.optim.SGD, lr=0.05)
    x, y = _data()
    cfg = DiagnosticsConfig(lags=LAGS, n_grid=(2, 4, 8), directions=2, batch=8,
                            mc_replicates=20)
    train = TrainConfig(optimizer="sgd", lr=0.05)
    cpu = diagnose_model(model, x, y, cfg, train=train)
    gpu = diagnose_model(model.cuda(), x.cuda(), y.cuda(), cfg, train=train)
    for key in ("f", "mean", "alpha", "scale", "samples", "alpha_by_k"):
        torch.testing.assert_close(gpu[key], cpu[key], rtol=1e-9, atol=1e-12, equal_nan=True)
    for key in ("n_required", "h_largest", "h_contiguous"):
        torch.testing.assert_close(gpu[key], cpu[key])
    torch.testing.assert_close(gpu["mc_detection"], cpu["mc_detection"], rtol=0, atol=0.05)


def test_the_envelope_prediction_is_the_measured_rule_where_the_mean_follows_f():
    grid = [10, 20, 40, 80, 160, 320]
    f = torch.logspace(0, -1, 7, dtype=torch.float64)
    scale, alpha = torch.full((7,), 2.0), torch.tensor([1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 1.2])
    mean = 0.7 * f                                   # m̄ ∝ f̂ exactly: the same N̂, c = 0.7
    need, c = envelope_sample_size(mean, f, scale, alpha, grid, 2.0)
    measured, _ = estimated_sample_size(mean, scale.double(), alpha, grid, 2.0)
    assert c == pytest.approx(0.7, rel=1e-12) and torch.equal(need, measured)
    assert bool(torch.isfinite(need).any()) and bool(torch.isinf(need).any())  # both kinds
    # one lag whose mean is 5× what f̂ predicts: the median keeps c, the prediction keeps N̂
    bent = mean.clone()
    bent[3] *= 5
    need_bent, c_bent = envelope_sample_size(-bent, f, scale, alpha, grid, 2.0)  # sign: |m̄|
    assert c_bent == pytest.approx(0.7, rel=1e-12) and torch.equal(need_bent, measured)
    assert not torch.equal(estimated_sample_size(bent, scale.double(), alpha, grid, 2.0)[0],
                           measured)
    # no lag with a usable mean: nothing is predicted detectable
    need_none, c_none = envelope_sample_size(torch.full((7,), float("nan")), f, scale, alpha,
                                             grid, 2.0)
    assert math.isnan(c_none) and bool(torch.isinf(need_none).all())
    with pytest.raises(ValueError, match="share one shape"):
        envelope_sample_size(mean[:3], f, scale, alpha, grid, 2.0)
