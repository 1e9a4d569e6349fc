"""Elementwise math, products, reductions and refusals on complex tensors against torch: values and
gradients (torch's conjugate-Wirtinger convention) in complex64 and complex128, finite differences in
complex128 for the holomorphic rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

from .._complex_helpers import real_loss as _loss
from .._complex_helpers import to_numpy as _numpy
from .._complex_helpers import values as _values

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
# float32 arithmetic in complex64: torch's kernels and NumPy's round differently in the last bits
_TOL = {"complex64": {"rtol": 2e-5, "atol": 2e-6}, "complex128": {"rtol": 1e-10, "atol": 1e-12}}


def _pair(a: np.ndarray, dtype: str, grad: bool = True) -> tuple[Any, Any]:
    if a.dtype.kind != "c":
        real = "float32" if dtype == "complex64" else "float64"
        return (
            ds.tensor(a, dtype=getattr(ds, real), requires_grad=grad),
            torch.tensor(a, dtype=getattr(torch, real), requires_grad=grad),
        )
    return (
        ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=grad),
        torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=grad),
    )


def check(fn: Callable[..., Any], *arrays: np.ndarray, dtype: str = "complex128", grads: bool = True) -> None:
    """``fn(lib, *inputs)`` in downslope and torch: values, dtypes and the inputs' gradients agree."""
    pairs = [_pair(a, dtype, grads) for a in arrays]
    ours, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
    y, ref = fn(ds, *ours), fn(torch, *theirs)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), **_TOL[dtype])
    if not grads:
        return
    weight = _values(99, *ref.shape)
    _loss(ds, y, weight).backward()
    _loss(torch, ref, weight).backward()
    for mine, them in zip(ours, theirs):
        if them.grad is None:  # an input the function does not use
            assert mine.grad is None
            continue
        assert mine.grad.dtype == mine.dtype
        np.testing.assert_allclose(_numpy(mine.grad), _numpy(them.grad), **_TOL[dtype])


def finite_differences(fn: Callable[[Any], Any], values: np.ndarray) -> None:
    """Backprop's gradient of L = Re(sum(fn(z) * w)) against dL/dx + i dL/dy by central differences."""
    w = ds.tensor(_values(5, *fn(ds.tensor(values, dtype=ds.complex128)).shape), dtype=ds.complex128)

    def loss(v: np.ndarray) -> float:
        return float(ds.real(fn(ds.tensor(v, dtype=ds.complex128)) * w).sum().item())

    z = ds.tensor(values, dtype=ds.complex128, requires_grad=True)
    ds.real(fn(z) * w).sum().backward()
    h = 1e-6
    want = np.empty(values.shape, complex)
    for i in np.ndindex(values.shape):
        e = np.zeros(values.shape, complex)
        e[i] = h
        dx = (loss(values + e) - loss(values - e)) / (2 * h)
        dy = (loss(values + 1j * e) - loss(values - 1j * e)) / (2 * h)
        want[i] = dx + 1j * dy
    np.testing.assert_allclose(z.grad.numpy(), want, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------- elementwise math

_UNARY = [
    "sqrt", "rsqrt", "log", "log2", "log10", "log1p", "exp", "exp2", "expm1", "square", "sin", "cos", "tan",
    "sinh", "cosh", "tanh", "sigmoid", "asin", "acos", "atan", "asinh", "acosh", "atanh", "sinc",
]  # fmt: skip


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("name", _UNARY)
def test_unary_math_matches_torch(name: str, dtype: str) -> None:
    check(lambda lib, z: getattr(lib, name)(z), _values(1, 2, 3), dtype=dtype)
    check(lambda lib, z: getattr(z, name)(), _values(2, 4), dtype=dtype)


@pytest.mark.parametrize("name", _UNARY)
def test_unary_math_gradients_agree_with_finite_differences(name: str) -> None:
    finite_differences(lambda z: getattr(ds, name)(z), _values(3, 5))


@pytest.mark.parametrize("dtype", _DTYPES)
def test_unary_math_under_create_graph_matches_torch(dtype: str) -> None:
    values = _values(4, 3)
    (z, ref) = _pair(values, dtype)
    fns = [lambda L, t: L.sin(t) * L.sqrt(t), lambda L, t: L.tanh(L.log(t)), lambda L, t: L.sigmoid(t).asin()]
    for fn in fns:
        (g,) = ds.autograd.grad(ds.real(fn(ds, z)).sum(), z, create_graph=True)
        (want,) = torch.autograd.grad(torch.real(fn(torch, ref)).sum(), ref, create_graph=True)
        np.testing.assert_allclose(_numpy(g), _numpy(want), **_TOL[dtype])
        (gg,) = ds.autograd.grad(ds.real(g * (1 - 2j)).sum(), z)
        (want2,) = torch.autograd.grad(torch.real(want * (1 - 2j)).sum(), ref)
        np.testing.assert_allclose(_numpy(gg), _numpy(want2), rtol=_TOL[dtype]["rtol"] * 10, atol=_TOL[dtype]["atol"])


@pytest.mark.parametrize("name", ["erf", "erfc", "deg2rad", "frac", "logit"])
def test_unary_math_torch_refuses_is_refused_by_name(name: str) -> None:
    with pytest.raises((RuntimeError, NotImplementedError)):
        getattr(torch, name)(torch.tensor([1 + 1j]))
    with pytest.raises(DTypeError, match=f"{name}: not implemented for complex"):
        getattr(ds, name)(ds.tensor([1 + 1j]))


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, z, w: z**w,
        lambda lib, z, w: lib.pow(z, 1.5 - 0.5j),
        lambda lib, z, w: lib.pow(2.0, z),
        lambda lib, z, w: (1 + 2j) ** z,
        lambda lib, z, w: z ** 2.5,
        lambda lib, z, w: z / (1 + 2j),
        lambda lib, z, w: (2 - 1j) / z,
        lambda lib, z, w: z / w,
        lambda lib, z, w: lib.abs(z) ** 1.5 * w,
    ],
    ids=["pow_tensors", "pow_complex_exponent", "pow_real_base", "pow_complex_base", "pow_real", "div_number",
         "rdiv_number", "div", "abs_pow"],
)  # fmt: skip
def test_pow_and_division_match_torch(fn: Callable[..., Any], dtype: str) -> None:
    check(fn, _values(6, 2, 3), _values(7, 2, 3), dtype=dtype)


def test_pow_with_complex_exponent_agrees_with_finite_differences() -> None:
    w = ds.tensor(_values(8, 4), dtype=ds.complex128)
    finite_differences(lambda z: z**w + w**z + z**z, _values(9, 4))


@pytest.mark.parametrize("dtype", _DTYPES)
def test_abs_at_zero_has_torchs_zero_gradient(dtype: str) -> None:
    check(lambda lib, z: lib.abs(z) + z.abs() ** 2, np.array([0j, 3 - 4j, 0j]), dtype=dtype)


# ---------------------------------------------------------------------- what torch refuses

_UNORDERED = [
    ("sort", lambda L, z: L.sort(z)),
    ("argsort", lambda L, z: L.argsort(z)),
    ("sort", lambda L, z: L.msort(z)),
    ("topk", lambda L, z: L.topk(z, 1)),
    ("kthvalue", lambda L, z: L.kthvalue(z, 1)),
    ("median", lambda L, z: L.median(z)),
    ("median", lambda L, z: L.median(z, 0)),
    ("nanmedian", lambda L, z: L.nanmedian(z)),
    ("mode", lambda L, z: L.mode(z)),
    ("argmax", lambda L, z: L.argmax(z)),
    ("argmin", lambda L, z: L.argmin(z, 0)),
    ("max", lambda L, z: L.max(z)),
    ("min", lambda L, z: L.min(z)),
    ("max", lambda L, z: L.max(z, 0)),
    ("min", lambda L, z: z.min(0)),
    ("amax", lambda L, z: L.amax(z)),
    ("amin", lambda L, z: L.amin(z, 0)),
    ("amin", lambda L, z: L.aminmax(z)),
    ("nansum", lambda L, z: L.nansum(z)),
    ("round", lambda L, z: L.round(z)),
    ("floor", lambda L, z: L.floor(z)),
    ("ceil", lambda L, z: z.ceil()),
    ("trunc", lambda L, z: L.trunc(z)),
    ("clamp", lambda L, z: L.clamp(z, 0, 1)),
    ("clamp", lambda L, z: z.clamp(min=L.zeros(3, dtype=L.complex64))),
    ("relu", lambda L, z: L.relu(z)),
    ("maximum", lambda L, z: L.maximum(z, z)),
    ("minimum", lambda L, z: L.minimum(z, z)),
    ("lt", lambda L, z: z < 0),
    ("ge", lambda L, z: z >= z),
]


@pytest.mark.parametrize(("name", "fn"), _UNORDERED, ids=[f"{i}-{n}" for i, (n, _) in enumerate(_UNORDERED)])
@pytest.mark.parametrize("grad", [False, True])
def test_what_torch_refuses_on_complex_is_refused_by_name(name: str, fn: Callable[..., Any], grad: bool) -> None:
    values = np.array([1 + 2j, -3 + 0.5j, 2 - 1j])
    with pytest.raises((RuntimeError, NotImplementedError)):
        fn(torch, torch.tensor(values, dtype=torch.complex64, requires_grad=grad))
    with pytest.raises(DTypeError, match=f"{name}: not (supported|implemented) for complex"):
        fn(ds, ds.tensor(values, dtype=ds.complex64, requires_grad=grad))


# ---------------------------------------------------------------------- products, layers, reductions


def _linear_module(lib: Any, x: Any, w: Any, b: Any) -> Any:
    layer = lib.nn.Linear(3, 4)
    layer.weight = lib.nn.Parameter(w)
    layer.bias = lib.nn.Parameter(b)
    return layer(x)


_PRODUCTS = [
    ("linear", lambda L, x, w, b: L.nn.functional.linear(x, w, b), (5, 3), (4, 3), (4,)),
    ("linear_3d", lambda L, x, w, b: L.nn.functional.linear(x, w), (2, 5, 3), (4, 3), (4,)),
    ("linear_module", _linear_module, (5, 3), (4, 3), (4,)),
    ("addmm", lambda L, a, b, c: L.addmm(a, b, c, beta=0.5, alpha=2), (2, 4), (2, 3), (3, 4)),
    ("bmm", lambda L, a, b, c: L.bmm(a, b) + c, (2, 3, 4), (2, 4, 5), (5,)),
    ("baddbmm", lambda L, a, b, c: L.baddbmm(a, b, c, alpha=1.5), (2, 3, 5), (2, 3, 4), (2, 4, 5)),
    ("kron", lambda L, a, b, c: L.kron(a, b) * c, (2, 3), (3, 2), (6,)),
    ("outer", lambda L, a, b, c: L.outer(a, b) * c, (3,), (4,), (4,)),
    ("tensordot", lambda L, a, b, c: L.tensordot(a, b, dims=([1, 2], [0, 1])) * c, (2, 3, 4), (3, 4, 5), (5,)),
    ("dot", lambda L, a, b, c: L.dot(a, b) * c, (4,), (4,), (1,)),
    ("vdot", lambda L, a, b, c: L.vdot(a, b) * c, (4,), (4,), (1,)),
    ("matmul_vec", lambda L, a, b, c: (a @ b) * c, (3, 4), (4,), (3,)),
]


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(("fn", "sa", "sb", "sc"), [p[1:] for p in _PRODUCTS], ids=[p[0] for p in _PRODUCTS])
def test_products_and_linear_match_torch(fn: Callable[..., Any], sa: Any, sb: Any, sc: Any, dtype: str) -> None:
    check(fn, _values(10, *sa), _values(11, *sb), _values(12, *sc), dtype=dtype)


_SHAPE_OPS = [
    ("flip", lambda L, z: L.flip(z, [0, 1])),
    ("roll", lambda L, z: L.roll(z, (1, -2), (0, 1))),
    ("pad", lambda L, z: L.nn.functional.pad(z, (1, 2, 0, 1))),
    ("pad_value", lambda L, z: L.nn.functional.pad(z, (1, 2), value=1.5)),
    ("where", lambda L, z: L.where(z.real > 0, z, z * 2j)),
    ("masked_fill", lambda L, z: z.masked_fill(z.imag > 0, 2.0)),
    ("diagonal", lambda L, z: L.diagonal(z, 1)),
    ("trace", lambda L, z: L.trace(z[:, :3])),
    ("cumsum", lambda L, z: L.cumsum(z, 1)),
    ("mean", lambda L, z: z.mean(1)),
]


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("fn", [p[1] for p in _SHAPE_OPS], ids=[p[0] for p in _SHAPE_OPS])
def test_shape_ops_match_torch(fn: Callable[..., Any], dtype: str) -> None:
    check(fn, _values(13, 3, 4), dtype=dtype)


_NORMS = [
    ("vector_norm", lambda L, z: L.linalg.vector_norm(z)),
    ("vector_norm_dim", lambda L, z: L.linalg.vector_norm(z, dim=1, keepdim=True)),
    ("vector_norm_1", lambda L, z: L.linalg.vector_norm(z, 1, dim=0)),
    ("vector_norm_3", lambda L, z: L.linalg.vector_norm(z, 3)),
    ("vector_norm_1.5", lambda L, z: L.linalg.vector_norm(z, 1.5, dim=1)),
    ("vector_norm_0.5", lambda L, z: L.linalg.vector_norm(z, 0.5)),
    ("vector_norm_inf", lambda L, z: L.linalg.vector_norm(z, float("inf"), dim=1)),
    ("vector_norm_-inf", lambda L, z: L.linalg.vector_norm(z, -float("inf"))),
    ("vector_norm_0", lambda L, z: L.linalg.vector_norm(z, 0) * 1),
    ("norm", lambda L, z: L.linalg.norm(z)),
    ("norm_dim", lambda L, z: L.linalg.norm(z, dim=0)),
    ("norm_fro", lambda L, z: L.linalg.norm(z, "fro")),
    ("matrix_norm_1", lambda L, z: L.linalg.matrix_norm(z, 1)),
    ("matrix_norm_inf", lambda L, z: L.linalg.matrix_norm(z, float("inf"))),
]


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("fn", [p[1] for p in _NORMS], ids=[p[0] for p in _NORMS])
def test_norms_of_complex_are_real_and_match_torch(fn: Callable[..., Any], dtype: str) -> None:
    values = _values(14, 3, 4)
    values[1, 2] = 0  # torch's zero gradient where an element is 0
    check(fn, values, dtype=dtype)


def test_norm_at_a_zero_vector_has_torchs_zero_gradient() -> None:
    check(lambda L, z: L.linalg.vector_norm(z, dim=1), np.array([[0j, 0j], [3 + 4j, 1j]]))


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(
    "fn",
    [lambda L, z: z.prod(), lambda L, z: L.prod(z, 1), lambda L, z: z.prod(0, keepdim=True)],
    ids=["all", "dim", "keepdim"],
)
def test_prod_matches_torch(fn: Callable[..., Any], dtype: str) -> None:
    values = _values(15, 3, 4)
    check(fn, values, dtype=dtype)
    values[1, 2] = 0  # the products of the others where an element is 0
    check(fn, values, dtype=dtype)


def test_prod_agrees_with_finite_differences_and_refuses_double_backward() -> None:
    finite_differences(lambda z: z.prod(1), _values(16, 2, 3))
    z = ds.tensor(_values(17, 3), dtype=ds.complex128, requires_grad=True)
    with pytest.raises(DTypeError, match="prod: the double backward"):
        ds.autograd.grad(ds.real(z.prod()), z, create_graph=True)


# ---------------------------------------------------------------------- factories


@pytest.mark.parametrize("dtype", _DTYPES)
def test_rand_of_complex_draws_each_part_uniform_as_torch(dtype: str) -> None:
    ds.manual_seed(0)
    z = ds.rand(100_000, dtype=getattr(ds, dtype))
    ref = torch.rand(100_000, dtype=getattr(torch, dtype))
    assert str(z.dtype) == str(ref.dtype).replace("torch.", "")
    for part in (z.numpy().real, z.numpy().imag):
        assert part.min() >= 0 and part.max() < 1
        assert abs(part.mean() - 0.5) < 0.01 and abs(part.var() - 1 / 12) < 0.005  # U[0, 1): mean 1/2, var 1/12
    assert abs(np.corrcoef(z.numpy().real, z.numpy().imag)[0, 1]) < 0.02  # independent parts
    like = ds.rand_like(z[:3], requires_grad=True)
    assert like.dtype == z.dtype and like.requires_grad and like.shape == (3,)
    assert ds.randn_like(z[:3]).dtype == z.dtype
    assert torch.rand_like(ref[:3]).dtype == ref.dtype


def test_arange_refuses_complex_as_torch() -> None:
    with pytest.raises(RuntimeError):
        torch.arange(3, dtype=torch.complex64)
    with pytest.raises(DTypeError, match="arange: not implemented for complex"):
        ds.arange(3, dtype=ds.complex64)


# ---------------------------------------------------------------------- linalg.eig


def _general(seed: int, complex_input: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((4, 4))
    return a + 1j * rng.standard_normal((4, 4)) if complex_input else a


def _ordered(lib: Any, a: Any) -> Any:
    """eig's results by ascending real part, then imaginary part (LAPACK builds may order them differently:
    torch promises no order)."""
    values, vectors = lib.linalg.eig(a)
    key = values.detach().numpy()
    idx = lib.tensor(np.lexsort((key.imag.round(4), key.real.round(4))).astype(np.int64))
    return values[idx], vectors[:, idx]


@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("complex_input", [False, True], ids=["real", "complex"])
def test_eigvals_match_torch(complex_input: bool, precision: str) -> None:
    dtype = "complex64" if precision == "single" else "complex128"
    check(lambda L, a: _ordered(L, a)[0], _general(20, complex_input), dtype=dtype)


def _phase_free(lib: Any, a: Any) -> Any:
    """A loss of the eigenvectors that does not depend on their phases (|V|^2), with the eigenvalues."""
    values, vectors = _ordered(lib, a)
    return (vectors.abs() ** 2) * 1.5 + values[None, :] * 0.5


@pytest.mark.parametrize("complex_input", [False, True], ids=["real", "complex"])
def test_eig_matches_torch(complex_input: bool) -> None:
    # double precision: the eigenvectors' gradient divides by eigenvalue gaps, which magnify the
    # float32 LAPACK builds' differences in rounding beyond elementwise float32 tolerances
    check(_phase_free, _general(21, complex_input), dtype="complex128")


def test_eig_of_a_stack_matches_torch() -> None:
    stack = np.stack([_general(23, True), _general(24, True)])
    check(lambda L, a: L.linalg.eig(a).eigenvectors.abs() + L.linalg.eigvals(a)[..., None, :], stack)


def test_eig_refuses_double_backward() -> None:
    a = ds.tensor(_general(22, False), dtype=ds.float64, requires_grad=True)
    with pytest.raises(DTypeError, match="double backward"):
        ds.autograd.grad(ds.real(ds.linalg.eigvals(a)).sum(), a, create_graph=True)
