"""Looking at optimization itself: ``downslope landscape`` (paths on 2-D test functions) and
``downslope lr-find`` (the learning-rate range test)."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import _config_from_args, _default_stem

if TYPE_CHECKING:
    from ..train.lr_find import LRFinderResult


def cmd_landscape(args: argparse.Namespace) -> int:
    from ..distributed import refuse_multi_process
    from ..errors import ConfigError
    from ..experiment import CHOICES
    from ..viz import landscape

    refuse_multi_process("downslope landscape")  # no data-parallel form: one line under mpiexec

    names = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    for n in names:
        if n not in CHOICES["optimizer"]:
            raise ConfigError(f"unknown optimizer {n!r}; choose one of: {', '.join(CHOICES['optimizer'])}")
    start = None
    if args.start:
        try:
            start = tuple(float(v) for v in args.start.split(","))
        except ValueError:
            raise ConfigError(f"--start expects two numbers 'x,y', got {args.start!r}") from None
        if len(start) != 2:
            raise ConfigError(f"--start expects two numbers 'x,y', got {args.start!r}")
        if not all(math.isfinite(v) and abs(v) <= 1e150 for v in start):
            raise ConfigError(f"--start expects two finite numbers of magnitude <= 1e150, got {args.start!r}")
    from .. import runs
    from ..viz.testfunctions import get_surface

    surface = get_surface(args.function)  # an unknown name is refused before any directory is made
    if args.kappa is not None:
        if surface.name != "quadratic":
            raise ConfigError(f"--kappa sets the condition number of --function quadratic, not of {surface.name!r}")
        from ..viz.testfunctions import quadratic_surface

        surface = quadratic_surface(args.kappa)
    if args.lr == 0:  # left out (None): each optimizer's own rate; a negative one is refused by the race
        raise ConfigError(
            "--lr must be > 0 (a learning rate of 0 moves nothing), got 0; leave it out for each optimizer's own"
        )
    if args.momentum is not None and not 0.0 <= args.momentum < 1.0:
        raise ConfigError(f"--momentum must lie in [0, 1), got {args.momentum}")

    # named like every run directory: unique, reserved before the work, published complete
    run = runs.reserve(
        Path(args.out) if args.out else None,
        parent="runs",
        stem=f"landscape-{args.function}",
        overwrite=args.overwrite,
    )
    try:
        written = landscape.run_landscape(
            surface,
            names,
            lr=args.lr,
            steps=args.steps,
            start=start,
            out_dir=run.staging,
            gif=args.gif,
            momentum=args.momentum,
        )
        run.publish(runs.COMPLETE)
    except BaseException:
        run.discard()
        raise
    written = [line.replace(str(run.staging), str(run.final)) for line in written]
    for line in written:
        print(line)
    return 0


def _placement(cfg: dict[str, Any]) -> dict[str, Any]:
    """``device=`` for the sweep when the config names one other than the CPU (auto resolved)."""
    from ..experiment.config import resolve_run_device

    device = resolve_run_device(cfg["device"])
    return {} if device == "cpu" else {"device": device}


def cmd_lr_find(args: argparse.Namespace) -> int:
    from .. import backend, runs
    from ..distributed import refuse_multi_process
    from ..experiment import (
        batch_size_of,
        build_loss,
        build_model,
        build_optimizer,
        model_targets,
        prepare,
        training_data,
    )
    from ..train import lr_find

    refuse_multi_process("downslope lr-find")  # no data-parallel form: one line under mpiexec
    cfg = _config_from_args(args)
    # reserved before the sweep, like every run directory: a taken --out is refused before any work
    run = runs.reserve(
        Path(cfg["out"]) if cfg["out"] else None,
        parent="runs",
        stem=_default_stem(cfg, "lr-find-"),
        overwrite=args.overwrite,
    )
    try:
        backend.manual_seed(cfg["seed"])
        data = prepare(cfg)
        model = build_model(cfg, data.n_features, data.n_outputs, data.image_shape)
        optimizer = build_optimizer(cfg, model.parameters())
        with warnings.catch_warnings():  # its "no suggestion" is said once, below, with the other results
            warnings.filterwarnings("ignore", message="lr_find: no suggestion", category=UserWarning)
            result = lr_find(
                model,
                build_loss(cfg, data.task),
                optimizer,
                training_data(data.X_train, model_targets(data.y_train, data.preprocess)),
                start_lr=args.start_lr,
                end_lr=args.end_lr,
                num_iter=args.num_iter,
                batch_size=batch_size_of(cfg) or 64,
                **_placement(cfg),
            )
        # the sweep's numbers, to plot or check elsewhere: each step's rate, its raw loss (the update's own
        # batch, measured before the update), the exponential moving average that decides the stop (it lags
        # behind the rising rate) and a centred moving average of the raw losses (no lag). The suggestion is
        # read from the losses after each update instead (losses_after_updates: a row's rate with the next
        # row's loss), so that a fall is credited to the rate that made it
        centred = result.centred_losses()
        rows = ["lr,loss,smoothed_loss,centred_loss"] + [
            f"{lr:.9g},{raw:.9g},{smooth:.9g},{mid:.9g}"
            for lr, raw, smooth, mid in zip(result.lrs, result.raw_losses, result.losses, centred)
        ]
        run.write_text("lr_find.csv", "\n".join(rows) + "\n")
        try:
            run.write_bytes("lr_find.png", _lr_find_png(result, cfg))
        except ImportError as exc:  # pragma: no cover - matplotlib missing
            print(f"downslope: plot skipped ({exc})", file=sys.stderr)
        run.publish(runs.COMPLETE)
    except BaseException:
        run.discard()
        raise
    if result.suggestion is None:
        note = result.note.replace("num_iter", "--num-iter").replace("start_lr", "--start-lr")  # the options' names
        print(f"no suggestion: {note}")
    else:
        print(
            f"suggested learning rate: {result.suggestion:.3g} (steepest descent of the loss averaged over "
            "centred windows, the thick line of the plot)"
        )
    lowest = result.lowest()
    if lowest is not None:
        print(f"lowest averaged loss {lowest[1]:.4g} at learning rate {lowest[0]:.3g} (a tenth: {lowest[0] / 10:.3g})")
    print(
        "lr_find.csv: loss = each update's raw loss, smoothed_loss = exponential moving average (lags), "
        "centred_loss = centred moving average"
    )
    # the plot is skipped (with a note) when matplotlib is missing: name only the files that were written
    written = [f"{run.final}/{name}" for name in ("lr_find.png", "lr_find.csv") if (run.final / name).is_file()]
    print(f"written: {', '.join(written)}")
    return 0


def _lr_find_png(result: Any, cfg: dict[str, Any]) -> bytes:
    """The range test's plot (:func:`_lr_find_axes`) as PNG bytes."""
    import io

    ax = _lr_find_axes(result, cfg)
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def _lr_find_axes(result: LRFinderResult, cfg: dict[str, Any]) -> Any:
    """The range test's plot: titled, loss on a log axis clipped above the losses up to the lowest one,
    so the final divergence spike does not flatten the part of the curve that matters."""
    from matplotlib.figure import Figure

    ax = Figure(figsize=(6, 4)).add_subplot()
    result.plot(ax=ax)  # log loss axis clipped above the losses up to the centred average's lowest point
    ax.set_title(f"learning-rate range test: {Path(str(cfg['data'])).stem}, {cfg['optimizer']}")
    return ax
