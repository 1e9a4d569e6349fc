"""evaluate's --target: the column holding the values the run predicts, whatever the file calls it;
a column the model reads as an input is refused (its score would be meaningless)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")

FAST = ["--hidden", "8", "--epochs", "2", "--patience", "0", "--quiet"]


def _trained(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    price = 3.0 * X[:, 0] - X[:, 1]
    lines = ["a,b,price"] + [f"{a:.4f},{b:.4f},{p:.4f}" for (a, b), p in zip(X, price)]
    data = tmp_path / "my.csv"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "price", "--out", str(run), *FAST]) == 0
    return data, run


def test_evaluate_refuses_an_input_column_as_the_target_and_notes_a_renamed_one(tmp_path, capsys):
    data, run = _trained(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--target", "a"]) == 2
    assert "--target 'a' is one of the model's input columns" in capsys.readouterr().err
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(data.read_text().replace("price", "cost", 1))
    assert main(["evaluate", str(run), "--data", str(renamed), "--target", "cost"]) == 0
    assert "scoring the run's predictions of 'price' against column 'cost'" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(data), "--target", "price"]) == 0
    assert "note" not in capsys.readouterr().err


def test_evaluate_scores_the_runs_own_test_split_as_training_did_with_categories_only_test_rows_hold(tmp_path, capsys):
    """Categories come from the training rows; a test-only one is all zeros in the metrics that
    training reports, and evaluate of the run's own split gives the same numbers instead of refusing."""
    import json

    rng = np.random.default_rng(1)
    n = 120
    kinds = [f"k{i}" for i in range(n)]  # one category per row: most of the test rows' are unseen
    x = rng.normal(size=n)
    lines = ["x,kind,y"] + [f"{a:.4f},{k},{2 * a:.4f}" for a, k in zip(x, kinds)]
    data = tmp_path / "cats.csv"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--target", "y", "--out", str(run), "--max-categories", "1000", *FAST]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    reported = json.loads((run / "metrics.json").read_text())
    assert abs(scored["r2"] - reported["test_r2"]) < 1e-5


def _shifted_classes(tmp_path):
    """Class 'b' is the majority of the first 80% of the rows, 'a' of the last 20%."""
    rng = np.random.default_rng(0)
    n = 300
    p = np.where(np.arange(n) < 240, 0.3, 0.7)
    labels = np.where(rng.random(n) < p, "b", "a")
    lines = ["x,label"] + [f"{v:.4f},{lab}" for v, lab in zip(rng.normal(size=n), labels)]
    data = tmp_path / "shift.csv"
    data.write_text("\n".join(lines) + "\n")
    return data


def test_evaluate_reports_the_baseline_training_reported(tmp_path, capsys):
    """The baseline is always predicting the training split's majority class, also in evaluate (which has
    no training rows at hand): not the majority of the rows it scores; an old run without the recorded
    counts gets no baseline rather than a wrong one."""
    import json

    from downslope import serialization

    data = _shifted_classes(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--split", "ordered", "--out", str(run), *FAST]) == 0
    reported = json.loads((run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    captured = capsys.readouterr()
    scored = json.loads(captured.out.strip().splitlines()[-1])
    assert scored["baseline_accuracy"] == pytest.approx(reported["test_baseline_accuracy"], abs=1e-6)
    assert reported["test_baseline_accuracy"] < 0.5  # the test rows' own majority would be above 0.5
    assert "ordered split" in captured.err and "seed" not in captured.err
    state = serialization.load(run / "model.ds")
    del state["split"]["train_class_counts"]  # as a run written before the counts were recorded
    serialization.save(state, run / "model.ds")
    assert main(["evaluate", str(run)]) == 0
    captured = capsys.readouterr()
    assert "baseline_accuracy" not in json.loads(captured.out.strip().splitlines()[-1])
    assert "baseline_accuracy is unavailable" in captured.err


def test_unknown_categories_are_refused_or_encoded_as_zeros_on_request(tmp_path, capsys):
    """predict and evaluate --data refuse a category training did not see, saying how to go on;
    --unknown-categories ignore encodes it as all zeros, as the run's own metrics count one, so such a
    row is predicted as the same row with an empty one-hot block would be. The refusal says "(in the
    training split)" only for a run whose vocabulary is its training split's (an older run's is the file's)."""
    import json

    from downslope import serialization

    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    colour = np.array(["red", "blue"])[rng.integers(0, 2, 80)]
    lines = ["x,colour,y"] + [f"{a:.4f},{c},{2 * a + (c == 'red'):.4f}" for a, c in zip(x, colour)]
    data = tmp_path / "shop.csv"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "y", "--out", str(run), *FAST]) == 0
    new = tmp_path / "new.csv"
    new.write_text("x,colour,y\n0.5,violet,1.0\n0.5,red,2.0\n")
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "category 'violet' was not seen in training (in the training split)" in err
    assert "--unknown-categories ignore" in err
    assert main(["predict", str(run), "--data", str(new), "--out", str(out), "--unknown-categories", "ignore"]) == 0
    predicted = [float(v) for v in out.read_text().split()[1:]]
    from downslope.experiment import apply_preprocess, model_from_state
    from downslope.experiment.inputs import data_units
    from downslope.train import predict

    state = serialization.load(run / "model.ds")
    model, state = model_from_state(state, "run")
    names = state["feature_names"]
    zeros = np.array([[0.5 if n == "x" else 0.0 for n in names]], np.float32)  # 'violet': no one-hot bit
    expected = data_units(np.asarray(predict(model, apply_preprocess(zeros, state["preprocess"])).numpy()),
                          state["preprocess"])  # fmt: skip
    assert predicted[0] == pytest.approx(float(expected[0, 0]), rel=1e-5)
    assert main(["evaluate", str(run), "--data", str(new)]) == 2
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(new), "--unknown-categories", "ignore"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == 2
    raw = serialization.load(run / "model.ds")
    del raw["preprocess"]["encoder"]["vocabulary"]  # a run written before the vocabulary was the training split's
    serialization.save(raw, run / "model.ds")
    assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "category 'violet' was not seen in training; known" in err and "training split" not in err


def test_the_unknown_categories_flag_is_in_the_help(capsys):
    for command in ("predict", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--unknown-categories {error,ignore}" in capsys.readouterr().out


def test_unknown_categories_ignore_notes_how_many_rows_held_one(tmp_path, capsys):
    """With --unknown-categories ignore, predict and evaluate --data say on stderr how many rows held a
    category training did not see (as training counts its own held-out rows), and training's note on
    such rows names the flag."""
    import json

    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    colour = np.array(["red", "blue"], dtype=object)[rng.integers(0, 2, 80)]
    colour[-2:] = "violet"  # only in the last rows: the test split of an ordered split
    lines = ["x,colour,y"] + [f"{a:.4f},{c},{2 * a + (c == 'red'):.4f}" for a, c in zip(x, colour)]
    data = tmp_path / "shop.csv"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    loud = [a for a in FAST if a != "--quiet"]  # training's notes are printed unless --quiet
    train = [
        "train",
        "--data",
        str(data),
        "--target",
        "y",
        "--out",
        str(run),
        "--split",
        "ordered",
        "--missing",
        "most_frequent",
        *loud,
    ]
    assert main(train) == 0
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert (
        "2 of the" in err and "refuse a category not seen in training unless given --unknown-categories ignore" in err
    )
    new = tmp_path / "new.csv"
    new.write_text("x,colour,y\n0.5,violet,1.0\n0.5,red,2.0\n0.1,,3.0\n0.2,green,1.0\n")
    out = tmp_path / "p.csv"
    for command in (["predict", "--out", str(out)], ["evaluate"]):
        code = main([command[0], str(run), "--data", str(new), *command[1:], "--unknown-categories", "ignore"])
        assert code == 0
        err = capsys.readouterr().err
        notes = [line for line in err.splitlines() if "not seen in training" in line]
        assert notes == [
            f"{command[0]}: note: 2 of the 4 rows of {new} hold a category not seen in training "
            "(rows by column: 'colour': 2); --unknown-categories ignore encodes it as all zeros"
        ]
    assert main(["predict", str(run), "--data", str(data), "--out", str(out), "--unknown-categories", "ignore"]) == 0
    assert "2 of the 80 rows" in capsys.readouterr().err
    assert main(["evaluate", str(run)]) == 0  # the run's own test split: training already counted it
    captured = capsys.readouterr()
    assert "not seen in training" not in captured.err and json.loads(captured.out.strip().splitlines()[-1])
