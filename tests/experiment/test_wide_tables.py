"""A table whose encoded features number at least half its training rows gets a note saying so, with what
to try (a linear model with weight decay, or fewer columns): such a table trains poorly with the defaults."""

from __future__ import annotations

import numpy as np

from downslope.experiment import normalize_config
from downslope.experiment.inputs import prepare


def _wide_csv(tmp_path, rows: int, columns: int, categories: int = 0) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, columns))
    y = X[:, :3].sum(axis=1)
    header = [f"c{j}" for j in range(columns)] + (["kind"] if categories else []) + ["y"]
    lines = [",".join(header)]
    for i, (x, t) in enumerate(zip(X, y)):
        kind = [f"k{i % categories}"] if categories else []
        lines.append(",".join([f"{v:.4f}" for v in x] + kind + [f"{t:.4f}"]))
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _notes(path: str, **settings) -> list[str]:
    cfg = normalize_config({"data": path, "target": "y", "seed": 0, "verbose": 0, **settings}, "test")
    data = prepare(cfg)
    return [n for n in data.notes if "training rows: the model can fit noise" in n]


def test_a_wide_table_is_noted_with_what_to_try(tmp_path):
    path = _wide_csv(tmp_path, 100, 40)  # 65 training rows (the default 65% split), 40 features
    assert _notes(path) == [
        "wide: 40 features for 65 training rows: the model can fit noise; try --model linear "
        "--weight-decay 0.1 (or --weight-decay 0.1 with this model), or fewer columns"
    ]
    assert _notes(path, model="linear")[0].endswith("try --weight-decay 0.1, or fewer columns")
    assert _notes(path, model="linear", weight_decay=0.1)[0].endswith("try a larger --weight-decay, or fewer columns")


def test_one_hot_features_count_and_a_narrow_table_gets_no_note(tmp_path):
    assert _notes(_wide_csv(tmp_path, 100, 20)) == []  # 20 features for 65 rows: under half
    noted = _notes(_wide_csv(tmp_path, 100, 20, categories=20))  # + 20 one-hot features: 40
    assert len(noted) == 1 and " 40 features for 65 training rows" in noted[0]
