"""Module: registers parameters, buffers and children as they are assigned, walks the tree, runs
hooks around ``forward``, casts, and saves and loads ``state_dict``."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from ... import backend
from ...errors import ArgumentError, ArgumentTypeError, InvalidValueError, StateDictError, StateError
from ...row_grads import zero_rows_
from ...tensor import Tensor, wrap_array
from .hooks import (
    _NO_HOOKS,
    FLAG_TABLES,
    HOOK_TABLES,
    RemovableHandle,
    _BackwardHook,
    _global_flags,
    _global_hooks,
    _registration_hooks,
    registered,
)
from .parameter import Buffer, Parameter, UninitializedBuffer, is_lazy
from .state import (
    EXTRA_STATE_KEY,
    assign_into,
    check_keys,
    checked_arrays,
    copy_into,
    load_from_state_dict,
    load_with_hooks,
    named_state,
    save_with_hooks,
)

M = TypeVar("M", bound="Module")
# Non-empty while any global forward or backward hook is registered: the one table the call's fast path reads.
_any_global_hook = _global_flags["any"]
# Set by utils.checkpoint while a recompute runs in backward: [the creation number of the op at which
# PyTorch's recompute stops early (the last one that saves a tensor for backward), whether a call passed
# it]. Module hooks do not run past it, as PyTorch's recompute stops before them.
_recompute_stop: list[Any] = [None]


def set_recompute_stop(stop: list[Any] | None) -> list[Any] | None:
    """For ``utils.checkpoint``'s recompute in backward: ``[n, passed]`` makes module hooks run only for
    calls before the op numbered ``n`` (PyTorch's early stop of the recompute), None lets them all run.
    Returns the setting before, to put back after the recompute."""
    previous = _recompute_stop[0]
    _recompute_stop[0] = stop
    return previous


def _past_stop(stop: list[Any], values: Any) -> bool:
    """Whether the recompute passed its stop (see _recompute_stop): before, or at, a tensor in ``values``."""
    if not stop[1]:
        found: list[Any] = [values]
        while found:
            v = found.pop()
            if isinstance(v, Tensor):
                if v._seq >= stop[0]:
                    stop[1] = True
                    break
            elif isinstance(v, (tuple, list)):
                found.extend(v)
            elif isinstance(v, Mapping):
                found.extend(v.values())
    return stop[1] is True


# Modules given a plain list, tuple or dict of layers that were not all registered at the assignment, by
# id: (weak reference, attribute names). The warning waits for the first parameters() or state_dict(),
# since fast.ai's models assign the list and then register each layer with add_module.
_plain_pending: dict[int, tuple[weakref.ref[Any], list[str]]] = {}
_PACKAGE_DIR = str(Path(__file__).parents[2]) + os.sep  # src/downslope/


def _pending_dropper(key: int) -> Callable[[weakref.ref[Any]], None]:
    """The weak reference's callback: a module that dies forgets its pending containers."""

    def drop(_: weakref.ref[Any]) -> None:
        _plain_pending.pop(key, None)

    return drop


def _accept_factory_kwargs(cls: type) -> None:
    """Give a layer class PyTorch's ``device=`` and ``dtype=`` constructor arguments.

    Every ``torch.nn`` layer takes them (``nn.Linear(4, 2, device=device)``); the layers that take
    them positionally in torch (``nn.Linear(4, 2, True, device, dtype)``, as a subclass's
    ``super().__init__`` passes them) declare them in torch's places, the others get them as keywords
    here. The layer is built on the host with the seeded generator (so its initial values are the
    CPU's), cast to ``dtype`` and then moved to ``device`` (a device that is not available is refused
    up front): a layer that declares them only needs to build in ``dtype`` or leave the cast to this
    wrapper. Only downslope's own layers are wrapped: a user's Module subclass keeps exactly the
    signature its author wrote.
    """
    # An __init__ inherited from a plain mixin before the Module base (the lazy layers' shared
    # constructors) is wrapped too; one inherited from a wrapped layer carries the flag below.
    init = cls.__dict__.get("__init__", getattr(cls, "__init__", None))
    if init is None or not cls.__module__.startswith("downslope.") or getattr(init, "_factory_kwargs", False):
        return
    params = inspect.signature(init).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    # Where a declared device/dtype sits among the positional arguments (self excluded); None: keyword only.
    positional = [
        name
        for name, p in list(params.items())[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    takes_device, takes_dtype = "device" in params, "dtype" in params
    device_at = positional.index("device") if "device" in positional else None
    dtype_at = positional.index("dtype") if "dtype" in positional else None

    def given(name: str, takes: bool, at: int | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not takes:
            return kwargs.pop(name, None)  # not the layer's own argument: handled here only
        if at is not None and len(args) > at:
            return args[at]
        return kwargs.get(name)

    @functools.wraps(init)
    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        device = given("device", takes_device, device_at, args, kwargs)
        dtype = given("dtype", takes_dtype, dtype_at, args, kwargs)
        from ...device import default_factory_device, resolve

        # no device= given: ds.set_default_device's (None when it is the CPU), as torch's layers do
        target = default_factory_device() if device is None else resolve(device, type(self).__name__)
        # Made on the host with the seeded generator (the same initial values as on the CPU), then moved.
        cdtype = backend.as_dtype(dtype) if dtype is not None and _is_complex_dtype(dtype) else None
        if cdtype is not None:  # built real (float32/float64 parts), then made complex below
            part = backend.as_dtype(backend.float64 if cdtype == np.complex128 else backend.float32)
            if takes_dtype and dtype_at is not None and len(args) > dtype_at:
                args = args[:dtype_at] + (part,) + args[dtype_at + 1 :]
            elif takes_dtype:
                kwargs["dtype"] = part
        init(self, *args, **kwargs)
        if cdtype is not None:
            self._complex_parameters(cdtype, type(self).__name__)
        elif dtype is not None:
            self._cast(dtype, type(self).__name__)  # nothing to do when the layer built in dtype itself
        if target is not None and target.type != "cpu":
            self._move(target, type(self).__name__)

    __init__._factory_kwargs = True  # type: ignore[attr-defined]
    setattr(cls, "__init__", __init__)  # noqa: B010


def _is_complex_dtype(dtype: Any) -> bool:
    return backend.as_dtype(dtype).kind == "c"


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` could not match (empty lists when strict), shown as
    PyTorch's ``_IncompatibleKeys``: ``<All keys matched successfully>`` when both lists are empty.

    Example:
        >>> IncompatibleKeys([], []), IncompatibleKeys(["bias"], [])
        (<All keys matched successfully>, _IncompatibleKeys(missing_keys=['bias'], unexpected_keys=[]))
    """

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, unexpected_keys={self.unexpected_keys!r})"

    def __str__(self) -> str:
        return self.__repr__()


def _typename(obj: Any) -> str:
    """PyTorch's ``torch.typename``: a tensor's type string ('torch.FloatTensor'), else the class's
    dotted path ('downslope.nn.activation.ReLU'; builtins by their bare name)."""
    if isinstance(obj, Tensor):
        return str(obj.type())
    cls = type(obj)
    module = cls.__module__ or ""
    return cls.__qualname__ if module in ("", "builtins") else f"{module}.{cls.__qualname__}"


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first by ``spaces`` (blank lines stay empty), as PyTorch's repr does."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    rest = [(" " * spaces) + line if line.strip() else "" for line in lines[1:]]
    return "\n".join([lines[0], *rest])


def _customized_state(module: Module, loading: bool = False) -> bool:
    """Whether saving or loading ``module`` needs PyTorch's module-by-module walk: some module in it
    has state hooks (lazy modules have one), extra state or its own ``_save_to_state_dict`` (its own
    ``_load_from_state_dict`` when ``loading``)."""
    for m in module.modules():
        cls = type(m)
        tables = m.__dict__.get("_state_hooks")
        if tables and any(tables.values()):
            return True
        if cls.get_extra_state is not Module.get_extra_state or cls.set_extra_state is not Module.set_extra_state:
            return True
        if cls._save_to_state_dict is not Module._save_to_state_dict:
            return True
        if not loading and m is not module and cls.state_dict is not Module.state_dict:
            return True
        if loading and cls._load_from_state_dict is not Module._load_from_state_dict:
            return True
    return False


def _forward_unimplemented(self: Module, *input: Any) -> Any:
    raise NotImplementedError(f"{type(self).__name__} has no forward() method; subclasses of Module define it")


_REGISTRIES = frozenset(("_parameters", "_buffers", "_modules"))


# Per class (by id, dropped when the class dies: classes made in loops or per test), the names its MRO
# defines: methods, properties and other class attributes. A registered child under such a name is not
# mirrored into the instance's attributes, so that lookups resolve as PyTorch's (the class's method first).
# Computed once per class: a name added to the class afterwards is not seen.
_class_names: dict[int, tuple[weakref.ref[type], frozenset[str]]] = {}


def _class_defines(cls: type, name: str) -> bool:
    """Whether ``cls`` (through its MRO) defines ``name``: such a name is left to the class."""
    entry = _class_names.get(id(cls))
    if entry is None:
        key = id(cls)
        entry = (weakref.ref(cls, lambda _: _class_names.pop(key, None)), frozenset(dir(cls)))
        _class_names[key] = entry
    return name in entry[1]


class _Registry(dict):
    """A module's ``_parameters``, ``_buffers`` or ``_modules``: a dict whose writes reach the module's
    attributes too. downslope reads parameters, buffers and children as plain attributes (the fast
    path of every forward), where PyTorch looks them up in these dicts, so code that writes into the
    dicts directly (replacing a layer with ``model._modules["fc"] = ...``, learn2learn's
    ``clone_module``, weight-drop's ``_parameters[name] = ...``) must change the attribute as well.
    A name the module's class defines (a method, a property) is left to the class, as PyTorch's
    attribute lookup finds those before the dicts. A copy (deepcopy, pickle) is a plain dict, which
    :meth:`Module.__setstate__` wraps again for the copied module; a shallow ``copy.copy`` shares the
    registry with the original, as PyTorch's does, and the registry then keeps both modules' attributes
    in step (its owners)."""

    __slots__ = ("_owners",)

    def __init__(self, owner: Module, items: Mapping[str, Any] = ()) -> None:  # type: ignore[assignment]
        super().__init__(items)
        self._owners: tuple[weakref.ref[Module], ...] = (weakref.ref(owner),)

    def _owned_by(self, module: Module) -> bool:
        return any(ref() is module for ref in self._owners)

    def _share_with(self, module: Module) -> None:
        """Add ``module`` (a shallow copy of an owner) as an owner whose attributes follow the entries."""
        self._owners = (*(ref for ref in self._owners if ref() is not None), weakref.ref(module))

    def _attributes(self, key: Any) -> list[dict[str, Any]]:
        """The owners' attribute dicts, where ``key`` is an attribute the registry keeps in step."""
        if not isinstance(key, str):
            return []
        owners = [ref() for ref in self._owners]
        return [m.__dict__ for m in owners if m is not None and not _class_defines(type(m), key)]

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        for attributes in self._attributes(key):
            attributes[key] = value

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        for attributes in self._attributes(key):
            attributes.pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self:
            return super().pop(key, *default)
        value = super().pop(key)
        for attributes in self._attributes(key):
            attributes.pop(key, None)
        return value

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        for attributes in self._attributes(key):
            attributes.pop(key, None)
        return key, value

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> _Registry:  # type: ignore[misc]
        self.update(other)
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))


# what only TorchScript's ScriptModule has: downslope.jit.script returns the module itself
_SCRIPT_MODULE_ONLY = frozenset({"save", "save_to_buffer", "code", "graph"})
_NO_TORCHSCRIPT = (
    ": downslope.jit.script returns the module itself (no TorchScript): there is no TorchScript archive to "
    "save; save model.state_dict() with ds.save or export ONNX"
)
# A Keras model's attributes that a Keras-guide callback reads from self.model, with downslope's way to each
_KERAS_MODEL_ONLY = {
    "optimizer": "in a fit callback the optimizer is self.trainer.optimizer (its rate: .param_groups[0]['lr'])",
    "get_weights": "model.state_dict() gives the weights by name",
    "set_weights": "model.load_state_dict(state) sets them",
    "save_weights": "ds.save(model.state_dict(), path) saves them",
    "load_weights": "model.load_state_dict(ds.load(path)) loads them",
}


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
        downslope.Size([2, 3])
    """

    training: bool
    # PyTorch's flag for cooperative multiple inheritance: when True, Module.__init__ passes its
    # arguments on to the next class in the MRO; when False (the default) it refuses any.
    call_super_init: bool = False
    # PyTorch's state-format version of the class, given to state_dict hooks as local_metadata["version"].
    _version: int = 1
    dump_patches: bool = False
    T_destination = TypeVar("T_destination", bound=dict[str, Any])
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent: set[str]
    _modules: dict[str, Module | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _accept_factory_kwargs(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not self.call_super_init and kwargs:
            raise ArgumentTypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument '{next(iter(kwargs))}'"
            )
        if not self.call_super_init and args:
            raise ArgumentTypeError(
                f"{type(self).__name__}.__init__() takes 1 positional argument but {len(args) + 1} were given"
            )
        # object.__setattr__ because our __setattr__ needs these dicts to exist first.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", _Registry(self))
        object.__setattr__(self, "_buffers", _Registry(self))
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", _Registry(self))
        if self.call_super_init:
            super().__init__(*args, **kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a copied or unpickled module: a deep copy's or an unpickled module's registries (plain
        dicts) become its own again; after a shallow ``copy.copy`` the copy shares the original's, as
        PyTorch's copy does (a child added or replaced through either module shows in both), and
        writes into them keep reaching both modules' attributes."""
        self.__dict__.update(state)
        for name in _REGISTRIES:
            registry = self.__dict__.get(name)
            if type(registry) is _Registry:
                if not registry._owned_by(self):
                    registry._share_with(self)
            elif isinstance(registry, dict):
                object.__setattr__(self, name, _Registry(self, registry))

    # ------------------------------------------------------------------ calling
    # A class attribute, as in PyTorch, so that subclasses may define forward with any signature
    # while the base's stays torch's ``forward(self, *input)``.
    forward: Callable[..., Any] = _forward_unimplemented

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """PyTorch's in-place ``Module.compile(...)``: accepted with any arguments, and changes nothing
        (there is no compiler; see ``downslope.compile``). Returns None, as PyTorch's.

        Example:
            >>> import downslope as ds
            >>> ds.nn.Linear(2, 1).compile(mode="max-autotune") is None
            True
        """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hooks = self.__dict__.get("_hooks")
        if not hooks and not _any_global_hook:
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(hooks or _NO_HOOKS, args, kwargs)

    def _call_with_hooks(self, hooks: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The forward between its hooks, in PyTorch's order: the global pre-hooks, then the module's
        (``with_kwargs`` ones see and may replace the keyword arguments too), the forward, the global
        forward hooks, then the module's. When anything raises, the ``always_call`` forward hooks
        that have not run yet run (their own errors only warned about), and the error goes on."""
        result = None
        called: set[int] = set()  # the always_call forward hooks already run
        stop = _recompute_stop[0]
        quiet = stop is not None and _past_stop(stop, (args, kwargs))
        try:
            pre_kwargs = hooks["forward_pre_kwargs"]
            pre_hooks = [] if quiet else [*_global_hooks["forward_pre"].items(), *hooks["forward_pre"].items()]
            for hook_id, hook in pre_hooks:
                if hook_id in pre_kwargs:
                    changed = hook(self, args, kwargs)
                    if changed is not None:
                        if not (isinstance(changed, tuple) and len(changed) == 2):
                            raise InvalidValueError(
                                f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                f"but got {changed}."
                            )
                        args, kwargs = changed
                else:
                    changed = hook(self, args)
                    if changed is not None:
                        args = changed if isinstance(changed, tuple) else (changed,)
            backward = None
            if hooks["backward"] or hooks["backward_pre"] or _global_hooks["backward"] or _global_hooks["backward_pre"]:
                # the hooks of this call, global ones first, as PyTorch takes them when the call starts
                backward = _BackwardHook(
                    self,
                    [*_global_hooks["backward"].values(), *hooks["backward"].values()],
                    [*_global_hooks["backward_pre"].values(), *hooks["backward_pre"].values()],
                )
                args = backward.setup_input_hook(args)
            result = self.forward(*args, **kwargs)
            if stop is not None and not quiet:
                quiet = _past_stop(stop, result)
            if (_global_hooks["forward"] or hooks["forward"]) and not quiet:
                with_kwargs, always = hooks["forward_kwargs"], hooks["forward_always"]
                global_kwargs, global_always = _global_flags["forward_kwargs"], _global_flags["forward_always"]
                for hook_id, hook in [*_global_hooks["forward"].items(), *hooks["forward"].items()]:
                    if hook_id in always or hook_id in global_always:
                        called.add(hook_id)
                    if hook_id in with_kwargs or hook_id in global_kwargs:
                        changed = hook(self, args, kwargs, result)
                    else:
                        changed = hook(self, args, result)
                    if changed is not None:
                        result = changed
            if backward is not None:
                result = backward.setup_output_hook(result)
            return result
        except Exception:
            self._call_always_called_hooks(hooks, args, kwargs, result, called)
            raise

    def _call_always_called_hooks(
        self, hooks: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, called: set[int]
    ) -> None:
        """After an error in a call: the ``always_call`` forward hooks not yet run, global ones first
        (PyTorch passes those no kwargs here, even when registered with_kwargs), each one's own error
        a warning."""
        for hook_id, hook in list(_global_hooks["forward"].items()):
            if hook_id in _global_flags["forward_always"] and hook_id not in called:
                try:
                    changed = hook(self, args, result)
                    if changed is not None:
                        result = changed
                except Exception as e:
                    warnings.warn(
                        "global module forward hook with ``always_call=True`` raised an exception that was "
                        f"silenced as another error was raised in forward: {e}",
                        stacklevel=3,
                    )
        for hook_id, hook in list(hooks["forward"].items()):
            if hook_id in hooks["forward_always"] and hook_id not in called:
                try:
                    if hook_id in hooks["forward_kwargs"]:
                        changed = hook(self, args, kwargs, result)
                    else:
                        changed = hook(self, args, result)
                    if changed is not None:
                        result = changed
                except Exception as e:
                    warnings.warn(
                        "module forward hook with ``always_call=True`` raised an exception that was "
                        f"silenced as another error was raised in forward: {e}",
                        stacklevel=3,
                    )

    def _hook_table(self, kind: str) -> OrderedDict[int, Any]:
        # made on first use: a module never hooked keeps the fast call path (no "_hooks" entry)
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = {kind: OrderedDict() for kind in HOOK_TABLES + FLAG_TABLES}
            object.__setattr__(self, "_hooks", hooks)
        table: OrderedDict[int, Any] = hooks[kind]
        return table

    # PyTorch's hook tables, hook id -> hook, in call order; what the register_*_hook calls fill and
    # their handles' remove() empties (pruning keeps its methods here, as PyTorch does).
    @property
    def _forward_pre_hooks(self) -> OrderedDict[int, Any]:
        return self._hook_table("forward_pre")

    @property
    def _forward_hooks(self) -> OrderedDict[int, Any]:
        return self._hook_table("forward")

    @property
    def _backward_hooks(self) -> OrderedDict[int, Any]:
        return self._hook_table("backward")

    @property
    def _backward_pre_hooks(self) -> OrderedDict[int, Any]:
        return self._hook_table("backward_pre")

    # hook id -> True for the hooks registered with_kwargs=True / always_call=True (PyTorch's tables)
    @property
    def _forward_pre_hooks_with_kwargs(self) -> OrderedDict[int, Any]:
        return self._hook_table("forward_pre_kwargs")

    @property
    def _forward_hooks_with_kwargs(self) -> OrderedDict[int, Any]:
        return self._hook_table("forward_kwargs")

    @property
    def _forward_hooks_always_called(self) -> OrderedDict[int, Any]:
        return self._hook_table("forward_always")

    def _add_hook(
        self, kind: str, hook: Callable[..., Any], prepend: bool, flags: tuple[str, ...] = ()
    ) -> RemovableHandle:
        if not callable(hook):
            raise ArgumentTypeError(f"{type(self).__name__}.register_{kind}_hook: expected a callable, got {hook!r}")
        table = self._hook_table(kind)
        extra = {"forward_pre": ("forward_pre_kwargs",), "forward": ("forward_kwargs", "forward_always")}.get(kind, ())
        handle = RemovableHandle(table, tuple(self._hook_table(f) for f in extra))
        table[handle.id] = hook
        for flag in flags:
            self._hook_table(flag)[handle.id] = True
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; a non-None result replaces the positional args.
        With ``with_kwargs=True``: ``hook(module, args, kwargs)``, returning None or ``(args, kwargs)``
        to replace both. ``prepend=True`` runs it before the hooks already registered.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> layer = nn.Identity()
            >>> handle = layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
            >>> layer(ds.tensor([1.0])), handle.remove(), layer(ds.tensor([1.0]))
            (tensor([2.]), None, tensor([1.]))
        """
        return self._add_hook("forward_pre", hook, prepend, ("forward_pre_kwargs",) if with_kwargs else ())

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
        With ``with_kwargs=True``: ``hook(module, args, kwargs, output)``. With ``always_call=True``
        the hook also runs when the forward (or an earlier hook) raised, with ``output`` None if the
        forward gave none; its own error is then a warning and the first error goes on.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> seen = []
            >>> model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
            >>> handle = model[0].register_forward_hook(lambda m, args, out: seen.append(out.shape))
            >>> _ = model(ds.randn(4, 3)); seen
            [downslope.Size([4, 2])]
        """
        flags = (("forward_kwargs",) if with_kwargs else ()) + (("forward_always",) if always_call else ())
        return self._add_hook("forward", hook, prepend, flags)

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to the
        module's tensor inputs are computed; a non-None result replaces ``grad_input``. As in PyTorch,
        ``grad_input`` has one entry per positional argument: None for a non-tensor, zeros of the
        input's shape for a tensor that needs no gradient (or that the loss does not reach);
        ``grad_output`` one per output, None where no gradient reached it. When no input requires
        grad the hook runs from the output side with a grad_input of Nones (and PyTorch's warning).
        The hooked module's outputs (and inputs, inside its forward) refuse in-place ops, as
        PyTorch's do: ``clone()`` first. Set up at each call of the module, so register it before
        the forward.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> seen = []
            >>> layer = nn.Linear(2, 1)
            >>> _ = layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi[0].shape, go[0].shape)))
            >>> layer(ds.randn(3, 2, requires_grad=True)).sum().backward(); seen
            [(downslope.Size([3, 2]), downslope.Size([3, 1]))]
        """
        return self._add_hook("backward", hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` before the module's gradients are computed; a non-None
        result replaces ``grad_output``."""
        return self._add_hook("backward_pre", hook, prepend)

    def register_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """PyTorch's deprecated name; it behaves as :meth:`register_full_backward_hook` here."""
        return self._add_hook("backward", hook, False)

    # ------------------------------------------------------------------ state_dict hooks
    def _state_hook_table(self, kind: str) -> OrderedDict[int, Any]:
        # kept apart from the forward/backward tables, so a module with only state hooks keeps the fast call path
        tables = self.__dict__.get("_state_hooks")
        if tables is None:
            tables = {k: OrderedDict() for k in ("save_pre", "save_post", "load_pre", "load_post")}
            object.__setattr__(self, "_state_hooks", tables)
        table: OrderedDict[int, Any] = tables[kind]
        return table

    @property
    def _state_dict_pre_hooks(self) -> OrderedDict[int, Any]:
        return self._state_hook_table("save_pre")

    @property
    def _state_dict_hooks(self) -> OrderedDict[int, Any]:
        return self._state_hook_table("save_post")

    @property
    def _load_state_dict_pre_hooks(self) -> OrderedDict[int, Any]:
        return self._state_hook_table("load_pre")

    @property
    def _load_state_dict_post_hooks(self) -> OrderedDict[int, Any]:
        return self._state_hook_table("load_post")

    def _add_state_hook(self, kind: str, hook: Callable[..., Any], what: str) -> RemovableHandle:
        if not callable(hook):
            raise ArgumentTypeError(f"{type(self).__name__}.{what}: expected a callable, got {hook!r}")
        table = self._state_hook_table(kind)
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, prefix, keep_vars)`` before this module's part of ``state_dict()`` is made.

        Example:
            >>> from downslope import nn
            >>> seen = []
            >>> model = nn.Sequential(nn.Linear(2, 2))
            >>> _ = model[0].register_state_dict_pre_hook(lambda m, prefix, keep_vars: seen.append(prefix))
            >>> _ = model.state_dict(); seen
            ['0.']
        """
        return self._add_state_hook("save_pre", hook, "register_state_dict_pre_hook")

    def register_state_dict_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, state_dict, prefix, local_metadata)`` after this module's part of
        ``state_dict()`` is made (its own entries and its children's); the hook may change
        ``state_dict`` in place and must return None.

        Example:
            >>> from downslope import nn
            >>> lin = nn.Linear(2, 2)
            >>> def drop_bias(module, state_dict, prefix, local_metadata):
            ...     del state_dict[prefix + "bias"]
            >>> _ = lin.register_state_dict_post_hook(drop_bias)
            >>> list(lin.state_dict())
            ['weight']
        """
        try:
            hook._from_public_api = True  # type: ignore[attr-defined]
        except AttributeError:  # a bound method or builtin: PyTorch would fail here too; keep the check below
            pass
        return self._add_state_hook("save_post", hook, "register_state_dict_post_hook")

    def _register_state_dict_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """PyTorch's older private post-hook: a non-None result of the root module's hook replaces the state dict."""
        if getattr(hook, "_from_public_api", False):
            raise StateError(
                "Cannot register the same function as the state dict post hook that was "
                "previously registered via register_state_dict_post_hook"
            )
        return self._add_state_hook("save_post", hook, "_register_state_dict_hook")

    def register_load_state_dict_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` before this module's entries are loaded by ``load_state_dict``.
        ``state_dict`` is a copy the hook may change (rename keys, convert old formats); appending to
        ``error_msgs`` makes the load fail.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> lin = nn.Linear(2, 1)
            >>> def rename(m, sd, prefix, *rest):
            ...     if prefix + "w" in sd:
            ...         sd[prefix + "weight"] = sd.pop(prefix + "w")
            >>> _ = lin.register_load_state_dict_pre_hook(rename)
            >>> lin.load_state_dict({"w": ds.ones(1, 2), "bias": ds.zeros(1)})
            <All keys matched successfully>
        """
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def _register_load_state_dict_pre_hook(
        self, hook: Callable[..., Any], with_module: bool = False
    ) -> RemovableHandle:
        """PyTorch's private form: the hook is called without the module unless ``with_module``."""
        if not callable(hook):
            raise ArgumentTypeError(
                f"{type(self).__name__}.register_load_state_dict_pre_hook: expected a callable, got {hook!r}"
            )
        wrapped = functools.partial(hook, self) if with_module else hook
        return self._add_state_hook("load_pre", wrapped, "register_load_state_dict_pre_hook")

    def register_load_state_dict_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, incompatible_keys)`` once this module and its children are loaded;
        the hook may change ``incompatible_keys.missing_keys`` / ``unexpected_keys`` in place (a strict
        load then checks what is left) and must return None.

        Example:
            >>> from downslope import nn
            >>> lin = nn.Linear(2, 1)
            >>> _ = lin.register_load_state_dict_post_hook(lambda m, keys: keys.missing_keys.clear())
            >>> lin.load_state_dict({"weight": lin.weight.detach()})
            <All keys matched successfully>
        """
        return self._add_state_hook("load_post", hook, "register_load_state_dict_post_hook")

    # ------------------------------------------------------------------ extra state
    def get_extra_state(self) -> Any:
        """Override (with :meth:`set_extra_state`) to save more than parameters and buffers: what it
        returns is stored in ``state_dict`` under ``prefix + "_extra_state"``.

        Example:
            >>> from downslope import nn
            >>> class Counter(nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.calls = 0
            ...     def get_extra_state(self):
            ...         return {"calls": self.calls}
            ...     def set_extra_state(self, state):
            ...         self.calls = state["calls"]
            >>> a, b = Counter(), Counter()
            >>> a.calls = 3
            >>> _ = b.load_state_dict(a.state_dict()); dict(a.state_dict()), b.calls
            ({'_extra_state': {'calls': 3}}, 3)
        """
        raise StateError(
            "Reached a code path in Module.get_extra_state() that should never be called: "
            "a module that saves extra state overrides get_extra_state() and set_extra_state()"
        )

    def set_extra_state(self, state: Any) -> None:
        """Override (with :meth:`get_extra_state`) to restore what ``get_extra_state`` saved; called by
        ``load_state_dict`` with the value under ``prefix + "_extra_state"``."""
        raise StateError(
            "Reached a code path in Module.set_extra_state() that should never be called: "
            "a module that loads extra state overrides get_extra_state() and set_extra_state()"
        )

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        """Put this module's own parameters, persistent buffers and extra state (not its children's)
        into ``destination`` (PyTorch's hook for subclasses that save differently)."""
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars or is_lazy(param) else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                destination[prefix + name] = buf if keep_vars or is_lazy(buf) else buf.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + EXTRA_STATE_KEY] = self.get_extra_state()

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Load this module's own parameters, persistent buffers and extra state (not its children's)
        from the entries of ``state_dict`` under ``prefix``, after running its load pre-hooks; keys it
        lacks or does not know are added to ``missing_keys`` / ``unexpected_keys``, and appending to
        ``error_msgs`` fails the load. PyTorch's hook for subclasses that migrate old checkpoints:
        ``load_state_dict`` calls each module's override (which usually renames keys in
        ``state_dict``, then calls ``super()._load_from_state_dict``). ``local_metadata`` is what
        ``state_dict()`` saved for this module under ``state_dict._metadata`` (its ``"version"``).

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> class Scale(nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.w = nn.Parameter(ds.zeros(2))
            ...     def _load_from_state_dict(self, state_dict, prefix, *args):
            ...         if prefix + "old_w" in state_dict:  # an older checkpoint's name
            ...             state_dict[prefix + "w"] = state_dict.pop(prefix + "old_w")
            ...         super()._load_from_state_dict(state_dict, prefix, *args)
            >>> model = nn.Sequential(Scale())
            >>> _ = model.load_state_dict({"0.old_w": ds.ones(2)}); model[0].w.tolist()
            [1.0, 1.0]
        """
        load_from_state_dict(self, state_dict, prefix, local_metadata, missing_keys, unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ registration
    def _check_initialized(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        # PyTorch's rules, in its order: a Parameter (re)registers a parameter whatever the name held
        # before; a parameter's, child's or buffer's name then only takes its own kind (or None).
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_initialized(name)
            self._forget(name, keep="_parameters")
            d.pop(name, None)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise ArgumentTypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' (nn.Parameter or None expected); "
                    "to change its values use `.data` or `.copy_()`"
                )
            self.register_parameter(name, None)
            return
        if isinstance(value, (list, tuple, dict)) and value and "_modules" in d and not name.startswith("_"):
            self._warn_plain_container(name, value)
        elif name in _REGISTRIES and isinstance(value, dict) and "_modules" in d:
            # A registry replaced by the caller (learn2learn's clone_module copies it, then writes entries):
            # keep attribute access in step with it, as PyTorch's lookup through the registries does.
            registry = _Registry(self, value)
            for key in list(d.get(name) or ()):
                if key not in registry and key in d:
                    del d[key]
            d.update(registry)
            object.__setattr__(self, name, registry)
            return
        modules = d.get("_modules")
        if isinstance(value, Module):
            self._check_initialized(name)
            self._forget(name, keep="_modules")
            modules = self._modules
            if _registration_hooks["module"]:
                value = registered("module", self, name, value)
            modules[name] = value
            self._mirror(name, value)
            return
        if modules is not None and name in modules:
            if value is not None:
                raise ArgumentTypeError(
                    f"cannot assign '{_typename(value)}' as child module '{name}' (nn.Module or None expected)"
                )
            value = registered("module", self, name, None) if _registration_hooks["module"] else None
            modules[name] = value
            self._mirror(name, value)
            return
        buffers = d.get("_buffers")
        if isinstance(value, (Buffer, UninitializedBuffer)) or (buffers is not None and name in buffers):
            self._check_initialized(name)
            if value is not None and not isinstance(value, Tensor):
                raise ArgumentTypeError(
                    f"cannot assign '{_typename(value)}' as buffer '{name}' (nn.Buffer, Tensor or None expected)"
                )
            if isinstance(value, (Buffer, UninitializedBuffer)):
                persistent = value.persistent
            else:
                persistent = name not in self._non_persistent
            if isinstance(value, Buffer):
                value = wrap_array(value.array)
            self.register_buffer(name, value, persistent=persistent)
            return
        object.__setattr__(self, name, value)

    def _mirror(self, name: str, value: Any) -> None:
        """Keep a registered entry as a plain attribute too (reads are then plain dict hits), unless the
        class defines the name: PyTorch keeps entries only in the registries, so ``self.parameters =
        nn.ParameterList(...)`` leaves ``self.parameters()`` the method (N-BEATS does this); a plain
        attribute of that name set earlier goes, as PyTorch removes it."""
        if _class_defines(type(self), name):
            self.__dict__.pop(name, None)
        else:
            self.__dict__[name] = value

    def _warn_plain_container(self, name: str, value: Any, pending: bool = True, stacklevel: int = 3) -> None:
        """Warn when a plain list, tuple or dict of layers holds layers this module does not register: as
        in PyTorch it stays a plain attribute, so their parameters are not in parameters(), state_dict()
        or the optimizer. That is sometimes the point (a teacher or an EMA copy kept out of training),
        more often a mistake. At the assignment (``pending``) the check is only noted: the layers may be
        registered next (fast.ai's ``self.layers = layers`` then ``add_module`` for each), so the warning
        comes from the first parameters() or state_dict() call (_check_plain_pending)."""
        from .containers import ModuleDict, ModuleList, Sequential

        if not isinstance(value, (list, tuple, dict)) or not value:
            return
        if isinstance(value, (list, tuple)):
            if not all(isinstance(v, Module) for v in value) or isinstance(self, (ModuleList, Sequential)):
                return
            wrapper, layers = "nn.ModuleList", list(value)
        elif all(isinstance(v, Module) for v in value.values()) and not isinstance(self, ModuleDict):
            wrapper, layers = "nn.ModuleDict", list(value.values())
        else:
            return
        registered = {id(m) for m in self.modules()}
        if all(id(m) in registered for m in layers):  # other names for layers registered already: nothing hidden
            return
        if not pending:
            warnings.warn(
                f"{type(self).__name__}.{name} is a plain {type(value).__name__} of layers: as in PyTorch their "
                f"parameters are not registered (not in parameters(), state_dict(), .to() or the optimizer); "
                f"wrap it in {wrapper}(...) to train them",
                UserWarning,
                stacklevel=stacklevel,
            )
            return
        key = id(self)
        entry = _plain_pending.get(key)
        if entry is None or entry[0]() is not self:
            entry = (weakref.ref(self, _pending_dropper(key)), [])
            _plain_pending[key] = entry
        if name not in entry[1]:
            entry[1].append(name)

    def __getattr__(self, name: str) -> Any:
        """Only reached when normal lookup fails (registered names are plain attributes here), or when
        called by name: ``self.__getattr__("level_1")`` is how some PyTorch code looks up a child, so
        it answers from the registries as PyTorch's does."""
        d = object.__getattribute__(self, "__dict__")
        for registry in _REGISTRIES:
            entries = d.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        if name in d:
            return d[name]
        message = f"'{type(self).__name__}' object has no attribute '{name}'"
        if name in _SCRIPT_MODULE_ONLY:  # torch.jit.script(net).save(...): the script gave back the module
            message += _NO_TORCHSCRIPT
        elif name in _KERAS_MODEL_ONLY:  # a Keras model's attribute: a Module is not one
            message += f" (a Keras model's; here {_KERAS_MODEL_ONLY[name]})"
        # name= and obj= keep Python's "Did you mean ...?" suggestions
        raise AttributeError(message, name=name, obj=self)

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        if "_parameters" in d and any(name in d[registry] for registry in _REGISTRIES):
            self._forget(name, keep=None)  # the registry takes the attribute with it
            d.pop(name, None)
            return
        object.__delattr__(self, name)

    def _forget(self, name: str, keep: str | None) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry != keep:
                self.__dict__[registry].pop(name, None)
        if keep != "_buffers":
            self._non_persistent.discard(name)

    def _check_new_name(self, name: Any, kind: str, registry: Mapping[str, Any]) -> None:
        """PyTorch's checks of a name to register: a non-empty string without a dot that is not
        already an attribute of another kind (a method, a plain attribute, a parameter when
        registering a buffer...), so nothing is silently replaced."""
        if not isinstance(name, str):
            raise ArgumentTypeError(f"{kind} name should be a string. Got {_typename(name)}")
        if "." in name:
            got = f", got: {name}" if kind == "module" else ""
            raise StateDictError(f'{kind} name can\'t contain "."{got}')
        if name == "":
            raise StateDictError(f'{kind} name can\'t be empty string ""')
        if name not in registry and (name in self.__dict__ or hasattr(type(self), name)):
            raise StateDictError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, e.g. a disabled bias) under ``name``.

        As in PyTorch, a name that already holds something else (a buffer, a child module, a plain
        attribute or a method) is refused with a KeyError rather than replaced.

        Example:
            >>> import downslope as ds
            >>> m = ds.nn.Module()
            >>> m.register_parameter("scale", ds.nn.Parameter(ds.ones(2)))
            >>> [name for name, _ in m.named_parameters()]
            ['scale']
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_new_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentTypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' (nn.Parameter or None required)"
            )
        if param is not None and _registration_hooks["parameter"]:
            param = registered("parameter", self, name, param)
        self._parameters[name] = param
        self._mirror(name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not trained but is saved in ``state_dict`` (unless ``persistent=False``).

        As in PyTorch, a name that already holds something else (a parameter, a child module, a
        plain attribute or a method) is refused with a KeyError rather than replaced.

        Example:
            >>> import downslope as ds
            >>> m = ds.nn.Module()
            >>> m.register_buffer("count", ds.zeros(1))
            >>> list(m.state_dict())
            ['count']
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_new_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"cannot assign '{_typename(tensor)}' object to buffer '{name}' (Tensor or None required)"
                + (
                    "; downslope's sparse COO tensors cannot be buffers or parameters (torch allows sparse "
                    "buffers): keep it as a plain attribute (self.adj = adj, as LightGCN does) and move it "
                    "with .to(device) where the model moves"
                    if getattr(tensor, "is_sparse", False) is True
                    else ""
                )
            )
        if _registration_hooks["buffer"]:
            tensor = registered("buffer", self, name, tensor)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        self._mirror(name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child under ``name`` (same as assigning the attribute); a name
        with a dot, an empty name or one that already holds something else is refused (KeyError).

        Example:
            >>> from downslope import nn
            >>> m = nn.Module()
            >>> m.add_module("head", nn.Linear(2, 1))
            >>> [name for name, _ in m.named_children()]
            ['head']
        """
        if module is not None and not isinstance(module, Module):
            raise ArgumentTypeError(f"{_typename(module)} is not a Module subclass")
        self._check_initialized(name)
        self._check_new_name(name, "module", self._modules)
        if _registration_hooks["module"]:
            module = registered("module", self, name, module)
        self._modules[name] = module
        self._mirror(name, module)

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

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Set the descendant named by a dotted path (e.g. swap a classifier head), as PyTorch's: the
        parent must exist; a new name is added unless ``strict=True``, which only replaces an existing
        attribute (AttributeError otherwise). An existing attribute of that name must be a Module.

        Example:
            >>> from downslope import nn
            >>> m = nn.Sequential(nn.Linear(2, 2))
            >>> m.set_submodule("0", nn.Linear(2, 3)); m.set_submodule("head", nn.ReLU())
            >>> [name for name, _ in m.named_children()]
            ['0', 'head']
        """
        if target == "":
            raise ArgumentError("set_submodule: cannot set the submodule without a target name (got target='')")
        if not isinstance(module, Module):
            raise ArgumentError(f"set_submodule({target!r}): `module` is not an nn.Module, found {type(module)}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        present = hasattr(parent, name)
        if strict and not present:
            raise AttributeError(
                f"{parent._get_name()} has no attribute `{name}` (set_submodule({target!r}, strict=True) "
                "only replaces an existing submodule)"
            )
        if present and not isinstance(getattr(parent, name), Module):
            raise AttributeError(f"`{name}` is not an nn.Module (set_submodule({target!r}))")
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
        if _plain_pending:
            self._check_plain_pending()
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def _check_plain_pending(self) -> None:
        """The plain containers of layers noted at assignment in this module's tree: a warning for each
        whose layers are still not all registered (each checked once)."""
        # the warning points at the first caller outside downslope (the optimizer's parameters() comes
        # from inside its constructor): stack levels counted from _warn_plain_container's caller, this frame
        level, frame = 2, sys._getframe(0)
        while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            level, frame = level + 1, frame.f_back
        for mod in list(self.modules()):
            entry = _plain_pending.pop(id(mod), None)
            if entry is not None and entry[0]() is mod:
                for name in entry[1]:  # the value held now: a list replaced by a ModuleList is registered
                    mod._warn_plain_container(name, mod.__dict__.get(name), pending=False, stacklevel=level)

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
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def _named_members(self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool) -> Iterator[Any]:
        """(dotted name, tensor) of every module's ``_parameters`` or ``_buffers`` (PyTorch's helper)."""
        seen: set[int] = set()
        mods = self.named_modules(prefix, remove_duplicate=remove_duplicate) if recurse else iter([(prefix, self)])
        for mod_name, mod in mods:
            for name, t in getattr(mod, kind).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mod_name}.{name}" if mod_name else name), t

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
            # ValueError as PyTorch's, which ported code catches
            raise ArgumentError(
                f"{type(self).__name__}.train(mode): training mode is expected to be boolean, got {mode!r}"
            )
        object.__setattr__(self, "training", mode)
        for child in self.children():  # each child's own train(), as PyTorch's: overrides run (a frozen
            child.train(mode)  # BatchNorm kept in eval, LoRA merging its weights on eval())
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
            p.__dict__.pop("grad_rows", None)  # an Embedding(sparse=True)'s note of the rows in this gradient
            if not set_to_none and zero_rows_(p._grad):
                continue  # a gradient held as rows (Embedding(sparse=True)) keeps none: no table of zeros
            if set_to_none or p.grad.requires_grad or not p.grad.array.flags.writeable:
                p._grad = None  # the slot: None needs none of the setter's checks
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
        from ...device import is_device_like

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
            self._cast(dtype, where, complex_params=True)
        return self

    def _move(self: M, device: Any, where: str) -> M:
        """Move every parameter, gradient and buffer to ``device`` in place: the Parameter objects stay
        the same, so an optimizer built before or after sees them (its flat buffers follow on its next step)."""
        from ...device import resolve
        from ...devices import to_device

        target = resolve(device, where)

        def move(t: Tensor) -> Tensor:
            if is_lazy(t):
                t._retype(device=target)  # type: ignore[attr-defined]
                return t
            moved = to_device(t.array, target)
            return t if moved is t.array else wrap_array(moved)

        return self._apply(move)

    def _cast(self: M, dtype: Any, where: str, complex_params: bool = False) -> M:
        """Cast floating parameters and buffers to ``dtype``. ``complex_params`` (torch's ``to(dtype)``):
        complex ones too, and ``dtype`` may be complex; without it (``float()``, ``double()``, ``half()``)
        complex tensors stay as they are, as in torch."""
        target = backend.as_dtype(dtype)
        if not (backend.is_floating(target) or (complex_params and target.kind == "c")):
            also = " (or a complex one)" if complex_params else ""
            raise ArgumentTypeError(f"{where}: expected a floating dtype, got {target}{also}")

        def cast(t: Tensor) -> Tensor:
            if is_lazy(t):
                t._retype(dtype=target)  # type: ignore[attr-defined]
            elif t.array.dtype != target and (
                backend.is_floating(t.array.dtype) or (complex_params and t.array.dtype.kind == "c")
            ):
                if t.array.dtype.kind == "c" and target.kind != "c":
                    warnings.warn(
                        "Casting complex values to real discards the imaginary part", UserWarning, stacklevel=4
                    )
                    return wrap_array(np.real(t.array).astype(target))  # np.real: device arrays dispatch it
                return wrap_array(t.array.astype(target))
            return t

        return self._apply(cast)

    def _complex_parameters(self: M, dtype: np.dtype, where: str) -> M:
        """A layer built with real parameters made complex (``dtype``), as torch's ``Layer(dtype=complex64)``:
        the real parts are the layer's initial values, the imaginary parts a second ``reset_parameters()`` draw
        (torch's uniform_/normal_ fill both parts of a complex tensor); a value the second draw repeats (a
        constant: ones, zeros) is no draw, and its imaginary part is 0. Floating buffers become complex too."""
        # a lazy layer's parameters have no values yet: retyped by the cast below, drawn when first called
        first = {id(p): p.array.copy() for p in self.parameters() if not is_lazy(p)}
        reset = getattr(self, "reset_parameters", None)
        if first and callable(reset):
            reset()

        def combine(t: Tensor) -> Tensor:
            re = first.get(id(t))
            if re is None:
                return t
            im = t.array if not np.array_equal(re, t.array) else np.zeros_like(re)
            return wrap_array((re + 1j * im).astype(dtype))

        self._apply(combine)
        return self._cast(dtype, where, complex_params=True)

    def _apply(self: M, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> M:
        """Apply ``fn`` (a tensor to its cast or moved version) to every parameter, its gradient and
        every buffer, children first: PyTorch's private method behind ``to``, ``double``, ``half``,
        ``cpu``..., which models override to keep a cache or a norm in float32 (each child's own
        ``_apply`` runs). Parameters and buffers stay the same objects and take the new values in
        place (an optimizer keeps holding them); a plain tensor attribute is the override's to handle.

        Example:
            >>> import downslope as ds
            >>> from downslope import nn
            >>> lin = nn.Linear(2, 2)._apply(lambda t: t.double())
            >>> lin.weight.dtype
            dtype('float64')
        """
        from ...autograd import no_grad

        if recurse:
            for child in self.children():
                child._apply(fn)
        with no_grad():
            for p in self._parameters.values():
                if p is None:
                    continue
                applied = fn(p)
                if applied is not p:
                    p.array = applied.array
                    grad = p._grad
                    if grad is not None:  # along with the parameter, as PyTorch's _apply does
                        grad.array = fn(grad).array
            for b in self._buffers.values():
                if b is not None:
                    applied = fn(b)
                    if applied is not b:
                        b.array = applied.array
        return self

    def to_empty(self: M, *, device: Any, recurse: bool = True) -> M:
        """Give every parameter and buffer new, uninitialized memory of its shape and dtype on ``device``
        (PyTorch's way to materialize a model built on the "meta" device; the values are garbage until
        loaded or initialized). Parameters stay the same objects; ``recurse=False`` does only this
        module's own. Uninitialized (lazy) parameters just move.

        Example:
            >>> from downslope import nn
            >>> lin = nn.Linear(2, 3).to_empty(device="cpu")
            >>> lin.weight.shape, lin.weight.requires_grad
            (downslope.Size([3, 2]), True)
        """
        import numpy as np

        from ...device import resolve
        from ...devices import to_device

        target = resolve("cpu" if device is None else device, f"{type(self).__name__}.to_empty")
        mods = list(self.modules()) if recurse else [self]
        for m in mods:
            for t in [*m._parameters.values(), *m._buffers.values()]:
                if t is None:
                    continue
                if is_lazy(t):
                    t._retype(device=target)  # type: ignore[attr-defined]
                    continue
                t.array = to_device(np.empty(t.array.shape, t.array.dtype), target)  # host: made here, then moved
                t._grad = None  # the slot: a gradient of the old values means nothing now
        return self

    def cpu(self: M) -> M:
        """The module itself, its parameters and buffers moved to host memory (in place)."""
        return self._move("cpu", f"{type(self).__name__}.cpu")

    def cuda(self: M, device: Any = None) -> M:
        """The module itself, moved in place to a CUDA GPU (CuPy); a clear error when there is none."""
        return self._move("cuda" if device is None else device, f"{type(self).__name__}.cuda")

    def type(self: M, dst_type: Any) -> M:
        """Cast every floating (and complex) parameter and buffer to ``dst_type``, a floating or complex dtype."""
        return self._cast(dst_type, f"{type(self).__name__}.type", complex_params=True)  # as torch's t.type()

    def float(self: M) -> M:
        """Cast floating parameters and buffers to float32."""
        return self._cast(backend.float32, f"{type(self).__name__}.float")

    def double(self: M) -> M:
        """Cast floating parameters and buffers to float64."""
        return self._cast(backend.float64, f"{type(self).__name__}.double")

    def half(self: M) -> M:
        """Cast floating parameters and buffers to float16."""
        return self._cast(backend.float16, f"{type(self).__name__}.half")

    def share_memory(self: M) -> M:
        """The module itself, unchanged. PyTorch moves the parameters' storage to shared memory so that
        worker processes see one copy; downslope's arrays are ordinary NumPy (or CuPy) arrays of this
        process, and its DataLoader workers read in this process, so every reader already sees the same
        arrays: there is nothing to move.

        Example:
            >>> from downslope import nn
            >>> m = nn.Linear(2, 2)
            >>> m.share_memory() is m
            True
        """
        return self

    def bfloat16(self: M) -> M:
        """Refused with the reason, as ``module.to(ds.bfloat16)`` is: NumPy has no bfloat16 type.
        (bfloat16 checkpoints still load: their values widen exactly to float32.)

        Example:
            >>> from downslope import nn
            >>> nn.Linear(2, 2).bfloat16()  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            downslope.errors.ArgumentTypeError: unsupported dtype bfloat16: NumPy has no bfloat16 type, ...
        """
        return self._cast(backend.bfloat16, f"{type(self).__name__}.bfloat16")

    # ------------------------------------------------------------------ state
    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Any]:
        """Every parameter and persistent buffer as ``name -> Tensor``: detached tensors that share
        the module's memory, as in PyTorch. They follow training (an optimizer's step writes the
        parameters in place) and writing into them (``sd[k].copy_(v)``) writes the module; to keep a
        snapshot, clone them: ``{k: v.clone() for k, v in model.state_dict().items()}``. (An optimizer
        moves its parameters into one flat buffer; the tensors taken before it was built move along.)

        PyTorch's keywords: ``keep_vars=True`` gives the Parameter and buffer Tensors themselves;
        ``destination`` is a dict to fill (and return); ``prefix`` is put before every key.

        Example:
            >>> from downslope import nn
            >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
            >>> sd = model.state_dict()
            >>> {k: tuple(v.shape) for k, v in sd.items()}
            {'0.weight': (3, 2), '0.bias': (3,)}
            >>> _ = sd["0.bias"].fill_(1.0)  # shares memory with the module
            >>> model[0].bias.tolist()
            [1.0, 1.0, 1.0]
        """
        if args:  # PyTorch's old positional form: state_dict(destination, prefix, keep_vars)
            if len(args) > 3 or destination is not None:
                raise ArgumentTypeError("state_dict: expected at most (destination, prefix, keep_vars)")
            destination, *rest = args
            prefix = rest[0] if rest else prefix
            keep_vars = rest[1] if len(rest) > 1 else keep_vars
        if _plain_pending:
            self._check_plain_pending()
        out: Any = destination
        if out is None:
            out = OrderedDict()
            out._metadata = OrderedDict()  # each module's {"version": ...}, by its prefix (PyTorch's)
        if not _customized_state(self):
            metadata = getattr(out, "_metadata", None)
            if metadata is not None:
                for mod_name, mod in self.named_modules(remove_duplicate=False):
                    metadata[(f"{prefix}{mod_name}." if mod_name else prefix)[:-1]] = {"version": type(mod)._version}
            for key, tensor in named_state(self, prefix):
                out[key] = tensor if keep_vars or is_lazy(tensor) else tensor.detach()
            return out
        return save_with_hooks(self, out, prefix, keep_vars)

    def _state_tensors(self) -> dict[str, Tensor]:
        return dict(named_state(self))

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False, *, allow_nonfinite: bool = False
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers (in place).

        With ``strict`` (the default) every key must match: missing or unexpected keys raise a
        KeyError listing them. A shape mismatch always raises, naming the key and both shapes.
        Values are cast to each parameter's dtype. Returns the missing and unexpected keys.
        With ``assign=True`` (PyTorch's option) the module adopts the given values instead: each
        parameter becomes a Parameter around the given array (its dtype and memory; ``requires_grad``
        kept from the parameter it replaces) and each buffer the given tensor, so an optimizer built
        before the load holds the old parameters (build it afterwards, as in PyTorch).

        Only real numbers are accepted: a complex, object or string array raises
        :class:`CheckpointError` naming the key (casting would silently drop the imaginary part).
        NaN or infinite values in a parameter (NaN in a buffer, which may hold an attention mask's
        -inf) raise :class:`CheckpointError` naming the key too, since a model that computes NaN is
        never what was meant, unless ``allow_nonfinite=True`` (e.g. to inspect the weights of a run
        that diverged). Non-finite entries the module already holds, the same value at the same
        place, load without it: a constant kept on purpose (``Parameter(tensor([-inf]),
        requires_grad=False)``) reloads from the module's own ``state_dict``, while a weight that is
        finite in the module and NaN or infinite in the file is still refused. A shape mismatch raises :class:`ShapeError` (a ``RuntimeError``, as in
        PyTorch). Nothing is written unless every key passes.

        Example:
            >>> from downslope import nn
            >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
            >>> b.load_state_dict(a.state_dict())
            <All keys matched successfully>
            >>> bool((a.weight.array == b.weight.array).all())
            True
        """
        if not isinstance(state_dict, Mapping):
            raise ArgumentTypeError(
                f"load_state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}"
            )
        where = f"load_state_dict into {type(self).__name__}"
        if _customized_state(self, loading=True):
            return load_with_hooks(self, state_dict, strict, assign, allow_nonfinite, where)
        own = self._state_tensors()
        missing, unexpected = check_keys(where, own, state_dict, strict)
        # Check every key before writing any, so a failed load leaves the module unchanged.
        buffers = frozenset(name for name, _ in self.named_buffers())
        arrays = checked_arrays(where, own, state_dict, allow_nonfinite, buffers)
        if assign:
            assign_into(self, state_dict, arrays, where)
        else:
            copy_into(own, arrays)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The settings shown inside this module's parentheses (override in subclasses)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        """PyTorch's layout: ``extra_repr()`` inside the parentheses (on its own lines when it has
        several or the module has children), then each child as ``(name): repr``, indented.

        Example:
            >>> from downslope import nn
            >>> print(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
            Sequential(
              (0): Linear(in_features=4, out_features=3, bias=True)
              (1): ReLU()
            )
        """
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_addindent(repr(m), 2)}" for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self) -> Iterable[str]:
        return sorted(set(super().__dir__()))
