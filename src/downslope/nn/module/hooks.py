"""Module hooks: the handle that removes one, and the graph nodes that run backward hooks."""

from __future__ import annotations

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

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
