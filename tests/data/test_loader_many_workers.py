"""DataLoader(num_workers=N): downslope's N in-process workers against PyTorch's N worker processes.

Which worker reads which batch, what get_worker_info() says inside it, and the order the batches of an
IterableDataset come in (round-robin over the workers, each batching its own samples) are PyTorch's."""

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


class _Stream:
    """An IterableDataset (of whichever library) that yields ``sizes[worker]`` samples in each worker,
    ``(worker id, k)`` encoded as ``1000 * id + k``; with ``shard=False`` every worker yields range(n)."""

    def __init__(self, lib_name, sizes, shard=True):
        self.lib_name, self.sizes, self.shard = lib_name, sizes, shard

    def __iter__(self):
        lib = torch if self.lib_name == "torch" else ds
        info = lib.utils.data.get_worker_info()
        if not self.shard or info is None:
            return iter(range(sum(self.sizes)))
        return iter(1000 * info.id + k for k in range(self.sizes[info.id]))


def _stream(lib, sizes, shard=True):
    base = lib.utils.data.IterableDataset
    cls = type(f"Stream_{lib.__name__}", (_Stream, base), {})
    globals()[cls.__name__] = cls  # picklable for torch's worker processes
    cls.__module__ = __name__
    cls.__qualname__ = cls.__name__
    return cls("torch" if lib is torch else "ds", sizes, shard)


class _WhoReads:
    """A map-style dataset whose samples say which worker read them (its id, num_workers and seed - id)."""

    def __init__(self, lib_name, n):
        self.lib_name, self.n = lib_name, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        lib = torch if self.lib_name == "torch" else ds
        info = lib.utils.data.get_worker_info()
        if info is None:  # read in the main process (num_workers=0)
            return np.array([i, -1, 0, 0], dtype=np.int64)
        return np.array([i, info.id, info.num_workers, info.seed - info.id], dtype=np.int64)


def _who_reads(lib, n):
    cls = type(f"WhoReads_{lib.__name__}", (_WhoReads, lib.utils.data.Dataset), {})
    globals()[cls.__name__] = cls
    cls.__module__ = __name__
    cls.__qualname__ = cls.__name__
    return cls("torch" if lib is torch else "ds", n)


def _lists(batches):
    return [b.tolist() if hasattr(b, "tolist") else b for b in batches]


@pytest.mark.parametrize(
    ("sizes", "options"),
    [
        ((5, 5), {"batch_size": 2}),
        ((7, 2), {"batch_size": 3}),
        ((1, 6, 4), {"batch_size": 2}),
        ((7, 2, 0), {"batch_size": 3, "drop_last": True}),
        ((3, 1), {"batch_size": None}),
    ],
)
def test_an_iterable_dataset_sharded_by_worker_comes_round_robin_as_torchs(sizes, options):
    expected = _lists(torch.utils.data.DataLoader(_stream(torch, sizes), num_workers=len(sizes), **options))
    got = _lists(ds.utils.data.DataLoader(_stream(ds, sizes), num_workers=len(sizes), **options))
    assert got == expected
    everything = sorted(v for b in got for v in (b if isinstance(b, list) else [b]))
    if not options.get("drop_last"):  # each sample once: the union of the workers' shards
        assert everything == sorted(1000 * w + k for w, size in enumerate(sizes) for k in range(size))


def test_an_iterable_dataset_that_does_not_shard_is_read_by_every_worker_as_in_torch():
    expected = _lists(torch.utils.data.DataLoader(_stream(torch, (3, 2), shard=False), batch_size=2, num_workers=2))
    got = _lists(ds.utils.data.DataLoader(_stream(ds, (3, 2), shard=False), batch_size=2, num_workers=2))
    assert got == expected == [[0, 1], [0, 1], [2, 3], [2, 3], [4], [4]]


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("options", [{"batch_size": 4}, {"batch_size": 4, "shuffle": True}, {"batch_size": None}])
def test_a_map_style_dataset_batch_k_is_read_by_worker_k_mod_n_in_the_order_of_no_workers(workers, options):
    def run(lib, num_workers):
        lib.manual_seed(0)
        return [np.asarray(b).reshape(-1, 4) for b in lib.utils.data.DataLoader(
            _who_reads(lib, 10), num_workers=num_workers, **options)]  # fmt: skip

    for lib in (torch, ds):
        batches = run(lib, workers)
        plain = [b[:, 0].tolist() for b in run(lib, 0)] if lib is ds else None
        assert [b[:, 1].tolist() for b in batches] == [[k % workers] * len(b) for k, b in enumerate(batches)]
        assert {int(v) for b in batches for v in b[:, 2]} == {workers}
        assert len({int(v) for b in batches for v in b[:, 3]}) == 1  # every worker's seed is base_seed + id
        if plain is not None:
            assert [b[:, 0].tolist() for b in batches] == plain
    info = ds.data.loader.WorkerInfo(id=0, num_workers=1, seed=0, dataset=None)
    with pytest.raises(RuntimeError, match="Cannot assign attributes to WorkerInfo"):  # read-only, as torch's
        info.id = 1


def test_worker_init_fn_runs_in_each_worker_with_its_id_and_persistent_workers_start_once():
    calls = []

    def init(worker_id):
        info = ds.utils.data.get_worker_info()
        calls.append((worker_id, info.id, info.num_workers, info.seed - info.id, ds.initial_seed() == info.seed))

    for persistent, starts in ((False, 2), (True, 1)):
        calls.clear()
        loader = ds.utils.data.DataLoader(_stream(ds, (2, 3)), num_workers=2, persistent_workers=persistent,
                                          worker_init_fn=init)  # fmt: skip
        epochs = [_lists(loader) for _ in range(2)]
        assert epochs[0] == epochs[1] == [[0], [1000], [1], [1001], [1002]]
        assert [c[:3] for c in calls] == [(0, 0, 2), (1, 1, 2)] * starts
        assert all(c[4] for c in calls) and calls[0][3] == calls[1][3]


@pytest.mark.parametrize(
    "options",
    [
        {"num_workers": 0, "prefetch_factor": 2},
        {"num_workers": 2, "prefetch_factor": -1},
        {"num_workers": 0, "persistent_workers": True},
        {"num_workers": 1, "timeout": -1},
    ],
)
def test_worker_options_are_refused_with_torchs_messages(options):
    with pytest.raises(ValueError) as expected:
        torch.utils.data.DataLoader(list(range(4)), **options)
    with pytest.raises(ValueError) as got:
        ds.utils.data.DataLoader(list(range(4)), **options)
    assert str(got.value) == str(expected.value)
