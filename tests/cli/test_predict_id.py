"""``downslope predict --id COLUMN`` copies a column of the input file beside the predictions (a Kaggle
submission's PassengerId), row for row."""

from __future__ import annotations

import csv

import numpy as np

from downslope.cli import main


def _write(path, header, rows):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


def test_predict_writes_the_id_column_first_row_for_row(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [f"{1000 + i},{x:.4f},{int(x > 0)}" for i, x in enumerate(rng.normal(size=80))]
    train = _write(tmp_path / "train.csv", "PassengerId,x,Survived", rows)
    run = tmp_path / "run"
    args = ["--target", "Survived", "--drop", "PassengerId", "--epochs", "2", "--patience", "0", "--quiet"]
    assert main(["train", "--data", train, *args, "--out", str(run)]) == 0
    ids = [str(892 + 7 * i) for i in range(12)]  # not in order, not a row counter
    new = _write(tmp_path / "test.csv", "PassengerId,x", [f"{p},{x:.4f}" for p, x in zip(ids, rng.normal(size=12))])
    plain, with_id = tmp_path / "plain.csv", tmp_path / "id.csv"
    assert main(["predict", str(run), "--data", new, "--out", str(plain)]) == 0
    assert main(["predict", str(run), "--data", new, "--out", str(with_id), "--id", "PassengerId"]) == 0
    plain_rows = list(csv.reader(plain.open()))
    id_rows = list(csv.reader(with_id.open()))
    assert id_rows[0] == ["PassengerId", *plain_rows[0]]
    assert [r[0] for r in id_rows[1:]] == ids and [r[1:] for r in id_rows[1:]] == plain_rows[1:]
    capsys.readouterr()
    assert main(["predict", str(run), "--data", new, "--out", str(tmp_path / "x.csv"), "--id", "Id"]) == 2
    err = capsys.readouterr().err
    assert "--id Id: " in err and "has no such column" in err and not (tmp_path / "x.csv").exists()
