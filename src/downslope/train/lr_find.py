"""The learning-rate range test: raise the learning rate exponentially over a few batches, watch the loss.

The loss first barely moves (rate too small), then falls fastest, then blows up (rate too large).
A good learning rate is where it falls fastest; :func:`lr_find` suggests the rate at the steepest
descent of the raw losses averaged over centred windows (an exponential moving average lags behind
the rising rate and would put the dip too far right). Afterwards the model, the optimizer (state and learning rates), the
gradients and the library's random generator are put back exactly as they were, so running the
test does not change the training that follows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..data.loader import DataLoader, batch_to
from ..device import CPU, device
from ..errors import ConfigError
from ..optim.protocols import OptimizerLike
from ..tensor import wrap_array
from .evaluation import model_mode, resolve_loss
from .fit import train_step
from .inputs import as_loader, conform, model_float_dtype, model_input_count, unpack_batch
from .placement import load_on_host, state_snapshot, training_device
from .protocols import LossFn, ModelLike


@dataclass
class LRFinderResult:
    """What the range test saw: ``lrs[i]`` was used for the update whose loss is ``raw_losses[i]``
    (measured before that update: ``raw_losses[i + 1]`` is the first loss to show its effect).

    ``losses`` are the smoothed (exponential moving average, bias-corrected) losses that decide when
    to stop; they lag behind the sweep (with the default ``smooth=0.98`` by about 50 updates, which is
    decades of learning rate), so they are not what the suggestion is read from. ``suggestion`` is the
    rate where the loss falls fastest per decade of learning rate, judged by lines fitted through
    centred windows of the raw losses, each fall credited to the rate that produced it (None, with
    ``note`` saying why, when fewer than ``MIN_SWEEP`` losses show an update's effect or the loss
    never fell below where it started); :meth:`losses_after_updates` is the curve it is read from
    (each loss after an update against that update's rate, and their centred moving average, which
    has no lag), and :meth:`plot` draws the suggestion on it. :meth:`centred_losses` averages the
    raw losses where they were measured (before each update), one per ``lrs[i]``.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float | None
    stop_reason: str
    note: str = ""  # why there is no suggestion, when there is none

    def losses_after_updates(self) -> tuple[list[float], list[float], list[float]]:
        """The curve the suggestion is read from: ``(rates, losses, centred)``, one entry per update whose
        effect the sweep saw (``raw_losses[i]`` and ``raw_losses[i + 1]`` finite): the update's rate
        ``lrs[i]``, the loss measured after it ``raw_losses[i + 1]``, and those losses averaged over
        centred windows (``2 * max(1, n // 20) + 1`` of them, shrinking at the ends): the level the
        suggestion's slopes are fitted to.

        Example:
            >>> from downslope.train.lr_find import LRFinderResult
            >>> LRFinderResult([1e-3, 1e-2, 1e-1], [3.0, 2.5, 2.0], [3.0, 2.0, 1.0], None, "").losses_after_updates()
            ([0.001, 0.01], [2.0, 1.0], [1.5, 1.5])
        """
        rates, losses = _seen(self.lrs, self.raw_losses)
        if not losses:
            return [], [], []
        centred = centred_average(np.asarray(losses, dtype=np.float64), _half_window(len(losses)))
        return rates, losses, [float(v) for v in centred]

    def centred_losses(self) -> list[float]:
        """The raw losses averaged over centred windows where they were measured (``raw_losses[i]``,
        before the update at ``lrs[i]``; the columns of ``downslope lr-find``'s CSV), the window
        ``2 * max(1, n // 20) + 1`` updates, shrinking at the ends; NaN where the raw loss was not
        finite. The suggestion is read from :meth:`losses_after_updates` (each loss credited to the
        rate of the update before it).

        Example:
            >>> from downslope.train.lr_find import LRFinderResult
            >>> LRFinderResult([1e-3, 1e-2, 1e-1], [3.0, 2.5, 2.0], [3.0, 2.0, 1.0], None, "").centred_losses()
            [2.5, 2.0, 1.5]
        """
        raw = np.asarray(self.raw_losses, dtype=np.float64)
        out = np.full(len(raw), np.nan)
        finite = np.isfinite(raw)
        if finite.any():
            out[finite] = centred_average(raw[finite], _half_window(int(finite.sum())))
        return [float(v) for v in out]

    def lowest(self) -> tuple[float, float] | None:
        """``(learning rate, loss)`` at the lowest point of the centred average of
        :meth:`losses_after_updates`: the rate after whose update the averaged loss was lowest (None
        when the sweep saw no update's effect). The classic rule of thumb takes a tenth of that rate."""
        rates, _, centred = self.losses_after_updates()
        if not centred:
            return None
        i = int(np.argmin(centred))
        return float(rates[i]), float(centred[i])

    def plot(
        self, ax: Any = None, save_path: str | Path | None = None, *, title: str | None = "Learning-rate range test"
    ) -> Any:
        """Loss (log scale, clipped above the losses up to the lowest point) against learning rate (log
        scale), titled ``title`` (None: no title), as downslope's other plots are; returns the matplotlib Axes.

        Drawn as the suggestion reads the sweep (:meth:`losses_after_updates`): each loss against the
        rate of the update it followed (faint), their centred moving average (no lag: the curve the
        suggestion is computed from, with the suggestion marked on its point at the suggested rate),
        the lowest point of that average and a tenth of its rate (the rule of thumb), and the lagging
        exponential moving average that decides when the sweep stops (dotted, for reference, at the
        rates it was measured at).
        """
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 4)).add_subplot()
        rates_list, after, centred_list = self.losses_after_updates()
        rates, centred = np.asarray(rates_list, dtype=np.float64), np.asarray(centred_list, dtype=np.float64)
        ax.plot(rates, after, color="C0", alpha=0.3, lw=1, label="loss after each update (raw), at its rate")
        half = _half_window(len(centred))
        ax.plot(rates, centred, color="C0", lw=2, label=f"centred average of {2 * half + 1} updates (no lag)")
        ax.plot(
            self.lrs, self.losses, ":", color="0.5", lw=1.2,
            label="exponential moving average (lags; decides the stop)",
        )  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        if title:
            ax.set_title(title)
        if self.suggestion is not None:
            # the fall is credited to the rate that made it: the marker sits on the plotted point of that rate
            at = int(np.argmin(np.abs(np.log(rates) - math.log(self.suggestion))))
            ax.axvline(self.suggestion, color="red", linestyle="--", lw=1.2)
            ax.plot(
                [rates[at]], [centred[at]], "o", color="red", zorder=5,
                label=f"suggestion {self.suggestion:.2g} (steepest fall of the centred average, loss per decade of lr)",
            )  # fmt: skip
        lowest = self.lowest()
        if lowest is not None:
            lr_min, loss_min = lowest
            ax.plot([lr_min], [loss_min], "v", color="black", zorder=5, label=f"lowest centred loss at {lr_min:.2g}")
            ax.axvline(lr_min / 10, color="green", linestyle=":", lw=1.5, label=f"lowest / 10 = {lr_min / 10:.2g}")
        _clip_to_the_dip(ax, centred, np.asarray(after, dtype=np.float64))
        # below the axes: inside, it would hide the dip (lower left) or the flat start (upper left)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        if save_path is not None:
            ax.figure.savefig(save_path, dpi=120, bbox_inches="tight")
        return ax


def _clip_to_the_dip(ax: Any, centred: np.ndarray, raw: np.ndarray) -> None:
    """A log loss axis from the lowest loss up to the highest one before the centred average's lowest
    point: the final divergence spike does not flatten the part of the curve that matters."""
    usable = np.isfinite(centred) & (centred > 0)
    if not usable.any():
        return
    lowest = int(np.argmin(np.where(usable, centred, np.inf)))
    before = np.concatenate([centred[: lowest + 1], raw[: lowest + 1]])
    before = before[np.isfinite(before) & (before > 0)]
    positive_raw = raw[np.isfinite(raw) & (raw > 0)]
    bottom = min(float(centred[usable].min()), float(positive_raw.min()) if len(positive_raw) else np.inf)
    ax.set_yscale("log")
    ax.set_ylim(bottom / 1.5, float(before.max()) * 1.2)
    ax.set_ylabel("loss (log scale)")


def _half_window(n: int) -> int:
    """Half the centred window the suggestion uses for a sweep of ``n`` finite losses."""
    return max(1, n // 20)


def centred_average(values: np.ndarray, half: int) -> np.ndarray:
    """Mean of each point's centred neighbourhood ``[i - half, i + half]``, the window shrinking at the
    ends (no zero padding, so the ends are not pulled down)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(len(values))
    lo, hi = np.maximum(0, index - half), np.minimum(len(values), index + half + 1)
    return (sums[hi] - sums[lo]) / (hi - lo)


def _local_slopes(x: np.ndarray, y: np.ndarray, half: int) -> np.ndarray:
    """Slope of a least-squares line through each point's centred neighbourhood (window 2*half+1).

    Fitting a line through many batch losses damps their noise far better than differencing
    a smoothed curve, and a centred window does not lag behind the sweep the way a running average
    does (a lagging curve puts its steepest point at too large a learning rate).
    """
    slopes = np.empty(len(x))
    for i in range(len(x)):
        lo, hi = max(0, i - half), min(len(x), i + half + 1)
        xs, ys = x[lo:hi] - x[lo:hi].mean(), y[lo:hi] - y[lo:hi].mean()
        slopes[i] = (xs @ ys) / (xs @ xs)
    return slopes


MIN_SWEEP = 10
"""The fewest losses seen after an update (``num_iter - 1`` for a sweep that did not stop early) that
:func:`lr_find` reads a suggestion from. Fewer points over the usual 8 decades lie about a decade apart:
the steepest fall could sit anywhere within 10x of the rate read off, and one noisy batch decides it."""


def _seen(lrs: list[float], raw: list[float]) -> tuple[list[float], list[float]]:
    """The updates whose effect the sweep saw, as the suggestion and the plot read them: the rate of each
    update ``lrs[i]`` and the loss measured after it ``raw[i + 1]``, where both losses are finite."""
    pairs = [(lrs[i], raw[i + 1]) for i in range(len(raw) - 1) if math.isfinite(raw[i]) and math.isfinite(raw[i + 1])]
    return [float(r) for r, _ in pairs], [float(v) for _, v in pairs]


def _suggest(lrs: list[float], raw: list[float], skip_start: int, skip_end: int) -> tuple[float | None, str]:
    """The suggested rate and, when there is none, why.

    ``raw[i]`` is the loss of the batch the update at ``lrs[i]`` then trained on: it was measured
    before that update, so the first loss to show the update's effect is ``raw[i + 1]``. A fall is
    credited to the rate that produced it, and the last rate, whose effect no loss shows, is never
    suggested. Only rates after which the loss (averaged over a centred window) had come down below
    where the sweep started, on the way down to its lowest point, can be suggested.
    """
    rates, after = _seen(lrs, raw)
    n = len(after)
    if n < MIN_SWEEP:
        return None, (
            f"the sweep showed the effect of {n} learning rate(s), fewer than the {MIN_SWEEP} needed to "
            "read a rate off it (raise num_iter, or lower start_lr if it diverged early)"
        )
    if n - skip_start - skip_end < MIN_SWEEP:  # a short sweep: shrink the skips in proportion, keep MIN_SWEEP
        scale = (n - MIN_SWEEP) / (skip_start + skip_end)
        skip_start, skip_end = int(skip_start * scale), int(skip_end * scale)
    half = _half_window(n)
    log_lr = np.log10(np.asarray(rates, dtype=np.float64))
    losses = np.asarray(after, dtype=np.float64)
    level = centred_average(losses, half)
    start_level = level[0]
    slopes = _local_slopes(log_lr, losses, half)[skip_start : n - skip_end]
    level = level[skip_start : n - skip_end]
    # Only the way down counts: past the lowest (locally averaged) loss, a fall after a blow-up is
    # not progress; and a rate after which the loss was still above where it started was not seen
    # to be good, however steep the fall around it.
    bottom = int(np.argmin(level)) + 1
    good = (slopes[:bottom] < 0) & (level[:bottom] < start_level)
    if not good.any():
        return None, "the loss did not fall below where the sweep started (try a wider range of rates)"
    steepest = int(np.argmin(np.where(good, slopes[:bottom], np.inf)))
    return float(rates[skip_start + steepest]), ""  # the rate itself, not 10**log10 of it


def lr_find(
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    data: Any,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    batch_size: int | str | None = 64,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    skip_start: int = 10,
    skip_end: int = 5,
    device: Any = None,
) -> LRFinderResult:
    """Learning-rate range test (fastai's defaults: 1e-7 to 10 over 100 updates, stop on divergence).

    Every parameter group gets the same rate, raised geometrically from ``start_lr`` to ``end_lr``;
    the test stops early when the smoothed loss exceeds ``diverge_factor`` times its best, or turns
    NaN/inf. ``data`` is ``(x, y)``, a Dataset or a DataLoader (cycled if shorter than ``num_iter``).
    Model, optimizer, gradients and random state are restored exactly afterwards. ``device`` moves the
    model there (in place, as fit does) and runs the sweep there; the test reads every step's loss to
    decide when to stop, so on a GPU each step waits for the device (a sweep is ~100 steps).

    A sweep whose losses show the effect of fewer than ``MIN_SWEEP`` (10) rates (``num_iter`` below 11,
    or an early divergence) suggests nothing: ``suggestion`` is None, ``note`` says why, and a
    UserWarning says so. Its points lie about a decade of rate apart; a rate read off them would be a
    guess, possibly one whose effect the sweep never saw.

    Example:
        >>> import numpy as np, downslope as ds
        >>> from downslope import nn, optim
        >>> from downslope.train import lr_find
        >>> _ = ds.manual_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(256, 2)); y = x @ np.array([[2.0], [-1.0]])
        >>> model = nn.Linear(2, 1); opt = optim.SGD(model.parameters(), lr=0.1)
        >>> before = model.weight.detach().numpy().copy()
        >>> result = lr_find(model, nn.MSELoss(), opt, (x, y), num_iter=50)
        >>> unchanged = bool((model.weight.detach().numpy() == before).all())
        >>> 1e-3 < result.suggestion < 2.0, unchanged, opt.param_groups[0]["lr"]
        (True, True, 0.1)
    """
    _check_arguments(start_lr, end_lr, num_iter, smooth)
    loss_fn = resolve_loss(loss_fn, "lr_find")  # a name, or a function fn(y_true, y_pred) called as fit calls it
    target = training_device(device, model, "lr_find")
    if device is not None and hasattr(model, "to"):
        model.to(target)
    placed = None if target == CPU else target
    with _restored_afterwards(model, optimizer):
        if isinstance(data, DataLoader):
            loader = data
        else:
            loader = as_loader(
                data, batch_size, True, None, "lr_find", device=placed, float_dtype=model_float_dtype(model)
            )
        with model_mode(model, True):
            lrs, raw, smoothed, stop_reason = _sweep(
                model, loss_fn, optimizer, loader, start_lr, end_lr, num_iter, smooth, diverge_factor, placed
            )
        suggestion, note = _suggest(lrs, raw, skip_start, skip_end)
        if suggestion is None:
            warnings.warn(f"lr_find: no suggestion: {note}", UserWarning, stacklevel=2)
        return LRFinderResult(lrs, smoothed, raw, suggestion, stop_reason, note)


def _check_arguments(start_lr: float, end_lr: float, num_iter: int, smooth: float) -> None:
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise ConfigError(f"lr_find: {name} must be a positive number, got {value!r}")
    if end_lr <= start_lr:
        raise ConfigError(f"lr_find: end_lr ({end_lr}) must be larger than start_lr ({start_lr})")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 2:
        raise ConfigError(f"lr_find: num_iter must be an integer >= 2, got {num_iter!r}")
    if not 0.0 <= smooth < 1.0:
        raise ConfigError(f"lr_find: smooth must lie in [0, 1), got {smooth!r}")


def _sweep(
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    loader: DataLoader,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    smooth: float,
    diverge_factor: float,
    placed: device | None,
) -> tuple[list[float], list[float], list[float], str]:
    """The updates at geometrically rising rates (the loader cycled); returns the rates, the raw and
    smoothed losses and why the sweep ended."""
    lrs: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    stop_reason = f"swept {num_iter} learning rates from {start_lr:g} to {end_lr:g}"
    average, best = 0.0, math.inf
    float_dtype = model_float_dtype(model)
    ratio = end_lr / start_lr
    batches = iter(loader)
    inputs = model_input_count(model)  # a batch (x1, x2, y) for a model of two inputs
    for i in range(num_iter):
        lr = start_lr * ratio ** (i / (num_iter - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        if placed is not None and loader.device != placed:
            batch = batch_to(batch, placed)
        x, y = unpack_batch(batch, "lr_find", inputs=inputs)
        if float_dtype is not None:  # a float64 model: its own dtype's batches (a user's DataLoader gives float32)
            x, y = conform(x, float_dtype), conform(y, float_dtype)
        loss = float(train_step(model, loss_fn, optimizer, x, y)["loss"])  # host: the sweep's stop rule
        lrs.append(lr)
        raw.append(loss)
        if not math.isfinite(loss):
            smoothed.append(loss)
            stop_reason = f"stopped at lr={lr:.3g}: the loss became {loss}"
            break
        average = smooth * average + (1 - smooth) * loss
        value = average / (1 - smooth ** (i + 1))
        smoothed.append(value)
        best = min(best, value)
        if i > 0 and value > diverge_factor * best:
            stop_reason = f"stopped at lr={lr:.3g}: the smoothed loss rose above {diverge_factor:g}x its best"
            break
    return lrs, raw, smoothed, stop_reason


@contextmanager
def _restored_afterwards(model: ModelLike, optimizer: OptimizerLike) -> Iterator[None]:
    """Puts the model, the optimizer (state and rates), the gradients and the library's random
    generator back exactly as they were, however the block ends."""
    saved_model = state_snapshot(model)
    saved_optimizer = optimizer.state_dict()
    saved_rng = backend.get_rng_state()
    params = list(model.parameters())
    saved_grads = [None if p.grad is None else p.grad.array.copy() for p in params]
    saved_lrs = [g["lr"] for g in optimizer.param_groups]
    try:
        yield
    finally:
        load_on_host(model, saved_model)  # the model may be on a device
        optimizer.load_state_dict(saved_optimizer)
        for group, lr in zip(optimizer.param_groups, saved_lrs):
            group["lr"] = lr
        for p, g in zip(params, saved_grads):
            if g is None:
                p.grad = None
            elif p.grad is not None and p.grad.array.shape == g.shape:
                np.copyto(p.grad.array, g)
            else:
                p.grad = wrap_array(g)
        backend.set_rng_state(saved_rng)
