"""Staging the executed notebooks: the papermill-injected parameters cell is hidden only when it
repeats the chapter's defaults."""

import nbformat
import pytest

from horizon_lib.book import hide_redundant_injection


def _notebook(path, defaults, injected):
    """An executed-notebook stand-in: a parameters cell, papermill's injected cell, one more."""
    cells = [nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]})]
    if injected is not None:
        cells.append(nbformat.v4.new_code_cell("# Parameters\n" + injected,
                                               metadata={"tags": ["injected-parameters"]}))
    cells.append(nbformat.v4.new_code_cell("print(experiment)"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def _tags(path):
    return [c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells]


def test_injection_equal_to_the_defaults_is_removed_from_the_page(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", 'experiment = "book"\nbudgets = [500, 8000]\n',
                   'experiment = "book"\nbudgets = [500, 8000]\n')
    assert hide_redundant_injection(nb)
    assert _tags(nb) == [["parameters"], ["injected-parameters", "remove-cell"], []]


def test_a_subset_of_the_defaults_counts_as_equal(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", 'experiment = "book"\nseed = 0\n', "seed = 0\n")
    assert hide_redundant_injection(nb)


@pytest.mark.parametrize("defaults, injected", [
    ('experiment = "book"\n', 'experiment = "smoke"\n'),          # another profile's value
    ('experiment = "book"\n', 'experiment = "book"\nextra = 1\n'),  # a name with no default
    ("scale = 2 ** 10\n", "scale = 1024\n"),                       # a default that is no literal
    ('experiment = "book"\n', None),                                # nothing injected
])
def test_injection_that_says_something_new_stays_visible(tmp_path, defaults, injected):
    nb = _notebook(tmp_path / "a.ipynb", defaults, injected)
    before = nb.read_bytes()
    assert not hide_redundant_injection(nb)
    assert nb.read_bytes() == before                 # the file is not rewritten
