"""A classification run's labels: the type its target column had (so predictions come back as integers,
floats, booleans or text, as the data held them) and the merging of labels that differ only in case or
surrounding spaces (``merge_label_variants``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError

#: the kinds of a classification target a run records (``state["target_kind"]``); a run without the
#: record (written before it, or a built-in dataset's) answers with its class names as text
INT, FLOAT, BOOL, TEXT = "int", "float", "bool", "text"
TARGET_KINDS = (INT, FLOAT, BOOL, TEXT)
_BOOLEAN_NAMES = {"true": True, "false": False}


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
    """
    names = [str(c) for c in classes]
    if names and all(n.strip().casefold() in _BOOLEAN_NAMES for n in names):
        return BOOL
    numbers = [_number(n) for n in names]
    if not names or any(v is None for v in numbers):
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


def _csv_written_as_float(path: str, target: str, delimiter: str, decimal: str) -> bool:
    """Whether some label of the CSV's ``target`` column is written as a float (``1.0``, ``1e0``): its
    distinct cells are read once more (the readers keep the numbers, not how they were written)."""
    from ..data.csvfile import default_delimiter
    from ..data.readers import open_text

    delimiter = default_delimiter(path, delimiter)
    seen: set[str] = set()
    # The table was already read whole, so its cells are within what the readers take: a long free-text
    # cell (a quoted note over csv's default limit of 128 KiB) must not stop this second look at the labels.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, _CELL_LIMIT))
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = [h.strip() for h in next(reader, [])]
            if target not in header:
                return False
            j = header.index(target)
            for row in reader:
                if j < len(row):
                    seen.add(row[j].strip())
    except csv.Error:  # what Python's csv cannot re-read is read as the readers typed it (integers)
        return False
    finally:
        csv.field_size_limit(limit)
    marks = (decimal, "e", "E")
    return any(_number(v.replace(decimal, ".")) is not None and any(m in v for m in marks) for v in seen if v)


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


def target_kind(cfg: dict[str, Any], table: Any) -> str:
    """The kind of a classification run's target (see :data:`TARGET_KINDS`), from its source file's
    column; "" for a built-in dataset (its class names stay text, as before the record existed)."""
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
    written_as_float = _csv_written_as_float(source, str(table.target_name), str(cfg.get("sep", ",")),
                                             str(cfg.get("decimal", ".")))  # fmt: skip
    return FLOAT if written_as_float else INT


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
