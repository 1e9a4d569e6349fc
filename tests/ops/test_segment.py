"""ds.segment_reduce against torch.segment_reduce: every reduction with lengths and offsets, empty
segments, ``initial``, batched lengths along a later axis, trailing dims, gradients (ties of max/min,
zeros of prod) and torch's errors; second order against float64 finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DownslopeError

torch = pytest.importorskip("torch")

REDUCES = ["sum", "mean", "max", "min", "prod", "amax", "amin"]
DATA = np.array([1.0, 2.0, 2.0, 0.0, 5.0, 6.0, 0.0, 3.0])  # ties (2, 2) and zeros in two segments
LENGTHS = np.array([3, 0, 2, 3])


def _run(lib: Any, data: np.ndarray, reduce: str, w: np.ndarray, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """The result and the gradient of sum(w * result) (NaN and infinite results weighted by 0)."""
    x = lib.tensor(data, dtype=lib.float64, requires_grad=True)
    args = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    out = lib.segment_reduce(x, reduce, **args)
    weights = lib.tensor(np.where(np.isfinite(out.detach().numpy()), w, 0.0), dtype=lib.float64)
    (lib.where(lib.isfinite(out), out, 0.0) * weights).sum().backward()
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("initial", [None, 2.0, 0.0])
@pytest.mark.parametrize("bounds", ["lengths", "offsets"])
def test_segment_reduce_matches_torch(reduce: str, initial: float | None, bounds: str) -> None:
    w = np.array([1.0, 2.0, 3.0, 4.0])
    kw: dict[str, Any] = {"initial": initial}
    kw[bounds] = LENGTHS if bounds == "lengths" else np.concatenate([[0], np.cumsum(LENGTHS)])
    got, ref = _run(ds, DATA, reduce, w, **kw), _run(torch, DATA, reduce, w, **kw)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_segment_reduce_batched_lengths_along_a_later_axis_with_trailing_dims(reduce: str) -> None:
    rng = np.random.default_rng(0)
    data = np.round(rng.uniform(-2, 2, (2, 6, 3)) * 2) / 2  # ties for max/min
    lengths = np.array([[2, 0, 4], [1, 1, 4]])
    w = rng.standard_normal((2, 3, 3))
    if reduce in ("max", "min"):  # see the test of ties below: torch splits only positive gradients
        w = np.abs(w) + 0.1
    got = _run(ds, data, reduce, w, lengths=lengths, axis=1)
    ref = _run(torch, data, reduce, w, lengths=lengths, axis=1)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_segment_reduce_of_rows_float32(reduce: str) -> None:
    data = np.arange(12.0, dtype=np.float32).reshape(6, 2) - 5
    got = ds.segment_reduce(ds.tensor(data), reduce, lengths=ds.tensor([2, 0, 4]))
    ref = torch.segment_reduce(torch.tensor(data), reduce, lengths=torch.tensor([2, 0, 4]))
    assert got.dtype == ds.float32
    np.testing.assert_array_equal(got.numpy(), ref.numpy())


def test_segment_reduce_unsafe_and_offsets_past_the_start_as_torch() -> None:
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    for kw in (
        {"lengths": np.array([2, 1]), "unsafe": True},
        {"offsets": np.array([1, 2, 2, 6])},
        {"offsets": np.array([0, 2, 2, 5])},
    ):
        for reduce in ("sum", "mean", "max"):
            got = ds.segment_reduce(
                ds.tensor(data), reduce, **{k: ds.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
            )
            ref = torch.segment_reduce(
                torch.tensor(data),
                reduce,
                **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()},
            )
            np.testing.assert_array_equal(got.numpy(), ref.numpy())


def test_segment_reduce_propagates_nan_as_torch() -> None:
    data = [1.0, float("nan"), 3.0]
    for reduce in ("max", "min", "sum"):
        got = ds.segment_reduce(ds.tensor(data), reduce, lengths=ds.tensor([2, 1]), initial=5.0)
        ref = torch.segment_reduce(torch.tensor(data), reduce, lengths=torch.tensor([2, 1]), initial=5.0)
        np.testing.assert_array_equal(got.numpy(), ref.numpy())


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_segment_reduce_second_order_finite_differences(reduce: str) -> None:
    """torch has no double backward for segment_reduce; ours is scatter_reduce's, checked in float64."""
    data = ds.tensor([1.0, 2.5, -0.7, 0.3, 1.9, 1.2, -1.4, 0.8], dtype=ds.float64, requires_grad=True)
    lengths = ds.tensor([3, 0, 2, 3])

    def f(x: ds.Tensor) -> ds.Tensor:
        return ds.segment_reduce(x * x, reduce, lengths=lengths, initial=0.5)

    assert ds.autograd.gradcheck(f, (data,))
    assert ds.autograd.gradgradcheck(f, (data,))


@pytest.mark.parametrize(
    ("kw", "data"),
    [
        ({"reduce": "any", "lengths": [2, 4]}, DATA[:6]),
        ({"reduce": "sum"}, DATA[:6]),
        ({"reduce": "sum", "lengths": [2, 1]}, DATA[:6]),
        ({"reduce": "sum", "lengths": [2, -1, 5]}, DATA[:6]),
        ({"reduce": "sum", "lengths": [2, 0, 4], "axis": 1}, DATA[:6]),
        ({"reduce": "sum", "offsets": [0, 3, 2, 6]}, DATA[:6]),
        ({"reduce": "sum", "lengths": [[2, 0, 4], [1, 1, 4]]}, DATA[:6]),
        ({"reduce": "sum", "lengths": [1]}, np.array(3.0)),
    ],
)
def test_segment_reduce_refuses_what_torch_refuses(kw: dict[str, Any], data: np.ndarray) -> None:
    def call(lib: Any, error: type[Exception]) -> None:
        args = {k: lib.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
        with pytest.raises(error):
            lib.segment_reduce(lib.tensor(data), **args)

    call(torch, (RuntimeError, IndexError))
    call(ds, DownslopeError)


def test_segment_reduce_refuses_integer_data_and_float_lengths_as_torch() -> None:
    with pytest.raises(NotImplementedError):
        torch.segment_reduce(torch.tensor([1, 2, 3]), "sum", lengths=torch.tensor([1, 2]))
    with pytest.raises(DownslopeError, match="floating point"):
        ds.segment_reduce(ds.tensor([1, 2, 3]), "sum", lengths=ds.tensor([1, 2]))
    with pytest.raises(DownslopeError, match="integers"):
        ds.segment_reduce(ds.tensor([1.0, 2.0]), "sum", lengths=ds.tensor([1.0, 1.0]))


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_segment_reduce_ties_share_any_gradient_evenly(reduce: str) -> None:
    """torch's segment_reduce kernel divides a tied segment's gradient among its ties only where the
    gradient is positive (a negative one reaches every tie whole: not the derivative of any choice of
    the tie). Here it is shared evenly whatever its sign, as torch's scatter_reduce('amax'/'amin') does:
    the reference is that op over the same segments."""
    data = np.array([-1.0, 0.5, -1.0, 2.0, 2.0, 0.5])
    w = np.array([-3.0, 2.0])
    got = _run(ds, data, reduce, w, lengths=np.array([3, 3]))
    x = torch.tensor(data, requires_grad=True)
    out = torch.zeros(2, dtype=torch.float64).scatter_reduce(
        0, torch.tensor([0, 0, 0, 1, 1, 1]), x, "a" + reduce, include_self=False
    )
    (out * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(got[0], out.detach().numpy())
    np.testing.assert_array_equal(got[1], x.grad.numpy())
