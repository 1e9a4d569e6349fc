import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope.data import ArrayDataset, DataLoader, Dataset
from downslope.errors import CheckpointError, ConfigError


def _xy(n=10, d=3):
    return np.arange(n * d, dtype=np.float64).reshape(n, d), np.arange(n)


@pytest.mark.parametrize(
    "batch_size, drop_last, updates, method",
    [
        ("full", False, 1, "full-batch gradient descent"),
        (50, False, 1, "full-batch gradient descent"),
        (1, False, 10, "stochastic gradient descent"),
        (4, False, 3, "mini-batch gradient descent"),
        (4, True, 2, "mini-batch gradient descent"),
    ],
)
def test_batch_modes_and_updates_per_epoch(batch_size, drop_last, updates, method):
    loader = DataLoader(_xy(), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == updates
    assert loader.method == method
    batches = list(loader)
    assert len(batches) == updates


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), bs=st.integers(1, 45), drop_last=st.booleans(), shuffle=st.booleans())
def test_every_sample_once_per_epoch(n, bs, drop_last, shuffle):
    if drop_last and bs > n:  # as torch: no batches (ds.fit refuses such a loader itself)
        loader = DataLoader(_xy(n), batch_size=bs, drop_last=drop_last)
        assert len(loader) == 0 and list(loader) == []
        return
    loader = DataLoader(_xy(n), batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=1)
    seen = np.concatenate([y.numpy() for _, y in loader])
    expected = (n // min(bs, n)) * min(bs, n) if drop_last else n
    assert len(seen) == expected == (len(loader) * min(bs, n) if drop_last else n)
    assert len(np.unique(seen)) == len(seen)
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))
    assert len(loader) == (n // min(bs, n) if drop_last else math.ceil(n / min(bs, n)))


def test_batches_are_contiguous_float32_int64_tensors_matching_rows():
    x, y = _xy(12)
    for xb, yb in DataLoader((x, y), batch_size=5, shuffle=True, seed=3):
        assert isinstance(xb, ds.Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
        assert xb.numpy().flags.c_contiguous
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()].astype(np.float32))


def test_a_full_batch_without_shuffle_is_a_new_array_as_torch_stacks_one():
    data = ArrayDataset(*_xy())
    ((xb, _yb),) = list(DataLoader(data, batch_size="full", shuffle=False))
    assert not np.shares_memory(xb.numpy(), data.arrays[0])


def test_shuffle_changes_between_epochs_and_seed_repeats():
    a = DataLoader(_xy(30), batch_size=30 - 1, shuffle=True, seed=7)
    b = DataLoader(_xy(30), batch_size=30 - 1, shuffle=True, seed=7)
    ea1, ea2 = [np.concatenate([y.numpy() for _, y in a]) for _ in range(2)]
    eb1 = np.concatenate([y.numpy() for _, y in b])
    assert not np.array_equal(ea1, ea2)
    np.testing.assert_array_equal(ea1, eb1)


def test_without_seed_the_library_seed_fixes_the_order():
    ds.manual_seed(5)
    first = [y.numpy().copy() for _, y in DataLoader(_xy(20), batch_size=3, shuffle=True)]
    ds.manual_seed(5)
    second = [y.numpy().copy() for _, y in DataLoader(_xy(20), batch_size=3, shuffle=True)]
    ds.manual_seed(6)
    third = [y.numpy().copy() for _, y in DataLoader(_xy(20), batch_size=3, shuffle=True)]
    assert all(np.array_equal(p, q) for p, q in zip(first, second))
    assert not all(np.array_equal(p, q) for p, q in zip(first, third))


def test_state_dict_resumes_the_exact_order():
    a = DataLoader(_xy(20), batch_size=4, shuffle=True, seed=11)
    list(a)
    state = a.state_dict()
    expected = [y.numpy().copy() for _, y in a]
    b = DataLoader(_xy(20), batch_size=4, shuffle=True, seed=999)
    b.load_state_dict(state)
    got = [y.numpy().copy() for _, y in b]
    assert all(np.array_equal(p, q) for p, q in zip(expected, got))
    import json

    json.dumps(state)  # checkpoints hold it as JSON


class _ListDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_generic_dataset_batches_equal_the_fast_path():
    x, y = _xy(11)
    fast = DataLoader((x, y), batch_size=4, shuffle=True, seed=2)
    slow = DataLoader(_ListDataset(x, y), batch_size=4, shuffle=True, seed=2)
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert xs.dtype == np.float32 and ys.dtype == np.int64


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "half"])
def test_bad_batch_size_is_explained(bad):
    with pytest.raises((ConfigError, TypeError), match="batch_size"):
        DataLoader(_xy(), batch_size=bad)


def test_bad_dataset_and_seed_are_explained():
    with pytest.raises(TypeError, match="expected a Dataset"):
        DataLoader(42)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(_xy(), shuffle=True, seed=-3)
    with pytest.raises(CheckpointError, match="does not shuffle"):
        DataLoader(_xy()).load_state_dict(DataLoader(_xy(), shuffle=True, seed=0).state_dict())


def test_a_list_of_samples_is_a_dataset_as_in_torch():
    torch = pytest.importorskip("torch")
    samples = [(i % 3, f"text {i}", np.full(2, float(i), np.float32)) for i in range(7)]
    ours = list(DataLoader(samples, batch_size=3))
    theirs = list(torch.utils.data.DataLoader(samples, batch_size=3))
    assert len(ours) == len(theirs) == 3
    for (labels, texts, xs), (tl, tt, tx) in zip(ours, theirs):
        assert labels.tolist() == tl.tolist() and list(texts) == list(tt)
        np.testing.assert_array_equal(xs.numpy(), tx.numpy())
    pairs = DataLoader([(np.zeros(2), 1), (np.ones(2), 0)], batch_size=2, collate_fn=lambda b: [y for _, y in b])
    assert list(pairs) == [[1, 0]]
    # a tuple of equally long arrays stays downslope's (x, y) shorthand
    x, y = next(iter(DataLoader((np.zeros((4, 2)), np.arange(4)), batch_size=4)))
    assert x.shape == (4, 2) and y.tolist() == [0, 1, 2, 3]


def test_a_tuple_of_lists_is_still_the_x_y_shorthand():
    x, y = next(iter(DataLoader(([[0.0, 1.0], [2.0, 3.0]], [0, 1]), batch_size=2)))
    assert x.shape == (2, 2) and y.tolist() == [0, 1]
    pairs = next(iter(DataLoader(((0, "a"), (1, "b")), batch_size=2)))  # a tuple of samples, as in torch
    assert pairs[0].tolist() == [0, 1] and list(pairs[1]) == ["a", "b"]


# ---------------------------------------------------------------------- batches on a device
_DEVICE_CASES = [
    {"batch_size": 4},
    {"batch_size": 4, "shuffle": True, "seed": 3},
    {"batch_size": 4, "shuffle": True, "seed": 3, "drop_last": True},
    {"batch_size": "full"},
    {"batch_size": 1, "sampler": [9, 0, 4]},
    {"batch_sampler": [[1, 2], [7], [3, 3, 0]]},
]


def _device_batches(loader_options, monkeypatch=None, budget=None):
    from downslope.devices import to_host

    if budget is not None:
        monkeypatch.setattr("downslope.data.loader.device_budget", lambda target: budget)
    placed = DataLoader(_xy(), device="strict", **loader_options)
    device = []
    for _ in range(2):  # two epochs: the shuffled order is drawn per epoch, on the host, as without a device
        for batch in placed:
            assert all(str(t.device) == "strict" for t in batch)
            device.append(tuple(to_host(t.array) for t in batch))
    return device, placed


@pytest.mark.parametrize("options", _DEVICE_CASES)
def test_batches_on_a_device_are_the_host_batches(options):
    first = [tuple(t.numpy() for t in b) for b in DataLoader(_xy(), **options)]
    reference = DataLoader(_xy(), **options)
    expected = [tuple(t.numpy() for t in b) for _ in range(2) for b in reference]
    device, placed = _device_batches(options)
    assert placed._device_arrays() is not None  # small in-memory arrays: placed whole on the device
    assert len(device) == len(expected) and len(first) == len(expected) // 2
    for got, want in zip(device, expected):
        for g, w in zip(got, want):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("options", _DEVICE_CASES[:3])
def test_a_dataset_too_large_for_the_device_is_moved_batch_by_batch(options, monkeypatch):
    reference = DataLoader(_xy(), **options)
    expected = [tuple(t.numpy() for t in b) for _ in range(2) for b in reference]
    device, placed = _device_batches(options, monkeypatch, budget=0)
    assert placed._device_arrays() is None
    for got, want in zip(device, expected, strict=True):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_the_whole_dataset_is_copied_to_the_device_once(monkeypatch):
    import downslope.devices as devices

    copies = []
    to_device = devices.to_device

    def counting(array, target):
        copies.append(array.shape)
        return to_device(array, target)

    monkeypatch.setattr(devices, "to_device", counting)
    loader = DataLoader(_xy(), batch_size=2, shuffle=True, seed=0, device="strict")
    for _ in range(3):
        assert len(list(loader)) == 5
    # the two arrays once, then the epoch's shuffled order once per epoch (not one copy per batch)
    assert copies == [(10, 3), (10,), (10,), (10,), (10,)]


def test_device_option_cpu_or_none_keeps_host_batches_and_cuda_without_a_gpu_is_refused():
    for device in (None, "cpu", ds.device("cpu")):
        loader = DataLoader(_xy(), batch_size=4, device=device)
        assert loader.device is None and all(type(x.array) is np.ndarray for x, _ in loader)
    if not ds.cuda.is_available():
        with pytest.raises(ds.errors.StateError, match=r"DataLoader\(device=...\).*downslope\[cuda\]"):
            DataLoader(_xy(), device="cuda")


def test_batch_to_moves_nested_batches_and_keeps_what_is_there():
    from downslope.data.loader import batch_to

    x = ds.zeros(2, 3)
    moved = batch_to({"x": x, "pair": [x, "label"]}, "strict")
    assert str(moved["x"].device) == "strict" and str(moved["pair"][0].device) == "strict"
    assert moved["pair"][1] == "label"
    assert batch_to(moved["x"], "strict") is moved["x"]


# ---------------------------------------------------------------- reproducibility: when the order is drawn
def _epoch(loader):
    return [int(v) for (x,) in loader for v in x.numpy().ravel()]


def test_shuffle_order_is_drawn_when_iteration_starts_as_in_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        lib.manual_seed(123)  # whatever the state when the loader is built...
        loader = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(lib.arange(12)), batch_size=4, shuffle=True)
        lib.manual_seed(0)
        first = _epoch(loader)
        lib.manual_seed(999)
        other = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(lib.arange(12)), batch_size=4, shuffle=True)
        sweep = []
        for s in (1, 2, 1):  # ...the seed set before the loop fixes the order: a seed sweep repeats
            lib.manual_seed(s)
            sweep.append(_epoch(loader))
        lib.manual_seed(0)
        assert _epoch(other) == first, lib.__name__
        assert sweep[0] == sweep[2] != sweep[1], lib.__name__
        assert sorted(first) == list(range(12))


def _draw_timing(lib, shuffle, batch_size=4, **options):
    """When a loader draws from the library generator, as facts comparable between libraries."""
    U = lib.utils.data

    def loader():
        return U.DataLoader(U.TensorDataset(lib.arange(12)), batch_size=batch_size, shuffle=shuffle, **options)

    def order(it):
        return [int(v) for (x,) in it for v in x.numpy().ravel()]

    facts = {}
    lib.manual_seed(0)
    it = iter(loader())
    lib.manual_seed(3)  # between iter() and the first batch
    a = order(it)
    lib.manual_seed(5)
    it = iter(loader())
    lib.manual_seed(3)
    facts["a seed set after iter() decides the order"] = a == order(it)
    lib.manual_seed(0)
    it = iter(loader())
    after_iter = lib.rand(1)
    lib.manual_seed(0)
    facts["iter() draws"] = not lib.equal(after_iter, lib.rand(1))
    lib.manual_seed(0)
    it = iter(loader())
    next(it)
    after_first = lib.rand(1)
    lib.manual_seed(0)
    it = iter(loader())
    facts["the first batch draws"] = not lib.equal(after_first, lib.rand(1))
    lib.manual_seed(0)
    order(loader())
    after_epoch = lib.rand(1)
    lib.manual_seed(0)
    it = iter(loader())
    next(it)
    facts["the rest of the epoch draws nothing"] = bool(lib.equal(after_epoch, lib.rand(1)))
    return facts


@pytest.mark.parametrize("shuffle, batch_size", [(True, 4), (False, 4), (True, None), (False, 12)])
def test_the_loader_draws_when_torchs_does(shuffle, batch_size):
    """PyTorch's iter(loader) draws the iterator's base seed (shuffling or not) and its RandomSampler the
    epoch's seed at the first batch: a seed set between the two decides the order (lazy2.py's case)."""
    torch = pytest.importorskip("torch")
    if batch_size is None:  # PyTorch's batch_size=None turns batching off; a full batch is its 12
        expected = _draw_timing(torch, shuffle, 12)
    else:
        expected = _draw_timing(torch, shuffle, batch_size)
    assert _draw_timing(ds, shuffle, batch_size) == expected
    assert expected["iter() draws"] and expected["the first batch draws"] == shuffle


def test_workers_are_seeded_from_the_base_seed_drawn_in_iter():
    """WorkerInfo.seed is the iteration's base seed (+ the worker id, 0): as PyTorch's, it follows the seed
    set before iter(), and num_workers does not change the run's numbers."""
    import warnings

    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "reads the data in this process, as one worker"
        loader = DataLoader(_xy(12), batch_size=4, shuffle=True, num_workers=1,
                            worker_init_fn=lambda i: seen.append(ds.utils.data.get_worker_info().seed))  # fmt: skip
    plain = DataLoader(_xy(12), batch_size=4, shuffle=True)
    ds.manual_seed(7)
    first = _epoch_y(loader)
    ds.manual_seed(7)
    _epoch_y(loader)
    assert seen[0] == seen[1]
    ds.manual_seed(7)
    assert _epoch_y(plain) == first


def _epoch_y(loader):
    return [int(v) for _, y in loader for v in y.numpy()]


def test_get_rng_state_in_a_checkpoint_resumes_the_same_shuffles(tmp_path):
    def loader():
        return DataLoader(ArrayDataset(np.arange(20.0)), batch_size=3, shuffle=True)

    ds.manual_seed(0)
    whole = loader()
    uninterrupted = [_epoch(whole) for _ in range(4)]
    ds.manual_seed(0)
    first = loader()
    done = [_epoch(first) for _ in range(2)]
    ds.save({"rng": ds.get_rng_state(), "loader": first.state_dict()}, tmp_path / "ck.pt")
    ds.manual_seed(77)  # a new process: another state, a loader built anew
    resumed = loader()
    ck = ds.load(tmp_path / "ck.pt")
    ds.set_rng_state(ck["rng"])
    resumed.load_state_dict(ck["loader"])
    assert done + [_epoch(resumed) for _ in range(2)] == uninterrupted


def test_loader_state_of_an_older_version_keeps_its_own_shuffling_stream():
    seeded = DataLoader(_xy(12), batch_size=4, shuffle=True, seed=5)  # what every shuffling loader had
    _epoch_y = [int(v) for _, y in seeded for v in y.numpy()]
    state = seeded.state_dict()
    expected = [int(v) for _, y in seeded for v in y.numpy()]
    lazy = DataLoader(_xy(12), batch_size=4, shuffle=True)
    assert "generator" not in lazy.state_dict()
    lazy.load_state_dict(state)
    assert [int(v) for _, y in lazy for v in y.numpy()] == expected and _epoch_y != expected
    with pytest.raises(CheckpointError, match="does not shuffle"):
        DataLoader(_xy(12), batch_size=4).load_state_dict(state)


def test_seeded_loader_keeps_its_own_stream_whatever_the_library_seed():
    a = DataLoader(_xy(12), batch_size=4, shuffle=True, seed=3)
    b = DataLoader(_xy(12), batch_size=4, shuffle=True, seed=3)
    ds.manual_seed(1)
    first = [y.tolist() for _, y in a]
    ds.manual_seed(2)
    assert [y.tolist() for _, y in b] == first


# ---------------------------------------------------------------- num_workers: one worker, in this process
class _Sharded(ds.utils.data.IterableDataset):
    """Shards by worker as PyTorch's documentation shows."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = ds.utils.data.get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


def test_worker_init_fn_runs_in_each_worker_each_epoch_and_sharding_reads_each_sample_once():
    calls = []

    def init(worker_id):
        info = ds.utils.data.get_worker_info()
        calls.append((worker_id, info.id, info.num_workers, info.dataset is data))

    data = _Sharded(10)
    loader = DataLoader(data, batch_size=4, num_workers=2, worker_init_fn=init)
    for _ in range(2):
        # worker 0 reads 0, 2, 4, 6, 8 and worker 1 the odd ones; their batches alternate, as PyTorch's
        assert [b.tolist() for b in loader] == [[0, 2, 4, 6], [1, 3, 5, 7], [8], [9]]
        assert ds.utils.data.get_worker_info() is None  # only while the dataset is read
    assert calls == [(0, 0, 2, True), (1, 1, 2, True)] * 2
    plain = DataLoader(_Sharded(5), batch_size=2, worker_init_fn=init)  # num_workers=0: no worker, as PyTorch
    assert sorted(int(v) for b in plain for v in b.numpy()) == list(range(5)) and len(calls) == 4


def test_num_workers_does_not_change_the_numbers_and_is_checked():
    orders = []
    for workers in (0, 3):
        ds.manual_seed(0)
        orders.append([y.tolist() for _, y in DataLoader(_xy(12), batch_size=5, shuffle=True, num_workers=workers)])
        orders.append(ds.rand(2).tolist())
    assert orders[:2] == orders[2:]
    with pytest.raises(ConfigError, match="non-negative"):
        DataLoader(_xy(), num_workers=-1)


def test_a_shuffled_full_batch_comes_in_a_random_order_as_in_torch():
    """next(iter(DataLoader(d, batch_size=len(d), shuffle=True)))[:k] is taken as a random sample."""
    x = ds.arange(64.0)
    for batch_size in (64, 100, "full"):
        ds.manual_seed(3)
        (batch,) = next(iter(DataLoader(ds.utils.data.TensorDataset(x), batch_size=batch_size, shuffle=True)))
        assert sorted(batch.tolist()) == list(range(64)) and batch.tolist() != list(range(64)), batch_size


def _stream_of_tuples(lib):
    class Stream(lib.utils.data.IterableDataset):
        def __iter__(self):
            for i in range(3):
                yield np.full((2, 3), i, dtype=np.float32), np.int64(i), np.float64(i / 2), i, "s", {"k": np.arange(2)}

    return Stream()


def _plain(value):
    """A yielded value in comparable form: tensors as (type tag, dtype name, array)."""
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "detach"):
        return "tensor", str(value.dtype).replace("torch.", ""), value.detach().numpy().tolist()
    if isinstance(value, ds.Tensor):
        return "tensor", str(value.dtype).replace("downslope.", ""), value.numpy().tolist()
    return type(value).__name__, value


def test_batch_size_none_over_a_stream_yields_items_unbatched_as_in_torch():
    torch = pytest.importorskip("torch")
    theirs = list(torch.utils.data.DataLoader(_stream_of_tuples(torch), batch_size=None))
    loader = DataLoader(_stream_of_tuples(ds), batch_size=None)
    ours = list(loader)
    assert loader.batch_size is None
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]
    assert ours[0][0].shape == (2, 3)  # no batch dimension added


def test_batch_size_none_over_a_stream_len_collate_fn_and_drop_last_as_in_torch():
    torch = pytest.importorskip("torch")

    def sized(lib):
        class Sized(lib.utils.data.IterableDataset):
            def __iter__(self):
                yield from (np.arange(2) + i for i in range(4))

            def __len__(self):
                return 4

        return Sized()

    theirs = torch.utils.data.DataLoader(sized(torch), batch_size=None, collate_fn=lambda a: a.sum())
    ours = DataLoader(sized(ds), batch_size=None, collate_fn=lambda a: a.sum())
    assert len(ours) == len(theirs) == 4
    assert [int(v) for v in ours] == [int(v) for v in theirs]
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(sized(torch), batch_size=None, drop_last=True)
    with pytest.raises(ConfigError, match="drop_last"):
        DataLoader(sized(ds), batch_size=None, drop_last=True)
    with pytest.raises(TypeError):
        len(DataLoader(_stream_of_tuples(ds), batch_size=None))  # no length, as torch's


def test_batch_size_none_with_a_batch_sampler_reads_index_lists_as_torch():
    # PyTorch's documented way to turn automatic batching off: the dataset's __getitem__ takes the
    # BatchSampler's list of indices and returns the whole batch (a fast window loader)
    torch = pytest.importorskip("torch")
    series = np.arange(100 * 5, dtype=np.float32).reshape(100, 5)

    def run(lib, loader_module):
        class Windows(loader_module.Dataset):
            def __len__(self):
                return len(series)

            def __getitem__(self, idx):
                return series[np.asarray(idx)]

        data = Windows()
        sampler = loader_module.BatchSampler(loader_module.SequentialSampler(data), 32, False)
        loader = loader_module.DataLoader(data, sampler=sampler, batch_size=None)
        batches = list(loader)
        return len(loader), [np.asarray(b) for b in batches], [type(b).__name__ for b in batches]

    n, ours, kinds = run(ds, ds.utils.data)
    n_ref, ref, ref_kinds = run(torch, torch.utils.data)
    assert n == n_ref == 4 and kinds == ["Tensor"] * 4 == ref_kinds
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    # one sample per step with a plain sampler, as torch (no batch dimension added)
    single = list(ds.utils.data.DataLoader(series, sampler=[3, 1], batch_size=None))
    assert [tuple(s.shape) for s in single] == [(5,), (5,)]
    np.testing.assert_array_equal(single[1].numpy(), series[1])
    with pytest.raises(ConfigError, match="disables auto-batching"):
        ds.utils.data.DataLoader(series, sampler=[0, 1], batch_size=None, drop_last=True)
