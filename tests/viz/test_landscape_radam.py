"""RAdam's own learning rate on each test surface: Adam's (0.1) throws it off Rosenbrock, in
torch.optim.RAdam as here, because its first five steps are momentum SGD at that rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from downslope import optim
from downslope.viz.landscape import named_optimizers, optimizer_paths
from downslope.viz.testfunctions import SURFACES, Surface, quadratic_surface

torch = pytest.importorskip("torch")

# the surfaces written again in torch, independently
TORCH_FORMULAS = {
    "quadratic": lambda x, y: 0.5 * (x * x + 20.0 * y * y),
    "rosenbrock": lambda x, y: (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2,
    "beale": lambda x, y: (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2,
    "himmelblau": lambda x, y: (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2,
    "saddle": lambda x, y: x * x - y * y,
    "rastrigin": lambda x, y: (
        20.0 + x * x - 10.0 * torch.cos(2 * math.pi * x) + y * y - 10.0 * torch.cos(2 * math.pi * y)
    ),
    "camel": lambda x, y: (4.0 - 2.1 * x * x + x**4 / 3.0) * x * x + x * y + (4.0 * y * y - 4.0) * y * y,
}


def _torch_radam(name: str, start, lr: float, steps: int = 300) -> np.ndarray:
    p = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.RAdam([p], lr=lr)
    points = [p.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        TORCH_FORMULAS[name](p[0], p[1]).backward()
        opt.step()
        points.append(p.detach().numpy().copy())
    return np.array(points)


def _inside(s: Surface, point) -> bool:
    (x0, x1), (y0, y1) = s.window
    return bool(np.isfinite(point).all() and x0 <= point[0] <= x1 and y0 <= point[1] <= y1)


def test_adams_rate_throws_radam_off_rosenbrock_in_torch_too():
    s = SURFACES["rosenbrock"]
    points = _torch_radam("rosenbrock", s.start, lr=0.1)
    assert not _inside(s, points[-1])  # what `downslope landscape --optimizers radam` drew before
    assert optimizer_paths(s, {"radam": (optim.RAdam, {"lr": 0.1})}, steps=300)["radam"].diverged


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_radams_own_rate_stays_in_the_window_and_makes_progress_in_torch(name: str):
    s = SURFACES[name]
    spec = named_optimizers(s, ["radam"])["radam"]
    assert spec[0] is optim.RAdam and spec[1] == {"lr": s.learning_rates["radam"]}
    points = _torch_radam(name, s.start, spec[1]["lr"])
    f = np.array([float(TORCH_FORMULAS[name](torch.tensor(px), torch.tensor(py))) for px, py in points])
    ours = optimizer_paths(s, {"radam": spec}, steps=300)["radam"]
    assert not ours.diverged and ours.stopped_at is None
    if name == "saddle":  # unbounded below: the point runs off downhill, as it should
        assert f[-1] < f[0] - 10
        return
    assert all(_inside(s, pt) for pt in points), "torch's RAdam left the window"
    gap0, gap = f[0] - s.minimum_value, f[-1] - s.minimum_value
    if name in ("rosenbrock", "beale"):  # RAdam is slow there in 300 steps, but well on its way
        assert gap < 0.1 * gap0
    else:  # converged: near the minimum, or at a local one on the multi-welled surfaces (as Adam is)
        p = torch.tensor(points[-1], dtype=torch.float64, requires_grad=True)
        TORCH_FORMULAS[name](p[0], p[1]).backward()
        assert gap < gap0 and (gap < 1e-3 * gap0 or float(p.grad.norm()) < 1e-2), (gap0, gap, p.grad)
    np.testing.assert_allclose(ours.losses[-1], f[-1], rtol=0.05, atol=1e-3)


def test_ours_follows_torchs_radam_on_rosenbrock_at_its_rate():
    s = SURFACES["rosenbrock"]
    lr = s.learning_rates["radam"]
    ref = _torch_radam("rosenbrock", s.start, lr, steps=40)
    ours = optimizer_paths(s, {"radam": (optim.RAdam, {"lr": lr})}, steps=40)["radam"]
    np.testing.assert_allclose(ours.points, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kappa", [1.0, 20.0, 100.0, 1000.0])
def test_a_quadratic_of_any_condition_gives_radam_a_rate_it_survives(kappa: float):
    s = quadratic_surface(kappa)
    rate = named_optimizers(s, ["radam"])["radam"][1]["lr"]
    assert rate <= 1.8 / kappa + 1e-12 and rate <= 0.1
    path = optimizer_paths(s, {"radam": (optim.RAdam, {"lr": rate})}, steps=300)["radam"]
    assert not path.diverged and path.left_at is None and path.losses[-1] < path.losses[0]


def test_a_surface_without_a_radam_rate_lends_adams():
    s = Surface("bowl", "bowl", TORCH_FORMULAS["quadratic"], ((0.0, 0.0),), 0.0, ((-1, 1), (-1, 1)), (0.5, 0.5),
                learning_rates={"adam": 0.02})  # fmt: skip
    assert named_optimizers(s, ["radam"])["radam"][1] == {"lr": 0.02}
