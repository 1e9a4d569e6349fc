"""Inference tensors as torch 2.13's: what ``inference_mode()`` makes is one (``is_inference()``), views and
detached aliases of one too, a clone is not; a later recorded op that saves one raises torch's error, an op
that does not save it runs; an in-place write into one outside inference mode raises torch's error before
writing; and ``is_grad_enabled`` / ``is_inference_mode_enabled`` / ``enable_grad`` inside it are torch's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

MADE: dict[str, Callable[[Any], Any]] = {
    "zeros": lambda L: L.zeros(2),
    "tensor": lambda L: L.tensor([1.0, 2.0]),
    "arange": lambda L: L.arange(3),
    "randn": lambda L: L.randn(2),
    "from_numpy": lambda L: L.from_numpy(np.ones(2)),
    "op": lambda L: L.ones(2) * 2,
    "op on a grad tensor": lambda L: L.ones(2, requires_grad=True) * 2,
    "sum": lambda L: L.ones(2).sum(),
    "argmax": lambda L: L.ones(2).argmax(),
    "comparison": lambda L: L.ones(2) == 1,
    "clone": lambda L: L.ones(2).clone(),
    "view": lambda L: L.ones(2, 2)[0],
    "linear layer": lambda L: L.nn.Linear(2, 2)(L.ones(1, 2)),
    "parameter": lambda L: L.nn.Linear(2, 2).weight,
    "leaf requiring grad": lambda L: L.tensor([1.0], requires_grad=True),
}


@pytest.mark.parametrize("name", sorted(MADE))
def test_made_inside_inference_mode_is_an_inference_tensor_as_torch(name: str) -> None:
    got = []
    for lib in (torch, ds):
        with lib.inference_mode():
            t = MADE[name](lib)
        got.append((t.is_inference(), t.requires_grad))
    assert got[1] == got[0]


def test_outside_inference_mode_views_and_aliases_stay_inference_tensors_clones_do_not() -> None:
    for lib in (torch, ds):
        with lib.inference_mode():
            y = lib.ones(2, 3)
        assert y[0].is_inference() and y.t().is_inference() and y.detach().is_inference()
        assert not y.clone().is_inference() and not (y * 2).is_inference() and not lib.ones(1).is_inference()
        with lib.no_grad():
            assert not lib.ones(1).is_inference()


USES: dict[str, Callable[[Any, Any, Any], Any]] = {
    "mul (saves it)": lambda L, y, w: y * w,
    "exp times (saves it)": lambda L, y, w: w.exp() * y,
    "matmul (saves it)": lambda L, y, w: y @ w,
    "add (does not)": lambda L, y, w: y + w,
    "sum then mul (a new tensor)": lambda L, y, w: w * y.sum(),
    "clone first": lambda L, y, w: y.clone() * w,
}


@pytest.mark.parametrize("use", sorted(USES))
def test_an_inference_tensor_saved_for_backward_raises_as_torch(use: str) -> None:
    outcomes = []
    for lib in (torch, ds):
        w = lib.ones(2, requires_grad=True)
        with lib.inference_mode():
            y = lib.tensor([1.0, 2.0]) * 2
        try:
            USES[use](lib, y, w).sum().backward()
            outcomes.append(("ok", w.grad.numpy().tolist()))
        except RuntimeError as e:
            outcomes.append(("raise", str(e).split(".")[0]))
    assert outcomes[1] == outcomes[0]
    if outcomes[0][0] == "raise":
        assert outcomes[1][1] == "Inference tensors cannot be saved for backward"


WRITES: dict[str, Callable[[Any, Any], Any]] = {
    "add_": lambda L, y: y.add_(1),
    "mul_": lambda L, y: y.mul_(2),
    "+=": lambda L, y: y.__iadd__(1),
    "copy_": lambda L, y: y.copy_(L.zeros(4)),
    "setitem": lambda L, y: y.__setitem__(0, 5.0),
    "zero_": lambda L, y: y.zero_(),
    "fill_": lambda L, y: y.fill_(3.0),
    "exp_": lambda L, y: y.exp_(),
    "clamp_": lambda L, y: y.clamp_(0, 0.5),
    "masked_fill_": lambda L, y: y.masked_fill_(L.tensor([True, False, True, False]), 0.0),
    "index_add_": lambda L, y: y.index_add_(0, L.tensor([0]), L.ones(1)),
    "uniform_": lambda L, y: y.uniform_(),
    "through a view": lambda L, y: y[1:].add_(1),
    "relu inplace": lambda L, y: L.nn.functional.relu(y, inplace=True),
    "resize_": lambda L, y: y.resize_(2),
    "unsqueeze_": lambda L, y: y.unsqueeze_(0),
    "requires_grad_": lambda L, y: y.requires_grad_(),
}


@pytest.mark.parametrize("grad_mode", ["enabled", "no_grad"])
@pytest.mark.parametrize("write", sorted(WRITES))
def test_an_inplace_write_outside_inference_mode_raises_as_torch(write: str, grad_mode: str) -> None:
    for lib in (torch, ds):
        with lib.inference_mode():
            y = lib.arange(4.0) + 0.5
        before = y.numpy().copy()
        with lib.no_grad() if grad_mode == "no_grad" else lib.enable_grad():
            with pytest.raises(RuntimeError, match="inference tensor outside InferenceMode is not allowed"):
                WRITES[write](lib, y)
        if lib is ds:  # (torch writes before it refuses some of these: downslope refuses first)
            np.testing.assert_array_equal(y.numpy(), before)
        with lib.inference_mode():  # inside inference mode the write is allowed
            if write != "requires_grad_":
                WRITES[write](lib, y)


def _modes(lib: Any) -> list[Any]:
    seen = []
    with lib.inference_mode():
        seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled()))
        with lib.enable_grad():
            w = lib.ones(1, requires_grad=True)
            seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled(), (w * 2).requires_grad))
            with lib.no_grad():
                seen.append(lib.is_grad_enabled())
            seen.append(lib.is_grad_enabled())
        with lib.set_grad_enabled(True):
            seen.append((lib.is_grad_enabled(), (w * 2).requires_grad))
        seen.append(lib.is_grad_enabled())
        with lib.inference_mode(False):
            seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled(), (w * 2).requires_grad))
            with lib.inference_mode():
                seen.append((lib.is_grad_enabled(), lib.zeros(1).is_inference()))
        with lib.no_grad():
            seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled()))

        @lib.enable_grad()
        def decorated() -> Any:
            return lib.is_grad_enabled()

        seen.append(decorated())
    seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled()))
    with lib.no_grad():
        with lib.inference_mode():
            with lib.enable_grad():
                seen.append(lib.is_grad_enabled())
        seen.append(lib.is_grad_enabled())
    return seen


def test_grad_mode_queries_inside_inference_mode_as_torch() -> None:
    assert _modes(ds) == _modes(torch)


def test_the_inference_grad_flag_is_per_thread() -> None:
    seen = []
    with ds.inference_mode(), ds.enable_grad():
        thread = threading.Thread(target=lambda: seen.append((ds.is_grad_enabled(), ds.is_inference_mode_enabled())))
        thread.start()
        thread.join()
        assert ds.is_grad_enabled()
    assert seen == [(True, False)]


def test_training_after_an_evaluation_in_inference_mode() -> None:
    # the model's own tensors stay normal ones: an evaluation in inference_mode, then training steps
    ds.manual_seed(0)
    model = ds.nn.Sequential(ds.nn.Linear(4, 8), ds.nn.BatchNorm1d(8), ds.nn.ReLU(inplace=True), ds.nn.Linear(8, 2))
    opt = ds.optim.Adam(model.parameters(), 1e-2)
    x, y = ds.randn(16, 4), ds.randint(0, 2, (16,))
    model.eval()
    with ds.inference_mode():
        model(x)
    model.train()
    for _ in range(2):
        loss = ds.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not any(p.is_inference() for p in model.parameters())
