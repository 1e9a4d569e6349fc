"""What an MPI launcher tells a process through its environment (the world size), read without joining
the job: ``distributed`` builds its process group on it, and ``train.fit`` warns with it when a
single-process fit runs as one of several launched processes.

Example:
    >>> from downslope.launchers import launched_size
    >>> launched_size() is None  # a plain process
    True
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

# Variables that the common launchers set in every process they start. Open MPI: OMPI_*;
# MPICH/Intel MPI (Hydra) and srun --mpi=pmi2: PMI_*. Not SLURM_NTASKS: a plain `python` inside an
# sbatch script has it too.
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS")
_SLURM_BATCH_STEP = 4294967290  # step ids from here up are Slurm's batch/extern/interactive steps


def launched_size() -> int | None:
    """The world size the launcher announced in the environment, or None outside a launcher."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


def srun_tasks() -> int:
    """The number of tasks of the Slurm job step this process belongs to (0 outside an srun step)."""
    step, tasks = os.environ.get("SLURM_STEP_ID", ""), os.environ.get("SLURM_STEP_NUM_TASKS", "")
    if not (step.isdigit() and tasks.isdigit()) or int(step) >= _SLURM_BATCH_STEP:
        return 0
    return int(tasks)


class IndependentCopiesWarning(UserWarning):
    """The single-process ``ds.fit`` ran in a process that an MPI launcher started as one of several:
    each process trains its own copy of the model, and nothing is averaged across them."""


_warned_training_alone = False


def warn_training_alone(what: str, files: Sequence[str] = ()) -> None:
    """Warn, once per process, when ``what`` (``ds.fit``) trains in a process that an MPI launcher
    started as one of several: each rank trains an independent copy (its own data order, no averaged
    gradients) and the ranks overwrite each other's ``files``. Reads only the launcher's environment,
    so it never joins or waits on the other ranks.

    Example:
        >>> from downslope.launchers import warn_training_alone
        >>> warn_training_alone("ds.fit")   # a plain process: nothing happens
    """
    global _warned_training_alone
    size = launched_size() or srun_tasks()
    if size <= 1 or _warned_training_alone:
        return
    _warned_training_alone = True
    written = f" Every one of them writes the same files ({', '.join(files)}): the last writer wins." if files else ""
    warnings.warn(
        f"{what}: this process is one of {size} processes that an MPI launcher started, but {what} trains in one "
        f"process: each of the {size} trains its own independent copy of the model (no gradients are averaged "
        f"across them).{written} For data-parallel training call downslope.distributed.fit (dist.fit) with the "
        f"same arguments; to train independent copies on purpose, give each rank its own files.",
        IndependentCopiesWarning,
        stacklevel=4,
    )
