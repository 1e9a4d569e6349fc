"""ds.onnx.export with torch.onnx.export's keywords (the canonical tutorial call): opset_version,
export_params, do_constant_folding, input_names/output_names/dynamic_axes, verbose, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import downslope as ds  # noqa: E402
from downslope.errors import ArgumentError, ExportError  # noqa: E402

# the exporter reads the example and the weights on the host (tests/export/test_onnx.py fails the same way there)
pytestmark = pytest.mark.host_only


def _model() -> ds.nn.Module:
    ds.manual_seed(0)
    m = ds.nn.Sequential(ds.nn.Linear(4, 3), ds.nn.ReLU(), ds.nn.Dropout(0.5))
    return m.eval()


def _dims(value: object) -> list[object]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # type: ignore[attr-defined]


@pytest.mark.parametrize("opset_version", [17, 18])
def test_the_tutorial_call_writes_a_graph_that_runs(tmp_path: Path, opset_version: int) -> None:
    model, x = _model(), ds.randn(1, 4)
    path = tmp_path / "m.onnx"
    proto = ds.onnx.export(
        model, x, path, export_params=True, opset_version=opset_version, do_constant_folding=True,
        input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}},
    )  # fmt: skip
    assert proto.opset_import[0].version == opset_version
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
    assert _dims(proto.graph.input[0]) == ["batch_size", 4] and _dims(proto.graph.output[0])[0] == "batch_size"
    assert {i.name for i in proto.graph.initializer}  # the weights are in the graph (export_params=True)
    batch = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": batch})[0], model(ds.tensor(batch)).detach().numpy(), rtol=1e-5
    )


def test_constant_folding_dynamo_and_eval_training_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model, x = _model(), ds.randn(2, 4)
    folded = ds.onnx.export(model, x, tmp_path / "a.onnx", do_constant_folding=True)
    plain = ds.onnx.export(
        model, x, tmp_path / "b.onnx", do_constant_folding=False, dynamo=False, training=torch.onnx.TrainingMode.EVAL
    )
    assert [n.op_type for n in folded.graph.node] == [n.op_type for n in plain.graph.node]
    model.train()
    ds.onnx.export(model, x, tmp_path / "c.onnx", training="EVAL")  # EVAL exports a training model as eval
    ds.onnx.export(model.eval(), x, tmp_path / "d.onnx", training=torch.onnx.TrainingMode.PRESERVE, verbose=True)
    assert "Gemm" in capsys.readouterr().out  # verbose prints the graph


def test_what_the_exporter_cannot_do_is_refused_by_name(tmp_path: Path) -> None:
    model, x = _model(), ds.randn(2, 4)
    for kwargs, words in (
        ({"export_params": False}, "export_params=False is not supported"),
        ({"keep_initializers_as_inputs": True}, "keep_initializers_as_inputs=True is not supported"),
        ({"training": torch.onnx.TrainingMode.TRAINING}, "evaluation semantics"),
    ):
        with pytest.raises(ExportError, match=words):
            ds.onnx.export(model, x, tmp_path / "m.onnx", **kwargs)
    with pytest.raises(ExportError, match="PRESERVE with the model in eval mode"):
        ds.onnx.export(model.train(), x, tmp_path / "m.onnx", training="PRESERVE")
    with pytest.raises(ArgumentError, match="opset=17 and opset_version=18 disagree"):
        ds.onnx.export(model, x, tmp_path / "m.onnx", opset=17, opset_version=18)
    with pytest.raises(ArgumentError, match="opset must be between 17 and"):
        ds.onnx.export(model, x, tmp_path / "m.onnx", opset_version=13)
    assert not (tmp_path / "m.onnx").exists()
