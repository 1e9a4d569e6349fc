"""Python numbers meeting integer tensors (downslope.ops.operands) against PyTorch: a number takes part
in an op as torch's "wrapped number". It wraps into the tensor's dtype where the op computes in that
dtype (add, bitwise ops, comparisons), keeps its value where the result is floating (true division),
and is checked where it is written into a tensor (fill_, t[i] = v, clamp bounds, masked_fill)."""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_OPERATORS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}
_VALUES = {
    "uint8": [4, 8, 0, 255, 127],
    "int8": [4, 8, 0, -3, 127],
    "int16": [4, 8, 0, -3, 127],
    "int32": [4, 8, 0, -3, 127],
    "int64": [4, 8, 0, -3, 127],
    "bool": [True, False, True],
}
_NUMBERS = [300, -2, 256, 2**40, -1, 2.5, 0, 1, 2, True, -129, 2**63 - 1, -(2**63)]


def _outcome(lib, dtype, number, op, reflected):
    x = lib.tensor(_VALUES[dtype], dtype=getattr(lib, dtype))
    try:
        with np.errstate(all="ignore"):
            out = op(number, x) if reflected else op(x, number)
    except Exception:
        return "error"
    values = ["nan" if isinstance(v, float) and math.isnan(v) else v for v in out.tolist()]
    return str(out.dtype).replace("torch.", ""), values


def _divides_by_zero(name, dtype, number, reflected):
    """Integer floor division or modulo by a zero: torch's CPU kernels raise, and downslope checks the
    divisor's values on host arrays only (a device check would wait for the GPU; CUDA torch does not raise)."""
    if name not in ("floordiv", "mod"):
        return False
    x = torch.tensor(_VALUES[dtype], dtype=getattr(torch, dtype))
    try:
        divisor = x if reflected else torch.zeros_like(x) + number  # the number as the op wraps it
    except Exception:
        return False
    return not divisor.is_floating_point() and bool((divisor == 0).any())


@pytest.mark.parametrize("dtype", list(_VALUES))
@pytest.mark.parametrize("number", _NUMBERS, ids=repr)
def test_a_number_meets_an_integer_tensor_as_in_torch(dtype, number):
    mismatches = []
    for name, op in _OPERATORS.items():
        for reflected in (False, True):
            if _divides_by_zero(name, dtype, number, reflected):
                continue  # test_integer_division_by_zero_raises_as_in_torch
            want = _outcome(torch, dtype, number, op, reflected)
            got = _outcome(ds, dtype, number, op, reflected)
            if want != got:
                mismatches.append((name, reflected, want, got))
    assert not mismatches


@pytest.mark.host_only  # the divisor's values are checked on host arrays only (see _divides_by_zero)
@pytest.mark.parametrize("dtype", list(_VALUES))
@pytest.mark.parametrize("number", _NUMBERS, ids=repr)
def test_integer_division_by_zero_raises_as_in_torch(dtype, number):
    mismatches = []
    for name in ("floordiv", "mod"):
        for reflected in (False, True):
            if not _divides_by_zero(name, dtype, number, reflected):
                continue
            want = _outcome(torch, dtype, number, _OPERATORS[name], reflected)
            got = _outcome(ds, dtype, number, _OPERATORS[name], reflected)
            if want != got:
                mismatches.append((name, reflected, want, got))
    assert not mismatches


@pytest.mark.parametrize(
    ("dtype", "number"), [("uint8", 256), ("uint8", -2), ("int8", 300), ("int32", 2**40), ("int64", 2**62)]
)
def test_true_division_by_an_out_of_range_number_keeps_its_value(dtype, number):
    got = ds.tensor([4, 8], dtype=getattr(ds, dtype)) / number
    want = torch.tensor([4, 8], dtype=getattr(torch, dtype)) / number
    assert got.dtype == ds.float32
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal((number / ds.tensor([4, 8], dtype=getattr(ds, dtype))).numpy(),
                                  (number / torch.tensor([4, 8], dtype=getattr(torch, dtype))).numpy())  # fmt: skip


def test_true_division_by_a_0d_integer_tensor_keeps_its_value():
    u = np.array([3, 200], np.uint8)
    for divisor in (300, -2):
        got = ds.from_numpy(u) / ds.tensor(divisor)
        want = torch.from_numpy(u) / torch.tensor(divisor)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", ["xlogy", "copysign"])
@pytest.mark.parametrize("number", [256, -1, -2])
def test_floating_ops_of_an_integer_tensor_and_a_number_keep_its_value(name, number):
    u = np.array([3, 200], np.uint8)
    for args in ((u, number), (number, u)) if name == "xlogy" else ((u, number),):  # torch.copysign(int, t) refuses
        want = getattr(torch, name)(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args))
        got = getattr(ds, name)(*(ds.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_comparisons_with_0d_tensors_use_the_dimmed_tensors_dtype():
    u = np.array([3, 200], np.uint8)
    for other in (-2, 300):
        got = ds.from_numpy(u) < ds.tensor(other)
        want = torch.from_numpy(u) < torch.tensor(other)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    x = np.array([0.1, 0.2], np.float32)
    got = ds.from_numpy(x) == ds.tensor(0.1, dtype=ds.float64)
    want = torch.from_numpy(x) == torch.tensor(0.1, dtype=torch.float64)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def _write(lib, case):
    """One write of a number into a small uint8 (or int8/int32/bool) tensor, as ``case`` names it."""
    u = lib.tensor([3, 200], dtype=lib.uint8)
    mask = lib.tensor([True, False])
    kind, value = case
    if kind == "fill_":
        return u.fill_(value)
    if kind == "setitem":
        u[0] = value
        return u
    if kind == "setitem_mask":
        u[mask] = value
        return u
    if kind == "setitem_slice":
        u[:] = value
        return u
    if kind == "masked_fill_":
        return u.masked_fill_(mask, value)
    if kind == "masked_fill":
        return u.masked_fill(mask, value)
    if kind == "index_fill":
        return u.index_fill(0, lib.tensor([0]), value)
    if kind == "clamp_min":
        return u.clamp(min=value)
    if kind == "clamp_max":
        return u.clamp(max=value)
    if kind == "clamp_":
        return u.clamp_(min=value)
    if kind == "int8_clamp_max":
        return lib.tensor([3, -4], dtype=lib.int8).clamp(max=value)
    if kind == "int32_fill_":
        return lib.tensor([1], dtype=lib.int32).fill_(value)
    if kind == "bool_fill_":
        return lib.tensor([True, False]).fill_(value)
    if kind == "add_":
        return u.add_(value)
    if kind == "mul_":
        return u.mul_(value)
    if kind == "iand":
        u &= value
        return u
    if kind == "pow_":
        return u.pow_(value)
    raise AssertionError(kind)


_WRITES = [
    (kind, value)
    for kind in ("fill_", "setitem", "setitem_mask", "setitem_slice", "masked_fill_", "masked_fill", "index_fill")
    for value in (-1, -255, -256, 300, 255, 2**40, 2.7, -2.7, True)
] + [
    ("clamp_min", -1),
    ("clamp_min", 300),
    ("clamp_max", -1),
    ("clamp_", -1),
    ("int8_clamp_max", 200),
    ("int8_clamp_max", -128),
    ("int32_fill_", 2**40),
    ("int32_fill_", -(2**31)),
    ("bool_fill_", -1),
    ("bool_fill_", 2),
    ("add_", -1),
    ("add_", 300),
    ("mul_", -1),
    ("iand", -2),
    ("pow_", 2),
    ("pow_", 300),
    ("pow_", -1),
]


@pytest.mark.parametrize("case", _WRITES, ids=str)
def test_a_number_written_into_an_integer_tensor_converts_as_in_torch(case):
    try:
        want = _write(torch, case).tolist()
    except RuntimeError:
        with pytest.raises(ds.errors.ArgumentError, match="without overflow|negative integer powers"):
            _write(ds, case)
        return
    assert _write(ds, case).tolist() == want


def test_an_integer_tensor_to_a_negative_number_power_is_refused_as_in_torch():
    with pytest.raises(ValueError, match="negative integer powers"):
        ds.tensor([2, 3]) ** -1
    with pytest.raises(ValueError, match="negative integer powers"):
        ds.tensor([True, False]) ** -1


def test_bitwise_ops_refuse_floating_operands_in_one_line():
    with pytest.raises(TypeError, match="expected integer or boolean operands"):
        ds.tensor([True, False]) | 2.5
    with pytest.raises(TypeError, match="expected integer or boolean operands"):
        ds.tensor([1.0]) & 1


def test_the_number_helpers_wrap_and_check_like_c_casts():
    from downslope.ops.operands import _checked_scalar, _wrapped_int

    assert _wrapped_int(-1, np.dtype(np.uint8)) == 255
    assert _wrapped_int(2**63, np.dtype(np.int64)) == -(2**63)
    assert _wrapped_int(-129, np.dtype(np.int8)) == 127
    assert _checked_scalar(-255, np.dtype(np.uint8), "fill_") == 1
    assert _checked_scalar(2.9, np.dtype(np.int16), "fill_") == 2
    assert _checked_scalar(2.5, np.dtype(np.float32), "fill_") == 2.5
    for bad in (-256, 256, float("nan"), float("inf"), -0.5):
        with pytest.raises(ds.errors.ArgumentError, match="fill_: value .* cannot be converted to uint8"):
            _checked_scalar(bad, np.dtype(np.uint8), "fill_")


@pytest.mark.parametrize("scalar", [np.int64(2), np.int16(2), np.uint8(2), np.int32(-7)])
@pytest.mark.parametrize("dtype", ["int8", "int32", "uint8"])
def test_numpy_integer_scalar_meets_a_0d_integer_tensor_as_a_number(scalar, dtype):
    # torch takes NumPy scalars as Python numbers: the 0-d tensor's dtype is kept (NumPy would widen)
    ours = ds.tensor(3, dtype=getattr(ds, dtype))
    theirs = torch.tensor(3, dtype=getattr(torch, dtype))
    for op in (operator.add, operator.mul, operator.sub):
        o, t = op(ours, scalar), op(theirs, scalar)
        assert str(o.dtype) == str(t.dtype).replace("torch.", "")
        assert o.item() == t.item()
    assert str(ds.add(ours, scalar).dtype) == str(torch.add(theirs, scalar).dtype).replace("torch.", "")


@pytest.mark.parametrize(
    "call",
    [
        lambda ds, a: ds.nn.functional.relu((a, a)),
        lambda ds, a: ds.nn.functional.relu([a, a]),
        lambda ds, a: ds.exp((a.detach(), 1)),
        lambda ds, a: ds.nn.functional.leaky_relu([a]),
    ],
    ids=["relu-tuple-same-shape", "relu-list", "exp-mixed-tuple", "leaky_relu-list"],
)
def test_a_sequence_holding_tensors_is_refused_as_torch(call) -> None:
    with pytest.raises(TypeError, match="must be Tensor"):
        call(torch, torch.ones(2, 3))
    with pytest.raises(ds.errors.ArgumentTypeError, match=r"\(\): an argument must be Tensor .*not (tuple|list)"):
        call(ds, ds.ones(2, 3))


def test_a_forward_hook_returning_a_tuple_is_refused_by_the_next_layer() -> None:
    m = ds.nn.Sequential(ds.nn.Linear(2, 3), ds.nn.ReLU())
    m[0].register_forward_hook(lambda mod, i, o: (o, o))  # same shapes: NumPy would have stacked them
    with pytest.raises(ds.errors.ArgumentTypeError, match=r"relu\(\): .*not tuple: got a tuple of 2 items"):
        m(ds.ones(1, 2))


def test_numbers_and_lists_of_numbers_still_lift() -> None:
    x = ds.tensor([1.0, -2.0])
    assert (x + [1.0, 2.0]).tolist() == [2.0, 0.0]
    assert ds.nn.functional.relu([1.0, -2.0]).tolist() == [1.0, 0.0]
    assert (x * 2).tolist() == [2.0, -4.0]
    assert ds.tensor([ds.tensor(1.0), ds.tensor(2.0)]).tolist() == [1.0, 2.0]
