"""The compiled fast paths of ops whose NumPy steps were far slower than torch: polygamma (trigamma in
SIMD blocks), erf and erfc (every range's formula in one SIMD loop, its exponential inlined),
i0e and i1e, einsum's outer products, and the float32 division family (fmod, remainder,
floor_divide); and the Python-float path of the variance of a few elements. Each is checked for
being taken, against the NumPy path (bit for bit where the formulas are the same) and against torch
(float64 torch, or exact values, where torch's own float32 kernel is the less accurate)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import _erf, _jit_special, arithmetic, linalg, reductions, special

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(24)
# the large arrays take the compiled paths; each holds the special values at its start
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, -3.0, 0.5, -0.5, 1.25, -1.25, 0.84375, 8.0, 28.0]


def _kernels() -> object:
    k = jit_gate.kernels("downslope.ops._jit_special", np.zeros(1))
    if k is None:
        pytest.skip("numba is not installed or the compiled path is switched off")
    return k


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of the kernel ``name`` (wrapped in place in the kernels module)."""
    _kernels()
    calls: list[int] = []
    kernel = getattr(_jit_special, name)

    def counted(*args: object) -> object:
        calls.append(1)
        return kernel(*args)

    monkeypatch.setattr(_jit_special, name, counted)
    return calls


def _wide(low: float, high: float, dtype: type, size: int = 40_000) -> np.ndarray:
    x = RNG.uniform(low, high, size).astype(dtype)
    x[: len(SPECIAL)] = SPECIAL
    return x


def _same_bits(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    nan = np.isnan(reference)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint8), reference[~nan].view(np.uint8))


# ---------------------------------------------------------------------------------------------- polygamma


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_polygamma_takes_the_kernel_and_agrees_with_torch_in_float64(monkeypatch, dtype, n):
    calls = _counting(monkeypatch, "polygamma")
    x = _wide(-8, 30, dtype)
    ours = ds.polygamma(n, ds.from_numpy(x)).numpy()
    assert calls and ours.dtype == dtype
    # torch's float32 kernel computes in float32 (4% off near the poles): its float64 values, rounded
    theirs = torch.polygamma(n, torch.from_numpy(x.astype(np.float64))).numpy().astype(dtype)
    # at the poles 0, -1, -3 and at +-inf the NumPy path's values: torch's sin(pi x) is not 0 at -1 and -3
    poles = (x <= 0) & (x == np.floor(x)) | np.isinf(x)  # torch: NaN at +inf for n >= 2, downslope 0
    with jit_gate.disabled():
        np.testing.assert_array_equal(ours[poles], special.polygamma_array(n, x[poles]))
    ours, theirs = ours[~poles], theirs[~poles]
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    np.testing.assert_array_equal(ours[~finite], theirs[~finite])  # +inf and NaN
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-5 if dtype == np.float32 else 1e-8)


@pytest.mark.host_only
@pytest.mark.parametrize("n", [1, 2, 3])
def test_polygamma_kernel_is_as_accurate_as_the_numpy_path(n):
    _kernels()
    x = np.concatenate([RNG.uniform(-6, 6, 3000), RNG.uniform(0.01, 50, 3000), -RNG.uniform(1e3, 1e6, 100)])
    exact = np.array([_polygamma_reference(n, v) for v in x])
    compiled = special.polygamma_array(n, x)
    with jit_gate.disabled():
        numpy_path = special.polygamma_array(n, x)
    scale = np.abs(exact)
    # near the zeros of the even orders both lose digits to the reflection's cancellation alike
    err_compiled = np.abs(compiled - exact) / scale
    err_numpy = np.abs(numpy_path - exact) / scale
    assert np.quantile(err_compiled, 0.99) <= 2 * np.quantile(err_numpy, 0.99) + 1e-16
    assert np.median(err_compiled) <= 1e-15


def _polygamma_reference(n: int, x: float) -> float:
    """polygamma(n, x) of a float64 x from scipy in extended steps where available, else torch float64."""
    scipy_special = pytest.importorskip("scipy.special")
    if x > 0:  # (-1)^(n+1) n! zeta(n + 1, x)
        return float((-1) ** (n + 1) * math.factorial(n) * scipy_special.zeta(n + 1, x))
    return float(torch.polygamma(n, torch.tensor(x, dtype=torch.float64)))


@pytest.mark.host_only
def test_trigamma_gradient_of_digamma_takes_the_kernel(monkeypatch):
    calls = _counting(monkeypatch, "polygamma")
    x = ds.from_numpy(_wide(0.1, 20, np.float64)[len(SPECIAL) :])
    x.requires_grad_(True)
    ds.digamma(x).sum().backward()
    assert calls
    xt = torch.from_numpy(x.detach().numpy()).requires_grad_(True)
    torch.digamma(xt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-8)


# ---------------------------------------------------------------------------------------------- erf, erfc


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["erf", "erfc"])
@pytest.mark.parametrize("width", [0.9, 10.0, 30.0])
def test_erf_kernels_give_the_numpy_paths_bits(monkeypatch, dtype, name, width):
    # one kernel each, its exponential inlined: float32 erfc gives the NumPy path's bits; float32 erf is
    # computed in float32 (tests/ops/test_erf_float32.py holds its accuracy) and the float64 kernels with
    # an exponential of their own (tests/ops/test_erf_float64.py), so within an ulp or so of the NumPy path
    single = dtype == np.float32
    calls = _counting(monkeypatch, f"{name}_float32" if single else f"{name}_float64")
    x = _wide(-width, width, dtype, size=_erf.BLOCK + 5000)
    ours = getattr(_erf, f"{name}_array")(x)
    assert len(calls) == 1
    with jit_gate.disabled():
        reference = getattr(_erf, f"{name}_array")(x)
    if single and name == "erfc":
        _same_bits(ours, reference)
    else:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
        keep = ~np.isnan(ours)
        np.testing.assert_array_max_ulp(ours[keep], reference[keep], maxulp=1 if single else 3)
    theirs = getattr(torch, name)(torch.from_numpy(x)).numpy()
    tiny = np.finfo(dtype).smallest_subnormal  # (subnormal tails: an ulp there is a large relative step)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6 if dtype == np.float32 else 1e-14, atol=8 * tiny)


@pytest.mark.host_only
def test_erf_kernel_value_does_not_depend_on_the_array_around_it():
    _kernels()
    x = _wide(-10, 10, np.float64)
    whole = _erf.erfc_array(x)
    # the NumPy path, one element at a time: fdlibm's formulas with NumPy's exp, within 3 ulps
    alone = np.array([_erf.erfc_array(x[i : i + 1])[0] for i in range(0, x.size, 397)])
    np.testing.assert_array_equal(np.isnan(whole[::397]), np.isnan(alone))
    keep = ~np.isnan(alone)
    np.testing.assert_array_max_ulp(whole[::397][keep], alone[keep], maxulp=3)


@pytest.mark.host_only
def test_small_erf_arrays_stay_on_the_numpy_path(monkeypatch):
    calls = _counting(monkeypatch, "erf_float32")
    ds.erf(ds.from_numpy(_wide(-3, 3, np.float32, size=_erf.JIT_MIN_SIZE - 1)))
    assert not calls


# ---------------------------------------------------------------------------------------------- i0e, i1e


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["i0e", "i1e"])
def test_scaled_bessel_kernels_give_the_numpy_paths_bits(monkeypatch, dtype, name):
    calls = _counting(monkeypatch, f"{name}_{'single' if dtype == np.float32 else 'double'}")
    x = _wide(-40, 40, dtype)
    ours = getattr(ds.special, name)(ds.from_numpy(x)).numpy()
    assert calls
    with jit_gate.disabled():
        reference = getattr(ds.special, name)(ds.from_numpy(x)).numpy()
    _same_bits(ours, reference)
    theirs = getattr(torch.special, name)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-6 if dtype == np.float32 else 1e-13, atol=1e-30)


# ---------------------------------------------------------------------------------------------- einsum


@pytest.mark.host_only
@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("i,j->ij", [(300,), (200,)]),
        ("bi,bj->bij", [(16, 64), (16, 48)]),
        ("bci,bcj->bcij", [(2, 3, 100), (2, 3, 80)]),
        ("bi,b->bi", [(400, 100), (400,)]),
        ("ij,k->ijk", [(20, 30), (70,)]),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_einsum_outer_products_take_the_kernel(monkeypatch, equation, shapes, dtype):
    calls = _counting(monkeypatch, "outer_rows")
    arrays = [RNG.standard_normal(s).astype(dtype) for s in shapes]
    arrays[0].flat[:3] = [np.nan, -0.0, np.inf]
    ours = ds.einsum(equation, *(ds.from_numpy(a) for a in arrays)).numpy()
    assert calls
    theirs = torch.einsum(equation, *(torch.from_numpy(a) for a in arrays)).numpy()
    # torch's bits: the single products, -0.0 included (np.einsum's sum from +0 gives +0.0 there)
    _same_bits(ours, theirs)
    np.testing.assert_array_equal(ours, np.einsum(equation, *arrays))


@pytest.mark.host_only
@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("ij,kj->ikj", [(40, 30), (50, 30)]),  # the shared index is not leading
        ("bi,bj->bji", [(16, 64), (16, 48)]),  # the output's order is not a's then b's
        ("bi,bj->bij", [(1, 64), (16, 48)]),  # a size-1 batch broadcasts
        ("ij,jk->ik", [(64, 64), (64, 64)]),  # a contraction
    ],
)
def test_einsum_other_products_keep_their_paths(monkeypatch, equation, shapes):
    calls = _counting(monkeypatch, "outer_rows")
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    ours = ds.einsum(equation, *(ds.from_numpy(a) for a in arrays)).numpy()
    assert not calls
    theirs = torch.einsum(equation, *(torch.from_numpy(a) for a in arrays)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_einsum_outer_product_gradients_match_torch():
    a, b = RNG.standard_normal((8, 200)), RNG.standard_normal((8, 30))
    g = RNG.standard_normal((8, 200, 30))
    ta, tb = (ds.tensor(v, dtype=ds.float64, requires_grad=True) for v in (a, b))
    (ds.einsum("bi,bj->bij", ta, tb) * ds.tensor(g, dtype=ds.float64)).sum().backward()
    ra, rb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    (torch.einsum("bi,bj->bij", ra, rb) * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), ra.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), rb.grad.numpy(), rtol=1e-12)
    assert linalg._JIT_OUTER_MIN_SIZE <= 8 * 200 * 30


# ---------------------------------------------------------------------------------------------- division


def _division_operands(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    size = math.prod(shape)
    x = (RNG.standard_normal(size) * RNG.choice([1.0, 10.0, 1e4, 1e9], size)).astype(np.float32)
    y = (RNG.uniform(0.5, 2, size) * RNG.choice([-1.0, 1.0], size) * RNG.choice([1.0, 1e-3, 1e3], size)).astype(
        np.float32
    )
    grid = np.array([0, -0.0, np.inf, -np.inf, np.nan, 1, -1, 3, 2**25, 1e-45, -7, 7, 0.5], np.float32)
    xs, ys = np.meshgrid(grid, grid)
    x[: xs.size], y[: ys.size] = xs.ravel(), ys.ravel()
    return x.reshape(shape), y.reshape(shape)


@pytest.mark.host_only
@pytest.mark.parametrize("name", ["fmod", "remainder", "floor_divide"])
def test_float32_division_kernels_give_the_numpy_paths_and_torchs_values(monkeypatch, name):
    calls = _counting(monkeypatch, f"{name}_float32")
    x, y = _division_operands((100, 90))
    with np.errstate(all="ignore"):
        ours = getattr(ds, name)(ds.from_numpy(x), ds.from_numpy(y)).numpy()
        assert calls
        with jit_gate.disabled():
            reference = getattr(ds, name)(ds.from_numpy(x), ds.from_numpy(y)).numpy()
        theirs = getattr(torch, name)(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    _same_bits(ours, reference)
    # NaN where torch's, signed zeros aside; but for a subnormal divisor, where torch's vectorised fmod
    # gives NaN and C's fmod (NumPy's, downslope's) the exact remainder
    normal = ~((y != 0) & (np.abs(y) < np.finfo(np.float32).tiny))
    np.testing.assert_array_equal(ours[normal], theirs[normal])


@pytest.mark.host_only
def test_division_kernels_skip_broadcasts_and_small_arrays(monkeypatch):
    calls = _counting(monkeypatch, "remainder_float32")
    x, y = _division_operands((100, 90))
    ds.remainder(ds.from_numpy(x), ds.from_numpy(y[:1]))  # broadcast divisor: the NumPy steps
    small = arithmetic._JIT_DIVISION_MIN_SIZE - 1
    ds.remainder(ds.from_numpy(x.ravel()[:small]), ds.from_numpy(y.ravel()[:small]))
    assert not calls


def test_remainder_gradient_unchanged_by_the_kernel():
    x, y = RNG.uniform(-5, 5, (80, 80)).astype(np.float32), RNG.uniform(0.5, 2, (80, 80)).astype(np.float32)
    a, b = ds.from_numpy(x), ds.from_numpy(y)
    a.requires_grad_(True)
    b.requires_grad_(True)
    ds.remainder(a, b).sum().backward()
    ta, tb = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(y).requires_grad_(True)
    torch.remainder(ta, tb).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())


# ---------------------------------------------------------------------------------------------- small variance


def _exact_variance(x: np.ndarray, correction: int) -> Fraction:
    values = [Fraction(float(v)) for v in x.ravel()]
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - correction)


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_variance_is_the_exact_value_rounded(dtype):
    for trial in range(200):
        n = int(RNG.integers(2, reductions.SMALL_VARIANCE_MAX + 1))
        x = (RNG.standard_normal(n) * 10.0 ** RNG.integers(-3, 4) + RNG.choice([0.0, 1e4])).astype(dtype)
        correction = trial % 2
        t = ds.from_numpy(x)
        exact = _exact_variance(x, correction)
        var = t.var(correction=correction).numpy()
        assert var.dtype == dtype and var.shape == ()
        if dtype == np.float32:  # rounded once from float64 sums: the float32 nearest the exact value
            assert var == np.float32(float(exact))
            assert t.std(correction=correction).numpy() == np.float32(math.sqrt(float(exact)))
        else:
            np.testing.assert_allclose(var, float(exact), rtol=4e-16)


def test_small_variance_matches_torch_with_gradients_and_shapes():
    x = RNG.standard_normal((2, 5))
    for fn in ("std", "var"):
        for keepdim in (False, True):
            t = ds.tensor(x, dtype=ds.float64, requires_grad=True)
            out = getattr(t, fn)(dim=(0, 1), keepdim=keepdim)
            (out * 3).sum().backward()
            r = torch.tensor(x, requires_grad=True)
            ref = getattr(r, fn)(dim=(0, 1), keepdim=keepdim)
            (ref * 3).sum().backward()
            assert out.shape == tuple(ref.shape)
            np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-14)
            np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), rtol=1e-12)
    assert x.size <= reductions.SMALL_VARIANCE_MAX


@pytest.mark.parametrize(
    "values",
    [
        [1.0, np.inf],
        [np.inf, -np.inf, 1.0],
        [np.nan, 1.0],
        [2.0, 2.0, 2.0],
        # a float32 variance past its range (inf) whose square root fits: the host redoes std in float64
        pytest.param([1e38, -1e38], marks=pytest.mark.host_only),
    ],
)
def test_small_variance_special_values_match_torch(values):
    x = np.array(values, np.float32)
    for fn in ("std", "var"):
        ours = getattr(ds.from_numpy(x), fn)().numpy()
        theirs = getattr(torch.from_numpy(x), fn)().numpy()
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.host_only
def test_small_variance_path_is_taken_only_over_all_dims(monkeypatch):
    seen: list[int] = []
    original = reductions._small_variance_array

    def spy(*args: object) -> object:
        out = original(*args)
        seen.append(out is not None)
        return out

    import downslope.functional as functional

    monkeypatch.setattr(functional, "_small_variance_array", spy)
    x = ds.from_numpy(RNG.standard_normal((3, 4)).astype(np.float32))
    x.std()
    x.var(dim=1)
    big = ds.from_numpy(RNG.standard_normal(reductions.SMALL_VARIANCE_MAX + 1).astype(np.float32))
    big.std()
    assert seen == [True, False]  # the dim=1 variance does not ask; the large one is refused


# ---------------------------------------------------------------------------------------------- igamma


def _igamma_points(n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """a and x across every method's region (series, both Q forms, Temme's expansion) and the edges."""
    rng = np.random.default_rng(31)
    a = np.concatenate([rng.uniform(0, 2, n), rng.uniform(0, 50, n), 10 ** rng.uniform(-3, 4, n)])
    x = np.concatenate([rng.uniform(0, 3, n), rng.uniform(0, 80, n), a[2 * n :] * rng.uniform(0.5, 1.5, n)])
    edges = [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (np.inf, 1.0), (1.0, np.inf), (np.inf, np.inf), (-1.0, 1.0),
             (1.0, -1.0), (np.nan, 1.0), (1.0, np.nan), (1e-300, 1e-300), (1e300, 1e300), (25.0, 25.0)]  # fmt: skip
    a[: len(edges)], x[: len(edges)] = zip(*edges)
    return a, x


@pytest.mark.host_only
@pytest.mark.parametrize("upper", [False, True])
def test_igamma_kernel_agrees_with_the_numpy_path_and_torch(monkeypatch, upper):
    calls = _counting(monkeypatch, "igamma")
    a, x = _igamma_points()
    ours = special._igamma_array(a, x, upper)
    assert calls
    with jit_gate.disabled():
        reference = special._igamma_array(a, x, upper)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    # the same methods with the C library's exp, log, lgamma for NumPy's: the same values but for the
    # conditioning of x^a e^-x at large a (a log x - x near -700 carries 1e-11 of its rounding)
    moderate = (a < 100) & (x < 100)
    np.testing.assert_allclose(ours[moderate], reference[moderate], rtol=5e-13, atol=1e-300)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-300)
    theirs = (torch.special.gammaincc if upper else torch.special.gammainc)(torch.from_numpy(a), torch.from_numpy(x))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-8, atol=1e-300)
    # float32: computed in float64 and rounded once, so torch's float64 values rounded (torch's own float32
    # kernel computes in float32 and is off by up to 0.2% on small values)
    with np.errstate(over="ignore"):
        a32, x32 = a.astype(np.float32), x.astype(np.float32)
    ours32 = (ds.special.gammaincc if upper else ds.special.gammainc)(ds.from_numpy(a32), ds.from_numpy(x32)).numpy()
    wide = (torch.special.gammaincc if upper else torch.special.gammainc)(
        torch.from_numpy(a32.astype(np.float64)), torch.from_numpy(x32.astype(np.float64))
    )
    np.testing.assert_allclose(ours32, wide.numpy().astype(np.float32), rtol=2.4e-7, atol=1e-45)
