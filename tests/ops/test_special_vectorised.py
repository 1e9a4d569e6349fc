"""The error-function family and the Bessel functions on whole arrays (ops._erf, ops.special): erfc
keeps its digits in the upper tail, erfinv near +-1, the values agree with torch over wide ranges
(tails, +-inf, NaN, -0.0) and the float64 gradients with finite differences and torch, and a large
array takes whole-array NumPy steps (no Python call per element)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import _erf

from .._counting import lines_run

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(23)
WIDE = np.concatenate([RNG.uniform(-6, 6, 400), RNG.uniform(-30, 30, 400), -np.logspace(-10, 1.5, 60),
                       np.logspace(-10, 1.5, 60), [0.0, -0.0, 1.0, -1.0, 8.0, -8.0, 26.5, 27.2, 27.4]])  # fmt: skip
SPECIAL = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
UNIT = np.concatenate([RNG.uniform(-1, 1, 400), 1 - np.logspace(-16, -1, 40), -(1 - np.logspace(-16, -1, 40)),
                       np.logspace(-300, -1, 30), [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5]])  # fmt: skip
PROBABILITY = np.concatenate([RNG.uniform(0, 1, 400), np.logspace(-300, -1, 40), 1 - np.logspace(-16, -1, 30),
                              0.5 + np.logspace(-12, -2, 20), [0.0, 0.5, 1.0, -0.5, 1.5]])  # fmt: skip


def _ulps(ours: np.ndarray, reference: np.ndarray, dtype: type) -> np.ndarray:
    """|ours - reference| in units of the reference's last place in ``dtype`` (0 where both agree,
    including same infinities and NaNs)."""
    ours, reference = ours.astype(np.float64), reference.astype(np.float64)
    spacing = np.maximum(
        np.spacing(np.abs(reference).astype(dtype)).astype(np.float64), np.finfo(dtype).smallest_subnormal
    )
    with np.errstate(invalid="ignore"):
        error = np.abs(ours - reference) / spacing
    same = (ours == reference) | (np.isnan(ours) & np.isnan(reference))
    return np.where(same, 0.0, np.where(np.isfinite(error), error, np.inf))


def _ours_and_torch(name: str, values: np.ndarray, dtype: str, rounded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Our values and torch's of ``values`` in ``dtype``; with ``rounded`` torch's float64 values of
    the same inputs rounded to ``dtype`` (a reference within a fraction of a float32 ulp, where
    torch's float32 kernels are off by a few)."""
    values = values.astype(dtype)
    ours = {"erf": ds.erf, "erfc": ds.erfc, "erfinv": ds.erfinv}.get(name) or getattr(ds.special, name)
    theirs = {"erf": torch.erf, "erfc": torch.erfc, "erfinv": torch.erfinv}.get(name) or getattr(torch.special, name)
    got = ours(ds.tensor(values, dtype=getattr(ds, dtype))).numpy()
    assert got.dtype == np.dtype(dtype)
    if rounded:
        with np.errstate(over="ignore"):
            return got, theirs(torch.tensor(values.astype(np.float64))).numpy().astype(dtype)
    return got, theirs(torch.tensor(values)).numpy()


def test_erfc_keeps_its_digits_in_the_upper_tail():
    # 1 - erf(x) was 0 from x = 6 in float64 and x = 4 in float32
    for dtype, xs, tolerance in (("float64", [3.0, 5.0, 6.0, 8.0, 10.0, 20.0, 26.0], 1e-15),
                                 ("float32", [2.0, 3.0, 4.0, 5.0, 9.0], 1e-7)):  # fmt: skip
        got = ds.erfc(ds.tensor(xs, dtype=getattr(ds, dtype))).numpy().astype(np.float64)
        exact = np.array([math.erfc(x) for x in xs])
        np.testing.assert_allclose(got, exact, rtol=tolerance)
        np.testing.assert_allclose(ds.special.erfc(ds.tensor(xs, dtype=getattr(ds, dtype))).numpy(), got, rtol=0)
    got = ds.log(ds.special.erfc(ds.tensor(10.0, dtype=ds.float64))).item()
    assert got == pytest.approx(math.log(math.erfc(10.0)), rel=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ndtr_matches_the_closed_form_in_both_tails(dtype):
    # torch's float64 ndtr loses the lower tail below about -8 (1 + erf rounds), so the reference is
    # erfc(-x / sqrt 2) / 2 by the C library, of the same rounded x / sqrt 2
    x = (WIDE * 1.3).astype(dtype)
    got = ds.special.ndtr(ds.tensor(x, dtype=getattr(ds, dtype))).numpy()
    expected = np.array([0.5 * math.erfc(float(v) * -math.sqrt(0.5)) for v in x])
    assert _ulps(got, expected.astype(dtype), np.dtype(dtype).type).max() <= (8 if dtype == "float64" else 1)


def test_erfc_far_tail_reaches_the_subnormals_and_zero():
    x = np.array([26.0, 26.5, 27.0, 27.2, 27.4, 40.0, np.inf])
    got = ds.erfc(ds.tensor(x, dtype=ds.float64)).numpy()
    expected = torch.erfc(torch.tensor(x)).numpy()
    assert np.all(_ulps(got, expected, np.float64)[:3] <= 4)
    assert got[-3:].tolist() == [0.0, 0.0, 0.0]


def test_erfinv_near_one_uses_the_complement():
    # erf(x) - y cancels as |y| nears 1: erfinv(1 - 1e-15) came out as 5.4707 (it is 5.6759)
    for eps in (1e-6, 1e-9, 1e-12, 1e-15):
        y = np.array([1 - eps, -(1 - eps)])
        got = ds.erfinv(ds.tensor(y, dtype=ds.float64)).numpy()
        expected = torch.erfinv(torch.tensor(y)).numpy()
        np.testing.assert_allclose(got, expected, rtol=2e-15)
        # the closed form's check: erfc of the result is 1 - y
        assert math.erfc(got[0]) == pytest.approx(eps, rel=1e-13)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("name", "values", "ulps64", "ulps32"),
    [
        ("erf", WIDE, 2, 1),
        ("erfc", WIDE, 3, 1),
        ("erfinv", UNIT, 3, 1),
        ("ndtri", PROBABILITY, 8, 1),
        # torch's erfcx loses digits below -3 (erfcx_far_tail_matches_the_closed_form holds ours there)
        ("erfcx", WIDE[WIDE > -3], 8, 1),
        ("i0", WIDE * 3, 6, 1),
        ("i0e", WIDE * 3, 6, 1),
        ("i1", WIDE * 3, 12, 1),
        ("i1e", WIDE * 3, 10, 1),
    ],
)
def test_values_agree_with_torch_over_wide_ranges(name, values, ulps64, ulps32, dtype):
    # within a few units in the last place of torch's own float64 values (which are within 1-8 of
    # the exact ones); float32 within one ulp of those rounded
    got, expected = _ours_and_torch(name, values, dtype, rounded=True)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)])
    error = _ulps(got[finite], expected[finite], np.dtype(dtype).type)
    assert error.max() <= (ulps64 if dtype == "float64" else ulps32), values[finite][np.argmax(error)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv", "ndtr", "ndtri", "log_ndtr", "erfcx", "i0", "i0e", "i1",
                                  "i1e", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1"])  # fmt: skip
def test_infinities_nan_and_signed_zeros_as_torch(name, dtype):
    got, expected = _ours_and_torch(name, SPECIAL, dtype)
    if name in ("i0", "i0e") and dtype == "float32":
        # torch's float32 kernel gives 1 - 2^-24 at 0; I0(0) = 1, which is ours
        expected[3:] = 1.0
    np.testing.assert_array_equal(got, expected)
    zeros = expected == 0
    assert np.array_equal(np.signbit(got[zeros]), np.signbit(expected[zeros]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1"])
def test_bessel_functions_agree_with_torch(name, dtype):
    values = np.abs(WIDE) if name.startswith("bessel_y") else WIDE
    got, expected = _ours_and_torch(name, values * 3, dtype)
    # absolute near the functions' zeros (the same Cephes formulas; torch's float32 kernel evaluates
    # them in float32, ours in float64 and rounds once)
    tolerance = 1e-14 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log_ndtr_matches_the_closed_form(dtype):
    # log(erfc(-x / sqrt 2) / 2) by the C library, in float64 (torch's float32 upper tail is coarser)
    x = np.concatenate([np.linspace(-37, 40, 700), WIDE[np.abs(WIDE) < 37]]).astype(dtype)
    got = ds.special.log_ndtr(ds.tensor(x, dtype=getattr(ds, dtype))).numpy()
    expected = np.array([math.log1p(-0.5 * math.erfc(float(v) * math.sqrt(0.5))) if v > -1
                         else math.log(0.5 * math.erfc(float(v) * -math.sqrt(0.5))) for v in x])  # fmt: skip
    assert _ulps(got, expected.astype(dtype), np.dtype(dtype).type).max() <= (6 if dtype == "float64" else 1)


def test_erfcx_far_tail_matches_the_closed_form():
    # erfcx(x) = 2 exp(x^2) - erfcx(-x) below 0: exp(x^2) from x^2 in two exact parts; torch's own
    # value is off by hundreds of ulps there
    mpmath = pytest.importorskip("mpmath")
    x = np.concatenate([-np.linspace(1, 26.6, 300), np.linspace(1, 30, 100), np.linspace(30, 1e4, 50)])
    got = ds.special.erfcx(ds.tensor(x, dtype=ds.float64)).numpy()
    with mpmath.workdps(50):
        expected = np.array([float(mpmath.exp(mpmath.mpf(v) ** 2) * mpmath.erfc(mpmath.mpf(v))) for v in x])
    assert _ulps(got, expected, np.float64).max() <= 8


@pytest.mark.parametrize(
    "name", ["erf", "erfc", "erfinv", "ndtr", "ndtri", "log_ndtr", "erfcx", "i0", "i0e", "i1", "i1e"]
)
def test_float64_gradients_match_finite_differences_and_torch(name):
    if name in ("erfinv",):
        values = np.array([-0.999, -0.7, -0.2, 0.05, 0.45, 0.8, 0.99])
    elif name == "ndtri":
        values = np.array([1e-6, 0.01, 0.3, 0.5, 0.75, 0.97, 1 - 1e-6])
    else:
        values = np.array([-7.0, -2.5, -0.9, -0.1, 0.3, 1.2, 3.5, 9.0])
    ours = {"erf": ds.erf, "erfc": ds.erfc, "erfinv": ds.erfinv}.get(name) or getattr(ds.special, name)
    theirs = {"erf": torch.erf, "erfc": torch.erfc, "erfinv": torch.erfinv}.get(name) or getattr(torch.special, name)
    x = ds.tensor(values, dtype=ds.float64, requires_grad=True)
    ours(x).sum().backward()
    t = torch.tensor(values, requires_grad=True)
    theirs(t).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    # central differences where the function is not saturated to its dtype (erf(9) is 1 exactly), with
    # a step well inside the distance to a pole (erfinv at +-1, ndtri at 0 and 1)
    if name == "erfinv":
        distance = np.minimum(np.abs(values - 1), np.abs(values + 1))
    elif name == "ndtri":
        distance = np.minimum(values, 1 - values)
    else:
        distance = np.full_like(values, np.inf)
    keep = np.abs(values) < 6 if name in ("erf", "erfc", "ndtr") else np.ones(values.shape, bool)
    step = np.minimum(1e-6 * np.maximum(np.abs(values), 1e-3), distance * 1e-4)[keep]
    plus = ours(ds.tensor(values[keep] + step, dtype=ds.float64)).numpy()
    minus = ours(ds.tensor(values[keep] - step, dtype=ds.float64)).numpy()
    np.testing.assert_allclose(x.grad.numpy()[keep], (plus - minus) / (2 * step), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_piecewise_ranges_mix_and_blocks_agree_with_one_element_at_a_time(dtype):
    # a mixed array larger than a block gives each element the value it has alone (gather, scatter
    # and the blocks' seams change nothing)
    x = RNG.permutation(np.concatenate([WIDE, SPECIAL] * 40)).astype(dtype)
    assert x.size > _erf.BLOCK
    for fn in (_erf.erf_array, _erf.erfc_array):
        whole = fn(x)
        single = np.array([fn(x[i : i + 1])[0] for i in range(0, x.size, 97)])
        if dtype == np.float64 or fn is _erf.erf_array:
            # a large float32 array's erf is computed in float32 (``_jit_special.erf_float32``), a small
            # one's in float64 and rounded: within an ulp of each other (as torch's SIMD body and scalar
            # tail); a large float64 array's with the kernels' own exponential, within 3 ulps of NumPy's
            np.testing.assert_array_equal(np.isnan(whole[::97]), np.isnan(single))
            finite = ~np.isnan(single)
            np.testing.assert_array_max_ulp(whole[::97][finite], single[finite], maxulp=3 if dtype == np.float64 else 1)
        else:
            np.testing.assert_array_equal(whole[::97], single)
        assert whole.dtype == x.dtype


def test_float16_erf_and_erfc_are_rounded_from_float64():
    x = np.linspace(-4, 4, 101).astype(np.float16)
    np.testing.assert_array_equal(ds.erf(ds.tensor(x)).numpy(), np.array([math.erf(v) for v in x], dtype=np.float16))
    np.testing.assert_array_equal(ds.erfc(ds.tensor(x)).numpy(), np.array([math.erfc(v) for v in x], dtype=np.float16))


@pytest.mark.host_only  # the host's blocked NumPy path is what is counted
@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv", "ndtri", "log_ndtr", "i1", "bessel_j0"])
def test_a_large_array_takes_whole_array_steps(name):
    # the per-element Python loop took 50-460 ms for 512 x 512 float32 (a line or more per element); the
    # array steps run a few hundred lines in all. Counted, not timed (a shared machine); the speed against
    # torch is benchmarks/special_functions.py's (the same 512 x 512 float32 input)
    x = RNG.uniform(-0.9, 0.9, (512, 512)).astype(np.float32)
    fn = {"erf": ds.erf, "erfc": ds.erfc, "erfinv": ds.erfinv}.get(name) or getattr(ds.special, name)
    t = ds.tensor(np.abs(x) if name == "ndtri" else x)
    with jit_gate.disabled():  # the NumPy path: a compiled kernel's loop over elements is no Python line
        _, lines = lines_run(lambda: fn(t))
    assert lines < 5000, f"{name}: {lines} Python lines for 512 x 512 elements"
