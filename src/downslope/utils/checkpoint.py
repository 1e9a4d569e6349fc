"""Activation checkpointing (``torch.utils.checkpoint``): trade compute for memory.

``checkpoint(fn, *args)`` runs ``fn`` without recording its graph, so the activations inside it are
not kept; backward runs ``fn`` again from the saved inputs (with the random generator put back to
where it was, so dropout draws the same mask) and backpropagates through that second run. The
gradients equal those of calling ``fn`` directly, for the inputs and for every parameter ``fn``
uses, whether or not the inputs require grad (PyTorch's ``use_reentrant=False`` behaviour). When
``fn`` is a Module (or its method), its parameters are the checkpoint's inputs too, so
``autograd.grad(out, x)`` fills no parameter's ``.grad``, as in PyTorch; a plain function's
parameters reached through a closure get their ``.grad`` from any backward through it. A gradient
through a checkpoint cannot be differentiated again (``create_graph=True`` raises).

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

from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..autograd import Function, backward, grad
from ..errors import ArgumentError, StateError
from ..graph import enable_grad, is_grad_enabled
from ..nn.module import Module
from ..tensor import Tensor, empty

__all__ = ["checkpoint", "checkpoint_sequential"]


class _Checkpoint(Function):
    @staticmethod
    def forward(
        ctx: Any, run: Callable[..., Any], preserve_rng_state: bool, n_args: int, anchor: Tensor, *tensors: Any
    ) -> Any:
        args = tensors[:n_args]  # then the parameters of a Module function: parents of the node
        ctx.run, ctx.n_args, ctx.n_params = run, n_args, len(tensors) - n_args
        ctx.rng = backend.get_rng_state() if preserve_rng_state else None
        ctx.plain = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[a if isinstance(a, Tensor) else None for a in args])
        ctx.params = tensors[n_args:]
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
            with enable_grad():
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
        return (None, None, None, None, *input_grads, *param_grads)


def checkpoint(
    function: Callable[..., Any],
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Any = None,
    determinism_check: str = "default",
    debug: bool = False,
    preserve_rng_state: bool = True,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)``, its activations recomputed in backward instead of stored.

    ``use_reentrant``, ``determinism_check`` and ``debug`` are accepted for PyTorch's signature
    (the behaviour is always that of ``use_reentrant=False``); ``context_fn`` is not supported.
    """
    if context_fn is not None:
        raise ArgumentError("checkpoint: context_fn is not supported")
    run = (lambda *a: function(*a, **kwargs)) if kwargs else function
    if not is_grad_enabled():
        return run(*args)
    # The anchor requires grad, so the checkpoint is recorded even when no input does: the
    # parameters inside ``function`` still get their gradients (torch's reentrant variant drops them).
    anchor = empty(0, requires_grad=True)
    owner = function if isinstance(function, Module) else getattr(function, "__self__", None)
    params = [p for p in owner.parameters() if p.requires_grad] if isinstance(owner, Module) else []
    return _Checkpoint.apply(run, preserve_rng_state, len(args), anchor, *args, *params)


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
