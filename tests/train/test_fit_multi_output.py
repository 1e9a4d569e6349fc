"""fit, evaluate and predict with several outputs (``train/multi_output.py``): Keras 3's multi-output form
(a model returning a tuple or dict of Tensors; targets, losses, loss_weights, metrics and sample weights per
output), checked against a hand-written PyTorch loop with the same weights and batches, and against the
names and orders Keras 3 logs."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError, ShapeError
from downslope.train import callbacks as cb

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)
N = 48
X = RNG.standard_normal((N, 3)).astype(np.float32)
YA = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1).astype(np.float32)  # a regression target
YB = RNG.integers(0, 3, N)  # class indices
W = np.linspace(0.0, 2.0, N).astype(np.float32)


class Two(nn.Module):
    """A shared trunk and two heads: a number and three class scores."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(3, 8)
        self.a = nn.Linear(8, 1)
        self.b = nn.Linear(8, 3)

    def forward(self, x):
        h = ds.tanh(self.trunk(x))
        return self.a(h), self.b(h)


class Named(Two):
    """The same heads, returned as a dict by output name."""

    def forward(self, x):
        a, b = super().forward(x)
        return {"price": a, "kind": b}


class TorchTwo(torch.nn.Module):
    def __init__(self, ours: Two) -> None:
        super().__init__()
        self.trunk = torch.nn.Linear(3, 8)
        self.a = torch.nn.Linear(8, 1)
        self.b = torch.nn.Linear(8, 3)
        self.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})

    def forward(self, x):
        h = torch.tanh(self.trunk(x))
        return self.a(h), self.b(h)


def _model(kind: type = Two) -> Two:
    ds.manual_seed(0)
    return kind()


def _torch_fit(ours: Two, epochs: int, batch: int, weight_b: float, lr: float = 0.1, sample_weight=None):
    """Keras' multi-output loop in PyTorch: per-output losses reduced over the batch, weighted and summed;
    returns the model and, per epoch, the total and each output's loss (means over samples by batch size)."""
    model = TorchTwo(ours)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, ya, yb = torch.tensor(X), torch.tensor(YA), torch.tensor(YB)
    w = None if sample_weight is None else [torch.tensor(s) for s in sample_weight]
    logs = []
    for _ in range(epochs):
        sums = np.zeros(3)
        for start in range(0, N, batch):
            rows = slice(start, start + batch)
            a, b = model(x[rows])
            if w is None:
                la = torch.nn.functional.mse_loss(a, ya[rows])
                lb = torch.nn.functional.cross_entropy(b, yb[rows])
            else:  # Keras' sum_over_batch_size: sum(w_i * l_i) / n
                n = len(a)
                la = (((a - ya[rows]) ** 2).mean(1) * w[0][rows]).sum() / n
                lb = (torch.nn.functional.cross_entropy(b, yb[rows], reduction="none") * w[1][rows]).sum() / n
            loss = la + weight_b * lb
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = len(a)
            sums += np.array([loss.item(), la.item(), lb.item()]) * n
        logs.append(sums / N)
    return model, np.array(logs)


def _assert_same_parameters(ours: Two, theirs) -> None:
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.state_dict()[name].numpy(), p.detach().numpy(), rtol=2e-5, atol=2e-6)


# ---------------------------------------------------------------- the training itself, against PyTorch
def test_fit_trains_a_tuple_of_outputs_as_a_torch_loop_with_weighted_losses():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = ds.fit(
        model, ["mse", "cross_entropy"], opt, (X, [YA, YB]), loss_weights=[1.0, 0.5],
        epochs=3, batch_size=16, shuffle=False, verbose=0,
    )  # fmt: skip
    ref, logs = _torch_fit(_model(), 3, 16, 0.5)
    _assert_same_parameters(model, ref)
    # 'loss' is the weighted total; '<name>_loss' each output's own (unweighted), as Keras 3 logs them
    np.testing.assert_allclose(history["loss"], logs[:, 0], rtol=2e-5)
    np.testing.assert_allclose(history["output_1_loss"], logs[:, 1], rtol=2e-5)
    np.testing.assert_allclose(history["output_2_loss"], logs[:, 2], rtol=2e-5)


def test_fit_trains_a_dict_of_outputs_with_dict_targets_losses_and_weights():
    model = _model(Named)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = ds.fit(
        model, {"price": "mse", "kind": nn.CrossEntropyLoss()}, opt, (X, {"kind": YB, "price": YA}),
        loss_weights={"kind": 0.25}, epochs=2, batch_size=12, shuffle=False, verbose=0,
    )  # fmt: skip
    ref, logs = _torch_fit(_model(), 2, 12, 0.25)
    _assert_same_parameters(model, ref)
    np.testing.assert_allclose(history["loss"], logs[:, 0], rtol=2e-5)
    np.testing.assert_allclose(history["price_loss"], logs[:, 1], rtol=2e-5)
    np.testing.assert_allclose(history["kind_loss"], logs[:, 2], rtol=2e-5)


def test_one_loss_applies_to_every_output_and_sums():
    model = _model()
    out = model(ds.tensor(X))
    targets = [YA, out[1].detach().numpy() * 0.5]
    want = float(np.mean((out[0].detach().numpy() - targets[0]) ** 2)) + float(
        np.mean((out[1].detach().numpy() - targets[1]) ** 2)
    )
    logs = ds.evaluate(model, "mse", (X, targets))
    assert logs["loss"] == pytest.approx(want, rel=1e-5)
    assert set(logs) == {"loss", "output_1_loss", "output_2_loss"}


def test_per_output_sample_weights_weigh_each_outputs_loss_as_keras():
    model = _model()
    flipped = W[::-1].copy()
    ds.fit(
        model, ["mse", "cross_entropy"], optim.SGD(model.parameters(), lr=0.1, momentum=0.9), (X, [YA, YB]),
        sample_weight=[W, flipped], epochs=2, batch_size=16, shuffle=False, verbose=0,
    )  # fmt: skip
    ref, _ = _torch_fit(_model(), 2, 16, 1.0, sample_weight=[W, flipped])
    _assert_same_parameters(model, ref)
    # one sample_weight array weighs every output alike (Keras broadcasts it over the outputs)
    one = ds.evaluate(_model(), ["mse", "cross_entropy"], (X, [YA, YB]), sample_weight=W)
    both = ds.evaluate(_model(), ["mse", "cross_entropy"], (X, [YA, YB]), sample_weight={"output_1": W, "output_2": W})
    assert one == pytest.approx(both, rel=1e-6)


def test_an_output_without_a_loss_is_not_trained_on():
    model = _model(Named)
    before = model.b.weight.detach().numpy().copy()
    history = ds.fit(model, {"price": "mse"}, "sgd", (X, {"price": YA}), epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.b.weight.detach().numpy(), before)  # no gradient reaches the head
    assert "price_loss" not in history and "kind_loss" not in history  # one loss: Keras 3 logs only 'loss'
    list_model = _model()
    ds.fit(list_model, ["mse", None], "sgd", (X, [YA, YB]), epochs=1, verbose=0)
    np.testing.assert_array_equal(list_model.b.weight.detach().numpy(), before)


def test_train_step_takes_losses_per_output():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    logs = ds.train.train_step(model, ["mse", "cross_entropy"], opt, ds.tensor(X), [ds.tensor(YA), ds.tensor(YB)])
    ref = TorchTwo(_model())
    a, b = ref(torch.tensor(X))
    want = torch.nn.functional.mse_loss(a, torch.tensor(YA)) + torch.nn.functional.cross_entropy(b, torch.tensor(YB))
    assert float(logs["loss"]) == pytest.approx(want.item(), rel=1e-5)
    assert isinstance(logs["outputs"], tuple) and [o.shape for o in logs["outputs"]] == [(N, 1), (N, 3)]


# ---------------------------------------------------------------- names, as Keras 3 logs them
def test_history_keys_and_metric_names_follow_keras_3():
    model = _model(Named)
    history = ds.fit(
        model, {"price": "mse", "kind": "cross_entropy"}, "sgd", (X, {"price": YA, "kind": YB}),
        metrics={"price": ["mae"], "kind": ["accuracy", "accuracy"]}, validation_split=0.25, epochs=1, verbose=0,
    )  # fmt: skip
    keys = [k for k in history.history if k not in ("lr", "learning_rate", "epoch_time", "time", "epoch")]
    # Keras 3: the loss, the compiled metrics (a name taken twice gets _1), then each output's loss tracker
    assert keys == [
        "loss", "price_mae", "kind_accuracy", "kind_accuracy_1", "price_loss", "kind_loss",
        "val_loss", "val_price_mae", "val_kind_accuracy", "val_kind_accuracy_1", "val_price_loss", "val_kind_loss",
    ]  # fmt: skip
    preds = ds.predict(model, X[-12:])
    want = float(np.mean(np.argmax(preds["kind"].numpy(), 1) == YB[-12:]))
    assert history["val_kind_accuracy"][-1] == pytest.approx(want)
    # a list of metrics: one entry per output, as Keras 3 reads it; model.output_names names a tuple's outputs
    model = _model()
    model.output_names = ["price", "kind"]
    history = ds.fit(
        model, ["mse", "cross_entropy"], "sgd", (X, [YA, YB]), metrics=["mae", ["accuracy"]],
        weighted_metrics=[None, ["accuracy"]], sample_weight=W, epochs=1, verbose=0,
    )  # fmt: skip
    assert [k for k in history.history if k.startswith(("price", "kind"))] == [
        "price_mae", "kind_accuracy", "kind_weighted_accuracy", "price_loss", "kind_loss",
    ]  # fmt: skip


def test_evaluate_returns_keras_dict_and_list():
    model = _model(Named)
    loss = {"price": "mse", "kind": "cross_entropy"}
    data = (X, {"price": YA, "kind": YB})
    logs = ds.evaluate(model, loss, data, metrics={"price": "mae", "kind": "accuracy"}, loss_weights=[2.0, 1.0])
    assert list(logs) == ["loss", "price_mae", "kind_accuracy", "price_loss", "kind_loss"]
    assert logs["loss"] == pytest.approx(2.0 * logs["price_loss"] + logs["kind_loss"], rel=1e-6)
    listed = ds.evaluate(model, loss, data, metrics={"price": "mae", "kind": "accuracy"}, return_dict=False)
    # Keras 3's order: the loss trackers, then the output metrics sorted by name
    assert listed == pytest.approx(
        [logs["price_loss"] + logs["kind_loss"], logs["price_loss"], logs["kind_loss"], logs["kind_accuracy"],
         logs["price_mae"]], rel=1e-6,
    )  # fmt: skip


def test_predict_joins_each_output_over_the_batches():
    model = _model()
    whole = model(ds.tensor(X))
    got = ds.predict(model, X, batch_size=10)
    assert isinstance(got, tuple) and len(got) == 2
    for part, ref in zip(got, whole):
        np.testing.assert_allclose(part.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-7)
    named = ds.predict(_model(Named), X, batch_size=7)
    assert set(named) == {"price", "kind"} and named["kind"].shape == (N, 3)


# ---------------------------------------------------------------- data kinds
class _PairDataset(ds.utils.data.Dataset):
    """(x, (y1, y2)) or (x, {name: y}) samples; ``regression``: the second target three numbers."""

    def __init__(self, as_dict: bool, regression: bool = False) -> None:
        self.as_dict = as_dict
        self.second = np.repeat(YA, 3, axis=1) if regression else YB

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        y = {"output_1": YA[i], "output_2": self.second[i]} if self.as_dict else (YA[i], self.second[i])
        return X[i], y


@pytest.mark.parametrize("as_dict", [False, True])
def test_a_dataloader_of_targets_per_output_trains_as_the_arrays(as_dict):
    loader = ds.utils.data.DataLoader(_PairDataset(as_dict), batch_size=16)
    model = _model()
    history = ds.fit(
        model,
        ["mse", "cross_entropy"],
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        loader,
        epochs=2,
        verbose=0,
    )
    ref, logs = _torch_fit(_model(), 2, 16, 1.0)
    _assert_same_parameters(model, ref)
    np.testing.assert_allclose(history["output_2_loss"], logs[:, 2], rtol=2e-5)
    # one loss name for both outputs: applied per output too (the Dataset's first sample says the targets are)
    regression = ds.utils.data.DataLoader(_PairDataset(as_dict, regression=True), batch_size=16)
    history = ds.fit(_model(), "mse", "sgd", regression, epochs=1, verbose=0)
    assert history["loss"][0] == pytest.approx(history["output_1_loss"][0] + history["output_2_loss"][0], rel=1e-6)


def test_a_pytorch_style_loss_of_ones_own_still_gets_the_whole_tuples():
    seen = []

    def joint(outputs, targets):  # PyTorch's order: the loss reads the tuples itself
        seen.append((len(outputs), len(targets)))
        return ((outputs[0] - targets[0]) ** 2).mean() + nn.functional.cross_entropy(outputs[1], targets[1])

    loader = ds.utils.data.DataLoader(_PairDataset(False), batch_size=16)
    model = _model()
    ds.fit(model, joint, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), loader, epochs=2, verbose=0)
    assert seen and set(seen) == {(2, 2)}
    ref, _ = _torch_fit(_model(), 2, 16, 1.0)
    _assert_same_parameters(model, ref)


def test_validation_callbacks_and_checkpoints_read_per_output_losses(tmp_path):
    model = _model()
    stop = cb.EarlyStopping(monitor="val_output_2_loss", patience=0, min_delta=10.0)  # stops at the 2nd epoch
    best = cb.ModelCheckpoint(
        str(tmp_path / "best-{epoch}-{val_output_1_loss:.3f}.ckpt"), monitor="val_output_1_loss", save_best_only=True
    )
    history = ds.fit(
        model, ["mse", "cross_entropy"], "sgd", (X, [YA, YB]), validation_data=(X[:8], [YA[:8], YB[:8]]),
        callbacks=[stop, best], epochs=5, verbose=0,
    )  # fmt: skip
    assert len(history) == 2 and history.stop_kind == "early_stopping"
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved and saved[0].startswith("best-1-")
    float64 = _model().double()
    ds.fit(float64, ["mse", "cross_entropy"], "sgd", (X, [YA, YB]), epochs=1, verbose=0)
    assert float64.a.weight.dtype == np.float64


# ---------------------------------------------------------------- mistakes, said with what was expected and given
def test_mismatches_say_what_was_expected_and_given():
    model = _model()
    with pytest.raises(
        ConfigError, match=r"loss is a list of 3, but the model has 2 outputs \['output_1', 'output_2'\]"
    ):
        ds.fit(model, ["mse", "mse", "mse"], "sgd", (X, [YA, YB]), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match=r"loss dict has key\(s\) \['price'\], which name no output; the outputs are"):
        ds.fit(model, {"price": "mse"}, "sgd", (X, [YA, YB]), epochs=1, verbose=0)
    with pytest.raises(
        ConfigError, match=r"returned 2 outputs \(shapes \[\(32, 1\), \(32, 3\)\]\), but 3 are expected"
    ):
        ds.fit(model, "mse", "sgd", (X, [YA, YB, YA]), epochs=1, verbose=0)
    with pytest.raises(
        ConfigError, match=r"returned one output of shape \(32, 1\), but 2 outputs \['output_1', 'output_2'\]"
    ):
        ds.fit(nn.Linear(3, 1), "mse", "sgd", (X, [YA, YA]), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match=r"metrics given as a list needs one entry per output .* has 1 entries"):
        ds.fit(model, "mse", "sgd", (X, [YA, YB]), metrics=["mae"], epochs=1, verbose=0)
    with pytest.raises(ConfigError, match=r"class_weight is only supported for models with a single output"):
        ds.fit(model, ["mse", "cross_entropy"], "sgd", (X, [YA, YB]), class_weight={0: 1.0}, epochs=1, verbose=0)
    with pytest.raises(ShapeError, match=r"the targets y\[1\] has 40"):
        ds.fit(model, ["mse", "cross_entropy"], "sgd", (X, [YA, YB[:40]]), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match=r"a tuple of 2 outputs, but the outputs are named \['a', 'b'\] by dicts"):
        ds.fit(model, "mse", "sgd", (X, {"a": YA, "b": YA}), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match=r"loss_weights weigh the losses of several outputs"):
        ds.fit(nn.Linear(3, 1), "mse", "sgd", (X, YA), loss_weights=0.5, epochs=1, verbose=0)

    def batches():
        while True:
            yield ds.tensor(X[:8]), (ds.tensor(YA[:8]), ds.tensor(YB[:8]))

    with pytest.raises(ConfigError, match=r"returned 2 outputs .* give the loss per output"):
        ds.fit(_model(), "mse", "sgd", batches(), steps_per_epoch=2, epochs=1, verbose=0)


def test_batch_logs_carry_each_outputs_loss_and_metric_so_far_and_a_run_resumes(tmp_path):
    seen = []

    class Reads(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append({k: float(logs[k]) for k in ("loss", "output_1_loss", "output_2_loss", "output_2_accuracy")})

    fit_args = dict(epochs=2, batch_size=16, seed=1, metrics=[None, ["accuracy", "f1"]], verbose=0)
    history = ds.fit(
        _model(),
        ["mse", "cross_entropy"],
        "adam",
        (X, [YA, YB]),
        checkpoint_dir=tmp_path,
        callbacks=[Reads()],
        **fit_args,
    )
    # Keras 3's batch logs: the epoch's numbers so far, the last batch's being the epoch's
    assert seen[-1] == pytest.approx({k: history[k][-1] for k in seen[-1]}, rel=1e-6)
    resumed = ds.fit(
        _model(), ["mse", "cross_entropy"], "adam", (X, [YA, YB]), resume_from=tmp_path, **{**fit_args, "epochs": 3}
    )
    whole = ds.fit(_model(), ["mse", "cross_entropy"], "adam", (X, [YA, YB]), **{**fit_args, "epochs": 3})
    for key in ("loss", "output_1_loss", "output_2_f1"):
        np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-6)
