"""The optimizer's flat buffers (src/downslope/optim/buckets.py): copies keep parameters and buffer linked."""

from __future__ import annotations

import copy
from typing import Any

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
    before = model2.weight.detach().numpy().copy()
    for _ in range(3):
        step(model, opt)
        step(model2, opt2)
    assert not np.array_equal(model2.weight.detach().numpy(), before)  # the copy's steps reach the copy's weights
    np.testing.assert_array_equal(model2.weight.detach().numpy(), model.weight.detach().numpy())
    assert not np.shares_memory(model2.weight.detach().numpy(), model.weight.detach().numpy())


def test_momentum_switched_on_while_a_parameter_has_no_grad_starts_its_buffer_from_its_grad_as_torch() -> None:
    torch = pytest.importorskip("torch")

    def run(lib: Any) -> list[float]:
        def make(v: list[float]) -> Any:
            return lib.tensor(v, dtype=lib.float64, requires_grad=True)

        def grad(v: list[float]) -> Any:
            return lib.tensor(v, dtype=lib.float64)

        a, b = make([1.0]), make([1.0])
        opt = lib.optim.SGD([a, b], lr=0.1, momentum=0.0, dampening=0.5)
        a.grad, b.grad = grad([1.0]), grad([1.0])
        opt.step()
        opt.param_groups[0]["momentum"] = 0.9  # switched on (a warm-up schedule would do this)
        a.grad, b.grad = grad([1.0]), None
        opt.step()
        for _ in range(2):
            a.grad, b.grad = grad([1.0]), grad([2.0])
            opt.step()
        return [float(a.detach().numpy()[0]), float(b.detach().numpy()[0])]

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)
