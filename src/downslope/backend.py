"""The array namespace, the dtype policy and the library's one random generator.

The array namespace comes from the data, never from a global switch: :func:`namespace_of` answers
NumPy for host arrays, CuPy for CUDA arrays and :mod:`downslope.devices.strict` for the test
stand-in, and code that creates arrays takes ``xp = namespace_of(some_input)`` (or uses
``np.zeros_like(x)``, which dispatches). float32 is the default for every floating tensor the
library creates; float64 only when asked.
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from typing import Any

import numpy as np

from .errors import ArgumentError, ArgumentTypeError

xp = np  # the host namespace (code that can meet device arrays uses namespace_of instead)

# NumPy's floating-point notes ("divide by zero encountered", "invalid value encountered", "overflow
# encountered") from the library's own array code: its results are torch's (inf, NaN, a masked branch
# of where, sqrt's gradient at 0), and torch says nothing. A filter on the modules that compute tensors
# costs nothing while no warning is raised (np.errstate around a pass slows every ufunc call in it);
# the user's own NumPy code, and downslope's data and training code, keep NumPy's warnings.
_NUMPY_NOTES = (r"(divide by zero|invalid value|overflow) encountered", RuntimeWarning)
_COMPLEX_WARNING = np.exceptions.ComplexWarning
_KERNEL_MODULES = (
    r"downslope\.(ops\.|nn\.|distributions\.|(tensor|autograd|graph|functional|inplace|special|linalg|func|amp|gemm)$)"
)


def quiet_numpy_notes() -> None:
    """Install the filter that silences NumPy's floating-point warnings raised in downslope's kernels.

    ``import downslope`` calls it. Filters added inside ``warnings.catch_warnings()`` (pytest imports
    test modules in one, and resets the filters for each test) are dropped when the block ends: call
    this again there. Idempotent, and it never moves the filter ahead of filters added after it, so a
    later ``warnings.simplefilter("error")`` still wins. The user's own NumPy code keeps its warnings.

    Example:
        >>> import warnings
        >>> from downslope.backend import quiet_numpy_notes
        >>> with warnings.catch_warnings():
        ...     quiet_numpy_notes()
        ...     before = len(warnings.filters)
        ...     quiet_numpy_notes()  # already there: nothing added
        ...     len(warnings.filters) == before
        True
    """
    message, category = _NUMPY_NOTES
    if not any(
        f[0] == "ignore"
        and f[2] is category
        and getattr(f[1], "pattern", None) == message
        and getattr(f[3], "pattern", None) == _KERNEL_MODULES
        for f in warnings.filters
    ):
        warnings.filterwarnings("ignore", message=message, category=category, module=_KERNEL_MODULES)
    if not any(f[0] == "error" and f[2] is _COMPLEX_WARNING for f in warnings.filters):
        # a last safety net only (a user's filterwarnings("ignore") overrides it): the ops check complex
        # operands themselves; a complex array cast to a real dtype inside an op would drop the imaginary part
        warnings.filterwarnings("error", category=_COMPLEX_WARNING, module=_KERNEL_MODULES)


quiet_numpy_notes()


def namespace_of(array: Any) -> Any:
    """The array module that ``array`` belongs to: ``numpy``, ``cupy``, or the strict stand-in.

    Python and NumPy scalars belong to NumPy. Only the array's type is looked at (no import of CuPy).

    Example:
        >>> import numpy as np
        >>> from downslope.backend import namespace_of
        >>> namespace_of(np.zeros(2)) is np
        True
    """
    if type(array) is np.ndarray:
        return np
    module = type(array).__module__
    if module.startswith("downslope.devices"):
        from .devices import strict

        return strict
    if module.startswith("cupy"):
        import cupy  # type: ignore[import-not-found, unused-ignore]

        return cupy
    return np


def as_array(value: Any) -> Any:
    """An op's result as an array: NumPy hands 0-d results (a full reduction, one element) back as
    scalars (``np.float32``), which become 0-d host arrays; arrays of any namespace pass through (CuPy
    and the strict stand-in already give 0-d arrays). No copy and no device transfer.

    Example:
        >>> import numpy as np
        >>> from downslope.backend import as_array
        >>> as_array(np.ones(3).sum()).shape
        ()
    """
    return np.asarray(value) if isinstance(value, np.generic) else value  # host: a NumPy scalar is on the host


def erf(a: Any) -> Any:
    """The error function of a real floating array, in the array's namespace and dtype: on the host
    fdlibm's rational approximations on whole arrays (``ops._erf``), on CuPy
    ``cupyx.scipy.special.erf``, on the strict stand-in its ``special.erf``.

    Example:
        >>> import numpy as np
        >>> from downslope.backend import erf
        >>> erf(np.zeros(2, np.float32)).tolist()
        [0.0, 0.0]
    """
    from .ops._erf import erf_array  # the ops package imports this module

    return erf_array(a)


def erfc(a: Any) -> Any:
    """The complementary error function of a real floating array (as :func:`erf`), accurate in the
    upper tail where 1 - erf(x) is 0.

    Example:
        >>> import numpy as np
        >>> from downslope.backend import erfc
        >>> print(f"{float(erfc(np.array(6.0))):.12e}")
        2.151973671250e-17
    """
    from .ops._erf import erfc_array

    return erfc_array(a)


class _NoSuchDtype:
    """A dtype name PyTorch has and NumPy lacks (``bfloat16``): ported code may name it (``autocast(dtype=
    ds.bfloat16)``), and a tensor asked to hold it is refused with the reason."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"downslope.{self.name}"

    # torch.dtype's attributes, which mixed-precision code reads (bfloat16's values, as PyTorch's)
    is_floating_point = True
    is_complex = False
    is_signed = True
    itemsize = 2


bfloat16: Any = _NoSuchDtype("bfloat16")
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
complex64 = np.dtype(np.complex64)
complex128 = np.dtype(np.complex128)

_FLOAT_KINDS = "f"
_ACCEPTED_KINDS = "fiubc"  # float, signed int, unsigned int, bool, complex

_default_dtype: np.dtype = float32


def get_default_dtype() -> np.dtype:
    """The dtype given to floating data when none is asked for (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Change the default floating dtype, e.g. ``set_default_dtype("float64")``."""
    global _default_dtype
    resolved = as_dtype(dtype)
    if resolved.kind not in _FLOAT_KINDS:
        raise ArgumentTypeError(f"set_default_dtype: expected a floating dtype, got {resolved}")
    _default_dtype = resolved


def as_dtype(dtype: Any) -> np.dtype:
    """Resolve a dtype given as a NumPy dtype, a string, or a Python type; refuse unsupported kinds.

    Python's ``float`` is float64 whatever the default dtype, as in PyTorch (and NumPy).

    Example:
        >>> as_dtype(float), as_dtype(int), as_dtype("float32")
        (dtype('float64'), dtype('int64'), dtype('float32'))
    """
    if dtype is float:
        return float64
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    if hasattr(dtype, "shape") and not isinstance(dtype, (type, np.dtype)):
        # np.dtype() reads a tensor or an array as the dtype of its elements: x.view(n) with n a 0-d
        # integer tensor would then reinterpret the bytes where the caller meant a size
        raise ArgumentTypeError(f"expected a dtype, got a {type(dtype).__name__} {dtype!r}")
    if isinstance(dtype, _NoSuchDtype) or dtype == "bfloat16":
        raise ArgumentTypeError(
            "unsupported dtype bfloat16: NumPy has no bfloat16 type, so downslope tensors cannot hold it; use float32 "
            "(autocast(dtype=bfloat16) is accepted and computes in float32)"
        )
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ArgumentTypeError(
            f"unknown dtype {dtype!r}; expected e.g. 'float32', 'float64', 'int64' or 'bool'"
        ) from exc
    if resolved.kind not in _ACCEPTED_KINDS or resolved.isbuiltin == 2:
        # isbuiltin 2: a dtype another library registered with NumPy (ml_dtypes, imported by onnx and
        # others, adds complex32 as kind "c" and bfloat16/float8 types): NumPy's own ops do not compute
        # in them, so they are refused whatever name reached them
        raise ArgumentTypeError(
            f"unsupported dtype {resolved}: downslope tensors hold complex numbers, floats, integers or booleans "
            "of NumPy's own dtypes (no half-precision complex, bfloat16 or float8)"
        )
    return resolved


def index_value(value: Any) -> int | None:
    """``value`` as a Python int where torch takes it as one through ``__index__`` (an int, a NumPy
    integer, a 0-d integer array, a one-element integer tensor), else None (a float, a float tensor, a
    sequence). A bool counts as an int, as in Python: callers that refuse bools check them first."""
    if isinstance(value, int):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (str, bytes, float, np.floating)) or not hasattr(type(value), "__index__"):
        return None
    try:
        return operator.index(value)
    except TypeError:  # a float tensor or array, or an integer one of more than one element
        return None


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind in _FLOAT_KINDS


def complex_of(dtype: np.dtype) -> np.dtype:
    """The complex dtype whose parts have ``dtype``'s precision (torch's toComplexType): complex128 for
    float64, complex64 for the other real dtypes, a complex dtype itself.

    Example:
        >>> complex_of(float64), complex_of(float32)
        (dtype('complex128'), dtype('complex64'))
    """
    if dtype.kind == "c":
        return dtype
    return complex128 if dtype == float64 else complex64


def real_of(dtype: np.dtype) -> np.dtype:
    """The real dtype of a complex dtype's parts (float32 for complex64); a real dtype itself.

    Example:
        >>> real_of(complex128)
        dtype('float64')
    """
    return (float64 if dtype == complex128 else float32) if dtype.kind == "c" else dtype


class memory_format:  # noqa: N801  (torch's name)
    """torch's memory layouts (``ds.contiguous_format``, ``ds.preserve_format``, ``ds.channels_last``,
    ``ds.channels_last_3d``): accepted wherever torch takes ``memory_format=``. A tensor's
    ``.contiguous()``, ``.clone()``, ``.to()`` and ``is_contiguous()`` follow them as torch's do (the
    copy's strides); elsewhere (``empty_like``, ``Module.to``, the layers' outputs) they are ignored.

    Example:
        >>> contiguous_format
        downslope.contiguous_format
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"downslope.{self.name}"

    def __reduce__(self) -> str:
        return self.name  # a module-level singleton: copies are the object itself


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")


class Size(tuple[int, ...]):  # a tuple of ints, like torch.Size
    """A shape: a tuple of ints with ``numel()`` (PyTorch's ``torch.Size``), what ``tensor.shape`` and
    ``tensor.size()`` return. Slicing, ``+`` and ``*`` keep the type, it compares and hashes as the
    plain tuple, and ``Tensor(Size([2, 3]))`` makes a 2x3 tensor (a plain tuple there is data).

    Example:
        >>> s = Size([2, 3])
        >>> s.numel(), s[1:], s + (4,), s == (2, 3), s[0]
        (6, downslope.Size([3]), downslope.Size([2, 3, 4]), True, 2)
    """

    __slots__ = ()

    def __new__(cls, sizes: Any = ()) -> Size:
        try:
            items = tuple(sizes)
        except TypeError as exc:
            raise ArgumentTypeError(f"Size(): expected an iterable of ints, got {type(sizes).__name__}") from exc
        out = []
        for i, item in enumerate(items):
            value = None
            if not isinstance(item, (float, complex, str, bytes)) and hasattr(item, "__index__"):
                try:  # an integer tensor or 0-d array reads as its value, as in torch; a float one is refused
                    value = item.__index__()
                except (TypeError, ValueError):
                    value = None
            if value is None:
                # torch's words: NumPy's types by their qualified names, Python's (and ours) by their own
                name = type(item).__name__
                if isinstance(item, (np.generic, np.ndarray)):
                    name = f"numpy.{name}"
                raise ArgumentTypeError(f"Size() takes an iterable of 'int' (item {i} is '{name}')")
            out.append(value)
        return tuple.__new__(cls, out)

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds (1 for ``Size([])``)."""
        return math.prod(self)

    def __repr__(self) -> str:
        return f"downslope.Size({list(self)})"

    __str__ = __repr__

    # The overrides below run on every shape a tensor hands out (``x.shape[0]``, ``x.shape[1:]``,
    # ``x.shape + (1,)``): each calls tuple's own C slot at once, with no per-item checks.
    def __getitem__(self, index: Any) -> Any:
        if index.__class__ is slice:
            return _new_tuple(Size, _tuple_getitem(self, index))
        return _tuple_getitem(self, index)

    def __add__(self, other: Any) -> Size:
        if not isinstance(other, tuple):
            return NotImplemented
        return _new_tuple(Size, _tuple_add(self, other))

    def __radd__(self, other: Any) -> Size:
        if not isinstance(other, tuple):
            return NotImplemented
        return _new_tuple(Size, _tuple_add(other, self))

    def __mul__(self, count: Any) -> Size:
        return _new_tuple(Size, _tuple_mul(self, count))

    __rmul__ = __mul__

    def __reduce__(self) -> Any:
        return (Size, (tuple(self),))


_new_tuple = tuple.__new__
_tuple_getitem = tuple.__getitem__
_tuple_add = tuple.__add__
_tuple_mul = tuple.__mul__


# One generator for every random draw the library makes (init, dropout, shuffling, randn...).
# manual_seed reseeds this object in place, so modules holding a reference stay in sync. Like PyTorch's
# default generator it starts from a seed drawn from the operating system's entropy, and remembers it
# (initial_seed), so that a run that never called manual_seed can still be repeated.
_initial_seed: int = int.from_bytes(os.urandom(8), "little")
_rng = np.random.Generator(np.random.PCG64(_initial_seed))
_default_rng = _rng  # the library generator itself (use_generator swaps _rng for a block)


def rng() -> np.random.Generator:
    """The library's random generator (seed it with :func:`manual_seed`)."""
    return _rng


def random_like(shape: tuple[int, ...], like: Any, dtype: Any = np.float32) -> Any:
    """Uniform draws in [0, 1) of ``shape`` on ``like``'s device: the masks of dropout and the slopes of
    rrelu, drawn on every training step.

    For host arrays they come from :func:`rng`. On a device they are drawn on the device, so that no
    step waits for numbers drawn on the host and copied over (on a GPU that would cost more than the
    layer): each draw takes one 63-bit key from :func:`rng` and the device's counter-based generator
    (Philox on CUDA) turns it into the array. The draws are then a function of the host generator's
    state alone, so a seeded run repeats on its device and a run resumed from a checkpoint (which
    holds that state) draws what an uninterrupted run would; they are not the host's draws.

    Example:
        >>> import numpy as np
        >>> from downslope import backend
        >>> _ = backend.manual_seed(0)
        >>> backend.random_like((2, 3), np.zeros(1)).shape
        (2, 3)
    """
    xp = namespace_of(like)
    if xp is np:
        return _rng.random(shape, dtype=dtype)
    return _keyed_uniform(xp, int(_rng.integers(2**63)), shape, dtype)


_curand_generators: dict[int, Any] = {}  # one cuRAND Philox generator per CUDA device, re-keyed for every draw


def _keyed_uniform(xp: Any, key: int, shape: tuple[int, ...], dtype: Any) -> Any:
    """Uniform draws in [0, 1) of ``shape`` in namespace ``xp``, a function of ``key`` alone."""
    if xp.__name__ == "cupy":
        device = xp.cuda.Device().id
        generator = _curand_generators.get(device)
        if generator is None:
            # Philox is counter-based: seeding it is a host call, where XORWOW (CuPy's default) would
            # rebuild its state on the device after every new key.
            philox = xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10
            generator = _curand_generators[device] = xp.random.RandomState(key, method=philox)
        else:
            generator.seed(key)
        return generator.random_sample(shape, dtype=dtype)
    return xp.random.default_rng(key).random(shape, dtype=dtype)


def check_seed(seed: Any, where: str) -> int:
    """``seed`` as PyTorch takes it: an integer in [-2**63, 2**64), negatives wrapped modulo 2**64.

    Example:
        >>> check_seed(-1, "manual_seed") == 2**64 - 1
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"{where}: expected an integer seed, got {type(seed).__name__} {seed!r}")
    value = int(seed)
    if not -(2**63) <= value < 2**64:
        raise ArgumentError(f"{where}: the seed must lie in [-2**63, 2**64) as in PyTorch, got {value}")
    return value % 2**64


def manual_seed(seed: int) -> Any:
    """Seed every random source downslope uses, so that a run can be repeated exactly; returns the
    default :class:`~downslope.Generator` (as ``torch.manual_seed`` returns ``torch.default_generator``).

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(0); a = ds.randn(3)
        >>> _ = ds.manual_seed(0); bool((ds.randn(3).numpy() == a.numpy()).all())
        True
    """
    global _initial_seed
    value = check_seed(seed, "manual_seed")
    _default_rng.bit_generator.state = np.random.PCG64(value).state
    _initial_seed = value
    from .generator import default_generator

    return default_generator


def initial_seed() -> int:
    """The seed of the library generator: the last one given to :func:`manual_seed` or :func:`seed`, or
    the one drawn from the operating system's entropy at import (as PyTorch's ``initial_seed``).

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(5); ds.initial_seed()
        5
    """
    return _initial_seed


def seed() -> int:
    """Seed the generator from the operating system's entropy and return the (64-bit) seed used.

    Example:
        >>> import downslope as ds
        >>> ds.seed() == ds.initial_seed()
        True
    """
    value = int.from_bytes(os.urandom(8), "little")
    manual_seed(value)
    return value


# A generator state as bytes: the tag, PCG64's 128-bit state and increment, its buffered 32-bit half
# (flag and value) and the seed initial_seed reports; little-endian, fixed size.
_STATE_TAG = b"dsR1"
_STATE_SIZE = 4 + 16 + 16 + 1 + 4 + 8


def pack_rng_state(generator: np.random.Generator, seed: int) -> np.ndarray:
    """A PCG64 generator's position and its seed as a uint8 array (what ``get_state`` returns).

    Example:
        >>> pack_rng_state(np.random.Generator(np.random.PCG64(0)), 0).shape
        (49,)
    """
    state = generator.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise ArgumentError(f"get_state: only PCG64 generators can be saved, this one is {state.get('bit_generator')}")
    raw = (
        _STATE_TAG
        + int(state["state"]["state"]).to_bytes(16, "little")
        + int(state["state"]["inc"]).to_bytes(16, "little")
        + bytes([int(state["has_uint32"])])
        + int(state["uinteger"]).to_bytes(4, "little")
        + int(seed).to_bytes(8, "little")
    )
    return np.frombuffer(raw, dtype=np.uint8).copy()


def unpack_rng_state(new_state: Any, where: str) -> tuple[dict[str, Any], int | None]:
    """The PCG64 state dict and seed held by ``new_state``: a uint8 Tensor or array from
    :func:`pack_rng_state`, its bytes, or the dict :func:`get_rng_state` returned before (seed None).

    Example:
        >>> state, seed = unpack_rng_state(pack_rng_state(np.random.Generator(np.random.PCG64(3)), 3), "set_state")
        >>> state["bit_generator"], seed
        ('PCG64', 3)
    """
    if isinstance(new_state, dict):  # checkpoints written before the state was a tensor
        if new_state.get("bit_generator") != "PCG64":
            raise ArgumentError(f"{where}: expected a state from get_rng_state() (bit_generator 'PCG64')")
        inner = new_state.get("state", {})
        try:
            fixed = {**new_state, "state": {k: int(v) for k, v in inner.items()}}
        except (TypeError, ValueError, AttributeError) as exc:
            raise ArgumentError(f"{where}: not a generator state ({exc})") from None
        return fixed, None
    if isinstance(new_state, (bytes, bytearray)):
        raw = bytes(new_state)
    else:
        arr = getattr(new_state, "array", new_state)  # a Tensor's array
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 1:
            what = (
                f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray) else type(new_state).__name__
            )
            raise ArgumentTypeError(f"{where}: expected a uint8 tensor from get_state()/get_rng_state(), got {what}")
        raw = arr.tobytes()
    if len(raw) != _STATE_SIZE or not raw.startswith(_STATE_TAG):
        raise ArgumentError(
            f"{where}: expected a state of {_STATE_SIZE} bytes from get_state()/get_rng_state() "
            f"(a PyTorch state does not fit), got {len(raw)} bytes"
        )
    state = {
        "bit_generator": "PCG64",
        "state": {"state": int.from_bytes(raw[4:20], "little"), "inc": int.from_bytes(raw[20:36], "little")},
        "has_uint32": raw[36],
        "uinteger": int.from_bytes(raw[37:41], "little"),
    }
    return state, int.from_bytes(raw[41:49], "little")


def get_rng_state() -> Any:
    """The library generator's state as a uint8 Tensor (as PyTorch's; the bytes differ), for checkpoints:
    ``ds.save`` stores it and :func:`set_rng_state` restores the stream and :func:`initial_seed`.

    Example:
        >>> import downslope as ds
        >>> state = ds.get_rng_state(); a = ds.rand(2)
        >>> ds.set_rng_state(state); ds.rand(2).tolist() == a.tolist()
        True
    """
    from .tensor import wrap_array

    return wrap_array(pack_rng_state(_default_rng, _initial_seed))


def set_rng_state(new_state: Any) -> None:
    """Restore a state returned by :func:`get_rng_state` (a uint8 Tensor; the dict older versions
    returned is accepted too).

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(1); state = ds.get_rng_state(); _ = ds.manual_seed(2)
        >>> ds.set_rng_state(state); ds.initial_seed()
        1
    """
    global _initial_seed
    state, seed_value = unpack_rng_state(new_state, "set_rng_state")
    try:
        _default_rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ArgumentError(f"set_rng_state: not a generator state ({exc})") from None
    if seed_value is not None:
        _initial_seed = seed_value


class use_generator:  # noqa: N801  (used like a function: `with use_generator(g):`)
    """Within the block, :func:`rng` is ``generator`` (a numpy.random.Generator): how a torch-style
    ``generator=`` argument reaches the code that draws. Not thread-safe, like the default generator."""

    def __init__(self, generator: np.random.Generator | None) -> None:
        self.generator = generator

    def __enter__(self) -> None:
        global _rng
        self._saved = _rng
        if self.generator is not None:
            _rng = self.generator

    def __exit__(self, *exc: object) -> None:
        global _rng
        _rng = self._saved
