"""predict --out on a read-only or full file system: one line naming --out, not the temporary file."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from downslope import serialization
from downslope.cli import main

pytest.importorskip("matplotlib")


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.EROFS, ": the file system holding it is read-only; choose a writable path"),
        (errno.ENOSPC, ": the device holding it is full; make room"),
    ],
)
def test_predict_names_out_when_it_cannot_write(tmp_path, monkeypatch, capsys, code, advice):
    run = tmp_path / "run"
    assert main(["train", "--data", "iris", "--hidden", "8", "--epochs", "2", "--out", str(run), "--quiet"]) == 0
    from sklearn.datasets import load_iris

    data = tmp_path / "x.csv"
    np.savetxt(data, load_iris().data, delimiter=",")
    out = tmp_path / "preds.csv"
    hidden = str(tmp_path / ".preds.csv.ab12cd34.tmp")

    def refused(path, payload):
        raise OSError(code, os.strerror(code), hidden)

    monkeypatch.setattr(serialization, "atomic_write_bytes", refused)
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"could not write the predictions to --out {out} ({os.strerror(code)}){advice}" in err, err
    assert hidden not in err and "Errno" not in err and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    where = tmp_path_factory.mktemp("iris")
    run = where / "run"
    assert main(["train", "--data", "iris", "--hidden", "8", "--epochs", "2", "--out", str(run), "--quiet"]) == 0
    from sklearn.datasets import load_iris

    data = where / "x.csv"
    np.savetxt(data, load_iris().data[:5], delimiter=",")
    return run, data


def test_predict_out_dash_writes_the_csv_to_stdout(iris_run, tmp_path, monkeypatch, capsys):
    run, data = iris_run
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", "-"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("prediction,p_") and len(lines) == 6, out
    assert not os.path.lexists(tmp_path / "-")


def test_predict_out_symlink_writes_its_target(iris_run, tmp_path):
    run, data = iris_run
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert main(["predict", str(run), "--data", str(data), "--out", str(link)]) == 0
    assert link.is_symlink()
    assert real.read_text().startswith("prediction,")


def test_predict_out_in_a_missing_directory_is_refused_and_nothing_is_made(iris_run, tmp_path, capsys):
    """Like cp or a shell's >, predict does not make directories: a mistyped one would silently be made."""
    run, data = iris_run
    missing = tmp_path / "no" / "such"
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(missing / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert f"directory {missing} does not exist; create it first" in err and err.count("\n") == 1, err
    assert not (tmp_path / "no").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["predict", str(run), "--data", str(data), "--out", str(afile / "p.csv")]) == 2
    assert f"{afile} is a file, not a directory" in capsys.readouterr().err
    (tmp_path / "no").mkdir()
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "no" / "p.csv")]) == 0
    assert (tmp_path / "no" / "p.csv").read_text().startswith("prediction,")
