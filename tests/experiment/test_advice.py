"""Why gradient descent diverged or crawled, from the curvature of the training rows: the stable
learning-rate estimate against torch's own gradient descent, the least-squares optimum against
torch.linalg.lstsq, and the run's warnings naming the real cause (the features' scale, not the
target's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from downslope.experiment import normalize_config
from downslope.experiment.advice import crawl_note, least_squares_loss, stable_lr
from downslope.experiment.run import run_training

pytest.importorskip("matplotlib")


def _areas(n=200, seed=0):
    rng = np.random.default_rng(seed)
    area = rng.uniform(40, 250, (n, 1))
    price = 1500 * area[:, 0] + 5e4 + 2e4 * rng.normal(size=n)
    return area, price


def _torch_gd_final_loss(X, y, lr, steps=200):
    """Full-batch gradient descent on torch's MSE for a linear model from zero weights."""
    x = torch.tensor(X, dtype=torch.float64)
    t = torch.tensor(y, dtype=torch.float64).reshape(len(X), -1)
    model = torch.nn.Linear(x.shape[1], t.shape[1], dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), t)
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    return first, float(torch.nn.functional.mse_loss(model(x), t).detach())


@pytest.mark.parametrize("outputs", [1, 2])
def test_the_stable_learning_rate_is_where_torchs_gradient_descent_starts_to_diverge(outputs):
    area, price = _areas()
    y = np.c_[price, -0.5 * price][:, :outputs] / 1e5
    limit = stable_lr(area, outputs)
    start, below = _torch_gd_final_loss(area, y, 0.95 * limit, steps=400)
    _, above = _torch_gd_final_loss(area, y, 1.05 * limit, steps=400)
    assert below < start  # just under the limit the loss falls
    assert not above < start  # just over it the loss grows (or overflows)


def test_the_least_squares_optimum_is_torchs_lstsq():
    area, price = _areas()
    a = torch.tensor(np.c_[area, np.ones(len(area))])
    t = torch.tensor(price[:, None])
    w = torch.linalg.lstsq(a, t).solution
    expected = float(torch.mean((a @ w - t) ** 2))
    assert least_squares_loss(area, price) == pytest.approx(expected, rel=1e-9)


def test_the_crawl_rule_on_torchs_histories():
    area, price = _areas()
    y = (price - price.mean()) / price.std()
    cfg = {"model": "linear", "optimizer": "gd", "standardize": False, "epochs": 300}
    crawl = [_torch_gd_final_loss(area, y, 1e-5, steps=s)[1] for s in range(1, 301, 10)]
    assert "Drop --no-standardize" in crawl_note(cfg, area, y, "regression", 1, crawl, 1e-5, None)
    z = (area - area.mean()) / area.std()
    done = [_torch_gd_final_loss(z, y, 0.5, steps=s)[1] for s in range(1, 301, 10)]
    assert crawl_note(dict(cfg, standardize=True), z, y, "regression", 1, done, 0.5, None) == ""


def _csv(tmp_path, name, columns, rows):
    path = tmp_path / name
    np.savetxt(path, rows, delimiter=",", header=",".join(columns), comments="", fmt="%.6f")
    return str(path)


def _house(tmp_path):
    area, price = _areas()
    return _csv(tmp_path, "h.csv", ["area_m2", "price"], np.c_[area, price])


def _run(data, **settings):
    cfg = {"data": data, "target": "price", "model": "linear", "optimizer": "gd", "batch_size": "full", "lr": 0.1}
    return run_training(normalize_config(cfg | {"verbose": 0} | settings))


def _said(result):
    return " | ".join(result.diagnostics)


def test_a_divergence_from_raw_features_names_them_not_the_target(tmp_path):
    data = _house(tmp_path)
    for scale_target in (False, True):  # the target's scale changes nothing in the advice
        result = _run(data, standardize=False, scale_target=scale_target, epochs=50)
        said = _said(result)
        assert result.history.diverged
        assert "--no-standardize" in said and "largest stable" in said
        limit = stable_lr(result.data.X_train)
        assert f"about {limit:.2g}" in said
        assert "not the learning rate" not in said and "Standardize the target" not in said
        assert "the features may not predict the target" not in said


def test_a_converged_run_with_a_raw_target_is_not_told_to_standardize_it(tmp_path):
    result = _run(_house(tmp_path), scale_target=False, epochs=300, patience=0)
    said = _said(result)
    assert result.metrics["test_r2"] > 0.9
    assert "Standardize the target" not in said and "not the learning rate" not in said
    assert "squared units" in said  # what the large numbers mean, no cause of a failure


def test_the_target_note_counts_its_mean_and_a_negative_r2_says_worse_than_the_mean(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    revenue = 1e9 + 3.5e3 * rng.normal(size=400)
    data = _csv(tmp_path, "big.csv", ["x1", "x2", "revenue"], np.c_[x, revenue])
    cfg = {"data": data, "target": "revenue", "scale_target": False, "epochs": 15, "verbose": 0}
    result = run_training(normalize_config(cfg))
    said = _said(result)
    start = float(np.mean(np.asarray(result.data.y_train, np.float64) ** 2))  # the squared error of predicting 0
    assert f"of order {start:.1g}" in said and start > 1e17
    assert "Standardize the target" in said  # here its scale is the cause: adam's steps of 0.001 crawl to 1e9
    assert result.metrics["test_r2"] < -1
    assert "the model is worse than that" in said


def test_a_crawl_on_raw_features_is_told_and_a_converged_run_is_not(tmp_path):
    data = _house(tmp_path)
    crawled = _run(data, standardize=False, lr=1e-5, epochs=300, patience=0)
    said = _said(crawled)
    assert "training had not converged" in said and "Drop --no-standardize" in said
    converged = _run(data, epochs=300, patience=0)
    assert "had not converged" not in _said(converged)
    slow = _run(data, lr=0.001, epochs=300, patience=0)  # standardized, but a rate far below the limit
    assert "raise the learning rate" in _said(slow)


def test_a_schedule_over_all_epochs_is_not_cut_short_by_default_early_stopping():
    base = {"data": "line", "model": "linear", "optimizer": "sgd", "lr": 0.05, "batch_size": "16", "epochs": 30}
    assert normalize_config(base | {"schedule": "onecycle"})["patience"] == 0
    assert normalize_config(base | {"schedule": "cosine"})["patience"] == 0
    assert normalize_config(base | {"schedule": "step"})["patience"] == 10
    assert normalize_config(base | {"schedule": "onecycle", "patience": 10})["patience"] == 10
    full = run_training(normalize_config(base | {"schedule": "onecycle", "verbose": 0}))
    assert len(full.history["loss"]) == 30
    cut = run_training(normalize_config(base | {"schedule": "onecycle", "patience": 10, "verbose": 0}))
    ran = len(cut.history["loss"])
    assert ran < 30 and cut.history.stop_kind == "early_stopping"
    assert any(f"at epoch {ran} of 30, before the onecycle schedule" in n for n in cut.diagnostics)


def test_an_immediate_blow_up_is_not_told_to_try_a_tenth_of_its_rate(tmp_path):
    result = _run(_house(tmp_path), lr=1e20, epochs=5)
    limit = stable_lr(result.data.X_train)
    assert result.history.diverged and f"try lr={limit / 2:.2g} " in result.stop_reason
    assert "1e+19" not in result.stop_reason
    mlp = run_training(normalize_config({"data": "moons", "optimizer": "sgd", "lr": 1e20, "epochs": 5, "verbose": 0}))
    assert mlp.history.diverged and "downslope lr-find" in mlp.stop_reason and "1e+19" not in mlp.stop_reason
