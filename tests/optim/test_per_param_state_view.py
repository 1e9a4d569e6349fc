"""Adafactor, Muon and SparseAdam's ``opt.state`` behaves as the other built-ins' (and PyTorch's):
assignments reach the state the next step uses, a user's keys are stored, saved and loaded, and the
whole state or one parameter's can be reset."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")

NAMES = ["Adafactor", "Muon", "SparseAdam"]
_RNG = np.random.default_rng(5)
_VALUES = [_RNG.standard_normal((4, 3)), _RNG.standard_normal(3)]


def _make(lib: Any, name: str) -> tuple[list[Any], Any]:
    values = _VALUES[:1] if name == "Muon" else _VALUES  # Muon takes matrices only
    params = [lib.nn.Parameter(lib.tensor(v.copy(), dtype=lib.float64)) for v in values]
    return params, getattr(lib.optim, name)(params, lr=0.05)


def _step(lib: Any, name: str, params: list[Any], opt: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for p in params:
        g = rng.standard_normal(tuple(p.shape))
        if g.ndim == 2:
            g[::2] = 0
        t = lib.tensor(g, dtype=lib.float64)
        p.grad = t.to_sparse(1) if (lib is torch and name == "SparseAdam") else t
    opt.step()


def _run(lib: Any, name: str, edit: Callable[[Any, Any, list[Any], Any], None]) -> list[np.ndarray]:
    params, opt = _make(lib, name)
    for i in range(5):
        if i == 2:
            edit(lib, name, params, opt)
        _step(lib, name, params, opt, seed=i)
    return [p.detach().numpy().copy() for p in params]


def _same(edit: Callable[[Any, Any, list[Any], Any], None], name: str) -> None:
    for a, b in zip(_run(ds, name, edit), _run(torch, name, edit)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _set_buffers(lib: Any, name: str, params: list[Any], opt: Any) -> None:
    for p in params:
        for key, value in list(opt.state[p].items()):
            if isinstance(value, lib.Tensor) and value.ndim:
                opt.state[p][key] = lib.full(tuple(value.shape), 0.25, dtype=lib.float64)


def _set_step(lib: Any, name: str, params: list[Any], opt: Any) -> None:
    for p in params:
        if "step" in opt.state[p]:
            opt.state[p]["step"] = lib.tensor(0.0) if name == "Adafactor" else 0


def _reset_all(lib: Any, name: str, params: list[Any], opt: Any) -> None:
    opt.state = defaultdict(dict)
    assert len(opt.state) == 0


def _reset_one(lib: Any, name: str, params: list[Any], opt: Any) -> None:
    opt.state[params[0]] = {}
    assert len(opt.state[params[0]]) == 0
    if len(params) > 1:
        del opt.state[params[1]]


def _clear(lib: Any, name: str, params: list[Any], opt: Any) -> None:
    opt.state.clear()


def _give_whole_entries(lib: Any, name: str, params: list[Any], opt: Any) -> None:
    entries = {p: {k: (v * 0.5 if isinstance(v, lib.Tensor) and v.ndim else v) for k, v in opt.state[p].items()}
               for p in params}  # fmt: skip
    opt.state = entries


EDITS = [_set_buffers, _set_step, _reset_all, _reset_one, _clear, _give_whole_entries]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_an_edit_of_the_state_reaches_the_next_step_as_in_torch(name: str, edit: Any) -> None:
    _same(edit, name)


@pytest.mark.parametrize("name", NAMES)
def test_user_keys_are_stored_saved_and_loaded(name: str) -> None:
    params, opt = _make(ds, name)
    w = params[0]
    opt.state[w]["ema"] = ds.zeros(tuple(w.shape), dtype=ds.float64)  # before any step
    assert "ema" in opt.state[w]
    _step(ds, name, params, opt, seed=0)
    opt.state[w]["ema"].add_(w.detach())
    opt.state[w]["note"] = "kept"
    own = {"Adafactor": ["col_var", "row_var", "step"], "Muon": ["momentum_buffer"]}
    assert sorted(opt.state[w]) == sorted([*own.get(name, ["exp_avg", "exp_avg_sq", "step"]), "ema", "note"])
    saved = opt.state_dict()
    assert saved["state"][0]["note"] == "kept"
    np.testing.assert_array_equal(saved["state"][0]["ema"].numpy(), w.detach().numpy())
    again_params = [ds.nn.Parameter(p.detach().clone()) for p in params]
    again = getattr(ds.optim, name)(again_params, lr=0.05)
    again.load_state_dict(saved)
    assert again.state[again_params[0]]["note"] == "kept"
    np.testing.assert_array_equal(again.state[again_params[0]]["ema"].numpy(), w.detach().numpy())
    del again.state[again_params[0]]["note"]
    assert "note" not in again.state_dict()["state"][0]
    # and the run goes on the same after the load
    _step(ds, name, params, opt, seed=1)
    _step(ds, name, again_params, again, seed=1)
    for a, b in zip(params, again_params):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("name", NAMES)
def test_a_key_given_before_the_first_step_leaves_the_state_made_there(name: str) -> None:
    """PyTorch's step would then find its state half made (a KeyError); the buffers are made as usual."""

    def run(note: bool) -> list[np.ndarray]:
        params, opt = _make(ds, name)
        if note:
            opt.state[params[0]]["note"] = 1
        for i in range(2):
            _step(ds, name, params, opt, seed=i)
        assert opt.state[params[0]].get("note") == (1 if note else None)
        return [p.detach().numpy() for p in params]

    for a, b in zip(run(True), run(False)):
        np.testing.assert_array_equal(a, b)


def test_bad_assignments_are_refused_with_what_was_expected() -> None:
    params, opt = _make(ds, "Adafactor")
    _step(ds, "Adafactor", params, opt, seed=0)
    matrix, vector = params
    with pytest.raises(StateError, match=r"Adafactor: state 'row_var' must have shape \(4, 1\), got \(3, 1\)"):
        opt.state[matrix]["row_var"] = ds.zeros(3, 1)
    with pytest.raises(StateError, match="floating"):
        opt.state[matrix]["row_var"] = ds.zeros(4, 1, dtype=ds.int64)
    with pytest.raises(StateError, match=r"a parameter of shape \(3,\) keeps no state 'row_var'"):
        opt.state[vector]["row_var"] = ds.zeros(3, 1)
    with pytest.raises(ValueError, match="whole number"):
        opt.state[matrix]["step"] = -1
    with pytest.raises(StateError, match="can't delete state 'row_var' alone"):
        del opt.state[matrix]["row_var"]
    with pytest.raises(ValueError, match="not a parameter of this optimizer"):
        opt.state[ds.ones(2)] = {}
    # nothing of the above changed the state
    assert float(opt.state[matrix]["step"]) == 1.0 and tuple(opt.state[matrix]["row_var"].shape) == (4, 1)


def test_an_assigned_buffer_is_a_copy_in_the_parameters_dtype() -> None:
    w = ds.nn.Parameter(ds.ones(2, 2))
    opt = ds.optim.Muon([w], lr=0.1)
    given = ds.full((2, 2), 0.5, dtype=ds.float64)
    opt.state[w]["momentum_buffer"] = given
    given.zero_()
    buf = opt.state[w]["momentum_buffer"]
    assert buf.dtype == ds.float32 and buf.tolist() == [[0.5, 0.5], [0.5, 0.5]]
    buf.mul_(2)  # a view of the state: writing into it reaches the next step
    assert opt.state[w]["momentum_buffer"].tolist() == [[1.0, 1.0], [1.0, 1.0]]
