"""The fitted-line plot: the red curve is the model on an even grid (eval mode, no graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.viz.regression import plot_regression, plot_regression_fit

pytest.importorskip("matplotlib")


def test_red_line_is_the_model_on_a_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 3, size=(40, 1)).astype(np.float32)
    y = 2 * x[:, 0] - 1 + rng.normal(0, 0.1, 40)
    _ = ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 1), nn.Dropout(0.5))
    model.train()
    fig = plot_regression(model, x, y, grid_points=50, save_path=tmp_path / "fit.png")
    assert (tmp_path / "fit.png").read_bytes().startswith(b"\x89PNG")
    assert model.training, "the model's mode is restored after plotting"
    ax = fig.axes[0]
    red = ax.lines[0]
    assert red.get_color() == "red"
    gx, gy = red.get_xdata(), red.get_ydata()
    assert len(gx) == 50 and gx[0] < x.min() and gx[-1] > x.max()
    # Dropout is off in eval mode, so the line is exactly w * x + b.
    w, b = model[0].weight.detach()[0, 0].item(), model[0].bias.detach()[0].item()
    np.testing.assert_allclose(gy, w * gx + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[x[:, 0], y])
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y" and ax.get_legend() is not None


def test_plain_callable_true_function_and_alias() -> None:
    x = np.linspace(0, 1, 10)
    fig = plot_regression_fit(lambda t: t * t, x, x**2, true_function=lambda g: g**2)
    model_line, true_line = fig.axes[0].lines
    np.testing.assert_allclose(model_line.get_ydata(), true_line.get_ydata(), rtol=1e-6, atol=1e-7)


def test_bad_shapes_are_explained() -> None:
    x = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match=r"one feature per sample.*\(10, 2\)"):
        plot_regression(lambda t: t, np.zeros((10, 2)), x)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        plot_regression(lambda t: t, x, x[:9])
    with pytest.raises(ValueError, match="one output per input"):
        plot_regression(lambda t: ds.cat([t, t], dim=1), x, x)


def test_the_least_squares_line_is_drawn_from_the_closed_form():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 50)
    y = 2.5 * x - 1 + 0.3 * rng.normal(size=50)
    fig = plot_regression(ds.nn.Linear(1, 1), x, y, least_squares=True)
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_label().startswith("least squares"))
    (slope, intercept), *_ = np.linalg.lstsq(np.column_stack([x, np.ones(50)]), y, rcond=None)
    np.testing.assert_allclose(line.get_ydata(), slope * line.get_xdata() + intercept, rtol=1e-12)
    assert f"slope {slope:.4g}, intercept {intercept:.4g}" in line.get_label()
    assert not any(ln.get_label().startswith("least") for ln in plot_regression(ds.nn.Linear(1, 1), x, y).axes[0].lines)


def test_a_note_says_why_the_model_is_not_at_the_least_squares_line():
    x = np.linspace(-1, 1, 20)
    note = "GD stopped at epoch 4 (early stopping); weights restored to epoch 2 (best validation loss)"
    fig = plot_regression(lambda t: 2 * t, x, 3 * x + 1, least_squares=True, note=note)
    assert [t.get_text().replace("\n", " ") for t in fig.axes[0].texts] == [note]
    assert not plot_regression(lambda t: 2 * t, x, 3 * x + 1).axes[0].texts


def test_the_legend_gives_the_models_own_slope_and_intercept_beside_the_least_squares_ones():
    rng = np.random.default_rng(1)
    x = rng.uniform(40, 250, 60)
    y = 1500 * x + 5e4 + 2e4 * rng.normal(size=60)
    model = nn.Linear(1, 1)
    with ds.no_grad():
        model.weight.fill_(1765.0)
        model.bias.fill_(55.0)
    labels = [t.get_text() for t in plot_regression(model, x, y, least_squares=True).axes[0].get_legend().get_texts()]
    w, b = float(model.weight.item()), float(model.bias.item())  # the model's own parameters
    assert labels[0] == f"model (slope {w:.4g}, intercept {b:.4g})"
    assert any(t.startswith("least squares (slope 1") for t in labels)
    # a curve has no slope: its entry stays plain
    curve = plot_regression(lambda t: t * t, x, y).axes[0].get_legend().get_texts()[0].get_text()
    assert curve == "model"


@pytest.mark.host_only  # a plot reads its values on the host
def test_the_note_covers_neither_the_plot_nor_its_tick_labels_and_stays_in_the_figure(tmp_path):
    # fit.png of a run with --patience: the note box sat on the lowest y tick label
    x = np.linspace(-3, 3, 130)
    note = (
        "sgd (batch size 64) stopped at epoch 28 (early stopping); weights restored to epoch 23 (best validation loss)"
    )
    fig = plot_regression(lambda t: 3 * t + 2, x, 3 * x + 2, note=note, save_path=tmp_path / "fit.png")
    ax = fig.axes[0]
    fig.canvas.draw()  # the layout the saved file has, at the figure's own dpi
    renderer = fig.canvas.get_renderer()
    (text,) = ax.texts
    assert text.get_text().replace("\n", " ") == note
    box = text.get_bbox_patch().get_window_extent(renderer)
    assert not box.overlaps(ax.get_window_extent(renderer))  # the data and the curve
    for label in [*ax.get_yticklabels(), *ax.get_xticklabels(), ax.xaxis.label]:
        if label.get_text():
            assert not box.overlaps(label.get_window_extent(renderer)), label.get_text()
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0, (box, fig.bbox)


def test_a_nan_model_is_said_not_drawn_with_a_warning() -> None:
    import warnings

    model = nn.Linear(1, 1)
    with ds.no_grad():
        model.weight.fill_(float("nan"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_regression(model, np.linspace(-1, 1, 20), np.linspace(-2, 2, 20), grid_points=30)
    assert [str(w.message) for w in caught if "plot_regression" in str(w.message)]
    assert all(issubclass(w.category, UserWarning) for w in caught), [str(w.message) for w in caught]
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "model: not finite on all 30 grid points, not drawn"
    red = [line for line in ax.lines if line.get_color() == "red"]
    assert len(red) == 1 and len(red[0].get_xdata()) == 0


def test_float64_model_and_nan_samples_in_the_legend() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (20, 1))
    y = 3 * x[:, 0] + 1
    y[4] = np.nan
    model = nn.Linear(1, 1).double()
    fig = plot_regression(model, x, y, grid_points=25)
    ax = fig.axes[0]
    gx, gy = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    w, b = model.weight.item(), model.bias.item()
    np.testing.assert_allclose(gy, w * gx + b, rtol=1e-12)
    assert [t.get_text() for t in ax.get_legend().get_texts()][1] == "data (19 points; 1 with NaN or inf left out)"
    with pytest.raises(TypeError, match="grid_points must be an integer"):
        plot_regression(model, x, y, grid_points=2.5)


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_constant_x_says_the_least_squares_slope_is_undetermined() -> None:
    y = np.arange(10.0)
    fig = plot_regression(nn.Linear(1, 1), np.ones(10), y, least_squares=True)
    said = _legend(fig)[-1]
    assert said.startswith("least squares: slope undetermined (every x is 1)") and "mean y 4.5" in said
    # no line is drawn for it (NumPy's minimum-norm answer was labelled "least squares" before): its one point
    lsq = [line for line in fig.axes[0].lines if line.get_label() == said]
    assert len(lsq) == 1 and lsq[0].get_xydata().tolist() == [[1.0, 4.5]]


def test_one_sample_gets_a_window_around_it_and_the_legend_says_1_point() -> None:
    fig = plot_regression(lambda t: 2 * t, np.array([0.74]), np.array([0.3]))
    assert _legend(fig)[1] == "data (1 point)"
    left, right = fig.axes[0].lines[0].get_xdata()[[0, -1]]
    assert (left, right) == pytest.approx((-0.26, 1.74))
    fig = plot_regression(lambda t: 2 * t, np.array([500.0]), np.array([0.3]))
    assert tuple(fig.axes[0].lines[0].get_xdata()[[0, -1]]) == pytest.approx((450.0, 550.0))


def test_a_torch_model_is_refused_with_what_would_work() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"model: expected a downslope model .*torch_model\(torch\.as_tensor"):
        plot_regression(torch.nn.Linear(1, 1), np.arange(3.0), np.arange(3.0))
    # the wrapper the message suggests works
    net = torch.nn.Linear(1, 1)
    fig = plot_regression(
        lambda x: net(torch.as_tensor(np.asarray(x))).detach().numpy(), np.arange(3.0), np.arange(3.0)
    )
    grid = fig.axes[0].lines[0].get_xdata()
    expected = net(torch.tensor(grid[:, None], dtype=torch.float32)).detach().numpy()[:, 0]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), expected, rtol=1e-6)


def test_draws_into_a_given_axes_beside_another_plot() -> None:
    from matplotlib.figure import Figure

    from downslope.viz import plot_loss_curves

    outer = Figure(figsize=(10, 4))
    left, right = outer.subplots(1, 2)
    assert plot_regression(lambda t: 2 * t, np.arange(4.0), 2 * np.arange(4.0), ax=left) is outer
    assert plot_loss_curves({"loss": [1.0, 0.5]}, ax=right) is outer
    assert left.get_title() == "Data and fitted curve" and right.get_title() == "Loss"
    assert tuple(plot_regression(lambda t: t, np.arange(3.0), np.arange(3.0), figsize=(4, 3)).get_size_inches()) == (
        4,
        3,
    )


@pytest.mark.parametrize(
    ("x", "y", "said"),
    [
        (np.zeros(0), np.zeros(0), r"plot_regression x: no rows \(shape \(0,\)\)"),
        ([], [], r"plot_regression x: no rows \(shape \(0,\)\)"),
        (np.zeros((0, 1)), np.zeros((0, 1)), r"plot_regression x: no rows \(shape \(0, 1\)\)"),
        ([1.0], np.zeros((0, 1)), r"plot_regression y: no rows \(shape \(0, 1\)\)"),
    ],
)
def test_no_rows_is_said_as_such_with_the_shape(x, y, said) -> None:
    # It used to say every one of the 0 samples had a NaN or infinite x or y.
    with pytest.raises(ValueError, match=said + "; nothing to draw"):
        plot_regression(nn.Linear(1, 1), x, y)
