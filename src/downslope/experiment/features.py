"""A stored run's inputs read back from a file, a named dataset or rows in memory, encoded and scaled as
in training: what ``downslope evaluate``, ``predict`` and ``export`` feed a run's model, and what
:meth:`downslope.runs.TrainedRun.predict` feeds it from Python."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: rows given in memory: a pandas DataFrame, a dict of columns or a list of row dicts
Rows = Any


def raw_features(
    state: dict[str, Any],
    data: str | Rows,
    target: str | None,
    need_target: bool,
    sep: str | None = None,
    unknown: str = "error",
    note_unseen: bool | Callable[[str], None] = True,
    number_format: tuple[str, str] | None = None,
) -> tuple[Any, Any]:
    """Features of a file, a named dataset or rows in memory encoded as in training but not yet filled
    or scaled, and its targets (class indices of the run's classes, or values in the data's units; None
    if absent).

    Features-only input works for every model: a CSV (header optional) or NPY with exactly the
    model's number of feature columns, an NPZ without ``y``, or a 2-D NumPy array. Rows in memory (a
    pandas DataFrame, a dict of columns, a list of row dicts) go through the same column checks and
    encoding as a CSV's rows. ``sep`` is the CSV field separator (default: the one the run was trained
    with). ``unknown``: a category the training rows did not hold is refused ("error") or encoded as
    all zeros ("ignore", as the run's own metrics count it); with "ignore" a note says how many rows held
    one: on stderr, or to ``note_unseen`` when it is a function, or not at all when it is False.
    ``number_format``: (decimal mark, thousands separator) of every number of new data written otherwise
    than the training file's (see :func:`number_rule`); None: the training file's rules. The cells read as
    missing are the run's (its ``na_values`` setting; the readers' defaults for a run without one)."""
    from ..data.readers import missing_markers

    with missing_markers(state["config"].get("na_values")):
        return _read_features(state, data, target, need_target, sep, unknown, note_unseen, number_format)


def _read_features(
    state: dict[str, Any],
    data: str | Rows,
    target: str | None,
    need_target: bool,
    sep: str | None,
    unknown: str,
    note_unseen: bool | Callable[[str], None],
    number_format: tuple[str, str] | None,
) -> tuple[Any, Any]:
    """:func:`raw_features` under the run's missing-value markers."""
    import numpy as np

    from ..data import datasets
    from ..data.tabular import (
        class_key,
        csv_suffix,
        default_delimiter,
        encode_csv,
        encode_parquet,
        read_features,
        read_rows,
        unsupported_file,
    )
    from ..errors import DataError
    from .config import check_separator
    from .inputs import is_file_source

    pre = state["preprocess"]
    classes = list(state["class_names"]) if state["task"] == "classification" else None
    if not isinstance(data, (str, os.PathLike)):
        return _features_in_memory(state, data, target, need_target, unknown, note_unseen, number_format)
    data = os.fspath(data)
    sep = check_separator(sep, "--sep") if sep else str(state["config"].get("sep", ","))
    sep = default_delimiter(data, sep)  # a .tsv is read with tabs
    is_csv = csv_suffix(data) is not None

    if pre.get("encoder") and (is_csv or data.lower().endswith(".parquet")):
        encoder = _encoder(state, unknown, need_target, note_unseen, number_format)
        name = target or encoder.target
        headerless_file = is_csv and state["config"].get("header", True) is False
        if headerless_file:  # trained with --no-header: a new file has no header row either
            return _headerless_rows(state, encoder, data, sep, name, need_target, unknown, note_unseen)
        # a Parquet file's columns are read as arrays, as in training (never a row of text per cell)
        # labels compared without case are read row by row (the column readers compare them as written)
        if is_csv:  # a NUL byte is named first on either reader (the row reader checks before any cell)
            from pathlib import Path

            from ..data.csvfile import refuse_nul_bytes

            refuse_nul_bytes(Path(data), sep)
        fast = (
            None
            if need_target and encoder.fold_labels
            else encode_csv(data, encoder, name, True, need_target, delimiter=sep)
            if is_csv
            else encode_parquet(data, encoder, name, True, need_target)
        )
        if fast is not None:
            X, y = _drop_missing_rows(state, fast[1], fast[2], need_target)
            _maybe_note(encoder, X, data, unknown, note_unseen)
            return X, y
        header, rows = read_rows(data, sep) if is_csv else _parquet_rows(data)
        return _encode_rows(state, encoder, header, rows, data, name, need_target, unknown, note_unseen)
    if is_file_source(data):
        X, raw = read_features(
            data, int(state["n_features"]), sep, list(state.get("feature_names") or []), allow_target=need_target
        )
        if raw is None:
            if need_target:
                raise DataError(f"{data}: no targets to evaluate against (features only)")
            return X, None
        if classes is None:
            return _drop_missing_rows(state, X, np.asarray(raw, dtype=np.float32).reshape(len(raw), -1), need_target)
        fold = str.casefold if state["config"].get("merge_label_variants") else str
        # a class named as its file wrote it ('02100', a code with a leading zero) is found by its number too
        lookup = {fold(class_key(c)): i for i, c in enumerate(classes)}
        keys = [
            fold(class_key(v.decode() if isinstance(v, bytes) else v)) for v in np.asarray(raw).reshape(-1).tolist()
        ]
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


def _headerless_rows(
    state: dict[str, Any],
    encoder: Any,
    data: str,
    sep: str,
    name: str,
    need_target: bool,
    unknown: str,
    note_unseen: bool | Callable[[str], None],
) -> tuple[Any, Any]:
    """A CSV without a header row for a run trained with ``--no-header``: every column of the training file
    (named ``col_0`` .. as in training), or the feature columns alone (named as the run's features, in
    order: the target column may have been anywhere)."""
    from ..data.encoding import headerless
    from ..data.tabular import read_rows

    first, rows = read_rows(data, sep, check_names=False)
    header, rows = headerless(first, rows)
    if not need_target and len(header) == len(encoder.columns):
        header = list(encoder.columns)
    return _encode_rows(state, encoder, header, rows, data, name, need_target, unknown, note_unseen)


def number_rule(decimal: str | None, thousands: str | None, where: str = "") -> tuple[str, str] | None:
    """The (decimal mark, thousands separator) new data is read with when either is given (the other one
    then Python's: '.' and none; ``thousands`` may be spelled 'none' or 'space' as in a config); None
    when neither is given (the training file's rules).

    Example:
        >>> number_rule(",", "."), number_rule(".", None), number_rule(None, None)
        ((',', '.'), ('.', ''), None)
    """
    from ..data.csvfile import check_number_format
    from ..errors import ConfigError

    if decimal is None and thousands is None:
        return None
    grouping = {"none": "", "space": " "}.get((thousands or "").lower(), thousands or "")
    try:
        return check_number_format(decimal or ".", grouping)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def _encoder(
    state: dict[str, Any],
    unknown: str,
    need_target: bool,
    note_unseen: bool | Callable[[str], None] = True,
    number_format: tuple[str, str] | None = None,
) -> Any:
    from ..data.tabular import TabularEncoder

    encoder = TabularEncoder.from_state_dict(state["preprocess"]["encoder"])
    if number_format is not None:
        # new data written with other marks than the training file: one rule for every column, as a
        # --decimal/--thousands given to train applies to every column (Python's syntax needs none)
        columns = [*encoder.columns, *([str(encoder.target)] if encoder.target is not None else [])]
        encoder.formats = {} if number_format == (".", "") else {c: number_format for c in columns}
    # messages about the data say what the run was trained with (predict has no --missing or --drop)
    encoder.stage = "evaluate" if need_target else "predict"
    encoder.handle_unknown = unknown
    encoder.unknown_option = _unknown_option(note_unseen)
    encoder.fold_labels = bool(state["config"].get("merge_label_variants"))
    return encoder


def _unknown_option(note_unseen: bool | Callable[[str], None]) -> str:
    """How to ask for unseen categories as zeros: the command's flag (``note_unseen`` True: notes go to the
    command's stderr), else the Python API's keyword."""
    return "--unknown-categories ignore" if note_unseen is True else 'unknown_categories="ignore"'


def _encode_rows(
    state: dict[str, Any],
    encoder: Any,
    header: list[str],
    rows: Any,
    data: str,
    name: str,
    need_target: bool,
    unknown: str,
    note_unseen: bool | Callable[[str], None],
) -> tuple[Any, Any]:
    """Rows of text cells (a file's, or rows given in memory written as a CSV would hold them) encoded."""
    from ..data.tabular import CsvRows, line_numbers
    from ..errors import DataError

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
    _maybe_note(encoder, X, data, unknown, note_unseen)
    return X, y


def _features_in_memory(
    state: dict[str, Any],
    data: Rows,
    target: str | None,
    need_target: bool,
    unknown: str,
    note_unseen: bool | Callable[[str], None],
    number_format: tuple[str, str] | None = None,
) -> tuple[Any, Any]:
    """:func:`raw_features` of rows given in memory, or of a 2-D array of the model's features."""
    import numpy as np

    from ..data.tabular import check_features
    from ..errors import DataError

    n_features = int(state["n_features"])
    if isinstance(data, np.ndarray):  # as an NPY file of features is read
        if need_target:
            raise DataError("array: no targets to evaluate against (features only)")
        X = check_features(data.reshape(-1, 1) if data.ndim == 1 else data, "array", "mean")
        if X.shape[1] != n_features:
            raise DataError(f"array: {X.shape[1]} feature columns, but the model takes {n_features}")
        return X, None
    if state["preprocess"].get("encoder") and not need_target:
        found = table_columns(data)
        if found is not None:  # column by column: no row of text per cell (a DataFrame of 10^5 rows: seconds)
            where, header, columns, n = found
            encoder = _encoder(state, unknown, need_target, note_unseen, number_format)
            X = encoder.encode_feature_columns(header, columns, n, where, _cell)
            if X is not None:
                _maybe_note(encoder, X, where, unknown, note_unseen)
                return X, None
    where, header, rows = table_rows(data)
    if state["preprocess"].get("encoder"):
        encoder = _encoder(state, unknown, need_target, note_unseen, number_format)
        return _encode_rows(
            state, encoder, header, rows, where, target or encoder.target, need_target, unknown, note_unseen
        )
    if need_target:
        raise DataError(f"{where}: scoring rows in memory needs a run trained on CSV columns; give the data's file")
    names = list(state.get("feature_names") or [])
    missing = [c for c in names if c not in header]
    if not names or missing:
        raise DataError(
            f"{where}: the model takes {n_features} features"
            + (f" named {names}; missing {missing}" if names else " without names")
            + "; give them as a 2-D NumPy array in the model's order"
        )
    from ..data.readers import missing_tokens

    markers = missing_tokens()
    cells = [[row[header.index(c)] for c in names] for row in rows]
    try:
        values = [[math.nan if v.strip().lower() in markers else float(v) for v in row] for row in cells]
    except ValueError as exc:
        raise DataError(f"{where}: the model's features must be numbers ({exc})") from None
    X = np.asarray(values, dtype=np.float64).reshape(len(rows), len(names))
    return check_features(X, where, "mean"), None


def table_columns(data: Rows) -> tuple[str, list[str], dict[str, Any], int] | None:
    """A DataFrame's or a dict of columns' values column by column: what they are (for messages), the
    column names, each column's values (a NumPy array where the data holds one) and the row count; None
    for other rows, duplicate column names, or anything :func:`table_rows` refuses (it says why)."""
    import numpy as np

    if hasattr(data, "columns") and hasattr(data, "itertuples"):  # a pandas DataFrame (pandas not imported)
        header = [str(c) for c in data.columns]
        # (dates and times read otherwise from an array than from rows: left to table_rows)
        kinds = {getattr(t, "kind", "O") for t in getattr(data, "dtypes", [])}
        if len(set(header)) < len(header) or not len(data) or not kinds <= set("fiubO"):
            return None
        return "DataFrame", header, {h: data[c].to_numpy() for h, c in zip(header, data.columns)}, len(data)
    if isinstance(data, Mapping):
        header = [str(c) for c in data]
        columns = {
            h: v if isinstance(v, np.ndarray) and v.ndim == 1 else ([v] if isinstance(v, str) else list(v))
            for h, v in zip(header, data.values())
        }
        lengths = {len(v) for v in columns.values()}
        if len(set(header)) < len(header) or len(lengths) != 1 or 0 in lengths:
            return None
        return "dict of columns", header, columns, lengths.pop()
    return None


def table_rows(data: Rows) -> tuple[str, list[str], Any]:
    """Rows given in memory as a CSV file would hold them: what they are (for messages), the column names
    and one list of text cells per row (a missing value, None or NaN, as an empty cell; a float in the
    digits that read back as the same float64).

    Example:
        >>> table_rows({"a": [1.5, None], "b": ["x", "y"]})[1:]
        (['a', 'b'], [['1.5', 'x'], ['', 'y']])
    """
    from ..data.tabular import CsvRows
    from ..errors import DataError

    if hasattr(data, "columns") and hasattr(data, "itertuples"):  # a pandas DataFrame (pandas not imported)
        where = "DataFrame"
        header = [str(c) for c in data.columns]
        body = [list(r) for r in data.itertuples(index=False, name=None)]
    elif isinstance(data, Mapping):
        where = "dict of columns"
        header = [str(c) for c in data]
        columns = [list(v) if not isinstance(v, str) else [v] for v in data.values()]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            sizes = {str(k): len(c) for k, c in zip(data, columns)}
            raise DataError(f"{where}: columns of different lengths {sizes}; give one value per row in each")
        body = [list(r) for r in zip(*columns)]
    elif (
        isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and all(isinstance(r, Mapping) for r in data)
    ):
        where = "list of rows"
        named = [{str(k): v for k, v in row.items()} for row in data]
        header = list(dict.fromkeys(k for row in named for k in row))  # a key only some rows hold: missing
        body = [[row.get(c) for c in header] for row in named]
    else:
        raise DataError(
            f"predict: got {type(data).__name__}; give a CSV, Parquet or NPY path, a pandas DataFrame, a dict of "
            "columns, a list of row dicts or a 2-D NumPy array of the model's features"
        )
    if not body:
        raise DataError(f"{where}: no rows to predict")
    rows = CsvRows([_cell(v) for v in r] for r in body)
    rows.lines = list(range(1, len(rows) + 1))  # messages count rows from 1
    return where, header, rows


_INTEGER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _cell(value: Any) -> str:
    """One value as a CSV cell holds it."""
    from ..data.encoding import NumberCell

    if value is None:
        return ""
    # numbers given as numbers are marked so: a run's file number format (decimal comma) reads text only
    if isinstance(value, float) or type(value).__name__ in ("float16", "float32", "float64"):
        number = float(value)
        return "" if math.isnan(number) else NumberCell(repr(number))
    if (isinstance(value, int) and not isinstance(value, bool)) or type(value).__name__ in _INTEGER_TYPES:
        return NumberCell(str(int(value)))
    text = str(value)
    return "" if text in ("nan", "NaN", "<NA>", "NaT") else text


def _maybe_note(encoder: Any, X: Any, data: str, unknown: str, note_unseen: bool | Callable[[str], None]) -> None:
    if unknown != "ignore" or note_unseen is False:
        return
    say = note_unseen if callable(note_unseen) else _to_stderr
    _note_unseen(encoder, X, data, say, _unknown_option(note_unseen))


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _note_unseen(encoder: Any, X: Any, data: str, say: Callable[[str], None], option: str) -> None:
    """One note of how many rows held a category the training rows did not (encoded as all zeros)."""
    count, by_column = encoder.unseen_rows(X)
    if count:
        columns = ", ".join(f"{col!r}: {n}" for col, n in by_column.items())
        say(
            f"{encoder.stage}: note: {count} of the {len(X)} rows of {data} hold a category not seen in training "
            f"(rows by column: {columns}); {option} encodes it as all zeros"
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
    from ..data.readers import missing_tokens

    return value.strip().lower() in missing_tokens()


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


def run_features(
    state: dict[str, Any],
    data: str | Rows,
    target: str | None,
    need_target: bool,
    sep: str | None = None,
    unknown: str = "error",
    note_unseen: bool | Callable[[str], None] = True,
    number_format: tuple[str, str] | None = None,
) -> tuple[Any, Any]:
    """Model inputs (preprocessed like training) and targets (or None) of a file, a named dataset or rows
    in memory; ``unknown``, ``note_unseen`` and ``number_format`` as :func:`raw_features`'s."""
    from .inputs import apply_preprocess

    X, y = raw_features(state, data, target, need_target, sep, unknown, note_unseen, number_format)
    where = os.fspath(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__
    return apply_preprocess(X, state["preprocess"], where), y


def _far_outside(values: Any, low: float, high: float) -> Any:
    """Which of a column's new ``values`` lie far outside its training range [``low``, ``high``].

    The rule: beyond one range's width on either side, [low - span, high + span] with span = high - low
    (for a column that held one value, span = max(|value|, 1)); and below zero in a column never negative in
    training (an age of -5, a negative price). One width of room keeps ordinary new data quiet, the extremes
    of a skewed column included (a training sample's maximum is already one of its extremes), while a value
    typed in other units or with extra digits (an age of 240, a price 1000 times the training prices) is
    well beyond it. Missing values (NaN) are never outside.

    Example:
        >>> import numpy as np
        >>> _far_outside(np.array([18.0, 70.0, 112.0, 113.0, 240.0, -5.0, np.nan]), 18.0, 65.0).tolist()
        [False, False, False, True, True, True, False]
    """
    import numpy as np

    below, above = _band(low, high)
    with np.errstate(invalid="ignore"):
        outside = (values < below) | (values > above)
        if low >= 0:
            outside |= values < 0
    return outside


def _band(low: float, high: float) -> tuple[float, float]:
    """[low - span, high + span]: the values :func:`_far_outside` leaves quiet (the sign rule aside)."""
    span = high - low if high > low else max(abs(high), 1.0)
    return low - span, high + span


def out_of_range_notes(state: dict[str, Any], X: Any, data: str | Rows, sep: str | None = None) -> list[str]:
    """One warning per numeric column whose values in new data lie far outside the training rows' range
    (:func:`_far_outside`'s rule): the column, the training min/max, how many rows, and the first such
    row's file line and value. ``X``: the features as :func:`raw_features` gives them (encoded, not yet filled
    or scaled; one row per input row). A run saved without its training ranges (an older downslope, images)
    gets none.

    A model fitted on ages 18 to 65 extrapolates for an age of 240: its answer there is whatever the fitted
    function does far from every training point, with nothing in the prediction that says so."""
    import numpy as np

    from .inputs import _column_of, feature_offsets

    ranges = (state.get("preprocess") or {}).get("ranges")
    if not isinstance(ranges, dict) or not len(X):
        return []
    X = np.asarray(X)
    features = np.asarray(ranges["features"], dtype=np.int64)
    offsets = feature_offsets(state["preprocess"], int(state["n_features"]))
    encoder_state = state["preprocess"].get("encoder")
    encoder = None
    if encoder_state:
        from ..data.tabular import TabularEncoder

        encoder = TabularEncoder.from_state_dict(encoder_state)
    names = list(state.get("feature_names") or [])
    found = []
    for j, low, high in zip(features.tolist(), np.asarray(ranges["min"]).tolist(), np.asarray(ranges["max"]).tolist()):
        outside = _far_outside(np.asarray(X[:, j], dtype=np.float64), low, high)
        if outside.any():
            found.append((j, low, high, np.flatnonzero(outside)))
    if not found:
        return []
    where = _row_places(data, [int(rows[0]) for *_, rows in found], sep, state)
    notes = []
    for j, low, high, rows in found:
        shift = float(offsets[j])
        column = _column_of(names, encoder, j)
        first = int(rows[0])
        value = float(X[first, j]) + shift
        below, above = _band(low, high)
        beyond = f"beyond [{_number(below + shift)}, {_number(above + shift)}]"
        if low >= 0:
            beyond += " or negative"
        notes.append(
            f"warning: column {column!r}: {len(rows)} of the {len(X)} rows "
            f"{'holds a value' if len(rows) == 1 else 'hold values'} far outside the training "
            f"range [{_number(low + shift)}, {_number(high + shift)}] ({beyond}), e.g. {where[first]} ({column} = "
            f"{_number(value)}); the model was never fitted there and extrapolates, so check these values (a typo, "
            "another unit?)"
        )
    return notes


def _number(value: float) -> str:
    """A number in at most 6 significant digits, without a needless '.0' (18, 65.5, 1.2e+07)."""
    return f"{value:.6g}"


def _row_places(data: str | Rows, rows: list[int], sep: str | None, state: dict[str, Any]) -> dict[int, str]:
    """Where each of ``rows`` (indices of the input's data rows) is: ``file:line`` for a CSV (blank lines and
    quoted line breaks counted as the readers count them), else ``source row n`` counted from 1."""
    from ..data.csvfile import csv_suffix, default_delimiter
    from ..data.readers import csv_rows_at
    from .config import check_separator

    if not isinstance(data, (str, os.PathLike)):
        return {r: f"{type(data).__name__} row {r + 1}" for r in rows}
    path = os.fspath(data)
    if csv_suffix(path) is None:
        return {r: f"{path} row {r + 1}" for r in rows}
    delimiter = default_delimiter(path, check_separator(sep, "--sep") if sep else str(state["config"].get("sep", ",")))
    headerless = state["config"].get("header", True) is False
    # csv_rows_at numbers the rows after a header line: a file without one has its first data row there
    wanted = sorted({r - 1 for r in rows if r > 0} if headerless else set(rows))
    try:
        lines = {r: line for r, (line, _) in csv_rows_at(path, wanted, delimiter).items()}
    except (OSError, ValueError):  # the file was read a moment ago: only a line number is lost
        lines = {}
    out = {}
    for r in rows:
        line = (1 if r == 0 else lines.get(r - 1)) if headerless else lines.get(r)
        out[r] = f"{path}:{line}" if line is not None else f"{path} data row {r + 1}"
    return out
