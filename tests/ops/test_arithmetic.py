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
