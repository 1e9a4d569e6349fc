import numpy as np
import pytest

import downslope as ds
from downslope.data import ArrayDataset, random_split, train_test_split
from downslope.errors import ConfigError, DataError, ShapeError


@pytest.mark.parametrize("n, fractions", [(10, [0.3, 0.3, 0.4]), (7, [0.5, 0.5]), (101, [0.8, 0.1, 0.1])])
def test_random_split_fraction_lengths_match_pytorch(n, fractions):
    torch = pytest.importorskip("torch")
    expected = [len(p) for p in torch.utils.data.random_split(range(n), fractions)]
    parts = random_split(ArrayDataset(np.arange(float(n))), fractions, seed=0)
    assert [len(p) for p in parts] == expected


def test_random_split_is_a_partition_and_seeded():
    data = ArrayDataset(np.arange(50.0))
    parts = random_split(data, [20, 20, 10], seed=3)
    values = np.concatenate([p.arrays[0] for p in parts])
    assert sorted(values.tolist()) == list(range(50))
    again = random_split(data, [20, 20, 10], seed=3)
    assert all(np.array_equal(p.indices, q.indices) for p, q in zip(parts, again))
    with pytest.raises(ConfigError, match="sum to 49"):
        random_split(data, [20, 20, 9])


@pytest.mark.parametrize("test_size, train_size", [(None, None), (0.2, None), (0.33, None), (7, None), (None, 0.6)])
def test_train_test_split_sizes_match_sklearn(test_size, train_size):
    sk = pytest.importorskip("sklearn.model_selection")
    x = np.arange(62.0).reshape(31, 2)
    expected = sk.train_test_split(x, test_size=test_size, train_size=train_size, random_state=0)
    got = train_test_split(x, test_size=test_size, train_size=train_size, seed=0)
    assert [len(a) for a in got] == [len(a) for a in expected]
    rows = np.concatenate(got)[:, 0]
    assert len(np.unique(rows)) == len(rows)


def test_stratified_split_keeps_class_proportions():
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=200, p=[0.6, 0.3, 0.1])
    x = np.arange(200.0)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, stratify=y, seed=1)
    assert len(x_te) == 50 and len(x_tr) == 150
    np.testing.assert_array_equal(y[x_te.astype(int)], y_te)
    for k in range(3):
        ideal = (y == k).sum() * 50 / 200
        assert abs((y_te == k).sum() - ideal) < 1
    with pytest.raises(DataError, match="class 1 has only 1"):
        train_test_split(x[:4], np.array([0, 0, 1, 2]), stratify=np.array([0, 0, 1, 2]))


def test_tensors_come_back_as_tensors_and_no_shuffle_keeps_order():
    x = ds.tensor(np.arange(10.0))
    x_tr, x_te = train_test_split(x, test_size=3, shuffle=False)
    assert isinstance(x_tr, ds.Tensor)
    np.testing.assert_array_equal(x_te.numpy(), [7.0, 8.0, 9.0])


def test_bad_sizes_are_explained():
    with pytest.raises(ConfigError, match=r"test_size as a fraction"):
        train_test_split(np.arange(10), test_size=1.5)
    with pytest.raises(ShapeError, match="same number of samples"):
        train_test_split(np.arange(10), np.arange(9))
