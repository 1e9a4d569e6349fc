"""A run interrupted under an older downslope, whose config.toml says ``lr = 0.0`` and ``momentum = 0.0``
for "the optimizer's defaults", still resumes (as those defaults), and an edit of it is named alone."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from downslope import runs, serialization
from downslope.cli import main

pytest.importorskip("matplotlib")

ARGS = ["--data", "iris", "--hidden", "8", "--epochs", "4", "--patience", "0", "--quiet", "--seed", "5"]


def _as_an_older_downslope_wrote_it(staging):
    text = (staging / runs.CONFIG_FILE).read_text()
    assert "lr =" not in text and "momentum =" not in text  # left out: the defaults
    old = text + "lr = 0.0\nmomentum = 0.0\n"
    (staging / runs.CONFIG_FILE).write_text(old)
    record_path = staging / runs.CONFIG_RECORD_FILE
    record = json.loads(record_path.read_text())
    record["sha256"].append(hashlib.sha256(old.encode()).hexdigest())
    record["settings"] |= {"lr": 0.0, "momentum": 0.0}
    record_path.write_text(json.dumps(record))
    return old


def test_an_old_interrupted_run_resumes_with_the_default_lr_and_momentum(tmp_path, kill_training, capsys):
    args = [*ARGS, "--optimizer", "momentum"]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    kill_training(2, *args, "--out", str(tmp_path / "killed"))
    staging = runs.staging_path(tmp_path / "killed")
    old = _as_an_older_downslope_wrote_it(staging)

    (staging / runs.CONFIG_FILE).write_text(old.replace("epochs = 4", "epochs = 5"))
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "killed")]) == 2
    err = capsys.readouterr().err
    assert "epochs = 5 (was 4)" in err and "lr" not in err.split("changed since the run started")[1], err
    (staging / runs.CONFIG_FILE).write_text(old)

    assert main(["train", "--resume", str(tmp_path / "killed"), "--quiet"]) == 0
    got = serialization.load(tmp_path / "killed" / "model.ds")["model"]
    want = serialization.load(tmp_path / "straight" / "model.ds")["model"]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    written = (tmp_path / "killed" / runs.CONFIG_FILE).read_text()
    assert "lr = 0.01\n" in written and "momentum = 0.9\n" in written  # what was used
