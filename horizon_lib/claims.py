"""Claims: each chapter checks the paper's statements with ``claim(...)`` and the ledger
collects them.

``claim`` compares a measured number with the paper's prediction, glues both into the page (so
prose quotes them and never types them), shows a verdict box, and carries a machine-readable row
in the same output. The runner reads the rows back from the executed notebook and keeps them in
the ledger ``_build/claims.json``; :func:`format_table` prints it and the book shows it.

A claim that fails raises :class:`ClaimFailed` (the notebook stops there and the ledger says so),
unless the chapter passes ``finding=``: a documented non-reproduction, recorded with the verdict
``not reproduced`` and the chapter's explanation. That verdict is shown, never hidden.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "CLAIM_MIME",
    "ClaimFailed",
    "claim",
    "read_ledger",
    "write_ledger",
    "merge_ledger",
    "format_table",
    "FAILING_VERDICTS",
    "OPS",
    "VERDICT_MARKS",
    "format_value",
    "interval_reading",
]

CLAIM_MIME = "application/vnd.horizon.claim+json"
RUN_CONTEXT_ENV = "HORIZON_RUN_CONTEXT"
FAILING_VERDICTS = ("fail", "error")
OPS = {"close": "≈", "le": "≤", "ge": "≥", "eq": "="}
#: How each verdict is shown, in the verdict box and on the ledger and map pages.
VERDICT_MARKS = {"pass": "✔ pass", "fail": "✘ fail", "error": "✘ error",
                 "not reproduced": "⚠ not reproduced"}


class ClaimRecord(dict):
    """A ledger row as returned by :func:`claim`; shows nothing more in a notebook (the verdict
    box is already on the page), so a claim as a cell's last line leaves no raw dict behind."""

    def _ipython_display_(self) -> None:
        return None


class ClaimFailed(AssertionError):
    """A chapter's claim did not hold; the message gives measured, predicted and tolerance."""


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar (or list) from numpy/torch scalars and arrays."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return float(value)


def _to_payload(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name: "nan", "inf" or "-inf".

    Strict JSON has no NaN or ±∞; jupyter_client only warns, for now, about a message that holds
    one and rewrites it (a NaN became ``null`` in the ledger, indistinguishable from "no value").
    """
    if isinstance(value, list):
        return [_to_payload(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def payload_row(row: dict) -> dict:
    """A ledger row as the notebook output and ``claims.json`` carry it: strict JSON, with a
    non-finite measured or predicted value written as its name (``float(name)`` reads it back)."""
    return {**row, "measured": _to_payload(row["measured"]),
            "predicted": _to_payload(row["predicted"])}


def _holds(measured, predicted, op: str, rtol: float, atol: float) -> bool:
    if op == "eq":
        return measured == predicted
    m, p = float(measured), float(predicted)
    if math.isnan(m):
        return False
    if op == "le":
        return m <= p
    if op == "ge":
        return m >= p
    return abs(m - p) <= atol + rtol * abs(p)


def interval_reading(low: float, high: float, predicted: float, null: float = 0.0) -> str:
    """How a confidence interval [low, high] of a measured value decides a claim of
    ``predicted`` against the ``null`` value of no effect (a slope of 0: no dependence).

    Returns one of
    * ``"holds"``: the interval contains ``predicted`` and excludes ``null``;
    * ``"undecided"``: it contains both, so the data cannot tell them apart (inconclusive);
    * ``"excludes"``: it excludes ``predicted`` and ``null``;
    * ``"excludes, holds null"``: it excludes ``predicted`` and contains ``null``.
    A NaN bound reads as ``"undecided"``.

    >>> interval_reading(0.8, 1.3, 1.0), interval_reading(-0.5, 2.0, 1.0)
    ('holds', 'undecided')
    >>> interval_reading(-0.009, 0.084, 1.0), interval_reading(1.1, 2.5, 1.0)
    ('excludes, holds null', 'excludes')

    Raises:
        ValueError: low > high.
    """
    if math.isnan(low) or math.isnan(high):
        return "undecided"
    if low > high:
        raise ValueError(f"an interval needs low ≤ high; got [{low}, {high}]")
    holds_predicted = low <= predicted <= high
    holds_null = low <= null <= high
    if holds_predicted:
        return "undecided" if holds_null else "holds"
    return "excludes, holds null" if holds_null else "excludes"


def _tolerance_text(op: str, rtol: float, atol: float, finding: str | None = None) -> str:
    if op != "close":
        return f"measured {OPS[op]} predicted"
    parts = [f"atol {atol:.4g}" if atol else "", f"rtol {rtol:.4g}" if rtol else ""]
    if not any(parts) and finding:
        # a zero tolerance beside a finding is how a chapter marks a claim it cannot decide
        return "none (inconclusive, see the finding)"
    return " + ".join(p for p in parts if p) or "exact"


def _run_context() -> dict:
    raw = os.environ.get(RUN_CONTEXT_ENV)
    return json.loads(raw) if raw else {}


def _device_text(context: dict) -> str:
    params = context.get("parameters", {})
    device = str(params.get("device", "cpu"))
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return f"{device} ({torch.cuda.get_device_name()})"
    return f"{device} ({platform.machine()}, {os.cpu_count()} cores)"


def claim(
    name: str,
    *,
    measured,
    predicted,
    statement: str,
    op: str = "close",
    rtol: float = 0.0,
    atol: float = 0.0,
    why_tolerance: str = "",
    finding: str | None = None,
) -> dict:
    """Check one claim of the paper, glue its numbers into the page and record a ledger row.

    Args:
        name: identifier, unique within the chapter (``concentration-rate-alpha-1.5``).
        measured: the number (or bool) this build measured.
        predicted: the paper's prediction, or the bound for ``op="le"``/``"ge"``.
        statement: one sentence saying what is claimed.
        op: ``"close"`` (|measured − predicted| ≤ atol + rtol·|predicted|), ``"le"``, ``"ge"``
            or ``"eq"``.
        rtol, atol: tolerances for ``op="close"``; ``why_tolerance`` says where they come from.
        finding: for a claim the chapter shows does *not* reproduce: the explanation. The verdict
            is then ``not reproduced`` and no exception is raised. A chapter may pass it
            unconditionally: on a pass it is dropped (it explains a departure that did not occur).

    Returns:
        The ledger row (a dict).

    Raises:
        ClaimFailed: the claim does not hold and no ``finding`` was given.
        ValueError: an unknown ``op`` or a negative tolerance.

    The numbers are glued as ``<name>.measured`` and ``<name>.predicted`` for ``{glue:text}``.
    """
    if op not in OPS:
        raise ValueError(f"op must be one of {sorted(OPS)}; got {op!r}")
    if rtol < 0 or atol < 0:
        raise ValueError("tolerances rtol and atol must be ≥ 0")
    measured, predicted = _plain(measured), _plain(predicted)
    holds = _holds(measured, predicted, op, rtol, atol)
    if holds:
        finding = None
    verdict = "pass" if holds else ("not reproduced" if finding else "fail")
    context = _run_context()
    from . import __version__

    row = ClaimRecord({
        "notebook": context.get("notebook"),
        "claim": name,
        "statement": statement,
        "op": op,
        "predicted": predicted,
        "measured": measured,
        "tolerance": _tolerance_text(op, rtol, atol, finding),
        "why_tolerance": why_tolerance,
        "verdict": verdict,
        "finding": finding,
        "profile": context.get("profile", "interactive"),
        "parameters": context.get("parameters", {}),
        "seed": context.get("parameters", {}).get("seed"),
        "library_version": __version__,
        "device": _device_text(context),
    })
    _display(row)
    if verdict == "fail":
        raise ClaimFailed(
            f"claim {name!r} failed: measured {measured!r} {OPS[op]} predicted {predicted!r} "
            f"does not hold ({row['tolerance']}). {statement}"
        )
    return row


def format_value(v) -> str:
    """A measured or predicted value as shown in tables: floats to 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _display(row: dict) -> None:
    """Glue measured/predicted and show the verdict box carrying the machine-readable row."""
    from IPython.display import display

    try:
        from myst_nb import glue
    except ImportError:  # outside a notebook toolchain: the verdict box alone is enough
        glue = None
    if glue is not None:
        glue(f"{row['claim']}.measured", row["measured"], display=False)
        glue(f"{row['claim']}.predicted", row["predicted"], display=False)
    mark = VERDICT_MARKS[row["verdict"]]
    op = OPS[row["op"]]
    text = (
        f"**Claim `{row['claim']}`: {mark}.** {row['statement']}  \n"
        f"measured {format_value(row['measured'])} {op} predicted {format_value(row['predicted'])} "
        f"({row['tolerance']})"
    )
    if row["why_tolerance"]:
        text += f"; {row['why_tolerance']}"
    if row["finding"]:
        text += f"  \n*Finding:* {row['finding']}"
    plain = text.replace("**", "").replace("`", "")
    display({"text/markdown": text, "text/plain": plain, CLAIM_MIME: payload_row(row)}, raw=True)


# --------------------------------------------------------------------------- the ledger


def read_ledger(path: str | os.PathLike) -> list[dict]:
    """The rows of a ledger file, or an empty list when there is none yet."""
    path = Path(path)
    if not path.exists():
        return []
    return json.loads(path.read_text())["rows"]


def write_ledger(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write the ledger atomically: a crash never leaves a half-written ``claims.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".claims-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"rows": rows}, fh, indent=1, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_ledger(old: list[dict], new: list[dict], notebooks: Iterable[str]) -> list[dict]:
    """Replace the rows of ``notebooks`` in ``old`` by ``new``; other notebooks' rows stay."""
    replaced = set(notebooks)
    kept = [r for r in old if r.get("notebook") not in replaced]
    return sorted(kept + list(new), key=lambda r: (str(r.get("notebook")), ))


def format_table(rows: list[dict], changed: set | None = None) -> str:
    """A plain-text table: notebook, profile, claim, predicted, measured, verdict (a ledger can
    hold chapters run in different profiles, since ``horizon run`` replaces one chapter's rows).

    ``changed`` holds the indices of rows run with parameter values other than their profile's;
    their profile is starred and a last line says what the star means."""
    changed = changed or set()
    header = ("notebook", "profile", "claim", "predicted", "measured", "verdict")
    body = [
        (str(r.get("notebook")), str(r.get("profile", "—")) + ("*" if i in changed else ""),
         str(r["claim"]),
         f"{OPS.get(r.get('op'), '')} {format_value(r['predicted'])}".strip(),
         format_value(r["measured"]),
         r["verdict"])
        for i, r in enumerate(rows)
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines = [line(header), line(tuple("-" * w for w in widths))] + [line(b) for b in body]
    if changed:
        lines.append("* run with parameter values other than the profile's (the ledger's "
                     "'parameters' field has them)")
    return "\n".join(lines)
