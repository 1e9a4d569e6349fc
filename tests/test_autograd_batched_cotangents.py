"""autograd.batched_cotangent_grads: a batch of cotangents carried through one walk of the graph (what
func.jacrev and func.jacfwd use for a Jacobian's rows or columns) gives, slice for slice, the gradients
of one backward pass per cotangent; where a walk cannot be batched it says so (None) and nothing runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import autograd
from downslope.devices import to_host

_RNG = np.random.default_rng(0)


def _one_at_a_time(root: Any, cotangents: np.ndarray, inputs: list[Any]) -> list[np.ndarray]:
    rows = [
        autograd.grad(root, inputs, ds.tensor(c, dtype=root.dtype), retain_graph=True, allow_unused=True)
        for c in cotangents
    ]
    return [
        np.stack([np.zeros(tuple(t.shape)) if r[i] is None else r[i].numpy() for r in rows])
        for i, t in enumerate(inputs)
    ]


def _on(like: Any, values: np.ndarray) -> Any:
    """``values`` as an array where ``like``'s values are (the strict stand-in device in that test run)."""
    return ds.tensor(values, dtype=like.dtype).array


def _leaf(*shape: int) -> Any:
    return ds.tensor(_RNG.standard_normal(shape), dtype=ds.float64, requires_grad=True)


PROGRAMS: dict[str, Callable[[Any, Any], Any]] = {
    "vector @ vector": lambda a, b: (a[0] @ b[0]).reshape(1),
    "vector @ matrix": lambda a, b: (a[0] @ b).tanh(),
    "matrix @ vector": lambda a, b: 3 - (b @ a[1]) * 2,
    "matrix @ matrix": lambda a, b: -(a @ b).reshape(-1)[1:5],
    "batched @ broadcast": lambda a, b: (a.reshape(1, 2, 3) @ b.expand(4, 3, 3)).sum_to_size(2, 3) + a,
    "broadcast add, mul, sub": lambda a, b: (a * b[:1] - b[1:2] + a[1]) * a,
    "getitem and slices": lambda a, b: a[:, ::2].reshape(-1) * b[0, 1:][[True, False]].sum() - a[1, -1],
    "linear": lambda a, b: ds.nn.functional.linear(a, b, b[0]).tanh(),
    "relu": lambda a, b: (a @ b).relu() * a[0].relu(),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_batched_walk_equals_one_pass_per_cotangent(name: str) -> None:
    a, b = _leaf(2, 3), _leaf(3, 3)
    a1, b1 = a * 1.0, b * 1.0  # non-leaf inputs, as the transforms' stand-ins
    out = PROGRAMS[name](a1, b1)
    cotangents = _RNG.standard_normal((4, *out.shape))
    found = autograd.batched_cotangent_grads(out, _on(out, cotangents), [a1, b1])
    expected = _one_at_a_time(out, cotangents, [a1, b1])
    if name == "getitem and slices":  # a boolean mask is advanced indexing: taken one at a time
        assert found is None
        return
    assert found is not None
    for f, e in zip(found, expected):
        np.testing.assert_allclose(to_host(f), e, rtol=1e-13, atol=1e-14)


def test_an_unused_input_gets_zeros_in_its_dtype() -> None:
    a, c = _leaf(3), ds.tensor([1.0, 2.0], requires_grad=True)
    out = a * 2
    found = autograd.batched_cotangent_grads(out, _on(out, np.eye(3)), [a, c])
    assert found is not None
    np.testing.assert_array_equal(to_host(found[0]), 2 * np.eye(3))
    assert found[1].shape == (3, 2) and found[1].dtype == np.float32 and not to_host(found[1]).any()


def test_gradients_come_back_in_the_inputs_dtype_and_writable() -> None:
    a = ds.tensor([1.0, 2.0], requires_grad=True)
    out = a.expand(3, 2)  # a broadcast view's gradient is a sum, not a view
    found = autograd.batched_cotangent_grads(out, _on(out, np.ones((2, 3, 2))), [a])
    assert found is not None and found[0].dtype == np.float32 and getattr(found[0].flags, "writeable", True)
    np.testing.assert_array_equal(to_host(found[0]), np.full((2, 2), 3.0))


@pytest.mark.parametrize(
    "case",
    ["rule without a batched form", "hook on a tensor", "grad_fn hook", "written in place since", "freed", "half"],
)
def test_walks_that_cannot_be_batched_say_so(case: str) -> None:
    a = _leaf(3)
    if case == "half":
        a = ds.tensor([1.0, 2.0, 3.0], dtype=ds.float16, requires_grad=True)
    h = a * 2
    out = h.cumsum(0) if case == "rule without a batched form" else h * h
    if case == "hook on a tensor":
        h.register_hook(lambda g: g * 10)
    elif case == "grad_fn hook":
        out.grad_fn.register_hook(lambda gi, go: None)
    elif case == "written in place since":
        out = h * 3
        h.mul_(1.0)
        out = out * 1.0
    elif case == "freed":
        out.sum().backward()
    assert autograd.batched_cotangent_grads(out, _on(out, np.eye(3)), [a]) is None


def test_jacrev_with_a_hook_on_the_way_runs_the_hook_per_row() -> None:
    """The fallback: hooks see each row, as torch's (unbatched) reverse passes do."""
    seen = []

    def f(x: Any) -> Any:
        h = x * 2
        h.register_hook(lambda g: seen.append(1) or g * 10)
        return h.tanh()

    jac = ds.func.jacrev(f)(ds.tensor([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(jac.numpy(), np.diag(20 * (1 - np.tanh([0.2, 0.4, 0.6]) ** 2)), rtol=1e-6)
    assert len(seen) == 3
