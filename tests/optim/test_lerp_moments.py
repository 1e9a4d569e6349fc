"""The first moments of Adam, AdamW, Adamax, NAdam, RAdam and centered RMSprop are PyTorch's
``lerp_(grad, 1 - beta)``, rounded in its two forms: ``m + w (g - m)`` for ``w < 0.5``, else
``g - (g - m)(1 - w)``, which is exact at ``w = 1``. With ``beta1 = 0`` (GAN-style ``betas=(0.0, 0.99)``)
the moment must be the gradient itself, also right after a gradient spike; the compiled one-pass step
and the NumPy transforms give the same bits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.optim import _fused
from downslope.optim.transforms.adaptive import _lerp_

torch = pytest.importorskip("torch")

ADAM_LIKE = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]
SPIKES = [("float32", 1e4, 1e-4), ("float32", 1e3, 1e-3), ("float64", 1e20, 1.0)]


def _after_spike(lib: Any, name: str, dtype: str, big: float, small: float, **kw: Any) -> np.ndarray:
    p = lib.nn.Parameter(lib.tensor([1.0, -2.0], dtype=getattr(lib, dtype)))
    opt = getattr(lib.optim, name)([p], lr=0.1, **kw)
    for g in (big, small):
        p.grad = lib.tensor([g, -g], dtype=getattr(lib, dtype))
        opt.step()
    key = "grad_avg" if name == "RMSprop" else "exp_avg"
    return np.array(opt.state_dict()["state"][0][key].numpy())


@pytest.mark.parametrize(("dtype", "big", "small"), SPIKES)
@pytest.mark.parametrize("name", ADAM_LIKE)
def test_beta1_zero_keeps_the_gradient_after_a_spike_as_torch(name: str, dtype: str, big: float, small: float) -> None:
    ours = _after_spike(ds, name, dtype, big, small, betas=(0.0, 0.99))
    theirs = _after_spike(torch, name, dtype, big, small, betas=(0.0, 0.99))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, np.array([small, -small], dtype))


@pytest.mark.parametrize(("dtype", "big", "small"), SPIKES)
def test_centered_rmsprop_alpha_zero_keeps_the_gradient_as_torch(dtype: str, big: float, small: float) -> None:
    ours = _after_spike(ds, "RMSprop", dtype, big, small, alpha=0.0, centered=True)
    theirs = _after_spike(torch, "RMSprop", dtype, big, small, alpha=0.0, centered=True)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, np.array([small, -small], dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weight", [0.0, 0.1, 0.49, 0.5, 0.7, 0.99, 1.0])
def test_lerp_takes_torchs_form_for_each_weight(dtype: str, weight: float) -> None:
    rng = np.random.default_rng(3)
    acc = (rng.standard_normal(257) * 10.0 ** rng.integers(-6, 6, 257)).astype(dtype)
    g = (rng.standard_normal(257) * 10.0 ** rng.integers(-6, 6, 257)).astype(dtype)
    dt = np.dtype(dtype).type
    w = dt(weight)
    # PyTorch's CPU lerp, term by term (its vector kernel fuses the multiply-add; compared unfused here)
    expected = acc + w * (g - acc) if weight < 0.5 else g - (g - acc) * (dt(1) - w)
    ours = acc.copy()
    _lerp_(ours, g, weight, np.empty_like(g))
    np.testing.assert_array_equal(ours, expected)
    per_element = acc.copy()
    _lerp_(per_element, g, np.full(g.shape, weight), np.empty_like(g))
    np.testing.assert_array_equal(per_element, expected)


@pytest.mark.host_only
@pytest.mark.parametrize("beta1", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("name", ["Adam", "NAdam"])
def test_compiled_and_transforms_paths_give_the_same_moments(
    monkeypatch: pytest.MonkeyPatch, name: str, beta1: float
) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(_fused, "MIN_MEAN_SIZE", 0)
    monkeypatch.setattr(_fused, "MIN_TOTAL_SIZE", 0)
    rng = np.random.default_rng(0)
    grads = [(rng.standard_normal(64) * 10.0 ** rng.integers(-4, 4, 64)).astype(np.float32) for _ in range(6)]

    def run() -> np.ndarray:
        p = ds.nn.Parameter(ds.ones(64))
        opt = getattr(ds.optim, name)([p], lr=0.01, betas=(beta1, 0.99))
        for g in grads:
            p.grad = ds.tensor(g)
            opt.step()
        return np.array(opt.state[p]["exp_avg"].numpy())

    compiled = run()
    with jit_gate.disabled():
        plain = run()
    np.testing.assert_array_equal(compiled, plain)
