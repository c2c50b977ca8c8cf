"""The experiment pipeline: profiles, configuration checks before training, cached resumable
runs."""

import dataclasses
import math

import pytest
import torch

from _standin import standin_builder
from conftest import cuda, windows_by_definition
from horizon_lib.diagnostics import MC_MAX_FRACTION
from horizon_lib.experiment import run_experiment
from horizon_lib.experiment_config import CELLS, DiagnosticsConfig, grid_units, log_grid, profile
from horizon_lib.task import TaskConfig
from horizon_lib.training import TrainConfig

BUILDERS = {c: standin_builder for c in CELLS}


def _tiny(**changes):
    cfg = profile("smoke").replace(cells=("constgate", "diaggate"), optimizers=("sgd",))
    return cfg.replace(**changes) if changes else cfg


def test_profiles_are_valid_and_paper_is_config_a():
    smoke, book, paper = profile("smoke"), profile("book"), profile("paper")
    assert book.task.T == 128 and book.hidden == 32 and len(book.seeds) == 3
    # config A of the paper
    assert (paper.task.T, paper.task.D, paper.hidden) == (1024, 16, 128)
    assert paper.task.lags == (32, 64, 128, 192, 256)
    assert paper.task.coeffs == (0.6, 0.5, 0.4, 0.32, 0.26)
    assert (paper.task.n_train, paper.task.n_diag) == (8000, 8000)
    assert (paper.train.epochs, paper.train.batch_size, paper.train.lr) == (750, 512, 1e-3)
    assert (paper.train.weight_decay, paper.train.clip) == (1e-4, 1.0)
    # the release's grids: np.linspace(4, 256, 128, dtype=int) (rounded down) and its --N_grid
    lags = paper.diagnostics.lags
    assert len(lags) == 128 and lags[:8] == (4, 5, 7, 9, 11, 13, 15, 17)
    assert lags[-3:] == (252, 254, 256)
    want = [int(4 + 252 * i / 127) for i in range(128)]      # floor of the evenly spaced values
    assert list(lags) == want
    assert paper.diagnostics.n_grid == (25, 50, 100, 150, 200, 300, 400, 600, 800, 1200, 1600,
                                        2400, 3200, 4800, 6400, 9600, 12800)
    assert paper.seeds == (212, 1001, 2002, 3003, 4004)
    assert smoke.task.T < 64
    with pytest.raises(ValueError, match="unknown profile"):
        profile("huge")


def test_profile_facts_quote_config_a():
    from horizon_lib.experiment_report import profile_facts

    facts = profile_facts("paper")   # config A of the paper, as in the test above
    assert (facts["T"], facts["H"], facts["seeds"], facts["epochs"]) == (1024, 128, 5, 750)
    assert ((facts["lags"], facts["lag_max"], facts["n_min"], facts["n_max"])
            == (128, 256, 25, 12800))
    assert facts["task_lags"] == "32, 64, 128, 192, 256"
    assert facts["samples_per_lag"] == 8 * 8000 and facts["time_scales"] == 128 * 5
    with pytest.raises(ValueError, match="unknown profile"):
        profile_facts("huge")


@pytest.mark.parametrize("change, words", [
    (lambda c: c.replace(cells=("constgate", "transformer")), "unknown cell"),
    (lambda c: c.replace(optimizers=("adagrad",)), "unknown optimizer"),
    (lambda c: c.replace(seeds=(1, 1)), "distinct"),
    (lambda c: c.replace(diagnostics=dataclasses.replace(c.diagnostics, lags=(1, 30))),
     r"\[1, T\)"),
    (lambda c: c.replace(optimizer_lr={"sgd": -1.0}), "learning rate of sgd"),
    (lambda c: c.replace(optimizer_lr={"sgd": math.inf}), "learning rate of sgd"),
    (lambda c: c.replace(s_const=1.0), "gate s"),
    (lambda c: c.replace(optimizers=("sgd", "sgd")), "optimizers must be distinct"),
    (lambda c: c.replace(cells=("gru", "gru")), "cells must be distinct"),
    (lambda c: c.replace(seeds=(1.5, 2.2)), "seeds must be integers"),
    (lambda c: c.replace(hidden=0), "hidden size H must be ≥ 1"),
    (lambda c: c.replace(optimizer_cell="transformer"), "unknown optimizer_cell 'transformer'"),
])
def test_bad_experiment_configuration(change, words):
    with pytest.raises(ValueError, match=words):
        change(_tiny())


def test_bad_parts_fail_on_construction():
    with pytest.raises(ValueError, match="must not be empty"):
        DiagnosticsConfig(lags=(), n_grid=(1, 2))
    with pytest.raises(ValueError, match="strictly increasing"):
        DiagnosticsConfig(lags=(3, 2), n_grid=(1, 2))
    with pytest.raises(ValueError, match="eps"):
        DiagnosticsConfig(lags=(1,), n_grid=(1, 2), eps=0.0)
    with pytest.raises(ValueError, match=r"\[1, T\)"):
        TaskConfig(T=16, D=2, lags=(16,), coeffs=(1.0,), noise=0.1, n_train=2, n_val=2, n_diag=2)
    with pytest.raises(ValueError, match="learning rate"):
        TrainConfig(lr=0.0)
    assert log_grid(1, 8, 4) == (1, 2, 4, 8)


@pytest.mark.parametrize("lo, hi, n", [(0, 8, 4), (8, 1, 4), (1, 8, 0)])
def test_log_grid_rejects_a_bad_range(lo, hi, n):
    with pytest.raises(ValueError, match="need 1 ≤ lo ≤ hi and n ≥ 1"):
        log_grid(lo, hi, n)


@pytest.mark.parametrize("changes, words", [
    (dict(n_grid=()), "n_grid must be non-empty, ≥ 1 and strictly increasing"),
    (dict(n_grid=(0, 4)), "n_grid must be non-empty, ≥ 1 and strictly increasing"),
    (dict(n_grid=(4, 4)), "n_grid must be non-empty, ≥ 1 and strictly increasing"),
    (dict(directions=0), "directions and batch must be ≥ 1 and mc_replicates ≥ 0"),
    (dict(batch=0), "directions and batch must be ≥ 1 and mc_replicates ≥ 0"),
    (dict(mc_replicates=-1), "directions and batch must be ≥ 1 and mc_replicates ≥ 0"),
])
def test_bad_diagnostics_configuration(changes, words):
    with pytest.raises(ValueError, match=words):
        DiagnosticsConfig(**(dict(lags=(1, 2), n_grid=(1, 2)) | changes))
    DiagnosticsConfig(lags=(1, 2), n_grid=(1, 2), mc_replicates=0)   # 0: no Monte-Carlo check


def test_a_cell_without_a_builder_raises_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"no builder for cell\(s\) \['diaggate'\]"):
        run_experiment(_tiny(), results_dir=tmp_path / "res",
                       builders={"constgate": standin_builder}, progress=False)
    assert not (tmp_path / "res").exists()


def test_training_is_cached_and_resumes(tmp_path, monkeypatch):
    cfg = _tiny()
    first = run_experiment(cfg, results_dir=tmp_path, builders=BUILDERS, diagnose=False,
                           progress=False)
    assert set(first.training) == {("constgate", "adamw"), ("diaggate", "adamw"),
                                   ("diaggate", "sgd")}
    files = sorted((tmp_path / "train").glob("*.pt"))
    assert len(files) == 3
    # a second run trains nothing: every ensemble comes from disk
    import horizon_lib.experiment as ex

    def no_training(*a, **k):
        raise AssertionError("trained again although the result was cached")

    monkeypatch.setattr(ex, "train_ensemble", no_training)
    again = run_experiment(cfg, results_dir=tmp_path, builders=BUILDERS, diagnose=False,
                           progress=False)
    for key, res in first.training.items():
        for name in res.params:
            assert torch.equal(res.params[name], again.training[key].params[name])
    # an interrupted grid: drop one result, only that one is recomputed
    files[0].unlink()
    calls = []
    monkeypatch.setattr(ex, "train_ensemble", lambda *a, **k: calls.append(1) or _real(*a, **k))
    run_experiment(cfg, results_dir=tmp_path, builders=BUILDERS, diagnose=False, progress=False)
    assert calls == [1]
    # a changed configuration never reuses an old result
    calls.clear()
    changed = cfg.replace(train=dataclasses.replace(cfg.train, lr=2e-2), optimizers=())
    run_experiment(changed, results_dir=tmp_path, builders=BUILDERS, diagnose=False, progress=False)
    assert calls == [1, 1]


from horizon_lib.training import train_ensemble as _real  # noqa: E402


def test_an_ensemble_cached_by_another_builder_is_never_handed_to_the_cells(tmp_path):
    # the stand-in's ensemble, cached in the same folder, is not the library cells' result:
    # the keys differ, and loading weights into a model of other parameters raises
    import horizon_lib.experiment as ex

    cfg = _tiny(cells=("gru",), optimizers=())
    out = run_experiment(cfg, results_dir=tmp_path, builders=BUILDERS, diagnose=False,
                         progress=False)
    unit = grid_units(cfg)[0]
    assert ex.unit_cached(cfg, *unit, tmp_path, diagnose=False, builder=standin_builder)
    assert not ex.unit_cached(cfg, *unit, tmp_path, diagnose=False)        # the library's GRU
    real = ex._default_builders()["gru"](cfg.task.D, cfg.hidden, cfg.s_const, torch.Generator())
    with pytest.raises(RuntimeError, match="state_dict"):
        out.training[("gru", cfg.train.optimizer)].model(real, 0)


def test_the_training_revision_is_part_of_the_key(monkeypatch):
    import horizon_lib.experiment as ex

    cfg = _tiny()
    before = ex._train_key(cfg, *grid_units(cfg)[0])
    monkeypatch.setattr(ex, "TRAINING_REVISION", ex.TRAINING_REVISION + 1)
    assert ex._train_key(cfg, *grid_units(cfg)[0]) != before


def test_two_processes_on_one_grid_train_each_unit_once_and_agree_with_one(tmp_path):
    # two runs of the same grid at once (two chapters executed in parallel): however the units
    # fall between them, none is trained twice and the results equal a run alone
    import multiprocessing as mp

    cfg = _tiny()
    ctx = mp.get_context("spawn")
    for i in range(2):
        (tmp_path / f"log{i}").write_text("")      # a process may find everything done
    procs = [ctx.Process(target=_grid_worker,
                         args=(cfg, str(tmp_path / "shared"), str(tmp_path / f"log{i}")))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    trained = [set((tmp_path / f"log{i}").read_text().split()) for i in range(2)]
    assert trained[0] | trained[1] == {"constgate/adamw", "diaggate/adamw", "diaggate/sgd"}
    assert not trained[0] & trained[1]                 # no unit trained twice
    alone = run_experiment(cfg, results_dir=tmp_path / "alone", builders=BUILDERS,
                           diagnose=False, progress=False)
    shared = run_experiment(cfg, results_dir=tmp_path / "shared", builders=BUILDERS,
                            diagnose=False, progress=False)
    assert list(shared.training) == list(alone.training)     # the grid's order
    for key, res in alone.training.items():
        for name in res.params:
            assert torch.equal(res.params[name], shared.training[key].params[name])


def test_a_unit_busy_elsewhere_is_taken_last(tmp_path, monkeypatch):
    # another process holds the lock of the first unit's training: the run trains the free
    # units first and waits for the busy one only when nothing else is left
    import fcntl
    import threading

    import horizon_lib.experiment as ex
    from horizon_lib.cache import ResultCache

    cfg = _tiny()
    units = grid_units(cfg)
    cache = ResultCache(tmp_path, "train")
    cache.folder.mkdir(parents=True)
    order = []
    monkeypatch.setattr(ex, "train_ensemble",
                        lambda *a, desc="", **k: order.append(desc) or _real(*a, desc=desc, **k))
    key = ex._train_key(cfg, *units[0], standin_builder)
    with open(cache.folder / f"{cache.key(key)}.lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert ex.unit_busy(cfg, *units[0], tmp_path, builder=standin_builder)
        assert not ex.unit_busy(cfg, *units[1], tmp_path, builder=standin_builder)
        run = threading.Thread(target=lambda: ex.run_experiment(
            cfg, results_dir=tmp_path, builders=BUILDERS, diagnose=False, progress=False))
        run.start()
        for _ in range(600):                          # the free units finish while it is held
            if len(order) == len(units) - 1:
                break
            run.join(0.1)
        assert len(order) == len(units) - 1 and run.is_alive()   # waiting for the busy unit
    run.join(60)                                      # lock released: it trains the last one
    names = [f"{c}/{t.optimizer}" for c, t in units]
    assert order == names[1:] + names[:1]


def _grid_worker(cfg, results_dir, log):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import horizon_lib.experiment as ex
    from _standin import standin_builder

    real = ex.train_ensemble

    def logged(models, seeds, *args, desc="", **kwargs):
        with open(log, "a") as fh:
            fh.write(desc + "\n")
        return real(models, seeds, *args, desc=desc, **kwargs)

    ex.train_ensemble = logged
    ex.run_experiment(cfg, results_dir=results_dir, diagnose=False, progress=False,
                      builders={c: standin_builder for c in CELLS})


def test_diagnostics_pipeline_on_a_trained_stand_in(tmp_path):
    cfg = _tiny(cells=("diaggate",), optimizers=())
    out = run_experiment(cfg, results_dir=tmp_path, builders=BUILDERS, progress=False)
    d = out.diagnostics[("diaggate", "adamw", cfg.seeds[0])]
    n_lags, n_n = len(cfg.diagnostics.lags), len(cfg.diagnostics.n_grid)
    assert d["f"].shape == (n_lags,) and d["h_largest"].shape == (n_n,)
    largest, contiguous = windows_by_definition(d["lags"], d["n_required"], d["n_grid"])
    assert d["h_largest"].tolist() == largest and d["h_contiguous"].tolist() == contiguous
    assert d["mc_detection"].shape == (n_lags, n_n)
    assert torch.isfinite(d["f"]).all() and (d["f"] > 0).all()
    # the Monte-Carlo check measures N ≤ n/10 of the n pooled samples, NaN beyond
    reach = d["n_grid"].double() <= MC_MAX_FRACTION * d["samples"].shape[1]
    det = d["mc_detection"]
    assert bool(reach.any())
    assert ((det[:, reach] >= 0) & (det[:, reach] <= 1)).all()
    assert torch.isnan(det[:, ~reach]).all()


def test_cli_experiment_subcommand(tmp_path, monkeypatch, capsys):
    import horizon_lib.experiment_grid as grid
    from horizon_lib.cli import main

    seen = {}

    def fake_run(cfg, results_dir, *, executor, scheduler, jobs, device, **k):
        seen.update(cfg=cfg, results_dir=results_dir, device=device, executor=executor, jobs=jobs)
        return grid.GridReport()

    monkeypatch.setattr(grid, "run_grid", fake_run)
    assert main(["--build-dir", str(tmp_path), "experiment", "--profile", "smoke",
                 "--device", "cpu"]) == 0
    assert seen["cfg"] == profile("smoke") and seen["results_dir"] == tmp_path / "results"
    assert seen["executor"] == "local" and seen["jobs"] == 1
    assert main(["experiment", "--profile", "paper", "--results", str(tmp_path / "x"),
                 "--device", "cpu", "--executor", "dask", "--jobs", "3"]) == 0
    assert seen["cfg"].task.T == 1024 and seen["results_dir"] == tmp_path / "x"
    assert seen["executor"] == "dask" and seen["jobs"] == 3
    out = capsys.readouterr().out
    assert "already cached" in out
    assert "best val R²" not in out           # no unit ran here: no header over an empty table


def test_changed_reaches_every_part_by_dotted_name():
    book = profile("book")
    cfg = book.changed({"hidden": 64, "seeds": [1, 2], "train.epochs": 5, "task.T": 256,
                        "task.lags": [4, 8], "task.coeffs": [0.5, 0.4],
                        "diagnostics.eps": "5e-1"})  # YAML reads 5e-1 as text
    assert (cfg.hidden, cfg.seeds, cfg.train.epochs, cfg.task.T) == (64, (1, 2), 5, 256)
    assert cfg.task.lags == (4, 8) and cfg.diagnostics.eps == 0.5
    # everything not named is the profile's
    assert cfg.train.lr == book.train.lr and cfg.diagnostics.lags == book.diagnostics.lags
    assert cfg.task.n_train == book.task.n_train and cfg.cells == book.cells
    assert book.changed({}) == book and book.hidden == 32  # the profile itself is untouched
    assert book.changed({"train.epochs": 7.0}).train.epochs == 7  # an integral float is an int


@pytest.mark.parametrize("changes, message", [
    ({"train.epoch": 3}, "unknown experiment setting 'train.epoch'; did you mean 'train.epochs'"),
    ({"hiden": 3}, "did you mean 'hidden'"),
    ({"task": 3}, "unknown experiment setting 'task'"),
    ({"zzz.qqq": 1}, "known: cells, seeds, hidden"),
    ({"train.lr": -1.0}, "learning rate lr must be > 0"),
    ({"train.epochs": 2.5}, "must be an integer"),
    ({"task.T": "long"}, "'task.T' must be a number"),
    ({"diagnostics.lags": [1, 200]}, r"diagnostic lags must lie in \[1, T\)"),
    ({"train.eps": -1}, "eps .* must be finite and > 0"),
    ({"cells": "gru"}, r"'cells' must be a list, e.g. \['gru'\]"),
    ({"hidden": True}, "'hidden' must be a number"),
    ({"seeds": [1.5, 2]}, "'seeds' must be an integer"),
    # a value of the right outer form whose parts a check cannot compare: the TypeError it
    # raises comes back as a ValueError naming the settings
    ({"task.lags": [[4, 8]]}, r"experiment settings \{'task.lags': \[\[4, 8\]\]\}: int\(\)"),
    ({"train.betas": [0.9, None]}, r"experiment settings .*'<=' not supported"),
])
def test_changed_rejects_unknown_names_and_bad_values_before_training(changes, message):
    with pytest.raises(ValueError, match=message):
        profile("book").changed(changes)


def test_setting_names_are_the_names_changed_accepts():
    from horizon_lib.experiment_config import setting_names

    names = setting_names()
    assert {"hidden", "seeds", "train.epochs", "task.T", "diagnostics.eps"} <= set(names)
    assert not {"task", "train", "diagnostics"} & set(names)
    book = profile("book")
    for name in names:  # each one is accepted with the profile's own value
        part, _, field = name.rpartition(".")
        value = getattr(getattr(book, part) if part else book, field)
        assert book.changed({name: value}) == book, name


def test_cli_experiment_set_changes_the_profile(tmp_path, monkeypatch, capsys):
    import horizon_lib.experiment_grid as grid
    from horizon_lib.cli import main

    seen = {}
    monkeypatch.setattr(grid, "run_grid",
                        lambda cfg, *a, **k: seen.update(cfg=cfg) or grid.GridReport())
    assert main(["--build-dir", str(tmp_path), "experiment", "--profile", "smoke",
                 "--set", "train.epochs", "1", "--set", "seeds", "[5, 6, 7]",
                 "--device", "cpu"]) == 0
    assert seen["cfg"] == profile("smoke").changed({"train.epochs": 1, "seeds": [5, 6, 7]})
    seen.clear()
    assert main(["--build-dir", str(tmp_path), "experiment", "--profile", "smoke",
                 "--set", "train.epoch", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert not seen and len(err.splitlines()) == 1 and "did you mean 'train.epochs'" in err


def test_book_epsilon_is_the_principled_constant_for_gaussian_noise():
    from horizon_lib.detection_constant import detection_epsilon

    # chapter concentration: ε = q_{1−δ}(|S|); δ = 0.1 and α = 2 give √2 Φ⁻¹(0.95) = 2.326…
    assert profile("book").diagnostics.eps == pytest.approx(detection_epsilon(0.1, 2.0), abs=0.005)
    assert profile("paper").diagnostics.eps == 0.1    # the Feb-2026 release's threshold


def test_rank_correlation_matches_scipy_and_is_nan_where_undefined():
    import math
    import warnings

    from scipy.stats import spearmanr

    from horizon_lib.experiment_report import rank_correlation

    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(40, generator=g), torch.randn(40, generator=g)
    assert rank_correlation(x, y) == pytest.approx(spearmanr(x.numpy(), y.numpy()).statistic)
    assert rank_correlation([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    # two adjacent swaps among five: 1 − 6·4/120 = 0.8 exactly, so a bound of 0.8 holds
    assert rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) >= 0.8
    assert rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 5, 3]) == 0.6     # Σd² = 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no ConstantInputWarning either
        assert math.isnan(rank_correlation([0.1, 0.1, 0.1], [1.0, 2.0, 3.0]))
        assert math.isnan(rank_correlation([1.0, 2.0, 3.0], [12.0, 12.0, 12.0]))
        assert math.isnan(rank_correlation([1.0, 2.0], [2.0, 1.0]))
    with pytest.raises(ValueError, match="pair up"):
        rank_correlation([1.0, 2.0, 3.0], [1.0, 2.0])


def _exponential_results(taus_by_seed):
    """ExperimentResults of the smoke profile whose diaggate/adamw diagnostics are exact
    exponentials: unit q of a seed has μ^{(q)}(ℓ) = e^{−ℓ/τ_q}, and f(ℓ) = e^{−ℓ/τ_0}."""
    from horizon_lib.experiment import ExperimentResults

    cfg = profile("smoke")
    lags = torch.tensor(cfg.diagnostics.lags, dtype=torch.float64)
    diagnostics = {}
    for seed in reversed(cfg.seeds):            # stored out of order: stacking follows the seeds
        tau = torch.tensor(taus_by_seed[seed], dtype=torch.float64)
        diagnostics[("diaggate", "adamw", seed)] = {
            "lags": lags, "unit_envelope": torch.exp(-lags[:, None] / tau),
            "f": torch.exp(-lags / tau[0])}
    return ExperimentResults(cfg, {}, diagnostics), lags


def test_time_scales_of_exact_exponentials_come_back():
    from horizon_lib.experiment_report import (
        constgate_timescale,
        fit_timescale,
        stack_over_seeds,
        unit_timescales,
    )

    taus = {0: [5.0, 20.0, 5.0], 1: [20.0, 5.0, 7.5]}          # smoke seeds (0, 1)
    results, lags = _exponential_results(taus)
    f = stack_over_seeds(results, "diaggate", "adamw", "f")
    assert f.shape == (2, len(lags))
    torch.testing.assert_close(f, torch.stack([torch.exp(-lags / 5.0), torch.exp(-lags / 20.0)]),
                               rtol=0, atol=0)
    assert stack_over_seeds(results, "diaggate", "adamw", "unit_envelope").shape == (2, 5, 3)
    for seed in (0, 1):
        torch.testing.assert_close(unit_timescales(results.diagnostics[("diaggate", "adamw",
                                                                        seed)]),
                                   torch.tensor(taus[seed], dtype=torch.float64),
                                   rtol=1e-12, atol=0)
    assert fit_timescale(lags, f[0]).item() == pytest.approx(5.0, rel=1e-12)
    assert fit_timescale(lags, f[1]).item() == pytest.approx(20.0, rel=1e-12)
    # a constant gate s retains (1 − s)^ℓ = e^{−ℓ/τ} with τ = −1/log(1 − s)
    s = 0.05
    assert constgate_timescale(s) == pytest.approx(-1 / math.log(1 - s), rel=1e-15)
    assert fit_timescale(lags, (1 - s) ** lags).item() == pytest.approx(constgate_timescale(s),
                                                                          rel=1e-12)
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\)"):
        constgate_timescale(1.0)


def test_glue_profile_facts_glues_each_fact_under_its_profile(monkeypatch):
    import myst_nb

    from horizon_lib.experiment_report import glue_profile_facts, profile_facts

    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True:
                        glued.append((name, value, display)))
    out = glue_profile_facts("smoke", "paper")
    want = {f"{p}_{k}": v for p in ("smoke", "paper") for k, v in profile_facts(p).items()}
    assert out == want and len(want) == 2 * len(profile_facts("smoke"))
    assert glued == [(name, value, False) for name, value in want.items()]
    # plain Python values: myst-nb cannot format np.float64(…) in the page text
    assert all(type(v) in (int, float, str) for v in out.values())


def test_load_or_run_applies_changes_and_says_what_ran(monkeypatch, capsys):
    import horizon_lib.experiment as experiment
    from horizon_lib.experiment_report import load_or_run

    monkeypatch.setattr(experiment, "run_experiment", lambda cfg, **k: cfg)
    cfg = load_or_run("smoke", changes={"hidden": 4, "train.epochs": 1}, progress=False)
    assert cfg == profile("smoke").changed({"hidden": 4, "train.epochs": 1})
    assert capsys.readouterr().out.strip() == (
        "experiment: the smoke profile with hidden = 4, train.epochs = 1")
    assert load_or_run("smoke", progress=False) == profile("smoke")  # no changes: the profile
    assert capsys.readouterr().out == ""


def test_training_work_counts_sequence_steps_times_hidden_units_over_the_grid():
    from horizon_lib.experiment_config import training_work

    cfg = _tiny()
    per_epoch = cfg.task.n_train * cfg.task.T * cfg.hidden * len(cfg.seeds)
    assert training_work(cfg) == per_epoch * cfg.train.epochs * len(grid_units(cfg))
    assert training_work(cfg.changed({"train.epochs": 2 * cfg.train.epochs})) == (
        2 * training_work(cfg))


def test_a_configuration_far_larger_than_the_book_warns_before_training_on_cpu(tmp_path):
    import warnings

    from horizon_lib.experiment import warn_if_heavy_for_cpu

    def work(c):  # sequences · steps · hidden units · seeds · epochs · (cell, optimizer) units
        return (c.task.n_train * c.task.T * c.hidden * len(c.seeds) * c.train.epochs
                * len(grid_units(c)))

    paper, book = profile("paper"), profile("book")
    # today 8000·1024·128·5·750·7 / (768·128·32·3·20·7) = 20,833.3, far past the warning's 20×
    ratio = f"{work(paper) / work(book):,.0f}"
    with pytest.warns(UserWarning, match=ratio + r"× the work of the book profile.*GPU"):
        warn_if_heavy_for_cpu(paper, "cpu", tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_heavy_for_cpu(profile("book"), "cpu", tmp_path)  # the book itself: silent
        warn_if_heavy_for_cpu(profile("book").changed({"train.epochs": 200}), "cpu", tmp_path)
    assert caught == []  # 10× the book's work is under the threshold


def test_the_heavy_configuration_warning_is_silent_when_everything_is_cached(tmp_path,
                                                                              monkeypatch):
    import warnings

    import horizon_lib.experiment as experiment

    monkeypatch.setattr(experiment, "unit_cached", lambda *a, **k: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        experiment.warn_if_heavy_for_cpu(profile("paper"), "cpu", tmp_path)
    assert caught == []


def test_a_unit_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    # checkpoints every epoch (CHECKPOINT_SECONDS = 0); the first run dies after epoch 0's
    # save, the second resumes from epoch 1 and caches what an uninterrupted run caches
    import horizon_lib.experiment as ex
    from horizon_lib.cache import ResultCache

    cfg = _tiny(cells=("diaggate",), optimizers=())
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, epochs=3))
    whole = run_experiment(cfg, results_dir=tmp_path / "whole", builders=BUILDERS,
                           diagnose=False, progress=False)
    monkeypatch.setattr(ex, "CHECKPOINT_SECONDS", 0.0)
    real = ex.train_ensemble
    seen = []

    def dies_after_first_save(*a, checkpoint=None, resume=None, **k):
        seen.append(None if resume is None else int(resume["epoch"]))

        def wrapped(epoch, snapshot):
            checkpoint(epoch, snapshot)
            if resume is None and epoch == 0:
                raise KeyboardInterrupt("killed")
        return real(*a, checkpoint=wrapped, resume=resume, **k)

    monkeypatch.setattr(ex, "train_ensemble", dies_after_first_save)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, results_dir=tmp_path / "cut", builders=BUILDERS, diagnose=False,
                       progress=False)
    key = ex._train_key(cfg, *grid_units(cfg)[0], standin_builder)
    cache = ResultCache(tmp_path / "cut", "train")
    assert cache.partial_path(key).exists() and key not in cache
    again = run_experiment(cfg, results_dir=tmp_path / "cut", builders=BUILDERS,
                           diagnose=False, progress=False)
    assert seen == [None, 0]                             # the second run resumed after epoch 0
    assert not cache.partial_path(key).exists()          # and the partial state is gone
    a, b = whole.training[("diaggate", "adamw")], again.training[("diaggate", "adamw")]
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name])
    assert torch.equal(a.val_loss, b.val_loss) and torch.equal(a.best_epoch, b.best_epoch)


def _library_cells_on(device, results_dir):
    """The library's DiagGate through the whole pipeline (task, batched training, diagnostics,
    cache) on ``device``; the results as they come back."""
    cfg = _tiny(cells=("diaggate",), optimizers=())
    return cfg, run_experiment(cfg, results_dir=results_dir, device=device, progress=False)


def _assert_same_experiment(cfg, got, want, rtol):
    for key, ref in want.training.items():
        res = got.training[key]
        torch.testing.assert_close(res.val_loss.cpu(), ref.val_loss, rtol=rtol, atol=0.0)
        for name in ref.params:
            torch.testing.assert_close(res.params[name].cpu(), ref.params[name], rtol=rtol,
                                       atol=rtol)
    assert got.diagnostics.keys() == want.diagnostics.keys()
    for key, ref in want.diagnostics.items():
        d = got.diagnostics[key]
        torch.testing.assert_close(d["f"].cpu(), ref["f"], rtol=rtol, atol=0.0)
        # the windows are step functions of N̂(ℓ): each must follow its definition on its own
        largest, contiguous = windows_by_definition(d["lags"].cpu(), d["n_required"].cpu(),
                                                    d["n_grid"].cpu())
        assert d["h_largest"].cpu().tolist() == largest
        assert d["h_contiguous"].cpu().tolist() == contiguous
    assert len(want.diagnostics) == len(cfg.seeds)


def test_the_pipeline_run_twice_on_cpu_gives_identical_results(tmp_path):
    # the body of the CUDA test below, on the CPU, where the two runs must agree exactly
    cfg, a = _library_cells_on("cpu", tmp_path / "a")
    _, b = _library_cells_on("cpu", tmp_path / "b")
    _assert_same_experiment(cfg, b, a, rtol=0.0)


@cuda
def test_the_whole_pipeline_runs_on_cuda_like_on_cpu(tmp_path):
    # float32 on both devices, a few epochs: the order of the reductions differs
    cfg, cpu = _library_cells_on("cpu", tmp_path / "cpu")
    _, gpu = _library_cells_on("cuda", tmp_path / "gpu")
    _assert_same_experiment(cfg, gpu, cpu, rtol=1e-3)
