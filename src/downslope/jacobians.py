"""Derivatives of whole functions (``torch.autograd.functional``): vector-Jacobian and Jacobian-vector
products, Jacobians, Hessians and Hessian-vector products.

Each is built from the backward walk (:func:`downslope.autograd.grad`): a Jacobian is one backward
pass per output element, a Jacobian-vector product is the derivative of a vector-Jacobian product
(the "double backward" trick PyTorch uses too), and a Hessian is the Jacobian of the gradient. So
they work for every op with a second derivative, and they are meant for small problems: the
curvature of a loss at a point, Newton steps on a few parameters, the eigenvalues that explain why a
learning rate diverges.

The inputs and the vectors follow PyTorch's conventions: a single tensor in gives single results
out, a tuple in gives tuples out; results have the inputs' shapes (a Jacobian ``output.shape +
input.shape``); an input the output does not depend on gets zeros (``strict=True`` raises instead).

Example:
    >>> import downslope as ds
    >>> from downslope.autograd.functional import hessian
    >>> hessian(lambda x: (x ** 3).sum(), ds.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import autograd, backend
from .errors import ArgumentError, DTypeError, InvalidValueError, ShapeError, StateError
from .graph import enable_grad
from .ops.shape import stack
from .tensor import Tensor, to_array, wrap_array

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _as_tuple(value: Any, what: str, fn: str) -> tuple[bool, tuple[Tensor, ...]]:
    """(whether ``value`` was a tuple or list, its tensors as a tuple); anything else is an error."""
    was_tuple = isinstance(value, (tuple, list))
    items = tuple(value) if was_tuple else (value,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"{what}[{i}]" if was_tuple else what
            raise ArgumentError(
                f"{fn}: expected {what} to be a Tensor or a tuple of Tensors, {where} is a {type(item).__name__}"
            )
    return was_tuple, items


def _prepare(inputs: tuple[Tensor, ...], create_graph: bool) -> tuple[Tensor, ...]:
    """Inputs to differentiate at: the same values, requiring grad. With ``create_graph`` an input that
    already requires grad stays connected to its own graph (the result is differentiable in it)."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(t * 1.0 if t.dtype.kind in "fc" else t)
        else:
            if t.dtype.kind not in "fc":
                raise ArgumentError(f"autograd.functional: inputs must be floating point or complex, got {t.dtype}")
            out.append(t.detach().requires_grad_(True))
    return tuple(out)


def _grads(
    outputs: tuple[Tensor, ...],
    inputs: tuple[Tensor, ...],
    grad_outputs: tuple[Any, ...],
    create_graph: bool,
    strict: bool,
    fn: str,
) -> tuple[Tensor, ...]:
    """``autograd.grad`` with zeros for unused inputs (or an error with ``strict``)."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        found: tuple[Tensor | None, ...] = (None,) * len(inputs)
    else:
        found = autograd.grad(
            [o for o, _ in pairs], list(inputs), [g for _, g in pairs],
            retain_graph=True, create_graph=create_graph, allow_unused=True,
        )  # fmt: skip
    result = []
    for i, (g, x) in enumerate(zip(found, inputs)):
        if g is None:
            if strict:
                raise StateError(f"{fn}: the output does not depend on input {i} (strict=True)")
            g = wrap_array(np.zeros_like(x.array))  # host: zeros_like follows x's namespace
        result.append(g)
    return tuple(result)


def _call(func: Callable[..., Any], inputs: tuple[Tensor, ...], fn: str) -> tuple[bool, tuple[Tensor, ...]]:
    with enable_grad():
        out = func(*inputs)
    return _as_tuple(out, "the outputs of func", fn)


def _vectors(v: Any, like: tuple[Tensor, ...], what: str, fn: str) -> tuple[Tensor, ...]:
    """``v`` as one tensor per item of ``like``, each of its shape; None only where ``like`` has one element."""
    if v is None:
        if len(like) != 1 or like[0].array.size != 1:
            raise InvalidValueError(  # torch: a RuntimeError
                f"{fn}: v can be omitted only when {what} is a single one-element tensor, got "
                f"{len(like)} tensor(s) of shape(s) {', '.join(str(tuple(t.shape)) for t in like)}"
            )
        return (wrap_array(np.ones_like(like[0].array)),)  # host: ones_like follows the tensor's namespace
    if not isinstance(v, (tuple, list, Tensor)):
        v = wrap_array(to_array(v))  # an array or a number: one tensor
    _, vs = _as_tuple(v, "v", fn)
    if len(vs) != len(like):
        raise ShapeError(f"{fn}: v has {len(vs)} tensors, {what} has {len(like)}")
    for i, (a, b) in enumerate(zip(vs, like)):
        if tuple(a.shape) != tuple(b.shape):
            raise ShapeError(f"{fn}: v[{i}] has shape {tuple(a.shape)}, {what}[{i}] has shape {tuple(b.shape)}")
    return vs


def _out(values: tuple[Any, ...], was_tuple: bool) -> Any:
    return values if was_tuple else values[0]


def _detached(values: tuple[Tensor, ...], create_graph: bool) -> tuple[Tensor, ...]:
    return values if create_graph else tuple(v.detach() for v in values)


def vjp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """``(func(*inputs), v^T J)``: the vector-Jacobian product of ``func`` at ``inputs``.

    Example:
        >>> import downslope as ds
        >>> out, product = vjp(lambda x: x ** 2, ds.tensor([1.0, 3.0]), ds.tensor([1.0, 1.0]))
        >>> product
        tensor([2., 6.])
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "vjp")
    xs = _prepare(xs, create_graph)
    out_tuple, outs = _call(func, xs, "vjp")
    vs = _vectors(v, outs, "the output", "vjp")
    grads = _grads(outs, xs, vs, create_graph, strict, "vjp")
    return _out(_detached(outs, create_graph), out_tuple), _out(_detached(grads, create_graph), in_tuple)


def jvp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """``(func(*inputs), J v)``: the Jacobian-vector product of ``func`` at ``inputs`` (the directional
    derivative along ``v``), computed as the derivative of a vector-Jacobian product.

    Example:
        >>> import downslope as ds
        >>> out, product = jvp(lambda x: x ** 2, ds.tensor([1.0, 3.0]), ds.tensor([1.0, 0.0]))
        >>> product
        tensor([2., 0.])
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "jvp")
    xs = _prepare(xs, create_graph)
    vs = _vectors(v, xs, "inputs", "jvp")
    out_tuple, outs = _call(func, xs, "jvp")
    # J^T u is linear in u, so the derivative of (J^T u) . v with respect to u is J v
    dummies = tuple(wrap_array(np.zeros_like(o.array)).requires_grad_(True) for o in outs)  # host: follows o
    with enable_grad():
        transposed = _grads(outs, xs, dummies, True, strict, "jvp")
        forward = _grads(transposed, dummies, vs, create_graph, strict, "jvp")
    return _out(_detached(outs, create_graph), out_tuple), _out(_detached(forward, create_graph), out_tuple)


def jacobian(
    func: Callable[..., Any],
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """The Jacobian of ``func`` at ``inputs``: ``output.shape + input.shape`` per (output, input) pair,
    nested as PyTorch nests it (a tuple per output of a tuple per input, where either was a tuple).

    One backward pass per output element, or with ``vectorize=True`` (as PyTorch's, which vmaps the
    backward pass) one walk of the graph carrying the identity's rows as a batch of cotangents where
    every op on the way has a batched rule (recorded with ``create_graph``, where fewer ops have one;
    not with ``strict``; else one pass per element). ``strategy`` is accepted (the result is the same;
    PyTorch's forward-mode strategy is computed in reverse mode here).

    Example:
        >>> import downslope as ds
        >>> jacobian(lambda x: x[:1] * x[1:], ds.tensor([2.0, 3.0]))
        tensor([[3., 2.]])
    """
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ArgumentError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got {strategy!r}")
    in_tuple, xs = _as_tuple(inputs, "inputs", "jacobian")
    xs = _prepare(xs, create_graph)
    out_tuple, outs = _call(func, xs, "jacobian")
    blocks: list[tuple[Tensor, ...]] = []
    for out in outs:
        if out.array.dtype.kind == "c":  # as torch, whose one-hot grad_outputs are real
            raise DTypeError(
                f"jacobian: grad can be implicitly created only for real outputs, but func returned {out.dtype} "
                "(torch refuses a complex output too); return its real and imaginary parts (torch.view_as_real)"
            )
        if vectorize and not strict and out.array.size and out.requires_grad:
            n = out.array.size
            eye = backend.namespace_of(out.array).eye(n, dtype=out.array.dtype).reshape((n, *out.shape))
            found = autograd.batched_cotangent_grads(out, eye, list(xs), create_graph=create_graph)
            if found is not None:
                shaped = [g.reshape(tuple(out.shape) + tuple(x.shape)) for g, x in zip(found, xs)]
                blocks.append(tuple(shaped) if create_graph else tuple(wrap_array(g) for g in shaped))
                continue
        rows: list[tuple[Tensor, ...]] = []
        for k in range(out.array.size):
            one_hot = np.zeros(out.array.size, dtype=out.array.dtype)  # host: a selector, moved below
            one_hot[k] = 1
            selector = wrap_array(one_hot.reshape(out.shape)).to(out.device)
            rows.append(_grads((out,), xs, (selector,), create_graph, strict, "jacobian"))
        per_input = []
        for i, x in enumerate(xs):
            parts = [r[i] for r in rows]
            block = stack(parts) if parts else wrap_array(np.zeros((0, *x.shape), dtype=x.array.dtype))  # host: empty
            per_input.append(block.reshape(tuple(out.shape) + tuple(x.shape)))  # () for 0-dim out and x
        blocks.append(_detached(tuple(per_input), create_graph))
    if out_tuple:
        return tuple(_out(b, in_tuple) for b in blocks)
    return _out(blocks[0], in_tuple)


def hessian(
    func: Callable[..., Any],
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """The Hessian of the scalar ``func`` at ``inputs``: ``input.shape + input.shape`` (a tuple of tuples
    of blocks for a tuple of inputs), the Jacobian of its gradient.

    Example:
        >>> import downslope as ds
        >>> hessian(lambda x, y: (x * y).sum(), (ds.tensor([1.0]), ds.tensor([2.0])))[0][1]
        tensor([[1.]])
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*args: Tensor) -> tuple[Tensor, ...]:
        _, outs = _call(func, args, "hessian")
        if len(outs) != 1 or outs[0].array.size != 1:
            raise ShapeError(f"hessian: func must return a single one-element tensor, got shape {tuple(outs[0].shape)}")
        return _grads(outs, args, (wrap_array(np.ones_like(outs[0].array)),), True, strict, "hessian")  # host: follows

    result = jacobian(
        gradient, xs, create_graph=create_graph, strict=strict, vectorize=vectorize, strategy=outer_jacobian_strategy
    )
    if in_tuple:
        return result
    return result[0][0]


def _hessian_product(
    func: Callable[..., Any], inputs: Any, v: Any, create_graph: bool, strict: bool, fn: str
) -> tuple[Any, Any]:
    in_tuple, xs = _as_tuple(inputs, "inputs", fn)
    xs = _prepare(xs, create_graph)
    vs = _vectors(v, xs, "inputs", fn)
    _, outs = _call(func, xs, fn)
    if len(outs) != 1 or outs[0].array.size != 1:
        raise ShapeError(f"{fn}: func must return a single one-element tensor, got shape {tuple(outs[0].shape)}")
    with enable_grad():
        first = _grads(outs, xs, (wrap_array(np.ones_like(outs[0].array)),), True, strict, fn)  # host: follows
        second = _grads(first, xs, vs, create_graph, strict, fn)
    return _detached(outs, create_graph)[0], _out(_detached(second, create_graph), in_tuple)


def vhp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """``(func(*inputs), v^T H)``: the vector-Hessian product of the scalar ``func`` at ``inputs``.

    Example:
        >>> import downslope as ds
        >>> vhp(lambda x: (x ** 3).sum(), ds.tensor([1.0, 2.0]), ds.tensor([1.0, 1.0]))[1]
        tensor([ 6., 12.])
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(
    func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple[Any, Any]:
    """``(func(*inputs), H v)``: the Hessian-vector product of the scalar ``func`` at ``inputs`` (equal
    to :func:`vhp`'s, as a Hessian of a twice-differentiable function is symmetric).

    Example:
        >>> import downslope as ds
        >>> hvp(lambda x: (x[0] * x[1] ** 2), ds.tensor([1.0, 2.0]), ds.tensor([1.0, 0.0]))[1]
        tensor([0., 4.])
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


# ``torch.autograd.functional``: the autograd module cannot import this one (it sits below it), so the
# name is attached from here, which every ``import downslope`` runs; registering the module under that
# name makes ``from downslope.autograd.functional import jacobian`` work too.
autograd.functional = sys.modules[__name__]  # type: ignore[attr-defined]
sys.modules["downslope.autograd.functional"] = sys.modules[__name__]
