"""Checkpoint's checks as torch 2.13's: a second backward without retain_graph raises (it added the
gradient again), an in-place change of an input before backward raises, determinism_check="none" skips
the recompute's shape check, and leaving use_reentrant out warns with torch's text and category."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
LIBS = (ds, torch)


def _checkpoint(lib: Any) -> Any:
    return importlib.import_module(lib.__name__ + ".utils.checkpoint")


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_second_backward_without_retain_graph_raises(lib: Any) -> None:
    x = lib.ones(3, requires_grad=True)
    y = _checkpoint(lib).checkpoint(lambda t: t.exp(), x, use_reentrant=False).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, np.e), rtol=1e-6)  # not doubled


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_retain_graph_allows_a_second_backward(lib: Any) -> None:
    x = lib.ones(3, requires_grad=True)
    y = _checkpoint(lib).checkpoint(lambda t: t.exp(), x, use_reentrant=False).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2 * np.e), rtol=1e-6)


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_input_changed_in_place_before_backward_raises(lib: Any) -> None:
    x = lib.ones(3, requires_grad=True)
    a = x + 1
    y = _checkpoint(lib).checkpoint(lambda t: t.exp(), a, use_reentrant=False)
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_determinism_check_none_skips_the_shape_check(lib: Any) -> None:
    calls = [0]

    def f(t: Any) -> Any:
        calls[0] += 1
        return t * 2 if calls[0] == 1 else (t * 2).reshape(3, 1)

    x = lib.ones(3, requires_grad=True)
    _checkpoint(lib).checkpoint(f, x, use_reentrant=False, determinism_check="none").sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_determinism_check_default_still_refuses_another_shape() -> None:
    calls = [0]

    def f(t: Any) -> Any:
        calls[0] += 1
        return t * 2 if calls[0] == 1 else (t * 2).reshape(3, 1)

    x = ds.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="recomputed output 0 has shape"):
        _checkpoint(ds).checkpoint(f, x, use_reentrant=False).sum().backward()


@pytest.mark.parametrize("name", ["checkpoint", "checkpoint_sequential"])
def test_use_reentrant_left_out_warns_as_torch(name: str) -> None:
    messages = []
    for lib in LIBS:
        lin = lib.nn.Linear(2, 2)
        x = lib.ones(1, 2, requires_grad=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if name == "checkpoint":
                _checkpoint(lib).checkpoint(lin, x)
            else:
                _checkpoint(lib).checkpoint_sequential(lib.nn.Sequential(lin, lib.nn.Tanh()), 2, x)
        found = [(w.category, str(w.message)) for w in caught if "use_reentrant" in str(w.message)]
        assert len(found) == 1, (lib.__name__, found)
        messages.append(found[0])
    assert messages[0] == messages[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _checkpoint(ds).checkpoint(ds.nn.Linear(2, 2), ds.ones(1, 2), use_reentrant=False)
