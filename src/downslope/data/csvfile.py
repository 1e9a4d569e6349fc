"""Reading a CSV with a header row: :func:`read_rows` (Python's csv module, errors naming file and line)
and :func:`read_csv`, which turns the rows into a :class:`~.datasets.Table` and the
:class:`~.encoding.TabularEncoder` that made it (column by column through :mod:`.columns` when
pyarrow is installed).

Example:
    >>> import os, tempfile
    >>> from downslope.data.csvfile import read_rows
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("a,b\\n1,2\\n")
    >>> read_rows(p)
    (['a', 'b'], [['1', '2']])
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

from ..errors import ConfigError, DataError
from . import readers
from .columns import _read_csv_columnar
from .datasets import Table
from .encoding import (
    MAX_CATEGORIES,
    TabularEncoder,
    _as_float,
    _check_options,
    _choose_columns,
    _forced_categorical,
    _is_missing,
    _line_numbers,
    _one_class_error,
    _Rows,
    _too_many_categories,
    class_key,
    infer_task,
    sorted_classes,
)


def read_rows(
    path: str | os.PathLike[str], delimiter: str = ",", progress: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; ragged rows and empty files are errors naming file and line.

    This is the pure-Python reader (Python's csv module); with ``progress``, a big file gets a hint
    about the fast reader and a progress line on stderr when reading takes more than a second."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    hint = readers.slow_hint(p) if progress else None
    if hint:
        print(hint, file=sys.stderr, flush=True)
    meter = readers.Progress(p.name, p.stat().st_size, enabled=progress)
    try:
        with open(p, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(readers.counted_lines(handle, meter), delimiter=delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise DataError(f"{p}: the file is empty (expected a header row)") from None
            if len(set(header)) != len(header) or any(h == "" for h in header):
                raise DataError(f"{p}:1: the header needs unique, non-empty column names, got {header}")
            sep = readers.other_separator(header, delimiter)
            if sep is not None:
                raise DataError(readers.separator_advice(str(p), sep))
            rows = _Rows()
            rows.lines = []
            for row in reader:
                if readers.is_blank_line(row):
                    continue  # blank lines (a row of empty cells is a row of missing values)
                if len(row) != len(header):
                    raise DataError(
                        f"{p}:{reader.line_num}: expected {len(header)} fields (as in the header), got {len(row)}"
                    )
                rows.append([v.strip() for v in row])
                rows.lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{p}: malformed CSV: {exc}") from None
    if not rows:
        raise DataError(f"{p}: no data rows after the header")
    meter.done(f" ({len(rows):,} rows)")
    return header, rows


def _row_indices_kept(
    rows: list[list[str]], t_idx: int, used: list[int], missing: str, source: str, notes: list[str]
) -> list[int]:
    """The indices of the rows that ``missing`` keeps (drop: no missing value; imputing: a present
    target), noting how many were dropped; keeping none is a one-line error."""
    keep = [
        r
        for r in range(len(rows))
        if not (_is_missing(rows[r][t_idx]) or (missing == "drop" and any(_is_missing(rows[r][j]) for j in used)))
    ]
    if len(keep) < len(rows):
        what = "a missing value" if missing == "drop" else "a missing target"
        notes.append(f"{source}: dropped {len(rows) - len(keep)} of {len(rows)} rows with {what}")
    if not keep:
        raise DataError(f"{source}: every row has {'a missing value' if missing == 'drop' else 'a missing target'}")
    return keep


def _row_categories(
    source: str, header: list[str], rows: list[list[str]], columns: list[str], forced: set[str], max_categories: int
) -> dict[str, list[str]]:
    """The one-hot categories of each text (or forced) feature column: a column is text when at least
    half its present values are not numbers."""
    categories: dict[str, list[str]] = {}
    for col in columns:
        j = header.index(col)
        values = [r[j] for r in rows if not _is_missing(r[j])]
        texts = [v for v in values if _as_float(v) is None]
        if col not in forced and len(texts) * 2 <= len(values):
            continue  # a numeric column (a stray word in it is reported when the rows are encoded)
        distinct = sorted(set(values))
        if len(distinct) > max_categories:
            raise _too_many_categories(source, col, len(distinct), len(values))
        categories[col] = distinct
    return categories


def read_csv(
    path: str | os.PathLike[str],
    target: str | None = None,
    task: str | None = None,
    categorical: list[str] | None = None,
    missing: str = "error",
    delimiter: str = ",",
    drop: list[str] | None = None,
    max_categories: int = MAX_CATEGORIES,
    progress: bool = False,
) -> tuple[Table, TabularEncoder]:
    """Read a CSV with a header row into a :class:`Table` and the encoder that made it.

    ``target`` names the target column (default: the last one); ``drop`` names columns to leave out.
    Columns whose values are mostly text are one-hot encoded (``categorical`` forces it); a text
    column with more than ``max_categories`` distinct values is refused. ``task`` is inferred by
    :data:`TASK_RULE` when not given. ``missing``: ``error`` reports the first missing value by file,
    line and column; ``drop`` drops such rows; ``mean``/``median``/``most_frequent`` leave NaN for an
    :class:`Imputer` fitted on the training split (rows whose target is missing are dropped).

    With pyarrow installed (``pip install 'downslope[fast]'``) the file is parsed in C, column by
    column, with the same results and the same errors; otherwise by Python's csv module. ``progress``
    prints what is being read on stderr when it takes more than a second.
    """
    _check_options(missing, "read_csv")
    p = Path(path)
    if readers.fast_csv_available() and p.is_file():
        try:
            return _read_csv_columnar(
                str(path), p, target, task, categorical, missing, delimiter, drop, max_categories, progress
            )
        except readers.Fallback:
            pass  # the pure-Python reader gives the canonical answer (or error) for this file
    header, rows = read_rows(path, delimiter, progress=progress)
    source = str(path)
    notes: list[str] = []
    target, columns, dropped = _choose_columns(source, header, target, drop)
    t_idx = header.index(target)
    used = [header.index(c) for c in columns] + [t_idx]
    lines = _line_numbers(rows, 2)
    keep = list(range(len(rows)))
    if missing != "error":
        keep = _row_indices_kept(rows, t_idx, used, missing, source, notes)
    kept = _Rows(rows[r] for r in keep)
    kept.lines = [lines[r] for r in keep]
    rows = kept
    forced = _forced_categorical(categorical, columns)
    categories = _row_categories(source, header, rows, columns, forced, max_categories)
    target_values = _Rows(r[t_idx] for r in rows)
    target_values.lines = rows.lines  # errors in the target name its file line (blank lines count)
    for r, v in enumerate(target_values):
        if _is_missing(v):
            raise DataError(
                f"{source}:{rows.lines[r]}:{t_idx + 1} (column {target!r}): missing target value; "
                "--missing drop (or mean/median/most_frequent) drops such rows"
            )
    reason = "given"
    if task is None:
        task, reason = infer_task(target_values)
    if task not in ("classification", "regression"):
        raise ConfigError(f"read_csv: task must be 'classification' or 'regression', got {task!r}")
    classes: list[str] = []
    if task == "classification":
        classes = sorted_classes(class_key(v) for v in target_values)
        if len(classes) < 2:
            raise _one_class_error(source, target, classes[0], len(target_values))
    encoder = TabularEncoder(columns, target, categories, task, classes, missing, dropped)
    X = encoder.encode_features(header, rows, source)
    y = encoder.encode_target(target_values, source, t_idx)
    name = Path(path).stem
    table = Table(X, y, task, name, encoder.feature_names, target, classes)
    table.notes = notes
    table.task_reason = reason
    return table, encoder
