"""The in-memory state_dict in PyTorch's types: tuple hyperparameters (betas, etas, step_sizes) stay tuples
and MultiStepLR's milestones a Counter, so checks written against torch hold and a downslope scheduler
state loads into torch's; ds.save / ds.load (no pickle) round-trips both."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_OPTIMIZERS = [
    ("Adam", {"betas": (0.8, 0.99)}),
    ("AdamW", {}),
    ("NAdam", {}),
    ("RAdam", {}),
    ("Adamax", {}),
    ("Rprop", {"etas": (0.4, 1.3), "step_sizes": (1e-5, 10.0)}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
]


@pytest.mark.parametrize(("name", "kw"), _OPTIMIZERS, ids=[n for n, _ in _OPTIMIZERS])
def test_param_group_values_have_torchs_types(name: str, kw: dict[str, Any]) -> None:
    ours = getattr(ds.optim, name)([ds.zeros(2, requires_grad=True)], **kw).state_dict()["param_groups"][0]
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw).state_dict()["param_groups"][0]
    tuples = [key for key, value in theirs.items() if isinstance(value, tuple)]
    assert tuples or name in ("SGD",)
    for key in tuples:
        assert type(ours[key]) is tuple and ours[key] == theirs[key], (key, ours[key], theirs[key])


def test_adam_betas_compare_equal_to_a_tuple() -> None:
    opt = ds.optim.Adam([ds.zeros(2, requires_grad=True)], betas=(0.9, 0.999))
    assert opt.state_dict()["param_groups"][0]["betas"] == (0.9, 0.999)


def _scheduler(lib: Any) -> tuple[Any, Any]:
    opt = lib.optim.SGD([lib.zeros(2, requires_grad=True)], lr=1.0)
    return opt, lib.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)


def test_multisteplr_milestones_is_a_counter_that_torch_loads() -> None:
    opt, sched = _scheduler(ds)
    for _ in range(3):
        opt.step()
        sched.step()
    saved = sched.state_dict()
    assert isinstance(saved["milestones"], Counter)
    assert saved["milestones"] == Counter({2: 1, 4: 2})
    topt, tsched = _scheduler(torch)
    topt.param_groups[0]["lr"] = opt.param_groups[0]["lr"]  # the optimizer's own state: not the scheduler's
    tsched.load_state_dict(saved)  # once raised IndexError on a list of milestones
    for _ in range(3):
        opt.step()
        sched.step()
        topt.step()
        tsched.step()
        assert sched.get_last_lr() == tsched.get_last_lr()


def test_saved_and_loaded_without_pickle(tmp_path: Path) -> None:
    w = ds.tensor([1.0, -2.0], requires_grad=True)
    opt = ds.optim.Rprop([w], etas=(0.4, 1.3))
    sched = ds.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        sched.step()
    ds.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "ck.ds")
    back = ds.load(tmp_path / "ck.ds")
    assert back["opt"]["param_groups"][0]["etas"] == (0.4, 1.3)
    w2 = ds.tensor([0.0, 0.0], requires_grad=True)
    opt2 = ds.optim.Rprop([w2], etas=(0.4, 1.3))
    sched2 = ds.optim.lr_scheduler.MultiStepLR(opt2, milestones=[7], gamma=0.5)
    opt2.load_state_dict(back["opt"])
    sched2.load_state_dict(back["sched"])
    assert sched2.milestones == Counter({1: 1, 3: 1})
    w2.data = w.detach().clone()
    for _ in range(3):
        for p, o, s in ((w, opt, sched), (w2, opt2, sched2)):
            o.zero_grad()
            (p * p).sum().backward()
            o.step()
            s.step()
    np.testing.assert_array_equal(w.detach().numpy(), w2.detach().numpy())
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_a_list_of_milestones_from_an_older_checkpoint_still_loads() -> None:
    opt, sched = _scheduler(ds)
    saved = sched.state_dict()
    saved["milestones"] = [2, 4, 4]
    sched.load_state_dict(saved)
    assert sched.milestones == Counter({2: 1, 4: 2})
