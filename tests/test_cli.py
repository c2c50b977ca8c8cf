"""The `horizon` command: bad input fails in one line before any kernel starts, ledger untouched."""

import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from horizon_lib.cli import main
from horizon_lib.runner import run_chapters


@pytest.mark.parametrize("args, words", [
    (["run", "nosuchchapter"], ["unknown notebook", "nosuchchapter", "concentration"]),
    (["run", "concentration", "-p", "alphas", "0.5"], ["concentration", "alphas", "(1, 2]"]),
    (["run", "concentration", "-p", "alpha", "0.5"], ["concentration", "alpha", "(1, 2]"]),
    (["run", "concentration", "-p", "n_grid", "0"], ["concentration", "n_grid", "[1, ∞)"]),
    (["run", "concentration", "-p", "replicates", "-5"], ["concentration", "replicates", "[2, ∞)"]),
    (["experiment", "--profile", "smoke", "--device", "tpu"], ["--device tpu", "device type"]),
])
def test_bad_input_is_one_line_and_leaves_the_ledger(tmp_path, capsys, args, words):
    ledger = tmp_path / "claims.json"
    ledger.write_text('{"rows": []}')
    before = ledger.read_bytes()
    code = main(["--root", str(ROOT), "--build-dir", str(tmp_path)] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    for word in words:
        assert word in err
    assert ledger.read_bytes() == before
    assert not (tmp_path / "executed").exists()  # no notebook was started


def test_console_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "horizon_lib", "--root", str(ROOT), "--build-dir",
                           str(tmp_path), "run", "concentration", "-p", "alphas", "0.5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "alphas" in proc.stderr


def test_claims_command_prints_the_ledger(tmp_path, capsys):
    (tmp_path / "claims.json").write_text(
        '{"rows": [{"notebook": "n", "claim": "c", "op": "close", "predicted": 1.0, '
        '"measured": 1.0, "verdict": "pass"}]}')
    assert main(["--root", str(ROOT), "--build-dir", str(tmp_path), "claims"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert any(r[:2] == ["n", "c"] and "pass" in r for r in rows), rows


HEADER = textwrap.dedent("""\
    ---
    jupytext:
      notebook_metadata_filter: horizon
      text_representation: {extension: .md, format_name: myst, format_version: 0.13}
    kernelspec: {display_name: Python 3, language: python, name: python3}
    horizon:
      parameters:
        x: {meaning: m, unit: "-", domain: "[0, 10]", effect: e}
      profiles: {smoke: {}, paper: {}}
    ---
    """)


def _chapter(body: str) -> str:
    return HEADER + "\n```{code-cell} ipython3\n:tags: [parameters]\n\nx = 1\n```\n\n" + body


@pytest.mark.slow
def test_failing_notebook_is_named_and_the_others_still_reach_the_ledger(tmp_path):
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    ok = "```{code-cell} ipython3\nimport horizon_lib as hl\nhl.claim('one', measured=x, " \
         "predicted=1, statement='s')\n```\n"
    bad = ok + "\n```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n"
    (root / "notebooks" / "good.md").write_text(_chapter(ok))
    (root / "notebooks" / "bad.md").write_text(_chapter(bad))
    report = run_chapters(root, None, profile="smoke", build=tmp_path / "b", jobs=2,
                          progress=False)
    assert [r.name for r in report.failed_chapters] == ["bad"]
    failed = report.failed_chapters[0]
    assert "RuntimeError" in failed.error and "boom" in failed.error and "cell" in failed.error
    import json

    rows = json.loads((tmp_path / "b" / "claims.json").read_text())["rows"]
    by = {(r["notebook"], r["claim"]): r for r in rows}
    assert by[("good", "one")]["verdict"] == "pass"
    assert by[("bad", "one")]["verdict"] == "pass"  # recorded before the failure ...
    assert by[("bad", "one")]["notebook_status"] == "failed"  # ... and marked as such
    assert by[("bad", "(notebook run)")]["verdict"] == "error"
    assert not report.ok
