"""';'-separated files whose numbers are written with decimal commas ("3,5", "1.234,56") are read column by
column through pyarrow, as comma-separated files are, with the row-by-row reader's tables, notes, recorded
number format and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from downslope.data import csvfile, readers
from downslope.data.tabular import read_csv
from downslope.errors import ConfigError, DataError

pytest.importorskip("pyarrow")


def outcome(path: Path, rows: bool, **options: object) -> tuple[object, ...]:
    saved = readers.FAST_CSV, readers.NUMPY_CSV
    readers.FAST_CSV, readers.NUMPY_CSV = not rows, False
    try:
        table, encoder = read_csv(path, delimiter=";", **options)  # type: ignore[arg-type]
    except (DataError, ConfigError) as exc:
        return ("error", type(exc).__name__, str(exc))
    finally:
        readers.FAST_CSV, readers.NUMPY_CSV = saved
    lines = table.line_of(list(range(len(table.X))))
    return ("table", table.X, table.y, encoder.state_dict(), table.task, table.notes, lines, table.number_format)


def assert_same(path: Path, column_wise: bool = True, **options: object) -> tuple[object, ...]:
    expected = outcome(path, True, **options)
    if column_wise:  # the row-by-row reader must not be needed
        original = csvfile.read_rows

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("read by the row-by-row reader")

        csvfile.read_rows = refuse  # type: ignore[assignment]
        try:
            got = outcome(path, False, **options)
        finally:
            csvfile.read_rows = original
    else:
        got = outcome(path, False, **options)
    assert got[0] == expected[0], f"{got[:3]}\n{expected[:3]}"
    if got[0] == "error":
        assert got == expected
    else:
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_array_equal(got[2], expected[2])
        assert got[3:] == expected[3:]
    return got


def write(tmp_path: Path, lines: list[str], name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def european(v: float) -> str:
    return f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def test_decimal_commas_with_dot_thousands_are_read_column_wise_as_row_by_row(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((300, 4)) * np.array([1, 10, 3000, 100000])
    lines = ["a;b;c;d;colour;y"]
    for r, row in enumerate(values):
        lines.append(";".join([european(v) for v in row] + [["red", "blue"][r % 2], european(row[0] * 2)]))
    got = assert_same(write(tmp_path, lines))
    assert got[7] == (",", ".")  # the file's number format, recorded for new data
    assert got[1][0, 0] == pytest.approx(float(lines[1].split(";")[0].replace(",", ".")), rel=1e-6)


def test_only_decimal_commas(tmp_path):
    lines = ["a;b;y"] + [f"{i},5;{i * 3};{i % 7},25" for i in range(50)]
    got = assert_same(write(tmp_path, lines))
    assert got[7] == (",", "")


def test_a_dotted_column_beside_decimal_commas_groups_thousands(tmp_path):
    lines = ["a;b;y"] + [f"{i},5;{1 + i}.{100 + i:03d};{i}" for i in range(40)]
    got = assert_same(write(tmp_path, lines))
    assert any("groups thousands" in note for note in got[5])


@pytest.mark.parametrize(
    "odd_rows",
    [
        ["0,5;0.1257;1", "1,5;2.5;2"],  # decimal points in another column
        ["0,5;0.0381;1"],  # not grouped in threes beside '2.207'
        ["1,101;1.5;3"],
    ],
)
def test_files_the_rules_refuse_or_read_otherwise_give_the_same_answer(tmp_path, odd_rows):
    lines = ["a;b;y"] + [f"{i},5;{1 + i}.{100 + i:03d};{i}" for i in range(20)] + odd_rows
    assert_same(write(tmp_path, lines), column_wise=False)


def test_missing_cells_dropped_rows_and_a_totals_row_give_the_same_table(tmp_path):
    lines = ["a;b;y"] + [f"{i},5;{'' if i % 9 == 0 else european(i * 1000.5)};{i},0" for i in range(60)]
    lines.append(f"{sum(range(60))},0;;{sum(range(60))},0")
    assert_same(write(tmp_path, lines), column_wise=False, missing="drop")
    assert_same(write(tmp_path, lines, "m.csv"), column_wise=False, missing="mean")
