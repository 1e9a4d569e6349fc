"""A feature matrix that would not fit in memory is refused with advice that fits it: dropping or capping
one-hot columns when they are most of the width, fewer rows or columns (or a memory-mapped .npy) when the
columns are numbers."""

from __future__ import annotations

import pytest

from downslope.data import encoding
from downslope.errors import DataError


@pytest.fixture
def little_memory(monkeypatch):
    monkeypatch.setattr(encoding, "memory_available", lambda: 1 << 20)


def test_an_all_numeric_table_is_not_told_to_drop_one_hot_columns(little_memory):
    with pytest.raises(DataError) as caught:
        encoding.check_one_hot_memory("big.csv", 1_000_000, 10, {})
    said = str(caught.value)
    assert "one-hot" not in said and "widest" not in said, said
    assert "fewer rows or columns" in said and ".npy" in said, said


def test_wide_one_hot_blocks_are_named_widest_first(little_memory):
    categories = {"city": [f"c{i}" for i in range(500)], "zip": [f"z{i}" for i in range(900)]}
    with pytest.raises(DataError, match=r"--drop \(widest: 'zip' \(900 categories\), 'city' \(500 categories\)\)"):
        encoding.check_one_hot_memory("big.csv", 100_000, 3, categories)


def test_a_table_that_fits_passes(monkeypatch):
    monkeypatch.setattr(encoding, "memory_available", lambda: 1 << 40)
    encoding.check_one_hot_memory("big.csv", 1_000_000, 10, {})
