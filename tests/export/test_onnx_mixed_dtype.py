"""ONNX export of forwards that mix dtypes (a float64 buffer added to a float32 layer's output, a 0-d
float64 scalar): the graph casts the operands to the dtype the forward produced (torch's promotion),
and ONNX Runtime reproduces the forward; ONNX's own errors reach the user as ExportErrors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import downslope as ds  # noqa: E402
from downslope import nn  # noqa: E402
from downslope.errors import ExportError  # noqa: E402
from downslope.export.onnx import OP_EMITTERS  # noqa: E402

Forward = Callable[[Any, Any, dict[str, Any]], Any]

# Each case once with downslope's names and once with torch's: (forward, torch forward).
CASES: dict[str, tuple[Forward, Forward]] = {
    "add_float64_buffer": (lambda x, lin, b: lin(x) + b["f64"], lambda x, lin, b: lin(x) + b["f64"]),
    "float64_buffer_minus": (lambda x, lin, b: b["f64"] - lin(x), lambda x, lin, b: b["f64"] - lin(x)),
    "times_0d_float64": (
        lambda x, lin, b: lin(x) * ds.tensor(3.0, dtype=float),
        lambda x, lin, b: lin(x) * torch.tensor(3.0, dtype=float),
    ),
    "divide_float64": (lambda x, lin, b: lin(x) / b["f64"], lambda x, lin, b: lin(x) / b["f64"]),
    "maximum_float64": (
        lambda x, lin, b: ds.maximum(lin(x), b["f64"]),
        lambda x, lin, b: torch.maximum(lin(x), b["f64"]),
    ),
    "pow_float64": (lambda x, lin, b: lin(x).abs() ** b["f64"], lambda x, lin, b: lin(x).abs() ** b["f64"]),
    "cat_float32_float64": (
        lambda x, lin, b: ds.cat([lin(x), lin(x).double()], dim=1),
        lambda x, lin, b: torch.cat([lin(x), lin(x).double()], dim=1),
    ),
    # both refuse float32 @ float64: the product of a cast
    "matmul_float64": (lambda x, lin, b: lin(x).double() @ b["m64"], lambda x, lin, b: lin(x).double() @ b["m64"]),
    "add_int64_buffer": (lambda x, lin, b: lin(x) + b["i64"], lambda x, lin, b: lin(x) + b["i64"]),
}


class Mixed(nn.Module):
    def __init__(self, forward: Forward) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("f64", ds.tensor([1.5, 2.0], dtype=ds.float64))
        self.register_buffer("m64", ds.tensor([[1.0, 0.5], [-2.0, 0.25]], dtype=ds.float64))
        self.register_buffer("i64", ds.tensor([1, 2]))
        self.fn = forward

    def forward(self, x: Any) -> Any:
        return self.fn(x, self.lin, {"f64": self.f64, "m64": self.m64, "i64": self.i64})


@pytest.mark.parametrize("case", sorted(CASES))
def test_mixed_dtype_forward_exports_and_matches_torch_and_onnxruntime(case: str, tmp_path: Path) -> None:
    fn, torch_fn = CASES[case]
    model = Mixed(fn)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    ds.onnx.export(model, ds.tensor(x), tmp_path / "m.onnx")

    other = np.random.default_rng(1).standard_normal((7, 3)).astype(np.float32)
    with ds.no_grad():
        expected = model(ds.tensor(other)).numpy()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": other})[0]
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)

    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(model.lin.weight.detach().numpy()))
        lin.bias.copy_(torch.tensor(model.lin.bias.detach().numpy()))
        buffers = {k: torch.tensor(getattr(model, k).numpy()) for k in ("f64", "m64", "i64")}
        reference = torch_fn(torch.tensor(other), lin, buffers)
    assert str(reference.dtype).removeprefix("torch.") == str(expected.dtype)  # the forward promotes as torch
    np.testing.assert_allclose(got, reference.numpy(), rtol=1e-5, atol=1e-5)


def test_the_repro_buffer_added_to_linear_output_is_float64_in_onnx(tmp_path: Path) -> None:
    class C(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.register_buffer("shift", ds.ones(2, dtype=ds.float64))

        def forward(self, x: Any) -> Any:
            return self.lin(x) + self.shift

    proto = ds.onnx.export(C(), ds.randn(2, 3), tmp_path / "c.onnx")
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert "Cast" in [n.op_type for n in proto.graph.node]


def test_a_graph_onnx_refuses_is_an_export_error_naming_the_forward_and_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad_add(g: Any, t: Any, ins: list[str], parents: Any) -> str:  # an emitter bug: Add of float and int64
        return g.node("Add", [ins[0], g.const(np.ones(2, np.int64), "bad")], "add")

    monkeypatch.setitem(OP_EMITTERS, "_add_vjp", bad_add)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            return self.lin(x) + 1.0

    with pytest.raises(ExportError) as info:
        ds.onnx.export(Net(), ds.randn(2, 3), tmp_path / "bad.onnx")
    message = str(info.value)
    assert "Net.forward" in message and "Add node" in message and "checker" in message
    assert not (tmp_path / "bad.onnx").exists()


def test_an_emitter_crash_is_an_export_error_naming_the_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(g: Any, t: Any, ins: list[str], parents: Any) -> str:
        raise ValueError("boom")

    monkeypatch.setitem(OP_EMITTERS, "_mul_vjp", crash)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            return self.lin(x) * 2.0

    with pytest.raises(ExportError, match=r"Net\.forward.*'mul'.*ValueError: boom"):
        ds.onnx.export(Net(), ds.randn(2, 3), tmp_path / "bad.onnx")
