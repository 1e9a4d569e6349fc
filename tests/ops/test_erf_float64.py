"""erf, erfc and erfinv of large float64 host arrays through their one-kernel compiled paths
(``ops._jit_special.erf_float64``, ``erfc_float64``, ``erfinv_float64``: fdlibm's formulas and
Acklam's approximation with a Halley step, an exponential of the kernels' own inlined): against
mpmath's values on points across every range (the seams, the far tails down to erfc's subnormals,
subnormal inputs), against torch's float64 kernels and the NumPy path, the special values as
torch's, the same value for an element whatever the chunk around it, and the gradients unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import _erf, _jit_special, special

torch = pytest.importorskip("torch")
mpmath = pytest.importorskip("mpmath")

pytestmark = pytest.mark.host_only

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 2.2e-308, 0.84375, -0.84375, 1.25, -1.25, 2.857142857142857,
           6.0, 5.93, 26.5, 27.2, 28.0, -28.0, 1.0, -1.0]  # fmt: skip
# the kernels' error bounds in float64 ulps of the exact value (measured on 300k points for erf and erfc:
# 0.78 and 1.84, on 20k for erfinv: 1.6; the NumPy path's 0.81, 2.6 and 1.64, torch's 0.74, 0.79, 0.51)
BOUND = {"erf": 1.0, "erfc": 2.0, "erfinv": 2.0}


def _kernels() -> None:
    if jit_gate.kernels("downslope.ops._jit_special", np.zeros(1)) is None:
        pytest.skip("numba is not installed or the compiled path is switched off")


def _points(name: str, n: int = 6000) -> np.ndarray:
    """At least JIT_MIN_SIZE points across the ranges of ``name`` (its domain for erfinv)."""
    rng = np.random.default_rng(11)
    if name == "erfinv":
        parts = [
            rng.uniform(-1, 1, n // 2),
            1 - 10 ** rng.uniform(-16, -1, n // 4),  # the tail, up to the last double below 1
            -(1 - 10 ** rng.uniform(-16, -1, n // 8)),
            10 ** rng.uniform(-320, -1, n // 8) * rng.choice([-1.0, 1.0], n // 8),  # down to subnormals
            [1.0, -1.0, 1.5, -2.0, np.nan, 0.0, -0.0, 5e-324, 1 - 2**-53, -(1 - 2**-53), 0.9515, -0.9515],
        ]
    else:
        parts = [
            SPECIAL,
            rng.uniform(-6, 6, n // 2),
            rng.uniform(-28.5, 28.5, n // 4),
            10 ** rng.uniform(-320, 0.3, n // 8) * rng.choice([-1.0, 1.0], n // 8),
            rng.uniform(25.0, 27.3, n // 8),  # erfc's results turn subnormal
        ]
    return np.concatenate([np.asarray(p, np.float64) for p in parts])


def _ulps(name: str, x: np.ndarray, got: np.ndarray) -> np.ndarray:
    """|got - exact| in ulps of the exact value (the subnormal spacing where it is below the normals)."""
    mpmath.mp.prec = 100
    fn = {"erf": mpmath.erf, "erfc": mpmath.erfc, "erfinv": mpmath.erfinv}[name]
    out = np.empty(x.size)
    for i, (v, g) in enumerate(zip(x.tolist(), got.tolist())):
        exact = fn(mpmath.mpf(v))
        spacing = max(float(np.spacing(abs(float(exact)))), 5e-324)
        out[i] = abs(float((mpmath.mpf(g) - exact) / spacing))
    return out


def _compiled(name: str, x: np.ndarray) -> np.ndarray:
    return special.erfinv_array(x) if name == "erfinv" else getattr(_erf, f"{name}_array")(x)


@pytest.mark.parametrize(
    ("name", "checked"),
    # mpmath's erfinv takes some 5 ms a point: a sample of the points by default, all of them when slow
    [("erf", 1), ("erfc", 1), ("erfinv", 10), pytest.param("erfinv", 1, marks=pytest.mark.slow)],
)
def test_float64_kernel_is_within_its_ulps_of_exact(monkeypatch, name, checked):
    _kernels()
    calls: list[int] = []
    kernel = getattr(_jit_special, f"{name}_float64")
    monkeypatch.setattr(_jit_special, f"{name}_float64", lambda *a: (calls.append(1), kernel(*a))[1])
    x = _points(name)
    ours = _compiled(name, x)
    assert calls and ours.dtype == np.float64
    ordinary = np.isfinite(x) & (np.abs(x) < 1 if name == "erfinv" else True)
    sample = np.flatnonzero(ordinary)
    sample = np.union1d(sample[::checked], sample[-12:])  # (the edge points at the end always)
    assert _ulps(name, x[sample], ours[sample]).max() <= BOUND[name]
    # torch's values within the two errors, and the special values (signs included) as torch's
    theirs = getattr(torch, name)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_max_ulp(ours[ordinary], theirs[ordinary], maxulp=BOUND[name] + 1)
    edge = ~ordinary | (x == 0)
    np.testing.assert_array_equal(ours[edge], theirs[edge])
    signed = edge & ~np.isnan(theirs)  # (a NaN's sign is the NumPy path's: erfinv(-2) is -NaN there)
    np.testing.assert_array_equal(np.signbit(ours[signed]), np.signbit(theirs[signed]))


@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv"])
def test_float64_kernel_is_within_an_ulp_or_so_of_the_numpy_path(name):
    _kernels()
    x = _points(name)
    ours = _compiled(name, x)
    with jit_gate.disabled():
        reference = _compiled(name, x)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    keep = ~np.isnan(ours)
    np.testing.assert_array_max_ulp(ours[keep], reference[keep], maxulp=3)


@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv"])
def test_value_does_not_depend_on_the_chunk_around_it(name):
    """A chunk of one range takes a short loop: an element alone among copies of itself gets the value it
    gets in a mixed chunk."""
    _kernels()
    x = _points(name, 4096)
    whole = _compiled(name, x)
    for i in range(0, x.size, 61):
        alone = _compiled(name, np.full(_erf.JIT_MIN_SIZE, x[i]))
        np.testing.assert_array_equal(alone[:1].view(np.uint64), whole[i : i + 1].view(np.uint64))


@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv"])
def test_float64_gradients_match_torch(name):
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.999, 0.999, 5000) if name == "erfinv" else rng.uniform(-6, 6, 5000)
    xd = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    getattr(ds, name)(xd).sum().backward()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    getattr(torch, name)(xt).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-13, atol=1e-300)
