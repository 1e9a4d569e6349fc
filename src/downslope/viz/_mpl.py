"""Lazy matplotlib access shared by every plot in downslope.viz.

matplotlib is an optional dependency (``pip install downslope[plot]``), so it is imported inside
functions only: ``import downslope`` (and ``import downslope.viz``) never pays for it.

Figures are made with ``matplotlib.figure.Figure`` and an Agg canvas attached by hand instead of
``pyplot``: no global figure registry to leak memory in long runs, no GUI backend picked up from
the user's environment, and it works headless (CI, servers) by construction.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..devices import to_host
from ..errors import ArgumentError, ArgumentTypeError, StateError
from ..tensor import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install downslope[plot]"

# One colour per series, in a fixed order, so the same optimizer/run keeps its colour across plots. The
# first eight are Okabe & Ito's colour-blind-safe set (no two of them merge under deuteranopia, protanopia or
# tritanopia), then two of Paul Tol's muted colours that stay apart from them: matplotlib's tab10 made
# green/red and blue/purple pairs that a deuteranope cannot tell apart.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
    "#882255",  # wine
    "#999933",  # olive
    # after the first ten, matplotlib's tab20 light shades: classes 10-19 stay distinct from 0-9
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)
# Series differ by more than colour (a reader who cannot tell two colours apart, a grey-scale print):
# each series also gets its own dash pattern and marker, in this order.
LINESTYLES: tuple[Any, ...] = (
    "-",
    "--",
    "-.",
    ":",
    (0, (5, 1, 1, 1, 1, 1)),
    (0, (8, 2)),
    (0, (1, 1)),
    (0, (3, 1, 1, 1)),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def linestyle(i: int) -> Any:
    """The dash pattern of series ``i`` (solid, dashed, dash-dot, dotted, ...), repeating after eight."""
    return LINESTYLES[i % len(LINESTYLES)]


def marker(i: int) -> str:
    """The marker of series ``i`` (circle, square, triangle, diamond, ...), repeating after twelve."""
    return MARKERS[i % len(MARKERS)]


def require_matplotlib() -> Any:
    """Import matplotlib, or raise an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            f"downslope.viz needs matplotlib to draw plots, and it is not installed; install it with: {INSTALL_HINT}"
        ) from exc
    return matplotlib


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A blank Figure with an Agg canvas and constrained layout (labels never overlap)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig: Figure, save_path: str | Path | None, dpi: int = 110) -> Figure:
    """Save ``fig`` to ``save_path`` when one is given (the format follows the suffix) and return it."""
    if save_path is not None:
        path = Path(save_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def _size(figsize: Any, where: str) -> tuple[float, float]:
    try:
        width, height = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{where}: figsize must be (width, height) in inches, got {figsize!r}") from None
    if not (width > 0 and height > 0 and np.isfinite(width) and np.isfinite(height)):
        raise ArgumentError(f"{where}: figsize must be two positive numbers of inches, got {figsize!r}")
    return width, height


def target_axes(
    ax: Any, figsize: Any, default: tuple[float, float], count: int, where: str, what: str = "a matplotlib Axes"
) -> tuple[Figure, list[Any] | None]:
    """The figure to draw on and the Axes given to draw into (None: make them on a new figure).

    ``ax=None``: a new figure of ``figsize`` (default ``default``), no Axes yet. Otherwise ``ax`` is one
    Axes (``count`` 1) or ``count`` of them (a list, tuple or array, as ``plt.subplots`` returns them),
    all drawn into on their own figure, whose size is then the caller's: ``figsize`` is refused with it.
    """
    if ax is None:
        width, height = default if figsize is None else _size(figsize, where)
        return new_figure(width=width, height=height), None
    require_matplotlib()
    from matplotlib.axes import Axes

    if figsize is not None:
        raise ArgumentError(
            f"{where}: got both ax= and figsize=; a given Axes keeps its figure's size (set it with "
            "plt.subplots(figsize=...)), so pass one of the two"
        )
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != count or not all(isinstance(a, Axes) for a in axes):
        given = type(ax).__name__ if isinstance(ax, Axes) else f"{type(ax).__name__} of {len(axes)} items"
        raise ArgumentTypeError(f"{where}: ax: expected {what}, got {given}")
    # the whole figure (a subfigure's too: what is saved and returned), whatever matplotlib version
    return axes[0].figure.figure, axes


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes (``downslope.viz.png_bytes``).

    Example:
        >>> import matplotlib.figure
        >>> from downslope.viz import png_bytes
        >>> png_bytes(matplotlib.figure.Figure(figsize=(1, 1)))[1:4]
        b'PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _plain(values: Any) -> Any:
    """``values`` with every Tensor (one that requires grad, or on a GPU, included) as its host array."""
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, Tensor):
        return to_host(values.array)
    if isinstance(values, (list, tuple)):
        return [_plain(v) for v in values]
    return values


def as_float_array(values: Any, what: str) -> np.ndarray:
    """A float64 NumPy array from a Tensor, array or list (of numbers or Tensors): the values are read
    whether or not a Tensor requires grad, as a plot only reads them (plotting is not a hot path).

    Example:
        >>> import downslope as ds
        >>> from downslope.viz._mpl import as_float_array
        >>> as_float_array((ds.tensor(1.0, requires_grad=True), 2), "start").tolist()
        [1.0, 2.0]
    """
    if isinstance(values, (list, tuple)):
        # a list of plain numbers (a History's column: a million of them) converts in one call; only a list
        # holding Tensors (which NumPy may refuse to read, one that requires grad or lives on a GPU) is walked
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError, RuntimeError):
            pass
    data = _plain(values)
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        kind = f" of dtype {values.dtype}" if isinstance(values, np.ndarray) else ""
        raise ArgumentTypeError(
            f"{what}: expected numbers (a Tensor, array or list), got {type(values).__name__}{kind}"
        ) from exc
    return arr


def color(i: int) -> str:
    """The colour of series (or class) ``i``: Okabe-Ito's eight colour-blind-safe colours and two of Paul
    Tol's, then tab20's light shades, then hues spaced by the
    golden angle, so that no two of the first few hundred series share a colour.

    Example:
        >>> from downslope.viz._mpl import color
        >>> len({color(i) for i in range(40)})
        40
    """
    if i < len(PALETTE):
        return PALETTE[i]
    import colorsys

    k = i - len(PALETTE)
    hue = (0.61803398875 * k) % 1.0
    saturation, value = (0.65, 0.85) if k % 2 == 0 else (0.45, 0.65)
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


# matplotlib backends that draw to files only: no window can show a figure under them
NON_INTERACTIVE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def _interactive_backend() -> bool:
    """Whether matplotlib's current backend can show a window (or an inline notebook output)."""
    import matplotlib

    return matplotlib.get_backend().lower() not in NON_INTERACTIVE_BACKENDS


def show(fig: Figure, *, block: bool | None = None) -> None:
    """Show a downslope figure in a window, as ``plt.show()`` shows pyplot's (``downslope.viz.show``).

    downslope's figures are made outside pyplot (no global registry to leak memory, no GUI picked up
    in a headless run), so ``fig.show()`` raises and ``plt.show()`` does not know them. This hands
    ``fig`` to a pyplot figure manager of the current backend and calls ``plt.show(block=block)``.
    Under a non-interactive backend (Agg, which matplotlib picks without a display) no window can
    be shown: a UserWarning says so, as matplotlib's ``Figure.show`` does, and nothing else happens;
    save the figure instead (``save_path=`` or ``fig.savefig``).

    Example:
        >>> import warnings
        >>> from downslope import viz
        >>> fig = viz.plot_loss_curves({"loss": [1.0, 0.5]})
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     viz.show(fig)  # a window with an interactive backend (TkAgg, QtAgg...), a warning under Agg
    """
    import matplotlib

    require_matplotlib()
    if not _interactive_backend():
        import warnings

        warnings.warn(
            f"show: matplotlib's backend {matplotlib.get_backend()!r} is non-interactive, so no window can be "
            "shown; save the figure instead (save_path=... or fig.savefig(...)), or pick an interactive "
            "backend (MPLBACKEND=TkAgg or QtAgg) before matplotlib is first used",
            UserWarning,
            stacklevel=2,
        )
        return
    import matplotlib.pyplot as plt

    holder = plt.figure(figsize=fig.get_size_inches())  # a pyplot window (manager) of the current backend
    manager = holder.canvas.manager
    if manager is None:  # pyplot always gives its figures a manager; kept for the type checker
        raise StateError("show: pyplot made a figure without a window manager")
    manager.canvas.figure = fig  # the window draws fig instead of the blank holder
    fig.set_canvas(manager.canvas)
    plt.show(block=block)
