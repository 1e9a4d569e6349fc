"""Linear's and tanh-GELU's unrecorded short paths (inference, token-by-token generation) give the
general, recorded path's values bit for bit, and are the paths taken; Linear's forward product stays
on NumPy's matmul below its bound and goes to gemm.matmul above it."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import gemm

# the short paths are the host arrays' (the strict-device pass puts every tensor on a device, where the
# general path runs; test_strict_device_linear_keeps_the_general_path checks that here)
pytestmark = pytest.mark.host_only

SHAPES = [((1, 3, 64), 192), ((1, 32, 64), 256), ((1, 32, 256), 64), ((2, 5, 7), 3), ((1, 1, 1), 1), ((4, 33, 17), 9)]


def _with_specials(shape: tuple[int, ...], dtype: Any, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    flat[: min(len(specials), flat.size - 1)] = specials[: min(len(specials), flat.size - 1)]
    return x


def _spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("shape", "n_out"), SHAPES)
def test_unrecorded_linear_equals_recorded_bitwise(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...], n_out: int, bias: bool, dtype: Any
) -> None:
    layer = ds.nn.Linear(shape[-1], n_out, bias=bias, dtype=dtype)
    x = ds.tensor(_with_specials(shape, dtype, len(shape) + n_out), dtype=dtype)
    short = _spy(monkeypatch, F, "_linear_nd_no_grad")
    recorded = layer(x)  # the weight requires grad: the general path, reshapes and a recorded op
    assert recorded.requires_grad and not short
    with ds.no_grad():
        unrecorded = layer(x)
    assert len(short) == 1, "the no-grad call did not take the short path"
    assert not unrecorded.requires_grad and unrecorded.dtype == recorded.dtype
    np.testing.assert_array_equal(unrecorded.numpy(), recorded.detach().numpy())


@pytest.mark.parametrize(("rows", "n_in", "n_out"), [(32, 64, 256), (32, 256, 64), (160, 64, 192), (1, 64, 65)])
def test_forward_product_on_numpy_below_the_bound(
    monkeypatch: pytest.MonkeyPatch, rows: int, n_in: int, n_out: int
) -> None:
    layer = ds.nn.Linear(n_in, n_out)
    x = np.random.default_rng(rows).standard_normal((1, rows, n_in)).astype(np.float32)
    assert rows * n_in * n_out < F.LINEAR_NUMPY_BELOW * gemm.MIN_MULTIPLY_ADDS
    to_gemm = _spy(monkeypatch, gemm, "matmul")
    with ds.no_grad():
        ours = layer(ds.tensor(x)).numpy()
    grad_out = layer(ds.tensor(x)).detach().numpy()
    assert not to_gemm, "a product below the bound went to gemm.matmul"
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()  # type: ignore[union-attr]
    expected = x.reshape(-1, n_in) @ w.T
    expected += b
    np.testing.assert_array_equal(ours, expected.reshape(1, rows, n_out))
    np.testing.assert_array_equal(grad_out, ours)


def test_forward_product_above_the_bound_goes_to_gemm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemm, "MIN_MULTIPLY_ADDS", 100)  # the bound is a multiple of gemm's: 1000 here
    to_gemm = _spy(monkeypatch, gemm, "matmul")
    layer = ds.nn.Linear(16, 16)
    x = ds.randn(1, 4, 16)  # 4 * 16 * 16 = 1024 multiply-adds
    with ds.no_grad():
        layer(x)
    assert len(to_gemm) == 1
    layer(x[0])  # the 2-D recorded path picks the same way
    assert len(to_gemm) == 2
    layer(x[0, :3])  # 768 multiply-adds: NumPy
    assert len(to_gemm) == 2


def test_strict_device_linear_keeps_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = ds.nn.Linear(5, 3)
    x = np.random.default_rng(3).standard_normal((2, 4, 5)).astype(np.float32)
    host = layer(ds.tensor(x)).detach().numpy()
    short = _spy(monkeypatch, F, "_linear_nd_no_grad")
    layer.to("strict")
    with ds.no_grad():
        out = layer(ds.tensor(x, device="strict"))
    assert not short
    np.testing.assert_allclose(out.cpu().numpy(), host, rtol=1e-6, atol=1e-6)


GELU_SPECIALS = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e20, -1e20, 7e12, -7e12, 1e-40, 40.0, -40.0, -5.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3, 256), (1, 32, 256), (7,), (2, 3, 5, 1)])
def test_unrecorded_tanh_gelu_equals_recorded_bitwise(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...], dtype: Any
) -> None:
    a = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype) * 4
    flat = a.reshape(-1)
    n = min(flat.size, len(GELU_SPECIALS))
    flat[:n] = np.array(GELU_SPECIALS[:n], dtype=dtype)
    short = _spy(monkeypatch, F, "_gelu_tanh_unrecorded")
    x = ds.tensor(a, dtype=dtype, requires_grad=True)
    recorded = F.gelu(x, approximate="tanh")
    assert recorded.requires_grad and not short
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow and -inf's NaN stay silent, as on the general path
        with ds.no_grad():
            unrecorded = F.gelu(x, approximate="tanh")
        plain = F.gelu(ds.tensor(a, dtype=dtype), approximate="tanh")  # nothing requires grad
    assert len(short) == 2
    assert unrecorded.dtype == recorded.dtype and unrecorded.shape == recorded.shape
    np.testing.assert_array_equal(unrecorded.numpy(), recorded.detach().numpy())
    np.testing.assert_array_equal(plain.numpy(), recorded.detach().numpy())


def test_tanh_gelu_module_and_0d_and_float16_keep_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    short = _spy(monkeypatch, F, "_gelu_tanh_unrecorded")
    with ds.no_grad():
        zero_d = F.gelu(ds.tensor(1.5), approximate="tanh")
        half = F.gelu(ds.tensor([1.5, -2.0], dtype=ds.float16), approximate="tanh")
        module = ds.nn.GELU(approximate="tanh")(ds.tensor([1.5, -2.0]))
    assert len(short) == 1  # the module's call only
    assert zero_d.shape == () and half.dtype == ds.float16
    np.testing.assert_array_equal(module.numpy()[:1], zero_d.numpy().reshape(1))


def test_short_paths_are_not_taken_when_a_gradient_is_wanted() -> None:
    layer = ds.nn.Linear(4, 2)
    x = ds.randn(1, 3, 4, requires_grad=True)
    y = F.gelu(layer(x), approximate="tanh")
    y.sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    assert np.isfinite(x.grad.numpy()).all()
