"""LambdaLR and MultiplicativeLR after ``add_param_group``: the new group has no lr_lambda. PyTorch fails
in a zip; downslope says so instead of leaving the new group's lr unscheduled."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import downslope as ds
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")


def _setup(L: Any, name: str) -> tuple[Any, Any]:
    w, b = L.nn.Parameter(L.ones(1)), L.nn.Parameter(L.ones(1))
    opt = L.optim.SGD([w], lr=1.0)
    sched = getattr(L.optim.lr_scheduler, name)(opt, lambda epoch: 0.5)
    opt.add_param_group({"params": [b], "lr": 2.0})
    opt.step()
    return opt, sched


@pytest.mark.parametrize("name", ["LambdaLR", "MultiplicativeLR"])
def test_lambda_scheduler_refuses_a_group_added_after_it(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref_opt, ref_sched = _setup(torch, name)
        with pytest.raises(ValueError):
            ref_sched.step()
        opt, sched = _setup(ds, name)
        with pytest.raises(
            ArgumentError, match=rf"{name}.step: the optimizer has 2 param groups but the scheduler has 1"
        ):
            sched.step()
    # refused before any lr was written, as in PyTorch
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]


def _per_group_scheduler(L: Any, name: str, opt: Any) -> Any:
    S = L.optim.lr_scheduler
    return {
        "CyclicLR": lambda: S.CyclicLR(opt, 0.01, 0.1, 5),
        "OneCycleLR": lambda: S.OneCycleLR(opt, 0.1, total_steps=40),
        "CosineAnnealingWarmRestarts": lambda: S.CosineAnnealingWarmRestarts(opt, 3),
        "SequentialLR": lambda: S.SequentialLR(opt, [S.ConstantLR(opt), S.ExponentialLR(opt, 0.9)], milestones=[2]),
    }[name]()


def _run_after_added_group(L: Any, name: str) -> tuple[Any, list[float]]:
    a, b = L.nn.Parameter(L.zeros(2)), L.nn.Parameter(L.zeros(2))
    opt = L.optim.SGD([a], lr=0.1, momentum=0.9)
    sched = _per_group_scheduler(L, name, opt)
    opt.step()
    sched.step()
    opt.add_param_group({"params": [b], "lr": 0.03})
    for _ in range(3):
        opt.step()
        try:
            sched.step()
        except Exception as e:  # noqa: BLE001  (compared with torch's below)
            return e, [float(g["lr"]) for g in opt.param_groups]
    return None, [float(g["lr"]) for g in opt.param_groups]


@pytest.mark.parametrize("name", ["CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts", "SequentialLR"])
def test_a_scheduler_with_per_group_state_refuses_a_group_added_after_it_as_torch(name: str) -> None:
    # PyTorch fails (a strict zip, or OneCycleLR's missing 'initial_lr'); downslope used to leave the new
    # group's lr alone (CyclicLR) and keep stepping
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs, their_lrs = _run_after_added_group(torch, name)
        ours, our_lrs = _run_after_added_group(ds, name)
    assert isinstance(theirs, (ValueError, KeyError))
    assert isinstance(ours, ArgumentError)
    assert "the optimizer has 2 param groups but" in str(ours) and "schedules 1" in str(ours)
    assert our_lrs[1] == their_lrs[1] == 0.03  # the added group was never scheduled


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineAnnealingLR"])
def test_a_chainable_scheduler_keeps_scheduling_an_added_group_as_torch(name: str) -> None:
    def run(L: Any) -> list[float]:
        a, b = L.nn.Parameter(L.zeros(2)), L.nn.Parameter(L.zeros(2))
        opt = L.optim.SGD([a], lr=0.1)
        S = L.optim.lr_scheduler
        sched = {"StepLR": lambda: S.StepLR(opt, 2), "ExponentialLR": lambda: S.ExponentialLR(opt, 0.9),
                 "CosineAnnealingLR": lambda: S.CosineAnnealingLR(opt, 10)}[name]()  # fmt: skip
        opt.step()
        sched.step()
        opt.add_param_group({"params": [b], "lr": 0.03})
        for _ in range(4):
            opt.step()
            sched.step()
        return [float(g["lr"]) for g in opt.param_groups]

    assert run(ds) == pytest.approx(run(torch), rel=1e-12)
