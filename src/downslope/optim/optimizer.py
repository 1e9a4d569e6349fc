"""The Optimizer base: param groups, flat buffers, one chained transform, state_dict.

PyTorch's interface (``param_groups`` as dicts filled from ``defaults``, ``add_param_group``,
``zero_grad``, ``step(closure)``, ``state_dict``/``load_state_dict`` with parameters referenced by
position) over Optax-style math (``transforms/``).

Fast path (the buffers live in ``buckets.py``). At construction the parameters of each group (of one dtype) are copied into one
contiguous flat buffer and each parameter's ``.data`` is re-pointed to a view of it, so the model
sees every update without copies. A step gathers the gradients with one ``np.concatenate`` into a
flat gradient buffer and runs each transform as a few in-place NumPy calls over the whole group.
Parameters whose ``.grad`` is None are skipped as in PyTorch: neither they nor their state move
(the step then works on the gathered subset). If something replaces a parameter's ``.data`` (e.g.
loading weights by assignment), the next step notices and copies it back into the buffer.

Clipping options (``clip_value=``, ``clip_norm=``) act on the gradients of all groups together,
before anything else (maximize, weight decay, moments): first each coordinate is clipped to
``[-clip_value, clip_value]``, then the global L2 norm is scaled down to at most ``clip_norm``,
exactly as ``clip_grad_value_`` then ``clip_grad_norm_`` would, but without touching ``.grad``.
With ``error_if_nonfinite=True`` a step whose gradients hold NaN or inf raises before any
parameter or state changes (with or without clipping): failing fast beats a silently broken run.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import types
import warnings
import weakref
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from .. import backend
from ..autograd import enable_grad, no_grad, set_grad_enabled
from ..devices import device_of, is_array, to_device, to_host
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    InvalidValueError,
    ShapeError,
    StateDictError,
    StateError,
    UnimplementedError,
)
from ..nn.module.parameter import is_lazy
from ..row_grads import zero_rows_
from ..tensor import Tensor, mark_written, wrap_array
from .buckets import (
    FlatBucket,
    InPlaceBucket,
    RepeatedBucket,
    reset_parameter_state,
    shared_parameters,
    state_slots,
    write_parameter_state,
)
from .transforms import GradientTransformation, clip_to_max_norm_, identity

if TYPE_CHECKING:
    from typing_extensions import Unpack


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required: Any = _Required()


# ---------------------------------------------------------------------- hyperparameter checks
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _lr_as_number(owner: str, value: Any) -> Any:
    """A learning rate given as a one-element tensor (PyTorch accepts ``SGD(params, lr=torch.tensor(0.1))``):
    a Tensor is kept as given, as PyTorch keeps it in the groups (``group['lr'].fill_(...)`` and the
    schedulers write into it, each step reads it); an array as the Python float it holds. Anything
    else is returned as it is, for the optimizer's own check."""
    if isinstance(value, (Tensor, np.ndarray)):
        array = value.array if isinstance(value, Tensor) else value
        if array.size != 1:
            raise ArgumentError(f"{owner}: Tensor lr must be 1-element, got shape {tuple(array.shape)}")
        if isinstance(value, Tensor):
            return value
        return float(to_host(array).reshape(()))  # host: a hyperparameter, read once
    return value


def _lr_value(lr: Tensor) -> float:
    """A Tensor lr's number, read by each step (PyTorch's CPU lr tensor is read as a number too)."""
    return float(to_host(lr.detach().array).reshape(()))  # host: the user keeps the lr in a Tensor


def _with_number_lr(group: dict[str, Any]) -> dict[str, Any]:
    """``group`` as the checks read it: a Tensor lr as its number."""
    lr = group.get("lr")
    return dict(group, lr=_lr_value(lr)) if isinstance(lr, Tensor) else group


def _hyper_as_number(owner: str, key: str, value: Any) -> Any:
    """A hyperparameter given as one-element tensors (PyTorch accepts ``betas=(torch.tensor(0.9),
    torch.tensor(0.999))``, ``weight_decay=torch.tensor(0.01)``) as the Python numbers they hold,
    in a tuple or list too; anything else as it is, for the optimizer's own check."""
    if isinstance(value, (tuple, list)) and any(isinstance(v, (Tensor, np.ndarray)) for v in value):
        return type(value)(_hyper_as_number(owner, f"{key}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, (Tensor, np.ndarray)):
        array = value.detach().array if isinstance(value, Tensor) else value
        if array.size != 1:
            raise ArgumentError(f"{owner}: Tensor {key} must be 1-element, got shape {tuple(array.shape)}")
        number = to_host(array).reshape(()).item()  # host: a hyperparameter, read once
        return float(number) if isinstance(number, float) else number  # host: a Python number already
    return value


class HyperparameterTypeError(ArgumentTypeError, ArgumentError):
    """A hyperparameter that is not a number (``SGD(params, lr="0.1")``, ``lr=None``): a TypeError, as
    PyTorch raises there, and still the ValueError (ArgumentError) these checks raised before."""


def _invalid(owner: str, name: str, value: Any, expected: str) -> ArgumentError:
    """The error for a hyperparameter outside its range: a HyperparameterTypeError when it is not a number."""
    message = f"{owner}: invalid {name}={value!r}; expected {expected}"
    if _is_number(value):
        return ArgumentError(message)
    return HyperparameterTypeError(f"{message}, got a {type(value).__name__}")


def check_nonnegative(owner: str, name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a finite number >= 0 (also a TypeError when it is no number)."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise _invalid(owner, name, value, "a finite number >= 0")


def check_unit_interval(owner: str, name: str, value: Any, closed_right: bool = False) -> None:
    """Raise ValueError unless ``0 <= value < 1`` (``<= 1`` with ``closed_right``; also a TypeError when
    ``value`` is no number)."""
    ok = _is_number(value) and 0.0 <= value and (value <= 1.0 if closed_right else value < 1.0)
    if not ok:
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise _invalid(owner, name, value, f"a number in {interval}")


def check_betas(owner: str, betas: Any) -> None:
    """Raise ValueError unless ``betas`` is a pair of numbers in [0, 1)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ArgumentError(f"{owner}: invalid betas={betas!r}; expected a pair (beta1, beta2) with each in [0, 1)")
    for i, b in enumerate(betas):
        check_unit_interval(owner, f"betas[{i}]", b)


class OptimizerOptions(TypedDict, total=False):
    """Options every optimizer takes besides its own hyperparameters (keyword-only).

    ``clip_value``/``clip_norm`` clip all groups' gradients before the update (see the module
    docstring), ``error_if_nonfinite`` raises on NaN/inf gradients before anything changes, and
    ``flat=False`` runs the transforms per parameter instead of over flat buffers.
    """

    clip_norm: float | None
    clip_value: float | None
    error_if_nonfinite: bool
    flat: bool
    # PyTorch's choices of kernel (multi-tensor, fused, CUDA-graph capturable): they change how
    # PyTorch runs an update, not the update, so they are accepted and ignored here. A differentiable
    # step (differentiable=True) is refused: downslope's step is not recorded.
    foreach: bool | None
    fused: bool | None
    capturable: bool
    differentiable: bool


# The kernel flags each of PyTorch's optimizers keeps in its param groups, in PyTorch's order:
# accepted, kept in the groups (so state_dict() shows what PyTorch's shows) and ignored.
_TORCH_FLAGS: dict[str, tuple[str, ...]] = {
    "SGD": ("foreach", "differentiable", "fused"),
    "Adam": ("foreach", "capturable", "differentiable", "fused"),
    "AdamW": ("foreach", "capturable", "differentiable", "fused"),
    "Adagrad": ("foreach", "differentiable", "fused"),
    "Adadelta": ("capturable", "foreach", "differentiable"),
    "Adamax": ("foreach", "differentiable", "capturable"),
    "ASGD": ("foreach", "differentiable", "capturable"),
    "NAdam": ("foreach", "capturable", "differentiable"),
    "RAdam": ("foreach", "capturable", "differentiable"),
    "RMSprop": ("capturable", "foreach", "differentiable"),
    "Rprop": ("foreach", "differentiable", "capturable"),
}
_FLAG_DEFAULTS: dict[str, Any] = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}


def _torch_flags(cls: type) -> tuple[str, ...]:
    """The kernel flags of the downslope optimizer ``cls`` is (or derives from), else none."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("downslope.optim") and klass.__name__ in _TORCH_FLAGS:
            return _TORCH_FLAGS[klass.__name__]
    return ()


def _check_kernel_flags(cls: type, options: Mapping[str, Any]) -> None:
    """Refuse the kernel flags PyTorch's class does not take (``SGD(capturable=...)`` is a TypeError
    there) and ``differentiable=True``, whose recorded step downslope does not build."""
    flags = _torch_flags(cls)
    if flags:
        for flag in _FLAG_DEFAULTS:
            if flag in options and flag not in flags:
                raise ArgumentTypeError(
                    f"{cls.__name__}.__init__() got an unexpected keyword argument {flag!r} "
                    f"(as in PyTorch, {cls.__name__} takes {', '.join(flags)})"
                )
    if options.get("differentiable"):
        raise _not_differentiable(cls.__name__)
    if "fused" in flags and options.get("fused") and options.get("foreach"):
        # PyTorch refuses the pair when the optimizer is built; a program written here must run there
        raise InvalidValueError(
            f"{cls.__name__}: `fused` and `foreach` cannot be `True` together, got fused={options['fused']!r} "
            f"and foreach={options['foreach']!r} (PyTorch raises too); set at most one (downslope ignores both)"
        )


def check_tensor_hyper_with_foreach(owner: str, name: str, value: Any, options: Mapping[str, Any]) -> None:
    """PyTorch's Adam refuses a Tensor ``lr`` or ``betas[i]`` with ``foreach=True`` unless ``capturable``:
    refused here too (downslope ignores both flags), so that a program written here runs there."""
    if isinstance(value, Tensor) and options.get("foreach") and not options.get("capturable"):
        raise ArgumentError(
            f"{owner}: {name} as a Tensor is not supported for capturable=False and foreach=True (PyTorch "
            f"raises too), got {name}={value!r} with foreach={options['foreach']!r}; pass {name} as a float, "
            "or leave foreach unset"
        )


def _not_differentiable(name: str) -> UnimplementedError:
    return UnimplementedError(
        f"{name}: differentiable=True is not supported: downslope's step updates the parameters in place "
        "outside the graph, so no gradient flows through it; leave differentiable=False, or write the update "
        "by hand with out-of-place ops (p = p - lr * g) to differentiate through it"
    )


def _reject_unknown_options(cls: type, options: dict[str, Any]) -> None:
    """Raise TypeError naming unknown keyword options and listing the valid ones."""
    unknown = sorted(set(options) - set(OptimizerOptions.__annotations__))
    if unknown:
        own = [p for p in inspect.signature(cls).parameters if p not in ("self", "params", "options")]
        valid = own + [o for o in OptimizerOptions.__annotations__ if o not in own]
        raise ArgumentTypeError(
            f"{cls.__name__} got unknown option(s) {unknown}; valid options are: {', '.join(valid)}"
        )


# ---------------------------------------------------------------------- hooks
class RemovableHandle:
    """What the ``register_*_hook`` methods return: ``handle.remove()`` unregisters the hook (also on
    leaving a ``with handle:`` block), as ``torch.utils.hooks.RemovableHandle``.

    Example:
        >>> import downslope as ds
        >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
        >>> handle = opt.register_step_post_hook(lambda opt, args, kwargs: print("stepped"))
        >>> opt.step()
        stepped
        >>> handle.remove(); opt.step()
    """

    next_id: int = 0

    def __init__(self, hooks_dict: dict[int, Any]) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict) if _weakrefable(hooks_dict) else (lambda: hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1

    def remove(self) -> None:
        hooks = self.hooks_dict_ref()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


class _HookTable(OrderedDict[int, Any]):
    """An ordered table of hooks that a handle refers to weakly (a plain OrderedDict takes no weak reference)."""


def _register(table: OrderedDict[int, Any], hook: Any, prepend: bool, what: str) -> RemovableHandle:
    if not callable(hook):
        raise ArgumentTypeError(f"{what}: expected a callable hook, got {type(hook).__name__}")
    handle = RemovableHandle(table)
    table[handle.id] = hook
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


_global_optimizer_pre_hooks: OrderedDict[int, Any] = _HookTable()
_global_optimizer_post_hooks: OrderedDict[int, Any] = _HookTable()


def register_optimizer_step_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register a step pre hook run by every optimizer before its own (PyTorch's global hook):
    ``hook(optimizer, args, kwargs)`` returns None, or new ``(args, kwargs)`` for the step (``args``
    starts with the optimizer).

    Example:
        >>> import downslope as ds
        >>> handle = ds.optim.optimizer.register_optimizer_step_pre_hook(lambda opt, args, kwargs: print(type(opt).__name__))
        >>> ds.optim.Adam([ds.ones(1, requires_grad=True)]).step()
        Adam
        >>> handle.remove()
    """
    return _register(_global_optimizer_pre_hooks, hook, False, "register_optimizer_step_pre_hook")


def register_optimizer_step_post_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register a step post hook run by every optimizer after its own (PyTorch's global hook):
    ``hook(optimizer, args, kwargs)``, its result ignored.

    Example:
        >>> import downslope as ds
        >>> handle = ds.optim.optimizer.register_optimizer_step_post_hook(lambda opt, args, kwargs: print("done"))
        >>> ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1).step()
        done
        >>> handle.remove()
    """
    return _register(_global_optimizer_post_hooks, hook, False, "register_optimizer_step_post_hook")


_HOOK_TABLES = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


def _hooks_of(opt: Any, name: str) -> Any:
    """The hook table ``name`` of ``opt`` (empty for a subclass that never called Optimizer.__init__)."""
    table = opt.__dict__.get(name)
    return () if table is None else table.values()


def _hooked_step(func: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` with the step hooks around it, as PyTorch wraps every optimizer's ``step``: global
    then own pre hooks, the step, own then global post hooks. A step called from within a hooked
    step of the same optimizer (``super().step()``) runs them no second time."""

    @functools.wraps(func)
    def step(self: Any, *args: Any, **kwargs: Any) -> Any:
        table = self.__dict__
        if table.get("_torch_style") is False and self._groups_edited():  # before any subclass's step reads them
            self._rebuild_groups()
        if table.get("_lazy_params"):  # before any subclass's step reads the buckets
            self._build_lazy_buckets()
        if table.get("_hooks_busy_step") or table.get("_hooks_off"):
            return _with_number_lrs(self, func, (self, *args), kwargs)
        full: tuple[Any, ...] = (self, *args)
        for hook in itertools.chain(_global_optimizer_pre_hooks.values(), _hooks_of(self, "_optimizer_step_pre_hooks")):
            result = hook(self, full, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise StateError(
                        f"{type(self).__name__}.step: a step pre hook must return None or a tuple "
                        f"(new_args, new_kwargs), got {type(result).__name__}"
                    )
                full, kwargs = result
        table["_hooks_busy_step"] = True
        try:
            out = _with_number_lrs(self, func, full, kwargs)
        finally:
            table.pop("_hooks_busy_step", None)
        for hook in itertools.chain(
            _hooks_of(self, "_optimizer_step_post_hooks"), _global_optimizer_post_hooks.values()
        ):
            hook(self, full, kwargs)
        return out

    step._optimizer_hooked = True  # type: ignore[attr-defined]
    return step


def _with_number_lrs(opt: Any, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)`` (a step) with each Tensor lr in the groups read as its number while
    it runs (the update rules read numbers), the Tensor put back after: it stays the user's."""
    swapped = None
    groups = opt.__dict__.get("param_groups")
    if type(groups) is list:
        for group in groups:
            lr = group.get("lr") if type(group) is dict else None
            if isinstance(lr, Tensor):
                swapped = [] if swapped is None else swapped
                swapped.append((group, lr))
                group["lr"] = _lr_value(lr)
    if swapped is None:
        return func(*args, **kwargs)
    try:
        return func(*args, **kwargs)
    finally:
        for group, lr in swapped:
            group["lr"] = lr


def _hooked_state_dict(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def state_dict(self: Any) -> Any:
        table = self.__dict__
        if table.get("_hooks_busy_state_dict") or table.get("_hooks_off"):
            return func(self)
        for hook in _hooks_of(self, "_optimizer_state_dict_pre_hooks"):
            hook(self)
        table["_hooks_busy_state_dict"] = True
        try:
            saved = func(self)
        finally:
            table.pop("_hooks_busy_state_dict", None)
        for hook in _hooks_of(self, "_optimizer_state_dict_post_hooks"):
            result = hook(self, saved)
            if result is not None:
                saved = result
        return saved

    state_dict._optimizer_hooked = True  # type: ignore[attr-defined]
    return state_dict


def _hooked_load_state_dict(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def load_state_dict(self: Any, state_dict: Any) -> None:
        table = self.__dict__
        if table.get("_hooks_busy_load") or table.get("_hooks_off"):
            return func(self, state_dict)
        if isinstance(state_dict, dict):
            state_dict = state_dict.copy()  # the hooks may edit the dict given: the caller's stays as it was
        for hook in _hooks_of(self, "_optimizer_load_state_dict_pre_hooks"):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        table["_hooks_busy_load"] = True
        try:
            func(self, state_dict)
        finally:
            table.pop("_hooks_busy_load", None)
        for hook in _hooks_of(self, "_optimizer_load_state_dict_post_hooks"):
            hook(self)
        return None

    load_state_dict._optimizer_hooked = True  # type: ignore[attr-defined]
    return load_state_dict


_HOOKED = {"step": _hooked_step, "state_dict": _hooked_state_dict, "load_state_dict": _hooked_load_state_dict}


def _hook_methods(cls: type) -> None:
    """Wrap the ``step``, ``state_dict`` and ``load_state_dict`` that ``cls`` defines with the hooks."""
    for name, wrap in _HOOKED.items():
        func = cls.__dict__.get(name)
        if callable(func) and not getattr(func, "_optimizer_hooked", False):
            setattr(cls, name, wrap(func))


# ---------------------------------------------------------------------- the base class
class Optimizer:
    """Base class: param groups over flat buffers, updated by one gradient transformation.

    Subclasses give their defaults, check a group's hyperparameters in ``_check_group`` and build
    their chain in ``_make_transform``; the chain reads live hyperparameters with
    ``transforms.from_group``. A user chain is wrapped with :meth:`from_transform`.

    A subclass written PyTorch's way (``super().__init__(params, defaults)`` and its own ``step()``
    over ``self.param_groups`` and ``self.state``, no transform) works as in PyTorch: its
    parameters stay where they are, ``state`` is a ``defaultdict(dict)`` keyed by parameter that
    its step fills in, and ``state_dict``/``load_state_dict`` use PyTorch's format.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = optim.SGD([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> w
        tensor([0.8, 1.6], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        defaults: dict[str, Any],
        *,
        transform: GradientTransformation | None = None,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        name = type(self).__name__
        _reject_unknown_options(type(self), dict(options))
        clip_norm = options.get("clip_norm")
        clip_value = options.get("clip_value")
        if clip_norm is not None:
            check_nonnegative(name, "clip_norm", clip_norm)
        if clip_value is not None:
            check_nonnegative(name, "clip_value", clip_value)
        _check_kernel_flags(type(self), options)
        self.defaults: dict[str, Any] = dict(defaults)
        for flag in _torch_flags(type(self)):
            self.defaults.setdefault(flag, options.get(flag, _FLAG_DEFAULTS[flag]))
        if "lr" in self.defaults:
            self.defaults["lr"] = _lr_as_number(name, self.defaults["lr"])
        for key, value in self.defaults.items():
            if key != "lr":
                self.defaults[key] = _hyper_as_number(name, key, value)
        # host: hyperparameters, read once when the optimizer is built
        self.clip_norm = None if clip_norm is None else float(clip_norm)  # host: see above
        self.clip_value = None if clip_value is None else float(clip_value)  # host: see above
        self.error_if_nonfinite = bool(options.get("error_if_nonfinite", False))  # host: see above
        self.flat = bool(options.get("flat", True))  # host: see above
        # PyTorch's way to write an optimizer: a subclass with its own ``step()`` over
        # ``self.param_groups`` and ``self.state`` and no transform. Its parameters stay where they
        # are (no flat buffers) and its state is the dict it fills in itself. A subclass without a
        # step() of its own (SAM's first_step/second_step around a base optimizer) is one too, as
        # PyTorch's base class accepts it: only calling its step() raises.
        self._torch_style = (
            transform is None
            and type(self)._make_transform is Optimizer._make_transform
            and (type(self).step is not Optimizer.step or type(self) is not Optimizer)
        )
        self._torch_state: defaultdict[Any, dict[Any, Any]] = defaultdict(dict)
        # per parameter, the state keys a built-in optimizer doesn't keep itself (a user's, timm's
        # Lookahead's 'lookahead_slow_buff'): stored beside the buffers, as PyTorch stores any key
        self._user_state: dict[Tensor, dict[Any, Any]] = {}
        self._init_hooks()
        # a transform the class builds (``_make_transform``) is built again when a pickle loads; one
        # given (``from_transform``, LBFGS's identity) travels in the pickle
        self._transform_given = transform is not None or self._torch_style
        if self._torch_style:
            transform = identity()  # never applied: the subclass's step() does the update
        self._transform = transform if transform is not None else self._make_transform()
        # the compiled one-pass step (``_fused``) computes the class's own chain: not a user's, nor
        # a subclass's that builds another
        self._fused_own = (
            transform is None
            and not self._torch_style
            and type(self)._fused_update is not None
            and type(self)._make_transform is type(self)._fused_transform
        )
        if not isinstance(self._transform, GradientTransformation):
            raise ArgumentTypeError(
                f"{name}: transform must be a GradientTransformation, got {type(self._transform).__name__}"
            )
        self.param_groups: list[dict[str, Any]] = []
        self._buckets: list[list[FlatBucket]] = []
        # the buffers are made once every group is known: parameters sharing memory across groups
        # (weight tying by ``.data``) are found only so
        self._defer_buckets = True
        for group in _as_groups(params, name):
            self.add_param_group(group)
        self._defer_buckets = False
        everything = [p for g in self.param_groups for p in g["params"] if not is_lazy(p)]
        shared = shared_parameters(everything) if self._in_place_when_shared and not self._torch_style else set()
        self._buckets = [self._make_buckets(g["params"], shared) for g in self.param_groups]

    @classmethod
    def from_transform(cls, params: Any, transform: GradientTransformation, **defaults: Any) -> Optimizer:
        """Wrap any chain of transforms as an optimizer with param groups, state_dict and schedulers.

        ``defaults`` become the group hyperparameters; give ``lr=`` and end the chain with
        ``scale_by_lr()`` (which reads the group's live ``lr``) so that lr schedulers drive it.
        ``clip_norm``, ``clip_value``, ``error_if_nonfinite`` and ``flat`` are optimizer options.

        Example:
            >>> import downslope as ds
            >>> from downslope import optim
            >>> from downslope.optim import transforms as T
            >>> w = ds.tensor([1.0, -1.0], requires_grad=True)
            >>> opt = optim.Optimizer.from_transform([w], T.chain(T.scale_by_adam(), T.scale_by_lr()), lr=0.1)
            >>> (w * w).sum().backward(); opt.step()
            >>> w
            tensor([ 0.9, -0.9], requires_grad=True)
        """
        options = {
            k: defaults.pop(k) for k in ("clip_norm", "clip_value", "error_if_nonfinite", "flat") if k in defaults
        }
        if "lr" in defaults:
            check_nonnegative("Optimizer.from_transform", "lr", defaults["lr"])
        return Optimizer(params, defaults, transform=transform, **options)

    # -------------------------------------------------------------- hooks
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _hook_methods(cls)  # as PyTorch wraps every optimizer's step with its hooks

    def _init_hooks(self) -> None:
        for name in _HOOK_TABLES:
            if not isinstance(self.__dict__.get(name), _HookTable):
                self.__dict__[name] = _HookTable(self.__dict__.get(name) or ())

    def _hook_table(self, name: str) -> OrderedDict[int, Any]:
        table = self.__dict__.get(name)
        if not isinstance(table, _HookTable):
            table = self.__dict__[name] = _HookTable(table or ())
        return table

    def _optimizer_step_code(self) -> None:
        """A no-op PyTorch's profiler entry point calls after each step (kept for code that overrides it)."""

    def register_step_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)`` to run before each step; it returns None, or new
        ``(args, kwargs)`` for the step (``args`` starts with the optimizer). Returns a handle.

        Example:
            >>> import downslope as ds
            >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
            >>> h = opt.register_step_pre_hook(lambda opt, args, kwargs: print(len(args), kwargs))
            >>> opt.step()
            1 {}
        """
        return _register(self._hook_table("_optimizer_step_pre_hooks"), hook, False, "register_step_pre_hook")

    def register_step_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)`` to run after each step. Returns a handle.

        Example:
            >>> import downslope as ds
            >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
            >>> h = opt.register_step_post_hook(lambda opt, args, kwargs: print("stepped"))
            >>> opt.step()
            stepped
        """
        return _register(self._hook_table("_optimizer_step_post_hooks"), hook, False, "register_step_post_hook")

    def register_state_dict_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Register ``hook(optimizer)`` to run before :meth:`state_dict` (first with ``prepend``).

        Example:
            >>> import downslope as ds
            >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
            >>> h = opt.register_state_dict_pre_hook(lambda opt: print("saving"))
            >>> _ = opt.state_dict()
            saving
        """
        table = self._hook_table("_optimizer_state_dict_pre_hooks")
        return _register(table, hook, prepend, "register_state_dict_pre_hook")

    def register_state_dict_post_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Register ``hook(optimizer, state_dict)`` to run after :meth:`state_dict`; a dict it returns
        replaces the state dict (first with ``prepend``).

        Example:
            >>> import downslope as ds
            >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
            >>> h = opt.register_state_dict_post_hook(lambda opt, sd: {**sd, "note": 1})
            >>> opt.state_dict()["note"]
            1
        """
        table = self._hook_table("_optimizer_state_dict_post_hooks")
        return _register(table, hook, prepend, "register_state_dict_post_hook")

    def register_load_state_dict_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Register ``hook(optimizer, state_dict)`` to run before :meth:`load_state_dict` (on a shallow
        copy of the dict given); a dict it returns is loaded instead (first with ``prepend``).

        Example:
            >>> import downslope as ds
            >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
            >>> h = opt.register_load_state_dict_pre_hook(lambda opt, sd: print(sorted(sd)[:2]))
            >>> opt.load_state_dict(opt.state_dict())
            ['counts', 'optimizer']
        """
        table = self._hook_table("_optimizer_load_state_dict_pre_hooks")
        return _register(table, hook, prepend, "register_load_state_dict_pre_hook")

    def register_load_state_dict_post_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Register ``hook(optimizer)`` to run after :meth:`load_state_dict` (first with ``prepend``).

        Example:
            >>> import downslope as ds
            >>> opt = ds.optim.SGD([ds.ones(1, requires_grad=True)], lr=0.1)
            >>> h = opt.register_load_state_dict_post_hook(lambda opt: print("loaded"))
            >>> opt.load_state_dict(opt.state_dict())
            loaded
        """
        table = self._hook_table("_optimizer_load_state_dict_post_hooks")
        return _register(table, hook, prepend, "register_load_state_dict_post_hook")

    def _raw_step(self) -> Any:
        """``step()`` without any hook (a probe's step)."""
        self.__dict__["_hooks_off"] = True
        try:
            return self.step()
        finally:
            self.__dict__.pop("_hooks_off", None)

    # -------------------------------------------------------------- pickle and copy
    def __getstate__(self) -> dict[str, Any]:
        """What Python's pickle keeps: the param groups with their parameters (shared with a model
        pickled alongside), the state buffers and every other attribute; not the update rule (a
        chain of closures, built again on load), the parameters' flat buffer (made again from the
        parameters) or the hooks (as PyTorch's pickle drops them). A ``step`` a scheduler bound to
        this optimizer is bound again to the loaded one."""
        table = self.__dict__
        state: dict[str, Any] = {}
        for key, value in table.items():
            if key in _HOOK_TABLES or key.startswith("_hooks_"):
                continue
            if key == "_transform" and not table.get("_transform_given", True):
                continue
            if isinstance(value, types.MethodType) and value.__self__ is self:
                value = _BoundToSelf(value.__func__)
            state[key] = value
        transform = state.get("_transform")
        if isinstance(transform, GradientTransformation):
            local = [f for f in transform if "<locals>" in getattr(f, "__qualname__", "")]
            if local:
                raise ArgumentTypeError(
                    f"{type(self).__name__}: can't pickle an optimizer whose transform is made of local functions "
                    f"({local[0].__qualname__}); save opt.state_dict() and build the optimizer again instead"
                )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore :meth:`__getstate__`'s attributes and build again what it left out."""
        table = self.__dict__
        for key, value in state.items():
            table[key] = types.MethodType(value.func, self) if isinstance(value, _BoundToSelf) else value
        if "_torch_style" not in table:
            return  # a subclass that never called Optimizer.__init__: its attributes are all it has
        self._init_hooks()
        if "_transform" not in table:
            self._transform = self._make_transform()

    def __copy__(self) -> Optimizer:
        # what copy.copy has always made: a new object sharing every attribute (PyTorch's too)
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> Optimizer:
        # every attribute copied, hooks and transform included (the buckets re-point the copied
        # parameters to their copied buffers), as before pickling was given its own state
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    # -------------------------------------------------------------- for subclasses
    def _make_transform(self) -> GradientTransformation:
        raise ArgumentTypeError(
            "Optimizer needs a transform: use a subclass such as optim.SGD or optim.Adam, or "
            "optim.Optimizer.from_transform(params, transforms.chain(...), lr=...)"
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyperparameters (subclasses raise ArgumentError, a ValueError, with the received value)."""
        if "lr" in group:
            check_nonnegative(type(self).__name__, "lr", group["lr"])

    # -------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones come from ``defaults``).

        Example:
            >>> import downslope as ds
            >>> from downslope import optim
            >>> w, b = ds.ones(2, requires_grad=True), ds.zeros(1, requires_grad=True)
            >>> opt = optim.AdamW([w], lr=1e-3)
            >>> opt.add_param_group({"params": [b], "weight_decay": 0.0})
            >>> [g["weight_decay"] for g in opt.param_groups]
            [0.01, 0.0]
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise ArgumentTypeError(
                f"{name}.add_param_group: expected a dict with a 'params' entry, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ArgumentError(
                f"{name}.add_param_group: the group has no 'params' entry (keys: {sorted(param_group)})"
            )
        raw = param_group["params"]
        names = None
        if not isinstance(raw, (Tensor, set, frozenset, dict)) and hasattr(raw, "__iter__"):
            raw = list(raw)
            if raw and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in raw):
                names = [x[0] for x in raw]  # model.named_parameters(), as PyTorch accepts
                raw = [x[1] for x in raw]
        params = _as_param_list(raw, name, self._complex_steps())
        if any(p.dtype.kind == "c" for p in params):
            self._has_complex = True
        group = dict(param_group)
        group["params"] = params = _ParamList(params)
        if names is not None:
            group["param_names"] = names
        seen = {id(p) for p in params}
        if len(seen) != len(params):  # tied weights collected twice: PyTorch warns and updates them twice
            warnings.warn(_DUPLICATE_PARAMS, UserWarning, stacklevel=3)
        for gi, other in enumerate(self.param_groups):
            if any(id(p) in seen for p in other["params"]):
                raise ArgumentError(  # torch's words first, for code that matches them
                    f"{name}: some parameters appear in more than one parameter group: some of the new group's "
                    f"already belong to param group {gi}"
                )
        for key, value in self.defaults.items():
            if value is required and key not in group:
                raise ArgumentError(f"{name}: parameter group didn't specify a value of required option {key!r}")
            group.setdefault(key, value)
        if "lr" in group:
            group["lr"] = _lr_as_number(name, group["lr"])
        for key in self.defaults:
            if key not in ("lr", "params"):
                group[key] = _hyper_as_number(name, key, group[key])
        if group.get("differentiable") and not self._torch_style:
            raise _not_differentiable(f"{name}.add_param_group")
        self._check_group(_with_number_lr(group))
        self.param_groups.append(group)
        self._held = [*self.__dict__.get("_held", ()), (params, tuple(params))]
        if self.__dict__.get("_defer_buckets"):
            self._buckets.append([])
            return
        shared: set[int] = set()
        if self._in_place_when_shared and not self._torch_style:
            before = [p for g in self.param_groups[:-1] for p in g["params"] if not is_lazy(p)]
            shared = shared_parameters(before + [p for p in params if not is_lazy(p)], fixed=len(before))
        self._buckets.append(self._make_buckets(params, shared))

    #: whether parameters sharing memory are updated where they are (LBFGS needs one flat vector)
    _in_place_when_shared: bool = True

    def _complex_steps(self) -> bool:
        """Whether complex parameters are accepted: stepped as their view_as_real pairs (torch's rule for
        its built-in optimizers) by the flat-buffer transforms, or by a subclass's own PyTorch-style step.
        Optimizers with their own buffers (LBFGS's one vector, the per-parameter ones) refuse them."""
        if self._torch_style:
            return True
        return type(self)._make_buckets is Optimizer._make_buckets and self._in_place_when_shared

    #: a built-in optimizer's one-pass step of a bucket (``_fused.sgd_step``...: a callable to run,
    #: or None where it doesn't apply), used while ``_make_transform`` is ``_fused_transform``
    _fused_update: Callable[[dict[str, Any], FlatBucket], Callable[[], None] | None] | None = None
    _fused_transform: Any = None

    def _make_buckets(self, params: list[Tensor], shared: set[int]) -> list[FlatBucket]:
        if self._torch_style:
            return []  # the subclass's step() updates the parameters where they are
        if any(is_lazy(p) for p in params):
            # a lazy module's parameters have no shape before its first forward, and PyTorch's
            # optimizers take them (d2l builds the optimizer first): their buffers are made at the
            # first step or state access after that forward (_build_lazy_buckets)
            self._lazy_params = [*self.__dict__.get("_lazy_params", ()), *(p for p in params if is_lazy(p))]
            params = [p for p in params if not is_lazy(p)]
        counts = Counter(id(p) for p in params) if len({id(p) for p in params}) != len(params) else None
        if counts is not None:
            # a parameter listed twice takes the step twice on one state, as PyTorch's loop over the
            # group does: one in-place bucket that repeats its update
            shared = shared | {i for i, n in counts.items() if n > 1}
            params = list({id(p): p for p in params}.values())
        if self.__dict__.get("_has_complex"):
            # a complex parameter steps as its view_as_real pair (torch's rule): a bucket of its own
            complex_params = [_ComplexBucket([p], self._transform) for p in params if p.array.dtype.kind == "c"]
            if complex_params:
                params = [p for p in params if p.array.dtype.kind != "c"]
                return self._make_buckets(params, shared) + complex_params
        own = [p for p in params if id(p) not in shared]
        # storage shared with another parameter or with the caller stays where it is, updated in
        # place after the flat buffers, in the group's order (PyTorch's order for one storage)
        in_place: list[FlatBucket] = [
            InPlaceBucket([p], self._transform)
            if counts is None or counts[id(p)] == 1
            else RepeatedBucket([p], self._transform, counts[id(p)])
            for p in params
            if id(p) in shared
        ]
        if not self.flat:
            return [FlatBucket([p], self._transform) for p in own] + in_place
        by_dtype: dict[str, list[Tensor]] = {}
        for p in own:
            by_dtype.setdefault(p.array.dtype.str, []).append(p)
        return [FlatBucket(ps, self._transform) for ps in by_dtype.values()] + in_place

    def _build_lazy_buckets(self) -> None:
        """Make the buffers of the lazy parameters that a forward has materialized since the optimizer
        was built (appended to their groups' buckets; those still uninitialized keep waiting)."""
        waiting = self._lazy_params
        ready = {id(p) for p in waiting if not is_lazy(p)}
        if not ready:
            return
        self._lazy_params = [p for p in waiting if id(p) not in ready]
        built = [p for buckets in self._buckets for b in buckets for p in b.params]
        for gi, group in enumerate(self.param_groups):
            new = [p for p in group["params"] if id(p) in ready]  # a repeat kept: stepped per listing
            if not new:
                continue
            shared: set[int] = set()
            if self._in_place_when_shared:
                shared = shared_parameters(built + new, fixed=len(built))
            self._buckets[gi].extend(self._make_buckets(new, shared))
            built += new

    def _groups_edited(self) -> bool:
        """Whether ``param_groups`` changed since the buffers were made: a group's ``params`` list
        edited or replaced, or a group added or removed by editing ``param_groups`` itself."""
        held = self.__dict__.get("_held")
        groups = self.param_groups
        if held is None:  # an optimizer pickled before groups were watched: watched from now on
            for group in groups:
                group["params"] = _ParamList(group["params"])
            self._held = [(g["params"], tuple(g["params"])) for g in groups]
            return False
        if len(held) != len(groups):
            return True
        for group, (params, _) in zip(groups, held):
            ps = group.get("params")
            if ps is not params or ps.edited:
                return True
        return False

    def _rebuild_groups(self) -> None:
        """Make the buffers again for the groups as they now are (PyTorch steps whatever the groups
        hold): a parameter that stays keeps its state, as PyTorch keys state by parameter; one added
        starts afresh; one removed is no longer stepped. New groups get the defaults they lack."""
        name = type(self).__name__
        if not self._in_place_when_shared:  # LBFGS: one flat vector and a history over it
            raise StateError(
                f"{name}: the parameters of its param groups changed after it was built; {name} keeps a history "
                "over its parameters as one vector, so build a new optimizer for the new parameters"
            )
        known = {id(ps) for ps, _ in self.__dict__.get("_held", ())}
        for gi, group in enumerate(self.param_groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ArgumentTypeError(
                    f"{name}: param group {gi} must be a dict with a 'params' entry, got {type(group).__name__}"
                )
            ps = group["params"]
            if not isinstance(ps, _ParamList):
                group["params"] = _ParamList(_as_param_list(ps, name, self._complex_steps()))
            if id(ps) not in known:
                for key, value in self.defaults.items():
                    if value is required and key not in group:
                        raise ArgumentError(
                            f"{name}: param group {gi} didn't specify a value of required option {key!r}"
                        )
                    group.setdefault(key, value)
                self._check_group(_with_number_lr(group))
            group["params"].edited = False
        saved, counts = self._state_by_parameter()
        self.__dict__.pop("_lazy_params", None)  # listed again by _make_buckets
        groups = self.param_groups
        everything = [p for g in groups for p in g["params"] if not is_lazy(p)]
        shared = shared_parameters(everything) if self._in_place_when_shared and not self._torch_style else set()
        self._buckets = [self._make_buckets(g["params"], shared) for g in groups]
        self._held = [(g["params"], tuple(g["params"])) for g in groups]
        for gi, buckets in enumerate(self._buckets):
            for b in buckets:
                for j, p in enumerate(b.params):
                    entry = saved.get(id(p))
                    if entry is None:
                        continue
                    b.count = max(b.count, counts[id(p)])
                    for key, value in entry.items():
                        self._set_state_entry(gi, b, j, key, value)

    def _state_by_parameter(self) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
        """Every started parameter's own state (copies), and its bucket's update count, by ``id``."""
        saved: dict[int, dict[str, Any]] = {}
        counts: dict[int, int] = {}
        layouts = self._layouts_of(self._buckets)  # not _layouts(): the lazy build reads the groups as they now are
        for gi, buckets in enumerate(self._buckets):
            names = self._names(layouts[gi])
            for b in buckets:
                for j, p in enumerate(b.params):
                    if b.started[j]:
                        entry = self._entry_view(gi, b, j, names)
                        saved[id(p)] = {k: v.array.copy() for k, v in entry.items()}
                        counts[id(p)] = int(b.count)
        return saved, counts

    def current_lrs(self) -> list[float]:
        """The learning rate each param group will use at the next step, for logging (what a
        scheduler has set; the same list as its ``get_last_lr()``).

        Example:
            >>> import downslope as ds
            >>> from downslope import optim
            >>> opt = optim.SGD([ds.zeros(2, requires_grad=True)], lr=0.1)
            >>> sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
            >>> opt.step(); sched.step(); opt.current_lrs()
            [0.05]
        """
        return [float(group["lr"]) for group in self.param_groups]  # host: Python numbers in the groups

    def get_lr(self) -> list[float]:
        """Deprecated name of :meth:`current_lrs` (PyTorch's ``get_lr`` is a scheduler's formula for
        the next rate, which this is not)."""
        warnings.warn(
            "Optimizer.get_lr() is deprecated; use Optimizer.current_lrs() (the rates the next step uses)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.current_lrs()

    # -------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set ``.grad`` to None (default), or fill it with zeros in place.

        Gradients accumulate across ``backward()`` calls until this is called (gradient accumulation).
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p._grad = None  # the slot: None needs none of the setter's checks
                elif zero_rows_(p._grad):
                    continue  # a gradient held as rows (Embedding(sparse=True)) keeps none: no table of zeros
                elif p.grad.array.flags.writeable:
                    p.grad.array.fill(0)
                else:
                    p.grad.array = np.zeros_like(p.grad.array)  # dispatches: stays on the device

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if a closure is given."""
        if self._torch_style:
            raise NotImplementedError(f"{type(self).__name__}.step: a subclass written PyTorch's way defines step()")
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work: list[tuple[dict[str, Any], FlatBucket, Any, Any]] = []
        clipping = self.clip_value is not None or self.clip_norm is not None or self.error_if_nonfinite
        fused = self._fused_update if self.__dict__.get("_fused_own") and not clipping else None
        for group, buckets in zip(self.param_groups, self._buckets):
            for b in buckets:
                b.sync()
                one_pass = None if fused is None else fused(group, b)
                if one_pass is not None:  # large parameters: one compiled pass each, no gather
                    work.append((group, b, one_pass, None))
                    continue
                g, present = b.gather_grads()
                if g is not None:
                    work.append((group, b, g, present))
        if work and clipping:
            self._clip([w[2] for w in work])
        with no_grad():
            for group, b, g, present in work:
                if callable(g):
                    g()
                else:
                    b.apply(self._transform, group, g, present)
                # an in-place write, as PyTorch's p.add_(...): a graph that saved the old values refuses them
                mark_written(b.params if present is None else [b.params[i] for i in present])
        return loss

    def _clip(self, grads: list[np.ndarray]) -> None:
        name = type(self).__name__
        if self.error_if_nonfinite:
            for g in grads:
                if not bool(to_host(np.isfinite(g).all())):  # host: the user asked for this check every step
                    raise StateError(
                        f"{name}: a gradient holds NaN or inf, so clipping cannot make the step safe "
                        "(error_if_nonfinite=True); check the loss and the learning rate"
                    )
        if self.clip_value is not None:
            for g in grads:
                np.clip(g, -self.clip_value, self.clip_value, out=g)
        if self.clip_norm is not None:
            clip_to_max_norm_(grads, self.clip_norm)

    # -------------------------------------------------------------- state
    def _positions(self) -> list[tuple[int, FlatBucket, int]]:
        """(group index, bucket, index in bucket) for every parameter, in PyTorch's numbering."""
        if not self._torch_style and self._groups_edited():
            self._rebuild_groups()
        if self.__dict__.get("_lazy_params"):
            self._build_lazy_buckets()
        where: dict[int, tuple[Any, int]] = {id(p): (_Unmade(p), 0) for p in self.__dict__.get("_lazy_params", ())}
        for buckets in self._buckets:
            for b in buckets:
                for j, p in enumerate(b.params):
                    where[id(p)] = (b, j)
        out = []
        for gi, group in enumerate(self.param_groups):
            for p in group["params"]:
                b, j = where[id(p)]
                out.append((gi, b, j))
        return out

    def _layouts(self) -> list[list[list[str]]]:
        """Per group, per transform slot, the state keys in use (for naming in state_dict)."""
        if not self._torch_style and self._groups_edited():
            self._rebuild_groups()
        if self.__dict__.get("_lazy_params"):
            self._build_lazy_buckets()
        return self._layouts_of(self._buckets)

    @staticmethod
    def _layouts_of(bucket_lists: list[list[FlatBucket]]) -> list[list[list[str]]]:
        layouts = []
        for buckets in bucket_lists:
            slots: list[list[str]] = []
            for b in buckets:
                for si, d in enumerate(state_slots(b.state)):
                    while len(slots) <= si:
                        slots.append([])
                    for k in d:
                        if k not in slots[si]:
                            slots[si].append(k)
            layouts.append(slots)
        return layouts

    @staticmethod
    def _names(layout: list[list[str]]) -> dict[str, tuple[int, str]]:
        counts: dict[str, int] = {}
        for keys in layout:
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
        return {(k if counts[k] == 1 else f"{k}.{si}"): (si, k) for si, keys in enumerate(layout) for k in keys}

    @property
    def state(self) -> Any:
        """Each parameter's state, as ``torch.optim.Optimizer.state``: a parameter appears once it has
        state (it took a step, was given state, or its state was loaded), and ``opt.state[w]`` of
        one that has none is an empty dict, as PyTorch's ``defaultdict``. ``opt.state[w]["exp_avg"]``
        is a Tensor shaped like ``w`` sharing the optimizer's own buffer, so writing into it
        (``opt.state[w]["exp_avg"].zero_()``) changes the state the next step uses; ``"step"`` is
        the parameter's step count (a float32 0-d Tensor, as PyTorch's, except in SGD, which keeps
        none). Assigning works as in PyTorch: ``opt.state[w]["exp_avg"] = t`` copies ``t``'s values
        into the buffer (shape and dtype checked), ``opt.state[w]["step"] = 0`` sets the count (the
        buffers go on), any other key is stored as given (and saved by :meth:`state_dict`), and
        ``opt.state[w] = {}``, ``del opt.state[w]``, ``opt.state.clear()`` or
        ``opt.state = defaultdict(dict)`` start the parameter(s) afresh, as if never stepped.
        :meth:`state_dict` gives copies.

        In a subclass written PyTorch's way (its own ``step()``, no transform) it is PyTorch's
        ``defaultdict(dict)`` keyed by parameter, which that ``step()`` fills in.

        Example:
            >>> import downslope as ds
            >>> w = ds.ones(2, requires_grad=True)
            >>> opt = ds.optim.SGD([w], lr=0.1, momentum=0.9)
            >>> len(opt.state)
            0
            >>> (w * w).sum().backward(); opt.step()
            >>> opt.state[w]["momentum_buffer"].zero_().tolist(), opt.state[w]["momentum_buffer"].tolist()
            ([0.0, 0.0], [0.0, 0.0])
        """
        table = self.__dict__
        if "_plain_state" in table:
            return table["_plain_state"]
        if "_torch_style" not in table:
            raise AttributeError(
                f"{type(self).__name__} has no attribute 'state' (its __init__ did not call Optimizer.__init__)"
            )
        if self._torch_style:
            return self._torch_state
        out = _OptimizerState(self)
        layouts = self._layouts()
        user = self._user_state
        for gi, b, j in self._positions():
            p = b.params[j]
            extra = user.get(p)
            if not b.started[j] and extra is None:
                continue
            entry = self._entry_view(gi, b, j, self._names(layouts[gi])) if b.started[j] else {}
            dict.__setitem__(out, p, _ParamState(self, gi, b, j, entry, extra or {}))
        return out

    @state.setter
    def state(self, value: Any) -> None:
        name = type(self).__name__
        if "_torch_style" not in self.__dict__:
            # a subclass that never calls Optimizer.__init__ (timm's Lookahead): a plain attribute
            self.__dict__["_plain_state"] = value
            return
        if not isinstance(value, Mapping):
            raise ArgumentTypeError(f"{name}.state must be a dict, got {type(value).__name__}")
        if self._torch_style:
            fresh: defaultdict[Any, dict[Any, Any]] = defaultdict(dict)
            fresh.update(value)
            self._torch_state = fresh
            return
        # the built-in's state is replaced by what is given: a fresh empty mapping resets every
        # parameter (PyTorch's ``opt.state = defaultdict(dict)``). Copies of the buffers first: the
        # values given may be views of this very state.
        items = [(k, _detached_entry(v)) for k, v in value.items()]
        for key, entry in items:
            self._where(key)
            if not isinstance(entry, Mapping):
                raise ArgumentTypeError(f"{name}.state[p] must be a dict of state, got {type(entry).__name__}")
        for buckets in self._buckets:
            for b in buckets:
                for j in range(len(b.params)):
                    if b.started[j]:
                        self._reset_state(b, j)
        self._user_state = {}
        view = self.state
        for key, entry in items:
            view[key] = entry

    def _entry_view(self, gi: int, b: FlatBucket, j: int, names: dict[str, tuple[int, str]]) -> dict[str, Any]:
        """Parameter ``j`` of ``b``'s own state as ``opt.state`` shows it (Tensors viewing the buffers)."""
        return {k: wrap_array(v) for k, v in self._param_state(b, j, names, copy=False).items()}

    def _where(self, param: Any) -> tuple[int, FlatBucket, int]:
        """(group index, bucket, index in bucket) of ``param``, or ArgumentError if it is none of ours."""
        for gi, b, j in self._positions():
            if b.params[j] is param:
                return gi, b, j
        what = f"a tensor of shape {tuple(param.shape)}" if isinstance(param, Tensor) else repr(param)
        raise ArgumentError(
            f"{type(self).__name__}.state: {what} is not a parameter of this optimizer; its state can't be set"
        )

    def _builtin_key(self, gi: int, key: Any) -> bool:
        """Whether ``key`` names state the optimizer keeps itself (in its buffers) for group ``gi``."""
        if not isinstance(key, str):
            return False
        if key == "step":
            return self._keeps_step
        if key in self._names(self._layouts()[gi]):
            return True
        if key not in _LAZY_STATE_KEYS:
            return False
        # a buffer made at the first step (SGD's momentum_buffer): kept if a step would make it
        try:
            return key in self._names(self._layouts_for({0: {key: None}}, self._layouts())[gi])
        except ArgumentError:
            return False

    def _set_state_entry(self, gi: int, b: FlatBucket, j: int, key: Any, value: Any) -> None:
        """``opt.state[p][key] = value`` for a key of the optimizer's own: the step count, or the
        values written into the state buffer. The parameter then has state."""
        name = type(self).__name__
        if isinstance(b, _Unmade):
            raise StateError(_UNMADE_STATE.format(name=name, what=f"state[p][{key!r}] = ..."))
        if key == "step":
            b.steps[j] = _set_count(name, key, value)
            b.started[j] = True
            b.uniform = False  # recomputed at the next step
            return
        names = self._names(self._layouts()[gi])
        if key not in names:
            names = self._names(self._layouts_for({0: {key: None}}, self._layouts())[gi])
        si, slot_key = names[key]
        slots = state_slots(b.state)
        if isinstance(b, _ComplexBucket):
            held = value.array if isinstance(value, Tensor) else value
            if is_array(held) and held.dtype.kind == "c":
                value = _real_pairs(held)  # a complex parameter's state: its real pairs, as the buffer holds
        write_parameter_state(b, j, slots[si], slot_key, value)
        b.started[j] = True
        b.uniform = False
        started = slots[si].get("momentum_started")
        if started is not None:
            started[b.offsets[j] : b.offsets[j + 1]] = 1

    def _reset_state(self, b: FlatBucket, j: int) -> None:
        """``opt.state[p] = {}`` / ``del opt.state[p]``: the parameter starts afresh at its next step."""
        reset_parameter_state(b, j, self._transform)

    #: whether a parameter's state holds its step count (PyTorch's SGD keeps none)
    _keeps_step: bool = True

    def _param_state(self, b: FlatBucket, j: int, names: dict[str, tuple[int, str]], copy: bool) -> dict[str, Any]:
        """Parameter ``j`` of bucket ``b``'s state as arrays: its step count (a float32 0-d array, as
        PyTorch's) and its slices of the state buffers (views, or host copies with ``copy``)."""
        entry: dict[str, Any] = {}
        if self._keeps_step:
            if copy:
                entry["step"] = np.array(b.steps[j], np.float32)  # host: a step count is host bookkeeping
            else:  # the count itself, as PyTorch's live state["step"]: an in-place write is what the next step reads
                entry["step"] = b.steps[j : j + 1].reshape(())
                b.watched = True
        slots = state_slots(b.state)
        start, stop = b.offsets[j], b.offsets[j + 1]
        for name, (si, key) in names.items():
            arr = slots[si].get(key) if si < len(slots) else None
            if arr is not None and is_array(arr) and arr.shape == b.flat.shape:
                piece = arr[start:stop].reshape(b.shapes[j])
                if isinstance(b, _ComplexBucket):  # torch's state of a complex parameter is complex
                    piece = piece.view(backend.complex_of(piece.dtype))[..., 0]
                entry[name] = to_host(piece).copy() if copy else piece  # state_dict holds host arrays
        return entry

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's format, as Tensors plus JSON-able values (no pickle needed).

        ``state`` maps each parameter's position (numbered across groups, as in PyTorch) to its
        state Tensors (host copies): ``step`` (a float32 0-d Tensor, as PyTorch's; SGD keeps none)
        and the buffers (``exp_avg``, ``momentum_buffer``...), for the parameters that have taken a
        step and keep state (so it is empty before the first step, as PyTorch's);
        Keys a user stored in ``opt.state[p]`` are saved beside them (Tensors cloned).
        ``param_groups`` holds the hyperparameters (with PyTorch's kernel flags such as
        ``foreach``; a Tensor lr as a Tensor copy, as in PyTorch's) and ``params`` as positions.
        Beyond PyTorch's two keys, ``optimizer``, ``state_layout``, ``counts`` and ``options`` let
        :meth:`load_state_dict` check the optimizer, place every state buffer and restore what a
        schedule counts; a dict with PyTorch's two keys only (one saved by PyTorch, its tensors
        converted) loads too.

        The dict is a snapshot: later steps do not change it (PyTorch's holds the live state tensors,
        so a dict kept across steps, for a "best so far" checkpoint, silently follows training).
        Another class keeping the same state loads it (Adam's into AdamW, as PyTorch does).

        Example:
            >>> import downslope as ds
            >>> w = ds.ones(2, requires_grad=True)
            >>> opt = ds.optim.Adam([w], lr=0.1)
            >>> opt.state_dict()["state"], opt.state_dict()["param_groups"][0]["params"]
            ({}, [0])
            >>> (w * w).sum().backward(); opt.step()
            >>> opt.state_dict()["state"][0]["step"], sorted(opt.state_dict()["state"][0])
            (tensor(1.), ['exp_avg', 'exp_avg_sq', 'step'])
        """
        if self._torch_style:
            return self._torch_state_dict()
        layouts = self._layouts()
        state: dict[int, dict[str, Any]] = {}
        counts: dict[int, int] = {}
        user = self._user_state
        for pos, (gi, b, j) in enumerate(self._positions()):
            extra = user.get(b.params[j])
            if b.started[j]:  # PyTorch keeps no state for a parameter that never took a step
                entry = self._param_state(b, j, self._names(layouts[gi]), copy=True)
                if entry or extra is not None:  # PyTorch's SGD without momentum keeps none
                    state[pos] = {k: wrap_array(v) for k, v in entry.items()}
                # the bucket's update count, which a schedule reads: kept where the step count differs
                if not self._keeps_step or b.count != b.steps[j]:
                    counts[pos] = int(b.count)
            if extra is not None:  # a user's keys, beside the optimizer's own
                state.setdefault(pos, {}).update({k: _clone_state(v) for k, v in extra.items()})
        groups = []
        pos = 0
        for group in self.param_groups:
            saved = {k: _jsonable(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(pos, pos + len(group["params"])))
            pos += len(group["params"])
            groups.append(saved)
        return {  # PyTorch's two keys first
            "state": state,
            "param_groups": groups,
            "optimizer": type(self).__name__,
            "state_layout": layouts,
            "counts": counts,
            "options": {
                "clip_norm": self.clip_norm,
                "clip_value": self.clip_value,
                "error_if_nonfinite": self.error_if_nonfinite,
            },
        }

    def _check_saved_groups(self, state_dict: dict[str, Any], name: str) -> list[dict[str, Any]]:
        """The saved param groups, checked against this optimizer's before anything is loaded: as many
        groups, as many parameters in each, this optimizer's options in each, and saved by this class."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ArgumentError(
                f"{name}.load_state_dict: the saved state has {len(saved_groups)} param group(s), this optimizer has "
                f"{len(self.param_groups)}"
            )
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ArgumentError(
                    f"{name}.load_state_dict: param group {gi} has {len(group['params'])} parameters but the saved "
                    f"group has {len(saved['params'])}"
                )
            # PyTorch's kernel flags are absent from states saved before they were kept: not required
            missing = [k for k in self.defaults if k not in saved and k not in _FLAG_DEFAULTS]
            if missing:  # e.g. Adam's state loaded into SGD: it would silently take Adam's lr and drop momentum
                raise ArgumentError(
                    f"{name}.load_state_dict: saved param group {gi} lacks {name}'s option(s) {missing}; "
                    f"was it saved by a different optimizer? (saved options: {sorted(k for k in saved if k != 'params')})"
                )
        saved_by = state_dict.get("optimizer")
        if saved_by is not None and saved_by != name:
            # Adam's moments fed to Lion would pass the option check; another class keeping the same state
            # (Adam and AdamW: AdamW is Adam with the groups' decoupled_weight_decay flag) loads, as in PyTorch
            saved_layout = _plain_layout(state_dict.get("state_layout"))
            ours = self._layouts()
            if saved_layout != ours:
                ours = self._probe_layouts() or ours
            if saved_layout != ours:
                raise ArgumentError(
                    f"{name}.load_state_dict: the state was saved by {saved_by}, which keeps the state "
                    f"{_layout_names(saved_layout)}, and {name} keeps {_layout_names(ours)}; build a {saved_by} to "
                    "resume it, or start this optimizer from fresh state"
                )
        return saved_groups

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (possibly after a JSON round trip) into an
        optimizer built over the same parameters in the same order.

        A dict in PyTorch's format (``state`` and ``param_groups`` only, e.g. one saved by PyTorch with
        its tensors converted) loads too: its step counts and buffers are placed by name."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ArgumentError(
                f"{name}.load_state_dict: expected a dict from state_dict() with 'state' and 'param_groups'"
            )
        if self._torch_style:
            self._load_torch_state_dict(state_dict)
            return
        saved_groups = self._check_saved_groups(state_dict, name)
        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = _restore_like(v, group.get(k), k)
        options = state_dict.get("options", {})
        self.clip_norm = options.get("clip_norm", self.clip_norm)
        self.clip_value = options.get("clip_value", self.clip_value)
        self.error_if_nonfinite = options.get("error_if_nonfinite", self.error_if_nonfinite)
        saved_layouts = state_dict.get("state_layout")
        layouts = saved_layouts or self._layouts()
        if saved_layouts is not None:
            # state created since the save (e.g. a momentum buffer or AMSGrad's max) must not survive
            for buckets, layout in zip(self._buckets, saved_layouts):
                for b in buckets:
                    for si, slot in enumerate(state_slots(b.state)):
                        keep = set(layout[si]) if si < len(layout) else set()
                        for key in [k for k in slot if k not in keep]:
                            del slot[key]
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        saved_counts = {int(k): int(v) for k, v in (state_dict.get("counts") or {}).items()}
        if saved_layouts is None:
            layouts = self._layouts_for(saved_state, layouts)
        positions = self._positions()
        # each entry's keys of the optimizer's own (placed in the buffers) and a user's (kept beside)
        own_state: dict[int, dict[str, Any]] = {}
        user_state: dict[Tensor, dict[Any, Any]] = {}
        for pos, entry in saved_state.items():
            if not 0 <= pos < len(positions) or not isinstance(entry, Mapping):
                raise ArgumentError(
                    f"{name}.load_state_dict: saved state entry {pos!r} is not a dict for one of the "
                    f"{len(positions)} parameters"
                )
            gi, b, j = positions[pos]
            if isinstance(b, _Unmade) and entry:
                raise StateError(_UNMADE_STATE.format(name=name, what=f"load_state_dict (state of parameter {pos})"))
            own_keys = set(self._names(layouts[gi])) | {"count"} | ({"step"} if self._keeps_step else set())
            own = {k: v for k, v in entry.items() if k in own_keys}
            if own:
                own_state[pos] = own
            rest = {k: v for k, v in entry.items() if k not in own_keys}
            foreign = sorted(k for k in rest if k in _OTHER_OPTIMIZERS_STATE)
            if foreign:  # a user's key would be stored; another optimizer's buffers mean a mix-up
                raise ArgumentError(
                    f"{name}.load_state_dict: the saved state holds {foreign}, which {name} does not keep; "
                    "was it saved by a different optimizer?"
                )
            if rest or not own:
                p = b.params[j]
                user_state[p] = {k: _cast_state(p, v, k) for k, v in rest.items()}
        loaded = {(id(b), j) for pos, (_, b, j) in enumerate(positions) if pos in own_state}
        for _, b, j in positions:
            if b.started[j] and (id(b), j) not in loaded:
                self._reset_state(b, j)  # it had no state when saved: it starts afresh, as in PyTorch
        for pos, (gi, b, j) in enumerate(positions):
            entry = own_state.get(pos)
            if entry is None:
                continue
            entry = {k: _host_value(v) for k, v in entry.items()}
            # PyTorch's SGD keeps no step count: a parameter with saved state has taken at least one
            step = _count(entry["step"]) if "step" in entry else max(int(b.steps[j]), 1)
            b.steps[j] = step
            b.started[j] = True
            b.uniform = False  # recomputed at the next step
            # older checkpoints keep the bucket's count in each entry; PyTorch's have none: the
            # parameter's own step count stands in
            b.count = _count(entry.get("count", saved_counts.get(pos, step)))
            slots = state_slots(b.state)
            start, stop = b.offsets[j], b.offsets[j + 1]
            for key_name, (si, key) in self._names(layouts[gi]).items():
                if key_name not in entry:
                    continue
                if si >= len(slots):
                    raise ArgumentError(
                        f"{name}.load_state_dict: the saved state has a transform slot {si} this optimizer lacks"
                    )
                arr = to_device(entry[key_name], device_of(b.flat))
                if isinstance(b, _ComplexBucket) and arr.dtype.kind == "c":
                    arr = _real_pairs(arr)  # a complex parameter's state: its real pairs, as the buffer holds
                if arr.ndim == 0 and stop - start != 1:
                    arr = arr.reshape(1)  # one number per parameter (PyTorch's ASGD eta, mu): every element
                    target = slots[si].get(key)
                    if target is None:
                        target = np.zeros_like(b.flat)
                        slots[si][key] = target
                    target[start:stop] = arr
                    continue
                if arr.size != stop - start:
                    raise ShapeError(
                        f"{name}.load_state_dict: state {key_name!r} of parameter {pos} has {arr.size} elements, "
                        f"the parameter has {stop - start} (shape {b.shapes[j]})"
                    )
                target = slots[si].get(key)
                if target is None:
                    target = np.zeros_like(b.flat)
                    slots[si][key] = target
                target[start:stop] = arr.reshape(-1)
        self._user_state = user_state

    # -------------------------------------------------------------- PyTorch-style subclasses
    def _torch_state_dict(self) -> dict[str, Any]:
        """PyTorch's ``Optimizer.state_dict`` of a subclass with its own ``step()``: the state keyed by
        each parameter's position (Tensors cloned, so the dict is a snapshot) and the groups with
        ``params`` as positions."""
        name = type(self).__name__
        positions: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                positions.setdefault(id(p), len(positions))
            packed["params"] = [positions[id(p)] for p in group["params"]]
            groups.append(packed)
        state: dict[Any, Any] = {}
        for key, value in self._torch_state.items():
            if isinstance(key, Tensor):
                if id(key) not in positions:
                    raise StateError(
                        f"{name}.state_dict: the state holds a tensor of shape {tuple(key.shape)} that is in no "
                        "param group; key the state by the group's parameters"
                    )
                key = positions[id(key)]
            state[key] = _clone_state(value)
        return {"state": state, "param_groups": groups}

    def _load_torch_state_dict(self, state_dict: dict[str, Any]) -> None:
        """PyTorch's ``Optimizer.load_state_dict`` for a subclass with its own ``step()``: the saved
        groups' hyperparameters replace the current ones, and each parameter's state is copied, its
        floating tensors (arrays too) cast to the parameter's dtype, except ``step``."""
        import copy

        name = type(self).__name__
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(saved_groups) != len(self.param_groups):
            raise ArgumentError(
                f"{name}.load_state_dict: the saved state has {len(saved_groups)} param group(s), this optimizer has "
                f"{len(self.param_groups)}"
            )
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ArgumentError(f"{name}.load_state_dict: saved param group {gi} is not a dict with 'params'")
            if len(saved["params"]) != len(group["params"]):
                raise ArgumentError(
                    f"{name}.load_state_dict: param group {gi} has {len(group['params'])} parameters but the saved "
                    f"group has {len(saved['params'])}"
                )
        id_map = {
            saved_id: p
            for saved, group in zip(saved_groups, self.param_groups)
            for saved_id, p in zip(saved["params"], group["params"])
        }
        state: defaultdict[Any, dict[Any, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            param = id_map.get(key, id_map.get(_int_key(key)))
            if param is None:
                state[key] = value  # state of no parameter is kept as it is, as PyTorch keeps it
            else:
                state[param] = _cast_state(param, value, None)
        for saved, group in zip(saved_groups, self.param_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.param_groups[:] = saved_groups
        self._torch_state = state

    def _layouts_for(self, saved_state: dict[int, Any], layouts: list[list[list[str]]]) -> list[list[list[str]]]:
        """The layouts that place every state array of a dict without ``state_layout`` (PyTorch's
        two keys): the current ones, or, when they lack a name that is made on the first step
        (a momentum buffer), those of a copy of this optimizer after one step on zero gradients.
        Other keys the optimizer doesn't keep are a user's (stored beside the buffers)."""
        known = {name for layout in layouts for name in self._names(layout)}
        wanted = {k for entry in saved_state.values() if isinstance(entry, Mapping) for k in entry}
        if not (wanted & _LAZY_STATE_KEYS) - known:
            return layouts
        return self._probe_layouts() or layouts

    def _probe_layouts(self) -> list[list[list[str]]] | None:
        """The layouts of a copy of this optimizer after one step on zero gradients (state made on
        the first step included), or None for an optimizer that needs a closure."""
        import copy

        probe = copy.deepcopy(self)
        with no_grad():
            for group in probe.param_groups:
                for p in group["params"]:
                    p.grad = p.detach() * 0.0
            try:
                probe._raw_step()
            except Exception:  # an optimizer that needs a closure (LBFGS): keep what is known
                return None
        return probe._layouts()

    def __repr__(self) -> str:
        # PyTorch's layout to the character: a blank line between groups
        text = f"{type(self).__name__} ("
        for i, g in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            text += "".join(f"    {k}: {g[k]}\n" for k in sorted(g) if k != "params")
        return text + ")"


_hook_methods(Optimizer)


# ---------------------------------------------------------------------- helpers
class _BoundToSelf:
    """In a pickled optimizer, a method bound to the optimizer itself (the ``step`` a scheduler
    wraps): its function, bound again to the loaded optimizer."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __reduce__(self) -> Any:
        return (_BoundToSelf, (self.func,))


def _jsonable(v: Any) -> Any:
    if isinstance(v, Tensor) and v.numel() == 1:
        # a Tensor lr stays a Tensor, as in PyTorch's state_dict (a host copy: the dict is a snapshot);
        # loading fills the group's own Tensor with its number
        return wrap_array(to_host(v.detach().array).copy())
    if isinstance(v, tuple):  # kept a tuple (betas, etas...), as PyTorch's; ds.save keeps tuples too
        return tuple(_jsonable(x) for x in v)
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()  # host: a NumPy scalar hyperparameter made JSON-able
    return v


def _host_value(v: Any) -> Any:
    """A saved state value as the loader reads it: a Tensor's array, another framework's tensor
    (``__array__``) as a host array, arrays and numbers as they are."""
    if isinstance(v, Tensor):
        return v.array
    if not is_array(v) and hasattr(v, "__array__") and not isinstance(v, (int, float)):
        return to_host(v)  # a saved value from elsewhere (a PyTorch tensor, bfloat16 widened) is host data
    return v


def _plain_layout(layout: Any) -> Any:
    """A saved ``state_layout`` as lists of lists of names (a JSON round trip or a user's tuples may
    change the containers, not the names), or None when the state has none."""
    if not isinstance(layout, (list, tuple)):
        return None
    return [[list(slot) for slot in group] for group in layout]


def _layout_names(layouts: Any) -> list[str]:
    """The state names a layout keeps, in order (for messages)."""
    names: list[str] = []
    for group in layouts or ():
        for slot in group:
            names.extend(k for k in slot if k not in names)
    return names


def _count(v: Any) -> int:
    """A saved step count as an int: PyTorch saves one as a float32 0-d tensor, older checkpoints as an int."""
    if is_array(v):
        v = to_host(v)  # host: one saved number, read once per load
    return int(float(v))  # host: see above


def _set_count(owner: str, key: str, value: Any) -> int:
    """A step count assigned into ``opt.state[p]`` (a number, or a 0-d Tensor or array) as an int >= 0."""
    arr = value.detach().array if isinstance(value, Tensor) else value
    try:
        count = float(to_host(arr) if is_array(arr) else arr)  # host: one number, set once
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{owner}: state {key!r} must be a number, got {type(value).__name__}") from None
    if not (count >= 0 and count == int(count)):
        raise ArgumentError(f"{owner}: state {key!r} must be a whole number >= 0, got {count}")
    return int(count)


def _int_key(key: Any) -> Any:
    """A state key that a JSON round trip made a string (``"0"``) as the position it was."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return key


def _clone_state(value: Any) -> Any:
    """A copy of a saved state value: Tensors cloned (detached), containers copied, the rest kept."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if is_array(value):
        return value.copy()
    if isinstance(value, dict):
        return {k: _clone_state(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone_state(v) for v in value)
    return value


def _cast_state(param: Tensor, value: Any, key: Any) -> Any:
    """A loaded state value as PyTorch casts it: floating tensors to the parameter's dtype and device,
    except a ``step`` count; arrays become Tensors (the subclass's step calls Tensor methods on them)."""
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v, None) for v in value)
    if not isinstance(value, Tensor) and not is_array(value):
        return value
    array = value.detach().array if isinstance(value, Tensor) else value
    array = to_device(array, device_of(param.array))
    if key != "step" and array.dtype.kind == "f" and array.dtype != param.array.dtype:
        array = array.astype(param.array.dtype)
    else:
        array = array.copy()
    return wrap_array(array)


def _is_saved_tensor(v: Any) -> bool:
    """Whether a saved hyperparameter is a tensor: downslope's, or another framework's (``__array__``)."""
    if isinstance(v, Tensor):
        return True
    return not is_array(v) and not isinstance(v, (int, float, str, bool)) and hasattr(v, "__array__")


def _restore_like(v: Any, current: Any, key: Any = None) -> Any:
    """A saved hyperparameter as the group takes it: JSON turns tuples into lists, so they get back the
    type they had (betas); a saved Tensor lr (downslope's, or PyTorch's tensor) fills the group's Tensor
    lr, or becomes a downslope Tensor where the group's lr is a number (PyTorch puts the saved Tensor in
    the group); any other saved one-element tensor becomes the number it holds, as the constructor
    takes it."""
    if isinstance(v, (list, tuple)) and any(_is_saved_tensor(x) for x in v):
        v = type(v)(_restore_like(x, None) for x in v)  # PyTorch's Tensor betas: their numbers
    if isinstance(current, tuple) and isinstance(v, list):
        return tuple(v)
    if _is_saved_tensor(v):
        array = to_host(v.detach().array if isinstance(v, Tensor) else v)  # host: a hyperparameter, read once
        if array.size == 1:
            if key == "lr" and not (isinstance(current, Tensor) and current.numel() == 1):
                return wrap_array(array.copy())
            v = array.reshape(()).item()  # host: see above
    if isinstance(current, Tensor) and current.numel() == 1 and not isinstance(v, Tensor):
        with no_grad():  # a Tensor lr stays the group's Tensor, as the schedulers write it
            current.fill_(v)
        return current
    return v


class _ParamList(list[Any]):
    """A param group's ``params``: a list that notes its own edits (append, extend, replace, pop...),
    so a step finds out with one attribute read that the group's buffers must be made again, as
    PyTorch's optimizers step whatever ``param_groups[i]['params']`` holds."""

    edited = False

    def __reduce__(self) -> Any:
        # made from its items at once (pickle and deepcopy would otherwise append them one by one,
        # which notes an edit); an edit not yet seen by a step travels in the state
        return (_ParamList, (list(self),), self.__dict__ or None)


def _noting_edit(name: str) -> Any:
    """list's method ``name`` on a :class:`_ParamList`, noting that the list was edited."""
    method = getattr(list, name)

    def edit(self: _ParamList, *args: Any, **kwargs: Any) -> Any:
        self.edited = True
        return method(self, *args, **kwargs)

    edit.__name__ = edit.__qualname__ = name
    return edit


for _edit in "append extend insert remove pop clear sort reverse __setitem__ __delitem__ __iadd__ __imul__".split():
    setattr(_ParamList, _edit, _noting_edit(_edit))


def _as_param_list(params: Any, owner: str, complex_ok: bool = False) -> list[Tensor]:
    if isinstance(params, Tensor):
        return _as_param_list([params], owner, complex_ok)
    if isinstance(params, (set, frozenset)):
        raise ArgumentTypeError(
            f"{owner}: parameters must be an ordered collection (list, tuple, generator), got a set: a set's order "
            "changes between runs, so a saved optimizer state could not be matched to its parameters"
        )
    if isinstance(params, dict):
        raise ArgumentTypeError(
            f"{owner}: expected an iterable of tensors, got a dict (pass a list of param-group dicts instead)"
        )
    try:
        out = list(params)
    except TypeError:
        raise ArgumentTypeError(f"{owner}: expected an iterable of tensors, got {type(params).__name__}") from None
    for i, p in enumerate(out):
        if not isinstance(p, Tensor):
            raise ArgumentTypeError(f"{owner}: parameter {i} is a {type(p).__name__}, expected a downslope Tensor")
        if not p.is_leaf:
            raise ArgumentError(
                f"{owner}: parameter {i} is not a leaf tensor (it was computed from others); can't optimize it"
            )
        if p.dtype.kind == "c" and not complex_ok:
            raise ArgumentTypeError(
                f"{owner}: parameter {i} is complex ({p.dtype}); {owner} does not support complex "
                "parameters: optimize a real parameter w and use view_as_complex(w) in the model instead"
            )
        if p.dtype.kind not in "fc":
            raise ArgumentTypeError(
                f"{owner}: parameter {i} has dtype {p.dtype}; only floating tensors can be optimized"
            )
    return out


class _Unmade:
    """Stands in for the bucket of a parameter still uninitialized (a lazy module's before its first
    forward) in the positions: it has no state yet."""

    state: tuple[()] = ()  # no transform state: subclasses looking for their slots find none

    def __init__(self, param: Tensor) -> None:
        self.params = [param]
        self.started = [False]


_UNMADE_STATE = (
    "{name}.{what}: the parameter is still uninitialized (a lazy module's, before its first forward), "
    "so it has no state buffers yet; run a forward with a batch first"
)


def _real_pairs(a: Any) -> Any:
    """A complex array as real (..., 2) pairs (real, imaginary) (a view when it is contiguous)."""
    return backend.namespace_of(a).ascontiguousarray(a)[..., None].view(backend.real_of(a.dtype))


class _ComplexBucket(InPlaceBucket):
    """A complex parameter stepped as its view_as_real pair, as torch's optimizers step one: each real and
    imaginary part is updated as a real parameter (Adam's second moment per part, not of |g|^2). The
    buffer holds the (..., 2) real pairs; each step reads the parameter's values into it and writes the
    result back, so the parameter's memory stays its own (the model's views of it follow)."""

    def __init__(self, params: list[Tensor], transform: GradientTransformation) -> None:
        p = params[0]
        pairs = _real_pairs(p.array)
        self.params = params
        self.shapes = [pairs.shape]
        self.sizes = [int(pairs.size)]
        self.offsets = [0, self.sizes[0]]
        self.dtype = pairs.dtype
        self.flat = backend.namespace_of(pairs).empty(self.sizes[0], self.dtype)
        self.views = [self.flat.reshape(pairs.shape)]
        self.views[0][...] = pairs
        self.grad = np.empty_like(self.flat)
        self.state = transform.init(self.flat)
        self.steps = np.zeros(1, np.float32)  # host: the step count (bookkeeping)
        self.started = np.zeros(1, bool)  # host: see FlatBucket
        self.uniform = True
        self.count = 0
        self.scratch = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.flat = backend.namespace_of(self.params[0].array).zeros(self.sizes[0], self.dtype)
        self.views = [self.flat.reshape(self.shapes[0])]
        self.grad = np.empty_like(self.flat)
        self.scratch = {}

    def sync(self) -> None:
        """Check the parameter (its array stays the caller's: each step reads it)."""
        new = self.params[0].array
        if type(new) is not type(self.flat) or device_of(new) != device_of(self.flat):
            self.move(new)
        if new.dtype.kind != "c" or backend.real_of(new.dtype) != self.dtype or new.shape + (2,) != self.shapes[0]:
            raise StateError(
                f"optimizer: a complex parameter of shape {self.shapes[0][:-1]} changed to {new.dtype} {tuple(new.shape)} "
                "after the optimizer was built; build a new optimizer for the new parameters"
            )

    def gather_grads(self) -> tuple[np.ndarray | None, list[int] | None]:
        g = self.params[0].grad
        if g is None:
            return None, None
        if g.array.shape + (2,) != self.shapes[0]:
            raise StateError(
                f"optimizer: parameter of shape {self.shapes[0][:-1]} has a .grad of shape {g.array.shape}"
            )
        grad = g.array if g.array.dtype.kind == "c" else g.array.astype(backend.complex_of(self.dtype))
        self.grad[...] = _real_pairs(grad).reshape(-1)
        return self.grad, None

    def apply(
        self, transform: GradientTransformation, group: dict[str, Any], g: np.ndarray, present: list[int] | None
    ) -> None:
        p = self.params[0]
        self.views[0][...] = _real_pairs(p.array)
        FlatBucket.apply(self, transform, group, g, present)
        p.array[...] = self.flat.view(p.array.dtype).reshape(p.array.shape)


def _as_groups(params: Any, owner: str) -> list[dict[str, Any]]:
    if isinstance(params, Tensor):
        raise ArgumentTypeError(
            f"{owner}: params should be an iterable of Tensors or dicts, got a single Tensor; wrap it: [w]"
        )
    if isinstance(params, (set, frozenset)):
        _as_param_list(params, owner)
    if isinstance(params, dict):
        raise ArgumentTypeError(
            f"{owner}: expected an iterable of tensors or of param-group dicts, got a dict; wrap it: [group]"
        )
    try:
        items = list(params)
    except TypeError:
        raise ArgumentTypeError(
            f"{owner}: expected an iterable of tensors or param-group dicts, got {type(params).__name__}"
        ) from None
    if not items:
        raise ArgumentError(f"{owner}: got an empty parameter list")
    if all(isinstance(x, tuple) for x in items):
        return [{"params": items}]
    if all(isinstance(x, dict) for x in items):
        return items
    if any(isinstance(x, dict) for x in items):
        raise ArgumentTypeError(f"{owner}: params mixes tensors and param-group dicts; give either tensors or dicts")
    return [{"params": items}]


# ---------------------------------------------------------------------- the ``state`` view
class _ParamState(dict[Any, Any]):
    """One parameter's state as ``opt.state[p]`` gives it: a dict whose assignments reach the buffers
    (for the optimizer's own keys) or are stored beside them (any other key)."""

    def __init__(
        self, opt: Optimizer, gi: int, b: FlatBucket, j: int, entries: dict[str, Any], user: dict[Any, Any]
    ) -> None:
        super().__init__(entries)
        dict.update(self, user)
        self._where = (opt, gi, b, j)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))  # a copy (copy.deepcopy, pickle) is a plain snapshot

    def _refresh(self) -> None:
        opt, gi, b, j = self._where
        entry = opt._entry_view(gi, b, j, opt._names(opt._layouts()[gi])) if b.started[j] else {}
        dict.clear(self)
        dict.update(self, entry)
        dict.update(self, opt._user_state.get(b.params[j], {}))

    def _user(self) -> dict[Any, Any]:
        opt, _, b, j = self._where
        return opt._user_state.setdefault(b.params[j], {})

    def __setitem__(self, key: Any, value: Any) -> None:
        opt, gi, b, j = self._where
        if opt._builtin_key(gi, key):
            opt._set_state_entry(gi, b, j, key, value)
            self._refresh()
        else:
            self._user()[key] = value
            dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise StateDictError(f"no optimizer state {key!r}")  # a KeyError, as a dict's
        opt, gi, b, j = self._where
        user = opt._user_state.get(b.params[j], {})
        if key in user:
            del user[key]
            dict.__delitem__(self, key)
            return
        if len(self) - len(user) == 1:  # the whole state (SGD's momentum buffer): the parameter starts afresh
            opt._reset_state(b, j)
            self._refresh()
            return
        raise StateError(
            f"{type(opt).__name__}: can't delete state {key!r} alone (the next step needs it); "
            "assign a new value, or reset the parameter with opt.state[p] = {}"
        )

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            if default:
                return default[0]
            raise StateDictError(f"no optimizer state {key!r}")  # a KeyError, as a dict's
        value = self[key]
        opt, _, b, j = self._where
        if key not in opt._user_state.get(b.params[j], {}) and isinstance(value, Tensor):
            value = value.clone()  # the buffer's values: the reset below zeroes the view
        del self[key]
        return value

    def popitem(self) -> Any:
        raise StateError("optimizer state: popitem() is not supported; reset the parameter with opt.state[p] = {}")

    def clear(self) -> None:
        opt, _, b, j = self._where
        if b.started[j]:
            opt._reset_state(b, j)
        opt._user_state[b.params[j]] = {}
        self._refresh()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


class _OptimizerState(dict[Any, Any]):
    """``opt.state`` of a built-in optimizer: parameter -> :class:`_ParamState` for the parameters that
    have state; ``opt.state[p]`` of one without gives an empty entry (PyTorch's ``defaultdict``), and
    assigning or deleting a parameter's entry, or ``clear()``, resets its state in the buffers."""

    def __init__(self, opt: Optimizer) -> None:
        super().__init__()
        self._opt = opt

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))

    def __missing__(self, key: Any) -> _ParamState:
        opt = self._opt
        gi, b, j = opt._where(key)
        # as PyTorch's defaultdict: looking a parameter up makes its (empty) entry
        entry = _ParamState(opt, gi, b, j, {}, opt._user_state.setdefault(key, {}))
        dict.__setitem__(self, key, entry)
        return entry

    def __setitem__(self, key: Any, value: Any) -> None:
        opt = self._opt
        if not isinstance(value, Mapping):
            raise ArgumentTypeError(
                f"{type(opt).__name__}.state[p] must be a dict of state, got {type(value).__name__}"
            )
        value = _detached_entry(value)  # copies taken before the reset: the values may be views of this very entry
        entry = self[key]
        entry.clear()
        for k, v in value.items():
            entry[k] = v

    def __delitem__(self, key: Any) -> None:
        opt = self._opt
        gi, b, j = opt._where(key)
        if b.started[j]:
            opt._reset_state(b, j)
        opt._user_state.pop(key, None)
        if dict.__contains__(self, key):
            dict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            if default:
                return default[0]
            raise StateDictError(f"no optimizer state {key!r}")  # a KeyError, as a dict's
        snapshot = _detached_entry(self[key])
        del self[key]
        return snapshot

    def popitem(self) -> Any:
        raise StateError("optimizer state: popitem() is not supported; use opt.state.clear() or del opt.state[p]")

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return self[key]


# the buffers PyTorch's optimizers keep: in a saved entry of an optimizer that keeps none of
# them, they mean the state was saved by another optimizer (a user's own keys load as they are)
_OTHER_OPTIMIZERS_STATE = frozenset(
    {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta", "grad_avg", "sum",
     "prev", "step_size", "eta", "mu", "ax", "exp_inf", "mu_product", "row_var", "col_var", "variance"}
)  # fmt: skip

_DUPLICATE_PARAMS = (  # torch's words
    "optimizer contains a parameter group with duplicate parameters; in future, this will cause an error; "
    "see github.com/pytorch/pytorch/issues/40967 for more information"
)

# state keys a transform makes at the first step, not at init (so absent from a fresh layout)
_LAZY_STATE_KEYS = frozenset({"momentum_buffer", "max_exp_avg_sq", "grad_avg"})


#: PyTorch's type of an optimizer's ``params`` argument (``torch.optim.optimizer.ParamsT``): tensors,
#: param-group dicts or ``named_parameters()`` pairs
ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


def _use_grad_for_differentiable(func: Callable[..., Any]) -> Callable[..., Any]:
    """PyTorch's decorator of its optimizers' ``step`` (code copied from PyTorch uses it): runs the
    step with gradient recording on only when the optimizer's ``defaults['differentiable']`` is set,
    the previous mode restored after."""

    @functools.wraps(func)
    def _use_grad(self: Any, *args: Any, **kwargs: Any) -> Any:
        with set_grad_enabled(bool(self.defaults.get("differentiable", False))):  # host: a Python flag
            return func(self, *args, **kwargs)

    return _use_grad


def _default_to_fused_or_foreach(
    params: list[Tensor], differentiable: bool, use_fused: bool = False
) -> tuple[bool, bool]:
    """PyTorch's choice of its fused or foreach kernels for ``params`` (optimizers copied from timm call
    it): ``(False, False)``, PyTorch's answer for host tensors; downslope's built-in optimizers update
    their flat buffers in one pass either way.

    Example:
        >>> _default_to_fused_or_foreach([], differentiable=False)
        (False, False)
    """
    return False, False


def _detached_entry(entry: Any) -> Any:
    """A parameter's state entry with the values of the optimizer's own keys copied (they view its
    buffers, which a reset zeroes) and a user's values kept as they are (the very objects)."""
    if not isinstance(entry, Mapping):
        return entry
    if isinstance(entry, _ParamState):
        opt, _, b, j = entry._where
        user = opt._user_state.get(b.params[j], {})
        return {k: (v.detach().clone() if isinstance(v, Tensor) and k not in user else v) for k, v in entry.items()}
    return dict(entry)
