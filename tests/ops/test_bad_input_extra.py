"""Bad input that used to reach NumPy (a raw traceback or a silently wrong result): each case now gets a
one-line downslope error, where torch refuses the same call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import ArgumentError, ArgumentTypeError, DownslopeError, OutOfRangeError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _torch_refuses(call: Callable[[Any, Any], Any]) -> bool:
    try:
        call(torch, TF)
    except (RuntimeError, TypeError, ValueError, IndexError):
        return True
    return False


# name: (the call, written once for both libraries, the downslope error expected)
CASES: dict[str, tuple[Callable[[Any, Any], Any], type[Exception]]] = {
    "zero_step": (lambda m, f: m.arange(6.0)[::0], ArgumentError),
    "zero_step_in_a_tuple": (lambda m, f: m.zeros(2, 3)[:, 1::0], ArgumentError),
    "zero_step_assignment": (lambda m, f: m.zeros(4).__setitem__(slice(None, None, 0), 1.0), ValueError),
    "index_add_source_wrong_width": (
        lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0, 1]), m.ones(2, 3)),
        ShapeError,
    ),
    "index_add_source_broadcast": (lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0, 1]), m.ones(4)), ShapeError),
    "index_add_source_one_row": (lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0, 1]), m.ones(1, 4)), ShapeError),
    "index_add_in_place_wrong_source": (
        lambda m, f: m.zeros(3, 4).index_add_(1, m.tensor([0, 1]), m.ones(3, 3)),
        ShapeError,
    ),
    "index_add_index_too_big": (
        lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0, 3]), m.ones(2, 4)),
        OutOfRangeError,
    ),
    "index_add_negative_index": (
        lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0, -1]), m.ones(2, 4)),
        OutOfRangeError,
    ),
    "index_add_2d_index": (lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([[0, 1]]), m.ones(2, 4)), OutOfRangeError),
    "index_add_float_index": (
        lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0.0, 1.0]), m.ones(2, 4)),
        ArgumentTypeError,
    ),
    "index_add_source_dtype": (
        lambda m, f: m.zeros(3, 4).index_add(0, m.tensor([0, 1]), m.ones(2, 4, dtype=m.float64)),
        ArgumentTypeError,
    ),
    "index_copy_source_broadcast": (lambda m, f: m.zeros(3, 4).index_copy(0, m.tensor([0, 1]), m.ones(4)), ShapeError),
    "index_copy_negative_index": (
        lambda m, f: m.zeros(3, 4).index_copy(0, m.tensor([0, -1]), m.ones(2, 4)),
        OutOfRangeError,
    ),
    "index_select_negative_index": (lambda m, f: m.zeros(3, 4).index_select(0, m.tensor([0, -1])), OutOfRangeError),
    "index_select_2d_index": (lambda m, f: m.zeros(3, 4).index_select(0, m.tensor([[0, 1]])), OutOfRangeError),
    "index_select_scalar_two_indices": (lambda m, f: m.zeros(()).index_select(0, m.tensor([0, 0])), ShapeError),
    "index_reduce_negative_index": (
        lambda m, f: m.zeros(3).index_reduce(0, m.tensor([0, -1]), m.ones(2), "prod"),
        OutOfRangeError,
    ),
    "multilabel_target_too_wide": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3), m.tensor([[0, 1, -1, 2], [0, 1, 2, -1]])),
        ShapeError,
    ),
    "multilabel_target_too_narrow": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3), m.tensor([[0, 1], [0, 1]])),
        ShapeError,
    ),
    "multilabel_target_1d_for_batch": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3), m.tensor([0, 1, 2])),
        ShapeError,
    ),
    "multilabel_target_batched_for_1d": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(3), m.tensor([[0, 1, -1]])),
        ShapeError,
    ),
    "multilabel_float_target": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3), m.tensor([[0.0, 1, 2], [0, 1, 2]])),
        ArgumentTypeError,
    ),
    "multilabel_target_below_minus_one": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3), m.tensor([[0, 1, -3], [0, 1, 2]])),
        OutOfRangeError,
    ),
    "multilabel_target_past_the_end_marker": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3), m.tensor([[0, -1, 7], [0, 1, 2]])),
        OutOfRangeError,
    ),
    "multilabel_3d_input": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 3, 4), m.zeros(2, 3, 4, dtype=m.int64)),
        ShapeError,
    ),
    "multilabel_no_classes": (
        lambda m, f: f.multilabel_margin_loss(m.zeros(2, 0), m.zeros(2, 0, dtype=m.int64)),
        ShapeError,
    ),
    "scatter_src_smaller_than_index": (
        lambda m, f: m.zeros(3, 4).scatter(1, m.tensor([[0, 1]]), m.ones(1, 1)),
        ShapeError,
    ),
    "scatter_add_src_dtype": (
        lambda m, f: m.zeros(3, 4).scatter_add(1, m.tensor([[0, 1]]), m.ones(1, 2, dtype=m.float64)),
        ArgumentTypeError,
    ),
    "take_along_dim_fewer_dims": (lambda m, f: m.take_along_dim(m.zeros(3, 4), m.tensor([1]), 1), ShapeError),
    "index_fill_2d_index": (lambda m, f: m.zeros(3, 4).index_fill(0, m.tensor([[1]]), 1.0), OutOfRangeError),
    "put_source_and_index_sizes": (lambda m, f: m.zeros(3, 4).put(m.tensor([1, 2]), m.tensor([1.0])), ShapeError),
    "put_index_too_big": (lambda m, f: m.zeros(3, 4).put(m.tensor([12]), m.tensor([1.0])), OutOfRangeError),
    "negate_bool": (lambda m, f: -m.tensor([True, False]), ArgumentTypeError),
    "neg_bool": (lambda m, f: m.neg(m.tensor([True, False])), ArgumentTypeError),
    "neg_bool_in_place": (lambda m, f: m.tensor([True, False]).neg_(), ArgumentTypeError),
    "subtract_bools": (lambda m, f: m.tensor([True, False]) - m.tensor([True, True]), ArgumentTypeError),
    "subtract_bool_from_number": (lambda m, f: 1 - m.tensor([True, False]), ArgumentTypeError),
    "subtract_bool_from_ints": (lambda m, f: m.tensor([1, 2]) - m.tensor([True, False]), ArgumentTypeError),
}


# the loss checks target values on host arrays only (on a device the check would wait for it)
HOST_ONLY = {"multilabel_target_below_minus_one", "multilabel_target_past_the_end_marker"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.host_only) if c in HOST_ONLY else c for c in sorted(CASES)]
)
def test_refused_with_a_downslope_error_where_torch_refuses(case: str) -> None:
    call, error = CASES[case]
    assert _torch_refuses(call), f"torch accepts {case}"
    with pytest.raises(error) as info:
        call(ds, F)
    assert isinstance(info.value, DownslopeError)
    assert "\n" not in str(info.value) and "numpy" not in str(info.value).lower()


def test_zero_step_message_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match="step must be greater than zero"):
        ds.arange(6.0)[::0]


def test_bool_negation_message_is_torchs() -> None:
    with pytest.raises(TypeError) as info:
        -ds.tensor([True])
    try:
        -torch.tensor([True])
    except RuntimeError as exc:
        assert str(info.value) == str(exc)


def _pair(shape: tuple[int, ...], seed: int) -> tuple[Any, Any]:
    a = np.random.default_rng(seed).standard_normal(shape)
    return ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_add_and_copy_still_match_torch_with_gradients(dim: int) -> None:
    x, tx = _pair((3, 4), 0)
    n = 5 if dim == 0 else 3
    size = x.shape[dim]
    idx = np.random.default_rng(1).integers(0, size, n)
    shape = list(x.shape)
    shape[dim] = n
    s, ts = _pair(tuple(shape), 2)
    y = x.index_add(dim, ds.tensor(idx), s, alpha=2.0) * 3 + x.index_copy(
        dim, ds.tensor(idx[:1]), s[:1] if dim == 0 else s[:, :1]
    )
    ty = tx.index_add(dim, torch.tensor(idx), ts, alpha=2.0) * 3 + tx.index_copy(
        dim, torch.tensor(idx[:1]), ts[:1] if dim == 0 else ts[:, :1]
    )
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    w = np.random.default_rng(3).standard_normal(y.shape)
    (y * ds.tensor(w, dtype=ds.float64)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-12)


def test_scalar_tensors_take_one_index_as_torch() -> None:
    for name, args in (("index_add", (ds.ones(()),)), ("index_copy", (ds.ones(()) * 5,))):
        ours = getattr(ds.zeros(()), name)(0, ds.tensor([0]), *args)
        theirs = getattr(torch.zeros(()), name)(0, torch.tensor([0]), *(torch.tensor(a.numpy()) for a in args))
        assert ours.shape == () and ours.item() == theirs.item()
    assert ds.tensor(3.0).index_select(0, ds.tensor([0])).item() == 3.0
    assert ds.zeros(0, 3).index_add(0, ds.tensor([], dtype=ds.int64), ds.zeros(0, 3)).shape == (0, 3)


def test_multilabel_margin_loss_unbatched_and_scalar_inputs_match_torch() -> None:
    x, t = np.array([0.1, 0.5, -0.2, 0.9]), np.array([3, 0, -1, 2])
    for reduction in ("none", "mean", "sum"):
        ours = F.multilabel_margin_loss(ds.tensor(x, dtype=ds.float64), ds.tensor(t), reduction=reduction)
        theirs = TF.multilabel_margin_loss(torch.tensor(x), torch.tensor(t), reduction=reduction)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert F.multilabel_margin_loss(ds.tensor(0.3), ds.tensor(0)).item() == 0.0


@pytest.mark.host_only  # the index range is checked on host arrays only (a device check would wait for it)
def test_take_along_dim_refuses_an_index_out_of_range() -> None:
    # torch's CPU kernel reads past the end here without a check; downslope refuses
    with pytest.raises(OutOfRangeError, match="index 9 is out of bounds"):
        ds.take_along_dim(ds.zeros(3, 4), ds.tensor([[9]]), 1)


@pytest.mark.parametrize("accumulate", [False, True])
def test_put_and_index_fill_wrap_negative_indices_as_torch(accumulate: bool) -> None:
    x, tx = ds.arange(12.0).reshape(3, 4), torch.arange(12.0).reshape(3, 4)
    ours = x.put(ds.tensor([-1, 2, -1]), ds.tensor([100.0, 5.0, 1.0]), accumulate=accumulate)
    theirs = tx.put(torch.tensor([-1, 2, -1]), torch.tensor([100.0, 5.0, 1.0]), accumulate=accumulate)
    if accumulate:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(
        x.index_fill(1, ds.tensor([-1]), 7.0).numpy(), tx.index_fill(1, torch.tensor([-1]), 7.0).numpy()
    )
    np.testing.assert_array_equal(
        ds.take_along_dim(x, ds.tensor([[-1]]), 1).numpy(), torch.take_along_dim(tx, torch.tensor([[-1]]), 1).numpy()
    )


def test_comparisons_of_shapes_that_do_not_broadcast_are_refused_by_name() -> None:
    # torch raises a RuntimeError; NumPy's bare ValueError (list.remove(tensor) meets it) is not one
    for compare in (
        lambda a, b: a == b,
        lambda a, b: a != b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
        lambda a, b: ds.eq(a, b),
    ):
        with pytest.raises(ShapeError, match=r"comparison: shapes \(2,\) and \(3,\) do not broadcast"):
            compare(ds.ones(2), ds.ones(3))
    with pytest.raises(RuntimeError):
        [ds.ones(2)].remove(ds.ones(3))
