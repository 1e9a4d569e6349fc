"""The command line used the way a stranger uses it: their own files and directories, odd but
reasonable requests. Each test is one problem found that way, run through ``python -m downslope``
in a subprocess (the real command line, exit status and all)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "downslope", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["compare", "lr-find", "landscape"])
def test_a_directory_of_the_users_own_files_is_never_written_into(tmp_path, command):
    """compare used to write compare.csv and friends into any existing --out, a directory of the user's
    own files or another run included; now it reserves --out like train, landscape and lr-find."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.txt").write_text("months of work")
    args = {"compare": ["--data", "moons", "--epochs", "1"], "lr-find": ["--data", "moons"], "landscape": []}[command]
    for extra in ([], ["--overwrite"]):  # the flag the refusal names exists, and still spares a non-run
        done = _cli(command, *args, "--out", str(mine), *extra, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "--out" in done.stderr and str(mine) in done.stderr
        assert "unrecognized arguments" not in done.stderr
        assert sorted(p.name for p in mine.iterdir()) == ["chapter1.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no staging directory left behind


@pytest.mark.slow
def test_compare_refuses_a_training_run_and_overwrites_its_own(tmp_path):
    """compare's directory is a run of its own: published whole, refused as --out of another compare
    unless --overwrite, and never mixed into a training run's directory."""
    assert (
        _cli("train", "--data", "moons", "--epochs", "1", "--out", "trained", "--quiet", cwd=tmp_path).returncode == 0
    )
    before = sorted(p.name for p in (tmp_path / "trained").iterdir())
    done = _cli("compare", "--data", "moons", "--epochs", "1", "--optimizers", "sgd", "--out", "trained", cwd=tmp_path)
    assert done.returncode == 2 and "holds a run" in done.stderr
    assert sorted(p.name for p in (tmp_path / "trained").iterdir()) == before

    compare = ["compare", "--data", "moons", "--epochs", "1", "--out", "cmp", "--quiet"]
    assert _cli(*compare, "--optimizers", "sgd,adam", cwd=tmp_path).returncode == 0
    assert {"compare.csv", "histories.csv", "compare.png", "status.json"} <= {
        p.name for p in (tmp_path / "cmp").iterdir()
    }
    again = _cli(*compare, "--optimizers", "sgd", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert _cli(*compare, "--optimizers", "sgd", "--overwrite", cwd=tmp_path).returncode == 0
    rows = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["sgd"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
