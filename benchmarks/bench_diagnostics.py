"""Diagnostics of one trained model at configuration-A size, and the share of each stage.

    python benchmarks/bench_diagnostics.py [--B 32] [--T 1024] [--H 128] [--lags 128] [--K 8]

Configuration A (THEORY.md §6) diagnoses 8000 sequences of T = 1024 steps with H = 128 units
on 128 lags. On a 2-core CPU that takes far longer than a benchmark should, so this script runs
``--B`` sequences at full T, H, lag grid and K, and extrapolates the batch-proportional stages
(forward, JVP, transport ψ, envelope f̂, tail index: linear in the number of sequences) to 8000; the
Monte-Carlo check does not depend on B. Uses the library's DiagGate when ``horizon_lib.cells``
exists, else the tests' stand-in gated module (reported). Needs the tail-index and horizon
modules.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from horizon_lib.diagnostics import diagnose_model  # noqa: E402
from horizon_lib.experiment import DiagnosticsConfig, _linear_grid, log_grid  # noqa: E402
from horizon_lib.training import TrainConfig  # noqa: E402

PER_SEQUENCE = ("forward", "jvp", "transport", "envelope", "tail_index")


def model_for(D, H):
    try:
        from horizon_lib.sequence_model import build_model

        return build_model("diaggate", D, H, 0.05, torch.Generator().manual_seed(0)), "DiagGate"
    except ImportError:
        from _standin import StandInGated

        return StandInGated(D, H, generator=torch.Generator().manual_seed(0)), "stand-in"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--T", type=int, default=1024)
    ap.add_argument("--D", type=int, default=16)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--lags", type=int, default=128)
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--full-B", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, name = model_for(args.D, args.H)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.B, args.T, args.D, generator=g)
    y = torch.randn(args.B, args.T, 1, generator=g)
    cfg = DiagnosticsConfig(lags=_linear_grid(4, min(256, args.T - 1), args.lags),
                            n_grid=log_grid(25, 12800, 17), directions=args.K, batch=args.B,
                            mc_replicates=200)
    timings: dict = {}
    t0 = time.perf_counter()
    diagnose_model(model, x, y, cfg, train=TrainConfig(), timings=timings)
    total = time.perf_counter() - t0
    scale = args.full_B / args.B
    full = {k: v * scale if k in PER_SEQUENCE else v for k, v in timings.items()}
    full_total = sum(full.values())
    print(f"model {name}: B={args.B} (extrapolated to {args.full_B}) T={args.T} H={args.H} "
          f"lags={len(cfg.lags)} K={args.K} threads={args.threads}")
    print(f"{'stage':<14}{'measured s':>12}{'at B=%d s' % args.full_B:>16}{'share':>8}")
    for k in ("forward", "jvp", "transport", "envelope", "tail_index", "window", "monte_carlo"):
        if k in timings:
            print(f"{k:<14}{timings[k]:>12.2f}{full[k]:>16.0f}{full[k] / full_total:>8.0%}")
    print(f"{'total':<14}{total:>12.2f}{full_total:>16.0f}")


if __name__ == "__main__":
    main()
