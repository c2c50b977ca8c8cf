"""Progress bars for long work: tqdm, silenced when the runner renders notebooks for the book."""

from __future__ import annotations

import os

from tqdm import tqdm

__all__ = ["progress_bar"]

#: Set to "0" by the runner so executed pages carry no progress-bar debris.
PROGRESS_ENV = "HORIZON_PROGRESS"


def progress_bar(iterable=None, *, desc: str, enabled: bool = True, **kwargs):
    """``tqdm`` over ``iterable`` unless disabled here or by ``HORIZON_PROGRESS=0``."""
    disable = not enabled or os.environ.get(PROGRESS_ENV) == "0"
    return tqdm(iterable, desc=desc, disable=disable, leave=False, **kwargs)
