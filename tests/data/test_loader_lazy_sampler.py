"""The DataLoader reads its sampler lazily, a batch at a time, as PyTorch's does: a sampler may be
endless or far longer than an epoch (makemore's RandomSampler(num_samples=int(1e10)))."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import downslope as ds
from downslope.data import DataLoader, RandomSampler, Sampler


class _Endless(Sampler):
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        return itertools.cycle(range(self.n))


def test_an_endless_sampler_gives_batches_as_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(10, dtype=np.float32)
    ours = DataLoader(ds.utils.data.TensorDataset(ds.tensor(x)), batch_size=4, sampler=_Endless(10))

    class TorchEndless(torch.utils.data.Sampler):
        def __iter__(self):
            return itertools.cycle(range(10))

    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x)), batch_size=4, sampler=TorchEndless()
    )
    for (a,), (b,) in itertools.islice(zip(ours, theirs), 5):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_random_sampler_of_1e10_samples_starts_at_once():
    data = ds.utils.data.TensorDataset(ds.arange(50))
    loader = DataLoader(data, batch_size=32, sampler=RandomSampler(data, replacement=True, num_samples=int(1e10)))
    assert len(loader) == -(-int(1e10) // 32)
    (batch,) = next(iter(loader))
    assert batch.shape == (32,) and 0 <= int(batch.min()) and int(batch.max()) < 50


@pytest.mark.parametrize("drop_last", [False, True])
def test_a_finite_sampler_ends_as_before(drop_last):
    data = ds.utils.data.TensorDataset(ds.arange(10))
    sampler = list(np.random.default_rng(0).permutation(10))
    batches = [b.tolist() for (b,) in DataLoader(data, batch_size=4, sampler=sampler, drop_last=drop_last)]
    expected = [sampler[0:4], sampler[4:8]] + ([] if drop_last else [sampler[8:10]])
    assert batches == [[int(i) for i in e] for e in expected]


def test_random_sampler_with_replacement_draws_the_asked_number_in_range():
    data = list(range(7))
    draws = list(RandomSampler(data, replacement=True, num_samples=200_000, generator=np.random.default_rng(1)))
    assert len(draws) == 200_000 and set(draws) == set(range(7))
    no_replacement = list(RandomSampler(data, num_samples=17, generator=np.random.default_rng(1)))
    assert len(no_replacement) == 17 and sorted(no_replacement[:7]) == data and sorted(no_replacement[7:14]) == data
