"""hardswish and hardsigmoid through their compiled kernels (``nn._jit_hard_kernels``, arrays of
4096 elements and more) against PyTorch's values and input gradients bit for bit (float32 and
float64, the kinks, infinities and signed zeros included; hardsigmoid's float64 gradient to 1e-7), against the NumPy path (numba switched
off), and their gradients against float64 finite differences."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import _jit

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

SPECIAL = [-np.inf, -1e30, -3.0000002, -3.0, -2.9999998, -1.0, -0.0, 0.0, 1.0, 2.9999998, 3.0, 3.0000002, 1e30, np.inf]
NAMES = ["hardswish", "hardsigmoid"]


def _data(dtype: type, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[: len(SPECIAL)] = SPECIAL
    x[100:130] = np.linspace(-3.5, 3.5, 30)
    return x, rng.standard_normal(n).astype(dtype)


def _ours(name: str, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xd = ds.tensor(x.copy(), requires_grad=True, dtype=ds.float64 if x.dtype == np.float64 else ds.float32)
    y = getattr(F, name)(xd)
    y.backward(ds.tensor(g, dtype=xd.dtype))
    return y.detach().numpy(), xd.grad.numpy()


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_compiled_path_matches_torch_bit_for_bit(name: str, dtype: type) -> None:
    from downslope import jit_gate

    if jit_gate.switched_off():
        pytest.skip("the compiled kernels are switched off (DOWNSLOPE_JIT=0)")
    x, g = _data(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = getattr(torch.nn.functional, name)(xt)
    yt.backward(torch.from_numpy(g))
    y, gx = _ours(name, x, g)
    assert "downslope.nn._jit_hard_kernels" in sys.modules  # the compiled path ran
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(np.signbit(y), np.signbit(yt.detach().numpy()))
    if name == "hardsigmoid" and dtype == np.float64:
        # torch's float64 kernel multiplies by float32's 1/6 (3e-8 relative off); downslope by 1/6
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-7, atol=0)
        np.testing.assert_array_equal(gx, np.where((x > -3) & (x < 3), g * (1.0 / 6.0), 0.0))
    else:
        np.testing.assert_array_equal(gx, xt.grad.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_compiled_path_matches_numpy_path(name: str) -> None:
    x, g = _data(np.float32)
    x[20] = np.nan
    y, gx = _ours(name, x, g)
    with _jit.disabled():
        y_np, gx_np = _ours(name, x, g)
    np.testing.assert_array_equal(y, y_np)
    # hardsigmoid: the NumPy path's gradient divides by 6, the kernel multiplies by 1/6 as torch's
    np.testing.assert_allclose(gx, gx_np, rtol=2.5e-7 if name == "hardsigmoid" else 0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_compiled_gradient_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(-5, 5, 5000)
    x = x[np.abs(np.abs(x) - 3) > 1e-3]  # away from the kinks
    g = rng.standard_normal(x.shape)
    _, gx = _ours(name, x, g)
    h = 1e-6
    plus, _ = _ours(name, x + h, g)
    minus, _ = _ours(name, x - h, g)
    np.testing.assert_allclose(gx, g * (plus - minus) / (2 * h), rtol=1e-7, atol=1e-9)
