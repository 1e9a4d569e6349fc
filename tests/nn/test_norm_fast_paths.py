"""The fast paths of layer, group and inference batch norm (the compiled kernels, and the NumPy path
of matrix-vector statistics and in-place affine maps) against PyTorch: values, every gradient,
double backward, layouts, and data far from zero."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import _jit

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@contextmanager
def _path(name: str) -> Iterator[None]:
    with _jit.disabled() if name == "numpy" else nullcontext():
        yield


PATHS = ["numpy", "jit"]


@pytest.fixture(autouse=True)
def _compiled_at_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The small inputs of these tests take the compiled kernels on the "jit" path (below the size
    gates a process that has not loaded them would not)."""
    from downslope.nn import normalization

    monkeypatch.setattr(normalization, "JIT_LAYER_NORM_MIN_SIZE", 0)
    monkeypatch.setattr(normalization, "JIT_BATCH_NORM_MIN_SIZE", 0)


def _pair(a: np.ndarray, dtype: Any = np.float64) -> tuple[Any, Any]:
    a = a.astype(dtype)
    return ds.tensor(a, dtype=ds.float64 if a.dtype == np.float64 else ds.float32, requires_grad=True), torch.tensor(
        a, requires_grad=True
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize(
    "shape, norm", [((6, 16), (16,)), ((3, 4, 5, 6), (5, 6)), ((4, 1), (1,)), ((2, 3, 256), (256,))]
)
def test_layer_norm_values_and_gradients_match_torch(path: str, affine: str, shape: tuple, norm: tuple) -> None:
    rng = np.random.default_rng(0)
    x, tx = _pair(rng.standard_normal(shape) * 3 + 1)
    w, tw = _pair(rng.uniform(0.5, 1.5, norm)) if affine in ("both", "weight") else (None, None)
    b, tb = _pair(rng.standard_normal(norm)) if affine in ("both", "bias") else (None, None)
    g = rng.standard_normal(shape)
    with _path(path):
        y = F.layer_norm(x, norm, w, b)
        (y * ds.tensor(g, dtype=ds.float64)).sum().backward()
    ty = TF.layer_norm(tx, norm, tw, tb)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("path", PATHS)
def test_layer_norm_float32_module_no_grad_and_only_parameter_gradients(path: str) -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 48)).astype(np.float32)
    ours, theirs = ds.nn.LayerNorm(48), torch.nn.LayerNorm(48)
    w0 = rng.uniform(0.5, 1.5, 48).astype(np.float32)
    with torch.no_grad(), ds.no_grad():
        theirs.weight.copy_(torch.from_numpy(w0))
        ours.weight.copy_(ds.tensor(w0))
    with _path(path):
        with ds.no_grad():
            y0 = ours(ds.tensor(a))
        assert not y0.requires_grad
        y = ours(ds.tensor(a))  # the input needs no gradient: only the parameters get one
        y.sum().backward()
    ty = theirs(torch.from_numpy(a))
    ty.sum().backward()
    np.testing.assert_allclose(y0.numpy(), ty.detach().numpy(), atol=2e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_layer_norm_of_a_non_contiguous_input_and_an_output_changed_in_place(path: str) -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal((8, 20))
    x, tx = _pair(base)
    with _path(path):
        y = F.layer_norm(x[:, ::2], (10,))
        y.add_(1.0)  # the backward pass reads the saved normalized rows, not the output
        (y * y).sum().backward()
    ty = TF.layer_norm(tx[:, ::2], (10,))
    ty.add_(1.0)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("path", PATHS)
def test_layer_norm_double_backward_matches_torch(path: str) -> None:
    rng = np.random.default_rng(3)
    x, tx = _pair(rng.standard_normal((5, 7)))
    w, tw = _pair(rng.uniform(0.5, 1.5, 7))
    b, tb = _pair(rng.standard_normal(7))
    c = rng.standard_normal((5, 7))
    with _path(path):
        y = (F.layer_norm(x, (7,), w, b) ** 3 * ds.tensor(c, dtype=ds.float64)).sum()
        gx, gw = ds.autograd.grad(y, (x, w), create_graph=True)
        ((gx * gx).sum() + (gw * gw).sum()).backward()
    ty = (TF.layer_norm(tx, (7,), tw, tb) ** 3 * torch.tensor(c)).sum()
    tgx, tgw = torch.autograd.grad(ty, (tx, tw), create_graph=True)
    ((tgx * tgx).sum() + (tgw * tgw).sum()).backward()
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), rtol=1e-9, atol=1e-10)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("offset", [1e3, 1e4])
def test_layer_norm_far_from_zero_keeps_the_variance(path: str, offset: float) -> None:
    noise = np.random.default_rng(4).standard_normal((256, 64))
    x = (noise * 0.01 + offset).astype(np.float32)
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    with _path(path):
        y = ds.nn.LayerNorm(64)(ds.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, want, atol=2e-3)
    assert float(y.std()) == pytest.approx(float(want.std()), abs=1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_layer_norm_of_constant_rows_is_zero(path: str) -> None:
    with _path(path):
        y = F.layer_norm(ds.full((3, 33), 1e4 + 0.1), (33,))
    assert np.abs(y.numpy()).max() == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(path: str, affine: bool) -> None:
    rng = np.random.default_rng(5)
    x, tx = _pair(rng.standard_normal((3, 6, 4, 5)) * 2 + 1)
    w, tw = _pair(rng.uniform(0.5, 1.5, 6)) if affine else (None, None)
    b, tb = _pair(rng.standard_normal(6)) if affine else (None, None)
    g = rng.standard_normal((3, 6, 4, 5))
    with _path(path):
        y = F.group_norm(x, 3, w, b)
        (y * ds.tensor(g, dtype=ds.float64)).sum().backward()
    ty = TF.group_norm(tx, 3, tw, tb)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, atol=1e-9)


def _batch_norms(cls: str, c: int, affine: bool, rng: np.random.Generator) -> tuple[Any, Any]:
    ours, theirs = getattr(ds.nn, cls)(c, affine=affine).eval(), getattr(torch.nn, cls)(c, affine=affine).eval()
    stats = {"running_mean": rng.standard_normal(c), "running_var": rng.uniform(0.5, 2.0, c)}
    if affine:
        stats.update(weight=rng.uniform(0.5, 1.5, c), bias=rng.standard_normal(c))
    with torch.no_grad(), ds.no_grad():
        for key, v in stats.items():
            getattr(theirs, key).copy_(torch.from_numpy(v.astype(np.float32)))
            getattr(ours, key).copy_(ds.tensor(v.astype(np.float32)))
    return ours, theirs


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize(
    "cls, shape, channel_major",
    [
        ("BatchNorm1d", (16, 5), False),
        ("BatchNorm1d", (4, 5, 7), False),
        ("BatchNorm2d", (3, 4, 6, 5), False),
        ("BatchNorm2d", (3, 4, 6, 5), True),
        ("BatchNorm2d", (1, 4, 3, 3), False),
        ("BatchNorm3d", (2, 3, 2, 4, 5), False),
        ("BatchNorm2d", (0, 4, 3, 3), False),
    ],
)
def test_batch_norm_eval_matches_torch(path: str, affine: bool, cls: str, shape: tuple, channel_major: bool) -> None:
    rng = np.random.default_rng(6)
    ours, theirs = _batch_norms(cls, shape[1], affine, rng)
    a = rng.standard_normal(shape).astype(np.float32) * 2 + 0.5
    if channel_major:  # (N, C, ...) over (C, N, ...) memory, as a convolution's output
        a = np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)
    with _path(path), ds.no_grad():
        y = ours(ds.tensor(a) if not channel_major else ds.from_numpy(a))
    with torch.no_grad():
        ty = theirs(torch.from_numpy(np.ascontiguousarray(a)))
    assert y.shape == tuple(ty.shape) and y.dtype == ds.float32
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-6, atol=1e-6)
    if channel_major and type(y.array) is np.ndarray:  # the layout the layers around it use is kept
        assert y.numpy().swapaxes(0, 1).flags.c_contiguous


@pytest.mark.parametrize("path", PATHS)
def test_batch_norm_eval_output_is_fresh_and_gradients_still_flow(path: str) -> None:
    rng = np.random.default_rng(7)
    ours, theirs = _batch_norms("BatchNorm2d", 3, True, rng)
    a = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    x = ds.tensor(a)
    with _path(path):
        y = ours(x)  # the parameters require grad: recorded, not the folded kernel
        y.sum().backward()
        with ds.no_grad():
            z = ours(x)
            z.add_(1.0)
    np.testing.assert_array_equal(x.numpy(), a)  # the input is untouched by the in-place change
    ty = theirs(torch.from_numpy(a))
    ty.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z.numpy(), ty.detach().numpy() + 1, rtol=1e-6, atol=1e-6)


def test_batch_norm_eval_of_float64_and_float16_input() -> None:
    rng = np.random.default_rng(8)
    ours, theirs = _batch_norms("BatchNorm2d", 3, True, rng)
    a = rng.standard_normal((2, 3, 4, 4))
    with ds.no_grad():
        y16 = ours(ds.tensor(a, dtype=ds.float16))
        y64 = ours.to(ds.float64)(ds.tensor(a, dtype=ds.float64))
    with torch.no_grad():
        t16 = theirs(torch.tensor(a, dtype=torch.float16))
        t64 = theirs.double()(torch.tensor(a))
    assert y16.dtype == ds.float16 and y64.dtype == ds.float64
    np.testing.assert_allclose(y16.numpy().astype(np.float32), t16.float().numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(y64.numpy(), t64.numpy(), rtol=1e-12, atol=1e-12)
