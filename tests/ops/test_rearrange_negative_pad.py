"""Negative pads (crops) in F.pad / ds.ops.pad, against torch: values and float64 gradients."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torch.nn.functional")

MODES = ["constant", "reflect", "replicate", "circular"]
CASES = [
    ((1, 3, 4), (-1, -1)),
    ((1, 3, 4), (-1, 2)),
    ((1, 3, 4), (2, -1)),
    ((1, 3, 4), (1, -3)),
    ((1, 3, 4), (2, -2)),
    ((1, 3, 4), (3, -3)),
    ((1, 3, 4), (-3, 3)),
    ((1, 3, 4), (3, -2)),
    ((1, 3, 4), (-2, 3)),
    ((1, 3, 4), (-2, -2)),
    ((1, 3, 4), (-4, 0)),
    ((1, 2, 3, 4), (-1, 1, 1, -1)),
    ((1, 2, 3, 4), (0, 0, -1, -1)),
    ((1, 2, 3, 4), (-2, 1, 2, -1)),
    ((1, 1, 3, 4, 5), (-1, 1, 1, -1, -1, 2)),
]


def _torch_result(a, pads, mode, w_seed):
    t = torch.tensor(a, requires_grad=True)
    y = TF.pad(t, pads, mode=mode)
    w = np.random.default_rng(w_seed).normal(size=tuple(y.shape))
    (y * torch.tensor(w)).sum().backward()
    return y.detach().numpy(), t.grad.numpy(), w


def _wraps_twice(shape, pads, mode):
    """Circular pads past what the crop leaves: torch reads uninitialised memory there; refused here."""
    if mode != "circular":
        return False
    for k in range(len(pads) // 2):
        n, before, after = shape[-1 - k], pads[2 * k], pads[2 * k + 1]
        kept = n - max(-before, 0) - max(-after, 0)
        if n + before + after and (before > kept or after > kept):
            return True
    return False


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("shape", "pads"), CASES, ids=[f"{s}{p}" for s, p in CASES])
def test_negative_pads_match_torch_values_and_gradients(mode, shape, pads):
    a = np.random.default_rng(0).normal(size=shape)
    try:
        expected = _torch_result(a, pads, mode, 1)
    except RuntimeError:
        with pytest.raises(ArgumentError):
            F.pad(ds.tensor(a, dtype=ds.float64), pads, mode=mode)
        return
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    if _wraps_twice(shape, pads, mode):
        with pytest.raises(ArgumentError, match="wraps around more than once"):
            F.pad(x, pads, mode=mode)
        return
    y = F.pad(x, pads, mode=mode)
    values, grad, w = expected
    np.testing.assert_allclose(y.detach().numpy(), values, rtol=1e-13, atol=0)
    (y * ds.tensor(w, dtype=ds.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", MODES)
def test_negative_pads_on_the_strict_device(mode):
    a = np.random.default_rng(2).normal(size=(2, 3, 5))
    values, grad, w = _torch_result(a, (-1, 2), mode, 3)
    x = ds.tensor(a, dtype=ds.float64, device="strict", requires_grad=True)
    y = F.pad(x, (-1, 2), mode=mode)
    (y * ds.tensor(w, dtype=ds.float64, device="strict")).sum().backward()
    np.testing.assert_allclose(y.detach().cpu().numpy(), values, rtol=1e-13)
    np.testing.assert_allclose(x.grad.cpu().numpy(), grad, rtol=1e-13)


def test_constant_crop_takes_the_value_and_double_backward():
    x = ds.tensor([[1.0, 2.0, 3.0]], dtype=ds.float64, requires_grad=True)
    y = F.pad(x, (-1, 2), value=7.0)
    assert y.tolist() == [[2.0, 3.0, 7.0, 7.0]]
    (g,) = ds.autograd.grad((y**2).sum(), x, create_graph=True)
    assert g.tolist() == [[0.0, 4.0, 6.0]]
    (gg,) = ds.autograd.grad(g.sum(), x)
    assert gg.tolist() == [[0.0, 2.0, 2.0]]


@pytest.mark.parametrize(
    ("mode", "pads", "match"),
    [
        ("constant", (-5, 1), "crops more than its size 4"),
        ("reflect", (-4, 0), "too small"),
        ("replicate", (-2, -2), "too small"),
        ("circular", (-6, 1), "negative size"),
    ],
)
def test_crops_past_the_size_are_refused_as_torch_does(mode, pads, match):
    with pytest.raises(RuntimeError):
        TF.pad(torch.zeros(1, 3, 4), pads, mode=mode)
    with pytest.raises(ArgumentError, match=match):
        F.pad(ds.zeros(1, 3, 4), pads, mode=mode)
