"""The site rendered from the smoke run: chapter with figure and glued numbers, local MathJax,
ledger."""

import re

import nbformat
import pytest

from conftest import ROOT
from horizon_lib.notebooks import discover

pytestmark = pytest.mark.slow


def _glued(nb, name):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook", {})
            if meta.get("name") == name:
                return out["data"]["application/papermill.record/text/plain"]
    raise KeyError(name)


def test_every_chapter_page_has_a_figure(smoke_site):
    for name in discover(ROOT):
        html = (smoke_site / "notebooks" / f"{name}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', html)
        assert images, f"{name} shows no figure"
        for src in images:
            assert (smoke_site / "notebooks" / src).resolve().exists(), src


def test_glued_numbers_reach_the_page(smoke_build, smoke_site):
    build, _ = smoke_build
    nb = nbformat.read(build / "executed" / "smoke" / "concentration.ipynb", as_version=4)
    html = (smoke_site / "notebooks" / "concentration.html").read_text()
    max_se = float(_glued(nb, "max_se"))
    assert f"{max_se:.4f}" in html
    assert f">{_glued(nb, 'replicates')}<" in html


def test_mathjax_is_served_from_the_site(smoke_site):
    html = (smoke_site / "notebooks" / "concentration.html").read_text()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert any("mathjax" in s.lower() for s in scripts), scripts
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    sheets = re.findall(r'<link[^>]+href="([^"]+)"', html)
    assert not [s for s in sheets if s.startswith(("http:", "https:", "//"))], sheets


def test_ledger_page_lists_every_claim(smoke_build, smoke_site):
    _, report = smoke_build
    html = (smoke_site / "book" / "claims.html").read_text()
    assert report.rows
    for row in report.rows:
        assert row["claim"] in html
    assert "pass" in html


def test_smoke_pages_show_the_injected_values(smoke_site):
    """The smoke profile injects values other than the chapter's defaults, so the page keeps
    papermill's parameters cell (a book-profile page, where it repeats the defaults, does not:
    tests/test_book_stage.py)."""
    html = (smoke_site / "notebooks" / "concentration.html").read_text()
    assert "# Parameters" in html


def test_render_book_takes_relative_paths(smoke_build, smoke_site, monkeypatch):
    """jupyter-book reads a relative table of contents against its source folder; the renderer
    must not pass one through (it failed with "external_toc_path does not exist")."""
    import os

    from horizon_lib.book import render_book

    build, _ = smoke_build
    monkeypatch.chdir(build.parent)
    index = render_book(os.path.relpath(ROOT, build.parent), build.name, "smoke")
    assert index.is_absolute() and index.exists()
