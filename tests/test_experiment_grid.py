"""The experiment grid on executors: same cached results everywhere, resumable,
robust to a dying worker."""

import os
import sys
from pathlib import Path

import pytest
import torch

from horizon_lib.cache import ResultCache
from horizon_lib.executors import run_tasks
from horizon_lib.experiment import _default_builders, _train_key
from horizon_lib.experiment_config import profile
from horizon_lib.experiment_grid import grid_tasks, run_grid, run_grid_unit

pytestmark = pytest.mark.slow

SMOKE = profile("smoke")


def _records(results_dir: Path) -> dict[str, dict]:
    """Every cached result file (not the temporaries) by path, loaded."""
    out = {}
    for path in sorted(results_dir.rglob("*.pt")):
        if not path.name.startswith(".tmp-"):
            out[str(path.relative_to(results_dir))] = torch.load(path, weights_only=True)
    return out


def _equal(a, b) -> bool:
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and bool(
            ((a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else a == b).all())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # both NaN
    return a == b


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    report = run_grid(SMOKE, out, executor="local", jobs=1, device="cpu", threads=1,
                      progress=False)
    assert not report.failures and report.skipped == []
    return out, report


def test_dask_cluster_gives_bit_identical_cached_results(local_results, tmp_path):
    local_dir, local = local_results
    report = run_grid(SMOKE, tmp_path, executor="dask", jobs=2, device="cpu", threads=1,
                      progress=False)
    assert not report.failures and sorted(report.submitted) == sorted(local.submitted)
    a, b = _records(local_dir), _records(tmp_path)
    units = len(grid_tasks(SMOKE, tmp_path))
    assert a.keys() == b.keys()
    assert sum(k.startswith("train") for k in a) == units  # one ensemble per unit
    assert sum(k.startswith("diagnostics") for k in a) == units * len(SMOKE.seeds)
    for name in a:
        assert _equal(a[name], b[name]), f"{name} differs between executors"


def test_a_second_run_submits_nothing(local_results):
    local_dir, _ = local_results
    again = run_grid(SMOKE, local_dir, executor="local", device="cpu", threads=1, progress=False)
    assert again.submitted == [] and len(again.skipped) == len(grid_tasks(SMOKE, local_dir))


def die_mid_unit(marker: str, *args):
    """First attempt: leave a half-written temporary in the cache, then kill the worker."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        results_dir = Path(args[3])
        (results_dir / "train").mkdir(parents=True, exist_ok=True)
        (results_dir / "train" / ".tmp-killed.pt").write_bytes(b"\x80\x02half a pickle")
        os._exit(1)
    return run_grid_unit(*args)


def test_a_killed_worker_is_retried_and_leaves_nothing_trusted(local_results, tmp_path):
    local_dir, _ = local_results
    name, args = grid_tasks(SMOKE, tmp_path / "res", device="cpu", threads=1)[0]
    results, failures = run_tasks(die_mid_unit, [(name, (str(tmp_path / "m"), *args))],
                                  executor="dask", jobs=2, progress=False)
    assert failures == [] and (tmp_path / "m").read_text() == "died"
    assert results[name]["diagnosed_seeds"] == sorted(SMOKE.seeds)
    got, ref = _records(tmp_path / "res"), _records(local_dir)
    assert got and all(_equal(got[k], ref[k]) for k in got)  # what is cached is the true result
    # the killed attempt's half-written temporary is still on disk, and the cache's own lookup
    # of the unit's training result (the key the unit trains under) returns the true result
    assert (tmp_path / "res" / "train" / ".tmp-killed.pt").exists()
    _, cell, train = args[:3]
    key = _train_key(SMOKE, cell, train, _default_builders()[cell])
    loaded = ResultCache(tmp_path / "res", "train").load(key)
    assert loaded is not None and _equal(loaded, ResultCache(local_dir, "train").load(key))


def test_cli_experiment_without_dask_is_one_line(monkeypatch, capsys, tmp_path):
    from conftest import ROOT
    from horizon_lib.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    code = main(["--root", str(ROOT), "experiment", "--profile", "smoke", "--out", str(tmp_path),
                 "--executor", "dask"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pip install -e .[cluster]" in err
