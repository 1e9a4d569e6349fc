"""``downslope train --checkpoint-seconds S``: the run's checkpoint is written after the first epoch, then at
most every S seconds, and always where training stops; a run killed between two writes resumes from the
last one to the same result as an uninterrupted run. The clock is a stand-in: no test here is timed."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from downslope import runs, serialization
from downslope.cli import main
from downslope.cli import train as cli_train
from downslope.errors import ConfigError
from downslope.experiment import normalize_config
from downslope.train import callbacks

pytest.importorskip("matplotlib")

TINY = ["--data", "iris", "--hidden", "8", "--patience", "0", "--epochs", "8", "--quiet", "--seed", "3"]


@pytest.fixture(autouse=True)
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


@pytest.fixture
def saves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The epochs (from 1) whose checkpoint was written."""
    written: list[int] = []
    real = callbacks.ModelCheckpoint._save

    def save(self: Any, path: str, state: dict[str, Any], epoch: int) -> None:
        real(self, path, state, epoch)
        written.append(epoch + 1)

    monkeypatch.setattr(callbacks.ModelCheckpoint, "_save", save)
    return written


def _clock(monkeypatch: pytest.MonkeyPatch, step: float, at_call: dict[int, Any] | None = None) -> None:
    """A clock that moves ``step`` seconds at each reading (one per epoch); ``at_call[n]()`` runs at the n-th."""
    ticks: Iterator[int] = iter(range(10**6))

    def clock() -> float:
        n = next(ticks)
        if at_call and n in at_call:
            at_call[n]()
        return n * step

    monkeypatch.setattr(cli_train, "_checkpoint_clock", clock)


def _model(path: Path) -> dict[str, Any]:
    return serialization.load(path / "model.ds")["model"]


def test_saves_are_spaced_by_the_seconds_and_the_last_epoch_is_saved(tmp_path, monkeypatch, saves) -> None:
    _clock(monkeypatch, 1.0)
    assert main(["train", *TINY, "--checkpoint-seconds", "2.5", "--out", str(tmp_path / "a")]) == 0
    assert saves == [1, 4, 7, 8]  # the first, then 3 s apart (>= 2.5), and the last
    assert "checkpoint_seconds = 2.5\n" in (tmp_path / "a" / runs.CONFIG_FILE).read_text()
    saves.clear()
    assert main(["train", *TINY, "--checkpoint-seconds", "0", "--out", str(tmp_path / "b")]) == 0
    assert saves == list(range(1, 9))  # 0: after every epoch, as before the option
    saves.clear()
    _clock(monkeypatch, 0.0)
    assert main(["train", *TINY, "--out", str(tmp_path / "c")]) == 0
    assert saves == [1, 8]  # the default 30 s: a fast run writes its first and last epochs only
    assert "checkpoint_seconds = 30.0\n" in (tmp_path / "c" / runs.CONFIG_FILE).read_text()


def test_a_signal_saves_the_epoch_it_stops_after_and_the_resume_matches(tmp_path, monkeypatch, saves, capsys) -> None:
    assert main(["train", *TINY, "--out", str(tmp_path / "straight")]) == 0
    saves.clear()
    # SIGINT as epoch 3 ends (0-based reading 2): fit stops after it; the throttle would have skipped it
    _clock(monkeypatch, 0.0, {2: lambda: os.kill(os.getpid(), signal.SIGINT)})
    out = tmp_path / "r"
    assert main(["train", *TINY, "--out", str(out)]) == runs.EXIT_INTERRUPTED
    assert saves == [1, 3]
    monkeypatch.setattr(cli_train, "_checkpoint_clock", lambda: 0.0)
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "resuming after epoch 3 of 8" in capsys.readouterr().out
    got, want = _model(out), _model(tmp_path / "straight")
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_kill_between_two_saves_resumes_from_the_last_one_to_the_same_result(
    tmp_path, monkeypatch, saves, capsys
) -> None:
    assert main(["train", *TINY, "--checkpoint-seconds", "2.5", "--out", str(tmp_path / "straight")]) == 0
    saves.clear()

    def kill() -> None:
        raise SystemExit(137)  # as kill -9 as epoch 6 ends: nothing more is written

    _clock(monkeypatch, 1.0, {5: kill})
    out = tmp_path / "killed"
    with pytest.raises(SystemExit):
        main(["train", *TINY, "--checkpoint-seconds", "2.5", "--out", str(out)])
    assert saves == [1, 4]  # epochs 5 and 6 are lost
    capsys.readouterr()
    _clock(monkeypatch, 1.0)
    assert main(["train", "--resume", str(out), "--checkpoint-seconds", "0"]) == 0  # may change on resume
    assert "resuming after epoch 4 of 8" in capsys.readouterr().out
    got, want = _model(out), _model(tmp_path / "straight")
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert _untimed(out / "history.csv") == _untimed(tmp_path / "straight" / "history.csv")


def _untimed(path: Path) -> list[dict[str, str]]:
    """history.csv's rows without the clocks (which differ between runs)."""
    import csv

    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("epoch_time", "time")} for row in csv.DictReader(f)]


def test_the_setting_is_checked_and_an_old_config_without_it_reads_the_default() -> None:
    assert normalize_config({"data": "iris"})["checkpoint_seconds"] == 30.0
    assert normalize_config({"training": {"checkpoint_seconds": 0}})["checkpoint_seconds"] == 0.0
    with pytest.raises(ConfigError, match="checkpoint_seconds must be >= 0, got -1.0"):
        normalize_config({"checkpoint_seconds": -1})
    with pytest.raises(ConfigError, match="checkpoint_seconds: expected a number"):
        normalize_config({"checkpoint_seconds": "often"})


def test_help_says_what_a_kill_loses(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "--checkpoint-seconds S" in said and "kill -9 loses at most the epochs of the last S seconds" in said
