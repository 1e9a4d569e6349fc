"""The cells read as missing values are a setting (``na_values``, the command line's ``--na-values``): by
default pandas' markers (NA, N/A, null, nan, ...) and a few more; given, a list that replaces them (pandas'
``keep_default_na=False``), so a country column keeps Namibia's code 'NA' as a category. Every CSV reader
(pyarrow's, NumPy's parser, the row-by-row one) reads a file the same way under the same markers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from downslope.data import readers
from downslope.data.readers import marker_set, missing_markers, missing_tokens
from downslope.data.tabular import read_csv
from downslope.errors import ConfigError, DataError

COUNTRIES = ["US", "DE", "NA", "ZA", "BW", "FR", "GB", "KE"]


def _orders(path: Path, n: int = 240, seed: int = 1, amount_missing: str = "") -> Path:
    """An orders table: amounts (some missing, written ``amount_missing``), a country code among them
    Namibia's NA, a channel (some cells '?'), and the order value to predict."""
    rng = np.random.default_rng(seed)
    lines = ["order_id,amount,country,channel,value"]
    for i in range(n):
        amount = amount_missing if i % 17 == 5 else f"{rng.gamma(2.0, 40.0):.2f}"
        channel = "?" if i % 23 == 7 else ["web", "app", "store"][int(rng.integers(3))]
        lines.append(f"O{i:05d},{amount},{COUNTRIES[i % len(COUNTRIES)]},{channel},{rng.normal(100, 15):.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(path: Path, how: str, na_values: object, **options: object) -> tuple[object, ...]:
    """``how``: 'numpy' (NumPy's parser), 'rows' (the row-by-row reader) or 'arrow'; an error as its text."""
    saved = readers.FAST_CSV, readers.NUMPY_CSV
    readers.FAST_CSV, readers.NUMPY_CSV = how == "arrow", how == "numpy"
    try:
        with missing_markers(na_values):
            table, encoder = read_csv(path, target="value", drop=["order_id"], **options)  # type: ignore[arg-type]
    except (DataError, ConfigError) as exc:
        return ("error", str(exc))
    finally:
        readers.FAST_CSV, readers.NUMPY_CSV = saved
    return ("table", table.X, table.y, encoder.state_dict())


def _readers() -> list[str]:
    return ["numpy", "rows"] + (["arrow"] if readers.importlib.util.find_spec("pyarrow") is not None else [])


def _same_everywhere(path: Path, na_values: object, **options: object) -> tuple[object, ...]:
    first, *others = [_read(path, how, na_values, **options) for how in _readers()]
    for other in others:
        assert first[0] == other[0], (first[:2], other[:2])
        if first[0] == "error":
            assert first == other
        else:
            np.testing.assert_array_equal(first[1], other[1])
            np.testing.assert_array_equal(first[2], other[2])
            assert first[3] == other[3]
    return first


def test_by_default_na_is_missing_and_no_values_keeps_it_as_a_category(tmp_path):
    path = _orders(tmp_path / "orders.csv")
    default = _same_everywhere(path, None, missing="most_frequent")
    assert default[0] == "table"
    assert "NA" not in default[3]["categories"]["country"]  # type: ignore[index]
    kept = _same_everywhere(path, [], missing="most_frequent")
    assert kept[0] == "table"
    categories = kept[3]["categories"]  # type: ignore[index]
    assert categories["country"] == sorted(COUNTRIES)
    assert "?" in categories["channel"]  # only empty cells are missing now: '?' is a category too
    X = kept[1]
    start = 1  # amount is feature 0, then the country block
    block = X[:, start : start + len(COUNTRIES)]  # type: ignore[index]
    namibia = np.array([COUNTRIES[i % len(COUNTRIES)] == "NA" for i in range(240)])
    assert np.all(block[namibia, categories["country"].index("NA")] == 1)  # the NA rows are Namibia's
    assert not np.isnan(block).any()
    assert np.isnan(X[:, 0]).sum() == len(range(5, 240, 17))  # the empty amounts are still missing


def test_given_markers_replace_the_defaults(tmp_path):
    path = _orders(tmp_path / "orders.csv", amount_missing="n/a")
    read = _same_everywhere(path, ["?", "n/a"], missing="most_frequent")
    assert read[0] == "table"
    categories = read[3]["categories"]  # type: ignore[index]
    assert "NA" in categories["country"] and "?" not in categories["channel"]
    assert np.isnan(read[1][:, 0]).sum() == len(range(5, 240, 17))  # type: ignore[index]


def test_a_numeric_column_with_na_is_text_when_na_is_not_a_marker(tmp_path):
    path = _orders(tmp_path / "orders.csv", amount_missing="NA")
    assert _same_everywhere(path, None, missing="mean")[0] == "table"  # NA: missing amounts, filled
    refused = _same_everywhere(path, [], missing="mean", categorical=None, numeric=["amount"])
    assert refused[0] == "error" and "amount" in refused[1] and "'NA'" in refused[1]  # type: ignore[operator]


def test_a_long_marker_is_matched_in_any_case_by_every_reader(tmp_path):
    path = _orders(tmp_path / "orders.csv", amount_missing="Not Available")
    text = path.read_text().replace("Not Available", "NOT available", 3)
    path.write_text(text)
    read = _same_everywhere(path, ["not available"], missing="mean")
    assert read[0] == "table"
    assert np.isnan(read[1][:, 0]).sum() == len(range(5, 240, 17))  # type: ignore[index]


def test_the_markers_are_set_only_within_the_block():
    assert missing_tokens() == readers.MISSING_TOKENS
    with missing_markers(["?"]):
        assert missing_tokens() == {"", "nan", "?"}
        with missing_markers(None):
            assert missing_tokens() == readers.MISSING_TOKENS
        assert "na" not in missing_tokens()
    assert "na" in missing_tokens()
    assert marker_set([" N/A ", "NULL"]) == {"", "nan", "n/a", "null"}


def test_a_text_columns_na_refused_as_missing_names_the_option(tmp_path):
    path = _orders(tmp_path / "orders.csv")
    for how in _readers():
        said = _read(path, how, None)  # --missing error (the default)
        assert said[0] == "error", how
        message = str(said[1])
        assert "orders.csv:4:3 (column 'country'): missing value" in message, message
        assert "the cell holds 'NA'" in message and "--na-values" in message, message
    # a numeric column's NA is no value: the message does not suggest keeping it
    numeric = _orders(tmp_path / "numeric.csv", amount_missing="NA")
    path_text = numeric.read_text().replace(",NA,", ",ZA,")
    numeric.write_text(path_text)
    said = _read(numeric, "rows", None)
    assert said[0] == "error" and "column 'amount'" in said[1] and "--na-values" not in said[1]  # type: ignore[operator]


def test_a_quoted_na_is_read_under_the_markers_too(tmp_path):
    # a file with quotes is split by Python's csv module, not NumPy's parser: the markers reach that path too
    path = _orders(tmp_path / "orders.csv")
    path.write_text(path.read_text().replace(",NA,", ',"NA",'))
    kept = _same_everywhere(path, [], missing="most_frequent")
    assert kept[0] == "table" and "NA" in kept[3]["categories"]["country"]  # type: ignore[index]
    default = _same_everywhere(path, None, missing="most_frequent")
    assert default[0] == "table" and "NA" not in default[3]["categories"]["country"]  # type: ignore[index]


@pytest.mark.parametrize("value", ["", "nan", "NaN"])
def test_empty_cells_and_nan_stay_missing_whatever_the_markers(tmp_path, value):
    path = _orders(tmp_path / "orders.csv", amount_missing=value)
    read = _same_everywhere(path, [], missing="mean")
    assert read[0] == "table"
    assert np.isnan(read[1][:, 0]).sum() == len(range(5, 240, 17))  # type: ignore[index]


@pytest.mark.parametrize("n", [240, 3000])  # few distinct amounts per block, and many
def test_a_sentinel_written_as_a_number_is_missing_when_named(tmp_path, n):
    # -999 for "not recorded", a habit of older systems: a number unless --na-values names it
    rng = np.random.default_rng(4)
    lines = ["order_id,amount,country,value"]
    for i in range(n):
        amount = "-999" if i % 17 == 5 else f"{rng.gamma(2.0, 40.0):.2f}"
        lines.append(f"O{i:05d},{amount},{COUNTRIES[i % len(COUNTRIES)]},{rng.normal(100, 15):.2f}")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    sentinel_rows = np.arange(n) % 17 == 5
    plain = _same_everywhere(path, None, missing="mean")
    assert plain[0] == "table" and np.all(plain[1][sentinel_rows, 0] == -999)  # type: ignore[index]
    named = _same_everywhere(path, ["-999", ""], missing="mean")
    assert named[0] == "table"
    np.testing.assert_array_equal(np.isnan(named[1][:, 0]), sentinel_rows)  # type: ignore[index]
    assert "NA" in named[3]["categories"]["country"]  # type: ignore[index]
