"""A CSV's own conventions read as one file's, never column by column in silence: the decimal mark a
file shows in one column rules its other number columns, numbers given in memory to a run trained on
such a file are used as they are, and European numbers (110.833,84) are read or advised as such.
Every expected value is a closed form of the cells the test writes."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.encoding import NumberCell
from downslope.data.tabular import read_csv
from downslope.errors import DataError
from downslope.experiment.features import table_rows


def _rents(path, prices, sep=";"):
    """flaeche (decimal commas) ; miete (the given cells) ; y"""
    lines = ["flaeche;miete;y"] + [f"{10 + i},5;{p};{i % 7}" for i, p in enumerate(prices)]
    path.write_text("\n".join(lines).replace(";", sep) + "\n")
    return path


def test_dots_in_a_decimal_comma_file_group_thousands(tmp_path, reader):
    prices = ["465", "950", "2.207", "1.234.567", "410"] * 6
    table, encoder = read_csv(_rents(tmp_path / "miete.csv", prices), delimiter=";", task="regression")
    miete = table.X[:, table.feature_names.index("miete")]
    np.testing.assert_array_equal(miete, np.array([465, 950, 2207, 1234567, 410] * 6, dtype=np.float32))
    np.testing.assert_array_equal(table.X[:5, 0], np.array([10.5, 11.5, 12.5, 13.5, 14.5], dtype=np.float32))
    assert encoder.formats["miete"] == (",", ".")
    note = next(n for n in table.notes if "groups thousands" in n)
    assert "'miete'" in note and "'2.207' is 2207" in note and "'flaeche'" in note


def test_a_dot_that_does_not_group_thousands_in_a_decimal_comma_file_is_refused_where_it_is(tmp_path, reader):
    prices = ["465", "950", "2.207", "410"] * 5 + ["12.5"]
    path = _rents(tmp_path / "mixed.csv", prices)
    with pytest.raises(DataError) as caught:
        read_csv(path, delimiter=";", task="regression")
    said = str(caught.value)
    assert said.startswith(f"{path}:22:2 (column 'miete'): '12.5' is not a number as --decimal ',' --thousands '.'")


def test_a_decimal_point_file_reads_comma_groups_as_thousands(tmp_path, reader):
    path = tmp_path / "points.csv"
    path.write_text("a,b,y\n" + "".join(f'{i}.5,"{i},{100 + i}",{i % 3}\n' for i in range(1, 31)))
    table, _ = read_csv(path, task="regression")
    np.testing.assert_array_equal(table.X[:, 0], np.arange(1, 31) + 0.5)
    np.testing.assert_array_equal(table.X[:, 1], np.arange(1, 31) * 1000 + 100 + np.arange(1, 31))


def test_comma_groups_beside_decimal_points_in_a_semicolon_file_are_not_read_as_decimals(tmp_path, reader):
    # '1,101' could be 1.101 (a ';' file's decimal comma) or 1101; column a's decimal points say '.' marks
    # decimals, so no rule settles it: refused, naming both columns and the flags
    path = tmp_path / "semi_points.csv"
    path.write_text("a;b;y\n" + "".join(f"{i}.5;{i},{100 + i};{i % 3}\n" for i in range(1, 31)))
    with pytest.raises(DataError) as caught:
        read_csv(path, delimiter=";", task="regression")
    said = str(caught.value)
    assert "column 'b' holds numbers written like '1,101'" in said and "column 'a' writes decimal points" in said
    assert "--thousands ','" in said
    # with the flag, b's commas group thousands
    table, _ = read_csv(path, delimiter=";", thousands=",", task="regression")
    np.testing.assert_array_equal(table.X[:, 1], np.arange(1, 31) * 1000 + 100 + np.arange(1, 31))


def test_decimal_points_beside_a_decimal_comma_column_are_read_column_by_column(tmp_path, reader):
    # 0.1257 cannot group thousands: that column shows decimal points, and 2,75 cannot group them either
    path = tmp_path / "both.csv"
    path.write_text("a;rate;y\n" + "".join(f"0.{1000 + i};{i % 4},75;{i % 3}\n" for i in range(30)))
    table, _ = read_csv(path, delimiter=";", task="regression")
    np.testing.assert_array_equal(table.X[:, 0], ((np.arange(30) + 1000) / 1e4).astype(np.float32))
    np.testing.assert_array_equal(table.X[:, 1], (np.arange(30) % 4 + 0.75).astype(np.float32))


def test_european_numbers_in_a_semicolon_file_are_read_as_numbers(tmp_path, reader):
    path = tmp_path / "euro.csv"
    cells = ["110.833,84", "950", "2,5", "1.200"]
    path.write_text("preis;y\n" + "".join(f"{cells[i % 4]};{i % 5}\n" for i in range(40)))
    table, encoder = read_csv(path, delimiter=";", task="regression")
    np.testing.assert_allclose(table.X[:4, 0], np.array([110833.84, 950, 2.5, 1200], dtype=np.float32))
    assert encoder.formats["preis"] == (",", ".")


def test_european_numbers_in_a_comma_file_are_advised_as_such(tmp_path, reader):
    path = tmp_path / "euro_comma.csv"
    path.write_text("preis,y\n" + "".join(f'"{i}.{100 + i:03d},{i % 10}",{i % 5}\n' for i in range(1, 41)))
    with pytest.raises(DataError) as caught:
        read_csv(path, task="regression")
    said = str(caught.value)
    assert "--thousands . --decimal ," in said and "free text" not in said


@pytest.mark.parametrize(
    "data",
    [
        {"flaeche": [1.5], "miete": [2207.0]},
        [{"flaeche": 1.5, "miete": 2207}],
        {"flaeche": np.array([1.5]), "miete": np.array([2207], dtype=np.int64)},
    ],
    ids=["dict of floats", "row dicts", "arrays"],
)
def test_numbers_given_in_memory_are_used_as_they_are(tmp_path, data):
    prices = ["465", "950", "2.207", "410"] * 6
    _, encoder = read_csv(_rents(tmp_path / "miete.csv", prices), delimiter=";", task="regression")
    encoder.stage = "predict"
    where, header, rows = table_rows(data)
    assert isinstance(rows[0][0], NumberCell)
    X = encoder.encode_features(header, rows, where)
    np.testing.assert_array_equal(X, np.array([[1.5, 2207.0]], dtype=np.float32))
    # text given in memory is still held to the file's rule: '1.5' is no number there
    where, header, rows = table_rows({"flaeche": ["1.5"], "miete": ["2.207"]})
    with pytest.raises(DataError, match="'1.5' is not a number as --decimal ','"):
        encoder.encode_features(header, rows, where)


def test_an_unclosed_quote_is_named_with_the_lines_its_cell_swallowed(tmp_path):
    from downslope.data.csvfile import read_rows
    from downslope.errors import DataError

    p = tmp_path / "unterminated.csv"
    p.write_text('a,b,y\n1,"abc,0\n' + "".join(f"{i},{i},{i % 2}\n" for i in range(1, 51)))
    with pytest.raises(
        DataError,
        match=r"unterminated\.csv:2: expected 3 fields .*, got 2; field 2 is a quoted cell "
        r"running from line 2 to line 52: is a closing quote",
    ):
        read_rows(p)
