"""Large-valued numeric columns (unix seconds) keep their spread through the float32 cast: the encoder
subtracts an offset in float64 first (TabularEncoder.offsets), on both CSV readers and for new data."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.encoding import TabularEncoder, float32_offset
from downslope.data.tabular import read_table


def _timestamps(tmp_path, n=300):
    rng = np.random.default_rng(3)
    t = 1.7e9 + rng.uniform(0, 3600, n)
    x = rng.normal(size=n)
    y = 0.01 * (t - 1.7e9) + 2 * x
    path = tmp_path / "tr.csv"
    np.savetxt(path, np.c_[t, x, y], delimiter=",", header="ts,x,y", comments="", fmt="%.4f")
    return path, np.round(t, 4), x


@pytest.mark.parametrize("reader", ["columns", "rows"])
def test_unix_seconds_keep_their_spread_in_the_features(tmp_path, monkeypatch, reader):
    path, t, _ = _timestamps(tmp_path)
    if reader == "rows":  # the pure-Python reader (what a file the fast reader declines goes through)
        from downslope.data import readers

        monkeypatch.setattr(readers, "fast_csv_available", lambda: False)
    table, encoder = read_table(path)
    offset = encoder.offsets["ts"]
    assert offset == np.round(np.median(t))
    # in float32 as such, 1.7e9 is a multiple of 128: the values would be up to 64 s off
    assert np.abs(table.X[:, 0].astype(np.float64) + offset - t).max() < 1e-3
    assert "x" not in encoder.offsets  # ordinary columns are encoded as they are


def test_new_data_is_shifted_by_the_training_offset(tmp_path):
    path, _, _ = _timestamps(tmp_path)
    _, encoder = read_table(path)
    again = TabularEncoder.from_state_dict(encoder.state_dict())
    again.stage = "predict"
    X = again.encode_features(["ts", "x"], [["1700001000.5", "0"], ["1700001040.5", "1"]], "new.csv")
    np.testing.assert_array_equal(
        X[:, 0].astype(np.float64), np.array([1700001000.5, 1700001040.5]) - encoder.offsets["ts"]
    )


def test_a_run_saved_before_offsets_encodes_numbers_as_it_did():
    old = {"columns": ["ts"], "target": "y", "categories": {}, "task": "regression", "classes": [], "missing": "error"}
    encoder = TabularEncoder.from_state_dict(old)
    X = encoder.encode_features(["ts"], [["1700001000.5"], ["1700001040.5"]], "new.csv")
    np.testing.assert_array_equal(X[:, 0], np.float32([1700001000.5, 1700001040.5]))
    assert "offsets" not in encoder.state_dict()


def test_offset_only_where_float32_would_lose_precision():
    assert float32_offset(np.array([1.0, 2.5, 7.0, np.nan])) == 0.0
    assert float32_offset(np.full(5, 1.7e9)) == 0.0  # constant: nothing to keep
    assert float32_offset(np.array([1e5, 1e5 + 1.0, 1e5 + 2.0])) == 1e5 + 1.0
