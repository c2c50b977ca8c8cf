"""Render the site from executed notebooks: stage the book's sources, then jupyter-book, strictly.

Nothing is executed here: the chapters ran once, in the runner. The stage is a copy of
``_config.yml`` and ``book/`` with ``notebooks/<chapter>.ipynb`` taken from the executed
notebooks, plus the generated claims-ledger page. jupyter-book 1.x builds it with ``-W -n
--keep-going --all`` and the site replaces ``<build>/html`` only when the build succeeded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .claims import read_ledger
from .runner import executed_dir, ledger_path

__all__ = ["stage_book", "render_book", "ledger_markdown", "BookBuildError"]

LEDGER_MARKER = "<!-- ledger -->"


class BookBuildError(RuntimeError):
    """jupyter-book failed (a warning under -W, a broken reference, a missing page)."""


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def ledger_markdown(rows: list[dict]) -> str:
    """The ledger as a MyST table, each chapter linked, each verdict marked."""
    if not rows:
        return "*No claim has been recorded yet: run `horizon verify`.*\n"
    marks = {"pass": "✔ pass", "fail": "✘ fail", "error": "✘ error",
             "not reproduced": "⚠ not reproduced"}
    ops = {"close": "≈", "le": "≤", "ge": "≥", "eq": "="}
    lines = [
        "| chapter | claim | statement | predicted | measured | tolerance | verdict | profile |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        chapter = f"{{doc}}`/notebooks/{r['notebook']}`" if r.get("notebook") else "—"
        lines.append("| " + " | ".join([
            chapter, f"`{_cell(r['claim'])}`", _cell(r["statement"]),
            f"{ops.get(r.get('op'), '')} {_cell(_num(r['predicted']))}",
            _cell(_num(r["measured"])), _cell(r.get("tolerance", "")),
            marks.get(r["verdict"], r["verdict"]), _cell(r.get("profile", "")),
        ]) + " |")
    return "\n".join(lines) + "\n"


def stage_book(root: Path, build: Path, profile: str) -> Path:
    """Copy the book's sources and the executed notebooks into ``<build>/stage``."""
    root, build = Path(root), Path(build)
    stage = build / "stage"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    shutil.copy2(root / "_config.yml", stage / "_config.yml")
    shutil.copytree(root / "book", stage / "book")
    (stage / "notebooks").mkdir()
    for nb in sorted(executed_dir(build, profile).glob("*.ipynb")):
        if (root / "notebooks" / f"{nb.stem}.md").exists():
            shutil.copy2(nb, stage / "notebooks" / nb.name)
    rows = [r for r in read_ledger(ledger_path(build)) if r.get("profile") == profile]
    page = stage / "book" / "claims.md"
    text = page.read_text()
    if LEDGER_MARKER not in text:
        raise BookBuildError(f"{page} lacks the marker {LEDGER_MARKER}")
    page.write_text(text.replace(LEDGER_MARKER, ledger_markdown(rows)))
    return stage


def render_book(root: Path, build: Path, profile: str, *, quiet: bool = True) -> Path:
    """Stage and build the site into ``<build>/html``; returns the page to open.

    Raises:
        BookBuildError: the strict build failed; the previous site is left in place.
    """
    build = Path(build)
    stage = stage_book(root, build, profile)
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage),
        "--toc", str(stage / "book" / "_toc.yml"), "--path-output", str(stage),
        "-W", "-n", "--keep-going", "--all",
    ]
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    built = stage / "_build" / "html"
    if proc.returncode != 0 or not (built / "index.html").exists():
        log = (proc.stdout + proc.stderr).strip().splitlines()
        raise BookBuildError("jupyter-book failed:\n" + "\n".join(log[-40:]))
    site = build / "html"
    if site.exists():
        shutil.rmtree(site)
    shutil.move(str(built), str(site))
    return site / "index.html"
