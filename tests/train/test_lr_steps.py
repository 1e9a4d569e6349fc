"""fit records the rate of every update (History.lr_steps), and the learning-rate plot draws it per update."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn, optim
from downslope.train import Callback, History, fit

EPOCHS, STEPS = 10, 4  # 256 rows in batches of 64


def _data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
    return x, (x[:, :1] * 2).astype(np.float32)


def _torch_one_cycle_rates() -> list[float]:
    """torch's OneCycleLR (the reference): the rate each of the 40 updates uses."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=EPOCHS * STEPS)
    rates = []
    for _ in range(EPOCHS * STEPS):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return rates


def _one_cycle_fit(**kwargs: object) -> tuple[History, list[float]]:
    """A fit under OneCycleLR stepped per batch, and the scheduler's own get_last_lr() at each update."""
    ds.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=EPOCHS * STEPS)

    class Seen(Callback):
        rates: list[float] = []

        def on_train_batch_begin(self, batch: int, logs: object = None) -> None:
            self.rates.append(sched.get_last_lr()[0])

    seen = Seen()
    seen.rates = []
    callbacks = [seen, *kwargs.pop("callbacks", [])]  # type: ignore[misc]
    history = fit(model, nn.MSELoss(), opt, _data(), batch_size=64, scheduler=sched, verbose=0,
                  callbacks=callbacks, **kwargs)  # fmt: skip
    return history, seen.rates


def test_every_update_rate_is_recorded_as_the_scheduler_set_it() -> None:
    history, seen = _one_cycle_fit(epochs=EPOCHS)
    reference = _torch_one_cycle_rates()
    assert len(history.lr_steps) == EPOCHS * STEPS
    np.testing.assert_allclose(list(history.lr_steps), seen, rtol=0, atol=0)
    np.testing.assert_allclose(list(history.lr_steps), reference, rtol=1e-6)
    # where each update ends: epoch - 1 + (batch + 1) / steps, epochs counted from 1
    ends = [e - 1 + (b + 1) / STEPS for e in range(1, EPOCHS + 1) for b in range(STEPS)]
    np.testing.assert_allclose(list(history.lr_step_epochs), ends)
    # history["lr"] keeps its per-epoch meaning: the rate of the epoch's first update
    np.testing.assert_allclose(history["lr"], reference[::STEPS], rtol=1e-6)
    assert history["learning_rate"] == history["lr"]


def test_the_record_survives_state_dict_and_an_interrupted_resume(tmp_path: object) -> None:
    class InterruptAfter(Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            if epoch == 3:
                os.kill(os.getpid(), signal.SIGINT)

    full, _ = _one_cycle_fit(epochs=EPOCHS)
    part, _ = _one_cycle_fit(epochs=EPOCHS, callbacks=[InterruptAfter()], checkpoint_dir=tmp_path)
    assert len(part) == 4 and len(part.lr_steps) == 4 * STEPS
    resumed, _ = _one_cycle_fit(epochs=EPOCHS, resume_from=tmp_path)
    assert list(resumed.lr_steps) == list(full.lr_steps)
    assert list(resumed.lr_step_epochs) == list(full.lr_step_epochs)

    copy = History()
    copy.load_state_dict(full.state_dict())
    assert list(copy.lr_steps) == list(full.lr_steps) and list(copy.lr_step_epochs) == list(full.lr_step_epochs)
    old = full.state_dict()
    del old["lr_steps"], old["lr_step_epochs"]  # a checkpoint written before the record existed
    copy.load_state_dict(old)
    assert len(copy.lr_steps) == 0 and copy["lr"] == full["lr"]


def test_the_plot_draws_every_update_and_gives_the_last_epoch_its_width() -> None:
    pytest.importorskip("matplotlib")
    from downslope import viz

    history, _ = _one_cycle_fit(epochs=EPOCHS)
    line = viz.plot_learning_rate(history).axes[0].lines[0]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert line.get_drawstyle() == "steps-pre"  # each rate drawn over the update that used it
    np.testing.assert_allclose(x, np.arange(EPOCHS * STEPS + 1) / STEPS)  # 0 .. 10: epoch 10 spans (9, 10]
    np.testing.assert_allclose(y[1:], list(history.lr_steps))
    assert y[0] == y[1]
    # without the per-update record (a plain dict), one step per epoch as before
    plain = viz.plot_learning_rate({"lr": history["lr"]}).axes[0].lines[0]
    assert plain.get_drawstyle() == "steps-post" and len(plain.get_xdata()) == EPOCHS
