"""kill -9 during checkpoint writes: the last complete checkpoint always loads.

Half of the kills are placed deterministically in the middle of a write: the writer pauses inside
the fsync of its temporary file (written, not yet renamed into place) and says so, and the test kills
it there. The other half land wherever the writer happens to be.

A whole `downslope train` is killed ten times the same way: it runs under a wrapper that pauses at a
chosen point (start-up, between epochs, mid-epoch, mid-checkpoint, while the results are written) and
says so, so every kill lands where it was meant to on a machine however loaded; nothing depends on timing.
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
# a checkpoint after every epoch (--checkpoint-seconds 0), so that each kill point's last saved epoch is known
TRAIN = ["--data", "blobs", "--hidden", "16", "--batch-size", "4", "--epochs", "24", "--patience", "0", "--seed", "7",
         "--checkpoint-seconds", "0"]  # fmt: skip

# `downslope train` in a process that pauses at a chosen point and says so on stdout ("PAUSED ..."), so
# that the test kills it exactly there, however loaded the machine is (no race between the kill and the
# run). The point: after the line "Epoch E/24" (E = 0: from the start), the N-th event of a kind:
# "now" (at that line: between epochs), "forward" (a module's forward: mid-epoch), "fsync" (a regular
# file written but not yet renamed into place: mid-checkpoint, or the results and status marker after
# the last epoch, or the run's reservation at start-up).
PAUSING = textwrap.dedent(
    """
    import os, runpy, stat, sys, time
    after_epoch, kind, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sys.argv = ["downslope", *sys.argv[4:]]
    seen = {"epoch": after_epoch == 0, "events": 0}
    real_stdout = sys.__stdout__

    def pause(what):
        real_stdout.write(f"\\nPAUSED {what}\\n")  # on a line of its own: print() ends lines apart
        real_stdout.flush()
        time.sleep(600)

    def event(name):
        if seen["epoch"] and name == kind:
            seen["events"] += 1
            if seen["events"] == count:
                pause(f"at {name} {count} after epoch {after_epoch}")

    class Watch:  # stdout/stderr, watching for the epoch lines
        def __init__(self, stream):
            self.stream = stream
        def write(self, text):
            n = self.stream.write(text)
            self.stream.flush()
            for line in text.splitlines():
                if line.startswith("Epoch ") and int(line.split()[1].split("/")[0]) == after_epoch:
                    seen["epoch"] = True
                    if kind == "now":
                        pause(f"after epoch {after_epoch}")
            return n
        def __getattr__(self, name):
            return getattr(self.stream, name)

    sys.stdout, sys.stderr = Watch(sys.stdout), Watch(sys.stderr)
    real_fsync = os.fsync
    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            event("fsync")
        real_fsync(fd)
    os.fsync = fsync
    from downslope.nn import Module
    real_call = Module.__call__
    def call(self, *args, **kwargs):
        event("forward")
        return real_call(self, *args, **kwargs)
    Module.__call__ = call
    runpy.run_module("downslope", run_name="__main__", alter_sys=True)
    """
)


def _downslope(*args: str, cwd, pause: tuple[int, str, int] | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = [sys.executable, "-m", "downslope"]
    if pause is not None:
        (cwd / "pausing.py").write_text(PAUSING)
        start = [sys.executable, str(cwd / "pausing.py"), *map(str, pause)]
    return subprocess.Popen(
        [*start, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env
    )


def _kill_points(rng: np.random.Generator) -> list[tuple[int, str, int]]:
    """Ten pause points moving forward through the run: start-up, between epochs, mid-epoch,
    mid-checkpoint, and last while the results are written (nine files after the last epoch)."""
    points = [(0, "fsync", int(rng.integers(1, 4)))]  # start-up: reserving the run, its config, the first checkpoint
    for epoch in sorted(int(v) for v in rng.choice(np.arange(1, 24), size=8, replace=False)):
        kind = str(rng.choice(["now", "forward", "fsync"]))
        # ~330 forward calls per epoch: fewer than 250 after an epoch's line land in the next epoch
        count = {"now": 0, "forward": int(rng.integers(1, 250)), "fsync": 1}[kind]
        points.append((epoch, kind, count))
    return points + [(24, "fsync", int(rng.integers(1, 10)))]


@pytest.mark.slow
def test_train_killed_ten_times_then_resumed_equals_an_uninterrupted_run(tmp_path):
    """kill -9 at ten points of `downslope train` (during start-up, between epochs, mid-epoch,
    mid-checkpoint, while the results are written), resuming in between; the finished run's weights
    and losses equal those of a run that was never interrupted, bit for bit."""
    from downslope import runs, serialization

    straight = _downslope("train", *TRAIN, "--quiet", "--out", str(tmp_path / "straight"), cwd=tmp_path)
    assert straight.wait(timeout=300) == 0
    out = tmp_path / "killed"
    points = _kill_points(np.random.default_rng(13))
    for point in points:
        assert runs.read_status(out) is None, f"the run completed before the kill at {point}"
        # A run killed before it wrote its config.toml cannot be resumed (there is nothing to say how
        # to continue it): it is started again, which takes its place (README: "Runs are never lost").
        resumable = (runs.staging_path(out) / "config.toml").exists()
        args = ("train", "--resume", str(out)) if resumable else ("train", *TRAIN, "--out", str(out))
        proc = _downslope(*args, cwd=tmp_path, pause=point)
        assert proc.stdout is not None
        output = []
        while not output or not output[-1].startswith("PAUSED"):
            output.append(proc.stdout.readline())
            assert output[-1], f"the run ended without reaching {point}:\n{''.join(output)[-3000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        ckpt = runs.staging_path(out) / "checkpoint.ckpt"
        epoch = point[0]
        if epoch >= 1:  # the checkpoint on disk is the last complete one: that of the epoch last printed
            assert serialization.load(ckpt)["epoch"] == epoch, point
        elif ckpt.exists():
            assert serialization.load(ckpt)["epoch"] >= 1
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
    print(f"train killed 10 times, at {points}; resumed run equals the uninterrupted one")
