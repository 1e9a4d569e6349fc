"""Ops on edge values (0, -0, -1, inf, NaN, values past float16's range) under
``warnings.simplefilter("error")``: torch computes inf/NaN silently, so no op may raise NumPy's
RuntimeWarning ("divide by zero", "invalid value", "overflow encountered") to the caller. The values
must be those computed with the warnings ignored (a retried op gives the same result), and the
user's NumPy error state is left as it was."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

INF, NAN = math.inf, math.nan
EDGES = [0.0, -0.0, -1.0, 1.0, 0.5, INF, -INF, NAN, 3e38, -3e38, 1e200, 1e-45, 100.0, 1e4, 7e4, -7e4]
DTYPES = ["float16", "float32", "float64"]

UNARY = (
    "abs acos acosh asin asinh atan atanh ceil cos cosh deg2rad exp exp2 expm1 floor frac log log10 log1p "
    "log2 logit neg rad2deg reciprocal relu round rsqrt sigmoid sign sin sinc sinh sqrt square tan tanh trunc"
).split()
BINARY = (
    "add sub mul div true_divide floor_divide remainder fmod pow atan2 hypot maximum minimum fmax fmin "
    "logaddexp logaddexp2 xlogy copysign ldexp float_power"
).split()
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "x + y": lambda x, y: x + y,
    "x - y": lambda x, y: x - y,
    "x * y": lambda x, y: x * y,
    "x / y": lambda x, y: x / y,
    "x // y": lambda x, y: x // y,
    "x % y": lambda x, y: x % y,
    "x ** y": lambda x, y: x**y,
    "2 ** x": lambda x, y: 2.0**x,
    "1 / x": lambda x, y: 1.0 / x,
    "x * 1e5": lambda x, y: x * 1e5,
    "x / 0": lambda x, y: x / 0.0,
}


def _edges(values: list[float], dtype: str) -> Any:
    """The values in ``dtype`` (past float16's range: inf), built quietly: the ops are under test, not this."""
    with np.errstate(over="ignore"):
        return ds.tensor(np.array(values).astype(dtype), dtype=getattr(ds, dtype))  # ds.tensor(ndarray) is float32


def _strict(call: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def _quiet(call: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _same(call: Callable[[], Any]) -> None:
    before = np.geterr()
    got = _strict(call)
    assert np.geterr() == before  # the user's NumPy error state is not changed
    want = _quiet(call)
    if isinstance(got, ds.Tensor):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_ops_on_edge_values_do_not_warn(name: str, dtype: str) -> None:
    x = _edges(EDGES, dtype)
    _same(lambda: getattr(ds, name)(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY)
def test_binary_ops_on_edge_values_do_not_warn(name: str, dtype: str) -> None:
    pairs = list(itertools.product(EDGES, EDGES))
    x = _edges([a for a, _ in pairs], dtype)
    y = _edges([b for _, b in pairs], dtype)
    op = getattr(ds, name)
    _same(lambda: op(x, y))
    for number in (0.0, -1.0, 2.0, INF, 1e5):
        _same(lambda number=number: op(x, number))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPERATORS))
def test_operators_on_edge_values_do_not_warn(name: str, dtype: str) -> None:
    pairs = list(itertools.product(EDGES, EDGES))
    x = _edges([a for a, _ in pairs], dtype)
    y = _edges([b for _, b in pairs], dtype)
    _same(lambda: OPERATORS[name](x, y))


@pytest.mark.parametrize("source", DTYPES)
@pytest.mark.parametrize("target", ["float16", "float32", "int64", "int32", "int8", "uint8", "bool"])
def test_casts_of_edge_values_do_not_warn(source: str, target: str) -> None:
    x = _edges(EDGES, source)
    _same(lambda: x.to(getattr(ds, target)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_at_edge_values_do_not_warn(dtype: str) -> None:
    for name in ("log", "sqrt", "rsqrt", "reciprocal", "acos", "asin", "atanh", "acosh", "log2", "log10", "logit"):

        def call(name: str = name) -> Any:
            x = ds.tensor([0.0, 1.0, -1.0, INF], dtype=dtype, requires_grad=True)
            getattr(ds, name)(x).backward(ds.ones_like(x))  # not .sum(): inf + -inf there is sum's own case
            return x.grad

        _same(call)


def test_the_examples_of_the_issue() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds.log(ds.tensor([0.0])).item() == -INF
        assert ds.tensor([1.0]) / ds.tensor([0.0]) == INF
        assert math.isnan((ds.tensor([0.0]) / ds.tensor([0.0])).item())
        assert ds.exp(ds.tensor([100.0])).item() == INF
        assert math.isnan(ds.sqrt(ds.tensor([-1.0])).item())
        assert ds.tensor([1e5], dtype=ds.float64).to(ds.float16).item() == INF


# ---------------------------------------------------------------- in-place ops
# In-place ops write into the tensor's own array (NumPy's out=): NumPy checks its floating-point flags
# after the loop, so under an "error" filter the whole result is written before the exception, which
# the op then drops. The values must be those of the quiet run on contiguous and strided tensors.

INPLACE_UNARY = (
    "abs_ acos_ acosh_ asin_ asinh_ atan_ atanh_ ceil_ cos_ cosh_ deg2rad_ erf_ erfc_ erfinv_ exp2_ exp_ expm1_ "
    "fix_ floor_ frac_ i0_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ rad2deg_ reciprocal_ relu_ round_ "
    "rsqrt_ sgn_ sigmoid_ sign_ sin_ sinc_ sinh_ sqrt_ square_ tan_ tanh_ trunc_"
).split()
# lgamma and digamma compute in float64 and cast back (ops/special.py), a cast that can overflow
INPLACE_UNARY_CASES = [
    pytest.param(n, d, id=f"{n}-{d}") for n in [*INPLACE_UNARY, "lgamma_", "digamma_"] for d in DTYPES
]
INPLACE_BINARY = (
    "add_ sub_ mul_ div_ true_divide_ floor_divide_ remainder_ fmod_ pow_ atan2_ hypot_ copysign_ ldexp_ "
    "xlogy_ logaddexp_ nextafter_ heaviside_ clamp_min_ clamp_max_"
).split()


def _iop(name: str) -> Callable[[Any, Any], Any]:
    def apply(x: Any, y: Any) -> Any:
        if name == "+=":
            x += y
        elif name == "-=":
            x -= y
        elif name == "*=":
            x *= y
        elif name == "/=":
            x /= y
        elif name == "//=":
            x //= y
        elif name == "%=":
            x %= y
        else:
            x **= y
        return x

    return apply


INPLACE_OPERATORS = ["+=", "-=", "*=", "/=", "//=", "%=", "**="]
LAYOUTS = ["contiguous", "strided", "column"]


def _laid_out(values: Any, layout: str) -> Any:
    """A fresh tensor holding ``values`` (1-d): its own array, every other element of a longer one, or
    a column of a matrix (a strided view either way)."""
    if layout == "contiguous":
        return values.clone()
    if layout == "strided":
        wide = ds.zeros(2 * values.shape[0], dtype=values.dtype)
        wide[::2] = values
        return wide[::2]
    matrix = ds.zeros(values.shape[0], 3, dtype=values.dtype)
    matrix[:, 1] = values
    return matrix[:, 1]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("name", "dtype"), INPLACE_UNARY_CASES)
def test_inplace_unary_ops_on_edge_values_do_not_warn(name: str, dtype: str, layout: str) -> None:
    x = _edges(EDGES, dtype)
    _same(lambda: getattr(_laid_out(x, layout), name)())


def _pairs(dtype: str) -> tuple[Any, Any]:
    pairs = list(itertools.product(EDGES, EDGES))
    return _edges([a for a, _ in pairs], dtype), _edges([b for _, b in pairs], dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", INPLACE_BINARY)
def test_inplace_binary_ops_on_edge_values_do_not_warn(name: str, dtype: str, layout: str) -> None:
    x, y = _pairs(dtype)
    numbers = [0.0, -1.0, 2.0, INF, -INF] + ([] if name.startswith("clamp") and dtype == "float16" else [1e5])
    others = [y, _laid_out(y, layout), ds.tensor(INF, dtype=x.dtype), ds.tensor(0.0, dtype=x.dtype), *numbers]
    for other in others:  # (1e5 into float16 is refused by clamp, as by torch)
        _same(lambda other=other: getattr(_laid_out(x, layout), name)(other))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", INPLACE_OPERATORS)
def test_inplace_operators_on_edge_values_do_not_warn(name: str, dtype: str, layout: str) -> None:
    x, y = _pairs(dtype)
    for other in (y, 0.0, INF, 1e5):
        _same(lambda other=other: _iop(name)(_laid_out(x, layout), other))


@pytest.mark.parametrize("name", ["add_", "sub_", "mul_", "div_"])
def test_inplace_op_with_a_float64_number_tensor_past_float32s_range_does_not_warn(name: str) -> None:
    # torch computes float32.add_(tensor(1e300, float64)) in float32: the operand is inf there
    x = _edges(EDGES, "float32")
    _same(lambda: getattr(x.clone(), name)(ds.tensor(1e300, dtype=ds.float64)))


def test_out_of_place_op_with_a_float64_number_tensor_past_float32s_range_does_not_warn() -> None:
    x = _edges(EDGES, "float32")
    _same(lambda: ds.remainder(x, ds.tensor(1e300, dtype=ds.float64)))


def test_an_inplace_op_that_warned_still_counts_as_a_write_for_autograd() -> None:
    # not recorded (no_grad), but a write: the exp's saved output changed, so its backward refuses, as torch's
    x = ds.tensor([-INF, 0.0], requires_grad=True)
    y = x.exp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ds.no_grad():
            y.log_()  # log(0) = -inf
    assert y._version == 1
    assert y.tolist() == [-INF, 0.0]
    with pytest.raises(ds.errors.StateError, match="modified by an inplace operation"):
        y.sum().backward()


def test_recorded_inplace_ops_on_edge_values_match_torch() -> None:
    torch = pytest.importorskip("torch")
    values = [0.0, 1.0, -1.0, 2.0, INF, 1e30]

    def run(lib: Any) -> tuple[Any, Any]:
        x = lib.tensor(values, requires_grad=True)
        y = x * 1
        y.log_()
        y.div_(0.0)
        y.mul_(1e30)
        y.exp_()  # last: its gradient reads its output
        y.sum().backward()
        return y.detach().numpy(), x.grad.numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = run(ds)
    theirs = run(torch)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- reductions
# Sums over inf and -inf (NaN), sums and squares past the range (inf), over every path: small tensors
# (a few elements, rows of a small matrix), sums by product with ones (1024 elements and more), and long
# float32 sums accumulated in float64.

REDUCTIONS: dict[str, Callable[[Any, Any], Any]] = {
    "sum": lambda x, d: x.sum() if d is None else x.sum(d),
    "mean": lambda x, d: x.mean() if d is None else x.mean(d),
    "nansum": lambda x, d: ds.nansum(x) if d is None else ds.nansum(x, d),
    "var": lambda x, d: x.var() if d is None else x.var(d),
    "std": lambda x, d: x.std() if d is None else x.std(d),
    "var biased": lambda x, d: x.var(d, unbiased=False),
    "var_mean": lambda x, d: ds.var_mean(x, d)[0],
    "norm": lambda x, d: x.norm(dim=d),
    "norm 1": lambda x, d: x.norm(p=1, dim=d),
    "norm 3": lambda x, d: x.norm(p=3, dim=d),
    "norm inf": lambda x, d: x.norm(p=INF, dim=d),
    "norm 0.5": lambda x, d: x.norm(p=0.5, dim=d),
    "prod": lambda x, d: x.prod() if d is None else x.prod(d),
    "cumsum": lambda x, d: x.cumsum(0 if d is None else d),
    "cumprod": lambda x, d: x.cumprod(0 if d is None else d),
    "logsumexp": lambda x, d: ds.logsumexp(x, tuple(range(x.ndim)) if d is None else d),
}
REDUCTION_CASES = list(REDUCTIONS)
SHAPES = [(4,), (16, 16), (64, 64), (2, 4096)]


def _reduction_cases() -> list[Any]:
    cases = []
    for name in REDUCTIONS:
        for dtype in DTYPES:
            for shape in SHAPES:
                # float32/float64 sums of 1024 or more elements run as products with ones (BLAS)
                cases.append(pytest.param(name, dtype, shape, id=f"{name}-{dtype}-{shape}"))
    return cases


def _hostile(shape: tuple[int, ...], dtype: str) -> Any:
    """EDGES over and over in a fixed shuffled order, so that rows and columns mix inf, -inf and large values."""
    if shape == (4,):
        return _edges([INF, -INF, 3e38, 100.0], dtype)
    values = np.random.default_rng(0).permutation(np.resize(np.array(EDGES), math.prod(shape)))
    return _edges(list(values), dtype).reshape(shape)


@pytest.mark.parametrize(("name", "dtype", "shape"), _reduction_cases())
def test_reductions_of_edge_values_do_not_warn(name: str, dtype: str, shape: tuple[int, ...]) -> None:
    x = _hostile(shape, dtype)
    for dim in [None, *range(len(shape))]:
        _same(lambda dim=dim: REDUCTIONS[name](x, dim))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REDUCTION_CASES)
def test_gradients_of_reductions_at_edge_values_do_not_warn(name: str, dtype: str) -> None:
    def call() -> Any:
        x = ds.tensor(_hostile((16, 16), dtype).numpy(), dtype=getattr(ds, dtype), requires_grad=True)
        y = REDUCTIONS[name](x, 0)
        y.backward(ds.ones_like(y))
        return x.grad

    _same(call)


@pytest.mark.parametrize("dtype", DTYPES)
def test_square_and_variance_past_the_range_are_inf_as_torch(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    big = {"float16": 300.0, "float32": 3e20, "float64": 3e160}[dtype]
    values = [[big, -big, 0.0], [INF, -INF, 1.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = ds.tensor(values, dtype=getattr(ds, dtype))
        ours = [ds.square(x), x.var(1), x.var(), x.norm(dim=1), x.sum(1)]
    t = torch.tensor(values, dtype=getattr(torch, dtype))
    theirs = [torch.square(t), t.var(1), t.var(), t.norm(dim=1), t.sum(1)]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
