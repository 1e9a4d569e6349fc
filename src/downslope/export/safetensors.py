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

from ..devices import is_array, is_foreign_tensor, to_device, to_host
from ..errors import ArgumentTypeError, CheckpointError
from ..serialization import atomic_write_bytes
from ..tensor import Tensor, wrap_array

__all__ = ["save_safetensors", "load_safetensors", "safetensors_metadata"]


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
        if is_array(array) or is_foreign_tensor(array):
            array = to_host(array)  # a GPU tensor's values, or a PyTorch tensor's (bfloat16 widened)
        if not isinstance(array, np.ndarray) or array.dtype == object:
            raise ArgumentTypeError(
                f"save_safetensors: {key!r} is a {type(value).__name__}, not an array; safetensors holds arrays "
                f"only (save optimizer state and other nested data with ds.save)"
            )
        arrays[key] = np.array(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    meta = None if metadata is None else {str(k): str(v) for k, v in metadata.items()}
    atomic_write_bytes(path, st.save(arrays, metadata=meta))


def load_safetensors(path: str | os.PathLike[str], device: Any = "cpu") -> OrderedDict[str, Tensor]:
    """The tensors of a safetensors file (name -> Tensor, in the file's order), ready for
    ``model.load_state_dict``, as ``safetensors.torch.load_file(path, device=...)`` gives them: the
    values are downslope Tensors, so remapping code can call ``.t()``, ``.float()``, ``.to()`` on them.

    Dtypes are kept (float16 stays float16), except bfloat16, which NumPy lacks: it is widened to
    float32, which holds every bfloat16 value exactly. ``device`` is ``"cpu"`` (the default) or a
    GPU (``"cuda"``, ``"cuda:1"``), where the tensors are copied as ``tensor.to(device)`` would.

    ``path`` may also be a Hugging Face shard index (``model.safetensors.index.json``): the shards
    its ``weight_map`` names (in the index's folder) are read and merged into one dict, every key
    the index lists checked present in its shard. The header's string metadata (``{"format":
    "pt"}``) is read by :func:`safetensors_metadata`.

    Example:
        >>> import downslope as ds
        >>> weights = ds.load_safetensors("linear.safetensors")  # doctest: +SKIP
        >>> sorted(weights), weights["weight"].t().shape  # doctest: +SKIP
        (['bias', 'weight'], (2, 3))
    """
    where = os.fspath(path)
    target = _target_device(device)
    if where.endswith(".json"):
        arrays = _load_sharded(where)
    else:
        arrays = _load_arrays(where)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for name, array in arrays.items():
        out[name] = wrap_array(array if target is None else to_device(array, target))
    return out


def safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a safetensors file: the string map saved with it (``{"format": "pt"}``;
    ``{}`` when there is none), read from the header alone, as ``safe_open(path).metadata()``.
    For a shard index (``model.safetensors.index.json``), the index's own ``metadata`` entry
    (such as ``{"total_size": ...}``).

    Example:
        >>> import downslope as ds
        >>> ds.save_safetensors(ds.nn.Linear(2, 3), "linear.safetensors", metadata={"format": "pt"})  # doctest: +SKIP
        >>> ds.safetensors_metadata("linear.safetensors")  # doctest: +SKIP
        {'format': 'pt'}
    """
    where = os.fspath(path)
    if where.endswith(".json"):
        meta = _read_index(where).get("metadata") or {}
        return dict(meta) if isinstance(meta, dict) else {}
    if not os.path.isfile(where):
        raise CheckpointError(f"safetensors_metadata: no file at {where!r}")
    with open(where, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= _MAX_HEADER_BYTES:
            raise CheckpointError(f"safetensors_metadata: {where!r} is not a readable safetensors file")
        header = _header(head + f.read(n))
    if header is None:
        raise CheckpointError(f"safetensors_metadata: {where!r} is not a readable safetensors file")
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def _target_device(device: Any) -> Any:
    """The device to copy the arrays to, or None for the host."""
    from ..device import CPU, resolve

    d = resolve(device, "load_safetensors(device=...)")
    return None if d == CPU else d


def _load_arrays(where: str) -> OrderedDict[str, np.ndarray]:
    """The arrays of one safetensors file (bfloat16 widened to float32)."""
    st = _safetensors_numpy()
    if not os.path.isfile(where):
        raise CheckpointError(f"load_safetensors: no file at {where!r}")
    with open(where, "rb") as f:
        raw = f.read()
    try:
        loaded = st.load(raw)
    except Exception as exc:  # the library's errors (bad header, a dtype NumPy lacks such as bfloat16)
        header = _header(raw)
        if header is not None and all(isinstance(v, dict) for v in header.values()):
            return _load_with_bfloat16(raw, header, where)  # names any dtype it cannot hold
        raise CheckpointError(f"load_safetensors: {where!r} is not a readable safetensors file: {exc}") from None
    return OrderedDict((k, np.asarray(v)) for k, v in loaded.items())


def _read_index(where: str) -> dict[str, Any]:
    """A shard index's JSON: ``{"metadata": {...}, "weight_map": {tensor name: shard file}}``."""
    import json

    if not os.path.isfile(where):
        raise CheckpointError(f"load_safetensors: no file at {where!r}")
    try:
        with open(where, encoding="utf-8") as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"load_safetensors: {where!r} is not a JSON shard index: {exc}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise CheckpointError(
            f"load_safetensors: {where!r} is not a safetensors shard index (expected a JSON object whose "
            "'weight_map' maps tensor names to shard files, as model.safetensors.index.json does)"
        )
    return index


def _load_sharded(where: str) -> OrderedDict[str, np.ndarray]:
    """The merged arrays of the shards a ``*.safetensors.index.json`` names, shard by shard."""
    weight_map: dict[str, str] = _read_index(where)["weight_map"]
    folder = os.path.dirname(os.path.abspath(where))
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for shard in dict.fromkeys(weight_map.values()):  # each shard once, in the index's order
        if os.path.isabs(shard) or ".." in shard.replace("\\", "/").split("/"):
            raise CheckpointError(f"load_safetensors: {where!r} names shard {shard!r} outside its folder; refused")
        shard_path = os.path.join(folder, shard)
        if not os.path.isfile(shard_path):
            raise CheckpointError(f"load_safetensors: shard {shard!r} named by {where!r} is missing ({shard_path})")
        arrays = _load_arrays(shard_path)
        listed = [k for k, v in weight_map.items() if v == shard]
        absent = [k for k in listed if k not in arrays]
        if absent:
            raise CheckpointError(
                f"load_safetensors: {where!r} puts {absent[:5]} in shard {shard!r}, which does not hold them"
            )
        for k in arrays:
            if k in out:
                raise CheckpointError(f"load_safetensors: tensor {k!r} is in more than one shard of {where!r}")
        out.update(arrays)
    return out


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
    """A file the NumPy reader refused, read here: bfloat16 tensors (NumPy has no such dtype) are
    widened to float32, which holds every bfloat16 value exactly (bfloat16 is float32's upper 16
    bits); any other dtype NumPy cannot hold (the float8 types) is refused by name."""
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
