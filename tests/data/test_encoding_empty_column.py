"""Small messages: a column with no value at all under --missing error says so (and --drop), on both
CSV readers; 'only 1 sample' in the singular."""

from __future__ import annotations

import pytest

from downslope.data.tabular import read_table
from downslope.errors import ConfigError, DataError


@pytest.mark.parametrize("reader", ["columns", "rows"])
def test_an_all_empty_column_is_named_with_drop(tmp_path, monkeypatch, reader):
    if reader == "rows":
        from downslope.data import readers

        monkeypatch.setattr(readers, "fast_csv_available", lambda: False)
    path = tmp_path / "t.csv"
    path.write_text("a,empty,y\n" + "".join(f"{i},,{2 * i}\n" for i in range(30)))
    with pytest.raises(
        DataError, match=r"column 'empty' has no values \(every cell is empty\); leave it out with --drop empty"
    ):
        read_table(path, target="y")
    table, encoder = read_table(path, target="y", missing="mean")  # filling leaves such a column out
    assert encoder is not None and encoder.columns == ["a"]


def test_one_sample_is_singular(tmp_path):
    from downslope.experiment import normalize_config, prepare

    path = tmp_path / "one.csv"
    path.write_text("a,y\n1,2\n")
    with pytest.raises(ConfigError, match=r"only 1 sample; need at least 10"):
        prepare(normalize_config({"data": str(path), "target": "y", "task": "regression"}))
