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
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .readers import DASHES, MISSING_TOKENS, SPREADSHEET_ERRORS, missing_tokens

# the one list of missing-value spellings, shared with the column-wise reader (see readers.MISSING_TOKENS)
MISSING = MISSING_TOKENS
MISSING_STRATEGIES = ("error", "drop", "mean", "median", "most_frequent", "constant")
IMPUTE = ("mean", "median", "most_frequent", "constant")
# --missing constant fills as scikit-learn's SimpleImputer(strategy="constant") with its default fill_value:
# 0 for a number, "missing_value" for text (a text column's blanks become a category of their own)
FILL_NUMBER, FILL_TEXT = 0.0, "missing_value"
MAX_CATEGORIES = 100
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: A numeric column is shifted before its float32 cast when the cast would move its values by more than
#: this fraction of their standard deviation (see :func:`float32_offset`).
OFFSET_PRECISION = 1e-4


def float32_offset(values: np.ndarray) -> float:
    """The number to subtract (in float64) from a numeric column before its float32 cast: 0.0 when the
    cast keeps the values to :data:`OFFSET_PRECISION` of their standard deviation, else the column's median
    rounded to a whole number (whole numbers stay whole). NaN entries (missing values) are skipped.

    Unix seconds (1.7e9, float32 steps of 128) spread over an hour would lose most of their information
    to the cast; less their median they keep it (standardizing afterwards gives the same features).

    Example:
        >>> float32_offset(np.array([1.7e9 + 10.0, 1.7e9 + 50.0, 1.7e9 + 90.0])) - 1.7e9
        50.0
        >>> float32_offset(np.array([1.0, 2.0, np.nan]))
        0.0
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return 0.0
    spread = float(v.std())
    largest = float(np.abs(v).max())
    if spread == 0.0 or 0.5 * float(np.spacing(np.float32(largest))) <= OFFSET_PRECISION * spread:
        return 0.0
    return float(np.round(np.median(v)))


TASK_RULE = (
    "text labels -> classification; numeric labels -> regression, unless every value is an integer and "
    "there are at most 20 distinct values (unless they are amounts: at least 3 values, all multiples of a round "
    "step of at least 10 (a multiple of 5), the largest in size at least 100 times their number, as prices rounded "
    "to thousands), or at most 100 lying close together from 0 or 1 (class codes: "
    "spanning at most twice as many integers as there are values) with at least 5 rows per value on average "
    "(then classification); a target of numbers with a few stray words (at least 9 in 10 values numbers) is numeric "
    "and the stray cells are errors"
)

# A target column whose present values are at least this share numbers is numeric: its other cells are
# stray words ('-', '12.5a'), reported like a feature column's, not turned into hundreds of classes.
NUMERIC_TARGET_SHARE = 0.9


def integer_step(distinct: Any) -> int:
    """The largest step all the (integer) ``distinct`` values are multiples of apart: the greatest common
    divisor of their differences (0 for fewer than two values).

    Example:
        >>> integer_step([150_000, 175_000, 450_000]), integer_step([200, 404, 500]), integer_step([3])
        (25000, 12, 0)
    """
    values = sorted(int(v) for v in distinct)
    return math.gcd(*(b - a for a, b in zip(values, values[1:], strict=False))) if len(values) > 1 else 0


def integer_target_task(k: int, n: int, low: float, high: float, step: int = 1) -> tuple[str, str]:
    """``(task, reason)`` for a target of ``n`` integers with ``k`` distinct values from ``low`` to
    ``high``, all ``step`` apart (:func:`integer_step`; 1 when unknown), by :data:`TASK_RULE`.

    Up to 20 distinct integers are classes (labels 0..K-1, 1..K, ratings 1-5, counts 0..15), unless they
    are amounts: at least 3 values that are all multiples of a round step (at least 10, a multiple of 5)
    and large (the largest in size at least 100 times the number of values), far from any class-code
    range: 13 prices rounded to 25,000 between 150,000 and 450,000. HTTP codes 200/404/500 (step 12) and
    decades 10..70 (too small) stay classes. More than 20 distinct integers are classes only when they
    look like class codes: 0..K-1 or 1..K with few gaps. Prices rounded to thousands (44 distinct prices
    between 1e5 and 3.6e5) and ages 18..70 are amounts, a regression.

    Example:
        >>> integer_target_task(44, 1000, 100_000, 360_000)[0], integer_target_task(44, 1000, 0, 43)[0]
        ('regression', 'classification')
        >>> integer_target_task(45, 1000, 18, 70)[0]
        'regression'
        >>> integer_target_task(13, 400, 150_000, 450_000, 25_000)[0], integer_target_task(5, 400, 1, 5)[0]
        ('regression', 'classification')
    """
    said = f"the target holds {k} distinct integers in {n} rows"
    if k <= 20:
        if k >= 3 and step >= 10 and step % 5 == 0 and max(abs(low), abs(high)) >= 100 * k:
            return (
                "regression",
                f"{said}, multiples of {step:,} from {low:,.0f} to {high:,.0f} (amounts, not class labels)",
            )
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
    text = _excel_number(value.strip())
    if thousands == " ":  # French/Excel grouping writes a non-breaking (or narrow) space: "1\u00a0234,5"
        text = text.replace("\u00a0", " ").replace("\u202f", " ")
    if not _number_pattern(decimal, thousands).match(text):
        return value
    if thousands:
        text = text.replace(thousands, "")
    return text.replace(decimal, ".") if decimal != "." else text


def misread_number(value: str, fmt: tuple[str, str]) -> str | None:
    """Why ``value`` is refused in a column whose numbers are written with ``fmt`` (decimal mark, thousands
    separator): it is not written so, yet Python's syntax would read it as a number, which would read one
    column under two rules ('0.038' as 38 but '0.0381' as 0.0381 with --decimal ',' --thousands '.').
    None for a cell written with ``fmt``, and for one no rule reads as a number (a stray word, reported
    as such).

    Example:
        >>> print(misread_number("0.0381", (",", ".")))  # doctest: +ELLIPSIS
        '0.0381' is not a number as --decimal ',' --thousands '.' write them (digits in groups of three after each '.'): under that rule it is 381 (as pandas reads it), not 0.0381; ...
        >>> misread_number("0.038", (",", ".")) is None, misread_number("x", (",", ".")) is None
        (True, True)
    """
    decimal, thousands = fmt
    if fmt == (".", ""):
        return None
    text = _excel_number(value.strip())
    if thousands == " ":
        text = text.replace("\u00a0", " ").replace("\u202f", " ")
    python = _as_float(text)
    if python is None or not math.isfinite(python) or _number_pattern(decimal, thousands).match(text):
        return None
    # what the declared rule makes of it, as pandas reads it: separators dropped, the decimal mark read as one
    ruled = text.replace(thousands, "") if thousands else text
    under = None if decimal != "." and "." in ruled else _as_float(ruled.replace(decimal, "."))
    rule = (
        f"it is {under:g} (as pandas reads it)" if under is not None else "it is not a number (pandas keeps it as text)"
    )
    groups = f" (digits in groups of three after each {thousands!r})" if thousands else ""
    return (
        f"{value.strip()!r} is not a number as {format_flags(fmt)} write them{groups}: under that rule {rule}, "
        f"not {python:g}; write every number of the column one way (or give the --decimal/--thousands the file uses)"
    )


# Excel's ways of writing a number as text: a leading apostrophe (its "this is text" marker, "'12")
# and a percent sign ("12%"). A column whose cells are numbers written so is read as numbers: the
# apostrophe is stripped, and "12%" is read as 12 (the number as written, not 0.12: scikit-learn has
# no rule; standardizing makes the two the same feature, and 12 is what the user sees in the file).
_EXCEL_NUMBER = re.compile(r"^'?\s*([^%']*?)\s*%?$")


UNICODE_MINUS = "\u2212"


def _excel_number(text: str) -> str:
    """``text`` without Excel's leading apostrophe and trailing percent sign (``"'12"``, ``"12%"``), and
    with a leading Unicode minus sign (U+2212, as typeset tables and some locales write it) as ``-``.

    Example:
        >>> _excel_number("'12"), _excel_number("12.5 %"), _excel_number("abc"), _excel_number("\u22123.5")
        ('12', '12.5', 'abc', '-3.5')
    """
    if text[:1] == UNICODE_MINUS and _as_float("-" + text[1:]) is not None:
        return "-" + text[1:]
    if not text or (text[0] != "'" and text[-1] != "%"):
        return text
    match = _EXCEL_NUMBER.match(text)
    return match.group(1) if match else text


def looks_like_excel_number(text: str) -> bool:
    """Whether ``text`` is a number written with Excel's apostrophe or a percent sign (``'12``, ``12%``).

    Example:
        >>> looks_like_excel_number("12%"), looks_like_excel_number("'0"), looks_like_excel_number("12")
        (True, True, False)
    """
    text = text.strip()
    inner = _excel_number(text)
    return inner != text and _as_float(inner) is not None


def detect_number_format(values: list[str], delimiter: str) -> tuple[str, str] | None:
    """The number format of a column whose cells that are not plain numbers are all numbers written
    with a comma: thousands separators (``"1,200"``, in a comma- or tab-separated file) or a decimal
    comma (``"2,75"``, in a ``;``-separated file only: there commas are decimal marks). None when some
    cell is text, or when commas are neither all thousands separators nor in a ``;``-separated file
    (:func:`ambiguous_commas_error` refuses such a column).

    Example:
        >>> detect_number_format(["1,200", "300", "12,000.5"], ","), detect_number_format(["2,75", "1"], ";")
        (('.', ','), (',', ''))
        >>> detect_number_format(["red", "1,200"], ",") is None
        True
    """
    odd = [_excel_number(v.strip()) for v in values if _as_float(v) is None]
    if not odd:
        return None
    excel = len(odd) and any(_excel_number(v.strip()) != v.strip() for v in values if _as_float(v) is None)
    if excel and all(_as_float(v) is not None for v in odd):
        return (".", "")  # numbers written as '12 or 12%: read as numbers
    grouped = all(_THOUSANDS_COMMA.match(v) for v in odd)
    decimal = all(_DECIMAL_COMMA.match(v) for v in odd) and not any("." in v for v in values)
    if grouped and (delimiter != ";" or not decimal):
        return (".", ",")
    if decimal and delimiter == ";":  # elsewhere "3,5" may be a decimal or a misplaced grouping: not guessed
        return (",", "")
    if delimiter == ";" and european_numbers(values):
        return (",", ".")  # 110.833,84: '.' groups thousands, ',' is the decimal mark
    return None


# A European number: '.' groups thousands, ',' marks the decimals ("110.833,84", "1.200", "2,5").
_EUROPEAN_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+(,\d*)?|\d+(,\d*)?|,\d+)$")


def european_numbers(values: list[str]) -> bool:
    """Whether every one of ``values`` is a number written as ``--decimal ',' --thousands '.'`` write them,
    some with a '.' grouping thousands and a decimal comma in the same column (``110.833,84``).

    Example:
        >>> european_numbers(["110.833,84", "950", "2,5"]), european_numbers(["1.5", "2,5"])
        (True, False)
    """
    cells = [v.strip() for v in values]
    return (
        bool(cells)
        and all(_EUROPEAN_NUMBER.match(v) for v in cells)
        and any("." in v for v in cells)
        and any("," in v for v in cells)
    )


# '.' grouping thousands: 2.207, 1.234.567 (never 0.125: a grouped number does not start with 0)
_DOT_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3})+$")


def dotted_numbers(values: list[str]) -> str | None:
    """The first cell whose dots may group thousands (``2.207``, ``1.234.567``) of a column of numbers
    without commas (in Python's syntax, or grouped by dots), else None: in a file that writes decimal
    commas such dots group thousands (and a cell beside them that does not group is refused).

    Example:
        >>> dotted_numbers(["465", "2.207", "1.234.567"]), dotted_numbers(["465", "950"]), dotted_numbers(["0.125"])
        ('2.207', None, None)
    """
    if not all(_as_float(v) is not None or _DOT_GROUPED.match(v.strip()) for v in values):
        return None
    return next((v for v in values if _DOT_GROUPED.match(v.strip())), None)


def decimal_point_column(values: list[str]) -> bool:
    """Whether a column of numbers in Python's syntax shows decimal points: some cell holds a '.', and none
    of those could be a thousands grouping (``0.1257``, ``12.5``; not ``2.207``).

    Example:
        >>> decimal_point_column(["0.1257", "3"]), decimal_point_column(["2.207", "12.5"]), decimal_point_column(["3"])
        (True, False, False)
    """
    dotted = [v.strip() for v in values if "." in v]
    return (
        bool(dotted)
        and all(_as_float(v) is not None for v in values)
        and not any(_DOT_GROUPED.match(v) for v in dotted)
    )


def comma_groups_only(values: list[str]) -> bool:
    """Whether every cell of ``values`` holding a comma groups thousands with it (``1,101``, ``12,345``).

    Example:
        >>> comma_groups_only(["1,101", "950"]), comma_groups_only(["2,75", "1,101"])
        (True, False)
    """
    commas = [v.strip() for v in values if "," in v]
    return bool(commas) and all(_THOUSANDS_COMMA.match(v) for v in commas)


def comma_groups_error(source: str, col: str, example: str, points: str) -> DataError:
    """The refusal of a ``;``-file column whose commas all group three digits (``1,101``: 1101 or 1.101?)
    when column ``points`` writes decimal points: no rule of the file settles what its commas are."""
    return DataError(
        f"{source}: column {col!r} holds numbers written like {example.strip()!r}, whose commas could group thousands "
        f"(1,101 is 1101) or mark decimals (1,101 is 1.101), and column {points!r} writes decimal points; say which "
        f"with --thousands ',' or --decimal ',' (the file's other numbers must be written the same way), or leave "
        f"the column out with --drop {shlex.quote(col)}"
    )


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


def empty_column_error(source: str, col: str) -> DataError:
    """The refusal (under ``--missing error``) of a feature column with no value at all: no filling helps.

    Example:
        >>> print(empty_column_error("t.csv", "notes"))
        t.csv: column 'notes' has no values (every cell is empty); leave it out with --drop notes (--missing mean|median|most_frequent leaves out a column with no values)
    """
    return DataError(
        f"{source}: column {col!r} has no values (every cell is empty); leave it out with --drop {shlex.quote(col)} "
        "(--missing mean|median|most_frequent leaves out a column with no values)"
    )


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


#: Default missing-value markers that are also words or codes some columns hold as values: 'NA' is
#: Namibia's country code (and North America's), 'None' a category ("no garage"). Messages about such a
#: cell read as missing name the option that keeps it.
WORD_MARKERS = ("na", "none")


def na_values_advice(word: str) -> str:
    """How to keep a default missing-value marker such as 'NA' as a value.

    Example:
        >>> na_values_advice("NA")  # doctest: +ELLIPSIS
        "if 'NA' is a value here (Namibia's country code, say), --na-values sets the cells read as missing..."
    """
    return (
        f"if {word!r} is a value here (Namibia's country code, say), --na-values sets the cells read as missing "
        f"instead of the defaults (--na-values '' : only empty cells; na_values=[] in a config)"
    )


def _is_missing(value: str) -> bool:
    return value.strip().lower() in missing_tokens()  # MISSING, unless --na-values says otherwise


# Spellings of yes and no (matched case-insensitively, after stripping): a text column holding only these
# is one 0/1 feature, whatever mix of them it holds (no, FALSE, 0 and N are all 0).
BOOLEAN_SPELLINGS = {
    **dict.fromkeys(("true", "yes", "y", "t", "1", "on"), "1"),
    **dict.fromkeys(("false", "no", "n", "f", "0", "off"), "0"),
}


def is_boolean_column(distinct: list[str]) -> bool:
    """Whether a column's distinct present values are all yes/no spellings, some of them words (a column
    of 0 and 1 alone is numeric already).

    Example:
        >>> is_boolean_column(["no", "FALSE", "1", "Y"]), is_boolean_column(["0", "1"]), is_boolean_column(["a", "no"])
        (True, False, False)
    """
    keys = [v.strip().lower() for v in distinct]
    return bool(keys) and all(k in BOOLEAN_SPELLINGS for k in keys) and any(_as_float(k) is None for k in keys)


def boolean_note(source: str, col: str, distinct: list[str]) -> str:
    """The note for a column read as one 0/1 feature, naming the spellings found for each value.

    Example:
        >>> boolean_note("t.csv", "active", ["no", "FALSE", "Y", "1"])
        "t.csv: column 'active' holds yes/no values ('1', 'Y' as 1; 'FALSE', 'no' as 0): read as one 0/1 feature"
    """
    ones = sorted(v.strip() for v in distinct if BOOLEAN_SPELLINGS[v.strip().lower()] == "1")
    zeros = sorted(v.strip() for v in distinct if BOOLEAN_SPELLINGS[v.strip().lower()] == "0")
    said = "; ".join(
        f"{', '.join(repr(v) for v in group)} as {value}" for group, value in ((ones, 1), (zeros, 0)) if group
    )
    return f"{source}: column {col!r} holds yes/no values ({said}): read as one 0/1 feature"


def cell_location(source: str, line: int, column_index: int, column: str) -> str:
    """Where a cell is, for messages: ``file:line:column`` in a text file; a Parquet file has no lines, so
    its cells are named by data row (counting from 1) and column name.

    Example:
        >>> cell_location("t.csv", 3, 0, "x"), cell_location("t.parquet", 3, 0, "x")
        ("t.csv:3:1 (column 'x')", "t.parquet: row 3 (column 'x')")
    """
    if str(source).lower().endswith(".parquet"):
        return f"{source}: row {line} (column {column!r})"
    return f"{source}:{line}:{column_index + 1} (column {column!r})"


def fill_note(source: str, counts: dict[str, int], strategy: str, shown: int = 5) -> str | None:
    """The note for the missing cells of numeric columns that ``strategy`` fills, counted per column
    (the first ``shown`` columns, most first; the text columns get their own note), else None.

    Example:
        >>> fill_note("t.csv", {"a": 2, "b": 0, "c": 5}, "median")
        "t.csv: --missing median fills 7 missing numeric cells (column 'c': 5, 'a': 2) with the training split's median"
    """
    ranked = sorted(((n, c) for c, n in counts.items() if n), key=lambda t: -t[0])
    if not ranked:
        return None
    parts = ", ".join(f"{c!r}: {n}" for n, c in ranked[:shown])
    more = f" and {len(ranked) - shown} more" if len(ranked) > shown else ""
    what = "0" if strategy == "constant" else f"the training split's {strategy.replace('_', ' ')}"
    total = sum(n for n, _ in ranked)
    return (
        f"{source}: --missing {strategy} fills {total} missing numeric cell{'s' if total != 1 else ''} "
        f"(column {parts}{more}) with {what}"
    )


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
    return integer_target_task(k, n, min(distinct), max(distinct), integer_step(distinct) if k <= 20 else 1)


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


class NumberCell(str):
    """A cell that was a number in memory (a Python or NumPy float or integer given to ``predict``), written
    in Python's syntax: a file's number format (decimal comma, thousands separator) applies to text cells
    only, so 1.5 given as a float is 1.5 even for a run trained on a file that writes it 1,5.

    Example:
        >>> enc = TabularEncoder(["a"], "y", {}, "regression", [], formats={"a": (",", ".")})
        >>> enc.stage = "predict"
        >>> enc.encode_features(["a"], [[NumberCell("1.5")]], "rows").tolist()
        [[1.5]]
    """

    __slots__ = ()


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
        offsets: dict[str, float] | None = None,
        booleans: list[str] | None = None,
        units: dict[str, str] | None = None,
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
        # numeric columns of yes/no values (any spelling of BOOLEAN_SPELLINGS, or a Parquet boolean): 1/0
        self.booleans = list(booleans or [])
        # numeric column -> the unit its numbers are written with ("72 kg"), stripped from new data too
        self.units = {str(k): str(v) for k, v in (units or {}).items()}
        # numeric column -> the number subtracted (in float64) before its values become float32, for a
        # column whose values are large beside their spread (unix seconds: 1.7e9 is a multiple of 128
        # in float32); None until the first (training) encoding decides them (see float32_offset)
        self.offsets: dict[str, float] | None = None if offsets is None else {k: float(v) for k, v in offsets.items()}
        # what the messages advise: "train" (the training flags) or "predict"/"evaluate" (a trained run's
        # new data: what the run was trained with, and what to change); not part of the state
        self.stage = "train"
        # a category not in ``categories``: "error" (what predict and evaluate do) or "ignore" (all zeros
        # in the column's block, scikit-learn's handle_unknown='ignore'); not part of the state
        self.handle_unknown = "error"
        # how the refusal of an unseen category names the way to encode it as zeros instead: the command's
        # flag, or the keyword of the Python API (TrainedRun.predict) that read the rows; not part of the state
        self.unknown_option = "--unknown-categories ignore"
        # whether ``categories`` are those of a training split (a run's, cut from the whole file's):
        # the refusal of an unseen category then says so; runs written before that hold the file's
        self.training_split_vocabulary = False
        # a class label is compared without case (strip and casefold), for a run trained with
        # merge_label_variants; set from the run's config, not part of the state
        self.fold_labels = False

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

    def unseen_rows(self, X: np.ndarray) -> tuple[int, dict[str, int]]:
        """How many rows of ``X`` (features as :meth:`encode_features` gives them with
        ``handle_unknown='ignore'``) held a category not in :attr:`categories`, and how many by column.

        Such a cell leaves its column's one-hot block all zeros (a missing cell makes it NaN, a known
        category puts a single one in it), so the count is read back from ``X``.

        Example:
            >>> import numpy as np
            >>> enc = TabularEncoder(["color"], "y", {"color": ["blue", "red"]}, "regression", [])
            >>> enc.handle_unknown = "ignore"
            >>> enc.unseen_rows(enc.encode_features(["color", "y"], [["red", "1"], ["green", "2"]], "f.csv"))
            (1, {'color': 1})
        """
        X = np.asarray(X)
        rows = np.zeros(len(X), dtype=bool)
        by_column: dict[str, int] = {}
        for (start, stop, categorical), col in zip(self.blocks(), self.columns):
            if not categorical or stop == start:
                continue
            hit = (X[:, start:stop] == 0).all(axis=1)  # NaN (missing) compares unequal to 0
            if hit.any():
                by_column[col] = int(hit.sum())
                rows |= hit
        return int(rows.sum()), by_column

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "columns": self.columns,
            "target": self.target,
            "categories": self.categories,
            "task": self.task,
            "classes": self.classes,
            "missing": self.missing,
            "dropped": self.dropped,
            "formats": {k: list(v) for k, v in self.formats.items()},
        }
        if self.booleans:  # absent in runs saved before yes/no columns were read as 0/1
            state["booleans"] = list(self.booleans)
        if self.units:  # absent in runs saved before numbers with a unit were read as numbers
            state["units"] = dict(self.units)
        if self.training_split_vocabulary:
            state["vocabulary"] = "training split"
        if self.offsets:  # absent: every number encoded as it is (all runs saved before offsets)
            state["offsets"] = dict(self.offsets)
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TabularEncoder:
        encoder = cls(
            list(state["columns"]),
            state["target"],
            {k: list(v) for k, v in state["categories"].items()},
            state["task"],
            list(state["classes"]),
            str(state.get("missing", "error")),
            list(state.get("dropped", [])),
            {k: (v[0], v[1]) for k, v in dict(state.get("formats") or {}).items()},
            # a run saved before offsets existed encoded every number as it is
            {k: float(v) for k, v in dict(state.get("offsets") or {}).items()},
            list(state.get("booleans") or []),
            {k: str(v) for k, v in dict(state.get("units") or {}).items()},
        )
        encoder.training_split_vocabulary = state.get("vocabulary") == "training split"
        return encoder

    def _missing(self, where: str, value: str = "") -> DataError:
        error = self._missing_value(where)
        word = value.strip()
        # a value of some columns (Namibia's NA), read as missing by the default markers: say how to keep it
        if self.stage == "train" and word.lower() in WORD_MARKERS and missing_tokens() == MISSING_TOKENS:
            return DataError(
                f"{error}; the cell holds {word!r}, which is read as a missing value: {na_values_advice(word)}"
            )
        return error

    def _missing_value(self, where: str) -> DataError:
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
        if value.strip().lower() in SPREADSHEET_ERRORS:
            return DataError(
                f"{where}: {value!r} is a spreadsheet error value (the formula that made this cell failed), not a "
                "number; fix the formula in the spreadsheet and export the file again, or empty the cell"
                + (" and choose --missing" if self.stage == "train" else "")
            )
        if value.strip() in DASHES:
            return DataError(
                f"{where}: expected a number, got {value!r}, a dash: Excel's accounting format shows zero so, and "
                "other tables a missing value; write 0, or empty the cell"
                + (" and choose --missing" if self.stage == "train" else "")
            )
        expected = "a number"
        if col in self.booleans:
            expected = f"a yes/no value ({'/'.join(sorted(BOOLEAN_SPELLINGS))}, in any case)"
        fmt = self.formats.get(col)
        if fmt is not None and fmt != (".", "") and _DIGITS_AND_MARKS.match(value.strip()):
            # the column already has a number format (given, or found in the training file): advising the
            # options it was read with would change nothing; say how the cell breaks that format instead
            decimal, thousands = fmt
            grouping = f", in groups of three digits after each {thousands!r} ('1{thousands}950')" if thousands else ""
            comma = (
                f" (the run reads this column's numbers as {format_flags(fmt)} write them: {decimal!r} as the decimal "
                f"mark{f' and {thousands!r} as the thousands separator' if thousands else ''}{grouping}; "
                f"{value!r} is not written so: a mistyped digit or separator?)"
            )
        elif _comma_numbers([value]):
            comma = (
                " (a number with a thousands separator or a decimal comma? "
                + (
                    # predict and evaluate read a new file with its own number format: no retraining needed
                    "read this file with --thousands ',' or --decimal ',' (predict's and evaluate's options; "
                    "thousands= or decimal= in Python), as the model need not be retrained for it"
                    if self.stage != "train"
                    else "pass --thousands ',' or --decimal ','"
                )
                + ")"
            )
        else:
            comma = ""
        if self.stage != "train":
            fill = (
                (
                    ", or leave the cell empty: the run fills it with 0 (--missing constant)"
                    if self.missing == "constant"
                    else f", or leave the cell empty: the run fills it with the training split's {self.missing}"
                )
                if self.missing in IMPUTE
                else f" (an empty cell is refused too: the run was trained with --missing {self.missing})"
            )
            return DataError(
                f"{where}: expected {expected}, got {value!r} (the column was numeric in training){comma}; fix the "
                f"value in the file{fill}"
            )
        return DataError(
            f"{where}: expected {expected}, got {value!r} (the column is numeric){comma}; fix the value, "
            f"leave the cell empty and choose --missing, or leave the column out with --drop {shlex.quote(col)}"
        )

    def _cell(self, col: str, value: str) -> str:
        if self.booleans and col in self.booleans:
            return BOOLEAN_SPELLINGS.get(value.strip().lower(), value)
        if isinstance(value, NumberCell):
            return value  # a number given as a number: the file's way of writing numbers is no part of it
        if self.units and col in self.units:
            value = strip_unit(value, self.units[col])
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
        # numbers are gathered in float64 and shifted by their column's offset before the float32 cast
        numeric = [c for c in self.columns if c not in self.categories]
        numbers = np.full((len(rows), len(numeric)), np.nan)
        slot = {c: k for k, c in enumerate(numeric)}
        position = {c: header.index(c) for c in self.columns}
        lines = _line_numbers(rows, first_line)
        refuse = self._refuses_missing()
        # columns whose new cells must be written in their number format (training's cells are checked, and
        # rewritten, by the reader before they get here)
        ruled = set(self.formats) if self.stage != "train" else set()
        if refuse and self.stage == "train" and len(rows) > 1:
            for col in self.columns:
                if all(_is_missing(row[position[col]]) for row in rows):
                    raise empty_column_error(source, col)
        # a cell's place is worded only for a message (this loop runs once per cell)
        for r, row in enumerate(rows):
            out = 0
            for col in self.columns:
                j = position[col]
                value = self._cell(col, row[j])
                size = len(self.categories[col]) if col in self.categories else 1
                if self.missing == "constant" and col in self.categories and _is_missing(value):
                    value = FILL_TEXT  # a blank is a category of its own (unseen in training: all zeros)
                if _is_missing(value):
                    if refuse:
                        # a text column's 'NA' may be a value (a country code): the message says how to keep it
                        raise self._missing(
                            cell_location(source, lines[r], j, col), value if col in self.categories else ""
                        )
                    X[r, out : out + size] = np.nan
                    out += size
                    continue
                if col in self.categories:
                    cats = self.categories[col]
                    # spaces around a category are no part of it, as the CSV readers strip every cell (rows
                    # given in memory arrive unstripped)
                    value = value.strip()
                    if value not in cats:
                        if self.handle_unknown == "ignore":
                            out += size
                            continue
                        # the cell as given (repr), so a stray character shows
                        raise DataError(f"{cell_location(source, lines[r], j, col)}: {self._unseen(row[j], cats)}")
                    X[r, out + cats.index(value)] = 1.0
                else:
                    number = _as_float(value)
                    if number is None:  # quoted as the file writes it, not as rewritten above
                        raise self._not_a_number(cell_location(source, lines[r], j, col), col, row[j].strip())
                    if col in ruled and value == row[j] and not isinstance(row[j], NumberCell):
                        # not rewritten: Python's syntax, not the column's
                        misread = misread_number(row[j], self.formats[col])
                        if misread:
                            raise DataError(f"{cell_location(source, lines[r], j, col)}: {misread}")
                    if not math.isfinite(number):
                        raise DataError(
                            f"{cell_location(source, lines[r], j, col)}: non-finite value {value!r} (a feature must be a finite number); empty the cell "
                            f"and choose --missing mean|median|most_frequent|drop, or leave the column out with --drop {shlex.quote(col)}"
                        )
                    if abs(number) > FLOAT32_MAX:
                        raise DataError(
                            f"{cell_location(source, lines[r], j, col)}: {value!r} overflows float32 (largest {FLOAT32_MAX:.4g}), which downslope "
                            f"computes in; rescale the column in the file (other units) or leave it out "
                            f"with --drop {shlex.quote(col)}"
                        )
                    numbers[r, slot[col]] = number
                out += size
        self.write_numbers(X, {c: numbers[:, k] for c, k in slot.items()})
        return X

    def encode_feature_columns(
        self, header: list[str], columns: Mapping[str, Any], n_rows: int, source: str, cell: Callable[[Any], str]
    ) -> np.ndarray | None:
        """:meth:`encode_features` of rows given column by column in memory (a DataFrame's, a dict of
        columns'), with the same results and errors, without a row of text per cell: each column's distinct
        values are written as text once (``cell``: how a value reads as a CSV cell) and the encoding runs
        column by column. None when a row-by-row encoding must decide (number formats, yes/no columns,
        unhashable values, a cell the two readings disagree about)."""
        from . import columns as by_column
        from . import readers

        if self.formats or self.booleans or self.units:  # rewritten per cell by _cell: left to the row encoder
            return None
        check_columns(source, header, self.columns)
        cols: dict[str, readers.Column] = {}
        for col in self.columns:
            facts = _column_facts(columns[col], n_rows, cell, col in self.categories)
            if facts is None:
                return None
            cols[col] = facts

        def rows_at(wanted: list[int]) -> dict[int, tuple[int, list[str]]]:
            return {r: (r + 1, [cell(columns[c][r]) for c in header]) for r in wanted}  # rows count from 1

        try:
            return by_column._encode_feature_columns(self, header, cols, np.arange(n_rows), rows_at, True, source)
        except readers.Fallback:
            return None

    def write_numbers(self, X: np.ndarray, numbers: dict[str, np.ndarray]) -> None:
        """Write each numeric column's float64 ``numbers`` (NaN: missing) into its feature of ``X``, less
        the column's offset; the first (training) encoding decides the offsets (:func:`float32_offset`)."""
        if self.offsets is None:
            found = {c: float32_offset(v) for c, v in numbers.items()}
            self.offsets = {c: v for c, v in found.items() if v != 0.0}
        starts = {col: start for (start, _, _), col in zip(self.blocks(), self.columns)}
        for col, values in numbers.items():
            shift = self.offsets.get(col, 0.0)
            X[:, starts[col]] = values - shift if shift else values

    def feature_offsets(self) -> np.ndarray:
        """The offset of each feature (float64; 0 for one-hot features and unshifted columns): raw value =
        encoded value + offset."""
        out = np.zeros(len(self.feature_names))
        for (start, _, _), col in zip(self.blocks(), self.columns):
            out[start] = (self.offsets or {}).get(col, 0.0) if col not in self.categories else 0.0
        return out

    def _unseen(self, value: str, known: list[str]) -> str:
        """:func:`unseen_category`, and how to go on for a trained run's new data."""
        said = unseen_category(value, known, self.training_split_vocabulary)
        if self.stage in ("predict", "evaluate"):
            said += f"; {self.unknown_option} encodes such a category as all zeros (as the run's own metrics do)"
        return said

    def encode_target(self, values: list[str], source: str, column_index: int, first_line: int = 2) -> np.ndarray:
        lines = _line_numbers(values, first_line)
        if self.task == "classification":
            fold = str.casefold if self.fold_labels else str
            lookup = {fold(c): i for i, c in enumerate(self.classes)}
            out = np.empty(len(values), dtype=np.int64)
            for r, v in enumerate(values):
                key = fold(class_key(self._cell(str(self.target), v)))
                if key not in lookup:
                    raise DataError(
                        f"{cell_location(source, lines[r], column_index, str(self.target))}: unknown class {v!r}; "
                        f"known: {self.classes}"
                    )
                out[r] = lookup[key]
            return out
        y = np.empty((len(values), 1), dtype=np.float64)  # float64: 1e9 + 10.5 must not become 1e9
        for r, v in enumerate(values):
            where = cell_location(source, lines[r], column_index, str(self.target))
            number = _as_float(self._cell(str(self.target), v))
            if (
                number is not None
                and self.stage != "train"
                and self.target in self.formats
                and not isinstance(v, NumberCell)
            ):
                misread = misread_number(v, self.formats[str(self.target)])
                if misread:
                    raise DataError(f"{where}: {misread}")
            if number is None or not math.isfinite(number):
                hint = target_format_hint(values) if number is None else ""
                raise DataError(f"{where}: expected a finite number, got {v!r}" + (f"; {hint}" if hint else ""))
            if abs(number) > FLOAT32_MAX:
                raise DataError(
                    f"{where}: target {v!r} overflows float32 (largest {FLOAT32_MAX:.4g}), which downslope computes "
                    "in; rescale the target column in the file (other units)"
                )
            y[r, 0] = number
        return y


def unseen_category(value: str, known: list[str], training_split: bool = False) -> str:
    """The refusal of a category not seen in training, naming at most 10 of the known categories; with
    ``training_split`` (a run's vocabulary, learned from its training rows only) it says so, since a
    value of the training file's own validation or test rows can then be one.

    Example:
        >>> unseen_category("teal", ["blue", "red"], training_split=True)
        "category 'teal' was not seen in training (in the training split); known: ['blue', 'red']"
        >>> unseen_category("RED", ["blue", "red"])
        "category 'RED' was not seen in training; known: ['blue', 'red']; it differs only in upper/lower case from 'red': write it so"
    """
    shown = f"{known[:10]}" if len(known) <= 10 else f"{known[:10]} ... ({len(known)} in all)"
    where = " (in the training split)" if training_split else ""
    # a known category written in another case ('downtown' for 'Downtown') may be past the ten shown
    alike = [k for k in known if k.strip().casefold() == str(value).strip().casefold()]
    case = f"; it differs only in upper/lower case from {alike[0]!r}: write it so" if alike else ""
    return f"category {value!r} was not seen in training{where}; known: {shown}{case}"


def _column_facts(values: Any, n: int, cell: Callable[[Any], str], categorical: bool) -> Any:
    """A column held in memory as the readers' per-cell facts (:class:`readers.Column`): a numeric array
    at once, other values through their distinct texts. A categorical column's codes are those texts
    stripped (as the CSV readers strip cells and :meth:`TabularEncoder.encode_features` compares them);
    None for values that cannot be told apart by hashing (the row-by-row encoder reads them)."""
    from . import readers

    if not categorical and isinstance(values, np.ndarray) and values.dtype.kind in "fiu" and values.ndim == 1:
        # (a float reads back from its text as the same float64, an integer as float(str(value)) does)
        num = values.astype(np.float64)
        kind = np.where(np.isnan(num), np.int8(readers.EMPTY), np.int8(readers.NUMBER)).astype(np.int8)
        return readers.Column(kind, num, None)
    seen: dict[Any, int] = {}
    index = np.empty(n, dtype=np.int64)
    try:
        for r, value in enumerate(values):  # (1, 1.0 and True are equal keys but different cells: typed)
            index[r] = seen.setdefault((type(value), value), len(seen))
    except TypeError:  # an unhashable value (a list in a cell)
        return None
    texts = [cell(value) for _, value in seen]
    kinds, nums, _ = readers.classify(texts)
    kind, num = kinds[index], nums[index]
    if not categorical:
        return readers.Column(kind, num, None)
    strings: dict[str, int] = {}
    code_of = np.array([strings.setdefault(t.strip(), len(strings)) for t in texts], dtype=np.int32)
    codes = code_of[index] if len(texts) else np.zeros(n, np.int32)
    codes[(kind == readers.EMPTY) | (kind == readers.MISSING)] = -1
    return readers.Column(kind, num, codes, list(strings))


def _line_numbers(rows: Any, first_line: int) -> list[int]:
    """File line of each row: rows read by :func:`read_rows` remember theirs (blank lines are skipped)."""
    found = getattr(rows, "lines", None)
    if found is not None and len(found) == len(rows):
        return list(found)
    return list(range(first_line, first_line + len(rows)))


class _Rows(list):
    """Rows of a CSV that remember the file line each one came from."""

    lines: list[int]


def headerless(first: list[str], rows: Any) -> tuple[list[str], _Rows]:
    """Column names and rows of a CSV without a header row (pandas' ``header=None``): the first line read as
    data, and the columns named ``col_0`` .. ``col_{n-1}`` (pandas' 0 .. n-1, as names that are not numbers:
    a target or a --drop names them so). ``rows`` remember their file lines (the first row is line 1).

    Example:
        >>> names, rows = headerless(["1.5", "2"], _Rows([["3", "4"]]))
        >>> names, rows, rows.lines
        (['col_0', 'col_1'], [['1.5', '2'], ['3', '4']], [1, 2])
    """
    out = _Rows([list(first), *rows])
    out.lines = [1, *_line_numbers(rows, 2)]
    return [f"col_{i}" for i in range(len(first))], out


CsvRows, line_numbers = _Rows, _line_numbers  # public names: the CLI reads a run's inputs back with them


class Imputer:
    """Fills NaN features with values fitted on the training rows (scikit-learn's SimpleImputer).

    ``strategy`` is ``mean``, ``median`` or ``most_frequent`` for numeric features; a one-hot block
    (``blocks`` from :meth:`TabularEncoder.blocks`) is filled with its most frequent category. ``constant``
    fills numbers with :data:`FILL_NUMBER` (0, SimpleImputer's default ``fill_value``); a text column's
    blanks are encoded as the category :data:`FILL_TEXT` by the encoder, so none is left to fill here.

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
        # features whose column (a whole one-hot block) had no observed value in training: SimpleImputer
        # drops such a column; here it keeps its place but is always set to its fill, whatever new data
        # holds, so the model (whose weights for it never trained) ignores it
        self.unseen: list[int] = []

    def fit(self, X: Any, blocks: list[tuple[int, int, bool]] | None = None) -> Imputer:
        from .memmap import is_lazy

        if is_lazy(X):
            return self._fit_lazy(X, blocks)
        X = np.asarray(X, dtype=np.float64)
        blocks = blocks or [(j, j + 1, False) for j in range(X.shape[1])]
        fill = np.zeros(X.shape[1], dtype=np.float32)
        unseen: list[int] = []
        for start, stop, categorical in blocks:
            part = X[:, start:stop]
            seen = part[~np.isnan(part).any(axis=1)]
            if len(seen) == 0:
                unseen.extend(range(start, stop))  # nothing seen in training: always 0, new values ignored
                continue
            if self.strategy == "constant":  # a text column's blanks were encoded as their own category
                fill[start] = 0.0 if categorical else FILL_NUMBER
                continue
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
        self.unseen = unseen
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
        self.unseen = []
        for b, (start, stop, categorical) in enumerate(blocks):
            if counts[b] == 0:
                self.unseen.extend(range(start, stop))
                continue
            if self.strategy == "constant":
                fill[start] = 0.0 if categorical else FILL_NUMBER
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
        if self.unseen:  # a column never seen in training: its values are ignored (SimpleImputer drops it)
            X[:, self.unseen] = self.fill[self.unseen]
        return X

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "fill": self.fill, "unseen": np.asarray(self.unseen, dtype=np.int64)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Imputer:
        imp = cls(str(state["strategy"]))
        imp.fill = np.asarray(state["fill"], dtype=np.float32)
        imp.unseen = [int(j) for j in np.asarray(state.get("unseen", []), dtype=np.int64).reshape(-1)]
        return imp


def with_fill_category(categories: dict[str, list[str]], blank: Callable[[str], bool]) -> dict[str, list[str]]:
    """``--missing constant``: each text column with a blank cell (``blank(column)``) gets the category
    :data:`FILL_TEXT` (in sorted place, as scikit-learn's OneHotEncoder orders categories), as if its blanks
    were filled with it before one-hot encoding (SimpleImputer(strategy="constant") then OneHotEncoder).

    Example:
        >>> with_fill_category({"c": ["a", "z"], "d": ["b"]}, lambda col: col == "c")
        {'c': ['a', 'missing_value', 'z'], 'd': ['b']}
    """
    return {col: sorted({*cats, FILL_TEXT}) if blank(col) else cats for col, cats in categories.items()}


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
    if target not in header and "," in target:
        named = [t.strip() for t in target.split(",") if t.strip()]
        found = [t for t in named if t in header]
        raise ConfigError(
            f"{source}: --target names {len(named)} columns ({target!r}); only one target column is supported: "
            f"train one model per target (e.g. --target {found[0] if found else named[0]})"
        )
    if target not in header:
        folded = [h for h in header if h.strip().lower() == target.strip().lower()]
        hint = f"; did you mean {folded[0]!r}? (names match case and spaces exactly)" if folded else ""
        raise DataError(f"{source}: no target column {target!r}{hint}; columns are {header}")
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
    if header_note(source, header) is not None and not any(c in header for c in columns):
        raise DataError(
            f"{source}:1: the first row {header[:8]}{' ...' if len(header) > 8 else ''} looks like data (numbers), "
            f"not column names: the header row seems to be missing; add a first line naming the columns: "
            f"{','.join(columns)}"
        )
    hints = []
    if len(header) == 1 and readers_other_separator(header) is not None:
        sep = readers_other_separator(header)
        hints.append(f"the file reads as one column {header[0][:60]!r}: is the separator {sep!r}? pass --sep {sep!r}")
    folded = {h.strip().lower(): h for h in header}
    by_case = {c: folded[c.strip().lower()] for c in missing_cols if c.strip().lower() in folded}
    if by_case:
        pairs = ", ".join(f"{have!r} for {want!r}" for want, have in list(by_case.items())[:5])
        hints.append(f"column names match only ignoring case or spaces ({pairs}): rename them as in training")
    said = "; ".join(hints)
    raise DataError(
        f"{source}: missing column(s) {missing_cols}; the model was trained on columns {columns}"
        + (f"; {said}" if said else f"; the file's columns are {header}")
    )


def readers_other_separator(header: list[str]) -> str | None:
    """The separator a one-column header holds (``;``, tab or ``|``), else None."""
    if len(header) != 1:
        return None
    return next((sep for sep in (";", "\t", "|", ",") if sep in header[0]), None)


def header_note(source: str, header: list[str]) -> str | None:
    """A warning when at least half the column names are numbers: the file may have no header row, so
    its first data row was taken as names (and is not trained on).

    Example:
        >>> header_note("x.csv", ["47", "10", "80.73", "Yes"])[:40]
        'x.csv:1: 3 of the 4 column names are num'
        >>> header_note("x.csv", ["age", "2020"]) is None
        True
    """
    values = [_as_float(h) for h in header]
    numbers = sum(1 for v in values if v is not None)
    fractions = sum(1 for v in values if v is not None and math.isfinite(v) and not v.is_integer())
    # at least half the names are numbers (and more than one), or a name is a number with a fraction
    # ("80.73": a year such as "2020" can name a column, a measurement cannot)
    if not (numbers >= 2 and numbers * 2 >= len(header)) and not fractions:
        return None
    return (
        f"{source}:1: {numbers} of the {len(header)} column names are numbers ({', '.join(header[:5])}"
        f"{', ...' if len(header) > 5 else ''}): the file may have no header row, in which case its first "
        "data row was taken as column names and is not trained on; add a header line naming the columns, or "
        "pass --no-header (header = false in a config file) to read the first line as data, with the columns "
        "named col_0, col_1, ..."
    )


def empty_columns_note(source: str, empty: list[str], missing: str) -> str:
    """The warning for feature columns with no value at all (every cell missing), which are left out."""
    return (
        f"{source}: column(s) {empty} have no values (every cell is missing): left out, as scikit-learn's "
        f"SimpleImputer does (--missing {missing} has nothing to fill them from); predict ignores them"
    )


def no_features_error(source: str) -> DataError:
    return DataError(f"{source}: no feature column has any value (every cell is missing)")


def missing_by_column(counts: dict[str, int]) -> str:
    """Which columns held the missing values that made rows be dropped, most first.

    Example:
        >>> missing_by_column({"a": 0, "b": 12, "c": 3})
        " (missing in column 'b': 12 rows, 'c': 3 rows)"
    """
    ranked = sorted(((n, c) for c, n in counts.items() if n), key=lambda t: -t[0])
    if not ranked:
        return ""
    parts = [f"{c!r}: {n} row{'s' if n != 1 else ''}" for n, c in ranked[:8]]
    return f" (missing in column {', '.join(parts)}{', ...' if len(ranked) > 8 else ''})"


def _too_many_categories(
    source: str, col: str, n_distinct: int, n_values: int, values: list[str] | None = None, n_rows: int | None = None
) -> DataError:
    """The error for a text column too varied to one-hot encode (an id or free text); for numbers written
    with commas, the advice is the number-format flags. ``n_rows``: the table's rows (the one-hot block has
    one row per table row, however many cells are empty), when more than the ``n_values`` present cells."""
    if values is not None and _comma_numbers(values):
        return DataError(
            f"{source}: column {col!r} holds numbers written with commas ({values[0]!r}, ...) that are not read as "
            f"numbers; say how numbers are written with --thousands ',' (for 1,200) or --decimal ',' (for 2,75; "
            f"with --sep ';'), or leave the column out with --drop {shlex.quote(col)}"
        )
    # numbers with units come first: raising --max-categories would make each measurement a category
    hint = _unit_hint(col, values or []) or _value_kind_hint(col, values or [])
    if hint:
        return DataError(
            f"{source}: column {col!r} is text with {n_distinct} distinct values in {n_values} rows: {hint}"
        )
    rows = max(n_values, n_rows or 0)
    size = rows * n_distinct * 4
    where = f"{n_values} rows" if rows == n_values else f"the {n_values} non-empty cells of {rows} rows"
    return DataError(
        f"{source}: column {col!r} is text with {n_distinct} distinct values in {where} "
        f"(an id or free text?); one-hot encoding would make {n_distinct} features ({rows} x {n_distinct} x 4 "
        f"bytes = {_size(size)} for this column alone, and training keeps several copies). Leave it out with "
        f"--drop {shlex.quote(col)} (or allow it with --max-categories {n_distinct}, if that memory is available)"
    )


_DIGITS = re.compile(r"^\d+$")
# a cell of digits and number marks only ('1,95', '1.2.3'): a number mistyped, not a word
_DIGITS_AND_MARKS = re.compile(r"^[+-]?\d[\d.,'_ \u00a0\u202f]*$")


def leading_zero_code(values: list[str]) -> str | None:
    """A cell with a leading zero (``'02134'``) of a column whose present cells are all digit strings, some
    written with leading zeros: codes (zip codes, account numbers), not amounts; else None. Nobody writes
    an amount as 02134, and read as a number the code 02134 would be one point on a line with 99501.

    Example:
        >>> leading_zero_code(["02134", "90210", "00501"]), leading_zero_code(["0", "12"]), leading_zero_code(["01.5"])
        ('02134', None, None)
    """
    cells = [v.strip() for v in values]
    if not cells or not all(_DIGITS.match(v) for v in cells):
        return None
    return next((v for v in cells if len(v) > 1 and v[0] == "0"), None)


def codes_note(source: str, col: str, example: str, n_distinct: int) -> str:
    """The note for a column of digit codes with leading zeros, read as categories."""
    return (
        f"{source}: column {col!r} holds digit codes with leading zeros ({example!r}, ...; {n_distinct} distinct "
        f"values), codes rather than amounts: one-hot encoded as categories; --numeric {shlex.quote(col)} reads "
        "them as numbers"
    )


def codes_error(source: str, col: str, example: str, n_distinct: int, n_values: int) -> DataError:
    """The refusal of a column of digit codes with leading zeros with too many values to one-hot encode."""
    return DataError(
        f"{source}: column {col!r} holds digit codes with leading zeros ({example!r}, ...), codes rather than "
        f"amounts, with {n_distinct} distinct values in {n_values} rows: too many to one-hot encode (an id?); leave "
        f"it out with --drop {shlex.quote(col)}, allow it with --max-categories {n_distinct} if that memory is "
        f"available, or read it as numbers with --numeric {shlex.quote(col)}"
    )


def check_numeric(numeric: list[str] | None, categorical: list[str] | None, columns: list[str]) -> set[str]:
    """The columns ``numeric`` forces to be read as numbers (digit codes with leading zeros included); a name
    that is not a feature, or that ``categorical`` names too, is a one-line error."""
    forced = {c.strip() for c in (numeric or []) if c.strip()}
    unknown = sorted(forced - set(columns))
    if unknown:
        raise ConfigError(f"read_csv: numeric column(s) {unknown} not in the file's features {columns}")
    both = sorted(forced & set(categorical or []))
    if both:
        raise ConfigError(f"read_csv: column(s) {both} are named both categorical and numeric; choose one")
    return forced


def check_numeric_read(source: str, numeric: list[str] | None, categories: Mapping[str, list[str]]) -> None:
    """Refuse a column ``numeric`` (``--numeric``) names that holds text: it forces digit codes (``'02134'``) to
    be read as numbers, and a column of words cannot be; one-hot encoding it while the run records it as
    numeric would ignore the setting silently. ``categories`` are the reader's one-hot columns; the error names
    the column and a few of its words.

    Example:
        >>> check_numeric_read("t.csv", ["color"], {"color": ["blue", "red"]})
        Traceback (most recent call last):
        ...
        downslope.errors.ConfigError: t.csv: --numeric names column 'color', which holds text ('blue', 'red'; 2 of its 2 distinct values are not numbers), not numbers or digit codes: leave it out of --numeric to one-hot encode it, or leave the column out with --drop color
    """
    for col in dict.fromkeys(c.strip() for c in numeric or []):
        if col not in categories:
            continue
        distinct = [v for v in categories[col] if v != FILL_TEXT]
        words = [v for v in distinct if _as_float(v) is None]
        if not words:
            continue
        shown = ", ".join(repr(v) for v in words[:3]) + (", ..." if len(words) > 3 else "")
        raise ConfigError(
            f"{source}: --numeric names column {col!r}, which holds text ({shown}; {len(words)} of its "
            f"{len(distinct)} distinct values are not numbers), not numbers or digit codes: leave it out of "
            f"--numeric to one-hot encode it, or leave the column out with --drop {shlex.quote(col)}"
        )


def not_categories_error(source: str, col: str, distinct: list[str], n_values: int) -> DataError | None:
    """The refusal of a text column that holds no categories, whatever its number of values: dates or
    timestamps (:func:`_dates_error`), or numbers written as text: money (``$1,250.00``), accounting
    negatives (``(1,234.00)``), digits grouped by spaces (``1 234``) or with commas that are neither all
    thousands separators nor read as decimal marks. One-hot, each such value would be a category of its
    own; a column with more values than ``--max-categories`` gets the same advice. None for other columns.

    Example:
        >>> print(not_categories_error("r.csv", "rent", ["$1,250.00", "$900.00"], 50))  # doctest: +ELLIPSIS
        r.csv: column 'rent' is text with 2 distinct values in 50 rows: the values look like money amounts ...
        >>> not_categories_error("r.csv", "kind", ["a", "b"], 50) is None
        True
    """
    dates = _dates_error(source, col, distinct, n_values)
    if dates is not None:
        return dates
    times = _times_error(source, col, distinct, n_values)
    if times is not None:
        return times
    unit = _unit_hint(col, distinct)
    if unit:  # numbers with a unit the reader could not strip
        return DataError(
            f"{source}: column {col!r} is text with {len(distinct)} distinct values in {n_values} rows: {unit}"
        )
    sample = [v.strip() for v in distinct[:2000] if v.strip()]
    odd = [v for v in sample if _as_float(v) is None]
    written = (_MONEY, _PAREN_NEGATIVE, _SPACED, _THOUSANDS_COMMA, _DECIMAL_COMMA, _COMMA_DECIMAL_NUMBER)
    if not odd or sum(1 for v in odd if any(p.match(v) for p in written)) * 10 < 9 * len(odd):
        return None
    # the advice for the kind of the values that are not plain numbers ("250" beside "1 234" is no hint)
    hint = _value_kind_hint(col, odd)
    if not hint and _comma_numbers(odd):
        hint = _ambiguous_commas_advice(col, odd[0])
    if not hint:
        return None
    return DataError(
        f"{source}: column {col!r} is text with {len(distinct)} distinct values in {n_values} rows: {hint}"
    )


def _ambiguous_commas_advice(col: str, example: str) -> str:
    """Advice for numbers whose commas may be thousands separators or decimal marks (``1,200`` beside ``3,5``)."""
    return (
        f"the values look like numbers written with commas ({example!r}, ...) that could be thousands separators "
        "(1,200 is 1200) or decimal commas (3,5 is 3.5), and are not all written one way; say which with "
        "--thousands ',' or --decimal ',' (a file with decimal commas is usually separated by ';': --sep ';'), "
        f"or leave the column out with --drop {shlex.quote(col)}"
    )


def ambiguous_commas_error(source: str, col: str, values: list[str], delimiter: str) -> DataError | None:
    """The refusal of a column of numbers written with commas whose meaning no rule settles: outside a
    ``;``-separated file commas are thousands separators, and some of these (``3,5``) are not grouped in
    threes. None when the column is not such (or the file is ``;``-separated: commas are decimal marks).

    Example:
        >>> print(ambiguous_commas_error("a.csv", "x", ["1,200", "3,5", "250"], ","))  # doctest: +ELLIPSIS
        a.csv: column 'x' holds numbers written with commas ('3,5', ...) that could be thousands separators ...
        >>> ambiguous_commas_error("a.csv", "x", ["1,200", "250"], ",") is None
        True
    """
    if delimiter == ";":
        return None
    odd = [v.strip() for v in values if _as_float(v) is None]
    if not odd or not all(_THOUSANDS_COMMA.match(v) or _DECIMAL_COMMA.match(v) for v in odd):
        return None
    ungrouped = next((v for v in odd if not _THOUSANDS_COMMA.match(v)), None)
    if ungrouped is None:
        return None
    advice = _ambiguous_commas_advice(col, ungrouped)
    return DataError(f"{source}: column {col!r} holds{advice[len('the values look like') :]}")


def _mostly_matching(distinct: list[str], pattern: re.Pattern[str]) -> list[str] | None:
    """The first 2000 non-empty values of ``distinct`` (stripped, sorted) when at least 9 in 10 of them match
    ``pattern`` (dates, times of day); None otherwise."""
    sample = sorted(v.strip() for v in distinct if v.strip())[:2000]
    if not sample or sum(1 for v in sample if pattern.match(v)) * 10 < 9 * len(sample):
        return None
    return sample


def _dates_error(source: str, col: str, distinct: list[str], n_values: int) -> DataError | None:
    """The refusal of a text column whose values look like dates or timestamps (most of them), whatever
    their number: one-hot, each date is a category of its own, which says nothing about a date the
    training rows did not hold (every new date is unseen); None for other columns.

    Example:
        >>> print(_dates_error("d.csv", "day", ["2024-01-02", "2024-01-03"], 50))  # doctest: +ELLIPSIS
        d.csv: column 'day' holds dates or timestamps ('2024-01-02', ...; 2 distinct values in 50 rows), ...
        >>> _dates_error("d.csv", "kind", ["a", "b"], 50) is None
        True
    """
    sample = _mostly_matching(distinct, _DATE)
    if sample is None:
        return None
    # quarters ('2015Q1') are periods: year and quarter numbers (or 2015.0, 2015.25, ...) say what they mean
    how = (
        "year and quarter columns (2015 and 1 for '2015Q1'), or the year plus (quarter - 1) / 4"
        if _QUARTER_ONLY.match(sample[0].strip())
        else "days since a reference date, or year, month and weekday columns"
    )
    return DataError(
        f"{source}: column {col!r} holds dates or timestamps ({sample[0]!r}, ...; {len(distinct)} distinct values in "
        f"{n_values} rows), not categories: one-hot encoded, each date would be a category of its own, and a "
        f"date the training rows did not hold would be unknown; convert the column to numbers in the file (e.g. "
        f"{how}) or leave it out with --drop {shlex.quote(col)}"
    )


_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([ap]\.?m\.?)?$", re.IGNORECASE)


def _times_advice(col: str, example: str) -> str:
    return (
        f"the values look like times of day ({example!r}), not categories: one-hot encoded, each time would be a "
        "category of its own, unrelated to its neighbours, and a time the training rows did not hold would be "
        "unknown; convert the column to numbers in the file (hours since midnight: 8.5 for 08:30), leave it out "
        f"with --drop {shlex.quote(col)}, or keep it as categories with --categorical {shlex.quote(col)}"
    )


def _times_error(source: str, col: str, distinct: list[str], n_values: int) -> DataError | None:
    """The refusal of a text column whose values (most of them) are times of day (``08:00``, ``17:45:10``);
    None for other columns.

    Example:
        >>> print(_times_error("t.csv", "pickup", ["08:00", "17:30"], 50))  # doctest: +ELLIPSIS
        t.csv: column 'pickup' is text with 2 distinct values in 50 rows: the values look like times of day ('08:00')...
        >>> _times_error("t.csv", "kind", ["a", "b"], 50) is None
        True
    """
    sample = _mostly_matching(distinct, _TIME_OF_DAY)
    if sample is None:
        return None
    return DataError(
        f"{source}: column {col!r} is text with {len(distinct)} distinct values in {n_values} rows: "
        f"{_times_advice(col, sample[0])}"
    )


def refused_columns_error(source: str, refused: list[tuple[str, DataError]]) -> DataError:
    """One error for every text column refused (too many categories, dates): all of them at once, so a
    file with several such columns is fixed in one go; one column's error is its own.

    Example:
        >>> e = refused_columns_error("d.csv", [("a", DataError("d.csv: column 'a' x")), ("b", DataError("d.csv: column 'b' y"))])
        >>> print(e)
        d.csv: 2 text columns cannot be one-hot encoded: column 'a' x | column 'b' y | to leave them all out: --drop a,b
    """
    if len(refused) == 1:
        return refused[0][1]
    prefix = f"{source}: "
    parts = [str(e)[len(prefix) :] if str(e).startswith(prefix) else str(e) for _, e in refused]
    names = ",".join(col for col, _ in refused)
    return DataError(
        f"{source}: {len(refused)} text columns cannot be one-hot encoded: {' | '.join(parts)} | to leave them all "
        f"out: --drop {shlex.quote(names)}"
    )


def _size(n: float) -> str:
    """Bytes in words: MiB or GiB (powers of 1024, as they are named).

    Example:
        >>> _size(1.6e9), _size(3 * 2**20)
        ('1.5 GiB', '3.0 MiB')
    """
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


_MONTH = r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?)\.?"
_DAY = r"\d{1,2}(st|nd|rd|th)?"
_TIME = r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([ap]m)?)?(\s*(z|[+-]\d{2}:?\d{2}|utc|gmt))?"
# numeric (2024-01-05, 05/01/2024, 5.1.24), ISO year-month (2024-03), and with month names: "Jan 5, 2024",
# "5 January 2024", "05-Jan-24", "Mon, 5 Jan 2024 10:00:00 +0000" (RFC 2822), "Jan 2024"; each with an
# optional time and time zone
_NUMERIC_DATE = r"(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
_NAMED_DATE = (
    rf"((mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    rf"({_MONTH}[\s-]+{_DAY},?[\s-]+\d{{2,4}}|{_DAY}[\s-]+{_MONTH},?[\s-]+\d{{2,4}})"
)
# quarters as pandas writes a Period ("2015Q1") and as people do ("2015-Q1", "Q1 2015", "Q1-15")
_QUARTER = r"(\d{4}[\s-]?q[1-4]|q[1-4][\s-]?(\d{4}|\d{2}))"
_DATE = re.compile(
    rf"^({_NUMERIC_DATE}{_TIME}|\d{{4}}-(0[1-9]|1[0-2])|{_NAMED_DATE}{_TIME}|{_MONTH}[\s,-]+\d{{4}}|{_QUARTER})$",
    re.IGNORECASE,
)
_QUARTER_ONLY = re.compile(rf"^{_QUARTER}$", re.IGNORECASE)
_MONEY = re.compile(r"^\(?[-+]?\s*[$€£¥₹]\s*[-+]?[\d.,\s\u00a0]+\)?$|^\(?[-+]?[\d.,\s\u00a0]+\s*[$€£¥₹]\)?$")
_COMMA_DECIMAL_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+(,\d+)?|\d+,\d+)$")
_PAREN_NEGATIVE = re.compile(r"^\(\s*[\d][\d.,]*\s*\)$")
_SPACED = re.compile(r"^[+-]?\d{1,3}([ \u00a0\u202f]\d{3})+([.,]\d+)?$")


def _value_kind_hint(col: str, values: list[str]) -> str:
    """Advice for a text column whose values (most of a sample) look like dates, money, accounting
    negatives or numbers grouped with spaces: what to do instead of raising --max-categories."""
    sample = [v.strip() for v in values[:2000] if v.strip()]
    if not sample:
        return ""

    def most(pattern: re.Pattern[str]) -> bool:
        return sum(1 for v in sample if pattern.match(v)) * 10 >= 9 * len(sample)

    example = sample[0]
    if most(_TIME_OF_DAY):
        return _times_advice(col, example)
    if most(_DATE):
        return (
            f"the values look like dates or timestamps ({example!r}), not categories; convert the column to "
            "numbers in the file (e.g. days since a reference date, or year, month and weekday columns) or leave "
            f"it out with --drop {shlex.quote(col)}"
        )
    if most(_MONEY):
        digits = re.sub(r"[^\d.,]", "", example)
        decimal_comma = _COMMA_DECIMAL_NUMBER.match(digits) and not _THOUSANDS_COMMA.match(digits)
        flags = "--decimal ',' --thousands '.' for 1.990,50" if decimal_comma else "--thousands ',' for 1,990.50"
        return (
            f"the values look like money amounts ({example!r}), not categories; strip the currency sign in the "
            "file (and write a negative amount in parentheses as -1234.00) so the column is read as numbers "
            f"(with {flags}), or leave it out with --drop {shlex.quote(col)}"
        )
    plain = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?$")
    if any(_PAREN_NEGATIVE.match(v) for v in sample) and sum(
        1 for v in sample if _PAREN_NEGATIVE.match(v) or plain.match(v)
    ) * 10 >= 9 * len(sample):
        return (
            f"the values look like accounting negatives ({example!r}), not categories; write them as negative "
            f"numbers in the file (-1234.00 for (1,234.00)) so the column is read as numbers, or leave it out with "
            f"--drop {shlex.quote(col)}"
        )
    if most(_COMMA_DECIMAL_NUMBER) and any("." in v for v in sample):  # German, Italian...: 110.833,84
        return (
            f"the values look like numbers written with '.' grouping thousands and a decimal comma ({example!r}), "
            f"not categories; pass --thousands . --decimal , to read them as numbers, or leave the column out "
            f"with --drop {shlex.quote(col)}"
        )
    if most(_SPACED):
        comma = any("," in v for v in sample)
        return (
            f"the values look like numbers grouped by spaces ({example!r}), not categories; pass --thousands ' '"
            + (" --decimal ','" if comma else "")
            + f" to read them as numbers, or leave the column out with --drop {shlex.quote(col)}"
        )
    return ""


def target_format_hint(values: list[str]) -> str:
    """Advice for a target column whose values (most of a sample) are numbers written as money
    (``$107,852.87``), accounting negatives or with space-grouped digits, which are read as text: the
    advice a feature column of such values gets, for the target. '' when they look like none of these.

    Example:
        >>> "money amounts" in target_format_hint(["$107,852.87", "$157,200.12"])
        True
        >>> target_format_hint(["cat", "dog"])
        ''
    """
    sample = [v.strip() for v in values[:2000] if v.strip()]
    if not sample:
        return ""

    def most(pattern: re.Pattern[str]) -> bool:
        return sum(1 for v in sample if pattern.match(v)) * 10 >= 9 * len(sample)

    example = sample[0]
    if most(_MONEY):
        return (
            f"the values look like money amounts ({example!r}), read as text: strip the currency sign in the file "
            "(and write a negative amount in parentheses as -1234.00) so the target is read as numbers (1,990.50 "
            "is read with --thousands ',', or on its own when the whole column is written so)"
        )
    plain = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?$")
    if any(_PAREN_NEGATIVE.match(v) for v in sample) and sum(
        1 for v in sample if _PAREN_NEGATIVE.match(v) or plain.match(v)
    ) * 10 >= 9 * len(sample):
        return (
            f"the values look like accounting negatives ({example!r}), read as text: write them as negative "
            "numbers in the file (-1234.00 for (1,234.00)) so the target is read as numbers"
        )
    if most(_COMMA_DECIMAL_NUMBER):  # German, French...: 340.824,30 or 2,75
        dotted = any("." in v for v in sample)
        return (
            f"the values look like numbers written with a decimal comma ({example!r}): pass --decimal ','"
            + (" --thousands '.'" if dotted else "")
            + " to read the target as numbers"
        )
    if most(_THOUSANDS_COMMA):
        return (
            f"the values look like numbers with thousands commas ({example!r}): pass --thousands ',' to read the "
            "target as numbers"
        )
    if most(_SPACED):
        comma = any("," in v for v in sample)
        return (
            f"the values look like numbers grouped by spaces ({example!r}): pass --thousands ' '"
            + (" --decimal ','" if comma else "")
            + " to read the target as numbers"
        )
    return ""


def memory_available() -> int | None:
    """Bytes this process may still allocate: the smaller of the system's available memory and the
    address-space limit (``ulimit -v``), or None when neither is known."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            used = 0
            try:
                with open("/proc/self/status") as handle:
                    used = next((int(x.split()[1]) * 1024 for x in handle if x.startswith("VmSize:")), 0)
            except (OSError, ValueError):
                pass
            found.append(max(0, int(soft) - used))  # what this process may still map
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


# Training holds the feature matrix several times (the file's, the splits, filled and standardized
# copies, and float64 statistics of the training split): about 8 float32 copies at the peak.
COPIES = 8


def check_one_hot_memory(source: str, n_rows: int, n_numeric: int, categories: dict[str, list[str]]) -> None:
    """Refuse, with the sizes, a feature matrix (float32, one-hot blocks included) whose copies would not
    fit in the memory available, instead of failing later with a raw MemoryError."""
    width = n_numeric + sum(len(v) for v in categories.values())
    size = n_rows * width * 4
    available = memory_available()
    if available is None or size * COPIES <= available:
        return
    one_hot = width - n_numeric
    if one_hot * 2 > width:  # the one-hot blocks are most of it: dropping or capping them is the fix
        widest = sorted(categories.items(), key=lambda kv: -len(kv[1]))[:3]
        names = ", ".join(f"{c!r} ({len(v)} categories)" for c, v in widest)
        advice = f"leave out the widest one-hot column(s) with --drop (widest: {names}) or lower --max-categories"
    else:
        advice = (
            "train on fewer rows or columns (--drop), save the features as a .npy file (memory-mapped when "
            "read), or use a machine with more memory"
        )
    raise DataError(
        f"{source}: the features would be a {n_rows} x {width} float32 matrix ({n_rows} x {width} x 4 bytes = "
        f"{_size(size)}; training keeps about {COPIES} copies, {_size(size * COPIES)}), more than the "
        f"{_size(available)} of memory available; {advice}"
    )


# A classification target is suspicious when it has many classes for its rows: more than 20 classes
# with fewer than 5 rows per class on average (after the split, about 3 training rows per class: a
# classifier cannot learn them, and accuracy near 0 would be reported as a result). An inferred task is
# refused; --task classification given explicitly is warned about. Values that are numbers followed by
# a unit ("79.3 kg") are named as such: the fix is to strip the unit (or --task regression).
MANY_CLASSES = 20
ROWS_PER_CLASS = 5
_WITH_UNIT = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?\s*([A-Za-z°µ%$€£/][A-Za-z°µ%²³/.\d]*)$")


def unit_suffix(values: list[str]) -> str | None:
    """The unit most of ``values`` are written with after a number (``"79.3 kg"`` -> ``'kg'``), else None.

    Example:
        >>> unit_suffix(["79.3 kg", "80 kg", "n/a"]), unit_suffix(["cat", "dog"])
        ('kg', None)
    """
    units = [m.group(4) for m in (_WITH_UNIT.match(v.strip()) for v in values) if m]
    if not units or len(units) * 2 <= len(values):
        return None
    return max(sorted(set(units)), key=units.count)  # ties: the first in sorted order, the same every run


_NOT_UNITS = re.compile(rf"^([ap]\.?m\.?|{_MONTH}|(st|nd|rd|th)|q[1-4])$", re.IGNORECASE)


def unit_column(values: list[str]) -> str | None:
    """The unit every one of ``values`` is written with after a number in Python's syntax (``"72 kg"``,
    ``"1.5km"``), the same for all, else None: such a column is read as numbers. Currency signs and percent
    signs are not units here (money is refused with advice; ``12%`` is Excel's, read by the number rules).

    Example:
        >>> unit_column(["72 kg", "80.5 kg"]), unit_column(["72 kg", "80 lb"]), unit_column(["01/03/2024"])
        ('kg', None, None)
    """
    units = set()
    for v in values:
        match = _WITH_UNIT.match(v.strip())
        if match is None or _as_float(v.strip()[: match.start(4)].strip()) is None:
            return None
        units.add(match.group(4))
        if len(units) > 1:
            return None
    unit = units.pop() if units else None
    # a unit is a word ('kg', 'km/h', '°C'): not a currency or percent sign, nor the rest of a date ('/03/2024')
    # or of a time or date in words ('10 am', '5 Jan')
    return unit if unit is not None and _is_unit_word(unit) else None


def _unit_hint(col: str, values: list[str]) -> str:
    """Advice for a text column whose values are mostly numbers written with a unit the reader could not
    strip (several units, as ``'72 kg'`` beside ``'160 lb'``), naming the units; '' for other columns.

    Example:
        >>> print(_unit_hint("w", ["72 kg", "160 lb", "80 kg"]))  # doctest: +ELLIPSIS
        the values look like numbers with the units 'kg', 'lb' ('72 kg', ...), not categories; write them as ...
        >>> _unit_hint("w", ["red", "blue"])
        ''
    """
    unit = unit_suffix(values)
    if unit is None or not _is_unit_word(unit):
        return ""
    found = sorted({m.group(4) for m in (_WITH_UNIT.match(v.strip()) for v in values) if m} - {unit})
    others = [u for u in found if _is_unit_word(u)][:4]
    named = f"the units {', '.join(repr(u) for u in sorted([unit, *others]))}" if others else f"the unit {unit!r}"
    example = next(v.strip() for v in values if _WITH_UNIT.match(v.strip()))
    return (
        f"the values look like numbers with {named} ({example!r}, ...), not categories; write them as plain "
        f"numbers in one unit (72 for '72 kg'), or leave the column out with --drop {shlex.quote(col)}"
    )


def _is_unit_word(unit: str) -> bool:
    return (unit[0].isalpha() or unit[0] in "°µ") and not _NOT_UNITS.match(unit)


def strip_unit(value: str, unit: str) -> str:
    """``value`` without the ``unit`` written after its number (``"72 kg"`` -> ``"72"``); other cells as
    they are (a number written without the unit is that number; anything else is reported as it was).

    Example:
        >>> strip_unit("72 kg", "kg"), strip_unit("72", "kg"), strip_unit("72 lb", "kg")
        ('72', '72', '72 lb')
    """
    text = value.strip()
    if text.endswith(unit) and _as_float(text[: -len(unit)].strip()) is not None:
        return text[: -len(unit)].strip()
    return value


def unit_note(source: str, col: str, unit: str, example: str) -> str:
    """The note for a feature column of numbers written with a unit, read as numbers."""
    return (
        f"{source}: column {col!r} holds numbers with the unit {unit!r} ({example!r}, ...): read as numbers "
        f"(the unit stripped; new data may write the numbers with or without it)"
    )


def many_classes_problem(classes: list[str], n_rows: int) -> str | None:
    """What is wrong with a classification target of ``classes`` over ``n_rows`` rows (by the rule above),
    else None.

    Example:
        >>> many_classes_problem([f"{70 + i / 10:.1f} kg" for i in range(476)], 2000)[:52]
        '476 classes in 2000 rows (4.2 rows per class on aver'
        >>> many_classes_problem(["a", "b"], 10) is None
        True
    """
    k = len(classes)
    if k <= MANY_CLASSES or n_rows >= ROWS_PER_CLASS * k:
        return None
    said = (
        f"{k} classes in {n_rows} rows ({n_rows / k:.1f} rows per class on average; a classifier needs at least "
        f"{ROWS_PER_CLASS} per class to learn anything)"
    )
    unit = unit_suffix(classes)
    written = target_format_hint(classes)
    if written:
        said += f"; {written}"
    elif unit is not None:
        said += (
            f"; the values are numbers followed by a unit ({classes[0]!r}, ...: {unit!r}), read as text: strip the "
            f"unit in the file (e.g. write 79.3 for '79.3 kg') so the column is numeric and read as a regression"
        )
    else:
        said += "; is this column an id or a measurement? for numbers, pass --task regression"
    return said


# A spreadsheet's footer: a last row labelled "Total" (or "Sum", "Grand total", ...) as its only text, or
# whose target is the sum of all the other rows' targets. Only the last row is looked at, and it is left
# out of training with a warning (a sum as a training row pulls a regression far off).
_TOTAL = re.compile(r"^(grand\s+|sub-?)?(totals?|sum|summe|somme|total général)\s*:?$", re.IGNORECASE)


TOTAL_MIN_ROWS = 10  # the sum rule needs this many other rows (0.5 + 1.7 = 2.2 is a coincidence)


def total_row_reason(cells: list[str], t_idx: int, others: np.ndarray | None) -> str | None:
    """Why the last row ``cells`` looks like a totals row, else None; ``others`` are the other rows'
    targets as numbers (None when some is not a number).

    Example:
        >>> total_row_reason(["", "", "Total", "60"], 3, np.array([10.0, 20.0, 30.0]))
        "its only text is 'Total'"
        >>> total_row_reason(["1", "2", "B", "550"], 3, np.arange(1.0, 11.0) * 10)
        "its target 550 is the sum of the other rows' targets"
        >>> total_row_reason(["1", "2", "B", "60"], 3, np.array([10.0, 20.0, 30.0])) is None
        True
    """
    texts = [v.strip() for j, v in enumerate(cells) if j != t_idx and not _is_missing(v) and _as_float(v) is None]
    if len(texts) == 1 and _TOTAL.match(texts[0]):
        return f"its only text is {texts[0]!r}"
    if t_idx >= len(cells) or others is None or len(others) < TOTAL_MIN_ROWS:
        return None
    t = _as_float(cells[t_idx])
    if t is None or not math.isfinite(t):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.sum(others, dtype=np.float64))
        biggest = float(np.max(np.abs(others)))
    if math.isfinite(total) and abs(t) > biggest and abs(t - total) <= 1e-6 * max(1.0, abs(total)):
        return f"its target {cells[t_idx].strip()} is the sum of the other rows' targets"
    return None


def total_row_note(source: str, line: int, reason: str) -> str:
    return (
        f"{source}:{line}: the last row looks like a totals row ({reason}): left out of training; "
        "remove it from the file to silence this warning"
    )
