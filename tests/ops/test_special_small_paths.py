"""The small-array paths of lgamma and digamma (``ops.special``): math.lgamma per element below
SMALL_LGAMMA_SIZE, the scalar digamma below SMALL_DIGAMMA_SIZE, and the lean NumPy digamma for arrays
whose elements are all >= 1/2. Values against torch's float64 (rounded once: ulps in the input's
dtype) on both sides of each boundary size, torch's values at the poles and non-finite inputs, and
gradients against finite differences and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import special

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
EDGES = [0.0, -0.0, 1.0, 2.0, -1.0, -3.0, -60.0, math.inf, -math.inf, math.nan, 0.5, -0.5, -2.4570248, 1.4616321]


def _sweep(size: int, dtype: type) -> np.ndarray:
    """``size`` values over tiny, moderate, huge and negative non-integer arguments, the edges first."""
    x = np.concatenate(
        [
            10 ** RNG.uniform(-30, 30, size),
            RNG.uniform(-12, 12, size),
            -(10 ** RNG.uniform(-20, 5, size)),
            np.nextafter(np.float32(-3.0), np.float32(-2.0)) + np.zeros(size),  # next to a pole
        ]
    )
    x = RNG.permutation(x)[:size].astype(dtype)
    k = min(size, len(EDGES))
    x[:k] = np.array(EDGES[:k], dtype)
    return x


def _ulps(ours: np.ndarray, reference64: np.ndarray) -> np.ndarray:
    """|ours - reference| in units of the last place of the reference rounded to ours' dtype; 0 where
    both are the same infinity or both NaN."""
    with np.errstate(all="ignore"):
        rounded = reference64.astype(ours.dtype)
        err = np.abs(ours.astype(np.float64) - reference64) / np.spacing(np.abs(rounded)).astype(np.float64)
    same = (ours == rounded) | (np.isnan(ours) & np.isnan(reference64))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def _torch64(name: str, x: np.ndarray) -> np.ndarray:
    return getattr(torch, name)(torch.from_numpy(x.astype(np.float64))).numpy()


@pytest.mark.parametrize("size", [1, 7, special.SMALL_LGAMMA_SIZE - 1])
def test_lgamma_small_float32_is_the_float64_value_rounded_once(size: int) -> None:
    x = _sweep(size, np.float32)
    ours = special.lgamma_array(x)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    # math.lgamma in float64, rounded once: the small path (measured within 0.502 ulp on 1M points)
    assert _ulps(ours, _torch64("lgamma", x)).max() <= 0.51
    expected = np.array(
        [math.inf if v <= 0 and math.isfinite(v) and v == math.floor(v) else math.lgamma(v) for v in x.tolist()]
    )
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(ours, expected.astype(np.float32))


@pytest.mark.parametrize("size", [special.SMALL_LGAMMA_SIZE - 1, special.SMALL_LGAMMA_SIZE])
def test_lgamma_either_side_of_the_boundary_matches_torch(size: int) -> None:
    x = _sweep(size, np.float32)
    with jit_gate.disabled():  # at the boundary size: the NumPy steps (within 1.07 ulp measured)
        ours = special.lgamma_array(x)
    assert _ulps(ours, _torch64("lgamma", x)).max() <= 1.1
    theirs = torch.lgamma(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)


def test_lgamma_small_edges_are_torchs() -> None:
    for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        x = np.array([*EDGES, 1e-45, 3.4e38, -3.4e38], dtype)
        ours = special.lgamma_array(x)
        theirs = torch.lgamma(torch.tensor(x, dtype=tdtype)).numpy()
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        # next to lgamma's zeros (-2.457) torch's float32 kernel is ~120 ulps off: its float64 is the reference
        reference = _torch64("lgamma", x)
        if dtype == np.float32:
            assert _ulps(ours, reference).max() <= 0.51
        else:  # (in float64 near the zeros only absolute accuracy, as the NumPy steps)
            finite = np.isfinite(reference)
            np.testing.assert_allclose(ours[finite], reference[finite], rtol=1e-13, atol=1e-15)
    # past float64's range Python raises; the array path's value is inf, as torch's
    assert special.lgamma_array(np.array([1e306, -1e306]))[0] == math.inf
    assert torch.lgamma(torch.tensor([1e306], dtype=torch.float64)).item() == math.inf


def test_lgamma_small_float64_is_at_least_as_close_as_the_numpy_steps() -> None:
    x = _sweep(1000, np.float64)
    x = x[np.isfinite(x) & ~((x <= 0) & (x == np.floor(x)))]
    x = x[np.abs(x - 1) > 0.1]
    x = x[np.abs(x - 2) > 0.1]  # away from lgamma's zeros, where neither has relative accuracy
    reference = _torch64("lgamma", x)
    with jit_gate.disabled():  # repeated up to the boundary size: the NumPy steps
        steps = special.lgamma_array(np.resize(x, max(x.size, special.SMALL_LGAMMA_SIZE)))[: x.size]
    small = np.concatenate([special.lgamma_array(x[i : i + 100]) for i in range(0, x.size, 100)])
    big = np.abs(reference) > 1e-3
    small_err = np.abs(small - reference)[big] / np.abs(reference[big])
    steps_err = np.abs(steps - reference)[big] / np.abs(reference[big])
    assert small_err.max() <= max(steps_err.max(), 1e-13)


@pytest.mark.parametrize("size", [1, special.SMALL_DIGAMMA_SIZE - 1, special.SMALL_DIGAMMA_SIZE, 64, 1000])
def test_digamma_is_correctly_rounded_in_float32_on_both_paths(size: int) -> None:
    for x in (_sweep(size, np.float32), RNG.uniform(0.5, 40, size).astype(np.float32)):
        x[0] = np.float32(1.4616321)  # next to the root, where the float64 steps' order shows
        with jit_gate.disabled():
            ours = special.digamma_array(x)
        assert ours.dtype == np.float32 and ours.shape == x.shape
        assert _ulps(ours, _torch64("digamma", x)).max() <= 0.5 + 1e-6


def test_digamma_edges_are_torchs_on_the_scalar_and_lean_paths() -> None:
    x = np.array(EDGES, np.float32)
    for size in (x.size, special.SMALL_DIGAMMA_SIZE + 3):  # the scalar loop, then the lean steps
        xs = np.resize(x, size)
        assert (xs.size < special.SMALL_DIGAMMA_SIZE) == (size == x.size)
        ours = special.digamma_array(xs)
        theirs = torch.digamma(torch.from_numpy(xs)).numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_array_equal(ours[np.isinf(theirs)], theirs[np.isinf(theirs)])
        assert _ulps(ours, _torch64("digamma", xs)).max() <= 0.5 + 1e-6


def test_digamma_float64_keeps_the_numpy_steps() -> None:
    # float64 takes one path at every size below the compiled one's (the paths differ in the last bit)
    x = np.concatenate([RNG.uniform(-5, 30, 40), [0.5, 1.4616321449683623]])
    with jit_gate.disabled():
        alone = np.array([special.digamma_array(x[i : i + 1])[0] for i in range(x.size)])
        together = special.digamma_array(x)
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_allclose(together, _torch64("digamma", x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("size", [1, 5, 40])
def test_small_path_gradients(size: int) -> None:
    values = RNG.uniform(-4.5, 6.0, size)
    values = values[np.abs(values - np.round(values)) > 0.05]
    report = ds.gradcheck(lambda x: (ds.lgamma(x) + ds.digamma(x)).sum(), [ds.tensor(values, dtype=ds.float64)])
    assert report.passed
    x = ds.tensor(values, dtype=ds.float32, requires_grad=True)  # float32: the small paths' dtype
    # torch's float64 at the same float32 points (its float32 trigamma is the less accurate near negatives)
    t = torch.tensor(values.astype(np.float32).astype(np.float64), requires_grad=True)
    (ds.lgamma(x) + ds.digamma(x)).sum().backward()
    (torch.lgamma(t) + torch.digamma(t)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reflected", [0, 1, 16, 17, 200])
def test_digamma_float32_few_or_many_below_a_half_on_strided_arrays(reflected: int) -> None:
    # up to 16 elements below 1/2 go one by one beside the lean steps, more take the reflecting steps;
    # a transposed or strided array gives its values in its own order on both
    x = RNG.uniform(0.5, 30, (20, 30)).astype(np.float32)
    x.flat[RNG.choice(x.size, reflected, replace=False)] = RNG.uniform(-8, 0.5, reflected).astype(np.float32)
    if reflected:
        x.flat[0] = -2.0  # a pole among them
    for a in (x, x.T, x[:, ::3]):
        with jit_gate.disabled():
            ours = special.digamma_array(a)
        assert ours.shape == a.shape
        np.testing.assert_array_equal(np.isnan(ours), a == np.floor(a))
        assert _ulps(ours, _torch64("digamma", a)).max() <= 0.5 + 1e-6
