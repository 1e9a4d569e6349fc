"""Replays on CuPy's own API every call that the strict stand-in received (a measuring tool).

The strict stand-in mimics CuPy's rules, and lists the names CuPy has (``_cupy_names.py``), but it
cannot know every argument CuPy refuses (an unsupported keyword, a dtype ``cupy.add.at`` does not
take). This tool closes that gap without a GPU: CuPy imports without one, and its arrays can be
made over a placeholder device address. A call that CuPy's API accepts then fails only when it
reaches the missing device (a CUDA error: counted as accepted); one that CuPy refuses raises first,
and is listed with the line of downslope's code that made it.

1. Record (loaded as a pytest plugin, next to strict_everywhere):

       PYTHONPATH=$PWD/src:$PWD/tests/devices CUPY_RECORD=/tmp/calls.json python -m pytest \\
           -p strict_everywhere -p cupy_replay -m "not slow" tests/nn tests/ops tests/optim ...

2. Replay (needs ``pip install cupy-cuda12x``; no GPU):

       python tests/devices/cupy_replay.py /tmp/calls.json

Errors that tests provoke on purpose (an index out of range) are listed too; read the lines.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import traceback
from collections import defaultdict
from typing import Any

import numpy as np

# ---------------------------------------------------------------------- recording (the pytest plugin)
_CALLS: dict[str, dict[str, Any]] = {}


def _describe(o: Any) -> Any:
    """A JSON description of an argument that the replay can rebuild."""
    from downslope.devices.strict import StrictArray

    if isinstance(o, StrictArray):
        return ["device", list(o._a.shape), o._a.dtype.str, list(o._a.strides)]
    if isinstance(o, np.ndarray):
        return ["host", list(o.shape), o.dtype.str, o.tolist() if o.size <= 64 else None]
    if isinstance(o, np.generic):
        return ["scalar", o.dtype.str, o.item()]
    if o is None or isinstance(o, (bool, int, float, str)):
        return ["value", o]
    if isinstance(o, (tuple, list)):
        return ["tuple" if isinstance(o, tuple) else "list", [_describe(x) for x in o]]
    if isinstance(o, dict):
        return ["dict", {k: _describe(v) for k, v in o.items()}]
    if isinstance(o, slice):
        return ["slice", *[None if x is None else int(x) for x in (o.start, o.stop, o.step)]]
    if o is Ellipsis:
        return ["ellipsis"]
    if isinstance(o, np.dtype) or (isinstance(o, type) and issubclass(o, np.generic)):
        return ["dtype", np.dtype(o).str]
    if o in (bool, int, float):
        return ["type", o.__name__]
    if isinstance(o, range):
        return ["range", [o.start, o.stop, o.step]]
    return ["unknown", type(o).__name__]


def _kind_of(d: Any) -> Any:
    """The description without sizes and values: one recorded example per kind of call."""
    if d[0] in ("device", "host"):
        return [d[0], len(d[1]), d[2]]
    if d[0] == "scalar":
        return d[:2]
    if d[0] == "value":
        return d if isinstance(d[1], str) else ["value", type(d[1]).__name__]
    if d[0] in ("tuple", "list"):
        return [d[0], [_kind_of(x) for x in d[1]]]
    if d[0] == "dict":
        return ["dict", {k: _kind_of(v) for k, v in d[1].items()}]
    return d


def _record(kind: str, name: str, args: Any, kwargs: Any) -> None:
    try:
        described = [_describe(args), _describe(kwargs)]
    except Exception:  # an argument that cannot be described is not worth failing a test for
        return
    key = json.dumps([kind, name, _kind_of(described[0]), _kind_of(described[1])], sort_keys=True)
    if key not in _CALLS:
        frames = [f for f in traceback.extract_stack() if "/downslope/" in f.filename and "/devices/" not in f.filename]
        where = f"{frames[-1].filename.split('/downslope/')[-1]}:{frames[-1].lineno}" if frames else "a test"
        _CALLS[key] = {"kind": kind, "name": name, "args": described[0], "kwargs": described[1], "where": where}


def pytest_configure(config: Any) -> None:
    from downslope.devices import strict

    cls = strict.StrictArray
    ufunc, function, attribute = cls.__array_ufunc__, cls.__array_function__, cls.__getattr__
    getitem, setitem = cls.__getitem__, cls.__setitem__

    def array_ufunc(self: Any, u: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _record("ufunc", f"{u.__name__}.{method}", inputs, kwargs)
        return ufunc(self, u, method, *inputs, **kwargs)

    def array_function(self: Any, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        _record("function", f"{func.__module__}.{func.__name__}", args, kwargs)
        return function(self, func, types_, args, kwargs)

    def method(self: Any, name: str) -> Any:
        found = attribute(self, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            _record("method", name, (self, *args), kwargs)
            return found(*args, **kwargs)

        return call

    def get(self: Any, key: Any) -> Any:
        _record("getitem", "", (self, key), {})
        return getitem(self, key)

    def put(self: Any, key: Any, value: Any) -> None:
        _record("setitem", "", (self, key, value), {})
        setitem(self, key, value)

    cls.__array_ufunc__, cls.__array_function__, cls.__getattr__ = array_ufunc, array_function, method
    cls.__getitem__, cls.__setitem__ = get, put
    for name in ("zeros", "empty", "ones", "full", "arange", "eye", "linspace", "asarray", "array"):
        creator = getattr(strict, name)

        def create(*args: Any, _creator: Any = creator, _name: str = name, **kwargs: Any) -> Any:
            _record("namespace", _name, args, kwargs)
            return _creator(*args, **kwargs)

        setattr(strict, name, create)
    path = os.environ.get("CUPY_RECORD", "cupy_calls.json")
    atexit.register(lambda: json.dump(list(_CALLS.values()), open(path, "w")))


# ---------------------------------------------------------------------- replaying (needs CuPy, not a GPU)
def _rebuild(d: Any) -> Any:
    import cupy
    from cupy.cuda import memory

    kind = d[0]
    if kind == "device":  # a CuPy array over a placeholder address: its metadata is real, its memory is not
        placeholder = memory.MemoryPointer(memory.UnownedMemory(1 << 40, 1 << 30, None, device_id=0), 0)
        strides = tuple(d[3]) if all(s >= 0 for s in d[3]) else None
        return cupy.ndarray(tuple(d[1]), dtype=np.dtype(d[2]), memptr=placeholder, strides=strides)
    if kind == "host":
        return np.zeros(d[1], d[2]) if d[3] is None else np.array(d[3], dtype=d[2]).reshape(d[1])
    if kind == "scalar":
        return np.dtype(d[1]).type(d[2])
    if kind == "value":
        return d[1]
    if kind in ("tuple", "list"):
        items = [_rebuild(x) for x in d[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: _rebuild(v) for k, v in d[1].items()}
    if kind == "slice":
        return slice(*d[1:])
    if kind == "ellipsis":
        return Ellipsis
    if kind == "dtype":
        return np.dtype(d[1])
    if kind == "type":
        return {"bool": bool, "int": int, "float": float}[d[1]]
    if kind == "range":
        return range(*d[1])
    raise ValueError(f"cannot rebuild an argument of kind {d}")


def _replay(call: dict[str, Any]) -> None:
    import cupy

    args, kwargs = _rebuild(call["args"]), _rebuild(call["kwargs"])
    kind, name = call["kind"], call["name"]
    if kind == "ufunc":
        ufunc, method = name.split(".")
        target = getattr(np, ufunc)
        (target if method == "__call__" else getattr(target, method))(*args, **kwargs)
    elif kind == "function":
        functools.reduce(getattr, name.split(".")[1:], np)(*args, **kwargs)
    elif kind == "method":
        getattr(args[0], name)(*args[1:], **kwargs)
    elif kind == "getitem":
        args[0][args[1]]  # noqa: B018
    elif kind == "setitem":
        args[0][args[1]] = args[2]
    elif kind == "namespace":
        getattr(cupy, name)(*args, **kwargs)


def _reached_the_device(exc: Exception) -> bool:
    """An error raised only because there is no GPU: the call got past CuPy's checks of its arguments."""
    module = type(exc).__module__ or ""
    return (
        "cuda" in module.lower() or "cupy_backends" in module or (isinstance(exc, ImportError) and "libcu" in str(exc))
    )


def main(path: str) -> int:
    calls = json.load(open(path))
    refused: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for call in calls:
        try:
            _replay(call)
        except Exception as exc:
            if not _reached_the_device(exc):
                refused[(call["kind"], call["name"], f"{type(exc).__name__}: {str(exc)[:160]}")].append(call["where"])
    for (kind, name, error), where in sorted(refused.items()):
        print(f"{kind} {name}: {error}\n    at {', '.join(sorted(set(where))[:4])}")
    print(f"{len(calls)} kinds of call replayed on CuPy's API; {sum(map(len, refused.values()))} refused")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "cupy_calls.json"))
