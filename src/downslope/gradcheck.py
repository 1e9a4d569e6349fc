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
from .errors import ArgumentError, ArgumentTypeError, DTypeError
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
                f"  input {r.index} shape {tuple(r.shape)}: max abs error {r.max_abs_error:.3e}, "
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
    require grad are differentiated (the other floating ones are still computed with in float64).

    Complex inputs and outputs (complex128 copies) are checked as torch checks them: the output is
    projected on a complex ``v`` into the real ``L = Re(sum(conj(v) * f))``, whose gradient in torch's
    convention (``dL/dRe(x) + i dL/dIm(x)``) backpropagation gives from ``grad_output=v``, and whose
    finite differences are taken along each element's real and imaginary directions."""
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = [inputs]
    args: list[Any] = []
    wrt: list[int] = []
    for i, x in enumerate(inputs):
        arr = _array_of(x)
        if arr is not None and arr.dtype.kind in "fc":
            wide = np.complex128 if arr.dtype.kind == "c" else np.float64
            copy = wrap_array(arr.astype(wide))  # a copy, on arr's device
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
    if out.dtype != np.float64 and out.dtype != np.complex128:
        raise ArgumentTypeError(
            f"gradcheck: f returned {out.dtype} from float64 (complex128) inputs; something in f casts to lower "
            "precision"
        )
    # The projection is drawn on the host (the same numbers on every device) and copied to out's device.
    host_projection = np.random.default_rng(seed).standard_normal(out.shape) if out.array.size > 1 else None
    if host_projection is None:
        host_projection = np.ones(out.shape)  # host: drawn here, copied to the device below
    if out.dtype == np.complex128:  # a complex output is projected on a complex v (its imaginary part checked too)
        host_projection = host_projection + 1j * np.random.default_rng(seed + 1).standard_normal(out.shape)
    projection = to_device(host_projection, device_of(out.array))
    conj_projection = np.conj(projection)

    def objective() -> float:
        with enable_grad():
            value = f(*args)
        # host: the finite difference is a host number; Re(sum(conj(v) * f)), the real loss backward sees
        return float(to_host(np.real((value.array * conj_projection).sum())))

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
        numeric = np.zeros(x.shape, dtype=x.array.dtype)  # host: finite differences are compared on the host
        flat = x.array.reshape(-1)
        num_flat = numeric.reshape(-1)
        # a complex element moves along its real and its imaginary direction: dL/dRe(x) + i dL/dIm(x)
        directions = (1.0, 1j) if x.array.dtype.kind == "c" else (1.0,)
        for j in range(flat.size):
            orig = flat[j].copy()  # a device namespace gives a 0-d view, which the writes below would change
            for d in directions:
                flat[j] = orig + eps * d
                plus = objective()
                flat[j] = orig - eps * d
                minus = objective()
                flat[j] = orig
                num_flat[j] += d * (plus - minus) / (2 * eps)
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
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """``torch.autograd.gradcheck``: True when ``func``'s gradients pass PyTorch's checks, False (or a
    :class:`GradcheckError`, with ``raise_exception``) when not, as PyTorch returns a bool.

    As in PyTorch, only the floating tensors in ``inputs`` that require grad are differentiated, and
    the checks are PyTorch's (``func`` is run on ``inputs`` as given for all but the first):

    - backward against central finite differences (on float64 copies); a tuple output is checked as
      its floating parts flattened and joined (each element projected). Without a differentiable
      output, the finite differences must be exactly zero;
    - reentrancy: two backward passes with the same ``grad_output`` agree within ``nondet_tol``;
      ``check_grad_dtypes``: each gradient has its input's dtype;
    - backward multiplied by ``grad_output``: zero ``grad_output`` gives zero (or no) gradients of the
      inputs' dtypes and shapes ("backward not multiplied by grad_output");
    - ``check_undefined_grad``: backward accepts undefined output gradients. With several
      differentiable outputs each is left undefined in turn (a custom Function with
      ``ctx.set_materialize_grads(False)`` gets None for it); all of them undefined is run as all
      zero, because downslope's engine does not run a node that no gradient reaches (so a one-output
      Function whose backward cannot take None is not caught, where torch's check fails);
    - ``check_batched_grad``: ``vmap`` of the backward over two ``grad_output`` agrees with two calls
      (downslope's vmap is a loop, so this catches a backward that fails under vmap);
    - ``check_forward_ad``: Jacobian-vector products (``downslope.func.jvp``, which runs a custom
      Function's ``jvp``) against finite differences, one input element at a time.

    ``fast_mode`` runs the full check (the same verdict, more slowly); ``masked`` and
    ``check_batched_forward_grad`` have no effect (there are no sparse tensors; forward AD batched by
    vmap is the same loop). :func:`gradcheck` gives the per-input errors instead.

    Example:
        >>> import downslope as ds
        >>> x = ds.randn(3, dtype=ds.float64, requires_grad=True)
        >>> ds.autograd.gradcheck(lambda x: x.sin() * x, (x,))
        True
    """
    if not (check_forward_ad or check_backward_ad):
        raise ArgumentError(
            "gradcheck: expected at least one of check_forward_ad or check_backward_ad to be True, got both False"
        )
    if check_batched_grad and not check_backward_ad:
        raise ArgumentError("gradcheck: check_batched_grad=True requires check_backward_ad=True, got False")
    if check_batched_forward_grad and not check_forward_ad:
        raise ArgumentError("gradcheck: check_batched_forward_grad=True requires check_forward_ad=True, got False")
    try:
        _torch_checks(
            func,
            inputs,
            eps,
            atol,
            rtol,
            nondet_tol,
            check_undefined_grad=check_undefined_grad,
            check_grad_dtypes=check_grad_dtypes,
            check_batched_grad=check_batched_grad,
            check_forward_ad=check_forward_ad,
            check_backward_ad=check_backward_ad,
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _joined(func: Callable[..., Any]) -> Callable[..., Tensor]:
    """``func`` with a tuple output turned into one tensor: its floating parts flattened and joined."""

    def joined(*args: Any) -> Tensor:
        out = func(*args)
        if isinstance(out, (tuple, list)):
            return cat([o.reshape(-1) for o in out if isinstance(o, Tensor) and o.dtype.kind in "fc"])
        return out

    return joined


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _differentiable_outputs(out: Any) -> list[Tensor]:
    return [o for o in _as_tuple(out) if isinstance(o, Tensor) and o.requires_grad]


def _torch_checks(
    func: Callable[..., Any],
    inputs: Any,
    eps: float,
    atol: float,
    rtol: float,
    nondet_tol: float,
    *,
    check_undefined_grad: bool,
    check_grad_dtypes: bool,
    check_batched_grad: bool,
    check_forward_ad: bool,
    check_backward_ad: bool,
) -> None:
    """PyTorch's gradcheck helper: each check raises a GradcheckError when it fails."""
    tupled = _as_tuple(inputs)
    wrt = [x for x in tupled if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ArgumentError(
            "gradcheck expects at least one input tensor to require gradient, but none of them have requires_grad=True."
        )
    with enable_grad():
        outputs = _differentiable_outputs(func(*tupled))
    joined = _joined(func)
    if not outputs:
        # no differentiable output: the finite differences must be exactly zero, as torch requires
        if not _gradcheck(joined, tupled, eps, 0.0, 0.0, False, 0, only_requiring_grad=True):
            raise GradcheckError("Numerical gradient for function expected to be zero")
        return
    if check_backward_ad:
        _gradcheck(joined, tupled, eps, atol, rtol, True, 0, only_requiring_grad=True)
        for output in outputs:
            _check_reentrant_and_dtypes(output, wrt, nondet_tol, check_grad_dtypes)
    if check_forward_ad:
        _check_forward_ad(joined, tupled, eps, atol, rtol)
    if not check_backward_ad:
        return
    if check_batched_grad:
        for k, output in enumerate(outputs):
            _check_batched_grad(output, wrt, k)
    _check_backward_mul_by_grad_output(outputs, wrt)
    if check_undefined_grad:
        _check_undefined_grad(func, tupled, wrt)


def _zeros_like(t: Tensor) -> Tensor:
    return wrap_array(np.zeros_like(t.array))


def _vjp(output: Tensor, wrt: list[Tensor], grad_output: Tensor) -> tuple[Any, ...]:
    return tuple(autograd.grad([output], wrt, grad_outputs=[grad_output], retain_graph=True, allow_unused=True))


def _check_reentrant_and_dtypes(output: Tensor, wrt: list[Tensor], nondet_tol: float, check_dtypes: bool) -> None:
    """Two backward passes with one grad_output agree within ``nondet_tol``; each gradient has its input's
    dtype when ``check_dtypes`` (torch compares whole Jacobians; one random projection row tells the same
    unless the disagreement is orthogonal to it)."""
    rng = np.random.default_rng(0)  # host: fixed weights, drawn on the host and copied to the device
    projection = wrap_array(to_device(rng.standard_normal(output.shape), device_of(output.array)))
    first, second = _vjp(output, wrt, projection), _vjp(output, wrt, projection)
    for a, b, x in zip(first, second, wrt):
        if a is None or b is None:
            continue
        if check_dtypes and a.dtype != x.dtype:
            raise GradcheckError("Gradient has dtype mismatch")
        difference = float(to_host(np.abs(a.array - b.array).max(initial=0.0)))  # host: one number per input
        if difference > nondet_tol:
            raise GradcheckError(
                "Backward is not reentrant, i.e., running backward with same input and grad_output multiple times "
                f"gives different values, although analytical gradient matches numerical gradient.The tolerance for "
                f"nondeterminism was {nondet_tol}."
            )


def _all_zero(t: Tensor) -> bool:
    return bool(to_host((t.array == 0).all()))  # host: a check's verdict


def _check_backward_mul_by_grad_output(outputs: list[Tensor], wrt: list[Tensor]) -> None:
    """torch's ``_test_backward_mul_by_grad_output``: a zero grad_output gives zero (or no) gradients,
    of the inputs' dtypes and shapes."""
    grads = autograd.grad(outputs, wrt, [_zeros_like(o) for o in outputs], retain_graph=True, allow_unused=True)
    for g, x in zip(grads, wrt):
        if g is None:
            continue
        if not _all_zero(g):
            raise GradcheckError("backward not multiplied by grad_output")
        if g.dtype != x.dtype:
            raise GradcheckError("grad is incorrect type")
        if g.shape != x.shape:
            raise GradcheckError("grad is incorrect size")


def _check_undefined_grad(func: Callable[..., Any], tupled: tuple[Any, ...], wrt: list[Tensor]) -> None:
    """torch's ``_test_undefined_backward_mode``: backward accepts undefined output gradients and gives
    zero (or no) input gradients for them. An output left out of ``autograd.grad`` is downslope's undefined
    gradient (a custom Function with ``set_materialize_grads(False)`` gets None for it)."""

    def supported(outputs: list[Tensor]) -> None:
        try:
            grads = autograd.grad(outputs, wrt, [_zeros_like(o) for o in outputs], allow_unused=True)
        except RuntimeError as exc:
            raise GradcheckError(
                'Expected backward function to handle undefined output grads. Please look at "Notes about undefined '
                'output gradients" in "tools/autograd/derivatives.yaml"'
            ) from exc
        if any(g is not None and not _all_zero(g) for g in grads):
            raise GradcheckError(
                "Expected all input grads to be undefined or zero when all output grads are undefined or zero. "
                'Please look at "Notes about undefined output gradients" in "tools/autograd/derivatives.yaml"'
            )

    with enable_grad():
        outputs = _differentiable_outputs(func(*tupled))
    supported(outputs)  # all undefined: run as all zero (see torch_gradcheck)
    if len(outputs) > 1:
        for undefined in range(len(outputs)):  # each left undefined in turn
            with enable_grad():
                outputs = _differentiable_outputs(func(*tupled))
            supported([o for k, o in enumerate(outputs) if k != undefined])


def _check_batched_grad(output: Tensor, wrt: list[Tensor], output_index: int) -> None:
    """torch's ``_test_batched_grad``: vmap of the backward over two grad_outputs against two calls."""
    from .func import vmap
    from .ops.shape import stack

    def vjp(v: Tensor) -> tuple[Tensor, ...]:
        grads = _vjp(output, wrt, v)
        return tuple(_zeros_like(x) if g is None else g for g, x in zip(grads, wrt))

    rng = np.random.default_rng(1)  # host: fixed weights, drawn on the host and copied to the device
    gos = [wrap_array(to_device(rng.standard_normal(output.shape), device_of(output.array))) for _ in range(2)]
    expected = [stack(list(shards)) for shards in zip(*(vjp(g) for g in gos))]
    try:
        result = vmap(vjp)(stack(gos))
    except RuntimeError as exc:
        raise GradcheckError(f"While computing batched gradients, got: {exc}") from exc
    for k, (res, exp) in enumerate(zip(result, expected)):
        if not np.allclose(to_host(res.array), to_host(exp.array)):  # host: a check's verdict
            raise GradcheckError(
                f"For output {output_index} and input {k}: batched gradients differ from gradients computed one "
                "grad_output at a time"
            )


def _check_forward_ad(
    joined: Callable[..., Tensor], tupled: tuple[Any, ...], eps: float, atol: float, rtol: float
) -> None:
    """Jacobian-vector products along each input element against central finite differences (float64)."""
    from .func import jvp

    with enable_grad():  # func may differentiate inside (gradgradcheck's first derivatives)
        complex_out = joined(*tupled).dtype.kind == "c"
    if complex_out or any(isinstance(x, Tensor) and x.dtype.kind == "c" for x in tupled):
        # downslope's forward AD carries real tangents only: a verdict here would be wrong, not a check
        raise DTypeError(
            "gradcheck: check_forward_ad=True is not supported for complex inputs or outputs (forward-mode AD of "
            "complex tensors is not implemented in downslope); check backward only (check_forward_ad=False)"
        )

    args = [
        wrap_array(x.array.astype(np.float64)).requires_grad_(x.requires_grad)
        if isinstance(x, Tensor) and x.dtype.kind == "f"
        else x
        for x in tupled
    ]
    positions = [i for i, x in enumerate(tupled) if isinstance(x, Tensor) and x.requires_grad]

    def at(i: int) -> Callable[[Tensor], Tensor]:
        def f(value: Tensor) -> Tensor:
            return joined(*args[:i], value, *args[i + 1 :])

        return f

    for k, i in enumerate(positions):
        x = args[i]
        flat = x.array.reshape(-1)
        for j in range(flat.size):
            direction = np.zeros(flat.size)  # host: one input element's direction
            direction[j] = 1.0
            tangent = wrap_array(to_device(direction.reshape(x.shape), device_of(x.array)))
            _, analytic = jvp(at(i), (x,), (tangent,))
            orig = flat[j].copy()
            with enable_grad():  # func may differentiate inside (gradgradcheck's first derivatives)
                flat[j] = orig + eps
                plus = to_host(joined(*args).detach().array)  # host: finite differences are compared on the host
                flat[j] = orig - eps
                minus = to_host(joined(*args).detach().array)
                flat[j] = orig
            numeric = (plus - minus) / (2 * eps)
            if not np.allclose(to_host(analytic.array), numeric, rtol=rtol, atol=atol):
                raise GradcheckError(
                    f"Jacobian computed with forward mode mismatch for input {k}, element {j}: "
                    f"forward AD gives {to_host(analytic.array).reshape(-1)}, finite differences {numeric.reshape(-1)}"
                )


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
    as in PyTorch) through :func:`torch_gradcheck`, with torch's options passed on as torch passes them
    (``check_fwd_over_rev``/``check_rev_over_rev`` as ``check_forward_ad``/``check_backward_ad``;
    ``gen_non_contig_grad_outputs`` has no effect: arrays here have no strides to vary).

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

    # torch's gradgradcheck passes these on to gradcheck (check_*_over_rev as check_*_ad)
    passed_on = ("nondet_tol", "check_undefined_grad", "check_grad_dtypes", "check_batched_grad", "fast_mode", "masked")
    options = {name: torch_options[name] for name in passed_on if name in torch_options}
    options["check_forward_ad"] = torch_options.get("check_fwd_over_rev", False)
    options["check_backward_ad"] = torch_options.get("check_rev_over_rev", True)
    return torch_gradcheck(
        first_derivatives, (*ins, *gos), eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception, **options
    )


# torch.autograd.gradcheck: the autograd module cannot import this one (it sits below it), so the
# name is attached from here, which every `import downslope` runs.
autograd.gradcheck = torch_gradcheck  # type: ignore[attr-defined]
autograd.gradgradcheck = torch_gradgradcheck  # type: ignore[attr-defined]
