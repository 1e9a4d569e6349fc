"""rsub, fill, adjoint, vander, frobenius_norm, nuclear_norm, nonzero_static, Tensor.hardshrink and
Tensor.prelu against torch (values, dtypes, float64 gradients, errors); and the torch-named indexing
functions ds.put / ds.index_put."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

A = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.5]])


def _grad_pair(fn_ds: Any, fn_torch: Any, *arrays: np.ndarray) -> None:
    """Values and float64 gradients (of a weighted sum) of fn over the arrays, on both libraries."""
    ours = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn_ds(*ours), fn_torch(*theirs)
    assert y.shape == tuple(ty.shape) and y.dtype == ds.float64
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = np.sin(np.arange(y.numel()) + 1.0).reshape(y.shape)
    (y * ds.tensor(w, dtype=ds.float64)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", [1, 2, 0.5])
def test_rsub(alpha: Any) -> None:
    _grad_pair(lambda x: ds.rsub(x, 1.5, alpha=alpha), lambda x: torch.rsub(x, 1.5, alpha=alpha), A)
    _grad_pair(lambda x, y: ds.rsub(x, y, alpha=alpha), lambda x, y: torch.rsub(x, y, alpha=alpha), A, A[::-1].copy())
    assert ds.rsub(ds.tensor([1, 2]), 5).dtype == ds.int64
    with pytest.raises(TypeError):
        ds.rsub(ds.tensor([True]), 1)


def test_fill_values_dtypes_and_gradients() -> None:
    _grad_pair(lambda x: ds.fill(x, 2.5), lambda x: torch.fill(x, 2.5), A)
    _grad_pair(lambda x, v: ds.fill(x, v), lambda x, v: torch.fill(x, v), A, np.array(3.0))
    assert ds.fill(ds.tensor([1, 2]), 2.7).tolist() == torch.fill(torch.tensor([1, 2]), 2.7).tolist()
    assert ds.fill(ds.tensor([1, 2]), 2.7).dtype == ds.int64
    assert ds.fill(ds.tensor([True, False]), 0).tolist() == [False, False]
    x = ds.zeros(2)
    assert ds.fill(x, 1.0) is not x and x.tolist() == [0.0, 0.0]  # out of place
    with pytest.raises(ds.ShapeError):
        ds.fill(ds.zeros(2), ds.tensor([1.0]))
    with pytest.raises(TypeError):
        ds.fill(ds.zeros(2), "a")


def test_adjoint() -> None:
    _grad_pair(ds.adjoint, torch.adjoint, np.arange(24.0).reshape(2, 3, 4))
    with pytest.raises(ds.ShapeError):
        ds.adjoint(ds.tensor([1.0, 2.0]))


@pytest.mark.parametrize(("n", "increasing"), [(None, False), (None, True), (2, True), (5, False), (0, False)])
def test_vander(n: Any, increasing: bool) -> None:
    """Values against torch; gradients against finite differences (torch's vander backward fails:
    its formula writes in place into a tensor it saved)."""
    x = np.array([0.0, 1.5, -2.0, 3.0])
    ours = ds.vander(ds.tensor(x, dtype=ds.float64), n, increasing)
    np.testing.assert_allclose(ours.numpy(), torch.vander(torch.tensor(x), n, increasing).numpy(), rtol=1e-15)
    if ours.numel():
        ds.gradcheck(lambda t: ds.vander(t, n, increasing), (ds.tensor(x, requires_grad=True),))


def test_vander_dtypes_and_errors() -> None:
    for data, dtype in (([1, 2, 3], None), ([True, False], None), ([1, 2], "int32")):
        ours = ds.vander(ds.tensor(data, dtype=getattr(ds, dtype) if dtype else None))
        theirs = torch.vander(torch.tensor(data, dtype=getattr(torch, dtype) if dtype else None))
        assert ours.dtype == ds.int64 and ours.tolist() == theirs.tolist()
    assert ds.vander(ds.tensor([1.0, 2.0])).dtype == ds.float32
    with pytest.raises(ds.ShapeError):
        ds.vander(ds.ones(2, 2))
    with pytest.raises(ds.errors.ArgumentError):
        ds.vander(ds.ones(2), N=-1)


@pytest.mark.parametrize(("dim", "keepdim"), [([0, 1], False), ([1], True), (1, False), ((-1, 0), True)])
def test_frobenius_norm(dim: Any, keepdim: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _grad_pair(lambda x: ds.frobenius_norm(x, dim, keepdim), lambda x: torch.frobenius_norm(x, dim, keepdim), A)
    with pytest.warns(UserWarning, match="deprecated"):
        ds.frobenius_norm(ds.ones(2, 2), (0, 1))


def test_nuclear_norm() -> None:
    batch = np.random.default_rng(1).standard_normal((2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _grad_pair(ds.nuclear_norm, torch.nuclear_norm, A)
        _grad_pair(lambda x: ds.nuclear_norm(x, True), lambda x: torch.nuclear_norm(x, True), A)
        _grad_pair(lambda x: ds.nuclear_norm(x, [0, 2]), lambda x: torch.nuclear_norm(x, [0, 2]), batch)
        _grad_pair(lambda x: ds.nuclear_norm(x, keepdim=True), lambda x: torch.nuclear_norm(x, keepdim=True), batch)


def test_norm_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ds.ShapeError):
            ds.frobenius_norm(ds.ones(2, 2), [0, 1, 2])
        with pytest.raises(TypeError):
            ds.frobenius_norm(ds.tensor([1, 2]), [0])
        with pytest.raises(TypeError):
            ds.frobenius_norm(ds.ones(2))  # dim is required, as in torch
        with pytest.raises(ds.ShapeError):
            ds.nuclear_norm(ds.ones(3))


@pytest.mark.parametrize(("size", "fill"), [(4, -1), (1, -1), (4, 7), (0, -1), (9, 0)])
def test_nonzero_static(size: int, fill: int) -> None:
    ours = ds.nonzero_static(ds.tensor(A) > 0, size=size, fill_value=fill)
    theirs = torch.nonzero_static(torch.tensor(A) > 0, size=size, fill_value=fill)
    assert ours.dtype == ds.int64 and ours.tolist() == theirs.tolist()
    assert ds.tensor(A).nonzero_static(size=2).tolist() == torch.tensor(A).nonzero_static(size=2).tolist()
    assert ds.nonzero_static(ds.tensor(3.0), size=2).shape == (2, 0)


def test_nonzero_static_errors() -> None:
    with pytest.raises(ds.errors.ArgumentError):
        ds.nonzero_static(ds.ones(2), size=-1)
    with pytest.raises(TypeError):
        ds.nonzero_static(ds.ones(2), 2)  # size is keyword-only


@pytest.mark.parametrize("lambd", [0.5, 2.0, 3.0])
def test_hardshrink_method(lambd: float) -> None:
    _grad_pair(lambda x: x.hardshrink(lambd), lambda x: x.hardshrink(lambd), A)
    with pytest.raises(TypeError):
        ds.tensor([1, 2]).hardshrink()


@pytest.mark.parametrize(
    ("shape", "wshape"), [((2, 3), (3,)), ((2, 3), (1,)), ((2, 3), ()), ((2, 3, 4), (3,)), ((4,), (1,)), ((), (1,))]
)
def test_prelu_method(shape: tuple[int, ...], wshape: tuple[int, ...]) -> None:
    x = np.random.default_rng(2).standard_normal(shape)
    w = np.linspace(0.1, 0.3, int(np.prod(wshape))).reshape(wshape)
    _grad_pair(lambda a, b: a.prelu(b), lambda a, b: a.prelu(b), x, w)


def test_prelu_refuses_a_weight_per_wrong_channel_count() -> None:
    with pytest.raises(ds.ShapeError, match="channel"):
        ds.ones(2, 3).prelu(ds.tensor([0.1, 0.2]))
    with pytest.raises(ds.ShapeError):
        ds.ones(2).prelu(ds.tensor([0.1, 0.2]))


@pytest.mark.parametrize("accumulate", [False, True])
def test_put_and_index_put_top_level(accumulate: bool) -> None:
    index = np.array([0, 5, -1, 0])
    src = np.array([1.0, 2.0, 3.0, 4.0])
    _grad_pair(
        lambda x, s: ds.put(x, ds.tensor(index), s, accumulate),
        lambda x, s: torch.put(x, torch.tensor(index), s, accumulate),
        A,
        src,
    )
    # repeated positions only when they add up (a repeated write's winner is unspecified in torch)
    rows, cols = (np.array([0, 1, 0]), np.array([2, 0, 2])) if accumulate else (np.array([0, 1]), np.array([2, 0]))
    _grad_pair(
        lambda x, v: ds.index_put(x, (ds.tensor(rows), ds.tensor(cols)), v, accumulate),
        lambda x, v: torch.index_put(x, (torch.tensor(rows), torch.tensor(cols)), v, accumulate),
        A,
        np.arange(7.0, 7.0 + len(rows)),
    )
    x = ds.tensor(A, dtype=ds.float64)
    x.put_(ds.tensor([1]), ds.tensor([0.0], dtype=ds.float64), accumulate=accumulate)
    t = torch.tensor(A)
    t.put_(torch.tensor([1]), torch.tensor([0.0], dtype=torch.float64), accumulate=accumulate)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
