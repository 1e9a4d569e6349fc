"""A hyperparameter that is not a number (``lr="0.1"``, ``lr=None``) is a TypeError, as in PyTorch (and
still the ValueError downslope raised before); a number out of range stays a ValueError only."""

import pytest
import torch

from downslope import nn, optim
from downslope.errors import ArgumentError

OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"]


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr", ["0.1", None])
def test_a_non_number_lr_is_a_type_error_as_in_torch(name, lr):
    with pytest.raises(TypeError):
        getattr(torch.optim, name)(torch.nn.Linear(1, 1).parameters(), lr=lr)
    with pytest.raises(TypeError, match=rf"{name}: invalid lr={lr!r}; expected a finite number >= 0, got a") as raised:
        getattr(optim, name)(nn.Linear(1, 1).parameters(), lr=lr)
    assert isinstance(raised.value, ArgumentError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_negative_lr_is_a_value_error_not_a_type_error_as_in_torch(name):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)(torch.nn.Linear(1, 1).parameters(), lr=-0.1)
    with pytest.raises(ValueError, match="lr=-0.1") as ours:
        getattr(optim, name)(nn.Linear(1, 1).parameters(), lr=-0.1)
    assert not isinstance(theirs.value, TypeError) and not isinstance(ours.value, TypeError)


def test_a_non_number_momentum_is_a_type_error():
    with pytest.raises(TypeError, match="momentum='0.9'"):
        optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1, momentum="0.9")
