import numpy as np
import pytest

import downslope as ds
from downslope.data import ArrayDataset, Dataset, Subset, TensorDataset
from downslope.errors import DataError, ShapeError


def test_dtype_policy_float32_and_torch_s_integers():
    # float64 -> float32 (the library's policy); int32 kept as torch keeps it; uint16 (no such dtype here) -> int64
    data = ArrayDataset(
        np.ones((4, 2), np.float64), np.arange(4, dtype=np.int32), np.zeros(4, bool), np.arange(4, dtype=np.uint16)
    )
    assert [a.dtype for a in data.arrays] == [np.float32, np.int32, np.bool_, np.int64]
    assert all(a.flags.c_contiguous for a in data.arrays)


def test_tensor_dataset_accepts_tensors_and_indexes_samples():
    x = ds.tensor(np.arange(6.0).reshape(3, 2))
    data = TensorDataset(x, ds.tensor([5, 6, 7]))
    xi, yi = data[1]
    np.testing.assert_array_equal(xi, [2.0, 3.0])
    assert int(yi) == 6
    assert len(data) == 3
    with pytest.raises(IndexError, match="out of range for 3 samples"):
        data[3]


def test_mismatched_lengths_name_the_shapes():
    with pytest.raises(ShapeError, match=r"\(5, 2\).*\(4,\)"):
        ArrayDataset(np.zeros((5, 2)), np.zeros(4))


def test_empty_and_scalar_and_string_data_are_refused():
    with pytest.raises(DataError, match="empty"):
        ArrayDataset(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="scalar"):
        ArrayDataset(np.float32(1.0))
    with pytest.raises(TypeError, match="numeric"):
        ArrayDataset(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="at least one array"):
        ArrayDataset()


def test_non_finite_values_are_reported_with_row_and_column():
    x = np.zeros((6, 3))
    x[4, 2] = np.nan
    x[5, 0] = np.inf
    with pytest.raises(DataError, match=r"2 non-finite.*row 4, column 2"):
        ArrayDataset(x)
    assert np.isnan(ArrayDataset(x, check_finite=False).arrays[0][4, 2])


def test_subset_gathers_parent_arrays_and_items():
    base = ArrayDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    part = Subset(base, [4, 0, -1])
    assert len(part) == 3
    np.testing.assert_array_equal(part.arrays[1], [4, 0, 4])
    np.testing.assert_array_equal(part[0][0], [8.0, 9.0])
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        Subset(base, [5])


def test_dataset_base_says_what_to_define():
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())


def test_random_split_indices_are_python_ints_as_in_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        parts = lib.utils.data.random_split(range(10), [0.6, 0.4], generator=lib.Generator().manual_seed(0))
        assert type(parts[0].indices) is list and all(type(i) is int for p in parts for i in p.indices), lib.__name__
        assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    part = Subset(ArrayDataset(np.arange(10.0)), np.array([-1, 2]))
    assert part.indices == [9, 2] and float(part[0][0]) == 9.0
    part.indices = [3]
    assert len(part) == 1 and float(part[0][0]) == 3.0 and part.arrays[0].tolist() == [3.0]
