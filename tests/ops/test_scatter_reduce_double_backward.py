"""Second derivatives through scatter_reduce and index_reduce (create_graph=True) against PyTorch and
float64 finite differences, for every reduction with and without the tensor's own values (ties of
amax/amin and zeros of prod included); and torch's 'max'/'min' aliases of scatter_reduce."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")

REDUCES = ["sum", "prod", "mean", "amax", "amin"]


def _data(reduce: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """base (5, 3), src (7, 3), a (7, 3) index along dim 0 (rows 2 and 4 of base never written) and
    weights for the function of the gradient. amax/amin get tied values (rounded to halves, on a
    small range); prod gets single zeros in src and base."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 1.5, (5, 3))
    src = rng.uniform(0.5, 1.5, (7, 3))
    if reduce in ("amax", "amin"):
        base, src = np.round(base * 2) / 2, np.round(src * 2) / 2
    if reduce == "prod":
        src[1, 0] = 0.0  # one zero in its group (row 3, column 0)
        base[0, 2] = 0.0  # the tensor's own zero (row 0, column 2)
    index = np.array([[0, 3, 0], [3, 3, 0], [1, 0, 1], [0, 1, 3], [3, 0, 0], [1, 1, 1], [0, 3, 3]])
    return base, src, index, rng.standard_normal((7, 3))


def _second_order(
    lib: Any,
    base: np.ndarray,
    src: np.ndarray,
    index: np.ndarray,
    w: np.ndarray,
    reduce: str,
    include_self: bool,
    index_reduce: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """d/d(base, src) of sum(w * d(sum(out * out2))/d src) + sum(d/d base ^ 2): mixed second derivatives."""
    b = lib.tensor(base, dtype=lib.float64, requires_grad=True)
    s = lib.tensor(src, dtype=lib.float64, requires_grad=True)
    if index_reduce:
        out = b.index_reduce(0, lib.tensor(index[:, 0]), s * s, reduce, include_self=include_self)
    else:
        out = b.scatter_reduce(0, lib.tensor(index), s * s, reduce, include_self=include_self)
    gb, gs = lib.autograd.grad((out * out).sum() + out.sum(), (b, s), create_graph=True)
    ((gs * lib.tensor(w, dtype=lib.float64)).sum() + (gb * gb).sum()).backward()
    return b.grad.detach().numpy(), s.grad.detach().numpy()


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_double_backward_matches_torch(reduce: str, include_self: bool) -> None:
    base, src, index, w = _data(reduce, 3)
    got = _second_order(ds, base, src, index, w, reduce, include_self)
    ref = _second_order(torch, base, src, index, w, reduce, include_self)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_double_backward_matches_torch(reduce: str, include_self: bool) -> None:
    base, src, index, w = _data(reduce, 4)
    got = _second_order(ds, base, src, index, w, reduce, include_self, index_reduce=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's index_reduce is "in beta"
        ref = _second_order(torch, base, src, index, w, reduce, include_self, index_reduce=True)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_gnn_users_gradient_penalty_through_a_scatter_mean() -> None:
    def run(lib: Any) -> list[list[float]]:
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)  # float32, as the user's
        dst = lib.tensor([[0, 0], [0, 0], [1, 1]])
        agg = lib.zeros(2, 2).scatter_reduce(0, dst, x * x, reduce="mean", include_self=False)
        (g,) = lib.autograd.grad(agg.sum(), x, create_graph=True)
        g.pow(2).sum().backward()
        return x.grad.tolist()

    assert run(ds) == run(torch)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_gradgradcheck(reduce: str, include_self: bool) -> None:
    base, src, index, _ = _data(reduce, 5)
    if reduce in ("amax", "amin"):  # finite differences need a margin between the members
        base, src = _data("sum", 5)[:2]
    idx = ds.tensor(index)

    def f(b: ds.Tensor, s: ds.Tensor) -> ds.Tensor:
        return b.scatter_reduce(0, idx, s, reduce, include_self=include_self)

    assert ds.autograd.gradgradcheck(
        f, (ds.tensor(base, dtype=ds.float64, requires_grad=True), ds.tensor(src, dtype=ds.float64, requires_grad=True))
    )


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("zeros", [2, 3])
def test_scatter_prod_second_derivatives_with_several_zeros_in_a_group(include_self: bool, zeros: int) -> None:
    """torch refuses this double backward (">1 zeros in src are scattered to the same position");
    the Hessian is the product of the group's members other than the two differentiated, which the
    rule gives exactly (checked against finite differences of the float64 gradient)."""
    base = np.array([0.0, 1.5, 0.7]) if include_self else np.array([2.0, 1.5, 0.7])
    src = np.array([0.0, 2.0, 0.0, 3.0, 0.0 if zeros == 3 else 1.25, 0.5])
    index = ds.tensor([0, 0, 0, 2, 0, 2])
    if include_self:
        src[2] = 0.8  # the zeros: base[0], src[0] (and src[4])

    def grad_of(b: np.ndarray, s: np.ndarray) -> np.ndarray:
        bt = ds.tensor(b, dtype=ds.float64, requires_grad=True)
        st = ds.tensor(s, dtype=ds.float64, requires_grad=True)
        out = bt.scatter_reduce(0, index, st, "prod", include_self=include_self)
        gb, gs = ds.autograd.grad(
            (out * ds.tensor([1.0, -2.0, 0.5], dtype=ds.float64)).sum(), (bt, st), create_graph=True
        )
        return gb, gs

    hess = np.zeros((9, 9))  # rows: the gradient's entries; columns: the members
    # analytic: the Jacobian of the gradient, one backward per entry
    bt = ds.tensor(base, dtype=ds.float64, requires_grad=True)
    st = ds.tensor(src, dtype=ds.float64, requires_grad=True)
    out = bt.scatter_reduce(0, index, st, "prod", include_self=include_self)
    gb, gs = ds.autograd.grad((out * ds.tensor([1.0, -2.0, 0.5], dtype=ds.float64)).sum(), (bt, st), create_graph=True)
    flat = ds.cat([gb, gs])
    for i in range(9):
        hb, hs = ds.autograd.grad(flat[i], (bt, st), retain_graph=True, allow_unused=True)
        hess[i, :3] = 0 if hb is None else hb.numpy()
        hess[i, 3:] = 0 if hs is None else hs.numpy()
    numeric = np.zeros((9, 9))
    eps = 1e-6
    point = np.concatenate([base, src])
    for j in range(9):
        up, down = point.copy(), point.copy()
        up[j] += eps
        down[j] -= eps
        g_up = np.concatenate([t.detach().numpy() for t in grad_of(up[:3], up[3:])])
        g_down = np.concatenate([t.detach().numpy() for t in grad_of(down[:3], down[3:])])
        numeric[:, j] = (g_up - g_down) / (2 * eps)
    np.testing.assert_allclose(hess, numeric, atol=1e-7)
    assert np.abs(numeric).max() > 0.1  # the Hessian is not trivially zero


def test_scatter_reduce_takes_max_and_min_as_torch_does() -> None:
    x, idx = np.array([[1.0, 5.0, 2.0], [3.0, 1.0, 7.0]]), np.array([[1, 0, 1], [1, 0, 1]])
    for reduce in ("max", "min"):
        for include_self in (True, False):
            ref = torch.zeros(2, 3).scatter_reduce(
                0, torch.tensor(idx), torch.tensor(x, dtype=torch.float32), reduce, include_self=include_self
            )
            got = ds.zeros(2, 3).scatter_reduce(
                0, ds.tensor(idx), ds.tensor(x, dtype=ds.float32), reduce, include_self=include_self
            )
            np.testing.assert_array_equal(got.numpy(), ref.numpy())
            inplace = ds.zeros(2, 3)
            inplace.scatter_reduce_(
                0, ds.tensor(idx), ds.tensor(x, dtype=ds.float32), reduce, include_self=include_self
            )
            np.testing.assert_array_equal(inplace.numpy(), ref.numpy())
            top = ds.scatter_reduce(ds.zeros(2, 3), 0, ds.tensor(idx), ds.tensor(x, dtype=ds.float32), reduce=reduce)
            np.testing.assert_array_equal(
                top.numpy(),
                torch.scatter_reduce(
                    torch.zeros(2, 3), 0, torch.tensor(idx), torch.tensor(x, dtype=torch.float32), reduce=reduce
                ).numpy(),
            )


def test_scatter_reduce_max_alias_gradient_is_refused_as_in_torch() -> None:
    src = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="amax"):
        torch.zeros(2).scatter_reduce(0, torch.tensor([0, 0]), src, "max").sum().backward()
    s = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ArgumentError, match="'max'.*'amax'"):
        ds.zeros(2).scatter_reduce(0, ds.tensor([0, 0]), s, "max").sum().backward()


@pytest.mark.parametrize("reduce", ["max", "min", "sum"])
def test_index_reduce_refuses_max_min_sum_as_torch_does(reduce: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="Expected reduce"):
            torch.zeros(2, 3).index_reduce(0, torch.tensor([1]), torch.ones(1, 3), reduce)
    with pytest.raises(ArgumentError, match="index_reduce: reduce must be"):
        ds.zeros(2, 3).index_reduce(0, ds.tensor([1]), ds.ones(1, 3), reduce)
