"""PyTorch's window functions (``torch.hann_window`` and its kin), the tapers of signal processing.

Each takes ``window_length`` and ``periodic`` (True by default, as in torch: the window of length
``window_length + 1`` with its last value dropped, the one a spectral analysis of periodic data
wants; False gives the symmetric window of a filter design), and torch's keywords ``dtype`` (a
floating dtype; the default dtype otherwise), ``device`` and ``requires_grad``. The values are
computed in float64 then rounded to ``dtype``.

Example:
    >>> import downslope as ds
    >>> ds.hann_window(4)
    tensor([0. , 0.5, 1. , 0.5])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor, _made

__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window"]

_IGNORED = frozenset({"layout", "pin_memory"})  # torch keywords that mean nothing on NumPy


def _window(
    name: str,
    window_length: Any,
    periodic: Any,
    dtype: Any,
    device: Any,
    requires_grad: bool,
    options: dict[str, Any],
    symmetric: Any,
) -> Tensor:
    """The checks and the periodic/symmetric choice every window shares; ``symmetric(n)`` gives the
    symmetric window of ``n >= 2`` points in float64."""
    unknown = set(options) - _IGNORED
    if unknown:
        raise ArgumentTypeError(f"{name}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if isinstance(window_length, bool) or not isinstance(window_length, (int, np.integer)):
        raise ArgumentTypeError(f"{name}(): argument 'window_length' must be int, not {type(window_length).__name__}")
    n = int(window_length)
    if n < 0:
        raise ArgumentError(f"{name} requires non-negative window_length, got window_length={n}")
    if not isinstance(periodic, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name}(): argument 'periodic' must be bool, not {type(periodic).__name__}")
    out_dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    if out_dtype.kind != "f":
        raise ArgumentTypeError(f"{name} expects floating point dtypes, got {out_dtype}")
    if n <= 1:
        values = np.ones(n)  # host: a factory, placed by _made
    elif periodic:
        values = symmetric(n + 1)[:-1]
    else:
        values = symmetric(n)
    return _made(values.astype(out_dtype), requires_grad, device, f"{name}()")


def _check_float(name: str, what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{name}(): argument '{what}' must be float, not {type(value).__name__}")


def _cosine_terms(n: int, *coefficients: float) -> np.ndarray:
    """sum_k (-1)^k a_k cos(2 pi k i / (n - 1)), i = 0..n-1: the generalized cosine window."""
    phase = 2 * np.pi * np.arange(n) / (n - 1)  # host: a factory, placed by _made
    return sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coefficients))


def hann_window(
    window_length: int,
    periodic: bool = True,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """The Hann window, 0.5 - 0.5 cos(2 pi n / (N - 1)) (``torch.hann_window``).

    Example:
        >>> import downslope as ds
        >>> ds.hann_window(5, periodic=False)
        tensor([0. , 0.5, 1. , 0.5, 0. ])
    """
    return _window(
        "hann_window",
        window_length,
        periodic,
        dtype,
        device,
        requires_grad,
        options,
        lambda n: _cosine_terms(n, 0.5, 0.5),
    )


def hamming_window(
    window_length: int,
    periodic: bool = True,
    alpha: float = 0.54,
    beta: float = 0.46,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """The Hamming window, alpha - beta cos(2 pi n / (N - 1)) (``torch.hamming_window``; alpha = beta =
    0.5 is the Hann window).

    Example:
        >>> import downslope as ds
        >>> ds.hamming_window(3, periodic=False)
        tensor([0.08, 1.  , 0.08])
    """
    _check_float("hamming_window", "alpha", alpha)
    _check_float("hamming_window", "beta", beta)
    return _window(
        "hamming_window",
        window_length,
        periodic,
        dtype,
        device,
        requires_grad,
        options,
        lambda n: _cosine_terms(n, float(alpha), float(beta)),  # host: Python coefficients
    )


def blackman_window(
    window_length: int,
    periodic: bool = True,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """The Blackman window, 0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))
    (``torch.blackman_window``).

    Example:
        >>> import downslope as ds
        >>> ds.blackman_window(5, periodic=False)[1:4]
        tensor([0.34, 1.  , 0.34])
    """
    return _window(
        "blackman_window",
        window_length,
        periodic,
        dtype,
        device,
        requires_grad,
        options,
        lambda n: _cosine_terms(n, 0.42, 0.5, 0.08),
    )


def bartlett_window(
    window_length: int,
    periodic: bool = True,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """The Bartlett (triangular) window, 1 - |2n / (N - 1) - 1| (``torch.bartlett_window``).

    Example:
        >>> import downslope as ds
        >>> ds.bartlett_window(5)
        tensor([0. , 0.4, 0.8, 0.8, 0.4])
    """
    return _window(
        "bartlett_window",
        window_length,
        periodic,
        dtype,
        device,
        requires_grad,
        options,
        lambda n: 1 - np.abs(2 * np.arange(n) / (n - 1) - 1),  # host: a factory, placed by _made
    )


def kaiser_window(
    window_length: int,
    periodic: bool = True,
    beta: float = 12.0,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """The Kaiser window, I0(beta sqrt(1 - (2n / (N - 1) - 1)^2)) / I0(beta), with I0 the modified
    Bessel function of order 0 (``torch.kaiser_window``).

    Example:
        >>> import downslope as ds
        >>> ds.kaiser_window(3, periodic=False, beta=0.0)
        tensor([1., 1., 1.])
    """
    _check_float("kaiser_window", "beta", beta)
    return _window(
        "kaiser_window",
        window_length,
        periodic,
        dtype,
        device,
        requires_grad,
        options,
        lambda n: np.kaiser(n, float(beta)),  # host: a factory, placed by _made
    )
