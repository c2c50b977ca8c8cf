"""The `horizon` command's own checks: the companion folder, and --jobs, before anything runs
(tests/test_cli.py covers the chapters' parameters)."""

import pytest

import horizon_lib.cli as cli
import horizon_lib.experiment_grid as experiment_grid
from conftest import ROOT
from horizon_lib.notebooks import ParameterError


def test_find_root_takes_the_nearest_companion_folder(tmp_path):
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "notebooks").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert cli.find_root(deep) == tmp_path.resolve()


def test_find_root_without_a_companion_folder_raises(tmp_path, monkeypatch):
    # an installed package (no notebooks/ beside it) run from a folder outside the companion:
    # here the package's own checkout would be found, so the package is moved in the test
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "horizon_lib" / "cli.py"))
    (tmp_path / "work").mkdir()
    with pytest.raises(ParameterError, match=r"cannot find the companion folder \(with _config"):
        cli.find_root(tmp_path / "work")


@pytest.mark.parametrize("args", [
    ["run", "concentration", "--jobs", "0"],
    ["verify", "--jobs", "-1"],
    ["book", "--no-run", "--jobs", "0"],
    ["experiment", "--profile", "smoke", "--device", "cpu", "--jobs", "0"],
])
def test_jobs_below_one_is_one_line_before_anything_runs(tmp_path, monkeypatch, capsys, args):
    def must_not_run(*a, **k):
        raise AssertionError("a run started despite --jobs < 1")

    monkeypatch.setattr(cli, "run_chapters", must_not_run)
    monkeypatch.setattr(experiment_grid, "main_experiment", must_not_run)
    code = cli.main(["--root", str(ROOT), "--build-dir", str(tmp_path)] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"horizon: --jobs must be ≥ 1; got {args[-1]}"
    assert not (tmp_path / "executed").exists()
