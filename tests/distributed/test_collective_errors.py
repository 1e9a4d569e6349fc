"""Collectives that cannot go through: an object the encoder has no form for, ranks whose calls do not
match. Every rank must raise at the same point (or the job must end), never leave a rank waiting in a
collective that a later call then pairs with; the message names the call, the rank and the sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope.distributed import World
from downslope.distributed.world import CollectiveMismatchError, _MPIComm, raised_on_every_rank

WORKER = Path(__file__).with_name("mpi_worker_mismatch.py")


@pytest.fixture
def run_mismatch(mpiexec: list[str], tmp_path: Path) -> Callable[..., tuple[int, str, float]]:
    def run(mode: str, timeout: float = 60) -> tuple[int, str, float]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_DIST_TIMEOUT="40")
        cmd = [*mpiexec, "-n", "2", sys.executable, str(WORKER), mode, str(tmp_path)]
        started = time.monotonic()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"mpiexec -n 2 ({mode}) hung for {timeout} s; output so far:\n{exc.stdout}\n{exc.stderr}")
        return done.returncode, done.stdout + done.stderr, time.monotonic() - started

    return run


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_an_object_that_cannot_be_sent_raises_on_every_rank_and_the_next_call_pairs_up(
    run_mismatch: Callable[..., tuple[int, str, float]], tmp_path: Path
) -> None:
    code, output, _ = run_mismatch("objects")
    assert code == 0, output
    for rank, record in enumerate(_records(tmp_path)):
        for name, call in (
            ("unsendable gather", "all_gather_object"),
            ("unsendable broadcast list", "broadcast_object_list"),
        ):
            raised = record[name]
            assert "raised" in raised, (rank, name, raised)
            assert "TypeError" in raised["raised"] and "UnsendableObjectError" in raised["raised"]
            assert raised["message"].startswith(f"{call}: rank "), raised["message"]
            assert "Unsendable" in raised["message"] and "save" not in raised["message"]
        assert record["next gather"] == {"returned": repr([{"rank": 0}, {"rank": 1}])}
        assert record["next broadcast list"] == {"returned": repr([{"epoch": 3}, None])}
        assert record["sets and tuples equal"] is True
        assert record["sets and tuples types"] == [["set", "tuple", "frozenset", "set"]] * 2
        assert "marks a set" in record["marker tuple"]["message"]
        assert record["unsendable gather_object"]["message"].startswith("gather_object: rank 1's object cannot be sent")
        assert (
            "scatter_object_input_list on the source must be a list of world_size=2 entries, got 1"
            in (record["short scatter list"]["message"])
        )
        assert record["last gather"] == {"returned": repr([0, 1])}


def test_a_broadcast_into_another_dtype_is_refused_on_every_rank_naming_both_calls(
    run_mismatch: Callable[..., tuple[int, str, float]],
) -> None:
    code, output, seconds = run_mismatch("broadcast_of_another_dtype")
    assert code != 0
    lines = [line for line in output.splitlines() if "CollectiveMismatchError: " in line]
    assert len(lines) == 2, output  # both ranks raise it (before any data moves), none is left waiting
    for line in lines:
        assert (
            "broadcast: the ranks' calls do not match: rank 0 called broadcast with a (4,) float64 tensor, src=0, "
            "but rank 1 called broadcast with a (4,) float32 tensor, src=0" in line
        )
        assert "is there a distributed collective mismatch in your code?" in line.lower()
    assert seconds < 35, f"the job took {seconds:.0f} s to end (the watchdog's timeout is 40 s)"


def test_ddp_compares_the_buffers_too(run_mismatch: Callable[..., tuple[int, str, float]], tmp_path: Path) -> None:
    code, output, _ = run_mismatch("ddp_buffer_of_another_size")
    assert code == 0, output
    for record in _records(tmp_path):
        assert "DisagreementError" in record["ddp"]["raised"], record
        assert (
            "'buffer stats' with shape (4,) float32 on rank 0 but 'buffer stats' with shape (3,)"
            in (record["ddp"]["message"])
        )
        assert "returned" in record["after"]


class _TruncatingComm:
    """mpi4py's COMM_WORLD whose Bcast fails as MPI does when the root sent more than this rank posted."""

    class Exception(Exception):  # noqa: A001, N818  (mpi4py's name)
        pass

    IN_PLACE = object()
    SUM = object()
    THREAD_MULTIPLE = 3

    class COMM_WORLD:  # noqa: N801  (mpi4py's name)
        @staticmethod
        def Get_rank() -> int:  # noqa: N802
            return 1

        @staticmethod
        def Get_size() -> int:  # noqa: N802
            return 2

        @staticmethod
        def Allgather(mine: Any, everyone: Any) -> None:  # noqa: N802  (the ranks' calls look alike)
            everyone[...] = mine

        @staticmethod
        def Bcast(buf: Any, root: int) -> None:  # noqa: N802
            raise _TruncatingComm.Exception("MPI_ERR_TRUNCATE: message truncated")

    @staticmethod
    def Query_thread() -> int:  # noqa: N802
        return 0


@pytest.mark.host_only  # the MPI collectives work on host tensors
def test_mpis_raw_truncation_error_becomes_one_that_names_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    comm = _MPIComm(_TruncatingComm, timeout=60)
    monkeypatch.setattr(dist.world, "_world", World(rank=1, world_size=2, backend="mpi", comm=comm))
    with pytest.raises(dist.DisagreementError) as info:
        dist.broadcast(ds.ones(3, dtype=ds.float64), 0)
    message = str(info.value)
    assert message.startswith("broadcast: downslope.distributed: a Bcast from rank 0 failed on rank 1 of 2")
    assert "3 elements of float64" in message and "'message truncated'" in message
    assert "is there a distributed collective mismatch in your code?" in message
    # raised on this rank alone: the fail-fast hook must end the job, not wait for the others to raise too
    assert not raised_on_every_rank(info.value) and isinstance(info.value, CollectiveMismatchError)


def test_sets_and_tuples_are_encoded_as_themselves() -> None:
    from downslope.distributed.collectives import _tag_sets, _untag_sets
    from downslope.serialization import decode_tree, encode_tree

    original = {"a": {1, 2}, "b": (1, frozenset({"x"})), "c": [np.arange(2)], "d": {"e": {(1, 2)}}}
    found = [False]
    tagged = _tag_sets(original, found)
    assert found[0] and original["a"] == {1, 2}  # the caller's object is not changed
    arrays: dict[str, np.ndarray] = {}
    back = _untag_sets(decode_tree(json.loads(json.dumps(encode_tree(tagged, arrays, "obj"))), arrays))
    assert back["a"] == {1, 2} and type(back["a"]) is set
    assert back["b"] == (1, frozenset({"x"})) and type(back["b"][1]) is frozenset
    assert back["d"] == {"e": {(1, 2)}}
    np.testing.assert_array_equal(back["c"][0], np.arange(2))
