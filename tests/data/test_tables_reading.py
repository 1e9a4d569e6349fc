"""Reading dirty tables: missing-value spellings, yes/no columns, record lines, pasteable advice and fill
notes, each the same on the pyarrow reader and the pure-Python one."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest

from downslope.data import readers
from downslope.data.encoding import TabularEncoder
from downslope.data.tabular import read_csv, read_table
from downslope.errors import DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

# pandas' default na_values (pandas.read_csv, pandas 2.x), as the data engineer's tools count them
PANDAS_NA = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]


def both(path: Path, **options: object) -> list[tuple[object, ...]]:
    """``read_csv`` on the pyarrow reader and on the pure-Python one: the table's arrays and notes or the error."""
    out = []
    for fast in (True, False):
        saved = readers.FAST_CSV
        readers.FAST_CSV = fast
        try:
            table, encoder = read_csv(path, **options)  # type: ignore[arg-type]
            out.append(("table", table.X, table.y, encoder.state_dict(), table.notes))
        except DataError as exc:
            out.append(("error", str(exc)))
        finally:
            readers.FAST_CSV = saved
    return out


def assert_same(results: list[tuple[object, ...]]) -> tuple[object, ...]:
    fast, slow = results
    assert fast[0] == slow[0]
    if fast[0] == "error":
        assert fast == slow
        return fast
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_array_equal(fast[2], slow[2])
    assert fast[3] == slow[3] and fast[4] == slow[4]
    return fast


@pytest.mark.parametrize("token", [*PANDAS_NA, "(blank)", "?", "none", "NONE"])
def test_pandas_missing_values_are_missing_on_both_readers(tmp_path: Path, token: str) -> None:
    values = [str(float(i)) for i in range(20)]
    values[3] = token
    p = tmp_path / "na.csv"
    p.write_text("x,y\n" + "".join(f'"{v}",{i * 2}\n' for i, v in enumerate(values)))
    result = assert_same(both(p, missing="mean"))
    X = result[1]
    expected = np.array([np.nan if i == 3 else float(i) for i in range(20)], dtype=np.float32)
    np.testing.assert_array_equal(X[:, 0], expected)


@pytest.mark.parametrize("token", ["#DIV/0!", "#VALUE!", "#REF!"])
def test_a_spreadsheet_error_value_is_refused_by_name_on_both_readers(tmp_path: Path, token: str) -> None:
    p = tmp_path / "err.csv"
    p.write_text("x,y\n" + "".join(f"{token if i == 4 else i},{i}\n" for i in range(20)))
    result = assert_same(both(p, missing="mean"))
    assert result[0] == "error"
    message = str(result[1])
    assert f"err.csv:6:1 (column 'x'): {token!r} is a spreadsheet error value" in message


@pytest.mark.parametrize("dash", ["-", "--"])
def test_a_lone_dash_is_refused_with_what_it_may_mean_on_both_readers(tmp_path: Path, dash: str) -> None:
    p = tmp_path / "dash.csv"
    p.write_text("x,y\n" + "".join(f"{dash if i == 4 else i},{i}\n" for i in range(20)))
    result = assert_same(both(p, missing="mean"))
    assert result[0] == "error"
    assert f"dash.csv:6:1 (column 'x'): expected a number, got {dash!r}, a dash: Excel's accounting" in str(result[1])


def test_mixed_yes_no_spellings_are_one_feature_with_a_note(tmp_path: Path) -> None:
    spellings = ["no", "FALSE", "1", "Y", "yes", "0", "N", "TRUE", "off", "On", "t", "f"]
    truth = [0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0]
    p = tmp_path / "bools.csv"
    rows = [(spellings[i % 12], 0.5 * i, float(i)) for i in range(36)]
    p.write_text("active,x,y\n" + "".join(f"{a},{x},{y}\n" for a, x, y in rows))
    result = assert_same(both(p))
    X, state, notes = result[1], result[3], result[4]
    assert state["booleans"] == ["active"] and "active" not in state["categories"]
    np.testing.assert_array_equal(X[:, 0], np.array([truth[i % 12] for i in range(36)], dtype=np.float32))
    assert any("column 'active' holds yes/no values" in n and "'FALSE'" in n and "as 0" in n for n in notes)
    # a trained run's new file may write them in any case
    encoder = TabularEncoder.from_state_dict(state)
    encoder.stage = "predict"
    got = encoder.encode_features(["active", "x"], [["true", "1"], ["NO", "2"], ["On", "3"]], "new.csv")
    np.testing.assert_array_equal(got[:, 0], [1.0, 0.0, 1.0])
    with pytest.raises(DataError, match=r"new\.csv:2:1 \(column 'active'\): expected a yes/no value .* got 'maybe'"):
        encoder.encode_features(["active", "x"], [["maybe", "1"]], "new.csv")


def test_an_error_after_a_multi_line_field_names_the_line_its_record_starts_on(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    lines = ["x,comment,y"]
    for i in range(10):
        lines.append(f'{i},"two\nlines",{i}')  # each record spans two lines: record i starts on 2 + 2 i
    lines.append('oops,"a\nb\nc",1')  # starts on line 22
    lines += [f"{i},plain,{i}" for i in range(10)]
    p.write_text("\n".join(lines) + "\n")
    start = 1 + [n for n, text in enumerate(p.read_text().split("\n"), start=1) if text.startswith("oops")][0] - 1
    for result in both(p, drop=["comment"]):
        assert result[0] == "error" and str(result[1]).startswith(f"{p}:{start}:1 (column 'x')"), result


def test_a_ragged_record_after_a_multi_line_field_names_its_first_line(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text('x,y\n1,"a\nb"\n2,3,4\n')
    with pytest.raises(DataError, match=r"r\.csv:4: expected 2 fields"):
        read_csv(p)  # a ragged file: the pure-Python reader answers on both paths
    p.write_text('x,y\n1,2\n"3\n4",5,6\n')
    with pytest.raises(DataError, match=r"r\.csv:3: expected 2 fields"):
        read_csv(p)


def test_drop_advice_for_names_with_spaces_pastes_into_a_shell(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    rows = [f"H{i},2023-01-{1 + i % 28:02d},{i} Main St,{i % 3},{i * 1.5}" for i in range(150)]
    p.write_text("house id,sale date,address,rooms,price\n" + "\n".join(rows) + "\n")
    for result in both(p, target="price"):
        assert result[0] == "error"
        advice = str(result[1]).rsplit("to leave them all out: ", 1)[1]
        words = shlex.split(advice)
        assert words[0] == "--drop" and words[1].split(",") == ["house id", "sale date", "address"]


@pytest.mark.parametrize("strategy", ["median", "mean", "constant"])
def test_filling_numeric_cells_is_noted_per_column(tmp_path: Path, strategy: str) -> None:
    p = tmp_path / "m.csv"
    cells = {f"c{k}": [("" if (i + k) % (k + 3) == 0 else str(i + k)) for i in range(30)] for k in range(7)}
    header = list(cells) + ["y"]
    p.write_text(
        ",".join(header) + "\n" + "".join(",".join([*(cells[c][i] for c in cells), str(i)]) + "\n" for i in range(30))
    )
    result = assert_same(both(p, missing=strategy))
    counts = {c: sum(v == "" for v in vals) for c, vals in cells.items()}
    ranked = sorted(counts.items(), key=lambda t: -t[1])
    note = next(n for n in result[4] if "missing numeric cell" in n)
    assert f"fills {sum(counts.values())} missing numeric cells" in note
    assert ", ".join(f"{c!r}: {n}" for c, n in ranked[:5]) in note and "and 2 more" in note


def test_parquet_boolean_column_is_remembered_and_located_by_row(tmp_path: Path) -> None:
    p = tmp_path / "b.parquet"
    x = np.linspace(-1, 1, 30)
    flag = np.arange(30) % 3 == 0
    pq.write_table(pa.table({"x": x, "flag": flag, "y": x + flag}), p)
    table, encoder = read_table(p)
    assert encoder is not None and encoder.booleans == ["flag"]
    np.testing.assert_array_equal(table.X[:, 1], flag.astype(np.float32))
    encoder.stage = "predict"
    with pytest.raises(DataError, match=r"new\.parquet: row 2 \(column 'flag'\): expected a yes/no value"):
        encoder.encode_features(["x", "flag"], [["0.1", "True"], ["0.2", "perhaps"]], "new.parquet", 1)


def _formatted(value: float, decimal: str, thousands: str) -> str:
    text = f"{value:,.2f}"  # 12,345.67: then each mark as the format writes it
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


@pytest.mark.parametrize(
    "fmt", [(".", ","), (",", "."), (",", " "), (".", "'"), (",", ""), (".", "_")], ids=lambda f: repr(f)
)
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_number_formats_and_gzip_read_on_the_fast_path_as_on_the_slow_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: tuple[str, str], suffix: str
) -> None:
    import gzip

    from downslope.data import csvfile

    decimal, thousands = fmt
    sep = ";" if decimal == "," else ","
    rng = np.random.default_rng(3)
    rows = []
    for i in range(400):
        rows.append(
            [
                _formatted(rng.normal() * 1e4, decimal, thousands),
                ["red", "blue"][i % 2],
                "NA" if i % 13 == 0 else ("\u00a0" + str(i) if i % 17 == 0 else str(rng.integers(0, 9))),
                _formatted(rng.normal() * 1e5, decimal, thousands),
            ]
        )
    path = tmp_path / f"f{suffix}"

    def write(rows: list[list[str]]) -> None:
        lines = [sep.join(["a", "b", "c", "y"])] + [sep.join(f'"{c}"' if sep in c else c for c in r) for r in rows]
        text = "\n".join(lines) + "\n"
        path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())

    write(rows)
    options = dict(missing="median", delimiter=sep, decimal=decimal, thousands=thousands)
    slow = both(path, **options)[1]
    assert slow[0] == "table"

    def no_rows(*a: object, **k: object) -> object:
        raise AssertionError("read by the pure-Python reader")

    monkeypatch.setattr(readers, "FAST_CSV", True)
    monkeypatch.setattr(csvfile, "read_rows", no_rows)  # the fast path must not hand the file over
    table, encoder = read_csv(path, **options)  # type: ignore[arg-type]
    np.testing.assert_array_equal(table.X, slow[1])
    np.testing.assert_array_equal(table.y, slow[2])
    assert encoder.state_dict() == slow[3] and table.notes == slow[4]
    monkeypatch.undo()
    # a bad cell: the same error, at the same place, on both paths
    rows[299][0] = "12x5"
    write(rows)
    fast_result, slow_result = both(path, **options)
    assert fast_result == slow_result and fast_result[0] == "error"
    assert f"{path}:301:1 (column 'a'): expected a number, got '12x5'" in str(fast_result[1])
