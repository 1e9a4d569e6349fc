"""A run directory's files tied together and checked when read back (a model.ds copied in from another
run, of another layout, of a newer format, or damaged), and missing optional extras: one line and exit
status 2, never a traceback or a silently wrong result."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import downslope as ds
from downslope import cli, runs
from downslope.cli import main
from downslope.errors import CheckpointError

FAST = ["--hidden", "4", "--epochs", "1", "--patience", "0", "--quiet"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two complete runs on other data: moons (A) and circles (C)."""
    from downslope.cli import results

    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results, "_plots", lambda result, run: ({}, []))
        assert main(["train", "--data", "moons", *FAST, "--out", str(root / "A")]) == 0
        assert main(["train", "--data", "circles", *FAST, "--out", str(root / "C")]) == 0
    return root


def _copy(two_runs, tmp_path, name="A"):
    target = tmp_path / name
    shutil.copytree(two_runs / name, target)
    return target


def _rewrite_model(run, change):
    state = ds.load(run / "model.ds")
    change(state)
    ds.save(state, run / "model.ds")


def test_a_model_copied_in_from_another_run_is_refused_naming_both_files(two_runs, tmp_path, capsys):
    run = _copy(two_runs, tmp_path)
    shutil.copyfile(two_runs / "C" / "model.ds", run / "model.ds")
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "model.ds" in err and "config.toml" in err and "another run" in err
    assert "data: 'circles' in model.ds, 'moons' in config.toml" in err  # what differs
    with pytest.raises(CheckpointError, match="config.toml"):
        runs.open_run(run)


def test_a_run_from_before_the_fingerprint_is_read_with_a_note(two_runs, tmp_path, capsys):
    run = _copy(two_runs, tmp_path)
    _rewrite_model(run, lambda s: s.pop("config_sha256"))
    assert main(["evaluate", str(run)]) == 0
    captured = capsys.readouterr()
    assert '"accuracy"' in captured.out
    notes = [line for line in captured.err.splitlines() if "older downslope" in line]
    assert len(notes) == 1 and "model.ds" in notes[0]


def test_its_own_model_is_read_without_a_note(two_runs, capsys):
    assert main(["evaluate", str(two_runs / "A")]) == 0
    assert "older downslope" not in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "pickle", "missing", "text"])
def test_runs_does_not_list_a_run_with_a_damaged_model_as_complete(two_runs, tmp_path, damage):
    run = _copy(two_runs, tmp_path)
    model = run / "model.ds"
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[:3000])
    elif damage == "pickle":
        import pickle

        model.write_bytes(pickle.dumps({"model": 1}))
    elif damage == "text":
        model.write_text("not a model\n" * 100)
    else:
        model.unlink()
    listed = {r.name: r.status for r in runs.list_runs(tmp_path)}
    assert listed == {"A": "broken"}


def test_runs_lists_an_intact_run_as_complete(two_runs):
    assert {r.name: r.status for r in runs.list_runs(two_runs)} == {"A": "complete", "C": "complete"}


def test_a_model_without_its_preprocess_entry_is_refused(two_runs, tmp_path):
    run = _copy(two_runs, tmp_path)
    _rewrite_model(run, lambda s: s.pop("preprocess"))
    with pytest.raises(CheckpointError, match=r"model\.ds.*'preprocess'"):
        runs.load_run(run)


def test_fewer_class_names_than_outputs_are_refused(two_runs, tmp_path, capsys):
    run = _copy(two_runs, tmp_path)
    _rewrite_model(run, lambda s: s.__setitem__("class_names", ["only"]))
    with pytest.raises(CheckpointError, match=r"model\.ds.*class_names.*1.*2 outputs"):
        runs.load_run(run)
    rows = tmp_path / "new.csv"
    np.savetxt(rows, np.array([[0.5, 0.2], [1.5, -0.4]]), delimiter=",", header="x0,x1", comments="")
    assert main(["predict", str(run), "--data", str(rows), "--out", str(tmp_path / "p.csv")]) == 2
    assert "class_names" in capsys.readouterr().err


def test_a_newer_format_version_is_refused_and_none_reads_as_version_1(two_runs, tmp_path):
    from downslope.experiment.run import RUN_FORMAT_VERSION

    assert ds.load(two_runs / "A" / "model.ds")["format_version"] == RUN_FORMAT_VERSION == 1
    run = _copy(two_runs, tmp_path)
    _rewrite_model(run, lambda s: s.__setitem__("format_version", 99))
    with pytest.raises(CheckpointError, match=r"model\.ds.*format version 99.*newer"):
        runs.load_run(run)
    _rewrite_model(run, lambda s: s.pop("format_version"))
    model, state = runs.load_run(run)
    assert state["task"] == "classification"


def test_a_missing_optional_extra_is_one_line_and_exit_2(monkeypatch, capsys):
    def needs_onnx(args):
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'downslope[onnx]'", name="onnx")

    monkeypatch.setitem(cli.COMMANDS, "export", needs_onnx)
    assert main(["export", "somewhere", "--onnx", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert err == "downslope export: error: ONNX export needs the 'onnx' package: pip install 'downslope[onnx]'\n"


def test_lr_find_names_only_the_files_written(tmp_path, monkeypatch, capsys):
    from downslope.cli import explore

    def no_matplotlib(result, cfg):
        raise ImportError("downslope.viz needs matplotlib")

    monkeypatch.setattr(explore, "_lr_find_png", no_matplotlib)
    out = tmp_path / "lrf"
    assert main(["lr-find", "--data", "moons", "--num-iter", "5", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"written: {out}/lr_find.csv\n" in said and "lr_find.png" not in said.split("written:")[1]


def test_an_unfinished_run_is_said_in_a_whole_sentence(tmp_path):
    import json

    run = runs.reserve(tmp_path / "r")
    run.write_text(runs.CONFIG_FILE, 'data = "moons"\n')
    run.publish(runs.COMPLETE)
    marker = tmp_path / "r" / runs.STATUS_FILE
    marker.write_text(json.dumps(dict(json.loads(marker.read_text()), status=runs.INTERRUPTED)))
    with pytest.raises(Exception, match=r"the run is not complete \(interrupted\)"):
        runs.open_run(tmp_path / "r")


def test_a_data_file_given_as_a_run_is_called_a_file(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n")
    with pytest.raises(Exception, match=r"data\.csv: is a file, not a run directory") as caught:
        runs.open_run(data)
    assert "train --out" not in str(caught.value)


def test_an_epoch_count_beyond_any_run_is_refused():
    from downslope.errors import ConfigError
    from downslope.experiment import normalize_config

    with pytest.raises(ConfigError, match=r"epochs must be at most 2147483647, got 99999999999999999999999"):
        normalize_config({"epochs": 99999999999999999999999}, "c.toml")
    assert normalize_config({"epochs": 2**31 - 1}, "c.toml")["epochs"] == 2**31 - 1


@pytest.mark.host_only  # ONNX export traces host arrays; the runtime reads NumPy
def test_run_onnx_takes_the_path_export_wrote(tmp_path):
    pytest.importorskip("onnx")
    from downslope.export.onnx.model import run_onnx

    ds.manual_seed(0)
    model = ds.nn.Linear(3, 2)
    x = np.ones((2, 3), np.float32)
    path = tmp_path / "m.onnx"
    ds.onnx.export(model, ds.tensor(x), str(path))
    (out,) = run_onnx(str(path), {"input": x})
    np.testing.assert_allclose(out, model(ds.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
