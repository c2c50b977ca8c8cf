"""The claim helper and the ledger: verdicts, raising, atomic writes, the table."""

import json

import pytest

from horizon_lib.claims import (
    ClaimFailed,
    claim,
    format_table,
    interval_reading,
    merge_ledger,
    read_ledger,
    write_ledger,
)


def test_close_claim_passes_within_tolerance_and_fails_outside():
    row = claim("x", measured=1.04, predicted=1.0, atol=0.05, statement="s")
    assert row["verdict"] == "pass" and row["tolerance"] == "atol 0.05"
    with pytest.raises(ClaimFailed, match="x"):
        claim("x", measured=1.06, predicted=1.0, atol=0.05, statement="s")


def test_tolerance_is_shown_to_four_significant_digits_like_the_values():
    row = claim("t", measured=0.889, predicted=0.9, atol=4 * 0.00670820393, statement="s")
    assert row["tolerance"] == "atol 0.02683"
    assert claim("u", measured=1.0, predicted=1.0, rtol=1 / 3, statement="s")["tolerance"] == (
        "rtol 0.3333")


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


def test_a_finding_passed_with_a_claim_that_holds_is_dropped():
    # it explains a departure; on a pass there is none to explain
    row = claim("f-holds", measured=1.05, predicted=1.0, atol=0.1, statement="s",
                finding="short products exceed the bound")
    assert row["verdict"] == "pass" and row["finding"] is None
    assert row["tolerance"] == "atol 0.1"


def test_zero_tolerance_with_a_finding_reads_as_inconclusive_not_exact():
    row = claim("c-undecided", measured=0.7, predicted=1.0, atol=0.0, statement="s",
                finding="the interval contains 0: inconclusive")
    assert row["verdict"] == "not reproduced"
    assert row["tolerance"] == "none (inconclusive, see the finding)"
    assert claim("c-exact", measured=3, predicted=3.0, statement="s")["tolerance"] == "exact"


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
    rows = [
        dict(notebook="a", claim="c1", op="close", predicted=1.0, measured=1.01, verdict="pass"),
        dict(notebook="b", claim="c2", op="le", predicted=0.1, measured=0.3, verdict="fail",
             profile="smoke")]
    write_ledger(path, rows)
    assert read_ledger(path) == rows
    assert [p.name for p in tmp_path.iterdir()] == ["claims.json"]  # no temporary left behind
    new = [dict(notebook="a", claim="c3", op="eq", predicted=True, measured=True, verdict="pass")]
    merged = merge_ledger(rows, new, ["a"])
    assert [r["claim"] for r in merged] == ["c3", "c2"]
    table = format_table(merged)
    assert table.splitlines()[0].split() == ["notebook", "profile", "claim", "predicted",
                                             "measured", "verdict"]
    assert table.splitlines()[2].split() == ["a", "—", "c3", "=", "True", "True", "pass"]
    assert table.splitlines()[3].split() == ["b", "smoke", "c2", "≤", "0.1", "0.3", "fail"]


def test_nonfinite_values_travel_as_strict_json_by_name(monkeypatch):
    """A NaN or infinite measured value (a statistic undefined at a small profile) must leave the
    notebook's output and the ledger strict JSON, and still say which value it was."""
    import math

    import IPython.display
    import nbformat

    from horizon_lib.claims import CLAIM_MIME, format_value
    from horizon_lib.runner import scrape_claims

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    row = claim("undefined", measured=float("nan"), predicted=0.8, op="ge", statement="s",
                finding="ρ is undefined when every cell has the same window")
    assert math.isnan(row["measured"])            # the caller still gets the float
    claim("unbounded", measured=[1.0, float("inf"), -math.inf], predicted=[1.0, 2.0, 3.0],
          op="eq", statement="s", finding="a lag that no budget on the grid detects")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("display_data", data=d) for d in shown])])
    rows = scrape_claims(nb)
    json.dumps(rows, allow_nan=False)             # strict JSON: raises on NaN or ±inf
    assert [d[CLAIM_MIME] for d in shown] == rows
    assert rows[0]["measured"] == "nan" and rows[0]["predicted"] == 0.8
    assert rows[1]["measured"] == [1.0, "inf", "-inf"]
    assert [float(v) for v in rows[1]["measured"]] == [1.0, math.inf, -math.inf]
    assert format_value(rows[0]["measured"]) == "nan"


@pytest.mark.parametrize("low, high, reading", [
    (0.8, 1.3, "holds"),                     # contains 1, excludes 0
    (1.0, 1.3, "holds"),                     # the bounds are inside
    (-0.5, 2.0, "undecided"),                # contains both
    (0.0, 1.0, "undecided"),
    (-0.009, 0.084, "excludes, holds null"),  # the book's SharedGate master slope
    (1.1, 2.5, "excludes"),
    (-1.5, -0.2, "excludes"),                # a negative slope, clear of 0 too
    (float("nan"), 1.2, "undecided"),
])
def test_interval_reading_on_known_intervals(low, high, reading):
    assert interval_reading(low, high, 1.0) == reading


def test_interval_reading_rejects_an_inverted_interval():
    with pytest.raises(ValueError, match="low ≤ high"):
        interval_reading(2.0, 1.0, 1.0)
