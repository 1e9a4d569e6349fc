"""``Tensor.size()`` is a Size, as torch's, so the legacy constructors read it as a shape (a plain tuple is data)."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("ctor", ["Tensor", "BoolTensor", "FloatTensor", "LongTensor", "DoubleTensor"])
def test_legacy_constructors_take_size_as_a_shape_as_torch(ctor: str) -> None:
    ours = getattr(ds, ctor)(ds.zeros(2, 3, 4).size())
    theirs = getattr(torch, ctor)(torch.zeros(2, 3, 4).size())
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]


def test_size_is_a_size_and_a_plain_tuple_is_data_as_torch() -> None:
    x = ds.zeros(2, 3)
    assert isinstance(x.size(), ds.Size) and x.size() == (2, 3) and x.size(1) == 3
    assert x.size().numel() == torch.zeros(2, 3).size().numel()
    assert ds.FloatTensor((2, 3)).tolist() == torch.FloatTensor((2, 3)).tolist()
