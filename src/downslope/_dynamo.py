"""``torch._dynamo``'s names that training code calls (``reset()`` between runs, ``is_compiling()``,
``config`` switches, ``disable``): downslope compiles nothing, so they are the eager answers.

Example:
    >>> import downslope as ds
    >>> ds._dynamo.reset()
    >>> ds._dynamo.is_compiling()
    False
"""

from __future__ import annotations

from types import SimpleNamespace

from .compiler import allow_in_graph, assume_constant_result, disable, is_compiling, reset

__all__ = ["allow_in_graph", "assume_constant_result", "config", "disable", "is_compiling", "reset"]

# ``torch._dynamo.config.suppress_errors = True`` and the like: kept, and read by nothing.
config = SimpleNamespace(suppress_errors=False, cache_size_limit=8, verbose=False)
