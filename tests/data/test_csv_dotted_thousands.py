"""A '.' grouping thousands ('2.036' for 2036, as a German export writes it) pasted into a column of whole
numbers is read as the decimal it looks like (pandas reads it so too): the reader says so in a note naming
the file line, the column and the value, instead of training in silence on values a thousand times too small.
A column of genuine decimals gets no such note. Expected values are the cells each test writes."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.tabular import read_csv


def _sqft(i: int) -> int:
    return 500 + (i * 37) % 3500


def test_thousands_dots_in_a_column_of_whole_numbers_are_noted(tmp_path, reader):
    cells = [f"{_sqft(i) // 1000}.{_sqft(i) % 1000:03d}" if i % 10 == 3 and _sqft(i) >= 1000 else str(_sqft(i))
             for i in range(200)]  # fmt: skip
    path = tmp_path / "houses.csv"
    path.write_text("sqft,price\n" + "".join(f"{c},{100 * _sqft(i)}\n" for i, c in enumerate(cells)))
    table, _ = read_csv(path, target="price")
    first = next(i for i, c in enumerate(cells) if "." in c)
    said = [n for n in table.notes if "three decimals" in n]
    assert len(said) == 1
    n_dotted = sum("." in c for c in cells)
    assert said[0].startswith(f"{path}:{first + 2} (column 'sqft'): {n_dotted} value(s) such as {cells[first]} ")
    assert f"({cells[first]} for {_sqft(first)})" in said[0]
    # the values stay as read: the note is advice, not a second guess
    assert table.X[first, 0] == pytest.approx(float(cells[first]))


def test_thousands_dots_in_a_regression_target_are_noted(tmp_path, reader):
    prices = [150_000 + 3_217 * i for i in range(120)]
    cells = [f"{p // 1000}.{p % 1000:03d}" if i % 8 == 5 else str(p) for i, p in enumerate(prices)]
    path = tmp_path / "prices.csv"
    path.write_text("rooms,price\n" + "".join(f"{1 + i % 6},{c}\n" for i, c in enumerate(cells)))
    table, _ = read_csv(path, target="price")
    said = [n for n in table.notes if "three decimals" in n]
    assert len(said) == 1 and said[0].startswith(f"{path}:7 (column 'price'): 15 value(s) such as {cells[5]} ")
    assert f"({cells[5]} for {prices[5]})" in said[0] and "(150000)" in said[0]
    assert float(np.asarray(table.y)[5, 0]) == pytest.approx(float(cells[5]))


@pytest.mark.parametrize(
    "cells",
    [
        [f"{1 + (i % 7) / 8:.3f}" for i in range(50)],  # all decimals (three each), no whole number beside them
        [str(500 + i) if i % 3 else f"{2.5 + i % 2}" for i in range(50)],  # one decimal (2.5) groups nothing
        [str(500 + i) if i % 3 else f"{600 + i / 1000:.3f}" for i in range(50)],  # among the whole numbers
        [str(500 + i) if i % 3 else f"{0.125 + i / 1000:.3f}" for i in range(50)],  # 0.125 is no grouping
    ],
    ids=["all-decimals", "one-decimal", "in-range", "below-one"],
)
def test_genuine_decimals_get_no_note(tmp_path, reader, cells):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{c},{i}.5\n" for i, c in enumerate(cells)))
    table, _ = read_csv(path, target="y")
    assert not [n for n in table.notes if "three decimals" in n]
    assert np.allclose(table.X[:, 0], [float(c) for c in cells])
