"""Module hooks inside a checkpointed function run again in the recompute exactly where torch 2.13's do:
with ``use_reentrant=True`` and without early stop the whole function runs again (every hook); with
``use_reentrant=False`` and early stop (torch's default) none past the op that saved the forward's last
tensor for backward (its module's pre-hook runs, its forward hook does not)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES: dict[str, Callable[[Any, Any], Any]] = {
    "linear": lambda m, x: m[0](x),
    "linear tanh": lambda m, x: m[1](m[0](x)),
    "linear tanh linear": lambda m, x: m[2](m[1](m[0](x))),
    "linear tanh linear linear": lambda m, x: m[3](m[2](m[1](m[0](x)))),
    "tanh linear": lambda m, x: m[2](m[1](x)),
    "two branches added": lambda m, x: m[0](x) + m[1](x),
    "branches multiplied": lambda m, x: m[1](m[0](x)) * m[2](x),
    "nested sequential": lambda m, x: m[4](x),
}


def _events(lib: Any, name: str, reentrant: bool, early: bool | None, argument: bool = True) -> list[str]:
    lib.manual_seed(0)
    nn = lib.nn
    inner = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    mods = [nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3), nn.Linear(3, 3), inner]
    events: list[str] = []
    for k, m in enumerate([*mods, *inner]):
        m.register_forward_pre_hook(lambda mod, a, k=k: events.append(f"pre{k}"))
        m.register_forward_hook(lambda mod, a, o, k=k: events.append(f"fwd{k}"))
    x = lib.ones(2, 3, requires_grad=True)
    cp = lib.utils.checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if early is None:
            y = cp.checkpoint(lambda t: CASES[name](mods, t), x, use_reentrant=reentrant, early_stop=argument)
        else:
            with cp.set_checkpoint_early_stop(early):
                y = cp.checkpoint(lambda t: CASES[name](mods, t), x, use_reentrant=reentrant, early_stop=argument)
    events.append("|")
    y.sum().backward()
    return events


@pytest.mark.parametrize("early", [None, True, False])
@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_hooks_run_again_as_torchs(name: str, reentrant: bool, early: bool | None) -> None:
    assert _events(ds, name, reentrant, early) == _events(torch, name, reentrant, early)


@pytest.mark.parametrize("name", ["linear tanh linear", "nested sequential"])
def test_the_early_stop_argument_and_the_switch_over_it_as_torchs(name: str) -> None:
    for early, argument in [(None, False), (True, False), (False, True)]:
        assert _events(ds, name, False, early, argument) == _events(torch, name, False, early, argument)


def test_checkpoint_sequential_hooks_as_torchs() -> None:
    out = []
    for lib in (torch, ds):
        lib.manual_seed(0)
        seq = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.ReLU(), lib.nn.Linear(3, 3), lib.nn.Tanh())
        events: list[str] = []
        for k, m in enumerate(seq):
            m.register_forward_hook(lambda mod, a, o, k=k, events=events: events.append(str(k)))
        y = lib.utils.checkpoint.checkpoint_sequential(seq, 2, lib.ones(2, 3, requires_grad=True), use_reentrant=False)
        events.append("|")
        y.sum().backward()
        out.append(events)
    assert out[1] == out[0]
