"""A stored run's inputs read back from a file or named dataset, encoded and scaled as in training
(for evaluate, predict and export)."""

from __future__ import annotations

import os
from typing import Any


def _raw_features(
    state: dict[str, Any],
    data: str,
    target: str | None,
    need_target: bool,
    sep: str | None = None,
    unknown: str = "error",
    note_unseen: bool = True,
) -> tuple[Any, Any]:
    """Features of a file or named dataset encoded as in training but not yet filled or scaled, and
    its targets (class indices of the run's classes, or values in the data's units; None if absent).

    Features-only input works for every model: a CSV (header optional) or NPY with exactly the
    model's number of feature columns, or an NPZ without ``y``. ``sep`` is the CSV field separator
    (default: the one the run was trained with). ``unknown``: a category the training rows did not
    hold is refused ("error") or encoded as all zeros ("ignore", as the run's own metrics count it);
    with "ignore" a note on stderr says how many rows held one (unless ``note_unseen`` is False)."""
    import numpy as np

    from ..data import datasets
    from ..data.tabular import (
        CsvRows,
        TabularEncoder,
        class_key,
        csv_suffix,
        default_delimiter,
        encode_csv,
        encode_parquet,
        line_numbers,
        read_features,
        read_rows,
        unsupported_file,
    )
    from ..errors import DataError
    from ..experiment import is_file_source
    from ..experiment.config import check_separator

    sep = check_separator(sep, "--sep") if sep else str(state["config"].get("sep", ","))
    sep = default_delimiter(data, sep)  # a .tsv is read with tabs
    is_csv = csv_suffix(data) is not None

    pre = state["preprocess"]
    classes = list(state["class_names"]) if state["task"] == "classification" else None
    if pre.get("encoder") and (is_csv or data.lower().endswith(".parquet")):
        encoder = TabularEncoder.from_state_dict(pre["encoder"])
        # messages about the file say what the run was trained with (predict has no --missing or --drop)
        encoder.stage = "evaluate" if need_target else "predict"
        encoder.handle_unknown = unknown
        name = target or encoder.target
        # a Parquet file's columns are read as arrays, as in training (never a row of text per cell)
        fast = (
            encode_csv(data, encoder, name, True, need_target, delimiter=sep)
            if is_csv
            else encode_parquet(data, encoder, name, True, need_target)
        )
        if fast is not None:
            X, y = _drop_missing_rows(state, fast[1], fast[2], need_target)
            if unknown == "ignore" and note_unseen:
                _note_unseen(encoder, X, data)
            return X, y
        header, rows = read_rows(data, sep) if is_csv else _parquet_rows(data)
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
            values = CsvRows(r[j] for r in rows)
            values.lines = line_numbers(rows, 2)  # errors name the file line (blank lines count)
            y = encoder.encode_target(values, data, j)
        elif need_target:
            raise DataError(f"{data}: no target column {name!r} to evaluate against; columns are {header}")
        else:
            X = encoder.encode_features(header, rows, data)
        X, y = _drop_missing_rows(state, X, y, need_target)
        if unknown == "ignore" and note_unseen:
            _note_unseen(encoder, X, data)
        return X, y
    if is_file_source(data):
        X, raw = read_features(data, int(state["n_features"]), sep, list(state.get("feature_names") or []))
        if raw is None:
            if need_target:
                raise DataError(f"{data}: no targets to evaluate against (features only)")
            return X, None
        if classes is None:
            return _drop_missing_rows(state, X, np.asarray(raw, dtype=np.float32).reshape(len(raw), -1), need_target)
        lookup = {c: i for i, c in enumerate(classes)}
        keys = [class_key(v.decode() if isinstance(v, bytes) else v) for v in np.asarray(raw).reshape(-1).tolist()]
        unknown_labels = [k for k in keys if k not in lookup]
        if unknown_labels:
            raise DataError(f"{data}: label {unknown_labels[0]!r} is not one of the model's classes {classes}")
        return _drop_missing_rows(state, X, np.array([lookup[k] for k in keys], dtype=np.int64), need_target)
    if data not in datasets.NAMES and (os.path.exists(data) or os.path.splitext(data)[1]):
        raise unsupported_file(data)
    if pre.get("encoder"):
        raise DataError(f"{data}: the model was trained on CSV columns {pre['encoder']['columns']}; give a .csv")
    table = datasets.load(data, seed=int(state["config"]["seed"]))
    if state["task"] != table.task:
        raise DataError(f"{data}: a {table.task} dataset, but the model does {state['task']}")
    if table.n_features != int(state["n_features"]):
        raise DataError(f"{data}: {table.n_features} features, but the model takes {state['n_features']}")
    return table.X, table.y


def _note_unseen(encoder: Any, X: Any, data: str) -> None:
    """One stderr note of how many rows held a category the training rows did not (encoded as all zeros)."""
    import sys

    count, by_column = encoder.unseen_rows(X)
    if count:
        columns = ", ".join(f"{col!r}: {n}" for col, n in by_column.items())
        print(
            f"{encoder.stage}: note: {count} of the {len(X)} rows of {data} hold a category not seen in training "
            f"(rows by column: {columns}); --unknown-categories ignore encodes it as all zeros",
            file=sys.stderr,
        )


def _parquet_rows(data: str) -> tuple[list[str], Any]:
    """A Parquet file's column names and rows as text (cells as a CSV would hold them), for the encoder."""
    from ..data import readers
    from ..data.tabular import CsvRows

    header, columns = readers.read_parquet_columns(data)
    n = len(next(iter(columns.values())).kind)
    rows = CsvRows(readers.parquet_rows(data, list(range(n)), header))
    rows.lines = list(range(1, n + 1))  # messages count rows from 1, as read_parquet's do
    return header, rows


def _is_missing(value: str) -> bool:
    from ..data.tabular import MISSING

    return value.strip().lower() in MISSING


def _keep_lines(rows: Any, kept: list[list[str]]) -> Any:
    """``kept`` (a subset of ``rows``, in order) remembering each row's file line, as ``rows`` do."""
    from ..data.tabular import CsvRows

    lines = getattr(rows, "lines", None)
    out = CsvRows(kept)
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


def _features_for(
    state: dict[str, Any],
    data: str,
    target: str | None,
    need_target: bool,
    sep: str | None = None,
    unknown: str = "error",
) -> tuple[Any, Any]:
    """Features (preprocessed like training) and targets (or None) of a file or named dataset;
    ``unknown`` as :func:`_raw_features`'s."""
    from ..experiment import apply_preprocess

    X, y = _raw_features(state, data, target, need_target, sep, unknown)
    return apply_preprocess(X, state["preprocess"], data), y
