"""SIGTERM sent to ``downslope train`` by a real process manager: the epoch under way is finished and kept,
resumable, and the command exits with the status an interruption has (130, as Ctrl-C), not 0, so that a
scheduler can tell the run did not complete; ``fit`` itself returns, its History saying it was interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from downslope import runs


def _csv(path, rows):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    np.savetxt(path, np.c_[x, x @ [1.0, 2.0, 3.0]], delimiter=",", header="a,b,c,y", comments="")


@pytest.mark.slow
def test_sigterm_keeps_the_run_and_exits_with_the_interrupted_status(tmp_path):
    _csv(tmp_path / "d.csv", 2000)
    cmd = [sys.executable, "-m", "downslope", "train", "--data", "d.csv", "--target", "y", "--hidden", "64",
           "--epochs", "1000", "--patience", "0", "--out", "runs/r"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / "runs" / ".r.partial"
    deadline = time.monotonic() + 60
    while not (staging / "checkpoint.ckpt").is_file():  # the first epoch is saved
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == runs.EXIT_INTERRUPTED == 128 + signal.SIGINT, out + err
    assert "interrupted by SIGTERM" in err and "--resume runs/r" in err and "Traceback" not in err, err
    assert runs.read_status(staging)["status"] == runs.INTERRUPTED


def test_fit_returns_after_sigterm_with_the_history_saying_it_was_interrupted(tmp_path):
    program = (
        "import json, os, signal, numpy as np, downslope as ds\n"
        "from downslope import nn\n"
        "from downslope.train import Callback, fit\n"
        "class Term(Callback):\n"
        "    def on_train_batch_end(self, batch, logs=None):\n"
        "        if self.trainer.epoch == 1 and batch == 0: os.kill(os.getpid(), signal.SIGTERM)\n"
        "x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32); y = x[:, :1]\n"
        "h = fit(nn.Linear(2, 1), 'mse', 'sgd', (x, y), epochs=50, callbacks=[Term()], verbose=0)\n"
        "print(json.dumps({'epochs': len(h), 'kind': h.stop_kind, 'reason': h.stop_reason}))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said == {"epochs": 2, "kind": "interrupted",
                    "reason": "interrupted by SIGTERM: finished epoch 2 and stopped"}, said  # fmt: skip
