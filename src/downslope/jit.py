"""``torch.jit``'s markers that model code calls outside TorchScript: ``is_scripting()``,
``is_tracing()`` and the decorators ``ignore``, ``unused`` and ``export``; ``script`` and ``trace``,
which hand back what they are given; ``save`` and ``load``, which refuse.

downslope has no TorchScript: nothing is ever scripted or traced, and the decorators return the
function they mark, as PyTorch's do when the code runs eagerly. ``script(m)`` and ``trace(m, x)``
return ``m`` itself (``trace`` runs it once on ``x``, so a model that cannot run fails there as
torch's does), with a one-time warning that the result runs eagerly; there is no TorchScript
archive to ``save`` or ``load`` (``ds.save(model.state_dict(), f)`` or ``ds.onnx.export`` write
a model out).

Example:
    >>> import downslope as ds
    >>> ds.jit.is_scripting(), ds.jit.is_tracing()
    (False, False)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import StateError

__all__ = ["export", "ignore", "is_scripting", "is_tracing", "load", "save", "script", "trace", "unused"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_warned: set[str] = set()  # the names whose "runs eagerly" warning was given (once per process each)


def _warn_eager(name: str) -> None:
    if name not in _warned:
        _warned.add(name)
        warnings.warn(
            f"downslope.jit.{name}: downslope has no TorchScript; the model or function is returned unchanged "
            "and runs eagerly (its results are the same; nothing is compiled)",
            UserWarning,
            stacklevel=3,
        )


def is_scripting() -> bool:
    """False: code here never runs as TorchScript.

    Example:
        >>> is_scripting()
        False
    """
    return False


def is_tracing() -> bool:
    """False: code here is never being traced.

    Example:
        >>> is_tracing()
        False
    """
    return False


def ignore(drop: Any = False, **kwargs: Any) -> Any:
    """``@torch.jit.ignore`` or ``@torch.jit.ignore(drop=...)``: returns the function unchanged.

    Example:
        >>> @ignore
        ... def helper(x):
        ...     return x
        >>> helper(3)
        3
    """
    if callable(drop):
        return drop
    if not isinstance(drop, bool):
        raise StateError(
            f"Argument to @torch.jit.ignore must be a bool or a function but got {drop}"
        )  # torch: RuntimeError
    return lambda fn: fn


def unused(fn: F) -> F:
    """``@torch.jit.unused``: returns ``fn`` (a method or property) unchanged.

    Example:
        >>> unused(len) is len
        True
    """
    return fn


def export(fn: F) -> F:
    """``@torch.jit.export``: returns ``fn`` unchanged.

    Example:
        >>> export(len) is len
        True
    """
    return fn


def script(obj: T, optimize: Any = None, _frames_up: int = 0, _rcb: Any = None, example_inputs: Any = None) -> T:
    """``torch.jit.script(module_or_fn)``: returns ``obj`` unchanged (warning once that it runs eagerly).

    Example:
        >>> import warnings; warnings.simplefilter("ignore")
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> script(layer) is layer
        True
    """
    _warn_eager("script")
    return obj


def trace(
    func: T,
    example_inputs: Any = None,
    optimize: Any = None,
    check_trace: bool = True,
    check_inputs: Any = None,
    check_tolerance: float = 1e-5,
    strict: bool = True,
    _force_outplace: bool = False,
    _module_class: Any = None,
    _compilation_unit: Any = None,
    example_kwarg_inputs: Any = None,
    _store_inputs: bool = True,
) -> T:
    """``torch.jit.trace(module_or_fn, example_inputs)``: runs ``func`` once on the example (a tensor, or
    a tuple of positional arguments; ``example_kwarg_inputs`` a dict of keyword ones), without
    recording gradients, and returns ``func`` unchanged (warning once that it runs eagerly).

    Example:
        >>> import warnings; warnings.simplefilter("ignore")
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> trace(layer, ds.ones(3, 2)) is layer
        True
    """
    from .graph import no_grad

    if not callable(func):
        from .errors import ArgumentTypeError

        raise ArgumentTypeError(f"jit.trace: expected a Module or a function to trace, got {type(func).__name__}")
    _warn_eager("trace")
    args = () if example_inputs is None else example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    with no_grad():
        func(*args, **(example_kwarg_inputs or {}))
    return func


_NO_ARCHIVE = (
    "downslope has no TorchScript, so there is no TorchScript archive to {what}; save the weights with "
    "ds.save(model.state_dict(), path) (and load them into the model's class with ds.load and "
    "model.load_state_dict), or write the model as ONNX with ds.onnx.export(model, example, path)"
)


def save(m: Any, f: Any, _extra_files: Any = None) -> None:
    """``torch.jit.save``: refused (there is no TorchScript archive); the error names what to use instead.

    Example:
        >>> import downslope as ds
        >>> try:
        ...     save(ds.nn.Linear(2, 1), "model.pt")
        ... except RuntimeError as e:
        ...     print(str(e)[:52])
        jit.save: downslope has no TorchScript, so there is
    """
    raise StateError(f"jit.save: {_NO_ARCHIVE.format(what='write')}")


def load(f: Any, map_location: Any = None, _extra_files: Any = None, _restore_shapes: bool = False) -> Any:
    """``torch.jit.load``: refused (there is no TorchScript archive); the error names what to use instead."""
    raise StateError(f"jit.load: {_NO_ARCHIVE.format(what='read')}")
