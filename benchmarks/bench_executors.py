"""Smoke experiment grid: a 2-worker Dask LocalCluster against the local executor, one process.

    python benchmarks/bench_executors.py [--repeats 3]

Both sides run the same units into fresh result folders with one torch thread per task; the
Dask time includes starting and stopping the LocalCluster (that is what a user waits for).
On this 2-core machine the point is correctness and the path to many machines: expect parity
at best, since the smoke units last about a second each.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from horizon_lib.experiment_config import profile
from horizon_lib.experiment_grid import run_grid


def timed(executor: str, jobs: int, scheduler: str | None = None) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = run_grid(profile("smoke"), out, executor=executor, jobs=jobs, device="cpu",
                          threads=1, progress=False, scheduler=scheduler)
        elapsed = time.perf_counter() - start
        assert not report.failures and not report.skipped
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    timed("local", 1)  # warm imports and caches outside the timing
    local = min(timed("local", 1) for _ in range(args.repeats))
    dask = min(timed("dask", 2) for _ in range(args.repeats))
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        timed("dask", 2, cluster.scheduler_address)  # workers import torch once
        warm = min(timed("dask", 2, cluster.scheduler_address) for _ in range(args.repeats))
    print("| executor | smoke grid (s, best of %d) | ratio to local |" % args.repeats)
    print("|---|---|---|")
    print(f"| local, in-process | {local:.2f} | 1.00 |")
    print(f"| dask LocalCluster, 2 workers (startup included) | {dask:.2f} | {local / dask:.2f} |")
    print(f"| dask, 2 running workers (--scheduler) | {warm:.2f} | {local / warm:.2f} |")


if __name__ == "__main__":
    main()
