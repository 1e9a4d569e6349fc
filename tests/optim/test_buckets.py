"""The optimizer's flat buffers (src/downslope/optim/buckets.py): copies keep parameters and buffer linked."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim

MAKERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: optim.Adam(p, lr=0.1),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_deep_copy_of_model_and_optimizer_trains_like_the_original(name: str) -> None:
    ds.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = MAKERS[name](model.parameters())
    x = ds.ones(4, 3)

    def step(m: nn.Module, o: optim.Optimizer) -> None:
        o.zero_grad()
        (m(x) ** 2).sum().backward()
        o.step()

    step(model, opt)
    model2, opt2 = copy.deepcopy((model, opt))
    before = model2.weight.detach().numpy().copy()
    for _ in range(3):
        step(model, opt)
        step(model2, opt2)
    assert not np.array_equal(model2.weight.detach().numpy(), before)  # the copy's steps reach the copy's weights
    np.testing.assert_array_equal(model2.weight.detach().numpy(), model.weight.detach().numpy())
    assert not np.shares_memory(model2.weight.detach().numpy(), model.weight.detach().numpy())


def test_momentum_switched_on_while_a_parameter_has_no_grad_starts_its_buffer_from_its_grad_as_torch() -> None:
    torch = pytest.importorskip("torch")

    def run(lib: Any) -> list[float]:
        def make(v: list[float]) -> Any:
            return lib.tensor(v, dtype=lib.float64, requires_grad=True)

        def grad(v: list[float]) -> Any:
            return lib.tensor(v, dtype=lib.float64)

        a, b = make([1.0]), make([1.0])
        opt = lib.optim.SGD([a, b], lr=0.1, momentum=0.0, dampening=0.5)
        a.grad, b.grad = grad([1.0]), grad([1.0])
        opt.step()
        opt.param_groups[0]["momentum"] = 0.9  # switched on (a warm-up schedule would do this)
        a.grad, b.grad = grad([1.0]), None
        opt.step()
        for _ in range(2):
            a.grad, b.grad = grad([1.0]), grad([2.0])
            opt.step()
        return [float(a.detach().numpy()[0]), float(b.detach().numpy()[0])]

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)


def _frozen_first_run(lib: Any, name: str, kwargs: dict[str, Any], steps: int) -> tuple[list[Any], Any]:
    """Two parameters; the first has no gradient at step 1 (frozen), then both train."""
    rng = np.random.default_rng(0)
    params = [lib.nn.Parameter(lib.tensor(rng.standard_normal(s), dtype=lib.float64)) for s in ((3, 2), (2,))]
    opt = getattr(lib.optim, name)(params, **kwargs)
    for step in range(steps):
        opt.zero_grad()
        scale = 1.0 + 0.25 * step
        loss = sum(((p * p).sum() * scale) for p in (params[1:] if step == 0 else params))
        loss.backward()
        opt.step()
    return params, opt


def _to_torch(state_dict: dict[str, Any], torch: Any) -> dict[str, Any]:
    state = {k: {n: torch.tensor(np.asarray(v.numpy())) for n, v in e.items()} for k, e in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _to_ds(state_dict: dict[str, Any]) -> dict[str, Any]:
    state = {k: {n: ds.from_numpy(v.numpy()) for n, v in e.items()} for k, e in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


MOMENTUM_CASES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
]


@pytest.mark.parametrize("name, kwargs", MOMENTUM_CASES)
def test_momentum_state_of_a_parameter_without_grad_at_step_1_has_torchs_keys(
    name: str, kwargs: dict[str, Any]
) -> None:
    torch = pytest.importorskip("torch")
    ours, opt = _frozen_first_run(ds, name, kwargs, 3)
    theirs, topt = _frozen_first_run(torch, name, kwargs, 3)
    ours_state, their_state = opt.state_dict()["state"], topt.state_dict()["state"]
    assert {k: sorted(v) for k, v in ours_state.items()} == {k: sorted(v) for k, v in their_state.items()}
    for k, entry in their_state.items():
        for key, value in entry.items():
            np.testing.assert_allclose(ours_state[k][key].numpy(), value.numpy(), rtol=1e-12, atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", MOMENTUM_CASES)
def test_such_a_state_dict_moves_between_torch_and_downslope_both_ways(name: str, kwargs: dict[str, Any]) -> None:
    """Saved after step 1 (the first parameter has no state yet), loaded by the other library: both
    continue as the saving library's uninterrupted run."""
    torch = pytest.importorskip("torch")
    whole, _ = _frozen_first_run(torch, name, kwargs, 4)
    for saver, loader in ((ds, torch), (torch, ds)):
        params, opt = _frozen_first_run(saver, name, kwargs, 1)
        saved = opt.state_dict()
        moved = _to_torch(saved, torch) if loader is torch else _to_ds(saved)
        values = [p.detach().numpy().copy() for p in params]
        resumed = [loader.nn.Parameter(loader.tensor(v, dtype=loader.float64)) for v in values]
        other = getattr(loader.optim, name)(resumed, **kwargs)
        other.load_state_dict(moved)
        for step in range(1, 4):
            other.zero_grad()
            loss = sum(((p * p).sum() * (1.0 + 0.25 * step)) for p in resumed)
            loss.backward()
            other.step()
        for a, b in zip(resumed, whole):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


def test_a_state_saved_with_the_older_momentum_started_key_resumes_and_drops_it() -> None:
    """Older versions kept a per-parameter `momentum_started` beside the buffer (1: made): such a
    state still resumes torch's run, and the state holds torch's keys again after the next step."""
    torch = pytest.importorskip("torch")
    kwargs = {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}
    whole, _ = _frozen_first_run(torch, "SGD", kwargs, 4)
    params, opt = _frozen_first_run(ds, "SGD", kwargs, 1)
    saved = opt.state_dict()
    older = {
        **saved,
        "state": {k: {**e, "momentum_started": ds.ones_like(e["momentum_buffer"])} for k, e in saved["state"].items()},
        "state_layout": [
            [[*keys, "momentum_started"] if "momentum_buffer" in keys else keys for keys in layout]
            for layout in saved["state_layout"]
        ],  # fmt: skip
    }
    resumed = [ds.nn.Parameter(ds.from_numpy(p.detach().numpy().copy())) for p in params]
    other = optim.SGD(resumed, **kwargs)
    other.load_state_dict(older)
    for step in range(1, 4):
        other.zero_grad()
        sum(((p * p).sum() * (1.0 + 0.25 * step)) for p in resumed).backward()
        other.step()
    for a, b in zip(resumed, whole):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
    assert {k: sorted(v) for k, v in other.state_dict()["state"].items()} == {
        0: ["momentum_buffer"],
        1: ["momentum_buffer"],
    }
