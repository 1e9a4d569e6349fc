"""Run directories on disk: reserved atomically, written in a staging directory, published in one rename.

A run of ``downslope train`` goes through these states::

    reserve(out)   ->  <parent>/.<name>.partial/          created with an exclusive mkdir and held
                        status.json {"status": "running"}  with a lock (flock) while the process lives
                        config.toml, checkpoint.ckpt       checkpoint rewritten every checkpoint_seconds
    publish()      ->  every result file written, then status.json {"status": "complete"|"diverged"}
                        LAST, then one rename: .<name>.partial -> <name>
                        (--overwrite: the old and the new directory are exchanged in one step)
    interrupted    ->  the staging directory stays, status "interrupted" (or "running" after a kill -9,
                        when nothing could be written); ``downslope train --resume <name>`` continues it

So a reader never sees a half-written or mixed run under the final name: the name appears (or is
replaced) only when everything is in place, and :func:`check_complete` refuses anything whose status
marker is not "complete". Every file is replaced atomically (a temporary file, fsync, rename), and a
file replaced this way never writes through a symlink that stood at its name.

The exclusive mkdir of the staging name is the reservation: two processes that want the same
``--out`` cannot both get it, and one whose process died (kill -9) leaves its staging directory
unlocked, which is how ``--resume`` tells a dead run from a live one.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> run = reserve(root / "demo")
    >>> run.write_text("notes.txt", "hello")
    >>> run.publish(COMPLETE)
    >>> sorted(p.name for p in (root / "demo").iterdir())
    ['notes.txt', 'status.json']
    >>> check_complete(root / "demo") == root / "demo"
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, ConfigError, DataError, StateError

if TYPE_CHECKING:
    from .nn.module import Module

STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.ckpt"
CONFIG_FILE = "config.toml"
# the data file's size and SHA-256 when the run started: --resume refuses a file that changed since
DATA_FINGERPRINT_FILE = ".data-fingerprint.json"
# how many processes trained the run (mpiexec -n): --resume continues it on as many, since another
# count would change the batch each update sees and the order of the samples
LAUNCH_FILE = ".launch.json"
# the SHA-256 of every config.toml this run wrote, and the settings it started with: --resume refuses a
# config.toml edited (or emptied) since, naming the settings that differ
CONFIG_RECORD_FILE = ".config-record.json"
# the entry of a run's model.ds holding the SHA-256 of the config.toml written with it: a model.ds that
# another run wrote (copied in by hand, a sync gone wrong) is refused rather than scored under this name
CONFIG_FINGERPRINT = "config_sha256"
MODEL_FILE = "model.ds"
RUNNING, COMPLETE, DIVERGED, INTERRUPTED = "running", "complete", "diverged", "interrupted"
STATUSES = (RUNNING, COMPLETE, DIVERGED, INTERRUPTED)
# Exit statuses of ``downslope train`` besides 0 (complete) and 2 (bad input or an unwritable path).
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
_STAGING_SUFFIX = ".partial"


# ---------------------------------------------------------------------- files
def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` atomically with ``data`` (a symlink at ``path`` is replaced, never followed).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> write_bytes(p, b"x"); p.read_bytes()
        b'x'
    """
    from . import serialization

    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)):
        # atomic_write_bytes writes through a link or a FIFO (what a user's own --out means); a run's files
        # are the library's: one planted there is removed, never written through
        os.unlink(path)
    serialization.atomic_write_bytes(path, data)


class RunRemovedError(StateError):
    """A run's staging directory was removed (e.g. ``rm -rf``) while its process was writing it."""


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented JSON, with NaN and infinities written as ``null`` (JSON has no such numbers).

    Example:
        >>> json_bytes({"loss": float("nan"), "epochs": 3})
        b'{\\n  "loss": null,\\n  "epochs": 3\\n}\\n'
    """

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return (json.dumps(clean(obj), indent=2, allow_nan=False) + "\n").encode()


def staging_path(final: str | os.PathLike[str]) -> Path:
    """Where the run that will be published as ``final`` is written meanwhile: ``.<name>.partial`` beside it.

    Example:
        >>> staging_path("runs/digits-adam").as_posix()
        'runs/.digits-adam.partial'
    """
    p = Path(final)
    return p.parent / f".{p.name}{_STAGING_SUFFIX}"


def _final_of_staging(path: Path) -> Path | None:
    name = path.name
    if name.startswith(".") and name.endswith(_STAGING_SUFFIX) and len(name) > 1 + len(_STAGING_SUFFIX):
        return path.parent / name[1 : -len(_STAGING_SUFFIX)]
    return None


def unique_name(stem: str) -> str:
    """``<stem>-<YYYYmmdd-HHMMSS>-<4 hex digits>``: the time for people, the random suffix for uniqueness.

    Example:
        >>> len(unique_name("digits-adam").split("-"))
        5
    """
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


#: The most bytes a status marker may hold (one is a few hundred: a status, a pid, a time, the run's
#: file names); and any other small JSON file of a run (metrics, records).
STATUS_LIMIT = 1 << 20
JSON_FILE_LIMIT = 64 << 20


def _read_small(path: Path, limit: int, what: str) -> bytes:
    """serialization.read_small_file, imported when needed (importing runs stays free of NumPy)."""
    from .serialization import read_small_file

    return read_small_file(path, limit, what)


def status_file_problem(run_dir: str | os.PathLike[str]) -> str | None:
    """Why a run's status.json cannot be a status marker without reading it (a FIFO, a device, a
    directory, a file over :data:`STATUS_LIMIT`), or None (a small regular file, or none at all).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); (d / STATUS_FILE).mkdir()
        >>> status_file_problem(d)
        'its status.json is a directory, not a regular file'
    """
    import stat

    from .serialization import special_file_kind

    try:
        info = os.stat(Path(run_dir) / STATUS_FILE)
    except OSError:
        return None
    kind = special_file_kind(info.st_mode)
    if kind:
        return f"its {STATUS_FILE} is {kind}, not a regular file"
    if stat.S_ISREG(info.st_mode) and info.st_size > STATUS_LIMIT:
        return f"its {STATUS_FILE} holds {info.st_size} bytes, far more than a status marker"
    return None


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The status marker of a run or staging directory, or None when there is none (or it is unreadable,
    not a regular file, or larger than :data:`STATUS_LIMIT`: a FIFO or /dev/zero is never read)."""
    try:
        status = json.loads(_read_small(Path(run_dir) / STATUS_FILE, STATUS_LIMIT, "a status marker"))
    except (OSError, ValueError, RecursionError):  # RecursionError: a deeply nested (crafted) file
        return None
    return status if isinstance(status, dict) and status.get("status") in STATUSES else None


# ---------------------------------------------------------------------- locking
def _try_lock(path: Path) -> int | None:
    """serialization.try_lock, imported when needed (importing runs stays free of NumPy)."""
    from .serialization import try_lock

    return try_lock(path)


def _is_locked(path: Path) -> bool:
    try:
        fd = _try_lock(path)
    except OSError:
        return False
    if fd is None:
        return True
    os.close(fd)
    return False


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries in one atomic step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: the kernel or file system cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(a))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_replaceable(path: Path) -> bool:
    """Whether --overwrite may replace ``path`` as a whole: an empty directory or a downslope run."""
    return not any(path.iterdir()) or is_run_directory(path)


def is_run_directory(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a run downslope wrote, told by the run's own markers, not by file names alone.

    A file named ``status.json`` or ``model.ds`` proves nothing (a project may have its own): the
    status marker must be the one :meth:`Run.set_status` writes (a known status, the writer's pid and
    time, and for a published run the list of its files, status.json among them). A directory
    without a marker counts only if its ``model.ds`` is a downslope checkpoint beside a config.toml
    (a run written before status markers existed).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "status.json").write_text('{"build": "ok"}')
        >>> is_run_directory(d)
        False
    """
    where = Path(path)
    if os.path.lexists(where / STATUS_FILE):  # a FIFO or a device there is no marker downslope wrote
        status = read_status(where)
        if status is None:
            return False
        pid, stamp, files = status.get("pid"), status.get("time"), status.get("files")
        if type(pid) is not int or not isinstance(stamp, str):
            return False
        if status["status"] in (COMPLETE, DIVERGED):
            return (
                isinstance(files, list)
                and all(isinstance(f, str) and f and "/" not in f for f in files)
                and STATUS_FILE in files
            )
        return True
    return (where / CONFIG_FILE).is_file() and _is_downslope_checkpoint(where / "model.ds")


def _is_downslope_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a zip holding a downslope checkpoint's members (its central directory only)."""
    import zipfile

    try:
        if not path.is_file():
            return False
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return {"meta.json", "meta.sha256"} <= names


_WRITE_WITH_TEMP = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>(\.[^.]*)?)")


def _is_write_with_temp(name: str) -> bool:
    """Whether ``name`` is a temporary name of :meth:`Run.write_with`: ".<name>.<8 random characters><suffix>"."""
    found = _WRITE_WITH_TEMP.fullmatch(name)
    return found is not None and Path(found["target"]).suffix == found["suffix"]


# ---------------------------------------------------------------------- a run being written
class Run:
    """A reserved run: ``final`` is the name it will have, ``staging`` where it is written meanwhile.

    Hold it only in the process that reserved (or resumed) it; :meth:`publish` makes it appear under
    ``final``, :meth:`leave` keeps it resumable, :meth:`discard` removes it.
    """

    def __init__(self, final: Path, staging: Path, lock_fd: int | None, overwrite: bool) -> None:
        self.final = final
        self.staging = staging
        self._lock_fd = lock_fd
        self.overwrite = overwrite
        self.made_dirs: list[Path] = []  # the parents reserving created, innermost first (discard removes them)

    @property
    def checkpoint(self) -> Path:
        """The per-epoch training checkpoint inside the staging directory."""
        return self.staging / CHECKPOINT_FILE

    def path(self, name: str) -> Path:
        return self.staging / name

    def in_place(self) -> bool:
        """Whether the staging directory is still the one this process reserved (not removed, or
        removed and made again by someone else)."""
        if self._lock_fd is not None:
            return _is_at(self._lock_fd, self.staging)
        return self.staging.is_dir()

    def check_in_place(self) -> None:
        """Raise :class:`RunRemovedError` when the staging directory was removed (or replaced) since it was
        reserved: a write there would make a new, half-empty run that could be published as complete."""
        if not self.in_place():
            raise RunRemovedError(
                f"the run directory {self.staging} was removed while training; the run is abandoned "
                f"(nothing was published as {self.final})"
            )

    def write_bytes(self, name: str, data: bytes) -> None:
        self.check_in_place()
        write_bytes(self.staging / name, data)
        self.check_after_write(name)

    def check_after_write(self, name: str) -> None:
        """After a write of ``name``: a directory removed just before it was made again by the write (which
        makes missing parents); take back what the write left there and raise :class:`RunRemovedError`."""
        if self.in_place():
            return
        with contextlib.suppress(OSError):
            (self.staging / name).unlink()
            self.staging.rmdir()
        self.check_in_place()

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_with(self, name: str, render: Callable[[Path], object]) -> None:
        """Let ``render(tmp_path)`` write a file, then move it to ``name`` atomically (for writers that want a path)."""
        import tempfile

        self.check_in_place()
        target = self.staging / name
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=self.staging)
        os.close(fd)
        try:
            render(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            self.check_in_place()  # (a write into a removed directory fails: say why)
            raise

    def clear_stale_temporaries(self) -> list[str]:
        """Remove the temporary files a killed writer left in the staging directory (the names
        :func:`serialization.is_atomic_temp_name` and :meth:`write_with` write under before their
        rename), and return their names. Only this process writes there while it holds the run."""
        from .serialization import is_atomic_temp_name

        removed: list[str] = []
        try:
            entries = list(self.staging.iterdir())
        except OSError:
            return removed
        for entry in entries:
            if not (is_atomic_temp_name(entry.name) or _is_write_with_temp(entry.name)):
                continue
            if entry.is_symlink() or not entry.is_file():
                continue
            try:
                entry.unlink()
                removed.append(entry.name)
            except OSError:
                pass
        return removed

    def set_status(self, status: str, **extra: Any) -> None:
        """Write the status marker (atomically) in the staging directory."""
        record = {"status": status, "pid": os.getpid(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
        self.write_bytes(STATUS_FILE, json_bytes(record))

    def publish(self, status: str = COMPLETE) -> None:
        """Write the final status marker last and give the run its final name in one rename.

        Raises:
            StateError: the final name was taken meanwhile (the run stays in its staging directory).
        """
        if status not in (COMPLETE, DIVERGED):
            raise ConfigError(f"publish: a published run is complete or diverged, got status {status!r}")
        self.check_in_place()
        self.clear_stale_temporaries()
        files = sorted(p.name for p in self.staging.iterdir() if not p.name.startswith(".") and p.is_file())
        self.set_status(status, files=sorted(set(files) | {STATUS_FILE}))
        _fsync_dir(self.staging)
        self.check_in_place()  # removed while its files were listed: publish nothing
        final = self.final
        if final.is_dir() and any(final.iterdir()):
            if not self.overwrite:
                raise StateError(f"{final}: appeared meanwhile, so the run was left in {self.staging}")
            if not is_run_directory(final):  # replaced by something else since the run was reserved
                raise StateError(
                    f"{final}: is not a downslope run directory (any more), so --overwrite will not replace it; "
                    f"the run was left in {self.staging}"
                )
            old = final.parent / f".{final.name}.discarded-{secrets.token_hex(3)}"
            if not _exchange(self.staging, final):
                os.rename(final, old)
                os.rename(self.staging, final)
            else:
                # The staging name now holds the replaced run: move it out of that name at once, so a
                # later --resume never finds it there (resume also checks which of the two is newer).
                os.rename(self.staging, old)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(self.staging, final)  # replaces an empty directory, atomically
            except OSError as exc:
                raise StateError(
                    f"{final}: cannot publish the run there ({exc.strerror}); it was left in {self.staging}"
                ) from None
        _fsync_dir(final.parent)
        self._unlock()

    def leave(self, status: str = INTERRUPTED) -> None:
        """Keep the unfinished run in its staging directory, resumable, marked ``status``."""
        try:
            self.set_status(status)
        except OSError:
            pass  # e.g. the disk is full: the marker still says running, which --resume accepts too
        except RunRemovedError:
            pass  # nothing left to mark
        self._unlock()

    def abandon(self) -> None:
        """Let go of a run whose directory was removed from under it (nothing written, nothing removed)."""
        self._unlock()

    def discard(self) -> None:
        """Remove the staging directory (nothing worth keeping was written)."""
        if self.in_place():  # a directory made at that name since by someone else is theirs
            shutil.rmtree(self.staging, ignore_errors=True)
        self._unlock()
        for made in self.made_dirs:  # a refused command leaves no empty runs/ behind
            try:
                made.rmdir()
            except OSError:
                break  # not empty (another run appeared there meanwhile), or already gone

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def reserve(
    out: str | os.PathLike[str] | None = None,
    *,
    parent: str | os.PathLike[str] = "runs",
    stem: str = "run",
    overwrite: bool = False,
) -> Run:
    """Reserve a run directory before any work is done: ``out``, or a new unique ``parent/stem-<time>-<suffix>``.

    Everything that can make the run unwritable is found here, before training: ``out`` is a file,
    a directory that is not empty (without ``overwrite``), a directory another run is writing, or a
    place where no directory can be created.

    Raises:
        ConfigError: ``out`` cannot be used, in one line that says why and what to do.
        StateError: another process is writing a run to ``out`` right now.
    """
    if out is not None:
        return _reserve_at(Path(out), overwrite)
    base = Path(parent)
    for _ in range(100):
        try:
            return _reserve_at(base / unique_name(stem), False)
        except (_Taken, _Busy):
            continue
    raise StateError(f"{base}: no free run name for {stem!r} after 100 tries")  # pragma: no cover


class _Taken(ConfigError):
    """The name is in use (a run or a staging directory is there)."""


class _Busy(StateError):
    """The name is in use by a live process writing a run there (another name is tried when the name was
    made up: two random suffixes made in the same second can meet)."""


def _reserve_at(final: Path, overwrite: bool) -> Run:
    if str(final) in ("", ".", "..") or final.name in ("", ".", ".."):
        raise ConfigError(f"--out {str(final)!r}: expected a directory name, such as runs/my-run")
    if _final_of_staging(final) is not None or any(m in final.name for m in (".reserving-", ".discarded-", ".old-")):
        raise ConfigError(
            f"--out {final}: is the name of a run's working directory, which downslope manages itself; "
            "choose another --out (to continue an unfinished run, use --resume with its name)"
        )
    _check_name_length(final)
    _check_encodable(final)
    for above in final.parents:  # a file where a parent directory should be: say so, not "File exists"
        if os.path.islink(above) and not os.path.exists(above):
            raise ConfigError(f"--out {final}: its parent {above} is {_broken_link(above)}; choose another --out")
        if os.path.lexists(above) and not above.is_dir():
            raise ConfigError(
                f"--out {final}: its parent {above} is a file, not a directory, so no run directory can be made "
                "under it; choose another --out"
            )
    if os.path.islink(final):
        # A run is published by renaming a directory into place: that would replace the link itself,
        # not the directory it points to.
        raise ConfigError(
            f"--out {final}: is a symbolic link; give the directory it points to ({os.path.realpath(final)}) or another name"
        )
    inside = _enclosing_run(final)
    if inside is not None:
        raise ConfigError(
            f"--out {final}: is inside the run {inside}, which is a finished record; choose a directory outside it"
        )
    if os.path.lexists(final) and not final.is_dir():
        raise ConfigError(f"--out {final}: exists and is not a directory; choose another --out")
    if final.is_dir() and os.path.ismount(final):
        # A run is published by renaming its finished directory into place, which a mount point (a
        # container's volume, say) cannot take: refuse before training, not after it.
        raise ConfigError(
            f"--out {final}: is a mount point, and a run is published by renaming its finished directory into "
            f"place, which a mount point cannot take; choose a directory inside it, such as --out {final / 'run1'}"
        )
    if final.is_dir():
        try:
            taken = any(final.iterdir())
        except OSError as exc:
            raise ConfigError(f"--out {final}: cannot be read ({exc.strerror})") from None
        if taken and not overwrite:
            what = "holds a run" if is_run_directory(final) else "is not empty"
            raise _Taken(f"--out {final}: {what}; pass --overwrite to replace it, or choose another --out")
        if taken and not _is_replaceable(final):
            raise ConfigError(
                f"--out {final}: is not a downslope run directory, so --overwrite will not replace it; "
                "choose another --out"
            )
    staging = staging_path(final)
    # The staging directory is made complete first (locked, with its status marker) under a private
    # name, then renamed to the staging name, which fails if that name exists: whoever finds the
    # staging name taken finds it locked (a live run) or free (a dead one), never half made.
    try:
        made_dirs = [p for p in [final.parent, *final.parent.parents] if str(p) != "." and not p.exists()]
        private, lock_fd = _new_private_dir(final)
    except OSError as exc:
        raise ConfigError(
            f"--out {final}: cannot create a run directory there ({exc.strerror or exc}); choose a writable --out"
        ) from None
    run = Run(final, private, lock_fd, overwrite)
    run.made_dirs = made_dirs
    _sweep_leftovers(final)
    try:
        run.set_status(RUNNING)  # also proves the directory is writable before any work is done
        _claim(run, staging)
        # Someone may have published a run under the final name before our rename.
        if not overwrite and final.is_dir() and any(final.iterdir()):
            raise _Taken(f"--out {final}: holds a run; pass --overwrite to replace it, or choose another --out")
    except BaseException as exc:
        run.discard()
        if isinstance(exc, OSError):
            raise ConfigError(f"--out {final}: cannot write there ({exc.strerror or exc})") from None
        raise
    return run


# The longest name made beside a run from its name: ".<name>.reserving-XXXXXXXX" (tempfile.mkdtemp's
# 8 random characters); ".<name>.discarded-xxxxxx", ".<name>.partial", "<name>-diverged-xxxxxx" are shorter.
_NAME_OVERHEAD = len(".") + len(".reserving-") + 8


def max_name_length(parent: str | os.PathLike[str] = ".") -> int:
    """The longest run name (in bytes, as the file system counts) that fits in ``parent``: its file
    system's NAME_MAX less the room for the working names made beside a run (235 where NAME_MAX is 255).

    Example:
        >>> max_name_length("/tmp") <= 235
        True
    """
    try:
        limit = os.pathconf(parent if os.path.isdir(parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    return max(1, min(limit, 255) - _NAME_OVERHEAD)


def _broken_link(path: Path) -> str:
    """What a symbolic link that leads to no file is: a loop, or a link whose target is missing."""
    import errno

    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links (too many levels of symbolic links), not a directory"
        return f"a symbolic link to {os.readlink(path)}, which does not exist"
    return "a symbolic link"  # pragma: no cover - it resolved after all (changed meanwhile)


def shortened(path: str | os.PathLike[str], keep: int = 60) -> str:
    """``path`` as a message shows it: whole when short, else its start and end around "..." (a path of
    thousands of bytes would bury the message).

    Example:
        >>> shortened("a/" * 100 + "run", keep=10)
        'a/a/a/.../a/a/run (203 bytes)'
    """
    text = os.fspath(path)
    if len(text) <= 2 * keep + 20:
        return text
    return f"{text[: keep // 2 + 1]}...{text[-(keep // 2 + 3) :]} ({len(os.fsencode(text))} bytes)"


def _check_name_length(final: Path) -> None:
    size = len(os.fsencode(final))
    try:
        path_max = os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows): the usual limit
        path_max = 4096
    if size + _NAME_OVERHEAD >= path_max:  # the kernel refuses the whole path, name by name is too late
        raise ConfigError(
            f"--out {shortened(final)}: the path is {size} bytes long; paths on this system can be at most "
            f"{path_max} bytes (less the {_NAME_OVERHEAD} of the working names written beside the run); choose "
            "a shorter --out"
        )
    parent = final.parent
    while not parent.is_dir() and parent != parent.parent:  # the nearest existing directory's file system
        parent = parent.parent
    size, most = len(os.fsencode(final.name)), max_name_length(parent)
    if size > most:
        raise ConfigError(
            f"--out {str(final)[:60]}...: the run's name is {size} bytes long; a run's name can be at most {most} "
            f"bytes (the file system allows {most + _NAME_OVERHEAD}, and downslope writes working names "
            "beside the run that are longer than its name); choose a shorter --out"
        )


def _check_encodable(final: Path) -> None:
    """Refuse a name that is not valid UTF-8 (Python holds its stray bytes as surrogates): a run writes
    its own name into config.toml (TOML is UTF-8), JSON and its HTML report, and an escaped name
    there would be another path, which repeating or resuming the run would not find. Refused before
    anything is trained, not after."""
    text = str(final)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"character {bad!a}"
        raise ConfigError(
            f"--out {os.fsencode(final)!r}: the name is not valid UTF-8 ({byte}); a run records its own path in its "
            "config.toml and report, which are UTF-8 text: choose a name in UTF-8"
        ) from None


def _enclosing_run(path: Path) -> Path | None:
    """The published run (complete or diverged) that ``path`` would be inside, if any."""
    for parent in Path(os.path.abspath(path)).parents:
        status = (read_status(parent) or {}).get("status") if (parent / STATUS_FILE).is_file() else None
        if status in (COMPLETE, DIVERGED) and (parent / "model.ds").is_file():
            return parent
    return None


def _new_private_dir(final: Path) -> tuple[Path, int | None]:
    """A new ``.<name>.reserving-XXXXXXXX`` directory beside ``final``, locked by this process.

    The directory exists unlocked for a moment after mkdtemp, and another process reserving the same
    name sweeps away every such directory it can lock (:func:`_sweep_leftovers`): in that moment it
    can lock ours and remove it, whether before our open, while we try the lock, or before our lock
    lands on the open but removed directory. The lock is therefore checked to hold the directory
    still at that path, and a lost directory is replaced by a new one. Once locked, no sweep touches it.
    """
    import tempfile

    refused = 0
    for _ in range(100):
        # Each try makes the parents again: a refused run removes the parents it created.
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            private = Path(tempfile.mkdtemp(prefix=f".{final.name}.reserving-", dir=final.parent))
        except FileNotFoundError:
            # the parent was removed meanwhile, unless it is still there: then it holds no directories
            # (/proc, a file system that refuses them), which no retry changes; the caller says so
            refused = refused + 1 if final.parent.is_dir() else 0
            if refused >= 3:
                raise
            continue
        try:
            lock_fd = _try_lock(private)
        except FileNotFoundError:
            continue  # the new directory was removed meanwhile
        if lock_fd is None:
            continue  # a sweep holds it and is removing it
        if _is_at(lock_fd, private):
            os.chmod(private, 0o777 & ~_umask())  # mkdtemp's 0700 would make the run private
            return private, lock_fd
        os.close(lock_fd)  # locked after a sweep removed it
    raise StateError(
        f"--out {final}: other downslope processes starting runs there kept removing this one's working "
        "directory; try again"
    )


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open directory ``fd`` is still the one at ``path`` (not removed or replaced)."""
    held = os.fstat(fd)
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    return held.st_nlink > 0 and (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _sweep_leftovers(final: Path) -> None:
    """Remove what killed reservations and publishes of ``final`` left beside it (unlocked only)."""
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return
    prefix = f".{final.name}."
    for entry in entries:
        rest = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
        if not rest.startswith(("reserving-", "discarded-", "old-")) or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            held = _try_lock(entry)
        except OSError:
            continue  # renamed or removed meanwhile (its run claimed its staging name, another sweep)
        if held is None:
            continue  # a live process is reserving under that name
        try:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            os.close(held)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _claim(run: Run, staging: Path) -> None:
    """Rename ``run``'s private directory to ``staging``; take over a dead run there only with overwrite."""
    import errno

    final = run.final
    for _ in range(3):
        try:
            os.rename(run.staging, staging)
            run.staging = staging
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise
        if not os.path.lexists(staging):
            continue  # its run was published or moved away meanwhile: try the name again
        if not staging.is_dir():
            raise ConfigError(f"--out {final}: {staging} is in the way (not a directory); remove it")
        try:
            held = _try_lock(staging)
        except FileNotFoundError:
            continue  # as above, between the two checks
        if held is None:
            raise _Busy(f"--out {final}: another downslope process is writing a run there now; choose another --out")
        try:
            # A dead run that never finished an epoch (e.g. a data-parallel run whose other rank failed
            # to read its data) holds nothing to continue: it is taken over as if it were not there.
            if not run.overwrite and (staging / CHECKPOINT_FILE).is_file():
                status = (read_status(staging) or {}).get("status", "unknown")
                raise _Taken(
                    f"--out {final}: an unfinished run is there (status {status}, in {staging}); continue it with "
                    f"'downslope train --resume {final}', or pass --overwrite to start over"
                )
            # A dead run, and we hold its lock: move it out of the way, then delete it.
            trash = staging.parent / f".{final.name}.discarded-{secrets.token_hex(3)}"
            os.rename(staging, trash)
        finally:
            os.close(held)
        shutil.rmtree(trash, ignore_errors=True)
    raise _Busy(f"--out {final}: another downslope process took it just now; choose another --out")


def resume(run: str | os.PathLike[str]) -> Run:
    """Take over an unfinished run (by its final name or its staging directory) to continue it.

    Raises:
        ConfigError: there is no unfinished run at ``run`` (it is complete, or was never started).
        StateError: the run's process is still alive.
    """
    given = Path(run)
    final = _final_of_staging(given)
    if final is not None:
        staging = given
    else:
        final, staging = given, staging_path(given)
    if not staging.is_dir():
        status = (read_status(final) or {}).get("status")
        if status in (COMPLETE, DIVERGED):
            raise ConfigError(f"--resume {run}: the run is already {status}; there is nothing to continue")
        raise ConfigError(f"--resume {run}: no unfinished run there (looked for {staging})")
    lock = _try_lock(staging)
    if lock is None:
        raise StateError(f"--resume {run}: the run is still being written by a live downslope process")
    out = Run(final, staging, lock, overwrite=final.is_dir() and _is_replaceable(final))
    if _replaced_by_final(staging, final):
        # A run killed while --overwrite replaced it: the finished run at the final name is newer.
        out.discard()
        raise ConfigError(
            f"--resume {run}: {final} holds a newer finished run, and {staging} was the run it replaced "
            "(left there by a kill during the replacement); it was removed, nothing to continue"
        )
    if not (staging / CONFIG_FILE).is_file():
        out.discard()
        raise ConfigError(f"--resume {run}: the run was stopped before it wrote its config.toml; start it again")
    out.clear_stale_temporaries()  # half-written files of the killed process (its checkpoint's, say)
    out.set_status(RUNNING, resumed=True)
    return out


def _replaced_by_final(staging: Path, final: Path) -> bool:
    """Whether ``staging`` holds a finished run older than the finished run at ``final``."""
    finished = (COMPLETE, DIVERGED)
    if (read_status(staging) or {}).get("status") not in finished or (read_status(final) or {}).get(
        "status"
    ) not in finished:
        return False
    try:
        return (final / STATUS_FILE).stat().st_mtime_ns >= (staging / STATUS_FILE).stat().st_mtime_ns
    except OSError:
        return False


def processes_of(run: Run) -> int:
    """How many processes trained ``run`` (1 unless it was started under mpiexec)."""
    record = read_json_file(run.path(LAUNCH_FILE)) or {}
    count = record.get("processes", 1)
    return count if isinstance(count, int) and count >= 1 else 1


def keeps_complete_run(run: Run) -> bool:
    """Whether publishing ``run`` with --overwrite would replace a complete run (a diverged run must not)."""
    return run.overwrite and (read_status(run.final) or {}).get("status") == COMPLETE


def set_aside_name(final: Path) -> Path:
    """A free name beside ``final`` for a diverged run that must not replace the complete run there."""
    for _ in range(100):
        candidate = final.parent / f"{final.name}-diverged-{secrets.token_hex(3)}"
        if not os.path.lexists(candidate):
            return candidate
    raise StateError(f"{final}: no free name beside it for the diverged run")  # pragma: no cover


def write_config(run: Run, text: str, settings: dict[str, Any] | None = None) -> None:
    """Write the run's config.toml, recording its SHA-256 first (and, at the start, ``settings``, the
    run's settings): a kill between the two leaves a record that accepts either file."""
    import hashlib

    record = read_json_file(run.path(CONFIG_RECORD_FILE)) or {}
    known = [d for d in record.get("sha256", []) if isinstance(d, str)]
    record["sha256"] = [*known, hashlib.sha256(text.encode()).hexdigest()]
    if settings is not None:
        record["settings"] = settings
    run.write_bytes(CONFIG_RECORD_FILE, json_bytes(record))
    run.write_bytes(CONFIG_FILE, text.encode())


def config_record(run: Run) -> tuple[list[str], dict[str, Any] | None] | None:
    """The SHA-256s of the config.toml files ``run`` wrote and the settings it started with; None for a
    run without a record (started by an older downslope)."""
    record = read_json_file(run.path(CONFIG_RECORD_FILE))
    if record is None or not isinstance(record.get("sha256"), list):
        return None
    settings = record.get("settings")
    return [d for d in record["sha256"] if isinstance(d, str)], settings if isinstance(settings, dict) else None


# ---------------------------------------------------------------------- readers
def check_complete(run: str | os.PathLike[str]) -> Path:
    """The directory of a complete run, or a one-line error saying why ``run`` cannot be read.

    evaluate, predict, compare and export call this before they read anything: an unfinished,
    interrupted, diverged or foreign directory is refused, never half-read.

    Example:
        >>> check_complete("no/such/run")
        Traceback (most recent call last):
        ...
        downslope.errors.ConfigError: no/such/run: not a run directory; train one with 'downslope train --out no/such/run'
    """
    path = Path(run)
    final = _final_of_staging(path)
    staging = path if final is not None else staging_path(path)
    if staging.is_dir() and (final is not None or not (path / STATUS_FILE).is_file()):
        status = (read_status(staging) or {}).get("status", RUNNING)
        name = final or path
        if _is_locked(staging):
            raise StateError(f"{run}: the run is being written now, not complete; wait for it to finish")
        if status in (COMPLETE, DIVERGED):  # killed between its last file and the rename that publishes it
            raise StateError(
                f"{run}: the run was stopped just before being published; run 'downslope train --resume {name}' "
                "to publish it"
            )
        if status == RUNNING:  # not locked, yet marked running: its process died (kill -9, power loss)
            raise StateError(
                f"{run}: the run was interrupted (its process ended without finishing it), not complete; "
                f"continue it with 'downslope train --resume {name}'"
            )
        raise StateError(
            f"{run}: the run is unfinished (status {status}), not complete; continue it with "
            f"'downslope train --resume {name}'"
        )
    if path.is_file():  # a data file given where a run is meant: "train --out data.csv" would be bad advice
        raise ConfigError(
            f"{run}: is a file, not a run directory; give the directory of a trained run (e.g. runs/NAME)"
        )
    if not path.is_dir():
        raise ConfigError(f"{run}: not a run directory; train one with 'downslope train --out {run}'")
    problem = status_file_problem(path)
    if problem:  # never read: a FIFO would block, /dev/zero never ends
        raise ConfigError(f"{run}: {problem}, so whether the run is complete cannot be told; train it again")
    status = read_status(path)
    if status is None:
        if (path / STATUS_FILE).is_file():  # there, but not a status marker downslope wrote
            raise ConfigError(
                f"{run}: its {STATUS_FILE} is unreadable (damaged or not written by downslope), so whether the run "
                "is complete cannot be told; train it again"
            )
        if (path / "model.ds").is_file():
            raise ConfigError(
                f"{run}: no {STATUS_FILE} completion marker (a run written by an older downslope, or not "
                "complete); train it again"
            )
        raise ConfigError(f"{run}: not a run directory; train one with 'downslope train --out {run}'")
    if status["status"] != COMPLETE:
        why = {
            DIVERGED: "diverged (see its report.html); its model is not fit for use",
            RUNNING: f"is not complete (status running); continue it with 'downslope train --resume {run}'",
            INTERRUPTED: f"is not complete (interrupted); continue it with 'downslope train --resume {run}'",
        }[status["status"]]
        raise StateError(f"{run}: the run {why}")
    missing = [name for name in status.get("files", []) if not (path / name).is_file()]
    if missing:
        raise StateError(f"{run}: the run is damaged: {', '.join(missing)} missing")
    return path


def data_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The size and SHA-256 of a data file (read in 1 MiB blocks).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(suffix=".csv") as f:
        ...     _ = f.write(b"a,b\\n1,2\\n"); f.flush()
        ...     data_fingerprint(f.name)["size"]
        8
    """
    import hashlib

    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest(), "path": os.path.abspath(path)}


def check_same_data(run: Run, data: str) -> str:
    """The data file to resume ``run`` on: ``data``, or the file it named when the run started if a
    relative ``data`` now names another file (the resume was started from another directory).

    Refuses a file that is not the one the run started on (the split, the scaling and the rows of
    every later epoch would silently differ from the run's first epochs)."""
    stored = read_json_file(run.path(DATA_FINGERPRINT_FILE))
    if stored is None:
        return data  # a built-in dataset, or a run started before fingerprints
    then = stored.get("path")
    if isinstance(then, str) and then != os.path.abspath(data) and os.path.isfile(then):
        data = then  # the file the run started on, wherever this resume was started from
    if not os.path.isfile(data):
        return data  # a missing file is said when it is read
    now = data_fingerprint(data)
    if now != {k: stored.get(k) for k in now}:
        raise DataError(
            f"--resume {run.final}: {data} changed since the run started ({stored.get('size')} bytes then, "
            f"{now['size']} now, another SHA-256); continuing would train on other rows. Restore the file, or "
            "start a new run"
        )
    return data


def read_json_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A small JSON object file, or None when it is missing or unreadable."""
    try:
        found = json.loads(_read_small(Path(path), JSON_FILE_LIMIT, "a run's JSON file"))
    except (OSError, ValueError, RecursionError):  # RecursionError: a deeply nested (crafted) file
        return None
    return found if isinstance(found, dict) else None


def check_output_file(path: str | os.PathLike[str], run: str | os.PathLike[str], flag: str) -> None:
    """Refuse to write a command's output file (``flag`` names the option) over a directory or
    inside the run directory ``run`` it reads: a run's files are its record (its model, its report),
    and a file written among them would replace one or mix in something the run did not make.

    Example:
        >>> check_output_file("runs/r/preds.csv", "runs/r", "--out")
        Traceback (most recent call last):
        ...
        downslope.errors.ConfigError: --out runs/r/preds.csv: is inside the run runs/r; a run's files are its record, so write it elsewhere (e.g. preds.csv)
    """
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise ConfigError(f"{flag} {os.fspath(path)}: is a directory; give a file name inside it")
    where = os.path.realpath(run)
    if os.path.commonpath([where, target]) == where:
        raise ConfigError(
            f"{flag} {os.fspath(path)}: is inside the run {os.fspath(run)}; a run's files are its record, so write "
            f"it elsewhere (e.g. {os.path.basename(target)})"
        )


__all__ = [
    "Run",
    "check_output_file",
    "config_record",
    "is_run_directory",
    "max_name_length",
    "write_config",
    "reserve",
    "resume",
    "check_complete",
    "read_status",
    "staging_path",
    "unique_name",
    "write_bytes",
    "json_bytes",
    "STATUSES",
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "RunRemovedError",
    "RunSummary",
    "list_runs",
]


# ---------------------------------------------------------------------- listing runs
STOPPED, LIVE, BROKEN = "stopped", "live", "broken"


@dataclass(frozen=True)
class RunSummary:
    """One run of :func:`list_runs`: its name, directory, status and its metrics.json's summary.

    ``status``: "complete" or "diverged" (published), "stopped" (unfinished, resumable with
    ``downslope train --resume``), "live" (being written by a running process) or "broken" (a run's
    directory whose marker or files are missing or unreadable, or an unfinished run that holds nothing
    to continue). ``metrics``: the test metrics, epochs, seconds and stop reason of a published run
    (empty for the others)."""

    name: str
    path: Path
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)


def list_runs(directory: str | os.PathLike[str] = "runs") -> list[RunSummary]:
    """Every run in ``directory`` (published and unfinished), by name.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> run = reserve(root / "demo"); run.publish(COMPLETE)
        >>> [(r.name, r.status) for r in list_runs(root)]
        [('demo', 'complete')]
    """
    base = Path(directory)
    if not base.is_dir():
        raise ConfigError(f"list_runs: {base} is not a directory; give the directory the runs are in (e.g. runs)")
    found: list[RunSummary] = []
    for entry in sorted(base.iterdir()):
        if entry.is_symlink() or not entry.is_dir():
            continue
        final = _final_of_staging(entry)
        if final is not None:
            found.append(RunSummary(final.name, entry, _unfinished_status(entry)))
        elif not entry.name.startswith("."):  # (working names: .<name>.reserving-..., .discarded-...)
            summary = _published_summary(entry)
            if summary is not None:
                found.append(summary)
    return sorted(found, key=lambda r: (r.name, r.path.name))


def _unfinished_status(staging: Path) -> str:
    if _is_locked(staging):
        return LIVE
    # a run killed before it wrote its config.toml holds nothing --resume can continue
    return STOPPED if (staging / CONFIG_FILE).is_file() else BROKEN


def _published_summary(path: Path) -> RunSummary | None:
    """A published run's summary; None for a directory that is not a run (no marker, nor a run's files)."""
    has_marker = os.path.lexists(path / STATUS_FILE)  # a FIFO or a link to a device is a marker too (broken)
    if not has_marker and not (path / "model.ds").is_file():
        return None
    status = read_status(path)
    if not has_marker and is_run_directory(path):  # a run written before status markers: complete
        status = {"status": COMPLETE}
    if not is_run_directory(path) or status is None or status["status"] not in (COMPLETE, DIVERGED):
        return RunSummary(path.name, path, BROKEN) if has_marker or status is not None else None
    listed = status.get("files") or []
    if not all((path / name).is_file() for name in listed):
        return RunSummary(path.name, path, BROKEN)
    # a cheap look at model.ds (its zip directory, no array read): a truncated copy, a pickle or a
    # torch.save file put there is not a complete run
    if MODEL_FILE in listed and not _is_downslope_checkpoint(path / MODEL_FILE):
        return RunSummary(path.name, path, BROKEN)
    metrics = read_json_file(path / "metrics.json") or {}
    kept = {k: v for k, v in metrics.items() if k.startswith("test_") or k in ("epochs", "seconds", "stop_reason")}
    return RunSummary(path.name, path, str(status["status"]), kept)


def config_fingerprint(config_bytes: bytes) -> str:
    """The SHA-256 (hex) of a run's config.toml bytes: what a run's model.ds records of its config.

    Example:
        >>> config_fingerprint(b"")[:12]
        'e3b0c44298fc'
    """
    import hashlib

    return hashlib.sha256(config_bytes).hexdigest()


def check_model_belongs(run_dir: Path, state: Any) -> bool:
    """Refuse a run's model.ds that another run wrote: its recorded :data:`CONFIG_FINGERPRINT` must be
    the SHA-256 of the run's config.toml. True when it is; False for a model.ds without one (written
    by an older downslope), which cannot be checked."""
    model, config = run_dir / MODEL_FILE, run_dir / CONFIG_FILE
    recorded = state.get(CONFIG_FINGERPRINT) if isinstance(state, dict) else None
    if recorded is None:
        return False
    try:
        actual = config_fingerprint(config.read_bytes()) if config.is_file() else None
    except OSError:
        actual = None
    if actual is None:
        raise CheckpointError(
            f"{run_dir}: {model} records the config it was trained with, but the run's {config} is missing or "
            "unreadable; the run is damaged, train it again"
        )
    if recorded != actual:
        differs = _settings_that_differ(state.get("config"), config)
        raise CheckpointError(
            f"{run_dir}: {model} does not belong to this run: it was trained with another config than the run's "
            f"{config} ({differs or f'config SHA-256 {str(recorded)[:12]}... recorded in {MODEL_FILE}, '}"
            f"{'' if differs else f'{actual[:12]}... of {CONFIG_FILE}'}); it was copied in from another run, or "
            f"{CONFIG_FILE} was edited. Put back the run's own files, or train it again"
        )
    return True


def _settings_that_differ(stored: Any, config: Path) -> str:
    """The first settings on which a model.ds's stored config and a config.toml disagree, in words
    ("data: 'circles' in model.ds, 'moons' in config.toml"); "" when they cannot be compared."""
    import tomllib

    try:
        written = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(stored, dict):
        return ""

    def same(a: Any, b: Any) -> bool:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)

    keys = [k for k in dict.fromkeys([*stored, *written]) if not same(stored.get(k), written.get(k))]
    shown = [f"{k}: {stored.get(k)!r} in {MODEL_FILE}, {written.get(k)!r} in {CONFIG_FILE}" for k in keys[:3]]
    return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def load_run(run: str | os.PathLike[str], note: Callable[[str], None] | None = None) -> tuple[Module, dict[str, Any]]:
    """The model and saved state (``model.ds``) of a complete run, for ``evaluate``, ``predict`` and ``export``.

    An unfinished, interrupted, diverged or foreign directory is refused in one line
    (:func:`check_complete`) before anything is read; a model.ds that another run wrote is refused
    (:func:`check_model_belongs`; ``note`` receives the one line said of a run written before that
    check existed); the stored config is checked against its arrays before any layer is built.

    Example:
        >>> model, state = load_run("runs/iris-adam")  # doctest: +SKIP
    """
    import warnings

    from . import experiment, serialization

    run_dir = check_complete(run)
    path = run_dir / MODEL_FILE
    state = serialization.load(path)
    checked = check_model_belongs(run_dir, state)
    model, state = experiment.model_from_state(state, str(path))
    if not checked:  # said once the file is accepted (a refusal is the one line then)
        message = (
            f"{path}: written by an older downslope, which did not record the config it was trained with; "
            f"read as this run's ({run_dir / CONFIG_FILE})"
        )
        if note is None:
            warnings.warn(message, UserWarning, stacklevel=2)
        else:
            note(message)
    return model, state


# ---------------------------------------------------------------------- a trained run from Python
class TrainedRun:
    """A complete run of ``downslope train`` loaded for use from Python: its model, config and metrics,
    and :meth:`predict`, which reads raw rows exactly as ``downslope predict`` does (the same column
    checks, category encoding, missing-value filling and scaling) and answers in the data's units.

    Example:
        >>> run = open_run("runs/houses")  # doctest: +SKIP
        >>> run.predict("new_houses.csv")  # doctest: +SKIP
        array([233126.2..., 248790.1..., ...])
        >>> run.predict({"sqft": [2092.4], "rooms": [3], "color": ["red"], "age": [2.0]})  # doctest: +SKIP
        array([233126.2...])
    """

    def __init__(self, path: Path, model: Module, state: dict[str, Any]) -> None:
        self.path = path
        self.model = model
        #: what ``model.ds`` holds besides the weights: config, task, preprocess, class_names, split...
        self.state = state
        model.eval()

    def __repr__(self) -> str:
        return f"TrainedRun({str(self.path)!r}, task={self.task!r}, inputs={self.input_columns})"

    @property
    def config(self) -> dict[str, Any]:
        """The run's resolved training config (what ``config.toml`` holds)."""
        return dict(self.state["config"])

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's scores as ``metrics.json`` holds them ({} when the file is missing)."""
        return read_json_file(self.path / "metrics.json") or {}

    @property
    def task(self) -> str:
        """The task: "regression" or "classification"."""
        return str(self.state["task"])

    @property
    def classes(self) -> list[str] | None:
        """A classifier's class labels in output order (what :meth:`predict` answers with); None for regression."""
        if self.task != "classification":
            return None
        return list(self.state["class_names"] or [str(i) for i in range(int(self.state["n_outputs"]))])

    @property
    def classes_(self) -> Any:
        """A classifier's classes in output order as a NumPy array of its target column's type (int64,
        float64, bool or text: scikit-learn's ``classes_``), what :meth:`predict` answers with; None for
        regression. A run written before the target's type was recorded answers with text."""
        from .experiment.labels import typed_classes

        names = self.classes
        return None if names is None else typed_classes(names, self.state.get("target_kind"))

    @property
    def input_columns(self) -> list[str]:
        """The columns :meth:`predict` reads (a CSV-trained run's input columns, else its feature names)."""
        encoder = (self.state.get("preprocess") or {}).get("encoder")
        return list(encoder["columns"] if encoder else self.state.get("feature_names") or [])

    def outputs(
        self,
        data: Any,
        *,
        unknown_categories: str = "error",
        sep: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
    ) -> Any:
        """The model's outputs for ``data`` (see :meth:`predict`): a regression's in the data's units
        (float64, one column per target), a classifier's raw scores (logits), one row per input row."""
        import warnings

        import numpy as np

        from .experiment import data_units
        from .experiment.features import number_rule, run_features
        from .train import predict

        if unknown_categories not in ("error", "ignore"):
            raise ConfigError(
                f"TrainedRun.predict: unknown_categories must be 'error' or 'ignore', got {unknown_categories!r}"
            )

        def note(message: str) -> None:
            warnings.warn(message, UserWarning, stacklevel=4)

        rule = number_rule(decimal, thousands, "TrainedRun.predict: ")
        X, _ = run_features(self.state, data, None, False, sep, unknown_categories, note, rule)
        out = predict(self.model, X)
        return data_units(np.asarray(out.numpy() if hasattr(out, "numpy") else out), self.state["preprocess"])

    def predict(
        self,
        data: Any,
        *,
        unknown_categories: str = "error",
        sep: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
    ) -> Any:
        """Predictions for raw rows, as ``downslope predict`` writes them: a NumPy array of values in the
        data's units (one per row; one column per target when there are several), or a classifier's class
        labels in its target column's type (:attr:`classes_`: int64 for integer labels, float64 for a
        column of floats such as 1.0/2.0, bool, or text; text for a run that did not record it).

        ``data``: a CSV, TSV, Parquet, NPY or NPZ path, a pandas DataFrame, a dict of columns, a list of row
        dicts (a missing key or None is a missing value), or a 2-D NumPy array of the model's encoded
        features. Columns other than the run's inputs (its target, an id) are ignored. A category the
        training rows did not hold is refused (``unknown_categories="error"``) or encoded as all zeros
        with a warning (``"ignore"``). ``sep``: a CSV's field separator (default: the one trained with);
        ``decimal``/``thousands``: how its numbers are written when not as in the training file (pandas'
        ``decimal=``/``thousands=``; giving one makes the other Python's: '.' and none)."""
        import numpy as np

        outputs = self.outputs(
            data, unknown_categories=unknown_categories, sep=sep, decimal=decimal, thousands=thousands
        )
        if self.task == "classification":
            return self.classes_[np.asarray(outputs).argmax(axis=1)]
        cols = outputs.reshape(len(outputs), -1)
        return cols[:, 0] if cols.shape[1] == 1 else cols

    def predict_proba(
        self,
        data: Any,
        *,
        unknown_categories: str = "error",
        sep: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
    ) -> Any:
        """A classifier's class probabilities, one row per input row, columns in :attr:`classes_` order
        (the ``p_<class>`` columns ``downslope predict`` writes); ``data`` as :meth:`predict`'s."""
        if self.task != "classification":
            raise ConfigError(f"{self.path}: predict_proba needs a classification run; this one does {self.task}")
        scores = self.outputs(
            data, unknown_categories=unknown_categories, sep=sep, decimal=decimal, thousands=thousands
        )
        return class_probabilities(scores)


def class_probabilities(scores: Any) -> Any:
    """Softmax of a classifier's scores along the last axis (in their dtype, shifted by the row maximum)."""
    import numpy as np

    shifted = scores - scores.max(axis=1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)


def open_run(run: str | os.PathLike[str]) -> TrainedRun:
    """A complete run of ``downslope train`` for use from Python: ``open_run("runs/houses").predict(rows)``
    predicts from raw rows (a CSV path, a DataFrame, a dict of columns, a list of row dicts) exactly as
    ``downslope predict`` does. See :class:`TrainedRun`.

    Refused in one line (:class:`~downslope.errors.ConfigError`) for a path naming nothing, and like
    :func:`load_run` for an unfinished, interrupted, diverged or foreign directory."""
    path = Path(run)
    if not path.exists() and not staging_path(path).exists():
        raise ConfigError(f"{run}: no such directory; give the directory of a trained run (e.g. runs/NAME)")
    model, state = load_run(path)
    return TrainedRun(check_complete(path), model, state)
