"""Tracing: run the model once, write each table layer's nodes and translate the tensor ops between them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

import numpy as np

from ...autograd import enable_grad, no_grad
from ...errors import ArgumentError, DownslopeError, ExportError
from ...nn.module import Module, ModuleDict, ModuleList, Sequential
from ...tensor import Tensor, to_array, wrap_array
from .derived import AT_CALL, DERIVED, DERIVED_NAMES, DERIVED_TUPLES, NOTED
from .graph import EMITTERS, INPUT_COUNTS, GraphBuilder, broadcast_axis, emitter_for
from .op_emitters import OP_EMITTERS


class _Tracer:
    """Runs the model once, writing each table layer's nodes and tracing the tensors between them."""

    def __init__(self, g: GraphBuilder, model: Module | None = None) -> None:
        self.g = g
        self.names: dict[int, tuple[str, Tensor, np.ndarray]] = {}
        self.stack: list[Module] = []  # Modules (not in the table) whose forward is running
        self.depth = 0  # > 0 while a table layer's own forward runs
        # Where each recorded tensor was made: (the public op called, the Module, the user's source line).
        self.origin: dict[int, tuple[Tensor, Any, str, str, str]] = {}
        # The model's own tensors (parameters, buffers, tensor attributes): constants, by their arrays.
        self.constants: dict[int, tuple[Tensor, np.ndarray]] = {}
        if model is not None:
            for m in model.modules():
                for v in list(m._parameters.values()) + list(m._buffers.values()) + list(vars(m).values()):
                    if isinstance(v, Tensor):
                        self.constants[id(v)] = (v, v.array.copy())
        self.constant_arrays = {id(v.array) for v, _ in self.constants.values()}
        # Values the forward computes without recording them (comparisons, casts, argmax, masks): each
        # with a function that writes its ONNX nodes when the value is used, so that the graph
        # computes them from the inputs instead of freezing the example's values.
        self.derived: dict[int, tuple[Tensor, Callable[[], str]]] = {}
        # Boolean arrays (a comparison's mask, a boolean input) by id: a where()/masked_fill() condition
        # is saved as its array, found here to write the mask's own graph value.
        self.mask_arrays: dict[int, Tensor] = {}
        # The boolean attn_mask tensor of each fused attention result, with its is_causal flag.
        self.attention_masks: dict[int, tuple[Tensor, Tensor, bool]] = {}
        # The unrecorded tensors the forward computed from an input's values (an integer or boolean
        # result, a cast operand, a tensor rebuilt from an array), by id, the tensor kept alive so that
        # the id stays its own. Each op's return is watched, recorded or not: such a value that reaches
        # the graph without a rule that writes it is refused, never frozen as the example's constant.
        self.tainted: dict[int, Tensor] = {}
        # Tensors made by ops that read a tensor's size only (zeros_like): constants, never tainted.
        self.sized: dict[int, Tensor] = {}
        # Memo of depends(): recorded tensors by id, with the answer (the tensor kept alive, as above).
        self._depends: dict[int, tuple[Tensor, bool]] = {}
        self.library_layers = {
            type(m).__name__
            for m in (model.modules() if model is not None else [])
            if type(m).__module__.startswith("downslope.") and not isinstance(m, _CONTAINERS)
        }

    def _is_constant(self, t: Tensor) -> bool:
        # By the array too: ``self.weight.detach()`` or ``.data`` share the parameter's array.
        return id(t) in self.constants or id(t.array) in self.constant_arrays

    def depends_on_input(self, t: Tensor) -> bool:
        """Whether ``t`` is (or is computed from) the traced input or a layer's output, or is a tensor
        that is not the model's own constant (a comparison's mask, a detached copy: made from values)."""
        seen: set[int] = set()
        todo = [t]
        while todo:
            u = todo.pop()
            if id(u) in seen:
                continue
            seen.add(id(u))
            if id(u) in self.names:
                return True
            if getattr(u, "_vjp", None) is None:
                if not self._is_constant(u):
                    return True
                continue
            todo.extend(p for p in u._parents if isinstance(p, Tensor))
        return False

    def depends(self, t: Tensor) -> bool:
        """Whether ``t`` is computed from an input's values: a bound input or layer output, a tensor an op
        made from such values without recording itself (see :meth:`taint`), or a recorded result of one."""
        stack: list[tuple[Tensor, bool]] = [(t, False)]
        while stack:
            u, expanded = stack.pop()
            if self._known(u) is not None:
                continue
            if getattr(u, "_vjp", None) is None:
                self._depends[id(u)] = (u, False)  # a parameter, a buffer, a literal, a tensor made from sizes
                continue
            parents = [p for p in u._parents if isinstance(p, Tensor)]
            if not expanded:
                stack.append((u, True))
                stack.extend((p, False) for p in parents if self._known(p) is None)
                continue
            self._depends[id(u)] = (u, any(self._known(p) for p in parents))
        return bool(self._known(t))

    def _known(self, u: Tensor) -> bool | None:
        key = id(u)
        if key in self.names or self.tainted.get(key) is u:
            return True
        entry = self._depends.get(key)
        return entry[1] if entry is not None and entry[0] is u else None

    def taint(self, frame: FrameType, result: Any, passed: Sequence[Any] = ()) -> None:
        """Mark the unrecorded tensors an op returns as made from an input's values when the op's frame
        holds such a tensor (an operand, ``self``), so that the trace refuses them rather than freezing
        them; ops that take only a tensor's size and dtype (zeros_like, new_zeros) are not marked."""
        made = [r for r in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(r, Tensor)]
        made = [
            r for r in made
            if getattr(r, "_vjp", None) is None and id(r) not in self.names and self.tainted.get(id(r)) is not r
            and not self._is_constant(r)
        ]  # fmt: skip
        made = [r for r in made if self.sized.get(id(r)) is not r and all(r is not p for p in passed)]
        if not made:
            return
        if _size_only(frame):  # (the frames that return it next, a wrapper holding the operand, agree)
            self.sized.update((id(r), r) for r in made)
            return
        if frame.f_code.co_name in _PROMOTION:  # an operand lifted from a number is a constant; a cast is written
            made = [r for r in made if self.derived.get(id(r), (None,))[0] is r]
            if not made:
                return
        for value in frame.f_locals.values():
            items = value if isinstance(value, (tuple, list)) else (value,)
            if any(isinstance(v, Tensor) and all(v is not r for r in made) and self.depends(v) for v in items[:64]):
                for r in made:
                    self.tainted[id(r)] = r
                    self.note_origin(frame, r)
                return

    def host_read(self, t: Tensor, how: str) -> None:
        """Refuse a forward that reads a traced tensor's value into Python: the graph would freeze it."""
        if self.depth or not self.depends_on_input(t):
            return
        where = _user_line(sys._getframe(2))
        raise ExportError(
            f"ONNX export: {self._culprit()}.forward reads a tensor's value into Python ({how}"
            f"{', at ' + where if where else ''}) while it is traced: the forward depends on the values (a Python "
            f"`if` on a tensor, a number taken from a tensor), which an ONNX graph cannot reproduce; the trace "
            f"would freeze the example's branch or number. Write it with tensor ops instead (ds.where, a mask "
            f"multiplied in), or export a model without the value-dependent step"
        )

    def note_origin(self, frame: FrameType, t: Tensor) -> None:
        """Remember which public op (and Module, and user source line) made the recorded tensor ``t``."""
        if id(t) in self.origin:
            return
        api, f = "", frame
        while f is not None:
            mod = f.f_globals.get("__name__", "")
            if not mod.startswith("downslope.") or mod.startswith("downslope.export"):
                break
            name = f.f_code.co_name
            if name in _NAMED_BY_CLOSURE:  # a generated op: its public name is in its closure
                fn = f.f_locals.get("fn", f.f_locals.get("ufunc"))
                named = f.f_locals.get("name")
                name = named if isinstance(named, str) else getattr(fn, "__name__", name)
            if name not in _PLUMBING and (not name.startswith("_") or not api):
                api = name
            f = f.f_back  # type: ignore[assignment]
        api = {"__getitem__": "indexing", "getitem": "indexing"}.get(api, api)
        layer = self._library_layer()
        self.origin[id(t)] = (t, t._vjp, api, layer or self._culprit(), _user_line(f) if f is not None else "")

    def describe(self, t: Tensor) -> tuple[str, str]:
        """``("Net.forward", " (max() at net.py:12)")``: the forward that made ``t``, and the op and line."""
        entry = self.origin.get(id(t))
        if entry is None or entry[0] is not t or entry[1] is not t._vjp:  # (an in-place op rewrote t since)
            return f"{self._culprit()}.forward", ""
        _, _, api, culprit, where = entry
        detail = " ".join(p for p in [f"{api}()" if api else "", f"at {where}" if where else ""] if p)
        return f"{culprit}.forward", (f" ({detail})" if detail else "")

    def derive(self, code: Any, local: dict[str, Any], result: Any) -> None:
        """Note ``result``, made without being recorded by the op whose code is ``code`` (a comparison,
        a cast, argmax...), as a value the graph computes from the op's operands in ``local``."""
        if self.depth:
            return
        if code in NOTED:
            NOTED[code](self, local, result)
            return
        if isinstance(result, tuple):
            for value, make in DERIVED_TUPLES[code](self, local, result):
                self.derived.setdefault(id(value), (value, make))
            return
        if id(result) in self.derived:  # (the innermost call that knew how: Tensor.eq returns __eq__'s mask)
            return
        emit = DERIVED[code](self, local, result)
        if emit is None:
            return
        self.derived[id(result)] = (result, emit)
        if getattr(result, "_vjp", None) is not None:
            return  # a recorded result written by the op's own nodes: its recording carries on as it is
        if result.array.dtype == np.bool_:
            self.mask_arrays[id(result.array)] = result
        if any(v.requires_grad for v in local.values() if isinstance(v, Tensor) and v is not result):
            # Made from the inputs: what the forward does with it next (a view, an unsqueeze, a product) is
            # then recorded and traced too, whatever its dtype (nothing runs backward on the trace).
            result._requires_grad = True

    def bind(self, value: Any, names: Any) -> None:
        if isinstance(value, Tensor):
            self.names[id(value)] = (names, value, value.array.copy())
        elif isinstance(value, (tuple, list)):
            for v, n in zip(value, names):
                self.bind(v, n)

    def _library_layer(self) -> str:
        """The class name of the innermost downslope layer (not in the table) whose forward is being traced, or ''."""
        for m in reversed(self.stack):
            if type(m).__module__.startswith("downslope.") and not isinstance(m, _CONTAINERS):
                return type(m).__name__
        return ""

    def refuse_layer(self, layer: str, why: str) -> ExportError:
        return ExportError(
            f"ONNX export: the layer {layer} is not supported (its forward {why}; supported layers: "
            f"{', '.join(supported_layers())})"
        )

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
        derived = self.derived.get(id(t))
        if derived is not None and derived[0] is t:
            forward, detail = self.describe(t)
            previous, self.g.context = self.g.context, f"{forward}{detail}"
            try:
                name = derived[1]()
            except ExportError as exc:  # a rule's refusal, named with the forward and line that made the value
                if str(exc).startswith("ONNX export:"):
                    raise
                raise ExportError(f"ONNX export: {forward}{detail}: {exc}") from None
            finally:
                self.g.context = previous
        elif rule is None and self.tainted.get(id(t)) is t:
            forward, detail = self.describe(t)
            raise ExportError(
                f"ONNX export: {forward}{detail or ' (an op)'} computes a {t.array.dtype} tensor of shape "
                f"{tuple(t.shape)} from the input's values in a way the exporter cannot translate (an op without an "
                f"ONNX rule for this dtype, or a value rebuilt outside the traced ops); the graph would hold the "
                f"example's values as a constant and ignore the input. Write it with supported ops (supported "
                f"tensor ops: {', '.join(supported_ops())})"
            )
        elif rule is None:
            # A constant at export time: a parameter or literal the forward uses directly.
            name = self.g.const(t.array, "const")
            self.g.batch_axis[name] = None
            if t.ndim and not self._is_constant(t):
                # Made by the forward from values or sizes (ones_like, zeros(n, ...), a tensor from NumPy, an op
                # the trace cannot follow): frozen here; the second-input check names it if the graph then fails.
                forward, detail = self.describe(t)
                self.g.frozen.append(f"a {t.array.dtype} tensor of shape {tuple(t.shape)} made in {forward}{detail}")
        else:
            rule_name = getattr(rule, "__name__", repr(rule))
            emit = OP_EMITTERS.get(rule_name)
            if emit is None:
                made = self.origin.get(id(t))
                api = made[2] if made is not None and made[0] is t and made[1] is t._vjp else ""
                op = api or rule_name.strip("_").removesuffix("_vjp")
                op = {"extreme": "max/min"}.get(op, op)
                forward, detail = self.describe(t)
                layer = forward.removesuffix(".forward")
                if layer in self.library_layers:
                    raise self.refuse_layer(layer, f"uses the tensor operation {op!r}{detail}")
                raise ExportError(
                    f"ONNX export: {forward} uses the tensor operation {op!r}{detail}, which the exporter "
                    f"cannot translate (supported layers: {', '.join(supported_layers())}; supported tensor ops: "
                    f"{', '.join(supported_ops())})"
                )
            parents = tuple(t._parents)
            ins = [self.resolve(p) for p in parents]
            if rule_name == "_where_vjp":  # the condition, saved as an array: traced when it is a known mask
                mask = self.mask_arrays.get(id(t._saved))
                if mask is not None and mask.array is t._saved:
                    self.g.conditions[id(t._saved)] = self.resolve(mask)
            elif rule_name == "_sdpa_vjp" and self.attention_masks.get(id(t), (None,))[0] is t:
                _, mask, causal = self.attention_masks[id(t)]
                blocked = self.g.node("Not", [self.resolve(mask)], "blocked")
                if causal:  # the fused op blocks the future keys too
                    size = t._saved[4].shape[-2:]
                    future = self.g.const(np.triu(np.ones(size, dtype=bool), k=1), "future")
                    blocked = self.g.node("Or", [blocked, future], "blocked")
                self.g.conditions[id(t)] = blocked
            forward, detail = self.describe(t)
            previous, self.g.context = self.g.context, f"{forward}{detail}"
            try:
                if rule_name in _SAME_DTYPE:
                    ins = [self.cast(n, p, t.array.dtype) for n, p in zip(ins, parents)]
                name = emit(self.g, t, ins, parents)
            except ExportError as exc:
                message = str(exc).removeprefix("ONNX export: ")
                layer = forward.removesuffix(".forward")
                if layer in self.library_layers and "sequence-first" in message:  # the layer is fine, the batch is not
                    raise ExportError(f"ONNX export: the layer {layer}{detail}: {message}") from None
                if layer in self.library_layers:
                    raise self.refuse_layer(layer, f"does what the exporter cannot write{detail}: {message}") from None
                raise ExportError(f"ONNX export: {forward}{detail}: {message}") from None
            except DownslopeError:
                raise
            except Exception as exc:  # onnx's or NumPy's own error inside an emitter: an exporter bug
                raise ExportError(
                    f"ONNX export: {forward}{detail}: writing its {rule_name.strip('_').removesuffix('_vjp')!r} op "
                    f"failed, an exporter bug, please report it ({type(exc).__name__}: {exc})"
                ) from None
            finally:
                self.g.context = previous
            if name not in self.g.batch_axis:
                self.g.batch_axis[name] = broadcast_axis(self.g, t, ins, parents)
                # an elementwise op keeps a batch dim merged with fixed dims as it was
                inner = next((self.g.batch_inner[i] for i in ins if i in self.g.batch_inner), None)
                if inner is not None and self.g.batch_axis[name] is not None:
                    self.g.batch_inner[name] = inner
        self.bind(t, name)
        return name

    def cast(self, name: str, t: Tensor, dtype: np.dtype[Any]) -> str:
        """``name`` (the value of ``t``) cast to ``dtype`` when ``t`` has another dtype: ONNX's Add, Mul,
        Concat... need operands of one type, where the forward promoted them (float32 + float64 -> float64;
        a 0-d float64 times a float32 matrix stays float32)."""
        if t.array.dtype == dtype:
            return name
        y = self.g.node("Cast", [name], "cast", to=self.g.onnx.helper.np_dtype_to_tensor_dtype(dtype))
        self.g.batch_axis[y] = self.g.batch_axis.get(name)
        if name in self.g.batch_inner:
            self.g.batch_inner[y] = self.g.batch_inner[name]
        return y

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
                f"arguments; only {expected} can be exported (extra arguments such as an RNN's initial state, "
                f"EmbeddingBag's offsets or a transposed convolution's output_size are not supported)"
            )
        names = [self.resolve(a) for a in args[:n]]
        self.depth += 1
        try:
            out = original(m, *args, **kwargs)
        finally:
            self.depth -= 1
            self.restore(m)  # e.g. Embedding(max_norm) renormalizes rows in place: the export must not
        where = _user_line(sys._getframe(1))  # the user's line that called the layer
        previous, self.g.context = self.g.context, f"the layer {type(m).__name__}{' at ' + where if where else ''}"
        try:
            if n == 1:
                made = emit(self.g, m, names[0], args[0], out)
            else:
                multi: Any = emit  # a multi-input emitter takes lists of names and tensors
                made = multi(self.g, m, names, list(args[:n]), out)
        except DownslopeError:
            raise
        except Exception as exc:  # onnx's or NumPy's own error inside an emitter: an exporter bug
            raise ExportError(
                f"ONNX export: writing the layer {type(m).__name__} failed, an exporter bug, please report it "
                f"({type(exc).__name__}: {exc})"
            ) from None
        finally:
            self.g.context = previous
        axis = self.g.batch_axis.get(names[0])
        inner = self.g.batch_inner.get(names[0])
        for name, value in zip(_flat(made), flat_outputs(out)):
            if name not in self.g.batch_axis and isinstance(value, Tensor):
                self.g.batch_axis[name] = axis if axis is not None and axis < value.ndim else None
            # a row-wise layer (Linear, LayerNorm, an activation) keeps a batch dim merged with fixed dims as it was
            if (
                inner is not None and isinstance(value, Tensor) and axis is not None
                and self.g.batch_axis.get(name) == axis and value.ndim > axis
                and value.shape[axis] == args[0].shape[axis]
            ):  # fmt: skip
                self.g.batch_inner.setdefault(name, inner)
        self.bind(out, made)
        return out

    def restore(self, m: Module) -> None:
        """Put back the values of ``m``'s parameters and buffers that its forward changed in place."""
        for t in list(m.parameters()) + list(m.buffers()):
            entry = self.constants.get(id(t))
            if entry is not None and t.array.shape == entry[1].shape and not np.array_equal(t.array, entry[1]):
                t.array[...] = entry[1]


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
    return sorted({k.strip("_").removesuffix("_vjp") for k in OP_EMITTERS} | set(DERIVED_NAMES))


# Frames that say nothing about which op the user called.
# ``wrapper`` is the out= wrapper of the top-level functions (ops/out.py): the op's own name is inside it.
# ``method`` and ``factory`` wrap the ops as Tensor methods and factories (ops/methods.py): the same.
_PLUMBING = {"forward", "__call__", "_call_impl", "record_op", "wrap_array", "traced", "wrapper", "factory", "method"}
_CONTAINERS = (Sequential, ModuleList, ModuleDict)
# Generated ops (a table of unary functions, method wrappers that rename a keyword): named by their closure.
_NAMED_BY_CLOSURE = {"op", "renaming", "_bitwise"}
# Operand promotion helpers: they lift numbers (constants) beside a tensor, and cast tensors (written as Casts).
_PROMOTION = {
    "_lift", "_lift_float", "_pair", "_pair_float", "pair", "complex_pair", "_cast_kept", "_scalar_on_device",
    "_onto_device_of",
}  # fmt: skip
# Ops whose result depends on a tensor argument's size, dtype or device only, never on its values.
_SIZE_ONLY = {
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "empty_strided", "new_empty_strided",
    "size", "dim", "numel",
}  # fmt: skip
# Ops whose ONNX node needs its (tensor) operands in one dtype, the result's.
_SAME_DTYPE = {
    "_add_vjp", "_sub_vjp", "_mul_vjp", "_div_vjp", "_pow_vjp", "_matmul_vjp", "_maximum_vjp", "_minimum_vjp",
    "_where_vjp", "_concatenate_vjp", "_stack_vjp", "_linear_vjp", "_sdpa_vjp",
}  # fmt: skip


def _library_code(frame: FrameType) -> bool:
    """Whether ``frame`` runs the library's own code (not the exporter's)."""
    module = frame.f_globals.get("__name__", "")
    return module.startswith("downslope") and not module.startswith("downslope.export")


def _tensors_in(values: Any) -> list[Any]:
    """The tensors among ``values`` and in the tuples and lists among them (one level)."""
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, (tuple, list)):
            out.extend(u for u in v[:64] if isinstance(u, Tensor))
    return out


def _size_only(frame: FrameType) -> bool:
    """Whether ``frame`` runs inside a public op that reads its tensor's size only (zeros_like, new_zeros)."""
    f: FrameType | None = frame
    while f is not None:
        if f.f_code.co_name in _SIZE_ONLY:
            return True
        if not f.f_globals.get("__name__", "").startswith("downslope"):
            return False
        f = f.f_back
    return False


def _flat(names: Any) -> list[Any]:
    if isinstance(names, (tuple, list)):
        return [n for item in names for n in _flat(item)]
    return [names]


# Modules whose frames are not the user's line: the library, NumPy (an op inside np.errstate), the stdlib's wrappers.
_NOT_USER_CODE = ("downslope", "numpy", "contextlib", "functools")


def _user_line(frame: FrameType | None) -> str:
    """``file.py:12`` of the first frame at or above ``frame`` outside downslope, or ''."""
    f = frame
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if not mod.startswith(_NOT_USER_CODE) and mod not in _NOT_USER_CODE:
            return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"
        f = f.f_back
    return ""


_HOST_READS = {
    "item": "t.item()",
    "tolist": "t.tolist()",
    "numpy": "t.numpy()",
    "__float__": "float(t)",
    "__int__": "int(t)",
    "__bool__": "bool(t): an `if`, `and`, `or` or `not` on a tensor",
    "__index__": "a tensor used as a Python int",
    "__array__": "np.asarray(t)",
}


@contextlib.contextmanager
def _watching(tracer: _Tracer) -> Iterator[None]:
    """While tracing: refuse reads of traced values into Python, and note where each recorded tensor is made."""
    originals = {name: Tensor.__dict__[name] for name in _HOST_READS if name in Tensor.__dict__}

    def guard(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: Tensor, *args: Any, **kwargs: Any) -> Any:
            tracer.host_read(self, _HOST_READS[name])
            return fn(self, *args, **kwargs)

        read.__name__ = name
        return read

    called: dict[int, dict[str, Any]] = {}  # the arguments of the AT_CALL frames running, by frame id

    given: dict[int, list[Any]] = {}  # the tensor arguments of each library frame running, by frame id

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            if frame.f_code in AT_CALL:
                called[id(frame)] = dict(frame.f_locals)
            if not tracer.depth and _library_code(frame):
                given[id(frame)] = _tensors_in(frame.f_locals.values())
            return
        if event != "return":
            return
        passed = given.pop(id(frame), None)
        if frame.f_code in DERIVED_TUPLES and isinstance(arg, tuple):
            tracer.derive(frame.f_code, frame.f_locals, arg)
        module = frame.f_globals.get("__name__", "")
        if isinstance(arg, Tensor):
            if frame.f_code in DERIVED or frame.f_code in NOTED:
                local = frame.f_locals
                if frame.f_code in AT_CALL:
                    local = {**local, **called.pop(id(frame), {})}
                tracer.derive(frame.f_code, local, arg)
            if module.startswith(("downslope.ops", "downslope.tensor", "downslope.nn")):
                tracer.note_origin(frame, arg)  # recorded or not: a frozen value is described by its op too
        if passed is not None and not tracer.depth and isinstance(arg, (Tensor, tuple, list)):
            tracer.taint(frame, arg, passed)

    previous = sys.getprofile()
    for name, fn in originals.items():
        setattr(Tensor, name, guard(name, fn))
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)
        for name, fn in originals.items():
            setattr(Tensor, name, fn)


@contextlib.contextmanager
def preserved(model: Any) -> Iterator[None]:
    """Run a block with ``model``'s parameters and buffers put back afterwards (a forward may change them
    in place, e.g. ``Embedding(max_norm=...)``); exporting must leave the model as it was."""
    modules = model.modules() if isinstance(model, Module) else []
    saved = [(t, t.array, t.array.copy()) for m in modules for t in list(m.parameters()) + list(m.buffers())]
    try:
        yield
    finally:
        for t, arr, copy in saved:
            if t.array is not arr:
                t.array = arr
            if arr.shape == copy.shape and not np.array_equal(arr, copy, equal_nan=True):
                arr[...] = copy


def flat_outputs(value: Any) -> list[Any]:
    """The tensors of a model's output, nested tuples and lists flattened in order."""
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in flat_outputs(item)]
    return [value]


def as_inputs(example_input: Any, model: Any = None) -> list[Tensor]:
    """``example_input`` (a Tensor, an array, or a tuple/list of them) as a list of fresh Tensors.

    A Tensor keeps its dtype (a float64 model exports with a float64 example); a floating NumPy array
    becomes the default dtype as in ``ds.tensor``, or float64 when every floating parameter of ``model`` is."""
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    floats = (
        {p.array.dtype for p in model.parameters() if p.array.dtype.kind == "f"} if isinstance(model, Module) else set()
    )
    out = []
    for item in items:
        if isinstance(item, Tensor):
            out.append(wrap_array(np.array(item.array, copy=True)))
        elif isinstance(item, np.ndarray):
            if item.dtype == np.float64 and floats == {np.dtype(np.float64)}:
                out.append(wrap_array(item.copy()))
            else:
                out.append(wrap_array(to_array(item.copy())))
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


def trace(
    g: GraphBuilder,
    model: Module,
    inputs: list[Tensor],
    names: Sequence[str],
    batch_axes: Sequence[int | None] | None = None,
) -> tuple[list[str], list[Tensor]]:
    """Run ``model`` on ``inputs`` (bound to the graph values ``names``) in evaluation mode, writing
    its nodes into ``g``; return the graph names of its outputs and the output tensors. ``batch_axes``
    says which dim of each input is the free batch dim (default: dim 0 of each input with dims, when
    ``g.dynamic_batch``; dim 1 for a sequence-first model's (L, N, E) input).

    Example:
        >>> names, outs = trace(graph, model, [ds.randn(2, 4)], ["input"])  # doctest: +SKIP
    """
    if not isinstance(model, Module):
        raise ArgumentError(f"ONNX export: expected an nn.Module, got {type(model).__name__}")
    tracer = _Tracer(g, model)
    inputs = [wrap_array(np.array(t.array, copy=True)) for t in inputs]
    for k, (t, n) in enumerate(zip(inputs, names)):
        # Every op on the input then records itself, so it can be traced; an integer or boolean input's
        # flag is set directly (nothing runs backward on the trace, and its ops must be followed too).
        t._requires_grad = True
        if t.array.dtype == np.bool_:
            tracer.mask_arrays[id(t.array)] = t
        tracer.bind(t, n)
        axis = (0 if t.ndim else None) if batch_axes is None else batch_axes[k]
        axis = axis if g.dynamic_batch and axis is not None and axis < t.ndim else None
        g.batch_axis[n] = axis
        if axis is not None and g.batch_input is None:
            g.batch_input, g.batch_size = n, int(t.shape[axis])
    modes = {id(m): m.training for m in model.modules()}
    original = Module.__call__

    def traced(self: Module, *args: Any, **kwargs: Any) -> Any:
        return tracer.call(original, self, args, kwargs)

    model.eval()
    Module.__call__ = traced  # type: ignore[method-assign]
    try:
        with preserved(model), enable_grad():
            with _watching(tracer):
                out = model(*inputs)
            outs = flat_outputs(out)
            tracer.stack.append(model)
            internal = [tracer.resolve(o) for o in outs]
    finally:
        Module.__call__ = original  # type: ignore[method-assign]
        for m in model.modules():
            m.training = modes[id(m)]
    return internal, outs
