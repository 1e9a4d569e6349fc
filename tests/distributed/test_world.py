"""init() outside and inside MPI, lazy import of mpi4py, and fail-fast on an uncaught exception."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from downslope.distributed import DistributedError, World, world
from downslope.distributed.world import _SelfComm


def test_a_plain_process_is_a_world_of_one() -> None:
    w = world.init()
    assert (w.rank, w.world_size, w.is_main, w.backend) == (0, 1, True, "single")
    assert world.init() is w and world.get_world() is w
    assert (world.rank(), world.world_size(), world.is_main()) == (0, 1, True)


def test_import_downslope_does_not_load_mpi() -> None:
    code = "import sys, downslope, downslope.distributed as d; d.init(); print('mpi4py' in sys.modules)"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "False", done.stderr


def test_launcher_without_mpi4py_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # makes `from mpi4py import MPI` raise ImportError
    with pytest.raises(DistributedError, match=r"one of 4 processes, but mpi4py cannot be imported.*downslope\[mpi\]"):
        world.init()


def test_launcher_of_one_without_mpi4py_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert world.init().world_size == 1


def test_srun_without_mpi_wiring_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "8")
    with pytest.raises(DistributedError, match=r"srun started 8 tasks.*srun --mpi=pmix"):
        world.init()


def test_sbatch_script_batch_step_is_a_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_STEP_ID", "4294967294")  # Slurm's batch step
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert world.init().world_size == 1


class _RecordingComm(_SelfComm):
    size = 2

    def __init__(self) -> None:
        self.aborted: list[int] = []

    def abort(self, code: int) -> None:
        self.aborted.append(code)


def test_fail_fast_prints_the_traceback_then_aborts(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    comm = _RecordingComm()
    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: seen.append(e))
    world.install_fail_fast(World(rank=1, world_size=2, backend="fake", comm=comm))
    world.install_fail_fast(World(rank=1, world_size=2, backend="fake", comm=comm))  # installed once only
    error = KeyError("missing column")
    sys.excepthook(KeyError, error, None)
    assert seen == [error], "the previous hook (which prints the traceback) must still run"
    assert comm.aborted == [1]
    assert "rank 1 of 2 raised KeyError; aborting all ranks" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["raise", "raise_in_fit"])
def test_a_rank_that_raises_ends_the_job_within_seconds(run_mpi: Any, mode: str) -> None:
    # Without fail-fast, rank 0 would wait in its Allreduce forever (run_mpi fails after 90 s).
    launch = run_mpi(mode, n=2)
    assert launch.returncode != 0
    assert "ValueError: deliberate failure on rank 1" in launch.output
    assert "Traceback" in launch.output
    assert "rank 1 of 2 raised ValueError" in launch.output
    assert launch.seconds < 30, f"took {launch.seconds:.1f} s"


def test_a_rank_that_calls_sys_exit_in_fit_ends_the_job_within_seconds(run_mpi: Any) -> None:
    # sys.exit() raises SystemExit, which bypasses the fail-fast hook; dist.fit aborts the job itself
    launch = run_mpi("exit_in_fit", n=2)
    assert launch.returncode != 0
    assert launch.seconds < 30, f"took {launch.seconds:.1f} s"


def test_a_stalled_rank_ends_the_job_after_the_collective_timeout(
    run_mpi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOWNSLOPE_DIST_TIMEOUT", "2")
    launch = run_mpi("stall", n=2, timeout=60)
    assert launch.returncode != 0
    assert "rank 0 of 2 waited 2 s in an Allreduce for the other ranks" in launch.output, launch.output
    assert "ending the job (MPI_Abort)" in launch.output
    assert launch.seconds < 20, f"took {launch.seconds:.1f} s"


def test_the_collective_timeout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    monkeypatch.setenv("DOWNSLOPE_DIST_TIMEOUT", "12.5")
    assert world._timeout_from_environment() == 12.5
    monkeypatch.setenv("DOWNSLOPE_DIST_TIMEOUT", "soon")
    with pytest.raises(DistributedError, match="expected a number of seconds > 0, got 'soon'"):
        world._timeout_from_environment()
    monkeypatch.delenv("DOWNSLOPE_DIST_TIMEOUT")
    assert (
        world._timeout_from_environment() == world.DEFAULT_TIMEOUT_S == datetime.timedelta(minutes=30).total_seconds()
    )


def test_end_job_on_error_aborts_a_multi_process_job(monkeypatch: pytest.MonkeyPatch) -> None:
    comm = _RecordingComm()
    monkeypatch.setattr(world, "_world", World(rank=1, world_size=2, backend="fake", comm=comm))
    world.end_job_on_error(2)
    assert comm.aborted == [2]


def test_end_job_on_error_does_nothing_in_a_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    comm = _RecordingComm()
    comm.size = 1
    monkeypatch.setattr(world, "_world", World(rank=0, world_size=1, backend="fake", comm=comm))
    world.end_job_on_error(2)
    monkeypatch.setattr(world, "_world", None)
    world.end_job_on_error(2)  # not started by a launcher: returns without joining anything
    assert comm.aborted == [] and world._world is None
