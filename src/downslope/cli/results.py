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

    from ..experiment import feature_offsets

    pre = data.preprocess
    state = pre.get("standardizer")
    # a column shifted before its float32 cast (see TabularEncoder.offsets) is plotted in its own units;
    # the plots feed the model float32 tensors, so its mean is float32 too
    offset = feature_offsets(pre, np.asarray(data.X_train).shape[1])
    if not state:
        if not offset.any():
            return np.asarray(data.X_train), _RawUnits(model, pre, None, None)
        state = {"mean": np.zeros(len(offset), np.float32), "scale": np.ones(len(offset), np.float32)}
    mean, scale = offset + state["mean"], state["scale"]
    return np.asarray(data.X_train) * scale + mean, _RawUnits(model, pre, mean.astype(np.float32), scale)


class _RawUnits:
    """The run's model as a function of raw inputs with outputs in the target's units; it switches the
    model between train and eval mode like the model itself (the plots predict in eval mode)."""

    def __init__(self, model: Any, preprocess: dict[str, Any], mean: Any, scale: Any) -> None:
        self.model, self.preprocess, self.mean, self.scale = model, preprocess, mean, scale

    @property
    def training(self) -> Any:
        return getattr(self.model, "training", None)

    def eval(self) -> Any:
        return self.model.eval()

    def train(self, mode: bool = True) -> Any:
        return self.model.train(mode)

    def __call__(self, x: Any) -> Any:
        from ..experiment import data_units

        out = self.model(x if self.mean is None else (x - self.mean) / self.scale)
        return data_units(out, self.preprocess) if self.preprocess.get("target_scaler") else out


def _plots(result: Any, run: Any) -> tuple[dict[str, Path], list[str]]:
    """Draw the run's pictures into the run's (staging) directory; return them and notes on any that
    could not be drawn. Each PNG is rendered in memory and written like every other file of the run:
    replaced atomically, never through a symlink that stands at its name."""

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
        # the gradient norm is a mini-batch gradient's (its noise included, so it depends on the batch size),
        # measured on a sample of the batches: the titles say which
        every = getattr(result.gradients, "every_n_batches", 1)
        batch = str(result.cfg.get("batch_size"))
        if batch in ("full", "none"):
            grad_title, sampled = "Gradient norm\n(full batch: the whole training split's gradient)", "full batch"
        else:
            sampled = f"batch size {batch}, " + (f"sampled every {every} batches" if every > 1 else "every batch")
            grad_title = f"Mini-batch gradient norm\n({sampled})"
        titles = {"grad_norm": grad_title}
        save("Loss and metrics", "curves.png", curves.plot_loss_curves(result.history, panel_titles=titles))
        hist = result.history.as_dict()
        rates = {*(hist.get("lr") or []), *getattr(result.history, "lr_steps", ())}  # (per update: within epochs)
        if len(rates) > 1:  # a constant rate needs no picture
            save("Learning rate", "lr.png", curves.plot_learning_rate(result.history))
        if result.gradients is not None and result.gradients.history:
            save(
                f"Gradient norm per layer ({sampled}; a mini-batch gradient's norm includes its noise, so smaller "
                "batches give larger norms)",
                "grad_norms.png",
                curves.plot_gradient_norms(result.gradients, x_label="epoch"),
            )
        data = result.data
        if data.task == "regression" and data.n_features == 1:
            from ..viz import regression

            x_raw, model_raw = _in_data_units(data, result.model)
            x_label = data.feature_names[0] if data.feature_names else "x"
            y_label = data.target_name or "y"
            figure = regression.plot_regression(
                model_raw, x_raw, data.y_train, x_label=x_label, y_label=y_label,
                least_squares=result.cfg["model"] == "linear",  # the line gradient descent should reach
                note=_stopped_note(result),
            )  # fmt: skip
            save("Fitted line", "fit.png", figure)
        elif data.task == "classification" and data.n_features == 2:
            from ..viz import boundary

            x_raw, model_raw = _in_data_units(data, result.model)  # the axes in the features' own units
            names = data.feature_names[:2] if len(data.feature_names) >= 2 else ["x1", "x2"]
            figure = boundary.plot_decision_boundary(
                model_raw,
                x_raw,
                data.y_train,
                feature_names=(names[0], names[1]),
                class_names=data.class_names or None,
            )
            save("Decision boundary", "boundary.png", figure)
    except ImportError as exc:
        notes.append(f"some plots skipped: {exc}")
    return figures, notes


def _stopped_note(result: Any) -> str | None:
    """Why the drawn model may fall short of where gradient descent was heading: early stopping ended
    the run, or the weights drawn are those of its best epoch, not the last one's (None when neither)."""
    history = result.history
    epochs = len(history.as_dict().get("loss") or [])
    stopped_early = getattr(history, "stop_kind", None) == "early_stopping"
    restored = result.weights_epoch is not None and result.weights_epoch < epochs
    if not (stopped_early or restored):
        return None
    who = _descent_name(result.cfg)
    note = f"{who} stopped at epoch {epochs} (early stopping)" if stopped_early else f"{who} ran {epochs} epochs"
    if result.weights_epoch is not None:
        which = "validation" if "val_loss" in history.as_dict() else "training"
        note += f"; weights restored to epoch {result.weights_epoch} (best {which} loss)"
    return note


def _descent_name(cfg: dict[str, Any]) -> str:
    """The run's optimizer and batching in a few words ("sgd, batch size 64"; "gd, full batch"), so a
    plot's note names the descent that ran rather than calling every run gradient descent."""
    batch = str(cfg.get("batch_size"))
    batching = "full batch" if batch in ("full", "none", "None") else f"batch size {batch}"
    return f"{cfg.get('optimizer', 'training')} ({batching})"


def weights_note(result: Any) -> str | None:
    """Plain words when the model saved is not the last epoch's: early stopping's rule (--patience)
    puts back the best epoch's weights at the end of training, whether or not it stopped the run."""
    history = result.history.as_dict()
    epochs = len(history.get("loss") or [])
    if result.weights_epoch is None or result.weights_epoch >= epochs:
        return None
    which = "validation" if "val_loss" in history else "training"
    return (
        f"the model saved is epoch {result.weights_epoch}'s, the best {which} loss, not the last epoch's "
        f"({epochs}): --patience restores the best weights; --patience 0 keeps the last epoch's"
    )


def _write_run(result: Any, run: Any) -> dict[str, Any]:
    """Write every result file of a finished training into the run's staging directory (each one
    atomically); the caller then publishes the run. Returns the metrics as written."""
    from .. import serialization
    from ..experiment import run_state, to_toml
    from ..experiment.run import SPLIT_FILE, split_rows
    from ..runs import CONFIG_FINGERPRINT, config_fingerprint, json_bytes, write_config

    config_text = to_toml(result.cfg)
    write_config(run, config_text)  # its checksum recorded: a kill before publishing still resumes
    run.write_text("history.csv", result.history.to_csv())
    metrics = dict(result.metrics, stop_reason=result.stop_reason)
    run.write_bytes("metrics.json", json_bytes(metrics))  # NaN/inf of a diverged run become null
    # the deployable model.ds holds weights and preprocessing; the split's per-row arrays (megabytes
    # at millions of rows), which only evaluate reads, go beside it
    state = run_state(result, rows_apart=True)
    # ties model.ds to this run's config.toml: a model.ds copied in from another run is refused on reading
    state[CONFIG_FINGERPRINT] = config_fingerprint(config_text.encode())
    rows = split_rows(run_state(result))
    if rows:
        serialization.save(rows, run.path(SPLIT_FILE))
    serialization.save(state, run.path("model.ds"))
    figures, notes = _plots(result, run)
    saved = weights_note(result)
    notes = notes + ([saved] if saved else [])
    try:
        from ..viz.report import render_report

        html = render_report(
            result.cfg,
            result.history,
            metrics,
            result.stop_reason,
            figures,
            result.diagnostics + notes,
            weights_epoch=getattr(result, "weights_epoch", None),
        )
        run.write_text("report.html", html)
    except ImportError as exc:
        print(f"downslope: report skipped ({exc})", file=sys.stderr)
    return metrics
