"""User files: CSV (header row, target column by name, categorical columns one-hot) and NPZ/NPY.

The semantics follow scikit-learn's encoders and imputers:

- A column is numeric when most of its values are numbers; a stray word in it is an error that names
  the file, line, column and value (it is never silently turned into categories).
- Text columns are one-hot encoded (``OneHotEncoder``); one with more than ``max_categories``
  distinct values (an id or free text) is refused: leave it out with ``drop=[...]``.
- Missing values (empty, ``NA``, ``nan``, ``?``, ...) are an error unless ``missing`` says otherwise:
  ``drop`` drops the rows, ``mean``/``median``/``most_frequent`` fill them (``SimpleImputer``; the fill
  values are fitted on the training split by :class:`Imputer`; a text column always gets its most
  frequent category).
- Class labels are the distinct target values mapped to 0..K-1 in sorted order (``LabelEncoder``);
  numeric labels are compared as numbers, so ``1`` and ``1.0`` are one class named ``1``.
- The task is inferred by :data:`TASK_RULE` unless given.

Problems are reported with where they are: ``file:line:column``, e.g.
``data.csv:14:3 (column 'age'): missing value``. No pickle is ever loaded.

Example:
    >>> import os, tempfile
    >>> from downslope.data.tabular import read_csv
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("size,colour,label\\n1.5,red,a\\n2.0,blue,b\\n0.5,red,a\\n")
    >>> table, encoder = read_csv(p, target="label")
    >>> table.X.shape, encoder.feature_names
    ((3, 3), ['size', 'colour=blue', 'colour=red'])
"""

from __future__ import annotations

import csv
import math
import os
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from . import readers
from .datasets import Table

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}
MISSING_STRATEGIES = ("error", "drop", "mean", "median", "most_frequent")
IMPUTE = ("mean", "median", "most_frequent")
MAX_CATEGORIES = 100
# A .npy file at least this big is memory-mapped and read in batches instead of loaded whole.
LAZY_BYTES = 256 * 2**20
FLOAT32_MAX = float(np.finfo(np.float32).max)
TASK_RULE = (
    "text labels -> classification; numeric labels -> regression, unless every value is an integer and "
    "there are at most 20 distinct values, or at most 100 with at least 5 rows per value on average "
    "(then classification)"
)


def _is_missing(value: str) -> bool:
    return value.strip().lower() in MISSING


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def class_key(value: Any) -> str:
    """A label's class name: numbers compare as numbers (``1``, ``1.0`` and ``01`` are class ``1``).

    Example:
        >>> class_key("1.0"), class_key(2.5), class_key(" cat ")
        ('1', '2.5', 'cat')
    """
    text = str(value).strip()
    number = _as_float(text)
    if number is None or not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() and abs(number) < 2**63 else repr(number)


def infer_task(labels: Any) -> tuple[str, str]:
    """``(task, reason)`` for a target column, by :data:`TASK_RULE`.

    Example:
        >>> infer_task(["1", "2", "1"])[0], infer_task(["0.5", "1.7"])[0], infer_task(["a", "b"])[0]
        ('classification', 'regression', 'classification')
    """
    values = [str(v) for v in labels]
    numbers = [_as_float(v) for v in values]
    if any(n is None for n in numbers):
        return "classification", "the target holds text"
    distinct = {n for n in numbers if n is not None}
    k, n = len(distinct), len(values)
    if not all(math.isfinite(v) and v.is_integer() for v in distinct):
        return "regression", "the target holds non-integer numbers"
    if k <= 20 or (k <= 100 and n >= 5 * k):
        return "classification", f"the target holds {k} distinct integers in {n} rows"
    return "regression", f"the target holds {k} distinct integers in {n} rows (too many to be classes)"


def sorted_classes(keys: Any) -> list[str]:
    """Distinct class names in LabelEncoder order: numerically when all are numbers, else as text.

    Example:
        >>> sorted_classes(["10", "9", "10"]), sorted_classes(["b", "a"])
        (['9', '10'], ['a', 'b'])
    """
    distinct = set(keys)
    if all(_as_float(k) is not None for k in distinct):
        return sorted(distinct, key=lambda k: float(k))
    return sorted(distinct)


def _one_class_error(source: str, column: str, name: str, n: int) -> DataError:
    return DataError(
        f"{source}: the target {column!r} holds a single class ({name!r}) in all {n} rows; a classifier needs "
        "at least 2 classes (for a numeric target use --task regression)"
    )


class TabularEncoder:
    """How CSV columns become model inputs: numeric columns as they are, categorical ones one-hot.

    It is fitted on the training file and reused for prediction files, so the columns line up.
    Missing values become NaN when ``missing`` is a filling strategy (an :class:`Imputer` fills them).
    """

    def __init__(
        self,
        columns: list[str],
        target: str | None,
        categories: dict[str, list[str]],
        task: str,
        classes: list[str],
        missing: str = "error",
        dropped: list[str] | None = None,
    ):
        self.columns = columns  # feature columns in file order (target excluded)
        self.target = target
        self.categories = categories  # categorical column -> sorted category values
        self.task = task
        self.classes = classes  # class labels for classification targets (index = class id)
        self.missing = missing
        self.dropped = list(dropped or [])

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            if col in self.categories:
                names.extend(f"{col}={v}" for v in self.categories[col])
            else:
                names.append(col)
        return names

    def blocks(self) -> list[tuple[int, int, bool]]:
        """``(start, stop, categorical)`` of each column's features (a one-hot block or one number)."""
        out, at = [], 0
        for col in self.columns:
            width = len(self.categories[col]) if col in self.categories else 1
            out.append((at, at + width, col in self.categories))
            at += width
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "target": self.target,
            "categories": self.categories,
            "task": self.task,
            "classes": self.classes,
            "missing": self.missing,
            "dropped": self.dropped,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TabularEncoder:
        return cls(
            list(state["columns"]),
            state["target"],
            {k: list(v) for k, v in state["categories"].items()},
            state["task"],
            list(state["classes"]),
            str(state.get("missing", "error")),
            list(state.get("dropped", [])),
        )

    def _missing(self, where: str) -> DataError:
        if self.missing == "error":
            return DataError(
                f"{where}: missing value; choose what to do with --missing drop|mean|median|most_frequent "
                "(default: error)"
            )
        return DataError(f"{where}: missing value")

    def encode_features(self, header: list[str], rows: list[list[str]], source: str, first_line: int = 2) -> np.ndarray:
        """Feature matrix for ``rows`` (a header naming at least this encoder's columns).

        A missing value is an error when the encoder's ``missing`` is ``error``, else NaN (in every
        feature of a categorical column).
        """
        missing_cols = [c for c in self.columns if c not in header]
        if missing_cols:
            raise DataError(
                f"{source}: missing column(s) {missing_cols}; the model was trained on columns {self.columns}"
            )
        width = len(self.feature_names)
        X = np.zeros((len(rows), width), dtype=np.float32)
        position = {c: header.index(c) for c in self.columns}
        lines = _line_numbers(rows, first_line)
        for r, row in enumerate(rows):
            out = 0
            for col in self.columns:
                j = position[col]
                value = row[j]
                where = f"{source}:{lines[r]}:{j + 1} (column {col!r})"
                size = len(self.categories[col]) if col in self.categories else 1
                if _is_missing(value):
                    if self.missing == "error":
                        raise self._missing(where)
                    X[r, out : out + size] = np.nan
                    out += size
                    continue
                if col in self.categories:
                    cats = self.categories[col]
                    if value not in cats:
                        raise DataError(f"{where}: category {value!r} was not seen in training; known: {cats}")
                    X[r, out + cats.index(value)] = 1.0
                else:
                    number = _as_float(value)
                    if number is None:
                        raise DataError(
                            f"{where}: expected a number, got {value!r} (the column is numeric); fix the value, "
                            f"leave the cell empty and choose --missing, or leave the column out with --drop {col}"
                        )
                    if not math.isfinite(number):
                        raise DataError(f"{where}: non-finite value {value!r}")
                    if abs(number) > FLOAT32_MAX:
                        raise DataError(
                            f"{where}: {value!r} overflows float32 (largest {FLOAT32_MAX:.4g}), which downslope "
                            f"computes in; rescale the column in the file (other units) or leave it out "
                            f"with --drop {col}"
                        )
                    X[r, out] = number
                out += size
        return X

    def encode_target(self, values: list[str], source: str, column_index: int, first_line: int = 2) -> np.ndarray:
        lines = _line_numbers(values, first_line)
        if self.task == "classification":
            lookup = {c: i for i, c in enumerate(self.classes)}
            out = np.empty(len(values), dtype=np.int64)
            for r, v in enumerate(values):
                key = class_key(v)
                if key not in lookup:
                    raise DataError(
                        f"{source}:{lines[r]}:{column_index + 1} (column {self.target!r}): unknown class {v!r}; "
                        f"known: {self.classes}"
                    )
                out[r] = lookup[key]
            return out
        y = np.empty((len(values), 1), dtype=np.float32)
        for r, v in enumerate(values):
            where = f"{source}:{lines[r]}:{column_index + 1} (column {self.target!r})"
            number = _as_float(v)
            if number is None or not math.isfinite(number):
                raise DataError(f"{where}: expected a finite number, got {v!r}")
            if abs(number) > FLOAT32_MAX:
                raise DataError(
                    f"{where}: target {v!r} overflows float32 (largest {FLOAT32_MAX:.4g}), which downslope computes "
                    "in; rescale the target column in the file (other units)"
                )
            y[r, 0] = number
        return y


def _line_numbers(rows: Any, first_line: int) -> list[int]:
    """File line of each row: rows read by :func:`read_rows` remember theirs (blank lines are skipped)."""
    found = getattr(rows, "lines", None)
    if found is not None and len(found) == len(rows):
        return list(found)
    return list(range(first_line, first_line + len(rows)))


class _Rows(list):  # type: ignore[type-arg]
    """Rows of a CSV that remember the file line each one came from."""

    lines: list[int]


CsvRows, line_numbers = _Rows, _line_numbers  # public names: the CLI reads a run's inputs back with them


class Imputer:
    """Fills NaN features with values fitted on the training rows (scikit-learn's SimpleImputer).

    ``strategy`` is ``mean``, ``median`` or ``most_frequent`` for numeric features; a one-hot block
    (``blocks`` from :meth:`TabularEncoder.blocks`) is filled with its most frequent category.

    Example:
        >>> import numpy as np
        >>> imp = Imputer("median").fit(np.array([[1.0], [np.nan], [3.0], [10.0]]))
        >>> imp.transform(np.array([[np.nan]])).tolist()
        [[3.0]]
    """

    def __init__(self, strategy: str = "mean") -> None:
        if strategy not in IMPUTE:
            raise ConfigError(f"Imputer: strategy must be one of {', '.join(IMPUTE)}, got {strategy!r}")
        self.strategy = strategy
        self.fill: np.ndarray | None = None

    def fit(self, X: Any, blocks: list[tuple[int, int, bool]] | None = None) -> Imputer:
        from .memmap import is_lazy

        if is_lazy(X):
            return self._fit_lazy(X, blocks)
        X = np.asarray(X, dtype=np.float64)
        blocks = blocks or [(j, j + 1, False) for j in range(X.shape[1])]
        fill = np.zeros(X.shape[1], dtype=np.float32)
        for start, stop, categorical in blocks:
            part = X[:, start:stop]
            seen = part[~np.isnan(part).any(axis=1)]
            if len(seen) == 0:
                continue  # nothing seen in training: 0 (no category / the standardized mean)
            if categorical:
                fill[start + int(np.argmax(seen.sum(axis=0)))] = 1.0
            elif self.strategy == "mean":
                fill[start] = seen.mean()
            elif self.strategy == "median":
                fill[start] = np.median(seen)
            else:
                values, counts = np.unique(seen, return_counts=True)
                fill[start] = values[np.argmax(counts)]  # ties: the smallest value, as scikit-learn
        self.fill = fill
        return self

    def _fit_lazy(self, X: Any, blocks: list[tuple[int, int, bool]] | None) -> Imputer:
        """The same fill values from a memory-mapped source, in passes over chunks of rows: one for
        means and one-hot blocks, and one per column for medians and most frequent values."""
        width = X.shape[1]
        blocks = blocks or [(j, j + 1, False) for j in range(width)]
        sums = np.zeros(width)
        counts = np.zeros(len(blocks))
        for chunk in X.raw().chunks():
            wide = chunk.astype(np.float64)
            for b, (start, stop, _) in enumerate(blocks):
                part = wide[:, start:stop]
                seen = ~np.isnan(part).any(axis=1)
                sums[start:stop] += part[seen].sum(axis=0)
                counts[b] += seen.sum()
        fill = np.zeros(width, dtype=np.float32)
        for b, (start, stop, categorical) in enumerate(blocks):
            if counts[b] == 0:
                continue
            if categorical:
                fill[start + int(np.argmax(sums[start:stop]))] = 1.0
            elif self.strategy == "mean":
                fill[start] = sums[start] / counts[b]
            else:
                column = np.concatenate([c[:, start] for c in X.raw().chunks()]).astype(np.float64)
                Xj = Imputer(self.strategy).fit(column.reshape(-1, 1))
                assert Xj.fill is not None
                fill[start] = Xj.fill[0]
        self.fill = fill
        return self

    def transform(self, X: Any) -> Any:
        from .memmap import is_lazy

        if self.fill is None:
            raise ConfigError("Imputer.transform before fit")
        if is_lazy(X):
            return X.filled(self.fill)
        X = np.array(X, dtype=np.float32)
        rows, cols = np.nonzero(np.isnan(X))
        X[rows, cols] = self.fill[cols]
        return X

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "fill": self.fill}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Imputer:
        imp = cls(str(state["strategy"]))
        imp.fill = np.asarray(state["fill"], dtype=np.float32)
        return imp


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


def _choose_columns(source: str, header: list[str], target: str | None, drop: Any) -> tuple[str, list[str], list[str]]:
    """The target column (default: the last one not dropped), the feature columns and the dropped
    ones, as both CSV readers choose them; an unknown or dropped target and an unknown --drop name are one-line errors."""
    dropped = [d.strip() for d in (drop or []) if d.strip()]
    unknown = [d for d in dropped if d not in header]
    if unknown:
        raise ConfigError(f"{source}: --drop names column(s) {unknown} that the file lacks; columns are {header}")
    target = ([h for h in header if h not in dropped] or header)[-1] if target is None else target
    if target not in header:
        raise DataError(f"{source}: no target column {target!r}; columns are {header}")
    if target in dropped:
        raise ConfigError(f"{source}: the target column {target!r} cannot be dropped")
    return target, [h for h in header if h != target and h not in dropped], dropped


def _forced_categorical(categorical: list[str] | None, columns: list[str]) -> set[str]:
    """The columns ``categorical`` forces to one-hot; a name that is not a feature is a one-line error."""
    forced = set(categorical or [])
    unknown_cat = forced - set(columns)
    if unknown_cat:
        raise ConfigError(f"read_csv: categorical column(s) {sorted(unknown_cat)} not in the file's features {columns}")
    return forced


def _too_many_categories(source: str, col: str, n_distinct: int, n_values: int) -> DataError:
    """The error for a text column too varied to one-hot encode (an id or free text)."""
    return DataError(
        f"{source}: column {col!r} is text with {n_distinct} distinct values in {n_values} rows "
        f"(an id or free text?); one-hot encoding would make {n_distinct} features. Leave it out with "
        f"--drop {col} (or allow it with --max-categories {n_distinct})"
    )


def _check_options(missing: str, where: str) -> None:
    if missing not in MISSING_STRATEGIES:
        raise ConfigError(f"{where}: missing must be one of {', '.join(MISSING_STRATEGIES)}, got {missing!r}")


def _read_csv_columnar(
    source: str,
    p: Path,
    target: str | None,
    task: str | None,
    categorical: list[str] | None,
    missing: str,
    delimiter: str,
    drop: list[str] | None,
    max_categories: int,
    progress: bool,
) -> tuple[Table, TabularEncoder]:
    """:func:`read_csv` by pyarrow's C parser, column by column; :class:`readers.Fallback` when the
    pure-Python reader must decide."""
    header = readers.csv_header(p, delimiter)
    named = [h for h in header if h not in (drop or [])] or header
    wide = {target if target is not None else named[-1]}  # the target's exact values decide classes
    facts = readers.read_csv_columns(p, header, delimiter, progress=progress, wide=wide)
    if not len(next(iter(facts.values())).kind):
        raise readers.Fallback("no data rows")

    def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
        return readers.csv_rows_at(p, wanted, delimiter)

    return _table_from_columns(
        source, header, facts, rows_at, True, target, task, categorical, missing, drop, max_categories
    )


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


RowsAt = Callable[[list[int]], dict[int, tuple[int, list[str]]]]


def _first_row(bad: np.ndarray) -> int | None:
    return int(np.argmax(bad)) if bad.any() else None


def _raise_at(rows_at: RowsAt, index: int, check: Callable[[int, list[str]], None], exact: bool) -> None:
    """Reproduce the pure-Python reader's error for one data row (``check`` raises it)."""
    found = rows_at([index]).get(index)
    if found is not None:
        check(*found)
    if exact:  # the two readers disagree about this row: let the pure-Python reader decide
        raise readers.Fallback("row not confirmed")
    raise DataError(f"row {index + 1}: a value that cannot be read")


def _encode_feature_columns(
    encoder: TabularEncoder,
    header: list[str],
    cols: dict[str, readers.Column],
    keep: np.ndarray,
    rows_at: RowsAt,
    exact: bool,
    source: str,
) -> np.ndarray:
    """:meth:`TabularEncoder.encode_features` column by column: the first bad cell in row-major order
    (as the row-by-row encoder meets it) is reported by that encoder on its row; each column's
    facts are dropped from ``cols`` once encoded (except the target's)."""
    n = len(keep)
    missing = encoder.missing
    categories = encoder.categories
    positions: dict[str, np.ndarray] = {}
    first_bad: int | None = None
    for col in encoder.columns:
        c = cols[col]
        bad = c.missing if missing == "error" else np.zeros(n, bool)
        if col in categories:
            if c.codes is None or not c.complete:
                if exact and not c.missing.all():
                    raise readers.Fallback("the text of some cells is needed")
                position = np.zeros(0, dtype=np.int64)
            else:
                known = {value: i for i, value in enumerate(categories[col])}
                position = np.array([known.get(text, -1) for text in c.strings], dtype=np.int64)
                present = ~c.missing
                unseen = np.zeros(n, bool)
                unseen[present] = position[c.codes[present]] < 0
                bad = bad | unseen
            positions[col] = position
        else:
            number = c.kind == readers.NUMBER
            with np.errstate(invalid="ignore"):
                wrong = (c.kind == readers.BAD_NUMBER) | (
                    number & (~np.isfinite(c.num) | (np.abs(c.num) > FLOAT32_MAX))
                )
            bad = bad | (c.kind == readers.TEXT) | wrong
        row = _first_row(bad)
        if row is not None and (first_bad is None or row < first_bad):
            first_bad = row
    if first_bad is not None:
        index = int(keep[first_bad])

        def check_features(line: int, cells: list[str]) -> None:
            one = _Rows([cells])
            one.lines = [line]
            encoder.encode_features(header, one, source)

        _raise_at(rows_at, index, check_features, exact)
    X = np.zeros((n, len(encoder.feature_names)), dtype=np.float32)
    for (start, stop, is_categorical), col in zip(encoder.blocks(), encoder.columns):
        c = cols.pop(col) if col != encoder.target else cols[col]  # each column's facts go once encoded
        if is_categorical:
            rows = np.flatnonzero(~c.missing)
            if len(rows):
                assert c.codes is not None
                X[rows, start + positions[col][c.codes[rows]]] = 1.0
            X[c.missing, start:stop] = np.nan
        else:
            X[:, start] = np.where(c.missing, np.nan, c.num)
    return X


def encode_csv(
    path: str | os.PathLike[str],
    encoder: TabularEncoder,
    target: str | None = None,
    progress: bool = False,
    need_target: bool = False,
    delimiter: str = ",",
) -> tuple[list[str], np.ndarray, np.ndarray | None] | None:
    """A CSV encoded by a trained ``encoder`` through the fast reader: the header, the features and,
    when the file has the target column, the targets (rows without a target left out unless the
    encoder's ``missing`` is ``error``). None when the fast reader is not available or declines the
    file: then ``read_rows`` with :meth:`TabularEncoder.encode_features` (same results and errors).
    ``delimiter`` is the field separator the file was written with."""
    if not readers.fast_csv_available():
        return None
    p = Path(path)
    if not p.is_file():
        return None
    source = str(path)
    try:
        header = readers.csv_header(p, delimiter)
        name = target or encoder.target
        # predict ignores a target column (its cells may be empty: the values to predict)
        has_target = need_target and name is not None and name in header
        if need_target and not has_target:
            return None  # the row-by-row path says which column is missing
        cols = readers.read_csv_columns(
            p, header, delimiter, progress=progress, wide={str(name)} if has_target else set()
        )
        n_rows = len(next(iter(cols.values())).kind)
        if not n_rows:
            raise readers.Fallback("no data rows")
        missing_cols = [c for c in encoder.columns if c not in header]
        if missing_cols:
            raise DataError(
                f"{source}: missing column(s) {missing_cols}; the model was trained on columns {encoder.columns}"
            )

        def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
            return readers.csv_rows_at(p, wanted, delimiter)

        keep = np.arange(n_rows)
        if has_target and encoder.missing != "error":
            keep = np.flatnonzero(~cols[str(name)].missing)  # as in training: rows without a target are left out
            cols = {c: cols[c].take(keep) for c in {*encoder.columns, str(name)}}
        t = cols[str(name)] if has_target else None
        X = _encode_feature_columns(encoder, header, cols, keep, rows_at, True, source)
        if t is None:
            return header, X, None
        y = _encode_target_column(encoder, t, header.index(str(name)), keep, rows_at, source)
        return header, X, y
    except readers.Fallback:
        return None


def _encode_target_column(
    encoder: TabularEncoder, t: readers.Column, t_idx: int, keep: np.ndarray, rows_at: RowsAt, source: str
) -> np.ndarray:
    """:meth:`TabularEncoder.encode_target` column by column (same errors, by the same encoder)."""
    if t.num.dtype != np.float64 or (t.kind == readers.BAD_NUMBER).any():
        raise readers.Fallback("the target was not read in float64")
    is_text = t.kind == readers.TEXT
    y: np.ndarray
    if encoder.task == "classification":
        lookup = {c: i for i, c in enumerate(encoder.classes)}
        if t.codes is not None and t.complete and not t.missing.any():
            distinct, inverse = np.unique(t.codes, return_inverse=True)
            keys = [class_key(t.strings[int(k)]) for k in distinct]
        elif not is_text.any() and not t.missing.any() and np.isfinite(t.num).all():
            distinct, inverse = np.unique(t.num, return_inverse=True)
            keys = [class_key(float(v)) for v in distinct]
        else:
            raise readers.Fallback("the text of some labels is needed")
        y = np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)[inverse.reshape(-1)]
        bad = y < 0
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            bad = t.missing | is_text | ~np.isfinite(t.num) | (np.abs(t.num) > FLOAT32_MAX)
            y = t.num.astype(np.float32).reshape(-1, 1)  # bad values are reported below
    row = _first_row(bad)
    if row is not None:
        index = int(keep[row])

        def check_target(line: int, cells: list[str]) -> None:
            encoder.encode_target([cells[t_idx]], source, t_idx, first_line=line)

        _raise_at(rows_at, index, check_target, True)
    return y


def _rows_kept(
    cols: dict[str, readers.Column], target: str, used: list[str], missing: str, source: str, notes: list[str]
) -> np.ndarray:
    """The indices of the rows that ``missing`` keeps (drop: no missing value; imputing: a present
    target), noting how many were dropped; keeping none is a one-line error."""
    n_rows = len(cols[target].kind)
    bad = cols[target].missing.copy()
    if missing == "drop":
        for col in used:
            bad |= cols[col].missing
    keep = np.flatnonzero(~bad)
    if len(keep) < n_rows:
        what = "a missing value" if missing == "drop" else "a missing target"
        notes.append(f"{source}: dropped {n_rows - len(keep)} of {n_rows} rows with {what}")
    if not len(keep):
        raise DataError(f"{source}: every row has {'a missing value' if missing == 'drop' else 'a missing target'}")
    return keep


def _column_categories(
    source: str,
    columns: list[str],
    cols: dict[str, readers.Column],
    forced: set[str],
    exact: bool,
    max_categories: int,
) -> dict[str, list[str]]:
    """The one-hot categories of each text (or forced) feature column, from the cell facts."""
    categories: dict[str, list[str]] = {}
    for col in columns:
        c = cols[col]
        present = ~c.missing
        n_values, n_texts = int(present.sum()), int((c.kind == readers.TEXT).sum())
        if col not in forced and n_texts * 2 <= n_values:
            continue  # a numeric column (a stray word in it is reported when the rows are encoded)
        if c.codes is None or not c.complete:
            if exact or n_values:
                raise readers.Fallback("the text of some cells is needed")
        used_codes = np.unique(c.codes[present]) if c.codes is not None else np.zeros(0, np.int64)
        distinct = sorted(c.strings[int(k)] for k in used_codes)
        if len(distinct) > max_categories:
            raise _too_many_categories(source, col, len(distinct), n_values)
        categories[col] = distinct
    return categories


def _column_task(is_text: np.ndarray, numbers: np.ndarray) -> tuple[str, str]:
    """:func:`infer_task` (:data:`TASK_RULE`) on a target column's cell facts: the task and the reason."""
    n = len(numbers)
    if is_text.any():
        return "classification", "the target holds text"
    distinct_numbers = np.unique(numbers)
    k = len(distinct_numbers)
    if not (np.isfinite(distinct_numbers).all() and (distinct_numbers == np.round(distinct_numbers)).all()):
        return "regression", "the target holds non-integer numbers"
    if k <= 20 or (k <= 100 and n >= 5 * k):
        return "classification", f"the target holds {k} distinct integers in {n} rows"
    return "regression", f"the target holds {k} distinct integers in {n} rows (too many to be classes)"


def _column_classes(t: readers.Column, exact: bool, source: str, target: str) -> tuple[list[str], np.ndarray]:
    """The sorted class names of a target column and each row's class index; one class is an error."""
    is_text = t.kind == readers.TEXT
    if t.codes is not None and t.complete:
        used_codes, inverse = np.unique(t.codes, return_inverse=True)
        keys = [class_key(t.strings[int(k)]) for k in used_codes]
    elif not is_text.any():
        uniq, inverse = np.unique(t.num, return_inverse=True)
        if exact and not np.isfinite(uniq).all():
            raise readers.Fallback("non-finite labels")  # their class name is the cell's own text
        keys = [class_key(float(v)) for v in uniq]
    else:
        raise readers.Fallback("the text of some labels is needed")
    classes = sorted_classes(keys)
    if len(classes) < 2:
        raise _one_class_error(source, target, classes[0], len(t.kind))
    lookup = {c: i for i, c in enumerate(classes)}
    return classes, np.array([lookup[k] for k in keys], dtype=np.int64)[inverse.reshape(-1)]


def _table_from_columns(
    source: str,
    header: list[str],
    cols: dict[str, readers.Column],
    rows_at: RowsAt,
    exact: bool,
    target: str | None,
    task: str | None,
    categorical: list[str] | None,
    missing: str,
    drop: list[str] | None,
    max_categories: int,
) -> tuple[Table, TabularEncoder]:
    """:func:`read_csv`'s rules applied column by column to the cell facts of :mod:`readers`.

    Each step mirrors the row-by-row code of :func:`read_csv` and raises the same errors in the same
    order; a message about a cell is produced by running the row-by-row encoder on that one row
    (found again in the file), so its text is the pure-Python reader's own. With ``exact`` (CSV),
    cases where the cell facts are not enough to be sure raise :class:`readers.Fallback`."""
    notes: list[str] = []
    target, columns, dropped = _choose_columns(source, header, target, drop)
    t_idx = header.index(target)
    used = columns + [target]
    n_rows = len(cols[target].kind)
    keep = np.arange(n_rows)
    if missing != "error":
        keep = _rows_kept(cols, target, used, missing, source, notes)
        cols = {c: cols[c].take(keep) for c in used}
    forced = _forced_categorical(categorical, columns)
    categories = _column_categories(source, columns, cols, forced, exact, max_categories)
    t = cols[target]
    if t.num.dtype != np.float64 or (t.kind == readers.BAD_NUMBER).any():
        raise readers.Fallback("the target was not read in float64")
    first = _first_row(t.missing)
    if first is not None:
        found = rows_at([int(keep[first])]).get(int(keep[first]))
        if found is None and exact:
            raise readers.Fallback("row not confirmed")
        line = found[0] if found is not None else first + 1
        raise DataError(
            f"{source}:{line}:{t_idx + 1} (column {target!r}): missing target value; "
            "--missing drop (or mean/median/most_frequent) drops such rows"
        )
    is_text = t.kind == readers.TEXT
    numbers = t.num
    if exact and not is_text.all() and np.isnan(numbers[~is_text]).any():
        raise readers.Fallback("NaN labels")  # '-nan': Python's set of floats decides the classes
    reason = "given"
    if task is None:
        task, reason = _column_task(is_text, numbers)
    if task not in ("classification", "regression"):
        raise ConfigError(f"read_csv: task must be 'classification' or 'regression', got {task!r}")
    classes: list[str] = []
    y_index: np.ndarray | None = None
    if task == "classification":
        classes, y_index = _column_classes(t, exact, source, target)
    encoder = TabularEncoder(columns, target, categories, task, classes, missing, dropped)
    X = _encode_feature_columns(encoder, header, cols, keep, rows_at, exact, source)
    if task == "classification":
        assert y_index is not None
        y: np.ndarray = y_index
    else:
        with np.errstate(invalid="ignore"):
            bad_y = is_text | ~np.isfinite(numbers) | (np.abs(numbers) > FLOAT32_MAX)
        row = _first_row(bad_y)
        if row is not None:
            index = int(keep[row])

            def check_target(line: int, cells: list[str]) -> None:
                encoder.encode_target([cells[t_idx]], source, t_idx, first_line=line)

            _raise_at(rows_at, index, check_target, exact)
        y = numbers.astype(np.float32).reshape(-1, 1)
    table = Table(X, y, task, Path(source).stem, encoder.feature_names, target, classes)
    table.notes = notes
    table.task_reason = reason
    return table, encoder


def read_parquet(
    path: str | os.PathLike[str],
    target: str | None = None,
    task: str | None = None,
    missing: str = "error",
    drop: list[str] | None = None,
    max_categories: int = MAX_CATEGORIES,
    progress: bool = False,
) -> tuple[Table, TabularEncoder]:
    """Read a Parquet file (pyarrow) with :func:`read_csv`'s semantics: target by name, text columns
    one-hot, missing values (nulls, and text cells such as ``NA``) by ``missing``, LabelEncoder classes.

    Numeric and boolean columns are taken as numbers (nulls and NaN are missing values); text
    columns follow the CSV rules cell by cell (a numeric text column with a stray word is an error).
    In messages, ``file:N:column`` counts rows from 1 (a Parquet file has no lines).
    """
    _check_options(missing, "read_parquet")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    header, columns = readers.read_parquet_columns(p, progress=progress)
    if not len(next(iter(columns.values())).kind):
        raise DataError(f"{p}: no data rows")

    def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
        cells = readers.parquet_rows(p, wanted, header)
        return {r: (r + 1, row) for r, row in zip(wanted, cells)}

    return _table_from_columns(
        str(path), header, columns, rows_at, False, target, task, None, missing, drop, max_categories
    )


def _load_npz_or_npy(p: Path, need_y: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{p}: cannot read ({exc}); object arrays and pickles are refused") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: not a readable NumPy file ({type(exc).__name__}: {exc}); is it truncated?") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        try:
            with loaded:
                keys = set(loaded.files)
                if not ({"X", "y"} <= keys if need_y else "X" in keys):
                    raise DataError(f"{p}: an .npz needs arrays named 'X' and 'y', found {sorted(keys)}")
                return loaded["X"], (loaded["y"] if "y" in keys else None)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{p}: a damaged .npz archive ({type(exc).__name__}: {exc}); is it truncated?") from None
        except ValueError as exc:
            raise DataError(f"{p}: cannot read ({exc}); object arrays and pickles are refused") from None
    if loaded.ndim != 2 or loaded.shape[1] < 2:
        raise DataError(f"{p}: an .npy needs a 2-D array whose last column is the target, got shape {loaded.shape}")
    return loaded[:, :-1], loaded[:, -1]


def _check_features_lazy(X: Any, where: str, missing: str = "error", progress: bool = False) -> None:
    """:func:`check_features` for a memory-mapped source, in one pass over chunks (same messages)."""
    meter = readers.Progress(Path(where).name, len(X) * X.shape[1] * X.base.dtype.itemsize, enabled=progress)
    dtype = X.base.dtype
    if dtype.kind not in "fiub":
        raise DataError(f"{where}: features must be numeric, got dtype {dtype}")
    first_bad: tuple[int, int, bool] | None = None
    first_big: tuple[int, int, float] | None = None
    n_bad = 0
    offset = 0
    size = X.chunk_rows()
    for begin in range(0, len(X), size):
        wide = np.asarray(X.base[begin : begin + size, X.start : X.stop], dtype=np.float64)
        nan = np.isnan(wide)
        bad = nan | np.isinf(wide) if missing == "error" else np.isinf(wide)
        if bad.any():
            if first_bad is None:
                r, c = np.argwhere(bad)[0]
                first_bad = (offset + int(r), int(c), bool(nan[r, c]))
            n_bad += int(bad.sum())
        if first_big is None and first_bad is None:
            big = np.argwhere(np.abs(np.nan_to_num(wide)) > FLOAT32_MAX)
            if len(big):
                r, c = big[0]
                first_big = (offset + int(r), int(c), float(wide[r, c]))
        offset += len(wide)
        meter.update(offset * wide.shape[1] * X.base.dtype.itemsize)
    meter.done(f" ({offset:,} rows, memory-mapped)")
    if first_bad is not None:
        r, c, was_nan = first_bad
        hint = "; choose what to do with --missing drop|mean|median|most_frequent" if was_nan else ""
        raise DataError(f"{where}: non-finite feature value at row {r}, column {c} ({n_bad} in all){hint}")
    if first_big is not None:
        r, c, value = first_big
        raise DataError(
            f"{where}: feature value {value:g} at row {r}, column {c} overflows float32 (largest "
            f"{FLOAT32_MAX:.4g}), which downslope computes in; rescale that column before saving the file"
        )


def _open_npy_lazy(p: Path) -> tuple[Any, np.ndarray]:
    """A big ``.npy`` memory-mapped: its features as a :class:`~.memmap.RowSource`, its target column read."""
    from .memmap import RowSource, return_big_blocks_to_the_system

    return_big_blocks_to_the_system()  # streaming passes must not leave a fragmented heap behind
    try:
        base = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{p}: cannot read ({exc}); object arrays and pickles are refused") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: not a readable NumPy file ({type(exc).__name__}: {exc}); is it truncated?") from None
    if base.ndim != 2 or base.shape[1] < 2:
        raise DataError(f"{p}: an .npy needs a 2-D array whose last column is the target, got shape {base.shape}")
    return RowSource(base, 0, base.shape[1] - 1), np.array(base[:, -1])


def _label_task(y: np.ndarray) -> tuple[str, str]:
    """:func:`infer_task` for numeric labels, on their distinct values (no Python object per row)."""
    values = np.asarray(y, dtype=np.float64).reshape(-1)
    distinct = np.unique(values)
    k, n = len(distinct), len(values)
    with np.errstate(invalid="ignore"):
        integral = bool(np.isfinite(distinct).all() and (distinct == np.round(distinct)).all())
    if not integral:
        return "regression", "the target holds non-integer numbers"
    if k <= 20 or (k <= 100 and n >= 5 * k):
        return "classification", f"the target holds {k} distinct integers in {n} rows"
    return "regression", f"the target holds {k} distinct integers in {n} rows (too many to be classes)"


def check_features(X: np.ndarray, where: str, missing: str = "error") -> np.ndarray:
    """Numeric features as a 2-D array; inf or float32 overflow is an error, NaN too unless ``missing`` fills it.

    Example:
        >>> check_features(np.array([[1.0, 2.0]]), "x.npy").shape
        (1, 2)
    """
    if X.dtype.kind not in "fiub":
        raise DataError(f"{where}: features must be numeric, got dtype {X.dtype}")
    X = X.reshape(len(X), -1) if X.ndim != 2 else X
    wide = np.asarray(X, dtype=np.float64)
    nan = np.isnan(wide)
    bad = np.argwhere(nan | np.isinf(wide)) if missing == "error" else np.argwhere(np.isinf(wide))
    if len(bad):
        r, c = bad[0]
        hint = "; choose what to do with --missing drop|mean|median|most_frequent" if nan[r, c] else ""
        raise DataError(f"{where}: non-finite feature value at row {r}, column {c} ({len(bad)} in all){hint}")
    big = np.argwhere(np.abs(np.nan_to_num(wide)) > FLOAT32_MAX)
    if len(big):
        r, c = big[0]
        raise DataError(
            f"{where}: feature value {wide[r, c]:g} at row {r}, column {c} overflows float32 (largest "
            f"{FLOAT32_MAX:.4g}), which downslope computes in; rescale that column before saving the file"
        )
    return X


def _label_codes(
    p: Path, y: np.ndarray, labels: list[Any] | None, classes: list[str] | None
) -> tuple[np.ndarray, list[str]]:
    """Each row's class index and the class names: found anew (sorted; one class is an error) or, given
    ``classes``, a trained model's (a label outside them is an error). Numeric labels are handled on
    their distinct values; ``labels`` are the text labels row by row."""
    if y.dtype.kind in "fiu":
        distinct, inverse = np.unique(np.asarray(y, dtype=np.float64).reshape(-1), return_inverse=True)
        distinct_keys = [class_key(v) for v in distinct.tolist()]
        inverse = inverse.reshape(-1)
    else:
        assert labels is not None
        distinct_keys = [class_key(v.decode() if isinstance(v, bytes) else v) for v in labels]
        inverse = np.arange(len(distinct_keys))
    if classes is None:
        classes = sorted_classes(distinct_keys)
        if len(classes) < 2:
            raise _one_class_error(str(p), "y", classes[0], len(inverse))
    lookup = {c: i for i, c in enumerate(classes)}
    codes = np.array([lookup.get(k, -1) for k in distinct_keys], dtype=np.int64)[inverse]
    if (codes < 0).any():
        first = distinct_keys[int(inverse[int(np.argmax(codes < 0))])]
        raise DataError(f"{p}: label {first!r} is not one of the model's classes {classes}")
    return codes, classes


def _check_regression_target(p: Path, y: np.ndarray) -> None:
    """A regression target must be numeric and finite in float32; the first bad row is named."""
    if y.dtype.kind not in "fiub":
        raise DataError(f"{p}: regression needs numeric targets y, got dtype {y.dtype}")
    wide = np.asarray(y, dtype=np.float64)
    if not np.isfinite(wide).all() or (np.abs(np.nan_to_num(wide)) > FLOAT32_MAX).any():
        r = int(np.argwhere(~np.isfinite(wide) | (np.abs(np.nan_to_num(wide)) > FLOAT32_MAX))[0][0])
        raise DataError(
            f"{p}: target at row {r} is {wide.reshape(len(wide), -1)[r].tolist()}: not a finite float32 "
            f"(largest {FLOAT32_MAX:.4g}); rescale y"
        )


def read_arrays(
    path: str | os.PathLike[str],
    task: str | None = None,
    missing: str = "error",
    classes: list[str] | None = None,
    progress: bool = False,
) -> Table:
    """Read ``.npz`` (arrays ``X`` and ``y``) or ``.npy`` (last column is the target). No pickle.

    Labels follow the same rules as a CSV's (:data:`TASK_RULE`, LabelEncoder classes, text labels
    allowed); ``classes`` maps labels to a trained model's classes instead of finding them anew.
    NaN features are kept for an :class:`Imputer` when ``missing`` is a filling strategy; rows
    holding NaN are dropped with ``missing='drop'``.
    """
    _check_options(missing, "read_arrays")
    from .memmap import is_lazy

    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    X: Any
    y: Any
    keep: np.ndarray
    if p.suffix.lower() == ".npy" and p.stat().st_size >= LAZY_BYTES:
        X, y = _open_npy_lazy(p)  # memory-mapped: batches are read from the file as training needs them
        _check_features_lazy(X, str(p), missing, progress)
    else:
        X, y = _load_npz_or_npy(p)
        assert y is not None
        if len(X) != len(y):
            raise DataError(f"{p}: X has {len(X)} rows but y has {len(y)}")
        X = check_features(X, str(p), missing)
    notes: list[str] = []
    if y.dtype.kind not in "fiubUS":
        raise DataError(f"{p}: labels y must be numbers or text, got dtype {y.dtype}")
    if missing == "drop":
        if is_lazy(X):
            keep = np.concatenate([~np.isnan(c).any(axis=1) for c in X.chunks()])
        else:
            keep = np.asarray(~np.isnan(np.asarray(X, dtype=np.float64)).any(axis=1))
        if not keep.all():
            notes.append(f"{p}: dropped {int((~keep).sum())} of {len(X)} rows with a missing value")
            X = X.subset(np.flatnonzero(keep)) if is_lazy(X) else X[keep]
            y = y[keep]
        if not len(X):
            raise DataError(f"{p}: every row has a missing value")
    one_label = y.ndim == 1 or y.shape[1:] == (1,)
    numeric = y.dtype.kind in "fiu"  # labels handled on their distinct values (a big file has millions)
    labels = y.reshape(-1).tolist() if one_label and not numeric else None
    reason = "given"
    if classes is not None:
        task = "classification"
    elif task is None:
        if not one_label:
            task, reason = "regression", "y has several columns"
        elif y.dtype.kind == "b":
            task, reason = "classification", "y is boolean"
        elif numeric:
            task, reason = _label_task(y)
        else:
            task, reason = infer_task(labels)
    if task == "classification":
        if not one_label:
            raise DataError(f"{p}: classification needs one label per row, got y of shape {y.shape}")
        codes, classes = _label_codes(p, y, labels, classes)
        table = Table(X, codes, task, p.stem, class_names=list(classes))
    else:
        _check_regression_target(p, y)
        table = Table(X, y, task, p.stem)
    table.notes = notes
    table.task_reason = reason
    return table


def read_features(
    path: str | os.PathLike[str], n_features: int, delimiter: str = ","
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw features of a file for a model with ``n_features`` inputs, plus the last column when the
    file has one more (a target). CSV (with or without a header row; fields separated by ``delimiter``),
    NPY or NPZ (``X``, ``y`` optional)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        X, y = _load_npz_or_npy(p, need_y=False)
        return check_features(X, str(p), "mean"), y
    if suffix == ".npy":
        try:
            loaded = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{p}: not a readable NumPy array ({exc}); object arrays and pickles are refused") from None
        data = loaded.reshape(-1, 1) if loaded.ndim == 1 else loaded
        data = check_features(data, str(p), "mean")
    elif suffix == ".csv":
        header, rows = read_rows(p, delimiter)
        if all(_as_float(h) is not None for h in header):  # no header row: the first line is data
            rows = [header] + rows
        data = np.empty((len(rows), len(rows[0])), dtype=np.float64)
        lines = _line_numbers(rows, 1)
        for r, row in enumerate(rows):
            for j, v in enumerate(row):
                number = np.nan if _is_missing(v) else _as_float(v)
                if number is None:
                    raise DataError(f"{p}:{lines[r]}:{j + 1}: expected a number, got {v!r}")
                data[r, j] = number
        data = check_features(data, str(p), "mean")
    else:
        raise DataError(f"{p}: unsupported file type {suffix!r}; expected .csv, .npz or .npy")
    if data.shape[1] == n_features:
        return data, None
    if data.shape[1] == n_features + 1:
        return data[:, :-1], data[:, -1]
    raise DataError(
        f"{p}: {data.shape[1]} columns, but the model takes {n_features} features (or {n_features} plus a target)"
    )


def read_table(
    path: str | os.PathLike[str],
    target: str | None = None,
    task: str | None = None,
    missing: str = "error",
    drop: list[str] | None = None,
    max_categories: int = MAX_CATEGORIES,
    progress: bool = False,
    delimiter: str = ",",
) -> tuple[Table, TabularEncoder | None]:
    """Read any supported file by its extension: .csv, .parquet, .npz or .npy.

    ``delimiter`` is the CSV field separator (``';'`` for files written by spreadsheets in many locales).

    A ``.npy`` of at least :data:`LAZY_BYTES` is memory-mapped: its features stay in the file and
    are read batch by batch (see :mod:`downslope.data.memmap`). ``progress`` says on stderr what is
    being read when that takes more than a second."""
    suffix = Path(path).suffix.lower()
    options = {"target": target, "task": task, "missing": missing, "drop": drop, "max_categories": max_categories}
    if suffix == ".csv":
        return read_csv(path, progress=progress, delimiter=delimiter, **options)  # type: ignore[arg-type]
    if suffix == ".parquet":
        return read_parquet(path, progress=progress, **options)  # type: ignore[arg-type]
    if suffix in (".npz", ".npy"):
        if drop:
            raise ConfigError(f"{path}: --drop names CSV columns; an {suffix} file has none")
        return read_arrays(path, task=task, missing=missing, progress=progress), None
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .parquet, .npz or .npy")
