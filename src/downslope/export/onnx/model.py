"""From a traced graph to a checked ONNX model: declarations, the ModelProto, the second-batch check, export."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

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
) -> tuple[bool, dict[str, str]]:
    """``torch.onnx.export``'s ``dynamic_axes`` ({name: {axis: label}} or {name: [axes]}) as
    (dynamic_batch, the label of each named value's dim 0). Only dim 0 of the inputs (the batch) can
    be free: the trace writes the other sizes (a sequence length) into the graph as constants."""
    if not isinstance(dynamic_axes, Mapping):
        raise ArgumentError(
            f"ONNX export: dynamic_axes must map input/output names to axes ({{'input': {{0: 'batch'}}}}), "
            f"got {type(dynamic_axes).__name__}"
        )
    labels: dict[str, str] = {}
    for name, axes in dynamic_axes.items():
        named = dict(axes) if isinstance(axes, Mapping) else {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in
                                                              enumerate(axes)}  # fmt: skip
        others = sorted(a for a in named if a != 0)
        if others:  # an output's too: it would be silently fixed, the graph holding its size as constants
            kind = "input" if name in in_names else "output"
            raise ExportError(
                f"ONNX export: dynamic_axes asks for axis {others[0]} of {kind} {name!r} to be free; only the batch "
                "axis 0 can be: the trace writes the other sizes (such as the sequence length) into the graph as "
                "constants, so export with the sequence length it will run with (or pad to it)"
            )
        if 0 in named:
            labels[name] = str(named[0])
    listed = [n for n, t in zip(in_names, inputs) if t.ndim and n in labels]
    batched = [n for n, t in zip(in_names, inputs) if t.ndim]

    if listed and listed != batched:
        raise ExportError(
            f"ONNX export: dynamic_axes makes axis 0 free for {listed} but not for {sorted(set(batched) - set(listed))}; "
            "every input shares the batch axis here: list axis 0 for all of them or for none"
        )
    return bool(listed), labels  # output names are checked once the outputs are known


def _to_model(
    model: Module,
    example_input: Any,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    dynamic_batch: bool,
    opset: int,
    dynamic_axes: Mapping[str, Any] | None = None,
) -> tuple[Any, GraphBuilder]:
    if opset < MIN_OPSET:
        raise ArgumentError(f"ONNX export: opset must be at least {MIN_OPSET}, got {opset}")
    inputs = as_inputs(example_input, model)
    in_names = list(input_names) if input_names is not None else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    )  # fmt: skip
    if len(in_names) != len(inputs):
        raise ArgumentError(f"ONNX export: {len(inputs)} example inputs but {len(in_names)} input_names")
    labels: dict[str, str] = {}
    if dynamic_axes is not None:
        dynamic_batch, labels = _dynamic_axes(dynamic_axes, inputs, in_names)
    g = GraphBuilder(opset, dynamic_batch)
    for n in in_names + list(output_names or []):  # before tracing, so that no internal value takes them
        g.reserve(n)
    internal, outs = trace(g, model, inputs, in_names)
    if output_names is None:
        out_names = [g.fresh("output")] if len(outs) == 1 else [g.fresh(f"output_{i}") for i in range(len(outs))]
    else:
        out_names = list(output_names)
    if len(out_names) != len(outs):
        raise ArgumentError(f"ONNX export: the model returns {len(outs)} tensors but {len(out_names)} output_names")
    # Output dims that follow the batch size: those that change when the model sees another batch.
    if dynamic_axes is not None:
        unknown = sorted(set(dynamic_axes) - set(in_names) - set(out_names))
        if unknown:
            raise ArgumentError(
                f"ONNX export: dynamic_axes names {unknown}, which are neither input_names {in_names} nor "
                f"output_names {out_names}"
            )
        outputs_listed = sorted(n for n in out_names if n in labels)
        if outputs_listed and not dynamic_batch:
            raise ExportError(
                f"ONNX export: dynamic_axes makes axis 0 free for output(s) {outputs_listed} but for no input; the "
                "batch axis is free for the inputs and the outputs together: list axis 0 for the inputs too"
            )
    changed = _batch_dims(model, inputs, [o.array.shape for o in outs]) if dynamic_batch else [set()] * len(outs)
    graph_inputs = [
        value_info(n, t.array, {0} if dynamic_batch and t.ndim else set(), labels.get(n, "batch"))
        for n, t in zip(in_names, inputs)
    ]
    outputs = [
        (src, dst, value_info(dst, o.array, c, labels.get(dst, "batch")))
        for src, dst, o, c in zip(internal, out_names, outs, changed)
    ]
    return finish(g, type(model).__name__, graph_inputs, outputs), g


def _batch_dims(model: Module, inputs: list[Tensor], shapes: list[tuple[int, ...]]) -> list[set[int]]:
    other = _other_batch(inputs, np.random.default_rng(0))
    with preserved(model):
        try:
            with_other = run_model(_evaluating(model), other)
        except DownslopeError as exc:  # e.g. a reshape to a constant shape that holds the batch size
            batch = other[0].shape[0] if other and other[0].ndim else 1
            raise ExportError(
                f"{type(model).__name__}: the forward does not run on a batch of {batch} (the example's batch plus "
                f"one), so its batch size is not dynamic: {exc}. Write shapes from x.shape (reshape(x.shape[0], -1)), "
                "or export with dynamic_batch=False to fix the batch size at the example's"
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


def _other_batch(inputs: list[Tensor], rng: np.random.Generator) -> list[Tensor]:
    """Rows of the example resampled to a batch one larger; floating values also get a little noise."""
    out = []
    n = inputs[0].shape[0] if inputs[0].ndim else 1
    rows = rng.integers(0, n, size=n + 1)
    for t in inputs:
        a = t.array[rows] if t.ndim else t.array
        if a.dtype.kind == "f":
            a = a + (0.1 * (np.std(a) + 1e-3) * rng.standard_normal(a.shape)).astype(a.dtype)
        out.append(wrap_array(np.ascontiguousarray(a)))  # the example's dtype, float64 included
    return out


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

    Example:
        >>> outs = run_onnx(proto, {"input": x})  # doctest: +SKIP
    """
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


def verify(
    proto: Any,
    feeds: dict[str, np.ndarray],
    expected: Sequence[np.ndarray],
    where: str = "ONNX export",
    frozen: Sequence[str] = (),
    graph: GraphBuilder | None = None,
) -> None:
    """Run ``proto`` on ``feeds`` and raise ExportError unless its outputs match ``expected``.
    ``frozen`` describes the tensors the trace had to freeze (named in the message if the run fails);
    ``graph``, the builder that wrote ``proto``, lets a runtime error name the forward and op of its node.

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
            f"a comparison such as (y > 0), ones_like/zeros_like, ds.zeros(x.shape[0], ...), a tensor from NumPy); "
            if frozen
            else "the forward probably builds a tensor from the example's sizes or values; "
        )
        raise ExportError(
            f"{where}: the exported graph fails on a second batch of another size: {culprits}"
            f"its values and shape are frozen at the example's. Compute it from the input with supported ops "
            f"(e.g. y * 0 + 1 for ones_like(y), y.relu() or ds.where(...) for a mask), or export with "
            f"dynamic_batch=False (runtime{', at ' + at if at else ''}: {type(exc).__name__}: {reason})"
        ) from None
    for name, e, o in zip([o.name for o in proto.graph.output], expected, got):
        e = np.asarray(e)
        if e.shape != o.shape:
            same = False
        elif e.dtype.kind in "fc":
            same = bool(np.allclose(o, e, rtol=1e-3, atol=1e-3 * (1 + np.nanmax(np.abs(e), initial=0)), equal_nan=True))
        else:
            same = bool(np.array_equal(e.astype(o.dtype) if e.dtype != o.dtype else e, o))
        if not same:
            raise ExportError(
                f"{where}: the exported graph's output {name!r} differs from the model's on a second batch "
                f"(shape {o.shape} vs {e.shape}); the forward probably depends on the values or the batch size "
                f"in a way the trace cannot see"
            )


def export(
    model: Module,
    example_input: Any,
    path: str | os.PathLike[str],
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
    check: bool = True,
    dynamic_axes: Mapping[str, Any] | None = None,
    *,
    opset_version: int | None = None,
    export_params: bool = True,
    do_constant_folding: bool = True,
    keep_initializers_as_inputs: bool = False,
    verbose: bool | None = None,
    training: Any = None,
    dynamo: bool = True,
) -> Any:
    """Write ``model`` as an ONNX file at ``path``; return the ``onnx.ModelProto``.

    ``example_input`` (a Tensor or array, or a tuple of them for several inputs) fixes every input
    dim except dim 0, which stays free (any batch size) when ``dynamic_batch``. The model is
    exported in evaluation semantics (Dropout off, BatchNorm's running statistics). The graph
    passes ``onnx.checker.check_model``; with ``check`` it is also run on a second batch (of another size;
    the example itself when not ``dynamic_batch``) and must
    reproduce the model's outputs (see the module docstring). ``dynamic_axes`` is
    ``torch.onnx.export``'s argument (``{"input_ids": {0: "batch"}, "logits": {0: "batch"}}``, or
    lists of axes); given, it replaces ``dynamic_batch`` and names the free dims. Only the batch
    axis 0 of the inputs can be free: a sequence axis is refused (the trace writes such sizes into
    the graph as constants). Raises
    :class:`~downslope.errors.ExportError` naming any layer or op it cannot translate.

    ``torch.onnx.export``'s keywords: ``opset_version`` is ``opset`` (default 17, the least this
    exporter writes); ``verbose=True`` prints the graph; ``do_constant_folding`` and ``dynamo`` are
    accepted and change nothing (torch 2.13 deprecates the first; there is one exporter here);
    ``training`` may only ask for evaluation semantics (``"EVAL"``, 0, or torch's
    ``TrainingMode.EVAL``; also ``PRESERVE`` for a model in eval mode). The weights are always
    written into the graph as initializers: ``export_params=False`` and
    ``keep_initializers_as_inputs=True`` are refused with an ExportError.

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
    onnx = require_onnx()
    proto, g = _to_model(model, example_input, input_names, output_names, dynamic_batch, opset, dynamic_axes)
    if verbose:  # torch's verbose logs the graph it wrote; onnx's text form of it
        printer = getattr(onnx, "printer", None)
        print(printer.to_text(proto.graph) if printer is not None else onnx.helper.printable_graph(proto.graph))
    dynamic_batch = g.dynamic_batch
    checked(proto, g, f"ONNX export of {type(model).__name__}")
    if check:
        inputs = as_inputs(example_input, model)
        second = _other_batch(inputs, np.random.default_rng(1)) if dynamic_batch else inputs
        feeds = {i.name: t.array for i, t in zip(proto.graph.input, second)}
        with preserved(model):
            expected = run_model(_evaluating(model), second)
        verify(proto, feeds, expected, frozen=g.frozen, graph=g)
    try:
        onnx.save_model(proto, os.fspath(path))
    except ValueError as exc:  # protobuf's 2 GiB limit on one serialized message (OSError passes: a bad path)
        raise ExportError(
            f"ONNX export of {type(model).__name__}: the graph cannot be written to {os.fspath(path)!r}: "
            f"{_last_line(exc)} (an ONNX file holds at most 2 GiB of weights inline)"
        ) from None
    return proto


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
