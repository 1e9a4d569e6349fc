"""Samplers and the DataLoader's sampler= / batch_sampler= options (PyTorch's names and rules)."""

import numpy as np
import pytest

import downslope as ds
from downslope.data import (
    ArrayDataset,
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from downslope.errors import ConfigError


def _values(loader):
    return [x.tolist() for (x,) in loader]


def test_sequential_and_batch_samplers_match_torch():
    torch = pytest.importorskip("torch")
    for bs, drop in [(2, False), (2, True), (3, False), (5, True)]:
        ours = list(BatchSampler(SequentialSampler(range(7)), bs, drop))
        theirs = list(torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(7)), bs, drop))
        assert ours == theirs and len(BatchSampler(SequentialSampler(range(7)), bs, drop)) == len(theirs)


def test_random_samplers_are_permutations_and_follow_their_generator():
    order = list(RandomSampler(range(10), generator=np.random.default_rng(1)))
    assert sorted(order) == list(range(10)) and order == list(
        RandomSampler(range(10), generator=np.random.default_rng(1))
    )
    assert len(list(RandomSampler(range(3), num_samples=7, generator=np.random.default_rng(0)))) == 7
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=np.random.default_rng(0)))
    assert set(drawn) <= {0, 1, 2} and len(drawn) == 50
    ds.manual_seed(5)
    a = list(SubsetRandomSampler([10, 20, 30, 40]))
    ds.manual_seed(5)
    assert a == list(SubsetRandomSampler([10, 20, 30, 40])) and sorted(a) == [10, 20, 30, 40]
    weighted = list(WeightedRandomSampler([0.0, 3.0, 1.0], 400, generator=np.random.default_rng(0)))
    assert 0 not in weighted and 0.65 < weighted.count(1) / 400 < 0.85
    with pytest.raises(ConfigError, match="without replacement"):
        WeightedRandomSampler([0.0, 1.0], 3, replacement=False)
    # past the non-zero weights come the zero-weight items, as torch's sampler (its multinomial) gives them
    drawn = list(WeightedRandomSampler([0.0, 1.0, 0.0, 2.0], 4, replacement=False, generator=np.random.default_rng(0)))
    assert sorted(drawn[:2]) == [1, 3] and sorted(drawn[2:]) == [0, 2]


def test_loader_follows_a_sampler_or_a_batch_sampler():
    data = ArrayDataset(np.arange(8.0))
    loader = DataLoader(data, batch_size=3, sampler=[7, 0, 5, 1])
    assert _values(loader) == [[7.0, 0.0, 5.0], [1.0]] and len(loader) == 2
    loader = DataLoader(data, batch_sampler=[[1, 2], [6], [0, 3, 4]])
    assert _values(loader) == [[1.0, 2.0], [6.0], [0.0, 3.0, 4.0]] and len(loader) == 3
    loader = DataLoader(data, batch_size=2, drop_last=True, sampler=SubsetRandomSampler(range(5)))
    assert len(loader) == 2 and all(len(b) == 2 for b in _values(loader))
    with pytest.raises(ConfigError, match="cannot be combined with shuffle"):
        DataLoader(data, shuffle=True, sampler=[0, 1])
    with pytest.raises(ConfigError, match="batch_sampler decides the batches"):
        DataLoader(data, batch_size=4, batch_sampler=[[0]])


def test_samplers_without_a_generator_draw_as_each_pass_starts_as_in_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        lib.manual_seed(50)  # built under one state...
        samplers = [
            lib.utils.data.RandomSampler(range(10)),
            lib.utils.data.SubsetRandomSampler(list(range(10))),
            lib.utils.data.WeightedRandomSampler([1.0] * 10, 10),
        ]
        for sampler in samplers:
            lib.manual_seed(1)  # ...the seed set before the pass fixes it
            first = [int(i) for i in sampler]
            lib.manual_seed(2)
            other = [int(i) for i in sampler]
            lib.manual_seed(1)
            assert [int(i) for i in sampler] == first != other, (lib.__name__, type(sampler).__name__)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: RandomSampler(range(10), generator=g),
        lambda g: SubsetRandomSampler(list(range(10)), generator=g),
        lambda g: WeightedRandomSampler([1.0] * 10, 10, generator=g),
    ],
)
def test_a_generator_reseeded_after_the_sampler_was_built_reaches_it(make):
    g = ds.Generator()
    sampler = make(g)
    g.manual_seed(1)
    first = list(sampler)
    g.manual_seed(2)
    assert list(sampler) != first
    g.manual_seed(1)
    assert list(sampler) == first == list(make(ds.Generator().manual_seed(1)))


def test_a_pass_draws_at_its_first_index_not_in_iter_as_in_torch():
    """PyTorch's samplers' __iter__ are generators: iter(sampler) draws nothing, so a seed set between
    iter() and the first index decides the pass (lazy2.py: it followed the earlier seed here)."""
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        U = lib.utils.data
        g = lib.Generator()
        for make in (
            lambda gen, U=U: U.RandomSampler(range(10), generator=gen),
            lambda gen, U=U: U.SubsetRandomSampler(list(range(10)), generator=gen),
            lambda gen, U=U: U.WeightedRandomSampler([1.0] * 10, 10, generator=gen),
        ):
            sampler = make(None)
            lib.manual_seed(0)
            it = iter(sampler)
            lib.manual_seed(3)
            late = [int(i) for i in it]
            lib.manual_seed(3)
            assert late == [int(i) for i in sampler], (lib.__name__, type(sampler).__name__)
            own = make(g)  # the same with the sampler's own generator
            g.manual_seed(0)
            it = iter(own)
            g.manual_seed(3)
            late = [int(i) for i in it]
            g.manual_seed(3)
            assert late == [int(i) for i in own], (lib.__name__, type(own).__name__)
