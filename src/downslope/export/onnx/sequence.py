"""A free sequence axis (``dynamic_axes={"x": {0: "batch", 1: "seq"}}``): the graph reads the length from
the input at run time.

The tracer follows one free axis, the batch; every other size it meets (``x.shape[1]``, the ``T`` of
``view(B, T, -1)``, ``arange(T)`` for positions, a causal mask of ``T x T``) is written into the graph as a
constant. To free the sequence axis too, the model is traced at three lengths (the example's and two
longer ones, the inputs' values repeated along the axis). The three graphs must have the same nodes; the
constants in which they differ are the sizes that follow the length, and each is rebuilt from the input's
shape at run time:

* an integer constant (a Reshape's shape, a Slice's end, an Expand's sizes) whose entries are ``a T + b``
  for whole ``a`` and ``b`` (the three lengths agree on them): the entries computed from ``Shape``;
* ``arange(n)`` (positions) with ``n = a T + b``: a ``Range``;
* a square matrix (with leading dims of 1) whose entries depend only on ``j - i`` and take one value up
  to a diagonal and another after it (a causal mask, boolean or additive): ``Range``s compared.

Anything else that depends on the length (another constant, a node attribute such as a pooling window,
a forward whose ops change with the length: a Python loop over it) is refused, naming the forward, op
and line that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ExportError
from ...tensor import Tensor, wrap_array
from .graph import GraphBuilder


def lengths(example: int) -> list[int]:
    """The lengths the model is traced at: the example's and two others, unevenly spaced (so that three
    points test that a size is affine in the length); shorter ones where the example allows (a model may
    have no room beyond its example's length: a table of positions), at least 2."""
    if example >= 5:
        return [example, example - 1, example - 3]
    return [example, example + 1, example + 3]


def resized(inputs: Sequence[Tensor], axes: Sequence[int | None], length: int) -> list[Tensor]:
    """``inputs`` with their sequence axis (``axes``) of ``length``: the example's steps repeated in turn."""
    out = []
    for t, axis in zip(inputs, axes):
        if axis is None:
            out.append(t)
            continue
        steps = np.arange(length) % t.shape[axis]
        out.append(wrap_array(np.ascontiguousarray(np.take(t.array, steps, axis=axis))))
    return out


def _origin(g: GraphBuilder, node: Any) -> str:
    return g.origins.get(node.name) or "the export's own pre/post-processing"


def _consumers(g: GraphBuilder, proto: Any, name: str) -> str:
    users = [n for n in proto.graph.node if name in n.input]
    if not users:
        return "the graph"
    return "; ".join(dict.fromkeys(f"the {n.op_type} node written for {_origin(g, n)}" for n in users))


def _refuse(what: str, where: str) -> ExportError:
    return ExportError(
        f"ONNX export: {where}: {what} changes with the sequence length in a way the graph cannot compute from "
        "the input's shape at run time, so dynamic_axes cannot free the sequence axis through it. Export with the "
        "sequence length it will run with (pad shorter sequences to it, with a padding mask), or write that "
        "step from x.shape and ops on the input"
    )


def _affine(values: Sequence[np.ndarray], ts: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Whole ``a``, ``b`` with ``values[k] == a * ts[k] + b`` elementwise, or None."""
    v = [np.asarray(x, dtype=np.int64) for x in values]
    a = (v[1] - v[0]) // (ts[1] - ts[0])
    b = v[0] - a * ts[0]
    if all(np.array_equal(a * t + b, x) for t, x in zip(ts, v)):
        return a, b
    return None


def _float_affine(values: Sequence[np.ndarray], ts: Sequence[int]) -> tuple[float, float, bool] | None:
    """``(a, b, inverse)`` when the float numbers ``values[k]`` are ``a ts[k] + b`` (or, with ``inverse``,
    ``1 / (a ts[k] + b)``), to the float's precision."""
    for inverse in (False, True):
        with np.errstate(divide="ignore"):
            v = [1.0 / float(x) if inverse else float(x) for x in values]
        if not all(np.isfinite(v)):
            continue
        a = (v[1] - v[0]) / (ts[1] - ts[0])
        b = v[0] - a * ts[0]
        exact = [np.asarray(1.0 / (a * t + b) if inverse else a * t + b).astype(values[0].dtype) for t in ts]
        if a != 0 and all(np.array_equal(e, x) for e, x in zip(exact, values)):
            return a, b, inverse
    return None


def _ramp(values: Sequence[np.ndarray], ts: Sequence[int]) -> tuple[int, int, int, tuple[int, int]] | None:
    """``(start, step, leading ones, (a, b))`` when each ``values[k]`` (leading dims of 1, then one dim) is
    ``start + step * arange(a ts[k] + b)``: positions, ``arange(T)`` or ``arange(T)[None]``."""
    if any(x.ndim < 1 or x.dtype.kind not in "iuf" or x.size < 2 or x.size != x.shape[-1] for x in values):
        return None
    lead = values[0].ndim - 1
    if any(x.ndim - 1 != lead for x in values):
        return None
    flat = [x.reshape(-1) for x in values]
    start, step = flat[0][0], flat[0][1] - flat[0][0]
    if start != int(start) or step != int(step) or step == 0:
        return None
    for x in flat:
        if not np.array_equal(x, start + step * np.arange(x.size)):
            return None
    sizes = _affine([np.asarray(x.size) for x in flat], ts)
    if sizes is None:
        return None
    return int(start), int(step), lead, (int(sizes[0]), int(sizes[1]))


def _band(values: Sequence[np.ndarray], ts: Sequence[int]) -> tuple[Any, Any, int, int, tuple[int, int]] | None:
    """``(below, above, diagonal, leading ones, (a, b))`` when each ``values[k]`` (leading dims of 1, then an
    n x n matrix, n = a ts[k] + b) holds ``above`` where ``j - i >= diagonal`` and ``below`` elsewhere."""
    found = None
    for x in values:
        if x.ndim < 2 or x.shape[-1] != x.shape[-2] or any(s != 1 for s in x.shape[:-2]):
            return None
        n = int(x.shape[-1])
        m = x.reshape(n, n)
        d = np.arange(n)[None, :] - np.arange(n)[:, None]
        levels = np.unique(m)
        if levels.size != 2:
            return None
        above = m[0, n - 1]
        at = d[m == above]
        k = int(at.min())
        if not np.array_equal(m == above, d >= k):
            return None
        below = levels[0] if levels[1] == above else levels[1]
        key = (below.item(), above.item(), k, x.ndim - 2)
        if found is not None and found != key:
            return None
        found = key
    assert found is not None
    sizes = _affine([np.asarray(x.shape[-1]) for x in values], ts)
    if sizes is None:
        return None
    return found[0], found[1], found[2], found[3], (int(sizes[0]), int(sizes[1]))


class _Builder:
    """Nodes that compute the length-dependent constants at the front of the graph."""

    def __init__(self, g: GraphBuilder, source: str, axis: int) -> None:
        self.g = g
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.h = g.onnx.helper
        self.length = self.node("Gather", [self.node("Shape", [source]), self.ints([axis])], axis=0)  # (1,)

    def name(self, hint: str) -> str:
        return self.g.fresh(hint)

    def ints(self, values: Sequence[int]) -> str:
        name = self.name("sequence_const")
        self.initializers.append(self.g.onnx.numpy_helper.from_array(np.asarray(list(values), np.int64), name))
        return name

    def const(self, value: np.ndarray) -> str:
        name = self.name("sequence_const")
        self.initializers.append(self.g.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.name(f"sequence_{op.lower()}")
        self.nodes.append(self.h.make_node(op, list(inputs), [out], name=self.name(f"{op}_sequence_node"), **attrs))
        return out

    def affine(self, a: int, b: int) -> str:
        """``a T + b`` as a (1,) int64 value."""
        y = self.length if a == 1 else self.node("Mul", [self.length, self.ints([a])])
        return y if b == 0 else self.node("Add", [y, self.ints([b])])

    def vector(self, a: np.ndarray, b: np.ndarray, dtype: np.dtype, output: str) -> None:
        """The integer constant ``a T + b`` (1-D or 0-d), written as ``output``."""
        flat_a, flat_b = a.reshape(-1), b.reshape(-1)
        parts: list[str] = []
        run: list[int] = []
        for ai, bi in zip(flat_a.tolist(), flat_b.tolist()):
            if ai == 0:
                run.append(bi)
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(self.affine(ai, bi))
        if run:
            parts.append(self.ints(run))
        y = parts[0] if len(parts) == 1 else self.node("Concat", parts, axis=0)
        if a.ndim == 0:
            y = self.node("Reshape", [y, self.ints([])])
        if dtype != np.int64:
            y = self.node("Cast", [y], to=self.h.np_dtype_to_tensor_dtype(dtype))
        self.node("Identity", [y], output)

    def scalar(self, a: float, b: float, inverse: bool, dtype: np.dtype, output: str) -> None:
        """The float number ``a T + b`` (or its reciprocal), written as ``output``."""
        length = self.node("Reshape", [self.length, self.ints([])])
        t = self.node("Cast", [length], to=self.h.np_dtype_to_tensor_dtype(dtype))
        y = t if a == 1 else self.node("Mul", [t, self.const(np.asarray(a, dtype))])
        y = y if b == 0 else self.node("Add", [y, self.const(np.asarray(b, dtype))])
        if inverse:
            y = self.node("Div", [self.const(np.asarray(1, dtype)), y])
        self.node("Identity", [y], output)

    def ramp(self, start: int, step: int, lead: int, size: tuple[int, int], dtype: np.dtype, output: str) -> None:
        n = self.node("Reshape", [self.affine(*size), self.ints([])])
        begin = self.const(np.asarray(start, np.int64))
        stride = self.const(np.asarray(step, np.int64))
        end = self.node("Add", [begin, self.node("Mul", [n, stride])])
        y = self.node("Range", [begin, end, stride])
        if lead:
            y = self.node("Unsqueeze", [y, self.ints(list(range(lead)))])
        if dtype != np.int64:
            y = self.node("Cast", [y], to=self.h.np_dtype_to_tensor_dtype(dtype))
        self.node("Identity", [y], output)

    def band(
        self, below: Any, above: Any, k: int, lead: int, size: tuple[int, int], dtype: np.dtype, output: str
    ) -> None:
        n = self.node("Reshape", [self.affine(*size), self.ints([])])
        zero, one = self.const(np.asarray(0, np.int64)), self.const(np.asarray(1, np.int64))
        steps = self.node("Range", [zero, n, one])
        rows = self.node("Unsqueeze", [steps, self.ints([1])])
        cols = self.node("Unsqueeze", [steps, self.ints([0])])
        diff = self.node("Sub", [cols, rows])
        chosen = self.node("GreaterOrEqual", [diff, self.const(np.asarray(k, np.int64))])
        if dtype == np.bool_:  # the comparison itself (ONNX Runtime has no Where of booleans)
            y = chosen if above else self.node("Not", [chosen])
        else:
            y = self.node("Where", [chosen, *(self.const(np.asarray(v, dtype)) for v in (above, below))])
        if lead:
            y = self.node("Reshape", [y, self.node("Concat", [self.ints([1] * lead), self.node("Shape", [y])], axis=0)])
        self.node("Identity", [y], output)


def generalize(
    protos: Sequence[Any],
    builders: Sequence[GraphBuilder],
    ts: Sequence[int],
    source: str,
    axis: int,
    label: str,
    output_labels: dict[str, set[int]],
) -> Any:
    """The first of ``protos`` (the same model traced at the lengths ``ts``) with the constants that follow
    the length computed from input ``source``'s ``axis`` at run time, and that axis of the inputs and
    outputs named ``label``. ``output_labels``: the axes dynamic_axes names with ``label`` for each output,
    which must follow the length."""
    onnx = builders[0].onnx
    first, g = protos[0], builders[0]
    graphs = [p.graph for p in protos]
    for nodes in zip(*(gr.node for gr in graphs)):
        a = nodes[0]
        for j, other in enumerate(nodes[1:], 1):
            if other.op_type != a.op_type or list(other.input) != list(a.input) or list(other.output) != list(a.output):
                # the longer trace's node: the op the forward wrote once more, in a Python loop over the length
                node, by = (other, builders[j]) if len(graphs[j].node) > len(graphs[0].node) else (a, g)
                raise _refuse("which ops the forward writes (a Python loop over the length?)", _origin(by, node))
            if [onnx.helper.get_attribute_value(x) for x in other.attribute] != [
                onnx.helper.get_attribute_value(x) for x in a.attribute
            ]:
                raise _refuse(f"the {a.op_type} node's attributes (such as a window size)", _origin(g, a))
    if len({len(gr.node) for gr in graphs}) != 1:
        j = max(range(len(graphs)), key=lambda i: len(graphs[i].node))
        at = graphs[j].node[min(len(gr.node) for gr in graphs)]
        raise _refuse("how many ops the forward writes (a Python loop over the length?)", _origin(builders[j], at))
    b = _Builder(g, source, axis)
    arrays = [{t.name: onnx.numpy_helper.to_array(t) for t in gr.initializer} for gr in graphs]
    kept = []
    for init in graphs[0].initializer:
        if any(init.name not in arr for arr in arrays):
            raise _refuse("a constant", _consumers(g, first, init.name))
        vs: list[np.ndarray] = [arr[init.name] for arr in arrays]
        v0 = vs[0]
        if all(v.shape == v0.shape and np.array_equal(v, v0, equal_nan=True) for v in vs[1:]):
            kept.append(init)
            continue
        same_shape = all(v.shape == v0.shape for v in vs)
        if same_shape and v0.dtype.kind in "iu" and v0.ndim <= 1:
            fit = _affine(vs, ts)
            if fit is not None:
                b.vector(fit[0], fit[1], v0.dtype, init.name)
                continue
        if same_shape and v0.dtype.kind == "f" and v0.ndim == 0:  # x.sum(1) / x.shape[1], x * (1 / T)
            scalar = _float_affine(vs, ts)
            if scalar is not None:
                b.scalar(*scalar, v0.dtype, init.name)
                continue
        ramp = None if same_shape else _ramp(vs, ts)
        if ramp is not None:
            b.ramp(*ramp, v0.dtype, init.name)
            continue
        band = None if same_shape else _band(vs, ts)
        if band is not None:
            b.band(*band, v0.dtype, init.name)
            continue
        raise _refuse(f"a {v0.dtype} constant of shape {tuple(v0.shape)}", _consumers(g, first, init.name))
    graph = first.graph
    del graph.initializer[:]
    graph.initializer.extend(kept + b.initializers)
    ordered = list(b.nodes) + list(graph.node)  # the length's nodes first: they read the graph's input only
    del graph.node[:]
    graph.node.extend(ordered)
    # The inputs' sequence axis is the one given; an output's axes that change with the length are free too.
    for declared in zip(*(gr.input for gr in graphs)):
        _free_dims(declared, label)
    for declared in zip(*(gr.output for gr in graphs)):
        freed = _free_dims(declared, label)
        wanted = output_labels.get(declared[0].name, set())
        if wanted - freed:
            raise ExportError(
                f"ONNX export: dynamic_axes asks for axis {sorted(wanted - freed)[0]} of output {declared[0].name!r} "
                f"to be free as {label!r}, but it does not follow the inputs' sequence length (the axes that do: "
                f"{sorted(freed)})"
            )
    return first


def _free_dims(infos: Sequence[Any], label: str) -> set[int]:
    """Name ``label`` the dims of a value (its declarations in the traced graphs) whose size changed."""
    dims = [list(i.type.tensor_type.shape.dim) for i in infos]
    freed = set()
    for k, d in enumerate(dims[0]):
        if d.dim_param:
            continue
        if len({ds_[k].dim_value for ds_ in dims}) > 1:
            d.dim_param = label
            freed.add(k)
    return freed
