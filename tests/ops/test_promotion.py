"""torch's promotion queries (downslope.ops.promotion) against PyTorch, every pair of downslope's dtypes,
and against downslope's own ops: ``ds.add(a, b).dtype`` is ``ds.result_type(a, b)``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
NUMBERS = [True, 3, 2.5]


def _ds(name):
    return ds.bfloat16 if name == "bfloat16" else np.dtype(name)


def _name(dtype):
    return "bfloat16" if dtype is ds.bfloat16 else np.dtype(dtype).name


def _torch_name(dtype):
    return str(dtype).removeprefix("torch.")


def _pair_of(name, zero_d):
    shape = () if zero_d else (2,)
    return ds.zeros(shape, dtype=_ds(name)), torch.zeros(shape, dtype=getattr(torch, name))


@pytest.fixture(params=["float32", "float64"])
def default_dtype(request):
    """Both libraries' default dtype set to the same one (floats meeting integers land there)."""
    old_ds, old_torch = ds.get_default_dtype(), torch.get_default_dtype()
    ds.set_default_dtype(getattr(ds, request.param))
    torch.set_default_dtype(getattr(torch, request.param))
    yield request.param
    ds.set_default_dtype(old_ds)
    torch.set_default_dtype(old_torch)


def test_promote_types_matches_torch_for_every_pair():
    names = [*NAMES, "bfloat16"]
    for a, b in itertools.product(names, names):
        want = _torch_name(torch.promote_types(getattr(torch, a), getattr(torch, b)))
        assert _name(ds.promote_types(_ds(a), _ds(b))) == want, (a, b)


def test_can_cast_matches_torch_for_every_pair():
    names = [*NAMES, "bfloat16"]
    for a, b in itertools.product(names, names):
        assert ds.can_cast(_ds(a), _ds(b)) == torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)


@pytest.mark.parametrize(("zero_d1", "zero_d2"), [(False, False), (False, True), (True, False), (True, True)])
def test_result_type_of_two_tensors_matches_torch_and_add(default_dtype, zero_d1, zero_d2):
    for a, b in itertools.product(NAMES, NAMES):
        (da, ta), (db, tb) = _pair_of(a, zero_d1), _pair_of(b, zero_d2)
        got = ds.result_type(da, db)
        assert got.name == _torch_name(torch.result_type(ta, tb)), (a, zero_d1, b, zero_d2)
        assert ds.add(da, db).dtype == got, (a, zero_d1, b, zero_d2)


@pytest.mark.parametrize("zero_d", [False, True])
def test_result_type_of_a_tensor_and_a_number_matches_torch_and_add(default_dtype, zero_d):
    for name, number in itertools.product(NAMES, [*NUMBERS, 1000, -1]):
        dt, tt = _pair_of(name, zero_d)
        for args, targs in (((dt, number), (tt, number)), ((number, dt), (number, tt))):
            got = ds.result_type(*args)
            assert got.name == _torch_name(torch.result_type(*targs)), (name, zero_d, number)
            assert ds.add(*args).dtype == got, (name, zero_d, number)


def test_result_type_of_two_numbers_matches_torch_and_add(default_dtype):
    for a, b in itertools.product(NUMBERS, NUMBERS):
        got = ds.result_type(a, b)
        assert got.name == _torch_name(torch.result_type(a, b)), (a, b)
        assert ds.add(a, b).dtype == got, (a, b)


def test_numpy_scalars_count_as_numbers_as_in_torch():
    # np.bool_ is left out: torch reads it as a float number (bool tensor with np.True_ is float32)
    for name, number in itertools.product(NAMES, [np.float64(1.5), np.int64(7), np.float32(0.5)]):
        for zero_d in (False, True):
            dt, tt = _pair_of(name, zero_d)
            assert ds.result_type(dt, number).name == _torch_name(torch.result_type(tt, number)), (name, number)


def test_the_examples_from_the_torch_docs():
    assert ds.result_type(ds.tensor([1, 2], dtype=ds.int32), 1.0) == ds.float32
    assert ds.result_type(ds.tensor([1, 2], dtype=ds.uint8), ds.tensor(1)) == ds.uint8
    assert ds.result_type(ds.tensor([1], dtype=ds.int8), 1000) == ds.int8
    assert ds.promote_types(ds.int64, ds.float32) == ds.float32
    assert ds.promote_types(ds.uint8, ds.int8) == ds.int16


@pytest.mark.parametrize("bad", [1, "float32", list, None])
def test_a_non_dtype_is_a_type_error_as_in_torch(bad):
    for fn, tfn in ((ds.promote_types, torch.promote_types), (ds.can_cast, torch.can_cast)):
        with pytest.raises(TypeError):
            tfn(bad, torch.float32)
        with pytest.raises(TypeError, match="must be a dtype"):
            fn(bad, ds.float32)
        with pytest.raises(TypeError, match="must be a dtype"):
            fn(ds.float32, bad)


@pytest.mark.parametrize("bad", ["a", None, [1], ds.float32])
def test_result_type_refuses_what_is_not_a_tensor_or_number(bad):
    with pytest.raises(TypeError):
        torch.result_type(torch.ones(1), bad)
    with pytest.raises(TypeError, match="must be a tensor or a Python bool, int or float"):
        ds.result_type(ds.ones(1), bad)
    with pytest.raises(TypeError, match="argument 1"):
        ds.result_type(bad, ds.ones(1))


def test_python_types_are_dtypes_as_in_torch():
    for a, b in itertools.product([bool, int, float], NAMES):
        want = _torch_name(torch.promote_types(a, getattr(torch, b)))
        assert ds.promote_types(a, _ds(b)).name == want, (a, b)
        assert ds.can_cast(a, _ds(b)) == torch.can_cast(a, getattr(torch, b)), (a, b)
        assert ds.can_cast(_ds(b), a) == torch.can_cast(getattr(torch, b), a), (a, b)


def test_numpy_scalar_types_are_taken_as_dtypes():
    assert ds.promote_types(np.int64, np.float16) == ds.float16
    assert ds.can_cast(np.float32, np.int8) is False
