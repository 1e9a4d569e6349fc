"""The optimizer's flat buffers (src/downslope/optim/buckets.py): copies keep parameters and buffer linked."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim

MAKERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: optim.Adam(p, lr=0.1),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_deep_copy_of_model_and_optimizer_trains_like_the_original(name: str) -> None:
    ds.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = MAKERS[name](model.parameters())
    x = ds.ones(4, 3)

    def step(m: nn.Module, o: optim.Optimizer) -> None:
        o.zero_grad()
        (m(x) ** 2).sum().backward()
        o.step()

    step(model, opt)
    model2, opt2 = copy.deepcopy((model, opt))
    before = model2.weight.numpy().copy()
    for _ in range(3):
        step(model, opt)
        step(model2, opt2)
    assert not np.array_equal(model2.weight.numpy(), before)  # the copy's steps reach the copy's weights
    np.testing.assert_array_equal(model2.weight.numpy(), model.weight.numpy())
    assert not np.shares_memory(model2.weight.numpy(), model.weight.numpy())
