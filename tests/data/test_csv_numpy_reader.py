"""Without pyarrow, a CSV is parsed by NumPy's C parser (``np.loadtxt``) and read column by column, with the
same results and errors as the row-by-row reader (Python's csv module): each file here is read both ways (and
by pyarrow where installed) and the tables, encoders, notes or error messages compared. Files the NumPy parser
could read otherwise (quoted fields, digit codes with leading zeros, other separators) go to the row-by-row
reader. The last row (a totals row?) is read from the end of the file, without a scan of the rows before it."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from downslope.data import csvfile, readers
from downslope.data.tabular import read_csv
from downslope.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]


def outcome(path: Path, how: str, **options: object) -> tuple[object, ...]:
    """``how``: 'numpy' (NumPy's parser), 'rows' (the row-by-row reader) or 'arrow'."""
    saved = readers.FAST_CSV, readers.NUMPY_CSV
    readers.FAST_CSV, readers.NUMPY_CSV = how == "arrow", how == "numpy"
    try:
        table, encoder = read_csv(path, **options)  # type: ignore[arg-type]
    except (DataError, ConfigError) as exc:
        return ("error", type(exc).__name__, str(exc))
    finally:
        readers.FAST_CSV, readers.NUMPY_CSV = saved
    lines = table.line_of(list(range(len(table.X))))
    return ("table", table.X, table.y, encoder.state_dict(), table.task, table.task_reason, table.notes, lines)


def assert_same(path: Path, **options: object) -> tuple[object, ...]:
    ours = outcome(path, "numpy", **options)
    peers = [outcome(path, "rows", **options)]
    if readers.importlib.util.find_spec("pyarrow") is not None:
        peers.append(outcome(path, "arrow", **options))
    for peer in peers:
        assert ours[0] == peer[0], f"numpy: {ours[:3]}\nother: {peer[:3]}"
        if ours[0] == "error":
            assert ours == peer
        else:
            np.testing.assert_array_equal(ours[1], peer[1])
            assert ours[1].dtype == peer[1].dtype and ours[2].dtype == peer[2].dtype  # type: ignore[union-attr]
            np.testing.assert_array_equal(ours[2], peer[2])
            assert ours[3:] == peer[3:]
    return ours


@pytest.fixture
def no_row_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The row-by-row reader refuses to run: a file read here went through NumPy's parser."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("read by the row-by-row reader")

    monkeypatch.setattr(readers, "FAST_CSV", False)
    monkeypatch.setattr(readers, "NUMPY_CSV", True)
    monkeypatch.setattr(csvfile, "read_rows", refuse)


def test_numbers_missing_values_and_categories_are_read_by_numpys_parser(tmp_path: Path, no_row_reader: None) -> None:
    path = tmp_path / "t.csv"
    rows = ["x,z,colour,y"]
    for i in range(60):
        x = "NA" if i % 7 == 3 else ("" if i % 11 == 5 else f"{i * 0.25 - 3:.2f}")
        rows.append(f"{x}, {i % 5} ,{['red', 'green', 'blue'][i % 3]},{i * 0.5}")
    path.write_text("\n".join(rows) + "\n")
    table, encoder = read_csv(path, missing="mean")
    assert encoder.categories == {"colour": ["blue", "green", "red"]}
    assert table.X.shape == (60, 5) and table.task == "regression"
    np.testing.assert_array_equal(table.y[:, 0], np.arange(60) * 0.5)
    assert np.isnan(table.X[3, 0]) and np.isnan(table.X[5, 0]) and table.X[0, 0] == -3.0
    np.testing.assert_array_equal(table.X[:5, 1], [0, 1, 2, 3, 4])


def test_a_file_of_numbers_only_is_read_straight_to_floats(tmp_path: Path, no_row_reader: None) -> None:
    path = tmp_path / "t.csv"
    values = np.random.default_rng(0).standard_normal((50, 3))
    np.savetxt(path, values, delimiter=",", header="a,b,y", comments="", fmt="%.17g")
    table, _ = read_csv(path)
    np.testing.assert_array_equal(table.y[:, 0], values[:, 2])
    np.testing.assert_array_equal(table.X, values[:, :2].astype(np.float32))


TRICKY = [
    *("1", "-2.5", " 3 ", "1_000", "+.5", "5.", "1e5", "1e400", "-inf", "infinity", "-nan", "nan", "NaN", "NA"),
    *("", "  ", "n/a", "NULL", "None", "?", "(blank)", "#N/A", "\u00a07", "1\x1c", "\u0661\u0662", "0.5", "-0"),
    *("red", "x y", "yes", "no", "TRUE", "\u00e9t\u00e9", "1.#IND", "#DIV/0!", "12%", "'12", "-", "3 kg"),
]


@st.composite
def tricky_csvs(draw: st.DrawFn) -> str:
    n_cols = draw(st.integers(1, 4))
    cell = st.one_of(st.sampled_from(TRICKY), st.floats(width=32).map(repr), st.integers(-3, 3).map(str))
    rows = draw(st.lists(st.lists(cell, min_size=n_cols, max_size=n_cols), min_size=1, max_size=12))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    header = sep.join(["a", "b", "c", "y"][-n_cols:])
    lines = [header] + [sep.join(r) for r in rows]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), "")  # a blank line on the way
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))


FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
TRICKY_FILES = {"text": tricky_csvs(), "missing": st.sampled_from(["error", "drop", "mean", "most_frequent"])}


def tricky_file_reads_the_same(tmp_path: Path, text: str, missing: str) -> None:
    path = tmp_path / ("t.tsv" if "\t" in text.splitlines()[0] else "t.csv")
    path.write_bytes(text.replace("\r\n", "\n").encode("utf-8"))
    delimiter = ";" if ";" in text.splitlines()[0] else ","
    assert_same(path, missing=missing, delimiter=delimiter)


@settings(max_examples=40, **FUZZ)
@given(**TRICKY_FILES)
def test_numpys_parser_reads_tricky_cells_as_the_row_reader(tmp_path: Path, text: str, missing: str) -> None:
    tricky_file_reads_the_same(tmp_path, text, missing)


@pytest.mark.slow
@settings(max_examples=300, **FUZZ)
@given(**TRICKY_FILES)
def test_numpys_parser_reads_more_tricky_cells_as_the_row_reader(tmp_path: Path, text: str, missing: str) -> None:
    tricky_file_reads_the_same(tmp_path, text, missing)


QUOTED = [
    *("1,234.50", "New York, NY", 'say ""hi""', "", "line\nbreak", "a;b", "tab\there", " 7 ", "1,200", "NA"),
    *("-1,000,000.5", "2,75", "red", "x,y,z", '""', "02134", "1.5"),
]


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


@st.composite
def quoted_csvs(draw: st.DrawFn) -> bytes:
    """Files with quoted cells: embedded separators, doubled quotes, line breaks inside quotes, empty quoted
    fields, beside plain cells; a byte-order mark or not, LF or CRLF line ends."""
    n_cols = draw(st.integers(1, 4))
    plain = st.one_of(st.sampled_from(TRICKY), st.floats(width=32).map(repr), st.integers(-3, 3).map(str))
    quoted = st.one_of(st.sampled_from(QUOTED), plain).map(_quoted)
    cell = st.one_of(plain, quoted, quoted)
    rows = draw(st.lists(st.lists(cell, min_size=n_cols, max_size=n_cols), min_size=1, max_size=12))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    header = sep.join(["a", "b", "c", "y"][-n_cols:])
    lines = [header] + [sep.join(r) for r in rows]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), "")  # a blank line on the way
    end = draw(st.sampled_from(["\n", "\r\n"]))
    text = end.join(lines) + draw(st.sampled_from(["", end, end + end]))
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")


def quoted_file_reads_the_same(tmp_path: Path, data: bytes, missing: str) -> None:
    first = data.decode("utf-8-sig").splitlines()[0]
    path = tmp_path / ("t.tsv" if "\t" in first else "t.csv")
    path.write_bytes(data)
    assert_same(path, missing=missing, delimiter=";" if ";" in first else ",")


QUOTED_FILES = {"data": quoted_csvs(), "missing": TRICKY_FILES["missing"]}


@settings(max_examples=40, **FUZZ)
@given(**QUOTED_FILES)
def test_quoted_files_read_as_the_row_reader(tmp_path: Path, data: bytes, missing: str) -> None:
    quoted_file_reads_the_same(tmp_path, data, missing)


@pytest.mark.slow
@settings(max_examples=300, **FUZZ)
@given(**QUOTED_FILES)
def test_more_quoted_files_read_as_the_row_reader(tmp_path: Path, data: bytes, missing: str) -> None:
    quoted_file_reads_the_same(tmp_path, data, missing)


def test_a_quoted_file_is_read_column_wise(tmp_path: Path, no_row_reader: None) -> None:
    path = tmp_path / "t.csv"
    rows = ["city,amount,note,y"]
    for i in range(40):
        note = ['say ""hi""', "ok", "two\nlines"][i % 3]
        rows.append(f'"{["New York, NY", "Paris", "Oslo"][i % 3]}","{1000 + i}.50","{note}",{i % 2}')
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    table, encoder = read_csv(path)
    assert encoder.categories["city"] == ["New York, NY", "Oslo", "Paris"]
    assert "amount" not in encoder.categories and table.X.shape[0] == 40
    assert table.X[:, encoder.feature_names.index("amount")].tolist() == [1000.5 + i for i in range(40)]
    # a line break inside quotes counts: row 39 comes after 13 notes of two lines
    np.testing.assert_array_equal(table.line_of([0, 1, 3, 39]), [2, 3, 6, 54])


@pytest.mark.parametrize(
    "text",
    [
        'a,b,y\n1,"2,5",3\n4,5,6\n7,8,9\n',  # a quoted field: the csv module decides
        "a,b,y\n02134,1,0\n90210,2,1\n00501,3,0\n99501,4,1\n",  # digit codes with leading zeros
        "a,b,y\n1,2,3\n4,5\n",  # a ragged row: the error names its line
        "a,b,y\n1,2,3\n   \n4,5,6\n7,8,9\n",  # a line of spaces is blank
        "a,b,y\r\n1,2,3\r\n4,5,6\r\n7,8,9\r\n",  # CRLF line ends
        "\ufeffa,b,y\n1,2,3\n4,5,6\n7,8,9\n",  # a byte-order mark
        "a,b,y\n1,x,3\n4,5,6\n7,8,9\n",  # a stray word in a numeric column: named by line and column
        "a,b,y\n1,2,3\n4,5,6\n7,8,9\n,,\n",  # a row of empty cells
        "a,b,y\n1,2,3\n4,5,6\n7,8,9\nTotal,,18\n",  # a totals row
        "y\n1\n  \n2\nNA\n3\n",  # one column: a line of spaces is blank, NA a missing value
    ],
)
@pytest.mark.parametrize("missing", ["error", "mean"])
def test_unusual_files_read_the_same_on_every_reader(tmp_path: Path, text: str, missing: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    assert_same(path, missing=missing)


def test_a_gzipped_csv_is_read_by_numpys_parser(tmp_path: Path, no_row_reader: None) -> None:
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("a,colour,y\n1,red,0.5\nNA,blue,1.5\n3,red,2.5\n")
    table, encoder = read_csv(path, missing="mean")
    assert encoder.categories == {"colour": ["blue", "red"]}
    np.testing.assert_array_equal(table.y[:, 0], [0.5, 1.5, 2.5])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,x\n2, y \n\n", ["2", "y"]),
        ("a,b\r\n1,x\r\n2,y\r\n", ["2", "y"]),
        ("a,b\n1,x\n2,y", ["2", "y"]),
        ("a,b\n1,x\n2,y\n   \n\n", ["2", "y"]),
        ('a,b\n1,x\n2,"y"\n', None),  # a quote: which line ends end a record needs a scan
        ("a,b\n1,x\n2\n", None),  # not a whole row
        ("a,b\n", None),  # the header only
        ("a,b\n1,x\r2,y\n", None),  # a lone CR
    ],
)
def test_the_last_row_is_read_from_the_end_of_the_file(tmp_path: Path, text: str, expected: list[str] | None) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    assert readers.csv_last_row(path, 2) == expected
    if expected is not None:  # what the scan finds too
        n = len(readers.csv_rows_at(path, list(range(10))))
        assert readers.csv_rows_at(path, [n - 1])[n - 1][1] == expected


def test_the_last_row_of_a_big_file_is_read_without_its_other_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 3}\n" for i in range(20_000)) + "Total,19999\n")
    assert readers.csv_last_row(path, 2) == ["Total", "19999"]
    assert readers.csv_last_row(str(path) + ".gz", 2) is None  # (a .gz is decompressed from the start)


@pytest.mark.slow
def test_every_csv_test_passes_on_the_row_by_row_reader() -> None:
    files = ["tests/data/test_tabular.py", "tests/badinput/test_fuzz_readers.py", "tests/test_cli_data.py"]
    env = dict(os.environ, DOWNSLOPE_FAST_CSV="0", DOWNSLOPE_NUMPY_CSV="0", PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", "-m", "not slow", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.parametrize("block", [5, 8, 9, 64])
@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("a,b\n0123,1\n", True),
        ("a,b\n1, 012\n", True),
        ("a,b\n1111111,01\n", True),
        ("a,b\n111111,\n01,1\n", True),
        ("a,b\n0.5,1\n10,0\n", False),
        ("a,b\n11,22,0\n123,4\n", False),
        ("0a,01\n1,2\n", False),  # (the header is not data)
    ],
)
def test_digit_codes_with_leading_zeros_are_found_across_block_borders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, text: str, refused: bool
) -> None:
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)
    path = tmp_path / "t.csv"
    path.write_text(text)
    if refused:
        with pytest.raises(readers.Fallback, match="leading zero"):
            readers._numpy_csv_scan(path, ",")
    else:
        readers._numpy_csv_scan(path, ",")
