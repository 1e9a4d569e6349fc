"""The typed tensor classes (downslope.typed_tensors) against torch: isinstance by dtype, constructors."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor",
         "ByteTensor", "BoolTensor"]  # fmt: skip
DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_isinstance_checks_the_dtype_like_torch(name, dtype):
    ours = ds.zeros(2, dtype=getattr(ds, dtype))
    theirs = torch.zeros(2, dtype=getattr(torch, dtype))
    assert isinstance(ours, getattr(ds, name)) == isinstance(theirs, getattr(torch, name))


def test_parameters_tuples_of_types_and_non_tensors():
    assert isinstance(ds.nn.Parameter(ds.zeros(2)), ds.FloatTensor)
    assert isinstance(ds.zeros(2, dtype=ds.float64), (ds.FloatTensor, ds.DoubleTensor))
    assert not isinstance(3.0, ds.FloatTensor)
    assert not isinstance(np.zeros(2, np.float32), ds.FloatTensor)
    assert not isinstance(ds.zeros(2, device="strict"), ds.FloatTensor)  # torch.cuda.FloatTensor's, not this


def test_the_classes_still_construct_and_cast_like_torch():
    assert ds.FloatTensor(2, 3).shape == tuple(torch.FloatTensor(2, 3).shape)
    assert ds.FloatTensor([1, 2]).tolist() == torch.FloatTensor([1, 2]).tolist()
    assert ds.LongTensor([3, 4]).dtype == ds.int64
    x = ds.tensor([1.5, 2.0])
    assert x.type(ds.LongTensor).tolist() == [1, 2] and x.type(ds.DoubleTensor).dtype == ds.float64
    assert ds.FloatTensor.dtype == ds.float32 and ds.FloatTensor.__name__ == "FloatTensor"
    assert repr(ds.FloatTensor) == "<class 'downslope.FloatTensor'>"
    assert not issubclass(ds.FloatTensor, ds.Tensor) and not issubclass(torch.FloatTensor, torch.Tensor)
