"""``t[i]`` and ``t[a:b]`` on a tensor outside the graph take a short path; it must give what the
general path gives (torch's answers): views that share memory and the version counter, the 0-d view
of one element, the same errors, and a base brought into the graph by a recorded write through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import ArgumentError, OutOfRangeError
from downslope.ops import indexing


@pytest.mark.parametrize("index", [0, 3, -1, -5, slice(1, 4), slice(None, None, 2), slice(-3, None), slice(4, 1)])
@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 2, 2)])
def test_int_and_slice_indexing_outside_the_graph_matches_torch(index, shape):
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    ours, theirs = ds.tensor(values), torch.tensor(values)
    got, want = ours[index], theirs[index]
    assert got.shape == tuple(want.shape) and got.dtype == ds.float32 and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    got.fill_(-7.0)  # a view, as in torch: the write reaches the base, a 0-d element included
    want.fill_(-7.0)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert got._version == ours._version == 1


def test_the_short_path_skips_the_general_normalising(monkeypatch):
    def general(*args, **kwargs):
        raise AssertionError("t[i] outside the graph took the general path")

    x = ds.arange(12.0).reshape(4, 3)
    monkeypatch.setattr(indexing, "_normalize_index", general)
    assert x[1].tolist() == [3.0, 4.0, 5.0] and x[1:3].shape == (2, 3) and x[0][2].item() == 2.0
    with pytest.raises(AssertionError):  # a tensor that requires grad still records through the general path
        ds.arange(3.0, requires_grad=True)[1]


@pytest.mark.parametrize("index, error", [(5, OutOfRangeError), (-6, OutOfRangeError), (slice(0, 3, 0), ArgumentError)])
def test_bad_indices_still_fail_with_the_general_message(index, error):
    with pytest.raises(error):
        ds.arange(5.0)[index]
    with pytest.raises(OutOfRangeError):
        ds.tensor(1.0)[0]  # a 0-d tensor has no dim to index


def test_a_recorded_write_through_a_row_brings_the_base_into_the_graph_like_torch():
    base_values = np.zeros((3, 2), np.float32)
    w_values = np.array([1.5, -2.0], np.float32)
    ours_base, theirs_base = ds.tensor(base_values), torch.tensor(base_values)
    ours_w, theirs_w = ds.tensor(w_values, requires_grad=True), torch.tensor(w_values, requires_grad=True)
    ours_row, theirs_row = ours_base[1], theirs_base[1]
    ours_row.add_(ours_w * 3)
    theirs_row.add_(theirs_w * 3)
    (ours_base * ds.arange(6.0).reshape(3, 2)).sum().backward()
    (theirs_base * torch.arange(6.0).reshape(3, 2)).sum().backward()
    np.testing.assert_allclose(ours_base.detach().numpy(), theirs_base.detach().numpy())
    np.testing.assert_allclose(ours_w.grad.numpy(), theirs_w.grad.numpy())


def test_rows_of_a_parameter_that_does_not_require_grad_are_plain_views():
    p = ds.nn.Parameter(ds.arange(6.0).reshape(3, 2), requires_grad=False)
    row = p[2]
    assert type(row) is ds.Tensor and not row.requires_grad and row.tolist() == [4.0, 5.0]
    row.mul_(2)
    assert p.tolist()[2] == [8.0, 10.0]
