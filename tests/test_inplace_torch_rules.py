"""In-place ops and Python numbers follow torch's casting rules: a result an integer tensor cannot hold
is refused (never truncated in), and a number out of the tensor's range is refused (never wrapped)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _outcome(fn, lib):
    try:
        out = fn(lib)
    except Exception:  # noqa: BLE001  (the test compares whether each library refuses)
        return "error"
    return str(out.dtype).replace("torch.", ""), out.tolist()


def _same(fn) -> None:
    assert _outcome(fn, ds) == _outcome(fn, torch)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "int64"])
@pytest.mark.parametrize("value", [300, -1, 255, 128, -129, 2**40, 2.5])
@pytest.mark.parametrize("swapped", [False, True])
def test_where_with_a_python_number_beside_an_integer_tensor_matches_torch(dtype, value, swapped) -> None:
    def fn(lib):
        t = lib.tensor([1, 2, 100], dtype=getattr(lib, dtype))
        mask = lib.tensor([True, False, True])
        return lib.where(mask, value, t) if swapped else lib.where(mask, t, value)

    _same(fn)


def test_where_refuses_a_number_out_of_the_tensors_range_with_torchs_words() -> None:
    u8 = ds.tensor([1, 2], dtype=ds.uint8)
    with pytest.raises(ds.errors.ArgumentError, match="where: value 300 cannot be converted to uint8 without overflow"):
        ds.where(ds.tensor([True, False]), u8, 300)
    assert ds.where(ds.tensor([True, False]), u8, -1).tolist() == [1, 255]  # torch's wrap of -1, as in fill_


@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
@pytest.mark.parametrize(
    "op",
    ["add_", "sub_", "mul_", "div_", "floor_divide_", "remainder_", "fmod_", "true_divide_", "clamp_", "pow_"],
)
@pytest.mark.parametrize("operand", ["2.5", "2", "float tensor", "float 0-d", "int tensor"])
def test_in_place_binary_ops_cast_as_torch_does(dtype, op, operand) -> None:
    def fn(lib):
        x = lib.tensor([5, 3, 7] if dtype != "bool" else [True, False, True], dtype=getattr(lib, dtype))
        o = {
            "2.5": 2.5,
            "2": 2,
            "float tensor": lib.tensor([2.5, 1.5, 2.0]),
            "float 0-d": lib.tensor(2.5),
            "int tensor": lib.tensor([2, 1, 2]),
        }[operand]
        return getattr(x, op)(o)

    _same(fn)


@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
@pytest.mark.parametrize("op", ["floor_", "ceil_", "round_", "trunc_", "sign_", "square_", "sqrt_", "exp_", "neg_"])
def test_in_place_unary_ops_keep_integers_where_torch_does(dtype, op) -> None:
    def fn(lib):
        x = lib.tensor([5, 0, 7] if dtype != "bool" else [True, False, True], dtype=getattr(lib, dtype))
        return getattr(x, op)()

    if dtype == "bool" and op in ("floor_", "ceil_", "round_", "trunc_"):
        pytest.skip("torch has no boolean kernel for these (NotImplementedError); downslope keeps the values")
    _same(fn)


def test_floor_divide_in_place_refuses_a_float_result_with_torchs_words() -> None:
    x = ds.tensor([5, 3])
    with pytest.raises(
        ds.errors.ArgumentTypeError, match="result type float32 can't be cast to the desired output type int64"
    ):
        x.floor_divide_(2.5)
    assert x.tolist() == [5, 3]  # untouched
    assert x.floor_divide_(2).tolist() == [2, 1]
    assert ds.square(ds.tensor([True, False])).dtype == np.int64  # as torch.square: pow(x, 2) promotes


def test_linear_weight_changed_under_no_grad_is_no_error_when_only_the_weight_wants_a_gradient():
    # torch's addmm keeps x for the weight's gradient and the weight for x's: with an input that
    # wants no gradient, changing the weight after the forward is harmless, and both agree
    for lib in (ds, torch):
        lin = lib.nn.Linear(2, 3)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
            lin.bias.zero_()
        y = lin(lib.ones(4, 2)).pow(2).sum()
        with lib.no_grad():
            lin.weight.mul_(0.5)
        y.backward()
        np.testing.assert_allclose(lin.bias.grad.numpy(), [24.0, 56.0, 88.0])
        np.testing.assert_allclose(lin.weight.grad.numpy(), [[24.0, 24.0], [56.0, 56.0], [88.0, 88.0]])


def test_linear_weight_changed_under_no_grad_is_an_error_when_the_input_wants_a_gradient():
    lin = ds.nn.Linear(2, 3)
    x = ds.ones(4, 2, requires_grad=True)
    y = lin(x).pow(2).sum()
    with ds.no_grad():
        lin.weight.mul_(0.5)
    with pytest.raises(ds.errors.StateError, match="modified by an inplace operation|in place"):
        y.backward()
