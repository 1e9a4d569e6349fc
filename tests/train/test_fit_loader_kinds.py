"""fit on the loaders a PyTorch program brings: a stream without a length (an IterableDataset), dict batches,
and PyTorch's own DataLoader (refused by name). Weights checked against a hand-written torch SGD loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ConfigError

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((40, 4)).astype(np.float32)
Y = X.sum(1, keepdims=True).astype(np.float32)


def _torch_sgd(batches_per_epoch: list[list[slice]], lr: float = 0.05) -> np.ndarray:
    """A torch Linear(4, 1) from downslope's initial weights, trained by SGD on the given row slices."""
    ds.manual_seed(0)
    start = ds.nn.Linear(4, 1)
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(start.weight.detach().numpy().copy()))
        model.bias.copy_(torch.from_numpy(start.bias.detach().numpy().copy()))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in batches_per_epoch:
        for rows in epoch:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(torch.from_numpy(X[rows])), torch.from_numpy(Y[rows])).backward()
            opt.step()
    return model.weight.detach().numpy()


def _fit(loader, **options):
    ds.manual_seed(0)
    model = ds.nn.Linear(4, 1)
    history = ds.fit(model, ds.nn.MSELoss(), ds.optim.SGD(model.parameters(), lr=0.05), loader, verbose=0, **options)
    return model.weight.detach().numpy(), history


class _Stream(ds.utils.data.IterableDataset):
    def __init__(self, rows: int = 40) -> None:
        self.rows = rows

    def __iter__(self):
        for i in range(self.rows):
            yield X[i], Y[i]


def _slices(rows: int, bs: int = 8) -> list[slice]:
    return [slice(s, min(s + bs, rows)) for s in range(0, rows, bs)]


def test_fit_runs_a_stream_without_a_length_to_its_end_each_epoch():
    weights, history = _fit(ds.utils.data.DataLoader(_Stream(), batch_size=8), epochs=2)
    np.testing.assert_allclose(weights, _torch_sgd([_slices(40)] * 2), rtol=1e-5, atol=1e-6)
    assert len(history) == 2


def test_fit_reads_steps_per_epoch_batches_of_a_stream_without_a_length():
    loader = ds.utils.data.DataLoader(_Stream(), batch_size=8)
    weights, _ = _fit(loader, epochs=2, steps_per_epoch=5)
    np.testing.assert_allclose(weights, _torch_sgd([_slices(40)] * 2), rtol=1e-5, atol=1e-6)
    # fewer batches than steps_per_epoch: each epoch ends with the stream, with Keras' warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        weights, _ = _fit(ds.utils.data.DataLoader(_Stream(24), batch_size=8), epochs=2, steps_per_epoch=4)
    assert any("ran out" in str(w.message) for w in caught)
    np.testing.assert_allclose(weights, _torch_sgd([_slices(24)] * 2), rtol=1e-5, atol=1e-6)


class _DictSamples(ds.utils.data.Dataset):
    def __init__(self, keys=("x", "y")) -> None:
        self.keys = keys

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i):
        return dict(zip(self.keys, (X[i], Y[i])))


def test_fit_takes_dict_batches_with_x_and_y_keys():
    weights, _ = _fit(ds.utils.data.DataLoader(_DictSamples(), batch_size=8), epochs=2)
    np.testing.assert_allclose(weights, _torch_sgd([_slices(40)] * 2), rtol=1e-5, atol=1e-6)
    model = ds.nn.Linear(4, 1)
    predicted = ds.predict(model, ds.utils.data.DataLoader(_DictSamples(), batch_size=8))
    assert tuple(predicted.shape) == (40, 1)


def test_fit_names_the_keys_of_other_dict_batches():
    loader = ds.utils.data.DataLoader(_DictSamples(("image", "label")), batch_size=8)
    model = ds.nn.Linear(4, 1)
    with pytest.raises(ConfigError, match=r"dict with keys \['image', 'label'\]"):
        ds.fit(model, ds.nn.MSELoss(), ds.optim.SGD(model.parameters(), lr=0.1), loader, epochs=1, verbose=0)
    with pytest.raises(ConfigError, match=r"dict with keys \['image', 'label'\]"):
        ds.fit(
            model,
            ds.nn.MSELoss(),
            ds.optim.SGD(model.parameters(), lr=0.1),
            (X, Y),
            validation=loader,
            epochs=1,
            verbose=0,
        )


def test_fit_names_a_torch_dataloader_as_pytorchs():
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    model = ds.nn.Linear(4, 1)
    with pytest.raises(
        ConfigError, match=r"PyTorch's torch\.utils\.data\.dataloader\.DataLoader.*downslope\.utils\.data"
    ):
        ds.fit(
            model,
            ds.nn.MSELoss(),
            ds.optim.SGD(model.parameters(), lr=0.1),
            torch.utils.data.DataLoader(data),
            verbose=0,
        )


def test_fit_and_predict_with_batch_size_none_still_use_one_full_batch():
    ds.manual_seed(0)
    model = ds.nn.Linear(4, 1)
    history = ds.fit(
        model, ds.nn.MSELoss(), ds.optim.SGD(model.parameters(), lr=0.05), (X, Y), epochs=1, batch_size=None, verbose=0
    )
    assert history.params["steps"] == 1
    assert tuple(ds.predict(model, X, batch_size=None).shape) == (40, 1)
