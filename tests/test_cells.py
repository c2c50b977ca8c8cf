"""The five gated cells: initialisation, sequence handling and the analytic Jacobian terms."""

import math

import pytest
import torch

from conftest import TOL, cuda
from horizon_lib.cells import CELL_KINDS, make_cell
from horizon_lib.jacobians import immediate_parameter_vjp, perturb_parameters, step_jacobians


def _perturbed(kind, dtype=torch.float64, layer_norm=True, seed=0, H=6, D=3, scale=0.5):
    """A cell whose every parameter (gate weights, LN γ and β included) is moved off its
    initial value, so that every term of r_t is non-zero."""
    g = torch.Generator().manual_seed(seed)
    cell = make_cell(kind, D, H, layer_norm=layer_norm, generator=g, dtype=dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=dtype))
        if kind == "ConstGate":
            cell.s.fill_(0.3)          # the constant gate is a buffer: move it too
    return cell, g


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layer_norm", [True, False])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_analytic_jacobian_diagonal_equals_autograd(kind, layer_norm, dtype):
    cell, g = _perturbed(kind, dtype, layer_norm)
    x = torch.randn(4, 9, 3, generator=g, dtype=dtype)
    trace = cell(x, diagnostics=True)
    J = step_jacobians(cell, x)
    diag = torch.diagonal(J, dim1=-2, dim2=-1)
    torch.testing.assert_close(trace.d + trace.r, diag, **TOL[dtype])
    # r stands far above the tolerance, so the test checks r and not only d ≈ diag(J)
    assert trace.r.abs().max() > 1e4 * TOL[dtype]["atol"]


def test_release_style_remainder_misses_the_layernorm_terms():
    # Control: keeping only s (1 − g²) [W_h]_qq (the code release's form) with LayerNorm on is
    # visibly wrong, so the agreement above is not a tautology of the test setup.
    cell, g = _perturbed("ConstGate")
    x = torch.randn(4, 9, 3, generator=g, dtype=torch.float64)
    trace = cell(x, diagnostics=True)
    diag = torch.diagonal(step_jacobians(cell, x), dim1=-2, dim2=-1)
    s = cell.s
    a = torch.cat([torch.zeros(4, 1, 6, dtype=torch.float64), trace.h[:, :-1]], 1) @ cell.W_h.T
    a = a + x @ cell.W_x.T + cell.b_x
    gt = torch.tanh(torch.nn.functional.layer_norm(a, (6,), cell.ln_weight, cell.ln_bias))
    naive = (1 - s) + s * (1 - gt ** 2) * torch.diagonal(cell.W_h)
    assert (naive - diag).abs().max() > 1e-3


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_initialisation_follows_the_paper(kind):
    g = torch.Generator().manual_seed(1)
    cell = make_cell(kind, 4, 8, generator=g, dtype=torch.float64)
    eye = torch.eye(8, dtype=torch.float64)
    for W in cell.recurrent_weights():
        if W.abs().sum() > 0:          # gate weights start at zero, the others orthogonal
            torch.testing.assert_close(W @ W.T, eye)
    x = torch.randn(2, 5, 4, generator=g, dtype=torch.float64)
    trace = cell(x, diagnostics=True)
    if kind in ("ConstGate", "SharedGate", "DiagGate"):
        # zero gate weights and bias logit(0.05): s_t = 0.05 exactly at every step
        torch.testing.assert_close(trace.d, torch.full_like(trace.d, 0.95))
    if kind == "GRU":
        torch.testing.assert_close(
            cell.b_z, torch.full((8,), math.log(0.05 / 0.95), dtype=torch.float64))
    if kind == "LSTM":
        torch.testing.assert_close(
            cell.b_f, torch.full((8,), math.log(0.95 / 0.05), dtype=torch.float64))
        assert trace.e is not None and trace.c is not None
    else:
        assert trace.e is None and trace.c is None


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_batched_equals_looped_and_halves_continue(kind):
    cell, g = _perturbed(kind)
    x = torch.randn(3, 8, 3, generator=g, dtype=torch.float64)
    full = cell(x, diagnostics=True)
    for b in range(3):
        one = cell(x[b:b + 1], diagnostics=True)
        for name in ("y", "h", "d", "r"):
            torch.testing.assert_close(getattr(one, name)[0], getattr(full, name)[b])
    first = cell(x[:, :5], diagnostics=True)
    second = cell(x[:, 5:], first.final_state, diagnostics=True)
    torch.testing.assert_close(torch.cat([first.r, second.r], 1), full.r)
    torch.testing.assert_close(torch.cat([first.y, second.y], 1), full.y)


def test_outputs_shapes_dtype_and_no_diagnostics_by_default():
    cell = make_cell("DiagGate", 3, 5, out_features=2)
    trace = cell(torch.randn(4, 6, 3))
    assert trace.y.shape == (4, 6, 2) and trace.h.shape == (4, 6, 5)
    assert trace.d is None and trace.r is None and trace.y.dtype == torch.float32
    assert make_cell("LSTM", 3, 5, layer_norm=False, dtype=torch.float64)(
        torch.randn(1, 2, 3, dtype=torch.float64)).h.dtype == torch.float64


def test_layer_norm_off_has_no_layer_norm_parameters():
    names = {n for n, _ in make_cell("GRU", 3, 5, layer_norm=False).named_parameters()}
    assert not any(n.startswith("ln_") for n in names)
    assert {"ln_weight", "ln_bias"} <= {n for n, _ in make_cell("GRU", 3, 5).named_parameters()}


def test_recurrent_weights_are_the_square_recurrent_matrices():
    count = {k: len(make_cell(k, 3, 5).recurrent_weights()) for k in CELL_KINDS}
    assert count == {"ConstGate": 1, "SharedGate": 1, "DiagGate": 2, "GRU": 3, "LSTM": 4}


@pytest.mark.parametrize("bad, match", [
    (torch.randn(4, 3), "shape"),
    (torch.randn(2, 4, 5), "shape"),
    (torch.randn(2, 0, 3), "time step"),
])
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        make_cell("GRU", 3, 5)(bad)


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="unknown cell kind"):
        make_cell("RNN", 3, 5)
    with pytest.raises(ValueError, match="hidden_size"):
        make_cell("GRU", 3, 0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        make_cell("DiagGate", 3, 5, s0=1.5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        make_cell("ConstGate", 3, 5, s0=0.0)


@cuda
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cuda_terms_match_cpu(kind):
    cell, g = _perturbed(kind)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    cpu = cell(x, diagnostics=True)
    gpu = cell.to("cuda")(x.cuda(), diagnostics=True)
    assert gpu.r.device.type == "cuda"
    for name in ("y", "h", "d", "r", "e", "c"):          # e and c: the LSTM's only
        ref = getattr(cpu, name)
        if ref is not None:
            torch.testing.assert_close(getattr(gpu, name).cpu(), ref)


def test_perturb_parameters_moves_every_parameter():
    cell = make_cell("DiagGate", 3, 4)
    before = [p.clone() for p in cell.parameters()]
    perturb_parameters(cell, 0.1, generator=torch.Generator().manual_seed(0))
    assert all(not torch.equal(a, b) for a, b in zip(before, cell.parameters()))
    with pytest.raises(ValueError, match="scale"):
        perturb_parameters(cell, -1.0)


@pytest.mark.parametrize("kind", ["DiagGate", "LSTM"])
def test_immediate_parameter_vjp_matches_one_step_autograd(kind):
    # Σ_{b,t} c[b,t]ᵀ B_t for a one-hot c is the gradient of that single output of one step
    # whose incoming state is held fixed
    cell, g = _perturbed(kind)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    cot = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    cot[0, 1, 2, 3] = 1.0
    got = immediate_parameter_vjp(cell, x, cot)[0]
    xp = cell.project_inputs(x)
    state = cell.initial_state(2, x)
    for t in range(2):
        state, _, _ = cell.step(xp[:, t], state, terms=False)
    fixed = tuple(s.detach() for s in state)
    v = cell.transport_step(xp[:, 2], fixed, cell.transport_variable(fixed))
    grads = torch.autograd.grad(v[1, 3], list(cell.parameters()), allow_unused=True)
    want = torch.cat([(q if q is not None else torch.zeros_like(p)).reshape(-1)
                      for q, p in zip(grads, cell.parameters())])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cells_run_under_vmap_over_stacked_seeds(kind):
    # the experiment trains seeds as one batched model (torch.func): vmap over stacked
    # parameters must give each seed's own trace
    import copy

    from torch.func import functional_call, stack_module_state, vmap

    cells = [make_cell(kind, 3, 5, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    params, buffers = stack_module_state(cells)
    base = copy.deepcopy(cells[0]).to("meta")
    x = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(9))

    def run(p, b):
        trace = functional_call(base, (p, b), (x,), {"diagnostics": True})
        return trace.y, trace.r

    y, r = vmap(run)(params, buffers)
    for i, cell in enumerate(cells):
        trace = cell(x, diagnostics=True)
        torch.testing.assert_close(y[i], trace.y)
        torch.testing.assert_close(r[i], trace.r)
