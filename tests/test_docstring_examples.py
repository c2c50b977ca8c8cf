"""The examples in the library's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import horizon_lib

# __main__ runs the command line when imported
MODULES = sorted(m.name for m in pkgutil.iter_modules(horizon_lib.__path__, "horizon_lib.")
                 if m.name != "horizon_lib.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
