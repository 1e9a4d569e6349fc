"""torch.cdist with p = inf where differences are NaN (NaN inputs, inf - inf): torch's running max from 0
passes over them (the largest of the others, 0 if none), and its backward's formula makes NaN there. Both
host paths (the compiled kernels take finite inputs only, so NaN takes the NumPy blocks) and the composite
path of create_graph, in float64 and float32, batched, against torch 2.13."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")


def _inputs(shape1: tuple[int, ...], shape2: tuple[int, ...], dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(shape1).astype(dtype), rng.standard_normal(shape2).astype(dtype)
    for a, count in ((x, 3), (y, 2)):
        flat = a.reshape(-1)
        flat[rng.choice(flat.size, count, replace=False)] = np.nan
        flat[rng.choice(flat.size, 2, replace=False)] = rng.choice([np.inf, -np.inf], 2)
    x[..., 0, :2] = y[..., 0, :2]  # ties and zero differences
    return x, y


def _same(ours: np.ndarray, theirs: np.ndarray, rtol: float) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("jit", [True, False], ids=["jit-allowed", "numpy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shapes", [((3, 1), (4, 1)), ((5, 7), (6, 7)), ((2, 30, 33), (2, 25, 33))], ids=str)
def test_cdist_inf_with_nan_matches_torch(jit: bool, dtype: str, shapes: tuple) -> None:
    x, y = _inputs(*shapes, dtype, seed=len(shapes[0]) + shapes[0][-1])
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    theirs = torch.cdist(tx, ty, p=float("inf"))
    g = np.random.default_rng(1).standard_normal(tuple(theirs.shape)).astype(dtype)
    theirs.backward(torch.tensor(g))
    dx, dy = ds.from_numpy(x.copy()).requires_grad_(True), ds.from_numpy(y.copy()).requires_grad_(True)
    with warnings.catch_warnings(), jit_gate.disabled() if not jit else warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's inf - inf in the differences
        ours = ds.cdist(dx, dy, p=float("inf"))
        ours.backward(ds.from_numpy(g))
    rtol = 1e-12 if dtype == "float64" else 1e-5
    _same(ours.detach().numpy(), theirs.detach().numpy(), rtol)
    _same(dx.grad.numpy(), tx.grad.numpy(), rtol)
    _same(dy.grad.numpy(), ty.grad.numpy(), rtol)


def test_cdist_inf_with_nan_under_create_graph_matches_torch() -> None:
    x, y = _inputs((4, 5), (3, 5), "float64", seed=3)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    g = np.random.default_rng(2).standard_normal((4, 3))
    want = torch.autograd.grad(torch.cdist(tx, ty, p=float("inf")), (tx, ty), torch.tensor(g))
    dx, dy = ds.from_numpy(x.copy()).requires_grad_(True), ds.from_numpy(y.copy()).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = ds.autograd.grad(ds.cdist(dx, dy, p=float("inf")), (dx, dy), ds.from_numpy(g), create_graph=True)
    for o, t in zip(got, want):
        _same(o.detach().numpy(), t.numpy(), 1e-12)


def test_cdist_inf_of_all_nan_rows_is_zero_as_torch() -> None:
    nan = float("nan")
    x, y = [[1.0, nan, 3.0], [nan, nan, nan]], [[0.0, 0.0, 0.0], [nan, 1.0, 1.0]]
    theirs = torch.cdist(torch.tensor(x), torch.tensor(y), p=float("inf"))
    ours = ds.cdist(ds.tensor(x), ds.tensor(y), p=float("inf"))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())  # [[3, 2], [0, 0]]: no NaN
