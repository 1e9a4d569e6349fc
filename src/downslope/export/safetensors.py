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

import math
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
    _safetensors_numpy()  # the package is what reads these files back; refuse to write without it, as before
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
        if array.dtype.str.lstrip("<>|=") not in _DTYPE_OF:
            raise ArgumentTypeError(
                f"save_safetensors: {key!r} has dtype {array.dtype}, which safetensors does not hold; "
                "convert it first (complex128 and float128 have no safetensors dtype)"
            )
        arrays[key] = array
    meta = None if metadata is None else {str(k): str(v) for k, v in metadata.items()}
    where = os.fspath(path)
    if os.path.isdir(where):
        raise CheckpointError(
            f"save_safetensors: {where!r} is a directory; give a file name such as {where}/model.safetensors"
        )
    atomic_write_bytes(where, lambda handle: _write(handle, arrays, meta))


# What safetensors calls each NumPy dtype (little-endian, without the byte-order mark), in the order of
# the library's Dtype enum: it lays tensors out by dtype from the last to the first, then by name, so
# the file written here is the one safetensors.numpy.save_file would write.
_DTYPE_OF = {"b1": "BOOL", "u1": "U8", "i1": "I8", "i2": "I16", "u2": "U16", "f2": "F16", "i4": "I32"}
_DTYPE_OF |= {"u4": "U32", "f4": "F32", "c8": "C64", "f8": "F64", "i8": "I64", "u8": "U64"}
_DTYPE_RANK = {name: rank for rank, name in enumerate(_DTYPE_OF.values())}


def _write(handle: Any, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None) -> None:
    """A safetensors file written to ``handle``: the header, then each array's bytes straight from its
    buffer (a contiguous little-endian array is not copied; the file is never built in memory)."""
    import json

    header: dict[str, Any] = {} if metadata is None else {"__metadata__": dict(metadata)}
    order = sorted(arrays, key=lambda k: (-_DTYPE_RANK[_DTYPE_OF[arrays[k].dtype.str.lstrip("<>|=")]], k))
    offset = 0
    for key in order:
        array = arrays[key]
        header[key] = {
            "dtype": _DTYPE_OF[array.dtype.str.lstrip("<>|=")],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the library pads the header to 8 bytes, so the data stays aligned
    handle.write(len(text).to_bytes(8, "little"))
    handle.write(text)
    for key in order:
        array = arrays[key]
        if array.dtype.byteorder == ">":  # the format is little-endian
            array = array.astype(array.dtype.newbyteorder("<"))
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        if array.size:
            handle.write(memoryview(array.reshape(-1)).cast("B"))  # type: ignore[arg-type]  # numpy stubs lack Buffer


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
    _check_is_file(where, "safetensors_metadata")
    with open(where, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= _MAX_HEADER_BYTES:
            _refuse_other_kind(where, "safetensors_metadata")
            raise CheckpointError(f"safetensors_metadata: {where!r} is not a readable safetensors file")
        header = _header(head + f.read(n))
    if header is None:
        raise CheckpointError(f"safetensors_metadata: {where!r} is not a readable safetensors file")
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def _check_is_file(where: str, caller: str) -> None:
    """Refuse a path that is not a file; for a directory (a Hugging Face model folder), name the
    safetensors files in it and the one to give."""
    if os.path.isfile(where):
        return
    if not os.path.isdir(where):
        raise CheckpointError(f"{caller}: no file at {where!r}")
    names = sorted(n for n in os.listdir(where) if n.endswith((".safetensors", ".safetensors.index.json")))
    index = [n for n in names if n.endswith(".index.json")]
    best = index[0] if index else "model.safetensors" if "model.safetensors" in names else names[0] if names else None
    if best is None:
        raise CheckpointError(f"{caller}: {where!r} is a directory with no .safetensors file in it; give a file's path")
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    why = " (the shard index merges every shard)" if index else ""
    raise CheckpointError(
        f"{caller}: {where!r} is a directory, not a file; it holds {shown}: give a file's path, such as "
        f"{os.path.join(where, best)!r}{why}"
    )


def _refuse_other_kind(where: str, caller: str) -> None:
    """When a file that is not safetensors is another kind downslope knows (a ds.save checkpoint, a torch
    pickle, an ONNX model), say so and what reads it, instead of a header length read from its bytes."""
    from ..serialization import file_kind

    kind = file_kind(where)
    readers = {
        "a ds.save checkpoint": f"read it with ds.load({where!r})",
        "a torch.save checkpoint": "downslope never unpickles; in PyTorch, write its weights with "
        "safetensors.torch.save_file(state_dict, 'model.safetensors') and read that here",
        "a Python pickle": "downslope never unpickles; in PyTorch, write its weights with "
        "safetensors.torch.save_file(state_dict, 'model.safetensors') and read that here",
        "an ONNX model": "ONNX models are run by inference runtimes (onnxruntime), not read as weights",
    }
    if kind in readers:
        raise CheckpointError(f"{caller}: {where!r} is {kind}, not a safetensors file; {readers[kind]}")


def _target_device(device: Any) -> Any:
    """The device to copy the arrays to, or None for the host."""
    from ..device import CPU, resolve

    d = resolve(device, "load_safetensors(device=...)")
    return None if d == CPU else d


def _load_arrays(where: str) -> OrderedDict[str, np.ndarray]:
    """The arrays of one safetensors file (bfloat16 widened to float32).

    The file is checked against the format first (:func:`_validated_header`, on a read-only memory map of
    the file, which reads only the header's pages), so that every file the safetensors library refuses is
    refused here too, with what is wrong; then each tensor's bytes are read from the file straight into
    its new array (one copy, no whole-file ``bytes`` in between: the library's ``load`` takes bytes and
    copies them again, twice the time and twice the memory). bfloat16 is widened to float32, and the
    float8/float4 types, which NumPy cannot hold, are refused by name."""
    import mmap

    _safetensors_numpy()  # the same requirement as the other safetensors functions
    _check_is_file(where, "load_safetensors")
    with open(where, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        mapped: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            try:
                tensors = _validated_header(mapped, where)
            except CheckpointError:
                _refuse_other_kind(where, "load_safetensors")
                raise
            start = 8 + int.from_bytes(mapped[:8], "little")
        finally:
            if size:
                mapped.close()
        return _read_tensors(f, start, tensors, where)


def _read_tensors(
    f: Any, start: int, tensors: Mapping[str, dict[str, Any]], where: str
) -> OrderedDict[str, np.ndarray]:
    """Each tensor of a validated header (:func:`_validated_header`: every offset lies in the file and
    holds dtype x shape bytes) read from the open file ``f`` into a new array of its dtype in native byte
    order; bfloat16 tensors are widened to float32, which holds every bfloat16 value exactly (bfloat16 is
    float32's upper 16 bits); any other dtype NumPy cannot hold (the float8 and float4 types) is refused."""
    for name, entry in tensors.items():
        if entry["dtype"] not in _NUMPY_DTYPES and entry["dtype"] != "BF16":
            raise CheckpointError(
                f"load_safetensors: {where!r}: tensor {name!r} has dtype {entry['dtype']}, which NumPy cannot hold; "
                "convert it in torch first (e.g. to float32)"
            )
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, entry in tensors.items():
        dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        stored = np.dtype("<u2" if dtype == "BF16" else _NUMPY_DTYPES[dtype])
        array = np.empty(shape, stored)
        f.seek(start + begin)
        if f.readinto(array.reshape(-1).view(np.uint8).data) != end - begin:
            raise CheckpointError(f"load_safetensors: {where!r} changed while it was read (tensor {name!r} is cut)")
        if dtype == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        elif not stored.isnative:
            array = array.astype(stored.newbyteorder("="))  # a big-endian host: the file is little-endian
        out[name] = array
    return out


# Every dtype of the format, with its size in bits (the float4/float6 types pack several per byte).
_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}
_DTYPE_BITS |= dict.fromkeys(("F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"), 8)
_DTYPE_BITS |= {"I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32}
_DTYPE_BITS |= {"C64": 64, "F64": 64, "I64": 64, "U64": 64}


class _DuplicateName(ValueError):
    """A JSON object of a safetensors header holding one key twice (json keeps the last silently)."""


def _refuse_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: the object, refusing a key given twice (two tensors of one name: which
    one is meant cannot be told; the safetensors library refuses such a header too)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateName(key)
        seen[key] = value
    return seen


def _validated_header(raw: Any, where: str) -> OrderedDict[str, dict[str, Any]]:
    """The tensor entries of a safetensors file (name -> {"dtype", "shape", "data_offsets"}, in the
    header's order), after every check the format makes, in the library's order: the header length
    (within the limit and the file), UTF-8 JSON object, ``__metadata__`` a map of strings, each
    entry's dtype, shape and offsets well-typed, and the byte ranges contiguous from 0, not
    overlapping, of the size dtype x shape needs, covering the data exactly. A failed check is a
    :class:`CheckpointError` naming the file and what is wrong, before anything is allocated."""
    import json

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"load_safetensors: {where!r} is not a readable safetensors file: {what}")

    if len(raw) < 8:
        raise bad(f"it has {len(raw)} bytes, fewer than the 8 of the header length")
    if raw[:4] == b"PK\x03\x04":  # named before the length check, which would read zip bytes as a length
        raise bad(
            "it is a zip archive (a checkpoint of ds.save or torch.save, or a NumPy .npz): ds.load or np.load reads it"
        )
    if raw[:6] == b"\x93NUMPY":
        raise bad("it is a NumPy .npy array: np.load reads it (ds.tensor(np.load(path)))")
    n = int.from_bytes(raw[:8], "little")
    if n > _MAX_HEADER_BYTES:
        raise bad(f"its header length is {n} bytes, more than the format's limit of {_MAX_HEADER_BYTES}")
    if 8 + n > len(raw):
        raise bad(f"its header length is {n} bytes, but the file has only {len(raw) - 8} bytes after it")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"), object_pairs_hook=_refuse_duplicate_names)
    except _DuplicateName as exc:
        raise bad(f"its header names the tensor {exc.args[0]!r} twice") from None
    except UnicodeDecodeError as exc:
        raise bad(f"its header is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise bad(f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad(f"its header is a JSON {type(header).__name__}, not an object")
    meta = header.get("__metadata__")
    if meta is not None and (not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values())):
        raise bad("its __metadata__ is not a map of strings to strings")
    tensors: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise bad(f"tensor {name!r} is described by a {type(entry).__name__}, not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPE_BITS:
            raise bad(
                f"tensor {name!r} has the dtype {dtype!r}, which the format does not define (F32, BF16, I64, ...)"
            )
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has the shape {shape!r}; expected a list of non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets):
            raise bad(f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] byte offsets")
        tensors[name] = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
    data_bytes = len(raw) - 8 - n
    end_of_previous = 0
    for name, entry in sorted(tensors.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        begin, end = entry["data_offsets"]
        if begin != end_of_previous or end < begin:
            why = (
                "ends before it begins"
                if end < begin
                else f"overlaps the tensor before it (which ends at {end_of_previous})"
                if begin < end_of_previous
                else f"leaves a gap of {begin - end_of_previous} bytes after the tensor before it"
            )
            raise bad(f"tensor {name!r} has data_offsets [{begin}, {end}], which {why}")
        bits = math.prod(entry["shape"]) * _DTYPE_BITS[entry["dtype"]]
        if bits % 8 or bits // 8 != end - begin:
            raise bad(
                f"tensor {name!r} has shape {tuple(entry['shape'])} of {entry['dtype']} "
                f"({f'{bits // 8:,} bytes' if bits % 8 == 0 else f'{bits:,} bits'}), but "
                f"data_offsets [{begin}, {end}] hold {end - begin} bytes"
            )
        end_of_previous = end
    if end_of_previous != data_bytes:
        raise bad(
            f"its tensors hold {end_of_previous} bytes of data, but the file has {data_bytes} after the header "
            "(truncated, or bytes no tensor accounts for)"
        )
    return tensors


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


# The dtypes NumPy holds, read as they are; bfloat16 is widened (_read_tensors), the others refused.
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1"}
_NUMPY_DTYPES |= {"U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?", "C64": "<c8"}
