"""The everyday torch namespace and Tensor methods (creation, joining, pointwise, reductions, comparisons,
conversions), each compared with PyTorch; the differentiable ones also by their gradients (check_op) and
by finite differences in float64 (ds.gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _u(seed, shape, dtype=np.float64, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


# ---------------------------------------------------------------------- differentiable ops, against torch
GRAD_CASES = {
    "mm": (lambda a, b: a.mm(b), lambda a, b: a.mm(b), [(3, 4), (4, 2)]),
    "ds.mm": (lambda a, b: ds.mm(a, b), lambda a, b: torch.mm(a, b), [(3, 4), (4, 2)]),
    "bmm": (lambda a, b: a.bmm(b), lambda a, b: a.bmm(b), [(2, 3, 4), (2, 4, 5)]),
    "mv": (lambda a, b: a.mv(b), lambda a, b: a.mv(b), [(3, 4), (4,)]),
    "dot": (lambda a, b: ds.dot(a, b), lambda a, b: torch.dot(a, b), [(4,), (4,)]),
    "outer": (lambda a, b: a.outer(b), lambda a, b: a.outer(b), [(3,), (4,)]),
    "matmul_method": (lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), [(2, 3, 4), (4,)]),
    "t": (lambda a: a.t(), lambda a: a.t(), [(3, 4)]),
    "ds.t_1d": (lambda a: ds.t(a), lambda a: torch.t(a), [(3,)]),
    "pow_method": (lambda a: a.abs().pow(1.5), lambda a: a.abs().pow(1.5), [(3, 4)]),
    "split": (
        lambda a: a.split(2, 1)[1] * 2 + a.split(2, 1)[0],
        lambda a: a.split(2, 1)[1] * 2 + a.split(2, 1)[0],
        [(3, 4)],
    ),
    "split_sizes": (lambda a: a.split([1, 3], 1)[1], lambda a: a.split([1, 3], 1)[1], [(3, 4)]),
    "chunk_uneven": (lambda a: a.chunk(3, 0)[2], lambda a: a.chunk(3, 0)[2], [(5, 2)]),
    "narrow": (lambda a: a.narrow(1, 1, 2), lambda a: a.narrow(1, 1, 2), [(3, 4)]),
    "narrow_negative_start": (lambda a: ds.narrow(a, 0, -2, 2), lambda a: torch.narrow(a, 0, -2, 2), [(3, 4)]),
    "unbind": (lambda a: a.unbind(1)[2], lambda a: a.unbind(1)[2], [(3, 4)]),
    "repeat": (lambda a: a.repeat(2, 1, 3), lambda a: a.repeat(2, 1, 3), [(3, 2)]),
    "tile": (lambda a: a.tile((2,)), lambda a: a.tile((2,)), [(3, 2)]),
    "flip": (lambda a: a.flip(0, 1), lambda a: a.flip(0, 1), [(3, 4)]),
    "index_select": (
        lambda a: a.index_select(1, ds.tensor([2, 0, 2])),
        lambda a: a.index_select(1, torch.tensor([2, 0, 2])),
        [(3, 4)],
    ),
    "masked_fill": (lambda a: a.masked_fill(a > 0, 0.5), lambda a: a.masked_fill(a > 0, 0.5), [(3, 4)]),
    "tril": (lambda a: a.tril(), lambda a: a.tril(), [(2, 3, 4)]),
    "triu_diag": (lambda a: ds.triu(a, 1), lambda a: torch.triu(a, 1), [(4, 4)]),
    "sort": (lambda a: a.sort(1).values, lambda a: a.sort(1).values, [(3, 4)]),
    "sort_descending": (lambda a: ds.sort(a, 0, True).values, lambda a: torch.sort(a, 0, True).values, [(3, 4)]),
    "topk": (lambda a: a.topk(2).values, lambda a: a.topk(2).values, [(3, 4)]),
    "topk_smallest": (
        lambda a: a.topk(3, 0, largest=False).values,
        lambda a: a.topk(3, 0, largest=False).values,
        [(3, 4)],
    ),
    "cumsum": (lambda a: a.cumsum(1), lambda a: a.cumsum(1), [(3, 4)]),
    "cumsum_dim0": (lambda a: ds.cumsum(a, 0), lambda a: torch.cumsum(a, 0), [(3, 4)]),
    "prod_dim": (lambda a: a.prod(1), lambda a: a.prod(1), [(3, 4)]),
    "prod_all": (lambda a: a.prod(), lambda a: a.prod(), [(2, 3)]),
    "prod_keepdim": (lambda a: ds.prod(a, 0, keepdim=True), lambda a: torch.prod(a, 0, keepdim=True), [(3, 4)]),
    "norm": (lambda a: a.norm(), lambda a: a.norm(), [(3, 4)]),
    "norm_dim": (lambda a: a.norm(dim=1, keepdim=True), lambda a: a.norm(dim=1, keepdim=True), [(3, 4)]),
    "norm_p1": (lambda a: ds.norm(a, 1, 0), lambda a: torch.norm(a, 1, 0), [(3, 4)]),
    "norm_p3": (lambda a: a.norm(3), lambda a: a.norm(3), [(3, 4)]),
    "norm_inf": (lambda a: a.norm(float("inf"), 1), lambda a: a.norm(float("inf"), 1), [(3, 4)]),
    "log1p": (lambda a: a.abs().log1p(), lambda a: a.abs().log1p(), [(3, 4)]),
    "expm1": (lambda a: ds.expm1(a), lambda a: torch.expm1(a), [(3, 4)]),
    "rsqrt": (lambda a: (a.abs() + 0.1).rsqrt(), lambda a: (a.abs() + 0.1).rsqrt(), [(3, 4)]),
    "square": (lambda a: a.square(), lambda a: a.square(), [(3, 4)]),
    "reciprocal": (lambda a: (a.abs() + 0.5).reciprocal(), lambda a: (a.abs() + 0.5).reciprocal(), [(3, 4)]),
    "sign": (lambda a: a.sign() * a, lambda a: a.sign() * a, [(3, 4)]),
    "floor_ceil_round": (
        lambda a: a.floor() + a.ceil() + ds.round(a) + a.trunc() + a,
        lambda a: a.floor() + a.ceil() + torch.round(a) + a.trunc() + a,
        [(3, 4)],
    ),
    "add_alpha": (lambda a, b: a.add(b, alpha=2), lambda a, b: a.add(b, alpha=2), [(3, 4), (4,)]),
    "sub_alpha": (lambda a, b: a.sub(b, alpha=0.5), lambda a, b: a.sub(b, alpha=0.5), [(3, 4), (3, 4)]),
    "lerp": (lambda a, b: a.lerp(b, 0.3), lambda a, b: a.lerp(b, 0.3), [(3, 4), (3, 4)]),
    "addcmul": (lambda a, b: ds.addcmul(a, b, b, value=2), lambda a, b: torch.addcmul(a, b, b, value=2), [(3,), (3,)]),
    "addcdiv": (
        lambda a, b: a.addcdiv(b, b.abs() + 1, value=0.5),
        lambda a, b: a.addcdiv(b, b.abs() + 1, value=0.5),
        [(3,), (3,)],
    ),
    "view_as": (lambda a, b: a.view_as(b) * b, lambda a, b: a.view_as(b) * b, [(3, 4), (2, 6)]),
    "reshape_as": (lambda a, b: a.reshape_as(b) * b, lambda a, b: a.reshape_as(b) * b, [(3, 4), (4, 3)]),
    "expand_as": (lambda a, b: a.expand_as(b) * b, lambda a, b: a.expand_as(b) * b, [(1, 4), (3, 4)]),
    "contiguous": (lambda a: a.t().contiguous(), lambda a: a.t().contiguous(), [(3, 4)]),
    "clone": (lambda a: a.clone() * 2, lambda a: a.clone() * 2, [(3, 4)]),
    "type_as": (lambda a, b: a.type_as(b) * b, lambda a, b: a.type_as(b) * b, [(3,), (3,)]),
    "hstack": (lambda a, b: ds.hstack([a, b]), lambda a, b: torch.hstack([a, b]), [(3, 2), (3, 4)]),
    "vstack": (lambda a, b: ds.vstack([a, b]), lambda a, b: torch.vstack([a, b]), [(4,), (2, 4)]),
    "concat": (lambda a, b: ds.concat([a, b], dim=1), lambda a, b: torch.concat([a, b], dim=1), [(3, 2), (3, 1)]),
    "where_method": (lambda a, b: a.where(a > 0, b), lambda a, b: a.where(a > 0, b), [(3, 4), (3, 4)]),
    "scatter": (
        lambda a, b: a.scatter(1, ds.tensor([[2, 0], [1, 1], [0, 3]]), b),
        lambda a, b: a.scatter(1, torch.tensor([[2, 0], [1, 1], [0, 3]]), b),
        [(3, 4), (3, 2)],
    ),
    "scatter_value": (
        lambda a: ds.scatter(a, 0, ds.tensor([[1, 2, 0, 1]]), value=2.5),
        lambda a: torch.scatter(a, 0, torch.tensor([[1, 2, 0, 1]]), value=2.5),
        [(3, 4)],
    ),
    "scatter_add": (
        lambda a, b: a.scatter_add(1, ds.tensor([[2, 2], [1, 1], [0, 3]]), b),
        lambda a, b: a.scatter_add(1, torch.tensor([[2, 2], [1, 1], [0, 3]]), b),
        [(3, 4), (3, 2)],
    ),
    "einsum_matmul": (
        lambda a, b: ds.einsum("ij,jk->ik", a, b),
        lambda a, b: torch.einsum("ij,jk->ik", a, b),
        [(3, 4), (4, 2)],
    ),
    "einsum_batched": (
        lambda a, b: ds.einsum("bij,bkj->bik", a, b),
        lambda a, b: torch.einsum("bij,bkj->bik", a, b),
        [(2, 3, 4), (2, 5, 4)],
    ),
    "einsum_implicit_sum": (
        lambda a, b: ds.einsum("ij,j", a, b),
        lambda a, b: torch.einsum("ij,j", a, b),
        [(3, 4), (4,)],
    ),
    "einsum_reduce_own_index": (lambda a: ds.einsum("ij->", a), lambda a: torch.einsum("ij->", a), [(3, 4)]),
    "einsum_outer_list": (
        lambda a, b: ds.einsum("i,j->ji", [a, b]),
        lambda a, b: torch.einsum("i,j->ji", [a, b]),
        [(3,), (2,)],
    ),
    "index_fill": (
        lambda a: a.index_fill(0, ds.tensor([0, 2]), -1.0),
        lambda a: a.index_fill(0, torch.tensor([0, 2]), -1.0),
        [(3, 4)],
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_op_matches_torch_values_and_gradients(check_op, name, dtype):
    ours, theirs, shapes = GRAD_CASES[name]
    check_op(ours, theirs, [_u(i, s, dtype) for i, s in enumerate(shapes)])


@pytest.mark.parametrize(
    "name",
    ["prod_dim", "prod_all", "cumsum", "sort", "topk", "repeat", "flip", "norm", "norm_p3", "rsqrt", "log1p"]
    + ["einsum_batched", "einsum_reduce_own_index"],
)
def test_op_passes_gradcheck(name):
    ours, _, shapes = GRAD_CASES[name]
    ds.gradcheck(lambda *xs: ours(*xs).sum(), tuple(_u(10 + i, s) for i, s in enumerate(shapes)))


def test_prod_gradient_with_zeros_matches_torch(check_op):
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0], [1.0, -2.0, 4.0]])
    check_op(lambda a: a.prod(1), lambda a: a.prod(1), [x])
    check_op(lambda a: a.prod(), lambda a: a.prod(), [x[2:]])


def test_norm_of_zero_vector_has_zero_gradient_as_in_torch(check_op):
    check_op(lambda a: a.norm(dim=1), lambda a: a.norm(dim=1), [np.array([[0.0, 0.0], [3.0, 4.0]])])


def test_cumsum_double_backward():
    x = ds.tensor([0.5, 1.0, 2.0], dtype="float64", requires_grad=True)
    (g,) = ds.autograd_grad((x.cumsum(0) ** 2).sum(), x, create_graph=True)
    g.sum().backward()
    xt = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (gt,) = torch.autograd.grad((xt.cumsum(0) ** 2).sum(), xt, create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())


# ---------------------------------------------------------------------- results without gradients
def _same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
        return
    if isinstance(theirs, torch.Tensor):
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    else:
        assert ours == theirs


X = _u(0, (3, 4))
I = np.array([[3, 1, 2], [0, 5, 1]])
SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf])

VALUE_CASES = {
    "argmax": lambda m, x, i: m.argmax(x),
    "argmax_dim": lambda m, x, i: m.argmax(x, 1),
    "argmin_keepdim": lambda m, x, i: m.argmin(x, dim=0, keepdim=True),
    "argsort": lambda m, x, i: m.argsort(x, 1),
    "argsort_desc": lambda m, x, i: x.argsort(0, descending=True),
    "sort_indices": lambda m, x, i: x.sort(1).indices,
    "topk_indices": lambda m, x, i: m.topk(x, 2, 0).indices,
    "eq": lambda m, x, i: (x.eq(x[0]), m.eq(x, 0.5), x.ne(x), m.ne(x, x[:, :1])),
    "lt_le_gt_ge": lambda m, x, i: (x.lt(0), m.le(x, 0), x.gt(x.t().t()), m.ge(x, 0.1)),
    "equal": lambda m, x, i: (m.equal(x, x.clone()), x.equal(x + 1), m.allclose(x, x + 1e-9)),
    "isclose": lambda m, x, i: m.isclose(x, x + 1e-7),
    "isnan_isinf": lambda m, x, i: (
        m.isnan(m.tensor(SPECIAL)),
        m.tensor(SPECIAL).isinf(),
        m.isfinite(m.tensor(SPECIAL)),
    ),
    "logical": lambda m, x, i: (m.logical_and(x > 0, x < 1), (x > 0).logical_or(x < -1), m.logical_not(x > 0)),
    "bitwise": lambda m, x, i: (~(x > 0), (x > 0) & (x < 1), (x > 0) | (x < -1), (x > 0) ^ (x > 1)),
    "all_any": lambda m, x, i: (m.all(x > -3), (x > 0).any(), (x > 0).all(1), m.any(x > 1, 0)),
    "int_sum_cumsum": lambda m, x, i: (i.sum(), i.cumsum(1), i.prod(1), m.cumsum(x > 0, 0)),
    "integer_ops": lambda m, x, i: (i // 2, i % 2, m.bincount(m.tensor([0, 2, 2, 3]))),
    "unique": lambda m, x, i: m.unique(i, return_counts=True),
    "sign_int": lambda m, x, i: m.sign(i),
    "numel": lambda m, x, i: (m.numel(x), x.nelement(), x.element_size(), x.ndimension(), m.is_tensor(x)),
    "is_floating_point": lambda m, x, i: (m.is_floating_point(x), i.is_floating_point()),
    "type_conversions": lambda m, x, i: (x.int(), x.long(), x.half(), x.bool(), x.double(), i.float()),
    "type_dtype": lambda m, x, i: (x.type(m.int64), i.type(m.float32), x.to(m.float64).type(m.float32)),
    "new_tensors": lambda m, x, i: (
        x.new_zeros(2, 3),
        x.new_ones((2,)),
        x.new_full((2, 2), 7),
        x.new_tensor([1, 2]),
        i.new_zeros(3),
    ),
    "tril_int": lambda m, x, i: m.tril(i),
    "masked_fill_int": lambda m, x, i: i.masked_fill(i > 2, -1),
}


@pytest.mark.parametrize("name", list(VALUE_CASES))
def test_results_match_torch(name):
    fn = VALUE_CASES[name]
    _same(fn(ds, ds.tensor(X, dtype="float64"), ds.tensor(I)), fn(torch, torch.tensor(X), torch.tensor(I)))


def test_type_without_argument_names_torchs_tensor_type():
    for dtype, name in [("float32", "FloatTensor"), ("float64", "DoubleTensor"), ("int64", "LongTensor")]:
        assert ds.zeros(1, dtype=dtype).type() == torch.zeros(1, dtype=getattr(torch, dtype)).type() == f"torch.{name}"
    assert ds.ones(2).type("torch.LongTensor").dtype == np.int64
    with pytest.raises(TypeError, match="FloatTensor"):
        ds.ones(2).type("torch.NoSuchTensor")


def test_dtype_aliases_are_torchs():
    pairs = {
        "float": "float32",
        "double": "float64",
        "half": "float16",
        "long": "int64",
        "int": "int32",
        "bool": "bool",
    }
    for alias, name in pairs.items():
        assert getattr(ds, alias) == np.dtype(name)
        assert str(getattr(torch, alias)) == f"torch.{name}"
    assert isinstance(ds.float32, ds.dtype)
    assert ds.zeros(2, dtype=ds.long).dtype == np.int64
    assert ds.tensor([1.5]).to(ds.double).dtype == np.float64


# ---------------------------------------------------------------------- creation
def test_factories_match_torch():
    cases = [
        (lambda m: m.linspace(-1, 2, 7), None),
        (lambda m: m.linspace(0, 1, 5, dtype=m.float64), None),
        (lambda m: m.logspace(0, 2, 3), None),
        (lambda m: m.logspace(0, 3, 4, base=2), None),
        (lambda m: m.eye(3), None),
        (lambda m: m.eye(2, 4, dtype=m.float64), None),
        (lambda m: m.arange(5), None),
        (lambda m: m.arange(0, 1, 0.25, dtype=m.float64), None),
        (lambda m: m.empty(2, 3).shape, None),
        (lambda m: m.zeros_like(m.ones(2, 3, dtype=m.int64)), None),
        (lambda m: m.ones_like(m.zeros(2), dtype=m.float64), None),
        (lambda m: m.full_like(m.zeros(2, 2), 3.5), None),
        (lambda m: m.empty_like(m.zeros(3, dtype=m.int64)).shape, None),
        (lambda m: m.full((2,), 3), None),
        (lambda m: m.full((2,), True), None),
        (lambda m: m.zeros(2, 3, device="cpu", requires_grad=True).requires_grad, None),
        (lambda m: m.tensor([1.0, 2.0], device=m.device("cpu"), dtype=m.float64), None),
    ]
    for make, _ in cases:
        _same(make(ds), make(torch))


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.rand_like(m.zeros(3, 4)),
        lambda m: m.randn_like(m.zeros(3, 4, dtype=m.float64)),
        lambda m: m.randint(0, 10, (3, 4)),
        lambda m: m.randint(5, (6,)),
        lambda m: m.randint_like(m.zeros(2, 2), 3, 7),
        lambda m: m.randperm(8),
        lambda m: m.normal(0.0, 1.0, size=(3,)),
        lambda m: m.normal(m.zeros(3), 2.0),
        lambda m: m.bernoulli(m.full((4,), 0.5)),
    ],
)
def test_random_factories_have_torchs_shape_and_dtype_and_are_seeded(make):
    ref = make(torch)
    ds.manual_seed(7)
    a = make(ds)
    ds.manual_seed(7)
    b = make(ds)
    assert a.shape == tuple(ref.shape)
    assert a.dtype == np.dtype(str(ref.dtype).replace("torch.", ""))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_random_factory_ranges():
    ds.manual_seed(0)
    r = ds.randint(3, 7, (1000,))
    assert r.numpy().min() == 3 and r.numpy().max() == 6
    assert sorted(ds.randperm(10).tolist()) == list(range(10))
    n = ds.normal(5.0, 0.1, size=(4000,))
    assert abs(float(n.mean()) - 5.0) < 0.01 and abs(float(n.std()) - 0.1) < 0.01


# ---------------------------------------------------------------------- Python protocols
def test_zero_d_integer_tensor_is_a_list_index_and_formats_like_a_number():
    items = ["a", "b", "c"]
    for lib in (ds, torch):
        i = lib.tensor([0, 2, 1]).argmax()
        assert items[i] == "b"
        assert list(range(10))[lib.tensor(2) : lib.tensor(5)] == [2, 3, 4]
        assert f"{lib.tensor(3.14159):.2f}" == "3.14"
        assert f"{lib.tensor(7):>3d}" == "  7"
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        items[ds.tensor(1.0)]
    with pytest.raises(TypeError, match="0-d"):
        f"{ds.tensor([1.0, 2.0]):.2f}"
    assert f"{ds.tensor([1.0, 2.0])}" == str(ds.tensor([1.0, 2.0]))


def test_bad_arguments_are_refused_with_clear_errors():
    x = ds.zeros(3, 4)
    with pytest.raises(ds.ShapeError, match="mm: expected two 2-D"):
        ds.mm(x, ds.zeros(4))
    with pytest.raises(ds.ShapeError, match="bmm"):
        x.bmm(x)
    with pytest.raises(ds.ShapeError, match="t\\(\\) expects"):
        ds.zeros(2, 2, 2).t()
    with pytest.raises(ds.ShapeError, match="add up to 3"):
        x.split([1, 2], 1)
    with pytest.raises(IndexError, match="narrow"):
        x.narrow(1, 3, 2)
    with pytest.raises(IndexError, match="topk"):
        x.topk(5)
    with pytest.raises(ValueError, match="repeat"):
        x.repeat(2)


def test_factories_take_size_keyword_and_ignore_only_layout_options():
    for lib in (ds, torch):
        assert tuple(lib.zeros(size=(2, 3)).shape) == (2, 3)
        assert tuple(lib.ones(2, pin_memory=False).shape) == (2,)
        assert tuple(lib.randn(size=(4,)).shape) == (4,)
    with pytest.raises(TypeError):
        ds.zeros(2, out=ds.zeros(2))  # not silently ignored


def test_einsum_double_backward_and_refusals():
    a = ds.tensor(_u(1, (3, 4)), dtype="float64", requires_grad=True)
    b = ds.tensor(_u(2, (4,)), dtype="float64", requires_grad=True)
    (ga,) = ds.autograd_grad(ds.einsum("ij,j->i", a, b).pow(2).sum(), a, create_graph=True)
    ga.sum().backward()
    at, bt = torch.tensor(a.numpy(), requires_grad=True), torch.tensor(b.numpy(), requires_grad=True)
    (gt,) = torch.autograd.grad(torch.einsum("ij,j->i", at, bt).pow(2).sum(), at, create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), bt.grad.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="diagonal"):
        ds.einsum("ii->i", ds.zeros(2, 2))
    with pytest.raises(ValueError, match="not supported"):
        ds.einsum("...i->i", ds.zeros(2, 2))
    with pytest.raises(ValueError, match="operand 0 has 2 dims"):
        ds.einsum("ijk->i", ds.zeros(2, 2))
    assert ds.zeros(2, 3).shape == ds.Size([2, 3])
