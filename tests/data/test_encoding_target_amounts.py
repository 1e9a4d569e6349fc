"""Task inference for a target of few distinct integers: class labels (0..K-1, 1..K, ratings, counts)
stay classes, large amounts on a round step (prices rounded to 25,000 or to thousands) are a regression,
through both CSV readers and the NumPy path."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.encoding import infer_task, integer_step, integer_target_task
from downslope.data.tabular import read_csv, read_table


def prices(n: int, step: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 2))
    p = np.clip(np.round((300_000 + 50_000 * x[:, 0]) / step) * step, 150_000, 450_000).astype(int)
    return x, p


def write(tmp_path, x: np.ndarray, y: np.ndarray, name: str = "d.csv") -> str:
    path = tmp_path / name
    rows = [f"{a:.3f},{b:.3f},{v}" for (a, b), v in zip(x, y, strict=True)]
    path.write_text("a,b,price\n" + "\n".join(rows) + "\n")
    return str(path)


def test_prices_rounded_to_25000_are_a_regression(tmp_path, csv_reader):
    x, p = prices(400, 25_000)
    assert len(set(p)) == 13  # at most 20 distinct integers: classes before this rule
    table, _ = read_csv(write(tmp_path, x, p), target="price")
    assert table.task == "regression"
    assert "multiples of 25,000 from 150,000 to 450,000 (amounts, not class labels)" in table.task_reason


def test_the_readmes_prices_rounded_to_thousands_stay_a_regression(tmp_path, csv_reader):
    # README: "prices rounded to thousands stay a regression", with few distinct prices as with many
    r = np.random.default_rng(1)
    x = r.normal(size=(60, 2))
    few = 199_000 + 1_000 * r.choice([0, 3, 40, 77, 120, 150, 200, 260, 300, 380, 416], size=60)
    many = np.round(r.uniform(100_000, 360_000, size=1000), -3).astype(int)
    assert len(set(few)) <= 20 < len(set(many))
    assert read_csv(write(tmp_path, x, few), target="price")[0].task == "regression"
    x2 = r.normal(size=(1000, 2))
    assert read_csv(write(tmp_path, x2, many, "m.csv"), target="price")[0].task == "regression"


@pytest.mark.parametrize(
    "labels",
    [
        [0, 1],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 5],  # ratings
        list(range(16)),  # counts
        [-1, 1],
        [200, 404, 500],  # HTTP status codes: step 12, not a round one
        [10, 20, 30, 40, 50, 60, 70],  # decades: a round step but small numbers
        [100_000, 200_000],  # two values: a binary target
        [2015, 2016, 2017, 2018],  # years: step 1
    ],
)
def test_class_labels_stay_classes(tmp_path, csv_reader, labels):
    r = np.random.default_rng(0)
    y = np.asarray(labels * 10)
    table, _ = read_csv(write(tmp_path, r.normal(size=(len(y), 2)), y), target="price")
    assert table.task == "classification"
    assert infer_task([str(v) for v in y])[0] == "classification"


def test_the_rule_and_the_step():
    assert integer_step([150_000, 175_000, 450_000]) == 25_000 and integer_step([7]) == 0
    assert integer_step(np.array([1000.0, 3000.0, 9000.0])) == 2000
    assert integer_target_task(13, 400, 150_000, 450_000, 25_000)[0] == "regression"
    assert integer_target_task(13, 400, 150_000, 450_000)[0] == "classification"  # step unknown (1)
    assert integer_target_task(5, 400, 1_000, 5_000, 1_000)[0] == "regression"
    assert integer_target_task(4, 400, 50, 200, 50)[0] == "classification"  # 200 < 100 * 4
    assert integer_target_task(3, 400, 1212, 3636, 1212)[0] == "classification"  # 1212: not a round step
    assert infer_task(["150000", "175000", "200000", "150000"])[0] == "regression"


def test_numpy_labels_take_the_same_rule(tmp_path):
    x, p = prices(400, 25_000)
    path = tmp_path / "d.npy"
    np.save(path, np.c_[x, p].astype(np.float64))
    assert read_table(str(path))[0].task == "regression"
    np.save(path, np.c_[x, np.arange(400) % 5 + 1].astype(np.float64))  # ratings 1..5
    assert read_table(str(path))[0].task == "classification"
