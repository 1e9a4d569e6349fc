"""fit's word on the classic demos of a learning rate too large and of features not scaled: a blow-up inside
the first epoch, a loss multiplying at every batch, a run that ends far above where it started, and gradient
descent crawling on raw house sizes (the divergence guard in train/callbacks/stopping.py, the notes in
train/diagnostics.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.train.callbacks import LambdaCallback
from downslope.train.callbacks.monitoring import fmt
from downslope.train.diagnostics import (
    ABOVE_START_FACTOR,
    LossAboveStartWarning,
    RisingLossWarning,
    UnscaledInputsWarning,
    least_squares_loss,
)


def _moons(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    make_moons = pytest.importorskip("sklearn.datasets").make_moons
    x, y = make_moons(n, noise=0.2, random_state=0)
    return x.astype(np.float32), y


def _houses(n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """House sizes in raw square feet (600..3500) and prices (about 1e5..6e5): a linear law plus noise."""
    rng = np.random.default_rng(0)
    size = rng.uniform(600, 3500, n)
    price = 50_000 + 150 * size + rng.normal(0, 30_000, n)
    return size[:, None].astype(np.float32), price[:, None].astype(np.float32)


def _fit(model, loss, optimizer, data, **kw):
    """fit, its History, the batch losses it logged and the warnings it gave."""
    seen: list[float] = []
    record = LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(float(logs.batch_loss)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = ds.fit(model, loss, optimizer, data, verbose=0, callbacks=[record], **kw)
    return history, seen, caught


def _moons_net():
    ds.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))


def test_a_blow_up_inside_the_first_epoch_stops_fit():
    # lr=100: the batch losses climb from 0.61 to ~7e7 within the first epoch, then the dead network sits near
    # a constant guess; fit once trained all the epochs and said nothing
    model = _moons_net()
    history, seen, _ = _fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=100.0), _moons(),
                            epochs=4, batch_size=32)  # fmt: skip
    assert max(seen) > 1e4 * seen[0]  # the blow-up the demo shows
    assert history.stop_kind == "diverged" and len(history) == 1, history.stop_reason
    assert history.stop_reason.startswith(
        f"diverged: loss rose from {fmt(seen[0])} before training to {history['loss'][0]:.3g} by epoch 1"
    )


def test_a_loss_multiplying_at_every_batch_stops_where_it_passes_the_limit_and_names_the_first_batch():
    x, y = _houses()
    ds.manual_seed(0)
    model = nn.Linear(1, 1)
    history, seen, _ = _fit(model, "mse", optim.SGD(model.parameters(), lr=3e-7), (x, y), epochs=50,
                            batch_size=16, seed=0)  # fmt: skip
    limit = 1e4 * seen[0]  # fit's guard: 10^4 times the loss before training
    losses = history["loss"]
    assert history.stop_kind == "diverged"
    assert all(v <= limit for v in losses[:-1]) and losses[-1] > limit  # the first epoch past the limit
    assert history.stop_reason.startswith(
        f"diverged: loss rose from {fmt(seen[0])} before training to {losses[-1]:.3g} by epoch {len(losses)}"
    )


def test_a_run_that_ends_far_above_where_it_started_warns():
    # lr=50: the loss jumps to ~1e4 in the first epochs, then settles 20x above its start, the network ruined
    model = _moons_net()
    history, seen, caught = _fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=50.0), _moons(),
                                 epochs=5, batch_size=32)  # fmt: skip
    assert history.stop_kind == "max_epochs"
    assert min(history["loss"]) >= ABOVE_START_FACTOR * seen[0]
    said = [str(w.message) for w in caught if issubclass(w.category, LossAboveStartWarning)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert said[0].startswith(
        f"fit: training ended with the loss at {history['loss'][-1]:.4g}, "
        f"{history['loss'][-1] / seen[0]:.3g}x the loss before training ({seen[0]:.4g}, the first batch's)"
    )
    assert "learning rate is probably too large" in said[0]


def test_the_same_blow_up_unshuffled_warns_too():
    # unshuffled, each epoch's first batch is the rows the loss before training was measured on: compared alone
    model = _moons_net()
    history, seen, caught = _fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=50.0), _moons(),
                                 epochs=5, batch_size=32, shuffle=False)  # fmt: skip
    assert history.stop_kind == "max_epochs"
    said = [str(w.message) for w in caught if issubclass(w.category, LossAboveStartWarning)]
    assert len(said) == 1, [str(w.message) for w in caught]


@pytest.mark.parametrize("epochs", [1, 3])
def test_rows_sorted_by_target_unshuffled_are_no_blow_up(epochs):
    # lr=0 changes nothing: the first batch (the smallest targets) is merely the easiest; every later batch's
    # loss is far above it in every epoch, as the epoch's mean is, yet the weights never moved
    x = np.zeros((178, 1), np.float32)
    y = np.arange(178, dtype=np.float32)[:, None]
    model = nn.Linear(1, 1)
    model.load_state_dict({"weight": ds.zeros(1, 1), "bias": ds.zeros(1)})
    history, seen, caught = _fit(model, "mse", optim.SGD(model.parameters(), lr=0.0), (x, y),
                                 epochs=epochs, batch_size=32, shuffle=False)  # fmt: skip
    assert min(history["loss"]) >= ABOVE_START_FACTOR * seen[0]  # what the epoch means alone would call a blow-up
    assert not [w for w in caught if issubclass(w.category, LossAboveStartWarning)]


@pytest.mark.parametrize("case", ["moons sgd", "digits adam", "regression sgd", "houses standardized gd"])
def test_ordinary_runs_get_no_blow_up_or_scaling_note(case):
    if case == "moons sgd":
        model = _moons_net()
        args = ("cross_entropy", optim.SGD(model.parameters(), lr=0.1), _moons(), dict(epochs=10, batch_size=32))
    elif case == "digits adam":
        digits = pytest.importorskip("sklearn.datasets").load_digits()
        ds.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        data = ((digits.data / 16).astype(np.float32), digits.target)
        args = ("cross_entropy", optim.Adam(model.parameters(), lr=1e-3), data, dict(epochs=3, batch_size=64))
    elif case == "regression sgd":
        rng = np.random.default_rng(0)
        x = rng.normal(size=(200, 5)).astype(np.float32)
        y = (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(200, 1))).astype(np.float32)
        ds.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
        args = ("mse", optim.SGD(model.parameters(), lr=0.05), (x, y), dict(epochs=10, batch_size=32))
    else:
        x, y = _houses()
        x = (x - x.mean(0)) / x.std(0)
        y = (y - y.mean(0)) / y.std(0)
        ds.manual_seed(0)
        model = nn.Linear(1, 1)
        args = ("mse", optim.GD(model.parameters(), lr=0.5), (x, y), dict(epochs=20, batch_size=None))
    loss, optimizer, data, kw = args
    history, _, caught = _fit(model, loss, optimizer, data, **kw)
    assert history.stop_kind == "max_epochs"
    notes = (LossAboveStartWarning, RisingLossWarning, UnscaledInputsWarning)
    assert not [str(w.message) for w in caught if issubclass(w.category, notes)]


def test_gradient_descent_crawling_on_unscaled_inputs_says_to_standardize_them():
    x, y = _houses(200)
    ds.manual_seed(0)
    model = nn.Linear(1, 1)
    history, _, caught = _fit(model, "mse", optim.GD(model.parameters(), lr=1e-7), (x, y), epochs=200,
                              batch_size=None)  # fmt: skip
    assert history.stop_kind == "max_epochs"
    optimum = least_squares_loss(x, y)
    assert min(history["loss"]) > 1.1 * optimum  # the crawl: far from the optimum lstsq reaches
    said = [str(w.message) for w in caught if issubclass(w.category, UnscaledInputsWarning)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert said[0].startswith(
        f"fit: training had not converged: its best training loss {min(history['loss']):.4g} is "
        f"{100 * (min(history['loss']) - optimum) / optimum:.3g}% above {optimum:.4g}"
    )
    # the curvature of [x 1]^T [x 1] / n, computed here from its definition
    a = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    values = np.linalg.eigvalsh(a.T @ a / len(a))
    assert f"curvature differs {values[-1] / values[0]:.2g}-fold" in said[0]
    assert f"about {1 / values[-1]:.2g} (about " in said[0]  # the largest stable rate, 2 / (2 lambda_max)
    assert "Standardize the inputs, e.g. x = (x - mean) / std" in said[0]
    # the same inputs standardized: no note, and an adaptive optimizer on the raw ones is not judged
    for scaled, make in (
        (True, lambda p: optim.GD(p, lr=0.5)),
        (False, lambda p: optim.Adam(p, lr=1e-3)),
    ):
        inputs = (x - x.mean(0)) / x.std(0) if scaled else x
        ds.manual_seed(0)
        model = nn.Linear(1, 1)
        _, _, caught = _fit(model, "mse", make(model.parameters()), (inputs, y), epochs=20, batch_size=None)
        assert not [w for w in caught if issubclass(w.category, UnscaledInputsWarning)]
