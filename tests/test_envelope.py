"""The envelope f̂(ℓ), its decomposition and per-unit time scales, on known answers."""

import math

import pytest
import torch

from conftest import TOL, cuda
from horizon_lib.cells import make_cell
from horizon_lib.envelope import (
    Envelope,
    constgate_time_scale,
    envelope_from_factors,
    estimate_envelope,
    fit_time_scales,
)
from horizon_lib.transport import transport_factors


def _terms(B=3, T=40, H=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    d = (0.7 + 0.3 * torch.rand(B, T, H, generator=g, dtype=torch.float64)).to(dtype)
    r = (0.05 * torch.randn(B, T, H, generator=g, dtype=torch.float64)).to(dtype)
    aux = [torch.rand(B, T, H, generator=g, dtype=torch.float64).to(dtype) for _ in range(2)]
    return d, r, *aux


# float32 keeps a running product over at most `anchor` lags: its error is a few ulps per lag
# (anchor = 32 → a few 1e−6 relative), beyond the elementwise tolerance of TOL.
ENV_TOL = {torch.float32: dict(rtol=1e-5, atol=0.0), torch.float64: TOL[torch.float64]}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("rate", ["scalar", "unit", "step"])
@pytest.mark.parametrize("with_e", [False, True])
def test_streaming_envelope_equals_the_full_transport_array(dtype, order, rate, with_e):
    d, r, e, lam = _terms(dtype=dtype)
    base = {"scalar": 0.01, "unit": lam[0, 0], "step": lam}[rate]
    lags = [1, 2, 3, 5, 6, 7, 11, 16, 17, 30, 40]        # mixed gaps: cached and recomputed
    kw = dict(base_rate=base, e=e if with_e else None)
    got = estimate_envelope(d, r, lags, order=order, anchor=4, **kw)
    gamma = transport_factors(d, r if order else torch.zeros_like(r), lags).total
    want = envelope_from_factors(gamma, lags, **kw)
    torch.testing.assert_close(got.per_unit, want.per_unit, **ENV_TOL[dtype])
    torch.testing.assert_close(got.per_unit_transport, want.per_unit_transport, **ENV_TOL[dtype])
    assert got.windows.tolist() == [3 * (40 - ell + 1) for ell in lags]


def test_envelope_by_explicit_windows():
    # f̂(ℓ) = Σ_q mean_{b,k} |η ∏d (1 + Σ r/d)| over the explicit windows (unfold), lag 1 and T
    d, r, _, _ = _terms()
    got = estimate_envelope(d, r, [1, 40], base_rate=0.1)
    for i, ell in enumerate([1, 40]):
        prod = d.unfold(1, ell, 1).prod(-1)
        bracket = 1 + (r / d).unfold(1, ell, 1).sum(-1)
        want = (0.1 * prod * bracket).abs().mean((0, 1)).sum()
        assert got.f[i].item() == pytest.approx(want.item(), rel=1e-12)


def test_constgate_zeroth_order_envelope_is_h_eta_retention_power():
    # f(ℓ) = H η (1 − s)^ℓ exactly at zeroth order (theory/gates)
    cell = make_cell("ConstGate", 3, 8, s0=0.05, dtype=torch.float64)
    x = torch.randn(2, 60, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    trace = cell(x, diagnostics=True)
    lags = torch.arange(1, 61)
    env = estimate_envelope(trace.d, trace.r, lags, base_rate=1e-3, order=0)
    torch.testing.assert_close(env.f, 8 * 1e-3 * 0.95 ** lags.double())
    fit = fit_time_scales(lags, env.per_unit)
    torch.testing.assert_close(fit.tau, torch.full((8,), constgate_time_scale(0.05),
                                                   dtype=torch.float64))


def test_batch_chunking_and_combine_do_not_change_the_result():
    d, r, e, lam = _terms(B=5)
    a = estimate_envelope(d, r, [2, 9, 20], base_rate=lam, e=e)
    b = estimate_envelope(d, r, [2, 9, 20], base_rate=lam, e=e, batch_chunk=2)
    c = Envelope.combine([estimate_envelope(d[:2], r[:2], [2, 9, 20], base_rate=lam[:2], e=e[:2]),
                          estimate_envelope(d[2:], r[2:], [2, 9, 20], base_rate=lam[2:], e=e[2:])])
    for other in (b, c):
        torch.testing.assert_close(other.per_unit, a.per_unit)
        assert torch.equal(other.windows, a.windows)


def test_batched_equals_looped():
    d, r, _, _ = _terms(B=3)
    full = estimate_envelope(d, r, [1, 4, 33])
    parts = [estimate_envelope(d[b:b + 1], r[b:b + 1], [1, 4, 33]) for b in range(3)]
    torch.testing.assert_close(Envelope.combine(parts).per_unit, full.per_unit)


def test_decomposition_sgd_has_no_adaptive_part_and_adds_up():
    d, r, _, lam = _terms()
    sgd = estimate_envelope(d, r, [1, 5], base_rate=0.01)
    f_gates, f_adapt = sgd.decomposition(0.01)
    torch.testing.assert_close(f_gates, sgd.f)
    torch.testing.assert_close(f_adapt, torch.zeros_like(f_adapt))
    adam = estimate_envelope(d, r, [1, 5], base_rate=lam)
    f_gates, f_adapt = adam.decomposition(0.01)
    torch.testing.assert_close(f_gates + f_adapt, adam.f)
    # f_adapt is defined as the difference, so check f_gates itself: the envelope of the same
    # gates under the uniform SGD rate
    torch.testing.assert_close(f_gates, estimate_envelope(d, r, [1, 5], base_rate=0.01).f)


def test_exact_zeros_take_the_exact_path():
    d, r, _, _ = _terms()
    d[0, 10, 2] = 0.0
    got = estimate_envelope(d, r, [1, 4, 12])
    want = envelope_from_factors(transport_factors(d, r, [1, 4, 12]).total, [1, 4, 12])
    torch.testing.assert_close(got.per_unit, want.per_unit)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("saturated", [0.0, 1e-20, 1e-40])
def test_saturated_retentions_match_the_transport_array_at_either_order(order, saturated):
    # 0 and 1e−40 (subnormal in float32: the worker threads flush it to 0) once made the
    # log-space prefix sums NaN at order 0 or in float32; 1e−20 spoiled the later windows' digits
    for dtype in (torch.float32, torch.float64):
        d, r, _, _ = _terms(dtype=dtype)
        d[1, 7, 2] = d[2, 30, 0] = saturated
        r = r if order else torch.zeros_like(r)
        lags = [1, 4, 12, 40]
        got = estimate_envelope(d, r, lags, order=order)
        factors = transport_factors(d.double(), r.double(), lags)
        want = envelope_from_factors(factors.total if order else factors.zeroth, lags)
        assert torch.isfinite(got.per_unit).all()
        torch.testing.assert_close(got.per_unit.double(), want.per_unit,
                                   **(TOL[torch.float64] if dtype == torch.float64
                                      else ENV_TOL[torch.float32]))


@pytest.mark.parametrize("rate_kind", ["unit", "step"])
def test_only_sequences_holding_a_zero_take_the_exact_path(rate_kind, monkeypatch):
    import horizon_lib.envelope as envelope

    g = torch.Generator().manual_seed(4)
    d = 0.6 + 0.4 * torch.rand(5, 10, 3, generator=g, dtype=torch.float64)
    r = 0.1 * torch.randn(5, 10, 3, generator=g, dtype=torch.float64)
    e = torch.rand(5, 10, 3, generator=g, dtype=torch.float64)
    d[2, 4, 1] = 0.0                                   # one saturated gate, in sequence 2 only
    rate = (torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64) if rate_kind == "unit"
            else 0.5 + torch.rand(5, 10, 3, generator=g, dtype=torch.float64))
    lags = [1, 2, 5, 9]
    seen = []
    exact = envelope._envelope_by_factors
    monkeypatch.setattr(envelope, "_envelope_by_factors",
                        lambda d_, *a, **k: seen.append(d_.shape[0]) or exact(d_, *a, **k))
    got = estimate_envelope(d, r, lags, base_rate=rate, e=e)
    assert seen == [1]                                 # the exact path saw sequence 2 alone
    want = envelope_from_factors(transport_factors(d, r, lags).total, lags, base_rate=rate, e=e)
    torch.testing.assert_close(got.per_unit, want.per_unit, rtol=1e-12, atol=0)
    torch.testing.assert_close(got.per_unit_transport, want.per_unit_transport, rtol=1e-12, atol=0)
    assert got.windows.tolist() == [5 * (10 - ell + 1) for ell in lags]


def test_decayed_products_are_flushed_and_the_mode_is_restored():
    # d = 0.3 over 200 lags: 0.3^200 ≈ 1e−105 underflows float32 (zero), not float64
    d = torch.full((1, 200, 2), 0.3)
    env32 = estimate_envelope(d, torch.zeros_like(d), [1, 50, 200])
    env64 = estimate_envelope(d.double(), torch.zeros_like(d.double()), [1, 50, 200])
    assert env32.f[-1] == 0 and env64.f[-1].item() == pytest.approx(2 * 0.3 ** 200, rel=1e-10)
    assert (torch.tensor([1e-39]) * 1.0).item() != 0.0      # the caller's mode was not changed


def test_time_scales_of_exact_exponentials_and_degenerate_units():
    lags = torch.arange(1, 21, dtype=torch.float64)
    taus = torch.tensor([2.0, 10.0, 50.0], dtype=torch.float64)
    per_unit = 3.0 * torch.exp(-lags[:, None] / taus)
    per_unit = torch.cat([per_unit, torch.zeros(20, 1, dtype=torch.float64)], 1)  # a dead unit
    fit = fit_time_scales(lags, per_unit)
    torch.testing.assert_close(fit.tau[:3], taus)
    torch.testing.assert_close(fit.intercept[:3],
                               torch.full((3,), math.log(3.0), dtype=torch.float64))
    assert math.isnan(fit.tau[3].item()) and fit.points.tolist() == [20, 20, 20, 0]
    growing = fit_time_scales(lags, torch.exp(lags / 5)[:, None])
    assert math.isinf(growing.tau[0].item())


def test_constgate_time_scale_known_value():
    assert constgate_time_scale(0.05) == pytest.approx(19.4958, abs=1e-4)  # −1/log(0.95)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        constgate_time_scale(1.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lags=[0]), "≥ 1"),
    (dict(lags=[41]), "sequence length"),
    (dict(order=2), "order"),
    (dict(base_rate=torch.ones(2)), "base_rate"),
    (dict(base_rate=float("nan")), "finite"),
    (dict(e=torch.ones(3, 40, 4)), "shape"),
    (dict(r=torch.zeros(3, 40, 4)), "shape"),
    (dict(d=torch.full((3, 40, 5), 2.0)), r"\[0, 1\]"),
])
def test_bad_input_raises(kwargs, match):
    d, r, _, _ = _terms()
    args = dict(d=d, r=r, lags=[1, 2]) | kwargs
    extra = {k: v for k, v in args.items() if k not in ("d", "r", "lags")}
    with pytest.raises(ValueError, match=match):
        estimate_envelope(args["d"], args["r"], args["lags"], **extra)


def test_bad_factors_and_fits_raise():
    with pytest.raises(ValueError, match="gamma must"):
        envelope_from_factors(torch.ones(2, 3, 4), [1])
    with pytest.raises(ValueError, match="inside the sequence"):
        envelope_from_factors(torch.full((1, 3, 1, 2), float("nan")), [1])
    gamma = torch.ones(1, 3, 2, 2)          # two lags on a sequence of T = 3
    with pytest.raises(ValueError, match="lags has 1 entries but gamma has 2 lags"):
        envelope_from_factors(gamma, [1])
    with pytest.raises(ValueError, match=r"e must have shape \(batch, time, hidden\)"):
        envelope_from_factors(gamma, [1, 2], e=torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="per_unit"):
        fit_time_scales([1, 2, 3], torch.ones(2, 4))
    with pytest.raises(ValueError, match="min_points"):
        fit_time_scales([1, 2], torch.ones(2, 4), min_points=1)
    with pytest.raises(ValueError, match="same lag grid"):
        Envelope.combine([])


@cuda
def test_cuda_envelope_matches_cpu():
    d, r, e, lam = _terms(B=4, T=64, H=16)
    cpu = estimate_envelope(d, r, [1, 8, 64], base_rate=lam, e=e)
    gpu = estimate_envelope(d.cuda(), r.cuda(), [1, 8, 64], base_rate=lam.cuda(), e=e.cuda())
    assert gpu.f.device.type == "cuda"
    torch.testing.assert_close(gpu.per_unit.cpu(), cpu.per_unit)
