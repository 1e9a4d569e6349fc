"""The pyarrow reader agrees with the pure-Python reader cell by cell: same tables, same errors.

Every CSV is read twice, with the fast reader on and off, and the results compared: the arrays,
the encoder, the task and its reason, the notes, or the error's type and exact message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from downslope.data import readers
from downslope.data.tabular import read_csv, read_rows, read_table
from downslope.errors import ConfigError, DataError

pa = pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[2]


def outcome(path: Path, fast: bool, **options: object) -> tuple[object, ...]:
    saved = readers.FAST_CSV
    readers.FAST_CSV = fast
    try:
        table, encoder = read_csv(path, **options)  # type: ignore[arg-type]
    except (DataError, ConfigError) as exc:
        return ("error", type(exc).__name__, str(exc))
    finally:
        readers.FAST_CSV = saved
    return ("table", table.X, table.y, encoder.state_dict(), table.task, table.task_reason, table.notes, table.name)


def assert_same(path: Path, **options: object) -> tuple[object, ...]:
    fast, slow = outcome(path, True, **options), outcome(path, False, **options)
    assert fast[0] == slow[0], f"fast: {fast[:3]}\nslow: {slow[:3]}"
    if fast[0] == "error":
        assert fast == slow
    else:
        np.testing.assert_array_equal(fast[1], slow[1])
        assert fast[1].dtype == slow[1].dtype and fast[2].dtype == slow[2].dtype  # type: ignore[union-attr]
        np.testing.assert_array_equal(fast[2], slow[2])
        assert fast[3:] == slow[3:]
    return fast


cells = st.one_of(
    st.sampled_from(
        ["", "NA", "nan", "-nan", "NaN", "inf", "-inf", "1e309", "1e39", "red", "blue", '"q,uoted"', "  7 ", "?"]
    ),
    st.sampled_from(["1", "2", "1.0", "01", "+3", ".5", "5.", "1_0", "\u00a07", "\u3000", "\x1c", " ", "None"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 5).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    n_cols = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(["a", "b", "c", "y", "", "a "]), min_size=n_cols, max_size=n_cols))
    rows = draw(st.lists(st.lists(cells, min_size=max(0, n_cols - 1), max_size=n_cols + 1), max_size=10))
    sep = draw(st.sampled_from([",", ";"]))
    return "\n".join([sep.join(header)] + [sep.join(r) for r in rows]) + draw(st.sampled_from(["", "\n", "\n\n"]))


# Each property runs a few dozen random cases in the everyday run and the rest of its examples in the slow
# run (the two add up to the number the property had as one test).
FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
RANDOM_CSVS = {"text": csv_texts(), "missing": st.sampled_from(["error", "drop", "mean", "most_frequent"])}


def random_csv_reads_the_same(tmp_path: Path, text: str, missing: str) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    assert_same(path, missing=missing)


@settings(max_examples=50, **FUZZ)
@given(**RANDOM_CSVS)
def test_fast_and_pure_python_readers_agree_on_random_csvs(tmp_path: Path, text: str, missing: str) -> None:
    random_csv_reads_the_same(tmp_path, text, missing)


@pytest.mark.slow
@settings(max_examples=250, **FUZZ)
@given(**RANDOM_CSVS)
def test_fast_and_pure_python_readers_agree_on_more_random_csvs(tmp_path: Path, text: str, missing: str) -> None:
    random_csv_reads_the_same(tmp_path, text, missing)


NUMBERS_AND_LABELS = {
    "numbers": st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=2, max_size=30),
    "labels": st.lists(st.sampled_from(["1", "1.0", "2", "02", "3", "cat", "-0", "0", "7.5"]), min_size=2, max_size=30),
}


def numbers_and_labels_read_the_same(tmp_path: Path, numbers: list[float], labels: list[str]) -> None:
    n = min(len(numbers), len(labels))
    path = tmp_path / "t.csv"
    path.write_text("x,label\n" + "".join(f"{numbers[i]!r},{labels[i]}\n" for i in range(n)))
    assert_same(path)
    assert_same(path, task="classification")


@settings(max_examples=30, **FUZZ)
@given(**NUMBERS_AND_LABELS)
def test_readers_agree_on_numbers_and_labels(tmp_path: Path, numbers: list[float], labels: list[str]) -> None:
    numbers_and_labels_read_the_same(tmp_path, numbers, labels)


@pytest.mark.slow
@settings(max_examples=120, **FUZZ)
@given(**NUMBERS_AND_LABELS)
def test_readers_agree_on_more_numbers_and_labels(tmp_path: Path, numbers: list[float], labels: list[str]) -> None:
    numbers_and_labels_read_the_same(tmp_path, numbers, labels)


def big_csv(path: Path, n: int, bad_row: int, bad: str, column: int = 2) -> None:
    """n rows of 4 numeric columns and a label, with blank lines and a quoted line break on the way."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((n, 4))
    lines = ["a,b,c,d,label"]
    for i in range(n):
        row = [f"{v:.5f}" for v in values[i]] + [f'"two\nlines {i % 3}"' if i == 7 else f"k{i % 3}"]
        if i == bad_row:
            row[column] = bad
        lines.append(",".join(row))
        if i % 1000 == 5:
            lines.append("")  # a blank line: skipped, but it counts in line numbers
            lines.append("")  # and another (',,,,' would not be blank: it is a row of missing values)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("bad", "column", "expected"),
    [
        ("oops", 2, "expected a number, got 'oops'"),
        ("1e39", 0, "overflows float32"),
        ("", 3, "missing value; choose what to do with --missing"),
        ("inf", 1, "non-finite value 'inf'"),
    ],
)
# 64 KB blocks split the file (the block-boundary logic); one 16 MB block reads it whole (slow run only).
@pytest.mark.parametrize("block", [64 * 1024, pytest.param(16 * 2**20, marks=pytest.mark.slow)])
def test_errors_in_a_big_file_name_the_same_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str, column: int, expected: str, block: int
) -> None:
    # small blocks: the column looks numeric in the first block and Arrow converts it until the bad cell
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)
    path = tmp_path / "big.csv"
    big_csv(path, 30_000, 23_456, bad, column)
    got = assert_same(path)
    assert got[0] == "error" and expected in str(got[2])
    # 1 header line + 23,456 rows + 2 extra lines per thousand (24 blocks) + the quoted line break
    assert f"big.csv:{1 + 23_457 + 2 * 24 + 1}:{column + 1} (column '{'abcd'[column]}')" in str(got[2])


@pytest.mark.parametrize("block", [64 * 1024, 16 * 2**20])
def test_a_big_file_reads_the_same_with_missing_values_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)
    path = tmp_path / "big.csv"
    big_csv(path, 20_000, 12_345, "NA", 1)
    got = assert_same(path, missing="mean")
    assert got[0] == "table" and np.isnan(got[1]).sum() == 1  # type: ignore[union-attr]


def test_a_text_column_becomes_categories_on_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("size,colour,label\n1.5,red,a\n2.0,blue,b\n0.5,red,a\n")
    calls = []
    saved = readers.read_csv_columns

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return saved(*args, **kwargs)  # type: ignore[arg-type]

    readers.read_csv_columns = spy  # type: ignore[assignment]
    try:
        table, encoder = read_csv(path, target="label")
    finally:
        readers.read_csv_columns = saved  # type: ignore[assignment]
    assert calls, "the fast reader was not used"
    assert encoder.feature_names == ["size", "colour=blue", "colour=red"]
    np.testing.assert_array_equal(table.X, [[1.5, 0, 1], [2.0, 1, 0], [0.5, 0, 1]])
    assert table.class_names == ["a", "b"] and table.y.tolist() == [0, 1, 0]


# ---------------------------------------------------------------------- Parquet
def write_parquet(path: Path, columns: dict[str, list[object]]) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=3)


def test_parquet_reads_like_the_same_csv(tmp_path: Path) -> None:
    data = {
        "size": [1.5, 2.0, 0.5, 3.25, 1.0, 2.5, 0.75],
        "rooms": [1, 2, 3, 2, 1, 3, 2],
        "colour": ["red", "blue", "red", "green", "blue", "red", "green"],
        "label": ["a", "b", "a", "b", "a", "b", "a"],
    }
    write_parquet(tmp_path / "t.parquet", data)
    csv = tmp_path / "t.csv"
    csv.write_text(
        "size,rooms,colour,label\n" + "".join(",".join(str(data[k][i]) for k in data) + "\n" for i in range(7))
    )
    from_parquet, enc_p = read_table(tmp_path / "t.parquet", target="label")
    from_csv, enc_c = read_table(csv, target="label")
    np.testing.assert_array_equal(from_parquet.X, from_csv.X)
    np.testing.assert_array_equal(from_parquet.y, from_csv.y)
    assert enc_p is not None and enc_c is not None and enc_p.state_dict() == enc_c.state_dict()
    assert from_parquet.task_reason == from_csv.task_reason


def test_parquet_errors_name_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(path, {"x": ["1", "2", "oops", "4", "5", "6"], "y": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]})
    with pytest.raises(DataError, match=r"t\.parquet: row 3 \(column 'x'\): expected a number, got 'oops'"):
        read_table(path)
    write_parquet(path, {"x": [1.0, None, 3.0, 4.0], "y": [0.5, 1.5, 2.5, 3.5]})
    with pytest.raises(DataError, match=r"t\.parquet: row 2 \(column 'x'\): missing value; choose what to do"):
        read_table(path)
    table, _ = read_table(path, missing="mean")
    assert np.isnan(table.X[1, 0]) and table.X[2, 0] == 3.0
    write_parquet(path, {"x": [1.0, 1e39, 3.0], "y": [0.5, 1.5, 2.5]})
    with pytest.raises(DataError, match=r"t\.parquet: row 2 \(column 'x'\): '1e\+39' overflows float32"):
        read_table(path)
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_table(path)


# ---------------------------------------------------------------------- progress and the slow hint
def test_progress_says_what_is_read_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meter = readers.Progress("big.csv", 2**30, after=0.0)
    meter.update(2**29)
    meter.done(" (5 rows)")
    err = capsys.readouterr().err
    assert "reading big.csv: 50% of 1024 MiB" in err and "read big.csv (5 rows) in" in err
    quiet = readers.Progress("small.csv", 100, after=60.0)
    quiet.update(50)
    quiet.done()
    assert capsys.readouterr().err == ""


def test_the_pure_python_reader_says_how_to_get_the_fast_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    monkeypatch.setattr(readers, "FAST_CSV", False)
    monkeypatch.setattr(readers, "SLOW_HINT_BYTES", 0)
    read_rows(path, progress=True)
    assert "pip install 'downslope[fast]'" in capsys.readouterr().err
    monkeypatch.setattr(readers, "FAST_CSV", True)
    read_rows(path, progress=True)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_every_csv_test_passes_on_the_pure_python_reader() -> None:
    files = [
        "tests/data/test_tabular.py",
        "tests/badinput/test_fuzz_readers.py",
        "tests/test_cli_data.py",
        "tests/test_cli.py",
    ]
    env = dict(os.environ, DOWNSLOPE_FAST_CSV="0", PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", "-m", "not slow", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_cli_trains_evaluates_and_predicts_from_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from downslope.cli import main

    rng = np.random.default_rng(0)
    size = rng.uniform(0, 3, 120)
    colour = rng.choice(["red", "blue"], 120)
    label = np.where(size + (colour == "red") > 2, "big", "small")
    write_parquet(tmp_path / "t.parquet", {"size": size.tolist(), "colour": colour.tolist(), "label": label.tolist()})
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "t.parquet"), "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    assert main(["evaluate", str(out), "--data", str(tmp_path / "t.parquet")]) == 0
    assert "accuracy" in capsys.readouterr().out
    write_parquet(tmp_path / "new.parquet", {"size": [0.5, 2.9], "colour": ["blue", "red"]})
    assert main(["predict", str(out), "--data", str(tmp_path / "new.parquet"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().strip().splitlines()) == 3


def test_cli_says_what_it_reads_when_reading_takes_a_while(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from downslope.cli import main

    monkeypatch.setattr(readers, "PROGRESS_AFTER", 0.0)  # as if the file were big
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    path.write_text("x,y\n" + "".join(f"{v:.4f},{2 * v:.4f}\n" for v in rng.standard_normal(50)))
    assert main(["train", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "reading t.csv: " in err and "read t.csv (50 rows) in" in err


@pytest.mark.parametrize("fast", [True, False])
def test_a_bad_target_names_its_file_line_after_blank_lines(tmp_path: Path, fast: bool) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,0.5\n\n2,1.5\n3,inf\n")
    got = outcome(path, fast)
    assert got[0] == "error" and "t.csv:5:2 (column 'y'): expected a finite number, got 'inf'" in str(got[2])


def test_parquet_nan_floats_are_missing_and_booleans_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(
        path, {"x": [1.0, float("nan"), 3.0, 4.0], "on": [True, False, True, False], "y": [1.0, 2.0, 3.5, 4.5]}
    )
    with pytest.raises(DataError, match=r"t\.parquet: row 2 \(column 'x'\): missing value"):
        read_table(path)
    table, encoder = read_table(path, missing="median")
    assert encoder is not None and encoder.feature_names == ["x", "on"]
    assert np.isnan(table.X[1, 0]) and table.X[:, 1].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(path, {"x": [1.0, 2.0], "y": [1.0, 2.0]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"reading Parquet needs pyarrow: pip install 'downslope\[fast\]'"):
        read_table(path)


# ---------------------------------------------------------------------- evaluate/predict: a trained encoder
def raw_features_both(path: Path, state: dict[str, object], need_target: bool) -> list[tuple[object, ...]]:
    from downslope.cli import _raw_features

    results: list[tuple[object, ...]] = []
    for fast in (True, False):
        saved = readers.FAST_CSV
        readers.FAST_CSV = fast
        try:
            X, y = _raw_features(state, str(path), None, need_target)
            results.append(("ok", repr(np.asarray(X).tolist()), None if y is None else np.asarray(y).tolist()))
        except (DataError, ConfigError) as exc:
            results.append(("error", type(exc).__name__, str(exc)))
        finally:
            readers.FAST_CSV = saved
    return results


NEW_ROWS = {
    "rows": st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=8),
    "missing": st.sampled_from(["error", "mean", "drop"]),
    "task": st.sampled_from(["classification", "regression"]),
    "need_target": st.booleans(),
    "with_target": st.booleans(),
}


@settings(max_examples=40, **FUZZ)
@given(**NEW_ROWS)
# a NUL byte after a missing cell: the column reader named the missing cell, the row reader the NUL byte
@example(rows=[["", "\x00", ""]], missing="error", task="classification", need_target=False, with_target=False)
def test_evaluate_and_predict_encode_a_csv_the_same_on_both_readers(
    tmp_path: Path, rows: list[list[str]], missing: str, task: str, need_target: bool, with_target: bool
) -> None:
    new_rows_encode_the_same(tmp_path, rows, missing, task, need_target, with_target)


@pytest.mark.slow
@settings(max_examples=160, **FUZZ)
@given(**NEW_ROWS)
def test_evaluate_and_predict_encode_more_csvs_the_same_on_both_readers(
    tmp_path: Path, rows: list[list[str]], missing: str, task: str, need_target: bool, with_target: bool
) -> None:
    new_rows_encode_the_same(tmp_path, rows, missing, task, need_target, with_target)


def new_rows_encode_the_same(
    tmp_path: Path, rows: list[list[str]], missing: str, task: str, need_target: bool, with_target: bool
) -> None:
    train = tmp_path / "train.csv"
    train.write_text("size,colour,label\n1.5,red,1\n2.0,blue,2\n0.5,red,1\n3.0,green,2.5\n")
    table, encoder = read_csv(train, missing=missing, task=task)
    state = {
        "preprocess": {"encoder": encoder.state_dict()},
        "task": table.task,
        "class_names": table.class_names,
        "config": {"missing": missing, "seed": 0},
        "n_features": table.n_features,
    }
    path = tmp_path / "new.csv"
    head = "size,colour,label" if with_target else "size,colour"
    body = [r if with_target else r[:2] for r in rows]
    path.write_text(head + "\n" + "".join(",".join(r) + "\n" for r in body))
    fast, slow = raw_features_both(path, state, need_target)
    assert fast == slow


# ---------------------------------------------------------------------- separators and rows of empty cells
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("sep", "advice"), [(";", "is the separator ';'? pass --sep ';'"), ("\t", "tab"), ("|", "'|'")]
)
def test_a_file_with_another_separator_says_which_one_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool, sep: str, advice: str
) -> None:
    """A semicolon-separated file read as comma-separated is one column: the model then had no features
    and failed far from the cause ("Linear: in_features must be a positive integer, got 0")."""
    path = tmp_path / "t.csv"
    path.write_text(
        sep.join(["a", "b", "label"]) + "\n" + "".join(sep.join([f"{i}", "2", "xy"[i % 2]]) + "\n" for i in range(6))
    )
    got = outcome(path, fast)
    assert got[0] == "error" and got[1] == "DataError", got
    assert f"one column found in {path}" in str(got[2]) and advice in str(got[2])
    monkeypatch.setattr(readers, "FAST_CSV", fast)
    table, encoder = read_csv(path, delimiter=sep)
    assert encoder.feature_names == ["a", "b"] and table.X.shape == (6, 2)
    table2, _ = read_table(path, delimiter=sep)
    np.testing.assert_array_equal(table2.X, table.X)


def test_a_one_column_file_without_another_separator_is_not_refused_by_the_separator_check(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x\n1\n2\n")
    header, rows = read_rows(path)
    assert header == ["x"] and rows == [["1"], ["2"]]


def test_a_row_of_empty_cells_is_a_row_of_missing_values_not_a_blank_line(tmp_path: Path) -> None:
    """',,' is a row whose every value is missing: the missing-value policy decides about it like any
    other row (both readers alike). Skipping it like a blank line made predict return one row fewer
    than its input."""
    path = tmp_path / "t.csv"
    path.write_text("x,z,y\n1,2,0.5\n,,\n\n3,4,1.5\n5,6,2.5\n")
    got = assert_same(path)
    assert got[0] == "error" and "t.csv:3:" in str(got[2]) and "missing" in str(got[2]), got
    got = assert_same(path, missing="mean")
    assert got[0] == "table" and got[6] == [f"{path}: dropped 1 of 4 rows with a missing target"], got
    # error messages find the row by the same numbering: the empty row is data row 1, on line 3
    assert readers.csv_rows_at(path, [1, 2]) == {1: (3, ["", "", ""]), 2: (5, ["3", "4", "1.5"])}


@pytest.mark.parametrize("missing", ["mean", "error"])
def test_predict_gives_a_row_of_empty_cells_its_own_prediction(tmp_path: Path, missing: str) -> None:
    train = tmp_path / "train.csv"
    train.write_text("size,colour,label\n1.5,red,1\n2.0,blue,2\n0.5,red,1\n3.0,green,2.5\n")
    table, encoder = read_csv(train, missing=missing)
    state = {
        "preprocess": {"encoder": encoder.state_dict()},
        "task": table.task,
        "class_names": table.class_names,
        "config": {"missing": missing, "seed": 0},
        "n_features": table.n_features,
    }
    path = tmp_path / "new.csv"
    path.write_text("size,colour\n1.5,red\n,\n\n2.0,blue\n")
    fast, slow = raw_features_both(path, state, need_target=False)
    assert fast == slow
    if missing == "mean":
        from downslope.cli import _raw_features

        X, _ = _raw_features(state, str(path), None, False)
        assert fast[0] == "ok" and len(X) == 3, fast  # one prediction per input row, the empty one too
    else:
        assert fast[0] == "error" and "new.csv:3:" in str(fast[2]), fast
