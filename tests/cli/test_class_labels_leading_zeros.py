"""A class target of digit codes written with leading zeros (zip codes ``02100``...) keeps them: the run's
classes, predict's output and ``classes_`` are the labels as the training file wrote them, and new data's
labels are still matched by number (``2100`` finds the class ``02100``)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main
from downslope.experiment.labels import keep_written_codes, kind_of_classes
from downslope.runs import open_run

FAST = ["--hidden", "8", "--epochs", "20", "--patience", "0", "--quiet", "--lr", "0.05"]
CODES = ["02100", "02101", "02102"]


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _codes_csv(path: Path, labels: list[str], n: int = 150, seed: int = 0) -> tuple[Path, np.ndarray]:
    """Feature a sits near the class index (easy to learn); labels[k] is written for class k."""
    rng = np.random.default_rng(seed)
    k = np.arange(n) % len(labels)
    a = k + 0.1 * rng.normal(size=n)
    rows = [f"{x:.4f},{rng.normal():.4f},{labels[c]}" for x, c in zip(a, k)]
    path.write_text("a,b,zip\n" + "\n".join(rows) + "\n")
    return path, k


def test_predict_writes_the_labels_as_the_training_file_wrote_them(tmp_path, capsys, no_plots):
    data, _ = _codes_csv(tmp_path / "zips.csv", CODES)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    said = capsys.readouterr()
    assert "digit codes with leading zeros ('02100'" in said.out + said.err
    handle = open_run(run)
    assert handle.classes_.tolist() == CODES and handle.classes_.dtype.kind == "U"
    new = tmp_path / "new.csv"
    new.write_text("a,b\n0.0,0.1\n1.0,0.2\n2.0,-0.3\n")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 0
    with out.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction", "p_02100", "p_02101", "p_02102"]
    assert [r[0] for r in rows[1:]] == CODES  # a separable toy: each row's own class
    assert handle.predict(np.array([[2.0, -0.3]])).tolist() == ["02102"]


def test_evaluate_reads_new_labels_by_number(tmp_path, capsys, no_plots):
    data, k = _codes_csv(tmp_path / "zips.csv", CODES)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    # new data writes the codes without their zeros (a spreadsheet ate them): the same classes
    other, _ = _codes_csv(tmp_path / "other.csv", ["2100", "2101", "2102"], n=30, seed=5)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(other)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["rows"] == 30 and said["accuracy"] > 0.9


def test_two_spellings_of_one_code_are_one_class_named_by_the_more_frequent(tmp_path, capsys, no_plots):
    labels = [CODES[c] for c in np.arange(150) % 3]
    labels[:4] = ["2100"] * 4  # 4 of the 50 rows of class 02100 lost their zero
    rng = np.random.default_rng(1)
    rows = [f"{int(v[-1]) + 0.1 * rng.normal():.4f},{rng.normal():.4f},{v}" for v in labels]
    data = tmp_path / "mixed.csv"
    data.write_text("a,b,zip\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    said = capsys.readouterr()
    assert "'2100', '02100' as '02100'" in said.out + said.err  # (spellings in the order first written)
    assert open_run(run).classes_.tolist() == CODES


def test_an_npz_text_target_keeps_its_leading_zeros(tmp_path, no_plots):
    rng = np.random.default_rng(2)
    k = np.arange(120) % 2
    X = np.c_[k + 0.1 * rng.normal(size=120), rng.normal(size=120)].astype(np.float32)
    path = tmp_path / "codes.npz"
    np.savez(path, X=X, y=np.array(["007", "010"])[k])
    run = tmp_path / "run"
    assert main(["train", "--data", str(path), "--out", str(run), *FAST]) == 0
    assert open_run(run).classes_.tolist() == ["007", "010"]


def test_integers_without_leading_zeros_stay_numbers_closed_forms():
    assert keep_written_codes(["1", "2"], Counter({"1": 5, "2": 5}), "f.csv") == (["1", "2"], [])
    # a single digit 0 is no leading zero; 1.0 is a number written as a float, not a code
    assert keep_written_codes(["0", "10"], Counter({"0": 5, "10": 5}), "f.csv") == (["0", "10"], [])
    assert keep_written_codes(["1", "2"], Counter({"01.0": 5, "2": 5}), "f.csv") == (["1", "2"], [])
    names, notes = keep_written_codes(["2100", "2101"], Counter({"2100": 1, "02100": 3, "02101": 2}), "f.csv", "zip")
    assert names == ["02100", "02101"] and len(notes) == 2
    tie, _ = keep_written_codes(["7"], Counter({"7": 2, "007": 2}), "f.csv")  # a tie: the one written first
    assert tie == ["7"]
    assert kind_of_classes(["02100", "02101"], False) == "text" and kind_of_classes(["2100"], False) == "int"
