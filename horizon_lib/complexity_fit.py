"""Fits of the sample complexity: log N(ℓ) against −log f(ℓ) and the master fit
(theory/window, the experiment).

With |m(ℓ)| ∝ f(ℓ), N(ℓ) = (ε σ / |m(ℓ)|)^{κ_α} gives a straight line

    log N(ℓ) = a + κ_α · (−log f(ℓ))                      (slope κ_α; v1/v2 of the paper: α)

and, with a per-lag α̂(ℓ), the release's master fit

    log N̂(ℓ) = a + b · (−κ_α̂(ℓ) log f̂(ℓ)),    b ≈ 1.

Written out, log N(ℓ) = κ(ℓ) log C + κ(ℓ)(−log f(ℓ)) with C = εσ/c: when α̂ drifts with the
lag and C ≠ 1, the term κ(ℓ) log C moves with the abscissa and the release's slope differs from
1 even for an exact N(ℓ). :func:`normalized_master_fit` divides by κ first,

    log N̂(ℓ) / κ_α̂(ℓ) = log C + b · (−log f̂(ℓ)),    b = 1 exactly under the theory.

N̂ read on a budget grid is censored at both ends: +inf where no budget of the grid suffices,
and the grid's first budget N₁ where already N₁ suffices (the true N(ℓ) is only known to be
≤ N₁). Pass ``n_min=N₁`` to drop the latter; kept, they flatten the line.

The first line rests on two premises of the derivation, which :func:`scaling_fit` measures
lag by lag: the signal follows the envelope, |m(ℓ)| ∝ f(ℓ) (slope 1 of log |m̄| on log f̂), and
the noise scale σ does not depend on ℓ (slope 0 of log σ̂ on log f̂). Where σ̂(ℓ) shrinks with
f̂(ℓ) as fast as |m̄(ℓ)| does, the ratio ε σ̂/|m̄| and hence N̂(ℓ) no longer depend on the lag.

All are ordinary least squares (``scipy.stats.linregress``) with a t-interval on the slope.
With ``groups`` (one label per point, e.g. the seed of each lag) every group gets its own line
and the slope is the mean of the groups' slopes, with a t-interval on G − 1 degrees of freedom
from their spread: points of one group (neighbouring lags of one model) are correlated and share
an intercept, so the pooled fit's interval, which counts every point as independent, is too
narrow and its slope mixes the groups' offsets into the trend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import stats

from .concentration import kappa
from .horizon import _check_n_required, _check_positive, _tensors

__all__ = ["LineFit", "sample_complexity_fit", "master_fit", "normalized_master_fit",
           "scaling_fit"]


# --------------------------------------------------------------------------- fits of log N(ℓ)


@dataclass(frozen=True)
class LineFit:
    """Least-squares line y = intercept + slope · x with a t-interval on the slope.

    ``se`` and the interval assume independent homoscedastic residuals; where N̂ comes from a
    grid or from shared Monte-Carlo streams that holds only roughly (say so beside the number).
    ``x`` and ``y`` are the points used (after dropping lags with no N̂ on the grid);
    ``censored`` counts the lags dropped because N̂ ≤ ``n_min`` (0 when no ``n_min`` was given);
    ``groups`` is the number of groups of a grouped fit (1: one pooled line), whose slope and
    intercept are the means of the groups' and whose ``r2`` is the groups' mean r².
    """

    slope: float
    intercept: float
    se: float
    ci_low: float
    ci_high: float
    r2: float
    n_points: int
    x: torch.Tensor
    y: torch.Tensor
    censored: int = 0
    groups: int = 1


def _line_fit(x: torch.Tensor, y: torch.Tensor, level: float, censored: int = 0,
              groups: torch.Tensor | None = None) -> LineFit:
    if groups is not None:
        return _grouped_fit(x, y, groups, level, censored)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1); got {level}")
    if x.numel() < 3:
        raise ValueError(f"a line fit with an interval needs ≥ 3 usable points; got {x.numel()}")
    xs, ys = x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()
    if float(xs.max() - xs.min()) == 0.0:
        raise ValueError("the fit's abscissa is constant: f(ℓ) takes a single value")
    res = stats.linregress(xs, ys)
    half = stats.t.ppf(0.5 + level / 2, xs.size - 2) * res.stderr
    return LineFit(float(res.slope), float(res.intercept), float(res.stderr),
                   float(res.slope - half), float(res.slope + half), float(res.rvalue ** 2),
                   int(xs.size), x, y, int(censored))


def _grouped_fit(x, y, groups, level, censored) -> LineFit:
    """One line per group; slope = mean of the groups' slopes, t-interval on G − 1 df."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1); got {level}")
    labels = torch.as_tensor(groups).reshape(-1)
    if labels.numel() != x.numel():
        raise ValueError(f"groups must label every point; got {labels.numel()} labels for "
                         f"{x.numel()} points")
    fits = []
    for g in torch.unique(labels).tolist():
        m = (labels == g).to(x.device)
        if int(m.sum()) >= 3:
            xs = x[m].detach().cpu().double().numpy()
            if float(xs.max() - xs.min()) > 0:
                fits.append(stats.linregress(xs, y[m].detach().cpu().double().numpy()))
    if len(fits) < 2:
        raise ValueError(f"a grouped fit needs ≥ 2 groups with ≥ 3 usable points each; got "
                         f"{len(fits)}")
    slopes = torch.tensor([f.slope for f in fits], dtype=torch.float64)
    slope, se = float(slopes.mean()), float(slopes.std() / math.sqrt(len(fits)))
    half = stats.t.ppf(0.5 + level / 2, len(fits) - 1) * se
    intercept = float(sum(f.intercept for f in fits) / len(fits))
    r2 = float(sum(f.rvalue ** 2 for f in fits) / len(fits))
    return LineFit(slope, intercept, se, slope - half, slope + half, r2, int(x.numel()), x, y,
                   int(censored), len(fits))


def _usable(f, n_required, alpha=None, n_min=None):
    names = ("f", "n_required") + (("alpha",) if alpha is not None else ())
    ts = _tensors(f, n_required, *(() if alpha is None else (alpha,)), names=names)
    fv, need = ts[0].reshape(-1), ts[1].reshape(-1)
    if fv.shape != need.shape:
        raise ValueError(f"f and n_required must have one value per lag; got {fv.numel()} "
                         f"and {need.numel()}")
    _check_positive(fv, "envelope f")
    _check_n_required(need)
    keep = torch.isfinite(need) & (need > 0)
    censored = 0
    if n_min is not None:
        if not float(n_min) > 0:
            raise ValueError(f"n_min must be > 0 (the grid's first budget); got {n_min}")
        low = keep & (need <= float(n_min))
        censored, keep = int(low.sum()), keep & ~low
    k = None
    if alpha is not None:
        k = kappa(ts[2]).reshape(-1)
        if k.numel() not in (1, fv.numel()):
            raise ValueError(f"alpha must be a scalar or have one value per lag ({fv.numel()}); "
                             f"got {k.numel()}")
        k = k.expand(fv.shape)[keep]
    return fv[keep], need[keep], k, censored, keep


def _subset(groups, keep):
    if groups is None:
        return None
    labels = torch.as_tensor(groups).reshape(-1)
    if labels.numel() != keep.numel():
        raise ValueError(f"groups must label every lag; got {labels.numel()} labels for "
                         f"{keep.numel()} lags")
    return labels[keep.cpu()]


def sample_complexity_fit(f, n_required, *, level: float = 0.95, n_min=None,
                          groups=None) -> LineFit:
    """Fit log N(ℓ) = a + b (−log f(ℓ)); theory/window predicts b = κ_α (v1/v2 of the paper: α).

    Lags with N(ℓ) = +inf ("none on the grid") or 0 are dropped, and with ``n_min`` those with
    N(ℓ) ≤ n_min (censored at the grid's first budget).

    Args:
        f: envelope (or |m(ℓ)|, any positive multiple) per lag, shape (lag,).
        n_required: N(ℓ) per lag, shape (lag,).
        level: confidence level of the t-interval on b.
        n_min: the budget grid's first N, or None to keep every finite N(ℓ).
        groups: a label per lag (e.g. its seed) for a grouped fit (module docstring), or None.

    Returns:
        :class:`LineFit` (slope b, its standard error and interval).

    Raises:
        ValueError: f ≤ 0, negative N, fewer than 3 usable lags, a constant f, NaN, bad level.
    """
    fv, need, _, censored, keep = _usable(f, n_required, n_min=n_min)
    return _line_fit(-torch.log(fv), torch.log(need), level, censored, _subset(groups, keep))


def master_fit(f, n_required, alpha, *, level: float = 0.95, n_min=None,
               groups=None) -> LineFit:
    """Master fit log N̂(ℓ) = a + b (−κ_α̂(ℓ) log f̂(ℓ)), with a confidence interval on b ≈ 1.

    The release's master-proportionality check (the experiment): with per-lag α̂(ℓ), the slope b
    should be 1 (exactly so for a constant α̂ or C = εσ/c = 1; see the module docstring and
    :func:`normalized_master_fit`). Lags with no N̂ on the grid are dropped (the release drops
    N̂ ≤ 0 likewise), and with ``n_min`` those censored at the grid's first budget.

    Args:
        f: f̂(ℓ) > 0, shape (lag,).
        n_required: N̂(ℓ), shape (lag,); +inf where none on the grid.
        alpha: α̂(ℓ) ∈ (1, 2], shape (lag,) or a scalar.
        level: confidence level of the interval on b.
        n_min: the budget grid's first N, or None to keep every finite N̂(ℓ).
        groups: a label per lag (e.g. its seed) for a grouped fit (module docstring), or None.

    Returns:
        :class:`LineFit`.

    Raises:
        ValueError: α̂ ∉ (1, 2], f̂ ≤ 0, fewer than 3 usable lags, NaN, bad level.
    """
    fv, need, k, censored, keep = _usable(f, n_required, alpha, n_min)
    return _line_fit(-k * torch.log(fv), torch.log(need), level, censored,
                     _subset(groups, keep))


def normalized_master_fit(f, n_required, alpha, *, level: float = 0.95, n_min=None,
                          groups=None) -> LineFit:
    """Fit log N̂(ℓ) / κ_α̂(ℓ) = log C + b (−log f̂(ℓ)): the master law with the per-lag κ
    divided out, so b = 1 and intercept log C = log(εσ/c) hold exactly under the theory
    (theory/window: N(ℓ) = (C / f(ℓ))^{κ_α(ℓ)}) whatever the drift of α̂ over the lags.

    Args and Raises: as :func:`master_fit`.

    Returns:
        :class:`LineFit` with slope b and intercept log C.

    >>> f = torch.tensor([0.5, 0.2, 0.1, 0.05], dtype=torch.float64)
    >>> alpha = torch.tensor([1.9, 1.7, 1.5, 1.3], dtype=torch.float64)
    >>> need = (20 / f) ** (alpha / (alpha - 1))
    >>> fit = normalized_master_fit(f, need, alpha)
    >>> import math
    >>> round(fit.slope, 9), round(math.exp(fit.intercept), 6)
    (1.0, 20.0)
    """
    fv, need, k, censored, keep = _usable(f, n_required, alpha, n_min)
    return _line_fit(-torch.log(fv), torch.log(need) / k, level, censored,
                     _subset(groups, keep))


def scaling_fit(f, values, *, level: float = 0.95, groups=None) -> LineFit:
    """Fit log y(ℓ) = a + b log f(ℓ): how a per-lag statistic scales with the envelope.

    theory/window assumes |m(ℓ)| ∝ f(ℓ) (b = 1 for y = |m̄|) and a noise scale σ that does not
    depend on the lag (b = 0 for y = σ̂); together they give N(ℓ) ∝ f(ℓ)^{−κ_α}. Lags where y or
    f is 0 or ±inf are dropped (a mean of exactly 0, a transport that underflowed); NaN is an
    error (filter lags without a fit first).

    Args:
        f: f̂(ℓ), shape (lag,).
        values: the statistic y(ℓ) per lag (|m̄(ℓ)|, σ̂(ℓ), …), shape (lag,).
        level: confidence level of the t-interval on b.
        groups: a label per lag (e.g. its seed) for a grouped fit (module docstring), or None.

    Returns:
        :class:`LineFit` with slope b.

    Raises:
        ValueError: shapes differ, NaN, a negative value, fewer than 3 usable lags, a constant f,
            bad level.

    >>> f = torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=torch.float64)
    >>> round(scaling_fit(f, 3 * f ** 2).slope, 12)
    2.0
    """
    fv, y = _tensors(f, values, names=("f", "values"))
    fv, y = fv.reshape(-1), y.reshape(-1)
    if fv.shape != y.shape:
        raise ValueError(f"f and values must have one value per lag; got {fv.numel()} and "
                         f"{y.numel()}")
    if bool((y < 0).any()) or bool((fv < 0).any()):
        raise ValueError("f and values must be ≥ 0 (pass |m̄|, not the signed mean)")
    keep = torch.isfinite(fv) & (fv > 0) & torch.isfinite(y) & (y > 0)
    return _line_fit(torch.log(fv[keep]), torch.log(y[keep]), level, 0, _subset(groups, keep))
