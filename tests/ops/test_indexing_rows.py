"""The row form of scatter_add / scatter_reduce / index_add along dim 0 (a graph network's
aggregation: ``dst[:, None].expand_as(messages)``), compiled or through NumPy's flat index: the
same values, bit for bit, as the general path (the same problem transposed, along dim 1), the
same as torch, and the same gradients (first and second order)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")

REDUCES = ["sum", "prod", "mean", "amax", "amin"]


def _t(a: np.ndarray) -> ds.Tensor:
    """A tensor of the array's own float dtype (ds.tensor would make float64 data float32)."""
    return ds.tensor(a, dtype=getattr(ds, str(a.dtype)))


@pytest.fixture(params=["jit", "numpy"])
def path(request: Any) -> Iterator[str]:
    if request.param == "numpy":
        with jit_gate.disabled():
            yield "numpy"
    else:
        yield "jit"


def _problem(e: int, n: int, f: int, dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, e)
    rows[: n // 2] = np.arange(n // 2)  # (some rows stay unwritten: rows n//2.. may be missing)
    rows = np.where(rows == n - 1, 0, rows)  # the last row is never written
    src = np.round(rng.uniform(0.5, 1.5, (e, f)) * 4) / 4  # ties for amax/amin
    src[rng.random((e, f)) < 0.02] = 0.0  # zeros for prod
    base = rng.uniform(-1, 1, (n, f))
    return base.astype(dtype), rows, src.astype(dtype)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("size", [(300, 50, 40), (12, 5, 3)])  # 12000 elements (compiled) and a small one
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scatter_reduce_rows_equal_the_general_path_and_torch(
    reduce: str, include_self: bool, size: tuple[int, int, int], dtype: str, path: str
) -> None:
    e, n, f = size
    base, rows, src = _problem(e, n, f, dtype, 0)
    expanded = ds.tensor(rows).view(-1, 1).expand(-1, f)
    got = _t(base).scatter_reduce(0, expanded, _t(src), reduce, include_self=include_self)
    # the general path: the same problem along dim 1 of the transpose (each element's values in the same order)
    general = _t(base.T.copy()).scatter_reduce(
        1,
        ds.tensor(np.ascontiguousarray(np.broadcast_to(rows, (f, e)))),
        _t(src.T.copy()),
        reduce,
        include_self=include_self,
    )
    np.testing.assert_array_equal(got.numpy(), general.numpy().T)
    ref = torch.tensor(base).scatter_reduce(
        0, torch.tensor(rows).view(-1, 1).expand(-1, f), torch.tensor(src), reduce, include_self=include_self
    )
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("size", [(300, 50, 40), (12, 5, 3)])
def test_scatter_add_and_index_add_rows_equal_the_general_path(size: tuple[int, int, int], path: str) -> None:
    e, n, f = size
    base, rows, src = _problem(e, n, f, "float32", 1)
    general = _t(base.T.copy()).scatter_add(1, ds.tensor(np.broadcast_to(rows, (f, e))), _t(src.T.copy()))
    for index in (ds.tensor(rows).view(-1, 1).expand(-1, f), ds.tensor(np.repeat(rows[:, None], f, 1))):
        got = _t(base).scatter_add(0, index, _t(src))  # expanded view and materialised copy
        np.testing.assert_array_equal(got.numpy(), general.numpy().T)
        inplace = _t(base)
        inplace.scatter_add_(0, index, _t(src))
        np.testing.assert_array_equal(inplace.numpy(), general.numpy().T)
    for index in (ds.tensor(rows), ds.tensor(rows.astype(np.int32))):
        got = _t(base).index_add(0, index, _t(src))
        np.testing.assert_array_equal(got.numpy(), general.numpy().T)
    doubled = _t(base).index_add(0, ds.tensor(rows), _t(src), alpha=2.0)
    ref = torch.tensor(base).index_add(0, torch.tensor(rows), torch.tensor(src), alpha=2.0)
    np.testing.assert_allclose(doubled.numpy(), ref.numpy(), rtol=1e-6)


def test_index_add_rows_of_a_3d_tensor_and_a_strided_source(path: str) -> None:
    base, rows, _ = _problem(400, 30, 1, "float64", 2)
    rng = np.random.default_rng(2)
    src = rng.standard_normal((6, 5, 400)).transpose(2, 0, 1)  # a strided (transposed) source
    x = rng.standard_normal((30, 6, 5))
    got = ds.tensor(x, dtype=ds.float64).index_add(0, ds.tensor(rows), ds.tensor(src, dtype=ds.float64))
    ref = torch.tensor(x).index_add(0, torch.tensor(rows), torch.tensor(src))
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    wide = ds.tensor(src, dtype=ds.float64)
    index = ds.tensor(rows).view(-1, 1, 1).expand(-1, 6, 5)
    via_scatter = ds.tensor(x, dtype=ds.float64).scatter_add(0, index, wide)
    np.testing.assert_array_equal(via_scatter.numpy(), got.numpy())


def test_scatter_reduce_rows_keep_nan_as_torch(path: str) -> None:
    base, rows, src = _problem(300, 50, 40, "float32", 3)
    src[5, 7] = np.nan
    base[rows[9], 2] = np.nan
    for reduce in ("amax", "amin", "sum", "prod"):
        for include_self in (True, False):
            got = _t(base).scatter_reduce(
                0, ds.tensor(rows).view(-1, 1).expand(-1, 40), _t(src), reduce, include_self=include_self
            )
            ref = torch.tensor(base).scatter_reduce(
                0, torch.tensor(rows).view(-1, 1).expand(-1, 40), torch.tensor(src), reduce, include_self=include_self
            )
            np.testing.assert_array_equal(np.isnan(got.numpy()), np.isnan(ref.numpy()))


def test_a_source_larger_than_the_index_and_an_index_not_of_whole_rows(path: str) -> None:
    base, rows, src = _problem(300, 50, 40, "float64", 4)
    big = np.concatenate([src, np.ones((3, 40))])  # torch reads the part the index covers
    index = np.repeat(rows[:, None], 40, 1)
    index[7, 3] = (index[7, 3] + 1) % 50  # one element elsewhere: not the row form
    for idx in (np.repeat(rows[:, None], 40, 1), index):
        got = ds.tensor(base, dtype=ds.float64).scatter_reduce(
            0, ds.tensor(idx), ds.tensor(big, dtype=ds.float64), "sum"
        )
        ref = torch.tensor(base).scatter_reduce(0, torch.tensor(idx), torch.tensor(big), "sum")
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-12)


def _grads(
    lib: Any, base: np.ndarray, rows: np.ndarray, src: np.ndarray, reduce: str, include_self: bool, w: np.ndarray
):
    b = lib.tensor(base, dtype=lib.float64, requires_grad=True)
    s = lib.tensor(src, dtype=lib.float64, requires_grad=True)
    index = lib.tensor(rows).view(-1, 1).expand(-1, src.shape[1])
    out = b.scatter_reduce(0, index, s, reduce, include_self=include_self)
    (out * lib.tensor(w, dtype=lib.float64)).sum().backward()
    return out.detach().numpy(), b.grad.numpy(), s.grad.numpy()


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_rows_gradients_match_torch(reduce: str, include_self: bool, path: str) -> None:
    base, rows, src = _problem(300, 50, 40, "float64", 5)
    if reduce in ("amax", "amin"):
        base = np.round(base * 4) / 4  # ties with the tensor's own values too
    w = np.random.default_rng(5).standard_normal(base.shape)
    for a, b in zip(
        _grads(ds, base, rows, src, reduce, include_self, w), _grads(torch, base, rows, src, reduce, include_self, w)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _gat_attention_grad(lib: Any, scores: np.ndarray, dst: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of a loss of a GAT segment softmax's gradient (a gradient penalty), second order."""
    e = lib.tensor(scores, dtype=lib.float64, requires_grad=True)
    index = lib.tensor(dst).view(-1, 1).expand_as(e)
    top = lib.zeros(n, e.shape[1], dtype=lib.float64).scatter_reduce(0, index, e, "amax", include_self=False)
    ex = (e - top.gather(0, index)).exp()
    total = lib.zeros(n, e.shape[1], dtype=lib.float64).scatter_add(0, index, ex)
    alpha = ex / total.gather(0, index)
    agg = lib.zeros(n, e.shape[1], dtype=lib.float64).index_add(0, lib.tensor(dst), alpha * e)
    mean = lib.zeros(n, e.shape[1], dtype=lib.float64).scatter_reduce(0, index, e * e, "mean", include_self=False)
    (g,) = lib.autograd.grad((agg * agg).sum() + mean.sum(), e, create_graph=True)
    (g * g).sum().backward()
    return g.detach().numpy(), e.grad.numpy()


def test_gat_segment_softmax_gradient_penalty_matches_torch(path: str) -> None:
    rng = np.random.default_rng(6)
    dst = rng.integers(0, 40, 2500)
    scores = rng.standard_normal((2500, 4))
    for a, b in zip(_gat_attention_grad(ds, scores, dst, 40), _gat_attention_grad(torch, scores, dst, 40)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_rows_run_compiled_without_a_flat_index_of_every_element(reduce: str, monkeypatch: Any) -> None:
    """The speed of the row form: with numba, neither the forward nor the backward builds the E x F
    flat index (25 MB and most of the time at 50k edges x 64 features) or reads the expanded index."""
    pytest.importorskip("numba")
    if jit_gate.switched_off():
        pytest.skip("the compiled path is switched off (DOWNSLOPE_JIT=0)")
    from downslope.ops import indexing

    def refuse(*args: Any) -> None:
        raise AssertionError("a flat index of every element was built")

    monkeypatch.setattr(indexing, "_flat_index", refuse)
    base, rows, src = _problem(300, 50, 40, "float32", 7)
    s = _t(src).requires_grad_()
    index = ds.tensor(rows).view(-1, 1).expand(-1, 40)
    out = _t(base).scatter_reduce(0, index, s, reduce, include_self=False)
    out = out.index_add(0, ds.tensor(rows), s).scatter_add(0, index, s)
    out.sum().backward()
    assert jit_gate.kernels("downslope.ops._jit_scatter") is not None
