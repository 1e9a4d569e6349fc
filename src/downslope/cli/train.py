"""``downslope train``: a new run, or ``--resume`` of an unfinished one, written as a run directory."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .common import _config_from_args, _default_stem
from .results import _write_run


def _train_config(args: argparse.Namespace, processes: int = 1) -> tuple[dict[str, Any], Any]:
    """The settings of a new run and its reserved run directory (found writable before any training).

    An ``out`` that comes from a --config file (e.g. a copied runs/X/config.toml) is used only when
    nothing is there yet: repeating a run never writes over the run it came from.
    """
    from .. import runs
    from ..experiment import is_file_source, to_toml

    cfg = _config_from_args(args)
    out: Path | None = Path(args.out) if args.out else None
    if out is None and cfg["out"]:
        candidate = Path(cfg["out"])
        taken = os.path.lexists(candidate) and (not candidate.is_dir() or any(candidate.iterdir()))
        if taken or os.path.lexists(runs.staging_path(candidate)):
            if cfg["verbose"]:
                print(f"note: {args.config} names out = {str(candidate)!r}, which exists; writing a new run instead")
        else:
            out = candidate
    run = runs.reserve(out, parent="runs", stem=_default_stem(cfg), overwrite=args.overwrite)
    cfg["out"] = str(run.final)
    try:
        run.write_text(runs.CONFIG_FILE, to_toml(cfg))
        if is_file_source(str(cfg["data"])) and os.path.isfile(cfg["data"]):
            run.write_bytes(runs.DATA_FINGERPRINT_FILE, runs.json_bytes(runs.data_fingerprint(cfg["data"])))
        run.write_bytes(runs.LAUNCH_FILE, runs.json_bytes({"processes": processes}))
    except BaseException:
        run.discard()
        raise
    return cfg, run


def _resumed_config(args: argparse.Namespace, processes: int = 1) -> tuple[dict[str, Any], Any]:
    """The stored settings and the run directory of an unfinished run, taken over by this process
    (rank 0 of ``processes``, which must be as many as trained the run)."""
    from .. import runs
    from ..errors import ConfigError
    from ..experiment import DEFAULTS, load_toml, normalize_config

    # --quiet and --device may change: where the run continues does not change what it computes
    kept = ("verbose", "device")
    given = [f"--{k.replace('_', '-')}" for k in DEFAULTS if k not in kept and getattr(args, k, None) is not None]
    if given or args.config or args.overwrite:
        extra = given + (["--config"] if args.config else []) + (["--overwrite"] if args.overwrite else [])
        raise ConfigError(
            f"--resume continues a run with its own stored settings; drop {', '.join(extra)} "
            "(or start a new run without --resume)"
        )
    run = runs.resume(args.resume)
    try:
        cfg = normalize_config(load_toml(run.path(runs.CONFIG_FILE)), str(run.path(runs.CONFIG_FILE)))
        data = runs.check_same_data(run, str(cfg["data"]))
        if data != cfg["data"]:  # said even with --quiet: which file is read is not progress output
            print(f"note: resuming on {data}, the file the run started on ({cfg['data']!r} names another from here)")
            cfg["data"] = data
        trained_on = runs.processes_of(run)
        if trained_on != processes:
            how = f"mpiexec -n {trained_on} downslope train --resume {run.final}"
            if trained_on == 1:
                how = f"downslope train --resume {run.final} (without mpiexec)"
            raise ConfigError(
                f"--resume {args.resume}: the run was trained on {trained_on} process(es) and this is {processes}; "
                f"another count would change the batch each update sees and the order of the samples; continue it "
                f"with '{how}'"
            )
    except BaseException:
        run.leave(runs.INTERRUPTED)
        raise
    if args.verbose is not None:
        cfg["verbose"] = args.verbose
    if args.device is not None:
        cfg["device"] = normalize_config({"device": args.device}, "--device")["device"]
    return cfg, run


def cmd_train(args: argparse.Namespace) -> int:
    from .. import runs
    from ..distributed import launched_size
    from ..errors import CheckpointError, ConfigError
    from ..experiment import run_training
    from ..train.callbacks import ModelCheckpoint

    writer, processes = True, launched_size() or 1
    if processes > 1:  # under mpiexec only rank 0 writes the run and reports
        from .. import distributed as dist

        dist.init()
        writer = dist.is_main()
    options: dict[str, Any] = {}
    if args.resume and processes > 1:
        cfg, run, options["resume_from"] = _resumed_on_every_rank(args, processes, writer)
        if options["resume_from"] is None:
            del options["resume_from"]
    elif not writer:
        cfg, run = _config_from_args(args), None
    elif args.resume:
        cfg, run = _resumed_config(args)
    else:
        cfg, run = _train_config(args, processes)
    if run is not None:
        # A full training checkpoint in the run's directory after every epoch (written atomically):
        # what --resume continues from after a kill.
        options["extra_callbacks"] = [ModelCheckpoint(run.checkpoint)]
        if args.resume and run.checkpoint.is_file() and "resume_from" not in options:
            options["resume_from"] = run.checkpoint
        if cfg["verbose"]:
            print(f"writing the run to {run.staging}/ (it becomes {run.final}/ when complete)")
    try:
        result = run_training(cfg, **options)
    except BaseException as exc:
        if run is None:
            raise
        if not (args.resume or run.checkpoint.is_file()):
            run.discard()  # nothing was trained: leave nothing behind
            raise
        run.leave(runs.INTERRUPTED)  # resumable: the checkpoint holds every finished epoch
        if isinstance(exc, CheckpointError) and exc.filename == str(run.checkpoint):
            raise ConfigError(  # e.g. the disk filled up: the previous epoch's checkpoint is intact
                f"could not write the checkpoint {run.checkpoint} ({exc.reason}); the run is kept in "
                f"{run.staging}/ with its last checkpoint: make room and continue with "
                f"'downslope train --resume {run.final}'"
            ) from None
        raise
    if run is None:
        return 0
    if result.history.stop_kind == "interrupted":  # SIGINT/SIGTERM: the epoch was finished and saved
        run.leave(runs.INTERRUPTED)
        print(
            f"downslope train: {result.stop_reason}; the run is kept in {run.staging}/: "
            f"continue it with 'downslope train --resume {run.final}'",
            file=sys.stderr,
        )
        return runs.EXIT_INTERRUPTED
    diverged = result.history.diverged  # the training loop's divergence rules decided (History.stop_kind)
    kept = None
    if diverged and runs.keeps_complete_run(run):
        # --overwrite replaces a run only with a complete one: a diverged run is published beside it
        kept, run.final, run.overwrite = run.final, runs.set_aside_name(run.final), False
    try:
        metrics = _write_run(result, run)
        run.publish(runs.DIVERGED if diverged else runs.COMPLETE)
    except OSError as exc:  # e.g. the disk is full: no file of the run is lost or mixed with another run's
        run.leave(runs.INTERRUPTED)
        raise ConfigError(
            f"could not write the run ({exc.strerror or exc}: {exc.filename or run.staging}); the trained state is "
            f"kept in {run.staging}/: make room and continue with 'downslope train --resume {run.final}'"
        ) from None
    except BaseException:
        run.leave(runs.INTERRUPTED)
        raise
    _print_summary(result, cfg, metrics, run.final)
    if diverged:
        reason = result.stop_reason or "diverged"
        said = reason if reason.startswith("diverged") else f"diverged ({reason})"  # not "diverged (diverged: ...)"
        print(
            f"downslope train: training {said}; the run and its report are in {run.final}/ "
            f"(status diverged, exit status {runs.EXIT_DIVERGED})"
            + (
                f"; the complete run in {kept}/ was kept (--overwrite replaces it only with a complete run)"
                if kept
                else ""
            ),
            file=sys.stderr,
        )
        return runs.EXIT_DIVERGED
    return 0


def _resumed_on_every_rank(args: argparse.Namespace, processes: int, writer: bool) -> tuple[dict[str, Any], Any, Any]:
    """--resume under mpiexec: rank 0 takes the run over and sends its settings and checkpoint to every
    rank (which read the checkpoint from the shared file system, as ``distributed.fit`` requires).

    Returns (settings, the run on rank 0 or None, the checkpoint to continue from or None)."""
    from .. import distributed as dist
    from ..errors import ConfigError

    cfg, run, failure = None, None, None
    if writer:
        try:
            cfg, run = _resumed_config(args, processes)
        except Exception as exc:  # every rank must hear of it, or the others wait for the settings forever
            failure = exc
    checkpoint = str(run.checkpoint.resolve()) if run is not None and run.checkpoint.is_file() else None
    message = None if failure is None else str(failure)
    shared = dist.broadcast_object({"config": cfg, "checkpoint": checkpoint, "error": message})
    if failure is not None:
        raise failure
    if shared["error"] is not None:
        raise ConfigError(f"rank 0: {shared['error']}")
    return shared["config"], run, shared["checkpoint"]


def _print_summary(result: Any, cfg: dict[str, Any], metrics: dict[str, Any], out: Path) -> None:
    """What a finished run says: why it stopped, what the reader made of a file, the test metrics."""
    from ..experiment import is_file_source

    shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in metrics.items()}  # 1e-7 is not 0.0
    if not cfg["verbose"]:  # the progress output has already said why training stopped
        print(f"stopped: {result.stop_reason}")
    data = result.data
    if is_file_source(str(cfg["data"])):  # what the reader decided about a file, so a surprise shows
        what = f"{data.n_outputs} classes" if data.task == "classification" else "regression"
        reason = f"; {data.task_reason}" if data.task_reason else ""
        name = f"{data.target_name!r} " if data.target_name else ""
        print(f"target: {name}({what}{reason}), {data.n_features} feature{'s' if data.n_features != 1 else ''}")
    print("test metrics: " + ", ".join(f"{k}={v}" for k, v in shown.items() if k.startswith("test_")))
    print(f"run written to {out}/ (report.html, metrics.json, history.csv, model.ds, config.toml)")
