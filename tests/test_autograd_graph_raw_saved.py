"""grad_fn's ``_saved_exponent`` (pow's exponent) and ``_raw_saved_<name>`` objects, whose
``register_hooks(pack, unpack)`` packs one saved value (the saved-tensors-hooks tutorial), as torch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_X = np.array([1.0, -2.0, 3.0], dtype=np.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib, x: x.pow(2),
        lambda lib, x: x.pow(2.0),
        lambda lib, x: x**2.5,
        lambda lib, x: x.pow(lib.tensor([1.0, 2.0, 3.0])),
        lambda lib, x: 2**x,
        lambda lib, x: x.pow(x),
    ],
    ids=["int", "float", "fraction", "tensor", "number-base", "both"],
)
def test_saved_exponent_matches_torch(make: Any) -> None:
    def run(lib: Any) -> Any:
        x = lib.tensor(_X, requires_grad=True)
        found = make(lib, x).grad_fn._saved_exponent
        return found if not hasattr(found, "detach") else found.detach().numpy().tolist()

    ours, theirs = run(ds), run(torch)
    assert ours == theirs
    assert type(ours) is type(theirs)


def test_saved_exponent_is_missing_on_other_nodes() -> None:
    x = ds.tensor(_X, requires_grad=True)
    with pytest.raises(AttributeError, match="_saved_exponent"):
        (x * 2).grad_fn._saved_exponent  # noqa: B018


def test_raw_saved_self_register_hooks_as_the_tutorial() -> None:
    """pack runs at once; backward and _saved_self read what unpack returns."""

    def run(lib: Any) -> tuple[list[str], Any, Any]:
        calls: list[str] = []
        x = lib.tensor(_X, requires_grad=True)
        y = x.pow(2)

        def pack(t: Any) -> Any:
            calls.append("pack")
            return t

        def unpack(t: Any) -> Any:
            calls.append("unpack")
            return t * 3.0

        y.grad_fn._raw_saved_self.register_hooks(pack, unpack)
        seen = y.grad_fn._saved_self.detach().numpy().tolist()
        y.sum().backward()
        return calls, seen, x.grad.numpy().tolist()

    assert run(ds) == run(torch)


def test_raw_saved_result_register_hooks() -> None:
    def run(lib: Any) -> Any:
        x = lib.tensor(_X, requires_grad=True)
        y = x.exp()
        y.grad_fn._raw_saved_result.register_hooks(lambda t: t, lambda t: t * 2.0)
        y.sum().backward()
        return x.grad.numpy()

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-6)


def test_register_hooks_refusals_match_torch() -> None:
    def run(lib: Any) -> list[str]:
        out = []
        x = lib.tensor(_X, requires_grad=True)
        y = x.pow(2)
        raw = y.grad_fn._raw_saved_self
        raw.register_hooks(lambda t: t, lambda t: t)
        for attempt in (
            lambda: raw.register_hooks(lambda t: t, lambda t: t),  # a second pair
            lambda: (x * 1).pow(2).grad_fn._raw_saved_self.register_hooks(1, lambda t: t),  # not callable
        ):
            try:
                attempt()
                out.append("ok")
            except (RuntimeError, TypeError) as e:
                out.append(("TypeError " if isinstance(e, TypeError) else "RuntimeError ") + str(e)[:40])
        z = x.pow(2)
        z.sum().backward()
        try:
            z.grad_fn._raw_saved_self.register_hooks(lambda t: t, lambda t: t)  # freed
            out.append("ok")
        except RuntimeError as e:
            out.append(str(e)[:60])
        return out

    ours, theirs = run(ds), run(torch)
    assert [s[:15] for s in ours] == [s[:15] for s in theirs]
    assert ours[0] == theirs[0] and ours[2] == theirs[2]


def test_raw_saved_attribute_missing_where_nothing_is_saved() -> None:
    x = ds.tensor(_X, requires_grad=True)
    with pytest.raises(AttributeError, match="_raw_saved_result"):
        (x * 2).grad_fn._raw_saved_result  # noqa: B018


# ---------------------------------------------------------------- allow_mutation_on_saved_tensors
@pytest.mark.parametrize(
    "program",
    [
        lambda lib, x: (lambda y: (y * y, y.add_(1)))(x.clone())[0],
        lambda lib, x: (lambda y: (y.sin(), y.mul_(3), y.exp_())[0])(x * 2),
        lambda lib, x: (lambda y: (y.pow(3) + y, y.zero_())[0])(x.clone()),
    ],
    ids=["mul", "sin-twice", "pow-zeroed"],
)
def test_allow_mutation_on_saved_tensors_backward_uses_the_saved_values(program: Any) -> None:
    def run(lib: Any) -> Any:
        with lib.autograd.graph.allow_mutation_on_saved_tensors():
            x = lib.tensor(_X, requires_grad=True)
            program(lib, x).sum().backward()
        return x.grad.numpy()

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-6)


def test_without_allow_mutation_the_same_program_raises() -> None:
    x = ds.tensor(_X, requires_grad=True)
    y = x.clone()
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
