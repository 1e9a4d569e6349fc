"""Numbers a spreadsheet wrote in messy ways are read under one rule per column, or refused with advice,
never read two ways or one-hot encoded in silence: cells not written in a declared --decimal/--thousands
format, money and other grouped numbers with few distinct values, and commas that could be thousands
separators or decimal marks (pandas is the reference for what a declared format makes of a cell)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.encoding import TabularEncoder
from downslope.data.tabular import read_csv
from downslope.errors import DataError

pd = pytest.importorskip("pandas")


def _write(path, header, cells, sep=","):
    path.write_text(header + "\n" + "".join(f"{c}{sep}{i % 5},5\n" for i, c in enumerate(cells)))
    return path


def test_a_cell_not_in_the_declared_format_is_refused_where_it_is(tmp_path, reader):
    path = _write(tmp_path / "mixed.csv", "x;y", ["0.038", "0.0381"] * 15, sep=";")
    # pandas reads both cells under the one rule: 38 and 381 (never 0.0381)
    assert sorted(set(pd.read_csv(path, sep=";", decimal=",", thousands=".").x)) == [38, 381]
    with pytest.raises(DataError) as caught:
        read_csv(path, delimiter=";", decimal=",", thousands=".", task="regression")
    said = str(caught.value)
    assert said.startswith(f"{path}:3:1 (column 'x'): '0.0381' is not a number as --decimal ',' --thousands '.'")
    assert "it is 381 (as pandas reads it), not 0.0381" in said


def test_a_column_written_in_the_declared_format_reads_as_pandas_reads_it(tmp_path, reader):
    path = _write(tmp_path / "ok.csv", "x;y", ["0.038", "1.234,5", "7", "12,25"] * 8, sep=";")
    table, _ = read_csv(path, delimiter=";", decimal=",", thousands=".", task="regression")
    expected = pd.read_csv(path, sep=";", decimal=",", thousands=".").x.to_numpy(np.float64)
    np.testing.assert_array_equal(table.X[:, 0], expected.astype(np.float32))


def test_a_dot_decimal_cell_under_a_declared_decimal_comma_is_refused(tmp_path, reader):
    path = _write(tmp_path / "dots.csv", "x;y", ["2,75", "1"] * 10 + ["2.5"], sep=";")
    assert not pd.api.types.is_numeric_dtype(pd.read_csv(path, sep=";", decimal=",").x)  # no number so
    with pytest.raises(DataError, match=r"dots.csv:22:1 \(column 'x'\): '2.5' is not a number as --decimal ','"):
        read_csv(path, delimiter=";", decimal=",", task="regression")


def test_new_data_is_held_to_the_trained_format():
    encoder = TabularEncoder(["x"], "y", {}, "regression", [], formats={"x": (",", ".")})
    encoder.stage = "predict"
    np.testing.assert_array_equal(encoder.encode_features(["x"], [["1.234,5"], ["38"]], "new.csv"), [[1234.5], [38]])
    with pytest.raises(DataError, match=r"^new.csv:3:1 \(column 'x'\): '0.0381' is not a number as"):
        encoder.encode_features(["x"], [["0.038"], ["0.0381"]], "new.csv")


MONEY = {
    "dollars": lambda r: f'"${r:,.2f}"',
    "accounting": lambda r: f'"({r:,.2f})"' if r % 100 else f'"{r:,.2f}"',
    "spaces": lambda r: f'"{r:,}"'.replace(",", " "),
    "euros": lambda r: '"€' + f"{r:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") + '"',
}


@pytest.mark.parametrize("kind", sorted(MONEY))
def test_money_with_few_values_is_not_one_hot_encoded(tmp_path, reader, kind):
    rng = np.random.default_rng(0)
    rent = rng.choice(np.arange(800, 3800, 50), 300)  # 60 distinct values, fewer than --max-categories
    lines = ["rent,price"] + [f"{MONEY[kind](int(r))},{200000 + 90 * r}" for r in rent]
    path = tmp_path / "rent.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        read_csv(path, target="price")
    said = str(caught.value)
    assert said.startswith(f"{path}: column 'rent' is text with ") and "not categories" in said
    assert "--drop rent" in said
    if kind == "euros":
        assert "--decimal ',' --thousands '.'" in said


def test_categories_that_are_words_or_codes_stay_categories(tmp_path, reader):
    path = tmp_path / "c.csv"
    path.write_text("kind,y\n" + "".join(f"{['red', 'A-1', 'x 2'][i % 3]},{i % 4}.5\n" for i in range(30)))
    table, encoder = read_csv(path)
    assert encoder.categories == {"kind": ["A-1", "red", "x 2"]}


def test_commas_that_may_be_decimals_in_a_comma_separated_file_are_refused(tmp_path, reader):
    path = tmp_path / "amb.csv"
    cells = ['"1,200"', '"12,000"', '"3,5"', "250"] * 15
    path.write_text("x,y\n" + "".join(f"{c},{i % 4}\n" for i, c in enumerate(cells)))
    with pytest.raises(DataError) as caught:
        read_csv(path, task="regression")
    said = str(caught.value)
    assert said.startswith(f"{path}: column 'x' holds numbers written with commas ('3,5', ...)")
    assert "--thousands ','" in said and "--decimal ','" in said
    # said either way, it reads as pandas does
    table, _ = read_csv(path, task="regression", decimal=",")
    assert table.X[2, 0] == np.float32(3.5) and table.X[0, 0] == np.float32(1.2)


def test_grouped_commas_and_semicolon_decimal_commas_are_still_found(tmp_path, reader):
    grouped = tmp_path / "g.csv"
    grouped.write_text("x,y\n" + "".join(f'"{1000 + 37 * i:,}",{i % 4}.5\n' for i in range(30)))
    table, _ = read_csv(grouped, task="regression")
    np.testing.assert_array_equal(table.X[:, 0], pd.read_csv(grouped, thousands=",").x.to_numpy(np.float32))
    assert any("written like '1,000'" in n for n in table.notes)
    semi = tmp_path / "s.csv"
    semi.write_text("x;y\n" + "".join(f"{i},{i % 3};{i % 4}\n" for i in range(30)))
    table, _ = read_csv(semi, delimiter=";", task="regression")
    np.testing.assert_allclose(table.X[:, 0], pd.read_csv(semi, sep=";", decimal=",").x.to_numpy(np.float32))


def test_percent_cells_are_noted_under_a_given_thousands_separator_too(tmp_path, reader):
    path = tmp_path / "pct.csv"
    path.write_text("rate,amount,y\n" + "".join(f'{i % 9 + 1}.5%,"{1000 + i * 37:,}",{i % 4}.5\n' for i in range(60)))
    for options in ({}, {"thousands": ","}):
        table, _ = read_csv(path, task="regression", **options)
        said = [n for n in table.notes if "'rate'" in n]
        assert said == [
            f"{path}: column 'rate' holds numbers written like '1.5%': read as numbers (the apostrophe or % sign stripped)"
        ]
        np.testing.assert_array_equal(table.X[:3, 0], np.float32([1.5, 2.5, 3.5]))


def test_columns_written_alike_get_one_note(tmp_path, reader):
    path = tmp_path / "wine.csv"
    names = [f"c{k}" for k in range(5)]
    rows = "".join(";".join(f"{k},{i % 10}" for k in range(5)) + f";{i % 3}\n" for i in range(30))
    path.write_text(";".join(names) + ";quality\n" + rows)
    table, _ = read_csv(path, delimiter=";")
    said = [n for n in table.notes if "written like" in n]
    assert said == [
        f"{path}: columns 'c0', 'c1', 'c2', 'c3', 'c4' hold numbers written like '0,0': read as numbers (as with --decimal ',')"
    ]


def test_constant_and_repeated_columns_are_named_not_dropped(tmp_path, reader):
    path = tmp_path / "useless.csv"
    rows = "".join(f"{i % 7}.5,1,{i % 7}.5,same,{i % 3},{i % 4}\n" for i in range(30))
    path.write_text("a,one,a_copy,word,b,y\n" + rows)
    table, encoder = read_csv(path, task="regression")
    assert encoder.columns == ["a", "one", "a_copy", "word", "b"]  # kept
    frame = pd.read_csv(path)
    constant = [c for c in frame.columns[:-1] if frame[c].nunique() == 1]
    assert constant == ["one", "word"]
    assert (
        f"{path}: columns 'one', 'word' hold one value in every row, which tells the model nothing: kept; --drop one,word leaves them out"
        in table.notes
    )
    assert (
        f"{path}: column 'a_copy' repeats column 'a' in every row, a copy that adds nothing: kept; --drop a_copy leaves it out"
        in table.notes
    )
