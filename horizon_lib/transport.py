"""Gate-induced transport factors Γ and effective learning rates μ = Λ Γ (theory/gates).

The exact lag-ℓ BPTT contribution ("Eq. 10") carries the Jacobian product
M_{t,ℓ} = J_t J_{t−1} ⋯ J_{t−ℓ+1}. Writing J_j = D_j + R_j with D_j = diag(d_j) and keeping the
terms of first order in R, the diagonal of M factorises per unit q into

    Γ^{(q)}_{t,ℓ} = ∏_{j=t−ℓ+1..t} d_j^{(q)} · [ 1 + Σ_{j=t−ℓ+1..t} r_j^{(q)} / d_j^{(q)} ]

(the diagonal of D⋯D R_k D⋯D is r_k ∏_{j≠k} d_j; every other first-order term is off the
diagonal), and "Eq. 11" weights it by an optimizer base rate: μ^{(q)}_{t,ℓ} = Λ^{(q)} Γ^{(q)}_{t,ℓ}.

Both the product and the sum come from prefix sums of log d and of r/d in float64, so every lag
of a grid costs one subtraction per entry and nothing underflows before the final exponential
(lag 10⁴ at d = 0.95 is e^{−513}: representable, unlike the running product's rounding history).
A retention below ``D_FLOOR`` (a saturated gate; exactly 0 once a float32 gate rounds) stays out
of the prefix sums, whose differences would otherwise lose digits in every later window to its
huge r/d: a window holding one such step k gets Γ = ∏_{j≠k} d_j · [d_k (1 + Σ_{j≠k} r_j/d_j) + r_k]
exactly, and a window holding two or more is set to 0, which is exact when they are zeros and
otherwise off by less than D_FLOOR · Σ_k |r_k| · ∏_{j≠k} d_j (every term carries such a factor).

Time convention (0-based arrays, shared by every function here and by :mod:`envelope`): the
window that *ends* at array index k with lag ℓ covers steps k−ℓ+1..k, i.e. it maps the state
before step k−ℓ+1 (h_{t−ℓ} in the paper, with t = k + 1) to the state after step k. It exists for
k ≥ ℓ − 1; entries of windows that would start before the sequence are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_finite

#: Retentions below this take the exact path for saturated gates (module docstring).
D_FLOOR = 1e-6

__all__ = [
    "D_FLOOR",
    "Transport",
    "check_lags",
    "check_transport_inputs",
    "transport_factors",
    "effective_learning_rates",
    "exact_transport_diagonal",
    "exact_transport_products",
    "transport_norms",
]


def check_transport_inputs(d: torch.Tensor, r: torch.Tensor | None = None,
                           e: torch.Tensor | None = None) -> None:
    """Raise ``ValueError`` unless d (and r, e) are finite (batch, time, hidden) and 0 ≤ d ≤ 1."""
    if not torch.is_tensor(d) or d.dim() != 3:
        raise ValueError(f"d must be a tensor of shape (batch, time, hidden); got "
                         f"{tuple(d.shape) if torch.is_tensor(d) else type(d).__name__}")
    for name, t in (("r", r), ("e", e)):
        if t is not None and (not torch.is_tensor(t) or t.shape != d.shape):
            got = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
            raise ValueError(f"{name} must have the shape of d {tuple(d.shape)}; got {got}")
    for name, t in (("d", d), ("r", r), ("e", e)):
        if t is not None:
            check_finite(t, name)
    lo, hi = (float(v) for v in torch.aminmax(d.detach()))
    if lo < 0 or hi > 1:
        raise ValueError("gate retention d must lie in [0, 1] (a gate outside [0, 1]); "
                         f"got values in [{lo:.4g}, {hi:.4g}]")


def check_lags(lags, T: int, *, device=None) -> torch.Tensor:
    """The lag grid as a long tensor; ``ValueError`` unless 1 ≤ ℓ ≤ T, integers, increasing."""
    lag = torch.as_tensor(lags, device=device)
    if lag.dim() == 0:
        lag = lag.reshape(1)
    if lag.dim() != 1 or lag.numel() == 0:
        raise ValueError("lags must be a non-empty one-dimensional grid")
    if lag.is_floating_point():
        if not bool(torch.isfinite(lag).all()) or bool((lag != lag.round()).any()):
            raise ValueError(f"every lag must be an integer; got {lag.tolist()[:8]}")
    lag = lag.long()
    if bool((lag < 1).any()):
        raise ValueError(f"every lag must be ≥ 1; got {lag.tolist()[:8]}")
    if bool((lag > T).any()):
        raise ValueError(f"every lag must be ≤ the sequence length T = {T} (a lag beyond the "
                         f"sequence has no window); got max lag {int(lag.max())}")
    if lag.numel() > 1 and bool((lag[1:] <= lag[:-1]).any()):
        raise ValueError("lags must be strictly increasing")
    return lag


@dataclass(frozen=True)
class Transport:
    """Γ = zeroth + first for every window end and lag; tensors (batch, time, lag, hidden).

    Attributes:
        lags: the lag grid (lag,).
        zeroth: ∏ d over the window (NaN where the window starts before the sequence).
        first: ∏ d · Σ r/d, the first-order correction.
    """

    lags: torch.Tensor
    zeroth: torch.Tensor
    first: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """Γ^{(q)}_{t,ℓ} = zeroth + first."""
        return self.zeroth + self.first

    @property
    def valid(self) -> torch.Tensor:
        """Boolean (time, lag): the windows that lie inside the sequence (k ≥ ℓ − 1)."""
        return _valid(self.zeroth.shape[1], self.lags)


def _valid(T: int, lags: torch.Tensor) -> torch.Tensor:
    k = torch.arange(T, device=lags.device)
    return k[:, None] >= lags[None, :] - 1


def _prefix(x: torch.Tensor) -> torch.Tensor:
    """Cumulative sum over time with a leading zero, in float64: (batch, time + 1, hidden)."""
    zero = torch.zeros(x.shape[0], 1, x.shape[2], dtype=torch.float64, device=x.device)
    return torch.cat([zero, torch.cumsum(x, dim=1, dtype=torch.float64)], 1)


def _prefixes(d: torch.Tensor, r: torch.Tensor):
    """Prefix sums of log d and r/d over the retentions ≥ D_FLOOR; of the count of the others
    (saturated), and of their d and r (None when there are none)."""
    d64, r64 = d.double(), r.double()
    saturated = d64 < D_FLOOR
    safe = torch.where(saturated, torch.ones_like(d64), d64)
    log_d = _prefix(torch.log(safe))
    ratio = _prefix(torch.where(saturated, torch.zeros_like(r64), r64 / safe))
    if not bool(saturated.any()):
        return log_d, ratio, None
    zero = torch.zeros_like(d64)
    return log_d, ratio, (_prefix(saturated.double()), _prefix(torch.where(saturated, d64, zero)),
                          _prefix(torch.where(saturated, r64, zero)))


def _window(prefix: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """Window sums Σ_{j=k−ℓ+1..k} x_j for all ends k and lags: (batch, time, lag, hidden)."""
    T = prefix.shape[1] - 1
    end = torch.arange(1, T + 1, device=prefix.device)
    start = (end[:, None] - lags[None, :]).clamp_min(0)
    return prefix[:, end, None, :] - prefix[:, start, :]


def transport_factors(d: torch.Tensor, r: torch.Tensor, lags) -> Transport:
    """Γ^{(q)}_{t,ℓ} for every window end and every lag of a grid, in one vectorised pass.

    Args:
        d: retention d_t (batch, time, hidden), in [0, 1].
        r: diagonal remainder r_t (batch, time, hidden).
        lags: strictly increasing lags 1 ≤ ℓ ≤ T (lag,).

    Returns:
        :class:`Transport` with ``zeroth`` = ∏ d and ``first`` = ∏ d · Σ r/d, each
        (batch, time, lag, hidden) in the dtype of d; NaN where k < ℓ − 1. Memory is
        O(batch·time·lag·hidden): for the envelope of a long grid use
        :func:`horizon_lib.envelope.estimate_envelope`.

    Raises:
        ValueError: shapes differ, a NaN or infinity, d outside [0, 1], or a bad lag grid.

    >>> d = torch.full((1, 3, 1), 0.5); Γ = transport_factors(d, torch.zeros_like(d), [1, 3])
    >>> Γ.total[0, 2, :, 0].tolist()
    [0.5, 0.125]
    """
    check_transport_inputs(d, r)
    lag = check_lags(lags, d.shape[1], device=d.device)
    log_d, ratio, saturated = _prefixes(d, r)
    prod = torch.exp(_window(log_d, lag))
    sums = _window(ratio, lag)
    if saturated is not None:
        # one saturated step k: ∏_{j≠k} d_j · [d_k (1 + Σ_{j≠k} r_j/d_j) + r_k]; two or more: 0
        count, d_k, r_k = (_window(p, lag) for p in saturated)
        one, none = count == 1, count == 0
        first = prod * torch.where(none, sums, torch.where(one, d_k * sums + r_k, 0.0))
        prod = prod * torch.where(none, 1.0, torch.where(one, d_k, 0.0))
    else:
        first = prod * sums
    invalid = ~_valid(d.shape[1], lag)[None, :, :, None]
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=d.device)
    return Transport(lags=lag, zeroth=torch.where(invalid, nan, prod).to(d.dtype),
                     first=torch.where(invalid, nan, first).to(d.dtype))


def _base_rate_windows(base_rate, lags: torch.Tensor, shape, ref: torch.Tensor) -> torch.Tensor:
    """Λ broadcastable to (batch, time, lag, hidden); a (batch, time, hidden) Λ is read at the
    window's first step k − ℓ + 1."""
    lam = torch.as_tensor(base_rate, dtype=ref.dtype, device=ref.device)
    B, T, L, H = shape
    check_finite(lam, "base_rate")
    if lam.dim() == 0:
        return lam
    if lam.shape == (H,):
        return lam
    if lam.shape == (B, T, H):
        start = (torch.arange(T, device=ref.device)[:, None] - lags[None, :] + 1).clamp_min(0)
        return lam[:, start, :]
    raise ValueError(f"base_rate must be a scalar, (hidden,) = ({H},) or (batch, time, hidden) = "
                     f"{(B, T, H)}; got {tuple(lam.shape)}")


def effective_learning_rates(gamma: torch.Tensor, lags, base_rate=1.0, *,
                             e: torch.Tensor | None = None) -> torch.Tensor:
    """μ^{(q)}_{t,ℓ} = Λ^{(q)} Γ^{(q)}_{t,ℓ} ("Eq. 11"; LSTM: Λ e_t Γ, mapped to h by e_t).

    Args:
        gamma: Γ (batch, time, lag, hidden), e.g. ``transport_factors(...).total`` or the exact
            diagonal from :func:`exact_transport_diagonal`.
        lags: the lag grid of ``gamma`` (lag,).
        base_rate: Λ: a scalar (SGD: η), per unit (hidden,) (the row mean) or per step
            (batch, time, hidden) (the Rayleigh quotient), read at the window's first step.
        e: LSTM only: e_t (batch, time, hidden), applied at the window's end.

    Returns:
        Tensor (batch, time, lag, hidden).

    Raises:
        ValueError: a base rate or e of the wrong shape, or a NaN in them.
    """
    if gamma.dim() != 4:
        raise ValueError("gamma must have shape (batch, time, lag, hidden); "
                         f"got {tuple(gamma.shape)}")
    lag = check_lags(lags, gamma.shape[1], device=gamma.device)
    if lag.numel() != gamma.shape[2]:
        raise ValueError(f"lags has {lag.numel()} entries but gamma has {gamma.shape[2]} lags")
    mu = gamma * _base_rate_windows(base_rate, lag, gamma.shape, gamma)
    if e is not None:
        if e.shape != gamma.shape[:2] + gamma.shape[3:]:
            raise ValueError(f"e must have shape (batch, time, hidden); got {tuple(e.shape)}")
        check_finite(e, "e")
        mu = mu * e[:, :, None, :]
    return mu


def _check_jacobians(jacobians: torch.Tensor) -> None:
    if jacobians.dim() != 4 or jacobians.shape[-1] != jacobians.shape[-2]:
        raise ValueError("jacobians must have shape (batch, time, hidden, hidden); got "
                         f"{tuple(jacobians.shape)}")
    check_finite(jacobians, "jacobians")


def _window_products(jacobians: torch.Tensor, lag: torch.Tensor):
    """Yield (lag index, M) with M[:, k] = J_k ⋯ J_{k−ℓ+1} for the valid ends k ≥ ℓ − 1."""
    T = jacobians.shape[1]
    wanted = {int(v): i for i, v in enumerate(lag.tolist())}
    prod = jacobians
    for m in range(1, int(lag.max()) + 1):
        if m > 1:
            prod = prod[:, 1:] @ jacobians[:, : T - m + 1]
        if m in wanted:
            yield wanted[m], prod


def _per_window(jacobians: torch.Tensor, lags, reduce, tail: tuple) -> torch.Tensor:
    """``reduce(M)`` of the exact product of every window, (batch, time, lag, *tail), NaN where
    the window starts before the sequence; the three public functions below differ only in it."""
    _check_jacobians(jacobians)
    B, T = jacobians.shape[:2]
    lag = check_lags(lags, T, device=jacobians.device)
    out = torch.full((B, T, lag.numel(), *tail), float("nan"), dtype=jacobians.dtype,
                     device=jacobians.device)
    for i, prod in _window_products(jacobians, lag):
        out[:, int(lag[i]) - 1:, i] = reduce(prod)
    return out


def exact_transport_diagonal(jacobians: torch.Tensor, lags) -> torch.Tensor:
    """The exact diag(M_{t,ℓ}) by explicit products of the full per-step Jacobians.

    Independent of Γ: no expansion, no prefix sums; M[:, k] is built as J_k (J_{k−1} (⋯)) one
    matrix product per extra lag, so a grid up to ℓ_max costs ℓ_max batched products. Use float64
    for long windows (the running product is not rescaled).

    Args:
        jacobians: J (batch, time, hidden, hidden), e.g. from
            :func:`horizon_lib.jacobians.step_jacobians` (LSTM: the cell-state chain C_t).
        lags: strictly increasing lags 1 ≤ ℓ ≤ T.

    Returns:
        Tensor (batch, time, lag, hidden), NaN where the window starts before the sequence.

    Raises:
        ValueError: not (batch, time, hidden, hidden), NaN entries, or a bad lag grid.
    """
    return _per_window(jacobians, lags, lambda m: torch.diagonal(m, dim1=-2, dim2=-1),
                       jacobians.shape[-1:])


def exact_transport_products(jacobians: torch.Tensor, lags) -> torch.Tensor:
    """The full exact products M_{t,ℓ} = J_t ⋯ J_{t−ℓ+1} ("Eq. 10"), for small problems.

    Args:
        jacobians: J (batch, time, hidden, hidden).
        lags: strictly increasing lags 1 ≤ ℓ ≤ T.

    Returns:
        Tensor (batch, time, lag, hidden, hidden), NaN where the window starts before the
        sequence; memory O(batch·time·lag·hidden²).

    Raises:
        ValueError: as :func:`exact_transport_diagonal`.
    """
    return _per_window(jacobians, lags, lambda m: m, jacobians.shape[-2:])


def transport_norms(jacobians: torch.Tensor, lags) -> torch.Tensor:
    """Spectral norms ‖M_{t,ℓ}‖₂ of the exact Jacobian products (stability, theory/gates).

    Args:
        jacobians: J (batch, time, hidden, hidden).
        lags: strictly increasing lags 1 ≤ ℓ ≤ T.

    Returns:
        Tensor (batch, time, lag), NaN where the window starts before the sequence.

    Raises:
        ValueError: as :func:`exact_transport_diagonal`.
    """
    return _per_window(jacobians, lags, lambda m: torch.linalg.matrix_norm(m, ord=2), ())
