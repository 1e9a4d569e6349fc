"""Pooling and nearest interpolation edge cases, against torch: windows wholly in the padding,
NaN and -inf windows, empty batches, ceil_mode on inputs shorter than the kernel, avg_pool3d's
options, empty adaptive outputs and torch's exact nearest source pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(x: np.ndarray) -> tuple[Any, Any]:
    xt = torch.tensor(x, requires_grad=True)
    xd = ds.from_numpy(x.copy())
    xd.requires_grad_(True)
    return xt, xd


def _values(t: Any) -> Any:
    return t[0] if isinstance(t, tuple) else t


def _check(name: str, x: np.ndarray, kw: dict[str, Any], seed: int = 0) -> None:
    """Same values (and indices) as torch; where every output is finite, the same float64 gradient."""
    xt, xd = _pair(x)
    t, d = getattr(TF, name)(xt, **kw), getattr(F, name)(xd, **kw)
    tv, dv = _values(t), _values(d)
    assert tuple(dv.shape) == tuple(tv.shape), (name, kw)
    np.testing.assert_allclose(dv.detach().numpy(), tv.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    if isinstance(t, tuple):
        np.testing.assert_array_equal(d[1].numpy(), t[1].numpy(), err_msg=f"{name} {kw}")
    if np.isfinite(tv.detach().numpy()).all() and tv.numel():
        g = np.random.default_rng(seed).standard_normal(tuple(tv.shape))
        tv.backward(torch.tensor(g))
        dv.backward(ds.from_numpy(g))
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{name} {kw}")


# ---------------------------------------------------------------------- windows wholly in the padding
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool3d_window_in_the_padding_is_minus_inf_with_torchs_index(return_indices: bool) -> None:
    x = np.arange(1.0, 7.0).reshape(1, 1, 1, 1, 6)
    kw = dict(kernel_size=(1, 2, 1), padding=(0, 1, 0), dilation=(1, 2, 1), return_indices=return_indices)
    t = TF.max_pool3d(torch.tensor(x), **kw)
    d = F.max_pool3d(ds.from_numpy(x.copy()), **kw)
    np.testing.assert_array_equal(_values(d).numpy(), _values(t).numpy())
    assert (_values(d).numpy() == -np.inf).all()
    if return_indices:
        np.testing.assert_array_equal(d[1].numpy(), t[1].numpy())  # past the input: [6 .. 11]
    module = nn.MaxPool3d((1, 2, 1), padding=(0, 1, 0), dilation=(1, 2, 1))
    assert (module(ds.from_numpy(x.copy())).numpy() == -np.inf).all()


def test_a_window_in_the_padding_sends_no_gradient_to_a_clipped_element() -> None:
    x = ds.from_numpy(np.arange(1.0, 7.0).reshape(1, 1, 1, 1, 6))
    x.requires_grad_(True)
    out = F.max_pool3d(x, (1, 2, 1), padding=(0, 1, 0), dilation=(1, 2, 1), ceil_mode=True)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((1, 1, 1, 1, 6)))


@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_minus_inf_windows_take_torchs_first_in_input_tap(spatial: int) -> None:
    # a window of -inf values and padding: torch keeps its first tap inside the input (index and gradient)
    x = np.array([-np.inf, -np.inf, 1.0, -np.inf]).reshape((1, 1) + (1,) * (spatial - 1) + (4,))
    k, p = (1,) * (spatial - 1) + (3,), (0,) * (spatial - 1) + (1,)
    _check(f"max_pool{spatial}d", x, dict(kernel_size=k, stride=1, padding=p, return_indices=True))
    xt, xd = _pair(x)
    kw = dict(kernel_size=k, stride=1, padding=p)
    getattr(TF, f"max_pool{spatial}d")(xt, **kw).sum().backward()
    getattr(F, f"max_pool{spatial}d")(xd, **kw).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("name", ["max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool3d"])
def test_nan_windows_index_the_last_nan_as_torch(name: str) -> None:
    x = np.array([1.0, np.nan, 3.0, np.nan, 2.0])
    if name == "max_pool3d":
        x, kw = x.reshape(1, 1, 1, 1, 5), dict(kernel_size=(1, 1, 3), stride=1, padding=(0, 0, 1), dilation=(1, 1, 2))
    elif name == "adaptive_max_pool1d":
        x, kw = x.reshape(1, 1, 5), dict(output_size=2)
    else:
        x, kw = x.reshape(1, 1, 1, 1, 5), dict(output_size=(1, 1, 2))
    t = getattr(TF, name)(torch.tensor(x), return_indices=True, **kw)
    d = getattr(F, name)(ds.from_numpy(x.copy()), return_indices=True, **kw)
    np.testing.assert_array_equal(d[0].numpy(), t[0].numpy())
    np.testing.assert_array_equal(d[1].numpy(), t[1].numpy())


@pytest.mark.parametrize("seed", range(4))
def test_pooling_fuzz_matches_torch(seed: int) -> None:
    """Random kernels, strides, paddings, dilations, ceil_mode and avg options, 1-d to 3-d."""
    rng = np.random.default_rng(seed)
    ran = 0
    while ran < 40:
        nd = int(rng.integers(1, 4))
        kind = str(rng.choice(["max", "avg", "lp"]))
        sizes = [int(rng.integers(1, 7)) for _ in range(nd)]
        k = [int(rng.integers(1, 5)) for _ in range(nd)]
        st = [int(rng.integers(1, 4)) for _ in range(nd)]
        p = [int(rng.integers(0, kk // 2 + 1)) for kk in k]
        ceil = bool(rng.integers(0, 2))
        x = rng.standard_normal([int(rng.integers(1, 3)), 2, *sizes])
        if kind == "max":
            if rng.random() < 0.3:
                x[x > 1] = -np.inf
            name = f"max_pool{nd}d"
            kw: dict[str, Any] = dict(kernel_size=k, stride=st, padding=p, ceil_mode=ceil)
            kw.update(dilation=[int(rng.integers(1, 3)) for _ in range(nd)], return_indices=bool(rng.integers(0, 2)))
        elif kind == "avg":
            name = f"avg_pool{nd}d"
            kw = dict(kernel_size=k, stride=st, padding=p, ceil_mode=ceil, count_include_pad=bool(rng.integers(0, 2)))
            if nd > 1 and rng.random() < 0.3:
                kw["divisor_override"] = int(rng.integers(1, 5))
        else:
            name = f"lp_pool{nd}d"
            x = np.abs(x) + 0.1
            kw = dict(norm_type=float(rng.choice([1, 2, 3])), kernel_size=k if nd > 1 else k[0], stride=st)
            kw["ceil_mode"] = ceil
        try:
            getattr(TF, name)(torch.tensor(x), **kw)
        except RuntimeError:
            with pytest.raises((ds.errors.ShapeError, ds.errors.ArgumentError)):
                getattr(F, name)(ds.from_numpy(x.copy()), **kw)
            continue
        _check(name, x, kw, seed)
        ran += 1


# ---------------------------------------------------------------------- empty batches
@pytest.mark.parametrize(
    ("name", "shape", "kw"),
    [
        ("adaptive_max_pool1d", (0, 2, 9), dict(output_size=3, return_indices=True)),
        ("adaptive_max_pool2d", (0, 2, 7, 6), dict(output_size=3, return_indices=True)),
        ("adaptive_max_pool3d", (0, 2, 5, 6, 5), dict(output_size=3)),
        ("adaptive_max_pool3d", (0, 2, 5, 6, 5), dict(output_size=3, return_indices=True)),
        ("max_pool3d", (0, 2, 5, 6, 5), dict(kernel_size=3, stride=2, return_indices=True)),
        ("max_pool3d", (0, 2, 5, 6, 5), dict(kernel_size=3, dilation=2, ceil_mode=True)),
        ("avg_pool3d", (0, 2, 5, 6, 5), dict(kernel_size=3, ceil_mode=True)),
    ],
)
def test_empty_batches_pool_to_empty_outputs(name: str, shape: tuple[int, ...], kw: dict[str, Any]) -> None:
    t = getattr(TF, name)(torch.zeros(shape), **kw)
    x = ds.zeros(*shape, requires_grad=True)
    d = getattr(F, name)(x, **kw)
    assert tuple(_values(d).shape) == tuple(_values(t).shape)
    if isinstance(t, tuple):
        assert tuple(d[1].shape) == tuple(t[1].shape) and d[1].dtype == np.int64
    _values(d).sum().backward()
    assert x.grad is not None and x.grad.shape == shape


# ---------------------------------------------------------------------- ceil_mode, short inputs
@pytest.mark.parametrize(
    ("name", "shape", "kw"),
    [
        ("max_pool2d", (1, 1, 1, 2), dict(kernel_size=[1, 3], stride=3, padding=[0, 1], dilation=[1, 2], ceil_mode=True)),
        ("max_pool1d", (1, 1, 2), dict(kernel_size=3, stride=3, padding=1, dilation=2, ceil_mode=True)),
        ("max_pool3d", (1, 1, 1, 1, 2), dict(kernel_size=[1, 1, 3], stride=3, padding=[0, 0, 1], dilation=2, ceil_mode=True)),
        ("avg_pool2d", (1, 1, 3, 5), dict(kernel_size=[4, 3], stride=[2, 1], padding=[2, 0], ceil_mode=True)),
        ("avg_pool1d", (1, 1, 3), dict(kernel_size=4, stride=2, padding=2, ceil_mode=True)),
        ("lp_pool2d", (1, 1, 3, 5), dict(norm_type=2.0, kernel_size=[3, 3], stride=[2, 4], ceil_mode=True)),
    ],
)  # fmt: skip
def test_ceil_mode_gives_torchs_last_window(name: str, shape: tuple[int, ...], kw: dict[str, Any]) -> None:
    _check(name, np.random.default_rng(0).random(shape) + 0.5, kw)


def test_without_ceil_mode_a_too_short_input_is_refused() -> None:
    with pytest.raises(ds.errors.ShapeError, match="smaller than the"):
        F.max_pool2d(ds.ones(1, 1, 1, 2), [1, 3], stride=3, padding=[0, 1], dilation=[1, 2])


# ---------------------------------------------------------------------- avg_pool3d's options
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        dict(kernel_size=3, stride=2, padding=1, divisor_override=2),
        dict(kernel_size=(2, 3, 2), stride=(2, 2, 3), padding=(1, 0, 1), ceil_mode=True),
        dict(kernel_size=2, count_include_pad=False, padding=1),
    ],
)
def test_avg_pool3d_options_match_torch(kw: dict[str, Any]) -> None:
    _check("avg_pool3d", np.random.default_rng(1).standard_normal((2, 2, 5, 6, 5)), kw)
    m = nn.AvgPool3d(**kw)
    x = np.random.default_rng(2).standard_normal((2, 5, 6, 5))  # unbatched
    np.testing.assert_allclose(m(ds.from_numpy(x)).numpy(), torch.nn.AvgPool3d(**kw)(torch.tensor(x)).numpy())


def test_lp_pool3d_with_ceil_mode_matches_torch() -> None:
    x = np.random.default_rng(3).random((1, 2, 5, 5, 4)) + 0.1
    _check("lp_pool3d", x, dict(norm_type=2.0, kernel_size=2, stride=2, ceil_mode=True))


def test_avg_pool3d_refuses_what_torch_refuses() -> None:
    with pytest.raises(ds.errors.ShapeError, match="smaller than kernel size"):
        F.avg_pool3d(ds.ones(1, 1, 2, 1, 3), (3, 1, 1), padding=(1, 0, 0))
    with pytest.raises(ds.errors.ArgumentError, match="not zero"):
        F.avg_pool3d(ds.ones(1, 1, 2, 2, 2), 2, divisor_override=0)


# ---------------------------------------------------------------------- empty adaptive outputs
@pytest.mark.parametrize(
    "name", ["adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool3d"]
)
@pytest.mark.parametrize("zero_at", [0, 1])
def test_adaptive_pooling_to_a_zero_size_is_empty(name: str, zero_at: int) -> None:
    spatial = int(name[-2])
    size = [2] * spatial
    size[zero_at] = 0
    x = ds.randn(1, 2, *([4] * spatial), requires_grad=True)
    out = getattr(F, name)(x, tuple(size))
    assert out.shape == tuple(getattr(TF, name)(torch.randn(1, 2, *([4] * spatial)), tuple(size)).shape)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(x.shape, np.float32))


@pytest.mark.parametrize(("shape", "kw"), [((1, 2, 4, 4), dict(size=(0, 3))), ((1, 2, 4), dict(scale_factor=0.1))])
def test_area_interpolation_to_a_zero_size_is_empty(shape: tuple[int, ...], kw: dict[str, Any]) -> None:
    t = TF.interpolate(torch.randn(shape), mode="area", **kw)
    assert F.interpolate(ds.randn(*shape), mode="area", **kw).shape == tuple(t.shape)
    with pytest.raises(ds.errors.ArgumentError, match="greater than 0"):
        F.interpolate(ds.randn(*shape), mode="nearest", **kw)


# ---------------------------------------------------------------------- nearest interpolation
@pytest.mark.parametrize("seed", range(3))
def test_nearest_interpolation_reads_torchs_source_pixels(seed: int) -> None:
    """torch's CPU kernels: float32 scales (float64 in the 1-D/3-D kernels for float64 input), and
    the 2-D kernel's same-size and doubled-size shortcuts."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        nd = int(rng.integers(1, 4))
        mode = str(rng.choice(["nearest", "nearest-exact"]))
        n_in = [int(rng.integers(1, 9)) for _ in range(nd)]
        if rng.random() < 0.5:
            sf = [float(rng.choice([rng.uniform(0.3, 3.0), 1.1, 2.0, 2.19, 1.03, 0.5, 1 / 3])) for _ in range(nd)]
            if any(int(np.floor(a * b)) < 1 for a, b in zip(n_in, sf)):
                continue
            kw: dict[str, Any] = dict(scale_factor=sf if nd > 1 else sf[0])
        else:
            kw = dict(size=[int(rng.integers(1, 20)) for _ in range(nd)])
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        x = rng.standard_normal([2, 3, *n_in]).astype(dtype)
        t = TF.interpolate(torch.tensor(x), mode=mode, **kw).numpy()
        d = F.interpolate(ds.from_numpy(x.copy()), mode=mode, **kw).numpy()
        np.testing.assert_array_equal(d, t, err_msg=f"{mode} {n_in} {kw} {dtype}")


@pytest.mark.parametrize(
    ("shape", "sf"), [((1, 1, 1, 7), (1.06, 1.03)), ((1, 1, 3, 7), 1.1), ((1, 1, 7), 1.1), ((1, 1, 2, 2, 7), 1.1)]
)
def test_nearest_with_an_unchanged_size_matches_torch(shape: tuple[int, ...], sf: Any) -> None:
    x = np.arange(float(np.prod(shape))).reshape(shape)
    t = TF.interpolate(torch.tensor(x), scale_factor=sf, mode="nearest").numpy()
    np.testing.assert_array_equal(F.interpolate(ds.from_numpy(x), scale_factor=sf, mode="nearest").numpy(), t)


@pytest.mark.parametrize(("shape", "sf"), [((1, 1, 2), 2.19), ((1, 1, 1, 7), (1.06, 1.03)), ((1, 1, 2), 1.45)])
def test_nearest_gradient_is_the_forwards_derivative(shape: tuple[int, ...], sf: Any) -> None:
    # each input pixel gets the gradient of every output that read it (torch's own backward can differ)
    x = ds.from_numpy(np.arange(float(np.prod(shape))).reshape(shape))
    x.requires_grad_(True)
    out = F.interpolate(x, scale_factor=sf, mode="nearest")
    out.sum().backward()
    counts = np.bincount(out.detach().numpy().astype(np.int64).ravel(), minlength=x.numel())
    np.testing.assert_array_equal(x.grad.numpy().ravel(), counts)
