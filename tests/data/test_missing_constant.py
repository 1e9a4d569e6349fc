"""--missing constant: scikit-learn's SimpleImputer(strategy="constant") with its default fill_value (0 for
numbers, "missing_value" for text), then one-hot encoding (OneHotEncoder), on both CSV readers."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.csvfile import read_csv
from downslope.data.encoding import FILL_NUMBER, FILL_TEXT, Imputer

sklearn = pytest.importorskip("sklearn")
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.preprocessing import OneHotEncoder  # noqa: E402


def test_constant_fills_as_simple_imputer_and_blank_text_is_its_own_category(tmp_path, csv_reader):
    num = ["1.5", "", "-2", "4", "", "0.25", "3", "7"]
    text = ["red", "", "blue", "red", "green", "", "blue", "red"]
    y = ["1", "2", "3", "4", "5", "6", "7", "8"]
    p = tmp_path / "d.csv"
    p.write_text("n,c,y\n" + "\n".join(f"{a},{b},{t}" for a, b, t in zip(num, text, y)) + "\n")
    table, encoder = read_csv(p, target="y", missing="constant")
    X = Imputer("constant").fit(table.X, encoder.blocks()).transform(table.X)

    numbers = np.array([[float(v) if v else np.nan] for v in num])
    words = np.array([[v if v else np.nan] for v in text], dtype=object)
    filled_numbers = SimpleImputer(strategy="constant").fit_transform(numbers)
    filled_words = SimpleImputer(strategy="constant").fit_transform(words)
    one_hot = OneHotEncoder(sparse_output=False).fit(filled_words)
    expected = np.hstack([filled_numbers, one_hot.transform(filled_words)])
    assert (FILL_NUMBER, FILL_TEXT) == (0.0, "missing_value")  # scikit-learn's defaults
    assert encoder.feature_names == ["n"] + [f"c={c}" for c in one_hot.categories_[0]]
    np.testing.assert_array_equal(X, expected.astype(np.float32))


def test_constant_without_blank_text_adds_no_category_and_new_blanks_are_unseen(tmp_path, csv_reader):
    p = tmp_path / "d.csv"
    p.write_text("n,c,y\n" + "\n".join(f"{'' if i == 3 else i},{'ab'[i % 2]},{i}" for i in range(8)) + "\n")
    table, encoder = read_csv(p, target="y", missing="constant")
    assert encoder.feature_names == ["n", "c=a", "c=b"]
    encoder.handle_unknown = "ignore"  # as a trained run's encoder: a category not in training is all zeros
    row = encoder.encode_features(["n", "c", "y"], [["", "", "0"]], "new.csv")
    np.testing.assert_array_equal(Imputer("constant").fit(table.X, encoder.blocks()).transform(row), [[0, 0, 0]])
