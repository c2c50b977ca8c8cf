"""α-stable sampling and tail-index estimation against their reference implementations.

Rows (each ratio from one process timing both sides, best of ``--repeats`` runs):

1. ``sample_stable`` vs ``scipy.stats.levy_stable.rvs``, 10⁶ float64 draws (symmetric and skewed).
2. ``sample_symmetric_stable`` vs torch's bare RNG, 10⁷ float32 draws: the uniform + exponential
   pair the textbook CMS sampler needs (``torch.rand`` + ``Tensor.exponential_``), and the two
   uniforms this sampler actually draws (``torch.rand`` of 2n).
3. Tail index of 128 series × 10⁴ samples: the batched ECF and McCulloch estimators vs a
   per-series numpy loop of the same estimators (their agreement is printed), and the full
   combined rule with 200 bootstrap resamples.
4. ``scipy.stats.levy_stable.fit`` on one series of 10³, time-boxed: its Nelder–Mead optimiser is
   capped at ``--fit-evals`` likelihood evaluations (a real fit needs hundreds), so the row is a
   lower bound on what maximum likelihood costs.
5. With ``--device cuda``: the SαS sampler (10⁸ float32) and both estimators on 1024 × 10⁵
   float32 samples on the accelerator, against the same batched code on the host's CPU, with the
   achieved bandwidth against ``--peak-gbs``.

Usage: ``python benchmarks/bench_stable.py [--threads 1] [--device cuda]`` (about two minutes on
2 cores).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import scipy.optimize
import torch
from scipy import stats

from _timing import best_time
from horizon_lib.stable import sample_stable, sample_symmetric_stable
from horizon_lib.tail_index import ECF_POINTS, ECF_U_RANGE, ecf_tail_index
from horizon_lib.tail_index_bootstrap import estimate_tail_index
from horizon_lib.tail_index_mcculloch import mcculloch_table, mcculloch_tail_index


def best(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call (allocator, page faults)."""
    return best_time(fn, repeats, warmup=True)[0]


# ------------------------------------------------------------------ per-series numpy references


def numpy_quantiles(x: np.ndarray, probs) -> np.ndarray:
    """McCulloch's sample quantiles (position np + ½ of the sorted sample), one series."""
    xs = np.sort(x)
    n = xs.size
    out = []
    for p in probs:
        h = n * p + 0.5
        k = min(max(math.floor(h), 1), n - 1)
        t = min(max(h - k, 0.0), 1.0)
        out.append(xs[k - 1] + t * (xs[k] - xs[k - 1]))
    return np.array(out)


def numpy_ecf(x: np.ndarray) -> float:
    """The library's ECF estimator written straightforwardly for one series (same grid, weights)."""
    q25, q75 = numpy_quantiles(x, [0.25, 0.75])
    u = np.linspace(*ECF_U_RANGE, ECF_POINTS) / ((q75 - q25) / 1.349)
    xc = x - 0.5 * (q25 + q75)
    ux = np.outer(u, xc)
    p = np.cos(ux).mean(1) ** 2 + np.sin(ux).mean(1) ** 2
    keep = (p > 0.01) & (p < 0.95)
    if keep.sum() < 5:
        keep = (p > 1e-4) & (p < 0.999)
    y, lx = np.log(-np.log(np.clip(p, 1e-30, 1 - 1e-7))), np.log(u)
    slope, intercept = np.polyfit(lx[keep], y[keep], 1)
    a0 = min(max(slope, 0.1), 2.0)
    logp = -np.exp(intercept + a0 * lx)
    pf = np.clip(np.exp(logp), 1e-30, 1 - 1e-7)
    var_p = 4 * pf / x.size * ((1 + pf ** (2 ** (a0 - 1))) / 2 - pf)
    w = 1.0 / (np.maximum(var_p, 1e-30) / (pf * logp) ** 2)
    slope = np.polyfit(lx[keep], y[keep], 1, w=np.sqrt(w[keep]))[0]
    return float(min(max(slope, 0.1), 2.0))


def numpy_mcculloch(x: np.ndarray, nu_asc: np.ndarray, alpha_desc: np.ndarray) -> float:
    q05, q25, q75, q95 = numpy_quantiles(x, [0.05, 0.25, 0.75, 0.95])
    return float(np.interp((q95 - q05) / (q75 - q25), nu_asc, alpha_desc))


# ------------------------------------------------------------------ the rows


def bench_sampler(repeats: int) -> list[tuple]:
    rows = []
    n = 10**6
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    for beta in (0.0, 0.5):
        ours = best(lambda: sample_stable(1.5, beta, n, generator=g, dtype=torch.float64), repeats)
        ref = best(lambda: stats.levy_stable.rvs(1.5, beta, size=n, random_state=rng), repeats)
        rows.append((f"sampler vs scipy levy_stable.rvs, 10⁶ float64, α = 1.5, β = {beta:g}",
                     f"{n / ours / 1e6:.1f} M/s", f"{n / ref / 1e6:.1f} M/s", ref / ours))
    n = 10**7
    sampler = best(lambda: sample_symmetric_stable(1.5, n, generator=g), repeats)
    pair = best(lambda: (torch.rand(n, generator=g),
                         torch.empty(n).exponential_(generator=g)), repeats)
    two = best(lambda: torch.rand(2 * n, generator=g), repeats)
    rows.append(("SαS sampler vs bare RNG (rand + exponential_), 10⁷ float32",
                 f"{n / sampler / 1e6:.1f} M/s", f"{n / pair / 1e6:.1f} M/s", pair / sampler))
    rows.append(("SαS sampler vs the 2n uniforms it draws (torch.rand), 10⁷ float32",
                 f"{n / sampler / 1e6:.1f} M/s", f"{n / two / 1e6:.1f} M/s", two / sampler))
    return rows


def bench_tail_index(repeats: int) -> list[tuple]:
    g = torch.Generator().manual_seed(1)
    x = sample_symmetric_stable(torch.linspace(1.1, 2.0, 128).view(128, 1), (128, 10**4),
                                generator=g, dtype=torch.float64)
    xn = x.numpy()
    tab = mcculloch_table()
    nu_asc, alpha_desc = tab["nu"].flip(0).numpy(), tab["alpha"].flip(0).numpy()
    rows = []
    ecf_b = best(lambda: ecf_tail_index(x), repeats)
    ecf_loop = best(lambda: [numpy_ecf(s) for s in xn], max(1, repeats - 1))
    diff = np.abs(ecf_tail_index(x).alpha.numpy() - np.array([numpy_ecf(s) for s in xn])).max()
    rows.append((f"ECF α̂, 128 × 10⁴, batched vs per-series numpy loop (max |Δα̂| {diff:.1e})",
                 f"{ecf_b:.3f} s", f"{ecf_loop:.3f} s", ecf_loop / ecf_b))
    x32 = x.float()
    ecf_32 = best(lambda: ecf_tail_index(x32), repeats)
    rows.append(("ECF α̂, same data as float32 (a matched statistic's dtype) vs the float64 loop",
                 f"{ecf_32:.3f} s", f"{ecf_loop:.3f} s", ecf_loop / ecf_32))
    mcc_b = best(lambda: mcculloch_tail_index(x), repeats)
    mcc_loop = best(lambda: [numpy_mcculloch(s, nu_asc, alpha_desc) for s in xn], repeats)
    diff = np.abs(mcculloch_tail_index(x).alpha.numpy()
                  - np.array([numpy_mcculloch(s, nu_asc, alpha_desc) for s in xn])).max()
    rows.append((f"McCulloch α̂, 128 × 10⁴, batched vs per-series numpy loop (max |Δα̂| {diff:.1e})",
                 f"{mcc_b:.3f} s", f"{mcc_loop:.3f} s", mcc_loop / mcc_b))
    comb = best(lambda: estimate_tail_index(x32, n_boot=200, generator=g), repeats)
    rows.append(("combined rule + McCulloch bootstrap (200), 128 × 10⁴ float32", f"{comb:.3f} s",
                 "—", float("nan")))
    return rows


def bench_scipy_fit(max_evals: int) -> list[tuple]:
    x = stats.levy_stable.rvs(1.5, 0.0, size=1000, random_state=np.random.default_rng(2))
    evals = {"n": 0}

    def capped(func, x0, args=(), disp=0):
        def counted(p, *a):
            evals["n"] += 1
            return func(p, *a)
        return scipy.optimize.fmin(counted, x0, args=args, disp=disp, maxfun=max_evals)

    t0 = time.perf_counter()
    stats.levy_stable.fit(x, optimizer=capped)
    fit_t = time.perf_counter() - t0
    ours = best(lambda: ecf_tail_index(torch.from_numpy(x)), 3)
    return [(f"scipy levy_stable.fit, one series of 10³, capped at {evals['n']} likelihood "
             "evaluations (lower bound) vs batched ECF on the same series",
             f"{ours * 1e3:.1f} ms", f"≥ {fit_t:.0f} s", fit_t / ours)]


def bench_accelerator(device: torch.device, repeats: int, peak_gbs: float) -> list[tuple]:
    """The sampler and the batched estimators on an accelerator, against the same batched code on
    this machine's CPU, with the achieved bandwidth (bytes the kernel must move / time)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(fn):
        return best_time(fn, repeats, warmup=True, sync=sync)[0]

    def timed_cpu(fn):
        return best_time(fn, max(1, repeats // 2), warmup=True)[0]

    rows = []
    g = torch.Generator(device=device).manual_seed(0)
    n = 10**8
    t = timed(lambda: sample_symmetric_stable(1.5, n, generator=g, device=device))
    # it writes n float32 values and draws 2n uniforms (counted as 4-byte writes too)
    gbs = 12 * n / t / 1e9
    rows.append((f"SαS sampler, 10⁸ float32 on {device} ({gbs:.0f} GB/s, {gbs / peak_gbs:.0%} of "
                 f"{peak_gbs:.0f})", f"{n / t / 1e9:.2f} G/s", "—", float("nan")))
    gc = torch.Generator().manual_seed(1)
    x = sample_symmetric_stable(torch.linspace(1.1, 2.0, 1024).view(1024, 1), (1024, 10**5),
                                generator=gc)
    xd = x.to(device)
    for name, fn in (("ECF", ecf_tail_index), ("McCulloch", mcculloch_tail_index)):
        t = timed(lambda fn=fn: fn(xd))
        t_cpu = timed_cpu(lambda fn=fn: fn(x))
        gbs = 4 * x.numel() / t / 1e9             # the input, read at least once
        rows.append((f"{name} α̂, 1024 × 10⁵ float32 on {device} vs this machine's CPU "
                     f"({gbs:.0f} GB/s of input)", f"{t:.3f} s", f"{t_cpu:.3f} s", t_cpu / t))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fit-evals", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu",
                        help="cpu: the rows against scipy and numpy; cuda: the accelerator rows")
    parser.add_argument("--peak-gbs", type=float, default=4800.0,
                        help="the accelerator's memory bandwidth in GB/s (H200: 4800)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import scipy

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"scipy {scipy.__version__}; "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    device = torch.device(args.device)
    if device.type == "cpu":
        rows = bench_sampler(args.repeats) + bench_tail_index(args.repeats)
        rows += bench_scipy_fit(args.fit_evals)
    else:
        rows = bench_accelerator(device, args.repeats, args.peak_gbs)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'ours':>10}  {'reference':>10}  {'ratio':>8}")
    for what, ours, ref, ratio in rows:
        r = "—" if math.isnan(ratio) else f"{ratio:.2f}×"
        print(f"{what:<{width}}  {ours:>10}  {ref:>10}  {r:>8}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
