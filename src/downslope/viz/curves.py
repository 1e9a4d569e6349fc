"""Curves over training time: losses and metrics with the best epoch marked, the learning rate,
per-layer gradient norms, and several runs overlaid against epoch and against wall time.

Every function takes a ``History`` (anything with ``as_dict()``, or a Keras-style ``.history``
dict) or a plain ``{"loss": [...], "val_loss": [...], ...}`` dict, returns the matplotlib
Figure, and saves it when ``save_path`` is given.

Example:
    >>> from downslope.viz.curves import plot_loss_curves
    >>> fig = plot_loss_curves({"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.7]})
    >>> fig.axes[0].get_title()
    'Loss'
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ..train.history import History, higher_is_better_name
from ._mpl import as_float_array, color, finish, linestyle, marker, require_matplotlib, target_axes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Keys in a history that are bookkeeping, not metrics to draw as curves.
NON_METRIC_KEYS = frozenset(
    {"epoch", "step", "lr", "learning_rate", "time", "wall_time", "elapsed", "epoch_time", "seconds"}
)
# For a history that carries no Metric objects (a dict, a Keras History, a column no metric made): a
# monitored quantity is better when larger only when its whole name (less 'val_') is a metric known to be
# (History's HIGHER_IS_BETTER_NAMES); a part of a name says nothing ('brier_score' is better when lower).
# Keys holding seconds since the start of training (cumulative) and seconds per epoch.
CUMULATIVE_TIME_KEYS = ("wall_time", "elapsed", "time")
PER_EPOCH_TIME_KEYS = ("epoch_time", "seconds")


def history_to_dict(history: Any) -> dict[str, list[float]]:
    """``{key: [value per epoch]}`` from a History, a Keras-style object or a mapping; an epoch whose
    value is None (not measured, e.g. ``val_loss`` on the epochs ``fit(validation_freq=k)`` skips) is NaN.

    Example:
        >>> from downslope.viz.curves import history_to_dict
        >>> history_to_dict({"loss": (2, 1)})
        {'loss': [2.0, 1.0]}
    """
    return {key: column.tolist() for key, column in _read_history(history)[0].items()}


def _read_history(history: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`history_to_dict` (each column a float64 array) and, per key, which epochs were not measured
    (None): those are left out of the curves, while a NaN or inf that was measured is a divergence."""
    if hasattr(history, "as_dict") and callable(history.as_dict):
        raw = history.as_dict()
    elif isinstance(getattr(history, "history", None), Mapping):
        raw = history.history
    elif isinstance(history, Mapping):
        raw = history
    else:
        raise ArgumentTypeError(
            f"expected a History (with as_dict()) or a dict of per-epoch lists, got {type(history).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    for key, values in raw.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            continue  # scalars or text (e.g. a stop reason) are not curves
        try:
            # one conversion for the whole column (None becomes NaN); only a column holding NaN is walked to
            # tell an epoch not measured (None) from a measured NaN
            column = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            column = _numbers(str(key), values)
        if column.ndim != 1:
            continue
        out[str(key)] = column
        nan = np.isnan(column)
        missing[str(key)] = (
            np.fromiter((v is None for v in values), dtype=bool, count=len(column)) if nan.any() else nan
        )
    return out, missing


def _numbers(key: str, values: Any) -> np.ndarray:
    """A column that numpy could not convert at once, value by value; the first value that is not a
    number (nor None) is refused, named with its key and position. Skipping the column instead left the
    plot saying the history had no such key."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = np.nan if v is None else float(v)
        except (TypeError, ValueError):
            raise ArgumentTypeError(
                f"history key {key!r}: the values must be numbers, one per epoch (None for an epoch not "
                f"measured); position {i} holds {v!r} ({type(v).__name__})"
            ) from None
    return out


def _measured(missing: Mapping[str, np.ndarray], key: str, n: int) -> np.ndarray:
    """Which of the ``n`` epochs of ``key`` were measured (not None)."""
    mask = missing.get(key)
    return ~mask if mask is not None and len(mask) == n else np.ones(n, dtype=bool)


def _log_floor(values: np.ndarray, where: str) -> tuple[bool, float | None]:
    """Whether ``values`` can be drawn on a log axis, and the floor zeros are drawn at (None: no zeros).

    A log axis cannot show 0 or a negative value: matplotlib drops such points silently. Zeros (a
    perfectly fitted toy problem, a gradient that died) are drawn at a floor a decade below the smallest
    positive value, and the plot says so; a negative value (an NLL or ELBO loss) makes the axis linear,
    with a UserWarning saying why. All-zero values have no decade to draw at: the axis is linear.
    """
    finite = values[np.isfinite(values)]
    negative = int((finite < 0).sum())
    if negative:
        import warnings

        warnings.warn(
            f"{where}: {negative} of the values are negative (an NLL or ELBO loss can be), which a log axis cannot "
            "show; the axis is linear",
            UserWarning,
            stacklevel=3,
        )
        return False, None
    if not (finite == 0).any():
        return True, None
    positive = finite[finite > 0]
    if not positive.size:
        return False, None  # every value is 0: nothing to draw on a log axis, a linear one shows them
    return True, float(10.0 ** (np.floor(np.log10(positive.min())) - 1))


def _at_floor(values: np.ndarray, floor: float | None) -> np.ndarray:
    """``values`` with each 0 at the log axis's floor (unchanged without one)."""
    return values if floor is None else np.where(values == 0, floor, values)


def _floor_label(floor: float) -> str:
    return f"0 drawn at the floor {floor:.0e} (a log axis cannot show 0)"


def _epochs(hist: Mapping[str, Sequence[float] | np.ndarray], n: int) -> np.ndarray:
    if "epoch" in hist and len(hist["epoch"]) == n:
        return np.asarray(hist["epoch"], dtype=np.float64)
    return np.arange(1, n + 1, dtype=np.float64)


def _pick_mode(monitor: str, mode: str, history: Any = None) -> str:
    if mode not in ("auto", "min", "max"):
        raise ArgumentError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    metrics = getattr(history, "metrics", None)  # a downslope History knows its metrics' directions
    base = monitor[4:] if monitor.startswith("val_") else monitor
    if isinstance(metrics, Mapping) and base in metrics:
        return "max" if metrics[base].greater_is_better else "min"
    return "max" if higher_is_better_name(monitor) else "min"


# The best epoch a picture marks (plot_loss_curves, and the report's "best" card and highlighted row): the
# first epoch within this relative distance of the best value. A converged float32 run's loss stops
# improving and then wanders by rounding alone (a mean over n rows in float32 is off by a few ulps, 2**-24
# each, more for large n): the strict lowest was whichever epoch the rounding happened to favour, far to
# the right of where the curve went flat. 1e-6 is about 8 float32 epsilons: above that rounding for the
# losses fit logs, and far below what a plot can show (a millionth of the value: a fraction of a pixel).
# A History stores the numbers as Python floats, so the dtype they were computed in (and its ulp) is not
# known here: a relative tolerance is. The rules that act on the best epoch (History.best, EarlyStopping,
# restore_best_weights, ModelCheckpoint) keep Keras' strict improvement by min_delta.
BEST_EPOCH_RTOL = 1e-6
_RTOL_TEXT = f"{BEST_EPOCH_RTOL:.0e}".replace("e-0", "e-")  # '1e-6', for the legend


def best_epoch_index(values: Sequence[float] | np.ndarray, mode: str = "min", *, rtol: float = 0.0) -> int | None:
    """Index of the best finite value (first one on ties), or None when there is none.

    ``rtol``: the first value within ``rtol * |best|`` of the best one counts as best (0, the default:
    the strict best, first on exact ties; the plots pass :data:`BEST_EPOCH_RTOL`, so that rounding noise
    after convergence does not move the mark).

    Example:
        >>> from downslope.viz.curves import best_epoch_index
        >>> best_epoch_index([3.0, 1.0, float("nan"), 1.0, 2.0])
        1
        >>> best_epoch_index([3.0, 1.0000001, 1.0, 2.0], rtol=1e-6)
        1
    """
    arr = as_float_array(values, "best_epoch_index values")
    if mode not in ("min", "max"):
        raise ArgumentError(f"best_epoch_index: mode must be 'min' or 'max', got {mode!r}")
    if not (isinstance(rtol, (int, float)) and not isinstance(rtol, bool) and 0.0 <= rtol < 1.0):
        raise ArgumentError(f"best_epoch_index: rtol must be a number in [0, 1), got {rtol!r}")
    finite = np.isfinite(arr)
    if not finite.any():
        return None
    masked = np.where(finite, arr, np.inf if mode == "min" else -np.inf)
    best = int(np.argmin(masked) if mode == "min" else np.argmax(masked))
    if rtol == 0.0:
        return best
    # relative to |best| (not best * (1 - rtol)), so a negative loss (an NLL) gets the same band
    band = rtol * abs(float(arr[best]))
    close = finite & (np.abs(np.where(finite, arr, 0.0) - arr[best]) <= band)
    return int(np.argmax(close))  # the first epoch within the band (the strict best is in it)


def marked_best_index(
    history: Any, hist: Mapping[str, Sequence[float] | np.ndarray], monitor: str, mode: str = "auto"
) -> tuple[int | None, bool, bool]:
    """``(index, maximized, the run's rule)``: the 0-based epoch :func:`plot_loss_curves` marks as best by
    ``monitor`` in ``hist`` (:func:`history_to_dict` of ``history``), whether larger is better, and whether
    the epoch is the one the run's callback kept.

    When ``monitor`` is what the run's EarlyStopping/ModelCheckpoint monitored (a downslope History's
    ``monitor``) and ``mode`` is ``"auto"``, the epoch is the one the callback judged best
    (:meth:`History.best`: its mode, ``min_delta`` and ``start_from_epoch``), so that the mark is the
    epoch whose weights the model holds. Otherwise it is the first epoch within :data:`BEST_EPOCH_RTOL`
    of the best value (:func:`best_epoch_index`). The report's best epoch is read here too, so the report
    and the plot name the same epoch.
    """
    run_monitor, source = getattr(history, "monitor", None), getattr(history, "monitor_source", None)
    default_monitor = getattr(history, "default_monitor", None)
    if (
        mode == "auto"
        and isinstance(run_monitor, str)
        and source
        and callable(default_monitor)
        and callable(getattr(history, "best", None))
        and default_monitor() == monitor
        and monitor.removeprefix("val_") == run_monitor.removeprefix("val_")
    ):
        number, _ = history.best()  # as the callback judged it
        epochs_of_monitor = _epochs(hist, len(hist[monitor]))
        found = np.flatnonzero(epochs_of_monitor == number) if number is not None else np.array([], dtype=int)
        return (int(found[0]) if found.size else None), bool(history.maximizes()), True
    maximized = _pick_mode(monitor, mode, history) == "max"
    return best_epoch_index(hist[monitor], "max" if maximized else "min", rtol=BEST_EPOCH_RTOL), maximized, False


def _metric_names(hist: Mapping[str, Sequence[float] | np.ndarray]) -> list[str]:
    names: list[str] = []
    for key in hist:
        base = key[4:] if key.startswith("val_") else key
        if base in NON_METRIC_KEYS or base == "loss" or base in names:
            continue
        names.append(base)
    return names


# What the curves of a downslope History are: fit logs the training loss (and metrics) as the mean over
# the epoch's rows (batch losses weighted by batch size), each computed before its own update, and the validation numbers after the
# epoch's last update, so early on (and for full batches) validation can lie below training.
TRAINING_LOSS_MEANING = "mean over the epoch's rows (batch losses weighted by batch size), each before its update"
"""What a History's per-epoch training ``loss`` is (fit logs the mean loss over the epoch's rows: each
batch's loss, computed before that batch's update, weighted by its number of rows, so a short last batch
counts for less), while ``val_loss`` is measured after the epoch's last update: with full
batches the validation loss can therefore lie below the training loss in the first epochs."""

TRAIN_LABEL = f"training ({TRAINING_LOSS_MEANING})"
VAL_LABEL = "validation (after the epoch's updates)"
# GradientDiagnostics' grad_norm: the norm of the gradient of the batches it measured, averaged over the epoch;
# with one batch per epoch that batch is the whole training split
GRAD_NORM_LABEL = "L2 norm of the whole mini-batch gradient (mean over the batches measured)"
GRAD_NORM_FULL_LABEL = "L2 norm of the gradient of the whole training split (full batch: one per epoch)"
LEGEND_FONTSIZE = 7

ACRONYMS = {"mae": "MAE", "mse": "MSE", "rmse": "RMSE", "r2": "R²", "f1": "F1", "auc": "AUC"}


def _pretty(name: str) -> str:
    return " ".join(ACRONYMS.get(word, word) for word in name.split("_"))


def _panel_title(name: str) -> str:
    text = _pretty(name)
    return text[:1].upper() + text[1:]


def plot_loss_curves(
    history: Any,
    *,
    metrics: Sequence[str] | None = None,
    monitor: str | None = None,
    mode: str = "auto",
    log_scale: bool | None = None,
    title: str | None = None,
    panel_titles: Mapping[str, str] | None = None,
    save_path: str | Path | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Training and validation loss (and each metric) against epoch, with the best epoch marked.

    Args:
        history: a History or ``{"loss": [...], "val_loss": [...], "accuracy": [...], ...}``.
        metrics: metric names to draw beside the loss (default: every metric in the history;
            ``val_<name>`` is drawn with ``<name>``). Pass ``[]`` for the loss panel only.
        monitor: the key whose best value marks the best epoch; the best epoch gets a dotted vertical
            line in every panel and a dot, and the legend names the quantity and who chose it. Default:
            what the run monitored (a downslope History's ``monitor``: its EarlyStopping's with
            ``restore_best_weights``, so the epoch marked is the one whose weights the model holds, else
            its ModelCheckpoint's with ``save_best_only``, else its EarlyStopping's), else ``val_loss``
            when present, else ``loss``.
        mode: ``"min"``, ``"max"`` or ``"auto"``: a downslope History's Metric (or the run's callback,
            for its monitor) says which way is better; otherwise only the known higher-is-better
            metric names (accuracy, auc, f1, precision, recall, r2, iou, ... as whole names after a
            ``val_`` prefix) are maximized, and every other name, one this list does not know
            included, is taken as better when lower (pass ``mode="max"`` for such a score).
        log_scale: logarithmic y axis for the loss panel; None (default) picks it when the
            losses are positive and span more than a factor of 50. A log axis says "(log scale)"
            in its label. A log axis cannot show 0 or a negative value: zeros are drawn at a floor a
            decade below the smallest positive loss (a dotted line says so in the legend), and a
            negative loss (an NLL or ELBO can be) makes the axis linear, with a UserWarning.
        panel_titles: ``{name: title}`` for panels whose default title (the name) says too little,
            e.g. ``{"grad_norm": "Mini-batch gradient norm (sampled every 10 batches)"}``.
        ax: draw into these matplotlib Axes instead of a new figure: one Axes per panel (the loss,
            then each metric), e.g. ``plt.subplots(1, 2)[1]``; a single Axes when there is one panel
            (``metrics=[]`` draws the loss only). The Axes' figure is returned (and saved).
        figsize: ``(width, height)`` in inches of the new figure (default: 5 inches per panel, at
            most 16, by 4.2); not with ``ax``.

    An epoch whose value is None was not measured (``fit(validation_freq=k)`` validates every k-th
    epoch only): it is left out, and the series is drawn with markers through the epochs it was
    measured on; only a measured NaN or inf is marked "not finite (diverged)".

    The training curves are what fit logs: the mean over the epoch's rows (batch losses weighted
    by batch size), each computed before its own update (the legend says so); the validation curves are measured after the epoch's last
    update, so with full batches the validation loss can lie below the training loss early on. The
    legend says so for a downslope History only; the curves of a dict or another library's history
    are labelled just "training" and "validation", as nothing says how their numbers were measured.
    """
    require_matplotlib()
    hist, missing = _read_history(history)
    from_fit = isinstance(history, History)  # what fit logged, so the legend can say how it was measured
    if "loss" not in hist and "val_loss" not in hist:
        raise ArgumentError(f"plot_loss_curves: the history has no 'loss' or 'val_loss'; its keys are {sorted(hist)}")
    names = _metric_names(hist) if metrics is None else list(metrics)
    for name in names:
        if name not in hist and f"val_{name}" not in hist:
            raise ArgumentError(f"plot_loss_curves: metric {name!r} is not in the history; its keys are {sorted(hist)}")
    chosen_by = None  # who chose the monitor, for the legend
    if monitor is None:
        run_monitor, source = getattr(history, "monitor", None), getattr(history, "monitor_source", None)
        default_monitor = getattr(history, "default_monitor", None)
        if isinstance(run_monitor, str) and callable(default_monitor) and default_monitor() in hist:
            monitor = default_monitor()  # the run's EarlyStopping/ModelCheckpoint monitor (or its fallback)
            chosen_by = (
                f"{source}'s monitor"
                if source and monitor.removeprefix("val_") == run_monitor.removeprefix("val_")
                else None
            )
        else:
            monitor = "val_loss" if "val_loss" in hist else "loss"
    if monitor not in hist:
        raise ArgumentError(f"plot_loss_curves: monitor {monitor!r} is not in the history; its keys are {sorted(hist)}")
    # the callback's epoch (its mode, min_delta and start_from_epoch) when it chose the monitor; else the
    # first epoch within BEST_EPOCH_RTOL of the best (rounding after convergence does not move the mark)
    best, maximized, by_run = marked_best_index(history, hist, monitor, mode)
    strict = None if by_run else best_epoch_index(hist[monitor], "max" if maximized else "min")
    losses = np.concatenate([hist[k] for k in ("loss", "val_loss") if k in hist])
    if log_scale is None:
        finite_losses = losses[np.isfinite(losses)]
        log_scale = bool(
            finite_losses.size and finite_losses.min() > 0 and finite_losses.max() / finite_losses.min() > 50.0
        )
    floor = None
    if log_scale:
        log_scale, floor = _log_floor(losses, "plot_loss_curves")

    # one batch per epoch (fit's History.params): the gradient measured is the whole training split's
    full_batch = getattr(history, "params", {}).get("steps") == 1
    panels = 1 + len(names)
    what = "a matplotlib Axes" if panels == 1 else f"{panels} Axes, one per panel (loss, {', '.join(names)})"
    fig, given = target_axes(ax, figsize, (min(5.0 * panels, 16.0), 4.2), panels, "plot_loss_curves", what)
    width = float(fig.get_figwidth()) * (1.0 if given is None else float(given[0].get_position().width))
    legend_chars = _legend_chars(width / (panels if given is None else 1))
    axes = fig.subplots(1, panels, squeeze=False)[0] if given is None else given
    for ax, base in zip(axes, ["loss", *names]):
        marked = False  # one legend entry for the not-finite marks of a panel
        panel_floor = floor if base == "loss" else None
        for key, style in ((base, "-"), (f"val_{base}", "--")):
            if key not in hist:
                continue
            all_values = _at_floor(np.asarray(hist[key], dtype=np.float64), panel_floor)
            all_epochs = _epochs(hist, len(all_values))
            # Epochs not measured (None: validation skipped by validation_freq) are left out, so the series
            # runs through its measured epochs; only a measured NaN or inf is a divergence.
            measured = _measured(missing, key, len(all_values))
            values, epochs = all_values[measured], all_epochs[measured]
            if from_fit:
                label = VAL_LABEL if key.startswith("val_") else TRAIN_LABEL
            else:  # a hand-made history: nothing says how its numbers were measured, so the legend says nothing
                label = "validation" if key.startswith("val_") else "training"
            if key == "grad_norm":  # GradientDiagnostics' number: not a loss over the epoch's batches
                label = GRAD_NORM_FULL_LABEL if full_batch else GRAD_NORM_LABEL
            if not measured.all():
                label += f" (measured on {int(measured.sum())} of {len(measured)} epochs)"
            finite = np.isfinite(values)
            # a single point is invisible as a line; a series with skipped epochs shows where it was measured
            marker = "o" if finite.sum() <= 1 or not measured.all() else None
            ax.plot(
                epochs,
                values,
                style,
                color=color(1 if key.startswith("val_") else 0),
                lw=1.8,
                label=label,
                marker=marker,
                ms=4 if marker else None,
            )
            if not finite.all():  # NaN/inf epochs (a diverged run) would vanish: mark them on the top edge
                ax.plot(
                    epochs[~finite],
                    np.full(int((~finite).sum()), 0.97),
                    "x",
                    color=color(3),
                    ms=8,
                    mew=2,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    label=None if marked else "not finite (diverged)",
                )
                marked = True
            if best is not None and best < len(all_values) and measured[best] and np.isfinite(all_values[best]):
                is_monitor = key == monitor
                ax.plot(
                    [all_epochs[best]],
                    [all_values[best]],
                    "o",
                    color="black" if is_monitor else color(1 if key.startswith("val_") else 0),
                    ms=7 if is_monitor else 5,
                    zorder=5,
                )
        if best is not None:
            epoch_value = _epochs(hist, len(hist[monitor]))[best]
            said = f"{_pretty(monitor)} {hist[monitor][best]:.4g}"
            if chosen_by or maximized:  # what is not the default (lowest loss) is said in words
                said += f": the {'highest' if maximized else 'lowest'}" + (f", {chosen_by}" if chosen_by else "")
            if strict is not None and strict != best:  # a later epoch is better by rounding only: said so
                said += f"; the first within {_RTOL_TEXT} (relative) of the {'highest' if maximized else 'lowest'}"
            ax.axvline(epoch_value, color="gray", ls=":", lw=1.5, label=f"best epoch {epoch_value:g} ({said})")
        if panel_floor is not None:
            ax.axhline(panel_floor, color="0.4", ls=":", lw=1.0, label=_floor_label(panel_floor))
        ax.set_xlabel("epoch")
        _whole_number_ticks(ax)
        epochs_run = _epochs(hist, max(len(hist.get(k, [])) for k in (base, f"val_{base}")))
        pad = max(0.5, 0.02 * float(epochs_run[-1] - epochs_run[0])) if len(epochs_run) else 0.5
        if len(epochs_run):  # every epoch run stays on the axis, the diverged ones included
            ax.set_xlim(float(epochs_run[0]) - pad, float(epochs_run[-1]) + pad)
        log_axis = base == "loss" and log_scale
        ax.set_ylabel(_pretty(base) + (" (log scale)" if log_axis else ""))
        default = "Mini-batch gradient norm" if base == "grad_norm" else _panel_title(base)
        ax.set_title((panel_titles or {}).get(base, default), fontsize=10 if panel_titles else None)
        if log_axis:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        # Below the panel, not on it: the long labels (what the training curve and the gradient norm are)
        # make a legend too wide for any free corner, so loc="best" still covered a curve. Wrapped to the
        # panel's share of the figure's width, so that neighbouring legends neither meet nor leave the figure.
        handles, labels = ax.get_legend_handles_labels()
        wrapped = [textwrap.fill(text, width=legend_chars, break_on_hyphens=False) for text in labels]
        ax.legend(handles, wrapped, fontsize=LEGEND_FONTSIZE, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    return finish(fig, save_path)


def _legend_chars(panel_inches: float) -> int:
    """How many characters of a legend line (at LEGEND_FONTSIZE, beside its handle) fit in 85% of a
    panel's share of the figure's width: DejaVu Sans averages about 0.55 em per character and the
    handle with its padding takes about 3.5 em."""
    em = LEGEND_FONTSIZE / 72.0  # inches
    return max(20, int((0.85 * panel_inches - 3.5 * em) / (0.55 * em)))


def _whole_number_ticks(ax: Any) -> None:
    """Epochs and steps are counted in whole numbers (no 2.5 on the axis)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plot_learning_rate(
    history: Any,
    *,
    log_scale: bool | None = None,
    x_label: str = "epoch",
    title: str = "Learning rate",
    save_path: str | Path | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The learning rate against epoch (or step), from a History with an ``lr`` key or a list.

    A History that recorded the rate of every update (``history.lr_steps``, which ``fit`` fills) is
    drawn update by update against fractional epochs: the update on the 0-based ``batch`` of epoch
    ``k`` (of ``steps``) spans ``(k - 1 + batch / steps, k - 1 + (batch + 1) / steps]``, so epoch ``k``
    fills ``(k - 1, k]`` and a per-batch schedule (OneCycleLR) shows its shape within each epoch. Without
    that record (a list, a dict, an older History) each epoch's rate is one step of a staircase.

    ``log_scale=None`` picks a log axis only for a geometric schedule (one that multiplies the rate by
    the same factor at each change: ExponentialLR, StepLR, MultiStepLR, ReduceLROnPlateau, the range
    test's sweep) spanning more than a factor of 10, where equal factors are equal steps on a log axis;
    any other shape (cosine, one-cycle, linear warm-up or decay, a rate reaching 0) is drawn on a linear
    axis, on which a cosine that ends near 0 looks like the smooth curve it is (on a log axis its last
    epochs fell off a cliff). ``log_scale=True``/``False`` overrides it. ``ax``: draw
    into this matplotlib Axes instead of a new figure (its figure is returned and saved);
    ``figsize``: ``(width, height)`` in inches of the new figure (default 6 x 3.8), not with ``ax``.

    Example:
        >>> from downslope.viz.curves import plot_learning_rate
        >>> fig = plot_learning_rate([0.1, 0.1, 0.01, 0.001])
        >>> fig.axes[0].get_yscale()
        'log'
    """
    drawstyle = "steps-post"
    per_update = getattr(history, "lr_steps", None)
    if isinstance(history, (list, tuple, np.ndarray)):
        rates = as_float_array(history, "plot_learning_rate")
        x = np.arange(1, len(rates) + 1, dtype=np.float64)
    elif per_update is not None and len(per_update) and len(per_update) == len(history.lr_step_epochs):
        # each update's rate over its own span: drawn up to where it ends ("steps-pre"), from where the
        # first update began (the start of its epoch: fit starts every epoch at its first batch)
        ends = np.asarray(history.lr_step_epochs, dtype=np.float64)
        rates = np.asarray(per_update, dtype=np.float64)
        x = np.concatenate(([np.ceil(ends[0]) - 1.0], ends))
        rates = np.concatenate((rates[:1], rates))
        drawstyle = "steps-pre"
    else:
        hist = history_to_dict(history)
        key = next((k for k in ("lr", "learning_rate") if k in hist), None)
        if key is None:
            raise ArgumentError(f"plot_learning_rate: the history has no 'lr' key; its keys are {sorted(hist)}")
        rates = np.asarray(hist[key], dtype=np.float64)
        x = _epochs(hist, len(rates))
    if rates.ndim != 1 or rates.size == 0:
        raise ArgumentError(f"plot_learning_rate: expected a non-empty 1-D list of rates, got shape {rates.shape}")
    if log_scale is None:
        log_scale = _geometric(rates) and _span(rates) > LR_LOG_SPAN
    fig, given = target_axes(ax, figsize, (6.0, 3.8), 1, "plot_learning_rate")
    ax = fig.subplots() if given is None else given[0]
    # A rate holds for the whole epoch (or step) it is logged for, so draw it as a staircase.
    ax.plot(x, rates, "-", color=color(2), lw=1.8, drawstyle=drawstyle, marker="." if len(rates) <= 60 else None)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    _whole_number_ticks(ax)
    ax.set_ylabel("learning rate" + (" (log scale)" if log_scale else ""))
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    return finish(fig, save_path)


LR_LOG_SPAN = 10.0
"""The factor a geometric learning-rate schedule must span for :func:`plot_learning_rate` to pick a log axis."""


def _span(rates: np.ndarray) -> float:
    """Largest over smallest positive finite rate (1 when there are none)."""
    positive = rates[np.isfinite(rates) & (rates > 0)]
    return float(positive.max() / positive.min()) if positive.size else 1.0


def _geometric(rates: np.ndarray) -> bool:
    """Whether a schedule multiplies the rate by one factor at every change (exponential, step and
    plateau decays, an exponential sweep): its distinct consecutive levels are a geometric sequence
    (each factor within 1% of the first in log, one way throughout; the last change may be smaller, a
    floor such as ReduceLROnPlateau's min_lr). A rate of 0 or less, or one not finite, is no such schedule.
    """
    if rates.size == 0 or not (np.isfinite(rates).all() and (rates > 0).all()):
        return False
    levels = rates[np.concatenate(([True], rates[1:] != rates[:-1]))]
    if levels.size < 2:
        return False
    steps = np.diff(np.log(levels))
    first = steps[0]
    if not (np.sign(steps) == np.sign(first)).all():
        return False
    same = np.abs(steps[:-1] - first) <= 0.01 * abs(first)
    last = 0.0 < abs(steps[-1]) <= abs(first) * 1.01
    return bool(same.all() and last)


def per_layer_series(source: Any, key: str = "grad_norm") -> dict[str, list[float]]:
    """``{layer name: [value per record]}`` from per-epoch records.

    ``source`` is either that dict already, a list of per-epoch dicts such as
    ``[{"grad_norm": {"0.weight": 1.2, ...}, ...}, ...]``, or an object holding such a list in
    ``.history`` (``train.GradientDiagnostics``); ``key`` picks the quantity in each record.

    Example:
        >>> from downslope.viz.curves import per_layer_series
        >>> per_layer_series([{"grad_norm": {"w": 1.0}}, {"grad_norm": {"w": 0.5}}])
        {'w': [1.0, 0.5]}
    """
    records = getattr(source, "history", source)
    if isinstance(records, Mapping):
        return {str(k): list(v) for k, v in records.items()}
    if not isinstance(records, Sequence) or not all(isinstance(r, Mapping) for r in records):
        raise ArgumentTypeError(
            "expected {layer name: [values]}, a list of per-epoch dicts, or GradientDiagnostics; "
            f"got {type(source).__name__}"
        )
    series: dict[str, list[float]] = {}
    for i, record in enumerate(records):
        values = record.get(key, {})
        if not isinstance(values, Mapping):
            raise ArgumentTypeError(
                f"record {i}: {key!r} should be a dict {{layer name: value}}, got {type(values).__name__}"
            )
        for name, value in values.items():
            # A layer missing from earlier records gets NaN there (a gap in its line).
            series.setdefault(str(name), [float("nan")] * i).append(float(value))
        for column in series.values():
            if len(column) < i + 1:
                column.append(float("nan"))
    return series


def plot_gradient_norms(
    norms: Any,
    *,
    key: str = "grad_norm",
    log_scale: bool = True,
    x_label: str | None = None,
    title: str | None = None,
    save_path: str | Path | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One line per layer (or parameter): its gradient's L2 norm over training.

    ``norms`` is ``{name: [norm per step]}``, or the per-epoch records of
    ``train.GradientDiagnostics`` (the callback itself, or its ``history`` list); ``key`` then picks
    ``"grad_norm"`` (default) or ``"update_ratio"``. Records are labelled for what they are: the norm
    of a mini-batch's gradient (which includes the batch's noise, so it is larger for smaller batches
    at the same point), averaged over the batches measured in the epoch (every ``every_n_batches``-th,
    which the title states when the callback is given).

    On the log axis (default) a norm of exactly 0 (a layer whose gradient died, e.g. dead ReLUs) is
    drawn at a floor a decade below the smallest positive norm, which a dotted line names in the
    legend; a negative value makes the axis linear, with a UserWarning.

    Up to ten layers get one colour, dash pattern and marker each (told apart without colour); more
    are shaded along viridis. ``ax``: draw into this matplotlib Axes instead of a new figure (its
    figure is returned and saved); ``figsize``: ``(width, height)`` in inches of the new figure
    (default 7 x 4.2), not with ``ax``.

    Example:
        >>> from downslope.viz.curves import plot_gradient_norms
        >>> fig = plot_gradient_norms({"0.weight": [1.0, 0.5], "2.weight": [0.1, 0.05]})
        >>> len(fig.axes[0].lines)
        2
    """
    require_matplotlib()
    from_records = not isinstance(getattr(norms, "history", norms), Mapping)
    series = per_layer_series(norms, key)
    if not series:
        raise ArgumentError("plot_gradient_norms: expected a non-empty dict {layer name: [norm per step]}")
    arrays = {}
    for name, values in series.items():
        arr = as_float_array(values, f"plot_gradient_norms[{name!r}]")
        if arr.ndim != 1:
            raise ArgumentError(f"plot_gradient_norms: values of {name!r} must be 1-D, got shape {arr.shape}")
        arrays[name] = arr
    floor = None
    if log_scale:
        log_scale, floor = _log_floor(np.concatenate(list(arrays.values())), "plot_gradient_norms")
    fig, given = target_axes(ax, figsize, (7.0, 4.2), 1, "plot_gradient_norms")
    ax = fig.subplots() if given is None else given[0]
    many = len(series) > 10
    if many:
        from matplotlib import colormaps

        cmap = colormaps["viridis"]
    for i, (name, arr) in enumerate(arrays.items()):
        line_color = cmap(i / max(len(series) - 1, 1)) if many else color(i)
        ax.plot(
            np.arange(1, len(arr) + 1),
            _at_floor(arr, floor),  # a gradient that died to exactly 0 stays on the log axis
            color=line_color,
            lw=1.4,
            label=str(name),
            ls=linestyle(i) if not many else "-",
            marker="o" if len(arr) == 1 else (None if many else marker(i)),
            markevery=max(1, len(arr) // 8),
            ms=4,
        )
    if floor is not None:
        ax.axhline(floor, color="0.4", ls=":", lw=1.0, label=_floor_label(floor))
    _whole_number_ticks(ax)
    if log_scale:
        ax.set_yscale("log")
    quantity = "update-to-weight ratio" if key == "update_ratio" else "gradient L2 norm"
    sampled = getattr(norms, "every_n_batches", None)  # GradientDiagnostics: what one point is
    if from_records and key != "update_ratio":
        quantity = "mini-batch gradient L2 norm"  # a mini-batch's gradient: its noise is in the norm
    ax.set_xlabel(x_label or ("epoch" if from_records else "step"))
    ax.set_ylabel(quantity + (" (log scale)" if log_scale else ""))
    default_title = f"{quantity[:1].upper()}{quantity[1:]} per layer"
    if isinstance(sampled, int) and sampled > 1:
        default_title += f"\n(each epoch: mean over batches sampled every {sampled} batches)"
    elif from_records:
        default_title += "\n(each epoch: mean over its batches)"
    ax.set_title(title or default_title, fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7 if many else 8, ncol=2 if many else 1, loc="best")
    return finish(fig, save_path)


def _wall_times(
    name: str, hist: Mapping[str, Sequence[float] | np.ndarray], n: int, given: Sequence[float] | None, of: str = "loss"
) -> np.ndarray | None:
    """Seconds since the start of training at the end of each epoch (None when the run records none)."""
    if given is not None:
        times = as_float_array(given, f"plot_compare times[{name!r}]")
    elif (key := next((k for k in CUMULATIVE_TIME_KEYS if k in hist), None)) is not None:
        times = np.asarray(hist[key], dtype=np.float64)
    elif (key := next((k for k in PER_EPOCH_TIME_KEYS if k in hist), None)) is not None:
        times = np.cumsum(np.asarray(hist[key], dtype=np.float64))
    else:
        return None
    if len(times) != n:
        raise ArgumentError(f"plot_compare: run {name!r} has {n} epochs of {of} but {len(times)} times")
    return times


def _diverged_at(
    history: Any, hist: Mapping[str, Sequence[float] | np.ndarray], missing: Mapping[str, np.ndarray] | None = None
) -> float | None:
    """The epoch a run diverged at, or None: its first epoch whose loss (or validation loss) is NaN or
    infinite, else its last epoch when training's divergence guard stopped it (a History's
    ``diverged``; a dict's ``stop_kind`` of "diverged"). An epoch not measured (None in ``missing``,
    e.g. the validation ``fit(validation_freq=k)`` skips) is no divergence."""
    missing = missing or {}
    if "loss" not in hist:  # (a run compared on another metric only) its divergence guard can still say so
        stop = history.get("stop_kind") if isinstance(history, Mapping) else None
        n = max((len(v) for v in hist.values()), default=0)
        diverged = getattr(history, "diverged", False) is True or stop == "diverged"
        return float(_epochs(hist, n)[-1]) if diverged and n else None
    n = len(hist["loss"])
    epochs = _epochs(hist, n)
    bad = ~np.isfinite(np.asarray(hist["loss"], dtype=np.float64)) & _measured(missing, "loss", n)
    if "val_loss" in hist and len(hist["val_loss"]) == n:
        bad |= ~np.isfinite(np.asarray(hist["val_loss"], dtype=np.float64)) & _measured(missing, "val_loss", n)
    if bad.any():
        return float(epochs[int(np.argmax(bad))])
    stop = history.get("stop_kind") if isinstance(history, Mapping) else None
    if (getattr(history, "diverged", False) is True or stop == "diverged") and n:
        return float(epochs[-1])
    return None


def _y_label(text: str) -> str:
    """A y label wrapped to lines of at most 34 characters: a longer one stands taller than its panel, out
    over the figure's title."""
    return "\n".join(textwrap.fill(part, width=34) for part in text.split("\n"))


def _compared(metric: str | Sequence[str]) -> list[str]:
    """The base names compared (``val_`` taken off: a metric's validation row is drawn with its training row)."""
    names = [metric] if isinstance(metric, str) else metric
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) and n for n in names):
        raise ArgumentTypeError(
            f"plot_compare: metric must be a name in the runs' histories ('loss', 'accuracy', ...) or a list of "
            f"them, got {metric!r}"
        )
    bases: list[str] = []
    for name in names:
        base = name[4:] if name.startswith("val_") else name
        if base not in bases:
            bases.append(base)
    return bases


def _row_label(key: str, log_axis: bool, from_fit: bool) -> str:
    """The y label of a row: which split and metric it shows (and, for runs fit logged, how it was measured)."""
    validation = key.startswith("val_")
    base = key[4:] if validation else key
    head = f"{'validation' if validation else 'training'} {_pretty(base)}" + (" (log scale)" if log_axis else "")
    if not from_fit:  # a hand-made or another library's history: nothing says how its numbers were measured
        return head
    if validation:
        said = "after the epoch's last update"
    elif base == "loss":
        said = TRAINING_LOSS_MEANING
    else:
        said = "over the epoch's batches, each before its update"
    return f"{head}\n({said})"


def _check_runs(runs: Any) -> None:
    """``runs`` is a non-empty ``{run name: history}``; a list of histories, or one history passed as the
    runs (its keys taken for run names), is refused saying what to pass."""
    if isinstance(runs, Mapping):
        if not runs:
            raise ArgumentError("plot_compare: expected a non-empty dict {run name: history}, got an empty one")
        columns = [k for k, v in runs.items() if isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str)]
        if columns:
            raise ArgumentTypeError(
                f"plot_compare: runs must be {{run name: history}}, but {columns[0]!r} holds a "
                f"{type(runs[columns[0]]).__name__}, not a History or a dict of per-epoch lists: this looks like one "
                f"history (keys {sorted(map(str, runs))}); draw it with plot_loss_curves(history), or name it: "
                "plot_compare({'my run': history})"
            )
        return
    kind = type(runs).__name__
    if isinstance(runs, (list, tuple)):
        raise ArgumentTypeError(
            f"plot_compare: expected a dict {{run name: history}} (the names are the legend), got a {kind} of "
            f"{len(runs)} histories; name them, e.g. {{'sgd': h1, 'adam': h2}}, or "
            "{f'run {i + 1}': h for i, h in enumerate(histories)}"
        )
    if callable(getattr(runs, "as_dict", None)) or isinstance(getattr(runs, "history", None), Mapping):
        raise ArgumentTypeError(
            f"plot_compare: expected a dict {{run name: history}}, got one {kind}; draw it with "
            "plot_loss_curves(history), or name it: plot_compare({'my run': history})"
        )
    raise ArgumentTypeError(f"plot_compare: expected a dict {{run name: history}}, got {kind}")


def plot_compare(
    runs: Mapping[str, Any],
    *,
    metric: str | Sequence[str] = "loss",
    times: Mapping[str, Sequence[float]] | None = None,
    log_scale: bool | None = None,
    title: str | None = "Several runs on one task",
    target: float | None = None,
    updates_per_epoch: Mapping[str, int] | None = None,
    labels: Mapping[str, str] | None = None,
    save_path: str | Path | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Several runs overlaid, one colour and one marker per run: each metric compared (the loss by
    default) on training data (solid) and, in the row below, on validation data (dashed, when any run
    has it), against epoch, against updates (when ``updates_per_epoch`` is given) and against wall time.

    Args:
        runs: ``{run name: History or dict}``; the names are the legend (a list of histories is
            refused: name them).
        metric: the key compared, or a list of them (``["loss", "accuracy"]``: a pair of rows each).
            ``"accuracy"`` and ``"val_accuracy"`` name the same pair of rows, as in the rest of
            ``downslope.viz``: ``accuracy`` on training data and ``val_accuracy`` below it. Each axis is
            labelled with its split and metric ("validation accuracy"); every run must hold the metric
            (on training or validation data).
        times: ``{run name: [seconds since the start at the end of each epoch]}``; by default read
            from the history (``wall_time``/``elapsed``/``time`` cumulative, ``epoch_time`` per epoch).
            When a run has none (plain per-epoch loss lists), the panels against wall time are left
            out and the title says so.
        log_scale: a logarithmic y axis; None (default): for the loss rows, linear for other metrics
            (an accuracy's axis). A log axis says "(log scale)" in its label.
        target: a target value of the first metric (a target loss: what "epochs/seconds to target" in
            ``downslope compare``'s table are measured against), drawn as a dotted grey line on its
            validation row only (on its training row when no run has validation numbers), with each
            run's first epoch at or below it marked (at or above it, for a metric where higher is
            better: accuracy, auc, f1, ... as whole names).
        updates_per_epoch: ``{run name: optimizer updates per epoch}``; adds the column of panels
            against updates (epoch x updates per epoch: one per sample for batch size 1), so runs of
            different batch sizes are compared by the number of steps they took.
        labels: ``{run name: legend text}`` (default: the name).
        ax: draw into these matplotlib Axes instead of a new figure: a rows x columns grid of them
            (as ``plt.subplots(rows, columns)`` returns it; rows: per metric, its training row when any
            run has it, then its validation row when any run has it; columns: epoch, then updates when
            ``updates_per_epoch`` is given, then wall time when every run has times). The figure is
            returned (and saved).
        figsize: ``(width, height)`` in inches of the new figure (default 5 per column by 3.6 per
            row); not with ``ax``.

    The y labels of runs that are all downslope Histories say how fit measured the numbers (the
    training ones over the epoch, each batch before its update; the validation ones after the epoch's
    last update); those of a dict or another library's history name just the split and the metric.

    An epoch whose value is None (not measured: ``fit(validation_freq=k)``) is left out, the series
    drawn with markers through its measured epochs. On a log axis a value of 0 is drawn at a floor a
    decade below the smallest positive one, and a negative value makes the axis linear, with a
    UserWarning.

    A run that diverged (training's divergence guard stopped it, or its loss became NaN or infinite)
    says so in the legend, "(diverged at epoch N)", and its last finite point is marked ``x`` in
    every panel.

    Example:
        >>> from downslope.viz.curves import plot_compare
        >>> runs = {"sgd": {"loss": [1.0, 0.6], "accuracy": [0.5, 0.7]}, "adam": {"loss": [0.9, 0.4], "accuracy": [0.6, 0.8]}}
        >>> fig = plot_compare(runs, metric="accuracy")
        >>> fig.axes[0].get_ylabel(), [t.get_text() for t in fig.legends[0].get_texts()]
        ('training accuracy', ['sgd', 'adam'])
    """
    _check_runs(runs)
    bases = _compared(metric)
    read = {name: _read_history(history) for name, history in runs.items()}
    hists = {name: hist for name, (hist, _) in read.items()}
    missing = {name: gaps for name, (_, gaps) in read.items()}
    from_fit = all(isinstance(history, History) for history in runs.values())
    for name, hist in hists.items():
        for base in bases:
            if base not in hist and f"val_{base}" not in hist:
                raise ArgumentError(
                    f"plot_compare: run {name!r} has no {base!r} (nor 'val_{base}') to compare; its keys are "
                    f"{sorted(hist)}"
                )
    # rows: (key, line style), each metric's training row then its validation row, where any run has it
    rows = [
        (key, style)
        for base in bases
        for key, style in ((base, "-"), (f"val_{base}", "--"))
        if any(key in h for h in hists.values())
    ]
    keys = [key for key, _ in rows]
    # the epochs of a run: its longest column compared (the one its times must match)
    longest = {name: max((k for k in keys if k in hist), key=lambda k: len(hist[k])) for name, hist in hists.items()}
    wall_times = {
        name: _wall_times(
            name, hist, len(hist[longest[name]]), None if times is None else times.get(name), longest[name]
        )
        for name, hist in hists.items()
    }
    untimed = [name for name, t in wall_times.items() if t is None]
    target_base = bases[0]
    # compare measures the target on the validation numbers when there are any
    target_key = f"val_{target_base}" if f"val_{target_base}" in keys else target_base
    maximize = higher_is_better_name(target_base)
    # Plain per-epoch losses (a hand-written loop) need no time: without it for every run, the panels
    # against wall time are left out and the title says so.
    columns = (
        ["epoch"] + (["updates"] if updates_per_epoch is not None else []) + ([] if untimed else ["wall time (s)"])
    )
    log_axes: dict[str, bool] = {}
    floors: dict[str, float | None] = {}
    for base in bases:
        log_axes[base], floors[base] = (log_scale if log_scale is not None else base == "loss"), None
        if log_axes[base]:
            values = np.concatenate([h[k] for h in hists.values() for k in (base, f"val_{base}") if k in h])
            log_axes[base], floors[base] = _log_floor(
                values, "plot_compare" if base == "loss" else f"plot_compare {base!r}"
            )
    shape = f"{len(rows)} x {len(columns)} grid of Axes (rows: {', '.join(keys)}; columns: {', '.join(columns)})"
    fig, given = target_axes(
        ax, figsize, (5.0 * len(columns), 3.6 * len(rows) + 0.6), len(rows) * len(columns), "plot_compare", shape
    )
    if given is None:
        grid = fig.subplots(len(rows), len(columns), squeeze=False)
    else:
        grid = np.array(given, dtype=object).reshape(len(rows), len(columns))
    diverged = {name: _diverged_at(runs[name], hist, missing[name]) for name, hist in hists.items()}
    run_handles: list[Any] = []  # each run's first line, for the legend (a run may miss the first row)
    run_texts: list[str] = []
    for i, (name, hist) in enumerate(hists.items()):
        epochs = _epochs(hist, len(hist[longest[name]]))
        xs = {"epoch": epochs}
        if not untimed:
            xs["wall time (s)"] = wall_times[name]  # type: ignore[assignment]
        if updates_per_epoch is not None:
            if name not in updates_per_epoch:
                raise ArgumentError(f"plot_compare: updates_per_epoch has no entry for run {name!r}")
            xs["updates"] = epochs * float(updates_per_epoch[name])
        label = (labels or {}).get(name, name)
        diverged_at = diverged[name]
        if diverged_at is not None:
            label += f" (diverged at epoch {diverged_at:g})"
        for r, (key, style) in enumerate(rows):
            if key not in hist:
                continue
            floor = floors[key[4:] if key.startswith("val_") else key]
            all_values = _at_floor(np.asarray(hist[key], dtype=np.float64), floor)
            measured = _measured(missing[name], key, len(all_values))  # None: not measured that epoch
            values = all_values[measured]
            reached = None
            if target is not None and key == target_key:
                finite = np.isfinite(values)
                below = np.flatnonzero(finite & ((values >= target) if maximize else (values <= target)))
                reached = int(below[0]) if len(below) else None
            for c, column in enumerate(columns):
                ax = grid[r][c]
                x = xs[column][: len(all_values)][measured]
                # a marker of its own per run (every eighth of the curve): runs differ by more than colour
                (line,) = ax.plot(
                    x, values, style, color=color(i), lw=1.6, label=None if len(run_texts) > i else label,
                    marker=marker(i + 1), ms=3 if not measured.all() else 5,  # 'o' marks the target reached
                    markevery=1 if not measured.all() else max(1, len(values) // 8),
                )  # fmt: skip
                if len(run_texts) == i:
                    run_handles.append(line)
                    run_texts.append(label)
                finite_at = np.flatnonzero(np.isfinite(values))
                if diverged_at is not None and finite_at.size:  # where the curve ends: the last finite value
                    j = int(finite_at[-1])
                    ax.plot([x[j]], [values[j]], "x", color=color(i), ms=9, mew=2, zorder=6)
                if reached is not None:
                    ax.plot([x[reached]], [values[reached]], "o", color=color(i), ms=5, zorder=5)
    steps = [float(v) for v in (updates_per_epoch or {}).values() if v > 0]
    updates_spread = max(steps) / min(steps) if steps else 1.0
    from matplotlib.lines import Line2D

    for base in bases:
        floor = floors[base]
        if floor is not None:
            text = _floor_label(floor) if len(bases) == 1 else f"{_pretty(base)}: {_floor_label(floor)}"
            run_handles.append(Line2D([], [], ls=":", color="0.4", lw=1.0))
            run_texts.append(text)
    if any(at is not None for at in diverged.values()):
        # one legend key, in grey, for the x marks of every diverged run
        run_handles.append(Line2D([], [], ls="none", marker="x", color="0.35", ms=9, mew=2))
        run_texts.append("last finite point of a diverged run")
    for r, (key, _) in enumerate(rows):
        validation = key.startswith("val_")
        base = key[4:] if validation else key
        for c, column in enumerate(columns):
            ax = grid[r][c]
            if target is not None and key == target_key:
                what = ("val " if validation else "") + _pretty(base)
                line = ax.axhline(target, color="0.4", ls=":", lw=1.2)
                if c == 0:
                    ax.legend([line], [f"{what} target {target:.3g} (dots: reached)"], fontsize=7)
            if column == "updates" and updates_spread > 50:  # batch 1 and full batch on one axis
                ax.set_xscale("log")
                ax.set_xlabel("updates (log scale)")
            else:
                ax.set_xlabel(column)
                if column != "wall time (s)":
                    _whole_number_ticks(ax)
            ax.set_ylabel(_y_label(_row_label(key, log_axes[base], from_fit)), fontsize=8)
            if log_axes[base]:
                ax.set_yscale("log")
            if floors[base] is not None:
                ax.axhline(floors[base], color="0.4", ls=":", lw=1.0)
            ax.grid(True, alpha=0.3, which="both")
            split = "Validation" if validation else "Training"
            ax.set_title(f"{split} {_pretty(base)} against {column.replace(' (s)', '')}", fontsize=10)
    # one legend for the runs, below the panels (inside one it would hide curves)
    if given is None:
        fig.legend(
            run_handles, run_texts, loc="outside lower center", ncol=min(3, len(run_texts)), fontsize=8, frameon=False
        )
    else:  # a figure the caller laid out: the runs' legend goes on the first panel
        grid[0][0].legend(run_handles, run_texts, fontsize=7, loc="best", framealpha=0.8)
    if untimed:
        shown = ", ".join(repr(name) for name in untimed[:3]) + (", ..." if len(untimed) > 3 else "")
        note = f"no wall time recorded for {shown}: the panels against time are left out"
        title = f"{title}\n({note})" if title else note
    if title:
        fig.suptitle(title)
    return finish(fig, save_path)
