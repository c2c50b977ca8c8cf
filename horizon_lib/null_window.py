"""The window that noise alone would get: a sign-flip null of the detection rule (the experiment).

The diagnostics orient each (lag, direction) once by the sign of its own sample mean
(:func:`horizon_lib.matched.orient_per_lag`). Even when the true mean is 0 that leaves an
oriented mean |m̄| ≈ σ √(2/π) / √B per direction (B sequences), so the SNR rule of
:func:`horizon_lib.diagnostics.estimated_sample_size` declares such a lag detectable once N is
large enough against B: past that budget a grid point of Ĥ_N cannot tell a signal from none.

The null keeps everything but the mean: each per-sequence statistic (one column of the stored
samples, the same sequence at every lag) has its sign flipped at random, which leaves the
magnitudes, their correlation over lags and the directions' scales as they are and makes the
mean zero; the flipped samples are then read exactly as the diagnostics read the real ones
(orientation per direction, pooled m̄, σ̂ and α̂, N̂ on the grid). Repeating the flips gives the
distribution of what noise alone would detect.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .diagnostics import estimated_sample_size
from .direction_pooling import split_directions
from .matched import orient_per_lag
from .tail_index import ecf_tail_index_or_nan

__all__ = ["NullWindow", "sign_flip_null"]


@dataclass(frozen=True)
class NullWindow:
    """What the detection rule reads on sign-flipped samples.

    Attributes:
        n_required: N̂(ℓ) of each replicate (replicate, lag); inf where none on the grid.
        detected: fraction of lags with N̂(ℓ) ≤ N, per replicate and budget (replicate, n).
        n_grid: the budgets (n,).
    """

    n_required: torch.Tensor
    detected: torch.Tensor
    n_grid: torch.Tensor

    def budget_with_power(self, share: float = 0.1) -> float:
        """The largest budget N at which noise alone is detected, on average over replicates,
        in at most ``share`` of the lags (nan when even the first budget exceeds it; the share
        cannot fall as N grows)."""
        ok = self.detected.mean(0) <= share
        return float(self.n_grid[ok].max()) if bool(ok.any()) else float("nan")


def sign_flip_null(samples: torch.Tensor, directions: int, n_grid, eps: float, *,
                   replicates: int = 20, generator: torch.Generator | None = None
                   ) -> NullWindow:
    """N̂(ℓ) of the stored samples with every per-sequence statistic's sign flipped at random.

    Args:
        samples: (lag, K·B) oriented per-sequence means, direction-major (the diagnostics'
            ``samples``).
        directions: K.
        n_grid: the budgets N (increasing).
        eps: the SNR threshold ε of the diagnostics.
        replicates: independent sets of flips (≥ 1).
        generator: source of the flips.

    Returns:
        :class:`NullWindow`.

    Raises:
        ValueError: samples not 2-D, K not dividing their columns, replicates < 1, an empty or
            non-increasing grid.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(6, 4 * 50, generator=g, dtype=torch.float64)
    >>> null = sign_flip_null(x, 4, [10, 100, 10000], 2.33, replicates=4, generator=g)
    >>> tuple(null.detected.shape), bool(null.detected[:, -1].mean() > null.detected[:, 0].mean())
    ((4, 3), True)
    """
    if int(replicates) < 1:
        raise ValueError(f"replicates must be ≥ 1; got {replicates}")
    grid = torch.as_tensor(list(n_grid), dtype=torch.float64)
    if grid.numel() == 0 or bool((grid[1:] <= grid[:-1]).any()):
        raise ValueError("n_grid must be non-empty and strictly increasing")
    per_direction = split_directions(samples, directions)          # (lag, K, B)
    n_lags, _, batch = per_direction.shape
    needs = []
    for _ in range(int(replicates)):
        flips = torch.randint(0, 2, (1, directions, batch), generator=generator).to(samples)
        null = orient_per_lag(per_direction * (2 * flips - 1))       # (lag, K·B)
        fit = ecf_tail_index_or_nan(null)
        need, _ = estimated_sample_size(null.mean(1), fit.scale, fit.alpha, grid.tolist(), eps)
        needs.append(need.to(torch.float64).cpu())
    n_required = torch.stack(needs)                                  # (replicate, lag)
    detected = (n_required[:, :, None] <= grid[None, None, :]).double().mean(1)
    return NullWindow(n_required, detected, grid)
