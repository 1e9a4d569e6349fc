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

import io
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from . import readers
from .columns import RowsAt, encode_csv, encode_parquet, read_parquet
from .csvfile import (
    check_header_names,
    check_number_format,
    csv_suffix,
    default_delimiter,
    read_csv,
    read_rows,
    unsupported_file,
)
from .datasets import Table
from .encoding import (
    FLOAT32_MAX,
    IMPUTE,
    MAX_CATEGORIES,
    MISSING,
    MISSING_STRATEGIES,
    TASK_RULE,
    CsvRows,
    Imputer,
    TabularEncoder,
    _as_float,
    _check_options,
    _is_missing,
    _line_numbers,
    _one_class_error,
    class_key,
    infer_task,
    integer_step,
    integer_target_task,
    line_numbers,
    overriding,
    sorted_classes,
)

# The readers' whole surface stays importable from here (``downslope.data.tabular.X``): the cell
# rules and encoders live in .encoding, the CSV reader in .csvfile, the column-by-column path in .columns.
__all__ = [
    "CsvRows",
    "FLOAT32_MAX",
    "IMPUTE",
    "Imputer",
    "LAZY_BYTES",
    "MAX_CATEGORIES",
    "MISSING",
    "MISSING_STRATEGIES",
    "RowsAt",
    "TASK_RULE",
    "TabularEncoder",
    "check_features",
    "class_key",
    "encode_csv",
    "encode_parquet",
    "infer_task",
    "line_numbers",
    "check_number_format",
    "csv_suffix",
    "default_delimiter",
    "read_arrays",
    "read_csv",
    "read_features",
    "read_parquet",
    "read_rows",
    "read_table",
    "sorted_classes",
    "unsupported_file",
]

# A .npy file at least this big is memory-mapped and read in batches instead of loaded whole.
LAZY_BYTES = 256 * 2**20


# An .npy header is at most this long (NumPy writes 64-byte multiples; its own reader's limit is 10000).
_NPY_HEADER_LIMIT = 65536


def _npy_data_bytes(head: Any) -> tuple[tuple[int, ...], np.dtype[Any], int, int] | None:
    """(shape, dtype, header length, data bytes) an ``.npy`` stream's header declares, None when it has
    no readable header (NumPy's own reader then says what is wrong)."""
    try:
        version = np.lib.format.read_magic(head)
        reader = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = reader(head, max_header_size=_NPY_HEADER_LIMIT)
    except Exception:  # not an .npy header at all: left to np.load, whose message names the problem
        return None
    if dtype.hasobject or not all(isinstance(n, int) and n >= 0 for n in shape):
        return None
    return tuple(shape), dtype, head.tell(), math.prod(shape) * dtype.itemsize


def _check_npy_sizes(p: Path) -> None:
    """Refuse an ``.npy`` (or an ``.npz`` member) whose header declares more data than the file holds,
    before NumPy allocates an array of the declared size: a truncated or corrupted file (or one whose
    header lies) would otherwise be reported as running out of memory."""
    heads: list[tuple[io.BytesIO, int, str]] = []
    try:
        if p.suffix.lower() == ".npz":
            with zipfile.ZipFile(p) as archive:
                for info in archive.infolist():
                    if info.filename.endswith(".npy"):
                        with archive.open(info) as member:
                            head = io.BytesIO(member.read(min(info.file_size, _NPY_HEADER_LIMIT)))
                        heads.append((head, info.file_size, f"{p} (array {info.filename[:-4]!r})"))
        else:
            with open(p, "rb") as handle:
                heads.append((io.BytesIO(handle.read(_NPY_HEADER_LIMIT)), p.stat().st_size, str(p)))
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError):
        return  # unreadable here: np.load reads it next and says why
    for head, file_size, where in heads:
        _compare_npy_sizes(head, file_size, where)


def _compare_npy_sizes(head: io.BytesIO, file_size: int, where: str) -> None:
    declared = _npy_data_bytes(head)
    if declared is None:
        return
    shape, dtype, header_len, data_bytes = declared
    if header_len + data_bytes > file_size:
        raise DataError(
            f"{where}: corrupt or truncated NumPy file: its header declares shape {shape} of {dtype} "
            f"({data_bytes:,} bytes of data), but the file holds {max(file_size - header_len, 0):,}; refused "
            "before reading it (write the array again with np.save)"
        )
    if header_len + data_bytes < file_size:  # np.load would read the declared rows and drop the rest unseen
        raise DataError(
            f"{where}: corrupt NumPy file: its header declares shape {shape} of {dtype} ({data_bytes:,} "
            f"bytes of data), but the file holds {file_size - header_len:,}; the header does not describe "
            "all of the data, so it is refused (write the array again with np.save)"
        )


def _unreadable(p: Path, exc: ValueError, what: str = "cannot read") -> DataError:
    """NumPy's ValueError while loading, as a DataError; the pickle note only where pickles are the cause."""
    if isinstance(exc, DataError):  # already says what is wrong with the file
        return exc
    text = str(exc)
    pickled = "pickle" in text.lower() or "object" in text.lower()
    return DataError(f"{p}: {what} ({text})" + ("; object arrays and pickles are refused" if pickled else ""))


def _no_rows(p: Path, shape: tuple[int, ...]) -> DataError:
    return DataError(f"{p}: no rows (its arrays have shape {shape}); expected at least one row of data")


def _load_npz_or_npy(p: Path, need_y: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    _check_npy_sizes(p)
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise _unreadable(p, exc) from None
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
            raise _unreadable(p, exc) from None
    if loaded.ndim != 2 or loaded.shape[1] < 2:
        raise DataError(
            f"{p}: an .npy needs a 2-D array whose last column is the target, got shape {tuple(loaded.shape)}"
        )
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
    _check_npy_sizes(p)
    try:
        base = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise _unreadable(p, exc) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: not a readable NumPy file ({type(exc).__name__}: {exc}); is it truncated?") from None
    if base.ndim != 2 or base.shape[1] < 2:
        raise DataError(
            f"{p}: an .npy needs a 2-D array whose last column is the target, got shape {tuple(base.shape)}"
        )
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
    return integer_target_task(k, n, float(distinct[0]), float(distinct[-1]), integer_step(distinct) if k <= 20 else 1)


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
        raise readers.not_a_data_file(p)
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
    if not len(X):
        raise _no_rows(p, tuple(X.shape))
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
            reason = overriding(task, reason)
        else:
            task, reason = infer_task(labels)
            reason = overriding(task, reason)
    if task == "classification":
        if not one_label:
            raise DataError(f"{p}: classification needs one label per row, got y of shape {tuple(y.shape)}")
        codes, classes = _label_codes(p, y, labels, classes)
        table = Table(X, codes, task, p.stem, class_names=list(classes))
    else:
        _check_regression_target(p, y)
        table = Table(X, y, task, p.stem)
        if y.dtype == np.float64:  # kept (Table makes float32): the run standardizes the target in float64
            table.y = np.ascontiguousarray(y.reshape(len(y), -1))
    table.notes = notes
    table.task_reason = reason
    return table


def read_features(
    path: str | os.PathLike[str],
    n_features: int,
    delimiter: str = ",",
    feature_names: list[str] | None = None,
    allow_target: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw features of a file for a model with ``n_features`` inputs, plus the last column when the
    file has one more (a target; with ``allow_target=False``, as predict reads, one more column that no
    header names is refused: a leading id column would otherwise shift every feature by one). CSV (with or without a header row; fields separated by ``delimiter``),
    NPY or NPZ (``X``, ``y`` optional).

    A CSV header is matched against the model's ``feature_names``: when it names them all, the columns
    are taken by name (in any order; one more column is the target); when it names some but not all,
    it is an error saying which are missing (columns are never silently taken by position under other
    names); a header naming none of them (``u,v``) or no header at all means the columns are in the
    model's order."""
    p = Path(path)
    if not p.is_file():
        raise readers.not_a_data_file(p)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        X, y = _load_npz_or_npy(p, need_y=False)
        if not len(X):
            raise _no_rows(p, tuple(X.shape))
        return check_features(X, str(p), "mean"), y
    if suffix == ".npy":
        _check_npy_sizes(p)
        try:
            loaded = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise _unreadable(p, exc, "not a readable NumPy array") from None
        except (OSError, EOFError) as exc:
            raise DataError(f"{p}: not a readable NumPy file ({type(exc).__name__}: {exc}); is it truncated?") from None
        data = loaded.reshape(-1, 1) if loaded.ndim == 1 else loaded
        if not len(data):
            raise _no_rows(p, tuple(loaded.shape))
        data = check_features(data, str(p), "mean")
    elif csv_suffix(p) is not None:
        header, rows = read_rows(p, delimiter, check_names=False)
        named = not all(_as_float(h) is not None for h in header)
        if not named:  # no header row: the first line is data (its numbers may repeat)
            rows = [header] + rows
        else:
            check_header_names(str(p), header)
        order = _columns_by_name(str(p), header, feature_names or [], n_features) if named else None
        data = np.empty((len(rows), len(rows[0])), dtype=np.float64)
        lines = _line_numbers(rows, 1)
        for r, row in enumerate(rows):
            for j, v in enumerate(row):
                number = np.nan if _is_missing(v) else _as_float(v)
                if number is None:
                    where = f"{p}:{lines[r]}:{j + 1}" + (f" (column {header[j]!r})" if named else "")
                    raise DataError(f"{where}: expected a number, got {v!r}")
                data[r, j] = number
        data = check_features(data, str(p), "mean")
        if order is not None:
            features, rest = order
            return data[:, features], (data[:, rest[0]] if rest else None)
    else:
        raise unsupported_file(p)
    if data.shape[1] == n_features:
        return data, None
    if data.shape[1] == n_features + 1 and allow_target:
        return data[:, :-1], data[:, -1]
    if data.shape[1] == n_features + 1:
        raise DataError(
            f"{p}: expected {n_features} feature columns, got {n_features + 1}, and no header row names them, so "
            f"which one is extra (an id? a target?) cannot be told; add a header with the model's feature names "
            f"{list(feature_names or [])} or drop the extra column"
            if feature_names
            else f"{p}: expected {n_features} feature columns, got {n_features + 1}, and no header row names them, "
            "so which one is extra (an id? a target?) cannot be told; drop the extra column"
        )
    raise DataError(
        f"{p}: {data.shape[1]} columns, but the model takes {n_features} features (or {n_features} plus a target)"
    )


def _columns_by_name(
    source: str, header: list[str], names: list[str], n_features: int
) -> tuple[list[int], list[int]] | None:
    """Where a header puts a model's feature ``names`` (and the one other column, a target), or None
    when it names none of them (the columns are then taken in order); some but not all is an error."""
    if len(names) != n_features or not any(n in header for n in names):
        return None
    absent = [n for n in names if n not in header]
    if absent:
        raise DataError(
            f"{source}:1: the header names some of the model's features but not {absent}; expected the columns "
            f"{names} (in any order), got {header}; feature names must match those the model was trained with"
        )
    features = [header.index(n) for n in names]
    rest = [j for j in range(len(header)) if j not in features]
    if len(rest) > 1:
        raise DataError(
            f"{source}:1: columns {[header[j] for j in rest]} are not features of the model; expected the columns "
            f"{names} (and at most one more, the target)"
        )
    return features, rest


def read_table(
    path: str | os.PathLike[str],
    target: str | None = None,
    task: str | None = None,
    missing: str = "error",
    drop: list[str] | None = None,
    max_categories: int = MAX_CATEGORIES,
    progress: bool = False,
    delimiter: str = ",",
    decimal: str = ".",
    thousands: str = "",
    categorical: list[str] | None = None,
    numeric: list[str] | None = None,
    header_row: bool = True,
) -> tuple[Table, TabularEncoder | None]:
    """Read any supported file by its extension: .csv (also .csv.gz and .tsv), .parquet, .npz or .npy.
    ``header_row=False``: a CSV without a header row (its columns are named ``col_0`` .. ``col_{n-1}``).

    ``delimiter`` is the CSV field separator (``';'`` for files written by spreadsheets in many locales;
    a ``.tsv`` is read with tabs); ``decimal`` and ``thousands`` how a CSV writes numbers (as pandas').

    A ``.npy`` of at least :data:`LAZY_BYTES` is memory-mapped: its features stay in the file and
    are read batch by batch (see :mod:`downslope.data.memmap`). ``progress`` says on stderr what is
    being read when that takes more than a second."""
    suffix = Path(path).suffix.lower()
    options = {"target": target, "task": task, "missing": missing, "drop": drop, "max_categories": max_categories}
    if csv_suffix(path) is not None:
        delimiter = default_delimiter(path, delimiter)
        return read_csv(
            path,
            progress=progress,
            delimiter=delimiter,
            decimal=decimal,
            thousands=thousands,
            categorical=categorical,
            numeric=numeric,
            header_row=header_row,
            **options,  # type: ignore[arg-type]
        )
    if not header_row:
        raise ConfigError(f"{path}: --no-header says a CSV has no header row; an {suffix} file has no header line")
    if categorical or numeric:
        raise ConfigError(
            f"{path}: --categorical and --numeric name CSV columns read as text; an {suffix} file has types"
        )
    if (decimal, thousands) != (".", ""):
        raise ConfigError(f"{path}: --decimal and --thousands say how a CSV writes numbers; an {suffix} file has none")
    if suffix == ".parquet":
        return read_parquet(path, progress=progress, **options)  # type: ignore[arg-type]
    if suffix in (".npz", ".npy"):
        if drop:
            raise ConfigError(f"{path}: --drop names CSV columns; an {suffix} file has none")
        return read_arrays(path, task=task, missing=missing, progress=progress), None
    raise unsupported_file(path)
