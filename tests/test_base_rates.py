"""Optimizer base rates Λ^{(q)} read from live torch optimizers, checked against their formulas."""

import pytest
import torch

from horizon_lib.base_rates import optimizer_base_rates, rayleigh_base_rates
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
    with pytest.raises(ValueError, match="k·hidden"):
        optimizer_base_rates(opt, [cell.W_z])
    rates = optimizer_base_rates(opt, cell.recurrent_weights())
    with pytest.raises(ValueError, match="states"):
        rayleigh_base_rates(rates, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="finite"):
        rayleigh_base_rates(rates, torch.full((2, 3, 4), float("nan")))
