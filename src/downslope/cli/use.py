"""Using trained runs: ``downslope evaluate``, ``predict``, ``export`` and ``runs`` (listing them)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from .features import _raw_features


def _placed(model: object, args: argparse.Namespace) -> None:
    """Moves a run's model (loaded on the CPU) to ``--device`` when one is given."""
    if getattr(args, "device", None) is None:
        return
    from ..experiment import normalize_config
    from ..experiment.config import resolve_run_device

    device = resolve_run_device(normalize_config({"device": args.device}, "--device")["device"])
    if device != "cpu":
        model.to(device)  # type: ignore[attr-defined]


def _check_evaluate_target(state: dict[str, Any], target: str | None) -> None:
    """--target names the column holding the values of what the run predicts, under whatever name the
    file gives it; a column the model reads as a feature cannot be that, and another name gets a note."""
    encoder = (state.get("preprocess") or {}).get("encoder")
    if not target or not encoder or target == encoder["target"]:
        return
    from ..errors import ConfigError

    if target in encoder["columns"]:
        raise ConfigError(
            f"evaluate: --target {target!r} is one of the model's input columns; the run predicts "
            f"{encoder['target']!r}, so name the column holding those values (or leave --target out)"
        )
    print(
        f"evaluate: note: scoring the run's predictions of {encoder['target']!r} against column {target!r}",
        file=sys.stderr,
    )


def _say(command: str) -> Any:
    """A note of ``command`` on the standard error, one line (what load_run says of an older run)."""
    return lambda message: print(f"{command}: {message}", file=sys.stderr)


def check_run_exists(run: str) -> None:
    """Refuse a run name naming nothing (a typo) in those words, before the run directory checks (whose
    'not a run directory' reads as if something were there)."""
    from ..errors import ConfigError
    from ..runs import staging_path

    path = Path(run)
    if not path.exists() and not staging_path(path).exists():
        raise ConfigError(f"{run}: no such directory; give the directory of a trained run (e.g. runs/NAME)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics of a run on its own test split (the default) or on --data, in the data's units."""
    import numpy as np

    from ..distributed import refuse_multi_process
    from ..errors import ConfigError, DataError
    from ..experiment import Prepared, apply_preprocess, row_hashes, score_model
    from ..runs import load_run

    refuse_multi_process("downslope evaluate")  # under mpiexec every rank would print the metrics
    check_run_exists(args.run)
    model, state = load_run(args.run, note=_say(args.command))
    _placed(model, args)
    if args.data:  # (the run's own test split is read as training read it)
        state = _with_na_values(state, args, "evaluate")
    elif getattr(args, "na_values", None) is not None:
        raise ConfigError(
            "evaluate: --na-values says which cells of the --data file are missing; the run's own test split is "
            "read as training read it (leave it out, or give --data)"
        )
    split = state.get("split") or {}
    source = str(state["config"]["data"])
    number_format = _new_file_rule(args, "evaluate")
    if args.data:
        _check_evaluate_target(state, args.target)
    elif number_format is not None or args.sep:
        raise ConfigError(
            "evaluate: --sep/--decimal/--thousands say how the --data file is written; the run's own test split "
            "is read as training read it (leave them out, or give --data)"
        )
    trained_file = bool(args.data) and _trained_file_given(args.run, args.data)
    if trained_file:  # --data names the very file the run trained on: its test split, not every row
        print(
            f"evaluate: {args.data} is the file {args.run} trained on (same SHA-256): scoring the run's test split "
            "of it",
            file=sys.stderr,
        )
        source = args.data
    elif not args.data:
        source = _training_file(args.run, state)
    else:
        check_header_row(state, args.data, args.sep)
    if not args.data or trained_file:
        if "test_indices" not in split:
            raise ConfigError(f"{args.run}: the run does not record its test split; name the data with --data")
        # as training scored this split: a category only the test rows hold counts as all zeros (training
        # said how many test rows held one; a count over the whole file here would not be the split's)
        X, y = _raw_features(state, source, None, need_target=True, unknown="ignore", note_unseen=False)
        n = int(split["n_rows"])
        if len(X) != n:
            raise DataError(
                f"{source}: {len(X)} rows now but {n} when {args.run} was trained, so its test split is lost; "
                "score the file as a whole with --data"
            )
        rows = np.asarray(split["test_indices"], dtype=np.int64)
        X, y = X[rows], y[rows]
        how = "ordered split" if split.get("kind") == "ordered" else f"seed {split['seed']}"
        where = f"the run's test split: {len(rows)} of the {n} rows of {source} ({how})"
        print(f"evaluate: {where}", file=sys.stderr)
    else:
        unknown = getattr(args, "unknown_categories", "error")
        X, y = _raw_features(state, args.data, args.target, True, args.sep, unknown, number_format=number_format)
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
    X = apply_preprocess(X, state["preprocess"], source if trained_file or not args.data else args.data)
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
        split=split,
        class_names=list(state.get("class_names") or []),  # they name average_precision's positive class
    )
    metrics = score_model(model, info, X, y)
    if state["task"] == "classification" and "train_class_counts" not in split:
        print(
            "evaluate: note: baseline_accuracy is unavailable: this run does not record its training split's "
            "classes (written by an older downslope); retrain it to have one",
            file=sys.stderr,
        )
    print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()} | {"rows": len(X)}))
    return 0


def _with_na_values(state: dict[str, Any], args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The run's state with ``--na-values`` in place of the run's own markers, when given."""
    given = getattr(args, "na_values", None)
    if given is None:
        return state
    from ..errors import ArgumentError, ConfigError
    from ..experiment.config import na_values

    try:
        cells = na_values(given)
    except ArgumentError as exc:
        raise ConfigError(f"{command}: --na-values: {exc}") from None
    return {**state, "config": {**state["config"], "na_values": cells}}


def _new_file_rule(args: argparse.Namespace, command: str) -> tuple[str, str] | None:
    """``--decimal``/``--thousands`` of a new file checked (None when neither is given)."""
    from ..experiment.features import number_rule

    return number_rule(getattr(args, "decimal", None), getattr(args, "thousands", None), f"{command}: ")


def _fingerprint_record(run: str) -> dict[str, Any] | None:
    """What training recorded of its data file (absolute path, size, SHA-256); None for a built-in
    dataset or a run written before such records."""
    from .. import runs

    record = runs.read_json_file(Path(run) / runs.DATA_FINGERPRINT_FILE)
    if record is None or not isinstance(record.get("path"), str) or not isinstance(record.get("sha256"), str):
        return None
    return record


def _matches(path: str, record: dict[str, Any]) -> bool:
    """Whether the file at ``path`` has the size and SHA-256 training recorded (the size first: cheap)."""
    from .. import runs

    if os.path.getsize(path) != record.get("size"):
        return False
    return bool(runs.data_fingerprint(path)["sha256"] == record["sha256"])


def _trained_file_given(run: str, data: str) -> bool:
    """Whether ``--data`` names a file with the SHA-256 of the one the run trained on (wherever it is now)."""
    record = _fingerprint_record(run)
    return record is not None and os.path.isfile(data) and _matches(data, record)


def _original_place(config_data: str, config_out: Any, trained_on: str, run: str) -> str | None:
    """The data file where it lies relative to the run directory as training placed them (a project copied
    or moved whole: ``data/t.csv`` beside ``runs/x`` stays beside it): None when the config does not tell.

    Example:
        >>> _original_place("data/t.csv", "runs/x", "/old/proj/data/t.csv", "/new/proj/runs/x")
        '/new/proj/data/t.csv'
        >>> _original_place("../t.csv", "runs/x", "/old/t.csv", "/new/proj/runs/x") is None  # not told
        True
    """
    if not config_out:
        return None
    started_in = None  # the directory training ran in: the recorded absolute path, less the relative one
    if os.path.isabs(config_data):  # the directory is not told; an absolute out needs none
        started_in = "/" if os.path.isabs(str(config_out)) else None
    else:
        parts, given = Path(trained_on).parts, Path(os.path.normpath(config_data)).parts
        if ".." not in given and len(parts) > len(given) and parts[-len(given) :] == given:
            started_in = str(Path(*parts[: -len(given)]))
    if started_in is None:
        return None
    run_then = os.path.normpath(os.path.join(started_in, str(config_out)))
    return os.path.normpath(os.path.join(run, os.path.relpath(trained_on, run_then)))


def _training_file(run: str, state: dict[str, Any]) -> str:
    """The data file a run trained on, for scoring its test split: found as training named it (the
    config's path from the current directory), else at the absolute path training recorded, else where
    it lay relative to the run directory when the run was trained; a file found must have the recorded
    SHA-256 (another file's rows would not be the run's split). A built-in dataset's name is returned as is."""
    from ..errors import ConfigError, DataError
    from ..experiment import is_file_source

    config = state["config"]
    data = str(config["data"])
    if not is_file_source(data):
        return data
    record = _fingerprint_record(run)
    if record is None:  # a run written before data records: the config's path, as it names the file
        if not os.path.isfile(data):
            raise ConfigError(
                f"evaluate: {run} trained on {data}, which is not found from here ({os.path.abspath(data)}); run "
                "evaluate from the directory it was trained in (the run, written by an older downslope, does not "
                "record where its file was), or score every row of a file with --data FILE"
            )
        return data
    then = str(record["path"])
    tried = [data, then, _original_place(data, config.get("out"), then, run)]
    candidates = list(dict.fromkeys(os.path.abspath(p) for p in tried if p))
    others = []
    for path in candidates:
        if not os.path.isfile(path):
            continue
        if _matches(path, record):
            return data if path == os.path.abspath(data) else path
        others.append(path)
    if others:
        raise DataError(
            f"evaluate: {run} trained on {then} ({record.get('size')} bytes, SHA-256 {record['sha256'][:12]}...), "
            f"but {' and '.join(others)} {'is another file' if len(others) == 1 else 'are other files'} now (another "
            "SHA-256): the rows are not the run's, so its test split is lost; restore the file, or give it with "
            "--data FILE (every row of another file is scored)"
        )
    raise ConfigError(
        f"evaluate: {run} trained on {then}, which is not found; tried {', '.join(candidates)}; give the file "
        "with --data FILE (the file the run trained on, wherever it is now: its test split is scored)"
    )


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (also through another relative path, a symlink or a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare where they would point
        return os.path.realpath(a) == os.path.realpath(b)


def _check_predictions_path(out: str, data: str) -> None:
    from ..errors import ConfigError

    if _same_file(out, data):
        raise ConfigError(
            f"predict: --out {out} is the input file --data {data}; writing there would destroy the input, "
            "choose another --out"
        )
    if os.path.isdir(out):
        raise ConfigError(f"predict: --out {out} is a directory; give a file name such as {out}/predictions.csv")
    folder = os.path.dirname(out)
    if folder and not os.path.isdir(folder):
        # as cp or a shell's > refuse: a mistyped directory would otherwise be made, and the file put there
        if os.path.exists(folder):
            raise ConfigError(f"predict: --out {out}: {folder} is a file, not a directory; choose another --out")
        raise ConfigError(
            f"predict: --out {out}: directory {folder} does not exist; create it first (mkdir -p "
            f"{shlex.quote(folder)}) or choose another --out"
        )


def _digits(value: Any) -> str:
    """A NumPy number in the shortest digits that read back as the same number in its dtype, without
    an exponent (a price of 12346314.96 stays that, where 6 significant digits wrote 1.23463e+07)."""
    import numpy as np

    return np.format_float_positional(value, unique=True, trim="-")


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    import numpy as np

    from ..distributed import refuse_multi_process
    from ..errors import ConfigError
    from ..experiment import apply_preprocess, data_units
    from ..experiment.features import out_of_range_notes
    from ..runs import check_output_file, class_probabilities, load_run
    from ..serialization import atomic_write_bytes
    from ..train import predict

    refuse_multi_process("downslope predict")  # under mpiexec every rank would write the predictions file
    check_run_exists(args.run)
    number_format = _new_file_rule(args, "predict")
    to_stdout = args.out == "-"  # the Unix convention: "-" is the standard output, not a file named "-"
    if not to_stdout:
        _check_predictions_path(args.out, args.data)
        check_output_file(args.out, args.run, "--out")
    model, state = load_run(args.run, note=_say(args.command))
    _placed(model, args)
    state = _with_na_values(state, args, "predict")
    id_column = getattr(args, "id", None)
    if id_column:  # a misspelled --id is refused before the predicting, not after it
        _check_id_column(args.data, id_column, args.sep, state)
    unknown = getattr(args, "unknown_categories", "error")
    check_header_row(state, args.data, args.sep)
    X, _ = _raw_features(state, args.data, None, False, args.sep, unknown, number_format=number_format)
    for note in out_of_range_notes(state, X, args.data, args.sep):  # one per column, before the predicting
        print(f"predict: {note}", file=sys.stderr)
    X = apply_preprocess(X, state["preprocess"], args.data)  # as _features_for does, once the values are checked
    out = predict(model, X)
    preds = data_units(np.asarray(out.numpy() if hasattr(out, "numpy") else out), state["preprocess"])
    ids = _id_values(args.data, id_column, args.sep, state, len(preds)) if id_column else None
    # the csv module quotes a class name holding a comma, a quote or a line break (names come from the data)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    first = [id_column] if ids is not None else []
    if state["task"] == "classification":
        names = state["class_names"] or [str(i) for i in range(state["n_outputs"])]
        probs = class_probabilities(preds)
        writer.writerow(first + ["prediction"] + [f"p_{n}" for n in names])
        for i, (row, p) in enumerate(zip(preds.argmax(axis=1), probs)):
            writer.writerow(([ids[i]] if ids is not None else []) + [names[row]] + [_digits(v) for v in p])
    else:
        cols = preds.reshape(len(preds), -1)
        header = ["prediction"] if cols.shape[1] == 1 else [f"prediction_{i}" for i in range(cols.shape[1])]
        writer.writerow(first + header)
        writer.writerows(([ids[i]] if ids is not None else []) + [_digits(v) for v in r] for i, r in enumerate(cols))
    if to_stdout:
        sys.stdout.write(text.getvalue())
        sys.stdout.flush()
        return 0
    try:
        atomic_write_bytes(args.out, text.getvalue().encode())
    except OSError as exc:  # a full or read-only disk: the errno names a temporary file, say --out instead
        from ..train.callbacks.write_errors import failure_advice, failure_cause

        raise ConfigError(
            f"predict: could not write the predictions to --out {args.out} ({exc.strerror or exc})"
            f"{failure_cause(exc)}; {failure_advice(exc)} and run predict again"
        ) from None
    print(f"wrote {len(preds)} prediction{'' if len(preds) == 1 else 's'} to {args.out}")
    return 0


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", "").replace("_", ""))  # grouped digits (1,234) are numbers too
    except ValueError:
        return False
    return cell.strip() != ""


def check_header_row(state: dict[str, Any], data: str, sep: str | None, option: str = "--data") -> None:
    """A ``--data`` CSV with a header row for a run trained ``--no-header`` is refused in one line: its first
    row holds no number where the rows below hold numbers (a row of column names), so reading it as data
    would give a wrong prediction or an error about one cell. (The reverse, a header-less file for a run
    trained with a header, is refused as the rows are read: the first row's names are numbers.)"""
    import os

    from ..data.csvfile import csv_first_rows, csv_suffix, default_delimiter
    from ..errors import DataError
    from ..experiment.config import check_separator

    if state["config"].get("header", True) is not False or csv_suffix(data) is None or not os.path.isfile(data):
        return
    delimiter = default_delimiter(data, check_separator(sep, "--sep") if sep else str(state["config"].get("sep", ",")))
    rows = csv_first_rows(data, delimiter, 2)
    if len(rows) < 2 or len(rows[0]) != len(rows[1]):
        return
    numeric = [j for j, cell in enumerate(rows[1]) if _is_number(cell)]
    if numeric and not any(_is_number(rows[0][j]) for j in numeric):
        names = ", ".join(rows[0][:6]) + (", ..." if len(rows[0]) > 6 else "")
        raise DataError(
            f"{data}:1: the first row ({names}) looks like a header row (no number where the rows below have "
            f"numbers), but the run was trained with --no-header (a file without one); remove the first line of "
            f"{option}, as the training file had none"
        )


def _id_delimiter(data: str, column: str, sep: str | None, state: dict[str, Any]) -> str:
    """The field separator of the ``--data`` CSV that ``--id`` reads (refusing a file that is not a CSV)."""
    from ..data.csvfile import csv_suffix, default_delimiter
    from ..errors import ConfigError
    from ..experiment.config import check_separator

    if csv_suffix(data) is None:
        raise ConfigError(f"--id {shlex.quote(column)}: takes a column of a CSV file; {data} is not one")
    return default_delimiter(data, check_separator(sep, "--sep") if sep else str(state["config"].get("sep", ",")))


def _check_id_column(data: str, column: str, sep: str | None, state: dict[str, Any]) -> None:
    """Refuse an ``--id`` the ``--data`` CSV's header does not name, reading only the header."""
    from ..data.csvfile import csv_header_row
    from ..errors import ConfigError

    header = csv_header_row(data, _id_delimiter(data, column, sep, state))
    if header is not None and column not in header:
        raise ConfigError(f"--id {shlex.quote(column)}: {data} has no such column; its columns are {header}")


def _id_values(data: str, column: str, sep: str | None, state: dict[str, Any], n_rows: int) -> list[str]:
    """The ``--id`` column of the ``--data`` CSV, one value per prediction, as written in the file (only
    that column is read, by the fast reader when it can)."""
    from ..data.csvfile import read_column
    from ..errors import ConfigError

    header, values = read_column(data, column, _id_delimiter(data, column, sep, state))
    if column not in header:
        raise ConfigError(f"--id {shlex.quote(column)}: {data} has no such column; its columns are {header}")
    if len(values) != n_rows:  # e.g. a last 'Total' row the reader left out
        raise ConfigError(
            f"--id {shlex.quote(column)}: {data} has {len(values)} data rows but {n_rows} were predicted; the ids "
            "would not line up"
        )
    return values


def cmd_runs(args: argparse.Namespace) -> int:
    """``downslope runs [DIR]``: one line per run: name, status, test metrics (published runs)."""
    from ..runs import list_runs

    found = list_runs(args.directory)
    if not found:
        print(f"no runs in {args.directory}")
        return 0
    from .train import shown_metrics

    width = max(len(r.name) for r in found)
    for r in found:
        wanted = {
            k: float(f"{v:.4g}") if isinstance(v, float) else v
            for k, v in r.metrics.items()
            if k.startswith("test_") or k == "epochs"
        }
        shown = ", ".join(shown_metrics(wanted))  # a positive class said by its average precision
        print(f"{r.name:<{width}}  {r.status:<9}  {shown}".rstrip())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    for line in export_run(args.run, onnx_path=args.onnx, safetensors_path=args.safetensors):
        print(line)
    return 0
