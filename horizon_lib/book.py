"""Render the site from executed notebooks: stage the book's sources, then jupyter-book, strictly.

Nothing is executed here: the chapters ran once, in the runner. The stage is a copy of
``_config.yml`` and ``book/`` with ``notebooks/<chapter>.ipynb`` taken from the executed
notebooks, plus the pages generated from this build (ledger, map, status:
:mod:`horizon_lib.pages`). jupyter-book 1.x builds it with ``-W -n
--keep-going --all`` and the site replaces ``<build>/html`` only when the build succeeded.

A staged chapter whose papermill-injected parameters equal its own defaults (the book profile)
shows that cell no more (tag ``remove-cell``): the page would print the same assignments twice,
and its parameter table gives the values in effect. Where they differ the cell stays visible.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from .claims import read_ledger
from .pages import (
    fill_marker,
    findings_markdown,
    ledger_markdown,
    load_paper_map,
    map_markdown,
    notebook_title,
    status_markdown,
    toc_chapters,
)
from .runner import executed_dir, ledger_path

__all__ = ["stage_book", "render_book", "hide_redundant_injection", "BookBuildError"]


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
    book = stage / "book"
    order = {name: i for i, name in enumerate(toc_chapters(book / "_toc.yml"))}
    reading = lambda stem: (order.get(stem, len(order)), stem)  # noqa: E731
    staged = sorted((stage / "notebooks").glob("*.ipynb"), key=lambda p: reading(p.stem))
    for path in staged:
        hide_redundant_injection(path)
    chapters = {p.stem for p in staged}
    rows = [r for r in read_ledger(ledger_path(build))
            if r.get("profile") == profile and r.get("notebook") in chapters]
    rows.sort(key=lambda r: reading(r["notebook"]))  # stable: a chapter's claims keep their order
    try:
        titles = {p.stem: notebook_title(p) for p in staged}
        fill_marker(book / "claims.md", ledger_markdown(rows, titles))
        fill_marker(book / "intro.md", findings_markdown(rows, titles))
        fill_marker(book / "map.md", map_markdown(load_paper_map(book / "paper_map.yml"), rows,
                                                  chapters))
        fill_marker(book / "status.md", status_markdown(staged, profile))
    except ValueError as err:
        raise BookBuildError(str(err)) from None
    return stage


def _literal_assignments(source: str) -> dict | None:
    """The ``name = literal`` statements of a parameters cell, or None if it holds anything else."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    values = {}
    for node in body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            return None
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            return None
    return values


def hide_redundant_injection(path: Path) -> bool:
    """Tag the papermill-injected parameters cell of an executed notebook ``remove-cell`` when it
    only repeats the defaults of the ``parameters`` cell; returns whether it did (file updated)."""
    nb = nbformat.read(path, as_version=4)
    tagged = {t: c for c in nb.cells for t in c.get("metadata", {}).get("tags", [])}
    injected, defaults = tagged.get("injected-parameters"), tagged.get("parameters")
    if injected is None or defaults is None:
        return False
    given, default = _literal_assignments(injected.source), _literal_assignments(defaults.source)
    if given is None or default is None or any(
            k not in default or default[k] != v for k, v in given.items()):
        return False
    injected.metadata["tags"] = [*injected.metadata["tags"], "remove-cell"]
    nbformat.write(nb, path)
    return True


def render_book(root: Path, build: Path, profile: str, *, quiet: bool = True) -> Path:
    """Stage and build the site into ``<build>/html``; returns the page to open.

    Raises:
        BookBuildError: the strict build failed; the previous site is left in place.
    """
    # absolute: jupyter-book reads a relative --toc against the source folder, not the caller's
    root, build = Path(root).resolve(), Path(build).resolve()
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
