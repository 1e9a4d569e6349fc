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


def _messages(T: Any, run: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(T)
    return [str(w.message) for w in caught]


def test_a_step_replaced_after_the_scheduler_warns_as_torch() -> None:
    def run(T: Any) -> None:
        opt = T.optim.SGD([T.nn.Parameter(T.ones(1))], lr=0.1)
        sched = T.optim.lr_scheduler.StepLR(opt, 2)
        opt.step = lambda *a, **k: None  # e.g. an AMP scaler's or a user's own step
        opt.step()
        sched.step()
        sched.step()  # only the first step checks

    ours, theirs = _messages(ds, run), _messages(torch, run)
    assert ours == theirs and len(ours) == 1 and "has been overridden" in ours[0]


GET_LR_MAKERS = {
    **MAKERS,
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.9),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, [1, 2]),
    "ConstantLR": lambda S, o: S.ConstantLR(o),
    "LinearLR": lambda S, o: S.LinearLR(o),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, 3),
}


@pytest.mark.parametrize("name", sorted(set(GET_LR_MAKERS) - {"ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"}))
def test_get_lr_by_hand_warns_as_torch(name: str) -> None:
    def run(T: Any) -> None:
        opt = T.optim.SGD([T.nn.Parameter(T.ones(1))], lr=0.1, momentum=0.9)
        sched = GET_LR_MAKERS[name](T.optim.lr_scheduler, opt)
        for _ in range(3):  # the schedulers' own calls (SequentialLR's children too) do not warn
            opt.step()
            sched.step()
        sched.get_lr()

    ours, theirs = _messages(ds, run), _messages(torch, run)
    assert ours == theirs == ["To get the last learning rate computed by the scheduler, please use `get_last_lr()`."]


def test_composite_schedules_and_swalr_warn_only_when_torch_does() -> None:
    def run(T: Any) -> None:
        S = T.optim.lr_scheduler
        opt = T.optim.SGD([T.nn.Parameter(T.ones(1))], lr=0.1)
        seq = S.SequentialLR(opt, [S.LambdaLR(opt, lambda e: 0.5), S.CyclicLR(opt, 0.01, 0.1, step_size_up=2)], [2])
        swa = T.optim.swa_utils.SWALR(T.optim.SGD([T.nn.Parameter(T.ones(1))], lr=0.1), 0.05, anneal_epochs=2)
        warm = S.CosineAnnealingWarmRestarts(T.optim.SGD([T.nn.Parameter(T.ones(1))], lr=0.1), 2)
        for i in range(4):
            opt.step()
            seq.step()
            swa.optimizer.step()
            swa.step()
            warm.optimizer.step()
            warm.step(i + 0.5)
        swa.get_lr()

    ours, theirs = _messages(ds, run), _messages(torch, run)
    assert ours == theirs
