"""``downslope train --overwrite`` replaces only a directory downslope wrote as a run: a project that
happens to hold a ``status.json`` or a ``model.ds`` is refused and left as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from downslope import runs, serialization
from downslope.cli import main
from downslope.errors import StateError

TINY = ["--data", "iris", "--hidden", "4", "--epochs", "1", "--patience", "0", "--quiet"]


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _files(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "marker",
    [
        ("status.json", '{"build": "ok"}'),
        ("status.json", '{"status": "complete"}'),  # a status, but not the marker a run writes
        ("status.json", '{"status": "complete", "pid": 1, "time": "t", "files": "all"}'),
        ("model.ds", "weights of some other tool"),
    ],
)
def test_overwrite_refuses_a_project_with_a_file_named_like_a_run_marker(tmp_path, capsys, no_plots, marker):
    project = tmp_path / "proj"
    project.mkdir()
    (project / marker[0]).write_text(marker[1])
    (project / "main.py").write_text("print('years of work')")
    (project / "src").mkdir()
    (project / "src" / "lib.py").write_text("x = 1")
    before = _files(project)
    assert main(["train", *TINY, "--out", str(project), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a downslope run directory" in err, err
    assert _files(project) == before and (project / "src" / "lib.py").read_text() == "x = 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no working directory left beside it


def test_without_overwrite_a_project_is_called_not_empty_not_a_run(tmp_path, capsys, no_plots):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "status.json").write_text('{"build": "ok"}')
    assert main(["train", *TINY, "--out", str(project)]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "holds a run" not in err, err


def test_overwrite_still_replaces_a_finished_run(tmp_path, no_plots):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    first = json.loads((out / "status.json").read_text())["pid"]
    assert runs.is_run_directory(out) and first
    (out / "status.json").write_text((out / "status.json").read_text())  # touched, still the marker
    assert main(["train", *TINY, "--out", str(out), "--overwrite", "--seed", "5"]) == 0
    assert runs.check_complete(out) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_overwrite_still_replaces_an_interrupted_or_killed_run(tmp_path, no_plots):
    interrupted = runs.reserve(tmp_path / "a")
    interrupted.write_text(runs.CONFIG_FILE, "seed = 1\n")
    interrupted.write_bytes(runs.CHECKPOINT_FILE, b"x")
    interrupted.leave()
    killed = runs.reserve(tmp_path / "b")
    killed.write_text(runs.CONFIG_FILE, "seed = 1\n")
    killed.write_bytes(runs.CHECKPOINT_FILE, b"x")
    killed._unlock()  # kill -9: the status still says running
    for name in ("a", "b"):
        assert main(["train", *TINY, "--out", str(tmp_path / name), "--overwrite"]) == 0
        assert runs.check_complete(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_published_runs_of_every_kind_are_runs(tmp_path):
    for status in (runs.COMPLETE, runs.DIVERGED):
        run = runs.reserve(tmp_path / status)
        run.write_text("compare.csv", "a\n")
        run.publish(status)
        assert runs.is_run_directory(tmp_path / status)
        again = runs.reserve(tmp_path / status, overwrite=True)
        again.publish(status)


def test_a_run_from_before_status_markers_is_recognised_by_its_checkpoint(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.toml").write_text("seed = 1\n")
    serialization.save({"w": np.zeros(2, np.float32)}, old / "model.ds")
    assert runs.is_run_directory(old)
    runs.reserve(old, overwrite=True).publish()
    assert sorted(p.name for p in old.iterdir()) == ["status.json"]
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "config.toml").write_text("")
    (tmp_path / "fake" / "model.ds").write_bytes(b"PK\x03\x04 not really")
    assert not runs.is_run_directory(tmp_path / "fake")


def test_publish_refuses_a_final_name_replaced_by_a_project_meanwhile(tmp_path):
    done = runs.reserve(tmp_path / "r")
    done.publish()
    run = runs.reserve(tmp_path / "r", overwrite=True)
    (tmp_path / "r" / "status.json").write_text('{"build": "ok"}')  # someone put a project there
    with pytest.raises(StateError, match="not a downslope run directory"):
        run.publish()
    assert (tmp_path / "r" / "status.json").read_text() == '{"build": "ok"}'
