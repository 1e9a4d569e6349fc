"""relu, leaky_relu, softplus, clamp, hardtanh and relu6 against torch at their extremes: values and
input gradients bit for bit (NaN, +-inf, -0.0 and a NaN or inf output gradient where torch's
backward selects 0), in float64, float32 and float16, on small arrays and on the pooled large ones;
the double backward of the piecewise-linear ones (their input's ancestors get zeros, as torch's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope.ops import pointwise

TF = torch.nn.functional
NAN, INF = float("nan"), float("inf")
XS = [-0.0, 0.0, NAN, INF, -INF, -1.0, 2.0, 1.0, 0.5, 6.0, -3e-5, 25.0, -30.0, 10.0, -1e-3, 3.0]
GS = [NAN, 1.0, 2.0, INF, INF, -3.0, 4.0, 5.0, 6.0, 7.0, -8.0, 9.0, 1.5, 2.5, -1.25, 3.0]

CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda t: TF.leaky_relu(t, 0.1)),
    "leaky_relu(-2.5)": (lambda t: F.leaky_relu(t, -2.5), lambda t: TF.leaky_relu(t, -2.5)),
    "clamp": (lambda t: t.clamp(0, 1), lambda t: t.clamp(0, 1)),
    "clamp_min": (lambda t: t.clamp(min=0), lambda t: t.clamp(min=0)),
    "clamp_max": (lambda t: t.clamp(max=1), lambda t: t.clamp(max=1)),
    "clamp_min()": (lambda t: ds.clamp_min(t, 0.0), lambda t: torch.clamp_min(t, 0.0)),
    "clip": (lambda t: ds.clip(t, -1, 1), lambda t: torch.clip(t, -1, 1)),
}
# hardtanh/relu6 pass a NaN input's gradient in torch's scalar loop (and on CUDA) and block it in its
# CPU vector loop, so torch's answer there depends on the position: compared without NaN inputs (the
# scalar loop's answer, which downslope gives, is checked at the kinks in tests/nn/test_torch_edge_cases.py)
NO_NAN = {"hardtanh": (F.hardtanh, TF.hardtanh), "relu6": (F.relu6, TF.relu6)}


def _same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)  # NaN where NaN
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))  # -0.0 where -0.0


def _run(ours: Any, theirs: Any, dtype: str, size: int, nan: bool = True) -> None:
    x = np.resize(np.array(XS if nan else [v for v in XS if v == v]), size).astype(dtype)
    g = np.resize(np.array(GS), size).astype(dtype)
    xd, xt = ds.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    yd, yt = ours(xd), theirs(xt)
    yd.backward(ds.from_numpy(g))
    yt.backward(torch.from_numpy(g))
    _same(yd.detach().numpy(), yt.detach().numpy())
    _same(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("size", [16, 16 * 6000])  # the second above the pooled-activation size
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch_bit_for_bit(name: str, dtype: str, size: int) -> None:
    _run(*CASES[name], dtype, size)


@pytest.mark.parametrize("size", [15, 15 * 6000])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name", list(NO_NAN))
def test_hardtanh_and_relu6_match_torch(name: str, dtype: str, size: int) -> None:
    _run(*NO_NAN[name], dtype, size, nan=False)


def test_hardtanh_passes_a_nan_inputs_gradient() -> None:
    x = ds.tensor([NAN, 0.5, 2.0], requires_grad=True)
    F.hardtanh(x).backward(ds.tensor([3.0, 4.0, 5.0]))
    assert x.grad.tolist() == [3.0, 4.0, 0.0]


def test_clamp_gradient_is_zero_not_nan_where_clamped() -> None:
    # 1 / (clamp(x, min=1) - 1) is inf at x = 0.5: the clamped place gets 0, as torch's select
    x = ds.tensor(0.5, requires_grad=True)
    (1 / (ds.clamp(x, min=1) - 1)).sum().backward()
    t = torch.tensor(0.5, requires_grad=True)
    (1 / (torch.clamp(t, min=1) - 1)).sum().backward()
    assert x.grad.item() == t.grad.item() == 0.0


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 5.0), (0.5, 1.0)])
@pytest.mark.parametrize("size", [16, 16 * 6000])
def test_softplus_matches_torch(beta: float, threshold: float, size: int) -> None:
    x = np.resize(np.array(XS + [-700.0, 700.0, -20.5, 20.5]), size)
    g = np.resize(np.array(GS + [1.0, 1.0, 2.0, 2.0]), size)
    for dtype, tol in (("float64", 1e-15), ("float32", 3e-7), ("float16", 1e-3)):
        xd = ds.from_numpy(x.astype(dtype)).requires_grad_()
        xt = torch.from_numpy(x.astype(dtype)).requires_grad_()
        yd, yt = F.softplus(xd, beta, threshold), TF.softplus(xt, beta, threshold)
        yd.backward(ds.from_numpy(g.astype(dtype)))
        yt.backward(torch.from_numpy(g.astype(dtype)))
        for ours, theirs in ((yd.detach().numpy(), yt.detach().numpy()), (xd.grad.numpy(), xt.grad.numpy())):
            assert ours.dtype == theirs.dtype
            np.testing.assert_allclose(ours.astype(float), theirs.astype(float), rtol=tol, atol=1e-30)


def test_softplus_has_no_overflow_and_keeps_tiny_values() -> None:
    x = ds.tensor([-100.0, -30.0, 0.0, 30.0, 88.0, 1000.0], dtype=ds.float64, requires_grad=True)
    y = F.softplus(x, threshold=float("inf"))
    expected = np.log1p(np.exp(np.array([-100.0, -30.0, 0.0]))).tolist() + [30.0 + np.exp(-30.0), 88.0, 1000.0]
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 / (1 + np.exp(-x.detach().numpy())), rtol=1e-15)


def _penalty(lib: Any, act: Callable[[Any], Any]) -> tuple[Any, Any]:
    x = lib.tensor([0.5, -1.0, 2.0, 0.3, -0.2, 0.1], dtype=lib.float64, requires_grad=True)
    w = lib.tensor(1.5, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(0.1, dtype=lib.float64, requires_grad=True)
    (gx,) = lib.autograd.grad(act(x * w + b).sum(), x, create_graph=True)
    (gx**2).sum().backward()
    return w.grad, b.grad


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("relu", F.relu, TF.relu),
        ("leaky_relu", F.leaky_relu, TF.leaky_relu),
        ("hardtanh", F.hardtanh, TF.hardtanh),
        ("relu6", F.relu6, TF.relu6),
        ("clamp", lambda t: t.clamp(-1, 1), lambda t: t.clamp(-1, 1)),  # torch: None here
    ],
)
def test_double_backward_reaches_the_input_ancestors_as_torch(name: str, ours: Any, theirs: Any) -> None:
    (wd, bd), (wt, bt) = _penalty(ds, ours), _penalty(torch, theirs)
    assert wd.item() == pytest.approx(wt.item(), rel=1e-12)
    assert (bd is None) == (bt is None)
    if bt is not None:
        assert bd.item() == bt.item() == 0.0


def test_selects_under_create_graph_give_torch_values() -> None:
    a = np.array([-2.0, -0.5, 0.0, 0.5, 1.0, 3.0, NAN])
    for ours, theirs in (
        (F.relu, TF.relu),
        (F.hardtanh, TF.hardtanh),
        (lambda t: t.clamp(-1, 1), lambda t: t.clamp(-1, 1)),
    ):
        x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        (gd,) = ds.autograd.grad((ours(x) * 3).sum(), x, create_graph=True)
        (gt,) = torch.autograd.grad((theirs(t) * 3).sum(), t, create_graph=True)
        np.testing.assert_array_equal(gd.detach().numpy(), gt.detach().numpy())


def test_hardtanh_refuses_what_torch_refuses_and_keeps_integers() -> None:
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(ds.tensor([1.0]), 2.0, 1.0)
    with pytest.raises(RuntimeError, match="Bool"):
        F.hardtanh(ds.tensor([True]))
    with pytest.raises(RuntimeError, match="overflow"):
        F.hardtanh(ds.tensor([1.0], dtype=ds.float16), -1e6, 1e6)
    out = F.hardtanh(ds.tensor([-3, 0, 1, 5]), 0.5, 2.5)  # torch truncates the bounds: [0, 2]
    assert out.dtype == ds.int64 and out.tolist() == [0, 0, 1, 2]


def test_select_helper_blocks_nan_and_inf() -> None:
    g = np.array([np.nan, np.inf, -3.0, 4.0], dtype=np.float32)
    out = pointwise._select(g, np.array([False, False, False, True]))
    assert out.tolist() == [0.0, 0.0, 0.0, 4.0] and not np.signbit(out).any()


@pytest.mark.parametrize("bounds", [{"min": [float("nan"), 0.0]}, {"max": [float("nan"), 0.0]},
                                    {"min": [0.0, 0.0], "max": [float("nan"), 5.0]}, {"min": [1.5, 0.0]}])  # fmt: skip
def test_clamp_with_nan_in_a_tensor_bound_gives_nan_and_no_gradient_there_like_torch(bounds: dict) -> None:
    torch = pytest.importorskip("torch")
    x, tx = ds.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    ours = {k: ds.tensor(v, requires_grad=True) for k, v in bounds.items()}
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in bounds.items()}
    y, ty = ds.clamp(x, **ours), torch.clamp(tx, **theirs)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    for k in bounds:
        np.testing.assert_array_equal(ours[k].grad.numpy(), theirs[k].grad.numpy())


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.999, 1e-30, 0.0, 1.0, -2.5, 3.0])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("grad_mode", ["no_grad", "no_requires_grad", "inference_mode"])
def test_leaky_relu_without_recording_matches_torch_bit_for_bit(grad_mode: str, dtype: str, slope: float) -> None:
    """The path that keeps no backward factor (nothing records the op): torch's values, NaN, +-inf,
    -0.0 and underflowing products included, whatever the slope."""
    with np.errstate(over="ignore"):  # +-3e38 become +-inf in float16
        x = np.resize(np.array(XS + [-1e-45, 1e-45, -3e38, 3e38, -1e-300]), 21 * 7).astype(dtype)
    xd = ds.from_numpy(x.copy()).requires_grad_(grad_mode != "no_requires_grad")
    context = {"no_grad": ds.no_grad, "no_requires_grad": ds.enable_grad, "inference_mode": ds.inference_mode}
    with context[grad_mode]():
        yd = F.leaky_relu(xd, slope)
    assert not yd.requires_grad
    _same(yd.numpy(), TF.leaky_relu(torch.from_numpy(x.copy()), slope).numpy())
