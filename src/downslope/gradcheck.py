"""Finite-difference gradient checking in float64.

``gradcheck(f, inputs)`` perturbs each input element by +-eps (central differences), compares the
numerical derivative of ``sum(f(*inputs) * v)`` (``v`` a fixed random projection, so non-scalar
outputs work too) with what backpropagation gives, and reports the largest errors per input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import autograd
from .autograd import enable_grad
from .devices import device_of, to_device, to_host
from .errors import ArgumentError, ArgumentTypeError
from .ops.shape import cat
from .tensor import Tensor, to_array, wrap_array


class GradcheckError(AssertionError, RuntimeError):
    """The analytic gradient disagrees with finite differences (PyTorch's ``GradcheckError`` is a
    RuntimeError; it is an AssertionError here too)."""


@dataclass
class InputReport:
    index: int
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    worst_element: tuple[int, ...] | None


@dataclass
class GradcheckReport:
    """Per-input errors of the analytic gradient against central finite differences."""

    inputs: list[InputReport] = field(default_factory=list)
    passed: bool = True

    def __bool__(self) -> bool:
        """True when every input passed: ``if not ds.gradcheck(..., raise_exception=False):`` works."""
        return self.passed

    def __str__(self) -> str:
        lines = [f"gradcheck {'passed' if self.passed else 'FAILED'}"]
        for r in self.inputs:
            lines.append(
                f"  input {r.index} shape {r.shape}: max abs error {r.max_abs_error:.3e}, "
                f"max rel error {r.max_rel_error:.3e}" + (f" at {r.worst_element}" if r.worst_element else "")
            )
        return "\n".join(lines)


def gradcheck(
    f: Callable[..., Tensor],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> GradcheckReport:
    """Check ``f``'s gradients against central finite differences, in float64.

    Every floating input is copied to float64 and differentiated; other inputs (integers, None,
    any object) are passed as they are. An element fails when ``|analytic - numeric| > atol + rtol * |numeric|``.

    Example:
        >>> import downslope as ds
        >>> report = ds.gradcheck(lambda x: (x.tanh() * x).sum(), [ds.randn(3, 2)])
        >>> report.passed
        True
    """
    return _gradcheck(f, inputs, eps, atol, rtol, raise_exception, seed, only_requiring_grad=False)


def _array_of(x: Any) -> Any:
    """The array of a tensor-like input; None for what is passed to ``f`` as it is (None, numbers, objects)."""
    if isinstance(x, Tensor):
        return x.array
    if x is None or isinstance(x, (bool, int, float, complex, str)):
        return None
    try:
        return to_array(x)
    except (ArgumentTypeError, ArgumentError, TypeError, ValueError):
        return None


def _gradcheck(
    f: Callable[..., Tensor],
    inputs: Any,
    eps: float,
    atol: float,
    rtol: float,
    raise_exception: bool,
    seed: int,
    *,
    only_requiring_grad: bool,
) -> GradcheckReport:
    """:func:`gradcheck`; with ``only_requiring_grad`` (PyTorch's rule) only the floating tensors that
    require grad are differentiated (the other floating ones are still computed with in float64)."""
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = [inputs]
    args: list[Any] = []
    wrt: list[int] = []
    for i, x in enumerate(inputs):
        arr = _array_of(x)
        if arr is not None and arr.dtype.kind == "f":
            copy = wrap_array(arr.astype(np.float64))  # a copy, on arr's device
            if not only_requiring_grad or (isinstance(x, Tensor) and x.requires_grad):
                copy.requires_grad_(True)
                wrt.append(i)
            args.append(copy if isinstance(x, Tensor) or not only_requiring_grad else x)
        else:
            args.append(x)
    if not wrt and only_requiring_grad:
        raise ArgumentError(
            "gradcheck expects at least one input tensor to require gradient, but none of them have requires_grad=True."
        )
    if not wrt:
        raise ArgumentError("gradcheck: none of the inputs is a floating tensor to differentiate")

    with enable_grad():
        out = f(*args)
    if not isinstance(out, Tensor):
        raise ArgumentTypeError(f"gradcheck: f must return a tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise ArgumentTypeError(
            f"gradcheck: f returned {out.dtype} from float64 inputs; something in f casts to lower precision"
        )
    # The projection is drawn on the host (the same numbers on every device) and copied to out's device.
    host_projection = np.random.default_rng(seed).standard_normal(out.shape) if out.array.size > 1 else None
    if host_projection is None:
        host_projection = np.ones(out.shape)  # host: drawn here, copied to the device below
    projection = to_device(host_projection, device_of(out.array))

    def objective() -> float:
        with enable_grad():
            value = f(*args)
        return float(to_host((value.array * projection).sum()))  # host: the finite difference is a host number

    if out.requires_grad:
        try:
            analytic = autograd.grad([out], [args[i] for i in wrt], grad_outputs=[projection], allow_unused=True)
        except autograd._TwiceDifferentiatedError as exc:
            # gradgradcheck of a @once_differentiable Function: no analytic second derivative, a failed
            # check (torch's finds its second derivative zero and reports a mismatch), not a crash
            if raise_exception:
                raise GradcheckError(f"gradcheck: no analytic gradient to compare: {exc}") from exc
            return GradcheckReport(passed=False)
    else:
        analytic = tuple(None for _ in wrt)

    report = GradcheckReport()
    for k, i in enumerate(wrt):
        x = args[i]
        numeric = np.zeros(x.shape)  # host: finite differences are compared on the host
        flat = x.array.reshape(-1)
        num_flat = numeric.reshape(-1)
        for j in range(flat.size):
            orig = flat[j].copy()  # a device namespace gives a 0-d view, which the writes below would change
            flat[j] = orig + eps
            plus = objective()
            flat[j] = orig - eps
            minus = objective()
            flat[j] = orig
            num_flat[j] = (plus - minus) / (2 * eps)
        a = np.zeros_like(numeric) if analytic[k] is None else to_host(analytic[k].array)  # type: ignore[union-attr]
        err = np.abs(a - numeric)
        rel = err / np.maximum(np.abs(numeric), 1e-12)
        bad = err > atol + rtol * np.abs(numeric)
        worst = tuple(int(v) for v in np.unravel_index(np.argmax(err), err.shape)) if err.size else None
        report.inputs.append(
            InputReport(
                i, x.shape, float(err.max(initial=0.0)), float(rel.max(initial=0.0)), worst if err.size else None
            )
        )
        if bad.any():
            report.passed = False
    if not report.passed and raise_exception:
        raise GradcheckError(f"{report}\n(analytic backpropagation disagrees with finite differences)")
    return report


def torch_gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **torch_options: Any,
) -> bool:
    """``torch.autograd.gradcheck``: True when ``func``'s gradients agree with finite differences,
    False (or a :class:`GradcheckError`, with ``raise_exception``) when not, as PyTorch returns a bool.

    As in PyTorch, only the floating tensors in ``inputs`` that require grad are checked (in float64
    copies); other inputs (None, numbers, tensors not requiring grad) are passed as they are.
    A tuple output is checked as its floating parts flattened and joined (each element projected). PyTorch's other options
    (``nondet_tol``, ``check_undefined_grad``, ``fast_mode``, ...) are accepted and have no effect.
    :func:`gradcheck` gives the per-input errors instead.

    Example:
        >>> import downslope as ds
        >>> x = ds.randn(3, dtype=ds.float64, requires_grad=True)
        >>> ds.autograd.gradcheck(lambda x: x.sin() * x, (x,))
        True
    """

    def joined(*args: Any) -> Tensor:
        out = func(*args)
        if isinstance(out, (tuple, list)):
            return cat([o.reshape(-1) for o in out if isinstance(o, Tensor) and o.dtype.kind == "f"])
        return out

    report = _gradcheck(joined, inputs, eps, atol, rtol, raise_exception, 0, only_requiring_grad=True)
    return bool(report)


def torch_gradgradcheck(
    func: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
    **torch_options: Any,
) -> bool:
    """``torch.autograd.gradgradcheck``: True when the second derivatives of ``func`` agree with finite
    differences of its first ones, checked in the inputs and in ``grad_outputs`` (random when None,
    as in PyTorch) through :func:`torch_gradcheck`.

    Example:
        >>> import downslope as ds
        >>> x = ds.randn(3, dtype=ds.float64, requires_grad=True)
        >>> ds.autograd.gradgradcheck(lambda x: x.tanh() * x, (x,))
        True
    """
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    with enable_grad():
        probe = func(*ins)
    outs = [o for o in (probe if isinstance(probe, (tuple, list)) else (probe,)) if isinstance(o, Tensor)]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)  # host: fixed random weights for the outputs, as torch draws them
        gos = [
            wrap_array(to_device(rng.standard_normal(o.shape), device_of(o.array))).requires_grad_(True) for o in outs
        ]
    else:
        gos = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
    n = len(ins)

    def first_derivatives(*args: Any) -> tuple[Tensor, ...]:
        values = func(*args[:n])
        values = list(values) if isinstance(values, (tuple, list)) else [values]
        wrt = [a for a in args[:n] if isinstance(a, Tensor) and a.requires_grad]
        grads = autograd.grad(
            [v for v in values if isinstance(v, Tensor)], wrt, list(args[n:]), create_graph=True, allow_unused=True
        )
        return tuple(g for g in grads if g is not None)

    return torch_gradcheck(
        first_derivatives, (*ins, *gos), eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception
    )


# torch.autograd.gradcheck: the autograd module cannot import this one (it sits below it), so the
# name is attached from here, which every `import downslope` runs.
autograd.gradcheck = torch_gradcheck  # type: ignore[attr-defined]
autograd.gradgradcheck = torch_gradgradcheck  # type: ignore[attr-defined]
