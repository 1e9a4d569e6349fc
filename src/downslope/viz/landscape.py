"""Optimizers racing on a 2-D loss surface: their paths over a contour plot and their loss per step.

:func:`optimizer_paths` runs real downslope optimizers (``optim.SGD``, ``optim.Adam``...) on a
2-element tensor, starting from the same point, and records every iterate; :func:`plot_landscape`
draws the paths over the surface's contours (log-spaced levels, known minima starred) beside a
loss-against-step panel (log scale); :func:`animate_landscape` writes the race as an animated GIF.

Example:
    >>> from downslope import optim
    >>> from downslope.viz.landscape import optimizer_paths
    >>> paths = optimizer_paths("quadratic", {"sgd": (optim.SGD, {"lr": 0.05})}, steps=10)
    >>> paths["sgd"].points.shape, paths["sgd"].points[0].tolist()
    ((11, 2), [-5.0, 2.0])
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..autograd import enable_grad, no_grad
from ..errors import ArgumentError, ArgumentTypeError
from ..optim.protocols import OptimizerLike
from ..tensor import Tensor, tensor
from ..train.stepping import needs_closure
from ._mpl import as_float_array, color, finish, linestyle, marker, new_figure, require_matplotlib, target_axes
from .testfunctions import Surface, get_surface

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# An optimizer is given as (class, keyword arguments), e.g. (optim.Adam, {"lr": 0.1}), or as a
# factory called with the list of parameters, e.g. lambda params: optim.Adam(params, lr=0.1).
OptimizerSpec = tuple[Callable[..., Any], Mapping[str, Any]] | Callable[[list[Tensor]], Any]

# A path that moves this many window-widths away from the window has diverged; stopping there
# keeps float32 overflow (and its warnings) out of the picture.
DIVERGENCE_WINDOWS = 1e3
# Log-scale panels cannot show 0: gaps below this are drawn at this value.
LOG_FLOOR = 1e-12


@dataclass
class OptimizerPath:
    """One optimizer's trajectory.

    Attributes:
        name: the label given to the optimizer.
        points: ``(steps + 1, 2)`` iterates, the start point first; NaN after a divergence.
        losses: ``(steps + 1,)`` the function value at each iterate.
        diverged: whether the run left the finite numbers (or went far outside the window), or
            its gap to the minimum grew 100-fold.
        rising: not diverged (yet), but the gap to the minimum grows steadily over the second half
            of the run and ends more than twice its lowest value (e.g. a rate just above 2 / L: it
            would diverge given more steps).
        left_at: the first step whose point lies outside the surface's plotting window (None when
            the path stays inside): past it, the path is off the contour map.
        stopped_at: the step at which the run was stopped (None when it ran every step): its loss,
            gradient or next point was not finite, or its point was more than ``DIVERGENCE_WINDOWS``
            window-widths away (a blow-up, or a run downhill for ever past a saddle); the points and
            losses from that step on are NaN.
        divergence: why the run is called diverged ("" when it is not), e.g.
            ``"diverged at step 1: f = 3.6e+17"``, ``"diverged at step 2: the gradient is not finite"``.
    """

    name: str
    points: np.ndarray
    losses: np.ndarray
    diverged: bool = False
    settings: str = ""  # the optimizer's learning rate (and momentum), shown in the legend
    rising: bool = False
    left_at: int | None = None
    stopped_at: int | None = None
    divergence: str = ""

    @property
    def final_point(self) -> np.ndarray:
        """The last finite iterate."""
        finite = np.isfinite(self.points).all(axis=1)
        return self.points[finite][-1]

    @property
    def final_loss(self) -> float:
        """``f`` at the last finite iterate (the step before ``stopped_at`` when the run was stopped)."""
        finite = self.losses[np.isfinite(self.losses)]
        return float(finite[-1]) if finite.size else float("nan")

    @property
    def final_step(self) -> int:
        """The step of the last finite iterate (``len(points) - 1`` unless the run was stopped)."""
        finite = np.flatnonzero(np.isfinite(self.points).all(axis=1))
        return int(finite[-1]) if finite.size else 0


def default_optimizers(surface: str | Surface) -> dict[str, OptimizerSpec]:
    """A standard race for ``surface``: SGD, SGD with momentum, Nesterov, RMSprop, Adagrad, Adam,
    with learning rates that suit the surface (``Surface.learning_rates``).

    Example:
        >>> from downslope.viz.landscape import default_optimizers
        >>> list(default_optimizers("rosenbrock"))
        ['SGD', 'Momentum', 'Nesterov', 'RMSprop', 'Adagrad', 'Adam']
    """
    from .. import optim

    rates = get_surface(surface).learning_rates
    return {
        "SGD": (optim.SGD, {"lr": rates.get("sgd", 0.01)}),
        "Momentum": (optim.SGD, {"lr": rates.get("momentum", 0.01), "momentum": 0.9}),
        "Nesterov": (optim.SGD, {"lr": _nesterov_rate(rates), "momentum": 0.9, "nesterov": True}),
        "RMSprop": (optim.RMSprop, {"lr": rates.get("rmsprop", 0.01)}),
        "Adagrad": (optim.Adagrad, {"lr": rates.get("adagrad", 0.1)}),
        "Adam": (optim.Adam, {"lr": rates.get("adam", 0.1)}),
    }


def _nesterov_rate(rates: Mapping[str, float]) -> float:
    """The surface's Nesterov rate; a surface that names none lends momentum's (Nesterov is stable over a
    smaller range of rates than heavy-ball momentum, hence a rate of its own on the built-in surfaces)."""
    return rates.get("nesterov", rates.get("momentum", 0.01))


def _is_optimizer(obj: Any) -> bool:
    return callable(getattr(obj, "step", None)) and callable(getattr(obj, "zero_grad", None))


def _build_optimizer(name: str, spec: Any, params: list[Tensor]) -> tuple[OptimizerLike, Any]:
    """``(optimizer, scheduler or None)`` from a spec: ``(class, kwargs)``, or a factory returning an
    optimizer or ``(optimizer, scheduler)``."""
    if isinstance(spec, tuple):
        if len(spec) != 2 or not callable(spec[0]) or not isinstance(spec[1], Mapping):
            raise ArgumentTypeError(
                f"optimizer {name!r}: expected (optimizer class, {{keyword arguments}}), e.g. (optim.Adam, "
                f"{{'lr': 0.1}}), or a factory params -> optimizer; got {spec!r}"
            )
        built = spec[0](params, **dict(spec[1]))
    elif callable(spec):
        built = spec(params)
    else:
        raise ArgumentTypeError(
            f"optimizer {name!r}: expected (class, kwargs) or a callable params -> optimizer, got {spec!r}"
        )
    if _is_optimizer(built):
        return cast(OptimizerLike, built), None
    if isinstance(built, (tuple, list)) and len(built) == 2 and _is_optimizer(built[0]):
        optimizer, scheduler = built
        if not callable(getattr(scheduler, "step", None)):
            raise ArgumentTypeError(
                f"optimizer {name!r}: the factory returned (optimizer, {type(scheduler).__name__}); expected "
                "(optimizer, scheduler) with a scheduler that has step(), e.g. optim.lr_scheduler.StepLR(opt, 10)"
            )
        bound = getattr(scheduler, "optimizer", optimizer)
        if bound is not optimizer:
            raise ArgumentError(
                f"optimizer {name!r}: the factory's scheduler steps another optimizer than the one it returned; "
                "build the scheduler on the returned optimizer"
            )
        return cast(OptimizerLike, optimizer), scheduler
    kind = type(built).__name__ + (f" of {len(built)}" if isinstance(built, (tuple, list)) else "")
    raise ArgumentTypeError(
        f"optimizer {name!r}: the factory returned {kind}; expected an optimizer (with step() and zero_grad()) "
        "built on the params it is given, or (optimizer, scheduler)"
    )


def _blown_up(value: float, start_value: float, s: Surface) -> bool:
    """Whether ``value`` is a blow-up from ``start_value``: not finite, or its gap to the minimum grew
    100-fold (the rule training uses for its loss); on a surface without a minimum, above the start."""
    if not np.isfinite(value):
        return True
    if s.minimum_value is None:
        return bool(value > start_value)
    start_gap = start_value - s.minimum_value
    return bool(value - s.minimum_value > 100 * max(start_gap, float(np.finfo(np.float32).tiny)))


def _float64_value(s: Surface, xy: np.ndarray) -> float:
    """``f`` at a point far out, in float64 (float32 would overflow to inf before the value is known)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.asarray(s.value(np.float64(xy[0]), np.float64(xy[1]))))


def _scheduler_step(scheduler: Any, loss: float) -> None:
    if getattr(scheduler, "needs_metric", False):  # ReduceLROnPlateau: stepped with the loss it watches
        scheduler.step(loss)
    else:
        scheduler.step()


def optimizer_paths(
    surface: str | Surface,
    optimizers: Mapping[str, Any] | None = None,
    start: Sequence[float] | None = None,
    steps: int = 100,
) -> dict[str, OptimizerPath]:
    """Run each optimizer ``steps`` times on ``surface`` from ``start`` and record its path.

    Args:
        surface: a :class:`Surface` or its name (``"rosenbrock"``...).
        optimizers: ``{label: (optimizer class, kwargs)}`` or ``{label: factory(params)}``;
            default :func:`default_optimizers`. A factory may return ``(optimizer, scheduler)``: the
            scheduler (``optim.lr_scheduler.*``) is stepped after each optimizer step (with the loss,
            for ReduceLROnPlateau), and the legend names it beside the initial rate.
        start: ``(x, y)``; default the surface's start point.
        steps: number of optimizer steps.

    Returns:
        ``{label: OptimizerPath}`` with ``steps + 1`` points and losses each (the start included).

    A run is diverged (``OptimizerPath.divergence`` says why and at which step) when its loss, its
    gradient or its next point is NaN or infinite, when its point runs more than
    ``DIVERGENCE_WINDOWS`` window-widths out with ``f`` 100-fold further from the minimum than at the
    start, or when it ends 100-fold further from the minimum inside the window. A run that goes far
    out downhill (past a saddle) is stopped there but not diverged.

    Example:
        >>> from downslope import optim
        >>> from downslope.viz.landscape import optimizer_paths
        >>> optimizer_paths("rosenbrock", {"sgd": (optim.SGD, {"lr": 50.0})}, steps=5)["sgd"].divergence
        'diverged at step 1: f = 3.6e+17'
    """
    s = get_surface(surface)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ArgumentError(f"optimizer_paths: steps must be a non-negative integer, got {steps!r}")
    start_xy = as_float_array(s.start if start is None else start, "optimizer_paths start")
    if start_xy.shape != (2,) or not np.isfinite(start_xy).all():
        raise ArgumentError(f"optimizer_paths: start must be one finite point (x, y), got {start!r}")
    specs = default_optimizers(s) if optimizers is None else optimizers
    if not specs:
        raise ArgumentError("optimizer_paths: no optimizers given")
    (x0, x1), (y0, y1) = s.window
    limit = DIVERGENCE_WINDOWS * max(x1 - x0, y1 - y0) + float(np.abs(start_xy).max())

    results: dict[str, OptimizerPath] = {}
    for name, spec in specs.items():
        # float32, the library default; on the host whatever the default device (two numbers: the path is
        # recorded step by step, which a device would have to copy back at every step)
        point = tensor(start_xy, requires_grad=True, device="cpu")
        opt, scheduler = _build_optimizer(name, spec, [point])
        settings = _settings(opt, scheduler)  # before the run: a scheduler changes the rate as it goes
        points = np.full((steps + 1, 2), np.nan)
        losses = np.full(steps + 1, np.nan)
        points[0] = point.array
        divergence = ""
        stopped_at = None
        closure = _closure(s, point, opt) if needs_closure(opt) else None
        with np.errstate(over="ignore", invalid="ignore"), enable_grad():
            for k in range(steps):
                if closure is not None:  # L-BFGS: one step re-evaluates f itself (its line search)
                    with no_grad():
                        losses[k] = float(s(point).array)
                else:
                    opt.zero_grad()
                    loss = s(point)
                    losses[k] = float(loss.array)
                    loss.backward()
                if not np.isfinite(losses[k]):
                    divergence = f"diverged at step {k}: f = {losses[k]:.3g}"
                    stopped_at = k + 1
                    break
                grad = getattr(point.grad, "array", None) if closure is None else None
                if grad is not None and not np.isfinite(grad).all():  # e.g. 0/0 at a cone's tip
                    divergence = f"diverged at step {k}: the gradient is not finite ({grad[0]:.3g}, {grad[1]:.3g})"
                    stopped_at = k + 1
                    break
                opt.step(closure) if closure is not None else opt.step()
                if scheduler is not None:
                    _scheduler_step(scheduler, float(losses[k]))
                if not np.isfinite(point.array).all():
                    divergence = f"diverged at step {k + 1}: the point is not finite"
                    stopped_at = k + 1
                    break
                if np.abs(point.array).max() > limit:
                    # Far out: a blow-up when f went up; escaping downhill (past a saddle, on a function
                    # unbounded below) is where the path leads, not a divergence.
                    far = _float64_value(s, np.asarray(point.array, dtype=np.float64))
                    if _blown_up(far, float(losses[0]), s):
                        divergence = f"diverged at step {k + 1}: f = {far:.3g}"
                    stopped_at = k + 1
                    break
                points[k + 1] = point.array
            else:
                with no_grad():
                    losses[steps] = float(s(point).array)
                if not np.isfinite(losses[steps]):
                    divergence = f"diverged at step {steps}: f = {losses[steps]:.3g}"
        reached = losses[np.isfinite(points).all(axis=1)]
        if not divergence and stopped_at is None and s.minimum_value is not None and reached.size:
            # A slow blow-up that stays in the window: the gap to the minimum grew 100-fold (the rule
            # training uses for its loss), e.g. a learning rate just above 2 / L.
            if _blown_up(float(reached[-1]), float(reached[0]), s):
                start_gap, end_gap = reached[0] - s.minimum_value, reached[-1] - s.minimum_value
                divergence = f"diverged: f − f* grew from {start_gap:.3g} to {end_gap:.3g} (over 100-fold)"
        diverged = bool(divergence)
        reached = reached[np.isfinite(reached)]
        rising = not diverged and s.minimum_value is not None and _rising(reached - s.minimum_value)
        outside = np.flatnonzero(
            np.isfinite(points).all(axis=1)
            & ((points[:, 0] < x0) | (points[:, 0] > x1) | (points[:, 1] < y0) | (points[:, 1] > y1))
        )
        left_at = int(outside[0]) if outside.size else None
        results[str(name)] = OptimizerPath(
            str(name), points, losses, diverged, settings, rising=rising, left_at=left_at, stopped_at=stopped_at,
            divergence=divergence,
        )  # fmt: skip
    return results


def _closure(surface: Surface, point: Tensor, opt: OptimizerLike) -> Callable[[], Tensor]:
    """The closure an L-BFGS-like optimizer's step re-evaluates: ``f`` at the point, its gradient set."""

    def closure() -> Tensor:
        opt.zero_grad()
        loss = surface(point)
        loss.backward()
        return loss

    return closure


def _rising(gaps: np.ndarray) -> bool:
    """Whether the gaps to the minimum grow steadily over the second half of the run (a line fitted to
    their logarithm rises) and end above twice the lowest gap reached."""
    gaps = np.asarray(gaps, dtype=np.float64)
    if gaps.size < 6 or not np.isfinite(gaps).all():
        return False
    tail = np.log(np.maximum(gaps[gaps.size // 2 :], LOG_FLOOR))
    steps = np.arange(tail.size, dtype=np.float64)
    slope = float(np.polyfit(steps, tail, 1)[0])
    return bool(slope > 0 and gaps[-1] > 2 * max(float(gaps.min()), LOG_FLOOR))


def _settings(opt: Any, scheduler: Any = None) -> str:
    """``lr=0.09, momentum=0.9``: the first parameter group's rate, and its momentum when there is one;
    ``lr=0.09, CosineAnnealingLR`` with a scheduler (the rate it starts from)."""
    groups = getattr(opt, "param_groups", None) or [{}]
    group = groups[0]
    parts = [f"lr={float(group['lr']):g}"] if "lr" in group else []
    if group.get("momentum"):
        parts.append(f"momentum={group['momentum']:g}")
    if scheduler is not None:
        parts.append(type(scheduler).__name__)
    return ", ".join(parts)


# ---------------------------------------------------------------------- drawing
def _contour_grid(s: Surface, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, Z)`` for the contour map: an even ``size x size`` grid over the window, refined around
    each known minimum. The basin where the optimizers end can be a cell or two of the even grid wide
    (Beale's f - f* < 1e-3 around (3, 0.5) on a 9 x 9 window), so its low levels could not be drawn:
    rows and columns at geometrically growing distances from the minimum (1e-4 to 5e-2 of the
    window) resolve it, as the log-spaced levels need."""
    (x0, x1), (y0, y1) = s.window
    xs, ys = [np.linspace(x0, x1, size)], [np.linspace(y0, y1, size)]
    offsets = np.geomspace(1e-4, 5e-2, max(size // 8, 6))
    for mx, my in s.minima:
        xs.append(mx + (x1 - x0) * np.concatenate([-offsets, offsets]))
        ys.append(my + (y1 - y0) * np.concatenate([-offsets, offsets]))
    x = np.unique(np.clip(np.concatenate(xs), x0, x1))
    y = np.unique(np.clip(np.concatenate(ys), y0, y1))
    X, Y = np.meshgrid(x, y)
    return X, Y, s.value(X, Y)


# The contour levels span at most this many decades of f - f* below the window's largest value: enough
# for the basins where optimizers end (Beale's 1e-5 under a top of 2e5), few enough to stay visible.
LEVEL_DECADES = 12


def _contour_levels(s: Surface, Z: np.ndarray, levels: int) -> np.ndarray | None:
    """The log-spaced levels of ``f - f*`` the map draws (None when ``f*`` is unknown: linear levels),
    from the lowest gap the grid sees (at most ``LEVEL_DECADES`` below the top) to the top."""
    if s.minimum_value is None:
        return None
    gap = Z - s.minimum_value
    top = float(np.nanmax(gap))
    positive = gap[gap > 0]
    # From the lowest value the grid sees (so the global well stands out from local ones), but at most
    # LEVEL_DECADES below the top so the levels stay visible.
    floor = top * 10.0**-LEVEL_DECADES
    bottom = max(float(positive.min()) if positive.size else floor, floor, LOG_FLOOR)
    return np.geomspace(bottom, top, levels)


def _contour(ax: Axes, fig: Figure, s: Surface, grid_size: int, levels: int) -> None:
    from matplotlib.colors import LogNorm

    X, Y, Z = _contour_grid(s, grid_size)
    lvls = _contour_levels(s, Z, levels)
    if s.minimum_value is not None and lvls is not None:
        # Log-spaced levels of the gap to the minimum show the narrow valleys near the optimum.
        gap = np.clip(Z - s.minimum_value, lvls[0], lvls[-1])
        norm = LogNorm(lvls[0], lvls[-1])
        filled = ax.contourf(X, Y, gap, levels=lvls, norm=norm, cmap="viridis", alpha=0.85)
        ax.contour(X, Y, gap, levels=lvls[::2], colors="white", linewidths=0.3, alpha=0.5)
        from matplotlib.ticker import LogFormatterSciNotation, LogLocator

        # ticks at whole decades (1e-03, 1e-02, ...), not at whichever contour levels fall under them
        fig.colorbar(
            filled, ax=ax, label="f − f*  (contour levels, log scale)", ticks=LogLocator(base=10.0),
            format=LogFormatterSciNotation(),
        )  # fmt: skip
    else:
        filled = ax.contourf(X, Y, Z, levels=levels, cmap="coolwarm", alpha=0.85)
        ax.contour(X, Y, Z, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
        fig.colorbar(filled, ax=ax, label="f")
    for i, m in enumerate(s.minima):
        ax.plot(
            *m, "*", ms=16, color="gold", mec="black", mew=0.8, zorder=6, label="global minimum" if i == 0 else None
        )
    for i, p in enumerate(s.saddles):
        ax.plot(*p, "P", ms=11, color="white", mec="black", zorder=6, label="saddle point" if i == 0 else None)
    (x0, x1), (y0, y1) = s.window
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


LEGEND_WIDTH = 64  # characters per line of a loss-panel legend entry (about the panel's width at 8 pt)
LEGEND_FONTSIZE = 8


def _loss_values(s: Surface, path: OptimizerPath) -> np.ndarray:
    if s.minimum_value is None:
        return path.losses
    return np.maximum(path.losses - s.minimum_value, LOG_FLOOR)


def _below_floor_at(s: Surface, path: OptimizerPath) -> int | None:
    """The first step whose gap to the minimum is below the log panel's floor (drawn at the floor)."""
    if s.minimum_value is None:
        return None
    below = np.flatnonzero(np.isfinite(path.losses) & (path.losses - s.minimum_value < LOG_FLOOR))
    return int(below[0]) if below.size else None


def _stopped_note(path: OptimizerPath) -> str:
    why = "" if path.diverged else f", over {DIVERGENCE_WINDOWS:g} window-widths out"
    return f"stopped at step {path.stopped_at}{why}"


def _panel_note(path: OptimizerPath) -> str:
    """What the loss panel writes where a stopped run's curve ends: why it diverged, or where it went."""
    return path.divergence if path.diverged and path.divergence else _stopped_note(path)


def _legend_label(s: Surface, name: str, path: OptimizerPath, upto: int | None = None) -> str:
    """``sgd (lr=0.01): f=0.5``, with what the picture alone would hide: a divergence, a loss that is
    rising, a run stopped early (f is then its last finite value, at the step said), a path that left
    the plotted region, a gap too small for the log axis.

    ``upto``: an animation frame's label, ``f`` at that step and only what had happened by then.
    """
    settings = f" ({path.settings})" if path.settings else ""
    last = path.final_step if upto is None else min(upto, path.final_step)
    stopped = path.stopped_at is not None and (upto is None or upto >= path.stopped_at)
    ended = upto is None or upto >= len(path.points) - 1
    notes = []
    if path.diverged and (stopped or ended):
        notes.append(path.divergence or "diverged")
    elif path.rising and ended:
        notes.append("loss rising")
    if path.left_at is not None and (upto is None or path.left_at <= upto):
        notes.append(f"left the plotted region at step {path.left_at}")
    if stopped and not (path.diverged and path.divergence):  # the divergence says where it stopped
        notes.append(_stopped_note(path))  # after leaving the region, which comes first
    floor = _below_floor_at(s, path)
    if floor is not None and (upto is None or floor <= upto):
        notes.append(f"f − f* below {LOG_FLOOR:g} from step {floor}")
    value = path.final_loss if upto is None else float(path.losses[last])
    at = f" at step {last}" if upto is not None or path.stopped_at is not None else ""
    return f"{name}{settings}: f={value:.3g}{at}" + (f" ({'; '.join(notes)})" if notes else "")


def _wrap(label: str) -> str:
    # Wrapped so the legend (below the loss panel) stays about as wide as the panel, whatever the notes say.
    return textwrap.fill(label, width=LEGEND_WIDTH, subsequent_indent="    ", break_on_hyphens=False)


@dataclass
class _Drawn:
    """What an animation frame moves of one path: its line and current point on the map, its loss curve,
    its legend text and the marks of a stopped run (shown once the frame reaches the stop)."""

    line: Any
    end_marker: Any
    loss_line: Any
    legend_text: Any = None
    stop_marks: tuple[Any, ...] = ()


def _draw(
    fig: Figure,
    s: Surface,
    paths: Mapping[str, OptimizerPath],
    grid_size: int,
    levels: int,
    labels: Mapping[str, str] | None = None,
    animated: bool = False,
    given: list[Any] | None = None,
    resize: bool = True,
) -> tuple[Axes, Axes, dict[str, _Drawn]]:
    """The map and the loss panel with every full path; ``labels`` replaces the legend's texts, already
    wrapped (an animation lays the figure out with stand-ins as large as each path's largest frame
    label, see :func:`_layout_labels`); ``animated`` names the X
    marker "current point" rather than "end"; ``given``: the (map, loss) Axes to draw into (the
    figure's size is then left alone)."""
    ax_map, ax_loss = fig.subplots(1, 2, width_ratios=[1.35, 1.0]) if given is None else given
    _contour(ax_map, fig, s, grid_size, levels)
    drawn: dict[str, _Drawn] = {}
    steps = max(len(p.points) for p in paths.values()) - 1
    stopped_rank = 0  # the notes of stopped runs are stacked in the panel's corner, one line each
    for i, (name, path) in enumerate(paths.items()):
        pts = path.points
        c = color(i)
        # each path its own dash pattern and marker as well as colour (told apart without colour vision)
        (line,) = ax_map.plot(
            pts[:, 0], pts[:, 1], color=c, lw=1.6, ls=linestyle(i), marker=marker(i), ms=4,
            markevery=max(1, len(pts) // 10), zorder=4,
        )  # fmt: skip
        ax_map.plot(*path.points[0], "o", ms=8, mfc="white", mec="black", zorder=7)
        (end_marker,) = ax_map.plot(*path.final_point, "X", ms=10, color=c, mec="black", mew=0.8, zorder=7)
        values = _loss_values(s, path)
        # The path colours are explained once, in the loss panel's legend, with each final value.
        label = (labels or {}).get(name) or _wrap(_legend_label(s, name, path))
        (loss_line,) = ax_loss.plot(
            np.arange(len(values)), values, color=c, lw=1.6, ls=linestyle(i), marker=marker(i), ms=4,
            markevery=max(1, len(values) // 10), label=label,
        )  # fmt: skip
        marks: tuple[Any, ...] = ()
        if path.stopped_at is not None:
            # The curve ends early: say where and why on the panel, not only in the legend. The notes are
            # stacked inside the panel's top right corner, each tied to its curve's end by a thin line:
            # written beside the ends they overlapped one another and ran past the axes.
            k = path.final_step
            (cross,) = ax_loss.plot([k], [values[k]], "x", color=c, ms=8, mew=2, zorder=5)
            note = ax_loss.annotate(
                _panel_note(path), (k, values[k]), xytext=(0.98, 0.97 - 0.075 * stopped_rank),
                textcoords="axes fraction", ha="right", va="top", fontsize=7, color=c, annotation_clip=False,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                arrowprops={"arrowstyle": "-", "color": c, "lw": 0.6, "alpha": 0.45}, zorder=6,
            )  # fmt: skip
            stopped_rank += 1
            marks = (cross, note)
        drawn[name] = _Drawn(line, end_marker, loss_line, stop_marks=marks)
    ax_map.plot([], [], "o", ms=8, mfc="white", mec="black", label="start")
    ax_map.plot([], [], "X", ms=9, color="gray", mec="black", label="current point" if animated else "end")
    ax_map.legend(fontsize=8, loc="lower right", framealpha=0.85)
    ax_map.set_title(s.title)
    if s.minimum_value is None:
        # Unbounded below: a symmetric log axis shows both the slow start and the runaway descent.
        ax_loss.set_yscale("symlog", linthresh=1.0)
        ax_loss.set_ylabel("f  (symmetric log scale)")
    else:
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("f − f*  (log scale)")
        if any(_below_floor_at(s, p) is not None for p in paths.values()):
            ax_loss.axhline(LOG_FLOOR, color="0.4", ls=":", lw=1.0, label=f"{LOG_FLOOR:g}: smaller gaps drawn here")
        finite = np.concatenate([_loss_values(s, p) for p in paths.values()])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            ax_loss.set_ylim(max(finite.min() * 0.5, LOG_FLOOR), finite.max() * 2.0)
    ax_loss.set_xlim(0, max(steps, 1))
    ax_loss.set_xlabel("step")
    ax_loss.set_title("Loss per step")
    ax_loss.grid(True, alpha=0.3, which="both")
    # Below the panel, not on it: a legend inside hides the curves, and its long notes ran off the figure.
    legend = ax_loss.legend(fontsize=LEGEND_FONTSIZE, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    for d, text in zip(drawn.values(), legend.get_texts()):  # the loss curves come first, in the paths' order
        d.legend_text = text
    lines = sum(t.get_text().count("\n") + 1 for t in legend.get_texts())
    if given is None and resize:
        fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + 0.17 * lines + 0.3)  # the panels keep their size
    return ax_map, ax_loss, drawn


def _check_count(value: Any, what: str, where: str, meaning: str) -> int:
    """An integer of at least 2 (a grid size, a number of contour levels), refused clearly otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{where}: {what} must be an integer of at least 2 ({meaning}), got {value!r}")
    if value < 2:
        raise ArgumentError(f"{where}: {what} must be at least 2 ({meaning}), got {value}")
    return int(value)


def _as_paths(paths: Mapping[str, OptimizerPath]) -> Mapping[str, OptimizerPath]:
    if not isinstance(paths, Mapping) or not paths:
        raise ArgumentError("expected a non-empty dict {name: OptimizerPath} as returned by optimizer_paths()")
    for name, path in paths.items():
        if not isinstance(path, OptimizerPath):
            raise ArgumentTypeError(
                f"path {name!r}: expected an OptimizerPath from optimizer_paths(), got {type(path).__name__}"
            )
    return paths


def plot_landscape(
    surface: str | Surface,
    paths: Mapping[str, OptimizerPath],
    *,
    grid_size: int = 200,
    levels: int = 30,
    title: str | None = None,
    save_path: str | Path | None = None,
    gif_path: str | Path | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Contours of ``surface`` with every optimizer's path (start ``o``, end ``X``, minima ``*``)
    and, beside it, each optimizer's ``f - f*`` against step on a log scale (``f`` on a linear scale
    for the saddle, which has no minimum).

    The contour levels are log-spaced in ``f - f*`` from the lowest gap the grid sees (the grid is
    refined around the known minima, so the basin where optimizers end is resolved), at most
    ``LEVEL_DECADES`` decades below the window's top. A run stopped early (its point ran away or was
    not finite) ends its loss curve with an ``x`` and a note; its legend entry gives ``f`` at its last
    finite step and the step it stopped at. A diverged run says why and where ("diverged at step 1:
    f = 3.6e+17", see :func:`optimizer_paths`).

    ``grid_size`` (points per axis of the contour grid) and ``levels`` (contour levels) are integers
    of at least 2. ``gif_path`` also writes the animation (see :func:`animate_landscape`).

    Each optimizer has its own colour (colour-blind-safe), dash pattern and marker. ``ax``: draw
    into these two matplotlib Axes, ``(map, loss panel)``, instead of a new figure (their figure is
    returned and saved; the title then goes on the map). ``figsize``: ``(width, height)`` in inches
    of the new figure (default 13 x 5.4, grown to fit the legend; a given size is kept); not with ``ax``.

    Example:
        >>> from downslope import optim
        >>> from downslope.viz.landscape import optimizer_paths, plot_landscape
        >>> paths = optimizer_paths("beale", {"adam": (optim.Adam, {"lr": 0.05})}, steps=20)
        >>> fig = plot_landscape("beale", paths, grid_size=40)
        >>> [ax.get_title() for ax in fig.axes[:2]]
        ['Beale function', 'Loss per step']
    """
    s = get_surface(surface)
    _as_paths(paths)
    grid_size = _check_count(grid_size, "grid_size", "plot_landscape", "points per axis of the contour grid")
    levels = _check_count(levels, "levels", "plot_landscape", "contour levels")
    fig, given = target_axes(ax, figsize, (13.0, 5.4), 2, "plot_landscape", "two Axes: (map, loss panel)")
    ax_map, _, _ = _draw(fig, s, paths, grid_size, levels, given=given, resize=figsize is None)
    steps = max(len(p.points) for p in paths.values()) - 1
    start = next(iter(paths.values())).points[0]
    heading = title or f"{len(paths)} optimizers, {steps} steps from ({start[0]:g}, {start[1]:g})"
    if given is None:
        fig.suptitle(heading)
    else:  # a figure the caller laid out may hold other plots: the title is this plot's own
        ax_map.set_title(f"{heading}\n{ax_map.get_title()}", fontsize=10)
    finish(fig, save_path)
    if gif_path is not None:
        animate_landscape(s, paths, gif_path)
    return fig


def animate_landscape(
    surface: str | Surface,
    paths: Mapping[str, OptimizerPath],
    gif_path: str | Path,
    *,
    fps: int = 12,
    max_frames: int = 60,
    dpi: int = 100,
    grid_size: int = 120,
) -> Path:
    """Write the race as an animated GIF: the paths grow step by step.

    At most ``max_frames`` frames are written (steps are subsampled evenly, the last step always
    shown), which keeps the file small. Each frame's legend gives every optimizer's ``f`` at that
    frame's step (and only what had happened by then: a stop, leaving the plotted region), and the
    X marks each one's current point. At the default ``dpi`` the GIF is 1100 pixels wide, readable
    when projected. The contours are drawn once; each frame redraws only the paths and the legend's
    texts over that saved background (blitting), then Pillow (which ships with matplotlib) writes
    the GIF, as matplotlib's PillowWriter does but without a full redraw per frame.
    """
    require_matplotlib()  # Pillow comes with matplotlib
    from PIL import Image

    s = get_surface(surface)
    _as_paths(paths)
    grid_size = _check_count(grid_size, "grid_size", "animate_landscape", "points per axis of the contour grid")
    if fps <= 0 or max_frames < 1 or dpi <= 0:
        raise ArgumentError(
            f"animate_landscape: fps, max_frames and dpi must be positive, got fps={fps}, "
            f"max_frames={max_frames}, dpi={dpi}"
        )
    fig, title, drawn, frames, frame_labels, background = _animation_figure(s, paths, max_frames, dpi, grid_size)
    canvas = fig.canvas
    steps = max(len(p.points) for p in paths.values()) - 1
    images = []
    for k in frames:
        canvas.restore_region(background)  # type: ignore[attr-defined]
        for name, d in drawn.items():
            path = paths[name]
            pts = path.points[: k + 1]
            d.line.set_data(pts[:, 0], pts[:, 1])
            finite = pts[np.isfinite(pts).all(axis=1)]
            d.end_marker.set_data([finite[-1, 0]], [finite[-1, 1]])
            values = _loss_values(s, path)[: k + 1]
            d.loss_line.set_data(np.arange(len(values)), values)
            for mark in d.stop_marks:
                mark.set_visible(path.stopped_at is not None and k >= path.stopped_at)
        _set_frame_texts(title, drawn, frame_labels, int(k), steps)
        for artist in _moving(title, drawn):
            fig.draw_artist(artist)
        rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[attr-defined]
        images.append(Image.fromarray(rgba[..., :3].copy()))
    # One palette for all frames, taken from the last (fullest) one: no flicker between frames, and
    # mapping to a fixed palette is much cheaper than choosing a new palette per frame.
    palette = images[-1].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    out = Path(gif_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames_p[0].save(out, save_all=True, append_images=frames_p[1:], duration=int(1000 / fps), loop=0)
    return out


def _layout_labels(fig: Figure, frame_labels: Mapping[int, Mapping[str, str]]) -> dict[str, str]:
    """Per path, a wrapped stand-in label with as many lines as its tallest frame label, each line
    as wide (as rendered) as the widest line of any of its frame labels.

    The figure is laid out once, with these, for every frame. The legend is centred under the loss
    panel, so a frame whose text came out wider than the one the layout saw (``f=0.0342 at step
    300`` where the layout had ``f=5 at step 0``) grew past the figure's right edge and was cut off
    there; no frame's text is wider or taller than its stand-in.
    """
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    font = FontProperties(size=LEGEND_FONTSIZE)
    out = {}
    names = next(iter(frame_labels.values())).keys()
    for name in names:
        wrapped = [_wrap(labels[name]).split("\n") for labels in frame_labels.values()]
        widest = max(
            (line for lines in wrapped for line in lines),
            key=lambda t: renderer.get_text_width_height_descent(t, font, ismath=False)[0],
        )
        out[name] = "\n".join([widest] * max(len(lines) for lines in wrapped))
    return out


def _moving(title: Any, drawn: Mapping[str, _Drawn]) -> list[Any]:
    """What each animation frame redraws over the saved background."""
    return [title] + [
        a
        for d in drawn.values()
        for a in (d.line, d.end_marker, d.loss_line, d.legend_text, *d.stop_marks)
        if a is not None
    ]


def _set_frame_texts(
    title: Any, drawn: Mapping[str, _Drawn], frame_labels: Mapping[int, Mapping[str, str]], k: int, steps: int
) -> None:
    for name, d in drawn.items():
        if d.legend_text is not None:
            d.legend_text.set_text(_wrap(frame_labels[k][name]))
    title.set_text(f"step {k} of {steps}")


def _animation_figure(
    s: Surface, paths: Mapping[str, OptimizerPath], max_frames: int, dpi: int, grid_size: int
) -> tuple[Figure, Any, dict[str, _Drawn], np.ndarray, dict[int, dict[str, str]], Any]:
    """The animation's figure, laid out once for every frame and drawn with the full paths: its
    title, the moving parts of each path, the frames' steps, their legend labels, and the background
    (everything that does not move) to restore before each frame."""
    steps = max(len(p.points) for p in paths.values()) - 1
    frames = np.unique(np.linspace(0, steps, min(max_frames, steps + 1)).round().astype(int))
    frame_labels = {int(k): {n: _legend_label(s, n, p, upto=int(k)) for n, p in paths.items()} for k in frames}
    fig = new_figure(width=11.0, height=4.6)
    fig.set_dpi(dpi)
    _, _, drawn = _draw(fig, s, paths, grid_size, 25, labels=_layout_labels(fig, frame_labels), animated=True)
    title = fig.suptitle(f"step {steps} of {steps}")
    moving = _moving(title, drawn)
    canvas = fig.canvas
    canvas.draw()  # lays the figure out once, with the full paths so the axes' limits fit them
    fig.set_layout_engine("none")  # freeze that layout for every frame
    for artist in moving:
        artist.set_visible(False)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)  # type: ignore[attr-defined]
    for artist in moving:
        artist.set_visible(True)
    return fig, title, drawn, frames, frame_labels, background


# ---------------------------------------------------------------------- by name (the CLI's entry)
# optimizer name -> (optim class name, key into Surface.learning_rates or None, fixed options)
NAMED_OPTIMIZERS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "gd": ("GD", "sgd", {}),
    "sgd": ("SGD", "sgd", {}),
    "momentum": ("SGD", "momentum", {"momentum": 0.9}),
    "nesterov": ("SGD", "nesterov", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", "adagrad", {}),
    "rmsprop": ("RMSprop", "rmsprop", {}),
    "adadelta": ("Adadelta", None, {}),  # its lr multiplies a unit-corrected step; 1.0 is the norm
    "adam": ("Adam", "adam", {}),
    "adamw": ("AdamW", "adam", {}),
    "adamax": ("Adamax", "adam", {}),
    "nadam": ("NAdam", "adam", {}),
    "radam": ("RAdam", "radam", {}),  # its first steps are momentum SGD at lr: Adam's rate throws it off
    "lion": ("Lion", "adam", {}),  # the Lion paper uses a rate 3-10x below Adam's
}


def named_optimizers(
    surface: str | Surface, names: Sequence[str], lr: float | None = None, momentum: float | None = None
) -> dict[str, OptimizerSpec]:
    """``{name: (optim class, kwargs)}`` for optimizer names as the CLI spells them.

    Each gets the surface's suggested learning rate for its family unless ``lr`` is given;
    ``momentum`` replaces the 0.9 of 'momentum' and 'nesterov'.

    Example:
        >>> from downslope.viz.landscape import named_optimizers
        >>> named_optimizers("quadratic", ["nesterov"])["nesterov"][1]
        {'lr': 0.05, 'momentum': 0.9, 'nesterov': True}
    """
    from .. import optim

    rates = get_surface(surface).learning_rates
    specs: dict[str, OptimizerSpec] = {}
    for raw in names:
        name = raw.strip().lower()
        if name not in NAMED_OPTIMIZERS:
            raise ArgumentError(f"unknown optimizer {raw!r}; choose one of: {', '.join(NAMED_OPTIMIZERS)}")
        class_name, family, fixed = NAMED_OPTIMIZERS[name]
        if lr is not None:
            rate = float(lr)
        elif family is None:
            rate = 1.0
        elif family == "nesterov":
            rate = _nesterov_rate(rates)
        elif family == "radam" and "radam" not in rates:  # a surface that names none lends Adam's
            rate = rates.get("adam", 0.01)
        else:
            rate = rates.get(family, 0.01) / (10.0 if name == "lion" else 1.0)
        settings = dict(fixed)
        if momentum is not None and "momentum" in settings:
            settings["momentum"] = float(momentum)
        specs[name] = (getattr(optim, class_name), {"lr": rate, **settings})
    return specs


def run_landscape(
    function: str | Surface,
    optimizers: Sequence[str],
    *,
    lr: float | None = None,
    steps: int = 300,
    start: Sequence[float] | None = None,
    out_dir: str | Path = ".",
    gif: bool = False,
    momentum: float | None = None,
) -> list[str]:
    """Race the named optimizers on ``function`` and write ``landscape.png``, ``paths.csv`` (and
    ``landscape.gif``) to ``out_dir``. Returns one summary line per optimizer and per file written.
    ``momentum`` sets the heavy-ball coefficient of 'momentum' and 'nesterov' (0.9 by default).
    """
    s = get_surface(function)
    specs = named_optimizers(s, optimizers, lr, momentum)
    paths = optimizer_paths(s, specs, start=start, steps=steps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "landscape.png"
    gif_path = out / "landscape.gif" if gif else None
    plot_landscape(s, paths, save_path=png, gif_path=gif_path)
    csv_path = out / "paths.csv"
    rows = ["optimizer,lr,step,x,y,f"]
    for name, path in paths.items():
        rate = specs[name][1]["lr"]  # type: ignore[index]
        for k, ((x, y), f) in enumerate(zip(path.points, path.losses)):
            if np.isfinite(x) and np.isfinite(y):
                rows.append(f"{name},{rate:g},{k},{x:.9g},{y:.9g},{f:.9g}")
    from ..serialization import atomic_write_bytes

    atomic_write_bytes(csv_path, ("\n".join(rows) + "\n").encode())

    lines = []
    width = max(len(n) for n in paths)
    for name, path in paths.items():
        x, y = path.final_point
        rate = specs[name][1]["lr"]  # type: ignore[index]
        if path.diverged:  # the verdict first, then where the run last was finite
            line = (
                f"{name:<{width}}  lr {rate:<7g} {path.divergence or 'diverged'}; last finite point "
                f"({x:.4g}, {y:.4g}) at step {path.final_step}, f = {path.final_loss:.4g}"
            )
        else:
            line = f"{name:<{width}}  lr {rate:<7g} {f'f = {path.final_loss:.4g}':<16} at ({x:.4g}, {y:.4g})"
        if path.rising:
            line += "  loss rising (would diverge given more steps)"
        if path.left_at is not None:
            line += f"  left the plotted region at step {path.left_at}"
        if path.stopped_at is not None and not path.diverged:  # the f and point above are the last finite step's
            line += f"  {_stopped_note(path)} (f and point at step {path.final_step})"
        lines.append(line.rstrip())
    lines += [f"written: {png}", f"written: {csv_path}"] + ([f"written: {gif_path}"] if gif_path else [])
    return lines
