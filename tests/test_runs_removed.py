"""A run directory removed while its process writes it (``rm -rf runs/.r.partial``) is never made again by the
next write and published, half empty, as complete: the writes and the publish refuse it, and ``train`` exits
non-zero with a message that says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from downslope import runs


def test_write_into_a_removed_run_directory_is_refused_and_not_recreated(tmp_path):
    run = runs.reserve(tmp_path / "r")
    run.write_text("config.toml", "x = 1\n")
    shutil.rmtree(run.staging)
    with pytest.raises(runs.RunRemovedError, match="was removed while training; the run is abandoned"):
        run.write_bytes("metrics.json", b"{}")
    assert not run.staging.exists()
    with pytest.raises(runs.RunRemovedError):
        run.publish(runs.COMPLETE)
    assert not (tmp_path / "r").exists() and not run.staging.exists()


def test_a_directory_made_again_at_the_staging_name_is_not_published(tmp_path):
    run = runs.reserve(tmp_path / "r")
    shutil.rmtree(run.staging)
    run.staging.mkdir()  # someone else's directory now: not the one reserved
    (run.staging / "model.ds").write_bytes(b"")
    with pytest.raises(runs.RunRemovedError):
        run.publish(runs.COMPLETE)
    assert not (tmp_path / "r").exists()
    run.discard()  # leaves the other directory alone
    assert (run.staging / "model.ds").exists()


def test_first_time_creation_still_makes_the_parents(tmp_path):
    run = runs.reserve(tmp_path / "a" / "b" / "r")
    run.write_text("notes.txt", "hello")
    run.publish(runs.COMPLETE)
    assert (tmp_path / "a" / "b" / "r" / "notes.txt").read_text() == "hello"


@pytest.mark.slow
def test_train_whose_run_directory_is_removed_fails_and_publishes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3))
    np.savetxt(tmp_path / "d.csv", np.c_[x, x @ [1.0, 2.0, 3.0]], delimiter=",", header="a,b,c,y", comments="")
    cmd = [sys.executable, "-m", "downslope", "train", "--data", "d.csv", "--target", "y", "--hidden", "64",
           "--epochs", "400", "--patience", "0", "--quiet", "--out", "runs/r"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / "runs" / ".r.partial"
    deadline = time.monotonic() + 60
    while not (staging / "checkpoint.ckpt").is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    for _ in range(20):  # a file being written meanwhile can make one pass find the directory not empty
        shutil.rmtree(staging, ignore_errors=True)
        if not staging.exists():
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert f"the run directory {os.path.join('runs', '.r.partial')} was removed while training" in err
    assert "the run is abandoned" in err
    assert not (tmp_path / "runs" / "r").exists()
    assert not staging.exists() or not (staging / "status.json").exists()
