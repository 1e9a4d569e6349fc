"""ds.fake_quantize_per_tensor_affine / ds.fake_quantize_per_channel_affine against torch 2.x: the same
values bit for bit (ties to even, a float32 1/scale, NaN clamped to quant_min, float64 and float16
inputs), the straight-through gradient (0 where the rounded value leaves [quant_min, quant_max]), and
the argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_DTYPES = [(np.float32, ds.float32, torch.float32), (np.float64, ds.float64, torch.float64)]
_DTYPES.append((np.float16, ds.float16, torch.float16))


def _inputs(np_dtype, scale: float) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal(600) * scale * 60
    x[:50] = (np.arange(50) - 25) * scale / 2  # halfway points: ties
    x[50], x[51], x[52] = np.nan, np.inf, -np.inf
    return x.astype(np_dtype)


def _both(x, ds_dtype, fn_ds, fn_torch, weights=None):
    w = np.arange(x.size, dtype=x.dtype).reshape(x.shape) % 7 if weights is None else weights
    t = torch.tensor(x, requires_grad=True)
    ty = fn_torch(t)
    ty.backward(torch.tensor(w))
    d = ds.tensor(x, dtype=ds_dtype, requires_grad=True)
    dy = fn_ds(d)
    dy.backward(ds.tensor(w, dtype=ds_dtype))
    return (ty.detach().numpy(), t.grad.numpy()), (dy.detach().numpy(), d.grad.numpy())


@pytest.mark.parametrize("np_dtype, ds_dtype, torch_dtype", _DTYPES)
@pytest.mark.parametrize("scale", [0.1, 0.3, 1 / 3, 0.0123])
@pytest.mark.parametrize("zero_point, qmin, qmax", [(0, -128, 127), (3, 0, 255), (128, 0, 255), (0, -5, 5)])
def test_per_tensor_matches_torch(np_dtype, ds_dtype, torch_dtype, scale, zero_point, qmin, qmax):
    x = _inputs(np_dtype, scale)
    (ty, tg), (dy, dg) = _both(
        x,
        ds_dtype,
        lambda a: ds.fake_quantize_per_tensor_affine(a, scale, zero_point, qmin, qmax),
        lambda a: torch.fake_quantize_per_tensor_affine(a, scale, zero_point, qmin, qmax),
    )
    assert dy.dtype == ty.dtype
    np.testing.assert_array_equal(dy, ty)
    np.testing.assert_array_equal(dg, tg)


@pytest.mark.parametrize("zp_kind", ["int32", "float"])
def test_per_tensor_tensor_qparams_match_torch(zp_kind):
    x = _inputs(np.float32, 0.1)
    if zp_kind == "int32":
        tz, dz = torch.tensor(3, dtype=torch.int32), ds.tensor(3, dtype=ds.int32)
    else:  # a floating zero point is truncated, as torch's
        tz, dz = torch.tensor([2.6]), ds.tensor([2.6])
    ty = torch.fake_quantize_per_tensor_affine(torch.tensor(x), torch.tensor([0.1]), tz, 0, 255)
    dy = ds.fake_quantize_per_tensor_affine(ds.tensor(x), ds.tensor([0.1]), dz, 0, 255)
    np.testing.assert_array_equal(dy.numpy(), ty.numpy())


def test_the_ported_example():
    x = np.linspace(-1, 1, 7, dtype=np.float32)
    (ty, tg), (dy, dg) = _both(
        x,
        ds.float32,
        lambda a: ds.fake_quantize_per_tensor_affine(a, 0.1, 0, -5, 5),
        lambda a: torch.fake_quantize_per_tensor_affine(a, 0.1, 0, -5, 5),
        weights=np.ones(7, np.float32),
    )
    np.testing.assert_array_equal(dy, ty)
    np.testing.assert_array_equal(dg, [0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(dg, tg)


@pytest.mark.parametrize("np_dtype, ds_dtype, torch_dtype", _DTYPES[:2])
@pytest.mark.parametrize("zp_dtype", [np.int32, np.float32])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_channel_matches_torch(np_dtype, ds_dtype, torch_dtype, zp_dtype, axis):
    x = (np.random.default_rng(1).standard_normal((4, 3, 5)) * 3).astype(np_dtype)
    channels = x.shape[axis]
    scale = np.array([0.1, 0.3, 0.0123, 0.7, 0.2][:channels], np.float32)
    zp = np.array(
        [0, -3, 5, 1, 2][:channels] if zp_dtype == np.int32 else [0.0, -2.5, 5.3, 1.5, 0.5][:channels], zp_dtype
    )
    (ty, tg), (dy, dg) = _both(
        x,
        ds_dtype,
        lambda a: ds.fake_quantize_per_channel_affine(a, ds.from_numpy(scale), ds.from_numpy(zp), axis, -10, 10),
        lambda a: torch.fake_quantize_per_channel_affine(a, torch.tensor(scale), torch.tensor(zp), axis, -10, 10),
    )
    np.testing.assert_array_equal(dy, ty)
    np.testing.assert_array_equal(dg, tg)


def test_gradient_of_gradient_is_recorded():
    x = ds.tensor([-1.0, 0.05, 0.3], requires_grad=True)
    y = ds.fake_quantize_per_tensor_affine(x, 0.1, 0, -5, 5)
    (g,) = ds.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), [0, 1, 1])


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (
            lambda x: ds.fake_quantize_per_tensor_affine(x, 0.1, 3, 10, 5),
            ds.errors.ArgumentError,
            "quant_min <= quant_max",
        ),
        (lambda x: ds.fake_quantize_per_tensor_affine(x, 0.1, 300, 0, 255), ds.errors.ArgumentError, "zero_point in"),
        (lambda x: ds.fake_quantize_per_tensor_affine(x, 0.1, 3.0, 0, 255), TypeError, "zero_point as an int"),
        (lambda x: ds.fake_quantize_per_tensor_affine(x.long(), 0.1, 0, 0, 255), TypeError, "floating input"),
        (
            lambda x: ds.fake_quantize_per_channel_affine(x, ds.ones(2), ds.zeros(3, dtype=ds.int32), 0, 0, 255),
            ds.errors.ShapeError,
            "expected scale of shape (3,)",
        ),
        (
            lambda x: ds.fake_quantize_per_channel_affine(x, ds.ones(3), ds.zeros(3, dtype=ds.int64), 0, 0, 255),
            TypeError,
            "int32, float32 or float16",
        ),
        (
            lambda x: ds.fake_quantize_per_channel_affine(x, ds.ones(2), ds.zeros(2, dtype=ds.int32), -1, 0, 255),
            ds.errors.ArgumentError,
            "expected axis in [0, 2)",
        ),
    ],
)
def test_bad_arguments_say_what_was_expected(call, error, fragment):
    with pytest.raises(error, match=None) as info:
        call(ds.ones(3, 2))
    assert fragment in str(info.value)
