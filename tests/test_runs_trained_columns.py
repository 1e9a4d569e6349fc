"""``open_run(dir).predict`` on a DataFrame or a dict of columns encodes column by column (no row of text per
cell): the predictions are byte-identical to the row-by-row encoding and to predict(path), errors read the
same, and an unseen category's refusal names the Python keyword, not the command's flag."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main
from downslope.errors import DataError
from downslope.experiment import features
from downslope.runs import open_run

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def _table(n, rng):
    return pd.DataFrame({
        "x": rng.normal(size=n) * 1e3,
        "k": rng.integers(-5, 50, size=n),
        "c": rng.choice(["red", "green", "blue"], size=n),
        "y": rng.normal(size=n),
    })  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("columns")
    rng = np.random.default_rng(0)
    frame = _table(200, rng)
    frame.loc[3, "x"] = np.nan  # a missing number and a missing category: filled as in training
    frame.loc[5, "c"] = ""
    frame.to_csv(tmp / "train.csv", index=False)
    run = tmp / "run"
    assert main(["train", "--data", str(tmp / "train.csv"), "--target", "y", "--missing", "mean", "--hidden", "8",
                 "--epochs", "2", "--quiet", "--out", str(run)]) == 0  # fmt: skip
    new = _table(300, rng).drop(columns="y")
    new.loc[7, "x"] = np.nan
    new.loc[8, "c"] = None
    new.loc[9, "c"] = "  red"  # red: the spaces stripped, as the CSV readers strip every cell
    new.to_csv(tmp / "new.csv", index=False)
    return open_run(run), new, tmp / "new.csv"


def _row_by_row(monkeypatch):
    monkeypatch.setattr(features, "table_columns", lambda data: None)


def test_dataframe_and_dict_predictions_are_byte_identical_to_the_row_by_row_path(trained, monkeypatch):
    run, new, path = trained
    by_columns = run.predict(new, unknown_categories="ignore")
    as_dict = run.predict({c: new[c].to_numpy() for c in new.columns}, unknown_categories="ignore")
    as_lists = run.predict({c: new[c].tolist() for c in new.columns}, unknown_categories="ignore")
    from_file = run.predict(str(path), unknown_categories="ignore")
    _row_by_row(monkeypatch)
    rows = run.predict(new, unknown_categories="ignore")
    for got in (by_columns, as_dict, as_lists):
        assert got.dtype == rows.dtype and got.tobytes() == rows.tobytes()
    # row 9's "  red" is red in memory as in the file (whose reader strips the cells' spaces)
    assert from_file.tobytes() == rows.tobytes()


@pytest.mark.parametrize("cell, said", [("purple", "category 'purple' was not seen in training"),
                                        ("", None)])  # fmt: skip
def test_errors_read_as_the_row_by_row_path_says_them(trained, monkeypatch, cell, said):
    run, new, _ = trained
    bad = new.copy()
    bad.loc[9, "c"] = "red"
    bad.loc[11, "c"] = cell
    bad.loc[12, "x"] = np.inf
    with pytest.raises(DataError) as by_columns:
        run.predict(bad)
    _row_by_row(monkeypatch)
    with pytest.raises(DataError) as rows:
        run.predict(bad)
    assert str(by_columns.value) == str(rows.value)
    if said:
        assert said in str(rows.value)


def test_unseen_category_from_python_names_the_keyword(trained):
    run, new, _ = trained
    with pytest.raises(DataError) as caught:
        run.predict([{"x": 0.1, "k": 3, "c": "zz"}])
    assert 'unknown_categories="ignore" encodes such a category as all zeros' in str(caught.value)
    assert "--unknown-categories" not in str(caught.value)
    with pytest.raises(DataError, match='unknown_categories="ignore"'):
        run.predict(new.assign(c="zz"))


def test_a_dataframe_is_not_written_out_as_rows_of_text(trained, monkeypatch):
    run, new, _ = trained
    expected = run.predict(new, unknown_categories="ignore")

    def refused(data):
        raise AssertionError("encoded row by row")

    monkeypatch.setattr(features, "table_rows", refused)
    ok = new.assign(c=new["c"].where(new["c"].isin(["red", "green", "blue"]), "red"))
    assert run.predict(ok).shape == expected.shape
    assert run.predict({c: ok[c].to_numpy() for c in ok.columns}).shape == expected.shape


def test_a_category_written_with_spaces_predicts_as_from_its_file(tmp_path, monkeypatch):
    frame = pd.DataFrame({"x": range(40), "hood": ["SUBURB ", "Rural"] * 20, "y": [i % 7 + 0.5 for i in range(40)]})
    frame.to_csv(tmp_path / "sp.csv", index=False)
    assert main(["train", "--data", str(tmp_path / "sp.csv"), "--target", "y", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    run = open_run(tmp_path / "run")
    from_file = run.predict(str(tmp_path / "sp.csv"))
    rows = frame.drop(columns="y")
    by_columns = run.predict(rows)
    as_dicts = run.predict(rows.to_dict("records"))
    _row_by_row(monkeypatch)
    by_rows = run.predict(rows)
    for got in (by_columns, as_dicts, by_rows):
        assert got.tobytes() == from_file.tobytes()
    with pytest.raises(DataError) as caught:  # an unseen category is quoted as given, spaces and all
        run.predict([{"x": 1, "hood": " Urban "}])
    assert "category ' Urban ' was not seen in training" in str(caught.value)
