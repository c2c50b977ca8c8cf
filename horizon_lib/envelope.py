"""The envelope f(ℓ) = Σ_q |μ^{(q)}_{t,ℓ}| and per-unit time scales τ_q
(theory/gates, theory/window).

The estimate averages over sequences b and window ends t (every window that fits in the
sequence, T − ℓ + 1 of them per sequence):

    f̂(ℓ) = Σ_q  mean_{b,t} |μ^{(q)}_{t,ℓ}|,      μ = Λ Γ  (LSTM: Λ e_t Γ),

and splits as f = f_gates + f_adapt with f_gates = η Σ_q mean |Γ^{(q)}| (the SGD envelope at the
nominal step η) and f_adapt the part due to the optimizer's per-unit rates (zero for SGD). The
paper's code release averages over units instead of summing: its values are f̂/H.

:func:`estimate_envelope` never stores the (batch, time, lag, hidden) array of μ. Per chunk of
sequences it keeps the window products P = ∏ d and brackets A = 1 + Σ r/d for one lag, and
moves to the next lag of the (increasing) grid by multiplying in the product of the gap and
adding its sum, both read from float64 prefix sums of log d and r/d; every ``anchor`` lags (float32)
P and A are recomputed from the prefix sums so rounding cannot drift. Memory is O(batch·time·hidden)
and each (sequence, window, lag, unit) costs a handful of flops. Denormal floats are flushed to zero
while it runs (otherwise decayed products run ~100× slower on x86): chunks go to a small thread pool
whose threads each run single-threaded torch with flushing on, so values below ~1e−38 (float32) or
~1e−308 (float64) count as zero. A saturated retention (below ``transport.D_FLOOR``, e.g. exactly 0
in float32) breaks the log-space prefix sums or, through its huge r/d, the precision of every later
window: the sequences that hold one go through :func:`transport_factors` (exact, O(time·lag·hidden)
memory per sequence) and are pooled with the others, for either ``order``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from ._checks import check_finite
from .transport import (
    D_FLOOR,
    _base_rate_windows,
    check_lags,
    check_transport_inputs,
    transport_factors,
)

__all__ = ["Envelope", "estimate_envelope", "envelope_from_factors", "TimeScales",
           "fit_time_scales",
           "constgate_time_scale"]


@dataclass(frozen=True)
class Envelope:
    """f̂(ℓ) and its per-unit parts on a lag grid.

    Attributes:
        lags: the lag grid (lag,).
        per_unit: mean over (sequence, window) of |μ^{(q)}_{t,ℓ}|, shape (lag, hidden).
        per_unit_transport: the same with Λ ≡ 1, mean |Γ^{(q)}| (LSTM: |e_t Γ|), (lag, hidden).
        windows: number of (sequence, window) pairs averaged per lag (lag,).
    """

    lags: torch.Tensor
    per_unit: torch.Tensor
    per_unit_transport: torch.Tensor
    windows: torch.Tensor

    @property
    def f(self) -> torch.Tensor:
        """f̂(ℓ) = Σ_q mean |μ^{(q)}_{t,ℓ}|, shape (lag,)."""
        return self.per_unit.sum(-1)

    def decomposition(self, nominal_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_gates, f_adapt): f_gates = η Σ_q mean |Γ^{(q)}|, f_adapt = f̂ − f_gates (lag,)."""
        f_gates = float(nominal_rate) * self.per_unit_transport.sum(-1)
        return f_gates, self.f - f_gates

    @staticmethod
    def combine(parts: list["Envelope"]) -> "Envelope":
        """Pool envelopes of disjoint batches on the same grid (window-weighted means)."""
        if not parts or any(not torch.equal(p.lags, parts[0].lags) for p in parts):
            raise ValueError("combine needs a non-empty list of envelopes on the same lag grid")
        w = torch.stack([p.windows for p in parts]).double()
        total = w.sum(0)

        def pool(name):
            vals = torch.stack([getattr(p, name).double() for p in parts])
            return ((vals * w[..., None]).sum(0) / total[:, None]).to(getattr(parts[0], name).dtype)

        return Envelope(parts[0].lags, pool("per_unit"), pool("per_unit_transport"), total.long())


def _quiet_worker() -> None:
    """Thread initialiser: one intra-op thread, denormals flushed to zero (this thread only)."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def _map_chunks(fn, chunks: list, device: torch.device) -> list:
    """``[fn(c) for c in chunks]``; on the CPU spread over ``torch.get_num_threads()`` threads,
    each single-threaded with denormals flushed (MXCSR is per thread, so flushing in the caller
    would leave OpenMP's workers on the ~100× slower denormal path)."""
    if device.type != "cpu":
        return [fn(c) for c in chunks]
    n = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(n, len(chunks))),
                                initializer=_quiet_worker) as pool:
            return list(pool.map(fn, chunks))
    finally:
        torch.set_num_threads(n)   # the workers' call also reached process-wide MKL settings


def _scalar_or_unit_rate(base_rate, H: int, ref: torch.Tensor):
    lam = torch.as_tensor(base_rate, dtype=torch.float64, device=ref.device)
    check_finite(lam, "base_rate")
    if lam.dim() == 0 or lam.shape == (H,):
        return lam.abs().expand(H), None
    return None, lam


def estimate_envelope(d: torch.Tensor, r: torch.Tensor, lags, *, base_rate=1.0,
             e: torch.Tensor | None = None, order: int = 1, batch_chunk: int | None = None,
             anchor: int = 32) -> Envelope:
    """f̂(ℓ) and per-unit mean |μ^{(q)}(ℓ)| for a whole lag grid, in O(batch·time·hidden) memory.

    Args:
        d: retention d_t (batch, time, hidden), in [0, 1].
        r: diagonal remainder r_t (batch, time, hidden).
        lags: strictly increasing lags 1 ≤ ℓ ≤ T (lag,).
        base_rate: Λ: scalar (SGD η), (hidden,) or (batch, time, hidden) (read at each window's
            first step, as in :func:`horizon_lib.transport.effective_learning_rates`).
        e: LSTM only: e_t (batch, time, hidden), the map of the cell-state factor to h.
        order: 1 for Γ = ∏d (1 + Σ r/d), 0 for the zeroth-order ∏d alone.
        batch_chunk: sequences per chunk (default: about 2¹⁹ entries per array on the CPU, 2²⁷
            on an accelerator).
        anchor: recompute the running products from the prefix sums every ``anchor`` lags.

    Returns:
        :class:`Envelope` in the dtype of d (float32 or float64 arithmetic); no gradient flows.

    Raises:
        ValueError: shapes differ, NaN or infinity, d outside [0, 1], a bad lag grid, a bad
            base rate, or ``order`` not 0 or 1.
    """
    check_transport_inputs(d, r, e)
    d, r = d.detach(), r.detach()
    e = None if e is None else e.detach()
    if torch.is_tensor(base_rate):
        base_rate = base_rate.detach()
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (∏ d) or 1 (first order); got {order}")
    B, T, H = d.shape
    lag = check_lags(lags, T, device=d.device)
    unit_rate, step_rate = _scalar_or_unit_rate(base_rate, H, d)
    if step_rate is not None and step_rate.shape != (B, T, H):
        raise ValueError(f"base_rate must be a scalar, (hidden,) = ({H},) or (batch, time, hidden) "
                         f"= {(B, T, H)}; got {tuple(step_rate.shape)}")
    if bool(d.amin() < D_FLOOR):
        # a saturated gate (d = 0 once a float32 gate rounds, or below D_FLOOR) takes the exact
        # path of transport_factors, which costs O(time·lag·hidden) per sequence: only the
        # sequences that hold one take it (the check runs here, before any worker thread flushes
        # a subnormal d to 0)
        zero = (d < D_FLOOR).flatten(1).any(1)
        if bool(zero.all()):
            return _envelope_by_factors(d, r, lag, base_rate, e, batch_chunk, order)
        def rows(m):                         # Λ and e of the sequences m
            return dict(base_rate=base_rate if step_rate is None else step_rate[m],
                        e=None if e is None else e[m])
        fast = estimate_envelope(d[~zero], r[~zero], lag, order=order, batch_chunk=batch_chunk,
                                 anchor=anchor, **rows(~zero))
        exact = _envelope_by_factors(d[zero], r[zero], lag, batch_chunk=batch_chunk,
                                     order=order, **rows(zero))
        return Envelope.combine([fast, exact])
    dtype = torch.float64 if d.dtype == torch.float64 else torch.float32
    # CPU: ~2 MB float32 arrays, reused per thread (measured best at T·H = 2¹⁷); accelerators:
    # few large launches
    n = batch_chunk or max(1, (1 << (19 if d.device.type == "cpu" else 27)) // (T * H))
    local = threading.local()

    def chunk(b0: int) -> torch.Tensor:
        sl = slice(b0, b0 + n)
        m = d[sl].shape[0]
        ws = getattr(local, "ws", None)
        if ws is None or ws.n != m:
            ws = local.ws = _Workspace(m, T, H, lag, order, dtype, d.device,
                                       anchor if dtype == torch.float32 else 0)
        lam = None if step_rate is None else step_rate[sl].abs().to(dtype)
        return ws.sums(d[sl], r[sl], None if e is None else e[sl], lam)

    sums = torch.stack(_map_chunks(chunk, list(range(0, B, n)), d.device)).double().sum(0)
    windows = B * (T - lag + 1)
    mean = sums / windows[None, :, None].double()
    per_unit = mean[0] * unit_rate if step_rate is None else mean[1]
    return Envelope(lag, per_unit.to(d.dtype), mean[0].to(d.dtype), windows)


class _Workspace:
    """Buffers for one chunk of n sequences, allocated once per thread and reused.

    Fresh large allocations cost page faults comparable to the arithmetic, so every temporary
    lives here and every operation writes in place or through ``out=``.
    """

    def __init__(self, n, T, H, lag, order, dtype, device, anchor):
        self.n, self.T, self.H, self.lag = n, T, H, lag.tolist()
        self.order, self.anchor = order, anchor
        f64 = dict(dtype=torch.float64, device=device)
        self.S = torch.zeros(n, T + 1, H, **f64)
        self.R = torch.zeros(n, T + 1, H, **f64) if order == 1 else None
        self.w64 = torch.empty(n, T, H, **f64)
        self.P = torch.zeros(n, T, H, dtype=dtype, device=device)
        self.A = torch.zeros_like(self.P) if order == 1 else None
        self.tmp = torch.zeros_like(self.P)
        self.acc = torch.zeros(2, len(self.lag), H, dtype=dtype, device=device)
        self.gaps: dict[int, tuple] = {}

    def _window(self, prefix: torch.Tensor, ell: int) -> torch.Tensor:
        """Window sums of length ell ending at k = ell−1..T−1, in float64 scratch."""
        out = self.w64[:, ell - 1:]
        return torch.sub(prefix[:, ell:], prefix[:, : self.T + 1 - ell], out=out)

    def _anchor(self, ell: int, e) -> None:
        P, A = self.P, self.A
        P[:, : ell - 1].zero_()
        P[:, ell - 1:].copy_(self._window(self.S, ell).exp_())
        if e is not None:
            P[:, ell - 1:].mul_(e[:, ell - 1:])
        if A is not None:
            A[:, ell - 1:].copy_(self._window(self.R, ell).add_(1.0))

    def _gap(self, g: int) -> tuple:
        if g not in self.gaps:
            G = torch.zeros_like(self.P)
            G[:, g - 1:].copy_(self._window(self.S, g).exp_())
            Q = None
            if self.A is not None:
                Q = torch.zeros_like(self.P)
                Q[:, g - 1:].copy_(self._window(self.R, g))
            self.gaps[g] = (G, Q)
        return self.gaps[g]

    def sums(self, d, r, e, lam) -> torch.Tensor:
        """Σ_{b,k} |e Γ| (row 0) and Σ_{b,k} |Λ e Γ| (row 1, when lam is given): (2, lag, H)."""
        T, H = self.T, self.H
        # log d and r/d in the working dtype (float32 input: their rounding matches the input's
        # own), accumulated in float64; a cumsum in float64 costs 2.5× one that upcasts on the fly
        tmp = self.tmp
        torch.cumsum(tmp.copy_(d).log_(), 1, dtype=torch.float64, out=self.S[:, 1:])
        if self.R is not None:
            torch.cumsum(tmp.copy_(r).div_(d), 1, dtype=torch.float64, out=self.R[:, 1:])
        self.gaps.clear()
        P, A, tmp, acc = self.P, self.A, self.tmp, self.acc
        prev = None
        for i, ell in enumerate(self.lag):
            g = None if prev is None else ell - prev
            if prev is None or (self.anchor and i % self.anchor == 0) or (
                    g not in self.gaps and len(self.gaps) >= 4):
                self._anchor(ell, e)
            else:
                G, Q = self._gap(g)
                P[:, prev - 1: ell - 1].zero_()
                P[:, ell - 1:].mul_(G[:, g - 1: T - prev])
                if A is not None:
                    A[:, ell - 1:].add_(Q[:, g - 1: T - prev])
            prev = ell
            gamma = P if A is None else torch.mul(A, P, out=tmp).abs_()
            torch.sum(gamma.view(-1, H), 0, out=acc[0, i])
            if lam is not None:
                if gamma is P:
                    tmp.copy_(P)
                tmp[:, ell - 1:].mul_(lam[:, : T + 1 - ell])
                torch.sum(tmp.view(-1, H), 0, out=acc[1, i])
        return acc.clone()


def _envelope_by_factors(d, r, lag, base_rate, e, batch_chunk, order=1):
    """Exact fallback through :func:`transport_factors` (saturated retentions, d < D_FLOOR)."""
    B, T, H = d.shape
    n = batch_chunk or max(1, (1 << 22) // (T * H * lag.numel()))
    parts = []
    for b0 in range(0, B, n):
        sl = slice(b0, b0 + n)
        lam = base_rate
        if torch.is_tensor(base_rate) and base_rate.dim() == 3:
            lam = base_rate[sl]
        factors = transport_factors(d[sl], r[sl], lag)
        gamma = factors.total if order == 1 else factors.zeroth
        parts.append(envelope_from_factors(gamma, lag, base_rate=lam,
                                           e=None if e is None else e[sl]))
    return Envelope.combine(parts)


def envelope_from_factors(gamma: torch.Tensor, lags, *, base_rate=1.0,
                          e: torch.Tensor | None = None) -> Envelope:
    """The envelope of a given array of transport factors, e.g. the exact diag(M_{t,ℓ}).

    Args:
        gamma: Γ (batch, time, lag, hidden) with NaN exactly at the windows outside the sequence
            (as returned by :func:`~horizon_lib.transport.transport_factors` and
            :func:`~horizon_lib.transport.exact_transport_diagonal`).
        lags: the lag grid of ``gamma``.
        base_rate, e: as in :func:`estimate_envelope`.

    Returns:
        :class:`Envelope`.

    Raises:
        ValueError: a bad shape, a NaN inside the sequence, or a bad base rate.
    """
    if gamma.dim() != 4:
        raise ValueError("gamma must have shape (batch, time, lag, hidden); got "
                         f"{tuple(gamma.shape)}")
    B, T, L, H = gamma.shape
    lag = check_lags(lags, T, device=gamma.device)
    if lag.numel() != L:
        raise ValueError(f"lags has {lag.numel()} entries but gamma has {L} lags")
    valid = (torch.arange(T, device=gamma.device)[:, None] >= lag[None, :] - 1)[None, :, :, None]
    check_finite(torch.where(valid, gamma, 0.0), "gamma inside the sequence")
    g = torch.where(valid, gamma, 0.0).abs()
    if e is not None:
        if e.shape != (B, T, H):
            raise ValueError(f"e must have shape (batch, time, hidden); got {tuple(e.shape)}")
        g = g * e.abs()[:, :, None, :]
    lam = _base_rate_windows(base_rate, lag, gamma.shape, gamma).abs()
    windows = B * (T - lag + 1)
    denom = windows[:, None].to(gamma.dtype)
    return Envelope(lag, (g * lam).sum((0, 1)) / denom, g.sum((0, 1)) / denom, windows)


@dataclass(frozen=True)
class TimeScales:
    """Per-unit fits log|μ^{(q)}(ℓ)| = intercept + slope · ℓ; τ_q = −1/slope (inf if slope ≥ 0).

    Attributes (each (hidden,)): ``tau``, ``slope``, ``intercept``, ``r2``, ``points`` (lags used).
    """

    tau: torch.Tensor
    slope: torch.Tensor
    intercept: torch.Tensor
    r2: torch.Tensor
    points: torch.Tensor


def fit_time_scales(lags, per_unit: torch.Tensor, *, min_points: int = 3) -> TimeScales:
    """τ_q from the least-squares line through log|μ^{(q)}(ℓ)| against ℓ
    (theory/gates, theory/window).

    Lags where a unit's value is zero (or not finite) are left out of that unit's fit; a unit
    with fewer than ``min_points`` usable lags gets NaN throughout.

    Args:
        lags: the lag grid (lag,).
        per_unit: mean |μ^{(q)}(ℓ)| (lag, hidden), e.g. ``Envelope.per_unit``.
        min_points: fewest lags a fit may use (≥ 2).

    Returns:
        :class:`TimeScales` of shape (hidden,) each.

    Raises:
        ValueError: shapes disagree, fewer than 2 lags, or ``min_points`` < 2.
    """
    x = torch.as_tensor(lags, dtype=torch.float64, device=per_unit.device).reshape(-1)
    if per_unit.dim() != 2 or per_unit.shape[0] != x.numel():
        raise ValueError(f"per_unit must have shape (lag, hidden) = ({x.numel()}, hidden); got "
                         f"{tuple(per_unit.shape)}")
    if min_points < 2 or x.numel() < 2:
        raise ValueError("a time-scale fit needs min_points ≥ 2 and at least two lags")
    v = per_unit.double().abs()
    w = (torch.isfinite(v) & (v > 0)).double()
    y = torch.where(w > 0, torch.log(torch.where(w > 0, v, 1.0)), 0.0)
    n = w.sum(0)
    xm = (w * x[:, None]).sum(0) / n
    ym = (w * y).sum(0) / n
    dx = (x[:, None] - xm) * w
    sxx, sxy = (dx * (x[:, None] - xm)).sum(0), (dx * (y - ym)).sum(0)
    slope = sxy / sxx
    intercept = ym - slope * xm
    resid = ((y - intercept - slope * x[:, None]) ** 2 * w).sum(0)
    stot = (((y - ym) ** 2) * w).sum(0)
    r2 = 1 - resid / stot
    bad = n < min_points
    nan = torch.full_like(slope, float("nan"))
    tau = torch.where(slope < 0, -1.0 / slope, torch.full_like(slope, float("inf")))
    out = [torch.where(bad, nan, t) for t in (tau, slope, intercept, r2)]
    return TimeScales(*out, points=n.long())


def constgate_time_scale(s: float) -> float:
    """τ = −1/log(1 − s): the exact zeroth-order time scale of a constant gate s ∈ (0, 1)."""
    import math

    if not 0.0 < float(s) < 1.0:
        raise ValueError(f"the constant gate s must lie in (0, 1) for a finite time scale; got {s}")
    return -1.0 / math.log1p(-float(s))
