"""Where independent tasks run: a local process pool, or a Dask cluster.

One interface, :func:`run_tasks`, serves the runner (a task is one notebook run) and the
experiment (a task is one training + diagnostics). ``executor="local"`` uses a process pool on
this machine (or runs in-process with one job); ``executor="dask"`` submits to an existing
``dask.distributed`` scheduler given by its address, or to a ``LocalCluster`` started for the
occasion. A task that raises is reported with its name and traceback while the others continue;
a Dask worker that dies mid-task has its task rescheduled on another worker by the scheduler.
``dask.distributed`` is an optional extra (``pip install -e .[cluster]``), imported only here.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from tqdm import tqdm

__all__ = ["EXECUTORS", "ExecutorError", "TaskFailure", "run_tasks"]

EXECUTORS = ("local", "dask")


class ExecutorError(RuntimeError):
    """The executor cannot be used as asked (e.g. Dask is not installed); one-line message."""


@dataclass
class TaskFailure:
    """A task that raised: its name, its arguments and the traceback."""

    name: str
    args: tuple
    traceback: str


def _bar(total: int, desc: str, progress: bool):
    return tqdm(total=total, desc=desc, unit="task", disable=not progress, file=sys.stderr)


def _update(bar, done: int, failed: int, total: int, slots: int) -> None:
    bar.set_postfix(running=min(slots, total - done - failed), finished=done, failed=failed)
    bar.update()


def _import_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ExecutorError(
            "--executor dask needs dask.distributed: install the extra with "
            "`pip install -e .[cluster]`"
        ) from None
    return distributed


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[str, tuple]],
    *,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    desc: str = "tasks",
    progress: bool = True,
) -> tuple[dict[str, Any], list[TaskFailure]]:
    """Run ``fn(*args)`` for every ``(name, args)`` of ``tasks``; results by name, and failures.

    Args:
        fn: a picklable top-level function.
        tasks: ``(name, args)`` pairs; names must be unique.
        executor: ``"local"`` or ``"dask"``.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); with
            ``executor="dask"`` and no address, a ``LocalCluster`` of ``jobs`` worker processes.
        jobs: local worker processes (default: the number of cores).
        desc: label of the progress bar, which shows running / finished / failed counts.

    Raises:
        ExecutorError: an unknown executor, or Dask requested but not installed.
        ValueError: duplicate task names.
    """
    if executor not in EXECUTORS:
        raise ExecutorError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    names = [name for name, _ in tasks]
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(1, len(tasks))))
    if executor == "dask":
        return _run_dask(fn, tasks, scheduler, jobs, desc, progress)
    return _run_local(fn, tasks, jobs, desc, progress)


def _run_local(fn, tasks, jobs, desc, progress):
    results, failures = {}, []
    bar = _bar(len(tasks), desc, progress)
    if jobs == 1:
        for name, args in tasks:
            try:
                results[name] = fn(*args)
            except Exception:
                failures.append(TaskFailure(name, args, traceback.format_exc()))
            _update(bar, len(results), len(failures), len(tasks), 1)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(fn, *args): (name, args) for name, args in tasks}
            for fut in as_completed(futures):
                name, args = futures[fut]
                try:
                    results[name] = fut.result()
                except Exception as exc:
                    tb = "".join(traceback.format_exception(exc))
                    failures.append(TaskFailure(name, args, tb))
                _update(bar, len(results), len(failures), len(tasks), jobs)
    bar.close()
    return results, failures


def _run_dask(fn, tasks, scheduler, jobs, desc, progress):
    distributed = _import_distributed()
    cluster = None
    if scheduler is None:
        cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    results, failures = {}, []
    bar = _bar(len(tasks), desc, progress)
    try:
        slots = max(1, sum(w.get("nthreads", 1)
                           for w in client.scheduler_info()["workers"].values()))
        futures = {
            client.submit(fn, *args, pure=False): (name, args)  # dask makes each key unique
            for name, args in tasks
        }
        for fut in distributed.as_completed(futures):
            name, args = futures[fut]
            if fut.status == "finished":
                results[name] = fut.result()
            else:
                exc, tb = fut.exception(), fut.traceback()
                text = "".join(traceback.format_exception(type(exc), exc, tb))
                failures.append(TaskFailure(name, args, text))
            _update(bar, len(results), len(failures), len(tasks), slots)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    return results, failures
