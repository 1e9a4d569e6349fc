"""What a Keras / scikit-learn user passes to fit, evaluate and predict, read as Keras reads it: loss names
(probabilities unless from_logits), optimizer names, Keras 3's callback hooks, validation_split's last rows,
integer features, metrics 'auc' and 'mape', the learning_rate history key and the best-epoch bases."""

import math
import warnings

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError
from downslope.train import Callback, EarlyStopping, History, evaluate, fit, predict


def _classes(n=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, k, size=n)


def _softmax_model(seed=0):
    ds.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=-1))


def _torch_twin(model):
    twin = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax(dim=-1))
    with torch.no_grad():
        twin[0].weight.copy_(torch.tensor(model[0].weight.detach().numpy()))
        twin[0].bias.copy_(torch.tensor(model[0].bias.detach().numpy()))
    return twin


def _keras_sparse_cce(probs, y):
    """Keras 3's sparse_categorical_crossentropy on probabilities (its torch backend), in torch."""
    p = probs / probs.sum(dim=-1, keepdim=True)
    return torch.nn.functional.nll_loss(torch.log(torch.clamp(p, 1e-7, 1 - 1e-7)), y)


# ---------------------------------------------------------------------- loss names
def test_sparse_categorical_crossentropy_reads_probabilities_as_keras_and_trains_as_torch():
    x, y = _classes()
    model = _softmax_model()
    twin = _torch_twin(model)
    history = fit(model, "sparse_categorical_crossentropy", optim.SGD(model.parameters(), lr=0.5), (x, y),
                  epochs=1, batch_size="full", verbose=0)  # fmt: skip
    topt = torch.optim.SGD(twin.parameters(), lr=0.5)
    loss = _keras_sparse_cce(twin(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    topt.step()
    assert history["loss"][0] == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(model[0].weight.detach().numpy(), twin[0].weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_keras_cross_entropy_names_with_from_logits_and_one_hot_targets_match_torch():
    x, y = _classes(seed=1)
    logits = x @ np.array([[1.0, -1.0, 0.5], [0.3, 0.2, -2.0]], np.float32)
    tl = torch.tensor(logits)
    onehot = np.eye(3, dtype=np.int64)[y]
    want = torch.nn.functional.cross_entropy(tl, torch.tensor(y)).item()
    probs = torch.softmax(tl, -1).numpy()
    got = {
        "sparse, logits": evaluate(nn.Identity(), ("sparse_categorical_crossentropy", {"from_logits": True}), (logits, y)),
        "categorical, logits": evaluate(nn.Identity(), ("categorical_crossentropy", {"from_logits": True}), (logits, onehot)),
        "categorical, probs": evaluate(nn.Identity(), "categorical_crossentropy", (probs, onehot)),
        "sparse, probs, (N, 1) labels": evaluate(nn.Identity(), "sparse_categorical_crossentropy", (probs, y[:, None])),
        "torch's name": evaluate(nn.Identity(), "cross_entropy", (logits, y)),
    }  # fmt: skip
    for case, logs in got.items():
        assert logs["loss"] == pytest.approx(want, rel=1e-5), case
    bce_want = torch.nn.functional.binary_cross_entropy_with_logits(tl[:, :1], torch.tensor(y[:, None] % 2.0)).item()
    logs = evaluate(nn.Identity(), ("binary_crossentropy", {"from_logits": True}), (logits[:, :1], (y[:, None] % 2.0)))
    assert logs["loss"] == pytest.approx(bce_want, rel=1e-5)


def test_a_probability_loss_given_logits_warns_and_bad_options_are_refused():
    x, y = _classes(seed=2)
    with pytest.warns(RuntimeWarning, match=r"negative values, so they are logits.*from_logits"):
        evaluate(nn.Identity(), "sparse_categorical_crossentropy", (x[:, :2] - 5.0, y % 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # probabilities: no warning
        evaluate(_softmax_model(), "sparse_categorical_crossentropy", (x, y))
    with pytest.raises(ConfigError, match="from_logits"):
        fit(nn.Linear(2, 1), ("mse", {"from_logits": True}), "sgd", (x, y[:, None] * 1.0), verbose=0)
    with pytest.raises(ConfigError, match=r"options \{'from_logits': bool\}"):
        evaluate(nn.Identity(), ("categorical_crossentropy", {"logits": True}), (x, y))


def test_evaluate_takes_fits_loss_names():
    x, y = _classes(seed=3)
    target = (x.sum(1, keepdims=True) * 2).astype(np.float32)
    model = nn.Linear(2, 1)
    want = torch.nn.functional.mse_loss(torch.tensor(predict(model, x).numpy()), torch.tensor(target)).item()
    assert evaluate(model, "mse", (x, target))["loss"] == pytest.approx(want, rel=1e-6)
    assert ds.evaluate is evaluate and ds.predict is predict


# ---------------------------------------------------------------------- optimizer names
def test_an_optimizer_name_builds_it_with_keras_default_rate_and_steps_as_torch():
    x, y = _classes(seed=4)
    target = x.sum(1, keepdims=True)
    for name, torch_cls, lr in (("adam", torch.optim.Adam, 0.001), ("sgd", torch.optim.SGD, 0.01),
                                ("rmsprop", torch.optim.RMSprop, 0.001)):  # fmt: skip
        ds.manual_seed(0)
        model = nn.Linear(2, 1)
        twin = torch.nn.Linear(2, 1)
        with torch.no_grad():
            twin.weight.copy_(torch.tensor(model.weight.detach().numpy()))
            twin.bias.copy_(torch.tensor(model.bias.detach().numpy()))
        history = fit(model, "mse", name, (x, target), epochs=3, batch_size="full", verbose=0)
        topt = torch_cls(twin.parameters(), lr=lr)
        for _ in range(3):
            topt.zero_grad()
            torch.nn.functional.mse_loss(twin(torch.tensor(x)), torch.tensor(target)).backward()
            topt.step()
        assert history["lr"] == [lr] * 3, name
        np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adamm'; use one of sgd, adam, adamw, rmsprop"):
        fit(nn.Linear(2, 1), "mse", "adamm", (x, target), verbose=0)


# ---------------------------------------------------------------------- callbacks
class _Counts(Callback):
    def __init__(self, override_train: bool):
        self.seen: dict[str, int] = {}
        self.override_train = override_train

    def _count(self, hook):
        self.seen[hook] = self.seen.get(hook, 0) + 1

    def on_batch_end(self, batch, logs=None):
        self._count("on_batch_end")

    def on_train_batch_end(self, batch, logs=None):
        if self.override_train:
            self._count("on_train_batch_end")
        else:
            super().on_train_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        self._count("on_test_begin")

    def on_test_batch_end(self, batch, logs=None):
        assert math.isfinite(logs["loss"]) and logs.size > 0 and "size" not in logs  # Keras 3's keys
        self._count("on_test_batch_end")

    def on_test_end(self, logs=None):
        self._count("on_test_end")

    def on_predict_batch_end(self, batch, logs=None):
        self._count("on_predict_batch_end")


def test_keras3_batch_hooks_are_called_as_keras_calls_them():
    x = np.zeros((64, 3), np.float32)
    y = np.zeros((64, 1), np.float32)
    val = (np.zeros((10, 3), np.float32), np.zeros((10, 1), np.float32))
    keras3, legacy = _Counts(override_train=True), _Counts(override_train=False)
    model = nn.Linear(3, 1)
    fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), val, epochs=2, batch_size=16,
        callbacks=[keras3, legacy], verbose=0)  # fmt: skip
    # Keras 3: fit calls on_train_batch_end, whose default calls on_batch_end; overriding it replaces that
    assert keras3.seen == {"on_train_batch_end": 8, "on_test_begin": 2, "on_test_batch_end": 2, "on_test_end": 2}
    assert legacy.seen["on_batch_end"] == 8
    counts = _Counts(override_train=True)
    evaluate(model, "mse", (x, y), batch_size=16, callbacks=[counts])
    predict(model, x, batch_size=32, callbacks=[counts])
    assert counts.seen == {"on_test_begin": 1, "on_test_batch_end": 4, "on_test_end": 1, "on_predict_batch_end": 2}


# ---------------------------------------------------------------------- validation_split
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(("n", "fraction"), [(10, 0.25), (100, 0.2), (7, 0.3), (178, 0.25), (3, 0.5)])
def test_validation_split_holds_out_the_last_rows_as_keras(n, fraction, shuffle):
    x = np.zeros((n, 1), np.float32)
    y = np.arange(n, dtype=np.float32)[:, None]
    model = nn.Linear(1, 1)
    model.load_state_dict({"weight": ds.zeros(1, 1), "bias": ds.zeros(1)})  # predicts 0: val_loss = mean(y^2)
    history = fit(model, "mse", optim.SGD(model.parameters(), lr=0.0), (x, y), validation_split=fraction,
                  shuffle=shuffle, epochs=1, verbose=0)  # fmt: skip
    split_at = int(math.floor(n * (1.0 - fraction)))  # Keras 3's train_validation_split
    assert history["val_loss"][0] == pytest.approx(float(np.mean(y[split_at:] ** 2)), rel=1e-6)
    assert history["loss"][0] == pytest.approx(float(np.mean(y[:split_at] ** 2)), rel=1e-6)


def test_a_validation_split_leaving_no_rows_is_refused():
    with pytest.raises(ConfigError, match=r"validation_split=0.9 of 3 rows leaves no training rows"):
        fit(nn.Linear(1, 1), "mse", "sgd", (np.zeros((3, 1)), np.zeros((3, 1))), validation_split=0.9, verbose=0)


# ---------------------------------------------------------------------- integer features
def test_integer_features_train_as_their_float_values_and_embeddings_keep_their_ids():
    xi = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    y = np.array([0, 1, 0, 1])
    runs = []
    for x in (xi, xi.astype(np.float32)):
        ds.manual_seed(0)
        model = nn.Linear(2, 2)
        history = fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=2, verbose=0)
        runs.append((history["loss"], model.weight.detach().numpy().copy(), predict(model, x).numpy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    ds.manual_seed(0)
    emb = nn.Sequential(nn.Embedding(10, 2), nn.Flatten(), nn.Linear(4, 2))
    fit(emb, "cross_entropy", optim.SGD(emb.parameters(), lr=0.1), (xi, y), epochs=1, verbose=0)  # ids stay ints
    assert predict(emb, xi).shape == (4, 2)


# ---------------------------------------------------------------------- metrics, history, best epoch
def test_auc_matches_scikit_learn_and_mape_matches_keras_formula():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    labels = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(np.float32)[:, None]
    model = nn.Linear(2, 1)
    logs = evaluate(model, ("binary_crossentropy", {"from_logits": True}), (x, labels), metrics=["auc"])
    scores = predict(model, x).numpy()[:, 0]
    assert logs["auc"] == pytest.approx(roc_auc_score(labels[:, 0], scores), abs=1e-12)
    two_columns = np.stack([-scores, scores], 1).round(1)  # ties, and class scores in two columns
    assert ds.train.metrics.roc_auc_score(two_columns, labels) == pytest.approx(
        roc_auc_score(labels[:, 0], two_columns[:, 1]), abs=1e-12
    )
    target = rng.normal(size=(60, 1)).astype(np.float32)
    target[0] = 0.0  # Keras divides by max(|y|, 1e-7)
    logs = evaluate(model, "mse", (x, target), metrics=["mape"])
    p = torch.tensor(predict(model, x).numpy(), dtype=torch.float64)
    t = torch.tensor(target, dtype=torch.float64)
    want = (100 * torch.mean(torch.abs(t - p) / torch.clamp(torch.abs(t), min=1e-7))).item()
    assert logs["mape"] == pytest.approx(want, rel=1e-6)


def test_history_has_learning_rate_and_best_epoch_bases_agree():
    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    ds.manual_seed(0)
    model = nn.Linear(1, 1)
    stopper = EarlyStopping(monitor="loss", patience=2)
    history = fit(model, "mse", optim.SGD(model.parameters(), lr=0.5), (x, 2 * x), epochs=5, batch_size="full",
                  callbacks=[stopper], verbose=0)  # fmt: skip
    assert history["learning_rate"] == history["lr"] == [0.5] * len(history)
    assert history.best_epoch_index == stopper.best_epoch == history.epoch[int(np.argmin(history["loss"]))]
    assert history.best_epoch == history.best_epoch_index + 1 == history["epoch"][history.best_epoch_index]
    assert History().best_epoch_index is None


# ---------------------------------------------------------------------- ReduceLROnPlateau against Keras' rule
def _keras_plateau(values, patience, min_delta, factor=0.5, lr=1.0):
    """Keras 3's ReduceLROnPlateau.on_epoch_end (mode min, cooldown 0, min_lr 0), written out."""
    best, wait, rates = math.inf, 0, []
    for v in values:
        if v < best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                lr, wait = lr * factor, 0
        rates.append(lr)
    return rates


@pytest.mark.parametrize(("patience", "min_delta"), [(2, 0.0), (1, 0.01), (3, 0.05)])
def test_the_documented_plateau_settings_follow_keras_rule(patience, min_delta):
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.85, 0.86, 0.87, 0.88, 0.845, 0.84, 0.9, 0.9]
    opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=patience - 1, threshold_mode="abs",
                                                 threshold=min_delta)  # fmt: skip
    rates = []
    for v in values:
        sched.step(v)
        rates.append(opt.current_lrs()[0])
    assert rates == _keras_plateau(values, patience, min_delta)


def test_a_validation_split_of_rows_sorted_by_class_warns():
    x = np.zeros((20, 1), np.float32)
    y = np.r_[np.zeros(16), np.ones(4)].astype(np.int64)  # the held-out 20% is the one class never trained on
    with pytest.warns(RuntimeWarning, match=r"classes \[1\] never occur in the training rows"):
        fit(nn.Linear(1, 2), "cross_entropy", "sgd", (x, y), validation_split=0.2, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mixed classes on both sides: no warning
        fit(nn.Linear(1, 2), "cross_entropy", "sgd", (x, np.arange(20) % 2), validation_split=0.2, epochs=1, verbose=0)
