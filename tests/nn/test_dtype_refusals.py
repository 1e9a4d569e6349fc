"""Index and weight dtypes that torch 2.13 refuses, refused here too (not silently cast): one_hot of
non-int64 indices, embedding / embedding_bag of indices other than int64 and int32, a class weight
of another dtype than the scores in the class-index losses, and F.pad fill values past the tensor
dtype's range. Each case is run through torch first, so the test says where torch draws the line."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import DTypeError, InvalidValueError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _torch_refuses(call: Callable[[], Any]) -> bool:
    try:
        call()
    except RuntimeError:
        return True
    return False


@pytest.mark.parametrize("dtype", ["int32", "int16", "int8", "uint8"])
def test_one_hot_takes_int64_only(dtype: str) -> None:
    assert _torch_refuses(lambda: TF.one_hot(torch.tensor([0, 1], dtype=getattr(torch, dtype))))
    with pytest.raises(DTypeError, match="LongTensor"):
        F.one_hot(ds.tensor([0, 1], dtype=dtype))
    assert F.one_hot(ds.tensor([0, 1])).tolist() == TF.one_hot(torch.tensor([0, 1])).tolist()


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "bool"])
def test_embedding_refuses_small_integer_indices(dtype: str) -> None:
    table = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    assert _torch_refuses(lambda: TF.embedding(torch.tensor([0, 1]).to(getattr(torch, dtype)), torch.tensor(table)))
    idx = ds.tensor([0, 1]).to(getattr(ds, dtype))
    with pytest.raises(DTypeError, match="int64 or int32"):
        F.embedding(idx, ds.tensor(table))
    with pytest.raises(DTypeError, match="int64 or int32"):
        ds.nn.Embedding(3, 2)(idx)
    with pytest.raises(DTypeError, match="int64 or int32"):
        F.embedding_bag(ds.tensor([[0, 1]]).to(getattr(ds, dtype)), ds.tensor(table))


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_embedding_takes_int64_and_int32(dtype: str) -> None:
    table = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    got = F.embedding(ds.tensor([2, 0], dtype=dtype), ds.tensor(table))
    want = TF.embedding(torch.tensor([2, 0], dtype=getattr(torch, dtype)), torch.tensor(table))
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("weight_dtype", ["float64", "float16", "int64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_index_losses_refuse_a_weight_of_another_dtype(loss: str, weight_dtype: str) -> None:
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    target = [0, 1, 4]
    assert _torch_refuses(
        lambda: getattr(TF, loss)(
            torch.tensor(x), torch.tensor(target), weight=torch.ones(5, dtype=getattr(torch, weight_dtype))
        )
    )
    with pytest.raises(DTypeError, match="expected scalar type float32"):
        getattr(F, loss)(ds.tensor(x), ds.tensor(target), weight=ds.ones(5, dtype=weight_dtype))
    with pytest.raises(DTypeError, match="expected scalar type float32"):
        getattr(F, loss)(ds.tensor(x), ds.tensor(target), weight=ds.ones(5, dtype=weight_dtype), reduction="none")


def test_cross_entropy_weight_of_the_input_dtype_still_matches_torch() -> None:
    x = np.random.default_rng(1).standard_normal((4, 3))
    w = np.array([0.5, 2.0, 1.0])
    for dtype in ("float32", "float64"):
        got = F.cross_entropy(ds.tensor(x, dtype=dtype), ds.tensor([0, 2, 1, 2]), weight=ds.tensor(w, dtype=dtype))
        want = TF.cross_entropy(
            torch.tensor(x).to(getattr(torch, dtype)),
            torch.tensor([0, 2, 1, 2]),
            weight=torch.tensor(w).to(getattr(torch, dtype)),
        )
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


PAD_VALUES = [1e5, 65504.0, 65505.0, 65520.0, 3.4028235e38, 1e39, 300, 255, -1, -0.5, 127.9, -128.9, 1.5]
PAD_VALUES += [math.inf, -math.inf, math.nan, 2**40, 2**63, True]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool"])
def test_pad_value_is_converted_or_refused_as_torch(dtype: str) -> None:
    for value in PAD_VALUES:
        try:
            want = TF.pad(torch.zeros(2, dtype=getattr(torch, dtype)), (1, 1), value=value)
        except RuntimeError:
            with pytest.raises(InvalidValueError, match="without overflow"):
                F.pad(ds.zeros(2, dtype=dtype), (1, 1), value=value)
            continue
        got = F.pad(ds.zeros(2, dtype=dtype), (1, 1), value=value)
        assert str(got.dtype) == dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"value={value!r}")
