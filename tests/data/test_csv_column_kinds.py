"""What a CSV column is, decided from its cells and said in a note or refused with advice, never guessed
in silence: digit codes with leading zeros are categories (--categorical / --numeric choose), numbers
with a unit are numbers, times of day are refused like dates; and the messages about a file (the one-hot
memory of a sparse column, a target named in the wrong case, a header with several problems, a .txt
that is a CSV, the advice for files of other types) say what is true. Expected values are closed forms
of the cells each test writes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from downslope.data.csvfile import check_header_names, unsupported_file
from downslope.data.encoding import TabularEncoder
from downslope.data.tabular import read_csv
from downslope.errors import ConfigError, DataError

ZIPS = ["02134", "00501", "90210", "10001"]


def _zips(path, zips=ZIPS, n=40):
    path.write_text("zip,sqft,y\n" + "".join(f"{zips[i % len(zips)]},{500 + i},{i % 3}\n" for i in range(n)))
    return path


def test_digit_codes_with_leading_zeros_are_categories_with_a_note(tmp_path, reader):
    table, encoder = read_csv(_zips(tmp_path / "homes.csv"), task="regression")
    assert encoder.categories["zip"] == sorted(ZIPS)
    block = table.X[:, : len(ZIPS)]
    expected = np.array([[float(z == c) for c in sorted(ZIPS)] for z in (ZIPS * 10)], dtype=np.float32)
    np.testing.assert_array_equal(block, expected)
    note = next(n for n in table.notes if "leading zeros" in n)
    assert "'zip'" in note and "--numeric zip" in note


def test_numeric_reads_digit_codes_as_numbers(tmp_path, reader):
    table, encoder = read_csv(_zips(tmp_path / "homes.csv"), task="regression", numeric=["zip"])
    assert "zip" not in encoder.categories
    np.testing.assert_array_equal(table.X[:4, 0], np.array([2134, 501, 90210, 10001], dtype=np.float32))
    assert not any("leading zeros" in n for n in table.notes)


def test_categorical_forces_a_numeric_column_to_categories(tmp_path, reader):
    path = tmp_path / "stores.csv"
    path.write_text("store,x,y\n" + "".join(f"{i % 3 + 1},{i},{i % 2}\n" for i in range(30)))
    table, encoder = read_csv(path, task="regression", categorical=["store"])
    assert encoder.categories["store"] == ["1", "2", "3"]
    np.testing.assert_array_equal(table.X[:3, :3], np.eye(3, dtype=np.float32))


def test_numeric_and_categorical_names_are_checked(tmp_path, reader):
    path = _zips(tmp_path / "homes.csv")
    with pytest.raises(ConfigError, match=r"numeric column\(s\) \['zp'\] not in the file's features"):
        read_csv(path, task="regression", numeric=["zp"])
    with pytest.raises(ConfigError, match=r"named both categorical and numeric"):
        read_csv(path, task="regression", numeric=["zip"], categorical=["zip"])


def test_too_many_digit_codes_are_refused_with_advice(tmp_path, reader):
    codes = [f"{i:05d}" for i in range(150)]
    with pytest.raises(DataError) as caught:
        read_csv(_zips(tmp_path / "ids.csv", codes, n=150), task="regression")
    said = str(caught.value)
    assert "leading zeros" in said and "--drop zip" in said and "--numeric zip" in said


def test_numbers_with_a_unit_are_read_as_numbers_and_new_data_may_write_it(tmp_path, reader):
    path = tmp_path / "people.csv"
    weights = [72, 80.5, 64, 91]
    path.write_text("weight,y\n" + "".join(f"{weights[i % 4]} kg,{i % 3}\n" for i in range(40)))
    table, encoder = read_csv(path, task="regression")
    np.testing.assert_array_equal(table.X[:4, 0], np.array(weights, dtype=np.float32))
    assert any("'weight'" in n and "unit 'kg'" in n for n in table.notes)
    again = TabularEncoder.from_state_dict(encoder.state_dict())
    again.stage = "predict"
    X = again.encode_features(["weight"], [["95 kg"], ["60"]], "new.csv")
    np.testing.assert_array_equal(X, np.array([[95.0], [60.0]], dtype=np.float32) - encoder.feature_offsets()[0])
    with pytest.raises(DataError, match=r"new.csv:2:1 \(column 'weight'\): expected a number, got '95 lb'"):
        again.encode_features(["weight"], [["95 lb"]], "new.csv")


def test_mixed_units_are_not_read_as_one_number(tmp_path, reader):
    path = tmp_path / "mixed.csv"
    path.write_text("weight,y\n" + "".join(f"{70 + i % 4} {'kg' if i % 2 else 'lb'},{i % 3}\n" for i in range(40)))
    with pytest.raises(DataError, match="numbers with the unit"):
        read_csv(path, task="regression")


def test_mixed_units_with_many_values_name_the_units_not_max_categories(tmp_path, reader):
    # more distinct measurements than --max-categories: raising it would make each one a category
    path = tmp_path / "weights.csv"
    path.write_text(
        "weight,y\n" + "".join(f"{50 + i / 10:.1f} {'kg' if i % 2 else 'lb'},{i % 3}\n" for i in range(150))
    )
    with pytest.raises(DataError) as caught:
        read_csv(path, task="regression")
    said = str(caught.value)
    assert "150 distinct values" in said and "the units 'kg', 'lb'" in said and "--drop weight" in said
    assert "--max-categories" not in said


def test_times_of_day_are_refused_with_advice(tmp_path, reader):
    path = tmp_path / "rides.csv"
    path.write_text("pickup,y\n" + "".join(f"{i % 24:02d}:{(i * 7) % 60:02d},{i % 3}\n" for i in range(48)))
    with pytest.raises(DataError) as caught:
        read_csv(path, task="regression")
    said = str(caught.value)
    assert "times of day" in said and "--drop pickup" in said and "--categorical pickup" in said
    table, encoder = read_csv(path, task="regression", categorical=["pickup"])  # kept as categories when asked
    assert len(encoder.categories["pickup"]) == 48


def test_one_hot_memory_of_a_sparse_text_column_counts_the_table_rows(tmp_path, reader):
    path = tmp_path / "cabins.csv"
    path.write_text("cabin,fare,y\n" + "".join(f"{f'C{i}' if i % 6 == 0 else ''},{i},{i % 2}\n" for i in range(900)))
    with pytest.raises(DataError) as caught:
        read_csv(path, task="regression", missing="most_frequent")
    said = str(caught.value)
    assert "150 distinct values in the 150 non-empty cells of 900 rows" in said
    assert "(900 x 150 x 4 bytes" in said


def test_a_target_named_in_the_wrong_case_gets_the_right_name(tmp_path, reader):
    path = tmp_path / "t.csv"
    path.write_text("a,Survived\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match=r"no target column 'survived'; did you mean 'Survived'\?"):
        read_csv(path, target="survived")


def test_numbers_with_the_unicode_minus_sign_are_negative(tmp_path, reader):
    path = tmp_path / "minus.csv"
    minus = "\u2212"
    path.write_text("a,y\n" + "".join(f"{minus if i % 2 else ''}{i}.5,{i % 3}\n" for i in range(20)), "utf-8")
    table, _ = read_csv(path, task="regression")
    np.testing.assert_array_equal(table.X[:, 0], np.array([(-1) ** i * (i + 0.5) for i in range(20)], np.float32))
    assert any("Unicode minus" in n for n in table.notes)


def test_a_header_with_an_empty_and_a_repeated_name_names_both():
    with pytest.raises(DataError) as caught:
        check_header_names("dup.csv", ["a", "a", "", "y"])
    said = str(caught.value)
    assert "column(s) [3]" in said and "'a' appears 2 times (columns 1, 2)" in said


@pytest.mark.parametrize("sep, how", [(",", "','"), ("\t", "tabs"), (";", "';'")])
def test_a_txt_file_of_delimited_text_is_read_with_a_note(tmp_path, reader, sep, how):
    path = tmp_path / "export.txt"
    path.write_text(f"a{sep}b{sep}y\n" + "".join(f"{i}{sep}{2 * i}{sep}{i % 2}\n" for i in range(12)))
    table, _ = read_csv(path, task="regression")
    np.testing.assert_array_equal(table.X, np.array([[i, 2 * i] for i in range(12)], dtype=np.float32))
    assert (
        table.notes[0]
        == f"{path}: a .txt file, read as delimited text separated by {how} (renaming it .csv or .tsv says so)"
    )


def test_a_txt_file_that_is_not_delimited_text_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Dear diary,\ntoday, I trained a model\nand it was fine\n")
    with pytest.raises(DataError, match="a .txt file is read when it is delimited text"):
        read_csv(path)


def _advised_command(path: str) -> str:
    said = str(unsupported_file(path))
    return said.split("convert it with pandas: ", 1)[1]


def test_conversion_advice_neither_overwrites_nor_breaks_on_quotes(tmp_path):
    name = str(tmp_path / "it's data.jsonl")
    (tmp_path / "it's data.csv").write_text("mine\n")
    command = _advised_command(name)
    words = shlex.split(command)
    assert words[:2] == ["python", "-c"] and len(words) == 3  # one word for the shell, quote and all
    assert "lines=True" in words[2] and "it's data-converted.csv" in words[2] and "mode='x'" in words[2]
    pickle = str(unsupported_file("model.pkl"))
    assert "read_pickle" not in pickle and "runs code" in pickle


def test_the_advised_conversion_runs(tmp_path):
    pytest.importorskip("pandas")
    name = tmp_path / "it's data.jsonl"
    name.write_text('{"a": 1.5, "y": 0}\n{"a": 2.5, "y": 1}\n')
    (tmp_path / "it's data.csv").write_text("mine\n")
    words = shlex.split(_advised_command(str(name)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, *words[1:]], check=True, env=env, cwd=tmp_path)
    assert (tmp_path / "it's data.csv").read_text() == "mine\n"  # left as it was
    assert (tmp_path / "it's data-converted.csv").read_text().splitlines() == ["a,y", "1.5,0", "2.5,1"]


FAST = ["--hidden", "4", "--epochs", "1", "--patience", "0", "--quiet"]


def test_the_cli_and_config_choose_categorical_and_numeric_columns(tmp_path):
    from downslope.cli import main
    from downslope.runs import open_run

    data = _zips(tmp_path / "homes.csv")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "auto"), *FAST]) == 0
    args = ["--numeric", "zip", "--categorical", "sqft"]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "flags"), *args, *FAST]) == 0
    config = tmp_path / "run.toml"
    config.write_text(f'data = "{data}"\nnumeric = ["zip"]\ncategorical = "sqft"\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "toml"), *FAST]) == 0

    def categories(name):
        return open_run(tmp_path / name).state["preprocess"]["encoder"]["categories"]

    assert list(categories("auto")) == ["zip"]
    assert list(categories("flags")) == list(categories("toml")) == ["sqft"]
    saved = (tmp_path / "flags" / "config.toml").read_text()
    assert 'numeric = ["zip"]' in saved and 'categorical = ["sqft"]' in saved
