"""Importing downslope.distributed asks Open MPI to yield while a rank waits (a user's setting wins)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("0", "0")])
def test_yield_when_idle_is_set_before_mpi_starts_unless_the_user_set_it(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    if given is not None:
        env["OMPI_MCA_mpi_yield_when_idle"] = given
    code = (
        "import os, sys\n"
        "import downslope.distributed\n"
        "assert 'mpi4py' not in sys.modules\n"  # set before mpi4py (and MPI_Init) could read it
        "print(os.environ.get('OMPI_MCA_mpi_yield_when_idle'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
