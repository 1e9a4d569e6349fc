"""huber_loss and smooth_l1_loss as one recorded op with its own gradient rule: values and gradients
against torch (float32/float64, every reduction, delta/beta, infinite and NaN inputs, broadcasting,
double backward)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_SPECIAL = [np.inf, -np.inf, np.nan, 3e38, -2.0, 0.5]


def _inputs(dtype: Any, shape: tuple[int, ...] = (6, 5)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    t = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[: len(_SPECIAL)] = _SPECIAL
    x.reshape(-1)[len(_SPECIAL)] = t.reshape(-1)[len(_SPECIAL)] + 1.0  # |d| exactly at delta = beta = 1
    return x, t


def _run(lib: Any, name: str, x: np.ndarray, t: np.ndarray, dtype: Any, **kw: Any) -> list[np.ndarray]:
    dt = getattr(lib, np.dtype(dtype).name)
    a = lib.tensor(x, dtype=dt, requires_grad=True)
    b = lib.tensor(t, dtype=dt, requires_grad=True)
    out = getattr(lib.nn.functional, name)(a, b, **kw)
    out.backward(lib.full(out.shape, 1.5, dtype=dt))
    return [out.detach().numpy(), a.grad.numpy(), b.grad.numpy()]


_CASES = [
    ("huber_loss", {}),
    ("huber_loss", {"delta": 0.3}),
    ("huber_loss", {"delta": 4.0}),
    ("smooth_l1_loss", {}),
    ("smooth_l1_loss", {"beta": 0.2}),
    ("smooth_l1_loss", {"beta": 0.0}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, kw", _CASES)
def test_values_and_gradients_match_torch(name: str, kw: dict[str, float], reduction: str, dtype: Any) -> None:
    x, t = _inputs(dtype)
    want = _run(torch, name, x, t, dtype, reduction=reduction, **kw)
    got = _run(ds, name, x, t, dtype, reduction=reduction, **kw)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=0)


@pytest.mark.parametrize("name, arg", [("huber_loss", "delta"), ("smooth_l1_loss", "beta")])
def test_one_recorded_op(name: str, arg: str) -> None:
    """The loss's node reads the input and the target directly (not a chain of abs/where/mean nodes)."""
    x = ds.randn(4, 3, requires_grad=True)
    t = ds.randn(4, 3)
    for reduction in ("mean", "sum", "none"):
        out = getattr(ds.nn.functional, name)(x, t, reduction=reduction, **{arg: 0.5})
        assert out._parents == (x, t)


@pytest.mark.parametrize("name, kw", [c for c in _CASES if c[1] != {"beta": 0.0}])
def test_double_backward_matches_torch(name: str, kw: dict[str, float]) -> None:
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((2, 5, 4))
    res = []
    for lib in (torch, ds):
        a = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(t, dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(getattr(lib.nn.functional, name)(a, b, **kw), a, create_graph=True)
        (g * g * lib.tensor(x, dtype=lib.float64)).sum().backward()
        res.append([g.detach().numpy(), a.grad.numpy(), b.grad.numpy()])
    for g, w in zip(*res[::-1]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_broadcast_target_matches_torch(name: str, reduction: str) -> None:
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    t = np.array([0.5], np.float32)
    res = []
    for lib in (torch, ds):
        a, b = lib.tensor(x, requires_grad=True), lib.tensor(t, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = getattr(lib.nn.functional, name)(a, b, reduction=reduction)
        out.sum().backward()
        res.append([out.detach().numpy(), a.grad.numpy(), b.grad.numpy()])
    for g, w in zip(res[1], res[0]):
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
def test_empty_mean_is_nan(name: str) -> None:
    x = ds.zeros(0, requires_grad=True)
    out = getattr(ds.nn.functional, name)(x, ds.zeros(0))
    assert np.isnan(out.item())
    out.backward()
    assert x.grad.shape == (0,)


def test_weighted_huber_matches_torch() -> None:
    x, t = _inputs(np.float32, (3, 4))
    w = np.linspace(0.5, 2.0, 12, dtype=np.float32).reshape(3, 4)
    res = []
    for lib in (torch, ds):
        a = lib.tensor(x, requires_grad=True)
        out = lib.nn.functional.huber_loss(a, lib.tensor(t), weight=lib.tensor(w), delta=0.7, reduction="sum")
        out.backward()
        res.append([out.detach().numpy(), a.grad.numpy()])
    for g, w_ in zip(res[1], res[0]):
        np.testing.assert_allclose(g, w_, rtol=1e-6)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
def test_node_name_is_torchs(name: str) -> None:
    want = getattr(torch.nn.functional, name)(torch.ones(3, requires_grad=True), torch.zeros(3)).grad_fn.name()
    assert getattr(ds.nn.functional, name)(ds.ones(3, requires_grad=True), ds.zeros(3)).grad_fn.name() == want
