"""DistributedSampler / DistributedDataLoader: closed-form shards and the batch-interleaving invariant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from downslope.distributed import DistributedDataLoader, DistributedError, DistributedSampler, World, epoch_permutation
from downslope.distributed.world import _SelfComm


def fake_world(rank: int, size: int, comm: object | None = None) -> World:
    return World(rank=rank, world_size=size, backend="fake", comm=comm or _SelfComm())


def test_unshuffled_shards_are_strided_and_padded_from_the_start() -> None:
    shards = [list(DistributedSampler(10, 3, r, shuffle=False)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]


def test_drop_last_drops_the_leftover_samples() -> None:
    shards = [list(DistributedSampler(10, 3, r, shuffle=False, drop_last=True)) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_permutation_is_the_documented_one_and_changes_with_the_epoch() -> None:
    s = DistributedSampler(12, 1, 0, seed=5)
    first = s.indices()
    np.testing.assert_array_equal(first, np.random.default_rng([5, 0]).permutation(12))
    s.set_epoch(1)
    assert not np.array_equal(s.indices(), first)
    s.set_epoch(0)
    np.testing.assert_array_equal(s.indices(), first)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    w=st.integers(1, 5),
    seed=st.integers(0, 2**32),
    epoch=st.integers(0, 9),
    drop_last=st.booleans(),
)
def test_ranks_split_one_shared_permutation(n: int, w: int, seed: int, epoch: int, drop_last: bool) -> None:
    if drop_last and 0 < n < w:
        with pytest.raises(ValueError, match="leaves every rank empty"):
            DistributedSampler(n, w, 0, seed=seed, drop_last=drop_last)
        return
    samplers = [DistributedSampler(n, w, r, seed=seed, drop_last=drop_last) for r in range(w)]
    for s in samplers:
        s.set_epoch(epoch)
    shards = [s.indices() for s in samplers]
    assert len({len(s) for s in shards}) == 1, "every rank must take the same number of steps"
    perm = epoch_permutation(n, seed, epoch)
    together = np.concatenate(shards)
    if drop_last:
        assert len(together) == (n // w) * w
        assert len(set(together.tolist())) == len(together), "shards overlap"
        assert set(together.tolist()) <= set(perm.tolist())
    else:
        assert len(together) == -(-n // w) * w
        assert set(together.tolist()) == set(range(n)), "some sample is never read"
    if n % w == 0:
        np.testing.assert_array_equal(np.sort(together), np.arange(n))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 50), w=st.integers(1, 4), b=st.integers(1, 6))
def test_kth_batches_of_all_ranks_form_the_kth_global_batch(n: int, w: int, b: int) -> None:
    n = n * w  # no padding: then W ranks with batch B read exactly what one process with batch W*B reads
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    loaders = [DistributedDataLoader((x,), batch_size=b, seed=3, world=fake_world(r, w)) for r in range(w)]
    per_rank = [[xb.numpy()[:, 0].astype(int).tolist() for (xb,) in loader] for loader in loaders]
    assert len({len(batches) for batches in per_rank}) == 1
    order = epoch_permutation(n, 3, 0)
    for k in range(len(per_rank[0])):
        union = sorted(sum((batches[k] for batches in per_rank), []))
        assert union == sorted(order[k * w * b : (k + 1) * w * b].tolist())


def test_loader_advances_the_epoch_and_resumes_from_its_state() -> None:
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    loader = DistributedDataLoader((x,), batch_size=20, seed=1, world=fake_world(0, 1))
    epoch0 = next(iter(loader))[0].numpy().ravel()
    epoch1 = next(iter(loader))[0].numpy().ravel()
    assert loader.epoch == 2 and not np.array_equal(epoch0, epoch1)
    resumed = DistributedDataLoader((x,), batch_size=20, seed=1, world=fake_world(0, 1))
    resumed.load_state_dict({"epoch": 1, "seed": 1})
    np.testing.assert_array_equal(next(iter(resumed))[0].numpy().ravel(), epoch1)
    with pytest.raises(ValueError, match="seed 2"):
        resumed.load_state_dict({"epoch": 0, "seed": 2})
    with pytest.raises(ValueError, match="saved by 2 processes, this run has 1; resume under mpiexec -n 2"):
        resumed.load_state_dict({"epoch": 0, "seed": 1, "world_size": 2})


def test_loader_length_and_global_batch() -> None:
    x = np.zeros((45, 2), dtype=np.float32)
    loader = DistributedDataLoader((x,), batch_size=4, world=fake_world(1, 2))
    assert len(loader.sampler) == 23  # 45 padded to 46
    assert len(loader) == 6 and loader.global_batch_size == 8
    assert [xb.shape[0] for (xb,) in loader] == [4, 4, 4, 4, 4, 3]


class _DisagreeingComm(_SelfComm):
    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, data.replace(b"seed 0", b"seed 9")]


def test_ranks_with_different_seeds_are_refused() -> None:
    with pytest.raises(DistributedError, match="rank 1 has 8 samples, seed 9"):
        DistributedDataLoader((np.zeros((8, 1)),), batch_size=2, seed=0, world=fake_world(0, 2, _DisagreeingComm()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 5, "num_replicas": 2, "rank": 2}, "need 0 <= rank < num_replicas, got rank 2 of 2"),
        ({"num_samples": 5, "num_replicas": 1, "rank": 0, "seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_sampler_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DistributedSampler(**kwargs)


def test_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="per rank"):
        DistributedDataLoader((np.zeros((4, 1)),), batch_size=0)


def test_an_empty_dataset_is_refused_by_the_loader() -> None:
    with pytest.raises(ValueError, match="the dataset is empty"):
        DistributedDataLoader((np.zeros((0, 1)),), batch_size=2)


def test_pad_false_with_fewer_samples_than_ranks_names_pad_not_drop_last() -> None:
    with pytest.raises(ValueError, match=r"pad=False with 3 samples for 4 ranks leaves every rank empty") as info:
        DistributedDataLoader((np.zeros((3, 1)),), batch_size=2, pad=False, world=fake_world(0, 4, _SelfComm()))
    assert "drop_last" not in str(info.value)
