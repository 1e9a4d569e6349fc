"""The one-pass compiled step of SGD, GD, Adam, AdamW, RMSprop, Adagrad and Adadelta on large parameters (``optim/_fused.py``,
``optim/_jit_updates.py``): the same trajectories as PyTorch's, float32 within rounding and
float64 to the last digits, and the same bookkeeping (state, versions, state_dict) as the
transforms path it replaces.

``MIN_MEAN_SIZE`` is lowered to 0 in most tests so that small parameters take the compiled path
(one test keeps the default on parameters big enough for it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.optim import _fused

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

SHAPES = [(6, 5), (5,), (3, 4, 2)]
STEPS = 20

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.9), "maximize": True}),  # lerp's large-weight form
    ("Adam", {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01, "centered": True, "maximize": True}),
    (
        "RMSprop",
        {"lr": 0.005, "alpha": 0.3, "centered": True, "momentum": 0.8, "weight_decay": 0.01},
    ),  # large lerp weight
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.02, "initial_accumulator_value": 0.3}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-3, "maximize": True}),
    ("Adadelta", {"lr": 1.0}),
    ("Adadelta", {"lr": 0.5, "rho": 0.6, "eps": 1e-4, "weight_decay": 0.03, "maximize": True}),
]


@pytest.fixture
def small_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let parameters of any size take the compiled path."""
    monkeypatch.setattr(_fused, "MIN_MEAN_SIZE", 0)
    monkeypatch.setattr(_fused, "MIN_TOTAL_SIZE", 0)


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the compiled kernels called, in order."""
    k = jit_gate.kernels("downslope.optim._jit_updates")
    if k is None:
        pytest.skip("the compiled path is switched off")
    calls: list[str] = []
    for name in ("sgd_", "sgd_momentum_", "adam_", "rmsprop_", "adagrad_", "adadelta_"):
        original = getattr(k, name)

        def spy(*args: Any, _f: Callable[..., None] = original, _n: str = name) -> None:
            calls.append(_n)
            _f(*args)

        monkeypatch.setattr(k, name, spy)
    yield calls


def _start(dtype: str, shapes: list[tuple[int, ...]] = SHAPES) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(STEPS)]
    return init, grads


def _run(lib: Any, name: str, kwargs: dict[str, Any], init: list[np.ndarray], grads: list[list[np.ndarray]]) -> Any:
    """(params, optimizer) after ``lib``'s (torch's or downslope's) optimizer ``name`` stepped through ``grads``."""
    as_tensor = torch.tensor if lib is torch else ds.from_numpy
    params = [as_tensor(a.copy(), requires_grad=True) for a in init]
    opt = getattr(lib.optim, name)(params, **kwargs)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = as_tensor(g)
        opt.step()
    return params, opt


def _max_rel(ours: Any, theirs: Any) -> float:
    a = np.asarray(ours.detach().numpy(), np.float64)
    b = np.asarray(theirs.detach().numpy(), np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_trajectories_match_torch(
    small_ok: None, kernel_calls: list[str], name: str, kwargs: dict[str, Any], dtype: str
) -> None:
    init, grads = _start(dtype)
    theirs, _ = _run(torch, name, kwargs, init, grads)
    ours, _ = _run(ds, name, kwargs, init, grads)
    assert len(kernel_calls) == STEPS * len(SHAPES)  # every step took the compiled path
    tol = 2e-6 if dtype == "float32" else 1e-13
    for p, q in zip(ours, theirs):
        assert p.dtype == getattr(ds, dtype)
        assert _max_rel(p, q) < tol


@pytest.mark.host_only
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_state_matches_torch(small_ok: None, kernel_calls: list[str], name: str, kwargs: dict[str, Any]) -> None:
    init, grads = _start("float64")
    _, topt = _run(torch, name, kwargs, init, grads)
    _, dopt = _run(ds, name, kwargs, init, grads)
    assert kernel_calls
    theirs, ours = topt.state_dict()["state"], dopt.state_dict()["state"]
    assert sorted(theirs) == sorted(ours)
    for i in theirs:
        assert sorted(theirs[i]) == sorted(ours[i])
        for key, value in theirs[i].items():
            mine = ours[i][key]
            if key == "step":
                assert float(mine) == float(value)
            else:
                np.testing.assert_allclose(mine.numpy(), value.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.host_only
def test_large_parameters_take_the_compiled_path_by_default(kernel_calls: list[str]) -> None:
    shapes = [(256, 256), (256,)]  # 32.9k elements on average, 65.8k in all: above both size gates
    total = sum(int(np.prod(s)) for s in shapes)
    assert total >= _fused.MIN_MEAN_SIZE * len(shapes) and total >= _fused.MIN_TOTAL_SIZE
    init, grads = _start("float32", shapes)
    kwargs = {"lr": 1e-3, "weight_decay": 0.01}
    theirs, _ = _run(torch, "AdamW", kwargs, init, grads)
    ours, _ = _run(ds, "AdamW", kwargs, init, grads)
    assert kernel_calls == ["adam_"] * (STEPS * len(shapes))
    for p, q in zip(ours, theirs):
        assert _max_rel(p, q) < 2e-6


def test_many_small_parameters_keep_the_flat_path(kernel_calls: list[str]) -> None:
    params = [ds.zeros(10, requires_grad=True) for _ in range(20)]
    opt = ds.optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = ds.ones(10)
    opt.step()
    assert kernel_calls == []
    assert all(np.allclose(p.detach().numpy(), -0.1) for p in params)


@pytest.mark.parametrize(("name", "kwargs"), [CONFIGS[3], CONFIGS[6], CONFIGS[10], *CONFIGS[11:]])
def test_compiled_and_numpy_paths_agree(small_ok: None, name: str, kwargs: dict[str, Any]) -> None:
    init, grads = _start("float32")
    compiled, _ = _run(ds, name, kwargs, init, grads)
    with jit_gate.disabled():
        plain, _ = _run(ds, name, kwargs, init, grads)
    for p, q in zip(compiled, plain):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.host_only
def test_a_step_with_a_missing_gradient_falls_back_and_matches_torch(small_ok: None, kernel_calls: list[str]) -> None:
    init, grads = _start("float64")
    kwargs: dict[str, Any] = {"lr": 0.05, "momentum": 0.9}
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    dp = [ds.from_numpy(a.copy(), requires_grad=True) for a in init]
    topt, dopt = torch.optim.SGD(tp, **kwargs), ds.optim.SGD(dp, **kwargs)
    for step, gs in enumerate(grads[:6]):
        for i, (t, d, g) in enumerate(zip(tp, dp, gs)):
            skip = step in (1, 2) and i == 1  # parameter 1 sits out two steps: its buffer starts later
            t.grad = None if skip else torch.tensor(g)
            d.grad = None if skip else ds.from_numpy(g)
        topt.step()
        dopt.step()
    assert kernel_calls[: len(SHAPES)] == ["sgd_momentum_"] * len(SHAPES)  # the first step was compiled
    for d, t in zip(dp, tp):
        assert _max_rel(d, t) < 1e-13


@pytest.mark.host_only
def test_clipping_options_take_the_transforms_path(small_ok: None, kernel_calls: list[str]) -> None:
    w = ds.zeros(4, requires_grad=True)
    opt = ds.optim.SGD([w], lr=1.0, clip_value=0.5)
    w.grad = ds.ones(4) * 3
    opt.step()
    assert kernel_calls == []
    assert np.allclose(w.detach().numpy(), -0.5)


@pytest.mark.host_only
def test_a_subclass_with_its_own_chain_takes_the_transforms_path(small_ok: None, kernel_calls: list[str]) -> None:
    from downslope.optim import transforms as T

    class Doubled(ds.optim.SGD):
        def _make_transform(self) -> T.GradientTransformation:
            return T.chain(T.scale(2.0), T.scale_by_lr(T.from_group("lr")))

    w = ds.zeros(3, requires_grad=True)
    opt = Doubled([w], lr=0.1)
    w.grad = ds.ones(3)
    opt.step()
    assert kernel_calls == []
    assert np.allclose(w.detach().numpy(), -0.2)


@pytest.mark.host_only
def test_the_step_bumps_versions(small_ok: None, kernel_calls: list[str]) -> None:
    w = ds.ones(5, requires_grad=True)
    opt = ds.optim.Adam([w], lr=0.1)
    y = (w * w).sum()
    y.backward(retain_graph=True)
    before = w._version
    opt.step()
    assert kernel_calls == ["adam_"]
    assert w._version == before + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.host_only
def test_momentum_switched_on_mid_run_starts_its_buffer(small_ok: None, kernel_calls: list[str]) -> None:
    init, grads = _start("float64")
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    dp = [ds.from_numpy(a.copy(), requires_grad=True) for a in init]
    topt, dopt = torch.optim.SGD(tp, lr=0.1), ds.optim.SGD(dp, lr=0.1)
    for step, gs in enumerate(grads[:8]):
        if step == 3:
            for opt in (topt, dopt):
                opt.param_groups[0]["momentum"] = 0.9
                opt.param_groups[0]["lr"] = 0.03  # as a scheduler would
        for t, d, g in zip(tp, dp, gs):
            t.grad, d.grad = torch.tensor(g), ds.from_numpy(g)
        topt.step()
        dopt.step()
    assert "sgd_" in kernel_calls and "sgd_momentum_" in kernel_calls
    for d, t in zip(dp, tp):
        assert _max_rel(d, t) < 1e-13


@pytest.mark.host_only
def test_resetting_one_parameters_state_falls_back_then_matches_torch(small_ok: None, kernel_calls: list[str]) -> None:
    init, grads = _start("float64")
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    dp = [ds.from_numpy(a.copy(), requires_grad=True) for a in init]
    topt, dopt = torch.optim.Adam(tp, lr=0.01), ds.optim.Adam(dp, lr=0.01)
    for step, gs in enumerate(grads[:6]):
        if step == 3:
            topt.state[tp[0]] = {}
            dopt.state[dp[0]] = {}
        for t, d, g in zip(tp, dp, gs):
            t.grad, d.grad = torch.tensor(g), ds.from_numpy(g)
        topt.step()
        dopt.step()
    for d, t in zip(dp, tp):
        assert _max_rel(d, t) < 1e-13


@pytest.mark.host_only
def test_gd_matches_torch_sgd(small_ok: None, kernel_calls: list[str]) -> None:
    init, grads = _start("float32")
    kwargs = {"lr": 0.1, "weight_decay": 0.01}
    theirs, _ = _run(torch, "SGD", kwargs, init, grads)
    ours, _ = _run(ds, "GD", kwargs, init, grads)
    assert kernel_calls == ["sgd_"] * (STEPS * len(SHAPES))
    for p, q in zip(ours, theirs):
        assert _max_rel(p, q) < 2e-6


@pytest.mark.host_only
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("Adagrad", {"lr": 0.1, "lr_decay": 0.1}), ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True})],
)
def test_uneven_step_counts_match_torch(
    small_ok: None, kernel_calls: list[str], name: str, kwargs: dict[str, Any]
) -> None:
    """A parameter that sits out steps keeps its own count (Adagrad's decayed rate) and state."""
    init, grads = _start("float64")
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    dp = [ds.from_numpy(a.copy(), requires_grad=True) for a in init]
    topt, dopt = getattr(torch.optim, name)(tp, **kwargs), getattr(ds.optim, name)(dp, **kwargs)
    for step, gs in enumerate(grads[:8]):
        for i, (t, d, g) in enumerate(zip(tp, dp, gs)):
            skip = step in (1, 2) and i == 1
            t.grad = None if skip else torch.tensor(g)
            d.grad = None if skip else ds.from_numpy(g)
        topt.step()
        dopt.step()
    assert kernel_calls
    for d, t in zip(dp, tp):
        assert _max_rel(d, t) < 1e-13
