"""Gradients at infinite inputs against torch: a branch that is not taken (a where(), a mask) must not
put 0 * inf = NaN into the gradient where torch's is finite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_VALUES = np.array([np.inf, -np.inf, 3e38, -3e38, 1e30, np.nan, 0.5, -0.5, 0.0, 2.0, -2.0], np.float32)


def _grads(fn: Callable[..., Any], lib: Any, arrays: list[np.ndarray], wrt: tuple[int, ...]) -> list[np.ndarray]:
    if lib is torch:
        ts = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    else:
        ts = [ds.from_numpy(a.copy()).requires_grad_(i in wrt) for i, a in enumerate(arrays)]
    out = fn(lib, *ts)
    out.sum().backward()
    return [out.detach().numpy()] + [ts[i].grad.numpy() for i in wrt]


def _same(fn: Callable[..., Any], arrays: list[np.ndarray], wrt: tuple[int, ...] = (0,)) -> None:
    for t, d in zip(_grads(fn, torch, arrays, wrt), _grads(fn, ds, arrays, wrt)):
        np.testing.assert_allclose(d, t, rtol=1e-6, atol=1e-6)  # NaN where torch has NaN, nowhere else


_ZERO = np.zeros_like(_VALUES)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("smooth_l1", lambda L, x, t: L.nn.functional.smooth_l1_loss(x, t, reduction="none")),
        ("smooth_l1_beta", lambda L, x, t: L.nn.functional.smooth_l1_loss(x, t, reduction="none", beta=0.1)),
        ("huber", lambda L, x, t: L.nn.functional.huber_loss(x, t, reduction="none")),
        ("huber_delta", lambda L, x, t: L.nn.functional.huber_loss(x, t, reduction="none", delta=3.0)),
    ],
)
def test_piecewise_regression_losses(name: str, fn: Callable[..., Any]) -> None:
    _same(fn, [_VALUES, _ZERO], wrt=(0, 1))


def test_prelu_weight_gradient_at_inf() -> None:
    x = np.array([[np.inf, -2.0, 3.0, -np.inf, 1e38]], np.float32)
    for arrays in ([x[:, :3]], [x]):
        tp, dp = torch.nn.PReLU(), ds.nn.PReLU()
        tp(torch.tensor(arrays[0])).sum().backward()
        dp(ds.from_numpy(arrays[0].copy())).sum().backward()
        np.testing.assert_allclose(dp.weight.grad.numpy(), tp.weight.grad.numpy())
    _same(lambda L, a, w: L.nn.functional.prelu(a, w), [x, np.array([0.25], np.float32)], wrt=(0, 1))


def test_gaussian_nll_infinite_var() -> None:
    """var = inf: the eps floor is not max(var, eps) - var (inf - inf); torch's loss is inf there."""
    var = np.abs(_VALUES[~np.isnan(_VALUES)])
    zero, one = np.zeros_like(var), np.ones_like(var)
    _same(lambda L, x, t, v: L.nn.functional.gaussian_nll_loss(x, t, v, reduction="none"), [zero, one, var], (0, 1, 2))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("target", [0, 1])
def test_multi_margin_infinite_scores(p: int, target: int) -> None:
    """An infinite score of the target class: its own term (inf - inf) is left out, not multiplied by 0."""
    x = np.array([[np.inf, 0.0, 0.3], [-np.inf, 0.0, 0.3], [1e30, -1e30, 0.0], [0.5, np.inf, -0.5]], np.float32)
    y = np.full(len(x), target, np.int64)
    fn = lambda L, a, b: L.nn.functional.multi_margin_loss(a, b, p=p, reduction="none")  # noqa: E731
    _same(fn, [x, y])
