"""kill -9 during checkpoint writes: the last complete checkpoint always loads.

Half of the kills are placed deterministically in the middle of a write: the writer pauses inside
the fsync of its temporary file (written, not yet renamed into place) and says so, and the test kills
it there. The other half land wherever the writer happens to be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import downslope as ds

WRITER = textwrap.dedent(
    """
    import os, stat, sys, time, numpy as np, downslope as ds
    path, pause_at = sys.argv[1], int(sys.argv[2])  # pause inside write number pause_at (0: never)
    real_fsync = os.fsync
    step = 0
    def fsync(fd):
        # The temporary file is complete but not yet renamed over the checkpoint: mid-write.
        if step == pause_at and stat.S_ISREG(os.fstat(fd).st_mode):
            print("PAUSE", step, flush=True)
            time.sleep(600)
        real_fsync(fd)
    os.fsync = fsync
    while True:
        step += 1
        big = np.full(200_000, step, dtype=np.float32)  # ~800 KB
        ds.save({"step": step, "weights": big}, path)
        print(step, flush=True)
    """
)


def _check_checkpoint(path) -> int:
    state = ds.load(path)  # must never raise
    step = state["step"]
    assert step >= 1
    np.testing.assert_array_equal(state["weights"], np.full(200_000, step, dtype=np.float32))
    return int(step)


@pytest.mark.slow
def test_killed_writer_always_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.ds"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(0)
    kills = mid_write = 0
    for trial in range(12):
        pause_at = int(rng.integers(2, 6)) if trial % 2 == 0 else 0
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), str(pause_at)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        if pause_at:
            lines = []
            while not lines or not lines[-1].startswith("PAUSE"):
                lines.append(proc.stdout.readline())
                assert lines[-1], "the writer ended without pausing"
        else:
            assert proc.stdout.readline().strip()  # at least one checkpoint is complete
            time.sleep(float(rng.uniform(0.0, 0.1)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        step = _check_checkpoint(path)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".ckpt.ds.")]
        if pause_at:
            # Killed mid-write: the previous checkpoint is the one on disk; the new one is only a temp file.
            assert step == pause_at - 1, (step, pause_at)
            assert leftovers, "the kill at the pause should have left the unfinished temporary file"
            mid_write += 1
        for name in leftovers:  # a killed write may leave its temp file; it is never the checkpoint
            (tmp_path / name).unlink()
    assert kills == 12 and mid_write == 6
    print(f"kill -9: {kills} kills, {mid_write} placed during a checkpoint write, every last checkpoint loaded")


# ---------------------------------------------------------------------- a whole `downslope train`
# Batches of 4 make each epoch long enough (tens of ms) that the test, reading the epoch lines a
# little behind the process on a loaded machine, still kills it before it has finished all 24.
TRAIN = ["--data", "blobs", "--hidden", "16", "--batch-size", "4", "--epochs", "24", "--patience", "0", "--seed", "7"]


def _downslope(*args: str, cwd) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "downslope", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env,
    )


@pytest.mark.slow
def test_train_killed_ten_times_then_resumed_equals_an_uninterrupted_run(tmp_path):
    """kill -9 at random points of `downslope train` (during start-up, mid-epoch, mid-checkpoint,
    while the results are written), ten times, resuming in between; the finished run's weights
    and losses equal those of a run that was never interrupted, bit for bit."""
    from downslope import runs, serialization

    straight = _downslope("train", *TRAIN, "--quiet", "--out", str(tmp_path / "straight"), cwd=tmp_path)
    assert straight.wait(timeout=300) == 0
    out = tmp_path / "killed"
    rng = np.random.default_rng(13)
    # Where to kill: after a random epoch line (then a random few milliseconds more), moving forward
    # through the run; the last kill waits for the final epoch, so it lands while the files are written.
    targets = sorted(int(v) for v in rng.choice(np.arange(0, 24), size=9, replace=False)) + [24]
    kills = 0
    for target in targets:
        if runs.read_status(out) is not None:
            break  # it finished before the kill landed
        args = (
            ("train", "--resume", str(out)) if runs.staging_path(out).exists() else ("train", *TRAIN, "--out", str(out))
        )
        proc = _downslope(*args, cwd=tmp_path)
        assert proc.stdout is not None
        epoch = 0
        while epoch < target:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("Epoch "):
                epoch = int(line.split()[1].split("/")[0])
        time.sleep(float(rng.uniform(0.0, 0.03)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        if runs.staging_path(out).exists():  # whatever was on disk is a loadable checkpoint or none
            ckpt = runs.staging_path(out) / "checkpoint.ckpt"
            if ckpt.exists():
                assert serialization.load(ckpt)["epoch"] >= 1
    assert kills >= 8
    if runs.read_status(out) is None:
        final = _downslope("train", "--resume", str(out), "--quiet", cwd=tmp_path)
        assert final.wait(timeout=300) == 0
    assert runs.check_complete(out)
    got = serialization.load(out / "model.ds")["model"]
    want = serialization.load(tmp_path / "straight" / "model.ds")["model"]
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    loss = [row.split(",")[1] for row in (out / "history.csv").read_text().splitlines()]
    assert loss == [row.split(",")[1] for row in (tmp_path / "straight" / "history.csv").read_text().splitlines()]
    print(f"train killed {kills} times at epochs {targets[:kills]}; resumed run equals the uninterrupted one")
