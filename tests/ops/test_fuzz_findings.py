"""Differences from PyTorch that a differential fuzzer found in the core ops, each checked against torch
(values, dtypes, shapes, gradients, and which calls it refuses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError, DownslopeError, InvalidValueError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _same(d: Any, t: Any) -> None:
    """A downslope result equals torch's: shape, dtype name and values (NaN where torch has NaN)."""
    assert tuple(d.shape) == tuple(t.shape)
    assert str(d.dtype).replace("torch.", "") == str(t.dtype).replace("torch.", "")
    np.testing.assert_array_equal(d.detach().numpy(), t.detach().numpy())


def _both(fn: Callable[[Any], Any]) -> tuple[Any, Any]:
    return fn(ds), fn(torch)


# roll: a dim named twice is rolled by the sum of its shifts
@pytest.mark.parametrize(
    "shape, shifts, dims", [((3,), (1, 1), (0, 0)), ((2, 3), (1, -2), (1, -1)), ((2, 3), (1, 2, -1), (0, 1, 0))]
)
def test_roll_repeated_dims_add_their_shifts(
    shape: tuple[int, ...], shifts: tuple[int, ...], dims: tuple[int, ...]
) -> None:
    _same(*_both(lambda L: L.roll(L.arange(int(np.prod(shape))).reshape(shape), shifts, dims)))


def test_roll_refuses_shifts_and_dims_of_other_lengths() -> None:
    with pytest.raises(RuntimeError):
        torch.roll(torch.arange(3), (1, 2), (0,))
    with pytest.raises(ShapeError, match="roll: shifts and dims must align"):
        ds.roll(ds.arange(3), (1, 2), (0,))


# ds.tensor of a list of tensors: their common dtype
@pytest.mark.parametrize(
    "make",
    [
        lambda L: [L.tensor(0.1, dtype=L.float64), L.tensor(0.1, dtype=L.float64) + 1e-9],
        lambda L: [L.tensor(0.1, dtype=L.float64), 1.5],
        lambda L: [[L.tensor(0.1, dtype=L.float64)], [L.tensor(2.0, dtype=L.float64)]],
        lambda L: [L.tensor(3, dtype=L.int32), L.tensor(2.0, dtype=L.float16)],
        lambda L: [L.tensor(3, dtype=L.int32), 2],
        lambda L: [L.tensor(3, dtype=L.int32), L.tensor(4, dtype=L.int32)],
        lambda L: [L.tensor(1.0, dtype=L.float16), 2.5],
        lambda L: [L.tensor(0.1, dtype=L.float64), L.tensor(3, dtype=L.int32)],
    ],
)
def test_tensor_from_list_of_tensors_takes_their_common_dtype(make: Callable[[Any], Any]) -> None:
    _same(ds.tensor(make(ds)), torch.tensor(make(torch)))


# ds.tensor(data, dtype=<integer>) refuses values that do not fit, as torch
@pytest.mark.parametrize(
    "data, dtype",
    [([257, -1], "uint8"), ([1e10], "int32"), ([300], "int8"), ([-256], "uint8"), (-1.0, "uint8"),
     (float("nan"), "int32"), ([-128.9], "int8"), ([[1, 2], [3, 2**31]], "int32")],
)  # fmt: skip
def test_tensor_with_integer_dtype_refuses_overflow(data: Any, dtype: str) -> None:
    with pytest.raises(RuntimeError, match="without overflow"):
        torch.tensor(data, dtype=getattr(torch, dtype))
    with pytest.raises(InvalidValueError, match=f"cannot be converted to {dtype} without overflow"):
        ds.tensor(data, dtype=getattr(ds, dtype))


@pytest.mark.parametrize(
    "data, dtype", [([-1], "uint8"), ([-255, 255], "uint8"), ([1.5, -2.7], "int32"), ([True, 2], "uint8"),
                    ([127, -128], "int8"), ([2**31 - 1], "int32")],
)  # fmt: skip
def test_tensor_with_integer_dtype_keeps_what_fits(data: Any, dtype: str) -> None:
    _same(ds.tensor(data, dtype=getattr(ds, dtype)), torch.tensor(data, dtype=getattr(torch, dtype)))


# inner of >= 3-d tensors: every pair of rows
@pytest.mark.parametrize("sa, sb", [((2, 1, 3), (2, 1, 3)), ((2, 3), (4, 1, 3)), ((4, 2, 3), (3,)), ((3,), (2, 2, 3)),
                                     ((2, 2, 3), (5, 3)), ((3,), (3,)), ((2, 3), (4, 3))])  # fmt: skip
def test_inner_contracts_the_last_dims(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    da, db = ds.tensor(a, dtype=ds.float64, requires_grad=True), ds.tensor(b, dtype=ds.float64, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out_d, out_t = ds.inner(da, db), torch.inner(ta, tb)
    assert out_d.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-12)
    (out_d * out_d).sum().backward()
    (out_t * out_t).sum().backward()
    np.testing.assert_allclose(da.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(db.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


# integer dtype= of prod and nansum; 0-d integer scans and prod(dim) are int64
@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.tensor([3, 1, 4]).prod(dtype=L.int16),
        lambda L: L.prod(L.tensor([3, 1, 4]), dtype=L.int32),
        lambda L: L.tensor(False).prod(dtype=L.int8),
        lambda L: L.nansum(L.tensor([[-7], [5]], dtype=L.int32), 0, dtype=L.int32),
        lambda L: L.nansum(L.tensor([1, 2], dtype=L.uint8)),
        lambda L: L.nansum(L.tensor([1.0, float("nan"), 2.0]), dtype=L.float64),
        lambda L: L.nanmean(L.tensor([1.0, float("nan"), 2.0]), dtype=L.float64),
        lambda L: L.cumsum(L.tensor(7, dtype=L.uint8), 0),
        lambda L: L.cumprod(L.tensor(7, dtype=L.uint8), 0),
        lambda L: L.tensor(7, dtype=L.uint8).prod(0),
        lambda L: L.tensor(True).cumsum(0),
        lambda L: L.cumsum(L.tensor(7, dtype=L.int32), 0, dtype=L.int16),
        lambda L: L.cumsum(L.tensor(7.5), 0),
    ],
)
def test_reduction_and_scan_dtypes(fn: Callable[[Any], Any]) -> None:
    _same(*_both(fn))


# xlogy, addcmul/addcdiv, float_power, ldexp: computed in the result dtype
def test_xlogy_computes_in_the_result_dtype() -> None:
    a, b = [-7.0, 3.0, 5.0], [2.0, 3.0, 4.0]
    for da, db in (("float32", "float16"), ("float64", "float32"), ("float16", "float64")):
        xd = ds.tensor(a, dtype=getattr(ds, da), requires_grad=True)
        yd = ds.tensor(b, dtype=getattr(ds, db), requires_grad=True)
        xt = torch.tensor(a, dtype=getattr(torch, da), requires_grad=True)
        yt = torch.tensor(b, dtype=getattr(torch, db), requires_grad=True)
        out_d, out_t = ds.xlogy(xd, yd), torch.xlogy(xt, yt)
        _same(out_d, out_t)
        out_d.sum().backward()
        out_t.sum().backward()
        np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.addcmul(L.tensor([4.1], dtype=L.float64), L.tensor([0.683], dtype=L.float16),
                            L.tensor([0.683], dtype=L.float16), value=0.5),
        lambda L: L.addcmul(L.tensor([1, 2], dtype=L.int32), L.tensor([True, False]), L.tensor([True, True])),
        lambda L: L.addcmul(L.tensor(1.0, dtype=L.float64), L.tensor([3], dtype=L.int32), L.tensor([7], dtype=L.int16)),
        lambda L: L.addcdiv(L.tensor([1.0], dtype=L.float64), L.tensor([3.0], dtype=L.float16),
                            L.tensor([7.0], dtype=L.float16), value=0.3),
        lambda L: L.addcmul(L.tensor([1.0, 2.0]), L.tensor([3.0, 4.0]), L.tensor([5.0, 6.0]), value=2),
    ],
)  # fmt: skip
def test_addcmul_addcdiv_compute_in_the_common_dtype(fn: Callable[[Any], Any]) -> None:
    _same(*_both(fn))


def test_addcdiv_still_refuses_integer_division() -> None:
    with pytest.raises(RuntimeError):
        torch.addcdiv(torch.tensor([1.0]), torch.tensor([3]), torch.tensor([2]))
    with pytest.raises(DownslopeError, match="integer division"):
        ds.addcdiv(ds.tensor([1.0]), ds.tensor([3]), ds.tensor([2]))


@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.float_power(0.001, L.tensor([-1.0, -0.8345])),
        lambda L: L.float_power(L.tensor([0.3, 2.0]), 0.1),
        lambda L: L.float_power(3, L.tensor([2, -1])),
        lambda L: L.ldexp(L.tensor([1.0, 1.5], dtype=L.float16), L.tensor([3, -1])),
        lambda L: L.ldexp(L.tensor(1.0, dtype=L.float64), L.tensor([3, -1])),
        lambda L: L.ldexp(L.tensor([1, 2]), L.tensor(2.0, dtype=L.float16)),
        lambda L: L.ldexp(L.tensor([2.0**-20], dtype=L.float16), L.tensor([20])),
        lambda L: L.ldexp(L.tensor([3], dtype=L.int32), L.tensor([2])),
        lambda L: L.ldexp(L.tensor([1.0]), L.tensor(2.0, dtype=L.float64)),
        lambda L: L.ldexp(L.tensor([1.0, 3.0]), L.tensor([2, 5])),
    ],
)
def test_float_power_and_ldexp_dtypes_and_values(fn: Callable[[Any], Any]) -> None:
    _same(*_both(fn))


def test_ldexp_float16_gradient_matches_torch() -> None:
    # non-negative exponents: torch's own float16 gradient at a negative integer exponent is 0 (2 ** -1
    # taken in integers), where the derivative is 2 ** e
    xd = ds.tensor([1.5, -2.0], dtype=ds.float16, requires_grad=True)
    xt = torch.tensor([1.5, -2.0], dtype=torch.float16, requires_grad=True)
    ds.ldexp(xd, ds.tensor([3, 10])).sum().backward()
    torch.ldexp(xt, torch.tensor([3, 10])).sum().backward()
    _same(xd.grad, xt.grad)


# chunk / split / tensor_split of empty dims and 0-d section counts
@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.zeros(0).chunk(3),
        lambda L: L.zeros(2, 0).chunk(2, dim=1),
        lambda L: L.zeros(3, 0).split(1, dim=1),
        lambda L: L.split(L.zeros(0), 2),
        lambda L: L.zeros(0).split(0),
        lambda L: L.arange(7).tensor_split(L.tensor(3)),
        lambda L: L.arange(7).tensor_split(L.tensor([1, 4])),
        lambda L: L.arange(5).chunk(3),
    ],
)
def test_chunk_and_split_pieces(fn: Callable[[Any], Any]) -> None:
    d, t = _both(fn)
    assert len(d) == len(t)
    for a, b in zip(d, t):
        _same(a, b)


@pytest.mark.parametrize("call", ["split0", "tensor_split0"])
def test_split_refusals(call: str) -> None:
    fns = {"split0": lambda L: L.zeros(3).split(0), "tensor_split0": lambda L: L.arange(7).tensor_split(0)}
    with pytest.raises(RuntimeError):
        fns[call](torch)
    with pytest.raises(InvalidValueError):
        fns[call](ds)


# integer addmm-family with float factors: truncated (addr refuses)
@pytest.mark.parametrize("name", ["addmm", "addmv", "baddbmm", "addbmm"])
@pytest.mark.parametrize("kw", [{"beta": 0.5}, {"alpha": 0.5}, {"beta": 1.7, "alpha": 2.9}, {"beta": -0.5}])
def test_integer_fused_products_truncate_float_factors(name: str, kw: dict[str, float]) -> None:
    def call(L: Any) -> Any:
        o = L.ones(2, 2, dtype=L.int64) * 3
        b = L.ones(1, 2, 2, dtype=L.int64) * 3
        args = {"addmm": (o, o, o), "addmv": (o[0], o, o[0]), "baddbmm": (b, b, b), "addbmm": (o, b, b)}[name]
        return getattr(L, name)(*args, **kw)

    _same(*_both(call))


def test_integer_addr_refuses_float_factors() -> None:
    o = [3, 3]
    with pytest.raises(RuntimeError, match="must not be a floating point"):
        torch.addr(torch.ones(2, 2, dtype=torch.int64), torch.tensor(o), torch.tensor(o), beta=0.5)
    with pytest.raises(DownslopeError, match="must not be a floating point"):
        ds.addr(ds.ones(2, 2, dtype=ds.int64), ds.tensor(o), ds.tensor(o), beta=0.5)


# refusals torch makes: tril/triu of a vector, float dims, diff with a negative order
@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.tril(L.tensor([1.0, 2.0, 3.0])),
        lambda L: L.tensor([1.0, 2.0]).triu(),
        lambda L: L.tensor([[3.0, 1.0], [0.0, 5.0]]).argmax(1.7),
        lambda L: L.tensor([[3.0, 1.0], [0.0, 5.0]]).cumprod(0.5),
        lambda L: L.tensor([[3.0, 1.0], [0.0, 5.0]]).prod(1.9),
        lambda L: L.nanmedian(L.tensor([[3.0, 1.0], [0.0, 5.0]]), 0.5),
        lambda L: L.tensor([1.0]).argmax(True),
        lambda L: L.tensor([[3.0, 1.0], [0.0, 5.0]]).diff(-1),
    ],
)
def test_refused_as_torch_refuses(fn: Callable[[Any], Any]) -> None:
    with pytest.raises((TypeError, RuntimeError)):
        fn(torch)
    with pytest.raises(DownslopeError):
        fn(ds)


def test_float_dim_error_names_the_op() -> None:
    with pytest.raises(ArgumentTypeError, match=r"argmax\(\): argument 'dim' must be int, not float"):
        ds.tensor([[3.0, 1.0]]).argmax(1.7)


# crashes and refusals where torch gives a result
@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.cummax(L.zeros(0), 0).values,
        lambda L: L.zeros(2, 0).cummin(1).indices,
        lambda L: L.zeros(0, 3).cummax(0).indices,
        lambda L: L.masked_select(L.tensor(5.0), L.tensor(True)),
        lambda L: L.tensor(2.0).masked_select(L.tensor([True, False])),
        lambda L: L.masked_select(L.tensor(5.0), L.tensor(False)),
        lambda L: L.nn.functional.hardtanh(L.tensor([0.5, -2.0, 3.0]), L.tensor(-1.0), L.tensor(1.0)),
        lambda L: L.tensor([]).median(),
        lambda L: L.zeros(2, 0).median(),
        lambda L: L.nanmedian(L.tensor([])),
        lambda L: L.gather(L.ones(2, 3), 1, L.zeros(0, dtype=L.int64)),
        lambda L: L.gather(L.ones(2, 3), 0, L.zeros(0, 2, 2, dtype=L.int64)),
        lambda L: L.ones(2, 3).scatter(0, L.zeros(0, dtype=L.int64), 1.0),
        lambda L: L.ones(2, 3).scatter(0, L.zeros(0, dtype=L.int64), L.ones(5)),
        lambda L: L.ones(2, 3).scatter_add(0, L.zeros(0, dtype=L.int64), L.ones(0)),
        lambda L: L.ones(2, 3).scatter_reduce(0, L.zeros(0, dtype=L.int64), L.ones(0), "sum"),
        lambda L: L.ones(2, 3, dtype=L.bool).scatter(0, L.zeros(0, dtype=L.int64), True),
    ],
)
def test_results_where_torch_gives_them(fn: Callable[[Any], Any]) -> None:
    _same(*_both(fn))


def test_empty_index_gather_gradient_is_zero() -> None:
    xd, xt = ds.ones(2, 3, requires_grad=True), torch.ones(2, 3, requires_grad=True)
    ds.gather(xd, 1, ds.zeros(0, dtype=ds.int64)).sum().backward()
    torch.gather(xt, 1, torch.zeros(0, dtype=torch.int64)).sum().backward()
    _same(xd.grad, xt.grad)


def test_empty_index_scatter_returns_a_copy() -> None:
    x = ds.ones(2, 3)
    y = x.scatter(0, ds.zeros(0, dtype=ds.int64), 1.0)
    y[0, 0] = 5.0
    assert x[0, 0].item() == 1.0


# gradients at NaN inputs: 0 where torch gives 0
_NAN_CASES: dict[str, Callable[[Any, Any], Any]] = {
    "clamp_min_tensor": lambda L, x: L.clamp(x, min=L.zeros(2, dtype=L.float64)),
    "clamp_max_tensor": lambda L, x: L.clamp(x, max=L.ones(2, dtype=L.float64)),
    "clamp_both_tensors": lambda L, x: L.clamp(x, L.zeros(2, dtype=L.float64), L.ones(2, dtype=L.float64)),
    "clamp_number": lambda L, x: L.clamp(x, min=0.0),
    "hardtanh": lambda L, x: L.nn.functional.hardtanh(x, -0.5, 2.0),
    "abs": lambda L, x: x.abs(),
    "l1_loss_sum": lambda L, x: L.nn.functional.l1_loss(x, L.zeros(2, dtype=L.float64), reduction="sum"),
    "l1_loss_mean": lambda L, x: L.nn.functional.l1_loss(x, L.zeros(2, dtype=L.float64)),
    "margin_ranking_loss": lambda L, x: L.nn.functional.margin_ranking_loss(
        x, L.zeros(2, dtype=L.float64), L.ones(2, dtype=L.float64), reduction="sum"
    ),
    "dist_p1": lambda L, x: L.dist(x, L.zeros(2, dtype=L.float64), p=1),
    "vector_norm_p1": lambda L, x: L.linalg.vector_norm(x, 1),
}


@pytest.mark.parametrize("name", sorted(_NAN_CASES))
def test_gradient_at_nan_input_matches_torch(name: str) -> None:
    fn = _NAN_CASES[name]
    xd = ds.tensor([float("nan"), 0.3], dtype=ds.float64, requires_grad=True)
    xt = torch.tensor([float("nan"), 0.3], dtype=torch.float64, requires_grad=True)
    out_d, out_t = fn(ds, xd), fn(torch, xt)
    np.testing.assert_array_equal(out_d.detach().numpy(), out_t.detach().numpy())
    out_d.sum().backward()
    out_t.sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


def test_abs_gradient_keeps_dtype_and_signs() -> None:
    for name in ("float16", "float32", "float64"):
        vals = [-2.0, 0.0, 3.0, -0.0, float("nan")]
        xd = ds.tensor(vals, dtype=getattr(ds, name), requires_grad=True)
        xt = torch.tensor(vals, dtype=getattr(torch, name), requires_grad=True)
        xd.abs().sum().backward()
        xt.abs().sum().backward()
        _same(xd.grad, xt.grad)


# torch.broadcast_shapes
@pytest.mark.parametrize(
    "shapes", [((2, 1), (1, 3)), (2,), (), ((2, 1), [3]), ((0, 1), (5,)), ((1, 0), (3, 1)), ((2, 1), (1, 3), 3)]
)
def test_broadcast_shapes(shapes: tuple[Any, ...]) -> None:
    d, t = ds.broadcast_shapes(*shapes), torch.broadcast_shapes(*shapes)
    assert isinstance(d, ds.Size)
    assert tuple(d) == tuple(t)


@pytest.mark.parametrize("shapes", [((2,), (3,)), ((2, -1),), (1.5,), ((2.0,),)])
def test_broadcast_shapes_refusals(shapes: tuple[Any, ...]) -> None:
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        torch.broadcast_shapes(*shapes)
    with pytest.raises(DownslopeError):
        ds.broadcast_shapes(*shapes)


# the 2-norm of one element is |x|: its square would overflow float32 (cosine_similarity over a size-1 dim)
@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.linalg.vector_norm(L.tensor([[1e20], [-3.0]]), dim=1),
        lambda L: L.linalg.vector_norm(L.tensor(-2e30)),
        lambda L: L.cosine_similarity(L.tensor([[1e20]]), L.tensor([[2.0]]), dim=1),
        lambda L: L.cosine_similarity(L.tensor([[-1e25], [3.0]]), L.tensor([[2.0], [4.0]]), dim=1),
    ],
)
def test_two_norm_of_one_element(fn: Callable[[Any], Any]) -> None:
    _same(*_both(fn))


def test_two_norm_of_one_element_gradient() -> None:
    xd = ds.tensor([[1e20], [-3.0], [0.0]], requires_grad=True)
    xt = torch.tensor([[1e20], [-3.0], [0.0]], requires_grad=True)
    ds.linalg.vector_norm(xd, dim=1).sum().backward()
    torch.linalg.vector_norm(xt, dim=1).sum().backward()
    _same(xd.grad, xt.grad)


# in-place ops on an expand() that repeats no element: a plain view, written through as torch
def test_inplace_on_expand_that_repeats_nothing() -> None:
    def run(L: Any) -> list[Any]:
        x = L.tensor([[1.0, 2.0, 3.0]])
        x.expand(1, 3).add_(1)
        z = L.ones(3)
        z.expand(1, 1, 3).mul_(2)
        w = L.tensor([1.0, 2.0], requires_grad=True)
        e = (w * 1).expand_as(w)
        e.mul_(3)
        e.sum().backward()
        return [x.tolist(), z.tolist(), w.grad.tolist(), tuple(L.zeros(0, 1).expand(0, 5).shape)]

    assert run(ds) == run(torch)


def test_inplace_on_expand_that_repeats_elements_is_refused() -> None:
    with pytest.raises(RuntimeError, match="single memory location"):
        torch.ones(1, 3).expand(2, 3).add_(1)
    with pytest.raises(DownslopeError, match="single memory location"):
        ds.ones(1, 3).expand(2, 3).add_(1)


def test_nansum_and_nanmean_methods_keep_the_dtype_asked_for() -> None:
    a = np.array([[1, 2], [3, 4]], np.int32)
    assert (
        str(ds.tensor(a).nansum(1, dtype=ds.int32).dtype) == str(torch.tensor(a).nansum(1, dtype=torch.int32).dtype)[6:]
    )
    x = np.array([1.0, np.nan, 2.0], np.float32)
    ours, theirs = ds.tensor(x).nanmean(dtype=ds.float64), torch.tensor(x).nanmean(dtype=torch.float64)
    assert str(ours.dtype) == str(theirs.dtype)[6:] and ours.item() == theirs.item()


@pytest.mark.parametrize("left, right", [(np.int8, np.float16), (np.float16, np.int32), (np.float32, np.float64)])
def test_cosine_similarity_of_mixed_dtypes_is_in_torchs_dtype(left: Any, right: Any) -> None:
    a, b = (
        np.array([[1, 2, 3]], left),
        np.array([[1, 0.5, 2]], right) if right != np.int32 else np.array([[1, 5, 2]], right),
    )
    ours = ds.nn.functional.cosine_similarity(ds.tensor(a, dtype=a.dtype), ds.tensor(b, dtype=b.dtype))
    theirs = torch.nn.functional.cosine_similarity(torch.tensor(a), torch.tensor(b))
    assert str(ours.dtype) == str(theirs.dtype)[6:]
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-3)
