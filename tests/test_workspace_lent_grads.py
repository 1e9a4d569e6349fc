"""A lent gradient (workspace.lend: a large op's fresh input gradient) becomes a leaf's .grad without
a copy, and never shares memory with another .grad, the caller's gradient array or a pooled buffer."""

from __future__ import annotations

import numpy as np

import downslope as ds
from downslope import workspace

SHAPE = (256, 256)  # at the pooled-activation size: relu's input gradient is lent


def _x(seed: int = 0) -> ds.Tensor:
    rng = np.random.default_rng(seed)
    return ds.from_numpy(rng.standard_normal(SHAPE).astype(np.float32)).requires_grad_()


def test_nbytes_is_the_product_of_the_shape() -> None:
    assert workspace._nbytes((3, 5), np.dtype(np.float32)) == 60
    assert workspace._nbytes((), np.dtype(np.float64)) == 8
    assert workspace._nbytes((0, 4), np.dtype(np.float32)) == 1
    assert type(workspace._nbytes((np.int64(3), 2), np.dtype(np.float32))) is int


def test_is_lent_whole_tells_the_whole_array_from_its_parts() -> None:
    a = workspace.lend(SHAPE, np.float32)
    assert workspace.is_lent_whole(a) and workspace.is_lent_whole(a.reshape(-1))
    assert not workspace.is_lent_whole(a[1:]) and not workspace.is_lent_whole(a.T)
    assert not workspace.is_lent_whole(np.zeros(SHAPE, np.float32))
    assert not workspace.is_lent_whole(workspace.lend((4,), np.float32))  # small: a plain array


def test_a_lent_gradient_becomes_the_grad_without_a_copy() -> None:
    x = _x()
    g = np.ones(SHAPE, np.float32)
    ds.relu(x).backward(ds.from_numpy(g))
    assert workspace.is_lent_whole(x.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), (x.detach().numpy() > 0).astype(np.float32))
    assert not np.shares_memory(x.grad.numpy(), g)


def test_two_leaves_never_share_a_lent_gradient() -> None:
    a, b = _x(1), _x(2)
    ds.relu(a + b).sum().backward()  # add hands the same lent array to both
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a2, b2 = _x(3), _x(4)
    ds.relu(a2.reshape(-1) + b2.reshape(-1)).sum().backward()  # views of one lent array
    assert not np.shares_memory(a2.grad.numpy(), b2.grad.numpy())
    a2.grad.numpy()[...] = 7
    assert (b2.grad.numpy() != 7).all()


def test_a_lent_root_gradient_is_copied_into_the_grad() -> None:
    x = _x()
    root = ds.relu(_x(5)).detach()  # a lent array, handed in as the caller's gradient
    assert workspace.is_lent_whole(root.numpy())
    y = x.reshape(-1) * 1.0
    y.reshape(SHAPE).backward(root.reshape(SHAPE))
    assert not np.shares_memory(x.grad.numpy(), root.numpy())


def test_grads_accumulate_over_steps_into_their_own_memory() -> None:
    x = _x()
    for _ in range(3):
        out = ds.relu(x)
        out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 3 * (x.detach().numpy() > 0))
    other = ds.relu(_x(6))  # a new lent output must not land on x.grad's memory
    assert not np.shares_memory(other.detach().numpy(), x.grad.numpy())
