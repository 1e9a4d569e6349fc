"""A run trained on a Parquet or CSV table is evaluated and predicted on the way training read it: a
boolean Parquet column, Parquet columns read as arrays (no text row per cell), ``--id`` read alone and
checked before predicting."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main
from downslope.data import readers

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
FAST = ["--epochs", "2", "--patience", "0", "--quiet", "--hidden", "8"]


def _predictions(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1)


def _bool_table(n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    flag = rng.random(n) < 0.5
    return x, flag, x + 2 * flag


def test_a_run_trained_on_a_parquet_boolean_column_evaluates_and_predicts(tmp_path: Path) -> None:
    x, flag, y = _bool_table()
    data = tmp_path / "boolpq.parquet"
    pq.write_table(pa.table({"x": x, "flag": flag, "y": y}), data)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "y", "--out", str(run), *FAST]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    # the same rows as a CSV, the flag written as 1/0 and as True/False: the same inputs, the same predictions
    for name, spell in (("ones.csv", lambda b: str(int(b))), ("words.csv", lambda b: ["False", "TRUE"][int(b)])):
        text = "x,flag\n" + "".join(f"{v!r},{spell(b)}\n" for v, b in zip(x.tolist(), flag.tolist()))
        (tmp_path / name).write_text(text)
        assert main(["predict", str(run), "--data", str(tmp_path / name), "--out", str(tmp_path / f"p_{name}")]) == 0
        np.testing.assert_array_equal(_predictions(tmp_path / f"p_{name}"), _predictions(tmp_path / "p.csv"))


def test_parquet_predict_reads_columns_as_arrays_and_names_rows_not_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    n = 150
    x = rng.normal(size=n)
    color = np.array(["red", "blue", "green"])[rng.integers(0, 3, n)]
    y = x + (color == "red")
    data = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": x, "color": color, "y": y}), data)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    csv_copy = tmp_path / "t.csv"
    csv_copy.write_text("x,color\n" + "".join(f"{a!r},{c}\n" for a, c in zip(x.tolist(), color.tolist())))
    assert main(["predict", str(run), "--data", str(csv_copy), "--out", str(tmp_path / "from_csv.csv")]) == 0

    def no_text_rows(*args: object, **kwargs: object) -> list[list[str]]:
        raise AssertionError("every cell of the Parquet file turned into text")

    monkeypatch.setattr(readers, "parquet_rows", no_text_rows)
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "from_pq.csv")]) == 0
    np.testing.assert_array_equal(_predictions(tmp_path / "from_pq.csv"), _predictions(tmp_path / "from_csv.csv"))
    monkeypatch.undo()
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"x": x[:5], "color": ["red", "red", "teal", "red", "red"]}), bad)
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(bad), "--out", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "bad.parquet: row 3 (column 'color'): category 'teal' was not seen" in err and "parquet:3:" not in err


def test_predict_id_is_checked_before_predicting_and_read_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    rows = [f"{1000 + i},{v:.4f},{int(v > 0)}" for i, v in enumerate(rng.normal(size=80))]
    train = tmp_path / "train.csv"
    train.write_text("PassengerId,x,Survived\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    args = ["--target", "Survived", "--drop", "PassengerId", *FAST]
    assert main(["train", "--data", str(train), *args, "--out", str(run)]) == 0
    new = tmp_path / "test.csv"
    ids = [f"P {7 * i}" for i in range(12)]
    new.write_text("PassengerId,x\n" + "".join(f'"{p}",{v:.4f}\n' for p, v in zip(ids, rng.normal(size=12))))
    import downslope.cli.use as use

    calls: list[object] = []
    real = use._raw_features

    def counted(*a: object, **k: object) -> object:
        calls.append(a)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(use, "_raw_features", counted)
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv"), "--id", "PassengerID"]) == 2
    assert "--id PassengerID: " in capsys.readouterr().err and not calls  # refused before any predicting
    from downslope.data import csvfile

    def no_rows(*a: object, **k: object) -> object:
        raise AssertionError("the whole file read row by row for one column")

    monkeypatch.setattr(readers, "FAST_CSV", True)
    monkeypatch.setattr(csvfile, "read_rows", no_rows)
    monkeypatch.setattr(use, "_raw_features", real)
    ids_got = use._id_values(str(new), "PassengerId", None, {"config": {}}, 12)
    assert ids_got == ids
    out = tmp_path / "with_id.csv"
    monkeypatch.undo()
    assert main(["predict", str(run), "--data", str(new), "--out", str(out), "--id", "PassengerId"]) == 0
    assert [r[0] for r in csv.reader(out.open())][1:] == ids


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_id_column_reads_alike_on_both_readers(tmp_path: Path, suffix: str) -> None:
    import gzip

    from downslope.data.csvfile import read_column

    text = 'id,x\n a ,1\n\n"b\nc",2\n  d,3\n'
    path = tmp_path / f"f{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    got = []
    for fast in (True, False):
        saved = readers.FAST_CSV
        readers.FAST_CSV = fast
        try:
            got.append(read_column(path, "id"))
        finally:
            readers.FAST_CSV = saved
    assert got[0] == got[1] == (["id", "x"], ["a", "b\nc", "d"])
