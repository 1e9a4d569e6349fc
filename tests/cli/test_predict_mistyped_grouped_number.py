"""A mistyped grouped number ('1,95') in a column the run reads with a thousands separator: the error says
how the run reads the column, not 'retrain with --thousands' (the option the run already has)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


@pytest.fixture
def grouped_run(tmp_path):
    r = np.random.default_rng(0)
    sqft = r.normal(1800, 500, 150).clip(400)
    rows = [f'"{int(s):,}",{100 * s + v:.2f}' for s, v in zip(sqft, r.normal(0, 1e4, 150), strict=True)]
    data = tmp_path / "train.csv"
    data.write_text("sqft,price\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--quiet", "--hidden", "4", "--out", str(run)]) == 0
    assert 'thousands = ","' in (run / "config.toml").read_text()  # found in the file and recorded
    return tmp_path, run


def test_predict_says_how_the_column_is_read(grouped_run, capsys):
    tmp_path, run = grouped_run
    new = tmp_path / "new.csv"
    new.write_text('sqft\n"1,950"\n"1,95"\n')
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{new}:3:1 (column 'sqft'): expected a number, got '1,95'" in err
    assert "retrain" not in err and "the run reads this column's numbers as --thousands ',' write them" in err
    assert "in groups of three digits after each ','" in err


def test_a_column_without_a_format_keeps_the_comma_advice(tmp_path, capsys):
    r = np.random.default_rng(1)
    data = tmp_path / "plain.csv"
    data.write_text("a,y\n" + "\n".join(f"{x:.3f},{2 * x:.3f}" for x in r.normal(size=80)) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--quiet", "--hidden", "4", "--out", str(run)]) == 0
    new = tmp_path / "new.csv"
    new.write_text('a\n"2,75"\n')
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    # the advice is predict's own option for this file, not a retraining
    assert "read this file with --thousands ',' or --decimal ','" in err and "retrain with" not in err
    # and following it reads the cell as the decimal comma it is
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), "--data", str(new), "--out", str(out), "--decimal", ","]) == 0
    with_comma = np.loadtxt(out, delimiter=",", skiprows=1)
    new.write_text("a\n2.75\n")
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 0
    assert float(with_comma) == float(np.loadtxt(out, delimiter=",", skiprows=1))
