"""fit(initial_epoch=N) as Keras: ``epochs`` is the absolute epoch to stop at, so epochs N..epochs-1 are
trained (none when N >= epochs), numbered from N in the History and for callbacks."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.train import Callback, fit

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(2)
X = RNG.standard_normal((12, 3)).astype(np.float32)
Y = RNG.standard_normal((12, 1)).astype(np.float32)


def _pair():
    ours = nn.Linear(3, 1)
    theirs = torch.nn.Linear(3, 1)
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("initial_epoch, epochs", [(0, 3), (2, 5), (3, 3), (4, 3)])
def test_initial_epoch_trains_up_to_the_absolute_epoch_count(initial_epoch, epochs):
    ours, theirs = _pair()
    seen = []

    class Spy(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    history = fit(ours, "mse", optim.SGD(ours.parameters(), lr=0.1), (X, Y), epochs=epochs, batch_size=None,
                  initial_epoch=initial_epoch, callbacks=[Spy()], verbose=0)  # fmt: skip
    trained = list(range(initial_epoch, epochs))
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in trained:  # full batch: one update per epoch
        opt.zero_grad()
        torch.nn.functional.mse_loss(theirs(torch.tensor(X)), torch.tensor(Y)).backward()
        opt.step()
    assert seen == trained and history.epoch == trained and history["epoch"] == [e + 1 for e in trained]
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6, atol=1e-7)
    assert history.params["epochs"] == epochs


def test_initial_epoch_is_checked():
    model = nn.Linear(3, 1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ds.ConfigError, match="initial_epoch must be an integer >= 0"):
            fit(model, "mse", "sgd", (X, Y), epochs=2, initial_epoch=bad, verbose=0)
