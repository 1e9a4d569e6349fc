"""The data pipeline on device tensors (the strict stand-in for a GPU): what a GPU user writes,
``TensorDataset(X.cuda(), y.cuda())``, ``DataLoader(that, batch_size=64, shuffle=True)``, ``random_split``,
``train_test_split`` and ``default_collate`` of device samples. Data given on a device stays there, as in
torch (a batch of a TensorDataset of CUDA tensors is CUDA tensors), and its batches are the host data's
batches: the same values, dtypes and order under a seed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.data import (
    ArrayDataset,
    DataLoader,
    Dataset,
    TensorDataset,
    default_collate,
    random_split,
    train_test_split,
)
from downslope.devices import strict, to_host
from downslope.errors import ArgumentTypeError, DataError


def _arrays(n: int = 10, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, 3, n)


def _datasets(n: int = 10) -> tuple[TensorDataset, TensorDataset]:
    """The same samples as a TensorDataset of host tensors and one of device tensors."""
    x, y = _arrays(n)
    host = TensorDataset(ds.tensor(x, device="cpu"), ds.tensor(y, device="cpu"))
    device = TensorDataset(ds.tensor(x, device="strict"), ds.tensor(y, device="strict"))
    return host, device


def _host_batches(loader: DataLoader, device: str) -> list[tuple[np.ndarray, ...]]:
    """Each batch's fields as host arrays, after checking that every field is on ``device``."""
    out = []
    for batch in loader:
        assert all(str(t.device) == device for t in batch), [str(t.device) for t in batch]
        out.append(tuple(to_host(t.array) for t in batch))
    return out


def _assert_same_batches(got: list[tuple[np.ndarray, ...]], want: list[tuple[np.ndarray, ...]]) -> None:
    assert len(got) == len(want)
    for g_batch, w_batch in zip(got, want):
        for g, w in zip(g_batch, w_batch, strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


_CASES = [
    {"batch_size": 4},
    {"batch_size": 4, "shuffle": True, "seed": 3},
    {"batch_size": 4, "shuffle": True, "seed": 3, "drop_last": True},
    {"batch_size": None},
    {"batch_size": 3, "sampler": [9, 0, 4, 4, 7]},
    {"batch_sampler": [[1, 2], [7], [3, 3, 0]]},
    {"batch_size": 4, "shuffle": True, "seed": 3, "num_workers": 2},
]


@pytest.mark.parametrize("options", _CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_a_device_tensor_dataset_gives_the_host_batches_on_its_device(options):
    host, device = _datasets()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # num_workers > 0: read in this process
        reference, loader = DataLoader(host, **options), DataLoader(device, **options)
        want = [b for _ in range(2) for b in _host_batches(reference, "cpu")]  # two epochs: two orders
        got = [b for _ in range(2) for b in _host_batches(loader, "strict")]
    _assert_same_batches(got, want)


def test_the_library_seed_draws_the_same_orders_on_the_device_and_the_host():
    host, device = _datasets(12)
    orders = []
    for data, where in ((host, "cpu"), (device, "strict")):
        ds.manual_seed(7)
        loader = DataLoader(data, batch_size=5, shuffle=True)
        orders.append([b for _ in range(2) for b in _host_batches(loader, where)])
    _assert_same_batches(orders[1], orders[0])


def test_the_device_batches_follow_torchs_order():
    torch = pytest.importorskip("torch")
    x, y = _arrays(10)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    device = TensorDataset(ds.tensor(x, device="strict"), ds.tensor(y, device="strict"))
    for options in (
        {"batch_size": 4},
        {"batch_size": 4, "drop_last": True},
        {"batch_size": 3, "sampler": [9, 0, 4, 7]},
    ):
        want = [
            (a.numpy(), b.numpy())
            for a, b in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tx, ty), **options)
        ]
        _assert_same_batches(_host_batches(DataLoader(device, **options), "strict"), want)
    # shuffled: each epoch a permutation in torch's batch sizes, the same again under the same seed
    sizes = [
        len(b)
        for b, _ in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tx, ty), batch_size=4, shuffle=True)
    ]
    epochs = []
    for _ in range(2):
        ds.manual_seed(0)
        epochs.append(_host_batches(DataLoader(device, batch_size=4, shuffle=True), "strict"))
    assert [len(b) for b, _ in epochs[0]] == sizes
    assert sorted(np.concatenate([b for _, b in epochs[0]]).tolist()) == sorted(y.tolist())
    _assert_same_batches(epochs[1], epochs[0])


def test_an_epoch_on_the_device_never_waits_for_it_and_copies_each_batchs_indices_once():
    _, device = _datasets(12)
    loader = DataLoader(device, batch_size=5, shuffle=True, seed=0)
    copies = strict.copies_to_device()
    with strict.allow_synchronize(False):
        batches = list(loader)
    # x and y share one copy of the batch's indices (host indices into device arrays)
    assert strict.copies_to_device() - copies == len(batches) == 3
    assert all(str(t.device) == "strict" for b in batches for t in b)


def test_device_option_uses_data_already_on_that_device_as_it_is():
    _, device = _datasets()
    loader = DataLoader(device, batch_size=4, device="strict")
    placed = loader._device_arrays()
    assert placed is not None and all(p is a for p, a in zip(placed, device.arrays))
    assert all(str(t.device) == "strict" for b in loader for t in b)


def test_the_tuple_shorthand_takes_device_tensors_as_arrays():
    x, y = _arrays()
    loader = DataLoader((ds.tensor(x, device="strict"), ds.tensor(y, device="strict")), batch_size=4)
    assert len(loader) == 3  # 10 samples, not a dataset of the 2 tensors
    _assert_same_batches(_host_batches(loader, "strict"), _host_batches(DataLoader((x, y), batch_size=4), "cpu"))


def test_random_split_of_a_device_dataset_splits_as_the_host_one():
    host, device = _datasets(12)
    host_parts = random_split(host, [0.75, 0.25], seed=0)
    device_parts = random_split(device, [0.75, 0.25], seed=0)
    for h, d in zip(host_parts, device_parts, strict=True):
        assert h.indices == d.indices
        assert all(str(t.device) == "strict" for t in d[0])
        options = {"batch_size": 4, "shuffle": True, "seed": 1}
        _assert_same_batches(
            _host_batches(DataLoader(d, **options), "strict"), _host_batches(DataLoader(h, **options), "cpu")
        )


@pytest.mark.parametrize("stratify", [False, True])
def test_train_test_split_keeps_device_tensors_on_their_device(stratify):
    x, y = _arrays(20)
    host = train_test_split(x, y, test_size=0.25, seed=0, stratify=y if stratify else None)
    dx, dy = ds.tensor(x, device="strict"), ds.tensor(y, device="strict")
    got = train_test_split(dx, dy, test_size=0.25, seed=0, stratify=dy if stratify else None)
    for g, h in zip(got, host, strict=True):
        assert str(g.device) == "strict"
        np.testing.assert_array_equal(to_host(g.array), h)
    # a device array (CuPy's) given as it is comes back as a device array
    raw = train_test_split(strict.asarray(x), test_size=0.25, seed=0)
    assert all(isinstance(part, strict.StrictArray) for part in raw)
    for g, h in zip(raw, train_test_split(x, test_size=0.25, seed=0), strict=True):
        np.testing.assert_array_equal(g.get(), h)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "uint8", "int32", "bool", "complex128"])
def test_default_collate_of_device_samples_batches_as_the_host_samples(dtype):
    values = np.arange(6).reshape(3, 2).astype(dtype)
    samples = {where: [ds.tensor(v, dtype=v.dtype, device=where) for v in values] for where in ("cpu", "strict")}
    assert samples["strict"][0].dtype == values.dtype  # a float64 sample stays float64 until it is batched
    want, got = default_collate(samples["cpu"]), default_collate(samples["strict"])
    assert str(got.device) == "strict" and got.dtype == want.dtype
    np.testing.assert_array_equal(to_host(got.array), to_host(want.array))


def test_a_map_style_dataset_of_device_samples_batches_on_the_device():
    class Pairs(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            x = ds.tensor([float(i), 2.0 * i], dtype=ds.float64, device=self.device)
            return x, ds.tensor(i % 2, device=self.device)

    batches = []
    for where in ("cpu", "strict"):
        data = Pairs()
        data.device = where
        batches.append(_host_batches(DataLoader(data, batch_size=2, shuffle=True, seed=0), where))
    _assert_same_batches(batches[1], batches[0])


@pytest.mark.parametrize("device_first", [True, False])
def test_samples_on_two_devices_are_refused_by_name(device_first):
    pair = [ds.tensor([1.0, 2.0], device="strict"), ds.tensor([3.0, 4.0], device="cpu")]
    with pytest.raises(ArgumentTypeError, match=r"must all be on one device.*strict.*cpu|cpu.*strict"):
        default_collate(pair if device_first else pair[::-1])


def test_non_finite_device_data_is_reported_as_on_the_host():
    x = np.ones((4, 3), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(DataError) as host_error:
        ArrayDataset(x)
    with pytest.raises(DataError) as device_error:
        TensorDataset(ds.tensor(x, device="strict"))
    assert str(device_error.value) == str(host_error.value).replace("ArrayDataset", "TensorDataset")
    assert "row 2, column 1" in str(device_error.value)
    TensorDataset(ds.tensor(x, device="strict"), check_finite=False)  # accepted when asked


def test_a_device_dataset_indexes_by_position_slice_and_device_indices():
    host, device = _datasets()
    for index in (3, -1, slice(2, 5), [4, 0, 4]):
        for g, h in zip(device[index], host[index], strict=True):
            assert str(g.device) == "strict"
            np.testing.assert_array_equal(to_host(g.array), to_host(h.array))
    rows = device[ds.tensor([4, 0], device="strict")]
    np.testing.assert_array_equal(to_host(rows[0].array), to_host(host[[4, 0]][0].array))
    # torch refuses CUDA indices into a CPU tensor: nothing is copied back to the host behind the user's back
    with pytest.raises(ArgumentTypeError, match="indices on strict cannot index data on cpu"):
        host[ds.tensor([4, 0], device="strict")]
