"""Render the site from executed notebooks: stage the book's sources, then jupyter-book, strictly.

Nothing is executed here: the chapters ran once, in the runner. The stage is a copy of
``_config.yml`` and ``book/`` with ``notebooks/<chapter>.ipynb`` taken from the executed
notebooks, plus the pages generated from this build (ledger, map, status:
:mod:`horizon_lib.pages`). jupyter-book 1.x builds it with ``-W -n
--keep-going --all`` and the site replaces ``<build>/html`` only when the build succeeded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .claims import read_ledger
from .pages import fill_marker, ledger_markdown, load_paper_map, map_markdown, status_markdown
from .runner import executed_dir, ledger_path

__all__ = ["stage_book", "render_book", "BookBuildError"]


class BookBuildError(RuntimeError):
    """jupyter-book failed (a warning under -W, a broken reference, a missing page)."""


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
    staged = sorted((stage / "notebooks").glob("*.ipynb"))
    chapters = {p.stem for p in staged}
    rows = [r for r in read_ledger(ledger_path(build))
            if r.get("profile") == profile and r.get("notebook") in chapters]
    book = stage / "book"
    try:
        fill_marker(book / "claims.md", ledger_markdown(rows))
        fill_marker(book / "map.md", map_markdown(load_paper_map(book / "paper_map.yml"), rows,
                                                  chapters))
        fill_marker(book / "status.md", status_markdown(staged, profile))
    except ValueError as err:
        raise BookBuildError(str(err)) from None
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
