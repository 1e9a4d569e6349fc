"""What the CLI says when the system refuses: a deleted working directory, a path longer than the
system takes, a loop of symbolic links, a full disk behind the standard output. One line that names
what failed (never a bare errno, never a path of kilobytes)."""

from __future__ import annotations

import errno
import io
import os

from downslope.cli import main

FAST = ["--data", "moons", "--hidden", "4", "--epochs", "1", "--patience", "0", "--quiet"]


def test_a_deleted_working_directory_is_said(tmp_path, monkeypatch, capsys):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert main(["train", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "current working directory no longer exists" in err


def test_a_path_over_the_system_limit_is_said_shortly(tmp_path, capsys):
    long = os.path.join(str(tmp_path), *["d" * 200] * 25, "run")
    assert main(["train", *FAST, "--out", long]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400 and "bytes long" in err and "Errno" not in err


def test_a_loop_of_symbolic_links_is_not_called_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.symlink("loopA", "loopB")
    os.symlink("loopB", "loopA")
    assert main(["train", *FAST, "--out", "loopA/run"]) == 2
    err = capsys.readouterr().err
    assert "loop of symbolic links" in err and "is a file" not in err


class _FullDisk(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_behind_the_standard_output_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout", _FullDisk())
    assert main(["runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "writing to the standard output" in err and err.count("\n") == 1
