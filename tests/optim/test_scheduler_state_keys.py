"""Scheduler state dicts with PyTorch's keys: ours match torch's, and a torch scheduler's state dict
loads into ours and continues the same schedule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _opt(lib: Any) -> Any:
    return lib.optim.SGD([lib.nn.Parameter(lib.ones(2))], lr=0.1, momentum=0.9)


BUILDS: dict[str, Callable[[Any, Any], Any]] = {
    "StepLR": lambda S, o: S.StepLR(o, 3),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, [2, 4]),
    "ConstantLR": lambda S, o: S.ConstantLR(o),
    "LinearLR": lambda S, o: S.LinearLR(o),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, 0.9),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, 5),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 3),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda s: 0.9**s),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda s: 0.9),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, 1.0, total_steps=12),
    "OneCycleLR3": lambda S, o: S.OneCycleLR(o, 1.0, total_steps=12, anneal_strategy="linear", three_phase=True),
    "CyclicLR": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=2),
    "ReduceLROnPlateau": lambda S, o: S.ReduceLROnPlateau(o, patience=0),
    "SequentialLR": lambda S, o: S.SequentialLR(o, [S.ConstantLR(o), S.ExponentialLR(o, 0.9)], [2]),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler([S.ConstantLR(o), S.ExponentialLR(o, 0.9)]),
    "SWALR": lambda S, o: _swa_utils(S).SWALR(o, 0.01, anneal_epochs=6, anneal_strategy="linear"),
}


def _swa_utils(lr_scheduler: Any) -> Any:
    """SWALR lives in swa_utils, beside lr_scheduler, in both libraries."""
    return torch.optim.swa_utils if lr_scheduler is torch.optim.lr_scheduler else ds.optim.swa_utils


def _step(name: str, sched: Any, opt: Any, i: int) -> None:
    opt.step()
    if name == "ReduceLROnPlateau":
        sched.step(1.0 if i % 2 else 2.0)
    else:
        sched.step()


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_state_dict_keys_are_torchs_and_a_torch_state_resumes_here(name: str) -> None:
    t_opt, d_opt = _opt(torch), _opt(ds)
    t_s, d_s = BUILDS[name](torch.optim.lr_scheduler, t_opt), BUILDS[name](ds.optim.lr_scheduler, d_opt)
    for i in range(4):
        _step(name, t_s, t_opt, i)
        _step(name, d_s, d_opt, i)
    theirs, ours = t_s.state_dict(), d_s.state_dict()
    assert set(ours) == set(theirs)
    # a fresh downslope scheduler takes torch's state (and the optimizer's lrs) and goes on as torch does
    d_opt2 = _opt(ds)
    d_s2 = BUILDS[name](ds.optim.lr_scheduler, d_opt2)
    for group, t_group in zip(d_opt2.param_groups, t_opt.param_groups):
        group.update({k: v for k, v in t_group.items() if k != "params"})
    d_s2.load_state_dict(copy.deepcopy(theirs))
    for i in range(4, 8):
        _step(name, t_s, t_opt, i)
        _step(name, d_s2, d_opt2, i)
        assert d_s2.get_last_lr() == pytest.approx(t_s.get_last_lr(), rel=1e-12)


def test_one_cycle_phases_and_plateau_keys_hold_torchs_values() -> None:
    t = torch.optim.lr_scheduler.OneCycleLR(_opt(torch), 1.0, total_steps=10, three_phase=True)
    d = ds.optim.lr_scheduler.OneCycleLR(_opt(ds), 1.0, total_steps=10, three_phase=True)
    assert d.state_dict()["_schedule_phases"] == t.state_dict()["_schedule_phases"]
    assert d.state_dict()["_anneal_func_type"] == "cos" and not d.state_dict()["_get_lr_called_within_step"]
    for min_lr in (0, [0.01]):
        tp = torch.optim.lr_scheduler.ReduceLROnPlateau(_opt(torch), mode="max", min_lr=min_lr)
        dp = ds.optim.lr_scheduler.ReduceLROnPlateau(_opt(ds), mode="max", min_lr=min_lr)
        for key in ("default_min_lr", "mode_worse", "min_lrs"):
            assert dp.state_dict()[key] == tp.state_dict()[key]


def test_an_older_one_cycle_state_still_loads() -> None:
    sched = ds.optim.lr_scheduler.OneCycleLR(_opt(ds), 1.0, total_steps=10)
    state = sched.state_dict()
    old = {k: v for k, v in state.items() if k not in ("_schedule_phases", "_anneal_func_type")}
    old["_phases"] = [
        [p[k] for k in ("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum")]
        for p in state["_schedule_phases"]
    ]
    old["anneal_strategy"] = "linear"
    sched.load_state_dict(old)
    assert sched.state_dict()["_schedule_phases"] == state["_schedule_phases"]
    assert sched._anneal_func_type == "linear"


def test_plateau_fills_min_lr_for_a_group_added_later_as_torch() -> None:
    opt = _opt(ds)
    sched = ds.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=0.05)
    opt.add_param_group({"params": [ds.nn.Parameter(ds.ones(1))], "lr": 0.2})
    sched.step(1.0)
    sched.step(2.0)
    assert sched.min_lrs == [0.05, 0.05] and [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.05])


def test_cyclic_scale_fn_object_state_round_trips() -> None:
    class Scale:
        def __init__(self) -> None:
            self.k = 0.5

        def __call__(self, x: float) -> float:
            return self.k

    sched = ds.optim.lr_scheduler.CyclicLR(_opt(ds), 0.01, 0.1, scale_fn=Scale())
    state = sched.state_dict()
    assert state["_scale_fn_custom"] == {"k": 0.5}
    state["_scale_fn_custom"] = {"k": 0.25}
    sched.load_state_dict(state)
    assert sched.scale_fn_custom.k == 0.25
    assert ds.optim.lr_scheduler.CyclicLR(_opt(ds), 0.01, 0.1).state_dict()["_scale_fn_custom"] is None


def _swalr_run(lib: Any, strategy: str, steps: int) -> tuple[Any, Any]:
    opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(1))], lr=0.1)
    sched = lib.optim.swa_utils.SWALR(opt, swa_lr=0.01, anneal_epochs=6, anneal_strategy=strategy)
    for _ in range(steps):
        opt.step()
        sched.step()
    return opt, sched


def _continue(opt: Any, sched: Any, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("direction", ["torch->downslope", "downslope->torch"])
def test_swalr_state_carries_the_anneal_strategy_across_libraries(direction: str) -> None:
    # the receiving scheduler is built with the default 'cos': the saved 'linear' must win, as torch -> torch
    src, dst = (torch, ds) if direction == "torch->downslope" else (ds, torch)
    saved_opt, saved = _swalr_run(src, "linear", 2)
    state = copy.deepcopy(saved.state_dict())
    assert state["_anneal_strategy"] == "linear" and "anneal_strategy" not in state
    opt, sched = _swalr_run(dst, "cos", 0)
    sched.load_state_dict(state)
    opt.param_groups[0]["lr"] = saved_opt.param_groups[0]["lr"]
    reference_opt, reference = _swalr_run(torch, "linear", 2)
    expected = _continue(reference_opt, reference, 4)
    assert _continue(opt, sched, 4) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx([0.055, 0.04, 0.025, 0.01], rel=1e-12)


def test_an_older_swalr_state_with_the_public_key_still_loads() -> None:
    _, saved = _swalr_run(ds, "linear", 2)
    old = {("anneal_strategy" if k == "_anneal_strategy" else k): v for k, v in saved.state_dict().items()}
    _, sched = _swalr_run(ds, "cos", 0)
    sched.load_state_dict(old)
    assert sched.anneal_strategy == "linear" and "anneal_strategy" not in sched.state_dict()
    with pytest.raises(ds.errors.ArgumentError, match="'cos' or 'linear', got 'cosine'"):
        sched.load_state_dict({**old, "anneal_strategy": "cosine"})
