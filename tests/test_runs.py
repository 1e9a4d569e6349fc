"""Run directories: reserved atomically, written in a staging directory, published in one rename.

The first half tests downslope.runs directly; the second half goes through the real command line
(``main([...])`` in-process, or a subprocess), one test per way a run used to be lost or mixed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from downslope import runs, serialization
from downslope.cli import main
from downslope.errors import ConfigError, StateError

pytest.importorskip("matplotlib")

TINY = ["--data", "iris", "--hidden", "8", "--epochs", "3", "--patience", "0", "--quiet"]


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing (about a second per run on a busy machine) where a test is not about the plots."""
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def train(*extra: str) -> int:
    return main(["train", *TINY, *extra])


def files_of(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def strict_json(text: str):
    def refuse(name: str):
        raise AssertionError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------------- runs.py itself
def test_a_run_appears_under_its_name_only_when_published(tmp_path):
    run = runs.reserve(tmp_path / "r")
    assert run.staging == tmp_path / ".r.partial" and run.staging.is_dir()
    assert not (tmp_path / "r").exists()
    assert runs.read_status(run.staging)["status"] == runs.RUNNING
    run.write_text("a.txt", "1")
    with pytest.raises(StateError, match="being written now"):
        runs.check_complete(tmp_path / "r")  # a reader is told, not shown half a run
    run.publish(runs.COMPLETE)
    assert not run.staging.exists()
    status = runs.read_status(tmp_path / "r")
    assert status["status"] == runs.COMPLETE and status["files"] == ["a.txt", "status.json"]
    assert runs.check_complete(tmp_path / "r") == tmp_path / "r"


def test_a_name_is_reserved_by_one_process_at_a_time(tmp_path):
    first = runs.reserve(tmp_path / "r")
    with pytest.raises(StateError, match="another downslope process is writing"):
        runs.reserve(tmp_path / "r")
    first.write_bytes(runs.CHECKPOINT_FILE, b"an epoch's checkpoint")
    first.leave(runs.INTERRUPTED)  # its process is gone: the lock is free, the run is resumable
    with pytest.raises(ConfigError, match="unfinished run .*status interrupted.*--resume"):
        runs.reserve(tmp_path / "r")
    second = runs.reserve(tmp_path / "r", overwrite=True)  # starting over is allowed, explicitly
    second.publish()
    with pytest.raises(ConfigError, match="holds a run; pass --overwrite"):
        runs.reserve(tmp_path / "r")


def test_a_dead_run_that_never_finished_an_epoch_is_taken_over(tmp_path):
    # e.g. rank 0 of a data-parallel run reserved it and the job was aborted when another rank
    # could not read its data: nothing was trained, so the name is free again
    dead = runs.reserve(tmp_path / "r")
    dead.write_text(runs.CONFIG_FILE, "seed = 1\n")
    dead._unlock()  # the process died: no discard, no status change
    run = runs.reserve(tmp_path / "r")
    assert run.staging == dead.staging and not (run.staging / runs.CONFIG_FILE).exists()
    assert [p.name for p in tmp_path.iterdir()] == [run.staging.name]


def test_a_failed_checkpoint_write_keeps_the_run_and_says_how_to_resume(tmp_path, monkeypatch, capsys, no_plots):
    real = serialization.atomic_write_bytes
    written = []

    def disk_full_at_second_checkpoint(path, data):
        if os.path.basename(path) == runs.CHECKPOINT_FILE:
            written.append(path)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(serialization, "atomic_write_bytes", disk_full_at_second_checkpoint)
    out = tmp_path / "r"
    capsys.readouterr()
    assert train("--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "could not write the checkpoint" in err and "No space left on device" in err, err
    assert f"downslope train --resume {out}" in err and "choose a writable path" not in err, err
    staging = runs.staging_path(out)
    assert runs.read_status(staging)["status"] == runs.INTERRUPTED
    assert serialization.load(staging / runs.CHECKPOINT_FILE)["epoch"] == 1  # the last good one
    monkeypatch.setattr(serialization, "atomic_write_bytes", real)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0 and runs.check_complete(out)


def test_resume_from_another_directory_reads_the_file_the_run_started_on(
    tmp_path, kill_training, monkeypatch, capsys, no_plots
):
    rows = np.random.default_rng(0).standard_normal((60, 3))
    for place, shift in (("first", 0.0), ("other", 5.0)):
        (tmp_path / place).mkdir()
        text = "a,b,y\n" + "\n".join(",".join(f"{v + shift:.5f}" for v in r) for r in rows)
        (tmp_path / place / "d.csv").write_text(text + "\n")
    args = ["train", "--data", "d.csv", "--target", "y", "--epochs", "3", "--quiet"]
    monkeypatch.chdir(tmp_path / "first")
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    kill_training(1, *args[1:], "--out", str(tmp_path / "killed"))
    monkeypatch.chdir(tmp_path / "other")  # where "d.csv" names another file
    assert main(["train", "--resume", str(tmp_path / "killed")]) == 0
    assert f"resuming on {tmp_path / 'first' / 'd.csv'}" in capsys.readouterr().out
    got = serialization.load(tmp_path / "killed" / "model.ds")["model"]
    want = serialization.load(tmp_path / "straight" / "model.ds")["model"]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_resume_takes_over_only_a_dead_run_with_a_config(tmp_path):
    run = runs.reserve(tmp_path / "r")
    with pytest.raises(StateError, match="still being written"):
        runs.resume(tmp_path / "r")
    run.leave(runs.INTERRUPTED)
    with pytest.raises(ConfigError, match="before it wrote its config.toml"):
        runs.resume(tmp_path / "r")
    assert not run.staging.exists()  # nothing worth keeping: removed
    run = runs.reserve(tmp_path / "r")
    run.write_text("config.toml", "seed = 1\n")
    run.leave(runs.INTERRUPTED)
    again = runs.resume(run.staging)  # by the staging directory's own name, too
    assert again.final == tmp_path / "r" and runs.read_status(again.staging)["status"] == runs.RUNNING
    again.publish()
    with pytest.raises(ConfigError, match="already complete"):
        runs.resume(tmp_path / "r")


def test_default_names_are_unique_within_one_second(tmp_path):
    reserved = [runs.reserve(None, parent=tmp_path, stem="digits-adam") for _ in range(50)]
    names = {r.final.name for r in reserved}
    assert len(names) == 50
    assert all(n.startswith("digits-adam-") and len(n.rsplit("-", 1)[1]) == 4 for n in names)


def test_a_made_up_name_that_meets_a_live_run_is_replaced_by_another(tmp_path, monkeypatch):
    names = iter(["digits-adam-1", "digits-adam-1", "digits-adam-2"])  # two random suffixes that met
    monkeypatch.setattr(runs, "unique_name", lambda stem: next(names))
    first = runs.reserve(None, parent=tmp_path, stem="digits-adam")
    second = runs.reserve(None, parent=tmp_path, stem="digits-adam")  # the first is still being written
    assert (first.final.name, second.final.name) == ("digits-adam-1", "digits-adam-2")


def test_overwrite_replaces_the_directory_as_a_whole(tmp_path):
    old = runs.reserve(tmp_path / "r")
    old.write_text("stale.png", "old")
    old.write_text("model.ds", "old")
    old.publish()
    new = runs.reserve(tmp_path / "r", overwrite=True)
    new.write_text("model.ds", "new")
    assert (tmp_path / "r" / "model.ds").read_text() == "old"  # untouched until the new run is complete
    new.publish()
    assert sorted(files_of(tmp_path / "r")) == ["model.ds", "status.json"]  # no stale file survives
    assert (tmp_path / "r" / "model.ds").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # the old run was removed, nothing left over


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="not a downslope run directory"):
        runs.reserve(tmp_path / "home", overwrite=True)
    assert (tmp_path / "home" / "thesis.tex").read_text() == "years of work"


def test_a_kill_during_an_overwrite_never_lets_resume_put_the_old_run_back(tmp_path, monkeypatch):
    old = runs.reserve(tmp_path / "r")
    old.write_text("model.ds", "old")
    old.publish()
    new = runs.reserve(tmp_path / "r", overwrite=True)
    new.write_text("model.ds", "new")
    new.write_text("config.toml", "")
    # the process dies right after exchanging the two directories, before the old one is deleted
    monkeypatch.setattr(runs.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr(runs.os, "rename", lambda *a, **k: None)  # nor moved out of the staging name
    new.publish()
    monkeypatch.undo()
    if (tmp_path / "r" / "model.ds").read_text() != "new":
        pytest.skip("renameat2's exchange is not available on this file system")
    staging = runs.staging_path(tmp_path / "r")
    assert (staging / "model.ds").read_text() == "old"
    (staging / "config.toml").write_text("")
    os.utime(staging / "status.json", ns=(1, 1))  # the replaced run finished earlier
    with pytest.raises(ConfigError, match="newer finished run"):
        runs.resume(tmp_path / "r")
    assert (tmp_path / "r" / "model.ds").read_text() == "new" and not staging.exists()


def test_out_may_not_be_a_working_name_a_link_or_inside_a_finished_run(tmp_path):
    done = runs.reserve(tmp_path / "done")
    done.write_text("model.ds", "m")
    done.publish()
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for out, message in (
        (tmp_path / ".live.partial", "working directory"),
        (tmp_path / ".live.reserving-abc123", "working directory"),
        (tmp_path / "link", "symbolic link"),
        (tmp_path / "done" / "sub", "inside the run"),
    ):
        with pytest.raises(ConfigError, match=message):
            runs.reserve(out, overwrite=True)


def test_leftovers_of_killed_reservations_are_swept(tmp_path):
    for leftover in (".r.reserving-x1", ".r.discarded-ab12", ".r.old-cd34"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "f").write_text("x")
    run = runs.reserve(tmp_path / "r")
    run.write_text("model.ds", "m")
    run.publish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize("moment", ["before_our_open", "while_we_lock", "before_our_lock_lands"])
def test_a_new_reservation_swept_by_another_run_of_the_same_name_is_made_again(tmp_path, monkeypatch, moment):
    """Runs started together with one --out: between one's mkdtemp and its lock, another's sweep of
    killed reservations can lock the new directory and remove it. The run reserves another directory
    and goes on. (The sweep runs in this process here: flock locks of two opens exclude each other
    as two processes' do.)"""
    fcntl = pytest.importorskip("fcntl")
    real = runs._try_lock
    raced = []

    def sweep_at_the_worst_moment(path):  # type: ignore[no-untyped-def]
        if ".reserving-" not in path.name or raced:
            return real(path)
        raced.append(path)
        if moment == "before_our_open":
            runs._sweep_leftovers(tmp_path / "r")
            return real(path)
        if moment == "while_we_lock":
            theirs = real(path)
            ours = real(path)  # None: the sweep holds it
            shutil.rmtree(path)
            os.close(theirs)
            return ours
        fd = os.open(path, os.O_RDONLY)
        runs._sweep_leftovers(tmp_path / "r")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # lands on the removed directory
        return fd

    monkeypatch.setattr(runs, "_try_lock", sweep_at_the_worst_moment)
    run = runs.reserve(tmp_path / "r")
    assert raced and not raced[0].exists() and run.staging.is_dir()
    assert runs._is_locked(run.staging)  # held: no other run takes it for a dead one and removes it
    run.write_text("model.ds", "m")
    run.publish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert (tmp_path / "r" / "model.ds").read_text() == "m"


@pytest.mark.parametrize("where", ["file", "under_a_file", "empty_name"])
def test_unusable_out_is_refused_at_once(tmp_path, where):
    (tmp_path / "f").write_text("x")
    out = {"file": tmp_path / "f", "under_a_file": tmp_path / "f" / "run", "empty_name": tmp_path / "."}[where]
    with pytest.raises(ConfigError, match="--out"):
        runs.reserve(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_file_is_replaced_not_written_through_a_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = runs.reserve(tmp_path / "r")
    os.symlink(victim, run.path("curves.png"))
    run.write_bytes("curves.png", b"png")
    assert victim.read_text() == "precious"
    assert not run.path("curves.png").is_symlink() and run.path("curves.png").read_bytes() == b"png"
    run.write_with("fit.png", lambda p: p.write_bytes(b"drawn"))
    assert run.path("fit.png").read_bytes() == b"drawn"
    assert not [p for p in run.staging.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_json_has_null_where_python_has_nan():
    text = runs.json_bytes({"loss": float("nan"), "best": [1.0, float("inf")], "x": {"y": -float("inf")}}).decode()
    assert strict_json(text) == {"loss": None, "best": [1.0, None], "x": {"y": None}}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (runs.RUNNING, "not complete .*--resume"),
        (runs.INTERRUPTED, "interrupted.*--resume"),
        (runs.DIVERGED, "diverged"),
    ],
)
def test_readers_refuse_a_run_that_is_not_complete(tmp_path, status, message):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "model.ds").write_text("x")
    (tmp_path / "r" / "status.json").write_text(json.dumps({"status": status}))
    with pytest.raises(StateError, match=message):
        runs.check_complete(tmp_path / "r")


def test_readers_refuse_a_run_missing_a_listed_file_or_its_marker(tmp_path):
    run = runs.reserve(tmp_path / "r")
    run.write_text("model.ds", "x")
    run.publish()
    (tmp_path / "r" / "model.ds").unlink()
    with pytest.raises(StateError, match="damaged: model.ds missing"):
        runs.check_complete(tmp_path / "r")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model.ds").write_text("x")
    with pytest.raises(ConfigError, match="no status.json completion marker"):
        runs.check_complete(tmp_path / "old")


# ---------------------------------------------------------------------- through the command line
def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch, no_plots):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-120000")  # the same second for both
    assert train() == 0
    assert train() == 0
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(made) == 2 and all(n.startswith("iris-adam-20260101-120000-") for n in made), made
    for name in made:
        assert runs.check_complete(tmp_path / "runs" / name)


def test_the_same_out_twice_refuses_the_second_in_one_line(tmp_path, capsys, no_plots):
    out = tmp_path / "r"
    assert train("--out", str(out)) == 0
    before = files_of(out)
    capsys.readouterr()
    assert train("--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a run; pass --overwrite" in err, err
    assert files_of(out) == before


@pytest.mark.slow  # draws plots: seconds on a busy machine
def test_overwrite_leaves_no_stale_file(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--data", "blobs", "--hidden", "8", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    assert (out / "boundary.png").is_file()  # two features: a decision boundary is drawn
    assert train("--out", str(out), "--overwrite") == 0
    assert not (out / "boundary.png").exists()  # four features: none, and the old one is gone
    assert strict_json((out / "metrics.json").read_text())["epochs"] == 3
    assert runs.check_complete(out)


def test_overwrite_with_a_diverged_run_keeps_the_complete_run(tmp_path, capsys, no_plots):
    out = tmp_path / "r"
    assert train("--out", str(out)) == 0
    before = files_of(out)
    capsys.readouterr()
    code = train("--out", str(out), "--overwrite", "--optimizer", "sgd", "--lr", "1e4", "--no-scale")
    err = capsys.readouterr().err
    assert code == runs.EXIT_DIVERGED, err
    assert files_of(out) == before and runs.check_complete(out)  # the good run is untouched
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("r-diverged-")]
    assert len(aside) == 1 and runs.read_status(aside[0])["status"] == runs.DIVERGED, err
    assert f"the complete run in {out}/ was kept" in err and str(aside[0]) in err
    assert not runs.staging_path(out).exists()


def test_overwrite_of_a_diverged_run_with_a_diverged_run_replaces_it(tmp_path, no_plots):
    out = tmp_path / "r"
    diverge = ("--optimizer", "sgd", "--lr", "1e4", "--no-scale")
    assert train("--out", str(out), *diverge) == runs.EXIT_DIVERGED
    assert train("--out", str(out), "--overwrite", "--seed", "3", *diverge) == runs.EXIT_DIVERGED
    assert "seed = 3" in (out / "config.toml").read_text()  # nothing complete was there to keep
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["r"]


def test_a_mount_point_as_out_is_refused_before_training(tmp_path, monkeypatch):
    # A run is published by one rename, which a mount point (a container's volume) cannot take.
    volume = tmp_path / "vol"
    volume.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: os.fspath(p) == os.fspath(volume) or real(p))
    with pytest.raises(ConfigError, match=r"is a mount point.*such as --out .*vol/run1"):
        runs.reserve(volume)
    assert list(tmp_path.iterdir()) == [volume] and not any(volume.iterdir())


def test_a_config_copied_from_a_run_does_not_write_over_that_run(tmp_path, monkeypatch, no_plots):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "first"
    assert train("--out", str(out)) == 0
    before = files_of(out)
    assert main(["train", "--config", str(out / "config.toml"), "--quiet"]) == 0
    assert files_of(out) == before
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(made) == 2 and "first" in made
    new = [n for n in made if n != "first"][0]
    assert f'out = "runs/{new}"' in (tmp_path / "runs" / new / "config.toml").read_text()


@pytest.mark.parametrize("where", ["file", "read_only"])
def test_an_unwritable_out_is_found_before_training(tmp_path, monkeypatch, capsys, where, no_plots):
    from downslope import experiment

    def never(*args, **kwargs):
        raise AssertionError("training started although the run directory cannot be written")

    monkeypatch.setattr(experiment, "run_training", never)
    if where == "file":
        out = tmp_path / "taken"
        out.write_text("not a directory")
    else:  # a read-only file system: creating the run directory fails with EROFS
        out = tmp_path / "ro" / "run"
        real_mkdir = os.mkdir

        def read_only(path, *args, **kwargs):
            if str(tmp_path / "ro") in str(path):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", read_only)
    assert train("--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {out}" in err, err


def test_a_write_error_never_mixes_a_new_config_with_an_old_model(tmp_path, monkeypatch, capsys, no_plots):
    out = tmp_path / "r"
    assert train("--out", str(out), "--seed", "1") == 0
    before = files_of(out)
    real = serialization.atomic_write_bytes

    def disk_full_at_model(path, data):
        if os.path.basename(path) == "model.ds":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(serialization, "atomic_write_bytes", disk_full_at_model)
    capsys.readouterr()
    assert train("--out", str(out), "--overwrite", "--seed", "2") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "--resume" in err, err
    assert files_of(out) == before  # the old run whole: its own config beside its own model
    assert runs.read_status(runs.staging_path(out))["status"] == runs.INTERRUPTED
    monkeypatch.setattr(serialization, "atomic_write_bytes", real)
    # Once there is room again, the new run is finished from its checkpoint and replaces the old one.
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert "seed = 2" in (out / "config.toml").read_text()
    assert serialization.load(out / "model.ds")["config"]["seed"] == 2
    assert not runs.staging_path(out).exists()


@pytest.mark.slow  # draws plots: seconds on a busy machine
def test_a_symlinked_plot_does_not_overwrite_its_target(tmp_path):
    out = tmp_path / "r"
    assert train("--out", str(out)) == 0
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"someone else's file")
    (out / "curves.png").unlink()
    os.symlink(victim, out / "curves.png")
    assert train("--out", str(out), "--overwrite") == 0
    assert victim.read_bytes() == b"someone else's file"
    assert not (out / "curves.png").is_symlink() and (out / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_predict_refuses_to_write_over_its_input(tmp_path, monkeypatch, capsys, no_plots):
    out = tmp_path / "r"
    assert train("--out", str(out)) == 0
    data = tmp_path / "in.csv"
    data.write_text("a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    original = data.read_bytes()
    os.symlink(data, tmp_path / "link.csv")
    monkeypatch.chdir(tmp_path)
    for target in (str(data), "./in.csv", f"../{tmp_path.name}/in.csv", "link.csv"):
        capsys.readouterr()
        assert main(["predict", str(out), "--data", str(data), "--out", target]) == 2, target
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is the input file" in err, err
        assert data.read_bytes() == original
    assert main(["predict", str(out), "--data", "link.csv", "--out", str(data)]) == 2


def test_a_diverged_run_is_kept_says_null_and_exits_3(tmp_path, capsys, no_plots):
    out = tmp_path / "r"
    code = main(
        ["train", "--data", "line", "--model", "linear", "--optimizer", "sgd", "--lr", "1e20", "--batch-size", "8"]
        + ["--epochs", "5", "--patience", "0", "--quiet", "--out", str(out)]
    )
    assert code == runs.EXIT_DIVERGED == 3
    metrics = strict_json((out / "metrics.json").read_text())  # valid JSON: no NaN or Infinity
    assert metrics["stop_reason"].startswith("diverged")
    assert None in metrics.values()
    assert runs.read_status(out)["status"] == runs.DIVERGED
    assert (out / "report.html").is_file() and (out / "model.ds").is_file()
    assert "diverged" in capsys.readouterr().err
    assert main(["evaluate", str(out)]) == 2  # not a model to use


def test_train_help_documents_the_exit_statuses():
    from downslope.cli import TRAIN_EPILOG

    assert "3    training diverged" in TRAIN_EPILOG and "130  interrupted" in TRAIN_EPILOG
    help_text = subprocess.run(
        [sys.executable, "-m", "downslope", "train", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "exit status:" in help_text and "--resume" in help_text and "--overwrite" in help_text


@pytest.mark.slow  # draws plots: seconds on a busy machine
def test_landscape_names_its_directory_like_the_others_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["landscape", "--function", "quadratic", "--optimizers", "sgd", "--steps", "5"]
    assert main(args) == 0
    assert main(args) == 0
    made = sorted((tmp_path / "runs").iterdir())
    assert len(made) == 2 and all(p.name.startswith("landscape-quadratic-") for p in made)
    assert all(runs.check_complete(p) for p in made)
    capsys.readouterr()
    assert main([*args, "--out", str(made[0])]) == 2
    assert "holds a run" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_readers_refuse_an_unfinished_run_in_one_line(tmp_path, capsys, command, no_plots):
    out = tmp_path / "r"
    assert train("--out", str(out)) == 0
    (out / "status.json").write_text(json.dumps({"status": "running"}))  # e.g. copied while being written
    args = ["predict", str(out), "--data", "iris", "--out", str(tmp_path / "p.csv")] if command == "predict" else []
    capsys.readouterr()
    assert main(args or ["evaluate", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not complete" in err, err
    staged = runs.reserve(tmp_path / "s")  # a run still being written: only its staging directory exists
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "s")]) == 2
    assert "being written now" in capsys.readouterr().err
    staged.discard()


def test_resume_continues_bit_identically_after_the_process_dies(tmp_path, kill_training, no_plots):
    args = ["--data", "iris", "--hidden", "8", "--epochs", "4", "--patience", "0", "--quiet", "--seed", "5"]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    kill_training(2, *args, "--out", str(tmp_path / "killed"))  # ends right after the checkpoint of epoch 2
    staging = runs.staging_path(tmp_path / "killed")
    assert serialization.load(staging / "checkpoint.ckpt")["epoch"] == 2
    assert main(["train", "--resume", str(tmp_path / "killed"), "--quiet"]) == 0
    got = serialization.load(tmp_path / "killed" / "model.ds")["model"]
    want = serialization.load(tmp_path / "straight" / "model.ds")["model"]
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    h_got = (tmp_path / "killed" / "history.csv").read_text().splitlines()
    h_want = (tmp_path / "straight" / "history.csv").read_text().splitlines()
    column = h_want[0].split(",").index("loss")
    assert [r.split(",")[column] for r in h_got] == [r.split(",")[column] for r in h_want]


def test_resume_refuses_other_settings_and_finished_runs(tmp_path, capsys, no_plots):
    out = tmp_path / "r"
    assert train("--out", str(out)) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err
    assert main(["train", "--resume", str(out)]) == 2
    assert "already complete" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "none")]) == 2
    assert "no unfinished run" in capsys.readouterr().err


def test_resume_after_the_last_checkpoint_of_an_early_stopped_run_does_not_train_on(tmp_path, kill_training, no_plots):
    args = ["--data", "iris", "--hidden", "8", "--epochs", "300", "--patience", "1", "--lr", "0.05", "--quiet"]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    kill_training(None, *args, "--out", str(tmp_path / "killed"))  # after the last checkpoint, before any result
    checkpoint = serialization.load(runs.staging_path(tmp_path / "killed") / "checkpoint.ckpt")
    assert checkpoint["finished"] and checkpoint["stop_reason"].startswith("early stopping")
    assert main(["train", "--resume", str(tmp_path / "killed"), "--quiet"]) == 0
    want = strict_json((tmp_path / "straight" / "metrics.json").read_text())
    got = strict_json((tmp_path / "killed" / "metrics.json").read_text())
    assert got["epochs"] == want["epochs"] < 300 and got["stop_reason"] == want["stop_reason"]
    w_got = serialization.load(tmp_path / "killed" / "model.ds")["model"]
    w_want = serialization.load(tmp_path / "straight" / "model.ds")["model"]
    for key in w_want:  # the best epoch's weights, restored at the end in both
        np.testing.assert_array_equal(w_got[key], w_want[key], err_msg=key)


@pytest.mark.slow
def test_eight_runs_started_together_are_each_complete_or_refused_in_one_line(tmp_path):
    """Four processes want the same --out, four take default names, all started at once: one of the
    four gets the shared directory, the other three are refused (non-zero, one line on stderr), and
    every run directory holds the files of exactly one run (each process trains with its own seed,
    so a mix would show)."""
    from downslope.experiment import load_toml, normalize_config

    shared = tmp_path / "shared"
    tiny = ["train", "--data", "blobs", "--hidden", "8", "--epochs", "2", "--patience", "0", "--quiet"]
    procs = []
    for seed in range(8):
        args = [*tiny, "--seed", str(seed)] + (["--out", str(shared)] if seed % 2 == 0 else [])
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "downslope", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
        )
    results = [(seed, p.returncode, out, err) for seed, p in enumerate(procs) for out, err in [p.communicate(300)]]
    winners = [seed for seed, code, _, _ in results if code == 0 and seed % 2 == 0]
    assert len(winners) == 1, results
    for seed, code, _, err in results:
        if seed % 2:
            assert code == 0, err  # a default name is always free
        elif seed not in winners:
            assert code != 0 and err.count("\n") == 1 and f"--out {shared}" in err, err
    made = sorted((tmp_path / "runs").iterdir()) + [shared]
    assert len(made) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "shared"]  # no staging directory left
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")] == []
    seeds = []
    for run in made:
        runs.check_complete(run)
        config = normalize_config(load_toml(run / "config.toml"), "test")
        state = serialization.load(run / "model.ds")
        assert normalize_config(state["config"], "test") == config, run  # its config is its model's config
        assert config["out"] == str(run) if run == shared else config["out"] == f"runs/{run.name}"
        checkpoint = serialization.load(run / "checkpoint.ckpt")
        assert checkpoint["epoch"] == 2
        for key, value in state["model"].items():  # the model is the one its own training produced
            np.testing.assert_array_equal(value, checkpoint["model"][key], err_msg=f"{run.name}: {key}")
        metrics = strict_json((run / "metrics.json").read_text())
        assert metrics["epochs"] == 2
        seeds.append(config["seed"])
    assert sorted(seeds) == sorted([1, 3, 5, 7, winners[0]])
    assert normalize_config(load_toml(shared / "config.toml"), "test")["seed"] == winners[0]


@pytest.mark.slow
def test_sigterm_keeps_the_run_resumable_and_exits_130(tmp_path):
    import signal

    out = tmp_path / "r"
    args = ["train", "--data", "blobs", "--hidden", "8", "--epochs", "100000", "--patience", "0", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "downslope", *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoint = runs.staging_path(out) / "checkpoint.ckpt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():  # the first epoch is done and saved
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before its first epoch"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == runs.EXIT_INTERRUPTED == 130
    # one line at once (as for Ctrl-C: the epoch being finished), one when the run is kept
    said = [line for line in err.splitlines() if line]
    assert len(said) == 2 and said[0].startswith("SIGTERM received: finishing epoch "), err
    assert "SIGTERM" in said[1] and f"--resume {out}" in said[1], err
    assert runs.read_status(runs.staging_path(out))["status"] == runs.INTERRUPTED and not out.exists()
    assert serialization.load(checkpoint)["epoch"] >= 1
    assert main(["evaluate", str(out)]) == 2  # not complete: refused


@pytest.mark.parametrize("content", [b"\x00\x01binary", b'{"status": "comp', b"[" * 100000 + b"]" * 100000])
def test_a_damaged_status_marker_is_named_as_such(tmp_path, content):
    run = runs.reserve(tmp_path / "r")
    run.write_text("model.ds", "m")
    run.publish()
    (tmp_path / "r" / "status.json").write_bytes(content)
    with pytest.raises(ConfigError, match="status.json is unreadable"):
        runs.check_complete(tmp_path / "r")


def test_readers_call_a_run_whose_process_died_interrupted(tmp_path):
    """A run reserved by a process that then died (kill -9: no status written) is unlocked but still
    marked running: readers say it was interrupted, not that it is running."""
    code = "import os, sys; from downslope import runs; runs.reserve(sys.argv[1]); os._exit(9)"
    env = dict(os.environ, PYTHONPATH=str(Path(runs.__file__).parents[1]))
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r")], env=env, timeout=120)
    assert done.returncode == 9 and (tmp_path / ".r.partial").is_dir()
    with pytest.raises(StateError, match=r"interrupted \(its process ended without finishing it\).*--resume"):
        runs.check_complete(tmp_path / "r")
