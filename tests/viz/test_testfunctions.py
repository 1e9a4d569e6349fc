"""The 2-D test functions: values and gradients at the minima published in the literature,
gradients against finite differences and against hand-derived closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
from downslope.viz.testfunctions import SURFACES, Surface, get_surface

# Literature minima and values, typed in here independently of the module (not read from it):
# (point, value, decimals the point is published to).
LITERATURE = {
    "quadratic": [((0.0, 0.0), 0.0, None)],
    "rosenbrock": [((1.0, 1.0), 0.0, None)],  # Rosenbrock 1960
    "beale": [((3.0, 0.5), 0.0, None)],  # Beale 1958
    "himmelblau": [  # Himmelblau 1972, published to 6 decimals
        ((3.0, 2.0), 0.0, None),
        ((-2.805118, 3.131312), 0.0, 6),
        ((-3.779310, -3.283186), 0.0, 6),
        ((3.584428, -1.848126), 0.0, 6),
    ],
    "rastrigin": [((0.0, 0.0), 0.0, None)],
    # Jamil & Yang 2013 (f_30), scipy's global-optimization benchmarks. The points come from a
    # numerical solver, printed with 16 digits but only accurate to about 1e-9.
    "camel": [
        ((0.08984201368301331, -0.7126564032704135), -1.031628453489877, 9),
        ((-0.08984201368301331, 0.7126564032704135), -1.031628453489877, 9),
    ],
}


def _gradient_tolerance(decimals: int | None) -> float:
    # A point known to d decimals is off by up to 0.5 * 10^-d; the gradient there is at most
    # (largest Hessian eigenvalue, < 200 for these functions near their minima) times that.
    return 1e-10 if decimals is None else 200 * 0.5 * 10.0**-decimals


@pytest.mark.parametrize("name", sorted(LITERATURE))
def test_value_and_gradient_at_literature_minima(name: str) -> None:
    surface = get_surface(name)
    assert surface.minimum_value is not None
    for point, value, decimals in LITERATURE[name]:
        assert surface.value(*point) == pytest.approx(value, abs=1e-9)
        assert np.abs(surface.gradient(point)).max() < _gradient_tolerance(decimals), (name, point)
    # The module's own record agrees with the literature.
    assert surface.minimum_value == pytest.approx(LITERATURE[name][0][1], abs=1e-12)
    assert len(surface.minima) == len(LITERATURE[name])
    for (mx, my), point in zip(sorted(surface.minima), sorted(p for p, _, _ in LITERATURE[name])):
        assert mx == pytest.approx(point[0], abs=1e-6) and my == pytest.approx(point[1], abs=1e-6)


def test_minima_are_minima_locally() -> None:
    """Every listed minimum is lower than the points on a small circle around it."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for surface in SURFACES.values():
        for mx, my in surface.minima:
            ring = surface.value(mx + 1e-2 * np.cos(angles), my + 1e-2 * np.sin(angles))
            assert (ring > surface.value(mx, my)).all(), surface.name


def test_saddle_is_a_saddle() -> None:
    saddle = get_surface("saddle")
    assert saddle.minimum_value is None and saddle.minima == ()
    assert saddle.saddles == ((0.0, 0.0),)
    np.testing.assert_array_equal(saddle.gradient((0.0, 0.0)), [0.0, 0.0])
    t = np.array([0.5, -0.5])
    assert (saddle.value(t, 0 * t) > 0).all() and (saddle.value(0 * t, t) < 0).all()


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_gradcheck_at_random_points(name: str) -> None:
    surface = get_surface(name)
    (x0, x1), (y0, y1) = surface.window
    rng = np.random.default_rng(7)
    for _ in range(3):
        point = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        ds.gradcheck(lambda p, s=surface: s(p), [point])


def test_gradients_match_closed_forms() -> None:
    rng = np.random.default_rng(3)
    closed = {
        "rosenbrock": lambda x, y: (-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)),
        "himmelblau": lambda x, y: (
            4 * x * (x * x + y - 11) + 2 * (x + y * y - 7),
            2 * (x * x + y - 11) + 4 * y * (x + y * y - 7),
        ),
        "quadratic": lambda x, y: (x, 20 * y),
        "saddle": lambda x, y: (2 * x, -2 * y),
        "rastrigin": lambda x, y: (
            2 * x + 20 * math.pi * math.sin(2 * math.pi * x),
            2 * y + 20 * math.pi * math.sin(2 * math.pi * y),
        ),
        "camel": lambda x, y: (8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3),
    }
    for name, grad in closed.items():
        for x, y in rng.uniform(-2, 2, size=(5, 2)):
            np.testing.assert_allclose(get_surface(name).gradient((x, y)), grad(x, y), rtol=1e-10, atol=1e-10)


def test_batched_points_and_float32() -> None:
    surface = get_surface("beale")
    pts = np.random.default_rng(0).uniform(-2, 2, size=(5, 2)).astype(np.float32)
    out = surface(ds.tensor(pts))
    assert out.shape == (5,) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), surface.value(pts[:, 0], pts[:, 1]), rtol=1e-5)


def test_grid_covers_window() -> None:
    surface = get_surface("himmelblau")
    X, Y, Z = surface.grid(11)
    assert X.shape == Y.shape == Z.shape == (11, 11)
    assert (X.min(), X.max(), Y.min(), Y.max()) == (-5.0, 5.0, -5.0, 5.0)
    assert Z[5, 5] == pytest.approx(170.0)  # f(0, 0) = 121 + 49


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match="unknown test function 'nope'.*rosenbrock"):
        get_surface("nope")
    with pytest.raises(ValueError, match="last dimension 2"):
        get_surface("rosenbrock")(ds.tensor([1.0, 2.0, 3.0]))
    assert get_surface(" Rosenbrock ") is SURFACES["rosenbrock"]
    assert isinstance(get_surface(SURFACES["beale"]), Surface)


def test_start_points_inside_window_and_not_stationary() -> None:
    for surface in SURFACES.values():
        (x0, x1), (y0, y1) = surface.window
        sx, sy = surface.start
        assert x0 <= sx <= x1 and y0 <= sy <= y1, surface.name
        assert np.abs(surface.gradient(surface.start)).max() > 1e-2, surface.name
