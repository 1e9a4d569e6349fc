"""var/std (and var_mean/std_mean) when N - correction <= 0: torch's NaN/inf values and NaN
gradient, and its UserWarning under the function's name instead of NumPy's RuntimeWarnings."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

MESSAGE = (
    "degrees of freedom is <= 0. Correction should be strictly less than the reduction factor "
    "(input numel divided by output numel)."
)

CASES: list[tuple[str, Callable[[Any], Any]]] = [
    ("var", lambda lib: lib.tensor([1.0]).var()),
    ("std", lambda lib: lib.tensor([1.0]).std()),
    ("var", lambda lib: lib.tensor([1.0, 2.0]).var(correction=2)),
    ("std", lambda lib: lib.tensor([1.0, 2.0]).std(correction=3)),
    ("var", lambda lib: lib.tensor([[1.0, 2.0], [3.0, 3.0]]).var(1, correction=2)),
    ("var", lambda lib: lib.ones(2, 1).var(1)),
    ("var", lambda lib: lib.ones(0).var()),
    ("std", lambda lib: lib.ones(2, 0).std(1, correction=0)),
    ("var", lambda lib: lib.tensor(3.0).var()),
    ("var_mean", lambda lib: lib.var_mean(lib.tensor([1.0]))[0]),
    ("std_mean", lambda lib: lib.std_mean(lib.tensor([[1.0], [2.0]]), 1)[0]),
    ("std", lambda lib: lib.tensor([1.0], dtype=lib.float16).std()),
]


def _caught(fn: Callable[[], Any]) -> tuple[Any, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, caught


@pytest.mark.parametrize(("name", "fn"), CASES)
def test_values_and_the_warning_are_torchs(name: str, fn: Callable[[Any], Any]) -> None:
    ours, caught = _caught(lambda: fn(ds))
    theirs, _ = _caught(lambda: fn(torch))
    np.testing.assert_array_equal(ours.numpy().astype(np.float64), theirs.numpy().astype(np.float64))
    assert ours.dtype == getattr(ds, str(theirs.dtype).split(".")[-1])
    assert [str(w.message) for w in caught] == [f"{name}(): {MESSAGE}"]
    assert all(w.category is UserWarning for w in caught)  # none of NumPy's RuntimeWarnings


@pytest.mark.parametrize("kwargs", [{}, {"correction": 3}])
@pytest.mark.parametrize("name", ["var", "std"])
def test_the_gradient_is_nan_as_torchs_without_numpy_warnings(name: str, kwargs: dict[str, Any]) -> None:
    x = ds.tensor([1.0] if not kwargs else [1.0, 2.0], requires_grad=True)
    t = torch.tensor(x.detach().numpy(), requires_grad=True)
    (_, caught) = _caught(lambda: getattr(x, name)(**kwargs).backward())
    _caught(lambda: getattr(t, name)(**kwargs).backward())
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    assert [w.category for w in caught] == [UserWarning]


def test_a_gradient_graph_through_no_degrees_of_freedom_gives_torchs_values() -> None:
    x = ds.tensor([1.0, 2.0], dtype=ds.float64, requires_grad=True)
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        (g,) = ds.autograd.grad(x.var(correction=2), x, create_graph=True)
        (tg,) = torch.autograd.grad(t.var(correction=2), t, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), tg.detach().numpy())


def test_enough_degrees_of_freedom_give_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds.tensor([1.0, 3.0]).var().item() == 2.0
        assert ds.tensor([1.0]).var(correction=0).item() == 0.0
        ds.std_mean(ds.tensor([1.0, 2.0]))
