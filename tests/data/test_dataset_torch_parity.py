"""Datasets, samplers and random_split against torch.utils.data 2.13: generic classes, StackDataset's
batched read, random_split's fractions, PyTorch's checks of boolean flags."""

from __future__ import annotations

import warnings

import pytest

import downslope as ds

torch = pytest.importorskip("torch")
TD = torch.utils.data
DD = ds.utils.data


@pytest.mark.parametrize("name", ["Dataset", "IterableDataset", "Sampler"])
def test_the_base_classes_are_generic_as_torchs(name):
    for u in (TD, DD):
        namespace = {"U": u}
        exec(f"class Typed(U.{name}[tuple[int, int]]):\n    pass", namespace)
        assert issubclass(namespace["Typed"], getattr(u, name))


def test_a_typed_dataset_subclass_works_in_a_loader():
    class Pairs(DD.Dataset[tuple[ds.Tensor, int]]):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return ds.tensor([float(i)]), i

    assert [y.tolist() for _x, y in DD.DataLoader(Pairs(), batch_size=2)] == [[0, 1], [2]]


@pytest.mark.parametrize("keyword", [False, True])
def test_stack_dataset_getitems_as_torch(keyword):
    def run(lib, u):
        parts = (list("abc"), [1, 2, 3])
        stacked = u.StackDataset(text=parts[0], number=parts[1]) if keyword else u.StackDataset(*parts)
        return stacked.__getitems__([2, 0])

    assert run(ds, DD) == run(torch, TD)


@pytest.mark.parametrize(
    "n, lengths", [(1, [0.5, 0.5]), (10, [0.3, 0.3, 0.4]), (7, [0.5, 0.5]), (1, [1]), (5, [2, 3]), (3, [1.0, 0.0])]
)
def test_random_split_sizes_as_torch(n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns of an empty split
        ref = [len(s) for s in TD.random_split(range(n), lengths)]
    ours = [len(s) for s in DD.random_split(range(n), lengths)]
    assert ours == ref


@pytest.mark.parametrize(
    "make",
    [
        lambda u: u.RandomSampler(range(3), replacement=1),
        lambda u: u.WeightedRandomSampler([1.0, 2.0], 2, replacement=1),
        lambda u: u.BatchSampler(range(3), 2, 0),
    ],
)
def test_non_bool_flags_are_refused_as_torch(make):
    with pytest.raises((TypeError, ValueError)) as ref:
        make(TD)
    with pytest.raises(ref.type, match="should be a boolean value"):
        make(DD)
