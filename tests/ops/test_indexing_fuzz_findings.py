"""Indexing cases where downslope once differed from PyTorch, each checked against torch: an Ellipsis
that spans no dim between advanced indices, several Ellipses, a 0-d NumPy integer index (a view), an
empty bool mask of the wrong length, and a write at a bool scalar plus an int for every dim. Reads,
writes and gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_X = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3)
_M = np.arange(5 * 3, dtype=np.float64).reshape(5, 3)


def _index(lib: Any, name: str) -> tuple[Any, ...]:
    """The index called ``name``, with index tensors of ``lib`` (torch or downslope)."""
    i = lib.tensor([1, 0])
    return {
        "slice, i, empty ..., i": (slice(None), i, Ellipsis, i),
        "slice, [2], empty ..., mask": (slice(0, 3), lib.tensor([2]), Ellipsis, lib.tensor([True, False, True])),
        "i, empty ..., i, slice": (i, Ellipsis, i, slice(None)),
        "i, i, slice, empty ...": (i, i, slice(None), Ellipsis),
        "step slice, 2x2 index, empty ..., [-1]": (slice(-1, None, 2), lib.tensor([[0, 1], [2, 0]]), Ellipsis, [-1]),
        "i, ... spans 1, i": (i, Ellipsis, i),
        "..., ...": (Ellipsis, Ellipsis),
        "..., 0, ...": (Ellipsis, 0, Ellipsis),
        "..., None, ...": (Ellipsis, None, Ellipsis),
        "0, ..., 1, ...": (0, Ellipsis, 1, Ellipsis),
        "..., i, ..., i": (Ellipsis, i, Ellipsis, i),
        "0, ..., ..., 1": (0, Ellipsis, Ellipsis, 1),
        "True, -1, 2, 0": (True, -1, 2, 0),
        "tensor(True), 0, 1, 2": (lib.tensor(True), 0, 1, 2),
    }[name]


_NAMES = [
    "slice, i, empty ..., i",
    "slice, [2], empty ..., mask",
    "i, empty ..., i, slice",
    "i, i, slice, empty ...",
    "step slice, 2x2 index, empty ..., [-1]",
    "i, ... spans 1, i",
    "..., ...",
    "..., 0, ...",
    "..., None, ...",
    "0, ..., 1, ...",
    "True, -1, 2, 0",
    "tensor(True), 0, 1, 2",
]


def _weights(shape: tuple[int, ...]) -> np.ndarray:
    return np.linspace(-1.0, 2.0, int(np.prod(shape)) or 1)[: int(np.prod(shape))].reshape(shape)


@pytest.mark.parametrize("name", _NAMES)
def test_read_and_gradient_match_torch(name: str) -> None:
    xt = torch.tensor(_X, dtype=torch.float64, requires_grad=True)
    expected = xt[_index(torch, name)]
    w = _weights(tuple(expected.shape))
    (expected * torch.tensor(w, dtype=torch.float64)).sum().backward()
    x = ds.tensor(_X, dtype=ds.float64, requires_grad=True)
    got = x[_index(ds, name)]
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
    (got * ds.tensor(w, dtype=ds.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("name", _NAMES)
def test_write_matches_torch(name: str) -> None:
    xt = torch.zeros(_X.shape, dtype=torch.float64)
    shape = tuple(xt[_index(torch, name)].shape)
    value = np.arange(1.0, 1.0 + int(np.prod(shape))).reshape(shape)
    xt[_index(torch, name)] = torch.tensor(value)
    x = ds.zeros(_X.shape, dtype=ds.float64)
    x[_index(ds, name)] = ds.tensor(value)
    np.testing.assert_array_equal(x.numpy(), xt.numpy())


@pytest.mark.parametrize("name", ["slice, i, empty ..., i", "True, -1, 2, 0", "..., 0, ..."])
def test_recorded_write_and_its_gradients_match_torch(name: str) -> None:
    results = []
    for lib in (torch, ds):
        a = lib.tensor(_X, dtype=lib.float64, requires_grad=True)
        b = a * 1
        shape = tuple(b[_index(lib, name)].shape)
        v = lib.tensor(np.arange(1.0, 1.0 + int(np.prod(shape))).reshape(shape), dtype=lib.float64, requires_grad=True)
        b[_index(lib, name)] = v * 2
        (b * lib.tensor(_weights(_X.shape), dtype=lib.float64)).sum().backward()
        results.append((b.detach().numpy(), a.grad.numpy(), v.grad.numpy()))
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_array_equal(got, expected)


def test_mask_after_a_zero_d_mask_and_an_empty_ellipsis_keeps_torch_shape() -> None:
    shapes = []
    for lib in (torch, ds):
        x = lib.tensor(_M)
        shapes.append(tuple(x[None, lib.tensor(True), ..., x.remainder(2) == 0].shape))
    assert shapes[1] == shapes[0] == (1, 8)


@pytest.mark.parametrize("make", [lambda: np.array(1), lambda: np.argmax(np.array([0.1, 0.9])) * np.ones((), np.int64)])
def test_zero_d_numpy_integer_index_is_a_view(make: Callable[[], Any]) -> None:
    results = []
    for lib in (torch, ds):
        x = lib.arange(6.0).view(2, 3)
        x[make()].mul_(10)
        x[np.array(0)][1] = -1
        x[np.int64(0)][2] = -2
        results.append(x.numpy().copy())
    np.testing.assert_array_equal(results[1], results[0])


def test_zero_d_numpy_index_gradient_matches_torch() -> None:
    grads = []
    for lib in (torch, ds):
        x = lib.tensor(_M, dtype=lib.float64, requires_grad=True)
        (x[np.array(3)] * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: (lib.tensor([], dtype=lib.bool),),
        lambda lib: (Ellipsis, lib.tensor([], dtype=lib.bool)),
        lambda lib: (slice(None), np.zeros(0, dtype=bool)),
        lambda lib: (lib.zeros(2, 0, dtype=lib.bool),),
    ],
)
def test_empty_mask_of_the_wrong_length_is_refused_as_torch(make: Callable[[Any], Any]) -> None:
    with pytest.raises(IndexError):
        torch.arange(6.0).view(2, 3)[make(torch)]
    x = ds.arange(6.0).view(2, 3)
    with pytest.raises(IndexError, match="shape of the mask"):
        x[make(ds)]
    with pytest.raises(IndexError, match="shape of the mask"):
        x[make(ds)] = 1.0


def test_empty_mask_of_the_right_length_still_works() -> None:
    for shape, mask_shape in (((2, 0), (2, 0)), ((0, 3), (0,)), ((0, 3), (0, 3)), ((2, 0), (2,))):
        expected = torch.zeros(shape)[torch.zeros(mask_shape, dtype=torch.bool)]
        got = ds.zeros(shape)[ds.zeros(mask_shape, dtype=ds.bool)]
        assert tuple(got.shape) == tuple(expected.shape)


@pytest.mark.parametrize("name", ["..., i, ..., i", "0, ..., ..., 1"])
def test_several_ellipses_that_index_past_the_last_dim_are_refused_as_torch(name: str) -> None:
    with pytest.raises(IndexError):
        torch.tensor(_X)[_index(torch, name)]
    with pytest.raises(IndexError):
        ds.tensor(_X)[_index(ds, name)]


def test_bool_scalar_and_ints_for_every_dim_write_in_place() -> None:
    results = []
    for lib in (torch, ds):
        x = lib.arange(25.0).view(5, 5)
        x[lib.tensor(True), -1, 2] = -7.0
        x[True, 0, 1] = -9.0
        x[lib.tensor(False), 1, None] = -3.0  # an empty selection: nothing written
        x[lib.tensor(True), lib.tensor(2)] = lib.tensor(-1.0)
        results.append(x.numpy().copy())
    np.testing.assert_array_equal(results[1], results[0])


@pytest.mark.parametrize(
    "write",
    [
        lambda lib, x: x.expand(2, 3)[:, 1:1].add_(1),
        lambda lib, x: x.expand(2, 3).unsqueeze(0).__setitem__(slice(1, 1), 5.0),
        lambda lib, x: x.expand(2, 3)[1:1].fill_(2.0),
    ],
)
def test_a_write_that_touches_no_element_of_an_expanded_view_does_nothing(write: Callable[[Any, Any], Any]) -> None:
    results = []
    for lib in (torch, ds):
        x = lib.tensor([[1.0, 2.0, 3.0]])
        write(lib, x)
        results.append(x.numpy().copy())
    np.testing.assert_array_equal(results[1], results[0])


def test_a_write_that_repeats_elements_of_an_expanded_view_is_still_refused() -> None:
    with pytest.raises(RuntimeError):
        torch.tensor([[1.0, 2.0, 3.0]]).expand(2, 3).add_(1)
    with pytest.raises(RuntimeError):
        ds.tensor([[1.0, 2.0, 3.0]]).expand(2, 3).add_(1)


def test_index_put_error_classes_match_torch() -> None:
    for lib in (torch, ds):
        with pytest.raises(RuntimeError, match="shape mismatch"):
            lib.tensor(5.0).index_put_((), lib.tensor([1.0, 2.0]), accumulate=True)
        with pytest.raises(TypeError):
            lib.zeros(3, 4).index_put_((None, lib.tensor([0, 1])), lib.tensor([1.0, 2.0]))


@pytest.mark.parametrize("index", ["a", ["a"]])
def test_a_string_index_is_a_type_error_as_in_torch(index: Any) -> None:
    with pytest.raises(TypeError):
        torch.zeros(3)[index]
    with pytest.raises(TypeError, match="valid indices"):
        ds.zeros(3)[index]
    with pytest.raises(TypeError):
        ds.zeros(3)[index] = 1.0


@pytest.mark.parametrize("op", ["index_add", "index_copy"])
def test_index_ops_on_a_zero_d_input_with_two_indices_raise_index_error_as_torch(op: str) -> None:
    with pytest.raises(IndexError):
        getattr(torch.tensor(5.0), op)(0, torch.tensor([0, 0]), torch.tensor(1.0))
    with pytest.raises(IndexError):
        getattr(ds.tensor(5.0), op)(0, ds.tensor([0, 0]), ds.tensor(1.0))
    one = getattr(ds.tensor(5.0), op)(0, ds.tensor([0]), ds.tensor(2.0))
    np.testing.assert_array_equal(one.numpy(), getattr(torch.tensor(5.0), op)(0, torch.tensor([0]), torch.tensor(2.0)))
