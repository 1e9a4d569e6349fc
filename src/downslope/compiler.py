"""``torch.compiler``'s names, for code that asks whether it is being compiled or turns compiling off.

downslope has no compiler (``ds.compile`` wraps a model as torch's does and compiles nothing), so nothing
is ever being compiled: :func:`is_compiling` is always False and the decorators return the function they
are given, which is what PyTorch's do when the code runs eagerly.

Example:
    >>> import downslope as ds
    >>> ds.compiler.is_compiling()
    False
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "allow_in_graph",
    "assume_constant_result",
    "disable",
    "is_compiling",
    "is_dynamo_compiling",
    "reset",
]


def is_compiling() -> bool:
    """False: no code runs inside a compiler here (PyTorch's answer when it runs eagerly).

    Example:
        >>> is_compiling()
        False
    """
    return False


def is_dynamo_compiling() -> bool:
    """False, as :func:`is_compiling`.

    Example:
        >>> is_dynamo_compiling()
        False
    """
    return False


def disable(fn: Callable[..., Any] | None = None, recursive: bool = True, *, reason: str | None = None) -> Any:
    """``torch.compiler.disable``: keeps ``fn`` out of compilation; here it returns ``fn`` itself (or,
    called without one, a decorator that does), since nothing is compiled.

    Example:
        >>> @disable(recursive=False)
        ... def step(x):
        ...     return x + 1
        >>> step(1)
        2
    """
    if fn is None:
        return lambda f: f
    return fn


def allow_in_graph(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Returns ``fn`` (there is no graph to put it in).

    Example:
        >>> allow_in_graph(abs) is abs
        True
    """
    return fn


def assume_constant_result(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Returns ``fn`` (there is no graph to fold its result into).

    Example:
        >>> assume_constant_result(len) is len
        True
    """
    return fn


def reset() -> None:
    """Clears the compiler's caches: there are none here.

    Example:
        >>> reset()
    """
