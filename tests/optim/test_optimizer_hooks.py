"""Optimizer hooks (step, state_dict, load_state_dict; per optimizer and global) called as PyTorch
calls them: the same order, arguments and replacements, on built-ins and on subclasses."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _step_log(lib: Any, make: Any) -> list[Any]:
    glob = importlib.import_module(lib.__name__ + ".optim.optimizer")
    w = lib.nn.Parameter(lib.ones(2))
    opt = make(lib, w)
    log: list[Any] = []
    handles = [
        opt.register_step_pre_hook(lambda o, a, k: log.append(("pre", len(a), a[0] is o, sorted(k)))),
        opt.register_step_post_hook(lambda o, a, k: log.append(("post", len(a), sorted(k)))),
        glob.register_optimizer_step_pre_hook(lambda o, a, k: log.append("global pre")),
        glob.register_optimizer_step_post_hook(lambda o, a, k: log.append("global post")),
    ]
    try:
        w.grad = lib.ones(2)
        opt.step()
        opt.step(closure=None)
        handles[0].remove()
        with handles[1]:
            opt.step()
        opt.step()
    finally:
        for h in handles:
            h.remove()
    return log


def _plain(lib: Any) -> type:
    class Plain(lib.optim.Optimizer):  # written PyTorch's way
        def __init__(self, params: Any) -> None:
            super().__init__(params, {"lr": 0.1})

        def step(self, closure: Any = None) -> Any:
            return None

    return Plain


MAKERS = {
    "sgd": lambda lib, w: lib.optim.SGD([w], lr=0.1),
    "adam": lambda lib, w: lib.optim.Adam([w], lr=0.1),
    "subclass": lambda lib, w: _plain(lib)([w]),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_step_hooks_are_called_as_pytorchs(name: str) -> None:
    assert _step_log(ds, MAKERS[name]) == _step_log(torch, MAKERS[name])


def test_a_pre_hook_can_replace_the_arguments() -> None:
    for lib in (ds, torch):
        w = lib.nn.Parameter(lib.ones(2))
        opt = lib.optim.SGD([w], lr=0.1)
        opt.register_step_pre_hook(lambda o, a, k: ((a[0],), {"closure": lambda: 5.0}))
        assert opt.step() == 5.0
        opt.register_step_pre_hook(lambda o, a, k: 3)
        with pytest.raises(RuntimeError, match="tuple"):
            opt.step()


def test_a_subclass_calling_super_step_runs_the_hooks_once() -> None:
    class Mine(ds.optim.Adam):
        def step(self, closure: Any = None) -> Any:
            return super().step(closure)

    w = ds.nn.Parameter(ds.ones(2))
    opt = Mine([w], lr=0.1)
    log: list[str] = []
    opt.register_step_post_hook(lambda o, a, k: log.append("post"))
    w.grad = ds.ones(2)
    opt.step()
    assert log == ["post"]


def _dict_log(lib: Any) -> list[Any]:
    w = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([w], lr=0.1)
    log: list[Any] = []
    opt.register_state_dict_pre_hook(lambda o: log.append("pre 1"))
    opt.register_state_dict_pre_hook(lambda o: log.append("pre 0"), prepend=True)
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    opt.register_state_dict_post_hook(lambda o, sd: log.append(("post", "extra" in sd)))
    opt.register_load_state_dict_pre_hook(lambda o, sd: log.append(("load pre", "extra" in sd)))
    opt.register_load_state_dict_pre_hook(lambda o, sd: {k: v for k, v in sd.items() if k != "extra"}, prepend=True)
    opt.register_load_state_dict_post_hook(lambda o: log.append("load post"))
    handle = opt.register_load_state_dict_post_hook(lambda o: log.append("first"), prepend=True)
    saved = opt.state_dict()
    opt.load_state_dict(saved)
    handle.remove()
    opt.load_state_dict(saved)
    log.append("extra" in saved)  # the hooks edited a copy
    return log


def test_state_dict_hooks_are_called_as_pytorchs() -> None:
    assert _dict_log(ds) == _dict_log(torch)


def test_a_hook_must_be_callable() -> None:
    opt = ds.optim.SGD([ds.nn.Parameter(ds.ones(1))], lr=0.1)
    with pytest.raises(TypeError, match="callable"):
        opt.register_step_pre_hook(3)  # type: ignore[arg-type]
