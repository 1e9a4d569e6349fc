"""DistributedSampler called as PyTorch's: the dataset first, the same indices as
``torch.utils.data.distributed.DistributedSampler`` (explicit num_replicas/rank: no process group)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data import ArrayDataset
from downslope.distributed import DistributedSampler
from downslope.errors import ArgumentTypeError

torch = pytest.importorskip("torch")
from torch.utils.data.distributed import DistributedSampler as TorchSampler  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 7, 10, 12])
@pytest.mark.parametrize("replicas", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_the_dataset_first_gives_torchs_indices(n: int, replicas: int, drop_last: bool) -> None:
    if drop_last and 0 < n < replicas:
        pytest.skip("every rank would be empty (refused by downslope)")
    theirs = torch.utils.data.TensorDataset(torch.zeros(n, 2))
    ours = ArrayDataset(np.zeros((n, 2), dtype=np.float32))
    for rank in range(replicas):
        expected = TorchSampler(theirs, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        got = DistributedSampler(ours, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(got) == list(expected) and len(got) == len(expected)
        assert got.total_size == expected.total_size
        assert got.dataset is ours


def test_a_shuffled_epoch_covers_what_torchs_does() -> None:
    # the order is drawn differently (epoch_permutation, not torch.randperm); the samples per epoch agree
    n, replicas = 11, 3
    data = list(range(n))  # anything with len()
    for epoch in range(2):
        ours, theirs = [], []
        for rank in range(replicas):
            s = DistributedSampler(data, replicas, rank, seed=4)
            t = TorchSampler(data, replicas, rank, seed=4)  # type: ignore[arg-type]
            s.set_epoch(epoch)
            t.set_epoch(epoch)
            ours.append(list(s))
            theirs.append(list(t))
        assert [len(s) for s in ours] == [len(t) for t in theirs]
        assert sorted(set(sum(ours, []))) == sorted(set(sum(theirs, []))) == data
        assert len(sum(ours, [])) == len(sum(theirs, []))


def test_the_number_and_the_keyword_forms_still_work() -> None:
    assert list(DistributedSampler(10, 3, 1, shuffle=False)) == [1, 4, 7, 0]
    assert list(DistributedSampler(num_samples=10, num_replicas=3, rank=1, shuffle=False)) == [1, 4, 7, 0]
    assert list(DistributedSampler(np.int64(10), 3, 1, shuffle=False)) == [1, 4, 7, 0]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((object(),), {}, "expected a dataset with len\\(\\) or its number of samples, got object"),
        ((), {}, "got neither"),
        (([1, 2],), {"num_samples": 2}, "got both"),
    ],
)
def test_what_is_not_a_dataset_is_refused(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ArgumentTypeError, match=message):
        DistributedSampler(*args, num_replicas=1, rank=0, **kwargs)


@pytest.mark.parametrize("n", [1, 5, 7, 10, 12, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_the_attributes_are_torchs(n: int, replicas: int, drop_last: bool, shuffle: bool) -> None:
    if drop_last and n < replicas:
        pytest.skip("every rank would be empty (refused by downslope)")
    data = list(range(n))
    for rank in range(replicas):
        expected = TorchSampler(data, replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)  # type: ignore[arg-type]
        got = DistributedSampler(data, replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)
        expected.set_epoch(2)
        got.set_epoch(2)
        for name in ("num_samples", "total_size", "num_replicas", "rank", "epoch", "seed", "shuffle", "drop_last"):
            assert getattr(got, name) == getattr(expected, name), name
        assert got.dataset is data and len(got) == len(expected) == got.num_samples


def test_a_subclass_reading_torchs_attributes_gives_torchs_indices() -> None:
    # the "DistributedEvalSampler" pattern: a subclass that pads and strides by hand from the attributes
    def eval_sampler(base: type) -> type:
        class EvalSampler(base):  # type: ignore[misc, valid-type]
            def __iter__(self):  # type: ignore[no-untyped-def]
                indices = list(range(len(self.dataset)))
                indices += indices[: (self.total_size - len(indices))]
                indices = indices[self.rank : self.total_size : self.num_replicas]
                return iter(indices[: self.num_samples])

        return EvalSampler

    ours, theirs = eval_sampler(DistributedSampler), eval_sampler(TorchSampler)
    for n, replicas in [(10, 2), (10, 3), (7, 4)]:
        for rank in range(replicas):
            assert list(ours(list(range(n)), replicas, rank, shuffle=False)) == list(
                theirs(list(range(n)), replicas, rank, shuffle=False)
            )


def test_a_size_alone_stands_for_a_dataset_of_that_length() -> None:
    s = DistributedSampler(num_samples=10, num_replicas=3, rank=1, shuffle=False)
    t = TorchSampler(list(range(10)), num_replicas=3, rank=1, shuffle=False)  # type: ignore[arg-type]
    assert len(s.dataset) == 10 and s.dataset_size == 10
    assert (s.num_samples, s.total_size) == (t.num_samples, t.total_size)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_an_empty_dataset_gives_no_indices_as_torchs(shuffle: bool, drop_last: bool) -> None:
    expected = list(TorchSampler(range(0), 2, 0, shuffle=shuffle, drop_last=drop_last))
    got = DistributedSampler(range(0), 2, 0, shuffle=shuffle, drop_last=drop_last)
    assert list(got) == expected == [] and len(got) == 0
