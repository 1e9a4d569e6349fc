"""Date columns written with month names, as ISO year-month or with a time are refused like numeric
dates (one-hot, every new date would be an unseen category)."""

from __future__ import annotations

import pytest

from downslope.data.encoding import not_categories_error
from downslope.data.tabular import read_table
from downslope.errors import DataError

FORMATS = [
    '"Jan {d}, 2024"',
    "{d} January 2024",
    "{d:02d}-Mar-24",
    '"Mon, {d} Jan 2024 10:00:00 +0000"',
    "2024-{m:02d}",
    "Feb 2024",
    "2024-{m:02d}-{d:02d}T10:30:00Z",
    "2024-{m:02d}-{d:02d} 10:30:00.25+01:00",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_date_column_is_refused_whatever_its_format(tmp_path, fmt):
    lines = ["when,x,y"] + [fmt.format(m=i % 12 + 1, d=i % 28 + 1) + f",{i % 7},{i}" for i in range(60)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="column 'when' holds dates or timestamps"):
        read_table(path, target="y")


@pytest.mark.parametrize("values", [["2024", "2025"], ["May", "June"], ["2024-13", "2024-14"], ["A-12", "B-7"]])
def test_years_months_and_codes_alone_are_not_dates(values):
    assert not_categories_error("t.csv", "c", values, 50) is None
