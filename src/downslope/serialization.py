"""Checkpoint files: plain arrays plus JSON, written atomically, verified on load, never pickled.

A file is a zip archive holding ``meta.json`` (the nested structure, with arrays replaced by
references, and a SHA-256 of every array) and one ``.npy`` entry per array. Loading reads arrays with
``allow_pickle=False``, so a malicious file cannot run code, and checks every checksum, so a
truncated or corrupted file fails with a clear :class:`CheckpointError` instead of a half-loaded state.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import CheckpointError

FORMAT = "downslope-checkpoint"
VERSION = 1


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    from .tensor import Tensor

    if isinstance(obj, Tensor):
        obj = obj.array
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "fiub":
            raise CheckpointError(f"save: {where} is an array of dtype {obj.dtype}; only numeric arrays can be saved")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and "__array__" not in obj:
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in obj.items()}
        for k in obj:
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"save: {where} has a key of type {type(k).__name__}; keys must be str or int")
        return {"__items__": [[k, _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise CheckpointError(
        f"save: {where} is a {type(obj).__name__}; only arrays, numbers, strings, lists and dicts can be saved"
    )


def _decode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__tuple__" in obj:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {k: _decode(v, arrays) for k, v in obj["__items__"]}
        return {k: _decode(v, arrays) for k, v in obj.items()}
    return obj


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # Not np.ascontiguousarray alone: it turns a 0-d array (e.g. BatchNorm's num_batches_tracked) into shape (1,).
    array = array if array.flags.c_contiguous else np.ascontiguousarray(array)
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file 0600; give it the mode open() would (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save(state: Any, path: str | os.PathLike[str] | BinaryIO, **torch_options: Any) -> None:
    """Save a nested structure of arrays, tensors, numbers, strings, lists and dicts to ``path``
    (a file name, written atomically, or a binary file object such as ``io.BytesIO``).

    A whole Module or Optimizer is refused: PyTorch pickles it, and downslope never loads pickle;
    save its ``state_dict()`` instead. PyTorch's pickle options (``pickle_module``, ...) are accepted
    and have no effect.

    Example:
        >>> import numpy as np, tempfile, os, downslope as ds
        >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.ds")
        >>> ds.save({"w": np.ones(2, np.float32), "epoch": 3}, p)
        >>> ds.load(p)["epoch"]
        3
    """
    if callable(getattr(state, "state_dict", None)):
        raise CheckpointError(
            f"save: cannot save a whole {type(state).__name__}, as that would need pickle, which downslope never "
            "loads; save its state_dict() instead and load it into a newly built object with load_state_dict()"
        )
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, arrays, "state")
    blobs = {key: _npy_bytes(arr) for key, arr in arrays.items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "tree": tree,
        "checksums": {key: _digest(blob) for key, blob in blobs.items()},
    }
    meta_bytes = json.dumps(meta, allow_nan=True).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("meta.json", meta_bytes)
        archive.writestr("meta.sha256", _digest(meta_bytes))
        for key, blob in blobs.items():
            archive.writestr(f"{key}.npy", blob)
    if hasattr(path, "write"):
        path.write(buffer.getvalue())  # type: ignore[union-attr]
        return
    atomic_write_bytes(path, buffer.getvalue())  # type: ignore[arg-type]


def load(
    path: str | os.PathLike[str] | BinaryIO,
    map_location: Any = None,
    weights_only: bool | None = None,
    **torch_options: Any,
) -> Any:
    """Load what :func:`save` wrote (from a file name or a binary file object), verifying every
    checksum. Never unpickles anything, so every load is what PyTorch calls ``weights_only``.

    ``map_location`` may name the CPU (or be a function or dict, as in PyTorch; arrays always load
    into host memory); another device is refused. PyTorch's pickle options are accepted and ignored.
    """
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        from .device import check_cpu

        check_cpu(map_location, "load(map_location=...)")
    source: Any
    if hasattr(path, "read"):
        p: Any = getattr(path, "name", None) or f"the {type(path).__name__} given"
        source = io.BytesIO(path.read())  # type: ignore[union-attr]
    else:
        p = source = Path(path)  # type: ignore[arg-type]
        if not p.is_file():
            raise CheckpointError(f"load: no checkpoint file at {p}")
    try:
        with zipfile.ZipFile(source, "r") as archive:
            names = set(archive.namelist())
            if "meta.json" not in names or "meta.sha256" not in names:
                raise CheckpointError(f"load: {p} is not a downslope checkpoint (meta.json missing)")
            meta_bytes = archive.read("meta.json")
            if archive.read("meta.sha256").decode() != _digest(meta_bytes):
                raise CheckpointError(f"load: {p} is corrupted (meta.json checksum mismatch)")
            meta = json.loads(meta_bytes)
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"load: {p} has format {meta.get('format')!r}, expected {FORMAT!r}")
            if meta.get("version") != VERSION:
                raise CheckpointError(f"load: {p} has version {meta.get('version')}, this downslope reads {VERSION}")
            arrays: dict[str, np.ndarray] = {}
            for key, digest in meta["checksums"].items():
                entry = f"{key}.npy"
                if entry not in names:
                    raise CheckpointError(f"load: {p} is truncated (array {key} missing)")
                blob = archive.read(entry)
                if _digest(blob) != digest:
                    raise CheckpointError(f"load: {p} is corrupted (checksum mismatch in array {key})")
                arrays[key] = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
            return _decode(meta["tree"], arrays)
    except CheckpointError:
        raise
    except Exception as exc:  # any parse failure of a damaged file (zipfile raises many kinds) is corruption
        raise CheckpointError(
            f"load: {p} is not a readable downslope checkpoint ({type(exc).__name__}: {exc})"
        ) from None
