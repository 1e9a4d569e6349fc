"""Signals while the ``downslope`` command starts: Ctrl-C, SIGTERM or SIGHUP arriving while its modules
are imported (a second or more, before any command has installed its own handling) end it with one line,
``downslope: interrupted``, and exit status 130, instead of a traceback (SIGINT) or a silent death by the
signal (SIGTERM: 143, SIGHUP: 129).

Installed as this module is imported (the package's first import) only when the process is that command (``downslope ...`` or
``python -m downslope ...``): a program importing downslope keeps its own handlers. A signal the process
ignores (``nohup`` ignores SIGHUP) stays ignored. Nothing is reserved or written before a command starts,
so exiting at once leaves nothing behind. This module imports nothing heavy: it runs before numpy.

Example:
    >>> from downslope import startup_signals
    >>> startup_signals.is_command(["python", "-c", "..."], ["-c"])
    False
    >>> startup_signals.is_command(["python", "-m", "downslope", "train"], ["-m", "train"])
    True
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

# The signals that end the command during start-up (SIGHUP: a closed terminal; absent on Windows).
STARTUP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
EXIT_INTERRUPTED = 130  # as Ctrl-C at a shell (runs.EXIT_INTERRUPTED, not imported: this runs first)

# signal number -> the handler the process had before start-up (restored by end_startup)
_saved: dict[int, Any] = {}


def is_command(orig_argv: list[str] | None = None, argv: list[str] | None = None) -> bool:
    """Whether this process is the ``downslope`` command: the console script, or ``python -m downslope``
    (while the package is imported for ``-m``, ``sys.argv[0]`` is ``'-m'``: the interpreter's own
    arguments, ``sys.orig_argv``, name the module)."""
    orig = list(sys.orig_argv if orig_argv is None else orig_argv)
    args = list(sys.argv if argv is None else argv)
    if args and os.path.basename(args[0]) == "downslope":
        return True
    words = iter(orig[1:])
    for word in words:
        if word in ("-W", "-X"):  # the interpreter's options that take the next word
            next(words, None)
        elif word == "-m":
            return next(words, None) == "downslope"
        elif word == "-c" or not word.startswith("-"):
            return False  # a program's code or a script: any -m later on is that program's argument
    return False


def _exit_interrupted(signum: int, frame: Any) -> None:
    # SystemExit, not KeyboardInterrupt: it passes every import under way (which may catch
    # KeyboardInterrupt or nothing at all) and ends the interpreter with no traceback
    try:
        sys.stderr.write("downslope: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError, RuntimeError):  # a hung-up terminal: nothing can be said, the status still is
        pass
    raise SystemExit(EXIT_INTERRUPTED)


def catch_during_startup() -> None:
    """Install :func:`_exit_interrupted` for :data:`STARTUP_SIGNALS` when this process is the command."""
    if _saved or not is_command() or threading.current_thread() is not threading.main_thread():
        return
    for name in STARTUP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN or current is None:  # ignored on purpose (nohup), or set outside Python
            continue
        _saved[sig] = current
        signal.signal(sig, _exit_interrupted)


def end_startup() -> None:
    """Put back the handlers the process had before start-up, where the start-up one is still installed
    (a command that installed its own keeps them)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in list(_saved.items()):
        if signal.getsignal(sig) is _exit_interrupted:
            signal.signal(sig, handler)
    _saved.clear()


def before_startup(sig: int) -> Any:
    """The handler of ``sig`` before start-up (the current one when start-up installed none): what a command
    that replaces the start-up handler puts back as it ends."""
    return _saved.get(sig, signal.getsignal(sig))


catch_during_startup()  # at import: the package imports this module before anything heavy
