"""ONNX export: a downslope model as an ONNX graph that ONNX Runtime (or any ONNX backend) can run.

How it works (the table-of-rules idea): the exporter runs the model once on the example input and
records what flows where.

* Layers: ``EMITTERS`` maps a layer class (``nn.Linear``, ``nn.Conv2d``, ``nn.LSTM``...) to a
  function that writes that layer's ONNX nodes. Layers know nothing of ONNX; adding a layer means
  adding one entry here (:func:`register_emitter`).
* Containers and user Modules: any other Module (``nn.Sequential``, a user's ``class Net(nn.Module)``)
  is not translated as a whole. Its ``forward`` runs for real and every tensor that reaches a layer
  of the table (or the model's output) is traced back: it must be the model's input, the output of a
  layer already recorded, or the result of a basic tensor op of ``OP_EMITTERS`` (add, mul, reshape,
  indexing, concatenation...) applied to those. Values the forward makes without recording them
  (comparisons and their masks, casts, argmax, ``detach()``) and the functional forms of the table's
  layers are followed from their calls (``derived``). Anything else (an op without an ONNX rule, a
  tensor rebuilt from NumPy values) is refused with an :class:`~downslope.errors.ExportError` naming
  the Module type whose ``forward`` made it, never written as a wrong graph.
* Check: before writing, the graph runs on a second input (a batch of another size; with a fixed
  batch, the example's shapes with other values) in ONNX Runtime (or, if it is not installed, in
  ``onnx``'s reference evaluator) and must reproduce the model's outputs; a value frozen at export
  fails here instead of in deployment.
  A forward that reads a traced value into Python (``.item()``, ``float(t)``, ``bool(t)`` in an
  ``if``, ``.tolist()``, ``.numpy()``) is refused already while it is traced.

The model is exported in evaluation semantics: Dropout is the identity and BatchNorm uses its
running statistics, whatever mode the model is in (its mode is restored afterwards).

Example:
    >>> import downslope as ds
    >>> model = ds.nn.Sequential(ds.nn.Linear(4, 8), ds.nn.ReLU(), ds.nn.Linear(8, 3))
    >>> ds.onnx.export(model, ds.randn(2, 4), "model.onnx")  # doctest: +SKIP

The package: ``graph`` (GraphBuilder, the ``EMITTERS`` table), ``layer_emitters`` (one per layer
class), ``op_emitters`` (``OP_EMITTERS``), ``derived`` (ops followed from their calls), ``tracing``
(running the model), ``model`` (the ModelProto, the check, :func:`export`) and ``sequence`` (a free
sequence axis: the model traced at three lengths, the sizes that follow the length read from the input).
"""

from . import layer_emitters as _layer_emitters  # noqa: F401  (fills EMITTERS on import)
from .graph import EMITTERS, MIN_OPSET, GraphBuilder, register_emitter, require_onnx
from .model import (
    OperatorExportTypes,
    TrainingMode,
    checked,
    export,
    finish,
    is_in_onnx_export,
    run_onnx,
    to_model,
    value_info,
    verify,
)
from .op_emitters import OP_EMITTERS
from .tracing import supported_layers, supported_ops, trace

__all__ = [
    "export",
    "is_in_onnx_export",
    "TrainingMode",
    "OperatorExportTypes",
    "to_model",
    "trace",
    "register_emitter",
    "supported_layers",
    "supported_ops",
    "EMITTERS",
    "OP_EMITTERS",
    "MIN_OPSET",
    "GraphBuilder",
    "require_onnx",
    "finish",
    "value_info",
    "verify",
    "checked",
    "run_onnx",
]
