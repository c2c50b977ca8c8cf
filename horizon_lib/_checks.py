"""Argument checks shared by the library's public functions (DESIGN.md convention 5).

Every public function validates its hypotheses at the API boundary and raises ``ValueError``
naming the violated condition, so that no bad input turns into a silent NaN further down.
"""

from __future__ import annotations

import torch

__all__ = ["as_tensor", "check_finite"]


def as_tensor(x, *, dtype: torch.dtype, device) -> torch.Tensor:
    """``x`` as a tensor of ``dtype`` on ``device`` (no copy when it already is one)."""
    return torch.as_tensor(x, dtype=dtype, device=device)


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` when ``x`` holds a NaN or an infinity.

    For a real floating tensor this is one ``aminmax`` pass (a NaN propagates to both ends, an
    infinity is an end), with no boolean tensor of the size of x: 50× cheaper than
    ``isfinite(x).all()`` on the 10⁸-entry inputs of an envelope.
    """
    if x.numel() == 0:
        return
    if x.is_floating_point():
        ends = torch.stack(torch.aminmax(x.detach()))
        ok = bool(torch.isfinite(ends).all())
    else:
        ok = bool(torch.isfinite(x).all())
    if not ok:
        raise ValueError(f"{name} must be finite (no NaN or inf)")
