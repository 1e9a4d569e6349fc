"""scatter_add, scatter_reduce and index_add accumulate through one flat index (NumPy's fast
``ufunc.at`` path) on host arrays: the same order of accumulation, so torch's values exactly, and
torch's gradients with repeated indices (amax/amin ties shared evenly, prod with zeros)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.ops import indexing
from downslope.ops.indexing import _flat_index

torch = pytest.importorskip("torch")

_DS = {"float32": ds.float32, "float64": ds.float64}


@pytest.fixture(autouse=True, params=["flat index", "index tuple"])
def _path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test on both paths: the flat index (large inputs) and the tuple of index arrays (small)."""
    monkeypatch.setattr(indexing, "_FLAT_AT_MIN", 0 if request.param == "flat index" else 1 << 62)


def test_flat_index_is_the_c_order_position_of_an_open_grid() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        shape = tuple(int(n) for n in rng.integers(1, 6, int(rng.integers(1, 5))))
        d = int(rng.integers(0, len(shape)))
        idx_shape = tuple(int(rng.integers(1, n + 1)) for n in shape)
        grid = list(np.indices(idx_shape, sparse=True))
        grid[d] = rng.integers(0, shape[d], idx_shape).astype(rng.choice([np.int32, np.int64]))
        full = np.broadcast_arrays(*grid)
        np.testing.assert_array_equal(_flat_index(tuple(grid), shape), np.ravel_multi_index(full, shape).reshape(-1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scatter_reduce_with_repeated_indices_matches_torch(dtype: str) -> None:
    rng = np.random.default_rng({"float32": 0, "float64": 1}[dtype])
    for _ in range(150):
        ndim = int(rng.integers(1, 4))
        xs = tuple(int(n) for n in rng.integers(1, 6, ndim))
        d = int(rng.integers(0, ndim))
        ishape = tuple(int(rng.integers(1, n + 1)) if i != d else int(rng.integers(1, 9)) for i, n in enumerate(xs))
        idx = rng.integers(0, xs[d], ishape)
        # small integers: many ties for amax/amin, zeros for prod
        src = (rng.integers(-3, 4, ishape) + (rng.standard_normal(ishape) if rng.random() < 0.5 else 0)).astype(dtype)
        x = rng.standard_normal(xs).astype(dtype)
        if rng.random() < 0.3:
            x = np.asfortranarray(x)
        reduce = str(rng.choice(["sum", "prod", "mean", "amax", "amin"]))
        include_self = bool(rng.random() < 0.5)
        w = rng.standard_normal(xs).astype(dtype)
        X, S = ds.tensor(x, dtype=_DS[dtype], requires_grad=True), ds.tensor(src, dtype=_DS[dtype], requires_grad=True)
        tX, tS = torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)
        y = X.scatter_reduce(d, ds.tensor(idx), S, reduce, include_self=include_self)
        ty = tX.scatter_reduce(d, torch.tensor(idx), tS, reduce, include_self=include_self)
        (y * ds.tensor(w, dtype=_DS[dtype])).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        torch.testing.assert_close(torch.from_numpy(X.grad.numpy()), tX.grad)
        torch.testing.assert_close(torch.from_numpy(S.grad.numpy()), tS.grad)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_index_add_and_scatter_add_sum_in_torchs_order(dtype: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 7, 5)).astype(dtype)
    for d in range(3):
        idx = rng.integers(0, x.shape[d], 400)  # many repeats: float sums depend on the order
        shape = list(x.shape)
        shape[d] = idx.size
        src = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
        X, S = ds.tensor(x, dtype=_DS[dtype], requires_grad=True), ds.tensor(src, dtype=_DS[dtype], requires_grad=True)
        tX, tS = torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)
        for alpha in (1, 0.5):
            y = X.index_add(d, ds.tensor(idx), S, alpha=alpha)
            ty = tX.index_add(d, torch.tensor(idx), tS, alpha=alpha)
            np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
            (y * y).sum().backward()
            (ty * ty).sum().backward()
            np.testing.assert_array_equal(S.grad.numpy(), tS.grad.numpy())
            np.testing.assert_array_equal(X.grad.numpy(), tX.grad.numpy())
        full = np.ascontiguousarray(np.broadcast_to(np.expand_dims(idx, [i for i in range(3) if i != d]), shape))
        y = ds.tensor(x, dtype=_DS[dtype]).scatter_add(d, ds.tensor(full), ds.tensor(src, dtype=_DS[dtype]))
        ty = torch.tensor(x).scatter_add(d, torch.tensor(full), torch.tensor(src))
        np.testing.assert_array_equal(y.numpy(), ty.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_of_indexing_with_repeated_indices_match_torch(dtype: str) -> None:
    # the backward of index_select, x[idx], x[:, idx], gather and topk adds the repeats in torch's order
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((40, 30, 3)) * 10.0 ** rng.integers(-3, 4, (40, 30, 3))).astype(dtype)
    idx = rng.integers(0, 30, 500)
    gidx = rng.integers(0, 40, (90, 30, 3))
    cases = [
        lambda m, t: m.index_select(t, 1, m.tensor(idx)),
        lambda m, t: t[m.tensor(idx % 40)],
        lambda m, t: t[m.tensor(idx - 30)],  # negative indices count from the end
        lambda m, t: t[:, m.tensor(idx)],
        lambda m, t: m.gather(t, 0, m.tensor(gidx)),
        lambda m, t: m.topk(t, 10, 1).values,
    ]
    for case in cases:
        x = ds.tensor(a, dtype=_DS[dtype], requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        y, ty = case(ds, x), case(torch, t)
        w = rng.standard_normal(tuple(ty.shape)).astype(dtype)
        (y * ds.tensor(w, dtype=_DS[dtype])).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
