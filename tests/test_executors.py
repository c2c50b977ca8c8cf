"""Executors: local pool and Dask give the same results; failures are reported, killed workers
retried."""

import os
import sys
from pathlib import Path

import pytest

from horizon_lib.executors import ExecutorError, run_tasks


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise RuntimeError("three is bad")
    return x


def die_once(marker: str, value: int):
    """Kills its own worker process the first time it runs; returns ``value`` when retried."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(1)
    return value


TASKS = [(f"t{i}", (i,)) for i in range(5)]


@pytest.mark.parametrize("executor, jobs", [("local", 1), ("local", 2), ("dask", 2)])
def test_same_results_on_every_executor(executor, jobs):
    results, failures = run_tasks(square, TASKS, executor=executor, jobs=jobs, progress=False)
    assert failures == [] and results == {f"t{i}": i * i for i in range(5)}


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_failing_task_is_reported_and_the_others_finish(executor):
    results, failures = run_tasks(fail_on_three, TASKS, executor=executor, jobs=2, progress=False)
    assert sorted(results) == ["t0", "t1", "t2", "t4"]
    assert [f.name for f in failures] == ["t3"] and failures[0].args == (3,)
    assert "three is bad" in failures[0].traceback


@pytest.mark.slow
def test_a_killed_dask_worker_has_its_task_retried(tmp_path):
    results, failures = run_tasks(die_once, [("victim", (str(tmp_path / "m"), 42))],
                                  executor="dask", jobs=2, progress=False)
    assert failures == [] and results == {"victim": 42}
    assert (tmp_path / "m").read_text() == "died"  # the first attempt really died


def test_missing_dask_is_one_line_on_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(ExecutorError, match=r"pip install -e \.\[cluster\]"):
        run_tasks(square, TASKS, executor="dask")


def test_unknown_executor_and_duplicate_names():
    with pytest.raises(ExecutorError, match="unknown executor"):
        run_tasks(square, TASKS, executor="slurm")
    with pytest.raises(ValueError, match="unique"):
        run_tasks(square, [("a", (1,)), ("a", (2,))])


@pytest.mark.slow
def test_dask_verify_writes_the_same_ledger_as_local(smoke_build, tmp_path):
    from conftest import ROOT
    from horizon_lib.runner import run_chapters

    _, local = smoke_build
    dask = run_chapters(ROOT, None, profile="smoke", build=tmp_path, jobs=2, replace_ledger=True,
                        progress=False, executor="dask")
    volatile = {"wall_time_s", "device"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in volatile} for r in rows]  # noqa
    assert dask.ok and strip(dask.rows) == strip(local.rows)


def test_cli_without_dask_says_how_to_install(monkeypatch, capsys, tmp_path):
    from conftest import ROOT
    from horizon_lib.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    code = main(["--root", str(ROOT), "--build-dir", str(tmp_path), "verify", "--profile", "smoke",
                 "--executor", "dask"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pip install -e .[cluster]" in err
    assert not (tmp_path / "claims.json").exists()
