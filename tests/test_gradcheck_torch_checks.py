"""``ds.autograd.gradcheck`` runs PyTorch's checks beyond finite differences: a backward not multiplied
by grad_output, undefined output gradients, reentrancy, no differentiable output, batched gradients and
forward AD, each giving torch's verdict on the same function."""

from __future__ import annotations

import types
import warnings

import pytest
import torch

import downslope as ds
from downslope.errors import ArgumentError


def _functions(lib: types.ModuleType) -> dict[str, object]:
    class NotMultipliedByGrad(lib.autograd.Function):  # backward adds a constant: not linear in grad_output
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos() + 1e-4

    class NoneUnsafe(lib.autograd.Function):  # set_materialize_grads(False), but backward cannot take None
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2 + g2 * 3

    class NoneSafe(NoneUnsafe):
        @staticmethod
        def backward(ctx, g1, g2):
            if g1 is None and g2 is None:
                return None
            return (0 if g1 is None else g1 * 2) + (0 if g2 is None else g2 * 3)

    class Sin(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x.sin()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.x = inputs[0]

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos()

        @staticmethod
        def jvp(ctx, t):
            return t * ctx.x.cos()

    class WrongJvp(Sin):
        @staticmethod
        def jvp(ctx, t):
            return t * ctx.x.cos() * 2

    class Noisy(lib.autograd.Function):  # a backward that differs from call to call by ~1e-6
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos() * (1 + 1e-6 * lib.rand((), dtype=lib.float64))

    return {
        "not_multiplied": NotMultipliedByGrad.apply,
        "none_unsafe": NoneUnsafe.apply,
        "none_safe": NoneSafe.apply,
        "sin": Sin.apply,
        "wrong_jvp": WrongJvp.apply,
        "noisy": Noisy.apply,
        "detached": lambda x: x.detach() * 2,
        "step": lambda x: (x.detach() > 0).double(),
        "ordinary": lambda x: x.sin() * x,
    }


CASES = [
    ("none_unsafe", {}),
    ("not_multiplied", {"atol": 1e-3}),
    ("not_multiplied", {"atol": 1e-3, "check_undefined_grad": False}),
    ("none_unsafe", {"check_undefined_grad": False}),
    ("none_safe", {}),
    ("sin", {"check_forward_ad": True}),
    ("wrong_jvp", {"check_forward_ad": True}),
    ("wrong_jvp", {"check_forward_ad": True, "check_backward_ad": False}),
    ("noisy", {}),
    ("noisy", {"nondet_tol": 1e-4}),
    ("detached", {}),
    ("step", {}),
    ("ordinary", {"check_batched_grad": True}),
    ("ordinary", {"fast_mode": True}),
]


def _verdict(lib: types.ModuleType, name: str, options: dict[str, object]) -> object:
    """True, False, or the type of the error raised in the user's code (torch lets it through)."""
    lib.manual_seed(0)
    x = lib.tensor([0.3, 1.2, -0.7], dtype=lib.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return lib.autograd.gradcheck(_functions(lib)[name], (x,), raise_exception=False, **options)
        except TypeError:
            return TypeError


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{'-'.join(o)}" for n, o in CASES])
def test_verdict_is_torch_verdict(name: str, options: dict[str, object]) -> None:
    expected = _verdict(torch, name, options)
    assert _verdict(ds, name, options) is expected


def test_backward_not_multiplied_by_grad_output_is_named() -> None:
    x = ds.tensor([0.3, 1.2], dtype=ds.float64, requires_grad=True)
    with pytest.raises(ds.GradcheckError, match="backward not multiplied by grad_output"):
        ds.autograd.gradcheck(_functions(ds)["not_multiplied"], (x,), atol=1e-3)


def test_an_undefined_output_gradient_reaches_a_function_that_does_not_materialize_them() -> None:
    # torch's backward gets None for the output left undefined and fails in the user's code (TypeError)
    for lib in (torch, ds):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        with pytest.raises(TypeError, match="NoneType"):
            lib.autograd.gradcheck(_functions(lib)["none_unsafe"], (x,), raise_exception=False)


def test_no_differentiable_output_needs_zero_finite_differences() -> None:
    x = ds.tensor([0.3, 1.2], dtype=ds.float64, requires_grad=True)
    with pytest.raises(ds.GradcheckError, match="expected to be zero"):
        ds.autograd.gradcheck(lambda t: t.detach() * 2, (x,))


def test_options_that_leave_nothing_to_check_are_refused() -> None:
    x = ds.tensor([0.3], dtype=ds.float64, requires_grad=True)
    with pytest.raises(ArgumentError, match="check_forward_ad or check_backward_ad"):
        ds.autograd.gradcheck(ds.sin, (x,), check_backward_ad=False)
    with pytest.raises(ArgumentError, match="check_batched_grad=True requires check_backward_ad"):
        ds.autograd.gradcheck(ds.sin, (x,), check_backward_ad=False, check_forward_ad=True, check_batched_grad=True)
    with pytest.raises(ArgumentError, match="check_batched_forward_grad=True requires check_forward_ad"):
        ds.autograd.gradcheck(ds.sin, (x,), check_batched_forward_grad=True)


@pytest.mark.parametrize(
    "options", [{"check_fwd_over_rev": True}, {"check_batched_grad": True}, {"check_undefined_grad": False}]
)
def test_gradgradcheck_passes_torch_options_on(options: dict[str, object]) -> None:
    verdicts = []
    for lib in (torch, ds):
        x = lib.tensor([0.3, 1.2], dtype=lib.float64, requires_grad=True)
        verdicts.append(lib.autograd.gradgradcheck(lambda t: t.sin() * t, (x,), **options))
    assert verdicts == [True, True]
