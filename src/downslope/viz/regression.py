"""1-D regression: the data points and the curve the model fitted, in red.

Example:
    >>> import numpy as np
    >>> from downslope.viz.regression import plot_regression
    >>> x = np.linspace(0, 1, 20); y = 2 * x + 1
    >>> fig = plot_regression(lambda t: 2 * t + 1, x, y)
    >>> fig.axes[0].lines[0].get_color()
    'red'
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ._model import predict_array
from ._mpl import as_float_array, color, finish, target_axes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..tensor import Tensor


def _column(values: Any, what: str) -> np.ndarray:
    arr = as_float_array(values, what)
    if arr.ndim >= 1 and arr.shape[0] == 0:  # said as such: the NaN check would call no rows "every sample NaN"
        raise ArgumentError(f"{what}: no rows (shape {tuple(arr.shape)}); nothing to draw")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ArgumentError(
            f"{what}: expected one feature per sample, shape (N,) or (N, 1); got shape {tuple(arr.shape)}"
        )
    return arr


def padded_range(values: np.ndarray) -> tuple[float, float, float]:
    """``(low, high, pad)`` of the finite ``values`` for a plot's window: the pad is 5% of the range, or, when
    every value is the same (one sample), a window of +-1 (or 10% of the value, if larger) around it (NaN for
    no finite value)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan, math.nan, math.nan
    lo, hi = float(finite.min()), float(finite.max())
    return lo, hi, 0.05 * (hi - lo) if hi > lo else max(1.0, 0.1 * abs(lo))


def _points(n: int) -> str:
    return f"{n} point" if n == 1 else f"{n} points"


# A model whose predictions on the grid stray from their own fitted line by at most this fraction of
# their scale is a straight line over the plot (float32 predictions round at ~1e-7 of their size).
STRAIGHT_TOLERANCE = 1e-5


def _line_of(grid: np.ndarray, pred: np.ndarray) -> tuple[float, float] | None:
    """``(slope, intercept)`` of the model's predictions when they form a straight line over the grid
    (a linear model, in whatever units it was trained), None for a curve or non-finite predictions."""
    if not np.isfinite(pred).all():
        return None
    design = np.column_stack([grid, np.ones_like(grid)])
    (slope, intercept), *_ = np.linalg.lstsq(design, pred, rcond=None)
    scale = max(float(np.abs(pred).max()), float(np.ptp(pred)), np.finfo(np.float64).tiny)
    if np.abs(design @ (slope, intercept) - pred).max() > STRAIGHT_TOLERANCE * scale:
        return None
    return float(slope), float(intercept)


def plot_regression(
    model: Callable[[Tensor], Any],
    x: Any,
    y: Any,
    *,
    grid_points: int = 200,
    true_function: Callable[[np.ndarray], np.ndarray] | None = None,
    least_squares: bool = False,
    note: str | None = None,
    title: str = "Data and fitted curve",
    x_label: str = "x",
    y_label: str = "y",
    save_path: str | Path | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Scatter of ``(x, y)`` and, in red, the model's prediction on an even grid over x's range.

    Args:
        model: called on a ``(grid_points, 1)`` tensor of the model's parameter dtype (float32 for a
            plain function; under ``no_grad``, in eval mode); it returns ``(grid_points, 1)`` or
            ``(grid_points,)`` predictions. Predictions that are NaN or infinite (a diverged model)
            are left out of the red line, with a UserWarning and a note in its legend entry.
        x, y: the data, shape ``(N,)`` or ``(N, 1)`` each.
        true_function: optionally the noiseless function the data came from (drawn dashed grey).
        least_squares: also draw the closed-form least-squares line of the data (dotted black, its
            slope and intercept in the legend): where linear regression by gradient descent should
            arrive. The model's own slope and intercept are in the legend whenever its predictions
            form a straight line (a linear model), so the two can be compared. When every x is the
            same (or there is one sample) the slope is undetermined: no line is drawn, the point
            every least-squares line passes through (x, mean of y) is marked, and the legend says so.
        note: a line of text written in the plot's corner, e.g. why the model is not at the
            least-squares line ("GD stopped at epoch 12 (early stopping) ...").
        ax: draw into this matplotlib Axes instead of a new figure (its figure is returned and saved).
        figsize: ``(width, height)`` in inches of the new figure (default 6.5 x 4.5); not with ``ax``.

    Samples whose x or y is NaN or infinite are left out (the legend says how many). The window is x's
    range padded by 5%; with one distinct x value, +-1 (or 10% of it) around it.

    Example:
        >>> import numpy as np, downslope as ds
        >>> from downslope.viz import plot_regression
        >>> x = np.linspace(-1, 1, 20); y = 3 * x + 1
        >>> fig = plot_regression(ds.nn.Linear(1, 1), x, y, least_squares=True)
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()][-1]
        'least squares (slope 3, intercept 1)'
    """
    xs = _column(x, "plot_regression x")
    ys = _column(y, "plot_regression y")
    if len(xs) != len(ys):
        raise ArgumentError(f"plot_regression: x has {len(xs)} samples but y has {len(ys)}")
    if isinstance(grid_points, bool) or not isinstance(grid_points, (int, np.integer)):
        raise ArgumentTypeError(f"plot_regression: grid_points must be an integer of at least 2, got {grid_points!r}")
    if grid_points < 2:
        raise ArgumentError(f"plot_regression: grid_points must be at least 2, got {grid_points}")
    shown = np.isfinite(xs) & np.isfinite(ys)  # a NaN sample is not drawn, so it is not counted as drawn
    if not shown.any():
        raise ArgumentError(
            f"plot_regression: every one of the {len(xs)} samples has a NaN or infinite x or y; nothing to draw"
        )
    lo, hi, pad = padded_range(xs[shown])
    grid = np.linspace(lo - pad, hi + pad, grid_points)
    pred = predict_array(model, grid[:, None], "plot_regression")  # cast to the model's parameter dtype
    if pred.size != grid_points:
        raise ArgumentError(
            f"plot_regression: the model must give one output per input; got shape {pred.shape} "
            f"for {grid_points} inputs"
        )

    fig, given = target_axes(ax, figsize, (6.5, 4.5), 1, "plot_regression")
    ax = fig.subplots() if given is None else given[0]
    pred = pred.reshape(-1).astype(np.float64)
    line = _line_of(grid, pred)
    model_label = "model" if line is None else f"model (slope {line[0]:.4g}, intercept {line[1]:.4g})"
    not_finite = int((~np.isfinite(pred)).sum())
    if not_finite:
        import warnings

        warnings.warn(
            f"plot_regression: the model's predictions are not finite (NaN or inf) on {not_finite} of "
            f"{grid_points} grid points; the model may have diverged (its weights may be NaN or inf)",
            UserWarning,
            stacklevel=2,
        )
        model_label += (
            f": not finite on all {grid_points} grid points, not drawn"
            if not_finite == grid_points
            else f" (not finite on {not_finite} of {grid_points} grid points: gaps in the line)"
        )
    if not_finite == grid_points:  # no line to draw: the legend entry says why it is missing
        ax.plot([], [], color="red", lw=2.2, label=model_label)
    else:
        ax.plot(grid, pred, color="red", lw=2.2, label=model_label, zorder=3)
    data_label = f"data ({_points(int(shown.sum()))})"
    if not shown.all():
        data_label = f"data ({_points(int(shown.sum()))}; {int((~shown).sum())} with NaN or inf left out)"
    ax.scatter(xs, ys, s=14, color=color(0), alpha=0.7, edgecolors="none", label=data_label)
    if true_function is not None:
        ax.plot(grid, true_function(grid), "--", color="gray", lw=1.3, label="true function")
    if least_squares and lo == hi:
        # every x is the same: any line through (x, mean y) fits as well as any other, so there is no
        # least-squares slope to show (NumPy's minimum-norm answer is one arbitrary line of them)
        mean_y = float(ys[shown].mean())
        ax.plot(
            [lo], [mean_y], "D", color="black", ms=7, zorder=4,
            label=f"least squares: slope undetermined (every x is {lo:.4g}); every line through ({lo:.4g}, "
            f"mean y {mean_y:.4g}) fits equally well",
        )  # fmt: skip
    elif least_squares:
        design = np.column_stack([xs[shown], np.ones(int(shown.sum()))])
        (slope, intercept), *_ = np.linalg.lstsq(design, ys[shown], rcond=None)
        ax.plot(
            grid, slope * grid + intercept, ":", color="black", lw=1.6, zorder=4,
            label=f"least squares (slope {slope:.4g}, intercept {intercept:.4g})",
        )  # fmt: skip
    ax.set_xlabel(x_label)
    if note:
        # under the x label, not on the plot: inside the axes a long note covered the data or the tick labels;
        # wrapped to the figure's width (about 0.55 em per character at 8 points), centred under the axes
        ax.annotate(
            textwrap.fill(note, width=int(0.9 * float(fig.get_figwidth()) * 72 / (0.55 * 8)), break_on_hyphens=False),
            xy=(0.5, 0.0), xycoords=ax.xaxis.label, xytext=(0, -6), textcoords="offset points", ha="center",
            va="top", fontsize=8, bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.6"},
        )  # fmt: skip
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return finish(fig, save_path)


# The name the command line uses.
plot_regression_fit = plot_regression
