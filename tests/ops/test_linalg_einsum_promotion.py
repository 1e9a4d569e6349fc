"""einsum of operands of different dtypes against PyTorch: the result dtype is torch's promotion of all
operands (an integer or bool operand with float32 gives float32, not NumPy's float64), and a product
over a shared index after such a promotion is allowed where torch allows it."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_INTS = ["int64", "int32", "bool"]
_FLOATS = ["float32", "float16", "float64"]


def _operand(lib, dtype, shape, seed):
    values = np.random.default_rng(seed).integers(0, 3, size=shape)
    return lib.tensor(values.astype(dtype), dtype=getattr(lib, dtype))


def _both(equation, dtypes_shapes):
    ours = ds.einsum(equation, *[_operand(ds, d, s, k) for k, (d, s) in enumerate(dtypes_shapes)])
    ref = torch.einsum(equation, *[_operand(torch, d, s, k) for k, (d, s) in enumerate(dtypes_shapes)])
    return ours, ref


@pytest.mark.parametrize("int_dtype", _INTS)
@pytest.mark.parametrize("float_dtype", _FLOATS)
@pytest.mark.parametrize(
    "equation, shapes",
    [("i,j->ij", [(4,), (3,)]), ("j,i->ij", [(3,), (4,)]), ("i,->i", [(4,), ()]), (",i->i", [(), (4,)])],
)
def test_an_integer_operand_with_a_float_one_promotes_as_torch(int_dtype, float_dtype, equation, shapes):
    ours, ref = _both(equation, [(int_dtype, shapes[0]), (float_dtype, shapes[1])])
    assert str(ours.dtype) == str(ref.dtype).replace("torch.", ""), (equation, int_dtype, float_dtype)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


@pytest.mark.parametrize(
    "dtypes",
    [
        ("float32", "float64"),  # a 0-d operand counts as fully as one with dims (float64 here)
        ("int32", "int64"),
        ("uint8", "int8"),
        ("bool", "float16"),
    ],
)
def test_operands_of_one_category_promote_as_torch(dtypes):
    ours, ref = _both("i,->i", [(dtypes[0], (3,)), (dtypes[1], ())])
    assert str(ours.dtype) == str(ref.dtype).replace("torch.", "")


def test_a_rotary_frequency_table_stays_float32():
    # freqs = torch.einsum("i,j->ij", torch.arange(T), inv_freq) (RWKV, GPT-NeoX rotary embeddings)
    inv_freq = 1.0 / (10000 ** (ds.arange(0, 8, 2).float() / 8))
    assert ds.einsum("i,j->ij", ds.arange(5), inv_freq).dtype == ds.float32


def test_a_contraction_after_a_promoting_outer_step_is_allowed_as_in_torch():
    # int64 (x) float32 is float32 in torch, which then contracts with a float32 operand
    shapes = [("int64", (4,)), ("float32", (3,)), ("float32", (3, 2))]
    ours, ref = _both("i,j,jk->ik", shapes)
    assert ours.dtype == ds.float32 and ref.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref.numpy())


def test_a_float_operands_gradient_keeps_its_dtype():
    a = ds.arange(4)
    b = ds.ones(3, requires_grad=True)
    ds.einsum("i,j->ij", a, b).sum().backward()
    assert b.grad.dtype == ds.float32
    np.testing.assert_array_equal(b.grad.numpy(), np.full(3, 6.0, dtype=np.float32))
