"""Removing a reparametrization against torch: the weight left behind is computed from the current
parameters and buffers (after an optimizer step, or after a load with no forward since), not the
weight of the last forward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _copy_state(tm: Any, dm: Any) -> None:
    dm.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})


def _step(tm: Any, dm: Any) -> None:
    """One forward, backward and SGD step in both, after which the weight of the last forward is stale."""
    x = torch.randn(2, 4)
    tm(x).sum().backward()
    dm(ds.from_numpy(x.numpy().copy())).sum().backward()
    with torch.no_grad():
        for p in tm.parameters():
            p -= 0.5 * p.grad
    with ds.no_grad():
        for p in dm.parameters():
            p -= 0.5 * p.grad


def _reparams() -> dict[str, tuple[Callable[..., Any], ...]]:
    T, D = torch.nn.utils, ds.nn.utils
    cases: dict[str, tuple[Callable[..., Any], ...]] = {
        "weight_norm": (T.weight_norm, D.weight_norm, T.remove_weight_norm, D.remove_weight_norm),
        "spectral_norm": (T.spectral_norm, D.spectral_norm, T.remove_spectral_norm, D.remove_spectral_norm),
    }
    for leave in (True, False):
        for kind in ("weight_norm", "spectral_norm", "orthogonal"):
            if kind == "weight_norm" and not leave:
                continue  # refused by both: the weight is a function of two tensors
            cases[f"parametrizations.{kind}-leave={leave}"] = (
                getattr(T.parametrizations, kind),
                getattr(D.parametrizations, kind),
                lambda m, leave=leave: T.parametrize.remove_parametrizations(m, "weight", leave_parametrized=leave),
                lambda m, leave=leave: D.parametrize.remove_parametrizations(m, "weight", leave_parametrized=leave),
            )
    return cases


@pytest.mark.parametrize("when", ["after_step", "after_load"])
@pytest.mark.parametrize("case", sorted(_reparams()))
def test_remove_uses_current_state(case: str, when: str) -> None:
    wrap_t, wrap_d, remove_t, remove_d = _reparams()[case]
    torch.manual_seed(0)
    ds.manual_seed(1)  # a different start in downslope: only the loaded state may matter
    tm = wrap_t(torch.nn.Linear(4, 3))
    dm = wrap_d(ds.nn.Linear(4, 3))
    if when == "after_step":
        _copy_state(tm, dm)
        _step(tm, dm)
    else:
        for _ in range(5):  # power iterations move u and v away from their start
            tm(torch.randn(2, 4))
        _copy_state(tm, dm)  # and no forward in downslope before the remove
    remove_t(tm)
    remove_d(dm)
    assert sorted(tm.state_dict()) == sorted(dm.state_dict())
    np.testing.assert_allclose(dm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_remove_spectral_norm_closed_form() -> None:
    """The weight left is weight_orig / (u . weight_orig v), with no power iteration at the remove."""
    ds.manual_seed(0)
    layer = ds.nn.utils.spectral_norm(ds.nn.Linear(5, 3))
    with ds.no_grad():
        layer.weight_orig.add_(0.5)  # not a scaling, which the division would undo
    w, u, v = (layer.state_dict()[k].numpy().copy() for k in ("weight_orig", "weight_u", "weight_v"))
    ds.nn.utils.remove_spectral_norm(layer)
    np.testing.assert_allclose(layer.weight.detach().numpy(), w / (u @ w @ v), rtol=1e-6)
