"""The landscape race with what users pass: a start point that requires grad (or holds such Tensors),
an optimizer that needs a closure (L-BFGS, compared with torch's), and legends that stay in the figure."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.viz.boundary import class_probabilities
from downslope.viz.curves import best_epoch_index
from downslope.viz.landscape import optimizer_paths, plot_landscape

pytest.importorskip("matplotlib")


@pytest.mark.parametrize(
    "start",
    [
        lambda: ds.tensor([1.0, 1.0], requires_grad=True),
        lambda: (ds.tensor(1.0, requires_grad=True), 1.0),
        lambda: np.array([1.0, 1.0]),
    ],
)
def test_start_is_read_whether_or_not_it_requires_grad(start) -> None:
    paths = optimizer_paths("quadratic", {"gd": (optim.SGD, {"lr": 0.05})}, start=start(), steps=3)
    np.testing.assert_array_equal(paths["gd"].points[0], [1.0, 1.0])


def test_viz_inputs_that_require_grad_are_read_as_values() -> None:
    probs = class_probabilities(ds.tensor([0.0, 1.0], requires_grad=True))
    np.testing.assert_allclose(probs[:, 1], [0.5, 1 / (1 + np.exp(-1.0))])
    assert best_epoch_index(ds.tensor([3.0, 1.0, 2.0], requires_grad=True)) == 1


def test_lbfgs_races_like_a_torch_loop_with_a_closure() -> None:
    torch = pytest.importorskip("torch")
    # (a few iterations per step: L-BFGS on a curved valley in float32 amplifies rounding differences)
    spec = {"lbfgs": lambda ps: optim.LBFGS(ps, lr=0.5, max_iter=3)}
    paths = optimizer_paths("rosenbrock", spec, start=(-1.5, 2.0), steps=3)
    point = torch.tensor([-1.5, 2.0], requires_grad=True)
    opt = torch.optim.LBFGS([point], lr=0.5, max_iter=3)

    def closure():
        opt.zero_grad()
        x, y = point[0], point[1]
        loss = (1 - x) ** 2 + 100 * (y - x**2) ** 2
        loss.backward()
        return loss

    expected = [point.detach().numpy().copy()]
    losses = []
    for _ in range(3):
        losses.append(float(closure().detach()))
        opt.step(closure)
        expected.append(point.detach().numpy().copy())
    np.testing.assert_allclose(paths["lbfgs"].points, np.array(expected), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(paths["lbfgs"].losses[:3], losses, rtol=1e-4)
    assert paths["lbfgs"].losses[-1] < paths["lbfgs"].losses[0]

    quadratic = optimizer_paths("quadratic", {"lbfgs": lambda ps: optim.LBFGS(ps, lr=1)}, start=(1.0, 1.0), steps=2)
    assert quadratic["lbfgs"].losses[-1] < 1e-9  # the bowl's minimum in one step, as L-BFGS finds it


def test_long_legend_notes_stay_inside_the_figure() -> None:
    specs = {
        "a rather long optimizer name": (optim.SGD, {"lr": 0.11, "momentum": 0.5, "nesterov": True}),
        "lbfgs": lambda ps: optim.LBFGS(ps, lr=1),
    }
    paths = optimizer_paths("quadratic", specs, start=(5.9, 2.9), steps=30)
    assert paths["a rather long optimizer name"].diverged and paths["a rather long optimizer name"].left_at == 1
    fig = plot_landscape("quadratic", paths, grid_size=30)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        assert box.x0 >= figure_box.x0 - 1 and box.x1 <= figure_box.x1 + 1, (box, figure_box)
        assert box.y0 >= figure_box.y0 - 1 and box.y1 <= figure_box.y1 + 1, (box, figure_box)
    texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert any("diverged at step 12: f = 4.68e+09; left the" in t.replace("\n    ", " ") and "\n" in t for t in texts)
