"""Automatic mixed precision with PyTorch's names: ``autocast`` and ``GradScaler``.

downslope has no float16 or bfloat16 kernels (NumPy has no bfloat16 at all), so code written for
PyTorch's mixed precision runs here in float32:

- ``autocast(...)`` accepts PyTorch's arguments, checks them as PyTorch does, and computes the block
  in float32: the results are those of the program without autocast (no speed-up). It warns once
  per process when enabled, so that nobody expects half-precision speed or memory.
- ``GradScaler`` is PyTorch's dynamic loss scaling, rule for rule: ``scale`` multiplies the loss,
  ``unscale_``/``step`` divide the gradients back and skip the optimizer step when one of them is
  not finite, ``update`` backs the scale off after such a step and grows it after
  ``growth_interval`` clean ones. In float32 the scaling changes nothing but the last bits of the
  gradients, and skipping non-finite steps still guards training.

Example:
    >>> import downslope as ds
    >>> model = ds.nn.Linear(2, 1)
    >>> opt = ds.optim.SGD(model.parameters(), lr=0.1)
    >>> scaler = ds.amp.GradScaler("cpu")
    >>> loss = model(ds.ones(4, 2)).square().mean()
    >>> scaler.scale(loss).backward()
    >>> scaler.step(opt)
    >>> scaler.update()
    >>> scaler.get_scale()
    65536.0
"""

from __future__ import annotations

import functools
import importlib.machinery
import sys
import threading
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .backend import namespace_of
from .devices import to_host
from .errors import ArgumentError, StateError

__all__ = [
    "GradScaler",
    "autocast",
    "custom_bwd",
    "custom_fwd",
    "get_autocast_cpu_dtype",
    "get_autocast_dtype",
    "is_autocast_available",
    "is_autocast_cpu_enabled",
    "is_autocast_enabled",
]

# The device types PyTorch's autocast accepts (it raises for any other).
_DEVICE_TYPES = ("cuda", "cpu", "xpu", "mps", "hpu", "xla", "mtia", "maia", "ipu", "privateuseone")
_state = threading.local()
_warned = [False]


def _enabled_map() -> dict[str, bool]:
    """This thread's autocast switch per device type (PyTorch keeps it per thread too)."""
    enabled = getattr(_state, "enabled", None)
    if enabled is None:
        enabled = _state.enabled = {}
    return enabled


def _dtype_map() -> dict[str, Any]:
    dtypes = getattr(_state, "dtypes", None)
    if dtypes is None:
        dtypes = _state.dtypes = {}
    return dtypes


def _device_kind(device_type: Any, where: str) -> str:
    if not isinstance(device_type, str):
        raise ArgumentError(f"{where}: expected device_type of type str, got {type(device_type).__name__}")
    kind = device_type.partition(":")[0]
    if kind not in _DEVICE_TYPES:
        raise ArgumentError(
            f"{where}: unsupported device_type {device_type!r}; expected one of {', '.join(_DEVICE_TYPES)}"
        )
    return kind


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether autocast is switched on for ``device_type`` in this thread: inside an enabled ``autocast``
    block and not inside a nested ``autocast(enabled=False)`` one (it computes in float32 all the same).

    Example:
        >>> import downslope as ds
        >>> with ds.autocast("cpu", enabled=False):
        ...     ds.is_autocast_enabled("cpu")
        False
    """
    return _enabled_map().get(device_type.partition(":")[0], False)


def get_autocast_dtype(device_type: str) -> Any:
    """The dtype an ``autocast`` block for ``device_type`` names (PyTorch's: ``bfloat16`` on the CPU,
    ``float16`` elsewhere, or the open block's ``dtype=``); downslope computes in float32 whatever it is.

    Example:
        >>> import downslope as ds
        >>> ds.get_autocast_dtype("cpu") is ds.bfloat16
        True
    """
    kind = _device_kind(device_type, "get_autocast_dtype")
    dtypes = _dtype_map()
    if kind in dtypes:
        return dtypes[kind]
    from .backend import bfloat16, float16

    return bfloat16 if kind == "cpu" else float16


def is_autocast_cpu_enabled() -> bool:
    """PyTorch's older spelling of ``is_autocast_enabled("cpu")``.

    Example:
        >>> is_autocast_cpu_enabled()
        False
    """
    return is_autocast_enabled("cpu")


def get_autocast_cpu_dtype() -> Any:
    """PyTorch's older spelling of ``get_autocast_dtype("cpu")``.

    Example:
        >>> import downslope as ds
        >>> get_autocast_cpu_dtype() is ds.bfloat16
        True
    """
    return get_autocast_dtype("cpu")


def is_autocast_available(device_type: str) -> bool:
    """Whether ``autocast`` accepts ``device_type`` (every device type PyTorch's accepts; the blocks
    compute in float32).

    Example:
        >>> is_autocast_available("cpu")
        True
    """
    return isinstance(device_type, str) and device_type.partition(":")[0] in _DEVICE_TYPES


class autocast:  # noqa: N801  (PyTorch's name, used as a context manager and a decorator)
    """``torch.autocast``: accepted, and the block computes in float32 (see the module docstring).

    As in PyTorch, a block sets the device type's autocast switch to its ``enabled`` (a nested
    ``autocast(enabled=False)`` turns it off) and its dtype to ``dtype`` (the current one when None),
    and restores both on exit.

    Example:
        >>> import downslope as ds
        >>> with ds.autocast(device_type="cpu", dtype=ds.bfloat16, enabled=False):
        ...     y = ds.ones(2) * 2
        >>> str(y.dtype)
        'float32'
    """

    def __init__(self, device_type: str, dtype: Any = None, enabled: bool = True, cache_enabled: Any = None) -> None:
        kind = _device_kind(device_type, "autocast")
        from .device import cuda

        if enabled and kind == "cuda" and not cuda.is_available():
            warnings.warn(
                "User provided device_type of 'cuda', but CUDA is not available. Disabling", UserWarning, stacklevel=2
            )
            enabled = False
        self.device = kind
        self.fast_dtype = get_autocast_dtype(kind) if dtype is None else dtype
        self._enabled = bool(enabled)
        self._cache_enabled = cache_enabled
        if self._enabled and not _warned[0]:
            _warned[0] = True
            warnings.warn(
                "autocast: downslope has no float16/bfloat16 kernels, so this block computes in float32: "
                "the results are those of the program without autocast, and it is not faster",
                UserWarning,
                stacklevel=2,
            )

    def __enter__(self) -> autocast:
        enabled, dtypes = _enabled_map(), _dtype_map()
        self._saved = (enabled.get(self.device), dtypes.get(self.device))
        enabled[self.device] = self._enabled
        dtypes[self.device] = self.fast_dtype
        return self

    def __exit__(self, *exc: object) -> None:
        for table, saved in zip((_enabled_map(), _dtype_map()), self._saved):
            if saved is None:
                table.pop(self.device, None)
            else:
                table[self.device] = saved

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device, self.fast_dtype, self._enabled):
                return func(*args, **kwargs)

        return wrapper


def _cast_inputs(value: Any, device_type: str, dtype: Any) -> Any:
    """PyTorch's casting of ``custom_fwd(cast_inputs=...)``: floating tensors on ``device_type`` (not
    float64) to ``dtype``, through lists, tuples and mappings. downslope has no half precision: a dtype it
    cannot hold (bfloat16) leaves the tensors in float32, as autocast itself does."""
    from .backend import float16 as half
    from .tensor import Tensor

    if isinstance(value, Tensor):
        eligible = value.is_floating_point() and value.device.type == device_type and value.dtype != np.float64
        return value.to(dtype) if eligible and dtype == half else value
    if isinstance(value, (str, bytes, np.ndarray)):
        return value
    if isinstance(value, Mapping):
        return {_cast_inputs(k, device_type, dtype): _cast_inputs(v, device_type, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_inputs(v, device_type, dtype) for v in value)
    return value


def custom_fwd(fwd: Callable[..., Any] | None = None, *, device_type: str, cast_inputs: Any = None) -> Any:
    """``torch.amp.custom_fwd``: decorates an autograd Function's ``forward``. It records whether autocast
    was on (for :func:`custom_bwd`); with ``cast_inputs`` inside an enabled block, it casts floating inputs
    and runs ``forward`` with autocast off, as PyTorch's (downslope computes in float32 either way).

    Example:
        >>> import downslope as ds
        >>> class Double(ds.autograd.Function):
        ...     @staticmethod
        ...     @custom_fwd(device_type="cpu")
        ...     def forward(ctx, x):
        ...         return x * 2
        ...     @staticmethod
        ...     @custom_bwd(device_type="cpu")
        ...     def backward(ctx, g):
        ...         return g * 2
        >>> Double.apply(ds.ones(2)).tolist()
        [2.0, 2.0]
    """
    if not isinstance(device_type, str):
        raise ArgumentError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    forward = fwd

    @functools.wraps(forward)
    def decorate_fwd(*args: Any, **kwargs: Any) -> Any:
        args[0]._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            args[0]._fwd_used_autocast = is_autocast_enabled(device_type)
            return forward(*args, **kwargs)
        args[0]._fwd_used_autocast = False
        if not is_autocast_enabled(device_type):
            return forward(*args, **kwargs)
        with autocast(device_type=device_type, enabled=False):
            return forward(
                *_cast_inputs(args, device_type, cast_inputs), **_cast_inputs(kwargs, device_type, cast_inputs)
            )

    return decorate_fwd


def custom_bwd(bwd: Callable[..., Any] | None = None, *, device_type: str) -> Any:
    """``torch.amp.custom_bwd``: runs an autograd Function's ``backward`` under the autocast state its
    :func:`custom_fwd` ``forward`` saw, as PyTorch's.

    Example:
        >>> wrapped = custom_bwd(lambda ctx, g: g, device_type="cpu")
        >>> callable(wrapped)
        True
    """
    if not isinstance(device_type, str):
        raise ArgumentError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    backward = bwd

    @functools.wraps(backward)
    def decorate_bwd(*args: Any, **kwargs: Any) -> Any:
        with autocast(device_type=device_type, enabled=args[0]._fwd_used_autocast, dtype=args[0]._dtype):
            return backward(*args, **kwargs)

    return decorate_bwd


_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    """``torch.amp.GradScaler``: dynamic loss scaling with PyTorch's rules and defaults.

    ``scale(loss)`` multiplies by the scale (65536 at first). ``step(optimizer)`` unscales the
    gradients (unless ``unscale_`` already did) and runs ``optimizer.step()`` only when all of them
    are finite. ``update()`` then multiplies the scale by ``backoff_factor`` (0.5) if a step was
    skipped, or by ``growth_factor`` (2) after ``growth_interval`` (2000) finite steps in a row.
    Reading whether the gradients are finite costs one wait for the device per step on a GPU, as in
    PyTorch. On device ``"cuda"`` without a GPU it warns and disables itself, as PyTorch does.

    Example:
        >>> import downslope as ds
        >>> scaler = ds.amp.GradScaler("cpu", init_scale=8.0)
        >>> scaler.scale(ds.tensor(1.5))
        tensor(12.)
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        from .device import cuda

        self._device = str(device)
        if enabled and self._device.partition(":")[0] == "cuda" and not cuda.is_available():
            warnings.warn(
                "torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                UserWarning,
                stacklevel=2,
            )
            enabled = False
        self._enabled = bool(enabled)
        if self._enabled:
            if growth_factor <= 1.0:
                raise ArgumentError("GradScaler: the growth factor must be > 1.0")
            if backoff_factor >= 1.0:
                raise ArgumentError("GradScaler: the backoff factor must be < 1.0")
        self._scale = float(np.float32(init_scale))
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ the training step
    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or lists and tuples of them) times the scale; unchanged when disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * np.float32(self._scale)

    def unscale_(self, optimizer: Any) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether all are finite.
        Call it before clipping gradients; at most once per optimizer between two ``update()``."""
        if not self._enabled:
            return
        state = self._state_of(optimizer)
        if state["stage"] is _UNSCALED:
            raise StateError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is _STEPPED:
            raise StateError("unscale_() is being called after step().")
        inverse = np.float32(1.0 / np.float64(self._scale))  # PyTorch: the scale's float64 reciprocal, as float32
        found_inf: Any = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.array
                if g.dtype == np.float16:
                    raise ArgumentError("Attempting to unscale FP16 gradients.")
                np.multiply(g, inverse, out=g)
                found_inf = found_inf | ~namespace_of(g).isfinite(g).all()  # stays on the device
        state["found_inf"] = found_inf
        state["stage"] = _UNSCALED

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """``optimizer.step(*args, **kwargs)`` on the unscaled gradients, skipped when one of them is
        inf or NaN. Returns what ``optimizer.step`` returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise StateError("Closure use is not currently supported if GradScaler is enabled.")
        state = self._state_of(optimizer)
        if state["stage"] is _STEPPED:
            raise StateError("step() has already been called since the last update().")
        if state["stage"] is _READY:
            self.unscale_(optimizer)
        state["stage"] = _STEPPED
        if bool(to_host(state["found_inf"])):  # host: one read per step decides whether to step (as PyTorch)
            state["found_inf"] = True
            return None
        state["found_inf"] = False
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: Any = None) -> None:
        """Adjust the scale after the step(s) of this iteration (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            value = new_scale.item() if hasattr(new_scale, "item") else new_scale
            self._scale = float(np.float32(value))
        else:
            checked = [s for s in self._per_optimizer.values() if s["stage"] is not _READY]
            if not checked:
                raise StateError("No inf checks were recorded prior to update.")
            found_inf = any(bool(to_host(s["found_inf"])) for s in checked)  # host: already read in step()
            if found_inf:
                self._scale = float(np.float32(self._scale * self._backoff_factor))
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = np.float32(self._scale * self._growth_factor)
                    if np.isfinite(grown):  # an overflowing scale stays where it is
                        self._scale = float(grown)
                    self._growth_tracker = 0
        self._per_optimizer.clear()

    def _state_of(self, optimizer: Any) -> dict[str, Any]:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    # ------------------------------------------------------------------ settings and checkpoints
    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's keys; empty when disabled."""
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise StateError(
                "The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler."
            )
        self._scale = float(np.float32(state_dict["scale"]))
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


class _CudaAmp(types.ModuleType):
    """``ds.cuda.amp``, a module as ``torch.cuda.amp`` is (``from downslope.cuda.amp import autocast``): the
    deprecated spellings ``autocast(...)``, ``GradScaler(...)``, ``custom_fwd`` and ``custom_bwd`` for device
    "cuda", each with torch's FutureWarning where torch gives one."""

    @staticmethod
    def autocast(enabled: bool = True, dtype: Any = None, cache_enabled: bool = True) -> autocast:
        return autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    @staticmethod
    def GradScaler(*args: Any, **kwargs: Any) -> GradScaler:  # noqa: N802  (PyTorch's name)
        return GradScaler("cuda", *args, **kwargs)

    @staticmethod
    def custom_fwd(fwd: Callable[..., Any] | None = None, *, cast_inputs: Any = None) -> Any:
        """``torch.cuda.amp.custom_fwd``: :func:`custom_fwd` with ``device_type="cuda"``."""
        warnings.warn(
            "`torch.cuda.amp.custom_fwd(args...)` is deprecated. "
            "Please use `torch.amp.custom_fwd(args..., device_type='cuda')` instead.",
            FutureWarning,
            stacklevel=2,
        )
        return custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)

    @staticmethod
    def custom_bwd(bwd: Callable[..., Any]) -> Any:
        """``torch.cuda.amp.custom_bwd``: :func:`custom_bwd` with ``device_type="cuda"``."""
        warnings.warn(
            "`torch.cuda.amp.custom_bwd(args...)` is deprecated. "
            "Please use `torch.amp.custom_bwd(args..., device_type='cuda')` instead.",
            FutureWarning,
            stacklevel=2,
        )
        return custom_bwd(bwd, device_type="cuda")

    def __dir__(self) -> list[str]:
        # a module's dir() lists only its __dict__; the names live on the class
        return sorted(set(dir(type(self))) | set(self.__dict__))


cuda_amp = _CudaAmp("downslope.cuda.amp", _CudaAmp.__doc__)


class _CpuAmp(types.ModuleType):
    """``ds.cpu.amp``, a module as ``torch.cpu.amp`` is: the deprecated spellings ``autocast(...)`` (bfloat16
    by default, as there) and ``GradScaler(...)``, for device "cpu"."""

    @staticmethod
    def autocast(enabled: bool = True, dtype: Any = None, cache_enabled: bool = True) -> autocast:
        from .backend import bfloat16

        return autocast("cpu", dtype=bfloat16 if dtype is None else dtype, enabled=enabled, cache_enabled=cache_enabled)

    @staticmethod
    def GradScaler(*args: Any, **kwargs: Any) -> GradScaler:  # noqa: N802  (PyTorch's name)
        return GradScaler("cpu", *args, **kwargs)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(self.__dict__))


cpu_amp = _CpuAmp("downslope.cpu.amp", _CpuAmp.__doc__)


def _register_modules() -> None:
    """Enter ``cuda.amp`` and ``cpu.amp`` in ``sys.modules`` under torch's module paths, so that the import
    statements of code written for ``torch.cuda.amp`` find them (device.py enters their parents)."""
    for module in (cuda_amp, cpu_amp):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
        sys.modules.setdefault(module.__name__, module)


_register_modules()
