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
        header = _header(raw)
        if header is not None and any(_dtype_of(v) == "BF16" for v in header.values()):
            return _load_with_bfloat16(raw, header, where)
        raise CheckpointError(f"load_safetensors: {where!r} is not a readable safetensors file: {exc}") from None
    return OrderedDict((k, np.asarray(v)) for k, v in loaded.items())


def _header(raw: bytes) -> dict[str, Any] | None:
    """The JSON header of a safetensors file (name -> {dtype, shape, data_offsets}), or None."""
    import json

    if len(raw) < 8:
        return None
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8 : 8 + n])
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def _dtype_of(entry: Any) -> Any:
    return entry.get("dtype") if isinstance(entry, dict) else None


_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1"}
_NUMPY_DTYPES |= {"U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def _load_with_bfloat16(raw: bytes, header: dict[str, Any], where: str) -> OrderedDict[str, np.ndarray]:
    """A file holding bfloat16 tensors (NumPy has no such dtype): each is widened to float32, which
    holds every bfloat16 value exactly (bfloat16 is float32's upper 16 bits)."""
    start = 8 + int.from_bytes(raw[:8], "little")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
            count = int(np.prod(shape, dtype=np.int64))
            if dtype not in _NUMPY_DTYPES and dtype != "BF16":
                raise CheckpointError(
                    f"load_safetensors: {where!r}: tensor {name!r} has dtype {dtype}, which NumPy cannot hold; "
                    "convert it in torch first (e.g. to float32)"
                )
            stored = np.dtype("<u2" if dtype == "BF16" else _NUMPY_DTYPES[dtype])
            if count * stored.itemsize != int(end) - int(begin):
                raise CheckpointError(
                    f"load_safetensors: {where!r}: tensor {name!r} has {int(end) - int(begin)} bytes stored "
                    f"for shape {shape} of {dtype}"
                )
            array = np.frombuffer(raw, stored, count, start + int(begin)).reshape(shape)
            if dtype == "BF16":
                array = (array.astype(np.uint32) << 16).view(np.float32)
            else:
                array = array.copy()
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"load_safetensors: {where!r}: tensor {name!r} is unreadable: {exc}") from None
        out[name] = array.astype(array.dtype.newbyteorder("="))
    return out
