"""downslope.errors: every error type derives from a built-in, and the package raises no bare built-in
ValueError/TypeError/IndexError/RuntimeError/KeyError on purpose."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import downslope as ds
from downslope import errors
from downslope.errors import DownslopeError, StateDictError

PACKAGE = Path(ds.__file__).parent
# Built-ins that must be raised as one of downslope's subclasses. Left out on purpose: AttributeError
# (the attribute protocol), NotImplementedError, ImportError and OSError subclasses.
CONVERTED = {"ValueError", "TypeError", "IndexError", "RuntimeError", "KeyError"}
ERROR_TYPES = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, DownslopeError)]


@pytest.mark.parametrize("cls", [c for c in ERROR_TYPES if c is not DownslopeError], ids=lambda c: c.__name__)
def test_each_error_type_is_also_a_builtin(cls):
    builtins = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]
    assert builtins, f"{cls.__name__} derives from no built-in exception besides Exception"


def _builtin_raises(source: str) -> list[tuple[int, str]]:
    """(line, name) of each `raise ValueError(...)` / `raise KeyError` style statement in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in CONVERTED:
                found.append((node.lineno, target.id))
    return sorted(found)


def test_no_bare_builtin_raises_in_package():
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: raise {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in _builtin_raises(path.read_text())
    ]
    assert not found, "use the matching downslope.errors type:\n" + "\n".join(found)


def test_scan_finds_builtin_raises():
    # The scan above can fail: it spots a bare built-in raise with or without a call, and lets the
    # library's own types and the protocol ones (AttributeError) through.
    source = (
        "def f(x):\n"
        "    if x == 1:\n        raise ValueError('x')\n"
        "    if x == 2:\n        raise ShapeError('x')\n"
        "    if x == 3:\n        raise AttributeError('x')\n"
        "    raise KeyError\n"
    )
    assert _builtin_raises(source) == [(3, "ValueError"), (8, "KeyError")]


def test_state_dict_error_message_is_not_quoted():
    exc = StateDictError("missing key 'bias'")
    assert str(exc) == "missing key 'bias'"
    assert isinstance(exc, KeyError)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.zeros(3).gather(0, m.tensor([5])),  # torch: RuntimeError
        lambda m: m.zeros(3).scatter(0, m.tensor([5]), 1.0),  # torch: RuntimeError
        lambda m: m.zeros(3, 4).index_select(0, m.tensor([7])),  # torch: IndexError
        lambda m: m.zeros(3).narrow(0, 2, 5),  # torch: RuntimeError
    ],
    ids=["gather", "scatter", "index_select", "narrow"],
)
def test_out_of_range_is_caught_by_the_class_torch_raises(call):
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception) as torch_error:
        call(torch)
    torch_class = next(c for c in (IndexError, RuntimeError) if isinstance(torch_error.value, c))
    with pytest.raises(torch_class):
        call(ds)


def test_truncated_checkpoint_is_caught_as_torch_load_raises(tmp_path):
    torch = pytest.importorskip("torch")
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    with pytest.raises(RuntimeError):  # what torch.load raises for a cut-off file
        torch.load(io.BytesIO(buffer.getvalue()[:100]))
    path = tmp_path / "ckpt.ds"
    ds.save({"w": ds.zeros(3)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RuntimeError):
        ds.load(path)
