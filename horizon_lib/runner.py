"""The single execution engine: chapters run through papermill, claims gathered into the ledger.

``run_chapters`` checks every requested chapter's parameters first (no kernel starts when one is
wrong), executes the notebooks in parallel (``jupytext.read`` → ``papermill.execute_notebook``,
kernel ``python3``), reads the claim rows back from the executed notebooks and merges them into
``<build>/claims.json`` atomically. A notebook that fails is reported by name and failing cell;
the claims it recorded before failing, and every other notebook's, still reach the ledger.

Layout of the build folder (``_build`` by default)::

    executed/<profile>/<chapter>.ipynb   executed notebooks, what the book renders
    claims.json                          the ledger
    html/                                the site (see ``horizon_lib.book``)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._progress import PROGRESS_ENV
from .claims import CLAIM_MIME, RUN_CONTEXT_ENV, merge_ledger, read_ledger, write_ledger
from .executors import run_tasks
from .notebooks import ParameterError, discover, load_chapter

__all__ = ["ChapterRun", "RunReport", "plan", "run_chapters", "executed_dir", "ledger_path",
           "results_dir", "kernel_results_dir", "RESULTS_ENV"]


def executed_dir(build: Path, profile: str) -> Path:
    return Path(build) / "executed" / profile


def ledger_path(build: Path) -> Path:
    return Path(build) / "claims.json"


def results_dir(build: Path) -> Path:
    """The experiment's cache of a build, shared by ``horizon experiment`` and the chapters."""
    return Path(build) / "results"


#: Tells a chapter's kernel the results folder of the build it runs for.
RESULTS_ENV = "HORIZON_RESULTS"


def kernel_results_dir(build: Path) -> str:
    """The results folder the chapters read: ``$HORIZON_RESULTS`` when the user set it (e.g. the
    folder a cluster run of ``horizon experiment --out`` filled), else ``<build>/results``."""
    return os.environ.get(RESULTS_ENV) or str(results_dir(build).resolve())


@dataclass
class ChapterRun:
    """What one notebook run produced."""

    name: str
    status: str  # "ok" or "failed"
    rows: list[dict]
    wall_time_s: float
    output: str
    error: str | None = None


@dataclass
class RunReport:
    runs: list[ChapterRun] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    @property
    def failed_chapters(self) -> list[ChapterRun]:
        return [r for r in self.runs if r.status != "ok"]

    @property
    def failed_claims(self) -> list[dict]:
        return [r for r in self.rows if r["verdict"] in ("fail", "error")]

    @property
    def ok(self) -> bool:
        return not self.failed_chapters and not self.failed_claims


def plan(root: Path, names: list[str] | None, profile: str,
         overrides: dict[str, Any] | None = None) -> list[tuple[str, Path, dict]]:
    """Resolve chapter names (or paths) and check their values; raises ``ParameterError``."""
    known = discover(root)
    if not names:
        names = list(known)
    if not names:
        raise ParameterError(f"no notebooks found under {Path(root, 'notebooks')}")
    jobs = []
    for raw in names:
        stem = Path(raw).stem if raw.endswith((".md", ".ipynb")) else raw
        if stem not in known:
            raise ParameterError(
                f"unknown notebook {raw!r}; known: {', '.join(known) or '(none)'}"
            )
        chapter = load_chapter(known[stem])
        jobs.append((stem, known[stem], chapter.values(profile, overrides)))
    return jobs


def scrape_claims(nb) -> list[dict]:
    """The claim rows a notebook's outputs carry (see ``horizon_lib.claims``)."""
    rows = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if CLAIM_MIME in data:
                rows.append(dict(data[CLAIM_MIME]))
    return rows


def _chosen_threads() -> int | None:
    """The user's OMP_NUM_THREADS when it is a positive integer, else None."""
    try:
        threads = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return threads if threads > 0 else None


def _execute(name: str, source: str, output: str, params: dict, profile: str,
             threads: int, root: str, results: str) -> ChapterRun:
    """Run one notebook (in a worker process, or in this one)."""
    import jupytext
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    env = {RUN_CONTEXT_ENV: json.dumps({"notebook": name, "profile": profile,
                                        "parameters": params}),
           "OMP_NUM_THREADS": str(threads), PROGRESS_ENV: "0",
           RESULTS_ENV: results,
           # kernels import the library of the folder being run, whatever is installed
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    error, status = None, "ok"
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            jupytext.read(source), output, parameters=params, kernel_name="python3",
            progress_bar=False, cwd=str(Path(source).parent),
            # the kernel's own log (not the notebook's output) at ERROR: ipykernel ≥ 7 warns on
            # every start that its local TCP sockets are unencrypted, once per chapter
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as exc:
        status = "failed"
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}".splitlines()[0]
    except Exception as exc:  # kernel died, notebook unreadable, ...
        status = "failed"
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.perf_counter() - start
    rows = []
    if Path(output).exists():
        nb = nbformat.read(output, as_version=4)
        rows = scrape_claims(nb)
        nb.metadata.setdefault("horizon", {})["run"] = {
            "profile": profile, "parameters": params, "wall_time_s": wall, "status": status,
            "error": error,
        }
        nbformat.write(nb, output)
    for row in rows:
        row["wall_time_s"] = round(wall, 2)
        row["notebook_status"] = status
    if status != "ok":
        rows.append(_error_row(name, error, profile, params, wall))
    return ChapterRun(name, status, rows, wall, output, error)


def _error_row(name: str, error: str, profile: str, params: dict, wall: float) -> dict:
    """The ledger row that marks a notebook which did not run to its end."""
    return {
        "notebook": name, "claim": "(notebook run)", "statement": f"notebook failed at {error}",
        "op": "eq", "predicted": "ok", "measured": "failed", "tolerance": "",
        "why_tolerance": "", "verdict": "error", "finding": None, "profile": profile,
        "parameters": params, "seed": params.get("seed"), "library_version": None,
        "device": None, "wall_time_s": round(wall, 2), "notebook_status": "failed",
    }


def run_chapters(
    root: Path,
    names: list[str] | None = None,
    *,
    profile: str = "book",
    overrides: dict[str, Any] | None = None,
    build: Path | None = None,
    jobs: int | None = None,
    replace_ledger: bool = False,
    progress: bool = True,
    executor: str = "local",
    scheduler: str | None = None,
) -> RunReport:
    """Check, execute and record chapters; the ledger is merged (or replaced) atomically.

    Raises:
        ParameterError: an unknown chapter, profile or parameter, or a value out of its domain,
            before any notebook runs; the ledger is then left untouched.
    """
    root = Path(root)
    build = Path(build) if build else root / "_build"
    todo = plan(root, names, profile, overrides)
    outdir = executed_dir(build, profile)
    outdir.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    # the cores shared among the kernels, unless the user chose a thread count already
    threads = _chosen_threads() or max(1, (os.cpu_count() or 1) // jobs)
    shared = kernel_results_dir(build)             # the experiment's cache, for the kernels
    tasks = [(n, (n, str(p), str(outdir / f"{n}.ipynb"), v, profile, threads, str(root),
                  shared))
             for n, p, v in todo]
    results, failures = run_tasks(_execute, tasks, executor=executor, scheduler=scheduler,
                                  jobs=jobs, desc=f"notebooks ({profile})", progress=progress)
    runs = list(results.values())
    for failure in failures:  # the executor itself failed (a notebook's own errors are caught)
        name, source, output, params = failure.args[:4]
        last = failure.traceback.strip().splitlines()[-1]
        run = ChapterRun(name, "failed", [], 0.0, output, f"executor: {last}")
        run.rows.append(_error_row(name, run.error, profile, params, 0.0))
        runs.append(run)
    runs.sort(key=lambda r: r.name)
    rows = [row for r in runs for row in r.rows]
    path = ledger_path(build)
    old = [] if replace_ledger else read_ledger(path)
    write_ledger(path, merge_ledger(old, rows, [r.name for r in runs]))
    return RunReport(runs=runs, rows=rows)
