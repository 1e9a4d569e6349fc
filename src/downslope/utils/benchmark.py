"""PyTorch's ``torch.utils.benchmark``: :class:`Timer` runs a Python statement in blocks and returns a
:class:`Measurement` (per-run times, their mean, median and interquartile range, printed as PyTorch
prints it), built on the standard library's :mod:`timeit`.

:class:`Compare` prints many measurements as PyTorch's table (one per label, a row per sub-label or
statement within each thread count and env, a column per description).

Where this differs from PyTorch: only Python statements (no C++, no callgrind); ``num_threads`` is
recorded in the measurement, not applied (set downslope's threads with ``ds.set_num_threads``);
there is no ``Fuzzer`` (random input generation for benchmarks: draw the inputs yourself and time
each with :class:`Timer`, then :class:`Compare` the measurements).

Example:
    >>> from downslope.utils.benchmark import Timer
    >>> m = Timer("sum(range(10))").timeit(100)
    >>> len(m.times), m.number_per_run
    (1, 100)
"""

from __future__ import annotations

import collections
import enum
import math
import textwrap
import timeit as _timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError

__all__ = ["Colorize", "Compare", "Language", "Measurement", "TaskSpec", "Timer", "select_unit", "timer"]

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

    # the task's fields, as PyTorch's Measurement forwards them (Compare groups by them)
    @property
    def label(self) -> str | None:
        return self.task_spec.label

    @property
    def sub_label(self) -> str | None:
        return self.task_spec.sub_label

    @property
    def description(self) -> str | None:
        return self.task_spec.description

    @property
    def num_threads(self) -> int:
        return self.task_spec.num_threads

    @property
    def stmt(self) -> str:
        return self.task_spec.stmt

    @staticmethod
    def merge(measurements: Any) -> list[Measurement]:
        """One measurement per task (replicates of the same statement and labels pooled), with the times
        per run (``number_per_run`` 1) and no metadata, as PyTorch's ``Measurement.merge``."""
        grouped: dict[TaskSpec, list[float]] = {}
        for m in measurements:
            grouped.setdefault(m.task_spec, []).extend(m.times)
        return [Measurement(1, times, spec) for spec, times in grouped.items()]

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


# ------------------------------------------------------------------ Compare
_BEST = "\033[92m"
_GOOD = "\033[34m"
_BAD = "\033[2m\033[91m"
_VERY_BAD = "\033[31m"
_BOLD = "\033[1m"
_TERMINATE = "\033[0m"
_UNIT_NAMES = {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}


class Colorize(enum.Enum):
    """How :class:`Compare` colours its cells (``torch.utils.benchmark.Colorize``)."""

    NONE = "none"
    COLUMNWISE = "columnwise"
    ROWWISE = "rowwise"


def _trim_sigfig(x: float, n: int) -> float:
    """``x`` rounded to ``n`` significant figures (3.14159, 2 -> 3.1)."""
    magnitude = math.ceil(math.log10(abs(x))) if x else 0
    scale = 10.0 ** (magnitude - n)
    return float(np.round(x / scale) * scale)  # NumPy's round half to even, as torch's


class _Column:
    """One description's cells: the number format shared by its rows (PyTorch's layout)."""

    def __init__(
        self,
        grouped: list[tuple[Measurement | None, ...]],
        time_scale: float,
        trim: bool,
        highlight_warnings: bool,
    ) -> None:
        self.grouped = grouped
        flat = [m for group in grouped for m in group]
        self._trim = trim
        self._highlight = highlight_warnings and any(m.has_warnings for m in flat if m is not None)
        leading = [math.ceil(math.log10(m.median / time_scale)) if m is not None else None for m in flat]
        unit_digits = max(d for d in leading if d is not None)
        decimals = (
            min(max(m.significant_figures - d, 0) for d, m in zip(leading, flat) if m is not None and d is not None)
            if trim
            else 1
        )
        length = unit_digits + decimals + (1 if decimals else 0)
        self._template = f"{{:>{length}.{decimals}f}}{{:>{7 if self._highlight else 0}}}"

    def cell(self, value: float | None, sigfigs: int, spread: float | None) -> str:
        if value is None:
            return " " * len(self.cell(1.0, sigfigs, None))
        if self._trim:
            value = _trim_sigfig(value, sigfigs)
        return self._template.format(
            value, f" (! {spread * 100:.0f}%)" if self._highlight and spread is not None else ""
        )


class _Row:
    def __init__(
        self,
        results: list[Measurement | None],
        group: int,
        render_env: bool,
        env_width: int,
        time_scale: float,
        colorize: Colorize,
        num_threads: int | None,
    ) -> None:
        self.results, self.group, self.render_env, self.env_width = results, group, render_env, env_width
        self.time_scale, self.colorize, self.num_threads = time_scale, colorize, num_threads
        self.columns: tuple[_Column, ...] = ()

    def strings(self) -> list[str]:
        first = next(m for m in self.results if m is not None)
        env = (f"({first.env})" if self.render_env else "").ljust(self.env_width + 4)
        out = ["  " + env + first.as_row_name]
        for m, column in zip(self.results, self.columns):
            if m is None:
                out.append(column.cell(None, 1, None))
            else:
                spread = m.iqr / m.median if m.has_warnings else None
                out.append(column.cell(m.median / self.time_scale, m.significant_figures, spread))
        return out

    def separator(self, width: int) -> list[str]:
        return [f"{self.num_threads} threads: ".ljust(width, "-")] if self.num_threads is not None else []

    @staticmethod
    def _color(segment: str, value: float, best: float) -> str:
        if value <= best * 1.01 or value <= best + 100e-9:
            return _BEST + _BOLD + segment + _TERMINATE * 2
        if value <= best * 1.1:
            return _GOOD + _BOLD + segment + _TERMINATE * 2
        if value >= best * 5:
            return _VERY_BAD + _BOLD + segment + _TERMINATE * 2
        if value >= best * 2:
            return _BAD + segment + _TERMINATE * 2
        return segment

    def finish(self, strings: list[str], widths: list[int]) -> list[str]:
        best: list[float | None] = [None] * len(self.results)
        if self.colorize is Colorize.ROWWISE:
            best = [min(m.median for m in self.results if m is not None)] * len(self.results)
        elif self.colorize is Colorize.COLUMNWISE:
            best = [
                min((m.median for m in column.grouped[self.group] if m is not None), default=None)
                for column in self.columns
            ]
        out = [strings[0].ljust(widths[0])]
        for text, width, m, b in zip(strings[1:], widths[1:], self.results, best):
            text = text.center(width)
            if self.colorize is not Colorize.NONE and m is not None and b is not None:
                text = self._color(text, m.median, b)
            out.append(text)
        return out


def _table(results: list[Measurement], colorize: Colorize, trim: bool, highlight_warnings: bool) -> str:
    """One label's measurements as PyTorch's table: a row per (threads, env, sub-label or statement),
    a column per description, times in the unit of the fastest."""
    unit, scale = select_unit(min(m.median for m in results))

    def row_key(m: Measurement) -> tuple[int, str, str]:
        return m.num_threads, m.env, m.as_row_name

    row_keys = list(dict.fromkeys(row_key(m) for m in results))
    row_keys.sort(key=lambda k: k[:2])  # by threads and env; statements keep their order
    col_keys = list(dict.fromkeys(m.description for m in results))
    ordered: list[list[Measurement | None]] = [[None] * len(col_keys) for _ in row_keys]
    row_at = {k: i for i, k in enumerate(row_keys)}
    col_at = {k: j for j, k in enumerate(col_keys)}
    for m in results:
        ordered[row_at[row_key(m)]][col_at[m.description]] = m
    envs = {m.env for m in results}
    render_env = len(envs) > 1
    env_width = max(len(e) for e in envs) if render_env else 0

    rows: list[_Row] = []
    groups: list[list[list[Measurement | None]]] = []
    prior_threads, prior_env, group = -1, "", -1
    for (threads, env, _), cells in zip(row_keys, ordered):
        new_group = threads != prior_threads
        if new_group:
            prior_threads, prior_env, group = threads, "", group + 1
            groups.append([])
        rows.append(
            _Row(
                cells,
                group,
                render_env and env != prior_env,
                env_width,
                scale,
                colorize,
                threads if new_group else None,
            )
        )
        groups[-1].append(cells)
        prior_env = env
    columns = tuple(
        _Column([tuple(cells[j] for cells in g) for g in groups], scale, trim, highlight_warnings)
        for j in range(len(col_keys))
    )
    for r in rows:
        r.columns = columns

    string_rows = [["", *("" if k is None else k for k in col_keys)], *(r.strings() for r in rows)]
    n = max(len(r) for r in string_rows)
    for texts in string_rows:
        texts.extend([""] * (n - len(texts)))
    widths = [max(len(c) for c in col) for col in zip(*string_rows)]
    lines = ["  |  ".join(c.center(w) for c, w in zip(string_rows[0], widths))]
    width = len(lines[0])
    for strings, r in zip(string_rows[1:], rows):
        lines.extend(r.separator(width))
        lines.append("  |  ".join(r.finish(strings, widths)))
    label = results[0].label
    warned = highlight_warnings and any(m.has_warnings for m in results)
    note = "(! XX%) Measurement has high variance, where XX is the IQR / median * 100.\n" if warned else ""
    title = f"[{(' ' + (label or '') + ' ').center(width - 2, '-')}]"
    return f"{title}\n" + "\n".join(lines) + f"\n\nTimes are in {_UNIT_NAMES[unit]}s ({unit}).\n{note}"


class Compare:
    """``torch.utils.benchmark.Compare``: many :class:`Measurement` as one table per label, a row per
    sub-label (or statement) within each thread count and env, a column per description; ``print()``
    or ``str()`` renders it. ``trim_significant_figures()``, ``colorize(rowwise=False)`` and
    ``highlight_warnings()`` change how later renders look, as PyTorch's.

    Example:
        >>> from downslope.utils.benchmark import Compare, Measurement, TaskSpec
        >>> ms = [Measurement(1, [t * 1e-6] * 4, TaskSpec("f(x)", "pass", label="f", sub_label=s, description=d))
        ...       for t, s, d in [(2.0, "small", "a"), (3.0, "small", "b"), (20.0, "large", "a")]]
        >>> print(Compare(ms))
        [----------- f ------------]
                     |   a    |   b
        1 threads: -----------------
              small  |   2.0  |  3.0
              large  |  20.0  |
        <BLANKLINE>
        Times are in microseconds (us).
        <BLANKLINE>
    """

    def __init__(self, results: Any) -> None:
        self._results: list[Measurement] = []
        self.extend_results(results)
        self._trim_significant_figures = False
        self._colorize = Colorize.NONE
        self._highlight_warnings = False

    def __str__(self) -> str:
        return "\n".join(self._render())

    def extend_results(self, results: Any) -> None:
        """Add measurements to the table (each must be a :class:`Measurement`)."""
        results = list(results)
        for r in results:
            if not isinstance(r, Measurement):
                raise ArgumentTypeError(
                    f"Compare: expected an instance of Measurement (from Timer.timeit / blocked_autorange), "
                    f"got {type(r).__name__}"
                )
        self._results.extend(results)

    def trim_significant_figures(self) -> None:
        """Print each time only to the digits its spread supports."""
        self._trim_significant_figures = True

    def colorize(self, rowwise: bool = False) -> None:
        """Colour the cells against the best of their column (or of their row, ``rowwise``)."""
        self._colorize = Colorize.ROWWISE if rowwise else Colorize.COLUMNWISE

    def highlight_warnings(self) -> None:
        """Mark the cells whose interquartile range is over a tenth of the median."""
        self._highlight_warnings = True

    def print(self) -> None:
        """Print the tables."""
        print(str(self))

    def _render(self) -> list[str]:
        by_label: dict[str | None, list[Measurement]] = collections.defaultdict(list)
        for m in Measurement.merge(self._results):
            by_label[m.label].append(m)
        return [
            _table(group, self._colorize, self._trim_significant_figures, self._highlight_warnings)
            for group in by_label.values()
        ]


def __getattr__(name: str) -> Any:
    """PyTorch's fuzzer names (Fuzzer, FuzzedTensor...) say why they are missing and what to use."""
    from .._unsupported import missing_module_attribute

    missing_module_attribute(name, "torch.utils.benchmark")
