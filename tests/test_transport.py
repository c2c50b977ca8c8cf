"""Transport factors Γ, effective rates μ and exact products, on problems with known answers."""

import math

import pytest
import torch

from conftest import TOL, cuda
from horizon_lib.cells import make_cell
from horizon_lib.jacobians import step_jacobians
from horizon_lib.transport import (
    effective_learning_rates,
    exact_transport_diagonal,
    exact_transport_products,
    transport_factors,
    transport_norms,
)


def _rand(shape, seed, lo=0.6, hi=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (lo + (hi - lo) * torch.rand(shape, generator=g, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_frozen_gate_cell_gives_powers_of_the_retention(dtype):
    # ConstGate with W_h = 0: J_t = (1 − s) I exactly, r = 0, so Γ = (1 − s)^ℓ and so is diag(M)
    g = torch.Generator().manual_seed(0)
    cell = make_cell("ConstGate", 3, 4, s0=0.2, generator=g, dtype=dtype)
    with torch.no_grad():
        cell.W_h.zero_()
    x = torch.randn(2, 12, 3, generator=g, dtype=dtype)
    trace = cell(x, diagnostics=True)
    assert torch.equal(trace.r, torch.zeros_like(trace.r))
    lags = [1, 2, 5, 12]
    gamma = transport_factors(trace.d, trace.r, lags)
    exact = exact_transport_diagonal(step_jacobians(cell, x), lags)
    for i, ell in enumerate(lags):
        want = torch.full((2, 13 - ell, 4), 0.8 ** ell, dtype=dtype)
        torch.testing.assert_close(gamma.total[:, ell - 1:, i], want, **TOL[dtype])
        torch.testing.assert_close(exact[:, ell - 1:, i], want, **TOL[dtype])
        assert torch.isnan(gamma.total[:, : ell - 1, i]).all()


def test_linear_diagonal_recurrence_exact_product():
    # h_t = a_t ⊙ h_{t−1} + x_t: J_t = diag(a_t); with d = a, r = 0 the transport is the product
    a = _rand((3, 20, 5), 1)
    lags = [1, 3, 7, 20]
    exact = exact_transport_diagonal(torch.diag_embed(a), lags)
    gamma = transport_factors(a, torch.zeros_like(a), lags)
    for i, ell in enumerate(lags):
        windows = a.unfold(1, ell, 1).prod(-1)                       # explicit ∏ over each window
        torch.testing.assert_close(exact[:, ell - 1:, i], windows, **TOL[torch.float64])
        torch.testing.assert_close(gamma.total[:, ell - 1:, i], windows, **TOL[torch.float64])


def test_first_order_remainder_is_second_order_on_a_diagonal_recurrence():
    # J = diag(d + ε r): the exact diagonal is ∏(d + ε r); Γ(ε) = ∏d (1 + ε Σ r/d) differs at
    # O(ε²), so halving ε quarters the remainder (ratio → 4 as ε → 0).
    d, r = _rand((2, 30, 4), 2), _rand((2, 30, 4), 3, -0.1, 0.1)
    lags = [10, 30]
    rem = []
    for eps in (1e-2, 5e-3):
        exact = exact_transport_diagonal(torch.diag_embed(d + eps * r), lags)
        gamma = transport_factors(d, eps * r, lags).total
        rem.append((exact - gamma).nan_to_num().abs().max().item())
    assert rem[0] / rem[1] == pytest.approx(4.0, rel=0.02)


def test_lag_one_is_the_jacobian_diagonal_and_largest_lag_has_one_window():
    d, r = _rand((2, 9, 3), 4), _rand((2, 9, 3), 5, -0.2, 0.2)
    gamma = transport_factors(d, r, [1, 9])
    torch.testing.assert_close(gamma.total[:, :, 0], d + r, **TOL[torch.float64])
    assert torch.isnan(gamma.total[:, :8, 1]).all()
    want = d.prod(1) * (1 + (r / d).sum(1))
    torch.testing.assert_close(gamma.total[:, 8, 1], want, **TOL[torch.float64])


def test_batched_equals_looped():
    d, r = _rand((4, 15, 3), 6), _rand((4, 15, 3), 7, -0.1, 0.1)
    full = transport_factors(d, r, [2, 5, 11])
    for b in range(4):
        one = transport_factors(d[b:b + 1], r[b:b + 1], [2, 5, 11])
        torch.testing.assert_close(one.zeroth[0], full.zeroth[b], equal_nan=True)
        torch.testing.assert_close(one.first[0], full.first[b], equal_nan=True)


def test_lag_ten_thousand_does_not_underflow():
    # 0.95^10000 = e^{−512.9} ≈ 1.2e−223: a float64 number, computed from the log-space prefix
    T = 10_000
    d = torch.full((1, T, 1), 0.95, dtype=torch.float64)
    gamma = transport_factors(d, torch.zeros_like(d), [T]).total[0, -1, 0, 0].item()
    assert gamma > 0
    assert gamma == pytest.approx(math.exp(T * math.log(0.95)), rel=1e-10)


def test_saturated_gates_with_exact_zeros_match_brute_force():
    d, r = _rand((1, 12, 2), 8), _rand((1, 12, 2), 9, -0.3, 0.3)
    d[0, 4, 0] = 0.0
    d[0, 7, 1] = d[0, 9, 1] = 0.0
    lags = [1, 3, 6]
    got = transport_factors(d, r, lags).total
    for i, ell in enumerate(lags):
        for k in range(ell - 1, 12):
            for q in range(2):
                w = range(k - ell + 1, k + 1)
                zeroth = math.prod(d[0, j, q].item() for j in w)
                first = sum(r[0, j, q].item() * math.prod(d[0, m, q].item() for m in w if m != j)
                            for j in w)
                assert got[0, k, i, q].item() == pytest.approx(zeroth + first, abs=1e-14)


def _brute_force_gamma(d, r, k, ell, q):
    """Γ of one window by explicit products, no prefix sums (float64, no cancellation)."""
    w = range(k - ell + 1, k + 1)
    zeroth = math.prod(d[0, j, q].item() for j in w)
    first = sum(r[0, j, q].item() * math.prod(d[0, m, q].item() for m in w if m != j)
                for j in w)
    return zeroth + first


@pytest.mark.parametrize("tiny", [1e-8, 1e-14, 1e-20, 1e-300])
def test_tiny_retentions_do_not_spoil_the_windows_around_them(tiny):
    # a huge r/d in the prefix sums used to cost every later window its low digits (1.6 % at
    # d = 1e−14): saturated steps (d < D_FLOOR) now stay out of the prefix sums
    d, r = _rand((1, 40, 2), 10), _rand((1, 40, 2), 11, -0.3, 0.3)
    d[0, 3, 0] = tiny
    d[0, 20, 1] = d[0, 23, 1] = tiny                  # two in one window of unit 1
    lags = [1, 2, 5, 12]
    got = transport_factors(d, r, lags).total
    for i, ell in enumerate(lags):
        for k in range(ell - 1, 40):
            for q in range(2):
                want = _brute_force_gamma(d, r, k, ell, q)
                w = range(k - ell + 1, k + 1)
                if q == 1 and 20 in w and 23 in w:
                    # two saturated steps: set to 0, off by < D_FLOOR Σ|r_k| ∏_{j≠k} d_j
                    assert got[0, k, i, q].item() == 0.0 and abs(want) < 2 * 0.3 * tiny
                else:
                    assert got[0, k, i, q].item() == pytest.approx(want, rel=1e-12, abs=0)


def test_exact_diagonal_equals_a_naive_product_loop_on_a_real_cell():
    g = torch.Generator().manual_seed(3)
    cell = make_cell("GRU", 3, 4, generator=g, dtype=torch.float64)
    x = torch.randn(2, 10, 3, generator=g, dtype=torch.float64)
    J = step_jacobians(cell, x)
    got = exact_transport_diagonal(J, [1, 4, 10])
    for i, ell in enumerate([1, 4, 10]):
        for k in range(ell - 1, 10):
            M = torch.eye(4, dtype=torch.float64).expand(2, 4, 4)
            for j in range(k - ell + 1, k + 1):
                M = J[:, j] @ M
            torch.testing.assert_close(got[:, k, i], torch.diagonal(M, dim1=-2, dim2=-1))


def test_norms_of_orthogonal_products_are_one():
    Q = torch.linalg.qr(torch.randn(2, 6, 5, 5, generator=torch.Generator().manual_seed(4),
                                    dtype=torch.float64)).Q
    norms = transport_norms(Q, [1, 6])
    torch.testing.assert_close(norms[:, :, 0], torch.ones(2, 6, dtype=torch.float64))
    torch.testing.assert_close(norms[:, 5, 1], torch.ones(2, dtype=torch.float64))


def test_effective_rates_read_the_base_rate_at_the_window_start():
    d, r = _rand((2, 6, 3), 10), torch.zeros(2, 6, 3, dtype=torch.float64)
    lags = [1, 3]
    gamma = transport_factors(d, r, lags).total
    torch.testing.assert_close(effective_learning_rates(gamma, lags, 0.1), 0.1 * gamma,
                               equal_nan=True)
    unit = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(effective_learning_rates(gamma, lags, unit), unit * gamma,
                               equal_nan=True)
    lam = _rand((2, 6, 3), 11)
    e = _rand((2, 6, 3), 12)
    mu = effective_learning_rates(gamma, lags, lam, e=e)
    k, ell = 5, 3                                       # window of steps 3, 4, 5 opens at step 3
    torch.testing.assert_close(mu[:, k, 1], lam[:, k - ell + 1] * e[:, k] * gamma[:, k, 1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(lags=[0, 2]), "≥ 1"),
    (dict(lags=[2, 99]), "sequence length"),
    (dict(lags=[3, 2]), "increasing"),
    (dict(lags=[1.5]), "integer"),
    (dict(lags=[]), "non-empty"),
    (dict(d=torch.full((1, 5, 2), 1.2)), r"\[0, 1\]"),
    (dict(d=torch.full((1, 5, 2), -0.1)), r"\[0, 1\]"),
    (dict(r=torch.zeros(1, 4, 2)), "shape"),
    (dict(d=torch.full((5, 2), 0.5)), "shape"),
    (dict(r=torch.full((1, 5, 2), float("nan"))), "finite"),
    (dict(d=torch.tensor([[[0.5, float("nan")]] * 5])), "finite"),
])
def test_bad_input_raises(kwargs, match):
    args = dict(d=torch.full((1, 5, 2), 0.5), r=torch.zeros(1, 5, 2), lags=[1, 2]) | kwargs
    with pytest.raises(ValueError, match=match):
        transport_factors(args["d"], args["r"], args["lags"])


def test_bad_rates_and_jacobians_raise():
    gamma = transport_factors(torch.full((1, 5, 2), 0.5), torch.zeros(1, 5, 2), [1, 2]).total
    with pytest.raises(ValueError, match="base_rate"):
        effective_learning_rates(gamma, [1, 2], torch.ones(3))
    with pytest.raises(ValueError, match="lags has"):
        effective_learning_rates(gamma, [1, 2, 3], 1.0)
    with pytest.raises(ValueError, match="e must"):
        effective_learning_rates(gamma, [1, 2], 1.0, e=torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"gamma must have shape \(batch, time, lag, hidden\)"):
        effective_learning_rates(gamma[0], [1, 2], 1.0)
    with pytest.raises(ValueError, match="hidden, hidden"):
        exact_transport_diagonal(torch.ones(1, 5, 2, 3), [1])
    with pytest.raises(ValueError, match="finite"):
        transport_norms(torch.full((1, 5, 2, 2), float("nan")), [1])


@cuda
def test_cuda_transport_matches_cpu():
    d, r = _rand((2, 40, 8), 13), _rand((2, 40, 8), 14, -0.1, 0.1)
    cpu = transport_factors(d, r, [1, 7, 40]).total
    gpu = transport_factors(d.cuda(), r.cuda(), [1, 7, 40]).total
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, equal_nan=True)


def test_full_products_hold_the_diagonal_and_nan_outside():
    J = torch.randn(2, 7, 3, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    full = exact_transport_products(J, [1, 4])
    diag = exact_transport_diagonal(J, [1, 4])
    torch.testing.assert_close(torch.diagonal(full, dim1=-2, dim2=-1), diag, equal_nan=True)
    torch.testing.assert_close(full[:, 6, 1], J[:, 6] @ J[:, 5] @ J[:, 4] @ J[:, 3])
    assert torch.isnan(full[:, :3, 1]).all()


def _true_transport_diagonal(cell, x, k, ell):
    """diag(∂v_k/∂v_{k−ℓ}) by autograd through the recurrence itself: a perturbation added to
    the transport variable after step k − ℓ (before h is read from it), carried forward."""
    xp = cell.project_inputs(x)
    lstm = len(cell.initial_state(1, x)) == 3
    state = cell.initial_state(x.shape[0], x)
    for t in range(k - ell + 1):
        state, _, _ = cell.step(xp[:, t], state, terms=False)
    v0 = cell.transport_variable(state)

    def forward(v):
        s = (state[2] * torch.tanh(v), v, state[2]) if lstm else (v,)
        for t in range(k - ell + 1, k + 1):
            s, _, _ = cell.step(xp[:, t], s, terms=False)
        return cell.transport_variable(s).sum(0)      # sequences are independent

    J = torch.autograd.functional.jacobian(forward, v0)   # (hidden, batch, hidden)
    return torch.diagonal(J.permute(1, 0, 2), dim1=-2, dim2=-1)


@pytest.mark.parametrize("kind", ["ConstGate", "SharedGate", "DiagGate", "GRU", "LSTM"])
def test_exact_cell_diagonal_is_the_derivative_through_the_whole_recurrence(kind):
    # for the LSTM the held-o chain of step_jacobians misses the output gate's path (~10 % at
    # ℓ = 10); the products of the whole state's Jacobians do not
    from horizon_lib.jacobians import exact_cell_transport_diagonal, perturb_parameters

    g = torch.Generator().manual_seed(2)
    cell = perturb_parameters(make_cell(kind, 3, 5, generator=g, dtype=torch.float64), 0.3,
                              generator=g)
    x = torch.randn(2, 12, 3, generator=g, dtype=torch.float64)
    lags = [1, 2, 5, 10]
    got = exact_cell_transport_diagonal(cell, x, lags)
    held = exact_transport_diagonal(step_jacobians(cell, x).detach(), lags)
    for i, ell in enumerate(lags):
        for k in (ell, 11):
            want = _true_transport_diagonal(cell, x, k, ell)
            torch.testing.assert_close(got[:, k, i], want, rtol=1e-10, atol=1e-13)
            if kind != "LSTM" or ell == 1:
                torch.testing.assert_close(held[:, k, i], want, rtol=1e-10, atol=1e-13)
    if kind == "LSTM":                                  # the difference this function exists for
        assert (held[:, 11, 3] - got[:, 11, 3]).abs().max() > 1e-3 * got[:, 11, 3].abs().max()
