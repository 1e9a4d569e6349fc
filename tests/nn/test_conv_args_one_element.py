"""A one-element list for a 2-D or 3-D convolution's or pooling's size arguments stands for every dim,
as an int does (torch expands it)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")


def test_one_element_tuples_expand_as_in_torch() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 7, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    tx, tw = torch.tensor(x), torch.tensor(w)
    dx, dw = ds.tensor(x), ds.tensor(w)
    pairs = [
        (F.conv2d(dx, dw, padding=(1,), stride=(2,)), torch.nn.functional.conv2d(tx, tw, padding=(1,), stride=(2,))),
        (F.conv2d(dx, dw, dilation=[2]), torch.nn.functional.conv2d(tx, tw, dilation=[2])),
        (F.max_pool2d(dx, (2,)), torch.nn.functional.max_pool2d(tx, (2,))),
        (F.avg_pool2d(dx, (3,), stride=(2,)), torch.nn.functional.avg_pool2d(tx, (3,), stride=(2,))),
    ]
    for ours, theirs in pairs:
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
