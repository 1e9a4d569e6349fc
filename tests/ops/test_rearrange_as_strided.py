"""as_strided as torch reads a contiguous tensor: values, gradients (each element's gradient summed over
every place the view reads it), writes through a view that does not overlap, and refusals (a
non-contiguous input, a view reading past the input, overlapping in-place writes)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import InvalidValueError, OutOfRangeError, ShapeError, StateError

torch = pytest.importorskip("torch")

# (input shape, size, stride, storage_offset): sliding windows, a transpose-like view, a 3-D input with
# an offset, a strided pick, a size-0 view, the identity
CASES = [
    ((5,), (3, 3), (1, 1), None),
    ((12,), (3, 4), (4, 1), None),
    ((12,), (4, 3), (1, 4), 0),
    ((2, 3, 4), (2, 2, 2), (12, 4, 1), 1),
    ((4, 5), (3, 2, 2), (5, 1, 5), 2),
    ((8,), (4,), (2,), 1),
    ((10,), (0, 3), (1, 1), None),
    ((2, 3), (2, 3), (3, 1), None),
]


@pytest.mark.parametrize(("shape", "size", "stride", "offset"), CASES)
def test_as_strided_values_and_gradient_match_torch(shape, size, stride, offset) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    cot = rng.standard_normal(size)
    x, tx = ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)
    y = x.as_strided(size, stride, offset) if offset is not None else ds.as_strided(x, size, stride)
    ty = tx.as_strided(size, stride, offset) if offset is not None else torch.as_strided(tx, size, stride)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * ds.tensor(cot, dtype=ds.float64)).sum().backward()
    (ty * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_as_strided_shares_memory_and_takes_writes_when_it_does_not_overlap() -> None:
    x, tx = ds.arange(6.0), torch.arange(6.0)
    x.as_strided((2, 2), (3, 1)).mul_(10)
    tx.as_strided((2, 2), (3, 1)).mul_(10)
    assert x.tolist() == tx.tolist()
    view = x.as_strided((3,), (2,))
    x.add_(1)  # a write to the input shows through the view, as torch's
    assert view.tolist() == (tx + 1).as_strided((3,), (2,)).tolist()


def test_as_strided_write_through_a_view_is_recorded_in_the_graph() -> None:
    grads = []
    for lib in (ds, torch):
        w = lib.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], requires_grad=True)
        x = w * 1
        x.as_strided((2, 2), (3, 1)).mul_(w[:2].sum())
        (x * lib.arange(6.0)).sum().backward()
        grads.append(np.asarray(w.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_as_strided_of_a_convolution_output_reads_it_in_torch_layout() -> None:
    rng = np.random.default_rng(1)
    conv, tconv = ds.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3)
    tconv.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in conv.state_dict().items()})
    a = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y, ty = conv(ds.tensor(a)), tconv(torch.tensor(a))
    np.testing.assert_allclose(
        y.as_strided((4, 5), (7, 3), 2).detach().numpy(), ty.as_strided((4, 5), (7, 3), 2).detach().numpy(), atol=1e-6
    )


def test_as_strided_refuses_what_it_cannot_read_as_torch_does() -> None:
    with pytest.raises(StateError, match="overlap|more than one element"):
        ds.arange(5.0).as_strided((3, 3), (1, 1)).add_(1)
    with pytest.raises(StateError, match="not contiguous"):
        ds.zeros(3, 4).t().as_strided((2,), (1,))
    with pytest.raises(OutOfRangeError, match="reads element 6"):
        ds.arange(5.0).as_strided((3, 3), (1, 2))
    with pytest.raises(ShapeError, match="mismatch in length"):
        ds.arange(5.0).as_strided((2,), (1, 1))
    with pytest.raises(InvalidValueError, match="negative strides"):
        ds.arange(5.0).as_strided((2,), (-1,))
