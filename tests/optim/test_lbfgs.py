"""L-BFGS against torch.optim.LBFGS (same iterates) and against the closed-form least-squares answer."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import optim

torch = pytest.importorskip("torch")


def _net_data(dtype):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    shapes = [(4, 8), (8,), (8, 1), (1,)]
    params = [rng.normal(0, 0.5, s).astype(dtype) for s in shapes]
    x = rng.normal(size=(40, 4)).astype(dtype)
    y = np.sin(x.sum(axis=1, keepdims=True)).astype(dtype)
    return params, x, y


def _run(dtype, steps, **kwargs):  # type: ignore[no-untyped-def]
    init, x, y = _net_data(dtype)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    ours = [ds.tensor(a, dtype=dtype, requires_grad=True) for a in init]
    theirs = [torch.tensor(a, dtype=tdtype, requires_grad=True) for a in init]
    opt, topt = optim.LBFGS(ours, **kwargs), torch.optim.LBFGS(theirs, **kwargs)
    dx, dy, tx, ty = ds.tensor(x, dtype=dtype), ds.tensor(y, dtype=dtype), torch.tensor(x), torch.tensor(y)

    def closure():  # type: ignore[no-untyped-def]
        opt.zero_grad()
        out = (dx @ ours[0] + ours[1]).tanh() @ ours[2] + ours[3]
        loss = ((out - dy) ** 2).mean()
        loss.backward()
        return loss

    def tclosure():  # type: ignore[no-untyped-def]
        topt.zero_grad()
        out = torch.tanh(tx @ theirs[0] + theirs[1]) @ theirs[2] + theirs[3]
        loss = ((out - ty) ** 2).mean()
        loss.backward()
        return loss

    losses = [(float(opt.step(closure)), float(topt.step(tclosure))) for _ in range(steps)]
    return ours, theirs, losses, opt, topt


def _rel(ours, theirs):  # type: ignore[no-untyped-def]
    return max(
        np.linalg.norm(a.detach().numpy() - b.detach().numpy()) / np.linalg.norm(b.detach().numpy())
        for a, b in zip(ours, theirs)
    )


NET_CASES = [
    ({"lr": 0.5, "max_iter": 5}, 2),
    ({"line_search_fn": "strong_wolfe", "max_iter": 10, "history_size": 4}, 1),
    ({"line_search_fn": "strong_wolfe"}, 2),
]


@pytest.mark.parametrize(("kwargs", "steps"), NET_CASES)
def test_matches_torch_on_a_network_float64(kwargs, steps):  # type: ignore[no-untyped-def]
    ours, theirs, losses, opt, topt = _run("float64", steps, **kwargs)
    assert _rel(ours, theirs) <= 1e-10
    tstate = topt.state[topt._params[0]]
    assert opt._lbfgs["n_iter"] == tstate["n_iter"] and opt._lbfgs["func_evals"] == tstate["func_evals"]
    assert steps == 1 or losses[-1][0] < losses[0][0]


def test_matches_torch_on_a_network_float32():
    # Only the first iterations: on this non-convex net, L-BFGS amplifies float32 rounding (and
    # near the optimum the line search compares losses that differ by float32 noise), so the two
    # libraries' iterates drift apart later even though the float64 runs agree to 1e-10.
    for kwargs, steps in [
        ({"lr": 0.5, "max_iter": 5}, 2),
        ({"line_search_fn": "strong_wolfe", "max_iter": 10, "history_size": 4}, 1),
    ]:
        ours, theirs, *_ = _run("float32", steps, **kwargs)
        assert _rel(ours, theirs) <= 1e-5, kwargs


def _logistic(dtype, steps, **kwargs):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 5)).astype(dtype)
    y = (X @ rng.normal(size=5) + 0.5 * rng.normal(size=100) > 0).astype(dtype)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    w, b = ds.zeros(5, dtype=dtype, requires_grad=True), ds.zeros(1, dtype=dtype, requires_grad=True)
    tw, tb = torch.zeros(5, dtype=tdtype, requires_grad=True), torch.zeros(1, dtype=tdtype, requires_grad=True)
    opt, topt = optim.LBFGS([w, b], **kwargs), torch.optim.LBFGS([tw, tb], **kwargs)
    dX, dy, tX, ty = ds.tensor(X, dtype=dtype), ds.tensor(y, dtype=dtype), torch.tensor(X), torch.tensor(y)

    def closure():  # type: ignore[no-untyped-def]
        opt.zero_grad()
        z = dX @ w + b
        loss = (ds.softplus(z) - dy * z).mean() + 1e-2 * (w * w).sum()
        loss.backward()
        return loss

    def tclosure():  # type: ignore[no-untyped-def]
        topt.zero_grad()
        z = tX @ tw + tb
        loss = (torch.nn.functional.softplus(z) - ty * z).mean() + 1e-2 * (tw * tw).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
        topt.step(tclosure)
    return [w, b], [tw, tb], opt, topt


@pytest.mark.parametrize(
    ("dtype", "kwargs"),
    [
        ("float32", {"lr": 0.5, "max_iter": 20}),
        ("float64", {"lr": 0.5, "max_iter": 20}),
        ("float64", {"line_search_fn": "strong_wolfe", "max_iter": 20, "history_size": 4}),
        ("float64", {"line_search_fn": "strong_wolfe", "max_iter": 20}),
    ],
)
def test_matches_torch_on_logistic_regression(dtype, kwargs):  # type: ignore[no-untyped-def]
    """Up to 100 iterations (5 steps of max_iter=20) on a convex problem."""
    ours, theirs, opt, topt = _logistic(dtype, 5, **kwargs)
    assert _rel(ours, theirs) <= (1e-5 if dtype == "float32" else 1e-10)
    if dtype == "float64":
        assert opt._lbfgs["n_iter"] == topt.state[topt._params[0]]["n_iter"]


def test_solves_least_squares_to_1e_6():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 6))
    b = rng.normal(size=50)
    exact = np.linalg.lstsq(A, b, rcond=None)[0]
    x = ds.zeros(6, dtype="float64", requires_grad=True)
    opt = optim.LBFGS([x], line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)
    tA, tb = ds.tensor(A, dtype="float64"), ds.tensor(b, dtype="float64")

    def closure():  # type: ignore[no-untyped-def]
        opt.zero_grad()
        loss = ((tA @ x - tb) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), exact, rtol=0, atol=1e-6)


def test_needs_a_closure_and_one_group():
    w = ds.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="closure"):
        optim.LBFGS([w]).step()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [w]}, {"params": [ds.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS([w], line_search_fn="armijo")
