"""``downslope compare``: several optimizers, learning rates or batch sizes on one task and initialization."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from .common import _batch_size_given, _config_from_args, _default_stem


def cmd_compare(args: argparse.Namespace) -> int:
    from .. import runs
    from ..distributed import refuse_multi_process

    refuse_multi_process("downslope compare")  # no data-parallel form: one line under mpiexec
    base = _config_from_args(args)
    plan = _compare_plan(args, base)
    # named like every run directory: unique, reserved before the work (a taken or non-empty --out is
    # refused before anything is trained), published complete; never written into another run
    run = runs.reserve(
        Path(base["out"]) if base["out"] else None,
        parent="runs",
        stem=_default_stem(base, "compare-", with_optimizer=False),
        overwrite=args.overwrite,
    )
    try:
        out, every_run_diverged = _compare_into(base, plan, run)
        run.publish(runs.DIVERGED if every_run_diverged else runs.COMPLETE)
    except BaseException:
        run.discard()
        raise
    # the plot is skipped (with a note) when matplotlib is missing: name only the files that were written
    names = ("compare.csv", "histories.csv", "compare.png")
    print(f"written: {', '.join(f'{out}/{name}' for name in names if (Path(out) / name).is_file())}")
    if every_run_diverged:  # as train says of its one run: the comparison holds no working setting
        print(f"downslope compare: every run diverged (exit status {runs.EXIT_DIVERGED})", file=sys.stderr)
        return runs.EXIT_DIVERGED
    return 0


def _compare_plan(args: argparse.Namespace, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination of --optimizers x --lrs x --batch-sizes as (name, config), each config
    checked before anything is trained."""
    from ..errors import ConfigError
    from ..experiment import normalize_config

    optimizers = [o.strip() for o in (args.optimizers or "sgd,momentum,rmsprop,adam").split(",") if o.strip()]
    if not optimizers:
        raise ConfigError(f"--optimizers: expected comma-separated optimizer names, got {args.optimizers!r}")
    lrs = [base["lr"]]
    if args.lrs:
        try:
            lrs = [float(v) for v in args.lrs.split(",")]
        except ValueError:
            raise ConfigError(f"--lrs: expected comma-separated numbers such as 0.01,0.1, got {args.lrs!r}") from None
    batches: list[str | None] = [base["batch_size"]] if _batch_size_given(args) else [None]
    if args.batch_sizes:
        batches = [b.strip() for b in args.batch_sizes.split(",")]
    plan = []
    for opt in optimizers:
        for lr in lrs:
            for bs in batches:
                settings = dict(base, optimizer=opt, lr=lr, batch_size=bs, target_loss=0.0)
                if bs is None:  # not given: each optimizer's own (full batch for gd, 64 for the others)
                    del settings["batch_size"]
                cfg = normalize_config(settings, "compare")
                # every name says the rate the run actually uses: without --lrs each optimizer runs at its
                # own default (adam 0.001, sgd 0.01), and a race at different rates must say so
                used = _lr_used(cfg)
                cfg["lr"] = used
                name = f"{opt} lr={used:g}"
                if len(batches) > 1:
                    name += f" batch={bs}"
                plan.append((name, cfg))
    names = [name for name, _ in plan]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # two runs of one name would share one row of results
        raise ConfigError(
            f"--optimizers/--lrs/--batch-sizes: {', '.join(repeated)} would run twice; list each value once"
        )
    return plan


def _lr_used(cfg: dict[str, Any]) -> float:
    """The learning rate a run of ``cfg`` trains at: --lr/--lrs, else the optimizer's default."""
    from ..experiment import build_optimizer
    from ..tensor import tensor

    return float(build_optimizer(cfg, [tensor([0.0], requires_grad=True)]).param_groups[0]["lr"])


def _updates_per_epoch(cfg: dict[str, Any], n_train: int) -> int:
    """Optimizer updates in one epoch: one for full batch, one per sample for batch size 1."""
    from ..experiment import batch_size_of

    bs = batch_size_of(cfg)
    return max(1, math.ceil(n_train / bs)) if bs else 1


def _compare_into(base: dict[str, Any], plan: list[tuple[str, dict[str, Any]]], run: Any) -> tuple[Path, bool]:
    """Train every (name, config) of ``plan`` and write compare's files into ``run``'s staging directory;
    return the directory the files will be in once the run is published, and whether every run diverged."""
    from .. import backend
    from ..experiment import build_loss, build_model, prepare

    data = prepare(base)
    backend.manual_seed(base["seed"])
    init = build_model(base, data.n_features, data.n_outputs, data.image_shape).state_dict()  # one init for all runs
    loss_name = build_loss(base, data.task).__class__.__name__
    loss_unit = {"CrossEntropyLoss": "cross-entropy", "MSELoss": "MSE", "L1Loss": "L1", "HuberLoss": "Huber"}.get(
        loss_name, loss_name
    )
    if data.preprocess.get("target_scaler"):
        loss_unit += ", std. target"
    metric_key = "test_accuracy" if data.task == "classification" else "test_r2"
    results = _train_all(base, plan, data, init)
    histories = {name: result.history for name, result in results}
    hists = {name: history.as_dict() for name, history in histories.items()}
    has_val = all(h.get("val_loss") for h in hists.values())
    monitored = {name: (h.get("val_loss") if has_val else None) or h.get("loss") for name, h in hists.items()}
    what = "val loss" if has_val else "training loss"
    chance = _chance_loss(base, data, has_val)
    at_chance = {name: not histories[name].diverged and _at_chance(monitored[name], chance) for name in monitored}
    target, target_origin = base["target_loss"], "--target-loss"
    if not target:
        # Without a target, take the largest of the best losses of the runs that did not diverge: every
        # one of them reaches it, so the table says how fast each got there (epochs and seconds), which
        # is what compare is for. (A median would leave the worse half, or with two runs the worse one,
        # without a number however close they are.) A diverged run's early losses would drag the target
        # above where the others start, and every run would "reach" it in one epoch; so would a run that
        # learned nothing (its best loss is about the chance level every run starts from).
        kept = [m for name, m in monitored.items() if not histories[name].diverged and not at_chance[name]]
        best = [min(v for v in m if math.isfinite(v)) for m in kept if any(math.isfinite(v) for v in m)]
        target = float(max(best)) if best else 0.0
        target_origin = (
            f"the largest of the best {'validation' if has_val else 'training'} losses of the runs that did not "
            f"diverge{' or stay at chance level' if any(at_chance.values()) else ''}, so each of them reaches it; "
            "set --target-loss to choose"
        )
    n_train = len(data.X_train)
    updates = {name: _updates_per_epoch(cfg, n_train) for name, cfg in plan}
    batch_of = {name: cfg["batch_size"] for name, cfg in plan}
    rows = [
        _compare_row(name, result, monitored[name], hists[name], target, metric_key, updates[name], at_chance[name])
        for name, result in results
    ]
    labels = {}
    for name in hists:
        per_epoch = f"{updates[name]} update{'s' if updates[name] != 1 else ''}/epoch"
        labels[name] = f"{name} ({per_epoch})" if " batch=" in name else f"{name} (batch={batch_of[name]}, {per_epoch})"
    _write_compare_files(run, rows, hists, histories, metric_key, target, updates, labels)
    if target:
        print(f"{what} target {target:.4g} ({target_origin})")
    metric_label = "test accuracy" if data.task == "classification" else "test R^2"
    _print_compare_table(rows, loss_unit, metric_label, what)
    if chance is not None and any(at_chance.values()):
        baseline = "class frequencies" if data.task == "classification" else "mean"
        print(
            f"at chance: the run's {what} ended at or above {AT_CHANCE:.0%} of {chance:.4g}, the {what} of always "
            f"predicting the training split's {baseline}, never getting clearly below it or ending above its first "
            "epoch's: it learned nothing usable (dead ReLUs from a too-large step are a common cause; see its "
            "warnings), and it is left out of the default target"
        )
    return run.final, all(history.diverged for history in histories.values())


def _train_all(base: dict[str, Any], plan: list[tuple[str, dict[str, Any]]], data: Any, init: Any) -> list[Any]:
    """(name, result) of every run of the plan, from the same data and initial weights; one progress
    line per run (one table, not N training logs)."""
    from ..experiment import run_training

    if base["verbose"]:
        print(f"compare: {len(plan)} runs on {data.name}, same split, initial weights and seed", flush=True)
    # One untimed epoch first: the first training in a process pays one-off costs (compiled kernels
    # loaded, GEMM library started, caches filled) of 35-60 ms, which made whichever run went first
    # look many times slower in the seconds-to-target column and the wall-time plot.
    run_training(dict(plan[0][1], epochs=1, verbose=0), data=data, initial_state=init)
    results = []
    for i, (name, cfg) in enumerate(plan, 1):
        result = run_training(dict(cfg, verbose=0), data=data, initial_state=init)
        results.append((name, result))
        if base["verbose"]:
            final, val = result.metrics.get("final_loss"), result.metrics.get("final_val_loss")
            # labelled as the table's columns: "final loss" is the training loss, "val loss" the validation's
            said = f"final loss {final:.4g}" if final is not None else "final loss -"
            if val is not None:
                said += f", val loss {val:.4g}"
            state = "diverged" if result.history.diverged else said
            print(
                f"[{i}/{len(plan)}] {name}: {result.metrics['epochs']} epochs in {result.seconds:.1f} s, {state}",
                flush=True,
            )
            for note in result.diagnostics:
                print(f"{name}: warning: {note}")
    return results


def _compare_row(
    name: str,
    result: Any,
    monitor: list[float],
    hist: dict[str, Any],
    target: float,
    metric_key: str,
    updates_per_epoch: int,
    at_chance: bool = False,
) -> tuple[Any, ...]:
    """One line of compare.csv: final losses and metric, epochs, when the target was reached, diverged,
    at chance level; then, for the printed table only, the updates per epoch."""
    # a diverged run is not credited with the target (its first epochs may pass it on the way up)
    reached = (
        next((i + 1 for i, v in enumerate(monitor) if v <= target), None)
        if target and not result.history.diverged
        else None
    )
    elapsed = hist.get("time") or []  # seconds since training began, at the end of each epoch
    seconds_to = elapsed[reached - 1] if reached and elapsed else None
    return (
        name,
        result.metrics.get("final_loss"),
        result.metrics.get("final_val_loss"),
        result.metrics.get(metric_key),
        result.metrics["epochs"],
        reached,
        seconds_to,
        result.history.diverged,  # the training loop's DivergenceGuard decided
        at_chance,
        updates_per_epoch,
    )


def _write_compare_files(
    run: Any,
    rows: list[tuple[Any, ...]],
    hists: dict[str, dict[str, Any]],
    histories: dict[str, Any],
    metric_key: str,
    target: float,
    updates: dict[str, int],
    labels: dict[str, str],
) -> None:
    """compare.csv (one row a run), histories.csv (one row a run and epoch) and compare.png."""
    header = f"run,final_loss,final_val_loss,{metric_key},epochs,epochs_to_target,seconds_to_target,diverged,at_chance"
    csv_lines = [header] + [
        ",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in r[:9]) for r in rows
    ]
    run.write_bytes("compare.csv", ("\n".join(csv_lines) + "\n").encode())
    long = ["run,epoch,loss,val_loss,time"]
    for name, h in hists.items():
        for i, loss in enumerate(h["loss"]):
            cells = [h.get(k, [None] * (i + 1))[i] for k in ("val_loss", "time")]
            long.append(",".join([name, str(i + 1), repr(loss)] + ["" if c is None else repr(c) for c in cells]))
    run.write_bytes("histories.csv", ("\n".join(long) + "\n").encode())
    try:
        from ..viz.curves import plot_compare

        plot_compare(
            histories,
            target=target or None,
            updates_per_epoch=updates,
            labels=labels,
            save_path=run.staging / "compare.png",
        )
    except ImportError as exc:
        print(f"downslope: plot skipped ({exc})", file=sys.stderr)


def _print_compare_table(rows: list[tuple[Any, ...]], loss_unit: str, metric_label: str, what: str) -> None:
    """The table of results; ``what`` names the loss the target is measured on ("val loss")."""
    width = max(len(r[0]) for r in rows)
    labels = [
        f"final loss ({loss_unit})",
        f"val loss ({loss_unit})",
        metric_label,
        "epochs",
        f"{what} to target (epochs)",
        f"{what} to target (s)",
        "diverged",
        "at chance",
        "updates/epoch",
    ]
    widths = [max(len(label), 8) for label in labels]
    print(f"{'run':<{width}}  " + "  ".join(f"{label:>{w}}" for label, w in zip(labels, widths)))
    for r in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v) for v in r[1:7]]
        cells.append("yes" if r[7] else "no")
        cells.append("yes" if r[8] else "no")
        cells.append(str(r[9]))
        print(f"{r[0]:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print(
        f'final loss: the training loss, {TRAINING_LOSS_NOTE}; "to target": the first epoch whose {what} '
        "is at or below the target"
    )
    if any(r[7] for r in rows):  # explained only when it happened
        print(
            "diverged: the training loop's divergence guard stopped the run (loss NaN/inf, 100x above its best and "
            "above where it started, or 10^4x above where it started; the first batch's loss is where it started)"
        )


TRAINING_LOSS_NOTE = "the loss over all the epoch's rows (batch losses weighted by batch size), each before its update"

#: A run whose loss ends at or above this fraction of the chance-level loss ends with nothing usable.
AT_CHANCE = 0.95


def _chance_loss(base: dict[str, Any], data: Any, has_val: bool) -> float | None:
    """The loss of a model that learned nothing on the split the runs are judged on: always the training
    split's class frequencies (cross-entropy; ln(classes) for balanced classes) or its mean (regression),
    measured with the runs' own loss; None when it cannot be computed."""
    import numpy as np

    from ..experiment import build_loss, model_targets
    from ..experiment.models import balanced_class_weights
    from ..tensor import tensor

    y = data.y_val if has_val else data.y_train
    if y is None or not len(y) or not len(data.y_train):
        return None
    pre = data.preprocess
    targets = model_targets(np.asarray(y), pre)
    weights = None
    if base.get("class_weight", "none") == "balanced" and data.task == "classification":
        weights = balanced_class_weights(data.y_train, data.n_outputs)
    loss_fn = build_loss(base, data.task, weights)
    if data.task == "classification":
        counts = np.bincount(np.asarray(data.y_train, np.int64).reshape(-1), minlength=data.n_outputs)
        frequencies = (counts + 1e-3) / (counts.sum() + 1e-3 * len(counts))  # no log(0) for an absent class
        preds = np.broadcast_to(np.log(frequencies), (len(targets), data.n_outputs)).astype(np.float32)
    else:
        train = model_targets(np.asarray(data.y_train), pre).astype(np.float64)
        preds = np.broadcast_to(train.mean(axis=0), targets.shape).astype(np.float32)
    value = float(loss_fn(tensor(np.ascontiguousarray(preds)), tensor(targets)).item())
    return value if math.isfinite(value) and value > 0 else None


def _at_chance(monitor: list[float], chance: float | None) -> bool:
    """Whether a run's loss ended at chance level: whatever it learned on the way (a too-large step
    can kill every ReLU after an epoch or two of progress, earlier or later with the machine's
    rounding), the model it ends with is no better than predicting the class frequencies."""
    finite = [v for v in monitor if v is not None and math.isfinite(v)]
    if chance is None or not finite:
        return False
    return finite[-1] >= AT_CHANCE * chance
