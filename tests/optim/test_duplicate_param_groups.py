"""A parameter given to an optimizer twice, against torch 2.13: twice in one group warns (UserWarning,
torch's words) and the parameter is stepped twice per step; in two groups (at construction or through
add_param_group) is a ValueError whose message starts with torch's."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

DUPLICATE_WARNING = "optimizer contains a parameter group with duplicate parameters"
ACROSS_GROUPS = "some parameters appear in more than one parameter group"

CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),  # torch starts the buffer from the gradient at each listing
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "nesterov": False, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("Rprop", {"lr": 0.01}),
    ("ASGD", {"lr": 0.01}),
    ("Adagrad", {"lr": 0.1}),
]


def _warnings_of(make: Any) -> tuple[Any, list[tuple[type, str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make()
    return made, [(w.category, str(w.message)) for w in caught if DUPLICATE_WARNING in str(w.message)]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_twice_in_one_group_warns_and_steps_twice_as_torch(name: str, options: dict[str, Any]) -> None:
    start = np.array([1.0, -2.0, 0.5], np.float64)

    def run(lib: Any) -> tuple[np.ndarray, list[tuple[type, str]], int]:
        p = lib.nn.Parameter(lib.tensor(start, dtype=lib.float64))
        opt, caught = _warnings_of(lambda: getattr(lib.optim, name)([p, p], **options))
        for step in range(3):
            p.grad = lib.tensor(start * (step + 1), dtype=lib.float64)
            opt.step()
        return p.detach().numpy().copy(), caught, len(opt.param_groups[0]["params"])

    ours, ours_warned, ours_count = run(ds)
    ref, ref_warned, ref_count = run(torch)
    assert ours_warned == ref_warned and len(ref_warned) == 1
    assert ours_warned[0][0] is UserWarning
    assert ours_count == ref_count == 2
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)
    assert not np.allclose(ours, start)


def _raises_as_torch(make_ours: Any, make_ref: Any) -> None:
    with pytest.raises(ValueError, match=ACROSS_GROUPS) as ref_error:
        make_ref()
    assert str(ref_error.value) == ACROSS_GROUPS
    with pytest.raises(ValueError, match=ACROSS_GROUPS) as error:
        make_ours()
    assert "param group 0" in str(error.value)  # where


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_one_parameter_in_two_groups_raises_value_error_as_torch(name: str) -> None:
    def groups(lib: Any) -> list[dict[str, Any]]:
        p = lib.nn.Parameter(lib.ones(2))
        q = lib.nn.Parameter(lib.ones(2))
        return [{"params": [p, q]}, {"params": [q], "lr": 0.5}]

    _raises_as_torch(
        lambda: getattr(ds.optim, name)(groups(ds), lr=0.1), lambda: getattr(torch.optim, name)(groups(torch), lr=0.1)
    )


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_add_param_group_with_a_parameter_already_held_raises_as_torch(name: str) -> None:
    def make(lib: Any) -> Any:
        p = lib.nn.Parameter(lib.ones(2))
        opt = getattr(lib.optim, name)([p], lr=0.1)
        return lambda: opt.add_param_group({"params": [lib.nn.Parameter(lib.ones(1)), p]})

    _raises_as_torch(make(ds), make(torch))


def test_add_param_group_with_a_duplicate_warns_as_torch() -> None:
    def run(lib: Any) -> tuple[list[tuple[type, str]], int]:
        opt = lib.optim.SGD([lib.nn.Parameter(lib.ones(2))], lr=0.1)
        q = lib.nn.Parameter(lib.ones(2))
        _, caught = _warnings_of(lambda: opt.add_param_group({"params": [q, q]}))
        return caught, len(opt.param_groups[1]["params"])

    assert run(ds) == run(torch)
    assert len(run(ds)[0]) == 1


def test_named_parameters_twice_warn_as_torch() -> None:
    def run(lib: Any) -> tuple[list[tuple[type, str]], list[str]]:
        p = lib.nn.Parameter(lib.ones(2))
        opt, caught = _warnings_of(lambda: lib.optim.SGD([("w", p), ("w", p)], lr=0.1))
        return caught, opt.param_groups[0]["param_names"]

    assert run(ds) == run(torch)


@pytest.mark.parametrize("flat", [None, False])
def test_sgd_momentum_buffer_of_a_repeated_parameter_starts_as_torchs(flat: bool | None) -> None:
    """At the first step torch reads every listing's buffer before its loop, finds none, and starts each
    listing's from the gradient: the parameter moves by 2 lr g, and the buffer left is g (not 1.9 g)."""

    def run(lib: Any) -> list[float]:
        w = lib.nn.Parameter(lib.tensor([1.0, -2.0], dtype=lib.float64))
        b = lib.nn.Parameter(lib.tensor([0.5], dtype=lib.float64))
        extra = {} if flat is None or lib is torch else {"flat": flat}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            opt = lib.optim.SGD([w, b, w], lr=0.1, momentum=0.9, **extra)
        for _ in range(3):
            opt.zero_grad()
            ((w**2).sum() * b).backward()
            opt.step()
        return w.tolist() + b.tolist() + opt.state[w]["momentum_buffer"].tolist()

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12, atol=1e-14)
