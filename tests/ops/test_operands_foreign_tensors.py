"""Comparisons of a tensor with another library's tensor (half-ported code mixing torch and downslope)
convert it as + and * do, so the result is a downslope boolean tensor on NumPy."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_OPERATORS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("op", _OPERATORS, ids=lambda f: f.__name__)
def test_comparison_with_a_torch_tensor_is_a_downslope_boolean_tensor(op) -> None:  # type: ignore[no-untyped-def]
    a = ds.tensor([1.0, 2.0, 3.0])
    b = torch.tensor([1.0, 3.0, 2.0])
    got = op(a, b)
    assert isinstance(got, ds.Tensor)
    assert type(got.array) is type(a.array)  # not a torch tensor: on a's device
    assert got.dtype == ds.bool
    np.testing.assert_array_equal(got.numpy(), op(torch.tensor([1.0, 2.0, 3.0]), b).numpy())
    # the named methods too
    method = getattr(a, op.__name__)(b)
    assert type(method.array) is type(a.array)
    np.testing.assert_array_equal(method.numpy(), got.numpy())


def test_comparison_result_with_a_torch_tensor_works_downstream() -> None:
    a = ds.tensor([1.0, 2.0])
    r = a == torch.tensor([1.0, 3.0])
    assert r.sum().item() == 1
    np.testing.assert_array_equal(a[r].numpy(), [1.0])
    assert ds.where(r, a, a * 0).tolist() == [1.0, 0.0]


def test_comparison_with_a_torch_tensor_uses_its_dtype_and_broadcasts() -> None:
    a = ds.tensor([[0.1], [0.2]])  # float32
    b = torch.tensor([0.1, 0.3], dtype=torch.float64)
    want = torch.tensor([[0.1], [0.2]]) == b
    np.testing.assert_array_equal((a == b).numpy(), want.numpy())
    assert (a == b).shape == (2, 2)
    # an integer tensor against a torch float, and a 0-d torch tensor
    np.testing.assert_array_equal(
        (ds.tensor([1, 2]) < torch.tensor(1.5)).numpy(), (torch.tensor([1, 2]) < torch.tensor(1.5)).numpy()
    )


def test_fft_of_a_torch_tensor_names_its_type() -> None:
    with pytest.raises(TypeError, match=r"not torch\.Tensor"):
        ds.fft.fft(torch.ones(4))


@pytest.mark.parametrize(
    "op, left, right",
    [
        (operator.truediv, [1, 2, 3], [2, 2, 2]),  # integer operands: the float path asked the dtype's kind
        (operator.floordiv, [1, 5, -3], [2, 2, 2]),
        (operator.mod, [1, 5, -3], [2, 2, 2]),
        (operator.truediv, [1, 2, 3], [2.0, 4.0, 8.0]),
        (operator.and_, [True, False, True], [True, True, False]),  # bitwise ops went to torch's __rand__
        (operator.or_, [True, False, False], [True, False, True]),
        (operator.xor, [3, 5, 6], [1, 1, 3]),
        (operator.lshift, [1, 2, 3], [1, 2, 0]),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_integer_and_boolean_ops_with_a_torch_tensor_give_downslope_tensors_as_torch(op, left, right) -> None:  # type: ignore[no-untyped-def]
    ours = ds.tensor(left)
    got = op(ours, torch.tensor(right))
    assert isinstance(got, ds.Tensor) and type(got.array) is type(ours.array)  # on ours's device
    want = op(torch.tensor(left), torch.tensor(right))
    assert str(got.dtype).removeprefix("downslope.") == str(want.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(got.numpy(), want.numpy())
