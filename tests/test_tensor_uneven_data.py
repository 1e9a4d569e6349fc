"""Nested lists that are not rectangular: ds.tensor says where, in torch's words."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "data",
    [[[1, 2], [3]], [[[1, 2], [3, 4]], [[1, 2], [3]]], [[1, 2], []], ([1.0, 2.0], (3.0,))],
    ids=["dim1", "dim2", "empty row", "tuples"],
)
def test_uneven_lists_are_refused_with_torchs_message(data) -> None:
    with pytest.raises(ValueError) as theirs:
        torch.tensor(data)
    with pytest.raises(ValueError, match="cannot make a tensor") as ours:
        ds.tensor(data)
    assert str(theirs.value) in str(ours.value)  # "expected sequence of length 2 at dim 1 (got 1)"
    assert isinstance(ours.value, ds.DownslopeError) and isinstance(ours.value, TypeError)  # as other refused data


def test_a_number_where_a_row_belongs_is_named() -> None:
    with pytest.raises(ValueError, match="expected sequence of length 2 at dim 1 \\(got int\\)"):
        ds.tensor([[1, 2], 3])
    with pytest.raises(ValueError, match="expected a number at dim 1 \\(got a sequence of length 2\\)"):
        ds.tensor([1, [2, 3]])
