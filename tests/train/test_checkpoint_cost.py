"""Per-epoch checkpoints whose cost does not grow with the epoch count, and what they restore.

Histories (History, GradientDiagnostics, LearningRateMonitor) go into a checkpoint as float64 arrays,
CSVLogger appends rows instead of rewriting its file, and resuming gives back exactly what was saved.
"""

import csv
import json
import math
import os
import zipfile

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.serialization import load, save
from downslope.train import GradientDiagnostics, History, fit
from downslope.train.callbacks import CSVLogger, LearningRateMonitor, TrainingState


def _meta_size(path):
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo("meta.json").file_size


def _fit(epochs, tmp_path, name, callbacks=(), resume_from=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    history = fit(
        model,
        "mse",
        opt,
        (x, y),
        epochs=epochs,
        batch_size=8,
        verbose=0,
        callbacks=list(callbacks),
        checkpoint_dir=tmp_path / name,
        resume_from=resume_from,
    )
    return model, history


def test_the_checkpoints_structure_does_not_grow_with_the_epochs(tmp_path):
    """meta.json (the part encoded number by number) is as large after 40 epochs as after 4: the
    per-epoch records are arrays, whose bytes grow but cost no Python work per number."""
    sizes = []
    for epochs in (4, 40):
        _fit(epochs, tmp_path, f"e{epochs}", [GradientDiagnostics(warn=False), LearningRateMonitor()])
        sizes.append(_meta_size(tmp_path / f"e{epochs}" / "last.ckpt"))
    assert abs(sizes[1] - sizes[0]) < 64, sizes


def test_resume_with_diagnostics_and_lr_monitor_is_bitwise_an_uninterrupted_run(tmp_path):
    diag, lrs = GradientDiagnostics(warn=False), LearningRateMonitor()
    model, full = _fit(6, tmp_path, "full", [diag, lrs])
    _fit(3, tmp_path, "part", [GradientDiagnostics(warn=False), LearningRateMonitor()])
    diag2, lrs2 = GradientDiagnostics(warn=False), LearningRateMonitor()
    model2, resumed = _fit(6, tmp_path, "part", [diag2, lrs2], resume_from=tmp_path / "part")
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    for key in ("loss", "lr"):
        assert resumed[key] == full[key]
    assert resumed.epochs == full.epochs
    assert json.dumps(diag2.history) == json.dumps(diag.history)  # values, key order and NaN alike
    assert lrs2.lrs == lrs.lrs


# ---------------------------------------------------------------------- History
def test_history_state_is_float64_arrays_and_keeps_none_apart_from_nan(tmp_path):
    h = History()
    h.append(0, {"loss": 1.0})
    h.append(1, {"loss": float("nan"), "val_loss": 0.5})
    h.append(2, {"loss": 0.1 + 0.2, "val_loss": float("nan")})
    state = h.state_dict()
    assert state["history"]["loss"].dtype == np.float64 and state["epochs"].dtype == np.int64
    save(state, tmp_path / "h.ckpt")
    back = History()
    back.load_state_dict(load(tmp_path / "h.ckpt"))
    assert back.epochs == [1, 2, 3]
    assert back["loss"][0] == 1.0 and math.isnan(back["loss"][1]) and back["loss"][2] == 0.1 + 0.2
    assert back["val_loss"][0] is None and back["val_loss"][1] == 0.5 and math.isnan(back["val_loss"][2])
    assert all(type(v) is float for v in back["loss"])


def test_history_loads_the_older_list_layout():
    h = History()
    h.load_state_dict(
        {"epochs": [1, 2], "history": {"epoch": [1, 2], "loss": [0.5, 0.25], "acc": [None, 0.9]}, "stop_kind": None}
    )
    assert h.keys() == ["epoch", "loss", "acc"] and h["acc"] == [None, 0.9] and h.stop_kind == "max_epochs"


# ---------------------------------------------------------------------- GradientDiagnostics
def test_diagnostics_tables_round_trip_and_the_older_list_layout_loads(tmp_path):
    diag = GradientDiagnostics()
    diag.history = [
        {"grad_norm": {"w": 1.0, "b": float("nan")}, "update_ratio": {"w": 0.1, "b": 0.2}, "dead_relu": {}},
        {"grad_norm": {"w": 2.0, "b": 3.0}, "update_ratio": {"w": 0.3, "b": 0.4}, "dead_relu": {"1": 0.25}},
    ]
    diag._warned = {("dead", "1")}
    state = diag.state_dict()
    assert state["history"]["grad_norm"]["values"].shape == (2, 2)
    assert state["history"]["dead_relu"]["present"].tolist() == [[False], [True]]
    save(state, tmp_path / "d.ckpt")
    back = GradientDiagnostics()
    back.load_state_dict(load(tmp_path / "d.ckpt"))
    assert json.dumps(back.history) == json.dumps(diag.history) and back._warned == diag._warned
    diag.history.append({"grad_norm": {"w": 4.0}, "update_ratio": {}, "dead_relu": {}})  # tables follow appends
    assert diag.state_dict()["history"]["grad_norm"]["present"].tolist() == [[True, True], [True, True], [True, False]]
    old = GradientDiagnostics()
    old.load_state_dict({"history": [dict(r) for r in diag.history], "warned": []})
    assert old.history == diag.history


def test_lr_monitor_state_is_an_array_and_old_lists_load():
    class Opt:
        param_groups = [{"lr": 0.1}, {"lr": 0.01}]

    monitor = LearningRateMonitor()
    monitor.set_trainer(TrainingState(optimizer=Opt()))
    monitor.on_train_begin()
    monitor.on_epoch_end(0, {})
    monitor.on_epoch_end(1, {})
    state = monitor.state_dict()
    assert isinstance(state["lrs"], np.ndarray) and state["lrs"].shape == (2, 2)
    back = LearningRateMonitor()
    back.load_state_dict(state)
    assert back.lrs == [[0.1, 0.01], [0.1, 0.01]]
    back.load_state_dict({"lrs": [[0.1], [0.2, 0.3]]})
    assert back.lrs == [[0.1], [0.2, 0.3]]


# ---------------------------------------------------------------------- CSVLogger
def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_logger_appends_a_row_without_rewriting_the_file(tmp_path, monkeypatch):
    from downslope import serialization

    path = tmp_path / "log.csv"
    logger = CSVLogger(path, separator=";")
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5})
    rewrites = []
    monkeypatch.setattr(serialization, "atomic_write_bytes", lambda *a: rewrites.append(a))
    for epoch in range(1, 5):
        logger.on_epoch_end(epoch, {"loss": 0.5 / (epoch + 1)})
    assert rewrites == []
    assert open(path).read().splitlines()[:2] == ["epoch;loss", "0;0.5"]  # Keras' 0-based epochs
    assert open(path).read().splitlines()[-1] == "4;0.1"
    logger.on_train_end()


def test_csv_logger_late_column_rewrites_the_header_once(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.7})
    logger.on_epoch_end(2, {"loss": 0.25, "val_loss": 0.6})
    assert _rows(path) == [
        {"epoch": "0", "loss": "1.0", "val_loss": ""},
        {"epoch": "1", "loss": "0.5", "val_loss": "0.7"},
        {"epoch": "2", "loss": "0.25", "val_loss": "0.6"},
    ]
    assert not list(tmp_path.glob(".*tmp"))


def test_csv_logger_resumed_cuts_the_file_back_to_the_checkpoints_rows(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    for epoch in range(3):
        logger.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    state = logger.state_dict()
    assert state == {"written": 3, "columns": ["epoch", "loss"], "bytes": os.path.getsize(path)}
    for epoch in range(3, 5):  # epochs after the checkpoint, trained again after the resume
        logger.on_epoch_end(epoch, {"loss": 9.0})
    resumed = CSVLogger(path)
    resumed.on_train_begin()  # as fit calls it, before the checkpoint is loaded: the file is kept
    resumed.load_state_dict(state)
    assert [r["epoch"] for r in _rows(path)] == ["0", "1", "2"]
    resumed.on_epoch_end(3, {"loss": 0.25})
    assert [(r["epoch"], r["loss"]) for r in _rows(path)][-2:] == [("2", "0.3333333333333333"), ("3", "0.25")]


def test_csv_logger_resume_after_a_late_column_and_from_an_old_checkpoint(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0})
    state = logger.state_dict()
    logger.on_epoch_end(1, {"loss": 0.5, "extra": 1})  # rewrites the file with a wider header
    resumed = CSVLogger(path)
    resumed.on_train_begin()
    resumed.load_state_dict(state)
    assert _rows(path) == [{"epoch": "0", "loss": "1.0"}]
    old = CSVLogger(path)
    old.on_train_begin()
    old.load_state_dict({"rows": [{"epoch": 1, "loss": 2.0}]})  # the layout older checkpoints hold
    old.on_epoch_end(1, {"loss": 1.5})  # (the old layout's rows kept their 1-based epochs; new rows are Keras')
    assert _rows(path) == [{"epoch": "1", "loss": "2.0"}, {"epoch": "1", "loss": "1.5"}]


def test_csv_logger_resume_with_its_file_gone_warns_and_starts_it_again(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0})
    state = logger.state_dict()
    path.unlink()
    resumed = CSVLogger(path)
    resumed.on_train_begin()
    with pytest.warns(RuntimeWarning, match="fewer than the 1 the checkpoint knew"):
        resumed.load_state_dict(state)
    resumed.on_epoch_end(1, {"loss": 0.5})
    assert _rows(path) == [{"epoch": "1", "loss": "0.5"}]


def test_csv_logger_in_a_resumed_fit_matches_an_uninterrupted_one(tmp_path):
    _fit(5, tmp_path, "full", [CSVLogger(tmp_path / "full.csv")])
    _fit(3, tmp_path, "part", [CSVLogger(tmp_path / "part.csv")])
    with open(tmp_path / "part.csv", "a") as handle:  # a row the checkpoint does not know (killed mid-epoch)
        handle.write("4,0.1,0.1,0.0,0.0\n")
    _fit(5, tmp_path, "part", [CSVLogger(tmp_path / "part.csv")], resume_from=tmp_path / "part")
    full, part = _rows(tmp_path / "full.csv"), _rows(tmp_path / "part.csv")
    drop = {"epoch_time", "time"}  # wall-clock columns
    assert [{k: v for k, v in r.items() if k not in drop} for r in part] == [
        {k: v for k, v in r.items() if k not in drop} for r in full
    ]
