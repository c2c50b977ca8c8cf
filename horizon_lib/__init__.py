"""horizon_lib: the library behind the learnability-window companion (arXiv 2512.05790).

One module per concept; the public names are re-exported here.

- ``stable``: symmetric α-stable sampling (Chambers–Mallows–Stuck).
- ``concentration``: κ_α and the N^{−1/κ_α} concentration of empirical means.
- ``claims``: the ``claim`` helper and the ledger.
- ``style``: the book's one figure style.
- ``notebooks``, ``runner``, ``book``, ``cli``: the companion tooling (profiles, execution, site).
"""

__version__ = "0.1.0"

from .claims import ClaimFailed, claim
from .concentration import (
    RateFit,
    deviation_quantiles,
    fit_concentration_rate,
    kappa,
    sample_mean_deviations,
)
from .stable import sample_symmetric_stable
from .device import resolve_device
from .style import use_book_style

__all__ = [
    "__version__",
    "ClaimFailed",
    "claim",
    "RateFit",
    "deviation_quantiles",
    "fit_concentration_rate",
    "kappa",
    "sample_mean_deviations",
    "sample_symmetric_stable",
    "use_book_style",
    "resolve_device",
]
