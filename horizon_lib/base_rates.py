"""Optimizer base rates Λ^{(q)}: the η of SGD generalised to adaptive optimizers (THEORY.md §2).

For SGD with step η every parameter moves at the same rate, Λ^{(q)} = η ("Eq. 11", v1–v6). An
adaptive optimizer gives each recurrent weight U_qj its own rate: Adam/AdamW

    λ_qj = η / (√v̂_qj + ε),      v̂ = v / (1 − β₂^step)   (bias-corrected second moment),

RMSprop the same with v the running average of squared gradients and no bias correction
(centred RMSprop: v − ḡ²). Over the recurrent rows of unit q the lag-ℓ gradient sees the
Rayleigh quotient Λ^{(q)}(h) = Σ_j λ_qj h_j² / Σ_j h_j² of the presynaptic state h; LayerNorm keeps
the h_j² comparable, which reduces it to the row mean Λ^{(q)} = (1/H) Σ_j λ_qj (v7/v8). Several
recurrent matrices (GRU, LSTM blocks, DiagGate's U_s) are averaged with equal weight, as in the
paper's code release.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_finite

__all__ = ["BaseRates", "optimizer_base_rates", "rayleigh_base_rates"]


@dataclass(frozen=True)
class BaseRates:
    """Per-unit base rates read from an optimizer.

    Attributes:
        row_mean: Λ^{(q)} = mean_j λ_qj, shape (hidden,).
        matrix: λ_qj averaged over the recurrent matrices (hidden, hidden).
        optimizer: ``"sgd"``, ``"adam"`` (Adam and AdamW) or ``"rmsprop"``.
        lr: the nominal step η of the optimizer's parameter group.
    """

    row_mean: torch.Tensor
    matrix: torch.Tensor
    optimizer: str
    lr: float


def _group_of(optimizer: torch.optim.Optimizer, p: torch.Tensor) -> dict:
    for group in optimizer.param_groups:
        if any(q is p for q in group["params"]):
            return group
    raise ValueError("a recurrent weight is not among the optimizer's parameters")


def _rates(optimizer, p: torch.Tensor, kind: str) -> tuple[torch.Tensor, float]:
    group = _group_of(optimizer, p)
    lr = float(group["lr"])
    if kind == "sgd":
        return torch.full_like(p, lr, dtype=torch.float64), lr
    state = optimizer.state.get(p, {})
    if kind == "adam":
        key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
        if key not in state:
            raise ValueError("the optimizer has no second-moment state yet: take a step first")
        step = float(state["step"])
        v = state[key].double() / (1.0 - group["betas"][1] ** step)
    else:
        if "square_avg" not in state:
            raise ValueError("the optimizer has no second-moment state yet: take a step first")
        v = state["square_avg"].double()
        if group.get("centered"):
            v = v - state["grad_avg"].double() ** 2
    check_finite(v, "the optimizer's second moment")
    return lr / (v.clamp_min(0).sqrt() + group["eps"]), lr


def optimizer_base_rates(optimizer: torch.optim.Optimizer, recurrent_weights) -> BaseRates:
    """Λ^{(q)} (row mean) and λ_qj from a live torch optimizer's state.

    Args:
        optimizer: ``torch.optim.SGD``, ``Adam``, ``AdamW`` or ``RMSprop`` that has taken ≥ 1
            step (SGD: any time; momentum is not folded into Λ).
        recurrent_weights: the recurrent matrices, each (hidden, hidden) or a stack (k·hidden,
            hidden) of k blocks, e.g. ``cell.recurrent_weights()``.

    Returns:
        :class:`BaseRates` in float64 on the weights' device.

    Raises:
        ValueError: another optimizer, no weights, non-square blocks, a weight the optimizer does
            not hold, no second-moment state yet, or a non-finite state.
    """
    name = type(optimizer).__name__
    kind = {"SGD": "sgd", "Adam": "adam", "AdamW": "adam", "RMSprop": "rmsprop"}.get(name)
    if kind is None:
        raise ValueError(f"optimizer must be SGD, Adam, AdamW or RMSprop; got {name}")
    weights = list(recurrent_weights)
    if not weights:
        raise ValueError("recurrent_weights must hold at least one (hidden, hidden) matrix")
    H = weights[0].shape[-1]
    blocks, lrs = [], set()
    for w in weights:
        if w.dim() != 2 or w.shape[0] % H or w.shape[1] != H:
            raise ValueError(f"each recurrent weight must be (k·hidden, hidden) with hidden = {H}; "
                             f"got {tuple(w.shape)}")
        lam, lr = _rates(optimizer, w, kind)
        lrs.add(lr)
        blocks.extend(lam.reshape(-1, H, H).unbind(0))
    if len(lrs) > 1:
        raise ValueError(f"the recurrent weights sit in parameter groups with different lr {sorted(lrs)}")
    matrix = torch.stack(blocks).mean(0)
    return BaseRates(row_mean=matrix.mean(1), matrix=matrix, optimizer=kind, lr=lrs.pop())


def rayleigh_base_rates(rates: BaseRates, states: torch.Tensor) -> torch.Tensor:
    """Λ^{(q)}(h) = Σ_j λ_qj h_j² / Σ_j h_j² for every presynaptic state (THEORY.md §2).

    Args:
        rates: from :func:`optimizer_base_rates`.
        states: presynaptic states h (batch, time, hidden); a zero state gets the row mean.

    Returns:
        Tensor (batch, time, hidden) in the dtype of ``states``; pass it as ``base_rate`` to the
        transport and envelope functions (read at each window's first step).

    Raises:
        ValueError: ``states`` is not (batch, time, hidden) with the rates' hidden size, or not finite.
    """
    H = rates.row_mean.shape[0]
    if states.dim() != 3 or states.shape[-1] != H:
        raise ValueError(f"states must have shape (batch, time, {H}); got {tuple(states.shape)}")
    check_finite(states, "states")
    sq = states.double() ** 2
    norm = sq.sum(-1, keepdim=True)
    lam = rates.matrix.to(sq.device)
    quotient = (sq @ lam.T) / norm.clamp_min(torch.finfo(torch.float64).tiny)
    out = torch.where(norm > 0, quotient, rates.row_mean.to(sq.device))
    return out.to(states.dtype)
