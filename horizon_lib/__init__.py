"""horizon_lib: the library behind the learnability-window companion (arXiv 2512.05790).

One module per concept; the public names are re-exported here.

- ``stable``: symmetric α-stable sampling (Chambers–Mallows–Stuck).
- ``concentration``: κ_α and the N^{−1/κ_α} concentration of empirical means.
- ``cells``: the five gated cells (ConstGate, SharedGate, DiagGate, GRU, LSTM) with d_t, r_t, e_t.
- ``jacobians``: the analytic per-step Jacobian terms and their autograd check.
- ``transport``: transport factors Γ, effective learning rates μ = ΛΓ, exact Jacobian products.
- ``base_rates``: optimizer base rates Λ^{(q)} (SGD, Adam/AdamW, RMSprop; row mean, Rayleigh).
- ``envelope``: the envelope f̂(ℓ), its decomposition, per-unit time scales τ_q.
- ``brief_fit``: a few seconds of training on a sinusoidal lag task (a small chapter utility).
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
from .base_rates import BaseRates, optimizer_base_rates, rayleigh_base_rates
from .brief_fit import BriefFit, fit_briefly, sinusoid_task
from .cells import (
    CELL_KINDS,
    LSTM,
    GRU,
    CellTrace,
    ConstGate,
    DiagGate,
    GatedCell,
    SharedGate,
    make_cell,
    perturb_parameters,
)
from .envelope import (
    Envelope,
    TimeScales,
    constgate_time_scale,
    envelope_from_factors,
    estimate_envelope,
    fit_time_scales,
)
from .jacobians import immediate_parameter_vjp, step_jacobians
from .transport import (
    Transport,
    effective_learning_rates,
    exact_transport_diagonal,
    exact_transport_products,
    transport_factors,
    transport_norms,
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
    "use_book_style",
    "resolve_device",
    # cells and their Jacobians
    "CELL_KINDS", "CellTrace", "GatedCell", "ConstGate", "SharedGate", "DiagGate", "GRU", "LSTM",
    "make_cell", "perturb_parameters", "step_jacobians", "immediate_parameter_vjp",
    # transport and effective learning rates
    "Transport", "transport_factors", "effective_learning_rates", "exact_transport_diagonal",
    "exact_transport_products", "transport_norms",
    "BaseRates", "optimizer_base_rates", "rayleigh_base_rates",
    # the envelope
    "Envelope", "estimate_envelope", "envelope_from_factors", "TimeScales", "fit_time_scales",
    "constgate_time_scale",
    # a few seconds of training for the exact-vs-first-order chapter
    "BriefFit", "fit_briefly", "sinusoid_task",
]
