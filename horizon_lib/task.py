"""The multi-lag regression task of the paper's experiment (the experiment).

Inputs are white Gaussian vectors and the target reads one fixed direction of the input at a
few task lags ℓ_k, plus noise:

    x_t ~ N(0, I_D),     y_t = Σ_k c_k uᵀ x_{t−ℓ_k} + ν_t,     ν_t ~ N(0, noise²),

with u a fixed unit vector of R^D and x_t = 0 before the sequence starts (t − ℓ_k < 0 adds
nothing). A gated RNN can only fit y_t if it carries the input across ℓ_k steps, so the task
probes exactly the lags the learnability window is about.

Everything is generated from one integer seed: u, then each split (train, validation,
diagnostic) from its own generator derived from the seed, so changing the size of one split
never changes the others. Bad configurations fail here with a ``ValueError`` naming the
violated condition, before any training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "TaskConfig", "TaskData", "make_task", "task_signal_fraction", "lag_signal_fractions", "SPLITS",
]

#: The three splits and the offset of each one's generator from the task seed.
SPLITS = {"train": 1, "val": 2, "diag": 3}


@dataclass(frozen=True)
class TaskConfig:
    """The multi-lag regression task (the experiment, "config A" values in the comments).

    Attributes:
        T: sequence length (1024).
        D: input size (16).
        lags: task lags ℓ_k, each in [1, T) (32, 64, 128, 192, 256).
        coeffs: coefficients c_k, one per lag (0.6, 0.5, 0.4, 0.32, 0.26).
        noise: standard deviation of ν_t, ≥ 0 (0.3).
        n_train, n_val, n_diag: numbers of sequences in each split, ≥ 1 (8000, 1024, 8000).
        seed: the seed every draw of the task comes from.
    """

    T: int
    D: int
    lags: tuple[int, ...]
    coeffs: tuple[float, ...]
    noise: float
    n_train: int
    n_val: int
    n_diag: int
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "lags", tuple(int(v) for v in self.lags))
        object.__setattr__(self, "coeffs", tuple(float(v) for v in self.coeffs))
        validate_task(self)


def validate_task(cfg: TaskConfig) -> None:
    """Raise ``ValueError`` naming the first violated condition of a task configuration."""
    if int(cfg.T) < 2:
        raise ValueError(f"sequence length T must be ≥ 2; got {cfg.T}")
    if int(cfg.D) < 1:
        raise ValueError(f"input size D must be ≥ 1; got {cfg.D}")
    if len(cfg.lags) == 0:
        raise ValueError("task lags must not be empty")
    if len(cfg.coeffs) != len(cfg.lags):
        raise ValueError(
            f"one coefficient per task lag: got {len(cfg.coeffs)} coefficients for "
            f"{len(cfg.lags)} lags"
        )
    bad = [v for v in cfg.lags if not 1 <= v < cfg.T]
    if bad:
        raise ValueError(f"every task lag must lie in [1, T) = [1, {cfg.T}); got {bad}")
    if not all(math.isfinite(c) for c in cfg.coeffs):
        raise ValueError(f"task coefficients must be finite; got {list(cfg.coeffs)}")
    if not (math.isfinite(cfg.noise) and cfg.noise >= 0):
        raise ValueError(f"noise standard deviation must be finite and ≥ 0; got {cfg.noise}")
    for name in ("n_train", "n_val", "n_diag"):
        if int(getattr(cfg, name)) < 1:
            raise ValueError(f"{name} must be ≥ 1; got {getattr(cfg, name)}")


@dataclass(frozen=True)
class TaskData:
    """The three splits of a task: inputs (batch, time, input), targets (batch, time, 1), and u."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_diag: torch.Tensor
    y_diag: torch.Tensor
    u: torch.Tensor

    def to(self, device) -> "TaskData":
        return TaskData(**{k: getattr(self, k).to(device) for k in self.__dataclass_fields__})


def _generator(seed: int, offset: int) -> torch.Generator:
    # a fixed affine map keeps the splits' streams distinct and reproducible from one seed
    return torch.Generator().manual_seed(int(seed) * 7919 + offset)


def _split(cfg: TaskConfig, u: torch.Tensor, n: int, gen: torch.Generator, dtype):
    x = torch.randn(n, cfg.T, cfg.D, generator=gen, dtype=dtype)
    proj = x @ u  # (batch, time): uᵀ x_t
    y = torch.zeros(n, cfg.T, dtype=dtype)
    for lag, c in zip(cfg.lags, cfg.coeffs):
        y[:, lag:] += c * proj[:, :-lag]
    y += cfg.noise * torch.randn(n, cfg.T, generator=gen, dtype=dtype)
    return x, y.unsqueeze(-1)


def make_task(cfg: TaskConfig, *, dtype: torch.dtype = torch.float32,
              device: torch.device | str = "cpu") -> TaskData:
    """Generate the train, validation and diagnostic splits of the multi-lag task.

    Draws happen on the CPU (so a seed gives the same data on every device) and are then moved
    to ``device``.

    Args:
        cfg: the :class:`TaskConfig` (validated on construction).
        dtype: floating dtype of the data.
        device: where the returned tensors live.

    Returns:
        :class:`TaskData` with x (batch, time, input), y (batch, time, 1) per split and u (input,).

    >>> cfg = TaskConfig(T=16, D=3, lags=(2, 5), coeffs=(0.6, 0.4), noise=0.1,
    ...                  n_train=4, n_val=2, n_diag=2, seed=1)
    >>> d = make_task(cfg)
    >>> tuple(d.x_train.shape), tuple(d.y_val.shape)
    ((4, 16, 3), (2, 16, 1))
    """
    validate_task(cfg)
    gu = _generator(cfg.seed, 0)
    u = torch.randn(cfg.D, generator=gu, dtype=dtype)
    u = u / u.norm()
    parts = {}
    for split, offset in SPLITS.items():
        n = int(getattr(cfg, f"n_{split}"))
        parts[f"x_{split}"], parts[f"y_{split}"] = _split(cfg, u, n, _generator(cfg.seed, offset),
                                                          dtype)
    return TaskData(u=u, **parts).to(device)


def task_signal_fraction(cfg: TaskConfig) -> float:
    """The largest attainable R² at steady state: Σ c_k² / (Σ c_k² + noise²).

    A model that recovers every lag exactly leaves only ν_t, so this is the ceiling against
    which a trained model's validation R² is read. (Early steps t < ℓ_k lower it slightly.)
    """
    s = sum(c * c for c in cfg.coeffs)
    return s / (s + cfg.noise ** 2)


def lag_signal_fractions(cfg: TaskConfig) -> list[float]:
    """Share c_k² / (Σ c² + noise²) of the target variance carried by each task lag."""
    total = sum(c * c for c in cfg.coeffs) + cfg.noise ** 2
    return [c * c / total for c in cfg.coeffs]
