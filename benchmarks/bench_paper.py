"""Time the paper profile (configuration A) on one device and extrapolate the whole run.

    python benchmarks/bench_paper.py [--device cuda] [--train-sequences 8000]
                                     [--diag-sequences 512] [--epochs 1] [--json FILE]

Every unit of the grid (each cell with AdamW, then the optimizer appendix: 7 units of the
profile's 5 seeds, 35 models) trains as one batched ensemble for ``--epochs`` epochs on the first
``--train-sequences`` training sequences, after a warm-up step; its time per epoch (the
validation pass included) is scaled to the whole training split and to the profile's 750
epochs. The first model of each unit is then diagnosed on ``--diag-sequences`` diagnostic
sequences (after a warm-up); its stages that grow with the number of sequences are scaled to
the profile's 8000 (the Monte-Carlo check and the window, which work on per-lag summaries,
are not) and the total to the
unit's 5 models. Goal of issue 6: the whole paper configuration in ≤ 1 hour on one H200.

``--profile smoke`` or ``book`` runs the same on a small configuration (a check of this
script on a CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _timing import best_time  # noqa: E402
from horizon_lib.diagnostics import diagnose_model  # noqa: E402
from horizon_lib.experiment import _default_builders  # noqa: E402
from horizon_lib.experiment_config import grid_units, profile  # noqa: E402
from horizon_lib.task import make_task  # noqa: E402
from horizon_lib.training import train_ensemble  # noqa: E402

#: Stages of the diagnostics whose cost is proportional to the number of sequences.
PER_SEQUENCE = ("forward", "jvp", "transport", "envelope", "tail_index")


def timed(fn, device):
    """(wall time, result) of one call, queued GPU kernels included."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    return best_time(fn, 1, sync=sync)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="paper", choices=("smoke", "book", "paper"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--train-sequences", type=int, default=0, help="0: the whole training split")
    ap.add_argument("--diag-sequences", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--json", default="", help="also write the figures to this file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cfg = profile(args.profile)
    n_train = args.train_sequences or cfg.task.n_train
    n_diag = min(args.diag_sequences, cfg.task.n_diag)
    data = make_task(dataclasses.replace(cfg.task, n_train=n_train, n_diag=n_diag), device=device)
    build = _default_builders()
    epochs = cfg.train.epochs
    print(f"profile {args.profile} on {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f": T={cfg.task.T} H={cfg.hidden} seeds={len(cfg.seeds)}; timing {args.epochs} "
          f"epoch(s) on {n_train} of {cfg.task.n_train} training sequences and diagnostics on "
          f"{n_diag} of {cfg.task.n_diag}")
    rows = []
    for cell, train in grid_units(cfg):
        def models():
            return [build[cell](cfg.task.D, cfg.hidden, cfg.s_const,
                                torch.Generator().manual_seed(int(s))).to(device)
                    for s in cfg.seeds]

        one_step = dataclasses.replace(train, epochs=1)
        bs = train.batch_size
        train_ensemble(models(), cfg.seeds, data.x_train[:bs], data.y_train[:bs], data.x_val[:bs],
                       data.y_val[:bs], one_step, progress=False)                  # warm-up
        t_train, res = timed(lambda: train_ensemble(
            models(), cfg.seeds, data.x_train, data.y_train, data.x_val, data.y_val,
            dataclasses.replace(train, epochs=args.epochs), progress=False), device)
        per_epoch = t_train / args.epochs * cfg.task.n_train / n_train
        model = res.model(build[cell](cfg.task.D, cfg.hidden, cfg.s_const, torch.Generator()),
                          0).to(device)
        state = {k: v[0] for g, d in res.opt_state.items() for k, v in d.items() if g != "step"}
        step = int(res.opt_state["step"]["step"][0])
        diag_cfg = dataclasses.replace(cfg.diagnostics, batch=min(cfg.diagnostics.batch, n_diag))
        warm = dataclasses.replace(diag_cfg, mc_replicates=1)
        few = min(n_diag, max(8, -(-32 // diag_cfg.directions)))   # ≥ 32 samples per lag
        diagnose_model(model, data.x_diag[:few], data.y_diag[:few], warm, train=train,
                       opt_state=state, step=step)                                # warm-up
        stages: dict = {}
        t_diag, _ = timed(lambda: diagnose_model(model, data.x_diag, data.y_diag, diag_cfg,
                                                 train=train, opt_state=state, step=step,
                                                 timings=stages), device)
        # the stages that grow with the number of sequences scale; the Monte-Carlo check and the
        # window work on per-lag summaries and do not
        scale = cfg.task.n_diag / n_diag
        one_model = sum(v * (scale if k in PER_SEQUENCE else 1.0) for k, v in stages.items())
        diag_all = one_model * len(cfg.seeds)
        rows.append({"unit": f"{cell}/{train.optimizer}", "epoch_s": per_epoch,
                     "train_s": per_epoch * epochs, "diagnostics_s": diag_all,
                     "timed_train_s": t_train, "timed_diag_s": t_diag})
        print(f"{cell + '/' + train.optimizer:<20} epoch {per_epoch:9.3g} s   {epochs} epochs "
              f"{per_epoch * epochs / 3600:9.3g} h   diagnostics of {len(cfg.seeds)} models "
              f"{diag_all / 60:9.3g} min", flush=True)
    total = sum(r["train_s"] + r["diagnostics_s"] for r in rows)
    print(f"whole profile (training + diagnostics, extrapolated): {total / 3600:.3g} h "
          f"(goal for the paper profile on one H200: ≤ 1 h)")
    if args.json:
        Path(args.json).write_text(json.dumps({"profile": args.profile, "device": str(device),
                                               "train_sequences": n_train,
                                               "diag_sequences": n_diag, "units": rows,
                                               "total_s": total}, indent=1))


if __name__ == "__main__":
    main()
