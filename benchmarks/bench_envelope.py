"""Benchmark: the envelope f̂(ℓ) for B = 256, T = 1024, H = 128 and 128 lags (the experiment,
config A).

Three sides, timed in one process on the same inputs (float32 d, r; per-unit base rates Λ):

* ``library``: :func:`horizon_lib.estimate_envelope` (float64 prefix sums, running window
  products along the lag grid, O(B·T·H) memory).
* ``explicit windows``: for each lag, the window products ∏d and sums Σ r/d formed explicitly
  (``unfold`` + ``prod``/``sum``), O(B·T·H·ℓ) work per lag. Run on a subset of sequences and
  scaled linearly in B (its cost is exactly linear in B); both sides are compared on that subset.
* ``per-lag prefix loop``: the code release's scheme, one float64 slice of the prefix sums per
  lag with μ materialised per lag.

Usage: ``python benchmarks/bench_envelope.py [--batch 256] [--ref-batch 2] [--device cpu]``.
The library and explicit-window sides report the best of ``--repeats`` runs (the per-lag loop,
about a minute, runs once). Peak memory is the growth of the process's maximum resident set (CPU) or
``torch.cuda.max_memory_allocated`` (CUDA). Timings on a shared machine vary from run to run;
the ratios are what the README quotes.
"""

from __future__ import annotations

import argparse
import resource

import torch

from _timing import best_time
from horizon_lib import estimate_envelope


def peak_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def explicit_windows(d, r, lags, lam):
    """Per lag: explicit ∏ d and Σ r/d over every window (unfold), then mean_b,t Σ_q |Λ Γ|."""
    ratio = r / d
    out = []
    for ell in lags.tolist():
        prod = d.double().unfold(1, ell, 1).prod(-1)
        bracket = 1 + ratio.double().unfold(1, ell, 1).sum(-1)
        out.append((lam * prod * bracket).abs().mean((0, 1)).sum())
    return torch.stack(out)


def prefix_loop(d, r, lags, lam):
    """The release's scheme: float64 prefix sums, one slice pair and one μ array per lag."""
    B, T, H = d.shape
    S = torch.zeros(B, T + 1, H, dtype=torch.float64, device=d.device)
    R = torch.zeros_like(S)
    S[:, 1:] = torch.cumsum(torch.log(d.double()), 1)
    R[:, 1:] = torch.cumsum(r.double() / d.double(), 1)
    out = []
    for ell in lags.tolist():
        mu0 = torch.exp(S[:, ell:] - S[:, : T + 1 - ell])
        mu = mu0 + mu0 * (R[:, ell:] - R[:, : T + 1 - ell])
        out.append((lam * mu).abs().mean((0, 1)).sum())
    return torch.stack(out)


def timed(fn, device, repeats=1):
    """Best wall time of ``repeats`` calls and the last call's result."""
    return best_time(fn, repeats, sync=lambda: sync(device))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--time", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--ref-batch", type=int, default=2,
                    help="sequences for the explicit-window side")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-prefix-loop", action="store_true")
    ap.add_argument("--repeats", type=int, default=3,
                    help="best of this many runs for the library and explicit-window sides "
                         "(the prefix loop, about a minute, runs once)")
    args = ap.parse_args()
    device = torch.device(args.device)
    B, T, H = args.batch, args.time, args.hidden
    g = torch.Generator(device=device).manual_seed(0)
    # retention of trained-looking gates: s = σ(N(−2.5, 1)), mean ≈ 0.1; r of a few per cent
    d = 1 - torch.sigmoid(torch.randn(B, T, H, generator=g, device=device) - 2.5)
    r = 0.02 * torch.randn(B, T, H, generator=g, device=device)
    lam = 1e-3 * (0.5 + torch.rand(H, generator=g, device=device))
    lags = torch.linspace(4, 256, 128).long().to(device)
    rows = []

    estimate_envelope(d[:2], r[:2], lags, base_rate=lam)           # warm-up
    base = peak_mb(device)
    t_lib, env = timed(lambda: estimate_envelope(d, r, lags, base_rate=lam), device, args.repeats)
    rows.append(("library (estimate_envelope)", f"{B}×{T}×{H}", t_lib, t_lib,
                 peak_mb(device) - base))

    nb = min(args.ref_batch, B)
    sub = estimate_envelope(d[:nb], r[:nb], lags, base_rate=lam).f.double()
    base = peak_mb(device)
    t_exp, ref = timed(lambda: explicit_windows(d[:nb], r[:nb], lags, lam.double()), device,
                       args.repeats)
    agree = ((ref - sub).abs() / ref.abs()).max().item()
    rows.append((f"explicit windows (B = {nb}, ×{B // nb} scaled)", f"{nb}×{T}×{H}", t_exp,
                 t_exp * B / nb, peak_mb(device) - base))

    agree_loop = float("nan")
    if not args.skip_prefix_loop:
        base = peak_mb(device)
        t_loop, ref_loop = timed(lambda: prefix_loop(d, r, lags, lam.double()), device)
        agree_loop = ((ref_loop - env.f.double()).abs() / ref_loop.abs()).max().item()
        rows.append(("per-lag prefix loop (release scheme)", f"{B}×{T}×{H}", t_loop, t_loop,
                     peak_mb(device) - base))

    print(f"f̂(ℓ) for B = {B}, T = {T}, H = {H}, {lags.numel()} lags (4…256) on {device}; "
          f"{torch.get_num_threads()} threads")
    print(f"{'side':44s} {'size run':>14s} {'measured s':>11s} {'full-size s':>12s} "
          f"{'peak MB':>9s}")
    for name, size, t, full, mem in rows:
        print(f"{name:44s} {size:>14s} {t:11.2f} {full:12.2f} {mem:9.0f}")
    print(f"speed-up vs explicit windows: {rows[1][3] / t_lib:.0f}×"
          + (f"; vs per-lag prefix loop: {rows[2][3] / t_lib:.1f}×" if len(rows) > 2 else ""))
    print(f"max relative difference of f̂: vs explicit windows {agree:.1e}"
          + (f", vs prefix loop {agree_loop:.1e}" if len(rows) > 2 else ""))
    if device.type == "cuda":
        # the running-product step reads/writes ~48 bytes per (sequence, window, lag, unit)
        bytes_moved = 48 * B * T * H * lags.numel()
        print(f"achieved bandwidth ≈ {bytes_moved / t_lib / 1e9:.0f} GB/s (48 B per entry and lag)")


if __name__ == "__main__":
    main()
