"""What a table's cells mean: missing values, numbers, class labels and the task, the
:class:`TabularEncoder` that turns rows into features (one-hot for text columns) and the
:class:`Imputer` that fills missing values; the column choices and option checks both CSV readers
(:mod:`.csvfile` row by row, :mod:`.columns` column by column) share.

Example:
    >>> from downslope.data.encoding import class_key, infer_task
    >>> class_key("1.0"), infer_task(["a", "b", "a"])[0]
    ('1', 'classification')
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}
MISSING_STRATEGIES = ("error", "drop", "mean", "median", "most_frequent")
IMPUTE = ("mean", "median", "most_frequent")
MAX_CATEGORIES = 100
FLOAT32_MAX = float(np.finfo(np.float32).max)

TASK_RULE = (
    "text labels -> classification; numeric labels -> regression, unless every value is an integer and "
    "there are at most 20 distinct values, or at most 100 lying close together from 0 or 1 (class codes: "
    "spanning at most twice as many integers as there are values) with at least 5 rows per value on average "
    "(then classification); a target of numbers with a few stray words (at least 9 in 10 values numbers) is numeric "
    "and the stray cells are errors"
)

# A target column whose present values are at least this share numbers is numeric: its other cells are
# stray words ('-', '12.5a'), reported like a feature column's, not turned into hundreds of classes.
NUMERIC_TARGET_SHARE = 0.9


def integer_target_task(k: int, n: int, low: float, high: float) -> tuple[str, str]:
    """``(task, reason)`` for a target of ``n`` integers with ``k`` distinct values from ``low`` to
    ``high``, by :data:`TASK_RULE`. More than 20 distinct integers are classes only when they look like
    class codes: 0..K-1 or 1..K with few gaps. Prices rounded to thousands (44 distinct prices between
    1e5 and 3.6e5) and ages 18..70 are amounts, a regression.

    Example:
        >>> integer_target_task(44, 1000, 100_000, 360_000)[0], integer_target_task(44, 1000, 0, 43)[0]
        ('regression', 'classification')
        >>> integer_target_task(45, 1000, 18, 70)[0]
        'regression'
    """
    said = f"the target holds {k} distinct integers in {n} rows"
    if k <= 20:
        return "classification", said
    if k > 100 or n < 5 * k:
        return "regression", f"{said} (too many to be classes)"
    if high - low + 1 > 2 * k:
        return "regression", f"{said}, spread from {low:g} to {high:g} (too far apart to be class codes)"
    if low not in (0, 1):
        return "regression", f"{said}, from {low:g} to {high:g} (amounts, not class codes starting at 0 or 1)"
    return "classification", f"{said}, class codes from {low:g} to {high:g}"


def overriding(task: str, reason: str) -> str:
    """``reason`` for an inferred task, saying how to choose the other one (numeric targets only).

    Example:
        >>> overriding("regression", "the target holds non-integer numbers")
        'the target holds non-integer numbers; --task classification overrides'
    """
    if reason == "the target holds text":
        return reason  # text labels cannot be a regression
    other = "classification" if task == "regression" else "regression"
    return f"{reason}; --task {other} overrides"


def stray_target_share(n_numbers: int, n_present: int) -> bool:
    """Whether a target with ``n_numbers`` numbers among ``n_present`` present values is numeric with
    stray words (:data:`NUMERIC_TARGET_SHARE`), rather than text labels.

    Example:
        >>> stray_target_share(599, 600), stray_target_share(600, 600), stray_target_share(3, 600)
        (True, False, False)
    """
    return 0 < n_numbers < n_present and n_numbers >= NUMERIC_TARGET_SHARE * n_present


def _stray_target_error(where: str, value: str, n_numbers: int, n_present: int) -> DataError:
    """The error for a stray word in a numeric target (``where``: file:line:column (column 'name'))."""
    return DataError(
        f"{where}: expected a number, got {value!r} (the target is numeric: {n_numbers} of its {n_present} "
        "values are numbers); fix the value, or leave the cell empty and choose --missing drop to leave such "
        "rows out; if the column holds class labels, pass --task classification"
    )


# Numbers written with a comma: a thousands separator ("1,200", "12,345.5") or a decimal comma ("2,75").
_THOUSANDS_COMMA = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?$")
DECIMALS = (".", ",")
THOUSANDS = ("", ",", ".", " ", "'", "_")


def _number_pattern(decimal: str, thousands: str) -> re.Pattern[str]:
    d = re.escape(decimal)
    whole = rf"(\d{{1,3}}({re.escape(thousands)}\d{{3}})+|\d+)" if thousands else r"\d+"
    return re.compile(rf"^[+-]?({whole}({d}\d*)?|{d}\d+)([eE][+-]?\d+)?$")


def canonical_number(value: str, fmt: tuple[str, str]) -> str:
    """``value`` in Python's number syntax when it is a number written with ``fmt`` = (decimal mark,
    thousands separator), else unchanged (a stray word stays what it was, for the error message).

    Example:
        >>> canonical_number("1,200", (".", ",")), canonical_number("2,75", (",", "")), canonical_number("x", (",", ""))
        ('1200', '2.75', 'x')
    """
    decimal, thousands = fmt
    text = value.strip()
    if not _number_pattern(decimal, thousands).match(text):
        return value
    if thousands:
        text = text.replace(thousands, "")
    return text.replace(decimal, ".") if decimal != "." else text


def detect_number_format(values: list[str], delimiter: str) -> tuple[str, str] | None:
    """The number format of a column whose cells that are not plain numbers are all numbers written
    with a comma: thousands separators (``"1,200"``, in a comma- or tab-separated file) or a decimal
    comma (``"2,75"``; in a ``;``-separated file commas are decimal marks). None when some cell is text.

    Example:
        >>> detect_number_format(["1,200", "300", "12,000.5"], ","), detect_number_format(["2,75", "1"], ";")
        (('.', ','), (',', ''))
        >>> detect_number_format(["red", "1,200"], ",") is None
        True
    """
    odd = [v.strip() for v in values if _as_float(v) is None]
    if not odd:
        return None
    grouped = all(_THOUSANDS_COMMA.match(v) for v in odd)
    decimal = all(_DECIMAL_COMMA.match(v) for v in odd) and not any("." in v for v in values)
    if grouped and (delimiter != ";" or not decimal):
        return (".", ",")
    if decimal:
        return (",", "")
    return None


def looks_like_comma_number(text: str) -> bool:
    """Whether ``text`` is a number written with a comma (``1,200`` or ``2,75``).

    Example:
        >>> looks_like_comma_number("1,200"), looks_like_comma_number("red, green")
        (True, False)
    """
    text = text.strip()
    return bool(_THOUSANDS_COMMA.match(text) or _DECIMAL_COMMA.match(text))


def _comma_numbers(values: list[str]) -> bool:
    """Whether most of ``values`` are numbers written with a comma (for advice about --thousands/--decimal)."""
    hits = sum(1 for v in values if _THOUSANDS_COMMA.match(v.strip()) or _DECIMAL_COMMA.match(v.strip()))
    return hits * 2 > len(values)


def format_flags(fmt: tuple[str, str]) -> str:
    """The command-line flags of a number format.

    Example:
        >>> format_flags((".", ",")), format_flags((",", ""))
        ("--thousands ','", "--decimal ','")
    """
    decimal, thousands = fmt
    flags = ([f"--decimal {decimal!r}"] if decimal != "." else []) + (
        [f"--thousands {thousands!r}"] if thousands else []
    )
    return " ".join(flags)


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
    return integer_target_task(k, n, min(distinct), max(distinct))


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
        formats: dict[str, tuple[str, str]] | None = None,
    ):
        self.columns = columns  # feature columns in file order (target excluded)
        self.target = target
        self.categories = categories  # categorical column -> sorted category values
        self.task = task
        self.classes = classes  # class labels for classification targets (index = class id)
        self.missing = missing
        self.dropped = list(dropped or [])
        # column -> (decimal mark, thousands separator) of numbers not in Python's syntax ("1,200", "2,75")
        self.formats = {k: (str(v[0]), str(v[1])) for k, v in (formats or {}).items()}
        # what the messages advise: "train" (the training flags) or "predict"/"evaluate" (a trained run's
        # new data: what the run was trained with, and what to change); not part of the state
        self.stage = "train"

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
            "formats": {k: list(v) for k, v in self.formats.items()},
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
            {k: (v[0], v[1]) for k, v in dict(state.get("formats") or {}).items()},
        )

    def _missing(self, where: str) -> DataError:
        if self.stage != "train":
            if self.missing == "drop":
                return DataError(
                    f"{where}: missing value; the run was trained with --missing drop, which leaves such rows out "
                    "of training but cannot predict for them: fill the cell in the file, or retrain with "
                    "--missing mean|median|most_frequent to have missing values filled"
                )
            return DataError(
                f"{where}: missing value; the run was trained with --missing error (no filling): fill the cell "
                "in the file, or retrain with --missing mean|median|most_frequent to have missing values filled"
            )
        if self.missing == "error":
            return DataError(
                f"{where}: missing value; choose what to do with --missing drop|mean|median|most_frequent "
                "(default: error)"
            )
        return DataError(f"{where}: missing value")

    def _refuses_missing(self) -> bool:
        """Whether a missing feature value is an error (not NaN): always with ``missing='error'``, and for
        ``predict`` with ``drop`` (a row left out would leave no prediction in its place)."""
        return self.missing == "error" or (self.missing == "drop" and self.stage == "predict")

    def _not_a_number(self, where: str, col: str, value: str) -> DataError:
        comma = (
            " (a number with a thousands separator or a decimal comma? "
            + (
                "retrain with --thousands ',' or --decimal ','"
                if self.stage != "train"
                else "pass --thousands ',' or --decimal ','"
            )
            + ")"
            if _comma_numbers([value])
            else ""
        )
        if self.stage != "train":
            fill = (
                f", or leave the cell empty: the run fills it with the training split's {self.missing}"
                if self.missing in IMPUTE
                else f" (an empty cell is refused too: the run was trained with --missing {self.missing})"
            )
            return DataError(
                f"{where}: expected a number, got {value!r} (the column was numeric in training){comma}; fix the "
                f"value in the file{fill}"
            )
        return DataError(
            f"{where}: expected a number, got {value!r} (the column is numeric){comma}; fix the value, "
            f"leave the cell empty and choose --missing, or leave the column out with --drop {col}"
        )

    def _cell(self, col: str, value: str) -> str:
        fmt = self.formats.get(col)
        return canonical_number(value, fmt) if fmt is not None else value

    def encode_features(self, header: list[str], rows: list[list[str]], source: str, first_line: int = 2) -> np.ndarray:
        """Feature matrix for ``rows`` (a header naming at least this encoder's columns).

        A missing value is an error when the encoder's ``missing`` is ``error``, else NaN (in every
        feature of a categorical column).
        """
        check_columns(source, header, self.columns)
        width = len(self.feature_names)
        X = np.zeros((len(rows), width), dtype=np.float32)
        position = {c: header.index(c) for c in self.columns}
        lines = _line_numbers(rows, first_line)
        refuse = self._refuses_missing()
        for r, row in enumerate(rows):
            out = 0
            for col in self.columns:
                j = position[col]
                value = self._cell(col, row[j])
                where = f"{source}:{lines[r]}:{j + 1} (column {col!r})"
                size = len(self.categories[col]) if col in self.categories else 1
                if _is_missing(value):
                    if refuse:
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
                        raise self._not_a_number(where, col, value)
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
                key = class_key(self._cell(str(self.target), v))
                if key not in lookup:
                    raise DataError(
                        f"{source}:{lines[r]}:{column_index + 1} (column {self.target!r}): unknown class {v!r}; "
                        f"known: {self.classes}"
                    )
                out[r] = lookup[key]
            return out
        y = np.empty((len(values), 1), dtype=np.float64)  # float64: 1e9 + 10.5 must not become 1e9
        for r, v in enumerate(values):
            where = f"{source}:{lines[r]}:{column_index + 1} (column {self.target!r})"
            number = _as_float(self._cell(str(self.target), v))
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


class _Rows(list):
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


def _check_options(missing: str, where: str) -> None:
    if missing not in MISSING_STRATEGIES:
        raise ConfigError(f"{where}: missing must be one of {', '.join(MISSING_STRATEGIES)}, got {missing!r}")


def _choose_columns(source: str, header: list[str], target: str | None, drop: Any) -> tuple[str, list[str], list[str]]:
    """The target column (default: the last one not dropped), the feature columns and the dropped
    ones, as both CSV readers choose them; an unknown or dropped target and an unknown --drop name are one-line errors."""
    dropped = [d.strip() for d in (drop or []) if d.strip()]
    unknown = [d for d in dropped if d not in header]
    if unknown:
        raise ConfigError(f"{source}: --drop names column(s) {unknown} that the file lacks; columns are {header}")
    if target is None:
        if header[-1] in dropped:
            raise ConfigError(
                f"{source}: --drop leaves out {header[-1]!r}, the last column, which is the default target; "
                f"name the column to predict with --target (columns are {header})"
            )
        target = header[-1]
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


def check_columns(source: str, header: list[str], columns: list[str]) -> None:
    """A file for a trained model must name its feature ``columns`` in its header; a first row of numbers
    is data, not a header (the header row is missing).

    Example:
        >>> check_columns("new.csv", ["0.5", "1"], ["a", "b"])
        Traceback (most recent call last):
        ...
        downslope.errors.DataError: new.csv:1: the first row ['0.5', '1'] holds numbers, not column names: the header row seems to be missing; add a first line naming the columns: a,b
    """
    missing_cols = [c for c in columns if c not in header]
    if not missing_cols:
        return
    if all(_as_float(h) is not None or _is_missing(h) for h in header):
        raise DataError(
            f"{source}:1: the first row {header[:8]}{' ...' if len(header) > 8 else ''} holds numbers, not column "
            f"names: the header row seems to be missing; add a first line naming the columns: {','.join(columns)}"
        )
    raise DataError(f"{source}: missing column(s) {missing_cols}; the model was trained on columns {columns}")


def _too_many_categories(
    source: str, col: str, n_distinct: int, n_values: int, values: list[str] | None = None
) -> DataError:
    """The error for a text column too varied to one-hot encode (an id or free text); for numbers written
    with commas, the advice is the number-format flags."""
    if values is not None and _comma_numbers(values):
        return DataError(
            f"{source}: column {col!r} holds numbers written with commas ({values[0]!r}, ...) that are not read as "
            f"numbers; say how numbers are written with --thousands ',' (for 1,200) or --decimal ',' (for 2,75; "
            f"with --sep ';'), or leave the column out with --drop {col}"
        )
    return DataError(
        f"{source}: column {col!r} is text with {n_distinct} distinct values in {n_values} rows "
        f"(an id or free text?); one-hot encoding would make {n_distinct} features. Leave it out with "
        f"--drop {col} (or allow it with --max-categories {n_distinct})"
    )
