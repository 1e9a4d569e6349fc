"""``torch.profiler`` and ``torch.autograd.profiler`` (one module, entered under both names):
``record_function``, the labels training scripts put around their steps, is a working no-op, so
labelled code runs unchanged. ``profile`` and the rest of PyTorch's profiler are refused with the
reason: they trace PyTorch's own operator and device kernels, and downslope's ops are Python and
NumPy (time them with cProfile or ``downslope.utils.benchmark.Timer``).

Example:
    >>> import downslope as ds
    >>> with ds.profiler.record_function("forward"):
    ...     y = ds.ones(2) * 2
    >>> from downslope.autograd.profiler import record_function
    >>> record_function is ds.profiler.record_function
    True
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from . import autograd
from .errors import ArgumentTypeError

__all__ = ["record_function"]


class record_function(contextlib.ContextDecorator):  # noqa: N801  (PyTorch's name)
    """A labelled range, as ``torch.profiler.record_function(name, args)``: a context manager and a
    decorator that records nothing (no profiler runs to read it) and leaves the code it wraps as it is.

    Example:
        >>> @record_function("step")
        ... def step(x):
        ...     return x + 1
        >>> step(1)
        2
    """

    def __init__(self, name: str, args: str | None = None) -> None:
        if not isinstance(name, str):
            raise ArgumentTypeError(f"record_function: expected a str name, got {type(name).__name__} {name!r}")
        if args is not None and not isinstance(args, str):
            raise ArgumentTypeError(f"record_function: expected args to be a str or None, got {type(args).__name__}")
        self.name, self.args = name, args

    def __enter__(self) -> record_function:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def __getattr__(name: str) -> Any:
    from ._unsupported import missing_module_attribute  # says why for PyTorch's profiler names

    missing_module_attribute(name, "torch.profiler")


# ``torch.autograd.profiler``: the same names (record_function is one class in PyTorch too); the autograd
# module cannot import this one (it sits below it), so this module enters itself there, as jacobians.py does.
autograd.profiler = sys.modules[__name__]  # type: ignore[attr-defined]
sys.modules[f"{autograd.__name__}.profiler"] = sys.modules[__name__]
