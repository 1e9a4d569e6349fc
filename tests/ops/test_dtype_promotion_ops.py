"""Ops' dtype corners against torch: softmax's integer dtype=, complex float_power and ldexp, a float
alpha with integer tensors, fill_/masked_fill_ with a tensor value of dims, and NumPy's floating-point
warnings (none escape an op, as none escape torch's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import DTypeError, ShapeError


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_softmax_with_an_integer_dtype_raises_torchs_not_implemented(name: str, dtype: str) -> None:
    with pytest.raises(NotImplementedError) as theirs:
        getattr(torch.tensor([[1.0, 2.0]]), name)(1, dtype=getattr(torch, dtype))
    with pytest.raises(NotImplementedError) as ours:
        getattr(ds.tensor([[1.0, 2.0]]), name)(1, dtype=getattr(ds, dtype))
    assert str(theirs.value).split(" not implemented")[0] in str(ours.value)


_COMPLEX_CASES = {
    "float_power(f32, c64)": lambda m: m.float_power(m.tensor([2.0, 3.0]), m.tensor([1 + 1j, 2j], dtype=m.complex64)),
    "float_power(c64, 2)": lambda m: m.float_power(m.tensor([1 + 1j], dtype=m.complex64), 2),
    "float_power(f32, 1j)": lambda m: m.float_power(m.tensor([2.0, 3.0]), 1j),
    "ldexp(c64, int)": lambda m: m.ldexp(m.tensor([1 + 1j], dtype=m.complex64), m.tensor([3])),
    "ldexp(bool, c64)": lambda m: m.ldexp(m.tensor([True]), m.tensor([1 + 1j], dtype=m.complex64)),
    "ldexp(c128, f32)": lambda m: m.ldexp(m.tensor([1 - 2j], dtype=m.complex128), m.tensor([0.5])),
}


@pytest.mark.parametrize("case", list(_COMPLEX_CASES))
def test_float_power_and_ldexp_compute_complex_operands_as_torch(case: str) -> None:
    expected, got = _COMPLEX_CASES[case](torch), _COMPLEX_CASES[case](ds)
    assert got.dtype.name == str(expected.dtype).replace("torch.", "")
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=4 * np.finfo(got.numpy().dtype).eps)


@pytest.mark.parametrize("call", ["add", "sub", "add_", "sub_"])
def test_a_float_alpha_with_integer_tensors_is_refused_as_torch(call: str) -> None:
    for m, error in ((torch, RuntimeError), (ds, DTypeError)):
        x = m.tensor([1, 1])
        with pytest.raises(error, match="argument alpha must not be a floating point number"):
            getattr(x, call)(m.tensor([1, 1]), alpha=0.5)
    assert ds.tensor([1.0, 2.0]).add(ds.tensor([1, 1]), alpha=0.5).tolist() == [1.5, 2.5]  # a float tensor: fine


def test_fill_and_masked_fill_take_a_0d_value_tensor_only() -> None:
    with pytest.raises(ShapeError, match="fill_ only supports 0-dimension value tensor"):
        ds.zeros(2).fill_(ds.tensor([2.7]))
    with pytest.raises(ShapeError, match="masked_fill_ only supports a 0-dimensional value tensor"):
        ds.zeros(3).masked_fill_(ds.tensor([True, False, True]), ds.tensor([1.0, 2.0, 3.0]))
    assert ds.zeros(2).fill_(ds.tensor(2.5)).tolist() == torch.zeros(2).fill_(torch.tensor(2.5)).tolist()
    mask = [True, False, True]
    expected = torch.zeros(3).masked_fill_(torch.tensor(mask), torch.tensor(1.0)).tolist()
    assert ds.zeros(3).masked_fill_(ds.tensor(mask), ds.tensor(1.0)).tolist() == expected
