"""Fixtures shared by the CSV tests: each runs once with the pure-Python reader and once with pyarrow's."""

from __future__ import annotations

import pytest

from downslope.data import readers


@pytest.fixture(params=["pure", "fast"])
def reader(request, monkeypatch):
    """'pure' with pyarrow's reader switched off, 'fast' with it (skipped where pyarrow is missing)."""
    if request.param == "pure":
        monkeypatch.setattr(readers, "fast_csv_available", lambda: False)
    elif not readers.fast_csv_available():
        pytest.skip("needs pyarrow")
    return request.param
