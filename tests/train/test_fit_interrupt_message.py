"""The first Ctrl-C says at once that the epoch is being finished (an epoch can take minutes)."""

from __future__ import annotations

import os
import signal

import numpy as np

import downslope as ds
from downslope import nn, optim
from downslope.train import fit
from downslope.train.callbacks import Callback


class _InterruptMidEpoch(Callback):
    """SIGINT in the middle of epoch 2 (0-based 1), then records what stderr held before the epoch ended."""

    def __init__(self, capsys):
        self.capsys, self.said = capsys, None

    def on_batch_end(self, batch, logs=None):
        if self.trainer.epoch == 1 and batch == 1:
            os.kill(os.getpid(), signal.SIGINT)
            self.said = self.capsys.readouterr().err  # still inside the epoch


def test_first_ctrl_c_prints_one_line_before_the_epoch_ends(capsys):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), rng.normal(size=(40, 1)).astype(np.float32)
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    spy = _InterruptMidEpoch(capsys)
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=5, batch_size=8,
                  callbacks=[spy], verbose=0)  # fmt: skip
    assert "SIGINT received: finishing epoch 2; Ctrl-C again to stop now" in spy.said
    assert history.stop_kind == "interrupted" and len(history) == 2
