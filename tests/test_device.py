"""resolve_device: the ``device`` parameter of a chapter as a torch device."""

import pytest
import torch

from horizon_lib.device import resolve_device


def test_auto_takes_cuda_exactly_when_present():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check is for a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_device_raises(name):
    with pytest.raises(ValueError, match="'cuda' was requested but no CUDA device"):
        resolve_device(name)
