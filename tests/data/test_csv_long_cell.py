"""A cell longer than Python csv's field limit, read by the pure-Python reader: refused naming the
line and the column of that cell (the line may be hundreds of megabytes; it is scanned, not split)."""

from __future__ import annotations

import pytest

from downslope.data.csvfile import read_rows
from downslope.errors import DataError


@pytest.mark.parametrize(("cells", "column"), [("1,{long},1", 2), ('1,"a,b",{long}', 3), ('"{long}",2,3', 1)])
def test_a_cell_over_the_field_limit_names_its_line_and_column(tmp_path, cells, column):
    path = tmp_path / "long.csv"
    rows = ["a,b,c"] + [f"{i},{i},{i}" for i in range(4)] + [cells.format(long="x" * 200_000), "9,9,9"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=rf"long\.csv:6, column {column}: malformed CSV: field larger"):
        read_rows(path)
