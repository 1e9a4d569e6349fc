"""SIGTERM/SIGINT in the middle of training: the epoch finishes, a checkpoint is saved, the process
exits cleanly, and resuming from that checkpoint continues the run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import downslope as ds

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, downslope as ds
    from downslope import nn, optim
    from downslope.train import Callback

    class Announce(Callback):
        def on_epoch_end(self, epoch, logs=None):
            print("epoch", epoch, flush=True)

    ds.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 20)).astype(np.float32)
    y = (X[:, :1] * 2 + 1).astype(np.float32)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    resume = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    history = ds.fit(model, nn.MSELoss(), opt, (X, y), epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 100000,
                     batch_size=32, callbacks=[Announce()], checkpoint_dir=sys.argv[1], resume_from=resume,
                     verbose=0, seed=0)
    if len(sys.argv) > 4:  # where to put the final weights and the loss curve
        ds.save({"model": model.state_dict(), "loss": history.as_dict()["loss"]}, sys.argv[4])
    print("STOP", history.stop_reason, len(history), flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ckpt_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("epoch")  # training is under way
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    stop_line = [line for line in out.splitlines() if line.startswith("STOP")]
    assert stop_line and sig.name in stop_line[0], out
    epochs_done = int(stop_line[0].split()[-1])
    state = ds.load(ckpt_dir / "last.ckpt")
    assert state  # the checkpoint is complete and verified
    # Resume for two more epochs: the run continues from where it stopped ...
    total = epochs_done + 2
    resumed = subprocess.run(
        [sys.executable, str(script), str(ckpt_dir), str(ckpt_dir / "last.ckpt"), str(total), str(tmp_path / "r.ds")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "STOP" in resumed.stdout and resumed.stdout.strip().splitlines()[-1].split()[-1] == str(total)
    # ... exactly: the same weights and losses, bit for bit, as one uninterrupted run of as many epochs.
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    straight = subprocess.run(
        [sys.executable, str(script), str(fresh_dir), "", str(total), str(tmp_path / "s.ds")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert straight.returncode == 0, straight.stderr
    got, want = ds.load(tmp_path / "r.ds"), ds.load(tmp_path / "s.ds")
    assert len(got["loss"]) == len(want["loss"]) == total
    assert got["loss"] == want["loss"]
    assert got["model"].keys() == want["model"].keys()
    for name in want["model"]:
        np.testing.assert_array_equal(np.asarray(got["model"][name]), np.asarray(want["model"][name]), err_msg=name)
