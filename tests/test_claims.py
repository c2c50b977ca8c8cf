"""The claim helper and the ledger: verdicts, raising, atomic writes, the table."""

import json

import pytest

from horizon_lib.claims import (
    ClaimFailed,
    claim,
    format_table,
    merge_ledger,
    read_ledger,
    write_ledger,
)


def test_close_claim_passes_within_tolerance_and_fails_outside():
    row = claim("x", measured=1.04, predicted=1.0, atol=0.05, statement="s")
    assert row["verdict"] == "pass" and row["tolerance"] == "atol 0.05"
    with pytest.raises(ClaimFailed, match="x"):
        claim("x", measured=1.06, predicted=1.0, atol=0.05, statement="s")


def test_rtol_and_bounds():
    assert claim("r", measured=110.0, predicted=100.0, rtol=0.1, statement="s")["verdict"] == "pass"
    assert claim("le", measured=0.004, predicted=0.005, op="le", statement="s")["verdict"] == "pass"
    with pytest.raises(ClaimFailed):
        claim("ge", measured=0.1, predicted=0.2, op="ge", statement="s")
    assert claim("eq", measured=True, predicted=True, op="eq", statement="s")["verdict"] == "pass"


def test_nan_never_passes():
    with pytest.raises(ClaimFailed):
        claim("n", measured=float("nan"), predicted=0.0, atol=1e9, statement="s")


def test_documented_finding_does_not_raise_but_is_marked():
    row = claim("f", measured=2.0, predicted=1.0, atol=0.1, statement="s",
                finding="the book profile is too small")
    assert row["verdict"] == "not reproduced" and row["finding"]


def test_numpy_and_torch_scalars_become_plain_json():
    import numpy as np
    import torch

    row = claim("t", measured=torch.tensor(0.5), predicted=np.float32(0.5), statement="s")
    json.dumps(row)
    assert isinstance(row["measured"], float)


def test_bad_op_or_tolerance():
    with pytest.raises(ValueError, match="op"):
        claim("b", measured=1, predicted=1, op="~", statement="s")
    with pytest.raises(ValueError, match="tolerance"):
        claim("b", measured=1, predicted=1, atol=-1, statement="s")


def test_ledger_roundtrip_merge_and_table(tmp_path):
    path = tmp_path / "claims.json"
    assert read_ledger(path) == []
    rows = [dict(notebook="a", claim="c1", op="close", predicted=1.0, measured=1.01, verdict="pass"),
            dict(notebook="b", claim="c2", op="le", predicted=0.1, measured=0.3, verdict="fail")]
    write_ledger(path, rows)
    assert read_ledger(path) == rows
    assert [p.name for p in tmp_path.iterdir()] == ["claims.json"]  # no temporary left behind
    new = [dict(notebook="a", claim="c3", op="eq", predicted=True, measured=True, verdict="pass")]
    merged = merge_ledger(rows, new, ["a"])
    assert [r["claim"] for r in merged] == ["c3", "c2"]
    table = format_table(merged)
    assert "c2" in table and "fail" in table and table.splitlines()[0].startswith("notebook")
