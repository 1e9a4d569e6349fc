"""``downslope.utils.tensorboard.SummaryWriter``: what it writes, read back by TensorBoard's own
EventAccumulator and compared with what torch.utils.tensorboard writes for the same calls."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.utils.tensorboard import SummaryWriter

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

pytestmark = pytest.mark.host_only  # files on the local disk, values copied off the device on purpose


def _read(log_dir: Path | str) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def _log(writer: Any, values: Any) -> None:
    """The same calls for both writers (``values`` from the writer's own library)."""
    for step in range(3):
        writer.add_scalar("loss", 1.0 / (step + 1), global_step=step)
    writer.add_scalar("acc", values.tensor(0.75), global_step=5)
    writer.add_scalars("pair", {"train": 0.5, "val": 0.7}, global_step=1)
    writer.add_histogram("weights", values.tensor(np.linspace(-2.0, 3.0, 101), dtype=values.float64), global_step=2)
    writer.add_histogram("coarse", np.arange(10.0), global_step=2, bins=4)
    writer.add_text("note", "hello **world**", global_step=0)
    writer.add_hparams({"lr": 0.1, "opt": "sgd", "layers": 3}, {"hparam/acc": 0.9}, run_name="trial")


def test_written_events_match_torchs(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    with SummaryWriter(tmp_path / "ours") as w:
        _log(w, ds)
    with TorchWriter(tmp_path / "theirs") as w:
        _log(w, torch)
    ours, theirs = _read(tmp_path / "ours"), _read(tmp_path / "theirs")
    assert ours.Tags()["scalars"] == theirs.Tags()["scalars"] == ["loss", "acc"]
    for tag in ("loss", "acc"):
        assert [(e.step, e.value) for e in ours.Scalars(tag)] == [(e.step, e.value) for e in theirs.Scalars(tag)]
    assert [(e.step, e.value) for e in ours.Scalars("loss")] == [
        (0, 1.0),
        (1, pytest.approx(0.5)),
        (2, pytest.approx(1 / 3)),
    ]
    for tag in ("weights", "coarse"):
        (a,), (b,) = ours.Histograms(tag), theirs.Histograms(tag)
        assert a.step == b.step == 2
        assert a.histogram_value == b.histogram_value
    (text,) = ours.Tensors("note/text_summary")
    assert text.tensor_proto.string_val == [b"hello **world**"]
    assert ours.PluginTagToContent("text").keys() == theirs.PluginTagToContent("text").keys()
    # add_scalars: one run directory per series, named as torch names them
    for series, value in (("train", 0.5), ("val", 0.7)):
        run = _read(tmp_path / "ours" / f"pair_{series}")
        assert [(e.step, e.value) for e in run.Scalars("pair")] == [(1, pytest.approx(value))]
    # add_hparams: the HParams plugin's three summaries and the metric, in <log_dir>/<run_name>
    ours_hp, theirs_hp = _read(tmp_path / "ours" / "trial"), _read(tmp_path / "theirs" / "trial")
    assert ours_hp.PluginTagToContent("hparams") == theirs_hp.PluginTagToContent("hparams")
    assert [e.value for e in ours_hp.Scalars("hparam/acc")] == [pytest.approx(0.9)]


def test_default_log_dir_is_runs_date_host_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1")
    w.close()
    pattern = (
        r"runs"
        + re.escape(os.sep)
        + r"[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_"
        + re.escape(socket.gethostname() + "_lr0.1")
    )
    assert re.fullmatch(pattern, w.get_logdir())
    assert (tmp_path / w.get_logdir()).is_dir()
    assert list((tmp_path / w.get_logdir()).glob("events.out.tfevents.*"))


def test_flush_close_and_reopen(tmp_path: Path) -> None:
    w = SummaryWriter(str(tmp_path), filename_suffix=".ds")
    w.add_scalar("x", 1.0, 0)
    w.flush()
    assert [e.value for e in _read(tmp_path).Scalars("x")] == [1.0]
    w.close()
    w.close()  # twice is fine
    w.add_scalar("x", 2.0, 1)  # opens a new event file, as torch's
    w.close()
    assert sorted((e.step, e.value) for e in _read(tmp_path).Scalars("x")) == [(0, 1.0), (1, 2.0)]
    assert all(p.name.endswith(".ds") for p in tmp_path.glob("events.out.tfevents.*"))


def test_new_style_and_double_precision(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("a", 0.1, 0, new_style=True, double_precision=True)
    (event,) = _read(tmp_path).Tensors("a")
    assert event.tensor_proto.double_val == [0.1]


def test_bad_input_errors(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match=r"add_scalar: expected one value for 'v', got 3"):
            w.add_scalar("v", ds.ones(3))
        with pytest.raises(TypeError, match="add_scalar: expected a number, array or Tensor, got str"):
            w.add_scalar("v", "high")
        with pytest.raises(ValueError, match="add_histogram: 'h' has no values"):
            w.add_histogram("h", np.array([]))
        with pytest.raises(TypeError, match="add_hparams: expected hparam_dict and metric_dict to be dicts"):
            w.add_hparams([("lr", 0.1)], {})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"hparam 'f' must be an int, float, str, bool or Tensor, got function"):
            w.add_hparams({"f": lambda: 0}, {})
        with pytest.raises(TypeError, match="add_text: expected a str, got int"):
            w.add_text("t", 3)  # type: ignore[arg-type]


def test_missing_tensorboard_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "tensorboard" or name.startswith("tensorboard."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    with pytest.raises(ImportError, match=r"needs the tensorboard package.*pip install"):
        SummaryWriter(tmp_path)


def _log_media(writer: Any, lib: Any, tmp: Path) -> None:
    """Images, figures, PR curves, custom scalars and embeddings: the same calls for both writers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    writer.add_image("chw", rng.random((3, 5, 6)).astype(np.float32), 0)
    writer.add_image("hwc", (rng.random((5, 6, 3)) * 255).astype(np.uint8), 1, dataformats="HWC")
    writer.add_image("hw", rng.random((5, 6)), 1, dataformats="HW")
    writer.add_image("gray", lib.tensor(rng.random((1, 5, 6)).astype(np.float32)), 2)
    writer.add_images("grid", rng.random((10, 3, 4, 4)).astype(np.float32), 0)
    writer.add_images("nhwc", rng.random((3, 4, 4, 1)).astype(np.float32), 0, dataformats="NHWC")
    fig = plt.figure(figsize=(1, 1), dpi=20)
    plt.plot([0, 1])
    writer.add_figure("fig", fig, 0)
    writer.add_figure("figs", [plt.figure(figsize=(1, 1), dpi=20), plt.figure(figsize=(1, 1), dpi=20)], 0)
    labels, predictions = rng.integers(0, 2, 50), rng.random(50)
    writer.add_pr_curve("pr", labels, predictions, 0)
    writer.add_pr_curve(
        "pr_weighted", lib.tensor(labels), lib.tensor(predictions), 1, num_thresholds=200, weights=np.linspace(0, 1, 50)
    )
    writer.add_custom_scalars({"loss": {"both": ["Multiline", ["a", "b"]], "band": ["Margin", ["m", "lo", "hi"]]}})
    points = lib.tensor(rng.random((4, 3)).astype(np.float32))
    thumbs = lib.tensor(rng.random((4, 3, 2, 2)).astype(np.float32))
    writer.add_embedding(points, metadata=["a", "b", "c", "d"], label_img=thumbs, tag="emb/x")
    table = [[1, "x"], [2, "y"], [3, "z"], [4, "w"]]
    writer.add_embedding(rng.random((4, 2)), metadata=table, metadata_header=["n", "s"], global_step=3)


def test_media_events_and_projector_files_match_torchs_byte_for_byte(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    with SummaryWriter(tmp_path / "ours") as w:
        _log_media(w, ds, tmp_path)
    with TorchWriter(tmp_path / "theirs") as w:
        _log_media(w, torch, tmp_path)
    ours = EventAccumulator(str(tmp_path / "ours"), size_guidance={"images": 0, "tensors": 0})
    theirs = EventAccumulator(str(tmp_path / "theirs"), size_guidance={"images": 0, "tensors": 0})
    ours.Reload()
    theirs.Reload()
    assert ours.Tags()["images"] == theirs.Tags()["images"] and len(ours.Tags()["images"]) == 8
    for tag in theirs.Tags()["images"]:
        a, b = ours.Images(tag), theirs.Images(tag)
        assert [(e.step, e.width, e.height, e.encoded_image_string) for e in a] == [
            (e.step, e.width, e.height, e.encoded_image_string) for e in b
        ]
    assert ours.Tags()["tensors"] == theirs.Tags()["tensors"] == ["pr", "pr_weighted", "custom_scalars__config__"]
    for tag in theirs.Tags()["tensors"]:
        assert [e.tensor_proto for e in ours.Tensors(tag)] == [e.tensor_proto for e in theirs.Tensors(tag)]
    assert ours.PluginTagToContent("pr_curves") == theirs.PluginTagToContent("pr_curves")
    files = sorted(
        p.relative_to(tmp_path / "theirs")
        for p in (tmp_path / "theirs").rglob("*")
        if p.is_file() and "events" not in p.name
    )
    assert len(files) == 6  # projector_config.pbtxt, and tensors/metadata/sprite per embedding
    for rel in files:
        assert (tmp_path / "ours" / rel).read_bytes() == (tmp_path / "theirs" / rel).read_bytes(), rel


def test_add_graph_records_nothing_and_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import downslope.utils.tensorboard as tb

    monkeypatch.setattr(tb, "_warned_graph", False)
    with SummaryWriter(tmp_path) as w:
        with pytest.warns(UserWarning, match="graph is not recorded"):
            w.add_graph(ds.nn.Linear(2, 1), ds.ones(1, 2))
        w.add_graph(ds.nn.Linear(2, 1), ds.ones(1, 2), verbose=True, use_strict_trace=False)  # warned already
    assert not _read(tmp_path).Tags()["graph"]


def test_media_bad_input_errors(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match=r"shape \(3, 4\) does not match dataformats 'CHW'"):
            w.add_image("i", np.zeros((3, 4)))
        with pytest.raises(ValueError, match="letters of NCHW used once each"):
            w.add_image("i", np.zeros((3, 4, 4)), dataformats="CCW")
        with pytest.raises(ValueError, match="1 or 3 channels"):
            w.add_images("i", np.zeros((2, 2, 4, 4)))
        with pytest.raises(ValueError, match="2 metadata labels for 3 points"):
            w.add_embedding(np.zeros((3, 2)), metadata=["a", "b"])
        with pytest.raises(ValueError, match="mat must be 2-D"):
            w.add_embedding(np.zeros(3), global_step=1)
        with pytest.raises(ValueError, match="Margin chart takes"):
            w.add_custom_scalars({"c": {"m": ["Margin", ["a"]]}})
