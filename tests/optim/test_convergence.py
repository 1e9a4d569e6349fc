"""Convergence: every optimizer reaches the minimum of a convex quadratic; momentum and the
Adam family reach the floor of Rosenbrock's valley (and its minimum) within the documented steps.

Closed-form answers: the quadratic 0.5 x^T A x - b^T x is minimised at A^-1 b; Rosenbrock's
(1 - x)^2 + 100 (y - x^2)^2 at (1, 1). Runs are float64 so that the tolerance measures the
optimizer, not rounding. Optimizers whose steps do not shrink with the gradient (sign-like or
normalised steps: Adam family, Lion, RMSprop) get a decaying lr schedule, as they would in practice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.optim import lr_scheduler as ls

_rng = np.random.default_rng(0)
_Q, _ = np.linalg.qr(_rng.normal(size=(6, 6)))
A = _Q @ np.diag(np.linspace(1.0, 10.0, 6)) @ _Q.T  # condition number 10
B = _rng.normal(size=6)
X_STAR = np.linalg.solve(A, B)


def _decay(gamma: float) -> Any:
    return lambda o: ls.ExponentialLR(o, gamma)


QUADRATIC = {  # name: (make optimizer, make scheduler or None, steps)
    "GD": (lambda p: optim.GD(p, lr=0.15), None, 200),
    "SGD": (lambda p: optim.SGD(p, lr=0.05, momentum=0.8), None, 200),
    "Adagrad": (lambda p: optim.Adagrad(p, lr=0.5), None, 500),
    "RMSprop": (lambda p: optim.RMSprop(p, lr=0.01), _decay(0.995), 1000),
    "RMSprop-centered": (lambda p: optim.RMSprop(p, lr=0.01, centered=True, momentum=0.5), _decay(0.995), 500),
    "Adadelta": (lambda p: optim.Adadelta(p, lr=2.0), lambda o: ls.CosineAnnealingLR(o, T_max=1000), 1000),
    "Adam": (lambda p: optim.Adam(p, lr=0.05), _decay(0.995), 500),
    "AdamW": (lambda p: optim.AdamW(p, lr=0.05, weight_decay=0.0), _decay(0.995), 500),
    "Adamax": (lambda p: optim.Adamax(p, lr=0.05), _decay(0.995), 500),
    "NAdam": (lambda p: optim.NAdam(p, lr=0.05), _decay(0.995), 500),
    "RAdam": (lambda p: optim.RAdam(p, lr=0.1), _decay(0.995), 500),
    "Lion": (lambda p: optim.Lion(p, lr=0.01), _decay(0.995), 2000),
}


def _minimise(make_opt: Any, make_sched: Any, steps: int, f: Any, x0: list[float]) -> np.ndarray:
    x = ds.tensor(x0, dtype="float64", requires_grad=True)
    opt = make_opt([x])
    sched = make_sched(opt) if make_sched else None
    for _ in range(steps):
        opt.zero_grad()
        f(x).backward()
        opt.step()
        if sched is not None:
            sched.step()
    return x.detach().numpy()


def _quadratic(x: ds.Tensor) -> ds.Tensor:
    return 0.5 * (x * (ds.tensor(A, dtype="float64") @ x)).sum() - (ds.tensor(B, dtype="float64") * x).sum()


@pytest.mark.parametrize("name", list(QUADRATIC))
def test_reaches_the_minimum_of_a_convex_quadratic(name: str) -> None:
    make_opt, make_sched, steps = QUADRATIC[name]
    x = _minimise(make_opt, make_sched, steps, _quadratic, [0.0] * 6)
    assert np.abs(x - X_STAR).max() < 1e-6


def test_lbfgs_reaches_the_minimum_of_a_convex_quadratic() -> None:
    x = ds.zeros(6, dtype="float64", requires_grad=True)
    opt = optim.LBFGS([x], line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure() -> ds.Tensor:
        opt.zero_grad()
        loss = _quadratic(x)
        loss.backward()
        return loss

    opt.step(closure)
    assert np.abs(x.detach().numpy() - X_STAR).max() < 1e-6


def _rosenbrock(p: ds.Tensor) -> ds.Tensor:
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


ROSENBROCK = {  # from (-1.5, 2), around the bend of the valley: steps to reach f < 1e-3
    "SGD-momentum": (lambda p: optim.SGD(p, lr=1e-3, momentum=0.9), None, 1000),
    "SGD-nesterov": (lambda p: optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True), None, 1000),
    "RMSprop-momentum": (lambda p: optim.RMSprop(p, lr=1e-3, momentum=0.9), None, 1000),
    "Adam": (lambda p: optim.Adam(p, lr=0.02), None, 2000),
    "AdamW": (lambda p: optim.AdamW(p, lr=0.02, weight_decay=0.0), None, 2000),
    "NAdam": (lambda p: optim.NAdam(p, lr=0.02), None, 2000),
    "Adamax": (lambda p: optim.Adamax(p, lr=0.05), None, 3000),
    # RAdam's first steps are un-adapted momentum SGD: the steep walls need clipping to survive them
    "RAdam": (lambda p: optim.RAdam(p, lr=0.02, clip_norm=10.0), None, 2000),
    "Lion": (lambda p: optim.Lion(p, lr=1e-2), lambda o: ls.CosineAnnealingLR(o, T_max=2000), 2000),
}


@pytest.mark.parametrize("name", list(ROSENBROCK))
def test_reaches_rosenbrock_valley_floor(name: str) -> None:
    make_opt, make_sched, steps = ROSENBROCK[name]
    x, y = _minimise(make_opt, make_sched, steps, _rosenbrock, [-1.5, 2.0])
    value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    assert value < 1e-3, f"f = {value:.3g} at ({x:.4f}, {y:.4f}) after {steps} steps"
    assert abs(y - x * x) < 1e-2  # on the valley floor
    assert np.hypot(x - 1, y - 1) < 0.1  # and near the minimum


def test_lbfgs_solves_rosenbrock() -> None:
    p = ds.tensor([-1.5, 2.0], dtype="float64", requires_grad=True)
    opt = optim.LBFGS([p], line_search_fn="strong_wolfe", max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure() -> ds.Tensor:
        opt.zero_grad()
        loss = _rosenbrock(p)
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(p.detach().numpy(), [1.0, 1.0], atol=1e-6)


def test_too_large_a_learning_rate_diverges() -> None:
    """GD on the quadratic is stable only for lr < 2 / lambda_max = 0.2 (what a learner should see)."""
    stable = _minimise(lambda p: optim.GD(p, lr=0.19), None, 300, _quadratic, [0.0] * 6)
    unstable = _minimise(lambda p: optim.GD(p, lr=0.21), None, 300, _quadratic, [0.0] * 6)
    assert np.abs(stable - X_STAR).max() < 1e-3
    assert np.abs(unstable - X_STAR).max() > 1e3
