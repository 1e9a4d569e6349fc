"""Checkpoint files: plain arrays plus JSON, written atomically, verified on load, never pickled.

A file is a zip archive holding ``meta.json`` (the nested structure, with arrays replaced by
references, and a SHA-256 of every array) and one ``.npy`` entry per array. Loading reads arrays with
``allow_pickle=False``, so a malicious file cannot run code, and checks every checksum, so a
truncated or corrupted file fails with a clear :class:`CheckpointError` instead of a half-loaded state.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import stat
import struct
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .devices import is_array, to_device, to_host
from .errors import CheckpointError, DataError

FORMAT = "downslope-checkpoint"
VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
# Version 1 wrote a user's dict key such as "__tuple__" verbatim, so a dict holding it came back as a
# tuple. Version 2 escapes user keys that start with "__" (one more "_" in front), so the type tags
# below are the only keys of the form "__<letter>..." and every structure round-trips exactly.
# Version 3 adds "__tensor__": a Tensor saved comes back a Tensor (as torch.load gives tensors), an
# array comes back an array.
_TAGS_V1 = ("__array__", "__tuple__", "__items__")
# Tags a version-3 file may also hold, as torch.load gives these types back: an nn.Parameter
# ("__parameter__": [array, requires_grad]), an OrderedDict ("__odict__": [[key, value], ...]) and a
# NumPy scalar ("__scalar__": [dtype name, value]); "__tensor__": [array, true] is a tensor that
# requires grad. A user key "__..." is escaped, so older version-3 files never hold them.
_TAGS = (*_TAGS_V1, "__tensor__", "__parameter__", "__odict__", "__scalar__")
# Version 4 adds "__state_dict__": [[[key, value], ...], metadata], an OrderedDict that carries a
# ``_metadata`` attribute (what Module.state_dict() records: each module's {"version": ...} by prefix),
# which torch.save keeps and a module's _load_from_state_dict reads (torchvision's MNASNet does).
_TAGS_V4 = (*_TAGS, "__state_dict__")
_SCALAR_DTYPES = frozenset(
    ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64")
)

# Limits of the reader (see docs/security.md). The total is checked against the zip's central
# directory before any member is read; each member's size is then verified while it is streamed.
MAX_TOTAL_BYTES = 64 * 2**30  # the sum of all members' sizes
MAX_META_BYTES = 64 * 2**20  # meta.json: the nested structure (parsed JSON costs up to ~30x its size)
MAX_MEMBERS = 200_000  # the zip's entries (each costs ~500 bytes to list, before any other check)
MAX_NPY_HEADER_BYTES = 65536
_CHUNK = 2**20
# dtypes an array in a checkpoint may have: plain numbers, little-endian or single-byte. Never
# object (pickle), strings, structured records, datetimes (complex numbers are plain numbers: two floats).
_ALLOWED_DTYPES = frozenset(
    np.dtype(name).newbyteorder("<") if np.dtype(name).itemsize > 1 else np.dtype(name)
    for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
    + ("float16", "float32", "float64", "complex64", "complex128")
)


def _escape(key: str) -> str:
    return "_" + key if key.startswith("__") else key


def _unescape(key: str) -> str:
    return key[1:] if key.startswith("___") else key


def encode_tree(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """``obj`` (nested dicts, lists, tuples, numbers, strings, arrays, Tensors) as a JSON-able tree.

    Each array goes into ``arrays`` under a fresh key and is replaced by ``{"__array__": key}``;
    :func:`save` writes the tree as meta.json beside the arrays, and distributed training sends
    it between ranks. ``where`` names the object in errors.

    Example:
        >>> import numpy as np
        >>> arrays = {}
        >>> tree = encode_tree({"w": np.zeros(2), "step": (3,)}, arrays, "state")
        >>> tree, list(arrays)
        ({'w': {'__array__': 'a0'}, 'step': {'__tuple__': [3]}}, ['a0'])
        >>> decode_tree(tree, arrays)["step"]
        (3,)
    """
    from .tensor import Tensor  # once per call, not per element: an import costs a lookup chain each time

    return _Encoder(arrays, Tensor).encode(obj, (where,))


# Where an element sits in the tree, as a chain ``(parent, key)`` ending in ``(root name,)``: building
# a tuple per element is cheap; the readable "state['a'][0]" string is formed only for an error message.
_Path = tuple[Any, ...]


def _path_text(path: _Path) -> str:
    keys = []
    while len(path) == 2:
        path, key = path
        keys.append(f"[{key!r}]")
    return str(path[0]) + "".join(reversed(keys))


_PLAIN = frozenset((float, int, str, bool, type(None)))  # exact types returned as they are (the common case)


def _is_parameter(obj: Any) -> bool:
    # no Parameter exists before nn is imported: saving does not import it
    module = sys.modules.get("downslope.nn.module.parameter")
    return module is not None and isinstance(obj, module.Parameter)


class _Encoder:
    """:func:`encode_tree`'s recursion, with the Tensor class looked up once."""

    def __init__(self, arrays: dict[str, np.ndarray], tensor_type: type) -> None:
        self.arrays = arrays
        self.tensor_type = tensor_type
        # one key per array object: an array (or tensor) met twice (tied weights) is stored once and both
        # places refer to it, so after load they share one array, as torch.load keeps shared storage
        self.seen: dict[int, tuple[Any, str]] = {}

    def encode(self, obj: Any, path: _Path) -> Any:
        kind = type(obj)
        if kind in _PLAIN:
            return obj
        if kind is list:
            plain = _PLAIN
            if all(type(v) in plain for v in obj):  # a list of numbers: nothing to convert
                return list(obj)
            return [self.encode(v, (path, i)) for i, v in enumerate(obj)]
        if kind is dict:
            if all(type(k) is str for k in obj):
                return {_escape(k): self.encode(v, (path, k)) for k, v in obj.items()}
            return self._dict(obj, path)
        return self._other(obj, path)

    def _dict(self, obj: dict[Any, Any], path: _Path) -> Any:
        if all(isinstance(k, str) for k in obj):  # str subclasses
            return {_escape(k): self.encode(v, (path, k)) for k, v in obj.items()}
        for k in obj:
            if not isinstance(k, (str, int)):
                raise CheckpointError(
                    f"save: {_path_text(path)} has a key of type {type(k).__name__}; keys must be str or int"
                )
        return {"__items__": [[k, self.encode(v, (path, k))] for k, v in obj.items()]}

    def _other(self, obj: Any, path: _Path) -> Any:
        if isinstance(obj, self.tensor_type):
            key = self._array(obj.array, path)["__array__"]  # type: ignore[attr-defined]
            grad = bool(obj.requires_grad)  # type: ignore[attr-defined]
            if _is_parameter(obj):  # comes back an nn.Parameter, as from torch.load
                return {"__parameter__": [key, grad]}
            return {"__tensor__": [key, True]} if grad else {"__tensor__": key}
        if isinstance(obj, np.ndarray) or is_array(obj):
            return self._array(obj, path)  # a GPU array is saved as a host array, loadable on either device
        if isinstance(obj, np.generic):
            if obj.dtype.name in _SCALAR_DTYPES:  # comes back a NumPy scalar of its dtype, as from torch.load
                return {"__scalar__": [obj.dtype.name, obj.item()]}
            return obj.item()
        if isinstance(obj, (bool, int, float, str)):  # subclasses (an IntEnum, ...)
            return obj
        if isinstance(obj, OrderedDict):  # a state_dict: comes back an OrderedDict, as from torch.load
            for k in obj:
                if not isinstance(k, (str, int)):
                    raise CheckpointError(
                        f"save: {_path_text(path)} has a key of type {type(k).__name__}; keys must be str or int"
                    )
            pairs = [[k, self.encode(v, (path, k))] for k, v in obj.items()]
            metadata = getattr(obj, "_metadata", None)
            if isinstance(metadata, dict):  # a state_dict's per-module versions, kept as torch.save keeps them
                return {"__state_dict__": [pairs, self.encode(metadata, (path, "_metadata"))]}
            return {"__odict__": pairs}
        if isinstance(obj, dict):
            return self._dict(obj, path)
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, (path, i)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, (path, i)) for i, v in enumerate(obj)]
        raise CheckpointError(
            f"save: {_path_text(path)} is a {type(obj).__name__}; only arrays, numbers, strings, lists and dicts "
            "can be saved"
        )

    def _array(self, obj: Any, path: _Path) -> dict[str, str]:
        found = self.seen.get(id(obj))
        if found is not None:
            return {"__array__": found[1]}
        original = obj  # kept alive in seen, so its id is not reused by another array while encoding
        if type(obj) is not np.ndarray and is_array(obj):
            obj = to_host(obj)
        if obj.dtype.kind not in "fiubc":
            raise CheckpointError(
                f"save: {_path_text(path)} is an array of dtype {obj.dtype}; only numeric arrays can be saved"
            )
        if obj.dtype.byteorder == ">":  # stored little-endian: the reader accepts nothing else
            obj = obj.astype(obj.dtype.newbyteorder("<"))
        key = f"a{len(self.arrays)}"
        self.arrays[key] = obj
        self.seen[id(original)] = (original, key)
        return {"__array__": key}


class _Malformed(CheckpointError):
    """meta.json's structure is not one :func:`encode_tree` can write (the message says where)."""


def decode_tree(obj: Any, arrays: dict[str, np.ndarray], version: int = VERSION, where: str = "state") -> Any:
    """The inverse of :func:`encode_tree`; ``version`` 1 reads the old, unescaped keys.

    Raises :class:`_Malformed` for a structure no writer produces (a tag with a value of the wrong
    kind, a reference to an array that is not in the file), naming where in the tree it is.
    """
    return _decode(obj, arrays, version, (where,))


def _decode(obj: Any, arrays: dict[str, np.ndarray], version: int, path: _Path) -> Any:
    kind = type(obj)
    if kind is list:
        if all(type(v) in _PLAIN for v in obj):
            return obj
        return [_decode(v, arrays, version, (path, i)) for i, v in enumerate(obj)]
    if kind is not dict:
        return obj
    tagged = next((t for t in _TAGS_V1 if t in obj), None) if version == 1 else None
    tags = _TAGS_V4 if version >= 4 else _TAGS if version >= 3 else _TAGS_V1
    if version != 1 and len(obj) == 1 and next(iter(obj)) in tags:
        tagged = next(iter(obj))
    if tagged in ("__array__", "__tensor__", "__parameter__"):
        key, grad = obj[tagged], False
        if tagged == "__parameter__" or (tagged == "__tensor__" and isinstance(key, list)):
            if not (isinstance(key, list) and len(key) == 2 and isinstance(key[1], bool)):
                raise _Malformed(f"{_path_text(path)} is a {tagged[2:-2]} that is not [array, requires_grad]")
            key, grad = key
        if not isinstance(key, str) or key not in arrays:
            raise _Malformed(f"{_path_text(path)} refers to array {key!r}, which the file does not hold")
        if tagged == "__array__":
            return arrays[key]
        return _tensor_of(arrays[key], tagged == "__parameter__", grad, path)
    if tagged == "__scalar__":
        return _scalar_of(obj[tagged], path)
    if tagged == "__state_dict__":
        entry = obj[tagged]
        if not (isinstance(entry, list) and len(entry) == 2):
            raise _Malformed(f"{_path_text(path)} is a state_dict that is not [items, metadata]")
        state = _decode({"__odict__": entry[0]}, arrays, version, path)
        metadata = _decode(entry[1], arrays, version, (path, "_metadata"))
        if not isinstance(metadata, dict):
            raise _Malformed(f"{_path_text(path)} has state_dict metadata of type {type(metadata).__name__}")
        state._metadata = metadata
        return state
    if tagged == "__odict__":
        pairs = obj[tagged]
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int)) for p in pairs
        ):
            raise _Malformed(f"{_path_text(path)} is an OrderedDict whose items are not [key, value] pairs")
        return OrderedDict((k, _decode(v, arrays, version, (path, k))) for k, v in pairs)
    if tagged == "__tuple__":
        items = obj[tagged]
        if not isinstance(items, list):
            raise _Malformed(f"{_path_text(path)} is a tuple whose items are a {type(items).__name__}, not a list")
        return tuple(_decode(v, arrays, version, (path, i)) for i, v in enumerate(items))
    if tagged == "__items__":
        pairs = obj[tagged]
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int)) for p in pairs
        ):
            raise _Malformed(
                f"{_path_text(path)} is a dict with non-string keys whose items are not [key, value] pairs"
            )
        return {k: _decode(v, arrays, version, (path, k)) for k, v in pairs}
    if version == 1:
        return {k: _decode(v, arrays, version, (path, k)) for k, v in obj.items()}
    out = {}
    for k, v in obj.items():
        if k.startswith("__") and not k.startswith("___"):
            raise _Malformed(
                f"{_path_text(path)} has the key {k!r}, which is neither a type tag alone nor an escaped key"
            )
        name = _unescape(k)
        out[name] = _decode(v, arrays, version, (path, name))
    return out


def _tensor_of(array: np.ndarray, parameter: bool, grad: bool, path: _Path) -> Any:
    """A saved tensor (or nn.Parameter) back, with the ``requires_grad`` it was saved with, as torch.load."""
    from .errors import DTypeError
    from .tensor import wrap_array

    try:
        if parameter:
            from .nn.parameter import Parameter

            return Parameter(wrap_array(array), requires_grad=grad)
        tensor = wrap_array(array)
        return tensor.requires_grad_(True) if grad else tensor
    except DTypeError:
        raise _Malformed(f"{_path_text(path)} requires grad but holds {array.dtype} data") from None


def _scalar_of(item: Any, path: _Path) -> Any:
    """A saved NumPy scalar back (``np.float32(1.5)``, not ``1.5``), as torch.load gives it."""
    if not (isinstance(item, list) and len(item) == 2 and item[0] in _SCALAR_DTYPES):
        raise _Malformed(f"{_path_text(path)} is a NumPy scalar that is not [dtype name, value]")
    name, value = item
    kind = np.dtype(name).kind
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    fits = isinstance(value, bool) if kind == "b" else number and (kind == "f" or isinstance(value, int))
    if not fits:
        raise _Malformed(f"{_path_text(path)} is a {name} scalar holding {value!r}")
    try:
        with np.errstate(over="ignore"):  # a float64 value too large for float16 becomes inf, as NumPy casts
            return np.dtype(name).type(value)
    except OverflowError:
        raise _Malformed(f"{_path_text(path)} is a {name} scalar holding {value!r}, out of its range") from None


class CheckpointFileNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist: a file to load, or the directory to save into. Also a
    FileNotFoundError, which ``torch.load`` raises for a missing file, so resume code's
    ``except FileNotFoundError:`` (start afresh) catches it, and still a CheckpointError/RuntimeError
    (``torch.save`` raises RuntimeError for a missing directory). ``filename`` names the missing path."""

    def __init__(self, message: str, filename: str) -> None:
        super().__init__(message)
        self.errno, self.filename = errno.ENOENT, filename


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy_header(array: np.ndarray) -> bytes:
    """The .npy header ``np.save`` writes before ``array``'s bytes (format 1.0, or 2.0 for a header too long)."""
    buffer = io.BytesIO()
    fields = np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(buffer, fields)
    except ValueError:  # more than 65535 bytes of header (thousands of dimensions)
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, fields)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a .npy file, as a checkpoint member holds it."""
    array = array if array.flags.c_contiguous else np.ascontiguousarray(array)
    return _npy_header(array) + array.tobytes()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def try_lock(path: str | os.PathLike[str]) -> int | None:
    """An exclusive lock on file or directory ``path`` (a descriptor to keep open; closing it unlocks),
    or None if another process holds it.

    The lock dies with its process, kill -9 included: a lock that is free belongs to nobody. Without
    fcntl (Windows) the descriptor is returned unlocked.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file_kind(mode: int) -> str:
    """What a file of ``os.stat`` mode ``mode`` is when it is not a regular file ("a named pipe (FIFO)",
    "a character device", ...); "" for a regular file.

    Example:
        >>> special_file_kind(os.stat(".").st_mode), special_file_kind(stat.S_IFREG)
        ('a directory', '')
    """
    if stat.S_ISREG(mode):
        return ""
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def read_small_file(
    path: str | os.PathLike[str], limit: int, what: str = "such a file", *, pipes: bool = False
) -> bytes:
    """The bytes of a small file (a run's status marker, a config file), at most ``limit`` of them;
    ``what`` names it in the message of a file over the limit ("a status marker").

    A path that is not a regular file is refused rather than read: a FIFO would block forever, a device
    such as /dev/zero never ends. ``pipes=True`` reads a pipe anyway (the shell's ``--config <(...)``,
    which the user passed on purpose), up to ``limit`` bytes. Raises ``ValueError`` naming the file and
    what it is, or holding more than ``limit`` bytes (a DataError, which is a ValueError); ``OSError`` when it
    cannot be opened.

    Example:
        >>> import tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "s.json")
        >>> _ = open(p, "w").write("{}")
        >>> read_small_file(p, 10)
        b'{}'
    """
    name = os.fspath(path)
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as handle:
        mode = os.fstat(fd).st_mode  # the file opened, not the name looked up before (no race)
        kind = special_file_kind(mode)
        if kind and not (pipes and stat.S_ISFIFO(mode)):
            raise DataError(f"{name}: is {kind}, not a regular file; refused (reading it may never end)")
        if kind:  # a pipe the user gave: wait for its writer as the shell's <(...) expects
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        chunks, size = [], 0
        while size <= limit and (chunk := handle.read(min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    if size > limit:
        raise DataError(f"{name}: holds more than {limit} bytes, far more than {what} holds; refused")
    return b"".join(chunks)


# The temporary name atomic_write_bytes writes under before its rename: ".<name>.<mkstemp's 8 random
# characters>.tmp" beside the target. A process killed between the two leaves one behind.
_TEMP_SUFFIX = ".tmp"
_MKSTEMP_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def is_atomic_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file name :func:`atomic_write_bytes` writes under (and leaves
    behind when its process is killed before the rename).

    Example:
        >>> is_atomic_temp_name(".checkpoint.ckpt.k3_9xq0a.tmp"), is_atomic_temp_name("notes.tmp")
        (True, False)
    """
    if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
        return False
    stem = name[1 : -len(_TEMP_SUFFIX)]
    target, dot, random = stem.rpartition(".")
    return bool(dot and target) and len(random) == 8 and set(random) <= _MKSTEMP_CHARACTERS


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never half
    (a kill -9 may leave a temporary file named as :func:`is_atomic_temp_name` tells beside it).

    ``data`` is the bytes, or a function that writes them to the (temporary) file it is given: :func:`save`
    streams a checkpoint's arrays that way instead of building the whole file in memory first.

    A symlink is followed: the new file replaces the link's target and the link stays, as ``torch.save``
    and shell redirection leave it. A path that exists and is not a regular file (a FIFO, a character
    device such as ``/dev/stdout``) is written into directly: replacing it would put a regular file in
    the place of the pipe or device every later writer expects there."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        # tested on the path as given (stat follows links): /dev/stdout links to /proc/self/fd/1, whose
        # own "target" (pipe:[...]) names nothing that can be opened
        _write_through(Path(path), data)
        return
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a later save can tell a temporary file whose writer died (kill -9)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.p{os.getpid()}.", suffix=_TEMP_SUFFIX, dir=target.parent)
    try:
        # mkstemp makes the file 0600; give it the mode open() would (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            # the bytes reach the disk before the rename publishes them: after a power loss the final
            # name holds the old file or the whole new one, never a half-written one
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # a failed write (a full disk) names no file by itself: name the one being written
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    sweep_stale_temps(target)


#: How long a dead writer's temporary file is left alone before a later save of the same target removes
#: it: a process of another pid namespace (a container sharing the volume) looks dead from here, but
#: writes its file as it goes, so one untouched this long is not being written.
STALE_TEMP_SECONDS = 3600
_PID_TEMP = re.compile(r"p([0-9]+)\.[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX))


def sweep_stale_temps(target: str | os.PathLike[str], older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Remove the temporary files that killed writes of ``target`` left beside it; the names removed.

    Only a file named exactly as :func:`atomic_write_bytes` names its temporary files for this target
    (``.<name>.p<pid>.<8 characters>.tmp``), whose writer's pid is no live process here, and that nobody
    has modified for ``older_than`` seconds. Files of older downslope versions (no pid in the name) and
    everything else are left alone. Errors are ignored: sweeping is a courtesy, never a failure of a save.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / ".w.ds.p999999999.abcd1234.tmp").write_bytes(b"half")
        >>> sweep_stale_temps(d / "w.ds", older_than=0)
        ['.w.ds.p999999999.abcd1234.tmp']
    """
    target = Path(target)
    prefix = f".{target.name}."
    removed: list[str] = []
    now = time.time()
    try:
        with os.scandir(target.parent) as entries:
            for entry in entries:
                found = _PID_TEMP.fullmatch(entry.name[len(prefix) :]) if entry.name.startswith(prefix) else None
                if found is None or not entry.is_file(follow_symlinks=False):
                    continue
                if _process_alive(int(found.group(1))) or now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                    continue
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    except OSError:
        pass
    return removed


def _process_alive(pid: int) -> bool:
    """Whether a process of ``pid`` exists here (this process counts: one of its threads may be writing)."""
    if pid == os.getpid() or os.name == "nt":  # Windows: os.kill(pid, 0) would end the process
        return True
    if pid <= 0 or pid > 2**31 - 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process: alive
        return True
    return True


def _write_through(target: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` into an existing non-regular file (a FIFO, a device) in place: there is no old file
    to keep, and a rename would replace the pipe or device itself."""
    try:
        with open(target, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        raise


def save(state: Any, path: str | os.PathLike[str] | BinaryIO, **torch_options: Any) -> None:
    """Save a nested structure of arrays, tensors, numbers, strings, lists and dicts to ``path``
    (a file name, written atomically, or a binary file object such as ``io.BytesIO``).

    A whole Module or Optimizer is refused: PyTorch pickles it, and downslope never loads pickle;
    save its ``state_dict()`` instead. PyTorch's pickle options (``pickle_module``, ...) are accepted
    and have no effect. The file's directory must exist, as in PyTorch: a missing one raises
    :class:`CheckpointFileNotFoundError` (a RuntimeError, as torch's, and a FileNotFoundError).

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
    tree = encode_tree(state, arrays, "state")

    def write(handle: BinaryIO) -> None:
        _write_archive(handle, tree, arrays)

    if hasattr(path, "write"):
        # a file object may not be seekable (a pipe): build the archive in memory, then write it whole
        buffer = io.BytesIO()
        write(buffer)
        path.write(buffer.getbuffer())
        return
    if os.path.isdir(path):  # refused here: the rename over it would name the temporary file instead
        raise CheckpointError(
            f"save: {os.fspath(path)} is a directory; give a file name such as {os.path.join(path, 'checkpoint.pt')}"
        )
    parent = Path(path).parent
    if not parent.is_dir():  # as torch.save: a mistyped directory is an error, not a new directory
        raise CheckpointFileNotFoundError(
            f"save: parent directory {parent} does not exist (as in PyTorch, save does not create it); "
            f"create it first, e.g. os.makedirs({os.fspath(parent)!r}, exist_ok=True)",
            str(parent),
        )
    atomic_write_bytes(path, write)


def _write_archive(handle: BinaryIO, tree: Any, arrays: dict[str, np.ndarray]) -> None:
    """The checkpoint of ``tree`` and ``arrays`` written to ``handle``, each array streamed from its own
    memory (no copy of the whole file in memory) and read once per block for both its SHA-256 and the
    zip's CRC-32, while the block is in the cache. The arrays come first and meta.json, which holds their
    digests, last (a reader finds the members by the zip's central directory, in any order)."""
    checksums = {}
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            # Not np.ascontiguousarray alone: it turns a 0-d array (BatchNorm's num_batches_tracked) into shape (1,).
            array = array if array.flags.c_contiguous else np.ascontiguousarray(array)
            header = _npy_header(array)
            data = memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # numpy stubs lack Buffer
            info = zipfile.ZipInfo(f"{key}.npy", date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = len(header) + len(data)  # known up front: zipfile picks zip64 from it
            hasher = hashlib.sha256(header)
            with archive.open(info, "w") as member:
                member.write(header)
                for start in range(0, len(data), _CHUNK):
                    block = data[start : start + _CHUNK]
                    hasher.update(block)
                    member.write(block)
            checksums[key] = hasher.hexdigest()
        meta = {"format": FORMAT, "version": VERSION, "tree": tree, "checksums": checksums}
        meta_bytes = json.dumps(meta, allow_nan=True).encode()
        archive.writestr("meta.json", meta_bytes)
        archive.writestr("meta.sha256", _digest(meta_bytes))


def load(
    path: str | os.PathLike[str] | BinaryIO,
    map_location: Any = None,
    weights_only: bool | None = None,
    **torch_options: Any,
) -> Any:
    """Load what :func:`save` wrote (from a file name or a binary file object), verifying every
    checksum. Never unpickles anything, so every load is what PyTorch calls ``weights_only``.

    A crafted or damaged file fails with a :class:`CheckpointError` before anything large is
    allocated: sizes are checked against the file's own size and verified while reading, and only
    plain numeric dtypes are accepted (see docs/security.md for what loading does and does not
    guarantee). Arrays load into host memory; ``map_location`` naming a device (``"cuda"``, or the
    ``"strict"`` test stand-in) copies them there, ``"cpu"`` leaves them on the host (a function or
    dict, as in PyTorch, is accepted and loads onto the host). PyTorch's pickle options are accepted
    and ignored. A missing file raises :class:`CheckpointFileNotFoundError`, which ``except
    FileNotFoundError:`` catches as it catches torch's error.
    """
    target = None
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        from .device import CPU, resolve

        target = resolve(map_location, "load(map_location=...)")
        target = None if target == CPU else target
    if hasattr(path, "read"):
        name = str(getattr(path, "name", None) or f"the {type(path).__name__} given")
        seekable = getattr(path, "seekable", lambda: False)()
        source = path if seekable else io.BytesIO(path.read())
        return _onto(_read_checkpoint(source, name), target)
    p = Path(path)
    if not p.exists():
        if os.path.islink(p):  # a link to nothing: say which (torch says "Too many levels of symbolic links")
            try:
                os.stat(p)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise CheckpointError(
                        f"load: {p} is a loop of symbolic links (too many levels of symbolic links), not a file"
                    ) from None
            raise CheckpointFileNotFoundError(
                f"load: no checkpoint file at {p} (a symbolic link to {os.readlink(p)}, which does not exist)", str(p)
            )
        raise CheckpointFileNotFoundError(f"load: no checkpoint file at {p}", str(p))
    if not p.is_file():
        kind = "directory" if p.is_dir() else "special file"
        raise CheckpointError(f"load: no checkpoint file at {p} (it is a {kind})")
    return _onto(_read_checkpoint(p, str(p)), target)


def _onto(tree: Any, target: Any, moved: dict[int, Any] | None = None) -> Any:
    """``tree`` with every array copied to the device ``target`` (unchanged when it is None: the host);
    an array the tree holds twice (tied weights) is copied once, so the copies stay shared."""
    from .tensor import Tensor, wrap_array

    if target is None:
        return tree
    moved = {} if moved is None else moved

    def device_array(array: np.ndarray) -> Any:
        if id(array) not in moved:
            moved[id(array)] = to_device(array, target)
        return moved[id(array)]

    if isinstance(tree, np.ndarray):
        return device_array(tree)
    if isinstance(tree, Tensor):
        array = wrap_array(device_array(tree.array))
        if type(tree) is not Tensor:  # an nn.Parameter stays one
            return type(tree)(array, requires_grad=tree.requires_grad)
        return array.requires_grad_(True) if tree.requires_grad else array
    if isinstance(tree, OrderedDict):
        moved_tree = OrderedDict((k, _onto(v, target, moved)) for k, v in tree.items())
        if hasattr(tree, "_metadata"):
            moved_tree._metadata = tree._metadata  # type: ignore[attr-defined]
        return moved_tree
    if isinstance(tree, dict):
        return {k: _onto(v, target, moved) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_onto(v, target, moved) for v in tree)
    return tree


def _source_size(source: Any) -> int:
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    position = source.tell()
    size = source.seek(0, io.SEEK_END)
    source.seek(position)
    return int(size)


def _read_checkpoint(source: Any, name: str) -> Any:
    """Read a checkpoint from ``source`` (a path or a seekable binary file), ``name`` for messages.

    Order of the checks, each before the step it protects: the zip's central directory (names,
    duplicates, compression, declared sizes against the file's size and :data:`MAX_TOTAL_BYTES`);
    meta.json (size, its checksum, format and version, which arrays exist); then each array's npy
    header (dtype, shape, and shape x itemsize against the member's size) before its buffer is
    allocated; its bytes are streamed into that buffer while they are hashed, and a member holding
    more or fewer bytes than declared is refused.
    """
    try:
        file_size = _source_size(source)
        _check_member_count(source, name)
        with zipfile.ZipFile(source, "r") as archive:
            infos = archive.infolist()
            _check_directory(infos, file_size, name)
            members = {info.filename: info for info in infos}
            if "meta.json" not in members or "meta.sha256" not in members:
                if any(member.endswith("data.pkl") for member in members):
                    raise CheckpointError(f"load: {name} is a PyTorch checkpoint (torch.save); {_FROM_TORCH}")
                if members and all(member.endswith(".npy") for member in members):
                    raise CheckpointError(
                        f"load: {name} is a NumPy .npz archive (arrays {', '.join(sorted(members)[:3])}"
                        f"{', ...' if len(members) > 3 else ''}), not a downslope checkpoint: read it with np.load "
                        "(ds.tensor(np.load(path)['name']))"
                    )
                raise CheckpointError(f"load: {name} is not a downslope checkpoint (meta.json missing)")
            for member, limit in (("meta.json", MAX_META_BYTES), ("meta.sha256", 64)):
                if members[member].file_size > limit:
                    raise CheckpointError(
                        f"load: {name}: {member} declares {members[member].file_size} bytes, more than the "
                        f"limit of {limit}"
                    )
            meta_bytes = _read_member(archive, members["meta.json"], name)
            if _read_member(archive, members["meta.sha256"], name).decode() != _digest(meta_bytes):
                raise CheckpointError(f"load: {name} is corrupted (meta.json checksum mismatch)")
            meta = json.loads(meta_bytes)
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                found = meta.get("format") if isinstance(meta, dict) else None
                raise CheckpointError(f"load: {name} has format {found!r}, expected {FORMAT!r}")
            version = meta.get("version")
            if type(version) is not int or version not in READABLE_VERSIONS:
                raise CheckpointError(
                    f"load: {name} has format version {version!r}; this downslope reads versions "
                    f"{', '.join(map(str, READABLE_VERSIONS))} (a newer downslope wrote it?)"
                )
            checksums = meta.get("checksums")
            if not isinstance(checksums, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in checksums.items()
            ):
                raise CheckpointError(f"load: {name}: meta.json's checksums are not a map of array name -> digest")
            expected = {"meta.json", "meta.sha256"} | {f"{key}.npy" for key in checksums}
            missing = sorted(expected - set(members))
            if missing:
                raise CheckpointError(f"load: {name} is truncated (array member(s) {missing} missing)")
            extra = sorted(set(members) - expected)
            if extra:
                raise CheckpointError(
                    f"load: {name} holds member(s) {extra[:5]} that meta.json does not list; refused "
                    f"(a downslope checkpoint holds only meta.json, meta.sha256 and its arrays)"
                )
            arrays: dict[str, np.ndarray] = {}
            # The arrays are read straight from the file (each member is stored, so its bytes are the
            # .npy file), not through zipfile's reader: its CRC-32 would hash every byte a second time
            # beside the SHA-256 checked here, and its reads copy once more.
            raw = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
            try:
                for key, digest in checksums.items():
                    arrays[key] = _read_array(raw, members[f"{key}.npy"], digest, name)
            finally:
                if raw is not source:
                    raw.close()
            return decode_tree(meta["tree"], arrays, int(version), "state")
    except _Malformed as exc:
        raise CheckpointError(f"load: {name} is malformed: {exc}") from None
    except CheckpointError:
        raise
    except Exception as exc:  # any parse failure of a damaged file (zipfile raises many kinds) is corruption
        if _starts_like_a_pickle(source):
            raise CheckpointError(
                f"load: {name} is a Python pickle (an older torch.save, or pickle.dump); {_FROM_TORCH}"
            ) from None
        if name.lower().endswith(".onnx") and not _looks_like_onnx(source, name):
            raise CheckpointError(
                f"load: {name} is not an ONNX model: its name ends in .onnx, but its bytes do not start as one "
                "(nor as a downslope checkpoint, which ds.save writes as a zip archive); is it the file you meant?"
            ) from None
        if _looks_like_onnx(source, name):
            raise CheckpointError(
                f"load: {name} is an ONNX model, not a downslope checkpoint: ONNX files are run by inference "
                "runtimes (onnxruntime); ds.load reads what ds.save wrote (and ds.load_safetensors reads weights)"
            ) from None
        safetensors_kind = _safetensors_kind(source, name)
        if safetensors_kind:
            raise CheckpointError(
                f"load: {name} is {safetensors_kind}, not a ds.save checkpoint; read it with ds.load_safetensors "
                f"(which merges the shards an index names): model.load_state_dict(ds.load_safetensors({name!r}))"
            ) from None
        if isinstance(exc, zipfile.BadZipFile) and _first_bytes(source, 4) == b"PK\x03\x04":
            # ds.save writes a zip whose directory comes last: a write cut short loses exactly that
            raise CheckpointError(
                f"load: {name} is truncated or damaged: it starts as a checkpoint (a zip archive) but its end "
                f"is missing or corrupt ({type(exc).__name__}: {exc}); was its writing interrupted or the "
                "copy incomplete? Save it again, or load an earlier copy"
            ) from None
        raise CheckpointError(
            f"load: {name} is not a readable downslope checkpoint ({type(exc).__name__}: {exc})"
        ) from None


# The fields an ONNX ModelProto starts with after its ir_version (field 1, a varint): producer_name,
# producer_version, domain, model_version, doc_string, graph, opset_import (protobuf tags).
_ONNX_NEXT_TAGS = frozenset((0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42))


def _looks_like_onnx(source: Any, name: str) -> bool:
    """Whether a file that failed to load is an ONNX model, by its first bytes (the protobuf tag of
    ir_version, a small version number, then the tag of a ModelProto field); a name ending in .onnx
    proves nothing (a text file can be named so)."""
    head = _first_bytes(source, 3)
    return head is not None and len(head) == 3 and head[0] == 0x08 and 1 <= head[1] <= 64 and head[2] in _ONNX_NEXT_TAGS


def _safetensors_kind(source: Any, name: str) -> str:
    """'a safetensors file' or 'a safetensors shard index' when ``source`` looks like one (by its name
    or its first bytes: a little-endian header length, then the JSON header), else ''."""
    if name.endswith(".safetensors.index.json"):
        return "a safetensors shard index"
    head = _first_bytes(source, 9)
    if head is None:
        return ""
    if name.endswith(".safetensors") or (len(head) == 9 and head[8:9] == b"{" and head[4:8] == b"\0\0\0\0"):
        return "a safetensors file"
    return ""


def file_kind(path: str | os.PathLike[str]) -> str:
    """What a weights or checkpoint file is, from its name and first bytes, for messages that refuse a
    file of another kind: "a ds.save checkpoint", "a torch.save checkpoint", "a Python pickle", "an ONNX
    model", "a safetensors file", "a safetensors shard index", or "" when it is none of these (or
    cannot be read). Reads at most the zip's member list; never unpickles anything.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "w.pt")
        >>> save({"w": np.ones(2, np.float32)}, p)
        >>> file_kind(p)
        'a ds.save checkpoint'
    """
    name = os.fspath(path)
    head = _first_bytes(name, 4)
    if head == _LOCAL_SIGNATURE:
        try:
            with zipfile.ZipFile(name) as archive:
                members = archive.namelist()
        except Exception:  # a damaged zip: say nothing rather than guess
            return ""
        if "meta.json" in members and "meta.sha256" in members:
            return "a ds.save checkpoint"
        if any(m.endswith("/data.pkl") or m == "data.pkl" for m in members):
            return "a torch.save checkpoint"
        return ""
    if _starts_like_a_pickle(name):
        return "a Python pickle"
    if _looks_like_onnx(name, name):
        return "an ONNX model"
    return _safetensors_kind(name, name)


def _first_bytes(source: Any, count: int) -> bytes | None:
    """Up to ``count`` bytes from the start of a path or a seekable file object, to tell what kind of
    file a checkpoint that failed to load is; None when it cannot be read (the caller then names no
    kind rather than raise over the original failure)."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                return handle.read(count)
        source.seek(0)
        return source.read(count)
    except Exception:
        return None


_FROM_TORCH = (
    "downslope never unpickles (loading a pickle can run any code). In PyTorch, save the weights with "
    "safetensors.torch.save_file(model.state_dict(), 'model.safetensors'), then here "
    "model.load_state_dict(ds.load_safetensors('model.safetensors'))"
)


def _starts_like_a_pickle(source: Any) -> bool:
    """Whether the file starts with a pickle's protocol marker (read without unpickling anything)."""
    head = _first_bytes(source, 2)
    return head is not None and len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _check_member_count(source: Any, name: str) -> None:
    """Refuse a zip announcing more than :data:`MAX_MEMBERS` entries before zipfile lists them all.

    Reads only the end-of-central-directory record (zipfile's own reader of it, which handles zip64).
    """
    opened = open(source, "rb") if isinstance(source, (str, os.PathLike)) else None
    handle = opened if opened is not None else source
    try:
        position = handle.tell()
        end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]
        handle.seek(position)
    finally:
        if opened is not None:
            opened.close()
    count = int(end[zipfile._ECD_ENTRIES_TOTAL]) if end is not None else 0  # type: ignore[attr-defined]
    if count > MAX_MEMBERS:
        raise CheckpointError(
            f"load: {name} announces {count} members, more than the limit of {MAX_MEMBERS}; refused before listing them"
        )


def _check_directory(infos: list[zipfile.ZipInfo], file_size: int, name: str) -> None:
    """Refuse, from the central directory alone, what could cost memory or time before reading."""
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise CheckpointError(f"load: {name} holds duplicate member(s) {duplicated[:5]}; refused")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"load: {name}: member {info.filename!r} is compressed (zip method {info.compress_type}); "
                f"downslope checkpoints store every member uncompressed, so this file was not written by ds.save"
            )
        if info.compress_size != info.file_size:
            raise CheckpointError(
                f"load: {name}: member {info.filename!r} declares {info.file_size} bytes stored in "
                f"{info.compress_size}; an uncompressed member must have equal sizes (lying zip header)"
            )
        total += info.file_size
    # Uncompressed members cannot hold more than the file itself: this bounds all that follows.
    if total > file_size or total > MAX_TOTAL_BYTES:
        raise CheckpointError(
            f"load: {name}: its members declare {total} bytes in all, but the file has {file_size} bytes "
            f"(limit {MAX_TOTAL_BYTES}); refused before reading (lying zip headers or overlapping members)"
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A small member's bytes, verified to be exactly as many as the central directory declares."""
    with archive.open(info) as handle:
        data = handle.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise CheckpointError(
            f"load: {name}: member {info.filename!r} holds {len(data)} bytes, its header declares {info.file_size}"
        )
    return data


# A zip member's local header (the zip format's layout, as zipfile reads it): the fields
# _member_data_start reads.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_LOCAL_FLAGS, _LOCAL_NAME_LENGTH, _LOCAL_EXTRA_LENGTH = 3, 10, 11
_ENCRYPTED, _UTF8_NAME = 0x1, 0x800


def _member_data_start(handle: Any, info: zipfile.ZipInfo, where: str) -> int:
    """Where the stored bytes of member ``info`` start in ``handle``, after its local header (checked as
    zipfile checks it: signature, no encryption, the central directory's name)."""
    handle.seek(info.header_offset)
    fixed = _read_exactly(handle, _LOCAL_HEADER.size)
    if len(fixed) != _LOCAL_HEADER.size:
        raise CheckpointError(f"{where}: the file ends inside its local header")
    fields = _LOCAL_HEADER.unpack(fixed)
    if fields[0] != _LOCAL_SIGNATURE:
        raise CheckpointError(f"{where}: its local header has no zip signature (expected {_LOCAL_SIGNATURE!r})")
    if fields[_LOCAL_FLAGS] & _ENCRYPTED:
        raise CheckpointError(f"{where} is encrypted; downslope checkpoints are never encrypted")
    raw_name = _read_exactly(handle, fields[_LOCAL_NAME_LENGTH])
    local_name = raw_name.decode("utf-8" if fields[_LOCAL_FLAGS] & _UTF8_NAME else "cp437", errors="replace")
    if local_name != info.orig_filename:
        raise CheckpointError(f"{where}: its local header names {local_name!r} (zip headers disagree)")
    return int(info.header_offset + _LOCAL_HEADER.size + fields[_LOCAL_NAME_LENGTH] + fields[_LOCAL_EXTRA_LENGTH])


def _read_exactly(handle: Any, count: int) -> bytes:
    """``count`` bytes from ``handle``, fewer only where the file ends (a raw file may return less)."""
    data = handle.read(count)
    while len(data) < count:
        more = handle.read(count - len(data))
        if not more:
            break
        data += more
    return bytes(data)


def _read_array(handle: Any, info: zipfile.ZipInfo, digest: str, name: str) -> np.ndarray:
    """Array member ``info`` of the checkpoint open as ``handle``: its .npy header checked before its
    buffer is allocated, then its bytes read into that buffer block by block, each block hashed while
    it is in the cache, and the SHA-256 compared with meta.json's."""
    where = f"load: {name}: array member {info.filename!r}"
    handle.seek(_member_data_start(handle, info, where))
    hasher = hashlib.sha256()
    head = _read_exactly(handle, min(info.file_size, MAX_NPY_HEADER_BYTES))
    stream = io.BytesIO(head)
    try:
        major, _minor = np.lib.format.read_magic(stream)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = reader(stream, max_header_size=MAX_NPY_HEADER_BYTES)
    except Exception as exc:  # a malformed header (numpy raises ValueError with its reason)
        raise CheckpointError(f"{where} has no valid .npy header ({exc})") from None
    if dtype not in _ALLOWED_DTYPES:
        raise CheckpointError(
            f"{where} has dtype {dtype.str!r}; a checkpoint holds only bool, integer, float and complex arrays "
            f"(little-endian), never object arrays (pickle), string or record arrays"
        )
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CheckpointError(f"{where} declares the shape {shape!r}")
    header_len = stream.tell()
    count = math.prod(shape)
    if header_len + count * dtype.itemsize != info.file_size:
        raise CheckpointError(
            f"{where} declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes), but the member "
            f"holds {info.file_size - header_len} bytes of data; refused before allocating"
        )
    if len(head) < min(info.file_size, MAX_NPY_HEADER_BYTES):
        raise CheckpointError(f"{where} ends after {len(head)} of {info.file_size} bytes")
    hasher.update(head)
    flat = np.empty(count, dtype=dtype)
    view = memoryview(flat.view(np.uint8))  # type: ignore[arg-type]  # numpy stubs lack Buffer
    filled = len(head) - header_len
    view[:filled] = head[header_len:]
    readinto = getattr(handle, "readinto", None)
    while filled < len(view):
        block = view[filled : filled + _CHUNK]
        if readinto is not None:
            got = readinto(block)
        else:  # a file object without readinto
            data = handle.read(len(block))
            got = len(data)
            block[:got] = data
        if not got:
            raise CheckpointError(f"{where} ends after {header_len + filled} of {info.file_size} bytes")
        hasher.update(block[:got])
        filled += got
    if hasher.hexdigest() != digest:
        raise CheckpointError(f"load: {name} is corrupted (checksum mismatch in {info.filename})")
    return flat.reshape(shape, order="F" if fortran_order else "C")


# torch.serialization's allow-list for weights_only unpickling. downslope never unpickles (every load
# is weights-only by construction), so the list is kept for code that reads it back and changes nothing.
_safe_globals: dict[Any, None] = {}  # a set, as PyTorch's, kept in the order given


def add_safe_globals(safe_globals: list[Any]) -> None:
    """``torch.serialization.add_safe_globals``: accepted and recorded (see :func:`get_safe_globals`);
    loading here never unpickles, so no class needs to be allowed.

    Example:
        >>> add_safe_globals([OrderedDict]); get_safe_globals()
        [<class 'collections.OrderedDict'>]
        >>> clear_safe_globals()
    """
    if not isinstance(safe_globals, list):
        raise CheckpointError(f"add_safe_globals: expected a list, got {type(safe_globals).__name__}")
    _safe_globals.update(dict.fromkeys(safe_globals))


def get_safe_globals() -> list[Any]:
    """The globals given to :func:`add_safe_globals` (and open :class:`safe_globals` blocks).

    Example:
        >>> get_safe_globals()
        []
    """
    return list(_safe_globals)


def clear_safe_globals() -> None:
    """Forget every global given to :func:`add_safe_globals`.

    Example:
        >>> clear_safe_globals()
    """
    _safe_globals.clear()


class safe_globals:  # noqa: N801  (PyTorch's name, a context manager)
    """``torch.serialization.safe_globals([...])``: within the block the globals are recorded as allowed
    (and removed on exit), as in PyTorch; loading here never unpickles, so they change nothing.

    Example:
        >>> with safe_globals([OrderedDict]):
        ...     len(get_safe_globals())
        1
    """

    def __init__(self, safe_globals: list[Any]) -> None:
        self.safe_globals = safe_globals

    def __enter__(self) -> None:
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc: object) -> None:
        for item in self.safe_globals:
            _safe_globals.pop(item, None)
