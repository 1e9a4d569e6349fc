"""ONNX export of values a forward computes from the input without recording a gradient (integer and
boolean results: masks multiplied in, casts, one_hot, any/all, floor division, integer powers), of the
functional activations and other ops that have ONNX emitters, and the exporter's refusals and argument
errors. Every graph runs in ONNX Runtime on inputs not seen at export (two other batch sizes, or other
values at a fixed batch) and must match PyTorch's model with the same weights: a value of the example
must never be frozen into the graph as a constant."""

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
from downslope.errors import ArgumentError, ExportError  # noqa: E402

# The exporter writes host arrays into the ONNX file and runs ONNX Runtime on host data, by design.
pytestmark = pytest.mark.host_only

Forward = Callable[[Any, Any, Any, Any], Any]  # (lib, F, module, x) -> output


def _pair(forward: Forward, build: Callable[[Any], dict[str, Any]]) -> tuple[Any, Any]:
    """The same model in downslope and torch: ``build(lib)`` makes its layers, ``forward`` runs them."""

    def make(lib: Any) -> Any:
        class Net(lib.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                for name, layer in build(lib).items():
                    setattr(self, name, layer)

            def forward(self, *xs: Any) -> Any:
                return forward(lib, lib.nn.functional, self, *xs)

        return Net()

    ds.manual_seed(0)
    dm = make(ds).eval()
    tm = make(torch).eval()
    tm.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in dm.state_dict().items()})
    return dm, tm


def _run(path: Path, feeds: list[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), feeds)})


def _torch_out(tm: Any, feeds: list[np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = tm(*[torch.from_numpy(a.copy()) for a in feeds])
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.numpy() for o in outs]


def _check(
    forward: Forward,
    build: Callable[[Any], dict[str, Any]],
    make_inputs: Callable[[np.random.Generator, int], list[np.ndarray]],
    tmp_path: Path,
    example_batch: int = 2,
    batch_sizes: tuple[int, ...] = (3, 6),
    **kwargs: Any,
) -> None:
    """Export at ``example_batch``; the graph on fresh inputs of ``batch_sizes`` (the example's batch with
    a fixed batch) matches torch and downslope."""
    dm, tm = _pair(forward, build)
    rng = np.random.default_rng(0)
    example = [ds.from_numpy(a) for a in make_inputs(rng, example_batch)]
    path = tmp_path / "m.onnx"
    ds.onnx.export(dm, tuple(example), path, **kwargs)
    fixed = kwargs.get("dynamic_batch") is False
    for n in (example_batch,) * 3 if fixed else batch_sizes:
        feeds = make_inputs(rng, n)
        with ds.no_grad():
            mine = dm(*[ds.from_numpy(a.copy()) for a in feeds])
        for got, want, own in zip(_run(path, feeds), _torch_out(tm, feeds), [mine]):
            assert got.shape == want.shape
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(got, own.numpy(), rtol=1e-4, atol=1e-5)
            else:
                np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(got, own.numpy())


def _floats(*shape: int, scale: float = 3.0) -> Callable[[np.random.Generator, int], list[np.ndarray]]:
    return lambda rng, n: [(scale * rng.standard_normal((n, *shape))).astype(np.float32)]


def _linear(lib: Any) -> dict[str, Any]:
    return {"fc": lib.nn.Linear(4, 4)}


# ---------------------------------------------------------------------- integer and boolean values
UNRECORDED: dict[str, Forward] = {
    "bool_mask": lambda lib, F, m, x: (h := m.fc(x)) * (h > 0),
    "long_mask": lambda lib, F, m, x: (h := m.fc(x)) * (h > 0).long(),
    "int_mask": lambda lib, F, m, x: (h := m.fc(x)) * (h > 0).int(),
    "one_hot": lambda lib, F, m, x: (h := m.fc(x)) * F.one_hot(h.argmax(1), 4),
    "any_all": lambda lib, F, m, x: (h := m.fc(x)) * (h > 1).any(dim=1, keepdim=True) + (h > -1).all(dim=1).float()[:, None],
    "count_nonzero": lambda lib, F, m, x: lib.count_nonzero(m.fc(x) > 0, dim=1).float(),
    "logical": lambda lib, F, m, x: ((h := m.fc(x)) > 0).logical_and(h < 1).float() + (h > 0).logical_or(h < -2).float(),
    "signbit": lambda lib, F, m, x: m.fc(x).signbit().float(),
    "heaviside": lambda lib, F, m, x: m.fc(x).heaviside(lib.tensor(0.5)),
    "floor_divide": lambda lib, F, m, x: m.fc(x) // 0.5,
    "int_floor_divide": lambda lib, F, m, x: (m.fc(x) * 10).long() // 3,
    "int_pow": lambda lib, F, m, x: (3 * m.fc(x)).long() ** 2,
    "isnan_isinf": lambda lib, F, m, x: (h := m.fc(x)).isnan().float() + h.isfinite().float() + h.isinf().float(),
    "int_ops": lambda lib, F, m, x: ((h := (m.fc(x) * 5).long()).abs() + h.clamp(-2, 2) - h.amax(1, keepdim=True)).float(),
}  # fmt: skip


@pytest.mark.parametrize("dynamic", [True, False])
@pytest.mark.parametrize("name", list(UNRECORDED))
def test_integer_and_boolean_values_follow_the_input(name: str, dynamic: bool, tmp_path: Path) -> None:
    # They were frozen into the graph as the example's constants (silently wrong on other inputs).
    _check(UNRECORDED[name], _linear, _floats(4), tmp_path, dynamic_batch=dynamic)


@pytest.mark.parametrize("name", ["bool_mask", "long_mask", "one_hot", "floor_divide"])
def test_a_batch_of_one_example_is_not_frozen(name: str, tmp_path: Path) -> None:
    # A (1, ...) constant broadcasts over any batch, so the second-batch check could not see it.
    _check(UNRECORDED[name], _linear, _floats(4), tmp_path, example_batch=1, batch_sizes=(5, 2))


def test_bucketed_token_ids_follow_the_ids(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, ids: Any) -> Any:
        return m.emb(ids // 10) * (ids // 10).float().mean()

    def ids(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        return [rng.integers(0, 40, (n, 5)).astype(np.int64)]

    def build(lib: Any) -> dict[str, Any]:
        return {"emb": lib.nn.Embedding(4, 3)}

    dm, tm = _pair(forward, build)
    path = tmp_path / "m.onnx"
    # the example's ids all fall in bucket 0: the graph must still follow the ids
    ds.onnx.export(dm, ds.tensor(np.arange(6, dtype=np.int64).reshape(2, 3) % 10), path, dynamic_batch=False)
    feeds = [np.array([[3, 17, 25], [39, 0, 12]], np.int64)]
    np.testing.assert_allclose(_run(path, feeds)[0], _torch_out(tm, feeds)[0], rtol=1e-5, atol=1e-6)


def test_an_integer_op_without_a_rule_is_refused_by_name_and_line(tmp_path: Path) -> None:
    class Bits(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = ds.nn.Linear(4, 4)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return ((self.fc(x) * 10).long() & 3).float()

    path = tmp_path / "m.onnx"
    for dynamic in (True, False):
        with pytest.raises(
            ExportError, match=r"Bits\.forward \(bitwise_and\(\) at test_onnx_untraced_values\.py:\d+\)"
        ):
            ds.onnx.export(Bits(), ds.randn(1, 4), path, dynamic_batch=dynamic)
    assert not path.exists()


def test_the_check_batch_differs_in_size_and_values() -> None:
    from downslope.export.onnx.model import _other_batch, _other_values

    rng = np.random.default_rng(0)
    x = ds.tensor(np.full((1, 4), 0.1, np.float32))
    ids = ds.tensor(np.array([[1, 2, 3]], np.int64))
    other_x, other_ids = _other_batch([x, ids], rng, ids=50)
    assert other_x.shape[0] >= 3 and not np.allclose(other_x.numpy(), 0.1, atol=1e-2)
    assert other_ids.numpy().min() >= 0 and other_ids.numpy().max() < 50
    wider = _other_values([ds.tensor(np.array([[1, 2, 3, 1, 2, 3] * 20], np.int64))], rng, ids=50)[0].numpy()
    assert wider.max() > 3  # ids drawn over the embedding's rows, not only the example's values


# ---------------------------------------------------------------------- functional forms and ops
FUNCTIONS: dict[str, Forward] = {
    "relu6": lambda lib, F, m, x: F.relu6(x),
    "hardtanh": lambda lib, F, m, x: F.hardtanh(x, -0.5, 2.0),
    "softplus": lambda lib, F, m, x: F.softplus(x) + F.softplus(x, beta=2.0, threshold=3.0),
    "elu": lambda lib, F, m, x: F.elu(x, alpha=0.5),
    "celu": lambda lib, F, m, x: F.celu(x, alpha=2.0),
    "selu": lambda lib, F, m, x: F.selu(x),
    "mish": lambda lib, F, m, x: F.mish(x),
    "hardsigmoid": lambda lib, F, m, x: F.hardsigmoid(x),
    "logsigmoid": lambda lib, F, m, x: F.logsigmoid(x),
    "threshold": lambda lib, F, m, x: F.threshold(x, 0.1, 5.0),
    "logsumexp": lambda lib, F, m, x: x.logsumexp(1) + lib.logsumexp(x, dim=(1, 2), keepdim=True)[:, 0],
    "square": lambda lib, F, m, x: x.square(),
    "rounding": lambda lib, F, m, x: x.floor() + x.ceil() * 2 + x.round() * 3 + x.trunc() * 4 + x.sign() * 5,
    "round_decimals": lambda lib, F, m, x: x.round(decimals=1),
    "frac": lambda lib, F, m, x: x.frac(),
    "prod": lambda lib, F, m, x: x.prod(dim=1),
    "atan2": lambda lib, F, m, x: lib.atan2(x, x * x - 1.0),
    "fmod_remainder": lambda lib, F, m, x: lib.fmod(x, 0.7) + lib.remainder(x, 0.7) + x.remainder(-0.3),
    "exp2_log2_log10": lambda lib, F, m, x: x.exp2() + x.abs().log2() + (x.abs() + 1).log10(),
    "addcmul": lambda lib, F, m, x: x.addcmul(x, x, value=0.5),
    "trigonometric": lambda lib, F, m, x: x.tan() + x.sinh() + (x / 10).asin() + x.atan() + x.cosh() + x.asinh(),
    "std_over_the_batch": lambda lib, F, m, x: x - x.std(),
    "hypot_copysign": lambda lib, F, m, x: lib.hypot(x, x + 1) + lib.copysign(x.abs(), x - 0.2),
    "expm1_logit": lambda lib, F, m, x: x.expm1() + lib.logit(x.sigmoid()) + lib.logit(x.sigmoid(), eps=0.1),
    "gather": lambda lib, F, m, x: x.gather(2, (x.abs() * 3).long().clamp(0, 3)),
    "einsum": lambda lib, F, m, x: lib.einsum("bij,bkj->bik", x, x) + lib.einsum("bij->bji", x).sum(1, keepdim=True),
    "topk": lambda lib, F, m, x: (t := x.topk(2, dim=2)).values * 2 + t.indices + x.topk(1, dim=2, largest=False)[0],
    "sort": lambda lib, F, m, x: (s := x.sort(dim=2)).values + s.indices + x.sort(1, descending=True)[0][:, :1],
}  # fmt: skip


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functions_export_and_match(name: str, tmp_path: Path) -> None:
    _check(FUNCTIONS[name], lambda lib: {}, _floats(3, 4, scale=2.0), tmp_path)


# ---------------------------------------------------------------------- shapes: GPT-style rows, shared masks
def test_gpt_style_rows_split_back_to_batch_and_time(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, ids: Any) -> Any:
        b, t = ids.shape
        h = m.emb(ids).view(b * t, 8)
        return m.head(h).view(b, t, 3)

    def build(lib: Any) -> dict[str, Any]:
        return {"emb": lib.nn.Embedding(20, 8), "head": lib.nn.Linear(8, 3)}

    _check(forward, build, lambda rng, n: [rng.integers(0, 20, (n, 5)).astype(np.int64)], tmp_path)


def test_a_reshape_that_mixes_the_batch_is_refused_with_what_exports(tmp_path: Path) -> None:
    class Mix(ds.nn.Module):
        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return x.reshape(3, -1)  # rows of the batch mixed into other rows

    with pytest.raises(ExportError, match=r"dim 0 holds the batch \(size 6\).*\(B\*T, C\) -> \(B, T, C\)"):
        ds.onnx.export(Mix(), ds.randn(6, 4), tmp_path / "m.onnx")


def test_an_unbatched_input_beside_a_batched_one(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, x: Any, mask: Any) -> Any:
        return m.att(x, x, x, attn_mask=mask)[0]

    def build(lib: Any) -> dict[str, Any]:
        return {"att": lib.nn.MultiheadAttention(8, 2, batch_first=True)}

    mask = np.triu(np.ones((4, 4), bool), 1)

    def inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        return [rng.standard_normal((n, 4, 8)).astype(np.float32), mask]

    _check(forward, build, inputs, tmp_path, input_names=["x", "mask"], dynamic_axes={"x": {0: "batch"}})
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert shapes == {"x": ["batch", 4, 8], "mask": [4, 4]}


def test_a_third_free_axis_is_refused_with_what_to_do(tmp_path: Path) -> None:
    # the batch and a sequence axis can be free (tests/export/test_onnx_sequence_axis.py), not a third
    with pytest.raises(ExportError, match=r"free besides a sequence axis.*one graph per size"):
        ds.onnx.export(ds.nn.Linear(4, 2), ds.randn(2, 7, 3, 4), tmp_path / "m.onnx",
                       input_names=["x"], dynamic_axes={"x": {0: "batch", 1: "time", 2: "rows"}})  # fmt: skip


# ---------------------------------------------------------------------- messages and arguments
def test_refusals_name_the_users_op_and_line(tmp_path: Path) -> None:
    class Uses(ds.nn.Module):
        def __init__(self, op: Callable[[ds.Tensor], ds.Tensor]) -> None:
            super().__init__()
            self.op = op

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return self.op(x)

    cases = {"cumprod": lambda x: ds.cumprod(x, 1), "logcumsumexp": lambda x: ds.logcumsumexp(x, 1)}
    for name, op in cases.items():
        with pytest.raises(
            ExportError, match=rf"operation '{name}' \({name}\(\) at test_onnx_untraced_values\.py:\d+\)"
        ):
            ds.onnx.export(Uses(op), ds.randn(2, 4), tmp_path / "m.onnx")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_names": [""]}, ArgumentError, r"input_names\[0\] is empty"),
        ({"input_names": [3]}, TypeError, r"input_names\[0\] must be a str .*got int 3"),
        ({"output_names": [None]}, TypeError, r"output_names\[0\] must be a str .*got NoneType None"),
        ({"input_names": "x"}, TypeError, r"input_names must be a list of strings"),
        ({"opset": 99}, ArgumentError, r"opset must be between 17 and \d+ .*got 99"),
    ],
)
def test_bad_arguments_are_argument_errors(kwargs: dict[str, Any], error: type, message: str, tmp_path: Path) -> None:
    with pytest.raises(error, match=message):
        ds.onnx.export(ds.nn.Linear(4, 2), ds.randn(2, 4), tmp_path / "m.onnx", **kwargs)


# ---------------------------------------------------------------------- layers
LAYERS: dict[str, tuple[Callable[[Any], Any], tuple[int, ...]]] = {
    "GroupNorm": (lambda lib: lib.nn.GroupNorm(2, 4), (4, 5)),
    "GroupNorm_2d_no_affine": (lambda lib: lib.nn.GroupNorm(4, 4, affine=False), (4, 3, 3)),
    "InstanceNorm1d": (lambda lib: lib.nn.InstanceNorm1d(4, affine=True), (4, 6)),
    "InstanceNorm2d": (lambda lib: lib.nn.InstanceNorm2d(4), (4, 3, 5)),
    "RMSNorm": (lambda lib: lib.nn.RMSNorm(5), (3, 5)),
    "RMSNorm_eps": (lambda lib: lib.nn.RMSNorm([3, 5], eps=1e-3), (3, 5)),
    "ConvTranspose1d": (lambda lib: lib.nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1), (4, 6)),
    "ConvTranspose2d": (lambda lib: lib.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), groups=2, dilation=2), (4, 5, 5)),
    "AdaptiveMaxPool2d": (lambda lib: lib.nn.AdaptiveMaxPool2d((2, 3)), (4, 6, 6)),
    "Conv3d": (lambda lib: lib.nn.Conv3d(4, 2, 3, padding=1, stride=(1, 2, 1)), (4, 3, 4, 5)),
}  # fmt: skip


# GroupNorm's first forward in a process compiles downslope's kernels (about 5 s): marked slow.
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("GroupNorm") else n for n in LAYERS]
)
def test_layers_export_and_match(name: str, tmp_path: Path) -> None:
    make, shape = LAYERS[name]

    def forward(lib: Any, F: Any, m: Any, x: Any) -> Any:
        return m.layer(x)

    def build(lib: Any) -> dict[str, Any]:
        layer = make(lib)
        if lib is ds and getattr(layer, "weight", None) is not None:  # weights other than the initial ones
            layer.weight.array[...] = np.random.default_rng(3).standard_normal(layer.weight.shape) * 0.5 + 1
        return {"layer": layer}

    _check(forward, build, _floats(*shape), tmp_path)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_of_equal_bags(mode: str, tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, ids: Any) -> Any:
        return m.bag(ids)

    def build(lib: Any) -> dict[str, Any]:
        return {"bag": lib.nn.EmbeddingBag(10, 3, mode=mode)}

    _check(forward, build, lambda rng, n: [rng.integers(0, 10, (n, 4)).astype(np.int64)], tmp_path)


def test_the_users_line_skips_numpy_frames() -> None:
    # An op that runs inside np.errstate was reported at NumPy's _ufunc_config.py, not the caller's line.
    import sys

    from downslope.export.onnx.tracing import _user_line

    numpy_side: dict[str, Any] = {"__name__": "numpy._core._ufunc_config", "_user_line": _user_line, "sys": sys}
    exec("def inner():\n    return _user_line(sys._getframe())", numpy_side)
    library_side: dict[str, Any] = {"__name__": "downslope.ops.reductions", "inner": numpy_side["inner"]}
    exec("def op():\n    return inner()", library_side)
    line = sys._getframe().f_lineno + 1
    assert library_side["op"]() == f"test_onnx_untraced_values.py:{line}"
