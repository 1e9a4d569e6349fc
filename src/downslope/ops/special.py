"""Special functions as recorded ops with gradients (torch's top-level and ``torch.special`` ones):
``lgamma`` (log |Gamma|), ``digamma``, ``polygamma(n, x)``, ``mvlgamma``, ``erfinv``, the regularised
incomplete gamma functions ``igamma``/``igammac``, the modified Bessel functions ``i0``, ``i0e``,
``i1``, ``i1e``, and ``erfcx``, ``ndtr``, ``ndtri``, ``log_ndtr``, ``xlog1py``, ``entr``.

The values are computed in float64 and handed back in the input's dtype. The gamma family uses the
recurrence up to x >= 10, then the asymptotic series (reflection for negative x, with cot(pi x)
reduced exactly, so the cost does not grow with |x|); they agree with torch to about 1e-13 relative
in float64. Large host arrays of lgamma, digamma, polygamma, i0e, i1e and nan_to_num take the
compiled kernels of ``ops._jit_special`` when numba is on (lgamma there is the C library's for float64,
as torch's CPU kernel, and for float32 a vectorised kernel computing in float64, within one float32
ulp; polygamma, i0e and i1e the NumPy path's formulas per element in SIMD loops). Small host arrays
take Python-float loops instead (lgamma below ``SMALL_LGAMMA_SIZE`` elements by math.lgamma, float32
digamma below ``SMALL_DIGAMMA_SIZE`` by a scalar port of the kernel), and float32 digamma above them
fewer NumPy steps (``_digamma_lean``): a sampler's per-step call costs microseconds, not ~60 NumPy steps. The
Bessel functions use Cephes' Chebyshev expansions and rational approximations (as torch does); they,
erfinv, erfcx and the normal functions evaluate each range's formula only on that range's elements
and run on the host in cache-sized blocks (``ops._erf.piecewise`` and ``on_host_blocks``): whole-array
NumPy steps, no Python call per element. erfinv and ndtri start from Acklam's approximation and take
a Halley step in float64, measured on erfc's side in the tails where erf(x) - y would cancel. Each rule differentiates again (``create_graph``): lgamma's derivative is digamma,
digamma's is polygamma(1), polygamma(n)'s is polygamma(n + 1), i0's is i1.

Example:
    >>> import downslope as ds
    >>> x = ds.tensor([0.5, 4.0], dtype=ds.float64, requires_grad=True)
    >>> [round(v, 6) for v in ds.lgamma(x).tolist()]
    [0.572365, 1.791759]
    >>> ds.lgamma(x).sum().backward()
    >>> bool(ds.allclose(x.grad, ds.digamma(x.detach())))
    True
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from .. import backend, jit_gate
from ..autograd import rerun
from ..devices import like, to_host
from ..errors import ArgumentError, ArgumentTypeError, UnimplementedError
from ..tensor import Tensor, record_op, wrap_array
from . import _erf
from .operands import _lift, _lift_float, _pair_float
from .out import with_out

_SHIFT = 10.0  # the recurrences lift x to at least this before the asymptotic series
# Bernoulli numbers B_2k, k = 1..10
_B2K = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798, -174611 / 330)


def _f64(a: Any) -> tuple[Any, Any]:
    xp = backend.namespace_of(a)
    return xp, a.astype(xp.float64)


def _lgamma_positive(xp: Any, x: Any) -> Any:
    """log Gamma(x) for x > 0 (float64)."""
    small = x < _SHIFT
    z = xp.where(small, x + _SHIFT, x)
    # x's own factor apart: x (x+1) ... (x+9) of a subnormal x would keep only its few bits
    prod = xp.ones_like(x)
    for k in range(1, int(_SHIFT)):
        prod = prod * xp.where(small, x + k, 1.0)
    inv = 1.0 / z
    inv2 = inv * inv
    # sum_k B_2k / (2k (2k - 1) z^(2k-1)), Horner in 1/z^2 from the smallest term
    series = xp.zeros_like(x)
    for k in range(7, -1, -1):
        series = series * inv2 + _B2K[k] / ((2 * k + 2) * (2 * k + 1))
    out = (z - 0.5) * xp.log(z) - z + 0.5 * math.log(2 * math.pi) + series * inv
    return out - xp.log(prod) - xp.log(xp.where(small, x, 1.0))


_JIT_SPECIAL = "downslope.ops._jit_special"
_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # native byte order only: numba has no other
# Below this many elements the NumPy steps take well under a millisecond, and the first compiled call
# of a process costs numba's import and cache load (0.5-2 s), which a few small calls never earn back.
JIT_SPECIAL_MIN_SIZE = 4096


def _compiled_operands(a: Any) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """(the kernels of ``ops._jit_special``, ``a`` flat, an output like it) where they apply to ``a`` (a host
    float32/float64 array of at least JIT_SPECIAL_MIN_SIZE elements, numba on); else None."""
    if type(a) is not np.ndarray or a.dtype not in _JIT_DTYPES or a.size < JIT_SPECIAL_MIN_SIZE:
        return None
    kernels = jit_gate.kernels(_JIT_SPECIAL, a)
    if kernels is None:
        return None
    flat = np.ascontiguousarray(a).reshape(-1)  # host: the compiled path takes host arrays only
    return kernels, flat, np.empty_like(flat)


def _compiled(name: str, a: Any) -> Any:
    """``name`` of ``a`` through the compiled kernels of ``ops._jit_special`` where they apply
    (:func:`_compiled_operands`); else None."""
    operands = _compiled_operands(a)
    if operands is None:
        return None
    kernels, flat, out = operands
    getattr(kernels, name)(flat, out)
    return out.reshape(a.shape)


def nan_to_num_array(a: Any, nan: float, posinf: float, neginf: float) -> Any:
    """A real floating array with NaN, +inf and -inf replaced (torch.nan_to_num's values; the fills
    rounded to a's dtype): one compiled pass where it applies, else NumPy's."""
    with np.errstate(over="ignore"):  # a fill beyond float16's range is inf, as NumPy's assignment gives
        # NumPy scalars, which the kernel and devices take
        fills: tuple[Any, ...] = tuple(
            np.asarray(v).astype(a.dtype)[()]  # host: a Python number
            for v in (nan, posinf, neginf)
        )
    if type(a) is np.ndarray and a.dtype in _JIT_DTYPES and a.size >= JIT_SPECIAL_MIN_SIZE:
        kernels = jit_gate.kernels(_JIT_SPECIAL, a)
        if kernels is not None:
            flat = np.ascontiguousarray(a).reshape(-1)  # host: the compiled path takes host arrays only
            out = np.empty_like(flat)
            kernels.nan_to_num(flat, out, *fills)
            return out.reshape(a.shape)
    return np.nan_to_num(a, nan=fills[0], posinf=fills[1], neginf=fills[2]).astype(a.dtype, copy=False)


def _cast_back(out: Any, dtype: Any) -> Any:
    """``out`` (computed in float64) back in ``dtype``: past the dtype's range it is inf, as torch's, even
    under a user's "error" filter for NumPy's warnings (see pointwise.quietly)."""
    try:
        return out.astype(dtype)
    except RuntimeWarning:
        from .pointwise import quietly

        return quietly(out.astype, dtype)


# Host float32/float64 arrays of fewer elements than these take Python-float loops (math.lgamma; a
# scalar port of the digamma kernel), where the array path's 40-60 NumPy steps cost ~1 us each
# whatever the size (a sampler's per-step calls of a few elements were 40-60x torch). Measured: the
# lgamma loop beats the NumPy steps up to ~1000 elements, the digamma loop up to ~16.
SMALL_LGAMMA_SIZE = 1024
SMALL_DIGAMMA_SIZE = 16


_HOST_TYPES = (np.ndarray, np.float32, np.float64)  # NumPy's scalars too: arithmetic on 0-d arrays gives them


def _small_host(a: Any, limit: int) -> bool:
    """Whether ``a`` is a host float32/float64 array (or NumPy scalar) of fewer than ``limit`` elements."""
    return type(a) in _HOST_TYPES and a.size < limit and a.dtype in _JIT_DTYPES


def _from_floats(values: list[float], a: Any) -> np.ndarray:
    """Python floats (one per element of ``a``) as an array like ``a``, each rounded once to its dtype;
    past float32's range they are inf, as torch's (NumPy's overflow warning is not raised then)."""
    with np.errstate(over="ignore"):
        return np.array(values, a.dtype).reshape(a.shape)  # host: the small path's own result


def _lgamma_one(v: float) -> float:
    """math.lgamma of one float, +inf at its poles (0 and the negative integers), where Python raises."""
    try:
        return math.lgamma(v)
    except (ValueError, OverflowError):  # a pole, or past float64's range (|v| > ~2.5e305)
        return math.inf


def _lgamma_small(a: Any) -> np.ndarray:
    """lgamma of a small host array by math.lgamma per element in float64, rounded once: float32
    within 0.502 ulp of torch's float64 lgamma on a dense sweep (the NumPy steps 1.07, torch's own
    float32 kernel ~2); for float64 closer to the true value than the NumPy steps in every range
    measured (though, like them, not in relative terms next to the zeros at 1 and 2, which only the
    C library's lgamma, the compiled path, gets right)."""
    values = a.ravel().tolist()  # host: the small path works on Python floats
    try:
        out = list(map(math.lgamma, values))
    except (ValueError, OverflowError):  # a pole somewhere: element by element
        out = [_lgamma_one(v) for v in values]
    return _from_floats(out, a)


def lgamma_array(a: Any) -> Any:
    """log |Gamma(a)| of an array (torch.lgamma): +inf at 0 and the negative integers."""
    if _small_host(a, SMALL_LGAMMA_SIZE):
        return _lgamma_small(a)
    # float32: the SIMD kernel in float64 (torch's lgammaf is within ~2 ulps, the kernel within 1)
    compiled = _compiled("lgamma_float32" if a.dtype == np.float32 else "lgamma", a)
    if compiled is not None:
        return compiled
    xp, x = _f64(a)
    with np.errstate(all="ignore"):
        neg = x < 0  # reflected; (0, 1/2) directly: pi * x of a subnormal x keeps only its few bits
        pos = _lgamma_positive(xp, xp.where(neg, 1.0 - x, x))
        # |sin(pi x)| = |sin(pi r)| for the exactly reduced r = x - round(x) (pi * x would round away digits)
        reduced = xp.where(neg & xp.isfinite(x), x, 0.5)
        sin = xp.abs(xp.sin(math.pi * (reduced - xp.round(reduced))))
        out = xp.where(neg, math.log(math.pi) - xp.log(sin) - pos, pos)
        out = xp.where((x <= 0) & (x == xp.floor(x)), xp.inf, out)
        out = xp.where(x == xp.inf, xp.inf, out)
        out = xp.where((x == 1) | (x == 2), 0.0, out)  # exactly 0 there, as torch's lgamma
    return _cast_back(out, a.dtype)


def _digamma_positive(xp: Any, x: Any) -> Any:
    small = x < _SHIFT
    z = xp.where(small, x + _SHIFT, x)
    acc = xp.zeros_like(x)
    for k in range(int(_SHIFT)):
        acc = acc + xp.where(small, 1.0 / (x + k), 0.0)
    inv2 = 1.0 / (z * z)
    series = sum(b / (2 * k + 2) * inv2 ** (k + 1) for k, b in enumerate(_B2K[:8]))
    return xp.log(z) - 0.5 / z - series - acc


# the asymptotic series' coefficients B_2k / 2k of 1/z^2k, k = 1..8
_DIGAMMA_SERIES = tuple(b / (2 * k + 2) for k, b in enumerate(_B2K[:8]))
_DIGAMMA_LEAN_SHIFT = 16.0
_DIGAMMA_STEPS = np.arange(_DIGAMMA_LEAN_SHIFT)  # host: the lean recurrence's offsets 0..15, a constant
_DIGAMMA_LEAN_SERIES = _DIGAMMA_SERIES[:6]  # at z >= 16 the seventh term is below 1e-18
# Up to this many elements below 1/2 take the scalar loop beside the lean steps; more, the reflecting steps
_DIGAMMA_FEW_REFLECTED = 16


def _digamma_positive_one(x: float) -> float:
    """digamma of one float x >= 1/2 (or +inf), as the compiled kernel's ``_digamma_positive``."""
    acc = 0.0
    while x < _SHIFT:
        acc += 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = 0.0
    for c in reversed(_DIGAMMA_SERIES):
        series = (series + c) * inv2
    return math.log(x) - 0.5 / x - series - acc


def _cot_pi_one(x: float) -> float:
    """cot(pi x) of one finite float, through the exact reduction r = x - round(x) (as :func:`_cot_pi`)."""
    r = x - round(x)
    if r >= 0.25 or r <= -0.25:
        return math.tan(math.pi * (0.5 - abs(r))) * math.copysign(1.0, r)
    return 1.0 / math.tan(math.pi * r)


def _digamma_one(v: float) -> float:
    """digamma of one float, with the array path's values at 0, the poles, +-inf and NaN."""
    if v >= 0.5:
        return _digamma_positive_one(v)
    if v == 0.0:
        return -math.copysign(math.inf, v)  # -inf at +0, +inf at -0
    if v != v or v == -math.inf or v == math.floor(v):
        return math.nan if v == v else v
    return _digamma_positive_one(1.0 - v) - math.pi * _cot_pi_one(v)


def _digamma_lean(x: np.ndarray) -> np.ndarray:
    """digamma of a host float64 array whose elements are all >= 1/2, +inf or NaN, for float32 results,
    in a third of the reflecting path's NumPy steps: every element lifted by the same 16 (no masks; the
    recurrence costs a large x nothing it can see in float32), so six terms of the asymptotic series
    reach float64's precision, Horner's in place. The sixteen reciprocals sum in one cumulative sum,
    in order (a pairwise sum rounded the float32 value at digamma's root, 1.4616, to 0.85 ulp instead
    of 0.5). Correctly rounded to float32 on a 1M-point sweep, as the other paths."""
    acc = (1.0 / (x[..., None] + _DIGAMMA_STEPS)).cumsum(-1)[..., -1]
    z = x + _DIGAMMA_LEAN_SHIFT
    inv2 = 1.0 / (z * z)
    series = _DIGAMMA_LEAN_SERIES[-1] * inv2
    for c in _DIGAMMA_LEAN_SERIES[-2::-1]:
        series += c
        series *= inv2
    return np.log(z) - 0.5 / z - series - acc


def digamma_array(a: Any) -> Any:
    """digamma(a) of an array (torch.digamma): -inf at +0 (+inf at -0), nan at the negative integers."""
    # float32 only: rounded to float32, the three host paths give the same (correctly rounded) values;
    # in float64 they differ in the last bit, and an expanded distribution's values would then depend
    # on its size
    single = type(a) in _HOST_TYPES and a.dtype == np.float32
    if single and a.size < SMALL_DIGAMMA_SIZE:
        return _from_floats([_digamma_one(v) for v in a.ravel().tolist()], a)  # host: Python floats
    compiled = _compiled("digamma", a)
    if compiled is not None:
        return compiled
    xp, x = _f64(a)
    if single:
        low = x < 0.5
        few = int(np.count_nonzero(low))
        if few <= _DIGAMMA_FEW_REFLECTED:  # the common case: few or no elements to reflect
            with np.errstate(all="ignore"):
                out = _digamma_lean(np.where(low, 1.0, x) if few else x)
                if few:  # the few below 1/2 (poles, zeros, reflections) one by one, as the small path
                    out[low] = [_digamma_one(v) for v in x[low].tolist()]  # host: Python floats
            return _cast_back(out, a.dtype)
    with np.errstate(all="ignore"):
        neg = x < 0.5
        y = xp.where(neg, 1.0 - x, x)
        pos = _digamma_lean(y) if single else _digamma_positive(xp, y)
        out = xp.where(neg, pos - math.pi * _cot_pi(xp, xp.where(neg & xp.isfinite(x), x, 0.25)), pos)
        out = xp.where((x < 0) & (x == xp.floor(x)), xp.nan, out)
        # the pole at 0 approached from the zero's side: -inf at +0, +inf at -0 (torch's, scipy's)
        out = xp.where(x == 0, xp.where(xp.signbit(x), xp.inf, -xp.inf), out)
    return _cast_back(out, a.dtype)


def _polygamma_positive(xp: Any, n: int, x: Any) -> Any:
    """polygamma(n, x) for n >= 1 and x >= 0 (float64): the recurrence lifts x below _SHIFT by a fixed
    number of steps, then the asymptotic series."""
    acc = xp.zeros_like(x)
    z = x
    for _ in range(int(_SHIFT)):
        small = z < _SHIFT
        acc = acc + xp.where(small, 1.0 / z ** (n + 1), 0.0)
        z = xp.where(small, z + 1.0, z)
    # asymptotic: (n-1)!/z^n + n!/(2 z^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! z^(2k+n))
    inv = 1.0 / z
    inv2 = inv * inv
    tail = xp.zeros_like(x)
    for k in range(8, 0, -1):  # Horner in 1/z^2 from the smallest term
        tail = (tail + _B2K[k - 1] * math.factorial(2 * k + n - 1) / math.factorial(2 * k)) * inv2
    series = inv**n * (math.factorial(n - 1) + math.factorial(n) / 2 * inv + tail)
    return (-1.0) ** (n + 1) * (series + math.factorial(n) * acc)


def _cot_pi(xp: Any, x: Any) -> Any:
    """cot(pi x) of finite float64 x, accurate for large |x| too: cot has period pi, and the reduced
    r = x - round(x) is exact, where pi * x would round away the digits that matter. Near |r| = 1/2,
    cot(pi r) = tan(pi (1/2 - |r|)) sign(r) (1/2 - |r| is exact for |r| >= 1/4), exactly 0 at the
    half-integers, where 1 / tan(pi / 2) = 6e-17 would swamp polygamma's tiny even orders."""
    r = x - xp.round(x)
    far = (r >= 0.25) | (r <= -0.25)
    return xp.where(far, xp.tan(math.pi * (0.5 - xp.abs(r))) * xp.sign(r), 1.0 / xp.tan(math.pi * r))


def _cot_derivative_coefficients(n: int) -> list[int]:
    """The polynomial P_n with d^n/dt^n cot(t) = P_n(cot t), lowest degree first: P_0(c) = c and
    P_(k+1)(c) = -(1 + c^2) P_k'(c)."""
    coefficients = [0, 1]
    for _ in range(n):
        derivative = [i * c for i, c in enumerate(coefficients)][1:]
        nxt = [0] * (len(derivative) + 2)
        for i, c in enumerate(derivative):
            nxt[i] -= c
            nxt[i + 2] -= c
        coefficients = nxt
    return coefficients


def polygamma_array(n: int, a: Any) -> Any:
    """polygamma(n, a) for n >= 1 of an array; 0 at +inf, NaN at -inf and NaN. Negative x reflect
    (differentiating psi(1 - x) - psi(x) = pi cot(pi x) n times):
    psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) cot^(n)(pi x), so the cost does not grow with |x|.
    Large host arrays take the compiled kernel (``_jit_special.polygamma``, the same formulas per element)."""
    compiled = _compiled_polygamma(n, a)
    if compiled is not None:
        return compiled
    xp, x = _f64(a)
    with np.errstate(all="ignore"):
        neg = x < 0
        pos = _polygamma_positive(xp, n, xp.where(neg, 1.0 - x, x))
        # cot has period pi: the reduced r = x - round(x) is exact, where pi * x would round away digits
        cot = _cot_pi(xp, xp.where(neg & xp.isfinite(x), x, 0.25))
        poly = xp.zeros_like(x)
        for c in reversed(_cot_derivative_coefficients(n)):
            poly = poly * cot + float(c)  # host: an exact integer coefficient
        reflected = (-1.0) ** n * pos - math.pi ** (n + 1) * poly
        out = xp.where(neg, reflected, pos)
        # at the poles (0 and the negative integers) +inf for odd n, whose poles are +inf from both
        # sides, and -inf for even n (torch's value there, the limit from the right); no limit at -inf
        out = xp.where((x <= 0) & (x == xp.floor(x)), xp.inf if n % 2 else -xp.inf, out)
        out = xp.where(x == -xp.inf, xp.nan, out)
    return out.astype(a.dtype)


def _polygamma_tail(n: int) -> np.ndarray:
    """The asymptotic series' coefficients B_2k (2k+n-1)! / (2k)! for k = 8 down to 1 (Horner's order)."""
    return np.array(  # host: the compiled kernel's constants
        [_B2K[k - 1] * math.factorial(2 * k + n - 1) / math.factorial(2 * k) for k in range(8, 0, -1)], np.float64
    )


def _compiled_polygamma(n: int, a: Any) -> Any:
    """polygamma(n, a) through ``_jit_special.polygamma`` where it applies (as :func:`_compiled`), else None."""
    operands = _compiled_operands(a)
    if operands is None:
        return None
    kernels, flat, out = operands
    coefficients = np.array(_cot_derivative_coefficients(n), np.float64)  # host: exact integers, as constants
    kernels.polygamma(n, flat, _polygamma_tail(n), coefficients, out)
    return out.reshape(a.shape)


def _float(x: Any) -> Tensor:
    return _lift_float(x)


def lgamma(x: Any) -> Tensor:
    """log |Gamma(x)| (torch.lgamma), differentiable: its derivative is digamma.

    Example:
        >>> import downslope as ds
        >>> ds.lgamma(ds.tensor([1.0, 3.0]))
        tensor([0.    , 0.6931])
    """
    x = _float(x)
    return record_op(lgamma_array(x.array), (x,), _lgamma_vjp)


def _lgamma_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * (digamma(x) if xp.differentiable else digamma_array(x)),)


def digamma(x: Any) -> Tensor:
    """digamma(x) = d/dx lgamma(x) (torch.digamma), differentiable: its derivative is polygamma(1, x).

    Example:
        >>> import downslope as ds
        >>> ds.digamma(ds.tensor([1.0]))
        tensor([-0.5772])
    """
    x = _float(x)
    return record_op(digamma_array(x.array), (x,), _digamma_vjp)


def _digamma_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * (polygamma(1, x) if xp.differentiable else polygamma_array(1, x)),)


def polygamma(n: int, x: Any) -> Tensor:
    """The n-th derivative of digamma (torch.polygamma); ``n = 0`` is :func:`digamma`.

    Example:
        >>> import downslope as ds
        >>> ds.polygamma(1, ds.tensor([1.0]))
        tensor([1.6449])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ArgumentTypeError(f"polygamma: n must be an int, got {n!r}")
    if n < 0:
        raise ArgumentError(f"polygamma(n, x): n must be >= 0, got {n}")
    n = int(n)
    if n == 0:
        return digamma(x)
    x = _float(x)
    return record_op(polygamma_array(n, x.array), (x,), _polygamma_vjp, n)


def _polygamma_vjp(g, y, args, saved, needs, xp):
    x, n = args[0], saved
    return (g * (polygamma(n + 1, x) if xp.differentiable else polygamma_array(n + 1, x)),)


_HALF_SQRT_PI = 0.5 * math.sqrt(math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _erfinv64(y: Any, steps: int) -> Any:
    """erfinv of a float64 array of any namespace: erfinv(y) = ndtri((1 + y) / 2) / sqrt(2) by
    Acklam's approximation (1.2e-9 relative, enough for float32 as it is), then ``steps`` Halley steps
    on erf(x) = |y| up to x = 1 and on erfc(x) = 1 - |y| beyond (1 - |y| is exact there, while
    erf(x) - |y| cancels to nothing as |y| nears 1: erfinv(1 - 1e-15) came out as 5.47 for 5.68)."""
    xp = backend.namespace_of(y)
    magnitude = xp.abs(y)
    centre = magnitude <= 1 - 2 * _ACKLAM_LOW
    tail = ~centre & (magnitude < 1)
    # (1 + |y|) / 2 - 1/2 = |y| / 2 exactly, and the upper tail's 1 - (1 + |y|) / 2 = (1 - |y|) / 2 too
    x = _erf.piecewise(
        magnitude,
        (
            (centre, lambda v: _acklam_centre(v * 0.5) * _SQRT_HALF, 0.5),
            (tail, lambda v: _acklam_tail(xp, (1.0 - v) * 0.5) * -_SQRT_HALF, 0.99),
            (magnitude == 1, lambda v: v * xp.inf, 1.0),
        ),
        default=xp.nan,  # beyond +-1 and NaN
    )
    if steps:
        outside = ~(centre | tail)
        edges = x
        for _ in range(steps):
            # erf(x) - |y| as (erf(x) - 1) - (|y| - 1) beyond x = 1 (erfc's own formula; |y| - 1 is exact)
            # (magnitude - 1 by an indicator, not a select: mixed ranges would mispredict a branch each)
            residual = _erf.erf_split(x) - (magnitude - (x > 1.0))
            step = residual * _HALF_SQRT_PI * xp.exp(x * x)  # the residual over erf's derivative
            x = x - step / (1.0 + x * step)  # Halley's correction: erf'' / erf' = -2x
        x = xp.where(outside, edges, x)  # inf at +-1 and NaN stay (a step would make them NaN)
    return xp.copysign(x, y)  # -0.0 at -0.0, as torch


def erfinv_array(a: Any) -> Any:
    """The inverse error function of a real floating array, in its dtype: -+inf at -+1, NaN outside
    [-1, 1]. Acklam's approximation is within float32's precision as it is; float64 takes one Halley
    step (which triples the digits). Large host float32 and float64 arrays take the compiled kernels
    where numba is on (``_jit_special.erfinv_float32``: the same formulas per element, the same values;
    ``erfinv_float64``: the same with the kernels' own erf and exp, within 1.6 ulps of the exact value)."""
    if a.dtype == np.float32 or a.dtype == np.float64:  # the same formulas per element in one SIMD loop
        compiled = _compiled("erfinv_float32" if a.dtype == np.float32 else "erfinv_float64", a)
        if compiled is not None:
            return compiled
    with np.errstate(all="ignore"):
        return _erf.on_host_blocks(partial(_erfinv64, steps=0 if a.dtype.itemsize <= 4 else 1), a)


def erfinv(x: Any) -> Tensor:
    """The inverse error function (torch.erfinv), differentiable: d/dy = sqrt(pi)/2 exp(erfinv(y)^2).

    Example:
        >>> import downslope as ds
        >>> ds.erfinv(ds.tensor([0.0, 0.5]))
        tensor([0.    , 0.4769])
    """
    x = _float(x)
    return record_op(erfinv_array(x.array), (x,), _erfinv_vjp)


def _erfinv_vjp(g, y, args, saved, needs, xp):
    if y is None:  # the output was changed in place (torch saves the input only): recomputed
        y = rerun(erfinv, args, xp)
    return (g * (0.5 * math.sqrt(math.pi)) * xp.exp(y * y),)


_erfinv_vjp.reads_output = "optional"  # type: ignore[attr-defined]


# The regularised incomplete gamma functions follow Cephes' igam/igamc (as torch's calc_igamma and
# scipy do): the power series, the continued fraction, the series for Q at small x, and Temme's
# uniform asymptotic expansion (DLMF 8.12.3/8.12.4) where a is large and x near a, the only method
# whose cost does not grow with a (the series needs about 8 sqrt(a) terms there).
_MACHEP = 1.11022302462515654042e-16
_IGAM_MAXITER = 2000
_LANCZOS_G = 6.024680040776729583740234375
# Boost's lanczos13m53 sum, exp(g)-scaled (numerator and denominator in increasing powers)
_LANCZOS_NUM = (
    0.006061842346248906525783753964555936883222, 0.5098416655656676188125178644804694509993,
    19.51992788247617482847860966235652136208, 449.9445569063168119446858607650988409623,
    6955.999602515376140356310115515198987526, 75999.29304014542649875303443598909137092,
    601859.6171681098786670226533699352302507, 3481712.15498064590882071018964774556468,
    14605578.08768506808414169982791359218571, 43338889.32467613834773723740590533316085,
    86363131.28813859145546927288977868422342, 103794043.1163445451906271053616070238554,
    56906521.91347156388090791033559122686859,
)  # fmt: skip
_LANCZOS_DEN = (
    1.0, 66.0, 1925.0, 32670.0, 357423.0, 2637558.0, 13339535.0, 45995730.0, 105258076.0,
    150917976.0, 120543840.0, 39916800.0, 0.0,
)  # fmt: skip
# Temme's coefficients d[k][n]: c_k(eta) = sum_n d[k][n] eta^n (Cephes' igam.h, as torch's Math.h)
_TEMME_D = (
    (
        -3.3333333333333333e-1, 8.3333333333333333e-2, -1.4814814814814815e-2, 1.1574074074074074e-3,
        3.527336860670194e-4, -1.7875514403292181e-4, 3.9192631785224378e-5, -2.1854485106799922e-6,
        -1.85406221071516e-6, 8.296711340953086e-7, -1.7665952736826079e-7, 6.7078535434014986e-9,
        1.0261809784240308e-8, -4.3820360184533532e-9, 9.1476995822367902e-10, -2.551419399494625e-11,
        -5.8307721325504251e-11, 2.4361948020667416e-11, -5.0276692801141756e-12, 1.1004392031956135e-13,
        3.3717632624009854e-13, -1.3923887224181621e-13, 2.8534893807047443e-14, -5.1391118342425726e-16,
        -1.9752288294349443e-15,
    ),
    (
        -1.8518518518518519e-3, -3.4722222222222222e-3, 2.6455026455026455e-3, -9.9022633744855967e-4,
        2.0576131687242798e-4, -4.0187757201646091e-7, -1.8098550334489978e-5, 7.6491609160811101e-6,
        -1.6120900894563446e-6, 4.6471278028074343e-9, 1.378633446915721e-7, -5.752545603517705e-8,
        1.1951628599778147e-8, -1.7543241719747648e-11, -1.0091543710600413e-9, 4.1627929918425826e-10,
        -8.5639070264929806e-11, 6.0672151016047586e-14, 7.1624989648114854e-12, -2.9331866437714371e-12,
        5.9966963656836887e-13, -2.1671786527323314e-16, -4.9783399723692616e-14, 2.0291628823713425e-14,
        -4.13125571381061e-15,
    ),
    (
        4.1335978835978836e-3, -2.6813271604938272e-3, 7.7160493827160494e-4, 2.0093878600823045e-6,
        -1.0736653226365161e-4, 5.2923448829120125e-5, -1.2760635188618728e-5, 3.4235787340961381e-8,
        1.3721957309062933e-6, -6.298992138380055e-7, 1.4280614206064242e-7, -2.0477098421990866e-10,
        -1.4092529910867521e-8, 6.228974084922022e-9, -1.3670488396617113e-9, 9.4283561590146782e-13,
        1.2872252400089318e-10, -5.5645956134363321e-11, 1.1975935546366981e-11, -4.1689782251838635e-15,
        -1.0940640427884594e-12, 4.6622399463901357e-13, -9.905105763906906e-14, 1.8931876768373515e-17,
        8.8592218725911273e-15,
    ),
    (
        6.4943415637860082e-4, 2.2947209362139918e-4, -4.6918949439525571e-4, 2.6772063206283885e-4,
        -7.5618016718839764e-5, -2.3965051138672967e-7, 1.1082654115347302e-5, -5.6749528269915966e-6,
        1.4230900732435884e-6, -2.7861080291528142e-11, -1.6958404091930277e-7, 8.0994649053880824e-8,
        -1.9111168485973654e-8, 2.3928620439808118e-12, 2.0620131815488798e-9, -9.4604966618551322e-10,
        2.1541049775774908e-10, -1.388823336813903e-14, -2.1894761681963939e-11, 9.7909989511716851e-12,
        -2.1782191880180962e-12, 6.2088195734079014e-17, 2.126978363279737e-13, -9.3446887915174333e-14,
        2.0453671226782849e-14,
    ),
    (
        -8.618882909167117e-4, 7.8403922172006663e-4, -2.9907248030319018e-4, -1.4638452578843418e-6,
        6.6414982154651222e-5, -3.9683650471794347e-5, 1.1375726970678419e-5, 2.5074972262375328e-10,
        -1.6954149536558306e-6, 8.9075075322053097e-7, -2.2929348340008049e-7, 2.956794137544049e-11,
        2.8865829742708784e-8, -1.4189739437803219e-8, 3.4463580499464897e-9, -2.3024517174528067e-13,
        -3.9409233028046405e-10, 1.8602338968504502e-10, -4.356323005056618e-11, 1.2786001016296231e-15,
        4.6792750266579195e-12, -2.1492464706134829e-12, 4.9088156148096522e-13, -6.3385914848915603e-18,
        -5.0453320690800944e-14,
    ),
    (
        -3.3679855336635815e-4, -6.9728137583658578e-5, 2.7727532449593921e-4, -1.9932570516188848e-4,
        6.7977804779372078e-5, 1.419062920643967e-7, -1.3594048189768693e-5, 8.0184702563342015e-6,
        -2.2914811765080952e-6, -3.252473551298454e-10, 3.4652846491085265e-7, -1.8447187191171343e-7,
        4.8240967037894181e-8, -1.7989466721743515e-14, -6.3061945000135234e-9, 3.1624176287745679e-9,
        -7.8409242536974293e-10, 5.1926791652540407e-15, 9.3589442423067836e-11, -4.5134262161632782e-11,
        1.0799129993116827e-11, -3.661886712685252e-17, -1.210902069055155e-12, 5.6807435849905643e-13,
        -1.3249659916340829e-13,
    ),
    (
        5.3130793646399222e-4, -5.9216643735369388e-4, 2.7087820967180448e-4, 7.9023532326603279e-7,
        -8.1539693675619688e-5, 5.6116827531062497e-5, -1.8329116582843376e-5, -3.0796134506033048e-9,
        3.4651553688036091e-6, -2.0291327396058604e-6, 5.7887928631490037e-7, 2.338630673826657e-13,
        -8.8286007463304835e-8, 4.7435958880408128e-8, -1.2545415020710382e-8, 8.6496488580102925e-14,
        1.6846058979264063e-9, -8.5754928235775947e-10, 2.1598224929232125e-10, -7.6132305204761539e-16,
        -2.6639822008536144e-11, 1.3065700536611057e-11, -3.1799163902367977e-12, 4.7109761213674315e-18,
        3.6902800842763467e-13,
    ),
    (
        3.4436760689237767e-4, 5.1717909082605922e-5, -3.3493161081142236e-4, 2.812695154763237e-4,
        -1.0976582244684731e-4, -1.2741009095484485e-7, 2.7744451511563644e-5, -1.8263488805711333e-5,
        5.7876949497350524e-6, 4.9387589339362704e-10, -1.0595367014026043e-6, 6.1667143761104075e-7,
        -1.7562973359060462e-7, -1.2974473287015439e-12, 2.695423606288966e-8, -1.4578352908731271e-8,
        3.887645959386175e-9, -3.8810022510194121e-17, -5.3279941738772867e-10, 2.7437977643314845e-10,
        -6.9957960920705679e-11, 2.5899863874868481e-17, 8.8566890996696381e-12, -4.403168815871311e-12,
        1.0865561947091654e-12,
    ),
    (
        -6.5262391859530942e-4, 8.3949872067208728e-4, -4.3829709854172101e-4, -6.969091458420552e-7,
        1.6644846642067548e-4, -1.2783517679769219e-4, 4.6299532636913043e-5, 4.5579098679227077e-9,
        -1.0595271125805195e-5, 6.7833429048651666e-6, -2.1075476666258804e-6, -1.7213731432817145e-11,
        3.7735877416110979e-7, -2.1867506700122867e-7, 6.2202288040189269e-8, 6.5977038267330006e-16,
        -9.5903864974256858e-9, 5.2132144922808078e-9, -1.3991589583935709e-9, 5.382058999060575e-16,
        1.9484714275467745e-10, -1.0127287556389682e-10, 2.6077347197254926e-11, -5.0904186999932993e-18,
        -3.3721464474854592e-12,
    ),
    (
        -5.9676129019274625e-4, -7.2048954160200106e-5, 6.7823088376673284e-4, -6.4014752602627585e-4,
        2.7750107634328704e-4, 1.8197008380465151e-7, -8.4795071170685032e-5, 6.105192082501531e-5,
        -2.1073920183404862e-5, -8.8585890141255994e-10, 4.5284535953805377e-6, -2.8427815022504408e-6,
        8.7082341778646412e-7, 3.6886101871706965e-12, -1.5344695190702061e-7, 8.862466778790695e-8,
        -2.5184812301826817e-8, -1.0225912098215092e-14, 3.8969470758154777e-9, -2.1267304792235635e-9,
        5.7370135528051385e-10, -1.887749850169741e-19, -8.0931538694657866e-11, 4.2382723283449199e-11,
        -1.1002224534207726e-11,
    ),
    (
        1.3324454494800656e-3, -1.9144384985654775e-3, 1.1089369134596637e-3, 9.932404122642299e-7,
        -5.0874501293093199e-4, 4.2735056665392884e-4, -1.6858853767910799e-4, -8.1301893922784998e-9,
        4.5284402370562147e-5, -3.127053674781734e-5, 1.044986828530338e-5, 4.8435226265680926e-11,
        -2.1482565873456258e-6, 1.329369701097492e-6, -4.0295693092101029e-7, -1.7567877666323291e-13,
        7.0145043163668257e-8, -4.040787734999483e-8, 1.1474026743371963e-8, 3.9642746853563325e-18,
        -1.7804938269892714e-9, 9.7480262548731646e-10, -2.6405338676507616e-10, 5.794875163403742e-18,
        3.7647749553543836e-11,
    ),
    (
        1.579727660730835e-3, 1.6251626278391582e-4, -2.0633421035543276e-3, 2.1389686185689098e-3,
        -1.0108559391263003e-3, -3.9912705529919201e-7, 3.6235025084764691e-4, -2.8143901463712154e-4,
        1.0449513336495887e-4, 2.1211418491830297e-9, -2.5779417251947842e-5, 1.7281818956040463e-5,
        -5.6413773872904282e-6, -1.1024320105776174e-11, 1.1223224418895175e-6, -6.8693396379526735e-7,
        2.0653236975414887e-7, 4.6714772409838506e-14, -3.5609886164949055e-8, 2.0470855345905963e-8,
        -5.8091738633283358e-9, -1.332821287582869e-16, 9.0354604391335133e-10, -4.9598782517330834e-10,
        1.3481607129399749e-10,
    ),
    (
        -4.0725121195140166e-3, 6.4033628338080698e-3, -4.0410161081676618e-3, -2.183732802866233e-6,
        2.1740441801254639e-3, -1.9700440518418892e-3, 8.3595469747962458e-4, 1.9445447567109655e-8,
        -2.5779387120421696e-4, 1.9009987368139304e-4, -6.7696499937438965e-5, -1.4440629666426572e-10,
        1.5712512518742269e-5, -1.0304008744776893e-5, 3.304517767401387e-6, 7.9829760242325709e-13,
        -6.4097794149313004e-7, 3.8894624761300056e-7, -1.1618347644948869e-7, -2.816808630596451e-15,
        1.9878012911297093e-8, -1.1407719956357511e-8, 3.2355857064185555e-9, 4.1759468293455945e-20,
        -5.0423112718105824e-10,
    ),
    (
        -5.9475779383993003e-3, -5.4016476789260452e-4, 8.7910413550767898e-3, -9.8576315587856125e-3,
        5.0134695031021538e-3, 1.2807521786221875e-6, -2.0626019342754683e-3, 1.7109128573523058e-3,
        -6.7695312714133799e-4, -6.9011545676562133e-9, 1.8855128143995902e-4, -1.3395215663491969e-4,
        4.6263183033528039e-5, 4.0034230613321351e-11, -1.0255652921494033e-5, 6.612086372797651e-6,
        -2.0913022027253008e-6, -2.0951775649603837e-13, 3.9756029041993247e-7, -2.3956211978815887e-7,
        7.1182883382145864e-8, 8.925574873053455e-16, -1.2101547235064676e-8, 6.9350618248334386e-9,
        -1.9661464453856102e-9,
    ),
    (
        1.7402027787522711e-2, -2.9527880945699121e-2, 2.0045875571402799e-2, 7.0289515966903407e-6,
        -1.2375421071343148e-2, 1.1976293444235254e-2, -5.4156038466518525e-3, -6.3290893396418616e-8,
        1.8855118129005065e-3, -1.473473274825001e-3, 5.5515810097708387e-4, 5.2406834412550662e-10,
        -1.4357913535784836e-4, 9.9181293224943297e-5, -3.3460834749478311e-5, -3.5755837291098993e-12,
        7.1560851960630076e-6, -4.5516802628155526e-6, 1.4236576649271475e-6, 1.8803149082089664e-14,
        -2.6623403898929211e-7, 1.5950642189595716e-7, -4.7187514673841102e-8, -6.5107872958755177e-17,
        7.9795091026746235e-9,
    ),
    (
        3.0249124160905891e-2, 2.4817436002649977e-3, -4.9939134373457022e-2, 5.9915643009307869e-2,
        -3.2483207601623391e-2, -5.7212968652103441e-6, 1.5085251778569354e-2, -1.3261324005088445e-2,
        5.5515262632426148e-3, 3.0263182257030016e-8, -1.7229548406756723e-3, 1.2893570099929637e-3,
        -4.6845138348319876e-4, -1.830259937893045e-10, 1.1449739014822654e-4, -7.7378565221244477e-5,
        2.5625836246985201e-5, 1.0766165333192814e-12, -5.3246809282422621e-6, 3.349634863064464e-6,
        -1.0381253128684018e-6, -5.608909920621128e-15, 1.9150821930676591e-7, -1.1418365800203486e-7,
        3.3654425209171788e-8,
    ),
    (
        -9.9051020880159045e-2, 1.7954011706123486e-1, -1.2989606383463778e-1, -3.1478872752284357e-5,
        9.0510635276848131e-2, -9.2828824411184397e-2, 4.4412112839877808e-2, 2.7779236316835888e-7,
        -1.7229543805449697e-2, 1.4182925050891573e-2, -5.6214161633747336e-3, -2.39598509186381e-9,
        1.6029634366079908e-3, -1.1606784674435773e-3, 4.1001337768153873e-4, 1.8365800754090661e-11,
        -9.5844256563655903e-5, 6.3643062337764708e-5, -2.076250624489065e-5, -1.1806020912804483e-13,
        4.2131808239120649e-6, -2.6262241337012467e-6, 8.0770620494930662e-7, 6.0125912123632725e-16,
        -1.4729737374018841e-7,
    ),
    (
        -1.9994542198219728e-1, -1.5056113040026424e-2, 3.6470239469348489e-1, -4.6435192311733545e-1,
        2.6640934719197893e-1, 3.4038266027147191e-5, -1.3784338709329624e-1, 1.276467178337056e-1,
        -5.6213828755200985e-2, -1.753150885483011e-7, 1.9235592956768113e-2, -1.5088821281095315e-2,
        5.7401854451350123e-3, 1.0622382710310225e-9, -1.5335082692563998e-3, 1.0819320643228214e-3,
        -3.7372510193945659e-4, -6.6170909729031985e-12, 8.4263617380909628e-5, -5.5150706827483479e-5,
        1.7769536448348069e-5, 3.8827923210205533e-14, -3.53513697488768e-6, 2.1865832130045269e-6,
        -6.6812849447625594e-7,
    ),
    (
        7.2438608504029431e-1, -1.3918010932653375, 1.0654143352413968, 1.876173868950258e-4, -8.2705501176152696e-1,
        8.9352433347828414e-1, -4.4971003995291339e-1, -1.6107401567546652e-6, 1.9235590165271091e-1,
        -1.6597702160042609e-1, 6.8882222681814333e-2, 1.3910091724608687e-8, -2.146911561508663e-2,
        1.6228980898865892e-2, -5.9796016172584256e-3, -1.1287469112826745e-10, 1.5167451119784857e-3,
        -1.0478634293553899e-3, 3.5539072889126421e-4, 8.1704322111801517e-13, -7.7773013442452395e-5,
        5.0291413897007722e-5, -1.6035083867000518e-5, 1.2469354315487605e-14, 3.1369106244517615e-6,
    ),
    (
        1.6668949727276811, 1.165462765994632e-1, -3.3288393225018906, 4.4692325482864037, -2.6977693045875807,
        -2.600667859891061e-4, 1.5389017615694539, -1.4937962361134612, 6.8881964633233148e-1, 1.3077482004552385e-6,
        -2.5762963325596288e-1, 2.1097676102125449e-1, -8.3714408359219882e-2, -7.7920428881354753e-9,
        2.4267923064833599e-2, -1.7813678334552311e-2, 6.3970330388900056e-3, 4.9430807090480523e-11,
        -1.5554602758465635e-3, 1.0561196919903214e-3, -3.5277184460472902e-4, 9.3002334645022459e-14,
        7.5285855026557172e-5, -4.8186515569156351e-5, 1.5227271505597605e-5,
    ),
    (
        -6.6188298861372935, 1.3397985455142589e1, -1.0789350606845146e1, -1.4352254537875018e-3, 9.2333694596189809,
        -1.0456552819547769e1, 5.5105526029033471, 1.2024439690716742e-5, -2.5762961164755816, 2.3207442745387179,
        -1.0045728797216284, -1.0207833290021914e-7, 3.3975092171169466e-1, -2.6720517450757468e-1,
        1.0235252851562706e-1, 8.4329730484871625e-10, -2.7998284958442595e-2, 2.0066274144976813e-2,
        -7.0554368915086242e-3, 1.9402238183698188e-12, 1.6562888105449611e-3, -1.1082898580743683e-3,
        3.654545161310169e-4, -5.1290032026971794e-11, -7.6340103696869031e-5,
    ),
    (
        -1.7112706061976095e1, -1.1208044642899116, 3.7131966511885444e1, -5.2298271025348962e1, 3.3058589696624618e1,
        2.4791298976200222e-3, -2.061089403411526e1, 2.088672775145582e1, -1.0045703956517752e1,
        -1.2238783449063012e-5, 4.0770134274221141, -3.473667358470195, 1.4329352617312006, 7.1359914411879712e-8,
        -4.4797257159115612e-1, 3.4112666080644461e-1, -1.2699786326594923e-1, -2.8953677269081528e-10,
        3.3125776278259863e-2, -2.3274087021036101e-2, 8.0399993503648882e-3, -1.177805216235265e-9,
        -1.8321624891071668e-3, 1.2108282933588665e-3, -3.9479941246822517e-4,
    ),
    (
        7.389033153567425e1, -1.5680141270402273e2, 1.322177542759164e2, 1.3692876877324546e-2, -1.2366496885920151e2,
        1.4620689391062729e2, -8.0365587724865346e1, -1.1259851148881298e-4, 4.0770132196179938e1,
        -3.8210340013273034e1, 1.719522294277362e1, 9.3519707955168356e-7, -6.2716159907747034, 5.1168999071852637,
        -2.0319658112299095, -4.9507215582761543e-9, 5.9626397294332597e-1, -4.4220765337238094e-1,
        1.6079998700166273e-1, -2.4733786203223402e-8, -4.0307574759979762e-2, 2.7849050747097869e-2,
        -9.4751858992054221e-3, 6.419922235909132e-6, 2.1250180774699461e-3,
    ),
    (
        2.1216837098382522e2, 1.3107863022633868e1, -4.9698285932871748e2, 7.3121595266969204e2,
        -4.8213821720890847e2, -2.8817248692894889e-2, 3.2616720302947102e2, -3.4389340280087117e2,
        1.7195193870816232e2, 1.4038077378096158e-4, -7.52594195897599e1, 6.651969984520934e1, -2.8447519748152462e1,
        -7.613702615875391e-7, 9.5402237105304373, -7.5175301113311376, 2.8943997568871961, -4.6612194999538201e-7,
        -8.0615149598794088e-1, 5.8483006570631029e-1, -2.0845408972964956e-1, 1.4765818959305817e-4,
        5.1000433863753019e-2, -3.3066252141883665e-2, 1.5109265210467774e-2,
    ),
    (
        -9.8959643098322368e2, 2.1925555360905233e3, -1.9283586782723356e3, -1.5925738122215253e-1,
        1.9569985945919857e3, -2.4072514765081556e3, 1.3756149959336496e3, 1.2920735237496668e-3,
        -7.525941715948055e2, 7.3171668742208716e2, -3.4137023466220065e2, -9.9857390260608043e-6,
        1.3356313181291573e2, -1.1276295161252794e2, 4.6310396098204458e1, -7.9237387133614756e-6,
        -1.4510726927018646e1, 1.1111771248100563e1, -4.1690817945270892, 3.1008219800117808e-3, 1.1220095449981468,
        -7.6052379926149916e-1, 3.6262236505085254e-1, 2.216867741940747e-1, 4.8683443692930507e-1,
    ),
)  # fmt: skip


_EULER_GAMMA = 0.5772156649015329
# zeta(k) - 1 for k = 2, 3, ...: lgamma(1 + a) = -gamma a - log1pmx(a) + sum_k (zeta(k) - 1) (-a)^k / k
_ZETA_MINUS_ONE = (
    6.4493406684822644e-1, 2.0205690315959429e-1, 8.2323233711138192e-2, 3.6927755143369926e-2,
    1.734306198444914e-2, 8.3492773819228268e-3, 4.0773561979443394e-3, 2.0083928260822144e-3,
    9.9457512781808534e-4, 4.9418860411946456e-4, 2.460865533080483e-4, 1.2271334757848915e-4,
    6.1248135058704829e-5, 3.0588236307020494e-5, 1.5282259408651872e-5, 7.6371976378997623e-6,
    3.8172932649998399e-6, 1.9082127165539389e-6, 9.5396203387279611e-7, 4.7693298678780646e-7,
    2.3845050272773299e-7, 1.1921992596531107e-7, 5.960818905125948e-8, 2.980350351465228e-8,
    1.4901554828365041e-8, 7.4507117898354295e-9, 3.7253340247884571e-9, 1.862659723513049e-9,
    9.3132743241966818e-10, 4.6566290650337841e-10,
)  # fmt: skip


def _lanczos_sum_expg_scaled(a: Any) -> Any:
    # the coefficients are listed from the highest power (12 in both); for a > 1 the ratio is
    # evaluated in 1 / a from the constant terms up, which keeps large a from overflowing
    shape, a = np.shape(a), np.ravel(a)
    big = a > 1
    out = np.empty_like(a)
    for part, order in ((big, -1), (~big, 1)):
        if part.any():  # host: which evaluation applies
            y = 1.0 / a[part] if order < 0 else a[part]
            num, den = np.zeros_like(y), np.zeros_like(y)
            for n, d in zip(_LANCZOS_NUM[::order], _LANCZOS_DEN[::order], strict=True):
                num, den = num * y + n, den * y + d
            out[part] = num / den
    return out.reshape(shape)


def _log1pmx(s: Any) -> Any:
    """log(1 + s) - s, by the series near 0 where the difference would cancel."""
    shape, s = np.shape(s), np.ravel(s)
    out = np.log1p(s) - s
    small = np.abs(s) < 0.25
    if small.any():  # host: which evaluation applies
        t = s[small]
        series = np.zeros_like(t)
        for k in range(28, 1, -1):  # -t^2/2 + t^3/3 - ...: 0.25^26 * 2 / 28 is below the last digit
            series = series * t + (1.0 if k % 2 else -1.0) / k
        out[small] = series * t * t
    return out.reshape(shape)


def _lgamma1p(a: Any) -> Any:
    """lgamma(1 + a), by its Taylor series for |a| <= 0.5, where rounding 1 + a and the shifted
    Stirling series would cost Q = 1 - x^a / Gamma(1 + a) + ... its small values' digits."""
    small = np.abs(a) <= 0.5
    t = np.where(small, a, 0.0)
    series = np.zeros_like(a)
    for k in range(len(_ZETA_MINUS_ONE) + 1, 1, -1):
        series = series * -t + _ZETA_MINUS_ONE[k - 2] / k
    series = -_EULER_GAMMA * t - _log1pmx(t) + series * t * t
    with np.errstate(all="ignore"):
        return np.where(small, series, lgamma_array(1.0 + a))


def _igam_fac(a: Any, x: Any) -> Any:
    """x^a e^-x / Gamma(a), through Lanczos' approximation where x is near a (Cephes' igam_fac), so
    that large a keeps its digits (a log x - lgamma(a) would cancel)."""
    with np.errstate(all="ignore"):
        far = np.abs(a - x) > 0.4 * np.abs(a)
        direct = np.exp(a * np.log(x) - x - lgamma_array(a))
        fac = a + _LANCZOS_G - 0.5
        res = np.sqrt(fac / math.e) / _lanczos_sum_expg_scaled(a)
        small = (a < 200) & (x < 200)
        numfac = (x - a - _LANCZOS_G + 0.5) / fac
        near = res * np.where(
            small,
            np.exp(a - x) * np.power(x / fac, a),
            np.exp(a * _log1pmx(numfac) + x * (0.5 - _LANCZOS_G) / fac),
        )
    return np.where(far, direct, near)


def _igam_series(a: Any, x: Any) -> Any:
    """P(a, x) by the power series (DLMF 8.11.4), for 1-d arrays (under errstate from the caller).
    Each entry leaves the loop when converged; the live ones are kept packed, so a few slow entries
    do not keep the whole array in the loop."""
    total = np.ones_like(a)
    live = np.arange(a.size)  # host: igamma's iterations run on host arrays
    r, c, xl, acc = a.copy(), np.ones_like(a), x, total.copy()
    for _ in range(_IGAM_MAXITER):
        r += 1.0
        c *= xl / r
        acc += c
        go = c > _MACHEP * acc
        if not go.all():  # host: stopping test
            total[live] = acc
            live, r, c, xl, acc = live[go], r[go], c[go], xl[go], acc[go]
            if live.size == 0:  # host: as above
                break
    else:
        total[live] = acc
    return total * _igam_fac(a, x) / a


def _igamc_series(a: Any, x: Any) -> Any:
    """Q(a, x) by DLMF 8.7.3 (small x), which avoids the cancellation of 1 - P; 1-d arrays."""
    total = np.zeros_like(a)
    live = np.arange(a.size)  # host: as in _igam_series
    fac, al, xl, acc = np.ones_like(a), a, x, total.copy()
    for n in range(1, _IGAM_MAXITER):
        fac *= -xl / n
        term = fac / (al + n)
        acc += term
        go = np.abs(term) > _MACHEP * np.abs(acc)
        if not go.all():  # host: stopping test
            total[live] = acc
            live, fac, al, xl, acc = live[go], fac[go], al[go], xl[go], acc[go]
            if live.size == 0:  # host: as above
                break
    else:
        total[live] = acc
    log_x = np.log(x)
    return -np.expm1(a * log_x - _lgamma1p(a)) - np.exp(a * log_x - lgamma_array(a)) * total


def _igamc_continued_fraction(a: Any, x: Any) -> Any:
    """Q(a, x) by the continued fraction (DLMF 8.9.2), for 1-d arrays (under errstate from the caller)."""
    big = 4.503599627370496e15
    y = 1.0 - a
    z = x + y + 1.0
    pkm2, qkm2 = np.ones_like(a), x.copy()
    pkm1, qkm1 = x + 1.0, z * x
    out = pkm1 / qkm1
    ans = out.copy()
    live = np.arange(a.size)  # host: as in _igam_series
    for c in range(1, _IGAM_MAXITER + 1):
        y += 1.0
        z += 2.0
        yc = y * c
        pk = pkm1 * z - pkm2 * yc
        qk = qkm1 * z - qkm2 * yc
        r = pk / qk
        moved = qk != 0
        t = np.where(moved, np.abs((ans - r) / r), 1.0)
        ans = np.where(moved, r, ans)
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        size = np.maximum(np.abs(pk), np.abs(qk))
        if (size > big).any():  # host: rescaled together (only their ratios count)
            # by the power of two of the larger of the two: qk grows by a factor of about x a term,
            # so for x near 1e100 a fixed factor would not keep it from overflowing
            scale = np.where(size > big, np.ldexp(1.0, -np.frexp(size)[1]), 1.0)
            pkm2, pkm1, qkm2, qkm1 = pkm2 * scale, pkm1 * scale, qkm2 * scale, qkm1 * scale
        go = t > _MACHEP
        if not go.all():  # host: stopping test
            out[live] = ans
            live, y, z, ans, pkm2, pkm1, qkm2, qkm1 = (v[go] for v in (live, y, z, ans, pkm2, pkm1, qkm2, qkm1))
            if live.size == 0:  # host: as above
                break
    else:
        out[live] = ans
    # the fraction is below 1 where it is used (x >= a), so Q underflows with the prefactor; there
    # the fraction itself may be NaN (its first denominator x (x + 2 - a) overflows above x ~ 1e154)
    fac = _igam_fac(a, x)
    return np.where(fac == 0, 0.0, out * fac)


def _igam_asymptotic(a: Any, x: Any) -> tuple[Any, Any]:
    """(P, Q) by Temme's uniform asymptotic expansion (DLMF 8.12.3/8.12.4), for large a and x near a."""
    sigma = (x - a) / a
    eta = np.sign(sigma) * np.sqrt(np.maximum(-2.0 * _log1pmx(sigma), 0.0))
    # c_k(eta) as polynomials in eta (degree 24), then sum_k c_k a^-k until the terms converge or
    # start to grow (the series is asymptotic)
    d = np.array(_TEMME_D)  # host: igamma's expansion runs on host arrays
    ck = np.zeros((d.shape[0],) + a.shape)  # host: as above
    for n in range(d.shape[1] - 1, -1, -1):
        ck = ck * eta + d[:, n, None]
    total = np.zeros_like(a)
    old = np.full(a.shape, np.inf)  # host: as above
    live = np.ones(a.shape, dtype=bool)  # host: as above
    afac = np.ones_like(a)
    for k in range(len(_TEMME_D)):
        term = ck[k] * afac
        live &= np.abs(term) <= old
        total = np.where(live, total + term, total)
        live &= np.abs(term) >= _MACHEP * np.abs(total)
        if not live.any():  # host: stopping test
            break
        old = np.abs(term)
        afac = afac / a
    rest = np.exp(-0.5 * a * eta * eta) * total / np.sqrt(2 * math.pi * a)
    half = eta * np.sqrt(a / 2)
    return 0.5 * _erfc64(-half) - rest, 0.5 * _erfc64(half) + rest


def _igam_pair(a: Any, x: Any) -> tuple[Any, Any]:
    """(P(a, x), Q(a, x)) of float64 host arrays with a > 0 and x > 0 finite, each computed so that a
    small value keeps its relative digits (Cephes' regions, torch's calc_igamma/calc_igammac)."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(x))
    a = np.broadcast_to(np.asarray(a, np.float64), shape).ravel()  # host: host arrays
    x = np.broadcast_to(np.asarray(x, np.float64), shape).ravel()  # host: as above
    p, q = np.empty_like(a), np.empty_like(a)
    # Cephes takes the expansion for 20 < a < 200 with |x - a| / a < 0.3, and above 200 only within
    # 4.5 sqrt(a) of a; the expansion holds on the same range of eta for every larger a (its terms
    # shrink with a), and outside it the series and fraction converge in a bounded number of terms
    asym = (a > 20) & (np.abs(x - a) < 0.3 * a)
    with np.errstate(all="ignore"):
        log_x = np.log(x)
        small_x_series = np.where(x <= 0.5, -0.4 / log_x >= a, x * 1.1 >= a)
    upper = (x > 1) & (x > a)  # where P is 1 - Q
    cf = ~asym & (x > 1.1) & (x >= a)
    cs = ~asym & ~cf & (x <= 1.1) & small_x_series
    ps = ~asym & ~upper
    with np.errstate(all="ignore"):
        if asym.any():  # host: which method applies
            p[asym], q[asym] = _igam_asymptotic(a[asym], x[asym])
        if ps.any():  # host: as above
            p[ps] = _igam_series(a[ps], x[ps])
            q[ps] = 1.0 - p[ps]
        if cf.any():  # host: as above
            q[cf] = _igamc_continued_fraction(a[cf], x[cf])
        if cs.any():  # host: as above
            q[cs] = _igamc_series(a[cs], x[cs])
    p = np.where(~asym & upper, 1.0 - q, p)
    return p.reshape(shape), q.reshape(shape)


def gammainc_array(a: Any, x: Any) -> Any:
    """The regularised lower incomplete gamma P(a, x) of float64 host arrays (a > 0, x >= 0)."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))  # host: host arrays
    positive = x > 0
    p, _ = _igam_pair(a, np.where(positive, x, 1.0))
    return np.where(positive, np.where(np.isinf(x), 1.0, p), 0.0)


# torch's bivariate rational approximation of the gradient for x >= 0.8 and alpha <= 8 (Distributions.h):
# rows 0, 1, 2 are the coefficients of u^0, u^1, u^2; columns 0-3 the numerator's, 4-7 the denominator's in v
_GAMMA_GRAD_UV = (
    (0.16009398, -0.094634809, 0.025146376, -0.0030648343, 1.0, 0.32668115, 0.10406089, 0.0014179084),
    (0.53487893, 0.1298071, 0.065735949, -0.0015649758, 0.16639465, 0.020070113, -0.0035938915, -0.00058392623),
    (0.040121004, -0.0065914022, -0.0026286047, -0.0013441777, 0.017050642, -0.0021309326, 0.00085092367,
     -1.5247877e-07),
)  # fmt: skip
# torch's thresholds are float literals (0.8f...), compared in double: their float32 values
_F32_0_8, _F32_0_9, _F32_1_1 = (float(np.float32(v)) for v in (0.8, 0.9, 1.1))  # host: constants


def standard_gamma_grad(alpha: Any, x: Any) -> Any:
    """d x / d alpha for x ~ Gamma(alpha, 1) held at a fixed quantile (the implicit reparameterisation
    gradient -(dP/dalpha)(alpha, x) / p(x; alpha)), as torch's ``_standard_gamma_grad`` computes it
    (``standard_gamma_grad_one``, in float64): a Taylor series in x below 0.8, Rice's saddle-point
    expansion for alpha above 8, a bivariate rational approximation otherwise."""
    alpha = np.asarray(alpha, np.float64)  # host: host arrays
    x = np.asarray(x, np.float64)  # host: as above
    shape = np.broadcast_shapes(alpha.shape, x.shape)
    alpha, x = (np.ascontiguousarray(v).ravel() for v in np.broadcast_arrays(alpha, x))  # host: as above
    out = np.empty_like(x)
    small = x < _F32_0_8
    large = ~small & (alpha > 8.0)
    rational = ~small & ~large
    with np.errstate(all="ignore"):
        if small.any():  # host: which approximation applies
            a, v = alpha[small], x[small]
            numer, denom = np.ones_like(v), a.copy()
            series1, series2 = numer / denom, numer / (denom * denom)
            for i in range(1, 6):
                numer = numer * (-v / i)
                denom = denom + 1.0
                series1 = series1 + numer / denom
                series2 = series2 + numer / (denom * denom)
            pow_x_alpha = np.power(v, a)
            pdf = np.power(v, a - 1.0) * np.exp(-v)
            # torch's digamma here (digamma_one) is +inf at 0 and the negative integers
            psi = np.where((a <= 0) & (a == np.floor(a)), np.inf, digamma_array(a))
            cdf_alpha = (np.log(v) - psi) * (pow_x_alpha * series1) - pow_x_alpha * series2
            result = -cdf_alpha / pdf
            out[small] = np.where(np.isnan(result), 0.0, result)
        if large.any():  # host: as above
            a, v = alpha[large], x[large]
            near = (_F32_0_9 * a <= v) & (v <= _F32_1_1 * a)
            # the mode's neighbourhood: a polynomial (the expansion below is singular at x = alpha)
            numer_1 = 1.0 + 24.0 * a * (1.0 + 12.0 * a)
            numer_2 = 1440.0 * (a * a) + 6.0 * v * (53.0 - 120.0 * v) - 65.0 * v * v / a + a * (107.0 + 3600.0 * v)
            at_mode = numer_1 * numer_2 / (1244160.0 * (a * a) * (a * a))
            denom = np.sqrt(8.0 * a)
            term2 = denom / (a - v)
            term3 = np.power(v - a - a * np.log(v / a), -1.5)
            term23 = np.where(v < a, term2 - term3, term2 + term3)
            term1 = np.log(v / a) * term23 - np.sqrt(2.0 / a) * (a + v) / ((a - v) * (a - v))
            stirling = 1.0 + 1.0 / (12.0 * a) * (1.0 + 1.0 / (24.0 * a))
            out[large] = np.where(near, at_mode, -stirling * (v * term1) / denom)
        if rational.any():  # host: as above
            a, v = alpha[rational], x[rational]
            u, w = np.log(v / a), np.log(a)
            # the coefficients of v's powers as one product of u's powers with the table (eight
            # Horner steps over the array would cost twice this)
            c = np.stack([np.ones_like(u), u, u * u], axis=1) @ np.array(_GAMMA_GRAD_UV)  # host: as above
            p = c[:, 0] + w * (c[:, 1] + w * (c[:, 2] + w * c[:, 3]))
            q = c[:, 4] + w * (c[:, 5] + w * (c[:, 6] + w * c[:, 7]))
            out[rational] = np.exp(p / q)
    return out.reshape(shape)


def _igamma_array(a: Any, x: Any, upper: bool) -> Any:
    """P(a, x) (or Q = 1 - P with ``upper``) of two arrays with torch's edge values: NaN for a < 0,
    x < 0, a = x = 0 or a = x = inf; P = 1 at a = 0 < x and at x = inf; P = 0 at x = 0 and at
    a = inf."""
    dtype = np.result_type(a.dtype, x.dtype)
    on = x if type(a) is np.ndarray else a  # the result goes back to the device of the operands
    host_a, host_x = to_host(a), to_host(x)  # host: the series below is host work
    a64, x64 = np.broadcast_arrays(np.asarray(host_a, np.float64), np.asarray(host_x, np.float64))  # host: as above
    ordinary = (a64 > 0) & (x64 > 0) & np.isfinite(a64) & np.isfinite(x64)
    kernels = jit_gate.kernels(_JIT_SPECIAL, a64) if a64.size >= JIT_SPECIAL_MIN_SIZE else None
    if kernels is not None:  # per element, each iterating only as far as it needs (ops._jit_special.igamma)
        value = np.empty(a64.shape, np.float64)  # host: the kernel's output
        kernels.igamma(
            np.where(ordinary, a64, 1.0).ravel(), np.where(ordinary, x64, 1.0).ravel(), upper, value.reshape(-1)
        )
    else:
        p, q = _igam_pair(np.where(ordinary, a64, 1.0), np.where(ordinary, x64, 1.0))
        value = q if upper else p
    one, zero = (0.0, 1.0) if upper else (1.0, 0.0)
    # torch's edge cases, tested in its order (so igamma(nan, inf) is 1, igamma(nan, 0) is 0 and
    # igamma(inf, nan) is 0); whatever is left that is not ordinary holds a NaN
    nan = np.nan
    edges = (
        ((a64 < 0) | (x64 < 0), nan),
        ((a64 == 0) & (x64 > 0), one),
        (a64 == 0, nan),
        (x64 == 0, zero),
        (np.isinf(a64) & np.isinf(x64), nan),
        (np.isinf(a64), zero),
        (np.isinf(x64), one),
        (~ordinary, nan),
    )
    value = np.select([c for c, _ in edges], [v for _, v in edges], value)
    return like(backend.as_array(value).astype(dtype), on)


def _check_igamma_inputs(name: str, a: Tensor, x: Tensor) -> None:
    # one floating operand is enough: the other is promoted to it, as torch does
    if a.array.dtype.kind != "f" and x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"{name}: expected at least one floating tensor, got {a.dtype} and {x.dtype}")


def igamma(a: Any, x: Any) -> Tensor:
    """The regularised lower incomplete gamma function P(a, x) (torch.igamma, torch.special.gammainc),
    differentiable in ``x`` (d/dx = x^(a-1) e^-x / Gamma(a)); like torch it has no gradient in ``a``.

    Example:
        >>> import downslope as ds
        >>> ds.igamma(ds.tensor([1.0, 2.0]), ds.tensor([2.0, 1.0]))
        tensor([0.8647, 0.2642])
    """
    a, x = _lift(a), _lift(x)
    _check_igamma_inputs("igamma", a, x)
    a, x = _pair_float(a, x)
    return record_op(_igamma_array(a.array, x.array, False), (a, x), _igamma_vjp, 1.0)


def igammac(a: Any, x: Any) -> Tensor:
    """The regularised upper incomplete gamma function Q(a, x) = 1 - P(a, x) (torch.igammac,
    torch.special.gammaincc), differentiable in ``x`` only, as in torch.

    Example:
        >>> import downslope as ds
        >>> ds.igammac(ds.tensor([1.0]), ds.tensor([2.0]))
        tensor([0.1353])
    """
    a, x = _lift(a), _lift(x)
    _check_igamma_inputs("igammac", a, x)
    a, x = _pair_float(a, x)
    return record_op(_igamma_array(a.array, x.array, True), (a, x), _igamma_vjp, -1.0)


def _igamma_vjp(g, y, args, saved, needs, xp):
    a, x = args
    if needs[0]:
        raise UnimplementedError(
            "igamma/igammac: the derivative with respect to a (the first argument) is not implemented, as in "
            "torch; got a tensor that requires grad as a (detach it, or differentiate in x only)"
        )
    if not needs[1]:
        return (None, None)
    ad = xp.data(a)
    xd = xp.data(x)
    lg = lgamma_array(np.broadcast_to(ad, np.broadcast_shapes(ad.shape, xd.shape)))
    # x^(a-1) e^-x / Gamma(a), with 0^0 = 1 at a = 1
    log_x = xp.log(xp.where(xd > 0, x, 1.0))
    power = xp.where(ad == 1, 0.0, log_x * (ad - 1))
    power = xp.where((xd == 0) & (ad < 1), np.inf, xp.where((xd == 0) & (ad > 1), -np.inf, power))
    density = xp.exp(power - x - lg)
    return (None, xp.sum_to(g * density * saved, x.shape))


_igamma_vjp.reads_output = False  # type: ignore[attr-defined]


# torch's input=/other=/out= keywords for lgamma and igamma, given here rather than at the top level:
# downslope.distributions imports these, and they must stay the top level's very objects
lgamma = with_out(lgamma)
igamma = with_out(igamma)
gammainc, gammaincc = igamma, igammac


def mvlgamma(x: Any, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension ``p`` (torch.mvlgamma):
    sum_{i<p} lgamma(x - i/2) + p(p-1)/4 log(pi).

    Example:
        >>> import downslope as ds
        >>> ds.mvlgamma(ds.tensor([2.5, 3.0]), 2)
        tensor([0.857 , 1.5502])
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ArgumentError(f"mvlgamma: p must be an int >= 1, got {p!r}")
    x = _lift_float(x)
    steps = np.arange(-p / 2 + 0.5, 0.5, 0.5).astype(x.array.dtype)  # host: p shifts, from Python numbers
    shifts = wrap_array(like(backend.as_array(steps), x.array))
    terms = lgamma(x.unsqueeze(-1) + shifts)
    return terms.sum(-1) + p * (p - 1) / 4 * math.log(math.pi)


multigammaln = mvlgamma


# Cephes' Chebyshev coefficients (as torch uses) for exp(-x) I0(x) and exp(-x) I1(x) / x on [0, 8]
# (A) and for sqrt(x) exp(-x) I0(x), sqrt(x) exp(-x) I1(x) on (8, inf) (B, in 32/x - 2).
_I0_A = (
    -4.41534164647933937950e-18, 3.33079451882223809783e-17, -2.43127984654795469359e-16,
    1.71539128555513303061e-15, -1.16853328779934516808e-14, 7.67618549860493561688e-14,
    -4.85644678311192946090e-13, 2.95505266312963983461e-12, -1.72682629144155570723e-11,
    9.67580903537323691224e-11, -5.18979560163526290666e-10, 2.65982372468238665035e-9,
    -1.30002500998624804212e-8, 6.04699502254191894932e-8, -2.67079385394061173391e-7,
    1.11738753912010371815e-6, -4.41673835845875056359e-6, 1.64484480707288970893e-5,
    -5.75419501008210370398e-5, 1.88502885095841655729e-4, -5.76375574538582365885e-4,
    1.63947561694133579842e-3, -4.32430999505057594430e-3, 1.05464603945949983183e-2,
    -2.37374148058994688156e-2, 4.93052842396707084878e-2, -9.49010970480476444210e-2,
    1.71620901522208775349e-1, -3.04682672343198398683e-1, 6.76795274409476084995e-1,
)  # fmt: skip
_I0_B = (
    -7.23318048787475395456e-18, -4.83050448594418207126e-18, 4.46562142029675999901e-17,
    3.46122286769746109310e-17, -2.82762398051658348494e-16, -3.42548561967721913462e-16,
    1.77256013305652638360e-15, 3.81168066935262242075e-15, -9.55484669882830764870e-15,
    -4.15056934728722208663e-14, 1.54008621752140982691e-14, 3.85277838274214270114e-13,
    7.18012445138366623367e-13, -1.79417853150680611778e-12, -1.32158118404477131188e-11,
    -3.14991652796324136454e-11, 1.18891471078464383424e-11, 4.94060238822496958910e-10,
    3.39623202570838634515e-9, 2.26666899049817806459e-8, 2.04891858946906374183e-7,
    2.89137052083475648297e-6, 6.88975834691682398426e-5, 3.36911647825569408990e-3,
    8.04490411014108831608e-1,
)  # fmt: skip
_I1_A = (
    2.77791411276104639959e-18, -2.11142121435816608115e-17, 1.55363195773620046921e-16,
    -1.10559694773538630805e-15, 7.60068429473540693410e-15, -5.04218550472791168711e-14,
    3.22379336594557470981e-13, -1.98397439776494371520e-12, 1.17361862988909016308e-11,
    -6.66348972350202774223e-11, 3.62559028155211703701e-10, -1.88724975172282928790e-9,
    9.38153738649577178388e-9, -4.44505912879632808065e-8, 2.00329475355213526229e-7,
    -8.56872026469545474066e-7, 3.47025130813767847674e-6, -1.32731636560394358279e-5,
    4.78156510755005422638e-5, -1.61760815825896745588e-4, 5.12285956168575772895e-4,
    -1.51357245063125314899e-3, 4.15642294431288815669e-3, -1.05640848946261981558e-2,
    2.47264490306265168283e-2, -5.29459812080949914269e-2, 1.02643658689847095384e-1,
    -1.76416518357834055153e-1, 2.52587186443633654823e-1,
)  # fmt: skip
_I1_B = (
    7.51729631084210481353e-18, 4.41434832307170791151e-18, -4.65030536848935832153e-17,
    -3.20952592199342395980e-17, 2.96262899764595013876e-16, 3.30820231092092828324e-16,
    -1.88035477551078244854e-15, -3.81440307243700780478e-15, 1.04202769841288027642e-14,
    4.27244001671195135429e-14, -2.10154184277266431302e-14, -4.08355111109219731823e-13,
    -7.19855177624590851209e-13, 2.03562854414708950722e-12, 1.41258074366137813316e-11,
    3.25260358301548823856e-11, -1.89749581235054123450e-11, -5.58974346219658380687e-10,
    -3.83538038596423702205e-9, -2.63146884688951950684e-8, -2.51223623787020892529e-7,
    -3.88256480887769039346e-6, -1.10588938762623716291e-4, -9.76109749136146840777e-3,
    7.78576235018280120474e-1,
)  # fmt: skip


def _chbevl(t: Any, coefficients: tuple[float, ...]) -> Any:
    """Cephes' Chebyshev series (highest degree first) at ``t`` in [-2, 2]."""
    b0 = t * 0 + coefficients[0]
    b1 = t * 0
    b2 = b1
    for c in coefficients[1:]:
        b2, b1 = b1, b0
        b0 = t * b1
        b0 -= b2
        b0 += c
    return 0.5 * (b0 - b2)


def _single_precision_terms(coefficients: tuple[float, ...]) -> tuple[float, ...]:
    """A Chebyshev series (highest degree first) without its leading terms below 1e-10: they change
    the sums (at least 0.1 here) by under 1e-9 relative, far below float32's half ulp (3e-8)."""
    first = next(i for i, c in enumerate(coefficients) if abs(c) >= 1e-10)
    return coefficients[first:]


_SERIES_SINGLE = {id(c): _single_precision_terms(c) for c in (_I0_A, _I0_B, _I1_A, _I1_B)}


def _bessel_scaled64(x: Any, order: int, single: bool = False) -> Any:
    """exp(-|x|) I_order(x) of a float64 array of any namespace (order 0 or 1), Cephes' two-interval
    expansion, each interval's series only on its own elements; with ``single`` the series shortened
    to float32's precision (for a result rounded to float32 or float16)."""
    xp = backend.namespace_of(x)
    z = xp.abs(x)
    a_terms: tuple[float, ...] = _I0_A if order == 0 else _I1_A
    b_terms: tuple[float, ...] = _I0_B if order == 0 else _I1_B
    if single:
        a_terms, b_terms = _SERIES_SINGLE[id(a_terms)], _SERIES_SINGLE[id(b_terms)]
    if order == 0:
        small, large = (
            (lambda v: _chbevl(v / 2.0 - 2.0, a_terms)),
            (lambda v: _chbevl(32.0 / v - 2.0, b_terms) / xp.sqrt(v)),
        )
    else:
        small, large = (
            (lambda v: _chbevl(v / 2.0 - 2.0, a_terms) * v),
            (lambda v: _chbevl(32.0 / v - 2.0, b_terms) / xp.sqrt(v)),
        )
    with np.errstate(all="ignore"):
        out = _erf.piecewise(z, ((z <= 8.0, small, 1.0), (z > 8.0, large, 9.0)))
        if order == 1:
            out = xp.where(x < 0, -out, out)
    return out


def _bessel_scaled(a: Any, order: int) -> Any:
    """exp(-|x|) I_order(x) in float64 (order 0 or 1) of an array of any dtype."""
    return _bessel_scaled64(_f64(a)[1], order)


def _bessel_unscaled64(x: Any, order: int, single: bool = False) -> Any:
    """I_order(x) of a float64 array (inf where it overflows)."""
    xp = backend.namespace_of(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return _bessel_scaled64(x, order, single) * xp.exp(xp.abs(x))


def _modified_bessel(a: Any, order: int, scaled: bool) -> Any:
    values = _bessel_scaled64 if scaled else _bessel_unscaled64
    with np.errstate(over="ignore"):
        return _erf.on_host_blocks(partial(values, order=order, single=a.dtype.itemsize <= 4), a)


def i0e_array(a: Any) -> Any:
    """exp(-|x|) I0(x) of an array, in its dtype (a large host float32/float64 array through the
    compiled kernel where numba is on: the same series in one SIMD loop)."""
    compiled = _compiled("i0e_single" if a.dtype == np.float32 else "i0e_double", a)
    return _modified_bessel(a, 0, scaled=True) if compiled is None else compiled


def i1e_array(a: Any) -> Any:
    """exp(-|x|) I1(x) of an array, in its dtype (the compiled kernel as :func:`i0e_array`)."""
    compiled = _compiled("i1e_single" if a.dtype == np.float32 else "i1e_double", a)
    return _modified_bessel(a, 1, scaled=True) if compiled is None else compiled


def i0_array(a: Any) -> Any:
    """I0(x) of an array, in its dtype (inf where it overflows)."""
    return _modified_bessel(a, 0, scaled=False)


def i1_array(a: Any) -> Any:
    """I1(x) of an array, in its dtype."""
    return _modified_bessel(a, 1, scaled=False)


def i0(x: Any) -> Tensor:
    """The modified Bessel function of the first kind of order 0 (torch.i0); its derivative is i1.

    Example:
        >>> import downslope as ds
        >>> ds.i0(ds.tensor([0.0, 1.0]))
        tensor([1.    , 1.2661])
    """
    x = _lift_float(x)
    return record_op(i0_array(x.array), (x,), _i0_vjp)


def _i0_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * (i1(x) if xp.differentiable else i1_array(x)),)


def i1(x: Any) -> Tensor:
    """The modified Bessel function of the first kind of order 1 (torch.special.i1); its derivative
    is i0(x) - i1(x) / x (1/2 at 0).

    Example:
        >>> import downslope as ds
        >>> ds.special.i1(ds.tensor([0.0, 1.0]))
        tensor([0.    , 0.5652])
    """
    x = _lift_float(x)
    return record_op(i1_array(x.array), (x,), _i1_vjp)


def _i1_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    tiny = _below_normal(xp, x)
    safe = xp.where(tiny, 1.0, x)
    i0x = i0(x) if xp.differentiable else i0_array(x)
    return (g * xp.where(tiny, 0.5, i0x - y / safe),)


def _below_normal(xp: Any, x: Any) -> Any:
    """Where |x| is 0 or subnormal: there I1(x)/x would lose x/2 to underflow and 1/x overflow, and
    the derivatives of i1 and i1e are 1/2 to the dtype's precision (their corrections are O(|x|))."""
    data = xp.data(x)
    tiny = float(np.finfo(data.dtype).tiny)  # host: the dtype's constant
    return (data < tiny) & (data > -tiny)


def i0e(x: Any) -> Tensor:
    """exp(-|x|) I0(x) (torch.special.i0e), which does not overflow; d/dx = i1e(x) - sign(x) i0e(x).

    Example:
        >>> import downslope as ds
        >>> ds.special.i0e(ds.tensor([0.0, 1.0]))
        tensor([1.    , 0.4658])
    """
    x = _lift_float(x)
    return record_op(i0e_array(x.array), (x,), _i0e_vjp)


def _i0e_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * ((i1e(x) if xp.differentiable else i1e_array(x)) - xp.sign(x) * y),)


def i1e(x: Any) -> Tensor:
    """exp(-|x|) I1(x) (torch.special.i1e); d/dx = i0e(x) - i1e(x) (sign(x) + 1/x) (1/2 at 0).

    Example:
        >>> import downslope as ds
        >>> ds.special.i1e(ds.tensor([0.0, 1.0]))
        tensor([0.    , 0.2079])
    """
    x = _lift_float(x)
    return record_op(i1e_array(x.array), (x,), _i1e_vjp)


def _i1e_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    tiny = _below_normal(xp, x)
    safe = xp.where(tiny, 1.0, x)
    i0x = i0e(x) if xp.differentiable else i0e_array(x)
    return (g * xp.where(tiny, 0.5, i0x - y * (xp.sign(x) + 1.0 / safe)),)


def _erfc64(x: Any) -> Any:
    """erfc of a float64 array of any namespace, accurate in the far tail (where 1 - erf loses every
    digit): ``ops._erf``'s, CuPy's kernel on a GPU."""
    return _erf.erfc_array(x)


def _exp_square(xp: Any, x: Any) -> Any:
    """exp(x * x) without the rounding of x * x magnified by exp: x = hi + lo with hi a multiple of
    2^-21, so hi * hi is exact wherever exp(x^2) is finite, and the small rest is exact enough."""
    hi = (x * 2097152.0).round() / 2097152.0  # 2^21: below 32 (exp(x^2) overflows beyond 27) 26 bits at most
    lo = x - hi
    return xp.exp(hi * hi) * xp.exp(lo * (x + hi))


def _erfcx_positive(xp: Any, x: Any) -> Any:
    """exp(x^2) erfc(x) for x >= 1: Cephes' erfc is exp(-x^2) times these ratios, so they are erfcx
    itself, without the exponentials (and without their overflow and underflow)."""

    def asymptotic(v: Any) -> Any:
        # 1 / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(2x^2)^2 - ...): R / S drifts from it beyond 25 (its
        # leading coefficient is 1/sqrt(pi) to 15 digits), and its powers of x overflow beyond 1e51
        inv2 = 1.0 / (2.0 * v * v)
        series = term = xp.ones_like(v)
        for k in range(1, 10):
            term = -term * (2 * k - 1) * inv2
            series = series + term
        return series / (v * math.sqrt(math.pi))

    return _erf.piecewise(
        x,
        (
            (x < 8.0, lambda v: _erf.polevl(v, _erf._P) / _erf.p1evl(v, _erf._Q), 4.0),
            ((x >= 8.0) & (x < 25.0), lambda v: _erf.polevl(v, _erf._R) / _erf.p1evl(v, _erf._S), 10.0),
            (x >= 25.0, asymptotic, 30.0),
        ),
    )


def _erfcx64(x: Any) -> Any:
    """exp(x^2) erfc(x) of a float64 array of any namespace (inf below -26.6, where it overflows)."""
    xp = backend.namespace_of(x)
    a = xp.abs(x)
    return _erf.piecewise(
        x,
        (
            (a < 1.0, lambda v: xp.exp(v * v) * _erf.erfc64(v), 0.5),
            (x >= 1.0, partial(_erfcx_positive, xp), 2.0),
            # erfc(x) = 2 - erfc(-x): 2 exp(x^2) - erfcx(-x), exp(x^2) without the rounding of x * x magnified
            (
                x <= -1.0,
                lambda v: xp.where(v > -27.0, 2.0 * _exp_square(xp, v) - _erfcx_positive(xp, -v), xp.inf),
                -2.0,
            ),
        ),
    )


def erfcx_array(a: Any) -> Any:
    """exp(x^2) erfc(x) of an array, in its dtype."""
    with np.errstate(all="ignore"):
        return _erf.on_host_blocks(_erfcx64, a)


def erfcx(x: Any) -> Tensor:
    """The scaled complementary error function exp(x^2) erfc(x) (torch.special.erfcx); d/dx =
    2 x erfcx(x) - 2/sqrt(pi).

    Example:
        >>> import downslope as ds
        >>> ds.special.erfcx(ds.tensor([0.0, 30.0]))
        tensor([1.    , 0.0188])
    """
    x = _lift_float(x)
    return record_op(erfcx_array(x.array), (x,), _erfcx_vjp)


def _erfcx_vjp(g, y, args, saved, needs, xp):
    return (g * (2.0 * args[0] * y - 2.0 / math.sqrt(math.pi)),)


def ndtr_array(a: Any) -> Any:
    """The standard normal CDF of an array, in its dtype (via erfc: accurate in the lower tail)."""
    with np.errstate(all="ignore"):
        return _erf.on_host_blocks(lambda x: 0.5 * _erf.erfc64(x * -_SQRT_HALF, single=a.dtype.itemsize <= 4), a)


def ndtr(x: Any) -> Tensor:
    """The standard normal CDF (torch.special.ndtr); its derivative is the normal density.

    Example:
        >>> import downslope as ds
        >>> ds.special.ndtr(ds.tensor([0.0, 1.0]))
        tensor([0.5   , 0.8413])
    """
    x = _lift_float(x)
    return record_op(ndtr_array(x.array), (x,), _ndtr_vjp)


def _ndtr_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * xp.exp(x * x * -0.5) * (1.0 / math.sqrt(2 * math.pi)),)


# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9), polished below
_ACKLAM_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
             -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_ACKLAM_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
             -1.328068155288572e01)  # fmt: skip
_ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
             4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)


_ACKLAM_LOW = 0.02425  # below it (and above 1 - it) the tail's approximation


def _poly(t: Any, coefficients: tuple[float, ...]) -> Any:
    out = t * 0 + coefficients[0]
    for c in coefficients[1:]:
        out = out * t + c
    return out


def _acklam_centre(u: Any) -> Any:
    """ndtri(1/2 + u) for |u| <= 1/2 - _ACKLAM_LOW (Acklam's central rational function)."""
    s = u * u
    return u * _erf.polevl(s, _ACKLAM_A) / (_erf.polevl(s, _ACKLAM_B) * s + 1)


def _acklam_tail(xp: Any, low: Any) -> Any:
    """ndtri(low) for 0 < low < _ACKLAM_LOW (negative; the upper tail is its mirror image)."""
    r = xp.sqrt(-2 * xp.log(low))
    return _erf.polevl(r, _ACKLAM_C) / (_erf.polevl(r, _ACKLAM_D) * r + 1)


def _ndtri64(p: Any, steps: int) -> Any:
    """ndtri of a float64 array of any namespace: Acklam's approximation (1.2e-9 relative), then
    ``steps`` Halley steps on the CDF, its error measured with erf near the centre and on the side of
    the smaller tail beyond, where erfc keeps its digits (full precision, also for p near 0, 1/2, 1)."""
    xp = backend.namespace_of(p)
    inside = (p > 0) & (p < 1)
    lower, upper = inside & (p < _ACKLAM_LOW), inside & (p > 1 - _ACKLAM_LOW)
    x = _erf.piecewise(
        p,
        (
            (lower, partial(_acklam_tail, xp), 0.01),
            (upper, lambda v: -_acklam_tail(xp, 1.0 - v), 0.99),
            (inside & ~lower & ~upper, lambda v: _acklam_centre(v - 0.5), 0.5),
        ),
        default=0.0,
    )
    for _ in range(steps):
        # Phi(x) - p = (erf(x / sqrt 2) / 2) - (p - 1/2) near the centre, where p - 1/2 keeps its digits,
        # and from the smaller tail beyond (erf - 1 = -erfc there, by its own formula)
        t = xp.abs(x) * _SQRT_HALF
        half_erf = 0.5 * _erf.erf_split(t)
        # the three cases by 0/1 indicators, not selects (a mispredicted branch each on mixed ranges);
        # each product by 0 is exactly 0, so every element keeps its own case's value
        beyond, negative = (t > 1.0).astype(x.dtype), xp.signbit(x).astype(x.dtype)
        tails = negative * (-half_erf - p) + (1.0 - negative) * ((1 - p) + half_erf)
        err = beyond * tails + (1.0 - beyond) * (xp.copysign(half_erf, x) - (p - 0.5))
        step = err * math.sqrt(2 * math.pi) * xp.exp(x * x * 0.5)
        x = x - step / (1 + x * step / 2)
    return xp.where(inside, x, xp.where(p == 0, -xp.inf, xp.where(p == 1, xp.inf, xp.nan)))


def ndtri_array(a: Any) -> Any:
    """The standard normal quantile of an array, in its dtype: Acklam's approximation, within
    float32's precision as it is, and one Halley step for float64."""
    with np.errstate(all="ignore"):
        return _erf.on_host_blocks(partial(_ndtri64, steps=0 if a.dtype.itemsize <= 4 else 1), a)


def ndtri(x: Any) -> Tensor:
    """The inverse of the standard normal CDF (torch.special.ndtri): -inf at 0, inf at 1, NaN
    outside [0, 1]; d/dp = sqrt(2 pi) exp(ndtri(p)^2 / 2).

    Example:
        >>> import downslope as ds
        >>> ds.special.ndtri(ds.tensor([0.5, 0.975]))
        tensor([0.  , 1.96])
    """
    x = _lift_float(x)
    return record_op(ndtri_array(x.array), (x,), _ndtri_vjp)


def _ndtri_vjp(g, y, args, saved, needs, xp):
    return (g * xp.exp(y * y * 0.5) * math.sqrt(2 * math.pi),)


_ndtri_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _log_ndtr64(x: Any) -> Any:
    """log ndtr(x) of a float64 array of any namespace."""
    xp = backend.namespace_of(x)

    def lower(v: Any) -> Any:
        t = v * _SQRT_HALF
        return xp.log(_erfcx64(-t) * 0.5) - t * t

    return _erf.piecewise(
        x, ((x < -1, lower, -2.0), (x >= -1, lambda v: xp.log1p(_erf.erfc64(v * _SQRT_HALF) * -0.5), 0.0))
    )


def log_ndtr_array(a: Any) -> Any:
    """log of the standard normal CDF of an array, in its dtype: log(erfcx(-x/sqrt 2)/2) - x^2/2 below
    -1 (no underflow), log1p(-erfc(x/sqrt 2)/2) above."""
    with np.errstate(all="ignore"):
        return _erf.on_host_blocks(_log_ndtr64, a)


def log_ndtr(x: Any) -> Tensor:
    """log of the standard normal CDF (torch.special.log_ndtr), accurate far in the lower tail;
    d/dx = exp(-x^2/2 - log_ndtr(x)) / sqrt(2 pi).

    Example:
        >>> import downslope as ds
        >>> ds.special.log_ndtr(ds.tensor([0.0, -10.0]))
        tensor([ -0.6931, -53.2313])
    """
    x = _lift_float(x)
    return record_op(log_ndtr_array(x.array), (x,), _log_ndtr_vjp)


def _log_ndtr_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * xp.exp(x * x * -0.5 - y) * (1.0 / math.sqrt(2 * math.pi)),)


def xlog1py(x: Any, y: Any) -> Tensor:
    """x * log1p(y), 0 where x == 0 (unless y is NaN), as torch.special.xlog1py; differentiable in both.

    Example:
        >>> import downslope as ds
        >>> ds.special.xlog1py(ds.tensor([0.0, 2.0]), ds.tensor([-1.0, 1.0]))
        tensor([0.    , 1.3863])
    """
    from .arithmetic import _xlog

    return _xlog(x, y, 1.0, "xlog1py")


def entr(x: Any) -> Tensor:
    """Elementwise entropy -x log x (torch.special.entr): 0 at 0, -inf below 0.

    Example:
        >>> import downslope as ds
        >>> ds.special.entr(ds.tensor([0.0, 0.5, -1.0]))
        tensor([0.    , 0.3466,   -inf])
    """
    x = _lift_float(x)
    a = x.array
    xp = backend.namespace_of(a)
    with np.errstate(all="ignore"):
        out = xp.where(a > 0, -a * xp.log(xp.where(a > 0, a, 1.0)), xp.where(a == 0, 0.0, -xp.inf))
        out = xp.where(xp.isnan(a), a, out)
    return record_op(out.astype(a.dtype), (x,), _entr_vjp)


def _entr_vjp(g, y, args, saved, needs, xp):
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN below 0 and inf at 0, as torch's
        return (g * -(xp.log(args[0]) + 1.0),)


# ------------------------------------------------------------ torch.special's orthogonal polynomials
# Each follows torch's kernel (aten/src/ATen/native/Math.h) branch for branch: 0 for n < 0, the values at
# the interval's ends, the closed trigonometric form inside (-1, 1) above a degree, else the three-term
# recurrence; n is truncated to an integer (a NaN or infinite n counts as negative).


def _polynomial_op(name: str, values: Any, x: Any, n: Any) -> Tensor:
    """Run ``values(xp, x64, degree, dtype)`` on torch's result dtype of (x, n); the result carries no
    graph (it does not require grad), as torch's, which has no derivative for it."""
    x, n = _pair_float(x, n)
    dtype = np.result_type(x.array.dtype, n.array.dtype)  # float32 with a float64 tensor n: float64, as torch
    xp = backend.namespace_of(x.array)
    # In float64: torch's float32 kernels round less than NumPy's float32 would (fused multiply-adds),
    # and float64 lands within a rounding of the exact value.
    xa, na = xp.broadcast_arrays(x.array.astype(xp.float64), n.array.astype(xp.float64))
    with np.errstate(all="ignore"):
        degree = xp.where(xp.isfinite(na), xp.trunc(xp.where(xp.isfinite(na), na, -1.0)), -1.0)
        out = values(xp, xa, degree, dtype)
        if dtype != np.float64:
            # torch's kernel runs in the narrower dtype, where a large P_n overflows on to inf - inf: its NaN
            narrow = values(xp, xa.astype(dtype), degree.astype(dtype), dtype)
            out = xp.where(xp.isnan(narrow), narrow, out)
        out = out.astype(dtype)
    return wrap_array(out)


def _recurrence(xp: Any, degree: Any, todo: Any, first: Any, second: Any, step: Any) -> Any:
    """P_n by P_k = step(k, P_(k-1), P_(k-2)) from P_0 = first, P_1 = second, where ``todo`` (elsewhere
    the caller's branches decide), in the dtype of ``degree``."""
    p, q = xp.zeros_like(degree) + first, xp.zeros_like(degree) + second
    # host: the loop's length is the largest degree the recurrence has to reach
    top = int(to_host(xp.max(xp.where(todo, degree, 0.0)))) if degree.size else 0
    for k in range(2, top + 1):
        r = step(k, q, p)
        active = degree >= k
        p, q = xp.where(active, q, p), xp.where(active, r, q)
    return xp.where(degree == 0, first, q)


def _odd(degree: Any) -> Any:
    return degree % 2 == 1


def _chebyshev_values(kind: str, big: int, shifted: bool) -> Any:
    def values(xp: Any, x: Any, n: Any, dtype: Any) -> Any:
        y = x + x - 1.0 if shifted else x
        at_plus, at_minus = (x == 1.0, x == 0.0) if shifted else (y == 1.0, y == -1.0)
        second = {"t": y, "u": y + y, "v": y + y - 1.0, "w": y + y + 1.0}[kind]
        inside = (n > big) & (xp.abs(y) < 1.0) & ~at_plus & ~at_minus
        todo = (n >= 2) & ~inside & ~at_plus & ~at_minus
        out = _recurrence(xp, n, todo, 1.0, second, lambda k, q, p: (y + y) * q - p)
        theta = xp.arccos(xp.clip(y, -1.0, 1.0))
        odd, two_n1 = _odd(n), n + n + 1.0
        if kind == "t":
            closed = xp.cos(n * theta)
            plus, minus = 1.0, xp.where(odd, -1.0, 1.0)
        elif kind == "u":
            s = xp.sin(theta)
            closed = xp.where(s != 0.0, xp.sin((n + 1) * theta) / xp.where(s != 0.0, s, 1.0),
                              (n + 1) * xp.cos((n + 1) * theta) / y)  # fmt: skip
            plus, minus = n + 1.0, xp.where(odd, -(n + 1.0), n + 1.0)
        elif kind == "v":
            edge = xp.sin(theta / 2.0) != 1.0
            closed = xp.where(edge, xp.cos((n + 0.5) * theta) / xp.cos(theta / 2.0), xp.where(odd, -two_n1, two_n1))
            plus, minus = 1.0, xp.where(odd, -two_n1, two_n1)
        else:
            edge = xp.cos(theta / 2.0) != 1.0
            parity = xp.where(odd, -1.0, 1.0)
            # torch's unshifted W gives 2n + 1 where cos(theta/2) rounds to 1, its shifted W the parity sign
            fallback = parity if shifted else xp.where(y > 0.0, two_n1, parity)
            closed = xp.where(edge, xp.sin((n + 0.5) * theta) / xp.where(edge, xp.sin(theta / 2.0), 1.0), fallback)
            plus, minus = two_n1, parity
        out = xp.where(inside, closed, out)
        out = xp.where(at_minus, minus, xp.where(at_plus, plus, out))
        return xp.where(n < 0, 0.0, out)

    return values


def _legendre_values(xp: Any, x: Any, n: Any, dtype: Any) -> Any:
    ends = xp.abs(x) == 1.0
    out = _recurrence(xp, n, (n >= 2) & ~ends, 1.0, x, lambda k, q, p: ((k + k - 1) * x * q - (k - 1) * p) / k)
    out = xp.where(ends, xp.where((x > 0.0) | ~_odd(n), 1.0, -1.0), out)
    return xp.where(n < 0, 0.0, out)


def _hermite_limit(dtype: Any) -> int:
    return 128 if np.dtype(dtype).itemsize <= 4 else 512  # torch's: past it the recurrence is NaN


def _hermite_h_values(xp: Any, x: Any, n: Any, dtype: Any) -> Any:
    over = n > _hermite_limit(dtype)
    out = _recurrence(xp, n, (n >= 2) & ~over, 1.0, x + x, lambda k, q, p: (x + x) * q - (2 * k - 2) * p)
    out = xp.where(over, xp.nan, out)
    return xp.where(n < 0, 0.0, out)


def _hermite_he_values(xp: Any, x: Any, n: Any, dtype: Any) -> Any:
    over = n > _hermite_limit(dtype)
    out = _recurrence(xp, n, (n >= 2) & ~over, 1.0, x, lambda k, q, p: x * q - (k - 1) * p)
    out = xp.where(over, xp.nan, out)
    return xp.where(n < 0, 0.0, out)


def _laguerre_values(xp: Any, x: Any, n: Any, dtype: Any) -> Any:
    zero = x == 0.0
    out = _recurrence(
        xp, n, (n >= 2) & ~zero, 1.0, 1.0 - x, lambda k, q, p: (((k + k - 2) + (1.0 - x)) * q - (k - 1) * p) / k
    )
    out = xp.where(zero, 1.0, out)
    return xp.where(n < 0, 0.0, out)


def _polynomial(name: str, values: Any, formula: str) -> Any:
    def polynomial(input: Any, n: Any) -> Tensor:  # noqa: A002  (torch's keyword)
        return _polynomial_op(name, values, input, n)

    polynomial.__name__ = polynomial.__qualname__ = name
    polynomial.__doc__ = (
        f"{formula} (torch.special.{name}), elementwise over ``input`` and the degree ``n`` (a number or a "
        "tensor, broadcast; truncated to an integer; 0 for n < 0), with torch's branches and result dtype. "
        "Not differentiable, as in torch: the output does not require grad, so a loss that adds it "
        "backpropagates through its other terms only."
    )
    return with_out(polynomial)


chebyshev_polynomial_t = _polynomial("chebyshev_polynomial_t", _chebyshev_values("t", 6, False),
                                     "The Chebyshev polynomial of the first kind T_n(x)")  # fmt: skip
chebyshev_polynomial_u = _polynomial("chebyshev_polynomial_u", _chebyshev_values("u", 8, False),
                                     "The Chebyshev polynomial of the second kind U_n(x)")  # fmt: skip
chebyshev_polynomial_v = _polynomial("chebyshev_polynomial_v", _chebyshev_values("v", 8, False),
                                     "The Chebyshev polynomial of the third kind V_n(x)")  # fmt: skip
chebyshev_polynomial_w = _polynomial("chebyshev_polynomial_w", _chebyshev_values("w", 8, False),
                                     "The Chebyshev polynomial of the fourth kind W_n(x)")  # fmt: skip
shifted_chebyshev_polynomial_t = _polynomial("shifted_chebyshev_polynomial_t", _chebyshev_values("t", 6, True),
                                             "T_n(2x - 1), the shifted Chebyshev polynomial of the first kind")  # fmt: skip
shifted_chebyshev_polynomial_u = _polynomial("shifted_chebyshev_polynomial_u", _chebyshev_values("u", 6, True),
                                             "U_n(2x - 1), the shifted Chebyshev polynomial of the second kind")  # fmt: skip
shifted_chebyshev_polynomial_v = _polynomial("shifted_chebyshev_polynomial_v", _chebyshev_values("v", 6, True),
                                             "V_n(2x - 1), the shifted Chebyshev polynomial of the third kind")  # fmt: skip
shifted_chebyshev_polynomial_w = _polynomial("shifted_chebyshev_polynomial_w", _chebyshev_values("w", 4, True),
                                             "W_n(2x - 1), the shifted Chebyshev polynomial of the fourth kind")  # fmt: skip
legendre_polynomial_p = _polynomial("legendre_polynomial_p", _legendre_values, "The Legendre polynomial P_n(x)")
hermite_polynomial_h = _polynomial("hermite_polynomial_h", _hermite_h_values,
                                   "The physicists' Hermite polynomial H_n(x)")  # fmt: skip
hermite_polynomial_he = _polynomial("hermite_polynomial_he", _hermite_he_values,
                                    "The probabilists' Hermite polynomial He_n(x)")  # fmt: skip
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l", _laguerre_values, "The Laguerre polynomial L_n(x)")


# ------------------------------------------------------------ torch.special's Bessel, Airy and zeta functions
# Ports of the Cephes rational and Chebyshev approximations torch's kernels use (aten/src/ATen/native/Math.h),
# branch for branch, computed in float64 (torch's float32 kernels use float32; they agree within its rounding).
_AIRY_AN = (
    3.46538101525629032477e-01, 1.20075952739645805542e+01, 7.62796053615234516538e+01,
    1.68089224934630576269e+02, 1.59756391350164413639e+02, 7.05360906840444183113e+01,
    1.40264691163389668864e+01, 9.99999999999999995305e-01,
)  # fmt: skip
_AIRY_AD = (
    5.67594532638770212846e-01, 1.47562562584847203173e+01, 8.45138970141474626562e+01,
    1.77318088145400459522e+02, 1.64234692871529701831e+02, 7.14778400825575695274e+01,
    1.40959135607834029598e+01, 1.00000000000000000470e+00,
)  # fmt: skip
_AIRY_AFN = (
    -1.31696323418331795333e-01, -6.26456544431912369773e-01, -6.93158036036933542233e-01,
    -2.79779981545119124951e-01, -4.91900132609500318020e-02, -4.06265923594885404393e-03,
    -1.59276496239262096340e-04, -2.77649108155232920844e-06, -1.67787698489114633780e-08,
)  # fmt: skip
_AIRY_AFD = (
    1.33560420706553243746e+01, 3.26825032795224613948e+01, 2.67367040941499554804e+01,
    9.18707402907259625840e+00, 1.47529146771666414581e+00, 1.15687173795188044134e-01,
    4.40291641615211203805e-03, 7.54720348287414296618e-05, 4.51850092970580378464e-07,
)  # fmt: skip
_AIRY_AGN = (
    1.97339932091685679179e-02, 3.91103029615688277255e-01, 1.06579897599595591108e+00,
    9.39169229816650230044e-01, 3.51465656105547619242e-01, 6.33888919628925490927e-02,
    5.85804113048388458567e-03, 2.82851600836737019778e-04, 6.98793669997260967291e-06,
    8.11789239554389293311e-08, 3.41551784765923618484e-10,
)  # fmt: skip
_AIRY_AGD = (
    9.30892908077441974853e+00, 1.98352928718312140417e+01, 1.55646628932864612953e+01,
    5.47686069422975497931e+00, 9.54293611618961883998e-01, 8.64580826352392193095e-02,
    4.12656523824222607191e-03, 1.01259085116509135510e-04, 1.17166733214413521882e-06,
    4.91834570062930015649e-09,
)  # fmt: skip
_J0_PP = (
    7.96936729297347051624e-04, 8.28352392107440799803e-02, 1.23953371646414299388e+00,
    5.44725003058768775090e+00, 8.74716500199817011941e+00, 5.30324038235394892183e+00,
    9.99999999999999997821e-01,
)  # fmt: skip
_J0_PQ = (
    9.24408810558863637013e-04, 8.56288474354474431428e-02, 1.25352743901058953537e+00,
    5.47097740330417105182e+00, 8.76190883237069594232e+00, 5.30605288235394617618e+00,
    1.00000000000000000218e+00,
)  # fmt: skip
_J0_QP = (
    -1.13663838898469149931e-02, -1.28252718670509318512e+00, -1.95539544257735972385e+01,
    -9.32060152123768231369e+01, -1.77681167980488050595e+02, -1.47077505154951170175e+02,
    -5.14105326766599330220e+01, -6.05014350600728481186e+00,
)  # fmt: skip
_J0_QQ = (
    6.43178256118178023184e+01, 8.56430025976980587198e+02, 3.88240183605401609683e+03,
    7.24046774195652478189e+03, 5.93072701187316984827e+03, 2.06209331660327847417e+03,
    2.42005740240291393179e+02,
)  # fmt: skip
_J0_RP = (
    -4.79443220978201773821e+09, 1.95617491946556577543e+12, -2.49248344360967716204e+14,
    9.70862251047306323952e+15,
)  # fmt: skip
_J0_RQ = (
    4.99563147152651017219e+02, 1.73785401676374683123e+05, 4.84409658339962045305e+07,
    1.11855537045356834862e+10, 2.11277520115489217587e+12, 3.10518229857422583814e+14,
    3.18121955943204943306e+16, 1.71086294081043136091e+18,
)  # fmt: skip
_J1_PP = (
    7.62125616208173112003e-04, 7.31397056940917570436e-02, 1.12719608129684925192e+00,
    5.11207951146807644818e+00, 8.42404590141772420927e+00, 5.21451598682361504063e+00,
    1.00000000000000000254e+00,
)  # fmt: skip
_J1_PQ = (
    5.71323128072548699714e-04, 6.88455908754495404082e-02, 1.10514232634061696926e+00,
    5.07386386128601488557e+00, 8.39985554327604159757e+00, 5.20982848682361821619e+00,
    9.99999999999999997461e-01,
)  # fmt: skip
_J1_QP = (
    5.10862594750176621635e-02, 4.98213872951233449420e+00, 7.58238284132545283818e+01,
    3.66779609360150777800e+02, 7.10856304998926107277e+02, 5.97489612400613639965e+02,
    2.11688757100572135698e+02, 2.52070205858023719784e+01,
)  # fmt: skip
_J1_QQ = (
    7.42373277035675149943e+01, 1.05644886038262816351e+03, 4.98641058337653607651e+03,
    9.56231892404756170795e+03, 7.99704160447350683650e+03, 2.82619278517639096600e+03,
    3.36093607810698293419e+02,
)  # fmt: skip
_J1_RP = (
    -8.99971225705559398224e+08, 4.52228297998194034323e+11, -7.27494245221818276015e+13,
    3.68295732863852883286e+15,
)  # fmt: skip
_J1_RQ = (
    6.20836478118054335476e+02, 2.56987256757748830383e+05, 8.35146791431949253037e+07,
    2.21511595479792499675e+10, 4.74914122079991414898e+12, 7.84369607876235854894e+14,
    8.95222336184627338078e+16, 5.32278620332680085395e+18,
)  # fmt: skip
_Y0_YP = (
    1.55924367855235737965e+04, -1.46639295903971606143e+07, 5.43526477051876500413e+09,
    -9.82136065717911466409e+11, 8.75906394395366999549e+13, -3.46628303384729719441e+15,
    4.42733268572569800351e+16, -1.84950800436986690637e+16,
)  # fmt: skip
_Y0_YQ = (
    1.04128353664259848412e+03, 6.26107330137134956842e+05, 2.68919633393814121987e+08,
    8.64002487103935000337e+10, 2.02979612750105546709e+13, 3.17157752842975028269e+15,
    2.50596256172653059228e+17,
)  # fmt: skip
_Y1_YP = (
    1.26320474790178026440e+09, -6.47355876379160291031e+11, 1.14509511541823727583e+14,
    -8.12770255501325109621e+15, 2.02439475713594898196e+17, -7.78877196265950026825e+17,
)  # fmt: skip
_Y1_YQ = (
    5.94301592346128195359e+02, 2.35564092943068577943e+05, 7.34811944459721705660e+07,
    1.87601316108706159478e+10, 3.88231277496238566008e+12, 6.20557727146953693363e+14,
    6.87141087355300489866e+16, 3.97270608116560655612e+18,
)  # fmt: skip
_K0_A = (
    1.37446543561352307156e-16, 4.25981614279661018399e-14, 1.03496952576338420167e-11,
    1.90451637722020886025e-09, 2.53479107902614945675e-07, 2.28621210311945178607e-05,
    1.26461541144692592338e-03, 3.59799365153615016266e-02, 3.44289899924628486886e-01,
    -5.35327393233902768720e-01,
)  # fmt: skip
_K0_B = (
    5.30043377268626276149e-18, -1.64758043015242134646e-17, 5.21039150503902756861e-17,
    -1.67823109680541210385e-16, 5.51205597852431940784e-16, -1.84859337734377901440e-15,
    6.34007647740507060557e-15, -2.22751332699166985548e-14, 8.03289077536357521100e-14,
    -2.98009692317273043925e-13, 1.14034058820847496303e-12, -4.51459788337394416547e-12,
    1.85594911495471785253e-11, -7.95748924447710747776e-11, 3.57739728140030116597e-10,
    -1.69753450938905987466e-09, 8.57403401741422608519e-09, -4.66048989768794782956e-08,
    2.76681363944501510342e-07, -1.83175552271911948767e-06, 1.39498137188764993662e-05,
    -1.28495495816278026384e-04, 1.56988388573005337491e-03, -3.14481013119645005427e-02,
    2.44030308206595545468e+00,
)  # fmt: skip
_K1_A = (
    -7.02386347938628759343e-18, -2.42744985051936593393e-15, -6.66690169419932900609e-13,
    -1.41148839263352776110e-10, -2.21338763073472585583e-08, -2.43340614156596823496e-06,
    -1.73028895751305206302e-04, -6.97572385963986435018e-03, -1.22611180822657148235e-01,
    -3.53155960776544875667e-01, 1.52530022733894777053e+00,
)  # fmt: skip
_K1_B = (
    -5.75674448366501715755e-18, 1.79405087314755922667e-17, -5.68946255844285935196e-17,
    1.83809354436663880070e-16, -6.05704724837331885336e-16, 2.03870316562433424052e-15,
    -7.01983709041831346144e-15, 2.47715442448130437068e-14, -8.97670518232499435011e-14,
    3.34841966607842919884e-13, -1.28917396095102890680e-12, 5.13963967348173025100e-12,
    -2.12996783842756842877e-11, 9.21831518760500529508e-11, -4.19035475934189648750e-10,
    2.01504975519703286596e-09, -1.03457624656780970260e-08, 5.74108412545004946722e-08,
    -3.50196060308781257119e-07, 2.40648494783721712015e-06, -1.93619797416608296024e-05,
    1.95215518471351631108e-04, -2.85781685962277938680e-03, 1.03923736576817238437e-01,
    2.72062619048444266945e+00,
)  # fmt: skip
_QUARTER_PI, _THREE_QUARTER_PI = 0.785398163397448309615660845819875721, 2.356194490192344928846982537459627163
_SQRT_2_OVER_PI, _TWO_OVER_PI = 0.797884560802865355879892119868763737, 0.636619772367581343075535053490057448


def _j0_small(xp: Any, x: Any) -> Any:
    """J0(x) for 0 <= x <= 5."""
    xx = x * x
    small = (xx - 5.78318596294678452118e00) * (xx - 3.04712623436620863991e01) * _poly(xx, _J0_RP) / _poly(xx, _J0_RQ)
    return xp.where(x < 0.00001, 1.0 - xx * 0.25, small)


def _j0_y0_large(xp: Any, x: Any, second_kind: bool) -> Any:
    """J0(x) (Y0(x) with ``second_kind``) for x > 5: Hankel's asymptotic form."""
    w = 25.0 / (x * x)
    p, q = _poly(w, _J0_PP) / _poly(w, _J0_PQ), _poly(w, _J0_QP) / _poly(w, _J0_QQ)
    phase = x - _QUARTER_PI
    sin, cos = xp.sin(phase), xp.cos(phase)
    if second_kind:
        return (p * sin + 5.0 / x * q * cos) * _SQRT_2_OVER_PI / xp.sqrt(x)
    return (p * cos - 5.0 / x * q * sin) * _SQRT_2_OVER_PI / xp.sqrt(x)


def _j1_small(xp: Any, x: Any) -> Any:
    """J1(x) for 0 <= x <= 5."""
    xx = x * x
    return (
        _poly(xx, _J1_RP) / _poly(xx, _J1_RQ) * x * (xx - 1.46819706421238932572e01) * (xx - 4.92184563216946036703e01)
    )


def _j1_y1_large(xp: Any, x: Any, second_kind: bool) -> Any:
    """J1(x) (Y1(x) with ``second_kind``) for x > 5."""
    w = 5.0 / x * (5.0 / x)
    p, q = _poly(w, _J1_PP) / _poly(w, _J1_PQ), _poly(w, _J1_QP) / _poly(w, _J1_QQ)
    phase = x - _THREE_QUARTER_PI
    sin, cos = xp.sin(phase), xp.cos(phase)
    if second_kind:
        return (p * sin + 5.0 / x * q * cos) * _SQRT_2_OVER_PI / xp.sqrt(x)
    return (p * cos - 5.0 / x * q * sin) * _SQRT_2_OVER_PI / xp.sqrt(x)


def _bessel_j0_values(xp: Any, x: Any) -> Any:
    a = xp.abs(x)
    return _erf.piecewise(
        a, ((a <= 5.0, partial(_j0_small, xp), 1.0), (a > 5.0, partial(_j0_y0_large, xp, second_kind=False), 6.0))
    )


def _bessel_j1_values(xp: Any, x: Any) -> Any:
    a = xp.abs(x)
    out = _erf.piecewise(
        a, ((a <= 5.0, partial(_j1_small, xp), 1.0), (a > 5.0, partial(_j1_y1_large, xp, second_kind=False), 6.0))
    )
    return xp.where(xp.signbit(x), -out, out)  # odd: -0.0 at -0.0, as torch


def _y0_small(xp: Any, x: Any) -> Any:
    """Y0(x) for 0 < x <= 5."""
    return _poly(x * x, _Y0_YP) / _poly(x * x, _Y0_YQ) + _TWO_OVER_PI * xp.log(x) * _j0_small(xp, x)


def _y1_small(xp: Any, x: Any) -> Any:
    """Y1(x) for 0 < x <= 5."""
    xx = x * x
    return x * (_poly(xx, _Y1_YP) / _poly(xx, _Y1_YQ)) + _TWO_OVER_PI * (_j1_small(xp, x) * xp.log(x) - 1.0 / x)


def _bessel_y0_values(xp: Any, x: Any) -> Any:
    out = _erf.piecewise(
        x,
        (
            (x > 5.0, partial(_j0_y0_large, xp, second_kind=True), 6.0),
            ((x > 0.0) & (x <= 5.0), partial(_y0_small, xp), 1.0),
        ),
    )
    return xp.where(x == 0.0, -xp.inf, xp.where(x < 0.0, xp.nan, out))


def _bessel_y1_values(xp: Any, x: Any) -> Any:
    out = _erf.piecewise(
        x,
        (
            (x > 5.0, partial(_j1_y1_large, xp, second_kind=True), 6.0),
            ((x > 0.0) & (x <= 5.0), partial(_y1_small, xp), 1.0),
        ),
    )
    return xp.where(x == 0.0, -xp.inf, xp.where(x < 0.0, xp.nan, out))


def _bessel_k_values(order: int, scaled: bool) -> Any:
    a_coefficients, b_coefficients = (_K0_A, _K0_B) if order == 0 else (_K1_A, _K1_B)

    def values(xp: Any, x: Any) -> Any:
        i_scaled = _bessel_scaled(x, order)  # exp(-|x|) I_order(x)
        series = _chbevl(x * x - 2.0, a_coefficients)
        if order == 0:
            small = series - xp.log(0.5 * x) * (i_scaled * xp.exp(x))
        else:
            small = xp.log(0.5 * x) * (i_scaled * xp.exp(x)) + series / x
        large = _chbevl(8.0 / x - 2.0, b_coefficients) / xp.sqrt(x)
        out = xp.where(x <= 2.0, small * xp.exp(x) if scaled else small, large if scaled else xp.exp(-x) * large)
        return xp.where(x == 0.0, xp.inf, xp.where(x < 0.0, xp.nan, out))

    return values


def _airy_ai_values(xp: Any, x: Any) -> Any:
    root = xp.sqrt(xp.abs(x))
    # x < -2.09: the oscillating asymptotic form
    zeta_neg = -2.0 * x * root / 3.0
    z = 1.0 / zeta_neg
    zz = z * z
    f = 1.0 + zz * _poly(zz, _AIRY_AFN) / _poly(zz, _AIRY_AFD)
    g = z * _poly(zz, _AIRY_AGN) / _poly(zz, _AIRY_AGD)
    t = zeta_neg + 0.25 * math.pi
    negative = 5.64189583547756286948e-01 / xp.sqrt(root) * (xp.sin(t) * f - xp.cos(t) * g)
    # x >= 2.09: the decaying asymptotic form
    zeta = 2.0 * x * root / 3.0
    ratio = _poly(1.0 / zeta, _AIRY_AN) / _poly(1.0 / zeta, _AIRY_AD)
    positive = 5.64189583547756286948e-01 * ratio / (2.0 * xp.sqrt(root) * xp.exp(zeta))
    # in between: the Maclaurin series, summed until its terms fall below the epsilon
    mid = (x >= -2.09) & (x < 2.09)
    xs = xp.where(mid, x, 0.0)
    f, g, k, m, n, cube = xp.ones_like(xs), xs + 0.0, xp.ones_like(xs), xp.ones_like(xs), xs + 0.0, xs * xs * xs
    active = xp.ones_like(xs, dtype=bool)
    eps = np.finfo(np.float64).eps
    while bool(to_host(xp.any(active))):  # host: the series' length depends on x (about 20 terms at 2.09)
        m2 = m * cube / (k + 1.0)
        n2 = n * cube / (k + 2.0)
        m2 = m2 / (k + 2.0)
        f2 = f + m2
        n2 = n2 / (k + 3.0)
        g2 = g + n2
        m, n, f, g = (xp.where(active, new, old) for new, old in ((m2, m), (n2, n), (f2, f), (g2, g)))
        k = xp.where(active, k + 3.0, k)
        active = active & (xp.abs(m / f) > eps)
    series = 0.355028053887817239260 * f - 0.258819403792806798405 * g
    out = xp.where(x < -2.09, negative, xp.where(x >= 2.09, positive, series))
    out = xp.where(x > 103.892, 0.0, out)
    return xp.where(xp.isinf(x) | xp.isnan(x), xp.nan, out)  # the series ran on 0 in place of NaN


def _spherical_bessel_j0_values(xp: Any, x: Any) -> Any:
    xx = x * x
    series = 1.0 + xx * (-1.0 / 6.0 + xx * (1.0 / 120.0 + xx * (-1.0 / 5040.0 + xx * (1.0 / 362880.0
             + xx * (-1.0 / 39916800.0 + xx * (1.0 / 6227020800.0))))))  # fmt: skip
    out = xp.where(xp.abs(x) < 0.5, series, xp.sin(x) / x)
    return xp.where(xp.isinf(x), 0.0, out)


def _unary_special(name: str, values: Any, what: str) -> Any:
    def function(input: Any) -> Tensor:  # noqa: A002  (torch's keyword)
        x = _lift_float(input)
        with np.errstate(all="ignore"):
            out = _erf.on_host_blocks(lambda a: values(backend.namespace_of(a), a), x.array)
        return wrap_array(out)  # no graph: torch has no derivative for it, and its output does not require grad

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"{what} (torch.special.{name}), elementwise; Cephes' approximations as torch's kernel. Not "
        "differentiable, as in torch: the output does not require grad, so a loss that adds it "
        "backpropagates through its other terms only."
    )
    return with_out(function)


def _modified_bessel_first_kind(name: str, array_function: Any, order: int) -> Any:
    def function(input: Any) -> Tensor:  # noqa: A002  (torch's keyword)
        # the values of i0 / i1, without their graph: torch.special.modified_bessel_i0/i1 have no
        # derivative (their outputs do not require grad), while torch.i0 and special.i0/i1 have one
        return wrap_array(array_function(_lift_float(input).array))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"The modified Bessel function of the first kind I{order}(x) (torch.special.{name}), elementwise: "
        f"the values of ``special.i{order}``. Not differentiable, as in torch: the output does not require "
        f"grad (``special.i{order}`` is the differentiable spelling)."
    )
    return with_out(function)


modified_bessel_i0 = _modified_bessel_first_kind("modified_bessel_i0", i0_array, 0)
modified_bessel_i1 = _modified_bessel_first_kind("modified_bessel_i1", i1_array, 1)


bessel_j0 = _unary_special("bessel_j0", _bessel_j0_values, "The Bessel function of the first kind J0(x)")
bessel_j1 = _unary_special("bessel_j1", _bessel_j1_values, "The Bessel function of the first kind J1(x)")
bessel_y0 = _unary_special("bessel_y0", _bessel_y0_values, "The Bessel function of the second kind Y0(x)")
bessel_y1 = _unary_special("bessel_y1", _bessel_y1_values, "The Bessel function of the second kind Y1(x)")
modified_bessel_k0 = _unary_special("modified_bessel_k0", _bessel_k_values(0, False),
                                    "The modified Bessel function of the second kind K0(x)")  # fmt: skip
modified_bessel_k1 = _unary_special("modified_bessel_k1", _bessel_k_values(1, False),
                                    "The modified Bessel function of the second kind K1(x)")  # fmt: skip
scaled_modified_bessel_k0 = _unary_special("scaled_modified_bessel_k0", _bessel_k_values(0, True), "exp(x) K0(x)")
scaled_modified_bessel_k1 = _unary_special("scaled_modified_bessel_k1", _bessel_k_values(1, True), "exp(x) K1(x)")
spherical_bessel_j0 = _unary_special("spherical_bessel_j0", _spherical_bessel_j0_values,
                                     "The spherical Bessel function of the first kind j0(x) = sin(x) / x")  # fmt: skip
airy_ai = _unary_special("airy_ai", _airy_ai_values, "The Airy function Ai(x)")

# Euler-Maclaurin's coefficients (2k)! / B_2k, as Cephes' zeta
_ZETA_A = (
    12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9, 7.47242496e10,
    -2.950130727918164224e12, 1.1646782814350067249e14, -4.5979787224074726105e15, 1.8152105401943546773e17,
    -7.1661652561756670113e18,
)  # fmt: skip
_MACHEP = 1.11022302462515654042e-16


# below -_ZETA_FAR, zeta_array takes q's terms from positive shifts (a bounded cost); above, Cephes'
# direct sum, as torch's kernel
_ZETA_FAR = 64.0


def zeta_array(x: Any, q: Any) -> Any:
    """Hurwitz's zeta sum_k (k + q)^-x of two broadcast float64 arrays (Cephes' zeta, as torch's kernel)."""
    xp = backend.namespace_of(x)
    x, q = xp.broadcast_arrays(x, q)
    with np.errstate(all="ignore"):
        pole = (q <= 0.0) & (q == xp.floor(q))
        undefined = (q <= 0.0) & ~pole & (x != xp.floor(x))
        done = (x <= 1.0) | pole | undefined  # set below, without summing (q = -inf would never reach 9)
        # a q far below 0 (x an integer here) would take one step of the sum below per integer up to 9:
        # its terms are those of positive shifts instead, -q - k = (1 - f) + j with f = q + m in (0, 1)
        # and m = ceil(-q) the negative terms: zeta(x, q) = zeta(x, f) + (-1)^x (zeta(x, 1 - f) -
        # zeta(x, 1 - f + m)), the first two grouped, which cancel exactly at a half-integer q (f and
        # 1 - f are exact for |q| >= 1)
        far = ~done & (q < -_ZETA_FAR)
        if bool(to_host(xp.any(far))):  # host: whether the reflection is needed
            m = xp.where(far, xp.ceil(-q), 1.0)
            f = xp.where(far, q + m, 0.5)
            xf = xp.where(far, x, 2.0)
            sign = xp.where(xp.fmod(xf, 2.0) == 0.0, 1.0, -1.0)
            head = zeta_array(xf, f) + sign * zeta_array(xf, 1.0 - f)
            # an infinite head is the value (torch's sum reaches it and stops); the tail's own sum may
            # then be NaN (Euler-Maclaurin's terms at a huge x)
            reflected = xp.where(xp.isinf(head), head, head - sign * zeta_array(xf, 1.0 - f + m))
            done = done | far
        s = xp.power(q, -x)
        a, b, i = q + 0.0, xp.zeros_like(s), 0
        # direct summation: at least 9 terms and up to a > 9, stopping early once a term is negligible
        while True:
            going = ~done & ((i < 9) | (a <= 9.0))
            if not bool(to_host(xp.any(going))):  # host: the loop's length depends on q
                break
            i += 1
            a = xp.where(going, a + 1.0, a)
            b = xp.where(going, xp.power(a, -x), b)
            s = xp.where(going, s + b, s)
            done = done | (going & (-_MACHEP * s < b) & (b < _MACHEP * s))
        # Euler-Maclaurin's tail for the rest
        w, tail = a, ~done
        s = xp.where(tail, s + b * w / (x - 1.0) - 0.5 * b, s)
        a, k = xp.ones_like(s), 0.0
        for coefficient in _ZETA_A:
            a = a * (x + k)
            b = b / w
            t = a * b / coefficient
            s = xp.where(tail, s + t, s)
            tail = tail & ~(xp.abs(t / s) < _MACHEP)
            k += 1.0
            a = a * (x + k)
            b = b / w
            k += 1.0
        out = xp.where(pole, xp.inf, xp.where(undefined, xp.nan, s))
        if bool(to_host(xp.any(far))):  # host: as above
            out = xp.where(far, reflected, out)
        return xp.where(x == 1.0, xp.inf, xp.where(x < 1.0, xp.nan, out))


def zeta(input: Any, other: Any) -> Tensor:  # noqa: A002  (torch's keywords)
    """Hurwitz's zeta function sum over k >= 0 of (k + other)^-input (torch.special.zeta; other = 1 is
    Riemann's zeta). Differentiable in ``other`` (-input * zeta(input + 1, other)); in ``input`` it raises
    NotImplementedError, as torch does.

    Example:
        >>> import downslope as ds
        >>> ds.special.zeta(ds.tensor([2.0]), 1.0)
        tensor([1.6449])
    """
    x, q = _pair_float(input, other)
    dtype = np.result_type(x.array.dtype, q.array.dtype)
    xp = backend.namespace_of(x.array)
    out = zeta_array(x.array.astype(xp.float64), q.array.astype(xp.float64))
    return record_op(out.astype(dtype), (x, q), _zeta_vjp)


def _zeta_vjp(g, y, args, saved, needs, xp):
    x, q = args
    if needs[0]:
        raise NotImplementedError("the derivative of ds.special.zeta with respect to input (x) is not implemented, "
                                  "as in torch; detach it (its derivative in other, q, is available)")  # fmt: skip
    dq = zeta(x + 1.0, q) if xp.differentiable else zeta_array(x + 1.0, q).astype(q.dtype)
    return (None, xp.sum_to(g * -x * dq, q.shape))


zeta = with_out(zeta)
