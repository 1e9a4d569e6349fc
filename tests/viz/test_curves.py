"""Loss/metric curves with the best epoch, learning-rate and gradient-norm curves, and the
two-panel comparison of runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from downslope.viz.curves import (
    TRAIN_LABEL,
    VAL_LABEL,
    best_epoch_index,
    history_to_dict,
    plot_compare,
    plot_gradient_norms,
    plot_learning_rate,
    plot_loss_curves,
)

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
LOSS = [2.0, 1.0, 0.6, 0.5, 0.45, 0.4]
VAL = [2.1, 1.2, 0.8, 0.75, 0.9, 1.1]  # best validation loss at epoch 4


def _real_history():
    from downslope.train.history import History

    h = History()
    for i, (lo, va) in enumerate(zip(LOSS, VAL)):
        h.append(i, {"loss": lo, "val_loss": va, "accuracy": 1 - lo / 4, "val_accuracy": 1 - va / 4, "lr": 0.1,
                     "epoch_time": 0.5, "time": 0.5 * (i + 1)})  # fmt: skip
    return h


def _vline_x(ax) -> float:
    """x of the (single) vertical best-epoch line of an axes."""
    verticals = [
        line for line in ax.lines if len(set(np.atleast_1d(line.get_xdata()))) == 1 and line.get_linestyle() == ":"
    ]
    assert len(verticals) == 1
    return float(np.atleast_1d(verticals[0].get_xdata())[0])


def test_best_epoch_marked_in_every_panel(tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    fig = plot_loss_curves(_real_history(), save_path=out)
    assert out.read_bytes().startswith(PNG)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy"]  # time, lr, epoch are not metrics
    for ax in fig.axes:
        assert _vline_x(ax) == 4.0
        assert ax.get_xlabel() == "epoch"
    loss_ax = fig.axes[0]
    # The monitored value gets a black dot at (best epoch, best value).
    dots = [line for line in loss_ax.lines if line.get_marker() == "o" and line.get_color() == "black"]
    assert [tuple(d.get_xydata()[0]) for d in dots] == [(4.0, 0.75)]
    labels = [t.get_text().replace("\n", " ") for t in loss_ax.get_legend().get_texts()]  # wrapped to the panel
    assert labels == [TRAIN_LABEL, VAL_LABEL, "best epoch 4 (val loss 0.75)"]
    assert (
        TRAIN_LABEL
        == "training (mean over the epoch's rows (batch losses weighted by batch size), each before its update)"
    )
    train_line = loss_ax.lines[0]
    np.testing.assert_allclose(train_line.get_xydata(), np.c_[np.arange(1, 7), LOSS])


def test_monitor_modes_and_log_scale() -> None:
    hist = {"loss": LOSS, "val_loss": VAL, "val_accuracy": [0.1, 0.5, 0.9, 0.3, 0.2, 0.2]}
    fig = plot_loss_curves(hist, monitor="val_accuracy", log_scale=True)
    assert _vline_x(fig.axes[0]) == 3.0  # accuracy: higher is better
    assert fig.axes[0].get_yscale() == "log"
    fig = plot_loss_curves(hist, monitor="val_accuracy", mode="min", metrics=[])
    assert len(fig.axes) == 1 and _vline_x(fig.axes[0]) == 1.0  # smallest accuracy, as asked
    fig = plot_loss_curves({"loss": LOSS})
    assert _vline_x(fig.axes[0]) == 6.0  # no validation: the training loss decides


def test_auto_mode_reads_the_direction_of_a_historys_metrics() -> None:
    from downslope.train import Metric
    from downslope.train.history import History

    def errors(preds, target):
        return 0.0

    values = [0.1, 0.5, 0.9, 0.3, 0.2, 0.2]
    for metric, best in ((Metric(errors, "accuracy"), 1.0), (Metric(errors, "accuracy", greater_is_better=True), 3.0)):
        h = History(metrics=[metric])  # a metric named like an accuracy that says smaller is better, then larger
        for i, v in enumerate(values):
            h.append(i, {"loss": 1.0, "val_accuracy": v})
        assert _vline_x(plot_loss_curves(h, monitor="val_accuracy", metrics=[]).axes[0]) == best


def test_history_inputs() -> None:
    class KerasLike:
        history = {"loss": [1, 2]}

    assert history_to_dict(KerasLike()) == {"loss": [1.0, 2.0]}
    d = history_to_dict({"loss": [1.0, None], "note": "text"})
    assert list(d) == ["loss"] and np.isnan(d["loss"][1])
    assert history_to_dict(_real_history())["epoch"] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(TypeError, match="History"):
        history_to_dict([1, 2, 3])
    with pytest.raises(ValueError, match="no 'loss'"):
        plot_loss_curves({"accuracy": [1.0]})
    with pytest.raises(ValueError, match="metric 'f1'"):
        plot_loss_curves({"loss": LOSS}, metrics=["f1"])
    with pytest.raises(ValueError, match="mode"):
        plot_loss_curves({"loss": LOSS}, mode="best")


def test_best_epoch_index_skips_non_finite() -> None:
    assert best_epoch_index([np.nan, 3.0, 1.0, np.inf]) == 2
    assert best_epoch_index([1.0, 3.0, 2.0], "max") == 1
    assert best_epoch_index([np.nan]) is None


def test_learning_rate_curve(tmp_path: Path) -> None:
    rates = [0.1] * 3 + [0.01] * 3 + [0.001] * 3
    fig = plot_learning_rate({"lr": rates, "loss": [1.0] * 9}, save_path=tmp_path / "lr.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "learning rate (log scale)"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rates)
    assert plot_learning_rate([0.1, 0.05]).axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="no 'lr'"):
        plot_learning_rate({"loss": [1.0]})


def test_gradient_norms() -> None:
    norms = {"0.weight": [1.0, 0.5, 0.25], "0.bias": [0.1, 0.05, 0.02]}
    ax = plot_gradient_norms(norms).axes[0]
    assert [line.get_label() for line in ax.lines] == ["0.weight", "0.bias"]
    np.testing.assert_allclose(ax.lines[1].get_xydata(), [[1, 0.1], [2, 0.05], [3, 0.02]])
    assert ax.get_yscale() == "log"
    many = {f"layer{i}": [1.0, 0.5] for i in range(12)}
    assert len(plot_gradient_norms(many).axes[0].lines) == 12
    with pytest.raises(ValueError, match="non-empty"):
        plot_gradient_norms({})


def test_compare_against_epoch_and_wall_time(tmp_path: Path) -> None:
    runs = {"sgd": _real_history(), "adam": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "epoch_time": [2.0, 3.0]}}
    fig = plot_compare(runs, save_path=tmp_path / "cmp.png")
    (train_epoch, train_time), (val_epoch, val_time) = np.asarray(fig.axes).reshape(2, 2)
    assert train_epoch.get_xlabel() == "epoch" and train_time.get_xlabel() == "wall time (s)"
    # a hand-made dict among the runs: nothing says how its numbers were measured, so the label names the split
    # and the metric only (test_compare_labels_each_axis_with_its_split_and_metric: all runs from fit)
    assert train_epoch.get_ylabel() == "training loss (log scale)"
    assert val_epoch.get_ylabel().startswith("validation loss") and "(log scale)" in val_epoch.get_ylabel()
    assert all(len(ax.lines) == 2 for ax in fig.axes)  # one line per run in each panel
    # sgd: cumulative 'time' used as it is; adam: per-epoch times summed.
    np.testing.assert_allclose(train_time.lines[0].get_xdata(), [0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    np.testing.assert_allclose(train_time.lines[1].get_xdata(), [2.0, 5.0])
    np.testing.assert_allclose(val_epoch.lines[1].get_ydata(), [1.1, 0.7])
    assert val_epoch.lines[1].get_linestyle() == "--" and train_epoch.lines[1].get_linestyle() == "-"
    assert train_time.lines[1].get_color() == train_epoch.lines[1].get_color() != train_epoch.lines[0].get_color()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["sgd", "adam"]
    fig = plot_compare({"a": {"loss": [1.0, 0.5]}}, times={"a": [1.0, 2.0]})
    assert len(fig.axes) == 2  # no validation loss: the training row only
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata(), [1.0, 2.0])
    # a run without time: no panels against time (see test_compare_without_wall_time_leaves_its_panels_out)
    assert [ax.get_xlabel() for ax in plot_compare({"a": {"loss": [1.0]}}).axes] == ["epoch"]
    with pytest.raises(ValueError, match="1 epochs of loss but 2 times"):
        plot_compare({"a": {"loss": [1.0]}}, times={"a": [1.0, 2.0]})


def test_compare_target_is_drawn_on_the_validation_curves_only_and_labelled_so() -> None:
    runs = {
        "a": {"loss": [1.0, 0.5, 0.4], "val_loss": [0.9, 0.6, 0.5]},
        "b": {"loss": [1.0, 0.8, 0.7], "val_loss": [1.0, 0.8, 0.6]},
    }
    times = {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}
    fig = plot_compare(runs, times=times, target=0.6)
    train_row, val_row = np.asarray(fig.axes).reshape(2, 2)
    for ax in train_row:
        assert not any(tuple(line.get_ydata()) == (0.6, 0.6) for line in ax.lines)
    for ax in val_row:
        assert sum(tuple(line.get_ydata()) == (0.6, 0.6) for line in ax.lines) == 1
    assert [t.get_text() for t in val_row[0].get_legend().get_texts()] == ["val loss target 0.6 (dots: reached)"]
    dots = [(line.get_xdata()[0], line.get_ydata()[0]) for line in val_row[0].lines if line.get_marker() == "o"]
    assert dots == [(2.0, 0.6), (3.0, 0.6)]  # each run's first epoch at or below the target
    # no validation loss anywhere: the target is the training loss's, and says so
    fig = plot_compare({"a": {"loss": [1.0, 0.5]}}, times={"a": [1.0, 2.0]}, target=0.7)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["loss target 0.7 (dots: reached)"]


def test_compare_against_updates_with_updates_per_epoch_in_the_legend() -> None:
    runs = {
        "sgd batch=full": {"loss": [1.0, 0.9, 0.8], "time": [0.1, 0.2, 0.3]},
        "sgd batch=1": {"loss": [0.5, 0.3, 0.2], "time": [1.0, 2.0, 3.0]},
    }
    labels = {"sgd batch=full": "sgd batch=full (1 update/epoch)", "sgd batch=1": "sgd batch=1 (130 updates/epoch)"}
    fig = plot_compare(runs, updates_per_epoch={"sgd batch=full": 1, "sgd batch=1": 130}, labels=labels)
    ax_epoch, ax_updates, ax_time = fig.axes
    assert ax_updates.get_xlabel() == "updates (log scale)" and ax_updates.get_xscale() == "log"
    np.testing.assert_allclose(ax_updates.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax_updates.lines[1].get_xdata(), [130, 260, 390])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(labels.values())
    with pytest.raises(ValueError, match="no entry for run"):
        plot_compare(runs, updates_per_epoch={"sgd batch=1": 130})


def test_loss_axis_says_when_it_is_logarithmic() -> None:
    assert plot_loss_curves({"loss": [100.0, 10.0, 1.0]}).axes[0].get_ylabel() == "loss (log scale)"
    assert plot_loss_curves({"loss": [2.0, 1.0]}).axes[0].get_ylabel() == "loss"


def test_log_scale_auto_and_metric_titles() -> None:
    fig = plot_loss_curves({"loss": [100.0, 10.0, 1.0], "val_mae": [3.0, 2.0, 1.0], "r2": [0.1, 0.5, 0.9]})
    assert fig.axes[0].get_yscale() == "log"  # spans a factor of 100
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "MAE", "R²"]
    assert plot_loss_curves({"loss": [1.0, 0.5, 0.1]}).axes[0].get_yscale() == "linear"
    assert plot_loss_curves({"loss": [1.0, 0.5]}, log_scale=True).axes[0].get_yscale() == "log"


def test_gradient_norms_from_real_diagnostics_callback() -> None:
    import downslope as ds
    from downslope import nn, optim
    from downslope.train.diagnostics import GradientDiagnostics

    _ = ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    diag = GradientDiagnostics(warn=False)
    x = np.random.default_rng(0).normal(size=(16, 2))
    ds.fit(
        model,
        nn.MSELoss(),
        optim.SGD(model.parameters(), lr=0.05),
        (x, x[:, :1] * 2),
        epochs=3,
        callbacks=[diag],
        verbose=0,
    )
    fig = plot_gradient_norms(diag)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "mini-batch gradient L2 norm (log scale)"
    assert "(each epoch: mean over its batches)" in ax.get_title()
    diag.every_n_batches = 10
    assert "sampled every 10 batches" in plot_gradient_norms(diag).axes[0].get_title()
    assert sorted(line.get_label() for line in ax.lines) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    line = next(li for li in ax.lines if li.get_label() == "2.weight")
    np.testing.assert_allclose(line.get_ydata(), [r["grad_norm"]["2.weight"] for r in diag.history])
    ratio_ax = plot_gradient_norms(diag.history, key="update_ratio").axes[0]
    assert ratio_ax.get_ylabel() == "update-to-weight ratio (log scale)"


def test_per_layer_series_fills_gaps() -> None:
    from downslope.viz.curves import per_layer_series

    out = per_layer_series([{"grad_norm": {"a": 1.0}}, {"grad_norm": {"a": 2.0, "b": 3.0}}, {"grad_norm": {"b": 4.0}}])
    assert out["a"][:2] == [1.0, 2.0] and np.isnan(out["a"][2])
    assert np.isnan(out["b"][0]) and out["b"][1:] == [3.0, 4.0]
    with pytest.raises(TypeError, match="per-epoch dicts"):
        per_layer_series(5)


def test_a_diverged_run_keeps_its_epochs_on_the_axis_and_marks_the_non_finite_ones() -> None:
    inf, nan = float("inf"), float("nan")
    fig = plot_loss_curves({"loss": [1, 5, 1e3, 1e9, inf, nan], "val_loss": [1.1, 6, 2e3, inf, nan, nan]})
    ax = fig.axes[0]
    left, right = ax.get_xlim()
    assert left < 1 and right > 6  # the last two epochs are not cut off
    marks = [line for line in ax.lines if line.get_marker() == "x"]
    assert sorted(x for line in marks for x in line.get_xdata()) == [4, 5, 5, 6, 6]
    assert [t.get_text() for t in ax.get_legend().get_texts()].count("not finite (diverged)") == 1


def test_a_one_epoch_history_is_drawn_as_points_on_whole_epoch_ticks() -> None:
    fig = plot_loss_curves({"loss": [0.7], "val_loss": [0.8]})
    ax = fig.axes[0]
    training = [line for line in ax.lines if line.get_label() == "training"][0]  # a dict: no fit's meaning
    assert training.get_marker() == "o"
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1])


def _display_points_inside(ax, bbox) -> int:
    """How many vertices of the axes' curves lie inside ``bbox`` (display coordinates)."""
    inside = 0
    for line in ax.lines:
        xy = np.asarray(line.get_xydata(), dtype=np.float64)
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) < 2:  # markers and the vertical best-epoch line's ends: not curves
            continue
        pts = ax.transData.transform(xy)
        inside += int(
            ((pts[:, 0] > bbox.x0) & (pts[:, 0] < bbox.x1) & (pts[:, 1] > bbox.y0) & (pts[:, 1] < bbox.y1)).sum()
        )
    return inside


def test_no_legend_of_the_curves_figure_covers_a_curve():
    # the run report's curves.png: loss, MAE and the gradient norm, whose long legend sat on its curve
    history = {
        "loss": [0.727, 0.655, 0.567, 0.5, 0.452], "val_loss": [0.79, 0.68, 0.595, 0.535, 0.4607],
        "mae": [3.77, 3.58, 3.33, 3.12, 2.97], "val_mae": [4.02, 3.73, 3.5, 3.33, 3.1],
        "grad_norm": [1.8, 1.455, 1.26, 1.445, 1.53],
    }  # fmt: skip
    titles = {"grad_norm": "Mini-batch gradient norm\n(batch size 64, sampled every 10 batches)"}
    fig = plot_loss_curves(history, panel_titles=titles)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert _display_points_inside(ax, legend) == 0, ax.get_title()
        assert not legend.overlaps(ax.xaxis.label.get_window_extent(renderer)), ax.get_title()


def _guarded_runs():
    import downslope as ds
    from downslope import nn, optim
    from downslope.train import DivergenceGuard

    ds.manual_seed(0)
    x = ds.rand(100, 1) * 6 - 3
    y = 3 * x + 2 + 0.5 * ds.randn(100, 1)
    runs = {}
    for lr in (0.1, 0.5, 5.0):
        ds.manual_seed(0)
        model = nn.Linear(1, 1)
        runs[f"lr={lr}"] = ds.fit(
            model, nn.MSELoss(), optim.GD(model.parameters(), lr=lr), (x, y), validation_split=0.2, epochs=30,
            batch_size="full", callbacks=[DivergenceGuard()], verbose=0,
        )  # fmt: skip
    return runs


def test_compare_marks_the_runs_that_diverged_in_the_legend_and_at_their_last_finite_point():
    runs = _guarded_runs()
    assert [h.diverged for h in runs.values()] == [False, True, True]  # what compare's table says
    nan_run = {"loss": [3.0, 2.0, float("nan")], "val_loss": [3.1, 2.2, float("nan")], "time": [0.1, 0.2, 0.3]}
    fig = plot_compare({**runs, "nan": nan_run})
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "lr=0.1" in texts
    for name in ("lr=0.5", "lr=5.0"):
        assert f"{name} (diverged at epoch {len(runs[name]['loss'])})" in texts
    assert "nan (diverged at epoch 3)" in texts
    assert "last finite point of a diverged run" in texts
    ax_epoch, ax_val = fig.axes[0], fig.axes[2]  # training and validation loss against epoch
    for ax, key in ((ax_epoch, "loss"), (ax_val, "val_loss")):
        crosses = sorted(tuple(ln.get_xydata()[0]) for ln in ax.lines if ln.get_marker() == "x" and len(ln.get_xdata()))
        expected = [(float(len(runs[n][key])), float(runs[n][key][-1])) for n in ("lr=0.5", "lr=5.0")] + [
            (2.0, 2.0 if key == "loss" else 2.2)
        ]
        np.testing.assert_allclose(crosses, sorted(expected))


def test_compare_y_labels_stay_within_their_panels_under_the_title():
    fig = plot_compare(_guarded_runs(), updates_per_epoch={"lr=0.1": 1, "lr=0.5": 1, "lr=5.0": 1})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig.get_suptitle() and fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        label = ax.yaxis.label.get_window_extent(renderer)
        panel = ax.get_window_extent(renderer)
        assert label.y0 >= panel.y0 - 1 and label.y1 <= panel.y1 + 1, ax.get_title()
        assert not label.overlaps(title), ax.get_title()


def _fitted_history(batch_size):
    import downslope as ds
    from downslope import nn, optim
    from downslope.train import GradientDiagnostics

    ds.manual_seed(0)
    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    model = nn.Linear(1, 1)
    return ds.fit(
        model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, 2 * x + 1), validation_split=0.25, epochs=3,
        batch_size=batch_size, metrics=["mae"], callbacks=[GradientDiagnostics()], verbose=0,
    )  # fmt: skip


@pytest.mark.host_only  # a plot reads its values on the host
def test_the_gradient_norm_legend_says_full_batch_on_a_full_batch_run():
    full = plot_loss_curves(_fitted_history("full")).axes[-1]
    mini = plot_loss_curves(_fitted_history(8)).axes[-1]
    legend_of = lambda ax: [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()][0]  # noqa: E731
    assert legend_of(full) == "L2 norm of the gradient of the whole training split (full batch: one per epoch)"
    assert legend_of(mini) == "L2 norm of the whole mini-batch gradient (mean over the batches measured)"
    assert "mini-batch" not in legend_of(full)


@pytest.mark.host_only  # a plot reads its values on the host
@pytest.mark.parametrize("metrics", [["accuracy", "grad_norm"], ["mae", "r2", "grad_norm"], []])
def test_the_legends_below_the_panels_stay_apart_and_inside_the_figure(metrics, tmp_path):
    # the run report's curves.png: three legends wider than their panels ran into each other, the last cut
    history = {"loss": [0.72, 0.6, 0.57], "val_loss": [0.66, 0.6, 0.54]}
    for name in metrics:
        history[name] = [0.5, 0.7, 0.8]
        if name != "grad_norm":
            history[f"val_{name}"] = [0.6, 0.7, 0.9]
    titles = {"grad_norm": "Gradient norm\n(full batch: the whole training split's gradient)"}
    fig = plot_loss_curves(history, panel_titles=titles, save_path=tmp_path / "curves.png")
    fig.canvas.draw()  # the layout the saved file has, at the figure's own dpi
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes]
    for box in boxes:
        assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, (box, fig.bbox)
        assert fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1, (box, fig.bbox)
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 < right.x0, (left, right)
    for ax, box in zip(fig.axes, boxes):  # every legend line fits its own panel's share of the figure
        share = fig.bbox.width / len(fig.axes)
        assert box.width <= share, (ax.get_title(), box.width, share)


def test_epochs_not_validated_are_left_out_not_called_diverged() -> None:
    """fit(validation_freq=2) logs None on the epochs it does not validate: those are not measured, so
    the validation series is drawn through its measured epochs with markers and nothing is "diverged";
    a measured NaN still is."""
    import downslope as ds
    from downslope import nn, optim

    x = np.random.default_rng(0).normal(size=(80, 2)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    model = nn.Linear(2, 1)
    history = ds.fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (x, y), validation_split=0.25,
        validation_freq=2, epochs=6, batch_size=16, verbose=0,
    )  # fmt: skip
    assert history["val_loss"][0] is None and history["val_loss"][1] is not None
    fig = plot_loss_curves(history)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert not any("diverged" in text for text in labels), labels
    (val,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    np.testing.assert_array_equal(val.get_xdata(), [2, 4, 6])
    np.testing.assert_allclose(val.get_ydata(), [history["val_loss"][k] for k in (1, 3, 5)])
    assert val.get_marker() == "o" and val.get_label() == VAL_LABEL + " (measured on 3 of 6 epochs)"
    compare = plot_compare({"every 2nd epoch": history})
    assert [t.get_text() for t in compare.legends[0].get_texts()] == ["every 2nd epoch"]
    val_panel = compare.axes[2]  # the validation row, against epoch
    np.testing.assert_array_equal(val_panel.lines[0].get_xdata(), [2, 4, 6])
    # a NaN that was measured is a divergence, in both
    fig = plot_loss_curves({"loss": [1.0, 0.5, 0.4], "val_loss": [None, float("nan"), None]})
    assert "not finite (diverged)" in [line.get_label() for line in fig.axes[0].lines]
    compare = plot_compare({"r": {"loss": [1.0, 0.5, 0.4], "val_loss": [None, float("nan"), None]}})
    assert compare.legends[0].get_texts()[0].get_text() == "r (diverged at epoch 2)"


def test_log_axes_draw_zeros_at_a_floor_and_go_linear_for_negative_values() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_loss_curves({"loss": [1.0, 0.1, 0.0, 0.0]}, log_scale=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.1, 0.01, 0.01])  # a decade below 0.1
    assert "0 drawn at the floor 1e-02 (a log axis cannot show 0)" in [line.get_label() for line in ax.lines]
    assert any("0 drawn at the floor" in t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts())

    with pytest.warns(UserWarning, match="2 of the values are negative .* the axis is linear"):
        fig = plot_loss_curves({"loss": [1.0, -0.5, -2.0]}, log_scale=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and "(log scale)" not in ax.get_ylabel()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, -0.5, -2.0])

    norms = {"0.weight": [1.0, 0.1, 0.0, 0.0], "2.weight": [0.5, 0.2, 0.1, 0.05]}
    fig = plot_gradient_norms(norms)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    dead = next(line for line in ax.lines if line.get_label() == "0.weight")
    np.testing.assert_allclose(dead.get_ydata(), [1.0, 0.1, 0.001, 0.001])  # a decade below 0.05's decade
    assert any("0 drawn at the floor 1e-03" in t.get_text() for t in ax.get_legend().get_texts())

    with pytest.warns(UserWarning, match="negative"):
        fig = plot_compare({"nll": {"loss": [1.0, -0.5, -2.0]}})
    assert fig.axes[0].get_yscale() == "linear"


def test_compare_without_wall_time_leaves_its_panels_out() -> None:
    runs = {"sgd": {"loss": [1.0, 0.5, 0.3]}, "adam": {"loss": [1.0, 0.3, 0.1]}}
    fig = plot_compare(runs, updates_per_epoch={"sgd": 2, "adam": 2})
    assert [ax.get_title() for ax in fig.axes] == ["Training loss against epoch", "Training loss against updates"]
    assert "no wall time recorded for 'sgd', 'adam': the panels against time are left out" in fig.get_suptitle()
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), [1.0, 0.3, 0.1])
    np.testing.assert_allclose(fig.axes[1].lines[1].get_xdata(), [2, 4, 6])


def _best_label(fig) -> str:
    return next(t.get_text() for t in fig.axes[0].get_legend().get_texts() if t.get_text().startswith("best"))


def test_the_best_epoch_marked_is_the_one_early_stopping_restored() -> None:
    import downslope as ds
    from downslope import nn, optim
    from downslope.train import EarlyStopping

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 2)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1] + 0.4 * rng.normal(size=240)) > 0).astype(np.int64)
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    stopper = EarlyStopping(monitor="val_accuracy", patience=6, restore_best_weights=True)
    history = ds.fit(
        model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.02), (x, y), epochs=60, verbose=0,
        validation_split=0.3, metrics=["accuracy"], callbacks=[stopper],
    )  # fmt: skip
    assert history.best("val_loss")[0] != stopper.best_epoch + 1  # the two rules pick different epochs here
    fig = plot_loss_curves(history)
    kept = stopper.best_epoch + 1
    for ax in fig.axes:
        assert _vline_x(ax) == kept
    label = _best_label(fig).replace("\n", " ")
    assert label.startswith(f"best epoch {kept} (val accuracy ") and "highest, EarlyStopping's monitor" in label


def test_auto_mode_reads_whole_metric_names() -> None:
    h = {"loss": [0.7, 0.5, 0.4, 0.45], "val_loss": [0.7, 0.5, 0.45, 0.5], "val_brier_score": [0.25, 0.15, 0.10, 0.12]}
    assert _vline_x(plot_loss_curves(h, monitor="val_brier_score").axes[0]) == 3.0  # lowest: 'score' says nothing
    h["val_f1_macro"] = [0.5, 0.8, 0.7, 0.6]
    fig = plot_loss_curves(h, monitor="val_f1_macro", metrics=[])
    assert _vline_x(fig.axes[0]) == 2.0 and "the highest" in _best_label(fig)
    assert _vline_x(plot_loss_curves(h, monitor="val_f1_macro", mode="min", metrics=[]).axes[0]) == 1.0


def test_best_epoch_index_of_a_long_list_is_numpys_argmin_and_argmax() -> None:
    values = np.random.default_rng(0).random(100_000)
    values[[5, 17]] = np.nan
    listed = values.tolist()
    assert best_epoch_index(listed) == int(np.nanargmin(values))
    assert best_epoch_index(listed, "max") == int(np.nanargmax(values))
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        best_epoch_index(listed, "auto")


def test_every_curve_plot_draws_into_given_axes_and_takes_a_size() -> None:
    from matplotlib.figure import Figure

    outer = Figure()
    a1, a2, a3, a4 = outer.subplots(1, 4)
    assert plot_loss_curves({"loss": LOSS, "val_loss": VAL}, ax=a1) is outer
    assert a1.get_title() == "Loss" and len(a1.lines) >= 2
    assert plot_learning_rate([0.1, 0.1, 0.01], ax=a2) is outer and a2.get_ylabel().startswith("learning rate")
    assert plot_gradient_norms({"w": [1.0, 0.5]}, ax=a3) is outer and len(a3.lines) == 1
    two = Figure().subplots(1, 2)
    fig = plot_loss_curves({"loss": LOSS, "accuracy": [0.1] * 6}, ax=two)
    assert [a.get_title() for a in fig.axes] == ["Loss", "Accuracy"]
    with pytest.raises(TypeError, match=r"ax: expected 2 Axes, one per panel \(loss, accuracy\)"):
        plot_loss_curves({"loss": LOSS, "accuracy": [0.1] * 6}, ax=a4)
    grid = Figure().subplots(2, 1)
    fig = plot_compare({"a": {"loss": LOSS, "val_loss": VAL}, "b": {"loss": VAL, "val_loss": LOSS}}, ax=grid)
    assert fig is grid[0].figure and grid[1].get_title() == "Validation loss against epoch"
    for plot, arg in ((plot_loss_curves, {"loss": LOSS}), (plot_learning_rate, [0.1, 0.01]),
                      (plot_gradient_norms, {"w": [1.0]}), (plot_compare, {"a": {"loss": LOSS}})):  # fmt: skip
        assert tuple(plot(arg, figsize=(3.5, 2.5)).get_size_inches()) == (3.5, 2.5), plot.__name__


def test_runs_and_layers_differ_by_more_than_colour() -> None:
    fig = plot_compare({name: {"loss": LOSS} for name in "abcd"}, title=None)
    markers = [line.get_marker() for line in fig.axes[0].lines if len(line.get_xdata()) > 1]
    assert len(set(markers)) == 4
    fig = plot_gradient_norms({f"layer{i}": [1.0, 0.5, 0.2] for i in range(4)})
    assert len({str(line.get_linestyle()) for line in fig.axes[0].lines}) == 4


def test_history_columns_read_in_one_call_keep_none_apart_from_a_measured_nan() -> None:
    from downslope.viz.curves import _read_history

    hist, missing = _read_history({"loss": [1.0, None, float("nan")], "epoch": [1, 2, 3]})
    assert np.isnan(hist["loss"][1:]).all() and missing["loss"].tolist() == [False, True, False]
    assert history_to_dict({"loss": (2, 1)}) == {"loss": [2.0, 1.0]}


def test_a_value_that_is_not_a_number_is_named_with_its_key_and_position() -> None:
    # It used to drop the column and say the history had no 'loss' key.
    with pytest.raises(TypeError, match=r"history key 'loss': the values must be numbers.*position 1 holds 'oops'"):
        plot_loss_curves({"loss": ["0.9", "oops"]})
    with pytest.raises(TypeError, match=r"history key 'val_loss'.*position 2 holds \[1\] \(list\)"):
        plot_loss_curves({"loss": [1.0, 0.5, 0.4], "val_loss": [1.0, None, [1]]})
    with pytest.raises(TypeError, match="position 0 holds 'x'"):
        history_to_dict({"loss": ["x", 1.0]})
    assert history_to_dict({"loss": ["0.9", 0.5, None]})["loss"][:2] == [0.9, 0.5]  # numbers written as text


def test_a_hand_made_history_gets_a_neutral_legend_and_a_fit_history_says_how_it_was_measured() -> None:
    hand = plot_loss_curves({"loss": LOSS, "val_loss": VAL}, metrics=[])
    texts = [t.get_text().replace("\n", " ") for t in hand.axes[0].get_legend().get_texts()]
    assert texts[:2] == ["training", "validation"]
    assert not any("before its update" in t or "after the epoch" in t for t in texts)
    fitted = plot_loss_curves(_real_history(), metrics=[])
    texts = [t.get_text().replace("\n", " ") for t in fitted.axes[0].get_legend().get_texts()]
    assert texts[:2] == [TRAIN_LABEL, VAL_LABEL]


def _converged_float32_losses() -> np.ndarray:
    """A full-batch run's logged losses (float32 numbers): a geometric fall to 7.8e8 over 40 epochs, then
    flat but for rounding, a few float32 ulps either way, the lowest (by one ulp) at epoch 51 of 60."""
    floor = np.float32(7.8e8)
    falling = (floor * (1.0 + 0.6 ** np.arange(1, 41))).astype(np.float32)
    ulps = np.array([3, 1, 2, 0, 1, 3, 2, 1, 0, 2, -1, 1, 0, 2, 1, 0, 3, 1, 2, 0])  # epochs 41-60: -1 at 51
    flat = np.array([np.float32(floor + u * np.spacing(floor)) for u in ulps], dtype=np.float32)
    return np.concatenate([falling, flat]).astype(np.float64)


def test_the_best_epoch_of_a_converged_run_is_the_first_within_rounding_of_the_lowest() -> None:
    from downslope.viz.curves import BEST_EPOCH_RTOL

    losses = _converged_float32_losses()
    strict = int(np.argmin(losses))
    within = np.flatnonzero(np.abs(losses - losses[strict]) <= BEST_EPOCH_RTOL * losses[strict])
    assert strict + 1 == 51 and within[0] < strict  # rounding alone put the strict lowest at epoch 51
    # from there on the curve is flat to a millionth (the band is about 12 float32 ulps of these values)
    assert np.array_equal(within, np.arange(within[0], len(losses)))
    fig = plot_loss_curves({"loss": losses.tolist()}, metrics=[])
    assert _vline_x(fig.axes[0]) == within[0] + 1
    dots = [line for line in fig.axes[0].lines if line.get_marker() == "o" and line.get_color() == "black"]
    assert [tuple(d.get_xydata()[0]) for d in dots] == [(within[0] + 1, losses[within[0]])]
    label = _best_label(fig).replace("\n", " ")
    assert (
        label.startswith(f"best epoch {within[0] + 1} (loss ")
        and "the first within 1e-6 (relative) of the lowest" in label
    )
    # the helper itself: strict by default (unchanged), the band when asked, the first in it
    assert best_epoch_index(losses) == strict
    assert best_epoch_index(losses, rtol=BEST_EPOCH_RTOL) == within[0]
    assert best_epoch_index(-losses, "max", rtol=BEST_EPOCH_RTOL) == within[0]  # same band for negatives
    assert best_epoch_index([-2.0, -3.0000001, -3.0], rtol=BEST_EPOCH_RTOL) == 1  # |best|: not best*(1-rtol)
    with pytest.raises(ValueError, match=r"rtol must be a number in \[0, 1\), got -0.1"):
        best_epoch_index(losses, rtol=-0.1)


def test_a_real_mark_and_no_change_to_what_the_run_keeps() -> None:
    """A History from fit without callbacks: the plot and the report name the same epoch (the first within
    the band); History.best (what early stopping and restore_best_weights use) stays strict."""
    import html

    from downslope.train.history import History
    from downslope.viz.curves import BEST_EPOCH_RTOL
    from downslope.viz.report import render_report

    h = History()
    for i, v in enumerate(_converged_float32_losses()):
        h.append(i, {"loss": float(v)})
    strict = int(np.argmin(h["loss"])) + 1
    assert h.best_epoch == strict == 51  # Keras' strict rule, unchanged
    first = best_epoch_index(h["loss"], rtol=BEST_EPOCH_RTOL) + 1
    assert _vline_x(plot_loss_curves(h, metrics=[]).axes[0]) == first < strict
    text = html.unescape(render_report({}, h, {}, "done"))
    assert f"(epoch {first})" in text and f'<tr class="best"><td class="num">{first}</td>' in text


def test_the_run_callbacks_epoch_is_marked_even_within_rounding() -> None:
    """With restore_best_weights the weights the model holds are those of the callback's (strict) best
    epoch: the mark and the report stay there, rounding or not."""
    import html

    from downslope.train import EarlyStopping
    from downslope.train.history import History
    from downslope.viz.report import render_report

    losses = _converged_float32_losses()
    stopper = EarlyStopping(monitor="val_loss", patience=100, restore_best_weights=True)
    h = History()
    h.follow_monitor([stopper])
    for i, v in enumerate(losses):
        h.append(i, {"loss": float(v) * 1.1, "val_loss": float(v)})
    kept = h.best_epoch
    assert kept == int(np.argmin(losses)) + 1
    fig = plot_loss_curves(h, metrics=[])
    assert _vline_x(fig.axes[0]) == kept
    assert "EarlyStopping's monitor" in _best_label(fig).replace("\n", " ")
    text = html.unescape(render_report({}, h, {}, "done", weights_epoch=kept))
    assert f"(epoch {kept})" in text and f"restored to epoch {kept} (best validation loss)" in text


def _schedule_rates(make, steps: int = 30) -> list[float]:
    """The rate of each of ``steps`` updates under one of downslope's schedulers (as fit logs it)."""
    import downslope as ds
    from downslope import optim

    w = ds.tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    scheduler = make(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


def test_the_learning_rate_axis_is_logarithmic_for_geometric_schedules_only() -> None:
    from downslope.optim import lr_scheduler as S

    geometric = {
        "exponential": _schedule_rates(lambda o: S.ExponentialLR(o, 0.9)),  # 0.1 to 0.0047: 21x
        "step": _schedule_rates(lambda o: S.StepLR(o, 10, 0.1)),  # 0.1, 0.01, 0.001
        "multistep": _schedule_rates(lambda o: S.MultiStepLR(o, [5, 12, 20], 0.2)),
        "sweep up": list(np.geomspace(1e-7, 10.0, 100)),  # the range test's exponential sweep
        "floored": [0.1] * 5 + [0.01] * 5 + [0.001] * 5 + [0.0005] * 5,  # a plateau decay stopped at min_lr
    }
    other = {
        "cosine to 0": _schedule_rates(lambda o: S.CosineAnnealingLR(o, 30)),  # 0.1 down to ~3e-4
        "cosine": _schedule_rates(lambda o: S.CosineAnnealingLR(o, 29, eta_min=1e-4)),
        "one-cycle": _schedule_rates(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=30)),
        "linear": _schedule_rates(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.01, total_iters=29)),
        "warm restarts": _schedule_rates(lambda o: S.CosineAnnealingWarmRestarts(o, 10)),
    }
    for name, rates in {**geometric, **other}.items():
        assert max(rates) / min(r for r in rates if r > 0) > 10.0, name  # each spans more than 10x
        ax = plot_learning_rate(rates).axes[0]
        expected = "log" if name in geometric else "linear"
        assert ax.get_yscale() == expected, name
        assert ax.get_ylabel() == "learning rate" + (" (log scale)" if expected == "log" else ""), name
        # the override, both ways
        assert plot_learning_rate(rates, log_scale=expected != "log").axes[0].get_yscale() != expected, name
    # a geometric schedule within 10x stays linear (nothing to gain from a log axis)
    assert plot_learning_rate(_schedule_rates(lambda o: S.StepLR(o, 10, 0.5))).axes[0].get_yscale() == "linear"
