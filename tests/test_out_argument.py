"""``out=`` on the top-level functions: each call is written once and run on downslope and on torch;
values, dtypes, shapes and the refusals are compared."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError, StateError

torch = pytest.importorskip("torch")

A = (np.arange(6.0).reshape(2, 3) / 5).astype(np.float32)


def _t(m: Any) -> Any:
    return m.tensor(A)


# name: the call with out= (m is the library); the out tensors are made inside, so both get fresh ones
CASES: dict[str, Callable[[Any], Any]] = {
    "add": lambda m: m.add(_t(m), 1, out=m.empty(2, 3)),
    "add_alpha": lambda m: m.add(_t(m), _t(m), alpha=2, out=m.empty(2, 3)),
    "sub_int_into_float64": lambda m: m.sub(m.tensor([3, 4]), 1, out=m.empty(2, dtype=m.float64)),
    "mul_into_empty": lambda m: m.mul(_t(m), 3, out=m.empty(0)),
    "div": lambda m: m.div(_t(m), 4, out=m.empty(2, 3)),
    "pow": lambda m: m.pow(_t(m), 2, out=m.empty(2, 3)),
    "exp_into_float16": lambda m: m.exp(_t(m), out=m.empty(2, 3, dtype=m.float16)),
    "tanh": lambda m: m.tanh(_t(m), out=m.empty(2, 3)),
    "clamp": lambda m: m.clamp(_t(m), 0.2, 0.6, out=m.empty(2, 3)),
    "where": lambda m: m.where(_t(m) > 0.5, _t(m), m.zeros(2, 3), out=m.empty(2, 3)),
    "matmul": lambda m: m.matmul(_t(m), _t(m).T, out=m.empty(0)),
    "mm": lambda m: m.mm(_t(m), _t(m).T, out=m.empty(2, 2)),
    "bmm": lambda m: m.bmm(_t(m)[None], _t(m).T[None], out=m.empty(1, 2, 2)),
    "addmm": lambda m: m.addmm(m.ones(2, 2), _t(m), _t(m).T, out=m.empty(2, 2)),
    "dot": lambda m: m.dot(_t(m)[0], _t(m)[1], out=m.empty(())),
    "outer": lambda m: m.outer(_t(m)[0], _t(m)[1], out=m.empty(3, 3)),
    "sum_dim": lambda m: m.sum(_t(m), 1, out=m.empty(2)),
    "sum_into_float64": lambda m: m.sum(_t(m), 0, out=m.empty(3, dtype=m.float64)),
    "mean": lambda m: m.mean(_t(m), 0, out=m.empty(3)),
    "prod": lambda m: m.prod(_t(m) + 1, 1, out=m.empty(2)),
    "max_all": lambda m: m.max(_t(m), out=m.empty(())),
    "max_dim": lambda m: m.max(_t(m), 1, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "min_dim": lambda m: m.min(_t(m), 0, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "amax": lambda m: m.amax(_t(m), 1, out=m.empty(2)),
    "amin": lambda m: m.amin(_t(m), 0, out=m.empty(3)),
    "argmax": lambda m: m.argmax(_t(m), 1, out=m.empty(0, dtype=m.int64)),
    "std": lambda m: m.std(_t(m), 1, out=m.empty(2)),
    "var": lambda m: m.var(_t(m), 1, out=m.empty(2)),
    "cumsum": lambda m: m.cumsum(_t(m), 1, out=m.empty(2, 3)),
    "cumprod": lambda m: m.cumprod(_t(m), 1, out=m.empty(2, 3)),
    "logsumexp": lambda m: m.logsumexp(_t(m), 1, out=m.empty(2)),
    "cat": lambda m: m.cat([_t(m), _t(m)], out=m.empty(4, 3)),
    "stack": lambda m: m.stack([_t(m), _t(m)], out=m.empty(0)),
    "sort": lambda m: m.sort(_t(m), 1, True, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "topk": lambda m: m.topk(_t(m), 2, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "gather": lambda m: m.gather(_t(m), 1, m.tensor([[0], [2]]), out=m.empty(2, 1)),
    "index_select": lambda m: m.index_select(_t(m), 1, m.tensor([0, 2]), out=m.empty(2, 2)),
    "tril": lambda m: m.tril(_t(m), out=m.empty(2, 3)),
    "triu": lambda m: m.triu(_t(m), 1, out=m.empty(2, 3)),
    "eq": lambda m: m.eq(_t(m), 0.4, out=m.empty(2, 3, dtype=m.bool)),
    "zeros_in_out_dtype": lambda m: m.zeros(2, 3, out=m.empty(0, dtype=m.float64)),
    "ones_into_int": lambda m: m.ones(3, out=m.empty(3, dtype=m.int64)),
    "full": lambda m: m.full((2, 2), 7.0, out=m.empty(2, 2)),
    "eye": lambda m: m.eye(3, out=m.empty(3, 3)),
    "arange_int": lambda m: m.arange(5, out=m.empty(0, dtype=m.int64)),
    "arange_float64": lambda m: m.arange(0, 1, 0.1, out=m.empty(0, dtype=m.float64)),
    "linspace": lambda m: m.linspace(0, 1, 5, out=m.empty(5)),
    # sum/prod/cumsum/cumprod compute in out's dtype (the inputs cast first), as torch's
    "sum_float_into_int64": lambda m: m.sum(
        m.tensor([[1.5, 1.5, 2.7], [-1.5, 0.2, 3.0]]), 1, out=m.empty(0, dtype=m.int64)
    ),
    "sum_into_bool": lambda m: m.sum(m.tensor([[0.0, 0.5], [0.0, 0.0]]), 1, out=m.empty(0, dtype=m.bool)),
    "sum_dim_none": lambda m: m.sum(m.tensor([1.5, 2.0]), dim=None, out=m.empty(0, dtype=m.int64)),
    "prod_float_into_int32": lambda m: m.prod(m.tensor([[1.5, 2.7]]), 1, out=m.empty(0, dtype=m.int32)),
    "cumsum_float_into_int64": lambda m: m.cumsum(m.tensor([1.5, 1.5, 2.7]), 0, out=m.empty(0, dtype=m.int64)),
    "sum_into_float16": lambda m: m.sum(_t(m), 1, out=m.empty(0, dtype=m.float16)),
    "mean_into_float64": lambda m: m.mean(_t(m), 1, out=m.empty(0, dtype=m.float64)),
    "mul_int_into_float64": lambda m: m.mul(m.tensor([2, 3]), 2, out=m.empty(0, dtype=m.float64)),
    "frexp": lambda m: m.frexp(m.tensor([3.0, -0.3]), out=(m.empty(0), m.empty(0, dtype=m.int32))),
    "median_dim": lambda m: m.median(_t(m), 1, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "kthvalue": lambda m: m.kthvalue(_t(m), 2, 1, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "mode": lambda m: m.mode(_t(m), 1, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    "cummax": lambda m: m.cummax(_t(m), 1, out=(m.empty(0), m.empty(0, dtype=m.int64))),
    # activations, special functions, bit ops and linear algebra
    "sigmoid": lambda m: m.sigmoid(_t(m), out=m.empty(2, 3)),
    "sigmoid_into_float64": lambda m: m.sigmoid(_t(m), out=m.empty(0, dtype=m.float64)),
    "softmax": lambda m: m.softmax(_t(m), 1, out=m.empty(2, 3)),
    "log_softmax": lambda m: m.log_softmax(_t(m), 0, out=m.empty(0)),
    "log_softmax_dtype": lambda m: m.log_softmax(_t(m), 1, dtype=m.float64, out=m.empty(0, dtype=m.float64)),
    "digamma": lambda m: m.digamma(_t(m) + 2, out=m.empty(2, 3)),
    "i0": lambda m: m.i0(_t(m), out=m.empty(2, 3)),
    "igammac": lambda m: m.igammac(_t(m) + 1, _t(m) + 0.5, out=m.empty(2, 3)),
    "polygamma": lambda m: m.polygamma(1, _t(m) + 1, out=m.empty(0, dtype=m.float64)),
    "mvlgamma": lambda m: m.mvlgamma(_t(m) + 2, 2, out=m.empty(2, 3)),
    "isposinf": lambda m: m.isposinf(m.tensor([1.0, float("inf")]), out=m.empty(2, dtype=m.bool)),
    "isneginf": lambda m: m.isneginf(m.tensor([1.0, -float("inf")]), out=m.empty(2, dtype=m.bool)),
    "nextafter": lambda m: m.nextafter(_t(m), m.ones(2, 3), out=m.empty(2, 3)),
    "bitwise_and": lambda m: m.bitwise_and(m.tensor([3, 5]), m.tensor([6, 4]), out=m.empty(2, dtype=m.int64)),
    "bitwise_and_into_float": lambda m: m.bitwise_and(m.tensor([3, 5]), 6, out=m.empty(2)),
    "bitwise_or_into_int8": lambda m: m.bitwise_or(m.tensor([3, 5]), 8, out=m.empty(0, dtype=m.int8)),
    "bitwise_xor_bool": lambda m: m.bitwise_xor(m.tensor([True, False]), True, out=m.empty(2, dtype=m.bool)),
    "bitwise_not": lambda m: m.bitwise_not(m.tensor([3, -5]), out=m.empty(2, dtype=m.int64)),
    "bitwise_left_shift": lambda m: m.bitwise_left_shift(m.tensor([3, 5]), 2, out=m.empty(2, dtype=m.int64)),
    "bitwise_right_shift": lambda m: m.bitwise_right_shift(m.tensor([12, 5]), 1, out=m.empty(0, dtype=m.int64)),
    "gcd": lambda m: m.gcd(m.tensor([12, 5]), m.tensor([8, 15]), out=m.empty(2, dtype=m.int64)),
    "lcm": lambda m: m.lcm(m.tensor([12, 5]), m.tensor([8, 15]), out=m.empty(2, dtype=m.int64)),
    "inverse": lambda m: m.inverse(_t(m)[:, :2] + m.eye(2), out=m.empty(2, 2)),
    "matrix_power": lambda m: m.matrix_power(_t(m)[:, :2], 3, out=m.empty(0)),
    "cholesky_into_float64": lambda m: m.cholesky(m.eye(2) * 4, out=m.empty(0, dtype=m.float64)),
    "cholesky_inverse": lambda m: m.cholesky_inverse(m.eye(2) * 2, out=m.empty(2, 2)),
    "cholesky_solve": lambda m: m.cholesky_solve(_t(m)[:, :2], m.eye(2) * 2, out=m.empty(0, dtype=m.float64)),
    "qr": lambda m: m.qr(m.eye(2) * 4, out=(m.empty(0), m.empty(0))),
    "triangular_solve": lambda m: m.triangular_solve(_t(m)[:, :2], m.eye(2) * 2, out=(m.empty(0), m.empty(0))),
    "lu_solve": lambda m: m.lu_solve(_t(m)[:, :2], *m.linalg.lu_factor(m.eye(2) * 2), out=m.empty(2, 2)),
    "chain_matmul": lambda m: m.chain_matmul(_t(m), _t(m).T, out=m.empty(2, 2)),
    "histc": lambda m: m.histc(_t(m), 4, out=m.empty(0)),
    "renorm": lambda m: m.renorm(_t(m), 2, 0, 0.5, out=m.empty(2, 3)),
    "ldexp": lambda m: m.ldexp(_t(m), m.tensor([1, 2, 3]), out=m.empty(2, 3)),
    "special_expit": lambda m: m.special.expit(_t(m), out=m.empty(2, 3)),
    "special_erfcx": lambda m: m.special.erfcx(_t(m), out=m.empty(0, dtype=m.float64)),
    "special_ndtri": lambda m: m.special.ndtri(_t(m) / 2 + 0.1, out=m.empty(2, 3)),
    "special_xlog1py": lambda m: m.special.xlog1py(_t(m), _t(m), out=m.empty(2, 3)),
    "special_logit_eps": lambda m: m.special.logit(_t(m), eps=0.1, out=m.empty(2, 3)),
    "special_logsumexp": lambda m: m.special.logsumexp(_t(m), 1, out=m.empty(2)),
    "special_round": lambda m: m.special.round(_t(m), decimals=1, out=m.empty(2, 3)),
    "special_multigammaln": lambda m: m.special.multigammaln(_t(m) + 2, 2, out=m.empty(2, 3)),
    "special_i1e": lambda m: m.special.i1e(_t(m), out=m.empty(2, 3)),
    "special_gammaincc": lambda m: m.special.gammaincc(_t(m) + 1, _t(m) + 0.5, out=m.empty(2, 3)),
    "linalg_cross": lambda m: m.linalg.cross(_t(m), _t(m).flip(1), out=m.empty(2, 3)),
    "linalg_cross_dim0": lambda m: m.linalg.cross(_t(m).T, _t(m).T.flip(0), dim=0, out=m.empty(0)),
    "linalg_inv": lambda m: m.linalg.inv(_t(m)[:, :2] + m.eye(2), out=m.empty(2, 2)),
    "linalg_det": lambda m: m.linalg.det(_t(m)[:, :2] + m.eye(2), out=m.empty(())),
    "linalg_solve": lambda m: m.linalg.solve(_t(m)[:, :2] + m.eye(2), _t(m), out=m.empty(2, 3)),
    "linalg_vector_norm": lambda m: m.linalg.vector_norm(_t(m), dim=1, out=m.empty(2)),
    "linalg_matrix_norm": lambda m: m.linalg.matrix_norm(_t(m), out=m.empty(())),
    "linalg_norm": lambda m: m.linalg.norm(_t(m), out=m.empty(())),
    "linalg_matmul": lambda m: m.linalg.matmul(_t(m), _t(m).T, out=m.empty(2, 2)),
    "linalg_vecdot": lambda m: m.linalg.vecdot(_t(m), _t(m), out=m.empty(2)),
    "linalg_multi_dot": lambda m: m.linalg.multi_dot([_t(m), _t(m).T, _t(m)], out=m.empty(2, 3)),
    "linalg_svdvals": lambda m: m.linalg.svdvals(_t(m), out=m.empty(2)),
    "linalg_pinv_into_float64": lambda m: m.linalg.pinv(m.eye(2) * 4, out=m.empty(0, dtype=m.float64)),
    "linalg_matrix_rank": lambda m: m.linalg.matrix_rank(_t(m), out=m.empty((), dtype=m.int64)),
    "linalg_slogdet": lambda m: m.linalg.slogdet(_t(m)[:, :2] + m.eye(2), out=(m.empty(()), m.empty(()))),
    "linalg_eigvalsh": lambda m: m.linalg.eigvalsh(_t(m)[:, :2] @ _t(m)[:, :2].T, out=m.empty(2)),
    "linalg_cholesky": lambda m: m.linalg.cholesky(_t(m)[:, :2] @ _t(m)[:, :2].T + m.eye(2), out=m.empty(2, 2)),
    "linalg_solve_triangular": lambda m: m.linalg.solve_triangular(
        _t(m)[:, :2] + m.eye(2), _t(m), upper=True, out=m.empty(2, 3)
    ),
}


def _summary(result: Any) -> Any:
    parts = result if isinstance(result, tuple) else (result,)
    return [(str(p.dtype).replace("torch.", ""), tuple(p.shape), np.asarray(p.tolist()).tolist()) for p in parts]


@pytest.mark.parametrize("name", sorted(CASES))
def test_out_gets_torchs_values_dtype_and_shape(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours, theirs = CASES[name](ds), CASES[name](torch)
    a, b = _summary(ours), _summary(theirs)
    assert [x[:2] for x in a] == [x[:2] for x in b]
    for (_, _, va), (_, _, vb) in zip(a, b):
        np.testing.assert_allclose(np.asarray(va, dtype=float), np.asarray(vb, dtype=float), rtol=1e-6, atol=1e-7)


def test_out_is_written_in_place_and_returned() -> None:
    base = ds.zeros(4)
    view = base[:3]
    result = ds.add(ds.ones(3), ds.ones(3), out=view)
    assert result is view and base.tolist() == [2.0, 2.0, 2.0, 0.0]
    values, indices = ds.empty(0), ds.empty(0, dtype=ds.int64)
    named = ds.max(ds.tensor(A), 1, out=(values, indices))
    assert named.values is values and named.indices is indices and values.tolist() == pytest.approx([0.4, 1.0])
    a = ds.tensor([1.0, 2.0])
    assert ds.mul(a, a, out=a) is a and a.tolist() == [1.0, 4.0]  # an input as out: computed, then written


def test_out_of_another_shape_is_resized_with_torchs_warning() -> None:
    for m in (ds, torch):
        with pytest.warns(UserWarning, match="resized since it had shape \\[2\\]"):
            assert tuple(m.add(m.ones(3), 1, out=m.empty(2)).shape) == (3,)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an out with no elements is resized silently
            assert tuple(m.add(m.ones(3), 1, out=m.empty(0)).shape) == (3,)


def test_out_refuses_inputs_that_require_grad_but_not_under_no_grad() -> None:
    for m, error in ((ds, StateError), (torch, RuntimeError)):
        x = m.ones(3, requires_grad=True)
        message = "functions with out=... arguments don't support automatic differentiation"
        with pytest.raises(error, match=message):
            m.add(x, 1, out=m.empty(3))
        with pytest.raises(error, match=message):
            m.add(m.ones(3), 1, out=m.empty(3, requires_grad=True))
        with m.no_grad():
            out = m.empty(3)
            m.add(x, 1, out=out)
        assert out.tolist() == [2.0, 2.0, 2.0] and not out.requires_grad


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.add(m.ones(2), 1, out=m.empty(2, dtype=m.int64)), "can't be cast to the desired output type"),
        (lambda m: m.mm(m.ones(2, 2), m.ones(2, 2), out=m.empty(2, 2, dtype=m.float64)), "dtype"),
        (lambda m: m.argmax(m.ones(3), out=m.empty((), dtype=m.int32)), "dtype"),
        (lambda m: m.zeros(2, dtype=m.float32, out=m.empty(2, dtype=m.float64)), "does not match dtype of out"),
        (lambda m: m.add(m.ones(2), 1, out=np.empty(2)), "'out' must be Tensor"),
        (lambda m: m.max(m.ones(2, 2), 1, out=m.empty(2)), "out"),
    ],
)
def test_bad_out_arguments_are_refused_as_torch(call: Callable[[Any], Any], message: str) -> None:
    with pytest.raises((RuntimeError, TypeError), match=message):
        call(torch)
    with pytest.raises((ArgumentTypeError, StateError), match=message):
        call(ds)


def test_methods_and_ops_are_untouched_and_aliases_stay_one_object() -> None:
    assert ds.subtract is ds.sub and ds.absolute is ds.abs and ds.add.__wrapped__ is ds.ops.add
    assert ds.special.erf is ds.erf and ds.special.psi is ds.digamma and ds.inverse is ds.linalg.inv
    assert ds.special.gammaincc is ds.igammac and ds.matrix_power is ds.linalg.matrix_power
    assert ds.special.expit is ds.sigmoid and ds.ops.add(ds.ones(1), ds.ones(1)).tolist() == [2.0]
    with pytest.raises(TypeError):
        ds.ones(2).add(1, out=ds.empty(2))  # as torch: methods take no out=


def _calls_made(fn: Callable[[], Any]) -> int:
    """The Python and C function calls ``fn()`` makes (counted, not timed: the machine is shared)."""
    fn()  # warm: first-call work (imports, caches) is not the wrapper's cost
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_a_call_without_out_costs_about_one_dict_lookup() -> None:
    x, y = ds.ones(3), ds.ones(3)
    wrapped, plain = ds.add, ds.ops.add
    assert _calls_made(lambda: wrapped(x, y)) <= _calls_made(lambda: plain(x, y)) + 1


# The functions returning several tensors want each out in its result's dtype (indices int64), with
# no cast, and so do the ops torch implements without one; the rest cast as torch's canCast allows.
_FLOAT, _INTS = (np.array([[0.3, -1.2, 2.5], [1.0, 0.5, -0.7]], np.float32), np.array([[1, 2, 3], [6, 5, 4]]))
_EXACT_CALLS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "max_dim": lambda m, x, o: m.max(x, 1, out=o(2)),
    "min_dim": lambda m, x, o: m.min(x, 1, out=o(2)),
    "sort": lambda m, x, o: m.sort(x, 1, out=o(2)),
    "topk": lambda m, x, o: m.topk(x, 2, out=o(2)),
    "median_dim": lambda m, x, o: m.median(x, 1, out=o(2)),
    "nanmedian_dim": lambda m, x, o: m.nanmedian(x, 1, out=o(2)),
    "kthvalue": lambda m, x, o: m.kthvalue(x, 1, 1, out=o(2)),
    "mode": lambda m, x, o: m.mode(x, 1, out=o(2)),
    "cummax": lambda m, x, o: m.cummax(x, 1, out=o(2)),
    "cummin": lambda m, x, o: m.cummin(x, 1, out=o(2)),
    "aminmax": lambda m, x, o: m.aminmax(x, dim=1, out=o(2)),
    "abs": lambda m, x, o: m.abs(x, out=o(1)),
    "neg": lambda m, x, o: m.neg(x, out=o(1)),
    "floor": lambda m, x, o: m.floor(x, out=o(1)),
    "clamp": lambda m, x, o: m.clamp(x, 0, 1, out=o(1)),
    "where": lambda m, x, o: m.where(x > 0, x, x, out=o(1)),
    "tril": lambda m, x, o: m.tril(x, out=o(1)),
    "amax": lambda m, x, o: m.amax(x, 1, out=o(1)),
    "msort": lambda m, x, o: m.msort(x, out=o(1)),
    "take": lambda m, x, o: m.take(x, m.tensor([0, 4]), out=o(1)),
    "nonzero": lambda m, x, o: m.nonzero(x, out=o(1)),
    "signbit": lambda m, x, o: m.signbit(x, out=o(1)),
    "mean": lambda m, x, o: m.mean(x, 1, out=o(1)),
    "add": lambda m, x, o: m.add(x, x, out=o(1)),
    "cat": lambda m, x, o: m.cat([x, x], out=o(1)),
    "std": lambda m, x, o: m.std(x, 1, out=o(1)),
    "max_all": lambda m, x, o: m.max(x, out=o(1)),
    "sigmoid": lambda m, x, o: m.sigmoid(x, out=o(1)),
    "softmax": lambda m, x, o: m.softmax(x.float(), 1, out=o(1)),
    "log_softmax": lambda m, x, o: m.log_softmax(x.float(), 1, out=o(1)),
    "bitwise_and": lambda m, x, o: m.bitwise_and(x, x, out=o(1)),
    "bitwise_not": lambda m, x, o: m.bitwise_not(x, out=o(1)),
    "bitwise_left_shift": lambda m, x, o: m.bitwise_left_shift(x, x, out=o(1)),
    "gcd": lambda m, x, o: m.gcd(x, x, out=o(1)),
    "isposinf": lambda m, x, o: m.isposinf(x, out=o(1)),
    "digamma": lambda m, x, o: m.digamma(x, out=o(1)),
    "special_expit": lambda m, x, o: m.special.expit(x, out=o(1)),
    "special_ndtr": lambda m, x, o: m.special.ndtr(x, out=o(1)),
    "linalg_cross": lambda m, x, o: m.linalg.cross(x, x.flip(1), out=o(1)),
    "linalg_vector_norm": lambda m, x, o: m.linalg.vector_norm(x.float(), dim=1, out=o(1)),
    "linalg_matmul": lambda m, x, o: m.linalg.matmul(x, x.T, out=o(1)),
    "linalg_svdvals": lambda m, x, o: m.linalg.svdvals(x.float(), out=o(1)),
    "linalg_pinv": lambda m, x, o: m.linalg.pinv(m.eye(2) * 4, out=o(1)),
}


@pytest.mark.parametrize("name", sorted(_EXACT_CALLS))
@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32", "bool"])
@pytest.mark.parametrize("data", ["float", "int"])
def test_out_dtypes_are_accepted_or_refused_as_torch(name: str, which: int, dtype: str, data: str) -> None:
    def run(m: Any) -> Any:
        x = m.tensor(_FLOAT if data == "float" else _INTS)
        base = _EXACT_CALLS[name](m, x, lambda n: None if n == 1 else (None,) * n)
        results = base if isinstance(base, tuple) else (base,)
        if which >= len(results):
            pytest.skip("one result")
        outs = [m.empty(0, dtype=r.dtype) for r in results]
        outs[which] = m.empty(0, dtype=getattr(m, dtype))
        return _EXACT_CALLS[name](m, x, lambda n: tuple(outs) if n > 1 else outs[0])

    try:
        theirs = run(torch)
    except (RuntimeError, TypeError, NotImplementedError) as error:
        if "unexpected keyword" in str(error) or "invalid combination" in str(error):
            pytest.skip("torch has no such call")
        with pytest.raises((ArgumentTypeError, StateError)):
            run(ds)
        return
    a, b = _summary(run(ds)), _summary(theirs)
    assert [x[:2] for x in a] == [x[:2] for x in b]
    for (_, _, va), (_, _, vb) in zip(a, b):
        np.testing.assert_allclose(np.asarray(va, dtype=float), np.asarray(vb, dtype=float), rtol=1e-6)


def test_index_outs_of_the_wrong_dtype_are_refused_with_torchs_message() -> None:
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype long int, but got float instead"):
        torch.max(torch.rand(2, 3), 1, out=(torch.empty(0), torch.empty(0)))
    with pytest.raises(ArgumentTypeError, match="expected out tensor to have dtype int64, but got float32 instead"):
        ds.max(ds.rand(2, 3), 1, out=(ds.empty(0), ds.empty(0)))
    with pytest.raises(ArgumentTypeError, match="dtype int32, but got int64"):
        ds.frexp(ds.tensor([3.0]), out=(ds.empty(0), ds.empty(0, dtype=ds.int64)))


def test_sum_and_prod_take_out_only_with_a_dim_and_an_explicit_dtype_must_be_outs() -> None:
    for m, errors in ((torch, (TypeError, RuntimeError)), (ds, ArgumentTypeError)):
        with pytest.raises(errors):
            m.sum(m.ones(2), out=m.empty(0))
        with pytest.raises(errors):
            m.prod(m.ones(2), out=m.empty(0))
        with pytest.raises(errors, match="dtype"):
            m.sum(m.ones(2, 2), 1, dtype=m.float64, out=m.empty(0))
        with pytest.raises(errors, match="dtype"):
            m.mean(m.ones(2, 2), 1, dtype=m.float64, out=m.empty(0))
        assert m.sum(m.ones(2, 2), 1, dtype=m.float64, out=m.empty(0, dtype=m.float64)).tolist() == [2.0, 2.0]


def test_functions_torch_gives_no_out_take_none() -> None:
    for name in ("argsort", "argwhere", "count_nonzero"):
        for m in (torch, ds):
            with pytest.raises(TypeError):
                getattr(m, name)(m.ones(2, 2), out=m.empty(0, dtype=m.int64))
    for m in (torch, ds):
        for fn in (m.special.softmax, m.special.log_softmax):
            with pytest.raises(TypeError):
                fn(m.ones(2), 0, out=m.empty(2))


def test_out_refuses_grad_and_writes_in_place_for_the_newly_covered_namespaces() -> None:
    x = ds.tensor([0.5, -1.0], requires_grad=True)
    with pytest.raises(StateError, match="don't support automatic differentiation"):
        ds.special.expit(x, out=ds.empty(2))
    with pytest.raises(StateError, match="don't support automatic differentiation"):
        ds.linalg.vector_norm(x, out=ds.empty(()))
    o = ds.empty(2)
    with ds.no_grad():
        assert ds.sigmoid(x, out=o) is o
    np.testing.assert_allclose(o.numpy(), torch.sigmoid(torch.tensor([0.5, -1.0])).numpy(), rtol=1e-6)
    q = ds.empty(2, 3)
    view = q[0]
    ds.linalg.cross(ds.tensor(A), ds.tensor(A[:, ::-1].copy()), out=q)
    np.testing.assert_array_equal(view.numpy(), q.numpy()[0])  # written in place: views see the values


@pytest.mark.parametrize("namespace", ["special", "linalg"])
def test_every_function_torch_documents_with_out_takes_it(namespace: str) -> None:
    """torch.special's and torch.linalg's functions whose documentation shows out= take it here too
    (special.gammaln and special.gammainc too: ds.lgamma and ds.igamma come wrapped from
    downslope.ops.special, so downslope.distributions re-exports the very same objects)."""
    wrapper_code = ds.ops.out.with_out(lambda: 0).__code__
    ours, theirs = getattr(ds, namespace), getattr(torch, namespace)
    missing = []
    for name in sorted(ours.__all__):
        documented = getattr(theirs, name, None).__doc__ or ""
        if ("out=None" in documented or "out (Tensor" in documented or "out (tuple" in documented) and getattr(
            getattr(ours, name), "__code__", None
        ) is not wrapper_code:
            missing.append(name)
    assert missing == []


# ---------------------------------------------------------------------- torch's keyword names
_KEYWORD_CALLS = [
    "L.where(condition=x > 0, input=x, other=0.0)",
    "L.gather(input=x, dim=1, index=L.tensor([[0], [1]]))",
    "L.max(input=x, dim=1)",
    "L.matmul(x, x)",
    "L.sum(input=x, dim=0)",
    "L.mean(input=x, dim=1, keepdim=True)",
    "L.zeros_like(input=x)",
    "L.ones_like(input=x, dtype=L.float64)",
    "L.quantile(input=x, q=0.5, dim=1)",
    "L.histc(input=x, bins=3)",
    "L.cumsum(input=x, dim=0)",
    "L.chunk(input=x, chunks=2)",
    "L.flip(input=x, dims=(0,))",
    "L.exp(input=x)",
    "L.polygamma(1, input=x.abs() + 1)",
    "L.full(size=(2,), fill_value=3.0)",
    "L.sum(input=x, dim=0, out=L.empty(2))",
    "x.flip(dims=(0,))",
    "x.tile(dims=(2,))",
    "x.permute(dims=(1, 0))",
    "x.transpose(dim0=0, dim1=1)",
    "x.transpose(0, dim1=1)",
    "x.repeat(repeats=(2, 1))",
    "x.view(size=(4,))",
    "x.view(dtype=L.int32)",
    "x.reshape(shape=(4,))",
    "x.expand(size=(3, 2, 2))",
    "x.new_zeros(size=(2,))",
    "x.new_ones(size=[2])",
    "x.new_empty(size=(2,)).fill_(1.0)",
    "x.new_full(size=(2,), fill_value=1.0)",
    "x.mm(mat2=x.T)",
    "x[None].bmm(mat2=x[None])",
]


@pytest.mark.parametrize("call", _KEYWORD_CALLS)
def test_torch_keyword_names_match_torch(call: str) -> None:
    base = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    got = []
    for L in (torch, ds):
        x = L.tensor(base)  # noqa: F841 (used by eval)
        r = eval(call)
        r = r[0] if isinstance(r, (tuple, list)) else r
        got.append(r.detach().numpy())
    assert got[0].shape == got[1].shape and got[0].dtype == got[1].dtype
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6)


@pytest.mark.parametrize(
    "call",
    ["x.new_zeros(2, size=(3,))", "x.view(4, size=(4,))", "x.permute(1, 0, dims=(1, 0))", "x.flip(0, dims=(0,))"],
)
def test_keyword_and_positional_sizes_together_refused(call: str) -> None:
    x = ds.tensor(np.ones((2, 2), np.float32))  # noqa: F841 (used by eval)
    with pytest.raises(ArgumentTypeError, match="multiple values"):
        eval(call)


def test_input_keyword_only_where_torch_takes_it() -> None:
    x = ds.ones(2)
    with pytest.raises(TypeError):
        ds.cat(input=[x, x])  # torch.cat names it tensors
    with pytest.raises(TypeError):
        ds.tensordot(input=x, b=x)  # torch.tensordot names them a, b


# torch's keywords for a function's second (and third) tensors: other=, mat2=, exponent=...
_INTEGER_OPS = {"bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm"}
_SECOND_KEYWORD_CALLS = [
    *(
        f"L.{name}(input=i, other=j)" if name in _INTEGER_OPS else f"L.{name}(input=x, other=y)"
        for name in (
            "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
            "remainder", "fmod", "maximum", "minimum", "fmax", "fmin", "atan2", "arctan2", "hypot", "copysign",
            "logaddexp", "logaddexp2", "xlogy", "nextafter", "igammac", "eq", "ne", "lt", "le", "gt", "ge",
            "greater", "greater_equal", "less", "less_equal", "not_equal", "logical_and", "logical_or",
            "logical_xor", "matmul", "inner", "kron", "isclose", "dist", *sorted(_INTEGER_OPS),
        )
    ),
    "L.ldexp(input=x, other=i)",
    "L.add(x, other=y, alpha=2)",
    "L.sub(input=x, other=y, out=L.empty(2, 2))",
    "L.pow(input=x.abs(), exponent=y)",
    "L.float_power(input=x.abs(), exponent=y)",
    "L.mm(input=x, mat2=y)",
    "L.bmm(input=x[None], mat2=y[None])",
    "L.mv(input=x, vec=y[0])",
    "L.dot(input=x[0], tensor=y[0])",
    "L.vdot(input=x[0], other=y[0])",
    "L.outer(input=x[0], vec2=y[0])",
    "L.ger(input=x[0], vec2=y[0])",
    "L.addmm(input=x, mat1=x, mat2=y)",
    "L.addmv(input=x[0], mat=x, vec=y[0])",
    "L.addbmm(input=x, batch1=x[None], batch2=y[None])",
    "L.baddbmm(input=x[None], batch1=x[None], batch2=y[None])",
    "L.addr(input=x, vec1=x[0], vec2=y[0])",
    "L.heaviside(input=x, values=y)",
    "L.cross(input=L.ones(3), other=L.arange(3.0), dim=0)",
]  # fmt: skip


@pytest.mark.parametrize("call", _SECOND_KEYWORD_CALLS)
def test_torch_keywords_for_the_other_operands_match_torch(call: str) -> None:
    got = []
    for L in (torch, ds):
        x = L.tensor(np.array([[0.5, -1.0], [2.0, 0.25]], np.float32))  # noqa: F841 (used by eval)
        y = L.tensor(np.array([[1.5, 2.0], [-0.5, 3.0]], np.float32))  # noqa: F841
        i = L.tensor(np.array([[6, 3], [4, 1]], np.int64))  # noqa: F841
        j = L.tensor(np.array([[4, 1], [2, 3]], np.int64))  # noqa: F841
        got.append(np.asarray(eval(call).detach().numpy()))
    assert got[0].shape == got[1].shape and got[0].dtype == got[1].dtype
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6)


def test_the_other_operand_keyword_booleans_match_torch() -> None:
    for L in (torch, ds):
        x, y = L.ones(2), L.ones(2)
        assert L.equal(input=x, other=y) is True
        assert bool(L.allclose(input=x, other=y + 1)) is False
    with pytest.raises(TypeError, match="multiple values"):
        ds.add(input=ds.ones(2), b=ds.ones(2), other=ds.ones(2))  # two values for the second operand
