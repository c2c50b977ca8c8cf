"""load_chapter on broken chapters: each defect of the front matter or of the parameters cell is
one ParameterError naming the chapter, before any kernel starts (tests/test_notebooks.py checks
the real chapters)."""

import pytest
import yaml

from horizon_lib.notebooks import ParameterError, load_chapter

SPEC = {"meaning": "sample sizes", "unit": "samples", "domain": "[1, inf)", "integer": True,
        "effect": "more"}


def _chapter(folder, *, horizon, params="n_grid = [10, 100]\nn = 10", tagged=True):
    """A chapter in the companion's MyST form with the given ``horizon:`` front matter."""
    front = {
        "jupytext": {"notebook_metadata_filter": "horizon",
                     "text_representation": {"extension": ".md", "format_name": "myst",
                                             "format_version": 0.13}},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "horizon": horizon,
    }
    tags = ":tags: [parameters]\n\n" if tagged else ""
    path = folder / "toy.md"
    path.write_text(f"---\n{yaml.safe_dump(front, allow_unicode=True)}---\n\n# Toy\n\n"
                    f"```{{code-cell}} ipython3\n{tags}{params}\n```\n")
    return path


def _specs(**extra):
    return {"n_grid": dict(SPEC), "n": dict(SPEC, **extra)}


def test_a_well_formed_toy_chapter_loads(tmp_path):
    # the same writer as the broken chapters below: each of them fails for its one defect
    chapter = load_chapter(_chapter(tmp_path, horizon={
        "parameters": _specs(one_of="n_grid"), "profiles": {"smoke": {"n_grid": [10]}}}))
    assert chapter.name == "toy" and chapter.defaults == {"n_grid": [10, 100], "n": 10}
    assert chapter.values("smoke", {"n": 10}) == {"n_grid": [10], "n": 10}


@pytest.mark.parametrize("kwargs, message", [
    (dict(horizon={"parameters": _specs()}, tagged=False),
     r"^toy: no code cell tagged 'parameters'$"),
    (dict(horizon={"parameters": {"n_grid": SPEC}}),
     r"^toy: parameters without a spec in front matter: \['n'\]$"),
    (dict(horizon={"parameters": _specs(), "profiles": {"huge": {"n": 5}}}),
     r"^toy: profile 'huge' is unknown or sets unknown \[\]$"),
    (dict(horizon={"parameters": _specs(), "profiles": {"smoke": {"m": 5}}}),
     r"^toy: profile 'smoke' is unknown or sets unknown \['m'\]$"),
    (dict(horizon={"parameters": _specs(one_of="n")}),
     r"^toy: parameter 'n' is one_of 'n', which is not a list parameter of the chapter$"),
])
def test_a_broken_chapter_is_one_parameter_error_naming_it(tmp_path, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        load_chapter(_chapter(tmp_path, **kwargs))
