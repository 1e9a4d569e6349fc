"""Tracing: run the model once, write each table layer's nodes and translate the tensor ops between them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...autograd import enable_grad, no_grad
from ...errors import ArgumentError, ExportError
from ...nn.module import Module
from ...tensor import Tensor
from .graph import EMITTERS, INPUT_COUNTS, GraphBuilder, emitter_for
from .op_emitters import OP_EMITTERS


class _Tracer:
    """Runs the model once, writing each table layer's nodes and tracing the tensors between them."""

    def __init__(self, g: GraphBuilder) -> None:
        self.g = g
        self.names: dict[int, tuple[str, Tensor, np.ndarray]] = {}
        self.stack: list[Module] = []  # Modules (not in the table) whose forward is running
        self.depth = 0  # > 0 while a table layer's own forward runs

    def bind(self, value: Any, names: Any) -> None:
        if isinstance(value, Tensor):
            self.names[id(value)] = (names, value, value.array.copy())
        elif isinstance(value, (tuple, list)):
            for v, n in zip(value, names):
                self.bind(v, n)

    def _culprit(self) -> str:
        return type(self.stack[-1]).__name__ if self.stack else "the model"

    def resolve(self, t: Any) -> str:
        if not isinstance(t, Tensor):
            raise ExportError(
                f"ONNX export: {self._culprit()}.forward passes a {type(t).__name__} where a Tensor was expected"
            )
        entry = self.names.get(id(t))
        if entry is not None:
            name, _, snapshot = entry
            if t.array.shape != snapshot.shape or not np.array_equal(t.array, snapshot, equal_nan=True):
                raise ExportError(
                    f"ONNX export: {self._culprit()}.forward changes a tensor in place after a layer made it; "
                    f"in-place updates cannot be exported (write y = x + 1 instead of x += 1)"
                )
            return name
        rule = getattr(t, "_vjp", None)
        if rule is None:
            # A constant at export time: a parameter or literal the forward uses directly.
            name = self.g.const(t.array, "const")
        else:
            rule_name = getattr(rule, "__name__", repr(rule))
            emit = OP_EMITTERS.get(rule_name)
            if emit is None:
                op = rule_name.strip("_").removesuffix("_vjp")
                op = {"extreme": "max/min"}.get(op, op)
                raise ExportError(
                    f"ONNX export: {self._culprit()}.forward uses the tensor operation {op!r}, which the exporter "
                    f"cannot translate (supported layers: {', '.join(supported_layers())}; supported tensor ops: "
                    f"{', '.join(supported_ops())})"
                )
            parents = tuple(t._parents)
            name = emit(self.g, t, [self.resolve(p) for p in parents], parents)
        self.bind(t, name)
        return name

    def call(self, original: Callable[..., Any], m: Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.depth:
            return original(m, *args, **kwargs)
        emit = emitter_for(m)
        if emit is None:
            if not m._modules and (m._parameters or m._buffers) and type(m).__module__.startswith("downslope."):
                raise ExportError(
                    f"ONNX export: the layer {type(m).__name__} is not supported (supported: "
                    f"{', '.join(supported_layers())})"
                )
            self.stack.append(m)
            try:
                return original(m, *args, **kwargs)
            finally:
                self.stack.pop()
        n = INPUT_COUNTS.get(emit, 1)
        extra = [a for a in args[n:] if a is not None] + [v for v in kwargs.values() if v is not None]
        if len(args) < n or extra:
            expected = "a single input tensor" if n == 1 else f"{n} input tensors"
            raise ExportError(
                f"ONNX export: {type(m).__name__} is called with {len(args)} positional and {len(kwargs)} keyword "
                f"arguments; only {expected} can be exported (initial RNN states are not supported)"
            )
        names = [self.resolve(a) for a in args[:n]]
        self.depth += 1
        try:
            out = original(m, *args, **kwargs)
        finally:
            self.depth -= 1
        if n == 1:
            self.bind(out, emit(self.g, m, names[0], args[0], out))
        else:
            multi: Any = emit  # a multi-input emitter takes lists of names and tensors
            self.bind(out, multi(self.g, m, names, list(args[:n]), out))
        return out


def supported_layers() -> list[str]:
    """Names of the layer classes in the emitter table.

    Example:
        >>> from downslope.export.onnx import supported_layers
        >>> "Conv2d" in supported_layers()
        True
    """
    return sorted(t.__name__ for t in EMITTERS)


def supported_ops() -> list[str]:
    """Names of the basic tensor ops the tracer translates between layers.

    Example:
        >>> from downslope.export.onnx import supported_ops
        >>> "reshape" in supported_ops()
        True
    """
    return sorted(k.strip("_").removesuffix("_vjp") for k in OP_EMITTERS)


def flat_outputs(value: Any) -> list[Any]:
    """The tensors of a model's output, nested tuples and lists flattened in order."""
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in flat_outputs(item)]
    return [value]


def as_inputs(example_input: Any) -> list[Tensor]:
    """``example_input`` (a Tensor, an array, or a tuple/list of them) as a list of fresh Tensors."""
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    out = []
    for item in items:
        if isinstance(item, Tensor):
            out.append(Tensor(item.array.copy()))
        elif isinstance(item, np.ndarray):
            out.append(Tensor(item.copy()))
        else:
            raise ArgumentError(
                f"ONNX export: example_input must be a Tensor or NumPy array, got {type(item).__name__}"
            )
    return out


def run_model(model: Callable[..., Any], inputs: list[Tensor]) -> list[np.ndarray]:
    """The model's outputs on ``inputs`` as arrays, without recording gradients."""
    with no_grad():
        out = model(*inputs)
    return [np.asarray(o.array) for o in flat_outputs(out)]


def trace(g: GraphBuilder, model: Module, inputs: list[Tensor], names: Sequence[str]) -> tuple[list[str], list[Tensor]]:
    """Run ``model`` on ``inputs`` (bound to the graph values ``names``) in evaluation mode, writing
    its nodes into ``g``; return the graph names of its outputs and the output tensors.

    Example:
        >>> names, outs = trace(graph, model, [ds.randn(2, 4)], ["input"])  # doctest: +SKIP
    """
    if not isinstance(model, Module):
        raise ArgumentError(f"ONNX export: expected an nn.Module, got {type(model).__name__}")
    tracer = _Tracer(g)
    inputs = [Tensor(t.array.copy()) for t in inputs]
    for t, n in zip(inputs, names):
        if t.array.dtype.kind == "f":
            t.requires_grad = True  # every op on the input then records itself, so it can be traced
        tracer.bind(t, n)
    modes = {id(m): m.training for m in model.modules()}
    original = Module.__call__

    def traced(self: Module, *args: Any, **kwargs: Any) -> Any:
        return tracer.call(original, self, args, kwargs)

    model.eval()
    Module.__call__ = traced  # type: ignore[method-assign]
    try:
        with enable_grad():
            out = model(*inputs)
        outs = flat_outputs(out)
        tracer.stack.append(model)
        internal = [tracer.resolve(o) for o in outs]
    finally:
        Module.__call__ = original  # type: ignore[method-assign]
        for m in model.modules():
            m.training = modes[id(m)]
    return internal, outs
