"""Training throughput: 5 seeds as one batched model against 5 sequential ``torch.optim`` runs.

    python benchmarks/bench_training.py [--T 256] [--H 32] [--n 256] [--epochs 2] [--threads 1]
    python benchmarks/bench_training.py --ops      # the per-operation view (below)

For each cell, both sides train the same 5 models (same initial weights, same batch orders)
in this process, each with one validation pass per epoch (the ensemble needs it for its
best-validation checkpoint; the sequential side makes the same pass); best of ``--repeats``
timed runs after a warm-up run. The table gives sequence-steps per second (sequences × time
steps × models × epochs / wall time) and the ratio. Goal of issue 6: ≥ 3× on the CPU.
``--ops`` times, instead, the bare operations of one recurrent step (no autograd) on one model's
(batch, hidden) tensors and on the ensemble's (models, batch, hidden): M·t₁/t_M is what stacking
gains on that operation alone, where it pays its dispatch once instead of M times.
Uses the library's cells when ``horizon_lib.cells`` exists, else the stand-in gated module of
the tests (reported as such).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _timing import best_time  # noqa: E402
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
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ops", action="store_true", help="per-operation timings instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.ops:
        return per_operation(args)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.T, args.D, generator=g)
    y = torch.randn(args.n, args.T, 1, generator=g)
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, epochs=args.epochs, batch_size=64)
    seeds = list(range(args.seeds))
    build, cells = builders()
    x_val, y_val = x[:64], y[:64]
    print(f"T={args.T} D={args.D} H={args.H} sequences={args.n} batch=64 seeds={args.seeds} "
          f"epochs={args.epochs} threads={args.threads} (best of {args.repeats})")
    print(f"{'cell':<12}{'batched seq-steps/s':>22}{'sequential seq-steps/s':>26}{'ratio':>8}")
    for cell in cells:
        models = [build[cell](args.D, args.H, 0.05, torch.Generator().manual_seed(s)) for s in seeds]

        def batched():
            train_ensemble(models, seeds, x, y, x_val, y_val, cfg, progress=False)

        def sequential():
            # what the experiment would do without the ensemble: each model alone, with the same
            # per-epoch validation pass the ensemble makes for its best-validation checkpoint
            one_epoch = replace(cfg, epochs=1)
            for m, s in zip(models, seeds):
                for _ in range(cfg.epochs):
                    m = train_reference(m, s, x, y, one_epoch)
                    with torch.no_grad():
                        torch.mean((m(x_val) - y_val) ** 2)

        t_b, t_s = best(batched, args.repeats), best(sequential, args.repeats)
        work = args.seeds * args.n * args.T * args.epochs
        print(f"{cell:<12}{work / t_b:>22.0f}{work / t_s:>26.0f}{t_s / t_b:>7.1f}×")


def per_operation(args, batch: int = 64, calls: int = 2000) -> None:
    """Bare step operations on one model's tensors against the M-model stack (no autograd)."""
    M, H = args.seeds, args.H
    g = torch.Generator().manual_seed(0)
    one = {k: torch.randn(*shape, generator=g) for k, shape in
           (("h", (batch, H)), ("h2", (batch, H)), ("w", (H, H)))}
    many = {k: torch.randn(M, *v.shape, generator=g) for k, v in one.items()}
    ln = lambda a: torch.nn.functional.layer_norm(a, (H,))  # noqa: E731
    ops = {  # name: (operands, one model's form, the stack's form)
        "matmul h Wᵀ (mm / bmm)": (("h", "w"), lambda h, w: h @ w.T,
                                   lambda h, w: torch.bmm(h, w.mT)),
        "add": (("h", "h2"), torch.add, torch.add),
        "mul": (("h", "h2"), torch.mul, torch.mul),
        "tanh": (("h",), torch.tanh, torch.tanh),
        "sigmoid": (("h",), torch.sigmoid, torch.sigmoid),
        "layer_norm": (("h",), ln, ln),
    }
    print(f"bare operations, batch {batch}, H = {H}, M = {M} models, threads {args.threads}; "
          f"mean of {calls} calls, best of 3")
    print(f"{'operation':<26}{'one model (µs)':>16}{f'{M} stacked (µs)':>18}{'M·t₁/t_M':>11}")
    times = {}
    for name, (operands, f1, fm) in ops.items():
        a1, am = [one[k] for k in operands], [many[k] for k in operands]
        times[name] = t1, tm = per_call(lambda: f1(*a1), calls), per_call(lambda: fm(*am), calls)
        print(f"{name:<26}{t1 * 1e6:>16.1f}{tm * 1e6:>18.1f}{M * t1 / tm:>10.2f}×")
    # the forward step of DiagGate (cells.py): h Wₕᵀ and h Uₛᵀ, three additions (the candidate's
    # and the gate's pre-activations, h + s(g − h)), the subtraction g − h (timed as an addition),
    # one product, LayerNorm, tanh and the sigmoid gate
    step = {"matmul h Wᵀ (mm / bmm)": 2, "add": 4, "mul": 1, "layer_norm": 1, "tanh": 1,
            "sigmoid": 1}
    t1, tm = (sum(k * times[n][i] for n, k in step.items()) for i in (0, 1))
    print(f"{'forward DiagGate step':<26}{t1 * 1e6:>16.1f}{tm * 1e6:>18.1f}{M * t1 / tm:>10.2f}×")


def per_call(fn, calls: int) -> float:
    """Mean seconds per call over ``calls`` calls, after 50 untimed ones; best of three such."""
    def run():
        for _ in range(calls):
            fn()
    for _ in range(50):
        fn()
    return best_time(run, 3)[0] / calls


def best(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call (first-call costs of vmap,
    autograd and the allocator are not part of a long training run)."""
    return best_time(fn, repeats, warmup=True)[0]


if __name__ == "__main__":
    main()
