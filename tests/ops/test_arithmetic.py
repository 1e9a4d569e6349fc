"""Elementwise ops of two tensors (downslope.ops.arithmetic) against PyTorch: where the inputs tie."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# Equal pairs in positions 0 and 2, a win for each side elsewhere.
_A = np.array([1.0, 2.0, 3.0, 2.0, -1.5])
_B = np.array([1.0, 5.0, 3.0, 0.0, -1.5])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximum_minimum_split_a_tie_evenly_like_torch(check_op, name, dtype):
    check_op(getattr(ds, name), getattr(torch, name), [_A.astype(dtype), _B.astype(dtype)])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_the_tie_share_is_one_half_for_each_input(name):
    a = ds.tensor(_A, requires_grad=True)
    b = ds.tensor(_B, requires_grad=True)
    getattr(ds, name)(a, b).backward(ds.tensor([2.0, 1.0, 4.0, 1.0, 6.0]))
    win_a = [0.0, 0.0, 0.0, 1.0, 0.0] if name == "maximum" else [0.0, 1.0, 0.0, 0.0, 0.0]
    win_b = [0.0, 1.0, 0.0, 0.0, 0.0] if name == "maximum" else [0.0, 0.0, 0.0, 1.0, 0.0]
    tie = np.array([1.0, 0.0, 2.0, 0.0, 3.0])  # half of the upstream gradient where the inputs are equal
    np.testing.assert_array_equal(a.grad.numpy(), tie + win_a)
    np.testing.assert_array_equal(b.grad.numpy(), tie + win_b)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_a_broadcast_operand_sums_its_tie_shares_like_torch(check_op, name):
    # the scalar 2.0 ties with two elements of the vector: it gets half of each of their gradients
    check_op(getattr(ds, name), getattr(torch, name), [np.array(2.0), np.array([2.0, 2.0, 1.0, 3.0])])
    check_op(
        getattr(ds, name), getattr(torch, name), [np.full((3, 1), 0.5), np.array([[0.5, 0.5], [1.0, 0.0], [0.5, 2.0]])]
    )


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_tie_gradients_under_create_graph_match_torch(name):
    a, b = ds.tensor(_A, requires_grad=True), ds.tensor(_B, requires_grad=True)
    ta, tb = torch.tensor(_A, requires_grad=True), torch.tensor(_B, requires_grad=True)
    ga, gb = ds.autograd.grad((getattr(ds, name)(a, b) ** 2).sum(), [a, b], create_graph=True)
    tga, tgb = torch.autograd.grad((getattr(torch, name)(ta, tb) ** 2).sum(), [ta, tb], create_graph=True)
    np.testing.assert_allclose(ga.numpy(), tga.detach().numpy())
    np.testing.assert_allclose(gb.numpy(), tgb.detach().numpy())
    (ga * ga + gb).sum().backward()
    (tga * tga + tgb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


@pytest.mark.parametrize("dtype", ["int64", "int8", "uint8"])
@pytest.mark.parametrize("divisor", [3, "tensor", 2.5])
def test_fmod_and_remainder_of_integers_keep_the_integer_dtype_like_torch(dtype, divisor):
    data = [-7, 7, 5] if dtype != "uint8" else [7, 5, 0]
    for name in ("fmod", "remainder"):
        ours = getattr(ds, name)(
            ds.tensor(data, dtype=getattr(ds, dtype)), ds.tensor([3, 3, 3]) if divisor == "tensor" else divisor
        )
        theirs = getattr(torch, name)(
            torch.tensor(data, dtype=getattr(torch, dtype)), torch.tensor([3, 3, 3]) if divisor == "tensor" else divisor
        )
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "op",
    [
        lambda m: m.tensor([3, 4]) // m.tensor([0, 2]),
        lambda m: m.tensor([3, 4]) % 0,
        lambda m: m.fmod(m.tensor([3]), 0),
        lambda m: m.div(m.tensor([3]), 0, rounding_mode="floor"),
        lambda m: m.div(m.tensor([3]), 0, rounding_mode="trunc"),
    ],
)
@pytest.mark.host_only  # the check reads the divisor: on a device it would wait for it
def test_integer_division_by_zero_raises_like_torch(op):
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        op(torch)
    with pytest.raises(ZeroDivisionError):
        op(ds)
    with pytest.raises(RuntimeError):
        op(ds)


@pytest.mark.parametrize("name", ["add", "sub"])
@pytest.mark.parametrize("alpha", [2, 0.5, -3])
def test_add_and_sub_take_alpha_like_torch(check_op, name, alpha):
    a, b = np.array([[1.0, -2.0, 0.5]]), np.array([[3.0], [0.25]])
    check_op(
        lambda x, y: getattr(ds, name)(x, y, alpha=alpha), lambda x, y: getattr(torch, name)(x, y, alpha=alpha), [a, b]
    )
    ours = getattr(ds, name)(ds.tensor([1, 2]), ds.tensor([3, 4]), alpha=2)
    theirs = getattr(torch, name)(torch.tensor([1, 2]), torch.tensor([3, 4]), alpha=2)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
