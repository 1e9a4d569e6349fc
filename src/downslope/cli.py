"""The ``downslope`` command: train, evaluate, predict, compare, landscape, lr-find.

Every subcommand prints one clear line and exits with status 2 on bad input (unknown names list the
valid ones; missing or malformed files say where), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
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
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong and where to read more), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    from .experiment import CHOICES

    g = p.add_argument_group("data")
    g.add_argument("--config", help="TOML file of settings (flags given here override it)")
    g.add_argument(
        "--data",
        help="dataset name (digits, iris, wine, breast_cancer, diabetes, line, polynomial, moons, circles, spirals, blobs, xor) or a .csv/.npz/.npy file [digits]",
    )
    g.add_argument("--target", help="target column of a CSV (default: the last column)")
    g.add_argument("--task", choices=CHOICES["task"], help="classification or regression (default: inferred)")
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
    g.add_argument("--out", help="run directory [runs/<data>-<optimizer>-<time>]")
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
    )
    _add_training_flags(p)
    p = sub.add_parser(
        "evaluate",
        help="metrics of a trained run on a dataset or file",
        description="Load RUN/model.ds and print its metrics as one JSON line, on --data or on the run's own test split.",
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
        "--data", required=True, help="input file (a CSV with the training columns; the target column may be absent)"
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
    p.add_argument("--out", default="", help="output directory [runs/landscape-<function>]")
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


def _default_out(cfg: dict[str, Any], kind: str = "", with_optimizer: bool = True) -> Path:
    stem = Path(cfg["data"]).stem + (f"-{cfg['optimizer']}" if with_optimizer else "")
    return Path("runs") / f"{kind}{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _in_data_units(data: Any, model: Any) -> tuple[Any, Any]:
    """The training inputs in the data's own units and the model as a function of them: the model
    was trained on standardized inputs, but a learner wants the fitted line over the raw x axis."""
    state = data.preprocess.get("standardizer")
    if not state:
        return data.X_train, model
    mean, scale = state["mean"], state["scale"]
    return data.X_train * scale + mean, lambda x: model((x - mean) / scale)


def _plots(result: Any, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Draw the run's pictures; return them and notes on any that could not be drawn."""
    notes: list[str] = []
    figures: dict[str, Path] = {}
    try:
        from .viz import curves
    except ImportError as exc:  # pragma: no cover - matplotlib missing
        return figures, [f"plots skipped: {exc}"]
    try:
        figures["Loss and metrics"] = out / "curves.png"
        curves.plot_loss_curves(result.history, save_path=figures["Loss and metrics"])
        hist = result.history.as_dict()
        if len(set(hist.get("lr") or [])) > 1:  # a constant rate needs no picture
            figures["Learning rate"] = out / "lr.png"
            curves.plot_learning_rate(result.history, save_path=figures["Learning rate"])
        if result.gradients is not None and result.gradients.history:
            figures["Gradient norm per layer"] = out / "grad_norms.png"
            curves.plot_gradient_norms(result.gradients, x_label="epoch", save_path=figures["Gradient norm per layer"])
        data = result.data
        if data.task == "regression" and data.n_features == 1:
            from .viz import regression

            figures["Fitted line"] = out / "fit.png"
            x_raw, model_raw = _in_data_units(data, result.model)
            x_label = data.feature_names[0] if data.feature_names else "x"
            regression.plot_regression(
                model_raw, x_raw, data.y_train, x_label=x_label, save_path=figures["Fitted line"]
            )
        elif data.task == "classification" and data.n_features == 2:
            from .viz import boundary

            figures["Decision boundary"] = out / "boundary.png"
            boundary.plot_decision_boundary(
                result.model, data.X_train, data.y_train, save_path=figures["Decision boundary"]
            )
    except ImportError as exc:
        notes.append(f"some plots skipped: {exc}")
    return {k: v for k, v in figures.items() if v.exists()}, notes


def _write_run(result: Any, out: Path) -> None:
    from . import serialization
    from .experiment import to_toml

    out.mkdir(parents=True, exist_ok=True)
    serialization.atomic_write_bytes(out / "config.toml", to_toml(result.cfg).encode())
    result.history.to_csv(out / "history.csv")
    metrics = dict(result.metrics, stop_reason=result.stop_reason)
    serialization.atomic_write_bytes(out / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
    data = result.data
    serialization.save(
        {
            "model": result.model.state_dict(),
            "config": result.cfg,
            "task": data.task,
            "n_features": data.n_features,
            "n_outputs": data.n_outputs,
            "image_shape": list(data.image_shape) if data.image_shape else None,
            "class_names": data.class_names,
            "feature_names": data.feature_names,
            "preprocess": data.preprocess,
        },
        out / "model.ds",
    )
    figures, notes = _plots(result, out)
    try:
        from .viz.report import write_report

        write_report(
            out / "report.html",
            config=result.cfg,
            history=result.history,
            metrics=metrics,
            stop_reason=result.stop_reason,
            figures=figures,
            diagnostics=result.diagnostics + notes,
        )
    except ImportError as exc:
        print(f"downslope: report skipped ({exc})", file=sys.stderr)


def _load_run(run: str) -> tuple[Any, dict[str, Any]]:
    from . import serialization
    from .checkpoint_checks import check_run_state
    from .errors import ConfigError
    from .experiment import build_model

    path = Path(run) / "model.ds"
    if not path.is_file():
        raise ConfigError(f"{run}: not a run directory (no model.ds); train one with 'downslope train --out {run}'")
    state = serialization.load(path)
    check_run_state(state, str(path))  # config and array shapes agree before any layer is allocated
    cfg = state["config"]
    shape = tuple(state["image_shape"]) if state["image_shape"] else None
    model = build_model(cfg, state["n_features"], state["n_outputs"], shape)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def _features_for(state: dict[str, Any], data: str, target: str | None, need_target: bool) -> tuple[Any, Any]:
    """Features (preprocessed like training) and targets (or None) of a file or named dataset."""
    import numpy as np

    from .data.tabular import TabularEncoder, read_arrays, read_rows
    from .errors import DataError
    from .experiment import apply_preprocess, load_table

    pre = state["preprocess"]
    if pre.get("encoder") and data.lower().endswith(".csv"):
        encoder = TabularEncoder.from_state_dict(pre["encoder"])
        header, rows = read_rows(data)
        X = encoder.encode_features(header, rows, data)
        y = None
        if encoder.target in header:
            j = header.index(encoder.target)
            y = encoder.encode_target([r[j] for r in rows], data, j)
        elif need_target:
            raise DataError(f"{data}: no target column {encoder.target!r} to evaluate against")
    elif data.lower().endswith((".npz", ".npy")):
        table = read_arrays(data)
        X, y = table.X, table.y
    else:
        cfg = dict(state["config"], data=data, target=target or state["config"]["target"])
        table, _ = load_table(cfg)
        X, y = table.X, table.y
    if X.shape[1] != state["n_features"]:
        raise DataError(f"{data}: {X.shape[1]} features, but the model was trained on {state['n_features']}")
    return apply_preprocess(np.asarray(X), pre), y


# ---------------------------------------------------------------------- subcommands
def cmd_train(args: argparse.Namespace) -> int:
    from .experiment import run_training

    cfg = _config_from_args(args)
    out = Path(cfg["out"]) if cfg["out"] else _default_out(cfg)
    cfg["out"] = str(out)
    result = run_training(cfg)
    from .distributed import launched_size

    if (launched_size() or 1) > 1:
        from .distributed import is_main

        if not is_main():
            return 0  # under mpiexec only rank 0 writes the run and reports
    _write_run(result, out)
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.metrics.items()}
    print(f"stopped: {result.stop_reason}")
    print("test metrics: " + ", ".join(f"{k}={v}" for k, v in shown.items() if k.startswith("test_")))
    print(f"run written to {out}/ (report.html, metrics.json, history.csv, model.ds, config.toml)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .experiment import Prepared, prepare, test_metrics

    model, state = _load_run(args.run)
    if args.data:
        X, y = _features_for(state, args.data, args.target, need_target=True)
    else:
        data = prepare(state["config"])
        X, y = data.X_test, data.y_test
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
    )
    metrics = test_metrics(model, info, X, y)
    print(json.dumps({k: round(v, 6) for k, v in metrics.items()}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .serialization import atomic_write_bytes
    from .train import predict

    model, state = _load_run(args.run)
    X, _ = _features_for(state, args.data, None, need_target=False)
    out = predict(model, X)
    preds = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    lines = []
    if state["task"] == "classification":
        names = state["class_names"] or [str(i) for i in range(state["n_outputs"])]
        shifted = preds - preds.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        lines.append(",".join(["prediction"] + [f"p_{n}" for n in names]))
        for row, p in zip(preds.argmax(axis=1), probs):
            lines.append(",".join([names[row]] + [f"{v:.6g}" for v in p]))
    else:
        cols = preds.reshape(len(preds), -1)
        lines.append(
            ",".join(["prediction"] if cols.shape[1] == 1 else [f"prediction_{i}" for i in range(cols.shape[1])])
        )
        lines += [",".join(f"{v:.6g}" for v in r) for r in cols]
    atomic_write_bytes(args.out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {len(preds)} predictions to {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .distributed import refuse_multi_process
    from .errors import ConfigError
    from .experiment import build_model, normalize_config, prepare, run_training
    from .serialization import atomic_write_bytes

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
    out = Path(base["out"]) if base["out"] else _default_out(base, "compare-", with_optimizer=False)
    data = prepare(base)
    from . import backend

    backend.manual_seed(base["seed"])
    init = build_model(base, data.n_features, data.n_outputs, data.image_shape).state_dict()  # one init for all runs
    results = []
    for name, cfg in plan:
        result = run_training(dict(cfg, verbose=0), data=data, initial_state=init)  # one table, not N logs
        results.append((name, result))
        if base["verbose"]:
            for note in result.diagnostics:
                print(f"{name}: warning: {note}")
    runs = {name: result.history for name, result in results}
    hists = {name: history.as_dict() for name, history in runs.items()}
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
        diverged = "diverg" in result.stop_reason.lower() or "nan" in result.stop_reason.lower()
        metric = next((v for k, v in result.metrics.items() if k.startswith("test_")), None)
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
    out.mkdir(parents=True, exist_ok=True)
    header = "run,final_loss,final_val_loss,test_metric,epochs,epochs_to_target,seconds_to_target,diverged"
    csv_lines = [header] + [
        ",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in r) for r in rows
    ]
    atomic_write_bytes(out / "compare.csv", ("\n".join(csv_lines) + "\n").encode())
    long = ["run,epoch,loss,val_loss,time"]
    for name, h in hists.items():
        for i, loss in enumerate(h["loss"]):
            cells = [h.get(k, [None] * (i + 1))[i] for k in ("val_loss", "time")]
            long.append(",".join([name, str(i + 1), repr(loss)] + ["" if c is None else repr(c) for c in cells]))
    atomic_write_bytes(out / "histories.csv", ("\n".join(long) + "\n").encode())
    try:
        from .viz.curves import plot_compare

        plot_compare(runs, target=target or None, save_path=out / "compare.png")
    except ImportError as exc:
        print(f"downslope: plot skipped ({exc})", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    if target:
        print(f"target loss {target:.4g} ({target_origin})")
    print(f"{'run':<{width}}  final loss  val loss  test metric  epochs  to target  seconds  diverged")
    for r in rows:
        fmt = lambda v, w: f"{v:>{w}.4g}" if isinstance(v, float) else f"{'-' if v is None else v!s:>{w}}"  # noqa: E731
        print(
            f"{r[0]:<{width}}  {fmt(r[1], 10)}  {fmt(r[2], 8)}  {fmt(r[3], 11)}  {fmt(r[4], 6)}  {fmt(r[5], 9)}  {fmt(r[6], 7)}  {'yes' if r[7] else 'no':>8}"
        )
    print(f"written: {out}/compare.csv, {out}/histories.csv, {out}/compare.png")
    return 0


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
    out = Path(args.out) if args.out else Path("runs") / f"landscape-{args.function}"
    out.mkdir(parents=True, exist_ok=True)
    written = landscape.run_landscape(
        args.function, names, lr=args.lr or None, steps=args.steps, start=start, out_dir=out, gif=args.gif
    )
    for line in written:
        print(line)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from . import backend
    from .distributed import refuse_multi_process
    from .experiment import batch_size_of, build_loss, build_model, build_optimizer, prepare
    from .train import lr_find

    refuse_multi_process("downslope lr-find")  # no data-parallel form: one line under mpiexec
    cfg = _config_from_args(args)
    backend.manual_seed(cfg["seed"])
    data = prepare(cfg)
    model = build_model(cfg, data.n_features, data.n_outputs, data.image_shape)
    optimizer = build_optimizer(cfg, model.parameters())
    result = lr_find(
        model,
        build_loss(cfg, data.task),
        optimizer,
        (data.X_train, data.y_train),
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        num_iter=args.num_iter,
        batch_size=batch_size_of(cfg) or 64,
    )
    out = Path(cfg["out"]) if cfg["out"] else _default_out(cfg, "lr-find-")
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(result, "plot"):
        result.plot(save_path=out / "lr_find.png")
    print(f"suggested learning rate: {result.suggestion:.3g} (steepest descent of the smoothed loss)")
    print(f"written: {out}/lr_find.png")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "compare": cmd_compare,
    "landscape": cmd_landscape,
    "lr-find": cmd_lr_find,
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
