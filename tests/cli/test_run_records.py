"""Run records of ``downslope train`` under attack: a resumed run's config, a run's config used from
another directory, interruptions outside the epochs, names too long for the file system, metrics of a
resumed run. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from downslope import runs
from downslope.cli import main

pytest.importorskip("matplotlib")

TINY = ["--data", "iris", "--hidden", "8", "--epochs", "4", "--patience", "0", "--quiet"]


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


# ---------------------------------------------------------------------- 1. --resume and config.toml
@pytest.mark.parametrize(
    "edit, said",
    [
        (lambda text: "", "it is empty"),
        (lambda text: text.replace("epochs = 4", "epochs = 3"), "epochs = 3 (was 4)"),
        (lambda text: text[: len(text) // 2].rsplit("\n", 1)[0] + "\n", "setting(s) missing"),
    ],
    ids=["emptied", "edited", "truncated"],
)
def test_resume_refuses_a_config_changed_since_the_run_started(tmp_path, kill_training, capsys, no_plots, edit, said):
    out = tmp_path / "r"
    kill_training(2, *TINY, "--out", str(out))
    config = runs.staging_path(out) / "config.toml"
    original = config.read_text()
    config.write_text(edit(original))
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was changed since the run started" in err and said in err, err
    assert runs.read_status(runs.staging_path(out))["status"] == runs.INTERRUPTED  # still resumable
    config.write_text(original)
    assert main(["train", "--resume", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 4


def test_a_run_killed_just_before_its_rename_is_named_so_and_resumes(tmp_path, capsys, no_plots):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    os.rename(out, runs.staging_path(out))  # as a kill between the final status and the rename leaves it
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stopped just before being published" in err and f"--resume {out}" in err and "unfinished" not in err
    # its config.toml is the one the report wrote (the resolved settings): --resume accepts it
    assert main(["train", "--resume", str(out)]) == 0
    assert main(["evaluate", str(out)]) == 0


# ---------------------------------------------------------------------- 2. a run's config elsewhere
def _csv(path, shift: float) -> None:
    rows = np.random.default_rng(0).standard_normal((60, 3)) + shift
    path.write_text("a,b,y\n" + "\n".join(",".join(f"{v:.5f}" for v in r) for r in rows) + "\n")


def test_a_runs_config_used_from_another_directory_reads_the_runs_data(tmp_path, monkeypatch, capsys, no_plots):
    for place, shift in (("first", 0.0), ("other", 5.0)):
        (tmp_path / place).mkdir()
        _csv(tmp_path / place / "my.csv", shift)
    monkeypatch.chdir(tmp_path / "first")
    assert main(["train", "--data", "my.csv", "--epochs", "2", "--quiet", "--out", "X"]) == 0
    monkeypatch.chdir(tmp_path / "other")  # where my.csv names another file
    capsys.readouterr()
    assert main(["train", "--config", "../first/X/config.toml", "--quiet", "--out", "Y"]) == 0
    assert f"reading {tmp_path / 'first' / 'my.csv'}" in capsys.readouterr().out
    assert (tmp_path / "other" / "Y" / "config.toml").read_text().startswith(f'data = "{tmp_path / "first"}')
    # the run's file gone, another one here: refused, naming both, with the way to train on it
    os.rename(tmp_path / "first" / "my.csv", tmp_path / "first" / "moved.csv")
    assert main(["train", "--config", "../first/X/config.toml", "--quiet", "--out", "Z"]) == 2
    err = capsys.readouterr().err
    assert "which is gone" in err and "--data my.csv" in err and not (tmp_path / "other" / "Z").exists()
    # an explicit --data is what the user asked for
    assert main(["train", "--config", "../first/X/config.toml", "--data", "my.csv", "--quiet", "--out", "Z"]) == 0


# ---------------------------------------------------------------------- 4, 5. interruptions
def test_sigterm_while_the_report_is_written_keeps_the_run_resumable(tmp_path, monkeypatch, capsys):
    from downslope.cli import results

    def terminated(result, run):
        os.kill(os.getpid(), signal.SIGTERM)
        return {}, []

    out = tmp_path / "r"
    monkeypatch.setattr(results, "_plots", terminated)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["train", *TINY, "--out", str(out)]) == runs.EXIT_INTERRUPTED
    assert signal.getsignal(signal.SIGTERM) == handler  # put back as it was
    # (--quiet keeps warnings about the data or the model on stderr; the interruption is said once)
    err = "".join(
        line for line in capsys.readouterr().err.splitlines(True) if not line.startswith(("warning: ", "note: "))
    )
    assert err.count("\n") == 1 and "SIGTERM" in err and f"--resume {out}" in err, err
    assert runs.read_status(runs.staging_path(out))["status"] == runs.INTERRUPTED and not out.exists()
    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert runs.check_complete(out) == out


def test_an_interrupt_before_the_first_epoch_says_the_run_was_discarded(tmp_path, monkeypatch, capsys):
    from downslope.experiment import run as experiment_run

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment_run, "prepare", interrupted)
    out = tmp_path / "r"
    assert main(["train", *TINY, "--out", str(out)]) == runs.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "discarded (nothing to resume)" in err and "--resume" not in err, err
    assert sorted(os.listdir(tmp_path)) == []


def test_ctrl_c_while_the_command_is_imported_exits_130_in_one_line(tmp_path):
    program = (
        "import sys, runpy\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'downslope.cli.train':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['downslope', '--version']\n"
        "runpy.run_module('downslope', run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and done.stderr == "downslope: interrupted\n", done.stderr


def test_deeply_nested_files_are_refused_in_one_line(tmp_path, capsys, no_plots):
    config = tmp_path / "d.toml"
    config.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "nested too deeply" in capsys.readouterr().err
    out = tmp_path / "r"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    (out / "status.json").write_text("[" * 100000 + "]" * 100000)
    for command in (["evaluate", str(out)], ["predict", str(out), "--data", "x.csv", "--out", str(tmp_path / "p")]):
        capsys.readouterr()
        assert main(command) == 2
        assert capsys.readouterr().err.count("\n") == 1


# ---------------------------------------------------------------------- 6. names
def test_a_name_too_long_for_the_working_names_is_refused_with_the_limit(tmp_path, capsys):
    most = runs.max_name_length(tmp_path)
    assert main(["train", *TINY, "--out", str(tmp_path / ("r" * (most + 1)))]) == 2
    err = capsys.readouterr().err
    assert f"at most {most} bytes" in err and "File name too long" not in err
    assert os.listdir(tmp_path) == []


def test_a_leading_tilde_is_the_home_directory(tmp_path, monkeypatch, no_plots):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--out", "~/a"]) == 0
    (tmp_path / "c.toml").write_text('data = "iris"\nepochs = 1\nout = "~/b"\n')
    assert main(["train", "--config", "c.toml", "--quiet"]) == 0
    assert sorted(os.listdir(tmp_path / "home")) == ["a", "b"] and not (tmp_path / "~").exists()


# ---------------------------------------------------------------------- 7. seconds
def test_metrics_seconds_of_a_resumed_run_count_every_segment(tmp_path, kill_training, no_plots):
    out = tmp_path / "r"
    kill_training(3, *TINY, "--out", str(out))
    assert main(["train", "--resume", str(out)]) == 0
    seconds = json.loads((out / "metrics.json").read_text())["seconds"]
    lines = (out / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("time")
    cumulative = float(lines[-1].split(",")[column])
    before = float(lines[3].split(",")[column])  # the clock at the checkpoint of epoch 3
    assert seconds >= cumulative - 1e-3 and seconds > before
