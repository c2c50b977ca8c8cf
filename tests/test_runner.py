"""runner.plan: which chapters a run resolves to, checked before any kernel starts."""

import pytest

from horizon_lib.notebooks import ParameterError
from horizon_lib.runner import plan


@pytest.mark.parametrize("names", [None, []])
def test_a_root_without_chapters_is_a_parameter_error(tmp_path, names):
    # an empty notebooks/ folder (a wrong --root): no names means every chapter, and there are none
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(ParameterError, match=r"no notebooks found under .*notebooks$"):
        plan(tmp_path, names, "book")
    with pytest.raises(ParameterError, match="no notebooks found under"):
        plan(tmp_path / "elsewhere", None, "book")         # no notebooks/ folder at all
