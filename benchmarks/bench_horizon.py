"""H_N for 10⁴ (N, α) pairs: one vectorised call against a Python loop of scalar scipy root finds.

Two envelopes, both decreasing:

* a tabulated 10³-lag envelope (a 128-unit Pareto mixture), inverted by
  ``window_from_envelope`` (searchsorted + exact log-linear interpolation) against a loop of
  ``scipy.optimize.brentq`` on the same log-linear interpolant (``numpy.interp``);
* a callable envelope (the exact Pareto-spectrum envelope), inverted by ``learnability_window``
  (``scipy.optimize.elementwise.find_root`` on all pairs at once) against a loop of ``brentq``.

Goal (issue 5): the tabulated case ≤ 0.1 s on CPU and ≥ 20× faster than the loop. Both sides
are checked to agree (the last column). Timings: best of 5 (vectorised) or of 1 (loop).
Run: ``python benchmarks/bench_horizon.py`` from the repository root.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import optimize, special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the library beside this script
import horizon_lib as hl  # noqa: E402
from _timing import best_time  # noqa: E402

N_PAIRS, N_LAGS, C, BETA = 10_000, 1_000, 0.02, 0.8


def _best_of(fn, repeats: int) -> tuple[float, object]:
    return best_time(fn, repeats)

def pareto_envelope(lag):
    return special.gamma(BETA + 1) * lag ** (-BETA) * special.gammainc(BETA, lag)


def main() -> None:
    # One intra-op thread: these tensors are small (10⁴ elements), and on a shared 2-core machine
    # torch's thread pool spins for longer than the work takes (10-100× slower under load).
    # The Python loop it is compared with is single-threaded too.
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = torch.as_tensor(np.exp(rng.uniform(0, math.log(1e5), N_PAIRS)))
    alpha = torch.as_tensor(rng.uniform(1.1, 2.0, N_PAIRS))
    log_theta = (math.log(C) - torch.log(n) / hl.kappa(alpha)).numpy()

    lags = torch.arange(1, N_LAGS + 1, dtype=torch.float64)
    f = hl.mixture_envelope(lags, hl.stratified_timescales(hl.ParetoSpectrum(BETA), 128))
    x, log_f = lags.numpy(), torch.log(f).numpy()

    t_vec, h_vec = _best_of(lambda: hl.window_from_envelope(lags, f, n, alpha, C=C), 5)

    def loop_table():
        out = np.empty(N_PAIRS)
        for i, lt in enumerate(log_theta):
            g = lambda lag, lt=lt: np.interp(lag, x, log_f) - lt  # noqa: E731
            out[i] = 0.0 if g(x[0]) < 0 else (math.inf if g(x[-1]) >= 0 else
                                                optimize.brentq(g, x[0], x[-1], xtol=1e-12))
        return out

    t_loop, h_loop = _best_of(loop_table, 1)
    h_vec = h_vec.numpy()
    inside = np.isfinite(h_loop) & (h_loop > 0)
    gap_tab = float(np.max(np.abs(h_vec[inside] - h_loop[inside]) / h_loop[inside]))

    pairs = (n.numpy(), alpha.numpy())
    t_cvec, h_cvec = _best_of(lambda: hl.learnability_window(pareto_envelope, *pairs, C=C,
                                                             lag_max=1e12), 3)

    def loop_callable():
        out = np.empty(N_PAIRS)
        for i, lt in enumerate(log_theta):
            g = lambda lag, lt=lt: math.log(pareto_envelope(lag)) - lt  # noqa: E731
            out[i] = 0.0 if g(1.0) < 0 else optimize.brentq(g, 1.0, 1e12, xtol=1e-12,
                                                            rtol=4 * np.finfo(float).eps)
        return out

    t_cloop, h_cloop = _best_of(loop_callable, 1)
    gap_call = float(np.max(np.abs(h_cvec.numpy() - h_cloop) / h_cloop))

    print(f"H_N for {N_PAIRS} (N, α) pairs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'envelope':<34}{'vectorised':>12}{'Python loop':>14}{'speed-up':>10}"
          f"{'max rel. gap':>14}")
    print(f"{'tabulated, ' + str(N_LAGS) + ' lags (searchsorted)':<34}{t_vec:>11.4f}s"
          f"{t_loop:>13.3f}s{t_loop / t_vec:>9.0f}×{gap_tab:>14.1e}")
    print(f"{'callable (find_root)':<34}{t_cvec:>11.4f}s{t_cloop:>13.3f}s"
          f"{t_cloop / t_cvec:>9.0f}×{gap_call:>14.1e}")


if __name__ == "__main__":
    main()
