"""2-D classification: the model's decision regions over a grid, with the data points on top.

Example:
    >>> import numpy as np
    >>> from downslope.viz.boundary import plot_decision_boundary
    >>> x = np.array([[-1.0, 0.0], [1.0, 0.0], [-2.0, 1.0], [2.0, -1.0]]); y = np.array([0, 1, 0, 1])
    >>> fig = plot_decision_boundary(lambda t: t[:, :1], x, y)  # logit = first feature
    >>> fig.axes[0].get_xlabel()
    'x1'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ._model import check_model, predict_array
from ._mpl import as_float_array, color, finish, marker, require_matplotlib, target_axes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..tensor import Tensor


def class_probabilities(outputs: np.ndarray, output: str = "logits") -> np.ndarray:
    """``(M, C)`` class probabilities from model outputs.

    ``outputs`` is ``(M, C)`` with ``C >= 2`` (softmax of logits, or probabilities as they are), or
    ``(M,)``/``(M, 1)`` for a binary model (sigmoid of the logit, or P(class 1) as it is).

    Example:
        >>> import numpy as np
        >>> from downslope.viz.boundary import class_probabilities
        >>> class_probabilities(np.array([0.0])).tolist()
        [[0.5, 0.5]]
    """
    if output not in ("logits", "probabilities"):
        raise ArgumentError(f"output: expected 'logits' or 'probabilities', got {output!r}")
    out = as_float_array(outputs, "class_probabilities outputs")
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim == 1:
        p1 = 1.0 / (1.0 + np.exp(-out)) if output == "logits" else out
        return np.stack([1.0 - p1, p1], axis=1)
    if out.ndim != 2:
        raise ArgumentError(f"expected model outputs of shape (M,), (M, 1) or (M, C); got {tuple(out.shape)}")
    if output == "probabilities":
        return out
    shifted = out - out.max(axis=1, keepdims=True)  # stable softmax
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


# Rows of a C-column output that all lie in [0, 1] and sum to 1 within this are probabilities already
# (a model ending in Softmax): a second softmax would flatten them towards 1 / C.
PROBABILITY_SUM_TOLERANCE = 1e-4
NOT_FINITE_COLOR = "0.6"
NOT_FINITE_HATCH = "xx"
# How opaque the class regions are: enough that ten classes stay apart (tints of the palette at 0.3 merged),
# little enough that the data points on top stay visible.
REGION_ALPHA = 0.45
# With more classes than this the legend goes beside the axes: inside, it covered regions.
LEGEND_INSIDE_MAX = 4


def _window(values: np.ndarray) -> tuple[float, float]:
    """A plot window around ``values``: their range padded by 10%, or +-1 (10% of the value, if larger)
    around a single value."""
    lo, hi = float(values.min()), float(values.max())
    pad = 0.1 * (hi - lo) if hi > lo else max(1.0, 0.1 * abs(lo))
    return lo - pad, hi + pad


def _pick_features(
    xs: np.ndarray, features: Any, fixed_values: Any, feature_names: Any, where: str
) -> tuple[tuple[int, int], np.ndarray, list[str], str]:
    """The two columns drawn, the value of every column on the grid (the others' fixed values), the two
    axis labels and a note naming the fixed values ('' with two features)."""
    n = xs.shape[1]
    if features is None:
        if n != 2:
            raise ArgumentError(
                f"{where}: x must have shape (N, 2) (two features) to draw a plane, got {xs.shape}; pick the "
                f"two to draw with features=(i, j) (e.g. features=(0, 1)): the other features are then held at their "
                f"median over x, or at fixed_values=[...] (one value per feature; those drawn are ignored). A model "
                f"trained on all {n} features needs all of them: passing x[:, :2] alone cannot work"
            )
        features = (0, 1)
    try:
        i, j = (int(f) for f in features)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{where}: features must be two column indices (i, j), got {features!r}") from None
    if not (0 <= i < n and 0 <= j < n) or i == j:
        raise ArgumentError(f"{where}: features must be two different columns of x's {n}, got {features!r}")
    finite_rows = np.isfinite(xs).all(axis=1)
    if fixed_values is None:
        base = np.nanmedian(xs[finite_rows], axis=0) if finite_rows.any() else np.zeros(n)
        how = "median"
    else:
        base = as_float_array(fixed_values, f"{where} fixed_values").reshape(-1)
        if base.shape != (n,):
            raise ArgumentError(
                f"{where}: fixed_values must hold one value per feature of x ({n}), got {base.size}; the values of "
                f"the two features drawn ({i}, {j}) are ignored"
            )
        how = "given"
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence) or len(feature_names) not in (2, n):
        raise ArgumentError(
            f"{where}: feature_names must name the two features drawn (or all {n} of x's), e.g. ('height', "
            f"'weight'); got {feature_names!r}"
        )
    every = list(feature_names) if len(feature_names) == n else None
    if every is None and tuple(feature_names) == ("x1", "x2") and n > 2:
        every = [f"x{k + 1}" for k in range(n)]
    names = [str(every[i]), str(every[j])] if every is not None else [str(f) for f in feature_names]
    others = [k for k in range(n) if k not in (i, j)]
    note = ""
    if others:
        held = ", ".join(f"{every[k] if every is not None else f'x{k + 1}'} = {base[k]:.3g}" for k in others)
        note = f"other features held at: {held} ({how}); points are the data projected on the plane"
    return (i, j), base, names, note


def _check_grid_points(grid_points: Any, where: str) -> int:
    if isinstance(grid_points, bool) or not isinstance(grid_points, (int, np.integer)):
        raise ArgumentTypeError(
            f"{where}: grid_points must be an integer of at least 2 (points per axis), got {grid_points!r}"
        )
    if grid_points < 2:
        raise ArgumentError(f"{where}: grid_points must be at least 2 (points per axis), got {grid_points}")
    return int(grid_points)


def _class_labels(y: Any, n_samples: int) -> np.ndarray:
    """``(N,)`` integer class labels from ``(N,)``/``(N, 1)`` indices or ``(N, C)`` one-hot rows."""
    labels = as_float_array(y, "plot_decision_boundary y")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:
        one_hot = labels.shape[1] > 1 and bool(np.isin(labels, (0.0, 1.0)).all() and (labels.sum(axis=1) == 1).all())
        if not one_hot:
            raise ArgumentError(
                f"plot_decision_boundary: y must be class indices of shape (N,), got shape {tuple(labels.shape)} whose rows "
                "are not one-hot; pass the class of each row (y.argmax(1) for scores)"
            )
        labels = labels.argmax(axis=1).astype(np.float64)  # one-hot rows (Keras' habit): the class of each row
    if labels.ndim != 1:
        raise ArgumentError(
            f"plot_decision_boundary: y must be class indices of shape (N,) or one-hot rows (N, C), got shape "
            f"{tuple(labels.shape)}"
        )
    if len(labels) != n_samples:
        raise ArgumentError(f"plot_decision_boundary: x has {n_samples} samples but y has {len(labels)}")
    if not np.all(labels == np.round(labels)) or (labels < 0).any():
        raise ArgumentError("plot_decision_boundary: y must hold non-negative integer class labels")
    return labels.astype(np.int64)


def _are_probabilities(raw: np.ndarray) -> bool:
    """Whether every row of a C-column output (C >= 2) is a probability distribution."""
    return bool(
        raw.ndim == 2
        and raw.shape[1] >= 2
        and raw.size
        and ((raw >= 0) & (raw <= 1)).all()
        and (np.abs(raw.sum(axis=1) - 1.0) <= PROBABILITY_SUM_TOLERANCE).all()
    )


def plot_decision_boundary(
    model: Callable[[Tensor], Any],
    x: Any,
    y: Any,
    *,
    output: str = "logits",
    show: str = "class",
    grid_points: int = 200,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] = ("x1", "x2"),
    title: str = "Decision boundary",
    save_path: str | Path | None = None,
    features: tuple[int, int] | None = None,
    fixed_values: Sequence[float] | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Decision regions of a 2-feature classifier with the samples coloured by their true class (a
    classifier of more features is drawn on a plane of two of them: ``features=(i, j)``).

    Args:
        model: called on a ``(grid_points**2, 2)`` tensor of the model's parameter dtype (float32 for a
            plain function; ``no_grad``, eval mode); returns ``(M, C)`` scores or ``(M,)``/``(M, 1)`` for
            a binary model.
        x: ``(N, 2)`` features (``(N, F)`` with ``features``); y: ``(N,)`` integer class labels, ``(N, C)`` one-hot rows (each row's
            class is its 1), or class names (strings), which stand for the classes in sorted order and
            name them in the legend.
        output: whether the model returns ``"logits"`` (default) or ``"probabilities"``. With
            ``"logits"``, a C-column output whose every row lies in [0, 1] and sums to 1 (within 1e-4),
            as a model ending in Softmax gives, is taken as probabilities as it is (no second
            softmax); a 1-column output in [0, 1] is warned about (it may be a final Sigmoid).
        show: ``"class"`` fills each region with its predicted class's colour; ``"probability"``
            shades by P(class 1) for a binary model (with a colour bar), from class 0's colour through
            white to class 1's, or blends the class colours by their probabilities for more classes.
            Both use the same class colours (the regions' and the points'). The 0.5 / argmax boundary
            is drawn in black.
        grid_points: points per axis of the grid (at least 2).
        class_names: one name per class the model outputs (at least as many as its classes).
        feature_names: the two axis labels (or one name per feature of x, with ``features``).
        features: for a model of more than two features, the two columns of x to draw, ``(i, j)``: the
            grid varies those and holds every other feature at ``fixed_values`` (a slice of the model,
            as a partial-dependence plot without the averaging); the title says where they are held.
        fixed_values: one value per feature of x (those of the two drawn are ignored); default: each
            feature's median over x.
        ax: draw into this matplotlib Axes instead of a new figure (its figure is returned and saved).
        figsize: ``(width, height)`` in inches of the new figure (default 6.8 x 5.2); not with ``ax``.

    Samples whose features are NaN or infinite are left out (the legend says how many). The window is
    the data's range padded by 10% (+-1 around a single sample). Each class has its own colour (from a
    colour-blind-safe palette) and marker; with more than four classes the legend stands beside the axes.

    The class regions are the argmax drawn cell by cell (a class the model never predicts has no
    area); their borders are drawn where the predicted class changes, as smooth lines (the zero
    level of each class's probability margin over the next best; for two classes, P = 0.5). Grid points where the model's
    outputs are NaN or infinite (a diverged model) are drawn hatched grey, "not finite" in the
    legend, and a UserWarning says on how many.
    """
    require_matplotlib()
    where = "plot_decision_boundary"
    if show not in ("class", "probability"):
        raise ArgumentError(f"show: expected 'class' or 'probability', got {show!r}")
    grid_points = _check_grid_points(grid_points, where)
    check_model(model, where)
    xs_all = as_float_array(x, "plot_decision_boundary x")
    if xs_all.ndim != 2 or xs_all.shape[1] < 2:
        raise ArgumentError(f"plot_decision_boundary: x must have shape (N, 2) (two features); got {xs_all.shape}")
    if len(xs_all) == 0:  # said as such: the NaN check below would call no rows "every sample NaN"
        raise ArgumentError(f"{where}: x has no rows (shape {xs_all.shape}); nothing to draw")
    (fi, fj), base, axis_names, held_note = _pick_features(xs_all, features, fixed_values, feature_names, where)
    if isinstance(y, (list, tuple, np.ndarray)) and np.asarray(y).dtype.kind in "USO":
        # class names as labels: their sorted order is the class index (LabelEncoder's convention)
        names_found, codes = np.unique(np.asarray(y).astype(str), return_inverse=True)
        class_names = list(class_names) if class_names is not None else [str(n) for n in names_found]
        y = codes.reshape(-1)
    labels_int = _class_labels(y, len(xs_all))
    # a sample with a NaN or inf feature (a missing value) has no place on the plane: left out, and counted
    kept = np.isfinite(xs_all).all(axis=1)
    if not kept.any():
        raise ArgumentError(
            f"{where}: every one of the {len(xs_all)} samples has a NaN or infinite feature; nothing to draw"
        )
    xs = xs_all[kept][:, [fi, fj]]
    labels_int = labels_int[kept]

    gx = np.linspace(*_window(xs[:, 0]), grid_points)
    gy = np.linspace(*_window(xs[:, 1]), grid_points)
    X, Y = np.meshgrid(gx, gy)
    grid = np.repeat(base[None, :], X.size, axis=0)  # predict_array casts it to the model's dtype
    grid[:, fi], grid[:, fj] = X.ravel(), Y.ravel()
    try:
        raw = predict_array(model, grid, where)
    except (ValueError, TypeError, IndexError) as exc:
        if features is not None or xs_all.shape[1] != 2:
            raise
        raise type(exc)(
            f"{where}: calling the model on a grid of 2 features failed ({exc}); if the model takes more features, "
            "pass all of x and pick the two to draw with features=(i, j) (the others are held at their median, "
            "or at fixed_values=...)"
        ) from exc
    bad = ~np.isfinite(raw.reshape(len(raw), -1)).all(axis=1)  # grid points with a NaN or inf output
    if bad.any():
        import warnings

        warnings.warn(
            f"{where}: the model's outputs are not finite (NaN or inf) on {int(bad.sum())} of {len(bad)} grid "
            "points; the model may have diverged (its weights may be NaN or inf). Those points are drawn "
            "hatched grey ('not finite'), not as any class",
            UserWarning,
            stacklevel=2,
        )
    finite_raw = raw[~bad]
    if output == "logits" and _are_probabilities(finite_raw):
        output = "probabilities"  # a final Softmax: its rows are the probabilities already
    if (
        output == "logits"
        and finite_raw.size
        and (raw.ndim == 1 or raw.shape[1] == 1)
        and ((finite_raw >= 0) & (finite_raw <= 1)).all()
    ):
        import warnings

        warnings.warn(
            "plot_decision_boundary: every output of the model lies in [0, 1], which looks like probabilities "
            "(a final Sigmoid) read as logits; pass output='probabilities' if so (otherwise the sigmoid is "
            "applied twice and the whole plane may show one class)",
            UserWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore", over="ignore"):
        probs = class_probabilities(np.where(bad[:, None] if raw.ndim == 2 else bad, 0.0, raw), output)
    probs[bad] = np.nan
    n_classes = probs.shape[1]
    if labels_int.max(initial=0) >= n_classes:
        raise ArgumentError(
            f"plot_decision_boundary: y has class {labels_int.max()} but the model outputs {n_classes} classes"
        )
    if class_names is not None and len(class_names) < n_classes:
        raise ArgumentError(
            f"{where}: class_names has {len(class_names)} names ({list(class_names)}) but the model outputs "
            f"{n_classes} classes; give one name per class"
        )
    predicted = np.ma.masked_array(probs.argmax(axis=1), mask=bad).reshape(X.shape)
    names = list(class_names) if class_names is not None else [f"class {k}" for k in range(n_classes)]

    from matplotlib.colors import LinearSegmentedColormap, ListedColormap, to_rgb
    from matplotlib.patches import Patch, Rectangle

    palette = [color(k) for k in range(n_classes)]
    fig, given = target_axes(ax, figsize, (6.8, 5.2), 1, where)
    ax = fig.subplots() if given is None else given[0]
    half_x, half_y = (gx[1] - gx[0]) / 2, (gy[1] - gy[0]) / 2
    cells = (gx[0] - half_x, gx[-1] + half_x, gy[0] - half_y, gy[-1] + half_y)  # each grid point's cell centred on it
    if show == "probability" and n_classes == 2:
        p1 = np.ma.masked_invalid(probs[:, 1].reshape(X.shape))
        # from class 0's colour (P = 0) through white (0.5) to class 1's (P = 1): the same colours as
        # show="class" and the points, so the two views side by side read alike (RdBu_r's blue and red
        # did not match the class palette's blue and orange)
        shades = LinearSegmentedColormap.from_list("class 0 to class 1", [palette[0], "white", palette[1]])
        filled = ax.contourf(X, Y, p1, levels=np.linspace(0, 1, 21), cmap=shades, alpha=0.5)
        fig.colorbar(filled, ax=ax, label=f"P({names[1]})")
    elif show == "probability":
        rgb = np.nan_to_num(probs) @ np.array([to_rgb(c) for c in palette])  # blend the class colours
        faded = 1.0 - 0.45 * (1.0 - rgb)  # lighten so the points stay visible
        faded[bad] = 1.0  # white under the hatching
        ax.imshow(faded.reshape(*X.shape, 3), origin="lower", extent=cells, aspect="auto", interpolation="nearest")
    else:
        # The argmax cell by cell, as an image of the even grid (a mesh of quads draws 250,000 cells 5x
        # slower): a contourf of the class index would pass through the classes between two neighbours (a
        # sliver of class 1 where 0 meets 2, even if 1 is never predicted).
        ax.imshow(
            predicted, origin="lower", extent=cells, aspect="auto", interpolation="nearest",
            cmap=ListedColormap(palette), vmin=-0.5, vmax=n_classes - 0.5, alpha=REGION_ALPHA if n_classes > 2 else 0.3,
        )  # fmt: skip
    # Region borders: where the predicted class changes (for two classes the smooth P = 0.5 line); one
    # contour of each predicted class's indicator, so a border is never a band of intermediate levels.
    if n_classes == 2:
        if (~bad).any():
            ax.contour(
                X, Y, np.ma.masked_invalid(probs[:, 1].reshape(X.shape)), levels=[0.5], colors="black",
                linewidths=1.2,
            )  # fmt: skip
    else:
        # Each class's margin, its probability less the best other class's, is 0 exactly on its region's
        # border and changes smoothly across it: its zero contour is as smooth as the 2-class P = 0.5 line
        # (a contour of the 0/1 indicator of the argmax followed the grid's cells, a staircase).
        present = np.unique(predicted.compressed())
        filled_probs = np.nan_to_num(probs)
        for k in present[:-1] if len(present) > 1 else []:  # the last class's borders are the others'
            margin = filled_probs[:, k] - np.delete(filled_probs, k, axis=1).max(axis=1)
            ax.contour(X, Y, np.ma.masked_array(margin.reshape(X.shape), mask=predicted.mask), levels=[0.0],
                       colors="black", linewidths=1.2)  # fmt: skip
    if bad.any():
        bad_grid = bad.reshape(X.shape)
        # grey on exactly the cells that are not finite, hatched (an image cannot be hatched: a filled contour
        # of the same mask carries the hatching)
        ax.imshow(
            np.ma.masked_array(np.ones(X.shape), mask=~bad_grid), origin="lower", extent=cells, aspect="auto",
            interpolation="nearest", cmap=ListedColormap([NOT_FINITE_COLOR]), alpha=0.6,
        )  # fmt: skip
        if bad_grid.all():  # a constant field has no contour: hatch the whole window
            ax.add_patch(Rectangle((cells[0], cells[2]), cells[1] - cells[0], cells[3] - cells[2], fill=False,
                                   hatch=NOT_FINITE_HATCH, edgecolor="0.3", linewidth=0))  # fmt: skip
        else:
            ax.contourf(X, Y, bad_grid.astype(np.float64), levels=[0.5, 1.5], colors="none", hatches=[NOT_FINITE_HATCH])
    for k in range(n_classes):
        members = labels_int == k
        if members.any():
            ax.scatter(
                xs[members, 0],
                xs[members, 1],
                s=22 if n_classes > 2 else 18,
                color=palette[k],
                marker=marker(k) if n_classes > 2 else "o",  # classes told apart without colour too
                edgecolors="black",
                linewidths=0.6,
                label=names[k],
            )
    handles, texts = ax.get_legend_handles_labels()
    if bad.any():
        handles.append(Patch(facecolor=NOT_FINITE_COLOR, edgecolor="0.3", hatch=NOT_FINITE_HATCH, alpha=0.5))
        texts.append(f"not finite ({int(bad.sum())} of {len(bad)} grid points)")
    if not kept.all():
        left_out = int((~kept).sum())
        handles.append(Patch(facecolor="none", edgecolor="none"))
        texts.append(f"{left_out} sample{'s' if left_out != 1 else ''} with NaN or inf left out")
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(f"{title}\n({held_note})" if held_note else title, fontsize=None if not held_note else 9)
    if len(texts) > LEGEND_INSIDE_MAX:
        ax.legend(handles, texts, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        ax.legend(handles, texts, fontsize=9, loc="best", framealpha=0.7)
    return finish(fig, save_path)
