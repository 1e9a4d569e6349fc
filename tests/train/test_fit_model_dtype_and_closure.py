"""fit / evaluate / predict follow the model's dtype (a ``.double()`` model trains on float64 data, as
Keras follows its model's dtype), and fit steps an optimizer that needs a closure (L-BFGS) as a PyTorch
loop does: each compared with the same loop written in torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.data import ArrayDataset, DataLoader
from downslope.train import evaluate, predict
from downslope.train.inputs import model_float_dtype
from downslope.train.stepping import needs_closure

torch = pytest.importorskip("torch")


def _data(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.7 + 0.1 * rng.normal(size=(n, 1))
    return x, y


def _torch_copy(model: nn.Linear, dtype: Any) -> Any:
    twin = torch.nn.Linear(model.in_features, model.out_features).to(dtype)
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(model.weight.detach().numpy()))
        twin.bias.copy_(torch.tensor(model.bias.detach().numpy()))
    return twin


def test_float64_model_fits_evaluates_and_predicts_on_float64_data_like_torch() -> None:
    x, y = _data()
    ds.manual_seed(0)
    model = nn.Linear(3, 1).double()
    twin = _torch_copy(model, torch.float64)
    ds.fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=20, batch_size="full", verbose=0)

    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    tx, ty = torch.tensor(x), torch.tensor(y)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(twin(tx), ty).backward()
        opt.step()
    assert model.weight.dtype == ds.float64
    np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.bias.detach().numpy(), twin.bias.detach().numpy(), rtol=1e-12, atol=1e-12)

    out = predict(model, x)
    assert out.dtype == ds.float64
    with torch.no_grad():
        expected = twin(tx)
        expected_loss = float(torch.nn.functional.mse_loss(expected, ty))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    logs = evaluate(model, nn.MSELoss(), (x, y))
    assert logs["loss"] == pytest.approx(expected_loss, rel=1e-12)


def test_float64_model_with_the_reported_repro_and_validation_split_and_a_dataloader() -> None:
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    x = ds.tensor(np.random.rand(50, 3), dtype=ds.float64)
    y = ds.tensor(np.random.rand(50, 1), dtype=ds.float64)
    history = ds.fit(model, "mse", optim.Adam(model.parameters()), (x, y), epochs=2, verbose=0, validation_split=0.2)
    assert np.isfinite(history["val_loss"]).all()
    # A user's DataLoader yields float32 batches (the default dtype): cast to the model's dtype per batch.
    loader = DataLoader(ArrayDataset(np.random.rand(20, 3), np.random.rand(20, 1)), batch_size=8)
    ds.fit(model, "mse", optim.SGD(model.parameters(), lr=0.01), loader, epochs=1, verbose=0)
    assert predict(model, loader).dtype == ds.float64
    assert np.isfinite(evaluate(model, nn.MSELoss(), loader)["loss"])


def test_float32_model_keeps_the_default_float32_data_path() -> None:
    model = nn.Linear(3, 1)
    assert model_float_dtype(model) is None  # nothing is cast per batch
    x, y = _data()
    assert predict(model, x).dtype == ds.float32
    ds.fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=1, verbose=0)
    assert model.weight.dtype == ds.float32


def test_integer_targets_stay_integers_for_a_float64_classifier() -> None:
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(40, 2)), rng.integers(0, 3, size=40)
    model = nn.Linear(2, 3).double()
    history = ds.fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=0.1), (x, labels), epochs=2,
                     metrics=["accuracy"], verbose=0)  # fmt: skip
    assert np.isfinite(history["loss"]).all()


def test_needs_closure_tells_lbfgs_and_closure_only_steps_apart() -> None:
    params = list(nn.Linear(2, 1).parameters())

    class ClosureOnly:
        def step(self, closure: Any) -> Any:
            return closure()

    assert needs_closure(optim.LBFGS(params))
    assert needs_closure(ClosureOnly())
    assert needs_closure(torch.optim.LBFGS([torch.zeros(1, requires_grad=True)]))
    assert not needs_closure(optim.SGD(params, lr=0.1))
    assert not needs_closure(optim.Adam(params))


def test_fit_with_lbfgs_reaches_the_least_squares_solution() -> None:
    x, y = _data(n=40)
    design = np.hstack([x, np.ones((len(x), 1))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0].ravel()
    ds.manual_seed(0)  # the start is part of the result: without a seed it came from whatever ran before
    model = nn.Linear(3, 1).double()
    lbfgs = optim.LBFGS(model.parameters(), tolerance_grad=1e-12, tolerance_change=1e-15)
    history = ds.fit(model, "mse", lbfgs, (x, y), epochs=3, batch_size="full", verbose=0)
    found = np.concatenate([model.weight.detach().numpy().ravel(), model.bias.detach().numpy()])
    # LBFGS stops on its gradient and change tolerances, not on the distance to the solution: over 40
    # random starts that distance was up to 1.3e-8 (6e-9 from this seed)
    np.testing.assert_allclose(found, solution, rtol=1e-7, atol=1e-7)
    assert history["loss"][-1] < history["loss"][0]

    model32 = nn.Linear(3, 1)  # the default float32 model, with LBFGS's default tolerances
    ds.fit(model32, "mse", optim.LBFGS(model32.parameters()), (x, y), epochs=3, batch_size="full", verbose=0)
    found = np.concatenate([model32.weight.detach().numpy().ravel(), model32.bias.detach().numpy()])
    np.testing.assert_allclose(found, solution, rtol=1e-4, atol=1e-4)


def test_fit_with_lbfgs_matches_a_torch_loop_passing_a_closure() -> None:
    x, y = _data(n=30, seed=1)
    ds.manual_seed(1)
    model = nn.Linear(3, 1).double()
    twin = _torch_copy(model, torch.float64)
    history = ds.fit(model, "mse", optim.LBFGS(model.parameters(), max_iter=4), (x, y), epochs=2,
                     batch_size="full", verbose=0)  # fmt: skip

    opt = torch.optim.LBFGS(twin.parameters(), max_iter=4)
    tx, ty = torch.tensor(x), torch.tensor(y)
    first_losses = []

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(twin(tx), ty)
        loss.backward()
        return loss

    for _ in range(2):
        first_losses.append(float(opt.step(closure).detach()))
    np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.detach().numpy(), twin.bias.detach().numpy(), rtol=1e-10, atol=1e-12)
    # the logged loss is the batch's loss before the step, as torch's LBFGS.step returns it
    np.testing.assert_allclose(history["loss"], first_losses, rtol=1e-12)


def test_fit_with_lbfgs_on_minibatches_and_train_step_directly() -> None:
    x, y = _data(n=32)
    model = nn.Linear(3, 1)
    ds.fit(model, "mse", optim.LBFGS(model.parameters(), lr=0.5, max_iter=5), (x, y), epochs=2, batch_size=16,
           verbose=0, metrics=["mae"])  # fmt: skip
    logs = ds.train.train_step(model, nn.MSELoss(), optim.LBFGS(model.parameters()), ds.tensor(x), ds.tensor(y))
    assert np.isfinite(logs["loss"]) and logs["outputs"].shape == (32, 1)


def test_lr_find_runs_a_float64_model_on_float64_data() -> None:
    from downslope.train import lr_find

    x, y = _data(n=64)
    model = nn.Linear(3, 1).double()
    result = lr_find(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), batch_size=16, num_iter=20)
    assert len(result.lrs) > 0 and np.isfinite(result.losses[0])
