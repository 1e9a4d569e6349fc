"""Every basic op against PyTorch: values, dtype, shape and gradients, over hypothesis-drawn shapes
(broadcasting included) in float32 and float64, plus finite-difference checks in float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import downslope as ds

torch = pytest.importorskip("torch")
F = torch.nn.functional

# The core parity tests run on the host and on the strict stand-in for a GPU (NumPy behind CuPy's
# wall: any host conversion or host-made array meeting its arrays raises), so every run proves that
# the ops and their rules take their namespace from the data.
DEVICES = ("cpu", "strict")

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)
DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)
NONEMPTY_SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4)


def uniform(seed: int, shape: tuple[int, ...], dtype: type, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def nonzero(seed: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Values in +-[0.5, 2]: safe denominators."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


# ---------------------------------------------------------------------- binary arithmetic
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (ds.maximum, torch.maximum),
    "minimum": (ds.minimum, torch.minimum),
    "ds.add": (ds.add, torch.add),
    "ds.sub": (ds.sub, torch.sub),
    "ds.mul": (ds.mul, torch.mul),
    "ds.div": (ds.div, torch.div),
    "ds.pow": (ds.pow, torch.pow),
}


def binary_inputs(name: str, seed: int, shapes: tuple, dtype: type) -> list[np.ndarray]:
    sa, sb = shapes
    if name.endswith("pow"):  # positive base so that d/db = a^b log a exists
        return [uniform(seed, sa, dtype, 0.5, 2.0), uniform(seed + 1, sb, dtype, -2.0, 2.0)]
    if name.endswith("div"):
        return [uniform(seed, sa, dtype), nonzero(seed + 1, sb, dtype)]
    return [uniform(seed, sa, dtype), uniform(seed + 1, sb, dtype)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(shapes=PAIRS, dtype=DTYPES, seed=SEEDS)
def test_binary_tensor_tensor_broadcasting(check_op, device, name, shapes, dtype, seed):
    ours, theirs = BINARY[name]
    check_op(ours, theirs, binary_inputs(name, seed, shapes.input_shapes, dtype), seed=seed, device=device)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize("scalar", [2.5, -1.5, 3, np.float64(0.75)])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_with_python_scalar_keeps_tensor_dtype(check_op, name, scalar, side, dtype):
    ours, theirs = BINARY[name]
    if side == "right":
        x = uniform(1, (3, 4), dtype, 0.5, 2.0) if name == "pow" else uniform(1, (3, 4), dtype)
        # a float32 tensor op a python/np.float64 scalar stays float32 (no float64 creep)
        out = check_op(lambda t: ours(t, scalar), lambda t: theirs(t, float(scalar)), [x])
    else:
        if name == "pow" and scalar < 0:
            scalar = -scalar  # scalar ** x needs a positive base
        x = nonzero(2, (3, 4), dtype) if name == "div" else uniform(2, (3, 4), dtype)
        out = check_op(lambda t: ours(scalar, t), lambda t: theirs(float(scalar), t), [x])
    assert out.dtype == dtype


@pytest.mark.parametrize("exponent", [2, 3, 2.0, -1, 0.5])
def test_pow_of_negative_base_with_integer_exponent(check_op, exponent):
    base = nonzero(3, (5,), np.float64)
    if exponent == 0.5:
        base = np.abs(base)
    check_op(lambda t: t**exponent, lambda t: t**exponent, [base])


def test_pow_with_zero_exponent_has_zero_gradient_at_zero_base(check_op):
    x = np.array([0.0, 1.5, -2.0])
    check_op(lambda t: t**0, lambda t: t**0, [x])
    check_op(lambda t, e: t**e, lambda t, e: t**e, [np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.0])])


def test_float32_tensor_with_float64_array_stays_float32():
    x = ds.tensor(np.ones((2, 3)), dtype="float32", requires_grad=True)
    other = np.full((2, 3), 2.0)  # float64
    for out in (x * other, other * x, x + other, other - x, x / other, other / x, x * np.float64(2.0)):
        assert out.dtype == np.float32, out


@pytest.mark.parametrize("op", [ds.add, ds.sub, ds.mul, ds.div, ds.pow, ds.maximum, ds.minimum])
def test_binary_ops_with_shapes_that_do_not_broadcast_name_the_op_and_both_shapes(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}: shapes \(3, 4\) and \(3,\) do not broadcast"):
        op(ds.randn(3, 4), ds.randn(3))
    with pytest.raises(ValueError, match=r"where: shapes \(2,\) and \(3,\)"):
        ds.where(ds.randn(2) > 0, ds.randn(3), 1.0)


def test_integer_division_gives_default_float_like_torch(check_op):
    a = np.array([[1, 2, 3], [4, 5, 7]])
    b = np.array([2, 4, 3])
    check_op(lambda x, y: x / y, lambda x, y: x / y, [a, b])
    check_op(lambda x: x / 2, lambda x: x / 2, [a])
    check_op(lambda x: x * 2.5, lambda x: x * 2.5, [a])
    check_op(lambda x: x + 1, lambda x: x + 1, [a])


# ---------------------------------------------------------------------- unary elementwise
def _away(values: np.ndarray, kinks, gap: float = 0.05) -> np.ndarray:
    out = values.copy()
    for k in kinks:
        near = np.abs(out - k) < gap
        out[near] = k + np.where(out[near] >= k, 2 * gap, -2 * gap)
    return out


UNARY = {
    "neg": (lambda t: -t, lambda t: -t, (-2, 2), ()),
    "ds.neg": (ds.neg, torch.neg, (-2, 2), ()),
    "exp": (ds.exp, torch.exp, (-3, 3), ()),
    "log": (ds.log, torch.log, (0.1, 4), ()),
    "sqrt": (ds.sqrt, torch.sqrt, (0.1, 4), ()),
    "abs": (ds.abs, torch.abs, (-2, 2), (0.0,)),
    "abs_builtin": (lambda t: abs(t), lambda t: abs(t), (-2, 2), (0.0,)),
    "tanh": (ds.tanh, torch.tanh, (-3, 3), ()),
    "sigmoid": (ds.sigmoid, torch.sigmoid, (-6, 6), ()),
    "sin": (ds.sin, torch.sin, (-3, 3), ()),
    "cos": (ds.cos, torch.cos, (-3, 3), ()),
    "relu": (ds.relu, torch.relu, (-2, 2), (0.0,)),
    "leaky_relu": (ds.leaky_relu, F.leaky_relu, (-2, 2), (0.0,)),
    "leaky_relu_0.2": (lambda t: ds.leaky_relu(t, 0.2), lambda t: F.leaky_relu(t, 0.2), (-2, 2), (0.0,)),
    "gelu": (ds.gelu, F.gelu, (-3, 3), ()),
    "gelu_tanh": (lambda t: ds.gelu(t, approximate="tanh"), lambda t: F.gelu(t, approximate="tanh"), (-3, 3), ()),
    "softplus": (ds.softplus, F.softplus, (-5, 5), ()),
    "softplus_beta": (
        lambda t: ds.softplus(t, beta=2.0, threshold=3.0),
        lambda t: F.softplus(t, beta=2.0, threshold=3.0),
        (-3, 3),
        (1.5,),  # the switch to linear at beta*x = threshold is a kink
    ),
    "elu": (ds.elu, F.elu, (-3, 3), (0.0,)),
    "elu_alpha": (lambda t: ds.elu(t, alpha=0.5), lambda t: F.elu(t, alpha=0.5), (-3, 3), (0.0,)),
    "clip": (lambda t: ds.clip(t, -0.5, 1.0), lambda t: torch.clamp(t, -0.5, 1.0), (-2, 2), (-0.5, 1.0)),
    "clip_min": (lambda t: t.clip(min=-0.5), lambda t: t.clip(min=-0.5), (-2, 2), (-0.5,)),
    "clamp_max": (lambda t: t.clamp(max=0.3), lambda t: t.clamp(max=0.3), (-2, 2), (0.3,)),
    "erf": (ds.erf, torch.erf, (-2, 2), ()),
    "expm1": (ds.ops.expm1, torch.expm1, (-2, 2), ()),
    "method_exp": (lambda t: t.exp(), lambda t: t.exp(), (-2, 2), ()),
    "method_log": (lambda t: t.log(), lambda t: t.log(), (0.2, 3), ()),
    "method_sqrt": (lambda t: t.sqrt(), lambda t: t.sqrt(), (0.2, 3), ()),
    "method_tanh": (lambda t: t.tanh(), lambda t: t.tanh(), (-2, 2), ()),
    "method_sigmoid": (lambda t: t.sigmoid(), lambda t: t.sigmoid(), (-2, 2), ()),
    "method_relu": (lambda t: t.relu(), lambda t: t.relu(), (-2, 2), (0.0,)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", UNARY)
@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=SEEDS)
def test_unary(check_op, device, name, shape, dtype, seed):
    ours, theirs, (low, high), kinks = UNARY[name]
    x = _away(uniform(seed, shape, np.float64, low, high), kinks).astype(dtype)
    check_op(ours, theirs, [x], seed=seed, device=device)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "sin", "cos", "erf"])
def test_unary_float_function_of_integer_tensor_gives_float32(check_op, name):
    ours, theirs, _, _ = UNARY[name]
    check_op(ours, theirs, [np.array([1, 2, 3, 4])])


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("sigmoid", -40, 40),
        ("softplus", -40, 40),
        ("elu", -1e-3, 1e-3),
        ("exp", -40, 40),
        ("gelu", -1e-3, 1e-3),
        ("expm1", -1e-3, 1e-3),
    ],
)
def test_relative_precision_of_tiny_outputs_in_float32(name, low, high):
    # no absolute floor here: sigmoid(-30) ~ 1e-13 must be right to 1e-5 relative (log(sigmoid) must not be -inf)
    ours_fn, theirs_fn, _, _ = UNARY[name]
    x = np.concatenate([np.linspace(low, high, 101), [-1e-6, 1e-6]]).astype(np.float32)
    x = x[x != 0]
    ours, theirs = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours_fn(ours), theirs_fn(theirs)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=0)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=0)


def test_large_inputs_stay_finite(check_op):
    x = np.array([-800.0, -30.0, 0.5, 30.0, 800.0], dtype=np.float32)
    check_op(ds.sigmoid, torch.sigmoid, [x])
    check_op(ds.softplus, F.softplus, [x])
    check_op(ds.tanh, torch.tanh, [x])


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4), dtype=DTYPES, seed=SEEDS)
def test_clip_with_tensor_bounds_broadcasts_and_ties_go_to_x_like_torch(check_op, shapes, dtype, seed):
    _, slo, shi = shapes.input_shapes
    sx = shapes.result_shape  # (torch's clamp backward fails when the bounds are bigger than x)
    rng = np.random.default_rng(seed)
    # values on a coarse grid so that x often equals a bound exactly (ties), and lo > hi happens too;
    # but not lo == hi, where torch gives no bound any gradient and downslope gives it to one of them
    x, lo, hi = (rng.integers(-3, 4, size=s).astype(dtype) / 2 for s in (sx, slo, shi))
    hi = (hi + 0.25 * (np.broadcast_to(lo, np.broadcast_shapes(lo.shape, hi.shape)) == hi)).astype(dtype)
    check_op(lambda a, b, c: ds.clip(a, b, c), lambda a, b, c: torch.clamp(a, b, c), [x, lo, hi], seed=seed)
    check_op(lambda a, b: a.clip(min=b), lambda a, b: a.clip(min=b), [x, lo], seed=seed)
    check_op(
        lambda a, c: ds.clamp(a, 0.5, c), lambda a, c: torch.clamp(a, torch.tensor(0.5, dtype=a.dtype), c), [x, hi]
    )


def test_clip_with_tensor_bounds_that_do_not_broadcast_names_the_shapes():
    with pytest.raises(ValueError, match=r"clip: shapes \(3, 4\) and \(3,\) do not broadcast"):
        ds.clip(ds.randn(3, 4), ds.randn(3))


# ---------------------------------------------------------------------- where / astype
@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=4), dtype=DTYPES, seed=SEEDS)
def test_where_broadcasts_condition_and_both_branches(check_op, device, shapes, dtype, seed):
    sc, sa, sb = shapes.input_shapes
    cond = np.random.default_rng(seed).random(sc) > 0.5
    a, b = uniform(seed + 1, sa, dtype), uniform(seed + 2, sb, dtype)
    check_op(lambda c, x, y: ds.where(c, x, y), lambda c, x, y: torch.where(c, x, y), [cond, a, b], device=device)


def test_where_with_scalar_branches(check_op):
    cond = np.array([[True, False, True], [False, False, True]])
    x = uniform(0, (2, 3), np.float32)
    check_op(lambda c, t: ds.where(c, t, 0.0), lambda c, t: torch.where(c, t, 0.0), [cond, x])
    check_op(lambda c, t: ds.where(c, 1.5, t), lambda c, t: torch.where(c, 1.5, t), [cond, x])
    out = ds.where(ds.tensor(cond), 1.0, -1.0)
    np.testing.assert_array_equal(out.numpy(), np.where(cond, 1.0, -1.0))
    assert out.dtype == np.float32


@pytest.mark.parametrize(("src", "dst"), [("float32", "float64"), ("float64", "float32"), ("float32", "float32")])
def test_astype_between_floats_passes_gradient(check_op, src, dst):
    x = uniform(0, (3, 2), np.dtype(src))
    check_op(lambda t: t.astype(dst) * 3, lambda t: t.to(getattr(torch, dst)) * 3, [x])
    check_op(lambda t: t.to(dst) * 3, lambda t: t.to(getattr(torch, dst)) * 3, [x])


def test_astype_to_int_is_cut_from_graph():
    x = ds.tensor([1.7, -2.2], requires_grad=True)
    y = x.astype("int64")
    assert y.dtype == np.int64 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), torch.tensor([1.7, -2.2]).long().numpy())
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64 and x.double().float().dtype == np.float32


# ---------------------------------------------------------------------- matmul
MATMUL_CASES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 1, 2, 3), (4, 3, 2)),
    ((3,), (2, 3, 4)),
    ((2, 4, 3), (3,)),
    ((1, 2, 3), (6, 3, 1)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("sa", "sb"), MATMUL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_shapes(check_op, device, sa, sb, dtype, gemm_path):
    a, b = uniform(1, sa, dtype), uniform(2, sb, dtype)
    check_op(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], device=device)
    check_op(ds.matmul, torch.matmul, [a, b], device=device)


@SETTINGS
@given(
    batch=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
    m=st.integers(1, 4),
    k=st.integers(1, 4),
    n=st.integers(1, 4),
    dtype=DTYPES,
    seed=SEEDS,
)
def test_matmul_batched_broadcasting(check_op, batch, m, k, n, dtype, seed, gemm_path):
    ba, bb = batch.input_shapes
    a, b = uniform(seed, ba + (m, k), dtype), uniform(seed + 1, bb + (k, n), dtype)
    check_op(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], seed=seed)


def test_matmul_with_numpy_array_on_the_left(check_op):
    a = uniform(1, (2, 3), np.float64)
    b = uniform(2, (3, 4), np.float32)
    check_op(lambda y: a @ y, lambda y: torch.tensor(a, dtype=torch.float32) @ y, [b])


def test_matmul_incompatible_shapes_names_both():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        ds.randn(2, 3) @ ds.randn(4, 5)
    with pytest.raises(ValueError, match=r"\(2, 2, 3\).*\(3, 3, 4\)"):
        ds.randn(2, 2, 3) @ ds.randn(3, 3, 4)
    with pytest.raises(ValueError, match="at least one dimension"):
        ds.matmul(ds.randn(3), ds.tensor(2.0))


# ---------------------------------------------------------------------- reductions
def _dims(draw, ndim: int):
    kind = draw(st.sampled_from(["int", "tuple"]))
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(dims)


@st.composite
def reduction_case(draw):
    shape = draw(NONEMPTY_SHAPES)
    return shape, _dims(draw, len(shape)), draw(st.booleans()), draw(DTYPES), draw(SEEDS)


def _all(shape):
    return tuple(range(len(shape)))


REDUCTIONS = {
    "sum": (lambda t, d, k: t.sum(d, k), lambda t, d, k: t.sum(d, keepdim=k)),
    "sum_axis": (lambda t, d, k: ds.sum(t, axis=d, keepdims=k), lambda t, d, k: t.sum(d, keepdim=k)),
    "mean": (lambda t, d, k: t.mean(dim=d, keepdim=k), lambda t, d, k: t.mean(d, keepdim=k)),
    "mean_axis": (lambda t, d, k: ds.mean(t, axis=d, keepdims=k), lambda t, d, k: t.mean(d, keepdim=k)),
    # values only, over one or several dims (ties share the gradient)
    "amax": (lambda t, d, k: t.amax(d, k), lambda t, d, k: torch.amax(t, d, keepdim=k)),
    "amax_axis": (lambda t, d, k: ds.amax(t, axis=d, keepdims=k), lambda t, d, k: torch.amax(t, d, keepdim=k)),
    "amin": (lambda t, d, k: t.amin(dim=d, keepdim=k), lambda t, d, k: torch.amin(t, d, keepdim=k)),
    "amin_axis": (lambda t, d, k: ds.amin(t, axis=d, keepdims=k), lambda t, d, k: torch.amin(t, d, keepdim=k)),
    # var/std default to correction=1 (like torch)
    "var": (lambda t, d, k: t.var(d, keepdim=k), lambda t, d, k: t.var(d, keepdim=k)),
    "var_ddof0": (
        lambda t, d, k: ds.var(t, axis=d, keepdims=k, ddof=0),
        lambda t, d, k: t.var(d, keepdim=k, correction=0),
    ),
    "std": (lambda t, d, k: t.std(d, keepdim=k), lambda t, d, k: t.std(d, keepdim=k)),
    "std_correction0": (
        lambda t, d, k: ds.std(t, axis=d, keepdims=k, correction=0),
        lambda t, d, k: t.std(d, keepdim=k, correction=0),
    ),
    "logsumexp": (lambda t, d, k: t.logsumexp(d, k), lambda t, d, k: torch.logsumexp(t, d, keepdim=k)),
    "logsumexp_axis": (
        lambda t, d, k: ds.logsumexp(t, axis=d, keepdims=k),
        lambda t, d, k: torch.logsumexp(t, d, keepdim=k),
    ),
}


def _n_reduced(shape, dims):
    dims = (dims,) if isinstance(dims, int) else dims
    return int(np.prod([shape[d] for d in dims]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", REDUCTIONS)
@SETTINGS
@given(case=reduction_case())
def test_reduction_over_dims(check_op, device, name, case):
    shape, dims, keep, dtype, seed = case
    if name.startswith(("var", "std")) and _n_reduced(shape, dims) < 2:
        dims = _all(shape)  # correction=1 over one element is 0/0 in both libraries
        if _n_reduced(shape, dims) < 2:
            return
    ours, theirs = REDUCTIONS[name]
    x = uniform(seed, shape, dtype)
    check_op(lambda t: ours(t, dims, keep), lambda t: theirs(t, dims, keep), [x], seed=seed, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "logsumexp"])
@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=SEEDS)
def test_reduction_over_everything(check_op, device, name, shape, dtype, seed):
    if name in ("var", "std") and int(np.prod(shape)) < 2:
        return
    x = uniform(seed, shape, dtype)
    all_dims = _all(shape)
    reference = {
        "max": lambda t: t.max(),
        "min": lambda t: t.min(),
        "logsumexp": lambda t: torch.logsumexp(t, all_dims) if all_dims else t,
    }.get(name, lambda t: getattr(t, name)())
    check_op(lambda t: getattr(t, name)(), reference, [x], seed=seed, device=device)


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "logsumexp", "softmax", "log_softmax"])
def test_reductions_of_a_0d_tensor_accept_dim_0_and_minus_1(check_op, name, dim):
    check_op(lambda t: getattr(t, name)(dim), lambda t: getattr(t, name)(dim), [np.array(1.5)])
    if name in ("amax", "amin"):
        check_op(lambda t: t.max(dim).values, lambda t: t.max(dim).values, [np.array(1.5)])


def test_max_min_of_two_tensors_are_elementwise_like_torch(check_op):
    a, b = uniform(0, (2, 3), np.float32), uniform(1, (3,), np.float32)
    check_op(lambda x, y: x.max(y), lambda x, y: x.max(y), [a, b])
    check_op(lambda x, y: ds.min(x, y), lambda x, y: torch.min(x, y), [a, b])


def test_amax_ties_share_the_gradient(check_op):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_op(lambda t: t.amax(1), lambda t: torch.amax(t, 1), [x])
    check_op(lambda t: t.min(), lambda t: torch.amin(t), [x])


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_along_a_dim_return_values_and_indices_like_torch(check_op, name, dim, keepdim):
    x = uniform(3, (4, 5), np.float64)
    check_op(
        lambda t: getattr(t, name)(dim, keepdim).values,
        lambda t: getattr(t, name)(dim, keepdim).values,
        [x],
    )
    ours = getattr(ds, name)(ds.tensor(x), dim=dim, keepdim=keepdim)
    theirs = getattr(torch, name)(torch.tensor(x), dim=dim, keepdim=keepdim)
    values, indices = ours  # unpacks like torch.return_types
    assert type(ours).__name__ == name and ours.indices is indices and ours[0] is values
    np.testing.assert_array_equal(indices.numpy(), theirs.indices.numpy())
    assert indices.dtype == np.int64


def test_max_along_a_dim_sends_the_gradient_to_the_index_only_like_torch(check_op):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [np.nan, 0.0, 1.0]])
    check_op(lambda t: t.max(1).values, lambda t: t.max(1).values, [x[:2]])
    check_op(lambda t: t.min(0).values, lambda t: t.min(0).values, [x[:2]])
    ours, theirs = ds.tensor(x).max(1), torch.tensor(x).max(1)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())  # NaN wins, as in torch
    assert np.isnan(ours.values.numpy()[2])
    with pytest.raises(TypeError, match="amax"):
        ds.tensor(x).max((0, 1))


def test_logsumexp_is_stable_for_large_inputs(check_op):
    x = np.array([[1000.0, 1000.5, -1000.0], [-5.0, 0.0, 5.0]], dtype=np.float32)
    check_op(lambda t: t.logsumexp(1), lambda t: torch.logsumexp(t, 1), [x])
    check_op(lambda t: ds.softmax(t, 1), lambda t: torch.softmax(t, 1), [x])
    check_op(lambda t: ds.log_softmax(t, 1), lambda t: torch.log_softmax(t, 1), [x])


@st.composite
def softmax_case(draw):
    shape = draw(NONEMPTY_SHAPES)
    return shape, draw(st.integers(-len(shape), len(shape) - 1)), draw(DTYPES), draw(SEEDS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "method_softmax", "method_log_softmax"])
@SETTINGS
@given(case=softmax_case())
def test_softmax_family(check_op, device, name, case):
    shape, dim, dtype, seed = case
    x = uniform(seed, shape, dtype, -4, 4)
    plain = name.removeprefix("method_")
    if name.startswith("method"):
        ours = lambda t: getattr(t, plain)(dim)  # noqa: E731
    else:
        ours = lambda t: getattr(ds, plain)(t, dim=dim)  # noqa: E731
    check_op(ours, lambda t: getattr(torch, plain)(t, dim), [x], seed=seed, device=device)
    check_op(
        lambda t: getattr(ds, plain)(t, axis=dim),
        lambda t: getattr(torch, plain)(t, dim),
        [x],
        seed=seed,
        device=device,
    )


def test_reduction_dim_out_of_range_is_an_index_error():
    with pytest.raises(IndexError, match="out of range"):
        ds.randn(2, 3).sum(2)


# ---------------------------------------------------------------------- shape ops
@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=SEEDS, data=st.data())
def test_reshape_flatten_and_views(check_op, shape, dtype, seed, data):
    x = uniform(seed, shape, dtype)
    n = x.size
    target = data.draw(st.sampled_from([(n,), (1, n), (n, 1), (-1,), (1, -1, 1)]))
    check_op(lambda t: t.reshape(target), lambda t: t.reshape(target), [x], seed=seed)
    check_op(lambda t: ds.reshape(t, target), lambda t: torch.reshape(t, target), [x], seed=seed)
    check_op(lambda t: t.view(*target), lambda t: t.reshape(*target), [x], seed=seed)
    check_op(lambda t: t.flatten(), lambda t: t.flatten(), [x], seed=seed)
    if x.ndim >= 2:
        check_op(lambda t: t.flatten(1), lambda t: t.flatten(1), [x], seed=seed)
        check_op(lambda t: ds.flatten(t, 0, -2), lambda t: torch.flatten(t, 0, -2), [x], seed=seed)


@SETTINGS
@given(shape=NONEMPTY_SHAPES, dtype=DTYPES, seed=SEEDS, data=st.data())
def test_transpose_permute_T(check_op, shape, dtype, seed, data):
    x = uniform(seed, shape, dtype)
    nd = len(shape)
    perm = tuple(data.draw(st.permutations(range(nd))))
    d0, d1 = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    check_op(lambda t: t.permute(perm), lambda t: t.permute(perm), [x], seed=seed)
    check_op(lambda t: t.permute(*perm), lambda t: t.permute(*perm), [x], seed=seed)
    check_op(lambda t: ds.permute(t, perm), lambda t: torch.permute(t, perm), [x], seed=seed)
    check_op(lambda t: t.transpose(d0, d1), lambda t: t.transpose(d0, d1), [x], seed=seed)
    check_op(lambda t: ds.transpose(t, d0, d1), lambda t: torch.transpose(t, d0, d1), [x], seed=seed)
    # torch's Tensor.T on >2 dims is deprecated; permute(reversed) is what it means
    check_op(lambda t: t.T, lambda t: t.permute(*reversed(range(nd))), [x], seed=seed)
    if nd >= 2:
        check_op(lambda t: t.mT, lambda t: t.mT, [x], seed=seed)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3), dtype=DTYPES, seed=SEEDS, data=st.data())
def test_squeeze_unsqueeze(check_op, shape, dtype, seed, data):
    x = uniform(seed, shape, dtype)
    nd = len(shape)
    check_op(lambda t: t.squeeze(), lambda t: t.squeeze(), [x], seed=seed)
    if nd:
        d = data.draw(st.integers(-nd, nd - 1))
        check_op(lambda t: t.squeeze(d), lambda t: t.squeeze(d), [x], seed=seed)
        check_op(lambda t: ds.squeeze(t, d), lambda t: torch.squeeze(t, d), [x], seed=seed)
    u = data.draw(st.integers(-nd - 1, nd))
    check_op(lambda t: t.unsqueeze(u), lambda t: t.unsqueeze(u), [x], seed=seed)
    check_op(lambda t: ds.unsqueeze(t, u), lambda t: torch.unsqueeze(t, u), [x], seed=seed)


@st.composite
def join_case(draw):
    shape = list(draw(NONEMPTY_SHAPES))
    nd = len(shape)
    axis = draw(st.integers(-nd, nd - 1))
    count = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    return shape, axis, sizes, draw(DTYPES), draw(SEEDS)


@SETTINGS
@given(case=join_case())
def test_concatenate_and_stack(check_op, case):
    shape, axis, sizes, dtype, seed = case
    cat_shapes = []
    for s in sizes:
        sh = list(shape)
        sh[axis] = s
        cat_shapes.append(tuple(sh))
    parts = [uniform(seed + i, s, dtype) for i, s in enumerate(cat_shapes)]
    check_op(lambda *ts: ds.cat(ts, axis), lambda *ts: torch.cat(ts, axis), parts, seed=seed)
    check_op(lambda *ts: ds.concatenate(list(ts), axis=axis), lambda *ts: torch.cat(ts, axis), parts, seed=seed)
    check_op(lambda *ts: ds.cat(ts, dim=axis), lambda *ts: torch.cat(ts, dim=axis), parts, seed=seed)
    same = [uniform(seed + i, tuple(shape), dtype) for i in range(len(sizes))]
    check_op(lambda *ts: ds.stack(ts, axis), lambda *ts: torch.stack(ts, axis), same, seed=seed)
    check_op(lambda *ts: ds.stack(ts, dim=axis - 1), lambda *ts: torch.stack(ts, dim=axis - 1), same, seed=seed)


def test_cat_of_a_tensor_needing_no_grad(check_op):
    a, b = uniform(0, (2, 3), np.float32), uniform(1, (4, 3), np.float32)
    check_op(lambda x, y: ds.cat([x, y]), lambda x, y: torch.cat([x, y]), [a, b], grad_inputs=[1])


def test_expand_broadcast_to(check_op):
    x = uniform(0, (3, 1), np.float64)
    check_op(lambda t: t.expand(2, 3, 4), lambda t: t.expand(2, 3, 4), [x])
    check_op(lambda t: t.expand(-1, 5), lambda t: t.expand(-1, 5), [x])
    check_op(lambda t: ds.broadcast_to(t, (2, 3, 4)), lambda t: torch.broadcast_to(t, (2, 3, 4)), [x])


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("permute", lambda x: x.permute(0, 3)),  # 3 % 2 would silently mean 1
        ("transpose", lambda x: x.transpose(0, 2)),
        ("flatten", lambda x: x.flatten(2)),
        ("gather", lambda x: x.gather(-3, (ds if isinstance(x, ds.Tensor) else torch).tensor([[0]]))),
        ("concatenate", lambda x: ds.cat([x, x], 2)),
        ("stack", lambda x: ds.stack([x, x], -4)),
        ("squeeze", lambda x: x.squeeze(2)),
        ("softmax", lambda x: x.softmax(2)),
    ],
)
def test_dimension_out_of_range_is_refused_like_torch(name, call):
    with pytest.raises(IndexError):
        call(torch.zeros(2, 3))
    with pytest.raises(IndexError, match="out of range"):
        call(ds.randn(2, 3))


def test_expand_refuses_minus_one_in_a_new_leading_dim_like_torch():
    with pytest.raises(RuntimeError):
        torch.zeros(3).expand(-1, 3)
    with pytest.raises(ValueError, match=r"leading.*\(-1, 3\).*\(3,\)"):
        ds.zeros(3).expand(-1, 3)  # used to read x.shape[-1] and give (3, 3)
    with pytest.raises(ValueError, match=r"\(3,\) to \(2,\)"):
        ds.zeros(3).expand(2)


@SETTINGS
@given(shapes=PAIRS, dtype=DTYPES, seed=SEEDS)
def test_sum_to_reverses_broadcasting(check_op, shapes, dtype, seed):
    small, other = shapes.input_shapes
    big = np.broadcast_shapes(small, other)
    x = uniform(seed, big, dtype)
    check_op(lambda t: ds.sum_to(t, small), lambda t: t.sum_to_size(small) if small else t.sum(), [x], seed=seed)


def test_reshape_wrong_size_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        ds.randn(2, 3).reshape(4, 2)


# ---------------------------------------------------------------------- indexing
def _mask(shape):
    return np.random.default_rng(7).random(shape) > 0.4


INDICES = {
    "int": lambda: 1,
    "negative int": lambda: -1,
    "slice": lambda: slice(1, 3),
    "step slice": lambda: (slice(None), slice(None, None, 2)),
    "ellipsis": lambda: (Ellipsis, 1),
    "none": lambda: (None, slice(1, None), 2),
    "int array with repeats": lambda: np.array([0, 2, 2, 1, 0]),
    "list with repeats": lambda: [3, 3, 0],
    "second axis array": lambda: (slice(None), np.array([1, 1, 4])),
    "two arrays": lambda: (np.array([0, 1, 1]), np.array([2, 2, 0])),
    "mixed": lambda: (1, np.array([0, 0, 2]), slice(1, 3)),
    "2-d int array": lambda: np.array([[0, 1], [1, 1]]),
    "boolean mask": lambda: _mask((4, 5, 6)),
    "boolean rows": lambda: np.array([True, False, True, True]),
    "boolean then slice": lambda: (np.array([True, False, True, True]), slice(0, 2)),
    "int and boolean": lambda: (slice(None), np.array([True, False, False, True, True])),
}


def _torch_index(index):
    items = index if isinstance(index, tuple) else (index,)
    out = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in items)
    return out if isinstance(index, tuple) else out[0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", INDICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_getitem(check_op, device, name, dtype):
    x = uniform(3, (4, 5, 6), dtype)
    index = INDICES[name]()
    check_op(lambda t: t[index], lambda t: t[_torch_index(index)], [x], device=device)
    check_op(lambda t: ds.getitem(t, index), lambda t: t[_torch_index(index)], [x], device=device)


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(shape=NONEMPTY_SHAPES, dtype=DTYPES, seed=SEEDS, data=st.data())
def test_getitem_random_shapes(check_op, device, shape, dtype, seed, data):
    x = uniform(seed, shape, dtype)
    n0 = shape[0]
    rows = np.array(data.draw(st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=6)))  # repeats likely
    mask = np.random.default_rng(seed).random(shape) > 0.5
    start = data.draw(st.integers(0, n0 - 1))
    for index in (rows, mask, slice(start, None), (slice(None, None, 2),) + (0,) * (len(shape) - 1)):
        check_op(lambda t, i=index: t[i], lambda t, i=index: t[_torch_index(i)], [x], seed=seed, device=device)


@st.composite
def gather_case(draw):
    shape = draw(NONEMPTY_SHAPES)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = [draw(st.integers(1, s)) for s in shape]
    index_shape[dim] = draw(st.integers(1, 5))
    return shape, dim, tuple(index_shape), draw(DTYPES), draw(SEEDS)


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(case=gather_case())
def test_gather_random_shapes(check_op, device, case):
    shape, dim, index_shape, dtype, seed = case
    x = uniform(seed, shape, dtype)
    index = np.random.default_rng(seed).integers(0, shape[dim], size=index_shape)
    check_op(
        lambda t: t.gather(dim, ds.tensor(index)),
        lambda t: t.gather(dim, torch.from_numpy(index)),
        [x],
        seed=seed,
        device=device,
    )


@SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=2, max_side=5),
    mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
    dtype=DTYPES,
    seed=SEEDS,
    data=st.data(),
)
def test_pad_random_shapes_and_widths(check_op, shape, mode, dtype, seed, data):
    x = uniform(seed, shape, dtype)
    limit = shape[-1] - 1 if mode in ("reflect", "circular") else 4  # torch's limits for those modes
    widths = (data.draw(st.integers(0, limit)), data.draw(st.integers(0, limit)))
    check_op(lambda t: ds.pad(t, widths, mode=mode), lambda t: F.pad(t, widths, mode=mode), [x], seed=seed)


def test_getitem_negative_step_matches_flip(check_op):
    # torch has no negative slice steps; x[..., ::-2] is flip then step 2
    x = uniform(3, (4, 5, 6), np.float64)
    check_op(lambda t: t[:, ::-1, ::-2], lambda t: torch.flip(t, [1, 2])[:, :, ::2], [x])


def test_getitem_with_tensor_indices(check_op):
    x = uniform(4, (5, 3), np.float32)
    idx = ds.tensor([4, 0, 4])
    check_op(lambda t: t[idx], lambda t: t[torch.tensor([4, 0, 4])], [x])
    check_op(lambda t: t[t > 0], lambda t: t[t > 0], [x])


def test_bad_index_names_the_shape():
    with pytest.raises(IndexError, match=r"\(4, 5\)"):
        ds.randn(4, 5)[7]
    with pytest.raises(IndexError, match=r"\(4, 5\)"):
        ds.randn(4, 5)[:, [0, 9]]
    with pytest.raises(IndexError, match=r"\(4, 5\)"):
        ds.randn(4, 5)[0, 0, 0]
    with pytest.raises(IndexError, match="integer or boolean"):
        ds.randn(4, 5)[np.array([0.5])]


@pytest.mark.parametrize("length", [3, 5])
def test_boolean_mask_of_the_wrong_length_is_refused_like_torch(length):
    mask = np.arange(length) % 2 == 0  # its nonzero() form, [0, 2(, 4)], would index a (4,) tensor silently
    with pytest.raises(IndexError):
        torch.zeros(4)[torch.from_numpy(mask)]
    with pytest.raises(IndexError, match=r"shape \(4,\)"):
        ds.randn(4)[mask]
    with pytest.raises(IndexError, match=r"shape \(4, 2\)"):
        ds.randn(4, 2)[ds.tensor(mask)]


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather(check_op, dim, dtype):
    x = uniform(5, (3, 4, 5), dtype)
    rng = np.random.default_rng(dim + 10)
    index_shape = [2, 3, 4]
    index_shape[dim] = 6  # along dim the index may be longer than the input (repeats)
    index = rng.integers(0, x.shape[dim], size=index_shape)
    check_op(lambda t: t.gather(dim, ds.tensor(index)), lambda t: t.gather(dim, torch.from_numpy(index)), [x])
    check_op(lambda t: ds.gather(t, dim, index), lambda t: torch.gather(t, dim, torch.from_numpy(index)), [x])


def test_gather_errors():
    with pytest.raises(ValueError, match="dims"):
        ds.randn(3, 4).gather(1, ds.tensor([0, 1]))
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        ds.randn(3, 4).gather(1, ds.tensor([[0], [9], [1]]))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):  # torch refuses -1 too; NumPy would wrap it around
        ds.randn(3, 4).gather(1, ds.tensor([[0], [-1], [1]]))


# ---------------------------------------------------------------------- pad
PAD_CASES = [
    ((2, 3, 5), (1, 2)),
    ((2, 3, 5), (0, 3)),
    ((2, 3, 4, 5), (1, 2, 2, 1)),
    ((1, 2, 3, 4, 5), (1, 1, 2, 0, 1, 2)),
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(("shape", "widths"), PAD_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pad_torch_style(check_op, mode, shape, widths, dtype):
    x = uniform(6, shape, dtype)
    check_op(lambda t: ds.pad(t, widths, mode=mode), lambda t: F.pad(t, widths, mode=mode), [x])


def test_pad_constant_value_and_numpy_style_widths(check_op):
    x = uniform(7, (2, 3, 4), np.float32)
    check_op(lambda t: ds.pad(t, (1, 2), value=0.5), lambda t: F.pad(t, (1, 2), value=0.5), [x])
    numpy_widths = ((0, 0), (2, 1), (1, 3))
    torch_widths = (1, 3, 2, 1)  # the same padding, last dim first
    for mode in ("constant", "reflect", "replicate", "circular"):
        check_op(
            lambda t, m=mode: ds.pad(t, numpy_widths, mode=m), lambda t, m=mode: F.pad(t, torch_widths, mode=m), [x]
        )
    # the NumPy form also pads the leading dims, which torch's non-constant modes cannot: compare with np.pad
    out = ds.pad(ds.tensor(x), ((1, 1), (0, 0), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(out.numpy(), np.pad(x, ((1, 1), (0, 0), (0, 0)), mode="reflect"))


def test_pad_errors():
    with pytest.raises(ValueError, match="mode"):
        ds.pad(ds.randn(2, 3), (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="even number"):
        ds.pad(ds.randn(2, 3), (1, 1, 1))
    with pytest.raises(ValueError, match="one .* pair per dim"):
        ds.pad(ds.randn(2, 3), ((1, 1),))


# ---------------------------------------------------------------------- finite differences (float64)
def _pos(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape)


def _sym(shape, seed=0):
    return _away(np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape), (0.0,), 0.1)


GRADCHECK_CASES = {
    "add broadcast": (lambda a, b: a + b, [_sym((2, 3)), _sym((3,), 1)]),
    "sub broadcast": (lambda a, b: a - b, [_sym((2, 1)), _sym((1, 3), 1)]),
    "mul broadcast": (lambda a, b: a * b, [_sym((2, 3)), _sym((2, 1), 1)]),
    "div broadcast": (lambda a, b: a / b, [_sym((2, 3)), _sym((3,), 1)]),
    "rdiv scalar": (lambda a: 2.0 / a, [_sym((4,))]),
    "scalars on both sides": (lambda a: (3.0 - a) * 2.0 + a / 4.0 + a**3 + (1.5 + a) - 0.5 * a, [_sym((2, 3))]),
    "pow both": (lambda a, b: a**b, [_pos((2, 3)), _sym((3,), 1)]),
    "rpow": (lambda a: 2.0**a, [_sym((3,))]),
    "neg": (lambda a: -a, [_sym((3,))]),
    "matmul 1d": (lambda a, b: a @ b, [_sym((3,)), _sym((3,), 1)]),
    "matmul 2d": (lambda a, b: a @ b, [_sym((2, 3)), _sym((3, 2), 1)]),
    "matmul vec-mat": (lambda a, b: a @ b, [_sym((3,)), _sym((2, 3, 2), 1)]),
    "matmul mat-vec": (lambda a, b: a @ b, [_sym((2, 2, 3)), _sym((3,), 1)]),
    "matmul batched": (lambda a, b: a @ b, [_sym((2, 1, 2, 3)), _sym((3, 3, 2), 1)]),
    "exp": (ds.exp, [_sym((2, 3))]),
    "log": (ds.log, [_pos((2, 3))]),
    "sqrt": (ds.sqrt, [_pos((2, 3))]),
    "abs": (ds.abs, [_sym((2, 3))]),
    "tanh": (ds.tanh, [_sym((2, 3))]),
    "sigmoid": (ds.sigmoid, [_sym((2, 3))]),
    "relu": (ds.relu, [_sym((2, 3))]),
    "leaky_relu": (lambda a: ds.leaky_relu(a, 0.1), [_sym((2, 3))]),
    "gelu": (ds.gelu, [_sym((2, 3))]),
    "gelu tanh": (lambda a: ds.gelu(a, approximate="tanh"), [_sym((2, 3))]),
    "softplus": (ds.softplus, [_sym((2, 3))]),
    "elu": (ds.elu, [_sym((2, 3))]),
    "erf": (ds.erf, [_sym((2, 3))]),
    "sin cos": (lambda a: ds.sin(a) * ds.cos(a), [_sym((2, 3))]),
    "clip": (lambda a: ds.clip(a, -1.0, 1.0), [_sym((2, 3))]),
    "clip tensor bounds": (
        lambda a, lo, hi: ds.clip(a, lo, hi),
        [_sym((2, 3)), _sym((3,), 1) - 1, _sym((2, 1), 2) + 1],
    ),
    "maximum": (ds.maximum, [_sym((2, 3)), _sym((3,), 1)]),
    "minimum": (ds.minimum, [_sym((2, 3)), _sym((2, 1), 1)]),
    "where": (lambda a, b: ds.where(a.array > 0, a, b), [_sym((2, 3)), _sym((3,), 1)]),
    "sum dim": (lambda a: a.sum(1), [_sym((2, 3))]),
    "mean axis keepdims": (lambda a: a.mean(axis=(0, 2), keepdims=True), [_sym((2, 3, 2))]),
    "max dim": (lambda a: a.max(0).values, [_sym((3, 2))]),
    "amax axis keepdims": (lambda a: ds.amax(a, axis=(0, 2), keepdims=True), [_sym((3, 2, 2))]),
    "min dim keepdim": (lambda a: a.min(1, keepdim=True).values, [_sym((3, 2))]),
    "var axis keepdims": (lambda a: ds.var(a, axis=0, keepdims=True), [_sym((3, 2))]),
    "std dim keepdim ddof0": (lambda a: a.std(1, keepdim=True, ddof=0), [_sym((3, 2))]),
    "sum axis tuple": (lambda a: ds.sum(a, axis=(0, 1)), [_sym((3, 2, 2))]),
    "min": (lambda a: a.min(), [_sym((3, 2))]),
    "var": (lambda a: a.var(1), [_sym((2, 4))]),
    "std": (lambda a: a.std(), [_sym((2, 4))]),
    "logsumexp": (lambda a: a.logsumexp(1), [_sym((2, 4))]),
    "softmax": (lambda a: ds.softmax(a, 0), [_sym((3, 2))]),
    "log_softmax": (lambda a: ds.log_softmax(a, -1), [_sym((3, 2))]),
    "reshape": (lambda a: a.reshape(3, 2), [_sym((2, 3))]),
    "permute": (lambda a: a.permute(2, 0, 1), [_sym((2, 3, 2))]),
    "transpose": (lambda a: a.transpose(0, 1), [_sym((2, 3))]),
    "T": (lambda a: a.T, [_sym((2, 3))]),
    "squeeze unsqueeze": (lambda a: a.squeeze(1).unsqueeze(0), [_sym((2, 1, 3))]),
    "flatten": (lambda a: a.flatten(1), [_sym((2, 2, 3))]),
    "cat": (lambda a, b: ds.cat([a, b], 1), [_sym((2, 3)), _sym((2, 1), 1)]),
    "stack": (lambda a, b: ds.stack([a, b], 1), [_sym((2, 3)), _sym((2, 3), 1)]),
    "getitem slice": (lambda a: a[1:, ::2], [_sym((3, 4))]),
    "getitem repeats": (lambda a: a[[0, 2, 2, 0]], [_sym((3, 2))]),
    "getitem bool": (lambda a: a[a.array > 0], [_sym((3, 2))]),
    "gather": (lambda a: a.gather(1, ds.tensor([[0, 0, 2], [1, 2, 1]])), [_sym((2, 3))]),
    "pad constant": (lambda a: ds.pad(a, (1, 2)), [_sym((2, 3))]),
    "pad reflect": (lambda a: ds.pad(a, (2, 1), mode="reflect"), [_sym((2, 4))]),
    "pad replicate": (lambda a: ds.pad(a, (2, 1), mode="replicate"), [_sym((2, 4))]),
    "pad circular": (lambda a: ds.pad(a, ((1, 0), (2, 1)), mode="circular"), [_sym((2, 4))]),
    "astype": (lambda a: (a.astype("float32").astype("float64")) * 0 + a * a, [_sym((2, 3))]),
    "expand": (lambda a: a.expand(2, 3, 4), [_sym((3, 1))]),
}


@pytest.mark.parametrize("name", GRADCHECK_CASES)
def test_gradcheck_float64(name):
    fn, inputs = GRADCHECK_CASES[name]
    report = ds.gradcheck(fn, [ds.tensor(a, dtype="float64") for a in inputs])
    assert report.passed, str(report)


# ---------------------------------------------------------------------- float32 stays float32 in backward
FLOAT32_GRAPHS = {
    "arithmetic": lambda x, w: (x + w) * w / (w + 3.0) - x**w + 2.0**x + x**2.5,
    "matmul": lambda x, w: ((x @ w)[:, None] @ w[None, :]).sum(1) + w @ x.T,
    "elementwise": lambda x, w: x.exp() + x.log() + x.sqrt() + abs(x) + x.tanh() + x.sigmoid() + x.relu() + x.sin(),
    "activations": lambda x, w: (
        ds.leaky_relu(x) + ds.gelu(x) + ds.gelu(x, "tanh") + ds.softplus(x, 2.0) + ds.elu(x - 1)
    ),
    "selection": lambda x, w: x.clip(0.6, 1.5) + ds.maximum(x, w) + ds.minimum(x, w) + ds.where(x.array > 1, x, w),
    "reductions": lambda x, w: (
        x.sum(1) + x.mean(1) + x.max(1).values + x.var(1) + x.std(1) + x.logsumexp(1) + x.min(1).values
    ),
    "softmax": lambda x, w: x.softmax(1) + x.log_softmax(0) + ds.erf(x),
    "shapes": lambda x, w: ds.cat([x[[0, 0, 2]], ds.pad(x, (1, 1))[:, 1:-1], ds.pad(x, (2, 0), mode="reflect")[:, :4]]),
    "gather stack": lambda x, w: ds.stack([x.gather(1, ds.tensor([[0, 1, 1, 3]] * 3)), x.T.T]).flatten(),
}


@pytest.mark.parametrize("name", FLOAT32_GRAPHS)
def test_backward_rules_keep_float32(name):
    """Every VJP in a float32 graph returns float32 (no float64 creep hidden by the final cast to .grad)."""
    from downslope.autograd import ArrayRules

    x = ds.tensor(np.random.default_rng(0).uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    w = ds.tensor(np.random.default_rng(1).uniform(0.5, 2.0, (4,)), requires_grad=True)
    out = FLOAT32_GRAPHS[name](x, w)
    assert out.dtype == np.float32
    stack, seen = [out], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or node._vjp is None:
            continue
        seen.add(id(node))
        args = tuple(p.array for p in node._parents)
        grads = node._vjp(np.ones_like(node.array), node.array, args, node._saved, node._needs, ArrayRules)
        for parent, g in zip(node._parents, grads):
            assert g is None or g.dtype == np.float32, f"{node.grad_fn} gave {g.dtype}"
            stack.append(parent)


def test_check_op_helper_catches_wrong_values_dtypes_and_gradients(check_op):
    x = uniform(0, (3,), np.float32)
    with pytest.raises(AssertionError, match="forward"):
        check_op(lambda t: t * 1.0001, lambda t: t, [x])
    with pytest.raises(AssertionError, match="dtype"):
        check_op(lambda t: t.double(), lambda t: t, [x])
    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_op(lambda t: t * 0 + t.detach(), lambda t: t, [x])  # right values, gradient 0 instead of 1


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 6)]),
        ("...ij,jk", [(2, 4, 5), (5, 3)]),  # implicit output: the ellipsis dims first
        ("b...d,d->b...", [(2, 3, 4, 5), (5,)]),
        ("...i,...i->...", [(3, 4), (3, 4)]),
    ],
)
def test_einsum_with_an_ellipsis_matches_torch(check_op, equation, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    check_op(lambda *a: ds.einsum(equation, *a), lambda *a: torch.einsum(equation, *a), arrays)


def test_pytorchs_promotion_rules_where_numpys_differ():
    """float32 with int64 stays float32 in cat, stack, // and %; a 0-d tensor does not widen a tensor of
    its category; a Python int takes an integer tensor's dtype (int8 wraps). NumPy gives float64 / int64."""
    f32, i64 = ds.ones(2), ds.zeros(2, dtype=ds.int64)
    for result in (ds.cat([f32, i64]), ds.stack([i64, f32]), f32 // ds.tensor([2]), f32 % ds.tensor([2]), 2.0 // f32):
        assert result.dtype == np.float32
    assert (f32 * ds.tensor(2.0, dtype=ds.float64)).dtype == np.float32
    assert (ds.ones(2, dtype=ds.float16) * ds.tensor(2.0)).dtype == np.float16
    assert (ds.ones(2, dtype=ds.int32) + 5).dtype == np.int32
    assert (ds.tensor([1, 2], dtype=ds.int8) * 100).tolist() == [100, -56]
    for ours, theirs in (
        (ds.cat([f32, i64]), torch.cat([torch.ones(2), torch.zeros(2, dtype=torch.int64)])),
        (ds.tensor([7, -7]) // 2.0, torch.tensor([7, -7]) // 2.0),
        (ds.tensor([1, 2], dtype=ds.uint8) + 300, torch.tensor([1, 2], dtype=torch.uint8) + 300),
    ):
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    x = ds.ones(2, requires_grad=True)
    ds.cat([x, i64]).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 1.0]
