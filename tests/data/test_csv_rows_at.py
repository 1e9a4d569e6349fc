"""Finding a CSV's rows for messages (``readers.csv_rows_at``): the file line and cells of data rows,
numbered as Python's csv module reads the file (blank lines skipped, a record's line is the one it starts
on), found by vectorised counts and checked here against that module reading every row."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from downslope.data import readers
from downslope.data.tabular import read_table
from downslope.errors import DataError


def rows_by_csv_module(path: Path, delimiter: str) -> dict[int, tuple[int, list[str]]]:
    """Every data row with the line it starts on, read by Python's csv module row by row."""
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[int, tuple[int, list[str]]] = {}
    with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader)
        last = reader.line_num
        for row in reader:
            first, last = last + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            out[len(out)] = (first, [v.strip() for v in row])
    return out


CELLS = [
    "1",
    "2.5",
    "red",
    '"a,b"',
    '"two\nlines"',
    '"cr\r\nlf"',
    '"say ""hi"""',
    '""',
    '" "',
    " ",
    "",
    "\u00a0",
    "\u3000",
    "é",
    "\t",
    '"\n"',
]
ODD = ['5" screen', '"ab"c', ' "x"']  # quotes Python's csv module reads as literal characters


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, str]:
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    width = draw(st.integers(1, 3))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    cells = st.sampled_from(CELLS + (ODD if draw(st.booleans()) else []))
    lines = [delimiter.join(f"h{i}" for i in range(width))]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 6)) == 0:
            lines.append(draw(st.sampled_from(["", "  ", "\u00a0", '""', '"  "'])))
        else:
            lines.append(delimiter.join(draw(st.lists(cells, min_size=width, max_size=width))))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2])), delimiter


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_files(), st.sampled_from([1, 3, 16, 2**20]))
def test_rows_and_lines_as_the_csv_module_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[str, str], piece: int
) -> None:
    text, delimiter = case
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    monkeypatch.setattr(readers, "SCAN_BYTES", piece)  # small pieces: records cut at every possible place
    expected = rows_by_csv_module(path, delimiter)
    wanted = list(range(-1, len(expected) + 2))
    assert readers.csv_rows_at(path, wanted, delimiter) == expected
    assert readers.csv_rows_at(path, wanted[::-1][:3], delimiter) == {
        i: expected[i] for i in wanted[::-1][:3] if i in expected
    }


@pytest.mark.parametrize(
    "text",
    [
        "a,b\r1,2\r3,4\r",  # lines ending in CR alone
        'a,b\n1,5" screen\n"x\ny",2\n3,4\n',  # a literal quote inside a field
        'a,b\n1,"open\n2,3\n',  # a quoted field never closed
    ],
)
def test_files_the_counts_cannot_follow_are_read_row_by_row(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    expected = rows_by_csv_module(path, ",")
    assert readers.csv_rows_at(path, list(range(5)), ",") == expected


def test_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write('a,b\n1,"x\ny"\n\n2,z\n  \n3,w\n')
    assert readers.csv_rows_at(path, [0, 1, 2], ",") == {0: (2, ["1", "x\ny"]), 1: (5, ["2", "z"]), 2: (7, ["3", "w"])}


def test_only_the_wanted_rows_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Naming the last row of a big file costs vectorised counts, not a Python step per row."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f'{i},"n{i}"\n' for i in range(20_000)))
    real_reader = csv.reader

    class CountingReader:
        """Python's csv reader, counting the rows it parses."""

        parsed = 0

        def __init__(self, *args: object, **kwargs: object) -> None:
            self.inner = real_reader(*args, **kwargs)  # type: ignore[call-overload]

        def __iter__(self) -> CountingReader:
            return self

        def __next__(self) -> list[str]:
            row: list[str] = next(self.inner)
            CountingReader.parsed += 1
            return row

        @property
        def line_num(self) -> int:
            return int(self.inner.line_num)

    monkeypatch.setattr(readers.csv, "reader", CountingReader)
    assert readers.csv_rows_at(path, [19_999], ",") == {19_999: (20_001, ["19999", "n19999"])}
    assert CountingReader.parsed < 10


def test_error_in_row_123457_names_its_line(tmp_path: Path) -> None:
    """A missing target in data row 123,457 of a file whose quoted notes span lines before it: the
    message names the line the row starts on, counted here independently of the reader."""
    path = tmp_path / "big.csv"
    bad = 123_456  # the 123,457th data row
    lines = ["a,note,y"]
    line = 1
    bad_line = None
    for i in range(130_000):
        note = f'"n {i % 7}\nsecond, line"' if i % 997 == 0 else f'"n {i % 7}"'
        target = "" if i == bad else str(i % 3)
        lines.append(f"{i * 0.5},{note},{target}")
        if i == bad:
            bad_line = line + 1
        line += 1 + note.count("\n")
    path.write_text("\n".join(lines) + "\n")
    assert bad_line is not None and bad_line > bad + 2  # the notes before it span lines
    expected = f"{path}:{bad_line}:3 (column 'y'): missing target value"
    assert readers.fast_csv_available()
    with pytest.raises(DataError) as caught:
        read_table(path, target="y")
    assert str(caught.value).startswith(expected)
    found = readers.csv_rows_at(path, [bad], ",")
    assert found == {bad: (bad_line, [str(bad * 0.5), f"n {bad % 7}", ""])}
