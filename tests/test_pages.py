"""Generated pages: ledger, map and status tables built from build data, and the adapting page."""

import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT
from horizon_lib.pages import (
    MARKER,
    fill_marker,
    findings_markdown,
    ledger_markdown,
    load_paper_map,
    map_markdown,
    notebook_title,
    status_markdown,
    toc_chapters,
)

ROWS = [
    dict(notebook="a", claim="c1", statement="s | pipe", op="close", predicted=1.0, measured=1.01,
         tolerance="atol 0.1", verdict="pass", profile="smoke"),
    dict(notebook="a", claim="c2", statement="t", op="le", predicted=0.1, measured=0.3,
         tolerance="", verdict="fail", profile="smoke"),
]


def test_ledger_table_escapes_and_marks():
    md = ledger_markdown(ROWS)
    assert "s \\| pipe" in md and "✘ fail" in md and "✔ pass" in md
    assert "{doc}`/notebooks/a`" in md
    assert "No claim" in ledger_markdown([])


def test_ledger_groups_claims_under_their_chapter_with_findings():
    rows = ROWS + [dict(notebook="b", claim="c3", statement="u", op="close", predicted=2.0,
                        measured=3.0, tolerance="atol 0.5", verdict="not reproduced",
                        finding="too few seeds", profile="smoke")]
    md = ledger_markdown(rows, {"a": "Chapter A"})
    summary = md.split("\n## ")[0]
    assert "| {doc}`/notebooks/a` | 2 | 1 ✔ pass, 1 ✘ fail |" in summary
    assert "| {doc}`/notebooks/b` | 1 | 1 ⚠ not reproduced |" in summary
    sections = md.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["Chapter A", "b"]  # title, else the name
    a, b = sections
    assert "{doc}`read the chapter </notebooks/a>`" in a
    assert "`c1`<br>s \\| pipe" in a and "`c3`" not in a
    assert "| ≤ 0.1 | 0.3 | — | ✘ fail |" in a  # a bound has no tolerance of its own
    assert "<br>*Finding:* too few seeds" in b and "Profile `smoke`" in b


def test_findings_summarise_the_verdicts_and_name_chapters_that_missed():
    rows = ROWS + [dict(notebook="b", claim="c3", statement="u", op="close", predicted=2.0,
                        measured=3.0, tolerance="atol 0.5", verdict="not reproduced",
                        finding="too few seeds", profile="smoke"),
                   dict(notebook="c", claim="c4", statement="v", op="close", predicted=1.0,
                        measured=1.0, tolerance="atol 0.5", verdict="pass", profile="smoke")]
    md = findings_markdown(rows, {"b": "Chapter B"})
    assert md.startswith("This build checked 4 claims in 3 chapters: 2 ✔ pass, "
                         "1 ⚠ not reproduced, 1 ✘ fail")
    bullets = [line for line in md.splitlines() if line.startswith("- ")]
    assert bullets == ["- {doc}`a </notebooks/a>`: 1 ✘ fail",
                       "- {doc}`Chapter B </notebooks/b>`: 1 ⚠ not reproduced"]
    assert "did not pass" in md
    assert "did not pass" not in findings_markdown(ROWS[:1])  # all passed: the sentence alone
    assert "No claim" in findings_markdown([])


def test_notebook_title_is_the_first_level_one_heading(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## not this\n# Theorem: N ∝ f^(−κ)\ntext"),
                nbformat.v4.new_markdown_cell("# nor this")]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert notebook_title(tmp_path / "x.ipynb") == "Theorem: N ∝ f^(−κ)"
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "y.ipynb")
    assert notebook_title(tmp_path / "y.ipynb") is None


def test_toc_chapters_are_the_books_notebooks_in_reading_order():
    names = toc_chapters(ROOT / "book" / "_toc.yml")
    assert names[:2] == ["cells_jacobians", "first_order"]
    assert sorted(names) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.md"))


def test_map_joins_paper_objects_with_build_verdicts():
    paper = [dict(object="Thm", kind="theorem", theory="thm-x", chapters=["a", "missing"])]
    md = map_markdown(paper, ROWS, {"a"})
    assert "1 ✔ pass, 1 ✘ fail" in md and "`missing` (not in this build)" in md
    assert "{prf:ref}`thm-x`" in md


def test_paper_map_names_real_theory_labels():
    labels = set()
    for page in (ROOT / "book" / "theory").glob("*.md"):
        labels |= {line.split(":label:")[1].strip() for line in page.read_text().splitlines()
                   if line.startswith(":label:")}
    for item in load_paper_map(ROOT / "book" / "paper_map.yml"):
        assert item["theory"] in labels, item


def test_status_lists_wall_times(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["horizon"] = {"run": {"status": "ok", "wall_time_s": 12.5}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    md = status_markdown([path], "smoke")
    assert "| 12.5 |" in md and "torch" in md and "`smoke`" in md


def test_fill_marker(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(f"# T\n\n{MARKER}\n")
    fill_marker(page, "body")
    assert page.read_text() == "# T\n\nbody\n"
    # filled once, the page has no marker left: a second fill must say so, not pass silently
    with pytest.raises(ValueError, match="lacks the marker <!-- generated -->"):
        fill_marker(page, "again")
    assert page.read_text() == "# T\n\nbody\n"


def test_adapting_page_shows_the_real_error_message():
    proc = subprocess.run([sys.executable, "-m", "horizon_lib", "--root", str(ROOT), "run",
                           "concentration", "-p", "alphas", "0.5"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() in (ROOT / "book" / "adapting.md").read_text()


def test_notation_names_real_library_functions():
    import re

    import horizon_lib

    text = (ROOT / "book" / "notation.md").read_text()
    names = re.findall(r"`horizon_lib\.(\w+)`", text)
    assert names
    for name in names:
        assert hasattr(horizon_lib, name), (
            f"notation page names horizon_lib.{name}, which is missing")
