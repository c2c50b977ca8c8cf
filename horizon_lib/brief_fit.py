"""A few seconds of training, for chapters that need cells that have *learned something*.

This is deliberately small: one synthetic task with smooth inputs (the sinusoidal task of the
paper's Appendix C) and a plain full-batch AdamW loop. The experiment (the
multi-lag task, batched seeds, the paper's configuration) has its own pipeline; use this module
only where a chapter needs trained gates in seconds on a CPU.

Task: each input channel is a sum of harmonics with random phases,
x_{t,j} = Σ_{m=1..M} (1/m) sin(2π m t / P + φ_{m,j}), and the target is a delayed nonlinear
read-out y_t = Σ_k c_k tanh(uᵀ x_{t−ℓ_k}) + σ ε_t with a fixed unit vector u.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["sinusoid_task", "BriefFit", "fit_briefly"]


def sinusoid_task(batch: int, time: int, input_size: int, lags, coeffs, *, noise: float = 0.01,
                  harmonics: int = 5, period: float = 50.0,
                  generator: torch.Generator | None = None,
                  dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, time, input) and targets (batch, time, 1) of the sinusoidal lag task.

    Raises:
        ValueError: sizes < 1, lags and coeffs of different lengths, a lag < 1, or noise < 0.
    """
    if min(batch, time, input_size, harmonics) < 1:
        raise ValueError("batch, time, input_size and harmonics must be ≥ 1")
    lags, coeffs = list(lags), list(coeffs)
    if len(lags) != len(coeffs) or any(int(lag) < 1 for lag in lags):
        raise ValueError("lags (each ≥ 1) and coeffs must have the same length")
    if noise < 0:
        raise ValueError(f"noise must be ≥ 0; got {noise}")
    kw = dict(dtype=dtype, device=device)
    t = torch.arange(time, **kw)[None, :, None, None]
    m = torch.arange(1, harmonics + 1, **kw)
    phase = 2 * math.pi * torch.rand(batch, 1, harmonics, input_size, generator=generator, **kw)
    x = (torch.sin(2 * math.pi * m[:, None] * t / period + phase) / m[:, None]).sum(2)
    u = torch.randn(input_size, generator=generator, **kw)
    proj = torch.tanh(x @ (u / u.norm()))
    y = noise * torch.randn(batch, time, generator=generator, **kw)
    for lag, c in zip(lags, coeffs):
        if lag < time:
            y[:, lag:] += c * proj[:, : time - lag]
    return x, y.unsqueeze(-1)


@dataclass
class BriefFit:
    """Losses per step, the final R² on the training data, and the optimizer (for Λ^{(q)})."""

    losses: list[float]
    r2: float
    optimizer: torch.optim.Optimizer


def fit_briefly(cell, x: torch.Tensor, y: torch.Tensor, *, steps: int = 50, lr: float = 3e-3,
                weight_decay: float = 1e-4, clip: float = 1.0) -> BriefFit:
    """Full-batch AdamW on the mean squared error over every step, with gradient clipping.

    Args:
        cell: a :class:`horizon_lib.cells.GatedCell` (trained in place).
        x, y: inputs (batch, time, input) and targets (batch, time, out).
        steps: optimizer steps (≥ 1); lr, weight_decay, clip: AdamW step, decay, max grad norm.

    Returns:
        :class:`BriefFit`.

    Raises:
        ValueError: steps < 1 or targets that do not match the readout.
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1; got {steps}")
    if y.shape != x.shape[:2] + (cell.W_out.shape[0],):
        raise ValueError(f"y must have shape {tuple(x.shape[:2]) + (cell.W_out.shape[0],)}; got "
                         f"{tuple(y.shape)}")
    opt = torch.optim.AdamW(cell.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((cell(x).y - y) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(cell.parameters(), clip)
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        resid = torch.mean((cell(x).y - y) ** 2)
    return BriefFit(losses, float(1 - resid / y.var()), opt)
