"""evaluate RUN (the run's own test split) finds the file the run trained on as training named it, at the
absolute path training recorded, or beside the run as training placed them, and checks its SHA-256."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")

FAST = ["--hidden", "8", "--epochs", "2", "--patience", "0", "--quiet"]


def _project(root):
    """A run trained from ``root`` on ``data/t.csv`` (relative paths, as a user types them)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    lines = ["a,b,y"] + [f"{a:.4f},{b:.4f},{3 * a - b:.4f}" for a, b in X]
    (root / "data").mkdir(parents=True)
    (root / "data" / "t.csv").write_text("\n".join(lines) + "\n")
    assert main(["train", "--data", "data/t.csv", "--out", "runs/x", *FAST]) == 0


def _scored(capsys) -> tuple[dict, str]:
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_evaluate_finds_the_training_file_from_another_directory_and_for_a_moved_project(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    _project(project)
    capsys.readouterr()
    assert main(["evaluate", "runs/x"]) == 0
    here, _ = _scored(capsys)
    reported = json.loads((project / "runs" / "x" / "metrics.json").read_text())
    assert abs(here["r2"] - reported["test_r2"]) < 1e-5
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data/t.csv names nothing from here: the recorded absolute path does
    assert main(["evaluate", str(project / "runs" / "x")]) == 0
    assert _scored(capsys)[0] == here
    shutil.copytree(project / "runs" / "x", elsewhere / "copy")  # a copied run, its data file still in place
    assert main(["evaluate", "copy"]) == 0
    assert _scored(capsys)[0] == here
    moved = tmp_path / "moved"
    shutil.move(project, moved)  # the whole project elsewhere: the file is where it lay beside the run
    assert main(["evaluate", str(moved / "runs" / "x")]) == 0
    scored, err = _scored(capsys)
    assert scored == here and str(moved / "data" / "t.csv") in err


def test_evaluate_refuses_a_changed_training_file_and_names_the_paths_it_tried(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    capsys.readouterr()
    data = tmp_path / "data" / "t.csv"
    original = data.read_text()
    data.write_text(original.replace("a,b,y\n", "a,b,y\n0.5,0.5,1.0\n", 1))  # a row added: the split is not the run's
    assert main(["evaluate", "runs/x"]) == 2
    err = capsys.readouterr().err
    assert str(data) in err and "another file" in err and "SHA-256" in err
    kept = tmp_path / "kept.csv"
    kept.write_text(original)
    data.unlink()
    assert main(["evaluate", "runs/x"]) == 2
    err = capsys.readouterr().err
    assert "which is not found; tried " in err and str(data) in err and "--data FILE" in err
    # the file given with --data, wherever it is: the run's test split of it
    assert main(["evaluate", "runs/x", "--data", str(kept)]) == 0
    scored, err = _scored(capsys)
    reported = json.loads((tmp_path / "runs" / "x" / "metrics.json").read_text())
    assert abs(scored["r2"] - reported["test_r2"]) < 1e-5 and "is the file runs/x trained on" in err
    assert scored["rows"] == 16
