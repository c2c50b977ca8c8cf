"""The multi-lag regression task: deterministic from its seed, the target it promises,
bad input rejected."""

import pytest
import torch

from conftest import cuda
from horizon_lib.task import TaskConfig, lag_signal_fractions, make_task, task_signal_fraction

BASE = dict(T=32, D=4, lags=(3, 7), coeffs=(0.6, 0.4), noise=0.2, n_train=8, n_val=4, n_diag=5,
            seed=3)


def test_deterministic_from_seed_and_splits_independent():
    a, b = make_task(TaskConfig(**BASE)), make_task(TaskConfig(**BASE))
    for k in a.__dataclass_fields__:
        assert torch.equal(getattr(a, k), getattr(b, k))
    other = make_task(TaskConfig(**{**BASE, "seed": 4}))
    assert not torch.equal(a.x_train, other.x_train)
    # changing the size of one split leaves the other splits untouched
    bigger = make_task(TaskConfig(**{**BASE, "n_train": 20}))
    assert torch.equal(bigger.x_diag, a.x_diag) and torch.equal(bigger.y_val, a.y_val)
    assert torch.equal(bigger.x_train[:8], a.x_train)
    # no split shares a sequence with another (each draws from its own stream)
    splits = {"train": a.x_train, "val": a.x_val, "diag": a.x_diag}
    for name, x in splits.items():
        for other_name, y in splits.items():
            if name < other_name:
                n = min(len(x), len(y))
                assert not torch.isclose(x[:n, None], y[None, :n]).all(-1).all(-1).any(), (
                    name, other_name)


def test_noise_free_target_is_the_lagged_projection():
    cfg = TaskConfig(**{**BASE, "noise": 0.0})
    d = make_task(cfg, dtype=torch.float64)
    proj = d.x_train @ d.u
    expected = torch.zeros_like(proj)
    expected[:, 3:] += 0.6 * proj[:, :-3]
    expected[:, 7:] += 0.4 * proj[:, :-7]
    torch.testing.assert_close(d.y_train[..., 0], expected)
    assert torch.isclose(d.u.norm(), torch.tensor(1.0, dtype=torch.float64))
    assert d.y_train.dtype == torch.float64


def test_noise_level_and_signal_fraction():
    cfg = TaskConfig(**{**BASE, "T": 400, "n_train": 200})
    d = make_task(cfg, dtype=torch.float64)
    proj = d.x_train @ d.u
    clean = torch.zeros_like(proj)
    clean[:, 3:] += 0.6 * proj[:, :-3]
    clean[:, 7:] += 0.4 * proj[:, :-7]
    resid = d.y_train[..., 0] - clean
    # 80 000 Gaussian draws: the sample std is within 1% of 0.2 (its s.e. is 0.2/√(2·8e4) ≈ 5e-4)
    assert abs(float(resid.std()) - 0.2) < 0.002
    assert task_signal_fraction(cfg) == pytest.approx(0.52 / (0.52 + 0.04))


def test_lag_signal_fractions_split_the_signal_fraction_by_lag():
    # c = (0.6, 0.4), noise 0.2: Σc² + noise² = 0.36 + 0.16 + 0.04 = 0.56
    cfg = TaskConfig(**BASE)
    fractions = lag_signal_fractions(cfg)
    assert fractions == pytest.approx([0.36 / 0.56, 0.16 / 0.56], rel=1e-15)
    assert sum(fractions) == pytest.approx(task_signal_fraction(cfg), rel=1e-15)
    paper_like = TaskConfig(T=300, D=2, lags=(32, 64, 128, 192, 256),
                            coeffs=(0.6, 0.5, 0.4, 0.32, 0.26), noise=0.3, n_train=1, n_val=1,
                            n_diag=1)
    assert sum(lag_signal_fractions(paper_like)) == pytest.approx(
        task_signal_fraction(paper_like), rel=1e-15)
    # no noise: the lags carry all of the target's variance
    assert lag_signal_fractions(TaskConfig(**{**BASE, "noise": 0.0})) == pytest.approx(
        [0.36 / 0.52, 0.16 / 0.52], rel=1e-15)


@pytest.mark.parametrize("change, words", [
    ({"lags": (3, 32)}, "[1, T)"),
    ({"lags": (0, 3)}, "[1, T)"),
    ({"lags": (), "coeffs": ()}, "must not be empty"),
    ({"coeffs": (0.5,)}, "one coefficient per task lag"),
    ({"noise": -0.1}, "noise"),
    ({"T": 1}, "T must be"),
    ({"D": 0}, "input size D"),
    ({"n_val": 0}, "n_val"),
    ({"coeffs": (float("nan"), 0.1)}, "finite"),
])
def test_bad_configuration_fails_clearly(change, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace(")", r"\)")):
        TaskConfig(**{**BASE, **change})


@cuda
def test_the_same_task_on_cuda():
    # the draws happen on the CPU, so a seed gives the same data on every device
    cfg = TaskConfig(**BASE)
    cpu, gpu = make_task(cfg), make_task(cfg, device="cuda")
    for name in cpu.__dataclass_fields__:
        assert getattr(gpu, name).device.type == "cuda"
        assert torch.equal(getattr(gpu, name).cpu(), getattr(cpu, name)), name
