"""A run's deployable model.ds holds no hashes of its training rows (8 bytes a row: megabytes at
millions of rows) and its test rows' indices in a small integer type; the hashes sit beside it in
split.ds, where ``evaluate`` finds them, and an older run whose model.ds holds them still evaluates
the same."""

from __future__ import annotations

import json

import numpy as np
import pytest

import downslope as ds
from downslope.cli import main
from downslope.experiment.run import model_from_state

pytest.importorskip("matplotlib")


def _evaluated(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_split_rows_live_beside_the_model_and_evaluate_reads_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    path = tmp_path / "t.csv"
    np.savetxt(path, np.c_[x, x @ [1.0, -2.0] + 0.1 * rng.normal(size=300)], delimiter=",", header="a,b,y",
               comments="", fmt="%.5f")  # fmt: skip
    run = tmp_path / "run"
    assert main(["train", "--data", str(path), "--model", "linear", "--epochs", "5", "--quiet", "--out", str(run)]) == 0
    state = ds.load(run / "model.ds")
    assert "train_row_hashes" not in state["split"]
    assert state["split"]["test_indices"].dtype == np.uint16 and len(state["split"]["test_indices"]) == 60
    rows = ds.load(run / "split.ds")
    assert set(rows) == {"train_row_hashes"} and len(rows["train_row_hashes"]) == 240
    trained = json.loads((run / "metrics.json").read_text())
    now = _evaluated(run, capsys)
    assert now["r2"] == pytest.approx(trained["test_r2"], rel=1e-5)
    # a run written before: the arrays inside model.ds (which names no split.ds)
    old = dict(state, split={k: v for k, v in state["split"].items() if k != "rows_file"} | dict(rows))
    ds.save(old, run / "model.ds")
    assert _evaluated(run, capsys)["r2"] == pytest.approx(now["r2"], rel=1e-9)
    # the model file copied alone (deployed): it loads, without the split's rows
    ds.save(state, run / "model.ds")
    alone = tmp_path / "deployed"
    alone.mkdir()
    (alone / "model.ds").write_bytes((run / "model.ds").read_bytes())
    _, loaded = model_from_state(ds.load(alone / "model.ds"), str(alone / "model.ds"))
    assert "train_row_hashes" not in loaded["split"] and len(loaded["split"]["test_indices"]) == 60
