"""``downslope train`` and signals, through a real process: two SIGINTs at random moments always end with
exit status 130 and one line (never a crash, a traceback or an abort), and Ctrl-C during start-up says that
the run was discarded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest


def _csv(path, rows):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    np.savetxt(path, np.c_[x, x @ [1.0, 2.0, 3.0]], delimiter=",", header="a,b,c,y", comments="")


def _train(cwd, out, epochs, hidden="128,128"):
    cmd = [sys.executable, "-m", "downslope", "train", "--data", "d.csv", "--target", "y", "--hidden", hidden,
           "--epochs", str(epochs), "--patience", "0", "--out", out]  # fmt: skip
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_sigints_at_random_moments_exit_130_cleanly(tmp_path):
    _csv(tmp_path / "d.csv", 4000)
    rng = random.Random(0)
    started, tries = time.monotonic(), 0
    while tries < 2 or (time.monotonic() - started < 12 and tries < 6):
        tries += 1
        proc = _train(tmp_path, f"runs/r{tries}", 1000)
        staging = tmp_path / "runs" / f".r{tries}.partial"
        deadline = time.monotonic() + 60
        while not (staging / "checkpoint.ckpt").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.4))
        proc.send_signal(signal.SIGINT)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        said = out + err
        assert proc.returncode == 130, said
        assert "Traceback" not in said and "free" not in said and "corrupt" not in said, said
        assert f"the run is kept in {os.path.join('runs', f'.r{tries}.partial')}/" in err, err
        assert (staging / "checkpoint.ckpt").is_file()


@pytest.mark.slow
def test_ctrl_c_during_start_up_says_the_run_was_discarded(tmp_path):
    _csv(tmp_path / "d.csv", 200_000)  # a file that takes a while to read: the signal lands in start-up
    proc = _train(tmp_path, "runs/b", 3)
    staging = tmp_path / "runs" / ".b.partial"
    deadline = time.monotonic() + 60
    while not (staging / "config.toml").exists():  # written at start-up, before the data is read
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "nothing was trained and the run was discarded" in err, err
    assert not staging.exists() and not (tmp_path / "runs" / "b").exists()
