"""environment.yml adds nothing to pyproject.toml: Python, pip, and the project's own extras."""

import tomllib

import yaml

from conftest import ROOT


def test_environment_yml_defers_to_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_lists = [d["pip"] for d in deps if isinstance(d, dict)]
    conda = sorted(d.split("=")[0] for d in deps if isinstance(d, str))
    assert conda == ["pip", "python"]
    assert pip_lists == [["-e .[book,test,cluster]"]]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"book", "test", "cluster"} <= set(project["optional-dependencies"])


def test_torch_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    book = project["optional-dependencies"]["book"]
    assert any(d.startswith("jupyter-book") and "<2" in d for d in book)
