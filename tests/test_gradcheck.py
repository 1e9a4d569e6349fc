"""ds.gradcheck: passes correct gradients, catches wrong or missing ones, and explains itself."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

import downslope as ds
from downslope.tensor import record_op


def _square_with_wrong_gradient(x):
    return record_op(x.array**2, (x,), lambda g, y, args, saved, needs, xp: (g * 3 * args[0],))


def test_passes_for_correct_gradients_of_several_inputs_and_non_scalar_output():
    a, b = ds.randn(3, 2), ds.randn(2, 4)
    report = ds.gradcheck(lambda x, y: ds.tanh(x @ y) * 2.0, [a, b])
    assert report.passed
    assert [r.index for r in report.inputs] == [0, 1]
    assert all(r.max_abs_error < 1e-7 for r in report.inputs)
    assert "passed" in str(report)


def test_catches_a_wrong_vector_jacobian_product():
    x = ds.tensor([0.5, -1.0, 2.0])
    with pytest.raises(ds.GradcheckError, match="input 0"):
        ds.gradcheck(_square_with_wrong_gradient, [x])
    report = ds.gradcheck(lambda t: _square_with_wrong_gradient(t).sum(), [x], raise_exception=False)
    assert not report.passed and "FAILED" in str(report)
    # of sum(x^2) the analytic gradient is 3x, the true one 2x: the largest error is |x| at the element 2.0
    assert report.inputs[0].max_abs_error == pytest.approx(2.0, rel=1e-6)
    assert report.inputs[0].worst_element == (2,)


def test_a_report_is_true_only_when_it_passed():
    x = ds.tensor([0.5, -1.0, 2.0])
    assert not ds.gradcheck(lambda t: _square_with_wrong_gradient(t).sum(), [x], raise_exception=False)
    assert ds.gradcheck(lambda t: (t * t).sum(), [x])


def test_torch_autograd_gradcheck_returns_a_bool_as_pytorch_does():
    x = ds.tensor([0.5, -1.0, 2.0], dtype=ds.float64, requires_grad=True)
    good = ds.autograd.gradcheck(lambda t: t * t, (x,), eps=1e-6, atol=1e-5, nondet_tol=0.0, fast_mode=False)
    assert good is True and ds.autograd.gradcheck(lambda t: (t.sin(), t * 2), (x,)) is True
    assert ds.autograd.gradcheck(_square_with_wrong_gradient, (x,), raise_exception=False) is False
    # one wrong part of a tuple output is caught
    assert (
        ds.autograd.gradcheck(lambda t: (t * 2, _square_with_wrong_gradient(t)), (x,), raise_exception=False) is False
    )
    with pytest.raises(ds.GradcheckError, match="input 0"):
        ds.autograd.gradcheck(_square_with_wrong_gradient, (x,))


def test_torch_autograd_gradgradcheck_checks_second_derivatives():
    x = ds.tensor([0.5, -1.0, 2.0], dtype=ds.float64, requires_grad=True)
    assert ds.autograd.gradgradcheck(lambda t: t.tanh() * t, (x,)) is True

    class FirstOnly(ds.autograd.Function):  # a right first derivative whose own derivative is lost
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t**3

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return g * 3 * t.detach() ** 2

    assert ds.autograd.gradcheck(FirstOnly.apply, (x,)) is True
    assert ds.autograd.gradgradcheck(FirstOnly.apply, (x,), raise_exception=False) is False
    with pytest.raises(ds.GradcheckError):
        ds.autograd.gradgradcheck(FirstOnly.apply, (x,))
    with ds.autograd.inference_mode():
        assert not (x * 2).requires_grad


def test_catches_a_missing_gradient():
    report = ds.gradcheck(lambda x: x.detach() * x, [ds.tensor([1.0, 2.0])], raise_exception=False)
    assert not report.passed


def test_function_that_ignores_its_input_passes_with_zero_gradient():
    assert ds.gradcheck(lambda x: ds.tensor(1.0, dtype="float64") + 0 * x.sum(), [ds.randn(2)]).passed


def test_integer_inputs_are_passed_through_and_callers_inputs_untouched():
    x = ds.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    idx = ds.tensor([[2, 0], [1, 1]])
    before = x.numpy().copy()
    report = ds.gradcheck(lambda t, i: t.gather(1, i) ** 2, [x, idx])
    assert report.passed and [r.index for r in report.inputs] == [0]
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.dtype == np.float32 and x.grad is None


def test_accepts_numpy_arrays_and_a_single_tensor():
    assert ds.gradcheck(lambda t: t.exp().sum(), np.array([0.1, 0.2])).passed
    assert ds.gradcheck(lambda t: t.sin(), ds.randn(3)).passed


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="floating"):
        ds.gradcheck(lambda i: i * 2, [ds.tensor([1, 2])])
    with pytest.raises(TypeError, match="must return a tensor"):
        ds.gradcheck(lambda t: 3.0, [ds.randn(2)])
    with pytest.raises(TypeError, match="float32"):
        ds.gradcheck(lambda t: t.astype("float32"), [ds.randn(2)])


@pytest.mark.parametrize("module", ["downslope.gradcheck"])
def test_docstring_examples_run(module):
    # pytest also collects them (--doctest-modules over src/downslope); this keeps them checked in this file's run
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_checks_second_derivatives_through_a_gradient_function():
    # gradcheck of x -> grad f(x) compares the Hessian-vector products with finite differences of grad f
    def loss(w):
        return (ds.tanh(w @ ds.tensor([[0.5, -1.0], [2.0, 0.3]], dtype="float64")) ** 2).sum()

    assert ds.gradcheck(ds.grad(loss), [ds.randn(3, 2)]).passed


def test_gradcheck_error_is_a_runtime_error_as_torchs():
    pytest.importorskip("torch")
    from torch.autograd.gradcheck import GradcheckError as TorchGradcheckError

    assert issubclass(TorchGradcheckError, RuntimeError)
    assert issubclass(ds.GradcheckError, RuntimeError) and issubclass(ds.GradcheckError, AssertionError)
    x = ds.tensor([0.5, -1.0, 2.0], dtype=ds.float64, requires_grad=True)
    with pytest.raises(RuntimeError):
        ds.autograd.gradcheck(_square_with_wrong_gradient, (x,))


def test_torch_gradcheck_passes_non_tensor_inputs_and_checks_only_those_requiring_grad():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(3), rng.standard_normal(3)

    def fn(x, w, b, k):
        out = x * w.detach() if x.requires_grad else x * w  # not differentiable in w: w is not checked
        return out * k if b is None else out + b

    for lib in (ds, torch):
        inp = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        weight = lib.tensor(w, dtype=lib.float64)
        assert lib.autograd.gradcheck(fn, (inp, weight, None, 3)) is True
        assert lib.autograd.gradgradcheck(lambda a, b, c: a.sin() * b, (inp, weight, None)) is True
        with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
            lib.autograd.gradcheck(fn, (inp.detach(), weight, None, 3))
    # ds.gradcheck (the report) differentiates every floating input, and passes None along too
    report = ds.gradcheck(lambda a, b: a.exp() if b is None else a, [ds.randn(2), None])
    assert report.passed and [r.index for r in report.inputs] == [0]


def test_gradgradcheck_of_a_once_differentiable_function_fails_as_torchs():
    """No analytic second derivative: False with raise_exception=False, a GradcheckError otherwise (as torch,
    which finds that derivative zero against the finite differences)."""
    torch = pytest.importorskip("torch")
    results = []
    for lib in (ds, torch):
        once = importlib.import_module(lib.__name__ + ".autograd.function").once_differentiable

        class Sin(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x.sin()

            @staticmethod
            @once
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * x.cos()

        x = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64, requires_grad=True)
        results.append(lib.autograd.gradgradcheck(Sin.apply, (x,), raise_exception=False))
        assert lib.autograd.gradcheck(Sin.apply, (x,), raise_exception=False) is True
        error = importlib.import_module(
            "downslope.gradcheck" if lib is ds else "torch.autograd.gradcheck"
        ).GradcheckError
        with pytest.raises(error):
            lib.autograd.gradgradcheck(Sin.apply, (x,))
    assert results == [False, False]
