"""torch.sparse.log_softmax: values and gradients against torch 2.13."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _pair(shape: tuple[int, ...], nnz: int, seed: int, dense: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    sparse_shape = shape[: len(shape) - dense]
    idx = np.stack([rng.integers(0, n, nnz) for n in sparse_shape])  # duplicates too
    vals = rng.normal(size=(nnz, *shape[len(shape) - dense :]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(vals), shape, requires_grad=True)
    d = ds.sparse_coo_tensor(ds.tensor(idx), ds.tensor(vals, dtype=ds.float64), shape).requires_grad_()
    return t, d


@pytest.mark.parametrize(
    ("shape", "dim", "dense"), [((4, 5), 1, 0), ((4, 5), 0, 0), ((3, 4, 5), 1, 0), ((4, 5, 2), 1, 1)]
)
def test_sparse_log_softmax_matches_torch(shape: tuple[int, ...], dim: int, dense: int) -> None:
    t, d = _pair(shape, 12, seed=len(shape) + dim, dense=dense)
    want = torch.sparse.log_softmax(t, dim)
    got = ds.sparse.log_softmax(d, dim)
    np.testing.assert_allclose(got.to_dense().detach().numpy(), want.to_dense().detach().numpy(), rtol=1e-12)
    # gradient through a weighted sum of the stored values
    w = np.random.default_rng(1).normal(size=tuple(want.coalesce().values().shape))
    (want.coalesce().values() * torch.tensor(w)).sum().backward()
    (got.values() * ds.tensor(w, dtype=ds.float64)).sum().backward()
    np.testing.assert_allclose(d.grad.to_dense().numpy(), t.grad.to_dense().numpy(), rtol=1e-10, atol=1e-12)


def test_sparse_log_softmax_is_the_log_of_softmax_and_takes_a_dtype() -> None:
    s = ds.sparse_coo_tensor([[0, 1, 1], [1, 0, 2]], [3.0, 4.0, -1.0], (2, 3))
    np.testing.assert_allclose(
        ds.sparse.log_softmax(s, 1).values().detach().numpy(),
        np.log(ds.sparse.softmax(s, 1).values().detach().numpy()),
        atol=1e-6,
    )
    assert ds.sparse.log_softmax(s, 1, dtype=ds.float64).dtype == ds.float64


def test_sparse_log_softmax_of_a_dense_tensor_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="sparse.log_softmax"):
        ds.sparse.log_softmax(ds.ones(2, 2), 1)
