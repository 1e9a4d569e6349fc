"""The gate of the optional compiled path: whether numba kernels may run on some arrays, and the
switches that turn them off.

``pip install downslope[jit]`` installs numba; ops and layers then use compiled kernels where they
apply (the core's softmax and log_softmax, ``ops._jit_softmax``; the nn layers' pooling,
convolutions, normalisation and activations, through ``downslope.nn._jit``), and NumPy everywhere
else. Without numba, with the environment variable ``DOWNSLOPE_JIT=0``, or inside
:func:`disabled`, everything runs on NumPy alone with the same results (the parity tests run both
paths against PyTorch).

The gate sits in the core, below nn, so that core ops can use it too (imports run one way, core
<- nn); ``downslope.nn._jit`` answers for the nn kernels through it, so one switch turns off both.

A kernels module is imported on the first call that could use it, never at ``import downslope``.
Kernels compile on first use and are cached on disk, so only the first process on a machine pays
the compile time; but every process pays for loading them, once, on the first call that takes a
kernel: numba's import (~0.5 s) and the first cached kernel's load (~0.8 s, setting up numba's
compiler state; later kernels load in milliseconds), 1.2-1.5 s in all on a 2-core machine with the
cache warm (a kernels module that imports more of numba, such as ``nn._jit_attention``, ~0.5 s
more). That is why the callers take kernels only above size thresholds where the time a call saves
earns this back (``ops.reductions.JIT_SOFTMAX_MIN_SIZE`` and the nn layers' own), and why small
work (a small model's token-by-token generation) stays on NumPy in every process.

Below its threshold a call takes NumPy even where a larger call has loaded the kernels: which path a
call takes is a function of the call alone (its sizes, its arrays' types and dtypes, the switch),
never of what ran earlier in the process. The kernels may round differently from the NumPy steps in
the last bit, so a path that changed once the kernels were loaded would make a seeded run repeated in
one process give different bits on its first run than on later ones (``tests/test_jit_determinism.py``).

The import is not moved to a background thread while NumPy serves the calls meanwhile: the compiled
kernels' results may differ from the NumPy steps' in the last bit (their sums accumulate
differently), so a program's numbers would depend on when the import finished, run to run; and the
import holds the interpreter lock most of the time (measured: the main thread stalled up to 0.1 s at
a time, the import itself took 1.8 s instead of 1.3 s), so the pause would only be spread out.

numba works on host NumPy arrays only: :func:`kernels` answers None unless every array given is a
``numpy.ndarray``, so device arrays (CuPy, the strict stand-in) take the NumPy-formulated path
through their own namespace. numba has no float16 (nor long double, nor object) type, so arrays of
those dtypes take the NumPy path too.

Example:
    >>> from downslope import jit_gate
    >>> with jit_gate.disabled():
    ...     jit_gate.kernels("downslope.ops._jit_softmax") is None
    True
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import types
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

# numba prints coloured error text through colorama while it compiles, and colorama's exit hook then
# writes a reset code ("\x1b[0m") to stdout when that is a terminal (as under mpiexec, whose ranks
# write to a pseudo-terminal); plain text needs numba's own switch set before numba is imported. A
# value the user set wins.
os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")

_loaded: dict[str, ModuleType | None] = {}  # module name -> the module, or None where it failed to import
_off = 0  # depth of active disabled() blocks
# The dtypes numba compiles for (bool, the integers, float32/64, complex64/128), by dtype.char.
_NUMBA_DTYPES = frozenset("?bBhHiIlLqQpPfdFD")
# The environment switch as os.environ stores it (bytes on POSIX, str on Windows), for switched_off.
_ENVIRON = os.environ
_ENV_DATA: dict[Any, Any] | None = getattr(os.environ, "_data", None)
_ENV_KEY = os.environ.encodekey("DOWNSLOPE_JIT") if _ENV_DATA is not None else None
_ENV_ZERO = os.environ.encodevalue("0") if _ENV_DATA is not None else None
# The interpreter's own print, kept from when downslope was imported: numba registers the typing of
# builtins.print when it is imported, and a print replaced by then (util/misc.py's setup_for_distributed
# in MAE, DeiT, DINO, ConvNeXt) makes numba's import fail.
_PRINT = builtins.print


def switched_off() -> bool:
    """True inside :func:`disabled` or with ``DOWNSLOPE_JIT=0`` in the environment.

    Example:
        >>> from downslope import jit_gate
        >>> with jit_gate.disabled():
        ...     jit_gate.switched_off()
        True
    """
    if _off:
        return True
    if os.environ is _ENVIRON and _ENV_DATA is not None:
        # os.environ's own store, read without os.environ.get's str <-> bytes conversions (0.3 us a
        # call, paid by every kernel call); setting os.environ (monkeypatch.setenv) writes this store,
        # so a change at run time is seen at once, as before.
        return _ENV_DATA.get(_ENV_KEY) == _ENV_ZERO
    return os.environ.get("DOWNSLOPE_JIT", "1") == "0"  # os.environ replaced by another mapping


def kernels(module: str, *arrays: Any) -> ModuleType | None:
    """The compiled kernels ``module`` (imported once), or None when numba is missing, the path is
    switched off, or one of ``arrays`` (the arrays the kernel would read; None entries are skipped)
    is not a host ``numpy.ndarray`` of a dtype numba compiles for (float16 is not one).

    Example:
        >>> import numpy as np
        >>> from downslope import jit_gate
        >>> jit_gate.kernels("downslope.ops._jit_softmax", np.zeros(2, np.float16)) is None
        True
    """
    if switched_off():
        return None
    for a in arrays:  # a loop, not any() over a generator: this runs on every kernel call
        if a is not None and (type(a) is not np.ndarray or a.dtype.char not in _NUMBA_DTYPES):
            return None
    try:
        return _loaded[module]
    except KeyError:
        pass
    _loaded[module] = found = _import_kernels(module)
    return found


def _is_interpreter_print(candidate: Any) -> bool:
    return (
        type(candidate) is types.BuiltinFunctionType
        and candidate.__name__ == "print"
        and getattr(candidate, "__self__", None) is builtins
    )


def _interpreter_print() -> Any:
    """The interpreter's own print, or None if it cannot be found: builtins.print itself, the one seen
    when downslope was imported, or the one a replacement closes over (setup_for_distributed's
    ``builtin_print``; followed through a few replacements of replacements)."""
    if _is_interpreter_print(builtins.print):
        return builtins.print
    if _is_interpreter_print(_PRINT):
        return _PRINT
    pending: list[Any] = [builtins.print]
    seen: set[int] = set()
    while pending and len(seen) < 16:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        for cell in getattr(function, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if _is_interpreter_print(value):
                return value
            if callable(value):
                pending.append(value)
    return None


_warned: set[str] = set()


def _import_kernels(module: str) -> ModuleType | None:
    """Import a kernels module with the interpreter's print in place; None (the NumPy path) when numba is
    missing, and, with a warning once, when the import or a compilation at import fails otherwise."""
    replaced = builtins.print
    original = _interpreter_print()
    if original is not None and original is not replaced:
        builtins.print = original
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and (exc.name == "numba" or exc.name.startswith("numba.")):
            return None  # numba not installed (the kernels module imports it first thing): the NumPy path
        cause: BaseException = exc
    except Exception as exc:  # numba's import or a compilation failed: run on NumPy rather than crash
        cause = exc
    finally:
        if builtins.print is not replaced:
            builtins.print = replaced
    if module not in _warned:
        _warned.add(module)
        warnings.warn(
            f"downslope: the compiled kernels {module} could not be loaded ({type(cause).__name__}: {cause}); "
            "running on the NumPy formulation instead (as with DOWNSLOPE_JIT=0)",
            RuntimeWarning,
            stacklevel=3,
        )
    return None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the NumPy kernels alone, core ops and nn layers alike (the tests compare
    both paths).

    Example:
        >>> from downslope import jit_gate
        >>> with jit_gate.disabled():
        ...     pass
    """
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1
