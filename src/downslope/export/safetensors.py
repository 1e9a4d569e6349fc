"""Weights as safetensors files: the format PyTorch and Hugging Face share, with no code run on load.

A downslope ``state_dict()`` already uses PyTorch's key names, shapes and dtypes (``0.weight``,
``bn.running_mean``, ``bn.num_batches_tracked`` as a 0-d int64, ``weight_ih_l0_reverse``...), so a
file written here loads into the equivalent torch model with
``torch_model.load_state_dict(safetensors.torch.load_file(path))``, and one saved from torch with
``safetensors.torch.save_file(torch_model.state_dict(), path)`` loads here with
``model.load_state_dict(ds.load_safetensors(path))``. Needs the optional ``safetensors`` package
(``pip install downslope[safetensors]``); its NumPy API does the reading and writing.

Example:
    >>> import downslope as ds
    >>> model = ds.nn.Sequential(ds.nn.Linear(2, 3))
    >>> ds.save_safetensors(model.state_dict(), "weights.safetensors")  # doctest: +SKIP
    >>> model.load_state_dict(ds.load_safetensors("weights.safetensors"))  # doctest: +SKIP
    <All keys matched successfully>
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError, CheckpointError
from ..serialization import atomic_write_bytes
from ..tensor import Tensor

__all__ = ["save_safetensors", "load_safetensors"]


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            "safetensors files need the 'safetensors' package: pip install 'downslope[safetensors]'"
        ) from None
    return safetensors.numpy


def save_safetensors(
    state_dict: Mapping[str, Any] | Any, path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``state_dict`` (name -> array or Tensor; a Module is taken as its ``state_dict()``)
    to ``path`` as safetensors, atomically. ``metadata`` is an optional str -> str header.

    Example:
        >>> import downslope as ds
        >>> ds.save_safetensors(ds.nn.Linear(2, 3), "linear.safetensors")  # doctest: +SKIP
    """
    st = _safetensors_numpy()
    if hasattr(state_dict, "state_dict") and not isinstance(state_dict, Mapping):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise ArgumentTypeError(
            f"save_safetensors: expected a state dict (name -> array) or a Module, got {type(state_dict).__name__}"
        )
    arrays: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ArgumentTypeError(f"save_safetensors: keys must be strings, got {key!r}")
        array = value.array if isinstance(value, Tensor) else value
        if not isinstance(array, np.ndarray) or array.dtype == object:
            raise ArgumentTypeError(
                f"save_safetensors: {key!r} is a {type(value).__name__}, not an array; safetensors holds arrays "
                f"only (save optimizer state and other nested data with ds.save)"
            )
        arrays[key] = np.array(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    meta = None if metadata is None else {str(k): str(v) for k, v in metadata.items()}
    atomic_write_bytes(path, st.save(arrays, metadata=meta))


def load_safetensors(path: str | os.PathLike[str]) -> OrderedDict[str, np.ndarray]:
    """The arrays of a safetensors file (name -> array), ready for ``model.load_state_dict``.

    Example:
        >>> import downslope as ds
        >>> weights = ds.load_safetensors("linear.safetensors")  # doctest: +SKIP
        >>> sorted(weights)  # doctest: +SKIP
        ['bias', 'weight']
    """
    st = _safetensors_numpy()
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise CheckpointError(f"load_safetensors: no file at {where!r}")
    with open(where, "rb") as f:
        raw = f.read()
    try:
        loaded = st.load(raw)
    except Exception as exc:  # the library's errors (bad header, a dtype NumPy lacks such as bfloat16)
        raise CheckpointError(f"load_safetensors: {where!r} is not a readable safetensors file: {exc}") from None
    return OrderedDict((k, np.asarray(v)) for k, v in loaded.items())
