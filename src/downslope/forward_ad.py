"""Forward-mode automatic differentiation with PyTorch's API (``torch.autograd.forward_ad``).

Inside a ``dual_level()`` block, ``make_dual(x, v)`` gives a tensor with the values of ``x`` that
carries the tangent ``v``; any function of such tensors built from ordinary ops then has a tangent,
the Jacobian-vector product ``J v``, which ``unpack_dual(y).tangent`` returns.

How: downslope has no forward-mode rules. A dual tensor is a node the backward graph records, and
``unpack_dual`` computes ``J v`` from that graph by the "double vjp" trick: ``J^T u`` is linear in
``u``, so the gradient of ``(J^T u) . v`` with respect to ``u`` is ``J v`` (two backward passes, the
first with ``create_graph=True``). The numbers are those of forward-mode AD; the cost is that of two
backward passes per ``unpack_dual`` rather than one forward pass. A custom ``autograd.Function`` on
the way gives its tangents through its own ``jvp`` staticmethod, run when it is applied (reading
``ctx`` as forward left it, ``saved_tensors`` being what ``ctx.save_for_forward`` kept), as in
PyTorch; its backward, which may be array code, is not differentiated. Where this differs from PyTorch:

- ops must be recorded, so tangents cannot flow through ops run under ``no_grad()`` (PyTorch's do):
  ``make_dual`` under ``no_grad()`` raises rather than give tangents that would be lost, but a
  ``no_grad()`` block inside the computation still drops the tangents of what it computes;
- a dual tensor requires grad (it is a node of the backward graph), so its results do too; it is not a
  leaf, so in-place ops on it are recorded and change its tangent, as in PyTorch;
- an in-place op on the output of an op that reads its output in backward (``x.sigmoid().mul_(2)``)
  makes ``unpack_dual`` raise the in-place error (PyTorch's eager tangents need no such values);
- nested levels are refused, as in PyTorch.

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
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import autograd
from .backend import namespace_of
from .errors import ArgumentError, ArgumentTypeError, ShapeError, StateError
from .graph import enable_grad, is_grad_enabled

__all__ = ["UnpackedDualTensor", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual", "dual_level"]


class _Context:
    """Where tangents come from: ``inputs`` (tensors in the recorded graph) carrying ``tangents``.
    One is open per ``dual_level`` with duals (its inputs are the hidden sources of the duals) and per
    running ``func.jvp``. ``key`` names it in a custom Function's ``ctx`` (tangents its ``jvp`` gave when
    the Function was applied); ``keep``: whether tangents must stay differentiable (in an outer
    computation, or in tangents that require grad)."""

    def __init__(self, inputs: list[Any], tangents: list[Any], keep: bool) -> None:
        self.key = next(_keys)
        self.inputs = inputs
        self.tangents = tangents
        self.keep = keep


class _Level(_Context):
    """The open level: the source of each dual tensor made in it (what tangents are taken with respect
    to) with its tangent, and each dual by id (kept alive) with its source."""

    def __init__(self, number: int) -> None:
        super().__init__([], [], False)
        self.number = number
        self.made: dict[int, tuple[Any, Any, Any]] = {}  # id(dual) -> (dual, source, tangent)
        self.outer = False  # whether a dual's primal is part of an outer recorded computation


_current: list[_Level] = []
_counter = [0]
_keys = itertools.count(1)
# the contexts in which a custom Function's jvp runs when it is applied (an open level with duals,
# running func.jvp calls); read by autograd.Function.apply
active: list[_Context] = []


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
    lv = _current.pop()
    if lv in active:
        active.remove(lv)


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


def _dual_vjp(g: Any, y: Any, args: Any, saved: Any, needs: Any, xp: Any) -> Any:
    return (g,)


_dual_vjp.reads_inputs = False  # type: ignore[attr-defined]
_dual_vjp.reads_output = False  # type: ignore[attr-defined]


def make_dual(tensor: Any, tangent: Any, *, level: int | None = None) -> Any:
    """A tensor with the values of ``tensor`` (sharing its memory) carrying ``tangent`` (same shape;
    cast to its dtype), for the open ``dual_level``. It stays differentiable in ``tensor`` where that
    requires grad. The dual is a recorded node over a hidden source, so in-place ops on it
    (``d.mul_(2)``, ``d[0] = v``) are recorded and change its tangent, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> import downslope.autograd.forward_ad as fwAD
        >>> with fwAD.dual_level():
        ...     d = fwAD.make_dual(ds.tensor([1.0]), ds.tensor([5.0]))
        ...     fwAD.unpack_dual(d).tangent
        tensor([5.])
    """
    from .tensor import Tensor, record_op, wrap_array

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
    if id(tensor) in lv.made and lv.made[id(tensor)][0] is tensor:
        raise StateError(
            "Making a dual Tensor based on a Tensor that already has a forward gradient at the same level "
            f"{lv.number} is not supported."
        )
    if not is_grad_enabled():
        # tangents here follow recorded ops, and no_grad records none: refuse rather than lose them
        raise StateError(
            "make_dual under no_grad(): downslope computes tangents from the recorded graph, and ops run under "
            "no_grad() are not recorded, so their tangents would be lost (PyTorch keeps them). Make dual tensors "
            "and compute with them with grad mode on (ds.enable_grad())."
        )
    if tangent.dtype != tensor.dtype:
        tangent = tangent.to(tensor.dtype)
    with enable_grad():
        if tensor.requires_grad:  # a new node, still differentiable in the outer computation
            source = tensor * 1.0
            lv.outer = True
        else:
            source = wrap_array(tensor.array).requires_grad_(True)
        # the dual is a node over its source (not the source itself): it may be written in place
        dual = record_op(source.array, (source,), _dual_vjp)
    lv.inputs.append(source)
    lv.tangents.append(tangent)
    lv.made[id(dual)] = (dual, source, tangent)
    lv.keep = lv.outer or any(v.requires_grad for v in lv.tangents)
    if lv not in active:
        active.append(lv)
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
    from .tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    lv = _level(level)
    if lv is None or not lv.inputs:
        return UnpackedDualTensor(tensor, None)
    primal = tensor if lv.outer else tensor.detach()
    made = lv.made.get(id(tensor))
    if made is not None and made[0] is tensor and tensor._vjp is _dual_vjp and tensor._parents[0] is made[1]:
        return UnpackedDualTensor(primal, made[2])  # a dual not written since
    if not tensor.requires_grad or tensor.dtype.kind != "f":
        return UnpackedDualTensor(primal, None)
    (found,) = tangents_of([tensor], lv)
    if found is not None and not lv.keep:
        found = found.detach()
    return UnpackedDualTensor(primal, found)


def tangents_of(outs: Sequence[Any], context: _Context, create_graph: bool | None = None) -> list[Any]:
    """The tangent ``J v`` of each of ``outs`` from ``context``'s inputs and tangents (None for an output
    that does not depend on them), differentiable where ``create_graph`` (default: ``context.keep``).

    J^T u is linear in u, so the gradient of (J^T u) . v with respect to u is J v: two backward passes,
    the first with create_graph=True."""
    from .tensor import wrap_array

    keep = context.keep if create_graph is None else create_graph
    roots = list(outs)  # (a view whose base was written since gets its current history in the engine)
    live = [i for i, o in enumerate(roots) if o.requires_grad and o.dtype.kind == "f"]
    result: list[Any] = [None] * len(outs)
    if not live or not context.inputs:
        return result
    dummies = {i: wrap_array(np.zeros_like(roots[i].array)).requires_grad_(True) for i in live}  # host: follows it
    with enable_grad(), jvp_rules_of_custom_functions([roots[i] for i in live], context.inputs, context.key):
        transposed = autograd.grad(
            [roots[i] for i in live], context.inputs, [dummies[i] for i in live], create_graph=True, allow_unused=True
        )
        pairs = [(g, v) for g, v in zip(transposed, context.tangents) if g is not None]
        if not pairs:
            return result
        differentiable = [(g, v) for g, v in pairs if g.requires_grad]
        found: Sequence[Any] = [None] * len(live)
        if differentiable:
            found = autograd.grad(
                [g for g, _ in differentiable], [dummies[i] for i in live], [v for _, v in differentiable],
                retain_graph=True, create_graph=keep, allow_unused=True,
            )  # fmt: skip
    for i, f in zip(live, found):
        result[i] = wrap_array(np.zeros_like(roots[i].array)) if f is None else f  # host: follows it
    return result


@contextlib.contextmanager
def jvp_rules_of_custom_functions(outputs: Sequence[Any], inputs: Sequence[Any], key: int = 0) -> Iterator[None]:
    """For a double-vjp from ``inputs`` to ``outputs`` (``tangents_of``): the custom Function nodes
    between them compute the first pass with the tangents their ``jvp`` gave when they were applied in
    context ``key`` (see below), and get their rule back afterwards; PyTorch's NotImplementedError
    where one has no ``jvp``."""
    ids = {id(t) for t in inputs}
    custom: dict[int, Any] = {}
    for out in outputs:
        custom.update((id(n), n) for n in _custom_function_nodes(out, ids))
    for node in custom.values():  # for this pass only: their transposed backward is their jvp
        node._vjp = _transposed_function_rule(node, key)
    try:
        yield
    finally:
        for node in custom.values():
            node._vjp = autograd._function_vjp


@contextlib.contextmanager
def jvp_context(inputs: list[Any], tangents: list[Any], keep: bool) -> Iterator[_Context]:
    """While ``func.jvp`` runs its function: custom Functions applied then run their ``jvp`` at once."""
    context = _Context(inputs, tangents, keep)
    active.append(context)
    try:
        yield context
    finally:
        active.remove(context)


def function_applied(node: Any) -> None:
    """Called by ``Function.apply`` for the node of a custom Function while a forward context is
    active: as in PyTorch, its ``jvp`` runs now, on the tangents its inputs have now, reading ``ctx``
    as forward left it; the output tangents are kept in ``ctx`` for the double vjp to use."""
    if node._vjp is not autograd._function_vjp:
        return  # not recorded (no input requires grad): no tangent either
    cls, ctx, positions, n_args, slots = node._saved
    parents, needs = node._parents, node._needs
    for context in list(active):
        wanted = [k for k, n in enumerate(needs) if n]
        found = tangents_of([parents[k] for k in wanted], context)
        if all(t is None for t in found):
            continue  # no input carries a tangent of this context: neither does the output
        if not callable(getattr(cls, "jvp", None)):
            raise NotImplementedError(f"{_NO_JVP} ({cls.__name__} has no jvp staticmethod)")
        given = dict(zip(wanted, found))
        joint = _run_jvp(cls, ctx, parents, positions, n_args, slots, given, tuple(node.shape))
        cache = ctx.__dict__.setdefault("_fw_tangents", {})
        cache[context.key] = joint


def _run_jvp(
    cls: Any, ctx: Any, parents: Any, positions: Any, n_args: int, slots: Any, given: dict[int, Any], shape: Any
) -> Any:
    """``cls.jvp`` on the input tangents ``given`` (by parent index; zeros for tensor inputs without
    one, as PyTorch), its output tangents checked and joined into one tensor of the node's ``shape``."""
    from .tensor import Tensor, wrap_array

    inputs: list[Any] = [None] * n_args
    for k, pos in enumerate(positions):
        inputs[pos] = given.get(k)
        if inputs[pos] is None:
            zeros = namespace_of(parents[k].array).zeros(parents[k].shape, parents[k].dtype)
            inputs[pos] = wrap_array(zeros)
    forward_saved = getattr(ctx, "_saved_forward", None)
    if forward_saved is None:
        result = cls.jvp(ctx, *inputs)
    else:  # in jvp, saved_tensors are those of save_for_forward (as in PyTorch)
        before = ctx._saved, ctx._packed
        ctx._saved, ctx._packed = forward_saved, None
        try:
            result = cls.jvp(ctx, *inputs)
        finally:
            ctx._saved, ctx._packed = before
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
            t = wrap_array(namespace_of(parents[0].array).zeros(slot[0], slot[1]))
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
    return joint.reshape(shape)


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


def _transposed_function_rule(node: Any, key: int) -> Any:
    """The first pass's rule for custom Function ``node``: the gradients of its inputs as slices of
    one recorded node (zeros), whose own rule maps their cotangents (the inputs' tangents) to the
    cotangent of the output gradient (the output's tangent): what the Function's ``jvp`` gave when it
    was applied in context ``key``, or, for a node applied outside it, ``jvp`` run now."""
    from .tensor import Tensor, record_op, wrap_array

    cls, ctx, positions, n_args, slots = node._saved
    parents, needs = node._parents, node._needs
    wanted = [k for k, n in enumerate(needs) if n]
    sizes = [int(np.prod(parents[k].shape)) for k in wanted]  # host: shapes are Python ints
    out_shape = tuple(node.shape)

    def tangent_rule(c: Any, y: Any, args: Any, saved: Any, needs_: Any, xp: Any) -> Any:
        joint = getattr(ctx, "_fw_tangents", {}).get(key)
        if joint is None:
            ct = c if isinstance(c, Tensor) else wrap_array(c)
            given: dict[int, Any] = {}
            offset = 0
            for k, size in zip(wanted, sizes):
                given[k] = ct[offset : offset + size].reshape(parents[k].shape)
                offset += size
            joint = _run_jvp(cls, ctx, parents, positions, n_args, slots, given, out_shape)
        return (joint if xp.differentiable else joint.array,)

    tangent_rule.reads_inputs = False  # type: ignore[attr-defined]
    tangent_rule.reads_output = False  # type: ignore[attr-defined]

    def rule(g: Any, y: Any, args: Any, saved: Any, needs_: Any, xp: Any) -> Any:
        if not xp.differentiable:
            # a pass of arrays (the second one) reaches this forward node only on its way to nothing:
            # the forward graph was made before the first pass's dummy, so cannot lead to it
            return (None,) * len(parents)
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
