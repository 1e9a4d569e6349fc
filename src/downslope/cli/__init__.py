"""The ``downslope`` command: train, evaluate, predict, compare, landscape, lr-find, export, runs.

Every subcommand prints one clear line and exits with status 2 on bad input (unknown names list the
valid ones; missing or malformed files say where), never a traceback.

Modules: parser (flags and help), common (settings from flags and config files), train, results (a
run's files), features (a run's inputs read back), use (evaluate, predict, export, runs), compare, explore
(landscape, lr-find). The private helpers that tests import from ``downslope.cli``
(``_features_for``: what predict feeds a model, ``_plots``, ...) are re-exported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


def _interrupted_while_starting() -> None:
    """Ctrl-C while the command's modules are imported (before main's own handler): when this runs as
    the ``downslope`` command, one line and exit status 130 instead of a traceback."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    if name in ("downslope", "__main__.py"):
        print("downslope: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise  # imported as a library: the caller's KeyboardInterrupt


try:
    from .common import _config_from_args as _config_from_args
    from .compare import cmd_compare
    from .explore import _lr_find_axes as _lr_find_axes
    from .explore import cmd_landscape, cmd_lr_find
    from .features import _features_for as _features_for
    from .features import _raw_features as _raw_features
    from .parser import EXAMPLES, TRAIN_EPILOG, build_parser
    from .results import _in_data_units as _in_data_units
    from .results import _plots as _plots
    from .train import cmd_train
    from .use import cmd_evaluate, cmd_export, cmd_predict, cmd_runs
except KeyboardInterrupt:
    _interrupted_while_starting()

COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "compare": cmd_compare,
    "landscape": cmd_landscape,
    "lr-find": cmd_lr_find,
    "export": cmd_export,
    "runs": cmd_runs,
}


# Options whose value may start with a minus (a point "-1.8,0"): argparse would take "-1.8,0" for an
# option of its own, so "--start -1.8,0" is passed on as "--start=-1.8,0".
_SIGNED_VALUE_OPTIONS = ("--start",)


def _joined_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _SIGNED_VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def _empty_out(argv: list[str]) -> bool:
    """Whether ``--out`` was given an empty value (``--out ""`` or ``--out=``)."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--out=" or (arg == "--out" and i + 1 < len(argv) and argv[i + 1] == ""):
            return True
    return False


# Whether the CLI runs as the `downslope` command (and python -m downslope), which read sys.argv, rather
# than from Python (main([...])): only the command changes process-wide state such as signal handlers.
_as_command = False


class _StdoutUntilClosed:
    """The standard output until its reader goes away (``downslope train ... | head -n 3``), then nowhere.

    A closed pipe is the reader saying it has read enough, not a failure of the command: the training goes
    on, its run is published, and the exit status is the command's own. Only writes to the standard output
    are dropped; errors still go to the standard error."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def _reader_gone(self) -> None:
        self.closed_by_reader = True
        self._stream = open(os.devnull, "w")  # noqa: SIM115  (kept for the rest of the command)
        try:
            # the interpreter flushes the real standard output again at exit: let that find somewhere to go
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
            finally:
                os.close(devnull)
        except OSError:
            pass

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno, ... of the stream
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    global _as_command
    _as_command = argv is None
    given = sys.stdout
    guarded = _StdoutUntilClosed(given)
    sys.stdout = guarded
    try:
        return _main(argv)
    except KeyboardInterrupt:  # while the arguments were read, before a command's own handling
        print("downslope: interrupted", file=sys.stderr)
        return 130
    finally:
        if sys.stdout is guarded:
            sys.stdout = given
            if guarded.closed_by_reader and given is sys.__stdout__:
                _drop_pending(given)


def _drop_pending(stream: Any) -> None:
    """Flush what the closed standard output still buffers into the devnull now behind its descriptor, so
    the interpreter's flush at exit does not report a broken pipe."""
    try:
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv = _joined_negative_values(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose help lists the valid flags
        where = args._subparsers.get(args.command, parser) if args.command else parser
        where.error(f"unrecognized arguments: {' '.join(extra)}")
    if _empty_out(argv):  # e.g. an unset $RUN_DIR: "no --out" would write somewhere the script never looks
        where = args._subparsers.get(args.command, parser) if args.command else parser
        where.error("empty --out (an unset shell variable?); give a path")
    if args.version:
        from .. import __version__

        print(f"downslope {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    from .. import startup_signals
    from ..errors import DownslopeError

    if args.command != "train":  # (train replaces the start-up handlers itself, leaving no moment unhandled)
        startup_signals.end_startup()
    try:
        return COMMANDS[args.command](args)
    except (DownslopeError, ValueError, OSError) as exc:  # bad input or an unwritable/unreadable path
        print(f"downslope {args.command}: error: {_error_text(exc)}", file=sys.stderr)
        _end_mpi_job(2)
        return 2
    except ImportError as exc:  # an optional extra not installed: its message says what to install
        print(f"downslope {args.command}: error: {exc}", file=sys.stderr)
        _end_mpi_job(2)
        return 2
    except MemoryError as exc:  # a raw traceback says nothing a user can act on
        print(f"downslope {args.command}: error: {_memory_advice(exc)}", file=sys.stderr)
        _end_mpi_job(2)
        return 2
    except KeyboardInterrupt:
        print(f"downslope {args.command}: interrupted", file=sys.stderr)
        _end_mpi_job(130)
        return 130


def _error_text(exc: BaseException) -> str:
    """The one line said of a refused command: the error's own message, with what the system's bare
    errors leave out: a working directory that was deleted (getcwd fails, relative paths name nothing)
    and, for a path too long, the path shortened (it may be kilobytes)."""
    import errno

    from ..runs import shortened

    try:
        os.getcwd()
        cwd_gone = False
    except OSError:
        cwd_gone = True
    if isinstance(exc, OSError) and exc.errno is not None:
        if cwd_gone and exc.filename is None:
            return (
                "the current working directory no longer exists (deleted, or its file system unmounted), so "
                "relative paths name nothing; cd to an existing directory and run the command again"
            )
        if exc.errno == errno.ENAMETOOLONG and exc.filename is not None:
            return f"{exc.strerror}: {shortened(exc.filename)}"
        if exc.errno == errno.ENOSPC and exc.filename is None and _stdout_failed(exc):
            return (
                f"{exc.strerror} writing to the standard output (a full disk or a full pipe behind "
                "'> log'); the run's own directory is not the one that is full"
            )
    text = str(exc)
    if cwd_gone:
        text += "; note: the current working directory no longer exists, so relative paths name nothing"
    return text


def _stdout_failed(exc: OSError) -> bool:
    """Whether ``exc`` came from a write to the standard output (the innermost frame writing to it)."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in ("write", "flush") and isinstance(frame.f_locals.get("self"), _StdoutUntilClosed):
            return True
        tb = tb.tb_next
    return False


def _memory_advice(exc: MemoryError) -> str:
    """What ran out of memory, told by where the allocation failed: building or running the model (its
    layer sizes named), reading the data, or neither known."""
    said = f"out of memory ({str(exc) or type(exc).__name__})"  # a bare MemoryError() prints as ''
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in frames:
        if frame.f_code.co_name == "build_model" and frame.f_code.co_filename.endswith(
            os.path.join("experiment", "models.py")
        ):
            local = frame.f_locals
            found = local.get("cfg")
            cfg: dict[str, Any] = found if isinstance(found, dict) else {}
            sizes = [local.get("n_features"), *(cfg.get("hidden") or []), local.get("n_outputs")]
            shown = " -> ".join(str(n) for n in sizes if isinstance(n, int))
            return (
                f"{said}; the model is too big for the memory available (layer sizes {shown}): choose smaller "
                "hidden layers (--hidden, or hidden in the config)"
            )
    places = {os.path.basename(os.path.dirname(frame.f_code.co_filename)) for frame in frames}
    if "nn" in places or "train" in places:  # the forward/backward pass: activations of a batch
        return (
            f"{said}; the model's activations do not fit in the memory available: choose smaller hidden layers "
            "(--hidden) or a smaller --batch-size"
        )
    if "data" in places or any(f.f_code.co_filename.endswith(os.path.join("experiment", "inputs.py")) for f in frames):
        return (
            f"{said}; the data is too big for the memory available: leave out wide one-hot columns with --drop, "
            "lower --max-categories, or use fewer rows"
        )
    return f"{said}; free some memory, or use smaller data or a smaller model"


def _end_mpi_job(code: int) -> None:
    """Under mpiexec, a rank that stops with an error ends every rank (the others would wait for it
    in a collective forever); nothing happens in a plain process."""
    from ..distributed import end_job_on_error

    end_job_on_error(code)


__all__ = [
    "COMMANDS",
    "EXAMPLES",
    "TRAIN_EPILOG",
    "build_parser",
    "cmd_compare",
    "cmd_evaluate",
    "cmd_export",
    "cmd_landscape",
    "cmd_lr_find",
    "cmd_predict",
    "cmd_runs",
    "cmd_train",
    "main",
]
