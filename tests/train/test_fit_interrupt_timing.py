"""When a signal lands decides what fit does: one during an epoch's checkpoint write stops after that epoch
(the last one too), SIGTERM says so at once as SIGINT does, and a second signal is raised between batches,
never from inside whatever code the handler interrupted."""

from __future__ import annotations

import os
import signal
import traceback

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.train import fit
from downslope.train.callbacks import Callback, ModelCheckpoint


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 3)).astype(np.float32), rng.normal(size=(40, 1)).astype(np.float32)


class _SignalWhileSaving(ModelCheckpoint):
    """A checkpoint writer that receives ``sig`` while it writes epoch ``at``'s checkpoint."""

    def __init__(self, path, sig, at):
        super().__init__(path)
        self.sig, self.at = sig, at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            os.kill(os.getpid(), self.sig)
        super().on_epoch_end(epoch, logs)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("epochs, at", [(4, 0), (2, 1)])  # an epoch in the middle, and the last epoch
def test_signal_during_the_checkpoint_write_stops_after_that_epoch(tmp_path, capsys, sig, epochs, at):
    x, y = _data()
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    saver = _SignalWhileSaving(str(tmp_path / "c.ckpt"), sig, at)
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=epochs,
                  batch_size=8, callbacks=[saver], verbose=0)  # fmt: skip
    assert history.stop_kind == "interrupted" and len(history) == at + 1
    assert history.stop_reason == f"interrupted by {sig.name}: finished epoch {at + 1} and stopped"
    again = "Ctrl-C again" if sig == signal.SIGINT else "SIGTERM again (or Ctrl-C)"
    assert f"{sig.name} received: finishing epoch {at + 1}; {again} to stop now" in capsys.readouterr().err
    assert ds.load(tmp_path / "c.ckpt")["finished"] is False  # resumable


class _TwoSignals(Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.trainer.epoch == 1 and batch == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            self.after = batch  # reached: the handler did not raise inside this callback


def test_second_sigint_is_raised_between_batches_not_inside_the_code_it_interrupted(capsys):
    x, y = _data()
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    spy = _TwoSignals()
    with pytest.raises(KeyboardInterrupt, match="second SIGINT: training aborted") as caught:
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=5, batch_size=8,
            callbacks=[spy], verbose=0)  # fmt: skip
    assert spy.after == 1
    raised_in = traceback.extract_tb(caught.value.__traceback__)[-1].name
    assert raised_in == "check_aborted"
    assert "SIGINT again: stopping after this batch" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
