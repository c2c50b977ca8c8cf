"""The matched statistic ψ(ℓ): the first-order lag-ℓ gradient along random parameter directions.

theory/window: project the first-order lag-ℓ gradient contribution (Eq. 11) on a random unit
direction w of parameter space,

    ψ_t(ℓ) = Σ_q μ^{(q)}_{t,ℓ} δ_t^{(q)} v^{(q)}_{t−ℓ},        v = (∂h/∂θ)[w],

with μ^{(q)}_{t,ℓ} = Λ^{(q)} Γ^{(q)}_{t,ℓ} the effective learning rate, δ_t = ∂L/∂h_t and v the
forward-mode sensitivity of the (transported) state along w, computed with ``torch.func.jvp``
without forming a Jacobian. Γ comes from float64 prefix sums of log d and r/d (theory/gates),
carried from one lag of the grid to the next by the factors of the gap between them, so every
lag costs O(batch·time·hidden); a block of lags is contracted with v in one matrix product.

Samples: each sequence b and direction k gives one per-sequence mean ψ̄_{k,b}(ℓ) over its valid
times t ∈ [ℓ, T). The sign of ψ depends on the arbitrary direction w, so each (direction, lag)
is oriented **once**, by the sign of its mean over all sequences (the code release flips signs
per diagnostic batch, which biases |m̄| upward and makes it depend on the batch size).

Shapes: d, r, δ are (batch, time, hidden); v is (direction, batch, time, hidden); results are
(lag, direction, batch).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.func import jvp, vmap

from ._checks import check_finite
from .transport import D_FLOOR, check_transport_inputs

#: Entries (batch · lags · time · hidden) of the block of lags contracted with v at once, on the
#: CPU (128 MB in float32) and on an accelerator; sequences are taken in sub-batches small enough
#: for ``LAG_BLOCK`` lags to fit.
LAG_BLOCK_ENTRIES = 1 << 25
LAG_BLOCK_ENTRIES_ACCELERATOR = 1 << 29
LAG_BLOCK = 16

__all__ = ["random_unit_directions", "state_jvp", "matched_statistic", "orient_per_lag"]


def random_unit_directions(params: dict[str, torch.Tensor], k: int, *,
                           generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """K random directions w, each of unit Euclidean norm over all parameters jointly.

    Args:
        params: name → tensor, the parameters θ (only their shapes, dtypes and devices are used).
        k: number K ≥ 1 of directions.
        generator: source of the Gaussian draws (keyword-only), on the CPU.

    Returns:
        name → tensor (direction, *shape): w_k uniform on the unit sphere of parameter space.

    Raises:
        ValueError: K < 1 or no parameters.
    """
    if int(k) < 1:
        raise ValueError(f"number of directions K must be ≥ 1; got {k}")
    if not params:
        raise ValueError("need at least one parameter to draw directions in")
    draws = {n: torch.randn((int(k), *p.shape), generator=generator, dtype=p.dtype)
             for n, p in params.items()}
    norm = torch.sqrt(sum(w.flatten(1).pow(2).sum(1) for w in draws.values()))
    return {n: (w / norm.view(-1, *([1] * (w.dim() - 1)))).to(params[n].device)
            for n, w in draws.items()}


def state_jvp(state_fn: Callable[[dict, torch.Tensor], torch.Tensor], params: dict,
              directions: dict, x: torch.Tensor) -> torch.Tensor:
    """v_k = (∂s/∂θ)[w_k] for every direction: forward-mode AD through the whole recurrence.

    Args:
        state_fn: ``state_fn(params, x)`` → the transported state s (batch, time, hidden): h for
            the gated cells and the GRU, the cell state c for the LSTM.
        params: name → tensor θ.
        directions: name → (direction, *shape), from :func:`random_unit_directions`.
        x: inputs (batch, time, input).

    Returns:
        Tensor (direction, batch, time, hidden).
    """
    def one(w):
        return jvp(lambda p: state_fn(p, x), (params,), (w,))[1]

    # all K directions in one forward-mode pass: vmap over the tangents
    return vmap(one)(directions)


def _check_terms(d, r, delta, v):
    if d.dim() != 3 or d.shape != r.shape or d.shape != delta.shape:
        raise ValueError("d, r and δ must share one shape (batch, time, hidden); got "
                         f"{tuple(d.shape)}, {tuple(r.shape)}, {tuple(delta.shape)}")
    if v.dim() != 4 or v.shape[1:] != d.shape:
        shape = ", ".join(map(str, d.shape))
        raise ValueError(f"v must be (direction, batch, time, hidden) = (K, {shape}); "
                         f"got {tuple(v.shape)}")
    check_transport_inputs(d, r)     # d in [0, 1], d and r finite (the transport's own check)
    check_finite(delta, "δ")         # a NaN δ or an infinite v would make ψ NaN without error
    check_finite(v, "v")


def _transport_windows(log_d: torch.Tensor, ratio: torch.Tensor, lags: list[int], *,
                       max_gaps: int = 2):
    """Yield (index, ℓ, P, A) for each lag: Γ = P · A (batch, T − ℓ, hidden) on the windows ending
    at t ≥ ℓ, P and A read-only (the next lag updates them in place).

    Γ_{t,ℓ} = ∏_{j=t−ℓ+1..t} d_j · (1 + Σ_{j=t−ℓ+1..t} r_j/d_j), in float64 (a long closed window
    stays representable before δ scales it), from the prefix sums ``log_d`` and ``ratio``
    (batch, T + 1, hidden). Along an increasing grid the product and the sum of lag ℓ are those
    of the previous lag times / plus the ones of the gap between them, so a lag costs two
    in-place operations instead of an exponential. The factors of the first ``max_gaps``
    distinct gaps are kept (a linear grid has one or two); a lag after any other gap, or after a
    larger lag, is formed directly from the prefix sums.
    """
    t_len = log_d.shape[1] - 1

    def window(prefix, ell, op):          # Σ over the windows of length ell ending at t ≥ ell
        return op(prefix[:, ell + 1:], prefix[:, 1: t_len - ell + 1])

    prod = bracket = None
    prev, gaps = None, {}
    for i, ell in enumerate(lags):
        g = None if prev is None else ell - prev
        if g is None or g <= 0 or (g not in gaps and len(gaps) >= max_gaps):
            prod = window(log_d, ell, torch.sub).exp_()
            bracket = window(ratio, ell, torch.sub).add_(1.0)
        else:
            if g not in gaps:                # gap windows end at j ≥ g; lag ℓ needs j = t − prev
                gaps[g] = (window(log_d, g, torch.sub).exp_(), window(ratio, g, torch.sub))
            gap_prod, gap_sum = gaps[g]
            prod = prod[:, g:].mul_(gap_prod[:, : t_len - ell])
            bracket = bracket[:, g:].add_(gap_sum[:, : t_len - ell])
        prev = ell
        yield i, ell, prod, bracket


def matched_statistic(d: torch.Tensor, r: torch.Tensor, delta: torch.Tensor, v: torch.Tensor,
                      lags: Sequence[int], *, rate: torch.Tensor | float = 1.0,
                      instantaneous: bool = False):
    """Per-sequence means ψ̄_{k,b}(ℓ) of the matched statistic for every lag of a grid.

    Args:
        d: retention d_t (batch, time, hidden), in [0, 1] (values below ``D_FLOOR`` are raised
            to it).
        r: the rest of diag(J_t), r_t = diag(J_t) − d_t, (batch, time, hidden).
        delta: δ_t = ∂L/∂s_t (batch, time, hidden) (for the LSTM: already mapped by e_t).
        v: state sensitivities (direction, batch, time, hidden) from :func:`state_jvp`.
        lags: lags ℓ with 1 ≤ ℓ < time, shape (lag,).
        rate: optimizer base rate Λ^{(q)} (hidden,) or the SGD step η (μ = Λ Γ).
        instantaneous: also return the instantaneous statistic ψ_t(ℓ) at the last step
            t = T − 1 of every sequence (lag, direction, batch): as many samples as the
            per-sequence means, one per sequence.

    The envelope f̂(ℓ) is not computed here: it is :func:`horizon_lib.envelope.estimate_envelope`
    on the same d, r (and e), which averages over every window of the sequence, T − ℓ + 1 of
    them, whereas ψ needs v_{t−ℓ} and so uses the T − ℓ windows ending at t ≥ ℓ.

    Returns:
        Tensor (lag, direction, batch): ψ̄ averaged over t ∈ [ℓ, T), computed in float64; with
        ``instantaneous`` the pair (ψ̄, ψ_{T−1} (lag, direction, batch)).

    Raises:
        ValueError: mismatched shapes, d outside [0, 1], a NaN or an infinity in d, r, δ or v,
            an empty lag grid or a lag outside [1, T).
    """
    _check_terms(d, r, delta, v)
    t_len = d.shape[1]
    lags = [int(v_) for v_ in lags]
    if not lags:
        raise ValueError("the lag grid must not be empty")
    if any(not 1 <= ell < t_len for ell in lags):
        raise ValueError(f"every lag must lie in [1, T) = [1, {t_len}); got {lags}")
    rate_shape = tuple(torch.as_tensor(rate).shape)
    if rate_shape not in ((), (d.shape[2],)):
        raise ValueError(f"rate must be a scalar or (hidden,) = ({d.shape[2]},); got shape "
                         f"{rate_shape}")
    # every quantity is per sequence: sub-batches keep a block of LAG_BLOCK lags within budget
    budget = LAG_BLOCK_ENTRIES if d.device.type == "cpu" else LAG_BLOCK_ENTRIES_ACCELERATOR
    step = max(1, budget // (LAG_BLOCK * t_len * d.shape[2]))
    parts = [_matched_sub_batch(d[b0:b0 + step], r[b0:b0 + step], delta[b0:b0 + step],
                                v[:, b0:b0 + step], lags, rate, instantaneous, budget)
             for b0 in range(0, d.shape[0], step)]
    out = torch.cat([p[0] for p in parts], 2)
    if not instantaneous:
        return out
    return out, torch.cat([p[1] for p in parts], 2)


def _matched_sub_batch(d, r, delta, v, lags, rate, instantaneous: bool, budget: int):
    """:func:`matched_statistic` on one sub-batch of sequences: (ψ̄, ψ_{T−1} or None)."""
    t_len = d.shape[1]
    f64, work = torch.float64, v.dtype
    zero = torch.zeros_like(d[:, :1], dtype=f64)
    # a saturated gate (d = 0 in float32) is raised to D_FLOOR: a window holding it keeps its
    # first-order term r_k ∏_{j≠k} d_j to within D_FLOOR, and the prefix sums of r/d lose at most
    # log10(1/D_FLOOR) of float64's 16 digits to cancellation
    d64 = d.to(f64).clamp_min(D_FLOOR)
    log_d = torch.cat([zero, torch.cumsum(torch.log(d64), 1)], 1)   # L[k] = Σ_{j<k} log d_j
    ratio = torch.cat([zero, torch.cumsum(r.to(f64) / d64, 1)], 1)
    lam = torch.as_tensor(rate, dtype=f64, device=d.device)
    dd = delta.to(f64) * lam
    # ψ̄_{k,b}(ℓ) = Σ_{s,h} v_{k,b,s,h} a_{b,s,h}(ℓ) / (T − ℓ) with a(ℓ) = Λ Γ δ on the windows that
    # start at s = t − ℓ, zero-padded to length T: a block of lags is then one batched matrix
    # product (batch, direction, T·hidden) @ (batch, T·hidden, lags), so v is read once per
    # block instead of once per lag (a matrix-vector product per lag is bound by reading v)
    n_b, n_k, n_h = d.shape[0], v.shape[0], d.shape[2]
    vflat = v.transpose(0, 1).reshape(n_b, n_k, t_len * n_h)
    block = max(1, min(len(lags), budget // (n_b * t_len * n_h)))
    buf = torch.empty(n_b, block, t_len * n_h, dtype=work, device=d.device)
    out = torch.empty(len(lags), n_k, n_b, dtype=f64, device=d.device)
    inst = torch.empty_like(out) if instantaneous else None
    pending: list[tuple[int, int]] = []

    def flush():
        prod = torch.bmm(vflat, buf[:, : len(pending)].transpose(1, 2))     # (batch, dir, lags)
        for slot, (i, n_t) in enumerate(pending):
            out[i] = prod[:, :, slot].T.to(f64) / n_t
        pending.clear()

    for i, ell, prod, bracket in _transport_windows(log_d, ratio, lags):
        n_t = t_len - ell
        a = (prod * bracket).mul_(dd[:, ell:])                      # Λ Γ δ (batch, T−ℓ, hidden)
        row = buf[:, len(pending)]
        row[:, : n_t * n_h].copy_(a.reshape(n_b, -1))               # in v's dtype
        row[:, n_t * n_h:].zero_()
        pending.append((i, n_t))
        if instantaneous:
            inst[i] = torch.einsum("bh,kbh->kb", a[:, -1], v[:, :, t_len - 1 - ell].to(f64))
        if len(pending) == block:
            flush()
    if pending:
        flush()
    return out, inst


def orient_per_lag(psi: torch.Tensor) -> torch.Tensor:
    """Orient each (lag, direction) once by the sign of its mean over sequences.

    Args:
        psi: (lag, direction, batch) per-sequence means.

    Returns:
        Tensor (lag, direction·batch): the oriented samples of each lag, pooled over directions.
    """
    sign = torch.sign(psi.mean(-1, keepdim=True))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (psi * sign).flatten(1)
