"""Drive callbacks with scripted logs, the way fit calls them, without a model or data."""

from __future__ import annotations

import numpy as np

from downslope.train.callbacks import CallbackList, TrainingState


class WeightsByEpoch:
    """A stand-in model whose only weight is set to the epoch index before each epoch ends."""

    def __init__(self) -> None:
        self.w = np.zeros(1, np.float32)

    def state_dict(self):
        return {"w": self.w.copy()}

    def load_state_dict(self, state):
        self.w[:] = state["w"]


def run(callbacks, epoch_logs, batch_logs=None, model=None, optimizer=None):
    """Returns (state, epochs_run). ``epoch_logs`` is a list of dicts; batch_logs a list of lists."""
    state = TrainingState(model=model, optimizer=optimizer)
    cbs = CallbackList(callbacks)
    cbs.set_trainer(state)
    cbs.on_train_begin({})
    ran = 0
    logs: dict = {}
    for epoch, scripted in enumerate(epoch_logs):
        state.epoch = epoch
        cbs.on_epoch_begin(epoch, {})
        for b, blogs in enumerate(batch_logs[epoch] if batch_logs else []):
            cbs.on_batch_begin(b, {"size": 1})
            cbs.on_batch_end(b, dict(blogs))
            if state.stop_training:
                break
        if isinstance(model, WeightsByEpoch):
            model.w[:] = epoch
        logs = dict(scripted)
        cbs.on_epoch_end(epoch, logs)
        ran += 1
        if state.stop_training:
            break
    cbs.on_train_end(logs)
    return state, ran


def losses(*values, key="loss"):
    return [{key: v} for v in values]
