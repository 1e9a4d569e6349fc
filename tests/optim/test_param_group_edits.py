"""Editing ``opt.param_groups`` after the optimizer is built (a group's ``params`` list appended to,
replaced, popped; a group dict appended or removed) changes what the next step updates, as in PyTorch:
an added parameter starts afresh, a removed one is no longer stepped, the others keep their state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host

torch = pytest.importorskip("torch")


def _edit(lib: Any, opt: Any, a: Any, b: Any, c: Any, mode: str) -> None:
    groups = opt.param_groups
    if mode == "append":
        groups[0]["params"].append(c)
    elif mode == "extend":
        groups[0]["params"].extend([c])
    elif mode == "iadd":
        groups[0]["params"] += [c]
    elif mode == "insert":
        groups[0]["params"].insert(0, c)
    elif mode == "replace_list":
        groups[0]["params"] = [a, c]
    elif mode == "setitem":
        groups[0]["params"][1] = c
    elif mode == "pop":
        groups[0]["params"].pop()
    elif mode == "del":
        del groups[0]["params"][0]
    elif mode == "group_dict_append":
        groups.append(dict(groups[0], params=[c], lr=0.05))
    elif mode == "group_dict_replace":
        groups[0] = dict(groups[0], lr=0.01)
    elif mode == "group_pop":
        groups.append(dict(groups[0], params=[c]))
        groups[0]["params"].pop()
        groups.pop(0)


def _run(lib: Any, name: str, kwargs: dict[str, Any], mode: str) -> list[np.ndarray]:
    a = lib.nn.Parameter(lib.tensor([1.0, -2.0], dtype=lib.float64))
    b = lib.nn.Parameter(lib.tensor([[0.5, 1.5, -1.0]], dtype=lib.float64))
    c = lib.nn.Parameter(lib.tensor([2.0], dtype=lib.float64))
    opt = getattr(lib.optim, name)([a, b], **kwargs)

    def step() -> None:
        opt.zero_grad()
        ((a**2).sum() + (b**3).sum() + (c**4).sum() + (a.sum() * c.sum())).backward()
        opt.step()

    for i in range(5):
        if i == 2:
            _edit(lib, opt, a, b, c, mode)
        step()
    out = [np.asarray(to_host(t.detach().numpy()) if lib is ds else t.detach().numpy(), np.float64) for t in (a, b, c)]
    listed = {id(p) for g in opt.param_groups for p in g["params"]}
    # the state of each parameter still in a group (PyTorch's also keeps a removed one's, which
    # downslope's state, made from the groups, does not show)
    for t in (t for t in (a, b, c) if id(t) in listed):
        st = opt.state[t] if t in opt.state else {}
        out += [np.asarray(float(v) if v.ndim == 0 else v.detach().numpy(), np.float64) for _, v in sorted(st.items())]
    return out


_OPTS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("Adam", {"lr": 0.1}),
    ("NAdam", {"lr": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
    ("Adafactor", {"lr": 0.1}),
]
_MODES = [
    "append",
    "extend",
    "iadd",
    "insert",
    "replace_list",
    "setitem",
    "pop",
    "del",
    "group_dict_append",
    "group_dict_replace",
    "group_pop",
]


@pytest.mark.parametrize("name, kwargs", _OPTS)
@pytest.mark.parametrize("mode", _MODES)
def test_editing_param_groups_changes_what_the_next_step_updates_as_in_torch(name, kwargs, mode):  # type: ignore[no-untyped-def]
    if not hasattr(torch.optim, name):
        pytest.skip(f"this torch has no {name}")
    ours, theirs = _run(ds, name, kwargs, mode), _run(torch, name, kwargs, mode)
    assert len(ours) == len(theirs)
    for x, y in zip(ours, theirs):
        np.testing.assert_allclose(x, y, rtol=1e-6 if name == "NAdam" else 1e-12, atol=1e-15)


def test_a_step_after_an_edit_keeps_the_buffers_of_the_model():  # type: ignore[no-untyped-def]
    # the parameters that stay keep following the optimizer's buffers (a model holding them sees each step)
    m = ds.nn.Linear(3, 2)
    extra = ds.nn.Parameter(ds.ones(4))
    opt = ds.optim.Adam(m.parameters(), lr=0.1)
    opt.param_groups[0]["params"].append(extra)
    for _ in range(2):
        opt.zero_grad()
        (m(ds.ones(1, 3)).sum() + extra.sum()).backward()
        before = m.weight.detach().numpy().copy()
        opt.step()
        assert not np.allclose(m.weight.detach().numpy(), before)
    assert sorted(opt.state_dict()["state"]) == [0, 1, 2]


def test_lbfgs_refuses_an_edited_group_instead_of_ignoring_it():  # type: ignore[no-untyped-def]
    w, c = ds.nn.Parameter(ds.ones(2)), ds.nn.Parameter(ds.ones(1))
    opt = ds.optim.LBFGS([w])
    opt.param_groups[0]["params"].append(c)
    with pytest.raises(ds.errors.StateError, match="LBFGS.*build a new optimizer"):
        opt.step(lambda: (w * w).sum() + (c * c).sum())


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_state_dict_and_state_after_an_edit_follow_the_groups_as_torchs(name):  # type: ignore[no-untyped-def]
    def run(lib: Any) -> tuple[list[int], list[list[str]]]:
        a, b = lib.nn.Parameter(lib.ones(2)), lib.nn.Parameter(lib.ones(3))
        opt = getattr(lib.optim, name)([a], lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
        (a**2).sum().backward()
        opt.step()
        opt.param_groups.append(dict(opt.param_groups[0], params=[b]))
        saved = opt.state_dict()  # before any step: the added group is already counted
        return [len(g["params"]) for g in saved["param_groups"]], [sorted(e) for e in saved["state"].values()]

    assert run(ds) == run(torch)
