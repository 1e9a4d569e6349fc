"""The ``downslope`` command: train, evaluate, predict, compare, landscape, lr-find.

Every subcommand prints one clear line and exits with status 2 on bad input (unknown names list the
valid ones; missing or malformed files say where), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXAMPLES = """examples:
  downslope train                                   digits classification with an MLP (< 1 minute)
  downslope train --data moons --hidden 32,32 --optimizer sgd --lr 0.1 --batch-size full
  downslope train --data my.csv --target price --epochs 200 --patience 20
  downslope train --config run.toml --lr 0.01       a config file, with a flag overriding it
  downslope compare --optimizers sgd,momentum,rmsprop,adam --lrs 0.01,0.1
  downslope landscape --function rosenbrock --optimizers sgd,momentum,adam
  downslope lr-find --data digits
  downslope evaluate runs/digits-adam --data digits
  downslope predict runs/digits-adam --data new.csv --out preds.csv
  downslope export runs/digits-adam --onnx digits.onnx --safetensors digits.safetensors
"""


TRAIN_EPILOG = """run directory:
  The run is written in runs/.<name>.partial/ (status.json says "running"; checkpoint.ckpt is
  rewritten after every epoch) and appears as runs/<name>/ in one rename once every file is written
  (status.json then says "complete" or "diverged"). A killed or interrupted run stays in the
  .partial directory: 'downslope train --resume runs/<name>' continues it exactly where it stopped.

exit status:
  0    the run is complete
  2    bad input, or the run directory cannot be written (found before training starts)
  3    training diverged (loss NaN/inf or exploding); the run directory and its report are kept
  130  interrupted (Ctrl-C/SIGTERM); the run is kept, resumable with --resume
"""


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run directory")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run at --out (as a whole, in one step, once the new run is complete)",
    )
    g.add_argument(
        "--resume",
        metavar="RUN",
        help="continue an unfinished (killed or interrupted) run from its last checkpoint, with its own settings",
    )


def _add_overwrite_flag(p: argparse.ArgumentParser) -> None:
    """``--overwrite`` for the commands that write a run directory but cannot be resumed (compare,
    landscape, lr-find): the refusal of a taken --out names this flag, so each of them has it."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run at --out (as a whole, in one step, once the new one is complete)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong and where to read more), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    from .data.tabular import TASK_RULE
    from .experiment import CHOICES

    g = p.add_argument_group("data")
    g.add_argument("--config", help="TOML file of settings (flags given here override it)")
    g.add_argument(
        "--data",
        help="dataset name (digits, iris, wine, breast_cancer, diabetes, line, polynomial, moons, circles, spirals, blobs, xor) or a .csv/.parquet/.npz/.npy file (a big .npy is memory-mapped; install downslope[fast] for fast CSV and Parquet) [digits]",
    )
    g.add_argument("--target", help="target column of a CSV (default: the last column)")
    g.add_argument(
        "--task",
        choices=CHOICES["task"],
        help=f"classification or regression [auto: inferred from a file's labels: {TASK_RULE}]",
    )
    g.add_argument(
        "--missing",
        choices=CHOICES["missing"],
        help="missing values in a file (empty, NA, nan, ?): error, drop the rows, or fill them with the training "
        "split's mean/median/most_frequent (text columns: most frequent category); kept for predict [error]",
    )
    g.add_argument("--drop", help="CSV columns to leave out, e.g. id,name")
    g.add_argument(
        "--max-categories",
        type=int,
        help="a CSV text column with more distinct values is refused (one-hot would explode) [100]",
    )
    g.add_argument(
        "--no-scale-target",
        dest="scale_target",
        action="store_const",
        const=False,
        help="regression: train on the raw target (by default it is standardized on the training split, so the "
        "logged loss is in standardized units; predictions and metrics are always in the data's units)",
    )
    g.add_argument("--test-split", type=float, help="fraction held out for the final test [0.2]")
    g.add_argument("--val-split", type=float, help="fraction used for validation [0.15]")
    g.add_argument(
        "--no-standardize", dest="standardize", action="store_const", const=False, help="keep features unscaled"
    )
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=CHOICES["model"], help="mlp, cnn (image data) or linear [mlp]")
    g.add_argument("--hidden", help="hidden layer widths, e.g. 128,64 ('' for none) [128,64]")
    g.add_argument("--channels", help="CNN channels per conv block, e.g. 16,32 [16]")
    g.add_argument("--activation", choices=CHOICES["activation"], help="[relu]")
    g.add_argument("--dropout", type=float, help="dropout probability after each hidden layer [0]")
    g.add_argument("--batchnorm", action="store_const", const=True, help="BatchNorm after each hidden Linear")
    g = p.add_argument_group("optimization")
    g.add_argument("--loss", help="auto, cross_entropy, mse, l1, huber [auto: from the task]")
    g.add_argument("--optimizer", help=f"one of {', '.join(CHOICES['optimizer'])} [adam]")
    g.add_argument("--lr", type=float, help="learning rate [the optimizer's default; 0.01 for sgd]")
    g.add_argument("--momentum", type=float, help="momentum for sgd/rmsprop [0; 0.9 for 'momentum']")
    g.add_argument("--weight-decay", type=float, help="weight decay [0]")
    g.add_argument("--clip-norm", type=float, help="clip the gradient's global norm [off]")
    g.add_argument("--schedule", help=f"learning-rate schedule: {', '.join(CHOICES['schedule'])} [none]")
    g.add_argument("--batch-size", help="'full' = full-batch GD, 1 = stochastic GD, N = mini-batch [64]")
    g.add_argument("--epochs", type=int, help="maximum number of epochs [100]")
    g.add_argument("--patience", type=int, help="early-stopping patience in epochs, 0 = off [10]")
    g.add_argument("--target-loss", type=float, help="stop once the (validation) loss is at or below this")
    g.add_argument("--max-time", type=float, help="stop after this many seconds")
    g.add_argument("--seed", type=int, help="one seed for splits, initialization, shuffling and dropout [0]")
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", help="run directory, refused if it exists and is not empty [runs/<data>-<optimizer>-<time>-<id>]"
    )
    g.add_argument("--quiet", dest="verbose", action="store_const", const=0, help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    from .experiment import CHOICES
    from .viz.testfunctions import SURFACES

    parser = _Parser(
        prog="downslope",
        description="Train neural networks by gradient descent and see what the optimizer does.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(_subparsers=sub.choices)
    p = sub.add_parser(
        "train",
        help="train a model and write a run directory with a report",
        description="Train a model from a dataset or file; write config, history, metrics, checkpoint, plots and report.html.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_training_flags(p)
    _add_run_flags(p)
    p = sub.add_parser(
        "evaluate",
        help="metrics of a trained run on a dataset or file",
        description="Load RUN/model.ds and print its metrics (in the data's units) as one JSON line: on the run's "
        "own test split (its rows are stored in the run), or on every row of --data, with a warning when some of "
        "them were used in training.",
    )
    p.add_argument("run", help="run directory written by 'downslope train'")
    p.add_argument("--data", help="dataset name or file (default: the run's own test split)")
    p.add_argument("--target", help="target column of a CSV")
    p = sub.add_parser(
        "predict",
        help="predictions of a trained run for a CSV/NPZ/NPY file",
        description="Predict with RUN/model.ds; the features are preprocessed as in training. Classification "
        "writes the predicted class and one probability column per class; regression the predicted value.",
    )
    p.add_argument("run", help="run directory written by 'downslope train'")
    p.add_argument(
        "--data",
        required=True,
        help="input: a CSV with the training columns (the target column may be absent), or features only "
        "(a CSV, with or without a header, or .npy with one column per feature; an .npz with X) for any model",
    )
    p.add_argument("--out", required=True, help="where to write the predictions CSV")
    p = sub.add_parser(
        "compare",
        help="the same task and initialization trained with several optimizers, learning rates or batch sizes",
        description="Train every combination of --optimizers x --lrs x --batch-sizes on the same data, split, "
        "initial weights and seed. Writes compare.png (losses against epoch and against wall time), "
        "compare.csv (final metrics, epochs and seconds to --target-loss, diverged) and histories.csv. "
        "Without --target-loss the target is the median of the runs' best (validation) losses.",
    )
    _add_training_flags(p)
    p.add_argument(
        "--optimizers", help=f"comma-separated, from: {', '.join(CHOICES['optimizer'])} [sgd,momentum,rmsprop,adam]"
    )
    p.add_argument("--lrs", help="comma-separated learning rates (each optimizer runs with each)")
    p.add_argument("--batch-sizes", help="comma-separated batch sizes, e.g. full,32,1")
    _add_overwrite_flag(p)
    p = sub.add_parser(
        "landscape",
        help="optimizers' paths on 2-D test functions, over contour plots",
        description="Race optimizers on a 2-D test function; write landscape.png (paths over contours and a "
        "loss-per-step panel), paths.csv and, with --gif, an animation.",
    )
    p.add_argument(
        "--function",
        default="rosenbrock",
        help=f"test function: {', '.join(f'{k} ({v.title})' for k, v in SURFACES.items())} [rosenbrock]",
    )
    p.add_argument(
        "--optimizers",
        default="sgd,momentum,rmsprop,adam",
        help=f"comma-separated, from: {', '.join(CHOICES['optimizer'])} [sgd,momentum,rmsprop,adam]",
    )
    p.add_argument("--lr", type=float, default=0.0, help="one learning rate for all (default: a per-optimizer choice)")
    p.add_argument("--steps", type=int, default=300, help="number of steps [300]")
    p.add_argument("--start", help="start point x,y (default: the function's)")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF")
    p.add_argument(
        "--out", default="", help="output directory, refused if not empty [runs/landscape-<function>-<time>-<id>]"
    )
    _add_overwrite_flag(p)
    p = sub.add_parser(
        "lr-find",
        help="learning-rate range test with a plot and a suggestion",
        description="Raise the learning rate geometrically from --start-lr to --end-lr over --num-iter "
        "mini-batches (stopping early if the loss diverges); plot loss against rate and suggest one. "
        "The model is freshly initialized; nothing is trained for real.",
    )
    _add_training_flags(p)
    p.add_argument("--start-lr", type=float, default=1e-7, help="first learning rate tried [1e-7]")
    p.add_argument("--end-lr", type=float, default=10.0, help="last learning rate tried [10]")
    p.add_argument("--num-iter", type=int, default=100, help="number of mini-batches (one rate each) [100]")
    _add_overwrite_flag(p)
    p = sub.add_parser(
        "export",
        help="a trained run as ONNX (with its preprocessing) and/or safetensors weights",
        description="Write RUN as an ONNX graph that takes the raw feature columns and returns predictions in the "
        "data's own units (needs the onnx extra), and/or its weights as safetensors under PyTorch's names.",
    )
    p.add_argument("run", help="run directory written by 'downslope train'")
    p.add_argument("--onnx", metavar="PATH", help="where to write the ONNX model")
    p.add_argument("--safetensors", metavar="PATH", help="where to write the weights")
    return parser


# ---------------------------------------------------------------------- helpers
def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from .experiment import DEFAULTS, load_toml, normalize_config

    raw: dict[str, Any] = {}
    source = "command line"
    if getattr(args, "config", None):
        raw.update(load_toml(args.config))
        source = f"{args.config} + command line"
        raw = dict(normalize_config(raw, args.config))
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            raw[key] = value
    return normalize_config(raw, source)


def _default_stem(cfg: dict[str, Any], kind: str = "", with_optimizer: bool = True) -> str:
    return kind + Path(cfg["data"]).stem + (f"-{cfg['optimizer']}" if with_optimizer else "")


def _default_out(cfg: dict[str, Any], kind: str = "", with_optimizer: bool = True) -> Path:
    """``runs/<kind><data>[-<optimizer>]-<time>-<random id>``: unique even for runs started in the same second."""
    from .runs import unique_name

    return Path("runs") / unique_name(_default_stem(cfg, kind, with_optimizer))


def _in_data_units(data: Any, model: Any) -> tuple[Any, Any]:
    """The training inputs in the data's own units and the model as a function of them: the model
    was trained on standardized inputs, but a learner wants the fitted line over the raw x axis."""
    import numpy as np

    from .experiment import data_units

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
        from .viz import curves
        from .viz._mpl import png_bytes
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
            from .viz import regression

            x_raw, model_raw = _in_data_units(data, result.model)
            x_label = data.feature_names[0] if data.feature_names else "x"
            save("Fitted line", "fit.png", regression.plot_regression(model_raw, x_raw, data.y_train, x_label=x_label))
        elif data.task == "classification" and data.n_features == 2:
            from .viz import boundary

            save(
                "Decision boundary",
                "boundary.png",
                boundary.plot_decision_boundary(result.model, np.asarray(data.X_train), data.y_train),
            )
    except ImportError as exc:
        notes.append(f"some plots skipped: {exc}")
    return figures, notes


def _run_state(result: Any) -> dict[str, Any]:
    """What model.ds holds: the weights and everything needed to use them (see experiment.run_state)."""
    from .experiment import run_state

    return run_state(result)


def _write_run(result: Any, run: Any) -> dict[str, Any]:
    """Write every result file of a finished training into the run's staging directory (each one
    atomically); the caller then publishes the run. Returns the metrics as written."""
    from . import serialization
    from .experiment import to_toml
    from .runs import json_bytes

    run.write_text("config.toml", to_toml(result.cfg))
    run.write_text("history.csv", result.history.to_csv())
    metrics = dict(result.metrics, stop_reason=result.stop_reason)
    run.write_bytes("metrics.json", json_bytes(metrics))  # NaN/inf of a diverged run become null
    serialization.save(_run_state(result), run.path("model.ds"))
    figures, notes = _plots(result, run)
    try:
        from .viz.report import render_report

        html = render_report(
            result.cfg, result.history, metrics, result.stop_reason, figures, result.diagnostics + notes
        )
        run.write_text("report.html", html)
    except ImportError as exc:
        print(f"downslope: report skipped ({exc})", file=sys.stderr)
    return metrics


def _load_run(run: str) -> tuple[Any, dict[str, Any]]:
    """The model and saved state of a complete run (:func:`downslope.runs.load_run`)."""
    from .runs import load_run

    return load_run(run)


def _raw_features(state: dict[str, Any], data: str, target: str | None, need_target: bool) -> tuple[Any, Any]:
    """Features of a file or named dataset encoded as in training but not yet filled or scaled, and
    its targets (class indices of the run's classes, or values in the data's units; None if absent).

    Features-only input works for every model: a CSV (header optional) or NPY with exactly the
    model's number of feature columns, or an NPZ without ``y``."""
    import numpy as np

    from .data import datasets
    from .data.tabular import (
        TabularEncoder,
        _line_numbers,
        _Rows,
        class_key,
        encode_csv,
        read_features,
        read_rows,
    )
    from .errors import DataError
    from .experiment import is_file_source

    pre = state["preprocess"]
    classes = list(state["class_names"]) if state["task"] == "classification" else None
    if pre.get("encoder") and data.lower().endswith((".csv", ".parquet")):
        encoder = TabularEncoder.from_state_dict(pre["encoder"])
        name = target or encoder.target
        fast = encode_csv(data, encoder, name, True, need_target) if data.lower().endswith(".csv") else None
        if fast is not None:
            return _drop_missing_rows(state, fast[1], fast[2], need_target)
        header, rows = read_rows(data) if data.lower().endswith(".csv") else _parquet_rows(data)
        y = None
        # predict ignores a target column: its cells may be empty (the values to predict) or
        # unknown, and each input row gets its prediction, in order
        if need_target and name in header:
            j = header.index(name)
            if encoder.missing != "error":  # as in training: rows without a target are left out
                kept = [r for r in rows if not _is_missing(r[j])]
                if len(kept) < len(rows):
                    rows = _keep_lines(rows, kept)
            X = encoder.encode_features(header, rows, data)
            values = _Rows(r[j] for r in rows)
            values.lines = _line_numbers(rows, 2)  # errors name the file line (blank lines count)
            y = encoder.encode_target(values, data, j)
        elif need_target:
            raise DataError(f"{data}: no target column {name!r} to evaluate against; columns are {header}")
        else:
            X = encoder.encode_features(header, rows, data)
        return _drop_missing_rows(state, X, y, need_target)
    if is_file_source(data):
        X, raw = read_features(data, int(state["n_features"]))
        if raw is None:
            if need_target:
                raise DataError(f"{data}: no targets to evaluate against (features only)")
            return X, None
        if classes is None:
            return _drop_missing_rows(state, X, np.asarray(raw, dtype=np.float32).reshape(len(raw), -1), need_target)
        lookup = {c: i for i, c in enumerate(classes)}
        keys = [class_key(v.decode() if isinstance(v, bytes) else v) for v in np.asarray(raw).reshape(-1).tolist()]
        unknown = [k for k in keys if k not in lookup]
        if unknown:
            raise DataError(f"{data}: label {unknown[0]!r} is not one of the model's classes {classes}")
        return _drop_missing_rows(state, X, np.array([lookup[k] for k in keys], dtype=np.int64), need_target)
    if pre.get("encoder"):
        raise DataError(f"{data}: the model was trained on CSV columns {pre['encoder']['columns']}; give a .csv")
    table = datasets.load(data, seed=int(state["config"]["seed"]))
    if state["task"] != table.task:
        raise DataError(f"{data}: a {table.task} dataset, but the model does {state['task']}")
    if table.n_features != int(state["n_features"]):
        raise DataError(f"{data}: {table.n_features} features, but the model takes {state['n_features']}")
    return table.X, table.y


def _parquet_rows(data: str) -> tuple[list[str], Any]:
    """A Parquet file's column names and rows as text (cells as a CSV would hold them), for the encoder."""
    from .data import readers
    from .data.tabular import _Rows

    header, columns = readers.read_parquet_columns(data)
    n = len(next(iter(columns.values())).kind)
    rows = _Rows(readers.parquet_rows(data, list(range(n)), header))
    rows.lines = list(range(1, n + 1))  # messages count rows from 1, as read_parquet's do
    return header, rows


def _is_missing(value: str) -> bool:
    from .data.tabular import MISSING

    return value.strip().lower() in MISSING


def _keep_lines(rows: Any, kept: list[list[str]]) -> Any:
    """``kept`` (a subset of ``rows``, in order) remembering each row's file line, as ``rows`` do."""
    from .data.tabular import _Rows

    lines = getattr(rows, "lines", None)
    out = _Rows(kept)
    if lines is not None:
        where = {id(r): line for r, line in zip(rows, lines)}
        out.lines = [where[id(r)] for r in kept]
    return out


def _drop_missing_rows(state: dict[str, Any], X: Any, y: Any, need_target: bool) -> tuple[Any, Any]:
    """For scoring, a run trained with ``--missing drop`` leaves out rows with a missing value, as in
    training (so its stored test rows line up); predict keeps every row (and refuses missing values)."""
    import numpy as np

    if not need_target or state["config"].get("missing") != "drop":
        return X, y
    keep = ~np.isnan(np.asarray(X, dtype=np.float64)).any(axis=1)
    return X[keep], (y[keep] if y is not None else None)


def _features_for(state: dict[str, Any], data: str, target: str | None, need_target: bool) -> tuple[Any, Any]:
    """Features (preprocessed like training) and targets (or None) of a file or named dataset."""
    from .experiment import apply_preprocess

    X, y = _raw_features(state, data, target, need_target)
    return apply_preprocess(X, state["preprocess"], data), y


# ---------------------------------------------------------------------- subcommands
def _train_config(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The settings of a new run and its reserved run directory (found writable before any training).

    An ``out`` that comes from a --config file (e.g. a copied runs/X/config.toml) is used only when
    nothing is there yet: repeating a run never writes over the run it came from.
    """
    from . import runs
    from .experiment import is_file_source, to_toml

    cfg = _config_from_args(args)
    out: Path | None = Path(args.out) if args.out else None
    if out is None and cfg["out"]:
        candidate = Path(cfg["out"])
        taken = os.path.lexists(candidate) and (not candidate.is_dir() or any(candidate.iterdir()))
        if taken or os.path.lexists(runs.staging_path(candidate)):
            if cfg["verbose"]:
                print(f"note: {args.config} names out = {str(candidate)!r}, which exists; writing a new run instead")
        else:
            out = candidate
    run = runs.reserve(out, parent="runs", stem=_default_stem(cfg), overwrite=args.overwrite)
    cfg["out"] = str(run.final)
    try:
        run.write_text(runs.CONFIG_FILE, to_toml(cfg))
        if is_file_source(str(cfg["data"])) and os.path.isfile(cfg["data"]):
            run.write_bytes(runs.DATA_FINGERPRINT_FILE, runs.json_bytes(runs.data_fingerprint(cfg["data"])))
    except BaseException:
        run.discard()
        raise
    return cfg, run


def _resumed_config(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The stored settings and the run directory of an unfinished run, taken over by this process."""
    from . import runs
    from .errors import ConfigError
    from .experiment import DEFAULTS, load_toml, normalize_config

    given = [f"--{k.replace('_', '-')}" for k in DEFAULTS if k != "verbose" and getattr(args, k, None) is not None]
    if given or args.config or args.overwrite:
        extra = given + (["--config"] if args.config else []) + (["--overwrite"] if args.overwrite else [])
        raise ConfigError(
            f"--resume continues a run with its own stored settings; drop {', '.join(extra)} "
            "(or start a new run without --resume)"
        )
    run = runs.resume(args.resume)
    try:
        cfg = normalize_config(load_toml(run.path(runs.CONFIG_FILE)), str(run.path(runs.CONFIG_FILE)))
        runs.check_same_data(run, str(cfg["data"]))
    except BaseException:
        run.leave(runs.INTERRUPTED)
        raise
    if args.verbose is not None:
        cfg["verbose"] = args.verbose
    return cfg, run


def cmd_train(args: argparse.Namespace) -> int:
    from . import runs
    from .distributed import launched_size
    from .errors import ConfigError
    from .experiment import is_file_source, run_training
    from .train.callbacks import ModelCheckpoint

    writer = True
    if (launched_size() or 1) > 1:  # under mpiexec only rank 0 writes the run and reports
        from . import distributed as dist

        dist.init()
        writer = dist.is_main()
        if args.resume:
            raise ConfigError(
                "--resume: continue the run without mpiexec (resuming a data-parallel run is not supported)"
            )
    if not writer:
        cfg, run = _config_from_args(args), None
    elif args.resume:
        cfg, run = _resumed_config(args)
    else:
        cfg, run = _train_config(args)
    options: dict[str, Any] = {}
    if run is not None:
        # A full training checkpoint in the run's directory after every epoch (written atomically):
        # what --resume continues from after a kill.
        options["extra_callbacks"] = [ModelCheckpoint(run.checkpoint)]
        if args.resume and run.checkpoint.is_file():
            options["resume_from"] = run.checkpoint
        if cfg["verbose"]:
            print(f"writing the run to {run.staging}/ (it becomes {run.final}/ when complete)")
    try:
        result = run_training(cfg, **options)
    except BaseException:
        if run is not None:
            if args.resume or run.checkpoint.is_file():
                run.leave(runs.INTERRUPTED)  # resumable: the checkpoint holds every finished epoch
            else:
                run.discard()  # nothing was trained: leave nothing behind
        raise
    if run is None:
        return 0
    if result.history.stop_kind == "interrupted":  # SIGINT/SIGTERM: the epoch was finished and saved
        run.leave(runs.INTERRUPTED)
        print(
            f"downslope train: {result.stop_reason}; the run is kept in {run.staging}/: "
            f"continue it with 'downslope train --resume {run.final}'",
            file=sys.stderr,
        )
        return runs.EXIT_INTERRUPTED
    diverged = result.history.diverged  # the training loop's divergence rules decided (History.stop_kind)
    try:
        metrics = _write_run(result, run)
        run.publish(runs.DIVERGED if diverged else runs.COMPLETE)
    except OSError as exc:  # e.g. the disk is full: no file of the run is lost or mixed with another run's
        run.leave(runs.INTERRUPTED)
        raise ConfigError(
            f"could not write the run ({exc.strerror or exc}: {exc.filename or run.staging}); the trained state is "
            f"kept in {run.staging}/: make room and continue with 'downslope train --resume {run.final}'"
        ) from None
    except BaseException:
        run.leave(runs.INTERRUPTED)
        raise
    out = run.final
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    if not cfg["verbose"]:  # the progress output has already said why training stopped
        print(f"stopped: {result.stop_reason}")
    data = result.data
    if is_file_source(str(cfg["data"])):  # what the reader decided about a file, so a surprise shows
        what = f"{data.n_outputs} classes" if data.task == "classification" else "regression"
        reason = f"; {data.task_reason}" if data.task_reason else ""
        name = f"{data.target_name!r} " if data.target_name else ""
        print(f"target: {name}({what}{reason}), {data.n_features} feature{'s' if data.n_features != 1 else ''}")
    print("test metrics: " + ", ".join(f"{k}={v}" for k, v in shown.items() if k.startswith("test_")))
    print(f"run written to {out}/ (report.html, metrics.json, history.csv, model.ds, config.toml)")
    if diverged:
        print(
            f"downslope train: training diverged ({result.stop_reason}); the run and its report are in {out}/ "
            f"(status diverged, exit status {runs.EXIT_DIVERGED})",
            file=sys.stderr,
        )
        return runs.EXIT_DIVERGED
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics of a run on its own test split (the default) or on --data, in the data's units."""
    import numpy as np

    from .errors import ConfigError, DataError
    from .experiment import Prepared, apply_preprocess, row_hashes, score_model

    model, state = _load_run(args.run)
    split = state.get("split") or {}
    source = str(state["config"]["data"])
    if not args.data:
        if "test_indices" not in split:
            raise ConfigError(f"{args.run}: the run does not record its test split; name the data with --data")
        X, y = _raw_features(state, source, None, need_target=True)
        n = int(split["n_rows"])
        if len(X) != n:
            raise DataError(
                f"{source}: {len(X)} rows now but {n} when {args.run} was trained, so its test split is lost; "
                "score the file as a whole with --data"
            )
        rows = np.asarray(split["test_indices"], dtype=np.int64)
        X, y = X[rows], y[rows]
        where = f"the run's test split: {len(rows)} of the {n} rows of {source} (seed {split['seed']})"
        print(f"evaluate: {where}", file=sys.stderr)
    else:
        X, y = _raw_features(state, args.data, args.target, need_target=True)
        print(f"evaluate: all {len(X)} rows of {args.data}", file=sys.stderr)
        if "train_row_hashes" in split and len(X):
            seen = int(np.isin(row_hashes(X), np.asarray(split["train_row_hashes"])).sum())
            if seen:
                print(
                    f"evaluate: warning: {seen} of these {len(X)} rows were used to train the run (training or "
                    "validation split), so these metrics are optimistic; leave out --data to score the run's "
                    "own test split",
                    file=sys.stderr,
                )
    X = apply_preprocess(X, state["preprocess"], args.data or source)
    info = Prepared(
        np.zeros((0, 1)),
        np.zeros(0),
        None,
        None,
        np.zeros((0, 1)),
        np.zeros(0),
        state["task"],
        state["n_features"],
        state["n_outputs"],
        "eval",
        preprocess=state["preprocess"],
    )
    metrics = score_model(model, info, X, y)
    print(json.dumps({k: round(v, 6) for k, v in metrics.items()} | {"rows": len(X)}))
    return 0


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (also through another relative path, a symlink or a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare where they would point
        return os.path.realpath(a) == os.path.realpath(b)


def _check_predictions_path(out: str, data: str) -> None:
    from .errors import ConfigError

    if _same_file(out, data):
        raise ConfigError(
            f"predict: --out {out} is the input file --data {data}; writing there would destroy the input, "
            "choose another --out"
        )
    if os.path.isdir(out):
        raise ConfigError(f"predict: --out {out} is a directory; give a file name such as {out}/predictions.csv")


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    import numpy as np

    from .experiment import data_units
    from .runs import check_output_file
    from .serialization import atomic_write_bytes
    from .train import predict

    _check_predictions_path(args.out, args.data)
    check_output_file(args.out, args.run, "--out")
    model, state = _load_run(args.run)
    X, _ = _features_for(state, args.data, None, need_target=False)
    out = predict(model, X)
    preds = data_units(np.asarray(out.numpy() if hasattr(out, "numpy") else out), state["preprocess"])
    # the csv module quotes a class name holding a comma, a quote or a line break (names come from the data)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if state["task"] == "classification":
        names = state["class_names"] or [str(i) for i in range(state["n_outputs"])]
        shifted = preds - preds.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        writer.writerow(["prediction"] + [f"p_{n}" for n in names])
        for row, p in zip(preds.argmax(axis=1), probs):
            writer.writerow([names[row]] + [f"{v:.6g}" for v in p])
    else:
        cols = preds.reshape(len(preds), -1)
        writer.writerow(["prediction"] if cols.shape[1] == 1 else [f"prediction_{i}" for i in range(cols.shape[1])])
        writer.writerows([f"{v:.6g}" for v in r] for r in cols)
    atomic_write_bytes(args.out, text.getvalue().encode())
    print(f"wrote {len(preds)} predictions to {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .distributed import refuse_multi_process
    from .errors import ConfigError
    from .experiment import normalize_config

    refuse_multi_process("downslope compare")  # no data-parallel form: one line under mpiexec
    base = _config_from_args(args)
    optimizers = [o.strip() for o in (args.optimizers or "sgd,momentum,rmsprop,adam").split(",") if o.strip()]
    if not optimizers:
        raise ConfigError(f"--optimizers: expected comma-separated optimizer names, got {args.optimizers!r}")
    lrs = [base["lr"]]
    if args.lrs:
        try:
            lrs = [float(v) for v in args.lrs.split(",")]
        except ValueError:
            raise ConfigError(f"--lrs: expected comma-separated numbers such as 0.01,0.1, got {args.lrs!r}") from None
    batches = [b.strip() for b in args.batch_sizes.split(",")] if args.batch_sizes else [base["batch_size"]]
    # Every combination's settings are checked before anything is trained.
    plan = []
    for opt in optimizers:
        for lr in lrs:
            for bs in batches:
                name = f"{opt} lr={lr:g}" if lr else opt
                if len(batches) > 1:
                    name += f" batch={bs}"
                cfg = normalize_config(dict(base, optimizer=opt, lr=lr, batch_size=bs, target_loss=0.0), "compare")
                plan.append((name, cfg))
    from . import runs

    # named like every run directory: unique, reserved before the work (a taken or non-empty --out is
    # refused before anything is trained), published complete; never written into another run
    run = runs.reserve(
        Path(base["out"]) if base["out"] else None,
        parent="runs",
        stem=_default_stem(base, "compare-", with_optimizer=False),
        overwrite=args.overwrite,
    )
    try:
        out = _compare_into(base, plan, run)
        run.publish(runs.COMPLETE)
    except BaseException:
        run.discard()
        raise
    print(f"written: {out}/compare.csv, {out}/histories.csv, {out}/compare.png")
    return 0


def _compare_into(base: dict[str, Any], plan: list[tuple[str, dict[str, Any]]], run: Any) -> Path:
    """Train every (name, config) of ``plan`` and write compare's files into ``run``'s staging directory;
    return the directory the files will be in once the run is published."""
    from .experiment import build_loss, build_model, prepare, run_training

    out = run.final
    data = prepare(base)
    from . import backend

    backend.manual_seed(base["seed"])
    init = build_model(base, data.n_features, data.n_outputs, data.image_shape).state_dict()  # one init for all runs
    loss_name = build_loss(base, data.task).__class__.__name__
    loss_unit = {"CrossEntropyLoss": "cross-entropy", "MSELoss": "MSE", "L1Loss": "L1", "HuberLoss": "Huber"}.get(
        loss_name, loss_name
    )
    if data.preprocess.get("target_scaler"):
        loss_unit += ", std. target"
    metric_key = "test_accuracy" if data.task == "classification" else "test_r2"
    if base["verbose"]:
        print(f"compare: {len(plan)} runs on {data.name}, same split, initial weights and seed", flush=True)
    results = []
    for i, (name, cfg) in enumerate(plan, 1):
        result = run_training(dict(cfg, verbose=0), data=data, initial_state=init)  # one table, not N logs
        results.append((name, result))
        if base["verbose"]:
            final = result.metrics.get("final_val_loss", result.metrics.get("final_loss"))
            state = "diverged" if result.history.diverged else f"final loss {final:.4g}"
            print(
                f"[{i}/{len(plan)}] {name}: {result.metrics['epochs']} epochs in {result.seconds:.1f} s, {state}",
                flush=True,
            )
            for note in result.diagnostics:
                print(f"{name}: warning: {note}")
    histories = {name: result.history for name, result in results}
    hists = {name: history.as_dict() for name, history in histories.items()}
    monitored = {name: h.get("val_loss") or h.get("loss") for name, h in hists.items()}
    target = base["target_loss"]
    target_origin = "--target-loss"
    if not target:
        # Without a target, take the median of the runs' best losses: the table then ranks how fast the
        # better half of the runs gets there (epochs and seconds), which is what compare is for.
        best = [min(v for v in m if math.isfinite(v)) for m in monitored.values() if any(math.isfinite(v) for v in m)]
        target = float(statistics.median(best)) if best else 0.0
        target_origin = "the median of the runs' best losses; set --target-loss to choose"
    rows = []
    for name, result in results:
        monitor = monitored[name]
        reached = next((i + 1 for i, v in enumerate(monitor) if v <= target), None) if target else None
        elapsed = hists[name].get("time") or []  # seconds since training began, at the end of each epoch
        seconds_to = elapsed[reached - 1] if reached and elapsed else None
        diverged = result.history.diverged  # the training loop's DivergenceGuard decided
        metric = result.metrics.get(metric_key)
        rows.append(
            (
                name,
                result.metrics.get("final_loss"),
                result.metrics.get("final_val_loss"),
                metric,
                result.metrics["epochs"],
                reached,
                seconds_to,
                diverged,
            )
        )
    header = f"run,final_loss,final_val_loss,{metric_key},epochs,epochs_to_target,seconds_to_target,diverged"
    csv_lines = [header] + [
        ",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in r) for r in rows
    ]
    run.write_bytes("compare.csv", ("\n".join(csv_lines) + "\n").encode())
    long = ["run,epoch,loss,val_loss,time"]
    for name, h in hists.items():
        for i, loss in enumerate(h["loss"]):
            cells = [h.get(k, [None] * (i + 1))[i] for k in ("val_loss", "time")]
            long.append(",".join([name, str(i + 1), repr(loss)] + ["" if c is None else repr(c) for c in cells]))
    run.write_bytes("histories.csv", ("\n".join(long) + "\n").encode())
    try:
        from .viz.curves import plot_compare

        plot_compare(histories, target=target or None, save_path=run.staging / "compare.png")
    except ImportError as exc:
        print(f"downslope: plot skipped ({exc})", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    if target:
        print(f"target loss {target:.4g} ({target_origin})")
    metric_label = "test accuracy" if data.task == "classification" else "test R^2"
    labels = [
        f"final loss ({loss_unit})",
        f"val loss ({loss_unit})",
        metric_label,
        "epochs",
        "to target (epochs)",
        "to target (s)",
        "diverged",
    ]
    widths = [max(len(label), 8) for label in labels]
    print(f"{'run':<{width}}  " + "  ".join(f"{label:>{w}}" for label, w in zip(labels, widths)))
    for r in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v) for v in r[1:7]]
        cells.append("yes" if r[7] else "no")
        print(f"{r[0]:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print(
        "diverged: the training loop's divergence guard stopped the run (loss NaN/inf, or 100x above its best, "
        "the first batch's loss included)"
    )
    return out


def cmd_landscape(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .experiment import CHOICES
    from .viz import landscape

    names = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    for n in names:
        if n not in CHOICES["optimizer"]:
            raise ConfigError(f"unknown optimizer {n!r}; choose one of: {', '.join(CHOICES['optimizer'])}")
    start = None
    if args.start:
        try:
            start = tuple(float(v) for v in args.start.split(","))
        except ValueError:
            raise ConfigError(f"--start expects two numbers 'x,y', got {args.start!r}") from None
        if len(start) != 2:
            raise ConfigError(f"--start expects two numbers 'x,y', got {args.start!r}")
        if not all(math.isfinite(v) and abs(v) <= 1e150 for v in start):
            raise ConfigError(f"--start expects two finite numbers of magnitude <= 1e150, got {args.start!r}")
    from . import runs
    from .viz.testfunctions import get_surface

    get_surface(args.function)  # an unknown name is refused before any directory is made

    # named like every run directory: unique, reserved before the work, published complete
    run = runs.reserve(
        Path(args.out) if args.out else None,
        parent="runs",
        stem=f"landscape-{args.function}",
        overwrite=args.overwrite,
    )
    try:
        written = landscape.run_landscape(
            args.function, names, lr=args.lr or None, steps=args.steps, start=start, out_dir=run.staging, gif=args.gif
        )
        run.publish(runs.COMPLETE)
    except BaseException:
        run.discard()
        raise
    written = [line.replace(str(run.staging), str(run.final)) for line in written]
    for line in written:
        print(line)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from . import backend, runs
    from .distributed import refuse_multi_process
    from .experiment import (
        batch_size_of,
        build_loss,
        build_model,
        build_optimizer,
        model_targets,
        prepare,
        training_data,
    )
    from .train import lr_find

    refuse_multi_process("downslope lr-find")  # no data-parallel form: one line under mpiexec
    cfg = _config_from_args(args)
    # reserved before the sweep, like every run directory: a taken --out is refused before any work
    run = runs.reserve(
        Path(cfg["out"]) if cfg["out"] else None,
        parent="runs",
        stem=_default_stem(cfg, "lr-find-"),
        overwrite=args.overwrite,
    )
    try:
        backend.manual_seed(cfg["seed"])
        data = prepare(cfg)
        model = build_model(cfg, data.n_features, data.n_outputs, data.image_shape)
        optimizer = build_optimizer(cfg, model.parameters())
        result = lr_find(
            model,
            build_loss(cfg, data.task),
            optimizer,
            training_data(data.X_train, model_targets(data.y_train, data.preprocess)),
            start_lr=args.start_lr,
            end_lr=args.end_lr,
            num_iter=args.num_iter,
            batch_size=batch_size_of(cfg) or 64,
        )
        try:
            run.write_bytes("lr_find.png", _lr_find_png(result, cfg))
        except ImportError as exc:  # pragma: no cover - matplotlib missing
            print(f"downslope: plot skipped ({exc})", file=sys.stderr)
        run.publish(runs.COMPLETE)
    except BaseException:
        run.discard()
        raise
    if result.suggestion is None:
        print("no suggestion: the sweep was too short to judge (raise --num-iter)")
    else:
        print(f"suggested learning rate: {result.suggestion:.3g} (steepest descent of the smoothed loss)")
    print(f"written: {run.final}/lr_find.png")
    return 0


def _lr_find_png(result: Any, cfg: dict[str, Any]) -> bytes:
    """The range test's plot (:func:`_lr_find_axes`) as PNG bytes."""
    import io

    ax = _lr_find_axes(result, cfg)
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def _lr_find_axes(result: Any, cfg: dict[str, Any]) -> Any:
    """The range test's plot: titled, loss on a log axis clipped above the losses up to the lowest one,
    so the final divergence spike does not flatten the part of the curve that matters."""
    import numpy as np
    from matplotlib.figure import Figure

    ax = Figure(figsize=(6, 4)).add_subplot()
    result.plot(ax=ax)
    losses = np.asarray(result.losses, dtype=np.float64)
    finite = losses[np.isfinite(losses) & (losses > 0)]
    if len(finite):
        lowest = int(np.nanargmin(np.where(np.isfinite(losses) & (losses > 0), losses, np.inf)))
        before = losses[: lowest + 1]
        top = float(np.nanmax(before[np.isfinite(before)])) * 1.5
        ax.set_yscale("log")
        ax.set_ylim(float(finite.min()) / 1.5, top)
    ax.set_ylabel("smoothed loss (log scale)")
    ax.set_title(f"learning-rate range test: {Path(str(cfg['data'])).stem}, {cfg['optimizer']}")
    return ax


def cmd_export(args: argparse.Namespace) -> int:
    from .export.run import export_run

    for line in export_run(args.run, onnx_path=args.onnx, safetensors_path=args.safetensors):
        print(line)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "compare": cmd_compare,
    "landscape": cmd_landscape,
    "lr-find": cmd_lr_find,
    "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose help lists the valid flags
        where = args._subparsers.get(args.command, parser) if args.command else parser
        where.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from . import __version__

        print(f"downslope {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    from .errors import DownslopeError

    try:
        return COMMANDS[args.command](args)
    except (DownslopeError, ValueError, OSError) as exc:  # bad input or an unwritable/unreadable path
        print(f"downslope {args.command}: error: {exc}", file=sys.stderr)
        _end_mpi_job(2)
        return 2
    except KeyboardInterrupt:
        print(f"downslope {args.command}: interrupted", file=sys.stderr)
        _end_mpi_job(130)
        return 130


def _end_mpi_job(code: int) -> None:
    """Under mpiexec, a rank that stops with an error ends every rank (the others would wait for it
    in a collective forever); nothing happens in a plain process."""
    from .distributed import end_job_on_error

    end_job_on_error(code)
