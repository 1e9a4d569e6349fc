"""Binary files under a .csv name (a Parquet file, a NumPy array, an Excel workbook or a zip archive
renamed) are named for what they are, with what to do, not diagnosed as UTF-16 text."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from downslope.data.tabular import read_csv
from downslope.errors import DataError


def _refusal(path):
    with pytest.raises(DataError) as caught:
        read_csv(path)
    said = str(caught.value)
    assert "UTF-16" not in said and "iconv" not in said
    return said


def test_parquet_named_csv(tmp_path, reader):
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "pq.csv"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}), path)
    said = _refusal(path)
    assert said.startswith(f"{path}: the file is a Parquet file (it starts with 'PAR1'), not CSV text")
    assert "rename it to 'pq.parquet'" in said


def test_npy_named_csv(tmp_path, reader):
    path = tmp_path / "np.csv"
    with open(path, "wb") as handle:
        np.save(handle, np.arange(10.0))
    said = _refusal(path)
    assert said.startswith(f"{path}: the file is a NumPy .npy array file") and "rename it to 'np.npy'" in said


def test_xlsx_and_zip_named_csv(tmp_path, reader):
    book = tmp_path / "book.csv"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    said = _refusal(book)
    assert said.startswith(f"{book}: the file is a spreadsheet workbook") and "'book.xlsx'" in said
    assert "read_excel" in said
    archive = tmp_path / "many.csv"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.csv", "x,y\n" + "\x00" * 100)
    said = _refusal(archive)
    assert said.startswith(f"{archive}: the file is a zip archive (holding a.csv)") and "unzip it" in said


def test_utf16_text_is_still_told_how_to_convert(tmp_path, reader):
    path = tmp_path / "u.csv"
    path.write_text("a,b\n1,2\n3,4\n", encoding="utf-16")
    with pytest.raises(DataError, match="UTF-16 text"):
        read_csv(path)


def test_random_bytes_are_named_not_text_rather_than_a_legacy_encoding(tmp_path):
    import numpy as np

    from downslope.data.csvfile import read_rows
    from downslope.errors import DataError

    p = tmp_path / "garbage.csv"
    p.write_bytes(np.random.default_rng(0).integers(1, 256, 100_000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError) as caught:
        read_rows(p)
    said = str(caught.value)
    assert "control characters" in said and "cp1252" not in said, said


def test_latin1_text_keeps_the_legacy_encoding_advice(tmp_path):
    from downslope.data.csvfile import read_rows
    from downslope.errors import DataError

    p = tmp_path / "d.csv"
    p.write_bytes("name,y\nJosé,1\nRenée,0\n".encode("cp1252"))
    with pytest.raises(DataError, match="cp1252"):
        read_rows(p)
