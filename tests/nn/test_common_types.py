"""torch.nn.common_types: PyTorch's type aliases for layer arguments, with downslope's Tensor."""

from __future__ import annotations

import typing

import pytest

import downslope as ds
from downslope.nn import common_types as ours

torch = pytest.importorskip("torch")
from torch.nn import common_types as theirs  # noqa: E402  (after the skip)


def _public_aliases(module):
    return sorted(n for n in vars(module) if n.startswith("_") and n.endswith("_t") and not n.startswith("__"))


def test_every_alias_of_torch_is_there_with_the_same_meaning():
    assert _public_aliases(ours) == _public_aliases(theirs)
    for name in _public_aliases(theirs):
        mine, torchs = getattr(ours, name), getattr(theirs, name)
        assert str(mine).replace("downslope.tensor.Tensor", "torch.Tensor") == str(torchs), name


def test_aliases_annotate_a_layer_subclass():
    class Conv(ds.nn.Conv2d):
        def __init__(self, kernel_size: ours._size_2_t = 3) -> None:
            super().__init__(1, 1, kernel_size)

    assert typing.get_type_hints(Conv.__init__, {"ours": ours})["kernel_size"] == int | tuple[int, int]
    assert Conv().weight.shape == (1, 1, 3, 3)
