import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.train import fit
from downslope.train.diagnostics import GradientDiagnostics

torch = pytest.importorskip("torch")


def _net():
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 1))
    model[0].bias.data[:2] = -100.0  # two units that can never fire
    return model


def _torch_copy(model):
    ref = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    with torch.no_grad():
        for (_, p), q in zip(model.named_parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.data.copy()))
    return ref


def test_grad_norms_update_ratios_and_dead_units_match_pytorch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype(np.float32), rng.normal(size=(32, 1)).astype(np.float32)
    model = _net()
    ref = _torch_copy(model)
    diag = GradientDiagnostics(warn=False)
    lr = 0.05
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr), (x, y), epochs=1, batch_size=None, callbacks=[diag]
    )

    tx = torch.from_numpy(x)
    hidden = ref[1](ref[0](tx))
    torch.nn.functional.mse_loss(ref[2](hidden), torch.from_numpy(y)).backward()
    record = diag.history[0]
    names = [n for n, _ in model.named_parameters()]
    total = 0.0
    for name, q in zip(names, ref.parameters()):
        g = q.grad.double().norm().item()
        total += g * g
        assert record["grad_norm"][name] == pytest.approx(g, rel=1e-5)
        # Plain SGD moves each parameter by lr * grad.
        assert record["update_ratio"][name] == pytest.approx(lr * g / q.detach().double().norm().item(), rel=1e-4)
    assert history["grad_norm"][0] == pytest.approx(np.sqrt(total), rel=1e-5)
    expected_dead = float((hidden <= 0).all(dim=0).double().mean())
    assert expected_dead >= 2 / 6 and record["dead_relu"]["1"] == pytest.approx(expected_dead)
    assert "forward" not in model[1].__dict__  # the ReLU is left as it was


def test_plain_word_warnings_for_dead_units_and_a_too_large_step():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    model = _net()
    model[0].bias.data[:] = -100.0  # every unit dead
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=5.0),
            (x, y),
            epochs=3,
            callbacks=[GradientDiagnostics()],
        )
    text = [str(w.message) for w in caught]
    assert any("100% of the units after ReLU '1' never fired in epoch 1" in t for t in text)
    assert any("learning rate is probably too high" in t for t in text)
    assert sum("never fired" in t for t in text) == 1  # once per run, not once per epoch


def test_vanishing_gradients_are_named():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    ds.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(3, 3), nn.Sigmoid())], nn.Linear(3, 1))
    for p in model.parameters():
        p.data *= 1e-3
    with pytest.warns(RuntimeWarning, match=r"gradients of '0.weight' are vanishingly small"):
        fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=0.1),
            (x, y),
            epochs=1,
            callbacks=[GradientDiagnostics()],
        )
