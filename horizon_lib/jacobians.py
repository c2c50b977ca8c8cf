"""Per-step Jacobian terms of the gated cells: analytic diagonals and the autograd check.

theory/gates splits the diagonal of the per-step Jacobian J_t = ∂h_t/∂h_{t−1} into the gate's
retention d_t and the rest r_t = diag(J_t) − d_t. This module holds the algebra those terms are
made of, derived here once, and an independent autograd computation of the full matrices J_t
that every analytic term is tested against (with :func:`perturb_parameters`, which moves every
weight off its initial value so that each term is exercised).

Derivations (hidden size H, one sequence; ⊙ elementwise; σ' = σ(1 − σ); tanh' = 1 − tanh²).

**LayerNorm.** u = γ ⊙ n + β with n = (a − ā)/ς, ā the mean and ς = √(var(a) + ε) (biased
variance). Since ∂ā/∂a_k = 1/H and ∂ς/∂a_k = n_k/H,

    N := ∂u/∂a = diag(γ/ς) (I − 11ᵀ/H − n nᵀ/H).

For any matrix A (H × H) the diagonal of N A is therefore

    [N A]_qq = (γ_q/ς) (A_qq − Ā_q − n_q (nᵀA)_q / H),     Ā_q = (1/H) Σ_k A_kq,     (LN-1)

and for diagonal c and any C, with Ã = A ∘ Cᵀ (elementwise),

    [N A diag(c) C]_qq = (γ_q/ς) [ (Ã c)_q − ((Ā ⊙ c)ᵀ C)_q − (n_q/H) (((nᵀA) ⊙ c)ᵀ C)_q ].  (LN-2)

Without LayerNorm N = I: (LN-1) is A_qq and (LN-2) is (Ã c)_q. (The paper's code release keeps
only A_qq even with LayerNorm on; the extra terms are O(1/H) each but ς can be small.)

**Leaky-gate family** (ConstGate, SharedGate, DiagGate). With g = tanh(LN(W_x x + W_h h + b)),

    h_t = h_{t−1} + s_t ⊙ (g_t − h_{t−1})
    J_t = diag(1 − s_t) + diag(s_t ⊙ tanh'(u_t)) N W_h + diag(g_t − h_{t−1}) ∂s_t/∂h_{t−1},

so d_t = 1 − s_t and r_t = s_t ⊙ tanh'(u_t) ⊙ [N W_h]_diag + (g_t − h_{t−1}) ⊙ σ'(·) ⊙ u_diag,
where u_diag = 0 (ConstGate), the vector u_s (SharedGate: s = σ(w_sᵀx + u_sᵀh + b_s), so
∂s/∂h_q = s(1 − s) u_{s,q}) or diag(U_s) (DiagGate).

**GRU.** z = σ(W_z x + U_z h + b_z), ρ = σ(W_r x + U_r h + b_r) (reset), a = W_g x + U_g(ρ ⊙ h)
+ b_g, g = tanh(LN(a)), h_t = h + z ⊙ (g − h). Since ∂a/∂h = U_g (diag(ρ) + diag(h ⊙ σ'_ρ) U_r),

    r_t = z ⊙ tanh'(u) ⊙ ( [N U_g]_diag ⊙ ρ + [N U_g diag(h ⊙ σ'_ρ) U_r]_diag )
          + (g − h) ⊙ σ'_z ⊙ diag(U_z),         d_t = 1 − z_t.

**LSTM** (transport on the cell state, theory/gates). i, f, o = σ(·), g = tanh(LN(W_g x + U_g h
+ b_g)), c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t). The cell-state step holds o_{t−1}
(computed from h_{t−2}) and reads h_{t−1} = o_{t−1} ⊙ tanh(c_{t−1}), so its Jacobian is

    C_t = ∂c_t/∂c_{t−1} = diag(f_t) + K_t diag(e_{t−1}),    e_t = ∂h_t/∂c_t = o_t ⊙ tanh'(c_t),
    K_t = ∂c_t/∂h_{t−1} = diag(c_{t−1} ⊙ σ'_f) U_f + diag(g ⊙ σ'_i) U_i + diag(i ⊙ tanh'(u)) N U_g,

hence d_t = f_t and r_t = diag(K_t) ⊙ e_{t−1}; the lag-ℓ factor is mapped to h_t by e_t.
At t = 1 the initial state carries o_0 = 0 (so h_0 = 0 and e_0 = 0 when started from zeros).

The cell state alone is not the LSTM's recurrent state: o_{t−1} depends on h_{t−2}, hence on
c_{t−2}, so for ℓ ≥ 2 the product C_t ⋯ C_{t−ℓ+1} misses the paths through the output gate and
is not ∂c_t/∂c_{t−ℓ}. :func:`state_jacobians` differentiates the whole state instead, (c, o) for
the LSTM (h = o ⊙ tanh c is a function of it), and :func:`exact_cell_transport_diagonal` reads
the exact diag(∂c_t/∂c_{t−ℓ}) (for the other cells diag(∂h_t/∂h_{t−ℓ})) from their products.
"""

from __future__ import annotations

import torch
from torch.func import jacrev, vmap

__all__ = [
    "layer_norm_stats",
    "normalized_diagonal",
    "normalized_cross_diagonal",
    "step_jacobians",
    "state_jacobians",
    "exact_cell_transport_diagonal",
    "immediate_parameter_vjp",
    "perturb_parameters",
]


def layer_norm_stats(a: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """n = (a − ā)/ς and 1/ς of a LayerNorm over the last axis (ς² = biased variance + eps).

    Args:
        a: pre-activations (batch, hidden).
        eps: the LayerNorm ε.

    Returns:
        (n, inv_sigma) with shapes (batch, hidden) and (batch, 1).
    """
    centred = a - a.mean(-1, keepdim=True)
    inv_sigma = torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + eps)
    return centred * inv_sigma, inv_sigma


def normalized_diagonal(A: torch.Tensor, batch_shape: tuple[int, int], ln=None) -> torch.Tensor:
    """Diagonal of N A, equation (LN-1) above; N = I when ``ln`` is None.

    Args:
        A: a square matrix (hidden, hidden) acting on h.
        batch_shape: (batch, hidden) of the result.
        ln: ``(n, inv_sigma, gamma)`` of the LayerNorm at this step, or None.

    Returns:
        Tensor (batch, hidden).
    """
    diag = torch.diagonal(A)
    if ln is None:
        return diag.expand(batch_shape)
    n, inv_sigma, gamma = ln
    h = A.shape[0]
    return gamma * inv_sigma * (diag - A.mean(0) - n * (n @ A) / h)


def normalized_cross_diagonal(A: torch.Tensor, C: torch.Tensor, c: torch.Tensor,
                              ln=None) -> torch.Tensor:
    """Diagonal of N A diag(c) C, equation (LN-2) above; N = I when ``ln`` is None.

    Args:
        A, C: square matrices (hidden, hidden).
        c: the diagonal (batch, hidden).
        ln: ``(n, inv_sigma, gamma)`` or None.

    Returns:
        Tensor (batch, hidden).
    """
    plain = c @ (A * C.T).T
    if ln is None:
        return plain
    n, inv_sigma, gamma = ln
    h = A.shape[0]
    mean_term = (A.mean(0) * c) @ C
    n_term = ((n @ A) * c) @ C
    return gamma * inv_sigma * (plain - mean_term - n * n_term / h)


def step_jacobians(cell, x: torch.Tensor, state=None) -> torch.Tensor:
    """The full per-step transport Jacobians by autograd: J_t = ∂h_t/∂h_{t−1} (LSTM: C_t).

    Independent of the analytic terms: each step's map from the transport variable (h_{t−1};
    for the LSTM the cell state c_{t−1} with o_{t−1} held) to its successor is differentiated
    with ``torch.func.jacrev``, vectorised over the batch with ``vmap``. Each matrix is exact;
    for the LSTM their products are not (o is held: see :func:`state_jacobians`).

    Args:
        cell: a :class:`horizon_lib.cells.GatedCell`.
        x: inputs (batch, time, input).
        state: initial state (default: the cell's zero state).

    Returns:
        Tensor (batch, time, hidden, hidden): J[b, t] maps the transport variable at step t − 1
        (0-based t, with step −1 the initial state) to step t.
    """
    xp = cell.project_inputs(cell.check_inputs(x))
    if state is None:
        state = cell.initial_state(x.shape[0], x)

    def one(xp_b, state_b, v_b):
        st = tuple(s.unsqueeze(0) for s in state_b)
        return cell.transport_step(xp_b.unsqueeze(0), st, v_b.unsqueeze(0))[0]

    jac = vmap(jacrev(one, argnums=2))
    out = []
    for t in range(x.shape[1]):
        v = cell.transport_variable(state)
        out.append(jac(xp[:, t], tuple(state), v))
        state, _, _ = cell.step(xp[:, t], state, terms=False)
    return torch.stack(out, dim=1)


def _is_lstm(cell) -> bool:
    return len(cell.initial_state(1, torch.zeros(1))) == 3


def state_jacobians(cell, x: torch.Tensor, state=None) -> torch.Tensor:
    """The Jacobians of the whole recurrent state by autograd: ∂s_t/∂s_{t−1}, exact BPTT.

    For the one-state cells s = h and these equal :func:`step_jacobians`. For the LSTM
    s = (c, o) (c first; h = o ⊙ tanh c is computed from it), so products of these matrices
    follow every path from c_{t−ℓ} to c_t, the output gate's included.

    Args:
        cell: a :class:`horizon_lib.cells.GatedCell`.
        x: inputs (batch, time, input).
        state: initial state (default: the cell's zero state).

    Returns:
        Tensor (batch, time, S, S) with S = hidden (2 · hidden for the LSTM).
    """
    xp = cell.project_inputs(cell.check_inputs(x))
    if state is None:
        state = cell.initial_state(x.shape[0], x)
    lstm = _is_lstm(cell)
    H = cell.hidden_size

    def one(xp_b, z_b):
        if lstm:
            c, o = z_b[:H].unsqueeze(0), z_b[H:].unsqueeze(0)
            new = cell.step(xp_b.unsqueeze(0), (o * torch.tanh(c), c, o), terms=False)[0]
            return torch.cat([new[1], new[2]], -1)[0]
        return cell.step(xp_b.unsqueeze(0), (z_b.unsqueeze(0),), terms=False)[0][0][0]

    jac = vmap(jacrev(one, argnums=1))
    out = []
    for t in range(x.shape[1]):
        z = torch.cat([state[1], state[2]], -1) if lstm else state[0]
        out.append(jac(xp[:, t], z))
        state, _, _ = cell.step(xp[:, t], state, terms=False)
    return torch.stack(out, dim=1)


def exact_cell_transport_diagonal(cell, x: torch.Tensor, lags, state=None) -> torch.Tensor:
    """The exact diag(∂v_t/∂v_{t−ℓ}) of the transport variable v (h; the cell state c for the
    LSTM) through the whole recurrence: the diagonal of the transport block of the products of
    :func:`state_jacobians` ("Eq. 10"'s M_{t,ℓ}, the reference for the first-order Γ).

    Args:
        cell, x, state: as :func:`state_jacobians`.
        lags: strictly increasing lags 1 ≤ ℓ ≤ T.

    Returns:
        Tensor (batch, time, lag, hidden), NaN where the window starts before the sequence
        (the convention of :func:`horizon_lib.transport.exact_transport_diagonal`).
    """
    from .transport import exact_transport_diagonal

    diag = exact_transport_diagonal(state_jacobians(cell, x, state).detach(), lags)
    return diag[..., : cell.hidden_size]


@torch.no_grad()
def perturb_parameters(cell: torch.nn.Module, scale: float, *,
                       generator: torch.Generator | None = None) -> torch.nn.Module:
    """Add N(0, scale²) noise to every parameter in place (gate weights, LayerNorm γ and β
    included), so that every term of the Jacobian is exercised; returns the cell.

    Raises:
        ValueError: scale < 0.
    """
    if not scale >= 0:
        raise ValueError(f"scale must be ≥ 0; got {scale}")
    for p in cell.parameters():
        p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device))
    return cell


def immediate_parameter_vjp(cell, x: torch.Tensor, cotangents: torch.Tensor,
                            state=None) -> torch.Tensor:
    """Σ_{b,t} c[b, t]ᵀ B_t for a batch of cotangents c, where B_t = ∂⁺v_t/∂θ is the immediate
    parameter sensitivity of step t (its inputs v_{t−1} and state held fixed): the "B_{t−ℓ}" of
    the lag-ℓ gradient g_{t,ℓ} = δ_tᵀ M_{t,ℓ} B_{t−ℓ} (theory/gates).

    Args:
        cell: a :class:`horizon_lib.cells.GatedCell`.
        x: inputs (batch, time, input).
        cotangents: (n, batch, time, hidden): each slice is one set of adjoints c[b, t] arriving at
            the transport variable after step t.
        state: initial state (default zeros).

    Returns:
        Tensor (n, parameters): the parameter gradients, flattened in ``named_parameters`` order.
    """
    params = [p for p in cell.parameters() if p.requires_grad]
    xp = cell.project_inputs(cell.check_inputs(x))
    if state is None:
        state = cell.initial_state(x.shape[0], x)
    outs = []
    for t in range(x.shape[1]):
        fixed = tuple(s.detach() for s in state)
        outs.append(cell.transport_step(xp[:, t], fixed, cell.transport_variable(fixed)))
        with torch.no_grad():
            state, _, _ = cell.step(xp[:, t], fixed, terms=False)
    v = torch.stack(outs, 1)
    grads = torch.autograd.grad(v, params, grad_outputs=cotangents.to(v.dtype),
                                is_grads_batched=True, allow_unused=True)
    n = cotangents.shape[0]
    return torch.cat([(g if g is not None else torch.zeros(n, *p.shape, dtype=v.dtype,
                                                               device=v.device)).reshape(n, -1)
                      for g, p in zip(grads, params)], 1)
