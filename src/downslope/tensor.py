"""Tensor: an array, its gradient, and the operation that produced it.

A tensor made by an op while gradients are being recorded keeps its parents (the input tensors),
its vector-Jacobian product rule (``_vjp``) and whatever that rule needs (``_saved``). The tensor
itself is the graph node, so there is no separate node object to allocate per op.
"""

from __future__ import annotations

import builtins
import copy
import functools
import itertools
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, SupportsIndex

import numpy as np

from . import backend
from . import devices as _devices
from .autograd import RemovableHandle as _RemovableHandle
from .autograd import _layout_back_vjp, _old_layout_view, _reads_input
from .autograd import backward as _backward
from .autograd_graph import grad_fn_of as _grad_fn_of
from .autograd_graph import pack_saved as _pack_saved
from .device import CPU as _CPU
from .device import default_factory_device as _default_factory_device
from .device import device as _Device
from .device import is_device_like as _is_device_like
from .device import resolve as _resolve
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    DeviceError,
    DTypeError,
    InvalidValueError,
    OutOfRangeError,
    ShapeError,
    StateError,
    UnevenDataError,
)
from .generator import as_numpy_generator as _as_numpy_generator
from .graph import VJPRule, _inplace_clock, _mode, _sigmoid_array
from .graph import anomaly_mode as _anomaly_mode
from .graph import inference_active as _inference_active
from .graph import no_grad as _no_grad
from .graph import node_name as _node_name
from .graph import note_forward_stack as _note_forward_stack
from .graph import rule_name as _torch_rule_name

Shape = tuple[int, ...]
_new_tuple = tuple.__new__  # Size(...) without its per-item checks: an array's shape is already ints

_NONLEAF_GRAD = (  # torch's words
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute won't be "
    "populated during autograd.backward(). If you indeed want the .grad field to be populated for a non-leaf "
    "Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure "
    "you access the leaf Tensor instead."
)
_NONLEAF_REQUIRES_GRAD = (  # torch's words
    "you can only change requires_grad flags of leaf variables. If you want to use a computed variable in "
    "a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
)

# Keywords of torch's factories that mean nothing on NumPy; accepted and ignored so ported calls work.
_IGNORED_OPTIONS = frozenset({"layout", "pin_memory", "memory_format", "non_blocking"})
# the default of the operand after the first in add_/sub_/addcmul_/addcdiv_ (and the out-of-place
# ones): present only in torch's deprecated scalar-first forms, so the current forms pay one identity test
_NO_OPERAND: Any = object()


def _torch_options(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Accept torch's no-op keywords, and ``generator=`` (a ds.Generator or NumPy Generator) for draws."""

    @functools.wraps(fn)
    def factory(*args: Any, generator: Any = None, **kwargs: Any) -> Tensor:
        for key in _IGNORED_OPTIONS.intersection(kwargs):
            if key == "layout" and kwargs[key] is _sparse.sparse_coo:  # an empty sparse tensor (zeros, empty)
                return _sparse.layout_factory(fn, args, kwargs)
            del kwargs[key]
        if generator is None:
            return fn(*args, **kwargs)
        with backend.use_generator(_as_numpy_generator(generator, fn.__name__)):
            return fn(*args, **kwargs)

    return factory


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4., 6.])
    """

    __slots__ = (
        "array",
        "_grad",  # .grad (a property that checks what is assigned)
        "_requires_grad",  # .requires_grad (a property: only floating tensors may require grad)
        "_parents",
        "_vjp",
        "_saved",
        "_needs",
        "_retains_grad",
        "_seq",
        "_vc",
        "_prior",  # set only on a tensor rebased by an in-place op: its previous history (a tensor)
        "_hooks",  # set only by register_hook: {key: hook}
        "_post_hooks",  # set only by register_post_accumulate_grad_hook: {key: hook}
        "_next",  # set only on the history an in-place op moved aside: the live tensor it came from
        "_fn",  # set only when its grad_fn gets hooks or metadata, or saved_tensors_hooks packed values (NodeState)
        "_view_of",  # set only on a view (_alias): the tensor it was taken from, None if taken under no_grad
        "_freed_edges",  # set by a pass without retain_graph on the nodes it freed and their inputs: autograd._Edges
        "__weakref__",
        # user attributes (fast.ai's ``out.g = ...``), as torch tensors take them; made on first use
        "__dict__",
    )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's functions on tensors, as on torch tensors: ``np.abs(t)`` computes on the values and
        gives a Tensor; on a tensor that requires grad it raises (the gradient would be lost), as
        torch does. ``ndarray * t`` and the other operators run the Tensor ops, so the graph is
        recorded (torch refuses those)."""
        if method == "__call__" and len(inputs) == 2 and not kwargs:
            if not _UFUNC_OPERATORS:  # filled on first use: the ops import this module
                _register_ufunc_operators()
            operator = _UFUNC_OPERATORS.get(ufunc)
            if operator is not None:
                return operator(*inputs)
        if _mode.enabled and any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
            raise StateError(
                f"numpy.{ufunc.__name__}: can't call NumPy on a Tensor that requires grad (the gradient would be "
                "lost); use tensor.detach().numpy(), or downslope's own function of the same name"
            )
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(o.array if isinstance(o, Tensor) else o for o in out)
        result = getattr(ufunc, method)(*(x.array if isinstance(x, Tensor) else x for x in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        if isinstance(result, tuple):
            return tuple(wrap_array(backend.as_array(r)) for r in result)
        return (
            wrap_array(backend.as_array(result))
            if _devices.is_array(result) or isinstance(result, np.generic)
            else result
        )

    array: np.ndarray  # the values; ``.data`` is PyTorch's view of them as a graph-free Tensor
    _grad: Tensor | None
    _requires_grad: bool
    _prior: Tensor
    _next: Tensor
    _hooks: dict[builtins.int, Any]
    _post_hooks: dict[builtins.int, Any]
    _fn: Any  # a graph.NodeState, see the slot
    _view_of: Tensor | None
    _freed_edges: list[Any]  # (weakref.ref to an input, its own edges) pairs, see the slot

    def __init__(self, data: Any = None, *sizes: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if (
            data is None
            or sizes
            or type(data) is backend.Size
            or (isinstance(data, (int, np.integer)) and not isinstance(data, bool))
        ):
            # torch's legacy constructor: Tensor() is empty, Tensor(n) / Tensor(rows, cols, ...) /
            # Tensor(Size([...])) a tensor of that shape (zeros here; torch leaves it uninitialised),
            # e.g. nn.Parameter(torch.Tensor(out_features)). A 0-d array stays data.
            shape = () if data is None else tuple(data) if type(data) is backend.Size else (data, *sizes)
            if data is None and not sizes:
                shape = (0,)
            if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
                raise ArgumentTypeError(
                    f"Tensor(...): expected data, or integer sizes such as Tensor(3, 4); got {(data, *sizes)!r}"
                )
            if any(s < 0 for s in shape):
                raise ShapeError(f"Tensor(...): trying to create a tensor with a negative dimension: {list(shape)}")
            data = np.zeros(tuple(builtins.int(s) for s in shape), backend.get_default_dtype())  # host: legacy form
        elif dtype is None and not isinstance(data, Tensor):
            # torch.Tensor(data) is float whatever the data holds, unlike torch.tensor(data):
            # torch.Tensor([1, 2]) and torch.Tensor(uint8_image_array) are float32 (so `* 2` cannot
            # wrap around in uint8). A Tensor keeps its dtype, as torch.Tensor(t) does.
            dtype = backend.get_default_dtype()
        self.array = to_array(data, dtype)
        self._grad = None
        self._requires_grad = False
        self._parents: tuple[Tensor, ...] = ()
        self._vjp: Callable[..., Any] | None = None
        self._saved: Any = None
        self._needs: tuple[bool, ...] | None = None
        self._retains_grad = False
        self._seq = 0  # leaves sort before every recorded op (see record_op)
        self._vc: list[int] | None = None  # version counter, made on the first in-place write (see _bump)
        if _inference_active[0] and _mode.inference:
            _mark_inference(self)
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basics
    @property
    def requires_grad(self) -> bool:
        """Whether ops on this tensor are recorded for backward (the getter is replaced below by the
        slot's own, which costs no Python call)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: builtins.bool) -> None:
        if value and self.array.dtype.kind not in "fc":
            raise DTypeError(
                "only Tensors of floating point and complex dtype can require gradients; "
                f"this tensor is {self.array.dtype}"
            )
        if not value and getattr(self, "_vjp", None) is not None:
            raise StateError(_NONLEAF_REQUIRES_GRAD)  # clearing it would silently cut the graph
        if value and getattr(self, "_vc", None).__class__ is _InferenceVersion and not _mode.inference:
            raise StateError(_INFERENCE_REQUIRES_GRAD)
        self._requires_grad = builtins.bool(value)  # host: a Python flag

    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by backward (None until then). An assigned gradient must have this
        tensor's shape, dtype and device, as in torch. Reading it on a non-leaf that does not
        retain its gradient warns, as torch does (backward never fills it)."""
        g = self._grad
        if g is None and self._vjp is not None and not self._retains_grad:
            warnings.warn(_NONLEAF_GRAD, UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise ArgumentTypeError(f"assigned grad expected to be a Tensor or None, got {type(value).__name__}")
            if value.array.shape != self.array.shape:
                raise ShapeError(
                    f"assigned grad has data of a different size: attempting to assign a gradient of size "
                    f"{list(value.array.shape)} to a tensor of size {list(self.array.shape)}"
                )
            if value.array.dtype != self.array.dtype:
                raise DTypeError(  # a TypeError, and a RuntimeError as torch's
                    f"assigned grad has data of a different type: {value.array.dtype}, the tensor is {self.array.dtype}"
                )
            if type(value.array) is not type(self.array) and _devices.device_of(value.array) != _devices.device_of(
                self.array
            ):
                raise DeviceError("assigned grad has data located on a different device")
        self._grad = value

    @property
    def data(self) -> Tensor:
        """The same storage as a Tensor outside the graph (PyTorch's ``.data``).

        Writing into it (``p.data.add_(...)``, ``p.data[0] = 1``) changes this tensor's values, and
        ``p.data = other`` replaces them; neither is seen by autograd. ``.array`` is the NumPy array.
        """
        if _conv_buffers and not self.array.flags.c_contiguous:
            _settle_layout(self)  # shared for good, as in PyTorch: no later layout may leave it behind
        if type(self.array) is not np.ndarray and isinstance(self.array, np.generic):
            _own_scalar(self)  # the alias must share memory with it
        t = wrap_array(self.array)
        if self.__class__ is not Tensor:
            _note_alias(self, t)
        _remember(_DATA_ALIASES, t)  # a write into it with a recorded operand is allowed (see _inplace_recorded)
        return t

    @data.setter
    def data(self, value: Any) -> None:
        new = value.array if isinstance(value, Tensor) else _devices.like(value, self.array)
        if new.dtype.kind not in "fiubc":
            raise ArgumentTypeError(f".data = ...: expected numbers or booleans, got dtype {new.dtype}")
        self.array = new
        _bump(self)  # ops recorded earlier read self.array at backward: they must not see the new values

    @property
    def shape(self) -> backend.Size:
        """The shape, a :class:`downslope.Size` (a tuple of ints with ``numel()``), as torch's."""
        return _new_tuple(backend.Size, self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape (PyTorch's ``size()``), or the length of one dimension. The shape is a
        :class:`downslope.Size`, as torch's (and as ``.shape``), so ``ds.BoolTensor(x.size())`` makes a
        tensor of that shape."""
        if dim is None:
            return _new_tuple(backend.Size, self.array.shape)
        return self.array.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor: it has no length (shape ()); use .numel() or .item()")
        return len(self.array)

    def __iter__(self) -> Iterator[Tensor]:
        # Without this, Python iterates via __getitem__ until IndexError: a 0-d tensor would give [].
        if self.array.ndim == 0:
            raise ArgumentTypeError(
                "iteration over a 0-d tensor: it has no elements to iterate (shape ()); use .item()"
            )
        return (self[i] for i in range(len(self.array)))

    @property
    def _base(self) -> Tensor | None:
        """The tensor this one is a view of, followed to the root (torch's ``._base``); None for a
        tensor with storage of its own. Views are known through the graph: one taken from a tensor
        that does not require grad (or under no_grad) is not tracked and reports None."""
        base = None
        t = self
        while _is_view_in_graph(t):
            t = base = next(
                p for p in t._parents if np.may_share_memory(t.array, p.array) or (p._vc is not None and p._vc is t._vc)
            )
        return base

    @property
    def is_leaf(self) -> bool:
        return self._vjp is None

    @property
    def grad_fn(self) -> Any:
        """The node of the op that made this tensor (a ``ds.autograd.graph.Node``: ``.name()``,
        ``.next_functions``, ``.register_hook``...), None for leaves and tensors made without recording.

        Example:
            >>> import downslope as ds
            >>> y = (ds.ones(2, requires_grad=True) * 3).sum()
            >>> y.grad_fn.name(), y.grad_fn is y.grad_fn
            ('SumBackward0', True)
        """
        if self._vjp is None:
            return None
        return _grad_fn_of(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.array.dtype.kind not in "fc":
            raise DTypeError(
                "only Tensors of floating point and complex dtype can require gradients; "
                f"this tensor is {self.array.dtype}"
            )
        if not requires_grad and self._vjp is not None:
            raise StateError(_NONLEAF_REQUIRES_GRAD)
        if requires_grad and getattr(self, "_vc", None).__class__ is _InferenceVersion and not _mode.inference:
            raise StateError(_INFERENCE_REQUIRES_GRAD)
        self._requires_grad = bool(requires_grad)  # host: a Python flag
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise StateError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def register_hook(self, hook: Callable[[Tensor], Any]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed during backward; a returned
        tensor replaces the gradient (e.g. to clip it). Returns a handle with ``remove()``.

        Example:
            >>> import downslope as ds
            >>> x = ds.tensor([1.0, 2.0], requires_grad=True)
            >>> _ = x.register_hook(lambda g: g * 10)
            >>> (x * x).sum().backward()
            >>> x.grad
            tensor([20., 40.])
        """
        if not self.requires_grad:
            raise StateError("cannot register a hook on a tensor that doesn't require gradient")
        owner: Tensor | None = self
        # after t_/squeeze_... the hooks registered before stay on the old layout's history; as torch (one
        # hook dict per tensor), later ones join them there, in order, and see that layout too
        while owner is not None and owner._vjp is _layout_back_vjp and getattr(owner, "_hooks", None) is None:
            owner = getattr(owner, "_prior", None)
        if owner is None or getattr(owner, "_hooks", None) is None:
            owner = self
        hooks = getattr(owner, "_hooks", None)
        if hooks is None:
            hooks = owner._hooks = {}
        key = next(_op_counter)
        hooks[key] = hook
        _inplace_clock.hooks += 1
        return _RemovableHandle(hooks, key)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> Any:
        """Call ``hook(tensor)`` on this leaf after backward has accumulated its ``.grad`` (torch 2.1+: an
        optimizer step per parameter as soon as its gradient is ready); the hook returns None.
        Not called by ``autograd.grad``, which leaves ``.grad`` alone. Returns a handle with ``remove()``.

        Example:
            >>> import downslope as ds
            >>> w = ds.tensor([1.0, 2.0], requires_grad=True)
            >>> _ = w.register_post_accumulate_grad_hook(lambda t: print(t.grad))
            >>> (w * w).sum().backward()
            tensor([2., 4.])
        """
        if not self.requires_grad:
            raise StateError("cannot register a hook on a tensor that doesn't require gradient")
        if self._vjp is not None:
            raise StateError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        hooks = getattr(self, "_post_hooks", None)
        if hooks is None:
            hooks = self._post_hooks = {}
        key = next(_op_counter)
        hooks[key] = hook
        _inplace_clock.hooks += 1  # the backward walk looks for hooks only while some are registered
        return _RemovableHandle(hooks, key)

    @property
    def retains_grad(self) -> builtins.bool:
        """Whether retain_grad() was called on this non-leaf tensor."""
        return self._vjp is not None and self._retains_grad

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        """The DLPack capsule of the values (shared memory), for ``torch.from_dlpack`` and its peers."""
        if self.requires_grad:
            raise StateError(
                "__dlpack__: cannot export a tensor that requires grad (the gradient would be lost); use tensor.detach()"
            )
        if type(self.array) is not np.ndarray and isinstance(self.array, np.generic):
            _own_scalar(self)
        array = self.array
        if any(stride < 0 for stride in getattr(array, "strides", ())):
            # a reversed view (NumPy's a[::-1]): torch's from_dlpack aborts the process on negative strides,
            # so a contiguous copy goes out, as DLPack lets a producer copy unless copy=False was asked
            if kwargs.get("copy") is False:
                raise BufferError(
                    f"__dlpack__: this tensor's strides {array.strides} include negative ones, which cannot be "
                    "shared without a copy (copy=False was asked); pass copy=None or use tensor.contiguous()"
                )
            array = backend.namespace_of(array).ascontiguousarray(array)
        return array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> tuple[builtins.int, builtins.int]:
        if type(self.array) is not np.ndarray and isinstance(self.array, np.generic):
            _own_scalar(self)
        return self.array.__dlpack_device__()

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        # As PyTorch: the values, the type and requires_grad travel; the recorded graph and .grad do
        # not (a pickled intermediate comes back as a leaf), so a pickle never drags the history of
        # every op behind a tensor along (nor recurses through a long one). ds.save never pickles.
        extra = {k: v for k, v in getattr(self, "__dict__", {}).items() if k != "_aliases"}
        return (_rebuild_tensor, (type(self), self.array, self.requires_grad, extra or None))

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        # A leaf's copy keeps its .grad, as in PyTorch; an intermediate's copy is a leaf holding its
        # values (PyTorch refuses to copy one, which breaks copying a model that caches one).
        t = _rebuild_tensor(type(self), copy.deepcopy(self.array, memo), self.requires_grad, None)
        memo[id(self)] = t
        if self._grad is not None and self._vjp is None:
            t.grad = copy.deepcopy(self._grad, memo)
        for k, v in getattr(self, "__dict__", {}).items():
            if k != "_aliases":
                setattr(t, k, copy.deepcopy(v, memo))
        return t

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory and the version counter, like PyTorch;
        ``.data`` shares memory only)."""
        if type(self.array) is not np.ndarray and isinstance(self.array, np.generic):
            _own_scalar(self)  # the alias must share memory with it
        t = wrap_array(self.array)
        t._vc = _version_counter(self)
        if _buffer_holders:
            _hold(t)
        if self.__class__ is not Tensor:
            _note_alias(self, t)
        return t

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number (copied from the device if need be)."""
        if self.array.size != 1:
            raise ShapeError(
                f"item(): only one-element tensors can be converted to Python scalars; shape is {tuple(self.shape)}"
            )
        return _devices.to_host(self.array).item()  # host: the caller asked for a Python number

    def numpy(self, *, force: builtins.bool = False) -> np.ndarray:
        """The underlying array (shared, not copied). As in torch, a tensor that requires grad refuses
        while grad mode is on (writes through the array would bypass autograd: use
        ``t.detach().numpy()``; under ``no_grad`` it is handed out), and so does a
        tensor on a GPU (``t.cpu().numpy()`` copies it to the host first). ``force=True`` is
        ``t.detach().cpu().numpy()``: shared on the host, a copy from a GPU.

        Example:
            >>> import downslope as ds
            >>> ds.tensor([1.0, 2.0], requires_grad=True).numpy(force=True)
            array([1., 2.], dtype=float32)
        """
        if force:
            return self.detach().cpu().numpy()
        if self.requires_grad and _mode.enabled:  # torch's check: under no_grad the values may be handed out
            raise StateError(_NUMPY_REQUIRES_GRAD)
        if type(self.array) is not np.ndarray and isinstance(self.array, np.generic):
            _own_scalar(self)
        if type(self.array) is not np.ndarray and _devices.device_of(self.array) != _CPU:
            raise ArgumentTypeError(
                f"can't convert {self.device} device type tensor to numpy. "
                "Use Tensor.cpu() to copy the tensor to host memory first."
            )
        if _conv_buffers and not self.array.flags.c_contiguous:
            _settle_layout(self)  # shared for good, as in PyTorch: no later layout may leave it behind
        return self.array

    def tolist(self) -> Any:
        return _devices.to_host(self.array).tolist()  # host: the caller asked for Python lists

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # NumPy 2's protocol: copy=True always copies, copy=False never does (ValueError when it would
        # have to), None copies only for a change of dtype.
        if self.requires_grad and _mode.enabled:  # torch's check: under no_grad the values may be handed out
            raise StateError(_NUMPY_REQUIRES_GRAD)
        if type(self.array) is not np.ndarray or (_conv_buffers and not self.array.flags.c_contiguous):
            self.numpy()  # refuses a device tensor with torch's message; settles a convolution's layout; owns a scalar
        if copy:  # np.array(t) asks for a copy; handing out self.array would let it write into the tensor
            return np.array(self.array, dtype=dtype, copy=True)  # host: NumPy asked for a host copy
        if dtype is None or np.dtype(dtype) == self.array.dtype:
            return self.array
        if copy is False:
            raise ArgumentError(
                f"Unable to avoid copy while creating an array as requested: the tensor is {self.array.dtype}, "
                f"{np.dtype(dtype)} was asked for with copy=False"
            )
        return self.array.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())  # host: the caller asked for a Python float

    def __int__(self) -> int:
        return int(self.item())  # host: the caller asked for a Python int

    def __complex__(self) -> complex:
        return complex(self.item())  # host: the caller asked for a Python complex

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise StateError(f"the truth value of a tensor with {self.array.size} elements is ambiguous")
        return bool(_devices.to_host(self.array))  # host: Python asked for a truth value

    def __hash__(self) -> int:
        return id(self)

    # torch.set_printoptions' settings as np.array2string's keywords (downslope.set_printoptions sets them)
    _print_options: ClassVar[dict[str, Any]] = {"precision": 4}

    def __repr__(self) -> str:
        if type(self.array) is _devices.MetaArray:  # no values to show: torch's form
            return f"tensor(..., device='meta', size={tuple(self.array.shape)})"
        host = _devices.to_host(self.array)
        body = np.array2string(host, separator=", ", prefix="tensor(", **Tensor._print_options)
        extras = []
        if self.array.size == 0 and self.array.shape != (0,):  # torch shows an empty tensor's shape
            extras.append(f"size={tuple(self.array.shape)}")
        if type(self.array) is not np.ndarray and self.device != _CPU:
            extras.append(f"device='{self.device}'")
        default = backend.get_default_dtype()
        # torch names no dtype for the default float (and its complex), int64 and bool
        if self.array.dtype not in (default, backend.int64, _COMPLEX_OF.get(default, default), np.bool_):
            extras.append(f"dtype={self.array.dtype}")
        if self._vjp is not None:
            extras.append(f"grad_fn=<{_node_name(self)}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # ------------------------------------------------------------------ autograd
    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool = False,
        create_graph: bool = False,
        inputs: Sequence[Tensor] | None = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (reverse mode).

        ``gradient`` is the upstream gradient (required unless self is a scalar). The graph is
        freed afterwards unless ``retain_graph``; ``create_graph`` makes the gradients
        differentiable (for Hessian-vector products).
        """
        if gradient is None and self.array.dtype.kind == "c":
            raise DTypeError(
                f"grad can be implicitly created only for real scalar outputs but got {self.array.dtype} "
                "(take a real loss: .abs(), .real, or pass gradient=)"
            )
        _backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    # ------------------------------------------------------------------ conversions
    def astype(self, dtype: Any) -> Tensor:
        return _ops.astype(self, dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """Cast and/or move, with torch's signatures: ``to(dtype)``, ``to(device, dtype=None)``,
        ``to(other_tensor)``, keywords ``device=``, ``dtype=``, ``copy=``, ``non_blocking=``.

        A device is ``"cpu"``, ``"cuda"``/``"cuda:N"`` (with CuPy and a GPU) or the test stand-in
        ``"strict"``; moving is differentiable (the gradient moves back). Returns ``self`` when nothing
        changes (unless ``copy=True``), as in torch.

        Example:
            >>> import downslope as ds
            >>> ds.tensor([1, 2]).to("cpu", ds.float64).dtype
            dtype('float64')
        """
        dtype = kwargs.pop("dtype", None)
        target_device = kwargs.pop("device", None)
        copy = bool(kwargs.pop("copy", False))  # host: a Python flag
        kwargs.pop("non_blocking", None)
        layout = _format_name(kwargs.pop("memory_format", None), "to()", "preserve_format")
        if kwargs:
            raise ArgumentTypeError(f"to(): unexpected keyword argument(s) {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):  # torch: the other tensor's dtype and device
                dtype, target_device = a.array.dtype, a.device
            elif _is_device_like(a) or (isinstance(a, int) and not isinstance(a, bool)):
                target_device = a
            elif isinstance(a, bool):
                continue  # torch's positional non_blocking / copy flags
            else:
                dtype = a
        out = self if target_device is None else self._moved(_resolve(target_device, "to()"))
        if dtype is not None:
            out = _ops.astype(out, dtype)
        if layout != "preserve_format" and _suggested_format(out) != layout:
            # as torch: a copy in that layout unless the tensor's strides already run so
            return _laid_out(out, _format_order(out, layout, "to()"))
        return _ops.clone(out) if copy and out is self else out

    def _moved(self, target: _Device) -> Tensor:
        """This tensor on ``target`` (itself when already there); recorded, so gradients move back."""
        arr = _devices.to_device(self.array, target)
        if arr is self.array:
            return self
        return record_op(arr, (self,), _to_device_vjp, self.device)

    def cpu(self) -> Tensor:
        """This tensor in host memory (itself when it is already there)."""
        return self if type(self.array) is np.ndarray else self._moved(_CPU)

    def cuda(self, device: Any = None, non_blocking: bool = False) -> Tensor:
        """This tensor on a CUDA GPU (CuPy); refused with a clear error when none is available."""
        return self._moved(_resolve("cuda" if device is None else device, "cuda()"))

    def pin_memory(self, device: Any = None) -> Tensor:
        """This tensor itself (torch's pinned memory speeds host->GPU copies; CuPy copies from ordinary
        host memory, so nothing is gained by a copy into another kind)."""
        return self

    def is_pinned(self, device: Any = None) -> bool:
        return False

    @property
    def device(self) -> _Device:
        """Where the values live: ``ds.device('cpu')`` for NumPy arrays, ``cuda:N`` for CuPy arrays."""
        return _CPU if type(self.array) is np.ndarray else _devices.device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return type(self.array) is not np.ndarray and self.device.type == "cuda"

    @property
    def is_cpu(self) -> builtins.bool:
        """Whether the values live in host memory (a NumPy array), as torch's ``is_cpu``."""
        return type(self.array) is np.ndarray

    @property
    def is_meta(self) -> builtins.bool:
        """Whether this tensor is on the "meta" device: a shape and a dtype, no values (devices/meta.py)."""
        return type(self.array) is _devices.MetaArray

    def get_device(self) -> builtins.int:
        """-1 in host memory (torch's answer for the CPU), else the device's index (``cuda:1`` gives 1)."""
        if type(self.array) is np.ndarray:
            return -1
        index = self.device.index
        return 0 if index is None else index

    # The answers of a CPU build of torch (and of every tensor downslope makes): guards in ported code
    # (``if x.is_nested:``, ``if x.is_mps:``) read them.
    is_nested = is_quantized = False
    is_mps = is_xpu = is_xla = is_ipu = is_mtia = is_maia = is_vulkan = is_mkldnn = False

    @property
    def is_sparse(self) -> builtins.bool:
        """False: downslope's tensors are dense (optimizers written for torch check it)."""
        return False

    @property
    def is_sparse_csr(self) -> builtins.bool:
        """False: downslope's tensors are dense."""
        return False

    @property
    def layout(self) -> Any:
        """``downslope.strided``: a Tensor is dense (sparse COO tensors are ``downslope.sparse``'s own type)."""
        return _sparse.strided

    def to_sparse(self, sparse_dim: Any = None, *, layout: Any = None) -> Any:
        """The sparse COO tensor of this tensor's nonzeros (differentiable with respect to them)."""
        if layout is not None and layout is not _sparse.sparse_coo:
            raise ArgumentError(f"to_sparse(): only layout=downslope.sparse_coo is supported, got {layout!r}")
        return _sparse.from_dense(self, sparse_dim)

    def to_dense(self, dtype: Any = None, *, masked_grad: Any = None) -> Tensor:
        """A dense tensor's dense form: itself (as torch), cast when ``dtype`` is given."""
        return self if dtype is None else _ops.astype(self, dtype)

    def float(self) -> Tensor:
        return _ops.astype(self, backend.float32)

    def double(self) -> Tensor:
        return _ops.astype(self, backend.float64)

    def long(self) -> Tensor:
        return _ops.astype(self, backend.int64)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        try:  # free until it raises (3.11's exception tables): dense + sparse is caught below
            return _ops.add(self, other)
        except _sparse.SparseLayoutError:
            if isinstance(other, _sparse.SparseCOOTensor):  # torch's add(dense, sparse): a dense result
                return _sparse._dense_plus(self, other)
            raise

    # The reflected operators record what PyTorch records (its grad_fn.next_functions order): 3 + x is
    # add(x, 3), 3 * x is mul(x, 3), 3 / x is x.reciprocal() * 3 (also PyTorch's rounding), 3 - x is
    # rsub(x, 3), a node with x as its one input.
    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __sub__(self, other: Any) -> Tensor:
        try:
            return _ops.sub(self, other)
        except _sparse.SparseLayoutError:
            if isinstance(other, _sparse.SparseCOOTensor):
                return _sparse._dense_plus(self, other, -1)
            raise

    def __rsub__(self, other: Any) -> Tensor:
        out = _ops.sub(other, wrap_array(self.array))  # PyTorch's values and dtype; recorded below
        return record_op(out.array, (self,), _rsub_vjp)

    def __mul__(self, other: Any) -> Tensor:
        try:
            return _ops.mul(self, other)
        except _sparse.SparseLayoutError:
            if isinstance(other, _sparse.SparseCOOTensor):  # torch: a sparse result, on S's pattern
                return _sparse._times_dense(other, self)
            raise

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        if self.array.dtype.kind == "c":  # reciprocal() lifts to a real dtype; a complex division instead
            return _ops.div(other, self)
        return _ops.mul(self.reciprocal(), other)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def pow(self, exponent: Any) -> Tensor:
        return _ops.pow(self, exponent)

    def clone(self, *, memory_format: Any = None) -> Tensor:
        """A copy with its own storage; gradients flow back to this tensor (torch.clone). Laid out as
        PyTorch's: in ``memory_format`` (default ``ds.preserve_format``: the order of this tensor's
        strides, so ``x.permute(0, 2, 3, 1).clone()`` keeps the permuted strides).

        Example:
            >>> import downslope as ds
            >>> ds.zeros(2, 3, 4, 5).permute(0, 2, 3, 1).clone().stride()
            (60, 5, 1, 20)
        """
        name = _format_name(memory_format, "clone()", "preserve_format")
        if name == "contiguous_format" or (
            name == "preserve_format" and self.array.flags.c_contiguous and not _conv_buffers
        ):
            return _ops.clone(self)
        return _laid_out(self, _format_order(self, name, "clone()"))

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    # Comparisons give boolean tensors outside the graph (they have no gradient), in torch's common
    # dtype (a Python int wraps into an integer tensor's dtype: see ops.operands._compared).
    def __lt__(self, other: Any) -> Tensor:
        a, b = _ops._compared(self, other)
        if a.dtype.kind == "c" or getattr(b, "dtype", a.dtype).kind == "c":
            _unordered("lt")
        return wrap_array(a < b)

    def __le__(self, other: Any) -> Tensor:
        a, b = _ops._compared(self, other)
        if a.dtype.kind == "c" or getattr(b, "dtype", a.dtype).kind == "c":
            _unordered("le")
        return wrap_array(a <= b)

    def __gt__(self, other: Any) -> Tensor:
        a, b = _ops._compared(self, other)
        if a.dtype.kind == "c" or getattr(b, "dtype", a.dtype).kind == "c":
            _unordered("gt")
        return wrap_array(a > b)

    def __ge__(self, other: Any) -> Tensor:
        a, b = _ops._compared(self, other)
        if a.dtype.kind == "c" or getattr(b, "dtype", a.dtype).kind == "c":
            _unordered("ge")
        return wrap_array(a >= b)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        if other is None:  # as torch: Python's identity fallback, so `t == None` is False (`assert p != None`)
            return NotImplemented
        a, b = _ops._compared(self, other)
        return wrap_array(a == b)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        if other is None:
            return NotImplemented
        a, b = _ops._compared(self, other)
        return wrap_array(a != b)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value``, in place. While gradients are recorded and ``t`` or ``value`` requires
        grad, ``t`` becomes the output of the assignment (the overwritten part gets no gradient and
        ``value`` gets the gradient of the part it fills), as in PyTorch."""
        if type(index) is list:  # heat[[ys, xs]] = 1: torch reads a list of index tensors as a tuple
            from .ops.indexing import sequence_index

            index = sequence_index(index)
        if self._vc.__class__ is _InferenceVersion and not _mode.inference:
            raise StateError(_INFERENCE_INPLACE)
        if not getattr(self.array.flags, "writeable", True) and _plain_index(index):
            target = self[index]  # y = x.expand(2, 3); y[0] = v: as torch, a write into the view y[0], which
            if getattr(target.array.flags, "writeable", False):  # repeats no element, lands in x
                target[...] = value
                return
        if _records(self, value):
            if isinstance(value, Tensor) and value._vc is not None and value._vc is self._vc:
                # buf[i] = view_of_buf (the second half of `buf[i] += w`): the buffer takes the written values
                # back with their history, so the taint recorded when the view was written ends here
                cleared = next(_op_counter)
                for taint in _inplace_clock.taints:
                    if taint[0] is self._vc and taint[2] is None:
                        taint[2] = cleared

            # Into the storage itself when the op gets the storage (a ghost that shares it): the rule reads
            # no old values (as torch's CopySlices), so a copy of the whole tensor per write (a loop of row
            # writes into a buffer: quadratic) buys nothing; the version bump follows in _rebase. Not for a
            # view (its write goes on into its base, which may still refuse it; the copy is the view's size).
            owner = not _is_view_in_graph(self) and getattr(self, "_view_of", False) is False

            def write(src: Tensor) -> Tensor:
                # (self, not its array, is held here: a reference to the array reads as a view of it)
                return _ops.index_put(src, index, value, in_place=owner and src.array is self.array)

            _inplace_recorded(self, "__setitem__", write)
            return
        data = _data_of(value)
        if data.__class__ in _COMPLEX_NUMBERS:
            data = _real_scalar(data, self.array.dtype, "t[index] = value")
        if self.array.dtype.kind in "iu":  # torch's checked conversion of a number (-1 is 255 in uint8)
            data = _ops._checked_scalar(data, self.array.dtype, "__setitem__")
            if value is not data:  # a tensor (or array) value: checked as a number under a mask
                data = _ops.operands._checked_masked_value(data, index, self.array.dtype)
        elif type(data) in (int, float) and self.array.dtype.kind == "f" and self.array.dtype.itemsize < 8:
            # as torch: past float32's range refused for float32; into float16 inf, written without a warning
            if self.array.dtype.itemsize == 4:
                data = _ops._checked_scalar(data, self.array.dtype, "t[index] = value")
            with np.errstate(over="ignore"):
                data = self.array.dtype.type(data)
        try:
            if type(self.array) is not np.ndarray:  # a device tensor: host values and indices join it there
                data = _devices.like(data, self.array)
                index = _ops._normalize_index(index, keep_masks=True, on=self.array)
                if _fill_where_masked(self.array, index, data):
                    _bump(self)
                    return
            idx = _ops._normalize_index(index, keep_masks=True, on=self.array)
            split = _ops._split_selects(idx)
            if split is None:
                self.array[idx] = data
            else:  # t[0, :, idx] = v: the integer selects first, as in torch (see ops.getitem)
                # a view (a 0-d one where the selects cover every dim: NumPy would give a scalar copy), or a
                # copy when a 0-d index array selects
                has_ellipsis = builtins.any(i is Ellipsis for i in split[0])
                selects = split[0] if has_ellipsis else (*split[0], Ellipsis)
                part = self.array[selects]
                part[split[1]] = data
                if any(_devices.is_array(i) for i in split[0]):
                    self.array[split[0]] = part
        except (IndexError, ValueError, TypeError) as exc:
            if not self.array.flags.writeable:
                raise StateError(_READ_ONLY_MESSAGE.format(op="__setitem__")) from None
            from .ops.indexing import _indexed_shape, drop_leading_ones

            # torch drops a value's leading size-1 dims before broadcasting it (t[i] = v of shape (1, 1)
            # into one element, or under a mask), where NumPy refuses them: once more without them
            fitted = None if isinstance(exc, IndexError) else drop_leading_ones(data)
            if fitted is not None:
                try:
                    self.__setitem__(index, fitted)
                    return
                except ShapeError:
                    pass
            elif isinstance(exc, TypeError) and getattr(data, "ndim", 0) < 2:
                raise  # not a value that doesn't fit (NumPy's mask error is for values of 2 dims or more)
            value_shape = getattr(value, "shape", ())
            if isinstance(exc, IndexError):
                raise OutOfRangeError(
                    f"cannot assign a value of shape {tuple(value_shape)} at index {index!r} of a tensor of shape "
                    f"{tuple(self.shape)}: {exc}"
                ) from None
            try:  # the index may be what failed
                indexed = _indexed_shape(self.array, _ops._normalize_index(index, keep_masks=True))
            except (IndexError, ValueError, TypeError):
                indexed = "?"
            raise ShapeError(
                f"cannot assign a value of shape {tuple(value_shape)} at index {index!r} of a tensor of shape {tuple(self.shape)} "
                f"(indexed shape {indexed}): {exc}"
            ) from None
        _bump(self)

    # ------------------------------------------------------------------ in place
    # Each op writes into this tensor's array (so anything sharing the storage, such as an optimizer's
    # flat buffer, sees the change), bumps the version counter and returns the tensor itself.
    # See _inplace_ufunc / _inplace_recorded below for the rules on gradients.
    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's storage has seen (PyTorch's ``_version``)."""
        vc = self._vc
        return 0 if vc is None else vc[0]

    def __iadd__(self, other: Any) -> Tensor:
        return _inplace_ufunc(self, np.add, other, _ops.add, "add_")

    def __isub__(self, other: Any) -> Tensor:
        return _inplace_ufunc(self, np.subtract, other, _ops.sub, "sub_")

    def __imul__(self, other: Any) -> Tensor:
        return _inplace_ufunc(self, np.multiply, other, _ops.mul, "mul_", _mul_reads_self(other))

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace_ufunc(self, np.true_divide, other, _ops.div, "div_", _mul_reads_self(other))

    def __ipow__(self, other: Any) -> Tensor:
        return _inplace_ufunc(self, np.power, other, _ops.pow, "pow_", True)

    def add_(self, other: Any, _other: Any = _NO_OPERAND, *, alpha: Any = 1) -> Tensor:
        """``self += alpha * other`` in place (torch's deprecated ``add_(alpha, other)`` too, with its warning).

        Example:
            >>> import downslope as ds
            >>> x = ds.zeros(2)
            >>> x.add_(ds.ones(2), alpha=3)
            tensor([3., 3.])
        """
        if _other is not _NO_OPERAND:
            other, alpha = _other, _scalar_first("add_", other, alpha, "alpha", "Tensor other")
        return _inplace_ufunc(self, np.add, _scaled(other, alpha, self), _ops.add, "add_")

    def sub_(self, other: Any, _other: Any = _NO_OPERAND, *, alpha: Any = 1) -> Tensor:
        """``self -= alpha * other`` in place (torch's deprecated ``sub_(alpha, other)`` too, with its warning)."""
        if _other is not _NO_OPERAND:
            other, alpha = _other, _scalar_first("sub_", other, alpha, "alpha", "Tensor other")
        return _inplace_ufunc(self, np.subtract, _scaled(other, alpha, self), _ops.sub, "sub_")

    def mul_(self, other: Any) -> Tensor:
        """``self *= other`` in place."""
        return _inplace_ufunc(self, np.multiply, other, _ops.mul, "mul_", _mul_reads_self(other))

    def div_(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """``self /= other`` in place (``rounding_mode`` 'trunc' or 'floor' rounds the quotient, as in
        :meth:`div`)."""
        if rounding_mode is not None:
            return self._inplace_via(
                "div_",
                lambda t: _ops.div(t, other, rounding_mode=rounding_mode),
                other,
                reads_self=True,
                keep_kind=True,
            )
        # the divisor's gradient reads the dividend from before the write
        return _inplace_ufunc(self, np.true_divide, other, _ops.div, "div_", _mul_reads_self(other))

    def resize_(self, *sizes: Any, memory_format: Any = None) -> Tensor:
        """Give this tensor the shape ``sizes`` in place (torch's ``resize_``): laid out contiguously at its
        place in its storage where it fits there (a view's storage is its base's memory); growing past it
        keeps the first elements and adds zeros (torch's are uninitialized). Refused for a tensor that
        requires grad, and for growth of memory another tensor shares (see ``downslope.ops.resize``).
        ``memory_format`` is accepted and has no effect."""
        _refuse_inference_write(self)
        from .ops.resize import resize_

        return resize_(self, sizes)

    def resize_as_(self, other: Tensor, memory_format: Any = None) -> Tensor:
        """Give this tensor ``other``'s shape in place (torch's ``resize_as_``), as :meth:`resize_`:
        ``y = x.new(); y.resize_as_(x); y.fill_(1)``."""
        from .ops.resize import resize_as_

        return resize_as_(self, other)

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place: it becomes a leaf that does not require grad.
        A view of a tensor that requires grad is refused, as in torch (its base would keep the history)."""
        if _is_view_in_graph(self) or (self._vjp is None and _is_plain_view(self)):
            raise StateError("Can't detach views in-place. Use detach() instead.")
        if self._parents or self._vjp is not None:  # after backward the node is released but still there
            self._parents, self._vjp, self._saved, self._needs = (), None, None, None
        self.requires_grad = False
        return self

    def pow_(self, exponent: Any) -> Tensor:
        """``self **= exponent`` in place."""
        return _inplace_ufunc(self, np.power, exponent, _ops.pow, "pow_", True)

    def neg_(self) -> Tensor:
        if self.array.dtype == np.bool_:
            return _ops.neg(self)  # refuses, with torch's message (NumPy's would name numpy)
        return _inplace_unary(self, np.negative, _ops.neg, "neg_")

    def abs_(self) -> Tensor:
        return _inplace_unary(self, np.abs, _ops.abs, "abs_", True)

    def exp_(self) -> Tensor:
        return _inplace_unary(self, np.exp, _ops.exp, "exp_")

    def log_(self) -> Tensor:
        return _inplace_unary(self, np.log, _ops.log, "log_", True)

    def sqrt_(self) -> Tensor:
        return _inplace_unary(self, np.sqrt, _ops.sqrt, "sqrt_")

    def sin_(self) -> Tensor:
        return _inplace_unary(self, np.sin, _ops.sin, "sin_", True)

    def cos_(self) -> Tensor:
        return _inplace_unary(self, np.cos, _ops.cos, "cos_", True)

    def tanh_(self) -> Tensor:
        return _inplace_unary(self, np.tanh, _ops.tanh, "tanh_")

    def sigmoid_(self) -> Tensor:
        return _inplace_unary(self, _sigmoid_into, _ops.sigmoid, "sigmoid_")

    def relu_(self) -> Tensor:
        if (
            type(self.array) is np.ndarray
            and self.array.dtype.kind == "f"
            and self._vjp is not None
            and _records(self)
            and not _is_view_in_graph(self)
            and getattr(self, "_view_of", False) is False
        ):
            return _inplace_recorded(self, "relu_", _relu_over)  # nn.ReLU(inplace=True) after a layer
        return _inplace_unary(self, _relu_into, _ops.relu, "relu_")

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        """Clamp into [min, max] in place."""
        if min.__class__ in _COMPLEX_NUMBERS or max.__class__ in _COMPLEX_NUMBERS:
            min, max = _real_scalar(min, self.array.dtype, "clamp_"), _real_scalar(max, self.array.dtype, "clamp_")
        for bound in (min, max):  # a complex tensor bound: np.clip would keep its real part
            if isinstance(bound, Tensor) and bound.array.dtype.kind == "c" and self.array.dtype.kind != "c":
                raise DTypeError(
                    f"clamp_: result type {_inplace_result_type(self, bound, bound.array)} can't be cast to the "
                    f"desired output type {self.array.dtype} (an in-place op keeps the tensor's dtype)"
                )
        if self.array.dtype.kind != "f":
            for bound in (min, max):
                kind = (
                    "f" if isinstance(bound, (builtins.float, np.floating)) else getattr(_data_of(bound), "dtype", None)
                )
                kind = getattr(kind, "kind", kind) or ("i" if type(bound) is builtins.int else "b")
                if kind == "f" or (self.array.dtype.kind == "b" and kind != "b"):  # torch's canCast
                    raise DTypeError(
                        f"clamp_: result type {'float' if kind == 'f' else 'int64'} can't be cast to the desired "
                        f"output type {self.array.dtype} (an in-place op keeps the tensor's dtype)"
                    )
            if self.array.dtype.kind in "iu":  # torch's checked conversion of a number (-1 is 255 in uint8)
                min, max = (_ops._checked_scalar(v, self.array.dtype, "clamp_") for v in (min, max))
        else:  # a number past float16's (float32's) range is refused, as torch
            min, max = (_ops._checked_scalar(v, self.array.dtype, "clamp_") for v in (min, max))
        if not _records(self, min, max):
            if min is None and max is None:
                raise ArgumentError("clamp_: at least one of min and max must be given")
            _check_writable(self, "clamp_")
            # a 0-d tensor bound does not widen a tensor with dims within its category (torch's result type,
            # as the out-of-place clamp): tensor(-5) as a uint8 bound is 251
            low, high = (_zero_d_in(self.array, _data_of(v)) for v in (min, max))
            # unsafe: a floating bound into integers was refused above; uint8 clamped by int64 casts, as in torch
            try:
                np.clip(self.array, low, high, out=self.array, casting="unsafe")
            except ValueError:  # NumPy's "non-broadcastable output operand": the result would be bigger
                raise ShapeError(
                    f"clamp_: bounds of shapes {np.shape(_data_of(min))} and {np.shape(_data_of(max))} do not "
                    f"broadcast to the tensor's shape {tuple(self.shape)} (an in-place op cannot change the shape)"
                ) from None
            _bump(self)
            return self
        return _inplace_recorded(self, "clamp_", lambda src: _ops.clip(src, min, max), reads_self=True)

    clip_ = clamp_

    def zero_(self) -> Tensor:
        """Set every element to 0 in place (``p.grad.zero_()``)."""
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` in place."""
        if isinstance(value, Tensor) and value.array.ndim:  # torch's: a tensor with dims would act as copy_
            raise ShapeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with {value.array.ndim} dimension(s) "
                "(use copy_ to copy a tensor's values, or value.squeeze() for one element)"
            )
        if value.__class__ in _COMPLEX_NUMBERS:  # (a set lookup: zero_ and fill_ are hot)
            value = _real_scalar(value, self.array.dtype, "fill_")
        if not _records(self, value):
            _check_writable(self, "fill_")
            data = _data_of(value)
            if self.array.dtype.kind in "iuf":  # torch's checked conversion (-1 is 255 in uint8, 1e10 no float16)
                data = _ops._checked_scalar(data, self.array.dtype, "fill_")
            self.array[...] = data
            _bump(self)
            return self
        return _inplace_recorded(self, "fill_", lambda src: _ops.where(True, value, src))

    def copy_(self, src: Any, non_blocking: bool = False) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor, in place."""
        if src is self:
            if _records(self):  # a leaf that requires grad, or a view of one: refused first, as torch
                if self._vjp is None:
                    raise StateError(_LEAF_MESSAGE)
                root = self
                while _is_view_in_graph(root):
                    root = root._parents[0]
                if root is not self and root._vjp is None:
                    raise StateError(_LEAF_VIEW_MESSAGE)
            return self  # copying a tensor into itself changes nothing (its history included)
        if not _records(self, src):
            _check_writable(self, "copy_")
            data = _data_of(src)
            if type(data) is not type(self.array) and _devices.is_array(data):
                data = _devices.like(data, self.array)  # copy_ copies across devices, as in torch
            try:
                np.copyto(self.array, data, casting="unsafe")
            except ValueError:
                raise ShapeError(
                    f"copy_: the source of shape {np.shape(_data_of(src))} does not broadcast to {tuple(self.shape)}"
                ) from None
            _bump(self)
            return self
        return _inplace_recorded(
            self, "copy_", lambda dst: _ops.where(True, _ops.astype(_ops._lift(src), dst.dtype), dst)
        )

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        """Set the elements where ``mask`` is true to ``value``, in place."""
        m = _bool_mask(mask, "masked_fill_", self.array)
        if isinstance(value, Tensor) and value.array.ndim:  # torch's: a tensor with dims would act as where
            raise ShapeError(
                "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                f"{value.array.ndim} dimension(s) (use torch.where for a tensor of values)"
            )
        if value.__class__ in _COMPLEX_NUMBERS:
            value = _real_scalar(value, self.array.dtype, "masked_fill_")
        if not _records(self, value):
            _check_writable(self, "masked_fill_")
            data = _data_of(value)
            if self.array.dtype.kind in "iuf":  # torch's checked conversion (-1 is 255 in uint8, 1e10 no float16)
                data = _ops._checked_scalar(data, self.array.dtype, "masked_fill_")
                _ops.indexing._check_tensor_value(value, self.array.dtype, "masked_fill_")  # a 0-d tensor too
            try:
                np.copyto(self.array, data, where=np.broadcast_to(m, self.shape), casting="unsafe")
            except ValueError:
                raise ShapeError(
                    f"masked_fill_: mask of shape {tuple(m.shape)} does not broadcast to {tuple(self.shape)}"
                ) from None
            _bump(self)
            return self
        return _inplace_recorded(self, "masked_fill_", lambda src: _ops.where(m, value, src))

    def addcmul_(self, tensor1: Any, tensor2: Any, _tensor2: Any = _NO_OPERAND, *, value: Any = 1) -> Tensor:
        """``self += value * tensor1 * tensor2`` in place (torch's deprecated ``addcmul_(value, tensor1,
        tensor2)`` too, with its warning)."""
        return _addc_inplace(self, "addcmul", _ops.mul, tensor1, tensor2, _tensor2, value)

    def addcdiv_(self, tensor1: Any, tensor2: Any, _tensor2: Any = _NO_OPERAND, *, value: Any = 1) -> Tensor:
        """``self += value * tensor1 / tensor2`` in place (torch's deprecated ``addcdiv_(value, tensor1,
        tensor2)`` too, with its warning)."""
        return _addc_inplace(self, "addcdiv", _ops.div, tensor1, tensor2, _tensor2, value)

    def lerp_(self, end: Any, weight: Any) -> Tensor:
        """``self += weight * (end - self)`` in place."""
        floating = self.array.dtype.kind == "f"
        if not _records(self, end, weight):
            # from a weight of 0.5 (or a tensor weight) a float tensor takes lerp's two-sided formula, as
            # torch's lerp_ (inf with weight 0.75 stays inf); below it, self + weight (end - self) is that formula
            two_sided = floating and (isinstance(weight, Tensor) or not abs(weight) < 0.5)
            step = _functional.lerp(self, end, weight) if two_sided else _ops.mul(_ops.sub(end, self), weight)
            if step.shape != self.shape and np.broadcast_shapes(step.shape, self.shape) != self.shape:
                raise ShapeError(
                    f"lerp_: end of shape {np.shape(_data_of(end))} and weight of shape "
                    f"{np.shape(_data_of(weight))} do not broadcast to the tensor's shape {tuple(self.shape)} "
                    "(an in-place op cannot change the shape)"
                )
            return self.copy_(step) if two_sided and step.shape == self.shape else self.add_(step)
        reads = isinstance(weight, Tensor) and weight.requires_grad
        if floating:
            return _inplace_recorded(self, "lerp_", lambda src: _functional.lerp(src, end, weight), reads_self=reads)
        return _inplace_recorded(
            self, "lerp_", lambda src: _ops.add(src, _ops.mul(_ops.sub(end, src), weight)), reads_self=reads
        )

    def floor_(self) -> Tensor:
        return _inplace_unary(self, np.floor, _ops.floor, "floor_")

    def ceil_(self) -> Tensor:
        return _inplace_unary(self, np.ceil, _ops.ceil, "ceil_")

    def round_(self, decimals: builtins.int = 0) -> Tensor:
        if decimals:  # torch's round_(decimals=): written through the op's own rounding
            if _records(self):
                return _inplace_recorded(self, "round_", lambda src: _ops.round(src, decimals=decimals))
            return self.copy_(_ops.round(self, decimals=decimals))
        return _inplace_unary(self, np.round, _ops.round, "round_")

    def trunc_(self) -> Tensor:
        return _inplace_unary(self, np.trunc, _ops.trunc, "trunc_")

    def sign_(self) -> Tensor:
        return _inplace_unary(self, _sign_into, _ops.sign, "sign_")

    def reciprocal_(self) -> Tensor:
        return _inplace_unary(self, np.reciprocal, _functional.reciprocal, "reciprocal_", True)

    def square_(self) -> Tensor:
        return _inplace_unary(self, np.square, _functional.square, "square_", True)

    def scatter_(self, dim: Any, index: Any, src: Any = None, *, value: Any = None, reduce: Any = None) -> Tensor:
        """Write ``src`` (or ``value``) at ``index`` along ``dim``, in place (torch's scatter_).

        Example:
            >>> import downslope as ds
            >>> ds.zeros(2, 3).scatter_(1, ds.tensor([[2], [0]]), 1.0)
            tensor([[0., 0., 1.],
                    [1., 0., 0.]])
        """
        source = value if src is None else src
        if reduce == "add" and isinstance(source, Tensor) and source.ndim:
            return self.scatter_add_(dim, index, source)
        return self._inplace_via("scatter_", lambda t: _ops.scatter(t, dim, index, source, reduce=reduce), source)

    def scatter_add_(self, dim: Any, index: Any, src: Any) -> Tensor:
        """Add ``src`` at ``index`` along ``dim``, in place (repeated indices add up)."""
        return self._inplace_via("scatter_add_", lambda t: _ops.scatter_add(t, dim, index, src), src)

    def index_fill_(self, dim: Any, index: Any, value: Any) -> Tensor:
        """Set the slices ``index`` along ``dim`` to ``value``, in place."""
        return self._inplace_via("index_fill_", lambda t: _ops.index_fill(t, dim, index, value), value)

    def _inplace_via(
        self,
        name: str,
        op: Callable[[Tensor], Tensor],
        *operands: Any,
        reads_self: builtins.bool = False,
        keep_kind: builtins.bool = False,
    ) -> Tensor:
        """An in-place op computed out of place then copied in (for ops without a NumPy in-place form).

        ``keep_kind`` refuses a result that this tensor's dtype cannot hold (a float result into an integer
        tensor), as torch does; comparisons and fills cast freely.
        """
        if _records(self, *operands):
            _refuse_overlap(self, name, operands)
            return _inplace_recorded(self, name, op, reads_self)
        _check_writable(self, name)
        if operands:
            _refuse_overlap(self, name, operands)
        with _no_grad():
            result = op(self)
        if keep_kind and not _torch_can_cast(result.array.dtype, self.array.dtype):
            raise DTypeError(
                f"{name}: result type {result.array.dtype} can't be cast to the desired output type {self.array.dtype} "
                "(an in-place op keeps the tensor's dtype)"
            )
        try:
            np.copyto(self.array, result.array, casting="unsafe")
        except ValueError:
            raise ShapeError(
                f"{name}: the result has shape {tuple(result.shape)} but the tensor has shape {tuple(self.shape)} "
                "(an in-place op cannot change the shape)"
            ) from None
        _bump(self)
        return self

    @_torch_options
    def bernoulli_(self, p: Any = 0.5) -> Tensor:
        """Fill with 1 (probability ``p``) or 0, from the library's seeded generator."""
        probs = np.asarray(_devices.to_host(_data_of(p)))  # host: drawn on the host, then placed
        _check_probabilities(probs, "bernoulli_")
        draws = backend.rng().random(self.shape) < np.broadcast_to(probs, self.shape)
        return self.copy_(draws.astype(self.array.dtype))

    @_torch_options
    def exponential_(self, lambd: builtins.float = 1.0) -> Tensor:
        return self._fill_random(backend.rng().exponential(1.0 / lambd, self.shape), "exponential_")

    @_torch_options
    def log_normal_(self, mean: builtins.float = 1.0, std: builtins.float = 2.0) -> Tensor:
        return self._fill_random(backend.rng().lognormal(mean, std, self.shape), "log_normal_")

    @_torch_options
    def cauchy_(self, median: builtins.float = 0.0, sigma: builtins.float = 1.0) -> Tensor:
        return self._fill_random(median + sigma * backend.rng().standard_cauchy(self.shape), "cauchy_")

    @_torch_options
    def geometric_(self, p: builtins.float) -> Tensor:
        return self.copy_(backend.rng().geometric(p, self.shape).astype(self.array.dtype))

    @_torch_options
    def random_(self, low: builtins.int = 0, high: Any = None, **bounds: Any) -> Tensor:
        """Fill with integers uniform on [low, high) (``random_(high)`` for [0, high)); torch's
        keywords ``from=`` and ``to=`` name the same bounds."""
        if bounds:
            low, high = _torch_bounds("random_", bounds, low, high)
            if high is None:  # random_(from=k): [k, the largest integer the dtype holds exactly]
                high = 2 ** min(53, 8 * self.array.itemsize - 1)
        if high is None:
            low, high = 0, (low if low else 2 ** min(53, 8 * self.array.itemsize - 1))
        return self.copy_(backend.rng().integers(low, high, self.shape).astype(self.array.dtype))

    def fill_diagonal_(self, fill_value: Any, wrap: builtins.bool = False) -> Tensor:
        """Set the main diagonal (of a matrix, or of all dims for equal sizes) to ``fill_value``."""
        n = builtins.min(self.shape) if self.ndim else 0
        xp = backend.namespace_of(self.array)
        index: Any = tuple(xp.arange(n) for _ in range(self.ndim))
        if wrap and self.ndim == 2 and self.shape[0] > self.shape[1] + 1:
            # torch's wrap: the diagonal restarts every cols + 1 rows (NumPy's fill_diagonal(wrap=True))
            flat = xp.arange(0, self.array.size, self.shape[1] + 1)
            index = np.unravel_index(flat, self.shape)
        return self._inplace_via("fill_diagonal_", lambda t: _ops.index_put(t, index, fill_value), fill_value)

    def apply_(self, fn: Callable[[Any], Any]) -> Tensor:
        """Replace each element by ``fn(element)`` (a Python loop, slow; not for tensors in the graph)."""
        if _records(self):
            raise StateError("apply_: not differentiable; use it on tensors that do not require grad (or .data)")
        _check_writable(self, "apply_")
        host = _devices.to_host(self.array)  # the array itself on the host; a copy from a device
        for i in np.ndindex(self.shape):
            host[i] = fn(host[i].item())  # host: a Python function per element, as asked (slow by design)
        if host is not self.array:
            self.array[...] = _devices.like(host, self.array)
        _bump(self)
        return self

    def map_(self, other: Any, fn: Callable[[Any, Any], Any]) -> Tensor:
        """Replace each element a by ``fn(a, b)`` with b from ``other`` (broadcast); slow, no gradient."""
        if _records(self, other):
            raise StateError("map_: not differentiable; use it on tensors that do not require grad (or .data)")
        _check_writable(self, "map_")
        host = _devices.to_host(self.array)  # the array itself on the host; a copy from a device
        b = np.broadcast_to(_devices.to_host(_data_of(other)), self.shape)
        for i in np.ndindex(self.shape):
            host[i] = fn(host[i].item(), b[i].item())  # host: a Python function per element, as asked (slow)
        if host is not self.array:
            self.array[...] = _devices.like(host, self.array)
        _bump(self)
        return self

    def _reshape_in_place(self, name: str, view: Callable[[Tensor], Tensor], back: tuple[str, Any]) -> Tensor:
        """A metadata-only in-place op (squeeze_, t_...): ``self`` takes ``view(self)``'s layout, over the
        same storage. With gradients recorded, as torch, the change is recorded like an in-place op (the
        history rebased, the version bumped: ops that saved the old values refuse at backward), its rule
        ``back`` (a reshape or permutation) giving the gradient its old layout; a leaf is refused."""
        _refuse_inference_write(self)
        new = view(wrap_array(self.array)).array
        if not _records(self):
            self.array = new
            return self
        if self._vjp is None:
            raise StateError(f"{name}: {_LEAF_MESSAGE}")
        if _is_view_in_graph(self):  # a write into it later must reach its base: that link is a view op's
            raise StateError(
                f"{name}: not supported on a view of a tensor that requires grad (shape {tuple(self.array.shape)}); "
                f"use the out-of-place form (x = x.{name[:-1]}(...))"
            )
        ghost = _ghost(self, False)
        if _inplace_clock.hooks and getattr(self, "_hooks", None) is not None:
            ghost._hooks = self._hooks  # hooks registered before stay with the old layout's history (as _rebase)
            del self._hooks
        if self._retains_grad and getattr(self, "_grad_of", self) is not None:
            # as torch, retain_grad's hook stays on the old layout's history: .grad is its gradient
            ghost._retains_grad = True
            ghost.__dict__["_grad_of"], self.__dict__["_grad_of"] = self, None  # see autograd._retain_grad
        result = record_op(new, (ghost,), _layout_back_vjp, back)
        self.array = new
        _bump(self)
        _adopt(self, ghost, result)
        return self

    def t_(self) -> Tensor:
        back = ("permute", (1, 0)) if self.array.ndim == 2 else ("reshape", self.array.shape)
        return self._reshape_in_place("t_", _ops.t, back)

    def transpose_(self, dim0: builtins.int, dim1: builtins.int) -> Tensor:
        _ops.transpose(wrap_array(self.array), dim0, dim1)  # a bad dim is reported here, in torch's words
        axes = list(range(self.array.ndim))
        if axes:
            axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self._reshape_in_place("transpose_", lambda x: _ops.transpose(x, dim0, dim1), ("permute", tuple(axes)))

    swapaxes_ = swapdims_ = transpose_

    def squeeze_(self, dim: Any = None) -> Tensor:
        return self._reshape_in_place("squeeze_", lambda x: _ops.squeeze(x, dim), ("reshape", self.array.shape))

    def unsqueeze_(self, dim: builtins.int) -> Tensor:
        return self._reshape_in_place("unsqueeze_", lambda x: _ops.unsqueeze(x, dim), ("reshape", self.array.shape))

    def byte(self) -> Tensor:
        return _ops.astype(self, np.uint8)

    def char(self) -> Tensor:
        return _ops.astype(self, np.int8)

    def short(self) -> Tensor:
        return _ops.astype(self, np.int16)

    @property
    def mH(self) -> Tensor:  # noqa: N802  (real tensors: the conjugate is the tensor itself)
        return _complex.conj(
            self._matrix_transpose("tensor.mH", "Tensor.mH is deprecated on 0-D tensors. Consider using x.conj().")
        )

    @property
    def H(self) -> Tensor:  # noqa: N802
        if self.ndim == 0:
            warnings.warn("Tensor.H is deprecated on 0-D tensors. Consider using x.conj().", UserWarning, stacklevel=2)
            return _complex.conj(_ops.permute(self, ()))
        if self.ndim != 2:
            raise ShapeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D tensor.")
        return _complex.conj(_ops.t(self))

    def adjoint(self) -> Tensor:
        return _complex.conj(
            self._matrix_transpose(
                "tensor.adjoint()", "adjoint() is deprecated on 0-D tensors. Consider using x.conj()."
            )
        )

    def _matrix_transpose(self, name: str, deprecation: str) -> Tensor:
        """mT / mH / adjoint(): the last two dims swapped; a 0-d tensor is returned as is (with torch's
        deprecation warning) and a 1-d one refused, as in torch."""
        if self.ndim >= 2:
            return _ops.transpose(self, -2, -1)
        if self.ndim == 1:
            raise ShapeError(f"{name} is only supported on matrices or batches of matrices. Got 1-D tensor.")
        warnings.warn(deprecation, UserWarning, stacklevel=3)
        return _ops.permute(self, ())

    def is_signed(self) -> builtins.bool:
        return self.array.dtype.kind in "fic"  # complex counts as signed, as in torch

    def is_nonzero(self) -> builtins.bool:
        if self.array.size != 1:
            raise StateError(f"is_nonzero: the tensor has {self.array.size} elements; expected one")
        return builtins.bool(_devices.to_host(self.array).reshape(()).item() != 0)  # host: a Python bool, as asked

    def is_same_size(self, other: Tensor) -> builtins.bool:
        return self.shape == other.shape

    @_torch_options
    def uniform_(self, a: builtins.float = 0.0, b: builtins.float = 1.0, **bounds: Any) -> Tensor:
        """Fill with uniform samples on [a, b) from the library's seeded generator (``ds.manual_seed``);
        torch's keywords ``from=`` and ``to=`` name the same bounds."""
        if bounds:
            a, b = _torch_bounds("uniform_", bounds, a, b)
        if self.array.dtype.kind == "c":  # torch draws the real and imaginary parts alike, each on [a, b)
            parts = backend.rng().random((*self.shape, 2), dtype=np.float64) * (b - a) + a
            return self.copy_((parts[..., 0] + 1j * parts[..., 1]).astype(self.array.dtype))
        samples = backend.rng().random(self.shape, dtype=np.float64) * (b - a) + a
        return self._fill_random(samples, "uniform_")

    @_torch_options
    def normal_(self, mean: builtins.float = 0.0, std: builtins.float = 1.0) -> Tensor:
        """Fill with normal samples N(mean, std^2) from the library's seeded generator (``ds.manual_seed``).

        Example:
            >>> import downslope as ds
            >>> w = ds.zeros(2, 3)
            >>> _ = ds.manual_seed(0); w.data.normal_(0, 0.02).shape
            downslope.Size([2, 3])
        """
        if self.array.dtype.kind == "c":  # torch: each part N(mean, std^2 / 2), so E|z - mean|^2 = std^2
            parts = backend.rng().standard_normal((*self.shape, 2), dtype=np.float64) * (std / 2**0.5) + mean
            return self.copy_((parts[..., 0] + 1j * parts[..., 1]).astype(self.array.dtype))
        samples = backend.rng().standard_normal(self.shape, dtype=np.float64) * std + mean
        return self._fill_random(samples, "normal_")

    def _fill_random(self, samples: np.ndarray, op: str) -> Tensor:
        if not backend.is_floating(self.array.dtype):
            raise ArgumentTypeError(f"{op}: expected a floating tensor, got {self.array.dtype}")
        return self.copy_(samples.astype(self.array.dtype))

    # ------------------------------------------------------------------ elementwise
    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def sin(self) -> Tensor:
        return _ops.sin(self)

    def cos(self) -> Tensor:
        return _ops.cos(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return _ops.clip(self, min, max)

    clamp = clip

    # ------------------------------------------------------------------ reductions
    def sum(
        self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None, dtype: Any = None
    ) -> Tensor:
        return _ops.sum(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def mean(
        self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None, dtype: Any = None
    ) -> Tensor:
        return _ops.mean(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Any:
        """A 0-d tensor, or ``(values, indices)`` along ``dim`` (torch.max); values over dims: amax."""
        return _ops.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Any:
        """A 0-d tensor, or ``(values, indices)`` along ``dim`` (torch.min); values over dims: amin."""
        return _ops.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    # torch's positional order: var(dim, unbiased, keepdim); x.var(1, False) is the biased variance
    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
        return _functional.var(self, dim, unbiased, keepdim, **kwargs)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
        return _functional.std(self, dim, unbiased, keepdim, **kwargs)

    def logsumexp(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.logsumexp(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def softmax(self, dim: int = -1, dtype: Any = None) -> Tensor:
        return _ops.softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim: int = -1, dtype: Any = None) -> Tensor:
        return _ops.log_softmax(self, dim, dtype=dtype)

    def argmax(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> Tensor:
        return _arg_extreme(self, np.argmax, "argmax", _ops._pick_axis(dim, axis), keepdim)

    def argmin(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> Tensor:
        return _arg_extreme(self, np.argmin, "argmin", _ops._pick_axis(dim, axis), keepdim)

    # ------------------------------------------------------------------ shapes
    def reshape(self, *args: Any, shape: Any = None) -> Tensor:
        out = _ops.reshape(self, _sizes_arg(_kw_sizes("reshape", args, "shape", shape)))
        return _copy_where_torch_copies(self, out)

    def view(self, *args: Any, size: Any = None, dtype: Any = None) -> Tensor:
        """The same data in another shape, sharing memory (a write through either shows in both), as
        PyTorch's ``view``; a dtype instead of a shape reinterprets the bytes (``x.view(ds.int32)``).

        Raises ShapeError where no view exists (a transposed or strided view of another tensor whose
        elements do not lie in the new order): PyTorch refuses it too, and a silent copy would lose
        the writes made through it. ``reshape`` copies in that case. A convolution's output (and what
        the layers after it compute from it) is channel-major in memory here, where PyTorch's is
        contiguous, so ``x.view(N, -1)`` of it must work as in torch: the output is laid out in order
        first, in place when no other live tensor shares its memory, else in a new buffer under every
        tensor over it (its views, ``detach()`` aliases), so the view's writes reach them all as in
        torch. Only when its memory was handed out (``numpy()``, ``.data``) or lies on a GPU is it
        viewed through a copy (a write into which reaches neither: the case left where torch and
        downslope differ). Any other tensor laid out so (``x.transpose(0, 1)``) is refused, as in torch.

        Example:
            >>> import downslope as ds
            >>> x = ds.zeros(2, 3)
            >>> _ = x.view(6).fill_(1.0)
            >>> x.sum().item()
            6.0
        """
        shape: Any = None
        if size is None and dtype is None and args:
            # the usual call, x.view(b, t, h, d) or x.view((b, t, h, d)) with Python ints: nothing to
            # read through __index__ and no dtype to tell apart, so the parsing is skipped (same sizes)
            shape = args[0] if len(args) == 1 and args[0].__class__ is tuple else args
            for a in shape:
                if a.__class__ is not builtins.int:
                    shape = None
                    break
        if shape is None:
            shape = self._view_sizes(args, size, dtype)
            if shape.__class__ is Tensor:
                return shape
        out = _ops.reshape(self, shape)
        if _conv_buffers:
            out = _copy_where_torch_copies(self, out)  # as Tensor.reshape
        if out.array.size and not np.may_share_memory(out.array, self.array):
            return self._view_laid_out(out, shape)
        return out

    def _view_sizes(self, args: tuple[Any, ...], size: Any, dtype: Any) -> Any:
        """``view``'s sizes from its arguments (varargs, one sequence, ``size=``), each read through
        ``__index__``; or, for a dtype instead of sizes, the reinterpreted tensor itself."""
        shape = _kw_sizes("view", args, "size", size) if dtype is None else (*args, dtype)
        if len(shape) == 1 and backend.index_value(shape[0]) is None and not isinstance(shape[0], (tuple, list)):
            # a dtype (as_dtype refuses a tensor or an array: x.view(n) with n a 0-d integer tensor is a size)
            return wrap_array(self.array.view(backend.as_dtype(shape[0])))  # reinterpreted bits: no gradient
        return tuple(_sizes_arg(shape))  # one tuple: () (a 0-d shape) must not read as no argument

    def _view_laid_out(self, out: Tensor, shape: tuple[Any, ...]) -> Tensor:
        """``view`` where the reshape ``out`` of this tensor copied: lay this one out in order and view
        it again, view a convolution's output through the copy, or refuse (see ``view``)."""
        # nothing shares it (not even the caller's NumPy array, from_numpy): lay it out in order
        if (self._vc is None or self._vc is _INFERENCE_VC) and not _handed_out(self.array) and not _lent(self.array):
            self.array = backend.namespace_of(self.array).ascontiguousarray(self.array)
            return self.reshape(tuple(shape))
        if (_conv_layout(self.array) or _over_conv_buffer(self.array)) and _ops.shape.torch_views(
            self, out.shape
        ) is not False:
            # a shared convolution output (contiguous in torch), or a view of one such as one image
            # y[0] (contiguous in torch too): viewed through a copy, as PyTorch's would be a view
            return out
        raise ShapeError(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans "
            f"across two contiguous subspaces): a tensor of shape {tuple(self.shape)} and strides "
            f"{tuple(st // self.array.itemsize for st in self.array.strides)} cannot be viewed as "
            f"{tuple(out.shape)}. Use .reshape(...) instead (it copies), or .contiguous().view(...)"
        )

    def transpose(self, *dims: int, dim0: Any = None, dim1: Any = None) -> Tensor:
        """Swap two dimensions (PyTorch's ``transpose(dim0, dim1)``); no argument reverses all."""
        if dim0 is not None:
            dims = _kw_sizes("transpose", dims, "dim0", dim0)
        if dim1 is not None:
            dims = (*dims, dim1)
        if len(dims) == 0:
            return _ops.permute(self, tuple(reversed(range(self.ndim))))
        if len(dims) != 2:
            raise ArgumentTypeError(
                f"transpose expects two dims to swap (PyTorch semantics); got {dims}; use permute for more"
            )
        return _ops.transpose(self, dims[0], dims[1])

    def permute(self, *args: Any, dims: Any = None) -> Tensor:
        return _ops.permute(self, _sizes_arg(_kw_sizes("permute", args, "dims", dims)))

    @property
    def T(self) -> Tensor:
        return _ops.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        if self.ndim >= 2:
            return _ops.transpose(self, -2, -1)
        return self._matrix_transpose(
            "tensor.mT", "Tensor.mT is deprecated on 0-D tensors. This function is the identity in these cases."
        )

    def squeeze(self, dim: Any = None) -> Tensor:
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return _ops.unsqueeze(self, dim)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _copy_where_torch_copies(self, _ops.flatten(self, start_dim, end_dim))

    def expand(self, *args: Any, size: Any = None) -> Tensor:
        return _expanded(self, _sizes_arg(_kw_sizes("expand", args, "size", size)))

    def gather(self, dim: int, index: Any, *, sparse_grad: builtins.bool = False) -> Tensor:
        return _ops.gather(self, dim, index, sparse_grad=sparse_grad)

    # ------------------------------------------------------------------ the rest of torch's everyday methods
    def int(self) -> Tensor:
        return _ops.astype(self, backend.int32)

    def half(self) -> Tensor:
        return _ops.astype(self, backend.float16)

    def bfloat16(self) -> Tensor:
        """Refused with the reason (NumPy has no bfloat16), as ``ds.zeros(2, dtype=ds.bfloat16)`` is."""
        return _ops.astype(self, backend.bfloat16)

    def bool(self) -> Tensor:
        return _ops.astype(self, backend.bool_)

    def type(self, dtype: Any = None, non_blocking: builtins.bool = False) -> Any:
        """With no argument, torch's type string (``'torch.FloatTensor'``); otherwise cast to ``dtype``
        (a dtype, a string such as ``'torch.LongTensor'``, or the type itself: ``ds.LongTensor``)."""
        if dtype is None:
            return "torch." + _TYPE_NAMES.get(self.array.dtype.name, self.array.dtype.name)
        if dtype is Tensor or dtype == "torch.Tensor":
            # `Tensor = torch.cuda.FloatTensor if cuda else torch.Tensor; x.type(Tensor)` (GAN scripts):
            # the class itself stands for the default floating type, as in torch
            dtype = backend.get_default_dtype()
        elif callable(dtype) and isinstance(getattr(dtype, "dtype", None), np.dtype):
            dtype = dtype.dtype  # ds.FloatTensor, ds.LongTensor...
        if isinstance(dtype, str) and dtype.startswith("torch."):
            names = {v: k for k, v in _TYPE_NAMES.items()}
            if dtype[6:] not in names:
                raise ArgumentTypeError(f"type(): unknown tensor type {dtype!r}; expected e.g. 'torch.FloatTensor'")
            dtype = names[dtype[6:]]
        return _ops.astype(self, dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return _ops.astype(self, other.array.dtype)

    def is_floating_point(self) -> builtins.bool:
        return backend.is_floating(self.array.dtype)

    def is_complex(self) -> builtins.bool:
        """Whether the tensor holds complex64 or complex128 values (torch code asks it before stepping)."""
        return self.array.dtype.kind == "c"

    def element_size(self) -> builtins.int:
        return builtins.int(self.array.itemsize)

    @property
    def itemsize(self) -> builtins.int:
        return builtins.int(self.array.itemsize)

    @property
    def nbytes(self) -> builtins.int:
        return builtins.int(self.array.nbytes)

    def nelement(self) -> builtins.int:
        return builtins.int(self.array.size)

    def ndimension(self) -> builtins.int:
        return self.array.ndim

    def __index__(self) -> builtins.int:
        if self.array.size != 1 or self.array.dtype.kind not in "iub":
            raise ArgumentTypeError(
                f"only integer tensors of a single element can be converted to an index; this one is "
                f"{self.array.dtype} of shape {tuple(self.shape)}"
            )
        return builtins.int(_devices.to_host(self.array).reshape(()).item())  # host: Python asked for an int

    def __contains__(self, element: Any) -> builtins.bool:
        """``value in t``: whether any element equals ``value`` (torch's semantics)."""
        return builtins.bool(_devices.to_host((self.array == _data_of(element)).any()))

    def __round__(self, ndigits: Any = None) -> Tensor:
        return _ops.round(self, 0 if ndigits is None else ndigits)

    def __reversed__(self) -> Tensor:
        """The tensor flipped along dim 0 (as torch's ``reversed(t)``)."""
        return self if self.ndim == 0 else _ops.flip(self, 0)

    def __format__(self, spec: str) -> str:
        if self.array.ndim == 0:
            return format(_devices.to_host(self.array).item(), spec)  # host: formatting text
        if spec:
            raise ArgumentTypeError(
                f"format spec {spec!r} applies to 0-d tensors only; this one has shape {tuple(self.shape)}"
            )
        return str(self)

    def contiguous(self, memory_format: Any = None) -> Tensor:
        """Itself when its array is C-contiguous, else a contiguous copy (gradients pass through). A
        convolution's output (contiguous in PyTorch, channel-major here) is itself too, laid out in
        order in place, unless other tensors share its memory: then a copy that refuses writes. A
        view of one that is C-ordered here but strided in PyTorch (its ``permute(1, 0, 2, 3)``) is
        copied, as PyTorch copies it: a write into the result must not reach the output."""
        name = _format_name(memory_format, "contiguous()", "contiguous_format")
        if name != "contiguous_format":
            if self.is_contiguous(memory_format=memory_format):
                return self
            if name == "preserve_format":
                raise InvalidValueError(
                    "contiguous(): preserve memory format is unsupported by the contiguous operator"
                )
            return _laid_out(self, _format_order(self, name, "contiguous()"))
        a = self.array
        if a.flags.c_contiguous:
            if not _conv_buffers:
                return self
            steps = _torch_strides(a)
            return self if steps is None or _is_dense_in_order(a.shape, steps) else _ops.clone(self)
        if _conv_layout(a) and relayout_if_unshared(self):
            return self
        return _ops.clone(self)

    def data_ptr(self) -> builtins.int:
        """The address of the first element, as PyTorch's ``data_ptr`` (a view starting at the same
        element gives the same number).

        Example:
            >>> import downslope as ds
            >>> x = ds.zeros(2, 3)
            >>> x.view(6).data_ptr() == x.data_ptr()
            True
        """
        arr = self.array
        if type(arr) is np.ndarray:
            return builtins.int(arr.__array_interface__["data"][0])  # host: an address, no data read
        if type(arr) is _devices.strict.StrictArray:  # the stand-in's memory is the NumPy array it wraps
            return builtins.int(arr._a.__array_interface__["data"][0])  # host: an address, no data read
        return builtins.int(arr.data.ptr)  # type: ignore[attr-defined]  # CuPy's device pointer

    def is_contiguous(self, memory_format: Any = None) -> builtins.bool:
        """As PyTorch's, judged on PyTorch's strides (:meth:`stride`): a convolution's output (channel-major
        here) counts as contiguous, as there, and a view of it as its strides there say.
        ``memory_format=ds.channels_last`` (``channels_last_3d``) asks whether a 4-d (5-d) tensor is laid
        out densely channels-last (False for other ranks).

        Example:
            >>> import downslope as ds
            >>> x = ds.zeros(2, 3, 4, 5).contiguous(memory_format=ds.channels_last)
            >>> x.is_contiguous(), x.is_contiguous(memory_format=ds.channels_last)
            (False, True)
        """
        name = _format_name(memory_format, "is_contiguous()", "contiguous_format")
        a = self.array
        rank = _FORMAT_RANK.get(name)
        if rank is not None:
            return a.ndim == rank and _dense_along(a.shape, self.stride(), _CHANNELS_LAST_DIMS[rank])
        if not _conv_buffers:
            return builtins.bool(a.flags.c_contiguous)
        if _conv_layout(a) or _is_noted_output(a):
            return True
        steps = _torch_strides(a)
        return builtins.bool(a.flags.c_contiguous) if steps is None else _is_dense_in_order(a.shape, steps)

    def stride(self, dim: Any = None) -> Any:
        """The step in elements from one index to the next along each dimension (``dim``: that one
        only), as PyTorch's ``stride``. A convolution's output (and what the layers after it compute)
        is channel-major in memory here but contiguous in PyTorch, so its strides are reported as
        PyTorch's: those of a contiguous tensor (a view of it taken afterwards, e.g. a transpose,
        reports the strides of its memory here). A broadcast (``expand``) dimension has stride 0.

        Example:
            >>> import downslope as ds
            >>> x = ds.zeros(2, 3, 4)
            >>> x.stride(), x.transpose(0, 2).stride(), x.stride(-1)
            ((12, 4, 1), (1, 4, 12), 1)
        """
        a = self.array
        strides = None
        if _conv_buffers:
            if _conv_layout(a) or _is_noted_output(a):
                steps, step = [], 1
                for size in reversed(a.shape):
                    steps.append(step)
                    step *= size
                strides = tuple(reversed(steps))
            else:  # a view of such an output: its strides in PyTorch, where they can be told
                strides = _torch_strides(a)
        if strides is None:
            strides = tuple(builtins.int(st) // a.itemsize for st in a.strides)
        if dim is None:
            return strides
        if not isinstance(dim, (builtins.int, np.integer)) or isinstance(dim, builtins.bool):
            raise ArgumentTypeError(f"stride(): argument 'dim' must be int, not {type(dim).__name__}")
        if a.ndim == 0:
            raise OutOfRangeError(f"Dimension specified as {dim} but tensor has no dimensions")
        if not -a.ndim <= dim < a.ndim:
            raise OutOfRangeError(
                f"Dimension out of range (expected to be in range of [{-a.ndim}, {a.ndim - 1}], but got {dim})"
            )
        return strides[dim]

    def is_inference(self) -> builtins.bool:
        """Whether this is an inference tensor (PyTorch's ``is_inference``): made inside
        ``inference_mode()`` (or a view of one). As torch's, it cannot be saved for backward by an op
        recorded later, nor written in place outside inference mode; ``clone()`` gives a normal tensor.

        Example:
            >>> import downslope as ds
            >>> with ds.inference_mode():
            ...     ds.ones(2).is_inference()
            True
            >>> ds.ones(2).is_inference()
            False
        """
        return self._vc.__class__ is _InferenceVersion

    def view_as(self, other: Tensor) -> Tensor:
        return self.view(other.shape)  # a view or an error, as view (never a silent copy)

    def reshape_as(self, other: Tensor) -> Tensor:
        return _copy_where_torch_copies(self, _ops.reshape(self, other.shape))

    def expand_as(self, other: Tensor) -> Tensor:
        return _expanded(self, other.shape)

    def new_zeros(
        self, *args: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False
    ) -> Tensor:
        return self._new_like(zeros, "new_zeros", args, size, dtype, device, requires_grad)

    def new_ones(
        self, *args: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False
    ) -> Tensor:
        return self._new_like(ones, "new_ones", args, size, dtype, device, requires_grad)

    def new_empty(
        self, *args: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False
    ) -> Tensor:
        return self._new_like(zeros, "new_empty", args, size, dtype, device, requires_grad)

    def _new_like(
        self, factory: Any, name: str, args: Any, size: Any, dtype: Any, device: Any, requires_grad: builtins.bool
    ) -> Tensor:
        """``factory`` (zeros, ones) of the sizes given as ``args`` or ``size=``, in this tensor's dtype and
        on its device unless told otherwise (torch's ``new_*`` methods); ``name`` is for messages."""
        return factory(
            *_kw_sizes(name, args, "size", size),
            dtype=self.array.dtype if dtype is None else dtype,
            device=_like_device(self, device),
            requires_grad=requires_grad,
        )

    def new_full(
        self, size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False
    ) -> Tensor:
        d = self.array.dtype if dtype is None else dtype
        return full(size, fill_value, dtype=d, device=_like_device(self, device), requires_grad=requires_grad)

    def new_tensor(
        self, data: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False
    ) -> Tensor:
        return tensor(
            data,
            dtype=self.array.dtype if dtype is None else dtype,
            device=_like_device(self, device),
            requires_grad=requires_grad,
        )

    def mm(self, mat2: Any) -> Tensor:
        return _ops.mm(self, mat2)

    def bmm(self, mat2: Any) -> Tensor:
        return _ops.bmm(self, mat2)

    def matmul(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def mv(self, vec: Any) -> Tensor:
        return _ops.mv(self, vec)

    def dot(self, other: Any) -> Tensor:
        return _ops.dot(self, other)

    def outer(self, other: Any) -> Tensor:
        return _ops.outer(self, other)

    def t(self) -> Tensor:
        return _ops.t(self)

    def split(self, split_size: Any, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        return _ops.split(self, split_size, dim)

    def chunk(self, chunks: builtins.int, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        return _ops.chunk(self, chunks, dim)

    def narrow(self, dim: builtins.int, start: Any, length: builtins.int) -> Tensor:
        return _ops.narrow(self, dim, start, length)

    def unbind(self, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        return _ops.unbind(self, dim)

    def repeat(self, *sizes: Any, repeats: Any = None) -> Tensor:
        return _ops.repeat(self, *_sizes_arg(_kw_sizes("repeat", sizes, "repeats", repeats)))

    def tile(self, *args: Any, dims: Any = None) -> Tensor:
        reps = _sizes_arg(_kw_sizes("tile", args, "dims", dims))
        return _ops.repeat(self, (1,) * (self.ndim - len(reps)) + tuple(reps))

    def flip(self, *args: Any, dims: Any = None) -> Tensor:
        return _ops.flip(self, _sizes_arg(_kw_sizes("flip", args, "dims", dims)))

    def scatter(
        self, dim: builtins.int, index: Any, src: Any = None, *, value: Any = None, reduce: Any = None
    ) -> Tensor:
        return _ops.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim: builtins.int, index: Any, src: Any) -> Tensor:
        return _ops.scatter_add(self, dim, index, src)

    def index_fill(self, dim: builtins.int, index: Any, value: Any) -> Tensor:
        return _ops.index_fill(self, dim, index, value)

    def index_select(self, dim: builtins.int, index: Any) -> Tensor:
        return _ops.index_select(self, dim, index)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return _ops.masked_fill(self, mask, value)

    def tril(self, diagonal: builtins.int = 0) -> Tensor:
        return _ops.tril(self, diagonal)

    def triu(self, diagonal: builtins.int = 0) -> Tensor:
        return _ops.triu(self, diagonal)

    def sort(self, dim: builtins.int = -1, descending: builtins.bool = False, stable: builtins.bool = False) -> Any:
        return _ops.sort(self, dim, descending, stable)

    def argsort(
        self, dim: builtins.int = -1, descending: builtins.bool = False, stable: builtins.bool = False
    ) -> Tensor:
        return _ops.argsort(self, dim, descending, stable)

    def topk(
        self, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True, sorted: builtins.bool = True
    ) -> Any:
        return _ops.topk(self, k, dim, largest, sorted)

    def cumsum(self, dim: builtins.int, *, dtype: Any = None) -> Tensor:
        return _ops.cumsum(self, dim, dtype=dtype)

    def prod(self, dim: Any = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> Tensor:
        return _ops.prod(self, dim, keepdim, dtype=dtype)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None) -> Tensor:
        if isinstance(p, str) and p == "nuc":  # a matrix norm: torch.norm's route for it
            return _functional.norm(self, p, dim, keepdim, dtype)
        return _ops.vector_norm(self, p, dim, keepdim, dtype=dtype)

    # linear algebra as methods, as on torch.Tensor (downslope.linalg imports this module: imported late)
    def inverse(self) -> Tensor:
        from . import linalg

        return linalg.inv(self)

    def det(self) -> Tensor:
        from . import linalg

        return linalg.det(self)

    def logdet(self) -> Tensor:
        from . import linalg

        return linalg.logdet(self)

    def slogdet(self) -> Any:
        from . import linalg

        return linalg.slogdet(self)

    def pinverse(self, rcond: builtins.float = 1e-15) -> Tensor:
        from . import linalg

        return linalg.pinv(self, rtol=rcond)

    def matrix_power(self, n: builtins.int) -> Tensor:
        from . import linalg

        return linalg.matrix_power(self, n)

    def svd(self, some: builtins.bool = True, compute_uv: builtins.bool = True) -> Any:
        from . import linalg

        return linalg.svd_legacy(self, some, compute_uv)

    def qr(self, some: builtins.bool = True) -> Any:
        from . import linalg

        return linalg.qr_legacy(self, some)

    def geqrf(self) -> Any:
        from .householder import geqrf

        return geqrf(self)

    def orgqr(self, input2: Any) -> Tensor:
        from .householder import householder_product

        return householder_product(self, input2)

    def ormqr(self, input2: Any, input3: Any, left: builtins.bool = True, transpose: builtins.bool = False) -> Tensor:
        from .householder import ormqr

        return ormqr(self, input2, input3, left, transpose)

    def lu(self, pivot: builtins.bool = True, get_infos: builtins.bool = False) -> Any:
        from . import linalg

        return linalg.lu_legacy(self, pivot, get_infos)

    def lu_solve(self, LU_data: Any, LU_pivots: Any) -> Tensor:
        from . import linalg

        return linalg.lu_solve_legacy(self, LU_data, LU_pivots)

    def triangular_solve(
        self,
        A: Any,
        upper: builtins.bool = True,
        transpose: builtins.bool = False,
        unitriangular: builtins.bool = False,
    ) -> Any:
        from . import linalg

        return linalg.triangular_solve(self, A, upper, transpose, unitriangular)

    def cholesky(self, upper: builtins.bool = False) -> Tensor:
        from . import linalg

        return linalg.cholesky(self, upper=upper)

    def cholesky_solve(self, L: Any, upper: builtins.bool = False) -> Tensor:
        from . import linalg

        return linalg.cholesky_solve(self, L, upper)

    def cholesky_inverse(self, upper: builtins.bool = False) -> Tensor:
        from . import linalg

        return linalg.cholesky_inverse(self, upper)

    def matrix_exp(self) -> Tensor:
        from . import linalg

        return linalg.matrix_exp(self)

    def all(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        # dims checked as the other reductions' (a dim named twice, out of range, a 0-d integer tensor)
        axes = None if dim is None else _ops.operands._norm_axes(dim, self.ndim, empty_is_all=False)
        return _truth_result(self, np.all(self.array, axis=axes, keepdims=keepdim))

    def any(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        # dims checked as the other reductions' (a dim named twice, out of range, a 0-d integer tensor)
        axes = None if dim is None else _ops.operands._norm_axes(dim, self.ndim, empty_is_all=False)
        return _truth_result(self, np.any(self.array, axis=axes, keepdims=keepdim))

    def log1p(self) -> Tensor:
        return _ops.log1p(self)

    def expm1(self) -> Tensor:
        return _ops.expm1(self)

    def rsqrt(self) -> Tensor:
        return _ops.rsqrt(self)

    def square(self) -> Tensor:
        return _functional.square(self)

    def reciprocal(self) -> Tensor:
        return _functional.reciprocal(self)

    def neg(self) -> Tensor:
        return _ops.neg(self)

    negative = neg

    def sign(self) -> Tensor:
        return _ops.sign(self)

    def floor(self) -> Tensor:
        return _ops.floor(self)

    def ceil(self) -> Tensor:
        return _ops.ceil(self)

    def round(self, decimals: builtins.int = 0) -> Tensor:
        return _ops.round(self, decimals)

    def trunc(self) -> Tensor:
        return _ops.trunc(self)

    def add(self, other: Any, _other: Any = _NO_OPERAND, *, alpha: Any = 1) -> Tensor:
        if _other is not _NO_OPERAND:  # torch's deprecated add(alpha, other)
            other, alpha = _other, _scalar_first("add", other, alpha, "alpha", "Tensor other")
        try:
            return _ops.add(self, other, alpha=alpha)  # scales as torch (float16: in float32)
        except _sparse.SparseLayoutError:
            if isinstance(other, _sparse.SparseCOOTensor):
                return _sparse._dense_plus(self, other, alpha)
            raise

    def sub(self, other: Any, _other: Any = _NO_OPERAND, *, alpha: Any = 1) -> Tensor:
        if _other is not _NO_OPERAND:  # torch's deprecated sub(alpha, other)
            other, alpha = _other, _scalar_first("sub", other, alpha, "alpha", "Tensor other")
        try:
            return _ops.sub(self, other, alpha=alpha)  # scales as torch (float16: in float32)
        except _sparse.SparseLayoutError:
            if isinstance(other, _sparse.SparseCOOTensor):
                return _sparse._dense_plus(self, other, -alpha)
            raise

    subtract = sub

    def mul(self, other: Any) -> Tensor:
        try:
            return _ops.mul(self, other)
        except _sparse.SparseLayoutError:
            if isinstance(other, _sparse.SparseCOOTensor):
                return _sparse._times_dense(other, self)
            raise

    multiply = mul

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return _ops.div(self, other, rounding_mode=rounding_mode)

    divide = div
    true_divide = div

    def maximum(self, other: Any) -> Tensor:
        return _ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return _ops.minimum(self, other)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        return _functional.lerp(self, end, weight)

    def addcmul(self, tensor1: Any, tensor2: Any, _tensor2: Any = _NO_OPERAND, *, value: Any = 1) -> Tensor:
        if _tensor2 is not _NO_OPERAND:  # torch's deprecated addcmul(value, tensor1, tensor2)
            value = _scalar_first("addcmul", tensor1, value, "value", "Tensor tensor1, Tensor tensor2")
            tensor1, tensor2 = tensor2, _tensor2
        return _functional.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1: Any, tensor2: Any, _tensor2: Any = _NO_OPERAND, *, value: Any = 1) -> Tensor:
        if _tensor2 is not _NO_OPERAND:  # torch's deprecated addcdiv(value, tensor1, tensor2)
            value = _scalar_first("addcdiv", tensor1, value, "value", "Tensor tensor1, Tensor tensor2")
            tensor1, tensor2 = tensor2, _tensor2
        return _functional.addcdiv(self, tensor1, tensor2, value=value)

    def where(self, condition: Any, other: Any) -> Tensor:
        return _ops.where(condition, self, other)

    def leaky_relu(self, negative_slope: builtins.float = 0.01) -> Tensor:
        return _ops.leaky_relu(self, negative_slope)

    # Comparisons by name (no gradient, like the operators)
    def eq(self, other: Any) -> Tensor:
        return self.__eq__(other)

    def ne(self, other: Any) -> Tensor:
        return self.__ne__(other)

    def lt(self, other: Any) -> Tensor:
        return self.__lt__(other)

    def le(self, other: Any) -> Tensor:
        return self.__le__(other)

    def gt(self, other: Any) -> Tensor:
        return self.__gt__(other)

    def ge(self, other: Any) -> Tensor:
        return self.__ge__(other)

    greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

    def equal(self, other: Any) -> builtins.bool:
        """True when both have the same shape and values (torch.equal)."""
        o = _data_of(other)
        return builtins.bool(np.shape(o) == self.shape and np.array_equal(self.array, o))

    def allclose(
        self, other: Any, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8, equal_nan: builtins.bool = False
    ) -> builtins.bool:
        return _ops.allclose(self, other, rtol, atol, equal_nan)  # two tensors of one dtype, as torch

    def isclose(
        self, other: Any, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8, equal_nan: builtins.bool = False
    ) -> Tensor:
        return _ops.isclose(self, other, rtol, atol, equal_nan)  # two tensors of one dtype, as torch

    def isnan(self) -> Tensor:
        return wrap_array(np.isnan(self.array))

    def isinf(self) -> Tensor:
        return wrap_array(np.isinf(self.array))

    def isfinite(self) -> Tensor:
        return wrap_array(np.isfinite(self.array))

    def logical_not(self) -> Tensor:
        return wrap_array(np.logical_not(self.array))

    def logical_and(self, other: Any) -> Tensor:
        return wrap_array(np.logical_and(self.array, _data_of(other)))

    def logical_or(self, other: Any) -> Tensor:
        return wrap_array(np.logical_or(self.array, _data_of(other)))

    def __invert__(self) -> Tensor:
        if self.array.dtype.kind not in "iub":
            raise ArgumentTypeError(f"~ (bitwise not) needs an integer or boolean tensor, got {self.array.dtype}")
        return wrap_array(np.invert(self.array))

    def __and__(self, other: Any) -> Tensor:
        return _bitwise(np.bitwise_and, self, other)

    def __or__(self, other: Any) -> Tensor:
        return _bitwise(np.bitwise_or, self, other)

    def __xor__(self, other: Any) -> Tensor:
        return _bitwise(np.bitwise_xor, self, other)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __lshift__(self, other: Any) -> Tensor:
        return _bitwise(np.left_shift, self, other)

    def __rshift__(self, other: Any) -> Tensor:
        return _bitwise(np.right_shift, self, other)

    bitwise_and, bitwise_or, bitwise_xor = __and__, __or__, __xor__
    bitwise_left_shift, bitwise_right_shift = __lshift__, __rshift__

    def bitwise_not(self) -> Tensor:
        return ~self

    # The in-place forms (PyTorch's __iand__ ...): without them `x |= y` rebinds x to a new tensor, and
    # a view or a parameter named x would silently keep its old values.
    def bitwise_and_(self, other: Any) -> Tensor:
        return _inplace_bitwise(self, np.bitwise_and, other, "bitwise_and_")

    def bitwise_or_(self, other: Any) -> Tensor:
        return _inplace_bitwise(self, np.bitwise_or, other, "bitwise_or_")

    def bitwise_xor_(self, other: Any) -> Tensor:
        return _inplace_bitwise(self, np.bitwise_xor, other, "bitwise_xor_")

    def bitwise_left_shift_(self, other: Any) -> Tensor:
        return _inplace_bitwise(self, np.left_shift, other, "bitwise_left_shift_")

    def bitwise_right_shift_(self, other: Any) -> Tensor:
        return _inplace_bitwise(self, np.right_shift, other, "bitwise_right_shift_")

    __iand__, __ior__, __ixor__ = bitwise_and_, bitwise_or_, bitwise_xor_
    __ilshift__, __irshift__ = bitwise_left_shift_, bitwise_right_shift_

    def __ifloordiv__(self, other: Any) -> Tensor:
        return self.floor_divide_(other)  # type: ignore[attr-defined]  # attached by ops.methods

    def __imod__(self, other: Any) -> Tensor:
        return self.remainder_(other)  # type: ignore[attr-defined]  # attached by ops.methods

    def __floordiv__(self, other: Any) -> Tensor:
        return _ops.floor_divide(self, other)  # PyTorch's dtype rules (float32 // int64 stays float32)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _ops.floor_divide(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return _ops.remainder(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return _ops.remainder(other, self)

    def bincount(self, weights: Any = None, minlength: builtins.int = 0) -> Tensor:
        return _ops.bincount(self, weights, minlength)

    def unique(
        self,
        sorted: builtins.bool = True,
        return_inverse: builtins.bool = False,
        return_counts: builtins.bool = False,
        dim: Any = None,
    ) -> Any:
        return _ops.unique(self, sorted, return_inverse, return_counts, dim)


_TYPE_NAMES = {
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "complex64": "ComplexFloatTensor",
    "complex128": "ComplexDoubleTensor",
    "float16": "HalfTensor",
    "int64": "LongTensor",
    "int32": "IntTensor",
    "int16": "ShortTensor",
    "int8": "CharTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
}


# ---------------------------------------------------------------------- construction helpers
# The getter of requires_grad reads its slot through the slot descriptor itself (no Python call: every
# recorded op reads its parents' requires_grad); the setter keeps its checks. (grad's getter warns on
# non-leaves, so it stays a Python property.)
for _name in ("requires_grad",):
    _prop = Tensor.__dict__[_name]
    setattr(Tensor, _name, property(Tensor.__dict__["_" + _name].__get__, _prop.fset, doc=_prop.__doc__))
del _name, _prop


def _uneven_nesting(data: list[Any] | tuple[Any, ...]) -> str | None:
    """Where nested lists stop being rectangular, in torch's words ("expected sequence of length 2 at
    dim 1 (got 1)"): the first element at each depth sets the shape, as torch reads it; None if even."""
    shape = []
    probe: Any = data
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]

    def first_misfit(seq: list[Any] | tuple[Any, ...], dim: builtins.int) -> str | None:
        for item in seq:
            nested = isinstance(item, (list, tuple))
            if dim + 1 >= len(shape):
                if nested:
                    return f"expected a number at dim {dim + 1} (got a sequence of length {len(item)})"
                continue
            if not nested:
                return f"expected sequence of length {shape[dim + 1]} at dim {dim + 1} (got {type(item).__name__})"
            if len(item) != shape[dim + 1]:
                return f"expected sequence of length {shape[dim + 1]} at dim {dim + 1} (got {len(item)})"
            found = first_misfit(item, dim + 1)
            if found is not None:
                return found
        return None

    return first_misfit(data, 0)


def _refuse_pandas_missing(data: Any) -> None:
    """Refuse a pandas Series, DataFrame or array of a nullable dtype (``Int64``, ``Float64``,
    ``boolean``...) holding missing values (``<NA>``): pandas hands them to NumPy as floats with NaN, so
    integer ids would silently become floats; torch refuses them ("Could not infer dtype of NAType")."""
    dtypes = list(data.dtypes) if hasattr(data, "columns") else [getattr(data, "dtype", None)]
    nullable = [dt for dt in dtypes if type(getattr(dt, "na_value", None)).__name__ == "NAType"]
    if not nullable or not hasattr(data, "isna") or not np.asarray(data.isna()).any():  # host: pandas data
        return
    raise ArgumentTypeError(
        f"cannot make a tensor from a pandas {type(data).__name__} of dtype {nullable[0]} holding missing values "
        "(<NA>); torch refuses it too (Could not infer dtype of NAType): fill them first (.fillna(0)), or make them "
        "NaN in a float column (.astype('float32')), or drop them (.dropna())"
    )


def to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Turn user data into an array with the library's dtype policy (what ``ds.tensor`` stores).

    Floating input becomes the default dtype (float32) unless ``dtype`` says otherwise: NumPy and
    scikit-learn hand out float64, and silently training in float64 would be twice as slow; float16
    stays float16, as in torch. Arrays and tensors of int8, int16, int32, int64 or uint8 keep their
    dtype, as in torch (a uint8 image stays uint8, so ``x.float() / 255`` code sees it); Python
    integers become int64, as do uint16/uint32/uint64 arrays (downslope has no such dtypes; uint64
    values past int64's range are refused). Booleans stay bool. Strings and objects are refused.
    A list whose first element is a tensor takes the elements' common dtype, as torch (a list of float64
    0-d tensors stays float64); Python numbers that do not fit an integer ``dtype`` are refused, as torch.

    Example:
        >>> to_array([1, 2.5]).dtype
        dtype('float32')
    """
    if isinstance(data, Tensor):
        arr = data.array
    elif isinstance(data, np.ndarray) or _devices.is_array(data):
        arr = data
    else:
        if isinstance(data, (list, tuple)) and isinstance(_first_leaf(data), Tensor):
            data = _tensors_as_numbers(data)
        elif type(data).__module__.startswith("pandas"):
            _refuse_pandas_missing(data)
        try:
            arr = _devices.to_host(data)  # the caller's data (lists, numbers, a PyTorch tensor) is host data
        except StateError:  # a list of tensors that require grad: their values, as torch.tensor takes them
            with _no_grad():
                arr = _devices.to_host(data)
        except (ValueError, TypeError) as exc:
            uneven = _uneven_nesting(data) if isinstance(data, (list, tuple)) else None
            if uneven is not None:  # NumPy's "inhomogeneous shape" text does not say where
                raise UnevenDataError(f"cannot make a tensor from {type(data).__name__}: {uneven}") from None
            raise ArgumentTypeError(f"cannot make a tensor from {type(data).__name__}: {exc}") from None
        if arr.dtype.kind in "fOu" and dtype is None:
            _check_int_overflow(data, arr)
    if arr.dtype.kind not in "fiubc":
        raise ArgumentTypeError(
            f"cannot make a tensor from data of dtype {arr.dtype} ({type(data).__name__}); "
            "expected numbers or booleans (ragged lists and strings are not tensors)"
        )
    python_data = isinstance(data, (list, tuple, int, float))
    if dtype is not None:
        target = backend.as_dtype(dtype)
        if python_data and target.kind in "iu" and arr.dtype.kind in "iuf":
            _check_integer_range(arr, target)
        elif python_data and arr.dtype.kind == "c" and target.kind in "iuf":
            # torch refuses complex numbers into a real dtype (NumPy's cast would drop the imaginary parts, or
            # raise its ComplexWarning, depending on the warning filters)
            raise ArgumentTypeError(
                f"tensor: 'complex' object cannot be interpreted as {'an integer' if target.kind != 'f' else 'a real number'} "
                f"(complex numbers in the data with dtype={target}); pass a complex dtype, or take .real first"
            )
    elif python_data and isinstance(data, (list, tuple)) and (listed := _listed_tensors_dtype(data)) is not None:
        target = listed
    elif arr.dtype.kind == "f":
        target = arr.dtype if arr.dtype == backend.float16 else backend.get_default_dtype()
    elif arr.dtype.kind == "c":  # the float policy: complex128 data is complex64, as float64 is float32
        target = backend.complex_of(backend.get_default_dtype())
    elif arr.dtype.kind in "iu":
        target = arr.dtype if arr.dtype in KEPT_INTEGER_DTYPES else backend.int64
        if _NARROW_NP_INT is not None and target == _NARROW_NP_INT and isinstance(data, (list, tuple, int)):
            target = backend.int64  # Python ints, which NumPy 1 on Windows makes int32: int64, as torch
    else:
        target = arr.dtype
    if arr.dtype == np.uint64 and target.kind == "i" and arr.size and arr.max() > _INT64_MAX:
        raise ArgumentError(
            f"cannot make an {target} tensor from uint64 values up to {arr.max()}: they do not fit (downslope "
            "has no uint64 dtype); pass dtype=ds.float64 (or hash the values into int64's range)"
        )
    if arr.dtype != target:
        arr = arr.astype(target)
    elif isinstance(data, (Tensor, np.ndarray)) or _devices.is_array(data) or _devices.is_foreign_tensor(data):
        arr = arr.copy()  # ds.tensor copies, like torch.tensor; use ds.from_numpy to share
    return arr


_INT64_MAX = 2**63 - 1
# the complex dtype a repr leaves out, as torch (complex64 while float32 is the default), by the default
_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.float64): np.dtype(np.complex128)}
# torch's classic integer dtypes, which an array or tensor keeps (``to_array``); NumPy's default integer
# (what Python ints become) when it is narrower than int64, else None
KEPT_INTEGER_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8))
_NARROW_NP_INT: np.dtype[Any] | None = np.dtype(int) if np.dtype(int) != np.int64 else None
_NDARRAY, _NP_SCALAR = np.ndarray, np.generic


# torch's integer dtypes' (min, max), for the range check of Python data
_INTEGER_RANGE = {
    np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max)) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8)
}


def _check_integer_range(arr: np.ndarray, target: np.dtype[Any]) -> None:
    """Refuse Python numbers that do not fit the integer ``target``, as torch.tensor(..., dtype=) does
    (NumPy would wrap 257 into uint8 silently): fill_'s checked conversion, tested for all values at once
    (ints into an unsigned dtype wrap from -max, floats must lie in the range, NaN never does)."""
    if not arr.size:
        return
    bounds = _INTEGER_RANGE.get(target)
    low, high = bounds if bounds is not None else (int(np.iinfo(target).min), int(np.iinfo(target).max))
    if arr.dtype.kind != "f" and target.kind == "u":
        low = -high
    # two reductions (a NaN fails both tests); the elements are looked at only to name a bad one
    if not (arr.min() >= low and arr.max() <= high):  # host: the caller's Python data
        from .errors import InvalidValueError
        from .ops.operands import _checked_scalar  # ops loads after this module

        bad = ~((arr >= low) & (arr <= high))
        value = arr[bad].flat[0].item()  # host: the caller's Python data
        _checked_scalar(value, target, "tensor")  # raises, with fill_'s message
        raise InvalidValueError(f"tensor: value {value!r} cannot be converted to {target} without overflow")


def _number_of(value: Any) -> Any:
    """A host 0-d array or NumPy scalar as a Python number; anything else as it is."""
    return value.item() if isinstance(value, (np.ndarray, np.generic)) else value  # host: a number


def _first_leaf(data: Any) -> Any:
    """The first element of a nested list or tuple that is not itself a list or tuple (or an empty one)."""
    while isinstance(data, (list, tuple)) and data:
        data = data[0]
    return data


def _tensors_as_numbers(data: list[Any] | tuple[Any, ...]) -> list[Any]:
    """The tensors in a nested list as torch.tensor reads them: numbers, so each must hold one element
    (``[tensor([1.]), tensor([2.])]`` is of shape (2,), not (2, 1)); kept as 0-d tensors of their dtype."""
    out: list[Any] = []
    for v in data:
        if isinstance(v, (list, tuple)):
            out.append(_tensors_as_numbers(v))
        elif isinstance(v, Tensor):
            if v.array.size != 1:
                raise ArgumentError(
                    f"tensor: only one element tensors can be converted to Python scalars (a list item of shape "
                    f"{tuple(v.array.shape)} where a number is expected; use ds.stack to join tensors)"
                )
            out.append(wrap_array(v.array.reshape(())))
        else:
            out.append(v)
    return out


def _listed_tensors_dtype(data: list[Any] | tuple[Any, ...]) -> np.dtype[Any] | None:
    """The dtype of a list holding tensors (torch.tensor([t1, t2])): their dtypes and the Python
    numbers' default dtypes promoted together (a list of float64 0-d tensors is float64); None when the
    first element is not a tensor: a list of numbers then costs no Python scan (a million floats would
    take longer to scan than NumPy takes to convert them), and a list of numbers with tensors further on
    keeps the policy's dtype."""
    first: Any = data
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    if not isinstance(first, Tensor):
        return None
    from .ops.promotion import promote_types  # ops loads after this module

    out: Any = None
    stack: list[Any] = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
            continue
        if isinstance(v, Tensor):
            d = v.array.dtype
        elif isinstance(v, (bool, np.bool_)):
            d = np.dtype(bool)
        elif isinstance(v, (int, np.integer)):
            d = np.dtype(np.int64)
        elif isinstance(v, (float, np.floating)):
            d = np.dtype(backend.get_default_dtype())
        else:
            return None  # complex numbers and other data: the general rule
        out = d if out is None else np.dtype(promote_types(out, d))
    return out


def _check_int_overflow(data: Any, arr: np.ndarray) -> None:
    """Refuse Python integers outside int64's range, as torch does: NumPy makes them objects, or floats
    when they are mixed with other integers (``[1, 2**63]``), where torch raises an overflow error. A
    float array gets the (vectorised) range test only when its first element is an int, and the
    element scan only when that finds a value so large."""
    first = data
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    if type(first) is not int:
        return
    if arr.dtype.kind in "fu" and not (arr.size and np.abs(arr).max() >= 2.0**63):  # host: Python data
        return

    def leaves(x: Any) -> Iterator[Any]:
        if isinstance(x, (list, tuple)):
            for v in x:
                yield from leaves(v)
        else:
            yield x

    if all(type(v) is int for v in leaves(data)):
        raise ArgumentError(
            "Overflow when unpacking long long: a Python integer outside int64's range "
            f"[{-_INT64_MAX - 1}, {_INT64_MAX}] (pass dtype=ds.float64 to keep it as a float)"
        )


def _rebuild_tensor(cls: type[Tensor], array: Any, requires_grad: bool, extra: dict[str, Any] | None) -> Tensor:
    """A leaf of type ``cls`` around ``array`` (how a pickled or copied tensor comes back)."""
    t = cls.__new__(cls)
    t.array = array
    t._grad = None
    t.requires_grad = requires_grad
    t._parents = ()
    t._vjp = None
    t._saved = None
    t._needs = None
    t._retains_grad = False
    t._seq = 0
    t._vc = None
    if extra:
        t.__dict__.update(extra)
    return t


def wrap_array(arr: np.ndarray) -> Tensor:
    """A constant (leaf, no grad) tensor around an existing array, without checks or copies.

    Ops use it for outputs that carry no gradient (integer results, masks) and rules for constant
    operands. The array is shared, not copied, and its dtype is kept as it is.

    Example:
        >>> import numpy as np
        >>> wrap_array(np.arange(3.0)).requires_grad
        False
    """
    t = Tensor.__new__(Tensor)
    t.array = arr
    t._grad = None
    t._requires_grad = False
    t._parents = ()
    t._vjp = None
    t._saved = None
    t._needs = None
    t._retains_grad = False
    t._seq = 0
    t._vc = None
    if _inference_active[0] and _mode.inference:
        _mark_inference(t)
    return t


# Recorded ops are numbered in creation order. An op's inputs exist before it does, so sorting a
# graph's nodes by this number is a topological order: backward needs no depth-first search.
_op_counter = itertools.count(1)


def _rsub_vjp(g, y, args, saved, needs, xp):
    """number - x (PyTorch's rsub): the gradient of x, its one input."""
    return (xp.sum_to(-g, args[0].shape),)


_rsub_vjp.reads_inputs = False  # type: ignore[attr-defined]
_rsub_vjp.reads_output = False  # type: ignore[attr-defined]

# A convolution returns its (N, C, ...) output over (C, N, ...) memory (see nn._conv_kernels) where
# PyTorch's is contiguous, and the layers after it (batch norm, ReLU, pooling) keep that layout.
# view() and stride() must treat those tensors as contiguous, and only those: a transposed view of
# an ordinary tensor is laid out the same way, and PyTorch refuses to view it. So such outputs'
# buffers are noted: id(root buffer) -> (weak reference to it, the output's size, shape, strides),
# and True after them once the buffer was handed out (see _settle_layout).
_conv_buffers: dict[int, tuple[Any, ...]] = {}

_NUMPY_REQUIRES_GRAD = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."


def _root_buffer(a: Any) -> Any:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while True:
        b = getattr(a, "base", None)
        if b is None or not (isinstance(b, np.ndarray) or type(b) is type(a)):
            return a
        a = b


def _channel_major(a: Any) -> builtins.bool:
    return a.ndim >= 3 and a.shape[0] > 1 and a.shape[1] > 1 and builtins.bool(a.swapaxes(0, 1).flags.c_contiguous)


def _copy_where_torch_copies(x: Tensor, out: Tensor) -> Tensor:
    """``out``, a reshape of ``x`` (the Tensor methods ``reshape`` and ``flatten``), or a copy of it when
    ``x`` is a permuted or transposed view of a convolution's output: PyTorch's output is contiguous, so
    its reshape copies there (a detection head's ``permute(0, 2, 3, 1).reshape(-1, C)``), while the
    channel-major memory here allows a view, through which an in-place op would change the output.
    The library's own kernels reshape through ``ops.reshape``, which keeps the view."""
    return out if not _conv_buffers else _ops.shape.copy_where_torch_copies(x, out)


def _noted_size(a: Any) -> builtins.int | None:
    """The size of the noted convolution output whose buffer ``a`` lies in (see
    :func:`note_conv_layout`), or None when it lies in no such buffer."""
    if not _conv_buffers:
        return None
    root = _root_buffer(a)
    entry = _conv_buffers.get(id(root))
    return entry[1] if entry is not None and entry[0]() is root else None


def _over_conv_buffer(a: Any) -> builtins.bool:
    """Whether ``a`` lies in a noted convolution output's buffer (a view of one: an image, a channel
    slice), whatever its own layout."""
    return _noted_size(a) is not None


def _conv_layout(a: Any) -> builtins.bool:
    """Whether ``a`` is a convolution's channel-major layout (contiguous in PyTorch's terms): over a
    noted buffer it fills whole, so it is that output, or a view that PyTorch keeps contiguous
    (squeeze, detach, a flatten of the trailing dimensions)."""
    return builtins.bool(_conv_buffers) and _channel_major(a) and _noted_size(a) == a.size


def _is_noted_output(a: Any) -> builtins.bool:
    """Whether ``a`` is a noted output itself (:func:`note_conv_layout`), in any layout of its buffer
    (a 3-d convolution's is depth-major): contiguous in PyTorch."""
    if not _conv_buffers:
        return False
    root = _root_buffer(a)
    entry = _conv_buffers.get(id(root))
    return entry is not None and entry[0]() is root and entry[2] == a.shape and entry[3] == a.strides


def _torch_strides(a: Any) -> tuple[builtins.int, ...] | None:
    """PyTorch's strides (in elements) of ``a`` as a view the user took of a noted output lying over
    the same buffer (:func:`note_conv_layout`): that output is contiguous in PyTorch, so each step of
    ``a`` through the buffer, written in whole steps of the output's dims (its layout is dense, so
    the digits are unique), is the same combination of the output's contiguous strides. None when
    ``a`` lies over no noted buffer, or steps backwards or between the output's elements. (A layer's
    own view of an intermediate it noted is judged the same way, so :meth:`Tensor.contiguous` may
    copy one that PyTorch would return as is: a copy where torch has none, never the reverse.)"""
    place = _torch_place(a, False)
    return None if place is None else place[1]


def _torch_place(a: Any, with_offset: builtins.bool = True) -> tuple[builtins.int, tuple[builtins.int, ...]] | None:
    """Where ``a`` lies in PyTorch's tensor for the noted output over the same buffer: the offset of its
    first element (``with_offset``; else 0) and its strides, in elements of that contiguous output (see
    :func:`_torch_strides`); None when that cannot be told. The offset needs the output to fill its
    buffer (from its start, in ``a``'s dtype)."""
    root = _root_buffer(a)
    entry = _conv_buffers.get(id(root))
    if entry is None or entry[0]() is not root:
        return None
    shape, byte_steps = entry[2], entry[3]
    dims, contiguous = [], 1
    for size, byte_step in zip(reversed(shape), reversed(byte_steps)):
        if size > 1:
            dims.append((builtins.int(byte_step), contiguous))
        contiguous *= size
    dims.sort(reverse=True)  # the output's dims, outermost in memory first
    offset = 0
    if with_offset and (root.dtype != a.dtype or root.size != entry[1]):
        return None
    if with_offset and a.size:
        left = Tensor.data_ptr(wrap_array(a)) - Tensor.data_ptr(wrap_array(root))
        if left < 0:
            return None
        for unit, elements in dims:
            count, left = divmod(left, unit)
            offset += count * elements
        if left:
            return None
    steps, later = [], 1
    for size, byte_step in zip(reversed(a.shape), reversed(a.strides)):
        if size == 1:  # any step: PyTorch's contiguous one
            steps.append(later)
            continue
        left, step = builtins.int(byte_step), 0
        if left < 0:
            return None
        for unit, elements in dims:
            count, left = divmod(left, unit)
            step += count * elements
        if left:
            return None
        steps.append(step)
        later = step * size
    return offset, tuple(reversed(steps))


def _is_dense_in_order(shape: tuple[builtins.int, ...], steps: tuple[builtins.int, ...]) -> builtins.bool:
    """PyTorch's ``is_contiguous`` of a tensor of ``shape`` with strides ``steps`` (size-1 dims skipped)."""
    expected = 1
    for size, step in zip(reversed(shape), reversed(steps)):
        if size == 1:
            continue
        if step != expected:
            return False
        expected *= size
    return True


# The order PyTorch's channels-last layouts lay a 4-d (N, C, H, W) or 5-d (N, C, D, H, W) tensor out
# in, innermost dim first.
_CHANNELS_LAST_DIMS = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}
_FORMAT_RANK = {"channels_last": 4, "channels_last_3d": 5}


def _format_name(memory_format: Any, where: str, default: str) -> str:
    """The name of ``memory_format`` (``ds.channels_last`` ...; None: ``default``), refusing anything else."""
    if memory_format is None:
        return default
    if not isinstance(memory_format, backend.memory_format):
        raise ArgumentTypeError(
            f"{where}: argument 'memory_format' must be a memory format (ds.contiguous_format, ds.preserve_format, "
            f"ds.channels_last, ds.channels_last_3d), not {type(memory_format).__name__}"
        )
    return memory_format.name


def _dense_along(
    shape: Sequence[builtins.int], steps: Sequence[builtins.int], inner_first: Sequence[builtins.int]
) -> builtins.bool:
    """Whether strides ``steps`` lay ``shape`` out densely with dims ``inner_first`` from the innermost
    out (size-1 dims skipped): PyTorch's ``is_contiguous(memory_format=...)``."""
    expected = 1
    for d in inner_first:
        if shape[d] != 1:
            if steps[d] != expected:
                return False
            expected *= shape[d]
    return True


def _strides_like_channels_last(shape: Sequence[builtins.int], steps: Sequence[builtins.int]) -> builtins.bool:
    """PyTorch's ``is_channels_last_strides_2d``/``_3d``: whether strides ``steps`` of a 4-d (5-d) tensor
    run channels-last, dense or not (how ``suggest_memory_format`` tells the layout ``to`` keeps). The
    ambiguous cases (a trivial C dim, N111) count as the default, contiguous, as there."""
    order = _CHANNELS_LAST_DIMS.get(len(shape))
    if order is None or steps[1] == 0:
        return False
    low = 0
    for d in order:
        if shape[d] == 0 or steps[d] < low:
            return False
        if d == 0 and low == steps[1]:
            return False
        low = steps[d] * shape[d] if shape[d] > 1 else steps[d]
    return True


def _dense_order(shape: Sequence[builtins.int], steps: Sequence[builtins.int]) -> tuple[builtins.int, ...]:
    """The dims, outermost first, in which PyTorch's ``preserve_format`` copy of a tensor with strides
    ``steps`` lays its elements out (``infer_dense_strides``: by stride, a stable insertion sort that
    leaves broadcast (stride 0) dims where they are, equal strides ordered by size)."""
    perm = list(reversed(range(len(shape))))  # innermost first

    def swap(d0: builtins.int, d1: builtins.int) -> builtins.int:
        s0, s1 = steps[d0], steps[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return 1 if s0 > s1 else -1
        return 1 if shape[d0] > shape[d1] else 0

    for i in range(1, len(perm)):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return tuple(reversed(perm))


def _laid_out(t: Tensor, outer_first: Sequence[builtins.int]) -> Tensor:
    """A copy of ``t`` whose memory runs along dims ``outer_first`` (outermost first), as PyTorch's
    ``clone``/``contiguous`` in a memory format; the gradient passes through unchanged."""
    from .ops.pointwise import _clone_vjp

    a = t.array
    order = tuple(outer_first)
    if order == tuple(range(a.ndim)):
        return _ops.clone(t)
    back = tuple(builtins.int(i) for i in np.argsort(order))
    out = a.transpose(order).copy(order="C").transpose(back)  # a copy even where that order is the array's own
    result = record_op(out, (t,), _clone_vjp)
    forget_layout_note(out)  # its own layout is PyTorch's (record_op notes a copy of a convolution's output)
    return result


def _format_order(t: Tensor, name: str, where: str) -> tuple[builtins.int, ...]:
    """The dims, outermost first, of memory format ``name`` for ``t`` (preserve_format: its own order)."""
    if name == "preserve_format":
        return _dense_order(t.shape, t.stride())
    rank = _FORMAT_RANK.get(name)
    if rank is None:
        return tuple(range(t.ndim))
    if t.ndim != rank:
        raise ShapeError(
            f"{where}: required rank {rank} tensor to use {name} format, got a tensor of shape {tuple(t.shape)}"
        )
    return tuple(reversed(_CHANNELS_LAST_DIMS[rank]))


def _suggested_format(t: Tensor) -> str:
    """PyTorch's ``suggest_memory_format``: channels-last when the strides run so, else contiguous."""
    if t.ndim in _CHANNELS_LAST_DIMS and _strides_like_channels_last(t.shape, t.stride()):
        return "channels_last" if t.ndim == 4 else "channels_last_3d"
    return "contiguous_format"


def _forget_conv_buffer(key: int, _ref: Any) -> None:
    _conv_buffers.pop(key, None)
    _buffer_holders.pop(key, None)


def note_conv_layout(arr: Any) -> Any:
    """Note ``arr``, an op's (N, C, ...) output laid out channel-major over a buffer of its own (as
    a convolution returns), as contiguous in PyTorch's sense: ``view`` and ``stride`` then treat it
    (and channel-major views of that whole buffer) so. Returns ``arr``. Ops computing from a noted
    tensor note their outputs that are not laid out in order themselves.

    Example:
        >>> import numpy as np
        >>> a = note_conv_layout(np.zeros((3, 2, 4), np.float32).swapaxes(0, 1))
        >>> wrap_array(a).stride()
        (12, 4, 1)
    """
    if arr.flags.c_contiguous:
        # in order already (one image, or one channel): PyTorch's contiguous output gives a size-1 dim
        # the stride of the dims after it, where the channel-major array keeps the step it had there
        return arr.reshape(-1).reshape(arr.shape) if 1 in arr.shape and arr.ndim > 1 else arr
    if not arr.flags.c_contiguous:
        root = _root_buffer(arr)
        key = id(root)
        try:
            ref = weakref.ref(root, functools.partial(_forget_conv_buffer, key))
        except TypeError:  # an array type without weak references: left unnoted (its view refuses, never copies)
            return arr
        _conv_buffers[key] = (ref, arr.size, arr.shape, arr.strides)
    return arr


def forget_layout_note(arr: Any) -> None:
    """Drop the note :func:`record_op` made for ``arr``, an op's fresh output out of order, when that
    layout is PyTorch's too (scaled_dot_product_attention's output follows the query's): ``stride``
    and ``view`` then see its own strides, as for any tensor not noted."""
    _forget_conv_buffer(id(_root_buffer(arr)), None)


def _note_if_fresh(arr: Any, parents: tuple[Tensor, ...]) -> None:
    """An op's output not laid out in order (the caller checked) in a buffer of its own, not a view
    of an input's, computed from a convolution's output (an input over a noted buffer): the layers
    after a convolution (batch norm, ReLU, pooling) keep its channel-major layout, where PyTorch's
    output is contiguous, so it is noted as such (:func:`note_conv_layout`). Any other op's output
    keeps its own strides: NumPy's order follows the inputs' as PyTorch's elementwise ops do, and an
    op that picks a layout of its own for speed notes it itself. A view of an input is judged by its
    own layout."""
    root = _root_buffer(arr)
    from_conv = False
    for p in parents:
        p_root = _root_buffer(p.array)
        if p_root is root:
            return
        if not from_conv:
            entry = _conv_buffers.get(id(p_root))
            from_conv = entry is not None and entry[0]() is p_root
    if from_conv:
        note_conv_layout(arr)


# Each rule that holds for complex values -> the rule record_op records for a complex output (torch's
# convention, the conjugate Wirtinger gradient); ops/complex.py fills it. An op missing here is refused.
COMPLEX_RULES: dict[Any, Any] = {}
# The views of a complex tensor's parts (real, imag, view_as_real), by rule -> (write(base, values): record
# the base's new values from the view's, view(base): the view taken again); a write through one reaches
# the complex tensor, as torch's views do. ops/complex.py fills it.
PART_VIEWS: dict[Any, tuple[Callable[[Tensor, Tensor], None], Callable[[Tensor], Tensor]]] = {}


def _refuse_complex(vjp: Any) -> Any:
    from .ops.complex import refuse_complex

    return refuse_complex(vjp)


def record_op(arr: np.ndarray, parents: tuple[Tensor, ...], vjp: VJPRule, saved: Any = None) -> Tensor:
    """The output of an op: a tensor around ``arr`` that records the op when grad mode is on and one
    of ``parents`` requires grad (the public contract every differentiable op in every package uses).

    ``parents`` are the input tensors whose gradients ``vjp`` returns, in order; ``saved`` is handed
    to ``vjp`` as is (and freed after backward unless the graph is retained). ``vjp`` follows
    :class:`downslope.graph.VJPRule`; see that module for the two namespaces it runs under.

    Example:
        >>> import downslope as ds
        >>> def _square_vjp(g, y, args, saved, needs, xp):
        ...     return (g * 2 * args[0],)
        >>> x = ds.tensor([3.0], requires_grad=True)
        >>> record_op(x.array**2, (x,), _square_vjp).sum().backward()
        >>> x.grad
        tensor([6.])
    """
    noted = _conv_buffers and arr.ndim >= 3 and not arr.flags.c_contiguous  # a layout kept from a convolution's
    if noted:
        _note_if_fresh(arr, parents)
    if arr.__class__ is not _NDARRAY and isinstance(arr, _NP_SCALAR):  # (the cheapest test: every op pays it)
        arr = np.asarray(arr)  # host: NumPy's 0-d result is a read-only scalar; a tensor holds an array it can share
    if arr.dtype.kind == "c":  # the one complex guard: an op whose rule is not known to hold for complex is refused
        vjp = COMPLEX_RULES.get(vjp) or _refuse_complex(vjp)
    t = Tensor.__new__(Tensor)
    t.array = arr
    t._grad = None
    t._saved = saved
    t._retains_grad = False
    t._vc = None
    if noted:
        _hold(t)
    if _mode.enabled:
        needs = tuple(p.requires_grad for p in parents)
        if True in needs:
            tp = type(arr)
            for p in parents:
                if type(p.array) is not tp:  # only then can two devices meet
                    _check_devices(arr, parents, vjp)
            t._requires_grad = True
            t._parents = parents
            t._vjp = vjp
            t._needs = needs
            t._seq = next(_op_counter)
            if _mode.saved_hooks:  # a saved_tensors_hooks context is active
                _pack_saved(t)
            if _anomaly_mode[0]:  # where it was made, for anomaly mode's error report
                _note_forward_stack(t)
            if _inference_made:  # (False until inference_mode() makes a tensor: no cost before)
                _refuse_saved_inference(parents, vjp, needs)
            return t
    t._seq = 0
    t._requires_grad = False
    t._parents = ()
    t._vjp = None
    t._needs = None
    t._saved = None
    if _inference_active[0] and _mode.inference:
        _mark_inference(t)
    return t


class _InferenceVersion(list[int]):
    """The version counter of an inference tensor (made inside ``inference_mode()``), which marks it:
    views and detached aliases share it, so they are inference tensors too, as torch's."""

    __slots__ = ()


# What a new inference tensor holds as its version counter: one shared marker (an assignment, where a new
# counter would cost more than some ops), standing for None ("no counter yet"); _version_counter and the
# writes give the tensor a counter of its own when it first needs one (a view, a write)
_INFERENCE_VC = _InferenceVersion([0])


_inference_made = False  # whether any inference tensor was made in this process (record_op's cheap test)

_INFERENCE_SAVED = (  # torch's words
    "Inference tensors cannot be saved for backward. Please do not use Tensors created in inference mode in "
    "computation tracked by autograd. To work around this, you can make a clone to get a normal tensor and use it "
    "in autograd, or use `downslope.no_grad()` instead of `downslope.inference_mode()`."
)
_INFERENCE_INPLACE = (  # torch's words
    "Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to get a normal "
    "tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 for more details."
)
_INFERENCE_REQUIRES_GRAD = "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed."


def _mark_inference(t: Tensor) -> None:
    """Make ``t`` (new, made inside inference_mode()) an inference tensor."""
    global _inference_made
    t._vc = _INFERENCE_VC
    _inference_made = True


def _refuse_saved_inference(parents: tuple[Tensor, ...], vjp: Any, needs: tuple[bool, ...]) -> None:
    """Refuse, as torch, an op recorded now whose rule reads (saves) an inference tensor among ``parents``."""
    for i, p in enumerate(parents):
        if p._vc.__class__ is _InferenceVersion and _reads_input(vjp, i, needs):
            raise StateError(_INFERENCE_SAVED)


def _refuse_inference_write(t: Tensor) -> None:
    """Refuse an in-place write into an inference tensor outside inference mode, as torch (before the write)."""
    if t._vc.__class__ is _InferenceVersion and not _mode.inference:
        raise StateError(_INFERENCE_INPLACE)


# ---------------------------------------------------------------------- in-place machinery
# A version counter is a list [version, seq of a recent write, ...] (the last writes' creation
# numbers, so that backward can tell whether a write came after an op used the tensor). Tensors
# sharing storage (views, detach(), the old history kept by a rebase) share one list.
_RECENT_WRITES = 32

_LEAF_MESSAGE = (
    "a leaf Variable that requires grad is being used in an in-place operation. "
    "(Update parameters inside `with ds.no_grad():`, or write through .data.)"
)
_READ_ONLY_MESSAGE = (
    "{op}: unsupported operation: more than one element of the written-to tensor refers to a single memory "
    "location, or the tensor is read-only (a broadcast view such as expand(), or a read-only NumPy array shared "
    "through from_numpy or as_tensor). Please clone() the "
    "tensor before performing the operation."
)


def _fill_where_masked(array: Any, index: Any, data: Any) -> bool:
    """``array[mask] = scalar`` on a device without the synchronisation that a boolean-mask assignment
    costs there (CuPy counts the mask's True values on the host first): written as ``copyto(where=)``,
    as PyTorch's CUDA ``masked_fill_`` does. True when done; False for any other index or value."""
    mask = index[0] if type(index) is tuple and len(index) == 1 else index
    if getattr(mask, "dtype", None) != np.bool_ or not 0 < mask.ndim <= array.ndim:
        return False
    if mask.shape != array.shape[: mask.ndim] or getattr(data, "size", 1) != 1:
        return False
    where = mask.reshape(mask.shape + (1,) * (array.ndim - mask.ndim))
    # casting="unsafe": an assignment converts the value to the tensor's dtype (int_tensor[mask] = 2.5 writes 2)
    np.copyto(array, data.reshape(()) if hasattr(data, "reshape") else data, casting="unsafe", where=where)
    return True


def _version_counter(t: Tensor) -> list[int]:
    vc = t._vc
    if vc is None:
        vc = t._vc = [0]
    elif vc is _INFERENCE_VC:  # an inference tensor's first counter of its own (views will share it)
        vc = t._vc = _InferenceVersion([0])
    return vc


def _only_holder(x: Tensor) -> builtins.bool:
    """Whether no other live tensor shares ``x``'s memory: views and detached aliases share its version
    counter (``_alias``), so that counter then has no holder but ``x`` (``conv(x).detach()``: the
    convolution's output is gone) and the graph's records of in-place ops on it (``_ghost``: they keep
    the values they hold, and their version checks, if ``x`` is laid out anew). CPython's reference
    count: x's slot and the argument, plus those records."""
    vc = x._vc
    if vc is _INFERENCE_VC:  # an inference tensor that no view or alias shares yet (they get a counter of its own)
        return True
    return (
        (type(vc) is list or type(vc) is _InferenceVersion)
        and sys.getrefcount(vc) - _ghost_holders.get(id(vc), 0) <= 3  # + this frame's
    )


# id(version counter) -> how many in-place records (ghosts) of the graph hold it
_ghost_holders: dict[builtins.int, builtins.int] = {}


def _drop_ghost_holder(key: builtins.int) -> None:
    left = _ghost_holders.get(key, 0) - 1
    if left > 0:
        _ghost_holders[key] = left
    else:
        _ghost_holders.pop(key, None)


# id(weak reference) -> (the reference, id of the version counter it counts for): each ghost's, alive
# while the ghost is (see _ghost)
_ghost_refs: dict[builtins.int, tuple[Any, builtins.int]] = {}


def _ghost_died(ref: Any) -> None:
    entry = _ghost_refs.pop(id(ref), None)
    if entry is not None:
        _drop_ghost_holder(entry[1])


def relayout_if_unshared(x: Tensor) -> builtins.bool:
    """For ``x``, a convolution's output laid out channel-major (``_conv_layout``), that a view,
    reshape, flatten or contiguous cannot view in PyTorch's shape: lay it out in order in place when
    no other live tensor shares its memory (True: the caller's view then exists, as in PyTorch, where
    the output is contiguous), else under all the tensors that share it (:func:`relayout_shared`);
    False when neither can be done, and the caller's copy stands in for the view (a write into it
    reaches neither: the difference from PyTorch left, documented in ``view``)."""
    if (x._vc is None or x._vc is _INFERENCE_VC or _only_holder(x)) and not _handed_out(x.array):
        x.array = backend.namespace_of(x.array).ascontiguousarray(x.array)
        return True
    return relayout_shared(x)


# id(root buffer of a noted output) -> the live tensors over it (the output, its views and detach()
# aliases), so that the buffer can be laid out in order under all of them at once (relayout_shared)
_buffer_holders: dict[int, weakref.WeakValueDictionary[int, Tensor]] = {}  # (by id: a tensor's == is elementwise)


def _hold(t: Tensor) -> None:
    """Remember ``t`` as a holder of its noted buffer, if it lies over one (see relayout_shared)."""
    root = _root_buffer(t.array)
    key = id(root)
    entry = _conv_buffers.get(key)
    if entry is None or entry[0]() is not root:
        return
    holders = _buffer_holders.get(key)
    if holders is None:
        holders = _buffer_holders[key] = weakref.WeakValueDictionary()
    holders[id(t)] = t


def relayout_shared(x: Tensor) -> builtins.bool:
    """For ``x`` over a noted output's buffer (the output itself, a view of it or a ``detach()`` alias),
    shared with other live tensors: lay the output out in order, as PyTorch's contiguous one, in a new
    buffer, and move every tensor over the old one (all known: they share ``x``'s version counter and
    were noted by :func:`_hold`) to its place in the new one. Then a view PyTorch has of any of them
    exists here too, and writes through it reach them all, as there. False (nothing changed) when a
    holder is unknown (memory shared outside the tensors: ``numpy()``, ``.data``), lies where PyTorch's
    strides cannot be told, or the buffer is not a host array."""
    a = x.array
    root = _root_buffer(a)
    key = id(root)
    entry = _conv_buffers.get(key)
    vc = x._vc
    if type(root) is not np.ndarray or entry is None or entry[0]() is not root or len(entry) > 4 or vc is None:
        return False
    if root.dtype != a.dtype or root.size != entry[1]:  # the output does not fill its buffer (a pooled one)
        return False
    known = _buffer_holders.get(key)
    holders = [
        t for t in (known.values() if known is not None else ()) if t._vc is vc and _root_buffer(t.array) is root
    ]
    if all(t is not x for t in holders):
        holders.append(x)
    # each holder's _vc, the graph's in-place records (ghosts: they keep the values they had), this
    # frame's name and getrefcount's argument: any other reference is a holder not known here
    if sys.getrefcount(vc) - _ghost_holders.get(id(vc), 0) - 2 != len(holders):
        return False
    places = [_torch_place(t.array) for t in holders]
    if any(p is None for p in places):
        return False
    shape, byte_steps = entry[2], entry[3]
    output = np.lib.stride_tricks.as_strided(root, shape, byte_steps)  # the noted output over its buffer
    fresh = np.ascontiguousarray(output)  # host: a host buffer (checked above)
    item = fresh.itemsize
    for t, (offset, steps) in zip(holders, places):  # type: ignore[misc]
        old = t.array
        moved = np.ndarray(old.shape, old.dtype, buffer=fresh, offset=offset * item, strides=[s * item for s in steps])
        if not old.flags.writeable:
            moved.flags.writeable = False
        t.array = moved
    return True


# Buffers of NumPy arrays a tensor shares with its caller (from_numpy, as_tensor) that are not laid out
# in order: id(root buffer) -> weak reference to it. view() must not lay such a tensor out anew (it
# would leave the caller's array behind); it refuses, as PyTorch does.
_lent_buffers: dict[int, Any] = {}


def _lend(arr: Any) -> None:
    """Note ``arr``, a caller's array a tensor now shares, when it is not laid out in order; warn, as
    torch does, when it is read-only (an in-place op on the tensor will be refused)."""
    if not arr.flags.writeable:
        warnings.warn(
            "The given NumPy array is not writable, and downslope does not support writing into non-writable "
            "tensors: in-place ops on this tensor will fail. You may want to copy the array to protect its data "
            "or make it writable before converting it to a tensor.",
            UserWarning,
            stacklevel=3,
        )
    if not arr.flags.c_contiguous:
        root = _root_buffer(arr)
        key = id(root)
        try:
            _lent_buffers[key] = weakref.ref(root, functools.partial(_forget_lent, key))
        except TypeError:  # no weak references to this array type: nothing noted
            pass


def _forget_lent(key: int, _ref: Any) -> None:
    _lent_buffers.pop(key, None)


def _lent(a: Any) -> builtins.bool:
    """Whether ``a`` lies in a buffer noted by :func:`_lend`."""
    if not _lent_buffers:
        return False
    root = _root_buffer(a)
    ref = _lent_buffers.get(id(root))
    return ref is not None and ref() is root


def _handed_out(a: Any) -> builtins.bool:
    """Whether ``a``'s noted buffer was handed out (``numpy()``, ``.data``) while laid out channel-major:
    laying a tensor over it out anew would then leave that array (or tensor) behind, stale."""
    entry = _conv_buffers.get(id(_root_buffer(a))) if _conv_buffers else None
    return entry is not None and len(entry) > 4


def _settle_layout(x: Tensor) -> None:
    """Before ``x``'s memory is handed out (``numpy()``, ``.data``, ``__array__``), as PyTorch's shares
    it for good: a convolution's output is laid out in order now, if nothing else shares it (then
    the array handed out is PyTorch's, contiguous, and no later view needs a new layout); otherwise
    its buffer is marked so that no tensor over it is laid out anew later (their views copy)."""
    a = x.array
    root = _root_buffer(a)
    entry = _conv_buffers.get(id(root))
    if entry is None or entry[0]() is not root or len(entry) > 4:
        return
    if _conv_layout(a) and relayout_if_unshared(x):
        return
    _conv_buffers[id(root)] = (*entry, True)


def _bump(t: Tensor) -> None:
    """Record an in-place write to ``t``'s storage: version + 1, stamped with a fresh creation number."""
    vc = t._vc
    if vc is None:
        vc = t._vc = [0]
    elif vc.__class__ is _InferenceVersion:
        if not _mode.inference:  # (the entry points refuse it before writing)
            raise StateError(_INFERENCE_INPLACE)
        if vc is _INFERENCE_VC:
            vc = t._vc = _InferenceVersion([0])
    vc[0] += 1
    seq = next(_op_counter)
    vc.append(seq)
    if len(vc) > _RECENT_WRITES + 1:
        del vc[1]
    _inplace_clock.last = seq


def mark_written(tensors: Sequence[Tensor]) -> None:
    """Record one in-place write to each of ``tensors`` (what ``t.add_(...)`` under ``no_grad``
    records): version + 1 each, all stamped with one fresh creation number, so a graph that saved
    their old values refuses to backward through them (an optimizer's step writes its parameters).

    Example:
        >>> import downslope as ds
        >>> w = ds.zeros(2)
        >>> mark_written([w]); w._version
        1
    """
    if not tensors:
        return
    seq = next(_op_counter)
    limit = _RECENT_WRITES + 1
    for t in tensors:
        vc = t._vc
        if vc is None:
            vc = t._vc = [0]
        elif vc is _INFERENCE_VC:
            vc = t._vc = _InferenceVersion([0])
        vc[0] += 1
        vc.append(seq)
        if len(vc) > limit:
            del vc[1]
    _inplace_clock.last = seq


def _alias(out: Tensor, x: Tensor) -> Tensor:
    """Let a view ``out`` of ``x`` share x's version counter (a write through either changes both)."""
    base = out.array.base
    if base is None:
        return out
    if not getattr(out.array.flags, "writeable", True) and _repeats_nothing_of_overlap(out.array, x.array, base):
        # torch refuses a write only when the written view repeats an element: a select or slice of an
        # expanded (or overlapping-windows) view that repeats none writes through into the base, as there
        out.array.flags.writeable = True
    if base is x.array:
        out._vc = _version_counter(x)
        # a recorded in-place write through a view outside the graph reaches x this way (_inplace_on_plain_view)
        if _mode.enabled:
            out._view_of = x
        else:
            out._view_of = None
            if x._requires_grad:
                _remember(_NO_GRAD_VIEWS, out)
    elif base is x.array.base:
        out._vc = _version_counter(x)
        # x is a view: the tensor it was taken from (views of views must not keep each other alive)
        if _mode.enabled:
            out._view_of = getattr(x, "_view_of", x)
            if _NO_GRAD_VIEWS and id(x) in _NO_GRAD_VIEWS:  # a view of such a view is one too
                _remember(_NO_GRAD_VIEWS, out)
        else:
            out._view_of = None
            if x._requires_grad or (_NO_GRAD_VIEWS and id(x) in _NO_GRAD_VIEWS):
                _remember(_NO_GRAD_VIEWS, out)
    else:
        return out
    if _buffer_holders:
        _hold(out)
    if x.__class__ is not Tensor:
        _note_alias(x, out)
    return out


def _note_alias(owner: Tensor, alias: Tensor) -> None:
    """Remember ``alias`` (a ``.data``, ``detach()`` or view of ``owner``, a Parameter) while it lives:
    an optimizer that moves ``owner``'s values into its flat buffer moves the alias along
    (``optim.buckets.repoint_aliases``), so it keeps sharing the parameter's memory, as in PyTorch."""
    table = getattr(owner, "__dict__", None)  # plain Tensors have slots only: nothing to remember
    if table is None:
        return
    aliases = table.get("_aliases")
    if aliases is None:
        aliases = table["_aliases"] = weakref.WeakSet()
    aliases.add(alias)


def _own_scalar(t: Tensor) -> None:
    """Give ``t``, holding a NumPy scalar (a 0-d result of NumPy arithmetic, read-only and shared by
    nothing), a 0-d array of its own: what is handed out or aliased must share its memory. Op
    results get one in :func:`record_op`; constant operands keep the scalar (CuPy takes it, not
    a 0-d host array)."""
    t.array = np.asarray(t.array)  # host: a NumPy scalar is already on the host


def _records(t: Tensor, *operands: Any) -> bool:
    """Whether an in-place op on ``t`` with these operands must be recorded for autograd.

    Every in-place op asks this first, so it also readies ``t`` for writing: a 0-d result of NumPy
    arithmetic is a read-only NumPy scalar, which becomes a 0-d array (nothing else shares a scalar).
    """
    if isinstance(t.array, np.generic):
        _own_scalar(t)
    if not _mode.enabled:
        return False
    if t.requires_grad:
        return True
    if any(isinstance(o, Tensor) and o.requires_grad for o in operands):
        return True
    if _NO_GRAD_VIEWS and id(t) in _NO_GRAD_VIEWS:  # (an empty dict costs one test)
        raise StateError(f"an in-place op on a view of shape {tuple(t.shape)}: {_NO_GRAD_VIEW_MESSAGE}")
    return False


# id -> (weak reference, None) of each live view taken under no_grad from a tensor that requires grad (torch refuses
# an in-place write to it with grad mode on, which would not be recorded; see _records)
_NO_GRAD_VIEWS: dict[builtins.int, Any] = {}
# Tensors handed out by .data while they live (by id): full aliases outside the graph, as PyTorch's .data.
_DATA_ALIASES: dict[builtins.int, Any] = {}
# id -> (weak reference, the Function's name) of each live output of a custom autograd Function that is
# a view of one of its inputs: torch refuses an in-place op on it (its backward would bypass the Function's)
_FUNCTION_VIEWS: dict[builtins.int, Any] = {}


def note_function_views(outputs: Sequence[Tensor], inputs: Sequence[Tensor], function: str) -> None:
    """Note the ``outputs`` of the custom Function ``function`` that share memory with one of its
    ``inputs`` (it returned a view of one, or the input itself): an in-place op on such an output
    is refused, as in PyTorch, since the view's new history would bypass the Function's backward."""
    roots = {id(_root_buffer(p.array)) for p in inputs}
    for out in outputs:
        if id(_root_buffer(out.array)) in roots:
            _remember(_FUNCTION_VIEWS, out, function)


def _remember(table: dict[builtins.int, Any], t: Tensor, value: Any = None) -> None:
    """Keep ``t`` in ``table`` (by id, with ``value``) while it lives: its id may be reused after."""
    key = id(t)

    def forget(_: Any) -> None:
        table.pop(key, None)

    table[key] = (weakref.ref(t, forget), value)


def _expanded(t: Tensor, shape: Any) -> Tensor:
    """``t.expand(shape)``: a broadcast view, read-only where elements repeat; one that repeats none
    (the same shape, or new dims of size 1) is a plain view, which in-place ops write through, as torch."""
    out = _ops.broadcast_to(t, shape)
    if out.array.size == t.array.size:  # nothing repeats
        return _ops.reshape(t, out.shape)
    return out


def _unordered(op: str) -> None:
    raise DTypeError(f"{op}: not implemented for complex tensors (complex numbers have no order), as in torch")


def _internal_overlap(a: Any) -> builtins.bool:
    """Whether two indices of ``a`` may name one memory location: a dim of size > 1 with stride 0, or
    strides that do not nest (each dim's step, by size of step, at least the span of the ones inside it).
    Conservative: a layout it cannot prove free of overlap counts as overlapping. An empty array names
    no location at all, so it never overlaps (a write into it touches nothing, as in torch)."""
    if a.size == 0:
        return False
    dims = sorted((abs(st), n) for n, st in zip(a.shape, a.strides) if n > 1)
    span = a.itemsize
    for step, n in dims:
        if step < span:
            return True
        span = step * n
    return False


def _repeats_nothing_of_overlap(view: Any, source: Any, owner: Any) -> builtins.bool:
    """Whether ``view``, read-only, taken from ``source``, read-only because elements repeat in it (an
    expand, overlapping windows), is a plain view of ``owner``'s memory that may be written: it repeats
    no element, and ``owner``, the array that holds the memory, is writable and of its dtype (so that a
    view deliberately read-only, a complex tensor's .real or a read-only array shared with NumPy, stays so)."""
    return (
        getattr(owner.flags, "writeable", False)
        and owner.dtype == view.dtype
        and not getattr(source.flags, "writeable", True)
        and source.size > 0
        and _internal_overlap(source)
        and not _internal_overlap(view)
    )


def _plain_index(index: Any) -> builtins.bool:
    """Whether ``index`` picks a view (ints, slices, None, Ellipsis, or a tuple of them): no arrays or masks."""
    parts = index if type(index) is tuple else (index,)
    return builtins.all(type(i) in (builtins.int, slice) or i is None or i is Ellipsis for i in parts)


def _check_writable(t: Tensor, op: str) -> None:
    if t._vc.__class__ is _InferenceVersion and not _mode.inference:
        raise StateError(_INFERENCE_INPLACE)
    if not t.array.flags.writeable:
        raise StateError(_READ_ONLY_MESSAGE.format(op=op))


def _scalar_first(
    name: str, scalar: Any, keyword: Any, kind: str, operands: str, *, function: bool = False, stacklevel: int = 3
) -> Any:
    """The number of torch's deprecated ``name(Number kind, operands)`` overload (``p.add_(-lr, g)``,
    ``v.addcmul_(1 - b2, g, g)``: optimizers copied from older code still call it), warned as torch warns;
    ``function`` for the top-level form ``ds.add(input, Number alpha, other)``."""
    if isinstance(keyword, Tensor) or keyword != 1:
        raise ArgumentError(
            f"{name}: {kind} given both first (the deprecated {name}(Number {kind}, {operands}) form) and as "
            f"{kind}={keyword!r}; pass {name}({operands}, *, Number {kind}) only"
        )
    number = isinstance(scalar, (builtins.int, builtins.float, np.integer, np.floating))
    if not (number or (isinstance(scalar, Tensor) and scalar.ndim == 0)):
        raise ArgumentTypeError(
            f"{name}: the deprecated {name}(Number {kind}, {operands}) form takes a number first, "
            f"got {type(scalar).__name__}{f' of shape {tuple(scalar.shape)}' if isinstance(scalar, Tensor) else ''}; "
            f"use {name}({operands}, *, Number {kind} = 1)"
        )
    if function:  # torch's words for its top-level functions
        old, new = f"Tensor input, Number {kind}, {operands}, *, ", f"Tensor input, {operands}, *, Number {kind} = 1, "
        old, new = old + "Tensor out = None", new + "Tensor out = None"
    else:
        old, new = f"Number {kind}, {operands}", f"{operands}, *, Number {kind} = 1"
    warnings.warn(
        f"This overload of {name} is deprecated:\n\t{name}({old})\nConsider using one of the "
        f"following signatures instead:\n\t{name}({new})",
        UserWarning,
        stacklevel=stacklevel,
    )
    return scalar


_HALF = np.dtype(np.float16)


def _addc_inplace(
    t: Tensor, name: str, combine: Callable[[Any, Any], Tensor], tensor1: Any, tensor2: Any, _tensor2: Any, value: Any
) -> Tensor:
    """addcmul_/addcdiv_: ``t += value * combine(tensor1, tensor2)``, the factors in the dtype of all three
    (as out of place: int8 * int8 would wrap before the add), float16 in float32 rounded once."""
    op = name + "_"
    if _tensor2 is not _NO_OPERAND:  # torch's deprecated (value, tensor1, tensor2) order, with its warning
        value = _scalar_first(op, tensor1, value, "value", "Tensor tensor1, Tensor tensor2", stacklevel=4)
        tensor1, tensor2 = tensor2, _tensor2
    value = _ops.arithmetic._addc_value(op, value, t, tensor1, tensor2)
    tensor1, tensor2 = _functional._addc_operands(t, tensor1, tensor2)[1:]
    if t.array.dtype == np.float16 and _functional._all_half(value, tensor1, tensor2):
        half = functools.partial(_ops.arithmetic._addc_half, name, tensor1=tensor1, tensor2=tensor2, value=value)
        if _records(t, tensor1, tensor2):
            return _inplace_recorded(t, op, half)
        return _inplace_through_op(t, tensor1, lambda x, _: half(x), op)
    return t.add_(combine(tensor1, tensor2), alpha=value)


def _scaled(other: Any, alpha: Any, t: Tensor) -> Any:
    """``alpha * other`` for ``t.add(other, alpha=...)``, in the dtype of ``t`` and ``other`` together."""
    if t.array.dtype is _HALF and _ops.arithmetic._opmath_operand(t, other):
        return _ops.arithmetic._at_half(other, alpha)  # torch: alpha * other rounded to float16
    if isinstance(alpha, Tensor):  # stays on its device: no comparison with 1 (it would wait for the device)
        return _ops.arithmetic._times_alpha(other, alpha, t)
    if alpha == 1:
        return other
    return _ops.arithmetic._times_alpha(other, alpha, t)


def _mul_reads_self(other: Any) -> bool:
    # x.mul_(w): w's gradient is g * (x before the write), so the old values must be kept.
    return isinstance(other, Tensor) and other.requires_grad


def _inplace_ufunc(
    t: Tensor, ufunc: Any, other: Any, op: Callable[..., Tensor], name: str, reads_self: bool = False
) -> Tensor:
    """``t = ufunc(t, other)`` written into t's array (no temporary when nothing is recorded)."""
    if other.__class__ is _sparse.SparseCOOTensor:  # dense (op)= sparse: torch's dense result
        return _inplace_sparse(t, other, op, name, reads_self)
    if t._vc.__class__ is _InferenceVersion and not _mode.inference:
        raise StateError(_INFERENCE_INPLACE)
    if _records(t, other):
        _refuse_overlap(t, name, (other,))
        # x.mul_(x): the operand is the old x too (t itself would become its own parent)
        return _inplace_recorded(t, name, lambda src: op(src, src if other is t else other), reads_self)
    arr = t.array
    if arr.dtype is _HALF and _ops.arithmetic._opmath_operand(t, other):  # torch: in float32, rounded once
        return _inplace_through_op(t, other, op, name)
    if ufunc is np.subtract:
        _ops._check_sub(t, other)  # torch refuses a boolean operand
    value = other.array if isinstance(other, Tensor) else other
    if value is not other and value is not arr and (arr.base is not None or value.base is not None):
        _refuse_overlap(t, name, (other,))  # two arrays that own their memory never overlap: no check
    if value is not other:
        # a 0-d tensor does not widen a tensor with dims within its category: torch computes
        # float32.add_(tensor(x, float64)) in float32, as the out-of-place op does
        value = _zero_d_in(arr, value)
    elif isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()  # host: a NumPy scalar is a number in torch (not computed in float64)
    if type(value) is int and arr.dtype.kind in "iu":  # torch wraps the number into the dtype (uint8 += -1)
        value = _ops._int_exponent(value, arr.dtype) if ufunc is np.power else _ops._wrapped_int(value, arr.dtype)
    elif ufunc is np.power and arr.dtype.kind in "iu" and getattr(value, "dtype", arr.dtype).kind in "iu":
        # integer powers of integer arrays: NumPy refuses negative exponents part way through a write
        # into arr; torch's integer rule (1 -> 1, -1 -> +-1, else 0) is the op's
        return _inplace_through_op(t, other, op, name)
    try:
        ufunc(arr, value, out=arr, casting="same_kind")
    except RuntimeWarning:
        # only under a user's "error" warnings filter (see ops.pointwise.quietly): NumPy checks its
        # floating-point flags after the loop, so the whole result (torch's inf and NaN) is written
        pass
    except TypeError:
        result = _inplace_result_type(t, other, value)
        if ufunc is np.true_divide and result.kind not in "fc":
            result = backend.get_default_dtype()  # true division of integers gives floats (complex stays)
        if _torch_can_cast(result, arr.dtype):  # uint8.add_(int8): torch casts within a category
            try:
                ufunc(arr, value, out=arr, casting="unsafe")
            except TypeError:
                pass
            else:
                _bump(t)
                return t
        raise DTypeError(
            f"{name}: result type {result} can't be cast to the desired output type {arr.dtype} "
            "(an in-place op keeps the tensor's dtype)"
        ) from None
    except ValueError as exc:
        if not arr.flags.writeable:
            raise StateError(_READ_ONLY_MESSAGE.format(op=name)) from None
        shape = np.shape(_data_of(other))
        try:
            fits = np.broadcast_shapes(arr.shape, shape) == arr.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"{name}: the operand of shape {shape} does not broadcast to the tensor's shape "
                f"{tuple(arr.shape)} (an in-place op cannot change the shape)"
            ) from None
        raise ArgumentError(f"{name}: {exc}") from None  # a NumPy refusal that is not about shapes
    _bump(t)
    return t


def _zero_d_in(arr: Any, value: Any) -> Any:
    """``value``, a 0-d array of ``arr``'s category beside ``arr`` with dims, cast to ``arr``'s dtype (torch's
    result type of the pair); anything else as it is."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or getattr(value, "ndim", None) != 0 or not arr.ndim or dtype == arr.dtype:
        return value
    if not _same_category(dtype, arr.dtype):
        return value
    try:
        return value.astype(arr.dtype)
    except RuntimeWarning:  # 1e300 into float32 is inf, as torch's: under a user's "error" filter
        return _ops.pointwise.quietly(value.astype, arr.dtype)


def _same_category(a: Any, b: Any) -> builtins.bool:
    """Whether dtypes ``a`` and ``b`` are in one of torch's promotion categories (bool, integer, float, complex)."""
    return (a.kind in "iu") == (b.kind in "iu") and (a.kind == b.kind or a.kind in "iu")


def _inplace_result_type(t: Tensor, other: Any, value: Any) -> Any:
    """The dtype torch computes ``t (op) other`` in (int64 with a float32 tensor or a Python float is
    float32, where NumPy says float64), for the in-place ops' dtype check and its message."""
    if isinstance(other, (Tensor, builtins.bool, builtins.int, builtins.float)):
        from .ops.promotion import result_type  # the ops import this module

        return result_type(t, other)
    return np.result_type(t.array.dtype, getattr(value, "dtype", value))


def _inplace_through_op(t: Tensor, other: Any, op: Callable[..., Tensor], name: str) -> Tensor:
    """``t = op(t, other)`` computed out of place, then written back in t's dtype (torch's canCast)."""
    _check_writable(t, name)
    with _no_grad():
        result = op(t, other).array
    if not _torch_can_cast(result.dtype, t.array.dtype):
        raise DTypeError(
            f"{name}: result type {result.dtype} can't be cast to the desired output type {t.array.dtype} "
            "(an in-place op keeps the tensor's dtype)"
        )
    if result.shape != t.array.shape:
        raise ShapeError(
            f"{name}: the operand of shape {np.shape(_data_of(other))} does not broadcast to the tensor's shape "
            f"{t.array.shape} (an in-place op cannot change the shape)"
        )
    np.copyto(t.array, result, casting="unsafe")
    _bump(t)
    return t


def _inplace_sparse(t: Tensor, s: Any, op: Callable[..., Tensor], name: str, reads_self: bool) -> Tensor:
    """``t (op)= S`` for a sparse COO S (``D += S``, ``D.mul_(S)``): torch's dense result of ``op(t, S)``
    (``t * S`` densified, zeros off S's pattern) written into t, recorded when t or S's values want a gradient."""

    def dense(x: Tensor, _: Any = None) -> Tensor:
        out = op(x, s)
        return out.to_dense() if out.__class__ is _sparse.SparseCOOTensor else out

    if _records(t) or (_mode.enabled and s.requires_grad):
        # S's gradient in t * S reads t's values from before the write
        return _inplace_recorded(t, name, dense, reads_self or (name == "mul_" and s.requires_grad))
    return _inplace_through_op(t, s, dense, name)


def _refuse_overlap(t: Tensor, name: str, operands: Sequence[Any]) -> None:
    """PyTorch's overlap checks of an in-place op: an operand that partly overlaps ``t``'s memory
    (``y.mul_(y[0])``, ``x[:4].add_(x[1:5])``) is refused (the write would change it under the op, and a
    gradient would read the new values); one over exactly t's elements (``y.mul_(y)``, ``b.add_(b.detach())``)
    is fine. The scatter family (``scatter_``, ``index_add_``...) refuses any overlap, the full one too."""
    full = name in _NO_OVERLAP_OPS
    arr = t.array
    for o in operands:
        if isinstance(o, Tensor) and _overlap(o.array, arr) in ("partial", "full" if full else "partial"):
            raise StateError(f"{name}: {_OVERLAP_MESSAGE}")


_OVERLAP_MESSAGE = (  # torch's words
    "unsupported operation: some elements of the input tensor and the written-to tensor refer to a single memory "
    "location (an operand of the in-place op overlaps part of the tensor written). Please clone() the tensor "
    "before performing the operation."
)
# in-place ops that refuse an operand over any of the written tensor's memory (torch's assert_no_overlap)
_NO_OVERLAP_OPS = frozenset(
    ("scatter_", "scatter_add_", "scatter_reduce_", "index_add_", "index_copy_", "index_reduce_", "index_put_", "put_")
)


def _overlap(a: Any, b: Any) -> str | None:
    """How arrays ``a`` and ``b`` overlap, by PyTorch's rule (get_overlap_status): "full" (the same
    elements: the same start, extent and strides), "partial" (some elements in common), or None (no
    common memory). Where either is not laid out densely (a strided slice) torch does not tell, and
    its result then depends on the order its kernel writes in: elements in common are "partial" here
    (refused), so that no result differs from torch's silently."""
    if a is b:
        return "full"
    if not a.size or not b.size or not np.may_share_memory(a, b):
        return None
    if not (_dense(a) and _dense(b)):
        if a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype:  # two views of the same elements
            if Tensor.data_ptr(wrap_array(a)) == Tensor.data_ptr(wrap_array(b)):
                return "full"
        return "partial" if np.shares_memory(a, b) else None
    start_a, start_b = Tensor.data_ptr(wrap_array(a)), Tensor.data_ptr(wrap_array(b))
    if start_a == start_b and a.nbytes == b.nbytes:
        return "full" if a.strides == b.strides else "partial"
    return "partial" if start_a < start_b + b.nbytes and start_b < start_a + a.nbytes else None


def _dense(a: Any) -> builtins.bool:
    """Whether ``a``'s elements fill one block of memory without gaps or repeats, in some order of dims
    (torch's is_non_overlapping_and_dense)."""
    flags = a.flags
    if flags.c_contiguous or flags.f_contiguous:
        return True
    expected = a.itemsize
    for stride, size in sorted((s, n) for s, n in zip(a.strides, a.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


# ndarray (op) Tensor and np.add(t, u): the Tensor ops, so that gradients are recorded (NumPy calls
# Tensor.__array_ufunc__ for them).
_UFUNC_OPERATORS: dict[Any, Callable[[Any, Any], Tensor]] = {}


def _register_ufunc_operators() -> None:
    _UFUNC_OPERATORS.update(
        {
            np.add: _ops.add,
            np.subtract: _ops.sub,
            np.multiply: _ops.mul,
            np.true_divide: _ops.div,
            np.power: _ops.pow,
            np.matmul: _ops.matmul,
            np.floor_divide: _ops.floor_divide,
            np.remainder: _ops.remainder,
            np.maximum: _ops.maximum,
            np.minimum: _ops.minimum,
            np.equal: _ops.eq,
            np.not_equal: _ops.ne,
            np.less: _ops.lt,
            np.less_equal: _ops.le,
            np.greater: _ops.gt,
            np.greater_equal: _ops.ge,
            np.bitwise_and: _ops.bitwise_and,
            np.bitwise_or: _ops.bitwise_or,
            np.bitwise_xor: _ops.bitwise_xor,
            np.left_shift: _ops.bitwise_left_shift,
            np.right_shift: _ops.bitwise_right_shift,
        }  # fmt: skip
    )


def _inplace_bitwise(t: Tensor, ufunc: Any, other: Any, name: str) -> Tensor:
    """A bitwise op written into ``t`` (integers and booleans only; never recorded: no gradient)."""
    arr = t.array
    if arr.dtype.kind not in "iub":
        raise ArgumentTypeError(f"{name}: expected an integer or boolean tensor, got {arr.dtype}")
    _check_writable(t, name)
    value = _data_of(other)
    if type(value) is int and arr.dtype.kind in "iu":  # torch wraps the number into the dtype (uint8 &= -2)
        value = _ops._wrapped_int(value, arr.dtype)
    try:
        try:
            ufunc(arr, value, out=arr, casting="same_kind")
        except TypeError:
            if not _torch_can_cast(np.result_type(arr.dtype, getattr(value, "dtype", value)), arr.dtype):
                raise
            ufunc(arr, value, out=arr, casting="unsafe")  # uint8 |= int8: torch casts within a category
    except TypeError:
        raise DTypeError(
            f"{name}: result type {np.result_type(arr, value)} can't be cast to the desired output type {arr.dtype} "
            "(an in-place op keeps the tensor's dtype)"
        ) from None
    except ValueError:  # NumPy's "non-broadcastable output operand": the result would be bigger than t
        raise ShapeError(
            f"{name}: the operand of shape {np.shape(value)} does not broadcast to the tensor's shape {tuple(arr.shape)} "
            "(an in-place op cannot change the shape)"
        ) from None
    _bump(t)
    return t


def _torch_can_cast(src: Any, dst: Any) -> bool:
    """Whether an in-place op may write a result of dtype ``src`` into a tensor of dtype ``dst``
    (torch's canCast): not from a higher category (float into an integer, anything but bool into bool);
    within one (int16 into uint8) it casts, where NumPy's "same_kind" refuses signed into unsigned."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src.kind == "c":  # complex into a real dtype would drop the imaginary part
        return dst.kind == "c"
    if dst.kind == "b":
        return src.kind == "b"
    if dst.kind in "iu":
        return src.kind in "iub"
    return True


def _torch_bounds(name: str, bounds: dict[str, Any], low: Any, high: Any) -> tuple[Any, Any]:
    """``from=`` and ``to=`` (torch's keywords for the bounds of random_ and uniform_, which Python
    cannot name as parameters) over the positional ``low`` and ``high``."""
    unknown = sorted(set(bounds) - {"from", "to", "generator"})
    if unknown:
        raise ArgumentTypeError(f"{name}() got an unexpected keyword argument {unknown[0]!r}")
    if bounds.get("generator") is not None:
        raise ArgumentTypeError(f"{name}(generator=...): draws come from the library's generator (ds.manual_seed)")
    return bounds.get("from", low), bounds.get("to", high)


def _inplace_unary(t: Tensor, ufunc: Any, op: Callable[..., Tensor], name: str, reads_self: bool = False) -> Tensor:
    if _records(t):
        return _inplace_recorded(t, name, op, reads_self)
    _check_writable(t, name)
    arr = t.array
    if not backend.is_floating(arr.dtype) and ufunc not in (np.negative, np.abs, _relu_into):
        with _no_grad():
            result = op(t)  # its dtype is torch's result type: floor of ints stays int, sqrt is float
        if not _torch_can_cast(result.array.dtype, arr.dtype):
            raise DTypeError(
                f"{name}: result type {result.array.dtype} can't be cast to the desired output type {arr.dtype} "
                "(an in-place op keeps the tensor's dtype)"
            )
        np.copyto(arr, result.array, casting="unsafe")
        _bump(t)
        return t
    if ufunc is np.negative and not arr.flags.c_contiguous:
        # NumPy 2.4's np.negative(w, out=w) on a strided view (a column) writes wrong values: a copy
        arr[...] = np.negative(arr)
    else:
        try:
            ufunc(arr, out=arr)
        except RuntimeWarning:
            # only under a user's "error" warnings filter (see ops.pointwise.quietly): NumPy checks
            # its floating-point flags after the loop, so the whole result (torch's inf and NaN) is
            # written (the helpers given as ufunc, _sigmoid_into and the like, do not warn)
            pass
    _bump(t)
    return t


def _sigmoid_into(arr: np.ndarray, out: np.ndarray) -> None:
    out[...] = _sigmoid_array(arr)


def _relu_over(t: Tensor) -> Tensor:
    """relu_'s recorded op on an intermediate: relu written over the array it reads, which is the
    rebased tensor's own (its rule reads only the output), so the write that follows copies the array
    onto itself, which NumPy skips: in place costs no more than out of place."""
    from . import parallel

    a = t.array
    if a.ndim == 0:
        _relu_into(a, a)
    else:  # rows of the first dim at once on oneDNN's threads, as ops.relu
        parallel.over_parts(a, a.shape[0], a.size // 2, lambda lo, hi: _relu_into(a[lo:hi], a[lo:hi]))
    return record_op(a, (t,), _ops.pointwise._relu_vjp)


def _relu_into(arr: np.ndarray, out: np.ndarray) -> None:
    if arr.dtype.kind == "f":
        # clip, as relu: it keeps -0.0 and NaN (maximum(-0.0, 0) gives +0.0) and is NumPy's faster loop
        arr.clip(0, np.inf, out=out)
    else:
        np.maximum(arr, 0, out=out)


def _sign_into(arr: np.ndarray, out: np.ndarray) -> None:
    np.sign(arr, out=out)
    out[out != out] = 0  # torch's sign of NaN is 0, as sign's (NumPy's is NaN)


def _truth_result(t: Tensor, result: Any) -> Tensor:
    """all/any's result: torch's is uint8 (0 or 1) for a uint8 tensor, bool for any other dtype."""
    result = backend.as_array(result)
    return wrap_array(result.astype(np.uint8) if t.array.dtype == np.uint8 else result)


def _arg_extreme(t: Tensor, fn: Any, name: str, dim: Any, keepdim: bool) -> Tensor:
    """argmax/argmin with torch's checks (a dim in range, a non-empty reduction, no complex input) instead of
    NumPy's errors."""
    arr = t.array
    if arr.dtype.kind == "c":  # NumPy orders complex lexicographically, an answer torch never gives
        from .ops.reductions import _unordered

        _unordered(t, name)
    if dim is None:
        if arr.size == 0:
            raise OutOfRangeError(
                f"{name}: expected a reduction dim to be given for an empty tensor of shape {tuple(t.shape)}"
            )
        # keepdim=True without a dim keeps every axis as size 1 (torch: (2, 3) -> (1, 1))
        return wrap_array(fn(arr, keepdims=bool(keepdim)))  # host: keepdim is a Python flag
    d = _ops._dim(dim, arr.ndim, name)
    if arr.ndim == 0:
        return wrap_array(fn(arr))
    if arr.shape[d] == 0:
        raise OutOfRangeError(f"{name}: expected reduction dim {dim} to have non-zero size, got shape {tuple(t.shape)}")
    return wrap_array(fn(arr, axis=d, keepdims=bool(keepdim)))  # host: keepdim is a Python flag


def _bool_mask(mask: Any, op: str, on: Any) -> np.ndarray:
    """``mask`` as a boolean array on the device of ``on`` (the array it masks)."""
    m = _devices.like(mask.array if isinstance(mask, Tensor) else mask, on)
    if m.dtype != np.bool_:
        raise ArgumentTypeError(f"{op}: expected a boolean mask, got dtype {m.dtype}")
    return m


def _storage_is_shared(t: Tensor) -> bool:
    """Whether ``t``'s memory is shared: it is a view of another tensor (``_alias``), or its array (or
    the buffer the array is a view of) has other references (views of it, other tensors or NumPy
    arrays over it).

    A tensor outside the graph has no record of the views taken from it, so this counts references:
    the array's own slot, the local name and getrefcount's argument are 3. An op's fresh output is
    often a NumPy view of a temporary no one else holds (index_select's transposed take): each buffer
    up the array's chain of bases then has one holder, the array below it (+ local name and argument).
    (A 0-d result of NumPy arithmetic materialized by _records owns its array too.)
    """
    if hasattr(t, "_view_of"):
        return True
    arr = t.array
    if sys.getrefcount(arr) > 3:
        return True
    base = getattr(arr, "base", None)
    while base is not None:
        if sys.getrefcount(base) > 3:
            return True
        base = getattr(base, "base", None)
    return False


def _is_plain_view(t: Tensor) -> bool:
    """Whether ``t``, outside the graph, is a view (``_alias``) of another tensor still alive: one that
    only ``t`` holds (a reduction's squeezed values, max(dim) under no_grad) is none in PyTorch."""
    if not hasattr(t, "_view_of"):
        return False
    if t._view_of is not None:
        return sys.getrefcount(t._view_of) > 2  # t's slot and getrefcount's argument
    base = getattr(t.array, "base", None)  # taken under no_grad: the buffer's holders tell
    return base is not None and sys.getrefcount(base) > 3  # the array's base, this name and the argument


def _is_view_in_graph(t: Tensor) -> bool:
    """Whether ``t`` was made by a view op from a tensor that requires grad (sharing its storage).

    Not when nothing but ``t`` holds that tensor: a reduction's values (``max(dim)``, ``median(dim)``,
    ``kthvalue``, ``mode``...) are taken with the reduced dim kept, then squeezed, a view of a temporary
    no one else sees; PyTorch's are no views (``detach_()`` and in-place ops take them as they are)."""
    if t._vjp is None or (t._vjp not in _ops._WRITABLE_VIEW_RULES and t._vjp not in PART_VIEWS) or not t._parents:
        return False
    for p in t._parents:
        if p.requires_grad and (
            np.may_share_memory(t.array, p.array)
            or (t.array.size == 0 and t._vc is not None and t._vc is p._vc)  # an empty view (y[0:0]) shares none
        ):
            if t._vjp is not _ops._reshape_vjp or p._vjp is not _ops._getitem_vjp or p._saved[1] is not True:
                return True
            # a squeezed gather: holders of an unseen one are t's parents, t._view_of, this frame's name
            # and getrefcount's argument
            return sys.getrefcount(p) > 3 + (getattr(t, "_view_of", None) is p)
    return False


def _inplace_recorded(t: Tensor, name: str, compute: Callable[[Tensor], Tensor], reads_self: bool = False) -> Tensor:
    """An in-place op while gradients are recorded: ``t`` becomes the op's output (its history is rebased).

    ``t``'s previous history moves to a new tensor object (the "ghost", sharing storage and version
    counter), the op is recorded as ``compute(ghost)``, its values are copied into ``t``'s array and
    ``t`` takes over the new node. Ops whose rule needs the values from before the write
    (``reads_self``) give the ghost a copy of them. Consumers recorded earlier still point at ``t``,
    whose creation number is now newer than theirs: backward follows ``t._prior`` back to the
    history they used (autograd._histories_at). A view is written through its base: see
    :func:`_inplace_on_view` (a view in the graph) and :func:`_inplace_on_plain_view` (one outside it).
    """
    if t._vjp is None and t.requires_grad:
        raise StateError(_LEAF_MESSAGE)
    if _FUNCTION_VIEWS and id(t) in _FUNCTION_VIEWS:  # torch's words
        raise StateError(
            f"{name}: Output 0 of {_FUNCTION_VIEWS[id(t)][1]} is a view and is being modified inplace. This "
            "view was created inside a custom Function (or because an input was returned as-is) and the autograd "
            "logic to handle view+inplace would override the custom backward associated with the custom Function, "
            "leading to incorrect gradients. This behavior is forbidden. You can fix this by cloning the output of "
            "the custom Function."
        )
    _check_writable(t, name)
    shared = t._vjp is None and _storage_is_shared(t)
    if shared and t._vc is None and id(t) in _DATA_ALIASES:
        # a .data alias (loralib's merge: weight.data += B @ A): PyTorch records the op on the alias
        # alone, and the tensor it was taken from just shows the new values, as here
        shared = False
    elif shared and t._vc is None:  # shared by means downslope does not track (NumPy views, from_numpy)
        raise StateError(
            f"{name}: an in-place op with an operand that requires grad, on a tensor outside the graph that shares "
            "its storage with other tensors (it is a view, or has views): they would show the new values but not "
            "carry their gradient. Write into the tensor that owns the storage (e.g. buf[i] = ..., which is "
            "recorded), or .clone() first."
        )
    if _is_view_in_graph(t):
        return _inplace_on_view(t, name, compute, reads_self)
    if shared and getattr(t, "_view_of", False) is not False:
        done = _inplace_on_plain_view(t, name, compute, reads_self)
        if done is not None:
            return done
    return _rebase(t, name, compute, reads_self, shared)


def _rebase(
    t: Tensor,
    name: str,
    compute: Callable[[Tensor], Tensor],
    reads_self: bool,
    shared: bool,
    views: Sequence[tuple[Tensor, Any, Tensor | None]] = (),
) -> Tensor:
    """The write of :func:`_inplace_recorded`: ``t`` takes ``compute(old t)`` and its history. When ``t``
    joins the graph by it (a buffer that did not require grad), its views outside the graph, ``views``
    (each with its place in ``t`` and the record of its history before, or None) and any other still
    alive, become views of the new ``t``, as PyTorch's views see the base's new history."""
    ghost = _ghost(t, reads_self)
    if _inplace_clock.hooks and getattr(t, "_hooks", None) is not None:
        # as torch: hooks registered before the write stay with the history they were registered on (they see
        # the gradient of the values before it); hooks registered after it see the new values' gradient
        ghost._hooks = t._hooks
        del t._hooks
    result = compute(ghost)
    _check_result(t, result, name)
    if result._parents:
        _snapshot_overlapping(result, ghost, t.array)
    if result.array is not t.array:  # (an op that wrote into the storage itself: see __setitem__)
        np.copyto(t.array, result.array, casting="unsafe")
    _bump(t)
    _adopt(t, ghost, result)
    if shared and t._vc is not None:
        # Other tensors outside the graph that share the storage and are no views of t taken with gradients
        # recorded (detach() aliases; views of those taken otherwise) now show values written with a gradient
        # they do not carry: backward refuses ops that read them after this (autograd._check_taints), unless
        # the buffer takes the values back with buf[i] = t (Python's `buf[i] += w` does), see __setitem__.
        taints = _inplace_clock.taints
        taints.append([t._vc, t._seq, None])
        if len(taints) > 256:
            del taints[: len(taints) - 256]
        if t._requires_grad:
            for view, place, prior in (*views, *_plain_views_of(t, [v for v, _, _ in views])):
                _attach_view(view, t, place, prior)
    return t


def _snapshot_overlapping(result: Tensor, ghost: Tensor, arr: Any) -> None:
    """An operand over the written tensor's memory, other than the tensor itself (``y.mul_(y.view(3))``,
    ``b.mul_(b.detach())``: torch allows the full overlap), would show the written values to the op's
    rule, and no version check sees that write (the tensor's node is newer than it): the rule reads a
    recorded copy of the values taken before the write instead (its gradient reaches the operand)."""
    parents = result._parents
    for i, p in enumerate(parents):
        a = p.array
        if p is ghost or not (a is arr or a.base is not None or arr.base is not None):
            continue  # arrays that own their memory share none
        if a.size and np.may_share_memory(a, arr) and _reads_input(result._vjp, i, result._needs):
            parents = (*parents[:i], _ops.clone(p), *parents[i + 1 :])
    result._parents = parents


def _ghost(t: Tensor, reads_self: bool) -> Tensor:
    """A new tensor object holding t's current history (and storage, or a copy of its values)."""
    ghost = Tensor.__new__(Tensor)
    ghost.array = t.array.copy() if reads_self else t.array
    ghost._grad = None
    ghost._requires_grad = t._requires_grad
    ghost._parents, ghost._vjp, ghost._saved, ghost._needs = t._parents, t._vjp, t._saved, t._needs
    ghost._retains_grad = False
    ghost._seq = t._seq
    # A copy keeps the old values for good (PyTorch saves such an op's input the same way), so it has
    # a counter of its own; a ghost sharing the storage shares the counter and sees later writes.
    # The copy's counter starts as t's (a snapshot): the old history's rules must still see the writes
    # made before (exp's saved output written under no_grad, then y.mul_(c)), as PyTorch's do.
    if reads_self:
        ghost._vc = None if t._vc is None else list(t._vc)
    else:
        vc = ghost._vc = _version_counter(t)
        key = id(vc)
        _ghost_holders[key] = _ghost_holders.get(key, 0) + 1
        # a plain weak reference, kept until the ghost dies (weakref.finalize costs several times as much,
        # and each recorded write into a view makes two or three ghosts)
        ref = weakref.ref(ghost, _ghost_died)
        _ghost_refs[id(ref)] = (ref, key)
    if _anomaly_mode[0] and hasattr(t, "_forward_stack"):  # anomaly mode's forward stack goes with its history
        ghost._forward_stack = t._forward_stack  # type: ignore[attr-defined]
    state = getattr(t, "_fn", None)
    if state is not None:  # hooks on the old grad_fn (and what saved_tensors_hooks packed) stay with its history
        ghost._fn = state
    return ghost


def _check_result(t: Tensor, result: Tensor, name: str) -> None:
    if result.shape != t.shape:
        raise ShapeError(
            f"{name}: the result has shape {tuple(result.shape)} but the tensor has shape {tuple(t.shape)} "
            "(an in-place op cannot change the shape)"
        )
    if (
        result.array.dtype != t.array.dtype
        and not _torch_can_cast(result.array.dtype, t.array.dtype)
        and name != "copy_"
    ):
        raise DTypeError(
            f"{name}: result type {result.array.dtype} can't be cast to the desired output type {t.array.dtype} "
            "(an in-place op keeps the tensor's dtype)"
        )


def _adopt(t: Tensor, ghost: Tensor, result: Tensor) -> None:
    """Make ``t`` stand for ``result``'s history, ``ghost`` keeping the one it had (see _inplace_recorded)."""
    prior = getattr(t, "_prior", None)
    if prior is not None:
        ghost._prior = prior
    t._prior = ghost
    ghost._next = t
    # A result with no history (a comparison such as ge_, which has no gradient) leaves t a constant.
    t._requires_grad = result._requires_grad
    t._parents, t._vjp, t._saved, t._needs = result._parents, result._vjp, result._saved, result._needs
    t._seq = next(_op_counter)  # newer than the write, so t's own rule sees its values as current
    _inplace_clock.rebased = t._seq


def _inplace_on_view(t: Tensor, name: str, compute: Callable[[Tensor], Tensor], reads_self: bool) -> Tensor:
    """An in-place op on a view ``t`` of a tensor in the graph (``h[i] += v``, ``h[:, 0].mul_(2)``).

    The new values are written into the base through the base's own recorded in-place op (an
    index_put / copy, which rebases the base), and ``t`` becomes a fresh view of the new base, so
    both histories describe their values (PyTorch's CopySlices does the same job).
    """
    view = t
    while _is_view_in_graph(view):  # an output of split/chunk/unbind, or a view of one: refused, as torch
        mark = getattr(view, "_multi_view", None)  # set by ops.rearrange._multi_output_views
        if mark is not None:
            raise StateError(
                f"{mark} is a view and is being modified inplace. This view is the output of a function that "
                "returns multiple views. Such functions do not allow the output views to be modified inplace. "
                "You should replace the inplace operation by an out-of-place one."
            )
        view = view._parents[0]
    base = t._parents[0]
    place = None
    if t.array.size == 0 and not getattr(base.array.flags, "writeable", True):
        # an empty view of an expanded tensor writes nothing, and has no place to tell in the memory under
        # it (a 0-d tensor's): the op's own errors (dtype, shape) only, as torch
        _check_result(t, compute(t), name)
        return t
    if not getattr(base.array.flags, "writeable", True):  # a select of an expanded view (x.expand(2, 4, 4)[0])
        base, place = _writable_source(t, base, name)
    if base._vjp is None and base.requires_grad:
        raise StateError(_LEAF_VIEW_MESSAGE)
    rule, saved = place if place is not None else (t._vjp, t._saved)
    ghost = source = _ghost(t, reads_self)
    if _inplace_clock.hooks and getattr(t, "_hooks", None) is not None:
        # as torch: the view's hooks stay on its old history, which ops that used the view before the write
        # reach; the write's own gradient goes to the base's old history without passing them (CopySlices),
        # so the op is computed from a twin of that history without the hooks
        ghost._hooks = t._hooks
        del t._hooks
        source = _ghost(t, reads_self)
    result = compute(source)
    _check_result(t, result, name)
    if place is None:
        base = _old_layout_view(base, t._seq)  # t indexes the layout its base had then (before a squeeze_, t_...)
    part = PART_VIEWS.get(rule)
    if part is not None:  # a real view of a complex tensor: the complex values are rebuilt with the new part
        part[0](base, result)
        _adopt(t, ghost, part[1](base))
        return t
    if rule is _ops._getitem_vjp:
        base[saved[0]] = result  # recorded: base becomes index_put(old base, index, result)
    else:
        # the view is all of the base (a reshape or a permutation of it): the base's new history is the
        # result laid out back, with no edge to the old values (a copy_ would add one that carries zeros)
        whole = _ops.reshape(result, base.shape) if rule is _ops._reshape_vjp else _ops.permute(result, saved)
        _inplace_recorded(base, "copy_", lambda dst: _ops.astype(whole, dst.dtype))
    view = (
        _ops.getitem(base, saved[0])
        if rule is _ops._getitem_vjp
        else _ops.reshape(base, t.shape)
        if rule is _ops._reshape_vjp
        else _ops.permute(base, tuple(sorted(range(len(saved)), key=saved.__getitem__)))  # (np.argsort: 5 us)
    )
    _adopt(t, ghost, view)
    return t


def _writable_source(t: Tensor, base: Tensor, name: str) -> tuple[Tensor, tuple[Any, Any]]:
    """For ``t``, a writable view of ``base``, a read-only view (an expand: elements repeat): the tensor up
    ``base``'s chain of views whose memory is writable, and ``t``'s place in it (see :func:`_place_in`).
    As in torch, the write lands in that memory, which every view over it sees."""
    source = base
    views = (*_ops._WRITABLE_VIEW_RULES, _ops._broadcast_to_vjp)
    while not getattr(source.array.flags, "writeable", True) and source._vjp in views and source._parents:
        source = source._parents[0]
    place = _place_in(t.array, source.array) if getattr(source.array.flags, "writeable", True) else None
    if place is None:
        raise StateError(_READ_ONLY_MESSAGE.format(op=name))
    return source, place


_LEAF_VIEW_MESSAGE = (
    "a view of a leaf Variable that requires grad is being used in an in-place operation. "
    "(Update parameters inside `with ds.no_grad():`, or write through .data.)"
)
_NO_GRAD_VIEW_MESSAGE = (  # torch's words
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this use "
    "case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the "
    "inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if "
    "you want the inplace to be tracked)."
)


def _inplace_on_plain_view(
    t: Tensor, name: str, compute: Callable[[Tensor], Tensor], reads_self: bool
) -> Tensor | None:
    """A recorded in-place op on a view ``t`` outside the graph (``buf[:, :2].index_add_(0, i, p)`` with
    ``buf`` not requiring grad): as PyTorch's CopySlices, the new values are written into the tensor
    the view was taken from (followed to the first one that is no such view: the root), which joins
    the graph, and ``t`` (with the views between, and the root's other views still alive) becomes
    a view of it. None when ``t``'s place in the root cannot be told (the caller then writes ``t``
    alone)."""
    chain = [t]
    root = t._view_of
    while True:
        if root is None:  # taken under no_grad (an out-of-place op, or the write under no_grad, is meant)
            raise StateError(f"{name}: {_NO_GRAD_VIEW_MESSAGE}")
        if root._vjp is not None or root._requires_grad:
            break
        if not hasattr(root, "_view_of"):  # no view: the tensor that owns the storage
            break
        chain.append(root)
        root = root._view_of
    if root._vjp is None and root._requires_grad:
        raise StateError(_LEAF_VIEW_MESSAGE)
    if root._vc is not t._vc:
        return None
    places = [_place_in(v.array, root.array) for v in chain]
    if places[0] is None:
        return None
    if root._requires_grad:  # a view taken before its base joined the graph: its history first
        for view, place in zip(chain, places):
            if place is not None:
                _attach_view(view, root, place, None)
        return _inplace_on_view(t, name, compute, reads_self)
    ghost = _ghost(t, reads_self)
    result = compute(ghost)
    _check_result(t, result, name)
    rule, saved = places[0]
    if rule is _ops._getitem_vjp:

        def write(src: Tensor) -> Tensor:
            return _ops.index_put(src, saved[0], result)
    else:  # t is all of root, in another shape

        def write(src: Tensor) -> Tensor:
            return _ops.reshape(_ops.astype(result, src.dtype), src.shape)

    views = [(v, p, ghost if v is t else None) for v, p in zip(chain, places) if p is not None]
    _rebase(root, name, write, False, True, views)
    return t


def _attach_view(view: Tensor, base: Tensor, place: tuple[Any, Any], prior: Tensor | None) -> None:
    """Make ``view`` (outside the graph) a view of ``base`` at ``place`` (see :func:`_place_in`; the view's
    values stay its own array). ``prior`` keeps its history before (a ghost of it is made when None),
    for the ops that used it as a constant."""
    node = record_op(view.array, (base,), *place)
    _adopt(view, _ghost(view, False) if prior is None else prior, node)


def _plain_views_of(base: Tensor, known: Sequence[Tensor]) -> list[tuple[Tensor, Any, None]]:
    """The views of ``base`` outside the graph still alive (taken from it, or from such a view of it,
    while gradients were recorded), other than ``known``, each with its place in ``base``.

    They share base's version counter: when nothing holds it but base, ``known``, the records of
    in-place ops (ghosts, taints) and this frame, there are none, and the heap is not searched."""
    vc = base._vc
    holders = {id(base)} | {id(k) for k in known if k._vc is vc}
    listed = builtins.sum(1 for taint in _inplace_clock.taints if taint[0] is vc)
    if sys.getrefcount(vc) - 2 <= len(holders) + listed + _ghost_holders.get(id(vc), 0):  # - arg, local name
        return []
    import gc  # only here: a search of the heap, when something else holds the counter

    found = []
    for o in gc.get_referrers(vc):
        if not isinstance(o, Tensor) or o._vc is not vc or id(o) in holders or o._vjp is not None:
            continue
        up: Any = getattr(o, "_view_of", None)
        while isinstance(up, Tensor) and up is not base and up._vjp is None and not up._requires_grad:
            up = getattr(up, "_view_of", None)
        if up is base and not o._requires_grad and not hasattr(o, "_next"):
            place = _place_in(o.array, base.array)
            if place is not None:
                found.append((o, place, None))
    return found


def _place_in(view: Any, base: Any) -> tuple[Any, Any] | None:
    """Where the elements of ``view`` (an array over base's memory) lie in ``base``, as the rule and saved
    values of the view op that gives them: all of base in order, a reshape; an index of base
    otherwise, with whether it is advanced: slices, integers and None when ``view`` is a strided
    block of a C-contiguous base in its order of dims (a slice, select, narrow, unsqueeze...), else
    one integer array per dim of base (a transpose, a diagonal...). None when some element of
    ``view`` is no element of ``base`` (or the two differ in dtype)."""
    if view.dtype != base.dtype or (view.size and not np.may_share_memory(view, base)):
        return None
    if (
        view.size == base.size
        and view.flags.c_contiguous
        and base.flags.c_contiguous
        and Tensor.data_ptr(wrap_array(view)) == Tensor.data_ptr(wrap_array(base))
    ):
        return _ops._reshape_vjp, None
    item = base.itemsize
    offset = Tensor.data_ptr(wrap_array(view)) - Tensor.data_ptr(wrap_array(base))
    if offset % item or any(s % item for s in view.strides) or any(s % item for s in base.strides):
        return None
    offset //= item
    steps = [s // item for s in view.strides]
    if not view.size:
        empty = np.zeros(view.shape, np.intp)  # host: an index worked out from shapes
        return _ops._getitem_vjp, (_ops._normalize_index(tuple(empty for _ in base.shape), on=base), True)
    if base.flags.c_contiguous:
        index = _basic_place(view.shape, steps, offset, base.shape)
        if index is not None:
            block = base[(*index, Ellipsis)]  # a view even where all are integers (NumPy gives a copy)
            if (
                block.shape == view.shape
                and Tensor.data_ptr(wrap_array(block)) == Tensor.data_ptr(wrap_array(view))
                and all(a == b for n, a, b in zip(view.shape, block.strides, view.strides) if n > 1)
            ):
                return _ops._getitem_vjp, (index, False)
    # the position of each element of view in memory (in elements from base's first), found among base's
    where = _positions(view.shape, steps, offset)
    if base.flags.c_contiguous:
        flat = where
        if where.min() < 0 or where.max() >= base.size:
            return None
    else:
        spots = _positions(base.shape, [s // item for s in base.strides], 0).reshape(-1)
        low = builtins.int(spots.min())
        table = np.full(builtins.int(spots.max()) - low + 1, -1, np.int64)  # host: positions worked out from strides
        table[spots - low] = np.arange(base.size)  # host: positions worked out from strides
        if where.min() < low or where.max() - low >= table.size:
            return None
        flat = table[where - low]
        if flat.min() < 0:
            return None
    return _ops._getitem_vjp, (_ops._normalize_index(np.unravel_index(flat, base.shape), on=base), True)


def _positions(shape: Shape, steps: Sequence[int], start: int) -> np.ndarray:
    """``start + sum(i_k * steps[k])`` for every multi-index ``i`` of ``shape`` (memory positions)."""
    where = np.full(shape, start, np.int64)  # host: positions worked out from strides
    for k, (n, step) in enumerate(zip(shape, steps)):
        if n > 1 and step:
            ramp = np.arange(n, dtype=np.int64) * step  # host: positions worked out from strides
            where = where + ramp.reshape((n,) + (1,) * (len(shape) - k - 1))
    return where


def _basic_place(shape: Shape, steps: Sequence[int], offset: int, base_shape: Shape) -> Any:
    """Slices, integers and None that pick, from a C-contiguous array of ``base_shape``, the elements
    ``offset + sum(i_k * steps[k])`` in the shape ``shape``, if some do (checked by the caller)."""
    size = 1
    for n in base_shape:
        size *= n
    if not 0 <= offset < size:
        return None
    unit = []  # the contiguous strides, in elements
    for n in base_shape:
        size //= n
        unit.append(size)
    start = []
    for u in unit:
        start.append(offset // u)
        offset %= u
    index: list[Any] = []
    dim = 0
    for n, step in zip(shape, steps):
        if n == 1:  # a dim of length one: None adds it (the base's dim, if any, is picked by an integer)
            index.append(None)
            continue
        j = next((j for j in range(dim, len(base_shape)) if base_shape[j] > 1 and abs(step) >= unit[j]), None)
        if j is None or step % unit[j]:
            return None
        step //= unit[j]
        last = start[j] + step * (n - 1)
        if not 0 <= last < base_shape[j]:
            return None
        index.extend(start[dim:j])
        stop = last + (1 if step > 0 else -1)
        index.append(slice(start[j], None if stop < 0 else stop, step))
        dim = j + 1
    index.extend(start[dim:])
    return tuple(index)


def _data_of(x: Any) -> Any:
    return x.array if isinstance(x, Tensor) else x


def _bitwise(ufunc: Any, t: Tensor, other: Any) -> Tensor:
    """A bitwise op (no gradient) in torch's result dtype: a 0-d tensor of the same category does not
    widen a tensor with dims (uint8 | tensor(2, dtype=int8) is uint8), where NumPy would give int16."""
    foreign = _ops._foreign_tensor(other, t.array)
    if foreign is not None:  # a torch tensor: ours, as + converts it
        other = foreign
    if isinstance(other, Tensor) and other.array.dtype != t.array.dtype and (other.ndim == 0) != (t.ndim == 0):
        t, other = _ops._pair(t, other)
    elif type(other) is int or isinstance(other, np.integer):  # a NumPy integer is a number, as in torch
        other = int(other)
        if t.array.dtype.kind in "iu":  # torch wraps the number into the dtype (uint8 & -2)
            other = _ops._wrapped_int(other, t.array.dtype)
    if t.array.dtype.kind not in "iub" or not _ops._is_integral(other):
        kind = getattr(other, "dtype", type(other).__name__)
        raise DTypeError(f"{ufunc.__name__}: expected integer or boolean operands, got {t.dtype} and {kind}")
    if (ufunc is np.left_shift or ufunc is np.right_shift) and t.array.dtype.kind == "b":
        _ops._refuse_boolean(ufunc.__name__, t, other if isinstance(other, Tensor) else _ops._lift(other))
    return wrap_array(ufunc(t.array, _data_of(other)))


def _to_device_vjp(g: Any, y: Any, args: Any, saved: Any, needs: Any, xp: Any) -> tuple[Any]:
    """Gradient of a move between devices (Tensor.to / cpu / cuda): the gradient moves back."""
    return (g._moved(saved) if isinstance(g, Tensor) else _devices.to_device(g, saved),)


def _check_devices(arr: Any, parents: tuple[Tensor, ...], vjp: Any) -> None:
    """Refuse an op whose inputs live on different devices (a 0-d host input may join, as in torch)."""
    if vjp is _to_device_vjp:
        return
    here = _devices.device_of(arr)
    for p in parents:
        there = _devices.device_of(p.array)
        if there != here and not (there == _CPU and p.array.ndim == 0):
            raise DeviceError(
                f"Expected all tensors to be on the same device, but found at least two devices, {here} and {there}! "
                f"(op {_rule_name(vjp)})"
            )


def _rule_name(vjp: Callable[..., Any]) -> str:
    return _torch_rule_name(vjp)


# ---------------------------------------------------------------------- public factories


def _placed(arr: Any, device: Any, where: str) -> Any:
    """``arr`` moved to ``device`` (left where it is when no device is named)."""
    if device is None:
        device = _default_factory_device()  # ds.set_default_device; None when it is the CPU
        if device is None:
            return arr
    return _devices.to_device(arr, _resolve(device, where))


@_torch_options
def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Make a tensor from a list, a scalar, an array or another tensor (data is copied).

    Floating data becomes float32 unless ``dtype`` is given (e.g. ``dtype=ds.float64``); float16 arrays
    stay float16, and integer arrays and tensors keep int8/int16/int32/int64/uint8 (a uint8 image stays
    uint8), as in torch; Python integers become int64. A downslope tensor keeps its dtype, as in torch
    (the float32 policy is for NumPy, PyTorch and Python data);
    ``device`` is ``"cpu"`` (the default for host data), ``"cuda"`` (CuPy) or ``"strict"`` (tests).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([[1, 2], [3, 4]], dtype="float32").shape
        downslope.Size([2, 2])
    """
    if dtype is None and isinstance(data, Tensor):
        dtype = data.dtype
    t = wrap_array(
        _placed(to_array(data, dtype), device, "tensor()")
    )  # not Tensor(data): Tensor(None) / Tensor(3, 4) are torch's legacy forms
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """Wrap an array without copying it (its dtype is kept). As in torch, an array of the other byte
    order is refused (``ds.tensor`` copies it in native order), and a read-only one warns."""
    if not isinstance(array, np.ndarray):
        raise ArgumentTypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiubc":
        raise ArgumentTypeError(f"from_numpy: unsupported dtype {array.dtype}")
    if not array.dtype.isnative:
        raise ArgumentError(
            "from_numpy: given numpy array has byte order different from the native byte order "
            f"({array.dtype.str}). Conversion between byte orders is not supported here, as in torch: "
            "ds.tensor(array) copies it in native order"
        )
    if any(stride < 0 for stride in array.strides):  # as torch: a tensor's strides are never negative
        raise ArgumentError(
            "from_numpy: at least one stride in the given numpy array is negative, and tensors with negative "
            f"strides are not supported, as in torch (strides {array.strides}); copy the array first "
            "(array.copy(), or ds.tensor(array), which copies)"
        )
    flags = array.flags
    if not (flags.writeable and flags.c_contiguous):
        _lend(array)
    return _fresh_leaf(array, requires_grad)


def _fresh_leaf(arr: Any, requires_grad: builtins.bool) -> Tensor:
    """A leaf around ``arr`` (a factory's new array, or one from_numpy checked)."""
    t = wrap_array(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_dlpack(ext_tensor: Any) -> Tensor:
    """A tensor sharing the memory of any object that speaks DLPack (a PyTorch, JAX or CuPy tensor, a
    NumPy array), as ``torch.from_dlpack``; CPU memory becomes a NumPy array, CUDA memory a CuPy
    array (with the ``cuda`` extra).

    Example:
        >>> import numpy as np, downslope as ds
        >>> a = np.arange(3.0)
        >>> t = ds.from_dlpack(a); a[0] = 7
        >>> t.tolist()
        [7.0, 1.0, 2.0]
    """
    if not hasattr(ext_tensor, "__dlpack__"):
        raise ArgumentTypeError(f"from_dlpack: expected an object with __dlpack__, got {type(ext_tensor).__name__}")
    kind = ext_tensor.__dlpack_device__()[0] if hasattr(ext_tensor, "__dlpack_device__") else 1
    if kind in (2, 3, 13):  # CUDA, CUDA host and CUDA managed memory: CuPy reads them
        cupy = _devices.cupy_module()
        if cupy is None:
            raise DeviceError(
                "from_dlpack: the tensor is in CUDA memory, and CuPy or a GPU is missing here (pip install 'downslope[cuda]')"
            )
        return wrap_array(cupy.from_dlpack(ext_tensor))
    if kind != 1:
        raise ArgumentTypeError(f"from_dlpack: DLPack device type {kind} is not supported (only CPU and CUDA memory)")
    try:
        return wrap_array(np.from_dlpack(ext_tensor))
    except (RuntimeError, BufferError, TypeError) as exc:
        dtype = getattr(ext_tensor, "dtype", None)
        if "dtype" not in str(exc) or dtype is None:
            raise
        hint = " (bfloat16 is not a downslope dtype)" if "bfloat16" in str(dtype) else ""
        raise ArgumentTypeError(
            f"from_dlpack: cannot share a tensor of dtype {dtype}{hint}: convert it first (t.float() for "
            "float32, a copy) or pass it to ds.tensor(), which converts it"
        ) from None


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Return ``data`` itself when it is already a tensor (of the asked dtype), else a tensor; a NumPy
    array whose dtype is kept (float32, float16, int8/int16/int32/int64/uint8, booleans; float64 when
    asked for) is shared, not copied, as ``torch.as_tensor`` shares it (a float64 array becomes a
    float32 copy by default, a uint16/uint32/uint64 array an int64 copy).

    Example:
        >>> import numpy as np, downslope as ds
        >>> a = np.zeros(2, np.float32)
        >>> t = ds.as_tensor(a); a[0] = 5
        >>> t.tolist()
        [5.0, 0.0]
    """
    if isinstance(data, Tensor):
        if dtype is not None and data.dtype != backend.as_dtype(dtype):
            data = data.to(backend.as_dtype(dtype))  # a differentiable cast, as torch's as_tensor
        return data if device is None else data.to(device)
    array = to_array(data, dtype)
    if type(data) is np.ndarray and array.dtype == data.dtype and array is not data:
        array = data  # the same values in the same dtype: share the caller's array
        _lend(array)
    return wrap_array(_placed(array, device, "as_tensor()"))


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a downslope Tensor (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """Sizes given as ints or as one sequence of them. A size may be anything torch reads through
    ``__index__`` (a 0-d integer tensor such as ``lengths.max()``); a float (or float tensor) is refused
    with a TypeError, as in torch, where rounding it would silently change the shape."""
    if len(shape) == 1 and backend.index_value(shape[0]) is None:
        lone = shape[0]
        if isinstance(lone, Tensor) or isinstance(lone, (str, bytes)) or not hasattr(lone, "__iter__"):
            raise ArgumentTypeError(
                f"expected a shape of non-negative integers, got {lone!r} (a {type(lone).__name__}; a tensor "
                "as a size must be an integer tensor of one element)"
            )
        shape = tuple(lone)
    sizes = []
    for s in shape:
        size = backend.index_value(s)
        if size is None:
            raise ArgumentTypeError(f"expected a shape of non-negative integers, got {shape} ({s!r} is not an integer)")
        if size < 0:
            raise ArgumentError(f"expected a shape of non-negative integers, got {shape}")
        sizes.append(int(size))
    return tuple(sizes)


def _float_dtype(dtype: Any) -> np.dtype:
    return backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)


def _random_dtype(dtype: Any, name: str) -> np.dtype:
    resolved = _float_dtype(dtype)
    if resolved.kind != "f":  # casting the samples would silently truncate them to integers
        raise ArgumentTypeError(f"{name}: expected a floating dtype, got {resolved}")
    return resolved


def _made(arr: np.ndarray, requires_grad: bool, device: Any, where: str) -> Tensor:
    """A factory's result: made on the host (so seeded draws are the same on every device), then moved."""
    if device is None:
        device = _default_factory_device()  # ds.set_default_device; None when it is the CPU
    if device is None:
        return _fresh_leaf(arr, requires_grad)
    t = wrap_array(_placed(arr, device, where))
    if requires_grad:
        t.requires_grad_(True)
    return t


_COMPLEX_NUMBERS = frozenset({complex, np.complex64, np.complex128, np.clongdouble})


def _real_scalar(value: Any, dtype: np.dtype, op: str) -> Any:
    """A complex number written into a tensor of a real (or integer, bool) dtype, as torch converts it:
    its real part when the imaginary part is 0, else refused (a cast would silently drop it)."""
    if dtype.kind == "c" or not isinstance(value, (complex, np.complexfloating)):
        return value
    if value.imag != 0:
        raise DTypeError(
            f"{op}: value {value!r} cannot be converted to type {dtype} without overflow (a complex number with a "
            f"nonzero imaginary part, written into a {dtype} tensor); make the tensor complex first"
        )
    return value.real


def _filled(shape: Any, value: Any, dtype: Any, requires_grad: bool, device: Any, where: str) -> Tensor:
    """A factory's constant result (zeros, ones, full), made directly on the device asked for."""
    if type(value) is not int or not 0 <= value <= 1:  # zeros and ones fit every dtype: skip the check
        if value.__class__ in _COMPLEX_NUMBERS:
            value = _real_scalar(value, np.dtype(dtype), where)
        value = _ops._checked_scalar(value, np.dtype(dtype), where)  # as torch: 1e10 into float16 is refused
    if device is None:
        device = _default_factory_device()  # ds.set_default_device; None when it is the CPU
    if device is None:
        # -0.0 is no zero here: torch.full((2,), -0.0) keeps its sign (np.zeros would drop it)
        plain_zero = value == 0 and not (isinstance(value, (builtins.float, np.floating)) and np.signbit(value))
        arr = np.zeros(shape, dtype) if plain_zero else np.full(shape, value, dtype)  # host: no device asked for
        return _fresh_leaf(arr, requires_grad)
    t = wrap_array(_devices.full(shape, value, dtype, _resolve(device, where)))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _sizes_arg(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Sizes or dims given as varargs or as one sequence, each one that torch reads through
    ``__index__`` (a 0-d integer tensor such as ``lengths.max()``) as an int; anything else (a float,
    a bool) is left as it is for the op to refuse."""
    if len(args) == 1 and backend.index_value(args[0]) is None:
        lone = args[0]
        if isinstance(lone, (str, bytes)) or not hasattr(lone, "__iter__"):
            return args
        args = tuple(lone)
    return tuple(_int_if_index(a) for a in args)


def _int_if_index(value: Any) -> Any:
    index = None if isinstance(value, (bool, np.bool_)) else backend.index_value(value)
    return value if index is None else index


def _kw_sizes(name: str, args: tuple[Any, ...], key: str, value: Any) -> tuple[Any, ...]:
    """A method's sizes given as varargs or, as PyTorch also takes them, as one keyword (``x.view(size=(2, 3))``)."""
    if value is None:
        if not args:
            raise ArgumentTypeError(f"{name}() missing 1 required positional argument: '{key}'")
        return args
    if args:
        raise ArgumentTypeError(f"{name}() got multiple values for argument '{key}'")
    return (value,)


def _like_device(t: Any, device: Any) -> Any:
    """The device of a ``*_like`` factory's result: the one asked for, else ``t``'s (as in torch)."""
    if device is None and isinstance(t, Tensor) and type(t.array) is not np.ndarray:
        return t.device
    if device is None and isinstance(t, Tensor) and _default_factory_device() is not None:
        return t.device  # a host tensor's copy stays on the host whatever the default device
    return device


@_torch_options
def zeros(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros, e.g. ``ds.zeros(2, 3)``."""
    return _filled(
        _shape_arg(shape if size is None else (size,)), 0, _float_dtype(dtype), requires_grad, device, "zeros()"
    )


@_torch_options
def ones(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones, e.g. ``ds.ones(2, 3)``."""
    return _filled(
        _shape_arg(shape if size is None else (size,)), 1, _float_dtype(dtype), requires_grad, device, "ones()"
    )


@_torch_options
def empty(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor to be filled (zeros here: NumPy's uninitialised memory would make runs irreproducible)."""
    return _filled(
        _shape_arg(shape if size is None else (size,)), 0, _float_dtype(dtype), requires_grad, device, "empty()"
    )


def _fill_dtype(fill_value: Any, dtype: Any) -> np.dtype:
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        return backend.bool_
    if dtype is None and isinstance(fill_value, (int, np.integer)):
        return backend.int64
    if dtype is None and isinstance(fill_value, (complex, np.complexfloating)):
        return backend.complex_of(backend.get_default_dtype())
    return _float_dtype(dtype)


@_torch_options
def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value, as in torch.full
    (``ds.full((2,), 3)`` is int64, ``ds.full((2,), 0.5)`` float32).

    Example:
        >>> import downslope as ds
        >>> ds.full((2, 2), 0.5)
        tensor([[0.5, 0.5],
                [0.5, 0.5]])
    """
    value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value  # host: a fill value sets the dtype
    return _filled(_shape_arg((size,)), value, _fill_dtype(value, dtype), requires_grad, device, "full()")


def _like_dtype(t: Any, dtype: Any) -> np.dtype:
    if dtype is not None:
        return backend.as_dtype(dtype)
    data = _data_of(t)
    return data.dtype if hasattr(data, "dtype") else np.asarray(data).dtype  # host: the dtype of a number


@_torch_options
def zeros_like(t: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape and dtype (or ``dtype``)."""
    shape = np.shape(_data_of(t))
    return _filled(shape, 0, _like_dtype(t, dtype), requires_grad, _like_device(t, device), "zeros_like()")


@_torch_options
def ones_like(t: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape and dtype (or ``dtype``)."""
    shape = np.shape(_data_of(t))
    return _filled(shape, 1, _like_dtype(t, dtype), requires_grad, _like_device(t, device), "ones_like()")


@_torch_options
def empty_like(t: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor to be filled, with ``t``'s shape and dtype (zeros, see :func:`empty`)."""
    return zeros_like(t, dtype=dtype, device=device, requires_grad=requires_grad)


@_torch_options
def full_like(t: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with ``t``'s shape and dtype (or ``dtype``)."""
    value = _devices.to_host(fill_value.array) if isinstance(fill_value, Tensor) else fill_value
    value = value.item() if _devices.is_array(value) else value  # host: a fill value is a Python number
    shape = np.shape(_data_of(t))
    return _filled(shape, value, _like_dtype(t, dtype), requires_grad, _like_device(t, device), "full_like()")


@_torch_options
def randn(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the library's seeded generator (complex dtypes: real and imaginary
    parts each of variance 1/2, so the samples have unit variance, as in torch)."""
    sizes = _shape_arg(shape if size is None else (size,))
    if dtype is not None and backend.as_dtype(dtype).kind == "c":
        parts = backend.rng().standard_normal((*sizes, 2), dtype=np.float64) * np.sqrt(0.5)
        arr = (parts[..., 0] + 1j * parts[..., 1]).astype(backend.as_dtype(dtype))
        return _made(arr, requires_grad, device, "randn()")
    arr = backend.rng().standard_normal(sizes, dtype=np.float64).astype(_random_dtype(dtype, "randn"))
    return _made(arr, requires_grad, device, "randn()")


@_torch_options
def rand(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) from the library's seeded generator (complex dtypes: real and imaginary
    parts each uniform on [0, 1), as in torch)."""
    sizes = _shape_arg(shape if size is None else (size,))
    if dtype is not None and backend.as_dtype(dtype).kind == "c":
        parts = backend.rng().random((*sizes, 2), dtype=np.float64)
        arr = (parts[..., 0] + 1j * parts[..., 1]).astype(backend.as_dtype(dtype))
        return _made(arr, requires_grad, device, "rand()")
    arr = backend.rng().random(sizes, dtype=np.float64).astype(_random_dtype(dtype, "rand"))
    return _made(arr, requires_grad, device, "rand()")


@_torch_options
def randn_like(t: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples with ``t``'s shape (and floating dtype)."""
    shape, d = np.shape(_data_of(t)), _like_device(t, device)
    return randn(shape, dtype=_like_dtype(t, dtype), device=d, requires_grad=requires_grad)


@_torch_options
def rand_like(t: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) with ``t``'s shape (and floating dtype)."""
    shape, d = np.shape(_data_of(t)), _like_device(t, device)
    return rand(shape, dtype=_like_dtype(t, dtype), device=d, requires_grad=requires_grad)


@_torch_options
def randint(low: int, high: Any = None, size: Any = None, *, dtype: Any = None, device: Any = None) -> Tensor:
    """Integers uniform on [low, high) (``randint(high, size)`` or ``randint(low, high, size)``), int64."""
    if size is None:
        if high is None:
            raise ArgumentTypeError("randint: expected randint(high, size) or randint(low, high, size)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    shape = _shape_arg((size,)) if not isinstance(size, (int, np.integer)) else (int(size),)
    if not int(low) < int(high):
        raise InvalidValueError(  # torch: RuntimeError
            f"randint: expected low < high (values are drawn from [low, high)), got low={low}, high={high}"
        )
    arr = backend.rng().integers(int(low), int(high), shape, dtype=np.int64)
    return _made(arr.astype(backend.int64 if dtype is None else backend.as_dtype(dtype)), False, device, "randint()")


def randint_like(t: Any, low: int, high: Any = None, **kwargs: Any) -> Tensor:
    """Integers uniform on [low, high) with ``t``'s shape (and dtype)."""
    kwargs.setdefault("dtype", _like_dtype(t, None))
    return randint(low, high, np.shape(_data_of(t)), **kwargs)


@_torch_options
def randperm(n: int, *, dtype: Any = None, device: Any = None) -> Tensor:
    """A random permutation of 0..n-1 (int64) from the library's seeded generator."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ArgumentError(f"randperm(): n must be a non-negative integer, got {n!r}")
    arr = backend.rng().permutation(int(n))
    return _made(arr.astype(backend.int64 if dtype is None else backend.as_dtype(dtype)), False, device, "randperm()")


@_torch_options
def normal(
    mean: Any = 0.0,
    std: Any = 1.0,
    size: Any = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Samples of N(mean, std^2); ``mean``/``std`` may be tensors (broadcast), or floats with ``size``."""
    shape = np.broadcast_shapes(np.shape(_data_of(mean)), np.shape(_data_of(std)))
    if size is not None:
        shape = _shape_arg((size,)) if not isinstance(size, (int, np.integer)) else (int(size),)
    if dtype is None and isinstance(mean, Tensor):
        dtype = mean.array.dtype
    elif dtype is None and isinstance(std, Tensor):  # normal(0.0, std): std's dtype, as torch
        dtype = std.array.dtype
    z = backend.rng().standard_normal(shape, dtype=np.float64)
    # Drawn on the host (the same numbers on every device), then placed on mean's device or the one asked for.
    std_h, mean_h = (_devices.to_host(_data_of(v)).astype(np.float64) for v in (std, mean))
    arr = (z * std_h + mean_h).astype(_random_dtype(dtype, "normal"))
    return _made(arr, requires_grad, _like_device(mean if isinstance(mean, Tensor) else std, device), "normal()")


@_torch_options
def bernoulli(input: Any, p: Any = None) -> Tensor:
    """1 with probability ``input`` (a tensor of probabilities), else 0, in its dtype; with a number
    ``p``, draws of probability ``p`` in ``input``'s shape and dtype (torch.bernoulli(input, p)).

    Example:
        >>> import downslope as ds
        >>> ds.bernoulli(ds.zeros(3), 1.0)
        tensor([1., 1., 1.])
    """
    if p is not None:
        return _bernoulli_of_p(input, p)
    probs = np.asarray(_devices.to_host(_data_of(input)))  # host: drawn on the host, then placed
    _check_probabilities(probs, "bernoulli")
    arr = (backend.rng().random(probs.shape) < probs).astype(probs.dtype if probs.dtype.kind == "f" else np.float32)
    return from_numpy(arr)


def _check_probabilities(probs: np.ndarray, where: str) -> None:
    """Refuse probabilities outside [0, 1] or NaN, as torch does (a draw against 1.5 is always 1:
    a silently wrong sample)."""
    if probs.size and not (probs.min() >= 0 and probs.max() <= 1):  # NaN fails both comparisons
        raise InvalidValueError(
            f"{where}: expects all probabilities in [0, 1], got values in [{probs.min():.4g}, {probs.max():.4g}]"
        )


def _bernoulli_of_p(input: Any, p: Any) -> Tensor:
    """torch.bernoulli(input, p): one probability for every element; input gives shape, dtype, device."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"bernoulli(input, p): input must be a tensor, got {type(input).__name__}")
    if isinstance(p, builtins.bool) or not isinstance(p, (builtins.int, builtins.float, np.integer, np.floating)):
        raise ArgumentTypeError(f"bernoulli(input, p): p must be a float, got {type(p).__name__}")
    if not 0 <= p <= 1:
        raise InvalidValueError(f"bernoulli(input, p): expects p to be in [0, 1], but got p={p}")
    draws = backend.rng().random(input.shape) < p  # host: drawn on the host, then placed
    return wrap_array(_devices.like(draws.astype(input.array.dtype), input.array))


def _fma(step: Any, counts: Any, offset: Any) -> Any:
    """``step * counts + offset`` rounded once, elementwise, as the fused multiply-add torch's CPU kernels
    compile to (``step`` a float32 or float64 number, ``counts`` whole numbers in that dtype, ``offset`` a
    number or an array). float32: the product is exact in float64, and a sum that lands on a midpoint
    between two float32 is settled by its rounding error. float64: the product's and the sum's rounding
    errors (Dekker's split, Knuth's two-sum) are added back once."""
    counts = np.asarray(counts)  # host: factories compute on the host; _made places the result
    if counts.dtype == np.float32:
        product = np.float64(step) * counts.astype(np.float64)
        addend = np.asarray(offset, dtype=np.float32).astype(np.float64)  # host: as above
        total = product + addend
        rest = total - product
        error = (product - (total - rest)) + (addend - rest)
        out = np.asarray(total.astype(np.float32))  # host: as above
        inexact = np.flatnonzero(error)  # only there can rounding twice differ from rounding once
        if inexact.size:
            error = np.broadcast_to(error, out.shape).reshape(-1)[inexact]
            near, sums = out.reshape(-1)[inexact], np.broadcast_to(total, out.shape).reshape(-1)[inexact]
            neighbour = np.nextafter(near, np.where(sums > near, np.float32(np.inf), np.float32(-np.inf)))
            flip = (
                (sums != near)
                & (sums == (near.astype(np.float64) + neighbour) / 2)
                & ((error > 0) == (neighbour > near))
            )
            out.reshape(-1)[inexact[flip]] = neighbour[flip]
        return out
    step = float(step)  # host: a Python number
    high = 134217729.0 * step - (134217729.0 * step - step)  # Veltkamp's split: 26 bits and the rest
    low = step - high
    product = step * counts
    # host: counts wider than 26 bits cannot be multiplied exactly by `high`
    if counts.size and float(np.abs(counts).max()) >= 2.0**26:  # host: see above
        counts_high = 134217729.0 * counts - (134217729.0 * counts - counts)
        counts_low = counts - counts_high
        product_error = ((high * counts_high - product) + high * counts_low + low * counts_high) + low * counts_low
    else:
        product_error = (high * counts - product) + low * counts
    total = product + offset
    rest = total - product
    return total + (product_error + ((product - (total - rest)) + (offset - rest)))


def _torch_arange_values(start: float, step: float, size: int, dtype: Any) -> Any:
    """torch's CPU arange for float32/float64, bit for bit: ``start + step * i`` in float64 (a fused
    multiply-add), except that in each run of two 32-byte vectors (8 float32, 4 float64) the later
    elements are the first one (rounded to the dtype) plus ``j * step``, and each thread's share (beyond
    32768 elements) starts its own runs."""
    from .parallel import get_num_threads

    lanes = 32 // np.dtype(dtype).itemsize
    out = np.empty(size, dtype)  # host: placed by _made
    tasks = 1 if size <= 32768 else min(get_num_threads(), -(-size // 32768))
    chunk = -(-size // tasks)
    for begin in range(0, size, chunk):
        end = min(size, begin + chunk)
        vectorized = (end - begin) // (2 * lanes) * (2 * lanes)
        counts = np.arange(begin, begin + vectorized, lanes, dtype=np.float64)  # host: placed by _made
        firsts = _fma(step, counts, start).astype(dtype)
        within = np.arange(lanes, dtype=np.float64)  # host: as above
        out[begin : begin + vectorized] = _fma(step, within, firsts.astype(np.float64)[:, None]).reshape(-1)
        rest = np.arange(begin + vectorized, end, dtype=np.float64)  # host: as above
        out[begin + vectorized : end] = _fma(step, rest, start)
    return out


def torch_linspace_values(start: Any, end: Any, steps: int, dtype: Any) -> Any:
    """torch's CPU linspace, bit for bit: ``step = (end - start) / (steps - 1)`` in the dtype (float64 for
    integer dtypes, then truncated); the first half ``start + step * i``, the second ``end - step *
    (steps - 1 - i)``, each a fused multiply-add, so the end points are exact and the halves symmetric."""
    work = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    first = np.asarray(start).astype(dtype).astype(work)  # host: the bounds are numbers
    last = np.asarray(end).astype(dtype).astype(work)  # host: as above
    if steps == 1:
        return np.array([first], dtype)  # host: placed by _made
    step = (last - first) / work.type(steps - 1)
    index = np.arange(steps)  # host: placed by _made
    low = _fma(step, index.astype(work), first)
    high = _fma(-step, (steps - 1 - index).astype(work), last)
    return np.where(index < steps // 2, low, high).astype(dtype)


@_torch_options
def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Evenly spaced values in [start, end); integers unless a float is involved or asked for."""
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))  # host: bounds
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, (str, bytes, bool)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"arange: {name} must be a number, got {type(v).__name__} ({v!r})")
    fractional = builtins.any(isinstance(v, (float, np.floating)) for v in (start, end, step))
    target = backend.as_dtype(dtype) if dtype is not None else None
    if target is None:
        target = backend.get_default_dtype() if fractional else np.dtype(backend.int64)
    if fractional and target.kind in "iu":
        # torch's integer kernels with fractional numbers, followed as they are (they disagree): int64's
        # truncates start, end and step first (arange(0, 5, 0.5) has a step of 0 and is refused;
        # arange(-0.9, 3.5, 1.1) is [0, 1, 2]); the other integer dtypes' take the length from the numbers
        # as given and the values from the truncated start and step (arange(-0.9, 3.5, 1.1) is [0, 1, 2, 3],
        # arange(0, 5, 0.5) ten zeros)
        if not np.isfinite([start, end, step]).all():  # host: Python numbers
            raise InvalidValueError(f"arange: unsupported range: {start} -> {end} (step {step}) for {target}")
        if int(step) == 0 and target == np.int64:
            raise InvalidValueError(f"arange: step must be nonzero, got {step!r} (truncated to 0 for {target})")
    if step == 0:
        raise InvalidValueError(f"arange: step must be nonzero, got {step!r}")
    if (end - start) * step < 0:  # NumPy would give an empty array
        raise InvalidValueError(f"arange: the bounds [{start}, {end}) are inconsistent with the sign of step {step}")
    if fractional and target.kind in "iu":  # the checks above read the numbers as given, as torch's do
        count = np.arange(start, end, step).size if target != np.int64 else None  # host: a factory
        start, end, step = int(start), int(end), int(step)
        if count is not None:
            arr = start + step * np.arange(count, dtype=np.int64)  # host: a factory, placed by _made
            return _made(arr.astype(target), requires_grad, device, "arange()")
    arr = np.arange(start, end, step)  # host: a factory, placed by _made
    if target.kind == "c":  # torch: "arange_cpu" not implemented for complex dtypes
        raise DTypeError(f"arange: not implemented for complex dtypes (got {target}), as in torch")
    if target in (np.float32, np.float64) and arr.size:
        arr = _torch_arange_values(float(start), float(step), arr.size, target)  # host: Python numbers
    return _made(arr.astype(target), requires_grad, device, "arange()")


@_torch_options
def linspace(
    start: Any, end: Any, steps: int, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (float32 by default).

    Example:
        >>> import downslope as ds
        >>> ds.linspace(0, 1, 5)
        tensor([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    steps = _int_if_index(steps)  # a 0-d integer tensor too, as torch reads it through __index__
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ArgumentError(f"linspace(): steps must be a non-negative integer, got {steps!r}")
    first, last = (_devices.to_host(_data_of(v)) for v in (start, end))  # host: the bounds are numbers
    complex_bounds = np.iscomplexobj(first) or np.iscomplexobj(last)
    if complex_bounds and dtype is None:  # as torch: complex bounds make a complex result
        target = backend.complex_of(backend.get_default_dtype())
    else:
        target = _float_dtype(dtype)
    if complex_bounds and target.kind != "c":
        raise DTypeError(
            f"linspace(): complex bounds ({start!r}, {end!r}) can't be safely cast to the dtype asked for, "
            f"{target} (torch: inferred dtype complex can't be safely cast to passed dtype); pass a complex dtype"
        )
    if target.kind == "c" and np.ndim(first) == 0 and np.ndim(last) == 0:  # torch's formula, part by part
        part = np.finfo(target).dtype
        lo, hi = complex(first), complex(last)  # host: the bounds are numbers
        real = torch_linspace_values(lo.real, hi.real, int(steps), part)
        imag = torch_linspace_values(lo.imag, hi.imag, int(steps), part)
        return _made((real + 1j * imag).astype(target), requires_grad, device, "linspace()")
    if target.kind in "iu" and np.ndim(first) == 0 and np.ndim(last) == 0:
        from .ops.operands import _checked_scalar  # ops loads after this module

        # torch's checked conversion of the bounds it reads (none for 0 steps, start alone for one): -0.5
        # into uint8 is refused, -1 wraps to 255
        for bound in (first, last)[: builtins.min(int(steps), 2)]:
            _checked_scalar(_number_of(bound), target, "linspace()")
    if np.ndim(first) == 0 and np.ndim(last) == 0 and (target in (np.float32, np.float64) or target.kind in "iu"):
        arr = torch_linspace_values(first, last, int(steps), target)  # host: placed by _made
    else:
        arr = np.linspace(first, last, int(steps), dtype=np.float64)  # host: placed by _made
    return _made(arr.astype(target), requires_grad, device, "linspace()")


@_torch_options
def logspace(
    start: Any,
    end: Any,
    steps: int,
    base: float = 10.0,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``base ** linspace(start, end, steps)`` (float32 by default)."""
    arr = np.logspace(_data_of(start), _data_of(end), int(steps), base=base, dtype=np.float64)
    return _made(arr.astype(_float_dtype(dtype)), requires_grad, device, "logspace()")


@_torch_options
def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity matrix (m = n by default)."""
    n, m = _int_if_index(n), _int_if_index(m)  # 0-d integer tensors too, as torch reads them through __index__
    for name, value in (("n", n), ("m", m)):
        if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0):
            raise ArgumentError(f"eye(): {name} must be a non-negative integer, got {value!r}")
    return _made(
        np.eye(int(n), None if m is None else int(m), dtype=_float_dtype(dtype)),  # host: a factory, placed by _made
        requires_grad,
        device,
        "eye()",
    )


from . import functional as _functional  # noqa: E402  (the ops need Tensor defined first)
from . import ops as _ops  # noqa: E402
from . import sparse as _sparse  # noqa: E402  (sparse COO tensors: layouts and Tensor.to_sparse)
from .ops import complex as _complex  # noqa: E402

_complex.install(Tensor)  # complex tensors' methods (real, imag, conj, angle) and their ops' rules
