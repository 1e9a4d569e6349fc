"""A NUL byte in a CSV (a file zero-filled by a crash, a disk error) is refused by name, with its line
and column, by both readers; the message holds no raw NUL (it is pasted into shells)."""

from __future__ import annotations

import gzip

import pytest

from downslope.data import readers
from downslope.data.csvfile import read_csv, read_rows
from downslope.errors import DataError

_ROWS = "".join(f"{i * 0.5},{'ab'[i % 2]},{i % 2}\n" for i in range(40))


@pytest.fixture(params=[True, False], ids=["fast", "python"])
def reader(request, monkeypatch):
    if request.param and not readers.fast_csv_available():
        pytest.skip("pyarrow not installed")
    monkeypatch.setattr(readers, "FAST_CSV", request.param)
    return request.param


def _refused(path) -> str:
    with pytest.raises(DataError) as caught:
        read_csv(path, target="y")
    said = str(caught.value)
    assert "\x00" not in said and "NUL byte" in said, said
    return said


def test_a_nul_in_a_numeric_cell_names_line_and_column(tmp_path, reader):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,b,y\n" + _ROWS.encode() + b"1.\x00203,a,1\n" + _ROWS.encode())
    assert _refused(p).startswith(f"{p}:42:1 (column 'a'):")


def test_a_nul_in_a_text_cell_is_not_a_new_category(tmp_path, reader):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,b,y\n" + _ROWS.encode() + b'2.5,"x",1\n3.5,\x00b,0\n')
    assert _refused(p).startswith(f"{p}:43:2 (column 'b'):")


def test_nuls_in_the_header_are_named_there(tmp_path, reader):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,\x00b,y\n" + _ROWS.encode())
    assert _refused(p).startswith(f"{p}:1:2:") and "in the header" in _refused(p)


def test_a_zero_filled_tail_in_a_gzip_file(tmp_path, reader):
    p = tmp_path / "d.csv.gz"
    p.write_bytes(gzip.compress(b"a,b,y\n" + _ROWS.encode() + b"\x00" * 100 + b"\n"))
    assert f"{p}:42:1 (column 'a')" in _refused(p)


def test_read_rows_refuses_too(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,b\n1,2\n3,\x004\n")
    with pytest.raises(DataError, match=r"d\.csv:3:2 \(column 'b'\): the file holds a NUL byte"):
        read_rows(p)


def test_a_file_without_nul_reads_as_before(tmp_path, reader):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,b,y\n" + _ROWS.encode())
    table, _ = read_csv(p, target="y")
    assert len(table.y) == 40


def test_a_file_zero_filled_from_its_first_byte_is_refused_before_it_is_read(tmp_path, reader):
    # what `truncate -s 2G` or a preallocated file leaves: NULs in every byte lane, not UTF-16/32 text
    # (which has NULs in some lanes only); the whole 64 MiB would be read before this check existed
    p = tmp_path / "zeros.csv"
    with open(p, "wb") as f:
        f.truncate(64 << 20)
    assert _refused(p).startswith(f"{p}:1:1:")


def test_a_short_text_head_then_zeros_is_refused_at_the_first_nul(tmp_path, reader):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,b,y\n1,2,0\n" + b"\x00" * 100)
    assert _refused(p).startswith(f"{p}:3:1")


def test_utf16_text_without_a_byte_order_mark_is_still_left_to_the_encoding_advice(tmp_path, reader):
    p = tmp_path / "d.csv"
    p.write_bytes(("a,b,y\n" + _ROWS).encode("utf-16-le"))
    with pytest.raises(DataError) as caught:
        read_csv(p, target="y")
    assert str(caught.value).startswith(f"{p}: the file is UTF-16LE text without a byte-order mark"), str(caught.value)
