"""Optimizer base rates Λ^{(q)}: the η of SGD generalised to adaptive optimizers (theory/gates).

For SGD with step η every parameter moves at the same rate, Λ^{(q)} = η ("Eq. 11", v1–v6). An
adaptive optimizer gives each recurrent weight U_qj its own rate: Adam/AdamW

    λ_qj = η / (√v̂_qj + ε),      v̂ = v / (1 − β₂^step)   (bias-corrected second moment),

RMSprop the same with v the running average of squared gradients and no bias correction
(centred RMSprop: v − ḡ²). Over the recurrent rows of unit q the lag-ℓ gradient sees the
Rayleigh quotient Λ^{(q)}(h) = Σ_j λ_qj h_j² / Σ_j h_j² of the presynaptic state h; LayerNorm keeps
the h_j² comparable, which reduces it to the row mean Λ^{(q)} = (1/H) Σ_j λ_qj (v7/v8). Several
recurrent matrices (GRU, LSTM blocks, DiagGate's U_s) are averaged with equal weight, as in the
paper's code release.

Two readers share one implementation of the formula: :func:`optimizer_base_rates` reads a live
``torch.optim`` optimizer, :func:`base_rates_from_moments` the raw second-moment tensors of an
optimizer kept as plain tensors (the batched trainer of :mod:`horizon_lib.training`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_finite

__all__ = ["BaseRates", "optimizer_base_rates", "base_rates_from_moments", "rayleigh_base_rates"]


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


def _rates(v: torch.Tensor | None, like: torch.Tensor, *, lr: float, eps: float,
           bias_correction: float = 1.0, grad_avg: torch.Tensor | None = None) -> torch.Tensor:
    """λ_qj = η / (√v̂_qj + ε), v̂ = v / bias_correction (− ḡ² centred), float64; v None: SGD, λ = η.

    The one place the formula lives: both public readers of Λ call it.
    """
    if v is None:
        return torch.full_like(like, lr, dtype=torch.float64)
    v = v.double() / bias_correction
    if grad_avg is not None:
        v = v - grad_avg.double() ** 2
    check_finite(v, "the optimizer's second moment")
    return lr / (v.clamp_min(0).sqrt() + eps)


def _pooled(blocks: list[torch.Tensor], kind: str, lr: float) -> BaseRates:
    """Average λ over the (hidden, hidden) blocks of every recurrent matrix; Λ is its row mean."""
    matrix = torch.stack(blocks).mean(0)
    return BaseRates(row_mean=matrix.mean(1), matrix=matrix, optimizer=kind, lr=lr)


def _hidden_blocks(weights: list[torch.Tensor], what: str) -> int:
    if not weights:
        raise ValueError(f"{what} must hold at least one (hidden, hidden) matrix")
    H = weights[0].shape[-1]
    for w in weights:
        if w.dim() != 2 or w.shape[0] % H or w.shape[1] != H:
            raise ValueError(f"each of {what} must be (k·hidden, hidden) with hidden = {H}; "
                             f"got {tuple(w.shape)}")
    return H


def base_rates_from_moments(second_moments, *, optimizer: str, lr: float, eps: float = 1e-8,
                            beta2: float | None = None, step: int | None = None,
                            grad_avgs=None) -> BaseRates:
    """Λ^{(q)} (row mean) and λ_qj from an optimizer's raw state tensors (no torch.optim object).

    For optimizers kept as plain tensors (the batched trainer of :mod:`horizon_lib.training`):
    Adam/AdamW λ_qj = η / (√(v_qj / (1 − β₂^step)) + ε); RMSprop λ_qj = η / (√v_qj + ε) (centred:
    v − ḡ²); SGD λ_qj = η. The same formula as :func:`optimizer_base_rates`, which reads a live
    optimizer through this module's one implementation of it.

    Args:
        second_moments: the recurrent matrices' second moments v, each (hidden, hidden) or a
            stack (k·hidden, hidden) of k blocks: Adam's ``exp_avg_sq`` (AMSGrad:
            ``max_exp_avg_sq``), RMSprop's ``square_avg``. SGD: tensors of the recurrent weights'
            shapes (only their shapes and device are read), e.g. the weights themselves.
        optimizer: ``"sgd"``, ``"adam"`` (or ``"adamw"``) or ``"rmsprop"``.
        lr: the step η > 0.
        eps: the denominator guard ε ≥ 0 (torch's default 1e−8).
        beta2, step: Adam only: β₂ ∈ [0, 1) and the steps taken (≥ 1), for the bias correction.
        grad_avgs: centred RMSprop only: the running mean gradients ḡ, shaped as the moments.

    Returns:
        :class:`BaseRates` in float64 on the moments' device (``optimizer`` ``"adam"`` for AdamW).

    Raises:
        ValueError: an unknown optimizer, lr ≤ 0 or ε < 0, no tensors, non-square blocks, Adam
            without β₂ ∈ [0, 1) and step ≥ 1, ``grad_avgs`` off RMSprop or of other shapes, or a
            non-finite second moment.
    """
    kind = {"sgd": "sgd", "adam": "adam", "adamw": "adam",
            "rmsprop": "rmsprop"}.get(str(optimizer).lower())
    if kind is None:
        raise ValueError("optimizer must be 'sgd', 'adam', 'adamw' or 'rmsprop'; "
                         f"got {optimizer!r}")
    if not (math.isfinite(lr) and lr > 0) or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"need a learning rate lr > 0 and eps ≥ 0; got lr = {lr}, eps = {eps}")
    moments = list(second_moments)
    H = _hidden_blocks(moments, "second_moments")
    bias = 1.0
    if kind == "adam":
        if beta2 is None or step is None or not 0 <= beta2 < 1 or int(step) < 1:
            raise ValueError(f"Adam needs beta2 in [0, 1) and step ≥ 1 for its bias correction; "
                             f"got beta2 = {beta2}, step = {step}")
        bias = 1.0 - beta2 ** int(step)
    gbar = [None] * len(moments)
    if grad_avgs is not None:
        gbar = list(grad_avgs)
        if kind != "rmsprop" or [g.shape for g in gbar] != [v.shape for v in moments]:
            raise ValueError("grad_avgs (centred RMSprop only) must match second_moments "
                             "one to one in shape")
    blocks = []
    for v, g in zip(moments, gbar):
        lam = _rates(None if kind == "sgd" else v, v, lr=float(lr), eps=float(eps),
                     bias_correction=bias, grad_avg=g)
        blocks.extend(lam.reshape(-1, H, H).unbind(0))
    return _pooled(blocks, kind, float(lr))


def optimizer_base_rates(optimizer: torch.optim.Optimizer, recurrent_weights) -> BaseRates:
    """Λ^{(q)} (row mean) and λ_qj from a live torch optimizer's state.

    Args:
        optimizer: ``torch.optim.SGD``, ``Adam``, ``AdamW`` or ``RMSprop`` that has taken ≥ 1
            step (SGD: any time; momentum is not folded into Λ).
        recurrent_weights: the recurrent matrices, each (hidden, hidden) or a stack (k·hidden,
            hidden) of k blocks, e.g. ``cell.recurrent_weights()``.

    Returns:
        :class:`BaseRates` in float64 on the weights' device (see :func:`base_rates_from_moments`
        for the raw-state case).

    Raises:
        ValueError: another optimizer, no weights, non-square blocks, a weight the optimizer does
            not hold, no second-moment state yet, or a non-finite state.
    """
    name = type(optimizer).__name__
    kind = {"SGD": "sgd", "Adam": "adam", "AdamW": "adam", "RMSprop": "rmsprop"}.get(name)
    if kind is None:
        raise ValueError(f"optimizer must be SGD, Adam, AdamW or RMSprop; got {name}")
    weights = list(recurrent_weights)
    H = _hidden_blocks(weights, "recurrent_weights")
    blocks, lrs = [], set()
    for w in weights:
        group = _group_of(optimizer, w)
        lr, state, extra = float(group["lr"]), optimizer.state.get(w, {}), {}
        v = None
        if kind == "adam":
            key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
            if key not in state:
                raise ValueError("the optimizer has no second-moment state yet: take a step first")
            v = state[key]
            extra["bias_correction"] = 1.0 - group["betas"][1] ** float(state["step"])
        elif kind == "rmsprop":
            if "square_avg" not in state:
                raise ValueError("the optimizer has no second-moment state yet: take a step first")
            v = state["square_avg"]
            if group.get("centered"):
                extra["grad_avg"] = state["grad_avg"]
        lam = _rates(v, w, lr=lr, eps=float(group.get("eps", 0.0)), **extra)
        lrs.add(lr)
        blocks.extend(lam.reshape(-1, H, H).unbind(0))
    if len(lrs) > 1:
        raise ValueError("the recurrent weights sit in parameter groups with different lr "
                         f"{sorted(lrs)}")
    return _pooled(blocks, kind, lrs.pop())


def rayleigh_base_rates(rates: BaseRates, states: torch.Tensor) -> torch.Tensor:
    """Λ^{(q)}(h) = Σ_j λ_qj h_j² / Σ_j h_j² for every presynaptic state (theory/gates).

    Args:
        rates: from :func:`optimizer_base_rates`.
        states: presynaptic states h (batch, time, hidden); a zero state gets the row mean.

    Returns:
        Tensor (batch, time, hidden) in the dtype of ``states``; pass it as ``base_rate`` to the
        transport and envelope functions, which read entry j for the window whose first step
        is j. That window carries the parameter sensitivity of step j − 1, whose presynaptic
        state is the state after step j − 2: to pair them as the theory does, pass
        ``states[:, j]`` = h after step j − 2 (the initial state for j < 2), i.e. the states
        after each step shifted right by two.

    Raises:
        ValueError: ``states`` is not (batch, time, hidden) with the rates' hidden size, or not
            finite.
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
