"""Two-dimensional test functions for watching optimizers, written with downslope ops.

Each :class:`Surface` is a formula ``f(x, y)`` built from downslope operations, so backpropagation
gives its gradient for free; it carries the known global minima (from the optimization
literature), the minimum value, a plotting window and a default start point from which the
optimizers have something interesting to do.

=============  ================================================  ==============================
name           formula                                           global minima (value)
=============  ================================================  ==============================
quadratic      (x^2 + 20 y^2) / 2 (condition number 20)          (0, 0) (0)
rosenbrock     (1 - x)^2 + 100 (y - x^2)^2                       (1, 1) (0)
beale          (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2            (3, 0.5) (0)
               + (2.625 - x + xy^3)^2
himmelblau     (x^2 + y - 11)^2 + (x + y^2 - 7)^2                four points (0)
saddle         x^2 - y^2                                         none (saddle at the origin)
rastrigin      20 + sum(t^2 - 10 cos(2 pi t)), t in {x, y}       (0, 0) (0); many local minima
camel          (4 - 2.1x^2 + x^4/3) x^2 + xy + (4y^2 - 4) y^2    (+-0.0898, -+0.7127) (-1.0316)
=============  ================================================  ==============================

Example:
    >>> import downslope as ds
    >>> from downslope.viz.testfunctions import get_surface
    >>> rosen = get_surface("rosenbrock")
    >>> float(rosen(ds.tensor([1.0, 1.0])))
    0.0
    >>> rosen.gradient([1.0, 1.0]).tolist()
    [0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ops
from ..autograd import enable_grad, no_grad
from ..errors import ArgumentError
from ..tensor import Tensor, tensor

Point = tuple[float, float]
Window = tuple[Point, Point]


@dataclass(frozen=True)
class Surface:
    """A 2-D function with what is known about it.

    Attributes:
        name: short identifier (``"rosenbrock"``).
        title: the formula in words, for plot titles.
        formula: ``f(x, y)`` on tensors of any (equal or broadcastable) shape, elementwise.
        minima: the global minimizers, ``((x, y), ...)``; empty when there is none.
        minimum_value: ``f`` at the minima, or None when the function is unbounded below.
        window: ``((x_min, x_max), (y_min, y_max))`` for plots.
        start: a default start point for optimizers.
        saddles: known saddle points (for the saddle function).
        learning_rates: learning rates that make a telling race on this surface, per optimizer
            (``{"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "radam"}``), used by
            default optimizer sets. RAdam gets its own rate: its first steps (until the variance of
            the adaptive rate can be estimated, 5 steps with beta2 = 0.999) are momentum SGD at lr,
            so Adam's rate (0.1 on most surfaces) throws it out of Rosenbrock's valley for good, in
            torch.optim.RAdam as here. Nesterov gets its own rate: with beta = 0.9 it is stable only for
            lr * L < 2(1 + beta) / (1 + 2 beta) ~ 1.36 (L the largest curvature), against 2 for plain
            gradient descent and 2(1 + beta) = 3.8 for heavy-ball momentum, so momentum's rate can make
            it blow up where the others do not.
    """

    name: str
    title: str
    formula: Callable[[Tensor, Tensor], Tensor]
    minima: tuple[Point, ...]
    minimum_value: float | None
    window: Window
    start: Point
    saddles: tuple[Point, ...] = ()
    learning_rates: dict[str, float] = field(default_factory=dict)

    def __call__(self, point: Any) -> Tensor:
        """``f`` at ``point``: a tensor (or array/list) whose last dimension has size 2 -> ``f`` per point."""
        p = point if isinstance(point, Tensor) else tensor(point)
        if p.ndim == 0 or p.shape[-1] != 2:
            raise ArgumentError(
                f"Surface '{self.name}': expected a point with last dimension 2 (x, y), got shape {tuple(p.shape)}"
            )
        return self.formula(p[..., 0], p[..., 1])

    def value(self, x: Any, y: Any) -> np.ndarray:
        """``f`` evaluated elementwise on arrays ``x`` and ``y`` (float64, no graph recorded)."""
        with no_grad():  # on the host whatever the default device: the values are for a plot (NumPy, matplotlib)
            out = self.formula(tensor(x, dtype="float64", device="cpu"), tensor(y, dtype="float64", device="cpu"))
        return np.asarray(out.array, dtype=np.float64)

    def gradient(self, point: Sequence[float] | np.ndarray) -> np.ndarray:
        """The gradient ``(df/dx, df/dy)`` at one point, by backpropagation in float64."""
        with enable_grad():
            p = tensor(point, dtype="float64", requires_grad=True, device="cpu")  # a NumPy answer: on the host
            if p.shape != (2,):
                raise ArgumentError(
                    f"Surface '{self.name}'.gradient: expected one point (x, y), got shape {tuple(p.shape)}"
                )
            self(p).backward()
        assert p.grad is not None
        return np.asarray(p.grad.array)

    def grid(self, size: int = 200, window: Window | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)`` on a ``size x size`` grid over the window (for contour plots)."""
        (x0, x1), (y0, y1) = window or self.window
        X, Y = np.meshgrid(np.linspace(x0, x1, size), np.linspace(y0, y1, size))
        return X, Y, self.value(X, Y)


# ---------------------------------------------------------------------- the formulas
def _quadratic(x: Tensor, y: Tensor) -> Tensor:
    # Curvature 1 along x and 20 along y: plain gradient descent zigzags across the valley.
    return 0.5 * (x * x + 20.0 * y * y)


def _rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _beale(x: Tensor, y: Tensor) -> Tensor:
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _himmelblau(x: Tensor, y: Tensor) -> Tensor:
    return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2


def _saddle(x: Tensor, y: Tensor) -> Tensor:
    return x * x - y * y


def _rastrigin(x: Tensor, y: Tensor) -> Tensor:
    two_pi = 2.0 * math.pi
    return 20.0 + (x * x - 10.0 * ops.cos(two_pi * x)) + (y * y - 10.0 * ops.cos(two_pi * y))


def _camel(x: Tensor, y: Tensor) -> Tensor:
    x2 = x * x
    y2 = y * y
    return (4.0 - 2.1 * x2 + x2 * x2 / 3.0) * x2 + x * y + (4.0 * y2 - 4.0) * y2


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            "quadratic",
            "ill-conditioned bowl  (x² + 20y²)/2",
            _quadratic,
            minima=((0.0, 0.0),),
            minimum_value=0.0,
            window=((-6.0, 6.0), (-3.0, 3.0)),
            start=(-5.0, 2.0),
            # sgd and momentum race at one rate; with beta = 0.9 momentum cannot beat gradient descent on a
            # bowl this mildly conditioned (kappa = 20), which the legend's settings let a reader see.
            # Nesterov at 0.09 would blow up (lr * L = 1.8 > 1.36, its limit at beta = 0.9); at 0.05 (lr * L = 1)
            # its look-ahead cancels the steep direction in two steps and it converges at 0.925 a step against
            # heavy-ball's 0.949: the race shows what the look-ahead buys.
            learning_rates={
                "sgd": 0.09,
                "momentum": 0.09,
                "nesterov": 0.05,
                "rmsprop": 0.03,
                "adagrad": 1.0,
                "adam": 0.1,
                "radam": 0.1,
            },
        ),
        Surface(
            "rosenbrock",
            "Rosenbrock  (1-x)² + 100(y-x²)²",
            _rosenbrock,
            minima=((1.0, 1.0),),
            minimum_value=0.0,
            window=((-2.0, 2.0), (-1.0, 3.0)),
            start=(-1.5, 2.0),
            # Nesterov at momentum's rate: stable here, and it ends nearer (1, 1) than heavy-ball does
            learning_rates={
                "sgd": 1e-3,
                "momentum": 1e-3,
                "nesterov": 1e-3,
                "rmsprop": 0.01,
                "adagrad": 0.5,
                "adam": 0.1,
                "radam": 6e-3,
            },
        ),
        Surface(
            "beale",
            "Beale function",
            _beale,
            minima=((3.0, 0.5),),
            minimum_value=0.0,
            window=((-4.5, 4.5), (-4.5, 4.5)),
            start=(1.0, 1.5),
            # Nesterov at momentum's rate: both settle in the flat valley short of (3, 0.5), side by side
            learning_rates={
                "sgd": 0.01,
                "momentum": 1e-3,
                "nesterov": 1e-3,
                "rmsprop": 0.1,
                "adagrad": 1.0,
                "adam": 0.1,
                "radam": 8e-3,
            },
        ),
        Surface(
            "himmelblau",
            "Himmelblau  (x²+y-11)² + (x+y²-7)²",
            _himmelblau,
            # Literature values (e.g. Himmelblau 1972; Wikipedia "Himmelblau's function").
            minima=((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
            minimum_value=0.0,
            window=((-5.0, 5.0), (-5.0, 5.0)),
            start=(-0.5, -0.5),
            # Nesterov at momentum's rate: every optimizer reaches the same minimum, at its own pace
            learning_rates={
                "sgd": 0.01,
                "momentum": 3e-3,
                "nesterov": 3e-3,
                "rmsprop": 0.03,
                "adagrad": 0.3,
                "adam": 0.1,
                "radam": 0.05,
            },
        ),
        Surface(
            "saddle",
            "saddle  x² - y²",
            _saddle,
            minima=(),
            minimum_value=None,
            window=((-2.0, 2.0), (-2.0, 2.0)),
            start=(-1.8, 0.02),
            saddles=((0.0, 0.0),),
            # unbounded below: every optimizer escapes along y, the momentum methods (Nesterov at momentum's
            # rate) first; the race shows how long each lingers near the saddle
            learning_rates={
                "sgd": 0.05,
                "momentum": 0.05,
                "nesterov": 0.05,
                "rmsprop": 0.05,
                "adagrad": 0.25,
                "adam": 0.05,
                "radam": 0.05,
            },
        ),
        Surface(
            "rastrigin",
            "Rastrigin  20 + Σ t² - 10cos(2πt)",
            _rastrigin,
            minima=((0.0, 0.0),),
            minimum_value=0.0,
            window=((-3.0, 3.0), (-3.0, 3.0)),
            start=(-1.6, 1.3),  # every gradient method settles in the nearest well, (-2, 1)
            # Nesterov at momentum's rate: all settle in the nearest well, as the start point's comment says
            learning_rates={
                "sgd": 2e-3,
                "momentum": 2e-3,
                "nesterov": 2e-3,
                "rmsprop": 0.03,
                "adagrad": 0.3,
                "adam": 0.1,
                "radam": 0.01,
            },
        ),
        Surface(
            "camel",
            "six-hump camel",
            _camel,
            # Literature values (Dixon & Szegő 1978; Jamil & Yang 2013, f_30; scipy's global benchmarks).
            minima=((0.08984201368301331, -0.7126564032704135), (-0.08984201368301331, 0.7126564032704135)),
            minimum_value=-1.031628453489877,
            window=((-2.0, 2.0), (-1.1, 1.1)),
            start=(1.9, 1.0),
            # Nesterov at momentum's rate: momentum coasts into a global minimum, Nesterov's damped look-ahead
            # stops in the side well near (1.70, -0.80) (f = -0.2155), the others in the one near (1.61, 0.57)
            learning_rates={
                "sgd": 0.01,
                "momentum": 0.01,
                "nesterov": 0.01,
                "rmsprop": 0.03,
                "adagrad": 0.3,
                "adam": 0.03,
                "radam": 0.03,
            },
        ),
    )
}


def quadratic_surface(kappa: float) -> Surface:
    """The bowl ``(x² + kappa y²)/2``: curvature 1 along x and ``kappa`` along y, so ``kappa`` is its
    condition number (the ratio of largest to smallest Hessian eigenvalue). Plain gradient descent is
    stable below lr = 2/kappa and needs about kappa steps per e-fold along x; heavy-ball momentum with
    beta = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))² needs about sqrt(kappa).

    Example:
        >>> from downslope.viz.testfunctions import quadratic_surface
        >>> s = quadratic_surface(100)
        >>> s.title, s.learning_rates["sgd"]
        ('bowl  (x² + 100y²)/2, condition number 100', 0.018)
    """
    if not (isinstance(kappa, (int, float)) and math.isfinite(kappa) and kappa >= 1):
        raise ArgumentError(f"quadratic_surface: kappa (the condition number) must be a number >= 1, got {kappa!r}")
    k = float(kappa)

    def formula(x: Tensor, y: Tensor) -> Tensor:
        return 0.5 * (x * x + k * y * y)

    # gradient descent and momentum race at 0.9 of the stability limit 2/L (L = kappa): the zig-zag shows.
    # Nesterov (beta = 0.9) is stable only below lr * L ~ 1.36: at lr * L = 1 its look-ahead cancels the
    # steep direction in two steps. RAdam's first few steps are not yet adaptive (momentum SGD at lr):
    # above gradient descent's rate they throw the point out of the window.
    rate = round(1.8 / k, 6)
    nesterov = round(1.0 / k, 6)
    return Surface(
        "quadratic",
        f"bowl  (x² + {k:g}y²)/2, condition number {k:g}",
        formula,
        minima=((0.0, 0.0),),
        minimum_value=0.0,
        window=((-6.0, 6.0), (-3.0, 3.0)),
        start=(-5.0, 2.0),
        learning_rates={
            "sgd": rate,
            "momentum": rate,
            "nesterov": nesterov,
            "rmsprop": 0.03,
            "adagrad": 1.0,
            "adam": 0.1,
            "radam": min(0.1, rate),
        },
    )


def get_surface(name: str | Surface) -> Surface:
    """The test function called ``name`` (a Surface passes through).

    Example:
        >>> from downslope.viz.testfunctions import get_surface
        >>> get_surface("beale").minima
        ((3.0, 0.5),)
    """
    if isinstance(name, Surface):
        return name
    key = str(name).strip().lower()
    if key not in SURFACES:
        raise ArgumentError(f"unknown test function {name!r}; expected one of: {', '.join(SURFACES)}")
    return SURFACES[key]
