"""The matched statistic ψ(ℓ): the first-order lag-ℓ gradient along random parameter directions.

THEORY.md §4: project the first-order lag-ℓ gradient contribution (Eq. 11) on a random unit
direction w of parameter space,

    ψ_t(ℓ) = Σ_q μ^{(q)}_{t,ℓ} δ_t^{(q)} v^{(q)}_{t−ℓ},        v = (∂h/∂θ)[w],

with μ^{(q)}_{t,ℓ} = Λ^{(q)} Γ^{(q)}_{t,ℓ} the effective learning rate, δ_t = ∂L/∂h_t and v the
forward-mode sensitivity of the (transported) state along w, computed with ``torch.func.jvp``
without forming a Jacobian. Γ comes from prefix sums of log d and r/d (THEORY.md §2), so every
lag costs O(batch·time·hidden) and no product underflows.

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

#: Smallest retention used in the prefix sums (see :func:`matched_statistic`).
D_FLOOR = 1e-6

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
        raise ValueError(f"v must be (direction, batch, time, hidden) = (K, {', '.join(map(str, d.shape))}); "
                         f"got {tuple(v.shape)}")
    if bool((d < 0).any()) or bool((d > 1).any()):
        raise ValueError("retention d must lie in [0, 1]")


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
        ValueError: mismatched shapes, d outside [0, 1], an empty lag grid or a lag outside [1, T).
    """
    _check_terms(d, r, delta, v)
    t_len = d.shape[1]
    lags = [int(v_) for v_ in lags]
    if not lags:
        raise ValueError("the lag grid must not be empty")
    if any(not 1 <= ell < t_len for ell in lags):
        raise ValueError(f"every lag must lie in [1, T) = [1, {t_len}); got {lags}")
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
    # (batch, direction, time, hidden): a time slice of it flattens to (batch, direction, t·h)
    # without a copy, so each lag is one batched matrix-vector product
    vb = v.transpose(0, 1).contiguous()
    n_b, n_k, n_h = d.shape[0], v.shape[0], d.shape[2]
    out = torch.empty(len(lags), n_k, n_b, dtype=f64, device=d.device)
    inst = torch.empty_like(out) if instantaneous else None
    for i, ell in enumerate(lags):
        # Γ_{t,ℓ} = ∏_{j=t−ℓ+1..t} d_j · (1 + Σ_{j=t−ℓ+1..t} r_j/d_j),  t = ℓ..T−1
        hi, lo = slice(ell + 1, t_len + 1), slice(1, t_len - ell + 1)
        # Γ in float64 (a long closed window stays representable before δ scales it); the
        # contraction with v runs in v's dtype
        gamma = torch.exp(log_d[:, hi] - log_d[:, lo]) * (1.0 + ratio[:, hi] - ratio[:, lo])
        a = (gamma * dd[:, ell:]).to(work)                          # (batch, T−ℓ, hidden)
        n_t = t_len - ell
        prod = torch.bmm(vb[:, :, :n_t].reshape(n_b, n_k, n_t * n_h), a.reshape(n_b, -1, 1))
        out[i] = prod[..., 0].T.to(f64) / n_t
        if instantaneous:
            inst[i] = torch.einsum("bh,kbh->kb", a[:, -1].to(f64), v[:, :, t_len - 1 - ell].to(f64))
    return (out, inst) if instantaneous else out


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
