"""Parameter (a trainable weight) and Buffer (saved state that is not trained)."""

from __future__ import annotations

import copy
import weakref
from typing import Any

import numpy as np

from ... import backend
from ...errors import ArgumentTypeError, DTypeError, UninitializedError
from ...tensor import Tensor, empty, to_array, wrap_array

_PLACEHOLDER = np.zeros(0, np.float32)  # host: a constant, never computed with


class Parameter(Tensor):
    """A tensor that a Module treats as a trainable weight (``requires_grad=True``, float32 by default).

    Floating data keeps the library's default dtype (float32) unless ``dtype`` is given. A Tensor
    is shared, not copied (as ``torch.nn.Parameter`` does). An integer or bool Tensor is refused, as
    in PyTorch, since only floating tensors have gradients, unless ``requires_grad=False`` (it then
    keeps its dtype); integer lists and NumPy arrays become float32.

    Example:
        >>> import downslope as ds
        >>> p = ds.nn.Parameter([1.0, 2.0])
        >>> p.requires_grad, p.dtype
        (True, dtype('float32'))
        >>> ds.nn.Parameter(ds.tensor([1, 2]), requires_grad=False).dtype
        dtype('int64')
    """

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None) -> None:
        if data is None:
            data = empty(0)
        if isinstance(data, Tensor) and dtype is None:
            arr = data.array  # share memory, like torch.nn.Parameter(tensor)
        else:
            arr = to_array(data, dtype)
            if arr.dtype.kind not in "fc" and dtype is None:
                # lists and arrays (which PyTorch's Parameter does not take): the library's float dtype
                arr = arr.astype(backend.get_default_dtype())
        if requires_grad and arr.dtype.kind not in "fc":  # floating and complex, as in torch
            raise DTypeError(
                "Only Tensors of floating point and complex dtype can require gradients: nn.Parameter got "
                f"{arr.dtype} data; cast it (e.g. data.float()) or pass requires_grad=False"
            )
        # Tensor's constructor would copy its data (and refuses device arrays): it gets a tiny
        # placeholder, and the parameter holds ``arr`` itself.
        super().__init__(_PLACEHOLDER, requires_grad=False)
        self.array = arr
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # As torch's Parameter.__deepcopy__: a new parameter over a copy of the values with the same
        # requires_grad, and nothing else (no .grad, hooks or attributes; a plain Tensor's copy keeps
        # its .grad). A copied model (a federated client, a target network) starts without gradients.
        if id(self) in memo:
            return memo[id(self)]  # tied weights stay tied
        result = type(self)(wrap_array(copy.deepcopy(self.array, memo)), self.requires_grad)
        memo[id(self)] = result
        return result


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
            data = empty(0)
        arr = data.array if isinstance(data, Tensor) else to_array(data)
        super().__init__(None, requires_grad=False)  # the buffer holds ``arr`` itself (no copy, any device)
        self.array = arr
        self.persistent = persistent


# Tensor's own slot for the values: the uninitialized classes below hide it behind a property that refuses.
_ARRAY_SLOT: Any = Tensor.__dict__["array"]

_UNINITIALIZED_USE = (
    "Attempted to use an uninitialized parameter ({what}). This error happens when you are using a "
    "`LazyModule` or explicitly manipulating `downslope.nn.parameter.{cls}` objects. When using LazyModules "
    "call `forward` with a dummy batch to initialize the parameters before calling downslope functions"
)
_UNINITIALIZED_SHAPE = (
    "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
    "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
    "`forward` to initialize the parameters before accessing their attributes."
)


class UninitializedTensorMixin:
    """What :class:`UninitializedParameter` and :class:`UninitializedBuffer` share: no values until
    :meth:`materialize` gives them a shape; until then only the dtype, the device and the casts that
    change them work, and anything that needs the values raises (PyTorch's behaviour)."""

    __slots__ = ()
    cls_to_become: type

    @property
    def array(self) -> Any:
        raise UninitializedError(_UNINITIALIZED_USE.format(what="its values", cls=type(self).__name__))

    @array.setter
    def array(self, value: Any) -> None:
        _ARRAY_SLOT.__set__(self, value)

    @property
    def _placeholder(self) -> Any:
        """The empty array that remembers the dtype and device the values will get."""
        return _ARRAY_SLOT.__get__(self)

    @property
    def data(self) -> Tensor:
        """An empty tensor of the dtype and device the values will get, as PyTorch's ``.data`` of an
        uninitialized parameter: an init written into it (``lazy.weight.data.normal_(0, 0.01)``
        before the first forward, as d2l does) changes nothing, and the first forward initializes
        the values as the plain layer does."""
        return wrap_array(self._placeholder)

    @data.setter
    def data(self, value: Any) -> None:
        Tensor.data.__set__(self, value)  # type: ignore[attr-defined]

    @property
    def shape(self) -> Any:
        raise UninitializedError(_UNINITIALIZED_SHAPE)

    @property
    def dtype(self) -> np.dtype:
        return self._placeholder.dtype

    @property
    def device(self) -> Any:
        from ...devices import device_of

        return device_of(self._placeholder)

    @property
    def requires_grad(self) -> bool:
        return bool(Tensor.__dict__["_requires_grad"].__get__(self))  # host: a Python flag

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Any:
        if requires_grad and self._placeholder.dtype.kind not in "fc":
            raise ArgumentTypeError(
                f"only floating point and complex tensors can require gradients; this tensor is {self._placeholder.dtype}"
            )
        Tensor.__dict__["_requires_grad"].__set__(self, bool(requires_grad))  # host: a Python flag
        return self

    def size(self, dim: int | None = None) -> Any:
        raise UninitializedError(_UNINITIALIZED_SHAPE)

    def numel(self) -> int:
        raise UninitializedError(_UNINITIALIZED_USE.format(what="numel", cls=type(self).__name__))

    def dim(self) -> int:
        raise UninitializedError(_UNINITIALIZED_USE.format(what="dim", cls=type(self).__name__))

    @property
    def ndim(self) -> int:
        raise UninitializedError(_UNINITIALIZED_USE.format(what="ndim", cls=type(self).__name__))

    def _retype(self, dtype: Any = None, device: Any = None) -> None:
        """Change the dtype (a cast) or the device (a move) the values will be made with."""
        from ...devices import to_device

        arr = self._placeholder
        if dtype is not None:
            arr = arr.astype(backend.as_dtype(dtype))
        if device is not None:
            arr = to_device(arr, device)
        _ARRAY_SLOT.__set__(self, arr)

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Give the tensor values of ``shape`` (zeros; a lazy module then initializes them) in its
        dtype and on its device, or the ones given, and turn it into a plain Parameter (or Tensor).

        Example:
            >>> from downslope import nn
            >>> p = nn.UninitializedParameter()
            >>> p.materialize((2, 3))
            >>> type(p).__name__, p.shape
            ('Parameter', downslope.Size([2, 3]))
        """
        from ...devices import device_of, to_device

        placeholder = self._placeholder
        dt = placeholder.dtype if dtype is None else backend.as_dtype(dtype)
        if isinstance(shape, int):
            shape = (shape,)
        where = device_of(placeholder) if device is None else device
        values = to_device(np.zeros(tuple(int(s) for s in shape), dt), where)  # host: made here, then moved
        self.__class__ = self.cls_to_become
        self.array = values

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.requires_grad, dtype=self.dtype)  # type: ignore[call-arg]
        result._retype(device=self.device)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (type(self), (self.requires_grad, None, self.dtype))


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (a lazy module's, until its first forward):
    PyTorch's ``torch.nn.parameter.UninitializedParameter``. Only its dtype and device can be read or
    changed; :meth:`materialize` turns it into a plain :class:`Parameter`.

    Example:
        >>> import downslope as ds
        >>> p = ds.nn.UninitializedParameter(dtype=ds.float64)
        >>> p, p.dtype, p.requires_grad
        (<UninitializedParameter>, dtype('float64'), True)
    """

    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None) -> None:
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        super().__init__(np.zeros(0, dt), requires_grad=False, dtype=dt)  # host: an empty placeholder
        if device is not None:
            self._retype(device=device)
        self.requires_grad_(requires_grad)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (a lazy norm layer's running statistics): PyTorch's
    ``torch.nn.parameter.UninitializedBuffer``; :meth:`materialize` turns it into a plain Tensor.

    Example:
        >>> from downslope import nn
        >>> b = nn.UninitializedBuffer()
        >>> b.materialize((3,))
        >>> type(b).__name__, b.tolist()
        ('Tensor', [0.0, 0.0, 0.0])
    """

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(
        self, requires_grad: bool = False, device: Any = None, dtype: Any = None, persistent: bool = True
    ) -> None:
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        super().__init__(None, requires_grad=False)
        self.array = np.zeros(0, dt)  # host: an empty placeholder
        if device is not None:
            self._retype(device=device)
        self.requires_grad_(requires_grad)
        _BUFFER_PERSISTENT[id(self)] = bool(persistent)  # host: a Python flag
        weakref.finalize(self, _BUFFER_PERSISTENT.pop, id(self), None)

    @property
    def persistent(self) -> bool:
        """Whether a module that gets this buffer by assignment saves it in ``state_dict``."""
        return _BUFFER_PERSISTENT.get(id(self), True)


# UninitializedBuffer keeps Tensor's slots (so it can become a plain Tensor): its flag lives here.
_BUFFER_PERSISTENT: dict[int, bool] = {}


def is_lazy(param: Any) -> bool:
    """Whether ``param`` is an :class:`UninitializedParameter` or :class:`UninitializedBuffer`.

    Example:
        >>> from downslope import nn
        >>> nn.parameter.is_lazy(nn.LazyLinear(2).weight), nn.parameter.is_lazy(nn.Linear(1, 2).weight)
        (True, False)
    """
    return isinstance(param, UninitializedTensorMixin)
