"""horizon_lib: the library behind the learnability-window companion (arXiv 2512.05790).

One module per concept; the public names are re-exported here.

- ``stable``: α-stable sampling (Chambers–Mallows–Stuck, S0 with an S1 converter, Weron at α = 1).
- ``concentration``: κ_α and the N^{−1/κ_α} concentration of empirical means.
- ``cells``: the five gated cells (ConstGate, SharedGate, DiagGate, GRU, LSTM) with d_t, r_t, e_t.
- ``jacobians``: the analytic per-step Jacobian terms and their autograd check.
- ``transport``: transport factors Γ, effective learning rates μ = ΛΓ, exact Jacobian products.
- ``base_rates``: optimizer base rates Λ^{(q)} (SGD, Adam/AdamW, RMSprop; row mean, Rayleigh)
  from a live optimizer or from its raw second-moment tensors.
- ``envelope``: the envelope f̂(ℓ), its decomposition, per-unit time scales τ_q.
- ``brief_fit``: a few seconds of training on a sinusoidal lag task (a small chapter utility).
- ``horizon``: the detection rule: SNR(ℓ, N), N(ℓ) (continuous and first N on a grid), Ĥ_N on a
  lag grid (largest detectable lag and contiguous window), the threshold ε_th(ℓ; N).
- ``window``: the continuous window H_N of a decreasing envelope (root finding, tabulated
  envelopes) and its closed forms for exponential, power-law and logarithmic decay.
- ``complexity_fit``: log N(ℓ) against −log f(ℓ) (slope κ_α), the master fit, and how
  |m̄(ℓ)| and σ̂(ℓ) scale with f̂(ℓ).
- ``detection``: Monte-Carlo detection probability and N̂(ℓ) under the principled rule.
- ``spectra``: time-scale spectra (narrow, Pareto, log-type) and the envelopes they make.
- ``regimes``: exponential / power / logarithmic / tempered-power fits and AIC/BIC selection.
- ``tail_index``: batched tail-index estimators (ECF regression, McCulloch's quantiles).
- ``tail_index_bootstrap``: bootstrap intervals for α̂ and the combined ECF/McCulloch rule.
- ``detection_constant``: the detection constant ε(δ, α) and the detection power it promises.
- ``task``: the multi-lag regression task of the experiment, seeded splits.
- ``training``: several seeds (cells of one shape) trained as one batched model (torch.func).
- ``matched``: the matched statistic ψ(ℓ) by forward-mode JVP along random directions.
- ``diagnostics``: f̂, ψ, α̂, σ̂, N̂, Ĥ_N and a Monte-Carlo check for one trained model.
- ``direction_pooling``: α̂ of ψ pooled over directions, per direction and standardized (the
  pool is a mixture of scales), the Gaussian-mixture reference, and N̂(ℓ) of each direction.
- ``null_window``: what the detection rule reads on sign-flipped samples (noise alone).
- ``experiment_config``: the experiment's configurations and smoke/book/paper profiles;
  ``experiment``: the cached grid runner (``sequence_model`` adapts the cells;
  ``experiment_report`` summarises for the chapters).
- ``cache``: results on disk keyed by configuration and library version, written atomically.
- ``claims``: the ``claim`` helper and the ledger.
- ``style``: the book's one figure style.
- ``notebooks``, ``runner``, ``book``, ``cli``: the companion tooling (profiles, execution, site).
"""

__version__ = "0.1.0"

from .base_rates import (
    BaseRates,
    base_rates_from_moments,
    optimizer_base_rates,
    rayleigh_base_rates,
)
from .brief_fit import BriefFit, fit_briefly, sinusoid_task
from .cache import ResultCache, config_key
from .cells import (
    CELL_KINDS,
    GRU,
    LSTM,
    CellTrace,
    ConstGate,
    DiagGate,
    GatedCell,
    SharedGate,
    make_cell,
)
from .claims import ClaimFailed, claim, interval_reading
from .complexity_fit import (
    LineFit,
    master_fit,
    normalized_master_fit,
    sample_complexity_fit,
    scaling_fit,
)
from .concentration import (
    RateFit,
    deviation_quantiles,
    fit_concentration_rate,
    kappa,
    sample_mean_deviations,
)
from .detection import (
    SlopeBootstrap,
    bootstrap_sample_complexity_slope,
    detection_probability,
    monte_carlo_sample_size,
)
from .detection_constant import detection_epsilon, detection_power
from .device import resolve_device
from .diagnostics import diagnose_model
from .direction_pooling import (
    DirectionPooling,
    DirectionsSampleSize,
    direction_pooling,
    directions_sample_size,
    gaussian_mixture_alpha,
)
from .envelope import (
    Envelope,
    TimeScales,
    constgate_time_scale,
    envelope_from_factors,
    estimate_envelope,
    fit_time_scales,
)
from .experiment import run_experiment
from .experiment_config import DiagnosticsConfig, ExperimentConfig
from .horizon import (
    GridSampleSize,
    contiguous_window,
    epsilon_threshold,
    first_detectable_n,
    largest_detectable_lag,
    minimal_sample_size,
    snr,
)
from .jacobians import (
    exact_cell_transport_diagonal,
    immediate_parameter_vjp,
    perturb_parameters,
    state_jacobians,
    step_jacobians,
)
from .matched import matched_statistic, orient_per_lag, random_unit_directions, state_jvp
from .null_window import NullWindow, sign_flip_null
from .regimes import REGIMES, RegimeFit, RegimeSelection, fit_regime, select_regime
from .spectra import (
    LogParetoSpectrum,
    NarrowSpectrum,
    ParetoSpectrum,
    mixture_envelope,
    quadrature_envelope,
    sample_timescales,
    stratified_timescales,
)
from .stable import s0_to_s1_location, s1_to_s0_location, sample_stable, sample_symmetric_stable
from .style import use_book_style
from .tail_index import TailIndexFit, ecf_tail_index, ecf_tail_index_or_nan
from .tail_index_bootstrap import (
    METHODS,
    TailIndex,
    TailIndexInterval,
    bootstrap_ecf,
    bootstrap_mcculloch,
    estimate_tail_index,
)
from .tail_index_mcculloch import mcculloch_tail_index
from .task import TaskConfig, make_task
from .training import TrainConfig, TrainResult, train_ensemble
from .transport import (
    Transport,
    effective_learning_rates,
    exact_transport_diagonal,
    exact_transport_products,
    transport_factors,
    transport_norms,
)
from .window import (
    CLOSED_FORMS,
    learnability_window,
    window_exponential,
    window_from_envelope,
    window_logarithmic,
    window_power_law,
    window_threshold,
)

__all__ = [
    "ResultCache",
    "config_key",
    "diagnose_model",
    "DirectionPooling",
    "direction_pooling",
    "gaussian_mixture_alpha",
    "DirectionsSampleSize",
    "directions_sample_size",
    "NullWindow",
    "sign_flip_null",
    "DiagnosticsConfig",
    "ExperimentConfig",
    "run_experiment",
    "matched_statistic",
    "orient_per_lag",
    "random_unit_directions",
    "state_jvp",
    "TaskConfig",
    "make_task",
    "TrainConfig",
    "TrainResult",
    "train_ensemble",
    "__version__",
    "ClaimFailed",
    "claim",
    "interval_reading",
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
    "ecf_tail_index_or_nan",
    "mcculloch_tail_index",
    "METHODS",
    "TailIndex",
    "TailIndexInterval",
    "bootstrap_ecf",
    "bootstrap_mcculloch",
    "estimate_tail_index",
    "detection_epsilon",
    "detection_power",
    "use_book_style",
    "resolve_device",
    # cells and their Jacobians
    "CELL_KINDS", "CellTrace", "GatedCell", "ConstGate", "SharedGate", "DiagGate", "GRU", "LSTM",
    "make_cell", "perturb_parameters", "step_jacobians", "state_jacobians",
    "exact_cell_transport_diagonal", "immediate_parameter_vjp",
    # transport and effective learning rates
    "Transport", "transport_factors", "effective_learning_rates", "exact_transport_diagonal",
    "exact_transport_products", "transport_norms",
    "BaseRates", "optimizer_base_rates", "base_rates_from_moments", "rayleigh_base_rates",
    # the envelope
    "Envelope", "estimate_envelope", "envelope_from_factors", "TimeScales", "fit_time_scales",
    "constgate_time_scale",
    # a few seconds of training for the exact-vs-first-order chapter
    "BriefFit", "fit_briefly", "sinusoid_task",
    # horizon
    "GridSampleSize",
    "contiguous_window",
    "epsilon_threshold",
    "first_detectable_n",
    "largest_detectable_lag",
    "minimal_sample_size",
    "snr",
    # window
    "CLOSED_FORMS",
    "learnability_window",
    "window_exponential",
    "window_from_envelope",
    "window_logarithmic",
    "window_power_law",
    "window_threshold",
    # complexity_fit
    "LineFit",
    "master_fit",
    "normalized_master_fit",
    "sample_complexity_fit",
    "scaling_fit",
    # detection
    "SlopeBootstrap",
    "bootstrap_sample_complexity_slope",
    "detection_probability",
    "monte_carlo_sample_size",
    # spectra
    "LogParetoSpectrum",
    "NarrowSpectrum",
    "ParetoSpectrum",
    "mixture_envelope",
    "quadrature_envelope",
    "sample_timescales",
    "stratified_timescales",
    # regimes
    "REGIMES",
    "RegimeFit",
    "RegimeSelection",
    "fit_regime",
    "select_regime",
]
