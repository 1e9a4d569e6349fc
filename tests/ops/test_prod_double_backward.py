"""prod and cumprod differentiated twice and three times (create_graph=True) against torch in float64,
with no zero, one zero and several zeros in the input (where the derivatives are products of the
other elements, never divisions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
BASE = RNG.standard_normal((3, 5))


def _with_zeros(count: int) -> np.ndarray:
    a = BASE.copy()
    for i, j in [(0, 2), (0, 4), (1, 1), (0, 0)][:count]:
        a[i, j] = 0.0
    return a


def _three_orders(ours: Callable[[Any], Any], theirs: Callable[[Any], Any], a: np.ndarray) -> None:
    """The output, its gradient (a random projection), that gradient's gradient and a third
    derivative, each against torch's."""
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y, ref = ours(x), theirs(t)
    v = np.random.default_rng(1).standard_normal(tuple(ref.shape))
    w = np.random.default_rng(2).standard_normal(a.shape)
    (g,) = ds.autograd.grad((y * ds.tensor(v, dtype=ds.float64)).sum(), x, create_graph=True)
    (g_ref,) = torch.autograd.grad((ref * torch.tensor(v)).sum(), t, create_graph=True)
    (gg,) = ds.autograd.grad((g * ds.tensor(w, dtype=ds.float64)).sum(), x, create_graph=True)
    (gg_ref,) = torch.autograd.grad((g_ref * torch.tensor(w)).sum(), t, create_graph=True)
    (ggg,) = ds.autograd.grad((gg * gg).sum(), x)
    (ggg_ref,) = torch.autograd.grad((gg_ref * gg_ref).sum(), t)
    for mine, theirs_ in ((y, ref), (g, g_ref), (gg, gg_ref), (ggg, ggg_ref)):
        np.testing.assert_allclose(mine.detach().numpy(), theirs_.detach().numpy(), rtol=1e-10, atol=1e-12)


PROD_CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "all": (lambda x: x[:2, :3].prod(), lambda x: x[:2, :3].prod()),
    "dim 1": (lambda x: x.prod(1), lambda x: x.prod(1)),
    "dim 0 keepdim": (lambda x: x.prod(0, keepdim=True), lambda x: x.prod(0, keepdim=True)),
    "dim -1 of a stack": (lambda x: x.reshape(3, 1, 5).prod(-1), lambda x: x.reshape(3, 1, 5).prod(-1)),
    "cumprod 1": (lambda x: x.cumprod(1), lambda x: x.cumprod(1)),
    "cumprod 0": (lambda x: x.cumprod(0), lambda x: x.cumprod(0)),
    "cumprod then prod": (lambda x: x.cumprod(1).prod(0) ** 2, lambda x: x.cumprod(1).prod(0) ** 2),
}


@pytest.mark.parametrize("zeros", [0, 1, 2, 4])
@pytest.mark.parametrize("name", list(PROD_CASES))
def test_prod_and_cumprod_three_derivatives_match_torch(name: str, zeros: int) -> None:
    ours, theirs = PROD_CASES[name]
    _three_orders(ours, theirs, _with_zeros(zeros))


@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_the_hessian_of_prod_is_the_products_of_the_others(zeros: int) -> None:
    a = _with_zeros(zeros)[0, :4]
    hessian = ds.autograd.functional.hessian(lambda x: x.prod(), ds.tensor(a, dtype=ds.float64)).numpy()
    exact = np.array([[0.0 if i == j else np.prod(np.delete(a, [i, j])) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(hessian, exact, rtol=1e-12, atol=1e-15)


def test_empty_and_single_element_products_differentiate_twice() -> None:
    x = ds.tensor(BASE[:, :1], dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad((x.cumprod(1) ** 3).sum(), x, create_graph=True)
    (gg,) = ds.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 6 * BASE[:, :1], rtol=1e-12)
    empty = ds.zeros(3, 0, dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad(empty.prod(1).sum(), empty, create_graph=True)
    assert tuple(g.shape) == (3, 0)


def test_a_long_float32_cumprod_differentiates_twice_as_torch() -> None:
    rng = np.random.default_rng(4)
    a = (1 + rng.normal(0, 1e-2, (3, 200))).astype(np.float32)
    w = rng.normal(0, 1, a.shape).astype(np.float32)
    x, t = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (gx,) = ds.autograd.grad((x.cumprod(1) * ds.tensor(w)).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad((t.cumprod(1) * torch.tensor(w)).sum(), t, create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), gt.detach().numpy(), rtol=2e-5, atol=1e-5)
    (ggx,) = ds.autograd.grad((gx * gx).sum(), x)
    (ggt,) = torch.autograd.grad((gt * gt).sum(), t)
    np.testing.assert_allclose(ggx.numpy(), ggt.numpy(), rtol=1e-4, atol=1e-3)
