"""``runs.list_runs(dir)`` and ``downslope runs [DIR]``: every run in a directory with its status and metrics."""

from __future__ import annotations

import json

import pytest

from downslope import runs
from downslope.cli import main


def _published(root, name, status=runs.COMPLETE, metrics=None):
    run = runs.reserve(root / name)
    run.write_text("metrics.json", json.dumps(metrics or {}))
    run.publish(status)
    return root / name


def test_list_runs_names_each_status(tmp_path):
    _published(tmp_path, "a", metrics={"test_mse": 0.5, "final_loss": 0.1, "epochs": 3})
    _published(tmp_path, "b", runs.DIVERGED)
    stopped = runs.reserve(tmp_path / "c")
    runs.write_config(stopped, 'data = "iris"\nepochs = 1\n')
    stopped.leave(runs.INTERRUPTED)
    live = runs.reserve(tmp_path / "d")  # held by this process
    killed_early = runs.reserve(tmp_path / "e")  # no config.toml: nothing to continue
    killed_early.leave(runs.INTERRUPTED)
    broken = _published(tmp_path, "f")
    (broken / "metrics.json").unlink()  # a listed file gone
    (tmp_path / "notes").mkdir()  # not a run
    (tmp_path / "notes" / "x.txt").write_text("x")
    found = {r.name: r for r in runs.list_runs(tmp_path)}
    assert {k: r.status for k, r in found.items()} == {
        "a": "complete", "b": "diverged", "c": "stopped", "d": "live", "e": "broken", "f": "broken",
    }  # fmt: skip
    assert found["a"].metrics == {"test_mse": 0.5, "epochs": 3} and found["a"].path == tmp_path / "a"
    assert found["c"].path == runs.staging_path(tmp_path / "c")
    live.discard()


def test_runs_command_prints_one_line_per_run(tmp_path, capsys):
    _published(tmp_path, "a", metrics={"test_accuracy": 0.91234567, "epochs": 4})
    assert main(["runs", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "a  complete   test_accuracy=0.9123, epochs=4\n"
    with pytest.raises(runs.ConfigError, match="is not a directory"):
        runs.list_runs(tmp_path / "nope")
    assert main(["runs", str(tmp_path / "nope")]) == 2
