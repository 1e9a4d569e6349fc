"""downslope.utils.data is PyTorch's module path for the one data implementation in downslope.data."""

import importlib

import numpy as np
import pytest

import downslope as ds
import downslope.data
from downslope.errors import ArgumentTypeError, OutOfRangeError


def test_module_path_and_names_are_the_data_packages_objects():
    module = importlib.import_module("downslope.utils.data")
    from downslope.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, random_split

    assert DataLoader is downslope.data.DataLoader and TensorDataset is downslope.data.TensorDataset
    assert Dataset is downslope.data.Dataset and Subset is downslope.data.Subset
    assert random_split is downslope.data.random_split and ConcatDataset is downslope.data.ConcatDataset
    assert module.default_collate is downslope.data.default_collate
    assert ds.utils.data.DataLoader is DataLoader  # the attribute path, as in torch.utils.data.DataLoader


def test_tensor_dataset_indexing_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    y = np.arange(12)
    ours = downslope.data.TensorDataset(ds.tensor(x), ds.tensor(y))
    theirs = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    for index in (3, -1, slice(None, 10), slice(2, 9, 3), [4, 0, 7]):
        got, want = ours[index], theirs[index]
        assert all(isinstance(t, ds.Tensor) for t in got)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
            assert g.shape == tuple(w.shape)
    np.testing.assert_array_equal(ours[ds.tensor([1, 2])][0].numpy(), x[[1, 2]])
    assert [t.shape for t in ours.tensors] == [(12, 2), (12,)]
    with pytest.raises(OutOfRangeError, match="out of range for 12 samples"):
        ours[12]


def test_loader_batches_single_tensor_and_dict_samples_like_torch():
    class Single(downslope.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return ds.full((2,), float(i))

    class Dicts(Single):
        def __getitem__(self, i):
            return {"x": ds.full((2,), float(i)), "label": i}

    batches = list(downslope.data.DataLoader(Single(), batch_size=2))
    assert isinstance(batches[0], ds.Tensor) and [b.shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    first = next(iter(downslope.data.DataLoader(Dicts(), batch_size=3)))
    assert first["x"].shape == (3, 2) and first["label"].tolist() == [0, 1, 2]


def test_loader_collate_fn_and_ignored_worker_options():
    data = downslope.data.TensorDataset(ds.randn(6, 3), ds.tensor([0, 1, 2, 3, 4, 5]))
    loader = downslope.data.DataLoader(
        data, batch_size=4, num_workers=2, pin_memory=True, collate_fn=lambda s: [int(y) for _, y in s]
    )
    assert list(loader) == [[0, 1, 2, 3], [4, 5]]
    with pytest.raises(ArgumentTypeError, match="batchsize"):
        downslope.data.DataLoader(data, batchsize=4)


def test_concat_dataset_and_random_split_with_a_generator():
    a = downslope.data.ArrayDataset(np.zeros(3))
    b = downslope.data.ArrayDataset(np.ones(2))
    both = downslope.data.ConcatDataset([a, b])
    assert len(both) == 5 and [float(both[i][0]) for i in range(-5, 5)] == [0, 0, 0, 1, 1] * 2
    parts = downslope.data.random_split(both, [3, 2], generator=np.random.default_rng(0))
    again = downslope.data.random_split(both, [3, 2], generator=np.random.default_rng(0))
    assert [list(p.indices) for p in parts] == [list(p.indices) for p in again]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == [0, 1, 2, 3, 4]
