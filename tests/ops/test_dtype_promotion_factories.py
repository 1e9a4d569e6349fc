"""Factories' dtype corners against torch: ds.tensor of a list of one-element tensors, integer arange
with fractional numbers, linspace into small integer dtypes, complex data into a real dtype, finfo."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError, InvalidValueError


def test_a_list_of_one_element_tensors_is_a_list_of_numbers() -> None:
    for items in ([[1.5], [2.5]], [[[1]], [[2]]], [[1.0], 2.0]):
        theirs = torch.tensor([torch.tensor(v) if isinstance(v, list) else v for v in items])
        ours = ds.tensor([ds.tensor(v) if isinstance(v, list) else v for v in items])
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.tolist() == theirs.tolist()
    losses = ds.tensor([ds.tensor([0.5]), ds.tensor([0.25]), ds.tensor([1.0])])
    assert (losses - ds.tensor([1.0, 2.0, 3.0])).shape == (3,)  # no broadcast to (3, 3)
    assert ds.tensor([ds.tensor([1.0], dtype=ds.float64)]).dtype == ds.float64  # the tensors' dtype


def test_a_list_of_tensors_of_several_elements_is_refused_as_torch() -> None:
    with pytest.raises(ArgumentError, match="only one element tensors can be converted to Python scalars"):
        ds.tensor([ds.tensor([1.0, 2.0]), ds.tensor([3.0, 4.0])])
    with pytest.raises(ValueError, match="only one element tensors"):  # torch's ValueError
        torch.tensor([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])


_ARANGE_CASES = [
    (-0.9, 3.5, 1.1),
    (0, 5, 0.5),
    (2.7, -3.2, -1.5),
    (0.12, 0.22, 0.05),
    (-1.88, -6.98, -0.3),
    (0.5, 0.2, 1),
    (0.2, 0.5, 0.3),
    (1, 7.9, 2),
]


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
@pytest.mark.parametrize("args", _ARANGE_CASES, ids=str)
def test_integer_arange_with_fractional_numbers_is_torchs(args: tuple[float, float, float], dtype: str) -> None:
    # torch's int64 kernel truncates the numbers first; its other integer kernels take the length from
    # the numbers as given (torch's own inconsistency, followed)
    try:
        expected = torch.arange(*args, dtype=getattr(torch, dtype)).numpy()
    except (RuntimeError, ValueError):
        with pytest.raises(InvalidValueError):
            ds.arange(*args, dtype=getattr(ds, dtype))
        return
    got = ds.arange(*args, dtype=getattr(ds, dtype)).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int64"])
@pytest.mark.parametrize(
    "args",
    [
        (0.12, -10.0, 5),
        (2.26, -0.77, 3),
        (-1, 5, 3),
        (-0.5, 5, 3),
        (255.5, 0, 3),
        (-255, 0, 3),
        (-256, 0, 3),
        (-4.2, -21.3, 0),
        (2.7, -44.7, 1),
    ],  # fmt: skip
    ids=str,
)
def test_integer_linspace_checks_its_bounds_as_torch(args: tuple[float, float, int], dtype: str) -> None:
    try:
        expected = torch.linspace(*args, dtype=getattr(torch, dtype)).numpy()
    except RuntimeError:
        with pytest.raises(InvalidValueError, match="cannot be converted"):
            ds.linspace(*args, dtype=getattr(ds, dtype))
        return
    np.testing.assert_array_equal(ds.linspace(*args, dtype=getattr(ds, dtype)).numpy(), expected)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("action", ["default", "always", "ignore", "error"])
def test_complex_numbers_into_a_real_dtype_are_refused_whatever_the_filters(dtype: str, action: str) -> None:
    with pytest.raises(TypeError):
        torch.tensor([1.5, 2j], dtype=getattr(torch, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter(action)  # type: ignore[arg-type]
        with pytest.raises(ArgumentTypeError, match="'complex' object cannot be interpreted"):
            ds.tensor([1.5, 2j], dtype=getattr(ds, dtype))


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "complex64", "bfloat16"])
def test_finfo_fields_are_torchs_python_numbers(name: str) -> None:
    ours, theirs = ds.finfo(getattr(ds, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        value = getattr(ours, field)
        assert value == getattr(theirs, field), field
        assert type(value) is type(getattr(theirs, field)), field
    assert repr(ours) == repr(theirs)
    json.dumps({"eps": ours.eps, "max": ours.max})  # Python floats serialize


def test_finfo_max_computes_as_a_python_float() -> None:
    assert ds.finfo(ds.float16).max * 2 == torch.finfo(torch.float16).max * 2 == 131008.0
    assert ds.finfo(ds.float16).resolution == 0.001
