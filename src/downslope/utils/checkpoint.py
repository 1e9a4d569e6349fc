"""Activation checkpointing (``torch.utils.checkpoint``): trade compute for memory.

``checkpoint(fn, *args, **kwargs)`` (``use_reentrant=False``, also downslope's when ``use_reentrant`` is
not given) runs ``fn`` with its graph recorded, finds the tensors requiring grad that the graph reads
from outside (arguments at any depth, keyword arguments, parameters, tensors reached through a closure)
and replaces the graph made inside by one node over them; backward runs ``fn`` again (with the random
generator put back to where it was, so dropout draws the same mask) and differentiates that second run.
So the results are those of a direct call, as PyTorch's non-reentrant form: tensors in nested outputs
(lists, dicts, a ModelOutput) and inputs get their gradients, ``autograd.grad`` and
``backward(inputs=...)`` fill no other ``.grad``, tensor hooks run once on the summed gradient, and
``create_graph=True`` works (a gradient penalty through a checkpointed block). The function must read the
same tensors when it runs again: parameters swapped between forward and backward (``functional_call``
around a checkpoint whose backward runs after the call) raise an error where PyTorch silently
recomputes with the module's own parameters.

With ``use_reentrant=True`` (PyTorch's reentrant form): ``fn`` runs without recording and only tensors
passed directly as arguments (and a Module's parameters) are the node's inputs; with no input that
requires grad the result requires no grad and the parameters inside get no gradient (with PyTorch's
warning), keyword arguments are refused, and its gradient cannot be differentiated again.

``context_fn`` returns two context managers, as PyTorch's: the first is entered around the forward
run, the second around the recompute in backward. Selective checkpointing
(:func:`create_selective_checkpoint_contexts`, :class:`CheckpointPolicy`) is accepted and gives the
same results, but the memory saving is not selective: downslope's recompute cannot tell ops apart,
so every op inside is recomputed whatever the policy says. The recompute always runs ``fn`` to its
end; module forward hooks (and pre-hooks) inside run again in backward as in PyTorch, whose recompute
(``use_reentrant=False``) stops early by default (:func:`set_checkpoint_early_stop`, ``early_stop``): none
past the op that saved the forward's last tensor for backward (a lone ``Linear``'s forward hook does not
run again; ``Linear`` then ``Tanh``: the Linear's does, the Tanh's pre-hook but not its forward hook).

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.utils.checkpoint import checkpoint
    >>> block = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> x = ds.ones(2, 4)
    >>> checkpoint(block, x, use_reentrant=False).sum().backward()
    >>> block[0].weight.grad.shape
    downslope.Size([8, 4])
"""

from __future__ import annotations

import contextlib
import copy
import enum
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .. import backend, forward_ad
from ..autograd import Function, backward, grad, saves_values
from ..errors import ArgumentError, ArgumentTypeError, StateError
from ..graph import enable_grad, is_grad_enabled, no_grad
from ..nn.module import Module
from ..nn.module.base import set_recompute_stop
from ..tensor import Tensor, empty, record_op

__all__ = [
    "checkpoint", "checkpoint_sequential", "noop_context_fn", "CheckpointPolicy",
    "create_selective_checkpoint_contexts", "set_checkpoint_early_stop",
]  # fmt: skip


def noop_context_fn() -> tuple[contextlib.AbstractContextManager[Any], contextlib.AbstractContextManager[Any]]:
    """``checkpoint``'s default ``context_fn``: two contexts that do nothing (forward, recompute).

    Example:
        >>> fwd, recompute = noop_context_fn()
        >>> with fwd, recompute:
        ...     pass
    """
    return contextlib.nullcontext(), contextlib.nullcontext()


class CheckpointPolicy(enum.Enum):
    """PyTorch's selective-checkpoint policy for one op (what a ``policy_fn`` returns). Accepted here;
    downslope recomputes every op whatever the policy (see the module docstring)."""

    MUST_SAVE = 0
    PREFER_SAVE = 1
    MUST_RECOMPUTE = 2
    PREFER_RECOMPUTE = 3
    MUST_CPU_OFFLOAD = 4
    PREFER_CPU_OFFLOAD = 5


def create_selective_checkpoint_contexts(
    policy_fn_or_list: Any, allow_cache_entry_mutation: bool = False
) -> tuple[contextlib.AbstractContextManager[Any], contextlib.AbstractContextManager[Any]]:
    """``torch.utils.checkpoint.create_selective_checkpoint_contexts``: the ``context_fn`` pair for
    selective checkpointing, from a policy function ``policy_fn(ctx, op, *args, **kwargs)`` or a list
    of ops to save.

    downslope's recompute runs the whole function again and cannot tell its ops apart, so the policy
    is never consulted: the contexts do nothing, every op is recomputed, and the results and
    gradients are those of plain checkpointing (which equal a direct call). Only the memory saving
    differs from PyTorch's: nothing is kept that plain checkpointing would not keep.

    Example:
        >>> import functools
        >>> import downslope as ds
        >>> from downslope.utils.checkpoint import checkpoint
        >>> context_fn = functools.partial(create_selective_checkpoint_contexts, lambda ctx, op, *a, **k: CheckpointPolicy.MUST_SAVE)
        >>> layer = ds.nn.Linear(2, 2)
        >>> checkpoint(layer, ds.ones(1, 2), use_reentrant=False, context_fn=context_fn).shape
        downslope.Size([1, 2])
    """
    if not (isinstance(policy_fn_or_list, list) or callable(policy_fn_or_list)):
        raise ArgumentTypeError(
            "create_selective_checkpoint_contexts: policy_fn_or_list must be either a function or a list of ops, "
            f"got {type(policy_fn_or_list).__name__}"
        )
    return contextlib.nullcontext(), contextlib.nullcontext()


_early_stop: list[bool | None] = [None]  # set_checkpoint_early_stop's setting (None: the default, True)


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool) -> Iterator[None]:
    """``torch.utils.checkpoint.set_checkpoint_early_stop(enable)``: PyTorch's switch for stopping the
    recompute once every saved tensor is recomputed, for the checkpoints made inside it (over their
    ``early_stop`` argument). Here the recompute runs the function to its end (its graph gives the
    gradient); what the switch changes is which module hooks run again, as in PyTorch: with early stop,
    none past the op that saved the forward's last tensor for backward.

    Example:
        >>> with set_checkpoint_early_stop(False):
        ...     pass
    """
    previous = _early_stop[0]
    _early_stop[0] = enable
    try:
        yield
    finally:
        _early_stop[0] = previous


class _Checkpoint(Function):
    @staticmethod
    def forward(
        ctx: Any,
        run: Callable[..., Any],
        preserve_rng_state: bool,
        contexts: tuple[Any, Any],
        n_args: int,
        anchor: Tensor,
        *tensors: Any,
    ) -> Any:
        args = tensors[:n_args]  # then the parameters of a Module function: parents of the node
        ctx.run, ctx.n_args, ctx.n_params = run, n_args, len(tensors) - n_args
        ctx.rng = backend.get_rng_state() if preserve_rng_state else None
        ctx.plain = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[a if isinstance(a, Tensor) else None for a in args])
        ctx.params = tensors[n_args:]
        forward_context, ctx.recompute_context = contexts
        with forward_context:
            return run(*args)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        if is_grad_enabled():
            raise StateError(
                "checkpoint: a gradient through a checkpoint cannot be differentiated again (create_graph=True); "
                "call the function directly for double backward"
            )
        saved = ctx.saved_tensors
        inputs = [
            ctx.plain[i] if t is None else t.detach().requires_grad_(t.requires_grad) for i, t in enumerate(saved)
        ]
        now = backend.get_rng_state()
        if ctx.rng is not None:
            backend.set_rng_state(ctx.rng)  # the second run draws what the first one drew (dropout)
        try:
            with enable_grad(), ctx.recompute_context:
                out = ctx.run(*inputs)
        finally:
            backend.set_rng_state(now)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(o, Tensor) and o.requires_grad and g is not None]
        wanted = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad] + list(ctx.params)
        found: dict[int, Any] = {}
        if pairs and ctx.params:
            # A Module: its parameters are the node's parents, so their gradients go back through the
            # engine (which fills .grad only where the outer backward asks for it)
            got = grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
            found = {id(t): gt for t, gt in zip(wanted, got)}
        elif pairs:
            # A plain function may reach tensors it was not given (closures): backpropagate through the
            # recomputed graph into them; keep the graph (retain_graph), which may reach the outer one
            backward([o for o, _ in pairs], [g for _, g in pairs], retain_graph=True)
            found = {id(t): t.grad for t in inputs if isinstance(t, Tensor) and t.requires_grad}
        input_grads = tuple(found.get(id(t)) if isinstance(t, Tensor) else None for t in inputs)
        param_grads = tuple(found.get(id(p)) for p in ctx.params)
        return (None, None, None, None, None, *input_grads, *param_grads)


# ---------------------------------------------------------------------- non-reentrant checkpointing
# The forward runs with the graph recorded, as a direct call would: walking that graph from the outputs
# back to the first tensors made before the call finds every tensor the function read that requires
# grad (its arguments at any depth, keyword arguments, parameters, tensors reached through a closure).
# Those become the parents of one recorded node whose outputs stand for the function's, and the graph
# made inside is dropped (the memory saving). Its rule runs the function again and differentiates the
# recomputed graph with respect to stand-ins of those parents, so the outer backward sees an ordinary
# node: autograd.grad and backward(inputs=...) prune it, tensor hooks run once on summed gradients, and
# under create_graph the stand-ins are recorded copies, so the gradient is itself differentiable.


def _now() -> int:
    """A creation number no earlier op has and every later one exceeds (ops are numbered as recorded)."""
    with enable_grad():
        return record_op(_MARK.array, (_MARK,), _no_rule)._seq


def _no_rule(g: Any, y: Any, args: Any, saved: Any, needs: Any, xp: Any) -> tuple[None]:
    return (None,)


_MARK = empty(0, requires_grad=True)


def _flatten(tree: Any, found: list[Tensor]) -> None:
    """The tensors inside tuples, lists and mappings (a ModelOutput), depth first, into ``found``."""
    if isinstance(tree, Tensor):
        found.append(tree)
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            _flatten(item, found)
    elif isinstance(tree, Mapping):
        for item in tree.values():
            _flatten(item, found)


def _rebuild(tree: Any, swap: dict[int, Any]) -> Any:
    """``tree`` with the tensors whose ids are in ``swap`` replaced (containers copied, never changed)."""
    if isinstance(tree, Tensor):
        return swap.get(id(tree), tree)
    if isinstance(tree, tuple):
        items = [_rebuild(item, swap) for item in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)  # a namedtuple's fields
    if isinstance(tree, list):
        return type(tree)(_rebuild(item, swap) for item in tree)
    if isinstance(tree, dict):
        copied = copy.copy(tree)  # keeps a dict subclass (ModelOutput) and its attributes
        for key, item in tree.items():
            copied[key] = _rebuild(item, swap)
        return copied
    if isinstance(tree, Mapping):
        return {key: _rebuild(item, swap) for key, item in tree.items()}
    return tree


def _made_after(tree: Any, start: int) -> tuple[list[int], list[Tensor]]:
    """The positions (in _flatten's order) and tensors of ``tree`` recorded after ``start``, each once."""
    flat: list[Tensor] = []
    _flatten(tree, flat)
    positions, outs, seen = [], [], set()
    for i, t in enumerate(flat):
        if t.requires_grad and t._seq >= start and id(t) not in seen:
            seen.add(id(t))
            positions.append(i)
            outs.append(t)
    return positions, outs


def _read_before(outs: list[Tensor], start: int) -> list[Tensor]:
    """The tensors requiring grad, made before ``start``, that the graph from ``outs`` reads directly."""
    found: dict[int, Tensor] = {}
    seen: set[int] = set()
    stack = list(outs)
    while stack:
        for p in stack.pop()._parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                if p._seq < start:  # a leaf, or a node of the graph outside the function
                    found[id(p)] = p
                else:
                    stack.append(p)
    return list(found.values())


class _Run:
    """What the recompute needs: the call, the RNG state it started from, where its outputs sit."""

    __slots__ = (
        "function", "args", "kwargs", "rng", "context", "positions", "metadata", "outputs", "parents", "check",
        "stop",
    )  # fmt: skip

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs
        self.rng: Any = None
        self.context: Any = contextlib.nullcontext()
        self.positions: list[int] = []
        self.metadata: list[tuple[tuple[int, ...], Any]] = []
        self.outputs: list[Tensor] = []  # the forward's outputs until the node is recorded, then none
        self.parents: list[Tensor] = []
        self.check = True  # determinism_check="default": the recompute's outputs must match the forward's
        # early stop: where the op that saved the forward's last tensor for backward sits, as creation numbers
        # after the run's start (-1: none saved one); module hooks do not run past it in the recompute
        self.stop: int | None = None


class _Recompute(Function):
    @staticmethod
    def forward(ctx: Any, run: _Run, *parents: Tensor) -> tuple[Tensor, ...]:
        ctx.run = run
        ctx.set_materialize_grads(False)
        # the parents as saved tensors: a second backward without retain_graph raises (the node is freed),
        # and so does an in-place change of one before backward, as torch's saved activations do
        ctx.save_for_backward(*parents)
        outputs, run.outputs = run.outputs, []
        return tuple(o.detach() for o in outputs)  # the values, without the graph made inside

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        run: _Run = ctx.run
        ctx.saved_tensors  # noqa: B018  (raises when freed by an earlier backward, or changed in place)
        create_graph = is_grad_enabled()  # backward runs recorded under create_graph=True
        # Stand-ins for the parents, made before the recompute (creation order is the walk's order); under
        # create_graph recorded copies, so that the gradient stays a function of the parents
        stand_ins = {id(p): p.clone() if create_graph else p.detach().requires_grad_() for p in run.parents}

        strangers: list[Tensor] = []

        def stand_in(t: Tensor) -> Tensor:
            s = stand_ins.get(id(t))
            if s is None:  # not read by the forward: its gradient is not asked for
                s = stand_ins[id(t)] = t.detach().requires_grad_()
                strangers.append(t)
            return s

        flat: list[Tensor] = []
        _flatten((run.args, run.kwargs), flat)
        for t in flat:  # an argument the outputs did not depend on needs no gradient: a detached copy
            if t.requires_grad and id(t) not in stand_ins:
                stand_ins[id(t)] = t.detach().requires_grad_()
        args, kwargs = _rebuild((run.args, run.kwargs), stand_ins)
        now = backend.get_rng_state()
        if run.rng is not None:
            backend.set_rng_state(run.rng)  # the second run draws what the first one drew (dropout)
        previous_stop = None
        try:
            start = _now()
            # (the numbering repeats the forward's: the same ops, in the same order)
            previous_stop = set_recompute_stop(None if run.stop is None else [start + run.stop, run.stop < 0])
            with enable_grad(), run.context:
                out = run.function(*args, **kwargs)
        finally:
            set_recompute_stop(previous_stop)
            backend.set_rng_state(now)
        flat = []
        _flatten(out, flat)
        if len(flat) <= (run.positions[-1] if run.positions else -1):
            raise StateError(
                f"checkpoint: the recompute returned {len(flat)} tensor(s), the forward more (the function "
                "must return the same structure when it runs again)"
            )
        outs = [flat[i] for i in run.positions]
        for i, (o, (shape, dtype)) in enumerate(zip(outs, run.metadata)):
            if not run.check:  # determinism_check="none": an output of another shape takes its gradient reshaped
                if grads[i] is not None and tuple(o.shape) != shape and o.numel() == grads[i].numel():
                    grads = (*grads[:i], grads[i].reshape(tuple(o.shape)), *grads[i + 1 :])
                continue
            if tuple(o.shape) != shape or o.dtype != dtype:
                raise StateError(
                    f"checkpoint: recomputed output {i} has shape {tuple(o.shape)} and dtype {o.dtype}, expected "
                    f"{shape} and {dtype} as in the forward (the function must compute the same when run again)"
                )
        # Point the recomputed graph at stand-ins of what it read from outside, so that differentiating
        # it never walks into (or runs the hooks of) the outer graph, which the outer backward handles
        stand_ids = {id(s) for s in stand_ins.values()}
        seen: set[int] = set()
        stack = [o for o in outs if o.requires_grad and o._seq >= start]
        while stack:
            node = stack.pop()
            parents = node._parents
            if any(p.requires_grad and p._seq < start and id(p) not in stand_ids for p in parents):
                parents = node._parents = tuple(
                    stand_in(p) if p.requires_grad and p._seq < start and id(p) not in stand_ids else p for p in parents
                )
                stand_ids.update(id(s) for s in stand_ins.values())
            for p in parents:
                if p.requires_grad and id(p) not in seen and id(p) not in stand_ids and p._seq >= start:
                    seen.add(id(p))
                    stack.append(p)
        if strangers:
            raise StateError(
                f"checkpoint: the recompute in backward read {len(strangers)} tensor(s) requiring grad that the "
                f"forward did not (the first of shape {tuple(strangers[0].shape)}): the function must read the same "
                "tensors when it runs again; were the module's parameters swapped between forward and backward "
                "(functional_call around a checkpoint whose backward runs after the call)? Call the checkpointed "
                "function inside the same state for both, or call it without checkpoint"
            )
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
        wanted = [stand_ins.get(id(p)) for p in run.parents]
        present = [s for s in wanted if s is not None]
        if not pairs or not present:
            return (None, *[None] * len(wanted))
        got = iter(
            grad([o for o, _ in pairs], present, [g for _, g in pairs], allow_unused=True, create_graph=create_graph)
        )
        return (None, *[None if s is None else next(got) for s in wanted])


def _last_saving(outs: list[Tensor], start: int) -> int:
    """The creation number of the last op made after ``start`` in the graph of ``outs`` whose rule reads
    values (PyTorch's saved tensors: an input, its output, or arrays kept), or ``start - 1`` if none."""
    last = start - 1
    seen: set[int] = set()
    stack = [o for o in outs if o._seq >= start]
    while stack:
        node = stack.pop()
        if id(node) in seen or node._vjp is None:
            continue
        seen.add(id(node))
        if node._seq > last and saves_values(node):
            last = node._seq
        stack.extend(p for p in node._parents if p._seq >= start)
    return last


def _checkpoint_graph(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    preserve_rng_state: bool,
    contexts: tuple[Any, Any],
    check: bool = True,
    early_stop: bool = True,
) -> Any:
    """Non-reentrant checkpointing (see the comment above _now)."""
    run = _Run(function, args, kwargs)
    run.check = check
    early = _early_stop[0] if _early_stop[0] is not None else early_stop  # (the context decides, as torch's)
    forward_context, run.context = contexts
    if preserve_rng_state:
        run.rng = backend.get_rng_state()
    start = _now()
    with forward_context:
        out = function(*args, **kwargs)
    run.positions, outs = _made_after(out, start)
    run.parents = _read_before(outs, start)
    if not run.parents or forward_ad.active:
        # nothing it read requires grad (its outputs do only through leaves made inside), or forward AD
        # is on, whose tangents come from the recorded graph: that graph stays (no memory saving)
        return out
    run.metadata = [(tuple(o.shape), o.dtype) for o in outs]
    if early:
        run.stop = _last_saving(outs, start) - start
    ids = [id(o) for o in outs]  # (``out`` holds them until it is rebuilt)
    run.outputs, outs = outs, []
    recorded = _Recompute.apply(run, *run.parents)
    return _rebuild(out, dict(zip(ids, recorded)))


# torch 2.13's warning when use_reentrant is not given (downslope then takes False, torch True)
_USE_REENTRANT_WARNING = (
    "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. Starting in PyTorch 2.9, "
    "calling checkpoint without use_reentrant will raise an exception. use_reentrant=False is recommended, but if "
    "you need to preserve the current default behavior, you can pass use_reentrant=True. Refer to docs for more "
    "details on the differences between the two variants."
)

_SEQUENTIAL_WARNING = (
    "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be passed explicitly. In "
    "version 2.9 we will raise an exception if use_reentrant is not passed. use_reentrant=False is recommended, but "
    "if you need to preserve the current default behavior, you can pass use_reentrant=True. Refer to docs for more "
    "details on the differences between the two variants."
)


def checkpoint(
    function: Callable[..., Any],
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Callable[[], tuple[Any, Any]] = noop_context_fn,
    determinism_check: str = "default",
    debug: bool = False,
    early_stop: bool = True,
    preserve_rng_state: bool = True,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)``, its activations recomputed in backward instead of stored.

    ``context_fn()`` gives the two context managers entered around the forward run and around the
    recompute (``use_reentrant=False`` or not given, as in PyTorch). ``determinism_check="none"`` skips
    the check that the recompute's outputs have the forward's shapes and dtypes; ``debug`` and
    ``early_stop`` are accepted for PyTorch's signature. Not given, ``use_reentrant`` means False here
    (with PyTorch 2.13's warning that it should be passed; PyTorch then takes True); with
    ``use_reentrant=True``, as PyTorch's reentrant variant, keyword arguments for ``function``,
    ``context_fn`` and ``debug`` are refused, and when no input requires grad the result requires
    none (warning "None of the inputs have requires_grad=True"), so the parameters inside get no
    gradient.
    """
    if use_reentrant is None:
        warnings.warn(_USE_REENTRANT_WARNING, UserWarning, stacklevel=2)
    if determinism_check not in ("default", "none"):
        raise ArgumentError(
            f"checkpoint: determinism_check should be one of ['default', 'none'], but got {determinism_check!r}"
        )
    if use_reentrant:
        if context_fn is not noop_context_fn or debug is not False:
            raise ArgumentError(
                "checkpoint: Passing `context_fn` or `debug` is only supported when use_reentrant=False."
            )
        if kwargs:
            raise ArgumentError(f"checkpoint: Unexpected keyword arguments: {','.join(kwargs)} (use_reentrant=True)")
        if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            # PyTorch's reentrant checkpoint records nothing then (its warning comes in any grad mode):
            # the parameters inside get no gradient
            warnings.warn(
                "None of the inputs have requires_grad=True. Gradients will be None", UserWarning, stacklevel=2
            )
            with no_grad():
                return function(*args)
    if not use_reentrant:
        if not is_grad_enabled():
            return function(*args, **kwargs)
        return _checkpoint_graph(
            function, args, kwargs, preserve_rng_state, context_fn(), determinism_check == "default", early_stop
        )
    run = function
    contexts = noop_context_fn()
    if not is_grad_enabled():
        return run(*args)
    # The anchor requires grad, so the checkpoint is recorded even when no input does: the
    # parameters inside ``function`` still get their gradients (torch's reentrant variant drops them).
    anchor = empty(0, requires_grad=True)
    owner = function if isinstance(function, Module) else getattr(function, "__self__", None)
    params = [p for p in owner.parameters() if p.requires_grad] if isinstance(owner, Module) else []
    return _Checkpoint.apply(run, preserve_rng_state, contexts, len(args), anchor, *args, *params)


def checkpoint_sequential(
    functions: Any, segments: int, input: Any, use_reentrant: bool | None = None, **kwargs: Any
) -> Any:
    """Run a Sequential (or a list of modules) in ``segments`` checkpointed pieces; the last piece runs
    normally, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> from downslope.utils.checkpoint import checkpoint_sequential
        >>> model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> checkpoint_sequential(model, 2, ds.ones(2, 3), use_reentrant=False).shape
        downslope.Size([2, 1])
    """
    if use_reentrant is None:  # torch 2.13's own warning (downslope then takes False, torch True)
        warnings.warn(_SEQUENTIAL_WARNING, UserWarning, stacklevel=2)
        use_reentrant = False
    layers: Sequence[Any] = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ArgumentError(f"checkpoint_sequential: segments must be at least 1, got {segments}")
    size = max(1, len(layers) // segments)

    def piece(start: int, stop: int) -> Callable[[Any], Any]:
        def run(x: Any) -> Any:
            for layer in layers[start:stop]:
                x = layer(x)
            return x

        return run

    end = 0
    for start in range(0, size * (segments - 1), size):
        end = min(start + size, len(layers))
        input = checkpoint(piece(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return piece(end, len(layers))(input)
