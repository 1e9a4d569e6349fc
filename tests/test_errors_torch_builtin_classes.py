"""Errors that code written for torch catches with torch's builtin class (``except RuntimeError:``,
``except IndexError:``, ``except AssertionError:``, ``except OverflowError:``) catch downslope's error
too, and ``except`` clauses naming downslope's former class for each keep catching it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import downslope as ds
from downslope.errors import (
    ArgumentError,
    ArgumentTypeError,
    DownslopeError,
    OutOfRangeError,
    ShapeError,
    StateError,
)

torch = pytest.importorskip("torch")

# (what is done, the call on either library, the class downslope raised before: still caught)
CASES: list[tuple[str, Callable[[Any], Any], type[Exception]]] = [
    ("arange step of the wrong sign", lambda L: L.arange(0, 5, -1), ArgumentError),
    ("arange step 0", lambda L: L.arange(0, 5, 0), ArgumentError),
    ("randint low >= high", lambda L: L.randint(5, 2, (3,)), ArgumentError),
    ("MultiheadAttention(8, 3)", lambda L: L.nn.MultiheadAttention(8, 3), ArgumentError),
    ("int tensor std", lambda L: L.tensor([3, 1]).std(), ArgumentTypeError),
    ("int tensor var", lambda L: L.tensor([3, 1]).var(), ArgumentTypeError),
    ("histc of a NaN range", lambda L: L.histc(L.tensor([1.0, float("nan")]), bins=2), ArgumentError),
    ("tensor + 2**70", lambda L: L.tensor([3.0]) + 2**70, ArgumentTypeError),
    ("interpolate(size=0)", lambda L: L.nn.functional.interpolate(L.ones(1, 1, 4), size=0), ArgumentError),
    (
        "avg_pool1d padding > kernel/2",
        lambda L: L.nn.functional.avg_pool1d(L.ones(1, 1, 4), 2, padding=2),
        ArgumentError,
    ),
    (
        "max_pool2d padding > kernel/2",
        lambda L: L.nn.functional.max_pool2d(L.ones(1, 1, 4, 4), 2, padding=2),
        ArgumentError,
    ),
    (
        "conv1d stride 0",
        lambda L: L.nn.functional.conv1d(L.ones(1, 1, 4), L.ones(1, 1, 2), stride=0),
        ArgumentError,
    ),
    (
        "avg_pool2d divisor_override 0",
        lambda L: L.nn.functional.avg_pool2d(L.ones(1, 1, 2, 2), 2, divisor_override=0),
        ArgumentError,
    ),
    ("amax over an empty dim", lambda L: L.ones(2, 0).amax(1), ShapeError),
    ("amin over an empty dim", lambda L: L.amin(L.zeros(0, 3), dim=0), ShapeError),
    ("aminmax over an empty dim", lambda L: L.aminmax(L.zeros(0, 3), dim=0), ShapeError),
    ("max(dim) over an empty dim", lambda L: L.zeros(0, 3).max(dim=0), ShapeError),
    ("min(dim) over an empty dim", lambda L: L.zeros(0, 3).min(dim=0), ShapeError),
    ("diag_embed dim1 == dim2", lambda L: L.diag_embed(L.zeros(2, 3), dim1=-1, dim2=-1), ArgumentError),
    (
        "bitwise_and_ growing the tensor",
        lambda L: L.tensor([1, 2])[:1].bitwise_and_(L.tensor([3, 4, 5, 6])),
        ValueError,
    ),
    ("&= growing the tensor", lambda L: L.tensor([1]).__iand__(L.tensor([3, 4, 5, 6])), ValueError),
    ("clamp_ with bounds growing the tensor", lambda L: L.tensor([1.0]).clamp_(L.zeros(4), L.ones(4)), ValueError),
    (
        "take_along_dim of shapes that do not broadcast",
        lambda L: L.take_along_dim(L.zeros(3, 2), L.zeros(1, 5, dtype=L.int64), dim=0),
        ValueError,
    ),
    ("lerp_ growing the tensor", lambda L: L.tensor([1.0]).lerp_(L.zeros(4), 0.5), ShapeError),
    ("gather on 0-d, dim out of range", lambda L: L.gather(L.tensor(1.0), 1, L.tensor([[0]])), IndexError),
    (
        "scatter_add on 0-d, dim out of range",
        lambda L: L.tensor(1.0).scatter_add(2, L.tensor([[0]]), L.tensor([[2.0]])),
        IndexError,
    ),
]


def _raised(call: Callable[[Any], Any], lib: Any) -> BaseException:
    with pytest.raises(Exception) as info:
        call(lib)
    return info.value


@pytest.mark.parametrize(("what", "call", "former"), CASES, ids=[c[0] for c in CASES])
def test_error_is_torch_class_and_former_class(what: str, call: Callable[[Any], Any], former: type) -> None:
    theirs, ours = _raised(call, torch), _raised(call, ds)
    assert isinstance(ours, type(theirs)), f"{what}: torch raises {type(theirs).__name__}, downslope {type(ours)}"
    assert isinstance(ours, former) and isinstance(ours, DownslopeError)


# one_hot checks the class values on the host only (on a device the check would wait for it)
HOST_CASES: list[tuple[str, Callable[[Any], Any], type[Exception]]] = [
    ("one_hot of -1", lambda L: L.nn.functional.one_hot(L.tensor([-1, 0])), ArgumentError),
    ("one_hot past num_classes", lambda L: L.nn.functional.one_hot(L.tensor([3]), 3), ArgumentError),
]


@pytest.mark.host_only
@pytest.mark.parametrize(("what", "call", "former"), HOST_CASES, ids=[c[0] for c in HOST_CASES])
def test_host_checked_error_is_torch_class_and_former_class(
    what: str, call: Callable[[Any], Any], former: type
) -> None:
    test_error_is_torch_class_and_former_class(what, call, former)


def test_lerp_names_itself_not_add() -> None:
    with pytest.raises(ShapeError, match=r"^lerp_: end of shape \(4,\)"):
        ds.tensor([1.0]).lerp_(ds.zeros(4), 0.5)


def test_in_place_broadcast_errors_name_the_op() -> None:
    with pytest.raises(ShapeError, match=r"^bitwise_or_: the operand of shape \(4,\)"):
        ds.tensor([1]).__ior__(ds.tensor([3, 4, 5, 6]))
    with pytest.raises(ShapeError, match=r"^clamp_: bounds of shapes"):
        ds.tensor([1.0]).clamp_(ds.zeros(4), None)
    with pytest.raises(ShapeError, match=r"^take_along_dim: input of shape \(3, 2\)"):
        ds.take_along_dim(ds.zeros(3, 2), ds.zeros(1, 5, dtype=ds.int64), dim=0)


def test_numbers_past_64_bits_overflow_as_in_torch() -> None:
    for big in (2**70, -(2**70)):
        with pytest.raises(OverflowError, match="does not fit in 64 bits"):
            ds.tensor([3.0]) * big
    assert float((ds.tensor([3.0]) + 2**62).item()) == pytest.approx(3.0 + 2**62)  # 64-bit ints still combine


def test_cuda_without_a_gpu_is_torch_cpu_builds_assertion_error() -> None:
    if ds.cuda.is_available():
        pytest.skip("a CUDA GPU with CuPy is here: .to('cuda') moves the tensor")
    with pytest.raises(AssertionError) as info:
        ds.ones(2).to("cuda")
    assert isinstance(info.value, StateError) and isinstance(info.value, RuntimeError)  # the former class
    with pytest.raises(AssertionError):
        ds.ones(2).cuda()
    with pytest.raises(AssertionError):
        ds.nn.Linear(2, 2).to("cuda")
    if not torch.cuda.is_available():  # a CPU build: torch's own answer
        with pytest.raises(AssertionError):
            torch.ones(2).to("cuda")


def test_dim_out_of_range_keeps_its_class() -> None:
    with pytest.raises(OutOfRangeError):
        ds.gather(ds.tensor(1.0), 1, ds.tensor([[0]]))
