"""The files of a finished training run: config, history, metrics, model, plots and the report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..train.protocols import ModelLike


def _in_data_units(data: Any, model: ModelLike) -> tuple[Any, Any]:
    """The training inputs in the data's own units and the model as a function of them: the model
    was trained on standardized inputs, but a learner wants the fitted line over the raw x axis."""
    import numpy as np

    from ..experiment import data_units

    pre = data.preprocess
    raw_model = model if not pre.get("target_scaler") else (lambda x: data_units(model(x), pre))
    state = pre.get("standardizer")
    if not state:
        return np.asarray(data.X_train), raw_model
    mean, scale = state["mean"], state["scale"]
    return np.asarray(data.X_train) * scale + mean, lambda x: raw_model((x - mean) / scale)


def _plots(result: Any, run: Any) -> tuple[dict[str, Path], list[str]]:
    """Draw the run's pictures into the run's (staging) directory; return them and notes on any that
    could not be drawn. Each PNG is rendered in memory and written like every other file of the run:
    replaced atomically, never through a symlink that stands at its name."""
    import numpy as np

    notes: list[str] = []
    figures: dict[str, Path] = {}
    try:
        from ..viz import curves, png_bytes
    except ImportError as exc:  # pragma: no cover - matplotlib missing
        return figures, [f"plots skipped: {exc}"]

    def save(caption: str, name: str, fig: Any) -> None:
        run.write_bytes(name, png_bytes(fig, dpi=110))
        figures[caption] = run.path(name)

    try:
        save("Loss and metrics", "curves.png", curves.plot_loss_curves(result.history))
        hist = result.history.as_dict()
        if len(set(hist.get("lr") or [])) > 1:  # a constant rate needs no picture
            save("Learning rate", "lr.png", curves.plot_learning_rate(result.history))
        if result.gradients is not None and result.gradients.history:
            save(
                "Gradient norm per layer",
                "grad_norms.png",
                curves.plot_gradient_norms(result.gradients, x_label="epoch"),
            )
        data = result.data
        if data.task == "regression" and data.n_features == 1:
            from ..viz import regression

            x_raw, model_raw = _in_data_units(data, result.model)
            x_label = data.feature_names[0] if data.feature_names else "x"
            save("Fitted line", "fit.png", regression.plot_regression(model_raw, x_raw, data.y_train, x_label=x_label))
        elif data.task == "classification" and data.n_features == 2:
            from ..viz import boundary

            save(
                "Decision boundary",
                "boundary.png",
                boundary.plot_decision_boundary(result.model, np.asarray(data.X_train), data.y_train),
            )
    except ImportError as exc:
        notes.append(f"some plots skipped: {exc}")
    return figures, notes


def _write_run(result: Any, run: Any) -> dict[str, Any]:
    """Write every result file of a finished training into the run's staging directory (each one
    atomically); the caller then publishes the run. Returns the metrics as written."""
    from .. import serialization
    from ..experiment import run_state, to_toml
    from ..runs import json_bytes

    run.write_text("config.toml", to_toml(result.cfg))
    run.write_text("history.csv", result.history.to_csv())
    metrics = dict(result.metrics, stop_reason=result.stop_reason)
    run.write_bytes("metrics.json", json_bytes(metrics))  # NaN/inf of a diverged run become null
    serialization.save(run_state(result), run.path("model.ds"))
    figures, notes = _plots(result, run)
    try:
        from ..viz.report import render_report

        html = render_report(
            result.cfg, result.history, metrics, result.stop_reason, figures, result.diagnostics + notes
        )
        run.write_text("report.html", html)
    except ImportError as exc:
        print(f"downslope: report skipped ({exc})", file=sys.stderr)
    return metrics
