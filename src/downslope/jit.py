"""``torch.jit``'s markers that model code calls outside TorchScript: ``is_scripting()``,
``is_tracing()`` and the decorators ``ignore``, ``unused`` and ``export``.

downslope has no TorchScript: nothing is ever scripted or traced, and the decorators return the
function they mark, as PyTorch's do when the code runs eagerly.

Example:
    >>> import downslope as ds
    >>> ds.jit.is_scripting(), ds.jit.is_tracing()
    (False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .errors import StateError

__all__ = ["export", "ignore", "is_scripting", "is_tracing", "unused"]

F = TypeVar("F", bound=Callable[..., Any])


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
