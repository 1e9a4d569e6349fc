"""torch.distributed's calls whose ranks do not match, under ``mpiexec -n 2`` and ``-n 3``: gather, scatter,
all_gather_into_tensor, all_gather, all_to_all_single, all_to_all, barrier, the object calls and
send/recv. A collective is refused on every rank alike before anything is sent (a
CollectiveMismatchError naming both calls, or the refusing rank's own argument error there), never
garbage on one rank, a wrong value, or a rank left waiting; a recv whose tensor does not fit the
message is refused on the receiver, naming both. After each case a matching all_reduce pairs up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("mpi_worker_call_mismatch.py")

# case -> (what the ranks raise: "every" (every rank refuses the call) or "receiver" (the last rank's recv),
#          the rank whose own arguments were refused (it raises its ArgumentError) or None,
#          words every raised message holds; {last} is the last rank)
EXPECTED: dict[str, tuple[str, int | None, str]] = {
    "gather_of_another_dtype": (
        "every", None,
        "rank 0 called gather with a (2,) float32 tensor, dst=0, but rank {last} called gather with a (2,) int32 "
        "tensor, dst=0",
    ),
    "gather_of_another_shape": (
        "every", None, "gather with a (2, 3) float32 tensor, dst=0, but rank {last} called gather with a (3, 2) float32",
    ),
    "gather_to_another_dst": ("every", None, "float32 tensor, dst=0, but rank {last} called gather with a (2,) "
                              "float32 tensor, dst=1"),
    "gather_list_off_the_destination": (
        "every", -1, "gather_list is given on rank {last}, which is not the destination (dst=0)",
    ),
    "scatter_into_another_shape": ("every", None, "scatter with a (2, 3) float32 tensor, src=0, but rank {last} "
                                   "called scatter with a (3, 2) float32 tensor"),
    "scatter_from_another_src": ("every", None, "src=0, but rank {last} called scatter with a (2,) float32 tensor, "
                                 "src=1"),
    "scatter_list_of_another_shape": ("every", 0, "scatter_list[0] is (3,) float32, expected the tensor's (2,) float32"),
    "all_gather_into_tensor_of_another_dtype": (
        "every", None, "all_gather_into_tensor with a (2,) float32 tensor, but rank {last} called "
        "all_gather_into_tensor with a (2,) int32 tensor",
    ),
    "all_gather_with_a_short_list": ("every", -1, "all_gather: tensor_list: expected a list of world_size={size} "
                                     "tensors, got {last}"),
    "all_to_all_single_of_another_dtype": (
        "every", None, "all_to_all_single with an (N,) float32 input, but rank {last} called all_to_all_single with an "
        "(N,) int32 input",
    ),
    "all_to_all_single_of_other_splits": (
        "every", None, "all_to_all_single: rank 0 sends 1 rows to rank {last}, whose output_split_sizes expect 2",
    ),
    "all_to_all_against_all_reduce": ("every", None, "rank 0 called all_to_all, but rank {last} called all_reduce "
                                      "with a (2,) float32 tensor, op=SUM"),
    "barrier_against_all_reduce": ("every", None, "rank 0 called barrier, but rank {last} called all_reduce with a "
                                   "(7,) float32 tensor, op=SUM"),
    "all_gather_object_against_broadcast_object_list": (
        "every", None, "rank 0 called all_gather_object, but rank {last} called broadcast_object_list with a list of "
        "{size} objects, src=0",
    ),
    "broadcast_object_list_of_another_length": (
        "every", None, "broadcast_object_list with a list of 2 objects, src=0, but rank {last} called "
        "broadcast_object_list with a list of 3 objects, src=0",
    ),
    "broadcast_object_list_from_another_src": ("every", None, "src=0, but rank {last} called broadcast_object_list "
                                               "with a list of 2 objects, src=1"),
    "gather_object_to_another_dst": ("every", None, "rank 0 called gather_object, dst=0, but rank {last} called "
                                     "gather_object, dst=1"),
    "all_gather_object_with_a_short_list": (
        "every", -1, "all_gather_object: object_list must be a list of world_size={size} entries, got {last}",
    ),
    "recv_into_another_dtype": ("receiver", None, "recv: rank 0 sent a (4,) float32 tensor, but rank {last} receives "
                                "into a (2,) float64 tensor"),
    "recv_into_a_larger_tensor": ("receiver", None, "recv: rank 0 sent a (2,) float32 tensor, but rank {last} "
                                  "receives into a (4,) float32 tensor"),
    "recv_object_list_of_a_tensor": ("receiver", None, "recv_object_list: rank 0 sent a (2,) float32 tensor with "
                                     "send, not objects with send_object_list"),
}  # fmt: skip


def launch(mpiexec: list[str], out: Path, n: int, cases: list[str], env_extra: dict[str, str] | None = None) -> str:
    """Run the worker's ``cases`` (all when empty) on ``n`` ranks; its output (the records are in ``out``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_DIST_TIMEOUT="30", **(env_extra or {}))
    cmd = [*mpiexec, "-n", str(n), sys.executable, str(WORKER), str(out), *cases]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec -n {n} hung for 120 s; output so far:\n{exc.stdout!r}\n{exc.stderr!r}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout + done.stderr


def judge(case: str, records: list[dict[str, Any]]) -> None:
    """Assert what every rank recorded for ``case`` is what :data:`EXPECTED` says."""
    size = len(records)
    last = size - 1
    kind, own, words = EXPECTED[case]
    said = words.format(last=last, size=size)
    for rank, record in enumerate(records):
        got = record[case]
        assert got["next all_reduce"] == size * (size + 1) / 2, (rank, got)  # the next call paired up
        if kind == "receiver" and rank != last:
            assert "returned" in got, (rank, got)  # the sender has returned; the others were not involved
            continue
        assert "raised" in got, (rank, got)
        assert said in got["message"], (rank, said, got["message"])
        if kind == "receiver":
            assert got["raised"] == "CollectiveMismatchError" and not got["on_every_rank"], (rank, got)
            continue
        assert got["on_every_rank"], (rank, got)  # the fail-fast hook lets each rank end alone
        if own is not None and rank == own % size:
            assert got["raised"] == "ArgumentError", (rank, got)  # as in a world of one, and as torch's
        else:
            assert got["raised"] == "CollectiveMismatchError", (rank, got)
            assert got["message"].split(":")[0] in {
                "gather",
                "scatter",
                "all_gather_into_tensor",
                "all_gather",
                "all_to_all_single",
                "all_to_all",
                "all_reduce",
                "barrier",
                "all_gather_object",
                "broadcast_object_list",
                "gather_object",
            }


_cache: dict[int, list[dict[str, Any]]] = {}


@pytest.fixture
def records_on(mpiexec: list[str], tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], list[dict[str, Any]]]:
    def records(n: int) -> list[dict[str, Any]]:
        if n not in _cache:  # one launch runs every case, in order, for each world size
            out = tmp_path_factory.mktemp(f"mismatch{n}")
            launch(mpiexec, out, n, [])
            _cache[n] = [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]
        return _cache[n]

    return records


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_mismatched_call_is_refused_and_the_next_call_pairs_up(
    records_on: Callable[[int], list[dict[str, Any]]], n: int, case: str
) -> None:
    judge(case, records_on(n))


def test_every_case_of_the_worker_is_judged() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("mpi_worker_call_mismatch", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.CASES) == sorted(EXPECTED)
