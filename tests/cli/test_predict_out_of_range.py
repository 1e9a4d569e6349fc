"""predict warns, once per column, when new values lie far outside what the model was trained on (an age of
240 or -5 for a model fitted on ages 18 to 65, an amount 1000 times the training amounts): the column, the
training range, how many rows, and the first such row's file:line and value. Ordinary new data from the
same population stays quiet, and a run saved before training ranges were recorded predicts without them."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope.cli import main

FAST = ["--hidden", "8", "--epochs", "3", "--patience", "0", "--quiet", "--lr", "0.05"]
COLUMNS = ["customer", "age", "income", "amount", "country", "hour"]


def _customers(rng: np.random.Generator, n: int) -> list[list[object]]:
    """Rows as a card issuer's table has them: ages 18-65, skewed incomes and amounts, a country code."""
    countries = ["US", "DE", "FR", "GB", "KE", "ZA"]
    return [
        [
            f"C{100000 + i}",
            int(rng.integers(18, 66)),
            round(float(rng.lognormal(10.5, 0.5)), 2),
            round(float(rng.gamma(2.0, 60.0)), 2),
            countries[int(rng.integers(len(countries)))],
            int(rng.integers(0, 24)),
        ]
        for i in range(n)
    ]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def spend_run(tmp_path_factory) -> tuple[Path, list[list[object]]]:
    """A regression of next month's spend on 600 customers; returns the run and its training rows."""
    folder = tmp_path_factory.mktemp("spend")
    rng = np.random.default_rng(11)
    rows = _customers(rng, 600)
    spend = [round(0.004 * r[2] + 2 * r[3] + rng.normal(0, 20), 2) for r in rows]  # type: ignore[operator]
    data = _write(folder / "customers.csv", [*COLUMNS, "spend"], [[*r, s] for r, s in zip(rows, spend)])
    run = folder / "run"
    assert (
        main(["train", "--data", str(data), "--target", "spend", "--drop", "customer", "--out", str(run), *FAST]) == 0
    )
    return run, rows


def _predict(run: Path, data: Path, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(data.with_suffix(".pred.csv"))]) == 0
    return [line for line in capsys.readouterr().err.splitlines() if "far outside" in line]


def test_values_far_outside_training_are_named_once_per_column(spend_run, tmp_path, capsys):
    run, trained = spend_run
    ages = [int(r[1]) for r in trained]  # type: ignore[call-overload]
    amounts = [float(r[3]) for r in trained]  # type: ignore[arg-type]
    new = _customers(np.random.default_rng(5), 40)
    new[6][1] = 240  # file line 8 (the header is line 1)
    new[20][1] = -5
    new[31][3] = round(max(amounts) * 1000, 2)  # file line 33
    data = _write(tmp_path / "new.csv", COLUMNS, new)
    warnings = _predict(run, data, capsys)
    assert len(warnings) == 2, warnings  # age and amount, each once; income is ordinary
    age, amount = sorted(warnings)
    assert "column 'age': 2 of the 40 rows hold values far outside" in age
    assert f"{data}:8 (age = 240)" in age
    assert "column 'amount': 1 of the 40 rows holds a value far outside" in amount
    assert f"{data}:33 (amount = {max(amounts) * 1000:.6g})" in amount
    # the range is the training split's (the rows the model was fitted on): values of the column, within the file's
    for said, column in ((age, ages), (amount, amounts)):
        low, high = map(float, re.search(r"training range \[([^,]+), ([^\]]+)\]", said).groups())  # type: ignore[union-attr]
        assert min(column) <= low < high <= max(column)
        assert low in {float(f"{v:.6g}") for v in column} and high in {float(f"{v:.6g}") for v in column}
        assert high - low > 0.5 * (max(column) - min(column))  # most of the spread: not a handful of rows
    assert all(w.startswith("predict: warning: ") for w in warnings)
    # the predictions are written all the same (a warning, not a refusal)
    assert len((tmp_path / "new.pred.csv").read_text().splitlines()) == 41


def test_a_negative_value_in_a_never_negative_column_is_named(spend_run, tmp_path, capsys):
    run, _ = spend_run
    new = _customers(np.random.default_rng(6), 10)
    new[4][1] = -5  # within one range's width below 18, but no age is negative
    warnings = _predict(run, _write(tmp_path / "neg.csv", COLUMNS, new), capsys)
    assert len(warnings) == 1 and "column 'age'" in warnings[0] and "neg.csv:6 (age = -5)" in warnings[0]


def test_ordinary_new_data_does_not_warn(spend_run, tmp_path, capsys):
    run, trained = spend_run
    # 5000 new customers of the same population (skewed incomes and amounts: new maxima are common), and the
    # training rows themselves
    fresh = _write(tmp_path / "fresh.csv", COLUMNS, _customers(np.random.default_rng(7), 5000))
    assert _predict(run, fresh, capsys) == []
    assert _predict(run, _write(tmp_path / "same.csv", COLUMNS, trained), capsys) == []


def test_a_run_saved_without_training_ranges_still_predicts(spend_run, tmp_path, capsys):
    run, _ = spend_run
    old = tmp_path / "old_run"
    old.mkdir()
    for f in run.iterdir():
        if f.is_file():
            (old / f.name).write_bytes(f.read_bytes())
    state = ds.load(old / "model.ds")
    assert "ranges" in state["preprocess"]  # what this version records
    del state["preprocess"]["ranges"]  # as an older downslope wrote it
    ds.save(state, old / "model.ds")
    new = _customers(np.random.default_rng(5), 12)
    new[2][1] = 240
    data = _write(tmp_path / "new.csv", COLUMNS, new)
    assert _predict(old, data, capsys) == []  # nothing to compare with: no warning, no error
    assert _predict(run, data, capsys) != []


def test_malformed_training_ranges_are_refused_in_one_line(spend_run, tmp_path, capsys):
    run, _ = spend_run
    bad = tmp_path / "bad_run"
    bad.mkdir()
    for f in run.iterdir():
        if f.is_file():
            (bad / f.name).write_bytes(f.read_bytes())
    state = ds.load(bad / "model.ds")
    state["preprocess"]["ranges"]["features"] = np.array([0, 99], dtype=np.int64)
    state["preprocess"]["ranges"]["min"] = np.array([0.0, 0.0])
    state["preprocess"]["ranges"]["max"] = np.array([1.0, 1.0])
    ds.save(state, bad / "model.ds")
    data = _write(tmp_path / "new.csv", COLUMNS, _customers(np.random.default_rng(5), 5))
    capsys.readouterr()
    assert main(["predict", str(bad), "--data", str(data), "--out", str(tmp_path / "p.csv")]) != 0
    err = capsys.readouterr().err
    assert "training ranges" in err and "Traceback" not in err
