"""What ``downslope train`` says to whoever runs it: an empty ``--out`` is refused (not read as "no --out"),
and ``--resume`` says where it continues from."""

from __future__ import annotations

import os
import signal

import pytest

from downslope import runs
from downslope.cli import main
from downslope.cli import train as cli_train

pytest.importorskip("matplotlib")

TINY = ["--data", "iris", "--hidden", "8", "--patience", "0"]


@pytest.mark.parametrize("command", [["train", *TINY, "--epochs", "1", "--out", ""],
                                     ["train", *TINY, "--epochs", "1", "--out="],
                                     ["predict", "runs/x", "--data", "iris", "--out", ""]])  # fmt: skip
def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(command)
    assert exited.value.code == 2
    assert "empty --out" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # no run written under an automatic name


def _interrupt_at(monkeypatch, at):
    """The run's checkpoint callback, receiving SIGINT while it writes epoch ``at`` (0-based)."""
    made = cli_train._run_checkpoint

    def patched(run):
        saver = made(run)
        write = saver.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            if epoch == at:
                os.kill(os.getpid(), signal.SIGINT)
            write(epoch, logs)

        saver.on_epoch_end = on_epoch_end
        return saver

    monkeypatch.setattr(cli_train, "_run_checkpoint", patched)


def test_resume_says_after_which_epoch_it_continues(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    _interrupt_at(monkeypatch, 1)
    assert main(["train", *TINY, "--epochs", "4", "--quiet", "--out", str(out)]) == runs.EXIT_INTERRUPTED
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    said = capsys.readouterr().out
    assert "resuming after epoch 2 of 4\n" in said, said
    assert said.index("resuming after epoch 2 of 4") < said.index("stopped:")


def test_resume_of_a_run_interrupted_in_its_last_epoch_is_resumable_and_says_so(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    _interrupt_at(monkeypatch, 1)  # the last epoch: kept resumable, exit 130, as at any other point
    assert main(["train", *TINY, "--epochs", "2", "--quiet", "--out", str(out)]) == runs.EXIT_INTERRUPTED
    assert runs.read_status(runs.staging_path(out))["status"] == runs.INTERRUPTED and not out.exists()
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "resuming after epoch 2: no epoch left to train; writing the run" in capsys.readouterr().out
    assert runs.check_complete(out) == out


def test_resume_of_a_run_without_a_saved_epoch_says_it_starts_over(tmp_path, capsys):
    out = tmp_path / "r"
    run = runs.reserve(out)  # as a run killed after its config was written, before its first epoch ended
    runs.write_config(run, f'data = "iris"\nepochs = 1\nhidden = [8]\nout = "{out}"\n')
    run.leave(runs.INTERRUPTED)
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "resuming: no epoch was saved; starting over\n" in capsys.readouterr().out
