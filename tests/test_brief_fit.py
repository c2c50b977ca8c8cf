"""The small training utility used by the exact-vs-first-order chapter."""

import pytest
import torch

from horizon_lib.brief_fit import fit_briefly, sinusoid_task
from horizon_lib.cells import make_cell


def test_sinusoid_task_target_is_the_delayed_readout():
    g = torch.Generator().manual_seed(0)
    x, y = sinusoid_task(3, 40, 2, [5], [1.0], noise=0.0, generator=g)
    assert x.shape == (3, 40, 2) and y.shape == (3, 40, 1)
    assert torch.equal(y[:, :5], torch.zeros(3, 5, 1))
    # y_t = tanh(uᵀ x_{t−5}) for a unit u: |y| < 1 and a linear fit on x_{t−5} explains it
    assert y.abs().max() < 1
    assert x.abs().max() <= sum(1 / m for m in range(1, 6)) + 1e-6

    def fit_at(lag):  # least squares of atanh(y_t) on x_{t−lag}: (u, residual RMS)
        xs = x[:, :-lag].reshape(-1, 2).double()
        ys = torch.atanh(y[:, lag:, 0].double()).reshape(-1)
        u = torch.linalg.lstsq(xs, ys[:, None]).solution[:, 0]
        return u, float((xs @ u - ys).pow(2).mean().sqrt())

    u, resid = fit_at(5)
    assert resid < 1e-5 and abs(float(u.norm()) - 1) < 1e-5
    assert fit_at(4)[1] > 0.1      # the wrong delay does not explain it


def test_brief_training_lowers_the_loss():
    g = torch.Generator().manual_seed(1)
    x, y = sinusoid_task(8, 24, 2, [3], [0.8], generator=g)
    fit = fit_briefly(make_cell("GRU", 2, 6, generator=g), x, y, steps=15, lr=1e-2)
    assert fit.losses[-1] < 0.5 * fit.losses[0] and fit.r2 > 0
    assert type(fit.optimizer).__name__ == "AdamW"


def test_bad_input_raises():
    with pytest.raises(ValueError, match="same length"):
        sinusoid_task(2, 10, 2, [1, 2], [1.0])
    with pytest.raises(ValueError, match="noise"):
        sinusoid_task(2, 10, 2, [1], [1.0], noise=-1.0)
    with pytest.raises(ValueError, match="≥ 1"):
        sinusoid_task(0, 10, 2, [1], [1.0])
    cell = make_cell("GRU", 2, 4)
    x, y = sinusoid_task(2, 10, 2, [1], [1.0])
    with pytest.raises(ValueError, match="steps"):
        fit_briefly(cell, x, y, steps=0)
    with pytest.raises(ValueError, match="y must"):
        fit_briefly(cell, x, y[..., 0])
