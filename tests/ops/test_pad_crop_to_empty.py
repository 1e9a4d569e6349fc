"""Reflect and replicate padding whose negative pads crop a dimension to size 0 give an empty
result, as torch's; torch refuses only when every padded dimension would be empty (or one would be
negative), and so does downslope. Values, shapes and input gradients are compared with torch 2.13."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import downslope as ds
import downslope.nn.functional as DF


def _run(F, L, x: np.ndarray, pads: list[int], mode: str):
    try:
        xt = L.tensor(x, requires_grad=True)
        y = F.pad(xt, pads, mode=mode)
        g = np.arange(np.prod(tuple(y.shape)), dtype=np.float64).reshape(tuple(y.shape))
        y.backward(L.tensor(g))
    except RuntimeError:
        return None
    return tuple(y.shape), y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("pads", [[-1, -1, 1, 1], [0, 0, -2, -2], [-2, 0, 0, 0], [1, -3, 0, 0]])
def test_crop_to_empty_matches_torch(mode, pads):
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float64).reshape(2, 3, 4, 2)
    expected, got = _run(TF, torch, x, pads, mode), _run(DF, ds, x, pads, mode)
    assert expected is not None and got is not None
    assert got[0] == expected[0] and 0 in got[0]
    np.testing.assert_array_equal(got[2], expected[2])  # zeros: nothing reaches the input


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("shape", [(1, 2, 3), (2, 3, 4, 2), (1, 1, 2, 3, 2)])
def test_every_small_pad_agrees_with_torch_on_accepting_and_result(mode, shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    spatial = len(shape) - 2
    for pads in itertools.product(range(-3, 3), repeat=2 * min(spatial, 2)):
        pads = list(pads) + [0] * (2 * spatial - len(pads))
        expected, got = _run(TF, torch, x, pads, mode), _run(DF, ds, x, pads, mode)
        assert (expected is None) == (got is None), (pads, expected is None)
        if expected is not None:
            assert got[0] == expected[0], pads
            np.testing.assert_array_equal(got[1], expected[1])
            if 0 in got[0]:
                # an empty output sends nothing back: zeros (torch's 3-D reflect backward leaves its
                # gradient buffer unwritten here and returns whatever memory held)
                assert not got[2].any(), pads
            else:
                np.testing.assert_array_equal(got[2], expected[2])


def test_every_padded_dim_empty_is_refused_with_the_sizes():
    x = ds.zeros(2, 3, 4, 2)
    with pytest.raises(RuntimeError, match=r"every one of them would be empty \(output sizes \(0, 0\)\)"):
        DF.pad(x, [-2, 0, -2, -2], mode="reflect")
