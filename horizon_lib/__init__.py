"""horizon_lib: the library behind the learnability-window companion (arXiv 2512.05790).

One module per concept; the public names are re-exported here.

- ``stable``: α-stable sampling (Chambers–Mallows–Stuck, S0 with an S1 converter, Weron at α = 1).
- ``concentration``: κ_α and the N^{−1/κ_α} concentration of empirical means.
- ``tail_index``: batched tail-index estimators (ECF regression, McCulloch's quantiles).
- ``tail_index_bootstrap``: bootstrap intervals for α̂ and the combined ECF/McCulloch rule.
- ``detection``: the detection constant ε(δ, α) and the detection power it promises.
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
from .detection import detection_epsilon, detection_power, empirical_detection_power
from .stable import s0_to_s1_location, s1_to_s0_location, sample_stable, sample_symmetric_stable
from .tail_index import TailIndexFit, ecf_tail_index, mcculloch_tail_index
from .tail_index_bootstrap import (
    METHODS,
    TailIndex,
    TailIndexInterval,
    bootstrap_ecf,
    bootstrap_mcculloch,
    estimate_tail_index,
)
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
    "sample_stable",
    "s0_to_s1_location",
    "s1_to_s0_location",
    "TailIndexFit",
    "ecf_tail_index",
    "mcculloch_tail_index",
    "METHODS",
    "TailIndex",
    "TailIndexInterval",
    "bootstrap_ecf",
    "bootstrap_mcculloch",
    "estimate_tail_index",
    "detection_epsilon",
    "detection_power",
    "empirical_detection_power",
    "use_book_style",
    "resolve_device",
]
