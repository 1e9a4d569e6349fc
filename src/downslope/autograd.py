"""Reverse-mode differentiation: the backward walk, ``grad`` (torch.autograd.grad) and custom ``Function``s.

Grad modes (``no_grad``...) and the rule namespaces live in ``graph.py`` and are re-exported here,
where PyTorch users look for them (``torch.autograd.no_grad``).

The walk is iterative (no recursion, so a chain of 100,000 ops is fine): the ops' creation order
is a topological order, and the nodes are visited from the output back to the leaves, each
node's vector-Jacobian product (VJP) rule turning its output gradient into its inputs' gradients.

VJP rules are written once and run in two modes. Normally they see NumPy arrays (``ArrayRules``
as ``xp``), which is fast. With ``create_graph=True`` they see tensors (``TensorRules``), so the
gradient computation is itself recorded and can be differentiated again (Hessian-vector products).
"""

from __future__ import annotations

import bisect
import functools
import operator
import sys
import types
import warnings
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import as_array, namespace_of
from .devices import is_array, like, to_host
from .errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError, ShapeError, StateError
from .graph import (
    ArrayRules,
    NodeState,
    TensorRules,
    _inplace_clock,
    _mode,
    _ops,
    anomaly_mode,
    enable_grad,
    no_grad,
    node_name,
    rule_name,
    set_grad_enabled,
)
from .graph import grad_mode_enabled as is_grad_enabled  # torch's (inside inference_mode: its own flag)
from .workspace import is_lent_whole

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "ArrayRules",
    "Function",
    "FunctionCtx",
    "RemovableHandle",
    "TensorRules",
    "Variable",
    "autograd_grad",
    "backward",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "detect_anomaly",
    "is_anomaly_enabled",
    "set_detect_anomaly",
    "inference_mode",
]

from .graph import _decorated  # noqa: E402
from .graph import inference_mode as _inference_mode  # noqa: E402


class inference_mode(_inference_mode):  # noqa: N801  (torch's name)
    """``torch.inference_mode(mode=True)``: recording off, as :class:`no_grad` (there are no separate
    inference tensors here). ``inference_mode(False)`` turns recording on, as torch's does (its guard
    sets the grad mode to ``not mode``), so nested in ``inference_mode()`` or ``no_grad()`` it records.

    Example:
        >>> import downslope as ds
        >>> with ds.inference_mode():
        ...     with ds.inference_mode(False):
        ...         ds.is_grad_enabled(), ds.is_inference_mode_enabled()
        (True, False)
    """

    def __enter__(self) -> None:
        super().__enter__()
        if not self.mode:
            _mode.enabled = True

    def __call__(self, fn: Any) -> Any:
        mode = self.mode
        return _decorated(fn, lambda: inference_mode(mode))


# ---------------------------------------------------------------------- anomaly detection
_anomaly = anomaly_mode  # graph's flag: record_op reads it too (to keep each node's forward stack)
_ANOMALY_WARNING = (
    "Anomaly Detection has been enabled. This mode will increase the runtime and should only be enabled for debugging."
)


def _warn_forward_stack(node: Tensor) -> None:
    """torch's anomaly-mode warning before a backward error: where the failing node was made (its frames
    outside downslope), when anomaly mode was on at the time."""
    import os
    import traceback

    stack = getattr(node, "_forward_stack", None)
    if stack is None:
        return
    package = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in stack if not os.path.abspath(f.filename).startswith(package + os.sep)] or list(stack)
    warnings.warn(
        f"Error detected in {node_name(node)}. Traceback of forward call that caused the error:\n"
        + "".join(traceback.format_list(frames)),
        UserWarning,
        stacklevel=2,
    )


def is_anomaly_enabled() -> bool:
    """Whether backward passes check every gradient for NaN (:class:`set_detect_anomaly`)."""
    return _anomaly[0]


class set_detect_anomaly:  # noqa: N801  (torch's name; a function and a context manager at once)
    """``torch.autograd.set_detect_anomaly(mode)``: while on, every gradient a backward pass computes is
    checked for NaN, and the first op whose gradient rule returns NaN raises, named (on a GPU each
    check waits for the device: a debugging aid, as in PyTorch). Works as a call and as a ``with``.

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([0.0], requires_grad=True)
        >>> with ds.autograd.detect_anomaly():
        ...     ds.sqrt(x * 0 - 1).sum().backward()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        downslope.errors.StateError: Function 'SqrtBackward0' returned nan values in its 0th output.
    """

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.previous = _anomaly[0]
        _anomaly[0] = not (not mode or not check_nan)
        if _anomaly[0]:
            warnings.warn(_ANOMALY_WARNING, UserWarning, stacklevel=2)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _anomaly[0] = self.previous


class detect_anomaly(set_detect_anomaly):  # noqa: N801  (torch's name)
    """``with torch.autograd.detect_anomaly():`` (see :class:`set_detect_anomaly`)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self.previous = _anomaly[0]

    def __enter__(self) -> None:
        _anomaly[0] = not not self.check_nan
        if _anomaly[0]:
            warnings.warn(_ANOMALY_WARNING, UserWarning, stacklevel=2)

    def __call__(self, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


def _check_anomaly(node: Tensor, input_grads: Any) -> None:
    """Raise if a gradient rule returned NaN (anomaly detection on): PyTorch's message, the op named as its
    grad_fn is (a custom Function by its class: 'MyOpBackward')."""
    for i, pg in enumerate(input_grads):
        if pg is None:
            continue
        if pg.__class__ is _row_grads().RowGrad:
            pg = pg.coalesced()[1]  # a sparse lookup's rows: its values hold every number
        arr = getattr(pg, "array", pg)
        if bool(to_host(namespace_of(arr).isnan(arr).any())):  # host: anomaly mode reads every gradient, by design
            _warn_forward_stack(node)
            raise StateError(f"Function '{node_name(node)}' returned nan values in its {i}th output.")


# ---------------------------------------------------------------------- the backward walk
def _released_vjp(*_: Any) -> Any:
    raise StateError(
        "Trying to backward through the graph a second time (or directly access saved tensors after they have "
        "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
        "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
        "if you need to access saved tensors after calling backward."
    )


# After a backward pass without retain_graph, a node is freed (its rule replaced by _released_vjp, its
# inputs and saved data dropped) unless its rule needs no values: it reads neither its inputs' values
# nor its output (only their shapes), and its saved data holds no arrays. Such a node saved nothing in
# PyTorch's sense, so, as there, another backward may pass through it (y = x + 1 twice, expand, sum,
# basic slicing); only a node whose saved values were freed raises, when a gradient reaches it.
# A rule that reads input i only when another input wants a gradient (reads_inputs "others": einsum)
# reads nothing in a node of one input (torch's einsum('ij->', x) saves nothing). A rule whose reads
# depend on which inputs want gradients (a function of (i, needs), or a tuple of indices) is asked per
# node, with the flags the forward recorded: torch decides what to save at the forward from the same
# flags (fmod(x, 0.7) saves nothing for x alone; addcmul(x, c1, c2) saves c1 and c2 only when the
# other factor wants a gradient).
_IF_ONE_INPUT = "if one input"
_PER_NODE = "per node"
_value_free_rules: dict[Any, bool | str] = {}
_NDARRAY = np.ndarray  # backward's per-node test that a gradient is an array (a class identity)
_PLAIN_SAVED = (int, float, bool, str, slice, type(Ellipsis), np.integer, np.floating, np.bool_, np.dtype)


def _rule_is_value_free(rule: Any) -> bool | str:
    """Whether ``rule`` reads no input values and not its output (cached per rule): True, False,
    ``_IF_ONE_INPUT`` when that holds in a node of one input only, or ``_PER_NODE`` when the inputs it
    reads depend on which of them want gradients (see :func:`_node_is_value_free`)."""
    free = _value_free_rules.get(rule)
    if free is None:
        reads = getattr(rule, "reads_inputs", True)
        if _reads_output(rule):
            free = False
        elif reads is False:
            free = True
        elif isinstance(reads, str) and reads == "others":
            free = _IF_ONE_INPUT
        else:
            free = _PER_NODE if callable(reads) or isinstance(reads, tuple) else False
        _value_free_rules[rule] = free
    return free


def _node_is_value_free(node: Tensor, rule: Any) -> bool:
    """Whether ``node``'s rule reads none of its inputs' values given the gradients its inputs wanted at
    the forward (``node._needs``): a node of a ``_PER_NODE`` rule."""
    needs = node._needs
    return not any(_reads_input(rule, i, needs) for i in range(len(node._parents)))


# Index arrays and masks an op built from shapes alone (a diagonal's index, a triangle's mask, repeat's
# gather grid), by id: torch computes such indices from sizes in backward and saves no tensor for them, so
# its second backward through tril, diagonal or repeat works. They count as metadata here and stay with
# the node. Indices from user data (x[idx], index_select, a tensor of repeats) are never listed: torch
# saves those as tensors and frees them. Weak references: an entry goes when its array does (its
# callback), and a lookup checks the referent is the array asked about, so a reused id never matches.
_shape_built: dict[int, weakref.ref[Any]] = {}


def keep_shape_index(t: Tensor) -> Tensor:
    """``t``, with the arrays its recorded op saved marked as metadata built from shapes (see
    ``_shape_built``): a backward without retain_graph keeps them, as torch keeps sizes. Only for ops
    whose saved arrays come from shapes and Python ints, never from a tensor's values."""
    if t._vjp is not None:
        _mark_shape_built(t._saved)
    return t


def _mark_shape_built(saved: Any) -> None:
    if type(saved) is tuple or type(saved) is list:
        for s in saved:
            _mark_shape_built(s)
    elif is_array(saved) and saved.dtype.kind in "iub":  # integer indices and boolean masks only
        key = id(saved)
        try:
            _shape_built[key] = weakref.ref(saved, functools.partial(_forget_shape_built, key))
        except TypeError:  # an array type without weak references: it stays a saved value (freed)
            pass


def _forget_shape_built(key: int, _ref: Any) -> None:
    _shape_built.pop(key, None)


def _saved_is_plain(saved: Any) -> bool:
    """Whether saved data is metadata only (shapes, axes, slices, index arrays built from shapes), no
    arrays or tensors holding values."""
    if saved is None:
        return True
    if type(saved) is tuple or type(saved) is list:
        for s in saved:
            if not _saved_is_plain(s):
                return False
        return True
    if isinstance(saved, _PLAIN_SAVED):
        return True
    ref = _shape_built.get(id(saved))
    return ref is not None and ref() is saved


_creation_order = operator.attrgetter("_seq")


def _topological_order(roots: Sequence[Tensor], floor: float = 0) -> list[Tensor]:
    """Nodes that require grad and lead to ``roots``, each after all of its inputs.

    Every recorded op carries a creation number (``_seq``, leaves 0) and an op's inputs exist before
    it, so sorting the reachable nodes by that number is a topological order: one iterative sweep to
    collect them (no recursion) and a sort, cheaper than a depth-first search with post-order marks.
    ``floor``: nodes numbered below it (the roots excepted) are left out, see :func:`_capture_floor`.
    """
    found: dict[int, Tensor] = {id(r): r for r in roots}
    stack = list(found.values())
    push, pop = stack.append, stack.pop
    rebased = _inplace_clock.rebased
    taints = _inplace_clock.taints
    chains: dict[int, _Chain] = {}  # the histories of each rebased tensor, indexed once for this walk
    while stack:
        node = pop()
        parents = node._parents
        if taints:
            _check_taints(node, parents, taints)
        if rebased:
            if node._seq < rebased:  # an input may have been rebased by an in-place op after this node used it
                parents = node._parents = _histories_at(parents, node._seq, chains)
            parents = node._parents = _current_views(parents, node._seq, chains)
        for parent in parents:
            if parent.requires_grad:
                key = id(parent)
                if key not in found and parent._seq >= floor:
                    found[key] = parent
                    push(parent)
    return sorted(found.values(), key=_creation_order)


# Switched off only by the tests that compare pruned walks with full ones.
_PRUNE_BY_SEQ = True


def _capture_floor(capture: Sequence[Tensor]) -> float:
    """The smallest creation number of ``capture`` (the inputs of autograd.grad or backward(inputs=)) when
    none of them is a leaf, else 0. A node numbered below every input was made before all of them, so
    (an op's inputs being numbered below it, the rewired histories and view nodes of in-place ops too)
    no input leads to it: its gradient reaches no input, and the walk need not collect it or what lies
    behind it (the parameters, the earlier steps of an integration loop), as torch's engine prunes by
    its nodes' topological numbers. Leaves are all numbered 0, so a leaf input leaves nothing out."""
    if not _PRUNE_BY_SEQ or not capture:
        return 0
    floor = capture[0]._seq
    for t in capture:
        if t._vjp is None:
            return 0
        if t._seq < floor:
            floor = t._seq
    return floor


def _check_taints(node: Tensor, parents: tuple[Tensor, ...], taints: list[list[Any]]) -> None:
    """Refuse an op that read, from a tensor outside the graph, values a recorded in-place op wrote
    into its storage (through a view or the buffer itself): their gradient would be lost."""
    seq = node._seq
    for p in parents:
        vc = p._vc
        if p.requires_grad or vc is None:
            continue
        for taint_vc, written, cleared in taints:
            if taint_vc is vc and written < seq and (cleared is None or seq < cleared):
                raise StateError(
                    f"{_rule_label(node._vjp)} used a tensor outside the graph (shape {tuple(p.array.shape)}) whose "
                    "storage a recorded in-place op wrote through another tensor (a view of the same buffer, or the "
                    "buffer itself): the values it shows would get no gradient. Use the tensor that was written "
                    "(or write into the buffer with buf[i] = value, which records the buffer too)."
                )


def _histories_at(parents: tuple[Tensor, ...], seq: int, chains: dict[int, _Chain] | None = None) -> tuple[Tensor, ...]:
    """Each parent as it was when op number ``seq`` used it.

    An in-place op recorded on a tensor ``t`` moves t's previous history to a new tensor object
    (``t._prior``) and makes ``t`` the op's output, so an op that used ``t`` before the write must
    follow ``_prior`` back to the history it saw (PyTorch's nodes hold that history directly).
    """
    if not any(p._seq > seq for p in parents):
        return parents
    return tuple(_version_at_seq(p, seq, chains) for p in parents)


# A rebased tensor's histories, newest first (the live tensor, then its ``_prior`` chain), as the negated
# creation numbers (ascending: the chain's numbers strictly decrease) and the tensors, with the live
# tensor and its number when indexed (a later rebase makes the index stale).
_Chain = tuple[Any, float, list[float], list[Any]]


def _chain_of(t: Tensor, chains: dict[int, _Chain]) -> _Chain:
    """The indexed chain ``t`` belongs to (built once per walk: a loop of n writes into one tensor gives
    n histories and n lookups, which one link at a time would make quadratic)."""
    head = getattr(t, "_next", t)  # a history moved aside points at the live tensor, the chain's head
    chain = chains.get(id(head))
    if chain is None or chain[0] is not head or chain[1] != head._seq:
        keys: list[float] = []
        nodes: list[Any] = []
        h: Tensor | None = head
        while h is not None:
            keys.append(-h._seq)
            nodes.append(h)
            h = getattr(h, "_prior", None)
        chain = (head, head._seq, keys, nodes)
        chains[id(head)] = chain
    return chain


def _version_at_seq(t: Tensor, seq: float, chains: dict[int, _Chain] | None = None) -> Tensor:
    """The history ``t`` had when op number ``seq`` used it (the newest one numbered ``seq`` or lower)."""
    if t._seq <= seq:
        return t
    if chains is not None:
        _, _, keys, nodes = _chain_of(t, chains)
        i = bisect.bisect_left(keys, -seq)  # the first numbered <= seq (all before t are numbered higher)
        if i < len(nodes):
            return nodes[i]
    while t._seq > seq:
        t = t._prior
    return t


def _version_before(t: Tensor, seq: float, chains: dict[int, _Chain] | None = None) -> Tensor:
    """The history ``t`` had just before op number ``seq`` (an in-place op's own number included)."""
    if t._seq < seq or not t._seq:
        return t
    if chains is not None:
        _, _, keys, nodes = _chain_of(t, chains)
        i = bisect.bisect_right(keys, -seq)  # the first numbered < seq (all before t are numbered higher)
        if i < len(nodes):
            return nodes[i]
    while t._seq >= seq and t._seq:
        t = t._prior
    return t


_VIEW_RULE_SET: list[frozenset[Any]] = []


def _view_rules() -> frozenset[Any]:
    """The rules of view ops (the ops' views and the views of a complex tensor's parts), made on first use
    (the complex ops register theirs when the tensor module loads)."""
    if not _VIEW_RULE_SET:
        from .tensor import PART_VIEWS

        _VIEW_RULE_SET.append(_ops()._VIEW_RULES | frozenset(PART_VIEWS))
    return _VIEW_RULE_SET[0]


def _current_views(
    parents: tuple[Tensor, ...], seq: int, chains: dict[int, _Chain] | None = None
) -> tuple[Tensor, ...]:
    """Parents that are views, as they were when op number ``seq`` used them.

    A view shows its base's storage, so a write to the base (an in-place op, which rebases the base)
    changes the view's values too; its recorded history (a view of the old base) no longer describes
    them. An op that used the view after such a write gets a fresh view node of the base's history
    at that time (PyTorch regenerates the view's grad_fn the same way).
    """
    view_rules = _view_rules()
    if not any(p._vjp in view_rules for p in parents):
        return parents
    fresh = tuple(_view_at(p, seq, 1, chains=chains) for p in parents)
    return parents if all(a is b for a, b in zip(fresh, parents)) else fresh


def _view_at(v: Tensor, seq: int, depth: int, stands: bool = True, chains: dict[int, _Chain] | None = None) -> Tensor:
    """``v`` (a view) with a history that matches its values as op number ``seq`` saw them. ``stands``:
    whether the fresh node stands for ``v`` as autograd.grad's input (see _stand_ins): as torch, a view's
    regenerated node leads through its base view's node only when it was taken after the base's write."""
    if v._vjp not in _view_rules() or not v._parents:
        return v
    base = v._parents[0]
    base = getattr(base, "_next", base)  # the live tensor, if base is a history an in-place op moved aside
    if not np.may_share_memory(v.array, base.array):
        return v  # a copy (reshape of a non-contiguous tensor): its values are its own
    then = _version_before(base, v._seq, chains)
    vc = v._vc
    after_write = vc is None or len(vc) == 1 or v._seq > vc[-1]
    now = _view_at(_version_before(base, seq, chains), seq, depth + 1, stands and after_write, chains)
    if now is then:
        return v
    now = _in_layout_at(now, then, seq, depth)
    Tensor, wrap_array = _tensor_api()
    fresh = Tensor.__new__(Tensor)
    fresh.array, fresh.grad, fresh.requires_grad = v.array, None, True
    fresh._parents, fresh._vjp, fresh._saved, fresh._needs = (now,), v._vjp, v._saved, (True,)
    fresh._retains_grad, fresh._vc = False, v._vc
    fresh._fresh_of = v if stands else None  # the view it stands for (autograd.grad's inputs: see _stand_ins)
    # between the op that used it (seq) and everything before (integers <= seq - 1); a view of a view
    # made here (depth + 1) comes earlier, as its base
    fresh._seq = seq - 1 + 0.5**depth
    return fresh


def _layout_back_vjp(g: Any, y: Any, args: Any, saved: tuple[str, Any], needs: Any, xp: Any) -> tuple[Any]:
    """The rule of a metadata-only in-place op (squeeze_, unsqueeze_, t_, transpose_, recorded by
    tensor.py): the gradient in the tensor's layout before the op (``saved``: a reshape to that shape or
    a permutation of the axes)."""
    kind, arg = saved
    return (xp.reshape(g, arg) if kind == "reshape" else xp.permute(g, arg),)


_layout_back_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _in_layout_at(now: Tensor, then: Tensor, seq: int, depth: int) -> Tensor:
    """``now`` (a history of a view's base) in the base's layout at ``then``: a view taken before an
    in-place squeeze_/t_... of its base indexes the old layout (torch's regenerated view is an as_strided,
    which layouts do not affect), so each layout change between them is undone by a recorded reshape."""
    changes = []
    h: Tensor | None = now
    while h is not None and h is not then and h._seq > then._seq:
        if h._vjp is _layout_back_vjp:
            changes.append(h._saved)
        h = getattr(h, "_prior", None)
    if not changes:
        return now
    Tensor, _ = _tensor_api()
    lo, hi = seq - 1 + 0.5 ** (depth + 1), seq - 1 + 0.5**depth  # after now, before the fresh view made of it
    for k, (kind, arg) in enumerate(changes):  # the newest change first
        a = now.array
        undo = Tensor.__new__(Tensor)
        undo.array = a.reshape(arg) if kind == "reshape" else a.transpose(arg)
        undo._grad, undo._requires_grad, undo._retains_grad, undo._vc = None, True, False, now._vc
        undo._parents, undo._vjp, undo._needs = (now,), _layout_back_vjp, (True,)
        inverse = tuple(sorted(range(len(arg)), key=arg.__getitem__)) if kind == "permute" else None
        undo._saved = ("reshape", a.shape) if kind == "reshape" else ("permute", inverse)
        undo._seq = lo + (hi - lo) * (k + 1) / (len(changes) + 1)
        now = undo
    return now


def _old_layout_view(base: Tensor, seq: int) -> Tensor:
    """``base``, or a recorded view of it in the layout it had when op number ``seq`` (a view of it) was
    taken, undoing each in-place layout change (squeeze_, t_...) since: a write through that view indexes
    the old layout, as torch's as_strided regeneration does."""
    changes = []
    h: Tensor | None = base
    while h is not None and h._seq > seq:
        if h._vjp is _layout_back_vjp:
            changes.append(h._saved)
        h = getattr(h, "_prior", None)
    if not changes:
        return base
    ops = _ops()
    out = base
    for kind, arg in changes:  # the newest change first
        out = ops.reshape(out, arg) if kind == "reshape" else ops.permute(out, arg)
    if not np.may_share_memory(out.array, base.array):
        raise StateError(
            f"an in-place op on a view taken before its base's in-place layout changes (shape now "
            f"{tuple(base.array.shape)}, {tuple(out.array.shape)} then): that layout is not a view of the base's "
            "storage now; write through a view taken after the layout change, or change the layout out of place"
        )
    return out


def _current_roots(roots: Sequence[Tensor]) -> tuple[Sequence[Tensor], list[tuple[Tensor, Tensor]]]:
    """``roots`` with each view whose base was written in place after it was taken replaced by a fresh
    view node of the base's history now (``row = h[0]; h.mul_(3); row.backward(g)``; see
    :func:`_current_views`), and the (fresh, root) pairs replaced. A root's own retain_grad carries over;
    hooks registered on it stay with its old history, as torch's stay with the view's old grad_fn."""
    # after every history a root's base can have now: its latest rebase, or its creation (before the root's)
    now = max(_inplace_clock.rebased, *(r._seq for r in roots)) + 1
    fresh_roots = [_view_at(r, now, 1) for r in roots]
    stale = [(f, r) for f, r in zip(fresh_roots, roots) if f is not r]
    for fresh, r in stale:
        if r._retains_grad:
            fresh._retains_grad, fresh._grad = True, r._grad
    return (fresh_roots if stale else roots), stale


@np.errstate(all="ignore")  # the rules' reductions (NumPy warns from its own module): once per backward
def _run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None,
    grad_call: bool = False,
) -> dict[int, Any]:
    """Propagate ``root_grads`` from ``roots`` to every node that requires grad.

    With ``capture`` (functional mode), the gradients of those tensors are returned and no
    ``.grad`` is touched; otherwise gradients accumulate into leaves' ``.grad``. ``grad_call``:
    for autograd.grad, which captures an input's gradient before its hooks when its rule still runs.
    """
    Tensor, wrap_array = _tensor_api()
    RowGrad = _row_grads().RowGrad
    xp: Any = TensorRules if create_graph else ArrayRules
    stale = None
    if _inplace_clock.rebased and any(r._vjp in _view_rules() for r in roots):
        roots, stale = _current_roots(roots)
        if stale and capture is not None:
            capture = [*capture, *(fresh for fresh, r in stale if any(r is c for c in capture))]
    order = _topological_order(roots, 0 if capture is None else _capture_floor(capture))
    _pass_number[0] += 1
    grads: dict[int, Any] = {}
    for r, g in zip(roots, root_grads):
        grads[id(r)] = g if id(r) not in grads else grads[id(r)] + g
    capture_ids = None if capture is None else {id(t) for t in capture}
    stand_ins = _stand_ins(order, capture_ids) if capture_ids is not None and _inplace_clock.rebased else None
    if stand_ins:
        capture_ids |= stand_ins.keys()  # type: ignore[operator]
    captured: dict[int, Any] = {}
    fills = _retained_on_the_way(order, capture_ids) if capture_ids is not None else None
    if fills and capture_ids is not None and not grad_call:
        fills -= capture_ids  # backward(inputs=) accumulates into those itself
    # autograd.grad: only the nodes on a path to an input run, and each rule is asked only for the
    # gradients of its inputs on such a path (torch's engine prunes the same way), so that a
    # gradient penalty's grad(critic(x).sum(), x, create_graph=True) computes and records no weight
    # gradient of the network it passes through.
    leads = _leading_to(order, capture_ids) if capture_ids is not None else None
    # arrays already handed to a .grad, so a second holder gets a copy; the root gradients may be
    # the caller's own arrays (_check_root_grad), so a .grad gets a copy of those too
    owned: set[int] = _root_ids(root_grads)

    previous_mode = _mode.enabled
    _mode.enabled = create_graph
    pop = grads.pop
    get: Any = grads.get  # the gradients: arrays, or Tensors under create_graph
    last_inplace = _inplace_clock.last
    hooks_on = _inplace_clock.hooks > 0
    check_nan = _anomaly[0]
    value_free = _value_free_rules.get
    slice_rule = _ops()._getitem_vjp
    # Gradient arrays this pass made and nothing else holds (an indexing rule's scatter into zeros,
    # the sum of two contributions), by id: a further contribution to the same input is added into
    # them in place, and a basic-indexing node (split's pieces: an attention's q, k and v) adds its
    # gradient into the slice it came from instead of scattering it into zeros of the whole input.
    # Never under create_graph (the sums are recorded ops there) and never for arrays a rule or a
    # caller may share (a rule's g passed through, the root gradients).
    sums: dict[int, Any] = {}
    try:
        for node in reversed(order):
            g = pop(id(node), None)
            if g is None:
                continue
            if sums:
                sums.pop(id(g), None)
            vjp = node._vjp
            if g.__class__ is not _NDARRAY:
                if isinstance(g, np.generic):
                    g = as_array(g)  # NumPy's 0-d results are scalars; a gradient (a .grad) is a 0-d array
                elif g.__class__ is RowGrad and (
                    vjp is not None
                    or capture_ids is not None
                    or getattr(node, "_hooks", None)
                    or getattr(node, "_fn", None)
                ):
                    g = g.dense()  # a sparse lookup's rows: only a plain leaf's .grad keeps them as rows
            if not create_graph and g.dtype is not node.array.dtype and g.dtype != node.array.dtype:
                # as torch's engine (validate_outputs): a rule sees its output's dtype, never the wider
                # one a mixed-dtype op above sent back (a compiled kernel planned for float32 would
                # read a float64 gradient's memory as float32)
                g = g.astype(node.array.dtype)
            needs: Any = node._needs
            if leads is not None:
                # on no path to an input of autograd.grad: torch's engine neither runs the node nor calls
                # its tensor's hooks (which could write into the caller's grad_outputs)
                if id(node) not in leads and vjp is not _released_vjp:  # a freed graph still says so
                    continue
                if vjp is not None:
                    needs = tuple([n and id(p) in leads for n, p in zip(needs, node._parents)])
            state = None
            if hooks_on:
                if not create_graph and g.dtype != node.array.dtype:
                    g = g.astype(node.array.dtype)  # a hook sees the tensor's dtype (cast per edge under create_graph)
                if getattr(node, "_hooks", None):
                    if (
                        grad_call
                        and vjp is not None
                        and capture_ids is not None
                        and id(node) in capture_ids
                        and any(needs)
                    ):
                        # an input of autograd.grad whose rule still runs (another input lies beyond it): torch
                        # captures its gradient before its hooks run (after them when its rule does not run)
                        captured[id(node)] = g
                    g = _run_hooks(node, g, create_graph)
                    if not create_graph:  # a hook may keep g: a .grad made from it gets a copy, as torch's
                        owned.add(id(g))  # AccumulateGrad clones a gradient someone else still holds
                        if g.base is not None:
                            owned.add(id(g.base))
                state = getattr(node, "_fn", None)  # hooks on node.grad_fn, values packed by saved_tensors_hooks
                if state is not None and state.seq != node._seq:
                    state = None
            if capture_ids is not None and id(node) in capture_ids and id(node) not in captured:
                captured[id(node)] = g
            if vjp is None or node._retains_grad:
                if capture_ids is None and vjp is not None:
                    _retain_grad(node, g, create_graph, Tensor, wrap_array)
                elif capture_ids is None:
                    if state is not None and vjp is None and state.pre_hooks:
                        g = _run_node_prehooks(state, node, g, create_graph)
                    _accumulate_grad(node, g, create_graph, owned, Tensor, wrap_array)
                    if hooks_on and vjp is None and getattr(node, "_post_hooks", None):
                        for hook in list(node._post_hooks.values()):
                            if hook(node) is not None:
                                raise StateError(
                                    "Tensor post accumulate grad hooks should return None. The hook "
                                    f"{getattr(hook, '__name__', type(hook).__name__)!r} returned a value; it may "
                                    "change the tensor's .grad in place instead"
                                )
                    if state is not None and vjp is None and state.hooks:
                        for hook in list(state.hooks.values()):  # AccumulateGrad's: (grad_inputs, grad_outputs)
                            hook((), (g if isinstance(g, Tensor) else wrap_array(g),))
                elif fills and id(node) in fills:  # autograd.grad fills retained gradients too, as torch
                    _retain_grad(node, g, create_graph, Tensor, wrap_array)
                if vjp is None:
                    continue
            if leads is not None and not any(needs) and vjp is not _released_vjp:
                continue  # an input of autograd.grad whose own inputs lead to no other: its rule has nothing to do
            if state is not None and state.pre_hooks:
                g = _run_node_prehooks(state, node, g, create_graph)
            stale_output = False
            if node._seq < last_inplace:
                # values that saved_tensors_hooks packed are read back from the pack, not the tensor: no
                # version check on them (as torch), except under create_graph, which computes with the tensors
                stale_output = _check_versions(
                    node, state is not None and state.packed is not None and not create_graph
                )
            parents = node._parents
            if stale_output:  # a rule that can do without its output (torch saves none), given None
                args = parents if create_graph else tuple([p.array for p in parents])
                input_grads = vjp(g, None, args, node._saved, needs, xp)
                if create_graph:
                    input_grads = _in_parent_dtypes(input_grads, parents, Tensor)
            elif state is not None and state.packed:
                y, args = _unpack_saved(node, state, create_graph)
                input_grads = vjp(g, y, args, node._saved, needs, xp)
                if create_graph:
                    input_grads = _in_parent_dtypes(input_grads, parents, Tensor)
            elif create_graph:
                input_grads = _in_parent_dtypes(vjp(g, node, parents, node._saved, needs, xp), parents, Tensor)
            elif (
                vjp is slice_rule
                and state is None
                and not node._saved[1]
                and (prev := get(id(parents[0]))) is not None
                and id(prev) in sums  # (sums holds its arrays: an id there is theirs)
                and prev.dtype == g.dtype
            ):
                prev[node._saved[0]] += g
                input_grads = ()
            elif len(parents) == 1:
                input_grads = vjp(g, node.array, (parents[0].array,), node._saved, needs, xp)
            else:
                input_grads = vjp(g, node.array, tuple([p.array for p in parents]), node._saved, needs, xp)
            if state is not None and state.hooks:
                input_grads = _run_node_hooks(state, node, g, input_grads, create_graph)
            if check_nan:
                _check_anomaly(node, input_grads)
            # a rule marked fresh_grads returns new arrays that it keeps no reference to: a later
            # contribution can be added into them in place, as into an indexing rule's scatter
            # (never into a NumPy scalar, which += would replace instead of filling)
            scattered = (vjp is slice_rule or getattr(vjp, "fresh_grads", False)) and state is None and not create_graph
            for parent, needed, pg in zip(parents, needs, input_grads):
                if needed and pg is not None:
                    key = id(parent)
                    prev = get(key)
                    if prev is None:
                        grads[key] = pg
                        if scattered and not isinstance(pg, np.generic):
                            sums[id(pg)] = pg
                    elif id(prev) in sums and prev.shape == pg.shape and prev.dtype == pg.dtype:
                        if pg.__class__ is RowGrad:
                            pg.add_into(prev)  # a sparse lookup's rows into a sum this pass owns
                        else:
                            prev += pg
                    else:
                        summed = grads[key] = prev + pg
                        # a NumPy scalar is immutable; rows+values (two lookups of one table) are added as pieces
                        if not create_graph and not isinstance(summed, (np.generic, RowGrad)):
                            sums[id(summed)] = summed
            if not retain_graph:
                if state is not None and state.packed is not None:
                    state.packed = None  # the packed values go with the node, as the saved ones do
                    _inplace_clock.hooks -= 1
                free = value_free(vjp)
                if free is None:
                    free = _rule_is_value_free(vjp)
                if free is _IF_ONE_INPUT:
                    free = len(node._parents) == 1
                elif free is _PER_NODE:
                    free = _node_is_value_free(node, vjp)
                if free and (node._saved is None or _saved_is_plain(node._saved)):
                    held = getattr(node, "_freed_edges", None)
                    if held is not None and not held.known:  # an input of a node freed above: if it dies
                        _keep_edges(node)
                    continue  # nothing to free: another backward may pass through this node
                if vjp is _function_vjp:
                    node._saved[1]._saved = None  # free what ctx saved; reading saved_tensors again raises
                    continue
                node._vjp = _released_vjp
                # the edges stay known (weakly: the inputs' values are what freeing releases), so a later
                # autograd.grad can tell that no input lies behind this node, as torch's kept edges do
                _keep_edges(node)
                node._parents = ()
                node._saved = vjp  # the rule, not its saved values: grad_fn.name() still names the op
    finally:
        _mode.enabled = previous_mode
        if stand_ins:
            _merge_stand_ins(captured, stand_ins)
        for fresh, r in stale or ():
            if id(fresh) in captured:
                captured[id(r)] = captured.pop(id(fresh))
            if r._retains_grad:
                r._grad = fresh._grad
    while _pass_end:  # register_multi_grad_hook(mode="all") calls, once the pass has computed every gradient
        _pass_end.pop(0)()
    if leads is not None and capture is not None and len(captured) < len(capture):
        _check_freed_path(order, capture, captured, leads)
    return captured


def _check_freed_path(
    order: list[Tensor], capture: Sequence[Tensor], captured: dict[int, Any], leads: set[int]
) -> None:
    """Raise torch's error when an input of autograd.grad (or backward(inputs=)) got no gradient and the
    graph holds a node an earlier pass freed: a freed node has dropped its inputs, so the path to the input
    may run through it, and torch, which keeps the edges, raises there. Runs only when an input is missing.

    The nodes this pass freed were all on a path to an input (in ``leads``: the walk runs no other); one
    freed before it has no inputs left, so it is in ``leads`` only when it is itself an input; the weak
    edges it kept (see :func:`_freed_may_reach`) tell whether the input can lie behind it."""
    for t in capture:
        if id(t) not in captured:
            seq = t._seq
            # the input could lie behind only a node made after it (an op's inputs exist before it)
            if any(
                n._vjp is _released_vjp and n._seq > seq and id(n) not in leads and _freed_may_reach(n, t)
                for n in order
            ):
                _released_vjp()


class _Edges(list[Any]):
    """A node's edges once a backward pass freed (or kept) it: (weak reference to an input, the input's own
    _Edges or None for a leaf) pairs; ``known`` once filled (a list made by a freed user of the node, to be
    filled when the pass reaches the node)."""

    known = False  # (a class default: no Python-level __init__ on backward's path)


def _held_edges(t: Tensor) -> _Edges | None:
    return getattr(t, "_freed_edges", None)


def _keep_edges(node: Tensor) -> None:
    """Fill ``node``'s _Edges (made here or by a freed user) from its inputs: per input that requires
    grad, a weak reference and the input's own _Edges (made empty, to be filled when this pass reaches it),
    so a later walk passes an intermediate that died with its freed user. Holds no tensor, so no values."""
    edges = []
    for p in node._parents:
        if p.requires_grad:
            below = None
            if p._vjp is not None:
                below = getattr(p, "_freed_edges", None)
                if below is None:
                    below = p._freed_edges = _Edges()
            edges.append((weakref.ref(p), below))
    held = getattr(node, "_freed_edges", None)
    if held is None:
        held = node._freed_edges = _Edges(edges)
    else:
        held[:] = edges
    held.known = True


def _behind_freed(node: Tensor, found: Any, unknown: bool) -> bool:
    """Whether a tensor for which ``found(t)`` holds lies behind the freed ``node``, walked through the edges
    freed nodes keep (see :func:`_keep_edges`) and the inputs of whole nodes; an intermediate gone before its
    edges were known counts as ``unknown``."""
    held = _held_edges(node)
    if held is None or not held.known:
        return unknown
    todo: list[Any] = list(held)
    seen: set[int] = {id(held)}
    while todo:
        ref, held = todo.pop()
        t = ref()
        if t is not None:
            if found(t):
                return True
            if t._vjp is not _released_vjp:  # whole (or a leaf): its inputs as they are
                for p in t._parents:
                    if p.requires_grad and id(p) not in seen:
                        seen.add(id(p))
                        todo.append((weakref.ref(p), _held_edges(p)))
                continue
        if held is None or id(held) in seen:
            continue  # a leaf (gone, or found above), or edges already walked
        seen.add(id(held))
        if not held.known:
            if unknown:
                return True
            continue
        todo.extend(held)
    return False


def _freed_may_reach(node: Tensor, target: Tensor) -> bool:
    """Whether ``target`` may lie behind the freed ``node``: found through the edges freed nodes kept, or
    unknown (an intermediate gone before its edges were kept): torch's engine, which keeps every edge,
    raises only in the first case; unknown raises too, never a wrong None."""
    return _behind_freed(node, lambda t: t is target, True)


def _stand_ins(order: list[Tensor], capture_ids: set[int]) -> dict[int, Tensor]:
    """The fresh view nodes (see _view_at) of the views among ``capture_ids`` that show their base's values
    now, by id: torch's input view has its grad_fn regenerated for its base's latest version, so its
    gradient is the one reaching those nodes (the original's, from before the write, is not)."""
    found = {}
    for n in order:
        v = getattr(n, "_fresh_of", None)
        if v is not None and id(v) in capture_ids:
            vc = n._vc
            if vc is None or len(vc) == 1 or vc[-1] < n._seq:
                found[id(n)] = v
    return found


def _merge_stand_ins(captured: dict[int, Any], stand_ins: dict[int, Tensor]) -> None:
    """Each captured view's gradient: the sum of what reached its fresh nodes (replacing its own node's)."""
    merged: dict[int, Any] = {}
    for key, v in stand_ins.items():
        g = captured.pop(key, None)
        if g is not None:
            merged[id(v)] = g if id(v) not in merged else merged[id(v)] + g
    captured.update(merged)


def _leading_to(order: list[Tensor], capture_ids: set[int]) -> set[int]:
    """The ids of ``capture_ids`` and of every node of ``order`` computed from one of them (``order``
    lists inputs before their users): the nodes whose gradient reaches an input of autograd.grad."""
    leads = set(capture_ids)
    add = leads.add
    for n in order:
        if n._vjp is _released_vjp:
            # freed by an earlier pass, its inputs dropped: torch's engine keeps the edges and raises when a
            # gradient reaches it; left out here, its share of the gradient would be silently missing
            if id(n) not in leads and _freed_leads_to(n, leads):
                add(id(n))
            continue
        for p in n._parents:
            if id(p) in leads:
                add(id(n))
                break
    return leads


def _freed_leads_to(node: Tensor, leads: set[int]) -> bool:
    """Whether a node in ``leads`` lies behind the freed ``node``, found through the edges freed nodes keep
    (see :func:`_behind_freed`). An intermediate gone before its edges were kept proves nothing: counting it
    would raise for inputs that lie elsewhere, which torch computes; :func:`_check_freed_path` still raises
    when an input then gets no gradient at all."""
    return _behind_freed(node, lambda t: t is not node and id(t) in leads, False)


def _retained_on_the_way(order: list[Tensor], capture_ids: set[int]) -> set[int] | None:
    """For autograd.grad: the non-leaf tensors that called retain_grad() and whose gradient PyTorch's
    engine computes on its way to the inputs (an input itself, or a tensor computed from one), which
    it fills as backward() does. None when there are none (``order`` lists inputs before their users)."""
    if not any(n._retains_grad for n in order):
        return None
    leads = set(capture_ids)
    fills = set()
    for n in order:
        key = id(n)
        if key not in leads and any(id(p) in leads for p in n._parents):
            leads.add(key)
        if n._retains_grad and n._vjp is not None and key in leads:
            fills.add(key)
    return fills


# The number of the latest backward pass, and what to call at its end (see autograd_graph.register_multi_grad_hook).
_pass_number = [0]
_pass_end: list[Any] = []


def _in_parent_dtypes(input_grads: Any, parents: tuple[Tensor, ...], Tensor: Any) -> Any:
    """Under create_graph, each gradient in its parent's dtype, as torch's engine casts on every
    edge (a float64 * float32 product hands its float32 side a float64 gradient): a recorded cast,
    so a higher-order gradient flows back through it. The fast mode casts only where a gradient
    lands (_accumulate_grad, grad(), a hook), which keeps its walk free of per-edge checks."""
    out = None
    for i, (parent, pg) in enumerate(zip(parents, input_grads)):
        if pg is not None and pg.dtype != parent.array.dtype:
            if out is None:
                out = list(input_grads)
            out[i] = (
                TensorRules.astype(pg, parent.array.dtype) if isinstance(pg, Tensor) else pg.astype(parent.array.dtype)
            )
    return input_grads if out is None else out


def _as_tensor_grad(g: Any, Tensor: Any, wrap_array: Any) -> Any:
    return g if g is None or isinstance(g, Tensor) else wrap_array(g)


def _as_rule_grad(new: Any, like_array: Any, create_graph: bool, Tensor: Any, what: str) -> Any:
    """A hook's replacement gradient in the form the backward walk carries (an array, or a tensor under create_graph)."""
    if new is None:
        return None
    if create_graph:
        return new if isinstance(new, Tensor) else _tensor_api()[1](like(new, like_array))
    arr = new.array if isinstance(new, Tensor) else like(new, like_array)
    if tuple(arr.shape) != tuple(like_array.shape):
        raise StateError(f"{what} returned a gradient of shape {tuple(arr.shape)}; expected {tuple(like_array.shape)}")
    return arr


def _run_node_prehooks(state: NodeState, node: Tensor, g: Any, create_graph: bool) -> Any:
    """grad_fn.register_prehook hooks: ``hook(grad_outputs)``, which may return replacement grad_outputs."""
    Tensor, wrap_array = _tensor_api()
    for hook in list(state.pre_hooks.values()):
        result = hook((_as_tensor_grad(g, Tensor, wrap_array),))
        if result is None:
            continue
        if not isinstance(result, (tuple, list)) or len(result) != 1:
            raise StateError(
                f"a prehook of {rule_name(node._vjp)} returned {type(result).__name__}; expected None or a tuple "
                "with one gradient per output (1)"
            )
        g = _as_rule_grad(result[0], node.array, create_graph, Tensor, "a grad_fn prehook")
    return g


def _run_node_hooks(state: NodeState, node: Tensor, g: Any, input_grads: Any, create_graph: bool) -> Any:
    """grad_fn.register_hook hooks: ``hook(grad_inputs, grad_outputs)``, which may return replacement grad_inputs."""
    Tensor, wrap_array = _tensor_api()
    grads = list(input_grads)
    for hook in list(state.hooks.values()):
        result = hook(
            tuple(_as_tensor_grad(x, Tensor, wrap_array) for x in grads), (_as_tensor_grad(g, Tensor, wrap_array),)
        )
        if result is None:
            continue
        if not isinstance(result, (tuple, list)) or len(result) != len(grads):
            raise StateError(
                f"a hook of {rule_name(node._vjp)} returned {type(result).__name__}"
                f"{f' of length {len(result)}' if isinstance(result, (tuple, list)) else ''}; expected None or a tuple "
                f"with one gradient per input ({len(grads)})"
            )
        grads = [
            _as_rule_grad(new, p.array, create_graph, Tensor, "a grad_fn hook") for new, p in zip(result, node._parents)
        ]
    return tuple(grads)


def _unpack_saved(node: Tensor, state: NodeState, create_graph: bool) -> tuple[Any, tuple[Any, ...]]:
    """The output and inputs a rule computes with when saved_tensors_hooks packed them: what the unpack
    hooks return (under create_graph the graph's own tensors, so that gradients flow through them; the
    hooks still run)."""
    Tensor = _tensor_api()[0]
    y: Any = node if create_graph else node.array
    parents = node._parents
    args: list[Any] = list(parents) if create_graph else [p.array for p in parents]
    for i, unpack, value in state.packed or ():
        original = node if i < 0 else parents[i]
        got = unpack(value)
        if not isinstance(got, Tensor) or tuple(got.shape) != tuple(original.shape):
            raise StateError(
                f"an unpack hook of saved_tensors_hooks returned {type(got).__name__}"
                f"{f' of shape {tuple(got.shape)}' if isinstance(got, Tensor) else ''}; expected a tensor of "
                f"shape {tuple(original.shape)} (the saved one)"
            )
        if create_graph:
            continue
        if i < 0:
            y = got.array
        else:
            args[i] = got.array
    return y, tuple(args)


def _run_hooks(node: Tensor, g: Any, create_graph: bool) -> Any:
    """Call the tensor's gradient hooks in order; a hook that returns a tensor replaces the gradient."""
    Tensor, wrap_array = _tensor_api()
    for hook in list(node._hooks.values()):
        if not isinstance(g, Tensor) and not getattr(getattr(g, "flags", None), "writeable", True):
            # a rule's gradient may be a read-only broadcast view (mean's, sum's): a hook that writes into
            # its gradient in place (g.mul_(2)) gets its own copy, and the written copy flows on
            g = g.copy()
        result = hook(g if isinstance(g, Tensor) else wrap_array(g))
        if result is None:
            continue
        new = result if create_graph else (result.array if isinstance(result, Tensor) else like(result, node.array))
        if tuple(new.shape) != tuple(node.shape):
            raise StateError(
                f"a gradient hook returned shape {tuple(new.shape)} for a tensor of shape {tuple(node.shape)}"
            )
        was = g.array.dtype if isinstance(g, Tensor) else g.dtype
        got = new.array.dtype if isinstance(new, Tensor) else getattr(new, "dtype", was)
        if got != was:  # torch's check (a silent cast back would hide the hook's mistake)
            name = getattr(hook, "__name__", type(hook).__name__)
            raise StateError(
                f"hook '{name}' has changed the type of value (was {_torch_type_name(was)} got "
                f"{_torch_type_name(got)}); a gradient hook must return the gradient's dtype ({was})"
            )
        g = new
    return g


_TORCH_TYPE_NAMES = {
    "float32": "torch.FloatTensor",
    "float64": "torch.DoubleTensor",
    "float16": "torch.HalfTensor",
    "complex64": "torch.ComplexFloatTensor",
    "complex128": "torch.ComplexDoubleTensor",
}


def _torch_type_name(dtype: Any) -> str:
    """torch's legacy type name of a dtype (torch.FloatTensor), as its hook messages write it."""
    return _TORCH_TYPE_NAMES.get(str(dtype), str(dtype))


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks: dict[int, Any], key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        if self._hooks.pop(self._key, None) is not None:
            _inplace_clock.hooks -= 1


# ---------------------------------------------------------------------- in-place checks
def _version_at(vc: list[int], seq: int) -> int:
    """A counter's version when op number ``seq`` was recorded (``vc`` = [version, seqs of recent writes])."""
    return vc[0] - _builtin_sum(1 for s in vc[1:] if s > seq)


_builtin_sum = sum


def _changed_after(t: Tensor, seq: int) -> bool:
    vc = t._vc
    return vc is not None and len(vc) > 1 and vc[-1] > seq


def _check_versions(node: Tensor, packed: bool = False) -> bool:
    """Refuse to run a node's rule on values (or through inputs) that an in-place op changed since.

    Two cases. An input object that was rebased by an in-place op after this node used it (its
    ``_seq`` is newer) now stands for the in-place result, so its gradient would flow through the
    wrong history: always an error (stricter than PyTorch, never silently wrong). An input (or the
    node's own output) whose storage was written after the node was recorded is an error when the
    rule reads values (PyTorch's saved-tensor version check); not when ``packed`` (the rule reads
    what saved_tensors_hooks packed). Returns True when the output changed and the rule declares
    ``reads_output = "optional"`` (it reads its output when it can, and recomputes what it needs from
    its inputs when given None: PyTorch saves no result there, so no error); the caller passes None.
    """
    seq = node._seq
    rule = node._vjp
    for i, p in enumerate(node._parents):
        if p._seq > seq or (not packed and _changed_after(p, seq) and _reads_input(rule, i, node._needs)):
            _warn_forward_stack(node)
            raise StateError(_modified_message(p, seq, f"input {i} of {_rule_label(rule)}"))
    if not packed and _changed_after(node, seq) and _reads_output(rule):
        if getattr(rule, "reads_output", None) == "optional" and not any(_changed_after(p, seq) for p in node._parents):
            return True  # the rule computes without it (from all its inputs, unchanged) when given None
        _warn_forward_stack(node)
        raise StateError(_modified_message(node, seq, f"output 0 of {_rule_label(rule)}"))
    return False


def saves_values(node: Tensor) -> bool:
    """Whether ``node``'s rule reads values in backward (an input, its output, or arrays it kept): what
    torch's op would save for backward (utils.checkpoint's early stop counts such ops)."""
    rule, needs = node._vjp, node._needs
    if rule is None:
        return False
    return (
        not _saved_is_plain(node._saved)
        or _reads_output(rule)
        or any(_reads_input(rule, i, needs) for i in range(len(node._parents)))
    )


def rerun(op: Any, args: Sequence[Any], xp: Any) -> Any:
    """An op's output recomputed inside a VJP rule from its inputs ``args`` (arrays, or tensors under
    ``create_graph``, then recorded): what a rule with ``reads_output = "optional"`` uses when it is
    given None for an output that an in-place op changed."""
    if xp.differentiable:
        return op(*args)
    wrap = _tensor_api()[1]
    with no_grad():
        return op(*[wrap(a) for a in args]).array


def _rule_label(rule: Any) -> str:
    return rule_name(rule)


def _modified_message(t: Tensor, seq: int, role: str) -> str:
    vc = t._vc or [0]
    return (
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{t.array.dtype} tensor of shape {tuple(t.array.shape)}], which is {role}, is at version {vc[0]}; "
        f"expected version {_version_at(vc, seq)} instead. Hint: the in-place op ran after the tensor was used "
        "by a recorded op; write it out of place (y = y + 1 instead of y += 1) or .clone() the tensor first."
    )


def _reads_input(rule: Any, i: int, needs: Any) -> bool:
    """Whether a rule reads input ``i``'s values. Rules say so with ``reads_inputs``: True (all, the
    default), False (shapes only), a tuple of indices, "others" (input i is read when another input
    wants a gradient, as in a product), or a function of ``(i, needs)``."""
    reads = getattr(rule, "reads_inputs", True)
    if reads is True or reads is False:
        return reads
    if callable(reads):  # reads(i, needs): for rules whose reads depend on which gradients are wanted
        return bool(reads(i, needs))  # host: a rule's declaration (Python flags), not an array
    if reads == "others":
        return needs is None or any(n for j, n in enumerate(needs) if j != i)
    return i in reads


@functools.cache
def _reads_output(rule: Any) -> bool:
    """Whether a rule reads its output ``y`` (the second parameter): PyTorch's "saved result", whose
    in-place change makes backward raise.

    A rule may say so itself (``reads_output = False``). Otherwise its source decides (see
    :func:`_reads_param`): reading ``y.shape`` or ``y.dtype`` reads no values, and ``y`` handed to a
    module-level helper counts as read only where that helper reads it. Anything that cannot be
    inspected counts as reading it.
    """
    declared = getattr(rule, "reads_output", None)
    if declared is not None:
        return bool(declared)  # host: a rule's declaration, not an array
    code = getattr(rule, "__code__", None)
    if code is None or code.co_argcount < 2:
        return True
    return _reads_param(rule, code.co_varnames[1], 0)


# attributes of a tensor or array that carry no values: reading them is no use of the saved data
_METADATA_ATTRS = frozenset({"shape", "dtype", "ndim", "size", "device", "is_cuda", "requires_grad"})


def _reads_param(fn: Any, name: str, depth: int) -> bool:
    """Whether the function ``fn`` reads the values of its parameter ``name``.

    First its bytecode: no load of the name at all, no read. Else its source: each use of the name is a
    read unless it is a metadata attribute (``name.shape``) or an argument of a call to a module-level
    function (looked up in ``fn``'s globals) that does not read the matching parameter itself
    (followed a few calls deep). A name assigned to, a source that cannot be had, a lambda: a read.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return True
    import dis

    if not any(
        ins.opname.startswith("LOAD") and (ins.argval == name or (isinstance(ins.argval, tuple) and name in ins.argval))
        for ins in dis.get_instructions(code)
    ):
        if name in code.co_cellvars:  # read by a nested function only
            return True
        return False
    if depth > 4:
        return True
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return True
    body = tree.body[0] if tree.body else None
    if not isinstance(body, ast.FunctionDef) or body.name != fn.__name__:
        return True
    parents = {child: node for node in ast.walk(body) for child in ast.iter_child_nodes(node)}
    scope = getattr(fn, "__globals__", {})
    for node in ast.walk(body):
        if not (isinstance(node, ast.Name) and node.id == name):
            continue
        if not isinstance(node.ctx, ast.Load):
            return True  # rebound: later loads are some other value, not followed
        parent = parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in _METADATA_ATTRS:
            continue
        if isinstance(parent, ast.keyword):
            call, key = parents.get(parent), parent.arg
        elif isinstance(parent, ast.Call) and node is not parent.func:
            call, key = parent, None
        else:
            return True
        callee = scope.get(call.func.id) if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else None
        if not isinstance(callee, types.FunctionType):
            return True
        param = _parameter_of(call, node, key, callee.__code__)
        if param is None or _reads_param(callee, param, depth + 1):
            return True
    return False


def _parameter_of(call: Any, node: Any, key: str | None, code: types.CodeType) -> str | None:
    """The parameter of a function with ``code`` that the argument ``node`` of ``call`` binds to (None:
    through ``*args``/``**kwargs`` or after a starred argument)."""
    import ast

    named = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    if key is not None:
        return key if key in named else None
    for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            return None
        if arg is node:
            return code.co_varnames[i] if i < code.co_argcount else None
    return None


def _accumulate_grad(node: Tensor, g: Any, create_graph: bool, owned: set[int], Tensor: Any, wrap: Any) -> None:
    if g.__class__ is _row_grads().RowGrad:
        _row_grads().accumulate(node, g, wrap)  # a sparse lookup's rows: kept as rows while only lookups add
        return
    if create_graph:
        if not isinstance(g, Tensor):
            g = wrap(g)
        if node._grad is not None:  # the slot: reading .grad of a non-leaf (backward(inputs=[h])) warns
            node.grad = node._grad + g
            return
        if id(g.array) in owned or g.array.base is not None or not g.array.flags.writeable:
            g = g * 1  # a differentiable copy: two leaves' .grad (x + y) must not share one array
        owned.add(id(g.array))
        node.grad = g
        return
    if g.dtype != node.array.dtype:
        g = g.astype(node.array.dtype)
    if g.shape != node.array.shape:
        raise StateError(f"internal error: gradient of shape {tuple(g.shape)} for a tensor of shape {node.array.shape}")
    existing = node._grad  # the slot: reading .grad of a non-leaf (backward(inputs=[h])) warns
    if existing is None:
        # a view is copied (its base may be the caller's array or another .grad), except all of a
        # lent array (workspace.lend: an op's fresh output, ~8 us to copy at 256x256), counted by
        # its base, which every view of it shares
        base = g.base
        key = id(g) if base is None or not is_lent_whole(g) else id(base)
        if (base is not None and key == id(g)) or key in owned or not g.flags.writeable or not g.flags.c_contiguous:
            g = g.copy(order="C")
            key = id(g)
        owned.add(key)
        node._grad = wrap(g)  # the slot itself: shape and dtype were checked above (the setter's checks)
    elif existing.requires_grad or not existing.array.flags.writeable:
        node._grad = wrap(as_array(existing.array + g))  # a 0-d sum is a NumPy scalar
    else:
        np.add(existing.array, g, out=existing.array)


def _retain_grad(node: Tensor, g: Any, create_graph: bool, Tensor: Any, wrap: Any) -> None:
    """retain_grad() on a non-leaf, as torch's hook: the first gradient is cloned and later ones are added
    out of place, so a gradient kept from an earlier backward (``g = h.grad``, or by a hook) stays as it was.
    After a layout change (t_, squeeze_...) the tensor's gradient is its old history's (``_grad_of``: the
    tensor whose .grad it fills; None on the new history), in the old layout, as torch's hook stays there."""
    holder = getattr(node, "_grad_of", node)
    if holder is None:
        return
    existing = holder._grad
    if create_graph:
        if not isinstance(g, Tensor):
            g = wrap(g)
        holder._grad = _ops().clone(g) if existing is None else existing + g
        return
    if g.dtype != node.array.dtype:
        g = g.astype(node.array.dtype)
    holder._grad = wrap(g.copy(order="C") if existing is None else as_array(existing.array + g))


@functools.cache
def _row_grads() -> Any:
    """The row_grads module (it imports tensor.py, which imports this module: so not at the top)."""
    from . import row_grads

    return row_grads


@functools.cache
def _tensor_api() -> tuple[Any, Any]:
    """(Tensor, wrap_array), imported once: tensor.py imports this module, so not at the top."""
    from .tensor import Tensor, wrap_array

    return Tensor, wrap_array


def _root_ids(root_grads: Sequence[Any]) -> set[int]:
    """The ids of the arrays of ``root_grads`` (arrays or tensors) and of their bases, for
    _accumulate_grad's ``owned``."""
    ids = set()
    for g in root_grads:
        a = g.array if hasattr(g, "array") else g
        ids.add(id(a))
        base = getattr(a, "base", None)
        if base is not None:
            ids.add(id(base))
    return ids


# The gradients autograd.grad returned without create_graph=True (weakly held; one add per returned
# gradient, never per op): when one is differentiated again, the error can name the likely cause.
_plain_gradients: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()  # by id: == is elementwise


def _root_names(where: str, index: int) -> tuple[str, str]:
    """The argument and the output an error names: backward()'s gradient= and its output, autograd.grad()'s
    grad_outputs and outputs[index] (as torch's messages name grad_output[i] and output[i])."""
    return ("gradient", "the output") if where == "backward()" else ("grad_outputs", f"outputs[{index}]")


def _check_root_grad(output: Tensor, gradient: Any, where: str = "backward()", index: int = 0) -> Any:
    Tensor = _tensor_api()[0]
    if not output.requires_grad:
        what = "this tensor" if where == "backward()" else f"output {index}"
        if _plain_gradients.get(id(output)) is output:
            raise StateError(
                f"{where}: {what} does not require grad and has no graph: it is a gradient that an earlier "
                "autograd.grad() call computed without create_graph=True; pass create_graph=True to that call "
                "to differentiate its result again (a higher derivative)"
            )
        raise StateError(
            f"{where}: {what} does not require grad and has no graph (torch: element {index} of tensors does "
            "not require grad and does not have a grad_fn); did you forget requires_grad=True on a leaf, compute "
            "it under no_grad(), or take it from a gradient computed without create_graph=True?"
        )
    if gradient is None:
        if output.array.size != 1:
            arg, out_name = _root_names(where, index)
            raise StateError(
                f"{where}: {'gradient' if arg == 'gradient' else 'grad'} can be implicitly created only for scalar "
                f"outputs, but {out_name} has shape {tuple(output.shape)}; pass {arg}= with that shape, or reduce the "
                "output (e.g. .sum() or .mean()) first"
            )
        return namespace_of(output.array).ones(output.array.shape, output.array.dtype)
    g = like(gradient.array if isinstance(gradient, Tensor) else gradient, output.array)
    if g.shape != output.shape:
        arg, out_name = _root_names(where, index)
        given = arg if arg == "gradient" else f"{arg}[{index}]"
        raise StateError(f"{where}: {given} has shape {tuple(g.shape)} but {out_name} has shape {tuple(output.shape)}")
    if g.dtype.kind == "c" and output.array.dtype.kind != "c":  # the cast would drop the imaginary part
        arg, out_name = _root_names(where, index)
        given = arg if arg == "gradient" else f"{arg}[{index}]"
        raise DTypeError(
            f"{where}: {given} is complex ({g.dtype}) but {out_name} is real ({output.array.dtype}); for complex "
            "tensors the gradient and the output must have the same dtype (torch's rule): pass a real gradient"
        )
    # The caller's array itself where it is a plain one, as torch (no copy of a whole output-sized
    # array per backward): no rule writes into its g, and _run_backward counts it as owned, so a
    # leaf whose gradient it is gets a copy; a view, a read-only or a strided array is copied here.
    if g.dtype == output.array.dtype and g.flags.c_contiguous and g.flags.writeable and g.base is None:
        return g
    return g.astype(output.array.dtype)  # a copy (astype copies by default)


def _differentiable(gradient: Tensor, output: Tensor) -> Tensor:
    """``gradient`` as a new node of the graph, in ``output``'s dtype (already checked for shape)."""
    same = gradient if gradient.dtype == output.dtype else gradient.to(output.dtype)
    return same * 1


def backward(
    output: Tensor | Sequence[Tensor] | None = None,
    gradient: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
    *,
    tensors: Tensor | Sequence[Tensor] | None = None,
    grad_tensors: Any = None,
) -> None:
    """Accumulate the gradient of ``output`` into the ``.grad`` of the leaves it depends on; as
    ``torch.autograd.backward``, ``output`` may be a sequence of tensors, with a sequence of
    gradients (one per tensor, None for a scalar's 1); ``tensors=``/``grad_tensors=`` are PyTorch's
    keyword names for them."""
    Tensor, wrap_array = _tensor_api()
    if isinstance(inputs, (list, tuple)) and not inputs:  # torch's check: an empty list is a mistake, not "all"
        raise StateError(
            "`inputs` argument to `backward()` cannot be empty. Leave it out (None) to accumulate into every leaf"
        )
    if tensors is not None:
        if output is not None:
            raise ArgumentError("backward: pass the outputs once, positionally or as tensors=")
        output = tensors
    if grad_tensors is not None:
        if gradient is not None:
            raise ArgumentError("backward: pass the gradients once, as gradient or as grad_tensors=")
        gradient = grad_tensors
    if output is None:
        raise ArgumentError("backward: expected the tensors to differentiate (tensors=...)")
    if isinstance(output, (list, tuple)):
        grads = list(gradient) if isinstance(gradient, (list, tuple)) else [gradient] * len(output)
        if len(grads) != len(output):
            raise ArgumentError(f"backward: {len(output)} tensors but {len(grads)} gradients")
        if create_graph or len(output) != 1:
            pairs = [(o, _check_root_grad(o, gr)) for o, gr in zip(output, grads)]
            if not create_graph:
                roots, seeds = [o for o, _ in pairs], [gr for _, gr in pairs]
                if inputs is None:
                    _run_backward(roots, seeds, retain_graph, False, capture=None)
                    return
                captured = _run_backward(roots, seeds, retain_graph, False, capture=list(inputs))
                owned_: set[int] = _root_ids(seeds)
                for t in inputs:
                    if id(t) in captured:
                        _accumulate_grad(t, captured[id(t)], False, owned_, Tensor, wrap_array)
                return
            for o, gr in zip(output, grads):  # create_graph: one root at a time
                backward(o, gr, retain_graph=True, create_graph=True, inputs=inputs)
            return
        output, gradient = output[0], grads[0]
    root: Any = output
    g = _check_root_grad(root, gradient)
    if create_graph:
        g = (
            _differentiable(gradient, root)
            if isinstance(gradient, Tensor) and gradient.requires_grad
            else wrap_array(g)
        )
    if inputs is not None:
        captured = _run_backward([root], [g], retain_graph or create_graph, create_graph, capture=list(inputs))
        owned: set[int] = _root_ids([g])
        for t in inputs:
            if id(t) in captured:
                _accumulate_grad(t, captured[id(t)], create_graph, owned, Tensor, wrap_array)
        return
    _run_backward([root], [g], retain_graph or create_graph, create_graph, capture=None)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated into ``.grad``
    (``torch.autograd.grad``).

    ``grad_outputs`` weights each output (needed for a non-scalar one); ``create_graph=True`` records
    the gradient computation so it can be differentiated again; an input the outputs do not depend on
    is an error unless ``allow_unused=True`` (it gets ``None``) or ``materialize_grads=True`` (zeros).
    ``only_inputs`` is accepted and ignored (deprecated in PyTorch, always true). With
    ``is_grads_batched=True`` every grad_output has a leading batch dim and each result gets one too:
    the gradient for each slice (``grad(y, x, eye(n), is_grads_batched=True)`` gives the rows of a
    Jacobian); the slices are taken one after another. The function transform (``torch.func.grad``) is
    :func:`downslope.func.grad`.

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([1.0, 2.0], requires_grad=True)
        >>> ds.autograd.grad((x ** 3).sum(), x)
        (tensor([ 3., 12.]),)
    """
    tensor_type, wrap_array = _tensor_api()  # (not an import statement: torch.func calls this once per element)
    del only_inputs  # deprecated in torch and always true
    if is_grads_batched:
        return _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads)
    if allow_unused is None:
        allow_unused = materialize_grads
    outs = [outputs] if isinstance(outputs, tensor_type) else list(outputs)
    ins = [inputs] if isinstance(inputs, tensor_type) else list(inputs)
    if grad_outputs is None:
        gos: list[Any] = [None] * len(outs)
    elif isinstance(grad_outputs, tensor_type) or is_array(grad_outputs):
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ArgumentError(f"autograd.grad: got {len(outs)} outputs but {len(gos)} grad_outputs")
    for t in ins:
        if not isinstance(t, tensor_type) or not t.requires_grad:
            raise StateError("autograd.grad: every input must be a tensor with requires_grad=True")
    root_grads = [_check_root_grad(o, go, "autograd.grad()", i) for i, (o, go) in enumerate(zip(outs, gos))]
    if create_graph:
        # A grad_output that requires grad stays in the graph (as in torch): the result is then
        # differentiable in it too, which a Jacobian-vector product by double backward relies on.
        # (Multiplied by 1, a new node, so the walk never writes into the caller's tensor.)
        root_grads = [
            _differentiable(go, o) if isinstance(go, tensor_type) and go.requires_grad else wrap_array(g)
            for g, go, o in zip(root_grads, gos, outs)
        ]
    keep = create_graph if retain_graph is None else retain_graph
    captured = _run_backward(outs, root_grads, keep, create_graph, capture=ins, grad_call=True)
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = captured.get(id(t))
        if g is None:
            if not allow_unused:
                raise StateError(  # torch's words: which input, and the way out
                    f"The differentiated Tensor at index {i} appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
            result.append(wrap_array(np.zeros_like(t.array)) if materialize_grads else None)
        else:
            result.append(g if isinstance(g, tensor_type) else wrap_array(g.astype(t.array.dtype)))  # a copy
    if not create_graph:
        for r in result:
            if r is not None:
                _plain_gradients[id(r)] = r
    return tuple(result)


def _batched_grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any,
    retain_graph: bool | None,
    create_graph: bool,
    allow_unused: bool | None,
    materialize_grads: bool,
) -> tuple[Tensor | None, ...]:
    """:func:`grad` with ``is_grads_batched=True``: one backward pass per slice of the batched
    grad_outputs, the results stacked along a new leading dim (torch vmaps the pass; the values agree)."""
    from . import ops
    from .tensor import Tensor, wrap_array

    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        raise ArgumentError("autograd.grad: is_grads_batched=True needs grad_outputs with a leading batch dim")
    gos = [grad_outputs] if isinstance(grad_outputs, Tensor) or is_array(grad_outputs) else list(grad_outputs)
    if len(gos) != len(outs):
        raise ArgumentError(f"autograd.grad: got {len(outs)} outputs but {len(gos)} grad_outputs")
    gos = [go if isinstance(go, Tensor) else ops._lift(go) for go in gos]
    for go, o in zip(gos, outs):
        if go.ndim != o.ndim + 1 or tuple(go.shape[1:]) != tuple(o.shape):
            raise ShapeError(
                f"autograd.grad: with is_grads_batched=True each grad_output must be (batch, *output shape); "
                f"got {tuple(go.shape)} for an output of shape {tuple(o.shape)}"
            )
    sizes = {int(go.shape[0]) for go in gos}
    if len(sizes) != 1:
        raise ShapeError(f"autograd.grad: the grad_outputs' batch sizes differ: {sorted(sizes)}")
    (batch,) = sizes
    keep = create_graph if retain_graph is None else retain_graph
    per_slice = [
        grad(
            outs,
            ins,
            [go[b] for go in gos],
            keep or b < batch - 1,
            create_graph,
            True,
            allow_unused,
            False,
            materialize_grads,
        )
        for b in range(batch)
    ]
    if not per_slice:  # an empty batch: empty gradients, shaped (0, *input shape)
        return tuple(wrap_array(namespace_of(t.array).zeros((0, *t.shape), t.array.dtype)) for t in ins)
    stacked: list[Tensor | None] = []
    for i in range(len(ins)):
        column = [r[i] for r in per_slice]
        stacked.append(None if column[0] is None else ops.stack(column))
    return tuple(stacked)


def autograd_grad(*args: Any, **kwargs: Any) -> tuple[Tensor | None, ...]:
    """Deprecated alias of :func:`downslope.autograd.grad` (PyTorch's name for it), kept for one release.

    Example:
        >>> import warnings
        >>> import downslope as ds
        >>> x = ds.tensor([2.0], requires_grad=True)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     ds.autograd_grad((x * x).sum(), x)
        (tensor([4.]),)
    """
    warnings.warn(
        "ds.autograd_grad is deprecated and will be removed in the next release; "
        "use ds.autograd.grad(outputs, inputs), PyTorch's name",
        DeprecationWarning,
        stacklevel=2,
    )
    return grad(*args, **kwargs)


# ---------------------------------------------------------------------- custom functions
class FunctionCtx:
    """The ``ctx`` a custom :class:`Function` receives: it carries what forward leaves for backward.

    ``save_for_backward(*tensors)`` keeps tensors (checked against in-place changes when read back
    through ``saved_tensors``); ``needs_input_grad`` says, per forward argument, whether it wants a
    gradient; other attributes (``ctx.constant = ...``) may be set freely.
    """

    def __init__(self) -> None:
        self._saved: tuple[tuple[Any, int], ...] | None = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self._non_differentiable: set[int] = set()
        self._dirty: dict[int, Any] = {}  # inputs forward wrote in place (mark_dirty), by id
        self._reached: list[bool] = []  # which outputs a backward pass reached (Function.apply, _unpack_vjp)
        self.materialize_grads = True
        self._packed: tuple[Any, list[Any]] | None = None  # (unpack hook, packed values) under saved_tensors_hooks
        self._saved_forward: tuple[tuple[Any, int], ...] | None = None  # save_for_forward's: what jvp reads

    def save_for_backward(self, *tensors: Any) -> None:
        Tensor = _tensor_api()[0]
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise ArgumentTypeError(
                    f"save_for_backward can only save variables, but argument {i} is of type {type(t).__name__} "
                    "(save tensors here; keep other values as attributes of ctx)"
                )
        self._saved = tuple((t, getattr(t, "_version", 0)) for t in tensors)
        # under saved_tensors_hooks what is saved goes through the active hooks once forward is done
        # (Function.apply), as torch packs when it records the node: in the caller's grad mode, so a pack
        # hook that computes (a clone) keeps the saved values in the graph for double backward
        self._saved_hooks: tuple[Any, Any] | None = _mode.saved_hooks[-1] if _mode.saved_hooks else None

    def save_for_forward(self, *tensors: Any) -> None:
        """Keep tensors for the Function's ``jvp`` (forward-mode AD): there, ``saved_tensors`` gives them."""
        self._saved_forward = tuple((t, getattr(t, "_version", 0)) for t in tensors)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        saved = self._saved
        if saved is None:  # freed by a backward pass without retain_graph
            _released_vjp()
            return ()
        if self._packed is not None:  # saved_tensors_hooks keep what was saved: no version check (torch has none)
            unpack, packed = self._packed
            return tuple(None if p is None else unpack(p) for p in packed)
        out = []
        for i, (t, version) in enumerate(saved):
            if t is not None and getattr(t, "_version", 0) != version:
                raise StateError(
                    "one of the variables needed for gradient computation has been modified by an inplace operation: "
                    f"[{t.array.dtype} tensor of shape {tuple(t.array.shape)}], which is saved tensor {i} of a custom "
                    f"Function, is at version {t._version}; expected version {version} instead."
                )
            out.append(t)
        return tuple(out)

    @property
    def saved_variables(self) -> tuple[Any, ...]:
        """torch's deprecated name for :attr:`saved_tensors` (older Functions still use it), with its warning."""
        warnings.warn("'saved_variables' is deprecated; use 'saved_tensors'", DeprecationWarning, stacklevel=2)
        return self.saved_tensors

    def mark_non_differentiable(self, *outputs: Any) -> None:
        self._non_differentiable.update(id(o) for o in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)  # host: a Python flag

    def mark_dirty(self, *tensors: Any) -> None:
        """Say which inputs forward wrote in place; each must be returned as an output, and takes the
        Function's node as its history (the history it had before stays with the values it had)."""
        Tensor = _tensor_api()[0]
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise ArgumentTypeError(
                    f"mark_dirty: argument {i} is of type {type(t).__name__}; expected the input tensors forward "
                    "modified in place"
                )
            self._dirty[id(t)] = t


class Function:
    """A custom differentiable op, as ``torch.autograd.Function``: subclass it with static
    ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` (one gradient, or None, per forward
    argument), and call ``MyFunction.apply(*args)``. forward runs without recording; backward gets
    the output gradients as tensors. (``forward(*args)`` plus ``setup_context(ctx, inputs, output)``
    works too.) Under ``create_graph=True`` backward is recorded, so it can be differentiated again
    when it is written with tensor ops. Floating and complex outputs are differentiable, as in torch: a
    complex output's gradient follows torch's convention (the conjugate Wirtinger derivative, doubled),
    and a real argument gets the real part of the gradient backward returns for it.

    A ``vmap`` staticmethod (and ``generate_vmap_rule``) is accepted and not called: ``func.vmap`` here
    is a loop that applies the Function to one sample at a time, so ``forward`` runs per sample and
    the batched inputs a ``vmap`` rule would take never exist at the call. A rule that computes what
    ``forward`` computes per sample (its contract in torch) gives the same values either way; one that
    computes something else gives torch's values only under torch.

    Example:
        >>> import downslope as ds
        >>> class Cube(ds.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x ** 3
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         (x,) = ctx.saved_tensors
        ...         return grad * 3 * x ** 2
        >>> x = ds.tensor([1.0, 2.0], requires_grad=True)
        >>> Cube.apply(x).sum().backward()
        >>> x.grad
        tensor([ 3., 12.])
    """

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a custom Function must define a static forward(ctx, *args)")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a custom Function must define a static backward(ctx, *grad_outputs)")

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        raise NotImplementedError

    # torch also offers vjp as the name of backward
    vjp = backward

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise StateError(
            f"{type(self).__name__}: custom Functions are not instantiated; call {type(self).__name__}.apply(...)"
        )

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        Tensor, wrap_array = _tensor_api()
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        separate_setup = cls.setup_context is not Function.setup_context
        with no_grad():
            if separate_setup:
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, outputs)
            else:
                outputs = cls.forward(ctx, *args, **kwargs)
        if not (_mode.enabled and any(ctx.needs_input_grad)):
            return outputs
        single = isinstance(outputs, Tensor)
        if not single and not isinstance(outputs, tuple):
            return outputs  # as torch: only a tensor or a tuple's tensors are outputs; a dict, list or number passes untracked
        outs = [outputs] if single else list(outputs)
        inputs = {id(a) for a in args if isinstance(a, Tensor)}
        dirty = _dirty_inputs(cls.__name__, ctx, args, outs)
        for i, o in enumerate(outs):  # an input handed back must not have its own history overwritten
            if isinstance(o, Tensor) and id(o) in inputs and id(o) not in dirty:
                outs[i] = wrap_array(o.array)
        differentiable = [
            i
            for i, o in enumerate(outs)
            if isinstance(o, Tensor) and o.array.dtype.kind in "fc" and id(o) not in ctx._non_differentiable
            and id(outputs if single else o) not in ctx._non_differentiable
        ]  # fmt: skip
        positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        # a dirty input's history before the write moves to a stand-in (as an in-place op's does), which
        # the node takes as its parent; the input itself takes the node below (_adopt_dirty)
        priors = {key: _prior_history(t) for key, t in dirty.items()}
        parents = tuple(priors.get(id(args[i]), args[i]) for i in positions)
        slots = [(o.shape, o.dtype, i in differentiable) if isinstance(o, Tensor) else None for i, o in enumerate(outs)]
        # which outputs a backward pass reached (set by _unpack_vjp): the others get None, not zeros,
        # under ctx.set_materialize_grads(False)
        reached = ctx._reached = [False] * len(outs)
        info = (cls, ctx, positions, len(args), slots)
        if differentiable and _COMPLEX_KIND in {outs[i].array.dtype.kind for i in differentiable}:
            _register_complex_rules()
        if len(differentiable) == 1 and len(outs) == 1:
            _adopt(outs[0], parents, _function_vjp, info)
        elif differentiable:
            arrays = [outs[i].array.reshape(-1) for i in differentiable]
            joint = _make_node(np.concatenate(arrays).astype(np.result_type(*arrays)), parents, _function_vjp, info)
            offset = 0
            for i, a in zip(differentiable, arrays):
                _adopt(outs[i], (joint,), _unpack_vjp, (offset, a.size, joint.array.size, reached, i))
                offset += a.size
        for key, prior in priors.items():
            if getattr(dirty[key], "_view_of", False) is not False:
                _write_dirty_view(cls.__name__, dirty[key], prior, ctx)
            else:
                _adopt_dirty(dirty[key], prior)
        if differentiable:
            from .tensor import note_function_views

            note_function_views([outs[i] for i in differentiable], parents, cls.__name__)
        if getattr(ctx, "_saved_hooks", None) is not None:
            _pack_ctx(ctx)
        if differentiable and forward_ad.active:  # forward AD is on: the Function's jvp runs now, as in torch
            forward_ad.function_applied(joint if len(outs) > 1 or len(differentiable) > 1 else outs[0])
        return outs[0] if single else type(outputs)(outs) if isinstance(outputs, tuple) else outs


def _dirty_inputs(name: str, ctx: FunctionCtx, args: tuple[Any, ...], outs: list[Any]) -> dict[int, Any]:
    """The inputs ctx.mark_dirty named, checked as torch checks them: each is an input and an output, and
    none is a leaf that requires grad (its values are what the gradient is for)."""
    dirty = ctx._dirty
    if not dirty:
        return dirty
    returned = {id(o) for o in outs}
    argument = {id(a) for a in args}
    if len(outs) > 1 and any(getattr(t, "_view_of", False) is not False for t in dirty.values()):
        raise StateError(  # torch's words
            f"{name}: If your Function modifies inplace an input that is a view of another Tensor, your Function "
            "cannot return more than one Tensor. This is not supported by the current autograd engine. You should "
            "either make sure the input is not a view (using .clone() for example) or make your Function only "
            "return one Tensor (potentially splitting it into two Functions: one doing the inplace that returns "
            "a single Tensor and a second one that does the other operations). You can ask on the forum "
            "https://discuss.pytorch.org/ if you need help to do this change."
        )
    for t in dirty.values():
        if id(t) not in argument or id(t) not in returned:
            raise StateError(
                f"{name}: some elements marked as dirty during the forward method were not returned as output: "
                "mark_dirty takes the inputs forward modified in place, and forward must return them"
            )
        if t.requires_grad and not t._parents:
            raise StateError(
                f"{name}: a leaf Variable that requires grad is being used in an in-place operation (mark_dirty): "
                "pass a clone (x.clone()) or write into a tensor that does not require grad"
            )
    return dirty


def _write_dirty_view(name: str, t: Any, prior: Any, ctx: FunctionCtx) -> None:
    """A view ``t`` that a Function wrote in place (mark_dirty), now the Function's output: as torch's
    CopySlices, its base takes the new values as a recorded write (the base's readers after it see the
    Function's gradient), and ``t`` becomes a view of the new base, by the machinery of the built-in
    in-place ops on views (forward already wrote the memory; the write puts the same values back, and what
    ctx saved from that memory keeps its version, as torch's CopySlices bumps none)."""
    from .tensor import _ghost, _inplace_on_plain_view, _inplace_on_view, _is_view_in_graph

    result = _ghost(t, False)  # the Function's output (its history) in a stand-in
    before = t._version
    # t back to its history as a view (the Function's node reads it through ``prior``, its own stand-in)
    t._requires_grad = prior._requires_grad
    t._parents, t._vjp, t._saved, t._needs, t._seq = prior._parents, prior._vjp, prior._saved, prior._needs, prior._seq
    if _is_view_in_graph(t):
        _inplace_on_view(t, name, lambda _: result, False)
    elif _inplace_on_plain_view(t, name, lambda _: result, False) is None:
        raise StateError(
            f"{name}: mark_dirty on a view whose place in the tensor it was taken from cannot be told; pass the "
            "base tensor or a clone of the view"
        )
    if ctx._saved:
        after = t._version
        ctx._saved = tuple((s, after if s is not None and s._vc is t._vc and v == before else v) for s, v in ctx._saved)


def _prior_history(t: Any) -> Any:
    """A stand-in that keeps ``t``'s history before the Function wrote it (sharing its storage)."""
    from .tensor import _ghost

    prior = _ghost(t, False)
    if _inplace_clock.hooks and getattr(t, "_hooks", None) is not None:
        # as for the built-in in-place ops: hooks registered before the write stay with the history they
        # were registered on (they see the gradient of the values before it)
        prior._hooks = t._hooks
        del t._hooks
    return prior


def _adopt_dirty(t: Any, prior: Any) -> None:
    """Make ``prior`` the history ``t`` had before the write, so ops that used ``t`` before the Function
    route their gradients through it (tensor._adopt does this for the built-in in-place ops)."""
    from .tensor import _op_counter

    earlier = getattr(t, "_prior", None)
    if earlier is not None:
        prior._prior = earlier
    t._prior = prior
    prior._next = t
    if t._seq == prior._seq:  # t was no recorded output (marked non-differentiable): its values are a constant
        t._requires_grad = False
        t._parents, t._vjp, t._saved, t._needs = (), None, None, None
        t._seq = next(_op_counter)
    _inplace_clock.rebased = max(_inplace_clock.rebased, t._seq)


def _pack_ctx(ctx: FunctionCtx) -> None:
    """Run the pack hook of saved_tensors_hooks on what ctx saved (after forward, in the caller's grad mode)."""
    pack, unpack = ctx._saved_hooks  # type: ignore[misc]
    previous = _mode.saved_hooks
    _mode.saved_hooks = []  # ops inside a hook are not themselves packed (as for the built-in ops)
    try:
        ctx._packed = (unpack, [None if t is None else pack(t) for t, _ in ctx._saved or ()])
    finally:
        _mode.saved_hooks = previous


def _make_node(arr: Any, parents: tuple[Any, ...], rule: Any, saved: Any) -> Any:
    from .tensor import record_op

    return record_op(arr, parents, rule, saved)


def _adopt(t: Any, parents: tuple[Any, ...], rule: Any, saved: Any) -> None:
    """Make the tensor that forward returned the recorded output (so tensors saved in ctx are it)."""
    node = _make_node(t.array, parents, rule, saved)
    if not node.requires_grad:
        return
    t.requires_grad = True
    t._parents, t._vjp, t._saved, t._needs, t._seq = node._parents, node._vjp, node._saved, node._needs, node._seq


def _function_vjp(g, y, args, saved, needs, xp):
    cls, ctx, positions, n_args, slots = saved
    reached = ctx._reached
    Tensor, wrap_array = _tensor_api()
    grads_out: list[Any] = []
    offset = 0
    for j, slot in enumerate(slots):  # one gradient per output; zeros (or None) for those that have none
        if slot is None:
            grads_out.append(None)
        elif not slot[2]:
            zeros = namespace_of(xp.data(g)).zeros(slot[0], slot[1])
            grads_out.append(wrap_array(zeros) if ctx.materialize_grads else None)
        elif len(slots) == 1:
            grads_out.append(g)
        else:
            size = int(np.prod(slot[0]))
            unused = not reached[j] and not ctx.materialize_grads  # no gradient reached it: None, as in torch
            part = None if unused else xp.reshape(g[offset : offset + size], slot[0])
            if part is not None and slot[1].kind != "c" and xp.data(g).dtype.kind == "c":
                part = _real_of(part)  # a real output beside complex ones: its gradient is real, as torch's
            grads_out.append(part)
            offset += size
    reached[:] = [False] * len(reached)  # the next backward pass (retain_graph) finds its own
    grads_out = [x if x is None or isinstance(x, Tensor) else wrap_array(x) for x in grads_out]
    result = _backward_of(cls)(ctx, *grads_out)
    grads = result if isinstance(result, (tuple, list)) else (result,)
    if len(grads) > n_args and all(extra is None for extra in grads[n_args:]):
        grads = grads[:n_args]  # torch accepts trailing Nones beyond the forward's arguments
    if len(grads) != n_args:
        raise InvalidValueError(
            f"{cls.__name__}.backward returned {len(grads)} gradient(s); expected one per forward argument "
            f"({n_args}), with None for arguments that need none"
        )
    for pos in range(n_args):
        if grads[pos] is not None and pos not in positions:
            raise StateError(
                f"function {cls.__name__}Backward returned a gradient different than None at position {pos + 1}, "
                "but the corresponding forward input was not a Variable (a tensor): return None for the "
                f"non-tensor argument {pos + 1} of {cls.__name__}.forward"
            )
    out: list[Any] = []
    for k, pos in enumerate(positions):
        gr = grads[pos]
        if gr is None or not needs[k]:
            out.append(None)
            continue
        parent = args[k]
        if not isinstance(gr, Tensor):
            gr = wrap_array(like(gr, xp.data(g)))
        if tuple(gr.shape) != tuple(parent.shape) and _expands_to(tuple(parent.shape), tuple(gr.shape)):
            # torch sums a gradient of a shape the argument broadcasts to back to the argument's shape (a
            # backward may return ones(1) for a 0-d argument)
            gr = TensorRules.sum_to(gr, tuple(parent.shape))
        if tuple(gr.shape) != tuple(parent.shape):
            # also the RuntimeError torch raises here ("returned an invalid gradient"), and an ArgumentError
            # (a ValueError) as before, as for a wrong number of gradients above
            raise InvalidValueError(
                f"{cls.__name__}.backward: the gradient for argument {pos} has shape {tuple(gr.shape)}, but that "
                f"argument has shape {tuple(parent.shape)} (or a shape that sums to it by broadcasting)"
            )
        if gr.dtype.kind == "c" and parent.dtype.kind != "c":
            gr = _real_of(gr)  # a real argument gets the real part (torch's validate_outputs casts to its dtype)
        if xp.differentiable:
            out.append(gr)
        else:
            out.append(gr.array.astype(parent.dtype, copy=False))
    return tuple(out)


_COMPLEX_KIND = "c"


def _real_of(x: Any) -> Any:
    """The real part of a gradient (a Tensor, recorded under create_graph, or an array)."""
    Tensor, _ = _tensor_api()
    return x.real if isinstance(x, Tensor) else np.real(x)  # np.real: device arrays dispatch it


def _register_complex_rules() -> None:
    """Let record_op record a custom Function's complex outputs: its backward receives and returns
    torch's gradients (the conjugate Wirtinger convention), so the rules hold as they are. Registered
    at the first complex output, since tensor.py (which holds the table) imports this module."""
    from .tensor import COMPLEX_RULES

    COMPLEX_RULES.setdefault(_function_vjp, _function_vjp)
    COMPLEX_RULES.setdefault(_unpack_vjp, _unpack_vjp)


def _expands_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` (torch's is_expandable_to)."""
    if len(shape) > len(target):
        return False
    return all(s == t or s == 1 for s, t in zip(shape[::-1], target[::-1]))


def _backward_of(cls: type[Function]) -> Any:
    """The Function's backward: ``vjp`` where only that is defined (torch's alias), never both."""
    backward, vjp = cls.backward, cls.vjp
    if vjp is Function.vjp or vjp is backward:
        return backward
    if backward is not Function.backward:
        raise StateError(
            f"{cls.__name__}: implementing both 'backward' and 'vjp' for a custom Function is not allowed; "
            "define one of them"
        )
    return vjp


def _unpack_vjp(g, y, args, saved, needs, xp):
    offset, size, total, reached, i = saved
    reached[i] = True
    return (xp.scatter((total,), slice(offset, offset + size), False, xp.reshape(g, (size,))),)


# Custom Functions read what ctx saved (checked by saved_tensors), never the raw inputs or outputs.
_function_vjp.reads_inputs = False  # type: ignore[attr-defined]
_function_vjp.reads_output = False  # type: ignore[attr-defined]
_unpack_vjp.reads_inputs = False  # type: ignore[attr-defined]


def Variable(data: Any, requires_grad: bool = False, volatile: bool = False) -> Any:  # noqa: N802
    """Old PyTorch's ``Variable(tensor, requires_grad=...)``: today simply a tensor (shared, not copied)."""
    Tensor, wrap_array = _tensor_api()
    if not isinstance(data, Tensor) and not is_array(data):
        data = np.asarray(data)  # host: the caller's data (lists, numbers) is host data
    t = data if isinstance(data, Tensor) else wrap_array(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def once_differentiable(backward: Any) -> Any:
    """Mark a custom :class:`Function`'s ``backward`` as differentiable only once, as
    ``torch.autograd.function.once_differentiable``: it runs without recording (so it may use array
    code freely), and differentiating its result again (``create_graph=True``) raises.

    Example:
        >>> import downslope as ds
        >>> from downslope.autograd.function import Function, once_differentiable
        >>> class Square(Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x * x
        ...     @staticmethod
        ...     @once_differentiable
        ...     def backward(ctx, g):
        ...         (x,) = ctx.saved_tensors
        ...         return 2 * x * g
        >>> x = ds.tensor([3.0], requires_grad=True)
        >>> Square.apply(x).sum().backward(); x.grad
        tensor([6.])
    """

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grad_outputs: Any) -> Any:
        recording = _mode.enabled
        with no_grad():
            result = backward(ctx, *grad_outputs)
        Tensor, _ = _tensor_api()
        # as PyTorch: only gradients that themselves require grad make the result differentiable
        parents = tuple(g for g in grad_outputs if isinstance(g, Tensor) and g.requires_grad)
        if not (recording and parents):
            return result
        single = not isinstance(result, tuple)
        marked = tuple(
            _make_node(r.array, parents, _once_vjp, backward.__qualname__) if isinstance(r, Tensor) else r
            for r in ((result,) if single else result)
        )
        return marked[0] if single else marked

    return wrapper


class _TwiceDifferentiatedError(StateError):
    """A backward pass reached a @once_differentiable backward's result (gradgradcheck tells it apart)."""


def _once_vjp(g, y, args, saved, needs, xp):
    raise _TwiceDifferentiatedError(
        f"trying to differentiate twice a function that was marked with @once_differentiable ({saved}); "
        "write its backward with tensor ops and drop the decorator to allow it"
    )


_once_vjp.reads_inputs = False  # type: ignore[attr-defined]
_once_vjp.reads_output = False  # type: ignore[attr-defined]


class InplaceFunction(Function):
    """``torch.autograd.function.InplaceFunction``: :class:`Function` under the name PyTorch keeps for
    backward compatibility; a subclass defines static ``forward``/``backward`` and is called through
    ``apply``, as any Function.

    Example:
        >>> import downslope as ds
        >>> from downslope.autograd.function import InplaceFunction
        >>> class Twice(InplaceFunction):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         return x * 2
        ...     @staticmethod
        ...     def backward(ctx, g):
        ...         return g * 2
        >>> x = ds.ones(2, requires_grad=True)
        >>> Twice.apply(x).sum().backward()
        >>> x.grad
        tensor([2., 2.])
    """


# ``torch.autograd.function``: the module PyTorch code imports Function and once_differentiable from.
function = types.ModuleType(f"{__name__}.function", "Custom Functions (torch.autograd.function).")
function.Function = Function  # type: ignore[attr-defined]
function.FunctionCtx = FunctionCtx  # type: ignore[attr-defined]
function.InplaceFunction = InplaceFunction  # type: ignore[attr-defined]
function.once_differentiable = once_differentiable  # type: ignore[attr-defined]
function.__all__ = ["Function", "FunctionCtx", "InplaceFunction", "once_differentiable"]  # type: ignore[attr-defined]
sys.modules[function.__name__] = function

# ``torch.autograd.graph``: nodes (grad_fn) and saved-tensor hooks; importable as downslope.autograd.graph.
from . import autograd_graph as graph  # noqa: E402
from . import forward_ad as forward_ad  # noqa: E402  (torch.autograd.forward_ad; it registers itself under that name)

sys.modules[f"{__name__}.graph"] = graph


# ---------------------------------------------------------------------- a batch of cotangents in one walk
class _NotBatchable(Exception):
    """A rule of the walk has no batched form here: the caller takes the cotangents one at a time."""


def _batched_sum_axes(batched: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of a ``batched`` (batch, *broadcast shape) gradient to sum for (batch, *shape): the leading
    dims broadcasting added and the dims it stretched from 1, never the batch dim."""
    lead = len(batched) - 1 - len(shape)
    if lead < 0:
        raise _NotBatchable
    return tuple(range(1, 1 + lead)) + tuple(
        1 + lead + i for i, s in enumerate(shape) if s == 1 and batched[1 + lead + i] != 1
    )


def _batched_sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """``g`` (batch, *broadcast shape) summed to (batch, *shape): the batch dim is kept."""
    if tuple(g.shape[1:]) == shape:
        return g
    axes = _batched_sum_axes(tuple(g.shape), shape)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape((g.shape[0], *shape))


class _BatchedArrayRules(ArrayRules):
    """The array namespace of a walk whose gradients carry a leading batch dim: the shape helpers the
    rules call keep that dim; the others, which would mistake it for a dim of the tensor, refuse."""

    @staticmethod
    def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
        return _batched_sum_to(g, tuple(shape))

    @staticmethod
    def broadcast_to(g: Any, shape: tuple[int, ...]) -> Any:  # type: ignore[override]
        shape = tuple(shape)
        if tuple(g.shape[1:]) == shape:
            return g  # (the sum_to nodes a create_graph pass records where nothing was broadcast)
        if g.ndim - 1 > len(shape):
            raise _NotBatchable
        g = g.reshape((g.shape[0],) + (1,) * (len(shape) - (g.ndim - 1)) + tuple(g.shape[1:]))
        return namespace_of(g).broadcast_to(g, (g.shape[0], *shape))

    @staticmethod
    def reshape(g: Any, shape: tuple[int, ...]) -> Any:  # type: ignore[override]
        return g.reshape((g.shape[0], *tuple(shape)))


def _refuse(*_: Any, **__: Any) -> Any:
    raise _NotBatchable


for _helper in ("permute", "swap_last", "expand_dims", "scatter", "astype", "where", "cumsum", "einsum"):
    setattr(_BatchedArrayRules, _helper, staticmethod(_refuse))


class _BatchedElementwiseRules(_BatchedArrayRules):
    """The namespace of the rules whose every where/astype call combines g (batch, *output shape)
    elementwise with arrays of at most the output's dims (masks, inputs, the output): broadcasting
    aligns those on the right, so the batch dim in front passes through as one more dim."""

    where = staticmethod(np.where)
    astype = staticmethod(lambda x, dtype: x.astype(dtype, copy=False))


class _BatchedTensorRules(TensorRules):
    """TensorRules for a recorded walk (create_graph) whose gradients carry a leading batch dim: the
    shape helpers keep that dim, as _BatchedArrayRules's do, through recorded ops; the others refuse."""

    @staticmethod
    def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
        shape = tuple(shape)
        if tuple(g.shape[1:]) == shape:
            return g
        axes = _batched_sum_axes(tuple(g.shape), shape)
        if axes:
            g = _ops().sum(g, axes, keepdim=True)
        return _ops().reshape(g, (g.shape[0], *shape))

    @staticmethod
    def broadcast_to(g: Any, shape: tuple[int, ...]) -> Any:
        shape = tuple(shape)
        if tuple(g.shape[1:]) == shape:
            return g
        if g.ndim - 1 > len(shape):
            raise _NotBatchable
        g = _ops().reshape(g, (g.shape[0],) + (1,) * (len(shape) - (g.ndim - 1)) + tuple(g.shape[1:]))
        return _ops().broadcast_to(g, (g.shape[0], *shape))

    @staticmethod
    def reshape(g: Any, shape: tuple[int, ...]) -> Any:
        return _ops().reshape(g, (g.shape[0], *tuple(shape)))


for _helper in ("permute", "swap_last", "expand_dims", "scatter", "astype", "where", "cumsum", "einsum"):
    setattr(_BatchedTensorRules, _helper, staticmethod(_refuse))


class _BatchedElementwiseTensorRules(_BatchedTensorRules):
    """_BatchedElementwiseRules's recorded counterpart: where and astype elementwise."""

    where = staticmethod(TensorRules.where)
    astype = staticmethod(TensorRules.astype)


def _batched_getitem(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    index, advanced = saved
    items = index if type(index) is tuple else (index,)
    if advanced or any(not (type(i) is int or type(i) is slice or i is Ellipsis or i is None) for i in items):
        raise _NotBatchable
    shape = args[0].shape
    out = namespace_of(g).zeros((g.shape[0], *shape), g.dtype)
    out[(slice(None), *items)] = g
    return (out,)


def _batched_matmul(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """matmul's rule for a batch of cotangents: vectors promoted to matrices, as matmul does."""
    a, b = args
    if a.ndim == 0 or b.ndim == 0:
        raise _NotBatchable
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = g2[..., None, :] if b.ndim > 1 else g2[..., None]
    if b.ndim == 1:
        g2 = g2[..., None]
    ga = gb = None
    if needs[0]:
        ga = _batched_sum_to(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape((g.shape[0], *a.shape))
    if needs[1]:
        gb = _batched_sum_to(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape((g.shape[0], *b.shape))
    return ga, gb


def _batched_linear(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """nn.functional.linear's rule (x (n, in), w (out, in), b (out)) for a batch of cotangents (batch, n, out)."""
    x, w = args[0], args[1]
    if x.ndim != 2 or w.ndim != 2 or g.ndim != 3:
        raise _NotBatchable
    gx = g @ w if needs[0] else None
    gw = g.swapaxes(-1, -2) @ x if needs[1] else None
    if len(args) == 2:
        return gx, gw
    return gx, gw, (g.sum(axis=1) if needs[2] else None)


def _batched_relu(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """relu's rule (torch's threshold_backward on the output: 0 where it is <= 0) for a batch of cotangents."""
    return (namespace_of(g).where(node.array <= 0, 0.0, g),)


def _output_of(g: Any, node: Tensor) -> Any:
    """The node's output as a rule of this walk reads it: the tensor in a recorded walk, else its array."""
    return node.array if is_array(g) else node


def _batched_softmax(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """softmax's rule, y * (g - sum(g * y)), over the same dims of each cotangent (one further on)."""
    y = _output_of(g, node)
    dot = (g * y).sum(axis=tuple(a + 1 for a in saved), keepdims=True)
    return ((g - dot) * y,)


def _batched_log_softmax(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """log_softmax's rule, g - exp(y) * sum(g), over the same dims of each cotangent (one further on)."""
    y = _output_of(g, node)
    e = y.exp() if y is node else namespace_of(g).exp(y)
    return (g - e * g.sum(axis=tuple(a + 1 for a in saved), keepdims=True),)


def _batched_kept(g: Any, kept: tuple[int, ...], keep: bool) -> Any:
    """A reduction's batch of cotangents with its reduced dims back as 1s (the batch dim kept)."""
    return g if keep else g.reshape((g.shape[0], *kept))


def _batched_vector_norm(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """vector_norm's rule with the cotangents' and the norm's reduced dims put back first (the rule's
    own reshape would take the norm for a batch): every step after that is elementwise."""
    from .ops import reductions

    kept, keep, axes, p = saved
    y = node.array if keep else node.array.reshape(kept)
    return reductions._vector_norm_vjp(
        _batched_kept(g, kept, keep), y, args, (kept, True, axes, p), needs, _BatchedElementwiseRules
    )


def _batched_logsumexp(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """logsumexp's rule, g * exp(x - y), with the reduced dims put back first."""
    kept, keep = saved
    return (_batched_kept(g, kept, keep) * namespace_of(g).exp(args[0] - node.array.reshape(kept)),)


def _batched_permute(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """permute's rule (the inverse permutation) with the batch dim left in front."""
    order = (0, *(a + 1 for a in saved))
    return (g.transpose(order) if is_array(g) else g.permute(order),)


def _batched_stack(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """stack's rule: each input's slice along the stacked dim (one further on)."""
    lead = (slice(None),) * (saved + 1)
    return tuple(g[lead + (i,)] if needs[i] else None for i in range(len(args)))


def _batched_concatenate(g: Any, node: Tensor, args: Any, saved: Any, needs: Any) -> Any:
    """concatenate's rule: each input's range along the joined dim (one further on)."""
    a, bounds = saved
    lead = (slice(None),) * (a + 1)
    return tuple(g[lead + (slice(bounds[i], bounds[i + 1]),)] if needs[i] else None for i in range(len(args)))


def _batched_rules() -> dict[Any, Any]:
    """Rule -> its batched form: the rules that only compute elementwise and reach shapes through the
    namespace's sum_to / broadcast_to / reshape run as they are; getitem and matmul have their own."""
    if not _BATCHED:
        from .ops import arithmetic, indexing, linalg, pointwise, reductions, shape
        from .tensor import _rsub_vjp

        def plain(rule: Any, xp: Any = _BatchedArrayRules) -> Any:
            return lambda g, node, args, saved, needs: rule(g, node.array, args, saved, needs, xp)

        for rule in (
            arithmetic._add_vjp,
            arithmetic._sub_vjp,
            arithmetic._mul_vjp,
            arithmetic._neg_vjp,
            _rsub_vjp,
            shape._sum_to_vjp,
            shape._broadcast_to_vjp,
            shape._reshape_vjp,
            pointwise._tanh_vjp,
            # g times a function of the input or output, elementwise (the output's shape throughout)
            arithmetic._div_vjp,
            pointwise._clone_vjp,
            pointwise._exp_vjp,
            pointwise._expm1_vjp,
            pointwise._log_vjp,
            pointwise._log1p_vjp,
            pointwise._sqrt_vjp,
            pointwise._rsqrt_vjp,
            pointwise._sin_vjp,
            pointwise._cos_vjp,
            pointwise._sigmoid_vjp,
            pointwise._abs_vjp,
            # the reduced dims back through the namespace's reshape and broadcast_to, which keep the batch dim
            reductions._sum_vjp,
            reductions._mean_vjp,
        ):
            _BATCHED[rule] = plain(rule)
        times_number = getattr(arithmetic, "_times_number_vjp", None)  # g times a Python number (add's alpha)
        if times_number is not None:
            _BATCHED[times_number] = plain(times_number)
        for rule in (
            # where/astype only between g and masks or inputs of the output's shape (see _BatchedElementwiseRules)
            arithmetic._pow_vjp,
            arithmetic._maximum_vjp,
            arithmetic._minimum_vjp,
            pointwise._where_vjp,
            pointwise._astype_vjp,
        ):
            _BATCHED[rule] = plain(rule, _BatchedElementwiseRules)
        _BATCHED[indexing._getitem_vjp] = _batched_getitem
        _BATCHED[linalg._matmul_vjp] = _batched_matmul
        _BATCHED[pointwise._relu_vjp] = _batched_relu
        _BATCHED[reductions._softmax_vjp] = _batched_softmax
        _BATCHED[reductions._log_softmax_vjp] = _batched_log_softmax
        _BATCHED[reductions._vector_norm_vjp] = _batched_vector_norm
        _BATCHED[reductions._logsumexp_vjp] = _batched_logsumexp
        _BATCHED[shape._permute_vjp] = _batched_permute
        _BATCHED[shape._stack_vjp] = _batched_stack
        _BATCHED[shape._concatenate_vjp] = _batched_concatenate
    return _BATCHED


def _recorded_batched_rules() -> dict[Any, Any]:
    """Rule -> its batched form in a recorded walk (create_graph): each rule's own differentiable form
    where it combines g with its inputs and output elementwise (those tensors broadcast against the
    batch dim as arrays do) and reaches shapes through the namespace; the custom forms that are
    written in tensor methods (matmul, linear, softmax, permute, stack, concatenate)."""
    if not _RECORDED:
        from .ops import arithmetic, linalg, pointwise, reductions, shape
        from .tensor import _rsub_vjp

        def plain(rule: Any, xp: Any = _BatchedTensorRules) -> Any:
            return lambda g, node, args, saved, needs: rule(g, node, args, saved, needs, xp)

        for rule in (
            arithmetic._add_vjp,
            arithmetic._sub_vjp,
            arithmetic._mul_vjp,
            arithmetic._neg_vjp,
            arithmetic._div_vjp,
            _rsub_vjp,
            shape._sum_to_vjp,
            shape._broadcast_to_vjp,
            shape._reshape_vjp,
            pointwise._clone_vjp,
            pointwise._tanh_vjp,
            pointwise._exp_vjp,
            pointwise._expm1_vjp,
            pointwise._log_vjp,
            pointwise._log1p_vjp,
            pointwise._sqrt_vjp,
            pointwise._rsqrt_vjp,
            pointwise._sin_vjp,
            pointwise._cos_vjp,
            pointwise._sigmoid_vjp,
            reductions._sum_vjp,
            reductions._mean_vjp,
        ):
            _RECORDED[rule] = plain(rule)
        times_number = getattr(arithmetic, "_times_number_vjp", None)
        if times_number is not None:
            _RECORDED[times_number] = plain(times_number)
        for rule in (arithmetic._pow_vjp, arithmetic._maximum_vjp, arithmetic._minimum_vjp, pointwise._where_vjp):
            _RECORDED[rule] = plain(rule, _BatchedElementwiseTensorRules)
        _RECORDED[linalg._matmul_vjp] = _batched_matmul
        _RECORDED[reductions._softmax_vjp] = _batched_softmax
        _RECORDED[reductions._log_softmax_vjp] = _batched_log_softmax
        _RECORDED[shape._permute_vjp] = _batched_permute
        _RECORDED[shape._stack_vjp] = _batched_stack
        _RECORDED[shape._concatenate_vjp] = _batched_concatenate
    return _RECORDED


def _leads_on(node: Tensor, leads: set[int]) -> bool:
    """Whether an input of the walk lies behind ``node`` (itself an input)."""
    return node._vjp is not None and any(id(p) in leads for p in node._parents)


_BATCHED: dict[Any, Any] = {}
_RECORDED: dict[Any, Any] = {}
_BATCH_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def batched_cotangent_grads(
    root: Tensor, cotangents: Any, inputs: Sequence[Tensor], create_graph: bool = False
) -> list[Any] | None:
    """The gradients of ``root`` for a batch of cotangents (an array (batch, *root.shape)) with respect
    to each of ``inputs``, as arrays (batch, *input shape) (zeros where unused), in one walk of the graph
    with the batch carried along; None when the walk cannot be batched (a rule without a batched form,
    hooks, in-place history, a freed node, a dtype other than float32/float64), for the caller to take
    the cotangents one at a time. Records nothing and frees nothing (as retain_graph=True).

    With ``create_graph`` the walk is recorded, as autograd.grad's with create_graph=True: the results
    are tensors, differentiable in whatever the graph depends on (fewer rules have a recorded form)."""
    if _anomaly[0] or not root.requires_grad:
        return None
    rules = _recorded_batched_rules() if create_graph else _batched_rules()
    capture_ids = {id(t) for t in inputs}
    order = _topological_order([root], _capture_floor(inputs))
    leads = _leading_to(order, capture_ids)
    written = max(_inplace_clock.last, _inplace_clock.rebased)  # the latest in-place write
    for node in order:
        if node._seq <= written and node._vjp is not None:
            return None  # an in-place write since: the one-at-a-time walk checks versions and histories
        if node._vjp is _released_vjp:
            return None  # freed by an earlier pass: the one-at-a-time walk raises torch's error
        if id(node) not in leads:
            continue
        if getattr(node, "_hooks", None) or getattr(node, "_post_hooks", None) or getattr(node, "_fn", None):
            return None  # hooks, grad_fn state or packed saved values: the one-at-a-time walk runs them
        if id(node) in capture_ids and not _leads_on(node, leads):
            continue
        vjp = node._vjp
        if vjp not in rules and getattr(vjp, "__qualname__", "") == "_linear_vjp":
            # nn.functional.linear's rule, known by name: the core does not import nn (the arrows go one way)
            if getattr(vjp, "__module__", "") == "downslope.nn.functional":
                # (the same steps on arrays and on tensors)
                _batched_rules()[vjp] = _recorded_batched_rules()[vjp] = _batched_linear
        if vjp not in rules or node._needs is None or node._retains_grad or node.array.dtype not in _BATCH_DTYPES:
            return None
    Tensor, wrap_array = _tensor_api()
    if create_graph:
        cotangents = wrap_array(cotangents)
    grads: dict[int, Any] = {id(root): cotangents}
    captured: dict[int, Any] = {}
    previous_mode = _mode.enabled
    _mode.enabled = create_graph
    try:
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None or id(node) not in leads:
                continue
            if id(node) in capture_ids:
                captured[id(node)] = g
                if not _leads_on(node, leads):
                    continue
            parents = node._parents
            needs = tuple([n and id(p) in leads for n, p in zip(node._needs or (), parents)])
            if create_graph:
                found = _in_parent_dtypes(rules[node._vjp](g, node, parents, node._saved, needs), parents, Tensor)
            else:
                found = rules[node._vjp](g, node, tuple([p.array for p in parents]), node._saved, needs)
            for parent, needed, pg in zip(parents, needs, found):
                if needed and pg is not None:
                    if tuple(pg.shape) != (g.shape[0], *parent.shape):
                        return None  # a rule whose result the batch dim confused: never use it
                    key = id(parent)
                    grads[key] = pg if key not in grads else grads[key] + pg
        return _batched_results(inputs, captured, cotangents, create_graph)
    except _NotBatchable:
        return None
    finally:
        _mode.enabled = previous_mode


def _batched_results(
    inputs: Sequence[Tensor], captured: dict[int, Any], cotangents: Any, create_graph: bool
) -> list[Any]:
    """Each input's batch of gradients in its dtype (a recorded cast under create_graph), zeros where unused."""
    batch = cotangents.shape[0]
    result = []
    for t in inputs:
        g = captured.get(id(t))
        if g is None:
            g = namespace_of(t.array).zeros((batch, *t.shape), t.array.dtype)
            if create_graph:
                g = _tensor_api()[1](g)
        elif create_graph:
            if g.array.dtype != t.array.dtype:
                g = TensorRules.astype(g, t.array.dtype)
        elif g is cotangents or g.dtype != t.array.dtype or not getattr(g.flags, "writeable", True):
            g = g.astype(t.array.dtype)  # its own array in the input's dtype (not the caller's, nor a broadcast view)
        result.append(g)
    return result
