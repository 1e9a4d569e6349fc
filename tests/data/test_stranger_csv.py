"""A data scientist's CSVs (all-missing columns, unit targets, Excel formats, footers, encodings):
each case is read by both CSV readers (pyarrow's column by column, and the pure-Python one)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.encoding import Imputer, TabularEncoder, check_columns
from downslope.data.tabular import read_csv
from downslope.errors import DataError


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def churn_rows(n=40, first=""):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        lines.append(f"{first}{rng.integers(18, 80)},{['a', 'b'][i % 2]},{['No', 'Yes'][int(i % 3 == 0)]}")
    return lines


def test_a_column_without_values_is_left_out_with_a_warning(tmp_path, csv_reader):
    p = write(tmp_path, "empty,age,kind,churn\n" + "\n".join("," + r for r in churn_rows()) + "\n")
    table, encoder = read_csv(p, target="churn", missing="mean")
    assert "empty" not in encoder.columns and table.X.shape == (40, 3)
    assert any("'empty'" in n and "no values" in n for n in table.notes)
    # predict ignores it: any values there, or no such column at all
    rows = [["1000", "30", "a", ""], ["-1e6", "30", "a", ""]]
    X = encoder.encode_features(["empty", "age", "kind", "churn"], rows, "new.csv")
    assert (X[0] == X[1]).all()
    assert encoder.encode_features(["age", "kind"], [["30", "a"]], "new.csv").shape == (1, 3)


def test_imputer_ignores_a_feature_never_seen_in_training():
    imp = Imputer("mean").fit(np.array([[np.nan, 1.0], [np.nan, 3.0]]))
    assert imp.unseen == [0]
    out = imp.transform(np.array([[5.0, np.nan], [-1e6, 1.0]]))
    assert out[:, 0].tolist() == [0.0, 0.0] and out[0, 1] == 2.0
    again = Imputer.from_state_dict(imp.state_dict())
    assert again.unseen == [0] and (again.transform(np.array([[7.0, 1.0]])) == [[0.0, 1.0]]).all()


def test_a_header_of_numbers_is_warned_about(tmp_path, csv_reader):
    rows = [f"{i}.5,{i % 7 + 3},{'ab'[i % 2]},{i % 2}" for i in range(30)]
    p = write(tmp_path, "\n".join(rows) + "\n")
    table, _ = read_csv(p)
    assert any("may have no header row" in n for n in table.notes)
    q = write(tmp_path, "age,n,kind,churn\n" + "\n".join(rows) + "\n", "named.csv")
    assert not read_csv(q)[0].notes


def test_percent_and_apostrophe_numbers_are_numbers(tmp_path, csv_reader):
    rows = [f"{i % 40}%,'{i},{['No', 'Yes'][i % 2]}" for i in range(30)]
    p = write(tmp_path, "discount,tenure,churn\n" + "\n".join(rows) + "\n")
    table, encoder = read_csv(p)
    assert encoder.categories == {} and table.X[3].tolist() == [3.0, 3.0]
    assert any("'3%'" in n or "%" in n for n in table.notes)
    # a percentage not seen in training is a number too (one-hot refused it)
    X = encoder.encode_features(["discount", "tenure"], [["45%", "'7"]], "new.csv")
    assert X.tolist() == [[45.0, 7.0]]


@pytest.mark.parametrize(
    "cell, hint",
    [
        ("2023-01-{d:02d}", "dates"),
        ("2023-01-{d:02d} 09:00:{d:02d}", "dates"),
        ('"${d},990.50"', "money"),
        ('"({d},234.00)"', "accounting negatives"),
    ],
)
def test_dates_money_and_accounting_numbers_get_advice_not_max_categories(tmp_path, csv_reader, cell, hint):
    rows = [cell.format(d=i % 28 + 1) + f",{i},{i % 2}" for i in range(60)]
    p = write(tmp_path, "x,n,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        read_csv(p, target="y", max_categories=5)
    assert hint in str(err.value) and "--max-categories" not in str(err.value)


def test_numbers_grouped_by_non_breaking_spaces_read_with_thousands_space(tmp_path):
    rows = [f"1\u00a0{i:03d},5;{i};{i % 2}" for i in range(20)]
    p = write(tmp_path, "x;n;y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="--thousands ' ' --decimal ','"):
        read_csv(p, target="y", delimiter=";", max_categories=5)
    table, _ = read_csv(p, target="y", delimiter=";", thousands=" ", decimal=",")
    assert table.X[2, 0] == pytest.approx(1002.5)


def test_one_hot_too_big_for_memory_is_refused_with_sizes(tmp_path, csv_reader, monkeypatch):
    from downslope.data import encoding

    monkeypatch.setattr(encoding, "memory_available", lambda: 10_000)
    rows = [f"user{i}@x.org,{i},{i % 2}" for i in range(50)]
    p = write(tmp_path, "email,n,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"50 x 51 float32 matrix.*'email' \(50 categories\)"):
        read_csv(p, target="y", max_categories=1000)
    monkeypatch.setattr(encoding, "memory_available", lambda: 10**12)
    with pytest.raises(DataError, match=r"50 x 50 x 4 bytes"):
        read_csv(p, target="y", max_categories=10)


def test_a_totals_row_at_the_end_is_left_out(tmp_path, csv_reader):
    rows = [f"{i},{'AB'[i % 2]},{100 + i}" for i in range(20)]
    total = sum(100 + i for i in range(20))
    p = write(tmp_path, "x,city,price\n" + "\n".join(rows) + f"\n,Total,{total}\n")
    table, _ = read_csv(p, target="price", missing="mean", task="regression")
    assert len(table.y) == 20 and table.y.max() == 119
    assert any(":22: the last row looks like a totals row" in n for n in table.notes)
    # by its target alone (the sum of the others)
    q = write(tmp_path, "x,city,price\n" + "\n".join(rows) + f"\n5,A,{total}\n", "sum.csv")
    assert len(read_csv(q, target="price", task="regression")[0].y) == 20
    # an ordinary last row stays
    r = write(tmp_path, "x,city,price\n" + "\n".join(rows) + "\n5,A,150\n", "plain.csv")
    table, _ = read_csv(r, target="price", task="regression")
    assert len(table.y) == 21 and not table.notes


def test_missing_drop_says_which_columns_dropped_rows(tmp_path, csv_reader):
    rows = [f"{'' if i % 4 == 0 else i},{i},{i % 2}" for i in range(20)]
    p = write(tmp_path, "a,b,y\n" + "\n".join(rows) + "\n")
    table, _ = read_csv(p, target="y", missing="drop")
    assert any("dropped 5 of 20 rows" in n and "'a': 5 rows" in n for n in table.notes)


def test_header_problems_name_the_columns(tmp_path):
    p = write(tmp_path, "a,b,y,,\n1,2,0,,\n2,3,1,,\n")
    with pytest.raises(DataError, match="the last 2 column"):
        read_csv(p)
    q = write(tmp_path, "a,b,a,y\n1,2,3,0\n", "dup.csv")
    with pytest.raises(DataError, match=r"'a' appears 2 times \(columns 1, 3\)"):
        read_csv(q)


def test_utf16_and_cp1252_files_say_how_to_convert(tmp_path):
    p = tmp_path / "u.csv"
    p.write_bytes("a,y\n1,0\n2,1\n".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16.*iconv -f UTF-16"):
        read_csv(p)
    q = tmp_path / "w.csv"
    q.write_bytes("city,y\nK\u00f6ln,0\nZ\u00fcrich,1\n".encode("cp1252"))
    with pytest.raises(DataError, match="iconv -f cp1252"):
        read_csv(q)


def test_missing_columns_at_predict_say_why():
    with pytest.raises(DataError, match="ignoring case.*'AGE' for 'age'"):
        check_columns("new.csv", ["AGE", "KIND"], ["age", "kind"])
    with pytest.raises(DataError, match="pass --sep ','"):
        check_columns("new.csv", ["age,kind"], ["age", "kind"])
    with pytest.raises(DataError, match="header row seems to be missing"):
        check_columns("new.csv", ["47", "10", "80.73", "Yes"], ["age", "tenure", "charges", "kind"])


def test_encoder_formats_survive_a_state_dict():
    enc = TabularEncoder(["d"], "y", {}, "regression", [], formats={"d": (".", "")})
    again = TabularEncoder.from_state_dict(enc.state_dict())
    assert again.encode_features(["d"], [["12%"]], "n.csv").tolist() == [[12.0]]
