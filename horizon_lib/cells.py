"""The five gated recurrent cells of the paper, with their per-step Jacobian terms (theory/gates).

ConstGate, SharedGate and DiagGate share the leaky update

    h_t = (1 − s_t) ⊙ h_{t−1} + s_t ⊙ tanh(LN(W_x x_t + W_h h_{t−1} + b))

with a constant scalar gate, a learned scalar gate σ(w_sᵀx + u_sᵀh + b_s), or a learned gate per
unit σ(W_s x + U_s h + b_s). The GRU writes h_t = (1 − z_t) h_{t−1} + z_t g_t with a reset gate
inside the candidate; the LSTM carries a cell state c_t = f_t c_{t−1} + i_t g_t and emits
h_t = o_t tanh(c_t). Every cell ends in the readout ŷ_t = W_out h_t + b_out.

Initialisation (the paper's): gate weights of the three leaky cells zero with bias
logit(s0), so s ≈ s0 at the start; all other weight matrices orthogonal, biases zero, except the
GRU update-gate bias logit(z0) and the LSTM forget bias logit(f0). LayerNorm (on in all paper
runs) acts on the candidate's pre-activation only, with γ = 1, β = 0 at the start.

``cell(x, diagnostics=True)`` returns a :class:`CellTrace` holding, per step, the state h_t, the
retention d_t, the diagonal remainder r_t = diag(J_t) − d_t and, for the LSTM, e_t = ∂h_t/∂c_t:
exactly what the transport and envelope modules take. The derivations of d_t and r_t are in
:mod:`horizon_lib.jacobians`, where they are also checked against autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .jacobians import layer_norm_stats, normalized_cross_diagonal, normalized_diagonal

__all__ = ["CELL_KINDS", "CellTrace", "GatedCell", "ConstGate", "SharedGate", "DiagGate", "GRU",
           "LSTM", "make_cell"]

CELL_KINDS = ("ConstGate", "SharedGate", "DiagGate", "GRU", "LSTM")


@dataclass
class CellTrace:
    """What one pass over a sequence returns (shapes: batch, time, hidden/out).

    Attributes:
        y: readout ŷ_t (batch, time, out).
        h: hidden states h_t, t = 1..T (batch, time, hidden).
        d: retention d_t (1 − s_t, 1 − z_t or f_t), or None without diagnostics.
        r: diagonal remainder r_t = diag(J_t) − d_t, or None.
        e: LSTM only: e_t = ∂h_t/∂c_t = o_t (1 − tanh² c_t), the map of the cell-state factor to h.
        c: LSTM only: cell states c_t.
        final_state: the state after the last step, to continue a sequence.
    """

    y: torch.Tensor
    h: torch.Tensor
    d: torch.Tensor | None = None
    r: torch.Tensor | None = None
    e: torch.Tensor | None = None
    c: torch.Tensor | None = None
    final_state: tuple | None = None


def _logit(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"an initial gate value must lie in (0, 1); got {p}")
    return math.log(p / (1.0 - p))

class GatedCell(nn.Module):
    """Common machinery: parameters, input projection, the loop over time, readout.

    Subclasses set ``blocks`` (the names of the affine maps of x, each of width ``width(name)``)
    and implement ``step``, ``transport_step`` and ``transport_variable``.
    """

    kind = "GatedCell"
    blocks: tuple[str, ...] = ()

    def __init__(self, input_size: int, hidden_size: int, *, layer_norm: bool = True,
                 out_features: int = 1, ln_eps: float = 1e-5,
                 generator: torch.Generator | None = None, dtype=None, device=None):
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be an integer ≥ 1; got {v}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.layer_norm, self.ln_eps = bool(layer_norm), float(ln_eps)
        self._factory = dict(dtype=dtype, device=device)
        self._gen = generator
        H = self.hidden_size
        for name in self.blocks:
            w = self.width(name)
            self.register_parameter(f"W_{name}", self._orth(w, self.input_size))
            self.register_parameter(f"b_{name}", nn.Parameter(torch.zeros(w, **self._factory)))
        if self.layer_norm:
            self.ln_weight = nn.Parameter(torch.ones(H, **self._factory))
            self.ln_bias = nn.Parameter(torch.zeros(H, **self._factory))
        self.W_out = self._orth(int(out_features), H)
        self.b_out = nn.Parameter(torch.zeros(int(out_features), **self._factory))

    def width(self, block: str) -> int:
        return self.hidden_size

    def _orth(self, rows: int, cols: int) -> nn.Parameter:
        w = torch.empty(rows, cols, **self._factory)
        nn.init.orthogonal_(w, generator=self._gen)
        return nn.Parameter(w)

    def _zeros(self, *shape: int) -> nn.Parameter:
        return nn.Parameter(torch.zeros(*shape, **self._factory))

    def check_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raise ``ValueError`` unless x has shape (batch, time, input) with input = D ≥ 1 step."""
        if not torch.is_tensor(x) or x.dim() != 3 or x.shape[-1] != self.input_size:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x must have shape (batch, time, {self.input_size}); got {shape}")
        if x.shape[1] < 1:
            raise ValueError("x must hold at least one time step")
        return x

    def project_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """All input maps W_• x_t + b_• at once: (batch, time, Σ widths), in ``blocks`` order."""
        W = torch.cat([getattr(self, f"W_{n}") for n in self.blocks], 0)
        b = torch.cat([getattr(self, f"b_{n}") for n in self.blocks], 0)
        return torch.addmm(b, x.reshape(-1, x.shape[-1]), W.T).view(*x.shape[:2], -1)

    def split(self, xp: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(xp, [self.width(n) for n in self.blocks], dim=-1))

    def candidate(self, a: torch.Tensor):
        """g = tanh(LN(a)) and, when LayerNorm is on, (n, 1/ς, γ) for the analytic terms."""
        if not self.layer_norm:
            return torch.tanh(a), None
        u = F.layer_norm(a, (self.hidden_size,), self.ln_weight, self.ln_bias, self.ln_eps)
        return torch.tanh(u), True

    def ln_terms(self, a: torch.Tensor, flag):
        """(n, 1/ς, γ) of the LayerNorm at this step for the analytic terms, or None."""
        return None if flag is None else (*layer_norm_stats(a, self.ln_eps), self.ln_weight)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple:
        return (torch.zeros(batch, self.hidden_size, dtype=like.dtype, device=like.device),)

    def transport_variable(self, state: tuple) -> torch.Tensor:
        return state[0]

    def recurrent_weights(self) -> list[torch.Tensor]:
        """The (hidden, hidden) matrices acting on h_{t−1}: the rows λ_qj of Λ^{(q)} live there."""
        H = self.hidden_size
        return [p for n, p in self.named_parameters() if n.startswith(("W_h", "U_"))
                and p.shape == (H, H)]

    def forward(self, x: torch.Tensor, state: tuple | None = None, *,
                diagnostics: bool = False) -> CellTrace:
        """Run the cell over a sequence.

        Args:
            x: inputs (batch, time, input).
            state: initial state (default zeros; h_0 = 0 and, for the LSTM, c_0 = o_0 = 0).
            diagnostics: also return d_t, r_t (and e_t, c_t for the LSTM).

        Returns:
            :class:`CellTrace`.

        Raises:
            ValueError: x is not (batch, time, input) with input = ``input_size``.
        """
        xp = self.project_inputs(self.check_inputs(x))
        if state is None:
            state = self.initial_state(x.shape[0], x)
        hs, terms = [], []
        # unbind, not xp[:, t]: each indexing's backward would zero-fill all of xp (O(T²))
        for x_t in xp.unbind(1):
            state, h, term = self.step(x_t, state, terms=diagnostics)
            hs.append(h)
            terms.append(term)
        h = torch.stack(hs, 1)
        y = h @ self.W_out.T + self.b_out
        trace = CellTrace(y=y, h=h, final_state=state)
        if diagnostics:
            d, r, e, c = (torch.stack(z, 1) if z[0] is not None else None for z in zip(*terms))
            trace.d, trace.r, trace.e, trace.c = d, r, e, c
        return trace


class _LeakyCell(GatedCell):
    """h_t = h_{t−1} + s_t (g_t − h_{t−1}), g_t = tanh(LN(W_x x + W_h h + b)); s_t from ``gate``."""

    blocks = ("x",)

    def __init__(self, input_size, hidden_size, *, s0: float = 0.05, **kwargs):
        super().__init__(input_size, hidden_size, **kwargs)
        self.s0 = float(s0)
        self.W_h = self._orth(hidden_size, hidden_size)

    def gate(self, xp_s, h):                    # -> (s, gate diagonal u_diag or None)
        raise NotImplementedError

    def _parts(self, xp, h):
        parts = self.split(xp)
        a = parts[0] + h @ self.W_h.T
        g, flag = self.candidate(a)
        s, u_diag = self.gate(parts[1] if len(parts) > 1 else None, h)
        return a, g, flag, s, u_diag

    def step(self, xp, state, *, terms: bool):
        h = state[0]
        a, g, flag, s, u_diag = self._parts(xp, h)
        h_new = h + s * (g - h)
        if not terms:
            return (h_new,), h_new, None
        B, H = h.shape
        d = (1 - s).expand(B, H)
        r = s * (1 - g * g) * normalized_diagonal(self.W_h, (B, H), self.ln_terms(a, flag))
        if u_diag is not None:
            r = r + (g - h) * (s * (1 - s)) * u_diag
        return (h_new,), h_new, (d, r, None, None)

    def transport_step(self, xp, state, v):
        _, g, _, s, _ = self._parts(xp, v)
        return v + s * (g - v)


class ConstGate(_LeakyCell):
    """Constant scalar gate s = s0 (not learned): τ = −1/log(1 − s) exactly (theory/gates)."""

    kind = "ConstGate"

    def __init__(self, input_size, hidden_size, *, s0: float = 0.05, **kwargs):
        super().__init__(input_size, hidden_size, s0=s0, **kwargs)
        if not 0.0 < self.s0 <= 1.0:
            raise ValueError(f"the constant gate s must lie in (0, 1]; got {s0}")
        self.register_buffer("s", torch.tensor(self.s0, **self._factory))

    def gate(self, xp_s, h):
        return self.s, None


class SharedGate(_LeakyCell):
    """One learned scalar gate s_t = σ(w_sᵀx_t + u_sᵀh_{t−1} + b_s), broadcast to every unit."""

    kind = "SharedGate"
    blocks = ("x", "s")

    def width(self, block):
        return 1 if block == "s" else self.hidden_size

    def __init__(self, input_size, hidden_size, **kwargs):
        super().__init__(input_size, hidden_size, **kwargs)
        with torch.no_grad():
            self.W_s.zero_()
            self.b_s.fill_(_logit(self.s0))
        self.U_s = self._zeros(1, hidden_size)

    def gate(self, xp_s, h):
        s = torch.sigmoid(xp_s + h @ self.U_s.T)          # (batch, 1)
        return s, self.U_s[0]


class DiagGate(_LeakyCell):
    """A learned gate per unit s_t = σ(W_s x_t + U_s h_{t−1} + b_s)."""

    kind = "DiagGate"
    blocks = ("x", "s")

    def __init__(self, input_size, hidden_size, **kwargs):
        super().__init__(input_size, hidden_size, **kwargs)
        with torch.no_grad():
            self.W_s.zero_()
            self.b_s.fill_(_logit(self.s0))
        self.U_s = self._zeros(hidden_size, hidden_size)

    def gate(self, xp_s, h):
        return torch.sigmoid(xp_s + h @ self.U_s.T), torch.diagonal(self.U_s)


class GRU(GatedCell):
    """h_t = (1 − z_t) h_{t−1} + z_t g_t, g_t = tanh(LN(W_g x + U_g (ρ_t ⊙ h_{t−1}) + b_g))."""

    kind = "GRU"
    blocks = ("z", "r", "g")

    def __init__(self, input_size, hidden_size, *, z0: float = 0.05, **kwargs):
        super().__init__(input_size, hidden_size, **kwargs)
        with torch.no_grad():
            self.b_z.fill_(_logit(float(z0)))
        for name in ("U_z", "U_r", "U_g"):
            self.register_parameter(name, self._orth(hidden_size, hidden_size))

    def _parts(self, xp, h):
        xz, xr, xg = self.split(xp)
        z = torch.sigmoid(xz + h @ self.U_z.T)
        rho = torch.sigmoid(xr + h @ self.U_r.T)
        a = xg + (rho * h) @ self.U_g.T
        g, flag = self.candidate(a)
        return z, rho, a, g, flag

    def step(self, xp, state, *, terms: bool):
        h = state[0]
        z, rho, a, g, flag = self._parts(xp, h)
        h_new = h + z * (g - h)
        if not terms:
            return (h_new,), h_new, None
        ln = self.ln_terms(a, flag)
        cand = normalized_diagonal(self.U_g, h.shape, ln) * rho + normalized_cross_diagonal(
            self.U_g, self.U_r, h * rho * (1 - rho), ln)
        r = z * (1 - g * g) * cand + (g - h) * z * (1 - z) * torch.diagonal(self.U_z)
        return (h_new,), h_new, (1 - z, r, None, None)

    def transport_step(self, xp, state, v):
        z, _, _, g, _ = self._parts(xp, v)
        return v + z * (g - v)


class LSTM(GatedCell):
    """c_t = f_t c_{t−1} + i_t g_t, h_t = o_t tanh(c_t); transport runs on the cell state.

    The state is (h, c, o): the output gate o_{t−1} is kept so that the cell-state step
    c_{t−1} ↦ c_t (with h_{t−1} = o_{t−1} tanh c_{t−1}) is defined; a state passed in must satisfy
    h = o tanh(c).
    """

    kind = "LSTM"
    blocks = ("i", "f", "o", "g")

    def __init__(self, input_size, hidden_size, *, f0: float = 0.95, **kwargs):
        super().__init__(input_size, hidden_size, **kwargs)
        with torch.no_grad():
            self.b_f.fill_(_logit(float(f0)))
        for name in ("U_i", "U_f", "U_o", "U_g"):
            self.register_parameter(name, self._orth(hidden_size, hidden_size))

    def initial_state(self, batch, like):
        return (super().initial_state(batch, like)[0],) * 3

    def transport_variable(self, state):
        return state[1]

    def _parts(self, xp, h, c):
        xi, xf, xo, xg = self.split(xp)
        i = torch.sigmoid(xi + h @ self.U_i.T)
        f = torch.sigmoid(xf + h @ self.U_f.T)
        o = torch.sigmoid(xo + h @ self.U_o.T)
        a = xg + h @ self.U_g.T
        g, flag = self.candidate(a)
        return i, f, o, a, g, flag, f * c + i * g

    def step(self, xp, state, *, terms: bool):
        h, c, o_prev = state
        i, f, o, a, g, flag, c_new = self._parts(xp, h, c)
        tc = torch.tanh(c_new)
        h_new = o * tc
        if not terms:
            return (h_new, c_new, o), h_new, None
        K = (c * f * (1 - f) * torch.diagonal(self.U_f) + g * i * (1 - i) * torch.diagonal(self.U_i)
             + i * (1 - g * g) * normalized_diagonal(self.U_g, h.shape, self.ln_terms(a, flag)))
        e_prev = o_prev * (1 - torch.tanh(c) ** 2)
        e = o * (1 - tc * tc)
        return (h_new, c_new, o), h_new, (f, K * e_prev, e, c_new)

    def transport_step(self, xp, state, v):
        _, _, o_prev = state
        return self._parts(xp, o_prev * torch.tanh(v), v)[-1]


_CELLS = {cls.kind.lower(): cls for cls in (ConstGate, SharedGate, DiagGate, GRU, LSTM)}


def make_cell(kind: str, input_size: int, hidden_size: int, **kwargs) -> GatedCell:
    """One of the five cells by name (``"ConstGate"``, ``"SharedGate"``, ``"DiagGate"``,
    ``"GRU"``, ``"LSTM"``; case-insensitive); ``kwargs`` go to its constructor (``layer_norm``,
    ``s0``, ``z0``, ``f0``, ``out_features``, ``generator``, ``dtype``, ``device``).

    Raises:
        ValueError: an unknown kind.

    >>> make_cell("gru", 4, 8).kind
    'GRU'
    """
    try:
        cls = _CELLS[str(kind).lower()]
    except KeyError:
        raise ValueError(f"unknown cell kind {kind!r}; "
                         f"choose one of {', '.join(CELL_KINDS)}") from None
    return cls(input_size, hidden_size, **kwargs)
