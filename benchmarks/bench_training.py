"""Training throughput: 5 seeds as one batched model against 5 sequential ``torch.optim`` runs.

    python benchmarks/bench_training.py [--T 256] [--H 32] [--n 256] [--epochs 2] [--threads 1]
    python benchmarks/bench_training.py --ops      # the per-operation view (below)
    python benchmarks/bench_training.py --step     # other ways to write the stacked step (below)

For each cell, both sides train the same 5 models (same initial weights, same batch orders)
in this process, each with one validation pass per epoch (the ensemble needs it for its
best-validation checkpoint; the sequential side makes the same pass); best of ``--repeats``
timed runs after a warm-up run. The table gives sequence-steps per second (sequences × time
steps × models × epochs / wall time) and the ratio. Goal of issue 6: ≥ 3× on the CPU.
``--ops`` times, instead, the bare operations of one recurrent step (no autograd) on one model's
(batch, hidden) tensors and on the ensemble's (models, batch, hidden): M·t₁/t_M is what stacking
gains on that operation alone, where it pays its dispatch once instead of M times.
``--step`` times one training pass (forward and backward over T steps, no optimizer) of
DiagGate's recurrence written directly on stacked tensors, without ``vmap`` (the model axis
broadcasts through every operation), in eager mode and under ``torch.compile`` (which fuses the
step's elementwise operations and LayerNorm), against the same code on one model's tensors run
M times: the alternatives weighed before keeping ``vmap`` over the library's cells.
Uses the library's cells when ``horizon_lib.cells`` exists, else the stand-in gated module of
the tests (reported as such).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _timing import best_time  # noqa: E402
from horizon_lib.training import TrainConfig, train_ensemble, train_reference  # noqa: E402


def builders():
    try:
        from horizon_lib.experiment import _default_builders
        from horizon_lib.experiment_config import CELLS

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
    ap.add_argument("--step", action="store_true",
                    help="DiagGate's step on stacked tensors, eager and compiled, instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.ops:
        return per_operation(args)
    if args.step:
        return stacked_step(args)
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
        models = [build[cell](args.D, args.H, 0.05, torch.Generator().manual_seed(s))
                  for s in seeds]

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


def stacked_step(args, batch: int = 64) -> None:
    """One forward + backward pass of DiagGate's recurrence (cells.py's formulas, LayerNorm on,
    readout and MSE) on M stacked models against M passes of one model, eager and compiled."""
    import torch.nn.functional as F

    M, H, D, T = args.seeds, args.H, args.D, args.T

    def step(h, xa, xs, W_h, U_s, ln_w, ln_b):   # h_t = h + s (tanh(LN(a)) − h), s = σ(·)
        g = torch.tanh(F.layer_norm(xa + h @ W_h.mT, (H,)) * ln_w + ln_b)
        s = torch.sigmoid(xs + h @ U_s.mT)
        return h + s * (g - h)

    def loss(p, x, y, step_fn):                   # x (..., batch, T, D), weights (..., rows, cols)
        xp = x.flatten(-3, -2) @ p["W"].mT + p["b"].unsqueeze(-2)
        xa, xs = xp.unflatten(-2, x.shape[-3:-1]).split(H, -1)
        h, hs = x.new_zeros(*x.shape[:-2], H), []
        ln_w, ln_b = p["ln_w"].unsqueeze(-2), p["ln_b"].unsqueeze(-2)
        for xa_t, xs_t in zip(xa.unbind(-2), xs.unbind(-2)):
            h = step_fn(h, xa_t, xs_t, p["W_h"], p["U_s"], ln_w, ln_b)
            hs.append(h)
        yhat = torch.stack(hs, -2) @ p["W_out"].mT.unsqueeze(-3) + p["b_out"][..., None, None, :]
        return ((yhat - y) ** 2).mean((-3, -2, -1)).sum()

    g = torch.Generator().manual_seed(0)
    shapes = {"W": (2 * H, D), "b": (2 * H,), "W_h": (H, H), "U_s": (H, H), "ln_w": (H,),
              "ln_b": (H,), "W_out": (1, H), "b_out": (1,)}
    stacked = {k: (0.2 * torch.randn(M, *s, generator=g)).requires_grad_()
               for k, s in shapes.items()}
    one = {k: v[0].detach().clone().requires_grad_() for k, v in stacked.items()}
    x, y = torch.randn(M, batch, T, D, generator=g), torch.randn(M, batch, T, 1, generator=g)

    def run(p, xs, ys, step_fn):
        return lambda: torch.autograd.grad(loss(p, xs, ys, step_fn), list(p.values()))

    print(f"DiagGate forward + backward, T = {T}, batch {batch}, H = {H}, M = {M} models, "
          f"threads {args.threads}; best of {args.repeats} after a first call")
    print(f"{'step':<10}{'first call (s)':>16}{f'{M} stacked (ms)':>18}{f'{M} × one (ms)':>16}"
          f"{'ratio':>8}")
    for name, step_fn in (("eager", step), ("compiled", torch.compile(step, dynamic=False))):
        t0 = time.perf_counter()
        run(stacked, x, y, step_fn)()
        run(one, x[0], y[0], step_fn)()
        first = time.perf_counter() - t0
        t_m = best_time(run(stacked, x, y, step_fn), args.repeats)[0]
        t_1 = best_time(lambda: [run(one, x[m], y[m], step_fn)() for m in range(M)],
                        args.repeats)[0]
        print(f"{name:<10}{first:>16.1f}{t_m * 1e3:>18.0f}{t_1 * 1e3:>16.0f}{t_1 / t_m:>7.2f}×")


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
