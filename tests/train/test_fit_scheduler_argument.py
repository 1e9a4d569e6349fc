"""fit's ``scheduler=`` argument checked before the first epoch: a scheduler built on another optimizer than
the one fit trains with (its rates would change where fit never reads them), and things that are not an lr
scheduler (a callback, a name, a function, an optimizer); the accepted forms train as PyTorch's loop does."""

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.errors import ConfigError
from downslope.optim import schedules
from downslope.train import Callback, LearningRateScheduler, ReduceLROnPlateau, fit

EPOCHS, BATCH = 5, 16


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    return x, x.sum(1, keepdims=True)


class _Epochs(Callback):
    """Records the epochs that began: none may when fit refuses its arguments."""

    def __init__(self):
        self.begun = []

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)


def _refused(error, scheduler_for, optimizer_for=None):
    """Run fit with the scheduler ``scheduler_for(model, opt)`` makes; returns the error's message after
    checking that no epoch began and the weights did not move."""
    ds.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    epochs = _Epochs()
    given = opt if optimizer_for is None else optimizer_for(model, opt)
    with pytest.raises(error) as info:
        fit(model, nn.MSELoss(), given, _data(), epochs=EPOCHS, batch_size=BATCH, verbose=0,
            scheduler=scheduler_for(model, opt), callbacks=[epochs])  # fmt: skip
    assert epochs.begun == []
    for old, new in zip(before, model.parameters()):
        np.testing.assert_array_equal(new.detach().numpy(), old)
    return str(info.value)


def _other(model):
    return optim.SGD(model.parameters(), lr=0.1)


# ------------------------------------------------------------------ a scheduler of another optimizer
ANOTHER = {
    "StepLR": lambda m, opt: optim.lr_scheduler.StepLR(_other(m), step_size=1, gamma=0.5),
    "ReduceLROnPlateau": lambda m, opt: optim.lr_scheduler.ReduceLROnPlateau(_other(m), patience=0),
    "OneCycleLR": lambda m, opt: optim.lr_scheduler.OneCycleLR(_other(m), max_lr=0.1, total_steps=EPOCHS * 4),
    "SequentialLR": lambda m, opt: (
        lambda o: optim.lr_scheduler.SequentialLR(
            o, [optim.lr_scheduler.LinearLR(o, 0.5, total_iters=2), optim.lr_scheduler.ExponentialLR(o, 0.5)], [2]
        )
    )(_other(m)),
    "ChainedScheduler": lambda m, opt: (
        lambda o: optim.lr_scheduler.ChainedScheduler(
            [optim.lr_scheduler.ConstantLR(o, 0.5, total_iters=2), optim.lr_scheduler.ExponentialLR(o, 0.5)]
        )
    )(_other(m)),
}


@pytest.mark.parametrize("name", list(ANOTHER))
def test_a_scheduler_built_on_another_optimizer_is_refused_before_the_first_epoch(name):
    message = _refused(ConfigError, ANOTHER[name])
    assert f"the scheduler ({name}) steps another optimizer" in message
    if name in ("StepLR", "ReduceLROnPlateau"):  # their first step keeps the rate: both read SGD(lr=0.1)
        assert "SGD(lr=0.1) holding 2 parameter tensors (an optimizer alike but not the same object)" in message
    assert "fit was given SGD(lr=0.1) holding 2 parameter tensors" in message
    assert f"sched = optim.lr_scheduler.{name}(opt, ...)" in message


def test_a_scheduler_of_a_torch_optimizer_is_refused_naming_it():
    def torch_scheduler(model, opt):
        return torch.optim.lr_scheduler.StepLR(torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.3), 1)

    message = _refused(ConfigError, torch_scheduler)
    assert "steps another optimizer, torch.optim.sgd.SGD(lr=0.3) holding 2 parameter tensors" in message


def test_a_scheduler_with_an_optimizer_given_by_name_is_refused_saying_fit_built_its_own():
    message = _refused(
        ConfigError, lambda m, opt: optim.lr_scheduler.StepLR(opt, 1), optimizer_for=lambda m, opt: "adam"
    )
    assert "fit built a new Adam(lr=0.001) holding 2 parameter tensors from the name 'adam'" in message
    assert "opt = optim.Adam(model.parameters(), lr=...)" in message


# ------------------------------------------------------------------ things that are not an lr scheduler
class _KerasLike:
    """Stands in for keras.callbacks.LearningRateScheduler (Keras is not a test dependency): fit tells a
    Keras object by its module."""

    __module__ = "keras.src.callbacks.learning_rate_scheduler"

    def on_epoch_begin(self, epoch, logs=None):
        pass


_KerasLike.__name__ = _KerasLike.__qualname__ = "LearningRateScheduler"

NOT_SCHEDULERS = {
    "keras-style callback": (
        lambda m, opt: LearningRateScheduler(lambda epoch, lr: lr * 0.5),
        ["the callback LearningRateScheduler", "callbacks=[LearningRateScheduler(...)]", "optim.lr_scheduler"],
    ),
    "keras-style plateau callback": (
        lambda m, opt: ReduceLROnPlateau(monitor="loss"),
        ["the callback ReduceLROnPlateau", "callbacks=[ReduceLROnPlateau(...)]"],
    ),
    "keras object": (
        lambda m, opt: _KerasLike(),
        [
            "the Keras object keras.src.callbacks.learning_rate_scheduler.LearningRateScheduler",
            "callbacks=[ds.train.LearningRateScheduler(...)]",
        ],
    ),
    "name": (lambda m, opt: "cosine", ["got the string 'cosine'", "optim.lr_scheduler.StepLR(optimizer"]),
    "number": (lambda m, opt: 0.5, ["got float 0.5"]),
    "lambda": (
        lambda m, opt: lambda epoch: 0.1 * 0.5**epoch,
        [
            "a function (a lambda)",
            "optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: factor)",
            "callbacks=[ds.train.LearningRateScheduler(schedule)]",
        ],
    ),
    "optax-style schedule": (
        lambda m, opt: schedules.cosine_decay_schedule(0.1, decay_steps=10),
        ["a function (schedule())", "transforms.scale_by_lr(schedule)", "LambdaLR"],
    ),
    "the optimizer": (lambda m, opt: opt, ["is an optimizer (SGD(lr=0.1) holding 2 parameter tensors)"]),
}


@pytest.mark.parametrize("kind", list(NOT_SCHEDULERS))
def test_something_that_is_not_an_lr_scheduler_is_refused_before_the_first_epoch(kind):
    make, fragments = NOT_SCHEDULERS[kind]
    message = _refused(TypeError, make)
    assert message.startswith("fit: scheduler ")
    for fragment in fragments:
        assert fragment in message
    assert " at 0x" not in message  # named, never shown by its repr


def test_a_scheduler_class_is_refused_naming_the_call_to_make():
    message = _refused(ConfigError, lambda m, opt: optim.lr_scheduler.StepLR)
    assert "scheduler is the class optim.lr_scheduler.StepLR; pass an instance: optim.lr_scheduler.StepLR(" in message


# ------------------------------------------------------------------ accepted: rates as in PyTorch's loop
def _torch_rates(make_scheduler):
    """The rate each epoch trains with in PyTorch's loop (get_last_lr() before scheduler.step())."""
    x, y = _data()
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = make_scheduler(torch.optim.lr_scheduler, opt)
    used = []
    for _ in range(EPOCHS):
        used.append(sched.get_last_lr()[0])
        for i in range(0, len(x), BATCH):
            opt.zero_grad()
            torch.nn.functional.mse_loss(
                model(torch.tensor(x[i : i + BATCH])), torch.tensor(y[i : i + BATCH])
            ).backward()
            opt.step()
        sched.step()
    return used


COMPOSITE = {
    "SequentialLR": lambda lr, o: lr.SequentialLR(o, [lr.LinearLR(o, 0.5, total_iters=2), lr.ExponentialLR(o, 0.5)], [2]),
    "ChainedScheduler": lambda lr, o: lr.ChainedScheduler([lr.ConstantLR(o, 0.5, total_iters=2), lr.ExponentialLR(o, 0.5)]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(COMPOSITE))
@pytest.mark.parametrize("wrapped", ["plain", "fit given the DistributedOptimizer", "scheduler on the wrapper"])
def test_a_scheduler_on_fits_optimizer_or_its_distributed_wrapper_trains_with_torchs_rates(name, wrapped):
    """The check compares the param groups the scheduler writes with those fit reads: a DistributedOptimizer
    (what distributed.fit passes to fit) shares its optimizer's, so either side may be the wrapper."""
    ds.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    wrapper = dist.DistributedOptimizer(opt)
    sched = COMPOSITE[name](optim.lr_scheduler, wrapper if wrapped == "scheduler on the wrapper" else opt)
    given = wrapper if wrapped == "fit given the DistributedOptimizer" else opt
    history = fit(model, nn.MSELoss(), given, _data(), epochs=EPOCHS, batch_size=BATCH, scheduler=sched, verbose=0)
    assert history["lr"] == pytest.approx(_torch_rates(COMPOSITE[name]), rel=1e-6)
    assert len(set(history["lr"])) > 1  # the schedule did change the rates
