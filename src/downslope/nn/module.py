"""Module and Parameter: the containers that hold a network's weights and walk its structure.

A :class:`Module` registers what is assigned to it: a :class:`Parameter` becomes a trainable
weight, another Module becomes a child, a list or tuple of Modules becomes a :class:`ModuleList`
child and a dict of Modules a :class:`ModuleDict` child, and a tensor given to
:meth:`Module.register_buffer` becomes state that is saved but not trained (BatchNorm's running
statistics). Names follow PyTorch, so ``state_dict()`` keys
(``"0.weight"``, ``"bn.running_mean"``) read the same as there.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar, overload

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, CheckpointError, OutOfRangeError, StateDictError
from ..ops import flatten as _flatten
from ..tensor import Tensor, _to_array, _wrap

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Identity",
    "Flatten",
    "Unflatten",
    "IncompatibleKeys",
    "RemovableHandle",
    "Buffer",
]

M = TypeVar("M", bound="Module")


class Parameter(Tensor):
    """A tensor that a Module treats as a trainable weight (``requires_grad=True``, float32 by default).

    Floating data keeps the library's default dtype (float32) unless ``dtype`` is given; integer
    data is converted, since only floating tensors have gradients. A Tensor of the right dtype is
    shared, not copied (as ``torch.nn.Parameter`` does).

    Example:
        >>> import downslope as ds
        >>> p = ds.nn.Parameter([1.0, 2.0])
        >>> p.requires_grad, p.dtype
        (True, dtype('float32'))
    """

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None) -> None:
        if data is None:
            data = np.empty((0,), dtype=backend.get_default_dtype())
        if isinstance(data, Tensor) and dtype is None and backend.is_floating(data.array.dtype):
            arr = data.array  # share memory, like torch.nn.Parameter(tensor)
        else:
            arr = _to_array(data, dtype)
            if not backend.is_floating(arr.dtype):
                arr = arr.astype(backend.get_default_dtype())
        super().__init__(arr, requires_grad=False)
        self.array = arr
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _identity(x: Tensor) -> Tensor:
    """A new graph node equal to ``x``: its gradient is the gradient with respect to this input."""
    from ..ops import mul

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


def _accept_factory_kwargs(cls: type) -> None:
    """Give a layer class PyTorch's ``device=`` and ``dtype=`` constructor keywords.

    Every ``torch.nn`` layer takes them (``nn.Linear(4, 2, device=device)``). Here ``device`` may
    only name the CPU, and ``dtype`` casts the new layer's floating parameters and buffers; a class
    whose ``__init__`` already takes one of them keeps handling it. Only downslope's own layers are
    wrapped: a user's Module subclass keeps exactly the signature its author wrote.
    """
    init = cls.__dict__.get("__init__")
    if init is None or not cls.__module__.startswith("downslope.") or getattr(init, "_factory_kwargs", False):
        return
    params = inspect.signature(init).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes_device, takes_dtype = "device" in params, "dtype" in params
    if takes_device and takes_dtype:
        return

    @functools.wraps(init)
    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        device = None if takes_device else kwargs.pop("device", None)
        dtype = None if takes_dtype else kwargs.pop("dtype", None)
        if device is not None:
            from ..device import check_cpu

            check_cpu(device, type(self).__name__)
        init(self, *args, **kwargs)
        if dtype is not None:
            self._cast(dtype, type(self).__name__)

    __init__._factory_kwargs = True  # type: ignore[attr-defined]
    setattr(cls, "__init__", __init__)  # noqa: B010


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


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute (PyTorch's ``nn.Buffer``):
    ``self.steps = nn.Buffer(ds.zeros(()))`` is ``self.register_buffer("steps", ds.zeros(()))``.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> class Counter(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.count = nn.Buffer(ds.zeros(()), persistent=False)
        >>> [n for n, _ in Counter().named_buffers()], list(Counter().state_dict())
        (['count'], [])
    """

    def __init__(self, data: Any = None, *, persistent: bool = True) -> None:
        if data is None:
            data = np.empty((0,), backend.get_default_dtype())
        arr = data.array if isinstance(data, Tensor) else _to_array(data)
        super().__init__(arr, requires_grad=False)
        self.array = arr
        self.persistent = persistent


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` could not match (empty lists when strict)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _count(n: int) -> str:
    return f"{n:,}"


class Module:
    """Base class of every layer and model: registers parameters, buffers and child modules.

    Subclasses set their parameters and children in ``__init__`` (after ``super().__init__()``)
    and define ``forward``; calling the module calls ``forward``.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> class Affine(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.scale = nn.Parameter(ds.ones(3))
        ...         self.shift = nn.Parameter(ds.zeros(3))
        ...     def forward(self, x):
        ...         return x * self.scale + self.shift
        >>> m = Affine()
        >>> [name for name, _ in m.named_parameters()]
        ['scale', 'shift']
        >>> m(ds.ones(2, 3)).shape
        (2, 3)
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent: set[str]
    _modules: dict[str, Module | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _accept_factory_kwargs(cls)

    def __init__(self) -> None:
        # object.__setattr__ because our __setattr__ needs these dicts to exist first.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward() method; subclasses of Module define it")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hooks = self.__dict__.get("_hooks")
        if not hooks:
            return self.forward(*args, **kwargs)
        for hook in list(hooks["forward_pre"].values()):
            changed = hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        backward = hooks["backward"] or hooks["backward_pre"]
        if backward:
            args = tuple(_identity(a) if isinstance(a, Tensor) and a.requires_grad else a for a in args)
        output = self.forward(*args, **kwargs)
        for hook in list(hooks["forward"].values()):
            changed = hook(self, args, output)
            if changed is not None:
                output = changed
        if backward:
            _attach_backward_hooks(self, hooks, args, output)
        return output

    def _add_hook(self, kind: str, hook: Callable[..., Any], prepend: bool) -> RemovableHandle:
        if not callable(hook):
            raise ArgumentTypeError(f"{type(self).__name__}.register_{kind}_hook: expected a callable, got {hook!r}")
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = {"forward_pre": OrderedDict(), "forward": OrderedDict(), "backward": OrderedDict(),
                     "backward_pre": OrderedDict()}  # fmt: skip
            object.__setattr__(self, "_hooks", hooks)
        handle = RemovableHandle(hooks[kind])
        hooks[kind][handle.id] = hook
        if prepend:
            hooks[kind].move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; a non-None result replaces the positional args.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> layer = nn.Identity()
            >>> handle = layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
            >>> layer(ds.tensor([1.0])), handle.remove(), layer(ds.tensor([1.0]))
            (tensor([2.]), None, tensor([1.]))
        """
        if with_kwargs:
            raise ArgumentError("register_forward_pre_hook: with_kwargs=True is not supported")
        return self._add_hook("forward_pre", hook, prepend)

    def register_forward_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every forward (e.g. to record activations); a
        non-None result replaces the output. Returns a handle whose ``remove()`` unregisters it.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> seen = []
            >>> model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
            >>> handle = model[0].register_forward_hook(lambda m, args, out: seen.append(out.shape))
            >>> _ = model(ds.randn(4, 3)); seen
            [(4, 2)]
        """
        if with_kwargs:
            raise ArgumentError("register_forward_hook: with_kwargs=True is not supported")
        return self._add_hook("forward", hook, prepend)

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to the
        module's tensor inputs are computed (``None`` for inputs that need none); a non-None result
        replaces ``grad_input``. Set up at each call of the module, so register it before the forward.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> seen = []
            >>> layer = nn.Linear(2, 1)
            >>> _ = layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi[0].shape, go[0].shape)))
            >>> layer(ds.randn(3, 2, requires_grad=True)).sum().backward(); seen
            [((3, 2), (3, 1))]
        """
        return self._add_hook("backward", hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` before the module's gradients are computed; a non-None
        result replaces ``grad_output``."""
        return self._add_hook("backward_pre", hook, prepend)

    def register_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """PyTorch's deprecated name; it behaves as :meth:`register_full_backward_hook` here."""
        return self._add_hook("backward", hook, False)

    # ------------------------------------------------------------------ registration
    def _check_initialized(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if isinstance(value, Buffer):
            self._check_initialized(name)
            self.register_buffer(name, _wrap(value.array), persistent=value.persistent)
            return
        if isinstance(value, Parameter):
            self._check_initialized(name)
            self._forget(name, keep="_parameters")
            self._parameters[name] = value
            d[name] = value
            return
        if isinstance(value, Module):
            self._check_initialized(name)
            self._forget(name, keep="_modules")
            self._modules[name] = value
            d[name] = value
            return
        if (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, Module) for v in value)
            and "_modules" in d
            and not isinstance(self, (ModuleList, Sequential))
        ):
            # A plain list of layers is registered as a ModuleList, so its parameters are found;
            # in PyTorch they would be silently missed by parameters() and the optimizer.
            self.__setattr__(name, ModuleList(value))
            return
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and isinstance(v, Module) for k, v in value.items())
            and "_modules" in d
            and not isinstance(self, ModuleDict)
        ):
            # Likewise a plain dict of layers becomes a ModuleDict (keys become the names).
            self.__setattr__(name, ModuleDict(value))
            return
        if "_parameters" in d:
            if name in self._parameters:
                if value is not None:
                    raise ArgumentTypeError(
                        f"cannot assign {type(value).__name__} to {type(self).__name__}.{name}: it is a parameter; "
                        "assign an nn.Parameter (or None), or change its values with `.data`"
                    )
                self._parameters[name] = None
            elif name in self._buffers:
                if value is not None and not isinstance(value, Tensor):
                    raise ArgumentTypeError(
                        f"cannot assign {type(value).__name__} to buffer {type(self).__name__}.{name}: "
                        "expected a Tensor or None"
                    )
                self._buffers[name] = value
            elif name in self._modules:
                if value is not None:
                    raise ArgumentTypeError(
                        f"cannot assign {type(value).__name__} to {type(self).__name__}.{name}: it is a child module; "
                        "assign a Module or None"
                    )
                self._modules[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if "_parameters" in self.__dict__:
            self._forget(name, keep=None)
        object.__delattr__(self, name)

    def _forget(self, name: str, keep: str | None) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry != keep:
                self.__dict__[registry].pop(name, None)
        if keep != "_buffers":
            self._non_persistent.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, e.g. a disabled bias) under ``name``."""
        self._check_initialized(name)
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentTypeError(
                f"register_parameter({name!r}): expected an nn.Parameter or None, got {type(param).__name__}"
            )
        self._forget(name, keep="_parameters")
        self._parameters[name] = param
        self.__dict__[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not trained but is saved in ``state_dict`` (unless ``persistent=False``).

        Example:
            >>> import downslope as ds
            >>> m = ds.nn.Module()
            >>> m.register_buffer("count", ds.zeros(1))
            >>> list(m.state_dict())
            ['count']
        """
        self._check_initialized(name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}"
            )
        if "." in name or not name:
            raise StateDictError(f"register_buffer: invalid buffer name {name!r} (must be non-empty without '.')")
        self._forget(name, keep="_buffers")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child under ``name`` (same as assigning the attribute)."""
        self._check_initialized(name)
        if module is not None and not isinstance(module, Module):
            raise ArgumentTypeError(f"add_module({name!r}): expected a Module or None, got {type(module).__name__}")
        self._forget(name, keep="_modules")
        self._modules[name] = module
        self.__dict__[name] = module

    register_module = add_module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter named by a dotted path such as ``"encoder.0.weight"``."""
        module_path, _, name = target.rpartition(".")
        param = self.get_submodule(module_path)._parameters.get(name)
        if param is None:
            raise AttributeError(f"{type(self).__name__} has no parameter {target!r}")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer named by a dotted path such as ``"bn.running_mean"``."""
        module_path, _, name = target.rpartition(".")
        buf = self.get_submodule(module_path)._buffers.get(name)
        if buf is None:
            raise AttributeError(f"{type(self).__name__} has no buffer {target!r}")
        return buf

    def set_submodule(self, target: str, module: Module) -> None:
        """Replace the descendant named by a dotted path (e.g. swap a classifier head)."""
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if name not in parent._modules:
            raise AttributeError(f"{type(parent).__name__} has no submodule {name!r} (setting {target!r})")
        setattr(parent, name, module)

    def get_submodule(self, target: str) -> Module:
        """The descendant named by a dotted path such as ``"encoder.0"`` ("" is the module itself)."""
        mod: Module = self
        if target == "":
            return mod
        for part in target.split("."):
            child = mod._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} (looking up {target!r})")
            mod = child
        return mod

    # ------------------------------------------------------------------ traversal
    def named_modules(
        self, prefix: str = "", memo: set[int] | None = None, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every descendant, each once (every time with ``remove_duplicate=False``),
        with its dotted name ("" for self)."""
        memo = set() if memo is None else memo
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # iterative pre-order walk, so a deep stack of layers needs no recursion
            name, mod = stack.pop()
            if remove_duplicate and id(mod) in memo:
                continue
            memo.add(id(mod))
            yield name, mod
            kids = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items() if m is not None]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules is listed once (under
        each of its names with ``remove_duplicate=False``)."""
        seen: set[int] = set()
        mods = self.named_modules(prefix, remove_duplicate=remove_duplicate) if recurse else iter([(prefix, self)])
        for mod_name, mod in mods:
            for name, p in mod._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every trainable tensor, in registration order (what an optimizer is given).

        Example:
            >>> from downslope import nn
            >>> sum(p.numel() for p in nn.Linear(3, 2).parameters())
            8
        """
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix, remove_duplicate=remove_duplicate) if recurse else iter([(prefix, self)])
        for mod_name, mod in mods:
            for name, b in mod._buffers.items():
                if b is None or (remove_duplicate and id(b) in seen):
                    continue
                seen.add(id(b))
                yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many scalar weights the module holds (optionally only those with requires_grad).

        Example:
            >>> from downslope import nn
            >>> nn.Linear(10, 5).num_parameters()
            55
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self: M, fn: Callable[[Module], Any]) -> M:
        """Call ``fn`` on every descendant and then on this module (e.g. a custom initializer)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and gradients
    def train(self: M, mode: bool = True) -> M:
        """Set training mode (dropout active, batch statistics) here and in every descendant."""
        if not isinstance(mode, bool):
            raise ArgumentTypeError(f"train(mode): expected a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self: M) -> M:
        """Set evaluation mode (dropout off, running statistics); same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self: M, requires_grad: bool = True) -> M:
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter before the next backward.

        Gradients add up across ``backward()`` calls (that is how accumulation over several
        micro-batches works), so a training step clears them first. ``set_to_none`` frees them;
        ``set_to_none=False`` fills the existing arrays with zeros instead.
        """
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none or p.grad.requires_grad or not p.grad.array.flags.writeable:
                p.grad = None
            else:
                p.grad.array.fill(0)

    # ------------------------------------------------------------------ dtype
    def to(self: M, *args: Any, **kwargs: Any) -> M:
        """Cast every floating parameter and buffer in place, with PyTorch's signatures:
        ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)`` (its dtype),
        ``to(device=..., dtype=..., non_blocking=...)``.

        downslope computes on the CPU: the CPU device is accepted (nothing moves), any other
        device (``"cuda"``, ``ds.device("mps")``) is refused with a one-line error.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> nn.Linear(2, 2).to("cpu").to(ds.float64).weight.dtype
            dtype('float64')
        """
        from ..device import is_device_like

        where = f"{type(self).__name__}.to"
        unknown = set(kwargs) - {"device", "dtype", "non_blocking", "memory_format", "copy"}
        if unknown or len(args) > 3:
            raise ArgumentTypeError(
                f"{where}: expected to(device), to(dtype), to(device, dtype) or to(tensor) with keywords "
                f"device/dtype/non_blocking, got {len(args)} positional argument(s) and keywords {sorted(kwargs)}"
            )
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.array.dtype
            elif is_device_like(arg) or (isinstance(arg, int) and not isinstance(arg, bool)):
                device = arg
            elif isinstance(arg, bool):
                continue  # to(device, dtype, non_blocking) given positionally
            else:
                dtype = arg
        if device is not None:
            self._move(device, where)
        if dtype is not None:
            self._cast(dtype, where)
        return self

    def _move(self: M, device: Any, where: str) -> M:
        """Move every parameter, gradient and buffer to ``device`` in place: the Parameter objects stay
        the same, so an optimizer built before or after sees them (its flat buffers follow on its next step)."""
        from ..device import resolve
        from ..devices import to_device

        target = resolve(device, where)
        for t in [*self.parameters(), *self.buffers()]:
            t.array = to_device(t.array, target)
            if t.grad is not None:
                t.grad.array = to_device(t.grad.array, target)
        return self

    def _cast(self: M, dtype: Any, where: str) -> M:
        target = backend.as_dtype(dtype)
        if not backend.is_floating(target):
            raise ArgumentTypeError(f"{where}: expected a floating dtype, got {target}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.array.dtype != target:
                    p.array = p.array.astype(target)
                    p.grad = None
            for b in m._buffers.values():
                if b is not None and backend.is_floating(b.array.dtype) and b.array.dtype != target:
                    b.array = b.array.astype(target)
        return self

    def cpu(self: M) -> M:
        """The module itself, its parameters and buffers moved to host memory (in place)."""
        return self._move("cpu", f"{type(self).__name__}.cpu")

    def cuda(self: M, device: Any = None) -> M:
        """The module itself, moved in place to a CUDA GPU (CuPy); a clear error when there is none."""
        return self._move("cuda" if device is None else device, f"{type(self).__name__}.cuda")

    def type(self: M, dst_type: Any) -> M:
        """Cast every floating parameter and buffer to ``dst_type`` (a dtype)."""
        return self._cast(dst_type, f"{type(self).__name__}.type")

    def float(self: M) -> M:
        """Cast floating parameters and buffers to float32."""
        return self._cast(backend.float32, f"{type(self).__name__}.float")

    def double(self: M) -> M:
        """Cast floating parameters and buffers to float64."""
        return self._cast(backend.float64, f"{type(self).__name__}.double")

    def half(self: M) -> M:
        """Cast floating parameters and buffers to float16."""
        return self._cast(backend.float16, f"{type(self).__name__}.half")

    # ------------------------------------------------------------------ state
    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Any]:
        """Every parameter and persistent buffer as ``name -> numpy array`` (copies, safe to keep).

        PyTorch's keywords: ``keep_vars=True`` gives the Parameter and buffer Tensors themselves;
        ``destination`` is a dict to fill (and return); ``prefix`` is put before every key.

        Example:
            >>> from downslope import nn
            >>> sd = nn.Sequential(nn.Linear(2, 3), nn.ReLU()).state_dict()
            >>> {k: v.shape for k, v in sd.items()}
            {'0.weight': (3, 2), '0.bias': (3,)}
        """
        if args:  # PyTorch's old positional form: state_dict(destination, prefix, keep_vars)
            if len(args) > 3 or destination is not None:
                raise ArgumentTypeError("state_dict: expected at most (destination, prefix, keep_vars)")
            destination, *rest = args
            prefix = rest[0] if rest else prefix
            keep_vars = rest[1] if len(rest) > 1 else keep_vars
        out: Any = OrderedDict() if destination is None else destination
        # A module registered under two names is saved under both, as PyTorch does.
        for mod_name, mod in self.named_modules(remove_duplicate=False):
            pre = prefix + (f"{mod_name}." if mod_name else "")  # PyTorch's prefix ends with its own dot
            for name, p in mod._parameters.items():
                if p is not None:
                    out[pre + name] = p if keep_vars else p.array.copy()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[pre + name] = b if keep_vars else b.array.copy()
        return out

    def _state_tensors(self) -> dict[str, Tensor]:
        found: dict[str, Tensor] = {}
        for mod_name, mod in self.named_modules(remove_duplicate=False):
            pre = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    found[pre + name] = p
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    found[pre + name] = b
        return found

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False, *, allow_nonfinite: bool = False
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers (in place).

        With ``strict`` (the default) every key must match: missing or unexpected keys raise a
        KeyError listing them. A shape mismatch always raises, naming the key and both shapes.
        Values are cast to each parameter's dtype. Returns the missing and unexpected keys.
        ``assign`` (PyTorch's option to adopt the given tensors) is accepted; values are always
        copied, so optimizers holding the parameters keep seeing them.

        Only real numbers are accepted: a complex, object or string array raises
        :class:`CheckpointError` naming the key (casting would silently drop the imaginary part).
        NaN or infinite values raise :class:`CheckpointError` naming the key too, since a model
        that computes NaN is never what was meant, unless ``allow_nonfinite=True`` (e.g. to
        inspect the weights of a run that diverged). Nothing is written unless every key passes.

        Example:
            >>> from downslope import nn
            >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
            >>> b.load_state_dict(a.state_dict())
            IncompatibleKeys(missing_keys=[], unexpected_keys=[])
            >>> bool((a.weight.array == b.weight.array).all())
            True
        """
        if not isinstance(state_dict, Mapping):
            raise ArgumentTypeError(
                f"load_state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}"
            )
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = [f"load_state_dict into {type(self).__name__} failed:"]
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise StateDictError(" ".join(parts))
        arrays: dict[str, np.ndarray] = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arr = value.array if isinstance(value, Tensor) else np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise CheckpointError(
                    f"load_state_dict into {type(self).__name__}: {key!r} has dtype {arr.dtype}; expected real "
                    f"numbers (bool, integer or float) to cast to {target.array.dtype}"
                )
            if arr.shape != target.array.shape:
                raise ArgumentError(
                    f"load_state_dict into {type(self).__name__}: size mismatch for {key!r}: "
                    f"the checkpoint has shape {arr.shape}, this module has shape {target.array.shape}"
                )
            if not allow_nonfinite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                raise CheckpointError(
                    f"load_state_dict into {type(self).__name__}: {key!r} holds {bad} NaN/infinite value(s) "
                    f"of {arr.size}; pass allow_nonfinite=True to load it anyway"
                )
            arrays[key] = arr
        # Check every key before writing any, so a failed load leaves the module unchanged.
        for key, arr in arrays.items():
            target = own[key]
            if target.array.flags.writeable:
                np.copyto(target.array, arr, casting="unsafe")
            else:
                target.array = np.array(arr, dtype=target.array.dtype)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The settings shown inside this module's parentheses (override in subclasses)."""
        return ""

    def _own_param_summary(self) -> str:
        own = [(n, p) for n, p in self._parameters.items() if p is not None]
        if not own:
            return ""
        shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in own)
        return f"  # {_count(sum(p.numel() for _, p in own))} params: {shapes}"

    def __repr__(self) -> str:
        """PyTorch's layout, plus each leaf's parameter shapes and counts and the total.

        Example:
            >>> from downslope import nn
            >>> print(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
            Sequential(
              (0): Linear(in_features=4, out_features=3, bias=True)  # 15 params: weight (3, 4), bias (3,)
              (1): ReLU()
            )  # 15 params in total
        """
        extra = self.extra_repr()
        kids = [(n, m) for n, m in self._modules.items() if m is not None]
        if not kids:
            return f"{type(self).__name__}({extra}){self._own_param_summary()}"
        lines = [f"{type(self).__name__}({extra}"]
        own = self._own_param_summary()
        if own:
            lines[0] += own
        for name, m in kids:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(f")  # {_count(self.num_parameters())} params in total")
        return "\n".join(lines)

    def __dir__(self) -> Iterable[str]:
        return sorted(set(super().__dir__()))


def _check_module(owner: str, value: Any) -> Module:
    if not isinstance(value, Module):
        raise ArgumentTypeError(f"{owner}: expected Module objects, got {type(value).__name__}")
    return value


class Sequential(Module):
    """Layers applied one after another; indexable, sliceable and of known length.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> len(model), type(model[1]).__name__, model(ds.randn(5, 4)).shape
        (3, 'ReLU', (5, 2))
    """

    def __init__(self, *layers: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            for name, m in layers[0].items():
                self.add_module(str(name), _check_module("Sequential", m))
        else:
            for i, layer in enumerate(layers):
                self.add_module(str(i), _check_module("Sequential", layer))

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            if m is not None:
                x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter([m for m in self._modules.values() if m is not None])

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> Sequential: ...
    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict((k, m) for k, m in items[index] if m is not None))
        if not -len(items) <= index < len(items):
            raise OutOfRangeError(f"Sequential index {index} out of range for {len(items)} layers")
        m = items[index][1]
        assert m is not None
        return m

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), _check_module("Sequential.append", module))
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them).

    Example:
        >>> from downslope import nn
        >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        >>> len(layers), len(list(layers.parameters()))
        (3, 6)
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter([m for m in self._modules.values() if m is not None])

    def _index(self, index: int) -> str:
        n = len(self)
        if not -n <= index < n:
            raise OutOfRangeError(f"ModuleList index {index} out of range for {n} modules")
        return str(index % n)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        m = self._modules[self._index(index)]
        assert m is not None
        return m

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(self._index(index), _check_module("ModuleList", module))

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), _check_module("ModuleList.append", module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self)
        items.insert(index, _check_module("ModuleList.insert", module))
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it and call the modules yourself")


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, in insertion order.

    Example:
        >>> from downslope import nn
        >>> heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
        >>> list(heads.keys()), heads["b"].out_features
        (['a', 'b'], 3)
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        m = self._modules.get(key)
        if m is None:
            raise StateDictError(f"ModuleDict has no module {key!r}; keys are {list(self._modules)}")
        return m

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module("ModuleDict", module))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        self.__dict__.pop(key, None)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> list[str]:
        return list(self._modules)

    def values(self) -> list[Module]:
        return [m for m in self._modules.values() if m is not None]

    def items(self) -> list[tuple[str, Module]]:
        return [(k, m) for k, m in self._modules.items() if m is not None]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for k, m in pairs:
            self[str(k)] = m

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); pick a module by key and call it")


class ParameterList(Module):
    """A list of parameters, registered under the names "0", "1", ... (e.g. one weight per step).

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> ps = nn.ParameterList([nn.Parameter(ds.zeros(2)) for _ in range(3)])
        >>> len(ps), [name for name, _ in ps.named_parameters()]
        (3, ['0', '1', '2'])
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter([p for p in self._parameters.values() if p is not None])

    def __getitem__(self, index: int) -> Parameter:
        n = len(self)
        if not -n <= index < n:
            raise OutOfRangeError(f"ParameterList index {index} out of range for {n} parameters")
        p = self._parameters[str(index % n)]
        assert p is not None
        return p

    def __setitem__(self, index: int, value: Any) -> None:
        n = len(self)
        if not -n <= index < n:
            raise OutOfRangeError(f"ParameterList index {index} out of range for {n} parameters")
        self.register_parameter(str(index % n), value if isinstance(value, Parameter) else Parameter(value))

    def append(self, value: Any) -> ParameterList:
        """Add a parameter (a tensor or array is wrapped in a Parameter)."""
        self.register_parameter(str(len(self)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        for v in values:
            self.append(v)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterList has no forward(); use its parameters in your own module's forward")


class ParameterDict(Module):
    """A dict of parameters, registered under their keys, in insertion order.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> pd = nn.ParameterDict({"scale": nn.Parameter(ds.ones(1))})
        >>> list(pd.state_dict())
        ['scale']
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            for k, v in values.items():
                self[k] = v

    def __getitem__(self, key: str) -> Parameter:
        p = self._parameters.get(key)
        if p is None:
            raise StateDictError(f"ParameterDict has no parameter {key!r}; keys are {list(self._parameters)}")
        return p

    def __setitem__(self, key: str, value: Any) -> None:
        self.register_parameter(str(key), value if isinstance(value, Parameter) else Parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._parameters))

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def keys(self) -> list[str]:
        return list(self._parameters)

    def values(self) -> list[Parameter]:
        return [p for p in self._parameters.values() if p is not None]

    def items(self) -> list[tuple[str, Parameter]]:
        return [(k, p) for k, p in self._parameters.items() if p is not None]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterDict has no forward(); use its parameters in your own module's forward")


class Identity(Module):
    """Returns its input unchanged (a placeholder layer); extra arguments are accepted and ignored.

    Example:
        >>> import downslope as ds
        >>> ds.nn.Identity()(ds.ones(2)).shape
        (2,)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (default: all but the batch dim).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Flatten()(ds.zeros(8, 3, 4, 4)).shape
        (8, 48)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim <= self.start_dim and self.start_dim >= 0 and x.ndim > 0:
            raise ArgumentError(
                f"Flatten(start_dim={self.start_dim}): input of shape {x.shape} has only {x.ndim} dim(s)"
            )
        return _flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (the inverse of :class:`Flatten`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Unflatten(1, (2, 5))(ds.zeros(3, 10)).shape
        (3, 2, 5)
    """

    def __init__(self, dim: int, unflattened_size: Iterable[int]) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(int(s) for s in unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        from ..ops import reshape

        d = self.dim % x.ndim if x.ndim else 0
        return reshape(x, x.shape[:d] + self.unflattened_size + x.shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
