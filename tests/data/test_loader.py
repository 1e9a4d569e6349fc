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
        (None, False, 1, "full-batch gradient descent"),
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
    if drop_last and bs > n:
        with pytest.raises(ConfigError, match="no batches"):
            DataLoader(_xy(n), batch_size=bs, drop_last=drop_last)
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


def test_full_batch_without_shuffle_does_not_copy():
    data = ArrayDataset(*_xy())
    ((xb, _yb),) = list(DataLoader(data, batch_size=None, shuffle=True))
    assert np.shares_memory(xb.numpy(), data.arrays[0])


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
