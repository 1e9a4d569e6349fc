"""Without pyarrow, ``predict`` and ``evaluate --data`` read a CSV column by column (NumPy's parser, Python's csv
module for quoted fields) as training does, with the predictions, scores and error messages (file:line:column
of a bad cell) of the row-by-row reader; a run whose column was found written with thousands separators too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main
from downslope.data import readers, tabular

pytest.importorskip("matplotlib")
FAST = ["--epochs", "2", "--patience", "0", "--quiet", "--hidden", "8"]


def _rows(n: int, seed: int) -> list[str]:
    r = np.random.default_rng(seed)
    price, x = r.random(n) * 9000 + 50, r.normal(size=n)
    colour = np.array(["red", "green", "blue"])[r.integers(0, 3, n)]
    return [
        f'"{p:,.2f}",{c},{v:.3f},{v + p / 5000 + (c == "red"):.4f}' for p, c, v in zip(price, colour, x, strict=True)
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nopa")
    data = folder / "train.csv"
    data.write_text("price,colour,x,y\n" + "\n".join(_rows(150, 0)) + "\n")
    out = folder / "run"
    saved = readers.FAST_CSV
    readers.FAST_CSV = False
    try:
        assert main(["train", "--data", str(data), "--out", str(out), *FAST]) == 0
    finally:
        readers.FAST_CSV = saved
    assert 'thousands = ","' in (out / "config.toml").read_text()
    return out


def _use(args: list[str], how: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``how``: 'numpy' (the reader without pyarrow) or 'rows' (the row-by-row reader)."""
    saved = readers.FAST_CSV, readers.NUMPY_CSV
    readers.FAST_CSV, readers.NUMPY_CSV = False, how == "numpy"
    capsys.readouterr()
    try:
        code = main(args)
    finally:
        readers.FAST_CSV, readers.NUMPY_CSV = saved
    said = capsys.readouterr()
    return code, said.out, said.err


def test_predict_and_evaluate_read_columns_without_pyarrow(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new.csv"
    new.write_text("price,colour,x,y\n" + "\n".join(_rows(40, 5)) + "\n")
    got = {}
    for how in ("rows", "numpy"):
        out = tmp_path / f"{how}.csv"
        assert _use(["predict", str(run), "--data", str(new), "--out", str(out)], how, capsys)[0] == 0
        got[how] = out.read_text()
        code, said, _ = _use(["evaluate", str(run), "--data", str(new)], how, capsys)
        assert code == 0
        got[how + " evaluate"] = said
    assert got["rows"] == got["numpy"] and got["rows evaluate"] == got["numpy evaluate"]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("read by the row-by-row reader")

    monkeypatch.setattr(tabular, "read_rows", refuse)
    out = tmp_path / "column.csv"
    assert _use(["predict", str(run), "--data", str(new), "--out", str(out)], "numpy", capsys)[0] == 0
    assert out.read_text() == got["rows"]
    assert _use(["evaluate", str(run), "--data", str(new)], "numpy", capsys)[1] == got["rows evaluate"]


@pytest.mark.parametrize(
    "bad",
    [
        '"1,95",red,0.5',  # a mistyped grouped number
        '"1,950",purple,0.5',  # a colour not seen in training
        '"1,950",red,',  # a missing value
        '"1,950",red,abc',  # a word in a numeric column
        '"1_950",red,0.5',  # a number in Python's syntax only, not the column's
    ],
)
def test_errors_name_the_cell_as_the_row_reader_does(
    run: Path, tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "bad.csv"
    new.write_text("price,colour,x\n" + '"2,000",blue,1.5\n\n' + bad + "\n")
    said = {}
    for how in ("rows", "numpy"):
        code, _, err = _use(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv")], how, capsys)
        assert code == 2
        said[how] = err
    assert said["numpy"] == said["rows"]
    assert f"{new}:4:" in said["rows"]
