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

from ..errors import ArgumentError
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


def plot_decision_boundary(
    model: Callable[[Tensor], Any],
    x: Any,
    y: Any,
    *,
    output: str = "logits",
    show: str = "class",
    grid_points: int = 200,
    class_names: Sequence[str] | None = None,
    feature_names: tuple[str, str] = ("x1", "x2"),
    title: str = "Decision boundary",
    save_path: str | Path | None = None,
) -> Figure:
    """Decision regions of a 2-feature classifier with the samples coloured by their true class.

    Args:
        model: called on a ``(grid_points**2, 2)`` float32 tensor (``no_grad``, eval mode); returns
            ``(M, C)`` scores or ``(M,)``/``(M, 1)`` for a binary model.
        x: ``(N, 2)`` features; y: ``(N,)`` integer class labels, or class names (strings), which
            stand for the classes in sorted order and name them in the legend.
        output: whether the model returns ``"logits"`` (default) or ``"probabilities"``.
        show: ``"class"`` fills each region with its predicted class's colour; ``"probability"``
            shades by P(class 1) for a binary model (with a colour bar), or blends the class colours
            by their probabilities for more classes. The 0.5 / argmax boundary is drawn in black.
    """
    require_matplotlib()
    if show not in ("class", "probability"):
        raise ArgumentError(f"show: expected 'class' or 'probability', got {show!r}")
    xs = as_float_array(x, "plot_decision_boundary x")
    if xs.ndim != 2 or xs.shape[1] != 2:
        raise ArgumentError(f"plot_decision_boundary: x must have shape (N, 2) (two features); got {xs.shape}")
    if isinstance(y, (list, tuple, np.ndarray)) and np.asarray(y).dtype.kind in "USO":
        # class names as labels: their sorted order is the class index (LabelEncoder's convention)
        names_found, codes = np.unique(np.asarray(y).astype(str), return_inverse=True)
        class_names = list(class_names) if class_names is not None else [str(n) for n in names_found]
        y = codes
    labels = as_float_array(y, "plot_decision_boundary y").reshape(-1)
    if len(labels) != len(xs):
        raise ArgumentError(f"plot_decision_boundary: x has {len(xs)} samples but y has {len(labels)}")
    if not np.all(labels == np.round(labels)) or (labels < 0).any():
        raise ArgumentError("plot_decision_boundary: y must hold non-negative integer class labels")
    labels_int = labels.astype(np.int64)

    pad_x = 0.1 * max(np.ptp(xs[:, 0]), 1e-9)
    pad_y = 0.1 * max(np.ptp(xs[:, 1]), 1e-9)
    gx = np.linspace(xs[:, 0].min() - pad_x, xs[:, 0].max() + pad_x, grid_points)
    gy = np.linspace(xs[:, 1].min() - pad_y, xs[:, 1].max() + pad_y, grid_points)
    X, Y = np.meshgrid(gx, gy)
    grid = np.stack([X.ravel(), Y.ravel()], axis=1).astype(np.float32)
    raw = predict_array(model, grid, "plot_decision_boundary")
    if output == "logits" and raw.size and (raw.ndim == 1 or raw.shape[1] == 1) and ((raw >= 0) & (raw <= 1)).all():
        import warnings

        warnings.warn(
            "plot_decision_boundary: every output of the model lies in [0, 1], which looks like probabilities "
            "(a final Sigmoid) read as logits; pass output='probabilities' if so (otherwise the sigmoid is "
            "applied twice and the whole plane may show one class)",
            UserWarning,
            stacklevel=2,
        )
    probs = class_probabilities(raw, output)
    n_classes = probs.shape[1]
    if labels_int.max(initial=0) >= n_classes:
        raise ArgumentError(
            f"plot_decision_boundary: y has class {labels_int.max()} but the model outputs {n_classes} classes"
        )
    predicted = probs.argmax(axis=1).reshape(X.shape)
    names = list(class_names) if class_names is not None else [f"class {k}" for k in range(n_classes)]

    from matplotlib.colors import ListedColormap, to_rgb

    palette = [color(k) for k in range(n_classes)]
    fig = new_figure(width=6.8, height=5.2)
    ax = fig.subplots()
    if show == "probability" and n_classes == 2:
        filled = ax.contourf(X, Y, probs[:, 1].reshape(X.shape), levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.5)
        fig.colorbar(filled, ax=ax, label=f"P({names[1]})")
        palette = ["#2166ac", "#b2182b"]  # match the ends of RdBu_r
    elif show == "probability":
        rgb = probs @ np.array([to_rgb(c) for c in palette])  # blend the class colours by probability
        faded = 1.0 - 0.45 * (1.0 - rgb)  # lighten so the points stay visible
        ax.imshow(faded.reshape(*X.shape, 3), origin="lower", extent=(gx[0], gx[-1], gy[0], gy[-1]), aspect="auto")
    else:
        ax.contourf(X, Y, predicted, levels=np.arange(n_classes + 1) - 0.5, cmap=ListedColormap(palette), alpha=0.3)
    # Region borders: where the predicted class changes (for two classes the smooth P = 0.5 line).
    if n_classes == 2:
        ax.contour(X, Y, probs[:, 1].reshape(X.shape), levels=[0.5], colors="black", linewidths=1.2)
    else:
        ax.contour(X, Y, predicted, levels=np.arange(n_classes - 1) + 0.5, colors="black", linewidths=1.2)
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
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(title)
    ax.legend(fontsize=9, loc="best")
    return finish(fig, save_path)
