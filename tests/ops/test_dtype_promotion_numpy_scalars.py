"""NumPy scalars (``np.float64`` from ``arr.mean()``, ``np.int32``...) and 0-d tensors as operands,
checked bit for bit against torch: a NumPy scalar is a Python number there (a "wrapped number"),
and an in-place op computes as its out-of-place form does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

_RNG = np.random.default_rng(0)
_HALF_DATA = (_RNG.standard_normal(4000) * 3).astype(np.float16)
_FLOAT_DATA = (_RNG.standard_normal(4000) * 3).astype(np.float32)
_SCALAR = 3.634466745420448


def _both(data: np.ndarray) -> tuple[torch.Tensor, ds.Tensor]:
    return torch.from_numpy(data.copy()), ds.from_numpy(data.copy())


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_"])
@pytest.mark.parametrize("scalar", [np.float64(_SCALAR), np.float32(_SCALAR), _SCALAR], ids=["f64", "f32", "py"])
@pytest.mark.parametrize("data", [_HALF_DATA, _FLOAT_DATA], ids=["float16", "float32"])
def test_a_numpy_float_scalar_rounds_as_torchs_number(op: str, scalar: object, data: np.ndarray) -> None:
    theirs, ours = _both(data)
    expected = getattr(theirs, op)(scalar).numpy()
    got = getattr(ours, op)(scalar).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_float16_floor_divide_by_a_numpy_scalar_is_torchs() -> None:
    theirs, ours = _both(_HALF_DATA[:2000])
    expected = torch.floor_divide(theirs, np.float64(0.001)).numpy()
    np.testing.assert_array_equal(ds.floor_divide(ours, np.float64(0.001)).numpy(), expected)


@pytest.mark.parametrize("op", ["add", "add_", "sub_", "mul", "mul_", "div_"])
def test_a_0d_float64_tensor_does_not_widen_float32_in_place_either(op: str) -> None:
    theirs, ours = _both(_FLOAT_DATA)
    expected = getattr(theirs, op)(torch.tensor(_SCALAR, dtype=torch.float64)).numpy()
    got = getattr(ours, op)(ds.tensor(_SCALAR, dtype=ds.float64)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_in_place_and_out_of_place_agree_with_a_numpy_scalar() -> None:
    x = ds.from_numpy(_HALF_DATA.copy())
    for name in ("add", "sub", "mul", "div"):
        out = getattr(x, name)(np.float64(_SCALAR)).numpy()
        in_place = getattr(ds.from_numpy(_HALF_DATA.copy()), name + "_")(np.float64(_SCALAR)).numpy()
        np.testing.assert_array_equal(in_place, out)


@pytest.mark.parametrize("name", ["addcmul", "addcdiv"])
def test_a_numpy_value_does_not_widen_addcmul(name: str) -> None:
    a, b, c = (_RNG.random(5).astype(np.float32) + 0.5 for _ in range(3))
    expected = getattr(torch, name)(*(torch.from_numpy(v) for v in (a, b, c)), value=np.float64(0.3))
    got = getattr(ds, name)(*(ds.from_numpy(v) for v in (a, b, c)), value=np.float64(0.3))
    assert got.dtype == ds.float32 and expected.dtype == torch.float32
    # the same values as with the Python number (torch's fused kernel may round an ulp apart from both)
    as_number = getattr(ds, name)(*(ds.from_numpy(v) for v in (a, b, c)), value=0.3)
    np.testing.assert_array_equal(got.numpy(), as_number.numpy())
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=2 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("in_place", [False, True])
def test_a_numpy_integer_clamp_bound_wraps_as_a_number(in_place: bool) -> None:
    data = np.array([7, 8, 0], dtype=np.uint8)
    name = "clamp_" if in_place else "clamp"
    expected = getattr(torch.from_numpy(data.copy()), name)(min=np.int32(-7)).numpy()
    got = getattr(ds.from_numpy(data.copy()), name)(min=np.int32(-7)).numpy()
    np.testing.assert_array_equal(got, expected)  # [249, 249, 249]: -7 wraps into uint8 as a Python -7 does


@pytest.mark.parametrize(
    ("bound", "value", "dtype"),
    [("min", -5, "int16"), ("max", 300, "int16"), ("min", -5, "int64"), ("max", 1000, "int32")],
)
def test_integer_clamp_in_place_with_a_0d_bound_out_of_range_is_torchs(bound: str, value: int, dtype: str) -> None:
    data = np.array([2, 0, 8, 100], dtype=np.uint8)
    kw_t = {bound: torch.tensor(value, dtype=getattr(torch, dtype))}
    kw_d = {bound: ds.tensor(value, dtype=getattr(ds, dtype))}
    expected = torch.from_numpy(data.copy()).clamp_(**kw_t).numpy()
    got = ds.from_numpy(data.copy()).clamp_(**kw_d).numpy()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ds.from_numpy(data.copy()).clamp(**kw_d).numpy(), expected)


def test_float_power_keeps_a_numpy_scalar_at_its_own_value() -> None:
    x = np.array([1.5, 2.5], dtype=np.float32)
    expected = torch.float_power(torch.from_numpy(x), np.float64(0.1)).numpy()
    np.testing.assert_array_equal(ds.float_power(ds.from_numpy(x), np.float64(0.1)).numpy(), expected)
