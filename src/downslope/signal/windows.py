"""``torch.signal.windows``: SciPy-style window functions under PyTorch's names and signatures.

Each takes the window length ``M`` and keyword-only ``sym`` (True by default, as in torch and SciPy:
the symmetric window of a filter design; False gives the periodic window of a spectral analysis, the
symmetric window of ``M + 1`` points with its last one dropped), its own shape parameters, and
torch's factory keywords ``dtype`` (float32 or float64; the default dtype otherwise), ``layout``
(accepted and ignored: every array is strided), ``device`` and ``requires_grad`` (the window is then a
leaf, where torch's is the output of its computation).

The values follow torch's formulas (the same sample positions, spaced as ``torch.linspace`` spaces
them), computed in float64 and rounded once to ``dtype``, so a float32 window is within rounding of
torch's, and a Kaiser window with a large ``beta`` has values where torch's float32 one overflows to NaN.
The top-level ``ds.hann_window(M, periodic)`` and its kin are ``hann(M, sym=not periodic)``.

Example:
    >>> import downslope as ds
    >>> ds.signal.windows.hann(5)
    tensor([0. , 0.5, 1. , 0.5, 0. ])
    >>> ds.signal.windows.bartlett(4, sym=False)
    tensor([0. , 0.5, 1. , 0.5])
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError
from ..ops.special import i0e_array
from ..tensor import Tensor, tensor

__all__ = [
    "bartlett",
    "blackman",
    "cosine",
    "exponential",
    "gaussian",
    "general_cosine",
    "general_hamming",
    "hamming",
    "hann",
    "kaiser",
    "nuttall",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # torch's window functions take these two only


def _length(name: str, M: Any) -> int:
    """The window length: an int (a NumPy integer or a one-element integer tensor too, as in torch)."""
    if isinstance(M, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name}(): argument 'M' (the window length) must be int, not bool")
    try:
        n = operator.index(M)  # host: a length
    except TypeError:
        # torch fails on a float length only inside linspace, with an unreadable message: say it here
        raise ArgumentTypeError(
            f"{name}(): argument 'M' (the window length) must be int, not {type(M).__name__}"
        ) from None
    if n < 0:
        raise ArgumentError(f"{name} requires non-negative window length, got M={n}")
    return n


def _dtype(name: str, dtype: Any) -> np.dtype:
    resolved = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    if resolved not in _FLOATS:
        # a ValueError, as torch's: code that catches torch's error keeps working
        raise ArgumentError(f"{name} expects float32 or float64 dtypes, got: {resolved}")
    return resolved


def _real(name: str, what: str, value: Any) -> float:
    """A shape parameter as a Python float (a number, or a one-element tensor as torch takes)."""
    if not isinstance(value, (str, bytes)):
        try:
            return float(value)  # host: a Python parameter
        except (TypeError, ValueError):
            pass
    raise ArgumentTypeError(f"{name}(): argument '{what}' must be float, not {type(value).__name__}")


def _linspace(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace`` in float64: the first half counted up from ``start``, the second half down
    from ``end``, so a symmetric window's two halves are mirror images to the last bit."""
    if steps == 1:
        return np.array([start])  # host: a factory, placed by _result
    i = np.arange(steps, dtype=np.float64)  # host: a factory, placed by _result
    step = (end - start) / (steps - 1)
    with np.errstate(invalid="ignore"):  # an infinite shape parameter gives NaN, as in torch
        return np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))


def _result(values: np.ndarray, dtype: np.dtype, device: Any, requires_grad: bool) -> Tensor:
    return tensor(values.astype(dtype), dtype=dtype, device=device, requires_grad=requires_grad)


def _span(M: int, sym: bool) -> int:
    """The window's period N: M - 1 for a symmetric window, M for a periodic one (SciPy's rule)."""
    return M - 1 if sym else M


def _cosine_sum(name: str, M: Any, coefficients: Any, sym: Any, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    """sum_i (-1)^i a_i cos(2 pi i n / N): every cosine-sum window (Hann, Hamming, Blackman, Nuttall)."""
    n, out = _length(name, M), _dtype(name, dtype)
    if n <= 1:  # as torch: before the coefficients are read
        return _result(np.ones(n), out, device, requires_grad)  # host: a factory, placed by _result
    if isinstance(coefficients, (str, bytes)) or not isinstance(coefficients, Iterable):
        raise ArgumentTypeError(
            f"{name}(): coefficients 'a' must be a list/tuple of floats, not {type(coefficients).__name__}"
        )
    a = [_real(name, "a", c) for c in coefficients]
    if not a:
        raise ArgumentError(f"{name}: coefficients cannot be empty, got a={coefficients!r}")
    k = _linspace(0.0, (n - 1) * (2 * math.pi / _span(n, bool(sym))), n)
    values = sum((-1) ** i * c * np.cos(i * k) for i, c in enumerate(a))
    return _result(np.asarray(values), out, device, requires_grad)  # host: a factory, placed by _result


def general_cosine(
    M: int,
    *,
    a: Iterable[float],
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The general cosine window, sum_i (-1)^i a_i cos(2 pi i n / N) (``torch.signal.windows.general_cosine``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.general_cosine(5, a=[0.5, 0.5])
        tensor([0. , 0.5, 1. , 0.5, 0. ])
    """
    return _cosine_sum("general_cosine", M, a, sym, dtype, device, requires_grad)


def general_hamming(
    M: int,
    *,
    alpha: float = 0.54,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The general Hamming window, alpha - (1 - alpha) cos(2 pi n / N)
    (``torch.signal.windows.general_hamming``; alpha = 0.5 is the Hann window).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.general_hamming(3, alpha=0.6, dtype=ds.float64)
        tensor([0.2, 1. , 0.2], dtype=float64)
    """
    alpha = _real("general_hamming", "alpha", alpha)
    return _cosine_sum("general_hamming", M, [alpha, 1.0 - alpha], sym, dtype, device, requires_grad)


def hamming(
    M: int,
    *,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Hamming window, 0.54 - 0.46 cos(2 pi n / N) (``torch.signal.windows.hamming``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.hamming(3)
        tensor([0.08, 1.  , 0.08])
    """
    return _cosine_sum("hamming", M, [0.54, 1.0 - 0.54], sym, dtype, device, requires_grad)


def hann(
    M: int,
    *,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Hann window, 0.5 - 0.5 cos(2 pi n / N) (``torch.signal.windows.hann``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.hann(4, sym=False)
        tensor([0. , 0.5, 1. , 0.5])
    """
    return _cosine_sum("hann", M, [0.5, 0.5], sym, dtype, device, requires_grad)


def blackman(
    M: int,
    *,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Blackman window, 0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N)
    (``torch.signal.windows.blackman``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.blackman(5)[1:4]
        tensor([0.34, 1.  , 0.34])
    """
    return _cosine_sum("blackman", M, [0.42, 0.5, 0.08], sym, dtype, device, requires_grad)


def nuttall(
    M: int,
    *,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Nuttall's minimum 4-term Blackman-Harris window (``torch.signal.windows.nuttall``), with torch's
    (and SciPy's) coefficients 0.3635819, 0.4891775, 0.1365995, 0.0106411.

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.nuttall(3)
        tensor([3.628e-04, 1.000e+00, 3.628e-04])
    """
    a = [0.3635819, 0.4891775, 0.1365995, 0.0106411]
    return _cosine_sum("nuttall", M, a, sym, dtype, device, requires_grad)


def bartlett(
    M: int,
    *,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Bartlett (triangular) window, 1 - |2n / N - 1| (``torch.signal.windows.bartlett``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.bartlett(5)
        tensor([0. , 0.5, 1. , 0.5, 0. ])
    """
    n, out = _length("bartlett", M), _dtype("bartlett", dtype)
    if n <= 1:
        return _result(np.ones(n), out, device, requires_grad)  # host: a factory, placed by _result
    k = _linspace(-1.0, -1.0 + (n - 1) * (2 / _span(n, bool(sym))), n)
    return _result(1 - np.abs(k), out, device, requires_grad)


def cosine(
    M: int,
    *,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The cosine (sine) window, sin(pi (n + 0.5) / N'), N' = M (M + 1 when periodic), which does not
    reach 0 at its ends (``torch.signal.windows.cosine``, as SciPy's).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.cosine(3, dtype=ds.float64)
        tensor([0.5, 1. , 0.5], dtype=float64)
    """
    n, out = _length("cosine", M), _dtype("cosine", dtype)
    if n == 0:
        return _result(np.ones(0), out, device, requires_grad)  # host: a factory, placed by _result
    constant = math.pi / (n + 1 if not sym and n > 1 else n)
    k = _linspace(0.5 * constant, (0.5 + (n - 1)) * constant, n)
    return _result(np.sin(k), out, device, requires_grad)


def gaussian(
    M: int,
    *,
    std: float = 1.0,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Gaussian window, exp(-(n - (N - 1) / 2)^2 / (2 std^2)) (``torch.signal.windows.gaussian``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.gaussian(3, std=1.0, dtype=ds.float64)
        tensor([0.6065, 1.    , 0.6065], dtype=float64)
    """
    n, out = _length("gaussian", M), _dtype("gaussian", dtype)
    sigma = _real("gaussian", "std", std)
    if sigma <= 0:  # NaN passes, as in torch (a window of NaN)
        raise ArgumentError(f"gaussian: standard deviation must be positive, got: std={std!r}")
    if n == 0:
        return _result(np.ones(0), out, device, requires_grad)  # host: a factory, placed by _result
    start = -(n if not sym and n > 1 else n - 1) / 2.0
    constant = 1 / (sigma * math.sqrt(2))
    k = _linspace(start * constant, (start + (n - 1)) * constant, n)
    return _result(np.exp(-(k**2)), out, device, requires_grad)


def exponential(
    M: int,
    *,
    center: float | None = None,
    tau: float = 1.0,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The exponential (Poisson) window, exp(-|n - center| / tau) (``torch.signal.windows.exponential``;
    ``center`` defaults to the middle, and may be given only for a periodic window, ``sym=False``).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.exponential(3, tau=1.0, dtype=ds.float64)
        tensor([0.3679, 1.    , 0.3679], dtype=float64)
    """
    n, out = _length("exponential", M), _dtype("exponential", dtype)
    decay = _real("exponential", "tau", tau)
    if decay <= 0:
        raise ArgumentError(f"exponential: tau must be positive, got: tau={tau!r}")
    if sym and center is not None:
        raise ArgumentError(
            f"exponential: center must be None for symmetric windows (sym=True), got center={center!r}; "
            "pass sym=False to place the center"
        )
    if n == 0:
        return _result(np.ones(0), out, device, requires_grad)  # host: a factory, placed by _result
    middle = (n if not sym and n > 1 else n - 1) / 2.0
    c = middle if center is None else _real("exponential", "center", center)
    constant = 1 / decay
    k = _linspace(-c * constant, (-c + (n - 1)) * constant, n)
    return _result(np.exp(-np.abs(k)), out, device, requires_grad)


def kaiser(
    M: int,
    *,
    beta: float = 12.0,
    sym: bool = True,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The Kaiser window, I0(beta sqrt(1 - (2n / N - 1)^2)) / I0(beta), I0 the modified Bessel function
    of order 0 (``torch.signal.windows.kaiser``; beta = 0 is the rectangular window).

    Example:
        >>> import downslope as ds
        >>> ds.signal.windows.kaiser(3, beta=0.0)
        tensor([1., 1., 1.])
    """
    n, out = _length("kaiser", M), _dtype("kaiser", dtype)
    b = _real("kaiser", "beta", beta)
    if b < 0:
        raise ArgumentError(f"kaiser: beta must be non-negative, got: beta={beta!r}")
    if n <= 1:
        return _result(np.ones(n), out, device, requires_grad)  # host: a factory, placed by _result
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite beta gives NaN, as in torch
        end = float(np.minimum(b, -b + (n - 1) * (2.0 * b / _span(n, bool(sym)))))  # host: a Python bound
        k = _linspace(-b, end, n)
        x = np.sqrt(b * b - k * k)
        # I0(x) / I0(beta) as scaled Bessel functions times exp(x - beta) <= 1, so that a large beta
        # does not overflow I0 (torch's float32 window is NaN from beta ~ 90, its float64 one from ~ 710)
        values = i0e_array(x) / i0e_array(np.array(b)) * np.exp(x - b)  # host: a Python parameter
    return _result(values, out, device, requires_grad)
