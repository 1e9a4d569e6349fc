"""F.pad's copying modes on the last dim of a small host tensor (one concatenate): values and
gradients (and double backward) as torch's, and as ops.pad's general path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds


@pytest.mark.parametrize("mode", ["replicate", "reflect", "circular"])
@pytest.mark.parametrize("shape", [(1, 1, 8), (2, 3, 5), (3, 6)])
@pytest.mark.parametrize("pad", [(1, 1), (0, 2), (3, 0), (2, 4), (0, 0)])
def test_pad_last_dim_matches_torch(mode, shape, pad):
    n = shape[-1]
    if mode == "reflect" and max(pad) >= n or mode == "circular" and max(pad) > n:
        pytest.skip("torch refuses these")
    x = np.random.default_rng(0).normal(size=shape)
    xt = torch.tensor(x, requires_grad=True)
    xd = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    yt = torch.nn.functional.pad(xt, pad, mode=mode)
    yd = ds.nn.functional.pad(xd, pad, mode=mode)
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    g = np.cos(np.arange(yt.numel())).reshape(tuple(yt.shape))
    (gt,) = torch.autograd.grad((yt * torch.tensor(g)).sum(), xt, create_graph=True)
    (gd,) = ds.autograd.grad((yd * ds.tensor(g, dtype=ds.float64)).sum(), xd, create_graph=True)
    np.testing.assert_allclose(gd.detach().numpy(), gt.detach().numpy(), rtol=1e-15, atol=1e-15)


@pytest.mark.host_only  # the direct path is the host arrays'
def test_replicate_pad_takes_one_concatenate(monkeypatch):
    """The stencil's replicate padding does not go through ops.pad's general path."""
    from downslope import ops

    def refuse(*args, **kwargs):
        raise AssertionError("ops.pad was called")

    monkeypatch.setattr(ops, "pad", refuse)
    y = ds.nn.functional.pad(ds.arange(4.0)[None, None], (1, 2), mode="replicate")
    assert y.tolist() == [[[0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 3.0]]]


def test_refused_pads_keep_their_errors():
    with pytest.raises(ValueError, match="reflect padding size"):
        ds.nn.functional.pad(ds.ones(1, 1, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="replicate-pad"):
        ds.nn.functional.pad(ds.ones(1, 1, 0), (1, 1), mode="replicate")
    with pytest.raises(ValueError, match="value"):
        ds.nn.functional.pad(ds.ones(1, 1, 3), (1, 1), mode="replicate", value=2.0)
