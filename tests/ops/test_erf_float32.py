"""erf and erfc of large float32 host arrays through their one-kernel compiled paths (``ops._jit_special``:
erf in float32 arithmetic, erfc in float64 with an inlined exp): within 2 float32 ulps of the exact
value on over a million points (tails, subnormals and the range seams included), within 2 ulps of
torch's float32 kernels, the special values as torch's, and the gradient unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import _erf, _jit_special

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.host_only

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-45, -1e-45, 1e-38, 3.92, -3.93, 10.5, 9.2])


def _points() -> np.ndarray:
    """Over a million float32 points: wide, near 0, around the seam at 1, erfc's subnormal tail, subnormal inputs."""
    rng = np.random.default_rng(7)
    parts = [
        SPECIAL,
        rng.uniform(-12.0, 12.0, 600_000),
        rng.standard_normal(200_000) * 1e-3,
        rng.uniform(0.95, 1.05, 100_000) * rng.choice([-1.0, 1.0], 100_000),
        rng.uniform(9.0, 10.1, 100_000),  # erfc's float32 values turn subnormal, then 0
        np.logspace(-45, -30, 50_000) * rng.choice([-1.0, 1.0], 50_000),
    ]
    return np.concatenate(parts).astype(np.float32)


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of the float32 spacing at |exact| (the subnormal spacing below)."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / np.maximum(spacing, np.finfo(np.float32).smallest_subnormal)


def _exact(name: str, x: np.ndarray) -> np.ndarray:
    """float64 values (fdlibm's formulas, within an ulp of float64: exact at float32's scale)."""
    with jit_gate.disabled():
        return getattr(_erf, f"{name}_array")(x.astype(np.float64))


def _kernels() -> None:
    if jit_gate.kernels("downslope.ops._jit_special", np.zeros(1, np.float32)) is None:
        pytest.skip("numba is not installed or the compiled path is switched off")


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_float32_kernel_is_within_two_ulps_of_exact_and_of_torch(monkeypatch, name):
    _kernels()
    calls: list[int] = []
    kernel = getattr(_jit_special, f"{name}_float32")
    monkeypatch.setattr(_jit_special, f"{name}_float32", lambda *a: (calls.append(1), kernel(*a))[1])
    x = _points()
    ours = getattr(_erf, f"{name}_array")(x)
    assert calls and ours.dtype == np.float32
    finite = np.isfinite(x)
    assert _ulps(ours[finite], _exact(name, x[finite])).max() <= 2.0
    theirs = getattr(torch, name)(torch.from_numpy(x)).numpy()
    assert _ulps(ours[finite], theirs[finite].astype(np.float64)).max() <= 2.0
    # the special values: as torch's, the sign of erf(-0.0) included
    special = ~finite | (x == 0)
    np.testing.assert_array_equal(ours[special], theirs[special])
    np.testing.assert_array_equal(np.signbit(ours[special]), np.signbit(theirs[special]))


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_chunks_of_one_range_and_of_mixed_ranges_agree(name):
    """A chunk whose elements all lie in |x| <= 1 takes the short loop: the same values as in a mixed chunk."""
    _kernels()
    rng = np.random.default_rng(3)
    small = rng.uniform(-0.99, 0.99, 8192).astype(np.float32)
    mixed = small.copy()
    mixed[::512] = 5.0  # one tail element in every chunk
    alone = getattr(_erf, f"{name}_array")(small)
    together = getattr(_erf, f"{name}_array")(mixed)
    keep = np.ones(small.size, bool)
    keep[::512] = False
    np.testing.assert_array_equal(alone[keep], together[keep])


def test_erf_gradient_is_unchanged():
    x = np.random.default_rng(5).uniform(-4, 4, (64, 128)).astype(np.float32)
    xd = ds.from_numpy(x.copy()).requires_grad_(True)
    ds.erf(xd).sum().backward()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    torch.erf(xt).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=2e-6, atol=1e-30)


def test_erfinv_float32_kernel_gives_the_numpy_paths_bits_and_torchs_values(monkeypatch):
    _kernels()
    from downslope.ops import special

    calls: list[int] = []
    kernel = _jit_special.erfinv_float32
    monkeypatch.setattr(_jit_special, "erfinv_float32", lambda *a: (calls.append(1), kernel(*a))[1])
    rng = np.random.default_rng(9)
    edges = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, np.nan, np.inf, -np.inf, 1e-45, -1e-40, 0.9999999, -0.99999994, 0.9515]
    y = np.concatenate([edges, rng.uniform(-1, 1, 300_000), 1 - rng.uniform(0, 0.05, 50_000)]).astype(np.float32)
    y[-20_000:] *= -1
    ours = special.erfinv_array(y)
    assert calls and ours.dtype == np.float32
    with jit_gate.disabled():
        reference = special.erfinv_array(y)
    np.testing.assert_array_equal(ours.view(np.uint32), reference.view(np.uint32))  # NaN's sign included
    theirs = torch.erfinv(torch.from_numpy(y)).numpy()
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    np.testing.assert_array_equal(ours[~finite & ~np.isnan(theirs)], theirs[~finite & ~np.isnan(theirs)])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_max_ulp(ours[finite], theirs[finite], maxulp=4)
    np.testing.assert_array_equal(np.signbit(ours[y == 0]), np.signbit(y[y == 0]))
