"""A strict CPU stand-in for a GPU array library (testing only).

``StrictArray`` wraps a NumPy array and behaves like a CuPy array as far as downslope's code can
tell: NumPy's functions and ufuncs dispatch to it (NEP-13 ``__array_ufunc__``, NEP-18
``__array_function__``) and give stand-in arrays back, views share memory, reductions give 0-d
arrays rather than host scalars, and ``.get()`` copies to the host. Everything CuPy refuses or pays
a device-to-host transfer for is refused here with a TypeError:

- implicit conversion to a host array (``np.asarray(x)``, ``np.array(x)``: ``__array__``);
- ``float(x)``, ``int(x)``, ``bool(x)``, ``x.item()``, ``x.tolist()`` (a hidden synchronisation);
- mixing with a host ``np.ndarray`` that is not 0-d in one ufunc or array function (the host array
  was made with ``np.zeros(...)`` and friends instead of ``xp.zeros(...)`` from the data's namespace).

It also tells when CuPy would make the host wait for the GPU (a synchronisation): ``.get()``, and the
operations whose result's size depends on the data (indexing with a boolean mask, to read or to write;
``nonzero`` and its relatives; ``unique``; ``repeat`` by an array). Each one is counted
(:func:`synchronizations`), and inside ``with allow_synchronize(False):`` each one raises
:class:`DeviceSynchronized`, as ``cupyx.allow_synchronize(False)`` does on CuPy, so a test can prove that
a training step never waits for the device. Host->device copies (:func:`copies_to_device`) and array
operations, each a kernel launch on a GPU (:func:`operations`), are counted too. Only the functions,
ufuncs and array methods CuPy has are let through (``_cupy_names.py``, generated from CuPy).

So running the test suite on the ``"strict"`` device proves, without a GPU, that no op, layer or
optimizer bypasses the array namespace of its data. It is not meant for real work: it is NumPy with
a wrapper around every call, and slower.

Example:
    >>> from downslope.devices import strict
    >>> x = strict.asarray([1.0, 2.0])
    >>> float((x * 2).sum().get())
    6.0
"""

from __future__ import annotations

import contextlib
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError
from ._cupy_names import FUNCTIONS, UFUNCS

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed (strict device stand-in, like CuPy). "
    "Please use `.get()` to construct a NumPy array explicitly, or take the namespace from the data "
    "(downslope.backend.namespace_of(array))."
)


def _missing(what: str) -> ArgumentTypeError:
    return ArgumentTypeError(
        f"{what} on a strict-device array: CuPy has no such function (its API is listed in "
        "downslope/devices/_cupy_names.py), so this line would fail on a GPU; use a function CuPy has"
    )


def _transfer_error(what: str) -> ArgumentTypeError:
    return ArgumentTypeError(
        f"{what} of a strict-device array: implicit device->host transfer (a GPU would synchronise here); "
        "keep the value on the device, or copy it explicitly with .get() where the host needs it"
    )


def _mixing_error(where: str, host: np.ndarray) -> ArgumentTypeError:
    return ArgumentTypeError(
        "Expected all tensors to be on the same device, but found at least two devices, strict and cpu! "
        f"({where}: a strict-device array mixed with a host numpy.ndarray of shape {host.shape} "
        f"(dtype {host.dtype}); on CuPy this is 'Unsupported type <class 'numpy.ndarray'>'. Create arrays with "
        "the data's namespace (xp = downslope.backend.namespace_of(x); xp.zeros(...)) or np.zeros_like(x))"
    )


def _scalar_error(where: str, host: np.ndarray) -> ArgumentTypeError:
    return ArgumentTypeError(
        f"{where}: a strict-device array met a 0-d host numpy.ndarray (dtype {host.dtype}); CuPy takes Python and "
        "NumPy scalars (2.0, np.float32(2.0)) as kernel arguments but refuses 0-d host arrays ('Unsupported type "
        "<class 'numpy.ndarray'>'): pass a Python number or a NumPy scalar (a[()]) instead"
    )


class DeviceSynchronized(RuntimeError):
    """A synchronisation inside ``allow_synchronize(False)`` (``cupyx.DeviceSynchronized`` on CuPy)."""


_sync = threading.local()
_sync_count = [0]


@contextlib.contextmanager
def allow_synchronize(allow: bool) -> Iterator[None]:
    """Within the block, a synchronisation raises :class:`DeviceSynchronized` unless ``allow``
    (``cupyx.allow_synchronize`` on CuPy; per thread).

    Example:
        >>> from downslope.devices import strict
        >>> x = strict.asarray([1.0, -2.0])
        >>> with strict.allow_synchronize(False):
        ...     y = x * 2  # stays on the device
        >>> with strict.allow_synchronize(False):
        ...     x[x < 0] = 0.0  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        downslope.devices.strict.DeviceSynchronized: ...
    """
    saved = getattr(_sync, "allowed", True)
    _sync.allowed = allow
    try:
        yield
    finally:
        _sync.allowed = saved


def synchronizations() -> int:
    """How many synchronisations the stand-in has seen so far in this process (all threads)."""
    return _sync_count[0]


_copy_count = [0]


def copies_to_device() -> int:
    """How many host->device copies the stand-in has made so far in this process: ``asarray``/``array``
    of host data, and host index arrays (CuPy copies them over before it indexes)."""
    return _copy_count[0]


_operation_count = [0]


def operations() -> int:
    """How many array operations (ufuncs, NumPy functions, array methods, assignments, gathers by an
    index array) strict-device arrays have run so far in this process: on a GPU each is at least one
    kernel launch, which costs the host about 10 microseconds whatever the array's size, so a step's
    count bounds its speed on small arrays."""
    return _operation_count[0]


def _synchronize(what: str) -> None:
    _sync_count[0] += 1
    if not getattr(_sync, "allowed", True):
        raise DeviceSynchronized(
            f"{what} on a strict-device array: on a GPU the host would wait for the device here "
            "(inside allow_synchronize(False))"
        )


def _is_mask(index: Any) -> bool:
    """A boolean array used as an index (CuPy counts its True values on the host before it can index)."""
    if isinstance(index, StrictArray):
        return index._a.dtype == np.bool_ and index._a.ndim > 0
    if isinstance(index, np.ndarray):
        return index.dtype == np.bool_ and index.ndim > 0
    if isinstance(index, list):
        return any(isinstance(i, (bool, np.bool_)) for i in index)
    return False


def _check_mask(key: Any, what: str) -> None:
    if any(_is_mask(k) for k in (key if isinstance(key, tuple) else (key,))):
        _synchronize(f"{what} with a boolean mask (the result's size is the mask's count of True)")


# NumPy functions whose result's size depends on the data: CuPy reads that size back to the host.
_DATA_SIZED = frozenset(("nonzero", "argwhere", "flatnonzero", "compress", "extract", "unique", "bincount"))


def _check_function(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in _DATA_SIZED:
        _synchronize(f"numpy.{name}")
    elif name == "where" and len(args) + len(kwargs) == 1:
        _synchronize("numpy.where(condition) (it is nonzero)")
    elif name == "repeat":
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        if isinstance(repeats, (StrictArray, np.ndarray, list, tuple)):
            _synchronize("numpy.repeat by an array of counts")


# CuPy turns 0-d host arrays into scalars for these ufuncs only (a workaround for numpy/numpy#12142).
_COMPARISONS = frozenset(("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"))


def _unwrap(obj: Any, where: str, zero_d: bool = True) -> Any:
    """The NumPy values inside ``obj`` (recursing into lists, tuples and dicts), refusing host arrays
    (and 0-d host arrays too unless ``zero_d``: CuPy's kernels take scalars, not 0-d host arrays)."""
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, np.ndarray):
        if obj.ndim != 0:
            raise _mixing_error(where, obj)
        if not zero_d:
            raise _scalar_error(where, obj)
        return obj
    if isinstance(obj, (list, tuple)):
        items = [_unwrap(o, where, zero_d) for o in obj]
        return type(obj)(items) if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        return {k: _unwrap(v, where, zero_d) for k, v in obj.items()}
    return obj


def _wrap(obj: Any) -> Any:
    """Stand-in arrays for the NumPy results in ``obj`` (host scalars become 0-d arrays, as on CuPy)."""
    if isinstance(obj, np.ndarray):
        return StrictArray(obj)
    if isinstance(obj, np.generic):
        return StrictArray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


def _index(key: Any) -> Any:
    """An index with stand-in arrays unwrapped (host index arrays are allowed: CuPy copies them over)."""
    if isinstance(key, StrictArray):
        return key._a
    if isinstance(key, tuple):
        if any(isinstance(k, (np.ndarray, list)) for k in key):
            _copy_count[0] += 1
        return tuple(k._a if isinstance(k, StrictArray) else k for k in key)
    if isinstance(key, (np.ndarray, list)):
        _copy_count[0] += 1
    return key


def _into(ufunc: Any, target: StrictArray, other: Any) -> Any:
    """``target op= other`` written into ``target``'s own memory."""
    out: Any = (target,)
    return ufunc(target, other, out=out)


# The ndarray methods CuPy's ndarray has (the ones that stay on the device); each is NumPy's, rewrapped.
_METHODS = frozenset(
    "all any argmax argmin argpartition argsort astype clip compress conj conjugate copy cumprod cumsum diagonal "
    "dot fill flatten max mean min nonzero partition prod put ravel repeat reshape round sort squeeze std sum "
    "swapaxes take trace transpose var view".split()
)
# Attributes read as they are (metadata, no values).
_ATTRIBUTES = frozenset("shape dtype ndim size itemsize nbytes strides flags".split())


# The stand-in array that owns each NumPy buffer (weakly held), so that a view's ``.base`` is that very
# object, as CuPy's is (downslope tells views from copies by ``view.base is owner``).
_owners: weakref.WeakValueDictionary[int, StrictArray] = weakref.WeakValueDictionary()


class StrictArray:
    """A NumPy array behind a CuPy-like wall (see the module docstring). ``.get()`` is the way out."""

    __slots__ = ("_a", "_base", "__weakref__")

    def __init__(self, array: np.ndarray) -> None:
        self._a = array
        self._base: StrictArray | None = None
        if array.base is None:
            if _owners.get(id(array)) is None:
                _owners[id(array)] = self
        else:  # a view: its base is the stand-in array that owns the memory (held, as CuPy's view holds it)
            owner = array
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            self._base = _owners.get(id(owner))

    # ------------------------------------------------------------------ the protocols
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if ufunc.__name__ not in UFUNCS:
            raise _missing(where)
        _operation_count[0] += 1
        args = _unwrap(inputs, where, ufunc.__name__ in _COMPARISONS)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _unwrap(out, where)
        for key in ("where",):
            if key in kwargs:
                kwargs[key] = _unwrap(kwargs[key], where)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        where = f"numpy.{func.__name__}"
        path = func.__module__.partition(".")[2]  # CuPy looks the function up as cupy.<path>.<name>
        if func.__name__ not in FUNCTIONS.get(path, ()):
            raise _missing(f"{func.__module__}.{func.__name__}")
        _operation_count[0] += 1
        _check_function(func.__name__, args, kwargs)
        result = func(*_unwrap(args, where, False), **_unwrap(kwargs, where, False))
        out = kwargs.get("out")
        if isinstance(out, StrictArray):
            return out
        return _wrap(result)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise ArgumentTypeError(_IMPLICIT)

    # ------------------------------------------------------------------ explicit transfer
    def get(self) -> np.ndarray:
        """A host copy (CuPy's ``ndarray.get``): the host waits for the device."""
        _synchronize(".get()")
        return self._a.copy()

    # ------------------------------------------------------------------ implicit transfers: refused
    def __float__(self) -> float:
        raise _transfer_error("float()")

    def __int__(self) -> int:
        raise _transfer_error("int()")

    def __index__(self) -> int:
        raise _transfer_error("operator.index()")

    def __bool__(self) -> bool:
        raise _transfer_error("bool()")

    def __complex__(self) -> complex:
        raise _transfer_error("complex()")

    def item(self, *args: Any) -> Any:
        raise _transfer_error(".item()")

    def tolist(self) -> Any:
        raise _transfer_error(".tolist()")

    def tobytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise _transfer_error(".tobytes()")

    def __iter__(self) -> Any:
        if self._a.ndim == 0:
            raise ArgumentTypeError("iteration over a 0-d array")
        return (StrictArray(row) if isinstance(row, np.ndarray) else StrictArray(np.asarray(row)) for row in self._a)

    # ------------------------------------------------------------------ metadata and methods
    def __getattr__(self, name: str) -> Any:
        if name in _ATTRIBUTES:
            return getattr(self._a, name)
        if name in _METHODS:
            method = getattr(self._a, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                _check_function(name, (self, *args), kwargs)
                _operation_count[0] += 1
                return _wrap(method(*_unwrap(args, f"ndarray.{name}"), **_unwrap(kwargs, f"ndarray.{name}")))

            return call
        raise AttributeError(f"'StrictArray' object has no attribute {name!r} (CuPy's ndarray has none either)")

    @property
    def T(self) -> StrictArray:  # noqa: N802  (ndarray's name)
        return StrictArray(self._a.T)

    @property
    def mT(self) -> StrictArray:  # noqa: N802
        return StrictArray(np.swapaxes(self._a, -1, -2))

    @property
    def base(self) -> StrictArray | None:
        return self._base

    @property
    def device(self) -> str:
        return "strict"

    def __len__(self) -> int:
        return len(self._a)

    def __repr__(self) -> str:
        return "strict_array(" + np.array2string(self._a, separator=", ") + f", dtype={self._a.dtype})"

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, key: Any) -> StrictArray:
        _check_mask(key, "indexing")
        if any(isinstance(k, (StrictArray, np.ndarray, list)) for k in (key if isinstance(key, tuple) else (key,))):
            _operation_count[0] += 1  # an advanced index gathers (a kernel); slices and integers make views
        found = self._a[_index(key)]
        if isinstance(found, np.generic):  # one element: CuPy gives a 0-d view of it (NumPy a scalar copy)
            found = self._a[(*_index(key), Ellipsis) if isinstance(key, tuple) else (_index(key), Ellipsis)]
        return _wrap(found)

    def __setitem__(self, key: Any, value: Any) -> None:
        _check_mask(key, "assignment")
        _operation_count[0] += 1  # a copy or fill kernel
        self._a[_index(key)] = _unwrap(value, "__setitem__")

    # ------------------------------------------------------------------ operators (through the ufuncs)
    def __add__(self, o: Any) -> Any:
        return np.add(self, o)

    def __radd__(self, o: Any) -> Any:
        return np.add(o, self)

    def __sub__(self, o: Any) -> Any:
        return np.subtract(self, o)

    def __rsub__(self, o: Any) -> Any:
        return np.subtract(o, self)

    def __mul__(self, o: Any) -> Any:
        return np.multiply(self, o)

    def __rmul__(self, o: Any) -> Any:
        return np.multiply(o, self)

    def __truediv__(self, o: Any) -> Any:
        return np.true_divide(self, o)

    def __rtruediv__(self, o: Any) -> Any:
        return np.true_divide(o, self)

    def __floordiv__(self, o: Any) -> Any:
        return np.floor_divide(self, o)

    def __rfloordiv__(self, o: Any) -> Any:
        return np.floor_divide(o, self)

    def __mod__(self, o: Any) -> Any:
        return np.remainder(self, o)

    def __rmod__(self, o: Any) -> Any:
        return np.remainder(o, self)

    def __pow__(self, o: Any) -> Any:
        return np.power(self, o)

    def __rpow__(self, o: Any) -> Any:
        return np.power(o, self)

    def __matmul__(self, o: Any) -> Any:
        return np.matmul(self, o)

    def __rmatmul__(self, o: Any) -> Any:
        return np.matmul(o, self)

    def __and__(self, o: Any) -> Any:
        return np.bitwise_and(self, o)

    def __rand__(self, o: Any) -> Any:
        return np.bitwise_and(o, self)

    def __or__(self, o: Any) -> Any:
        return np.bitwise_or(self, o)

    def __ror__(self, o: Any) -> Any:
        return np.bitwise_or(o, self)

    def __xor__(self, o: Any) -> Any:
        return np.bitwise_xor(self, o)

    def __rxor__(self, o: Any) -> Any:
        return np.bitwise_xor(o, self)

    def __lshift__(self, o: Any) -> Any:
        return np.left_shift(self, o)

    def __rshift__(self, o: Any) -> Any:
        return np.right_shift(self, o)

    def __neg__(self) -> Any:
        return np.negative(self)

    def __pos__(self) -> Any:
        return np.positive(self)

    def __abs__(self) -> Any:
        return np.absolute(self)

    def __invert__(self) -> Any:
        return np.invert(self)

    def __lt__(self, o: Any) -> Any:
        return np.less(self, o)

    def __le__(self, o: Any) -> Any:
        return np.less_equal(self, o)

    def __gt__(self, o: Any) -> Any:
        return np.greater(self, o)

    def __ge__(self, o: Any) -> Any:
        return np.greater_equal(self, o)

    def __eq__(self, o: Any) -> Any:
        return np.equal(self, o)

    def __ne__(self, o: Any) -> Any:
        return np.not_equal(self, o)

    def __iadd__(self, o: Any) -> Any:
        return _into(np.add, self, o)

    def __isub__(self, o: Any) -> Any:
        return _into(np.subtract, self, o)

    def __imul__(self, o: Any) -> Any:
        return _into(np.multiply, self, o)

    def __itruediv__(self, o: Any) -> Any:
        return _into(np.true_divide, self, o)

    def __ifloordiv__(self, o: Any) -> Any:
        return _into(np.floor_divide, self, o)

    def __ipow__(self, o: Any) -> Any:
        return _into(np.power, self, o)

    def __imod__(self, o: Any) -> Any:
        return _into(np.remainder, self, o)

    def __iand__(self, o: Any) -> Any:
        return _into(np.bitwise_and, self, o)

    def __ior__(self, o: Any) -> Any:
        return _into(np.bitwise_or, self, o)

    def __ixor__(self, o: Any) -> Any:
        return _into(np.bitwise_xor, self, o)


# ---------------------------------------------------------------------- the namespace (like ``cupy``)


def asarray(obj: Any, dtype: Any = None) -> StrictArray:
    """Host data (or a stand-in array) as a stand-in array: the explicit host->device copy."""
    if isinstance(obj, StrictArray):
        return obj if dtype is None or obj._a.dtype == np.dtype(dtype) else StrictArray(obj._a.astype(dtype))
    _copy_count[0] += 1
    return StrictArray(np.array(obj, dtype=dtype, copy=True))


def array(obj: Any, dtype: Any = None, copy: bool = True) -> StrictArray:
    if isinstance(obj, StrictArray):
        return StrictArray(obj._a.astype(dtype or obj._a.dtype, copy=copy))
    _copy_count[0] += 1
    return StrictArray(np.array(obj, dtype=dtype, copy=True))


def asnumpy(a: Any) -> np.ndarray:
    """A host copy of ``a`` (``cupy.asnumpy``); host data comes back as an array."""
    return a.get() if isinstance(a, StrictArray) else np.asarray(a)


def _creator(fn: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        return _wrap(fn(*_unwrap(args, fn.__name__), **_unwrap(kwargs, fn.__name__)))

    make.__name__ = fn.__name__
    make.__doc__ = f"numpy.{fn.__name__}, giving a strict-device array."
    return make


zeros = _creator(np.zeros)
empty = _creator(np.zeros)  # zeros: uninitialised memory would make tests irreproducible
ones = _creator(np.ones)
full = _creator(np.full)
arange = _creator(np.arange)
eye = _creator(np.eye)
linspace = _creator(np.linspace)
zeros_like = np.zeros_like
empty_like = np.empty_like
ones_like = np.ones_like
full_like = np.full_like
ndarray = StrictArray


class Generator:
    """``cupy.random.Generator``-like: draws on the host generator, returns stand-in arrays."""

    def __init__(self, bit_generator: Any = None) -> None:
        self._g = np.random.Generator(bit_generator if bit_generator is not None else np.random.PCG64())

    def __getattr__(self, name: str) -> Any:
        return _creator(getattr(self._g, name))


def _erf(a: StrictArray) -> StrictArray:
    """``cupyx.scipy.special.erf``'s stand-in: the host's erf, in the array's dtype."""
    from ..backend import erf

    return StrictArray(erf(a._a))


def _erfc(a: StrictArray) -> StrictArray:
    """``cupyx.scipy.special.erfc``'s stand-in: the host's erfc, in the array's dtype."""
    from ..backend import erfc

    return StrictArray(erfc(a._a))


special = types.SimpleNamespace(erf=_erf, erfc=_erfc)  # cupyx.scipy.special's functions that downslope uses

random = types.SimpleNamespace(
    Generator=Generator,
    default_rng=lambda seed=None: Generator(np.random.PCG64(seed)),
)


def _as_strided(x: StrictArray, shape: Any = None, strides: Any = None) -> StrictArray:
    """``cupy.lib.stride_tricks.as_strided``: a strided view of ``x``'s memory (strides in bytes)."""
    return StrictArray(np.lib.stride_tricks.as_strided(x._a, shape, strides))


# cupy.lib.stride_tricks (NumPy's own as_strided does not dispatch: it converts its argument to a host array).
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))


def __getattr__(name: str) -> Any:
    """Any other NumPy function that CuPy has too: it dispatches on its stand-in arguments; results come
    back wrapped. Constants and types (``pi``, ``float32``) are NumPy's own."""
    fn = getattr(np, name)
    if callable(fn) and not isinstance(fn, type):
        if name not in FUNCTIONS[""]:
            raise AttributeError(f"module 'cupy' has no attribute {name!r} (strict device stand-in: CuPy lacks it)")
        return _creator(fn)
    return fn
