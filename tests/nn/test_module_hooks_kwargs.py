"""Forward hooks with_kwargs / always_call (src/downslope/nn/module/base.py, hooks.py): the same
calls made on a torch module and ours log the same events, in the same order."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
LIBS = [ds, torch]


def _scale(lib: Any) -> Any:
    class Scale(lib.nn.Module):
        def forward(self, x: Any, scale: float = 1.0, fail: bool = False) -> Any:
            if fail:
                raise ValueError("forward failed")
            return x * scale

    return Scale()


def _value(v: Any) -> Any:
    if isinstance(v, (ds.Tensor, torch.Tensor)):
        return np.asarray(v.detach().cpu().numpy()).tolist()
    if isinstance(v, tuple):
        return tuple(_value(a) for a in v)
    if isinstance(v, dict):
        return {k: _value(a) for k, a in sorted(v.items())}
    return v


def _kwargs_run(lib: Any) -> list[Any]:
    log: list[Any] = []
    m = _scale(lib)

    def pre_plain(mod: Any, args: Any) -> Any:
        log.append(("pre_plain", _value(args)))
        return (args[0] + 1,)

    def pre_kwargs(mod: Any, args: Any, kwargs: Any) -> Any:
        log.append(("pre_kwargs", _value(args), _value(kwargs)))
        return args, {**kwargs, "scale": kwargs.get("scale", 1.0) * 10}

    def pre_first(mod: Any, args: Any, kwargs: Any) -> None:
        log.append(("pre_first", _value(args), _value(kwargs)))

    def fwd_kwargs(mod: Any, args: Any, kwargs: Any, out: Any) -> Any:
        log.append(("fwd_kwargs", _value(args), _value(kwargs), _value(out)))
        return out * 2

    def fwd_plain(mod: Any, args: Any, out: Any) -> None:
        log.append(("fwd_plain", _value(args), _value(out)))

    def global_fwd(mod: Any, args: Any, kwargs: Any, out: Any) -> None:
        log.append(("global_fwd", _value(kwargs), _value(out)))

    handles = [
        m.register_forward_pre_hook(pre_plain),
        m.register_forward_pre_hook(pre_kwargs, with_kwargs=True),
        m.register_forward_pre_hook(pre_first, prepend=True, with_kwargs=True),
        m.register_forward_hook(fwd_plain),
        m.register_forward_hook(fwd_kwargs, prepend=True, with_kwargs=True),
    ]
    x = lib.tensor([1.0, 2.0], dtype=lib.float64)
    with lib.nn.modules.module.register_module_forward_hook(global_fwd, with_kwargs=True):
        log.append(("out", _value(m(x, scale=3.0))))
        log.append(("out", _value(m(x))))
    log.append(("tables", len(m._forward_pre_hooks_with_kwargs), len(m._forward_hooks_with_kwargs)))
    for h in handles:
        h.remove()
    log.append(("tables", len(m._forward_pre_hooks_with_kwargs), len(m._forward_hooks_with_kwargs)))
    log.append(("out", _value(m(x, scale=3.0))))
    return log


def test_hooks_with_kwargs_see_and_replace_the_keyword_arguments_as_torch() -> None:
    ours, theirs = (_kwargs_run(lib) for lib in LIBS)
    assert ours == theirs
    assert ("out", [120.0, 180.0]) in ours  # ((x + 1) * 3 * 10) * 2


def test_a_pre_hook_with_kwargs_must_return_args_and_kwargs() -> None:
    for lib in LIBS:
        m = _scale(lib)
        m.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)
        with pytest.raises(
            RuntimeError, match=r"forward pre-hook must return None or a tuple of \(new_args, new_kwargs\)"
        ):
            m(lib.ones(2), scale=2.0)


def _always_run(lib: Any, fail_in: str) -> list[Any]:
    log: list[Any] = []
    m = _scale(lib)

    def hook(name: str, with_kwargs: bool = False, raises: bool = False) -> Any:
        def record(mod: Any, args: Any, *rest: Any) -> None:
            log.append((name, len(rest), _value(rest[-1])))
            if raises:
                raise KeyError(f"{name} failed")

        return record

    m.register_forward_hook(hook("always_a"), always_call=True)
    m.register_forward_hook(hook("plain"))
    if fail_in == "hook":
        m.register_forward_hook(hook("raising", raises=True))
    m.register_forward_hook(hook("always_kwargs", with_kwargs=True), always_call=True, with_kwargs=True)
    m.register_forward_hook(hook("always_raising", raises=True), always_call=True)
    glob = lib.nn.modules.module.register_module_forward_hook(hook("global_always"), always_call=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                m(lib.ones(2), fail=fail_in == "forward")
            except (ValueError, KeyError) as e:
                log.append(("raised", type(e).__name__, str(e)))
        log.append(("warnings", sorted(str(w.message) for w in caught)))
    finally:
        glob.remove()
    return log


@pytest.mark.parametrize("fail_in", ["forward", "hook", "nowhere"])
def test_always_call_hooks_run_after_an_error_as_torch(fail_in: str) -> None:
    ours, theirs = (_always_run(lib, fail_in) for lib in LIBS)
    assert ours == theirs
    if fail_in == "forward":  # the forward gave no output: the always_call hooks see None
        assert ("always_a", 1, None) in ours and not any(event[0] == "plain" for event in ours)


def test_handles_empty_the_flag_tables_and_the_plain_call_path_is_untouched() -> None:
    layer = ds.nn.Linear(2, 2)
    handle = layer.register_forward_hook(lambda m, a, kw, o: None, with_kwargs=True, always_call=True)
    assert list(layer._forward_hooks_with_kwargs) == list(layer._forward_hooks_always_called) == [handle.id]
    handle.remove()
    assert not layer._forward_hooks_with_kwargs and not layer._forward_hooks_always_called
    assert not any(layer.__dict__["_hooks"].values())
