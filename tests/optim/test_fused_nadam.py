"""NAdam's one-pass compiled step on large parameters (``_fused.nadam_step``, ``_jit_updates.nadam_``):
PyTorch's trajectories and state (float64 to the last digits, float32 within rounding), also after a
parameter missed a step (per-parameter running products), and that large parameters take it."""

from __future__ import annotations

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
def test_a_step_on_millions_of_parameters_takes_the_one_pass_kernel(calls: list[int]) -> None:
    """3.1M float32 parameters at the default size thresholds: every step is one compiled kernel call per
    parameter (one pass over its buffers), not the transforms path's 17 whole-buffer passes, which made the
    step 3-4x PyTorch's. Checked by counting the kernel's calls, not by timing (a shared machine); the speed
    against PyTorch is benchmarks/optim_flat_buffers.py's large-parameter table (its NAdam row)."""
    shapes = [(512, 512)] * 12 + [(512,)] * 12
    steps = 3
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]

    def run(lib: Any) -> list[Any]:
        as_tensor = torch.tensor if lib is torch else ds.from_numpy
        ps = [as_tensor(a.copy(), requires_grad=True) for a in init]
        opt = lib.optim.NAdam(ps, lr=1e-3)
        for step_grads in grads:
            for p, g in zip(ps, step_grads):
                p.grad = as_tensor(g)
            opt.step()
        return ps

    theirs, ours = run(torch), run(ds)
    assert len(calls) == steps * len(shapes)  # every parameter, every step, on the kernel
    for p, q in zip(ours, theirs):
        assert _max_rel(p, q) < 2e-6
