"""``downslope train ... | head -n 1``: a reader that closes the standard output early does not fail the
command or cost the run: the training goes on, the run is published, and the exit status is the run's."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from downslope.cli import main
from downslope.runs import read_status


class _ClosesAfter(io.StringIO):
    """A standard output whose reader goes away after ``lines`` lines."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= text.count("\n")
        return super().write(text)


def test_train_finishes_and_publishes_when_stdout_closes(tmp_path, monkeypatch, capsys):
    for lines in (0, 1):
        run = tmp_path / f"run{lines}"
        monkeypatch.setattr(sys, "stdout", _ClosesAfter(lines))
        assert main(["train", "--data", "iris", "--hidden", "8", "--epochs", "2", "--out", str(run)]) == 0
        assert (read_status(run) or {}).get("status") == "complete", read_status(run)
        assert "Broken pipe" not in capsys.readouterr().err


def test_closed_pipe_as_a_command(tmp_path):
    """The real thing: a pipe closed before the first line, and the interpreter's own flush at exit."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: every write to the standard output meets a closed pipe
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "downslope",
                "train",
                "--data",
                "iris",
                "--hidden",
                "8",
                "--epochs",
                "2",
                "--out",
                str(run),
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Broken pipe" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert (read_status(run) or {}).get("status") == "complete"
