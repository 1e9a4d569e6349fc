"""Where PyTorch raises RuntimeError (or one of its subclasses), downslope raises its own error type that
is also a RuntimeError, with torch's message: softmax of integers, integer means, bool subtraction,
negative integer powers, in-place float writes into integer tensors, a custom Function with the
wrong number of gradients, in-place ops on split/chunk/unbind outputs, isclose/allclose of two
dtypes, numbers past float16's range; and torch.cat's legacy empty tensors."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError, InvalidValueError, StateError

torch = pytest.importorskip("torch")


def _torch_raises(fn) -> str:
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype, torch_name", [("int64", "Long"), ("int32", "Int"), ("bool", "Bool")])
def test_softmax_of_an_integer_tensor_raises_as_torch(name: str, dtype: str, torch_name: str) -> None:
    message = _torch_raises(lambda: getattr(torch, name)(torch.tensor([1, 0]).to(getattr(torch, dtype)), 0))
    with pytest.raises(DTypeError, match=f"not implemented for '{torch_name}'") as info:
        getattr(ds, name)(ds.tensor([1, 0], dtype=dtype), 0)
    assert isinstance(info.value, RuntimeError) and f"'{torch_name}'" in message
    with pytest.raises(RuntimeError):
        getattr(ds.nn.functional, name)(ds.tensor([1, 0], dtype=dtype), 0)
    out = getattr(ds, name)(ds.tensor([1, 0], dtype=dtype), 0, dtype=ds.float32)  # dtype= casts first, as torch
    ref = getattr(torch, name)(torch.tensor([1, 0]).to(getattr(torch, dtype)), 0, dtype=torch.float32)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)


def test_runtime_errors_of_integer_and_bool_arithmetic() -> None:
    _torch_raises(lambda: torch.tensor([1, 2]).mean())
    with pytest.raises(DTypeError, match="mean: expected a floating tensor"):
        ds.tensor([1, 2]).mean()
    message = _torch_raises(lambda: torch.tensor([True]) - torch.tensor([False]))
    with pytest.raises(DTypeError, match="two bool tensors") as info:
        ds.tensor([True]) - ds.tensor([False])
    assert str(info.value) == message
    with pytest.raises(DTypeError, match="with a bool tensor"):
        ds.tensor([True]) - 1
    _torch_raises(lambda: torch.tensor([1, 2]) ** -1)
    with pytest.raises(InvalidValueError, match="Integers to negative integer powers are not allowed"):
        ds.tensor([1, 2]) ** -1
    _torch_raises(lambda: torch.tensor([1, 2]).add_(1.5))
    for write in (lambda t: t.add_(1.5), lambda t: t.mul_(ds.tensor([1.5, 2.0])), lambda t: t.__iadd__(0.5)):
        with pytest.raises(DTypeError, match="can't be cast to the desired output type int64"):
            write(ds.tensor([1, 2]))


def test_a_custom_function_with_the_wrong_number_of_gradients_raises_a_runtime_error() -> None:
    class Twice(ds.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    a, b = ds.tensor([1.0], requires_grad=True), ds.tensor([2.0], requires_grad=True)
    with pytest.raises(InvalidValueError, match="returned 1 gradient") as info:
        Twice.apply(a, b).sum().backward()
    assert isinstance(info.value, RuntimeError)


_MULTI_VIEWS = {
    "split": (lambda lib, x: lib.split(x, 2)[0], "Output 0 of Split"),
    "chunk": (lambda lib, x: x.chunk(2)[1], "Output 1 of Split"),
    "split single": (lambda lib, x: x.split(4)[0], "Output 0 of Split"),
    "split sizes": (lambda lib, x: x.split([1, 3])[1], "Output 1 of SplitWithSizes"),
    "split_with_sizes": (lambda lib, x: lib.split_with_sizes(x, [3, 1])[0], "Output 0 of SplitWithSizes"),
    "unbind": (lambda lib, x: x.unbind(1)[2], "Output 2 of Unbind"),
}


@pytest.mark.parametrize("case", list(_MULTI_VIEWS))
@pytest.mark.parametrize("write", ["add_", "setitem", "view of it"])
def test_in_place_on_an_output_of_a_multi_view_op_raises_as_torch(case: str, write: str) -> None:
    make, origin = _MULTI_VIEWS[case]

    def modify(lib):
        piece = make(lib, lib.ones(4, 3, requires_grad=True) * 1)
        if write == "add_":
            piece.add_(1)
        elif write == "setitem":
            piece[0] = 5.0
        else:
            piece.reshape(-1).mul_(2)

    message = _torch_raises(lambda: modify(torch))
    assert "returns multiple views" in message
    with pytest.raises(StateError, match="returns multiple views") as info:
        modify(ds)
    assert str(info.value).startswith(f"{origin} is a view and is being modified inplace.")
    if write == "add_":
        assert str(info.value) == message


def test_multi_view_outputs_may_be_written_where_torch_allows_it() -> None:
    x = ds.ones(4, 3, requires_grad=True) * 1
    with ds.no_grad():
        x.split(2)[0].add_(1)  # not recorded
    ds.ones(4, 3).split(2)[0].add_(1)  # no graph
    ds.tensor_split(x, 2)[0].add_(1)  # narrow views (as torch's tensor_split)
    x.split(2)[0].detach().add_(1)
    x.split(2)[0].clone().add_(1)
    np.testing.assert_array_equal(x.detach().numpy()[:2], 4.0)  # 1 + three of the writes (not the clone)
    with pytest.raises(StateError, match="returns multiple views"):  # a leaf's too, as torch
        ds.ones(4, 3, requires_grad=True).split(2)[0].add_(1)


@pytest.mark.parametrize("fn", ["isclose", "allclose"])
@pytest.mark.parametrize(
    "a, b, names",
    [
        (([1, 2], "int64"), ([1.0, 2.0], "float32"), "Long did not match Float"),
        (([1.0], "float32"), ([1.0], "float64"), "Float did not match Double"),
        (([1], "int32"), ([1], "int64"), "Int did not match Long"),
    ],
)
def test_isclose_of_two_dtypes_raises_as_torch(fn: str, a: tuple, b: tuple, names: str) -> None:
    message = _torch_raises(
        lambda: getattr(torch, fn)(
            torch.tensor(a[0], dtype=getattr(torch, a[1])), torch.tensor(b[0], dtype=getattr(torch, b[1]))
        )
    )
    assert message == names
    with pytest.raises(DTypeError, match=names):
        getattr(ds, fn)(ds.tensor(a[0], dtype=a[1]), ds.tensor(b[0], dtype=b[1]))
    with pytest.raises(DTypeError, match=names):
        getattr(ds.tensor(a[0], dtype=a[1]), fn)(ds.tensor(b[0], dtype=b[1]))


def test_isclose_of_one_dtype_and_of_a_number_still_work() -> None:
    assert ds.allclose(ds.tensor([1, 2]), ds.tensor([1, 2]))
    np.testing.assert_array_equal(ds.isclose(ds.tensor([1.0, 2.0]), 1.0).numpy(), [True, False])
    np.testing.assert_array_equal(ds.tensor([True]).isclose(ds.tensor([True])).numpy(), [True])


@pytest.mark.parametrize(
    "parts, dim",
    [
        ([(2, 3), (0,)], 0),
        ([(0,), (2, 3)], 1),
        ([(0,), (2, 3), (0,), (1, 3)], 0),
        ([(3,), (0,)], 0),
        ([(0,), (0,)], 0),
        ([(0, 3), (2, 3)], 0),
    ],
)
def test_cat_leaves_out_legacy_empty_tensors_as_torch(parts: list, dim: int) -> None:
    arrays = [np.arange(float(np.prod(s))).reshape(s) for s in parts]
    xs = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ds.cat(xs, dim), torch.cat(ts, dim)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    w = np.arange(out.numel(), dtype=np.float64).reshape(out.shape) + 1
    (out * ds.tensor(w, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())  # type: ignore[union-attr]


def test_cat_with_a_legacy_empty_keeps_its_dtype_in_the_promotion() -> None:
    out = ds.cat([ds.ones(2, 3), ds.tensor([], dtype=ds.float64)])
    assert out.shape == (2, 3) and out.dtype == ds.float64
    assert torch.cat([torch.ones(2, 3), torch.tensor([], dtype=torch.float64)]).dtype == torch.float64
    with pytest.raises(ds.errors.ShapeError):
        ds.cat([ds.ones(2, 3), ds.zeros(2, 0)])  # not a legacy empty: shapes must fit, as torch


_OVERFLOWS = {
    "fill_": (lambda lib, dt, v: lib.zeros(2, dtype=dt).fill_(v)),
    "masked_fill_": (lambda lib, dt, v: lib.zeros(2, dtype=dt).masked_fill_(lib.tensor([True, False]), v)),
    "full": (lambda lib, dt, v: lib.full((2,), v, dtype=dt)),
    "full_like": (lambda lib, dt, v: lib.full_like(lib.zeros(2, dtype=dt), v)),
    "clamp": (lambda lib, dt, v: lib.zeros(2, dtype=dt).clamp(max=v)),
    "clamp_": (lambda lib, dt, v: lib.zeros(2, dtype=dt).clamp_(max=v)),
}


@pytest.mark.parametrize("op", list(_OVERFLOWS))
@pytest.mark.parametrize(
    "dtype, value", [("float16", 1e10), ("float16", -65519.0), ("float16", 10**6), ("float32", 1e39)]
)
def test_a_number_past_the_float_range_is_refused_as_torch(op: str, dtype: str, value: float) -> None:
    make = _OVERFLOWS[op]
    message = _torch_raises(lambda: make(torch, getattr(torch, dtype), value))
    assert "without overflow" in message
    with pytest.raises(InvalidValueError, match="without overflow") as info:
        make(ds, getattr(ds, dtype), value)
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("op", list(_OVERFLOWS))
@pytest.mark.parametrize("value", [65504.0, float("inf"), float("-inf"), float("nan"), 1e-10])
def test_numbers_in_range_inf_and_nan_are_written_into_float16_as_torch(op: str, value: float) -> None:
    make = _OVERFLOWS[op]
    ours = make(ds, ds.float16, value).numpy()
    ref = make(torch, torch.float16, value).numpy()
    np.testing.assert_array_equal(ours, ref)


def test_setitem_and_where_write_past_the_range_as_torch() -> None:
    t = ds.zeros(2, dtype=ds.float16)
    t[0] = 1e10  # torch: inf, no error
    assert np.isinf(t.numpy()[0])
    out = ds.where(ds.tensor([True, False]), ds.zeros(2, dtype=ds.float16), 1e10)
    assert np.isinf(out.numpy()[1])
    assert ds.full((2,), 1e39, dtype=ds.float64).numpy()[0] == 1e39
