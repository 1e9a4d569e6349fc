"""fit, evaluate and predict with several inputs (``train/inputs.py``): Keras' multi-input form
(``x`` as a list, a tuple or a dict of arrays) and a Dataset of ``(x1, ..., xk, y)`` batches, checked
against a hand-written loop over the same batches and against PyTorch."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import ShapeError
from downslope.train import callbacks as cb

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
N = 40
XC = RNG.integers(0, 10, (N, 2))  # category ids, for an Embedding
XN = RNG.standard_normal((N, 3)).astype(np.float32)
Y = RNG.integers(0, 2, N)


class Net(nn.Module):
    """Category ids and numbers: an Embedding of the ids beside the numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.e = nn.Embedding(10, 4)
        self.f = nn.Linear(11, 2)
        self.seen: list[tuple[str, str]] = []

    def forward(self, xc, xn):
        self.seen.append((xc.dtype.name, xn.dtype.name))
        return self.f(ds.cat([self.e(xc).flatten(1), xn], 1))


class TorchNet(torch.nn.Module):
    def __init__(self, ours: Net) -> None:
        super().__init__()
        self.e = torch.nn.Embedding(10, 4)
        self.f = torch.nn.Linear(11, 2)
        self.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})

    def forward(self, xc, xn):
        return self.f(torch.cat([self.e(xc).flatten(1), xn], 1))


def _net() -> Net:
    ds.manual_seed(0)
    return Net()


def _params(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _hand_loop(model, batches, lr=0.1):
    """What fit should do: SGD over the given (xc, xn, y) batches, by hand."""
    opt = optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for xc, xn, y in batches:
        opt.zero_grad()
        loss_fn(model(xc, xn), y).backward()
        opt.step()
    return _params(model)


def _in_order(epochs=2, batch_size=16):
    for _ in range(epochs):
        for start in range(0, N, batch_size):
            s = slice(start, start + batch_size)
            yield ds.tensor(XC[s]), ds.tensor(XN[s]), ds.tensor(Y[s])


@pytest.mark.parametrize("form", ["list", "tuple", "dict"])
def test_fit_with_several_inputs_matches_a_hand_written_loop(form):
    x = {"list": [XC, XN], "tuple": (XC, XN), "dict": {"xn": XN, "xc": XC}}[form]  # (a dict: by name)
    model = _net()
    reference = _hand_loop(copy.deepcopy(model), _in_order())
    ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), (x, Y), epochs=2, batch_size=16,
           shuffle=False, verbose=0)  # fmt: skip
    for name, value in _params(model).items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
    # ids stay integers for the Embedding, the numbers follow the float policy
    assert set(model.seen) == {("int64", "float32")}


def test_fit_with_several_inputs_matches_torch():
    model = _net()
    theirs = TorchNet(model)
    ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ([XC, XN], Y), epochs=2,
           batch_size=16, shuffle=False, verbose=0)  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(2):
        for start in range(0, N, 16):
            s = slice(start, start + 16)
            opt.zero_grad()
            out = theirs(torch.tensor(XC[s]), torch.tensor(XN[s]))
            torch.nn.functional.cross_entropy(out, torch.tensor(Y[s])).backward()
            opt.step()
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(_params(model)[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


class RowsAgree(nn.Module):
    """Its two inputs carry the row index: a shuffle that moved them apart shows here."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Linear(2, 1)
        self.rows: list[np.ndarray] = []

    def forward(self, a, b):
        assert np.array_equal(a.numpy()[:, 0], b.numpy()[:, 0].astype(a.numpy().dtype))
        self.rows.append(b.numpy()[:, 0].astype(np.int64))
        return self.f(ds.cat([a, b], 1))


def test_shuffling_moves_every_input_with_the_same_permutation_as_a_loader_of_the_arrays():
    rows = np.arange(N)
    a = rows.reshape(-1, 1).astype(np.float32)
    b = rows.reshape(-1, 1).astype(np.float64)
    y = RNG.standard_normal((N, 1)).astype(np.float32)
    model = RowsAgree()
    ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.0), ([a, b], y), epochs=2, batch_size=8, seed=3,
           verbose=0)  # fmt: skip
    # the order fit's loader draws, from the same seed, over the same arrays in one dataset
    loader = ds.data.DataLoader(ds.data.ArrayDataset(a, b, y), batch_size=8, shuffle=True, seed=3)
    expected = [bb.numpy()[:, 0].astype(np.int64) for _ in range(2) for _aa, bb, _yy in loader]
    assert len(model.rows) == len(expected) == 10
    for got, want in zip(model.rows, expected):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(np.concatenate(model.rows[:5]), rows)  # (shuffled)


def test_integer_inputs_of_a_model_without_an_embedding_follow_the_float_policy():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Linear(5, 1)
            self.seen: list[tuple[str, str]] = []

        def forward(self, a, b):
            self.seen.append((a.dtype.name, b.dtype.name))
            return self.f(ds.cat([a, b], 1))

    model = Two()
    ds.fit(model, "mse", "sgd", ([XC, XN.astype(np.float64)], Y.reshape(-1, 1).astype(np.float32)), epochs=1,
           verbose=0)  # fmt: skip
    assert set(model.seen) == {("float32", "float32")}


def test_rows_that_differ_between_inputs_are_refused_naming_the_input():
    model = _net()
    with pytest.raises(ShapeError, match=r"input 1 has 39 rows") as info:
        ds.fit(model, "cross_entropy", "sgd", ([XC, XN[:-1]], Y), verbose=0)
    assert "as input 0 has (40 rows)" in str(info.value)
    with pytest.raises(ShapeError, match=r"input 'xn' has 39 rows"):
        ds.predict(model, {"xc": XC, "xn": XN[:-1]})
    with pytest.raises(ShapeError, match=r"the targets y has 39"):
        ds.fit(model, "cross_entropy", "sgd", ((XC, XN), Y[:-1]), verbose=0)


def test_evaluate_and_predict_take_the_same_forms():
    model = _net()
    with ds.no_grad():
        direct = model(ds.tensor(XC), ds.tensor(XN)).numpy()
        expected_loss = float(nn.CrossEntropyLoss()(ds.tensor(direct), ds.tensor(Y)).item())
    for x in ([XC, XN], (XC, XN), {"xc": XC, "xn": XN}):
        np.testing.assert_allclose(ds.predict(model, x, batch_size=16).numpy(), direct, rtol=1e-6, atol=1e-6)
        logs = ds.evaluate(model, nn.CrossEntropyLoss(), (x, Y), batch_size=16)
        assert logs["loss"] == pytest.approx(expected_loss, rel=1e-6)
    tensors = ds.data.TensorDataset(XC, XN)
    np.testing.assert_allclose(ds.predict(model, tensors, batch_size=16).numpy(), direct, rtol=1e-6, atol=1e-6)


def test_validation_split_and_validation_data_with_several_inputs():
    model = _net()
    cut = int(np.floor(N * 0.75))
    history = ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0), ([XC, XN], Y),
                     validation_split=0.25, epochs=1, verbose=0, shuffle=False)  # fmt: skip
    held = ds.evaluate(model, nn.CrossEntropyLoss(), ([XC[cut:], XN[cut:]], Y[cut:]))
    trained = ds.evaluate(model, nn.CrossEntropyLoss(), ([XC[:cut], XN[:cut]], Y[:cut]))
    assert history["val_loss"][-1] == pytest.approx(held["loss"], rel=1e-6)
    assert history["loss"][-1] == pytest.approx(trained["loss"], rel=1e-6)
    history = ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0), ([XC, XN], Y),
                     validation_data=({"xn": XN[cut:], "xc": XC[cut:]}, Y[cut:]), epochs=1, verbose=0)  # fmt: skip
    assert history["val_loss"][-1] == pytest.approx(held["loss"], rel=1e-6)


def test_sample_weight_and_callbacks_see_every_batch_of_several_inputs():
    weights = RNG.uniform(0.5, 2.0, N).astype(np.float32)
    model = _net()
    reference = copy.deepcopy(model)

    class Sizes(cb.Callback):
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def on_train_batch_end(self, batch, logs=None):
            self.sizes.append(logs.size)  # (an attribute: Keras 3's batch logs have no "size")

    sizes = Sizes()
    ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ([XC, XN], Y), sample_weight=weights,
           epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[sizes])  # fmt: skip
    assert sizes.sizes == [16, 16, 8]
    opt = optim.SGD(reference.parameters(), lr=0.1)
    per_sample = nn.CrossEntropyLoss(reduction="none")
    for start in range(0, N, 16):
        s = slice(start, start + 16)
        opt.zero_grad()
        losses = per_sample(reference(ds.tensor(XC[s]), ds.tensor(XN[s])), ds.tensor(Y[s]))
        (losses * ds.tensor(weights[s])).sum().div(len(Y[s])).backward()  # Keras' sum(w * loss) / batch size
        opt.step()
    for name, value in _params(reference).items():
        np.testing.assert_allclose(_params(model)[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_fit_on_a_device_with_several_inputs_matches_the_host():
    host, placed = _net(), _net()
    for model, device in ((host, None), (placed, "strict")):
        ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ({"xc": XC, "xn": XN}, Y),
               epochs=2, batch_size=16, seed=1, verbose=0, device=device, validation_split=0.25)  # fmt: skip
    placed.to("cpu")
    for name, value in _params(host).items():
        np.testing.assert_allclose(_params(placed)[name], value, rtol=1e-6, atol=1e-6, err_msg=name)


def test_a_dataset_of_several_inputs_and_the_target_is_passed_as_model_star_inputs():
    model = _net()
    reference = _hand_loop(copy.deepcopy(model), _in_order())
    data = ds.data.TensorDataset(XC, XN, Y)
    ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), data, epochs=2, batch_size=16,
           shuffle=False, verbose=0)  # fmt: skip
    for name, value in _params(model).items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
    logs = ds.evaluate(model, nn.CrossEntropyLoss(), data)
    assert logs["loss"] == pytest.approx(ds.evaluate(model, nn.CrossEntropyLoss(), ([XC, XN], Y))["loss"], rel=1e-6)
    # predict over the labelled dataset reads the model's two inputs and leaves the target out
    np.testing.assert_array_equal(ds.predict(model, data).numpy(), ds.predict(model, [XC, XN]).numpy())


def test_a_three_field_dataset_still_carries_sample_weights_for_a_model_of_one_input():
    x = RNG.standard_normal((N, 3)).astype(np.float32)
    weights = RNG.uniform(0.5, 2.0, N).astype(np.float32)
    ds.manual_seed(0)
    weighted, plain = nn.Linear(3, 2), nn.Linear(3, 2)
    plain.load_state_dict(weighted.state_dict())
    data = ds.data.TensorDataset(x, Y, weights)
    ds.fit(weighted, nn.CrossEntropyLoss(), optim.SGD(weighted.parameters(), lr=0.1), data, epochs=1,
           batch_size=16, shuffle=False, verbose=0)  # fmt: skip
    ds.fit(plain, nn.CrossEntropyLoss(), optim.SGD(plain.parameters(), lr=0.1), (x, Y), sample_weight=weights,
           epochs=1, batch_size=16, shuffle=False, verbose=0)  # fmt: skip
    for name, value in _params(plain).items():
        np.testing.assert_allclose(_params(weighted)[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_a_dataset_of_nested_samples_passes_its_inputs_tuple_as_model_star_inputs():
    class Pairs(ds.data.Dataset):
        def __len__(self):
            return N

        def __getitem__(self, i):
            return (XC[i], XN[i]), Y[i]

    model = _net()
    reference = _hand_loop(copy.deepcopy(model), _in_order(epochs=1))
    ds.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), Pairs(), epochs=1, batch_size=16,
           shuffle=False, verbose=0)  # fmt: skip
    for name, value in _params(model).items():
        np.testing.assert_allclose(value, reference[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_lr_find_takes_a_dataset_of_several_inputs_and_the_target():
    class TwoInputs(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = ds.nn.Embedding(5, 3)
            self.out = ds.nn.Linear(5, 1)

        def forward(self, codes, numbers):
            return self.out(ds.cat([self.embed(codes).mean(1), numbers], 1))

    rng = np.random.default_rng(0)
    data = ds.utils.data.TensorDataset(
        ds.tensor(rng.integers(0, 5, (64, 2))),
        ds.tensor(rng.normal(size=(64, 2)).astype(np.float32)),
        ds.tensor(rng.normal(size=(64, 1)).astype(np.float32)),
    )
    model = TwoInputs()
    result = ds.train.lr_find(model, ds.nn.MSELoss(), ds.optim.SGD(model.parameters(), lr=0.01), data, num_iter=20)
    assert len(result.lrs) >= 2 and all(np.isfinite(result.losses[:2]))
