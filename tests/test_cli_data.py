"""A stranger's CSV through the real command line: targets in their own units, columns read with
scikit-learn's semantics (stray words, id columns, missing values, labels), evaluate/predict on the
right rows, and settings recorded as used. Each test runs ``downslope.cli.main`` in-process."""

from __future__ import annotations

import json
import pydoc

import numpy as np
import pytest
import tomllib

import downslope as ds
from downslope import serialization
from downslope.cli import main

pytest.importorskip("matplotlib")

FAST = ["--hidden", "16", "--epochs", "5", "--patience", "0", "--quiet"]


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return path


def houses(path, n=200, seed=0):
    """Prices around 2.5e5 from four features (a smooth function plus noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    price = 2.5e5 + 6e4 * X[:, 0] - 3e4 * X[:, 1] ** 2 + 2e4 * np.sin(2 * X[:, 2]) + 5e3 * rng.normal(size=n)
    rows = [[f"{v:.5f}" for v in x] + [f"{p:.2f}"] for x, p in zip(X, price)]
    return write_csv(path, ["a", "b", "c", "d", "price"], rows)


def blobs_csv(path, labels, n=200, seed=0, missing=0.0):
    """Two features; the class (named by ``labels``) is which of len(labels) Gaussian blobs a row came from."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(labels), n)
    centres = rng.uniform(-4, 4, (len(labels), 2))
    X = centres[k] + rng.normal(size=(n, 2))
    cells = [[f"{v:.4f}" for v in x] for x in X]
    for r in range(n):
        if rng.random() < missing:
            cells[r][int(rng.integers(0, 2))] = ""
    return write_csv(path, ["x1", "x2", "label"], [c + [labels[j]] for c, j in zip(cells, k)])


def err(capsys) -> str:
    text = capsys.readouterr().err.strip()
    return text


def one_line_error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------- regression target
@pytest.mark.slow
def test_regression_target_is_standardized_on_the_training_split_and_outputs_are_in_its_units(tmp_path, capsys):
    data = houses(tmp_path / "houses.csv")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "price", "--out", str(run), *FAST, "--epochs", "40"]) == 0
    state = serialization.load(run / "model.ds")
    scaler = state["preprocess"]["target_scaler"]
    assert set(scaler) == {"mean", "scale"}  # Standardizer.state_dict()'s format
    y = np.loadtxt(data, delimiter=",", skiprows=1)[:, -1]
    test = np.asarray(state["split"]["test_indices"])
    train_rows = np.setdiff1d(np.arange(len(y)), test)
    # fitted on training rows only: it differs from the whole column's mean, lies within the training rows'
    assert float(scaler["mean"][0]) != pytest.approx(float(y.mean()), rel=1e-7)
    assert y[train_rows].min() < float(scaler["mean"][0]) < y[train_rows].max()
    assert float(scaler["scale"][0]) == pytest.approx(float(y[train_rows].std()), rel=0.25)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.5 and metrics["test_rmse"] > 100  # rmse in dollars, not in standard units
    assert metrics["loss_units"].startswith("standardized target")  # the logged loss says its units
    cfg = tomllib.loads((run / "config.toml").read_text())
    assert cfg["scale_target"] is True
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    preds = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert abs(preds.mean() - y.mean()) < 0.2 * y.std()  # in the data's units
    assert np.corrcoef(preds, y)[0, 1] > 0.7


def test_no_scale_target_turns_it_off_and_the_advice_names_the_targets_scale(tmp_path, capsys):
    data = houses(tmp_path / "houses.csv")
    run = tmp_path / "raw"
    args = ["train", "--data", str(data), "--out", str(run), "--no-scale-target", "--hidden", "16", "--epochs", "5"]
    assert main([*args, "--patience", "0"]) in (0, 3)
    printed = capsys.readouterr().out
    assert "target_scaler" not in serialization.load(run / "model.ds")["preprocess"]
    assert "because of the target's scale" in printed and "--no-scale-target" in printed
    assert "lower the learning rate" not in printed
    assert tomllib.loads((run / "config.toml").read_text())["scale_target"] is False


# ---------------------------------------------------------------------- reading columns
def test_a_stray_word_in_a_numeric_column_names_file_line_column_and_value(tmp_path, capsys):
    rows = [[i, i * 2.0, i % 2] for i in range(20)]
    rows[6][1] = "oops"
    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], rows)
    assert main(["train", "--data", str(data), *FAST]) == 2
    line = one_line_error(capsys)
    assert "d.csv:8:2 (column 'b')" in line and "'oops'" in line


def test_an_id_like_text_column_is_refused_by_default_and_drop_leaves_it_out(tmp_path, capsys):
    rows = [[f"user{i:04d}", i % 7, i % 3, i % 2] for i in range(150)]
    data = write_csv(tmp_path / "d.csv", ["id", "a", "b", "y"], rows)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r0"), *FAST]) == 2
    line = one_line_error(capsys)
    assert "column 'id'" in line and "150 distinct values" in line and "--drop id" in line
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--drop", "id", "--out", str(run), *FAST]) == 0
    state = serialization.load(run / "model.ds")
    assert state["feature_names"] == ["a", "b"] and state["n_features"] == 2
    assert tomllib.loads((run / "config.toml").read_text())["drop"] == ["id"]


def test_missing_values_error_names_the_option_and_mean_fills_them_at_training_and_prediction(tmp_path, capsys):
    data = blobs_csv(tmp_path / "d.csv", ["a", "b"], missing=0.1)
    assert main(["train", "--data", str(data), *FAST]) == 2
    assert "--missing" in one_line_error(capsys)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--missing", "mean", "--val-split", "0", "--out", str(run), *FAST]
    assert main(args) == 0
    state = serialization.load(run / "model.ds")
    imputer = state["preprocess"]["imputer"]
    assert imputer["strategy"] == "mean"
    # the fill values are the training rows' means (all rows but the test split: no validation split here)
    table = np.genfromtxt(data, delimiter=",", skip_header=1, usecols=(0, 1))
    test = np.asarray(state["split"]["test_indices"])
    train = np.setdiff1d(np.arange(len(table)), test)
    np.testing.assert_allclose(imputer["fill"], np.nanmean(table[train], axis=0), rtol=1e-4)
    assert tomllib.loads((run / "config.toml").read_text())["missing"] == "mean"
    new = write_csv(tmp_path / "new.csv", ["x1", "x2"], [["", "1.0"], ["0.5", "NA"]])
    assert main(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 3


def test_labels_are_distinct_values_numbers_compared_as_numbers(tmp_path, capsys):
    labels = ["1", "2.0", "1.0", "2"]
    data = blobs_csv(tmp_path / "d.csv", labels)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    state = serialization.load(run / "model.ds")
    assert state["n_outputs"] == 2 and state["class_names"] == ["1", "2"]  # not 3 outputs with an empty class 0
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "prediction,p_1,p_2" and {row.split(",")[0] for row in lines[1:]} <= {"1", "2"}


@pytest.mark.slow
def test_string_labels_and_a_single_class(tmp_path, capsys):
    run = tmp_path / "run"
    data = blobs_csv(tmp_path / "s.csv", ["cat", "dog", "emu"])
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    assert serialization.load(run / "model.ds")["class_names"] == ["cat", "dog", "emu"]
    one = blobs_csv(tmp_path / "one.csv", ["same"])
    capsys.readouterr()
    assert main(["train", "--data", str(one), *FAST]) == 2
    line = one_line_error(capsys)
    assert "single class ('same')" in line


@pytest.mark.slow
def test_25_integer_labels_are_classes_by_the_documented_rule_and_task_overrides(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [[f"{v:.3f}", int(k)] for v, k in zip(rng.normal(size=300), rng.integers(0, 25, 300))]
    data = write_csv(tmp_path / "d.csv", ["x", "y"], rows)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    assert tomllib.loads((run / "config.toml").read_text())["task"] == "classification"
    assert serialization.load(run / "model.ds")["n_outputs"] == 25
    forced = tmp_path / "reg"
    assert main(["train", "--data", str(data), "--task", "regression", "--out", str(forced), *FAST]) == 0
    assert tomllib.loads((forced / "config.toml").read_text())["task"] == "regression"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "at most 100 lying close together" in " ".join(capsys.readouterr().out.split())


def test_many_distinct_integers_far_apart_are_a_regression_not_classes(tmp_path, capsys):
    """Prices rounded to the nearest 5,000 (44 distinct integers from 1e5 to 3.6e5) are amounts, not
    44 class codes: they lie too far apart. 44 codes 0..43 are still classes."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 400)
    price = np.round((1e5 + 2.6e5 * x) / 5000) * 5000
    assert len(np.unique(price)) > 20
    data = write_csv(tmp_path / "prices.csv", ["size", "price"], [[f"{a:.4f}", int(p)] for a, p in zip(x, price)])
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    assert tomllib.loads((run / "config.toml").read_text())["task"] == "regression"
    assert "too far apart to be class codes" in capsys.readouterr().out
    codes = write_csv(tmp_path / "codes.csv", ["size", "y"], [[f"{a:.4f}", i % 44] for i, a in enumerate(x)])
    assert main(["train", "--data", str(codes), "--out", str(tmp_path / "codes"), *FAST]) == 0
    assert tomllib.loads((tmp_path / "codes" / "config.toml").read_text())["task"] == "classification"


def test_a_value_overflowing_float32_says_what_where_and_what_to_do(tmp_path, capsys):
    rows = [[i, i % 2] for i in range(20)]
    rows[3][0] = "1e39"
    data = write_csv(tmp_path / "d.csv", ["big", "y"], rows)
    assert main(["train", "--data", str(data), *FAST]) == 2
    line = one_line_error(capsys)
    assert "d.csv:5:1 (column 'big')" in line and "overflows float32" in line and "--drop big" in line
    assert "check_finite" not in line


# ---------------------------------------------------------------------- NPZ files
def test_npz_truncated_string_labels_and_huge_label_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    np.savez(tmp_path / "good.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    whole = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    assert main(["train", "--data", str(tmp_path / "cut.npz"), *FAST]) == 2
    assert "truncated" in one_line_error(capsys)
    np.savez(tmp_path / "words.npz", X=X, y=np.where(X[:, 0] > 0, "up", "down"))
    run = tmp_path / "words"
    assert main(["train", "--data", str(tmp_path / "words.npz"), "--out", str(run), *FAST]) == 0
    assert serialization.load(run / "model.ds")["class_names"] == ["down", "up"]
    np.savez(tmp_path / "big.npz", X=X, y=np.where(X[:, 0] > 0, 1e9, 0.0))
    run = tmp_path / "big"
    assert main(["train", "--data", str(tmp_path / "big.npz"), "--out", str(run), *FAST]) == 0
    state = serialization.load(run / "model.ds")
    assert state["n_outputs"] == 2 and state["class_names"] == ["0", "1000000000"]


def test_landscape_start_far_out_is_one_line(tmp_path, capsys):
    code = main(["landscape", "--start", "1e300,1e300", "--steps", "3", "--out", str(tmp_path / "l")])
    assert code == 2
    assert "--start" in one_line_error(capsys)


# ---------------------------------------------------------------------- evaluate and predict
@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "moons"
    assert main(["train", "--data", "moons", "--out", str(run), *FAST]) == 0
    return run


def test_evaluate_defaults_to_the_runs_own_test_split_and_says_so(moons_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(moons_run)]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    stored = json.loads((moons_run / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(stored["test_accuracy"], abs=1e-6)
    assert metrics["rows"] == 80 and "the run's test split: 80 of the 400 rows of moons" in captured.err


def test_evaluate_on_other_data_says_which_rows_and_warns_about_overlap(moons_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(moons_run), "--data", "moons"]) == 0
    err = capsys.readouterr().err
    assert "all 400 rows of moons" in err and "320 of these 400 rows were used to train the run" in err


def test_predict_takes_features_only_files_for_a_builtin_dataset_model(moons_run, tmp_path, capsys):
    X = ds.data.datasets.load("moons", seed=0).X[:5]
    np.save(tmp_path / "x.npy", X)
    write_csv(tmp_path / "h.csv", ["u", "v"], X.tolist())
    (tmp_path / "n.csv").write_text("\n".join(f"{a},{b}" for a, b in X.tolist()) + "\n")
    outs = []
    for name in ("x.npy", "h.csv", "n.csv"):
        out = tmp_path / f"{name}.pred.csv"
        assert main(["predict", str(moons_run), "--data", str(tmp_path / name), "--out", str(out)]) == 0
        outs.append(out.read_text())
        assert len(outs[-1].splitlines()) == 6
    assert outs[0] == outs[1] == outs[2]


def test_config_records_the_values_used_and_leaves_out_what_does_not_apply(moons_run):
    cfg = tomllib.loads((moons_run / "config.toml").read_text())
    assert cfg["lr"] == pytest.approx(0.001) and cfg["optimizer"] == "adam"
    assert cfg["task"] == "classification" and cfg["loss"] == "cross_entropy"
    for absent in ("channels", "momentum", "clip_norm", "target_loss", "max_time", "scale_target", "missing"):
        assert absent not in cfg, absent
    report = (moons_run / "report.html").read_text()
    assert "channels" not in report


def test_evaluate_refuses_a_stored_config_without_a_key_or_a_fit_checkpoint_in_one_line(moons_run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(moons_run, broken)
    state = serialization.load(broken / "model.ds")
    del state["config"]["hidden"]
    serialization.save(state, broken / "model.ds")
    capsys.readouterr()
    assert main(["evaluate", str(broken)]) == 2
    assert "lacks ['hidden']" in one_line_error(capsys)
    serialization.save({"kind": "downslope-training-state", "epoch": 3, "model": state["model"]}, broken / "model.ds")
    assert main(["evaluate", str(broken)]) == 2
    assert "training checkpoint" in one_line_error(capsys)


# ---------------------------------------------------------------------- compare, lr-find, fit
def test_compare_prints_progress_per_run_and_labels_every_column(tmp_path, capsys):
    args = ["compare", "--data", "blobs", "--hidden", "8", "--epochs", "3", "--patience", "0"]
    assert main([*args, "--optimizers", "sgd,adam", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "[1/2] sgd" in out and "[2/2] adam" in out
    assert "final loss (cross-entropy)" in out and "to target (s)" in out and "test accuracy" in out


@pytest.mark.slow
def test_compare_calls_a_run_diverged_by_the_training_loops_rule(tmp_path, capsys):
    # RMSprop at lr=5 sends the digits loss from about 2.3 to tens of thousands in the first epoch and
    # then down to hundreds: it diverged, though its loss never rose 100x above a previous epoch's
    args = ["compare", "--data", "digits", "--hidden", "16", "--epochs", "4", "--patience", "0", "--quiet"]
    assert main([*args, "--optimizers", "rmsprop", "--lrs", "0.01,5", "--out", str(tmp_path / "c")]) == 0
    rows = {r.split(",")[0]: r.split(",") for r in (tmp_path / "c" / "compare.csv").read_text().splitlines()[1:]}
    assert rows["rmsprop lr=5"][-1] == "True" and rows["rmsprop lr=0.01"][-1] == "False"


def test_lr_find_plot_has_a_title_and_a_clipped_log_loss_axis():
    from downslope.cli import _lr_find_axes
    from downslope.train.lr_find import LRFinderResult

    lrs = list(np.geomspace(1e-5, 10, 40))
    losses = [2.3] * 20 + [2.3 - 0.1 * i for i in range(10)] + [10.0**i for i in range(10)]  # a final spike
    result = LRFinderResult(lrs, losses, losses, suggestion=1e-3, stop_reason="the loss diverged")
    ax = _lr_find_axes(result, {"data": "digits", "optimizer": "adam"})
    assert "digits" in ax.get_title() and ax.get_yscale() == "log"
    assert ax.get_ylim()[1] < 10  # the spike to 1e9 is clipped off


def test_the_stop_message_is_printed_once(tmp_path, capsys):
    args = ["train", "--data", "moons", "--hidden", "8", "--epochs", "300", "--patience", "1", "--lr", "0.05"]
    assert main([*args, "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).lower().count("early stopping: val_loss did not improve") == 1
    assert main([*args, "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().out.lower().count("early stopping: val_loss did not improve") == 1


def test_help_of_fit_shows_its_default_batch_size():
    text = pydoc.plain(pydoc.render_doc(ds.fit))
    assert "object at 0x" not in text and "batch_size: 'int | str | None' = 32," in text


# ---------------------------------------------------------------------- against scikit-learn, default flags
def _split_rows(run):
    state = serialization.load(run / "model.ds")
    test = np.asarray(state["split"]["test_indices"])
    return np.setdiff1d(np.arange(int(state["split"]["n_rows"])), test), test


@pytest.mark.slow
def test_regression_csv_in_the_1e5_range_matches_scikit_learns_pipeline(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = houses(tmp_path / "houses.csv", n=300)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "price", "--out", str(run), "--quiet"]) == 0
    ours = json.loads((run / "metrics.json").read_text())["test_r2"]
    table = np.loadtxt(data, delimiter=",", skiprows=1)
    X, y = table[:, :-1], table[:, -1]
    train, test = _split_rows(run)
    mlp = MLPRegressor(
        hidden_layer_sizes=(128, 64), batch_size=64, early_stopping=True, validation_fraction=0.1875, random_state=0
    )
    reference = make_pipeline(StandardScaler(), TransformedTargetRegressor(mlp, transformer=StandardScaler()))
    reference.fit(X[train], y[train])
    theirs = r2_score(y[test], reference.predict(X[test]))
    print(f"R^2 downslope {ours:.4f}, scikit-learn {theirs:.4f}")
    assert theirs > 0.8 and ours >= theirs - 0.02


def _classes_csv(path, labels, n=2000, seed=1, missing=0.0):
    """Four features, overlapping Gaussian classes (so neither model scores 100%), labels as given."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(labels), n)
    centres = rng.normal(scale=1.2, size=(len(labels), 4))
    X = centres[k] + rng.normal(size=(n, 4))
    X[:, 3] = X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=n)  # something nonlinear
    cells = [[f"{v:.4f}" for v in x] for x in X]
    for r in range(n):
        if rng.random() < missing:
            cells[r][int(rng.integers(0, 4))] = ""
    return write_csv(path, ["f1", "f2", "f3", "f4", "label"], [c + [labels[j]] for c, j in zip(cells, k)])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("labels", "missing"),
    [(["setosa", "versicolor", "virginica"], 0.0), (["1", "2"], 0.0), (["a", "b", "c"], 0.1)],
    ids=["string-labels", "labels-1-2", "missing-mean"],
)
def test_classification_csv_matches_scikit_learns_pipeline(tmp_path, labels, missing):
    pytest.importorskip("sklearn")
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = _classes_csv(tmp_path / "d.csv", labels, missing=missing)
    run = tmp_path / "run"
    flags = ["--missing", "mean"] if missing else []
    assert main(["train", "--data", str(data), "--out", str(run), "--quiet", *flags]) == 0
    ours = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    assert serialization.load(run / "model.ds")["n_outputs"] == len(labels)
    table = np.genfromtxt(data, delimiter=",", skip_header=1, dtype=str)
    X = np.array([[float(v) if v else np.nan for v in row[:-1]] for row in table])
    y = table[:, -1]
    train, test = _split_rows(run)
    mlp = MLPClassifier(
        hidden_layer_sizes=(128, 64), batch_size=64, early_stopping=True, validation_fraction=0.1875, random_state=0
    )
    reference = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(), mlp)
    reference.fit(X[train], y[train])
    theirs = float((reference.predict(X[test]) == y[test]).mean())
    print(f"accuracy downslope {ours:.4f}, scikit-learn {theirs:.4f}")
    assert ours >= theirs - 0.01


# ---------------------------------------------------------------------- the README's own-CSV workflow
@pytest.mark.slow
def test_the_readmes_own_csv_commands_run_as_written(tmp_path, monkeypatch, capsys):
    import re
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Your own CSV", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)  # type: ignore[union-attr]
    commands = [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]
    # the block's first command writes houses.csv and new_houses.csv (for a reader without a CSV at hand)
    assert [c[:2] for c in commands] == [
        ["python", "-c"],
        ["downslope", "train"],
        ["downslope", "evaluate"],
        ["downslope", "predict"],
    ]
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, "-c", commands[0][2]], check=True, cwd=tmp_path, timeout=120)
    for command in commands[1:]:
        assert main([*command[1:], *(["--epochs", "20", "--quiet"] if command[1] == "train" else [])]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    _, test = _split_rows(tmp_path / "runs" / "houses")
    assert json.loads(printed[-1])["rows"] == len(test) > 0  # evaluate scored the run's test rows
    new_rows = len((tmp_path / "new_houses.csv").read_text().splitlines()) - 1
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == new_rows + 1 > 1


def test_the_readme_says_how_to_get_the_cpu_wheel_of_torch():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert 'pip install -e ".[plot,datasets]" && downslope train' in readme
    assert 'pip install -e ".[test]" && python -m pytest' in readme
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme


def test_missing_drop_is_kept_by_the_run_evaluate_lines_up_and_predict_refuses_a_gap(tmp_path, capsys):
    data = blobs_csv(tmp_path / "d.csv", ["a", "b"], missing=0.1)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--missing", "drop", "--out", str(run), *FAST]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    captured = capsys.readouterr()
    stored = json.loads((run / "metrics.json").read_text())
    assert json.loads(captured.out)["accuracy"] == pytest.approx(stored["test_accuracy"], abs=1e-6)
    new = write_csv(tmp_path / "new.csv", ["x1", "x2"], [["", "1.0"]])
    assert main(["predict", str(run), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 2
    line = one_line_error(capsys)  # where, as file:line:column, and what the run was trained with
    assert "new.csv:2:1 (column 'x1'): missing value" in line and "trained with --missing drop" in line
    assert "--missing mean|median|most_frequent" in line


# ---------------------------------------------------------------------- field separators
def test_a_semicolon_csv_trains_with_sep_and_predict_and_evaluate_reuse_the_runs_separator(tmp_path, capsys):
    comma = houses(tmp_path / "comma.csv", n=120)
    semi = tmp_path / "semi.csv"
    semi.write_text(comma.read_text().replace(",", ";"))
    assert main(["train", "--data", str(semi), "--out", str(tmp_path / "r0"), *FAST]) == 2
    assert "is the separator ';'? pass --sep ';'" in one_line_error(capsys)
    run = tmp_path / "run"
    assert main(["train", "--data", str(semi), "--sep", ";", "--out", str(run), *FAST, "--seed", "3"]) == 0
    assert tomllib.loads((run / "config.toml").read_text())["sep"] == ";"
    # the same rows with commas train the same model: the separator changes nothing else
    twin = tmp_path / "twin"
    assert main(["train", "--data", str(comma), "--out", str(twin), *FAST, "--seed", "3"]) == 0
    capsys.readouterr()
    features = tmp_path / "new.csv"
    features.write_text("\n".join(";".join(line.split(",")[:4]) for line in comma.read_text().splitlines()[:6]) + "\n")
    assert main(["predict", str(run), "--data", str(features), "--out", str(tmp_path / "p.csv")]) == 0
    comma_features = tmp_path / "new_comma.csv"
    comma_features.write_text(features.read_text().replace(";", ","))
    assert main(["predict", str(twin), "--data", str(comma_features), "--out", str(tmp_path / "q.csv")]) == 0
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "q.csv").read_text()
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 6  # header + 5 rows
    # a file in another format is named with --sep
    assert (
        main(["predict", str(run), "--data", str(comma_features), "--sep", ",", "--out", str(tmp_path / "c.csv")]) == 0
    )
    assert (tmp_path / "c.csv").read_text() == (tmp_path / "p.csv").read_text()
    capsys.readouterr()
    # another file (the file trained on itself is scored on the run's test split): all its rows
    fewer = tmp_path / "fewer.csv"
    fewer.write_text("".join(semi.read_text().splitlines(keepends=True)[:-1]))
    assert main(["evaluate", str(run), "--data", str(fewer)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == 119


@pytest.mark.parametrize("sep", ["ab", "x", ""])
def test_a_bad_separator_is_one_clear_line(tmp_path, capsys, sep):
    data = houses(tmp_path / "h.csv", n=20)
    assert main(["train", "--data", str(data), "--sep", sep, "--out", str(tmp_path / "r"), *FAST]) == 2
    assert "bad CSV separator" in one_line_error(capsys)


# ---------------------------------------------------------------------- a stranger's second round
def _features(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3))


def _regression_rows(n=300, seed=0, offset=0.0):
    X = _features(n, seed)
    y = offset + 10 + X @ np.array([3.0, -2.0, 1.0]) + 0.3 * np.random.default_rng(seed + 1).normal(size=n)
    return X, [[f"{v:.6f}" for v in x] + [repr(float(t))] for x, t in zip(X, y)]


@pytest.mark.parametrize("stray", ["-", "12.5a"])
@pytest.mark.parametrize("missing", [[], ["--missing", "drop"]])
def test_a_numeric_target_with_a_stray_word_is_an_error_not_hundreds_of_classes(tmp_path, capsys, stray, missing):
    """A regression target with one '-' (or '12.5a') trained a classifier of ~600 classes and exited 0."""
    _, rows = _regression_rows()
    rows[5][-1] = stray
    data = write_csv(tmp_path / "t.csv", ["a", "b", "c", "y"], rows)
    assert main(["train", "--data", str(data), *missing, "--out", str(tmp_path / "r"), *FAST]) == 2
    line = one_line_error(capsys)
    assert f"t.csv:7:4 (column 'y'): expected a number, got {stray!r}" in line, line
    assert "--task classification" in line and not (tmp_path / "r").exists()
    # text labels stay classes, and --task classification takes the column as labels
    assert main(["train", "--data", str(data), "--task", "classification", "--out", str(tmp_path / "c"), *FAST]) == 0


def test_a_target_with_a_large_offset_keeps_its_spread(tmp_path, capsys):
    """y = 1e9 + N(10, 3.6) collapsed to 1e9 in float32 before standardization: test_r2 read 1.0 and
    every prediction was 1e9."""
    _, rows = _regression_rows(offset=1e9)
    data = write_csv(tmp_path / "offset.csv", ["a", "b", "c", "y"], rows)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST, "--epochs", "60"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.5 < metrics["test_r2"] < 1.0 and metrics["test_mse"] > 1e-3
    scaler = serialization.load(run / "model.ds")["preprocess"]["target_scaler"]
    assert 5 < float(np.ravel(scaler["mean"])[0]) - 1e9 < 15 and 1 < float(np.ravel(scaler["scale"])[0]) < 10
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    preds = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1) - 1e9
    y = np.array([float(r[-1]) for r in rows]) - 1e9
    assert preds.std() > 1 and np.corrcoef(preds, y)[0, 1] > 0.8


def test_ages_are_a_regression_and_class_codes_are_classes(tmp_path, capsys):
    """45 distinct ages 18..70 were trained as 45 classes; more than 20 integers are classes only when
    they look like class codes (from 0 or 1, close together)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=800)
    age = np.clip(np.round(44 + 10 * x), 18, 70).astype(int)
    assert len(np.unique(age)) > 20
    data = write_csv(tmp_path / "age.csv", ["x", "age"], [[f"{a:.4f}", b] for a, b in zip(x, age)])
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), *FAST]) == 0
    out = capsys.readouterr().out
    assert tomllib.loads((tmp_path / "r" / "config.toml").read_text())["task"] == "regression"
    assert "not class codes starting at 0 or 1" in out and "--task classification overrides" in out
    codes = write_csv(tmp_path / "codes.csv", ["x", "y"], [[f"{a:.4f}", 1 + i % 30] for i, a in enumerate(x)])
    assert main(["train", "--data", str(codes), "--out", str(tmp_path / "c"), *FAST]) == 0
    assert tomllib.loads((tmp_path / "c" / "config.toml").read_text())["task"] == "classification"
    assert "--task regression overrides" in capsys.readouterr().out


def test_predict_takes_a_builtin_models_columns_by_header_name(tmp_path, capsys):
    """iris features with the header in reverse order were taken by position (accuracy 0.33)."""
    run = tmp_path / "iris"
    assert main(["train", "--data", "iris", "--out", str(run), *FAST]) == 0
    table = ds.data.datasets.load("iris")
    names = table.feature_names
    write_csv(tmp_path / "in_order.csv", names, table.X.tolist())
    write_csv(tmp_path / "reversed.csv", names[::-1], table.X[:, ::-1].tolist())
    for name in ("in_order", "reversed"):
        assert main(["predict", str(run), "--data", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "in_order").read_text() == (tmp_path / "reversed").read_text()
    write_csv(tmp_path / "partial.csv", [names[0], names[1], "u", "v"], table.X.tolist())
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(tmp_path / "partial.csv"), "--out", str(tmp_path / "p")]) == 2
    line = one_line_error(capsys)
    assert "partial.csv:1:" in line and repr(names[2]) in line and "must match" in line


def test_predict_takes_a_headerless_file_whose_first_row_repeats_values(tmp_path, capsys):
    """A digits row (many zeros) read as a header of repeated names was refused before it was data."""
    run = tmp_path / "digits"
    assert main(["train", "--data", "digits", "--out", str(run), *FAST]) == 0
    rows = ds.data.datasets.load("digits").X[:10]
    (tmp_path / "new.csv").write_text("\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n")
    np.save(tmp_path / "new.npy", rows.astype(np.float32))
    for name in ("new.csv", "new.npy"):
        assert main(["predict", str(run), "--data", str(tmp_path / name), "--out", str(tmp_path / f"{name}.out")]) == 0
    assert (tmp_path / "new.csv.out").read_text() == (tmp_path / "new.npy.out").read_text()


def _sqft_rows(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    sqft = rng.choice([300, 1200, 2500, 4300, 15000], n)
    y = X[:, 0] + sqft / 1000
    return X, sqft, y


def test_numbers_with_thousands_separators_are_numbers(tmp_path, capsys):
    """'"1,200"' cells (five distinct values) became five one-hot categories."""
    X, sqft, y = _sqft_rows()
    lines = ["a,b,sqft,price"] + [f'{a:.4f},{b:.4f},"{s:,}",{t:.4f}' for (a, b), s, t in zip(X, sqft, y)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--out", str(run), *FAST]) == 0
    state = serialization.load(run / "model.ds")
    assert state["feature_names"] == ["a", "b", "sqft"]
    assert main(["predict", str(run), "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == len(y) + 1


def test_decimal_commas_are_found_in_a_semicolon_file_and_given_ones_are_kept_for_predict(tmp_path, capsys):
    X, sqft, y = _sqft_rows()
    rate = np.random.default_rng(1).choice([1.5, 2.75, 9.25, 4.0], len(y))
    lines = ["a;b;rate;y"] + [
        f"{a:.4f};{b:.4f};{str(r).replace('.', ',')};{t:.4f}" for (a, b), r, t in zip(X, rate, y + rate)
    ]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "auto"
    assert main(["train", "--data", str(tmp_path / "e.csv"), "--sep", ";", "--out", str(run), "--hidden", "16",
                 "--epochs", "5", "--patience", "0"]) == 0  # fmt: skip
    assert "column 'rate' holds numbers written like" in capsys.readouterr().out
    assert serialization.load(run / "model.ds")["feature_names"] == ["a", "b", "rate"]
    # every number with a decimal comma: --decimal ',' reads them all, is recorded and predict uses it
    (tmp_path / "all.csv").write_text("\n".join(line.replace(".", ",") for line in lines) + "\n")
    given = tmp_path / "given"
    assert main(["train", "--data", str(tmp_path / "all.csv"), "--sep", ";", "--decimal", ",", "--out", str(given),
                 *FAST]) == 0  # fmt: skip
    cfg = tomllib.loads((given / "config.toml").read_text())
    assert cfg["decimal"] == "," and serialization.load(given / "model.ds")["feature_names"] == ["a", "b", "rate"]
    assert main(["predict", str(given), "--data", str(tmp_path / "all.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == len(y) + 1


def test_many_numbers_with_commas_that_are_not_read_advise_the_number_format_flags(tmp_path, capsys):
    rng = np.random.default_rng(0)
    cells = [f'"{v:,}"' for v in rng.integers(1000, 10**6, 200)]
    cells[3] = "about 5"  # not a number: the column is not found to be numeric
    lines = ["big,y"] + [f"{c},{i % 2}" for i, c in enumerate(cells)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "r"), *FAST]) == 2
    line = one_line_error(capsys)
    assert "column 'big'" in line and "--thousands ','" in line and "--max-categories" not in line


def test_predict_messages_name_what_the_run_was_trained_with_not_flags_predict_lacks(tmp_path, capsys):
    data = blobs_csv(tmp_path / "d.csv", ["a", "b"])
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    write_csv(tmp_path / "typo.csv", ["x1", "x2"], [["0.5", "1.0"], ["oops", "1.0"]])
    write_csv(tmp_path / "gap.csv", ["x1", "x2"], [["0.5", "1.0"], ["0.5", ""]])
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(tmp_path / "typo.csv"), "--out", str(tmp_path / "p")]) == 2
    line = one_line_error(capsys)
    assert "typo.csv:3:1 (column 'x1'): expected a number, got 'oops'" in line
    assert "--drop" not in line and "choose --missing" not in line and "trained with --missing error" in line
    assert main(["predict", str(run), "--data", str(tmp_path / "gap.csv"), "--out", str(tmp_path / "p")]) == 2
    line = one_line_error(capsys)
    assert "gap.csv:3:2 (column 'x2'): missing value" in line and "retrain with --missing mean" in line
    # a file without its header row
    (tmp_path / "noheader.csv").write_text("0.5,1.0\n0.25,2.0\n")
    assert main(["predict", str(run), "--data", str(tmp_path / "noheader.csv"), "--out", str(tmp_path / "p")]) == 2
    line = one_line_error(capsys)
    assert "header row seems to be missing" in line and "x1,x2" in line


def test_gzip_and_tab_separated_files_are_read_and_other_types_are_named(tmp_path, capsys):
    import gzip

    data = houses(tmp_path / "h.csv", n=60)
    with gzip.open(tmp_path / "h.csv.gz", "wt") as handle:
        handle.write(data.read_text())
    (tmp_path / "h.tsv").write_text(data.read_text().replace(",", "\t"))
    outs = []
    for name in ("h.csv", "h.csv.gz", "h.tsv"):
        run = tmp_path / f"run-{name}"
        assert main(["train", "--data", str(tmp_path / name), "--out", str(run), *FAST]) == 0
        assert main(["predict", str(run), "--data", str(tmp_path / name), "--out", str(tmp_path / f"{name}.p")]) == 0
        outs.append((tmp_path / f"{name}.p").read_text())
    assert outs[0] == outs[1] == outs[2]
    (tmp_path / "h.xlsx").write_bytes(b"PK\x03\x04")
    capsys.readouterr()
    assert main(["train", "--data", str(tmp_path / "h.xlsx"), "--out", str(tmp_path / "x"), *FAST]) == 2
    line = one_line_error(capsys)
    assert "unsupported file type '.xlsx'" in line and "read_excel" in line and "unknown dataset" not in line
    assert main(["predict", str(tmp_path / "run-h.csv"), "--data", str(tmp_path / "h.xlsx"), "--out", "p.csv"]) == 2
    assert "unsupported file type '.xlsx'" in one_line_error(capsys)


def test_dropping_the_default_target_asks_for_target(tmp_path, capsys):
    """--drop sku,y without --target made the next-to-last column the target."""
    _, rows = _regression_rows(n=40)
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], rows)
    assert main(["train", "--data", str(data), "--drop", "c,y", "--out", str(tmp_path / "r"), *FAST]) == 2
    line = one_line_error(capsys)
    assert "'y', the last column" in line and "--target" in line


def test_train_says_what_it_made_of_the_file_before_it_trains(tmp_path, capsys, monkeypatch):
    from downslope.cli import train as train_cli

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    write_csv(tmp_path / "h.csv", ["a", "b", "price"], [[*r, float(3 * r[0] + 1)] for r in x])
    events: list[str] = []
    real = train_cli._print_target
    monkeypatch.setattr(train_cli, "_print_target", lambda data, cfg: (events.append("target"), real(data, cfg)))

    class Mark(ds.train.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            events.append("epoch")

    from downslope import experiment

    run_training = experiment.run_training
    monkeypatch.setattr(
        experiment,
        "run_training",
        lambda cfg, **kw: run_training(cfg, **{**kw, "extra_callbacks": [*kw.get("extra_callbacks", []), Mark()]}),
    )
    args = ["--data", str(tmp_path / "h.csv"), "--target", "price", "--hidden", "4", "--epochs", "2"]
    assert main(["train", *args, "--out", str(tmp_path / "r")]) == 0
    assert events[:2] == ["target", "epoch"]  # said in time to stop a surprise
    assert "target: 'price' (regression" in capsys.readouterr().out


def test_missing_constant_is_recorded_and_predict_fills_blanks_as_the_constants_written_out(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        x, colour = rng.normal(), ["red", "blue", ""][i % 3]  # a third of the colours blank
        rows.append(["" if i % 7 == 0 else f"{x:.4f}", colour, f"{2 * x + (colour == 'red'):.4f}"])
    data = write_csv(tmp_path / "d.csv", ["x", "colour", "y"], rows)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--missing", "constant", "--out", str(run), *FAST]) == 0
    assert tomllib.loads((run / "config.toml").read_text())["missing"] == "constant"
    state = serialization.load(run / "model.ds")
    assert state["feature_names"] == ["x", "colour=blue", "colour=missing_value", "colour=red"]
    # blanks at predict are filled as in training: the same predictions as 0 and "missing_value" written out
    blank = write_csv(tmp_path / "blank.csv", ["x", "colour"], [["", ""], ["0.5", ""], ["", "red"]])
    rows = [["0", "missing_value"], ["0.5", "missing_value"], ["0", "red"]]
    written = write_csv(tmp_path / "written.csv", ["x", "colour"], rows)
    for new in (blank, written):
        assert main(["predict", str(run), "--data", str(new), "--out", f"{new}.p.csv"]) == 0
    assert open(f"{blank}.p.csv").read() == open(f"{written}.p.csv").read()
    assert len(open(f"{blank}.p.csv").read().splitlines()) == 4
