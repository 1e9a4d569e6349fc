"""Gradients of 0-dim tensors are 0-d arrays (never NumPy scalars), so in-place writes into them
(optimizers, GradScaler, grad.mul_/zero_, clipping) behave as torch's on a 0-dim parameter."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _is_zero_d_array(a) -> bool:  # type: ignore[no-untyped-def]
    """A 0-d array of any namespace (NumPy's, or a device's), not a NumPy scalar (which cannot be written)."""
    return not isinstance(a, np.generic) and hasattr(a, "shape") and a.shape == ()


def test_backward_stores_a_zero_dim_gradient_as_an_array() -> None:
    s = ds.nn.Parameter(ds.tensor(2.0))
    (s * 6.0).backward()  # NumPy's 0-d product g * 6.0 is a scalar
    assert _is_zero_d_array(s.grad.array)
    (s * s).backward()  # accumulated into the existing 0-d array
    assert _is_zero_d_array(s.grad.array)
    assert float(s.grad) == 10.0


def test_gradients_seen_by_hooks_retain_grad_and_autograd_grad_are_arrays() -> None:
    s = ds.tensor(2.0, requires_grad=True)
    seen = []
    s.register_hook(lambda g: seen.append(_is_zero_d_array(g.array)))
    m = s * 3.0
    m.retain_grad()
    (m * 5.0).backward()
    assert seen == [True]
    assert _is_zero_d_array(m.grad.array)
    (g,) = ds.autograd.grad(s * 7.0, s)
    assert _is_zero_d_array(g.array) and float(g) == 7.0


def _in_place_on_zero_dim_grad(lib):  # type: ignore[no-untyped-def]
    s = lib.nn.Parameter(lib.tensor(2.0))
    (s * 6.0).backward()
    s.grad.mul_(0.5)
    out = [float(s.grad)]
    (s * 6.0).backward()
    out.append(float(s.grad))
    s.grad.add_(1.0)
    out.append(float(s.grad))
    s.grad.zero_()
    out.append(float(s.grad))
    return out


def test_in_place_ops_on_a_zero_dim_grad_match_torch() -> None:
    assert _in_place_on_zero_dim_grad(ds) == _in_place_on_zero_dim_grad(torch)


def _scaled_step(lib):  # type: ignore[no-untyped-def]
    s = lib.nn.Parameter(lib.tensor(2.0))
    opt = lib.optim.SGD([s], lr=0.1)
    scaler = lib.amp.GradScaler("cpu", init_scale=4.0) if lib is torch else lib.amp.GradScaler(init_scale=4.0)
    scaler.scale(s * 6.0).backward()
    scaler.unscale_(opt)
    unscaled = float(s.grad)
    scaler.step(opt)
    scaler.update()
    return unscaled, float(s.detach())


def test_grad_scaler_unscales_a_zero_dim_grad_as_torch() -> None:
    assert _scaled_step(ds) == pytest.approx(_scaled_step(torch), rel=1e-6)


OPTIMIZERS = {
    "sgd_momentum": lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=0.1),
    "sgd_foreach": lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True),
    "adam": lambda lib, p: lib.optim.Adam(p, lr=0.1),
    "adam_foreach": lambda lib, p: lib.optim.Adam(p, lr=0.1, foreach=True),
    "adamw_amsgrad": lambda lib, p: lib.optim.AdamW(p, lr=0.1, amsgrad=True),
    "rmsprop": lambda lib, p: lib.optim.RMSprop(p, lr=0.01, momentum=0.5),
    "adagrad": lambda lib, p: lib.optim.Adagrad(p, lr=0.1),
    "nadam": lambda lib, p: lib.optim.NAdam(p, lr=0.1),
    "adamax": lambda lib, p: lib.optim.Adamax(p, lr=0.1),
    "rprop": lambda lib, p: lib.optim.Rprop(p, lr=0.01),
}


def _train(lib, make):  # type: ignore[no-untyped-def]
    w = lib.nn.Parameter(lib.tensor([3.0, 4.0]))
    s = lib.nn.Parameter(lib.tensor(2.0))
    opt = make(lib, [w, s])
    for _ in range(3):
        opt.zero_grad()
        ((w * lib.tensor([3.0, 4.0])).sum() * s + s * s * 6.0).backward()
        opt.step()
    return w.detach().numpy().copy(), s.detach().numpy().copy()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_step_a_zero_dim_parameter_as_torch(name: str) -> None:
    (w, s), (tw, ts) = _train(ds, OPTIMIZERS[name]), _train(torch, OPTIMIZERS[name])
    np.testing.assert_allclose(w, tw, rtol=1e-5)
    np.testing.assert_allclose(s, ts, rtol=1e-5)
