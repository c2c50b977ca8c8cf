"""The experiment grid as independent tasks for an executor: a local process pool or Dask.

One task is one unit of :func:`horizon_lib.experiment_config.grid_units`: the batched training
of every seed of one (configuration, cell, optimizer) — the seeds train together as one stacked
model, so they are not split across workers — followed by the diagnostics of each trained model.
Every result lands in the content-addressed cache ``results_dir`` (:mod:`horizon_lib.cache`),
which all workers must reach (a shared folder on a cluster): written atomically, keyed by the
configuration and the library version. A unit whose results are all cached is not submitted; a
worker killed mid-task leaves at most a temporary file that no later run trusts, and the
scheduler runs the task again on another worker.

This is what ``horizon experiment --executor local|dask`` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .executors import TaskFailure, run_tasks
from .experiment import _default_builders, run_unit, unit_cached, warn_if_heavy_for_cpu
from .experiment_config import ExperimentConfig, grid_units, profile
from .notebooks import ParameterError
from .task import make_task
from .training import TrainConfig

__all__ = ["GridReport", "grid_tasks", "run_grid_unit", "run_grid", "main_experiment"]


@dataclass
class GridReport:
    """What a grid run did: units submitted and skipped (cached), summaries, failures."""

    submitted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    summaries: dict[str, dict] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)


def unit_name(cell: str, train: TrainConfig) -> str:
    return f"{cell}-{train.optimizer}"


def run_grid_unit(cfg: ExperimentConfig, cell: str, train: TrainConfig, results_dir: str,
                  device: str = "auto", threads: int | None = None) -> dict:
    """One task: train and diagnose a unit (or load it from the cache); returns a small summary.

    ``device="auto"`` takes the worker's own GPU when it has one, else its CPU. ``threads``
    fixes torch's intra-op threads for the task (results are then bit-identical across
    executors on the CPU).
    """
    from .device import resolve_device

    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        dev = resolve_device(device)
        data = make_task(cfg.task, device=dev)
        res, diags = run_unit(cfg, cell, train, data, results_dir=results_dir,
                              builders=_default_builders(), device=dev, progress=False)
    finally:
        torch.set_num_threads(saved)
    return {"cell": cell, "optimizer": train.optimizer, "device": str(dev),
            "best_val_r2": [float(v) for v in res.best_val_r2().tolist()],
            "diagnosed_seeds": sorted(diags)}


def grid_tasks(cfg: ExperimentConfig, results_dir: str | Path, *, device: str = "auto",
               threads: int | None = None) -> list[tuple[str, tuple]]:
    """``(name, args)`` of every unit, for :func:`horizon_lib.executors.run_tasks`."""
    return [(unit_name(cell, train), (cfg, cell, train, str(results_dir), device, threads))
            for cell, train in grid_units(cfg)]


def run_grid(cfg: ExperimentConfig, results_dir: str | Path, *, executor: str = "local",
             scheduler: str | None = None, jobs: int | None = 1, device: str = "auto",
             threads: int | None = None, progress: bool = True) -> GridReport:
    """Run the units that are not cached yet on the chosen executor; see the module docstring."""
    report = GridReport()
    todo = []
    for name, args in grid_tasks(cfg, results_dir, device=device, threads=threads):
        _, cell, train = args[:3]
        if unit_cached(cfg, cell, train, results_dir):
            report.skipped.append(name)
        else:
            todo.append((name, args))
    report.submitted = [name for name, _ in todo]
    if todo:
        results, report.failures = run_tasks(run_grid_unit, todo, executor=executor,
                                             scheduler=scheduler, jobs=jobs,
                                             desc="experiment units", progress=progress)
        report.summaries.update(results)
    return report


def main_experiment(profile_name: str, out: str | Path, device: str = "auto", *,
                    executor: str = "local", scheduler: str | None = None,
                    jobs: int | None = None, changes: Mapping[str, Any] | None = None) -> int:
    """``horizon experiment``: run (or resume) a profile's grid, print a summary; 1 on failure.

    ``changes`` alter the profile (:meth:`~horizon_lib.experiment_config.ExperimentConfig.changed`);
    an unknown setting or a bad value raises :class:`~horizon_lib.notebooks.ParameterError`
    before anything runs.
    """
    cfg = profile(profile_name)
    if changes:
        try:
            cfg = cfg.changed(changes)
        except ValueError as err:
            raise ParameterError(str(err)) from None
    start = time.perf_counter()
    if jobs is None:  # one unit at a time here (training uses every core); a cluster: all cores
        jobs = None if executor == "dask" else 1
    if executor == "local":  # a cluster's workers pick their own devices
        warn_if_heavy_for_cpu(cfg, device, out)
    report = run_grid(cfg, out, executor=executor, scheduler=scheduler, jobs=jobs, device=device)
    print(f"{len(report.submitted)} units run, {len(report.skipped)} already cached "
          f"({Path(out).resolve()}, {time.perf_counter() - start:.0f} s)")
    if report.summaries:  # the units run now (cached ones were summarized when they ran)
        print(f"{'unit':<22}{'device':<10}{'best val R² per seed'}")
    for name, summary in sorted(report.summaries.items()):
        r2 = ", ".join(f"{v:.3f}" for v in summary["best_val_r2"])
        print(f"{name:<22}{summary['device']:<10}{r2}")
    for failure in report.failures:
        print(f"horizon: unit {failure.name} failed ({failure.args[0].__class__.__name__} "
              f"{profile_name}, cell {failure.args[1]}, optimizer {failure.args[2].optimizer}):\n"
              f"{failure.traceback}")
    return 1 if report.failures else 0
