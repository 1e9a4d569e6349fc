"""The error function family on whole arrays: erf, erfc (accurate in the far tail) and the piecewise
evaluation that the special functions share.

float64: fdlibm's rational approximations (s_erf.c, as the C library's erf and erfc): erf(x) =
x + x P/Q(x^2) below 0.84375, 0.845062911510467529297 + P/Q(|x| - 1) to 1.25, and above erfc(x) =
exp(-x^2 - 0.5625 + R/S(1/x^2)) / x, with exp(-x^2) from x = hi + lo (hi of at most 26 bits, so hi^2
is exact): a plain exp(-x * x) would carry the rounding of x * x, magnified by x^2, into the result
(some 460 ulps at x = 22.7). float32 and float16 results: Cephes' single-precision formulas
(ndtrf.c: no division, a plain exp), evaluated in float64 and rounded once. Measured against
30-40-digit values on dense grids: float64 erf within 1 ulp, erfc within 2 (torch's: 1 and 1);
float32 erf within 0.57 ulps and erfc within 0.95 (torch's: 0.62 and 0.83).

Large host float32/float64 arrays of erf and erfc take compiled kernels where numba is on
(``ops._jit_special``), every range's formula on every element (of a chunk that has elements of
that range) and a select keeping one, in SIMD loops. float64: the same formulas per element with an
exponential of the kernel's own (a Taylor polynomial after an exact reduction), within 0.8 ulps of
the exact value for erf and 1.9 for erfc on 300k points (the NumPy path: 0.81 and 2.6; torch's:
0.74 and 0.79); 3.5x faster than NumPy's exp between two kernels on |x| < 0.9, some 10% slower where most elements
are in the tail (|x| >= 1.25, whose exponential and three divisions dominate: 4-5x torch's SLEEF
kernels there). float32: one kernel each, its exp inlined; erf in float32 arithmetic (x + x T1(x^2)
with a fused last step, and Cephes' erfcf beyond 1: within 1.5 ulps of the exact value, torch's 1.0),
erfc as the NumPy path's float64 formulas (the same values), both 2-4x faster than before.

Piecewise functions evaluate each formula only where it applies (:func:`piecewise`): on the host
the elements of each range are gathered, computed and scattered back (a select over a mask of
mixed ranges costs NumPy a mispredicted branch per element, and formulas such as a cosine are slow
on elements that do not need them); on a device every formula runs over the whole array and a
select combines them.

Example:
    >>> import numpy as np
    >>> from downslope.ops._erf import erfc_array
    >>> print(f"{float(erfc_array(np.array(6.0))):.12e}")  # 1 - erf(6) would be 0
    2.151973671250e-17
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .. import backend, jit_gate

# fdlibm's s_erf.c (as the C library's erf and erfc, within 1 ulp): erf(x) = x + x P(x^2) / Q(x^2)
# below 0.84375; erf(x) = c + P(s) / Q(s), s = |x| - 1, to 1.25 (c = 0.845062911510467529297, erf(1)
# rounded to float32); above, erfc(x) = exp(-x^2 - 0.5625 + R(1/x^2) / S(1/x^2)) / x with one pair of
# polynomials to 1/0.35 and another beyond (the Q and S here highest degree first, their constant 1 left out)
_ERX = 8.45062911510467529297e-01
_PP = (-2.37630166566501626084e-05, -5.77027029648944159157e-03, -2.84817495755985104766e-02,
       -3.25042107247001499370e-01, 1.28379167095512558561e-01)  # fmt: skip
_QQ = (-3.96022827877536812320e-06, 1.32494738004321644526e-04, 5.08130628187576562776e-03,
       6.50222499887672944485e-02, 3.97917223959155352819e-01)  # fmt: skip
_PA = (-2.16637559486879084300e-03, 3.54783043256182359371e-02, -1.10894694282396677476e-01,
       3.18346619901161753674e-01, -3.72207876035701323847e-01, 4.14856118683748331666e-01,
       -2.36211856075265944077e-03)  # fmt: skip
_QA = (1.19844998467991074170e-02, 1.36370839120290507362e-02, 1.26171219808761642112e-01,
       7.18286544141962662868e-02, 5.40397917702171048937e-01, 1.06420880400844228286e-01)  # fmt: skip
_RA = (-9.81432934416914548592e00, -8.12874355063065934246e01, -1.84605092906711035994e02,
       -1.62396669462573470355e02, -6.23753324503260060396e01, -1.05586262253232909814e01,
       -6.93858572707181764372e-01, -9.86494403484714822705e-03)  # fmt: skip
_SA = (-6.04244152148580987438e-02, 6.57024977031928170135e00, 1.08635005541779435134e02,
       4.29008140027567833386e02, 6.45387271733267880336e02, 4.34565877475229228821e02,
       1.37657754143519042600e02, 1.96512716674392571292e01)  # fmt: skip
_RB = (-4.83519191608651397019e02, -1.02509513161107724954e03, -6.37566443368389627722e02,
       -1.60636384855821916062e02, -1.77579549177547519889e01, -7.99283237680523006574e-01,
       -9.86494292470009928597e-03)  # fmt: skip
_SB = (-2.24409524465858183362e01, 4.74528541206955367215e02, 2.55305040643316442583e03,
       3.19985821950859553908e03, 1.53672958608443695994e03, 3.25792512996573918826e02,
       3.03380607434824582924e01)  # fmt: skip
_ERFC_ZERO_FROM = 28.0  # erfc(28) = 6e-343: below the smallest subnormal double
# Cephes ndtrf.c (single precision): erf(x) = x T(x^2) on [0, 1]; its own error is 1.2e-9 relative,
# so evaluated in float64 it rounds to within 0.52 float32 ulps, with half the work of T / U
_T_SINGLE = (7.853861353153693e-5, -8.010193625184903e-4, 5.188327685732524e-3, -2.685381193529856e-2,
             1.128358514861418e-1, -3.761262582423300e-1, 1.128379165726710e0)  # fmt: skip
# and erfc(x) = exp(-x^2) / x P(1/x^2) on [1, 2], exp(-x^2) / x R(1/x^2) above: 3e-8 relative in
# float64 (about half a float32 ulp), with no division and no exact square for exp
_P_SINGLE = (2.326819970068386e-2, -1.387039388740657e-1, 3.687424674597105e-1, -5.824733027278666e-1,
             6.210004621745983e-1, -4.944515323274145e-1, 3.404879937665872e-1, -2.741127028184656e-1,
             5.638259427386472e-1)  # fmt: skip
_R_SINGLE = (-1.047766399936249e1, 1.297719955372516e1, -7.495518717768503e0, 2.921019019210786e0,
             -1.015265279202700e0, 4.218463358204948e-1, -2.820767439740514e-1, 5.641895067754075e-1)  # fmt: skip
# Cephes ndtr.c's erfc(x) = exp(-x^2) P(x) / Q(x) on [1, 8] and exp(-x^2) R(x) / S(x) above (Q, S
# monic): the ratios are exp(x^2) erfc(x) itself (special.erfcx)
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0, 4.86371970985681366614e1,
      1.96520832956077098242e2, 5.26445194995477358631e2, 9.34528527171957607540e2, 1.02755188689515710272e3,
      5.57535335369399327526e2)  # fmt: skip
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2, 9.75708501743205489753e2,
      1.82390916687909736289e3, 2.24633760818710981792e3, 1.65666309194161350182e3, 5.57535340817727675546e2)  # fmt: skip
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0, 6.16021097993053585195e0,
      7.40974269950448939160e0, 2.97886665372100240670e0)  # fmt: skip
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1, 1.70814450747565897222e1,
      9.60896809063285878198e0, 3.36907645100081516050e0)  # fmt: skip
# Elements per step of the host loops: their float64 temporaries (256 KiB each) stay in the cache. On
# a 512 x 512 erf: 8192 0.90 ms, 16384 0.73, 32768 0.57, 65536 0.61 (and 4x slower on wide inputs)
BLOCK = 32768

Piece = tuple[Any, Callable[[Any], Any], float]  # (mask, formula on the selected values, a value in its range)


def polevl(t: Any, coefficients: Sequence[float]) -> Any:
    """Horner's rule, highest degree first (Cephes' polevl)."""
    out = t * coefficients[0] + coefficients[1]
    for c in coefficients[2:]:
        out *= t
        out += c
    return out


def p1evl(t: Any, coefficients: Sequence[float]) -> Any:
    """Horner's rule for a monic polynomial whose leading 1 is left out (Cephes' p1evl)."""
    out = t + coefficients[0]
    for c in coefficients[1:]:
        out *= t
        out += c
    return out


def _is_host(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


def piecewise(x: Any, pieces: Sequence[Piece], default: Any = None) -> Any:
    """The float64 array that is ``formula(x)`` where ``mask`` holds, for each ``(mask, formula,
    inside)`` of ``pieces`` (masks disjoint), and ``default`` (x itself when None: NaN stays NaN)
    where none holds. On the host a range that holds at least 3/4 of the elements runs over the whole
    array (a gather and scatter of most of it cost more than the formula on the few others) and the
    other ranges' formulas see only their own elements (gathered into a 1-d array) and overwrite
    theirs; on a device every formula runs over the whole array, with ``inside`` (a value in its
    range) in place of the elements of other ranges. So a formula must give some value, without an
    error, for any input: it is only kept where its mask holds."""
    if _is_host(x):
        x = np.asarray(x)  # host: a NumPy scalar (0-d arithmetic) as a 0-d array
        counts = [int(np.count_nonzero(mask)) for mask, _, _ in pieces]
        largest = max(range(len(pieces)), key=counts.__getitem__)
        if counts[largest] == x.size:  # one range holds everything: no gather, no scatter
            return np.asarray(pieces[largest][1](x), dtype=np.float64).reshape(x.shape)  # host: as above
        flat_x = x.reshape(-1)
        if 4 * counts[largest] >= 3 * x.size:
            with np.errstate(all="ignore"):  # on the other ranges' elements too, which are overwritten below
                out = np.array(pieces[largest][1](x), dtype=np.float64).reshape(x.shape)  # host: as above
            flat_out = out.reshape(-1)
            if sum(counts) < x.size:  # elements of no range (NaN, outside the domain)
                covered = np.zeros(x.shape, dtype=bool)  # host: a host array's mask
                for mask, _, _ in pieces:
                    covered |= mask
                rest = np.flatnonzero(~covered)
                flat_out[rest] = flat_x[rest] if default is None else default
        else:
            largest = -1
            out = (x if default is None else np.broadcast_to(default, x.shape)).astype(np.float64)
            flat_out = out.reshape(-1)
        for index, (mask, formula, _) in enumerate(pieces):
            if index != largest and counts[index]:
                where = np.flatnonzero(mask)
                flat_out[where] = formula(flat_x[where])
        return out
    xp = backend.namespace_of(x)
    out = x if default is None else default + x * 0
    for mask, formula, inside in pieces:
        out = xp.where(mask, formula(xp.where(mask, x, inside)), out)
    return out


def _ratio_plus_one(t: Any, numerator: Sequence[float], denominator: Sequence[float]) -> Any:
    """P(t) / (1 + t Q(t)), fdlibm's form of its rational functions."""
    return polevl(t, numerator) / (polevl(t, denominator) * t + 1.0)


def erf_centre(x: Any) -> Any:
    """erf(x) for |x| < 0.84375 (float64)."""
    return x + x * _ratio_plus_one(x * x, _PP, _QQ)


def _erf_middle(s: Any) -> Any:
    """erf(1 + s) - 0.845062911510467529297 for -0.15625 <= s < 0.25."""
    return _ratio_plus_one(s, _PA, _QA)


def _erfc_tail(xp: Any, a: Any) -> Any:
    """erfc(a) for a >= 1.25 (inf included), float64: exp(-a^2) from a = hi + lo with hi^2 exact."""
    inside = xp.minimum(a, _ERFC_ZERO_FROM)
    ratio = piecewise(
        inside,
        (
            (inside < 1 / 0.35, lambda v: _ratio_plus_one(1.0 / (v * v), _RA, _SA), 2.0),
            (inside >= 1 / 0.35, lambda v: _ratio_plus_one(1.0 / (v * v), _RB, _SB), 4.0),
        ),  # fmt: skip
    )
    hi = xp.round(inside * 2097152.0) / 2097152.0  # 2^21: at most 26 bits below 28, so hi * hi is exact
    with np.errstate(under="ignore"):
        out = xp.exp(-(hi * hi) - 0.5625) * xp.exp((hi - inside) * (hi + inside) + ratio) / inside
    return xp.where(a >= _ERFC_ZERO_FROM, 0.0, out)


def _erf_small_single(x: Any) -> Any:
    """erf(x) for |x| <= 1 to float32's precision (float64 values that round correctly to float32)."""
    return x * polevl(x * x, _T_SINGLE)


def _erfc_large_single(xp: Any, a: Any) -> Any:
    """erfc(a) for a >= 1 to float32's precision (float64 values; 0 where float32's would underflow)."""
    inverse = 1.0 / a
    z = inverse * inverse
    with np.errstate(under="ignore"):
        # x * x rounded moves exp(-x^2) by 1e-14 relative at most above float32's underflow (x < 10.1)
        scale = xp.exp(-(a * a)) * inverse
    return scale * piecewise(
        z,
        (
            (z > 0.25, partial(polevl, coefficients=_P_SINGLE), 0.5),
            (z <= 0.25, partial(polevl, coefficients=_R_SINGLE), 0.1),
        ),
    )


def erf64(x: Any, single: bool = False) -> Any:
    """erf of a float64 array of any namespace, by fdlibm's formulas (NaN stays NaN); with ``single``
    by Cephes' shorter single-precision ones, for a result rounded to float32 or float16."""
    xp = backend.namespace_of(x)
    a = xp.abs(x)
    # odd: the sign copied, not selected (a select on mixed signs costs a mispredicted branch each)
    with np.errstate(over="ignore", invalid="ignore"):
        if single:
            return piecewise(
                x,
                (
                    (a <= 1.0, _erf_small_single, 0.5),
                    (a > 1.0, lambda v: xp.copysign(1.0 - _erfc_large_single(xp, xp.abs(v)), v), 2.0),
                ),  # fmt: skip
            )
        return piecewise(
            x,
            (
                (a < 0.84375, erf_centre, 0.5),
                ((a >= 0.84375) & (a < 1.25), lambda v: xp.copysign(_ERX + _erf_middle(xp.abs(v) - 1.0), v), 1.0),
                (a >= 1.25, lambda v: xp.copysign(1.0 - _erfc_tail(xp, xp.abs(v)), v), 2.0),
            ),  # fmt: skip
        )


def erf_split(x: Any) -> Any:
    """erf(x) for 0 <= x <= 1 and erf(x) - 1 = -erfc(x) above (float64, x >= 0): erf with the digits
    that 1 - erfc(x) rounds away kept, for a residual erf(x) - y as y nears 1."""
    xp = backend.namespace_of(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return piecewise(
            x,
            (
                (x < 0.84375, erf_centre, 0.5),
                # c + P/Q(x - 1) with c = 0.845062911510467529297 to 1 and c - 1 (exact) beyond
                ((x >= 0.84375) & (x < 1.25), lambda v: (_ERX - (v > 1.0)) + _erf_middle(v - 1.0), 1.0),
                (x >= 1.25, lambda v: -_erfc_tail(xp, v), 2.0),
            ),
        )


def _signed_tail(xp: Any, v: Any, tail: Any) -> Any:
    """erfc(v) from erfc(|v|): 2 - erfc(|v|) for v < 0, as 2n + (1 - 2n) erfc(|v|) with n = 1 there and
    0 elsewhere: exact but for that one subtraction, and no select (a mispredicted branch each)."""
    negative = xp.signbit(v).astype(tail.dtype)
    return negative * 2.0 + (1.0 - 2.0 * negative) * tail


def erfc64(x: Any, single: bool = False) -> Any:
    """erfc of a float64 array of any namespace, by fdlibm's formulas: relative precision in the upper
    tail down to the subnormals (NaN stays NaN); ``single`` as for :func:`erf64`."""
    xp = backend.namespace_of(x)
    a = xp.abs(x)
    with np.errstate(over="ignore", invalid="ignore"):
        if single:
            return piecewise(
                x,
                (
                    (a < 1.0, lambda v: 1.0 - _erf_small_single(v), 0.5),
                    (a >= 1.0, lambda v: _signed_tail(xp, v, _erfc_large_single(xp, xp.abs(v))), 2.0),
                ),  # fmt: skip
            )
        return piecewise(
            x,
            # (1/2 - (x - 1/2)) - x P/Q below 0.84375: x - 1/2 is exact from 1/4, where erfc nears 1/2
            # and 1 - erf(x) would lose its last bits (fdlibm takes 1 - erf below 1/4; this is within
            # 1.5 ulps there too, and one range for all of (-0.84375, 0.84375) spares a gather)
            (
                (a < 0.84375, lambda v: 0.5 - (v * _ratio_plus_one(v * v, _PP, _QQ) + (v - 0.5)), 0.5),
                ((x >= 0.84375) & (x < 1.25), lambda v: (1.0 - _ERX) - _erf_middle(v - 1.0), 1.0),
                ((x <= -0.84375) & (x > -1.25), lambda v: 1.0 + (_ERX + _erf_middle(-v - 1.0)), -1.0),
                (a >= 1.25, lambda v: _signed_tail(xp, v, _erfc_tail(xp, xp.abs(v))), 2.0),
            ),  # fmt: skip
        )


def _special_module(a: Any) -> Any:
    """cupyx.scipy.special for a CuPy array, the strict stand-in's ``special`` for its arrays; None on
    the host."""
    if _is_host(a):
        return None
    if type(a).__module__.startswith("cupy"):
        import cupyx.scipy.special  # type: ignore[import-not-found, unused-ignore]

        return cupyx.scipy.special
    return backend.namespace_of(a).special


def on_host_blocks(values: Callable[[Any], Any], a: Any, dtype: Any = None) -> Any:
    """``values`` (an elementwise function of a float64 array, of any namespace) of the array ``a``,
    in ``dtype`` (a's by default). On the host it runs on BLOCK elements at a time: the formulas
    make a dozen temporaries each, which for a large array are fresh pages from the system at every
    step and do not stay in the cache (a 512 x 512 erf took 6 times as long in one piece)."""
    dtype = a.dtype if dtype is None else dtype
    if not _is_host(a):
        return values(a.astype(backend.namespace_of(a).float64)).astype(dtype)
    a = np.asarray(a)  # host: a NumPy scalar as a 0-d array
    flat = a.reshape(-1)
    out = np.empty(flat.shape, dtype)  # host: the host array's result
    for start in range(0, flat.size, BLOCK):
        out[start : start + BLOCK] = values(flat[start : start + BLOCK].astype(np.float64))
    return out.reshape(a.shape)


def _single(a: Any) -> bool:
    """Whether ``a``'s dtype keeps no more than float32's precision."""
    return a.dtype.itemsize <= 4


# The dtypes of the compiled kernels (native byte order: numba has no other), and the size below which
# the NumPy steps take well under a millisecond while the first compiled call of a process costs numba's
# import and cache load (as ``special.JIT_SPECIAL_MIN_SIZE``)
_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
JIT_MIN_SIZE = 4096


def _compiled(name: str, a: Any) -> Any:
    """``name`` (erf or erfc) of ``a`` through the compiled kernels of ``ops._jit_special`` where they
    apply (a host float32/float64 array of at least JIT_MIN_SIZE elements, numba on), else None: every
    range's formula on every element of a chunk that needs it and a select keeping one, in SIMD loops
    (the NumPy path gathers and scatters each range's elements: 5-10x slower on mixed inputs). One
    kernel each: float64 the NumPy path's formulas with an exponential of its own inlined (erf within
    0.8 ulps of the exact value, erfc within 1.9; the NumPy path's 0.81 and 2.6), float32
    (``erf_float32``, ``erfc_float32``) erf within an ulp of the NumPy path's value."""
    if type(a) is not np.ndarray or a.size < JIT_MIN_SIZE or a.dtype not in _JIT_DTYPES:
        return None
    kernels = jit_gate.kernels("downslope.ops._jit_special", a)
    if kernels is None:
        return None
    flat = np.ascontiguousarray(a).reshape(-1)  # host: the compiled path takes host arrays only
    out = np.empty_like(flat)
    # one kernel each, its exponential inlined (float64: ``_jit_special.erf_float64``, ``erfc_float64``)
    getattr(kernels, f"{name}_float32" if a.dtype == np.float32 else f"{name}_float64")(flat, out)
    return out.reshape(a.shape)


def erf_array(a: Any) -> Any:
    """erf of a real floating array, in its dtype: CuPy's kernel on a GPU, the compiled kernel for a
    large host array where numba is on, :func:`erf64` elsewhere (rounded once to the array's dtype)."""
    special = _special_module(a)
    if special is not None:
        return special.erf(a)
    compiled = _compiled("erf", a)
    if compiled is not None:
        return compiled
    return on_host_blocks(partial(erf64, single=_single(a)), a)


def erfc_array(a: Any) -> Any:
    """erfc of a real floating array, in its dtype, accurate in the upper tail (not 1 - erf): CuPy's
    kernel on a GPU, the compiled kernel for a large host array where numba is on, :func:`erfc64`
    elsewhere."""
    special = _special_module(a)
    if special is not None:
        return special.erfc(a)
    compiled = _compiled("erfc", a)
    if compiled is not None:
        return compiled
    return on_host_blocks(partial(erfc64, single=_single(a)), a)
