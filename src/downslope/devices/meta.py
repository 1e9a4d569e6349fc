"""The ``"meta"`` device: arrays with a shape and a dtype but no values, as PyTorch's meta tensors.

PyTorch's model-ensembling recipe moves a copy of a model there (``copy.deepcopy(model).to('meta')``)
to keep its structure for ``torch.func.functional_call``, which then runs it with other parameters.
A :class:`MetaArray` has what describes an array (``shape``, ``dtype``, ``ndim``, ``size``,
``itemsize``, ``nbytes``, ``strides``, ``flags``) and copies of itself; everything that would read
values (an op, NumPy's functions and ufuncs, indexing, arithmetic, conversion to a host array or a
number) raises :class:`~downslope.errors.UnimplementedError`: "a meta tensor holds no data". The
check lives in the array type itself, so the tensors of every other device pay nothing for it.

Unlike PyTorch, ops on meta tensors are not run to infer the shapes of their results: they raise.

Example:
    >>> import numpy as np
    >>> from downslope.devices import meta
    >>> m = meta.empty((2, 3), np.float32)
    >>> m.shape, m.dtype, m.size
    ((2, 3), dtype('float32'), 6)
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError, UnimplementedError

NO_DATA = "a meta tensor holds no data"


def _no_data(what: str) -> UnimplementedError:
    return UnimplementedError(
        f"{what}: {NO_DATA} (device 'meta' keeps only shapes and dtypes, as torch's meta tensors); "
        "move the module or tensor to 'cpu' with to_empty(device='cpu') and load or initialize its values, "
        "or pass the values to ds.func.functional_call"
    )


class MetaArray:
    """An array of ``shape`` and ``dtype`` with no values (see the module docstring)."""

    __slots__ = ("shape", "dtype", "__weakref__")

    # NumPy's ufuncs and functions call these with a MetaArray: each refuses
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raise _no_data(f"numpy.{getattr(ufunc, '__name__', ufunc)}")

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        raise _no_data(f"numpy.{getattr(func, '__name__', func)}")

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def strides(self) -> tuple[int, ...]:
        """A contiguous array's (in bytes), as PyTorch's meta tensors report."""
        steps, step = [], self.dtype.itemsize
        for n in reversed(self.shape):
            steps.append(step)
            step *= max(n, 1)
        return tuple(reversed(steps))

    @property
    def flags(self) -> types.SimpleNamespace:
        # writeable: an in-place op then reaches the write itself, which raises NO_DATA
        return types.SimpleNamespace(c_contiguous=True, f_contiguous=self.ndim <= 1, writeable=True)

    @property
    def base(self) -> None:
        return None

    def copy(self) -> MetaArray:
        """Another meta array of the same shape and dtype (copying reads no values)."""
        return MetaArray(self.shape, self.dtype)

    def __copy__(self) -> MetaArray:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> MetaArray:
        return self.copy()

    def __reduce__(self) -> Any:
        return (MetaArray, (self.shape, self.dtype.str))

    def __repr__(self) -> str:
        return f"MetaArray(shape={tuple(self.shape)}, dtype={self.dtype})"

    def __len__(self) -> int:
        if not self.shape:
            raise ArgumentTypeError("len() of a 0-d meta array")
        return self.shape[0]

    def __getattr__(self, name: str) -> Any:
        # any other array method (sum, reshape, astype, item, get, ...) would read or lay out values
        raise _no_data(f"array.{name}")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_data("conversion to a host array")

    def __getitem__(self, index: Any) -> Any:
        raise _no_data("indexing")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise _no_data("writing into it")

    def __bool__(self) -> bool:
        raise _no_data("bool()")

    def __float__(self) -> float:
        raise _no_data("float()")

    def __int__(self) -> int:
        raise _no_data("int()")

    def __iter__(self) -> Any:
        raise _no_data("iteration")


def _refuse_operator(name: str) -> Any:
    def refuse(self: MetaArray, *args: Any) -> Any:
        raise _no_data(f"operator {name}")

    refuse.__name__ = name
    return refuse


for _name in (
    "add radd iadd sub rsub isub mul rmul imul truediv rtruediv itruediv floordiv rfloordiv ifloordiv "
    "mod rmod imod pow rpow ipow matmul rmatmul imatmul and rand iand or ror ior xor rxor ixor lshift "
    "rlshift ilshift rshift rrshift irshift neg pos abs invert lt le gt ge eq ne"
).split():
    setattr(MetaArray, f"__{_name}__", _refuse_operator(f"__{_name}__"))
MetaArray.__hash__ = object.__hash__  # type: ignore[method-assign]


def empty(shape: Any, dtype: Any) -> MetaArray:
    """A meta array of ``shape`` and ``dtype``."""
    return MetaArray(tuple(shape) if not isinstance(shape, (int, np.integer)) else (int(shape),), dtype)


def like(array: Any) -> MetaArray:
    """A meta array of ``array``'s shape and dtype (its values are not read)."""
    return MetaArray(tuple(array.shape), array.dtype)


def refuse_copy_out(where: str) -> UnimplementedError:
    """The error for moving a meta array to a device that holds values (torch: "Cannot copy out of meta tensor")."""
    return _no_data(f"{where}: cannot copy out of a meta tensor")


__all__ = ["MetaArray", "NO_DATA", "empty", "like", "refuse_copy_out"]
