"""Mistakes in custom Functions and hooks that torch 2.13 reports are reported here too, with torch's
message and class: a gradient for a non-tensor forward argument, save_for_backward of a non-tensor, a
post-accumulate-grad hook that returns a value, a tensor hook that changes the gradient's dtype."""

from __future__ import annotations

from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")
LIBS = (ds, torch)


def _grad_for_number(lib: Any) -> None:
    class Scale(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, k: float) -> Any:
            return x * k

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2, g  # the second should be None: k is a number

    x = lib.ones(2, requires_grad=True)
    Scale.apply(x, 2.0).sum().backward()


def _save_number(lib: Any) -> None:
    class Save(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x, 3)
            return x * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2

    Save.apply(lib.ones(2, requires_grad=True))


def _post_hook_returns(lib: Any) -> None:
    x = lib.ones(2, requires_grad=True)
    x.register_post_accumulate_grad_hook(lambda p: p.grad.mul_(0))
    (x * 2).sum().backward()


def _hook_changes_dtype(lib: Any) -> None:
    x = lib.ones(2, requires_grad=True)
    y = x * 2

    def to_double(g: Any) -> Any:
        return g.double()

    y.register_hook(to_double)
    y.sum().backward()


CASES = {
    "grad for a non-tensor": (_grad_for_number, RuntimeError, "returned a gradient different than None at position 2"),
    "save a non-tensor": (_save_number, TypeError, "save_for_backward can only save variables, but argument 1"),
    "post-accumulate hook value": (_post_hook_returns, RuntimeError, "post accumulate grad hooks should return None"),
    "hook changes dtype": (
        _hook_changes_dtype,
        RuntimeError,
        r"hook 'to_double' has changed the type of value \(was torch.FloatTensor got torch.DoubleTensor\)",
    ),
}


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("case", sorted(CASES))
def test_user_mistake_raises_as_torch(case: str, lib: Any) -> None:
    run, error, message = CASES[case]
    with pytest.raises(error, match=message):
        run(lib)


def test_hooks_and_functions_that_are_right_still_run() -> None:
    class Scale(ds.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, k: float) -> Any:
            ctx.save_for_backward(x, None)  # None may be saved, as in torch
            ctx.k = k
            return x * k

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * ctx.k, None

    x = ds.ones(2, requires_grad=True)
    x.register_post_accumulate_grad_hook(lambda p: None)
    y = Scale.apply(x, 3.0)
    y.register_hook(lambda g: g * 2)  # same dtype: fine
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_enable_grad_inside_inference_mode_records_nothing() -> None:
    for lib in LIBS:
        with lib.inference_mode(), lib.enable_grad():
            y = lib.ones(2, requires_grad=True) * 2
        assert y.requires_grad is False, lib.__name__
        with lib.inference_mode(), lib.inference_mode(False), lib.enable_grad():
            z = lib.ones(2, requires_grad=True) * 2
        assert z.requires_grad is True, lib.__name__


def test_vmap_rule_of_a_function_is_not_called_forward_runs_per_sample() -> None:
    # downslope's vmap is a loop: forward runs on each sample; the user's vmap rule is never called
    calls = []

    class Double(ds.autograd.Function):
        @staticmethod
        def forward(x: Any) -> Any:
            calls.append(tuple(x.shape))
            return x * 2

        @staticmethod
        def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
            pass

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2

        @staticmethod
        def vmap(info: Any, in_dims: Any, x: Any) -> Any:
            raise AssertionError("not called")

    out = ds.func.vmap(Double.apply)(ds.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert out.tolist() == [[2.0, 4.0], [6.0, 8.0], [10.0, 12.0]]
    assert calls == [(2,), (2,), (2,)]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_backward_with_empty_inputs_raises(lib: Any) -> None:
    x = lib.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="`inputs` argument to `backward\\(\\)` cannot be empty"):
        (x * 2).sum().backward(inputs=[])
    assert x.grad is None
