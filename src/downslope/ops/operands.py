"""How ops take their operands: Python numbers and arrays lifted to tensors in the operand's dtype,
pairs promoted (PyTorch's int/float category rule), dims and axes checked.
"""

from __future__ import annotations

import builtins
import math
import sys
from typing import Any

import numpy as np

from .. import backend
from ..devices import device_of, is_array, to_device
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    InvalidValueError,
    NumberOverflowError,
    OutOfRangeError,
    ShapeError,
)
from ..tensor import Tensor, wrap_array

_builtin_max = builtins.max


_builtin_any = builtins.any


_builtin_all = builtins.all


_builtin_sum = builtins.sum


def _number(x: Any) -> Any:
    """A real NumPy scalar (``np.float64`` from ``arr.mean()``, ``np.int32``...) as the Python number torch
    reads it as (a "wrapped number": it neither widens a tensor's dtype nor is rounded to it first);
    anything else as it is.

    Example:
        >>> import numpy as np
        >>> type(_number(np.float32(0.5))), _number("a")
        (<class 'float'>, 'a')
    """
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        return x.item()  # host: a NumPy scalar is host data
    return x


def _lift(x: Any, like: Tensor | None = None) -> Tensor:
    """Make ``x`` a tensor. Python numbers and arrays adopt the floating dtype of ``like``, so
    ``float32_tensor * 2.0`` or ``* np.float64(...)`` stays float32 (no float64 creep)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":  # a NumPy scalar is a number, as in torch
        x = x.item()  # host: a NumPy scalar is host data
    if type(x) is float or type(x) is int:  # Python numbers first: the common case
        arr = np.asarray(x)  # host: a number from the caller is host data
    elif not is_array(x):
        if isinstance(x, (list, tuple)) and _holds_tensor(x):
            # NumPy would stack same-shape tensors into another tensor silently (or fail deep inside)
            _refuse_sequence_of_tensors(x)
        arr = np.asarray(x)  # host: a list from the caller is host data
    else:
        arr = x
    if arr.dtype.kind not in "fiub":
        if arr.dtype.kind == "c":  # kept complex: _pair promotes it by torch's complex rule
            return wrap_array(_onto_device_of(arr, like.array) if like is not None else arr)
        if isinstance(x, int):  # NumPy keeps an int beyond 64 bits as a Python object
            raise NumberOverflowError(f"cannot combine a tensor with the int {x}: it does not fit in 64 bits")
        raise ArgumentTypeError(f"cannot combine a tensor with {type(x).__name__} of dtype {arr.dtype}")
    if like is not None and like.array.dtype.kind == "f":
        if arr.dtype != like.array.dtype:
            if like.array.dtype.itemsize == 2:  # past float16's range is inf, as torch (which does not warn)
                with np.errstate(over="ignore"):
                    arr = arr.astype(like.array.dtype)
            else:
                arr = arr.astype(like.array.dtype)
    elif like is not None and (type(x) is int or isinstance(x, np.integer)) and like.array.dtype.kind in "iu":
        # A Python int (or a NumPy integer scalar, which torch takes as a number) takes an integer
        # tensor's dtype, as in PyTorch (int8 * 100 stays int8, wrapping; a 0-d int32 too).
        arr = arr.astype(like.array.dtype)
    elif like is not None and isinstance(x, np.integer) and like.array.dtype.kind == "b":
        arr = arr.astype(np.int64)  # a NumPy integer is a number in torch: beside booleans, int64 as an int
    elif arr.dtype.kind == "f" and arr.dtype != backend.get_default_dtype():
        arr = arr.astype(backend.get_default_dtype())
    if like is not None and type(like.array) is not np.ndarray:  # the host case pays only this check
        arr = _onto_device_of(arr, like.array)
    return wrap_array(arr)


def _holds_tensor(seq: list[Any] | tuple[Any, ...]) -> bool:
    """Whether a (nested) list or tuple has a Tensor in it."""
    return _builtin_any(isinstance(v, Tensor) or (isinstance(v, (list, tuple)) and _holds_tensor(v)) for v in seq)


def _refuse_sequence_of_tensors(x: list[Any] | tuple[Any, ...]) -> None:
    """Raise torch's TypeError for a list or tuple of Tensors where a tensor is expected (a forward
    hook that returned a tuple, ``F.relu([t1, t2])``), naming the op that was called."""
    import sys

    frame: Any = sys._getframe(2)  # the caller of _lift (or of its wrappers below)
    while frame is not None and frame.f_code.co_name.startswith(("_lift", "_pair", "_refuse")):
        frame = frame.f_back
    op = frame.f_code.co_name if frame is not None else "an op"
    kind = type(x).__name__
    raise ArgumentTypeError(
        f"{op}(): an argument must be Tensor (or numbers), not {kind}: got a {kind} of {len(x)} items holding "
        "Tensors where one tensor is expected (a forward hook that returns a tuple replaces the module's output)"
    )


def _onto_device_of(arr: Any, other: Any) -> Any:
    """Host data ``arr`` made fit to meet the device array ``other``: an array is copied to its device
    (never the reverse), a number becomes a NumPy scalar, which CuPy's kernels take as an argument
    (they refuse 0-d host arrays). Anything else is left as it is."""
    if type(arr) is not np.ndarray or not is_array(other):
        return arr
    return to_device(arr, device_of(other)) if arr.ndim else arr[()]


def _lift_float(x: Any) -> Tensor:
    """Like ``_lift``, but integer/bool input becomes the default float dtype (torch.exp(int) is float32);
    NumPy would give float64, and tricks like ``x * asarray(0.5, x.dtype)`` would truncate to 0."""
    if isinstance(x, Tensor) and x.array.dtype.kind == "f":
        return x  # the common case, first
    x = _lift(x)
    if x.array.dtype.kind != "f":
        if x.array.dtype.kind == "c":  # a cast to float would drop the imaginary part: refused, as torch does
            _refuse_complex(x)
        x = wrap_array(x.array.astype(backend.get_default_dtype()))
    return x


def _refuse_complex(x: Tensor) -> None:
    """Refuse a complex tensor where an op lifts its input to a real float, naming the op that was called
    (the first caller whose name has no leading underscore, past the op's private helpers)."""
    frame: Any = sys._getframe(2)
    while frame is not None and frame.f_code.co_name.startswith("_"):
        frame = frame.f_back
    op = frame.f_code.co_name if frame is not None else "this op"
    raise DTypeError(
        f"{op}: not implemented for complex tensors ({x.array.dtype}); take .real, .imag or .abs() first if that "
        "is what is meant"
    )


def _pair(a0: Any, b0: Any) -> tuple[Tensor, Tensor]:
    if isinstance(a0, Tensor):
        a, b = a0, _lift(b0, a0)
    elif isinstance(b0, Tensor):
        a, b = _lift(a0, b0), b0
    else:  # two plain values (e.g. ds.where(mask, 1.0, 0.0)): the default dtype policy applies to both
        a, b = _lift(a0), _lift(b0)
    if a.array.dtype is not b.array.dtype and a.array.dtype != b.array.dtype:
        # Mixed int/float tensors compute in the float dtype (PyTorch's category rule).
        ka, kb = a.array.dtype.kind, b.array.dtype.kind
        if ka == "c" or kb == "c":  # torch's complex rule, from the operands as given (a number's level)
            from .complex import complex_pair  # complex imports this module

            return complex_pair(a0, b0)
        if ka == "f" and kb != "f":
            b = wrap_array(b.array.astype(a.array.dtype))
        elif kb == "f" and ka != "f":
            a = wrap_array(a.array.astype(b.array.dtype))
        elif _category(ka) == _category(kb) and (a.ndim == 0) != (b.ndim == 0):
            # Within one category a 0-d tensor does not widen a tensor with dims (PyTorch's rule:
            # float32 * tensor(2.0, float64) stays float32); it takes the other's dtype.
            if a.ndim == 0:
                a = _cast_kept(a, b.array.dtype)
            else:
                b = _cast_kept(b, a.array.dtype)
    if type(a.array) is not type(b.array):  # two kinds of array: perhaps a host constant meeting a device tensor
        a, b = _scalar_on_device(a, b), _scalar_on_device(b, a)
    return a, b


def _cast_kept(t: Tensor, dtype: Any) -> Tensor:
    """``t`` in ``dtype``; a cast of a tensor that requires grad is recorded, so its gradient flows back."""
    if t.requires_grad:
        from .pointwise import astype  # pointwise imports this module

        return astype(t, dtype)
    try:
        return wrap_array(t.array.astype(dtype))
    except RuntimeWarning:  # a cast past the dtype's range under a user's "error" filter: inf, as torch
        from .pointwise import quietly

        return wrap_array(quietly(t.array.astype, dtype))


def _pair_float(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two operands of a floating binary op (true division, atan2, hypot...) in torch's result dtype:
    promoted together (float16 with int64 stays float16, a 0-d float64 lifts an integer tensor to
    float64), and integer or boolean operands each go straight to the default float dtype. Straight:
    torch computes in the result dtype, so ``uint8_tensor / 256`` divides by 256.0; promoting the
    pair first would wrap 256 (or a 0-d int64 tensor) into uint8."""
    if isinstance(a, Tensor) != isinstance(b, Tensor):  # another library's tensor: ours, on the other's device
        other = _foreign_tensor(b, a.array) if isinstance(a, Tensor) else _foreign_tensor(a, b.array)
        if other is not None:
            a, b = (a, other) if isinstance(a, Tensor) else (other, b)
    if _is_integral(a) and _is_integral(b):
        a, b = _lift_float(a), _lift_float(b)
        if type(a.array) is not type(b.array):  # a host number meeting a device tensor
            a, b = _scalar_on_device(a, b), _scalar_on_device(b, a)
        return a, b
    return _pair(a, b)


def _is_integral(x: Any) -> bool:
    """Whether ``x`` (a tensor, a number, an array or host data) holds integers or booleans."""
    if isinstance(x, Tensor):
        return x.array.dtype.kind in "iub"
    if type(x) is float:
        return False
    if type(x) is int or type(x) is bool:
        return True
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(dtype, "kind"):  # (another library's dtype, torch.int64 say, has no kind)
        dtype = np.asarray(x).dtype  # host: a number, a list or another library's array from the caller
    return dtype.kind in "iub"


def _wrapped_int(value: int, dtype: Any) -> Any:
    """The Python int ``value`` in the integer ``dtype``, wrapped modulo 2**bits as a C cast does:
    what torch does to a number that meets an integer tensor in an op computed in the tensor's dtype
    (``uint8_tensor & -2`` takes 254, ``uint8_tensor < 300`` compares with 44). NumPy refuses
    such numbers with an OverflowError instead.

    Example:
        >>> import numpy as np
        >>> _wrapped_int(-1, np.dtype(np.uint8)), _wrapped_int(300, np.dtype(np.int8))
        (np.uint8(255), np.int8(44))
    """
    bits = dtype.itemsize * 8
    if not -(1 << 63) <= value < 1 << 64:
        raise ArgumentError(f"the number {value} is out of the range of a 64-bit integer")
    value &= (1 << bits) - 1
    if dtype.kind == "i" and value >> (bits - 1):
        value -= 1 << bits
    return dtype.type(value)


def _foreign_tensor(other: Any, like: Any) -> Tensor | None:
    """``other`` as a tensor on ``like``'s device when it is another library's array (a torch tensor in
    half-ported code: it has ``__array__`` but is not an array of ours), else None. Converted through the
    host, as ``+`` and ``*`` convert it (a torch tensor that requires grad raises torch's own error)."""
    if isinstance(other, (Tensor, list, tuple, np.generic)) or is_array(other) or not hasattr(other, "__array__"):
        return None
    converted = np.asarray(other)  # host: another library's array converts through the host
    if type(like) is not np.ndarray:
        converted = _onto_device_of(converted, like)
    return wrap_array(converted)


def _compared(t: Tensor, other: Any) -> tuple[Any, Any]:
    """The two sides of a comparison of ``t`` with ``other``, as torch compares: in the pair's common
    dtype, so a Python int meeting an integer tensor wraps into its dtype (``uint8_tensor < -2``
    compares with 254) and a 0-d tensor of the same category takes the other's dtype
    (``float32_tensor == tensor(0.1, dtype=float64)`` rounds 0.1 to float32), where NumPy would
    compare the exact values.

    Example:
        >>> import downslope as ds
        >>> _compared(ds.tensor([3], dtype=ds.uint8), -2)[1]
        np.uint8(254)
    """
    arr = t.array
    if type(other) is float:  # the common case first
        if arr.dtype.kind in "iub":  # torch compares an integer tensor with a float in the default float dtype
            return arr.astype(backend.get_default_dtype()), other
        return arr, other
    if type(other) is int:
        return arr, (_wrapped_int(other, arr.dtype) if arr.dtype.kind in "iu" else other)
    if not isinstance(other, Tensor):
        if isinstance(other, np.generic) and other.dtype.kind in "biuf":
            return _compared(t, other.item())  # host: a NumPy scalar is a number in torch (uint8 < np.int8(-3))
        foreign = _foreign_tensor(other, arr)
        if foreign is not None:
            # another library's tensor (a torch one in half-ported code): converted as + and * convert
            # it, then compared as a tensor of its dtype; left as it is, NumPy's == would hand the
            # comparison to that library and the result would wrap one of its tensors
            return _compared(t, foreign)
        # a Python complex as a NumPy one: its dtype lets the ordering comparisons refuse it, as torch
        return arr, (np.complex128(other) if type(other) is complex else other)
    o = other.array
    if o.shape != arr.shape and o.ndim and arr.ndim:  # refused by name, as add's, not by NumPy's ValueError
        _check_broadcast("comparison", arr, o)
    kinds = o.dtype.kind + arr.dtype.kind
    if o.dtype != arr.dtype and kinds.count("f") == 1 and "c" not in kinds:
        # an integer or boolean side meets a float one: compared in the float dtype, whatever the dims
        # (torch's result_type: 2**24 + 1 equals 2.0**24 in float32)
        with np.errstate(over="ignore"):  # an int32 past float16's range compares as inf, as in torch
            return (arr, o.astype(arr.dtype)) if arr.dtype.kind == "f" else (arr.astype(o.dtype), o)
    if o.dtype != arr.dtype and (o.ndim == 0) != (arr.ndim == 0):
        if _category(o.dtype.kind) == _category(arr.dtype.kind):
            if o.ndim == 0:
                return arr, o.astype(arr.dtype)
            return arr.astype(o.dtype), o
    return arr, o


def _int_exponent(value: int, dtype: Any) -> int:
    """A Python int exponent of an integer or boolean tensor, checked as torch checks it: a negative
    one is refused (torch's integer powers of a number are 0, 1 or -1 there, so it asks for floats),
    and one out of the range of the result's dtype (int64 for a boolean base) too.

    Example:
        >>> import numpy as np
        >>> _int_exponent(3, np.dtype(np.uint8))
        3
    """
    if value < 0:
        raise InvalidValueError(
            "pow: Integers to negative integer powers are not allowed (make the base a float tensor)"
        )
    top = np.iinfo(np.int64 if dtype.kind == "b" else dtype).max
    if value > top:
        raise ArgumentError(f"pow: value {value} cannot be converted to {dtype} without overflow")
    return value


# The largest finite float16 and float32, by itemsize; the ops whose float writes torch leaves unchecked.
_FLOAT_MAX = {2: float(np.finfo(np.float16).max), 4: float(np.finfo(np.float32).max)}  # host: constants
_UNCHECKED_FLOAT_WRITES = frozenset({"__setitem__", "where"})


def _checked_scalar(value: Any, dtype: Any, op: str) -> Any:
    """A Python number written into a tensor of ``dtype`` (fill_, ``t[i] = v``, masked_fill, a clamp
    bound), converted as torch's checked conversion does: into an unsigned dtype an int in
    [-max, max] (negatives wrap: -1 is 255 in uint8), into a signed one an int in its range, a float
    into an integer dtype truncated toward zero when it lies in the dtype's range; anything else is
    refused. Into float16 or float32 a finite number past the dtype's largest is refused too (torch:
    "value cannot be converted to type c10::Half without overflow"), where NumPy would write inf;
    inf and NaN pass. ``t[i] = v`` and where() take any number, as in torch. Other values
    (tensors, arrays, float64 and boolean dtypes) pass as they are.

    Example:
        >>> import numpy as np
        >>> _checked_scalar(-1, np.dtype(np.uint8), "fill_")
        255
    """
    if isinstance(value, np.generic) and value.dtype.kind in "iuf":
        value = value.item()  # host: a NumPy scalar is a number in torch (np.int32(-7) is 249 in uint8)
    if type(value) is not int and type(value) is not float:
        return value
    if dtype.kind == "f":
        if dtype.itemsize < 8 and op not in _UNCHECKED_FLOAT_WRITES and abs(value) > _FLOAT_MAX[dtype.itemsize]:
            if value == value and abs(value) != math.inf:  # inf and NaN pass
                raise InvalidValueError(f"{op}: value {value!r} cannot be converted to {dtype} without overflow")
        return value
    if dtype.kind not in "iu":
        return value
    info = np.iinfo(dtype)
    low = -int(info.max) if dtype.kind == "u" and type(value) is int else int(info.min)
    if not low <= value <= int(info.max):  # a NaN fails the test too
        raise InvalidValueError(f"{op}: value {value!r} cannot be converted to {dtype} without overflow")
    return int(_wrapped_int(int(value), dtype))


def _checked_masked_value(data: Any, index: Any, dtype: Any) -> Any:
    """The value of ``t[mask] = value`` for an integer tensor ``t``: a one-element tensor value under a
    boolean mask is converted as a number is (torch writes it through masked_fill with its checked
    conversion: -2.0 into uint8 is refused, where a cast would wrap it to 254). Other indices and
    values pass as they are (torch wraps them); so do device values (reading one would wait)."""
    if type(data) is not np.ndarray or data.size != 1 or data.dtype.kind not in "iuf":
        return data
    mask = index.array if isinstance(index, Tensor) else index
    if type(mask) is not np.ndarray or mask.dtype.kind != "b":
        return data
    return _checked_scalar(data.item(), dtype, "t[mask] = value")  # host: a one-element host array


def _category(kind: str) -> str:
    """PyTorch's promotion categories: bool, integer (signed or not), floating."""
    return "i" if kind in "iu" else kind


def result_dtype(tensors: Any) -> np.dtype:
    """The dtype PyTorch gives a result of several tensors of equal standing (cat, stack): a complex or
    floating one if any is (complex of the widest precision, else the widest float; integers do not widen
    it, where NumPy makes float32 and int64 float64), else NumPy's promotion of the integers and booleans.

    Example:
        >>> import numpy as np, downslope as ds
        >>> result_dtype([ds.ones(2), ds.zeros(2, dtype=ds.int64)])
        dtype('float32')
    """
    dtypes = [t.array.dtype for t in tensors]
    floats = [d for d in dtypes if d.kind == "f" or d.kind == "c"]  # complex with float: NumPy's rule is torch's
    return np.result_type(*floats) if floats else np.result_type(*dtypes)


def result_dtype_by_rank(tensors: Any) -> np.dtype:
    """PyTorch's result dtype where 0-d tensors meet tensors with dims (block_diag): the tensors with
    dims decide (:func:`result_dtype`); the 0-d ones only lift it to a higher category (bool < integer <
    floating < complex), as torch's result_type does: float32 with a 0-d float64 stays float32.

    Example:
        >>> import downslope as ds
        >>> result_dtype_by_rank([ds.ones(2), ds.tensor(2.0, dtype=ds.float64)])
        dtype('float32')
    """
    dimmed = [t for t in tensors if t.ndim]
    zero_d = [t for t in tensors if not t.ndim]
    if not dimmed or not zero_d:
        return result_dtype(tensors)
    ranks = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}
    with_dims, of_zero_d = result_dtype(dimmed), result_dtype(zero_d)
    if ranks[of_zero_d.kind] <= ranks[with_dims.kind]:
        return with_dims
    if of_zero_d.kind == "c" and with_dims.kind == "f":  # complex of the dims' precision, as torch
        return backend.complex_of(with_dims)
    return of_zero_d


def _scalar_on_device(t: Tensor, other: Tensor) -> Tensor:
    """A 0-d host constant that meets a device tensor, as a NumPy scalar: the op and its rule then pass
    it to CuPy's kernels as an argument (CuPy refuses 0-d host arrays; torch lets 0-d CPU tensors join)."""
    arr = t.array
    if type(arr) is np.ndarray and arr.ndim == 0 and not t.requires_grad and is_array(other.array):
        return wrap_array(arr[()])
    return t


def _elementwise(fn: Any, name: str, a: Tensor, b: Tensor) -> np.ndarray:
    """``fn(a.array, b.array)`` for a pure ``fn`` (a new array, no ``out=``); shapes that do not broadcast
    get an error naming the op and the shapes (kept to one call and a try, which cost nothing on the hot
    path). torch gives inf and NaN without a word; NumPy's notes about them are silenced by downslope's
    warnings filter, but a user's ``warnings.simplefilter("error")`` put in front of it turns them into
    exceptions: then, and only then, the op is computed again with NumPy's floating-point errors ignored
    (no np.errstate on the common path, NumPy's global state left alone; see ``pointwise.quietly``)."""
    try:
        return fn(a.array, b.array)
    except RuntimeWarning:
        with np.errstate(all="ignore"):
            return _elementwise(fn, name, a, b)
    except ValueError:
        _check_broadcast(name, a.array, b.array)
        raise
    except TypeError:  # a 0-d host tensor meeting a device tensor (as torch allows): pass it as a scalar
        if a.array.dtype.kind == "c" or b.array.dtype.kind == "c":  # NumPy has no complex loop: refused by name
            raise DTypeError(
                f"{name}: not implemented for complex tensors (got {a.array.dtype} and {b.array.dtype}), as in torch"
            ) from None
        return fn(_host_scalar(a.array), _host_scalar(b.array))


def _host_scalar(arr: Any) -> Any:
    """A 0-d host array as a NumPy scalar (what CuPy's kernels take); any other array as it is."""
    return arr[()] if type(arr) is np.ndarray and arr.ndim == 0 else arr


def _check_broadcast(name: str, *arrays: np.ndarray) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ShapeError(f"{name}: shapes {shapes} do not broadcast together") from None


def _pick_axis(dim: Any, axis: Any) -> Any:
    if dim is not None and axis is not None:
        raise ArgumentTypeError("give either dim (PyTorch) or axis (NumPy), not both")
    return axis if dim is None else dim


def _norm_axes(axis: Any, ndim: int, empty_is_all: bool = True) -> tuple[int, ...]:
    """Reduction axes as a sorted tuple of non-negative ints (all axes for None). An empty tuple or
    list means all axes too, as torch's reductions read ``dim=()`` (sum, mean, amax, var, norm...);
    ``empty_is_all=False`` keeps it empty (flip and squeeze of no dims change nothing)."""
    if axis is None:
        return tuple(range(ndim))
    # A dim may be anything torch reads through __index__ (a 0-d integer tensor too); a bool is refused.
    single = None if isinstance(axis, (bool, np.bool_)) else backend.index_value(axis)
    if single is not None:
        axes: tuple[int, ...] = (single,)
    elif not isinstance(axis, (str, bytes, Tensor)) and hasattr(axis, "__iter__"):
        given = tuple(axis)
        dims = [None if isinstance(a, (bool, np.bool_)) else backend.index_value(a) for a in given]
        if None in dims:
            raise ArgumentTypeError(f"dim must be an int or a tuple of ints, got {axis!r}")
        axes = tuple(d for d in dims if d is not None)
    else:
        raise ArgumentTypeError(f"dim must be an int or a tuple of ints, got {axis!r}")
    if not axes and empty_is_all:
        return tuple(range(ndim))
    out = []
    for a in axes:
        if not -_builtin_max(ndim, 1) <= a < _builtin_max(ndim, 1):
            raise OutOfRangeError(f"dimension {a} is out of range for a tensor with {ndim} dimension(s)")
        normalized = a % _builtin_max(ndim, 1)
        if normalized in out:  # reducing it once would hide the caller's mistake; torch refuses it
            raise InvalidValueError(
                f"dim {normalized} appears multiple times in the list of dims {axis!r} (a tensor with {ndim} "
                "dimension(s))"
            )
        out.append(normalized)
    # A 0-d tensor accepts dim 0 or -1 (as in torch) and has no axis to reduce.
    return tuple(sorted(out)) if ndim else ()


def _dim(d: int, ndim: int, op: str) -> int:
    """``d`` in [-ndim, ndim) as a non-negative int; NumPy-style wrapping of other values would be silent."""
    if isinstance(d, (bool, np.bool_, float, np.floating)):  # int() would truncate 1.7 to 1 silently
        raise ArgumentTypeError(f"{op}(): argument 'dim' must be int, not {type(d).__name__} ({d!r})")
    index = backend.index_value(d)  # a 0-d integer tensor is a dim too, as torch reads it through __index__
    if index is not None:
        d = index
    n = _builtin_max(ndim, 1)
    if not -n <= d < n:
        raise OutOfRangeError(f"{op}: dimension {d} is out of range for a tensor with {ndim} dimension(s)")
    return int(d) % n


def _hyper_number(value: Any) -> Any:
    """A one-element real tensor given as a scalar hyperparameter (a norm's p, a shrink's lambda, a
    dropout probability) as the Python number torch reads from it; anything else as it is, for the
    op's own check to accept or refuse."""
    if isinstance(value, Tensor) and value.array.size == 1 and value.array.dtype.kind in "fiu":
        return value.item()  # host: the op's formula is picked with a Python number
    return value


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _data_of_index(index: Any) -> Any:
    return index.array if isinstance(index, Tensor) else index


def _index_array(index: Any) -> Any:
    """An index given as a tensor, an array of any device, a list or a number, as an array: arrays
    stay where they are; host data (lists, numbers) becomes a host array, which indexing a device
    array copies over (as CuPy does)."""
    a = index.array if isinstance(index, Tensor) else index
    if type(a) is np.ndarray or is_array(a):
        return a
    return np.asarray(a)  # host: the caller's index data (a list, a number) is host data


def broadcast_shapes(*shapes: Any) -> backend.Size:
    """The shape that tensors of ``shapes`` broadcast to (torch.broadcast_shapes), without making any
    tensor; a shape is an int or a sequence of ints.

    Example:
        >>> import downslope as ds
        >>> ds.broadcast_shapes((2, 1), (1, 3), 3)
        downslope.Size([2, 3])
    """
    given: list[tuple[int, ...]] = []
    for i, shape in enumerate(shapes):
        dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
        if isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
            raise ArgumentTypeError(
                f"broadcast_shapes: shapes must be ints or sequences of ints, got {shape!r} (argument {i})"
            )
        dims = tuple(dims)
        if not all(isinstance(n, (int, np.integer)) for n in dims):
            raise ArgumentTypeError(f"broadcast_shapes: a shape must hold ints, got {shape!r} (argument {i})")
        if _builtin_any(n < 0 for n in dims):
            raise InvalidValueError(f"broadcast_shapes: a dimension cannot be negative, got {shape!r} (argument {i})")
        given.append(tuple(int(n) for n in dims))
    try:
        return backend.Size(np.broadcast_shapes(*given))
    except ValueError:
        raise ShapeError(
            f"broadcast_shapes: shapes {', '.join(map(str, given))} do not broadcast to one shape (each dim, "
            "counted from the last, must be equal or 1 in every shape)"
        ) from None


# The public name of the dim check, for the packages above ops (nn's layers): PyTorch's rule, a dim in
# [-ndim, ndim) (or [-1, 0] for a 0-d tensor), else an OutOfRangeError naming the op.
normalize_dim = _dim
