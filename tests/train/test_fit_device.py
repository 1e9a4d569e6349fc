"""fit, train_step, evaluate and predict on a device (``train/fit.py``, ``train/evaluation.py``,
``train/placement.py``), run on the strict stand-in for a GPU: NumPy underneath, behind CuPy's wall.

The stand-in computes with NumPy underneath, so a seeded run must give the same weights on both
(exactly in float64). The logged losses may differ in the last bit: cross-entropy has a fused kernel
for host targets that sums the batch in another order than the general path a device takes. The
stand-in counts every time the host would wait for the device (each copy to the host, each boolean
mask...); the tests count them to prove the loop waits O(1) times per epoch, not once per batch.
"""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.devices import strict
from downslope.train import callbacks as cb
from downslope.train import evaluate, predict, train_step
from downslope.train.placement import DeviceScalar, load_on_host, model_device, training_device


def _data(n=120, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)), rng.integers(0, classes, n)


def _mlp(dtype=None):
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    return model.to(dtype) if dtype is not None else model


def _fit(device, dtype=None, epochs=3, batch_size=16, **options):
    x, y = _data()
    if dtype is not None:
        x = x.astype(dtype)
    model = _mlp(dtype)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    history = ds.fit(
        model,
        nn.CrossEntropyLoss(),
        opt,
        ds.data.ArrayDataset(x, y) if dtype is None else _float64_dataset(x, y),
        validation=(x[:40], y[:40]) if dtype is None else _float64_dataset(x[:40], y[:40]),
        epochs=epochs,
        batch_size=batch_size,
        metrics=["accuracy"],
        verbose=0,
        seed=1,
        device=device,
        **options,
    )
    return model, history


def _float64_dataset(x, y):
    """An ArrayDataset that keeps float64 (the default dtype policy would make it float32)."""
    data = ds.data.ArrayDataset(x, y)
    data.arrays = (np.ascontiguousarray(x, np.float64), data.arrays[1])
    return data


def _params(model):
    return [ds.devices.to_host(p.array) for p in model.parameters()]


@pytest.fixture
def host_reads(monkeypatch):
    """Counts every time the host would wait for the device: each copy of a strict-device array to the
    host (``.get()``, the only way out of the stand-in) and each operation whose result's size depends
    on the data (a boolean mask, nonzero...), which CuPy must read back before it can go on."""
    count = [0]
    synchronize = strict._synchronize

    def counting(what):
        count[0] += 1
        return synchronize(what)

    monkeypatch.setattr(strict, "_synchronize", counting)
    return count


# ---------------------------------------------------------------------- the same numbers as on the CPU
def test_mlp_on_the_strict_device_is_bit_identical_to_the_cpu_in_float64(monkeypatch):
    # The compiled host kernels (numba: the cross-entropy/softmax passes) sum in another order than the
    # NumPy formulation a device runs; bit-identity is a property of the latter, so the CPU takes it too.
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    cpu_model, cpu_history = _fit(None, dtype=np.float64)
    dev_model, dev_history = _fit("strict", dtype=np.float64)
    assert str(model_device(dev_model)) == "strict" and str(model_device(cpu_model)) == "cpu"
    for a, b in zip(_params(cpu_model), _params(dev_model)):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    for key in ("accuracy", "val_accuracy"):
        assert cpu_history[key] == dev_history[key], key
    for key in ("loss", "val_loss"):  # cross-entropy's fused host kernel sums in another order (docstring)
        np.testing.assert_allclose(cpu_history[key], dev_history[key], rtol=1e-14)


def test_mlp_on_the_strict_device_matches_the_cpu_in_float32():
    cpu_model, cpu_history = _fit(None)
    dev_model, dev_history = _fit("strict")
    for a, b in zip(_params(cpu_model), _params(dev_model)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cpu_history["loss"], dev_history["loss"], rtol=1e-6)
    assert cpu_history["val_accuracy"] == dev_history["val_accuracy"]


def test_small_cnn_trains_on_the_strict_device_as_on_the_cpu():
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 1, 8, 8)), rng.integers(0, 3, 40)

    def run(device):
        ds.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history = ds.fit(
            model, nn.CrossEntropyLoss(), opt, (x, y), epochs=2, batch_size=16, verbose=0, seed=1, device=device
        )
        return model, history

    cpu_model, cpu_history = run(None)
    dev_model, dev_history = run("strict")
    for a, b in zip(_params(cpu_model), _params(dev_model)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cpu_history["loss"], dev_history["loss"], rtol=1e-6)


# ---------------------------------------------------------------------- reads from the device
def test_fit_reads_a_constant_number_of_values_per_epoch_whatever_the_number_of_batches(host_reads):
    counts = {}
    for batch_size in (4, 40):  # 30 and 3 batches per epoch
        host_reads[0] = 0
        _fit("strict", epochs=2, batch_size=batch_size)
        counts[batch_size] = host_reads[0]
    assert counts[4] == counts[40], counts
    # per epoch: the loss sum, the outputs and targets for the metric, the same three for validation;
    # once per run: the first batch's loss for the divergence guard, and the first batch's outputs and
    # targets, on which each metric is checked before the epoch goes on
    assert counts[4] <= 2 * 6 + 3, counts


def test_without_metrics_or_validation_an_epoch_reads_one_number(host_reads):
    x, y = _data()
    model = _mlp()
    ds.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        epochs=3,
        batch_size=8,
        verbose=0,
        device="strict",
    )
    assert host_reads[0] == 3 + 1  # the epoch's loss, three times; the first batch's loss once


def test_batch_logs_carry_the_loss_on_the_device_until_a_callback_reads_it(host_reads):
    seen = []

    class Reader(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((logs["loss"], logs.batch_loss))  # Keras' loss so far; the batch's own

    x, y = _data()
    model = _mlp()
    history = ds.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        epochs=1,
        batch_size=30,
        verbose=0,
        callbacks=[Reader()],
        device="strict",
    )
    assert len(seen) == 4 and all(isinstance(v, DeviceScalar) for pair in seen for v in pair)
    assert not any(so_far.read for so_far, _ in seen)  # the running means: computed only when read
    assert seen[0][1].read and not any(own.read for _, own in seen[1:])  # the first batch's, by the divergence guard
    before = host_reads[0]
    means = [float(so_far) for so_far, _ in seen]
    assert host_reads[0] == before + 4 and float(seen[1][0]) == means[1] and host_reads[0] == before + 4  # cached
    own = [float(v) for _, v in seen]  # four batches of 30: the mean so far is the plain running mean
    np.testing.assert_allclose(means, np.cumsum(own) / np.arange(1, 5), rtol=1e-6)
    assert history["loss"][0] == pytest.approx(means[-1], rel=1e-12)


def test_train_step_moves_model_and_batch_and_keeps_the_loss_on_the_device():
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(8)
    logs = train_step(model, nn.CrossEntropyLoss(), opt, ds.tensor(x), ds.tensor(y), device="strict")
    assert str(model_device(model)) == "strict"
    assert isinstance(logs["loss"], DeviceScalar) and isinstance(logs["outputs"], strict.StrictArray)
    host = train_step(_mlp(), nn.CrossEntropyLoss(), optim.SGD(_mlp().parameters(), lr=0.1), ds.tensor(x), ds.tensor(y))
    assert type(host["loss"]) is float  # on the CPU: a float, as always
    assert float(logs["loss"]) == pytest.approx(host["loss"], rel=1e-6)


# ---------------------------------------------------------------------- divergence on a device
def test_a_diverging_run_on_the_device_stops_after_the_epoch_with_a_clear_reason():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)) * 100
    y = x @ np.array([[1.0], [2.0], [3.0]])
    histories = {}
    for device in (None, "strict"):
        ds.manual_seed(0)
        model = nn.Linear(3, 1)
        histories[device] = ds.fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=10.0),
            (x, y),
            epochs=20,
            batch_size=8,
            verbose=0,
            seed=0,
            device=device,
        )
    cpu, dev = histories[None], histories["strict"]
    assert cpu.stop_kind == dev.stop_kind == "diverged"
    assert len(dev) == len(cpu)  # the CPU stops at the batch, the device after that epoch: both in epoch 1
    assert "at batch" in cpu.stop_reason and "at epoch" in dev.stop_reason and "try lr=1" in dev.stop_reason


def test_the_divergence_guard_reads_the_first_device_loss_once_at_the_end_of_the_epoch(host_reads):
    guard = cb.DivergenceGuard(factor=100)
    state = cb.TrainingState()
    guard.set_trainer(state)
    guard.on_train_begin()
    for i, value in enumerate([0.41, 0.5, 0.6]):
        guard.on_batch_end(i, {"loss": DeviceScalar(ds.devices.to_device(np.array(value), "strict"))})
    assert host_reads[0] == 0 and guard.best is None
    guard.on_epoch_end(0, {"loss": 50.0, "lr": 1.0})  # 50 > 100 x 0.41, the first batch's loss
    assert host_reads[0] == 1 and state.stop_kind == "diverged"
    assert "rose from 0.41 to 50" in state.stop_reason


def test_terminate_on_nan_judges_the_epoch_on_a_device(host_reads):
    rule = cb.TerminateOnNaN()
    state = cb.TrainingState()
    rule.set_trainer(state)
    rule.on_batch_end(0, {"loss": DeviceScalar(ds.devices.to_device(np.array(np.nan), "strict"))})
    assert host_reads[0] == 0 and not state.stop_training
    rule.on_epoch_end(0, {"loss": float("nan")})
    assert state.stop_kind == "diverged" and state.stop_reason == "loss became nan in epoch 1"


def test_the_progress_bar_reads_a_device_loss_about_ten_times_per_epoch(host_reads):
    from downslope.train.progress import ProgressBar

    class Bar:
        def __init__(self):
            self.postfixes = []

        def update(self, n):
            pass

        def set_postfix(self, **kw):
            self.postfixes.append(kw)

    bar = ProgressBar()
    bar._bar, bar._every = Bar(), 100 // 10
    for i in range(100):
        bar.on_batch_end(i, {"loss": DeviceScalar(ds.devices.to_device(np.array(0.5), "strict"))})
    assert len(bar._bar.postfixes) == 10 and host_reads[0] == 10
    bar.on_batch_end(0, {"loss": 0.25})  # a host float (the CPU loop) is shown every batch
    assert bar._bar.postfixes[-1]["loss"] == "0.25"


# ---------------------------------------------------------------------- evaluate, predict, placement
def test_evaluate_and_predict_on_the_device_give_host_results_equal_to_the_cpu():
    x, y = _data()
    cpu_model = _mlp()
    dev_model = _mlp()
    cpu = evaluate(cpu_model, nn.CrossEntropyLoss(), (x, y), batch_size=32, metrics=["accuracy"])
    dev = evaluate(dev_model, nn.CrossEntropyLoss(), (x, y), batch_size=32, metrics=["accuracy"], device="strict")
    assert str(model_device(dev_model)) == "strict"
    assert dev["accuracy"] == cpu["accuracy"] and dev["loss"] == pytest.approx(cpu["loss"], rel=1e-6)
    preds_cpu = predict(cpu_model, x, batch_size=32)
    preds_dev = predict(dev_model, x, batch_size=32)  # device=None: where the model is
    assert str(preds_dev.device) == "cpu"
    np.testing.assert_allclose(preds_dev.numpy(), preds_cpu.numpy(), rtol=0, atol=1e-6)
    loader = ds.data.DataLoader(ds.data.ArrayDataset(x), batch_size=50)  # a host loader: moved per batch
    np.testing.assert_allclose(predict(dev_model, loader).numpy(), preds_cpu.numpy(), rtol=0, atol=1e-6)


def test_a_user_dataloader_without_a_device_is_moved_batch_by_batch():
    x, y = _data()
    cpu_model, _ = _fit(None, epochs=2)
    model = _mlp()
    loader = ds.data.DataLoader(ds.data.ArrayDataset(x, y), batch_size=16, shuffle=True, seed=1)
    ds.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=1e-2),
        loader,
        epochs=2,
        verbose=0,
        device="strict",
    )
    assert str(model_device(model)) == "strict"
    # the same batches as fit's own loader (same seed), so the same weights as the CPU run
    ref = _mlp()
    ds.fit(
        ref,
        nn.CrossEntropyLoss(),
        optim.Adam(ref.parameters(), lr=1e-2),
        (x, y),
        epochs=2,
        batch_size=16,
        verbose=0,
        seed=1,
    )
    for a, b in zip(_params(ref), _params(model)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_training_device_resolves_names_and_defaults_to_the_model():
    model = _mlp()
    assert training_device(None, model, "fit") == "cpu"
    model.to("strict")
    assert training_device(None, model, "fit") == "strict"
    assert training_device("cpu", model, "fit") == "cpu"
    if not ds.cuda.is_available():
        with pytest.raises(ds.errors.StateError, match=r"fit\(device=...\).*downslope\[cuda\]"):
            training_device("cuda", model, "fit")


def test_device_scalar_reads_once_and_formats():
    v = DeviceScalar(ds.devices.to_device(np.array(2.5), "strict"))
    assert repr(v) == "DeviceScalar(on strict)" and not v.read
    assert f"{v:.2f}" == "2.50" and v.read and v > 2 and v <= 2.5 and v.item() == 2.5
    assert repr(v) == "DeviceScalar(2.5)"


# ---------------------------------------------------------------------- checkpoints and resuming
def test_checkpoints_written_on_the_device_hold_host_arrays(tmp_path):
    _fit("strict", epochs=1, checkpoint_dir=tmp_path)
    state = ds.load(tmp_path / "last.ckpt")
    assert all(isinstance(v, ds.Tensor) and type(v.array) is np.ndarray for v in state["model"].values())
    cpu_model = _mlp()
    cpu_model.load_state_dict(state["model"])  # loads on a machine without the device


def test_resuming_onto_the_device_continues_bit_identically_to_the_cpu_resume(tmp_path, monkeypatch):
    # The compiled host kernels (numba: the cross-entropy/softmax passes) sum in another order than the
    # NumPy formulation a device runs; bit-identity is a property of the latter, so the CPU takes it too.
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    _fit(None, dtype=np.float64, epochs=2, checkpoint_dir=tmp_path)
    resumed = {}
    for device in (None, "strict"):
        model, history = _fit(device, dtype=np.float64, epochs=4, resume_from=tmp_path / "last.ckpt")
        resumed[device] = (model, history)
    straight, straight_history = _fit(None, dtype=np.float64, epochs=4)
    assert resumed[None][1].as_dict() == straight_history.as_dict() | {
        k: resumed[None][1][k] for k in ("epoch_time", "time")
    }
    assert resumed["strict"][1]["val_accuracy"] == straight_history["val_accuracy"]
    for key in ("loss", "val_loss"):  # cross-entropy's fused host kernel sums in another order (docstring)
        np.testing.assert_allclose(resumed["strict"][1][key], straight_history[key], rtol=1e-14)
    for a, b, c in zip(_params(resumed[None][0]), _params(resumed["strict"][0]), _params(straight)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert str(model_device(resumed["strict"][0])) == "strict"


def test_early_stopping_restores_its_best_weights_into_a_model_on_the_device():
    stop = cb.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    model, history = _fit("strict", epochs=30, callbacks=[stop])
    assert str(model_device(model)) == "strict"
    best = stop.best_weights
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(ds.devices.to_host(value.array), ds.devices.to_host(best[key]))


def test_load_on_host_loads_host_and_device_state_into_a_device_model():
    source = _mlp()
    target = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).to("strict")
    load_on_host(target, source.state_dict())
    again = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).to("strict")
    load_on_host(again, target.state_dict())  # device arrays
    for a, b, c in zip(_params(source), _params(target), _params(again)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert str(model_device(again)) == "strict"


@pytest.mark.parametrize(
    "batch_size, reduction, shuffle",
    [(None, "mean", True), (1, "mean", True), (5, "sum", True), (7, "mean", False)],
)
def test_every_batch_mode_and_reduction_logs_the_cpu_loss_on_the_device(batch_size, reduction, shuffle):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(23, 3)), rng.normal(size=(23, 2))

    def run(device):
        ds.manual_seed(0)
        model = nn.Linear(3, 2).to(ds.float64)
        data = _float64_dataset(x, y)
        data.arrays = (data.arrays[0], np.ascontiguousarray(y, np.float64))
        history = ds.fit(
            model,
            nn.MSELoss(reduction=reduction),
            optim.SGD(model.parameters(), lr=0.01),
            data,
            validation=data,
            epochs=2,
            batch_size=batch_size,
            shuffle=shuffle,
            metrics=["mae"],
            verbose=0,
            seed=2,
            device=device,
        )
        return model, history

    (cpu_model, cpu), (dev_model, dev) = run(None), run("strict")
    for key in ("loss", "mae", "val_loss", "val_mae"):
        assert dev[key] == cpu[key], key  # the same float64 sums, in the same order
    for a, b in zip(_params(cpu_model), _params(dev_model)):
        np.testing.assert_array_equal(a, b)
