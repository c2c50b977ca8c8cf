"""The matched statistic: prefix-sum ψ against a direct loop, JVP against finite differences."""

import pytest
import torch

from _standin import StandInGated
from horizon_lib.matched import matched_statistic, orient_per_lag, random_unit_directions, state_jvp


def _terms(b=3, t=9, h=4, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = 0.5 + 0.45 * torch.rand(b, t, h, generator=g, dtype=torch.float64)
    r = 0.1 * torch.randn(b, t, h, generator=g, dtype=torch.float64)
    delta = torch.randn(b, t, h, generator=g, dtype=torch.float64)
    v = torch.randn(k, b, t, h, generator=g, dtype=torch.float64)
    return d, r, delta, v


@pytest.mark.parametrize("lags", [
    [1, 3, 8],                 # two distinct gaps: every lag after the first by running products
    [1, 2, 3, 5, 7],           # repeated gaps
    [1, 2, 4, 7, 8],           # more distinct gaps than are kept: lag 7 formed directly
    [6, 2, 8],                 # not increasing
])
def test_prefix_sums_match_a_direct_loop(lags):
    d, r, delta, v = _terms()
    rate = torch.tensor([1.0, 0.5, 2.0, 0.1], dtype=torch.float64)
    psi = matched_statistic(d, r, delta, v, lags, rate=rate)
    k_, b_, t_, h_ = v.shape
    for i, ell in enumerate(lags):
        for k in range(k_):
            for b in range(b_):
                vals = []
                for t in range(ell, t_):
                    window = range(t - ell + 1, t + 1)
                    prod = torch.prod(torch.stack([d[b, j] for j in window]), 0)
                    gamma = prod * (1 + sum(r[b, j] / d[b, j] for j in window))
                    vals.append((rate * gamma * delta[b, t] * v[k, b, t - ell]).sum())
                torch.testing.assert_close(psi[i, k, b], torch.stack(vals).mean())


def test_orientation_uses_the_sign_of_the_whole_sample_once_per_lag():
    d, r, delta, v = _terms(b=8)
    psi = matched_statistic(d, r, delta, v, [1, 2])
    pooled = orient_per_lag(psi)
    assert pooled.shape == (2, 2 * 8)
    # each (lag, direction) has a non-negative mean after orientation
    assert (pooled.view(2, 2, 8).mean(-1) >= 0).all()
    sign = torch.sign(psi.mean(-1, keepdim=True))
    torch.testing.assert_close(pooled, (psi * sign).flatten(1))


def test_jvp_matches_finite_differences():
    model = StandInGated(3, 5, generator=torch.Generator().manual_seed(1)).double()
    params = {n: p.detach() for n, p in model.named_parameters()}
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def hidden(p, x):
        out = torch.func.functional_call(model, p, (x,))
        return out  # ŷ stands in for the state here: any differentiable function of θ will do

    w = random_unit_directions(params, 3, generator=torch.Generator().manual_seed(3))
    norms = torch.sqrt(sum(t.flatten(1).pow(2).sum(1) for t in w.values()))
    torch.testing.assert_close(norms, torch.ones(3, dtype=torch.float64))
    v = state_jvp(hidden, params, w, x)
    h = 1e-6
    for k in range(3):
        plus = hidden({n: params[n] + h * w[n][k] for n in params}, x)
        minus = hidden({n: params[n] - h * w[n][k] for n in params}, x)
        torch.testing.assert_close(v[k], (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case, words", [
    ("lag", "lie in \\[1, T\\)"), ("empty", "must not be empty"), ("shape", "share one shape"),
    ("v", "direction, batch"), ("d", "retention d must lie in"), ("rate", "rate must be"),
    ("delta_nan", "δ must be finite"), ("delta_inf", "δ must be finite"),
    ("v_nan", "v must be finite"), ("v_inf", "v must be finite"),
])
def test_bad_input(case, words):
    d, r, delta, v = _terms()
    lags, rate = [1], 1.0
    if case == "lag":
        lags = [9]
    elif case == "empty":
        lags = []
    elif case == "shape":
        r = r[:, :-1]
    elif case == "v":
        v = v[0]
    elif case == "d":
        d = d.clone()
        d[0, 0, 0] = -0.1
    elif case == "rate":
        rate = torch.ones_like(d)                # a per-step rate is not supported here
    elif case.startswith(("delta_", "v_")):      # one bad entry would make ψ NaN silently
        bad = float("nan") if case.endswith("nan") else float("inf")
        if case.startswith("delta"):
            delta = delta.clone()
            delta[1, 4, 2] = bad
        else:
            v = v.clone()
            v[1, 0, 3, 1] = bad
    with pytest.raises(ValueError, match=words):
        matched_statistic(d, r, delta, v, lags, rate=rate)
    with pytest.raises(ValueError, match="K must be"):
        random_unit_directions({"a": torch.zeros(2)}, 0)


def test_random_unit_directions_need_a_parameter():
    with pytest.raises(ValueError, match="at least one parameter"):
        random_unit_directions({}, 2)


from conftest import cuda  # noqa: E402


@cuda
def test_matched_statistic_on_cuda_matches_cpu():
    d, r, delta, v = _terms()
    cpu = matched_statistic(d, r, delta, v, [1, 3])
    gpu = matched_statistic(d.cuda(), r.cuda(), delta.cuda(), v.cuda(), [1, 3])
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)


def test_instantaneous_statistic_is_the_last_term_of_the_sum():
    d, r, delta, v = _terms(t=7)
    lags = [1, 4]
    psi, inst = matched_statistic(d, r, delta, v, lags, instantaneous=True)
    # rebuild ψ_t at t = T − 1 directly
    for i, ell in enumerate(lags):
        window = range(6 - ell + 1, 7)
        gamma = torch.prod(torch.stack([d[:, j] for j in window]), 0) * (
            1 + sum(r[:, j] / d[:, j] for j in window))
        expected = torch.einsum("bh,kbh->kb", gamma * delta[:, 6], v[:, :, 6 - ell])
        torch.testing.assert_close(inst[i], expected)
    assert inst.shape == psi.shape == (2, 2, 3)
    torch.testing.assert_close(psi, matched_statistic(d, r, delta, v, lags))


def test_saturated_gate_keeps_the_first_order_term():
    d, r, delta, v = _terms(b=1, t=5, h=1, k=1)
    d[0, 2, 0] = 0.0                                  # a gate of exactly 1 at step 2
    psi = matched_statistic(d, r, delta, v, [2])
    assert torch.isfinite(psi).all()
    # window ending at t = 3 covers steps 2, 3: Γ = r_2 d_3 + d_2 d_3 (1 + r_3/d_3) → r_2 d_3
    gamma_3 = r[0, 2, 0] * d[0, 3, 0]
    window_4 = d[0, 3, 0] * d[0, 4, 0] * (1 + r[0, 3, 0] / d[0, 3, 0] + r[0, 4, 0] / d[0, 4, 0])
    expected = (gamma_3 * delta[0, 3, 0] * v[0, 0, 1, 0]
                + window_4 * delta[0, 4, 0] * v[0, 0, 2, 0]) / 3
    # the t = 2 window (steps 1, 2) holds the zero too: r_2 d_1 ... computed the same way
    gamma_2 = r[0, 2, 0] * d[0, 1, 0] + 0.0 * d[0, 1, 0]
    expected = expected + gamma_2 * delta[0, 2, 0] * v[0, 0, 0, 0] / 3
    # D_FLOOR = 1e-6 bounds the error of each window by ~1e-6 (times |δ v| of order 1)
    torch.testing.assert_close(psi[0, 0, 0], expected, rtol=0, atol=1e-6)


def test_sub_batches_and_lag_blocks_do_not_change_the_statistic(monkeypatch):
    import horizon_lib.matched as matched

    d, r, delta, v = _terms(b=5)
    lags = [1, 2, 3, 5, 7]
    want, want_inst = matched_statistic(d, r, delta, v, lags, instantaneous=True)
    # a budget of 2·T·H entries: one sequence per sub-batch, blocks of two lags
    monkeypatch.setattr(matched, "LAG_BLOCK_ENTRIES", 2 * d.shape[1] * d.shape[2])
    monkeypatch.setattr(matched, "LAG_BLOCK", 2)
    got, got_inst = matched_statistic(d, r, delta, v, lags, instantaneous=True)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(got_inst, want_inst, rtol=1e-12, atol=0)
