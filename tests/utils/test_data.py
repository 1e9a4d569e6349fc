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


def _stream_classes(base):
    class Squares(base):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            for i in range(self.n):
                yield (np.full(2, float(i * i), np.float32), i)

    class Sized(Squares):
        def __len__(self):
            return self.n

    return Squares, Sized


def test_iterable_datasets_batch_like_torch():
    torch = pytest.importorskip("torch")
    from downslope.utils.data import ChainDataset, DataLoader, IterableDataset

    ours, theirs = _stream_classes(IterableDataset), _stream_classes(torch.utils.data.IterableDataset)
    for drop_last in (False, True):
        got = list(DataLoader(ours[0](7), batch_size=3, drop_last=drop_last))
        want = list(torch.utils.data.DataLoader(theirs[0](7), batch_size=3, drop_last=drop_last))
        assert len(got) == len(want)
        for (gx, gy), (wx, wy) in zip(got, want):
            np.testing.assert_array_equal(gx.numpy(), wx.numpy())
            np.testing.assert_array_equal(gy.numpy(), wy.numpy())
    assert len(DataLoader(ours[1](7), batch_size=3)) == len(torch.utils.data.DataLoader(theirs[1](7), batch_size=3))
    with pytest.raises(TypeError):
        len(DataLoader(ours[0](7), batch_size=3))
    chained = DataLoader(ChainDataset([ours[1](2), ours[1](3)]), batch_size=5)
    assert [y.tolist() for _, y in chained] == [[0, 1, 0, 1, 2]] and len(chained) == 1
    with pytest.raises(ValueError, match="own order"):
        DataLoader(ours[0](3), shuffle=True)


def test_stack_dataset_default_convert_and_worker_info():
    from downslope.utils.data import ArrayDataset, DataLoader, StackDataset, default_convert, get_worker_info

    stacked = StackDataset(x=ArrayDataset(np.zeros((4, 3))), y=ArrayDataset(np.arange(4)))
    batch = next(iter(DataLoader(stacked, batch_size=4)))
    assert batch["x"][0].shape == (4, 3) and batch["y"][0].tolist() == [0, 1, 2, 3]
    assert isinstance(default_convert([np.ones(2)])[0], ds.Tensor) and default_convert("text") == "text"
    assert get_worker_info() is None
    with pytest.raises(ValueError, match="same length"):
        StackDataset(ArrayDataset(np.zeros(2)), ArrayDataset(np.zeros(3)))


@pytest.mark.parametrize("name", ["dataset", "sampler", "dataloader"])
def test_torchs_submodules_hold_torchs_names(name):
    pytest.importorskip("torch")
    torch_module = importlib.import_module(f"torch.utils.data.{name}")
    ours = importlib.import_module(f"downslope.utils.data.{name}")
    from downslope.utils import data

    assert getattr(data, name) is ours
    assert sorted(ours.__all__) == sorted(torch_module.__all__)
    for item in torch_module.__all__:
        assert getattr(ours, item) is getattr(data, item)
