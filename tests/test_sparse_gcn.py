"""downslope.sparse against torch on what GCN code (pytorch/examples gcn, pygcn, LightGCN) does with sparse COO
tensors beyond sparse @ dense: dense + sparse, torch.sum(S, dim), sparse @ sparse, dense @ sparse, S * dense,
S.pow, in-place writes to values(), the factories' layout= and the refusals torch makes too."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.sparse import SparseLayoutError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings(
    "ignore:Sparse invariant checks", "ignore:torch.sparse.SparseTensor", "ignore:Sparse CSR tensor support"
)

RNG = np.random.default_rng(7)
TOL = {"rtol": 1e-12, "atol": 1e-12}


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _graph(n=5, m=4, nnz=9, seed=0):
    rng = np.random.default_rng(seed)
    i = np.stack([rng.integers(0, n, nnz), rng.integers(0, m, nnz)])  # duplicates likely
    return i, rng.standard_normal(nnz)


class Pair:
    """The same computation in both libraries: a sparse tensor over values that are not a leaf (learned edge
    weights, their gradient a dense (nnz,) tensor) and the leaves to compare gradients of."""

    def __init__(self, lib, i, v, size, coalesced=False, dtype="float64"):
        self.lib = lib
        self.v = lib.tensor(v, dtype=getattr(lib, dtype), requires_grad=dtype.startswith("float"))
        values = self.v * 2 if self.v.requires_grad else self.v
        s = lib.sparse_coo_tensor(lib.tensor(i), values, size)
        self.s = s.coalesce() if coalesced else s

    def dense(self, array, requires_grad=True):
        return self.lib.tensor(array, dtype=self.lib.float64, requires_grad=requires_grad)


def _both(i, v, size, coalesced=False, dtype="float64"):
    return Pair(ds, i, v, size, coalesced, dtype), Pair(torch, i, v, size, coalesced, dtype)


def _same_sparse(ours, theirs):
    assert ours.is_sparse and theirs.is_sparse
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.is_coalesced() == theirs.is_coalesced()
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(_np(ours._indices()), theirs._indices().numpy())
    np.testing.assert_allclose(_np(ours._values()), theirs._values().detach().numpy(), **TOL)


def _same_dense(ours, theirs):
    assert not ours.is_sparse and not theirs.is_sparse
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(_np(ours), theirs.detach().numpy(), **TOL)


def _backward(ours, theirs):
    """Backpropagate the same random weighting of both results (sparse results through to_dense)."""
    o = ours.to_dense() if ours.is_sparse else ours
    t = theirs.to_dense() if theirs.is_sparse else theirs
    w = RNG.standard_normal(tuple(t.shape))
    (o * ds.tensor(w, dtype=o.dtype)).sum().backward()
    (t * torch.tensor(w, dtype=t.dtype)).sum().backward()


def _same_grad(ours, theirs):
    g = theirs.grad
    g = g.to_dense() if g.is_sparse else g  # torch gives S * D's dense operand a sparse gradient
    np.testing.assert_allclose(_np(ours.grad), g.numpy(), **TOL)


# ------------------------------------------------------------------------------------------ dense +/- sparse
ADDS = {
    "d + s": lambda d, s: d + s,
    "d - s": lambda d, s: d - s,
    "d.add(s)": lambda d, s: d.add(s),
    "d.add(s, alpha=2)": lambda d, s: d.add(s, alpha=2),
    "d.sub(s, alpha=0.5)": lambda d, s: d.sub(s, alpha=0.5),
}


@pytest.mark.parametrize("name", list(ADDS))
@pytest.mark.parametrize("coalesced", [False, True])
def test_dense_plus_sparse_matches_torch(name, coalesced):
    i, v = _graph()
    dense = RNG.standard_normal((5, 4))
    ours, theirs = _both(i, v, (5, 4), coalesced)
    d_ours, d_theirs = ours.dense(dense), theirs.dense(dense)
    out, ref = ADDS[name](d_ours, ours.s), ADDS[name](d_theirs, theirs.s)
    _same_dense(out, ref)
    _backward(out, ref)
    _same_grad(d_ours, d_theirs)
    _same_grad(ours.v, theirs.v)


@pytest.mark.parametrize(
    ("dense_dtype", "sparse_dtype"), [("float32", "int64"), ("int64", "float64"), ("float32", "float64")]
)
def test_dense_plus_sparse_promotes_as_torch(dense_dtype, sparse_dtype):
    """gcn/main.py's ``torch.eye(n) + adj`` with an int64 adjacency: a float32 dense result."""
    i, _ = _graph()
    results = []
    for lib in (ds, torch):
        adj = lib.sparse_coo_tensor(lib.tensor(i), lib.ones(9, dtype=getattr(lib, sparse_dtype)), (5, 4))
        results.append(lib.eye(5, 4, dtype=getattr(lib, dense_dtype)) + adj)
    _same_dense(*results)


def test_sparse_plus_dense_refused_as_torch():
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    dense = np.ones((5, 4))
    with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
        theirs.s + theirs.dense(dense)
    for op in (lambda s, d: s + d, lambda s, d: s - d):
        with pytest.raises(SparseLayoutError, match="dense \\+ sparse") as info:
            op(ours.s, ours.dense(dense))
        assert ".to_dense()" in str(info.value)


def test_dense_plus_sparse_does_not_broadcast_as_torch():
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    with pytest.raises(RuntimeError, match="does not currently support broadcasting"):
        theirs.dense(np.ones(4)) + theirs.s
    with pytest.raises(ds.errors.ShapeError, match="does not broadcast"):
        ours.dense(np.ones(4)) + ours.s


# ------------------------------------------------------------------------------------------ torch.sum(S, dim)
SUMS = {
    "sum(s, 1)": lambda lib, s: lib.sum(s, 1),
    "sum(s, dim=0)": lambda lib, s: lib.sum(s, dim=0),
    "sum(s)": lambda lib, s: lib.sum(s),
    "sum(s, (0, 1))": lambda lib, s: lib.sum(s, (0, 1)),
    "sum(s, 1, keepdim=True)": lambda lib, s: lib.sum(s, 1, keepdim=True),
    "s.sum(1, keepdim=True)": lambda lib, s: s.sum(1, keepdim=True),
    "s.sum(dim=(0, 1), keepdim=True)": lambda lib, s: s.sum(dim=(0, 1), keepdim=True),
    "sum(s, 1, dtype=float32)": lambda lib, s: lib.sum(s, 1, dtype=lib.float32),
}


@pytest.mark.parametrize("name", list(SUMS))
def test_top_level_sum_of_sparse_matches_torch(name):
    """pygcn's ``rowsum = adj.sum(1)`` and ``torch.sum(adj, 1)``: torch.sparse.sum's rule (a sparse result while a
    sparse dim is left), from the dense function too."""
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    out = SUMS[name](ds, ours.s)
    with torch.no_grad():  # torch's backward of a sparse sum refuses most forms ("expand is unsupported")
        ref = SUMS[name](torch, theirs.s)
    if ref.is_sparse:
        _same_sparse(out, ref)
    else:
        _same_dense(out, ref)
    if ref.dtype == torch.float64:  # the gradient: torch's, of the same sum of the dense tensor
        dense_ref = SUMS[name](torch, theirs.s.to_dense())
        _backward(out, dense_ref)
        _same_grad(ours.v, theirs.v)


def test_sparse_sum_to_dense_matches_torch():
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    _same_dense(ds.sparse.sum(ours.s, 1).to_dense(), torch.sparse.sum(theirs.s, 1).to_dense())


# ------------------------------------------------------------------------------------------ products
SPARSE_SPARSE = {
    "@": lambda lib, a, b: a @ b,
    "mm": lambda lib, a, b: lib.mm(a, b),
    "matmul": lambda lib, a, b: lib.matmul(a, b),
    "sparse.mm": lambda lib, a, b: lib.sparse.mm(a, b),
    "spmm": lambda lib, a, b: lib.spmm(a, b),
}


@pytest.mark.parametrize("name", list(SPARSE_SPARSE))
@pytest.mark.parametrize("coalesced", [False, True])
def test_sparse_sparse_product_matches_torch(name, coalesced):
    i1, v1 = _graph(5, 4, 9, seed=1)
    i2, v2 = _graph(4, 6, 8, seed=2)
    a_ours, a_theirs = _both(i1, v1, (5, 4), coalesced)
    b_ours, b_theirs = _both(i2, v2, (4, 6), coalesced)
    out = SPARSE_SPARSE[name](ds, a_ours.s, b_ours.s)
    ref = SPARSE_SPARSE[name](torch, a_theirs.s, b_theirs.s)
    _same_sparse(out, ref)
    _backward(out, ref)
    _same_grad(a_ours.v, a_theirs.v)
    _same_grad(b_ours.v, b_theirs.v)


def test_sparse_sparse_product_edge_cases_match_torch():
    """A product that meets no pair of nonzeros (nnz 0) and one of a matrix with itself transposed."""
    results = []
    for lib in (ds, torch):
        a = lib.sparse_coo_tensor(lib.tensor([[0, 1], [0, 0]]), lib.tensor([1.0, 2.0]), (2, 2))
        b = lib.sparse_coo_tensor(lib.tensor([[1], [1]]), lib.tensor([3.0]), (2, 2))
        results.append((a @ b, a @ a.t()))
    for ours, theirs in zip(*results):
        _same_sparse(ours, theirs)


def test_sparse_sparse_product_gradients_by_finite_differences():
    i1, v1 = _graph(4, 3, 6, seed=3)
    i2, v2 = _graph(3, 4, 5, seed=4)

    def f(a, b):
        left = ds.sparse_coo_tensor(ds.tensor(i1), a, (4, 3))
        right = ds.sparse_coo_tensor(ds.tensor(i2), b, (3, 4))
        return (left @ right).to_dense()

    inputs = (ds.tensor(v1, dtype=ds.float64, requires_grad=True), ds.tensor(v2, dtype=ds.float64, requires_grad=True))
    assert ds.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8)


DENSE_SPARSE = {
    "@": lambda lib, d, s: d @ s,
    "mm": lambda lib, d, s: lib.mm(d, s),
    "d.mm": lambda lib, d, s: d.mm(s),
    "matmul": lambda lib, d, s: lib.matmul(d, s),
    "sparse.mm": lambda lib, d, s: lib.sparse.mm(d, s),
    "spmm": lambda lib, d, s: lib.spmm(d, s),
}


@pytest.mark.parametrize("name", list(DENSE_SPARSE))
@pytest.mark.parametrize("coalesced", [False, True])
def test_dense_sparse_product_matches_torch(name, coalesced, jit_path):
    i, v = _graph()
    dense = RNG.standard_normal((3, 5))
    ours, theirs = _both(i, v, (5, 4), coalesced)
    d_ours, d_theirs = ours.dense(dense), theirs.dense(dense)
    out, ref = DENSE_SPARSE[name](ds, d_ours, ours.s), DENSE_SPARSE[name](torch, d_theirs, theirs.s)
    _same_dense(out, ref)
    _backward(out, ref)
    _same_grad(d_ours, d_theirs)
    _same_grad(ours.v, theirs.v)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5)])
def test_dense_sparse_product_vector_and_batched_match_torch(shape, jit_path):
    i, v = _graph()
    dense = RNG.standard_normal(shape)
    ours, theirs = _both(i, v, (5, 4))
    d_ours, d_theirs = ours.dense(dense), theirs.dense(dense)
    out, ref = d_ours @ ours.s, d_theirs @ theirs.s
    _same_dense(out, ref)
    _backward(out, ref)
    _same_grad(d_ours, d_theirs)
    _same_grad(ours.v, theirs.v)


def test_dense_sparse_product_gradients_by_finite_differences(jit_path):
    i, v = _graph(4, 3, 6, seed=5)
    dense = RNG.standard_normal((2, 4))

    def f(values, d):
        return d @ ds.sparse_coo_tensor(ds.tensor(i), values, (4, 3))

    inputs = (
        ds.tensor(v, dtype=ds.float64, requires_grad=True),
        ds.tensor(dense, dtype=ds.float64, requires_grad=True),
    )
    assert ds.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8)


def test_product_dtype_mismatch_refused_as_torch():
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    with pytest.raises(RuntimeError):
        torch.ones(2, 5) @ theirs.s
    with pytest.raises(RuntimeError):
        theirs.s.float() @ theirs.s.t()
    with pytest.raises(ds.errors.DTypeError, match="same dtype"):
        ds.ones(2, 5) @ ours.s
    with pytest.raises(ds.errors.DTypeError, match="same dtype"):
        ours.s.float() @ ours.s.t()
    with pytest.raises(ds.errors.ShapeError, match="rows"):
        ours.s @ ours.s


def test_spmm_of_dense_operands_is_mm_as_torch():
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2))
    x, y = ds.tensor(a, dtype=ds.float64), ds.tensor(b, dtype=ds.float64)
    _same_dense(ds.spmm(x, y), torch.spmm(torch.tensor(a), torch.tensor(b)))
    _same_dense(ds.sparse.mm(x, y), torch.sparse.mm(torch.tensor(a), torch.tensor(b)))
    with pytest.raises(RuntimeError):
        torch.spmm(torch.tensor(a), torch.tensor(b[:, 0]))
    with pytest.raises(ds.errors.ShapeError):
        ds.spmm(x, y[:, 0])


# ------------------------------------------------------------------------------------------ S * dense, pow
MULS = {
    "s * d": lambda s, d: s * d,
    "d * s": lambda s, d: d * s,
    "s.mul(d)": lambda s, d: s.mul(d),
    "d.mul(s)": lambda s, d: d.mul(s),
    "s * row (broadcast)": lambda s, d: s * d[0],
}


@pytest.mark.parametrize("name", list(MULS))
@pytest.mark.parametrize("coalesced", [False, True])
def test_sparse_times_dense_matches_torch(name, coalesced):
    i, v = _graph()
    dense = RNG.standard_normal((5, 4))
    ours, theirs = _both(i, v, (5, 4), coalesced)
    d_ours, d_theirs = ours.dense(dense), theirs.dense(dense)
    out, ref = MULS[name](ours.s, d_ours), MULS[name](theirs.s, d_theirs)
    _same_sparse(out, ref)
    if "broadcast" in name:  # torch's backward refuses it ("Could not run 'aten::view' ... SparseCPU")
        ref = MULS[name](theirs.s.to_dense(), d_theirs)
    _backward(out, ref)
    _same_grad(ours.v, theirs.v)
    _same_grad(d_ours, d_theirs)


def test_sparse_times_dense_promotes_as_torch():
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    _same_sparse(ours.s * ds.ones(5, 4), theirs.s * torch.ones(5, 4))  # float64 values, float32 dense
    with pytest.raises(ds.errors.ShapeError, match="broadcast"):
        ours.s * ds.ones(3, dtype=ds.float64)


@pytest.mark.parametrize("exponent", [2, -0.5, 3.0])
@pytest.mark.parametrize("coalesced", [False, True])
def test_sparse_pow_matches_torch(exponent, coalesced):
    """torch coalesces first, then raises the stored values (absent entries stay absent, a negative value to
    -0.5 is NaN as torch's)."""
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4), coalesced)
    out, ref = ours.s.pow(exponent), theirs.s.pow(exponent)
    assert out.is_coalesced() and ref.is_coalesced()
    np.testing.assert_array_equal(_np(out._indices()), ref._indices().numpy())
    np.testing.assert_allclose(_np(out._values()), ref._values().detach().numpy(), rtol=1e-12, equal_nan=True)
    if exponent != -0.5:
        _same_sparse(ours.s**exponent, theirs.s**exponent)
        _backward(out, ref)
        _same_grad(ours.v, theirs.v)


def test_inplace_write_to_coalesced_values_matches_torch():
    """``adj.coalesce().values().pow_(-1)``: values() is the tensor's own storage in both libraries."""
    i, v = _graph()
    results = []
    for lib in (ds, torch):
        s = lib.sparse_coo_tensor(lib.tensor(i), lib.tensor(np.abs(v) + 1, dtype=lib.float64), (5, 4)).coalesce()
        s.values().pow_(-1)
        results.append(s)
    _same_sparse(*results)
    np.testing.assert_allclose(_np(results[0].to_dense().numpy()), results[1].to_dense().numpy(), **TOL)


def test_diag_of_sparse_refused_as_torch():
    i, v = _graph()
    ours, theirs = _both(i, v, (5, 4))
    with pytest.raises(NotImplementedError):
        torch.diag(theirs.s)
    with pytest.raises(SparseLayoutError, match="^diag"):
        ds.diag(ours.s)


# ------------------------------------------------------------------------------------------ factories, modules
FACTORIES = {
    "zeros(2, 3)": lambda lib: lib.zeros(2, 3, layout=lib.sparse_coo),
    "zeros((2, 3), float64, requires_grad)": lambda lib: lib.zeros(
        (2, 3), layout=lib.sparse_coo, dtype=lib.float64, requires_grad=True
    ),
    "empty(4)": lambda lib: lib.empty(4, layout=lib.sparse_coo),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_factories_with_sparse_layout_match_torch(name):
    ours, theirs = FACTORIES[name](ds), FACTORIES[name](torch)
    _same_sparse(ours, theirs)
    assert ours._nnz() == 0 and ours.requires_grad == theirs.requires_grad
    assert ours.sparse_dim() == theirs.sparse_dim()


def test_factories_layout_strided_accepted_and_others_refused():
    assert not ds.zeros(2, 2, layout=ds.strided).is_sparse
    with pytest.raises(RuntimeError):
        torch.ones(2, 2, layout=torch.sparse_coo)
    with pytest.raises(SparseLayoutError, match="only zeros and empty"):
        ds.ones(2, 2, layout=ds.sparse_coo)


def test_register_buffer_of_sparse_says_to_keep_an_attribute():
    i, v = _graph()
    ours, _ = _both(i, v, (5, 4))
    with pytest.raises(ds.errors.DownslopeError, match="plain attribute"):
        nn.Module().register_buffer("adj", ours.s)


def test_gcn_normalisation_pipeline_matches_torch():
    """gcn/main.py-style preprocessing: self loops by eye + adj, degrees by torch.sum(adj, 1), D^-1/2 A D^-1/2
    applied as diag-vector products, then two propagation steps with gradients to the features."""
    n = 6
    i, _ = _graph(n, n, 10, seed=9)
    feats = RNG.standard_normal((n, 3))
    outs = []
    for lib in (ds, torch):
        adj = lib.sparse_coo_tensor(lib.tensor(i), lib.ones(10, dtype=lib.float64), (n, n))
        a = lib.eye(n, dtype=lib.float64) + adj
        deg = lib.sum(a, 1).pow(-0.5)
        a_hat = (deg.reshape(-1, 1) * a * deg.reshape(1, -1)).to_sparse()
        x = lib.tensor(feats, dtype=lib.float64, requires_grad=True)
        y = lib.sparse.mm(a_hat, lib.sparse.mm(a_hat, x))
        y.pow(2).sum().backward()
        outs.append((y, x.grad))
    for ours, theirs in zip(*outs):
        _same_dense(ours, theirs)


def test_dense_plus_and_dense_product_second_derivatives_by_finite_differences(jit_path):
    i, v = _graph(4, 3, 6, seed=11)
    dense = RNG.standard_normal((4, 3))
    left = RNG.standard_normal((2, 4))

    def f(values, d, a):
        s = ds.sparse_coo_tensor(ds.tensor(i), values, (4, 3))
        return (a @ (d + s * d)).pow(2) + (a @ s) * (a @ (d - s))

    inputs = tuple(ds.tensor(x, dtype=ds.float64, requires_grad=True) for x in (v, dense, left))
    assert ds.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8)
    assert ds.autograd.gradgradcheck(f, inputs, eps=1e-6, atol=1e-7)
