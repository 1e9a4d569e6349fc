"""Module hooks: the handle that removes one, the graph nodes that run backward hooks, and the global
forward hooks every module runs (PyTorch's ``torch.nn.modules.module.register_module_forward_hook``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...tensor import Tensor

if TYPE_CHECKING:
    from .base import Module


def _identity(x: Tensor) -> Tensor:
    """A new graph node equal to ``x``: its gradient is the gradient with respect to this input."""
    from ...ops import mul

    return mul(x, 1.0)


def _attach_backward_hooks(module: Module, hooks: dict[str, Any], args: tuple[Any, ...], output: Any) -> None:
    """Register tensor hooks that gather grad_output and grad_input for the module's backward hooks."""
    outputs = [o for o in (output if isinstance(output, (tuple, list)) else (output,)) if isinstance(o, Tensor)]
    outputs = [o for o in outputs if o.requires_grad]
    if not outputs:
        return
    inputs = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    grad_output: list[Any] = [None] * len(outputs)
    grad_input: list[Any] = [None] * len(args)
    pending = {"outputs": len(outputs), "inputs": len(inputs)}

    def call_backward_hooks() -> tuple[Any, ...]:
        result = tuple(grad_input)
        for hook in list(hooks["backward"].values()):
            changed = hook(module, result, tuple(grad_output))
            if changed is not None:
                result = tuple(changed)
        return result

    def on_output(k: int) -> Callable[[Tensor], Any]:
        def capture(g: Tensor) -> Any:
            grad_output[k] = g
            pending["outputs"] -= 1
            replaced = None
            if pending["outputs"] == 0:
                for hook in list(hooks["backward_pre"].values()):
                    changed = hook(module, tuple(grad_output))
                    if changed is not None:
                        grad_output[:] = list(changed)
                        replaced = grad_output[k]
                if not inputs:  # no input needs a gradient: PyTorch still calls the hook, with Nones
                    call_backward_hooks()
            return replaced

        return capture

    def on_input(i: int) -> Callable[[Tensor], Any]:
        def capture(g: Tensor) -> Any:
            grad_input[i] = g
            pending["inputs"] -= 1
            if pending["inputs"] == 0:
                return call_backward_hooks()[i]
            return None

        return capture

    for k, o in enumerate(outputs):
        o.register_hook(on_output(k))
    for i in inputs:
        args[i].register_hook(on_input(i))


class RemovableHandle:
    """What a ``register_*_hook`` call returns: ``handle.remove()`` unregisters the hook (also as a
    context manager)."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any], extra: tuple[dict[int, Any], ...] = ()) -> None:
        self._hooks = hooks
        self._extra = extra  # the tables of the hook's flags (with_kwargs, always_call), emptied with it
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        for table in self._extra:
            table.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


# The hooks every module's call runs, before its own (``register_module_forward_*_hook``).
_global_hooks: dict[str, OrderedDict[int, Any]] = {"forward_pre": OrderedDict(), "forward": OrderedDict()}
# The ids of the global forward hooks registered with_kwargs=True / always_call=True (apart from the
# tables above, which the module call's fast path reads).
_global_flags: dict[str, dict[int, bool]] = {"forward_kwargs": {}, "forward_always": {}}
# A module's hook tables (made on its first hook) and their flag tables: hook id -> True for the
# pre-hooks and forward hooks registered with_kwargs=True, the forward hooks with always_call=True.
HOOK_TABLES = ("forward_pre", "forward", "backward", "backward_pre")
FLAG_TABLES = ("forward_pre_kwargs", "forward_kwargs", "forward_always")
_NO_HOOKS: dict[str, Any] = {kind: {} for kind in HOOK_TABLES + FLAG_TABLES}


def _add_global_hook(kind: str, hook: Callable[..., Any], flags: tuple[str, ...] = ()) -> RemovableHandle:
    if not callable(hook):
        from ...errors import ArgumentTypeError

        raise ArgumentTypeError(f"register_module_{kind}_hook: expected a callable, got {hook!r}")
    handle = RemovableHandle(_global_hooks[kind], tuple(_global_flags[f] for f in flags))
    _global_hooks[kind][handle.id] = hook
    for flag in flags:
        _global_flags[flag][handle.id] = True
    return handle


def register_module_forward_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Call ``hook(module, args)`` before the forward of every module (``torch.nn.modules.module.
    register_module_forward_pre_hook``), before the module's own pre-hooks; a non-None result
    replaces the positional args. Returns a handle whose ``remove()`` unregisters it.

    Example:
        >>> import downslope as ds
        >>> seen = []
        >>> with ds.nn.module.register_module_forward_pre_hook(lambda m, args: seen.append(type(m).__name__)):
        ...     _ = ds.nn.Sequential(ds.nn.Linear(2, 2), ds.nn.ReLU())(ds.ones(1, 2))
        >>> seen
        ['Sequential', 'Linear', 'ReLU']
    """
    return _add_global_hook("forward_pre", hook)


def register_module_forward_hook(
    hook: Callable[..., Any], *, with_kwargs: bool = False, always_call: bool = False
) -> RemovableHandle:
    """Call ``hook(module, args, output)`` after the forward of every module (``torch.nn.modules.module.
    register_module_forward_hook``), before the module's own forward hooks; a non-None result
    replaces the output. Returns a handle whose ``remove()`` unregisters it. ``with_kwargs=True``
    passes the forward's keyword arguments too: ``hook(module, args, kwargs, output)``;
    ``always_call=True`` runs the hook even when the forward (or a hook) raised, as PyTorch does
    (then called as ``hook(module, args, None)`` when the forward gave no output, its own exception
    turned into a warning, and the first exception raised again).

    Example:
        >>> import downslope as ds
        >>> seen = []
        >>> with ds.nn.module.register_module_forward_hook(lambda m, args, out: seen.append(type(m).__name__)):
        ...     _ = ds.nn.Sequential(ds.nn.Linear(2, 2), ds.nn.ReLU())(ds.ones(1, 2))
        >>> seen
        ['Linear', 'ReLU', 'Sequential']
    """
    flags = (("forward_kwargs",) if with_kwargs else ()) + (("forward_always",) if always_call else ())
    return _add_global_hook("forward", hook, flags)
