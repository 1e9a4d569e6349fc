"""--no-header (header = false): a CSV without a header row is read with its first line as data and its
columns named col_0 .. col_{n-1}; evaluate and predict read the run's header-less files the same way; without
the option, the note about numbers as column names names it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from downslope.cli import main
from downslope.data.tabular import read_csv, read_table
from downslope.errors import ConfigError, DataError

pytest.importorskip("matplotlib")


def _headerless(tmp_path, n=120):
    r = np.random.default_rng(0)
    X = r.normal(size=(n, 3))
    y = X @ [1.0, 2.0, 3.0] + 400_000
    path = tmp_path / "nohdr.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", fmt="%.5f")
    return path, X, y


def test_the_first_line_is_data_and_the_columns_are_numbered(tmp_path, csv_reader):
    path, X, y = _headerless(tmp_path)
    table, encoder = read_csv(str(path), header_row=False)
    assert encoder.columns == ["col_0", "col_1", "col_2"] and table.target_name == "col_3"
    assert table.X.shape == (120, 3) and float(table.X[0, 0]) == pytest.approx(X[0, 0], abs=1e-5)
    assert not [n for n in table.notes if "column names are numbers" in n]
    assert read_csv(str(path), header_row=False, target="col_0")[1].columns == ["col_1", "col_2", "col_3"]
    # as read with a header (pandas' default), the first row is lost; the note names the option
    with_header, _ = read_csv(str(path))
    assert len(with_header.y) == 119
    assert any("pass --no-header (header = false in a config file)" in n for n in with_header.notes)


def test_errors_name_the_file_line_of_a_header_less_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n4,x,6\n7,8,9\n" + "".join(f"{i},{i + 1},{i + 2}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"bad\.csv:2:2 \(column 'col_1'\)"):
        read_csv(str(path), header_row=False)


def test_other_files_refuse_the_option(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="--no-header says a CSV has no header row"):
        read_table(str(path), header_row=False)


def test_train_evaluate_and_predict_a_header_less_file(tmp_path, capsys):
    path, X, y = _headerless(tmp_path)
    run = tmp_path / "run"
    args = ["train", "--data", str(path), "--no-header", "--epochs", "3", "--hidden", "8", "--out", str(run)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "target: 'col_3' (regression" in out and "column names are numbers" not in out
    assert "header = false" in (run / "config.toml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["rows"] == 24 and said["mse"] == pytest.approx(metrics["test_mse"], rel=1e-3)
    features = tmp_path / "new.csv"
    np.savetxt(features, X[:4], delimiter=",", fmt="%.5f")  # the feature columns alone, no header
    whole = tmp_path / "new_whole.csv"
    np.savetxt(whole, np.c_[X[:4], y[:4]], delimiter=",", fmt="%.5f")  # every column, as in training
    written = []
    for new in (features, whole):
        assert main(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 0
        written.append((tmp_path / "p.csv").read_text())
        assert len(written[-1].splitlines()) == 5  # a header line and 4 predictions
    assert written[0] == written[1]


def test_a_config_file_takes_header_false(tmp_path):
    from downslope.experiment import normalize_config

    assert normalize_config({"header": False})["header"] is False
    with pytest.raises(ConfigError, match="header: expected true or false"):
        normalize_config({"header": "none"})
