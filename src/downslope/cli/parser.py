"""The ``downslope`` command line: its parser, flags and help texts."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

EXAMPLES = """examples:
  downslope train                                   digits classification with an MLP (< 1 minute)
  downslope train --data moons --hidden 32,32 --optimizer sgd --lr 0.1 --batch-size full
  downslope train --data my.csv --target price --epochs 200 --patience 20
  downslope train --config run.toml --lr 0.01       a config file, with a flag overriding it
  downslope compare --optimizers sgd,momentum,rmsprop,adam --lrs 0.01,0.1
  downslope landscape --function rosenbrock --optimizers sgd,momentum,adam
  downslope lr-find --data digits
  downslope evaluate runs/<run>                     <run>: the directory train printed
  downslope predict runs/<run> --data new.csv --out preds.csv
  downslope export runs/<run> --onnx digits.onnx --safetensors digits.safetensors
"""


TRAIN_EPILOG = """run directory:
  The run is written in runs/.<name>.partial/ (status.json says "running"; checkpoint.ckpt is
  rewritten at most every --checkpoint-seconds, and after the epoch where training stops) and appears as runs/<name>/ in one rename once every file is written
  (status.json then says "complete" or "diverged"). A killed or interrupted run stays in the
  .partial directory: 'downslope train --resume runs/<name>' continues it exactly where it stopped.

exit status:
  0    the run is complete
  2    bad input, or the run directory cannot be written (found before training starts)
  3    training diverged (loss NaN/inf or exploding); the run directory and its report are kept
  130  interrupted (Ctrl-C/SIGTERM); the run is kept, resumable with --resume (one interrupted
       before its first epoch finished is discarded: nothing to resume)
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
    g.add_argument(
        "--checkpoint-seconds",
        metavar="S",
        type=float,
        help="write the run's checkpoint.ckpt (what --resume continues from) at most every this many seconds, and "
        "always after the epoch where training stops (its last, early stopping, a signal); 0 = after every epoch "
        "[30]. A kill -9 loses at most the epochs of the last S seconds: --resume continues from the last epoch "
        "saved, and the result is the same as an uninterrupted run's",
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
    from ..data.tabular import TASK_RULE
    from ..experiment import CHOICES

    g = p.add_argument_group("data")
    g.add_argument("--config", help="TOML file of settings (flags given here override it)")
    g.add_argument(
        "--data",
        help="dataset name (digits, iris, wine, breast_cancer, diabetes, line, polynomial, moons, circles, spirals, blobs, xor) or a .csv/.parquet/.npz/.npy file (a big .npy is memory-mapped; install downslope[fast] for fast CSV and Parquet) [digits]",
    )
    g.add_argument("--target", help="target column of a CSV, one column (default: the last column)")
    g.add_argument(
        "--task",
        choices=CHOICES["task"],
        help=f"classification or regression [auto: inferred from a file's labels: {TASK_RULE}]",
    )
    g.add_argument(
        "--missing",
        choices=CHOICES["missing"],
        help="missing values in a file (empty, NA, nan, ?): error, drop the rows, or fill them with the training "
        "split's mean/median/most_frequent (text columns: always their most frequent category, with a note naming "
        "them), or constant: scikit-learn SimpleImputer's defaults, 0 for numbers and the category "
        "'missing_value' for text (blanks become a category of their own); kept for predict [error]",
    )
    g.add_argument("--drop", help="CSV columns to leave out, e.g. id,name")
    g.add_argument(
        "--categorical",
        help="CSV columns to one-hot encode as categories whatever they hold, e.g. zip,store_id (kept for predict)",
    )
    g.add_argument(
        "--numeric",
        help="CSV columns to read as numbers although they hold digit codes with leading zeros (02134), e.g. zip",
    )
    g.add_argument("--sep", help="CSV field separator: one character such as ';' or '|', or 'tab' [,; tab for .tsv]")
    g.add_argument(
        "--decimal",
        help="CSV numbers' decimal mark, '.' or ',' (2,75 with --sep ';'); kept for predict [.] (a column whose "
        "numbers all use a decimal comma, in a ';'-separated file, is found without it)",
    )
    g.add_argument(
        "--thousands",
        help="CSV numbers' thousands separator: ',', '.', ' ', \"'\" or '_' (\"1,200\"); kept for predict [none] (a "
        "column whose numbers are all grouped like 1,200 is found without it)",
    )
    g.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        help="the CSV has no header row: its first line is data and the columns are named col_0, col_1, ... "
        "(pandas' header=None numbers them 0, 1, ...); --target col_3 names one [the first line names the columns]",
    )
    g.add_argument(
        "--na-values",
        metavar="CELLS",
        help="the cells read as missing values, comma-separated, replacing the defaults (NA, N/A, null, nan, ?, "
        "none, ... in any case); --na-values '' leaves only empty cells missing, so a country code NA (Namibia) "
        "stays a value (pandas' na_values with keep_default_na=False); kept for predict [the defaults]",
    )
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
    g.add_argument(
        "--class-weight",
        choices=CHOICES["class_weight"],
        help="classification: 'balanced' weights each class in the loss by n_samples / (n_classes * its count) "
        "on the training split (scikit-learn's class_weight='balanced'), for rare classes [none]",
    )
    g.add_argument(
        "--merge-label-variants",
        action="store_const",
        const=True,
        help="classification: labels that differ only in case or surrounding spaces (yes, 'Yes ', YES) are one "
        "class, named by its most frequent spelling; new data's labels are compared the same way [off]",
    )
    g.add_argument("--test-split", type=float, help="fraction held out for the final test [0.2]")
    g.add_argument("--val-split", type=float, help="fraction used for validation [0.15]")
    g.add_argument(
        "--split",
        choices=CHOICES["split"],
        help="how rows are split: random (shuffled, seeded; stratified for classes) or ordered (file order: the "
        "last rows are the test rows, the ones before them validation; for time-ordered data) [random]",
    )
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
    g.add_argument(
        "--optimizer",
        help=f"one of {', '.join(CHOICES['optimizer'])} [adam]; gd is full-batch gradient descent unless "
        "--batch-size is given",
    )
    g.add_argument("--lr", type=float, help="learning rate [the optimizer's default; 0.01 for sgd]")
    g.add_argument("--momentum", type=float, help="momentum for sgd/rmsprop [0; 0.9 for 'momentum']")
    g.add_argument("--weight-decay", type=float, help="weight decay [0]")
    g.add_argument("--clip-norm", type=float, help="clip the gradient's global norm [off]")
    g.add_argument("--schedule", help=f"learning-rate schedule: {', '.join(CHOICES['schedule'])} [none]")
    g.add_argument(
        "--batch-size", help="'full' = full-batch GD, 1 = stochastic GD, N = mini-batch [64; full for --optimizer gd]"
    )
    g.add_argument("--epochs", type=int, help="maximum number of epochs [100]")
    g.add_argument(
        "--patience",
        type=int,
        help="early-stopping patience in epochs, 0 = off [10; off for --schedule onecycle or cosine, shaped over "
        "all the epochs]; it also restores the best epoch's weights at the "
        "end (the model saved is the best validation loss's, even when the run reaches --epochs); 0 keeps the "
        "last epoch's",
    )
    g.add_argument("--target-loss", type=float, help="stop once the (validation) loss is at or below this")
    g.add_argument("--max-time", type=float, help="stop after this many seconds")
    g.add_argument("--seed", type=int, help="one seed for splits, initialization, shuffling and dropout [0]")
    _add_device_flag(
        g,
        'where to train: cpu, cuda (a GPU through CuPy; needs pip install "downslope[cuda]") or auto '
        "(cuda when a GPU is usable, else cpu); cuda:N picks GPU N [cpu]",
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", help="run directory, refused if it exists and is not empty [runs/<data>-<optimizer>-<time>-<id>]"
    )
    g.add_argument(
        "--quiet",
        dest="verbose",
        action="store_const",
        const=0,
        help="no progress output (per-epoch lines, notes); warnings about the data or the training still go to stderr",
    )


def _add_device_flag(g: Any, text: str) -> None:
    """``--device``: checked when the command runs (cuda needs CuPy and a GPU), so any name parses here."""
    g.add_argument("--device", metavar="{cpu,cuda,auto}", help=text)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``downslope`` parser: global flags and one subparser per command."""
    parser = _Parser(
        prog="downslope",
        description="Train neural networks by gradient descent and see what the optimizer does.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(_subparsers=sub.choices)
    for add in (
        _add_train_command,
        _add_evaluate_command,
        _add_predict_command,
        _add_compare_command,
        _add_landscape_command,
        _add_lr_find_command,
        _add_export_command,
        _add_runs_command,
    ):
        add(sub)
    return parser


def _add_train_command(sub: Any) -> None:
    """``train``: the training flags and the run-directory flags."""
    p = sub.add_parser(
        "train",
        help="train a model and write a run directory with a report",
        description="Train a model from a dataset or file; write config, history, metrics, checkpoint, plots and report.html.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_training_flags(p)
    _add_run_flags(p)


def _add_evaluate_command(sub: Any) -> None:
    """``evaluate RUN``: scores a run on its test split or on --data."""
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
    _add_new_file_format_flags(p)
    _add_unknown_categories_flag(p)
    _add_device_flag(p, "where to compute: cpu, cuda or auto (the run is loaded on the CPU) [cpu]")


def _add_new_file_format_flags(p: Any) -> None:
    """How the ``--data`` of predict/evaluate is written, when not as the training file was."""
    p.add_argument("--sep", help="CSV field separator of --data (default: the training file's)")
    p.add_argument(
        "--decimal",
        help="decimal mark of --data's numbers, '.' or ',', when it differs from the training file's (the "
        "thousands separator is then none unless --thousands is given) [the training file's]",
    )
    p.add_argument(
        "--thousands",
        help="thousands separator of --data's numbers: ',', '.', ' ', \"'\", '_' or none, when it differs from "
        "the training file's (the decimal mark is then '.' unless --decimal is given) [the training file's]",
    )
    p.add_argument(
        "--na-values",
        metavar="CELLS",
        help="the cells of --data read as missing values, comma-separated ('' : only empty cells), when they "
        "differ from the run's (train's --na-values) [the run's]",
    )


def _add_unknown_categories_flag(p: Any) -> None:
    p.add_argument(
        "--unknown-categories",
        choices=["error", "ignore"],
        default="error",
        help="a category of a text column that training did not see: refuse the file (error), or encode it as "
        "all zeros in its column's one-hot block, as the run's own test metrics count one (ignore) [error]",
    )


def _add_predict_command(sub: Any) -> None:
    """``predict RUN``: writes a run's predictions for a file."""
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
    p.add_argument(
        "--out", required=True, help="where to write the predictions CSV (- writes it to the standard output)"
    )
    _add_new_file_format_flags(p)
    p.add_argument(
        "--id",
        metavar="COLUMN",
        help="a column of the --data CSV written as the predictions' first column, e.g. --id PassengerId for a "
        "Kaggle submission (the column need not be one the model uses)",
    )
    _add_unknown_categories_flag(p)
    _add_device_flag(p, "where to compute: cpu, cuda or auto (the run is loaded on the CPU) [cpu]")


def _add_compare_command(sub: Any) -> None:
    """``compare``: the training flags and the grid of optimizers, rates and batch sizes."""
    from ..experiment import CHOICES

    p = sub.add_parser(
        "compare",
        help="the same task and initialization trained with several optimizers, learning rates or batch sizes",
        description="Train every combination of --optimizers x --lrs x --batch-sizes on the same data, split, "
        "initial weights and seed. Writes compare.png (losses against epoch and against wall time), "
        "compare.csv (final metrics, epochs and seconds to --target-loss, diverged) and histories.csv. "
        "Without --target-loss the target is the largest of the runs' best validation losses (every run "
        "that did not diverge or stay at chance level reaches it; the table says how fast). Run names carry the learning rate used.",
    )
    _add_training_flags(p)
    for action in p._actions:  # compare trains every run to the end and measures the time to this loss
        if action.dest == "target_loss":
            action.help = "the validation loss each run's time to reach is measured against (runs do not stop there)"
    p.add_argument(
        "--optimizers", help=f"comma-separated, from: {', '.join(CHOICES['optimizer'])} [sgd,momentum,rmsprop,adam]"
    )
    p.add_argument("--lrs", help="comma-separated learning rates (each optimizer runs with each)")
    p.add_argument(
        "--batch-sizes",
        help="comma-separated batch sizes, e.g. full,32,1 [--batch-size; full for gd, 64 for the others]",
    )
    _add_overwrite_flag(p)


def _add_landscape_command(sub: Any) -> None:
    """``landscape``: optimizers racing on a 2-D test function."""
    from ..experiment import CHOICES
    from ..viz.testfunctions import SURFACES

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
    p.add_argument("--lr", type=float, default=None, help="one learning rate for all (default: a per-optimizer choice)")
    p.add_argument(
        "--momentum", type=float, default=None, help="the heavy-ball coefficient of momentum and nesterov [0.9]"
    )
    p.add_argument(
        "--kappa",
        type=float,
        default=None,
        help="with --function quadratic: the bowl (x² + kappa y²)/2 of condition number kappa [20]",
    )
    p.add_argument("--steps", type=int, default=300, help="number of steps [300]")
    p.add_argument("--start", help="start point x,y (default: the function's)")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF")
    p.add_argument(
        "--out", default="", help="output directory, refused if not empty [runs/landscape-<function>-<time>-<id>]"
    )
    _add_overwrite_flag(p)


def _add_lr_find_command(sub: Any) -> None:
    """``lr-find``: the learning-rate range test."""
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


def _add_runs_command(sub: Any) -> None:
    """``runs [DIR]``: the runs in a directory, with their status and test metrics."""
    p = sub.add_parser(
        "runs",
        help="list the runs in a directory: status (complete, diverged, stopped, live, broken) and test metrics",
        description="List the runs in DIR: published ones (complete or diverged, with their test metrics), "
        "stopped ones ('downslope train --resume' continues them), live ones (being trained now) and broken ones.",
    )
    p.add_argument("directory", nargs="?", default="runs", metavar="DIR", help="where the runs are [runs]")


def _add_export_command(sub: Any) -> None:
    """``export RUN``: ONNX and/or safetensors."""
    p = sub.add_parser(
        "export",
        help="a trained run as ONNX (with its preprocessing) and/or safetensors weights",
        description="Write RUN as an ONNX graph that takes the raw feature columns and returns predictions in the "
        "data's own units (needs the onnx extra), and/or its weights as safetensors under PyTorch's names.",
    )
    p.add_argument("run", help="run directory written by 'downslope train'")
    p.add_argument("--onnx", metavar="PATH", help="where to write the ONNX model")
    p.add_argument("--safetensors", metavar="PATH", help="where to write the weights")
