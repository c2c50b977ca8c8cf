"""McCulloch's quantile estimator of the tail index α of symmetric α-stable samples (theory/noise).

ν̂ = (q₉₅ − q₀₅)/(q₇₅ − q₂₅) depends on α alone for SαS; α̂ inverts the tabulated ν(α) of the unit
SαS law and σ̂ = (q₇₅ − q₂₅)/IQR(α̂). The table ships with the package (``data/mcculloch_sas.csv``,
made once from ``scipy.stats.levy_stable`` by ``tools/make_mcculloch_table.py``). Samples are
checked, quantiled and flagged as in :mod:`horizon_lib.tail_index` (McCulloch's convention: the
p-quantile interpolates the sorted sample at position np + ½). Batched like the ECF estimator:
samples (..., sample) give one estimate per leading index.

Reference: McCulloch (1986), Comm. Stat. Simul. Comput. 15, 1109–1136.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch

from .tail_index import TailIndexFit, _check_iqr, _reliable, check_samples, sample_quantiles

__all__ = ["MCCULLOCH_PROBS", "mcculloch_table", "mcculloch_tail_index"]


@functools.lru_cache(maxsize=1)
def _table_numpy() -> np.ndarray:
    path = resources.files("horizon_lib") / "data" / "mcculloch_sas.csv"
    with resources.as_file(path) as p:
        return np.loadtxt(p, delimiter=",", comments="#", skiprows=6)


def mcculloch_table(*, dtype: torch.dtype = torch.float64, device="cpu") -> dict[str, torch.Tensor]:
    """The shipped unit-SαS table: ``alpha``, ``q75``, ``q95``, ``nu`` (= q95/q75),
    ``iqr`` (= 2 q75)."""
    t = _table_numpy()
    return {k: torch.as_tensor(np.ascontiguousarray(t[:, i]), dtype=dtype, device=device)
            for i, k in enumerate(("alpha", "q75", "q95", "nu", "iqr"))}


def _interp(xq: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of fp(xp) at xq (xp ascending), clamped to the ends."""
    xq = xq.clamp(xp[0], xp[-1])
    i = torch.searchsorted(xp, xq.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    return f0 + (xq - x0) / (x1 - x0) * (f1 - f0)


MCCULLOCH_PROBS = (0.05, 0.25, 0.75, 0.95)


def _mcculloch_from_quantiles(q: torch.Tensor, n: int):
    """(α̂, σ̂, ν̂) from quantiles (..., 4) at MCCULLOCH_PROBS."""
    tab = mcculloch_table(dtype=q.dtype, device=q.device)
    iqr = q[..., 2] - q[..., 1]
    nu = (q[..., 3] - q[..., 0]) / iqr
    nu_asc, alpha_desc, iqr_desc = (tab[k].flip(0) for k in ("nu", "alpha", "iqr"))
    alpha = _interp(nu, nu_asc, alpha_desc)
    scale = iqr / _interp(nu, nu_asc, iqr_desc)
    return alpha, scale, nu


def mcculloch_tail_index(x: torch.Tensor) -> TailIndexFit:
    """McCulloch's quantile estimator of α (and σ) for SαS samples, batched (theory/noise, (ii)).

    Args:
        x: samples (..., sample) of one SαS law per leading index (any location).

    Returns:
        :class:`TailIndexFit` of shape (...): α̂ ∈ [0.5, 2] (ν̂ outside the table is pinned to
        its end and flagged when n is small), σ̂ = IQR̂ / IQR(α̂), reliable.

    Raises:
        ValueError: fewer than ``MIN_SAMPLES`` samples, NaN or inf, or a zero IQR.

    >>> g = torch.Generator().manual_seed(0)
    >>> from horizon_lib.stable import sample_symmetric_stable
    >>> x = sample_symmetric_stable(1.2, (20000,), generator=g)
    >>> round(float(mcculloch_tail_index(x).alpha), 1)
    1.2
    """
    flat = check_samples(x)
    q = sample_quantiles(flat, MCCULLOCH_PROBS)
    _check_iqr(q[:, 2] - q[:, 1])
    n = flat.shape[-1]
    alpha, scale, _ = _mcculloch_from_quantiles(q, n)
    reliable = _reliable(alpha, scale, n) & (alpha > 0.5)
    shape = x.shape[:-1]
    return TailIndexFit(alpha.reshape(shape), scale.reshape(shape), reliable.reshape(shape))
