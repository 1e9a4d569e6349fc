"""x[mask] and x[i, mask] with a host boolean mask: values, shapes and gradients as torch's, without
getitem's general normalising (the direct path), and the general path's errors for masks that do
not fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.ops import indexing


def _index_both(a, make_index):
    xt = torch.tensor(a, requires_grad=True)
    xd = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    yt, yd = xt[make_index(torch)], xd[make_index(ds)]
    assert tuple(yd.shape) == tuple(yt.shape)
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    g = np.cos(np.arange(yt.numel())).reshape(tuple(yt.shape))
    (yt * torch.tensor(g)).sum().backward()
    (yd * ds.tensor(g, dtype=ds.float64)).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


A = np.random.default_rng(0).normal(size=(5, 6, 4))
M2 = A[..., 0] > 0
M1 = A[0, :, 0] > 0


@pytest.mark.parametrize(
    "make_index",
    [
        lambda t: t.tensor(M2),  # a mask over the first two dims
        lambda t: t.tensor(A > 0),  # over all of them
        lambda t: (1, t.tensor(M1)),  # an integer, then a mask
        lambda t: (-2, t.tensor(M1)),
        lambda t: (0, 3, t.tensor(A[0, 0] > 0)),
        lambda t: t.tensor(np.zeros(5, dtype=bool)),  # selects nothing
    ],
)
def test_mask_index_matches_torch(make_index):
    _index_both(A, make_index)


@pytest.mark.host_only  # the direct path is the host arrays'
def test_mask_takes_the_direct_path(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the general normalising ran")

    monkeypatch.setattr(indexing, "_normalize_index", refuse)
    x = ds.tensor(A, requires_grad=True)
    y = x[0, ds.tensor(M1)]
    y.sum().backward()
    assert tuple(y.shape) == (int(M1.sum()), 4)


def test_later_write_into_the_mask_does_not_move_the_gradient():
    x = ds.tensor(A, dtype=ds.float64, requires_grad=True)
    mask = ds.tensor(M2)
    y = x[mask]
    mask.fill_(False)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.broadcast_to(M2[..., None], A.shape).astype(float))


def test_masks_that_do_not_fit_keep_the_general_error():
    x = ds.tensor(A)
    with pytest.raises(IndexError):
        x[ds.tensor(np.ones(4, dtype=bool))]
    with pytest.raises(IndexError):
        x[7, ds.tensor(M1)]
