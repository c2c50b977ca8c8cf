"""Regime fits of an envelope and their selection by AIC/BIC (theory/window).

Four laws, each fitted by least squares on log f (multiplicative errors):

==================  ===============================  ==========================  ========
regime              f(ℓ)                             fitted as                   params
==================  ===============================  ==========================  ========
``exponential``     A e^{−ℓ/τ}                       log f vs ℓ                  A, tau
``power``           A ℓ^{−β}                         log f vs log ℓ              A, beta
``logarithmic``     A (log ℓ)^{−γ}                   log f vs log log ℓ (ℓ > 1)  A, gamma
``tempered``        A ℓ^{−β} e^{−(ℓ/ℓ_c)^k}          nonlinear (scipy)           A, beta,
                                                                                 lag_c, k
==================  ===============================  ==========================  ========

The parameters are named as the closed forms of ``window.py`` take them
(``CLOSED_FORMS[fit.name](n, alpha, C=C, **fit.params)``); the tempered law has no closed form
and is inverted numerically (:func:`horizon_lib.window.learnability_window` with
:meth:`RegimeFit.evaluate`). Selection uses the Gaussian-likelihood criteria on the log scale,
AIC = n log(RSS/n) + 2k and BIC = n log(RSS/n) + k log n (k regression parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import optimize

__all__ = [
    "REGIMES",
    "RegimeFit",
    "RegimeSelection",
    "fit_regime",
    "select_regime",
]

REGIMES = ("exponential", "power", "logarithmic", "tempered")


@dataclass(frozen=True)
class RegimeFit:
    """One law fitted to log f: its parameters, residual sum of squares and criteria."""

    name: str
    params: dict
    rss: float
    n_points: int
    n_params: int
    aic: float = field(init=False)
    bic: float = field(init=False)

    def __post_init__(self):
        n, k = self.n_points, self.n_params
        base = n * math.log(self.rss / n)
        object.__setattr__(self, "aic", base + 2 * k)
        object.__setattr__(self, "bic", base + k * math.log(n))

    def evaluate(self, lags):
        """The fitted law at ``lags`` (numpy in, numpy out; torch in, torch out, in the lags'
        floating dtype, float64 for integer lags)."""
        is_t = torch.is_tensor(lags)
        x = np.asarray(lags.detach().cpu() if is_t else lags, dtype=np.float64)
        out = np.exp(_log_law(self.name, x, self.params))
        if not is_t:
            return out
        dtype = lags.dtype if lags.is_floating_point() else torch.float64   # integer lags
        return torch.as_tensor(out, dtype=dtype, device=lags.device)


@dataclass(frozen=True)
class RegimeSelection:
    """Every candidate's fit and the one the criterion selects (``best``)."""

    best: RegimeFit
    fits: dict
    criterion: str


def _log_law(name: str, x: np.ndarray, p: dict) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "exponential":
            return np.log(p["A"]) - x / p["tau"]
        if name == "power":
            return np.log(p["A"]) - p["beta"] * np.log(x)
        if name == "logarithmic":
            return np.log(p["A"]) - p["gamma"] * np.log(np.log(x))
        return np.log(p["A"]) - p["beta"] * np.log(x) - (x / p["lag_c"]) ** p["k"]


def _data(lags, f) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(lags.detach().cpu() if torch.is_tensor(lags) else lags, dtype=np.float64)
    y = np.asarray(f.detach().cpu() if torch.is_tensor(f) else f, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"lags and f must be 1-D of equal length; got {x.shape} and {y.shape}")
    if x.size < 6:
        raise ValueError(f"a regime fit needs ≥ 6 lags; got {x.size}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("lags and f must not contain NaN")
    if (x <= 0).any() or np.isinf(x).any() or np.any(np.diff(x) <= 0):
        raise ValueError("lags must be finite, > 0 and strictly increasing")
    if (y <= 0).any() or np.isinf(y).any():
        raise ValueError("the envelope f must be finite and > 0 (fits are on log f)")
    return x, np.log(y)


def _rss(resid: np.ndarray, log_f: np.ndarray) -> float:
    """Residual sum of squares, floored at round-off so an exact law does not give log 0."""
    floor = log_f.size * (16 * np.finfo(np.float64).eps * max(1.0, np.abs(log_f).max())) ** 2
    return float(max(np.sum(resid ** 2), floor))


def _linear(name: str, u: np.ndarray, log_f: np.ndarray) -> RegimeFit:
    slope, intercept = np.polyfit(u, log_f, 1)
    rate = -slope
    key = {"exponential": "tau", "power": "beta", "logarithmic": "gamma"}[name]
    value = (1.0 / rate if rate != 0 else math.inf) if name == "exponential" else rate
    params = {"A": float(math.exp(intercept)), key: float(value)}
    resid = log_f - (intercept + slope * u)
    return RegimeFit(name, params, _rss(resid, log_f), log_f.size, 2)


def _tempered(x: np.ndarray, log_f: np.ndarray) -> RegimeFit:
    lx = np.log(x)
    b0, a0 = np.polyfit(lx, log_f, 1)
    lo = [-np.inf, -10.0, lx[0] - 10.0, 0.05]
    hi = [np.inf, 10.0, lx[-1] + 10.0, 10.0]

    def resid(p):
        a, beta, log_c, k = p
        with np.errstate(over="ignore"):
            return log_f - (a - beta * lx - np.exp(k * (lx - log_c)))

    best = None
    for log_c in (lx[-1] + 2.0, float(np.median(lx)), lx[-1]):
        for k in (0.5, 1.0, 2.0):
            start = [a0, float(np.clip(-b0, -9.9, 9.9)), log_c, k]
            res = optimize.least_squares(resid, start, bounds=(lo, hi), x_scale="jac")
            if best is None or res.cost < best.cost:
                best = res
    a, beta, log_c, k = best.x
    params = {"A": float(math.exp(a)), "beta": float(beta), "lag_c": float(math.exp(log_c)),
              "k": float(k)}
    return RegimeFit("tempered", params, _rss(best.fun, log_f), log_f.size, 4)


def fit_regime(name: str, lags, f) -> RegimeFit:
    """Fit one decay law to an envelope by least squares on log f.

    Args:
        name: one of :data:`REGIMES`.
        lags: strictly increasing lags ℓ > 0 (ℓ > 1 for ``logarithmic``), shape (lag,).
        f: the envelope f(ℓ) > 0, shape (lag,).

    Returns:
        :class:`RegimeFit` with ``params`` as the closed forms take them.

    Raises:
        ValueError: an unknown regime, fewer than 6 lags, f ≤ 0, NaN, non-increasing lags,
            or a lag ≤ 1 for the logarithmic law.

    >>> lags = [1, 2, 4, 8, 16, 32]
    >>> fit = fit_regime("power", lags, [3.0 * x ** -1.5 for x in lags])
    >>> round(fit.params["beta"], 9), round(fit.params["A"], 9)
    (1.5, 3.0)
    """
    if name not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}; got {name!r}")
    x, log_f = _data(lags, f)
    if name == "exponential":
        return _linear(name, x, log_f)
    if name == "power":
        return _linear(name, np.log(x), log_f)
    if name == "logarithmic":
        if (x <= 1).any():
            raise ValueError("the logarithmic law needs every lag > 1 (log log ℓ)")
        return _linear(name, np.log(np.log(x)), log_f)
    return _tempered(x, log_f)


def select_regime(lags, f, *, criterion: str = "bic",
                  candidates: tuple = REGIMES) -> RegimeSelection:
    """Fit every candidate law on the same lags and select the one with the lowest AIC or BIC.

    Args:
        lags, f: as in :func:`fit_regime` (ℓ > 1 when ``logarithmic`` is a candidate).
        criterion: ``"bic"`` (default; penalises the tempered law's two extra parameters by
            log n each) or ``"aic"``.
        candidates: names from :data:`REGIMES`.

    Returns:
        :class:`RegimeSelection` (``best``, ``fits`` by name, ``criterion``).

    Raises:
        ValueError: an unknown criterion or regime, no candidate, or bad data (see fit_regime).
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion must be 'aic' or 'bic'; got {criterion!r}")
    if not candidates:
        raise ValueError("candidates must name at least one regime")
    fits = {name: fit_regime(name, lags, f) for name in candidates}
    best = min(fits.values(), key=lambda r: getattr(r, criterion))
    return RegimeSelection(best, fits, criterion)
