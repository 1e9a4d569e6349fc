"""plot_compare's axes say which metric and which split they show (the loss, an accuracy, both), the
legend names the runs by their dict keys, and runs given as a list or one history passed as the runs are
refused saying what to pass."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.errors import ArgumentError, ArgumentTypeError
from downslope.viz.curves import TRAINING_LOSS_MEANING, plot_compare

pytest.importorskip("matplotlib")

SIZE = (4.0, 3.0)
RUNS = {
    "sgd": {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.5], "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.4, 0.6, 0.7]},
    "adam": {"loss": [0.9, 0.4, 0.2], "val_loss": [1.0, 0.5, 0.45], "accuracy": [0.6, 0.8, 0.9],
             "val_accuracy": [0.5, 0.7, 0.75]},
}  # fmt: skip


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def _fit_history(accuracies):
    from downslope.train.history import History

    h = History()
    for i, acc in enumerate(accuracies):
        h.append(i, {"loss": 1.0 - acc / 2, "val_loss": 1.1 - acc / 2, "accuracy": acc, "val_accuracy": acc - 0.1})
    return h


@pytest.mark.parametrize("metric", ["accuracy", "val_accuracy"])
def test_compare_labels_each_axis_with_the_metric_compared_and_the_legend_with_the_dict_keys(metric) -> None:
    fig = plot_compare(RUNS, metric=metric, figsize=SIZE)
    train, val = fig.axes  # 'val_accuracy' names the same pair of rows: training above, validation below
    assert (train.get_ylabel(), val.get_ylabel()) == ("training accuracy", "validation accuracy")
    assert (train.get_title(), val.get_title()) == (
        "Training accuracy against epoch",
        "Validation accuracy against epoch",
    )
    assert train.get_yscale() == val.get_yscale() == "linear"  # an accuracy on a linear axis
    for i, name in enumerate(RUNS):
        np.testing.assert_array_equal(train.lines[i].get_ydata(), RUNS[name]["accuracy"])
        np.testing.assert_array_equal(val.lines[i].get_ydata(), RUNS[name]["val_accuracy"])
    assert _legend(fig) == ["sgd", "adam"]


def test_compare_of_the_loss_and_an_accuracy_labels_every_row_with_its_own_metric() -> None:
    fig = plot_compare(RUNS, metric=["loss", "accuracy"], figsize=SIZE)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "training loss (log scale)", "validation loss (log scale)", "training accuracy", "validation accuracy",
    ]  # fmt: skip
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log", "linear", "linear"]
    np.testing.assert_array_equal(fig.axes[2].lines[1].get_ydata(), RUNS["adam"]["accuracy"])
    assert _legend(fig) == ["sgd", "adam"]
    # the default compares the loss, with the axes named so
    assert [ax.get_ylabel() for ax in plot_compare(RUNS, figsize=SIZE).axes] == [
        "training loss (log scale)", "validation loss (log scale)",
    ]  # fmt: skip


def test_how_the_numbers_were_measured_is_said_for_runs_fit_logged_only() -> None:
    fitted = plot_compare({"a": _fit_history([0.5, 0.7]), "b": _fit_history([0.6, 0.8])}, metric=["loss", "accuracy"],
                          figsize=SIZE)  # fmt: skip
    labels = [ax.get_ylabel().replace("\n", " ") for ax in fitted.axes]
    assert labels[0].startswith("training loss") and TRAINING_LOSS_MEANING in " ".join(labels[0].split())
    assert labels[1].startswith("validation loss") and "after the epoch's last update" in labels[1]
    assert labels[2].startswith("training accuracy") and "before its update" in labels[2]
    assert labels[3].startswith("validation accuracy") and "after the epoch's last update" in labels[3]
    # a dict (or another library's history) says nothing of how its numbers were measured
    hand = plot_compare({"a": RUNS["sgd"], "b": _fit_history([0.6, 0.8, 0.9])}, figsize=SIZE)
    assert [ax.get_ylabel() for ax in hand.axes] == ["training loss (log scale)", "validation loss (log scale)"]


def test_a_run_with_validation_numbers_only_keeps_its_name_in_the_legend() -> None:
    runs = {"both": RUNS["sgd"], "validated only": {"val_accuracy": [0.3, 0.5, 0.6]}}
    fig = plot_compare(runs, metric="accuracy", figsize=SIZE)
    assert _legend(fig) == ["both", "validated only"]
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[1].lines) == 2


def test_a_target_accuracy_is_reached_from_below() -> None:
    fig = plot_compare(RUNS, metric="accuracy", target=0.7, figsize=SIZE)
    val = fig.axes[1]
    assert [t.get_text() for t in val.get_legend().get_texts()] == ["val accuracy target 0.7 (dots: reached)"]
    dots = [(line.get_xdata()[0], line.get_ydata()[0]) for line in val.lines if line.get_marker() == "o"]
    assert dots == [(3.0, 0.7), (2.0, 0.7)]  # each run's first epoch at or above the target


def test_runs_that_are_not_a_dict_of_named_histories_are_refused_saying_what_to_pass() -> None:
    with pytest.raises(ArgumentTypeError, match=r"got a list of 2 histories; name them, e\.g\. \{'sgd': h1"):
        plot_compare(list(RUNS.values()))
    with pytest.raises(ArgumentTypeError, match=r"'loss' holds a list.*this looks like one history.*plot_loss_curves"):
        plot_compare(RUNS["sgd"])
    with pytest.raises(ArgumentTypeError, match=r"got one History; draw it with plot_loss_curves"):
        plot_compare(_fit_history([0.5, 0.7]))
    with pytest.raises(
        ArgumentError, match=r"run 'b' has no 'accuracy' \(nor 'val_accuracy'\) to compare; its keys are \['loss'\]"
    ):
        plot_compare({"a": RUNS["sgd"], "b": {"loss": [1.0, 0.5, 0.3]}}, metric="accuracy")
    with pytest.raises(ArgumentTypeError, match="metric must be a name"):
        plot_compare(RUNS, metric=[])
