"""pack_padded_sequence(enforce_sorted=False) sorts equal lengths as torch does (its sort's CPU order
past 16 sequences); pad_sequence refuses mismatched trailing dims by name, index and given shape."""

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import ShapeError


@pytest.mark.host_only  # torch's order among equal lengths is replayed on the host
@pytest.mark.parametrize("lengths", [[2] * 19, [3, 5, 3, 3, 5, 1], [1, 2, 3, 2, 1, 3] * 5, [4] * 40 + [2] * 10])
def test_pack_padded_sequence_sorted_indices_as_torch(lengths: list[int]) -> None:
    x = np.random.default_rng(0).standard_normal((len(lengths), max(lengths), 3)).astype(np.float32)
    want = torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(x), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    got = ds.nn.utils.rnn.pack_padded_sequence(ds.tensor(x), ds.tensor(lengths), batch_first=True, enforce_sorted=False)
    np.testing.assert_array_equal(got.sorted_indices.numpy(), want.sorted_indices.numpy())
    np.testing.assert_array_equal(got.unsorted_indices.numpy(), want.unsorted_indices.numpy())
    np.testing.assert_array_equal(got.batch_sizes.numpy(), want.batch_sizes.numpy())
    np.testing.assert_array_equal(got.data.numpy(), want.data.numpy())


def test_pad_sequence_trailing_dims_message() -> None:
    with pytest.raises(RuntimeError, match="size of tensor a \\(2\\) must match the size of tensor b \\(3\\)"):
        torch.nn.utils.rnn.pad_sequence([torch.zeros(3, 2), torch.zeros(2, 3)])
    with pytest.raises(ShapeError) as info:
        ds.nn.utils.rnn.pad_sequence([ds.zeros(3, 2), ds.zeros(2, 3)])
    text = str(info.value)
    assert text.startswith("pad_sequence: sequence 1 has shape (2, 3)")
    assert "the size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 1" in text


def test_pad_sequence_dim_count_message() -> None:
    with pytest.raises(ShapeError, match="pad_sequence: sequence 2 has shape \\(2, 3, 1\\)"):
        ds.nn.utils.rnn.pad_sequence([ds.zeros(3, 3), ds.zeros(1, 3), ds.zeros(2, 3, 1)])


def test_pad_sequence_equal_trailing_dims_still_pads() -> None:
    seqs = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((1, 2), np.float32)]
    got = ds.nn.utils.rnn.pad_sequence([ds.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0)
    want = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
