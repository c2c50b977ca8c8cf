"""Shared fixtures: the repository root, and one smoke-profile run + book build per session.

The smoke run executes every chapter once through the runner into a temporary build folder; the
notebook, book and browser tests all read that one build, so no notebook runs twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

#: One tolerance table for float32/float64 checks (DESIGN.md convention 7).
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-14)}

_NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cuda(test):
    """Decorator for a test that needs a CUDA device: marked ``cuda``, so that ``pytest -m cuda``
    selects it (as ``benchmarks/gpu_checks.sh`` does), and skipped where no device is present."""
    return pytest.mark.cuda(_NO_CUDA(test))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    """(build folder, RunReport) of every chapter run in the smoke profile."""
    from horizon_lib.runner import run_chapters

    build = tmp_path_factory.mktemp("build")
    report = run_chapters(ROOT, None, profile="smoke", build=build, jobs=os.cpu_count(),
                          replace_ledger=True, progress=False)
    return build, report


@pytest.fixture(scope="session")
def smoke_site(smoke_build):
    """The book rendered (strictly) from the smoke run; returns the html folder."""
    from horizon_lib.book import render_book

    build, _ = smoke_build
    index = render_book(ROOT, build, "smoke")
    return index.parent
