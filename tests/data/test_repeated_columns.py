"""The note naming a numeric column that repeats another: whole columns compared, not their first rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from downslope.data import readers
from downslope.data.tabular import read_csv


@pytest.mark.parametrize("fast", [True, False])
def test_columns_alike_at_first_are_no_repeat(tmp_path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # 'b' equals 'a' in its first 100 rows only; 'c' equals 'a' in every row; 'd' equals 'b' in every row
    rows = []
    for i in range(300):
        a = float(i % 11)
        b = a if i < 100 else a + 0.5
        rows.append(f"{a},{b},{a},{b},{i % 3}")
    path = tmp_path / "t.csv"
    path.write_text("a,b,c,d,y\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(readers, "FAST_CSV", fast)
    table, _ = read_csv(path, target="y", task="regression")
    said = [note for note in table.notes if "repeats" in note]
    assert said == [
        f"{path}: column 'c' repeats column 'a'; column 'd' repeats column 'b' in every row, a copy that adds "
        "nothing: kept; --drop c,d leaves them out"
    ]
