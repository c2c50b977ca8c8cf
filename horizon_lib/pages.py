"""Book pages generated at build time from what the build produced, never typed by hand.

- the **claims ledger** (``book/claims.md``): every claim row of ``claims.json``, by chapter;
- the **map** (``book/map.md``): each object of the paper (``book/paper_map.yml``) → the chapters
  that reproduce it → their claims and current verdicts;
- the **findings** of the introduction (``book/intro.md``): the build's verdicts in brief;
- the **status** page (``book/status.md``): versions, hardware, profile, per-notebook wall time.

Each source page holds the marker ``<!-- generated -->`` where the generated Markdown goes.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from importlib import metadata
from pathlib import Path

import nbformat
import yaml

from .claims import OPS, VERDICT_MARKS, format_value

__all__ = [
    "MARKER", "ledger_markdown", "map_markdown", "status_markdown", "fill_marker", "toc_chapters",
    "notebook_title", "findings_markdown",
]

MARKER = "<!-- generated -->"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _chapter_link(name: str | None) -> str:
    return f"{{doc}}`/notebooks/{name}`" if name else "—"


def ledger_markdown(rows: list[dict], titles: dict[str, str] | None = None) -> str:
    """The ledger: a summary per chapter, then each chapter's claims under its own heading.

    Each claim row gives the claim's name and statement (and, for ``not reproduced``, the
    chapter's finding), predicted, measured, tolerance and verdict. Chapters keep the order in
    which ``rows`` first names them; ``titles`` (notebook → title) names their headings, which
    otherwise are the notebook names.
    """
    titles = titles or {}
    if not rows:
        return "*No claim has been recorded yet: run `horizon verify`.*\n"
    chapters: dict[str | None, list[dict]] = {}
    for r in rows:
        chapters.setdefault(r.get("notebook"), []).append(r)
    lines = ["| chapter | claims | verdicts |", "|---|---|---|"]
    for name, mine in chapters.items():
        lines.append(f"| {_chapter_link(name)} | {len(mine)} | {_verdict_summary(mine)} |")
    for name, mine in chapters.items():
        profiles = ", ".join(f"`{p}`" for p in dict.fromkeys(r.get("profile", "") for r in mine))
        link = f"{{doc}}`read the chapter </notebooks/{name}>`" if name else "no chapter"
        lines += [
            "", f"## {titles.get(name) or name or 'Outside a chapter'}", "",
            f"Profile {profiles}; {len(mine)} claims: {_verdict_summary(mine)}; {link}.", "",
            "| claim | predicted | measured | tolerance | verdict |", "|---|---|---|---|---|",
        ]
        for r in mine:
            what = f"`{_cell(r['claim'])}`<br>{_cell(r['statement'])}"
            if r.get("finding"):
                what += f"<br>*Finding:* {_cell(r['finding'])}"
            tolerance = r.get("tolerance", "") if r.get("op", "close") == "close" else ""
            lines.append("| " + " | ".join([
                what, f"{OPS.get(r.get('op'), '')} {_cell(format_value(r['predicted']))}",
                _cell(format_value(r["measured"])), _cell(tolerance) or "—",
                VERDICT_MARKS.get(r["verdict"], r["verdict"]),
            ]) + " |")
    return "\n".join(lines) + "\n"


def notebook_title(path: Path) -> str | None:
    """The text of a notebook's first level-1 heading, or ``None``."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def toc_chapters(toc: Path) -> list[str]:
    """The notebook chapters named in a jupyter-book ``_toc.yml``, in reading order."""
    data = yaml.safe_load(Path(toc).read_text())
    files = [c["file"] for part in data.get("parts", []) for c in part.get("chapters", [])]
    return [Path(f).name for f in files if Path(f).parent.name == "notebooks"]


def findings_markdown(rows: list[dict], titles: dict[str, str] | None = None) -> str:
    """The build's verdicts in a sentence, and the chapters with claims that did not reproduce."""
    if not rows:
        return "*No claim has been recorded yet: run `horizon verify`.*\n"
    titles = titles or {}
    chapters = dict.fromkeys(r.get("notebook") for r in rows)
    text = (f"This build checked {len(rows)} claims in {len(chapters)} chapters: "
            f"{_verdict_summary(rows)} (the {{doc}}`claims ledger <claims>` lists them all).")
    missed = dict.fromkeys(r.get("notebook") for r in rows if r["verdict"] != "pass")
    if not missed:
        return text + "\n"
    lines = [text + " The claims that did not pass, by chapter (where the verdict is "
             "`not reproduced` the chapter shows what it measured and says why):", ""]
    for name in missed:
        verdicts = _verdict_summary([r for r in rows
                                     if r.get("notebook") == name and r["verdict"] != "pass"])
        title = titles.get(name) or name
        link = f"{{doc}}`{_cell(title)} </notebooks/{name}>`" if name else "no chapter"
        lines.append(f"- {link}: {verdicts}")
    return "\n".join(lines) + "\n"


def _verdict_summary(rows: list[dict]) -> str:
    if not rows:
        return "no claim recorded"
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    rank = {v: i for i, v in enumerate(("pass", "not reproduced", "fail", "error"))}
    ordered = sorted(counts.items(), key=lambda vn: (rank.get(vn[0], len(rank)), vn[0]))
    return ", ".join(f"{n} {VERDICT_MARKS.get(v, v)}" for v, n in ordered)


def map_markdown(paper_map: list[dict], rows: list[dict], chapters: set[str]) -> str:
    """Paper object → chapters → verdicts; a chapter not in this build says so."""
    lines = ["| paper | kind | theory | chapters | claims in this build |", "|---|---|---|---|---|"]
    for item in paper_map:
        links, verdicts = [], []
        for name in item.get("chapters", []):
            if name in chapters:
                links.append(_chapter_link(name))
                mine = [r for r in rows if r.get("notebook") == name]
                verdicts.append(_verdict_summary(mine))
            else:
                links.append(f"`{name}` (not in this build)")
                verdicts.append("not reproduced yet")
        theory = f"{{prf:ref}}`{item['theory']}`" if item.get("theory") else "—"
        lines.append("| " + " | ".join([
            _cell(item["object"]), item.get("kind", ""), theory,
            "<br>".join(links) or "—", "<br>".join(verdicts) or "—",
        ]) + " |")
    return "\n".join(lines) + "\n"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def status_markdown(executed: list[Path], profile: str) -> str:
    """Versions, hardware, profile and the wall time of every executed notebook."""
    import torch

    from . import __version__

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    lines = [
        f"- **built**: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, profile "
        f"`{profile}`",
        f"- **machine**: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; GPU: {gpu}",
        f"- **Python** {platform.python_version()}; **horizon_lib** {__version__}",
        "",
        "| package | version |",
        "|---|---|",
    ]
    for dist in ("torch", "numpy", "scipy", "matplotlib", "jupyter-book", "myst-nb", "papermill",
                 "jupytext", "sphinx-proof", "sphinxcontrib-bibtex"):
        lines.append(f"| {dist} | {_version(dist)} |")
    lines += ["", "| chapter | status | wall time (s) |", "|---|---|---|"]
    total = 0.0
    for path in executed:
        run = nbformat.read(path, as_version=4).metadata.get("horizon", {}).get("run", {})
        wall = float(run.get("wall_time_s", float("nan")))
        total += wall
        lines.append(f"| {_chapter_link(path.stem)} | {run.get('status', '?')} | {wall:.1f} |")
    lines.append(f"| **all chapters** | | **{total:.1f}** |")
    return "\n".join(lines) + "\n"


def fill_marker(page: Path, text: str) -> None:
    """Replace the page's ``<!-- generated -->`` marker by ``text``."""
    source = page.read_text()
    if MARKER not in source:
        raise ValueError(f"{page} lacks the marker {MARKER}")
    page.write_text(source.replace(MARKER, text))


def load_paper_map(path: Path) -> list[dict]:
    """The list of paper objects in ``book/paper_map.yml``."""
    return yaml.safe_load(Path(path).read_text())
