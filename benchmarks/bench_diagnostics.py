"""Diagnostics of one trained model at configuration-A size, and the share of each stage.

    python benchmarks/bench_diagnostics.py [--B 32] [--T 1024] [--H 128] [--lags 128] [--K 8]

Configuration A (the experiment) diagnoses 8000 sequences of T = 1024 steps with H = 128 units
on 128 lags. On a 2-core CPU that takes far longer than a benchmark should, so this script runs
``--B`` sequences at full T, H, lag grid and K, and extrapolates the batch-proportional stages
(forward, JVP, transport ψ, envelope f̂, tail index: linear in the number of sequences) to 8000; the
Monte-Carlo check does not depend on B. Uses the library's DiagGate when ``horizon_lib.cells``
exists, else the tests' stand-in gated module (reported). Needs the tail-index and horizon
modules.

A second table times the two largest stages against their straightforward forms on the same
``--B`` sequences, in this process: ψ (``matched_statistic``) against one exponential of the
prefix sums and one matrix-vector product per lag, and the JVP of the transported state alone
(``model(x, return_state=True)``) against the JVP of the whole diagnostic dict.
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
from horizon_lib.diagnostics import diagnose_model  # noqa: E402
from horizon_lib.experiment_config import DiagnosticsConfig, _linear_grid, log_grid  # noqa: E402
from horizon_lib.matched import matched_statistic, random_unit_directions, state_jvp  # noqa: E402
from horizon_lib.training import TrainConfig  # noqa: E402

PER_SEQUENCE = ("forward", "jvp", "transport", "envelope", "tail_index")


def model_for(D, H):
    try:
        from horizon_lib.sequence_model import build_model

        return build_model("diaggate", D, H, 0.05, torch.Generator().manual_seed(0)), "DiagGate"
    except ImportError:
        from _standin import StandInGated

        return StandInGated(D, H, generator=torch.Generator().manual_seed(0)), "stand-in"


def psi_per_lag(d, r, delta, v, lags):
    """ψ̄ (lag, direction, batch) the straightforward way: for each lag Γ = exp(ΔΣ log d)(1 + ΔΣ r/d)
    from float64 prefix sums, then one batched matrix-vector product with v."""
    f64 = torch.float64
    zero = torch.zeros_like(d[:, :1], dtype=f64)
    d64 = d.to(f64)
    log_d = torch.cat([zero, torch.cumsum(torch.log(d64), 1)], 1)
    ratio = torch.cat([zero, torch.cumsum(r.to(f64) / d64, 1)], 1)
    n_b, t_len, n_h = d.shape
    vb = v.transpose(0, 1).contiguous()
    out = []
    for ell in lags:
        hi, lo = slice(ell + 1, t_len + 1), slice(1, t_len - ell + 1)
        gamma = torch.exp(log_d[:, hi] - log_d[:, lo]) * (1.0 + ratio[:, hi] - ratio[:, lo])
        a = (gamma * delta[:, ell:].to(f64)).to(v.dtype)
        n_t = t_len - ell
        prod = torch.bmm(vb[:, :, :n_t].reshape(n_b, v.shape[0], -1), a.reshape(n_b, -1, 1))
        out.append(prod[..., 0].T.to(f64) / n_t)
    return torch.stack(out)


def against_references(model, x, y, lags, k):
    """Rows (stage, library s, reference s, ratio, max relative difference)."""
    from torch.func import functional_call

    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    w = random_unit_directions(params, k, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        terms = model(x, return_terms=True)
        delta = (terms["yhat"] - y) @ terms["readout"]

    def state(kwargs):
        return lambda p, xb: functional_call(model, (p, buffers), (xb,), kwargs)

    t_v, v = best_time(lambda: state_jvp(state({"return_state": True}), params, w, x))
    t_v_ref, v_ref = best_time(lambda: state_jvp(
        lambda p, xb: state({"return_terms": True})(p, xb)["state"], params, w, x))
    t_psi, psi = best_time(lambda: matched_statistic(terms["d"], terms["r"], delta, v, lags),
                           2, warmup=True)
    t_psi_ref, psi_ref = best_time(lambda: psi_per_lag(terms["d"], terms["r"], delta, v, lags),
                                   2, warmup=True)

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    return [("ψ for every lag", t_psi, t_psi_ref, rel(psi, psi_ref)),
            ("JVP of the state (K directions)", t_v, t_v_ref, rel(v, v_ref))]


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
    # warm-up on four sequences: forward-mode AD loads its decompositions on first use (about a
    # second, once per process), which must not be extrapolated ×(8000 / B)
    diagnose_model(model, x[:4], y[:4], replace(cfg, batch=4, mc_replicates=1), train=TrainConfig())
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
    if hasattr(model, "returns_state"):
        head = f"{'library s':>11}{'reference s':>13}{'ratio':>8}{'max rel diff':>14}"
        print(f"\n{'stage':<34}{head}")
        for what, ours, ref, diff in against_references(model, x, y, list(cfg.lags), args.K):
            print(f"{what:<34}{ours:>11.2f}{ref:>13.2f}{ref / ours:>7.1f}×{diff:>14.1e}")


if __name__ == "__main__":
    main()
