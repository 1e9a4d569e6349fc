"""ONNX export of integer bitwise ops (&, |, ^, ~, shifts), xlogy, cummax/cummin, median (along a dim and
of everything), lerp, isin, the size-only factories (zeros_like, ones_like, full_like, new_zeros, new_ones,
new_full) under a free batch, and MultiheadAttention with add_zero_attn / add_bias_kv. Each graph runs in
ONNX Runtime on inputs not seen at export, at other batch sizes, and must give downslope's values; where
the op has a torch twin the values are also checked against PyTorch on the same inputs. erfinv, which ONNX
has no operator for, is written as a polynomial approximation refined with Newton steps on Erf."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import downslope as ds  # noqa: E402
from downslope.errors import ExportError  # noqa: E402

# the exporter reads the example's arrays on the host (as the rest of tests/export's ONNX tests)
pytestmark = pytest.mark.host_only


class _Net(ds.nn.Module):
    def __init__(self, forward: Callable[[Any, ds.Tensor], Any]) -> None:
        super().__init__()
        self.lin = ds.nn.Linear(6, 6)
        self.fn = forward

    def forward(self, x: ds.Tensor) -> Any:
        return self.fn(self, x)


def _outputs(value: Any) -> list[np.ndarray]:
    items = value if isinstance(value, (tuple, list)) else (value,)
    return [v.numpy() for v in items]


def _check(
    forward: Callable[[Any, ds.Tensor], Any],
    make: Callable[[np.random.Generator, int], np.ndarray],
    tmp_path: Path,
    opset: int = 17,
    batches: Sequence[int] = (3, 6),
) -> tuple[onnx.ModelProto, list[tuple[np.ndarray, list[np.ndarray]]]]:
    """Export at batch 2 (inputs from ``make(rng, batch)``); ONNX Runtime gives downslope's outputs
    (NaN where downslope has NaN, integers exactly) at the other ``batches``. Returns the model and each
    input with ONNX Runtime's outputs, for comparisons with torch."""
    ds.manual_seed(0)
    m = _Net(forward).eval()
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    ds.onnx.export(m, ds.from_numpy(make(rng, 2)), path, opset=opset)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    seen = []
    for n in batches:
        x = make(rng, n)
        with ds.no_grad():
            want = _outputs(m(ds.from_numpy(x)))
        got = session.run(None, {session.get_inputs()[0].name: x})
        assert len(got) == len(want)
        for g_, w in zip(got, want):
            assert g_.shape == w.shape and g_.dtype == w.dtype
            if w.dtype.kind == "f":
                np.testing.assert_allclose(g_, w, rtol=1e-5, atol=1e-5)
            else:
                np.testing.assert_array_equal(g_, w)
        seen.append((x, got))
    return onnx.load(str(path)), seen


def _floats(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, 6)).astype(np.float32)


def _ints(dtype: Any, low: int = -100, high: int = 100) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.integers(low, high, (n, 6)).astype(dtype)


def _ties_and_nan(rng: np.random.Generator, n: int) -> np.ndarray:
    """Small integers as floats (many ties), a NaN in the first row."""
    x = rng.integers(-3, 4, (n, 6)).astype(np.float32)
    x[0, 2] = np.nan
    return x


def _ops(names: Sequence[str]) -> set[str]:
    return set(names)


# ---------------------------------------------------------------------- size-only factories, dynamic batch
@pytest.mark.parametrize(
    "forward",
    [
        lambda m, x: m.lin(x) + ds.zeros_like(x),
        lambda m, x: m.lin(x) * ds.ones_like(x),
        lambda m, x: m.lin(x) * ds.full_like(x, 3.0),
        lambda m, x: m.lin(x) + x.new_zeros(x.shape),
        lambda m, x: m.lin(x) + x.new_ones(x.shape[0], 6),
        lambda m, x: m.lin(x) + x.new_full((x.shape[0], 1), 2.5),
        lambda m, x: ds.cat([m.lin(x), ds.zeros_like(x[:, :2], dtype=ds.float32)], dim=1),
    ],
    ids=["zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full", "zeros_like_sliced"],
)
def test_size_only_factories_follow_the_batch(forward: Any, tmp_path: Path) -> None:
    model, _ = _check(forward, _floats, tmp_path)
    assert "ConstantOfShape" in _ops(n.op_type for n in model.graph.node)


def test_a_factory_of_a_fixed_size_stays_a_constant(tmp_path: Path) -> None:
    # new_zeros(3, 6) does not name the batch: its size is the one given, whatever the batch is
    _check(lambda m, x: m.lin(x) + x.new_zeros(3, 6).sum(0), _floats, tmp_path)


# ---------------------------------------------------------------------- integer bitwise ops
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize(
    ("name", "forward"),
    [
        ("and", lambda m, x: x & 6),
        ("or", lambda m, x: x | x[:, :1]),
        ("xor", lambda m, x: (x ^ 5) ^ x.flip(1)),
        ("not", lambda m, x: ~x),
    ],
)
def test_integer_bitwise_ops(name: str, forward: Any, dtype: Any, tmp_path: Path) -> None:
    import torch

    low = 0 if dtype == np.uint8 else -100
    _, seen = _check(forward, _ints(dtype, low), tmp_path, opset=18)
    for x, got in seen:
        t = torch.from_numpy(x)
        want = {"and": t & 6, "or": t | t[:, :1], "xor": (t ^ 5) ^ t.flip(1), "not": ~t}[name]
        np.testing.assert_array_equal(got[0], want.numpy())


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize(
    ("name", "forward"),
    [
        ("left", lambda m, x: x << 3),
        ("right", lambda m, x: x >> 2),
        ("left_by_tensor", lambda m, x: x << (x[:, :1] % 4).abs()),
        ("right_by_tensor", lambda m, x: x >> (x[:, :1] % 5).abs()),
    ],
)
def test_shifts_of_integers(name: str, forward: Any, dtype: Any, tmp_path: Path) -> None:
    """Signed right shifts are arithmetic (round down); left shifts wrap in the dtype, as torch's."""
    import torch

    low = 0 if dtype == np.uint8 else -100
    _, seen = _check(forward, _ints(dtype, low), tmp_path)
    for x, got in seen:
        t = torch.from_numpy(x)
        want = {
            "left": t << 3,
            "right": t >> 2,
            "left_by_tensor": t << (t[:, :1] % 4).abs(),
            "right_by_tensor": t >> (t[:, :1] % 5).abs(),
        }[name]
        np.testing.assert_array_equal(got[0], want.numpy())


def test_integer_and_before_opset_18_is_refused_with_the_opset_to_use(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"BitwiseAnd.*opset 18.*opset=18") as info:
        _check(lambda m, x: x & 6, _ints(np.int64), tmp_path, opset=17)
    assert "test_onnx_integer_scans_factories.py" in str(info.value)  # the user's line


# ---------------------------------------------------------------------- xlogy, erfinv
def test_xlogy_with_zeros_and_nan(tmp_path: Path) -> None:
    import torch

    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        x = rng.standard_normal((n, 6)).astype(np.float32)
        x[:, 0] = 0.0  # a == 0: 0 whatever log(b) is
        x[0, 1] = np.nan  # b NaN: NaN
        return x

    def forward(m: Any, x: ds.Tensor) -> ds.Tensor:
        return ds.xlogy(x, x.abs().flip(1))

    _, seen = _check(forward, make, tmp_path)
    for x, got in seen:
        t = torch.from_numpy(x)
        np.testing.assert_allclose(got[0], torch.xlogy(t, t.abs().flip(1)).numpy(), rtol=1e-5, atol=1e-6)


def test_erfinv_written_without_an_onnx_operator_for_it(tmp_path: Path) -> None:
    """ONNX has no erfinv: a polynomial approximation of float32 precision, checked against torch.erfinv
    over (-1, 1), near the ends, and at +-1 (infinite) and beyond (NaN)."""
    import torch

    dtype = np.float32

    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        x = rng.uniform(-1, 1, (n, 6))
        x[0, :5] = [1.0, -1.0, 1.5, 0.999999, -0.99999]
        return x.astype(dtype)

    class Erfinv(ds.nn.Module):
        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return ds.erfinv(x)

    path = tmp_path / "m.onnx"
    ds.onnx.export(Erfinv(), ds.from_numpy(make(np.random.default_rng(0), 2)), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = make(np.random.default_rng(1), 64)
    got = session.run(None, {"input": x})[0]
    want = torch.erfinv(torch.from_numpy(x)).numpy()
    tolerance = 1e-5
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
    with ds.no_grad():
        np.testing.assert_allclose(got, ds.erfinv(ds.from_numpy(x)).numpy(), rtol=tolerance, atol=tolerance)


def test_erfinv_of_float64_is_refused_saying_why(tmp_path: Path) -> None:
    class Erfinv(ds.nn.Module):
        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return ds.erfinv(x)

    x = ds.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3)))
    with pytest.raises(ExportError, match=r"erfinv\(\) at .*: erfinv of float64 .*no erfinv operator"):
        ds.onnx.export(Erfinv(), x, tmp_path / "m.onnx")


# ---------------------------------------------------------------------- cummax / cummin
@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("kind", ["float_ties_nan", "int"])
def test_running_extremes_values_and_indices(op: str, kind: str, tmp_path: Path) -> None:
    import torch

    make = _ties_and_nan if kind == "float_ties_nan" else _ints(np.int64, -3, 4)
    _, seen = _check(lambda m, x: tuple(getattr(ds, op)(x, 1)), make, tmp_path)
    for x, got in seen:
        values, indices = getattr(torch, op)(torch.from_numpy(x), 1)
        np.testing.assert_array_equal(got[0], values.numpy())
        np.testing.assert_array_equal(got[1], indices.numpy())


def test_cummax_along_the_batch_dim_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cummax along the batch dim"):
        _check(lambda m, x: ds.cummax(x, 0).values, _floats, tmp_path)


# ---------------------------------------------------------------------- median
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("width", [6, 5])
def test_median_along_a_dim_with_ties_and_nan(keepdim: bool, width: int, tmp_path: Path) -> None:
    import torch

    def forward(m: Any, x: ds.Tensor) -> Any:
        return tuple(ds.median(x[:, :width], 1, keepdim=keepdim))

    _, seen = _check(forward, _ties_and_nan, tmp_path)
    for x, got in seen:
        values, indices = torch.median(torch.from_numpy(x)[:, :width], 1, keepdim=keepdim)
        np.testing.assert_array_equal(got[0], values.numpy())
        np.testing.assert_array_equal(got[1], indices.numpy())


def test_median_of_everything_follows_the_batch_size(tmp_path: Path) -> None:
    """The count of elements, and so the median's place, is read from the input's shape at run time."""
    import torch

    model, seen = _check(lambda m, x: ds.median(x * 2.0), _floats, tmp_path, batches=(3, 4))
    assert "TopK" in _ops(n.op_type for n in model.graph.node)
    for x, got in seen:  # an odd and an even count of elements: torch's lower median
        np.testing.assert_array_equal(got[0], torch.median(torch.from_numpy(x) * 2.0).numpy())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.isnan(session.run(None, {"input": _ties_and_nan(np.random.default_rng(1), 4)})[0])


# ---------------------------------------------------------------------- lerp, isin
@pytest.mark.parametrize("weight", [0.3, 0.7, 1.0])
def test_lerp_with_a_number_weight(weight: float, tmp_path: Path) -> None:
    _check(lambda m, x: ds.lerp(m.lin(x), x, weight), _floats, tmp_path)


def test_lerp_with_a_tensor_weight_on_both_sides_of_one_half(tmp_path: Path) -> None:
    import torch

    _, seen = _check(lambda m, x: ds.lerp(x, x.flip(1), x.abs()), _floats, tmp_path)
    for x, got in seen:
        t = torch.from_numpy(x)
        np.testing.assert_allclose(got[0], torch.lerp(t, t.flip(1), t.abs()).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("invert", [False, True])
def test_isin_of_a_constant_set(invert: bool, tmp_path: Path) -> None:
    import torch

    def forward(m: Any, x: ds.Tensor) -> ds.Tensor:
        return ds.isin(x, ds.tensor([1, -2, 3, 7]), invert=invert)

    _, seen = _check(forward, _ints(np.int64, -4, 8), tmp_path)
    for x, got in seen:
        want = torch.isin(torch.from_numpy(x), torch.tensor([1, -2, 3, 7]), invert=invert)
        np.testing.assert_array_equal(got[0], want.numpy())


# ---------------------------------------------------------------------- MultiheadAttention's extra key rows
class _Attention(ds.nn.Module):
    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.attn = ds.nn.MultiheadAttention(8, 2, **options)

    def forward(self, x: ds.Tensor, pad: ds.Tensor) -> ds.Tensor:
        return self.attn(x, x, x, key_padding_mask=pad)[0]


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(
    "options",
    [{"add_zero_attn": True}, {"add_bias_kv": True}, {"add_zero_attn": True, "add_bias_kv": True}],
    ids=["zero_attn", "bias_kv", "both"],
)
def test_multihead_attention_with_zero_attention_and_key_value_biases(
    options: dict[str, bool], batch_first: bool, tmp_path: Path
) -> None:
    ds.manual_seed(0)
    m = _Attention(batch_first=batch_first, **options).eval()
    rng = np.random.default_rng(0)

    def inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((n, 5, 8) if batch_first else (5, n, 8)).astype(np.float32)
        pad = np.zeros((n, 5), dtype=bool)
        pad[0, -2:] = True
        return x, pad

    path = tmp_path / "attention.onnx"
    axes = {"x": {0 if batch_first else 1: "batch"}, "pad": {0: "batch"}}
    ds.onnx.export(m, tuple(ds.from_numpy(a) for a in inputs(2)), path, input_names=["x", "pad"], dynamic_axes=axes)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (3, 6):
        x, pad = inputs(n)
        with ds.no_grad():
            want = m(ds.from_numpy(x), ds.from_numpy(pad)).numpy()
        got = session.run(None, {"x": x, "pad": pad})[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
