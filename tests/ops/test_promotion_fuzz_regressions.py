"""Silent dtype and promotion differences from PyTorch that a differential fuzzer found (values and dtypes
checked against torch, which is the spec): add/sub's alpha, in-place addcmul_/addcdiv_, complex to bool
casts, complex operands of in-place ops, float16 with numbers, ldexp, NumPy integer scalars in bitwise
ops, integer-float comparisons, t[mask] = 0-d tensor, scalar_tensor's dtype, the repr of bool tensors,
and the builtin class of dtype refusals."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError, InvalidValueError

torch = pytest.importorskip("torch")


def _same(d: Any, t: Any) -> None:
    """A downslope result equals torch's: shape, dtype name and values (NaN where torch has NaN)."""
    assert tuple(d.shape) == tuple(t.shape)
    assert str(d.dtype).replace("torch.", "") == str(t.dtype).replace("torch.", "")
    np.testing.assert_array_equal(d.detach().cpu().numpy(), t.detach().numpy())


def _check(fn: Callable[[Any], Any]) -> None:
    _same(fn(ds), fn(torch))


# add/sub(alpha=): alpha * other is taken in the promoted dtype, not in other's own
ALPHA_CASES = {
    "add_f32_u8": lambda L: L.add(L.tensor([0.5]), L.tensor([200], dtype=L.uint8), alpha=2),
    "sub_f32_u8": lambda L: L.sub(L.tensor([0.5]), L.tensor([200], dtype=L.uint8), alpha=2),
    "add_i16_i8": lambda L: L.add(L.tensor([1], dtype=L.int16), L.tensor([100], dtype=L.int8), alpha=3),
    "add_bool_bool": lambda L: L.add(L.tensor([True, False]), L.tensor([True, True]), alpha=2),
    "add_bool_alpha0": lambda L: L.add(L.tensor([True, False]), L.tensor([True, True]), alpha=0),
    "method_add_f32_u8": lambda L: L.tensor([0.5]).add(L.tensor([200], dtype=L.uint8), alpha=2),
    "method_sub_i16_i8": lambda L: L.tensor([1], dtype=L.int16).sub(L.tensor([100], dtype=L.int8), alpha=3),
    "add__f32_u8": lambda L: L.tensor([0.5]).add_(L.tensor([200], dtype=L.uint8), alpha=2),
    "sub__i16_i8": lambda L: L.tensor([1], dtype=L.int16).sub_(L.tensor([100], dtype=L.int8), alpha=3),
    "add_u8_wraps": lambda L: L.add(L.tensor([1], dtype=L.uint8), L.tensor([2], dtype=L.uint8), alpha=-1),
    "add_bool_number_bool": lambda L: L.add(L.tensor([True, False]), True, alpha=2),
    "add_int_number_bool": lambda L: L.add(L.tensor([1, 2]), True, alpha=2),
}


@pytest.mark.parametrize("case", sorted(ALPHA_CASES))
def test_alpha_scales_in_the_promoted_dtype(case: str) -> None:
    _check(ALPHA_CASES[case])


def test_alpha_gradients_match_torch() -> None:
    def grads(L: Any) -> Any:
        a = L.tensor([1.0, 2.0], requires_grad=True)
        b = L.tensor([3.0, 4.0], requires_grad=True)
        (L.add(a, b, alpha=2).sum() + a.sub(b, alpha=3).sum()).backward()
        return L.stack([a.grad, b.grad])

    _check(grads)


# in-place addcmul_/addcdiv_: the factors meet in the dtype of all three, as out of place
ADDC_CASES = {
    "addcmul_i16_i8": lambda L: L.zeros(2, dtype=L.int16).addcmul_(
        L.tensor([100, 50], dtype=L.int8), L.tensor([100, 50], dtype=L.int8)
    ),
    "addcmul_f32_f16": lambda L: L.zeros(1).addcmul_(
        L.tensor([1.001], dtype=L.float16), L.tensor([3.0], dtype=L.float16)
    ),
    "addcdiv_f32_f16": lambda L: L.zeros(1).addcdiv_(
        L.tensor([1.001], dtype=L.float16), L.tensor([3.0], dtype=L.float16), value=0.5
    ),
}


@pytest.mark.parametrize("case", sorted(ADDC_CASES))
def test_inplace_addcmul_addcdiv_in_the_common_dtype(case: str) -> None:
    _check(ADDC_CASES[case])


# complex -> bool: true where either part is nonzero
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("how", ["bool", "to", "type_as"])
def test_complex_to_bool_reads_both_parts(dtype: str, how: str) -> None:
    def cast(L: Any) -> Any:
        z = L.tensor([1j, 0j, 2 + 0j, -1j, 1e-30j], dtype=getattr(L, dtype))
        if how == "bool":
            return z.bool()
        if how == "to":
            return z.to(L.bool)
        return z.type_as(L.tensor([True]))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch does not warn here (no part is discarded)
        _check(cast)


# an in-place op with a complex result into a real tensor is refused, as torch refuses it
INPLACE_COMPLEX = {
    "div_number": lambda L: L.tensor([2.0, 4.0]).div_(1 + 1j),
    "itruediv_tensor": lambda L: L.tensor([2.0, 4.0]).__itruediv__(L.tensor([1j])),
    "int_div_tensor": lambda L: L.tensor([2, 4]).div_(L.tensor([1j])),
    "clamp_min_tensor": lambda L: L.tensor([2.0, 4.0]).clamp_(min=L.tensor([0.5 + 1j])),
    "clamp_max_tensor128": lambda L: L.tensor([2.0, 4.0]).clamp_(max=L.tensor([0.5 + 1j], dtype=L.complex128)),
}


@pytest.mark.parametrize("case", sorted(INPLACE_COMPLEX))
def test_inplace_complex_result_into_real_is_refused(case: str) -> None:
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        INPLACE_COMPLEX[case](torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no warning filter may turn the refusal into a silent real part
        with pytest.raises(DTypeError, match="result type complex.* can't be cast to the desired output type"):
            INPLACE_COMPLEX[case](ds)


# float16 with a number: torch keeps the number's value and computes in float32, rounding once
HALF_CASES = {
    "div_1e5": lambda L: L.tensor([1.0, 3.0, 1000.0], dtype=L.float16) / 1e5,
    "mul_chain": lambda L: L.tensor([1.0, 3.0, 1000.0], dtype=L.float16) * 1e-7 * 1e4,
    "mul_div_70000": lambda L: L.tensor([1.0, 3.0], dtype=L.float16) * 70000 / 70000,
    "div_f64_0d": lambda L: L.tensor([1.0, 3.0, 1000.0], dtype=L.float16) / L.tensor(1e5, dtype=L.float64),
    "add_small": lambda L: L.tensor([1.0, 2048.0], dtype=L.float16) + 1e-4,
    "sub_big": lambda L: L.tensor([1.0, 2048.0], dtype=L.float16) - 1e5,
    "mul_int64_0d": lambda L: L.tensor([1.0, 0.5], dtype=L.float16) * L.tensor(100000) / 4.0,
    "div_trunc_u8": lambda L: L.div(
        L.tensor([65504.0], dtype=L.float16), L.tensor(255, dtype=L.uint8), rounding_mode="trunc"
    ),
    "div_trunc_number": lambda L: L.div(L.tensor([65504.0, 7.0], dtype=L.float16), 1e5, rounding_mode="trunc"),
    "round_decimals": lambda L: L.round(L.tensor([65504.0, 1.26, -3.45], dtype=L.float16), decimals=1),
    "rtruediv": lambda L: 1e5 / L.tensor([1e4, 2.0], dtype=L.float16),
    # two float16 tensors: torch's vectorized kernel rounds the quotient to float16 before the trunc
    "div_trunc_tensors": lambda L: L.div(
        L.ones(8, dtype=L.float16), L.full((8,), -0.04, dtype=L.float16), rounding_mode="trunc"
    ),
    "div_trunc_int_by_0d_half": lambda L: L.div(
        L.tensor([2569, -2569, 87]), L.tensor(10.0, dtype=L.float16), rounding_mode="trunc"
    ),
}


@pytest.mark.parametrize("case", sorted(HALF_CASES))
def test_float16_with_a_number_computes_in_float32(case: str) -> None:
    _check(HALF_CASES[case])


def test_float16_with_a_number_gradient() -> None:
    def grad(L: Any) -> Any:
        h = L.tensor([1.0, 3.0, 1000.0], dtype=L.float16, requires_grad=True)
        (h * 1e-3 + h / 3e4).sum().backward()
        return h.grad

    _check(grad)


# ldexp: exact scaling in the result dtype (integer exponents)
LDEXP_CASES = {
    "f64_big": lambda L: L.ldexp(L.tensor([1.0, 3.0, 0.0], dtype=L.float64), L.tensor([200, 128, 200])),
    "f32_zero_big": lambda L: L.ldexp(L.tensor([0.0, 1.0, 3.0, -2.0, 1.0]), L.tensor([200, 200, -200, 127, -149])),
    "f16": lambda L: L.ldexp(L.tensor([0.0, 1.0, 2.0], dtype=L.float16), L.tensor([200, 20, -25])),
    "int_input": lambda L: L.ldexp(L.tensor([1, 2]), L.tensor([3, 200])),
    "f64_0d_input": lambda L: L.ldexp(L.tensor(1.0, dtype=L.float64), L.tensor([3, 1023])),
    "broadcast": lambda L: L.ldexp(L.tensor([[1.0], [0.5]]), L.tensor([1, -2, 130], dtype=L.int32)),
    "float_exponent": lambda L: L.ldexp(L.tensor([0.0, 1.0, 3.0]), L.tensor([200.0, 2.5, -2.5])),
}


# torch's ldexp warns that it resizes an output when the exponents broadcast the input (its own kernel)
@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized")
@pytest.mark.parametrize("case", sorted(LDEXP_CASES))
def test_ldexp_scales_exactly(case: str) -> None:
    _check(LDEXP_CASES[case])


def test_ldexp_gradient_matches_torch() -> None:
    def grad(L: Any) -> Any:
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        (g,) = L.autograd.grad((L.ldexp(x, L.tensor([3, 10])) ** 2).sum(), x, create_graph=True)
        g.sum().backward()
        return L.stack([g.detach(), x.grad])

    _check(grad)


def test_ldexp_gradient_negative_exponents_closed_form() -> None:
    # torch takes 2**other in integers there (0 for -1 and for 600), so the closed form 2**e * 2**e * 2x is the reference
    x = ds.tensor([1.0, 2.0, 3.0, 0.0], dtype=ds.float64, requires_grad=True)
    e = np.array([-1, -600, 2, 600])
    (g,) = ds.autograd.grad((ds.ldexp(x, ds.tensor(e)) ** 2).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), 2 * np.ldexp(np.ldexp(x.detach().numpy(), e), e))
    assert ds.autograd.gradcheck(lambda t: ds.ldexp(t, ds.tensor(e)), (x,))


# NumPy integer scalars are numbers in bitwise ops, as in arithmetic
NP_SCALAR_CASES = {
    "and_u8": lambda L: L.tensor([200, 15], dtype=L.uint8) & np.int64(0x0F),
    "rshift_u8": lambda L: L.tensor([200, 15], dtype=L.uint8) >> np.int64(4),
    "or_i32": lambda L: L.tensor([1, 2], dtype=L.int32) | np.int64(4),
    "xor_i8_wraps": lambda L: L.tensor([1, 2], dtype=L.int8) ^ np.int64(-1),
    "iand_u8": lambda L: L.tensor([200, 15], dtype=L.uint8).__iand__(np.int64(0x0F)),
    "and_bool_i8": lambda L: L.tensor([True, False]) & np.int8(-3),
    "reflected_and_bool_i8": lambda L: np.int8(-3) & L.tensor([True, False]),
    "reflected_or_u8": lambda L: np.int64(3) | L.tensor([1, 200], dtype=L.uint8),
    "reflected_lshift_u8": lambda L: np.int64(1) << L.tensor([1, 7], dtype=L.uint8),
    "add_bool_i8": lambda L: L.tensor([True, False]) + np.int8(3),
}


@pytest.mark.parametrize("case", sorted(NP_SCALAR_CASES))
def test_numpy_integer_scalar_in_bitwise_ops(case: str) -> None:
    _check(NP_SCALAR_CASES[case])


# comparisons of integer and float operands, in the promoted float dtype
CMP_CASES = {
    "eq_i64_f32": lambda L: L.tensor([2**24 + 1]) == L.tensor([2.0**24]),
    "gt_i64_f32": lambda L: L.tensor([2**24 + 1]) > L.tensor([2.0**24]),
    "eq_i32_f16_inf": lambda L: L.tensor([2**31 - 1], dtype=L.int32) == L.tensor([float("inf")], dtype=L.float16),
    "lt_i32_f16_inf": lambda L: L.tensor([2**31 - 1], dtype=L.int32) < L.tensor([float("inf")], dtype=L.float16),
    "eq_f32_i64": lambda L: L.tensor([2.0**24]) == L.tensor([2**24 + 1]),
    "eq_i64_f64_0d": lambda L: L.tensor([2**24 + 1]) == L.tensor(2.0**24, dtype=L.float64),
    "lt_i64_0d_f32": lambda L: L.tensor(2**24 + 1) < L.tensor([2.0**24]),
    "eq_i64_number": lambda L: L.tensor([2**24 + 1]) == 2.0**24,
    "ge_i64_number": lambda L: L.tensor([2**24 + 1, 3]) >= 2.0**24,
    "eq_fn_bool_f32": lambda L: L.eq(L.tensor([True, False]), L.tensor([1.0, 0.5])),
    "lt_u8_np_i8": lambda L: L.tensor([1, 200], dtype=L.uint8) < np.int8(-3),
    "eq_i64_np_f64": lambda L: L.tensor([2**24 + 1]) == np.float64(2.0**24),
    "gt_u8_np_u8": lambda L: L.tensor([1, 200], dtype=L.uint8) > np.uint8(100),
}


@pytest.mark.parametrize("case", sorted(CMP_CASES))
def test_integer_float_comparisons_in_the_float_dtype(case: str) -> None:
    _check(CMP_CASES[case])


# t[mask] = one-element tensor: checked as a number is (torch's masked_fill), other indices wrap
SETITEM_VALUES = {
    "f32_neg": lambda L: L.tensor(-2.0),
    "i64_neg": lambda L: L.tensor(-2),
    "i64_300": lambda L: L.tensor(300),
    "f32_frac": lambda L: L.tensor(2.5),
    "f32_1d": lambda L: L.tensor([-2.0]),
    "f64_nan": lambda L: L.tensor(float("nan"), dtype=L.float64),
    "bool": lambda L: L.tensor(True),
}


@pytest.mark.host_only  # the masked value's check reads it: on a device it would wait for the device
@pytest.mark.parametrize("index", ["mask", "int", "slice"])
@pytest.mark.parametrize("value", sorted(SETITEM_VALUES))
def test_setitem_tensor_value_into_uint8(index: str, value: str) -> None:
    def write(L: Any) -> Any:
        x = L.tensor([1, 2, 3], dtype=L.uint8)
        v = SETITEM_VALUES[value](L)
        if index == "mask":
            x[x > 1] = v
        elif index == "int":
            x[1] = v
        else:
            x[1:] = v
        return x

    try:
        expected = write(torch)
    except RuntimeError:
        with pytest.raises(InvalidValueError, match="cannot be converted to uint8 without overflow"):
            write(ds)
    else:
        _same(write(ds), expected)


@pytest.mark.parametrize("value", [1, 1.5, True])
def test_scalar_tensor_takes_the_default_dtype(value: Any) -> None:
    for L in (ds, torch):
        L.set_default_dtype(L.float64)
    try:
        _check(lambda L: L.scalar_tensor(value))
    finally:
        for L in (ds, torch):
            L.set_default_dtype(L.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda L: L.tensor([True, False]),
        lambda L: L.tensor([[True], [False]]),
        lambda L: L.tensor(True),
        lambda L: L.tensor([1, 2], dtype=L.int8) > 1,
        lambda L: L.tensor([1.0], dtype=L.float64),
        lambda L: L.tensor([1], dtype=L.uint8),
    ],
)
@pytest.mark.host_only  # a device tensor's repr names its device, which torch's CPU tensors do not
def test_repr_names_the_dtype_as_torch(make: Callable[[Any], Any]) -> None:
    assert repr(make(ds)).replace("downslope.", "") == repr(make(torch)).replace("torch.", "")


REFUSALS = {
    "neg_bool": lambda L: -L.tensor([True]),
    "neg__bool": lambda L: L.tensor([True]).neg_(),
    "clamp__int_float": lambda L: L.tensor([1, 2]).clamp_(min=0.5),
    "clamp__int_float_tensor": lambda L: L.tensor([1, 2]).clamp_(max=L.tensor(0.5)),
    "clamp__bool_int": lambda L: L.tensor([True]).clamp_(min=1),
    "and_float": lambda L: L.tensor([1.0]) & L.tensor([1.0]),
    "and_int_float_number": lambda L: L.tensor([1]) & 1.5,
    "lshift_float": lambda L: L.tensor([1.0]) << 1,
    "bitwise_and_fn_float": lambda L: L.bitwise_and(L.tensor([1.0]), L.tensor([1.0])),
    "addcmul__bool": lambda L: L.tensor([True, False]).addcmul_(L.tensor([True, True]), L.tensor([True, False])),
    "addcmul_bool_value2": lambda L: L.addcmul(L.tensor([True]), L.tensor([True]), L.tensor([True]), value=2),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_dtype_refusals_are_runtime_errors_as_in_torch(case: str) -> None:
    with pytest.raises(RuntimeError):
        REFUSALS[case](torch)
    with pytest.raises(DTypeError) as info:
        REFUSALS[case](ds)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, TypeError)
