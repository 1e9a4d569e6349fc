"""Linear algebra on empty matrices (0 x 0, m x 0, 0 x n, or an empty batch) as PyTorch: values, shapes,
gradients, and the same refusals (torch's smallest-value norms raise on an empty reduction). Also
``linalg.matrix_norm(..., dtype=)`` with torch's dtype rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _grad_of(lib: Any, fn: Callable[[Any, Any], Any], shape: tuple[int, ...]) -> tuple[Any, Any]:
    a = lib.zeros(*shape, dtype=lib.float64, requires_grad=True)
    y = fn(lib, a)
    y.sum().backward()
    return y.detach().numpy(), a.grad.numpy()


GRAD_CASES: dict[str, Callable[[Any, Any], Any]] = {
    "slogdet": lambda L, a: L.linalg.slogdet(a)[1],
    "logdet": lambda L, a: L.logdet(a),
    "det": lambda L, a: L.linalg.det(a),
    "matrix_exp": lambda L, a: L.linalg.matrix_exp(a),
    "inv": lambda L, a: L.linalg.inv(a),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 2, 2), (0, 0, 0)])
def test_backward_through_empty_matrices_matches_torch(name: str, shape: tuple[int, ...]) -> None:
    fn = GRAD_CASES[name]
    (y_ours, g_ours), (y_theirs, g_theirs) = _grad_of(ds, fn, shape), _grad_of(torch, fn, shape)
    assert y_ours.shape == y_theirs.shape
    np.testing.assert_array_equal(y_ours, y_theirs)
    assert g_ours.shape == g_theirs.shape == shape
    np.testing.assert_array_equal(g_ours, g_theirs)


@pytest.mark.parametrize("shape", [(0, 0), (2, 0), (0, 2), (0, 3, 3), (2, 0, 3), (2, 3, 0), (0, 2, 0)])
def test_lu_of_empty_matrices_matches_torch(shape: tuple[int, ...]) -> None:
    a = ds.zeros(*shape, dtype=ds.float64, requires_grad=True)
    ta = torch.zeros(*shape, dtype=torch.float64, requires_grad=True)
    ours, theirs = ds.linalg.lu(a), torch.linalg.lu(ta)
    for got, want in zip(ours, theirs, strict=True):
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    (ours.L.sum() + ours.U.sum()).backward()
    (theirs.L.sum() + theirs.U.sum()).backward()
    assert a.grad is not None and tuple(a.grad.shape) == shape


ORDS: list[Any] = ["fro", "nuc", 1, -1, 2, -2, float("inf"), float("-inf")]


@pytest.mark.parametrize("ord", ORDS, ids=str)
@pytest.mark.parametrize("shape", [(0, 0), (2, 0), (0, 2), (3, 1, 0), (2, 2, 1, 0), (0, 3, 3)])
def test_matrix_norm_of_empty_matrices_matches_torch_or_refuses_with_it(ord: Any, shape: tuple[int, ...]) -> None:
    try:
        want = torch.linalg.matrix_norm(torch.zeros(*shape, dtype=torch.float64), ord=ord)
    except (RuntimeError, IndexError):  # the smallest-value norms of an empty reduction
        with pytest.raises(IndexError, match="empty"):
            ds.linalg.matrix_norm(ds.zeros(*shape, dtype=ds.float64), ord=ord)
        return
    a = ds.zeros(*shape, dtype=ds.float64, requires_grad=True)
    got = ds.linalg.matrix_norm(a, ord=ord)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.detach().numpy(), want.numpy())
    got.sum().backward()
    assert a.grad is not None and tuple(a.grad.shape) == shape


def test_linalg_norm_with_a_matrix_ord_over_an_empty_dim_matches_torch() -> None:
    got = ds.linalg.norm(ds.zeros(3, 1, 0), ord=1, dim=(-2, -1))
    want = torch.linalg.norm(torch.zeros(3, 1, 0), ord=1, dim=(-2, -1))
    assert tuple(got.shape) == tuple(want.shape) and got.dtype == ds.float32
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_matrix_norm_keeps_its_max_gradient_on_nonempty_matrices() -> None:
    # the empty-safe path must not change the ties' shared gradient of the largest column sum
    x = np.array([[1.0, -2.0, 3.0], [2.0, 1.0, 0.0]])
    for ord in (1, float("inf"), 2):
        a, ta = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
        ds.linalg.matrix_norm(a, ord=ord).backward()
        torch.linalg.matrix_norm(ta, ord=ord).backward()
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ord", ORDS, ids=str)
def test_matrix_norm_dtype_casts_first_as_torch(ord: Any) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    a, ta = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got = ds.linalg.matrix_norm(a, ord=ord, dtype=ds.float64)
    want = torch.linalg.matrix_norm(ta, ord=ord, dtype=torch.float64)
    assert got.dtype == ds.float64
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    assert a.grad.dtype == ds.float32
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_matrix_norm_dtype_of_a_complex_input_is_complex_and_the_result_real() -> None:
    z = np.array([[1 + 2j, 3j], [0.5, -1]], dtype=np.complex64)
    got = ds.linalg.matrix_norm(ds.tensor(z), dtype=ds.complex128)
    want = torch.linalg.matrix_norm(torch.tensor(z), dtype=torch.complex128)
    assert got.dtype == ds.float64
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("fn", ["matrix_norm", "norm", "vector_norm"])
@pytest.mark.parametrize(
    ("x_dtype", "dtype", "match"),
    [
        ("float64", "float32", "narrowing"),
        ("float32", "float16", "narrowing"),
        ("float32", "int64", "floating point or complex"),
        ("float32", "complex64", "real for real inputs"),
        ("complex64", "float64", "complex for complex inputs"),
    ],
)
def test_norm_dtype_refusals_match_torch(fn: str, x_dtype: str, dtype: str, match: str) -> None:
    with pytest.raises(RuntimeError):
        getattr(torch.linalg, fn)(torch.ones(3, 3, dtype=getattr(torch, x_dtype)), dtype=getattr(torch, dtype))
    with pytest.raises(ds.errors.DTypeError, match=match):
        getattr(ds.linalg, fn)(ds.ones(3, 3, dtype=getattr(ds, x_dtype)), dtype=getattr(ds, dtype))
