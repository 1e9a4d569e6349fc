"""Activation checkpointing (``torch.utils.checkpoint``): trade compute for memory.

``checkpoint(fn, *args)`` runs ``fn`` without recording its graph, so the activations inside it are
not kept; backward runs ``fn`` again from the saved inputs (with the random generator put back to
where it was, so dropout draws the same mask) and backpropagates through that second run. The
gradients equal those of calling ``fn`` directly, for the inputs and for every parameter ``fn``
uses, whether or not the inputs require grad (PyTorch's ``use_reentrant=False`` behaviour, also
downslope's when ``use_reentrant`` is not given). With ``use_reentrant=True`` and no input that
requires grad, the result requires no grad and the parameters inside get no gradient, as
PyTorch's reentrant variant (with its warning). When ``fn`` is a Module (or its method), its
parameters are the checkpoint's inputs too, so ``autograd.grad(out, x)`` fills no parameter's
``.grad``, as in PyTorch; a plain function's parameters reached through a closure get their
``.grad`` from any backward through it. A gradient through a checkpoint cannot be differentiated
again (``create_graph=True`` raises).

``context_fn`` returns two context managers, as PyTorch's: the first is entered around the forward
run, the second around the recompute in backward. Selective checkpointing
(:func:`create_selective_checkpoint_contexts`, :class:`CheckpointPolicy`) is accepted and gives the
same results, but the memory saving is not selective: downslope's recompute cannot tell ops apart,
so every op inside is recomputed whatever the policy says. The recompute always runs ``fn`` to its
end (PyTorch's early stop, :func:`set_checkpoint_early_stop`, is accepted and changes nothing), so
forward hooks inside run again in backward.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.utils.checkpoint import checkpoint
    >>> block = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> x = ds.ones(2, 4)
    >>> checkpoint(block, x).sum().backward()
    >>> block[0].weight.grad.shape
    (8, 4)
"""

from __future__ import annotations

import contextlib
import enum
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import backend
from ..autograd import Function, backward, grad
from ..errors import ArgumentError, ArgumentTypeError, StateError
from ..graph import enable_grad, is_grad_enabled, no_grad
from ..nn.module import Module
from ..tensor import Tensor, empty

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
        (1, 2)
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
    recompute once every saved tensor is recomputed. Accepted, and it changes nothing here: the
    recompute always runs the function to its end (gradients are the same either way).

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
    recompute (``use_reentrant=False`` or not given, as in PyTorch). ``determinism_check``
    ("default" or "none"), ``debug`` and ``early_stop`` are accepted for PyTorch's signature. Not
    given, ``use_reentrant`` means False here (PyTorch 2.13 warns and takes True); with
    ``use_reentrant=True``, as PyTorch's reentrant variant, keyword arguments for ``function``,
    ``context_fn`` and ``debug`` are refused, and when no input requires grad the result requires
    none (warning "None of the inputs have requires_grad=True"), so the parameters inside get no
    gradient.
    """
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
    run = (lambda *a: function(*a, **kwargs)) if kwargs else function
    contexts = noop_context_fn() if use_reentrant else context_fn()
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
        >>> checkpoint_sequential(model, 2, ds.ones(2, 3)).shape
        (2, 1)
    """
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
