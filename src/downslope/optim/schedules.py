"""Schedules as pure functions of the update count (Optax style), for ``transforms.scale_by_lr``.

A schedule maps ``count`` (how many updates came before this one: 0 on the first) to a value.
Unlike ``lr_scheduler`` objects they hold no state, so nothing needs saving; the optimizer's own
count (in its state_dict) is what they are evaluated at. Each one has a PyTorch scheduler that
gives the same sequence (noted below, and tested).

Example:
    >>> from downslope.optim import schedules
    >>> lr = schedules.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=6)
    >>> [round(lr(t), 3) for t in range(8)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..errors import ArgumentError

Schedule = Callable[[int], float]

__all__ = [
    "Schedule", "constant_schedule", "polynomial_schedule", "linear_schedule", "piecewise_constant_schedule",
    "exponential_decay", "cosine_decay_schedule", "join_schedules", "warmup_cosine_decay_schedule",
]  # fmt: skip


def constant_schedule(value: float) -> Schedule:
    """Always ``value``."""
    return lambda count: value


def polynomial_schedule(
    init_value: float, end_value: float, power: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """``(init - end) * (1 - t / T) ** power + end`` for ``t = count - transition_begin`` in ``[0, T]``,
    held at the ends outside (PyTorch: PolynomialLR with ``end_value=0``)."""
    if transition_steps <= 0:
        return constant_schedule(init_value)
    begin = max(transition_begin, 0)

    def schedule(count: int) -> float:
        t = min(max(count - begin, 0), transition_steps)
        return (init_value - end_value) * (1 - t / transition_steps) ** power + end_value

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """A straight line from ``init_value`` to ``end_value`` over ``transition_steps`` (PyTorch: LinearLR)."""
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def piecewise_constant_schedule(init_value: float, boundaries_and_scales: dict[int, float] | None = None) -> Schedule:
    """``init_value`` times every scale whose boundary has been reached (PyTorch: MultiStepLR)."""
    items = sorted((boundaries_and_scales or {}).items())
    if any(scale < 0 for _, scale in items):
        raise ArgumentError(f"piecewise_constant_schedule: scales must be >= 0, got {dict(items)}")

    def schedule(count: int) -> float:
        value = init_value
        for boundary, scale in items:
            if count >= boundary:
                value *= scale
        return value

    return schedule


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """``init_value * decay_rate ** ((count - begin) / transition_steps)`` (floored with
    ``staircase``), bounded by ``end_value`` (PyTorch: ExponentialLR / StepLR)."""
    if transition_steps <= 0 or decay_rate == 0:
        return constant_schedule(init_value)
    begin = max(transition_begin, 0)

    def schedule(count: int) -> float:
        elapsed = count - begin
        if elapsed <= 0:
            return init_value
        p = elapsed / transition_steps
        if staircase:
            p = math.floor(p)
        value = init_value * decay_rate**p
        if end_value is not None:
            value = max(value, end_value) if decay_rate < 1.0 else min(value, end_value)
        return value

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``, then flat
    (PyTorch: CosineAnnealingLR with ``eta_min = alpha * init_value`` for the first half-period)."""
    if not decay_steps > 0:
        raise ArgumentError(f"cosine_decay_schedule: expected decay_steps > 0, got {decay_steps!r}")

    def schedule(count: int) -> float:
        t = min(count, decay_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * t / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Switch to ``schedules[i + 1]`` at ``boundaries[i]``; each starts counting from 0 there
    (PyTorch: SequentialLR)."""
    if len(boundaries) != len(schedules) - 1:
        raise ArgumentError(f"join_schedules: expected {len(schedules) - 1} boundaries, got {len(boundaries)}")

    def schedule(count: int) -> float:
        value = schedules[0](count)
        for boundary, next_schedule in zip(boundaries, schedules[1:]):
            if count >= boundary:
                value = next_schedule(count - boundary)
        return value

    return schedule


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``;
    ``decay_steps`` counts the warm-up too (PyTorch: SequentialLR of LinearLR and CosineAnnealingLR)."""
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )
