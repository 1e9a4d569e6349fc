"""LBFGS's state as PyTorch's: ``opt.state[params[0]]`` holds the memory under torch's names and in
torch's shapes, ``state_dict()`` is torch's, and a state dict moves either way between the two
libraries and continues the same iterates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

KEYS = {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss", "al"}
CASES = [
    {"max_iter": 4, "history_size": 3},
    {"line_search_fn": "strong_wolfe", "max_iter": 5, "history_size": 4},
]


def _init() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.normal(0, 0.5, s) for s in [(3, 4), (4,), (4, 1)]]


def _setup(T: Any, init: list[np.ndarray], kwargs: dict[str, Any]) -> tuple[list[Any], Any, Any]:
    params = [T.nn.Parameter(T.tensor(a.copy(), dtype=T.float64)) for a in init]
    opt = T.optim.LBFGS(params, **kwargs)
    x = T.tensor(np.linspace(-1, 1, 15).reshape(5, 3), dtype=T.float64)
    y = T.tensor(np.cos(np.arange(5.0)).reshape(5, 1), dtype=T.float64)

    def closure() -> Any:
        opt.zero_grad()
        out = T.tanh(x @ params[0] + params[1]) @ params[2]
        loss = ((out - y) ** 2).mean()
        loss.backward()
        return loss

    return params, opt, closure


def _to(T: Any, value: Any) -> Any:
    """A state value converted to the other library (tensors through NumPy, containers kept)."""
    if isinstance(value, dict):
        return {k: _to(T, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to(T, v) for v in value]
    if isinstance(value, (torch.Tensor, ds.Tensor)):
        array = value.detach().numpy().copy()
        return torch.from_numpy(array) if T is torch else ds.from_numpy(array)
    return value


def _values(params: list[Any]) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in params]


def _assert_same(ours: list[Any], theirs: list[Any]) -> None:
    for a, b in zip(_values(ours), _values(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", CASES)
def test_the_state_has_torchs_names_types_and_shapes(kwargs: dict[str, Any]) -> None:
    init = _init()
    ours, opt, closure = _setup(ds, init, kwargs)
    theirs, topt, tclosure = _setup(torch, init, kwargs)
    for _ in range(2):
        opt.step(closure)
        topt.step(tclosure)
    _assert_same(ours, theirs)
    s, ts = opt.state[ours[0]], topt.state[theirs[0]]
    assert set(s) == set(ts) == KEYS
    assert list(opt.state) == [ours[0]] and len(topt.state) == 1
    for key in KEYS:
        a, b = s[key], ts[key]
        if isinstance(b, list):
            assert isinstance(a, list) and len(a) == len(b), key
            pairs = list(zip(a, b))
        else:
            pairs = [(a, b)]
        for x, y in pairs:
            if isinstance(y, torch.Tensor):
                assert isinstance(x, ds.Tensor), key
                assert tuple(x.shape) == tuple(y.shape) and str(x.dtype).split(".")[-1] == str(y.dtype).split(".")[-1]
                np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-8, atol=1e-12, err_msg=key)
            elif y is None:
                assert x is None, key
            else:
                assert not isinstance(x, ds.Tensor) and x == pytest.approx(y, rel=1e-8), key
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert set(sd["state"]) == set(tsd["state"]) == {0}
    assert set(sd["state"][0]) == KEYS
    # copies: training on leaves a saved state as it was
    before = sd["state"][0]["d"].numpy().copy()
    opt.step(closure)
    np.testing.assert_array_equal(sd["state"][0]["d"].numpy(), before)


@pytest.mark.parametrize("kwargs", CASES)
def test_a_torch_state_dict_loads_and_continues_as_torch(kwargs: dict[str, Any]) -> None:
    init = _init()
    theirs, topt, tclosure = _setup(torch, init, kwargs)
    for _ in range(2):
        topt.step(tclosure)
    saved = _to(ds, topt.state_dict())
    ours, opt, closure = _setup(ds, [v.astype(np.float64) for v in _values(theirs)], kwargs)
    opt.load_state_dict(saved)
    for _ in range(2):
        opt.step(closure)
        topt.step(tclosure)
    _assert_same(ours, theirs)
    assert opt.state[ours[0]]["n_iter"] == topt.state[theirs[0]]["n_iter"]
    assert opt.state[ours[0]]["func_evals"] == topt.state[theirs[0]]["func_evals"]


@pytest.mark.parametrize("kwargs", CASES)
def test_our_state_dict_loads_into_torch_and_continues_the_same(kwargs: dict[str, Any]) -> None:
    init = _init()
    ours, opt, closure = _setup(ds, init, kwargs)
    for _ in range(2):
        opt.step(closure)
    saved = opt.state_dict()
    theirs, topt, tclosure = _setup(torch, _values(ours), kwargs)
    topt.load_state_dict(_to(torch, {"state": saved["state"], "param_groups": saved["param_groups"]}))
    for _ in range(2):
        opt.step(closure)
        topt.step(tclosure)
    _assert_same(ours, theirs)


def test_assignments_reach_the_next_step_and_user_keys_are_kept() -> None:
    init = _init()
    kwargs = CASES[0]
    ours, opt, closure = _setup(ds, init, kwargs)
    theirs, topt, tclosure = _setup(torch, init, kwargs)
    for _ in range(2):
        opt.step(closure)
        topt.step(tclosure)
    # the same edits on both sides: forget the curvature pairs, halve the direction
    for state in (opt.state[ours[0]], topt.state[theirs[0]]):
        state["old_dirs"], state["old_stps"], state["ro"] = [], [], []
        state["d"] = state["d"] * 0.5
    opt.state[ours[1]]["note"] = "kept"
    opt.step(closure)
    topt.step(tclosure)
    _assert_same(ours, theirs)
    saved = opt.state_dict()
    assert saved["state"][1] == {"note": "kept"}
    fresh_params, fresh, fresh_closure = _setup(ds, _values(ours), kwargs)
    fresh.load_state_dict(saved)
    assert fresh.state[fresh_params[1]]["note"] == "kept"
    # a reset state starts L-BFGS afresh, as a new optimizer would
    opt.state = defaultdict(dict)
    topt.state = defaultdict(dict)
    opt.step(closure)
    topt.step(tclosure)
    _assert_same(ours, theirs)
    assert opt.state[ours[0]]["n_iter"] == topt.state[theirs[0]]["n_iter"]


def test_an_older_checkpoint_with_an_lbfgs_entry_still_loads() -> None:
    kwargs = CASES[0]
    ours, opt, closure = _setup(ds, _init(), kwargs)
    for _ in range(2):
        opt.step(closure)
    s = opt.state_dict()["state"][0]
    older = {
        "func_evals": s["func_evals"],
        "n_iter": s["n_iter"],
        "d": s["d"].numpy(),
        "prev_flat_grad": s["prev_flat_grad"].numpy(),
        "t": s["t"],
        "H_diag": s["H_diag"].numpy(),
        "prev_loss": s["prev_loss"],
        "old_dirs": np.stack([v.numpy() for v in s["old_dirs"]]),
        "old_stps": np.stack([v.numpy() for v in s["old_stps"]]),
        "ro": np.array([v.item() for v in s["ro"]]),
        "al": np.array([np.nan if v is None else v.item() for v in s["al"]]),
    }
    sd = opt.state_dict()
    sd = {**sd, "state": {0: {"step": 2.0}}, "lbfgs": older}
    twin, opt2, closure2 = _setup(ds, _values(ours), kwargs)
    opt2.load_state_dict(sd)
    opt.step(closure)
    opt2.step(closure2)
    for a, b in zip(_values(ours), _values(twin)):
        np.testing.assert_array_equal(a, b)


def test_a_state_vector_of_the_wrong_size_is_refused() -> None:
    ours, opt, closure = _setup(ds, _init(), CASES[0])
    opt.step(closure)
    opt.state[ours[0]]["d"] = ds.zeros(3, dtype=ds.float64)
    with pytest.raises(ValueError, match="LBFGS: a state vector has 3 elements, the parameters have 20"):
        opt.step(closure)
