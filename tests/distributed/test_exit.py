"""A rank that leaves the job early (sys.exit on one rank of a hand-written loop) ends the job within
seconds instead of leaving the others in their Allreduce until the collective timeout; a clean job,
whose ranks end at different times without a collective left, still ends with status 0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.slow
def test_sys_exit_on_one_rank_of_a_hand_loop_ends_the_job(run_torch_worker: Callable[..., Any]) -> None:
    launch = run_torch_worker("exit_in_hand_loop", timeout=40)
    assert launch.returncode != 0
    assert "rank 0 of 2 is waiting in an Allreduce for rank 1, which has left the job" in launch.output
    assert launch.seconds < 25, f"took {launch.seconds:.1f} s"


@pytest.mark.slow
def test_ranks_ending_at_different_times_end_cleanly(run_torch_worker: Callable[..., Any]) -> None:
    launch = run_torch_worker("early_clean_exit", timeout=40)
    assert launch.returncode == 0, launch.output
    assert (launch.out_dir / "rank0_done.txt").read_text() == "done"
