"""A diverging fit stops with its own message, without NumPy's floating-point warnings on the way.

When the step size is far too large the forward pass, the loss, backward and the update overflow;
NumPy then printed "RuntimeWarning: overflow encountered in matmul" (and "invalid value ...") to the
user while fit's divergence guard already stops training and says what happened in plain words.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim


@pytest.mark.parametrize(
    ("loss_fn", "classes"),
    [(nn.MSELoss(), 0), (nn.CrossEntropyLoss(), 2), (nn.HuberLoss(), 0)],
    ids=["mse", "cross_entropy", "huber"],
)
def test_a_diverging_fit_stops_with_its_message_and_no_numpy_warnings(loss_fn: nn.Module, classes: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) if classes else (X @ np.ones((4, 1))).astype(np.float32)
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, classes or 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = ds.fit(
            model, loss_fn, optim.SGD(model.parameters(), lr=1e8), (X, y), epochs=5, batch_size=32, verbose=0
        )
    assert history.stop_reason is not None and history.stop_reason.startswith("diverged: loss became")
    numpy_warnings = [str(w.message) for w in caught if "encountered in" in str(w.message)]
    assert numpy_warnings == []
    # outside fit, NumPy's warnings are left on: the suppression is scoped to the training step
    with pytest.warns(RuntimeWarning, match="overflow encountered"):
        np.float32(3e38) * np.float32(10)


def test_fit_stops_a_slow_divergence_by_default():
    import numpy as np

    import downslope as ds
    from downslope import nn, optim

    x = np.linspace(-1, 1, 50, dtype=np.float32).reshape(-1, 1)
    y = 3 * x + 1
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    curvature = float(np.linalg.eigvalsh(2 * design.T @ design / len(x)).max())  # L of the MSE in (w, b)
    model = nn.Linear(1, 1)
    # just above 2/L: the loss grows by about 1.2x per update, slowly, never reaching inf in 400 epochs
    history = ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1.05 * 2 / curvature), (x, y),
                     batch_size=50, epochs=400, verbose=0, seed=0)  # fmt: skip
    assert history.stop_kind == "diverged" and "before training" in history.stop_reason
    assert len(history) < 400


def test_the_divergence_advice_is_a_rate_that_does_not_diverge():
    # full-batch GD on least squares: the stable rates are below 2 / (largest Hessian eigenvalue); at lr=5
    # the loss grows about 1000-fold per update, and lr/10 = 0.5 would still diverge
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(100, 1)).astype(np.float32)
    y = (3 * x + 2 + 0.5 * rng.normal(size=(100, 1))).astype(np.float32)
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    stable_limit = 2 / float(np.linalg.eigvalsh(2 * design.T @ design / len(x)).max())

    def fit_at(lr: float) -> ds.train.History:
        ds.manual_seed(0)
        model = nn.Linear(1, 1)
        return ds.fit(model, nn.MSELoss(), optim.GD(model.parameters(), lr=lr), (x, y), epochs=300,
                      batch_size="full", verbose=0)  # fmt: skip

    history = fit_at(5.0)
    assert history.stop_kind == "diverged" and "an estimate from the loss growing about" in history.stop_reason
    advised = float(history.stop_reason.split("try lr=")[1].split()[0])
    assert advised < stable_limit
    following = fit_at(advised)
    assert following.stop_kind != "diverged" and following["loss"][-1] < 1.0
