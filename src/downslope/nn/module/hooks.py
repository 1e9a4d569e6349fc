"""Module hooks: the handle that removes one, the graph nodes that run backward hooks, and the global
forward hooks every module runs (PyTorch's ``torch.nn.modules.module.register_module_forward_hook``)."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...autograd import Function
from ...backend import namespace_of
from ...errors import InvalidValueError, StateError
from ...graph import is_grad_enabled
from ...tensor import Tensor, wrap_array

if TYPE_CHECKING:
    from .base import Module


class _HookIdentity(Function):
    """PyTorch's ``BackwardHookFunction``: the identity over a module's tensors that require grad, one
    graph node for all of them, whose backward runs once every one of their gradients is known (zeros
    for a tensor the loss does not reach) and hands them to ``on_backward``."""

    @staticmethod
    def forward(ctx: Any, on_backward: Callable[..., Any], materialize: bool, *tensors: Tensor) -> Any:
        ctx.on_backward = on_backward
        ctx.set_materialize_grads(materialize)
        return tensors

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        return (None, None, *ctx.on_backward(grads))


def _refusing_inplace(tensors: tuple[Tensor, ...], positions: list[int]) -> list[Tensor]:
    """Views of the hook node's outputs that refuse in-place ops, as PyTorch's do: an in-place op after
    the hook node would change what the hook reports (its grad_output) without it knowing."""
    from ...ops import reshape

    views = []
    for k, t in zip(positions, tensors):
        view = reshape(t, t.shape)
        # read by the in-place check of views (tensor._inplace_on_view), as split's outputs mark theirs
        setattr(view, "_multi_view", f"Output {k} of BackwardHookFunction")  # noqa: B010
        views.append(view)
    return views


class _BackwardHook:
    """One call's full backward hooks and pre-hooks (PyTorch's ``torch.utils.hooks.BackwardHook``).

    The module's tensor arguments that require grad go through one hook node before forward, its
    tensor outputs that require grad through another after it. In backward, the output node sees
    grad_output (one entry per output: None for a non-tensor, for an output that needs no gradient
    or that the loss does not reach), runs the pre-hooks (which may replace it) and stores it; the
    input node then sees the input gradients and calls the hooks with grad_input (one entry per
    argument: None for a non-tensor, zeros of its shape for a tensor that needs no gradient or
    that the loss does not reach), whose non-None result replaces the gradients that flow on.
    """

    def __init__(self, module: Module, user_hooks: list[Any], user_pre_hooks: list[Any]) -> None:
        self.module, self.user_hooks, self.user_pre_hooks = module, user_hooks, user_pre_hooks
        self.grad_outputs: tuple[Any, ...] | None = None
        self.n_inputs = self.n_outputs = 0
        self.zeros: dict[int, tuple[Any, tuple[int, ...], Any]] = {}  # what the zeros of a no-grad tensor input are
        self.input_index: list[int] | None = None  # the tensor arguments' positions (None: none requires grad)
        self.input_grad_index: list[int] = []  # of those, the ones that require grad (the node's parents)
        self.output_grad_index: list[int] = []

    def setup_input_hook(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        self.n_inputs = len(args)
        tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        wanted = [i for i in tensors if args[i].requires_grad]
        if not (wanted and is_grad_enabled()):
            return args
        self.input_index, self.input_grad_index = tensors, wanted
        self.zeros = {
            i: (namespace_of(args[i].array), args[i].shape, args[i].array.dtype) for i in tensors if i not in wanted
        }
        outs = _HookIdentity.apply(self._on_input_grads, True, *[args[i] for i in wanted])
        changed = list(args)
        for i, view in zip(wanted, _refusing_inplace(outs, [tensors.index(i) for i in wanted])):
            changed[i] = view
        return tuple(changed)

    def setup_output_hook(self, result: Any) -> Any:
        single = not isinstance(result, tuple)
        if single and not isinstance(result, Tensor):
            warnings.warn(
                "For backward hooks to be called, module output should be a Tensor or a tuple of Tensors but "
                f"received {type(result)}",
                UserWarning,
                stacklevel=4,
            )
        outputs = (result,) if single else result
        self.n_outputs = len(outputs)
        tensors = [i for i, o in enumerate(outputs) if isinstance(o, Tensor)]
        wanted = [i for i in tensors if outputs[i].requires_grad]
        if not (wanted and is_grad_enabled()):
            return result
        self.output_grad_index = wanted
        outs = _HookIdentity.apply(self._on_output_grads, False, *[outputs[i] for i in wanted])
        changed = list(outputs)
        for i, view in zip(wanted, _refusing_inplace(outs, [tensors.index(i) for i in wanted])):
            changed[i] = view
        return changed[0] if single else type(result)(changed)

    def _on_output_grads(self, grads: tuple[Any, ...]) -> tuple[Any, ...]:
        grad_outputs: list[Any] = [None] * self.n_outputs
        for i, g in zip(self.output_grad_index, grads):
            grad_outputs[i] = g
        self.grad_outputs = tuple(grad_outputs)
        for hook in self.user_pre_hooks:
            changed = hook(self.module, self.grad_outputs)
            if changed is None:
                continue
            self.grad_outputs = _checked_result(
                hook, self.module, changed, self.grad_outputs, "pre hook", "grad_output"
            )
        local = self.grad_outputs
        if self.input_index is None:  # no input requires grad: the hooks run now, with no grad_input
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module outputs since no "
                "inputs require gradients. See https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
                "#torch.nn.Module.register_full_backward_hook for more details.",
                UserWarning,
                stacklevel=2,
            )
            nothing = (None,) * self.n_inputs
            for hook in self.user_hooks:
                got = hook(self.module, nothing, self.grad_outputs)
                if got is not None and not (isinstance(got, tuple) and all(g is None for g in got)):
                    raise StateError(
                        "Backward hook for Modules where no input requires gradient should always return None or "
                        "None for all gradients."
                    )
            self.grad_outputs = None
        return tuple(local[i] for i in self.output_grad_index)

    def _on_input_grads(self, grads: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.grad_outputs is None:
            # the gradient reached the inputs without passing through the outputs (a double backward)
            return grads
        assert self.input_index is not None  # set whenever this node was recorded
        res: list[Any] = [None] * self.n_inputs
        for i, (xp, shape, dtype) in self.zeros.items():  # a tensor that needs no gradient: zeros, as PyTorch's
            res[i] = wrap_array(xp.zeros(shape, dtype))
        for i, g in zip(self.input_grad_index, grads):
            res[i] = g
        result = tuple(res)
        for hook in self.user_hooks:
            changed = hook(self.module, result, self.grad_outputs)
            if changed is None:
                continue
            result = _checked_result(hook, self.module, changed, result, "hook", "grad_input")
        self.grad_outputs = None
        return tuple(result[i] for i in self.input_grad_index)


def _checked_result(
    hook: Any, module: Module, got: Any, current: tuple[Any, ...], kind: str, what: str
) -> tuple[Any, ...]:
    """A backward hook's (or pre-hook's) replacement gradients, checked as PyTorch checks them (one per
    entry of ``what``, each of the shape it replaces), the errors naming the hook and what it returned
    rather than the graph node that would otherwise meet the wrong shapes. RuntimeErrors, as PyTorch's."""
    name = getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None) or repr(hook)
    where = f"Backward {kind} {name!r} of {type(module).__name__}"
    if not isinstance(got, (tuple, list)):
        shape = f" of shape {tuple(got.shape)}" if hasattr(got, "shape") else ""
        raise InvalidValueError(
            f"{where} returned a {type(got).__name__}{shape}; it must return None or a tuple of {len(current)} "
            f"gradient(s), one per entry of {what} (e.g. `return ({what}[0] * 3,)`)"
        )
    if len(got) != len(current):
        raise InvalidValueError(
            f"{where} returned an invalid number of {what}, got {len(got)}, but expected {len(current)}"
        )
    for i, (new, old) in enumerate(zip(got, current)):
        if new is not None and old is not None and tuple(getattr(new, "shape", ())) != tuple(old.shape):
            raise InvalidValueError(
                f"{where} has changed the size of value: {what}[{i}] has shape {tuple(getattr(new, 'shape', ()))}, "
                f"expected {tuple(old.shape)}"
            )
    return tuple(got)


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


# The hooks every module's call runs, before its own (``register_module_forward_*_hook``,
# ``register_module_full_backward_*hook``).
_global_hooks: dict[str, OrderedDict[int, Any]] = {
    "forward_pre": OrderedDict(), "forward": OrderedDict(), "backward": OrderedDict(), "backward_pre": OrderedDict(),
}  # fmt: skip
# The ids of the global forward hooks registered with_kwargs=True / always_call=True (apart from the
# tables above), and "any": the ids of every global call hook, the one table the module call's fast
# path reads (each handle empties it with its own table).
_global_flags: dict[str, dict[int, bool]] = {"forward_kwargs": {}, "forward_always": {}, "any": {}}
# The hook ids of the global backward hooks registered as register_module_backward_hook (the
# non-full kind, which PyTorch refuses to mix with the full kind among the global hooks).
_global_non_full: dict[int, bool] = {}
# The global registration hooks: hook(module, name, value) when a parameter, buffer or child module is
# registered on any module; a non-None result is registered instead.
_registration_hooks: dict[str, OrderedDict[int, Any]] = {
    "parameter": OrderedDict(), "buffer": OrderedDict(), "module": OrderedDict(),
}  # fmt: skip
# A module's hook tables (made on its first hook) and their flag tables: hook id -> True for the
# pre-hooks and forward hooks registered with_kwargs=True, the forward hooks with always_call=True.
HOOK_TABLES = ("forward_pre", "forward", "backward", "backward_pre")
FLAG_TABLES = ("forward_pre_kwargs", "forward_kwargs", "forward_always")
_NO_HOOKS: dict[str, Any] = {kind: {} for kind in HOOK_TABLES + FLAG_TABLES}
# The global hook registrations of torch.nn.modules.module beyond the forward ones (nn.modules puts them there).
GLOBAL_REGISTRATIONS = (
    "register_module_full_backward_hook", "register_module_full_backward_pre_hook", "register_module_backward_hook",
    "register_module_buffer_registration_hook", "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
)  # fmt: skip


def _add_global_hook(kind: str, hook: Callable[..., Any], flags: tuple[str, ...] = ()) -> RemovableHandle:
    if not callable(hook):
        from ...errors import ArgumentTypeError

        raise ArgumentTypeError(f"register_module_{kind}_hook: expected a callable, got {hook!r}")
    flags = (*flags, "any")
    handle = RemovableHandle(_global_hooks[kind], tuple(_global_flags[f] for f in flags))
    _global_hooks[kind][handle.id] = hook
    for flag in flags:
        _global_flags[flag][handle.id] = True
    return handle


def registered(kind: str, owner: Module, name: str, value: Any) -> Any:
    """``value`` after the global registration hooks of ``kind`` (each may return a replacement)."""
    for hook in list(_registration_hooks[kind].values()):
        output = hook(owner, name, value)
        if output is not None:
            value = output
    return value


def _add_registration_hook(kind: str, hook: Callable[..., Any]) -> RemovableHandle:
    if not callable(hook):
        from ...errors import ArgumentTypeError

        raise ArgumentTypeError(f"register_module_{kind}_registration_hook: expected a callable, got {hook!r}")
    handle = RemovableHandle(_registration_hooks[kind])
    _registration_hooks[kind][handle.id] = hook
    return handle


def register_module_parameter_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Call ``hook(module, name, param)`` whenever a parameter is registered on any module
    (``torch.nn.modules.module.register_module_parameter_registration_hook``; not for a None
    placeholder); a non-None result is registered instead. Returns a removable handle.

    Example:
        >>> import downslope as ds
        >>> seen = []
        >>> with ds.nn.modules.module.register_module_parameter_registration_hook(lambda m, n, p: seen.append(n)):
        ...     _ = ds.nn.Linear(2, 2)
        >>> seen
        ['weight', 'bias']
    """
    return _add_registration_hook("parameter", hook)


def register_module_buffer_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Call ``hook(module, name, buffer)`` whenever a buffer (or a None placeholder) is registered on
    any module (``torch.nn.modules.module.register_module_buffer_registration_hook``); a non-None
    result is registered instead. Returns a removable handle."""
    return _add_registration_hook("buffer", hook)


def register_module_module_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Call ``hook(module, name, submodule)`` whenever a child module (or None) is registered on any
    module (``torch.nn.modules.module.register_module_module_registration_hook``); a non-None
    result is registered instead. Returns a removable handle."""
    return _add_registration_hook("module", hook)


def _add_global_backward_hook(hook: Callable[..., Any], full: bool) -> RemovableHandle:
    # PyTorch refuses to hold both kinds at once among the global hooks (its flag stays set for the
    # process; here it lasts while hooks of the other kind are registered)
    others = [i for i in _global_hooks["backward"] if (i in _global_non_full) == full]
    if others:
        raise StateError(
            "Cannot use both regular backward hooks and full backward hooks as a global Module hook. "
            "Please use only one of them."
        )
    if full:
        return _add_global_hook("backward", hook)
    handle = _add_global_hook("backward", hook)
    handle._extra = (*handle._extra, _global_non_full)
    _global_non_full[handle.id] = True
    return handle


def register_module_full_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Call ``hook(module, grad_input, grad_output)`` in the backward of every module
    (``torch.nn.modules.module.register_module_full_backward_hook``), before the module's own full
    backward hooks, as :meth:`Module.register_full_backward_hook` does. Returns a removable handle.

    Example:
        >>> import downslope as ds
        >>> seen = []
        >>> model = ds.nn.Sequential(ds.nn.Linear(2, 2), ds.nn.Tanh())
        >>> with ds.nn.modules.module.register_module_full_backward_hook(lambda m, gi, go: seen.append(type(m).__name__)):
        ...     model(ds.ones(1, 2, requires_grad=True)).sum().backward()
        >>> seen
        ['Tanh', 'Linear', 'Sequential']
    """
    return _add_global_backward_hook(hook, full=True)


def register_module_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """PyTorch's deprecated global ``register_module_backward_hook``: here it behaves as
    :func:`register_module_full_backward_hook` (as :meth:`Module.register_backward_hook` does), and
    as in PyTorch it cannot be held together with that one."""
    return _add_global_backward_hook(hook, full=False)


def register_module_full_backward_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Call ``hook(module, grad_output)`` in the backward of every module before its gradients are
    computed (``torch.nn.modules.module.register_module_full_backward_pre_hook``), before the
    module's own pre-hooks; a non-None result replaces grad_output. Returns a removable handle."""
    return _add_global_hook("backward_pre", hook)


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
