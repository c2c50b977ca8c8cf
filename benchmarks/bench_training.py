"""Training throughput: 5 seeds as one batched model against 5 sequential ``torch.optim`` runs.

    python benchmarks/bench_training.py [--T 256] [--H 32] [--n 256] [--threads 1]

For each cell, both sides train the same 5 models (same initial weights, same batch orders)
for one epoch in this process; the table gives sequence-steps per second (sequences × time
steps × models / wall time) and the ratio. Goal of issue 6: ≥ 3× on the CPU.
Uses the library's cells when ``horizon_lib.cells`` exists, else the stand-in gated module of
the tests (reported as such).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from horizon_lib.training import TrainConfig, train_ensemble, train_reference  # noqa: E402


def builders():
    try:
        from horizon_lib.experiment import CELLS, _default_builders

        return _default_builders(), list(CELLS)
    except RuntimeError:
        from _standin import standin_builder

        return {"stand-in": standin_builder}, ["stand-in"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, default=256)
    ap.add_argument("--D", type=int, default=8)
    ap.add_argument("--H", type=int, default=32)
    ap.add_argument("--n", type=int, default=256, help="training sequences (batch 64)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.T, args.D, generator=g)
    y = torch.randn(args.n, args.T, 1, generator=g)
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, epochs=1, batch_size=64)
    seeds = list(range(args.seeds))
    build, cells = builders()
    print(f"T={args.T} D={args.D} H={args.H} sequences={args.n} batch=64 seeds={args.seeds} "
          f"threads={args.threads}")
    print(f"{'cell':<12}{'batched seq-steps/s':>22}{'sequential seq-steps/s':>26}{'ratio':>8}")
    for cell in cells:
        models = [build[cell](args.D, args.H, 0.05, torch.Generator().manual_seed(s)) for s in seeds]
        t0 = time.perf_counter()
        train_ensemble(models, seeds, x, y, x[:64], y[:64], cfg, progress=False)
        t1 = time.perf_counter()
        for m, s in zip(models, seeds):
            train_reference(m, s, x, y, cfg)
        t2 = time.perf_counter()
        work = args.seeds * args.n * args.T
        print(f"{cell:<12}{work / (t1 - t0):>22.0f}{work / (t2 - t1):>26.0f}"
              f"{(t2 - t1) / (t1 - t0):>7.1f}×")


if __name__ == "__main__":
    main()
