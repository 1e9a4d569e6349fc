"""fit, evaluate and predict given a table with text columns (``train/inputs.py``): the error names
the columns and says how to encode them."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.errors import ArgumentTypeError

pd = pytest.importorskip("pandas")


def _houses(text_columns: int = 1) -> pd.DataFrame:
    frame = {"GrLivArea": [1500.0, 1800.0, 900.0, 1200.0]}
    for i in range(text_columns):
        frame[f"Text{i}"] = ["A", "B", "A", "C"]
    frame["SalePrice"] = [2e5, 2.5e5, 1.1e5, 1.6e5]
    return pd.DataFrame(frame)


def test_fit_names_the_text_columns_and_says_how_to_encode_them():
    df = _houses()
    with pytest.raises(ArgumentTypeError) as info:
        ds.fit(nn.Linear(2, 1), "mse", "adam", (df[["GrLivArea", "Text0"]], df[["SalePrice"]]), epochs=1, verbose=0)
    message = str(info.value)
    assert "column 'Text0'" in message and "GrLivArea" not in message
    assert "pandas.get_dummies" in message and "nn.Embedding" in message and "downslope train" in message


def test_at_most_five_text_columns_are_named():
    df = _houses(text_columns=7)
    x = df.drop(columns="SalePrice")
    with pytest.raises(ArgumentTypeError, match=r"column 'Text4' and 2 more;"):
        ds.fit(nn.Linear(8, 1), "mse", "adam", (x, df[["SalePrice"]]), epochs=1, verbose=0)
    with pytest.raises(ArgumentTypeError, match=r"predict: the inputs x: text \(non-numeric\) data in column 'Text0'"):
        ds.predict(nn.Linear(8, 1), x)


def test_text_targets_and_one_text_input_of_several_are_named():
    df = _houses()
    with pytest.raises(ArgumentTypeError, match=r"the targets y: text \(non-numeric\) data in column 'Text0'"):
        ds.fit(nn.Linear(1, 1), "mse", "adam", (df[["GrLivArea"]], df[["Text0"]]), epochs=1, verbose=0)
    with pytest.raises(ArgumentTypeError, match=r"input 'b': text \(non-numeric\) data in column 'Text0'"):
        ds.evaluate(nn.Bilinear(1, 1, 1), "mse", ({"a": df[["GrLivArea"]], "b": df[["Text0"]]}, df[["SalePrice"]]))
    with pytest.raises(ArgumentTypeError, match=r"text \(non-numeric\) data in column 1;"):
        ds.fit(nn.Linear(2, 1), "mse", "adam", (df[["GrLivArea", "Text0"]].to_numpy(), np.zeros(4)), verbose=0)


def test_numeric_tables_still_train():
    df = _houses()
    df["Flag"] = [True, False, True, True]
    history = ds.fit(nn.Linear(2, 1), "mse", "sgd", (df[["GrLivArea", "Flag"]] / 1000.0, df[["SalePrice"]] / 1e5),
                     epochs=2, verbose=0)  # fmt: skip
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
