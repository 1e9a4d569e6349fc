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
    model[0].bias.array[:2] = -100.0  # two units that can never fire
    return model


def _torch_copy(model):
    ref = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    with torch.no_grad():
        for (_, p), q in zip(model.named_parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.array.copy()))
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


def _warnings_of(model, lr, x, y, diag=None, epochs=3):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr), (x, y), epochs=epochs,
            callbacks=[diag or GradientDiagnostics()], verbose=0)  # fmt: skip
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_plain_word_warnings_for_dead_units():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    model = _net()
    model[0].bias.array[:] = -100.0  # every unit dead
    text = _warnings_of(model, 5.0, x, y)
    assert any("100% of the units after ReLU '1' never fired in epoch 1" in t for t in text)
    assert sum("never fired" in t for t in text) == 1  # once per run, not once per epoch


def test_plain_word_warnings_for_too_large_and_too_small_steps():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    text = _warnings_of(_net(), 3.0, x, y)
    assert any("each update changes '0.weight' by" in t and "learning rate is probably too high" in t for t in text)
    text = _warnings_of(_net(), 1e-6, x, y, diag=GradientDiagnostics(ratio_low=1e-4))
    assert any("changes '0.weight' by only" in t and "learning rate is probably too low" in t for t in text)
    assert not any("too high" in t for t in text)


def test_exploding_gradients_are_named_with_a_remedy():
    # a rate that overshoots: the loss rises from epoch 1 to epoch 2 (and the guard stops it in epoch 3)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 3)) * 1e4, rng.normal(size=(16, 1)) * 1e4
    text = _warnings_of(_net(), 3e-8, x, y, epochs=3)
    assert any(
        "gradients of '0.weight' are very large in epoch 2" in t and "lower the learning rate" in t and "clip_norm" in t
        for t in text
    )
    # the CLI names its own option
    text = _warnings_of(_net(), 3e-8, x, y, diag=GradientDiagnostics(clip_hint="--clip-norm 1.0"))
    assert any("very large in epoch 2" in t and "clip gradients (e.g. --clip-norm 1.0)" in t for t in text)


def test_large_gradients_of_unscaled_inputs_while_the_loss_falls_get_no_rate_advice():
    # inputs in the thousands make the gradients huge at a rate that is fine (the loss falls every epoch):
    # lowering the rate or clipping would only slow such a run further (standardizing is the fix)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 3)) * 1e3, rng.normal(size=(16, 1))
    diag, model = GradientDiagnostics(), _net()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e-7), (x, y), epochs=3,
                      callbacks=[diag], verbose=0)  # fmt: skip
    text = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    losses = history["loss"]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert diag.history[0]["grad_norm"]["0.weight"] > diag.exploding  # the gradients are huge
    assert not any("lower the learning rate" in t or "clip" in t for t in text), text


def test_a_zero_initialized_bias_is_no_false_alarm():
    """A fresh zero bias has no relative change (its size is 0); it once gave 'changes by inf%'."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.ones((3, 1))
    model = _net()
    for layer in (model[0], model[2]):
        layer.bias.array[:] = 0.0
    diag = GradientDiagnostics()
    text = _warnings_of(model, 0.01, x, y, diag=diag, epochs=2)
    assert text == []
    ratios = diag.history[0]["update_ratio"]
    assert all(np.isfinite(list(ratios.values())))  # full batch: the bias is zero only before the first step
    assert 0 < ratios["0.weight"] < 0.1


def test_vanishing_gradients_are_named():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    ds.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(3, 3), nn.Sigmoid())], nn.Linear(3, 1))
    for p in model.parameters():
        p.array *= 1e-3
    with pytest.warns(RuntimeWarning, match=r"gradients of '0.weight' are vanishingly small"):
        fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=0.1),
            (x, y),
            epochs=1,
            callbacks=[GradientDiagnostics()],
        )


def test_a_resumed_fit_keeps_the_whole_per_layer_record(tmp_path):
    """Its record is part of fit's checkpoint, so a resumed run's report shows every epoch."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.ones((3, 1))).astype(np.float32)

    def run(epochs, **kwargs):
        model = _net()
        diag = GradientDiagnostics(warn=False)
        opt = optim.SGD(model.parameters(), lr=0.01)
        fit(
            model,
            nn.MSELoss(),
            opt,
            (x, y),
            epochs=epochs,
            batch_size=16,
            callbacks=[diag],
            verbose=0,
            seed=0,
            **kwargs,
        )
        return diag

    straight = run(4)
    run(2, checkpoint_dir=tmp_path)
    resumed = run(4, resume_from=tmp_path / "last.ckpt")
    assert len(resumed.history) == 4
    assert resumed.history == straight.history


def test_on_a_device_the_record_equals_the_cpu_one_and_is_read_once_per_epoch(monkeypatch):
    """On the strict stand-in (NumPy behind CuPy's wall) the sums stay on the device and come back in one
    copy per epoch, whatever the number of measured batches; the numbers are the CPU's."""
    from downslope.devices.strict import StrictArray

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 3)), rng.normal(size=(48, 1))

    def run(device, batch_size):
        ds.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).to(ds.float64)
        diag = GradientDiagnostics(every_n_batches=1, warn=False)
        data = ds.data.ArrayDataset(x, y)
        data.arrays = tuple(a.astype(np.float64) for a in (x, y))
        fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=0.05),
            data,
            epochs=2,
            batch_size=batch_size,
            callbacks=[diag],
            verbose=0,
            seed=0,
            device=device,
        )
        return diag.history

    reads = [0]
    get = StrictArray.get

    def counting(self):
        reads[0] += 1
        return get(self)

    monkeypatch.setattr(StrictArray, "get", counting)
    counts = {}
    for batch_size in (4, 24):  # 12 and 2 measured batches per epoch
        cpu = run(None, batch_size)
        reads[0] = 0
        device = run("strict", batch_size)
        counts[batch_size] = reads[0]
        assert device == cpu
    assert counts[4] == counts[24], counts


def test_a_linear_regression_that_converges_gets_no_warnings():
    # Full-batch gradient descent reaching least squares: large early steps that pay off and tiny
    # gradients at the minimum are not problems (they once read "too high", then "too low", then
    # "vanishing ... saturated units" in one run).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1))
    y = 3 * x + 2 + 0.1 * rng.normal(size=(128, 1))
    text = _warnings_of(
        nn.Sequential(nn.Linear(1, 1)), 0.1, x, y, epochs=300, diag=GradientDiagnostics(every_n_batches=1)
    )
    assert text == []


def _straight_and_resumed(tmp_path, make_model, lr, x, y, epochs, stop):
    """The RuntimeWarnings of an uninterrupted fit and of one stopped after ``stop`` epochs and resumed."""

    def run(n, **kwargs):
        model = make_model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr), (x, y), epochs=n, batch_size=32,
                callbacks=[GradientDiagnostics()], verbose=0, seed=0, **kwargs)  # fmt: skip
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    straight = run(epochs)
    run(stop, checkpoint_dir=tmp_path)
    return straight, run(epochs, resume_from=tmp_path / "last.ckpt")


def test_a_resumed_fit_gives_the_warnings_of_an_uninterrupted_one(tmp_path):
    """Convergence is judged against the first epoch's loss, which the checkpoint keeps (a resumed run
    once called a converged model's small gradients 'vanishing'), and warnings given before the stop
    are given again, so a run's report lists the same notes however often it was resumed."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1))
    y = 3 * x + 2 + 0.1 * rng.normal(size=(128, 1))

    def linear():
        ds.manual_seed(0)
        return nn.Sequential(nn.Linear(1, 1))

    straight, resumed = _straight_and_resumed(tmp_path / "a", linear, 0.1, x, y, 200, 100)
    assert straight == [] and resumed == []
    x3 = rng.normal(size=(64, 3))

    def dead():
        model = _net()
        model[0].bias.array[:] = -100.0  # every unit dead from the start
        return model

    straight, resumed = _straight_and_resumed(tmp_path / "b", dead, 0.01, x3, x3.sum(1, keepdims=True), 6, 3)
    assert any("never fired in epoch 1" in t for t in straight)
    assert resumed == straight


def test_a_bias_feeding_a_batch_norm_is_not_called_vanishing():
    """Batch norm subtracts each feature's batch mean, so the bias before it has a zero gradient by
    construction (rounding noise of about 1e-8 in float32, as in PyTorch): no 'stopped learning' alarm."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = x[:, :1] * 2
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
    ref = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        for (_, p), q in zip(model.named_parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.array.copy()))
    torch.nn.functional.mse_loss(ref(torch.from_numpy(x[:16])), torch.from_numpy(y[:16])).backward()
    assert float(ref[0].bias.grad.norm()) < 1e-6 < float(ref[0].weight.grad.norm())  # PyTorch's is ~0 too
    diag = GradientDiagnostics(vanishing=1e-5)  # well above the noise, so only the exemption keeps it quiet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=2, batch_size=16,
            callbacks=[diag], verbose=0)  # fmt: skip
    assert diag.history[0]["grad_norm"]["0.bias"] < 1e-5  # measured, just not an alarm
    assert not [w for w in caught if "vanishingly small" in str(w.message)]


def test_vanishing_gradients_name_the_causes_the_model_can_have():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    # every ReLU dead: the layer before them gets no gradient, and the dead ReLUs are why
    model = _net()
    model[0].bias.array[:] = -100.0
    text = _warnings_of(model, 0.01, x, y, epochs=2)
    said = [t for t in text if "gradients of '0.weight' are vanishingly small" in t]
    assert len(said) == 1 and "the dead ReLUs reported (after ReLU '1')" in said[0] and "sigmoid" not in said[0]
    assert text.index(said[0]) > next(i for i, t in enumerate(text) if "never fired" in t)  # named first
    # a LeakyReLU network with a tiny initialization: no sigmoid, tanh or dead ReLU to blame
    ds.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(3, 3), nn.LeakyReLU())], nn.Linear(3, 1))
    for p in model.parameters():
        p.array *= 1e-3
    said = [t for t in _warnings_of(model, 0.1, x, y, epochs=1) if "vanishingly small" in t]
    assert said and all("sigmoid" not in t and "too-small initialization" in t for t in said)
    # the sigmoid network of the test above: saturated units are a cause it can have
    ds.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(3, 3), nn.Sigmoid())], nn.Linear(3, 1))
    for p in model.parameters():
        p.array *= 1e-3
    said = [t for t in _warnings_of(model, 0.1, x, y, epochs=1) if "vanishingly small" in t]
    assert said and all("saturated sigmoid/tanh units" in t and "ReLU" not in t for t in said)


def test_a_converged_linear_models_bias_is_not_called_vanishing():
    # a linear regression by full-batch gradient descent: the bias reaches its optimum (its gradient, the
    # mean residual, goes to 0) long before the weights do; that is no vanishing gradient, and a single
    # layer has no stack for gradients to vanish through
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) @ np.diag([1.0, 0.3, 0.1, 0.03, 0.01])  # ill-conditioned: slow weights
    x -= x.mean(axis=0)  # centred features: the bias's gradient is the mean residual, 0 at its optimum
    y = x @ rng.normal(size=(5, 1)) + rng.normal(size=(200, 1))
    y = (y - y.mean()) / y.std()  # a standardized target, as the command line trains on
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 1))
    with ds.no_grad():
        model[0].bias.fill_(0.0)
    diag = GradientDiagnostics()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=30, batch_size=None,
            callbacks=[diag], verbose=0)  # fmt: skip
    assert min(h["grad_norm"]["0.bias"] for h in diag.history) < diag.vanishing  # the case in question
    assert not [w for w in caught if "vanishingly small" in str(w.message)]


def _noisy_line(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardized noisy data with outliers: least squares leaves most of the first epoch's loss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 1)).astype(np.float32)
    y = (2 * x + 1 + rng.normal(size=(200, 1))).astype(np.float32)
    y[:4] += 40
    return x, ((y - y.mean()) / y.std()).astype(np.float32)


def _too_low_warnings(caught: list) -> list[str]:
    return [str(w.message) for w in caught if "too low" in str(w.message) or "vanishing" in str(w.message)]


def test_a_run_converged_to_least_squares_is_not_told_its_learning_rate_is_too_low():
    x, y = _noisy_line()
    ds.manual_seed(0)
    model = nn.Linear(1, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(model, nn.MSELoss(), optim.GD(model.parameters(), lr=0.1), (x, y), epochs=300,
                      batch_size="full", callbacks=[GradientDiagnostics()], verbose=0)  # fmt: skip
    (slope, intercept), *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))].astype(np.float64), y[:, 0], rcond=None)
    assert abs(model.weight.item() - slope) < 1e-5 and abs(model.bias.item() - intercept) < 1e-5  # converged
    assert history["loss"][-1] > 0.5 * history["loss"][0]  # the noise keeps most of the loss
    assert _too_low_warnings(caught) == []


def test_a_learning_rate_that_is_too_low_is_still_named():
    x, y = _noisy_line()
    ds.manual_seed(0)
    model = nn.Linear(1, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # (float32 weights cannot take steps below ~1e-7 of their size: the threshold is raised instead)
        fit(model, nn.MSELoss(), optim.GD(model.parameters(), lr=1e-6), (x, y), epochs=30, batch_size="full",
            callbacks=[GradientDiagnostics(ratio_low=1e-4)], verbose=0)  # fmt: skip
    said = _too_low_warnings(caught)
    assert len(said) == 1 and "'weight'" in said[0] and "learning rate is probably too low" in said[0]


def test_the_convergence_reference_survives_a_checkpoint():
    diag = GradientDiagnostics(warn=False)
    diag._first_loss, diag._first_grad = 2.0, 3.0
    restored = GradientDiagnostics(warn=False)
    restored.load_state_dict(diag.state_dict())
    assert (restored._first_loss, restored._first_grad) == (2.0, 3.0)
    assert restored._converged(1.9, 2e-3) and not restored._converged(1.9, 0.5)
