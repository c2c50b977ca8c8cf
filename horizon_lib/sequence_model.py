"""The five cells seen by the trainer and the diagnostics: ŷ, or the terms of the transport.

:class:`SequenceModel` wraps one cell of :mod:`horizon_lib.cells` so that

* ``model(x)`` returns ŷ (batch, time, out): a plain tensor, which ``torch.func.vmap`` and
  ``functional_call`` can batch over stacked weights (the cells return a ``CellTrace``);
* ``model(x, return_state=True)`` returns the transported state alone (batch, time, hidden),
  without the diagnostic terms: what the forward-mode JVP of the diagnostics differentiates;
* ``model(x, return_terms=True)`` returns the dict the diagnostics read: ``yhat``, the
  transported ``state`` (h for the leaky cells and the GRU, the cell state c for the LSTM),
  ``d``, ``r``, ``e`` (LSTM: ∂h_t/∂c_t, else None) and the ``readout`` W_out (out, hidden).

:func:`build_model` is the experiment's builder ``(cell, D, H, s, generator) → SequenceModel``;
s is ConstGate's gate and the initial value s0 of the learned leaky gates and of the GRU's update
gate (the LSTM keeps the cells module's default forget-gate initialisation).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SequenceModel", "build_model", "CELL_KIND"]

#: experiment cell name → the cells module's kind.
CELL_KIND = {"constgate": "ConstGate", "sharedgate": "SharedGate", "diaggate": "DiagGate",
             "gru": "GRU", "lstm": "LSTM"}


class SequenceModel(nn.Module):
    """A cell with the trainer's and the diagnostics' calling convention (module docstring)."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    #: ``model(x, return_state=True)`` is supported (the diagnostics' JVP uses it when present).
    returns_state = True

    def forward(self, x: torch.Tensor, return_terms: bool = False, return_state: bool = False):
        if return_state:
            return self._sequence(x, transported=True)
        if not return_terms:
            return self._readout(x)
        trace = self.cell(x, diagnostics=True)
        lstm = trace.e is not None
        return {"yhat": trace.y, "state": trace.c if lstm else trace.h, "d": trace.d,
                "r": trace.r, "e": trace.e, "readout": self.cell.W_out}

    def _sequence(self, x: torch.Tensor, transported: bool = False) -> torch.Tensor:
        """h (or, with ``transported``, the transported state s: the LSTM's c) for every step,
        (batch, time, hidden), through the cell's own pieces (input projection, ``step``) without
        the diagnostic terms. Iterates over ``unbind(1)``: indexing ``xp[:, t]`` makes each step's
        backward zero-fill the whole (batch, time, width) buffer, O(T²) work that took most of a
        batched LSTM step."""
        cell = self.cell
        xp = cell.project_inputs(cell.check_inputs(x))
        state = cell.initial_state(x.shape[0], x)
        out = []
        for xp_t in xp.unbind(1):
            state, h, _ = cell.step(xp_t, state, terms=False)
            out.append(cell.transport_variable(state) if transported else h)
        return torch.stack(out, 1)

    def _readout(self, x: torch.Tensor) -> torch.Tensor:
        """ŷ (batch, time, out) = h W_outᵀ + b_out."""
        return self._sequence(x) @ self.cell.W_out.T + self.cell.b_out

    def recurrent_parameter_names(self) -> list[str]:
        """Names (in this module) of the (hidden, hidden) recurrent matrices Λ^{(q)} averages
        over."""
        ids = {id(p) for p in self.cell.recurrent_weights()}
        return [n for n, p in self.named_parameters() if id(p) in ids]


def build_model(cell: str, D: int, H: int, s: float, generator: torch.Generator | None = None
                ) -> SequenceModel:
    """A freshly initialised cell (weights drawn from ``generator``) wrapped for the experiment.

    Raises:
        ValueError: an unknown cell name.
    """
    from .cells import make_cell

    if cell not in CELL_KIND:
        raise ValueError(f"unknown cell {cell!r}; choose from {list(CELL_KIND)}")
    kind = CELL_KIND[cell]
    kwargs = {"generator": generator}
    if kind in ("ConstGate", "SharedGate", "DiagGate"):
        kwargs["s0"] = s
    elif kind == "GRU":
        kwargs["z0"] = s
    return SequenceModel(make_cell(kind, D, H, **kwargs))
