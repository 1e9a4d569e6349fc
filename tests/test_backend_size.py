"""``downslope.Size`` against ``torch.Size`` (torch 2.13, CPU): construction and its checks, the tuple
operations that keep the type, printing, pickling, and ``numel``/``count``/``index``."""

from __future__ import annotations

import copy
import operator
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _outcome(make: Callable[[Any], Any], lib: Any) -> Any:
    """What ``make(lib)`` gives as (type name, tuple or text), or the exception's class family."""
    try:
        got = make(lib)
    except ValueError:
        return ("ValueError",)
    except TypeError as exc:
        return ("TypeError", str(exc).replace("torch.Size()", "Size()"))
    if isinstance(got, tuple):
        return ("Size" if isinstance(got, lib.Size) else "tuple", tuple(got))
    return (type(got).__name__, got)


CONSTRUCTIONS: dict[str, Callable[[Any], Any]] = {
    "empty": lambda L: L.Size(),
    "list": lambda L: L.Size([2, 3]),
    "tuple": lambda L: L.Size((2, 3)),
    "negative": lambda L: L.Size([-1, 2]),  # torch keeps it (a view's -1 reads from a Size too)
    "bool": lambda L: L.Size([True, 2]),
    "numpy int": lambda L: L.Size([np.int32(2), np.int64(3)]),
    "0-d array": lambda L: L.Size([np.array(3)]),
    "int tensor": lambda L: L.Size([L.tensor(3)]),
    "dict keys": lambda L: L.Size({2: "a", 3: "b"}),
    "iterator": lambda L: L.Size(iter([4, 5])),
    "another Size": lambda L: L.Size(L.Size([4, 5])),
    "float": lambda L: L.Size([2.5]),
    "numpy float": lambda L: L.Size([np.float32(2)]),
    "string": lambda L: L.Size("ab"),
    "None": lambda L: L.Size([1, None]),
    "1-d array": lambda L: L.Size([np.array([3])]),
    "float tensor": lambda L: L.Size([L.tensor(3.0)]),
    "not iterable": lambda L: L.Size(5),
    "past int64": lambda L: L.Size([2**70]),  # kept: a tensor of that size is what fails
}


@pytest.mark.parametrize("name", list(CONSTRUCTIONS))
def test_size_construction_as_torch(name: str) -> None:
    make = CONSTRUCTIONS[name]
    ours, theirs = _outcome(make, ds), _outcome(make, torch)
    if theirs[0] == "TypeError" and "iterable of 'int'" in theirs[1]:
        assert ours == theirs  # the same words, naming the item and its type
    elif theirs[0] == "TypeError":
        assert ours[0] == "TypeError"
    else:
        assert ours == theirs


OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "add tuple": lambda s: s + (4,),
    "radd tuple": lambda s: (4,) + s,
    "add Size": lambda s: s + s,
    "add empty": lambda s: s + (),
    "slice": lambda s: s[1:],
    "empty slice": lambda s: s[0:0],
    "step slice": lambda s: s[::-1],
    "mul": lambda s: s * 2,
    "rmul": lambda s: 2 * s,
    "index": lambda s: s[0],
    "negative index": lambda s: s[-1],
    "numpy index": lambda s: s[np.int64(1)],
    "numel": lambda s: s.numel(),
    "count": lambda s: s.count(3),
    "index of": lambda s: s.index(3),
    "len": len,
    "eq tuple": lambda s: s == (2, 3, 4),
    "ne list": lambda s: s != [2, 3, 4],
    "lt": lambda s: s < (3,),
    "hash": lambda s: hash(s) == hash((2, 3, 4)),
    "dict key": lambda s: {(2, 3, 4): "found"}[s],
    "unpack": lambda s: tuple([*s]),
    "reversed": lambda s: list(reversed(s)),
    "max": max,
    "in": lambda s: 3 in s,
    "repr": lambda s: repr(s).replace("torch.", "downslope."),
    "str": lambda s: str(s).replace("torch.", "downslope."),
    "format": lambda s: f"{s}".replace("torch.", "downslope."),
    "pickle": lambda s: pickle.loads(pickle.dumps(s)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
    "reduce": lambda s: s.__reduce__()[1],
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_size_operations_as_torch(name: str) -> None:
    op = OPERATIONS[name]
    ours, theirs = ds.Size([2, 3, 4]), torch.Size([2, 3, 4])
    got, want = op(ours), op(theirs)
    assert type(got).__name__ == type(want).__name__
    assert (tuple(got) if isinstance(got, tuple) else got) == (tuple(want) if isinstance(want, tuple) else want)


@pytest.mark.parametrize(
    "op",
    [
        lambda s: s + [4],  # noqa: RUF005
        lambda s: [4] + s,  # noqa: RUF005
        lambda s: s * [1],
        lambda s: s[1.0],
        lambda s: s.index(7),
        lambda s: s[5],
    ],
)
def test_size_refuses_what_torch_refuses(op: Callable[[Any], Any]) -> None:
    with pytest.raises(Exception) as theirs:
        op(torch.Size([2, 3]))
    with pytest.raises(theirs.type):
        op(ds.Size([2, 3]))


def test_size_reprs_name_the_library() -> None:
    assert repr(ds.Size([2, 3])) == str(ds.Size([2, 3])) == "downslope.Size([2, 3])"
    assert repr(ds.Size()) == "downslope.Size([])"
    assert repr(ds.Size([2, 3])[1:]) == "downslope.Size([3])"


def test_size_ops_return_exact_types() -> None:
    s = ds.Size([2, 3])
    assert type(s[0]) is int and type(s.numel()) is int
    assert all(type(v) is ds.Size for v in (s[:1], s + (1,), (1,) + s, s * 2, 2 * s, copy.copy(s)))
    assert operator.index(s[1]) == 3
