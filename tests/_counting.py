"""Work counted instead of timed: a unit test on a shared machine cannot bound wall-clock time without
failing by chance, but it can bound how many Python lines a call runs, which a per-element or
per-row Python loop (or a recurrence of a million passes) multiplies and nothing else changes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def lines_run(work: Callable[[], T], *, inside: str = "downslope") -> tuple[T, int]:
    """``work()``'s result and the number of Python lines it ran in files whose path contains ``inside``
    (every file for ``inside=""``), in this thread. Compiled kernels and NumPy's C loops count nothing:
    switch them off (``jit_gate.disabled()``) where the loop to bound could run in one."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def call(frame: FrameType, event: str, arg: Any) -> Any:
        return local if inside in frame.f_code.co_filename else None

    previous = sys.gettrace()  # a coverage tracer or a debugger: put back afterwards
    sys.settrace(call)
    try:
        result = work()
    finally:
        sys.settrace(previous)
    return result, count
