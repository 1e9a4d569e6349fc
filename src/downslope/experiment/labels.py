"""A classification run's labels: the type its target column had (so predictions come back as integers,
floats, booleans or text, as the data held them) and the merging of labels that differ only in case or
surrounding spaces (``merge_label_variants``)."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, DataError

#: the kinds of a classification target a run records (``state["target_kind"]``); a run without the
#: record (written before it, or a built-in dataset's) answers with its class names as text
INT, FLOAT, BOOL, TEXT = "int", "float", "bool", "text"
TARGET_KINDS = (INT, FLOAT, BOOL, TEXT)
_BOOLEAN_NAMES = {"true": True, "false": False}
_DIGITS = re.compile(r"^\d+$")
_LEADING_ZERO = re.compile(r"^0\d+$")  # '02100', '007'; not '0' and not '0.5'


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def kind_of_classes(classes: Sequence[str], written_as_float: bool) -> str:
    """The kind of a target whose class names are ``classes``; ``written_as_float``: some label of an
    integer-valued numeric target was written as a float (``1.0``), so its column is a float column.

    Example:
        >>> kind_of_classes(["0", "1"], False), kind_of_classes(["1", "2"], True), kind_of_classes(["0.5", "2"], False)
        ('int', 'float', 'float')
        >>> kind_of_classes(["False", "True"], False), kind_of_classes(["cat", "dog"], False)
        ('bool', 'text')
        >>> kind_of_classes(["02100", "02101"], False)
        'text'
    """
    names = [str(c) for c in classes]
    if names and all(n.strip().casefold() in _BOOLEAN_NAMES for n in names):
        return BOOL
    numbers = [_number(n) for n in names]
    # a class named with a leading zero ('02100', see keep_written_codes) is a code: text, as written
    if not names or any(v is None for v in numbers) or any(_LEADING_ZERO.match(n.strip()) for n in names):
        return TEXT
    if written_as_float or not all(v is not None and v.is_integer() and "." not in n for v, n in zip(numbers, names)):
        return FLOAT
    return INT


def typed_classes(classes: Sequence[str], kind: str | None) -> np.ndarray:
    """A run's class names as an array of its target's type: int64, float64, bool, or text (``str``)
    for a text target and for a run that recorded no kind.

    Example:
        >>> typed_classes(["0", "1"], "int").tolist(), typed_classes(["1", "2"], "float").dtype.name
        ([0, 1], 'float64')
        >>> typed_classes(["False", "True"], "bool").tolist(), typed_classes(["a", "b"], None).tolist()
        ([False, True], ['a', 'b'])
    """
    names = [str(c) for c in classes]
    if kind == INT:
        return np.array([int(float(n)) for n in names], dtype=np.int64)
    if kind == FLOAT:
        return np.array([float(n) for n in names], dtype=np.float64)
    if kind == BOOL:  # (a Parquet boolean column's classes are named 0 and 1)
        return np.array(
            [_BOOLEAN_NAMES.get(n.strip().casefold(), _number(n) not in (None, 0.0)) for n in names], dtype=bool
        )
    return np.asarray(names)


# The longest cell the labels' second reading takes (csv's own default is 128 KiB): a C long on every
# platform, so csv.field_size_limit accepts it.
_CELL_LIMIT = 2**31 - 1


def _csv_cells(path: str, target: str, delimiter: str, header: bool = True) -> Counter[str] | None:
    """How often each distinct label of the CSV's ``target`` column is written, as written (stripped; an
    empty cell left out): the readers keep the numbers, not how they were written, so the column is read once
    more. None when Python's csv cannot re-read the file or the column is not found. ``header``: False for a
    file read with --no-header, whose columns are named ``col_0``, ``col_1``, ..."""
    from ..data.csvfile import default_delimiter
    from ..data.readers import open_text

    delimiter = default_delimiter(path, delimiter)
    seen: Counter[str] = Counter()
    # The table was already read whole, so its cells are within what the readers take: a long free-text
    # cell (a quoted note over csv's default limit of 128 KiB) must not stop this second look at the labels.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, _CELL_LIMIT))
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            if header:
                names = [h.strip() for h in next(reader, [])]
                if target not in names:
                    return None
                j = names.index(target)
            else:
                numbered = re.fullmatch(r"col_(\d+)", target)
                if numbered is None:
                    return None
                j = int(numbered.group(1))
            for row in reader:
                if j < len(row) and row[j].strip():
                    seen[row[j].strip()] += 1
    except csv.Error:  # what Python's csv cannot re-read is read as the readers typed it
        return None
    finally:
        csv.field_size_limit(limit)
    return seen


def _written_as_float(seen: Counter[str] | None, decimal: str) -> bool:
    """Whether some label of ``seen`` (a column's labels as written) is written as a float (``1.0``, ``1e0``)."""
    marks = (decimal, "e", "E")
    return any(_number(v.replace(decimal, ".")) is not None and any(m in v for m in marks) for v in seen or ())


def _csv_written_as_float(path: str, target: str, delimiter: str, decimal: str) -> bool:
    """Whether some label of the CSV's ``target`` column is written as a float (``1.0``, ``1e0``)."""
    return _written_as_float(_csv_cells(path, target, delimiter), decimal)


def _stored_cells(path: str, target: str) -> Counter[str] | None:
    """The labels of a Parquet file's text column or an NPZ's/NPY's text ``y`` as written, with their counts;
    None for a column of numbers (they hold no spelling) or when the column is not found."""
    lowered = path.lower()
    if lowered.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq  # reading Parquet needs pyarrow already

        if target not in pq.read_schema(path).names:
            return None
        column = pq.read_table(path, columns=[target]).column(0)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return None
        values = [v for v in column.to_pylist() if v is not None]
    else:
        if lowered.endswith(".npz"):
            with np.load(path, allow_pickle=False) as archive:
                if "y" not in archive.files or archive["y"].dtype.kind not in "US":
                    return None
                raw = archive["y"]
        else:
            raw = np.load(path, mmap_mode="r", allow_pickle=False)
            if raw.dtype.kind not in "US" or raw.ndim != 2:
                return None
            raw = raw[:, -1]
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(raw).reshape(-1).tolist()]
    return Counter(v.strip() for v in values if str(v).strip())


def written_labels(cfg: dict[str, Any], table: Any) -> Counter[str] | None:
    """A file target's labels as the file writes them, with their counts (see :func:`keep_written_codes`);
    None for a built-in dataset or a column of numbers, which hold no spelling."""
    from ..data.csvfile import csv_suffix
    from .inputs import is_file_source

    source = str(cfg["data"])
    if not is_file_source(source):
        return None
    target = str(table.target_name)
    if csv_suffix(source) is not None:
        return _csv_cells(source, target, str(cfg.get("sep", ",")), bool(cfg.get("header", True)))
    return _stored_cells(source, target)


def keep_written_codes(
    classes: Sequence[str], written: Counter[str] | None, where: str, target: str = ""
) -> tuple[list[str], list[str]]:
    """A target of digit codes written with leading zeros (zip codes, account numbers: every label digits,
    some with a leading zero, the rule feature columns follow) keeps its labels as written: ``(classes,
    notes)``. The readers name a class by its number (``class_key``: ``02100`` is class ``2100``, as ``1`` and
    ``1.0`` are one class); each such class is named here by its spelling in the file, so predict writes
    ``02100``. Two spellings of one number (``2100`` and ``02100``) stay one class, named by the more frequent
    (a tie: the one written first), and a note says so. Anything else: the classes unchanged, no note.

    Example:
        >>> keep_written_codes(["2100", "2101"], Counter({"02100": 3, "02101": 2}), "f.csv", "zip")[0]
        ['02100', '02101']
        >>> keep_written_codes(["1", "2"], Counter({"1": 3, "2": 2}), "f.csv")
        (['1', '2'], [])
    """
    from ..data.encoding import class_key

    names = [str(c) for c in classes]
    if not written or not all(_DIGITS.match(n) for n in names) or not all(_DIGITS.match(v) for v in written):
        return names, []
    example = next((v for v in written if _LEADING_ZERO.match(v)), None)
    if example is None:
        return names, []
    spellings: dict[str, list[str]] = {}
    for v in written:  # (in the order first written)
        spellings.setdefault(class_key(v), []).append(v)
    kept = [max(spellings.get(n, [n]), key=lambda v: written.get(v, 0)) for n in names]
    column = f" {target!r}" if target else ""
    notes = [
        f"{where}: the target{column} holds digit codes with leading zeros ({example!r}, ...), codes rather than "
        f"numbers: its classes keep them as written (predict writes {example!r}, not {class_key(example)!r})"
    ]
    several = [(spellings[n], k) for n, k in zip(names, kept) if len(spellings.get(n, [])) > 1]
    if several:
        said = "; ".join(f"{', '.join(repr(v) for v in vs)} as {k!r}" for vs, k in several[:10])
        notes.append(
            f"{where}: the target{column} writes one number in several ways (the same class, named by its most "
            f"frequent spelling): {said}{'; ...' if len(several) > 10 else ''}"
        )
    return kept, notes


# ---------------------------------------------------------------------- the positive class
def positive_class(classes: Sequence[str], counts: Any = None) -> int:
    """The index of a binary target's positive class, the one ``average_precision`` (a precision-recall
    area) is about. Labels 0/1 and -1/1 (as numbers) and false/true: the 1 (true), scikit-learn's
    ``pos_label=1``; any other labels (text such as fraud/ok, numbers such as 1/2): the rarer class by
    ``counts`` (the training split's rows of each class), the class a precision-recall curve is meant for;
    a tie or no counts: ``classes[1]``.

    Example:
        >>> positive_class(["0", "1"], [10, 90]), positive_class(["-1", "1"], [90, 10])
        (1, 1)
        >>> positive_class(["fraud", "ok"], [56, 2944]), positive_class(["False", "True"], None)
        (0, 1)
        >>> positive_class(["no", "yes"], [5, 5]), positive_class(["no", "yes"], None)
        (1, 1)
    """
    names = [str(c).strip() for c in classes]
    if len(names) != 2:
        raise ArgumentError(f"positive_class: expected the 2 classes of a binary target, got {len(names)}: {names}")
    folded = [n.casefold() for n in names]
    if set(folded) == set(_BOOLEAN_NAMES):
        return folded.index("true")
    numbers = [_number(n) for n in names]
    if set(numbers) in ({0.0, 1.0}, {-1.0, 1.0}):
        return numbers.index(1.0)
    if counts is not None:
        c = np.asarray(counts, dtype=np.int64).reshape(-1)
        if len(c) >= 2 and c[0] != c[1]:
            return int(np.argmin(c[:2]))
    return 1


def _parquet_kind(path: str, target: str) -> str | None:
    """The kind of a Parquet file's ``target`` column by its schema (None when it is not there)."""
    import pyarrow.parquet as pq  # reading Parquet needs pyarrow already

    schema = pq.read_schema(path)
    if target not in schema.names:
        return None
    kind = schema.field(target).type
    import pyarrow as pa

    if pa.types.is_boolean(kind):
        return BOOL
    if pa.types.is_integer(kind):
        return INT
    if pa.types.is_floating(kind):
        return FLOAT
    return None


def _array_kind(path: str) -> str | None:
    """The kind of an NPZ's ``y`` or an NPY's last column by its dtype (never pickled objects)."""
    if path.lower().endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            if "y" not in archive.files:
                return None
            dtype = archive["y"].dtype
    else:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            dtype = header(handle)[2]
    return {"b": BOOL, "i": INT, "u": INT, "f": FLOAT}.get(dtype.kind)


def target_kind(cfg: dict[str, Any], table: Any, written: Counter[str] | None = None) -> str:
    """The kind of a classification run's target (see :data:`TARGET_KINDS`), from its source file's
    column; "" for a built-in dataset (its class names stay text, as before the record existed).
    ``written``: a CSV target's labels as written (:func:`written_labels`), when read already."""
    from .inputs import is_file_source

    source = str(cfg["data"])
    names = list(table.class_names)
    if not is_file_source(source) or not names:
        return ""
    by_names = kind_of_classes(names, False)
    if by_names in (BOOL, TEXT):
        return by_names
    lowered = source.lower()
    if lowered.endswith(".parquet"):
        return _parquet_kind(source, str(table.target_name)) or by_names
    if lowered.endswith((".npz", ".npy")):
        stored = _array_kind(source)
        return by_names if stored is None or stored == BOOL else stored
    if by_names == FLOAT:
        return FLOAT
    if written is None:
        written = _csv_cells(source, str(table.target_name), str(cfg.get("sep", ",")), bool(cfg.get("header", True)))
    return FLOAT if _written_as_float(written, str(cfg.get("decimal", "."))) else INT


# ---------------------------------------------------------------------- merging label variants
def label_key(name: str) -> str:
    """How ``merge_label_variants`` compares labels: without surrounding spaces, case folded.

    Example:
        >>> label_key(" Yes "), label_key("YES"), label_key("Straße")
        ('yes', 'yes', 'strasse')
    """
    return str(name).strip().casefold()


def merge_variants(
    classes: Sequence[str], y: np.ndarray, where: str, target: str = ""
) -> tuple[list[str], np.ndarray, list[str]]:
    """Classes that differ only in case or surrounding spaces merged into one: ``(classes, y, notes)``.

    The name kept for a merged class is its most frequent spelling in ``y`` (a tie: the one whose first
    row comes first); the merged classes keep the order of the names kept (numbers as numbers, else as
    text), ``y`` is renumbered, and a note lists what was merged. Nothing to merge: the inputs unchanged.

    Example:
        >>> names, codes, notes = merge_variants(["YES", "Yes", "no", "yes"], np.array([3, 1, 3, 2, 0]), "f.csv")
        >>> names, codes.tolist()
        (['no', 'yes'], [1, 1, 1, 0, 1])
        >>> print(notes[0])
        f.csv: merged labels that differ only in upper/lower case or spaces (merge_label_variants): 'YES', 'Yes' into 'yes'; 2 classes remain
    """
    from ..data.encoding import sorted_classes

    names = [str(c) for c in classes]
    codes = np.asarray(y).reshape(-1)
    counts = np.bincount(codes, minlength=len(names))
    first = np.full(len(names), len(codes), dtype=np.int64)
    seen, at = np.unique(codes, return_index=True)
    first[seen] = at
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(label_key(n), []).append(i)
    if all(len(g) == 1 for g in groups.values()):
        return names, y, []
    kept_of_group = {
        key: names[min(members, key=lambda i: (-int(counts[i]), int(first[i])))] for key, members in groups.items()
    }
    merged = sorted_classes(kept_of_group.values())
    index_of = {name: i for i, name in enumerate(merged)}
    remap = np.array([index_of[kept_of_group[label_key(n)]] for n in names], dtype=np.int64)
    said = [
        f"{', '.join(repr(names[i]) for i in members if names[i] != kept_of_group[key])} into {kept_of_group[key]!r}"
        for key, members in groups.items()
        if len(members) > 1
    ]
    column = f" of {target!r}" if target else ""
    note = (
        f"{where}: merged labels{column} that differ only in upper/lower case or spaces (merge_label_variants): "
        f"{'; '.join(said[:10])}{'; ...' if len(said) > 10 else ''}; {len(merged)} classes remain"
    )
    if len(merged) < 2:
        raise DataError(
            f"{where}: the target{column} holds a single class ({merged[0]!r}) once its labels that differ only in "
            "case or spaces are merged (merge_label_variants); a classifier needs at least 2 classes"
        )
    new_y = remap[codes].reshape(np.shape(y))
    return merged, new_y.astype(np.asarray(y).dtype, copy=False), [note]
