"""--no-header's loose ends: --resume names the option as typed; a header-less file's target by number (3)
or by name (col_3), and errors that list the names; predict/evaluate given a file with a header row for a run
trained --no-header (and the reverse) say so in one line."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main
from downslope.data.tabular import read_csv
from downslope.errors import DataError

pytest.importorskip("matplotlib")


def _files(tmp_path):
    r = np.random.default_rng(0)
    X = r.normal(size=(60, 3))
    y = X @ [1.0, 2.0, -1.0]
    headerless = tmp_path / "nohdr.csv"
    np.savetxt(headerless, np.c_[X, y], delimiter=",", fmt="%.4f")
    with_header = tmp_path / "hdr.csv"
    np.savetxt(with_header, np.c_[X, y], delimiter=",", fmt="%.4f", header="a,b,c,price", comments="")
    return headerless, with_header, X


def test_a_header_less_files_target_by_number_or_name(tmp_path):
    headerless, _, _ = _files(tmp_path)
    for target in ("3", "col_3"):
        table, encoder = read_csv(str(headerless), header_row=False, target=target)
        assert table.target_name == "col_3" and encoder.columns == ["col_0", "col_1", "col_2"]
    assert read_csv(str(headerless), header_row=False, target="0", drop=["1"])[1].columns == ["col_2", "col_3"]
    for target in ("7", "col_9"):
        with pytest.raises(
            DataError, match=rf"no target column '{target}'; columns are \['col_0', 'col_1', 'col_2', 'col_3'\]"
        ):
            read_csv(str(headerless), header_row=False, target=target)


def test_train_by_number_then_resume_names_no_header(tmp_path, capsys):
    headerless, _, _ = _files(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--data", str(headerless), "--no-header", "--target", "3", "--epochs", "2",
                 "--hidden", "4", "--out", str(run)]) == 0  # fmt: skip
    assert 'target = "col_3"' in (run / "config.toml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-header", "--no-scale-target"]) == 2
    err = capsys.readouterr().err
    assert "drop --no-scale-target, --no-header (or start a new run without --resume)" in err
    assert "--header" not in err.replace("--no-header", "")


def test_predict_and_evaluate_refuse_a_header_row_for_a_header_less_run(tmp_path, capsys):
    headerless, with_header, X = _files(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--data", str(headerless), "--no-header", "--epochs", "2", "--hidden", "4",
                 "--out", str(run)]) == 0  # fmt: skip
    features = tmp_path / "features.csv"
    np.savetxt(features, X[:4], delimiter=",", fmt="%.4f", header="a,b,c", comments="")
    out = tmp_path / "p.csv"
    for data in (features, with_header):
        capsys.readouterr()
        assert main(["predict", str(run), "--data", str(data), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "looks like a header row" in err[0] and "trained with --no-header" in err[0]
        assert not out.exists()
    assert main(["evaluate", str(run), "--data", str(with_header)]) == 2
    assert "looks like a header row" in capsys.readouterr().err
    # the header-less files themselves are read
    np.savetxt(features, X[:4], delimiter=",", fmt="%.4f")
    assert main(["predict", str(run), "--data", str(features), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 5


def test_predict_refuses_a_header_less_file_for_a_run_with_a_header(tmp_path, capsys):
    headerless, with_header, X = _files(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--data", str(with_header), "--target", "price", "--epochs", "2", "--hidden", "4",
                 "--out", str(run)]) == 0  # fmt: skip
    features = tmp_path / "features.csv"
    np.savetxt(features, X[:4], delimiter=",", fmt="%.4f")
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(features), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds numbers, not column names" in err[0] and "a,b,c" in err[0]
