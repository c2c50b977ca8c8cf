"""Optimizer base rates Λ^{(q)} from live torch optimizers and from their raw state, checked
against their formulas."""

import pytest
import torch

from horizon_lib.base_rates import (
    base_rates_from_moments,
    optimizer_base_rates,
    rayleigh_base_rates,
)
from horizon_lib.cells import make_cell


def _stepped(opt_cls, steps=3, **kwargs):
    g = torch.Generator().manual_seed(0)
    cell = make_cell("GRU", 3, 4, generator=g, dtype=torch.float64)
    opt = opt_cls(cell.parameters(), **kwargs)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    for _ in range(steps):
        opt.zero_grad()
        cell(x).y.pow(2).mean().backward()
        opt.step()
    return cell, opt


def test_sgd_rate_is_the_step():
    cell, opt = _stepped(torch.optim.SGD, lr=0.05)
    rates = optimizer_base_rates(opt, cell.recurrent_weights())
    assert rates.optimizer == "sgd" and rates.lr == 0.05
    torch.testing.assert_close(rates.row_mean, torch.full((4,), 0.05, dtype=torch.float64))


@pytest.mark.parametrize("opt_cls, kwargs", [
    (torch.optim.Adam, dict(lr=1e-3)),
    (torch.optim.AdamW, dict(lr=2e-3, weight_decay=1e-2, betas=(0.9, 0.99))),
    (torch.optim.Adam, dict(lr=1e-3, amsgrad=True)),
])
def test_adam_rates_follow_the_bias_corrected_second_moment(opt_cls, kwargs):
    cell, opt = _stepped(opt_cls, **kwargs)
    rates = optimizer_base_rates(opt, cell.recurrent_weights())
    beta2, lr, eps = opt.param_groups[0]["betas"][1], kwargs["lr"], opt.param_groups[0]["eps"]
    blocks = []
    for W in cell.recurrent_weights():              # λ_qj = η / (√(v / (1 − β₂³)) + ε)
        st = opt.state[W]
        v = st["max_exp_avg_sq" if kwargs.get("amsgrad") else "exp_avg_sq"]
        blocks.append(lr / ((v / (1 - beta2 ** 3)).sqrt() + eps))
    want = torch.stack(blocks).mean(0)
    assert rates.optimizer == "adam"
    torch.testing.assert_close(rates.matrix, want)
    torch.testing.assert_close(rates.row_mean, want.mean(1))


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_rates_have_no_bias_correction(centered):
    cell, opt = _stepped(torch.optim.RMSprop, lr=1e-2, centered=centered)
    rates = optimizer_base_rates(opt, cell.recurrent_weights())
    eps = opt.param_groups[0]["eps"]
    blocks = []
    for W in cell.recurrent_weights():
        st = opt.state[W]
        v = st["square_avg"] - (st["grad_avg"] ** 2 if centered else 0)
        blocks.append(1e-2 / (v.sqrt() + eps))
    torch.testing.assert_close(rates.matrix, torch.stack(blocks).mean(0))


def test_stacked_blocks_count_as_separate_matrices():
    cell, opt = _stepped(torch.optim.Adam, lr=1e-3)
    W = cell.recurrent_weights()
    stacked = torch.nn.Parameter(torch.cat([w.detach() for w in W]))
    opt2 = torch.optim.Adam([stacked], lr=1e-3)
    opt2.state[stacked] = {k: (torch.cat([opt.state[w][k] for w in W]) if k != "step"
                               else opt.state[W[0]]["step"]) for k in opt.state[W[0]]}
    a = optimizer_base_rates(opt, W)
    b = optimizer_base_rates(opt2, [stacked])
    torch.testing.assert_close(a.matrix, b.matrix)


def test_rayleigh_quotient_known_values():
    cell, opt = _stepped(torch.optim.Adam, lr=1e-3)
    rates = optimizer_base_rates(opt, cell.recurrent_weights())
    states = torch.zeros(1, 3, 4, dtype=torch.float64)
    states[0, 0, 2] = 5.0                          # one active unit j = 2: Λ^{(q)} = λ_q2
    states[0, 1] = 1.0                             # equal |h_j|: Λ^{(q)} = row mean
    lam = rayleigh_base_rates(rates, states)       # states[0, 2] = 0: falls back to the row mean
    torch.testing.assert_close(lam[0, 0], rates.matrix[:, 2])
    torch.testing.assert_close(lam[0, 1], rates.row_mean)
    torch.testing.assert_close(lam[0, 2], rates.row_mean)


def _two_lr_groups(cell):
    """A stepped Adam whose first recurrent matrix has its own lr: Λ has no single lr."""
    first = cell.recurrent_weights()[0]
    rest = [p for p in cell.parameters() if p is not first]
    opt = torch.optim.Adam([{"params": [first], "lr": 1e-3}, {"params": rest, "lr": 2e-3}])
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    opt.zero_grad()
    cell(x).y.pow(2).mean().backward()
    opt.step()
    return opt


def test_bad_input_raises():
    cell, opt = _stepped(torch.optim.Adam, lr=1e-3)
    with pytest.raises(ValueError, match="SGD, Adam, AdamW or RMSprop"):
        optimizer_base_rates(torch.optim.Adagrad(cell.parameters()), cell.recurrent_weights())
    with pytest.raises(ValueError, match="at least one"):
        optimizer_base_rates(opt, [])
    with pytest.raises(ValueError, match="not among"):
        optimizer_base_rates(opt, [torch.nn.Parameter(torch.zeros(4, 4))])
    with pytest.raises(ValueError, match="take a step"):
        optimizer_base_rates(torch.optim.Adam(cell.parameters()), cell.recurrent_weights())
    with pytest.raises(ValueError, match="take a step"):
        optimizer_base_rates(torch.optim.RMSprop(cell.parameters()), cell.recurrent_weights())
    with pytest.raises(ValueError, match="parameter groups with different lr"):
        optimizer_base_rates(_two_lr_groups(cell), cell.recurrent_weights())
    with pytest.raises(ValueError, match="k·hidden"):
        optimizer_base_rates(opt, [cell.W_z])
    rates = optimizer_base_rates(opt, cell.recurrent_weights())
    with pytest.raises(ValueError, match="states"):
        rayleigh_base_rates(rates, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="finite"):
        rayleigh_base_rates(rates, torch.full((2, 3, 4), float("nan")))


# --- the raw-state reader: the same Λ as a live torch optimizer that took the same steps ---

def _steps_on_a_4x4(opt_cls, steps=3, **kwargs):
    """A 4×4 recurrent weight and a torch optimizer that took ``steps`` steps on it."""
    g = torch.Generator().manual_seed(5)
    W = torch.nn.Parameter(torch.randn(4, 4, generator=g, dtype=torch.float64))
    opt = opt_cls([W], **kwargs)
    for _ in range(steps):
        x = torch.randn(4, 8, generator=g, dtype=torch.float64)
        opt.zero_grad()
        torch.tanh(W @ x).pow(2).sum().backward()
        opt.step()
    return W, opt


@pytest.mark.parametrize("opt_cls, kwargs", [
    (torch.optim.AdamW, dict(lr=2e-3, betas=(0.9, 0.99), weight_decay=1e-2)),
    (torch.optim.Adam, dict(lr=1e-3, eps=1e-6)),
])
def test_raw_adam_state_gives_the_live_optimizers_rates(opt_cls, kwargs):
    W, opt = _steps_on_a_4x4(opt_cls, **kwargs)
    st, group = opt.state[W], opt.param_groups[0]
    raw = base_rates_from_moments([st["exp_avg_sq"]], optimizer="adamw", lr=group["lr"],
                                  eps=group["eps"], beta2=group["betas"][1], step=int(st["step"]))
    live = optimizer_base_rates(opt, [W])
    assert raw.optimizer == live.optimizer == "adam" and int(st["step"]) == 3
    torch.testing.assert_close(raw.matrix, live.matrix, rtol=0, atol=0)
    torch.testing.assert_close(raw.row_mean, live.row_mean, rtol=0, atol=0)


@pytest.mark.parametrize("centered", [False, True])
def test_raw_rmsprop_state_gives_the_live_optimizers_rates(centered):
    W, opt = _steps_on_a_4x4(torch.optim.RMSprop, lr=1e-2, centered=centered)
    st, group = opt.state[W], opt.param_groups[0]
    raw = base_rates_from_moments([st["square_avg"]], optimizer="rmsprop", lr=1e-2,
                                  eps=group["eps"],
                                  grad_avgs=[st["grad_avg"]] if centered else None)
    live = optimizer_base_rates(opt, [W])
    torch.testing.assert_close(raw.matrix, live.matrix, rtol=0, atol=0)
    torch.testing.assert_close(raw.row_mean, live.row_mean, rtol=0, atol=0)


def test_raw_sgd_rates_are_the_step_and_match_the_live_optimizer():
    W, opt = _steps_on_a_4x4(torch.optim.SGD, lr=0.05, momentum=0.9)
    raw = base_rates_from_moments([W.detach()], optimizer="sgd", lr=0.05)
    torch.testing.assert_close(raw.row_mean, optimizer_base_rates(opt, [W]).row_mean,
                               rtol=0, atol=0)
    torch.testing.assert_close(raw.row_mean, torch.full((4,), 0.05, dtype=torch.float64))


def test_raw_rates_known_values_and_block_averaging():
    # RMSprop, ε = 0: λ = η / √v; blocks v = 0.25 and v = 1 give λ = 0.2 and 0.1, mean 0.15
    v = torch.cat([torch.full((3, 3), 0.25), torch.full((3, 3), 1.0)])
    rates = base_rates_from_moments([v], optimizer="rmsprop", lr=0.1, eps=0.0)
    torch.testing.assert_close(rates.row_mean, torch.full((3,), 0.15, dtype=torch.float64))
    # Adam after one step with β₂ = 0.75: v̂ = v / (1 − 0.75) = 4 v; v = 0.25 → √v̂ = 1, λ = η
    rates = base_rates_from_moments([torch.full((2, 2), 0.25)], optimizer="adam", lr=0.3, eps=0.0,
                                    beta2=0.75, step=1)
    torch.testing.assert_close(rates.matrix, torch.full((2, 2), 0.3, dtype=torch.float64))


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer="adagrad", lr=0.1), "optimizer must be"),
    (dict(optimizer="sgd", lr=0.0), "lr > 0"),
    (dict(optimizer="rmsprop", lr=0.1, eps=-1.0), "eps ≥ 0"),
    (dict(optimizer="adam", lr=0.1), "step ≥ 1"),
    (dict(optimizer="adam", lr=0.1, beta2=0.999, step=0), "step ≥ 1"),
    (dict(optimizer="adam", lr=0.1, beta2=1.0, step=3), "beta2 in"),
    (dict(optimizer="adam", lr=0.1, beta2=0.9, step=1, grad_avgs=[torch.zeros(4, 4)]), "grad_avgs"),
    (dict(optimizer="rmsprop", lr=0.1, grad_avgs=[torch.zeros(3, 4)]), "grad_avgs"),
])
def test_raw_rates_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        base_rates_from_moments([torch.ones(4, 4)], **kwargs)


def test_raw_rates_bad_tensors_raise():
    with pytest.raises(ValueError, match="at least one"):
        base_rates_from_moments([], optimizer="sgd", lr=0.1)
    with pytest.raises(ValueError, match="k·hidden"):
        base_rates_from_moments([torch.ones(4, 4), torch.ones(3, 4)], optimizer="rmsprop", lr=0.1)
    with pytest.raises(ValueError, match="finite"):
        base_rates_from_moments([torch.full((2, 2), float("nan"))], optimizer="rmsprop", lr=0.1)
