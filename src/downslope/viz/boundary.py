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
from ._model import predict_array
from ._mpl import as_float_array, color, finish, new_figure, require_matplotlib

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
        raise ArgumentError(f"expected model outputs of shape (M,), (M, 1) or (M, C); got {out.shape}")
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
                f"plot_decision_boundary: y must be class indices of shape (N,), got shape {labels.shape} whose rows "
                "are not one-hot; pass the class of each row (y.argmax(1) for scores)"
            )
        labels = labels.argmax(axis=1).astype(np.float64)  # one-hot rows (Keras' habit): the class of each row
    if labels.ndim != 1:
        raise ArgumentError(
            f"plot_decision_boundary: y must be class indices of shape (N,) or one-hot rows (N, C), got shape "
            f"{labels.shape}"
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
) -> Figure:
    """Decision regions of a 2-feature classifier with the samples coloured by their true class.

    Args:
        model: called on a ``(grid_points**2, 2)`` tensor of the model's parameter dtype (float32 for a
            plain function; ``no_grad``, eval mode); returns ``(M, C)`` scores or ``(M,)``/``(M, 1)`` for
            a binary model.
        x: ``(N, 2)`` features; y: ``(N,)`` integer class labels, ``(N, C)`` one-hot rows (each row's
            class is its 1), or class names (strings), which stand for the classes in sorted order and
            name them in the legend.
        output: whether the model returns ``"logits"`` (default) or ``"probabilities"``. With
            ``"logits"``, a C-column output whose every row lies in [0, 1] and sums to 1 (within 1e-4),
            as a model ending in Softmax gives, is taken as probabilities as it is (no second
            softmax); a 1-column output in [0, 1] is warned about (it may be a final Sigmoid).
        show: ``"class"`` fills each region with its predicted class's colour; ``"probability"``
            shades by P(class 1) for a binary model (with a colour bar), or blends the class colours
            by their probabilities for more classes. The 0.5 / argmax boundary is drawn in black.
        grid_points: points per axis of the grid (at least 2).
        class_names: one name per class the model outputs (at least as many as its classes).
        feature_names: the two axis labels.

    The class regions are the argmax drawn cell by cell (a class the model never predicts has no
    area); their borders are drawn where the predicted class changes. Grid points where the model's
    outputs are NaN or infinite (a diverged model) are drawn hatched grey, "not finite" in the
    legend, and a UserWarning says on how many.
    """
    require_matplotlib()
    where = "plot_decision_boundary"
    if show not in ("class", "probability"):
        raise ArgumentError(f"show: expected 'class' or 'probability', got {show!r}")
    grid_points = _check_grid_points(grid_points, where)
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence) or len(feature_names) != 2:
        raise ArgumentError(
            f"{where}: feature_names must name the two features, e.g. ('height', 'weight'); got {feature_names!r}"
        )
    xs = as_float_array(x, "plot_decision_boundary x")
    if xs.ndim != 2 or xs.shape[1] != 2:
        raise ArgumentError(f"plot_decision_boundary: x must have shape (N, 2) (two features); got {xs.shape}")
    if isinstance(y, (list, tuple, np.ndarray)) and np.asarray(y).dtype.kind in "USO":
        # class names as labels: their sorted order is the class index (LabelEncoder's convention)
        names_found, codes = np.unique(np.asarray(y).astype(str), return_inverse=True)
        class_names = list(class_names) if class_names is not None else [str(n) for n in names_found]
        y = codes.reshape(-1)
    labels_int = _class_labels(y, len(xs))

    pad_x = 0.1 * max(np.ptp(xs[:, 0]), 1e-9)
    pad_y = 0.1 * max(np.ptp(xs[:, 1]), 1e-9)
    gx = np.linspace(xs[:, 0].min() - pad_x, xs[:, 0].max() + pad_x, grid_points)
    gy = np.linspace(xs[:, 1].min() - pad_y, xs[:, 1].max() + pad_y, grid_points)
    X, Y = np.meshgrid(gx, gy)
    grid = np.stack([X.ravel(), Y.ravel()], axis=1)  # predict_array casts it to the model's dtype
    raw = predict_array(model, grid, where)
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

    from matplotlib.colors import ListedColormap, to_rgb
    from matplotlib.patches import Patch, Rectangle

    palette = [color(k) for k in range(n_classes)]
    fig = new_figure(width=6.8, height=5.2)
    ax = fig.subplots()
    half_x, half_y = (gx[1] - gx[0]) / 2, (gy[1] - gy[0]) / 2
    cells = (gx[0] - half_x, gx[-1] + half_x, gy[0] - half_y, gy[-1] + half_y)  # each grid point's cell centred on it
    if show == "probability" and n_classes == 2:
        p1 = np.ma.masked_invalid(probs[:, 1].reshape(X.shape))
        filled = ax.contourf(X, Y, p1, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.5)
        fig.colorbar(filled, ax=ax, label=f"P({names[1]})")
        palette = ["#2166ac", "#b2182b"]  # match the ends of RdBu_r
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
            cmap=ListedColormap(palette), vmin=-0.5, vmax=n_classes - 0.5, alpha=0.3,
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
        present = np.unique(predicted.compressed())
        for k in present[:-1] if len(present) > 1 else []:  # the last class's borders are the others'
            indicator = np.ma.masked_array((predicted.filled(-1) == k).astype(np.float64), mask=predicted.mask)
            ax.contour(X, Y, indicator, levels=[0.5], colors="black", linewidths=1.2)
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
                s=18,
                color=palette[k],
                edgecolors="black",
                linewidths=0.6,
                label=names[k],
            )
    handles, texts = ax.get_legend_handles_labels()
    if bad.any():
        handles.append(Patch(facecolor=NOT_FINITE_COLOR, edgecolor="0.3", hatch=NOT_FINITE_HATCH, alpha=0.5))
        texts.append(f"not finite ({int(bad.sum())} of {len(bad)} grid points)")
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(title)
    ax.legend(handles, texts, fontsize=9, loc="best")
    return finish(fig, save_path)
