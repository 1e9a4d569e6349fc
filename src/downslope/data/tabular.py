"""User files: CSV (header row, target column by name, categorical columns one-hot) and NPZ/NPY.

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
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .datasets import Table

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}


def _is_missing(value: str) -> bool:
    return value.strip().lower() in MISSING


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class TabularEncoder:
    """How CSV columns become model inputs: numeric columns as they are, categorical ones one-hot.

    It is fitted on the training file and reused for prediction files, so the columns line up.
    """

    def __init__(
        self, columns: list[str], target: str | None, categories: dict[str, list[str]], task: str, classes: list[str]
    ):
        self.columns = columns  # feature columns in file order (target excluded)
        self.target = target
        self.categories = categories  # categorical column -> sorted category values
        self.task = task
        self.classes = classes  # class labels for classification targets (index = class id)

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            if col in self.categories:
                names.extend(f"{col}={v}" for v in self.categories[col])
            else:
                names.append(col)
        return names

    def state_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "target": self.target,
            "categories": self.categories,
            "task": self.task,
            "classes": self.classes,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TabularEncoder:
        return cls(
            list(state["columns"]),
            state["target"],
            {k: list(v) for k, v in state["categories"].items()},
            state["task"],
            list(state["classes"]),
        )

    def encode_features(self, header: list[str], rows: list[list[str]], source: str, first_line: int = 2) -> np.ndarray:
        """Feature matrix for ``rows`` (a header naming at least this encoder's columns)."""
        missing_cols = [c for c in self.columns if c not in header]
        if missing_cols:
            raise DataError(
                f"{source}: missing column(s) {missing_cols}; the model was trained on columns {self.columns}"
            )
        width = len(self.feature_names)
        X = np.zeros((len(rows), width), dtype=np.float32)
        position = {c: header.index(c) for c in self.columns}
        for r, row in enumerate(rows):
            out = 0
            for col in self.columns:
                j = position[col]
                value = row[j]
                where = f"{source}:{first_line + r}:{j + 1} (column {col!r})"
                if _is_missing(value):
                    raise DataError(f"{where}: missing value")
                if col in self.categories:
                    cats = self.categories[col]
                    if value not in cats:
                        raise DataError(f"{where}: category {value!r} was not seen in training; known: {cats}")
                    X[r, out + cats.index(value)] = 1.0
                    out += len(cats)
                else:
                    number = _as_float(value)
                    if number is None:
                        raise DataError(f"{where}: expected a number, got {value!r}")
                    if not math.isfinite(number):
                        raise DataError(f"{where}: non-finite value {value!r}")
                    X[r, out] = number
                    out += 1
        return X

    def encode_target(self, values: list[str], source: str, column_index: int, first_line: int = 2) -> np.ndarray:
        if self.task == "classification":
            lookup = {c: i for i, c in enumerate(self.classes)}
            out = np.empty(len(values), dtype=np.int64)
            for r, v in enumerate(values):
                if v not in lookup:
                    raise DataError(
                        f"{source}:{first_line + r}:{column_index + 1} (column {self.target!r}): unknown class {v!r}; known: {self.classes}"
                    )
                out[r] = lookup[v]
            return out
        y = np.empty((len(values), 1), dtype=np.float32)
        for r, v in enumerate(values):
            number = _as_float(v)
            if number is None or not math.isfinite(number):
                raise DataError(
                    f"{source}:{first_line + r}:{column_index + 1} (column {self.target!r}): expected a finite number, got {v!r}"
                )
            y[r, 0] = number
        return y


def read_rows(path: str | os.PathLike[str], delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; ragged rows and empty files are errors naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    try:
        with open(p, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise DataError(f"{p}: the file is empty (expected a header row)") from None
            if len(set(header)) != len(header) or any(h == "" for h in header):
                raise DataError(f"{p}:1: the header needs unique, non-empty column names, got {header}")
            rows = []
            for row in reader:
                if not row or all(not v.strip() for v in row):
                    continue  # blank lines
                if len(row) != len(header):
                    raise DataError(
                        f"{p}:{reader.line_num}: expected {len(header)} fields (as in the header), got {len(row)}"
                    )
                rows.append([v.strip() for v in row])
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{p}: malformed CSV: {exc}") from None
    if not rows:
        raise DataError(f"{p}: no data rows after the header")
    return header, rows


def _infer_task(values: list[str]) -> str:
    numbers = [_as_float(v) for v in values]
    if any(n is None for n in numbers):
        return "classification"
    unique = {n for n in numbers if n is not None}
    if all(float(n).is_integer() for n in unique) and len(unique) <= 20:
        return "classification"
    return "regression"


def read_csv(
    path: str | os.PathLike[str],
    target: str | None = None,
    task: str | None = None,
    categorical: list[str] | None = None,
    missing: str = "error",
    delimiter: str = ",",
) -> tuple[Table, TabularEncoder]:
    """Read a CSV with a header row into a :class:`Table` and the encoder that made it.

    ``target`` names the target column (default: the last one). Columns holding text are one-hot
    encoded (``categorical`` forces it). ``task`` is inferred when not given: text or few integer
    values -> classification, otherwise regression. ``missing='error'`` reports the first missing
    value by file, line and column; ``missing='drop'`` drops such rows.
    """
    if missing not in ("error", "drop"):
        raise ConfigError(f"read_csv: missing must be 'error' or 'drop', got {missing!r}")
    header, rows = read_rows(path, delimiter)
    source = str(path)
    target = header[-1] if target is None else target
    if target not in header:
        raise DataError(f"{source}: no target column {target!r}; columns are {header}")
    t_idx = header.index(target)
    if missing == "drop":
        rows = [r for r in rows if not any(_is_missing(v) for v in r)]
        if not rows:
            raise DataError(f"{source}: every row has a missing value")
    columns = [h for h in header if h != target]
    categories: dict[str, list[str]] = {}
    forced = set(categorical or [])
    unknown = forced - set(columns)
    if unknown:
        raise ConfigError(f"read_csv: categorical column(s) {sorted(unknown)} not in the file's features {columns}")
    for col in columns:
        j = header.index(col)
        values = [r[j] for r in rows if not _is_missing(r[j])]
        if col in forced or any(_as_float(v) is None for v in values):
            categories[col] = sorted(set(values))
    target_values = [r[t_idx] for r in rows]
    for r, v in enumerate(target_values):
        if _is_missing(v):
            raise DataError(f"{source}:{r + 2}:{t_idx + 1} (column {target!r}): missing target value")
    task = _infer_task(target_values) if task is None else task
    if task not in ("classification", "regression"):
        raise ConfigError(f"read_csv: task must be 'classification' or 'regression', got {task!r}")
    classes: list[str] = []
    if task == "classification":
        numeric = all(_as_float(v) is not None for v in target_values)
        classes = sorted(set(target_values), key=(lambda v: float(v)) if numeric else str)
    encoder = TabularEncoder(columns, target, categories, task, classes)
    X = encoder.encode_features(header, rows, source)
    y = encoder.encode_target(target_values, source, t_idx)
    name = Path(path).stem
    return Table(X, y, task, name, encoder.feature_names, target, classes), encoder


def read_arrays(path: str | os.PathLike[str], task: str | None = None) -> Table:
    """Read ``.npz`` (arrays ``X`` and ``y``) or ``.npy`` (last column is the target). No pickle."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{p}: cannot read ({exc}); object arrays and pickles are refused") from None
    except OSError as exc:
        raise DataError(f"{p}: not a NumPy file ({exc})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = set(loaded.files)
            if not {"X", "y"} <= keys:
                raise DataError(f"{p}: an .npz needs arrays named 'X' and 'y', found {sorted(keys)}")
            X, y = loaded["X"], loaded["y"]
    else:
        if loaded.ndim != 2 or loaded.shape[1] < 2:
            raise DataError(f"{p}: an .npy needs a 2-D array whose last column is the target, got shape {loaded.shape}")
        X, y = loaded[:, :-1], loaded[:, -1]
    if X.dtype.kind not in "fiub":
        raise DataError(f"{p}: features must be numeric, got dtype {X.dtype}")
    X = X.reshape(len(X), -1) if X.ndim != 2 else X
    bad = np.argwhere(~np.isfinite(np.asarray(X, dtype=np.float64)))
    if len(bad):
        r, c = bad[0]
        raise DataError(f"{p}: non-finite feature value at row {r}, column {c} ({len(bad)} in all)")
    if task is None:
        task = (
            "classification"
            if y.dtype.kind in "iub" or (y.ndim == 1 and np.all(np.mod(y, 1) == 0) and len(np.unique(y)) <= 20)
            else "regression"
        )
    return Table(X, y, task, p.stem)


def read_table(
    path: str | os.PathLike[str], target: str | None = None, task: str | None = None
) -> tuple[Table, TabularEncoder | None]:
    """Read any supported file by its extension: .csv, .npz or .npy."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return read_csv(path, target=target, task=task)
    if suffix in (".npz", ".npy"):
        return read_arrays(path, task=task), None
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npz or .npy")
