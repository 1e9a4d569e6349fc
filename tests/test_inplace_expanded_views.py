"""In-place writes into views of expanded tensors, as torch: refused only where the written view repeats
an element (torch's internal-overlap check); otherwise the write lands in the expanded tensor's memory."""

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import StateError


def test_select_of_expanded_writes_into_base() -> None:
    x, tx = ds.zeros(4, 4), torch.zeros(4, 4)
    y, ty = x.expand(2, 4, 4), tx.expand(2, 4, 4)
    y[0].add_(1)
    ty[0].add_(1)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    np.testing.assert_array_equal(y[1].numpy(), ty[1].numpy())  # y is a view of x: its other rows see it


@pytest.mark.parametrize(
    "write",
    [
        lambda y: y[1:2].add_(1),  # a slice of size 1 over the repeated dim
        lambda y: y[0, 1].fill_(5),
        lambda y: y[0][1:].mul_(0).add_(3),
        lambda y: y[:, 0][1].sub_(2),  # a select of a view that still repeats elements
    ],
)
def test_writes_that_repeat_nothing_match_torch(write) -> None:
    x, tx = ds.arange(12.0).reshape(4, 3), torch.arange(12.0).reshape(4, 3)
    write(x.expand(5, 4, 3))
    write(tx.expand(5, 4, 3))
    np.testing.assert_array_equal(x.numpy(), tx.numpy())


@pytest.mark.parametrize(
    "write",
    [
        lambda y: y.add_(1),
        lambda y: y[:, 0].add_(1),  # still repeats along the expanded dim
        lambda y: y[0:2].add_(1),
    ],
)
def test_writes_that_repeat_an_element_are_refused(write) -> None:
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        write(torch.zeros(4, 4).expand(2, 4, 4))
    x = ds.zeros(4, 4)
    with pytest.raises(StateError, match="more than one element of the written-to tensor"):
        write(x.expand(2, 4, 4))
    assert float(x.sum()) == 0.0


def test_gradient_through_a_write_into_a_select_of_expanded_non_leaf() -> None:
    a = np.random.default_rng(0).standard_normal((4, 4))
    weights = np.arange(32.0).reshape(2, 4, 4)
    grads = []
    for lib in (ds, torch):
        leaf = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        y = (leaf * 2).expand(2, 4, 4)
        y[0].mul_(3)
        (y * lib.tensor(weights, dtype=lib.float64)).sum().backward()
        grads.append((y.detach().numpy().copy(), leaf.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12)
    # closed form: y = 6a in both rows, so d/da sum(w * y) = 6 (w0 + w1)
    np.testing.assert_allclose(grads[0][1], 6 * weights.sum(0), rtol=1e-12)


def test_gradient_of_an_operand_written_into_a_select_of_expanded_buffer() -> None:
    w = np.random.default_rng(1).standard_normal(3)
    results = []
    for lib in (ds, torch):
        buf = lib.zeros(3, dtype=lib.float64)
        v = lib.tensor(w, dtype=lib.float64, requires_grad=True)
        y = buf.expand(2, 3)
        y[1].add_(v * v)
        (buf * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        results.append((buf.detach().numpy().copy(), v.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], 2 * w * np.array([1.0, 2.0, 3.0]), rtol=1e-12)


def test_select_of_expanded_leaf_is_refused_as_torch() -> None:
    with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
        torch.zeros(4, requires_grad=True).expand(2, 4)[0].add_(1)
    with pytest.raises(StateError, match="a view of a leaf Variable"):
        ds.zeros(4, requires_grad=True).expand(2, 4)[0].add_(1)


@pytest.mark.host_only  # read-only flags on shared NumPy arrays are the host's (CuPy has none)
def test_deliberately_read_only_views_stay_read_only() -> None:
    locked = np.zeros((2, 3))[0:2]
    locked.flags.writeable = False
    with pytest.warns(UserWarning, match="not writable"):
        t = ds.from_numpy(locked)
    with pytest.raises(StateError, match="read-only"):
        t[0].add_(1)


@pytest.mark.parametrize("statement", ["y[0] = 3", "y[1:2] = 1", "y[0, 1] = 7", "y[..., 1:2][0] = 5"])
def test_assignment_into_a_part_of_expanded_that_repeats_nothing(statement: str) -> None:
    for lib in (ds, torch):
        x = lib.zeros(4, 4)
        exec(statement, {"y": x.expand(2, 4, 4)})
        if lib is ds:
            got = x.numpy().copy()
    np.testing.assert_array_equal(got, x.numpy())
    assert got.any()


def test_assignment_into_a_repeated_part_of_expanded_is_refused() -> None:
    with pytest.raises(RuntimeError, match="more than one element"):
        torch.zeros(4, 4).expand(2, 4, 4)[:, 0] = 1
    with pytest.raises(StateError, match="more than one element"):
        ds.zeros(4, 4).expand(2, 4, 4)[:, 0] = 1


def test_gradient_through_an_assignment_into_expanded_non_leaf() -> None:
    a = np.random.default_rng(2).standard_normal((3, 4))
    v = np.random.default_rng(3).standard_normal(4)
    weights = np.arange(24.0).reshape(2, 3, 4)
    results = []
    for lib in (ds, torch):
        leaf = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        value = lib.tensor(v, dtype=lib.float64, requires_grad=True)
        y = (leaf * 2).expand(2, 3, 4)
        y[1, 2] = value * 3
        (y * lib.tensor(weights, dtype=lib.float64)).sum().backward()
        results.append((y.detach().numpy().copy(), leaf.grad.numpy(), value.grad.numpy()))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # closed form: row 2 of x is 3 v (its old values get no gradient); every other element is 2 a
    np.testing.assert_allclose(results[0][2], 3 * weights.sum(0)[2], rtol=1e-12)
