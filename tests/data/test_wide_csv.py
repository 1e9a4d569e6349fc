"""A CSV of many columns is read by the wide reader (Python's csv module and the pure-Python cell
rules, classified per distinct text): it must give what the Arrow reader and the pure-Python reader
give, cell for cell and error for error, with memory and time per cell rather than per column."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data import readers
from downslope.data.tabular import read_table
from downslope.errors import DataError

pytestmark = pytest.mark.host_only

FILES = {
    "numbers": "a,b,c,y\n1,2.5,-3,0\n4,5e3,6,1\n7,8,9,0\n1.5,2,3,1\n",
    "text and missing": "a,colour,c,y\n1,red,,x\n2,blue,NA,y\n3, red ,4,x\n?,green,5,y\n",
    "spaces and odd numbers": "a,b,y\n 1 ,-nan,0\n1_000,inf,1\n2,3,0\n",
    "float32 overflow": "a,b,y\n1,1e39,0\n2,3,1\n",
    "stray word": "a,b,y\n1,2,0\n3,oops,1\n4,5,0\n6,7,1\n8,9,0\n",
    "blank lines": "a,b,y\n1,2,0\n\n3,4,1\n   \n5,6,0\n",
    "quoted newline": 'a,b,y\n1,"x\ny",0\n2,z,1\n3,x,0\n',
    "regression target": "a,b,y\n1,2,0.5\n3,4,1.25\n5,6,2.0\n",
    "text labels": "a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n",
}


def _read(path, monkeypatch, mode, **options):
    with monkeypatch.context() as m:
        if mode == "wide":
            m.setattr(readers, "WIDE_COLUMNS", 1)
            m.setattr(readers, "WIDE_BLOCK_CELLS", 5)  # several blocks, one or two rows each
        elif mode == "python":
            m.setattr(readers, "FAST_CSV", False)
        try:
            table, encoder = read_table(path, target="y", **options)
        except DataError as exc:
            return ("error", str(exc))
    return (table.X, np.asarray(table.y), encoder.feature_names if encoder else None, table.class_names)


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("missing", ["error", "mean"])
def test_the_wide_reader_agrees_with_the_others(tmp_path, monkeypatch, name, missing):
    path = tmp_path / "t.csv"
    path.write_text(FILES[name])
    wide = _read(path, monkeypatch, "wide", missing=missing)
    for mode in ("python",) + (("arrow",) if readers.fast_csv_available() else ()):
        other = _read(path, monkeypatch, mode, missing=missing)
        assert type(wide[0]) is type(other[0]), (mode, wide, other)
        if isinstance(wide[0], str):
            assert wide == other, mode
            continue
        np.testing.assert_array_equal(wide[0], other[0])
        np.testing.assert_array_equal(wide[1], other[1])
        assert wide[2:] == other[2:], mode


def test_a_ragged_row_is_left_to_the_pure_python_reader(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n1,2,0\n3,4\n5,6,1\n")
    wide = _read(path, monkeypatch, "wide")
    assert wide == _read(path, monkeypatch, "python") and wide[0] == "error" and ":3" in wide[1], wide


@pytest.mark.slow
def test_a_wide_file_costs_per_cell_not_per_column(tmp_path):
    """12 rows x 20,000 columns: Arrow's reader took ~3 GB per 100,000 columns; the wide one ~1 KB per column."""
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads the peak memory from Linux's /proc/self/status")
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.csv"
    with open(path, "w") as f:
        f.write(",".join(f"f{j}" for j in range(20_000)) + ",y\n")
        for i in range(12):
            f.write(",".join(map(str, rng.integers(0, 10, 20_000))) + f",{i % 2}\n")
    code = (
        "from downslope.data.tabular import read_table; "
        f"t, _ = read_table({str(path)!r}, target='y'); assert t.X.shape == (12, 20000); "
        # VmHWM, the peak of this process's own memory: ru_maxrss would carry over the forking pytest
        # process's peak (Linux keeps the larger across exec)
        "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 600 * 1024, done.stdout  # KB: under 600 MB (NumPy, pyarrow imported)


@pytest.mark.parametrize("reader", ["wide", "python", "arrow"])
def test_the_first_bad_cell_of_many_numeric_columns_is_named_by_row(tmp_path, monkeypatch, reader):
    # the numeric columns are checked in blocks of columns at once: the row reported must still be the
    # first one holding a bad cell, whichever column holds it (here a later column on an earlier row)
    path = tmp_path / "w.csv"
    rows = [[str((i * j) % 5) for j in range(300)] for i in range(6)]
    rows[4][3] = "oops"
    rows[2][250] = "1e999"  # overflows float32 (and float64): not a number a feature can hold
    path.write_text(
        ",".join(f"f{j}" for j in range(300))
        + ",y\n"
        + "".join(",".join(r) + f",{i % 2}\n" for i, r in enumerate(rows))
    )
    from downslope.data import columns

    monkeypatch.setattr(columns, "_CHECK_BLOCK_CELLS", 60)  # blocks of 10 columns: the bad cells in two
    said = _read(path, monkeypatch, reader)
    assert said[0] == "error" and ":4" in said[1] and "f250" in said[1], said
