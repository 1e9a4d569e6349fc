"""The column-by-column CSV and Parquet path: :func:`~.csvfile.read_csv`'s rules applied to the cell
facts :mod:`.readers` gets from pyarrow's C parser, with the same results and the same errors (a
message about a cell comes from running the row-by-row encoder on that one row, found again in the
file). Where the facts are not enough to be sure, :class:`readers.Fallback` hands the file to the
pure-Python reader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import readers
from .datasets import Table
from .encoding import (
    BOOLEAN_SPELLINGS,
    FILL_TEXT,
    FLOAT32_MAX,
    IMPUTE,
    MAX_CATEGORIES,
    UNICODE_MINUS,
    TabularEncoder,
    _as_float,
    _check_options,
    _choose_columns,
    _forced_categorical,
    _one_class_error,
    _Rows,
    _stray_target_error,
    _too_many_categories,
    ambiguous_commas_error,
    boolean_note,
    canonical_number,
    cell_location,
    check_columns,
    check_one_hot_memory,
    class_key,
    comma_groups_error,
    comma_groups_only,
    decimal_point_column,
    detect_number_format,
    dotted_numbers,
    empty_column_error,
    empty_columns_note,
    fill_note,
    format_flags,
    header_note,
    integer_step,
    integer_target_task,
    is_boolean_column,
    looks_like_comma_number,
    looks_like_excel_number,
    missing_by_column,
    no_features_error,
    not_categories_error,
    overriding,
    refused_columns_error,
    sorted_classes,
    stray_target_share,
    total_row_note,
    total_row_reason,
    unit_column,
    with_fill_category,
)

RowsAt = Callable[[list[int]], dict[int, tuple[int, list[str]]]]


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
    fmt: tuple[str, str] | None = None,
) -> tuple[Table, TabularEncoder]:
    """:func:`read_csv` by pyarrow's C parser, column by column; :class:`readers.Fallback` when the
    pure-Python reader must decide. ``fmt``: the number format given (``decimal``, ``thousands``)."""
    header = readers.csv_header(p, delimiter)
    # every number in float64 (the target's exact values decide classes; a feature is shifted by its
    # column's offset before the float32 cast: see TabularEncoder.offsets), 4 bytes a cell more while reading
    facts = readers.read_csv_columns(p, header, delimiter, progress=progress, wide=None, fmt=fmt)
    if not len(next(iter(facts.values())).kind):
        raise readers.Fallback("no data rows")

    def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
        return readers.csv_rows_at(p, wanted, delimiter)

    def last_row() -> list[str] | None:
        return readers.csv_last_row(p, len(header), delimiter)

    def texts() -> dict[str, readers.Column]:
        return readers.read_csv_columns(p, header, delimiter, progress=progress, texts=True)

    return _table_from_columns(
        source,
        header,
        facts,
        rows_at,
        True,
        target,
        task,
        categorical,
        missing,
        drop,
        max_categories,
        fmt,
        last_row,
        delimiter,
        texts,
    )


def _as_booleans(c: readers.Column) -> readers.Column:
    """A column of yes/no spellings as numbers, 1 and 0 (:data:`BOOLEAN_SPELLINGS`, in any case); other
    text cells stay text (the row-by-row encoder reports them)."""
    if c.codes is None:
        return c  # no text cell: numbers already (or a Parquet boolean column)
    value = np.array([float(BOOLEAN_SPELLINGS.get(text.lower(), "nan")) for text in c.strings] + [np.nan])
    mapped = value[c.codes]  # code -1 (a missing cell) reads the NaN at the end
    hit = ~np.isnan(mapped)
    num = np.array(c.num, copy=True)
    num[hit] = mapped[hit]
    kind = c.kind.copy()
    kind[hit] = readers.NUMBER
    return readers.Column(kind, num, None, [], True, True)


def _boolean_columns(
    source: str, columns: list[str], cols: dict[str, readers.Column], forced: set[str], notes: list[str], exact: bool
) -> list[str]:
    """The feature columns read as one 0/1 feature: Parquet booleans, and text columns of yes/no spellings
    only (:func:`is_boolean_column`, noted); ``cols`` gets their numbers."""
    found = []
    for col in columns:
        c = cols[col]
        if c.boolean:
            found.append(col)
            continue
        if col in forced or c.codes is None or not (c.kind == readers.TEXT).any():
            continue
        present = ~c.missing & (c.codes >= 0)
        distinct = [c.strings[int(k)] for k in _used_codes(c.codes[present], len(c.strings))]
        if not c.complete:
            if exact and is_boolean_column(distinct):
                raise readers.Fallback("are the uncoded numbers 1 and 0?")  # the text of every cell decides
            continue
        if is_boolean_column(distinct):
            cols[col] = _as_booleans(c)
            notes.append(boolean_note(source, col, distinct))
            found.append(col)
    return found


def _used_codes(codes: np.ndarray, n_strings: int) -> np.ndarray:
    """``np.unique(codes)`` of non-negative codes below ``n_strings``, counted rather than sorted."""
    return np.flatnonzero(np.bincount(codes, minlength=n_strings))


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


#: How many cells the numeric columns' checks take at once: a wide table's columns are checked in a few
#: passes over blocks of columns (100,000 columns one by one cost seconds of per-call overhead), with no
#: more than this many cells copied at a time (a tall table's columns then go nearly one by one).
_CHECK_BLOCK_CELLS = 1 << 22


def _first_bad_number_row(columns: list[str], cols: dict[str, readers.Column], refuse: bool, n: int) -> int | None:
    """The first row holding a cell that a numeric feature column cannot take (text, a malformed number, a
    number float32 cannot hold, and a missing cell when ``refuse``), over ``columns`` at once; None if
    none. The encoder then names the cell itself, on that row."""
    first: int | None = None
    step = max(1, _CHECK_BLOCK_CELLS // max(n, 1))
    if step < 8:  # a tall table: its columns one by one, most of them cleared by two reductions (no copy)
        columns = [col for col in columns if not _all_plain_numbers(cols[col])]
    for begin in range(0, len(columns), step):
        block = columns[begin : begin + step]
        kind = np.stack([cols[col].kind for col in block])
        num = np.stack([cols[col].num for col in block])
        with np.errstate(invalid="ignore"):
            unheld = ~(np.abs(num) <= FLOAT32_MAX)  # NaN ('-nan') and inf too
        bad = (kind == readers.TEXT) | (kind == readers.BAD_NUMBER) | ((kind == readers.NUMBER) & unheld)
        if refuse:
            bad |= (kind == readers.EMPTY) | (kind == readers.MISSING)
        row = _first_row(bad.any(axis=0))
        if row is not None and (first is None or row < first):
            first = row
    return first


def _all_plain_numbers(c: readers.Column) -> bool:
    """Whether every cell of a column is a number float32 holds (a NaN's max is NaN: not cleared here)."""
    if not len(c.kind) or c.kind.max() != readers.NUMBER:  # (NUMBER is the lowest kind: the max says all)
        return False
    return bool(c.num.max() <= FLOAT32_MAX and c.num.min() >= -FLOAT32_MAX)


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
    refuse = encoder._refuses_missing()
    categories = encoder.categories
    positions: dict[str, np.ndarray] = {}
    first_bad: int | None = None
    if refuse and encoder.stage == "train" and n > 1:
        for col, n_values, _ in _value_and_text_counts(list(encoder.columns), cols):
            if n_values == 0:
                raise empty_column_error(source, col)
    for col in encoder.booleans:
        cols[col] = _as_booleans(cols[col])
    for col in encoder.columns:
        if col not in categories:
            continue  # the numeric columns are checked together below (_first_bad_number_row)
        c = cols[col]
        bad = c.missing if refuse else np.zeros(n, bool)
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
            if encoder.handle_unknown != "ignore":
                bad = bad | unseen
        positions[col] = position
        if not bad.any():
            continue
        row = _first_row(bad)
        if row is not None and (first_bad is None or row < first_bad):
            first_bad = row
    row = _first_bad_number_row([col for col in encoder.columns if col not in categories], cols, refuse, n)
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
    numbers: dict[str, np.ndarray] = {}  # float64, shifted by the encoder before the float32 cast
    numeric = [col for col in encoder.columns if col not in categories]
    gapped = {col for col, n_values, _ in _value_and_text_counts(numeric, cols) if n_values < n}
    for (start, stop, is_categorical), col in zip(encoder.blocks(), encoder.columns):
        c = cols.pop(col) if col != encoder.target else cols[col]  # each column's facts go once encoded
        if is_categorical:
            gaps = c.missing.any()
            rows = np.flatnonzero(~c.missing) if gaps else None
            if n and (rows is None or len(rows)):
                assert c.codes is not None
                at = positions[col][c.codes if rows is None else c.codes[rows]]
                known = at >= 0  # an unseen category (handle_unknown='ignore') stays all zeros
                hit = np.flatnonzero(known) if rows is None else rows[known]
                # one flat scatter into the C-ordered X (cheaper than indexing rows and columns apart)
                X.reshape(-1)[hit * X.shape[1] + (start + at[known])] = 1.0
            if encoder.missing == "constant":  # blanks are the category FILL_TEXT (unseen: all zeros)
                cats = categories[col]
                if FILL_TEXT in cats:
                    X[c.missing, start + cats.index(FILL_TEXT)] = 1.0
            elif gaps:
                X[c.missing, start:stop] = np.nan
        else:
            # a column without gaps is written as it is (no copy of a million floats)
            values = np.asarray(c.num, np.float64)
            numbers[col] = np.where(c.missing, np.nan, values) if col in gapped else values
    encoder.write_numbers(X, numbers)
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
        # each column's number format (given to train, or found in its file): its cells rewritten as read
        fmt = dict(encoder.formats) if encoder.formats else None
        cols = readers.read_csv_columns(
            p,
            header,
            delimiter,
            progress=progress,
            wide=None if encoder.offsets else ({str(name)} if has_target else set()),
            fmt=fmt,
        )
        n_rows = len(next(iter(cols.values())).kind)
        if not n_rows:
            raise readers.Fallback("no data rows")
        check_columns(source, header, encoder.columns)

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


def encode_parquet(
    path: str | os.PathLike[str],
    encoder: TabularEncoder,
    target: str | None = None,
    progress: bool = False,
    need_target: bool = False,
) -> tuple[list[str], np.ndarray, np.ndarray | None] | None:
    """A Parquet file encoded by a trained ``encoder`` column by column, as training read it (no row of
    text per cell): the header, the features and, with ``need_target``, the targets (as :func:`encode_csv`).
    None when the column facts are not enough (some text labels): then the row-by-row encoder decides.
    In messages a cell is named by its data row (from 1) and column, as :func:`read_parquet` names them."""
    p = Path(path)
    if not p.is_file():
        raise readers.not_a_data_file(p)
    source = str(path)
    header, cols = readers.read_parquet_columns(p, progress=progress)
    n_rows = len(next(iter(cols.values())).kind)
    check_columns(source, header, encoder.columns)
    name = target or encoder.target
    has_target = need_target and name is not None and name in header
    if need_target and not has_target:
        raise DataError(f"{source}: no target column {name!r} to evaluate against; columns are {header}")

    def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
        cells = readers.parquet_rows(p, wanted, header)
        return {r: (r + 1, row) for r, row in zip(wanted, cells)}

    try:
        keep = np.arange(n_rows)
        if has_target and encoder.missing != "error":
            keep = np.flatnonzero(~cols[str(name)].missing)  # as in training: rows without a target are left out
        used = {*encoder.columns, *([str(name)] if has_target else [])}
        cols = {c: (cols[c].take(keep) if len(keep) < n_rows else cols[c]) for c in used}
        t = cols[str(name)] if has_target else None
        X = _encode_feature_columns(encoder, header, cols, keep, rows_at, False, source)
        if t is None:
            return header, X, None
        return header, X, _encode_target_column(encoder, t, header.index(str(name)), keep, rows_at, source)
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
            y = t.num.astype(np.float64).reshape(-1, 1)  # bad values are reported below
    row = _first_row(bad)
    if row is not None:
        index = int(keep[row])

        def check_target(line: int, cells: list[str]) -> None:
            encoder.encode_target([cells[t_idx]], source, t_idx, first_line=line)

        _raise_at(rows_at, index, check_target, True)
    return y


def _total_row(
    source: str,
    cols: dict[str, readers.Column],
    header: list[str],
    target: str,
    rows_at: RowsAt,
    notes: list[str],
    rewritten: bool = False,
    last_row: Callable[[], list[str] | None] | None = None,
) -> tuple[dict[str, readers.Column], int]:
    """The columns without a last row that looks like a totals row (as :func:`.csvfile._total_row`).
    ``rewritten``: the numbers were read with a given format, which the row-by-row reader applies after
    this check (a "1,200" is no number to it here). ``last_row``: the last row's cells read from the end
    of the file (None: unsure), so that its line is looked for only when it is a totals row."""
    t = cols[target]
    n = len(t.kind)
    if n < 3:
        return cols, n
    cells_at_end = last_row() if last_row is not None else None
    if cells_at_end is None:
        found = rows_at([n - 1]).get(n - 1)
        if found is None:
            raise readers.Fallback("row not confirmed")
        line, cells = found
    else:
        line, cells = 0, cells_at_end  # the line is found below, only for the note
    others_missing = t.missing[:-1]
    if (t.kind[:-1][~others_missing] != readers.NUMBER).any():
        others = None
    else:
        others = np.asarray(t.num[:-1][~others_missing], dtype=np.float64)
    reason = total_row_reason(cells, header.index(target), others)
    if rewritten and others is not None and reason != total_row_reason(cells, header.index(target), None):
        raise readers.Fallback("a totals row decided by the rewritten numbers")
    if reason is None:
        return cols, n
    if cells_at_end is not None:
        found = rows_at([n - 1]).get(n - 1)
        if found is None or found[1] != cells_at_end:
            raise readers.Fallback("row not confirmed")
        line = found[0]
    notes.append(total_row_note(source, line, reason))
    rest = np.arange(n - 1)
    return {c: col.take(rest) for c, col in cols.items()}, n - 1


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
    where = ""
    if missing == "drop" and len(keep) < n_rows:
        where = missing_by_column({col: int(cols[col].missing.sum()) for col in used})
    if len(keep) < n_rows:
        what = "a missing value" if missing == "drop" else "a missing target"
        notes.append(f"{source}: dropped {n_rows - len(keep)} of {n_rows} rows with {what}{where}")
    if not len(keep):
        raise DataError(
            f"{source}: every row has {'a missing value' if missing == 'drop' else 'a missing target'}{where}"
        )
    return keep


def _value_and_text_counts(columns: list[str], cols: dict[str, readers.Column]) -> list[tuple[str, int, int]]:
    """(column, its present cells, its text cells) of each column, counted over blocks of columns at once
    (a wide table's 100,000 columns one by one cost seconds of per-call overhead)."""
    counts: list[tuple[str, int, int]] = []
    n = len(cols[columns[0]].kind) if columns else 0
    step = max(1, _CHECK_BLOCK_CELLS // max(n, 1))
    for begin in range(0, len(columns), step):
        block = columns[begin : begin + step]
        kind = np.stack([cols[col].kind for col in block])
        present = ((kind != readers.EMPTY) & (kind != readers.MISSING)).sum(axis=1)
        texts = (kind == readers.TEXT).sum(axis=1)
        counts.extend(zip(block, present.tolist(), texts.tolist()))
    return counts


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
    refused: list[tuple[str, DataError]] = []
    for col, n_values, n_texts in _value_and_text_counts(columns, cols):
        if col not in forced and n_texts * 2 <= n_values:
            continue  # a numeric column (a stray word in it is reported when the rows are encoded)
        c = cols[col]
        present = ~c.missing
        if c.codes is None or not c.complete:
            if exact or n_values:
                raise readers.Fallback("the text of some cells is needed")
        used_codes = _used_codes(c.codes[present], len(c.strings)) if c.codes is not None else np.zeros(0, np.int64)
        distinct = sorted(c.strings[int(k)] for k in used_codes)
        if exact and col not in forced and unit_column(distinct) is not None:
            raise readers.Fallback("numbers with a unit")  # the pure-Python reader strips it from every cell
        dates = not_categories_error(source, col, distinct, n_values) if col not in forced else None
        if dates is not None and len(distinct) <= max_categories:
            refused.append((col, dates))
        elif len(distinct) > max_categories:
            refused.append((col, _too_many_categories(source, col, len(distinct), n_values, distinct, len(c.kind))))
        else:
            categories[col] = distinct
    if refused:
        raise refused_columns_error(source, refused)
    return categories


def _column_task(is_text: np.ndarray, numbers: np.ndarray) -> tuple[str, str]:
    """:func:`infer_task` (:data:`TASK_RULE`) on a target column's cell facts: the task and the reason."""
    n = len(numbers)
    if is_text.any():
        return "classification", "the target holds text"
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(numbers).all() and (numbers == np.round(numbers)).all()):
            # (as below, without sorting a million values first)
            return "regression", "the target holds non-integer numbers"
    distinct_numbers = np.unique(numbers)
    k = len(distinct_numbers)
    if not (np.isfinite(distinct_numbers).all() and (distinct_numbers == np.round(distinct_numbers)).all()):
        return "regression", "the target holds non-integer numbers"
    step = integer_step(distinct_numbers) if k <= 20 else 1
    return integer_target_task(k, n, float(distinct_numbers[0]), float(distinct_numbers[-1]), step)


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


def _lines_of(rows_at: RowsAt, keep: np.ndarray) -> Callable[[list[int]], list[int | None]]:
    """A table's :attr:`~.datasets.Table.line_of`: the file lines of its rows (``keep``: each row's index
    among the file's data rows), found by scanning the file once per call, as error messages do."""

    def line_of(rows: list[int]) -> list[int | None]:
        wanted = [int(keep[r]) for r in rows]
        found = rows_at(wanted)
        return [found[i][0] if i in found else None for i in wanted]

    return line_of


def _text_cells(c: readers.Column) -> tuple[np.ndarray, list[str]]:
    """The codes and (stripped) texts of a column's distinct text cells, in the order they first appear: the
    cells that are no number to Python, which decide a column's number format. :class:`readers.Fallback`
    when some block of the column kept no text."""
    text = c.kind == readers.TEXT
    if not text.any():
        return np.zeros(0, np.int64), []
    if c.codes is None or not c.complete:
        raise readers.Fallback("the text of some cells is needed")
    distinct, first = np.unique(c.codes[text], return_index=True)
    codes = distinct[np.argsort(first)]
    return codes, [c.strings[int(k)] for k in codes.tolist()]


# A number grouped by commas (encoding's thousands-comma rule), one a line: a column's distinct texts joined
# by line breaks are checked in one pass (a column of 10^5 prices: no call per cell).
_GROUPED_LINES = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$", re.MULTILINE)


def _all_grouped(texts: list[str]) -> bool:
    """Whether every one of ``texts`` is a number whose commas group thousands (``1,234.50``), as
    :func:`detect_number_format` reads such a column: ``--thousands ','``."""
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:
        return False  # a text holding a line break: the per-text rules decide
    return _GROUPED_LINES.subn("", joined)[1] == len(texts)


def _with_format(c: readers.Column, fmt: tuple[str, str], grouped: bool) -> readers.Column:
    """A column whose numbers are written in ``fmt`` (decimal mark, thousands separator) read as the row-by-row
    reader reads it: each distinct text cell rewritten once by :func:`canonical_number` (``grouped``: every
    one is a number grouped by commas, which are dropped), a number's own text being one already.
    :class:`readers.Fallback` where a number may be refused as not written in ``fmt`` (its text decides)."""
    assert c.codes is not None
    if fmt != (".", "") and any("_" in text for text in c.strings):  # 1_000: a number to Python only
        raise readers.Fallback("a number not written in the column's format")
    codes, texts = _text_cells(c)
    if grouped:  # float() of each text without its commas, in C
        values = np.array([text.replace(",", "") for text in texts], dtype=object).astype(np.float64)
        kinds = np.full(len(texts), readers.NUMBER, dtype=np.int8)
    else:
        kinds, values, _ = readers.classify([canonical_number(text, fmt) for text in texts])
        kinds[kinds != readers.NUMBER] = readers.TEXT  # a text no rule reads as a number stays as written
    kind_of = np.full(len(c.strings), readers.TEXT, dtype=np.int8)
    value_of = np.full(len(c.strings), np.nan)
    kind_of[codes] = kinds
    value_of[codes] = values
    text = np.flatnonzero(c.kind == readers.TEXT)
    kind = c.kind.copy()
    num = np.array(c.num, dtype=np.float64, copy=True)
    kind[text] = kind_of[c.codes[text]]
    num[text] = value_of[c.codes[text]]
    if not (kind == readers.TEXT).any():
        return readers.Column(kind, num, None, [], True)
    return readers.Column(kind, num, c.codes, c.strings, True)


def format_notes(source: str, found: dict[str, list[tuple[str, str]]]) -> list[str]:
    """One note per way of writing numbers (how they were read -> (column, an example cell) of each): a wine
    file's 13 columns written alike make one line."""
    notes = []
    for how, said in found.items():
        if len(said) == 1:
            col, example = said[0]
            notes.append(
                f"{source}: column {col!r} holds numbers written like {example.strip()!r}: read as numbers{how}"
            )
        else:
            names = ", ".join(repr(col) for col, _ in said)
            notes.append(
                f"{source}: columns {names} hold numbers written like {said[0][1].strip()!r}: read as numbers{how}"
            )
    return notes


def format_how(fmt: tuple[str, str], example: str) -> str:
    """How a column's numbers were read, for :func:`format_notes`: the options that read them so, or what
    was stripped."""
    if fmt != (".", ""):
        return f" (as with {format_flags(fmt)})"
    if example.strip().startswith(UNICODE_MINUS):
        return " (the Unicode minus sign \u2212 read as -)"
    return " (the apostrophe or % sign stripped)"


def detect_file_formats(
    source: str,
    columns: list[str],
    forced: set[str],
    delimiter: str,
    values_of: Callable[[str], list[str]],
    notes: list[str],
) -> tuple[dict[str, tuple[tuple[str, str], str]], list[tuple[str, str]]]:
    """The number formats found in a file (no format given), as both readers find them: ``(detected,
    dotted)``, each detected column's format and an example cell, and the number columns whose '.' groups
    thousands in a file of decimal commas (read with ``(',', '.')`` too, noted here). ``values_of(col)``:
    the column's present cells, in file order (or each distinct one once, in order of first appearance:
    every rule asks whether all or any cell is so, or for the first that is)."""
    detected: dict[str, tuple[tuple[str, str], str]] = {}  # column -> (format found, an example cell)
    dotted: list[tuple[str, str]] = []  # (column, example) of number columns whose '.' may group thousands
    points: list[str] = []  # number columns that show decimal points (0.1257: no grouping)
    values: dict[str, list[str]] = {}
    for col in columns:
        if col in forced:
            continue
        values[col] = found = values_of(col)
        fmt = detect_number_format(found, delimiter)
        if fmt is not None:
            detected[col] = (fmt, next(v for v in found if _as_float(v) is None))
            continue
        ambiguous = ambiguous_commas_error(source, col, found, delimiter)
        if ambiguous is not None:
            raise ambiguous
        example = dotted_numbers(found)
        if example is not None:
            dotted.append((col, example))
        elif decimal_point_column(found):
            points.append(col)
    # The decimal mark is the file's, not a column's: once a column writes decimal commas (and none shows
    # decimal points: 12,345.5 or 0.1257), a column of plain numbers holding '.' is read by the same
    # rule, '.' grouping thousands (2.207 is 2207, as pandas' decimal=',' thousands='.' reads it); a cell
    # that does not group in threes is refused where it is, never read as a decimal beside the others.
    marks = {fmt for fmt, _ in detected.values()}
    for col, (fmt, example) in detected.items():  # 1,101 beside 0.1257: a thousands group, or decimals?
        if points and fmt == (",", "") and comma_groups_only(values[col]):
            raise comma_groups_error(source, col, example, points[0])
    comma_file = any(fmt[0] == "," for fmt in marks) and (".", ",") not in marks and not points
    if comma_file and (dotted or (",", ".") in marks):  # one rule for the file's decimal-comma columns
        detected = {c: ((",", "."), e) if fmt[0] == "," else (fmt, e) for c, (fmt, e) in detected.items()}
    if comma_file and dotted:
        detected.update((col, ((",", "."), example)) for col, example in dotted)
        names = ", ".join(repr(col) for col, _ in dotted)
        shown = next(c for c, (fmt, _) in detected.items() if fmt[0] == "," and c not in dict(dotted))
        notes.append(
            f"{source}: the file writes decimal commas (column {shown!r}), "
            f"so '.' in column(s) {names} groups thousands ({dotted[0][1].strip()!r} is "
            f"{canonical_number(dotted[0][1], (',', '.'))}): read as with --decimal ',' --thousands '.'"
        )
    return detected, dotted


def _semicolon_formats(
    source: str,
    cols: dict[str, readers.Column],
    used: list[str],
    forced: set[str],
    notes: list[str],
    texts: dict[str, readers.Column],
    rows: np.ndarray,
) -> tuple[dict[str, tuple[str, str]], tuple[str, str] | None]:
    """:func:`.csvfile._number_formats` (no format given) of a ``;``-separated file on its cells' texts:
    there a number's own text decides too (2.207 beside 2,75 groups thousands), so ``texts`` holds every
    cell's text (:func:`readers.read_csv_columns` with ``texts=True``; ``rows``: the rows of the table
    among them). Returns each column's format (its cells in ``cols`` read so, with the reader's notes and
    errors) and the file's one format (:func:`.csvfile._file_number_format`), or None.

    The rules only ask whether all or any cell is written so, or for the first that is, and what they
    match does not change when one digit 1-9 replaces another: each column's distinct texts are cut down
    to the first of each shape (every 1-9 read as 1), so 10^5 distinct prices cost a few hundred checks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shapes: dict[str, list[str]] = {}

    def one_per_shape(col: str) -> list[str]:
        if col not in shapes:
            t = texts[col]
            if t.codes is None:
                return []
            codes = t.codes[rows]
            present, first = np.unique(codes[codes >= 0], return_index=True)
            distinct = pa.array([t.strings[int(k)] for k in present[np.argsort(first)].tolist()], pa.string())
            shape = pc.replace_substring_regex(distinct, "[1-9]", "1").dictionary_encode()
            kinds, at = np.unique(shape.indices.to_numpy(zero_copy_only=False), return_index=True)
            shapes[col] = distinct.take(pa.array(np.sort(at))).to_pylist()
        return shapes[col]

    detected, dotted = detect_file_formats(source, used, forced, ";", one_per_shape, notes)
    found: dict[str, list[tuple[str, str]]] = {}
    for col in used:
        if col not in detected:
            continue
        fmt, example = detected[col]
        if col not in dict(dotted):  # (those have their note already)
            found.setdefault(format_how(fmt, example), []).append((col, example))
        t = texts[col]
        assert t.codes is not None  # a detected column has present cells
        if fmt != (".", "") and any("_" in text for text in t.strings):  # 1_000: a number to Python only
            raise readers.Fallback("a number not written in the column's format")
        # each distinct text read in the format as a given format is read (a number written otherwise that
        # Python would read: Fallback, and the pure-Python reader names the cell)
        builder = readers._Builder(True)
        builder.add_strings(readers.canonical_strings(pa.array(t.strings, pa.string()), fmt))
        read = builder.build()
        kinds = read.kind.copy()
        kinds[kinds != readers.NUMBER] = readers.TEXT  # a text no rule reads as a number stays as written
        codes = t.codes[rows]
        present = codes >= 0
        c = cols[col]
        kind, num = c.kind.copy(), np.array(c.num, dtype=np.float64, copy=True)
        kind[present], num[present] = kinds[codes[present]], read.num[codes[present]]
        has_text = bool((kind == readers.TEXT).any())
        cols[col] = readers.Column(kind, num, codes if has_text else None, t.strings if has_text else [], True)
    notes.extend(format_notes(source, found))
    formats = {col: fmt for col, (fmt, _) in detected.items()}
    one = set(formats.values())
    file_format = one.pop() if len(one) == 1 else None
    if file_format == (".", ""):
        file_format = None
    if file_format is not None:  # giving it reads every other column alike: none of their texts rewritten
        for col in used:
            if col not in formats and any(canonical_number(v, file_format) != v for v in one_per_shape(col)):
                file_format = None
                break
    return formats, file_format


def _detected_formats(
    source: str,
    cols: dict[str, readers.Column],
    used: list[str],
    forced: set[str],
    delimiter: str,
    notes: list[str],
) -> dict[str, tuple[str, str]]:
    """:func:`.csvfile._number_formats` (no format given) on the cell facts: each column whose text cells are
    all numbers written with commas (thousands) or as Excel writes them ('12, 12%) gets that format, with
    the reader's notes and errors, and its cells in ``cols`` read so. Outside a ``;``-separated file only
    the text cells decide; in one, the numbers' own text does (2.207 beside 2,75): the row-by-row reader's."""
    if delimiter == ";":  # the numbers' own text decides there: _semicolon_formats
        raise readers.Fallback("numbers written with commas in a ';'-separated file")
    detected: dict[str, tuple[tuple[str, str], str, bool]] = {}
    for col in used:
        if col in forced:
            continue
        _, odd = _text_cells(cols[col])
        if not odd:
            continue
        grouped = _all_grouped(odd)
        fmt = (".", ",") if grouped else detect_number_format(odd, delimiter)
        if fmt is not None:
            detected[col] = (fmt, odd[0], grouped)
            continue
        ambiguous = ambiguous_commas_error(source, col, odd, delimiter)
        if ambiguous is not None:
            raise ambiguous
    found: dict[str, list[tuple[str, str]]] = {}
    for col, (fmt, example, grouped) in detected.items():
        found.setdefault(format_how(fmt, example), []).append((col, example))
        cols[col] = _with_format(cols[col], fmt, grouped)
    notes.extend(format_notes(source, found))
    return {col: fmt for col, (fmt, _, _) in detected.items()}


def _file_number_format(
    cols: dict[str, readers.Column], used: list[str], formats: dict[str, tuple[str, str]]
) -> tuple[str, str] | None:
    """:func:`.csvfile._file_number_format` on the cell facts: the one format detected, when giving it reads
    every other column alike (none of its present texts rewritten by it: a number's text never is)."""
    found = set(formats.values())
    if len(found) != 1:
        return None
    fmt = found.pop()
    if fmt == (".", ""):
        return None
    for col in used:
        c = cols[col]
        if col in formats or c.codes is None:
            continue
        present = ~c.missing & (c.codes >= 0)
        for k in _used_codes(c.codes[present], len(c.strings)).tolist():
            if canonical_number(c.strings[k], fmt) != c.strings[k]:
                return None
    return fmt


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
    fmt: tuple[str, str] | None = None,
    last_row: Callable[[], list[str] | None] | None = None,
    delimiter: str = ",",
    texts: Callable[[], dict[str, readers.Column]] | None = None,
) -> tuple[Table, TabularEncoder]:
    """:func:`read_csv`'s rules applied column by column to the cell facts of :mod:`readers` (read with
    the number format ``fmt`` when one is given; ``delimiter``: a CSV's separator, which decides what
    commas in numbers mean; ``texts``: every cell's text, read again when a ``;``-separated file writes
    numbers with commas, whose formats the numbers' own texts decide).

    Each step mirrors the row-by-row code of :func:`read_csv` and raises the same errors in the same
    order; a message about a cell is produced by running the row-by-row encoder on that one row
    (found again in the file), so its text is the pure-Python reader's own. With ``exact`` (CSV),
    cases where the cell facts are not enough to be sure raise :class:`readers.Fallback`."""
    notes: list[str] = []
    if exact:
        said = header_note(source, header)
        if said:
            notes.append(said)
    target, columns, dropped = _choose_columns(source, header, target, drop)
    t_idx = header.index(target)
    used = columns + [target]
    n_rows = len(cols[target].kind)
    if exact:
        cols, n_rows = _total_row(source, cols, header, target, rows_at, notes, fmt is not None, last_row)
    keep = np.arange(n_rows)
    if missing != "error":
        keep = _rows_kept(cols, target, used, missing, source, notes)
        cols = {c: (cols[c].take(keep) if len(keep) < n_rows else cols[c]) for c in used}  # no copy when all stay
    if missing in IMPUTE:  # a column with no value at all is left out (SimpleImputer)
        empty = [c for c in columns if cols[c].missing.all()]
        if empty:
            columns = [c for c in columns if c not in empty]
            used = columns + [target]
            notes.append(empty_columns_note(source, empty, missing))
            if not columns:
                raise no_features_error(source)
    forced = _forced_categorical(categorical, columns)
    # numbers written with commas ("1,200", "2,75"), '12 or 12%: their format found as the row-by-row reader
    # finds it (a format given is read by readers.canonical_strings)
    formats: dict[str, tuple[str, str]] | None = dict.fromkeys(used, fmt) if fmt is not None else None
    number_format: tuple[str, str] | None = None
    if exact and fmt is None:
        for col in used:
            c = cols[col]
            if c.codes is not None and any(
                looks_like_comma_number(text) or looks_like_excel_number(text) or (delimiter == ";" and "," in text)
                for text in c.strings
            ):
                if delimiter == ";" and texts is not None:
                    formats, number_format = _semicolon_formats(source, cols, used, forced, notes, texts(), keep)
                    break
                formats = _detected_formats(source, cols, used, forced, delimiter, notes)
                number_format = _file_number_format(cols, used, formats)
                break
    booleans = _boolean_columns(source, columns, cols, forced, notes, exact)
    categories = _column_categories(source, columns, cols, forced, exact, max_categories)
    if missing in IMPUTE:
        said = fill_note(source, {c: int(cols[c].missing.sum()) for c in columns if c not in categories}, missing)
        if said:
            notes.append(said)
    if missing == "constant":
        categories = with_fill_category(categories, lambda c: bool(cols[c].missing.any()))
    check_one_hot_memory(source, len(keep), len(columns) - len(categories), categories)
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
            f"{cell_location(source, line, t_idx, target)}: missing target value; "
            "--missing drop (or mean/median/most_frequent) drops such rows"
        )
    is_text = t.kind == readers.TEXT
    numbers = t.num
    if exact and not is_text.all() and np.isnan(numbers[~is_text]).any():
        raise readers.Fallback("NaN labels")  # '-nan': Python's set of floats decides the classes
    reason = "given"
    if task is None:
        n_present = len(numbers)
        n_numbers = n_present - int(is_text.sum())
        if stray_target_share(n_numbers, n_present):
            index = int(keep[int(np.argmax(is_text))])
            found = rows_at([index]).get(index)
            if found is None and exact:
                raise readers.Fallback("row not confirmed")
            line, cells = found if found is not None else (index + 1, None)
            value = cells[t_idx] if cells is not None else "?"
            where = cell_location(source, line, t_idx, target)
            raise _stray_target_error(where, value.strip(), n_numbers, n_present)
        task, reason = _column_task(is_text, numbers)
        reason = overriding(task, reason)
    if task not in ("classification", "regression"):
        raise ConfigError(f"read_csv: task must be 'classification' or 'regression', got {task!r}")
    classes: list[str] = []
    y_index: np.ndarray | None = None
    if task == "classification":
        classes, y_index = _column_classes(t, exact, source, target)
    encoder = TabularEncoder(columns, target, categories, task, classes, missing, dropped, formats, booleans=booleans)
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
        y = numbers.astype(np.float64).reshape(-1, 1)  # float64: 1e9 + 10.5 must not become 1e9
    table = Table(X, y, task, Path(source).stem, encoder.feature_names, target, classes)
    if task == "regression":
        table.y = y  # float64 (Table makes float32): the run standardizes the target in float64
    table.notes = notes
    table.task_reason = reason
    table.number_format = number_format
    if exact:  # a CSV: its lines found again when a message asks (blank lines, quoted fields over lines)
        table.line_of = _lines_of(rows_at, keep)
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
    In messages, ``file: row N (column 'name')`` counts data rows from 1 (a Parquet file has no lines).
    """
    _check_options(missing, "read_parquet")
    p = Path(path)
    if not p.is_file():
        raise readers.not_a_data_file(p)
    header, columns = readers.read_parquet_columns(p, progress=progress)
    if not len(next(iter(columns.values())).kind):
        raise DataError(f"{p}: no data rows")

    def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
        cells = readers.parquet_rows(p, wanted, header)
        return {r: (r + 1, row) for r, row in zip(wanted, cells)}

    return _table_from_columns(
        str(path), header, columns, rows_at, False, target, task, None, missing, drop, max_categories
    )
