"""``torch.testing``: :func:`assert_close`, with torch's rules, tolerances and messages.

Tests written for PyTorch call ``torch.testing.assert_close(actual, expected)``; here the same call
compares downslope tensors (and NumPy arrays, numbers, and sequences and mappings of them). Values are
read to the host to be compared: this is a testing helper, not a training-step op.

Example:
    >>> import downslope as ds
    >>> ds.testing.assert_close(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 2.0 + 1e-7]))
    >>> ds.testing.assert_close(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 2.5]))
    Traceback (most recent call last):
    ...
    AssertionError: Tensor-likes are not close!
    <BLANKLINE>
    Mismatched elements: 1 / 2 (50.0%)
    Greatest absolute difference: 0.5 at index (1,) (up to 1e-05 allowed)
    Greatest relative difference: 0.20000000298023224 at index (1,) (up to 1.3e-06 allowed)
"""

from __future__ import annotations

import cmath
import collections.abc
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ArgumentError, ArgumentTypeError
from .tensor import Tensor

__all__ = ["assert_close"]

# torch's default tolerances {dtype: (rtol, atol)}; every other dtype (integers, bool) is compared exactly
_PRECISIONS = {
    np.dtype(np.float16): (1e-3, 1e-5),
    np.dtype(np.float32): (1.3e-6, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-7),
    np.dtype(np.complex64): (1.3e-6, 1e-5),
    np.dtype(np.complex128): (1e-7, 1e-7),
}
# a Python number's dtype, as torch reads it
_NUMBER_DTYPES = {int: np.dtype(np.int64), float: np.dtype(np.float64), complex: np.dtype(np.complex128)}


class _Mismatch(Exception):
    """A failed comparison: the error type torch raises, its message, and where in nested inputs."""

    def __init__(self, kind: type[Exception], message: str, where: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.kind, self.message, self.where = kind, message, where

    def error(self, msg: str | Callable[[str], str] | None) -> Exception:
        if isinstance(msg, str):
            return self.kind(msg)
        text = self.message
        if self.where:
            text += f"\n\nThe failure occurred for item {''.join(str([item]) for item in self.where)}"
        return self.kind(msg(text) if callable(msg) else text)


class _Unsupported(Exception):
    """This kind of comparison does not handle the inputs: the next one is tried."""


def assert_close(
    actual: Any,
    expected: Any,
    *,
    allow_subclasses: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg: str | Callable[[str], str] | None = None,
) -> None:
    """``torch.testing.assert_close``: raises an AssertionError unless ``actual`` and ``expected`` are close,
    ``|actual - expected| <= atol + rtol * |expected|`` elementwise (non-finite values must be equal; NaNs
    count as equal only with ``equal_nan=True``).

    Tensors (and NumPy arrays) must also have the same shape, and by default the same dtype
    (``check_dtype=False`` compares them in their promoted dtype) and device (``check_device=False``
    compares them on the host). Numbers compare as numbers (``check_dtype``: the same Python type);
    sequences and mappings compare item by item (same length, same keys). ``rtol`` and ``atol`` are
    given together or not at all; omitted, they are torch's defaults for the dtype (the looser of the
    two inputs'): float16 (1e-3, 1e-5), float32 (1.3e-6, 1e-5), float64 (1e-7, 1e-7), others exact.
    ``msg`` replaces the message (a string) or rewrites it (a callable given the message). Layouts are
    all strided here, so ``check_layout`` changes nothing.

    Example:
        >>> import downslope as ds
        >>> ds.testing.assert_close([ds.tensor(1.0), 2], (ds.tensor(1.0), 2))
        >>> ds.testing.assert_close(1.0, 1.1, rtol=0.2, atol=0.0)
    """
    options = {
        "allow_subclasses": allow_subclasses,
        "rtol": rtol,
        "atol": atol,
        "equal_nan": equal_nan,
        "check_device": check_device,
        "check_dtype": check_dtype,
        "check_stride": check_stride,
    }
    try:
        _compare(actual, expected, (), options)
    except _Mismatch as failure:
        raise failure.error(msg) from None


def _compare(actual: Any, expected: Any, where: tuple[Any, ...], options: dict[str, Any]) -> None:
    sequence = collections.abc.Sequence
    if all(isinstance(x, sequence) and not isinstance(x, str) for x in (actual, expected)):  # "a"[0] is "a"
        if len(actual) != len(expected):
            raise _Mismatch(
                AssertionError, f"The length of the sequences mismatch: {len(actual)} != {len(expected)}", where
            )
        for i in range(len(actual)):
            _compare(actual[i], expected[i], (*where, i), options)
        return
    mapping = collections.abc.Mapping
    if isinstance(actual, mapping) and isinstance(expected, mapping):
        keys_a, keys_e = set(actual.keys()), set(expected.keys())
        if keys_a != keys_e:
            raise _Mismatch(
                AssertionError,
                "The keys of the mappings do not match:\n"
                f"Missing keys in the actual mapping: {sorted(keys_e - keys_a)}\n"
                f"Additional keys in the actual mapping: {sorted(keys_a - keys_e)}",
                where,
            )
        try:
            keys: Any = sorted(keys_a)
        except TypeError:  # keys of mixed types: torch compares them in set order then
            keys = keys_a
        for key in keys:
            _compare(actual[key], expected[key], (*where, key), options)
        return
    for pair in (_compare_none, _compare_bools, _compare_numbers, _compare_tensors):
        try:
            pair(actual, expected, where, options)
            return
        except _Unsupported:
            continue
    raise _Mismatch(
        ArgumentTypeError,
        f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.",
        where,
    )


def _compare_none(actual: Any, expected: Any, where: tuple[Any, ...], options: dict[str, Any]) -> None:
    if actual is not None and expected is not None:
        raise _Unsupported
    if actual is not expected:
        raise _Mismatch(AssertionError, f"None mismatch: {actual} is not {expected}", where)


def _compare_bools(actual: Any, expected: Any, where: tuple[Any, ...], options: dict[str, Any]) -> None:
    if not all(isinstance(x, (bool, np.bool_)) for x in (actual, expected)):
        raise _Unsupported
    a, e = bool(actual), bool(expected)
    if a is not e:
        raise _Mismatch(AssertionError, f"Booleans mismatch: {a} is not {e}", where)


def _tolerances(dtypes: tuple[np.dtype, ...], options: dict[str, Any], where: tuple[Any, ...]) -> tuple[float, float]:
    rtol, atol = options["rtol"], options["atol"]
    if (rtol is None) != (atol is None):
        raise _Mismatch(
            ArgumentError,
            "Both 'rtol' and 'atol' must be either specified or omitted, "
            f"but got no {'rtol' if rtol is None else 'atol'}.",
            where,
        )
    if rtol is not None:
        return rtol, atol
    rtols, atols = zip(*(_PRECISIONS.get(d, (0.0, 0.0)) for d in dtypes))
    return max(rtols), max(atols)


def _compare_numbers(actual: Any, expected: Any, where: tuple[Any, ...], options: dict[str, Any]) -> None:
    kinds = (int, float, complex, np.number)
    if not all(isinstance(x, kinds) for x in (actual, expected)):
        raise _Unsupported
    a, e = (x.item() if isinstance(x, np.number) else x for x in (actual, expected))
    rtol, atol = _tolerances((_NUMBER_DTYPES[type(a)], _NUMBER_DTYPES[type(e)]), options, where)
    if options["check_dtype"] and type(a) is not type(e):
        raise _Mismatch(AssertionError, f"The (d)types do not match: {type(a)} != {type(e)}.", where)
    if a == e or (options["equal_nan"] and cmath.isnan(a) and cmath.isnan(e)):
        return
    diff = abs(a - e)
    if cmath.isfinite(diff) and diff <= atol + rtol * abs(e):
        return
    raise _Mismatch(AssertionError, _scalar_message(a, e, rtol, atol), where)


def _scalar_message(actual: Any, expected: Any, rtol: float, atol: float) -> str:
    diff = abs(actual - expected)
    relative = float("inf") if expected == 0 else diff / abs(expected)
    return _message("Scalars", f"Expected {expected} but got {actual}.", diff, None, relative, None, rtol, atol)


def _message(
    what: str, extra: str, diff: Any, diff_at: Any, relative: Any, relative_at: Any, rtol: float, atol: float
) -> str:
    equality = rtol == 0 and atol == 0
    text = f"{what} are not {'equal' if equality else 'close'}!\n\n{extra}\n"
    for kind, value, at, tol in (("absolute", diff, diff_at, atol), ("relative", relative, relative_at, rtol)):
        text += (
            f"{kind.title()} difference: {value}"
            if at is None
            else f"Greatest {kind} difference: {value} at index {at}"
        )
        text += "" if equality else f" (up to {tol} allowed)"
        text += "\n"
    return text.strip()


def _as_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        from .tensor import from_numpy

        return from_numpy(np.asarray(value))  # its dtype kept (float64 stays float64, as torch.as_tensor)
    from .tensor import as_tensor

    try:
        return as_tensor(value)
    except Exception as error:  # not tensor-like: the caller reports the types
        raise _Unsupported from error


def _compare_tensors(actual: Any, expected: Any, where: tuple[Any, ...], options: dict[str, Any]) -> None:
    if not (isinstance(actual, type(expected)) or isinstance(expected, type(actual))):
        raise _Unsupported
    if not options["allow_subclasses"] and type(actual) is not type(expected):
        raise _Unsupported
    a, e = _as_tensor(actual), _as_tensor(expected)
    rtol, atol = _tolerances((a.dtype, e.dtype), options, where)

    def differ(name: str, ours: Any, theirs: Any) -> _Mismatch:
        return _Mismatch(AssertionError, f"The values for attribute '{name}' do not match: {ours} != {theirs}.", where)

    if a.shape != e.shape:
        raise differ("shape", a.size(), e.size())
    if options["check_stride"] and a.stride() != e.stride():
        raise differ("stride()", a.stride(), e.stride())
    if options["check_device"] and a.device != e.device:
        raise differ("device", a.device, e.device)
    if options["check_dtype"] and a.dtype != e.dtype:
        raise differ("dtype", a.dtype, e.dtype)
    from .devices import to_host
    from .ops.promotion import promote_types

    # host: a testing helper reads the values it compares
    x, y = to_host(a.detach().array), to_host(e.detach().array)
    if x.dtype != y.dtype:
        common = promote_types(x.dtype, y.dtype)
        x, y = x.astype(common), y.astype(common)
    _compare_values(x, y, rtol, atol, options["equal_nan"], where)


def _compare_values(x: np.ndarray, y: np.ndarray, rtol: float, atol: float, equal_nan: bool, where: tuple) -> None:
    inexact = x.dtype.kind in "fc"
    with np.errstate(invalid="ignore", over="ignore"):
        if inexact:
            # torch.isclose's formula, in the tensors' own dtype
            error = np.abs(x - y)
            matches = (x == y) | (np.isfinite(error) & (error <= atol + np.abs(rtol * y)))
            if equal_nan:
                matches |= np.isnan(x) & np.isnan(y)
        elif rtol == 0 and atol == 0:
            matches = x == y
        else:
            wide_x, wide_y = x.astype(np.float64), y.astype(np.float64)
            matches = np.abs(wide_x - wide_y) <= atol + np.abs(rtol * wide_y)
    if matches.all():
        return
    if x.ndim == 0:
        raise _Mismatch(AssertionError, _scalar_message(x.item(), y.item(), rtol, atol), where)
    if not inexact:  # differences of integers and bools in int64, as torch's message computes them
        x, y = x.astype(np.int64), y.astype(np.int64)
    flat_x, flat_y, flat_matches = x.reshape(-1), y.reshape(-1), matches.reshape(-1)
    mismatches = int(flat_matches.size - flat_matches.sum())
    extra = f"Mismatched elements: {mismatches} / {flat_matches.size} ({mismatches / flat_matches.size:.1%})"
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(flat_x - flat_y)
        diff[flat_matches] = 0
        # int64 / int64 divides in the default float dtype (float32) in torch
        relative = diff / np.abs(flat_y) if inexact else diff.astype(np.float32) / np.abs(flat_y).astype(np.float32)
        relative[flat_matches] = 0
    at_diff, at_relative = (_greatest(d) for d in (diff, relative))
    raise _Mismatch(
        AssertionError,
        _message(
            "Tensor-likes",
            extra,
            diff[at_diff].item(),
            tuple(int(i) for i in np.unravel_index(at_diff, x.shape)),
            relative[at_relative].item(),
            tuple(int(i) for i in np.unravel_index(at_relative, x.shape)),
            rtol,
            atol,
        ),
        where,
    )


def _greatest(values: np.ndarray) -> int:
    """The flat index of the greatest value, a NaN winning (as torch.max)."""
    if values.dtype.kind in "fc" and np.isnan(values).any():
        return int(np.flatnonzero(np.isnan(values))[0])
    return int(np.argmax(values))
