"""Calling a model on a grid of inputs for a picture: eval mode, no graph, in chunks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..devices import to_host
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor, tensor

CHUNK_ROWS = 16384  # bounds the memory of a wide model on a fine grid


def _foreign_framework(model: Any) -> str | None:
    """'PyTorch' (or the like) when ``model`` is another library's model, which cannot take downslope's
    Tensors: read from its classes' modules, so no other library is imported to ask."""
    for cls in type(model).__mro__:
        root = (getattr(cls, "__module__", "") or "").split(".")[0]
        if root in ("torch", "tensorflow", "keras", "jax", "flax"):
            return {"torch": "PyTorch", "tensorflow": "TensorFlow", "keras": "Keras"}.get(root, "JAX")
    return None


def check_model(model: Any, where: str) -> None:
    """Refuse, saying what would work, a model a plot cannot call: another library's (a ``torch.nn.Module``
    fails deep in NumPy otherwise) or something that is not callable."""
    framework = _foreign_framework(model)
    if framework is not None:
        cls = type(model)
        raise ArgumentTypeError(
            f"{where}: model: expected a downslope model (a ds.nn.Module) or a function of the inputs (called "
            f"with a downslope Tensor, which np.asarray reads), got a {framework} model ({cls.__module__}."
            f"{cls.__qualname__}); to plot it, wrap it in a function, e.g. for PyTorch: "
            "lambda x: torch_model(torch.as_tensor(np.asarray(x))).detach().numpy()"
        )
    if not callable(model):
        raise ArgumentTypeError(
            f"{where}: model: expected a downslope model (a ds.nn.Module) or a function of the inputs, "
            f"got {type(model).__name__}"
        )


def _device_of(model: Any) -> Any:
    """Where a Module's parameters live (the grid goes there), None for a plain function."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for p in parameters():
            return p.device
    return None


def input_dtype(model: Any) -> np.dtype:
    """The dtype a grid fed to ``model`` takes: its first floating parameter's (a ``model.double()`` gets
    float64, as its layers refuse float32 inputs), float32 (the library default) for a plain function."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for p in parameters():
            dtype = np.dtype(p.dtype)
            if dtype.kind == "f":
                return dtype
    return np.dtype(np.float32)


def predict_array(model: Callable[[Tensor], Any], inputs: np.ndarray, where: str) -> np.ndarray:
    """``model(inputs)`` as a float64 array, computed under ``no_grad`` with the model in eval mode.

    ``inputs`` is cast to the model's parameter dtype (:func:`input_dtype`). A model with
    ``training``/``train()`` (a Module) is put in eval mode for the call, so dropout and batch-norm
    behave as at prediction time, and its previous mode is restored afterwards. NumPy's floating-point
    warnings (a model with NaN or infinite weights) are not raised here: the callers check the outputs
    for finiteness and say what that means for the picture.
    """
    check_model(model, where)
    inputs = np.asarray(inputs).astype(input_dtype(model), copy=False)
    was_training = getattr(model, "training", None)
    if was_training and hasattr(model, "eval"):
        model.eval()
    try:
        outputs = []
        device = _device_of(model)
        with no_grad(), np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            for start in range(0, len(inputs), CHUNK_ROWS):
                out = model(tensor(inputs[start : start + CHUNK_ROWS], dtype=inputs.dtype, device=device))
                outputs.append(to_host(getattr(out, "array", out)).astype(np.float64))  # a GPU model's too
    finally:
        if was_training and hasattr(model, "train"):
            model.train(True)
    result = np.concatenate(outputs, axis=0)
    if result.shape[0] != len(inputs):
        raise ArgumentError(
            f"{where}: the model returned {result.shape[0]} rows for {len(inputs)} inputs "
            f"(output shape {result.shape}); expected one output row per input row"
        )
    return result
