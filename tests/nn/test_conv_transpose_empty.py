"""A transposed convolution whose padding crops the output to size 0 returns the empty output, as
torch's float32 kernels do (shape (N, C_out, 0, ...)), with zero gradients; below 0 it is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import ShapeError

CASES = [
    ("conv_transpose1d", (2, 2, 1), (2, 2, 2), dict(stride=2, padding=1, groups=2)),
    ("conv_transpose1d", (2, 2, 1), (2, 3, 2), dict(stride=1, padding=1)),
    ("conv_transpose2d", (1, 2, 1, 3), (2, 1, 2, 2), dict(stride=2, padding=(1, 0), groups=2)),
]


@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", CASES)
def test_empty_output_and_zero_gradients_as_torch(name: str, x_shape: Any, w_shape: Any, kwargs: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1)).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    t = getattr(torch.nn.functional, name)(tx, tw, tb, **kwargs)
    t.sum().backward()
    dx, dw, db = (ds.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    d = getattr(F, name)(dx, dw, db, **kwargs)
    assert tuple(d.shape) == tuple(t.shape) and 0 in tuple(t.shape)
    assert d.dtype == ds.float32
    d.sum().backward()
    for got, want in ((dx, tx), (dw, tw), (db, tb)):
        assert got.grad is not None and want.grad is not None
        np.testing.assert_array_equal(got.grad.numpy(), want.grad.numpy())


def test_negative_output_size_refused() -> None:
    with pytest.raises(ShapeError, match="below 0"):
        F.conv_transpose1d(ds.ones(1, 1, 1), ds.ones(1, 1, 2), padding=2)
    with pytest.raises(ShapeError, match="below 0"):
        F.conv_transpose2d(ds.ones(1, 1, 1, 1), ds.ones(1, 1, 2, 2), padding=2)
