"""The process group: who am I (rank), how many of us (world size), and the wire between us.

``init()`` reads the MPI environment. Under ``mpiexec``/``mpirun``/``srun`` it imports mpi4py (only
then: ``import downslope`` never loads MPI) and talks over ``MPI.COMM_WORLD``. Started as a plain
``python`` process it returns a world of one, so the same script runs with or without MPI.

Only MPI's buffer methods (``Allreduce``, ``Bcast``, ``Allgatherv``) are used, on NumPy arrays:
mpi4py's lower-case methods pickle their arguments, and nothing in downslope pickles.

Fail-fast: under MPI with more than one process, ``init()`` replaces ``sys.excepthook`` so that an
uncaught exception on any rank prints its traceback and then calls ``MPI_Abort``. Without it the
other ranks would wait forever in their next collective and the job would hang.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DownslopeError
from ..launchers import SIZE_VARIABLES, launched_size
from ..launchers import srun_tasks as _srun_tasks

# Variables that the common launchers set in every process they start. Open MPI: OMPI_*;
# PMIx (Open MPI 5, srun --mpi=pmix): PMIX_RANK; MPICH/Intel MPI (Hydra) and srun --mpi=pmi2: PMI_*.
# Not SLURM_NTASKS: a plain `python` inside an sbatch script has it too.
_LAUNCHER_VARIABLES = (*SIZE_VARIABLES, "PMIX_RANK", "PMI_RANK")


class DistributedError(DownslopeError, RuntimeError):
    """A problem with the process group: MPI missing, ranks that disagree, a bad collective."""


class DisagreementError(DistributedError):
    """The ranks disagree (settings, data, model, logged metrics), found by a collective check.

    Every rank reaches the same verdict from the same gathered data and raises this error, so no
    rank is left waiting in a collective: the job ends without ``MPI_Abort``, which would kill the
    other ranks before their message reaches the terminal.
    """


class CollectiveMismatchError(DisagreementError):
    """The ranks' calls of a collective did not match: tensors of different shapes or dtypes, another
    op or root, or different collectives at the same point.

    Two ways to find it. The torch-style collectives (``all_reduce``, ``broadcast``...) first compare
    every rank's call (a few numbers each) and, when they differ, every rank raises this error alike,
    before any data moves (``on_every_rank`` is True). Otherwise MPI itself refuses the call (one
    rank's buffer was larger than another's): only the rank(s) MPI reported it on raise it, and the
    fail-fast hook then ends the job (``MPI_Abort``) instead of leaving the other ranks waiting.
    """

    def __init__(self, message: str = "", *, on_every_rank: bool = False) -> None:
        super().__init__(message)
        self.on_every_rank = bool(on_every_rank)


class UnsendableObjectError(DistributedError, TypeError):
    """An object collective's object cannot be encoded (a type with no encoding); the sending rank's
    reason travels to every rank first, so every rank raises this at the same point, as torch's
    pickling error leaves no rank waiting either."""


#: Set (True) on an argument error that a collective raised on this rank after every rank learned of it
#: (each of the others raises a :class:`CollectiveMismatchError` naming it): no rank waits for another.
ON_EVERY_RANK = "_downslope_raised_on_every_rank"


def raised_on_every_rank(exc: BaseException | None) -> bool:
    """Whether ``exc`` is an error that every rank raises alike (so no rank waits for another)."""
    if getattr(exc, ON_EVERY_RANK, False):
        return True
    if isinstance(exc, UnsendableObjectError):
        return True
    if isinstance(exc, CollectiveMismatchError):
        return exc.on_every_rank
    return isinstance(exc, DisagreementError)


@contextlib.contextmanager
def naming_the_call(what: str) -> Iterator[None]:
    """Prefix a :class:`CollectiveMismatchError` raised inside with the user's call (``broadcast``...),
    which the communicator, knowing only its MPI call, cannot name."""
    try:
        yield
    except CollectiveMismatchError as exc:
        raise CollectiveMismatchError(f"{what}: {exc}", on_every_rank=exc.on_every_rank) from None


def _mpi_reason(exc: BaseException) -> str:
    # "MPI_ERR_TRUNCATE: message truncated": the words say it; the code name reads as a raw MPI error
    text = str(exc).strip()
    code, _, words = text.partition(": ")
    return words if code.startswith("MPI_ERR") and words else text


def _describe_buffer(buf: Any) -> str:
    if isinstance(buf, np.ndarray):
        return f"{buf.size} elements of {buf.dtype}"
    return "its buffer"


class _SelfComm:
    """The communicator of a world of one: every collective is the identity."""

    rank = 0
    size = 1

    def allreduce_sum(self, buf: np.ndarray) -> None:
        pass

    def allreduce(self, buf: np.ndarray, op: str) -> None:
        pass

    def bcast(self, buf: np.ndarray, root: int) -> None:
        pass

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data]

    def allgather_fixed(self, values: np.ndarray) -> np.ndarray:
        return np.array(values, dtype=np.int64, copy=True).reshape(1, -1)

    def allgather_array(self, buf: np.ndarray, out: np.ndarray) -> None:
        out[0] = buf

    def bcast_bytes(self, data: bytes, root: int) -> bytes:
        return data

    def gather(self, buf: np.ndarray, out: np.ndarray | None, root: int) -> None:
        if out is not None:
            out[0] = buf

    def scatter(self, parts: np.ndarray | None, buf: np.ndarray, root: int) -> None:
        if parts is not None:
            buf[...] = parts[0]

    def barrier(self) -> None:
        pass

    def abort(self, code: int) -> None:
        os._exit(code)


# How long a rank waits in one collective for the others before it ends the job (torch.distributed's
# default for its CPU backend is 30 minutes too). Set DOWNSLOPE_DIST_TIMEOUT (seconds), or
# init(timeout=...), for jobs whose ranks may legitimately wait longer (one rank evaluating alone).
DEFAULT_TIMEOUT_S = 1800.0
# How often the watchdog looks at the collective in progress.
_WATCH_EVERY_S = 0.25
# A collective waiting this long makes the watchdog look for a rank that has left the job (see
# _MPIComm.announce_exit); a departure seen is acted on only if the same collective is still waiting
# _DEPARTED_GRACE_S later, since a collective the leaver completed just before leaving may be returning
# (generous: on a loaded machine this rank's thread may wait seconds for a core before it returns).
_PROBE_AFTER_S = 1.0
_DEPARTED_GRACE_S = 5.0
# The point-to-point tag of the "this rank has left" message (collectives do not match tags).
_EXIT_TAG = 31_337
_ANNOUNCE_WAIT_S = 2.0
_MPI_OPS = {"sum": "SUM", "prod": "PROD", "max": "MAX", "min": "MIN", "band": "BAND", "bor": "BOR", "bxor": "BXOR"}

# Open MPI busy-waits in a blocking collective by default: on a machine with more busy processes than
# cores the rank that waits keeps a core from the rank it waits for, and a step took 3-6x as long as
# torch's gloo; yielding while idle was measured on par, and costs nothing on a quiet machine. Set
# here, when downslope.distributed is imported, before mpi4py initialises MPI (MPI_Init reads it); a
# value set by the user (or with mpiexec --mca mpi_yield_when_idle 0) wins.
os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")


def _timeout_from_environment() -> float:
    raw = os.environ.get("DOWNSLOPE_DIST_TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DistributedError(f"DOWNSLOPE_DIST_TIMEOUT: expected a number of seconds > 0, got {raw!r}")
    return value


class _MPIComm:
    """MPI.COMM_WORLD through mpi4py's buffer (non-pickling) methods.

    A watchdog thread ends the job when a collective has waited ``timeout`` seconds for the other
    ranks (one stalled, deadlocked, or gone without ending the job), instead of every rank waiting
    forever: it prints which rank waited in which collective and calls ``MPI_Abort`` (mpi4py
    initializes MPI for calls from any thread). The collectives themselves stay the blocking ones:
    Open MPI's non-blocking Allreduce was measured 2-4x slower on 1 MB buffers."""

    def __init__(self, mpi: Any, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._mpi = mpi
        self._comm = mpi.COMM_WORLD
        self.rank = int(self._comm.Get_rank())
        self.size = int(self._comm.Get_size())
        self.timeout = float(timeout)
        self._entered: float | None = None  # when the collective in progress began (None: none is)
        self._what = ""
        self._count = 0  # collectives begun: tells the watchdog whether the one it saw is still waiting
        self._departed: int | None = None  # a rank that announced it has left the job
        # the watchdog may look for that announcement only if MPI accepts calls from several threads at once
        self._can_probe = mpi.Query_thread() == mpi.THREAD_MULTIPLE
        self._watchdog: threading.Thread | None = None

    @contextlib.contextmanager
    def _collective(self, what: str, buf: Any = None) -> Iterator[None]:
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="downslope-collective-watchdog", daemon=True)
            self._watchdog.start()
        self._what, self._count, self._entered = what, self._count + 1, time.monotonic()
        try:
            yield
        except self._mpi.Exception as exc:
            # mpi4py's raw error (MPI_ERR_TRUNCATE: message truncated) names neither the call nor the sizes
            raise CollectiveMismatchError(
                f"downslope.distributed: {what} failed on rank {self.rank} of {self.size} with this rank's "
                f"{_describe_buffer(buf)}: MPI reported {_mpi_reason(exc)!r}. The ranks ran different collectives at "
                "this point (one rank ran more batches or another call), or passed tensors of different shapes or "
                "dtypes: is there a distributed collective mismatch in your code?"
            ) from None
        finally:
            self._entered = None

    def _watch(self) -> None:
        suspect: tuple[int, float] | None = None  # (collective number, since when) waiting after a departure
        while True:
            time.sleep(min(_WATCH_EVERY_S, self.timeout / 4))
            entered, count = self._entered, self._count
            now = time.monotonic()
            if entered is None:
                continue
            if now - entered > self.timeout:
                sys.stderr.write(
                    f"downslope.distributed: rank {self.rank} of {self.size} waited {self.timeout:g} s in {self._what} "
                    "for the other ranks: one of them stalled, died without ending the job, or took another path "
                    "(another number of batches); ending the job (MPI_Abort). Set DOWNSLOPE_DIST_TIMEOUT (seconds) "
                    "if a rank may legitimately take longer\n"
                )
                sys.stderr.flush()
                self._comm.Abort(1)
                return
            if now - entered <= _PROBE_AFTER_S or not self._can_probe:
                continue
            if self._departed is None:
                self._departed = self._find_departed()
                if self._departed is None:
                    continue
            if suspect is None or suspect[0] != count:
                suspect = (count, now)
            elif now - suspect[1] > _DEPARTED_GRACE_S:
                sys.stderr.write(
                    f"downslope.distributed: rank {self.rank} of {self.size} is waiting in {self._what} for rank "
                    f"{self._departed}, which has left the job (its Python process ended, e.g. by sys.exit(), while "
                    "this rank still had collectives to run); ending the job (MPI_Abort). A rank that stops early "
                    "must stop every rank: call dist.end_job_on_error(code) before exiting\n"
                )
                sys.stderr.flush()
                self._comm.Abort(1)
                return

    def _find_departed(self) -> int | None:
        """The rank of an "I have left" message waiting for this rank (see :meth:`announce_exit`), or None."""
        status = self._mpi.Status()
        if not self._comm.Iprobe(source=self._mpi.ANY_SOURCE, tag=_EXIT_TAG, status=status):
            return None
        note = np.zeros(1, dtype=np.int64)
        self._comm.Recv(note, source=status.Get_source(), tag=_EXIT_TAG)
        return int(note[0])

    def announce_exit(self) -> None:
        """Tell every other rank that this process is ending (run at interpreter exit).

        A rank waiting in a collective then knows that it will never complete and ends the job
        instead of waiting for the timeout: the case of a rank that leaves by ``sys.exit()`` (which
        bypasses ``sys.excepthook``) or by returning early. A clean end costs one small message per
        rank, never read: the others are not waiting in a collective then."""
        if self._mpi.Is_finalized():
            return
        note = np.array([self.rank], dtype=np.int64)
        requests = [self._comm.Isend(note, dest=r, tag=_EXIT_TAG) for r in range(self.size) if r != self.rank]
        # A few bytes go out eagerly, at once; a transport that needs the receiver's help (a first TCP
        # contact) gets a bounded wait, never more: this process is ending either way.
        deadline = time.monotonic() + _ANNOUNCE_WAIT_S
        while not self._mpi.Request.Testall(requests) and time.monotonic() < deadline:
            time.sleep(0.001)

    def allreduce_sum(self, buf: np.ndarray) -> None:
        # In place: no second buffer of the gradients' size is allocated per step.
        with self._collective("an Allreduce", buf):
            self._comm.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)

    def allreduce(self, buf: np.ndarray, op: str) -> None:
        """In-place Allreduce with MPI's ``op``: "sum", "prod", "max", "min", "band", "bor" or "bxor"."""
        with self._collective(f"an Allreduce ({op})", buf):
            self._comm.Allreduce(self._mpi.IN_PLACE, buf, op=getattr(self._mpi, _MPI_OPS[op]))

    def bcast(self, buf: np.ndarray, root: int) -> None:
        with self._collective(f"a Bcast from rank {root}", buf):
            self._comm.Bcast(buf, root=root)

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        mine = np.frombuffer(data, dtype=np.uint8)
        lengths = np.zeros(self.size, dtype=np.int64)
        with self._collective("an Allgather (of the byte counts)"):
            self._comm.Allgather(np.array([mine.size], dtype=np.int64), lengths)
        counts = [int(n) for n in lengths]
        offsets = [int(o) for o in np.concatenate(([0], np.cumsum(lengths)[:-1]))]
        everything = np.empty(int(lengths.sum()), dtype=np.uint8)
        with self._collective("an Allgatherv", mine):
            self._comm.Allgatherv(mine, [everything, counts, offsets, self._mpi.BYTE])
        return [everything[o : o + n].tobytes() for o, n in zip(offsets, counts)]

    def allgather_fixed(self, values: np.ndarray) -> np.ndarray:
        """Every rank's ``values`` (int64, the same length on every rank) as the rows of one array, in
        one Allgather: cheaper than :meth:`allgather_bytes`, which first exchanges the lengths."""
        mine = np.ascontiguousarray(values, dtype=np.int64).reshape(-1)
        everyone = np.empty((self.size, mine.size), dtype=np.int64)
        with self._collective("an Allgather (of the calls' descriptions)", mine):
            self._comm.Allgather(mine, everyone)
        return everyone

    def allgather_array(self, buf: np.ndarray, out: np.ndarray) -> None:
        """Every rank's ``buf`` (the same shape and dtype on every rank: checked before) into ``out[r]``, in one
        Allgather (no exchange of the sizes first, as :meth:`allgather_bytes` needs)."""
        with self._collective("an Allgather", buf):
            self._comm.Allgather(buf, out)

    def bcast_bytes(self, data: bytes, root: int) -> bytes:
        length = np.array([len(data)], dtype=np.int64)
        with self._collective(f"a Bcast from rank {root} (of a byte count)", length):
            self._comm.Bcast(length, root=root)
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == root else np.empty(int(length[0]), np.uint8)
        with self._collective(f"a Bcast from rank {root} (of bytes)", buf):
            self._comm.Bcast(buf, root=root)
        return buf.tobytes()

    def gather(self, buf: np.ndarray, out: np.ndarray | None, root: int) -> None:
        """Rank r's ``buf`` into ``out[r]`` on ``root`` (``out``: None on the other ranks); only the root
        receives, so the traffic is the data once, not once per rank."""
        with self._collective(f"a Gather to rank {root}", buf):
            self._comm.Gather(buf, out, root=root)

    def scatter(self, parts: np.ndarray | None, buf: np.ndarray, root: int) -> None:
        """``parts[r]`` of ``root`` into rank r's ``buf`` (``parts``: None on the other ranks)."""
        with self._collective(f"a Scatter from rank {root}", buf):
            self._comm.Scatter(parts, buf, root=root)

    def barrier(self) -> None:
        with self._collective("a Barrier"):
            self._comm.Barrier()

    def send(self, buf: np.ndarray, dest: int, tag: int) -> None:
        with self._collective(f"a Send to rank {dest}", buf):
            self._comm.Send(buf, dest=dest, tag=tag)

    def recv(self, buf: np.ndarray, source: int | None, tag: int) -> int:
        """Receive into ``buf`` from ``source`` (None: any rank); returns the sender's rank."""
        status = self._mpi.Status()
        where = self._mpi.ANY_SOURCE if source is None else source
        with self._collective("a Recv" if source is None else f"a Recv from rank {source}", buf):
            self._comm.Recv(buf, source=where, tag=tag, status=status)
        return int(status.Get_source())

    def recv_message(self, source: int | None, tag: int) -> tuple[np.ndarray, int]:
        """The next message from ``source`` (None: any rank) with ``tag``, whatever its size, as bytes (uint8);
        returns it and the sender's rank. A matched probe sizes the buffer, so a message larger or smaller
        than the caller expects arrives whole and can be judged, instead of MPI truncating it."""
        status = self._mpi.Status()
        where = self._mpi.ANY_SOURCE if source is None else source
        with self._collective("a Recv" if source is None else f"a Recv from rank {source}"):
            message = self._comm.Mprobe(source=where, tag=tag, status=status)
            buf = np.empty(int(status.Get_count(self._mpi.BYTE)), dtype=np.uint8)
            message.Recv(buf)
        return buf, int(status.Get_source())

    def abort(self, code: int) -> None:
        self._comm.Abort(code)


@dataclass(frozen=True)
class World:
    """This process's place in the job.

    Attributes:
        rank: this process's index, ``0 <= rank < world_size``.
        world_size: the number of processes training together.
        backend: ``"mpi"`` under an MPI launcher, ``"single"`` for a plain process.

    Example:
        >>> from downslope import distributed as dist
        >>> w = dist.init()          # a plain python process: a world of one
        >>> w.rank, w.world_size, w.is_main
        (0, 1, True)
    """

    rank: int
    world_size: int
    backend: str
    comm: Any = field(repr=False, compare=False)

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs, writes checkpoints and reports."""
        return self.rank == 0


_world: World | None = None


def _under_launcher() -> bool:
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def init(*, fail_fast: bool = True, require_mpi: bool = False, timeout: Any = None) -> World:
    """Join the job's process group (idempotent: later calls return the same :class:`World`).

    Args:
        fail_fast: under MPI with more than one process, make an uncaught exception on any rank
            print its traceback and abort every rank (``MPI_Abort``), instead of leaving the
            others blocked in a collective.
        require_mpi: raise instead of falling back to a world of one when MPI is not available.
        timeout: how long a collective waits for the other ranks before a watchdog
            ends the job naming it (seconds, or a ``datetime.timedelta`` as PyTorch's
            ``init_process_group`` takes); default ``DOWNSLOPE_DIST_TIMEOUT`` or 30 minutes.

    Under a launcher that announces more than one process, a missing mpi4py is an error: running
    N independent copies of the training would silently be wrong.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.init().world_size
        1
    """
    global _world
    if _world is not None:
        return _world
    announced = launched_size()
    if _under_launcher() or require_mpi:
        try:
            from mpi4py import MPI
        except ImportError as exc:
            if require_mpi or (announced is not None and announced > 1):
                raise DistributedError(
                    f"downslope.distributed: this process was started by an MPI launcher as one of "
                    f"{announced} processes, but mpi4py cannot be imported ({exc}). Install the extra: "
                    f"pip install 'downslope[mpi]'"
                ) from None
        else:
            seconds = (
                _timeout_from_environment() if timeout is None else getattr(timeout, "total_seconds", lambda: timeout)()
            )
            if not float(seconds) > 0:
                raise DistributedError(f"init: timeout must be > 0 seconds, got {timeout!r}")
            comm = _MPIComm(MPI, float(seconds))
            tasks = _srun_tasks()
            if comm.size == 1 and tasks > 1:
                raise DistributedError(
                    f"downslope.distributed: srun started {tasks} tasks but MPI sees a world of 1 in each; "
                    f"use srun --mpi=pmix (or --mpi=pmi2) so that MPI can connect them"
                )
            _world = World(rank=comm.rank, world_size=comm.size, backend="mpi", comm=comm)
            if fail_fast and comm.size > 1:
                install_fail_fast(_world)
                atexit.register(comm.announce_exit)  # before mpi4py's MPI_Finalize (a C-level exit hook)
            return _world
    tasks = _srun_tasks()
    if tasks > 1:
        raise DistributedError(
            f"downslope.distributed: srun started {tasks} tasks, but this process found no MPI wiring (no PMIx/PMI "
            f"variables), so each task would train alone. Launch with srun --mpi=pmix (or --mpi=pmi2), or mpiexec."
        )
    _world = World(rank=0, world_size=1, backend="single", comm=_SelfComm())
    return _world


def get_world() -> World:
    """The current :class:`World` (calls :func:`init` on first use)."""
    return _world if _world is not None else init()


def rank() -> int:
    """This process's rank (0 outside MPI)."""
    return get_world().rank


def world_size() -> int:
    """The number of processes (1 outside MPI)."""
    return get_world().world_size


def initialized_world(what: str) -> World:
    """The process group, or torch's "not initialized" error naming ``what`` was called (get_rank,
    all_reduce...): torch.distributed's calls need init_process_group() (or init()) first."""
    if _world is None:
        from ..errors import UninitializedError

        raise UninitializedError(
            f"distributed.{what}: Default process group has not been initialized, please make sure to call "
            "init_process_group (here: downslope.distributed.init_process_group() or downslope.distributed.init())."
        )
    return _world


def is_main() -> bool:
    """True on rank 0: the one process that logs, writes files and reports."""
    return get_world().is_main


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None, timeout: Any = None) -> None:
    """Wait until every rank reaches this point (``torch.distributed.barrier``'s arguments are accepted:
    ``group`` must be None or ``group.WORLD``, ``async_op`` False; ``device_ids`` (GPUs to synchronize)
    and ``timeout`` are ignored: there are no GPU streams to wait for, and every wait is watched already).

    The wait is the exchange that compares the ranks' calls: a rank that reached another collective
    instead (an ``all_reduce``, a ``gather``...) makes every rank raise :class:`CollectiveMismatchError`
    here, rather than MPI pairing a Barrier with another collective."""
    if group is not None and not getattr(group, "_downslope_world_group", False):
        raise DistributedError(
            f"barrier: process subgroups are not supported (got group={group!r}); every collective is over all "
            "ranks: pass group=None"
        )
    if async_op:
        raise DistributedError(
            "barrier: async_op=True is not supported (downslope's collectives are blocking); call it with "
            "async_op=False: every rank has arrived when it returns"
        )
    wait_for_every_rank("barrier")


def wait_for_every_rank(what: str) -> None:
    """The barrier of :func:`barrier` (and ``monitored_barrier``, named ``what``): an exchange of the ranks'
    calls, which no rank leaves before every rank has joined it."""
    w = get_world()
    if w.world_size == 1:
        return
    from .process_group import _check_calls_match  # a layer above this one (it imports world)

    _check_calls_match(w, what, subject="")


def install_fail_fast(world: World | None = None) -> None:
    """Make an uncaught exception on this rank abort the whole job, with the traceback shown.

    The traceback is printed (and stderr flushed) before ``MPI_Abort``, so ``mpiexec`` shows the
    error and exits non-zero within seconds instead of hanging on the ranks still waiting in a
    collective. Installed by :func:`init` when there is more than one process.
    """
    world = world if world is not None else get_world()
    previous = sys.excepthook
    if getattr(previous, "_downslope_fail_fast", False):
        return

    def abort_all_ranks(exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
        if raised_on_every_rank(exc):  # each rank exits on its own
            previous(exc_type, exc, tb)
            return
        try:
            sys.stderr.write(
                f"downslope.distributed: rank {world.rank} of {world.world_size} raised "
                f"{exc_type.__name__}; aborting all ranks (MPI_Abort)\n"
            )
            previous(exc_type, exc, tb)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            world.comm.abort(1)

    abort_all_ranks._downslope_fail_fast = True  # type: ignore[attr-defined]
    sys.excepthook = abort_all_ranks


def refuse_multi_process(what: str) -> None:
    """Raise :class:`DistributedError` if this process is one of several started by an MPI launcher.

    For work that has no data-parallel form (the ``downslope compare`` and ``lr-find`` commands):
    run under ``mpiexec -n W`` it would do the same work W times, and its collectives would not
    line up. Reads only the launcher's environment, so it never joins or waits on the other ranks.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.refuse_multi_process("downslope compare")   # a plain process: nothing happens
    """
    size = launched_size() or _srun_tasks()  # srun --mpi=pmix may announce no size variable
    if size > 1:
        raise DisagreementError(
            f"{what} runs in one process only, but an MPI launcher started {size}; run it without mpiexec/srun "
            f"(data-parallel training is 'downslope train' under mpiexec)"
        )


def end_job_on_error(code: int) -> None:
    """End every rank of a multi-process MPI job now, with exit status ``code`` (``MPI_Abort``).

    For a rank that has handled an error itself (printed a message and is about to exit non-zero,
    as the ``downslope`` command does): an exit that is not an uncaught exception bypasses the
    fail-fast hook, and the other ranks, waiting for this one in a collective, would hang. Joins the
    MPI job first if this process has not yet. A no-op in a world of one (then simply exit), and
    while handling a :class:`DisagreementError`, which every rank raised alike.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.end_job_on_error(2)     # a plain process: nothing happens
    """
    if _world is None and (launched_size() or 1) <= 1:
        return
    if raised_on_every_rank(sys.exc_info()[1]):  # none waits for another
        return
    try:
        world = get_world()
    except DownslopeError:
        return  # no MPI to abort through: the launcher sees this process exit non-zero
    if world.world_size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        world.comm.abort(int(code))
