"""Wall-clock timing shared by the benchmarks: the best of several runs."""

from __future__ import annotations

import math
import time


def best_time(fn, repeats: int = 1, *, warmup: bool = False, sync=None) -> tuple[float, object]:
    """(best wall time of ``repeats`` calls of ``fn``, the last call's result).

    ``warmup`` makes one untimed call first (first-call costs of the allocator, autograd or
    vmap are not part of a long run); ``sync`` is called before and after each timed call (a
    CUDA synchronisation, so that queued kernels are inside the timing).
    """
    if warmup:
        fn()
    best, out = math.inf, None
    for _ in range(max(1, int(repeats))):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best, out
