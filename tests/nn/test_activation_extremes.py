"""The fused activation kernels against PyTorch at extreme inputs, in float16, float32 and float64.

The kernels (sigmoid, SiLU, GELU in both forms, logsigmoid, Mish, the ELU family, hardswish's
gradient) avoid ``where`` for speed; these tests pin what the selects used to guarantee: no
overflow, relative precision in the tails, NaN where torch gives NaN (and only there), -0.0 where
torch gives -0.0, and no NumPy RuntimeWarning. Double backward (create_graph) is compared too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.graph import _sigmoid_array

torch = pytest.importorskip("torch")
TF = torch.nn.functional

EXTREMES = [-np.inf, -1e30, -200.0, -104.0, -95.0, -89.0, -88.5, -88.0, -30.0, -20.0, -17.0, -10.0, -5.0,
            -3.0, -2.5, -1.0, -1e-3, -1e-30, -0.0, 0.0, 1e-30, 1e-3, 1.0, 2.5, 3.0, 5.0, 10.0, 17.0, 20.0,
            30.0, 88.0, 89.0, 200.0, 1e30, np.inf, np.nan]  # fmt: skip

# name -> (downslope function, torch function)
FUNCTIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "silu": (F.silu, TF.silu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid),
    "mish": (F.mish, TF.mish),
    "elu": (F.elu, TF.elu),
    "elu_alpha": (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
    "selu": (F.selu, TF.selu),
    "celu": (lambda x: F.celu(x, 0.5), lambda x: TF.celu(x, 0.5)),
    "hardswish": (F.hardswish, TF.hardswish),
}
TOLERANCE = {np.float16: (2e-3, 1e-7), np.float32: (4e-6, 1e-37), np.float64: (1e-13, 1e-300)}
DTYPES = [np.float16, np.float32, np.float64]


def _inputs(dtype: Any) -> np.ndarray:
    with np.errstate(over="ignore"):  # -1e30 is -inf in float16
        return np.array(EXTREMES, dtype=dtype)


def _ours(fn: Callable[[Any], Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output and input gradient (of sum), failing on any NumPy RuntimeWarning."""
    xd = ds.from_numpy(x.copy()).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        y = fn(xd)
        y.backward(ds.ones_like(y))
    return y.detach().numpy(), xd.grad.numpy()


def _theirs(fn: Callable[[Any], Any], x: np.ndarray, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.tensor(x if dtype is None else x.astype(dtype), requires_grad=True)
    y = fn(xt)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), xt.grad.numpy()


def _assert_matches(
    what: str, ours: np.ndarray, theirs: np.ndarray, x: np.ndarray, rtol: float, atol: float, signed: bool = True
) -> None:
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    bad = ~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    if signed:
        bad |= (a == 0) & (b == 0) & (np.signbit(a) != np.signbit(b))  # -0.0 where torch has -0.0
    assert not bad.any(), f"{what}: " + ", ".join(
        f"x={x[i]}: ours {ours[i]!r}, torch {theirs[i]!r}" for i in np.flatnonzero(bad)
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_extreme_values_and_gradients_match_torch(name: str, dtype: Any) -> None:
    ours_fn, torch_fn = FUNCTIONS[name]
    x = _inputs(dtype)
    y, gx = _ours(ours_fn, x)
    ty, tgx = _theirs(torch_fn, x)
    assert y.dtype == dtype and gx.dtype == dtype
    rtol, atol = TOLERANCE[dtype]
    if name == "gelu_tanh" and dtype != np.float16:
        # 1 + tanh(u) cancels for x < -2: each library's tanh rounding shows, magnified
        rtol = 3e-5 if dtype == np.float32 else 1e-9
    _assert_matches(f"{name} output", y, ty, x, rtol, atol)
    _assert_matches(f"{name} gradient", gx, tgx, x, rtol, atol)


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=lambda d: np.dtype(d).name)
def test_exact_gelu_is_accurate_at_extremes(dtype: Any) -> None:
    # torch's GELU (even in float64) computes 1 + erf(x / sqrt 2), which cancels to 0 in the left
    # tail, so the reference is x Phi(x) and Phi(x) + x phi(x) from math.erfc; +inf gives inf (as
    # torch's float64; its float32 gives NaN), -inf NaN (as torch)
    x = _inputs(dtype)
    y, gx = _ours(F.gelu, x)
    with np.errstate(invalid="ignore", over="ignore"):
        cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) if v == v else math.nan for v in x.astype(np.float64)])
        pdf = np.exp(-0.5 * x.astype(np.float64) ** 2) / math.sqrt(2 * math.pi)
        ty = x * cdf
        tgx = cdf + x * pdf
    rtol, atol = (1e-5, 1e-30) if dtype == np.float32 else (2e-3, 1e-7)
    _assert_matches("gelu output", y, ty.astype(dtype), x, rtol, atol, signed=False)
    _assert_matches("gelu gradient", gx, tgx.astype(dtype), x, rtol, atol, signed=False)
    assert np.isnan(y[0]) and y[-2] == np.inf and np.signbit(y[x == -1.0]).all()


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu", "gelu_tanh", "logsigmoid", "mish", "elu", "selu", "celu"])
def test_random_float32_batch_matches_torch(name: str) -> None:
    ours_fn, torch_fn = FUNCTIONS.get(name, (F.gelu, TF.gelu))
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 33)) * 4).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = ours_fn(xd), torch_fn(xt)
    yd.backward(ds.tensor(g))
    yt.backward(torch.tensor(g))
    atol = 6e-6 if name.startswith("gelu") else 2e-6  # torch's float32 GELU flushes its left tail (x < -4) to 0
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=atol)


@pytest.mark.parametrize("name", [*FUNCTIONS, "gelu"])
def test_double_backward_matches_torch(name: str) -> None:
    ours_fn, torch_fn = FUNCTIONS.get(name, (F.gelu, TF.gelu))
    rng = np.random.default_rng(1)
    x = rng.uniform(-6, 6, (5, 7))
    x[np.abs(np.abs(x) - 3) < 0.05] += 0.2  # hardswish's kinks at +-3
    x[np.abs(x) < 0.05] += 0.2  # the ELU family's kink at 0
    v = rng.standard_normal(x.shape)
    xd, xt = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gd,) = ds.autograd.grad(ours_fn(xd).sum(), xd, create_graph=True)
    (gt,) = torch.autograd.grad(torch_fn(xt).sum(), xt, create_graph=True)
    np.testing.assert_allclose(gd.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    (hd,) = ds.autograd.grad((gd * ds.tensor(v, dtype=ds.float64)).sum(), xd)
    (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), xt)
    np.testing.assert_allclose(hd.numpy(), ht.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.bool_])
def test_sigmoid_array_keeps_float_dtypes_and_matches_the_float64_formula(dtype: Any) -> None:
    x = np.array([-100, -20, -3, 0, 1, 5, 40], dtype=dtype)
    out = _sigmoid_array(x)
    assert out.dtype == (np.result_type(dtype, np.float16) if np.dtype(dtype).kind != "f" else dtype)
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))  # torch's 0 where e^-x overflows the dtype: within tiny
    info = np.finfo(out.dtype)
    np.testing.assert_allclose(out.astype(np.float64), exact.astype(out.dtype), rtol=2 * info.eps, atol=info.tiny)


def test_sigmoid_array_does_not_touch_its_input_and_keeps_strided_views() -> None:
    base = np.linspace(-30, 30, 24, dtype=np.float32).reshape(4, 6)
    view = base[:, ::2]
    before = view.copy()
    out = _sigmoid_array(view)
    np.testing.assert_array_equal(view, before)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-before.astype(np.float64))), rtol=1e-6)


def test_celu_refuses_alpha_zero_like_torch() -> None:
    with pytest.raises(RuntimeError, match="alpha"):
        TF.celu(torch.tensor([1.0]), 0.0)
    with pytest.raises(RuntimeError, match="alpha"):
        F.celu(ds.tensor([1.0]), 0.0)


def test_integer_input_keeps_the_float_result_of_the_composites() -> None:
    x = ds.tensor([-2, 0, 3])
    for fn in (F.elu, F.selu, F.celu, F.silu, F.mish, F.logsigmoid):
        assert fn(x).dtype == ds.float32, fn


@pytest.mark.parametrize("name", [*FUNCTIONS, "gelu", "gelu_float16"])
def test_the_kernels_run_on_a_device_without_synchronising(name: str) -> None:
    from downslope.devices import strict

    fn = F.gelu if name.startswith("gelu") and name != "gelu_tanh" else FUNCTIONS[name][0]
    dtype = np.float16 if name == "gelu_float16" else np.float32
    x = np.array([-100.0, -3.5, -1.0, -0.0, 0.5, 2.0, 3.0, 40.0, np.nan], dtype=dtype)
    host = ds.from_numpy(x.copy()).requires_grad_()
    dev = ds.from_numpy(x.copy()).to("strict").requires_grad_()
    with strict.allow_synchronize(False):
        y_dev = fn(dev)
        y_dev.backward(ds.ones_like(y_dev))
    y_host = fn(host)
    y_host.backward(ds.ones_like(y_host))
    np.testing.assert_allclose(y_dev.detach().cpu().numpy(), y_host.detach().numpy(), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(dev.grad.cpu().numpy(), host.grad.numpy(), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", [*FUNCTIONS, "gelu"])
def test_zero_dim_input_matches_torch(name: str, dtype: Any) -> None:
    ours_fn, torch_fn = FUNCTIONS.get(name, (F.gelu, TF.gelu))
    for value in (-4.0, -0.5, 0.7, 5.0):
        x = np.array(value, dtype=dtype)
        y, gx = _ours(ours_fn, x)
        ty, tgx = _theirs(torch_fn, x)
        assert y.shape == () and gx.shape == () and y.dtype == dtype and gx.dtype == dtype
        rtol = 2e-3 if dtype == np.float16 else 1e-5
        np.testing.assert_allclose(y, ty, rtol=rtol, atol=1e-6)
        np.testing.assert_allclose(gx, tgx, rtol=rtol, atol=1e-6)
