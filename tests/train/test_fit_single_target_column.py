"""A 1-D target (a pandas Series, a 1-D array) against a model's (N, 1) outputs is one target column:
fit and evaluate reshape it to (N, 1), and train as a PyTorch loop given ``y.unsqueeze(1)`` does."""

import warnings

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn, optim
from downslope.errors import ShapeError
from downslope.train import evaluate, fit


def _regression(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return x, y


def _twins(seed=0):
    ds.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        for i in (0, 2):
            twin[i].weight.copy_(torch.tensor(model[i].weight.detach().numpy()))
            twin[i].bias.copy_(torch.tensor(model[i].bias.detach().numpy()))
    return model, twin


def test_a_1d_target_trains_against_n_by_1_outputs_as_torch_with_the_target_unsqueezed():
    x, y = _regression()
    assert y.shape == (24,)
    model, twin = _twins()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: a 1-D target is a single column
        history = fit(
            model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (x, y),
            epochs=3, batch_size=8, shuffle=False, verbose=0, metrics=["mae"],
        )  # fmt: skip
    topt = torch.optim.SGD(twin.parameters(), lr=0.05)
    xt, yt = torch.tensor(x), torch.tensor(y).unsqueeze(1)
    losses = []
    for _ in range(3):
        total = 0.0
        for b in range(0, 24, 8):
            topt.zero_grad()
            loss = torch.nn.functional.mse_loss(twin(xt[b : b + 8]), yt[b : b + 8])
            loss.backward()
            topt.step()
            total += loss.item() * 8
        losses.append(total / 24)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-5)
    for i in (0, 2):
        np.testing.assert_allclose(
            model[i].weight.detach().numpy(), twin[i].weight.detach().numpy(), rtol=1e-5, atol=1e-6
        )
    # the metric pairs each output with its own target (not the (N, N) broadcast)
    with torch.no_grad():
        final_mae = (twin(xt) - yt).abs().mean().item()
    scored = evaluate(model, nn.MSELoss(), (x, y), metrics=["mae"], verbose=0)
    with torch.no_grad():
        assert scored["loss"] == pytest.approx(torch.nn.functional.mse_loss(twin(xt), yt).item(), rel=1e-5)
    assert scored["mae"] == pytest.approx(final_mae, rel=1e-5)


def test_a_1d_validation_target_is_a_single_column_too():
    x, y = _regression(seed=1)
    model, twin = _twins(seed=1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (x[:16], y[:16]),
        validation_data=(x[16:], y[16:]), epochs=1, batch_size="full", verbose=0,
    )  # fmt: skip
    topt = torch.optim.SGD(twin.parameters(), lr=0.05)
    loss = torch.nn.functional.mse_loss(twin(torch.tensor(x[:16])), torch.tensor(y[:16]).unsqueeze(1))
    loss.backward()
    topt.step()
    with torch.no_grad():
        val = torch.nn.functional.mse_loss(twin(torch.tensor(x[16:])), torch.tensor(y[16:]).unsqueeze(1)).item()
    assert history["loss"][0] == pytest.approx(loss.item(), rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(val, rel=1e-5)


def test_a_1d_target_against_several_output_columns_is_still_refused():
    x, y = _regression()
    ds.manual_seed(0)
    model = nn.Linear(3, 2)
    with pytest.raises(ShapeError, match=r"input shape \(24, 2\) and target shape \(24,\)"):
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (x, y), epochs=1, batch_size="full",
            verbose=0)  # fmt: skip
