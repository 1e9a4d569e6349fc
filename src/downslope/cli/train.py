"""``downslope train``: a new run, or ``--resume`` of an unfinished one, written as a run directory."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from .common import _config_from_args, _default_stem
from .results import _write_run, weights_note


def _train_config(args: argparse.Namespace, processes: int = 1) -> tuple[dict[str, Any], Any]:
    """The settings of a new run and its reserved run directory (found writable before any training).

    An ``out`` that comes from a --config file (e.g. a copied runs/X/config.toml) is used only when
    nothing is there yet: repeating a run never writes over the run it came from.
    """
    from .. import runs
    from ..experiment import is_file_source, to_toml

    cfg = _config_from_args(args)
    if args.config and args.data is None:
        _check_data_of_a_run(args.config, cfg)
    out: Path | None = Path(os.path.expanduser(args.out)) if args.out else None
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
        runs.write_config(run, to_toml(cfg), settings=cfg)
        if is_file_source(str(cfg["data"])) and os.path.isfile(cfg["data"]):
            run.write_bytes(runs.DATA_FINGERPRINT_FILE, runs.json_bytes(runs.data_fingerprint(cfg["data"])))
        run.write_bytes(runs.LAUNCH_FILE, runs.json_bytes({"processes": processes}))
    except BaseException:
        run.discard()
        raise
    return cfg, run


def _check_data_of_a_run(config: str, cfg: dict[str, Any]) -> None:
    """A --config that is a run's config.toml names its data file relative to where that run was
    started: read the file the run trained on (its ``.data-fingerprint.json`` records the absolute path,
    size and SHA-256), not whatever the relative path names from here.

    - the path names the run's file: used; a note says if the file changed since the run read it;
    - it names another file and the run's file is still there: the run's file is used, with a note;
    - the run's file is gone and the one named here differs from it: refused (--data picks a file).

    ``cfg["data"]`` is replaced by the file to read."""
    from .. import runs
    from ..errors import ConfigError
    from ..experiment import is_file_source

    data = str(cfg["data"])
    record = runs.read_json_file(Path(config).parent / runs.DATA_FINGERPRINT_FILE)
    if record is None or not is_file_source(data) or not isinstance(record.get("path"), str):
        return
    then, here = record["path"], os.path.abspath(data)
    trained = f"the run {Path(config).parent} trained on"
    if then != here and os.path.isfile(then):
        print(
            f"note: reading {then}, the file {trained} ({data!r} names another file from here; pass --data to choose)"
        )
        cfg["data"] = then
        here = then
    if not os.path.isfile(here):
        return  # a missing file is said when it is read
    now = runs.data_fingerprint(here)
    if now["size"] == record.get("size") and now["sha256"] == record.get("sha256"):
        return
    if here == then:
        print(
            f"note: {data} changed since {trained} it ({record.get('size')} bytes then, {now['size']} now); "
            "training on the file as it is now"
        )
        return
    raise ConfigError(
        f"--config {config}: {trained} {then}, which is gone; {data} here is another file ({now['size']} bytes, "
        f"{record.get('size')} then, another SHA-256); pass --data {shlex.quote(str(data))} to train on it"
    )


def _check_stored_config(run: Any, text: str, given: dict[str, Any], settings: dict[str, Any]) -> None:
    """Refuse a config.toml changed since the run started (emptied, truncated or edited): the run's
    checkpoint was trained with the settings it started with, and another epoch limit, learning rate or
    model would silently continue it as another run. ``given``: the file's settings as written
    (flattened), ``settings``: normalized."""
    import hashlib

    from .. import runs
    from ..errors import ConfigError

    record = runs.config_record(run)
    where = run.path(runs.CONFIG_FILE)
    if record is None:  # a run started before config records: at least the file must be a run's config
        if not {"data", "epochs"} <= set(given):
            raise ConfigError(f"--resume {run.final}: {where} lacks data and epochs; it is not the run's config")
        return
    digests, started = record
    if hashlib.sha256(text.encode()).hexdigest() in digests:
        return
    changed, missing = [], []
    for key, value in (started or {}).items():
        if key in ("out", "verbose"):
            continue
        if key == "lr" and value == 0.0:  # how an older downslope recorded "the optimizer's default"
            value = None
        if value is None and key not in given:  # left out (the default), as config.toml leaves it out
            continue
        if key not in given:
            missing.append(key)
        elif settings.get(key) != value:
            changed.append(f"{key} = {settings[key]!r} (was {value!r})")
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        changed.append(f"{len(missing)} setting(s) missing ({shown})" if given else "it is empty")
    said = f": {'; '.join(changed[:6])}{'; ...' if len(changed) > 6 else ''}" if changed else ""
    raise ConfigError(
        f"--resume {run.final}: {where} was changed since the run started{said}; a run continues only with the "
        "settings it was trained with: restore the file, or start a new run (--config)"
    )


def _flags(settings: list[str]) -> list[str]:
    """The train command's options that set ``settings`` as typed ('header' is set by --no-header, not
    '--header', which does not exist)."""
    from .parser import _add_training_flags

    parser = argparse.ArgumentParser(add_help=False)
    _add_training_flags(parser)
    options = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
    return [options.get(k, f"--{k.replace('_', '-')}") for k in settings]


def _resumed_config(args: argparse.Namespace, processes: int = 1) -> tuple[dict[str, Any], Any]:
    """The stored settings and the run directory of an unfinished run, taken over by this process
    (rank 0 of ``processes``, which must be as many as trained the run)."""
    from .. import runs
    from ..errors import ConfigError
    from ..experiment import DEFAULTS, normalize_config
    from ..experiment.config import read_toml

    # --quiet, --device and --checkpoint-seconds may change: where (and how often saved) the run continues does
    # not change what it computes
    kept = ("verbose", "device", "checkpoint_seconds")
    given = [k for k in DEFAULTS if k not in kept and getattr(args, k, None) is not None]
    if given or args.config or args.overwrite:
        extra = _flags(given) + (["--config"] if args.config else []) + (["--overwrite"] if args.overwrite else [])
        raise ConfigError(
            f"--resume continues a run with its own stored settings; drop {', '.join(extra)} "
            "(or start a new run without --resume)"
        )
    run = runs.resume(args.resume)
    try:
        raw, text = read_toml(run.path(runs.CONFIG_FILE))
        flat: dict[str, Any] = {}
        for key, value in raw.items():
            flat.update(value if isinstance(value, dict) else {key: value})
        cfg = normalize_config(raw, str(run.path(runs.CONFIG_FILE)), text=text, stored=True)
        _check_stored_config(run, text, flat, cfg)
        data = runs.check_same_data(run, str(cfg["data"]))
        if data != cfg["data"]:  # said even with --quiet: which file is read is not progress output
            print(f"note: resuming on {data}, the file the run started on ({cfg['data']!r} names another from here)")
            cfg["data"] = data
        trained_on = runs.processes_of(run)
        if trained_on != processes:
            how = f"mpiexec -n {trained_on} downslope train --resume {shlex.quote(str(run.final))}"
            if trained_on == 1:
                how = f"downslope train --resume {shlex.quote(str(run.final))} (without mpiexec)"
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
    if getattr(args, "checkpoint_seconds", None) is not None:
        seconds = {"checkpoint_seconds": args.checkpoint_seconds}
        cfg["checkpoint_seconds"] = normalize_config(seconds, "--checkpoint-seconds")["checkpoint_seconds"]
    return cfg, run


def cmd_train(args: argparse.Namespace) -> int:
    """``downslope train``. SIGTERM and SIGHUP (a closed terminal, an ended SSH session) are handled as
    SIGINT throughout (a KeyboardInterrupt, outside the epochs, where fit finishes the epoch first): the
    run is left resumable, or discarded when nothing was trained, with one line and exit status 130. A
    signal the process ignores (``nohup`` ignores SIGHUP) stays ignored."""
    import signal
    import threading

    from .. import startup_signals

    if threading.current_thread() is not threading.main_thread():
        return _train(args)
    previous = {}
    for sig in _TERMINATING:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = startup_signals.before_startup(sig)
            signal.signal(sig, _signal_as_interrupt)
    startup_signals.end_startup()  # Ctrl-C: a KeyboardInterrupt again, as the command handles it
    try:
        return _train(args)
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is not signal.SIG_IGN:  # (ignored by _interrupted_exit as it exits)
                signal.signal(sig, handler)


def _terminating_signals() -> tuple[int, ...]:
    """SIGTERM, and SIGHUP where there is one (not on Windows)."""
    import signal

    return (signal.SIGTERM,) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


_TERMINATING = _terminating_signals()


def _signal_as_interrupt(signum: int, frame: Any) -> None:
    import signal

    raise KeyboardInterrupt(signal.Signals(signum).name)


def _first_epoch_callback(resuming: bool = False) -> Any:
    """A callback noting the first epoch this process trains (after a resume: how many were done before);
    ``resuming``, it prints where training continues (once that is known: after the restore)."""
    from ..train.callbacks import Callback

    class FirstEpoch(Callback):
        first_epoch: int | None = None

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.first_epoch is None:
                self.first_epoch = epoch
                if resuming and epoch:
                    print(f"resuming after epoch {epoch} of {self.trainer.params.get('epochs')}", flush=True)

        def on_train_end(self, logs: Any = None) -> None:
            if resuming and self.first_epoch is None:  # the checkpoint was saved where training ended
                done = len(self.trainer.history) if self.trainer.history is not None else "?"
                print(f"resuming after epoch {done}: no epoch left to train; writing the run", flush=True)

    return FirstEpoch()


def _train(args: argparse.Namespace) -> int:
    from .. import runs
    from ..distributed import launched_size
    from ..errors import CheckpointError, ConfigError
    from ..experiment import run_training
    from ..train.callbacks.write_errors import NO_SPACE, failure_advice, failure_cause

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
        try:
            cfg, run = _train_config(args, processes)  # (a run reserved here is discarded on any error)
        except KeyboardInterrupt as exc:
            print(f"downslope train: {_signal_name(exc)} during start-up; {_DISCARDED}", file=sys.stderr)
            return _interrupted_exit()
    # where a resumed run continues is said even with --quiet, as which file it reads is
    resuming = bool(args.resume) and run is not None
    if resuming and not run.checkpoint.is_file():
        print("resuming: no epoch was saved; starting over", flush=True)
    resumed_at = _first_epoch_callback(resuming and run.checkpoint.is_file())
    if run is not None:
        # A full training checkpoint in the run's directory (written atomically), at most every
        # checkpoint_seconds: what --resume continues from after a kill.
        saver = _run_checkpoint(run)
        saver.seconds = float(cfg.get("checkpoint_seconds") or 0.0)
        options["extra_callbacks"] = [saver, resumed_at]
        if args.resume and run.checkpoint.is_file() and "resume_from" not in options:
            options["resume_from"] = run.checkpoint
    if writer:
        # said once the data is read: input refused at once is not a run being written
        writing = f"writing the run to {run.staging}/ (it becomes {run.final}/ when complete)" if run else ""

        def on_data(data: Any) -> None:
            if writing and cfg["verbose"]:
                print(writing, flush=True)
            _print_target(data, cfg)

        options["on_data"] = on_data
    try:
        result = run_training(cfg, **options)
    except BaseException as exc:
        if run is None:
            raise
        # a checkpoint that could not be written (disk full, file-size limit) keeps the run, even the first
        unwritten = isinstance(exc, CheckpointError) and exc.filename == str(run.checkpoint)
        # (its temporary file gone before its rename: the directory is being removed, rm -rf not done yet)
        vanishing = unwritten and isinstance(exc, CheckpointError) and exc.reason == os.strerror(errno.ENOENT)
        if vanishing or not run.in_place():  # removed from under us: nothing to keep, mark or discard
            run.abandon()  # (no status marker written into a directory being removed)
            if isinstance(exc, runs.RunRemovedError):
                raise
            raise runs.RunRemovedError(
                f"the run directory {run.staging} was removed while training; the run is abandoned "
                f"(nothing was published as {run.final})"
            ) from None
        if not (args.resume or run.checkpoint.is_file() or unwritten):
            run.discard()  # nothing was trained: leave nothing behind
            if isinstance(exc, KeyboardInterrupt):
                print(
                    f"downslope train: {_signal_name(exc)} before the first epoch finished; {_DISCARDED}",
                    file=sys.stderr,
                )
                return _interrupted_exit()
            raise
        run.leave(runs.INTERRUPTED)  # resumable: the checkpoint holds every finished epoch
        if isinstance(exc, KeyboardInterrupt):
            print(
                f"downslope train: {_signal_name(exc)}; the run is kept in {run.staging}/: continue it with "
                f"'downslope train --resume {run.final}'",
                file=sys.stderr,
            )
            return _interrupted_exit()
        if unwritten and isinstance(exc, CheckpointError):
            # e.g. the disk filled up, or the file-size limit (ulimit -f): the previous checkpoint is intact
            code = exc.errno
            if code is None:  # an error that kept only the system's words: tell the cause from them
                code = errno.EFBIG if exc.reason == os.strerror(errno.EFBIG) else errno.ENOSPC
            failure = OSError(code, exc.reason)
            room = failure_advice(failure) if code in NO_SPACE else f"make {run.staging}/ writable again"
            saved = "with its last checkpoint" if run.checkpoint.is_file() else "(no epoch saved yet)"
            raise ConfigError(
                f"could not write the checkpoint {run.checkpoint} ({exc.reason}){failure_cause(failure)}; the run "
                f"is kept in {run.staging}/ {saved}: {room} and continue with 'downslope train --resume {run.final}'"
            ) from None
        raise
    if run is None:
        return 0
    if not cfg["verbose"]:  # (shown with the progress output otherwise) a warning about the data never vanishes
        for note in result.diagnostics:
            print(f"{'note' if note in result.data.notes else 'warning'}: {note}", file=sys.stderr)
    if result.history.stop_kind == "interrupted":  # SIGINT/SIGTERM: the epoch was finished and saved
        _ignore_late_signals()
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
    _cumulative_seconds(result, resumed_at.first_epoch)
    try:
        metrics = _write_run(result, run)
        run.publish(runs.DIVERGED if diverged else runs.COMPLETE)
    except OSError as exc:  # e.g. the disk is full: no file of the run is lost or mixed with another run's
        run.leave(runs.INTERRUPTED)
        raise ConfigError(
            f"could not write the run ({exc.strerror or exc}: {exc.filename or run.staging}); the trained state is "
            f"kept in {run.staging}/: make room and continue with 'downslope train --resume {run.final}'"
        ) from None
    except KeyboardInterrupt as exc:  # SIGINT/SIGTERM while the report was written: the trained state is kept
        run.leave(runs.INTERRUPTED)
        print(
            f"downslope train: {_signal_name(exc)} while the run's files were written; the trained run is kept in "
            f"{run.staging}/: finish it with 'downslope train --resume {run.final}'",
            file=sys.stderr,
        )
        return _interrupted_exit()
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


def _checkpoint_clock() -> float:
    """Seconds on a clock that only moves forward, for spacing the run's checkpoints."""
    import time

    return time.monotonic()


def _run_checkpoint(run: Any) -> Any:
    """The checkpoint of ``run``, written only into the directory this process reserved: a run
    directory removed while training (``rm -rf``) stops the run with an error instead of being made again,
    half empty, and published as complete.

    Written after the first epoch, then at most once every ``.seconds`` (0: after every epoch), and always
    after the epoch where training stops (the last epoch, early stopping, a target, divergence, a time limit,
    or a signal that fit finishes the epoch for): each write syncs the file to disk, which for a small model
    costs far more than an epoch. A ``kill -9`` loses at most the epochs of the last ``.seconds``;
    ``--resume`` continues from the last one saved."""
    from ..train.callbacks import Logs, ModelCheckpoint

    class RunCheckpoint(ModelCheckpoint):
        seconds = 0.0  # the least time between two writes (the run's checkpoint_seconds)
        saved_at: float | None = None  # the clock at the last write; None before the first

        def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
            run.check_in_place()
            trainer = self.trainer
            last = epoch + 1 >= int(trainer.params.get("epochs") or 0)
            now = _checkpoint_clock()
            stops = trainer.stop_training or trainer.signal_received is not None  # (a signal: after this epoch)
            if self.seconds > 0 and not last and not stops and self.saved_at is not None:
                if now - self.saved_at < self.seconds:
                    return
            super().on_epoch_end(epoch, logs)
            self.saved_at = now
            run.check_after_write(run.checkpoint.name)  # removed just before the write, which made it again

    return RunCheckpoint(run.checkpoint)


# what an interruption before any epoch was saved says (the README quotes it)
_DISCARDED = "nothing was trained and the run was discarded (nothing to resume)"


def _ignore_late_signals() -> None:
    """As the ``downslope`` command exits after an interruption: the run is already kept (or discarded) and
    said, so another Ctrl-C or SIGTERM would only kill the process by the signal (a Python parent then sees
    -2, not the documented 130). Called from Python (``main([...])``), the caller's handlers stay."""
    import signal
    import threading

    from . import _as_command

    if _as_command and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, *_TERMINATING):
            signal.signal(sig, signal.SIG_IGN)


def _interrupted_exit() -> int:
    """Exit status 130; under mpiexec the job's other ranks are ended too (as main does for errors)."""
    from .. import runs
    from ..distributed import end_job_on_error

    _ignore_late_signals()
    end_job_on_error(runs.EXIT_INTERRUPTED)
    return runs.EXIT_INTERRUPTED


def _signal_name(exc: BaseException) -> str:
    """How an interruption is named: ``interrupted by SIGTERM`` or ``SIGHUP`` (this module's handler), else
    by SIGINT."""
    said = str(exc)
    if said.startswith("second "):  # fit: a second signal aborted the epoch
        return f"interrupted ({said})"
    return f"interrupted by {next((name for name in ('SIGTERM', 'SIGHUP') if name in said), 'SIGINT')}"


def _cumulative_seconds(result: Any, first_epoch: int | None) -> None:
    """metrics.json's "seconds" over every segment of a resumed run: the time this process trained
    plus the history's clock when it took over (history.csv's "time" is cumulative too)."""
    times = result.history.as_dict().get("time") or []
    if first_epoch is None:  # no epoch trained here: every epoch was trained before the resume
        before = times[-1] if times else 0.0
    else:
        before = times[first_epoch - 1] if 0 < first_epoch <= len(times) else 0.0
    if before and isinstance(before, (int, float)):
        result.seconds += before
        result.metrics["seconds"] = round(result.metrics["seconds"] + before, 3)


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


def _print_target(data: Any, cfg: dict[str, Any]) -> None:
    """What the reader decided about a file (the task and why), before training: a surprise shows in
    time to stop the run."""
    from ..experiment import is_file_source

    if is_file_source(str(cfg["data"])):
        what = f"{data.n_outputs} classes" if data.task == "classification" else "regression"
        reason = f"; {data.task_reason}" if data.task_reason else ""
        name = f"{data.target_name!r} " if data.target_name else ""
        print(
            f"target: {name}({what}{reason}), {data.n_features} feature{'s' if data.n_features != 1 else ''}",
            flush=True,
        )
        _print_split(data, cfg)


def _print_split(data: Any, cfg: dict[str, Any]) -> None:
    """How the rows were split: a shuffled split of time-ordered rows scores a model optimistically."""
    from ..experiment.inputs import split_words

    kind = str(cfg.get("split", "random"))
    n_val = len(data.X_val) if data.X_val is not None else 0
    other = "; --split ordered keeps the file's order" if kind == "random" else ""
    print(
        f"split: {split_words(kind)}: {len(data.X_train)} training, {n_val} validation, {len(data.X_test)} test "
        f"rows{other}",
        flush=True,
    )


def shown_metrics(metrics: dict[str, Any], prefix: str = "") -> list[str]:
    """``name=value`` of each metric whose name starts with ``prefix``, for a line of text: the class a binary
    run's average precision is about is said beside that number, not as a metric of its own (its value is a
    class name, not a score).

    Example:
        >>> shown_metrics({"test_average_precision": 0.42, "test_positive_class": "fraud", "epochs": 3}, "test_")
        ["test_average_precision=0.42 (average precision of class 'fraud')"]
    """
    out = []
    for key, value in metrics.items():
        if not key.startswith(prefix):
            continue
        if key.endswith("positive_class") and key.replace("positive_class", "average_precision") in metrics:
            continue  # said with the average precision
        said = f"{key}={value}"
        if key.endswith("average_precision"):
            positive = metrics.get(key.replace("average_precision", "positive_class"))
            if positive is not None:
                said += f" (average precision of class {str(positive)!r})"
        out.append(said)
    return out


def _print_summary(result: Any, cfg: dict[str, Any], metrics: dict[str, Any], out: Path) -> None:
    """What a finished run says: why it stopped, what the reader made of a file, the test metrics."""

    shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in metrics.items()}  # 1e-7 is not 0.0
    if not cfg["verbose"]:  # the progress output has already said why training stopped
        print(f"stopped: {result.stop_reason}")
    saved = weights_note(result)
    if saved:
        print(f"note: {saved}")
    print("test metrics: " + ", ".join(shown_metrics(shown, "test_")))
    print(f"run written to {out}/ (report.html, metrics.json, history.csv, model.ds, config.toml)")
