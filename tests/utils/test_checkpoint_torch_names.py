"""utils.checkpoint's other PyTorch names against torch.utils.checkpoint: context_fn (a forward and a
recompute context), noop_context_fn, selective checkpointing (same results; the saving is not
selective here), set_checkpoint_early_stop, and the reentrant variant with no input requiring grad."""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.utils.checkpoint as dcp

torch = pytest.importorskip("torch")
import torch.utils.checkpoint as tcp  # noqa: E402

W = np.random.default_rng(0).standard_normal((3, 3))
X = np.random.default_rng(1).standard_normal((2, 3))


def _x(lib: Any, requires_grad: bool = True) -> Any:
    return lib.tensor(X, dtype=lib.float64, requires_grad=requires_grad)


def _block(lib: Any) -> Any:
    block = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.Tanh(), lib.nn.Linear(3, 3)).double()
    with lib.no_grad():
        for layer in (block[0], block[2]):
            layer.weight.copy_(lib.tensor(W, dtype=lib.float64))
            layer.bias.fill_(0.25)
    return block


def test_context_fn_enters_the_forward_context_then_the_recompute_context_like_torch() -> None:
    def run(lib: Any, cp: Any) -> Any:
        events: list[str] = []

        @contextlib.contextmanager
        def marked(name: str) -> Any:
            events.append(f"enter {name}")
            try:
                yield
            finally:  # torch leaves its recompute early, by an exception through the context
                events.append(f"exit {name}")

        block = _block(lib)
        x = _x(lib)
        y = cp.checkpoint(block, x, use_reentrant=False, context_fn=lambda: (marked("forward"), marked("recompute")))
        events.append("backward")
        (y**2).sum().backward()
        return events, x.grad.numpy().copy(), block[0].weight.grad.numpy().copy()

    ours, theirs = run(ds, dcp), run(torch, tcp)
    assert ours[0] == theirs[0] == ["enter forward", "exit forward", "backward", "enter recompute", "exit recompute"]
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_selective_checkpoint_contexts_give_the_gradients_of_a_direct_call() -> None:
    def grads(lib: Any, cp: Any, wrap: bool) -> Any:
        block = _block(lib)
        x = _x(lib)
        policy = functools.partial(
            cp.create_selective_checkpoint_contexts, lambda ctx, op, *a, **k: cp.CheckpointPolicy.MUST_SAVE
        )
        y = cp.checkpoint(block, x, use_reentrant=False, context_fn=policy) if wrap else block(x)
        (y**3).sum().backward()
        return [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in block.parameters()]

    direct = grads(ds, dcp, False)
    for got in (grads(ds, dcp, True), grads(torch, tcp, True)):
        for a, b in zip(got, direct):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert [p.name for p in dcp.CheckpointPolicy] == [p.name for p in tcp.CheckpointPolicy]
    assert [p.value for p in dcp.CheckpointPolicy] == [p.value for p in tcp.CheckpointPolicy]
    for cp in (dcp, tcp):
        with pytest.raises(TypeError, match="policy_fn_or_list must be either a function or a list of ops"):
            cp.create_selective_checkpoint_contexts(3)


def test_noop_context_fn_and_early_stop_switch_exist_as_torchs() -> None:
    for lib, cp in ((ds, dcp), (torch, tcp)):
        fwd, rec = cp.noop_context_fn()
        with fwd, rec, cp.set_checkpoint_early_stop(False):
            y = cp.checkpoint(_block(lib), _x(lib), use_reentrant=False)
        y.sum().backward()


def test_reentrant_checkpoint_without_an_input_requiring_grad_trains_nothing_as_torch() -> None:
    for lib, cp in ((ds, dcp), (torch, tcp)):
        block = _block(lib)
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
            y = cp.checkpoint(block, _x(lib, False), use_reentrant=True)
        assert not y.requires_grad and block[0].weight.grad is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z = cp.checkpoint(block, _x(lib), use_reentrant=True)
        z.sum().backward()
        assert block[0].weight.grad is not None


def test_reentrant_refuses_context_fn_and_keyword_arguments_as_torch() -> None:
    for lib, cp in ((ds, dcp), (torch, tcp)):
        x = _x(lib)
        with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
            cp.checkpoint(_block(lib), x, use_reentrant=True, context_fn=cp.noop_context_fn.__call__)
        with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
            cp.checkpoint(lambda x, scale: x * scale, x, use_reentrant=True, scale=2.0)
        with pytest.raises(ValueError, match="determinism_check should be one of"):
            cp.checkpoint(_block(lib), x, use_reentrant=False, determinism_check="strict")
