"""Tensor behaviours ported code relies on, each checked against torch itself: the legacy
constructor's sizes, requires_grad on non-leaves, detach_ of a view, ``_base``, unique's NaNs and
the warning on a non-leaf's ``.grad``."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.Tensor(4),
        lambda T: T.Tensor(0),
        lambda T: T.Tensor(np.int64(3)),
        lambda T: T.Tensor(2, 3),
        lambda T: T.Tensor(),
        lambda T: T.Tensor(T.Size([2, 3])),
        lambda T: T.FloatTensor(4),
        lambda T: T.LongTensor(4),
        lambda T: T.BoolTensor(3),
        lambda T: T.DoubleTensor(2, 2),
        lambda T: T.LongTensor(T.Size([2])),
    ],
)
def test_legacy_constructor_with_sizes_makes_that_shape(make) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = make(ds), make(torch)
    assert ours.shape == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    assert not ours.array.any()  # zeros (torch leaves the memory uninitialised)


@pytest.mark.parametrize(
    "make", [lambda T: T.Tensor([1, 2]), lambda T: T.Tensor([3]), lambda T: T.Tensor((2, 3)), lambda T: T.Tensor([])]
)
def test_legacy_constructor_with_data_keeps_the_data(make) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = make(ds), make(torch)
    assert ours.shape == tuple(theirs.shape) and ours.tolist() == theirs.tolist()
    assert ours.dtype == ds.float32


@pytest.mark.parametrize(
    "array",
    [
        np.array([[0, 200, 255]], np.uint8),
        np.array([1, -2, 3], np.int64),
        np.array([5, 6], np.int16),
        np.array([True, False]),
        np.array([1.5, 2.5], np.float16),
    ],
    ids=["uint8 image", "int64", "int16", "bool", "float16"],
)
def test_legacy_constructor_makes_any_array_float32(array: np.ndarray) -> None:
    # torch.Tensor(img) is float32 for a uint8 image, unlike torch.tensor(img): doubling it must
    # give 400 and 510, not uint8's wrapped-around 144 and 254.
    ours, theirs = ds.Tensor(array), torch.Tensor(array)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "") == "float32"
    assert (ours * 2).tolist() == (theirs * 2).tolist()


def test_legacy_constructor_of_a_tensor_keeps_its_dtype() -> None:
    ids = ds.tensor([1, 2, 3])
    assert ds.Tensor(ids).dtype == ds.int64 and torch.Tensor(torch.tensor([1, 2, 3])).dtype == torch.int64


def test_typed_constructors_keep_large_integers_exact() -> None:
    big = np.array([16777217, -(2**40) - 1])  # not representable in float32
    assert ds.LongTensor(big).tolist() == torch.LongTensor(big).tolist() == big.tolist()
    assert ds.LongTensor([1.7, -2.5]).tolist() == torch.LongTensor([1.7, -2.5]).tolist()


def test_custom_layer_idiom_builds_the_right_parameters() -> None:
    bias = ds.nn.Parameter(ds.Tensor(4))
    ds.nn.init.uniform_(bias, -0.5, 0.5)
    assert bias.shape == (4,) and bias.requires_grad


def test_a_negative_size_is_refused_as_in_torch() -> None:
    with pytest.raises(RuntimeError, match="negative dimension"):
        torch.Tensor(-1)
    with pytest.raises(RuntimeError, match="negative dimension"):
        ds.Tensor(-1)


def test_requires_grad_false_on_a_non_leaf_raises_torchs_error() -> None:
    message = "you can only change requires_grad flags of leaf variables"
    for T in (torch, ds):
        a = T.ones(2, requires_grad=True)
        b = a * 2
        with pytest.raises(RuntimeError, match=message):
            b.requires_grad = False
        with pytest.raises(RuntimeError, match=message):
            b.requires_grad_(False)
        b.requires_grad_(True)  # allowed in torch too
        assert b.requires_grad and b.grad_fn is not None
        (b * 3 + a).sum().backward()
        assert a.grad.tolist() == [7.0, 7.0]
        with T.no_grad():
            c = a * 2
        c.requires_grad = False  # a leaf: fine


def test_requires_grad_on_an_integer_tensor_is_a_runtime_error_as_in_torch() -> None:
    for T in (torch, ds):
        with pytest.raises(RuntimeError, match="floating point"):
            T.tensor([1, 2]).requires_grad_()
        with pytest.raises(RuntimeError, match="floating point"):
            T.tensor([1, 2]).requires_grad = True
    with pytest.raises(TypeError):  # still a TypeError for code written against downslope
        ds.tensor([1, 2]).requires_grad_()


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:2],
        lambda a: a.view(2, 2)[0],
        lambda a: a.split(2)[0],
        lambda a: a.view(4),
        lambda a: a.unsqueeze(0),
    ],
)
def test_detach_in_place_refuses_a_view(view) -> None:  # type: ignore[no-untyped-def]
    for T in (torch, ds):
        a = T.ones(4, requires_grad=True)
        with pytest.raises(RuntimeError, match="Can't detach views in-place"):
            view(a).detach_()
        b = a * 2
        b.detach_()  # not a view: fine
        assert not b.requires_grad and b.is_leaf


def test_base_names_the_viewed_tensor() -> None:
    a = ds.ones(4, requires_grad=True)
    ta = torch.ones(4, requires_grad=True)
    assert a._base is None and ta._base is None
    assert a[:2]._base is a and ta[:2]._base is ta
    assert a.view(2, 2)[0]._base is a and ta.view(2, 2)[0]._base is ta
    assert (a * 2)._base is None and (ta * 2)._base is None
    assert a.split(2)[1]._base is a and ta.split(2)[1]._base is ta


@pytest.mark.parametrize("values", [[float("nan"), 1.0, float("nan")], [float("nan"), float("nan"), 1.0, 2.0, 1.0]])
def test_unique_keeps_each_nan_as_torch(values) -> None:  # type: ignore[no-untyped-def]
    ours = ds.unique(ds.tensor(values), return_inverse=True, return_counts=True)
    theirs = torch.unique(torch.tensor(values), return_inverse=True, return_counts=True)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())


def test_reading_grad_of_a_non_leaf_warns_as_in_torch() -> None:
    for T in (torch, ds):
        a = T.ones(2, requires_grad=True)
        b = a * 2
        with pytest.warns(UserWarning, match="not a leaf Tensor is being accessed"):
            assert b.grad is None
        c = a * 3
        c.retain_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert c.grad is None and a.grad is None
            c.sum().backward()
            assert c.grad.tolist() == [1.0, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copy.deepcopy(ds.ones(2, requires_grad=True) * 2)  # copying a non-leaf does not read its .grad
