"""Function transforms, as ``torch.func``: ``grad(f)`` is a new function returning f's gradient.

``torch.autograd.grad(outputs, inputs)`` (gradients of tensors already computed) is
:func:`downslope.autograd.grad`; this module holds the transform style, where the function itself is
the argument: :func:`grad`, :func:`grad_and_value`, :func:`vjp`, :func:`jvp`, :func:`linearize`,
:func:`jacrev`, :func:`jacfwd`, :func:`hessian`, :func:`vmap`, :func:`functional_call` and
:func:`stack_module_state`. All of them run the same backward walk (``autograd.py``): forward-mode
products (and :func:`jacfwd`'s columns) are computed as derivatives of reverse-mode ones (the "double
vjp"), and :func:`vmap` runs the function once on the whole batch with batching rules (``_vmap.py``),
or once per batch element where an op has none.

Arguments and results may be pytrees (nested tuples, lists, dicts and namedtuples of tensors), as in
``torch.func``. Transforms compose: an argument that already requires grad (while recording), as it
does inside an outer transform, gets a result that is differentiable in it, so ``grad(grad(f))``,
``jacrev(jacrev(f))`` and ``vmap(grad(f))`` work. Each transform differentiates with respect to a
fresh node of its own, so a function that closes over an outer argument gets the outer derivative,
not a confused one. As in ``torch.func``, a result also stays differentiable in whatever else requiring
grad the function reaches: an enclosing transform's argument (``grad`` over ``w`` of a ``grad`` over
``x``), a module's parameters (a PINN loss built on ``vmap(hessian(u))(x)`` trains with ``backward()``).
"""

from __future__ import annotations

import functools
import itertools
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from . import autograd, backend
from .devices import to_host
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    ArgumentTypeRuntimeError,
    InvalidValueError,
    OutOfRangeError,
    ShapeError,
    StateError,
)
from .graph import enable_grad, is_grad_enabled
from .ops.shape import stack
from .tensor import Tensor, to_array, wrap_array

__all__ = [
    "grad",
    "grad_and_value",
    "vjp",
    "jvp",
    "linearize",
    "jacrev",
    "jacfwd",
    "hessian",
    "vmap",
    "functional_call",
    "stack_module_state",
    "replace_all_batch_norm_modules_",
]


# --- pytrees ---------------------------------------------------------------------------------------
# A spec is None for a leaf, else (container type, keys, child specs): keys are a dict's keys, or
# None for a tuple, list or namedtuple.
_Spec = Any


def _children(tree: Any) -> tuple[type, Any, list[Any]] | None:
    """(container type, keys, children) of a pytree node, or None for a leaf."""
    if isinstance(tree, dict):
        return type(tree), list(tree.keys()), list(tree.values())
    if isinstance(tree, (tuple, list)):
        return type(tree), None, list(tree)
    return None


def _flatten(tree: Any) -> tuple[list[Any], _Spec]:
    """The leaves of ``tree`` in order, and its structure."""
    node = _children(tree)
    if node is None:
        return [tree], None
    kind, keys, children = node
    leaves: list[Any] = []
    specs = []
    for child in children:
        sub, spec = _flatten(child)
        leaves += sub
        specs.append(spec)
    return leaves, (kind, keys, specs)


def _unflatten(spec: _Spec, leaves: Iterator[Any] | Sequence[Any]) -> Any:
    """The pytree of structure ``spec`` holding ``leaves`` in order."""
    it = iter(leaves)

    def build(s: _Spec) -> Any:
        if s is None:
            return next(it)
        kind, keys, specs = s
        children = [build(c) for c in specs]
        if keys is not None:
            return kind(zip(keys, children))
        if hasattr(kind, "_fields"):  # a namedtuple takes its fields positionally
            return kind(*children)
        return kind(children)

    return build(spec)


def _spec_repr(spec: _Spec) -> str:
    if spec is None:
        return "*"
    kind, keys, specs = spec
    if keys is not None:
        return "{" + ", ".join(f"{k!r}: {_spec_repr(s)}" for k, s in zip(keys, specs)) + "}"
    inner = ", ".join(_spec_repr(s) for s in specs)
    if kind is list:
        return "[" + inner + "]"
    if kind is tuple:
        return "(" + inner + ("," if len(specs) == 1 else "") + ")"
    return f"{kind.__name__}({inner})"


def _broadcast_prefix(prefix: Any, tree: Any) -> list[Any] | None:
    """One value of ``prefix`` per leaf of ``tree``: a leaf of ``prefix`` stands for the whole subtree
    at its place. None when ``prefix`` is not a prefix of ``tree``'s structure."""
    p_node = _children(prefix)
    if p_node is None:
        return [prefix] * len(_flatten(tree)[0])
    t_node = _children(tree)
    if t_node is None:
        return None
    p_kind, p_keys, p_children = p_node
    t_kind, t_keys, t_children = t_node
    if (p_keys is None) != (t_keys is None) or len(p_children) != len(t_children):
        return None
    if p_keys is not None:
        if set(p_keys) != set(t_keys):
            return None
        p_children = [prefix[k] for k in t_keys]
    elif issubclass(p_kind, list) != issubclass(t_kind, list):
        return None
    out: list[Any] = []
    for p, t in zip(p_children, t_children):
        sub = _broadcast_prefix(p, t)
        if sub is None:
            return None
        out += sub
    return out


def _name(func: Any) -> str:
    return getattr(func, "__name__", type(func).__name__)


# --- differentiation helpers ---------------------------------------------------------------------


def _check_callable(func: Any, fn: str) -> None:
    if not callable(func):
        raise ArgumentTypeError(
            f"func.{fn}: expected a function to transform, got {type(func).__name__}; "
            "for gradients of tensors already computed use ds.autograd.grad(outputs, inputs)"
        )


# Each call of a transform is a level, numbered in the order the calls start; the leaves it makes to
# differentiate at carry their level's number. A leaf that requires grad and carries no number (a
# parameter, a tensor made by the user) or a smaller one (an enclosing transform's argument) belongs
# to a computation outside the call: a result that depends on it must stay differentiable in it.
_levels = itertools.count(1)
_LEVEL = "_func_level"


def _fresh(a: Any, level: int) -> tuple[Any, bool]:
    """(the tensor to differentiate at, whether it is connected to an outer recorded computation).

    An argument already part of a recorded computation (an outer transform's input, a parameter)
    is passed through a new node, so this transform's gradient is with respect to that node only
    (an outer value the function closes over is not confused with it) while the result stays
    differentiable in the outer computation; anything else becomes a new leaf of ``level``."""
    if isinstance(a, Tensor) and a.requires_grad and is_grad_enabled():
        with enable_grad():
            return a * 1.0, True
    arr = a.array if isinstance(a, Tensor) else to_array(a)
    leaf = wrap_array(arr).requires_grad_(True)
    leaf.__dict__[_LEVEL] = level
    return leaf, False


def _batched_size(fn: str) -> int | None:
    """The batch size when a batched vmap call is running (its function sees BatchedTensors), else None.
    Only the transforms with batched forms below run inside one; the others make vmap loop."""
    if "downslope._vmap" not in sys.modules:
        return None
    from ._vmap import NoRule, batch_size_now

    size = batch_size_now()
    if size is not None and fn not in ("grad", "jacrev", "jacfwd", "jvp"):
        raise NoRule(f"vmap: no batching rule for func.{fn}")
    return size


def _fresh_batched(a: Any, level: int, size: int) -> tuple[Any, bool]:
    """``_fresh`` inside a batched vmap call: the tensor to differentiate at is a BatchedTensor, one
    value per batch element, so the backward walk of the batch gives each element's own derivative.
    An unbatched argument is repeated over the batch (a broadcast view, no copy)."""
    from ._vmap import BatchedTensor

    if isinstance(a, BatchedTensor):
        t, connected = _fresh(a.value, level)
        return BatchedTensor(t), connected
    if isinstance(a, Tensor) and a.requires_grad and is_grad_enabled():
        with enable_grad():
            return BatchedTensor(a.unsqueeze(0).expand(size, *a.shape) * 1.0), True
    arr = a.array if isinstance(a, Tensor) else to_array(a)
    xp = backend.namespace_of(arr)
    leaf = wrap_array(xp.broadcast_to(arr, (size, *arr.shape))).requires_grad_(True)
    leaf.__dict__[_LEVEL] = level
    return BatchedTensor(leaf), False


def _unbatched(xs: Sequence[Any]) -> list[Any]:
    """The batch values of BatchedTensors among ``xs`` (the graph's real nodes), other items as they are."""
    if "downslope._vmap" not in sys.modules:
        return list(xs)
    from ._vmap import unwrap

    return [unwrap(x) for x in xs]


def _reaches_outside(outs: Sequence[Any], level: int) -> bool:
    """Whether the graph of ``outs`` reaches a leaf requiring grad from outside the transform call
    ``level`` (see ``_levels``): a tensor the function closes over, as a module's parameter."""
    todo = [o for o in outs if isinstance(o, Tensor) and o.requires_grad]
    seen = {id(t) for t in todo}
    while todo:  # depth-first, without recursion (graphs may be deep); the first outside leaf ends it
        t = todo.pop()
        parents = t._parents
        if not parents:
            if getattr(t, _LEVEL, 0) < level:
                return True
            continue
        for p in parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                todo.append(p)
    return False


def _connected(nested: bool, outs: Sequence[Any], level: int) -> bool:
    """Whether this call's results must stay differentiable for the caller: an argument came from an
    outer computation, or the function closes over a tensor requiring grad (torch.func's outer level
    sees through the transform). Call it in the caller's grad mode: under no_grad nothing is kept."""
    if nested:
        return True
    return is_grad_enabled() and _reaches_outside(_unbatched(outs), level)


def _prepare(
    args: tuple[Any, ...], argnums: int | Sequence[int], fn: str
) -> tuple[list[Any], list[Any], Any, bool, int]:
    """(the call's arguments with the ``argnums`` ones replaced by fresh tensors, those tensors
    (flattened), a function rebuilding results of their structure from flat leaves, whether any is
    connected to an outer computation, the call's level)."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ArgumentError(f"func.{fn}: argnums must be non-empty")
    call_args = list(args)
    wrt: list[Any] = []
    specs: list[tuple[_Spec, int]] = []
    nested = False
    level = next(_levels)
    size = _batched_size(fn)
    for i in nums:
        if isinstance(i, bool) or not isinstance(i, int):
            raise ArgumentTypeError(f"func.{fn}: argnums must be an int or a tuple of ints, got {i!r}")
        if not -len(args) <= i < len(args):
            raise ArgumentTypeError(f"func.{fn}: argnums={i} but the function got {len(args)} argument(s)")
        leaves, spec = _flatten(args[i])
        if isinstance(args[i], (list, tuple)) and leaves and not any(isinstance(x, Tensor) for x in leaves):
            leaves, spec = [args[i]], None  # nested lists of numbers: one array, not a pytree
        fresh = []
        for leaf in leaves:
            t, connected = _fresh(leaf, level) if size is None else _fresh_batched(leaf, level, size)
            nested = nested or connected
            fresh.append(t)
        call_args[i] = _unflatten(spec, fresh)
        wrt += fresh
        specs.append((spec, len(fresh)))

    def rebuild(flat: Sequence[Any]) -> Any:
        parts, start = [], 0
        for spec, n in specs:
            parts.append(_unflatten(spec, flat[start : start + n]))
            start += n
        return parts[0] if isinstance(argnums, int) else tuple(parts)

    return call_args, wrt, rebuild, nested, level


def _zeros_like(t: Any) -> Any:
    return wrap_array(np.zeros_like(t.array))  # host: zeros_like follows t's namespace


def _backward(outs: Sequence[Any], wrt: Sequence[Any], cotangents: Sequence[Any], create_graph: bool) -> list[Any]:
    """Gradients of ``sum(out * cotangent)`` with respect to each of ``wrt``; zeros where unused."""
    pairs = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
    if not pairs:
        return [_zeros_like(t) for t in wrt]
    found = autograd.grad(
        [o for o, _ in pairs], list(wrt), [c for _, c in pairs],
        retain_graph=True, create_graph=create_graph, allow_unused=True,
    )  # fmt: skip
    return [_zeros_like(t) if g is None else g for g, t in zip(found, wrt)]


def _tensor_leaves(tree: Any, what: str, fn: str) -> tuple[list[Any], _Spec]:

    leaves, spec = _flatten(tree)
    for leaf in leaves:
        if not isinstance(leaf, Tensor):
            raise ArgumentTypeError(
                f"func.{fn}: expected {what} to be tensors (or pytrees of them), got {type(leaf).__name__}"
            )
    return leaves, spec


def _split_aux(result: Any, has_aux: bool, fn: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise ArgumentTypeError(
            f"func.{fn}(f, has_aux=True): f must return a tuple (output, aux), got {type(result).__name__}"
        )
    return result


def _aux_shown(aux: Any, nested: bool, level: int) -> Any:
    """``aux`` as the caller sees it: as torch.func's, its tensors are detached from this transform's
    graph (``aux.numpy()`` works), unless they come from an outer computation (a nested transform),
    which must still see through them. ``nested``: whether an argument came from one."""
    leaves, spec = _flatten(aux)
    tensors = [x for x in leaves if isinstance(x, Tensor)]
    if not tensors:
        return aux
    keep = _connected(nested, _unbatched(tensors), level)
    return _unflatten(spec, [_outer(x, keep) if isinstance(x, Tensor) else x for x in leaves])


def _outer(t: Any, nested: bool) -> Any:
    """A result as the caller sees it: still connected when the inputs came from an outer computation."""
    return t if nested else t.detach()


# --- grad, vjp, jvp --------------------------------------------------------------------------------


def grad_and_value(
    func: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """``torch.func.grad_and_value``: like :func:`grad`, but the new function returns ``(gradient,
    value)`` (``(gradient, (value, aux))`` with ``has_aux=True``), so the loss is not computed twice.

    Example:
        >>> import downslope as ds
        >>> g, value = ds.func.grad_and_value(lambda x: (x ** 2).sum())(ds.tensor([1.0, 2.0]))
        >>> g, value
        (tensor([2., 4.]), tensor(5.))
    """
    _check_callable(func, "grad_and_value")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call_args, wrt, rebuild, nested, level = _prepare(args, argnums, "grad")
        size_now = _batched_size("grad")
        with enable_grad():
            result = func(*call_args, **kwargs)
        out, aux = _split_aux(result, has_aux, "grad")
        if size_now is not None:
            return _batched_grad(out, aux, wrt, rebuild, nested, level, has_aux)
        # torch raises RuntimeError for both (a TypeError too, as before)
        if not isinstance(out, Tensor):
            raise ArgumentTypeRuntimeError(
                f"func.grad: the function must return a scalar tensor, got {type(out).__name__}"
            )
        if out.array.size != 1:
            raise ArgumentTypeRuntimeError(
                f"func.grad: the function must return a scalar tensor, got shape {tuple(out.shape)}; "
                "use func.vjp or func.jacrev for a non-scalar output"
            )
        aux = _aux_shown(aux, nested, level) if has_aux else aux
        nested = _connected(nested, [out], level)
        grads = _backward([out], wrt, [np.ones_like(out.array)], nested)  # host: follows out's namespace
        found = rebuild([_outer(g, nested) for g in grads])
        value = _outer(out, nested)
        return (found, (value, aux)) if has_aux else (found, value)

    return wrapper


def _batched_grad(out: Any, aux: Any, wrt: Sequence[Any], rebuild: Any, nested: bool, level: int, has_aux: bool) -> Any:
    """grad_and_value's result inside a batched vmap call: every element's gradient, in one backward
    walk of the batch (the elements' values are independent, so the gradient of their sum at each
    element's own argument is that element's gradient)."""
    from ._vmap import BatchedTensor, NoRule

    if not isinstance(out, Tensor) or out.numel() != 1:
        raise NoRule("vmap: grad of a non-scalar output (the loop raises torch's error)")
    value = out.value if isinstance(out, BatchedTensor) else out
    aux = _aux_shown(aux, nested, level) if has_aux else aux
    nested = _connected(nested, [value], level)
    phys = _unbatched(wrt)
    if nested or not value.requires_grad:
        grads = _backward([value], phys, [np.ones_like(value.array)], nested)  # host: follows value's namespace
    else:
        grads = _private_walk(value, phys)
    found = rebuild([BatchedTensor(_outer(g, nested)) for g in grads])
    shown = BatchedTensor(_outer(value, nested)) if isinstance(out, BatchedTensor) else _outer(value, nested)
    return (found, (shown, aux)) if has_aux else (found, shown)


def _private_walk(value: Any, wrt: Sequence[Any]) -> list[Any]:
    """``_backward([value], wrt, [ones])`` for a graph made inside this call and dropped after it (nothing
    outside can reach it): the gradients the walk made are handed out as they are, where
    ``autograd.grad`` copies each (per-sample gradients of a layer are batch x its size)."""
    captured = autograd._run_backward(
        [value], [np.ones_like(value.array)], True, False, capture=list(wrt), grad_call=True
    )  # host: follows value's namespace
    grads = []
    for t in wrt:
        g = captured.get(id(t))
        if g is None:
            grads.append(_zeros_like(t))
        elif type(g) is np.ndarray and g.base is None and g.flags.writeable and g.dtype == t.array.dtype:
            grads.append(wrap_array(g))  # made by the walk for this gradient alone
        else:  # a view, another dtype, another kind of array: its own copy, as autograd.grad's
            grads.append(wrap_array(g.astype(t.array.dtype)) if hasattr(g, "astype") else wrap_array(g.dense()))
    return grads


def grad(func: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable[..., Any]:
    """The function computing the gradient of the scalar ``func(*args)`` with respect to the argument(s)
    ``argnums`` (``torch.func.grad``).

    An integer ``argnums`` gives one gradient, a tuple gives a tuple; an argument may be a pytree (a
    dict of parameters, say), and its gradient has the same structure. With ``has_aux=True``, ``func``
    returns ``(scalar, aux)`` and the new function returns ``(gradient, aux)``. Transforms compose:
    ``grad(grad(f))`` is the second derivative, because an argument that already requires grad (while
    recording) gets a gradient that is itself differentiable. Arguments may be tensors, arrays or numbers.

    Example:
        >>> import downslope as ds
        >>> ds.func.grad(lambda x: (x ** 3).sum())(ds.tensor([1.0, 2.0]))
        tensor([ 3., 12.])
        >>> ds.func.grad(ds.func.grad(lambda x: x ** 3))(ds.tensor(2.0))
        tensor(12.)
    """
    _check_callable(func, "grad")
    inner = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def grad_fn(*args: Any, **kwargs: Any) -> Any:
        found, value = inner(*args, **kwargs)
        return (found, value[1]) if has_aux else found

    return grad_fn


def vjp(func: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``torch.func.vjp``: ``(func(*primals), vjp_fn)``, where ``vjp_fn(cotangents)`` returns the
    vector-Jacobian products, a tuple with one entry per primal (each of its structure);
    ``cotangents`` has the output's structure and shapes. With ``has_aux=True`` ``func`` returns
    ``(output, aux)`` and the result is ``(output, vjp_fn, aux)``. ``vjp_fn`` may be called many times.

    Example:
        >>> import downslope as ds
        >>> out, vjp_fn = ds.func.vjp(lambda x: x ** 2, ds.tensor([1.0, 3.0]))
        >>> vjp_fn(ds.tensor([1.0, 1.0]))
        (tensor([2., 6.]),)
    """
    _check_callable(func, "vjp")
    if not primals:
        raise ArgumentError("func.vjp: expected at least one primal")
    call_args, wrt, rebuild, nested, level = _prepare(primals, tuple(range(len(primals))), "vjp")
    with enable_grad():
        result = func(*call_args)
    out, aux = _split_aux(result, has_aux, "vjp")
    outs, out_spec = _tensor_leaves(out, "the outputs of func", "vjp")
    aux = _aux_shown(aux, nested, level) if has_aux else aux
    nested = _connected(nested, outs, level)

    def vjp_fn(cotangents: Any, *, retain_graph: bool = True, create_graph: bool | None = None) -> tuple[Any, ...]:
        cots, spec = _tensor_leaves(cotangents, "the cotangents", "vjp")
        if spec != out_spec:
            raise ShapeError(
                f"func.vjp: the cotangents have structure {_spec_repr(spec)}, the outputs {_spec_repr(out_spec)}"
            )
        for c, o in zip(cots, outs):
            if tuple(c.shape) != tuple(o.shape):
                raise ShapeError(f"func.vjp: a cotangent has shape {tuple(c.shape)}, its output {tuple(o.shape)}")
        keep = nested or bool(create_graph) or any(c.requires_grad for c in cots)
        grads = _backward(outs, wrt, cots, keep)
        found = rebuild([_outer(g, keep) for g in grads])
        return found if isinstance(found, tuple) else (found,)

    shown = _unflatten(out_spec, [_outer(o, nested) for o in outs])
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def _jvp_flat(outs: Sequence[Any], context: Any, create_graph: bool) -> list[Any]:
    """J v for each output from ``context`` (``forward_ad.jvp_context``), as the derivative of the
    vector-Jacobian product: J^T u is linear in u, so the gradient of (J^T u) . v with respect to u is
    J v. Custom Functions on the way gave their tangents through their own jvp when they were applied,
    as in torch.func.jvp."""
    from .forward_ad import tangents_of

    found = tangents_of(outs, context, create_graph)
    return [_zeros_like(o) if f is None else f for f, o in zip(found, outs)]


def _check_tangents(primals: Any, tangents: Any, fn: str) -> list[Any]:
    for what, value in (("primals", primals), ("tangents", tangents)):
        if not isinstance(value, tuple):
            raise ArgumentTypeRuntimeError(  # torch: a RuntimeError
                f"func.{fn}(f, primals, tangents): expected {what} to be a tuple, got {type(value).__name__}; "
                "it should be valid to call f(*primals)"
            )
    p_leaves, p_spec = _tensor_leaves(primals, "the primals", fn)
    t_leaves, t_spec = _tensor_leaves(tangents, "the tangents", fn)
    if p_spec != t_spec:
        raise ShapeError(
            f"func.{fn}: the tangents have structure {_spec_repr(t_spec)}, the primals {_spec_repr(p_spec)}"
        )
    out = []
    for p, t in zip(p_leaves, t_leaves):
        if tuple(p.shape) != tuple(t.shape):
            raise ShapeError(f"func.{fn}: a tangent has shape {tuple(t.shape)}, its primal {tuple(p.shape)}")
        out.append(t if t.dtype == p.dtype else t.to(p.dtype))
    return out


def jvp(
    func: Callable[..., Any], primals: Any, tangents: Any, *, strict: bool = False, has_aux: bool = False
) -> tuple[Any, ...]:
    """``torch.func.jvp``: ``(func(*primals), J v)``, the output and the Jacobian-vector product along
    ``tangents`` (a tuple with the structure and shapes of ``primals``); ``(output, jvp_out, aux)``
    with ``has_aux=True``. Computed as the derivative of a vector-Jacobian product (two backward
    passes), not by forward-mode propagation: the numbers are the same.

    Example:
        >>> import downslope as ds
        >>> ds.func.jvp(lambda x: x ** 2, (ds.tensor([1.0, 3.0]),), (ds.tensor([1.0, 0.0]),))
        (tensor([1., 9.]), tensor([2., 0.]))
    """
    _check_callable(func, "jvp")
    if strict:
        raise ArgumentError("func.jvp: strict=True is not implemented (PyTorch does not implement it either)")
    vs = _check_tangents(primals, tangents, "jvp")
    call_args, wrt, _, nested, level = _prepare(primals, tuple(range(len(primals))), "jvp")
    size = _batched_size("jvp")
    if size is not None:
        # inside a batched vmap call the batch's function is each element's, side by side: its Jacobian
        # is block-diagonal over the batch, so J v of the batch (each element's tangent in its row) is
        # every element's own J v
        from ._vmap import BatchedTensor, unwrap

        vs = [v.value if isinstance(v, BatchedTensor) else v.unsqueeze(0).expand(size, *v.shape) for v in vs]
    from .forward_ad import jvp_context

    # custom Functions run their jvp when applied: keep those tangents differentiable where the
    # result may have to be (it is known only after func has run)
    may_keep = nested or is_grad_enabled() or any(v.requires_grad for v in vs)
    with enable_grad(), jvp_context(_unbatched(wrt), vs, may_keep) as context:
        result = func(*call_args)
    out, aux = _split_aux(result, has_aux, "jvp")
    outs, out_spec = _tensor_leaves(out, "the outputs of func", "jvp")
    aux = _aux_shown(aux, nested, level) if has_aux else aux
    nested = _connected(nested, outs, level)
    keep = nested or any(v.requires_grad for v in vs)
    if size is None:
        forward = _jvp_flat(outs, context, keep)
    else:
        values = [unwrap(o) for o in outs]
        found = _jvp_flat(values, context, keep)
        # an output that is not batched depends on no element's argument: its J v is zero
        forward = [BatchedTensor(f) if isinstance(o, BatchedTensor) else f for f, o in zip(found, outs)]
    shown = _unflatten(out_spec, [_outer(o, nested) for o in outs])
    jvp_out = _unflatten(out_spec, [_outer(f, keep) for f in forward])
    return (shown, jvp_out, aux) if has_aux else (shown, jvp_out)


def linearize(func: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., Any]]:
    """``torch.func.linearize``: ``(func(*primals), jvp_fn)``, where ``jvp_fn(*tangents)`` is the
    Jacobian-vector product at ``primals`` (``func`` is run again for each call here).

    Example:
        >>> import downslope as ds
        >>> out, jvp_fn = ds.func.linearize(lambda x: x.sin(), ds.tensor([0.0]))
        >>> jvp_fn(ds.tensor([2.0]))
        tensor([2.])
    """
    _check_callable(func, "linearize")
    out = func(*primals)

    def jvp_fn(*tangents: Any) -> Any:
        return jvp(func, primals, tangents)[1]

    return out, jvp_fn


# --- Jacobians ----------------------------------------------------------------------------------


def _jacobian_blocks(out: Any, wrt: Sequence[Any], nested: bool) -> list[Any]:
    """d out / d x for each x of ``wrt``, shaped ``out.shape + x.shape``: one walk with the identity's
    rows as a batch of cotangents where it can be batched, else one backward pass per element of ``out``."""
    n = out.array.size
    if n and out.requires_grad:  # every row in one walk (recorded where the result must stay differentiable)
        eye = backend.namespace_of(out.array).eye(n, dtype=out.array.dtype).reshape((n, *out.shape))
        found = autograd.batched_cotangent_grads(out, eye, wrt, create_graph=nested)
        if found is not None:
            if nested:
                return [g.reshape(tuple(out.shape) + tuple(x.shape)) for g, x in zip(found, wrt)]
            return [wrap_array(g.reshape(tuple(out.shape) + tuple(x.shape))) for g, x in zip(found, wrt)]
    rows: list[list[Any]] = []
    for k in range(n):
        selector = np.zeros_like(out.array).reshape(-1)  # host: follows out's namespace
        selector[k] = 1
        rows.append(_backward([out], wrt, [wrap_array(selector.reshape(out.shape))], nested))
    blocks = []
    for i, x in enumerate(wrt):
        if n:
            block = stack([r[i] for r in rows]).reshape(tuple(out.shape) + tuple(x.shape))
        else:
            block = wrap_array(np.zeros_like(x.array, shape=(*out.shape, *x.shape)))  # host: follows x
        blocks.append(_outer(block, nested))
    return blocks


def _batched_jacobian(func: Any, args: Any, kwargs: Any, argnums: Any, has_aux: bool, fn: str) -> Any:
    """jacrev/jacfwd inside a batched vmap call (see ``_batched_jacobian_blocks``). A Jacobian that must
    stay differentiable (the function reaches parameters requiring grad, or an outer transform's
    argument) is one walk too: ``func`` runs again on every element repeated once per output element
    (a batch of B * rows), and one backward pass with the identity's rows as the cotangents records
    every row's derivative at once, as torch's vmap over the vector-Jacobian product does."""
    from ._vmap import BatchedTensor

    outs, out_spec, wrt, rebuild, nested, aux = _traced_outputs(func, args, kwargs, argnums, has_aux, fn)
    counts = [int(np.prod(tuple(o.shape), dtype=np.int64)) for o in outs]
    total = sum(counts)
    replicable = all(isinstance(o, BatchedTensor) and o.value.requires_grad for o in outs)
    if nested and total > 1 and replicable and all(o.value.dtype.kind == "f" for o in outs):
        blocks = _replicated_blocks(func, args, kwargs, argnums, fn, outs, counts)
    else:
        blocks = [_batched_jacobian_blocks(o, wrt, nested) for o in outs]
    jac = _unflatten(out_spec, [rebuild(b) for b in blocks])
    return (jac, aux) if has_aux else jac


def _replicated_blocks(
    func: Any, args: Any, kwargs: Any, argnums: Any, fn: str, outs: Sequence[Any], counts: list[int]
) -> list[list[Any]]:
    """Each output's Jacobian blocks, recorded, from one run of ``func`` on the batch repeated
    ``sum(counts)`` times and one backward pass (see ``_batched_jacobian``)."""
    from ._vmap import BatchedTensor, NoRule, batch_size_now, installed

    size = batch_size_now()
    assert size is not None
    total = sum(counts)
    leaves, spec = _flatten(args)
    repeated = []
    for leaf in leaves:
        if isinstance(leaf, BatchedTensor):
            v = leaf.value
            shape = tuple(v.shape[1:])
            leaf = BatchedTensor(v.unsqueeze(1).expand(size, total, *shape).reshape(size * total, *shape))
        repeated.append(leaf)
    with installed(size * total):
        outs2, _, wrt2, _, _, _ = _traced_outputs(func, _unflatten(spec, repeated), kwargs, argnums, False, fn)
    if len(outs2) != len(outs) or not all(isinstance(o, BatchedTensor) for o in outs2):
        raise NoRule("vmap: the function's outputs changed when run again")
    values = [o.value for o in outs2]
    cotangents = []
    offset = 0
    for o, n in zip(values, counts):
        rows = np.zeros((size, total, n), dtype=o.array.dtype)  # host: a selector, moved below
        rows[:, offset : offset + n, :] = np.eye(n, dtype=o.array.dtype)
        cotangents.append(wrap_array(backend.namespace_of(o.array).asarray(rows.reshape(o.shape))))
        offset += n
    grads = _backward(values, _unbatched(wrt2), cotangents, True)
    blocks = []
    offset = 0
    for o, n in zip(outs, counts):
        row = []
        for g, x in zip(grads, wrt2):
            shape = tuple(x.shape)
            part = g.reshape(size, total, *shape)[:, offset : offset + n]
            row.append(BatchedTensor(part.reshape(size, *tuple(o.shape), *shape)))
        blocks.append(row)
        offset += n
    return blocks


def _batched_jacobian_blocks(out: Any, wrt: Sequence[Any], nested: bool) -> list[Any]:
    """``_jacobian_blocks`` inside a batched vmap call: each element's Jacobian of ``out`` with respect
    to each of ``wrt`` (BatchedTensors, blocks of an element's shape ``out.shape + x.shape``). The
    identity's rows go through the batch's graph as cotangents, each row the same for every element:
    in one walk where the graph's ops have batched rules, else one walk per row."""
    from ._vmap import BatchedTensor

    value = out.value if isinstance(out, BatchedTensor) else out
    phys = _unbatched(wrt)
    size = int(phys[0].shape[0])
    out_shape = tuple(out.shape)
    n = int(np.prod(out_shape, dtype=np.int64))
    if not isinstance(out, BatchedTensor) or n == 0 or not value.requires_grad:
        # an output that does not depend on the (batched) arguments: zeros
        return [
            BatchedTensor(_zeros_like_shaped(x, (size, *out_shape, *tuple(x.shape[1:])))) for x in phys
        ]  # fmt: skip
    xp = backend.namespace_of(value.array)
    eye = xp.eye(n, dtype=value.array.dtype).reshape((n, 1, *out_shape))
    if not nested:
        rows = xp.ascontiguousarray(xp.broadcast_to(eye, (n, size, *out_shape)))
        found = autograd.batched_cotangent_grads(value, rows, phys)
        if found is not None:
            return [
                BatchedTensor(wrap_array(xp.moveaxis(g, 0, 1).reshape((size, *out_shape, *tuple(x.shape[1:])))))
                for g, x in zip(found, phys)
            ]
    columns = [
        _backward(
            [value], phys, [wrap_array(xp.ascontiguousarray(xp.broadcast_to(eye[k], (size, *out_shape))))], nested
        )
        for k in range(n)
    ]
    blocks = []
    for i, x in enumerate(phys):
        block = stack([c[i] for c in columns], dim=1).reshape((size, *out_shape, *tuple(x.shape[1:])))
        blocks.append(BatchedTensor(_outer(block, nested)))
    return blocks


def _forward_blocks(outs: Sequence[Any], wrt: Sequence[Any], nested: bool) -> list[list[Any]] | None:
    """d out / d x for each output of ``outs`` and each x of ``wrt`` (``[out][x]``, shaped ``out.shape +
    x.shape``) a column at a time, as forward mode does: one backward pass with ``create_graph`` gives
    J^T u as a function of a stand-in cotangent u; that is linear in u, so the gradient of its element
    e with respect to u is column e of J. That is one pass per input element (each through the graph
    of J^T u) instead of one per output element: the cheaper side of a tall Jacobian. None when a
    custom Function lies on the way (its backward may be array code, not differentiable again)."""
    live = [o for o in outs if o.requires_grad and o.dtype.kind == "f"]
    if _custom_function_on_the_way(live, {id(x) for x in wrt}):
        return None
    blocks: list[list[Any]] = [
        [_zeros_like_shaped(x, (*o.shape, *x.shape)) for x in wrt] for o in outs
    ]  # fmt: skip
    if not live:
        return blocks
    # The stand-in cotangents are recorded ops, not leaves: made after every node of the function's graph,
    # they let each pass below leave that graph out of its walk (see autograd._capture_floor)
    with enable_grad():
        dummies = [wrap_array(np.zeros_like(o.array)).requires_grad_(True) * 1.0 for o in live]  # host: follows o
        transposed = autograd.grad(live, list(wrt), dummies, create_graph=True, allow_unused=True)
    positions = [k for k, o in enumerate(outs) if o.requires_grad and o.dtype.kind == "f"]
    for i, (x, t) in enumerate(zip(wrt, transposed)):
        n = x.array.size
        if t is None or not t.requires_grad or n == 0:
            continue  # no output depends on x (or only through a constant path): zeros
        # every column in one walk, the identity's rows as a batch (recorded where the result must stay
        # differentiable)
        xp = backend.namespace_of(t.array)
        eye = xp.eye(n, dtype=t.array.dtype).reshape((n, *t.shape))
        found = autograd.batched_cotangent_grads(t, eye, dummies, create_graph=nested)
        if found is not None:
            for k, g in zip(positions, found):
                # g[e] is d out / d x[e]: the batch dim moved last, then out.shape + x.shape
                shape = tuple(outs[k].shape) + tuple(x.shape)
                if nested:
                    blocks[k][i] = (g.movedim(0, -1) if g.ndim > 1 else g).reshape(shape)
                else:
                    blocks[k][i] = wrap_array((xp.moveaxis(g, 0, -1) if g.ndim > 1 else g).reshape(shape))
            continue
        flat = t.reshape(-1)
        columns: list[list[Any]] = [[] for _ in live]
        for e in range(n):
            for c, g in zip(
                columns, _backward([flat[e]], dummies, [np.ones((), flat.array.dtype)], nested)
            ):  # host: a scalar's weight
                c.append(g)
        for k, c in zip(positions, columns):
            o = outs[k]
            # columns[e] is d out / d x[e]: stacked along a trailing axis and reshaped to out.shape + x.shape
            blocks[k][i] = (
                stack(c, dim=-1).reshape(tuple(o.shape) + tuple(x.shape))
                if o.ndim
                else stack(c).reshape(tuple(x.shape))
            )
    return [[_outer(b, nested) for b in row] for row in blocks]


def _custom_function_on_the_way(outs: Sequence[Any], stop: set[int]) -> bool:
    """Whether a custom Function's node lies in the graph of ``outs`` (not looking behind ``stop``)."""
    todo = list(outs)
    seen = {id(t) for t in todo}
    while todo:  # depth-first, without recursion (graphs may be deep)
        t = todo.pop()
        if t._vjp is autograd._function_vjp:
            return True
        if id(t) in stop:
            continue
        for p in t._parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                todo.append(p)
    return False


def _zeros_like_shaped(x: Any, shape: tuple[int, ...]) -> Any:
    return wrap_array(np.zeros_like(x.array, shape=shape))  # host: follows x's namespace


def _reverse_is_cheaper(outs: Sequence[Any], wrt: Sequence[Any]) -> bool:
    """Whether one backward pass per output element costs no more than one per input element."""
    return sum(int(o.array.size) for o in outs) <= sum(int(x.array.size) for x in wrt)


def jacrev(
    func: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    *,
    has_aux: bool = False,
    chunk_size: int | None = None,
    _preallocate_and_copy: bool = False,
) -> Callable[..., Any]:
    """``torch.func.jacrev``: the function computing the Jacobian of ``func`` with respect to the
    argument(s) ``argnums``, in reverse mode: the identity's rows as a batch of cotangents carried
    through one walk of the graph where its ops allow it (``autograd.batched_cotangent_grads``), else
    one backward pass per output element (a result that must stay differentiable, hooks on the way, an
    op without a batched rule). Each output leaf gets a block of
    shape ``output.shape + input.shape`` (a tuple of blocks for a tuple ``argnums``, the argument's
    structure for a pytree argument), in the output's structure; with ``has_aux=True`` the new
    function returns ``(jacobian, aux)``. ``chunk_size`` is accepted (it only bounds memory in PyTorch).

    Example:
        >>> import downslope as ds
        >>> ds.func.jacrev(lambda x: x[:1] * x[1:])(ds.tensor([2.0, 3.0]))
        tensor([[3., 2.]])
    """
    _check_callable(func, "jacrev")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ArgumentError(f"func.jacrev: chunk_size must be None or a positive integer, got {chunk_size!r}")
    del _preallocate_and_copy

    @functools.wraps(func)
    def jac_fn(*args: Any, **kwargs: Any) -> Any:
        if _batched_size("jacrev") is not None:
            return _batched_jacobian(func, args, kwargs, argnums, has_aux, "jacrev")
        outs, out_spec, wrt, rebuild, nested, aux = _traced_outputs(func, args, kwargs, argnums, has_aux, "jacrev")
        jac = _unflatten(out_spec, [rebuild(_jacobian_blocks(o, wrt, nested)) for o in outs])
        return (jac, aux) if has_aux else jac

    return jac_fn


def _traced_outputs(
    func: Callable[..., Any], args: Any, kwargs: Any, argnums: Any, has_aux: bool, fn: str
) -> tuple[list[Any], Any, Any, Callable[..., Any], bool, Any]:
    """What a Jacobian needs of one call of ``func``: its tensor outputs and their structure, the inputs
    they are differentiated against (``wrt``, with ``rebuild`` shaping a block per input), whether the
    graph must stay differentiable (``nested``), and ``aux``."""
    call_args, wrt, rebuild, nested, level = _prepare(args, argnums, fn)
    with enable_grad():
        result = func(*call_args, **kwargs)
    out, aux = _split_aux(result, has_aux, fn)
    outs, out_spec = _tensor_leaves(out, "the outputs of func", fn)
    aux = _aux_shown(aux, nested, level) if has_aux else aux
    return outs, out_spec, wrt, rebuild, _connected(nested, outs, level), aux


def jacfwd(
    func: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    *,
    randomness: str = "error",
) -> Callable[..., Any]:
    """``torch.func.jacfwd``: the Jacobian of ``func`` with respect to ``argnums``, with
    :func:`jacrev`'s shapes and structure. downslope has no forward-mode rules: a Jacobian with more
    output than input elements is taken a column at a time, as PyTorch's forward passes are (one
    backward pass through the graph of the vector-Jacobian product per input element, the "double
    vjp"); a wider one, or one through a custom Function, in reverse mode (one backward pass per output
    element). The numbers are the same. ``randomness`` is accepted for PyTorch's signature.

    Example:
        >>> import downslope as ds
        >>> ds.func.jacfwd(lambda x: x ** 2)(ds.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    _check_callable(func, "jacfwd")
    _check_randomness(randomness)

    @functools.wraps(func)
    def jac_fn(*args: Any, **kwargs: Any) -> Any:
        if _batched_size("jacfwd") is not None:  # the same numbers in reverse mode, a batch at a time
            return _batched_jacobian(func, args, kwargs, argnums, has_aux, "jacfwd")
        outs, out_spec, wrt, rebuild, nested, aux = _traced_outputs(func, args, kwargs, argnums, has_aux, "jacfwd")
        blocks = None if _reverse_is_cheaper(outs, wrt) else _forward_blocks(outs, wrt, nested)
        if blocks is None:
            blocks = [_jacobian_blocks(o, wrt, nested) for o in outs]
        jac = _unflatten(out_spec, [rebuild(b) for b in blocks])
        return (jac, aux) if has_aux else jac

    return jac_fn


def hessian(func: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """``torch.func.hessian``: the Hessian of the scalar ``func`` with respect to ``argnums``,
    ``jacfwd(jacrev(func, argnums), argnums)`` (shape ``input.shape + input.shape``, after the
    output's own shape for a vector-valued ``func``), as PyTorch's: one backward pass per output
    element, then one per input element.

    Example:
        >>> import downslope as ds
        >>> ds.func.hessian(lambda x: (x ** 3).sum())(ds.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    _check_callable(func, "hessian")
    return jacfwd(jacrev(func, argnums), argnums)


# --- vmap -----------------------------------------------------------------------------------------

_RANDOMNESS = ("error", "different", "same")


def _check_randomness(randomness: Any) -> None:
    if randomness not in _RANDOMNESS:
        raise ArgumentError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")


def _rng_state() -> Any:
    return backend.rng().bit_generator.state


def _batch_size(func: Any, in_dims: Any, args: tuple[Any, ...]) -> tuple[list[Any], _Spec, list[int | None], int]:
    """(the flat arguments, their structure, each one's normalized batch dim or None, the batch size)."""
    where = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
    if not args:
        raise ArgumentError(
            f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are trying "
            "to vmap over a function with no inputs. The latter is unsupported."
        )
    if isinstance(in_dims, bool) or not isinstance(in_dims, (int, tuple)):
        raise ArgumentError(
            f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the structure of "
            f"inputs, got: {type(in_dims)}."
        )
    leaves, spec = _flatten(args)
    dims = _broadcast_prefix(in_dims, args)
    if dims is None:
        raise ArgumentError(
            f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has structure "
            f"{_spec_repr(_flatten(in_dims)[1])} but inputs has structure {_spec_repr(spec)}."
        )
    sizes: list[int] = []
    normal: list[int | None] = []
    for leaf, d in zip(leaves, dims):
        if d is None:
            normal.append(None)
            continue
        if isinstance(d, bool) or not isinstance(d, int):
            raise ArgumentError(
                f"{where}: Got in_dim={d} for an input but in_dim must be either an integer dimension or None."
            )
        if not isinstance(leaf, Tensor):
            raise ArgumentError(
                f"{where}: Got in_dim={d} for an input but the input is of type {type(leaf)}. We cannot vmap "
                "over non-Tensor arguments, please use None as the respective in_dim"
            )
        if not -leaf.ndim <= d < leaf.ndim:
            raise ArgumentError(
                f"{where}: Got in_dim={d} for some input, but that input is a Tensor of dimensionality "
                f"{leaf.ndim} so expected in_dim to satisfy -{leaf.ndim} <= in_dim < {leaf.ndim}."
            )
        d %= leaf.ndim
        normal.append(d)
        sizes.append(int(leaf.shape[d]))
    if not sizes:
        raise ArgumentError("vmap: Expected at least one Tensor to vmap over")
    if len(set(sizes)) > 1:
        raise ArgumentError(
            f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes {sizes} for "
            "the mapped dimension"
        )
    return leaves, spec, normal, sizes[0]


def _same_values(parts: Sequence[Any]) -> bool:
    first = parts[0]
    for p in parts[1:]:
        if p is first:
            continue
        if tuple(p.shape) != tuple(first.shape):
            return False
        # an explicit copy of one flag: vmap has no batching rule to know this without the values
        if not bool(to_host((p.array == first.array).all())):  # host: one flag, copied explicitly
            return False
    return True


def _combine(func: Any, out_dims: Any, results: list[Any], empty: bool) -> Any:
    """The per-element results stacked along ``out_dims`` (a batch of none when ``empty``)."""
    flat = [_flatten(r) for r in results]
    leaves0, spec = flat[0]
    for _, s in flat[1:]:
        if s != spec:
            raise ShapeError(
                f"vmap({_name(func)}, ...): the function returned different structures for different batch "
                f"elements ({_spec_repr(spec)} and {_spec_repr(s)})"
            )
    dims_tree = out_dims
    if isinstance(out_dims, tuple) and len(out_dims) == 1 and spec is None:
        dims_tree = out_dims[0]  # a 1-tuple of out_dims for a single output, as PyTorch accepts
    dims = _broadcast_prefix(dims_tree, results[0])
    if dims is None:
        raise ArgumentError(
            f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the "
            f"structure of `outputs`. out_dims has structure {_spec_repr(_flatten(out_dims)[1])} but outputs "
            f"has structure {_spec_repr(spec)}."
        )
    combined = []
    for j, d in enumerate(dims):
        parts = [leaves[j] for leaves, _ in flat]
        if d is None:
            if isinstance(parts[0], Tensor) and not empty and not _same_values(parts):
                raise ArgumentError(
                    f"vmap({_name(func)}, ...): `{_name(func)}` can not return a BatchedTensor when out_dim is None"
                )
            combined.append(parts[0])
            continue
        if isinstance(d, bool) or not isinstance(d, int):
            raise ArgumentError(f"vmap({_name(func)}, ...): out_dims must be ints or None, got {d!r}")
        bad = next((p for p in parts if not isinstance(p, Tensor)), None)
        if bad is not None or not parts:
            # a ValueError as torch's for a returned number, and a RuntimeError as torch's for the usual
            # way to get one here (.item(), which torch's vmap refuses and this loop runs)
            raise InvalidValueError(
                f"vmap({_name(func)}, ...): `{_name(func)}` must only return Tensors, got type {type(bad)}. "
                "Did you mean to set out_dims= to None for output?"
            )
        ndim = parts[0].ndim
        if not -(ndim + 1) <= d <= ndim:
            raise OutOfRangeError(
                f"Dimension out of range (expected to be in range of [{-(ndim + 1)}, {ndim}], but got {d})"
            )
        if empty:
            combined.append(parts[0].unsqueeze(d).narrow(d, 0, 0))
        else:
            combined.append(stack(parts, dim=d))
    return _unflatten(spec, combined)


def _check_unbatched_unwritten(func: Any, unbatched: list[tuple[int, Any, int]]) -> None:
    """Raise torch's RuntimeError if ``func`` wrote in place into an argument vmap does not batch."""
    for k, leaf, version in unbatched:
        if leaf._version != version:
            raise StateError(
                f"vmap({_name(func)}, ...): the function wrote in place into input {k} (flattened), which is "
                f"not batched (its in_dim is None; shape {tuple(leaf.shape)}). In-place writes of batched "
                "values into an unbatched tensor are not possible in vmap (torch refuses them too), and "
                "this vmap runs the function once per element, so the write would repeat for each "
                "(the first element's write has been made). Write into a copy (x = x.clone()) or an "
                "out-of-place op, or batch that input."
            )


class _Slices:
    """The slices of a tensor along ``dim`` (``tensor.unbind(dim)``'s values), each made when asked."""

    __slots__ = ("tensor", "lead")

    def __init__(self, tensor: Any, dim: int) -> None:
        self.tensor = tensor
        self.lead = (slice(None),) * dim

    def __getitem__(self, i: int) -> Any:
        return self.tensor[self.lead + (i,)] if self.lead else self.tensor[i]


def vmap(
    func: Callable[..., Any],
    in_dims: int | tuple[Any, ...] = 0,
    out_dims: int | tuple[Any, ...] = 0,
    randomness: str = "error",
    *,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """``torch.func.vmap`` (``torch.vmap``): the function mapping ``func`` over a batch dimension of its
    arguments, with PyTorch's semantics.

    As torch's, ``func`` runs once, on the whole batch: each batched argument is a BatchedTensor that
    looks like one element (its shape, ``ndim``, indexing and dims are an element's) and carries the
    batch, and each op applies a batching rule (``_vmap.py``): pointwise ops, matmul/bmm/einsum/
    linear/addmm, conv1d/conv2d (batched weights too) and pooling, reductions (var/std, any/all,
    max/min with indices...), softmax, sort/argsort/topk, cumulative ops, shape ops, indexing (with
    batched indices too), gather/take_along_dim/index_select/scatter, masked_fill/where, embedding
    (batched ids and/or tables), one_hot, scaled_dot_product_attention, layer/group/batch norm, the
    usual losses, ``nn.Linear``/``nn.Conv1d``/``nn.Conv2d``, and the :func:`grad`,
    :func:`grad_and_value`, :func:`jvp`, :func:`jacrev`, :func:`jacfwd` and :func:`hessian`
    transforms inside (per-sample gradients, ensembles of stacked models, batched Jacobians). A vmap
    inside a batched call flattens both batches into one call. Gradients flow through the batched call.

    A batch norm layer that would update its running statistics in place from a batch refuses, with
    torch's error (use ``track_running_stats=False`` or :func:`replace_all_batch_norm_modules_`).

    An op of the rule tables whose rule cannot take its arguments runs per element alone (as torch's
    fallback), its results stacked: the function itself still runs once. A function that needs one
    element's values (``.item()``, data-dependent control flow, a custom ``autograd.Function``, an
    in-place write), or an op outside the tables, or a per-element op that draws random numbers or
    gives results of different shapes, makes the whole function run once per element instead, on the
    arguments sliced along their ``in_dims``, with the results stacked along ``out_dims``: the same
    results (torch's vmap refuses some of these; here they work), one Python call per element, and
    the work the function did before that point (its Python side effects included) is done twice. A
    vmapped function that fell back once loops at once after that.
    An empty batch runs ``func`` once on zeros of an element's shape to learn the output shapes.

    ``in_dims``: an int (every argument's batch dim), or a tuple with one entry per positional argument,
    each an int, None (not batched: passed whole) or a nested structure matching that argument's
    pytree. Keyword arguments are never batched. ``out_dims``: an int, or a structure matching the
    output pytree (tuples, lists, dicts); None returns an unbatched output as it is (an output that
    differs across elements is then an error); an unbatched output with an int out_dim is repeated
    along the batch. ``randomness``: 'error' raises if ``func`` draws from the global generator
    (detected by its state changing), 'same' gives every element the same draws, 'different' gives
    every element its own (such a function runs once per element). ``chunk_size``: the batch is run
    that many elements at a time (bounding memory, as torch's).

    Example:
        >>> import downslope as ds
        >>> ds.vmap(ds.dot)(ds.tensor([[1.0, 2.0], [3.0, 4.0]]), ds.tensor([[1.0, 1.0], [0.0, 1.0]]))
        tensor([3., 4.])
        >>> ds.vmap(lambda row, w: row * w, in_dims=(1, None))(ds.tensor([[1.0, 2.0], [3.0, 4.0]]), ds.tensor(2.0))
        tensor([[2., 6.],
                [4., 8.]])
    """
    if not callable(func):
        raise ArgumentTypeError(f"vmap: expected a function to map, got {type(func).__name__}")
    _check_randomness(randomness)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ArgumentError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    # cleared when a batched call fell back to the loop: later calls loop at once (also for a new vmap
    # of the same function code, as a vmap made inline in a training loop is)
    batching = [_code_of(func) not in _LOOPING_CODES]

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        leaves, spec, dims, size = _batch_size(func, in_dims, args)
        if size and batching[0] and BATCHING:
            from ._vmap import NoRule, Refused

            start = _rng_state()
            try:
                return _batched_call(func, out_dims, randomness, chunk_size, leaves, spec, dims, size, kwargs)
            except NoRule:
                pass
            except (_VmapError, Refused):
                raise
            except Exception:  # noqa: BLE001 - a rule's mistake or the user's: the loop gives the answer
                pass
            from ._vmap import batch_size_now

            if batch_size_now() is None:  # (inside another batched call, a plain call may still batch)
                batching[0] = False
                code = _code_of(func)
                if code is not None and len(_LOOPING_CODES) < 1024:
                    _LOOPING_CODES.add(code)
            backend.rng().bit_generator.state = start  # the loop draws what a first call would have
        return _looped(func, out_dims, randomness, leaves, spec, dims, size, kwargs)

    return wrapped


# Whether vmap tries the batched call first (tests turn it off to compare with the loop).
BATCHING = True
# The code of functions whose batched call fell back to the loop (bounded: a speed hint, not a result).
_LOOPING_CODES: set[Any] = set()


def _code_of(func: Any) -> Any:
    """The code objects of ``func`` and of the functions it wraps (``grad(f)`` is its wrapper's and f's)."""
    codes = []
    for _ in range(8):
        inner = getattr(func, "__func__", func)
        code = getattr(inner, "__code__", None)
        if code is None:
            return None
        codes.append(code)
        func = getattr(inner, "__wrapped__", None)
        if func is None:
            return tuple(codes)
    return None


class _VmapError(StateError):
    """An error the batched call raises as torch's vmap does (not a reason to loop)."""


def _batched_call(
    func: Any,
    out_dims: Any,
    randomness: str,
    chunk_size: int | None,
    leaves: list[Any],
    spec: _Spec,
    dims: list[int | None],
    size: int,
    kwargs: dict[str, Any],
) -> Any:
    """``func`` run once on BatchedTensors (see ``_vmap``); raises ``NoRule`` where it cannot be."""
    from ._vmap import BatchedTensor, NoRule

    if getattr(func, "__func__", None) is getattr(autograd.Function.__dict__["apply"], "__func__", None):
        raise NoRule("vmap: a custom autograd.Function's forward runs per element")  # (Function.apply itself)
    if chunk_size is not None and chunk_size < size:
        parts = []
        for begin in range(0, size, chunk_size):
            n = min(chunk_size, size - begin)
            chunk = [leaf if d is None else leaf.narrow(d, begin, n) for leaf, d in zip(leaves, dims)]
            parts.append(_batched_call(func, out_dims, randomness, None, chunk, spec, dims, n, kwargs))
        return _joined_chunks(func, out_dims, parts)
    if any(isinstance(leaf, BatchedTensor) for leaf in leaves):
        return _nested_batched_call(func, out_dims, randomness, leaves, spec, dims, size, kwargs)
    element = []
    for leaf, d in zip(leaves, dims):
        element.append(leaf if d is None else BatchedTensor(leaf if d == 0 else leaf.movedim(d, 0)))
    result = _run_once_batched(func, randomness, leaves, spec, dims, element, size, kwargs)
    return _batched_results(func, out_dims, result, size)


def _nested_batched_call(
    func: Any,
    out_dims: Any,
    randomness: str,
    leaves: list[Any],
    spec: _Spec,
    dims: list[int | None],
    size: int,
    kwargs: dict[str, Any],
) -> Any:
    """A vmap inside a batched vmap call: its arguments are the outer call's BatchedTensors. The two
    batches are flattened into one of ``outer * size`` elements (outer-major), so ``func`` runs once on
    it; each result is unflattened and its inner batch dim put at its out_dim, inside the outer batch.
    Raises ``NoRule`` where this cannot be (the inner call then loops over its own batch)."""
    from ._vmap import BatchedTensor, NoRule

    outer = {len(leaf.value) for leaf in leaves if isinstance(leaf, BatchedTensor)}
    if len(outer) != 1:
        raise NoRule("vmap: arguments of two different outer batches")
    n = outer.pop()
    total = n * size
    element = []
    for leaf, d in zip(leaves, dims):
        if isinstance(leaf, BatchedTensor):
            v = leaf.value
            # the inner batch right after the outer one: its own dim, or the element repeated
            v = v.unsqueeze(1).expand(n, size, *v.shape[1:]) if d is None else v.movedim(d + 1, 1)
            element.append(BatchedTensor(v.reshape(total, *v.shape[2:])))
        elif d is not None:
            v = leaf.movedim(d, 0)
            element.append(BatchedTensor(v.unsqueeze(0).expand(n, *v.shape).reshape(total, *v.shape[1:])))
        else:
            element.append(leaf)
    result = _run_once_batched(func, randomness, leaves, spec, dims, element, total, kwargs)
    return _batched_results(func, out_dims, result, size, outer=n)


def _run_once_batched(
    func: Any,
    randomness: str,
    leaves: list[Any],
    spec: _Spec,
    dims: list[int | None],
    element: list[Any],
    total: int,
    kwargs: dict[str, Any],
) -> Any:
    """``func`` called once on ``element`` (the arguments, batched ones as BatchedTensors of ``total``
    elements) with vmap's checks: a random draw (one draw for the whole batch would be the same for
    every element) and an in-place write into an argument that is not batched (``leaves``/``dims``)."""
    from ._vmap import BatchedTensor, NoRule, installed

    unbatched = [(k, leaf, leaf._version) for k, leaf in enumerate(leaves) if type(leaf) is not BatchedTensor
                 and isinstance(leaf, Tensor) and dims[k] is None]  # fmt: skip
    start = _rng_state()
    with installed(total):
        result = func(*_unflatten(spec, element), **kwargs)
    if _rng_state() != start:
        if randomness == "error":
            raise _VmapError(_RANDOM_ERROR)
        if randomness == "different":
            raise NoRule("vmap: randomness='different' with a draw (each element draws in the loop)")
    if unbatched:
        _check_unbatched_unwritten(func, unbatched)
    return result


_RANDOM_ERROR = (
    "vmap: called random operation while in randomness error mode. Please either use the 'same' "
    "or 'different' randomness flags on vmap or perform the randomness operation out of vmap"
)


def _out_dim_leaves(func: Any, out_dims: Any, result: Any) -> tuple[list[Any], _Spec, list[Any]]:
    from ._vmap import NoRule

    leaves, spec = _flatten(result)
    dims_tree = out_dims
    if isinstance(out_dims, tuple) and len(out_dims) == 1 and spec is None:
        dims_tree = out_dims[0]
    dims = _broadcast_prefix(dims_tree, result)
    if dims is None:
        raise NoRule("vmap: out_dims do not fit (the loop raises torch's error)")
    return leaves, spec, dims


def _batched_results(func: Any, out_dims: Any, result: Any, size: int, outer: int | None = None) -> Any:
    """The batched call's results with the batch dim at ``out_dims``, as the loop's stacks. ``outer``: the
    outer batch of a nested call (its results batched over ``outer * size`` elements, outer-major), which
    stays in front, the inner batch dim put at its out_dim inside it."""
    from ._vmap import BatchedTensor, NoRule

    leaves, spec, dims = _out_dim_leaves(func, out_dims, result)
    combined = []
    for leaf, d in zip(leaves, dims):
        if d is None:
            if isinstance(leaf, BatchedTensor):
                raise NoRule("vmap: a batched output with out_dim None (the loop decides)")
            combined.append(leaf)
            continue
        if isinstance(d, bool) or not isinstance(d, int) or not isinstance(leaf, Tensor):
            raise NoRule("vmap: an output that is not a tensor (the loop raises torch's error)")
        ndim = leaf.ndim
        if not -(ndim + 1) <= d <= ndim:
            raise NoRule("vmap: out_dim out of range (the loop raises torch's error)")
        d %= ndim + 1
        if not isinstance(leaf, BatchedTensor):  # the same for every element: repeated along the (inner)
            combined.append(stack([leaf] * size, dim=d))  # batch, as the loop's stack
        elif outer is None:
            combined.append(leaf.value if d == 0 else leaf.value.movedim(0, d))
        elif len(leaf.value) != outer * size:
            raise NoRule("vmap: an output of the outer batch only")
        else:
            v = leaf.value.reshape(outer, size, *leaf.shape)
            combined.append(BatchedTensor(v.movedim(1, d + 1)))  # the outer batch stays in front
    return _unflatten(spec, combined)


def _joined_chunks(func: Any, out_dims: Any, parts: list[Any]) -> Any:
    from .ops.shape import cat

    leaves, spec, dims = _out_dim_leaves(func, out_dims, parts[0])
    flat = [_flatten(p)[0] for p in parts]
    joined = []
    for j, d in enumerate(dims):
        pieces = [f[j] for f in flat]
        joined.append(pieces[0] if d is None else cat(pieces, dim=d))
    return _unflatten(spec, joined)


def _looped(
    func: Any,
    out_dims: Any,
    randomness: str,
    leaves: list[Any],
    spec: _Spec,
    dims: list[int | None],
    size: int,
    kwargs: dict[str, Any],
) -> Any:
    """``func`` run once per batch element, the results stacked (every function can run this way)."""
    empty = size == 0
    slices: list[Any] = []
    for leaf, d in zip(leaves, dims):
        if d is None:
            slices.append(None)
        elif empty:  # no element to run on: a stand-in element of zeros gives the output shapes
            shape = tuple(leaf.shape[:d]) + tuple(leaf.shape[d + 1 :])
            slices.append((wrap_array(np.zeros_like(leaf.array, shape=shape)),))  # host: follows leaf
        elif leaf.requires_grad and is_grad_enabled():
            slices.append(leaf.unbind(d))  # recorded: the pieces of one multi-output view, as torch's
        else:  # a constant: each element indexed when its call comes (an int index: getitem's fast path)
            slices.append(_Slices(leaf, d))
    start = _rng_state()
    # the unbatched tensors' version counters: an in-place write into one would repeat once per
    # element in this loop (torch's batched call refuses it), so the first one is an error
    unbatched = [
        (k, leaf, leaf._version)
        for k, (leaf, d) in enumerate(zip(leaves, dims))
        if d is None and isinstance(leaf, Tensor)
    ]
    results = []
    for i in range(max(size, 1)):
        if randomness == "same" and i:
            backend.rng().bit_generator.state = start
        element = [leaf if s is None else s[i] for leaf, s in zip(leaves, slices)]
        results.append(func(*_unflatten(spec, element), **kwargs))
        if unbatched:
            _check_unbatched_unwritten(func, unbatched)
        if randomness == "error" and _rng_state() != start:
            raise StateError(_RANDOM_ERROR)
    return _combine(func, out_dims, results, empty)


# --- modules ------------------------------------------------------------------------------------


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """``torch.func.functional_call``: call ``module(*args, **kwargs)`` with the named tensors (one dict,
    or a sequence of dicts with distinct keys) standing in for its parameters and buffers; the module
    is unchanged afterwards, even if the call raises. It behaves as
    :func:`downslope.nn.utils.stateless.functional_call` (torch's older name), so MAML code written with
    ``from torch.func import functional_call`` ports: the given tensors are part of the graph, so
    gradients of gradients flow through an inner step. ``args`` may be one tensor or a tuple;
    ``tie_weights`` replaces a tensor shared under several names under all of them; ``strict=True``
    requires every parameter and buffer to be given and nothing else (otherwise, as in torch, a name the
    module lacks is set as an attribute for the call). With :func:`stack_module_state` and :func:`vmap`
    it runs an ensemble of models in one call.

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> ds.func.functional_call(layer, {"weight": ds.ones(1, 2), "bias": ds.zeros(1)}, ds.tensor([[1.0, 2.0]]))
        tensor([[3.]])
    """
    dicts = (
        [parameter_and_buffer_dicts] if isinstance(parameter_and_buffer_dicts, Mapping) else parameter_and_buffer_dicts
    )
    values: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            if key in values:
                raise ArgumentError(f"functional_call: {key!r} is given twice")
            values[key] = value
    known, owners = _named_tensors(module)
    if strict and set(values) != set(known):  # torch's report: what is unexpected, then what is missing
        unexpected, missing = sorted(set(values) - set(known)), sorted(set(known) - set(values))
        raise InvalidValueError(  # torch: a RuntimeError
            f"functional_call: strict=True for {type(module).__name__}:"
            + (f" unexpected key(s) {unexpected};" if unexpected else "")
            + (f" missing key(s) {missing}" if missing else "")
        )
    unknown = sorted([key for key in values if key not in known])
    for key in unknown:  # as torch: set as attributes for the call, if their module exists
        try:
            module.get_submodule(key.rpartition(".")[0])
        except AttributeError as error:
            raise ArgumentError(f"functional_call: {type(module).__name__} has no submodule for {key!r}") from error
    if unknown:  # torch is silent; a misspelt name would replace nothing
        warnings.warn(
            f"functional_call: {type(module).__name__} has no parameters or buffers {unknown}; they are set as "
            "attributes for the call and replace nothing (pass strict=True to refuse them)",
            UserWarning,
            stacklevel=2,
        )
    if tie_weights and len({id(t) for t in known.values()}) < len(known):
        # a tensor shared by several names is replaced under all of them
        names_of: dict[int, list[str]] = {}
        for name, tensor in known.items():
            names_of.setdefault(id(tensor), []).append(name)
        # only the tensors held under several names (a linear map per call, not names x given names)
        tied = {name: names for names in names_of.values() if len(names) > 1 for name in names}
        if tied:
            # as torch: different tensors given for names of one tied tensor are refused (the call could
            # use only one of them); the same tensor given under several of its names is fine
            for names in names_of.values():
                if len(names) < 2:
                    continue
                given_ids = {id(values[n]) for n in names if n in values}
                if len(given_ids) > 1:
                    raise ArgumentError(
                        f"functional_call got multiple values for keys {sorted(names)}, which are tied in "
                        f"{type(module).__name__} (one tensor under each name); pass one tensor for all of them, "
                        "or tie_weights=False to replace each name separately"
                    )
            for name in known:
                if name in tied and name not in values:
                    given = next((values[o] for o in list(values) if o != name and o in tied[name]), _ABSENT)
                    if given is not _ABSENT:
                        values[name] = given
    # As torch, a given tensor replaces the entry of its owner's _parameters/_buffers for the call (and
    # the attribute, which downslope's forwards read), so code reading the registries inside the call
    # (parameters() in an L2 term, weight_norm's and spectral_norm's hooks) sees it too.
    saved: list[tuple[Any, str, Any, Any, Any]] = []  # (owner, name, registry or None, its entry, attribute)
    try:
        for key, value in values.items():
            owner_path, _, attr = key.rpartition(".")
            owner = owners.get(owner_path)
            if owner is None:
                owner = owners[owner_path] = module.get_submodule(owner_path)
            attributes = owner.__dict__
            registry = attributes["_parameters"]
            if attr not in registry:
                registry = attributes["_buffers"] if attr in attributes["_buffers"] else None
            held = attributes.get(attr, _ABSENT)
            if registry is None:  # not a parameter or buffer (a name the module lacked, a property)
                saved.append((owner, attr, None, None, held))
                object.__setattr__(owner, attr, value)
            else:  # plain dict writes: the module's __setattr__ would refuse a non-Parameter tensor
                saved.append((owner, attr, registry, dict.__getitem__(registry, attr), held))
                dict.__setitem__(registry, attr, value)
                if held is not _ABSENT:  # the attribute the registry keeps in step (absent: a class's name)
                    attributes[attr] = value
        call_args = () if args is None else args if isinstance(args, tuple) else (args,)
        return module(*call_args, **(kwargs or {}))
    finally:
        for owner, attr, registry, entry, held in reversed(saved):
            if registry is not None:
                dict.__setitem__(registry, attr, entry)
                if held is not _ABSENT:
                    owner.__dict__[attr] = held
            elif held is _ABSENT:  # a name the module lacked: gone again after the call
                object.__delattr__(owner, attr)
            else:
                object.__setattr__(owner, attr, held)


_ABSENT = object()  # functional_call's marker for an attribute the module did not have

# Per module class: the class whose named_parameters, named_buffers and named_modules it inherits, when
# they are nn.Module's own (see _named_tensors), else None.
_walk_base: dict[type, type | None] = {}
_WALKED = ("named_parameters", "named_buffers", "named_modules", "_named_members")


def _base_walk(cls: type) -> type | None:
    base = _walk_base.get(cls, _ABSENT)
    if base is _ABSENT:
        owners = {next((c for c in cls.__mro__ if name in c.__dict__), None) for name in _WALKED}
        found = owners.pop() if len(owners) == 1 else None
        base = found if found is not None and found.__module__ == "downslope.nn.module.base" else None
        _walk_base[cls] = base
    return base  # type: ignore[return-value]


def _named_tensors(module: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``named_parameters(remove_duplicate=False)`` then ``named_buffers(remove_duplicate=False)`` as one
    dict, the submodules by dotted path as far as they were walked).

    functional_call runs once per element under vmap: for nn.Module's own traversal this is one walk of
    the tree in the same order, instead of two through generators.
    A class that overrides the traversal takes named_parameters itself. (nn.Module's warning about
    layers left in a plain list comes from its own parameters() or state_dict(), e.g. an optimizer's.)"""
    base = _base_walk(type(module))
    if base is None:
        known = dict(module.named_parameters(remove_duplicate=False))
        return known | dict(module.named_buffers(remove_duplicate=False)), {}
    params: dict[str, Any] = {}
    buffers: dict[str, Any] = {}
    owners: dict[str, Any] = {}
    todo = [("", module)]
    while todo:  # pre-order, children in registration order, shared ones every time: named_modules' order
        path, mod = todo.pop()
        owners[path] = mod
        prefix = path + "." if path else ""
        for name, t in mod._parameters.items():
            if t is not None:
                params[prefix + name] = t
        for name, t in mod._buffers.items():
            if t is not None:
                buffers[prefix + name] = t
        kids = mod._modules
        if kids:
            todo.extend(reversed([(prefix + k, m) for k, m in kids.items() if m is not None]))
    return params | buffers, owners


def stack_module_state(models: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``torch.func.stack_module_state``: ``(params, buffers)``, dicts of each parameter and buffer of
    ``models`` (modules of one class, all in training or all in eval mode) stacked along a new first
    dim. Stacked parameters are new leaves requiring grad (where the models' do), so an optimizer can
    train the ensemble through them.

    Example:
        >>> import downslope as ds
        >>> params, buffers = ds.func.stack_module_state([ds.nn.Linear(3, 2) for _ in range(4)])
        >>> tuple(params["weight"].shape), params["weight"].requires_grad
        ((4, 2, 3), True)
    """
    models = list(models)
    if not models:
        raise StateError("stack_module_state: Expected at least one model, got 0.")
    if len({bool(m.training) for m in models}) > 1:
        raise StateError("stack_module_state: Expected all models to have the same training/eval mode.")
    if len({type(m) for m in models}) > 1:
        raise StateError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named: list[dict[str, Any]]) -> dict[str, Any]:
        result = {}
        for key in named[0]:
            tensors = [n[key] for n in named]
            grads = {bool(t.requires_grad) for t in tensors}
            if len(grads) > 1:
                raise StateError(f"Expected {key} from each model to have the same .requires_grad")
            value = stack([t.detach() for t in tensors])
            result[key] = value.requires_grad_(True) if grads == {True} else value
        return result

    return (
        stacked([dict(m.named_parameters()) for m in models]),
        stacked([dict(m.named_buffers()) for m in models]),
    )


def replace_all_batch_norm_modules_(root: Any) -> Any:
    """``torch.func.replace_all_batch_norm_modules_``: every batch norm in ``root`` (itself included)
    that tracks running statistics stops tracking them, in place: ``running_mean``, ``running_var``
    and ``num_batches_tracked`` become None and ``track_running_stats`` False, so it normalizes with
    the batch's statistics in training and eval mode (functorch's MAML examples call it before
    ``vmap``/``functional_call``). Returns ``root``. Instance norms are left alone, as torch's.

    Example:
        >>> import downslope as ds
        >>> model = ds.nn.Sequential(ds.nn.Linear(2, 3), ds.nn.BatchNorm1d(3))
        >>> model is ds.func.replace_all_batch_norm_modules_(model), model[1].running_mean
        (True, None)
    """
    for module in root.modules():  # modules() starts with root
        # the core does not import nn (the arrows go one way): a batch norm is known by its base class
        batch_norm = any(
            c.__name__ == "_BatchNorm" and c.__module__.startswith("downslope.nn") for c in type(module).__mro__
        )
        if batch_norm and module.track_running_stats:
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root
