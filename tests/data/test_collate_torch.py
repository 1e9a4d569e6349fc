"""default_collate and DataLoader batching against torch.utils.data: ragged samples, namedtuples,
string fields, refused types, __getitems__, and torch's loader options."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.utils.data import ConcatDataset, DataLoader, Dataset, IterableDataset, Subset, default_collate

torch = pytest.importorskip("torch")
tdata = torch.utils.data

P = collections.namedtuple("P", "x y")


def _ragged(lib: Any) -> Any:
    class Ragged(lib.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> list[int]:
            return [1, 2, 3][: i + 2]

    return Ragged()


@pytest.mark.parametrize("samples", [[[1, 2], [1, 2, 3]], [[1, 2, 3], [1, 2]], [(1, 2), (1,)]])
def test_ragged_samples_raise_torchs_error(samples: list[Any]) -> None:
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size") as theirs:
        tdata.default_collate(samples)
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate(samples)
    assert "equal size" in str(theirs.value)


def test_a_loader_over_ragged_samples_raises_as_torch() -> None:
    with pytest.raises(RuntimeError, match="equal size"):
        next(iter(tdata.DataLoader(_ragged(torch), batch_size=2)))
    with pytest.raises(RuntimeError, match="equal size"):
        next(iter(DataLoader(_ragged(ds), batch_size=2)))


def test_namedtuple_samples_batch_to_the_namedtuple() -> None:
    samples = [P(np.full(2, float(i), np.float32), i) for i in range(4)]
    theirs = tdata.default_collate(samples)
    ours = default_collate(samples)
    assert type(ours) is type(theirs) is P
    np.testing.assert_array_equal(ours.x.numpy(), theirs.x.numpy())
    assert ours.y.tolist() == theirs.y.tolist()

    class D(Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> P:
            return samples[i]

    batch = next(iter(DataLoader(D(), batch_size=2)))
    assert type(batch) is P and batch.x.shape == (2, 2) and batch.y.tolist() == [0, 1]


def test_strings_stay_as_they_come_as_torch() -> None:
    for samples in ([(1, "a"), (2, "b")], ["a", "b"], [{"s": "a"}, {"s": "b"}]):
        theirs, ours = tdata.default_collate(samples), default_collate(samples)
        if isinstance(theirs, list) and len(theirs) == 2 and isinstance(theirs[0], torch.Tensor):
            assert ours[0].tolist() == theirs[0].tolist() and ours[1] == theirs[1] == ("a", "b")
        else:
            assert ours == theirs


def test_mappings_keep_their_type() -> None:
    samples = [collections.OrderedDict(a=1, b=2.0), collections.OrderedDict(a=3, b=4.0)]
    theirs, ours = tdata.default_collate(samples), default_collate(samples)
    assert type(ours) is type(theirs) is collections.OrderedDict and list(ours) == list(theirs)


@pytest.mark.parametrize("samples", [[None, None], [1 + 2j, 3j], [object(), object()]])
def test_unbatchable_types_raise_torchs_type_error(samples: list[Any]) -> None:
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers, dicts or lists") as t:
        tdata.default_collate(samples)
    # ours lists what is batched: torch's message leaves strings out, which it batches too
    with pytest.raises(TypeError, match="batch must contain tensors, numeric numpy arrays, numbers .*strings") as e:
        default_collate(samples)
    assert str(e.value).endswith(str(t.value).rsplit(" ", 1)[-1])  # names the same type


def test_none_among_numbers_names_what_is_wrong() -> None:
    with pytest.raises(TypeError, match="batch must contain tensors"):
        default_collate([(1, None), (2, 3)])


def _batched_reader(lib: Any) -> Any:
    class Batched(lib.utils.data.Dataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int) -> Any:
            raise RuntimeError("per-item path used")

        def __getitems__(self, idx: list[int]) -> list[tuple[int, int]]:
            return [(i, 2 * i) for i in idx]

    return Batched()


def test_getitems_reads_each_batch_in_one_call_as_torch() -> None:
    theirs = [b[1].tolist() for b in tdata.DataLoader(_batched_reader(torch), batch_size=4)]
    ours = [b[1].tolist() for b in DataLoader(_batched_reader(ds), batch_size=4)]
    assert ours == theirs == [[0, 2, 4, 6], [8, 10]]
    shuffled = [b[0].tolist() for b in DataLoader(_batched_reader(ds), batch_size=3, shuffle=True, seed=0)]
    assert sorted(sum(shuffled, [])) == list(range(6))


def test_subset_has_getitems_and_uses_the_parents() -> None:
    sub = Subset(_batched_reader(ds), [5, 1, 3])
    assert hasattr(tdata.Subset(_batched_reader(torch), [0]), "__getitems__") and hasattr(sub, "__getitems__")
    assert sub.__getitems__([0, 2]) == [(5, 10), (3, 6)]
    assert [b[0].tolist() for b in DataLoader(sub, batch_size=2)] == [[5, 1], [3]]
    plain = Subset(ds.utils.data.TensorDataset(np.arange(5.0)), [4, 0])
    assert [t[0].item() for t in plain.__getitems__([0, 1])] == [4.0, 0.0]


def test_adding_datasets_concatenates_or_chains() -> None:
    a, b = ds.utils.data.TensorDataset(np.zeros(2)), ds.utils.data.TensorDataset(np.ones(3))
    both = a + b
    assert isinstance(both, ConcatDataset) and len(both) == 5 and both[4][0].item() == 1.0

    class Two(IterableDataset):
        def __iter__(self) -> Any:
            return iter([1, 2])

    assert list(Two() + Two()) == [1, 2, 1, 2]


def test_the_loader_iterator_has_a_length() -> None:
    data = list(range(10))
    assert len(iter(DataLoader(data, batch_size=3))) == len(iter(tdata.DataLoader(data, batch_size=3))) == 4
    assert len(iter(DataLoader(data, batch_size=3, drop_last=True))) == 3


def test_torchs_worker_options_are_checked_as_torch() -> None:
    data = list(range(4))
    for options in ({"prefetch_factor": 2}, {"persistent_workers": True}, {"timeout": -1}):
        with pytest.raises(ValueError) as theirs:
            tdata.DataLoader(data, **options)
        with pytest.raises(ValueError) as ours:
            DataLoader(data, **options)
        assert str(ours.value) == str(theirs.value)
    loader = DataLoader(data, batch_size=2, num_workers=2, persistent_workers=True, prefetch_factor=4)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3]] and loader.prefetch_factor == 4
    assert DataLoader(data, num_workers=1).prefetch_factor == 2
    assert len(DataLoader(data, in_order=False, pin_memory_device="cuda", pin_memory=True)) == 4


@pytest.mark.parametrize("kind", [np.str_, np.bytes_])
def test_numpy_strings_batch_as_python_strings_as_torchs(kind: Any) -> None:
    """A dataset returning np.array(names)[i]: the labels come back as they are, as torch gives them."""
    names = np.array(["cat", "dog", "bird"]).astype(kind)
    pairs = [(np.float32(i), names[i]) for i in range(3)]
    for samples in ([names[i] for i in range(3)], pairs, [{"name": names[i]} for i in range(3)]):
        theirs, ours = tdata.default_collate(samples), default_collate(samples)
        if isinstance(theirs, list) and isinstance(theirs[0], torch.Tensor):
            assert ours[0].tolist() == theirs[0].tolist()
            theirs, ours = theirs[1], ours[1]
        assert ours == theirs and type(ours) is type(theirs)
        values = ours["name"] if isinstance(ours, dict) else ours
        assert [type(v) for v in values] == [kind] * 3


def test_a_loader_batches_numpy_string_labels_as_torchs() -> None:
    names = np.array(["cat", "dog", "cat", "bird"])
    batches = []
    for lib in (torch, ds):

        class Labelled(lib.utils.data.Dataset):
            def __len__(self) -> int:
                return 4

            def __getitem__(self, i: int) -> Any:
                return np.float32(i), names[i]

        batches.append([(x.tolist(), tuple(y)) for x, y in lib.utils.data.DataLoader(Labelled(), batch_size=2)])
    assert batches[0] == batches[1] == [([0.0, 1.0], ("cat", "dog")), ([2.0, 3.0], ("cat", "bird"))]
