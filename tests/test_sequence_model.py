"""The five real cells through the experiment's adapter: trainer, diagnostics, whole smoke grid."""

import pytest
import torch

from conftest import windows_by_definition
from horizon_lib.experiment import run_experiment
from horizon_lib.experiment_config import CELLS, profile
from horizon_lib.sequence_model import build_model
from horizon_lib.training import TrainConfig, train_ensemble, train_reference


@pytest.mark.parametrize("cell", CELLS)
def test_adapter_terms_and_batched_training_match_single_runs(cell):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 10, 3, generator=g, dtype=torch.float64)
    y = torch.randn(16, 10, 1, generator=g, dtype=torch.float64)
    models = [build_model(cell, 3, 4, 0.05, torch.Generator().manual_seed(s)).double()
              for s in (0, 1)]
    terms = models[0](x, return_terms=True)
    assert terms["state"].shape == terms["d"].shape == (16, 10, 4)
    assert (terms["e"] is not None) == (cell == "lstm")
    if cell == "constgate":   # theory/gates: d_t = 1 − s exactly
        torch.testing.assert_close(terms["d"], torch.full_like(terms["d"], 0.95))
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2)
    res = train_ensemble(models, [0, 1], x, y, x, y, cfg, progress=False)
    compared = 0
    for m, seed in enumerate((0, 1)):
        if int(res.best_epoch[m]) != cfg.epochs - 1:   # the kept weights are the final ones
            continue
        compared += 1
        ref = train_reference(models[m], seed, x, y, cfg)
        for name, p in ref.named_parameters():
            # float64; 4 AdamW steps of rounding between the two code paths
            torch.testing.assert_close(res.params[name][m], p.detach(), rtol=1e-9, atol=1e-11)
    assert compared >= 1, "validation on the training split should improve at lr 1e−2"


def test_smoke_grid_with_the_real_cells(tmp_path):
    cfg = profile("smoke").replace(optimizers=("sgd",))
    out = run_experiment(cfg, results_dir=tmp_path, progress=False)
    assert set(out.training) == {(c, "adamw") for c in CELLS} | {("diaggate", "sgd")}
    for (cell, opt, seed), d in out.diagnostics.items():
        assert torch.isfinite(d["f"]).all() and (d["f"] > 0).all(), (cell, opt, seed)
        largest, contiguous = windows_by_definition(d["lags"], d["n_required"], d["n_grid"])
        assert d["h_largest"].tolist() == largest and d["h_contiguous"].tolist() == contiguous


@pytest.mark.parametrize("cell", CELLS)
def test_fast_readout_equals_the_cells_forward(cell):
    model = build_model(cell, 3, 4, 0.05, torch.Generator().manual_seed(2)).double()
    x = torch.randn(5, 9, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(model(x), model.cell(x).y, rtol=0, atol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_state_alone_equals_the_state_of_the_terms(cell):
    # the JVP differentiates model(x, return_state=True): it must be the terms' transported state
    model = build_model(cell, 3, 4, 0.05, torch.Generator().manual_seed(2)).double()
    x = torch.randn(5, 9, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    state = model(x, return_state=True)
    torch.testing.assert_close(state, model(x, return_terms=True)["state"], rtol=0, atol=0)
    if cell == "lstm":                                   # the cell state c, not h
        assert not torch.allclose(state, model.cell(x).h)


def test_an_unknown_cell_name_raises():
    with pytest.raises(ValueError, match="unknown cell 'transformer'; choose from"):
        build_model("transformer", 3, 4, 0.05)
