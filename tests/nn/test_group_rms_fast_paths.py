"""The fused group norm and RMS norm (the compiled kernels where they apply, the composite
elsewhere) against PyTorch: values, every gradient, double backward, layouts, groups of one
value, and float32 data far from zero."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import DTypeError
from downslope.nn import _jit

torch = pytest.importorskip("torch")
TF = torch.nn.functional

PATHS = ["numpy", "jit"]


@contextmanager
def _path(name: str) -> Iterator[None]:
    with _jit.disabled() if name == "numpy" else nullcontext():
        yield


def _pair(a: np.ndarray, dtype: Any = np.float64) -> tuple[Any, Any]:
    a = np.asarray(a, dtype=dtype)
    dt = ds.float64 if a.dtype == np.float64 else ds.float32
    return ds.tensor(a, dtype=dt, requires_grad=True), torch.tensor(a, requires_grad=True)


def _close(ours: Any, theirs: Any, rtol: float, atol: float) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------- group norm
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize(
    "shape, groups",
    [((3, 6, 4, 5), 3), ((2, 8, 7), 8), ((4, 6), 2), ((5, 4, 1), 4), ((2, 4, 3, 2, 2), 1), ((1, 32, 9), 8)],
)
def test_group_norm_values_and_gradients_match_torch(path: str, affine: str, shape: tuple, groups: int) -> None:
    rng = np.random.default_rng(0)
    c = shape[1]
    x, tx = _pair(rng.standard_normal(shape) * 2 + 1)
    w, tw = _pair(rng.uniform(0.5, 1.5, c)) if affine in ("both", "weight") else (None, None)
    b, tb = _pair(rng.standard_normal(c)) if affine in ("both", "bias") else (None, None)
    g = rng.standard_normal(shape)
    with _path(path):
        y = F.group_norm(x, groups, w, b)
        (y * ds.tensor(g, dtype=ds.float64)).sum().backward()
    # torch's backward fails on a bias without a weight ("tensor does not have a device"): a weight of ones
    ty = TF.group_norm(tx, groups, torch.ones(c, dtype=torch.float64) if tw is None and tb is not None else tw, tb)
    (ty * torch.tensor(g)).sum().backward()
    _close(y, ty, 1e-10, 1e-10)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            _close(ours.grad, theirs.grad, 1e-8, 1e-9)


@pytest.mark.parametrize("path", PATHS)
def test_group_norm_float32_module_matches_torch(path: str) -> None:
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((8, 32, 6, 5)) * 2 + 0.5).astype(np.float32)
    g = rng.standard_normal(a.shape).astype(np.float32)
    ours, theirs = ds.nn.GroupNorm(8, 32), torch.nn.GroupNorm(8, 32)
    with torch.no_grad(), ds.no_grad():
        for p_t, p_d in zip(theirs.parameters(), ours.parameters()):
            v = rng.uniform(0.5, 1.5, p_t.shape).astype(np.float32)
            p_t.copy_(torch.from_numpy(v))
            p_d.copy_(ds.tensor(v))
    x, tx = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with _path(path):
        y = ours(x)
        y.backward(ds.tensor(g, dtype=ds.float64))
        with ds.no_grad():
            y0 = ours(x)
    ty = theirs(tx)
    ty.backward(torch.from_numpy(g))
    assert y.dtype == ds.float32 and x.grad.dtype == ds.float32 and ours.weight.grad.dtype == ds.float32
    _close(y, ty, 1e-5, 1e-5)
    _close(y0, ty, 1e-5, 1e-5)
    _close(x.grad, tx.grad, 1e-4, 1e-5)
    _close(ours.weight.grad, theirs.weight.grad, 1e-4, 1e-4)
    _close(ours.bias.grad, theirs.bias.grad, 1e-4, 1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_group_norm_of_a_non_contiguous_input_and_an_output_changed_in_place(path: str) -> None:
    rng = np.random.default_rng(2)
    x, tx = _pair(rng.standard_normal((3, 5, 4, 6)))
    w, tw = _pair(rng.uniform(0.5, 1.5, 4))
    with _path(path):
        y = F.group_norm(x.permute(0, 2, 1, 3)[..., ::2], 2, w)
        y.add_(1.0)  # the backward pass reads the input and the statistics, not the output
        (y * y).sum().backward()
    ty = TF.group_norm(tx.permute(0, 2, 1, 3)[..., ::2], 2, tw)
    ty.add_(1.0)
    (ty * ty).sum().backward()
    _close(y, ty, 1e-10, 1e-12)
    _close(x.grad, tx.grad, 1e-8, 1e-10)
    _close(w.grad, tw.grad, 1e-8, 1e-10)


@pytest.mark.parametrize("path", PATHS)
def test_group_norm_double_backward_matches_torch(path: str) -> None:
    rng = np.random.default_rng(3)
    x, tx = _pair(rng.standard_normal((2, 6, 5)))
    w, tw = _pair(rng.uniform(0.5, 1.5, 6))
    b, tb = _pair(rng.standard_normal(6))
    c = rng.standard_normal((2, 6, 5))
    with _path(path):
        y = (F.group_norm(x, 3, w, b) ** 3 * ds.tensor(c, dtype=ds.float64)).sum()
        gx, gw = ds.autograd.grad(y, (x, w), create_graph=True)
        ((gx * gx).sum() + (gw * gw).sum()).backward()
    ty = (TF.group_norm(tx, 3, tw, tb) ** 3 * torch.tensor(c)).sum()
    tgx, tgw = torch.autograd.grad(ty, (tx, tw), create_graph=True)
    ((tgx * tgx).sum() + (tgw * tgw).sum()).backward()
    _close(gx, tgx, 1e-9, 1e-10)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        _close(ours.grad, theirs.grad, 1e-8, 1e-9)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("offset", [1e3, 1e4])
def test_group_norm_far_from_zero_keeps_the_variance(path: str, offset: float) -> None:
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((16, 8, 32)) * 0.01 + offset).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    x64 = x.astype(np.float64).reshape(16, 4, -1)
    want = ((x64 - x64.mean(2, keepdims=True)) / np.sqrt(x64.var(2, keepdims=True) + 1e-5)).reshape(x.shape)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    TF.group_norm(tx, 4).backward(torch.from_numpy(g.astype(np.float64)))
    xd = ds.tensor(x, requires_grad=True)
    with _path(path):
        y = F.group_norm(xd, 4)
        y.backward(ds.tensor(g, dtype=ds.float64))
    np.testing.assert_allclose(y.detach().numpy(), want, atol=2e-3)
    assert float(y.detach().numpy().std()) == pytest.approx(float(want.std()), abs=1e-4)
    # the gradient scales with 1/std = 100: compare relative to its size
    gx, tgx = xd.grad.numpy(), tx.grad.numpy()
    assert np.abs(gx - tgx).max() <= 2e-3 * np.abs(tgx).max()


@pytest.mark.parametrize("path", PATHS)
def test_group_norm_of_constant_groups_and_groups_of_one_value(path: str) -> None:
    b = ds.tensor(np.arange(4.0, dtype=np.float32))
    with _path(path):
        y = F.group_norm(ds.full((2, 4, 3), 1e4 + 0.1), 2)
        z = F.group_norm(ds.randn(3, 4, 1), 4, None, b)  # one value per group: zero variance, the bias
    assert np.abs(y.numpy()).max() == 0
    np.testing.assert_array_equal(z.numpy(), np.broadcast_to(np.arange(4.0).reshape(4, 1), (3, 4, 1)))


@pytest.mark.parametrize("path", PATHS)
def test_group_norm_parameter_gradients_alone_and_mixed_dtypes(path: str) -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 6, 7)).astype(np.float32)
    w64 = rng.uniform(0.5, 1.5, 6)
    ours, theirs = ds.nn.GroupNorm(3, 6), torch.nn.GroupNorm(3, 6)
    with _path(path):
        ours(ds.tensor(a)).sum().backward()  # the input needs no gradient
        with pytest.raises(DTypeError, match="group_norm: input dtype float32 differs from weight dtype float64"):
            F.group_norm(ds.tensor(a), 3, ds.tensor(w64, dtype=ds.float64))  # refused, as torch refuses it
    with pytest.raises(RuntimeError, match="mixed dtype"):
        TF.group_norm(torch.from_numpy(a), 3, torch.from_numpy(w64))
    theirs(torch.from_numpy(a)).sum().backward()
    _close(ours.weight.grad, theirs.weight.grad, 1e-4, 1e-4)
    _close(ours.bias.grad, theirs.bias.grad, 1e-4, 1e-4)


# ---------------------------------------------------------------------- RMS norm
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("shape, norm", [((6, 16), (16,)), ((3, 4, 5, 6), (5, 6)), ((4, 1), (1,)), ((7,), (7,))])
def test_rms_norm_values_and_gradients_match_torch(
    path: str, affine: bool, eps: Any, shape: tuple, norm: tuple
) -> None:
    rng = np.random.default_rng(10)
    x, tx = _pair(rng.standard_normal(shape) * 3 + 1)
    w, tw = _pair(rng.uniform(0.5, 1.5, norm)) if affine else (None, None)
    g = rng.standard_normal(shape)
    with _path(path):
        y = F.rms_norm(x, norm, w, eps)
        (y * ds.tensor(g, dtype=ds.float64)).sum().backward()
    ty = TF.rms_norm(tx, norm, tw, eps)
    (ty * torch.tensor(g)).sum().backward()
    _close(y, ty, 1e-10, 1e-10)
    _close(x.grad, tx.grad, 1e-8, 1e-9)
    if affine:
        _close(w.grad, tw.grad, 1e-8, 1e-9)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(64, 48), (4096, 16), (2, 3, 256)])
def test_rms_norm_float32_module_matches_torch(path: str, shape: tuple) -> None:
    rng = np.random.default_rng(11)
    a = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    n = shape[-1]
    ours, theirs = ds.nn.RMSNorm(n), torch.nn.RMSNorm(n)
    w0 = rng.uniform(0.5, 1.5, n).astype(np.float32)
    with torch.no_grad(), ds.no_grad():
        theirs.weight.copy_(torch.from_numpy(w0))
        ours.weight.copy_(ds.tensor(w0))
    x, tx = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with _path(path):
        y = ours(x)
        y.backward(ds.tensor(g))
        with ds.no_grad():
            y0 = ours(x)
        ours(ds.tensor(a)).sum().backward()  # the input needs no gradient: only the weight gets one
    ty = theirs(tx)
    ty.backward(torch.from_numpy(g))
    theirs(torch.from_numpy(a)).sum().backward()
    assert y.dtype == ds.float32 and x.grad.dtype == ds.float32 and ours.weight.grad.dtype == ds.float32
    assert not y0.requires_grad
    _close(y, ty, 1e-5, 1e-6)
    _close(y0, ty, 1e-5, 1e-6)
    _close(x.grad, tx.grad, 1e-5, 1e-5)
    _close(ours.weight.grad, theirs.weight.grad, 1e-4, 1e-3)


@pytest.mark.parametrize("path", PATHS)
def test_rms_norm_double_backward_non_contiguous_input_and_output_changed_in_place(path: str) -> None:
    rng = np.random.default_rng(12)
    base, tbase = _pair(rng.standard_normal((5, 14)))
    w, tw = _pair(rng.uniform(0.5, 1.5, 7))
    c = rng.standard_normal((5, 7))
    with _path(path):
        y = F.rms_norm(base[:, ::2], 7, w)
        z = (y**3 * ds.tensor(c, dtype=ds.float64)).sum()
        gx, gw = ds.autograd.grad(z, (base, w), create_graph=True)
        ((gx * gx).sum() + (gw * gw).sum()).backward()
        y2 = F.rms_norm(base[:, 1::2], 7, w)
        y2.add_(1.0)  # the backward pass reads the input and 1/rms, not the output
        (y2 * y2).sum().backward()
    ty = TF.rms_norm(tbase[:, ::2], (7,), tw)
    tz = (ty**3 * torch.tensor(c)).sum()
    tgx, tgw = torch.autograd.grad(tz, (tbase, tw), create_graph=True)
    ((tgx * tgx).sum() + (tgw * tgw).sum()).backward()
    ty2 = TF.rms_norm(tbase[:, 1::2], (7,), tw)
    ty2.add_(1.0)
    (ty2 * ty2).sum().backward()
    _close(gx, tgx, 1e-9, 1e-10)
    _close(y2, ty2, 1e-10, 1e-10)
    _close(base.grad, tbase.grad, 1e-8, 1e-9)
    _close(w.grad, tw.grad, 1e-8, 1e-9)


@pytest.mark.parametrize("path", PATHS)
def test_rms_norm_of_zero_rows_and_half_and_mixed_dtypes(path: str) -> None:
    rng = np.random.default_rng(13)
    a = rng.standard_normal((3, 8))
    w64 = rng.uniform(0.5, 1.5, 8)
    with _path(path):
        z = F.rms_norm(ds.zeros(2, 8, requires_grad=True), 8)
        z.sum().backward()
        h = F.rms_norm(ds.tensor(a, dtype=ds.float16), 8)
        m = F.rms_norm(ds.tensor(a), 8, ds.tensor(w64, dtype=ds.float64))  # float32 input, float64 weight
    with warnings.catch_warnings():  # torch: the mixed dtypes cannot take its fused kernel
        warnings.simplefilter("ignore")
        tm = TF.rms_norm(torch.tensor(a, dtype=torch.float32), (8,), torch.tensor(w64))
    assert np.abs(z.detach().numpy()).max() == 0
    th = TF.rms_norm(torch.tensor(a, dtype=torch.float16), (8,))
    assert h.dtype == ds.float16 and m.dtype == ds.float32 and tm.dtype == torch.float32  # the input's dtype
    np.testing.assert_allclose(h.numpy().astype(np.float32), th.float().numpy(), rtol=2e-3, atol=2e-3)
    _close(m, tm, 1e-6, 1e-6)
