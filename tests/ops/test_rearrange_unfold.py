"""Tensor.unfold as torch's view: the windows share the input's memory (no copy), writes to the input
show through them, in-place writes through disjoint windows reach the input (recorded when it is in
a graph), overlapping windows refuse them; values, gradients and second-order gradients against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")

# (shape, dim, size, step): overlapping (step < size), disjoint (step == size, step > size, with and
# without a tail shorter than a step), a single window, empty windows, a middle dim
CASES = [
    ((9,), 0, 3, 1),
    ((9,), 0, 4, 2),
    ((9,), 0, 3, 3),
    ((9,), 0, 2, 3),
    ((8,), 0, 2, 3),  # the last window ends before a whole step: 3 * 3 > 8
    ((9,), 0, 9, 1),
    ((9,), 0, 4, 10),
    ((9,), 0, 0, 2),
    ((3, 7, 2), 1, 3, 1),
    ((3, 7, 2), 1, 2, 3),
    ((3, 7, 2), -1, 1, 1),
    ((4, 6), 0, 2, 1),
]


def _pair(shape: tuple[int, ...], dtype: str = "float64", seed: int = 0) -> tuple[ds.Tensor, torch.Tensor]:
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return ds.tensor(a.copy(), dtype=ds.float64), torch.tensor(a.copy())


@pytest.mark.parametrize(("shape", "dim", "size", "step"), CASES)
def test_unfold_is_a_view_of_the_input_as_in_torch(shape, dim, size, step) -> None:  # type: ignore[no-untyped-def]
    x, tx = _pair(shape)
    u, tu = x.unfold(dim, size, step), tx.unfold(dim, size, step)
    np.testing.assert_array_equal(u.numpy(), tu.numpy())
    if u.array.size:
        assert np.shares_memory(u.array, x.array)  # no copy of the windows
        # torch's layout (the stride of a dim of size 1 is never used)
        assert [s for s, n in zip(u.stride(), u.shape) if n > 1] == [s for s, n in zip(tu.stride(), tu.shape) if n > 1]
        assert u.is_contiguous() == tu.is_contiguous()
    x.mul_(3.0).add_(1.0)  # writes to the input show through the windows, as torch's
    tx.mul_(3.0).add_(1.0)
    np.testing.assert_array_equal(u.numpy(), tu.numpy())


def test_unfold_of_a_long_series_takes_no_memory_per_window() -> None:
    """200k points, windows of 360 one apart: 72M window elements, none of them copied."""
    x = ds.tensor(np.random.default_rng(1).standard_normal(200_000).astype(np.float32))
    u = x.unfold(0, 360, 1)
    assert u.shape == (199_641, 360)
    assert np.shares_memory(u.array, x.array)
    np.testing.assert_array_equal(u[1000:1002].numpy(), torch.tensor(x.numpy()).unfold(0, 360, 1)[1000:1002].numpy())


@pytest.mark.parametrize(("shape", "dim", "size", "step"), CASES)
def test_unfold_gradients_match_torch(shape, dim, size, step) -> None:  # type: ignore[no-untyped-def]
    """First and second order (create_graph) gradients, with a loss whose gradient depends on x."""
    a = np.random.default_rng(2).standard_normal(shape)
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    u, tu = x.unfold(dim, size, step), tx.unfold(dim, size, step)
    w = np.random.default_rng(3).standard_normal(tuple(tu.shape))
    loss = (u * u * u * ds.tensor(w, dtype=ds.float64)).sum()
    tloss = (tu * tu * tu * torch.tensor(w)).sum()
    (g,) = ds.autograd.grad(loss, [x], create_graph=True)
    (tg,) = torch.autograd.grad(tloss, [tx], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12, atol=1e-12)
    v = np.random.default_rng(4).standard_normal(shape)
    if not tg.requires_grad:  # empty windows: torch's gradient is a constant
        return
    (h,) = ds.autograd.grad((g * ds.tensor(v, dtype=ds.float64)).sum(), [x])
    (th,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), [tx])
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-12, atol=1e-12)


def test_unfold_of_non_contiguous_inputs_and_chains_is_a_view_with_torchs_gradient() -> None:
    a = np.random.default_rng(5).standard_normal((7, 6))
    for f in (
        lambda t: t.T.unfold(0, 2, 1),
        lambda t: t.flip(0).unfold(0, 3, 2),
        lambda t: t.unfold(0, 3, 1).unfold(1, 2, 2),
        lambda t: t.T.unfold(1, 2, 3),
    ):
        x, tx = ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)
        y, ty = f(x), f(tx)
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        w = np.random.default_rng(6).standard_normal(tuple(ty.shape))
        (y * y * ds.tensor(w, dtype=ds.float64)).sum().backward()
        (ty * ty * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_overlapping_windows_refuse_in_place_writes() -> None:
    """Several written elements are one element of x: torch writes them in an unspecified order; here
    the op is refused, the input left as it was."""
    x = ds.arange(6.0)
    u = x.unfold(0, 3, 1)
    for write in (lambda: u.add_(1.0), lambda: u.fill_(0.0), lambda: u.copy_(ds.zeros(4, 3))):
        with pytest.raises(StateError, match="single memory location"):
            write()
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert u.clone().add_(1.0).tolist() == (torch.arange(6.0).unfold(0, 3, 1) + 1).tolist()  # a copy may be written


@pytest.mark.parametrize(("n", "size", "step"), [(6, 2, 3), (6, 2, 2), (5, 2, 3), (7, 3, 7)])
def test_in_place_writes_through_disjoint_windows_reach_the_input_as_in_torch(n, size, step) -> None:  # type: ignore[no-untyped-def]
    x, tx = ds.arange(float(n), dtype=ds.float64), torch.arange(float(n), dtype=torch.float64)
    x.unfold(0, size, step).add_(10.0)
    tx.unfold(0, size, step).add_(10.0)
    assert x.tolist() == tx.tolist()
    # with the input in a graph: the write is recorded, the gradient is torch's
    a = np.random.default_rng(7).standard_normal(n)
    x, tx = ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x * 1.0, tx * 1.0
    y.unfold(0, size, step).mul_(3.0)
    ty.unfold(0, size, step).mul_(3.0)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_a_write_to_the_input_after_unfold_is_caught_by_backward_as_in_torch() -> None:
    for size, step in ((3, 1), (2, 2), (2, 3)):
        x = ds.arange(8.0, requires_grad=True)
        y = x * 1.0
        u = y.unfold(0, size, step)
        loss = (u * u).sum()
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()
