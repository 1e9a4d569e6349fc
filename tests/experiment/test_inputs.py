"""A run's data preparation on a data scientist's CSVs: one-hot columns are not standardized, the
one-hot vocabulary comes from the training rows only, the split kind (random or ordered) and the
notes about what the data looks like (time-ordered columns, case variants, single-row classes,
constant targets)."""

from __future__ import annotations

import re

import numpy as np

from downslope.experiment import normalize_config
from downslope.experiment.inputs import apply_preprocess, prepare, split_indices


def _csv(tmp_path, header, rows, name="d.csv"):
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(p)


def _cfg(path, **overrides):
    base = {"data": path, "target": "y", "seed": 0, "verbose": 0}
    return normalize_config(dict(base, **overrides), "test")


def _shop(n=200, seed=0):
    """x numeric, colour of 3 categories, y = 2x + colour effect."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = rng.normal()
        colour = ["red", "blue", "green"][i % 3]
        rows.append(f"{x:.4f},{colour},{2 * x + {'red': 1, 'blue': -1, 'green': 0}[colour]:.4f}")
    return rows


def test_one_hot_columns_pass_through_the_standardizer_unscaled(tmp_path, csv_reader):
    rows = _shop()
    rows[0] = rows[0].replace("red", "rare")  # a category held by one row only
    data = prepare(_cfg(_csv(tmp_path, "x,colour,y", rows), split="ordered"))
    names = data.feature_names
    scaler = data.preprocess["standardizer"]
    one_hot = [j for j, n in enumerate(names) if n.startswith("colour=")]
    assert names[0] == "x" and len(one_hot) == 4
    assert scaler["mean"][one_hot].tolist() == [0.0] * 4 and scaler["scale"][one_hot].tolist() == [1.0] * 4
    # the one-hot features stay 0/1 (standardized, 'colour=rare' was about sqrt(n) = 11 for its row)
    assert set(np.unique(data.X_train[:, one_hot]).tolist()) == {0.0, 1.0}
    # the numeric column is standardized on the training split
    assert abs(float(data.X_train[:, 0].mean())) < 1e-5 and abs(float(data.X_train[:, 0].std()) - 1) < 1e-4


def test_a_run_saved_with_scaled_one_hot_columns_replays_its_own_standardizer():
    # a run written before one-hot columns passed through: its standardizer scales them, and new data
    # is transformed exactly as that run's training data was
    X = np.array([[1.0, 1.0, 0.0], [3.0, 0.0, 1.0]], np.float32)
    old = {"standardizer": {"mean": np.array([2.0, 0.25, 0.75]), "scale": np.array([1.0, 0.433, 0.433])}}
    expected = (X - old["standardizer"]["mean"].astype(np.float32)) / old["standardizer"]["scale"].astype(np.float32)
    assert np.array_equal(apply_preprocess(X, old), expected)


def test_categories_only_in_test_rows_are_unseen_all_zero_and_counted(tmp_path, csv_reader):
    rows = _shop(100)
    for i in (97, 98, 99):  # the last rows (the test split of an ordered split) hold a new category
        rows[i] = rows[i].replace(rows[i].split(",")[1], "violet")
    data = prepare(_cfg(_csv(tmp_path, "x,colour,y", rows), split="ordered", val_split=0.1))
    assert "colour=violet" not in data.feature_names and data.n_features == 4
    assert data.preprocess["encoder"]["categories"]["colour"] == ["blue", "green", "red"]
    assert data.X_test.shape[1] == data.X_train.shape[1] == 4
    assert (data.X_test[-3:, 1:] == 0).all()  # all-zero one-hot (scikit-learn's handle_unknown='ignore')
    said = [n for n in data.notes if "not in the training split" in n]
    assert len(said) == 1 and "3 of the 20 test rows" in said[0] and "'colour': 3" in said[0]


def test_the_vocabulary_does_not_see_validation_rows_either(tmp_path, csv_reader):
    rows = _shop(100)
    rows[75] = rows[75].replace(rows[75].split(",")[1], "violet")  # a validation row of the ordered split
    data = prepare(_cfg(_csv(tmp_path, "x,colour,y", rows), split="ordered", val_split=0.1))
    assert "colour=violet" not in data.feature_names
    assert any("1 of the 10 validation rows" in n for n in data.notes)


def test_ordered_split_keeps_the_file_order():
    cfg = {"split": "ordered", "test_split": 0.2, "val_split": 0.15, "seed": 3}
    train, val, test = split_indices(100, np.zeros(100), None, cfg)
    assert train.tolist() == list(range(65)) and val.tolist() == list(range(65, 80))
    assert test.tolist() == list(range(80, 100))
    train, val, test = split_indices(100, np.zeros(100), None, dict(cfg, val_split=0.0))
    assert val is None and test.tolist() == list(range(80, 100)) and len(train) == 80
    # random: shuffled, the same rows as before this option existed
    train, val, test = split_indices(100, np.zeros(100), None, dict(cfg, split="random"))
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100)) and test.tolist() != list(
        range(80, 100)
    )


def test_a_column_rising_with_the_row_order_is_noted_for_a_random_split(tmp_path, csv_reader):
    rng = np.random.default_rng(0)
    rows = [f"{1672531200 + 3600 * i},{rng.normal():.3f},{rng.normal():.3f}" for i in range(60)]
    path = _csv(tmp_path, "epoch,n1,y", rows)
    data = prepare(_cfg(path))
    assert data.split["kind"] == "random"
    said = [n for n in data.notes if "'epoch' increases with the row order" in n]
    assert len(said) == 1 and "--split ordered" in said[0]
    ordered = prepare(_cfg(path, split="ordered"))
    assert ordered.split["kind"] == "ordered" and not any("row order" in n for n in ordered.notes)
    assert ordered.split["test_indices"].tolist() == list(range(48, 60))


def test_categories_differing_only_in_case_get_one_note(tmp_path, csv_reader):
    rows = [f"{i},{['Red', 'RED', 'red', 'Blue'][i % 4]},{i % 4}.5" for i in range(40)]
    data = prepare(_cfg(_csv(tmp_path, "x,colour,y", rows)))
    said = [n for n in data.notes if "differ only in upper/lower case" in n]
    assert len(said) == 1 and "'colour'" in said[0] and "'RED'" in said[0]


def test_a_class_with_a_single_row_turns_stratification_off_with_a_note(tmp_path, csv_reader):
    rows = [f"{i},{'ab'[i % 2]}" for i in range(40)] + ["99,lonely"]
    data = prepare(_cfg(_csv(tmp_path, "x,y", rows)))
    said = [n for n in data.notes if "single row" in n]
    assert len(said) == 1 and "'lonely'" in said[0] and "not stratified" in said[0]


def test_a_constant_target_is_noted(tmp_path, csv_reader):
    rows = [f"{i},7.5" for i in range(40)]
    data = prepare(_cfg(_csv(tmp_path, "x,y", rows)))
    said = [n for n in data.notes if "single value" in n]
    assert len(said) == 1 and "(7.5)" in said[0] and "standard deviation 0" in said[0]


def test_a_row_counter_is_told_to_be_dropped_and_a_sorted_feature_keeps_its_split(tmp_path, csv_reader):
    """A column rising with the row order is a time stamp (then --split ordered scores honestly), a row
    counter (then --drop it) or a feature the file is sorted by (then nothing is wrong): the note says
    which advice fits which, a counter's first, and never tells a file merely sorted to change its split."""
    rng = np.random.default_rng(0)
    rows = [f"{i},{rng.normal():.3f},{rng.normal():.3f}" for i in range(60)]
    said = [n for n in prepare(_cfg(_csv(tmp_path, "id,n1,y", rows))).notes if "row order" in n]
    assert len(said) == 1 and "by one per row" in said[0] and "--drop id" in said[0]
    assert said[0].index("--drop id") < said[0].index("--split ordered")
    assert "if the rows are in time order" in said[0]
    x = np.sort(rng.uniform(0, 6, 60))
    rows = [f"{a:.4f},{np.sin(a):.4f}" for a in x]
    said = [n for n in prepare(_cfg(_csv(tmp_path, "x,y", rows, name="s.csv"))).notes if "row order" in n]
    assert len(said) == 1 and "merely sorted by this column, nothing needs to change" in said[0]
    assert "if the rows are in time order" in said[0] and "pass --split ordered" not in said[0]


def test_target_classes_differing_only_in_case_get_a_note(tmp_path, csv_reader):
    rows = [f"{i},{['Cat', 'cat', 'Dog', 'dog'][i % 4]}" for i in range(40)]
    data = prepare(_cfg(_csv(tmp_path, "x,y", rows)))
    said = [n for n in data.notes if "differ only in upper/lower case" in n]
    assert len(said) == 1 and "target 'y'" in said[0] and "'Cat', 'cat'" in said[0] and "4 classes" in said[0]


def test_a_class_only_the_test_rows_hold_is_named(tmp_path, csv_reader):
    rows = [f"{i},{'ab'[i % 2]}" for i in range(90)] + [f"{i},late" for i in range(90, 100)]
    data = prepare(_cfg(_csv(tmp_path, "x,y", rows), split="ordered", val_split=0.1))
    said = [n for n in data.notes if "never saw" in n]
    assert len(said) == 1 and "'late' appear in 10 of the 20 test rows" in said[0]
    assert not any("never saw" in n for n in prepare(_cfg(_csv(tmp_path, "x,y", rows))).notes)  # stratified


def test_extreme_target_values_are_named_with_their_rows_and_splits(tmp_path, csv_reader):
    rng = np.random.default_rng(0)
    y = rng.normal(2e5, 5e4, 120)
    y[[2, 40]] = [6.5e6, 7e6]  # two prices tens of robust standard deviations away
    y[70] = 2e5 + 4 * 5e4  # far, but not extreme: not named
    data = prepare(_cfg(_csv(tmp_path, "x,y", [f"{i % 7},{v:.1f}" for i, v in enumerate(y)])))
    said = [n for n in data.notes if "extreme value" in n]
    # the rule spelled out: |y - median| > 10 x 1.4826 x median(|y - median|)
    robust = np.abs(y - np.median(y)) / (1.4826 * np.median(np.abs(y - np.median(y))))
    assert np.flatnonzero(robust > 10).tolist() == [2, 40]
    assert len(said) == 1 and "the target 'y' has 2 extreme value(s)" in said[0]
    assert "6.5e+06, 7e+06 (file line(s) 4, 42; " in said[0]  # the header is line 1
    assert "--loss huber" in said[0]
    placed = re.findall(r"(\d+) in (training|validation|test)", said[0])  # where the two rows landed
    assert sum(int(n) for n, _ in placed) == 2
    # a target without such values gets no note
    data = prepare(_cfg(_csv(tmp_path, "x,y", [f"{i % 7},{v:.1f}" for i, v in enumerate(np.delete(y, [2, 40]))])))
    assert not [n for n in data.notes if "extreme value" in n]


def test_text_cells_filled_by_mean_or_median_are_named_and_a_mostly_empty_column_gets_advice(tmp_path, csv_reader):
    # 90% of the rows have no cabin; --missing median cannot take a text column's median
    cabins = ["" if i % 10 else ("C85" if i % 20 else "E46") for i in range(200)]
    cabins[5] = "C85"
    rows = [f"{c},{20 + i % 30},{i % 2}" for i, c in enumerate(cabins)]
    data = prepare(_cfg(_csv(tmp_path, "Cabin,Age,y", rows), missing="median"))
    blank = cabins.count("")
    counts = {c: cabins.count(c) for c in ("C85", "E46")}
    said = [n for n in data.notes if "text column(s)" in n]
    assert len(said) == 2
    assert f"--missing median filled the empty cells of text column(s) 'Cabin' ({blank} of 200 cells" in said[0]
    assert "most frequent category" in said[0]
    filled = np.asarray(data.X_train)[:, data.feature_names.index("Cabin=C85")]
    assert counts["C85"] > counts["E46"] and "with 'C85'" in said[0] and set(np.unique(filled)) == {0.0, 1.0}
    assert "mostly empty" in said[1] and "--drop Cabin" in said[1] and "'missing'" in said[1]
    # most_frequent asked for this fill: said only because the column is mostly empty
    data = prepare(_cfg(_csv(tmp_path, "Cabin,Age,y", rows), missing="most_frequent"))
    assert [n for n in data.notes if "text column(s)" in n and "mostly empty" in n] and not [
        n for n in data.notes if "filled the empty cells" in n
    ]
    # a few blanks: the fill is named, no advice to drop the column
    few = [("" if i % 50 == 0 else c or "C85") for i, c in enumerate(cabins)]
    rows = [f"{c},{20 + i % 30},{i % 2}" for i, c in enumerate(few)]
    data = prepare(_cfg(_csv(tmp_path, "Cabin,Age,y", rows), missing="mean"))
    said = [n for n in data.notes if "text column(s)" in n]
    assert len(said) == 1 and f"({few.count('')} of 200 cells" in said[0]


def test_a_detected_decimal_comma_is_recorded_and_the_recorded_config_reads_the_same_numbers(tmp_path, csv_reader):
    rng = np.random.default_rng(1)
    a, b = rng.normal(5, 2, 60), rng.integers(0, 9, 60)
    rows = [f"{x:.3f};{k};{3 * x + k:.3f}".replace(".", ",") for x, k in zip(a, b)]
    path = _csv(tmp_path, "a;b;y", rows)
    cfg = _cfg(path, sep=";")
    detected = prepare(cfg)
    assert any("as with --decimal ','" in n for n in detected.notes)
    assert (cfg["decimal"], cfg["thousands"]) == (",", "")  # what the run used, for its config.toml
    again = prepare(_cfg(path, sep=";", decimal=cfg["decimal"], thousands=cfg["thousands"]))
    np.testing.assert_array_equal(again.X_train, detected.X_train)
    np.testing.assert_array_equal(again.y_test, detected.y_test)
    # the file's own numbers, read as a decimal comma says
    raw = np.array([[float(c.replace(",", ".")) for c in r.split(";")] for r in rows])
    assert set(np.round(detected.y_test[:, 0], 3)) <= set(np.round(raw[:, 2], 3))
    # a text column holding a comma number ("1,5" is a category there) would be read otherwise: not recorded
    texts = [f"{r.split(';')[0]};{'1,5' if i % 3 else 'red'};{r.split(';')[2]}" for i, r in enumerate(rows)]
    cfg = _cfg(_csv(tmp_path, "a;b;y", texts, name="t.csv"), sep=";")
    assert "b=1,5" in prepare(cfg).feature_names
    assert (cfg["decimal"], cfg["thousands"]) == (".", "")


def test_extreme_target_values_name_file_lines_past_blank_lines_multiline_fields_and_dropped_rows(tmp_path, csv_reader):
    rng = np.random.default_rng(0)
    y = rng.normal(2e5, 5e4, 120)
    y[[2, 40]] = [6.5e6, 7e6]
    lines = ["x,note,y"]
    for i, v in enumerate(y):
        if i == 1:
            lines.append("")  # a blank line: skipped, but counted in the file's lines
        note = '"two\nlines"' if i == 10 else "ok"  # a quoted field spanning two lines
        lines.append(f"{i % 7 if i != 20 else ''},{note},{v:.1f}")  # row 20: a blank feature (dropped)
    p = tmp_path / "d.csv"
    p.write_text("\n".join(lines) + "\n")
    data = prepare(_cfg(str(p), missing="drop"))
    said = [n for n in data.notes if "extreme value" in n]
    # the lines where the two values are written, read back from the file itself
    at = [n + 1 for n, text in enumerate(p.read_text().split("\n")) if text.endswith((",6500000.0", ",7000000.0"))]
    assert at == [5, 44]
    assert len(said) == 1 and "(file line(s) 5, 44; " in said[0]
