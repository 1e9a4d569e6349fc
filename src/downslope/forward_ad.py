"""Forward-mode automatic differentiation with PyTorch's API (``torch.autograd.forward_ad``).

Inside a ``dual_level()`` block, ``make_dual(x, v)`` gives a tensor with the values of ``x`` that
carries the tangent ``v``; any function of such tensors built from ordinary ops then has a tangent,
the Jacobian-vector product ``J v``, which ``unpack_dual(y).tangent`` returns.

How: downslope has no forward-mode rules. A dual tensor is a node the backward graph records, and
``unpack_dual`` computes ``J v`` from that graph by the "double vjp" trick: ``J^T u`` is linear in
``u``, so the gradient of ``(J^T u) . v`` with respect to ``u`` is ``J v`` (two backward passes, the
first with ``create_graph=True``). The numbers are those of forward-mode AD; the cost is that of two
backward passes per ``unpack_dual`` rather than one forward pass. A custom ``autograd.Function`` on
the way gives its tangents through its own ``jvp`` staticmethod, as in PyTorch (its backward, which
may be array code, is not differentiated). Where this differs from PyTorch:

- ops must be recorded, so tangents do not flow through ops run under ``no_grad()`` (PyTorch's do);
- a dual tensor requires grad (it is a node of the backward graph), so its results do too;
- nested levels are refused, as in PyTorch;
- a custom Function without ``jvp`` raises PyTorch's NotImplementedError at ``unpack_dual`` (PyTorch
  raises it at ``apply``), and its ``jvp`` runs then, reading what forward left on ``ctx``.

Example:
    >>> import downslope as ds
    >>> import downslope.autograd.forward_ad as fwAD
    >>> with fwAD.dual_level():
    ...     x = fwAD.make_dual(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 0.0]))
    ...     fwAD.unpack_dual(x ** 2).tangent
    tensor([2., 0.])
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import autograd
from .backend import namespace_of
from .errors import ArgumentError, ArgumentTypeError, ShapeError, StateError
from .graph import enable_grad, is_grad_enabled

__all__ = ["UnpackedDualTensor", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual", "dual_level"]


class _Level:
    """The open level: each dual tensor made in it (by id, kept alive) with its tangent."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.duals: dict[int, tuple[Any, Any]] = {}
        self.outer = False  # whether a dual's primal is part of an outer recorded computation


_current: list[_Level] = []
_counter = [0]


class UnpackedDualTensor(NamedTuple):
    """``unpack_dual``'s result: the values (``primal``) and the tangent (None where there is none)."""

    primal: Any
    tangent: Any


def enter_dual_level() -> int:
    """Open a forward-AD level and return its number (``dual_level()`` is the usual way in).

    Example:
        >>> import downslope.autograd.forward_ad as fwAD
        >>> level = fwAD.enter_dual_level(); fwAD.exit_dual_level(level=level)
    """
    if _current:
        raise StateError("Nested forward mode AD is not supported at the moment")
    _current.append(_Level(_counter[0]))
    _counter[0] += 1
    return _current[0].number


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the level: the tangents of its dual tensors are forgotten.

    Example:
        >>> import downslope.autograd.forward_ad as fwAD
        >>> fwAD.exit_dual_level(level=fwAD.enter_dual_level())
    """
    if not _current:
        raise StateError("Trying to exit a forward AD level but no level is open")
    if level is not None and level != _current[0].number:
        raise StateError(
            "Trying to exit a forward AD level that was not the last one that was created. This is not supported."
        )
    _current.clear()


class dual_level:  # noqa: N801  (torch's name; a context manager and a decorator)
    """The context of forward-mode AD: ``with dual_level(): ...`` (or ``@dual_level()`` on a function).
    Tangents exist only inside it.

    Example:
        >>> import downslope as ds
        >>> import downslope.autograd.forward_ad as fwAD
        >>> with fwAD.dual_level():
        ...     y = fwAD.make_dual(ds.tensor(3.0), ds.tensor(1.0)) ** 2
        ...     fwAD.unpack_dual(y).tangent
        tensor(6.)
    """

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc: object) -> None:
        exit_dual_level()

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with dual_level():
                return func(*args, **kwargs)

        return wrapper


def _level(level: int | None) -> _Level | None:
    if not _current:
        return None
    if level is not None and level != _current[0].number:
        raise StateError(f"forward_ad: level {level} is not the open level ({_current[0].number})")
    return _current[0]


def make_dual(tensor: Any, tangent: Any, *, level: int | None = None) -> Any:
    """A tensor with the values of ``tensor`` carrying ``tangent`` (same shape; cast to its dtype), for
    the open ``dual_level``. It stays differentiable in ``tensor`` where that requires grad.

    Example:
        >>> import downslope as ds
        >>> import downslope.autograd.forward_ad as fwAD
        >>> with fwAD.dual_level():
        ...     d = fwAD.make_dual(ds.tensor([1.0]), ds.tensor([5.0]))
        ...     fwAD.unpack_dual(d).tangent
        tensor([5.])
    """
    from .tensor import Tensor, wrap_array

    lv = _level(level)
    if lv is None:
        raise StateError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to enter_dual_level() first."
        )
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise ArgumentTypeError(
            f"make_dual: expected tensor and tangent to be Tensors, got {type(tensor).__name__} and "
            f"{type(tangent).__name__}"
        )
    if tensor.dtype.kind != "f":
        raise ArgumentError(f"Expected primal to be floating point or complex, but got: {tensor.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ShapeError(
            "Trying to set a forward gradient that has a different size than that of the original Tensor, this is "
            f"not supported. Tensor is of size {list(tensor.shape)} while the given forward gradient is of size "
            f"{list(tangent.shape)}."
        )
    if id(tensor) in lv.duals:
        raise StateError(
            "Making a dual Tensor based on a Tensor that already has a forward gradient at the same level "
            f"{lv.number} is not supported."
        )
    if tangent.dtype != tensor.dtype:
        tangent = tangent.to(tensor.dtype)
    if tensor.requires_grad and is_grad_enabled():
        with enable_grad():  # a new node, still differentiable in the outer computation
            dual = tensor * 1.0
        lv.outer = True
    else:
        dual = wrap_array(tensor.array).requires_grad_(True)
    lv.duals[id(dual)] = (dual, tangent)
    return dual


def unpack_dual(tensor: Any, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor``: its values, and the Jacobian-vector product of the dual
    tensors it was computed from (None where it depends on none, or outside a level). The primal is
    detached from the duals, unless a dual was made from a tensor requiring grad: then it is the
    tensor itself, which keeps its backward graph.

    Example:
        >>> import downslope as ds
        >>> import downslope.autograd.forward_ad as fwAD
        >>> with fwAD.dual_level():
        ...     x = fwAD.make_dual(ds.tensor([0.0, 1.0]), ds.tensor([2.0, 2.0]))
        ...     fwAD.unpack_dual(x * x + x).tangent
        tensor([2., 6.])
    """
    from .tensor import Tensor, wrap_array

    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    lv = _level(level)
    if lv is None or not lv.duals:
        return UnpackedDualTensor(tensor, None)
    primal = tensor if lv.outer else tensor.detach()
    if id(tensor) in lv.duals and lv.duals[id(tensor)][0] is tensor:
        return UnpackedDualTensor(primal, lv.duals[id(tensor)][1])
    if not tensor.requires_grad or tensor.dtype.kind != "f":
        return UnpackedDualTensor(primal, None)
    duals = [d for d, _ in lv.duals.values()]
    tangents = [v for _, v in lv.duals.values()]
    # J^T u is linear in u, so the gradient of (J^T u) . v with respect to u is J v
    u = wrap_array(np.zeros_like(tensor.array)).requires_grad_(True)  # host: zeros_like follows the tensor
    with jvp_rules_of_custom_functions([tensor], duals):
        return _double_vjp(tensor, primal, duals, tangents, u, lv.outer)


@contextlib.contextmanager
def jvp_rules_of_custom_functions(outputs: Sequence[Any], inputs: Sequence[Any]) -> Iterator[None]:
    """For a double-vjp from ``inputs`` to ``outputs`` (here and in ``func.jvp``): the custom Function
    nodes between them compute the first pass with their ``jvp`` (see below), and get their rule back
    afterwards; PyTorch's NotImplementedError where one has no ``jvp``."""
    ids = {id(t) for t in inputs}
    custom: dict[int, Any] = {}
    for out in outputs:
        custom.update((id(n), n) for n in _custom_function_nodes(out, ids))
    for node in custom.values():  # for this pass only: their transposed backward is their jvp
        node._vjp = _transposed_function_rule(node)
    try:
        yield
    finally:
        for node in custom.values():
            node._vjp = autograd._function_vjp


def _double_vjp(tensor: Any, primal: Any, duals: list[Any], tangents: list[Any], u: Any, outer: bool) -> Any:
    from .tensor import wrap_array

    with enable_grad():
        transposed = autograd.grad([tensor], duals, [u], create_graph=True, allow_unused=True)
        pairs = [(g, v) for g, v in zip(transposed, tangents) if g is not None]
        if not pairs:
            return UnpackedDualTensor(primal, None)
        live = [(g, v) for g, v in pairs if g.requires_grad]
        keep = outer or any(v.requires_grad for _, v in live)
        found = None
        if live:
            (found,) = autograd.grad(
                [g for g, _ in live], [u], [v for _, v in live], retain_graph=True, create_graph=keep, allow_unused=True
            )
    if found is None:
        found = wrap_array(np.zeros_like(tensor.array))  # host: zeros_like follows the tensor
    return UnpackedDualTensor(primal, found if keep else found.detach())


# Custom Functions: their backward may be array code, or marked once_differentiable, so the double
# vjp cannot differentiate it; and PyTorch computes their tangents with their own ``jvp``. The second
# pass needs, at such a node, the transpose of its backward (J^T g)^T = J, applied to the tangents of
# its inputs: exactly ``jvp``. So, for the first pass, the node's rule is replaced by one recording a
# node whose own rule calls ``jvp`` (its values are zeros, as every gradient of the first pass is:
# it runs at u = 0), and backward itself is never called.
_NO_JVP = "You must implement the jvp function for custom autograd.Function to use it with forward mode AD."


def _custom_function_nodes(tensor: Any, dual_ids: set[int]) -> list[Any]:
    """The custom Function nodes on a path from a dual tensor to ``tensor``; raises (PyTorch's message)
    where one has no ``jvp``."""
    reaches: dict[int, bool] = {}
    nodes: dict[int, Any] = {}
    stack: list[tuple[Any, bool]] = [(tensor, False)]
    while stack:  # depth-first, without recursion (graphs may be deep)
        node, done = stack.pop()
        key = id(node)
        if done:
            reaches[key] = any(reaches.get(id(p), False) for p in node._parents)
            continue
        if key in reaches:
            continue
        nodes[key] = node
        reaches[key] = key in dual_ids
        if key in dual_ids:
            continue  # what a dual was made from carries no tangent of this level
        stack.append((node, True))
        stack.extend((p, False) for p in (node._parents or ()) if id(p) not in reaches)
    found = [n for k, n in nodes.items() if reaches[k] and n._vjp is autograd._function_vjp]
    for node in found:
        cls = node._saved[0]
        if not callable(getattr(cls, "jvp", None)):
            raise NotImplementedError(f"{_NO_JVP} ({cls.__name__} has no jvp staticmethod)")
    return found


def _transposed_function_rule(node: Any) -> Any:
    """The first pass's rule for custom Function ``node``: the gradients of its inputs as slices of
    one recorded node (zeros), whose own rule maps their cotangents (the inputs' tangents) through
    the Function's ``jvp`` to the cotangent of the output gradient (the output's tangent)."""
    from .tensor import Tensor, record_op, wrap_array

    cls, ctx, positions, n_args, slots = node._saved
    parents, needs = node._parents, node._needs
    wanted = [k for k, n in enumerate(needs) if n]
    sizes = [int(np.prod(parents[k].shape)) for k in wanted]  # host: shapes are Python ints
    out_shape = tuple(node.shape)

    def tangent_rule(c: Any, y: Any, args: Any, saved: Any, needs_: Any, xp: Any) -> Any:
        ct = c if isinstance(c, Tensor) else wrap_array(c)
        given: dict[int, Any] = {}
        offset = 0
        for k, size in zip(wanted, sizes):
            given[k] = ct[offset : offset + size].reshape(parents[k].shape)
            offset += size
        inputs: list[Any] = [None] * n_args
        for k, pos in enumerate(positions):
            inputs[pos] = given.get(k)
            if inputs[pos] is None:  # as PyTorch: zeros for tensor inputs without a tangent
                zeros = namespace_of(parents[k].array).zeros(parents[k].shape, parents[k].dtype)
                inputs[pos] = wrap_array(zeros)
        result = cls.jvp(ctx, *inputs)
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(outs) != len(slots):
            raise ArgumentError(
                f"{cls.__name__}.jvp returned {len(outs)} tangent(s); expected one per forward output ({len(slots)})"
            )
        pieces = []
        for i, (slot, t) in enumerate(zip(slots, outs)):
            if slot is None or not slot[2]:
                continue
            if t is None:
                t = wrap_array(namespace_of(ct.array).zeros(slot[0], slot[1]))
            elif not isinstance(t, Tensor):
                raise ArgumentTypeError(
                    f"{cls.__name__}.jvp: tangent {i} should be a Tensor or None, got {type(t).__name__}"
                )
            if tuple(t.shape) != tuple(slot[0]):
                raise ShapeError(
                    f"{cls.__name__}.jvp: tangent {i} has shape {tuple(t.shape)}, but that output has shape "
                    f"{tuple(slot[0])}"
                )
            pieces.append(t.to(slot[1]) if t.dtype != slot[1] else t)
        joint = pieces[0] if len(slots) == 1 else _cat([p.reshape(-1) for p in pieces])
        joint = joint.reshape(out_shape)
        return (joint if xp.differentiable else joint.array,)

    tangent_rule.reads_inputs = False  # type: ignore[attr-defined]
    tangent_rule.reads_output = False  # type: ignore[attr-defined]

    def rule(g: Any, y: Any, args: Any, saved: Any, needs_: Any, xp: Any) -> Any:
        zeros = namespace_of(xp.data(g)).zeros((sum(sizes),), xp.data(g).dtype)
        joint = record_op(zeros, (g,), tangent_rule)
        grads: list[Any] = [None] * len(parents)
        offset = 0
        for k, size in zip(wanted, sizes):
            grads[k] = joint[offset : offset + size].reshape(parents[k].shape)
            offset += size
        return tuple(grads)

    rule.reads_inputs = False  # type: ignore[attr-defined]
    rule.reads_output = False  # type: ignore[attr-defined]
    return rule


def _cat(pieces: list[Any]) -> Any:
    from .ops import cat

    return cat(pieces)


# ``torch.autograd.forward_ad`` (autograd.py imports this module as its attribute): registered under
# that name too, so ``import downslope.autograd.forward_ad`` works although autograd is no package.
sys.modules["downslope.autograd.forward_ad"] = sys.modules[__name__]
