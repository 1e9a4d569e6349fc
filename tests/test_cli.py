"""The `downslope` command end to end on small data: files written, numbers sane, errors one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "downslope", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


COMMANDS = ("train", "evaluate", "predict", "compare", "landscape", "lr-find")


@pytest.mark.slow
def test_help_lists_every_subcommand():
    out = run_cli("--help")
    assert out.returncode == 0
    for cmd in COMMANDS:
        assert cmd in out.stdout
    sub = run_cli("train", "--help")
    assert sub.returncode == 0 and "--batch-size" in sub.stdout and "full-batch" in sub.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_a_description_and_every_flag_a_help_text(command, capsys):
    from downslope.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert sub.description and len(sub.description) > 40, command
    undocumented = [a.option_strings or a.dest for a in sub._actions if not a.help]
    assert not undocumented, f"{command}: flags without help: {undocumented}"
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: downslope {command}" in capsys.readouterr().out


def test_landscape_help_names_every_test_function(capsys):
    from downslope.viz.testfunctions import SURFACES

    with pytest.raises(SystemExit):
        main(["landscape", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in SURFACES:
        assert name in text, name


@pytest.mark.slow
def test_train_regression_line_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            "line",
            "--model",
            "linear",
            "--optimizer",
            "gd",
            "--lr",
            "0.1",
            "--batch-size",
            "full",
            "--epochs",
            "300",
            "--patience",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    for name in (
        "config.toml",
        "history.csv",
        "metrics.json",
        "model.ds",
        "report.html",
        "curves.png",
        "fit.png",
        "grad_norms.png",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.95  # the line data has noise 0.5 around slope 3 on [-3, 3]
    assert metrics["epochs"] == 300
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch") and len(history) == 301


def test_train_classification_then_evaluate_and_predict(tmp_path, capsys):
    out = tmp_path / "moons"
    assert (
        main(
            [
                "train",
                "--data",
                "moons",
                "--hidden",
                "32,32",
                "--epochs",
                "60",
                "--lr",
                "0.01",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.9
    assert (out / "boundary.png").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(evaluated["accuracy"] - metrics["test_accuracy"]) < 1e-9  # same split, same model
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 2, (5, 2))
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("x0,x1\n" + "\n".join(f"{a},{b}" for a, b in points) + "\n")
    np.savez(tmp_path / "in.npz", X=points, y=np.zeros(5, np.int64))
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(tmp_path / "in.npz"), "--out", str(preds)]) == 0
    lines = preds.read_text().splitlines()
    assert lines[0] == "prediction,p_0,p_1" and len(lines) == 6
    probs = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_csv_training_with_a_named_target_and_categorical_column(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(200):
        colour = rng.choice(["red", "blue"])
        size = rng.normal()
        label = "big" if size + (colour == "red") > 0.5 else "small"
        rows.append(f"{label},{size:.4f},{colour}")
    data = tmp_path / "shapes.csv"
    data.write_text("label,size,colour\n" + "\n".join(rows) + "\n")
    out = tmp_path / "csvrun"
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--target",
                "label",
                "--hidden",
                "16",
                "--epochs",
                "80",
                "--lr",
                "0.02",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.85
    new = tmp_path / "new.csv"
    new.write_text("colour,size\nred,2.0\nblue,-2.0\n")
    preds = tmp_path / "p.csv"
    assert main(["predict", str(out), "--data", str(new), "--out", str(preds)]) == 0
    assert [line.split(",")[0] for line in preds.read_text().splitlines()[1:]] == ["big", "small"]


def test_config_file_with_flag_override(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "blobs"\n[model]\nhidden = [8]\n[training]\nepochs = 3\noptimizer = "sgd"\nlr = 0.5\n')
    out = tmp_path / "cfgrun"
    assert main(["train", "--config", str(cfg), "--lr", "0.05", "--out", str(out), "--quiet"]) == 0
    written = (out / "config.toml").read_text()
    assert (
        'optimizer = "sgd"' in written
        and "lr = 0.05" in written
        and "hidden = [8]" in written
        and "epochs = 3" in written
    )


BAD_INPUT = [
    (["train", "--optimizer", "adamm"], "unknown optimizer 'adamm'; choose one of: gd, sgd"),
    (["train", "--data", "nope.csv"], "no such file"),
    (["train", "--data", "mnist"], "no such file or built-in dataset 'mnist'"),
    (["train", "--batch-size", "-3"], "batch_size"),
    (["train", "--epochs", "0"], "epochs must be >= 1"),
    (["train", "--lr", "-1"], "lr must be > 0, got -1.0"),
    (["train", "--lr", "0"], "lr must be > 0 (a learning rate of 0 trains nothing), got 0.0"),
    (["landscape", "--lr", "0"], "--lr must be > 0 (a learning rate of 0 moves nothing)"),
    (["evaluate", "no_such_run"], "no_such_run: no such directory"),
    (["train", "--bogus"], "unrecognized arguments: --bogus (see 'downslope train --help')"),
    (["train", "--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["train", "--activation", "swish"], "invalid choice: 'swish' (choose from 'relu'"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand' (choose from 'train'"),
    (["train", "--config", "missing.toml"], "no such config file: missing.toml"),
    (["compare", "--optimizers", "sgd,adamm"], "unknown optimizer 'adamm'; choose one of: gd, sgd"),
    (["compare", "--lrs", "0.1,fast"], "--lrs: expected comma-separated numbers"),
    (["compare", "--optimizers", ","], "--optimizers: expected comma-separated optimizer names"),
    (["landscape", "--optimizers", "sgd,bogus"], "unknown optimizer 'bogus'; choose one of: gd, sgd"),
    (["landscape", "--function", "nope"], "expected one of: quadratic, rosenbrock, beale, himmelblau, saddle"),
    (["landscape", "--lr", "-1"], "invalid lr=-1.0"),
    (["landscape", "--start", "1,x"], "--start expects two numbers"),
    (["lr-find", "--num-iter", "1"], "num_iter must be an integer >= 2"),
    (["predict", "no_such_run", "--data", "x.csv", "--out", "p.csv"], "no_such_run: no such directory"),
]
# Each case is a subprocess (~0.3 s): one case per kind of mistake (an argparse error at the top level and
# in a subcommand, a refused setting, a missing run) runs every day, the whole list in the slow run.
EVERYDAY = ("adamm", "--bogus", "nosuchcommand", "no_such_run")


@pytest.mark.parametrize(
    "args, message",
    [case if set(EVERYDAY) & set(case[0]) else pytest.param(*case, marks=pytest.mark.slow) for case in BAD_INPUT],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    needs_out = args[0] in ("train", "compare", "landscape", "lr-find")
    result = run_cli(*args, "--out", str(tmp_path / "x"), cwd=tmp_path) if needs_out else run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_malformed_csv_and_toml_say_where(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,0\n1,2\n")
    result = run_cli("train", "--data", str(bad), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "bad.csv:3: expected 3 fields" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    bad.write_text("a,b,y\n1,2,0\n1,,1\n3,4,1\n")
    result = run_cli("train", "--data", str(bad), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "bad.csv:3:2 (column 'b'): missing value" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    toml = tmp_path / "bad.toml"
    toml.write_text("epochs = = 3\n")
    result = run_cli("train", "--config", str(toml))
    assert result.returncode == 2 and "bad.toml" in result.stderr and "line 1" in result.stderr
    toml.write_text("epoch = 3\n")
    result = run_cli("train", "--config", str(toml))
    assert result.returncode == 2 and "unknown setting(s) ['epoch']" in result.stderr


def test_compare_runs_every_optimizer_from_the_same_start(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "--data",
            "blobs",
            "--hidden",
            "8",
            "--epochs",
            "5",
            "--patience",
            "0",
            "--optimizers",
            "sgd,adam",
            "--lrs",
            "0.01,0.1",
            "--target-loss",
            "0.5",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith(
        "run,final_loss,final_val_loss,test_accuracy,epochs,epochs_to_target,seconds_to_target,diverged"
    )
    assert [r.split(",")[0] for r in rows[1:]] == ["sgd lr=0.01", "sgd lr=0.1", "adam lr=0.01", "adam lr=0.1"]
    assert (out / "compare.png").is_file()
    printed = capsys.readouterr().out
    assert "sgd lr=0.1" in printed and "diverged" in printed
    # the larger SGD step makes more progress in 5 epochs from the same initial weights
    loss = {r.split(",")[0]: float(r.split(",")[1]) for r in rows[1:]}
    assert loss["sgd lr=0.1"] < loss["sgd lr=0.01"]


def test_compare_batch_modes(tmp_path):
    out = tmp_path / "modes"
    assert (
        main(
            [
                "compare",
                "--data",
                "line",
                "--model",
                "linear",
                "--epochs",
                "3",
                "--patience",
                "0",
                "--optimizers",
                "sgd",
                "--lrs",
                "0.01",
                "--batch-sizes",
                "full,1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    rows = (out / "compare.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["sgd lr=0.01 batch=full", "sgd lr=0.01 batch=1"]
    # stochastic GD makes ~140 updates per epoch against full-batch's one: far lower loss after 3 epochs
    assert float(rows[1].split(",")[1]) < float(rows[0].split(",")[1])


def test_landscape_writes_paths_plot(tmp_path, capsys):
    out = tmp_path / "land"
    assert (
        main(["landscape", "--function", "quadratic", "--optimizers", "sgd,adam", "--steps", "50", "--out", str(out)])
        == 0
    )
    assert any(p.suffix == ".png" for p in out.iterdir())
    assert main(["landscape", "--optimizers", "sgd,bogus", "--out", str(out)]) == 2
    assert "unknown optimizer 'bogus'" in capsys.readouterr().err


def test_landscape_takes_a_negative_start_after_a_space(tmp_path):
    out = tmp_path / "land"
    args = ["landscape", "--function", "quadratic", "--optimizers", "sgd", "--steps", "3", "--start", "-1.8,0"]
    assert main([*args, "--out", str(out)]) == 0
    first = (out / "paths.csv").read_text().splitlines()[1].split(",")
    assert [round(float(v), 6) for v in first[3:5]] == [-1.8, 0.0]  # step 0 is the start point given (float32)


def test_lr_find_suggests_a_rate_and_plots(tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["lr-find", "--data", "blobs", "--hidden", "8", "--num-iter", "40", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    suggestion = float(printed.split("suggested learning rate: ")[1].split()[0])
    assert 1e-7 <= suggestion <= 10
    assert (out / "lr_find.png").is_file()
    rows = _csv_rows(out / "lr_find.csv")  # the sweep's numbers: rates rising geometrically, both losses
    rates = [float(r["lr"]) for r in rows]
    assert len(rows) > 10 and all(b > a for a, b in zip(rates, rates[1:]))
    assert all(np.isfinite(float(r["loss"])) and np.isfinite(float(r["smoothed_loss"])) for r in rows[:5])


def _mpiexec_command(n: int) -> tuple[list[str], dict[str, str]]:
    """``mpiexec -n n`` (Open MPI's flags for root and for more processes than cores) and its env."""
    import importlib.util
    import os
    import shutil
    from pathlib import Path

    beside_python = Path(sys.executable).parent / "mpiexec"
    launcher = str(beside_python) if beside_python.exists() else shutil.which("mpiexec")
    if launcher is None or importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpiexec or mpi4py missing (pip install 'downslope[mpi]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return [launcher, "--allow-run-as-root", "--oversubscribe", "-n", str(n)], env


@pytest.mark.slow
def test_mpiexec_train_runs_the_same_config_data_parallel(tmp_path):
    """`mpiexec -n 2 downslope train --config run.toml` against `downslope train --config run.toml`.

    With a full batch the two runs must take the same updates (each rank averages the gradient of its
    half, the Allreduce averages the halves), so the saved models agree to float32 rounding.
    """
    from pathlib import Path

    from downslope import serialization
    from downslope.experiment import normalize_config, prepare

    mpiexec, env = _mpiexec_command(2)
    script = Path(sys.executable).parent / "downslope"  # the installed console script
    command = [str(script)] if script.exists() else [sys.executable, "-m", "downslope"]
    config = tmp_path / "run.toml"
    settings = 'data = "blobs"\nhidden = [8]\noptimizer = "adam"\nlr = 0.05\nbatch_size = "full"\n'
    config.write_text(settings + "epochs = 5\npatience = 0\nseed = 3\nverbose = 0\n")
    # an even training set: the two halves are exact, no sample is repeated to pad
    assert len(prepare(normalize_config({"data": "blobs", "seed": 3}, "test")).X_train) % 2 == 0

    single, multi = tmp_path / "single", tmp_path / "mpi"
    assert main(["train", "--config", str(config), "--out", str(single)]) == 0
    cmd = [*mpiexec, *command, "train"]
    result = subprocess.run(
        [*cmd, "--config", str(config), "--out", str(multi)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("run written to") == 1  # rank 0 only

    one = json.loads((single / "metrics.json").read_text())
    two = json.loads((multi / "metrics.json").read_text())
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["epochs"] == one["epochs"] == 5
    assert two["test_accuracy"] == one["test_accuracy"]
    assert two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-5)
    assert two["final_val_loss"] == pytest.approx(one["final_val_loss"], rel=1e-5)
    weights_one = serialization.load(single / "model.ds")["model"]
    weights_two = serialization.load(multi / "model.ds")["model"]
    for key, ref in weights_one.items():
        np.testing.assert_allclose(weights_two[key], ref, rtol=1e-5, atol=1e-6, err_msg=key)
    # the same settings were used (only the output directory differs)
    assert (multi / "config.toml").read_text().replace(str(multi), "") == (single / "config.toml").read_text().replace(
        str(single), ""
    )


def _csv_rows(path):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def test_compare_table_numbers_match_the_recorded_histories(tmp_path):
    """epochs/seconds to the target loss are read off each run's own history; a too-large rate diverges."""
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--batch-size", "full", "--epochs", "30"]
    args += ["--patience", "0", "--optimizers", "gd,adam", "--lrs", "0.1,5", "--target-loss", "2.0"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    table = {r["run"]: r for r in _csv_rows(out / "compare.csv")}
    assert list(table) == ["gd lr=0.1", "gd lr=5", "adam lr=0.1", "adam lr=5"]
    history: dict[str, list[dict[str, str]]] = {}
    for row in _csv_rows(out / "histories.csv"):
        history.setdefault(row["run"], []).append(row)
    assert table["gd lr=5"]["diverged"] == "True"  # 5 is far above 2/L for this least-squares problem
    assert table["gd lr=0.1"]["diverged"] == "False"
    reached_somewhere = False
    for name, row in table.items():
        rows = history[name]
        assert int(row["epochs"]) == len(rows)
        assert float(row["final_loss"]) == pytest.approx(float(rows[-1]["loss"]), rel=1e-5)
        times = [float(r["time"]) for r in rows]
        assert all(b > a for a, b in zip(times, times[1:]))  # seconds since start, growing
        below = [int(r["epoch"]) for r in rows if float(r["val_loss"]) <= 2.0]
        if not below:
            assert row["epochs_to_target"] == "" and row["seconds_to_target"] == ""
            continue
        reached_somewhere = True
        assert int(row["epochs_to_target"]) == below[0]
        assert float(row["seconds_to_target"]) == pytest.approx(times[below[0] - 1], rel=1e-5)
        assert float(row["seconds_to_target"]) <= times[-1]
    assert reached_somewhere and table["gd lr=0.1"]["epochs_to_target"] != ""
    # both panels (against epoch and against wall time) are drawn side by side
    from PIL import Image

    with Image.open(out / "compare.png") as im:
        assert im.width > 1.8 * im.height


LANDSCAPES = ["quadratic", "rosenbrock", "beale", "himmelblau", "saddle", "rastrigin", "camel"]


def test_every_test_function_is_covered():
    from downslope.viz.testfunctions import SURFACES

    assert sorted(SURFACES) == sorted(LANDSCAPES)


@pytest.mark.parametrize(
    "function", [f if f in ("quadratic", "rosenbrock") else pytest.param(f, marks=pytest.mark.slow) for f in LANDSCAPES]
)
def test_landscape_paths_on_every_test_function(tmp_path, function):
    from downslope.viz.testfunctions import SURFACES

    surface = SURFACES[function]
    out = tmp_path / function
    steps = 25
    assert (
        main(
            ["landscape", "--function", function, "--optimizers", "sgd,adam", "--steps", str(steps), "--out", str(out)]
        )
        == 0
    )
    assert (out / "landscape.png").stat().st_size > 10_000
    rows = _csv_rows(out / "paths.csv")
    for name in ("sgd", "adam"):
        path = [r for r in rows if r["optimizer"] == name]
        assert [int(r["step"]) for r in path] == list(range(steps + 1))
        xy = np.array([[float(r["x"]), float(r["y"])] for r in path])
        f = np.array([float(r["f"]) for r in path])
        np.testing.assert_allclose(xy[0], surface.start)
        np.testing.assert_allclose(f, surface.value(xy[:, 0], xy[:, 1]), rtol=1e-5, atol=1e-5)
        assert f[-1] < f[0]  # every optimizer makes progress from the default start at its default rate
    # the first plain SGD step is exactly start - lr * gradient(start)
    sgd = [r for r in rows if r["optimizer"] == "sgd"]
    lr = float(sgd[0]["lr"])
    expected = np.asarray(surface.start) - lr * surface.gradient(surface.start)
    np.testing.assert_allclose([float(sgd[1]["x"]), float(sgd[1]["y"])], expected, rtol=1e-5)


@pytest.mark.slow
def test_landscape_gif_is_animated(tmp_path):
    from PIL import Image

    out = tmp_path / "gif"
    assert main(["landscape", "--function", "himmelblau", "--steps", "30", "--gif", "--out", str(out)]) == 0
    with Image.open(out / "landscape.gif") as im:
        assert im.format == "GIF" and getattr(im, "n_frames", 1) > 5


@pytest.mark.slow
def test_evaluate_and_predict_on_files(tmp_path, capsys):
    """A regression run evaluated on a CSV (same numbers as computed here) and predicting a CSV."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, (300, 2))
    y = 1.5 * x[:, 0] - 2 * x[:, 1] + 0.5
    data = tmp_path / "plane.csv"
    data.write_text("u,v,z\n" + "\n".join(f"{a:.6f},{b:.6f},{c:.6f}" for (a, b), c in zip(x, y)) + "\n")
    out = tmp_path / "plane"
    args = ["train", "--data", str(data), "--target", "z", "--model", "linear", "--optimizer", "gd"]
    args += ["--lr", "0.3", "--batch-size", "full", "--epochs", "200", "--patience", "0"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    new = tmp_path / "new.csv"
    new.write_text("v,u\n0,0\n1,1\n-1,2\n")  # columns in another order than in training
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(new), "--out", str(preds)]) == 0
    lines = preds.read_text().splitlines()
    assert lines[0] == "prediction"
    got = np.array([float(v) for v in lines[1:]])
    np.testing.assert_allclose(got, [0.5, 0.0, 5.5], atol=0.05)  # the plane z = 1.5u - 2v + 0.5
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(data)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["r2"] > 0.999
    missing = tmp_path / "nothing.csv"
    assert main(["predict", str(out), "--data", str(missing), "--out", str(preds)]) == 2
    assert "nothing.csv" in capsys.readouterr().err


def test_predictions_are_written_in_full_precision(tmp_path, capsys):
    """A target around 1.2e7: the file holds every digit the model computes (6 significant digits
    wrote 1.23463e+07, an error of ~15 on a model whose RMSE was 0.4)."""
    from downslope.cli.features import _features_for
    from downslope.experiment import data_units
    from downslope.runs import load_run
    from downslope.train import predict

    x = np.linspace(-1, 1, 60)
    data = tmp_path / "big.csv"
    data.write_text("x,y\n" + "\n".join(f"{a:.6f},{12345678 + 1000 * a:.4f}" for a in x) + "\n")
    out = tmp_path / "big"
    args = ["train", "--data", str(data), "--target", "y", "--model", "linear", "--lr", "0.05"]
    assert main([*args, "--epochs", "20", "--patience", "0", "--out", str(out), "--quiet"]) == 0
    new = tmp_path / "new.csv"
    new.write_text("x\n0.123\n-0.5\n")
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(new), "--out", str(preds)]) == 0
    assert "wrote 2 predictions" in capsys.readouterr().out
    written = np.array([float(v) for v in preds.read_text().splitlines()[1:]])
    model, state = load_run(out)
    features, _ = _features_for(state, str(new), None, need_target=False, sep=None)  # the run's scaling
    expected = data_units(predict(model, features).numpy(), state["preprocess"])
    np.testing.assert_array_equal(written.astype(expected.dtype), expected[:, 0])
    assert "e+" not in preds.read_text()


@pytest.mark.slow
def test_mpiexec_train_error_on_one_rank_ends_the_job(tmp_path):
    # The command turns an error into a message and exit status 2, which bypasses the fail-fast
    # hook; without ending the job, rank 0 would wait for rank 1 in a collective forever.
    import time

    mpiexec, env = _mpiexec_command(2)
    config = tmp_path / "run.toml"
    config.write_text('data = "blobs"\nhidden = [4]\nepochs = 2\nbatch_size = "full"\nverbose = 0\n')
    code = (
        "import sys, downslope.experiment.run as e, downslope.distributed as d; real = e.prepare\n"
        "def prepare(cfg):\n"
        "    if d.rank() == 1: raise OSError('data.csv: no such file on this node')\n"
        "    return real(cfg)\n"
        "e.prepare = prepare\n"
        "from downslope.cli import main\n"
        f"raise SystemExit(main(['train', '--config', {str(config)!r}, '--out', {str(tmp_path / 'run')!r}]))\n"
    )
    started = time.monotonic()
    try:
        result = subprocess.run(
            [*mpiexec, sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec hung after an error on rank 1:\n{exc.stdout}\n{exc.stderr}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "downslope train: error: data.csv: no such file on this node" in result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "run").exists()


def test_compare_without_a_target_uses_the_largest_of_the_runs_best_validation_losses(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--batch-size", "full", "--epochs", "15"]
    args += ["--patience", "0", "--optimizers", "gd,momentum,adam", "--lrs", "0.05"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    best: dict[str, float] = {}
    for row in _csv_rows(out / "histories.csv"):
        best[row["run"]] = min(best.get(row["run"], float("inf")), float(row["val_loss"]))
    target = max(best.values())  # every run that did not diverge reaches it: the column says how fast
    assert f"val loss target {target:.4g} (the largest of the best validation losses" in printed
    table = {r["run"]: r for r in _csv_rows(out / "compare.csv")}
    assert all(row["epochs_to_target"] for row in table.values())


def test_compare_leaves_diverged_runs_out_of_the_target_and_never_credits_them(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--optimizers", "gd", "--lrs", "0.003,0.01,1.5,3"]
    args += ["--batch-sizes", "full", "--epochs", "60", "--patience", "0", "--out", str(out)]
    assert main(args) == 0
    table = {r["run"]: r for r in _csv_rows(out / "compare.csv")}
    assert table["gd lr=1.5"]["diverged"] == "True" and table["gd lr=3"]["diverged"] == "True"
    assert not table["gd lr=1.5"]["epochs_to_target"] and not table["gd lr=3"]["epochs_to_target"]
    best = {}
    for row in _csv_rows(out / "histories.csv"):
        if row["run"] in ("gd lr=0.003", "gd lr=0.01"):
            best[row["run"]] = min(best.get(row["run"], float("inf")), float(row["val_loss"]))
    assert f"val loss target {max(best.values()):.4g}" in capsys.readouterr().out
    assert int(table["gd lr=0.01"]["epochs_to_target"]) > 1  # a target below where the runs start
    assert main([*args[:8], "0.1,0.1", "--epochs", "1", "--out", str(tmp_path / "dup")]) == 2
    assert "gd lr=0.1 would run twice" in capsys.readouterr().err
    # every run diverged: the exit status says so, as train's does for its one run
    assert main([*args[:8], "1.5,3", "--batch-sizes", "full", "--epochs", "30", "--out", str(tmp_path / "div")]) == 3
    assert "every run diverged" in capsys.readouterr().err


def test_the_fitted_line_is_drawn_in_the_data_units_not_the_standardized_ones():
    import downslope as ds
    from downslope.cli import _in_data_units
    from downslope.data import datasets
    from downslope.experiment import normalize_config, prepare

    data = prepare(normalize_config({"data": "line", "seed": 0}, "test"))
    raw = datasets.load("line", seed=0).X
    x_raw, model_raw = _in_data_units(data, lambda t: t * 2.0)
    assert abs(float(np.mean(data.X_train))) < 1e-5  # what the model was trained on: standardized
    gaps = np.abs(x_raw[:, :1] - raw[:, 0][None, :]).min(axis=1)
    assert gaps.max() < 1e-5  # every plotted x is one of the dataset's own x values
    assert x_raw.min() >= -3 and x_raw.max() <= 3 and x_raw.max() - x_raw.min() > 5  # uniform on [-3, 3]
    # the wrapped model standardizes its input first and gives its output in the target's units (the
    # model itself predicts the standardized target)
    state, target = data.preprocess["standardizer"], data.preprocess["target_scaler"]
    point = ds.tensor([[1.5]])
    expected = (1.5 - float(state["mean"][0])) / float(state["scale"][0]) * 2.0
    expected = expected * float(target["scale"][0]) + float(target["mean"][0])
    np.testing.assert_allclose(model_raw(point).numpy(), [[expected]], rtol=1e-5)


def test_train_on_a_device_records_it_and_evaluate_predict_load_on_the_cpu_or_the_device(tmp_path, capsys):
    out = tmp_path / "moons"
    flags = ["--data", "moons", "--hidden", "8", "--epochs", "4", "--seed", "3", "--quiet"]
    assert main(["train", *flags, "--device", "strict", "--out", str(out)]) == 0
    assert 'device = "strict"' in (out / "config.toml").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert main(["train", *flags, "--out", str(tmp_path / "cpu")]) == 0  # the same run on the CPU
    cpu_metrics = json.loads((tmp_path / "cpu" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == cpu_metrics["test_accuracy"]
    assert 'device = "cpu"' in (tmp_path / "cpu" / "config.toml").read_text()
    capsys.readouterr()
    scores = []
    for extra in ([], ["--device", "strict"]):
        assert main(["evaluate", str(out), *extra]) == 0
        scores.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert scores[0] == scores[1] and scores[0]["accuracy"] == pytest.approx(metrics["test_accuracy"])
    np.savez(tmp_path / "in.npz", X=np.random.default_rng(0).uniform(-1, 2, (6, 2)))
    files = []
    for extra in ([], ["--device", "strict"]):
        target = tmp_path / f"preds{len(files)}.csv"
        assert main(["predict", str(out), "--data", str(tmp_path / "in.npz"), "--out", str(target), *extra]) == 0
        files.append(target.read_text())
    assert files[0] == files[1] and len(files[0].splitlines()) == 7


def test_train_on_cuda_without_a_gpu_is_one_line_naming_the_extra(tmp_path, capsys):
    import downslope as ds

    if ds.cuda.is_available():
        pytest.skip("a GPU is usable here")
    out = tmp_path / "run"
    assert main(["train", "--data", "line", "--epochs", "1", "--device", "cuda", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "downslope[cuda]"' in err and "--device cpu" in err
    assert not out.exists()  # nothing was trained: no run directory is left behind
    assert main(["train", "--data", "line", "--epochs", "1", "--device", "gpu", "--out", str(out), "--quiet"]) == 2
    assert "unknown device 'gpu'" in capsys.readouterr().err


def test_device_flag_is_documented_on_train_evaluate_and_predict(capsys):
    for command in ("train", "evaluate", "predict"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--device {cpu,cuda,auto}" in text, command


def test_a_run_killed_on_the_cpu_resumes_on_a_device_with_the_same_weights(tmp_path, kill_training, monkeypatch):
    # The compiled host kernels (numba: the cross-entropy/softmax passes) sum in another order than the
    # NumPy formulation a device runs; bit-identity is a property of the latter, so the CPU takes it too.
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    from downslope import serialization
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))  # not about the plots
    args = ["--data", "iris", "--hidden", "8", "--epochs", "4", "--patience", "0", "--quiet", "--seed", "5"]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    kill_training(2, *args, "--out", str(tmp_path / "killed"))
    assert main(["train", "--resume", str(tmp_path / "killed"), "--device", "strict", "--quiet"]) == 0
    assert 'device = "strict"' in (tmp_path / "killed" / "config.toml").read_text()
    got = serialization.load(tmp_path / "killed" / "model.ds")["model"]
    want = serialization.load(tmp_path / "straight" / "model.ds")["model"]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_compare_warms_up_before_the_timed_runs(tmp_path, monkeypatch):
    """The first training in a process pays one-off costs (35-60 ms): without an untimed epoch first,
    whichever run went first looked up to 12x slower in the seconds-to-target column."""
    from downslope import experiment

    calls = []
    real = experiment.run_training

    def recording(cfg, **kw):
        calls.append(cfg["epochs"])
        return real(cfg, **kw)

    monkeypatch.setattr(experiment, "run_training", recording)
    args = ["compare", "--data", "moons", "--optimizers", "sgd,adam", "--epochs", "3", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    assert calls == [1, 3, 3]  # one untimed epoch, then the two timed runs


def test_the_reports_boundary_plot_uses_raw_units_column_names_and_class_names(tmp_path, monkeypatch):
    """The model learns standardized features; the picture is read in the data's units, with its column
    and class names (it drew standardized points under 'x1'/'x2' and a 'class 0/1/2' legend)."""
    import downslope as ds
    from downslope.viz import boundary

    seen = {}
    real = boundary.plot_decision_boundary

    def recording(model, x, y, **kw):
        seen.update(
            kw, x=np.asarray(x), predicted=np.asarray(model(ds.tensor(np.asarray(x, np.float32))).detach().numpy())
        )
        return real(model, x, y, **kw)

    monkeypatch.setattr(boundary, "plot_decision_boundary", recording)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (200, 2)) * [1, 100]
    label = np.where(x[:, 0] + x[:, 1] / 100 > 0, "yes", "no")
    data = tmp_path / "people.csv"
    data.write_text("height,weight,label\n" + "\n".join(f"{a:.3f},{b:.1f},{c}" for (a, b), c in zip(x, label)) + "\n")
    args = ["train", "--data", str(data), "--target", "label", "--hidden", "8", "--epochs", "200", "--quiet"]
    args += ["--optimizer", "adam", "--lr", "0.05"]  # learns the rule: test accuracy 1.0
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert seen["feature_names"] == ("height", "weight") and seen["class_names"] == ["no", "yes"]
    assert seen["x"][:, 1].max() > 50  # raw weights, not standardized ones
    agreement = np.mean((seen["predicted"].argmax(1) == 1) == (seen["x"][:, 0] + seen["x"][:, 1] / 100 > 0))
    assert agreement > 0.9  # the wrapped model reads raw inputs correctly


def test_landscape_takes_a_condition_number_and_a_momentum(tmp_path, capsys):
    out = tmp_path / "bowl"
    args = ["landscape", "--function", "quadratic", "--kappa", "100", "--momentum", "0.67"]
    assert main([*args, "--optimizers", "sgd,momentum", "--steps", "50", "--out", str(out)]) == 0
    assert "momentum  lr 0.018" in capsys.readouterr().out
    assert main(["landscape", "--function", "rosenbrock", "--kappa", "10", "--out", str(tmp_path / "r")]) == 2
    assert "--kappa sets the condition number of --function quadratic" in capsys.readouterr().err
