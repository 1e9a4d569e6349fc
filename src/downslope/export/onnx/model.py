"""From a traced graph to a checked ONNX model: declarations, the ModelProto, the second-batch check, export."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np

from ...errors import ArgumentError, ArgumentTypeError, DownslopeError, ExportError
from ...nn.module import Module
from ...tensor import Tensor, wrap_array
from .graph import MIN_OPSET, GraphBuilder, require_onnx
from .tracing import as_inputs, preserved, run_model, trace


def value_info(name: str, arr: np.ndarray, dynamic: set[int], label: str = "batch") -> Any:
    """An ONNX input/output declaration: ``arr``'s dtype and shape, with the dims in ``dynamic`` free
    (named ``label``)."""
    h = require_onnx().helper
    shape = [(label if i in dynamic else int(s)) for i, s in enumerate(arr.shape)]
    return h.make_tensor_value_info(name, h.np_dtype_to_tensor_dtype(arr.dtype), shape)


def finish(g: GraphBuilder, name: str, inputs: list[Any], outputs: list[tuple[str, str, Any]]) -> Any:
    """The ModelProto of ``g``: ``outputs`` are (internal value, output name, value_info) triples;
    each output name must have been reserved in ``g`` (or made by ``g.fresh``) before tracing."""
    onnx = require_onnx()
    h = onnx.helper
    for src, dst, _ in outputs:  # the output names were reserved (or made fresh) by the caller
        g.nodes.append(h.make_node("Identity", [src], [dst], name=g.fresh("output_node")))
    nodes, initializers = _prune(g.nodes, g.initializers, [dst for _, dst, _ in outputs])
    graph = h.make_graph(nodes, name, inputs, [info for _, _, info in outputs], initializers)
    opsets = [h.make_opsetid("", g.opset)] + [
        h.make_opsetid(d, 3 if d == "ai.onnx.ml" else 1) for d in sorted(g.domains)
    ]
    proto = h.make_model(graph, opset_imports=opsets, producer_name="downslope")
    proto.ir_version = h.find_min_ir_version_for(opsets)
    return proto


def to_model(
    model: Module,
    example_input: Any,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int = MIN_OPSET,
    dynamic_axes: Mapping[str, Any] | None = None,
) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (see :func:`export`, which also checks and writes it).

    Example:
        >>> import downslope as ds
        >>> proto = ds.onnx.to_model(ds.nn.Linear(3, 2), ds.randn(4, 3))  # doctest: +SKIP
    """
    return _to_model(model, example_input, input_names, output_names, dynamic_batch, opset, dynamic_axes)[0]


def _dynamic_axes(
    dynamic_axes: Mapping[str, Any], inputs: list[Tensor], in_names: list[str]
) -> tuple[bool, dict[str, dict[int, str]], list[int | None]]:
    """``torch.onnx.export``'s ``dynamic_axes`` ({name: {axis: label}} or {name: [axes]}) as
    (dynamic_batch, each named value's {axis: label}, each input's batch axis). Here one axis of each input
    can be free, the batch: dim 0, or dim 1 of a sequence-first model's (L, N, E) input; a free sequence axis
    has been taken out before (:func:`_sequence_axes`)."""
    if not isinstance(dynamic_axes, Mapping):
        raise ArgumentError(
            f"ONNX export: dynamic_axes must map input/output names to axes ({{'input': {{0: 'batch'}}}}), "
            f"got {type(dynamic_axes).__name__}"
        )
    labels: dict[str, dict[int, str]] = {}
    for name, axes in dynamic_axes.items():
        named = dict(axes) if isinstance(axes, Mapping) else {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in
                                                              enumerate(axes)}  # fmt: skip
        labels[name] = {int(a): str(v) for a, v in named.items()}
    chosen: list[int | None] = []
    for name, t in zip(in_names, inputs):
        axes = sorted(labels.get(name, {}))
        if len(axes) > 1 or (axes and axes[0] not in (0, 1)) or (axes and axes[0] >= t.ndim):
            raise ExportError(
                f"ONNX export: dynamic_axes asks for axes {axes} of input {name!r} (shape {tuple(t.shape)}) to be "
                "free besides a sequence axis; the batch can be free (axis 0, or axis 1 for a sequence-first (L, N, "
                "E) input) and one sequence axis (labelled e.g. 'seq' or 'time'); an input not listed keeps its "
                "example's shape. For other free sizes export one graph per size, or pad to the size the graph has"
            )
        chosen.append(axes[0] if axes else None)
    # An input not listed keeps its example's shape (a shared (L, S) attention mask, a table): a graph
    # input all the same, its values followed, its sizes fixed.
    listed = [n for n, a in zip(in_names, chosen) if a is not None]
    return bool(listed), labels, chosen  # output names are checked once the outputs are known


def _to_model(
    model: Module,
    example_input: Any,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    dynamic_batch: bool,
    opset: int,
    dynamic_axes: Mapping[str, Any] | None = None,
) -> tuple[Any, GraphBuilder]:
    newest = _newest_opset()
    if opset < MIN_OPSET or opset > newest:
        raise ArgumentError(
            f"ONNX export: opset must be between {MIN_OPSET} and {newest} (the newest the installed onnx "
            f"package knows), got {opset}"
        )
    inputs = as_inputs(example_input, model)
    _check_names("input_names", input_names)
    _check_names("output_names", output_names)
    in_names = list(input_names) if input_names is not None else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    )  # fmt: skip
    if len(in_names) != len(inputs):
        raise ArgumentError(f"ONNX export: {len(inputs)} example inputs but {len(in_names)} input_names")
    if dynamic_axes is not None and isinstance(dynamic_axes, Mapping):
        found = _sequence_axes(dynamic_axes, inputs, in_names)
        if found is not None:
            return _with_free_length(model, inputs, in_names, output_names, dynamic_batch, opset, *found)
    labels: dict[str, dict[int, str]] = {}
    axes: list[int | None] = [0 if t.ndim else None for t in inputs]
    if dynamic_axes is not None:
        dynamic_batch, labels, axes = _dynamic_axes(dynamic_axes, inputs, in_names)
    g = GraphBuilder(opset, dynamic_batch)
    for n in in_names + list(output_names or []):  # before tracing, so that no internal value takes them
        g.reserve(n)
    internal, outs = trace(g, model, inputs, in_names, axes)
    out_names = list(output_names or [])
    if len(out_names) > len(outs):
        raise ArgumentError(f"ONNX export: the model returns {len(outs)} tensors but {len(out_names)} output_names")
    # As torch.onnx.export: the names given are the first outputs'; the others get default names.
    if len(outs) == 1 and not out_names:
        out_names = [g.fresh("output")]
    out_names += [g.fresh(f"output_{i}") for i in range(len(out_names), len(outs))]
    if dynamic_axes is not None:
        unknown = sorted(set(dynamic_axes) - set(in_names) - set(out_names))
        if unknown:
            raise ArgumentError(
                f"ONNX export: dynamic_axes names {unknown}, which are neither input_names {in_names} nor "
                f"output_names {out_names}"
            )
        outputs_listed = sorted(n for n in out_names if labels.get(n))
        if outputs_listed and not dynamic_batch:
            raise ExportError(
                f"ONNX export: dynamic_axes makes an axis free for output(s) {outputs_listed} but for no input; the "
                "batch axis is free for the inputs and the outputs together: list it for the inputs too"
            )
    # Output dims that follow the batch size: those that change when the model sees another batch.
    changed = _batch_dims(model, inputs, [o.array.shape for o in outs], axes) if dynamic_batch else [set()] * len(outs)
    for name, dims in zip(out_names, changed):
        fixed = sorted(set(labels.get(name, {})) - dims)
        if fixed:  # it would be silently fixed: the graph holds its size as a constant
            raise ExportError(
                f"ONNX export: dynamic_axes asks for axis {fixed[0]} of output {name!r} to be free, but it does not "
                f"follow the inputs' batch axis (the axes that do: {sorted(dims)}); the trace writes its size into "
                "the graph as a constant"
            )
    default = g.free_axis_role
    graph_inputs = [
        value_info(n, t.array, {a} if dynamic_batch and a is not None else set(),
                   labels.get(n, {}).get(a if a is not None else 0, default))
        for n, t, a in zip(in_names, inputs, axes)
    ]  # fmt: skip
    outputs = [
        (src, dst, value_info(dst, o.array, c, next(iter(labels.get(dst, {}).values()), _label_of(labels, default))))
        for src, dst, o, c in zip(internal, out_names, outs, changed)
    ]
    return finish(g, type(model).__name__, graph_inputs, outputs), g


_SEQUENCE_WORDS = ("seq", "time", "len", "step", "token", "position", "frame")


def _is_sequence_label(label: str) -> bool:
    """Whether a dynamic_axes label names a sequence axis (``seq``, ``seq_len``, ``time``, ``T``...)."""
    low = label.lower()
    return any(w in low for w in _SEQUENCE_WORDS) or low in ("t", "l", "s", "tgt", "src")


def _axes_of(axes: Any, name: str) -> dict[int, str]:
    if isinstance(axes, Mapping):
        return {int(a): str(v) for a, v in axes.items()}
    return {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}


def _sequence_axes(
    dynamic_axes: Mapping[str, Any], inputs: list[Tensor], in_names: list[str]
) -> tuple[dict[str, Any], list[int | None], str, dict[str, set[int]]] | None:
    """A free sequence axis among ``dynamic_axes``: (dynamic_axes without it, each input's sequence axis,
    its label, each output's axes of that label), or None when there is none. An input with two free axes
    has a batch axis (the one whose label is not a sequence word such as ``seq``/``time``; else the lower)
    and a sequence axis; an input with one free axis has the batch, unless its label is a sequence word."""
    seq: list[int | None] = []
    labels: set[str] = set()
    rest: dict[str, Any] = {}
    for name, t in zip(in_names, inputs):
        given = _axes_of(dynamic_axes[name], name) if name in dynamic_axes else {}
        chosen = None
        if len(given) == 2:
            words = [a for a in sorted(given) if _is_sequence_label(given[a])]
            chosen = words[0] if len(words) == 1 else max(given)
        elif len(given) == 1 and _is_sequence_label(next(iter(given.values()))):
            chosen = next(iter(given))
        if chosen is not None and chosen >= t.ndim:
            raise ExportError(
                f"ONNX export: dynamic_axes frees axis {chosen} of input {name!r}, which has shape {tuple(t.shape)}"
            )
        seq.append(chosen)
        if chosen is not None:
            labels.add(given[chosen])
            given = {a: v for a, v in given.items() if a != chosen}
        if name in dynamic_axes:
            rest[name] = given
    if not labels:
        return None
    if len(labels) > 1:
        raise ExportError(
            f"ONNX export: dynamic_axes names several sequence axes {sorted(labels)}; one sequence length can be free "
            "(give the inputs' sequence axes one label)"
        )
    sizes = {int(t.shape[a]) for t, a in zip(inputs, seq) if a is not None}
    if len(sizes) > 1:
        raise ExportError(
            f"ONNX export: the inputs' sequence axes have the lengths {sorted(sizes)} in the example; the axes named "
            "with one label must have one length"
        )
    label = labels.pop()
    outputs: dict[str, set[int]] = {}
    for name, axes in dynamic_axes.items():
        if name in in_names:
            continue
        given = _axes_of(axes, name)
        outputs[name] = {a for a, v in given.items() if v == label}
        rest[name] = {a: v for a, v in given.items() if v != label}
    return rest, seq, label, outputs


def _with_free_length(
    model: Module,
    inputs: list[Tensor],
    in_names: list[str],
    output_names: Sequence[str] | None,
    dynamic_batch: bool,
    opset: int,
    rest: dict[str, Any],
    seq: list[int | None],
    label: str,
    outputs: dict[str, set[int]],
) -> tuple[Any, GraphBuilder]:
    """The model traced at three sequence lengths and the graphs merged into one that reads the length from
    the input (see :mod:`.sequence`)."""
    from . import sequence

    k = next(i for i, a in enumerate(seq) if a is not None)
    axis = seq[k]
    assert axis is not None
    ts = sequence.lengths(int(inputs[k].shape[axis]))
    traced = [
        _to_model(model, tuple(sequence.resized(inputs, seq, t)), in_names, output_names, dynamic_batch, opset, rest)
        for t in ts
    ]
    protos, builders = [p for p, _ in traced], [b for _, b in traced]
    proto = sequence.generalize(protos, builders, ts, in_names[k], axis, label, outputs)
    g = builders[0]
    g.sequence_axes = list(seq)
    return proto, g


def _newest_opset() -> int:
    """The newest default-domain opset the installed ``onnx`` package (its checker and helper) knows."""
    return int(require_onnx().defs.onnx_opset_version())


def _check_names(what: str, names: Sequence[str] | None) -> None:
    """Refuse input_names/output_names that are not a sequence of non-empty strings."""
    if names is None:
        return
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise ArgumentTypeError(
            f"ONNX export: {what} must be a list of strings (['input']), got {type(names).__name__} {names!r}"
        )
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ArgumentTypeError(
                f"ONNX export: {what}[{i}] must be a str (a graph value's name), got {type(name).__name__} {name!r}"
            )
        if not name:
            raise ArgumentError(f"ONNX export: {what}[{i}] is empty; ONNX needs a non-empty name for each value")


def _label_of(labels: dict[str, dict[int, str]], default: str) -> str:
    """The name of the free dim of the outputs not listed in dynamic_axes: the inputs' first label, else ``default``."""
    return next((v for axes in labels.values() for v in axes.values()), default)


def _batch_dims(
    model: Module, inputs: list[Tensor], shapes: list[tuple[int, ...]], axes: Sequence[int | None] | None = None
) -> list[set[int]]:
    other = _other_batch(inputs, np.random.default_rng(0), axes)
    with preserved(model):
        try:
            with_other = run_model(_evaluating(model), other)
        except DownslopeError as exc:  # e.g. a reshape to a constant shape that holds the batch size
            at = next((a for a in (axes or [0]) if a is not None), 0)
            batch = other[0].shape[at] if other and other[0].ndim > at else 1
            raise ExportError(
                f"{type(model).__name__}: the forward does not run on a batch of {batch} (another batch size than the "
                f"example's, along axis {at}), so its batch size is not dynamic: {exc}. Write shapes from x.shape "
                "(reshape(x.shape[0], -1)), or export with dynamic_batch=False to fix the batch size at the example's"
            ) from None
    return [{i for i, (a, b) in enumerate(zip(s, o.shape)) if a != b} for s, o in zip(shapes, with_other)]


class _evaluating:  # noqa: N801 - used like a function
    """Calls ``model`` in eval mode and restores each submodule's mode afterwards."""

    def __init__(self, model: Module) -> None:
        self.model = model

    def __call__(self, *args: Any) -> Any:
        modes = {id(m): m.training for m in self.model.modules()}
        self.model.eval()
        try:
            return self.model(*args)
        finally:
            for m in self.model.modules():
                m.training = modes[id(m)]


def _other_batch(
    inputs: list[Tensor],
    rng: np.random.Generator,
    axes: Sequence[int | None] | None = None,
    ids: int | None = None,
    spread: float = 0.5,
) -> list[Tensor]:
    """Rows of the example resampled to a batch two larger (at least 3; along each input's batch axis,
    dim 0 by default) with other values: floating values get noise of ``spread`` times their spread,
    integers are redrawn over a wider range (see :func:`_wider_integers`). The second batch
    differs from the example in size and values, so that a value frozen at the example's (a (1, ...)
    constant that broadcasts over any batch, a mask equal on the resampled rows) shows as a difference."""
    axes = list(axes) if axes is not None else [0 if t.ndim else None for t in inputs]
    first = next(((t, a) for t, a in zip(inputs, axes) if a is not None), None)
    n = first[0].shape[first[1]] if first is not None else 1
    rows = rng.integers(0, n, size=max(n + 2, 3)) if n else np.zeros(0, np.int64)
    out = []
    for t, axis in zip(inputs, axes):
        a = np.take(t.array, rows, axis=axis) if axis is not None and axis < t.ndim else t.array
        a = _wider_integers(a, rng, ids) if axis is not None else a
        out.append(wrap_array(np.ascontiguousarray(_noisy(a, spread, rng))))  # the example's dtype, float64 included
    return out


def _other_length(
    inputs: list[Tensor], axes: Sequence[int | None], length: int, rng: np.random.Generator, ids: int | None
) -> list[Tensor]:
    """``inputs`` with their sequence axis (``axes``) of ``length``: steps drawn from theirs, other values."""
    at = next((t.shape[a] for t, a in zip(inputs, axes) if a is not None), 1)
    steps = rng.integers(0, at, size=length)
    out = []
    for t, axis in zip(inputs, axes):
        if axis is None:
            out.append(t)
            continue
        a = np.take(t.array, steps, axis=axis)
        out.append(wrap_array(np.ascontiguousarray(_noisy(_wider_integers(a, rng, ids), 0.5, rng))))
    return out


def _wider_integers(a: np.ndarray, rng: np.random.Generator, ids: int | None) -> np.ndarray:
    """Half of an integer array's values redrawn: over [0, ids) when every value is a valid row of the
    model's smallest embedding table (``ids`` rows), else over the example's [min, max]."""
    if a.dtype.kind not in "iu" or not a.size:
        return a
    lo, hi = int(a.min()), int(a.max())  # host: the example is host data
    if ids is not None and lo >= 0 and hi < ids:
        lo, hi = 0, ids - 1
    drawn = rng.integers(lo, hi + 1, size=a.shape).astype(a.dtype)
    return np.where(rng.random(a.shape) < 0.5, drawn, a)


def _id_limit(model: Any) -> int | None:
    """The number of rows of the model's smallest embedding table (Embedding, EmbeddingBag), or None."""
    sizes = [
        int(m.num_embeddings)
        for m in (model.modules() if isinstance(model, Module) else [])
        if isinstance(getattr(m, "num_embeddings", None), (int, np.integer))
    ]
    return min(sizes) if sizes else None


def _other_values(inputs: list[Tensor], rng: np.random.Generator, ids: int | None = None) -> list[Tensor]:
    """Inputs of the example's shapes with other values, for checking a graph whose batch is fixed: a value
    the trace froze (a mask from the example's values) then shows as a difference. Floating values are
    shuffled and get noise of half their spread, integers are redrawn over a wider range (the model's
    smallest embedding table when the example's are valid rows of it, else the example's [min, max]) and
    a quarter of the booleans flip."""
    out = []
    for t in inputs:
        a = np.asarray(t.array)
        if a.dtype.kind == "f":
            a = _noisy(rng.permutation(a.reshape(-1)).reshape(a.shape), 0.5, rng)
        elif a.dtype == np.bool_:
            a = a ^ (rng.random(a.shape) < 0.25)
        elif a.dtype.kind in "iu" and a.size:
            lo, hi = int(a.min()), int(a.max())  # host: the example is host data
            if ids is not None and lo >= 0 and hi < ids:
                lo, hi = 0, ids - 1
            a = rng.integers(lo, hi + 1, size=a.shape).astype(a.dtype)
        out.append(wrap_array(np.ascontiguousarray(a)))
    return out


def _noisy(a: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``a`` plus noise of ``scale`` times its spread (at least its mean magnitude, so that an example of
    equal values moves too); infinite values (an additive mask's -inf) stay as they are."""
    if a.dtype.kind != "f":
        return a
    finite = np.isfinite(a)
    # host: the example is host data
    spread = max(float(np.std(a[finite])), float(np.mean(np.abs(a[finite])))) if finite.any() else 0.0
    noise = (scale * (spread + 1e-3) * rng.standard_normal(a.shape)).astype(a.dtype)
    return np.where(finite, a + noise, a).astype(a.dtype)


def _prune(nodes: list[Any], initializers: list[Any], outputs: list[str]) -> tuple[list[Any], list[Any]]:
    """Only the nodes (and constants) that the outputs depend on, in their original order."""
    needed = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    return list(reversed(keep)), [t for t in initializers if t.name in needed]


def run_onnx(proto: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of an ONNX model: ONNX Runtime if installed, else ``onnx``'s reference evaluator.
    ``proto``: a ModelProto, or the path of a .onnx file (what ``export`` wrote).

    Example:
        >>> outs = run_onnx(proto, {"input": x})  # doctest: +SKIP
        >>> outs = run_onnx("model.onnx", {"input": x})  # doctest: +SKIP
    """
    if isinstance(proto, (str, os.PathLike)):
        import onnx

        proto = onnx.load(os.fspath(proto))
    return [np.asarray(o) for o in _session(proto).run(None, feeds)]


def _session(proto: Any) -> Any:
    """An ONNX Runtime session of ``proto`` (or ``onnx``'s reference evaluator); ``.run(None, feeds)`` runs it."""
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(proto)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing run raises; its error is reported in the ExportError
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[-1] if text else type(exc).__name__)[:300]


def checked(proto: Any, g: GraphBuilder | None = None, where: str = "ONNX export") -> None:
    """``onnx.checker.check_model(proto, full_check=True)``, its failure raised as an ExportError that
    names the forward and op that wrote the failing node (when ``g``, the builder, knows them).

    Example:
        >>> checked(proto, graph)  # doctest: +SKIP
    """
    onnx = require_onnx()
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx's ValidationError/InferenceError: a graph the exporter wrote wrongly
        at = g.blame(str(exc)) if g is not None else ""
        raise ExportError(
            f"{where}: ONNX's checker refuses the written graph{' at ' + at if at else ''}; this is an exporter "
            f"bug or an op it does not translate faithfully, please report it "
            f"({type(exc).__name__}: {_last_line(exc)})"
        ) from None


def _floats_agree(got: np.ndarray, expected: np.ndarray) -> bool:
    """Whether the runtime's float outputs match the model's: the non-finite entries exactly (inf of the
    same sign, NaN, at the same places), the finite ones within rtol 1e-3 and an atol of 1e-3 times (1 +
    the largest finite magnitude). An infinity must not enter the tolerance: it would make any value pass."""
    got, expected = _wide(got), _wide(expected)
    finite = np.isfinite(expected)
    if not np.array_equal(finite, np.isfinite(got)):
        return False
    if not np.array_equal(got[~finite], expected[~finite], equal_nan=True):
        return False
    e, o = expected[finite], got[finite]
    scale = float(np.max(np.abs(e), initial=0.0))
    return bool(np.allclose(o, e, rtol=1e-3, atol=1e-3 * (1 + scale)))


def _float_difference(got: np.ndarray, expected: np.ndarray) -> str:
    """How the float outputs differ, for the refusal: the non-finite entries that are not where (or what)
    the model's are, else the largest difference of the finite entries."""
    got, expected = _wide(got), _wide(expected)
    finite = np.isfinite(expected)
    moved = ~np.isclose(got, expected, rtol=0, atol=0, equal_nan=True) & ~(finite & np.isfinite(got))
    if moved.any():
        return f"{int(moved.sum())} of {got.size} values are inf or NaN in only one of the two, or of another sign"
    return f"largest difference {float(np.max(np.abs(got[finite] - expected[finite]), initial=0.0)):.3g}"


def _wide(values: np.ndarray) -> np.ndarray:
    """``values`` in float64 (complex128): a difference of two float32 values near the largest one
    overflows in float32."""
    return np.asarray(values, dtype=np.complex128 if values.dtype.kind == "c" else np.float64)


def verify(
    proto: Any,
    feeds: dict[str, np.ndarray],
    expected: Sequence[np.ndarray],
    where: str = "ONNX export",
    frozen: Sequence[str] = (),
    graph: GraphBuilder | None = None,
    same_shape: bool = False,
) -> None:
    """Run ``proto`` on ``feeds`` and raise ExportError unless its outputs match ``expected``.
    ``frozen`` describes the tensors the trace had to freeze (named in the message if the run fails);
    ``graph``, the builder that wrote ``proto``, lets a runtime error name the forward and op of its node;
    ``same_shape`` says the feeds have the example's shapes and other values (a graph with a fixed batch).

    Example:
        >>> verify(proto, {"input": x}, [model(ds.tensor(x)).numpy()])  # doctest: +SKIP
    """
    try:
        session = _session(proto)
    except Exception as exc:  # the runtime refuses the graph itself, whatever the batch
        at = graph.blame(str(exc)) if graph is not None else ""
        raise ExportError(
            f"{where}: ONNX Runtime cannot load the exported graph{' at ' + at if at else ''}; this is an "
            f"exporter bug or an op it does not translate faithfully, please report it "
            f"({type(exc).__name__}: {_last_line(exc)})"
        ) from None
    try:
        got = [np.asarray(o) for o in session.run(None, feeds)]
    except Exception as exc:  # the runtime's own error types; e.g. a shape frozen at the example's batch size
        reason = _last_line(exc)
        at = graph.blame(str(exc)) if graph is not None else ""
        culprits = (
            f"not batch-dynamic: {'; '.join(dict.fromkeys(frozen))} (the trace cannot follow how it was made: "
            f"ones_like/zeros_like, ds.zeros(x.shape[0], ...), a tensor from NumPy, an op without an ONNX rule); "
            if frozen
            else "the forward probably builds a tensor from the example's sizes or values; "
        )
        raise ExportError(
            f"{where}: the exported graph fails on a second {'input' if same_shape else 'batch of another size'}: "
            f"{culprits}its values and shape are frozen at the example's. Compute it from the input with "
            f"supported ops (e.g. y * 0 + 1 for ones_like(y), a comparison or ds.where(...) for a mask)"
            f"{'' if same_shape else ', or export with dynamic_batch=False'} "
            f"(runtime{', at ' + at if at else ''}: {type(exc).__name__}: {reason})"
        ) from None
    for name, e, o in zip([o.name for o in proto.graph.output], expected, got):
        e = np.asarray(e)
        if e.shape != o.shape:
            same = False
        elif e.dtype.kind in "fc":
            same = _floats_agree(o, e)
        else:
            same = bool(np.array_equal(e.astype(o.dtype) if e.dtype != o.dtype else e, o))
        if not same:
            second = "input of the example's shapes with other values" if same_shape else "batch of another size"
            if e.shape != o.shape:
                what = f"shape {tuple(o.shape)} vs {tuple(e.shape)}"
            elif e.dtype.kind in "fc":
                what = _float_difference(o, e)
            else:
                what = f"{int(np.sum(o != e))} of {o.size} values differ"
            made = (
                f": it computes {'; '.join(dict.fromkeys(frozen))} from the example's values or sizes (frozen in the "
                f"graph)"
                if frozen
                else "; the forward probably depends on the values or the batch size in a way the trace cannot see"
            )
            raise ExportError(
                f"{where}: the exported graph's output {name!r} differs from the model's on a second {second} "
                f"({what}){made}; the file was not written"
            )


def export(
    model: Module,
    example_input: Any = None,
    path: str | os.PathLike[str] | IO[bytes] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
    check: bool = True,
    dynamic_axes: Mapping[str, Any] | None = None,
    *,
    args: Any = None,
    f: str | os.PathLike[str] | IO[bytes] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    opset_version: int | None = None,
    export_params: bool = True,
    do_constant_folding: bool = True,
    keep_initializers_as_inputs: bool = False,
    verbose: bool | None = None,
    training: Any = None,
    operator_export_type: Any = None,
    dynamo: bool = True,
) -> Any:
    """Write ``model`` as an ONNX file at ``path``; return the ``onnx.ModelProto``.

    ``example_input`` (a Tensor or array, or a tuple of them for several inputs) fixes every input
    dim except dim 0, which stays free (any batch size) when ``dynamic_batch``. The model is
    exported in evaluation semantics (Dropout off, BatchNorm's running statistics). The graph
    passes ``onnx.checker.check_model``; with ``check`` it is also run on a second input (a batch of
    another size; when not ``dynamic_batch``, the example's shapes with other values) and must
    reproduce the model's outputs before the file is written (see the module docstring). ``dynamic_axes`` is
    ``torch.onnx.export``'s argument (``{"input_ids": {0: "batch"}, "logits": {0: "batch"}}``, or
    lists of axes); given, it replaces ``dynamic_batch`` and names the free dims. The batch can be free
    (dim 0, or dim 1 of a sequence-first ``(L, N, E)`` input) and one sequence axis too
    (``{"x": {0: "batch", 1: "seq"}}``: of an input's two free axes, the one labelled with a sequence word
    such as ``seq``, ``time`` or ``len``, else the later one): the model is then traced at three lengths and
    the sizes that follow the length (``x.shape[1]``, ``view(B, T, -1)``, ``arange(T)``, a causal mask) are
    computed from the input's shape at run time; a step that cannot follow it (a pooling window, a Python
    loop over the length) is refused naming its op and line, and the graph is also checked at a shorter and
    a longer length. Raises
    :class:`~downslope.errors.ExportError` naming any layer or op it cannot translate.

    ``torch.onnx.export``'s keywords: ``opset_version`` is ``opset`` (default 17, the least this
    exporter writes); ``verbose=True`` prints the graph; ``do_constant_folding`` and ``dynamo`` are
    accepted and change nothing (torch 2.13 deprecates the first; there is one exporter here);
    ``training`` may only ask for evaluation semantics (``"EVAL"``, 0, or torch's
    ``TrainingMode.EVAL``; also ``PRESERVE`` for a model in eval mode). The weights are always
    written into the graph as initializers: ``export_params=False`` and
    ``keep_initializers_as_inputs=True`` are refused with an ExportError. ``args``, ``f`` and ``kwargs``
    are torch's names: ``args`` is ``example_input`` and ``f`` is ``path`` (a path or a binary file
    object such as ``io.BytesIO()``); ``kwargs`` maps forward's keyword arguments to example tensors,
    which become graph inputs after the positional ones (named by their keywords unless
    ``input_names`` lists them). ``operator_export_type`` may only be ``OperatorExportTypes.ONNX``.
    While the model is traced and checked, :func:`is_in_onnx_export` is True.

    Example:
        >>> import downslope as ds
        >>> model = ds.nn.Sequential(ds.nn.Linear(4, 8), ds.nn.ReLU(), ds.nn.Linear(8, 3))
        >>> proto = ds.onnx.export(model, ds.randn(2, 4), "model.onnx")  # doctest: +SKIP
        >>> [i.name for i in proto.graph.input]  # doctest: +SKIP
        ['input']
    """
    opset = _torch_export_options(
        model, opset, opset_version, export_params, keep_initializers_as_inputs, training, do_constant_folding, dynamo
    )
    if operator_export_type not in (None, OperatorExportTypes.ONNX):
        raise ExportError(
            f"ONNX export: operator_export_type={operator_export_type!r} is not supported: the graph holds standard "
            "ONNX operators only (OperatorExportTypes.ONNX)"
        )
    example_input = _given("example_input", example_input, "args", args)
    path = _given("path", path, "f", f)
    if example_input is None:
        raise ArgumentError("ONNX export: example_input (torch's args) is required: the model is traced on it")
    if kwargs:
        model, example_input, input_names = _with_keywords(model, example_input, kwargs, input_names)
    global _exporting
    _exporting += 1
    try:
        return _export(model, example_input, path, input_names, output_names, dynamic_batch, opset, check,
                       dynamic_axes, verbose)  # fmt: skip
    finally:
        _exporting -= 1


def _export(
    model: Module,
    example_input: Any,
    path: str | os.PathLike[str] | IO[bytes] | None,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    dynamic_batch: bool,
    opset: int,
    check: bool,
    dynamic_axes: Mapping[str, Any] | None,
    verbose: bool | None,
) -> Any:
    onnx = require_onnx()
    proto, g = _to_model(model, example_input, input_names, output_names, dynamic_batch, opset, dynamic_axes)
    if verbose:  # torch's verbose logs the graph it wrote; onnx's text form of it
        printer = getattr(onnx, "printer", None)
        print(printer.to_text(proto.graph) if printer is not None else onnx.helper.printable_graph(proto.graph))
    dynamic_batch = g.dynamic_batch
    checked(proto, g, f"ONNX export of {type(model).__name__}")
    if check:
        inputs = as_inputs(example_input, model)
        # A batch of another size when it is free; else the example's shapes with other values, so that
        # a value the trace froze at the example's still shows before the file is written.
        rng = np.random.default_rng(1)
        axes = [g.batch_axis.get(i.name) for i in proto.graph.input]
        ids = _id_limit(model)
        second = _other_batch(inputs, rng, axes, ids) if dynamic_batch else _other_values(inputs, rng, ids)
        feeds = {i.name: t.array for i, t in zip(proto.graph.input, second)}
        with preserved(model):
            expected = run_model(_evaluating(model), second)
        verify(proto, feeds, expected, frozen=g.frozen, graph=g, same_shape=not dynamic_batch)
        if g.sequence_axes is not None:  # a free sequence axis: a shorter and a longer sequence too
            at = next(t.shape[a] for t, a in zip(second, g.sequence_axes) if a is not None)
            for length in (max(1, (at + 1) // 3), 2 * at + 5):
                other = _other_length(second, g.sequence_axes, length, rng, ids)
                feeds = {i.name: t.array for i, t in zip(proto.graph.input, other)}
                try:
                    with preserved(model):
                        expected = run_model(_evaluating(model), other)
                except DownslopeError:
                    if length > at:  # the model itself stops short of it (a table of positions): not checked there
                        continue
                    raise
                verify(proto, feeds, expected, where=f"ONNX export (at sequence length {length})", frozen=g.frozen,
                       graph=g)  # fmt: skip
    if path is None:
        raise ArgumentError("ONNX export: path (torch's f) is required: where to write the file")
    target = path if hasattr(path, "write") else os.fspath(path)  # a file object, as torch takes
    try:
        onnx.save_model(proto, target)
    except ValueError as exc:  # protobuf's 2 GiB limit on one serialized message (OSError passes: a bad path)
        raise ExportError(
            f"ONNX export of {type(model).__name__}: the graph cannot be written to {target!r}: "
            f"{_last_line(exc)} (an ONNX file holds at most 2 GiB of weights inline)"
        ) from None
    return proto


class TrainingMode(enum.IntEnum):
    """torch.onnx.TrainingMode: export() takes ``training=TrainingMode.EVAL`` (the default; PRESERVE for a
    model in eval mode); TRAINING is refused, the graph being written in evaluation semantics."""

    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


class OperatorExportTypes(enum.IntEnum):
    """torch.onnx.OperatorExportTypes: export() writes standard ONNX operators only (``ONNX``)."""

    ONNX = 0
    ONNX_ATEN = 1
    ONNX_ATEN_FALLBACK = 2
    ONNX_FALLTHROUGH = 3


_exporting = 0  # how many export() calls are running (a forward may ask: is_in_onnx_export())


def is_in_onnx_export() -> bool:
    """Whether an :func:`export` is running (torch.onnx.is_in_onnx_export): True in a forward while it is
    traced and checked, so model code can take an export-friendly path.

    Example:
        >>> import downslope as ds
        >>> ds.onnx.is_in_onnx_export()
        False
    """
    return _exporting > 0


def _given(name: str, value: Any, torch_name: str, torch_value: Any) -> Any:
    """One argument given under its name here or torch's (``path`` or ``f``), not both."""
    if value is not None and torch_value is not None:
        raise ArgumentError(f"ONNX export: give {name} or {torch_name} (torch's name for it), not both")
    return value if torch_value is None else torch_value


def _with_keywords(
    model: Module, example_input: Any, kwargs: Mapping[str, Any], input_names: Sequence[str] | None
) -> tuple[Module, tuple[Any, ...], Sequence[str] | None]:
    """torch's ``kwargs=``: a Module that takes the keyword tensors after the positional ones and calls
    ``model`` with them by keyword; the inputs as one tuple; the input names (keywords by default)."""
    if not isinstance(kwargs, Mapping):
        raise ArgumentTypeError(
            f"ONNX export: kwargs must map forward's keywords to tensors, got {type(kwargs).__name__}"
        )
    positional = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    keys = list(kwargs)
    n = len(positional)

    def forward(self: Module, *tensors: Any) -> Any:
        return self.wrapped(*tensors[:n], **dict(zip(keys, tensors[n:])))

    wrapper = type(type(model).__name__, (Module,), {"forward": forward})()
    wrapper.wrapped = model
    if input_names is None:
        input_names = (["input"] if n == 1 else [f"input_{i}" for i in range(n)]) + keys
    return wrapper, positional + tuple(kwargs.values()), input_names


def _torch_export_options(
    model: Module,
    opset: int | None,
    opset_version: int | None,
    export_params: bool,
    keep_initializers_as_inputs: bool,
    training: Any,
    do_constant_folding: bool,
    dynamo: bool,
) -> int:
    """The opset to write, after checking ``torch.onnx.export``'s keywords against what this exporter does."""
    if opset is not None and opset_version is not None and opset != opset_version:
        raise ArgumentError(
            f"ONNX export: opset={opset} and opset_version={opset_version} disagree (they are the same setting; give one)"
        )
    for name, value in (("do_constant_folding", do_constant_folding), ("dynamo", dynamo)):
        if not isinstance(value, bool):
            raise ArgumentTypeError(f"ONNX export: {name} must be True or False, got {value!r}")
    if export_params is not True:
        raise ExportError(
            f"ONNX export: export_params={export_params!r} is not supported: the weights are always written into "
            "the graph as initializers (export_params=True)"
        )
    if keep_initializers_as_inputs:
        raise ExportError(
            "ONNX export: keep_initializers_as_inputs=True is not supported: the weights are initializers, not "
            "graph inputs (keep_initializers_as_inputs=False)"
        )
    mode = getattr(training, "name", training)  # torch's TrainingMode enum, its name, or its value
    if mode in ("PRESERVE", 1) and model.training:
        mode = "TRAINING"
    if mode not in (None, "EVAL", 0, "PRESERVE", 1):
        raise ExportError(
            f"ONNX export: training={training!r} is not supported: the model is exported in evaluation semantics "
            "(Dropout off, BatchNorm's running statistics); give training=TrainingMode.EVAL (the default), or "
            "PRESERVE with the model in eval mode"
        )
    chosen = opset_version if opset_version is not None else opset
    if chosen is not None and (isinstance(chosen, bool) or not isinstance(chosen, (int, np.integer))):
        raise ArgumentTypeError(f"ONNX export: opset_version must be an int, got {chosen!r}")
    return MIN_OPSET if chosen is None else int(chosen)
