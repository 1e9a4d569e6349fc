"""Where torch 2.13 keeps an optimizer's scalars in float32 whatever the parameters' dtype, step by step
against torch (CPU, its default single-tensor path):

* ASGD keeps ``eta`` and ``mu`` as float32 0-d tensors (torch's ``_get_scalar_dtype()``) for float16
  parameters too; downslope keeps them in the parameters' float16, so eta is rounded to float16.
* Adam with a float32 Tensor lr on float64 parameters: torch's step size ``lr / (1 - beta1**t)`` is a
  float32 0-d tensor (rounded to float32); downslope divides in float64, one float32 ulp of the step
  size away (about 3e6 float64 ulps of the parameters at lr=1e-3).

Both are known mismatches whose fix lies outside the files of this change (optim/sgd.py's ASGD with
transforms/adaptive.py's scale_by_asgd, and optimizer.py's Tensor-lr swap with _fused.adam_step and
the Adam chain): the tests are strict xfails, so they fail loudly once the fix lands."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _steps(lib: Any, w0: np.ndarray, make: Any, n: int = 20) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    w = lib.tensor(w0, dtype=getattr(lib, str(w0.dtype)), requires_grad=True)
    opt = make(lib, w)
    out = []
    for i in range(n):
        g = (np.sin(np.arange(w0.size) * (i + 1)) * 3).astype(w0.dtype)
        w.grad = lib.tensor(g, dtype=getattr(lib, str(w0.dtype)))
        opt.step()
        state = {k: np.array(v.detach().numpy() if hasattr(v, "detach") else v) for k, v in opt.state[w].items()}
        out.append((w.detach().numpy().copy(), state))
    return out


@pytest.mark.xfail(strict=True, reason="ASGD keeps eta/mu in float16 for float16 parameters (torch: float32)")
def test_asgd_state_and_steps_in_float16_match_torch() -> None:
    w0 = np.random.default_rng(0).standard_normal(37).astype(np.float16)

    def make(lib: Any, w: Any) -> Any:
        return lib.optim.ASGD([w], lr=0.1, lambd=1e-2, t0=5)

    ours, theirs = _steps(ds, w0, make), _steps(torch, w0, make)
    for step, ((w, s), (tw, ts)) in enumerate(zip(ours, theirs)):
        for key in ("eta", "mu"):
            assert s[key].dtype == ts[key].dtype == np.float32, (step, key)
            np.testing.assert_array_equal(s[key], ts[key])
        np.testing.assert_array_equal(w, tw, err_msg=f"step {step}")
        np.testing.assert_array_equal(s["ax"], ts["ax"], err_msg=f"step {step}")


@pytest.mark.xfail(strict=True, reason="Adam divides a float32 Tensor lr by the bias correction in float64")
def test_adam_with_a_float32_tensor_lr_on_float64_parameters_matches_torch() -> None:
    w0 = np.random.default_rng(0).standard_normal(7)

    def make(lib: Any, w: Any) -> Any:
        return lib.optim.Adam([w], lr=lib.tensor(1e-3))

    ours, theirs = _steps(ds, w0, make), _steps(torch, w0, make)
    for step, ((w, _), (tw, _)) in enumerate(zip(ours, theirs)):
        np.testing.assert_array_equal(w, tw, err_msg=f"step {step}")


@pytest.mark.parametrize("lr", ["float", "float64 tensor"])
def test_adam_with_a_float_or_float64_lr_on_float64_parameters_matches_torch(lr: str) -> None:
    w0 = np.random.default_rng(0).standard_normal(7)

    def make(lib: Any, w: Any) -> Any:
        return lib.optim.Adam([w], lr=1e-3 if lr == "float" else lib.tensor(1e-3, dtype=lib.float64))

    ours, theirs = _steps(ds, w0, make), _steps(torch, w0, make)
    for step, ((w, _), (tw, _)) in enumerate(zip(ours, theirs)):
        np.testing.assert_array_equal(w, tw, err_msg=f"step {step}")
