"""A CLI-trained run used from Python: ``open_run(dir).predict(rows)`` reads raw rows (a CSV path, a
DataFrame, a dict of columns, a list of row dicts) exactly as ``downslope predict`` does."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from downslope.cli import main
from downslope.errors import ConfigError, DataError
from downslope.runs import open_run

pytest.importorskip("matplotlib")

FAST = ["--hidden", "8", "--epochs", "3", "--patience", "0", "--quiet"]


def _houses(path, n, rng):
    colors = ["red", "green", "blue"]
    rows = []
    for _ in range(n):
        sqft, rooms, color = rng.uniform(500, 3000), int(rng.integers(1, 6)), colors[int(rng.integers(0, 3))]
        price = 80 * sqft + 5000 * rooms + {"red": 1e4, "green": 0.0, "blue": -1e4}[color] + rng.normal(0, 5e3)
        rows.append(f"{sqft:.1f},{rooms},{color},{price:.0f}")
    path.write_text("sqft,rooms,color,price\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def houses(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("houses")
    rng = np.random.default_rng(0)
    data = _houses(tmp / "houses.csv", 80, rng)
    run = tmp / "run"
    assert main(["train", "--data", str(data), "--target", "price", "--out", str(run), *FAST]) == 0
    new = _houses(tmp / "new.csv", 9, rng)
    out = tmp / "preds.csv"
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 0
    return run, new, out


@pytest.fixture(scope="module")
def species(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("species")
    rng = np.random.default_rng(1)
    cities = ["paris", "rome", "oslo"]

    def write(path, n, missing):
        lines = []
        for i in range(n):
            a, b, city = rng.normal(), rng.normal(), cities[int(rng.integers(0, 3))]
            label = "dog" if a + (city == "rome") > 0.3 else ("cat, tabby" if b > 0 else "bird")
            lines.append(("" if missing and i % 4 == 0 else f"{a:.3f}") + f',{b:.3f},{city},"{label}"')
        path.write_text("x1,x2,city,label\n" + "\n".join(lines) + "\n")
        return path

    data = write(tmp / "train.csv", 90, True)
    run = tmp / "run"
    args = ["--target", "label", "--missing", "median", *FAST]
    assert main(["train", "--data", str(data), *args, "--out", str(run)]) == 0
    new = write(tmp / "new.csv", 12, True)
    out = tmp / "preds.csv"
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 0
    return run, new, out


def _columns(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


def _as_given(path):
    """The CSV's rows as a user holds them in memory: numbers as numbers, a blank as None."""
    cols = _columns(path)
    typed = {}
    for name, values in cols.items():
        try:
            typed[name] = [None if v == "" else float(v) for v in values]
        except ValueError:
            typed[name] = values
    return typed


def test_regression_predictions_equal_the_cli_file_for_every_kind_of_input(houses):
    run_dir, new, out = houses
    expected = np.array([float(v) for v in _columns(out)["prediction"]])
    run = open_run(run_dir)
    assert run.task == "regression" and run.input_columns == ["sqft", "rooms", "color"] and run.classes is None
    assert run.config["target"] == "price" and "test_r2" in run.metrics
    got = run.predict(new)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # the CLI writes the shortest digits that read back exactly
    cols = _as_given(new)
    np.testing.assert_array_equal(run.predict(cols), expected)  # a dict of columns (price is ignored)
    rows = [dict(zip(cols, r)) for r in zip(*cols.values())]
    np.testing.assert_array_equal(run.predict(rows), expected)  # a list of row dicts
    pd = pytest.importorskip("pandas")
    np.testing.assert_array_equal(run.predict(pd.read_csv(new)), expected)
    np.testing.assert_array_equal(run.predict(pd.read_csv(new).drop(columns="price")), expected)


def test_classification_labels_and_probabilities_equal_the_cli_file(species):
    run_dir, new, out = species
    written = _columns(out)
    run = open_run(str(run_dir))
    assert run.task == "classification" and sorted(run.classes) == ["bird", "cat, tabby", "dog"]
    assert run.predict(new).tolist() == written["prediction"]
    # the model computes in float32; the CLI writes each probability in the shortest digits of its float32
    probs = np.array([[np.float32(v) for v in written[f"p_{c}"]] for c in run.classes], dtype=np.float32).T
    np.testing.assert_array_equal(run.predict_proba(new), probs)
    cols = _as_given(new)  # missing x1 cells as None: filled with the training median, as predict does
    assert run.predict(cols).tolist() == written["prediction"]
    pd = pytest.importorskip("pandas")
    assert run.predict(pd.read_csv(new)).tolist() == written["prediction"]  # NaN cells too


def test_unseen_categories_and_missing_columns_follow_predicts_rules(houses):
    run_dir, new, _ = houses
    run = open_run(run_dir)
    cols = _as_given(new)
    cols["color"] = ["purple"] + cols["color"][1:]
    with pytest.raises(DataError, match="purple"):
        run.predict(cols)
    with pytest.warns(UserWarning, match="1 of the 9 rows"):
        ignored = run.predict(cols, unknown_categories="ignore")
    # as `downslope predict --unknown-categories ignore`: the unseen category is all zeros
    path = new.parent / "purple.csv"
    text = new.read_text().splitlines()
    first = text[1].split(",")
    first[2] = "purple"
    path.write_text("\n".join([text[0], ",".join(first), *text[2:]]) + "\n")
    out = new.parent / "purple_preds.csv"
    args = ["predict", str(run_dir), "--data", str(path), "--out", str(out), "--unknown-categories", "ignore"]
    assert main(args) == 0
    np.testing.assert_array_equal(ignored, [float(v) for v in _columns(out)["prediction"]])
    del cols["rooms"]
    with pytest.raises(DataError, match="rooms"):
        run.predict(cols)
    with pytest.raises(DataError, match="give a CSV"):
        run.predict(42)
    with pytest.raises(ConfigError, match="unknown_categories"):
        run.predict(new, unknown_categories="skip")
    with pytest.raises(ConfigError, match="no such directory"):
        open_run(run_dir.parent / "nope")


def test_open_run_is_a_top_level_name() -> None:
    import downslope as ds
    import downslope.runs

    assert ds.open_run is downslope.runs.open_run
