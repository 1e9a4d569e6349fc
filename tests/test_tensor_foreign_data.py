"""Data from other libraries that torch refuses or converts: negative strides (from_numpy, DLPack), a
torch bfloat16 tensor through from_dlpack, pandas nullable columns holding <NA>."""

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.host_only
def test_from_numpy_refuses_negative_strides_as_torch():
    reversed_rows = np.arange(6.0).reshape(2, 3)[:, ::-1]
    with pytest.raises(ValueError, match="negative") as expected:
        torch.from_numpy(reversed_rows)
    with pytest.raises(ValueError, match="(?i)at least one stride in the given numpy array is negative"):
        ds.from_numpy(reversed_rows)
    assert "copy" in str(expected.value)
    assert ds.from_numpy(reversed_rows.copy()).tolist() == reversed_rows.tolist()


@pytest.mark.host_only
def test_a_tensor_with_negative_strides_goes_to_torch_as_a_copy_never_as_negative_strides():
    # before: torch.from_dlpack aborted the whole process (C++ terminate) on NumPy's negative strides
    values = np.arange(5, dtype=np.float32)[::-1]
    t = ds.as_tensor(values)  # shares the reversed view
    assert t.array.strides[0] < 0
    out = torch.from_dlpack(t)
    assert out.tolist() == [4.0, 3.0, 2.0, 1.0, 0.0] and all(s > 0 for s in out.stride())
    with pytest.raises(BufferError, match="negative"):
        t.__dlpack__(copy=False)
    plain = ds.arange(4.0)
    shared = torch.from_dlpack(plain)
    plain[0] = 9.0
    assert shared[0].item() == 9.0  # positive strides are still shared, not copied


def test_from_dlpack_of_bfloat16_names_the_dtype_and_the_fix():
    with pytest.raises(TypeError, match=r"bfloat16 is not a downslope dtype.*t\.float\(\)"):
        ds.from_dlpack(torch.ones(2, dtype=torch.bfloat16))
    assert ds.from_dlpack(torch.ones(2, dtype=torch.bfloat16).float()).dtype == ds.float32


@pytest.mark.parametrize(
    "make",
    [
        lambda pd: pd.Series([1, None, 3], dtype="Int64"),
        lambda pd: pd.Series([1.5, None], dtype="Float64"),
        lambda pd: pd.array([True, None], dtype="boolean"),
        lambda pd: pd.DataFrame({"a": pd.Series([1, None], dtype="Int64"), "b": [1.0, 2.0]}),
    ],
)
def test_pandas_nullable_data_with_missing_values_is_refused_as_torch_refuses_it(make):
    pd = pytest.importorskip("pandas")
    data = make(pd)
    if not isinstance(data, pd.DataFrame):
        with pytest.raises(RuntimeError, match="NAType"):
            torch.tensor(data)
    with pytest.raises(TypeError, match=r"missing values \(<NA>\).*fillna"):
        ds.tensor(data)


def test_pandas_nullable_data_without_missing_values_keeps_torchs_dtype():
    pd = pytest.importorskip("pandas")
    for data, dtype in (
        (pd.Series([1, 2], dtype="Int64"), ds.int64),
        (pd.Series([True, False], dtype="boolean"), ds.bool),
        (pd.Series([1.0, np.nan]), ds.float32),  # a plain float column's NaN is a value, as in torch
    ):
        t = ds.tensor(data)
        assert t.dtype == dtype and t.tolist()[:1] == [data.iloc[0]]
    assert torch.tensor(pd.Series([1, 2], dtype="Int64")).dtype == torch.int64
