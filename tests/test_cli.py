"""The `horizon` command: bad input fails in one line before any kernel starts, ledger untouched."""

import json
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
    (["run", "concentration", "-p", "alphas", "[1.1, 1.3"], ["'[1.1, 1.3'", "not valid YAML"]),
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
    assert any(r[:3] == ["n", "—", "c"] and "pass" in r for r in rows), rows


def test_folder_options_work_after_the_subcommand_too(tmp_path, capsys):
    (tmp_path / "claims.json").write_text(
        '{"rows": [{"notebook": "n", "claim": "c", "op": "close", "predicted": 1.0, '
        '"measured": 1.0, "verdict": "pass", "profile": "smoke"}]}')
    assert main(["claims", "--root", str(ROOT), "--build-dir", str(tmp_path)]) == 0
    assert ["n", "smoke", "c"] == capsys.readouterr().out.splitlines()[2].split()[:3]
    # given before the subcommand and not after, the value before is kept
    assert main(["--build-dir", str(tmp_path), "claims", "--root", str(ROOT)]) == 0
    assert "smoke" in capsys.readouterr().out


def test_book_no_run_renders_only_a_complete_build_and_names_what_is_missing(tmp_path, capsys,
                                                                            monkeypatch):
    import horizon_lib.book
    import horizon_lib.cli
    from horizon_lib.notebooks import discover
    from horizon_lib.runner import executed_dir

    rendered = []
    monkeypatch.setattr(horizon_lib.book, "render_book",
                        lambda root, build, profile: rendered.append((build, profile))
                        or build / "html" / "index.html")
    monkeypatch.setattr(horizon_lib.cli, "run_chapters", lambda *a, **k: pytest.fail("ran"))
    folder = executed_dir(tmp_path, "smoke")
    folder.mkdir(parents=True)
    names = sorted(discover(ROOT))
    for name in names[1:]:
        (folder / f"{name}.ipynb").write_text("{}")
    args = ["--root", str(ROOT), "--build-dir", str(tmp_path), "book", "--no-run",
            "--profile", "smoke"]
    assert main(args) == 2 and not rendered
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"({names[0]})" in err and "horizon run" in err
    (folder / f"{names[0]}.ipynb").write_text("{}")
    # every notebook is there, but the ledger's rows of the last chapter are of another profile
    rows = [{"notebook": n, "claim": "c", "profile": "smoke"} for n in names[:-1]]
    rows.append({"notebook": names[-1], "claim": "c", "profile": "book"})
    (tmp_path / "claims.json").write_text(json.dumps({"rows": rows}))
    assert main(args) == 2 and not rendered
    err = capsys.readouterr().err.strip()
    assert f"no smoke-profile claims of {names[-1]}" in err and len(err.splitlines()) == 1
    rows[-1]["profile"] = "smoke"
    (tmp_path / "claims.json").write_text(json.dumps({"rows": rows}))
    assert main(args) == 0
    assert rendered == [(tmp_path.resolve(), "smoke")]
    assert "The book is ready" in capsys.readouterr().out


def test_the_runner_keeps_a_thread_count_the_user_chose(tmp_path, monkeypatch):
    import horizon_lib.runner as runner

    seen = []

    def record(fn, tasks, **kwargs):
        seen.extend(args[5] for _, args in tasks)
        return {}, []

    monkeypatch.setattr(runner, "run_tasks", record)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 6)
    for chosen in ("5", None, "0", "abc", "²"):   # a chosen count, then what is not one
        if chosen is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", chosen)
        run_chapters(ROOT, ["concentration", "spectra"], profile="smoke", build=tmp_path,
                     jobs=2)
    assert seen == [5, 5] + [3, 3] * 4          # otherwise the 6 cores shared by 2 kernels


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


def test_claims_stars_rows_run_with_changed_parameters(tmp_path, capsys):
    from horizon_lib.notebooks import load_chapter

    values = load_chapter(ROOT / "notebooks" / "concentration.md").values("smoke")
    row = {"notebook": "concentration", "op": "close", "predicted": 1.0, "measured": 1.0,
           "verdict": "pass", "profile": "smoke"}
    rows = [dict(row, claim="as-profile", parameters=values),
            dict(row, claim="changed", parameters=dict(values, replicates=17)),
            dict(row, claim="gone-profile", profile="huge", parameters=values)]
    (tmp_path / "claims.json").write_text(json.dumps({"rows": rows}))
    assert main(["--root", str(ROOT), "--build-dir", str(tmp_path), "claims"]) == 0
    lines = capsys.readouterr().out.splitlines()
    profile_of = {line.split()[2]: line.split()[1] for line in lines[2:5]}
    assert profile_of == {"as-profile": "smoke", "changed": "smoke*", "gone-profile": "huge"}
    assert lines[-1].startswith("* run with parameter values other than the profile's")
