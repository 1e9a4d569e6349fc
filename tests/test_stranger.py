"""The command line used the way a stranger uses it: their own files and directories, odd but
reasonable requests. Each test is one problem found that way, run through ``python -m downslope``
in a subprocess (the real command line, exit status and all)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "downslope", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["compare", "lr-find", "landscape"])
def test_a_directory_of_the_users_own_files_is_never_written_into(tmp_path, command):
    """compare used to write compare.csv and friends into any existing --out, a directory of the user's
    own files or another run included; now it reserves --out like train, landscape and lr-find."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.txt").write_text("months of work")
    args = {"compare": ["--data", "moons", "--epochs", "1"], "lr-find": ["--data", "moons"], "landscape": []}[command]
    for extra in ([], ["--overwrite"]):  # the flag the refusal names exists, and still spares a non-run
        done = _cli(command, *args, "--out", str(mine), *extra, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "--out" in done.stderr and str(mine) in done.stderr
        assert "unrecognized arguments" not in done.stderr
        assert sorted(p.name for p in mine.iterdir()) == ["chapter1.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no staging directory left behind


@pytest.mark.slow
def test_compare_refuses_a_training_run_and_overwrites_its_own(tmp_path):
    """compare's directory is a run of its own: published whole, refused as --out of another compare
    unless --overwrite, and never mixed into a training run's directory."""
    assert (
        _cli("train", "--data", "moons", "--epochs", "1", "--out", "trained", "--quiet", cwd=tmp_path).returncode == 0
    )
    before = sorted(p.name for p in (tmp_path / "trained").iterdir())
    done = _cli("compare", "--data", "moons", "--epochs", "1", "--optimizers", "sgd", "--out", "trained", cwd=tmp_path)
    assert done.returncode == 2 and "holds a run" in done.stderr
    assert sorted(p.name for p in (tmp_path / "trained").iterdir()) == before

    compare = ["compare", "--data", "moons", "--epochs", "1", "--out", "cmp", "--quiet"]
    assert _cli(*compare, "--optimizers", "sgd,adam", cwd=tmp_path).returncode == 0
    assert {"compare.csv", "histories.csv", "compare.png", "status.json"} <= {
        p.name for p in (tmp_path / "cmp").iterdir()
    }
    again = _cli(*compare, "--optimizers", "sgd", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert _cli(*compare, "--optimizers", "sgd", "--overwrite", cwd=tmp_path).returncode == 0
    rows = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["sgd lr=0.01"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")


@pytest.mark.slow
def test_the_exported_onnx_graph_fills_missing_values_as_predict_does(tmp_path):
    """A run trained with --missing mean filled NaN inputs in `predict`, but its exported ONNX graph
    did not: ONNX Runtime returned NaN probabilities (and a label) for the same rows."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2)) * [3.0, 0.5] + [10.0, -4.0]  # far from 0, so a missing 0 would show
    label = np.where(X[:, 0] - 10 > 6 * (X[:, 1] + 4), "up", "down")
    cells = [[f"{a:.3f}", f"{b:.3f}", c] for (a, b), c in zip(X, label)]
    for i in range(0, 120, 7):
        cells[i][i % 2] = "" if i % 3 else "NA"
    _write_csv(tmp_path / "train.csv", ["a", "b", "label"], cells)
    train = ["train", "--data", "train.csv", "--missing", "mean", "--epochs", "20", "--out", "run", "--quiet"]
    assert _cli(*train, cwd=tmp_path).returncode == 0
    done = _cli("export", "run", "--onnx", "run.onnx", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    new = [["", "-4.5"], ["13.0", ""], ["7.0", "-3.0"]]
    _write_csv(tmp_path / "new.csv", ["a", "b"], new)
    done = _cli("predict", "run", "--data", "new.csv", "--out", "preds.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "preds.csv").read_text().splitlines()
    assert lines[0] == "prediction,p_down,p_up"
    expected_labels = [r.split(",")[0] for r in lines[1:]]
    expected_probs = np.array([[float(v) for v in r.split(",")[1:]] for r in lines[1:]])

    session = ort.InferenceSession(str(tmp_path / "run.onnx"))
    column = {k: np.array([[float(r[j]) if r[j] else np.nan] for r in new], np.float32) for j, k in enumerate("ab")}
    got_labels, got_probs = session.run(None, column)
    assert np.isfinite(got_probs).all()
    assert list(got_labels) == expected_labels
    np.testing.assert_allclose(got_probs, expected_probs, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["error", "mean"])
def test_predict_gives_every_row_a_prediction_when_the_target_column_is_left_empty(tmp_path, missing):
    """The usual file of new rows keeps the target column with its cells empty (the values to predict).
    predict refused it ("unknown class ''") or, for a run trained with --missing, silently left those
    rows out, so the predictions no longer lined up with the input rows."""
    import numpy as np

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    rows = [[f"{a:.3f}", f"{b:.3f}", "yes" if a + b > 0 else "no"] for a, b in X]
    _write_csv(tmp_path / "train.csv", ["a", "b", "label"], rows)
    train = ["train", "--data", "train.csv", "--missing", missing, "--epochs", "30", "--out", "run", "--quiet"]
    assert _cli(*train, cwd=tmp_path).returncode == 0
    new = [["3.0", "3.0"], ["-3.0", "-3.0"], ["2.5", "2.0"], ["-2.0", "-2.5"]]
    _write_csv(tmp_path / "features.csv", ["a", "b"], new)
    _write_csv(tmp_path / "blanks.csv", ["a", "b", "label"], [r + [""] for r in new])
    _write_csv(tmp_path / "some.csv", ["a", "b", "label"], [r + [t] for r, t in zip(new, ["", "no", "", "maybe"])])
    outputs = []
    for name in ("features", "blanks", "some"):
        done = _cli("predict", "run", "--data", f"{name}.csv", "--out", f"{name}.out.csv", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / f"{name}.out.csv").read_text())
    assert outputs[0] == outputs[1] == outputs[2]
    assert [r.split(",")[0] for r in outputs[0].splitlines()[1:]] == ["yes", "no", "yes", "no"]


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "no-such-file.csv"],
        ["lr-find", "--data", "moons", "--num-iter", "1"],
        ["train", "--data", "no-such-file.csv", "--out", "a/b/run"],
    ],
    ids=["train", "lr-find", "nested --out"],
)
def test_a_refused_command_leaves_no_empty_runs_directory(tmp_path, args):
    """A typo in a first command in a fresh directory left an empty runs/ (or the --out's parents)."""
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and "error" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_predictions_csv_quotes_class_names_with_commas_and_quotes(tmp_path):
    """Class names come from the user's data; predict wrote them unquoted, so a name with a comma
    split its row into more fields than the header and no CSV reader could line them up."""
    import csv

    import numpy as np

    names = ["blue, dark", "red", 'say "hi"']
    x = np.random.default_rng(3).normal(size=(150, 2))
    kinds = [names[int(a > 0.4) + int(a > -0.4)] for a, _ in x]
    with open(tmp_path / "kinds.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["a", "b", "kind"])
        out.writerows([f"{a:.3f}", f"{b:.3f}", k] for (a, b), k in zip(x, kinds))
    assert (
        _cli("train", "--data", "kinds.csv", "--epochs", "30", "--out", "run", "--quiet", cwd=tmp_path).returncode == 0
    )
    done = _cli("predict", "run", "--data", "kinds.csv", "--out", "preds.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "preds.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["prediction", "p_blue, dark", "p_red", 'p_say "hi"']
    assert len(rows) == 150 and all(len(r) == 4 for r in rows)
    assert {r[0] for r in rows} <= set(names)
    assert np.mean([r[0] == k for r, k in zip(rows, kinds)]) > 0.8  # the names are the model's classes, in order


@pytest.mark.slow
def test_predict_and_export_never_write_over_the_run_they_read(tmp_path):
    """`predict RUN --out RUN/model.ds` and `export RUN --onnx RUN/model.ds` replaced the run's model
    (evaluate then failed: "not a zip file"); --onnx and --safetensors naming one file kept only the
    second; an --onnx directory or missing parent was a bare OS error."""
    pytest.importorskip("onnx")
    assert _cli("train", "--data", "moons", "--epochs", "1", "--out", "run", "--quiet", cwd=tmp_path).returncode == 0
    (tmp_path / "new.csv").write_text("0.5,0.2\n")
    record = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    refused = [
        (["predict", "run", "--data", "new.csv", "--out", "run/model.ds"], "inside the run"),
        (["predict", "run", "--data", "new.csv", "--out", "./run/../run/preds.csv"], "inside the run"),
        (["export", "run", "--onnx", "run/model.ds"], "inside the run"),
        (["export", "run", "--safetensors", "run/report.html"], "inside the run"),
        (["export", "run", "--onnx", "m.out", "--safetensors", "./m.out"], "the same file"),
        (["export", "run", "--onnx", "."], "is a directory"),
    ]
    for args, fragment in refused:
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and fragment in done.stderr, (args, done.stderr)
        assert done.stderr.count("\n") == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == record
    assert not (tmp_path / "m.out").exists()
    done = _cli("export", "run", "--onnx", "deploy/model.onnx", "--safetensors", "deploy/w.safetensors", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "deploy").iterdir()) == ["model.onnx", "w.safetensors"]
    assert _cli("evaluate", "run", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--test-split", "0"], "test_split must be a fraction in (0, 1), got 0.0"),
        (["--test-split", "0.9", "--val-split", "0.2"], "test_split + val_split must leave rows to train on"),
    ],
)
def test_split_fractions_that_cannot_be_honoured_are_refused(tmp_path, flags, fragment):
    """--test-split 0 was recorded in config.toml as 0 while 20% of the rows were held out anyway;
    fractions summing past 1 failed deep inside the splitter ("test_size ... got 2.0000000000000004")."""
    done = _cli("train", "--data", "moons", "--epochs", "1", "--out", "run", *flags, cwd=tmp_path)
    assert done.returncode == 2 and fragment in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_train_says_which_target_and_task_it_chose_for_a_file(tmp_path):
    """Leaving out the last column (`--drop label`) silently made the next-to-last column the target:
    nothing printed said what the run predicts. train now names the target, the task and why."""
    rows = [[f"{i % 7}.5", ["red", "blue"][i % 2], ["yes", "no"][i % 3 == 0]] for i in range(40)]
    _write_csv(tmp_path / "d.csv", ["size", "color", "label"], rows)
    done = _cli("train", "--data", "d.csv", "--epochs", "1", "--out", "a", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "target: 'label' (2 classes; the target holds text), 3 features" in done.stdout
    # dropping the default target (the last column) no longer moves it to another column: --target names it
    done = _cli("train", "--data", "d.csv", "--drop", "label", "--epochs", "1", "--out", "b", "--quiet", cwd=tmp_path)
    assert done.returncode == 2 and "name the column to predict with --target" in done.stderr, done.stderr
    done = _cli("train", "--data", "d.csv", "--drop", "label", "--target", "color", "--epochs", "1", "--out", "b",
                "--quiet", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "target: 'color' (2 classes; the target holds text), 1 feature" in done.stdout


@pytest.mark.slow
def test_resume_refuses_a_data_file_that_changed_since_the_run_started(tmp_path):
    """A run killed part way and resumed after its CSV was edited continued silently on other rows
    (another split and scaling), though --resume promises to continue exactly where it stopped."""
    import signal

    import numpy as np

    x = np.random.default_rng(5).normal(size=(400, 3))
    rows = [[f"{v:.4f}" for v in r] + [str(int(r.sum() > 0))] for r in x]
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], rows)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
    train = [sys.executable, "-m", "downslope", "train", "--data", "d.csv", "--epochs", "100000", "--patience", "0"]
    proc = subprocess.Popen(
        [*train, "--out", "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    while not (line := proc.stdout.readline()).startswith("Epoch 2/"):
        assert line, "train ended before its second epoch"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)  # read on, so a full pipe cannot block it
    assert proc.returncode == 130
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], rows[:-10])  # someone edited the file meanwhile
    done = _cli("train", "--resume", "run", "--quiet", cwd=tmp_path)
    assert done.returncode == 2 and "d.csv changed since the run started" in done.stderr, done.stderr
    assert (tmp_path / ".run.partial" / "checkpoint.ckpt").is_file()  # still resumable
