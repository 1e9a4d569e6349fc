"""NAdam's one-pass compiled step on large parameters (``_fused.nadam_step``, ``_jit_updates.nadam_``):
PyTorch's trajectories and state (float64 to the last digits, float32 within rounding), also after a
parameter missed a step (per-parameter running products), and the speed it exists for."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.optim import _fused

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

SHAPES = [(6, 5), (5,), (3, 4, 2)]
STEPS = 12
CONFIGS: list[dict[str, Any]] = [
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
    {"lr": 0.01, "betas": (0.3, 0.9), "momentum_decay": 0.01, "eps": 1e-6},  # lerp's large-weight form
]


@pytest.fixture
def small_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fused, "MIN_MEAN_SIZE", 0)
    monkeypatch.setattr(_fused, "MIN_TOTAL_SIZE", 0)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """One entry per call of the compiled NAdam kernel."""
    k = jit_gate.kernels("downslope.optim._jit_updates")
    if k is None:
        pytest.skip("the compiled path is switched off")
    seen: list[int] = []
    original = k.nadam_

    def spy(*args: Any) -> None:
        seen.append(1)
        original(*args)

    monkeypatch.setattr(k, "nadam_", spy)
    yield seen


def _run(lib: Any, kwargs: dict[str, Any], dtype: str, skip: set[tuple[int, int]] = frozenset()) -> Any:
    """``lib``'s NAdam after STEPS steps; (step, i) in ``skip``: parameter i has no gradient then."""
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    as_tensor = torch.tensor if lib is torch else ds.from_numpy
    params = [as_tensor(a.copy(), requires_grad=True) for a in init]  # a copy: the optimizer owns its storage
    opt = lib.optim.NAdam(params, **kwargs)
    for step in range(STEPS):
        for i, (p, s) in enumerate(zip(params, SHAPES)):
            g = rng.standard_normal(s).astype(dtype)
            p.grad = None if (step, i) in skip else as_tensor(g)
        opt.step()
    return params, opt


def _max_rel(ours: Any, theirs: Any) -> float:
    a = np.asarray(ours.detach().numpy(), np.float64)
    b = np.asarray(theirs.detach().numpy(), np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", CONFIGS)
def test_trajectories_and_state_match_torch(
    small_ok: None, calls: list[int], kwargs: dict[str, Any], dtype: str
) -> None:
    theirs, topt = _run(torch, kwargs, dtype)
    ours, dopt = _run(ds, kwargs, dtype)
    assert len(calls) == STEPS * len(SHAPES)  # every step took the compiled path
    tol = 2e-6 if dtype == "float32" else 1e-14
    for p, q in zip(ours, theirs):
        assert _max_rel(p, q) < tol
    ts, dsd = topt.state_dict()["state"], dopt.state_dict()["state"]
    for i in ts:
        assert float(dsd[i]["step"]) == float(ts[i]["step"])
        assert float(dsd[i]["mu_product"]) == float(ts[i]["mu_product"])  # multiplied in PyTorch's dtype
        for key in ("exp_avg", "exp_avg_sq"):
            want = ts[i][key].numpy()
            # float32: a moment near zero (a cancellation) is compared against the buffer's scale
            np.testing.assert_allclose(dsd[i][key].numpy(), want, rtol=tol, atol=tol * float(np.abs(want).max()))


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_after_a_missed_step_each_parameter_keeps_its_product(small_ok: None, calls: list[int], dtype: str) -> None:
    skip = {(0, 1), (3, 2), (4, 2)}
    theirs, topt = _run(torch, CONFIGS[1], dtype, skip)
    ours, dopt = _run(ds, CONFIGS[1], dtype, skip)
    # steps 0, 3 and 4 took the transforms path (a gradient missing); every other step was compiled
    assert len(calls) == (STEPS - 3) * len(SHAPES)
    tol = 2e-6 if dtype == "float32" else 1e-14
    for p, q in zip(ours, theirs):
        assert _max_rel(p, q) < tol
    ts, dsd = topt.state_dict()["state"], dopt.state_dict()["state"]
    assert [float(dsd[i]["mu_product"]) for i in ts] == [float(ts[i]["mu_product"]) for i in ts]
    assert [float(dsd[i]["step"]) for i in ts] == [float(ts[i]["step"]) for i in ts]


@pytest.mark.host_only
def test_compiled_and_numpy_paths_agree(small_ok: None) -> None:
    compiled, _ = _run(ds, CONFIGS[2], "float64", {(2, 0)})
    with jit_gate.disabled():
        plain, _ = _run(ds, CONFIGS[2], "float64", {(2, 0)})
    for p, q in zip(compiled, plain):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.host_only
@pytest.mark.slow
def test_a_step_on_millions_of_parameters_is_not_slower_than_torchs(calls: list[int]) -> None:
    """3.1M float32 parameters, one thread: the step was 3-4x PyTorch's (17 whole-buffer passes)."""
    shapes = [(512, 512)] * 12 + [(512,)] * 12
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def best(lib: Any) -> float:
        as_tensor = torch.tensor if lib is torch else ds.from_numpy
        ps = [as_tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
        opt = lib.optim.NAdam(ps, lr=1e-3)
        for p, s in zip(ps, shapes):
            p.grad = as_tensor(rng.standard_normal(s).astype(np.float32))
        opt.step()
        fastest = 1e9
        for _ in range(10):
            t = time.perf_counter()
            opt.step()
            fastest = min(fastest, time.perf_counter() - t)
        return fastest

    try:
        theirs, ours = best(torch), best(ds)
    finally:
        torch.set_num_threads(threads)
    assert calls
    assert ours <= 1.5 * theirs, f"downslope {ours * 1e3:.2f} ms, torch {theirs * 1e3:.2f} ms"
