"""Column-wise reading of big tables through pyarrow (the optional ``fast`` extra), with a progress line.

:mod:`downslope.data.tabular` decides what a table means (types, categories, missing values,
classes); this module only turns a file into :class:`Column` s of per-cell facts, computed in C by
Arrow and, for the few cells that are not plain decimal numbers, by the very Python rules of the
pure-Python reader (so both readers agree cell by cell):

- ``kind``: :data:`NUMBER`, :data:`EMPTY` (blank after stripping), :data:`MISSING` (``NA``, ``nan``,
  ``?``, ...) or :data:`TEXT`;
- ``num``: the cell's float64 value where it is a number (NaN elsewhere);
- ``codes``: for columns holding text, an index into ``strings`` (the stripped text) for every
  non-missing cell, so that a text column can become categories without a Python string per row.

Anything unusual that the two parsers might read differently (a header spanning lines, an Arrow
parse error, a file that is not UTF-8) raises :class:`Fallback`, and the caller reads the file with
the pure-Python reader instead, which gives the canonical answer or error.

CSV files are read in blocks (bounded memory) and, when reading takes more than a second, a
progress line goes to stderr.

Example:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("a,b\\n1,red\\n2.5,NA\\n")
    >>> if fast_csv_available():
    ...     cols = read_csv_columns(p, ["a", "b"])
    ...     print(cols["a"].num.tolist(), cols["b"].kind.tolist())
    ... else:
    ...     print([1.0, 2.5], [3, 2])
    [1.0, 2.5] [3, 2]
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import functools
import gzip
import importlib.util
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Switched off by tests (and benchmarks) to exercise the pure-Python reader with pyarrow installed.
FAST_CSV = os.environ.get("DOWNSLOPE_FAST_CSV", "1") != "0"
# Files above this size read by the pure-Python reader get a hint about the fast one.
SLOW_HINT_BYTES = 20 * 2**20
BLOCK_BYTES = 4 * 2**20
# The bytes whose cells decide which columns Arrow converts to numbers as it parses (:func:`_numeric_guess`).
GUESS_BYTES = 2**19
# Reading says what it is doing on stderr once it has taken this many seconds.
PROGRESS_AFTER = 1.0

NUMBER, EMPTY, MISSING, TEXT = 0, 1, 2, 3
# A number that float32 cannot hold (non-finite, or beyond its range): in columns kept as float32.
BAD_NUMBER = 4
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The cells that are missing values, matched case-insensitively after stripping spaces: pandas' default
# na_values ('#N/A' is Excel's "not available"; '-nan' and the '1.#IND' family are C libraries' NaN),
# '?' (the UCI repository's files), 'none' and '(blank)' (Excel's pivot tables). Not a lone dash: Excel's
# accounting format shows zero as '-', so reading it as missing would silently fill a 0 with a mean.
MISSING_TOKENS = frozenset(
    {
        *("", "#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan", "<na>"),
        *("n/a", "na", "null", "nan", "none", "?", "(blank)"),
    }
)
#: Cells that are missing whatever the markers: an empty cell, and NaN written as a number (a float that is
#: no value: pandas' float parser reads 'nan' as NaN even with keep_default_na=False).
ALWAYS_MISSING = frozenset({"", "nan"})
# The missing-value markers in force (--na-values; a run's own for its new data): set around a reading by
# :func:`missing_markers`, read by every reader's rules (a context variable: no reader takes it as an argument,
# and two threads reading at once each keep their own).
_MARKERS: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("missing_markers", default=MISSING_TOKENS)


def missing_tokens() -> frozenset[str]:
    """The cells read as missing values now (lower case, stripped): :data:`MISSING_TOKENS` unless
    :func:`missing_markers` says otherwise."""
    return _MARKERS.get()


def marker_set(values: Any) -> frozenset[str]:
    """The missing-value markers of a ``na_values`` setting: None: :data:`MISSING_TOKENS` (pandas' defaults
    and a few more); a list of cells: those cells (matched without case or surrounding spaces) replace them,
    :data:`ALWAYS_MISSING` staying missing.

    Example:
        >>> sorted(marker_set(["?", " N/A "])), "na" in marker_set(None)
        (['', '?', 'n/a', 'nan'], True)
    """
    if values is None:
        return MISSING_TOKENS
    return frozenset({*ALWAYS_MISSING, *(str(v).strip().lower() for v in values)})


@contextlib.contextmanager
def missing_markers(values: Any) -> Iterator[None]:
    """Within the block, the readers take the cells of :func:`marker_set(values) <marker_set>` as missing."""
    token = _MARKERS.set(marker_set(values))
    try:
        yield
    finally:
        _MARKERS.reset(token)


# A cell that is only dashes: zero in Excel's accounting format, elsewhere a placeholder for no value.
DASHES = frozenset({"-", "--", "---"})
# Spreadsheet error values (a formula that failed): not missing values, but refused with their own message.
SPREADSHEET_ERRORS = frozenset({"#div/0!", "#value!", "#ref!", "#name?", "#num!", "#null!", "#spill!", "#calc!"})
# A plain decimal number (after trimming ASCII spaces): Arrow and Python parse these to the same double.
_PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_LEADING_ZERO = r"^\s*0[0-9]+\s*$"
_LEADING_ZERO_RE = re.compile(_LEADING_ZERO)
_LEADING_ZERO_LINE_RE = re.compile(r"^[^\S\n]*0[0-9]+[^\S\n]*$", re.MULTILINE)  # (cells joined by line breaks)


# Separators people use instead of commas: a file of one column whose header holds one was written with it.
SEPARATORS = {";": "';'", "\t": "tab", "|": "'|'"}


def other_separator(header: list[str], delimiter: str) -> str | None:
    """The separator a one-column header seems to be written with (when it is not ``delimiter``), else None.

    Example:
        >>> other_separator(["a;b;label"], ","), other_separator(["a", "b"], ","), other_separator(["x"], ",")
        (';', None, None)
    """
    if len(header) != 1:
        return None
    return next((sep for sep in SEPARATORS if sep != delimiter and sep in header[0]), None)


def separator_advice(source: str, sep: str) -> str:
    """The message for a file that reads as one column because it uses another separator."""
    return (
        f"one column found in {source}; is the separator {'a tab' if sep == chr(9) else SEPARATORS[sep]}? "
        f"pass --sep {SEPARATORS[sep]} (delimiter={sep!r} in Python)"
    )


def is_blank_line(row: list[str]) -> bool:
    """A line holding nothing but spaces, as Python's csv module splits it: skipped by both CSV readers
    (it still counts in line numbers). A row of empty cells (``,,``) is not blank: it is a row of missing
    values, left to the missing-value policy like any other row (dropping it would misalign predictions).

    Example:
        >>> is_blank_line([]), is_blank_line(["  "]), is_blank_line(["", "", ""])
        (True, True, False)
    """
    return not row or (len(row) == 1 and not row[0].strip())


def not_a_data_file(path: str | os.PathLike[str]) -> Exception:
    """The error for a data path that is not a regular file: missing, a directory, a pipe or a device.

    A pipe or a device is refused by name rather than as missing: a data file is sized and read more
    than once (its rows are counted, then parsed), which a stream cannot give.

    Example:
        >>> print(not_a_data_file("/dev/null"))
        /dev/null: is not a regular file (a character device); give a data file (save the data to a file first)
    """
    import stat

    from ..errors import DataError

    p = os.fspath(path)
    try:
        mode = os.stat(p).st_mode
    except OSError:
        if os.path.islink(p):
            return DataError(f"{p}: is a broken symbolic link (it points to {os.readlink(p)}, which does not exist)")
        return DataError(f"no such file: {p}")
    if stat.S_ISDIR(mode):
        return DataError(f"{p}: is a directory; give a data file (.csv, .parquet, .npz or .npy) inside it")
    kind = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a plain file"
    )
    return DataError(f"{p}: is not a regular file ({kind}); give a data file (save the data to a file first)")


class Fallback(Exception):
    """The fast reader declines this file; the pure-Python reader decides (an internal signal)."""


def fast_csv_available() -> bool:
    """Whether CSV and Parquet files are read through pyarrow (installed, and not switched off).

    Example:
        >>> isinstance(fast_csv_available(), bool)
        True
    """
    return FAST_CSV and importlib.util.find_spec("pyarrow") is not None


def slow_hint(path: str | os.PathLike[str]) -> str | None:
    """A line telling how to read ``path`` faster, when it is big and pyarrow is not installed."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    if size < SLOW_HINT_BYTES or fast_csv_available():
        return None
    return (
        f"reading {path} ({size / 2**20:.0f} MiB) with the pure-Python CSV reader, which is slow for big files; "
        "install the fast one with: pip install 'downslope[fast]' (pyarrow)"
    )


# ---------------------------------------------------------------------- progress
class Progress:
    """Says on stderr what is being read once it takes more than ``after`` seconds, then about
    every second: ``reading data.csv: 45% of 930 MiB (2.1 s)``. Silent for quick reads.

    Example:
        >>> p = Progress("x.csv", 100, enabled=False)
        >>> p.update(50); p.done()
    """

    def __init__(self, name: str, total: int, enabled: bool = True, after: float | None = None) -> None:
        self.name, self.total, self.enabled = name, max(1, int(total)), enabled
        self.start = time.perf_counter()
        self.next_at = self.start + (PROGRESS_AFTER if after is None else after)
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now < self.next_at:
            return
        self.next_at = now + 1.0
        self.shown = True
        share = min(100.0, 100.0 * done / self.total)
        print(
            f"reading {self.name}: {share:.0f}% of {self.total / 2**20:.0f} MiB ({now - self.start:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    def done(self, what: str = "") -> None:
        if self.enabled and self.shown:
            print(
                f"read {self.name}{what} in {time.perf_counter() - self.start:.1f} s",
                file=sys.stderr,
                flush=True,
            )


def is_gzip(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).lower().endswith(".gz")


def open_bytes(path: str | os.PathLike[str]) -> Any:
    """A file's bytes for reading, a ``.gz`` decompressed (zlib's C code, streaming)."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115 - the caller closes it


def open_text(path: str | os.PathLike[str]) -> Any:
    """A CSV file as text, as the pure-Python reader opens it (UTF-8, a byte-order mark skipped; ``.gz`` too)."""
    if is_gzip(path):
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - the caller closes it


class CountingFile:
    """A binary file (a ``.gz`` decompressed) that reports how many bytes of the file on disk were read
    to a :class:`Progress`."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self.raw = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.handle: Any = gzip.GzipFile(fileobj=self.raw, mode="rb") if is_gzip(path) else self.raw
        self.progress = progress
        self.count = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.count = self.raw.tell()  # compressed bytes for a .gz: the share of the file's size
        self.progress.update(self.count)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.handle.close()
        self.raw.close()
        self.closed = True


def counted_lines(handle: Any, progress: Progress) -> Iterator[str]:
    """The lines of a text file, telling ``progress`` the characters read so far (the pure-Python reader)."""
    count = 0
    for line in handle:
        count += len(line)
        progress.update(count)
        yield line


# ---------------------------------------------------------------------- columns
@dataclass
class Column:
    """Per-cell facts of one column (see the module docstring)."""

    kind: np.ndarray  # int8
    num: np.ndarray  # float64
    codes: np.ndarray | None  # int32, -1 for missing cells; None when no cell is text
    strings: list[str] = field(default_factory=list)
    complete: bool = True  # codes cover every non-missing cell (False: some block lacked them)
    boolean: bool = False  # a Parquet boolean column (its numbers are 0 and 1)

    @functools.cached_property
    def missing(self) -> np.ndarray:
        # computed once: the table's rules ask each column several times (200,000 columns: seconds)
        return (self.kind == EMPTY) | (self.kind == MISSING)

    def take(self, rows: np.ndarray) -> Column:
        codes = self.codes[rows] if self.codes is not None else None
        return Column(self.kind[rows], self.num[rows], codes, self.strings, self.complete, self.boolean)


def classify(values: list[Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The pure-Python reader's rules for each distinct cell text: kind, number and stripped text."""
    n = len(values)
    kind = np.empty(n, dtype=np.int8)
    num = np.full(n, np.nan)
    stripped: list[str] = []
    markers = missing_tokens()
    for i, value in enumerate(values):
        text = "" if value is None else str(value).strip()
        stripped.append(text)
        if text == "":
            kind[i] = EMPTY
        elif text.lower() in markers:
            kind[i] = MISSING
        elif "," in text:  # no number to float() (a grouped "1,234.50" is text here): no exception raised
            kind[i] = TEXT
        else:
            try:
                num[i] = float(text)
                kind[i] = NUMBER
            except ValueError:
                kind[i] = TEXT
    return kind, num, stripped


class _Builder:
    """Accumulates one column's blocks; numbers in float64 when ``wide`` (a target, whose exact values
    decide classes), else in float32 (features: what the model gets) with :data:`BAD_NUMBER` marking
    the cells that float32 cannot hold."""

    def __init__(self, wide: bool = True, texts: bool = False) -> None:
        self.wide, self.texts = wide, texts  # texts: codes for every present cell, numbers too
        self.kinds: list[np.ndarray] = []
        self.nums: list[np.ndarray] = []
        self.codes: list[np.ndarray | None] = []
        self.lookup: dict[str, int] = {}
        self.strings: list[str] = []
        self.boolean = False

    def code_all(self, arr: Any, kind: np.ndarray) -> np.ndarray:
        import pyarrow as pa

        encoded = arr.dictionary_encode() if isinstance(arr, pa.Array) else pa.chunked_array(arr).dictionary_encode()
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        idx = encoded.indices.to_numpy(zero_copy_only=False)
        mapping = np.empty(len(encoded.dictionary), dtype=np.int32)
        for i, value in enumerate(encoded.dictionary.to_pylist()):
            text = str(value).strip()
            code = self.lookup.get(text)
            if code is None:
                code = self.lookup[text] = len(self.strings)
                self.strings.append(text)
            mapping[i] = code
        codes = mapping[idx]
        codes[(kind == EMPTY) | (kind == MISSING)] = -1
        return codes

    def add_strings(self, arr: Any, leading_zeros_fall_back: bool = False) -> None:
        """A block of text cells (a pyarrow string array). ``leading_zeros_fall_back``: a cell of digit codes
        with leading zeros (02134) raises :class:`Fallback` (the pure-Python reader decides such columns)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(arr)
        # Few distinct texts (categories, codes, a few repeated numbers): the pure-Python rules run once per
        # distinct text, and each cell only looks its facts up (no per-cell regex, trim or cast)
        encoded = arr.dictionary_encode()
        if len(encoded.dictionary) * 4 <= n:
            texts = encoded.dictionary.to_pylist()
            if leading_zeros_fall_back and any(_LEADING_ZERO_RE.match(text) for text in texts):
                raise Fallback("digit codes with leading zeros (02134): codes, not amounts")
            kinds, values, stripped = classify(texts)
            idx = encoded.indices.to_numpy(zero_copy_only=False)
            kind = kinds[idx]
            codes = None
            if self.texts or (kinds == TEXT).any():
                mapping = np.empty(len(texts), dtype=np.int32)
                for i, text in enumerate(stripped):
                    code = self.lookup.get(text)
                    if code is None:
                        code = self.lookup[text] = len(self.strings)
                        self.strings.append(text)
                    mapping[i] = code
                mapping[(kinds == EMPTY) | (kinds == MISSING)] = -1
                codes = mapping[idx]
            self.codes.append(codes)
            self.add(kind, values[idx])
            return
        if leading_zeros_fall_back and pc.any(pc.match_substring_regex(arr, _LEADING_ZERO)).as_py():
            raise Fallback("digit codes with leading zeros (02134): codes, not amounts")
        trimmed = pc.ascii_trim_whitespace(arr)
        plain = np.asarray(pc.match_substring_regex(trimmed, _PLAIN_NUMBER).to_numpy(zero_copy_only=False), bool)
        try:
            if not plain.all():  # words: Arrow's cast would fail, slowly (a failed cast costs 25x a regex)
                raise pa.ArrowInvalid("not all plain numbers")
            num = np.asarray(pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            kind = np.zeros(n, dtype=np.int8)
            odd = np.isnan(num)  # 'nan' is a missing value, '-nan' a (non-finite) number: Python decides
        except pa.ArrowInvalid:
            num = np.full(n, np.nan)
            kind = np.zeros(n, dtype=np.int8)
            if plain.any():
                num[plain] = pc.cast(pc.filter(trimmed, pa.array(plain)), pa.float64()).to_numpy(zero_copy_only=False)
            odd = ~plain
        sentinels = number_markers(missing_tokens())
        if sentinels:  # a missing-value marker written as a number (-999): Python's rules decide too
            marked = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sentinels))
            odd |= np.asarray(marked.to_numpy(zero_copy_only=False), dtype=bool)
        if odd.any():
            part = pc.filter(arr, pa.array(odd)).dictionary_encode()
            k, v, _ = classify(part.dictionary.to_pylist())
            idx = part.indices.to_numpy(zero_copy_only=False)
            kind[odd] = k[idx]
            num[odd] = v[idx]
        self.codes.append(self.code_all(arr, kind) if self.texts or (kind == TEXT).any() else None)
        self.add(kind, num)

    def add(self, kind: np.ndarray, num: np.ndarray) -> None:
        if not self.wide:
            with np.errstate(invalid="ignore", over="ignore"):
                kind[(kind == NUMBER) & ~(np.abs(num) <= FLOAT32_MAX)] = BAD_NUMBER
                num = num.astype(np.float32)
        self.kinds.append(kind)
        self.nums.append(num)

    def add_values(self, arr: Any, nan_is_missing: bool = True) -> None:
        """A block of a typed (non-text) column: numbers as they are, nulls missing (and NaN, for
        Parquet, where NaN is how missing floats are often stored; in a CSV, ``-nan`` is a number)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_boolean(arr.type):
            self.boolean = True
            arr = pc.cast(arr, pa.int8())
        num = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        if nan_is_missing:
            missing = np.isnan(num)
        else:
            missing = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        kind = np.where(missing, np.int8(MISSING), np.int8(NUMBER)).astype(np.int8, copy=False)
        self.codes.append(None)
        self.add(kind, num)

    def build(self) -> Column:
        sizes = [len(k) for k in self.kinds]
        kind = np.concatenate(self.kinds) if self.kinds else np.zeros(0, np.int8)
        self.kinds = []
        num = np.concatenate(self.nums) if self.nums else np.zeros(0)
        self.nums = []  # the blocks go as soon as the column is whole: one copy at a time
        with_codes = [c is not None for c in self.codes]
        if not any(with_codes):
            return Column(kind, num, None, [], True, self.boolean)
        complete = all(with_codes)
        parts = [c if c is not None else np.full(k, -1, np.int32) for c, k in zip(self.codes, sizes)]
        self.codes = []
        return Column(kind, num, np.concatenate(parts), self.strings, complete)


def _drop_blank(columns: dict[str, Column]) -> dict[str, Column]:
    """Blank lines that Arrow reads as rows, skipped as the pure-Python reader skips them (:func:`is_blank_line`).

    Arrow skips empty lines itself; what remains is a line of spaces (or ``""``) in a one-column file,
    read as one empty cell. With several columns an all-empty row (``,,``) is a row of missing values and stays.
    """
    if len(columns) != 1:
        return columns
    ((name, col),) = columns.items()
    blank = col.kind == EMPTY
    if not blank.any():
        return columns
    return {name: col.take(np.flatnonzero(~blank))}


def csv_header(path: Path, delimiter: str) -> list[str]:
    """The header row, read by Python's csv module exactly as the pure-Python reader does; anything
    unusual (an empty or non-UTF-8 file, a header spanning lines, bad names) is left to that reader."""
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = [h.strip() for h in next(reader)]
            if reader.line_num != 1:
                raise Fallback("the header spans lines")
    except (StopIteration, UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile):
        raise Fallback("unusual header") from None
    if not header or len(set(header)) != len(header) or any(h == "" for h in header):
        raise Fallback("bad header")
    if other_separator(header, delimiter):
        raise Fallback("another separator")  # the pure-Python reader says which one to pass
    return header


def _case_variants(word: str) -> list[str]:
    out = [""]
    for ch in word:
        out = [o + c for o in out for c in dict.fromkeys((ch.lower(), ch.upper()))]
    return out


# The missing-value tokens in every spelling of case, as Arrow's null values for number columns
# (Arrow matches them exactly; a padded " NA " makes Arrow fail, and the text path decides instead).
NULL_TOKENS = sorted({v for token in MISSING_TOKENS for v in _case_variants(token)})


@functools.lru_cache(maxsize=8)
def number_markers(markers: frozenset[str]) -> list[str]:
    """The markers that are written as numbers (a sentinel such as ``-999`` given to ``--na-values``): the
    readers' shortcuts that take a column of numbers as it is must look for them first.

    Example:
        >>> number_markers(frozenset({"", "nan", "-999", "?"})), number_markers(MISSING_TOKENS)
        (['-999'], [])
    """
    found = []
    for token in markers - ALWAYS_MISSING:
        try:
            number = float(token)
        except ValueError:
            continue
        if not math.isnan(number):  # ('-nan' reads as NaN, which the shortcuts leave to the rules already)
            found.append(token)
    return sorted(found)


@functools.lru_cache(maxsize=8)
def null_spellings(markers: frozenset[str]) -> tuple[list[str], frozenset[str]]:
    """:data:`NULL_TOKENS` of other markers (``--na-values``), as a list (Arrow's) and a set."""
    if markers == MISSING_TOKENS:
        return NULL_TOKENS, frozenset(NULL_TOKENS)
    # every spelling of case of a short marker; a long one's are too many (2**20 for 20 letters): its usual
    # spellings only, a cell spelled otherwise being read on the text path, whose rules ignore case
    spellings = {
        v
        for t in markers
        for v in (_case_variants(t) if sum(c.isalpha() for c in t) <= 8 else (t, t.upper(), t.title()))
    }
    return sorted(spellings), frozenset(spellings)


def canonical_strings(arr: Any, fmt: tuple[str, str]) -> Any:
    """A block of text cells with the numbers written in ``fmt`` (decimal mark, thousands separator)
    rewritten in Python's syntax, as :func:`~.encoding.canonical_number` rewrites each cell for the
    pure-Python reader: vectorised for printable ASCII cells, that function itself (once per distinct
    text) for the rare others (non-ASCII spaces, Excel's apostrophe or percent sign, tabs)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .encoding import _number_pattern, canonical_number, misread_number  # (encoding imports this module)

    decimal, thousands = fmt
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    trimmed = pc.ascii_trim_whitespace(arr)  # Python's strip() for printable ASCII text
    number = pc.match_substring_regex(trimmed, _number_pattern(decimal, thousands).pattern)
    # a number in Python's syntax only ('0.0381' with --thousands '.', '2.5' with --decimal ','): the pure-Python
    # reader refuses it (with a decimal point every plain number is written in the format too)
    if decimal == "," and pc.any(pc.and_not(pc.match_substring_regex(trimmed, _PLAIN_NUMBER), number)).as_py():
        raise Fallback("a number not written in the declared format")
    text = trimmed
    if thousands:
        text = pc.replace_substring(text, thousands, "")
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    out = pc.if_else(number, text, arr)
    # cells canonical_number reads otherwise: outside printable ASCII (its strip() and its spaces differ),
    # or written as Excel writes text numbers ('12, 12%)
    other = pc.or_(
        pc.match_substring_regex(arr, r"[^\x20-\x7e]"),
        pc.or_(pc.starts_with(trimmed, "'"), pc.ends_with(trimmed, "%")),
    )
    if not pc.any(other).as_py():
        return out
    if fmt != (".", "") and pc.any(pc.or_(pc.starts_with(trimmed, "'"), pc.ends_with(trimmed, "%"))).as_py():
        raise Fallback("Excel's '12 or 12%")  # the pure-Python reader notes the columns written so
    rows = np.flatnonzero(np.asarray(other.to_numpy(zero_copy_only=False), dtype=bool))
    cells = arr.take(pa.array(rows)).to_pylist()
    done = {value: canonical_number(value, fmt) for value in set(cells)}
    if any(misread_number(value, fmt) for value, read in done.items() if read is value):
        raise Fallback("a number not written in the declared format")
    values = out.to_pylist()  # rare: only a file with such cells pays for a Python list
    for r, value in zip(rows.tolist(), cells):
        values[r] = done[value]
    return pa.array(values, type=pa.string())


class _Retry(Exception):
    """The numeric guess for some column was wrong: read again, every column as text."""


def _numeric_guess(path: Path, names: list[str], options: tuple[Any, Any, Any]) -> set[str]:
    """Columns whose first block holds only plain numbers and missing-value tokens, unpadded:
    read as float64 by Arrow directly (the fast case); others as text, cell by cell."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    read_options, parse_options, convert_options = options
    # the guess needs a sample, not a whole block: a wrong one costs a second read (as text), never a wrong answer
    read_options = pacsv.ReadOptions(
        column_names=read_options.column_names,
        skip_rows=read_options.skip_rows,
        block_size=GUESS_BYTES,
        autogenerate_column_names=False,
        use_threads=False,
    )
    with open_bytes(path) as handle:
        reader = pacsv.open_csv(
            handle, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return set()
    guess = set()
    nulls = pa.array(null_spellings(missing_tokens())[0])
    for j, name in enumerate(names):
        col = batch.column(j)
        ok = pc.or_(pc.match_substring_regex(col, _PLAIN_NUMBER), pc.is_in(col, value_set=nulls))
        # digit codes with leading zeros (02134) are read as text: the pure-Python reader decides them
        if len(col) and pc.all(ok).as_py() and not pc.any(pc.match_substring_regex(col, _LEADING_ZERO)).as_py():
            guess.add(name)
    return guess


# A CSV with at least this many columns is read by :func:`_read_wide_csv_columns`: Arrow's CSV reader
# costs tens of KB per column per block (200,000 columns x 12 rows: 6 GB, 50 s), whatever the rows.
WIDE_COLUMNS = 2000
# The wide reader classifies this many cells at a time (bounded memory whatever the file's shape).
WIDE_BLOCK_CELLS = 2**20


class _TextCodes:
    """The codes of one column's cells in the blocks where it holds text (made only for such columns)."""

    def __init__(self) -> None:
        self.lookup: dict[str, int] = {}
        self.strings: list[str] = []
        self.blocks: dict[int, np.ndarray] = {}  # block number -> codes of its rows (-1: missing)


def is_wide_csv(path: str | os.PathLike[str], delimiter: str = ",") -> bool:
    """Whether a CSV's header has at least :data:`WIDE_COLUMNS` columns (read column-wise without pyarrow).

    Example:
        >>> is_wide_csv("no/such.csv")
        False
    """
    try:
        return len(csv_header(Path(path), delimiter)) >= WIDE_COLUMNS
    except (Fallback, OSError):
        return False


def _read_wide_csv_columns(
    p: Path, header: list[str], delimiter: str, meter: Progress, wide: set[str] | None
) -> dict[str, Column]:
    """:func:`read_csv_columns` for a file of many columns: Python's csv module (the pure-Python
    reader's own parser) splits the rows, and each block of cells is classified on its distinct
    texts by :func:`classify` (the pure-Python reader's rules), so the cost is per cell and per
    distinct text, with nothing per column but for the columns that hold text. The per-column facts
    are rows of 2-D arrays (one allocation for all columns)."""
    n_cols = len(header)
    wide_cols = [j for j, h in enumerate(header) if wide is None or h in wide]
    kinds: list[np.ndarray] = []  # per block, (columns, rows)
    nums: list[np.ndarray] = []  # per block, (columns, rows), float32
    wide_nums: list[np.ndarray] = []  # per block, (len(wide_cols), rows), float64
    texts: dict[int, _TextCodes] = {}
    rows_per_block = max(1, WIDE_BLOCK_CELLS // n_cols)

    def classify_block(rows: list[list[str]]) -> None:
        lookup: dict[str, int] = {}
        ids = np.fromiter(
            (lookup.setdefault(cell, len(lookup)) for row in rows for cell in row),
            dtype=np.int64,
            count=len(rows) * n_cols,
        ).reshape(len(rows), n_cols)
        kind_u, num_u, stripped_u = classify(list(lookup))
        kind = kind_u[ids].T
        num = num_u[ids].T  # float64, (columns, rows)
        wide_nums.append(num[wide_cols].copy())
        narrow = np.ones(n_cols, bool)
        narrow[wide_cols] = False
        with np.errstate(invalid="ignore", over="ignore"):
            big = narrow[:, None] & (kind == NUMBER) & ~(np.abs(num) <= FLOAT32_MAX)
            kind[big] = BAD_NUMBER
            nums.append(num.astype(np.float32))
        kinds.append(np.ascontiguousarray(kind))
        block = len(kinds) - 1
        for j in np.flatnonzero((kind_u == TEXT)[ids].any(axis=0)).tolist():
            holder = texts.setdefault(j, _TextCodes())
            column_ids, inverse = np.unique(ids[:, j], return_inverse=True)
            mapping = np.empty(len(column_ids), dtype=np.int32)
            for i, u in enumerate(column_ids.tolist()):
                text = stripped_u[u]
                code = holder.lookup.get(text)
                if code is None:
                    code = holder.lookup[text] = len(holder.strings)
                    holder.strings.append(text)
                mapping[i] = code
            codes = mapping[inverse.reshape(-1)]
            codes[(kind[j] == EMPTY) | (kind[j] == MISSING)] = -1
            holder.blocks[block] = codes

    with open_text(p) as handle:
        reader = csv.reader(counted_lines(handle, meter), delimiter=delimiter)
        try:
            next(reader)  # the header, read by csv_header
            pending: list[list[str]] = []
            for row in reader:
                if is_blank_line(row):
                    continue
                if len(row) != n_cols:
                    raise Fallback("a row with another number of cells")  # the pure-Python reader says where
                pending.append(row)
                if len(pending) == rows_per_block:
                    classify_block(pending)
                    pending = []
            if pending:
                classify_block(pending)
        except (csv.Error, UnicodeDecodeError, StopIteration, EOFError, OSError) as exc:  # OSError: a damaged .gz
            raise Fallback(f"csv: {exc}") from None
    if not kinds:
        return {h: Column(np.zeros(0, np.int8), np.zeros(0), None, [], True) for h in header}
    kind_all = np.concatenate(kinds, axis=1) if len(kinds) > 1 else kinds[0]
    num_all = np.concatenate(nums, axis=1) if len(nums) > 1 else nums[0]
    wide_all = np.concatenate(wide_nums, axis=1) if len(wide_nums) > 1 else wide_nums[0]
    sizes = [k.shape[1] for k in kinds]
    columns: dict[str, Column] = {}
    wide_at = {j: i for i, j in enumerate(wide_cols)}
    for j, name in enumerate(header):
        num = wide_all[wide_at[j]] if j in wide_at else num_all[j]
        holder = texts.get(j)
        if holder is None:
            columns[name] = Column(kind_all[j], num, None, [], True)
            continue
        parts = [holder.blocks.get(b, np.full(size, -1, np.int32)) for b, size in enumerate(sizes)]
        complete = len(holder.blocks) == len(sizes)
        columns[name] = Column(kind_all[j], num, np.concatenate(parts), holder.strings, complete)
    return columns


# Without pyarrow, a CSV is parsed by NumPy's C parser (np.loadtxt) when that parser and Python's csv module
# cannot differ on it: no quote character after the header, a common separator. Switched off by tests to
# exercise the row-by-row reader.
NUMPY_CSV = os.environ.get("DOWNSLOPE_NUMPY_CSV", "1") != "0"
NUMPY_DELIMITERS = (",", ";", "\t", "|")
# The first cells of a column classified to tell a column of words from one of numbers before converting it.
_PROBE_CELLS = 256
_DIGIT_BYTES = np.zeros(256, bool)
_DIGIT_BYTES[ord("0") : ord("9") + 1] = True


def numpy_csv_available() -> bool:
    """Whether CSV files are parsed by NumPy's C parser where pyarrow is not installed (or switched off).

    Example:
        >>> isinstance(numpy_csv_available(), bool)
        True
    """
    return NUMPY_CSV and not fast_csv_available()


def _numpy_csv_scan(p: Path, delimiter: str) -> None:
    """Refuse (:class:`Fallback`) a file NumPy's parser could read otherwise than the csv module, or whose
    cells the column facts cannot settle without their text: a quote character after the header line
    (quoted fields), or a cell starting with a zero followed by a digit (``02134``: maybe digit codes, which
    the pure-Python reader decides). The bytes are scanned in blocks, vectorised."""
    sep = ord(delimiter)
    first, carried = True, b"\n"  # (the first cell after the header starts a line)
    with open_bytes(p) as handle:
        while block := handle.read(BLOCK_BYTES):
            start = 0
            if first:
                start = block.find(b"\n") + 1
                if start == 0:
                    return  # the header alone
                first = False
            if block.find(b'"', start) >= 0:
                raise _Quoted("quoted fields")
            # the previous block's last two bytes go with this one: a cell cut by the blocks' border is seen whole
            data = np.frombuffer(carried + block[start:], np.uint8)
            carried = block[-2:]
            zeros = np.flatnonzero(data[1:-1] == 48) + 1
            if len(zeros):
                before, after = data[zeros - 1], data[zeros + 1]
                starts_cell = (before == sep) | (before == 10) | (before == 13) | (before == 32) | (before == 9)
                if (starts_cell & _DIGIT_BYTES[after]).any():
                    raise Fallback("a cell with a leading zero (02134): digit codes?")


class _Quoted(Fallback):
    """A file with a quote character after its header: split by Python's csv module, not NumPy's parser."""


def _read_quoted_csv_columns(
    p: Path, header: list[str], delimiter: str, fmts: dict[str, tuple[str, str]] | None = None
) -> dict[str, Column]:
    """:func:`read_csv_columns` for a file with quoted fields ("1,234.50", "New York, NY", a line break or a
    doubled quote inside quotes): Python's csv module, the pure-Python reader's own parser, splits the rows
    into cells (blank lines left out as that reader leaves them), and each column of cells is then read
    as NumPy's parser's are (:func:`_column_from_cells`): conversions per column in C, the rules per distinct
    text (``fmts``: the number format of the columns it names). :class:`Fallback` for what the pure-Python
    reader decides: a row of another width (it names the line), a cell of digits with a leading zero (digit
    codes?), a parse error."""
    n_cols = len(header)
    with open_text(p) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            next(reader)  # the header, read by csv_header
            rows = list(reader)
        except (csv.Error, UnicodeDecodeError, StopIteration, EOFError, OSError) as exc:  # OSError: a damaged .gz
            raise Fallback(f"csv: {exc}") from None
    widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    if n_cols == 1 or (widths != n_cols).any():  # blank lines left out; any other row of another width: refused
        rows = [row for row in rows if not is_blank_line(row)]
        if any(len(row) != n_cols for row in rows):
            raise Fallback("a row with another number of cells")  # the pure-Python reader says where
    by_column = list(zip(*rows)) if rows else [()] * n_cols
    columns: dict[str, Column] = {}
    for name, cells in zip(header, by_column):
        col = np.empty(len(cells), dtype=object)
        col[:] = cells
        # one search over the column's cells joined (a line break inside a cell can only add a false alarm)
        if _LEADING_ZERO_LINE_RE.search("\n".join(cells)):
            raise Fallback("a cell with a leading zero (02134): digit codes?")
        columns[name] = _column_from_cells(col, (fmts or {}).get(name))
    return _drop_blank(columns)


def _loadtxt(p: Path, delimiter: str, dtype: Any) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty lines skipped (as the csv reader skips them), said as a warning
        return np.loadtxt(
            p, dtype=dtype, delimiter=delimiter, skiprows=1, comments=None, quotechar=None, ndmin=2, encoding="utf-8"
        )


def _read_csv_columns_numpy(
    p: Path, header: list[str], delimiter: str, fmts: dict[str, tuple[str, str]] | None = None
) -> dict[str, Column]:
    """:func:`read_csv_columns` by NumPy's C parser: a file of numbers only is parsed straight to float64;
    any other into Python strings, each column then classified by the pure-Python reader's rules
    (:func:`_column_from_cells`; ``fmts``: the number format of the columns it names). :class:`Fallback`
    where the csv module decides (see :data:`NUMPY_CSV`)."""
    if not NUMPY_CSV or delimiter not in NUMPY_DELIMITERS:
        raise Fallback("not read by NumPy's parser")
    try:
        _numpy_csv_scan(p, delimiter)
    except _Quoted:
        return _read_quoted_csv_columns(p, header, delimiter, fmts)
    table: np.ndarray | None = None
    # with a decimal comma, 2.5 is no number of the column (refused), 2.500 may be 2500: the text decides
    if not (fmts and any(fmt[0] != "." for fmt in fmts.values())):
        try:
            table = _loadtxt(p, delimiter, np.float64)
            if np.isnan(table).any():
                table = None  # 'nan' is a missing value, '-nan' a number: the text decides
        except (ValueError, EOFError, OSError):
            table = None
    if table is not None and table.shape[1] == len(header):
        by_column = np.ascontiguousarray(table.T)  # one copy; each column a row of it
        del table
        n = by_column.shape[1]
        return {h: Column(np.zeros(n, np.int8), by_column[j], None, [], True) for j, h in enumerate(header)}
    try:
        cells = _loadtxt(p, delimiter, object)
    except (ValueError, EOFError, OSError):  # ragged rows, bad UTF-8, a damaged .gz: the csv reader says what
        raise Fallback("NumPy's parser refused the file") from None
    if cells.shape[1] != len(header):
        raise Fallback("rows of another width")
    columns = {h: _column_from_cells(cells[:, j], (fmts or {}).get(h)) for j, h in enumerate(header)}
    return _drop_blank(columns)


def _canonical_cells(col: np.ndarray, fmt: tuple[str, str]) -> np.ndarray:
    """A column of Python strings (an object array) with its numbers written in ``fmt`` (decimal mark,
    thousands separator) in Python's syntax, as :func:`canonical_strings` rewrites a block of Arrow's: each
    distinct text once by :func:`~.encoding.canonical_number`. :class:`Fallback` where the pure-Python reader
    decides: a number in Python's syntax only, and Excel's '12 or 12% under a format of separators."""
    from .encoding import canonical_number, misread_number  # (encoding imports this module)

    distinct = dict.fromkeys(col.tolist())
    changed = False
    for text in distinct:
        trimmed = text.strip()
        if fmt != (".", "") and (trimmed[:1] == "'" or trimmed[-1:] == "%"):
            raise Fallback("Excel's '12 or 12%")  # the pure-Python reader notes the columns written so
        read = canonical_number(text, fmt)
        if read is text:
            if misread_number(text, fmt):
                raise Fallback("a number not written in the declared format")
        else:
            distinct[text] = read
            changed = True
    if not changed:
        return col
    cells = col.tolist()
    out = np.empty(len(col), dtype=object)
    out[:] = [distinct[text] or text for text in cells]  # (None: left as written)
    return out


def _column_from_cells(col: np.ndarray, fmt: tuple[str, str] | None = None) -> Column:
    """The facts of one column of Python strings (an object array), as :class:`_Builder` gets them from
    Arrow and the pure-Python reader from each cell (:func:`classify`): numbers converted by ``float()``
    in C where the column holds numbers and missing values, the rules run once per distinct text otherwise.
    ``fmt``: the column's numbers are written so (:func:`_canonical_cells`)."""
    if fmt is not None:
        col = _canonical_cells(col, fmt)
    n = len(col)
    probe_kind, _, _ = classify(col[:_PROBE_CELLS].tolist())
    if not (probe_kind == TEXT).any():
        markers = missing_tokens()
        try:
            num = col.astype(np.float64)  # float() of each cell
            # ('nan' is missing, '-nan' a number: the text decides; so does a marker written as a number, -999)
            if not np.isnan(num).any() and not number_markers(markers):
                return Column(np.zeros(n, np.int8), num, None, [], True)
        except ValueError:
            pass
        null_set = null_spellings(markers)[1]
        for padded in (False, True):
            if padded:  # a token with spaces around it (' NA'): the rules' own strip() and lower()
                missing = np.fromiter((v.strip().lower() in markers for v in col), dtype=bool, count=n)
            else:  # the usual tokens, as written ('', 'NA', 'nan' in any case): a set lookup a cell
                missing = np.fromiter(map(null_set.__contains__, col), dtype=bool, count=n)
            try:
                # float() strips less than str.strip() (not U+001C..U+001F): a cell it refuses goes to classify
                present = col[~missing].astype(np.float64)
            except ValueError:
                continue
            kind = np.where(missing, np.int8(MISSING), np.int8(NUMBER)).astype(np.int8)
            gaps = np.flatnonzero(missing)
            kind[gaps[[not col[i].strip() for i in gaps.tolist()]]] = EMPTY
            num = np.full(n, np.nan)
            num[~missing] = present
            return Column(kind, num, None, [], True)
    # the distinct texts in order of appearance, then each cell's index among them (both loops in C)
    lookup = {v: i for i, v in enumerate(dict.fromkeys(col.tolist()))}
    ids = np.fromiter(map(lookup.__getitem__, col.tolist()), dtype=np.int64, count=n)
    kinds, values, stripped_texts = classify(list(lookup))
    kind = kinds[ids]
    if not (kinds == TEXT).any():
        return Column(kind, values[ids], None, [], True)
    strings: list[str] = []
    known: dict[str, int] = {}
    mapping = np.empty(len(stripped_texts), dtype=np.int32)
    for i, stripped_text in enumerate(stripped_texts):
        code = known.get(stripped_text)
        if code is None:
            code = known[stripped_text] = len(strings)
            strings.append(stripped_text)
        mapping[i] = code
    mapping[(kinds == EMPTY) | (kinds == MISSING)] = -1
    return Column(kind, values[ids], mapping[ids], strings, True)


def read_csv_columns(
    path: str | os.PathLike[str],
    header: list[str],
    delimiter: str = ",",
    progress: bool = False,
    wide: set[str] | None = None,
    fmt: tuple[str, str] | dict[str, tuple[str, str]] | None = None,
    texts: bool = False,
) -> dict[str, Column]:
    """Every column of a CSV (after its header row) as :class:`Column` s, blank rows left out.

    ``fmt`` (decimal mark, thousands separator): the numbers of every column are written so (pandas'
    ``decimal``/``thousands``), or of the columns a dict names (the others as Python writes them); each
    text cell is read as :func:`canonical_strings` rewrites it.

    ``texts``: every column read as text, with ``codes`` for every present cell (numbers too: their own
    text), so that the rules that look at how numbers are written can; pyarrow only (else :class:`Fallback`).

    Numbers are float64 in the columns named by ``wide`` (all when None), float32 in the others.
    Columns that look numeric are converted by Arrow as it parses; if one turns out not to be (a
    stray word further down), the file is read again with every column as text."""
    p = Path(path)
    fmts = fmt if isinstance(fmt, dict) else dict.fromkeys(header, fmt) if fmt is not None else {}
    fmts = {name: f for name, f in fmts.items() if f is not None}
    if fmts and len(header) >= WIDE_COLUMNS:
        raise Fallback("a number format in a wide file")  # the pure-Python reader rewrites its cells
    if texts and (len(header) >= WIDE_COLUMNS or not fast_csv_available()):
        raise Fallback("every cell's text is needed")
    if len(header) >= WIDE_COLUMNS:  # (needs no pyarrow)
        meter = Progress(p.name, os.path.getsize(p), enabled=progress)
        columns = _read_wide_csv_columns(p, header, delimiter, meter, wide)
        meter.done(f" ({len(next(iter(columns.values())).kind):,} rows)")
        return columns
    if not fast_csv_available():
        meter = Progress(p.name, os.path.getsize(p), enabled=progress)
        columns = _read_csv_columns_numpy(p, header, delimiter, fmts)
        meter.done(f" ({len(next(iter(columns.values())).kind):,} rows)")
        return columns
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(len(header))]
    # one thread: the streaming reader parses block after block; with threads it reads ahead (work thrown
    # away after the first block when guessing types) and its wall time hardly drops, while the CPU time
    # grows (1M rows x 30 numbers: 1.8 s of CPU instead of 1.55, for 1.95 s of wall time instead of 1.8)
    read_options = pacsv.ReadOptions(
        column_names=names, skip_rows=1, block_size=BLOCK_BYTES, autogenerate_column_names=False, use_threads=False
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=True)
    as_text = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False, check_utf8=True
    )
    meter = Progress(p.name, os.path.getsize(p), enabled=progress)
    from .memmap import streaming_heap

    # Block after block is allocated and freed: allocators that keep freed memory for reuse (Arrow's
    # mimalloc, glibc's growing mmap threshold) would hold several times the data resident at the peak.
    previous_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        with streaming_heap():
            try:
                numeric = _numeric_guess(p, names, (read_options, parse_options, as_text))
            except (pa.ArrowException, ValueError, EOFError, OSError) as exc:
                raise Fallback(f"pyarrow: {exc}") from None
            # "1.200" is 1200, and with a decimal comma "2.75" is no number: such columns are no plain numbers for Arrow
            numeric -= {n for n, h in zip(names, header) if h in fmts and (fmts[h][1] == "." or fmts[h][0] == ",")}
            if texts:
                numeric = set()
            for attempt in ("guess", "text"):
                if attempt == "text":
                    numeric = set()
                types = {n: (pa.float64() if n in numeric else pa.string()) for n in names}
                convert = pacsv.ConvertOptions(
                    column_types=types,
                    null_values=null_spellings(missing_tokens())[0],
                    strings_can_be_null=False,
                    check_utf8=True,
                )
                builders = [_Builder(wide is None or h in wide, texts) for h in header]
                source = CountingFile(p, meter)
                try:
                    reader = pacsv.open_csv(
                        source, read_options=read_options, parse_options=parse_options, convert_options=convert
                    )
                    for batch in reader:
                        for j, builder in enumerate(builders):
                            if names[j] in numeric:
                                builder.add_values(batch.column(j), nan_is_missing=False)
                                # a one-column row that might be blank: '' or 'NA' cannot be told apart here
                                if len(builders) == 1 and (builder.kinds[-1] == MISSING).any():
                                    raise _Retry()  # is a line of spaces blank, or is it 'NA'? the text path knows
                            else:
                                cells = batch.column(j)
                                text = canonical_strings(cells, fmts[header[j]]) if header[j] in fmts else cells
                                builder.add_strings(text, leading_zeros_fall_back=True)
                    break
                except _Retry:
                    continue
                except (pa.ArrowInvalid, pa.ArrowException, UnicodeDecodeError, ValueError, EOFError, OSError) as exc:
                    if numeric:
                        continue  # e.g. a word in a column guessed numeric: read every column as text
                    raise Fallback(f"pyarrow: {exc}") from None
                finally:
                    source.close()
    finally:
        pa.set_memory_pool(previous_pool)
    columns = _drop_blank({h: b.build() for h, b in zip(header, builders)})
    n = len(next(iter(columns.values())).kind)
    meter.done(f" ({n:,} rows)")
    return columns


def read_parquet_columns(path: str | os.PathLike[str], progress: bool = False) -> tuple[list[str], dict[str, Column]]:
    """The header (column names) and every column of a Parquet file, read one row group at a time."""
    from ..errors import DataError

    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install 'downslope[fast]'") from None
    p = Path(path)
    try:
        handle = pq.ParquetFile(p)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{p}: not a readable Parquet file ({exc})") from None
    header = [str(name).strip() for name in handle.schema_arrow.names]
    if not header or len(set(header)) != len(header) or any(h == "" for h in header):
        raise DataError(f"{p}: the columns need unique, non-empty names, got {header}")
    meter = Progress(p.name, max(1, handle.metadata.num_rows), enabled=progress)
    builders = [_Builder() for _ in header]
    done = 0
    try:
        for group in range(handle.num_row_groups):
            table = handle.read_row_group(group)
            for j, builder in enumerate(builders):
                arr = table.column(j).combine_chunks()
                if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                    builder.add_strings(arr.fill_null(""))
                elif pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type):
                    builder.add_values(arr)
                else:  # dates, decimals, ...: as the text a CSV would hold
                    import pyarrow.compute as pc

                    builder.add_strings(pc.cast(arr, pa.string()).fill_null(""))
            done += table.num_rows
            meter.update(done)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{p}: a damaged Parquet file ({exc})") from None
    columns = {h: b.build() for h, b in zip(header, builders)}  # no blank lines in Parquet: every row counts
    meter.done(f" ({done:,} rows)")
    return header, columns


def parquet_rows(path: str | os.PathLike[str], wanted: list[int], header: list[str]) -> list[list[str]]:
    """The cells (as text) of the given rows of a Parquet file, for error messages."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(path))
    table = table.rename_columns(header)
    every = table.to_pylist() if len(wanted) > 100 else None
    out = []
    for r in wanted:
        row = every[r] if every is not None else table.slice(r, 1).to_pylist()[0]
        out.append(["" if row[h] is None else _text(row[h]) for h in header])
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):  # as the column-wise reader reads a boolean column: 1 and 0
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value).strip()


def read_text_column(path: str | os.PathLike[str], header: list[str], column: str, delimiter: str = ",") -> list[str]:
    """One column's cells (stripped text) of a CSV (``.gz`` too), blank lines left out, as the pure-Python
    reader gives them, parsed by Arrow without converting the other columns; :class:`Fallback` where the
    two might disagree (a one-column file's lines of spaces, ragged rows, bad UTF-8)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if len(header) < 2 or column not in header:
        raise Fallback("a one-column file, or no such column")
    names = [f"c{i}" for i in range(len(header))]
    wanted = names[header.index(column)]
    try:
        table = pacsv.read_csv(
            os.fspath(path),  # a path (not a handle): Arrow decompresses a .gz itself
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=[wanted], column_types={wanted: pa.string()}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise Fallback(f"pyarrow: {exc}") from None
    return [v.strip() for v in table.column(0).to_pylist()]


# The scan for rows (:func:`csv_rows_at`) reads the file in pieces of this many bytes, cut after a line end.
SCAN_BYTES = 8 * 2**20
# A piece that cannot be cut outside a quoted field within this many bytes is left to Python's csv module.
SCAN_LIMIT_BYTES = 64 * 2**20
# Bytes that may belong to a line holding nothing but spaces (a blank line, skipped): ASCII whitespace,
# the quote (a quoted empty cell), and the UTF-8 bytes of the non-ASCII spaces str.strip() removes (U+0085,
# U+00A0, U+1680, U+2000-U+200A, U+2028/9, U+202F, U+205F, U+3000: lead bytes C2, E1, E2, E3, then 80-BF).
_MAYBE_BLANK = rb' \t\x0b\x0c\x1c-\x1f"\x80-\xbf\xc2\xe1\xe2\xe3'


class _Unusual(Exception):
    """The vectorised row scan cannot be sure of this file (a lone CR line end, a quote inside a field,
    a quoted field left open): Python's csv module reads it row by row instead."""


def csv_rows_at(
    path: str | os.PathLike[str], wanted: list[int], delimiter: str = ","
) -> dict[int, tuple[int, list[str]]]:
    """File line and stripped cells of the given data rows (numbered as the pure-Python reader numbers
    them: blank lines skipped, a record's line being the one it starts on), for messages.

    Line numbers are found only here, when a row must be named: the file's bytes are scanned piece by
    piece with vectorised counts (line ends; quotes, which decide which line ends end a record; lines
    that may be blank), and only the wanted records are parsed, by Python's csv module. Files whose
    quoting the counts cannot follow exactly are scanned by that module row by row, as before.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
        >>> _ = open(p, "w").write('a,b\\n1,"x\\ny"\\n\\n2,z\\n')
        >>> csv_rows_at(p, [1])
        {1: (5, ['2', 'z'])}
    """
    if not wanted:
        return {}
    try:
        return _rows_at_by_counting(path, wanted, delimiter)
    except _Unusual:
        return _rows_at_by_parsing(path, wanted, delimiter)


# The last data row is read from this many bytes at the end of a file (a totals row is looked for there).
TAIL_BYTES = 1 << 16


def csv_last_row(path: str | os.PathLike[str], width: int, delimiter: str = ",") -> list[str] | None:
    """The stripped cells of a CSV's last data row, read from the end of the file (no scan of the rows
    before it), as :func:`csv_rows_at` gives them; None when the end of the file cannot say for sure (a
    ``.gz`` file, a quote or a lone CR near the end, a last line that is not a whole record of ``width``
    fields): the caller then scans.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
        >>> _ = open(p, "w").write("a,b\\n1,x\\n2, y \\n\\n")
        >>> csv_last_row(p, 2)
        ['2', 'y']
    """
    if is_gzip(path) or len(delimiter) != 1 or delimiter in '"\r\n':
        return None
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - TAIL_BYTES)
            handle.seek(start)
            tail = handle.read()
    except OSError:
        return None
    if b'"' in tail or tail.count(b"\r") != tail.count(b"\r\n"):
        return None  # quoted fields or old Macintosh line ends: which line ends end a record needs a scan
    lines = tail.split(b"\n")
    # the first piece may be a line cut by the start of the tail (or the header): never the answer
    for k in range(len(lines) - 1, 0, -1):
        try:
            cells = _parse_record(lines[k], delimiter)
        except (UnicodeDecodeError, csv.Error):
            return None
        if is_blank_line(cells):
            continue
        return [v.strip() for v in cells] if len(cells) == width else None
    return None


def _parse_record(raw: bytes, delimiter: str) -> list[str]:
    """One record's cells, as Python's csv module reads them from the file (lines split as open_text splits them)."""
    import io

    return next(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=delimiter), [])


def _pieces(handle: Any) -> Iterator[tuple[bytes, int]]:
    """The file's bytes in pieces ``buf[:size]`` that each end after a line end outside quoted fields (the
    last at the end of the file), so that every piece starts a record (no copy of a piece's bytes: the
    rest of ``buf`` starts the next one); :class:`_Unusual` when no such cut is found."""
    rest = b""
    while True:
        more = handle.read(SCAN_BYTES)
        buf = rest + more if rest else more
        if not more:
            if buf:
                yield buf, len(buf)
            return
        cut = buf.rfind(b"\n") + 1
        if cut and buf.find(b'"', 0, cut) >= 0 and buf.count(b'"', 0, cut) % 2:  # inside a quoted field: an earlier one
            data = np.frombuffer(buf, np.uint8, count=cut)
            ends = np.flatnonzero(data == 10)
            quotes = np.flatnonzero(data == 34)
            even = ends[np.searchsorted(quotes, ends) % 2 == 0]
            cut = int(even[-1]) + 1 if len(even) else 0
        if cut == 0:
            if len(buf) > SCAN_LIMIT_BYTES:
                raise _Unusual("no record end found")
            rest = buf
            continue
        yield buf, cut
        rest = buf[cut:]


def _record_ends(data: np.ndarray, line_ends: np.ndarray, delimiter: int, start: int) -> np.ndarray:
    """The line ends of a piece that end records: those outside quoted fields. Quotes are followed by
    parity (an odd count before a line end: inside a quoted field), which is what Python's csv module
    does when every quote opens a field (at its start), closes one (before a separator or line end) or
    is doubled; any other quote (``5" screen``: a literal quote) raises :class:`_Unusual`."""
    quotes = np.flatnonzero(data == 34)
    if not len(quotes):
        return line_ends
    if len(quotes) % 2:
        raise _Unusual("a quoted field left open")
    n = len(data)
    before = np.where(quotes > 0, data[np.maximum(quotes - 1, 0)], 10)
    after = np.where(quotes + 1 < n, data[np.minimum(quotes + 1, n - 1)], 10)
    bounds = (before == delimiter) | (before == 10) | (before == 13)
    follows = (after == delimiter) | (after == 10) | (after == 13)
    pair_before = np.zeros(len(quotes), bool)
    pair_before[1:] = quotes[1:] == quotes[:-1] + 1
    pair_after = np.zeros(len(quotes), bool)
    pair_after[:-1] = pair_before[1:]
    opening = np.arange(len(quotes)) % 2 == 0
    ok = np.where(opening, bounds | pair_before | (quotes == start), follows | pair_after)
    if not ok.all():
        raise _Unusual("a quote inside a field")
    return line_ends[np.searchsorted(quotes, line_ends) % 2 == 0]


def _rows_at_by_counting(
    path: str | os.PathLike[str], wanted: list[int], delimiter: str
) -> dict[int, tuple[int, list[str]]]:
    import re

    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise _Unusual("an unusual separator")
    sep = ord(delimiter)
    maybe_blank = re.compile(rb"\n[" + _MAYBE_BLANK + rb"]*(?=[\r\n]|\Z)")
    first_blank = re.compile(rb"[" + _MAYBE_BLANK + rb"]*(?=[\r\n]|\Z)")
    targets = sorted(set(wanted))
    found: dict[int, tuple[int, list[str]]] = {}
    lines_before = 0  # lines of the file before the piece
    index = 0  # data rows before the piece
    header = True
    with open_bytes(path) as handle:
        for k, (piece, size) in enumerate(_pieces(handle)):
            start = 3 if k == 0 and piece.startswith(b"\xef\xbb\xbf") else 0  # a byte-order mark (utf-8-sig)
            data = np.frombuffer(piece, np.uint8, count=size)
            # CR LF line ends are fine; a lone CR (old Macintosh files) also ends a line: the csv module decides
            if piece.find(b"\r", 0, size) >= 0:
                crs = np.flatnonzero(data == 13)
                if crs[-1] + 1 >= len(data) or not (data[crs + 1] == 10).all():
                    raise _Unusual("a line ending in CR alone")
            line_ends = np.flatnonzero(data == 10)
            ends = _record_ends(data, line_ends, sep, start) if piece.find(b'"', 0, size) >= 0 else line_ends
            # records [starts, stops): each after the previous record's line end; the file's last line may lack one
            starts = np.concatenate(([start], ends + 1)).astype(np.int64)
            stops = np.concatenate((ends + 1, [size])).astype(np.int64)
            if starts[-1] == size:  # nothing after the last line end
                starts, stops = starts[:-1], stops[:-1]
            # records that may be blank: their first line holds only spaces and quotes; the csv module decides
            may_be_blank = [m.start() + 1 for m in maybe_blank.finditer(piece, 0, size) if m.start() + 1 < size]
            if first_blank.match(piece, start, size) is not None and len(starts):
                may_be_blank.insert(0, start)
            candidates = np.asarray(may_be_blank, dtype=np.int64)
            at = np.searchsorted(starts, candidates)
            record = at[(at < len(starts)) & (starts[np.minimum(at, len(starts) - 1)] == candidates)]
            blank = np.zeros(len(starts), bool)
            for r in record.tolist():
                blank[r] = is_blank_line(_parse_record(piece[starts[r] : stops[r]], delimiter))
            if header and len(starts):
                blank[0] = True  # the header: not a data row, whatever it holds
                header = False
            data_records = np.flatnonzero(~blank)
            upto = index + len(data_records)
            inside = [t for t in targets if index <= t < upto and t not in found]
            for t in inside:
                r = int(data_records[t - index])
                line = lines_before + int(np.searchsorted(line_ends, starts[r])) + 1
                cells = _parse_record(piece[starts[r] : stops[r]], delimiter)
                found[t] = (line, [v.strip() for v in cells])
            index = upto
            lines_before += len(line_ends)
            if len(found) == len(targets):
                break
    return found


def _rows_at_by_parsing(
    path: str | os.PathLike[str], wanted: list[int], delimiter: str = ","
) -> dict[int, tuple[int, list[str]]]:
    """:func:`csv_rows_at` by Python's csv module, row by row (files the vectorised scan cannot follow)."""
    targets = set(wanted)
    found: dict[int, tuple[int, list[str]]] = {}
    index = 0
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader)
        last = reader.line_num
        for row in reader:
            first, last = last + 1, reader.line_num  # the line a record starts on (quoted fields span lines)
            if is_blank_line(row):
                continue
            if index in targets:
                found[index] = (first, [v.strip() for v in row])
                if len(found) == len(targets):
                    break
            index += 1
    return found
