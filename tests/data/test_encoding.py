"""Text columns a one-hot encoder should not take (dates of any number, several ids at once), a target
naming several columns, and categories the training split did not hold; both CSV readers."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.columns import encode_csv
from downslope.data.encoding import TabularEncoder, unseen_category
from downslope.data.tabular import read_csv
from downslope.errors import ConfigError, DataError


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("fmt", ["2024-03-{:02d}", "{:02d}/03/2024", "2024-03-{:02d} 10:30:00"])
def test_a_date_column_with_few_values_is_refused_with_advice(tmp_path, csv_reader, fmt):
    rows = [f"{fmt.format(i % 12 + 1)},{i},{i % 3}.5" for i in range(60)]  # 12 distinct dates
    p = write(tmp_path, "day,x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"column 'day' holds dates or timestamps .*12 distinct values in 60 rows") as e:
        read_csv(p, target="y")
    assert "--drop day" in str(e.value) and "days since a reference date" in str(e.value)
    # asked for as categories (the API's categorical=), it is one-hot encoded
    table, encoder = read_csv(p, target="y", categorical=["day"])
    assert len(encoder.categories["day"]) == 12


def test_every_refused_text_column_is_named_at_once(tmp_path, csv_reader):
    rows = [f"id{i},w{i * 7},2024-01-{i % 28 + 1:02d},{'ab'[i % 2]},{i}.5" for i in range(150)]
    p = write(tmp_path, "sku,desc,day,kind,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as e:
        read_csv(p, target="y")
    said = str(e.value)
    assert said.startswith(f"{p}: 3 text columns cannot be one-hot encoded: column 'sku' is text with 150")
    assert "column 'desc'" in said and "column 'day' holds dates" in said and "'kind'" not in said
    assert said.endswith("to leave them all out: --drop sku,desc,day")
    table, _ = read_csv(p, target="y", drop=["sku", "desc", "day"])
    assert table.X.shape == (150, 2)


def test_a_target_naming_several_columns_is_refused(tmp_path, csv_reader):
    p = write(tmp_path, "f,a,b\n" + "\n".join(f"{i},{i}.5,{i * 2}.5" for i in range(20)) + "\n")
    with pytest.raises(ConfigError, match=r"--target names 2 columns \('a,b'\); only one target column is supported"):
        read_csv(p, target="a,b")


def test_an_unseen_category_is_refused_naming_a_few_known_ones():
    known = [f"S{i:04d}" for i in range(500)]
    said = unseen_category("S9999", known)
    assert "'S0009'" in said and "'S0010'" not in said and "(500 in all)" in said and len(said) < 300


def test_an_unseen_category_in_another_case_names_the_known_spelling():
    # the known spelling is past the ten categories shown, so only the hint names it
    known = [f"S{i:04d}" for i in range(500)] + ["Downtown"]
    said = unseen_category("downtown", known)
    assert "'Downtown'" in said and said.endswith("differs only in upper/lower case from 'Downtown': write it so")
    assert "upper/lower case" not in unseen_category("Uptown", known)


def test_handle_unknown_ignore_encodes_an_unseen_category_as_zeros(tmp_path, csv_reader):
    encoder = TabularEncoder(["x", "c"], "y", {"c": ["a", "b"]}, "regression", [])
    p = write(tmp_path, "x,c,y\n1.5,a,1\n2.5,z,2\n3.5,b,3\n", "new.csv")
    with pytest.raises(DataError, match="category 'z' was not seen in training"):
        encoder.encode_features(["x", "c", "y"], [["2.5", "z", "2"]], "new.csv")
    encoder.handle_unknown = "ignore"
    rows = [["1.5", "a", "1"], ["2.5", "z", "2"], ["3.5", "b", "3"]]
    expected = np.array([[1.5, 1, 0], [2.5, 0, 0], [3.5, 0, 1]], np.float32)
    assert np.array_equal(encoder.encode_features(["x", "c", "y"], rows, "new.csv"), expected)
    fast = encode_csv(p, encoder, need_target=True)
    if fast is not None:
        assert np.array_equal(fast[1], expected)
