"""The landscape figure's legend stays inside the figure, in the static plot and in every GIF frame,
whatever the optimizers' names and notes (a legend cut at the figure's edge read "at step 3" for
"at step 300")."""

from __future__ import annotations

import numpy as np
import pytest

from downslope import optim
from downslope.viz.landscape import (
    _animation_figure,
    _set_frame_texts,
    named_optimizers,
    optimizer_paths,
    plot_landscape,
)
from downslope.viz.testfunctions import get_surface

pytest.importorskip("matplotlib")


def _inside(fig, legend, where: str) -> None:
    box = legend.get_window_extent(fig.canvas.get_renderer())
    page = fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (
        f"{where}: legend {box.bounds} runs outside the figure {page.bounds}: "
        f"{[t.get_text() for t in legend.get_texts()]}"
    )


def _cases():
    s = get_surface("rosenbrock")
    # the reported race: sgd, momentum and adam over 300 steps on Rosenbrock
    yield "reported", s, optimizer_paths(s, named_optimizers(s, ["sgd", "momentum", "adam"]), steps=300)
    # many optimizers with long names, and one that diverges (the longest notes)
    long = {
        f"a_rather_long_optimizer_name_for_a_lesson_{i}": (optim.SGD, {"lr": lr, "momentum": 0.9})
        for i, lr in enumerate([1e-4, 3e-4, 1e-3, 2e-3, 0.05])
    }
    long["adam with a long name too"] = (optim.Adam, {"lr": 0.1})
    yield "long names", s, optimizer_paths(s, long, steps=300)


@pytest.mark.parametrize("case", ["reported", "long names"])
def test_every_gif_frame_keeps_the_legend_inside_the_figure(case: str) -> None:
    name, s, paths = next(c for c in _cases() if c[0] == case)
    fig, title, drawn, frames, frame_labels, _ = _animation_figure(s, paths, max_frames=60, dpi=100, grid_size=30)
    legend = fig.axes[1].get_legend()
    steps = max(len(p.points) for p in paths.values()) - 1
    for k in frames:
        _set_frame_texts(title, drawn, frame_labels, int(k), steps)
        _inside(fig, legend, f"{name}, frame at step {k}")
    # the last frame's texts are the whole label, not cut: "at step 300"
    assert any(f"at step {steps}" in t.get_text() for t in legend.get_texts())


@pytest.mark.parametrize("case", ["reported", "long names"])
def test_the_static_plot_keeps_the_legend_inside_the_figure(case: str) -> None:
    name, s, paths = next(c for c in _cases() if c[0] == case)
    for figsize in (None, (11.0, 6.0)):
        fig = plot_landscape(s, paths, grid_size=30, figsize=figsize)
        fig.canvas.draw()
        _inside(fig, fig.axes[1].get_legend(), f"{name}, figsize {figsize}")
        _inside(fig, fig.axes[0].get_legend(), f"{name}, map, figsize {figsize}")


def test_the_gif_frame_legend_shows_each_frames_own_step() -> None:
    s = get_surface("rosenbrock")
    paths = optimizer_paths(s, named_optimizers(s, ["sgd", "adam"]), steps=40)
    fig, title, drawn, frames, frame_labels, _ = _animation_figure(s, paths, max_frames=5, dpi=60, grid_size=20)
    steps = 40
    for k in frames:
        _set_frame_texts(title, drawn, frame_labels, int(k), steps)
        texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()[:2]]
        assert all(f"at step {k}" in t for t in texts), texts
        assert title.get_text() == f"step {k} of {steps}"
    assert np.array_equal(frames, np.linspace(0, steps, 5).round().astype(int))
