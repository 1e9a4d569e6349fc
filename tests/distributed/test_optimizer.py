"""DistributedOptimizer: the wrapped step averages gradients first; everything else is the inner optimizer's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.distributed import World
from downslope.distributed.world import _SelfComm


def test_two_ranks_through_the_wrapper_match_the_direct_allreduce(
    two_process_results: list[dict[str, np.ndarray]],
) -> None:
    for key in [k for k in two_process_results[0] if k.startswith("wrapped_adam/")]:
        direct = two_process_results[0][key.replace("wrapped_adam/", "adam/")]
        np.testing.assert_array_equal(two_process_results[0][key], direct, key)
        np.testing.assert_array_equal(two_process_results[1][key], direct, key)


class _ZeroPeer(_SelfComm):
    """A second rank that contributes zeros: averaged gradients (and closure losses) are halved."""

    size = 2

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, data]


def _halving_world() -> World:
    return World(rank=0, world_size=2, backend="fake", comm=_ZeroPeer())


def test_step_averages_before_updating() -> None:
    w = ds.nn.Parameter([1.0, 2.0])
    opt = dist.DistributedOptimizer(optim.SGD([w], lr=1.0), world=_halving_world())
    opt.zero_grad()
    (w * ds.tensor([4.0, 8.0])).sum().backward()
    opt.step()
    # grad (4, 8) averaged with a zero peer is (2, 4); SGD with lr 1 subtracts it
    np.testing.assert_array_equal(w.detach().numpy(), [-1.0, -2.0])


def test_closure_gradients_and_loss_are_averaged() -> None:
    w = ds.nn.Parameter([3.0])
    opt = dist.DistributedOptimizer(optim.SGD([w], lr=1.0), world=_halving_world())

    def closure() -> Any:
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(4.5)  # 9 averaged with a peer's 0
    np.testing.assert_array_equal(w.detach().numpy(), [0.0])  # 3 - (6 / 2)


def test_everything_else_is_the_inner_optimizer() -> None:
    model = nn.Linear(2, 2)
    inner = optim.Adam(model.parameters(), lr=0.01)
    opt = dist.DistributedOptimizer(inner)
    assert opt.param_groups is inner.param_groups
    assert opt.defaults is inner.defaults
    assert opt.state_dict().keys() == inner.state_dict().keys()
    with pytest.raises(TypeError, match="already wrapped"):
        dist.DistributedOptimizer(opt)
    with pytest.raises(TypeError, match="expected an optimizer with param_groups and step"):
        dist.DistributedOptimizer(object())


def test_reducer_follows_new_param_groups() -> None:
    a, b = ds.nn.Parameter([1.0]), ds.nn.Parameter([2.0, 3.0])
    opt = dist.DistributedOptimizer(optim.SGD([a], lr=0.1))
    assert opt.reducer.params == [a]
    opt.add_param_group({"params": [b]})
    assert opt.reducer.params == [a, b]
