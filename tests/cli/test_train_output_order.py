"""What ``downslope train`` says, in the order it happens: where the run goes once the data is read,
the data's notes before the first epoch's line (as notes, not warnings), training's warnings after."""

from __future__ import annotations

import pytest

from downslope.cli import main


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _colours(tmp_path):
    p = tmp_path / "c.csv"
    names = ["red", "Red", "blue"]
    p.write_text("x,colour,y\n" + "\n".join(f"{i % 5},{names[i % 3]},{i % 7 / 2}" for i in range(60)) + "\n")
    return str(p)


def test_the_data_notes_come_before_training_as_notes(tmp_path, capsys, monkeypatch, no_plots):
    import sys

    monkeypatch.setattr(sys, "stderr", sys.stdout)  # one stream, as a terminal shows them: the order is kept
    out = tmp_path / "run"
    assert main(["train", "--data", _colours(tmp_path), "--target", "y", "--epochs", "2", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("Epoch 1/"))
    said = [i for i, line in enumerate(lines) if "differ only in upper/lower case" in line]
    assert len(said) == 1 and said[0] < first_epoch and lines[said[0]].startswith("note: ")
    writing = next(i for i, line in enumerate(lines) if line.startswith("writing the run to"))
    assert writing < next(i for i, line in enumerate(lines) if line.startswith("target: ")) < first_epoch


def test_input_refused_at_once_says_no_run_is_being_written(tmp_path, capsys):
    code = main(["train", "--data", _colours(tmp_path), "--target", "nope", "--out", str(tmp_path / "run")])
    assert code == 2
    captured = capsys.readouterr()
    assert "nope" in captured.err and "writing the run to" not in captured.out
    assert not (tmp_path / "run").exists()
