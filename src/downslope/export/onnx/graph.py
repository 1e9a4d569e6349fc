"""The ONNX graph being written (:class:`GraphBuilder`) and the table of layer emitters (``EMITTERS``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import ArgumentError, ExportError
from ...nn.module import Module
from ...tensor import Tensor

MIN_OPSET = 17  # LayerNormalization is an ONNX op from opset 17 on


def require_onnx() -> Any:
    """The ``onnx`` package, or an ImportError that says how to install it.

    Example:
        >>> onnx = require_onnx()  # doctest: +SKIP
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'downslope[onnx]'") from None
    return onnx


# ---------------------------------------------------------------------- graph builder
class GraphBuilder:
    """Nodes and constants of the ONNX graph being written; unique value names.

    Emitters call :meth:`node` and :meth:`const` and return the names of their outputs.
    """

    def __init__(self, opset: int, dynamic_batch: bool) -> None:
        self.onnx = require_onnx()
        self.opset = opset
        self.dynamic_batch = dynamic_batch
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.domains: set[str] = set()
        self._used: set[str] = set()
        # Which axis of each traced value follows the inputs' dim 0 (the free batch dim), or None
        # (none does: a constant, a reduction over the batch, an RNN's h_n when dim 0 is the time).
        self.batch_axis: dict[str, int | None] = {}
        # What the forward made that the trace could only freeze (described for the second-batch check).
        self.frozen: list[str] = []
        # A batch dim merged with the fixed dims after it ((B, L, D) -> (B*L, D)): value -> that factor (L).
        self.batch_inner: dict[str, int] = {}
        # The first input whose dim 0 is the batch, and the example's batch size (set by the tracer).
        self.batch_input: str | None = None
        self.batch_size: int | None = None
        # What the inputs' free dim turned out to be: "batch", or "sequence" when a time-major layer (an
        # RNN with batch_first=False) reads it as its time dim; the graph's inputs are labelled so.
        self.free_axis_role = "batch"
        # What the tracer is writing now ("Net.forward (add() at net.py:12)"), and each node's such note:
        # an error ONNX raises later about a node is reported with the forward and op that wrote it.
        self.context = ""
        self.origins: dict[str, str] = {}
        # Masks the trace follows that an op saved as arrays (a where() condition, by the array's id; a
        # fused attention's boolean attn_mask, by the result's id): their graph values, set by the tracer.
        self.conditions: dict[int, str] = {}
        # Each input's free sequence axis (or None), when dynamic_axes frees one (see ``sequence``).
        self.sequence_axes: list[int | None] | None = None

    def fresh(self, hint: str) -> str:
        base = hint.replace(" ", "_") or "v"
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        if name in self._used:
            raise ArgumentError(f"ONNX export: two inputs or outputs are named {name!r}; ONNX needs unique names")
        self._used.add(name)

    def const(self, array: Any, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def node(
        self, op: str, inputs: Sequence[str], hint: str | None = None, n_out: int = 1, domain: str = "", **attrs: Any
    ) -> Any:
        outs = [self.fresh(f"{hint or op.lower()}") for _ in range(n_out)]
        if domain:
            self.domains.add(domain)
        node_name = self.fresh(f"{op}_node")
        self.origins[node_name] = self.context
        self.nodes.append(
            self.onnx.helper.make_node(op, list(inputs), outs, name=node_name, domain=domain or None, **attrs)
        )
        return outs[0] if n_out == 1 else outs

    def blame(self, message: str) -> str:
        """Where the node that an ONNX (or ONNX Runtime) error ``message`` names was written:
        ``"the Add node written for Net.forward (add() at net.py:12)"``, or '' when it names none."""
        found = re.search(r"node name: ([^\s)]+)|[Nn]ame:\s*'([^']+)'", message)
        if found is None:
            return ""
        name = found.group(1) or found.group(2)
        node = next((n for n in self.nodes if n.name == name), None)
        if node is None:
            return ""
        where = self.origins.get(name) or "the export's own pre/post-processing"
        return f"the {node.op_type} node written for {where}"


Emitter = Callable[[GraphBuilder, Any, str, Tensor, Any], Any]
EMITTERS: dict[type, Emitter] = {}
INPUT_COUNTS: dict[Emitter, int] = {}  # emitters of layers called with several tensors; absent: one


def register_emitter(*layer_types: type, inputs: int = 1) -> Callable[[Emitter], Emitter]:
    """Decorator: ``fn(graph, layer, input_name, input_tensor, output) -> output name(s)`` writes the
    ONNX nodes of ``layer_types``. A subclass is covered only if it keeps the registered ``forward``.
    With ``inputs=n > 1`` the layer is called with ``n`` tensors and ``fn`` gets lists of their names
    and tensors.

    Example:
        >>> from downslope.export.onnx import EMITTERS
        >>> from downslope import nn
        >>> nn.Linear in EMITTERS and nn.LSTM in EMITTERS
        True
    """

    def decorate(fn: Emitter) -> Emitter:
        for t in layer_types:
            EMITTERS[t] = fn
        if inputs > 1:
            INPUT_COUNTS[fn] = inputs
        return fn

    return decorate


def emitter_for(m: Module) -> Emitter | None:
    """The table's emitter for ``m``'s class (or a base class whose ``forward`` it keeps), or None."""
    for cls in type(m).__mro__:
        fn = EMITTERS.get(cls)
        if fn is not None:
            # A subclass that writes its own forward computes something else: trace it instead.
            return fn if type(m).forward is getattr(cls, "forward", None) else None
    return None


def broadcast_axis(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> int | None:
    """The batch axis of an elementwise (broadcasting) op's result: the first operand's that has one."""
    for name, p in zip(ins, parents):
        axis = g.batch_axis.get(name)
        if axis is not None and isinstance(p, Tensor):
            moved = axis + t.ndim - p.ndim
            if 0 <= moved < t.ndim:
                return moved
    return None


def check_batched(x: Tensor, ndim: int, layer: Any) -> None:
    """Refuse an unbatched input where ``layer``'s ONNX op needs ``ndim`` dims (batch first)."""
    if x.ndim != ndim:
        raise ExportError(
            f"ONNX export: {type(layer).__name__} expects a batched input of {ndim} dims here, got shape {tuple(x.shape)}; "
            f"export with a batched example input"
        )
