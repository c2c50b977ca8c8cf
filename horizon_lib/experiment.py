"""The paper's experiment as one pipeline: train five gated cells, then measure Ĥ_N.

    task (seeded splits) → batched training per (cell, optimizer), all seeds at once
                         → diagnostics per trained model (:mod:`horizon_lib.diagnostics`)

Every (configuration, cell, optimizer) ensemble and every (…, seed) diagnostic is a file of a
:class:`~horizon_lib.cache.ResultCache` keyed by its configuration and the library version, so
an interrupted run resumes from what finished and a changed configuration recomputes. The
configurations and profiles live in :mod:`horizon_lib.experiment_config`.

The cells come from a registry of builders ``builder(D, H, s, generator) → nn.Module``; a model
satisfies the diagnostics' protocol (:mod:`horizon_lib.diagnostics`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from ._progress import progress_bar
from .cache import ResultCache
from .experiment_config import CELLS, ExperimentConfig, grid_units, profile, training_work
from .task import make_task
from .training import TrainConfig, TrainResult, train_ensemble

__all__ = ["run_experiment", "train_cell", "ExperimentResults", "default_results_dir",
           "run_unit", "unit_cached", "unit_busy", "warn_if_heavy_for_cpu", "CPU_WORK_WARNING"]

Builder = Callable[..., torch.nn.Module]

#: Revision of what a trained ensemble is, part of the cache key of every training result: bump
#: it when a change to the cells, the sequence model, the task or the trainer changes the
#: weights that a configuration trains to (the library version alone does not move with them).
TRAINING_REVISION = 1
#: The cache identity of the library's own cells (:func:`_default_builders`).
LIBRARY_BUILDER = "horizon_lib.sequence_model.build_model"


def _default_builders() -> dict[str, Builder]:
    try:
        from .cells import make_cell  # noqa: F401 — the five cells (their own module)
    except ImportError as err:  # pragma: no cover - until the cells module is present
        raise RuntimeError("the cells module (horizon_lib.cells) is not available") from err
    from .sequence_model import build_model

    builders = {}
    for c in CELLS:
        def builder(D, H, s, generator, _c=c):
            return build_model(_c, D, H, s, generator)
        builder.cache_id = LIBRARY_BUILDER
        builders[c] = builder
    return builders


def _builder_id(builder: Builder | None) -> str:
    """What produced the weights, for the cache key: the library's cells, or another builder's
    module and name (a stand-in's ensemble is never handed to the library's cells)."""
    if builder is None:
        return LIBRARY_BUILDER
    return getattr(builder, "cache_id", None) or (
        f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', repr(builder))}")


def _train_key(cfg: ExperimentConfig, cell: str, train: TrainConfig,
               builder: Builder | None = None) -> dict:
    return {"task": cfg.task, "train": train, "cell": cell, "hidden": cfg.hidden,
            "s_const": cfg.s_const, "seeds": list(cfg.seeds), "builder": _builder_id(builder),
            "training_revision": TRAINING_REVISION}


#: While a unit trains, its state is saved at most this often (seconds) beside the cache, so a
#: killed run resumes from the last save instead of from epoch 0.
CHECKPOINT_SECONDS = 300.0


def train_cell(cfg: ExperimentConfig, cell: str, data, *, train: TrainConfig | None = None,
               results: ResultCache, builders: Mapping[str, Builder], device,
               progress: bool = True) -> TrainResult:
    """Train (or load) the ensemble of ``cfg.seeds`` for one cell and one optimizer.

    A training that runs longer than :data:`CHECKPOINT_SECONDS` leaves its state beside the
    cache (:meth:`~horizon_lib.cache.ResultCache.save_partial`) every that many seconds; a run
    of the same configuration started after a kill resumes from it and ends bit for bit where
    the uninterrupted run would.
    """
    train = train or cfg.train
    key = _train_key(cfg, cell, train, builders[cell])

    def compute():
        models = []
        for s in cfg.seeds:
            gen = torch.Generator().manual_seed(int(s))
            models.append(builders[cell](cfg.task.D, cfg.hidden, cfg.s_const, gen).to(device))
        resume = results.load_partial(key)
        if resume is not None and progress:
            print(f"{cell}/{train.optimizer}: resuming after epoch {int(resume['epoch']) + 1} "
                  f"of {train.epochs}")
        saved = [time.monotonic()]

        def checkpoint(epoch, snapshot):
            if epoch + 1 < train.epochs and time.monotonic() - saved[0] >= CHECKPOINT_SECONDS:
                results.save_partial(key, snapshot())
                saved[0] = time.monotonic()

        res = train_ensemble(models, cfg.seeds, data.x_train, data.y_train, data.x_val, data.y_val,
                             train, progress=progress, desc=f"{cell}/{train.optimizer}",
                             checkpoint=checkpoint, resume=resume)
        return {k: _cpu(v) for k, v in res.to_dict().items()}

    record, cached = results.get_or_compute(key, compute)
    if not cached:
        results.drop_partial(key)
    return TrainResult.from_dict(record)


def _cpu(v):
    if torch.is_tensor(v):
        return v.detach().cpu()
    if isinstance(v, dict):
        return {k: _cpu(x) for k, x in v.items()}
    return v


@dataclass
class ExperimentResults:
    """Training results per (cell, optimizer) and diagnostics per (cell, optimizer, seed)."""

    config: ExperimentConfig
    training: dict[tuple[str, str], TrainResult]
    diagnostics: dict[tuple[str, str, int], dict]


def _diag_key(cfg: ExperimentConfig, cell: str, train: TrainConfig, m: int,
              builder: Builder | None = None) -> dict:
    from .diagnostics import REVISION  # a changed definition never reuses an old result

    return {**_train_key(cfg, cell, train, builder), "diagnostics": cfg.diagnostics, "model": m,
            "diagnostics_revision": REVISION}


def unit_cached(cfg: ExperimentConfig, cell: str, train: TrainConfig, results_dir: str | Path,
                *, diagnose: bool = True, builder: Builder | None = None) -> bool:
    """Whether a unit's training (and, with ``diagnose``, every seed's diagnostics) is cached
    (``builder``: the cell's builder; None for the library's cells)."""
    if _train_key(cfg, cell, train, builder) not in ResultCache(results_dir, "train"):
        return False
    diag_cache = ResultCache(results_dir, "diagnostics")
    return not diagnose or all(_diag_key(cfg, cell, train, m, builder) in diag_cache
                               for m in range(len(cfg.seeds)))


def unit_busy(cfg: ExperimentConfig, cell: str, train: TrainConfig,
              results_dir: str | Path, *, builder: Builder | None = None) -> bool:
    """Whether another process is training the unit or diagnosing one of its models right now."""
    if ResultCache(results_dir, "train").busy(_train_key(cfg, cell, train, builder)):
        return True
    diag_cache = ResultCache(results_dir, "diagnostics")
    return any(diag_cache.busy(_diag_key(cfg, cell, train, m, builder))
               for m in range(len(cfg.seeds)))


def run_unit(cfg: ExperimentConfig, cell: str, train: TrainConfig, data, *,
             results_dir: str | Path, builders: Mapping[str, Builder], device,
             diagnose: bool = True, progress: bool = True) -> tuple[TrainResult, dict[int, dict]]:
    """Train (or load) one unit's ensemble and diagnose (or load) each of its models.

    Returns:
        The :class:`TrainResult` and the diagnostics by seed (empty without ``diagnose``).
    """
    res = train_cell(cfg, cell, data, train=train, results=ResultCache(results_dir, "train"),
                     builders=builders, device=device, progress=progress)
    diagnostics: dict[int, dict] = {}
    if not diagnose:
        return res, diagnostics
    from .diagnostics import diagnose_model

    diag_cache = ResultCache(results_dir, "diagnostics")
    for m, seed in enumerate(cfg.seeds):

        def compute(m=m):
            base = builders[cell](cfg.task.D, cfg.hidden, cfg.s_const, torch.Generator())
            model = res.model(base, m).to(device)
            # a model never finite keeps its initial weights and no optimizer state (Λ = η)
            state = {} if int(res.best_epoch[m]) < 0 else {
                k: v[m] for g, d in res.opt_state.items() for k, v in d.items() if g != "step"}
            return diagnose_model(model, data.x_diag, data.y_diag, cfg.diagnostics,
                                  train=train, opt_state=state,
                                  step=int(res.opt_state["step"]["step"][m]))

        diagnostics[seed], _ = diag_cache.get_or_compute(
            _diag_key(cfg, cell, train, m, builders[cell]), compute)
    return res, diagnostics


#: A configuration whose training is this many times the book profile's, about to run on a
#: CPU, draws a warning (the book profile trains in minutes on this project's 2-core CPU).
CPU_WORK_WARNING = 20


def warn_if_heavy_for_cpu(cfg: ExperimentConfig, device, results_dir: str | Path) -> None:
    """Warn before training a configuration far larger than the book profile on a CPU.

    Nothing is said on a GPU, for a configuration within :data:`CPU_WORK_WARNING` times the
    book profile's :func:`training_work`, or when every unit is already cached.
    """
    from .device import resolve_device

    if resolve_device(str(device)).type != "cpu":
        return
    ratio = training_work(cfg) / training_work(profile("book"))
    if ratio < CPU_WORK_WARNING or all(unit_cached(cfg, *u, results_dir)
                                       for u in grid_units(cfg)):
        return
    warnings.warn(
        f"training this configuration is {ratio:,.0f}× the work of the book profile "
        "(sequence-steps × hidden units), which trains in minutes on a 2-core CPU; on this "
        "CPU expect it to take roughly that many times longer. It is meant for a GPU: device "
        "'cuda', or `horizon experiment` on a GPU machine, whose results the chapters then "
        "load.",
        stacklevel=3)


def run_experiment(cfg: ExperimentConfig, *, results_dir: str | Path, device="cpu",
                   builders: Mapping[str, Builder] | None = None, diagnose: bool = True,
                   progress: bool = True) -> ExperimentResults:
    """Run (or load) the whole grid: every cell with the main optimizer, the optimizer appendix,
    and the diagnostics of every trained model, one unit after the other in this process
    (:mod:`horizon_lib.experiment_grid` runs the units on a process pool or a Dask cluster).

    Processes that run the same grid at once (chapters executed in parallel) share the work:
    each takes next the first unit that no other process is computing, and waits for a busy unit
    only when every unit left is busy. Results do not depend on who computed what.

    Args:
        cfg: the :class:`ExperimentConfig` (already validated).
        results_dir: the cache folder (e.g. ``_build/results``), shared by all runs.
        device: where training and diagnostics run.
        builders: cell name → ``builder(D, H, s, generator)``; default: the library's cells.
        diagnose: also run the diagnostics (else training only).
        progress: tqdm bars over cells, epochs and models.
    """
    builders = dict(builders) if builders is not None else _default_builders()
    missing = [c for c in cfg.cells if c not in builders]
    if missing:
        raise ValueError(f"no builder for cell(s) {missing}")
    warn_if_heavy_for_cpu(cfg, device, results_dir)
    data = make_task(cfg.task, device=device)
    units = grid_units(cfg)
    done, pending = {}, list(units)
    with progress_bar(total=len(units), desc="cells", enabled=progress) as bar:
        while pending:
            cell, train = next((u for u in pending if not unit_busy(
                cfg, *u, results_dir, builder=builders[u[0]])), pending[0])
            done[(cell, train)] = run_unit(cfg, cell, train, data, results_dir=results_dir,
                                           builders=builders, device=device, diagnose=diagnose,
                                           progress=progress)
            pending.remove((cell, train))
            bar.update()
    training, diagnostics = {}, {}
    for cell, train in units:                     # in the grid's order, whoever computed them
        res, diags = done[(cell, train)]
        training[(cell, train.optimizer)] = res
        diagnostics.update({(cell, train.optimizer, seed): d for seed, d in diags.items()})
    return ExperimentResults(cfg, training, diagnostics)


def default_results_dir() -> Path:
    """Where ``horizon experiment`` and the chapters share results: the results folder of the
    build whose chapters are running (``horizon --build-dir``), else that of
    ``<companion>/_build``."""
    from .cli import find_root
    from .runner import RESULTS_ENV, results_dir

    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    return results_dir(find_root() / "_build")
