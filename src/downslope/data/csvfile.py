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
import gzip
import os
import re
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from . import readers
from .columns import _read_csv_columnar, detect_file_formats, format_how, format_notes
from .datasets import Table
from .encoding import (
    BOOLEAN_SPELLINGS,
    DECIMALS,
    IMPUTE,
    MAX_CATEGORIES,
    THOUSANDS,
    TabularEncoder,
    _as_float,
    _check_options,
    _choose_columns,
    _forced_categorical,
    _is_missing,
    _line_numbers,
    _one_class_error,
    _Rows,
    _stray_target_error,
    _too_many_categories,
    boolean_note,
    canonical_number,
    cell_location,
    check_numeric,
    check_numeric_read,
    check_one_hot_memory,
    class_key,
    codes_error,
    codes_note,
    empty_columns_note,
    fill_note,
    header_note,
    headerless,
    infer_task,
    is_boolean_column,
    leading_zero_code,
    looks_like_excel_number,
    misread_number,
    missing_by_column,
    no_features_error,
    not_categories_error,
    overriding,
    refused_columns_error,
    sorted_classes,
    stray_target_share,
    strip_unit,
    total_row_note,
    total_row_reason,
    unit_column,
    unit_note,
    with_fill_category,
)

# Text files read as CSV: their name's ending, and the separator used when none is given (a .txt's is
# found from its first lines: spreadsheets and databases export CSV and TSV under that name too).
CSV_SUFFIXES = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t", ".txt": ",", ".txt.gz": ","}
TEXT_SUFFIXES = (".txt", ".txt.gz")
SNIFFED_SEPARATORS = (",", "\t", ";", "|")


def sniff_delimiter(path: str | os.PathLike[str], lines: int = 20) -> str | None:
    """The separator that splits the first ``lines`` lines of a text file into the same number (more than
    one) of fields each: ``,``, tab, ``;`` or ``|`` (the first that does), else None (not delimited text,
    or unreadable: the reader then says why)."""
    try:
        with _open_text(Path(path)) as handle:
            head = [line for _, line in zip(range(lines), handle)]
    except (OSError, EOFError, UnicodeDecodeError):
        return None
    for sep in SNIFFED_SEPARATORS:
        try:
            widths = {len(row) for row in csv.reader(head, delimiter=sep) if row}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() > 1:
            return sep
    return None


def csv_suffix(path: str | os.PathLike[str]) -> str | None:
    """The CSV-like ending of a file name (``.csv``, ``.csv.gz``, ``.tsv``, ...), else None.

    Example:
        >>> csv_suffix("data.csv.gz"), csv_suffix("x.TSV"), csv_suffix("x.xlsx")
        ('.csv.gz', '.tsv', None)
    """
    name = str(path).lower()
    return next((s for s in sorted(CSV_SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def default_delimiter(path: str | os.PathLike[str], delimiter: str) -> str:
    """The separator to read ``path`` with: a tab for a ``.tsv`` read with the default comma.

    Example:
        >>> default_delimiter("a.tsv", ",") == chr(9), default_delimiter("a.tsv", ";"), default_delimiter("a.csv", ",")
        (True, ';', ',')
    """
    suffix = csv_suffix(path)
    if suffix in TEXT_SUFFIXES and delimiter == ",":
        return sniff_delimiter(path) or ","
    return CSV_SUFFIXES[suffix] if suffix is not None and delimiter == "," else delimiter


# Files people give that are not read here, and how to turn each into a CSV (pandas).
CONVERT: dict[str, str | None] = {
    ".xlsx": "read_excel",
    ".xls": "read_excel",
    ".xlsm": "read_excel",
    ".ods": "read_excel",
    ".json": "read_json",
    ".jsonl": "read_json",  # (with lines=True: one JSON object a line)
    ".ndjson": "read_json",
    ".feather": "read_feather",
    ".h5": "read_hdf",
    ".hdf5": "read_hdf",
    ".pkl": None,  # loading a pickle runs code from the file: never advised for a file of unknown origin
    ".pickle": None,
    ".sav": "read_spss",
    ".dta": "read_stata",
    ".sas7bdat": "read_sas",
    ".zip": "read_csv",
    ".bz2": "read_csv",
    ".xz": "read_csv",
}


def _free_name(name: str) -> str:
    """``name``, or ``stem-converted.csv`` (``-converted2`` ...) when a file of that name exists: advice
    must not overwrite the user's files."""
    if not os.path.exists(name):
        return name
    stem = name[: -len(".csv")]
    for k in range(1, 1000):
        candidate = f"{stem}-converted{k if k > 1 else ''}.csv"
        if not os.path.exists(candidate):
            return candidate
    return f"{stem}-converted-{os.getpid()}.csv"


def _shell_quoted(code: str) -> str:
    """``code`` as one shell word: in double quotes when nothing in it is special there, else as
    :func:`shlex.quote` writes it (a path with a quote, a dollar sign, a backslash)."""
    if not any(c in code for c in '"$`\\!'):
        return f'"{code}"'
    return shlex.quote(code)


def unsupported_file(path: str | os.PathLike[str]) -> DataError:
    """The error for a file of a type downslope does not read, saying how to convert it.

    Example:
        >>> print(unsupported_file("data.xlsx"))  # doctest: +ELLIPSIS
        data.xlsx: unsupported file type '.xlsx'; downslope reads .csv (also .csv.gz and .tsv), ...
    """
    name = str(path)
    suffix = "".join(Path(name).suffixes[-2:]).lower() if name.lower().endswith((".zip", ".bz2", ".xz")) else ""
    suffix = suffix or Path(name).suffix.lower()
    last = Path(name).suffix.lower()
    reader = CONVERT.get(last)
    stem = name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name
    if last in (".pkl", ".pickle"):
        advice = (
            "; loading a pickle runs code stored in the file, so convert it in the program that wrote it, from "
            "the data it holds (a DataFrame's df.to_csv('data.csv', index=False)), not by loading the file"
        )
    elif reader:
        lines = ", lines=True" if last in (".jsonl", ".ndjson") else ""
        target = _free_name(f"{stem}.csv")
        # mode='x': the command refuses to replace a file that appears under that name meanwhile
        code = f"import pandas as pd; pd.{reader}({name!r}{lines}).to_csv({target!r}, index=False, mode='x')"
        advice = f"; convert it with pandas: python -c {_shell_quoted(code)}"
    else:
        advice = "; save it as a CSV"
    return DataError(
        f"{name}: unsupported file type {suffix or '(no extension)'!r}; downslope reads .csv (also .csv.gz and "
        f".tsv), .parquet, .npz and .npy{advice}"
    )


def _open_text(p: Path) -> Any:
    """A CSV file for reading as text (a ``.gz`` one decompressed)."""
    if p.name.lower().endswith(".gz"):
        return gzip.open(p, "rt", newline="", encoding="utf-8-sig")
    return open(p, newline="", encoding="utf-8-sig")


def check_number_format(decimal: str, thousands: str) -> tuple[str, str]:
    """``(decimal, thousands)`` checked: known marks, different from each other (a mark that is also the
    field separator is fine in quoted cells, ``"1,200"``, as in pandas).

    Example:
        >>> check_number_format(",", ".")
        (',', '.')
    """
    if decimal not in DECIMALS:
        raise ConfigError(f"decimal: expected '.' or ',' as the decimal mark, got {decimal!r}")
    if thousands not in THOUSANDS:
        raise ConfigError(
            f"thousands: expected one of {', '.join(repr(t) for t in THOUSANDS)} as the thousands separator, "
            f"got {thousands!r}"
        )
    if thousands == decimal:
        raise ConfigError(f"thousands: the thousands separator {thousands!r} is also the decimal mark")
    return decimal, thousands


def refuse_nul_bytes(p: Path, delimiter: str) -> None:
    """Refuse a CSV holding a NUL byte, naming its line and column: CSV text has none (a file zero-filled
    by a crash or a disk error, or a binary file), and read on, a NUL makes a name or a category that
    differs from the one seen (``'\\x00b'`` prints like ``'b'``) or a number read as text.

    The file is scanned in blocks for the byte (as fast as it is read); the line and column are worked
    out only when one is found."""
    offset, found = 0, -1
    try:
        with readers.open_bytes(p) as handle:
            head = handle.read(4096)
            # UTF-16/32 text and binary files have NULs throughout: the encoding and binary-file advice
            # that the read gives says what they are, so they are left to it
            if head.startswith((b"\xff\xfe", b"\xfe\xff")) or binary_file_advice(p, head) is not None:
                return
            wide = _wide_text(head)
            if wide is not None:  # NULs are valid UTF-8: the read would take the text for one odd column
                raise DataError(
                    f"{p}: the file is {wide} text without a byte-order mark, not UTF-8; save it as 'CSV UTF-8' "
                    f"or convert it: iconv -f {wide} -t UTF-8 '{p}' > converted.csv"
                )
            if not _utf8_text(head):
                return
            handle.seek(0)
            while block := handle.read(1 << 22):
                at = block.find(b"\x00")
                if at >= 0:
                    found = offset + at
                    break
                offset += len(block)
    except (OSError, EOFError):
        return  # a damaged or unreadable file: the read itself names the problem
    if found < 0:
        return
    with readers.open_bytes(p) as handle:
        before = handle.read(found)
    line = before.count(b"\n") + 1
    start = before.rfind(b"\n") + 1
    marks = before[start:].decode("utf-8", errors="replace").lstrip("\ufeff")
    # the cell: separators outside quotes before the NUL on its line (a quoted cell spanning lines is rare)
    column, quoted = 1, False
    for char in marks:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            column += 1
    header = csv_header_row(p, delimiter) if line > 1 else None
    named = f" (column {header[column - 1]!r})" if header and column <= len(header) else ""
    where = "in the header" if line == 1 else "in a cell"
    raise DataError(
        f"{p}:{line}:{column}{named}: the file holds a NUL byte (\\x00) {where}; CSV text has none (a file "
        "zero-filled by a crash or a disk error, or a binary file?); remove the NUL bytes (tr -d '\\000' < "
        "in.csv > out.csv) or write the file again"
    )


def _wide_text(head: bytes) -> str | None:
    """The encoding (UTF-16LE/BE, UTF-32LE/BE) of a file whose first bytes look like UTF-16/32 text without a
    byte-order mark, else None: its ASCII characters leave NULs in some byte lanes (of four) and none in
    the others. A zero-filled file (as ``truncate`` or a crash leaves) has NULs in every lane: not text.

    Example:
        >>> _wide_text("a,b\\n1,2\\n".encode("utf-16-le")), _wide_text(bytes(64)), _wide_text(b"a,b\\n1,2\\n")
        ('UTF-16LE', None, None)
    """
    if len(head) < 8:
        return None
    lanes = "".join(
        "0" if lane.count(0) > 0.9 * len(lane) else "x" if lane.count(0) < 0.1 * len(lane) else "?"
        for lane in (head[k::4] for k in range(4))
    )
    return {"x0x0": "UTF-16LE", "0x0x": "UTF-16BE", "x000": "UTF-32LE", "000x": "UTF-32BE"}.get(lanes)


def _utf8_text(head: bytes) -> bool:
    """Whether a file's first bytes are UTF-8 (a character cut at the end of the block aside): other
    bytes (gzip data under a .csv name, Latin-1 text) are named by the read's encoding advice."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def _long_field_column(p: Path, line: int, delimiter: str) -> str:
    """The suffix ', column N' naming the cell on ``line`` (1-based) longer than csv's field limit: the line is scanned
    in blocks (it may be hundreds of megabytes), counting the separators outside quotes; "" if unknown."""
    limit = csv.field_size_limit()
    try:
        with _open_text(p) as handle:
            for _ in range(line - 1):
                handle.readline()
            marks = re.compile(f'["\r\n{re.escape(delimiter)}]')  # only these change the column
            column, start, offset, quoted = 1, 0, 0, False  # start: where the current cell began
            while block := handle.read(1 << 20):
                for found in marks.finditer(block):
                    at, char = offset + found.start(), found.group()
                    if at - start > limit:
                        return f", column {column}"
                    if char == '"':
                        quoted = not quoted
                    elif not quoted and char == delimiter:
                        column, start = column + 1, at + 1
                    elif not quoted:
                        return ""  # the line ended with no cell over the limit
                offset += len(block)
                if offset - start > limit:
                    return f", column {column}"
    except (OSError, UnicodeDecodeError, EOFError):
        pass
    return ""


def read_rows(
    path: str | os.PathLike[str], delimiter: str = ",", progress: bool = False, check_names: bool = True
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; ragged rows and empty files are errors naming file and line.

    This is the pure-Python reader (Python's csv module); with ``progress``, a big file gets a hint
    about the fast reader and a progress line on stderr when reading takes more than a second.
    ``check_names=False`` leaves the first row's names unchecked, for a caller that may find it is
    data (a headerless file of numbers, whose values repeat)."""
    p = Path(path)
    if not p.is_file():
        raise readers.not_a_data_file(p)
    delimiter = default_delimiter(p, delimiter)
    hint = readers.slow_hint(p) if progress else None
    if hint:
        print(hint, file=sys.stderr, flush=True)
    meter = readers.Progress(p.name, p.stat().st_size, enabled=progress)
    reader: Any = None
    refuse_nul_bytes(p, delimiter)
    try:
        with _open_text(p) as handle:
            reader = csv.reader(readers.counted_lines(handle, meter), delimiter=delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise DataError(f"{p}: the file is empty (expected a header row)") from None
            if check_names:
                check_header_names(str(p), header)
            sep = readers.other_separator(header, delimiter)
            if sep is not None:
                raise DataError(readers.separator_advice(str(p), sep))
            rows = _Rows()
            rows.lines = []
            last = reader.line_num
            for row in reader:
                # a record is named by the line it starts on (line_num is its last: quoted fields span lines)
                first, last = last + 1, reader.line_num
                if readers.is_blank_line(row):
                    continue  # blank lines (a row of empty cells is a row of missing values)
                if len(row) != len(header):
                    said = f"{p}:{first}: expected {len(header)} fields (as in the header), got {len(row)}"
                    spans = [k for k, v in enumerate(row, 1) if "\n" in v]
                    if spans and len(row) < len(header):  # a quote left open swallows the lines after it
                        said += (
                            f"; field {spans[0]} is a quoted cell running from line {first} to line {last}: "
                            'is a closing quote (") missing?'
                        )
                    raise DataError(said)
                rows.append([v.strip() for v in row])
                rows.lines.append(first)
    except UnicodeDecodeError as exc:
        raise DataError(encoding_advice(p, exc)) from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        place = f"{p}:{line}" if line else str(p)
        if "field larger than field limit" in str(exc):
            place += _long_field_column(p, line, delimiter)
        raise DataError(f"{place}: malformed CSV: {exc}") from None
    except (OSError, EOFError) as exc:  # a damaged .gz
        raise DataError(f"{p}: cannot read ({type(exc).__name__}: {exc}); is it truncated?") from None
    if not rows:
        raise DataError(f"{p}: no data rows after the header")
    meter.done(f" ({len(rows):,} rows)")
    return header, rows


def csv_header_row(path: str | os.PathLike[str], delimiter: str = ",") -> list[str] | None:
    """A CSV's header row (stripped names; a ``.gz`` decompressed), read without the rest of the file;
    None when it cannot be read so (the full read then gives the error)."""
    p = Path(path)
    try:
        with _open_text(p) as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = [h.strip() for h in next(reader)]
            if reader.line_num != 1:
                return None  # a header spanning lines: the full read decides what it is
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, StopIteration):
        return None
    return header


def csv_first_rows(path: str | os.PathLike[str], delimiter: str = ",", n: int = 2) -> list[list[str]]:
    """A CSV's first ``n`` non-blank rows (stripped cells; a ``.gz`` decompressed), read without the rest of
    the file; fewer (none) when the file has fewer or cannot be read so (the full read then gives the error)."""
    rows: list[list[str]] = []
    try:
        with _open_text(Path(path)) as handle:
            for row in csv.reader(handle, delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    rows.append([cell.strip() for cell in row])
                    if len(rows) == n:
                        break
    except (OSError, EOFError, UnicodeDecodeError, csv.Error):
        return []
    return rows


def read_column(path: str | os.PathLike[str], column: str, delimiter: str = ",") -> tuple[list[str], list[str]]:
    """The header and one column's cells of a CSV, as :func:`read_rows` gives them (stripped, blank lines
    left out); only that column is parsed when pyarrow is installed. No cells when the header lacks it."""
    header = csv_header_row(path, delimiter)
    if header is not None and readers.fast_csv_available():
        try:
            return header, readers.read_text_column(path, header, column, delimiter)
        except readers.Fallback:
            pass
    header, rows = read_rows(path, delimiter)
    if column not in header:
        return header, []
    j = header.index(column)
    return header, [row[j] for row in rows]


def check_header_names(source: str, header: list[str]) -> None:
    """Column names must be unique and non-empty: an error naming the empty or repeated ones (trailing
    empty columns, as spreadsheets write them, are named as such).

    Example:
        >>> check_header_names("x.csv", ["a", "b", "a"])
        Traceback (most recent call last):
        ...
        downslope.errors.DataError: x.csv:1: the header needs unique, non-empty column names: 'a' appears 2 times (columns 1, 3)
    """
    empty = [j + 1 for j, h in enumerate(header) if h == ""]
    seen: dict[str, list[int]] = {}
    for j, h in enumerate(header):
        if h != "":
            seen.setdefault(h, []).append(j + 1)
    repeated = {h: at for h, at in seen.items() if len(at) > 1}
    # every problem of the header at once, so that one edit of the file fixes them all
    said = "; ".join(
        f"{h!r} appears {len(at)} times (columns {', '.join(str(a) for a in at)})" for h, at in repeated.items()
    )
    if empty:
        trailing = empty == list(range(len(header) - len(empty) + 1, len(header) + 1))
        what = (
            f"the last {len(empty)} column(s) have no name (trailing empty columns, as a spreadsheet writes them?"
            "; delete those columns, or the trailing separators, in the file)"
            if trailing
            else f"column(s) {empty} (counting from 1) have no name; give every column a name"
        )
        raise DataError(
            f"{source}:1: the header needs unique, non-empty column names: {what}"
            + (f"; and {said}" if said else "")
            + f"; header {header}"
        )
    if repeated:
        raise DataError(f"{source}:1: the header needs unique, non-empty column names: {said}")


# Binary files given under a CSV name: their first bytes, what they are and the name that reads them
# (None: a type downslope does not read; the advice is how to export it as a CSV).
_MAGIC = (
    (b"PAR1", "a Parquet file", ".parquet"),
    (b"\x93NUMPY", "a NumPy .npy array file", ".npy"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls) or another Office file", None),
    (b"SQLite format 3\x00", "an SQLite database", None),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file", None),
    (b"ARROW1", "an Arrow/Feather file", None),
    (b"%PDF", "a PDF document", None),
    (b"BZh", "a bzip2-compressed file", None),
    (b"\xfd7zXZ\x00", "an xz-compressed file", None),
)


def binary_file_advice(p: Path, head: bytes) -> str | None:
    """The error for a binary file under a text name (a Parquet file, a NumPy array, an Excel workbook or
    a zip archive renamed ``.csv``), found by its first bytes: what it is and what to do; None for others
    (text in some encoding). A gzip file is told apart by :func:`encoding_advice`.

    Example:
        >>> print(binary_file_advice(Path("d.csv"), b"PAR1\x15\x04"))  # doctest: +ELLIPSIS
        d.csv: the file is a Parquet file (it starts with 'PAR1'), not CSV text; rename it to 'd.parquet' ...
    """
    stem = p.name[: -len(csv_suffix(p) or "")] if csv_suffix(p) else p.stem
    for magic, what, suffix in _MAGIC:
        if head.startswith(magic):
            said = f"{p}: the file is {what} (it starts with {magic.decode('latin-1')!r}), not CSV text; "
            if suffix == ".parquet":
                return (
                    said
                    + f"rename it to '{stem}.parquet' (downslope reads Parquet with pyarrow: pip install 'downslope[fast]')"
                )
            if suffix is not None:
                return said + f"rename it to '{stem}{suffix}', which downslope reads as it is"
            return said + "export the data from the program that wrote it as a CSV (UTF-8)"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(p) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            names = []
        if any(n.startswith("xl/") for n in names) or any(n.endswith(".ods") or n == "content.xml" for n in names):
            book = p.with_name(f"{stem}.xlsx")
            return (
                f"{p}: the file is a spreadsheet workbook (an .xlsx or .ods zip archive), not CSV text; rename it to "
                f"'{book.name}' and save it as 'CSV UTF-8' in the spreadsheet program, or convert it with pandas: "
                f"python -c \"import pandas as pd; pd.read_excel('{book}').to_csv('{p}', index=False)\""
            )
        inside = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return (
            f"{p}: the file is a zip archive (holding {inside or 'no readable entries'}), not CSV text; unzip it and "
            "give the CSV inside"
        )
    return None


def encoding_advice(p: Path, exc: UnicodeDecodeError) -> str:
    """The error for a file that is not UTF-8: a binary file under a text name (:func:`binary_file_advice`),
    UTF-16 (a byte-order mark, or NUL bytes) or a legacy code page such as Windows-1252, with how to
    convert it."""
    try:
        with open(p, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        head = b""
    binary = binary_file_advice(p, head)
    if binary is not None:  # checked first: its NUL bytes would read as UTF-16's
        return binary
    if head.startswith(b"\x1f\x8b") and not p.name.lower().endswith(".gz"):
        # gzip's magic bytes: a compressed file under a plain name, which no text encoding explains
        return (
            f"{p}: the file is gzip-compressed (it starts with gzip's bytes 1f 8b) but its name does not end in "
            f".gz; rename it to '{p.name}.gz' (downslope reads .csv.gz files) or decompress it first: "
            f"gunzip -c '{p}' > data.csv"
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[1:200:2].count(0) > 20 or head[0:200:2].count(0) > 20:
        return (
            f"{p}: the file is UTF-16 text (as Excel's 'Unicode Text' writes), not UTF-8; save it as 'CSV UTF-8' "
            f"or convert it: iconv -f UTF-16 -t UTF-8 '{p}' > converted.csv"
        )
    controls = sum(b < 32 and b not in (9, 10, 13) or b == 127 for b in head)
    if controls * 20 > len(head):  # text in any 8-bit code page has almost none of them
        return (
            f"{p}: not text: {controls} of its first {len(head)} bytes are control characters (a binary file, or a "
            "damaged one?); give a CSV file (UTF-8 text)"
        )
    return (
        f"{p}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); it is probably in a legacy encoding such as "
        f"Windows-1252 (Excel's 'CSV' on Windows): save it as 'CSV UTF-8' or convert it: "
        f"iconv -f cp1252 -t UTF-8 '{p}' > converted.csv"
    )


def _total_row(source: str, rows: list[list[str]], t_idx: int, notes: list[str]) -> list[list[str]]:
    """``rows`` without a last row that looks like a spreadsheet's totals row (noted)."""
    if len(rows) < 3:
        return rows
    numbers = [_as_float(r[t_idx]) for r in rows[:-1] if not _is_missing(r[t_idx])]
    others = None if any(v is None for v in numbers) else np.array(numbers, dtype=np.float64)
    reason = total_row_reason(rows[-1], t_idx, others)
    if reason is None:
        return rows
    lines = _line_numbers(rows, 2)
    notes.append(total_row_note(source, lines[-1], reason))
    kept = _Rows(rows[:-1])
    kept.lines = lines[:-1]
    return kept


def _row_indices_kept(
    rows: list[list[str]],
    t_idx: int,
    used: list[int],
    missing: str,
    source: str,
    notes: list[str],
    header: list[str] | None = None,
) -> list[int]:
    """The indices of the rows that ``missing`` keeps (drop: no missing value; imputing: a present
    target), noting how many were dropped; keeping none is a one-line error."""
    keep = [
        r
        for r in range(len(rows))
        if not (_is_missing(rows[r][t_idx]) or (missing == "drop" and any(_is_missing(rows[r][j]) for j in used)))
    ]
    where = ""
    if missing == "drop" and len(keep) < len(rows):
        kept = set(keep)
        gone = [rows[r] for r in range(len(rows)) if r not in kept]
        names = header or [str(j + 1) for j in range(max(used) + 1)]
        where = missing_by_column({names[j]: sum(1 for r in gone if _is_missing(r[j])) for j in used})
    if len(keep) < len(rows):
        what = "a missing value" if missing == "drop" else "a missing target"
        notes.append(f"{source}: dropped {len(rows) - len(keep)} of {len(rows)} rows with {what}{where}")
    if not keep:
        raise DataError(
            f"{source}: every row has {'a missing value' if missing == 'drop' else 'a missing target'}{where}"
        )
    return keep


def _boolean_columns(
    source: str, header: list[str], rows: list[list[str]], columns: list[str], forced: set[str], notes: list[str]
) -> list[str]:
    """The feature columns whose present values are all yes/no spellings (:func:`is_boolean_column`): their
    cells are rewritten in place as 1 and 0 (noted), so the rest of the reader sees a numeric column."""
    found = []
    for col in columns:
        if col in forced:
            continue
        j = header.index(col)
        distinct = sorted({r[j] for r in rows if not _is_missing(r[j])})
        if not is_boolean_column(distinct):
            continue
        for row in rows:
            if not _is_missing(row[j]):
                row[j] = BOOLEAN_SPELLINGS[row[j].strip().lower()]
        notes.append(boolean_note(source, col, distinct))
        found.append(col)
    return found


def _unit_columns(
    source: str, header: list[str], rows: list[list[str]], columns: list[str], forced: set[str], notes: list[str]
) -> dict[str, str]:
    """The feature columns whose present cells are all numbers written with one unit (``72 kg``,
    :func:`unit_column`): their cells are rewritten in place without it (noted), so the rest of the reader
    sees a numeric column; the encoder strips the unit from new data too."""
    found: dict[str, str] = {}
    for col in columns:
        if col in forced:
            continue
        j = header.index(col)
        values = [r[j] for r in rows if not _is_missing(r[j])]
        if not values or all(_as_float(v) is not None for v in values):
            continue
        unit = unit_column(values)
        if unit is None:
            continue
        for row in rows:
            row[j] = strip_unit(row[j], unit)
        notes.append(unit_note(source, col, unit, values[0].strip()))
        found[col] = unit
    return found


def _row_categories(
    source: str,
    header: list[str],
    rows: list[list[str]],
    columns: list[str],
    forced: set[str],
    max_categories: int,
    numeric: set[str] | None = None,
    notes: list[str] | None = None,
) -> dict[str, list[str]]:
    """The one-hot categories of each text (or forced) feature column: a column is text when at least
    half its present values are not numbers; digit codes with leading zeros are categories too (noted),
    unless ``numeric`` names the column."""
    categories: dict[str, list[str]] = {}
    refused: list[tuple[str, DataError]] = []
    for col in columns:
        j = header.index(col)
        values = [r[j] for r in rows if not _is_missing(r[j])]
        texts = [v for v in values if _as_float(v) is None]
        if col not in forced and len(texts) * 2 <= len(values):
            code = leading_zero_code(values) if col not in (numeric or set()) else None
            if code is not None:
                distinct = sorted({v.strip() for v in values})
                if len(distinct) > max_categories:
                    refused.append((col, codes_error(source, col, code, len(distinct), len(values))))
                else:
                    categories[col] = distinct
                    if notes is not None:
                        notes.append(codes_note(source, col, code, len(distinct)))
            continue  # a numeric column (a stray word in it is reported when the rows are encoded)
        distinct = sorted(set(values))
        dates = not_categories_error(source, col, distinct, len(values)) if col not in forced else None
        if dates is not None and len(distinct) <= max_categories:
            refused.append((col, dates))
        elif len(distinct) > max_categories:
            refused.append((col, _too_many_categories(source, col, len(distinct), len(values), texts, len(rows))))
        else:
            categories[col] = distinct
    if refused:
        raise refused_columns_error(source, refused)
    return categories


def _number_formats(
    source: str,
    header: list[str],
    rows: list[list[str]],
    columns: list[str],
    forced: set[str],
    delimiter: str,
    notes: list[str],
    given: tuple[str, str],
) -> dict[str, tuple[str, str]]:
    """Each column's number format (decimal mark, thousands separator) where it is not Python's: the
    ``given`` one for every column, or else one found by :func:`detect_number_format` (noted). The
    cells of those columns are rewritten in place in Python's syntax, so the rest of the reader sees
    plain numbers; the encoder keeps the formats for new data."""
    formats: dict[str, tuple[str, str]] = {}
    found: dict[str, list[tuple[str, str]]] = {}  # how they were read -> (column, example) of each
    detected: dict[str, tuple[tuple[str, str], str]] = {}  # column -> (format found, an example cell)
    dotted: list[tuple[str, str]] = []  # (column, example) of number columns whose '.' may group thousands
    if given == (".", ""):

        def values_of(col: str) -> list[str]:
            j = header.index(col)
            return [r[j] for r in rows if not _is_missing(r[j])]

        detected, dotted = detect_file_formats(source, columns, forced, delimiter, values_of, notes)
    for col in columns:
        j = header.index(col)
        if given != (".", ""):
            formats[col] = given
            if col not in forced:  # Excel's '12 and 12% are stripped under a given format too: noted as without
                excel = next((r[j] for r in rows if looks_like_excel_number(r[j])), None)
                if excel is not None:
                    found.setdefault(" (the apostrophe or % sign stripped)", []).append((col, excel))
        elif col in detected:
            fmt, example = detected[col]
            formats[col] = fmt
            if col not in dict(dotted):  # (those have their note above)
                found.setdefault(format_how(fmt, example), []).append((col, example))
        else:
            continue
        fmt = formats[col]
        for r, row in enumerate(rows):
            cell = canonical_number(row[j], fmt)
            if cell is row[j] and fmt != (".", ""):  # left as written: is it a number only in Python's syntax?
                misread = misread_number(cell, fmt)
                if misread:
                    line = rows.lines[r] if isinstance(rows, _Rows) else r + 2
                    raise DataError(f"{cell_location(source, line, j, col)}: {misread}")
            row[j] = cell
    notes.extend(format_notes(source, found))
    return formats


def lines_of_rows(lines: list[int]) -> Callable[[list[int]], list[int | None]]:
    """A table's :attr:`~.datasets.Table.line_of` from the file line of each of its rows: the lines are kept
    (as int64) only when some differ from ``row + 2`` (rows skipped, blank lines, quoted fields spanning lines).

    Example:
        >>> lines_of_rows([2, 3, 5])([0, 2]), lines_of_rows([2, 3, 4])([1])
        ([2, 5], [3])
    """
    kept: np.ndarray | None = np.asarray(lines, dtype=np.int64)
    if kept is not None and np.array_equal(kept, np.arange(2, len(kept) + 2)):
        kept = None  # every row on the line after the one before: nothing to keep

    def line_of(rows: list[int]) -> list[int | None]:
        return [int(r) + 2 if kept is None else int(kept[r]) for r in rows]

    return line_of


def _rewritten(cell: str, fmt: tuple[str, str]) -> bool:
    """Whether reading ``cell`` with the number format ``fmt`` changes it (spaces around it aside: every
    cell is read stripped)."""
    read = canonical_number(cell, fmt)
    return read is not cell and read != cell.strip()


def _file_number_format(
    header: list[str], rows: list[list[str]], columns: list[str], formats: dict[str, tuple[str, str]]
) -> tuple[str, str] | None:
    """The one number format detected in the file, when giving it as ``decimal``/``thousands`` reads every
    column alike (the other columns' cells, already rewritten for the detected ones, unchanged by it),
    so a run's config can name it; else None (no format found, or columns written differently)."""
    found = set(formats.values())
    if len(found) != 1:
        return None
    fmt = found.pop()
    if fmt == (".", ""):  # only Excel's apostrophes or percent signs: no option of pandas' says that
        return None
    for col in columns:
        if col in formats:
            continue
        j = header.index(col)
        if any(_rewritten(r[j], fmt) for r in rows if not _is_missing(r[j])):
            return None
    return fmt


def numbered_column(name: Any, header: list[str]) -> Any:
    """A header-less file's column named by its number as pandas' ``header=None`` numbers it (``"3"``) as the
    name it has here (``"col_3"``); any other name as it is (an unknown one is refused, with the names).

    Example:
        >>> numbered_column("3", ["col_0", "col_1", "col_2", "col_3"]), numbered_column("col_1", ["col_0", "col_1"])
        ('col_3', 'col_1')
    """
    if isinstance(name, str) and name.strip().isdigit() and f"col_{int(name)}" in header:
        return f"col_{int(name)}"
    return name


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
    decimal: str = ".",
    thousands: str = "",
    numeric: list[str] | None = None,
    header_row: bool = True,
) -> tuple[Table, TabularEncoder]:
    """Read a CSV with a header row into a :class:`Table` and the encoder that made it (``header_row=False``:
    the file has none, its first line is data and the columns are named ``col_0`` .. ``col_{n-1}``).

    ``target`` names the target column (default: the last one); ``drop`` names columns to leave out.
    Columns whose values are mostly text are one-hot encoded (``categorical`` forces it); a text
    column with more than ``max_categories`` distinct values is refused. A column of digit codes with
    leading zeros (``02134``) is one-hot encoded too, with a note (``numeric`` names columns read as
    numbers whatever they hold). ``task`` is inferred by
    :data:`TASK_RULE` when not given. ``missing``: ``error`` reports the first missing value by file,
    line and column; ``drop`` drops such rows; ``mean``/``median``/``most_frequent`` leave NaN for an
    :class:`Imputer` fitted on the training split (rows whose target is missing are dropped).

    With pyarrow installed (``pip install 'downslope[fast]'``) the file is parsed in C, column by
    column, with the same results and the same errors; otherwise by Python's csv module. ``progress``
    prints what is being read on stderr when it takes more than a second.

    Numbers are written as Python writes them unless ``decimal`` (``','``) and ``thousands`` (``','``,
    ``'.'``, ``' '``, ...) say otherwise, as pandas' options of those names. Without them, a column whose
    cells are all numbers, some written with commas (``"1,200"``; in a ``;``-separated file ``"2,75"``),
    is read as numbers, with a note. A target whose present values are at least 90% numbers is numeric
    (unless ``task`` is given): a stray word in it is an error naming file, line and column.
    ``.csv.gz`` files are decompressed; a ``.tsv`` is read with tabs unless ``delimiter`` says otherwise.
    """
    _check_options(missing, "read_csv")
    p = Path(path)
    given_delimiter = delimiter
    delimiter = default_delimiter(p, delimiter)
    txt_note = ""  # a note for a .txt file read as CSV
    if csv_suffix(p) in TEXT_SUFFIXES and p.is_file():
        if given_delimiter == "," and sniff_delimiter(p) is None:
            raise DataError(
                f"{path}: a .txt file is read when it is delimited text (CSV or TSV); no separator (',', tab, ';' or "
                "'|') splits its first lines into the same number of fields; save it as a CSV (UTF-8), or name "
                "its separator with --sep"
            )
        how = "tabs" if delimiter == "\t" else repr(delimiter)
        txt_note = f"{path}: a .txt file, read as delimited text separated by {how} (renaming it .csv or .tsv says so)"
    explicit = (decimal, thousands) != (".", "")
    if explicit:
        check_number_format(decimal, thousands)
    plain = csv_suffix(p) in (".csv", ".tsv", ".csv.gz", ".tsv.gz") or csv_suffix(p) is None
    # without pyarrow: wide files column-wise, others by NumPy's parser where it reads them as the csv module does
    columnar = readers.fast_csv_available() or readers.numpy_csv_available() or readers.is_wide_csv(p, delimiter)
    if p.is_file() and plain and columnar and header_row:
        refuse_nul_bytes(p, delimiter)
        try:
            fmt = (decimal, thousands) if explicit else None
            read = _read_csv_columnar(
                str(path), p, target, task, categorical, missing, delimiter, drop, max_categories, progress, fmt
            )
            check_numeric(numeric, categorical, read[1].columns)
            check_numeric_read(str(path), numeric, read[1].categories)
            _note_useless_columns(str(path), *read)
            _note_dotted_thousands(str(path), *read)
            if txt_note:
                read[0].notes.insert(0, txt_note)
            return read
        except readers.Fallback:
            pass  # the pure-Python reader gives the canonical answer (or error) for this file
    header, rows = read_rows(path, delimiter, progress=progress, check_names=header_row)
    if not header_row:
        header, rows = headerless(header, rows)
        target = numbered_column(target, header)
        drop = [numbered_column(d, header) for d in drop] if drop else drop
    source = str(path)
    notes: list[str] = []
    said = header_note(source, header)
    if said:
        notes.append(said)
    target, columns, dropped = _choose_columns(source, header, target, drop)
    t_idx = header.index(target)
    rows = _total_row(source, rows, t_idx, notes)
    used = [header.index(c) for c in columns] + [t_idx]
    lines = _line_numbers(rows, 2)
    keep = list(range(len(rows)))
    if missing != "error":
        keep = _row_indices_kept(rows, t_idx, used, missing, source, notes, header)
    kept = _Rows(rows[r] for r in keep)
    kept.lines = [lines[r] for r in keep]
    rows = kept
    if missing in IMPUTE:  # a column with no value at all is left out (SimpleImputer)
        empty = [c for c in columns if all(_is_missing(r[header.index(c)]) for r in rows)]
        if empty:
            columns = [c for c in columns if c not in empty]
            notes.append(empty_columns_note(source, empty, missing))
            if not columns:
                raise no_features_error(source)
    forced = _forced_categorical(categorical, columns)
    check_numeric(numeric, categorical, columns)
    formats = _number_formats(source, header, rows, columns + [target], forced, delimiter, notes, (decimal, thousands))
    units = _unit_columns(source, header, rows, columns, forced, notes)
    booleans = _boolean_columns(source, header, rows, columns, forced, notes)
    categories = _row_categories(source, header, rows, columns, forced, max_categories, set(numeric or []), notes)
    check_numeric_read(source, numeric, categories)
    if missing in IMPUTE:
        counts = {c: sum(1 for r in rows if _is_missing(r[header.index(c)])) for c in columns if c not in categories}
        said = fill_note(source, counts, missing)
        if said:
            notes.append(said)
    if missing == "constant":
        categories = with_fill_category(categories, lambda c: any(_is_missing(r[header.index(c)]) for r in rows))
    check_one_hot_memory(source, len(rows), len(columns) - len(categories), categories)
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
        n_numbers = sum(1 for v in target_values if _as_float(v) is not None)
        if stray_target_share(n_numbers, len(target_values)):
            r = next(r for r, v in enumerate(target_values) if _as_float(v) is None)
            where = f"{source}:{rows.lines[r]}:{t_idx + 1} (column {target!r})"
            raise _stray_target_error(where, target_values[r], n_numbers, len(target_values))
        task, reason = infer_task(target_values)
        reason = overriding(task, reason)
    if task not in ("classification", "regression"):
        raise ConfigError(f"read_csv: task must be 'classification' or 'regression', got {task!r}")
    classes: list[str] = []
    if task == "classification":
        classes = sorted_classes(class_key(v) for v in target_values)
        if len(classes) < 2:
            raise _one_class_error(source, target, classes[0], len(target_values))
    encoder = TabularEncoder(
        columns, target, categories, task, classes, missing, dropped, formats, booleans=booleans, units=units
    )
    X = encoder.encode_features(header, rows, source)
    y = encoder.encode_target(target_values, source, t_idx)
    name = Path(path).stem
    table = Table(X, y, task, name, encoder.feature_names, target, classes)
    if task == "regression":
        table.y = y  # float64 (Table makes float32): the run standardizes the target in float64
    table.notes = notes
    table.task_reason = reason
    if not explicit:
        table.number_format = _file_number_format(header, rows, columns + [target], formats)
    table.line_of = lines_of_rows(rows.lines)
    _note_useless_columns(source, table, encoder)
    _note_dotted_thousands(source, table, encoder)
    if txt_note:
        table.notes.insert(0, txt_note)
    return table, encoder


def _dotted_thousands_note(where: str, col: str, v: np.ndarray, line_of: Any) -> str | None:
    """The note of :func:`_note_dotted_thousands` for one column's numbers ``v`` (NaN: missing), or None."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    present = np.isfinite(v)
    whole = present & (v == np.round(v))
    odd = present & ~whole
    if not odd.any() or not whole.any():
        return None
    smallest = float(v[whole].min())
    scaled = v[odd] * 1000.0
    # three decimals exactly, read back from float32 (2.036 is 2.0360000133...)
    tol = 1e-3 + 2e-7 * np.abs(scaled)
    three = np.abs(scaled - np.round(scaled)) <= tol
    tenths = np.abs(scaled / 10.0 - np.round(scaled / 10.0)) <= tol / 10.0  # 2.5 needs no third decimal
    if not (three.all() and not tenths.all() and (v[odd] >= 1.0).all() and float(v[odd].max()) < smallest):
        return None
    rows = np.flatnonzero(odd)
    line = line_of([int(rows[0])])[0] if line_of is not None else None
    first = float(v[rows[0]])
    return (
        f"{where}{f':{line}' if line is not None else ''} (column {col!r}): {len(rows)} value(s) such as {first:.3f} "
        f"have three decimals and are all below the column's smallest whole number ({smallest:g}): if '.' groups "
        f"thousands in them ({first:.3f} for {round(first * 1000)}), write them without it in the file; they are "
        "read as decimals"
    )


def _note_dotted_thousands(source: str, table: Table, encoder: TabularEncoder) -> None:
    """A note for each numeric column (a regression target too) of whole numbers beside values with three
    decimals that are all below its smallest whole number (``'2.036'`` beside ``950`` and ``1800``): a '.'
    grouping thousands, as a German or Italian export writes 2036, read as the decimal 2.036 (by pandas too)
    would give the model a few values a thousand times too small, and nothing else would say so. Read from
    the numbers, so both readers note it alike; the values stay as read (a decimal file of such values is
    possible)."""
    X = np.asarray(table.X)
    if not len(X):
        return
    columns = [
        (col, X[:, start])
        for (start, _, categorical), col in zip(encoder.blocks(), encoder.columns)
        if not categorical and col not in encoder.booleans
    ]
    if table.task == "regression":
        columns.append((str(table.target_name), np.asarray(table.y)))
    for col, values in columns:
        said = _dotted_thousands_note(source, col, values, table.line_of)
        if said is not None:
            table.notes.append(said)


def _note_useless_columns(source: str, table: Table, encoder: TabularEncoder) -> None:
    """Notes naming the feature columns that hold one value in every row and the numeric ones that repeat
    another column exactly: kept (leaving them out is the user's choice, with --drop), but said, since they
    give the model nothing. Missing cells are skipped for the one value, and equal (NaN) for a repeat."""
    X = np.asarray(table.X)
    if not len(X):
        return
    constant: list[str] = []
    seen: dict[bytes, list[tuple[int, str]]] = {}  # a column's first values -> the columns that start so
    repeats: list[tuple[str, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column (every value missing)
        low, high = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    for (start, stop, categorical), col in zip(encoder.blocks(), encoder.columns):
        if bool(np.all(low[start:stop] == high[start:stop])):
            constant.append(col)
        elif not categorical:
            # whole columns are compared only with those that start alike (a copy of each: 4 bytes a cell)
            head = X[:64, start].tobytes()
            column = X[:, start].tobytes() if head in seen else b""
            first = next((name for at, name in seen.get(head, []) if X[:, at].tobytes() == column), None)
            if first is not None:
                repeats.append((col, first))
            else:
                seen.setdefault(head, []).append((start, col))
    if constant:
        names = ", ".join(repr(c) for c in constant)
        many = len(constant) > 1
        table.notes.append(
            f"{source}: column{'s' if many else ''} {names} hold{'' if many else 's'} one value in every row, "
            f"which tells the model nothing: kept; --drop {shlex.quote(','.join(constant))} leaves "
            f"{'them' if many else 'it'} out"
        )
    if repeats:
        said = "; ".join(f"column {col!r} repeats column {first!r}" for col, first in repeats)
        many = len(repeats) > 1
        table.notes.append(
            f"{source}: {said} in every row, a copy that adds nothing: kept; --drop "
            f"{shlex.quote(','.join(col for col, _ in repeats))} leaves {'them' if many else 'it'} out"
        )
