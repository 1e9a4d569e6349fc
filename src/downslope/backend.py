"""The array namespace, the dtype policy and the library's one random generator.

The array namespace comes from the data, never from a global switch: :func:`namespace_of` answers
NumPy for host arrays, CuPy for CUDA arrays and :mod:`downslope.devices.strict` for the test
stand-in, and code that creates arrays takes ``xp = namespace_of(some_input)`` (or uses
``np.zeros_like(x)``, which dispatches). float32 is the default for every floating tensor the
library creates; float64 only when asked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ArgumentError, ArgumentTypeError

xp = np  # the host namespace (code that can meet device arrays uses namespace_of instead)


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


_erf_host = np.frompyfunc(math.erf, 1, 1)


def erf(a: Any) -> Any:
    """The error function of an array, in the array's namespace: on the host exact (math.erf per
    element: correct but not fast), on CuPy ``cupyx.scipy.special.erf``, on the strict stand-in its
    ``special.erf``.

    Example:
        >>> import numpy as np
        >>> from downslope.backend import erf
        >>> erf(np.zeros(2, np.float32)).tolist()
        [0.0, 0.0]
    """
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(_erf_host(a), dtype=a.dtype)  # host: a host array's values, computed on the host
    if type(a).__module__.startswith("cupy"):
        import cupyx.scipy.special  # type: ignore[import-not-found, unused-ignore]

        return cupyx.scipy.special.erf(a)
    return namespace_of(a).special.erf(a)


class _NoSuchDtype:
    """A dtype name PyTorch has and NumPy lacks (``bfloat16``): ported code may name it (``autocast(dtype=
    ds.bfloat16)``), and a tensor asked to hold it is refused with the reason."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"downslope.{self.name}"


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

_FLOAT_KINDS = "f"
_ACCEPTED_KINDS = "fiub"  # float, signed int, unsigned int, bool

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
    """Resolve a dtype given as a NumPy dtype, a string, or a Python type; refuse unsupported kinds."""
    if dtype is float:
        return _default_dtype
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
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
    if resolved.kind not in _ACCEPTED_KINDS:
        raise ArgumentTypeError(f"unsupported dtype {resolved}: downslope tensors hold floats, integers or booleans")
    return resolved


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind in _FLOAT_KINDS


# One generator for every random draw the library makes (init, dropout, shuffling, randn...).
# manual_seed reseeds this object in place, so modules holding a reference stay in sync.
_rng = np.random.Generator(np.random.PCG64())


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


def manual_seed(seed: int) -> np.random.Generator:
    """Seed every random source downslope uses, so that a run can be repeated exactly.

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(0); a = ds.randn(3)
        >>> _ = ds.manual_seed(0); bool((ds.randn(3).numpy() == a.numpy()).all())
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"manual_seed: expected an integer seed, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ArgumentError(f"manual_seed: expected a non-negative seed, got {seed}")
    global _initial_seed
    _rng.bit_generator.state = np.random.PCG64(int(seed)).state
    _initial_seed = int(seed)
    return _rng


_initial_seed: int | None = None


def initial_seed() -> int | None:
    """The seed last given to :func:`manual_seed` (or :func:`seed`); None before any."""
    return _initial_seed


def seed() -> int:
    """Seed the generator from the operating system's entropy and return the seed used."""
    value = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] % (2**63))
    manual_seed(value)
    return value


def get_rng_state() -> dict[str, Any]:
    """The generator's state as a JSON-able dict (for checkpoints)."""
    return dict(_rng.bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ArgumentError("set_rng_state: expected a state dict from get_rng_state() (bit_generator 'PCG64')")
    _rng.bit_generator.state = state


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
