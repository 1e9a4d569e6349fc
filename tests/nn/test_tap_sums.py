"""NaN and inf in resizes and adaptive averages reach only the outputs that read them, as in torch.

The dense weight-matrix products (bicubic and antialiased interpolation, 'area', adaptive average
pooling with sizes that do not divide) would make ``0 * inf = NaN`` in every output of a row; the
exact tap sums of ``nn._tap_sums`` take over for non-finite data. Checked against PyTorch: values,
and the NaN and inf positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F

TF = torch.nn.functional


def _same(d: Any, t: Any, rtol: float = 1e-5) -> None:
    d, t = np.asarray(d), t.detach().numpy()
    assert d.shape == t.shape
    np.testing.assert_array_equal(np.isnan(d), np.isnan(t))
    np.testing.assert_array_equal(np.isposinf(d), np.isposinf(t))
    np.testing.assert_array_equal(np.isneginf(d), np.isneginf(t))
    fin = np.isfinite(t)
    np.testing.assert_allclose(d[fin], t[fin], rtol=rtol, atol=rtol)


def _images(shape: tuple[int, ...], dtype: Any) -> list[np.ndarray]:
    """Random images with one NaN, one +inf, and a +inf and a -inf, at random places."""
    rng = np.random.default_rng(sum(shape))
    out = []
    for specials in ([np.nan], [np.inf], [np.inf, -np.inf]):
        a = rng.standard_normal(shape).astype(dtype)
        for v in specials:
            a.flat[rng.integers(a.size)] = v
        out.append(a)
    return out


INTERPOLATIONS = [
    dict(size=(8, 9), mode="bicubic"),
    dict(size=(4, 3), mode="bicubic", align_corners=True),
    dict(size=(3, 3), mode="bilinear", antialias=True),
    dict(size=(9, 4), mode="bilinear", antialias=True),
    dict(size=(3, 10), mode="bicubic", antialias=True),
    dict(size=(8, 8), mode="area"),
    dict(size=(4, 5), mode="area"),
    dict(size=(3, 6), mode="bilinear"),  # the width unchanged: torch's blend makes an inf NaN there
    dict(size=(6, 9), mode="bilinear", align_corners=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", INTERPOLATIONS, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_interpolate_non_finite_pixels_as_torch(kwargs: dict[str, Any], dtype: Any) -> None:
    for a in _images((2, 2, 6, 6), dtype):
        t = TF.interpolate(torch.tensor(a), **kwargs)
        _same(F.interpolate(ds.from_numpy(a.copy()), **kwargs).numpy(), t)


def test_trilinear_unchanged_dims_make_inf_nan_as_torch() -> None:
    a = np.zeros((1, 1, 2, 2, 3), np.float32)
    a[0, 0, 0, 0, 0] = np.inf
    for size in [(3, 3, 3), (3, 2, 3), (2, 2, 3)]:
        t = TF.interpolate(torch.tensor(a), size=size, mode="trilinear")
        _same(F.interpolate(ds.from_numpy(a.copy()), size=size, mode="trilinear").numpy(), t)


@pytest.mark.parametrize("out", [3, 4, 5, 7])
def test_adaptive_avg_pool1d_non_finite_as_torch(out: int) -> None:
    for a in _images((2, 3, 11), np.float64):
        _same(F.adaptive_avg_pool1d(ds.from_numpy(a.copy()), out).numpy(), TF.adaptive_avg_pool1d(torch.tensor(a), out))
    b = np.array([[[0.0, np.inf, 0.0, 0.0]]], np.float32)  # [inf, inf, 0] in torch, not [inf, inf, nan]
    _same(F.adaptive_avg_pool1d(ds.from_numpy(b), 3).numpy(), TF.adaptive_avg_pool1d(torch.tensor(b), 3))


@pytest.mark.parametrize("out", [(2, 2), (3, 4), (4, 7), (5, 3)])
def test_adaptive_avg_pool2d_and_3d_non_finite_as_torch(out: tuple[int, int]) -> None:
    for a in _images((2, 2, 7, 9), np.float32):
        _same(F.adaptive_avg_pool2d(ds.from_numpy(a.copy()), out).numpy(), TF.adaptive_avg_pool2d(torch.tensor(a), out))
    for a in _images((1, 2, 3, 5, 4), np.float64):
        size = (2,) + out
        _same(
            F.adaptive_avg_pool3d(ds.from_numpy(a.copy()), size).numpy(), TF.adaptive_avg_pool3d(torch.tensor(a), size)
        )


@pytest.mark.host_only
def test_adaptive_avg_pool2d_float32_overflow_as_torch() -> None:
    """Values near float32's maximum: the window sums overflow in torch's order (inf, not NaN). On the
    host only: a device keeps the separable sums, since finding the overflow would wait for the device."""
    rng = np.random.default_rng(0)
    a = rng.choice([3e38, -3e38, 1e38], (1, 1, 6, 6)).astype(np.float32)
    for out in [2, 3, (2, 4)]:
        _same(F.adaptive_avg_pool2d(ds.from_numpy(a.copy()), out).numpy(), TF.adaptive_avg_pool2d(torch.tensor(a), out))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(size=(8, 9), mode="bicubic"),
        dict(size=(3, 4), mode="bilinear", antialias=True),
        dict(size=(4, 5), mode="area"),
    ],
)
def test_gradients_with_non_finite_input_as_torch(kwargs: dict[str, Any]) -> None:
    a = np.random.default_rng(1).standard_normal((1, 2, 6, 7))
    a[0, 1, 2, 3] = np.inf
    g = np.random.default_rng(2).standard_normal(TF.interpolate(torch.tensor(a), **kwargs).shape)
    t = torch.tensor(a, requires_grad=True)
    (TF.interpolate(t, **kwargs) * torch.tensor(g)).sum().backward()
    d = ds.from_numpy(a.copy()).requires_grad_()
    (F.interpolate(d, **kwargs) * ds.from_numpy(g)).sum().backward()
    assert t.grad is not None and d.grad is not None
    _same(d.grad.numpy(), t.grad, rtol=1e-9)


def test_finite_input_unchanged_by_the_tap_path() -> None:
    """The exact path computes what the matrix product computes, for finite data."""
    a = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    for kwargs in INTERPOLATIONS:
        fast = F.interpolate(ds.from_numpy(a.copy()), **kwargs).numpy()
        b = a.copy()
        b[0, 0, 0, 0] = np.nan  # the second image takes the tap path; its values match the first's
        slow = F.interpolate(ds.from_numpy(b), **kwargs).numpy()
        np.testing.assert_allclose(slow[1], fast[1], rtol=1e-12, atol=1e-12)
