"""A Keras 3 user's programs, run with ds.fit: the numbers Keras 3.15.1 (torch backend) gives for the same
weights, data and batch order are written out here (Keras is not a test dependency)."""

import csv

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.errors import ConfigError
from downslope.train import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from downslope.train.metrics import Metric, canonical_log_name, keras_order


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype(np.float32)
    y = (X @ np.array([[1.0], [-2.0]], np.float32) + rng.normal(size=(64, 1))).astype(np.float32)
    X2 = rng.normal(size=(96, 3)).astype(np.float32)
    return X, y, X2, X2.sum(1, keepdims=True).astype(np.float32)


def _dense(n_in, n_out, sigmoid=False):
    """nn.Linear with the weights the Keras runs started from: W = (arange % 5 - 2) / 10, b = 0.05."""
    layer = nn.Linear(n_in, n_out)
    w = (np.arange(n_in * n_out).reshape(n_in, n_out) % 5 - 2).astype(np.float32) * 0.1
    with ds.no_grad():
        layer.weight.copy_(ds.tensor(w.T.copy()))
        layer.bias.copy_(ds.tensor(np.full(n_out, 0.05, np.float32)))
    return nn.Sequential(layer, nn.Sigmoid()) if sigmoid else layer


# ---------------------------------------------------------------- fn(y_true, y_pred), Keras' order
def pinball(y_true, y_pred):  # the 0.9-quantile loss: asymmetric, so swapped arguments fit another quantile
    e = y_true - y_pred
    return ds.maximum(0.9 * e, -0.1 * e).mean()


def mean_pred(y_true, y_pred):
    return float(np.mean(y_pred))


def test_a_keras_style_loss_and_metric_get_the_targets_first():
    X, y, _, _ = _data()
    model = _dense(2, 1)
    history = ds.fit(
        model, pinball, ds.optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=3, batch_size=16, shuffle=False,
        verbose=0, metrics=[mean_pred],
    )  # fmt: skip
    # Keras: model.compile(SGD(0.1), loss=pinball, metrics=[mean_pred]); fit(epochs=3, batch_size=16, shuffle=False)
    np.testing.assert_allclose(history["loss"], [0.7259880304336548, 0.6620098352432251, 0.6009982824325562], rtol=2e-5)
    np.testing.assert_allclose(model.weight.detach().numpy().T, [[-0.11210793], [-0.43057752]], rtol=1e-4)
    np.testing.assert_allclose(model.bias.detach().numpy(), [0.37375], rtol=1e-4)
    logs = ds.evaluate(model, pinball, (X, y), batch_size=64, metrics=[mean_pred])
    assert logs == pytest.approx({"loss": 0.5642253160476685, "mean_pred": 0.3161751925945282}, rel=1e-4)


def test_a_keras_style_per_sample_loss_is_averaged_over_the_batch():
    X, y, _, _ = _data()

    def per_sample(y_true, y_pred):  # keras.io's custom_mean_squared_error: one value per sample
        return ((y_true - y_pred) ** 2).mean(-1)

    model = _dense(2, 1)
    history = ds.fit(model, per_sample, ds.optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=2, batch_size=16,
                     shuffle=False, verbose=0)  # fmt: skip
    np.testing.assert_allclose(history["loss"], [3.7444026470184326, 1.598768711090088], rtol=2e-5)


def test_a_torch_style_loss_returning_per_sample_values_is_refused_naming_it():
    X, y, _, _ = _data()

    def per_sample_loss(outputs, targets):
        return ((outputs - targets) ** 2).mean(-1)

    with pytest.raises(ConfigError, match=r"per_sample_loss returned shape \(16,\), not a scalar"):
        ds.fit(_dense(2, 1), per_sample_loss, "sgd", (X, y), epochs=1, batch_size=16, verbose=0)


def test_torch_style_callables_keep_their_order():
    X, y, _, _ = _data()
    model = _dense(2, 1)
    preds = ds.predict(model, X).numpy()

    def signed(outputs, targets):  # torch's order, other names
        return (outputs - targets).mean()

    class Signed(nn.Module):  # a module whose forward happens to use Keras' names: still torch's order
        def forward(self, y_true, y_pred):
            return (y_true - y_pred).mean()

    expected = float(np.mean(preds - y))
    assert ds.evaluate(model, signed, (X, y))["loss"] == pytest.approx(expected, rel=1e-5)
    assert ds.evaluate(model, Signed(), (X, y))["loss"] == pytest.approx(expected, rel=1e-5)
    assert ds.evaluate(model, lambda a, b: (a - b).mean(), (X, y))["loss"] == pytest.approx(expected, rel=1e-5)
    assert ds.evaluate(model, lambda y_true, y_pred: (y_true - y_pred).mean(), (X, y))["loss"] == pytest.approx(
        -expected, rel=1e-5
    )


def test_train_step_and_lr_find_call_a_keras_style_loss_as_fit_does():
    X, y, _, _ = _data()
    model = _dense(2, 1)
    preds = ds.predict(model, X).numpy()
    logs = ds.train.train_step(model, lambda y_true, y_pred: (y_true - y_pred).mean(), ds.optim.SGD(
        model.parameters(), lr=0.0), ds.tensor(X), ds.tensor(y))  # fmt: skip
    assert float(logs["loss"]) == pytest.approx(float(np.mean(y - preds)), rel=1e-5)
    seen = []

    def records(y_true, y_pred):
        seen.append(y_pred.requires_grad)  # the model's outputs are the ones with a gradient
        return ((y_true - y_pred) ** 2).mean()

    ds.train.lr_find(_dense(2, 1), records, ds.optim.SGD(_dense(2, 1).parameters(), lr=0.1), (X, y), num_iter=3)
    assert seen and all(seen)


def test_keras_order_rule():
    import functools

    def k(y_true, y_pred, q=0.5): ...

    def t(input, target): ...

    assert keras_order(k) and keras_order(functools.partial(k, q=0.9))
    assert not keras_order(t) and not keras_order(nn.MSELoss()) and not keras_order(lambda p, t: 0)
    assert Metric(k).keras_order and not Metric(t).keras_order


# ---------------------------------------------------------------- per-sample metrics, checked on the first batch
def test_a_metric_returning_one_value_per_sample_is_averaged():
    X, y, _, _ = _data()

    def abs_err(y_true, y_pred):  # Keras' way: one value per sample
        return np.abs(y_true - y_pred).mean(-1)

    def abs_err_torch(preds, target):
        return np.abs(np.asarray(preds) - np.asarray(target)).mean(-1)

    history = ds.fit(_dense(2, 1), "mse", "sgd", (X, y), epochs=2, verbose=0, metrics=["mae", abs_err, abs_err_torch])
    np.testing.assert_allclose(history["abs_err"], history["mae"], rtol=1e-6)
    np.testing.assert_allclose(history["abs_err_torch"], history["mae"], rtol=1e-6)


def test_a_metric_of_another_shape_is_refused_naming_it():
    X, y, _, _ = _data()

    def two_numbers(y_true, y_pred):
        return np.array([1.0, 2.0])

    with pytest.raises(ConfigError, match=r"metric 'two_numbers' returned shape \(2,\)"):
        ds.fit(_dense(2, 1), "mse", "sgd", (X, y), epochs=1, verbose=0, metrics=[two_numbers])


class _CountBatches(Callback):
    def __init__(self):
        self.n = 0

    def on_train_batch_end(self, batch, logs=None):
        self.n += 1


@pytest.mark.parametrize(
    ("loss", "metric", "targets"),
    [
        ("categorical_crossentropy", "average_precision", "one_hot"),
        ("sparse_categorical_crossentropy", "mse", "labels"),
    ],
)
def test_an_impossible_metric_is_refused_on_the_first_batch(loss, metric, targets):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(640, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 640)
    y = np.eye(3, dtype=np.float32)[labels] if targets == "one_hot" else labels
    counter = _CountBatches()
    model = nn.Sequential(nn.Linear(6, 3), nn.Softmax(dim=-1))
    with pytest.raises(Exception) as caught:
        ds.fit(model, loss, "sgd", (X, y), epochs=1, verbose=0, metrics=[metric], callbacks=[counter])
    assert counter.n == 0  # not after the 20 batches of the epoch
    assert f"metric {metric!r} checked on the first training batch" in "\n".join(caught.value.__notes__)


# ---------------------------------------------------------------- batch logs: Keras 3's running means
class _Recorder(Callback):
    def __init__(self):
        self.train, self.test = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.train.append({k: float(v) for k, v in logs.items()})

    def on_test_batch_end(self, batch, logs=None):
        self.test.append({k: float(v) for k, v in logs.items()})


def test_batch_logs_are_the_epoch_so_far_with_each_metric():
    _, _, X2, y2 = _data()
    model, recorder = _dense(3, 1), _Recorder()
    history = ds.fit(
        model, "mse", ds.optim.SGD(model.parameters(), lr=0.05), (X2[:64], y2[:64]), batch_size=16, epochs=1,
        shuffle=False, verbose=0, metrics=["mae"], callbacks=[recorder], validation_data=(X2[64:], y2[64:]),
        validation_batch_size=16,
    )  # fmt: skip
    # Keras' on_train_batch_end / on_test_batch_end logs for the same run
    keras_train = [(5.193356513977051, 1.731809377670288), (4.236671447753906, 1.6649736166000366),
                   (3.28029727935791, 1.3849711418151855), (2.7863926887512207, 1.2990233898162842)]  # fmt: skip
    keras_test = [(0.7215124368667603, 0.6792007684707642), (1.3065814971923828, 0.8990012407302856)]
    assert [sorted(logs) for logs in recorder.train + recorder.test] == [["loss", "mae"]] * 6
    np.testing.assert_allclose([(b["loss"], b["mae"]) for b in recorder.train], keras_train, rtol=2e-5)
    np.testing.assert_allclose([(b["loss"], b["mae"]) for b in recorder.test], keras_test, rtol=2e-5)
    assert history["loss"][0] == pytest.approx(recorder.train[-1]["loss"], rel=1e-12)
    assert history["val_mae"][0] == pytest.approx(recorder.test[-1]["mae"], rel=1e-6)


def test_batch_logs_keep_the_batch_loss_and_size_as_attributes():
    _, _, X2, y2 = _data()
    seen = []

    class Own(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((float(logs.batch_loss), logs.size, float(logs["loss"])))

    ds.fit(_dense(3, 1), "mse", "sgd", (X2, y2), batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[Own()])
    assert [s for _, s, _ in seen] == [32, 32, 32]
    assert seen[0][0] == seen[0][2]  # the first batch: its own loss is the mean so far
    assert np.mean([b for b, _, _ in seen]) == pytest.approx(seen[-1][2], rel=1e-6)


def test_metrics_are_computed_per_batch_only_for_a_callback_that_reads_batch_logs():
    _, _, X2, y2 = _data()
    calls = []

    def counted(preds, target):
        calls.append(len(preds))
        return 0.0

    # verbose=1 (the progress output) and the divergence guard read only the loss: no metric per batch
    ds.fit(_dense(3, 1), "mse", "sgd", (X2, y2), batch_size=16, epochs=2, verbose=2, metrics=[counted])
    assert calls == [16, 96, 96]  # the first batch's check, then each epoch's end
    calls.clear()
    ds.fit(_dense(3, 1), "mse", "sgd", (X2, y2), batch_size=16, epochs=1, verbose=0, metrics=[counted],
           callbacks=[_Recorder()])  # fmt: skip
    assert len(calls) == 1 + 6 + 1  # a callback of the user's reads the batch logs: the metric so far per batch
    calls.clear()

    class LossOnly(Callback):
        def on_train_batch_end(self, batch, logs=None):
            assert "counted" in logs and float(logs["loss"]) > 0

    ds.fit(_dense(3, 1), "mse", "sgd", (X2, y2), batch_size=16, epochs=1, verbose=0, metrics=[counted],
           callbacks=[LossOnly()])  # fmt: skip
    assert calls == [16, 96]  # a metric that is not a mean over samples is computed only if read


# ---------------------------------------------------------------- metric names as given
@pytest.mark.parametrize("metric", ["mean_absolute_error", "AUC", "acc", "f1_score"])
def test_metrics_are_logged_under_the_name_given(metric):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    y = (X[:, :1] > 0).astype(np.float32)
    model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    history = ds.fit(model, "binary_crossentropy", "sgd", (X, y), epochs=2, verbose=0, validation_split=0.2,
                     metrics=[metric])  # fmt: skip
    logged = [k for k in history.keys() if k not in ("epoch", "lr", "learning_rate", "epoch_time", "time")]
    assert logged == ["loss", metric, "val_loss", f"val_{metric}"]  # Keras 3's keys
    canonical = canonical_log_name(metric)
    assert history[metric] == history[canonical] and history[f"val_{canonical}"] == history[f"val_{metric}"]


def test_monitors_and_file_names_read_either_spelling(tmp_path):
    X, y, _, _ = _data()
    for given, monitored in [("mean_absolute_error", "val_mae"), ("mae", "val_mean_absolute_error")]:
        stopper = EarlyStopping(monitor=monitored, patience=1)
        saver = ModelCheckpoint(tmp_path / f"{given}-{{epoch}}-{{{monitored}:.3f}}.ckpt")
        history = ds.fit(_dense(2, 1), "mse", "sgd", (X, y), epochs=2, verbose=0, validation_split=0.25,
                         metrics=[given], callbacks=[stopper, saver])  # fmt: skip
        assert stopper.best == pytest.approx(min(history[f"val_{given}"]))
        names = sorted(p.name for p in tmp_path.glob(f"{given}-*.ckpt"))
        assert names == [f"{given}-{e}-{v:.3f}.ckpt" for e, v in zip((1, 2), history[f"val_{given}"])]


# ---------------------------------------------------------------- CSVLogger as Keras'
def test_csv_logger_writes_keras_columns_and_epochs_from_zero(tmp_path):
    X, y, _, _ = _data()
    path = tmp_path / "log.csv"
    history = ds.fit(_dense(2, 1), "mse", "sgd", (X, y), epochs=2, verbose=0, validation_split=0.25,
                     metrics=["mae"], callbacks=[CSVLogger(path)])  # fmt: skip
    rows = list(csv.reader(open(path)))
    # Keras 3 writes: epoch,loss,mae,val_loss,val_mae with epochs 0 and 1; fit's extra columns follow
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae", "lr", "epoch_time", "time"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], history["loss"])


# ---------------------------------------------------------------- Callback.params, Keras model habits
def test_callback_params_are_keras_and_keras_model_habits_are_named():
    X, y, _, _ = _data()
    seen = {}

    class KerasGuide(Callback):
        def on_train_begin(self, logs=None):
            seen.update(self.params)

    ds.fit(_dense(2, 1), "mse", "sgd", (X, y), epochs=3, batch_size=16, verbose=0, callbacks=[KerasGuide()])
    assert {k: seen[k] for k in ("epochs", "steps", "verbose")} == {"epochs": 3, "steps": 4, "verbose": 0}

    class ReadsOptimizer(Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(self.model.optimizer.learning_rate)

    with pytest.raises(AttributeError, match=r"the optimizer is self\.trainer\.optimizer"):
        ds.fit(_dense(2, 1), "mse", "sgd", (X, y), epochs=1, verbose=0, callbacks=[ReadsOptimizer()])
    with pytest.raises(AttributeError, match=r"model\.state_dict\(\) gives the weights"):
        _dense(2, 1).get_weights()


# ---------------------------------------------------------------- refused with a message that names the thing
def test_keras_objects_are_refused_by_name():
    X, y, _, _ = _data()
    keras_loss = type("MeanSquaredError", (), {"__module__": "keras.src.losses.losses", "__call__": lambda s, a, b: 0})
    keras_sgd = type("SGD", (), {"__module__": "keras.src.optimizers.sgd"})
    with pytest.raises(ConfigError, match="loss_fn is the Keras object keras.src.losses.losses.MeanSquaredError"):
        ds.fit(_dense(2, 1), keras_loss(), "sgd", (X, y), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="optimizer is the Keras object keras.src.optimizers.sgd.SGD"):
        ds.fit(_dense(2, 1), "mse", keras_sgd(), (X, y), epochs=1, verbose=0)


def test_per_output_losses_or_targets_for_a_single_output_model_say_what_was_expected():
    # (multi-output models train: tests/train/test_fit_multi_output.py; a model of one output is told apart)
    X, y, _, _ = _data()
    yb = (y > 0).astype(np.float32)
    with pytest.raises(ConfigError, match=r"returned one output of shape \(32, 1\), but 2 outputs \['a', 'b'\]"):
        ds.fit(_dense(2, 1), {"a": "mse", "b": "binary_crossentropy"}, "sgd", (X, y), epochs=1, verbose=0)
    for targets, names in (({"a": y, "b": yb}, r"\['a', 'b'\]"), ([y, yb], r"\['output_1', 'output_2'\]")):
        with pytest.raises(ConfigError, match=rf"returned one output of shape \(32, 1\), but 2 outputs {names}"):
            ds.fit(_dense(2, 1), "mse", "sgd", (X, targets), epochs=1, verbose=0)


# ---------------------------------------------------------------- evaluate's Keras keywords
def test_evaluate_takes_sample_weight_and_return_dict():
    X, y, _, _ = _data()
    w = np.linspace(0, 2, 64).astype(np.float32)
    model = _dense(2, 1)
    # Keras: evaluate(X, y, sample_weight=w, batch_size=16, return_dict=True) -> loss weighted, 'mae' not
    logs = ds.evaluate(model, "mse", (X, y), batch_size=16, metrics=["mae"], sample_weight=w, return_dict=True)
    assert logs == pytest.approx({"loss": 5.72577428817749, "mae": 1.8265448808670044}, rel=1e-5)
    assert ds.evaluate(model, "mse", (X, y, w), metrics=["mae"]) == pytest.approx(logs, rel=1e-6)
    listed = ds.evaluate(model, "mse", (X, y), batch_size=16, metrics=["mae"], return_dict=False)
    assert listed == pytest.approx([5.228460311889648, 1.8265448808670044], rel=1e-5)
    assert ds.evaluate(model, "mse", (X, y), return_dict=False) == pytest.approx(5.228460311889648, rel=1e-5)


def test_weighted_metrics_as_keras():
    X, y, _, _ = _data()
    labels = (X[:, :1] > 0).astype(np.float32)
    w = np.linspace(0, 2, 64).astype(np.float32)
    model = _dense(2, 1, sigmoid=True)
    history = ds.fit(
        model, "binary_crossentropy", ds.optim.SGD(model.parameters(), lr=0.1), (X, labels), sample_weight=w,
        epochs=2, batch_size=16, shuffle=False, verbose=0, metrics=["accuracy"], weighted_metrics=["accuracy"],
    )  # fmt: skip
    # Keras: compile(metrics=["accuracy"], weighted_metrics=["accuracy"]); fit(sample_weight=w, ...)
    np.testing.assert_allclose(history["loss"], [0.7522937655448914, 0.691474199295044], rtol=2e-5)
    np.testing.assert_allclose(history["accuracy"], [0.203125, 0.46875], rtol=1e-6)
    np.testing.assert_allclose(history["weighted_accuracy"], [0.2242063581943512, 0.555555522441864], rtol=1e-5)
    # evaluate: Keras' evaluate(X, y, sample_weight=w) with weighted_metrics=["mae"] beside metrics=["mae"]
    logs = ds.evaluate(_dense(2, 1), "mse", (X, y), batch_size=16, metrics=["mae"], weighted_metrics=["mae"],
                       sample_weight=w)  # fmt: skip
    assert logs == pytest.approx(
        {"loss": 5.72577428817749, "mae": 1.8265448808670044, "weighted_mae": 1.9804414510726929}, rel=1e-5
    )


def test_a_metric_that_cannot_be_weighted_is_refused_on_the_first_batch():
    X, y, _, _ = _data()
    labels = (X[:, :1] > 0).astype(np.float32)
    # (AUC, F1, precision and recall weigh their counts as scikit-learn's sample_weight; r2 is not weighted)
    with pytest.raises(ConfigError, match="weighted_metrics: 'r2' gives one number for all the samples"):
        ds.fit(_dense(2, 1, sigmoid=True), "binary_crossentropy", "sgd", (X, labels), sample_weight=np.ones(64),
               epochs=1, verbose=0, weighted_metrics=["r2"])  # fmt: skip


# ---------------------------------------------------------------- a generator with steps_per_epoch
def _batches(X, y, size):
    while True:  # Keras' habit: a generator that loops forever
        for i in range(0, len(X), size):
            yield X[i : i + size], y[i : i + size]


def test_a_generator_with_steps_per_epoch_trains_as_the_same_batches_given_as_arrays():
    _, _, X2, y2 = _data()
    by_generator, by_arrays = _dense(3, 1), _dense(3, 1)
    h1 = ds.fit(by_generator, "mse", ds.optim.SGD(by_generator.parameters(), lr=0.05), _batches(X2, y2, 32),
                steps_per_epoch=3, epochs=3, verbose=0, metrics=["mae"])  # fmt: skip
    h2 = ds.fit(by_arrays, "mse", ds.optim.SGD(by_arrays.parameters(), lr=0.05), (X2, y2), batch_size=32,
                shuffle=False, epochs=3, verbose=0, metrics=["mae"])  # fmt: skip
    assert h1["loss"] == h2["loss"] and h1["mae"] == h2["mae"]
    np.testing.assert_array_equal(by_generator.weight.detach().numpy(), by_arrays.weight.detach().numpy())


def test_a_generator_needs_steps_per_epoch_and_cannot_be_resumed(tmp_path):
    _, _, X2, y2 = _data()
    with pytest.raises(ConfigError, match="generator, which has no length: pass steps_per_epoch"):
        ds.fit(_dense(3, 1), "mse", "sgd", _batches(X2, y2, 32), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="a generator cannot be rewound"):
        ds.fit(_dense(3, 1), "mse", "sgd", _batches(X2, y2, 32), steps_per_epoch=3, epochs=1, verbose=0,
               checkpoint_dir=tmp_path)  # fmt: skip
    finite = (batch for batch in [(X2[:32], y2[:32])] * 4)
    with pytest.raises(ConfigError, match="the generator ran out after 4 batches, 1 into this epoch"):
        ds.fit(_dense(3, 1), "mse", "sgd", finite, steps_per_epoch=3, epochs=2, verbose=0)
