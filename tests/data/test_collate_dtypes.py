"""default_collate and the DataLoader's batches keep torch's integer dtypes and float16 of NumPy arrays
(a uint8 image batch stays uint8), as torch's default_collate does; Python ints give int64."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import downslope as ds
from downslope.utils.data import DataLoader, default_collate, default_convert

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader as TorchLoader  # noqa: E402
from torch.utils.data import default_collate as torch_collate  # noqa: E402
from torch.utils.data import default_convert as torch_convert  # noqa: E402

KEPT = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.float16, np.bool_]


def _name(dtype: object) -> str:
    return str(dtype).replace("torch.", "")


@pytest.mark.parametrize("np_dtype", KEPT, ids=lambda t: np.dtype(t).name)
def test_default_collate_keeps_array_dtype_as_torch(np_dtype):
    samples = [np.array([[1, 0], [0, 1]], np_dtype), np.array([[0, 1], [1, 1]], np_dtype)]
    expected = torch_collate(samples)
    got = default_collate(samples)
    assert got.dtype.name == _name(expected.dtype)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    scalars = [np.dtype(np_dtype).type(1), np.dtype(np_dtype).type(0)]
    assert default_collate(scalars).dtype.name == _name(torch_collate(scalars).dtype)


def test_python_ints_collate_to_int64_as_torch():
    assert _name(torch_collate([1, 2]).dtype) == "int64"
    assert default_collate([1, 2]).dtype == np.int64


@pytest.mark.parametrize("np_dtype", [np.uint16, np.uint32], ids=lambda t: np.dtype(t).name)
def test_wide_unsigned_arrays_collate_to_int64(np_dtype):
    # torch keeps uint16/uint32; downslope has no such dtypes: int64 holds the values
    samples = [np.array([1, 60000], np_dtype), np.array([2, 3], np_dtype)]
    got = default_collate(samples)
    assert got.dtype == np.int64
    assert got.tolist() == torch_collate(samples).tolist()


def test_float64_arrays_keep_the_float32_policy():
    assert default_collate([np.zeros(2), np.ones(2)]).dtype == np.float32  # torch: float64, documented


class _Slices:
    """A medical-imaging style Dataset: uint8 slices, int16 CT values, float16 and float64 fields."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return {
            "img": np.full((2, 2), 200 - i, np.uint8),
            "ct": np.array([-1000 + i], np.int16),
            "h": np.full(2, i, np.float16),
            "label": i % 2,
        }


Pair = namedtuple("Pair", "img label")


class _Pairs(_Slices):
    def __getitem__(self, i: int):  # tuples: the DataLoader's (x, y) path
        return np.full((2, 2), 200 - i, np.uint8), np.int32(i)


class _NamedPairs(_Slices):
    def __getitem__(self, i: int):
        return Pair(np.full((2, 2), 200 - i, np.uint8), i)


@pytest.mark.parametrize("dataset", [_Slices(), _Pairs(), _NamedPairs()], ids=["dict", "tuple", "namedtuple"])
def test_loader_batches_have_torch_dtypes(dataset):
    expected = next(iter(TorchLoader(dataset, batch_size=2)))
    got = next(iter(DataLoader(dataset, batch_size=2)))
    pairs = [(expected[k], got[k]) for k in expected] if isinstance(expected, dict) else list(zip(expected, got))
    for e, g in pairs:
        assert g.dtype.name == _name(e.dtype)
        np.testing.assert_array_equal(g.numpy(), e.numpy())


def test_uint8_scaling_in_a_loader_fires_as_in_torch():
    results = []
    for lib, loader in ((torch, TorchLoader), (ds, DataLoader)):
        img = next(iter(loader(_Slices(), batch_size=2)))["img"]
        img = img.float() / 255 if img.dtype == lib.uint8 else img
        results.append(img.max().item())
    assert results[1] == pytest.approx(results[0], rel=1e-6)
    assert results[1] == pytest.approx(200 / 255, rel=1e-6)


@pytest.mark.parametrize("np_dtype", KEPT + [np.float64], ids=lambda t: np.dtype(t).name)
def test_default_convert_keeps_dtype_as_torch(np_dtype):
    arr = np.array([1, 0], np_dtype)
    assert default_convert(arr).dtype.name == _name(torch_convert(arr).dtype)
    assert default_convert({"a": arr})["a"].dtype.name == _name(torch_convert({"a": arr})["a"].dtype)


def test_tensor_dataset_keeps_the_dtype_of_its_tensors_as_torch():
    torch = pytest.importorskip("torch")
    for values, dtype in (([1, 2], "uint8"), ([1, 2], "int32"), ([1.0, 2.0], "float64")):
        ours = ds.utils.data.TensorDataset(ds.tensor(np.array(values, dtype=dtype), dtype=getattr(ds, dtype)))
        theirs = torch.utils.data.TensorDataset(torch.tensor(np.array(values, dtype=dtype)))
        assert str(ours[0][0].dtype) == str(theirs[0][0].dtype).replace("torch.", "") == dtype
