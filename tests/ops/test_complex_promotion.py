"""Complex operands meeting real ones, against torch: promotion (real + complex is complex of the wider
float, int + complex is complex, Python complex numbers), the ops that combine operands (cat, stack,
kron, block_diag, outer, logaddexp...) keeping the imaginary part, with torch's values and gradients in
complex64 and complex128; and the smaller complex ops torch has (masked_fill, index_add, var/std,
reciprocal, sgn, gradient, is_signed) or refuses (argmax)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError, InvalidValueError

from .._complex_helpers import real_loss as _loss
from .._complex_helpers import to_numpy as _numpy

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
_TOL = {"complex64": {"rtol": 2e-5, "atol": 2e-6}, "complex128": {"rtol": 1e-10, "atol": 1e-12}}


def _values(seed: int, *shape: int, real: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if real:
        return rng.standard_normal(shape)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _both(a: np.ndarray, dtype: str, grad: bool = True) -> tuple[Any, Any]:
    """``a`` as a downslope and a torch tensor: complex of ``dtype``, or its real precision for a real ``a``."""
    name = dtype if a.dtype.kind == "c" else ("float32" if dtype == "complex64" else "float64")
    return (
        ds.tensor(a, dtype=getattr(ds, name), requires_grad=grad),
        torch.tensor(a, dtype=getattr(torch, name), requires_grad=grad),
    )


def check(fn: Callable[..., Any], *arrays: np.ndarray, dtype: str) -> None:
    """``fn(lib, *inputs)`` in downslope and torch: values, dtypes and every input's gradient agree (and
    nothing warns: a dropped imaginary part warns)."""
    pairs = [_both(a, dtype) for a in arrays]
    ours, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(ds, *ours)
    ref = fn(torch, *theirs)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), **_TOL[dtype])
    weight = _values(99, *ref.shape)
    _loss(ds, y, weight).backward()
    _loss(torch, ref, weight).backward()
    for mine, them in zip(ours, theirs):
        assert mine.grad is not None and mine.grad.dtype == mine.dtype
        np.testing.assert_allclose(_numpy(mine.grad), _numpy(them.grad), **_TOL[dtype])


# ---------------------------------------------------------------------- real meets complex


def _real_for(lib: Any, r: Any, z: Any) -> Any:
    """``r`` as it is for downslope; cast to ``z``'s dtype for torch (a recorded cast: r's gradient is the
    real part), where torch's own mixed backward raises."""
    return r if lib is ds else r.to(z.dtype)


_MIXED = [
    ("cat", lambda L, r, z: L.cat([r, z], 1), (1, 3), (1, 2)),
    ("cat-complex-first", lambda L, r, z: L.cat([z, r], 0), (2, 3), (1, 3)),
    ("stack", lambda L, r, z: L.stack([r, z]), (3,), (3,)),
    ("hstack", lambda L, r, z: L.hstack([r, z]), (2,), (3,)),
    ("block_diag", lambda L, r, z: L.block_diag(z, r), (2, 2), (1, 2)),
    ("kron", lambda L, r, z: L.kron(z, r), (2, 2), (2, 2)),
    ("outer", lambda L, r, z: L.outer(r, z), (3,), (2,)),
    ("outer-complex-first", lambda L, r, z: L.outer(z, r), (3,), (2,)),
    # torch's logaddexp and where backward fail for a real operand with a complex one: cast for torch there
    ("logaddexp", lambda L, r, z: L.logaddexp(z, _real_for(L, r, z)), (2, 3), (2, 3)),
    ("logaddexp-broadcast", lambda L, r, z: L.logaddexp(_real_for(L, r, z), z), (3,), (2, 3)),
    ("add", lambda L, r, z: r + z, (2, 3), (2, 3)),
    ("where", lambda L, r, z: L.where(r > 0, _real_for(L, r, z), z), (2, 3), (2, 3)),
]


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(("fn", "rs", "zs"), [m[1:] for m in _MIXED], ids=[m[0] for m in _MIXED])
def test_a_real_operand_with_a_complex_one_gives_torchs_complex_result(
    fn: Callable[..., Any], rs: tuple[int, ...], zs: tuple[int, ...], dtype: str
) -> None:
    check(fn, _values(1, *rs, real=True), _values(2, *zs), dtype=dtype)


def test_logaddexp_of_complex_is_stable_for_large_real_parts() -> None:
    a = np.array([1000 + 1j, -1000 + 0.5j, 3 - 2j])
    b = np.array([999 - 1j, -1001 + 2j, 0.5 + 0j])
    ours = ds.logaddexp(ds.tensor(a, dtype=ds.complex128), ds.tensor(b, dtype=ds.complex128)).numpy()
    np.testing.assert_allclose(ours, torch.logaddexp(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12)


def test_cat_of_float64_and_complex64_is_complex128_as_torch() -> None:
    r, z = np.ones(2), _values(3, 2)
    ours = ds.cat([ds.tensor(r, dtype=ds.float64), ds.tensor(z, dtype=ds.complex64)])
    theirs = torch.cat([torch.tensor(r, dtype=torch.float64), torch.tensor(z, dtype=torch.complex64)])
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "") == "complex128"
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())


_OPERANDS: list[tuple[str, Callable[[Any], Any]]] = [
    ("float32", lambda L: L.ones(2, dtype=L.float32)),
    ("float64", lambda L: L.ones(2, dtype=L.float64)),
    ("int64", lambda L: L.ones(2, dtype=L.int64)),
    ("int8-0d", lambda L: L.tensor(1, dtype=L.int8)),
    ("bool", lambda L: L.ones(2, dtype=L.bool)),
    ("complex64", lambda L: L.ones(2, dtype=L.complex64)),
    ("complex128", lambda L: L.ones(2, dtype=L.complex128)),
    ("complex128-0d", lambda L: L.tensor(1j, dtype=L.complex128)),
    ("float64-0d", lambda L: L.tensor(1.0, dtype=L.float64)),
    ("py-complex", lambda L: 2j),
    ("py-float", lambda L: 2.5),
    ("py-int", lambda L: 3),
]


@pytest.mark.parametrize(("na", "a"), _OPERANDS, ids=[o[0] for o in _OPERANDS])
@pytest.mark.parametrize(("nb", "b"), _OPERANDS[5:], ids=[o[0] for o in _OPERANDS[5:]])
def test_promotion_with_complex_follows_torch_in_ops_and_queries(na: str, a: Any, nb: str, b: Any) -> None:
    if not isinstance(a(torch), torch.Tensor) and not isinstance(b(torch), torch.Tensor):
        pytest.skip("two numbers: no tensor to promote")
    want = str(torch.result_type(a(torch), b(torch))).replace("torch.", "")
    assert str(ds.result_type(a(ds), b(ds))) == want
    tensors = isinstance(a(ds), ds.Tensor) and isinstance(b(ds), ds.Tensor)
    for op in (lambda x, y: x * y, lambda x, y: x + y, ds.logaddexp):
        if op is ds.logaddexp and not tensors:
            continue  # torch's logaddexp takes tensors only
        assert str(op(a(ds), b(ds)).dtype) == want, op
    if tensors:
        got = ds.promote_types(a(ds).dtype, b(ds).dtype)
        assert str(got) == str(torch.promote_types(a(torch).dtype, b(torch).dtype)).replace("torch.", "")


@pytest.mark.parametrize("dtype", _DTYPES)
def test_cat_of_int_and_complex_is_complex(dtype: str) -> None:
    z = _values(4, 3)
    ours = ds.cat([ds.tensor([1, 2]), ds.tensor(z, dtype=getattr(ds, dtype))])
    theirs = torch.cat([torch.tensor([1, 2]), torch.tensor(z, dtype=getattr(torch, dtype))])
    assert str(ours.dtype) == dtype == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **_TOL[dtype])


def test_an_op_without_a_complex_rule_refuses_a_promoted_operand_by_name() -> None:
    r = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(DTypeError, match="fmod"):
        ds.fmod(r, ds.tensor([1 + 1j, 2j]))


# ---------------------------------------------------------------------- smaller complex ops


@pytest.mark.parametrize("dtype", _DTYPES)
def test_masked_fill_with_complex_and_real_numbers_matches_torch(dtype: str) -> None:
    z = _values(5, 2, 3)
    for value in (0j, 1.5 - 2j, 2.5, 3):
        check(lambda L, x, v=value: x.masked_fill(L.real(x) < 0, v), z, dtype=dtype)


def test_masked_fill_of_a_real_tensor_with_a_complex_value_is_refused_as_torch() -> None:
    x = ds.zeros(3)
    with pytest.raises(InvalidValueError, match="masked_fill.*complex"):
        x.masked_fill(ds.tensor([True, False, True]), 1j)
    with pytest.raises(RuntimeError):
        torch.zeros(3).masked_fill(torch.tensor([True, False, True]), 1j)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_index_add_scatter_add_and_accumulating_index_put_of_complex_match_torch(dtype: str) -> None:
    idx = [0, 2, 0, 1]
    check(lambda L, x, s: x.index_add(0, L.tensor(idx), s), _values(6, 3, 2), _values(7, 4, 2), dtype=dtype)
    check(lambda L, x, s: x.index_add(1, L.tensor(idx), s, alpha=2), _values(6, 2, 3), _values(7, 2, 4), dtype=dtype)
    check(
        lambda L, x, s: x.scatter_add(0, L.tensor([[0, 1], [2, 0]]), s), _values(8, 3, 2), _values(9, 2, 2), dtype=dtype
    )
    check(
        lambda L, x, s: x.index_put((L.tensor(idx),), s, accumulate=True), _values(10, 3), _values(11, 4), dtype=dtype
    )


@pytest.mark.parametrize("dtype", _DTYPES)
def test_var_and_std_of_complex_are_real_and_match_torch(dtype: str) -> None:
    z = _values(12, 3, 4)
    check(lambda L, x: x.var(), z, dtype=dtype)
    check(lambda L, x: x.var(1, keepdim=True), z, dtype=dtype)
    check(lambda L, x: L.std(x, 0, correction=0), z, dtype=dtype)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_reciprocal_and_the_sgn_method_of_complex_match_torch(dtype: str) -> None:
    z = _values(13, 5)
    check(lambda L, x: x.reciprocal(), z, dtype=dtype)
    check(lambda L, x: L.reciprocal(x), z, dtype=dtype)
    check(lambda L, x: x.sgn(), z, dtype=dtype)


def test_the_sgn_method_of_a_real_tensor_is_its_sign() -> None:
    x = [-2.0, 0.0, 3.0]
    np.testing.assert_array_equal(ds.tensor(x).sgn().numpy(), torch.tensor(x).sgn().numpy())


@pytest.mark.parametrize("dtype", _DTYPES)
def test_gradient_of_complex_stays_complex_as_torch(dtype: str) -> None:
    check(lambda L, x: L.gradient(x)[0], _values(14, 5), dtype=dtype)
    check(lambda L, x: L.gradient(x, spacing=0.5, dim=1, edge_order=2)[0], _values(15, 3, 4), dtype=dtype)


def test_is_signed_of_complex_is_true_as_torch() -> None:
    for name in _DTYPES:
        assert ds.ones(2, dtype=getattr(ds, name)).is_signed() is torch.ones(2, dtype=getattr(torch, name)).is_signed()


@pytest.mark.parametrize("method", ["argmax", "argmin"])
def test_argmax_and_argmin_methods_refuse_complex_as_the_functions(method: str) -> None:
    z = ds.tensor(_values(16, 3), dtype=ds.complex64)
    for call in (lambda: getattr(z, method)(), lambda: getattr(z, method)(0)):
        with pytest.raises(DTypeError, match=f"{method}: not supported for complex"):
            call()
    with pytest.raises(RuntimeError):
        getattr(torch.tensor(_values(16, 3)), method)()


def test_where_of_a_complex_number_and_a_real_one_is_complex_as_torch() -> None:
    mask = [True, False, True]
    ours = ds.where(ds.tensor(mask), 1j, 0.5)
    theirs = torch.where(torch.tensor(mask), 1j, 0.5)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("op", ["lt", "le", "gt", "ge"])
def test_ordering_a_real_tensor_against_a_complex_number_is_refused_as_torch(op: str) -> None:
    with pytest.raises(DTypeError, match=f"{op}: not implemented for complex"):
        getattr(ds.tensor([1.0, 2.0]), f"__{op}__")(1j)
    with pytest.raises(NotImplementedError):
        getattr(torch.tensor([1.0, 2.0]), f"__{op}__")(1j)
    np.testing.assert_array_equal((ds.tensor([1.0, 2.0]) == 1 + 0j).numpy(), [True, False])


_REFUSED_WRITES: list[tuple[str, Callable[..., Any]]] = [
    ("index_fill", lambda L, x: x.index_fill(0, L.tensor([0]), 1j)),
    ("scatter-value", lambda L, x: x.scatter(0, L.tensor([0]), 1j)),
    ("scatter-reduce-value", lambda L, x: x.scatter(0, L.tensor([0]), 1j, reduce="add")),
    ("masked_scatter", lambda L, x: x.masked_scatter(L.tensor([True, False]), L.tensor([1j]))),
    ("index_put", lambda L, x: L.index_put(x, (L.tensor([0]),), L.tensor([1j]))),
    ("masked_fill", lambda L, x: x.masked_fill(L.tensor([True, False]), L.tensor(1j))),
]


@pytest.mark.parametrize("fn", [w[1] for w in _REFUSED_WRITES], ids=[w[0] for w in _REFUSED_WRITES])
def test_writing_complex_values_into_a_real_tensor_is_refused_where_torch_refuses(fn: Callable[..., Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refusal must not rest on NumPy's ComplexWarning being an error
        with pytest.raises(InvalidValueError, match="complex value"):
            fn(ds, ds.zeros(2))
    with pytest.raises(RuntimeError):
        fn(torch, torch.zeros(2))


def _recorded_setitem(lib: Any, x: Any) -> Any:
    """``y[0] = z`` on a tensor in the graph (a recorded index_put)."""
    y = x.requires_grad_().clone()
    y[0] = lib.tensor(2 + 1j)
    return y.detach()


_CAST_WRITES: list[tuple[str, Callable[..., Any]]] = [
    ("recorded-setitem", _recorded_setitem),
    ("slice_scatter", lambda L, x: L.slice_scatter(x, L.tensor([2 + 1j]), 0, 0, 1)),
]


@pytest.mark.parametrize("fn", [w[1] for w in _CAST_WRITES], ids=[w[0] for w in _CAST_WRITES])
def test_writes_torch_casts_take_the_real_part_with_a_warning(fn: Callable[..., Any]) -> None:
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        ours = fn(ds, ds.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = fn(torch, torch.zeros(2))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == ds.float32
