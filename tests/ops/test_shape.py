"""Joining and summing shapes (downslope.ops.shape) against PyTorch: 0-d tensors in the stacks, and
the dtype of ``Tensor.sum_to_size``."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["row_stack", "vstack", "hstack", "dstack", "column_stack"])
def test_stacks_of_0d_tensors_match_torch_with_their_gradient(name):
    results = []
    for m in (ds, torch):
        a = m.tensor(1.0, requires_grad=True)
        out = getattr(m, name)([a, m.tensor(2.0)])
        (out * m.tensor(3.0)).sum().backward()
        results.append((tuple(out.shape), out.tolist(), a.grad.item()))
    assert results[0] == results[1]


@pytest.mark.parametrize("name", ["row_stack", "vstack", "hstack", "dstack", "column_stack"])
@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (2, 3)], [(), (1,)]])
def test_stacks_of_mixed_ranks_match_torch(name, shapes):
    outcomes = []
    for m in (ds, torch):
        try:
            out = getattr(m, name)([m.ones(s) for s in shapes])
            outcomes.append(tuple(out.shape))
        except (RuntimeError, ValueError):
            outcomes.append("error")
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        (True, "bool"),
        ([True, False], "bool"),
        ([[True, False]], "bool"),
        (3, "int32"),
        ([1, 2], "uint8"),
        (2.0, "float32"),
    ],
)
def test_sum_to_size_sums_integers_into_int64_as_torch(data, dtype):
    x, t = ds.tensor(data, dtype=getattr(ds, dtype)), torch.tensor(data, dtype=getattr(torch, dtype))
    for size in [(), tuple(t.shape), (1,) * t.dim()]:
        ours, theirs = x.sum_to_size(size), t.sum_to_size(size)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_cat_of_zero_dimensional_tensors_says_so_as_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="zero-dimensional tensor \\(at position 1\\)"):
        torch.cat([torch.ones(1), torch.tensor(2.0)])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor \\(at position 1\\) cannot be concatenated"):
        ds.cat([ds.ones(1), ds.tensor(2.0)])
