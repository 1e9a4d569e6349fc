"""downslope.sparse (sparse COO tensors) against torch's: construction, inspection, arithmetic, the
sparse-dense product with its gradients (float64, both the compiled and the NumPy path), and the clear
refusal of every op that has no sparse rule."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.sparse import SparseLayoutError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks", "ignore:torch.sparse.SparseTensor")

RNG = np.random.default_rng(0)
# duplicates (0, 2) twice and unsorted: coalesce has work to do
INDICES = [[0, 1, 1, 0, 3], [2, 0, 2, 2, 1]]
VALUES = [3.0, 4.0, 5.0, 1.0, -2.0]


def T(array, requires_grad=False):
    """A float64 downslope tensor (ds.tensor would apply the float32 default to a float64 array)."""
    return ds.tensor(array, dtype=ds.float64, requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _pair(indices=INDICES, values=VALUES, size=None, dtype=np.float64, requires_grad=False, coalesced=False):
    """The same sparse tensor in downslope and torch (float64 values), from host arrays."""
    i = np.asarray(indices, dtype=np.int64)
    v = np.asarray(values, dtype=dtype)
    sized = () if size is None else (size,)
    ours = ds.sparse_coo_tensor(ds.tensor(i), T(v), *sized, requires_grad=requires_grad)
    theirs = torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), *sized, requires_grad=requires_grad)
    return (ours.coalesce(), theirs.coalesce()) if coalesced else (ours, theirs)


def _same_sparse(ours, theirs, rtol=1e-12):
    assert ours.is_sparse and ours.layout is ds.sparse_coo
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.is_coalesced() == theirs.is_coalesced()
    assert ours._nnz() == theirs._nnz()
    np.testing.assert_array_equal(_np(ours._indices()), theirs._indices().numpy())
    np.testing.assert_allclose(_np(ours._values()), theirs._values().detach().numpy(), rtol=rtol, atol=1e-14)


# ------------------------------------------------------------------------------------------ construction
def test_construction_matches_torch():
    ours, theirs = _pair()
    _same_sparse(ours, theirs)
    assert ours.size() == tuple(theirs.size()) == (4, 3)  # inferred: the largest index + 1
    assert ours.dim() == 2 and ours.sparse_dim() == 2 and ours.dense_dim() == 0
    assert ours.dtype == ds.float64 and not ours.requires_grad
    assert str(ours.device) == "cpu" or ours.device.type == "strict"
    np.testing.assert_allclose(_np(ours.to_dense()), theirs.to_dense().numpy())


def test_dtype_inference_matches_torch():
    assert ds.sparse_coo_tensor([[0, 1], [1, 0]], [1, 2]).dtype == ds.int64
    assert torch.sparse_coo_tensor([[0, 1], [1, 0]], [1, 2]).dtype == torch.int64
    assert ds.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2]).dtype == ds.float32
    assert ds.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2], dtype=ds.float64).dtype == ds.float64


def test_explicit_size_and_hybrid_values():
    values = RNG.standard_normal((3, 2))
    ours = ds.sparse_coo_tensor([[0, 2, 4]], T(values), (6, 2))
    theirs = torch.sparse_coo_tensor([[0, 2, 4]], torch.tensor(values), (6, 2))
    _same_sparse(ours, theirs)
    assert ours.sparse_dim() == 1 and ours.dense_dim() == 1
    np.testing.assert_allclose(_np(ours.to_dense()), theirs.to_dense().numpy())


def test_legacy_constructors():
    i = ds.tensor(INDICES)
    ours = ds.sparse.FloatTensor(i, ds.tensor(VALUES), ds.Size([4, 3]))
    theirs = torch.sparse.FloatTensor(torch.tensor(INDICES), torch.tensor(VALUES), torch.Size([4, 3]))
    assert ours.dtype == ds.float32 and theirs.dtype == torch.float32
    _same_sparse(ours, theirs, rtol=1e-6)
    assert ds.sparse.DoubleTensor(i, ds.tensor(VALUES), (4, 3)).dtype == ds.float64


def test_to_sparse_matches_torch():
    dense = RNG.standard_normal((4, 3, 2)) * (RNG.random((4, 3, 2)) < 0.4)
    dense[1] = 0  # a slice with no nonzero
    for sparse_dim in (None, 1, 2):
        ours = T(dense).to_sparse(*(() if sparse_dim is None else (sparse_dim,)))
        theirs = torch.tensor(dense).to_sparse(*(() if sparse_dim is None else (sparse_dim,)))
        _same_sparse(ours, theirs)
        np.testing.assert_allclose(_np(ours.to_dense()), dense)


def test_layouts():
    assert ds.ones(2).layout is ds.strided
    assert repr(ds.strided) == repr(torch.strided) and repr(ds.sparse_coo) == repr(torch.sparse_coo)
    assert ds.ones(2).is_sparse is False
    assert ds.ones(2).to_dense() is not None


def test_size_inconsistent_with_indices_is_refused():
    with pytest.raises(ds.errors.OutOfRangeError, match="for dim 0, size is 2 but found index 3"):
        ds.sparse_coo_tensor(np.array(INDICES), VALUES, (2, 3))
    with pytest.raises(ds.errors.ShapeError, match="nnz = 5"):
        ds.sparse_coo_tensor(np.array(INDICES), [1.0, 2.0])


# ------------------------------------------------------------------------------------------ inspection
def test_indices_values_need_coalesced_as_torch():
    ours, theirs = _pair()
    with pytest.raises(RuntimeError, match="coalesce"):
        theirs.indices()
    with pytest.raises(RuntimeError, match="coalesce"):
        ours.indices()
    with pytest.raises(RuntimeError, match="coalesce"):
        ours.values()
    c, tc = ours.coalesce(), theirs.coalesce()
    _same_sparse(c, tc)
    np.testing.assert_array_equal(_np(c.indices()), tc.indices().numpy())
    np.testing.assert_allclose(_np(c.values()), tc.values().numpy())
    assert c.coalesce() is c


def test_repr_like_torch():
    ours = ds.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0])
    theirs = torch.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0])
    assert repr(ours) == repr(theirs)
    ours64 = ds.sparse_coo_tensor([[0, 1]], [1.0, 2.0], dtype=ds.float64)
    assert "dtype=float64" in repr(ours64) and "layout=torch.sparse_coo" in repr(ours64)


# ------------------------------------------------------------------------------------------ arithmetic
@pytest.mark.parametrize(
    "op",
    [
        lambda s: s.t(),
        lambda s: s.transpose(0, 1),
        lambda s: s * 2.5,
        lambda s: 2.5 * s,
        lambda s: s / 4,
        lambda s: -s,
        lambda s: s + s,
        lambda s: s.coalesce() + s.coalesce(),
        lambda s: s.coalesce() * 2,
        lambda s: s.coalesce().t(),
        lambda s: s.float().double(),
        lambda s: s.detach(),
        lambda s: s.clone(),
        lambda s: s.to(torch.float64 if isinstance(s, torch.Tensor) else ds.float64),
    ],
)
def test_arithmetic_matches_torch(op):
    ours, theirs = _pair()
    _same_sparse(op(ours), op(theirs))


# the forms torch gives besides the operators: functional, in place, and sparse + sparse
FUNCTIONAL = {
    "add(d, s)": lambda lib, d, s: lib.add(d, s),
    "add(d, s, alpha=2)": lambda lib, d, s: lib.add(d, s, alpha=2),
    "sub(d, s)": lambda lib, d, s: lib.sub(d, s),
    "sub(d, s, alpha=0.5)": lambda lib, d, s: lib.sub(d, s, alpha=0.5),
    "mul(s, d)": lambda lib, d, s: lib.mul(s, d),
    "mul(d, s)": lambda lib, d, s: lib.mul(d, s),
    "mul(s, 2.5)": lambda lib, d, s: lib.mul(s, 2.5),
    "add(s, s)": lambda lib, d, s: lib.add(s, s),
    "add(s', s') coalesced": lambda lib, d, s: lib.add(s.coalesce(), (s * 3).coalesce()),
    "s' + s' coalesced": lambda lib, d, s: s.coalesce() + (s * 3).coalesce(),
    "add(s, s, alpha=3)": lambda lib, d, s: lib.add(s, s * 1, alpha=3),
    "sub(s', s') coalesced": lambda lib, d, s: lib.sub(s.coalesce(), (s.t() * 2).coalesce().t().coalesce()),
}


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_forms_match_torch(name):
    """ds.add / ds.sub / ds.mul with a sparse operand: torch's result (dense for add(dense, S), sparse for
    mul and for two sparse operands) and its gradients to the dense operand and to S's values."""
    fn = FUNCTIONAL[name]
    dense = RNG.standard_normal((4, 3))
    results = []
    for lib in (ds, torch):
        v = lib.tensor(VALUES, dtype=lib.float64, requires_grad=True)
        d = lib.tensor(dense, dtype=lib.float64, requires_grad=True)
        s = lib.sparse_coo_tensor(lib.tensor(INDICES), v * 1.0, (4, 3))  # values that are not a leaf
        results.append((fn(lib, d, s), v, d))
    (out, v_ours, d_ours), (ref, v_theirs, d_theirs) = results
    assert out.is_sparse == ref.is_sparse
    if ref.is_sparse:
        _same_sparse(out, ref)
        out, ref = out.to_dense(), ref.to_dense()
    assert not isinstance(out, ds.sparse.SparseCOOTensor)
    np.testing.assert_allclose(_np(out), ref.detach().numpy(), rtol=1e-12)
    weights = RNG.standard_normal((4, 3))
    (out * T(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for ours, theirs in ((v_ours, v_theirs), (d_ours, d_theirs)):
        want = theirs.grad
        if want is None:
            assert ours.grad is None
        else:
            want = want.to_dense() if want.is_sparse else want  # torch: a sparse gradient for mul's dense side
            np.testing.assert_allclose(_np(ours.grad), want.numpy(), rtol=1e-12, atol=1e-14)


INPLACE = {
    "d += s": lambda d, s: d.__iadd__(s),
    "d -= s": lambda d, s: d.__isub__(s),
    "d *= s": lambda d, s: d.__imul__(s),
    "d.add_(s)": lambda d, s: d.add_(s),
    "d.add_(s, alpha=2)": lambda d, s: d.add_(s, alpha=2),
    "d.sub_(s)": lambda d, s: d.sub_(s),
    "d.sub_(s, alpha=0.5)": lambda d, s: d.sub_(s, alpha=0.5),
    "d.mul_(s)": lambda d, s: d.mul_(s),
}


@pytest.mark.parametrize("name", list(INPLACE))
@pytest.mark.parametrize("coalesced", [False, True])
def test_inplace_dense_with_sparse_matches_torch(name, coalesced):
    """``D += S`` and the in-place methods: D itself updated to torch's dense result, its dtype kept."""
    ours, theirs = _pair(coalesced=coalesced)
    dense = RNG.standard_normal((4, 3))
    for dtype in ("float64", "float32"):
        d_ours, d_theirs = ds.tensor(dense, dtype=getattr(ds, dtype)), torch.tensor(dense, dtype=getattr(torch, dtype))
        version = d_ours._version
        assert INPLACE[name](d_ours, ours) is d_ours
        assert INPLACE[name](d_theirs, theirs) is d_theirs
        assert d_ours.dtype == getattr(ds, dtype) and d_ours._version > version
        np.testing.assert_allclose(_np(d_ours), d_theirs.numpy(), rtol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", list(INPLACE))
@pytest.mark.parametrize("dense_grad", [False, True])
def test_inplace_dense_with_sparse_gradients_match_torch(name, dense_grad):
    """Recorded as torch records it: a dense tensor that wants no gradient joins the graph through S's values;
    one that does (not a leaf) takes the op into its history."""
    dense = RNG.standard_normal((4, 3))
    results = []
    for lib in (ds, torch):
        v = lib.tensor(VALUES, dtype=lib.float64, requires_grad=True)
        x = lib.tensor(dense, dtype=lib.float64, requires_grad=dense_grad)
        d = x * 1.0 if dense_grad else x  # a leaf that requires grad refuses in-place ops in both
        s = lib.sparse_coo_tensor(lib.tensor(INDICES), v * 2.0, (4, 3))
        out = INPLACE[name](d, s)
        assert out is d and d.requires_grad
        results.append((d, v, x))
    (out, v_ours, x_ours), (ref, v_theirs, x_theirs) = results
    np.testing.assert_allclose(_np(out), ref.detach().numpy(), rtol=1e-12)
    weights = RNG.standard_normal((4, 3))
    (out * T(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(_np(v_ours.grad), v_theirs.grad.numpy(), rtol=1e-12)
    if dense_grad:
        want = x_theirs.grad.to_dense() if x_theirs.grad.is_sparse else x_theirs.grad  # torch: sparse for mul_
        np.testing.assert_allclose(_np(x_ours.grad), want.numpy(), rtol=1e-12)


def test_sum_of_uncoalesced_sparse_tensors_matches_torch_densely():
    """Two uncoalesced operands of different index arrays: torch's result's pattern depends on its kernel
    (a merge that assumes sorted indices, or a concatenation); ours is the concatenation. Both are
    uncoalesced, of the same dense values and gradients."""
    results = []
    for lib in (ds, torch):
        v = lib.tensor(VALUES, dtype=lib.float64, requires_grad=True)
        s = lib.sparse_coo_tensor(lib.tensor(INDICES), v * 1.0, (4, 3))
        other = lib.sparse_coo_tensor(lib.tensor(INDICES[::-1]), v * 3.0, (3, 4)).t()
        results.append((lib.sub(s, other), v))
    (out, v_ours), (ref, v_theirs) = results
    assert out.is_sparse and not out.is_coalesced() and not ref.is_coalesced()
    np.testing.assert_allclose(_np(out.to_dense()), ref.to_dense().detach().numpy(), rtol=1e-12)
    weights = RNG.standard_normal((4, 3))
    (out.to_dense() * T(weights)).sum().backward()
    (ref.to_dense() * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(_np(v_ours.grad), v_theirs.grad.numpy(), rtol=1e-12)


def test_functional_refusals_as_torch():
    s, t = _pair()
    dense = np.ones((4, 3))
    with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
        torch.add(t, torch.tensor(dense))
    with pytest.raises(SparseLayoutError, match="dense \\+ sparse"):
        ds.add(s, T(dense))
    with pytest.raises(SparseLayoutError, match="sparse COO tensors support"):
        ds.add(s, 1.0)
    with pytest.raises(ds.errors.ShapeError, match="does not broadcast"):
        T(np.ones((4, 3)))[:, :2].add_(s)
    with pytest.raises(ds.errors.StateError):  # a leaf that requires grad: torch refuses too
        T(dense, requires_grad=True).add_(s)


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1), -1])
def test_sparse_sum_matches_torch(dim):
    ours, theirs = _pair(requires_grad=True)
    got = ds.sparse.sum(ours) if dim is None else ds.sparse.sum(ours, dim=dim)
    want = torch.sparse.sum(theirs) if dim is None else torch.sparse.sum(theirs, dim=dim)
    assert got.is_sparse == want.is_sparse
    if want.is_sparse:
        _same_sparse(got, want)
        got, want = got.to_dense(), want.to_dense()
    np.testing.assert_allclose(_np(got), want.detach().numpy())
    weights = RNG.standard_normal(tuple(want.shape))
    (got * T(weights)).sum().backward()
    (want * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(_np(ours.grad.to_dense()), theirs.grad.to_dense().numpy(), rtol=1e-12)


def test_sparse_sum_method_matches_torch():
    ours, theirs = _pair()
    np.testing.assert_allclose(_np(ours.sum()), theirs.sum().numpy())
    _same_sparse(ours.sum(1), theirs.sum(1))


@pytest.mark.parametrize("dim", [0, 1])
def test_sparse_softmax_matches_torch(dim):
    values = RNG.standard_normal(5)
    v_ours = T(values, True)
    v_theirs = torch.tensor(values, requires_grad=True)
    ours = ds.sparse.softmax(ds.sparse_coo_tensor(INDICES, v_ours * 1.0, (4, 3)), dim)
    theirs = torch.sparse.softmax(torch.sparse_coo_tensor(torch.tensor(INDICES), v_theirs * 1.0, (4, 3)), dim)
    _same_sparse(ours, theirs)
    weights = RNG.standard_normal((4, 3))
    (ours.to_dense() * T(weights)).sum().backward()
    (theirs.to_dense() * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(_np(v_ours.grad), v_theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------ products
PRODUCTS = {
    "sparse.mm": (lambda s, d: ds.sparse.mm(s, d), lambda s, d: torch.sparse.mm(s, d)),
    "spmm": (lambda s, d: ds.spmm(s, d), lambda s, d: torch.spmm(s, d)),
    "mm": (lambda s, d: ds.mm(s, d), lambda s, d: torch.mm(s, d)),
    "matmul": (lambda s, d: ds.matmul(s, d), lambda s, d: torch.matmul(s, d)),
    "@": (lambda s, d: s @ d, lambda s, d: s @ d),
    "S.mm": (lambda s, d: s.mm(d), lambda s, d: s.mm(d)),
}


def _graph(n=7, m=5, nnz=18, seed=1):
    rng = np.random.default_rng(seed)
    i = np.stack([rng.integers(0, n, nnz), rng.integers(0, m, nnz)])  # duplicates likely
    return i, rng.standard_normal(nnz), rng.standard_normal((m, 3))


@pytest.mark.parametrize("name", list(PRODUCTS))
@pytest.mark.parametrize("coalesced", [False, True])
def test_product_and_gradients_match_torch(name, coalesced, jit_path):
    ours_fn, theirs_fn = PRODUCTS[name]
    i, v, d = _graph()
    v_ours, d_ours = T(v, True), T(d, True)
    v_theirs, d_theirs = torch.tensor(v, requires_grad=True), torch.tensor(d, requires_grad=True)
    # values that are not a leaf (learned edge weights): their gradient is a dense (nnz,) tensor
    s_ours = ds.sparse_coo_tensor(ds.tensor(i), v_ours * 2.0, (7, 5))
    s_theirs = torch.sparse_coo_tensor(torch.tensor(i), v_theirs * 2.0, (7, 5))
    if coalesced:
        s_ours, s_theirs = s_ours.coalesce(), s_theirs.coalesce()
    out, ref = ours_fn(s_ours, d_ours), theirs_fn(s_theirs, d_theirs)
    assert not out.is_sparse and tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(_np(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = RNG.standard_normal(tuple(ref.shape))
    (out * T(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(_np(d_ours.grad), d_theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(v_ours.grad), v_theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spelling", ["matmul", "@", "mv"])
def test_matrix_vector_product_matches_torch(spelling, jit_path):
    i, v, d = _graph()
    s_ours, s_theirs = _pair(i, v, (7, 5))
    x_ours, x_theirs = T(d[:, 0], True), torch.tensor(d[:, 0], requires_grad=True)
    fn = {"matmul": lambda s, x: s.matmul(x), "@": lambda s, x: s @ x, "mv": lambda s, x: s.mv(x)}[spelling]
    out, ref = fn(s_ours, x_ours), fn(s_theirs, x_theirs)
    np.testing.assert_allclose(_np(out), ref.detach().numpy(), rtol=1e-10)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(_np(x_ours.grad), x_theirs.grad.numpy(), rtol=1e-10)


def test_leaf_sparse_grad_is_sparse_as_torch(jit_path):
    i, v, d = _graph()
    s_ours, s_theirs = _pair(i, v, (7, 5), requires_grad=True)
    assert s_ours.is_leaf and s_ours.requires_grad
    ds.sparse.mm(s_ours, T(d)).sum().backward()
    torch.sparse.mm(s_theirs, torch.tensor(d)).sum().backward()
    assert s_ours.grad.is_sparse
    _same_sparse(s_ours.grad, s_theirs.grad, rtol=1e-10)


def test_product_gradients_by_finite_differences(jit_path):
    i, v, d = _graph(n=4, m=3, nnz=6)

    def f(values, dense):
        return ds.sparse.mm(ds.sparse_coo_tensor(ds.tensor(i), values, (4, 3)), dense)

    assert ds.autograd.gradcheck(f, (T(v, True), T(d, True)), eps=1e-6, atol=1e-8)


def test_double_backward_matches_dense_product():
    i, v, d = _graph()
    dense = np.zeros((7, 5))
    np.add.at(dense, tuple(i), v)
    results = []
    for make in (lambda vv: ds.sparse_coo_tensor(ds.tensor(i), vv, (7, 5)), None):
        vv, dd = T(v, True), T(d, True)
        if make is None:  # the same function through a dense adjacency matrix
            out = (ds.sparse_coo_tensor(ds.tensor(i), vv, (7, 5)).to_dense() @ dd).pow(2).sum()
        else:
            out = ds.sparse.mm(make(vv), dd).pow(2).sum()
        (gd,) = ds.autograd.grad(out, (dd,), create_graph=True)
        gd.sum().backward()
        results.append((_np(vv.grad), _np(dd.grad)))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_addmm_matches_torch():
    i, v, d = _graph()
    s_ours, s_theirs = _pair(i, v, (7, 5))
    m = RNG.standard_normal((7, 3))
    out = ds.sparse.addmm(T(m), s_ours, T(d), beta=0.5, alpha=2.0)
    ref = torch.sparse.addmm(torch.tensor(m), s_theirs, torch.tensor(d), beta=0.5, alpha=2.0)
    np.testing.assert_allclose(_np(out), ref.numpy(), rtol=1e-10)


def test_product_errors():
    s, _ = _pair()
    with pytest.raises(ds.errors.DTypeError, match="float64"):
        ds.sparse.mm(s, ds.ones(3, 2))  # float32 dense, float64 sparse: torch refuses too
    with pytest.raises(ds.errors.ShapeError, match="columns"):
        ds.sparse.mm(s, ds.ones(4, 2, dtype=ds.float64))
    with pytest.raises(ds.errors.ShapeError, match="2-D"):
        ds.mm(s, ds.ones(3, dtype=ds.float64))


def test_gcn_layer_trains():
    """pygcn's layer: adj @ (x @ W) with a constant normalised adjacency kept as a plain attribute."""

    class GraphConvolution(nn.Module):
        def __init__(self, adj):
            super().__init__()
            self.adj = adj
            self.linear = nn.Linear(4, 2)

        def forward(self, x):
            return ds.spmm(self.adj, self.linear(x))

    i, v, _ = _graph(n=6, m=6, nnz=12)
    adj = ds.sparse.FloatTensor(ds.tensor(i), ds.tensor(np.abs(v)), ds.Size([6, 6])).coalesce()
    model = GraphConvolution(adj)
    assert "adj" not in model.state_dict()
    opt = ds.optim.SGD(model.parameters(), lr=0.1)
    x = ds.randn(6, 4)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------------------------ refusals
REFUSED = {
    "relu": lambda s: ds.nn.functional.relu(s),
    "+ dense": lambda s: s + ds.ones(4, 3, dtype=ds.float64),
    "- dense": lambda s: s - ds.ones(4, 3, dtype=ds.float64),
    "mv of a sparse vector": lambda s: ds.mv(s.t(), ds.ones(4, dtype=ds.float64).to_sparse()),
    "cat": lambda s: ds.cat([s, s]),
    "getitem": lambda s: s[0],
    "asarray": lambda s: np.asarray(s),
    "numpy": lambda s: s.numpy(),
    "exp method": lambda s: s.exp(),
    "exp function": lambda s: ds.exp(s),
    "view": lambda s: s.view(-1),
    "mean": lambda s: s.mean(),
    "==": lambda s: s == s,
    "item": lambda s: s.item(),
    "Parameter": lambda s: nn.Parameter(s),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_ops_without_a_sparse_rule_refuse_clearly(name):
    s, _ = _pair()
    with pytest.raises(ds.errors.DownslopeError) as info:
        REFUSED[name](s)
    text = str(info.value)
    assert "sparse COO tensors support" in text and ".to_dense()" in text


def test_refusal_names_the_op():
    s, _ = _pair()
    with pytest.raises(SparseLayoutError, match="^relu"):
        ds.nn.functional.relu(s)
    with pytest.raises(SparseLayoutError, match="^exp"):
        ds.exp(s)
    with pytest.raises(AttributeError, match="^exp"):
        s.exp()
    assert not hasattr(s, "exp") and not isinstance(s, ds.Tensor)


def test_register_buffer_refuses():
    s, _ = _pair()
    with pytest.raises(ds.errors.DownslopeError, match="buffer 'adj'"):
        nn.Module().register_buffer("adj", s)


def test_softmax_and_product_second_derivatives_by_finite_differences():
    i, v, d = _graph(n=4, m=3, nnz=6, seed=3)

    def f(values, dense):
        s = ds.sparse.softmax(ds.sparse_coo_tensor(ds.tensor(i), values, (4, 3)), 1)
        return ds.sparse.mm(s, dense)

    inputs = (T(v, True), T(d, True))
    assert ds.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8)
    assert ds.autograd.gradgradcheck(f, inputs, eps=1e-6, atol=1e-7)


def test_lightgcn_graph_dropout_and_propagation_match_torch():
    """LightGCN/NGCF's edge dropout (indices()/values() masked, a new FloatTensor, .to(device)) then
    propagation through torch.sparse.mm, with the same mask on both sides."""
    i, v, _ = _graph(n=6, m=6, nnz=14, seed=5)
    emb = RNG.standard_normal((6, 4))
    keep = RNG.random(14) < 0.7
    grads = []
    for lib, make in ((ds, T), (torch, lambda a, rg=False: torch.tensor(a, requires_grad=rg))):
        graph = lib.sparse_coo_tensor(lib.tensor(i), make(np.abs(v)), (6, 6)).coalesce()
        mask = lib.tensor(keep[: graph._nnz()])
        index, values = graph.indices().t(), graph.values()
        dropped = lib.sparse.DoubleTensor(index[mask].t(), values[mask] / 0.7, graph.size()).to(graph.device)
        weights = make(emb, True)
        out = lib.sparse.mm(dropped, lib.sparse.mm(dropped, weights))
        out.pow(2).sum().backward()
        grads.append((out.detach().numpy(), weights.grad.numpy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10)
