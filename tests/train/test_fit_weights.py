"""fit's Keras extras: class_weight, sample_weight, initial_epoch, History.epoch/params, the 'val_acc'
monitor alias, and the epoch loss of a class-weighted CrossEntropyLoss (vs PyTorch's full batch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(3)
X = RNG.standard_normal((30, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 30)
W = np.array([1.0, 3.0, 0.5], np.float32)


def _pair():
    ours = nn.Linear(4, 3)
    theirs = torch.nn.Linear(4, 3)
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def _frozen_fit(model, loss, **kw):  # lr=0: the epoch loss is the loss of the fixed model over the data
    return ds.fit(model, loss, optim.SGD(model.parameters(), lr=0.0), (X, Y), verbose=0, shuffle=False, **kw)


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_class_weighted_cross_entropy_epoch_loss_is_the_full_batch_loss(batch_size) -> None:
    ours, theirs = _pair()
    h = _frozen_fit(ours, nn.CrossEntropyLoss(weight=ds.tensor(W)), epochs=1, batch_size=batch_size)
    want = torch.nn.functional.cross_entropy(theirs(torch.tensor(X)), torch.tensor(Y), weight=torch.tensor(W))
    np.testing.assert_allclose(h["loss"][0], want.item(), rtol=1e-5)
    logs = ds.train.evaluate(ours, nn.CrossEntropyLoss(weight=ds.tensor(W)), (X, Y), batch_size=4)
    np.testing.assert_allclose(logs["loss"], want.item(), rtol=1e-5)


def test_class_weight_and_sample_weight_reduce_as_keras_sum_over_batch_size() -> None:
    ours, theirs = _pair()
    per = torch.nn.functional.cross_entropy(theirs(torch.tensor(X)), torch.tensor(Y), reduction="none").detach()
    h = _frozen_fit(ours, nn.CrossEntropyLoss(), epochs=1, batch_size=7, class_weight={0: 1.0, 1: 3.0, 2: 0.5})
    np.testing.assert_allclose(h["loss"][0], (per * torch.tensor(W)[Y]).mean().item(), rtol=1e-5)
    sw = RNG.uniform(0, 2, 30)
    h = _frozen_fit(ours, nn.CrossEntropyLoss(), epochs=1, batch_size=7, sample_weight=sw, class_weight={1: 3.0})
    both = sw * np.where(Y == 1, 3.0, 1.0)
    np.testing.assert_allclose(h["loss"][0], (per.numpy() * both).mean(), rtol=1e-5)


def test_sample_weight_gradient_matches_torch_weighted_loss() -> None:
    ours, theirs = _pair()
    sw = RNG.uniform(0, 2, 30).astype(np.float32)
    ds.fit(ours, nn.CrossEntropyLoss(), optim.SGD(ours.parameters(), lr=0.5), (X, Y), epochs=1, batch_size=None,
           verbose=0, sample_weight=sw)  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.5)
    per = torch.nn.functional.cross_entropy(theirs(torch.tensor(X)), torch.tensor(Y), reduction="none")
    (per * torch.tensor(sw)).mean().backward()
    opt.step()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_weights_need_per_sample_losses_and_valid_arguments() -> None:
    model = nn.Linear(4, 3)
    with pytest.raises(ds.ConfigError, match="per-sample losses"):
        _frozen_fit(model, nn.functional.cross_entropy, epochs=1, class_weight={0: 2.0})
    with pytest.raises(ds.ConfigError, match="one weight per sample"):
        _frozen_fit(model, nn.CrossEntropyLoss(), epochs=1, sample_weight=np.ones(3))
    with pytest.raises(ds.ConfigError, match="class indices"):
        _frozen_fit(model, nn.CrossEntropyLoss(), epochs=1, class_weight={"a": 1.0})
    with pytest.raises(ds.ConfigError, match="initial_epoch"):
        _frozen_fit(model, nn.CrossEntropyLoss(), epochs=1, initial_epoch=-1)


def test_initial_epoch_history_epoch_and_params_follow_keras() -> None:
    model = nn.Linear(4, 3)
    seen = []

    class Spy(ds.train.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    h = _frozen_fit(model, nn.CrossEntropyLoss(), epochs=5, initial_epoch=2, batch_size=10, callbacks=[Spy()])
    assert seen == [2, 3, 4] and h.epoch == [2, 3, 4] and h["epoch"] == [3, 4, 5] and len(h) == 3
    assert h.params == {"verbose": 0, "epochs": 5, "steps": 3}


def test_val_acc_monitor_reads_val_accuracy_without_a_warning() -> None:
    model = nn.Linear(4, 3)
    stopper = ds.train.EarlyStopping(monitor="val_acc", patience=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = _frozen_fit(model, nn.CrossEntropyLoss(), epochs=5, metrics=["acc"], validation=(X, Y), callbacks=[stopper])
    assert "val_accuracy" in h and len(h) == 2  # lr=0: no improvement after the first epoch
    assert stopper.mode == "max" and h["val_acc"] == h["val_accuracy"]
    assert h.best("val_acc") == h.best("val_accuracy")
