"""PyTorch's ``torch.utils.benchmark``: :class:`Timer` runs a Python statement in blocks and returns a
:class:`Measurement` (per-run times, their mean, median and interquartile range, printed as PyTorch
prints it), built on the standard library's :mod:`timeit`.

Where this differs from PyTorch: only Python statements (no C++, no callgrind); ``num_threads`` is
recorded in the measurement, not applied (set downslope's threads with ``ds.set_num_threads``);
there is no ``Compare`` table or ``Fuzzer``.

Example:
    >>> from downslope.utils.benchmark import Timer
    >>> m = Timer("sum(range(10))").timeit(100)
    >>> len(m.times), m.number_per_run
    (1, 100)
"""

from __future__ import annotations

import math
import textwrap
import timeit as _timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError

__all__ = ["Language", "Measurement", "TaskSpec", "Timer", "select_unit", "timer"]

timer = _timeit.default_timer
"""The clock measurements use (``time.perf_counter``), as ``torch.utils.benchmark.timer`` on a CPU."""

_IQR_WARN_THRESHOLD = 0.1
_MIN_CONFIDENCE_INTERVAL = 25e-9  # 25 ns: below it the clock's own noise dominates
_MAX_SIGNIFICANT_FIGURES = 4


class Language:
    """``torch.utils.benchmark.Language``: only ``PYTHON`` statements run here."""

    PYTHON = "python"
    CPP = "c++"


def select_unit(t: float) -> tuple[str, float]:
    """The unit a time of ``t`` seconds is printed in, and its scale (PyTorch's choice).

    Example:
        >>> select_unit(2.5e-6)
        ('us', 1e-06)
    """
    exponent = int(math.floor(math.log10(t)) // 3) if t > 0 else -3
    unit = {-3: "ns", -2: "us", -1: "ms"}.get(exponent, "s")
    return unit, {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


@dataclass(frozen=True)
class TaskSpec:
    """What was timed: the statement, its setup and the labels it is printed under."""

    stmt: str
    setup: str
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self) -> str:
        """The first line of the printed measurement: the label (or the statement) and the sub-label."""
        if self.label is not None:
            return self.label + (f": {self.sub_label}" if self.sub_label else "")
        if "\n" not in self.stmt:
            return self.stmt + (f": {self.sub_label}" if self.sub_label else "")
        return f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n{textwrap.indent(self.stmt, '  ')}"

    def setup_str(self) -> str:
        if not self.setup or self.setup == "pass":
            return ""
        return f"setup:\n{textwrap.indent(self.setup, '  ')}" if "\n" in self.setup else f"setup: {self.setup}"

    def summarize(self) -> str:
        sections = [self.title, self.description or "", self.setup_str()]
        return "\n".join(f"{s}\n" if "\n" in s else s for s in sections if s)


class Measurement:
    """The times of a :class:`Timer` run: ``raw_times`` (seconds per block of ``number_per_run``
    runs) and, per run, ``times``, ``mean``, ``median``, ``iqr``.

    Example:
        >>> m = Measurement(4, [2.0, 1.0, 3.0], TaskSpec("f()", "pass"))
        >>> m.times, m.median
        ([0.5, 0.25, 0.75], 0.5)
    """

    def __init__(
        self, number_per_run: int, raw_times: list[float], task_spec: TaskSpec, metadata: dict[Any, Any] | None = None
    ) -> None:
        if not raw_times:
            raise ArgumentError("Measurement: expected at least one time, got none")
        self.number_per_run = number_per_run
        self.raw_times = list(raw_times)
        self.task_spec = task_spec
        self.metadata = metadata
        sorted_times = np.sort(np.asarray(self.times, dtype=np.float64))  # host: a few Python floats
        self._sorted = sorted_times
        self._median = float(np.median(sorted_times))
        self._mean = float(np.mean(sorted_times))
        self._p25 = float(np.percentile(sorted_times, 25))
        self._p75 = float(np.percentile(sorted_times, 75))

    @property
    def times(self) -> list[float]:
        """Seconds per run, one per measured block."""
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self) -> float:
        return self._median

    @property
    def mean(self) -> float:
        return self._mean

    @property
    def iqr(self) -> float:
        """The interquartile range of the per-run times (75th minus 25th percentile)."""
        return self._p75 - self._p25

    @property
    def title(self) -> str:
        return self.task_spec.title

    @property
    def env(self) -> str:
        return "Unspecified env" if self.task_spec.env is None else self.task_spec.env

    @property
    def as_row_name(self) -> str:
        return self.task_spec.sub_label or self.task_spec.stmt or "[Unknown]"

    @property
    def significant_figures(self) -> int:
        """How many digits of the median are meaningful, from the spread of the middle half (PyTorch's estimate)."""
        n = len(self._sorted)
        middle = self._sorted[n // 4 : math.ceil(3 * n / 4)]
        spread = float(np.std(middle)) if middle.size else 0.0
        interval = max(1.645 * spread / math.sqrt(max(middle.size, 1)), _MIN_CONFIDENCE_INTERVAL)
        figures = int(math.floor(math.log10(self._median / interval))) if self._median > 0 else 1
        return min(max(figures, 1), _MAX_SIGNIFICANT_FIGURES)

    def meets_confidence(self, threshold: float = _IQR_WARN_THRESHOLD) -> bool:
        """Whether the interquartile range is below ``threshold`` times the median."""
        return self.iqr / self.median < threshold if self.median > 0 else True

    @property
    def has_warnings(self) -> bool:
        return bool(self._warnings())

    def _warnings(self) -> list[str]:
        if len(self._sorted) >= 4 and not self.meets_confidence():
            return [
                f"  WARNING: Interquartile range is {self.iqr / self.median * 100:.1f}% of the median measurement.\n"
                "           This could indicate system fluctuation."
            ]
        return []

    def __repr__(self) -> str:
        n = len(self._sorted)
        unit, scale = select_unit(self._median)
        threads = self.task_spec.num_threads
        lines = [
            object.__repr__(self),
            self.task_spec.summarize(),
            f"  {'Median: ' if n > 1 else ''}{self._median / scale:.2f} {unit}",
        ]
        if n >= 4:
            lines.append(
                f"  IQR:    {self.iqr / scale:.2f} {unit} ({self._p25 / scale:.2f} to {self._p75 / scale:.2f})"
            )
        lines.append(
            f"  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} runs "
            f"{'per measurement,' if n > 1 else ','} {threads} thread{'s' if threads > 1 else ''}"
        )
        lines.extend(self._warnings())
        return "\n".join(lines).strip()


class Timer:
    """``torch.utils.benchmark.Timer``: times ``stmt`` (run after ``setup``, with ``globals``).
    ``timeit(number)`` times one block of ``number`` runs; ``blocked_autorange`` picks a block size
    and measures blocks for at least ``min_run_time`` seconds; ``adaptive_autorange`` measures until
    the interquartile range is within ``threshold`` of the median.

    Example:
        >>> import downslope as ds
        >>> from downslope.utils.benchmark import Timer
        >>> t = Timer("x * 2", globals={"x": ds.ones(4)}, label="mul")
        >>> t.blocked_autorange(min_run_time=0.01).median > 0
        True
    """

    def __init__(
        self,
        stmt: str | Callable[[], Any] = "pass",
        setup: str | Callable[[], Any] = "pass",
        global_setup: str = "",
        timer: Callable[[], float] = timer,
        globals: dict[str, Any] | None = None,
        label: str | None = None,
        sub_label: str | None = None,
        description: str | None = None,
        env: str | None = None,
        num_threads: int = 1,
        language: Any = Language.PYTHON,
    ) -> None:
        if str(getattr(language, "name", language)).lower() not in ("python", "0", "language.python"):
            raise ArgumentError(f"Timer: only Python statements are timed here, got language={language!r}")
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ArgumentError(f"Timer: num_threads must be a positive int, got {num_threads!r}")
        if isinstance(setup, str) and global_setup:
            setup = f"{global_setup}\n{setup}"
        self._timer = _timeit.Timer(stmt=stmt, setup=setup, timer=timer, globals=dict(globals or {}))
        self._task_spec = TaskSpec(
            stmt=stmt if isinstance(stmt, str) else getattr(stmt, "__name__", repr(stmt)),
            setup=setup if isinstance(setup, str) else getattr(setup, "__name__", repr(setup)),
            global_setup=global_setup,
            label=label,
            sub_label=sub_label,
            description=description,
            env=env,
            num_threads=num_threads,
        )

    def _timeit(self, number: int) -> float:
        return max(self._timer.timeit(number), 1e-9)  # a block below the clock's resolution counts as 1 ns

    def timeit(self, number: int = 1000000) -> Measurement:
        """One block of ``number`` runs, as ``timeit.Timer.timeit`` (after one warm-up run)."""
        self._timeit(number=max(int(number // 100), 2))  # warm-up, as PyTorch
        return Measurement(number, [self._timeit(number)], self._task_spec)

    def repeat(self, repeat: int = -1, number: int = -1) -> None:
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback: Callable[[int, float], None] | None = None) -> None:
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _block_size(self, min_run_time: float) -> int:
        """Runs per block: grown tenfold until the loop's own overhead is negligible and a block
        takes at least a thousandth of ``min_run_time`` (PyTorch's rule)."""
        overhead = float(np.median([self._timeit(0) for _ in range(5)]))
        number = 1
        while True:
            taken = self._timeit(number)
            if (overhead / taken <= 1e-4 and taken >= min_run_time / 1000) or taken > min_run_time:
                return number
            if number * 10 > 2147483647:
                return number
            number *= 10

    def _loop(
        self,
        number: int,
        stop: Callable[[list[float]], bool],
        min_run_time: float,
        max_run_time: float | None = None,
        callback: Callable[[int, float], Any] | None = None,
    ) -> list[float]:
        total, times, can_stop = 0.0, [], False
        while total < min_run_time or not can_stop:
            spent = self._timeit(number)
            times.append(spent)
            total += spent
            if callback is not None:
                callback(number, spent)
            can_stop = stop(times)
            if max_run_time is not None and total > max_run_time:
                break
        return times

    def blocked_autorange(
        self, callback: Callable[[int, float], Any] | None = None, min_run_time: float = 0.2
    ) -> Measurement:
        """Blocks of a chosen size, measured for at least ``min_run_time`` seconds in all."""
        number = self._block_size(min_run_time)
        times = self._loop(number, lambda _: True, min_run_time, callback=callback)
        return Measurement(number, times, self._task_spec)

    def adaptive_autorange(
        self,
        threshold: float = 0.1,
        *,
        min_run_time: float = 0.01,
        max_run_time: float = 10.0,
        callback: Callable[[int, float], Any] | None = None,
    ) -> Measurement:
        """Blocks measured until the interquartile range is below ``threshold`` times the median (at
        least 4 blocks and ``min_run_time`` seconds; at most ``max_run_time``)."""
        number = self._block_size(min_run_time=0.05)

        def confident(times: list[float]) -> bool:
            return len(times) > 3 and Measurement(number, times, self._task_spec).meets_confidence(threshold)

        times = self._loop(number, confident, min_run_time, max_run_time, callback)
        return Measurement(number, times, self._task_spec)
