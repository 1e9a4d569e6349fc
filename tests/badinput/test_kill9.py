"""kill -9 during checkpoint writes: the last complete checkpoint always loads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import downslope as ds

WRITER = textwrap.dedent(
    """
    import os, sys, time, numpy as np, downslope as ds
    real_fsync = os.fsync
    def slow_fsync(fd):  # a slow disk: the temp file sits half-committed for a while before the rename
        time.sleep(0.05)
        real_fsync(fd)
    os.fsync = slow_fsync
    path = sys.argv[1]
    i = 0
    while True:
        i += 1
        big = np.full(200_000, i, dtype=np.float32)     # ~800 KB: a write takes a while
        ds.save({"step": i, "weights": big}, path)
        print(i, flush=True)
    """
)


def test_killed_writer_always_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.ds"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(0)
    kills = mid_write = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # at least one checkpoint is complete
        assert first.strip()
        time.sleep(float(rng.uniform(0.0, 0.15)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        state = ds.load(path)  # must never raise
        step = state["step"]
        assert step >= 1
        np.testing.assert_array_equal(state["weights"], np.full(200_000, step, dtype=np.float32))
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".ckpt.ds.")]
        mid_write += bool(leftovers)  # the kill landed while a new checkpoint was being written
        for name in leftovers:  # a killed write may leave its temp file; it is never the checkpoint
            (tmp_path / name).unlink()
    assert kills == 12
    # With the slow disk, writing is nearly all the writer does, so most kills land mid-write; require
    # that a good share did, or the test would prove little.
    assert mid_write >= 5, mid_write
    print(f"kill -9: {kills} kills, {mid_write} during a checkpoint write, every last checkpoint loaded")
