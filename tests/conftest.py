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


def windows_by_definition(lags, n_required, n_grid) -> tuple[list, list]:
    """(Ĥ_N largest, Ĥ_N contiguous) per N, by the definitions written as plain loops: the
    largest grid lag with N(ℓ) ≤ N, and the last lag of the detected prefix (0 when none)."""
    lags, need, grid = (list(map(float, v)) for v in (lags, n_required, n_grid))
    largest, contiguous = [], []
    for n in grid:
        largest.append(max([lag for lag, k in zip(lags, need) if k <= n], default=0.0))
        prefix = 0.0
        for lag, k in zip(lags, need):
            if k > n:
                break
            prefix = lag
        contiguous.append(prefix)
    return largest, contiguous


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
