"""Models and losses as the training loop types them (train.protocols)."""

from __future__ import annotations

import pytest

from downslope import nn, optim, train
from downslope.errors import StateError
from downslope.train.protocols import ModelLike


def test_modules_are_model_like_and_plain_functions_are_not() -> None:
    assert isinstance(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), ModelLike)
    assert isinstance(optim.swa_utils.AveragedModel(nn.Linear(2, 1)), ModelLike)
    assert not isinstance(lambda x: x, ModelLike)


def test_training_state_parts_names_what_is_missing() -> None:
    with pytest.raises(StateError, match="no optimizer, history"):
        train.TrainingState(nn.Linear(1, 1)).parts()
    model = nn.Linear(1, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    history = train.History()
    assert train.TrainingState(model, opt, history=history).parts() == (model, opt, history)


def test_a_callback_without_a_model_says_so() -> None:
    stopper = train.EarlyStopping(patience=1, restore_best_weights=True)
    stopper.set_trainer(train.TrainingState())
    stopper.on_train_begin({})
    assert stopper.model is None
    with pytest.raises(StateError, match="EarlyStopping: the training state has no model"):
        stopper.on_epoch_end(0, {"val_loss": 1.0})
