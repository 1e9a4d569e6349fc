"""``torch.fx.wrap``, which model code calls at module level to keep a function a leaf of symbolic
tracing: downslope has no symbolic tracer, so it returns its argument (a function or a name), as
PyTorch's does. The tracer's names (``symbolic_trace``, ``GraphModule``, ``torch.fx.graph_module``...)
raise with the reason and the alternative (forward hooks).

Example:
    >>> import downslope as ds
    >>> ds.fx.wrap("len")
    'len'
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["wrap"]


def __getattr__(name: str) -> Any:
    """torch.fx's tracer names (symbolic_trace, GraphModule...) say why they are missing and what to use."""
    from ._unsupported import missing_module_attribute

    missing_module_attribute(name, "torch.fx")


def wrap(fn_or_name: str | Callable[..., Any]) -> str | Callable[..., Any]:
    """Returns ``fn_or_name`` (a global function or its name). As in PyTorch, anything else is refused, and
    so is a call from inside a function (it must run at the top level of a module).

    Example:
        >>> wrap(len) is len
        True
    """
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise AssertionError(f"fn_or_name must be a global function or string name, got {type(fn_or_name)}")
    if sys._getframe(1).f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    return fn_or_name
