"""The in-place products (addmm_, addmv_, addr_, baddbmm_, addbmm_), bitwise_not_ and float_power_
against torch: values, the written tensor returned, errors, and gradients through the write."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
CASES = [
    ("addmm_", (2, 4), [(2, 3), (3, 4)]),
    ("addmv_", (2,), [(2, 3), (3,)]),
    ("addr_", (2, 3), [(2,), (3,)]),
    ("baddbmm_", (5, 2, 4), [(5, 2, 3), (5, 3, 4)]),
    ("addbmm_", (2, 4), [(5, 2, 3), (5, 3, 4)]),
]


@pytest.mark.parametrize(("name", "shape", "operand_shapes"), CASES)
@pytest.mark.parametrize(("beta", "alpha"), [(1, 1), (0.5, 2.0), (0, -1.5)])
def test_values_and_gradients_match_torch(name: str, shape: Any, operand_shapes: Any, beta: Any, alpha: Any) -> None:
    base = RNG.standard_normal(shape)
    operands = [RNG.standard_normal(s) for s in operand_shapes]
    leaf = ds.tensor(base, dtype=ds.float64, requires_grad=True)
    ops = [ds.tensor(o, dtype=ds.float64, requires_grad=True) for o in operands]
    t_leaf = torch.tensor(base, requires_grad=True)
    t_ops = [torch.tensor(o, requires_grad=True) for o in operands]
    x = leaf * 1.0  # a non-leaf to write into
    tx = t_leaf * 1.0
    out = getattr(x, name)(*ops, beta=beta, alpha=alpha)
    t_out = getattr(tx, name)(*t_ops, beta=beta, alpha=alpha)
    assert out is x
    np.testing.assert_allclose(x.detach().numpy(), tx.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = np.cos(np.arange(x.numel())).reshape(x.shape)
    (out * ds.tensor(w, dtype=ds.float64)).sum().backward()
    (t_out * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), t_leaf.grad.numpy(), rtol=1e-10, atol=1e-12)
    for o, t in zip(ops, t_ops):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "shape", "operand_shapes"), CASES)
def test_leaf_that_requires_grad_and_shape_changes_are_refused(name: str, shape: Any, operand_shapes: Any) -> None:
    operands = [ds.ones(*s) for s in operand_shapes]
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(ds.ones(*shape, requires_grad=True), name)(*operands)
    with pytest.raises(ds.ShapeError):
        getattr(ds.ones(7), name)(*operands)


def test_version_counter_moves_and_an_earlier_use_keeps_its_gradient() -> None:
    x = ds.ones(2, 2)
    before = x._version
    x.addmm_(ds.eye(2), ds.eye(2))
    assert x._version == before + 1
    a = ds.ones(2, 2, requires_grad=True)
    y = a * 1.0
    w = y * y  # used before the write: its gradient is the one of the values it saw
    y.addmm_(ds.eye(2), ds.eye(2))
    w.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 2), 2.0))


def test_top_level_addmv_() -> None:
    x = ds.ones(2)
    assert ds.addmv_(x, ds.ones(2, 3), ds.ones(3), beta=2) is x
    assert x.tolist() == torch.addmv_(torch.ones(2), torch.ones(2, 3), torch.ones(3), beta=2).tolist()
    with pytest.raises(TypeError):
        ds.addmv_([1.0, 2.0], ds.ones(2, 3), ds.ones(3))


def test_integer_tensor_cannot_hold_a_float_product() -> None:
    with pytest.raises(TypeError):
        ds.ones(2, dtype=ds.int64).addmv_(ds.ones(2, 3), ds.ones(3))


def test_bitwise_not_() -> None:
    for data in ([1, 2, -5], [True, False]):
        x, t = ds.tensor(data), torch.tensor(data)
        assert x.bitwise_not_() is x
        assert x.tolist() == t.bitwise_not_().tolist()
    with pytest.raises(TypeError):
        ds.tensor([1.0]).bitwise_not_()


def test_float_power_() -> None:
    leaf = ds.tensor([1.5, 2.0, 3.0], dtype=ds.float64, requires_grad=True)
    t_leaf = torch.tensor([1.5, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    x, tx = leaf * 1.0, t_leaf * 1.0
    assert x.float_power_(2.5) is x
    tx.float_power_(2.5)
    np.testing.assert_allclose(x.detach().numpy(), tx.detach().numpy(), rtol=1e-14)
    x.sum().backward()
    tx.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), t_leaf.grad.numpy(), rtol=1e-12)
    y = ds.tensor([2.0, 3.0], dtype=ds.float64)
    y.float_power_(ds.tensor([2, 3]))
    assert y.tolist() == [4.0, 27.0]
    for bad in (ds.ones(2), ds.tensor([1, 2])):
        with pytest.raises(TypeError, match="float64"):
            bad.float_power_(2)
