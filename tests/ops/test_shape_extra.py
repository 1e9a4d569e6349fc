"""torch's shape, rearrange and linear-algebra extras (kron, tensordot, rot90, unfold, block_diag,
diag_embed, the *_scatter ops, ...) against PyTorch: values, dtypes, first and second-order gradients
(float64) and the errors of bad arguments."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError, DownslopeError, OutOfRangeError, ShapeError

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def check(ds_fn: Callable[..., Any], torch_fn: Callable[..., Any], *shapes: tuple[int, ...]) -> None:
    """Values, gradients and second-order gradients (through create_graph) of ``ds_fn`` match
    ``torch_fn`` on random float64 inputs of ``shapes``."""
    arrays = [RNG.standard_normal(s) for s in shapes]
    xs = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    y, ty = ds_fn(*xs), torch_fn(*ts)
    ys = list(y) if isinstance(y, (tuple, list)) else [y]
    tys = list(ty) if isinstance(ty, (tuple, list)) else [ty]
    assert len(ys) == len(tys)
    for a, b in zip(ys, tys):
        assert a.shape == tuple(b.shape)
        assert a.dtype == ds.float64
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    if not any(b.requires_grad for b in tys):  # torch returns a fresh empty tensor (combinations with r=0)
        return
    weights = [RNG.standard_normal(tuple(b.shape)) for b in tys]
    # y * y * w: the first-order gradient still depends on the inputs, so the second order is not trivial
    loss = ds.stack([(a * a * ds.tensor(w, dtype=ds.float64)).sum() for a, w in zip(ys, weights)]).sum()
    tloss = torch.stack([(b * b * torch.tensor(w)).sum() for b, w in zip(tys, weights)]).sum()
    grads = ds.autograd.grad(loss, xs, create_graph=True)
    tgrads = torch.autograd.grad(tloss, ts, create_graph=True)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12, atol=1e-12)
    vs = [RNG.standard_normal(s) for s in shapes]
    second = ds.stack([(g * ds.tensor(v, dtype=ds.float64)).sum() for g, v in zip(grads, vs)]).sum()
    tsecond = torch.stack([(g * torch.tensor(v)).sum() for g, v in zip(tgrads, vs)]).sum()
    if not tsecond.requires_grad:  # torch's gradients of empty inputs are constants
        return
    hs = ds.autograd.grad(second, xs, allow_unused=True) if second.requires_grad else [None] * len(xs)
    ths = torch.autograd.grad(tsecond, ts, allow_unused=True)
    for h, th, s in zip(hs, ths, shapes):
        ours = np.zeros(s) if h is None else h.numpy()
        theirs = np.zeros(s) if th is None else th.numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def same(ours: Any, theirs: Any) -> None:
    """Equal values, shapes and dtypes (for results without gradients)."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            same(a, b)
        return
    assert ours.shape == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def one_line_error(exc_type: type[Exception], fn: Callable[[], Any], match: str = "") -> None:
    with pytest.raises(exc_type, match=re.escape(match)) as info:
        fn()
    assert isinstance(info.value, DownslopeError)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- kron, tensordot


@pytest.mark.parametrize(
    "sa, sb",
    [((2, 3), (3, 2)), ((3,), (2, 2)), ((2, 1, 3), (2,)), ((), (2, 3)), ((0, 2), (2, 3)), ((2, 3), (1, 1))],
)
def test_kron_matches_torch(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    check(ds.kron, torch.kron, sa, sb)


def test_kron_non_contiguous_and_method() -> None:
    # torch 2.x's own kron refuses a transposed operand (a .view inside): give it a contiguous copy
    check(lambda a, b: a.T.kron(b), lambda a, b: a.T.contiguous().kron(b), (3, 2), (2, 2))


@pytest.mark.parametrize(
    "da, db",
    [("float32", "int64"), ("int64", "float32"), ("float32", "float64"), ("int32", "int64"), ("bool", "bool")],
)
def test_kron_dtypes_follow_torch(da: str, db: str) -> None:
    a, b = np.arange(4).reshape(2, 2) % 2, np.arange(3) % 2
    ours = ds.kron(ds.tensor(a.astype(da), dtype=getattr(ds, da)), ds.tensor(b.astype(db), dtype=getattr(ds, db)))
    theirs = torch.kron(torch.tensor(a.astype(da)), torch.tensor(b.astype(db)))
    same(ours, theirs)


@pytest.mark.parametrize(
    "sa, sb, dims",
    [
        ((2, 3), (3, 4), 1),
        ((2, 3, 4), (3, 4, 5), 2),
        ((2, 3), (2, 3), 0),
        ((2, 3), (2, 3), 2),
        ((2, 3, 4), (4, 2), ([0, 2], [1, 0])),
        ((3, 4), (3, 4), ([-1], [-1])),
        ((2, 0), (0, 3), 1),
        ((2, 1), (3, 4), ([1], [0])),
        ((3, 4), (5, 1), ([0], [1])),
        ((), (), 0),
    ],
)
def test_tensordot_matches_torch(sa: tuple[int, ...], sb: tuple[int, ...], dims: Any) -> None:
    check(lambda a, b: ds.tensordot(a, b, dims), lambda a, b: torch.tensordot(a, b, dims), sa, sb)


def test_tensordot_takes_dims_as_a_tensor_and_non_contiguous_inputs() -> None:
    check(
        lambda a, b: ds.tensordot(a.T, b, ds.tensor([[0], [0]])),
        lambda a, b: torch.tensordot(a.T, b, torch.tensor([[0], [0]])),
        (3, 2),
        (2, 4),
    )
    a = ds.ones(2, 3)
    assert ds.tensordot(a, a.T, dims=ds.tensor(1)).shape == (2, 2)


def test_tensordot_bad_arguments() -> None:
    a = ds.ones(2, 3)
    one_line_error(ArgumentError, lambda: ds.tensordot(a, a, -1), "dims >= 0")
    one_line_error(ArgumentError, lambda: ds.tensordot(a, a, 3), "dims=3")
    one_line_error(ArgumentTypeError, lambda: ds.tensordot(a, ds.ones(3, 2, dtype=ds.float64), 1), "same dtype")
    one_line_error(ShapeError, lambda: ds.tensordot(a, a, ([0], [1])), "size 2 in dim 0")
    one_line_error(ArgumentError, lambda: ds.tensordot(a, a, ([0], [0, 1])), "same length")
    one_line_error(ArgumentError, lambda: ds.tensordot(a, a, ([0, 0], [0, 0])), "multiple times")
    one_line_error(OutOfRangeError, lambda: ds.tensordot(a, a, ([2], [0])), "out of range")
    one_line_error(ArgumentTypeError, lambda: ds.tensordot(a, a, "x"), "dims")


@st.composite
def tensordot_cases(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...], Any]:
    """Two shapes with some contracted dims (equal sizes) at shuffled places, and the dims' lists."""
    shared = draw(st.lists(st.integers(0, 3), max_size=3))
    shapes, dims = [], []
    for _ in range(2):
        items = [("free", s) for s in draw(st.lists(st.integers(0, 3), max_size=2))]
        items = draw(st.permutations(items + [("shared", k) for k in range(len(shared))]))
        shapes.append(tuple(v if kind == "free" else shared[v] for kind, v in items))
        dims.append([items.index(("shared", k)) for k in range(len(shared))])
    return shapes[0], shapes[1], (dims[0], dims[1])


@settings(max_examples=40, deadline=None)
@given(tensordot_cases())
def test_tensordot_shapes_property(case: Any) -> None:
    sa, sb, dims = case
    check(lambda a, b: ds.tensordot(a, b, dims), lambda a, b: torch.tensordot(a, b, dims), sa, sb)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=3), st.lists(st.integers(0, 3), max_size=3))
def test_kron_shapes_property(sa: list[int], sb: list[int]) -> None:
    check(ds.kron, torch.kron, tuple(sa), tuple(sb))


# ---------------------------------------------------------------- rot90, fliplr, flipud


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, -1, -2, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (0, -1), (2, 0)])
def test_rot90_matches_torch(k: int, dims: tuple[int, int]) -> None:
    check(lambda x: ds.rot90(x, k, dims), lambda x: torch.rot90(x, k, dims), (2, 3, 4))


def test_rot90_method_non_contiguous_and_empty() -> None:
    check(lambda x: x.transpose(0, 1).rot90(1, [0, 1]), lambda x: x.transpose(0, 1).rot90(1, [0, 1]), (3, 2))
    check(lambda x: ds.rot90(x), lambda x: torch.rot90(x), (0, 3))


def test_rot90_bad_arguments() -> None:
    x = ds.ones(2, 3)
    one_line_error(ArgumentError, lambda: ds.rot90(x, 1, [0]), "== 2")
    one_line_error(ArgumentError, lambda: ds.rot90(x, 1, [0, 0]), "different")
    one_line_error(ArgumentError, lambda: ds.rot90(x, 1, [1, -1]), "different")
    one_line_error(ShapeError, lambda: ds.rot90(ds.ones(3)), ">= 2")
    one_line_error(OutOfRangeError, lambda: ds.rot90(x, 1, [0, 2]), "out of range")
    one_line_error(ArgumentTypeError, lambda: ds.rot90(x, 1.5), "int")


def test_fliplr_flipud_match_torch() -> None:
    check(ds.fliplr, torch.fliplr, (2, 3, 2))
    check(ds.flipud, torch.flipud, (3,))
    check(lambda x: x.T.flipud(), lambda x: x.T.flipud(), (2, 3))
    check(lambda x: x.T.fliplr(), lambda x: x.T.fliplr(), (2, 3))
    one_line_error(ShapeError, lambda: ds.fliplr(ds.ones(3)), ">= 2-d")
    one_line_error(ShapeError, lambda: ds.flipud(ds.tensor(1.0)), ">= 1-d")


# ---------------------------------------------------------------- unfold


@pytest.mark.parametrize(
    "shape, dim, size, step",
    [
        ((7,), 0, 3, 1),
        ((7,), 0, 3, 2),
        ((7,), 0, 2, 5),
        ((2, 9, 3), 1, 4, 3),
        ((2, 9, 3), -2, 9, 1),
        ((2, 6), -1, 5, 1),  # more positions than windows: the other gradient loop
        ((2, 6), 1, 0, 1),
        ((0, 4), 1, 2, 1),
        ((0, 4), 0, 0, 1),
        ((), 0, 1, 1),
        ((), 0, 0, 1),
    ],
)
def test_unfold_matches_torch(shape: tuple[int, ...], dim: int, size: int, step: int) -> None:
    check(lambda x: x.unfold(dim, size, step), lambda x: x.unfold(dim, size, step), shape)


def test_unfold_non_contiguous_and_chained() -> None:
    check(lambda x: x.flip(0).unfold(0, 3, 2), lambda x: x.flip(0).unfold(0, 3, 2), (7, 2))  # negative strides
    check(lambda x: x.T.unfold(0, 2, 1), lambda x: x.T.unfold(0, 2, 1), (3, 5))
    check(lambda x: x.unfold(0, 3, 1).unfold(1, 2, 2), lambda x: x.unfold(0, 3, 1).unfold(1, 2, 2), (6, 5))


def test_unfold_keeps_dtype_and_bad_arguments() -> None:
    same(ds.arange(6).unfold(0, 2, 2), torch.arange(6).unfold(0, 2, 2))
    x = ds.ones(2, 3)
    one_line_error(ShapeError, lambda: x.unfold(1, 4, 1), "maximum size")
    one_line_error(ArgumentError, lambda: x.unfold(1, 2, 0), "step")
    one_line_error(ArgumentError, lambda: x.unfold(1, -1, 1), "size")
    one_line_error(OutOfRangeError, lambda: x.unfold(2, 1, 1), "out of range")
    one_line_error(ShapeError, lambda: ds.tensor(1.0).unfold(0, 2, 1), "maximum size")


# ---------------------------------------------------------------- block_diag, diag_embed, diagflat


def test_block_diag_matches_torch() -> None:
    check(lambda a, b, c: ds.block_diag(a, b, c), lambda a, b, c: torch.block_diag(a, b, c), (2, 3), (), (4,))
    check(lambda a, b: ds.block_diag(a.T, b), lambda a, b: torch.block_diag(a.T, b), (2, 3), (0, 2))
    check(lambda a: ds.block_diag(a), lambda a: torch.block_diag(a), (0,))


def test_block_diag_dtypes_empty_and_errors() -> None:
    same(ds.block_diag(), torch.block_diag())
    same(
        ds.block_diag(ds.ones(2, dtype=ds.bool_), ds.ones(1, dtype=ds.int8)),
        torch.block_diag(torch.ones(2, dtype=torch.bool), torch.ones(1, dtype=torch.int8)),
    )
    same(
        ds.block_diag(ds.ones(2, dtype=ds.int64), ds.ones(1, 1)),
        torch.block_diag(torch.ones(2, dtype=torch.int64), torch.ones(1, 1)),
    )
    one_line_error(ShapeError, lambda: ds.block_diag(ds.ones(2), ds.ones(2, 2, 2)), "Input 1 has 3 dimensions")


@pytest.mark.parametrize(
    "shape, offset, dim1, dim2",
    [
        ((3,), 0, -2, -1),
        ((2, 3), 1, -2, -1),
        ((2, 3), -2, 0, 2),
        ((2, 3), 0, 0, 1),
        ((2, 3), 0, -1, -3),
        ((2, 0), 1, 0, 2),
    ],
)
def test_diag_embed_matches_torch(shape: tuple[int, ...], offset: int, dim1: int, dim2: int) -> None:
    check(lambda x: ds.diag_embed(x, offset, dim1, dim2), lambda x: torch.diag_embed(x, offset, dim1, dim2), shape)


def test_diag_embed_method_dtype_and_errors() -> None:
    check(lambda x: x.T.diag_embed(), lambda x: x.T.diag_embed(), (3, 2))
    same(ds.diag_embed(ds.ones(3, dtype=ds.int32)), torch.diag_embed(torch.ones(3, dtype=torch.int32)))
    one_line_error(ArgumentError, lambda: ds.diag_embed(ds.ones(2, 3), 0, 1, 1), "identical")
    one_line_error(OutOfRangeError, lambda: ds.diag_embed(ds.ones(2, 3), 0, 0, 3), "out of range")
    one_line_error(OutOfRangeError, lambda: ds.diag_embed(ds.tensor(1.0)), "out of range")


@pytest.mark.parametrize("shape, offset", [((2, 3), 0), ((2, 3), -1), ((4,), 2), ((), 0), ((0,), 0)])
def test_diagflat_matches_torch(shape: tuple[int, ...], offset: int) -> None:
    check(lambda x: ds.diagflat(x, offset), lambda x: torch.diagflat(x, offset), shape)
    check(lambda x: x.diagflat(offset), lambda x: x.diagflat(offset), shape)


# ---------------------------------------------------------------- chain_matmul, row_stack


def test_chain_matmul_matches_torch_and_warns() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(
            lambda a, b, c: ds.chain_matmul(a, b, c),
            lambda a, b, c: torch.chain_matmul(a, b, c),
            (2, 3),
            (3, 4),
            (4, 1),
        )
        check(lambda a: ds.chain_matmul(a), lambda a: torch.chain_matmul(a), (2, 3))
        check(lambda a, b: ds.chain_matmul(a.T, b), lambda a, b: torch.chain_matmul(a.T, b), (3, 2), (3, 0))
    with pytest.warns(UserWarning, match="deprecated"):
        ds.chain_matmul(ds.ones(2, 2))


def test_chain_matmul_bad_arguments() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_line_error(ArgumentError, lambda: ds.chain_matmul(), "one or more")
        one_line_error(ShapeError, lambda: ds.chain_matmul(ds.ones(3)), "expected 2")
        one_line_error(ShapeError, lambda: ds.chain_matmul(ds.ones(2, 3), ds.ones(2, 3)), "cannot be multiplied")
        one_line_error(
            ArgumentTypeError, lambda: ds.chain_matmul(ds.ones(2, 3), ds.ones(3, 2, dtype=ds.float64)), "dtype"
        )


def test_row_stack_matches_torch() -> None:
    check(lambda a, b: ds.row_stack([a, b]), lambda a, b: torch.row_stack([a, b]), (3,), (2, 3))


# ---------------------------------------------------------------- cartesian_prod, combinations


def test_cartesian_prod_matches_torch() -> None:
    check(lambda a, b, c: ds.cartesian_prod(a, b, c), lambda a, b, c: torch.cartesian_prod(a, b, c), (2,), (3,), (2,))
    check(lambda a: ds.cartesian_prod(a), lambda a: torch.cartesian_prod(a), (3,))
    check(lambda a, b: ds.cartesian_prod(a, b), lambda a, b: torch.cartesian_prod(a, b), (3,), (0,))
    same(ds.cartesian_prod(ds.arange(2), ds.arange(3)), torch.cartesian_prod(torch.arange(2), torch.arange(3)))
    one_line_error(ShapeError, lambda: ds.cartesian_prod(ds.ones(2, 2)), "1-D")
    one_line_error(ArgumentError, lambda: ds.cartesian_prod(), "non-empty")
    one_line_error(ArgumentTypeError, lambda: ds.cartesian_prod(ds.ones(2), ds.arange(2)), "same dtype")


@pytest.mark.parametrize("n", [0, 1, 4])
@pytest.mark.parametrize("r", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("with_replacement", [False, True])
def test_combinations_matches_torch(n: int, r: int, with_replacement: bool) -> None:
    check(
        lambda x: ds.combinations(x, r, with_replacement),
        lambda x: torch.combinations(x, r, with_replacement),
        (n,),
    )


def test_combinations_dtype_and_errors() -> None:
    same(ds.combinations(ds.arange(4), 2), torch.combinations(torch.arange(4), 2))
    one_line_error(ArgumentError, lambda: ds.combinations(ds.ones(3), -1), "non-negative")
    one_line_error(ShapeError, lambda: ds.combinations(ds.ones(2, 2)), "1-D")


# ---------------------------------------------------------------- tril_indices, triu_indices, unravel_index


@pytest.mark.parametrize("row, col, offset", [(3, 3, 0), (3, 4, 1), (4, 3, -1), (0, 3, 0), (3, 3, -5), (3, 3, 9)])
def test_triangle_indices_match_torch(row: int, col: int, offset: int) -> None:
    same(ds.tril_indices(row, col, offset), torch.tril_indices(row, col, offset))
    same(ds.triu_indices(row, col, offset), torch.triu_indices(row, col, offset))
    same(ds.tril_indices(row, col, offset, dtype=ds.int32), torch.tril_indices(row, col, offset, dtype=torch.int32))


def test_triangle_indices_bad_arguments() -> None:
    one_line_error(ArgumentError, lambda: ds.tril_indices(-1, 3), "row must be non-negative")
    one_line_error(ArgumentError, lambda: ds.triu_indices(3, -2), "col must be non-negative")
    one_line_error(ArgumentTypeError, lambda: ds.tril_indices(3, 3, dtype=ds.float32), "int64 or int32")
    one_line_error(ArgumentTypeError, lambda: ds.tril_indices(3.0, 3), "row must be an int")


@pytest.mark.parametrize(
    "indices, shape",
    [
        ([4, 1, 0, 5], (2, 3)),
        (5, (2, 3)),
        ([[1234], [5678]], (10, 10, 10, 10)),
        ([-1, -6], (2, 3)),
        (3, 4),
        ([], (2, 3)),
    ],
)
def test_unravel_index_matches_torch(indices: Any, shape: Any) -> None:
    ours = ds.unravel_index(ds.tensor(indices, dtype=ds.int64), shape)
    theirs = torch.unravel_index(torch.tensor(indices, dtype=torch.int64), shape)
    same(ours, tuple(theirs))
    same(ds.unravel_index(ds.tensor(indices, dtype=ds.int32), shape), tuple(theirs))  # int64 results
    assert ds.unravel_index(ds.tensor(3), ()) == ()


def test_unravel_index_bad_arguments() -> None:
    one_line_error(ArgumentTypeError, lambda: ds.unravel_index(ds.tensor(1.0), (2, 3)), "integer dtype")
    one_line_error(ArgumentTypeError, lambda: ds.unravel_index(ds.tensor(True), (2, 3)), "integer dtype")
    one_line_error(ArgumentError, lambda: ds.unravel_index(ds.tensor(0), (2, -1)), "negative")
    # torch wraps these silently; they are refused here (see the compat table)
    one_line_error(OutOfRangeError, lambda: ds.unravel_index(ds.tensor([6]), (2, 3)), "index 6 is out of range")
    one_line_error(OutOfRangeError, lambda: ds.unravel_index(ds.tensor([-7]), (2, 3)), "out of range")
    one_line_error(OutOfRangeError, lambda: ds.unravel_index(ds.tensor(0), (0,)), "out of range")


# ---------------------------------------------------------------- split_with_sizes, range, broadcast_to, sum_to_size, msort


@pytest.mark.parametrize("shape, sizes, dim", [((5, 2), [2, 3], 0), ((2, 5), [1, 0, 4], -1), ((0, 2), [0, 0], 0)])
def test_split_with_sizes_matches_torch(shape: tuple[int, ...], sizes: list[int], dim: int) -> None:
    check(lambda x: ds.split_with_sizes(x, sizes, dim), lambda x: torch.split_with_sizes(x, sizes, dim), shape)
    check(
        lambda x: x.T.split_with_sizes(sizes, 1 - dim if dim >= 0 else 0),
        lambda x: x.T.split_with_sizes(sizes, 1 - dim if dim >= 0 else 0),
        shape,
    )


def test_split_with_sizes_bad_arguments() -> None:
    x = ds.ones(2, 3)
    one_line_error(ShapeError, lambda: x.split_with_sizes([1, 1, 1]), "sum exactly to 2")
    one_line_error(ArgumentError, lambda: x.split_with_sizes([3, -1], 1), "non-negative")
    one_line_error(ArgumentTypeError, lambda: x.split_with_sizes(2), "sequence of ints")
    one_line_error(ShapeError, lambda: ds.split_with_sizes(ds.tensor(1.0), [1]), "1-dimensional")


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0, 4), {}),
        ((1, 2, 0.5), {}),
        ((4, 0, -1), {}),
        ((0, 1, 0.3), {}),
        ((0.5, 2.6, 0.7), {}),
        ((0, 0), {}),
        ((0, 4), {"dtype": "int64"}),
        ((0, 4), {"dtype": "float64"}),
        ((-3, 3, 2), {"dtype": "int32"}),
    ],
)
def test_range_matches_torch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = ds.range(*args, **{k: getattr(ds, v) for k, v in kwargs.items()})
        theirs = torch.range(*args, **{k: getattr(torch, v) for k, v in kwargs.items()})
    same(ours, theirs)


def test_range_warns_takes_tensors_and_bad_arguments() -> None:
    with pytest.warns(UserWarning, match="deprecated"):
        x = ds.range(0, 2, requires_grad=True)
    assert x.requires_grad and x.dtype == ds.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(ds.range(ds.tensor(1), ds.tensor(3)), torch.range(torch.tensor(1), torch.tensor(3)))
        one_line_error(ArgumentError, lambda: ds.range(0, 4, 0), "nonzero")
        one_line_error(ArgumentError, lambda: ds.range(0, 4, -1), "inconsistent")
        one_line_error(ArgumentTypeError, lambda: ds.range(0, "4"), "end must be a number")
    with pytest.raises(TypeError):
        ds.range(4)  # type: ignore[call-arg]  # torch needs end too


def test_builtin_range_is_untouched() -> None:
    import builtins

    assert builtins.range is not ds.range and list(builtins.range(2)) == [0, 1]


def test_broadcast_to_method_matches_torch() -> None:
    check(lambda x: x.broadcast_to((2, 2, 3)), lambda x: x.broadcast_to((2, 2, 3)), (2, 3))
    check(lambda x: x.broadcast_to(4, -1, 3), lambda x: x.broadcast_to(4, -1, 3), (1, 3))
    one_line_error(ShapeError, lambda: ds.ones(2, 3).broadcast_to(3, 3), "cannot broadcast")


@pytest.mark.parametrize("size", [(1, 3), ((3,),), (2, 1), ((),), ([1],), (2, 3)])
def test_sum_to_size_matches_torch(size: tuple[Any, ...]) -> None:
    check(lambda x: x.sum_to_size(*size), lambda x: x.sum_to_size(*size), (2, 3))
    check(lambda x: x.T.sum_to_size(*size), lambda x: x.T.sum_to_size(*size), (3, 2))


def test_sum_to_size_bad_size() -> None:
    one_line_error(ShapeError, lambda: ds.ones(2, 3).sum_to_size(1, 1, 3), "not expandable")
    one_line_error(ShapeError, lambda: ds.ones(2, 3).sum_to_size(4), "not expandable")


def test_msort_matches_torch() -> None:
    check(ds.msort, torch.msort, (4, 3))
    check(lambda x: x.T.msort(), lambda x: x.T.msort(), (4, 3))
    check(ds.msort, torch.msort, ())
    same(ds.msort(ds.tensor([[3, 1], [1, 2]])), torch.msort(torch.tensor([[3, 1], [1, 2]])))


# ---------------------------------------------------------------- select_scatter, slice_scatter, diagonal_scatter


@pytest.mark.parametrize("dim, index", [(0, 1), (1, -1), (-1, 0), (2, 3)])
def test_select_scatter_matches_torch(dim: int, index: int) -> None:
    shape = (2, 3, 4)
    src_shape = shape[: dim % 3] + shape[dim % 3 + 1 :]
    check(
        lambda x, s: ds.select_scatter(x, s, dim, index),
        lambda x, s: torch.select_scatter(x, s, dim, index),
        shape,
        src_shape,
    )
    check(lambda x, s: x.T.select_scatter(s, 0, 1), lambda x, s: x.T.select_scatter(s, 0, 1), (2, 3), (2,))


@pytest.mark.parametrize(
    "dim, start, end, step, src_cols",
    [
        (1, None, None, 1, 3),
        (1, 1, None, 1, 2),
        (1, 0, None, 2, 2),
        (1, -1, None, 1, 1),
        (1, -10, 10, 1, 3),
        (1, 5, None, 1, 0),
        (0, 0, 1, 1, None),
    ],
)
def test_slice_scatter_matches_torch(dim: int, start: Any, end: Any, step: int, src_cols: Any) -> None:
    src_shape = (2, src_cols) if dim == 1 else (1, 3)
    check(
        lambda x, s: ds.slice_scatter(x, s, dim, start, end, step),
        lambda x, s: torch.slice_scatter(x, s, dim, start, end, step),
        (2, 3),
        src_shape,
    )


@pytest.mark.parametrize(
    "shape, src_shape, offset, dim1, dim2",
    [
        ((2, 3), (2,), 0, 0, 1),
        ((2, 3), (2,), 1, 0, 1),
        ((2, 3), (1,), -1, 0, 1),
        ((2, 3), (0,), 5, 0, 1),
        ((2, 3, 4), (3, 2), 0, 0, 2),
        ((2, 3, 4), (2, 2), 1, -1, 1),
    ],
)
def test_diagonal_scatter_matches_torch(shape: Any, src_shape: Any, offset: int, dim1: int, dim2: int) -> None:
    check(
        lambda x, s: ds.diagonal_scatter(x, s, offset, dim1, dim2),
        lambda x, s: torch.diagonal_scatter(x, s, offset, dim1, dim2),
        shape,
        src_shape,
    )
    check(lambda x, s: x.T.diagonal_scatter(s), lambda x, s: x.T.diagonal_scatter(s), (3, 2), (2,))


def test_scatter_ops_cast_src_to_the_input_dtype_and_its_gradient_back() -> None:
    x = ds.zeros(2, 3)
    s = ds.ones(3, dtype=ds.float64, requires_grad=True)
    y = ds.select_scatter(x, s, 0, 1)
    assert y.dtype == ds.float32
    y.sum().backward()
    assert s.grad.dtype == ds.float64 and s.grad.tolist() == [1.0, 1.0, 1.0]
    same(
        ds.slice_scatter(ds.zeros(2, 3), ds.ones(2, 1, dtype=ds.int64), 1, 2),
        torch.slice_scatter(torch.zeros(2, 3), torch.ones(2, 1, dtype=torch.int64), 1, 2),
    )


def test_scatter_ops_bad_arguments() -> None:
    x = ds.ones(2, 3)
    one_line_error(OutOfRangeError, lambda: ds.select_scatter(x, ds.ones(2), 1, 3), "index 3 out of range")
    one_line_error(
        ShapeError, lambda: ds.select_scatter(x, ds.ones(1, 3), 0, 1), "src size = (1, 3), slice size = (3,)"
    )
    one_line_error(OutOfRangeError, lambda: ds.select_scatter(ds.tensor(1.0), ds.tensor(2.0), 0, 0), "0-dim")
    one_line_error(ShapeError, lambda: ds.slice_scatter(x, ds.ones(1, 3)), "slice size = (2, 3)")
    one_line_error(ArgumentError, lambda: ds.slice_scatter(x, ds.ones(2, 2), 1, 0, 3, 0), "positive")
    one_line_error(OutOfRangeError, lambda: ds.slice_scatter(ds.tensor(1.0), ds.tensor(2.0)), "0-dim")
    one_line_error(ShapeError, lambda: ds.diagonal_scatter(x, ds.ones(3)), "slice size = (2,)")
    one_line_error(ArgumentError, lambda: ds.diagonal_scatter(x, ds.ones(2), 0, 1, 1), "identical")
    one_line_error(OutOfRangeError, lambda: ds.diagonal_scatter(ds.ones(3), ds.ones(3)), "out of range")


def test_results_are_copies_as_in_torch() -> None:
    """A write into the result of these ops leaves the input alone (torch returns new tensors)."""
    for op in (ds.rot90, ds.fliplr, ds.flipud, lambda t: t.rot90(2), ds.msort):
        x = ds.zeros(2, 3)
        op(x).add_(1.0)
        assert x.tolist() == [[0.0] * 3] * 2
