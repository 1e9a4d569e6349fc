"""torch's warning when a scheduler is stepped before its optimizer (the first lr of the schedule is
then skipped): the same schedulers warn, the same orders do not."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

MAKERS = {
    "StepLR": lambda S, o: S.StepLR(o, 1),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda e: 1.0),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, 1.0, total_steps=10),
    "CyclicLR": lambda S, o: S.CyclicLR(o, 0.01, 0.1),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 2),
    "ReduceLROnPlateau": lambda S, o: S.ReduceLROnPlateau(o),
    "SequentialLR": lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, 0.5, total_iters=3), S.ExponentialLR(o, 0.9)], [3]),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, 0.5, total_iters=1), S.ExponentialLR(o, 0.9)]),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, 4),
}


def _order_warnings(T: Any, name: str, scheduler_first: bool) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = T.nn.Parameter(T.ones(1))
        opt = T.optim.SGD([p], lr=0.1)
        sched = MAKERS[name](T.optim.lr_scheduler, opt)
        args = (1.0,) if name == "ReduceLROnPlateau" else ()
        for i in range(3):
            p.sum().backward()
            if scheduler_first and i == 0:
                sched.step(*args)
            opt.step()
            sched.step(*args)
    return sum("before `optimizer.step()`" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("scheduler_first", [True, False])
def test_the_step_order_warning_matches_torch(name: str, scheduler_first: bool) -> None:
    assert _order_warnings(ds, name, scheduler_first) == _order_warnings(torch, name, scheduler_first)


def test_a_copied_optimizer_marks_its_own_steps() -> None:
    p = ds.nn.Parameter(ds.ones(1))
    opt = ds.optim.SGD([p], lr=0.1)
    ds.optim.lr_scheduler.StepLR(opt, 1)
    twin = copy.deepcopy(opt)
    twin.step()
    assert getattr(twin, "_opt_called", False) and not getattr(opt, "_opt_called", False)
    assert sorted(opt.state_dict()) == sorted(ds.optim.SGD([p], lr=0.1).state_dict())


def test_a_wrapper_without_a_step_method_is_left_as_it_is() -> None:
    inner = ds.optim.SGD([ds.zeros(1, requires_grad=True)], lr=0.1)

    class Wrapper:  # exposes the inner optimizer's groups only
        def __init__(self, opt: Any) -> None:
            self.param_groups, self.defaults = opt.param_groups, opt.defaults

    wrapper = Wrapper(inner)
    ds.optim.lr_scheduler.ExponentialLR(wrapper, gamma=0.5).step()  # type: ignore[arg-type]
    assert not hasattr(wrapper, "step")
