"""Assigning into a built-in optimizer's ``state`` reaches its flat buffers, as in PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, StateError

torch = pytest.importorskip("torch")

W0 = np.arange(6.0).reshape(2, 3) / 10
X = np.linspace(-1, 1, 12).reshape(4, 3)


def _run(lib: Any, make: Callable[[Any, list[Any]], Any], edit: Callable[[Any, Any, Any], None]) -> list[np.ndarray]:
    """Two steps, ``edit(lib, opt, model)``, two more steps; the weights after each step."""
    m = lib.nn.Linear(3, 2).double()
    with lib.no_grad():
        m.weight.copy_(lib.tensor(W0, dtype=lib.float64))
        m.bias.fill_(0.1)
    x = lib.tensor(X, dtype=lib.float64)
    opt = make(lib, list(m.parameters()))
    out = []
    for i in range(4):
        if i == 2:
            edit(lib, opt, m)
        opt.zero_grad()
        (m(x) ** 2).sum().backward()
        opt.step()
        out.append(m.weight.detach().numpy().copy())
    return out


def _sgd(lib: Any, params: list[Any]) -> Any:
    return lib.optim.SGD(params, lr=0.1, momentum=0.9)


def _adam(lib: Any, params: list[Any]) -> Any:
    return lib.optim.Adam(params, lr=0.1)


def _assign_zero_buffer(key: str) -> Callable[[Any, Any, Any], None]:
    def edit(lib: Any, opt: Any, m: Any) -> None:
        opt.state[m.weight][key] = lib.zeros(2, 3, dtype=lib.float64)

    return edit


def _reset_dict(lib: Any, opt: Any, m: Any) -> None:
    opt.state[m.weight] = {}


def _delete(lib: Any, opt: Any, m: Any) -> None:
    del opt.state[m.weight]


def _clear(lib: Any, opt: Any, m: Any) -> None:
    opt.state.clear()


def _step_zero(lib: Any, opt: Any, m: Any) -> None:
    opt.state[m.weight]["step"] = lib.tensor(0.0)


def _full_state(lib: Any, opt: Any, m: Any) -> None:
    opt.state[m.bias] = {
        "step": lib.tensor(7.0),
        "exp_avg": lib.full((2,), 0.5, dtype=lib.float64),
        "exp_avg_sq": lib.full((2,), 2.0, dtype=lib.float64),
    }


CASES = [
    ("sgd-buffer", _sgd, _assign_zero_buffer("momentum_buffer")),
    ("sgd-reset", _sgd, _reset_dict),
    ("sgd-del", _sgd, _delete),
    ("sgd-clear", _sgd, _clear),
    ("adam-exp_avg", _adam, _assign_zero_buffer("exp_avg")),
    ("adam-exp_avg_sq", _adam, _assign_zero_buffer("exp_avg_sq")),
    ("adam-reset", _adam, _reset_dict),
    ("adam-del", _adam, _delete),
    ("adam-clear", _adam, _clear),
    ("adam-step", _adam, _step_zero),
    ("adam-full", _adam, _full_state),
]


@pytest.mark.parametrize(("make", "edit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trajectory_matches_torch(make: Any, edit: Any) -> None:
    ours, theirs = _run(ds, make, edit), _run(torch, make, edit)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_reset_parameter_is_fresh() -> None:
    w = ds.ones(3, requires_grad=True)
    opt = ds.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    opt.state[w] = {}
    assert len(opt.state[w]) == 0 and "step" not in opt.state[w]  # as PyTorch's: an empty entry
    assert opt.state_dict()["state"] == {0: {}}  # PyTorch saves the (empty) entry it keeps
    del opt.state[w]
    assert opt.state_dict()["state"] == {}  # as PyTorch's: no state before a step
    (w * w).sum().backward()
    opt.step()
    assert opt.state[w]["step"].item() == 1


def test_entry_view_follows_assignment() -> None:
    w = ds.ones(3, requires_grad=True)
    opt = ds.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    st = opt.state[w]
    st["exp_avg"] = ds.tensor([1.0, 2.0, 3.0])
    st["step"] = 5
    assert st["exp_avg"].tolist() == [1.0, 2.0, 3.0] and st["step"].item() == 5
    assert opt.state[w]["exp_avg"].tolist() == [1.0, 2.0, 3.0]


def test_sgd_buffer_before_first_step_is_used() -> None:
    def run(lib: Any) -> list[float]:
        w = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        opt = lib.optim.SGD([w], lr=0.1, momentum=0.5)
        opt.state[w]["momentum_buffer"] = lib.tensor([3.0, 4.0], dtype=lib.float64)
        (w * w).sum().backward()
        opt.step()
        return list(w.detach().tolist())

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)


def test_bad_assignments_raise() -> None:
    w = ds.ones(2, 3, requires_grad=True)
    opt = ds.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    with pytest.raises(StateError, match="shape"):
        opt.state[w]["exp_avg"] = ds.zeros(3)
    with pytest.raises(StateError, match="floating"):
        opt.state[w]["exp_avg"] = ds.zeros(2, 3, dtype=ds.int64)
    opt.state[w]["foo"] = ds.zeros(2, 3)  # a key of the user's: stored beside the buffers, as PyTorch stores it
    with pytest.raises(StateError, match="delete"):
        del opt.state[w]["exp_avg"]
    with pytest.raises(ArgumentError, match="not a parameter"):
        opt.state[ds.ones(2)] = {}
    with pytest.raises(ArgumentError, match="whole number"):
        opt.state[w]["step"] = -1
    sgd = ds.optim.SGD([w], lr=0.1, momentum=0.9)
    sgd.state[w]["step"] = 0  # SGD keeps no step count: a key of the user's, as in PyTorch
    assert sgd.state[w]["step"] == 0


def test_nadam_reset_one_of_two() -> None:
    def run(lib: Any) -> list[float]:
        a = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([0.5], dtype=lib.float64, requires_grad=True)
        opt = lib.optim.NAdam([a, b], lr=0.1)
        for i in range(4):
            if i == 2:
                opt.state[a] = {}
            opt.zero_grad()
            ((a * a).sum() + (b * b * b).sum()).backward()
            opt.step()
        return [*a.detach().tolist(), *b.detach().tolist()]

    # downslope's NAdam is ~1e-9 from PyTorch's on this run without a reset too (rounding)
    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-7)


def test_state_copies_are_plain_dicts() -> None:
    import copy

    w = ds.ones(2, requires_grad=True)
    opt = ds.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    snap = copy.deepcopy(opt.state)
    assert type(snap) is dict and type(snap[next(iter(snap))]) is dict
