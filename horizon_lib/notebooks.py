"""The chapters as data: discovery, profiles and parameter domains, checked before any kernel
starts.

A chapter is a MyST-markdown Jupytext notebook in ``notebooks/``. Its ``parameters`` cell holds
the **book** profile's values; its front matter holds, under the key ``horizon``,

* ``profiles``: the ``smoke`` and ``paper`` values (only the parameters that differ), and
* ``parameters``: for each parameter its ``meaning``, ``unit``, ``domain`` and ``effect``.

A domain is an interval such as ``"(1, 2]"`` or ``"[1, inf)"`` (with ``integer: true`` for whole
numbers), or ``choices: [...]``; a list-valued parameter is checked element by element.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PROFILES",
    "ParameterError",
    "Chapter",
    "discover",
    "load_chapter",
    "parse_value",
    "parameter_table",
]

PROFILES = ("smoke", "book", "paper")
_INTERVAL = re.compile(
    r"^\s*([\[(])\s*([-+]?(?:inf|[0-9.eE+-]+))\s*,\s*([-+]?(?:inf|[0-9.eE+-]+))\s*([\])])\s*$"
)


class ParameterError(ValueError):
    """A chapter, profile or parameter value that cannot run; the message is one line."""


def _parameters_cell(nb) -> tuple[int, dict[str, Any]]:
    """Index and literal values of the cell tagged ``parameters``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                    node.targets[0], ast.Name
                ):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
            return i, values
    raise ParameterError("no code cell tagged 'parameters'")


@dataclass(frozen=True)
class Domain:
    """What values one parameter admits; ``describe`` renders it for messages and tables."""

    interval: tuple[str, float, float, str] | None = None
    integer: bool = False
    choices: tuple | None = None
    is_list: bool = False
    is_mapping: bool = False
    keys: tuple[str, ...] | None = None
    keys_from: str | None = None
    one_of: str | None = None  # another (list) parameter whose values this one must take

    @classmethod
    def from_spec(cls, spec: dict, default: Any) -> "Domain":
        interval = None
        if "domain" in spec:
            m = _INTERVAL.match(str(spec["domain"]))
            if not m:
                raise ParameterError(f"unreadable domain {spec['domain']!r}")
            interval = (m.group(1), float(m.group(2)), float(m.group(3)), m.group(4))
        choices = tuple(spec["choices"]) if "choices" in spec else None
        keys = None
        if "keys_from" in spec:  # "module:function" returning the names a mapping may use
            module, _, func = str(spec["keys_from"]).partition(":")
            try:
                keys = tuple(getattr(importlib.import_module(module), func)())
            except (ImportError, AttributeError) as err:
                raise ParameterError(f"unreadable keys_from {spec['keys_from']!r}: {err}") from None
        return cls(interval=interval, integer=bool(spec.get("integer", False)), choices=choices,
                   is_list=isinstance(default, list), is_mapping=isinstance(default, dict),
                   keys=keys, keys_from=spec.get("keys_from"), one_of=spec.get("one_of"))

    def describe(self) -> str:
        """The allowed values in words, for messages and parameter tables."""
        if self.is_mapping:
            names = f" (names from {self.keys_from.replace(':', '.')}())" if self.keys_from else ""
            return f"a mapping of names to values, possibly empty{names}"
        parts = []
        if self.interval:
            parts.append(f"{'integer ' if self.integer else ''}in {self._interval_text()}")
        if self.choices:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        if self.one_of:
            parts.append(f"and one of the values of {self.one_of}")
        text = " ".join(parts) or "any value"
        return f"a non-empty list, each {text}" if self.is_list else text

    def _interval_text(self) -> str:
        lo_b, lo, hi, hi_b = self.interval
        fmt = lambda v: "∞" if math.isinf(v) else f"{v:g}"  # noqa: E731
        return f"{lo_b}{fmt(lo)}, {fmt(hi)}{hi_b}"

    def violation(self, value: Any) -> str | None:
        """Why ``value`` is outside the domain, or None when it is inside."""
        if self.is_mapping:
            if not isinstance(value, dict):
                return "is not a mapping (name: value)"
            unknown = [k for k in value if self.keys is not None and k not in self.keys]
            if unknown:
                hint = difflib.get_close_matches(str(unknown[0]), self.keys, n=1)
                return (f"has an unknown name {unknown[0]!r}"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            return None
        if self.is_list:
            if not isinstance(value, list) or not value:
                return "must be a non-empty list"
            for v in value:
                why = self._scalar_violation(v)
                if why:
                    return f"has an element {v!r} that {why}"
            return None
        return self._scalar_violation(value)

    def _scalar_violation(self, v: Any) -> str | None:
        if self.choices is not None and v not in self.choices:
            return "is not one of " + ", ".join(map(str, self.choices))
        if self.interval is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "is not a number"
        if self.integer and float(v) != int(v):
            return "is not an integer"
        lo_b, lo, hi, hi_b = self.interval
        if math.isnan(v) or (v < lo or (v == lo and lo_b == "(")) or (
            v > hi or (v == hi and hi_b == ")")
        ):
            return f"is outside {self._interval_text()}"
        return None


@dataclass
class Chapter:
    """One notebook: its path, book-profile defaults, other profiles and parameter specs."""

    name: str
    path: Path
    defaults: dict[str, Any]
    profiles: dict[str, dict[str, Any]]
    specs: dict[str, dict]
    domains: dict[str, Domain] = field(default_factory=dict)

    def values(self, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parameter values of ``profile`` with ``overrides`` applied, all checked.

        Raises:
            ParameterError: unknown profile, unknown parameter, or a value outside its domain;
                the one-line message names the chapter, the parameter and the allowed range.
        """
        if profile not in PROFILES:
            raise ParameterError(f"unknown profile {profile!r}; "
                                 f"choose one of {', '.join(PROFILES)}")
        values = dict(self.defaults)
        values.update(self.profiles.get(profile, {}))
        for name, value in (overrides or {}).items():
            if name not in self.defaults:
                hint = difflib.get_close_matches(name, list(self.defaults), n=1)
                extra = (f"; did you mean {hint[0]!r} ({self.domains[hint[0]].describe()})?"
                         if hint else f"; known: {', '.join(self.defaults)}")
                raise ParameterError(f"{self.name}: unknown parameter {name!r}{extra}")
            if self.domains[name].is_list and not isinstance(value, list):
                value = [value]
            values[name] = value
        for name, value in values.items():
            domain = self.domains[name]
            why = domain.violation(value)
            if not why and domain.one_of and value not in values[domain.one_of]:
                why = f"is not one of {domain.one_of} = {values[domain.one_of]!r}"
            if why:
                raise ParameterError(
                    f"{self.name}: parameter {name!r} = {value!r} {why} "
                    f"(allowed: {domain.describe()})"
                )
        return values


def load_chapter(path: str | Path) -> Chapter:
    """Read a chapter's front matter and parameters cell (no kernel is started)."""
    import jupytext

    path = Path(path)
    try:
        nb = jupytext.read(path)
        _, defaults = _parameters_cell(nb)
    except ParameterError as err:
        raise ParameterError(f"{path.stem}: {err}") from None
    meta = nb.metadata.get("horizon", {})
    specs = meta.get("parameters", {})
    profiles = meta.get("profiles", {})
    missing = [n for n in defaults if n not in specs]
    if missing:
        raise ParameterError(f"{path.stem}: parameters without a spec in front matter: {missing}")
    for prof, vals in profiles.items():
        unknown = [n for n in vals if n not in defaults]
        if prof not in PROFILES or unknown:
            raise ParameterError(f"{path.stem}: profile {prof!r} is unknown "
                                 f"or sets unknown {unknown}")
    domains = {n: Domain.from_spec(specs[n], defaults[n]) for n in defaults}
    for n, d in domains.items():
        if d.one_of and not (d.one_of in domains and domains[d.one_of].is_list):
            raise ParameterError(f"{path.stem}: parameter {n!r} is one_of {d.one_of!r}, "
                                 "which is not a list parameter of the chapter")
    return Chapter(path.stem, path, defaults, profiles, specs, domains)


def discover(root: str | Path) -> dict[str, Path]:
    """Every chapter in ``root/notebooks``, by name (file stem), sorted."""
    return {p.stem: p for p in sorted(Path(root, "notebooks").glob("*.md"))}


class _ValueLoader(yaml.SafeLoader):
    """YAML for command-line values: a plain scalar in scientific notation that YAML 1.1 reads
    as a string (``1e4``, ``1.5e3``: no sign in the exponent) is a number; quoted, it stays a
    string."""


def _scientific(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | float:
    text = loader.construct_scalar(node)
    exact = Decimal(text)
    if "." not in text and exact.as_tuple().exponent >= 0:
        return int(exact)               # 1e4 → 10000, and 1e23 exactly 10²³
    return float(text)


_ValueLoader.add_constructor("!scientific", _scientific)
_ValueLoader.add_implicit_resolver(
    "!scientific", re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: YAML scalars, lists and mappings (``1.5``, ``[1.2, 1.5]``,
    ``cuda``, ``{hidden: 64}``), where ``1e4`` is the number 10000 (YAML 1.1 reads it as a
    string), also inside a list or mapping.

    Raises:
        ParameterError: a value that opens a list or mapping and is not valid YAML.

    >>> parse_value("1e4"), parse_value("2.5e-3"), parse_value("[1e2, 1.5]"), parse_value("cpu")
    (10000, 0.0025, [100, 1.5], 'cpu')
    """
    try:
        return yaml.load(text, Loader=_ValueLoader)
    except yaml.YAMLError as err:
        if text.lstrip()[:1] in ("[", "{"):
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ParameterError(f"value {text!r} is not valid YAML ({problem})") from None
        return text


def parameter_table(chapter: str | Path, values: dict[str, Any] | None = None) -> str:
    """A Markdown table of a chapter's parameters: value in this run (unit), meaning, range, effect.

    Args:
        chapter: a chapter name (looked up as ``<name>.md`` here or in ``notebooks/``) or a path.
        values: the values in force (e.g. the notebook's ``globals()``); omitted: the defaults.
    """
    path = Path(chapter)
    if path.suffix != ".md":
        candidates = [Path(f"{chapter}.md"), Path("notebooks", f"{chapter}.md")]
        path = next((c for c in candidates if c.exists()), candidates[0])
    ch = load_chapter(path)
    values = values or {}
    rows = ["| parameter | value (unit) | meaning | allowed | effect of changing it |",
            "|---|---|---|---|---|"]
    for name, default in ch.defaults.items():
        spec = ch.specs[name]
        value = f"`{values.get(name, default)!r}`"
        unit = spec.get("unit", "")
        if unit and unit != "—":
            value += f" {unit}"
        cells = [f"`{name}`", value, spec.get("meaning", ""),
                 ch.domains[name].describe(), spec.get("effect", "")]
        rows.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
