"""Reductions (downslope.ops.reductions) against PyTorch: how max, min, amax and amin share a gradient
among tied elements."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# Row 0 has a tie for the largest value, row 1 is all ties, row 2 has a tie for the smallest.
_X = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 4.0, -1.0, 0.5]])


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_min_of_all_elements_split_a_tie_evenly_like_torch(check_op, name, dtype):
    check_op(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [_X.astype(dtype)])
    check_op(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [_X[1].astype(dtype)])


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dim", [0, 1, (0, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_amin_split_a_tie_evenly_like_torch(check_op, name, dim, keepdim):
    check_op(lambda t: getattr(ds, name)(t, dim, keepdim), lambda t: getattr(torch, name)(t, dim, keepdim), [_X])


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1])
def test_max_min_along_a_dim_give_a_tie_gradient_to_the_returned_index_like_torch(check_op, name, dim):
    check_op(lambda t: getattr(t, name)(dim).values, lambda t: getattr(t, name)(dim).values, [_X])
    ours = getattr(ds.tensor(_X), name)(dim).indices.numpy()
    np.testing.assert_array_equal(ours, getattr(torch.tensor(_X), name)(dim).indices.numpy())


def test_the_tie_share_of_a_full_max_is_one_over_the_number_of_ties():
    x = ds.tensor(_X[1], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(4, 0.25))
    y = ds.tensor(_X[0], requires_grad=True)
    ds.amax(y, 0).backward(ds.tensor(3.0))
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 1.5, 1.5, 0.0])
