"""Checks that need no MPI job: a collective's call is compared across the ranks before any data moves
(shape, dtype, op, root), ds.fit started by a launcher warns that each rank trains alone, and the
commands with no data-parallel form refuse to run under a launcher."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import launchers, nn, optim
from downslope.distributed import World
from downslope.distributed.process_group import ReduceOp, _check_calls_match
from downslope.distributed.world import CollectiveMismatchError, raised_on_every_rank
from downslope.launchers import IndependentCopiesWarning
from downslope.train import CSVLogger

pytestmark = pytest.mark.host_only  # the MPI collectives work on host tensors


class _PairComm:
    """Two ranks in two threads of this process: each exchange waits for both, as MPI's Allgather."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)
        self.slots: list[Any] = [None, None]

    def _exchange(self, rank: int, value: Any) -> list[Any]:
        self.slots[rank] = value
        self.barrier.wait()
        out = list(self.slots)
        self.barrier.wait()
        return out

    def for_rank(self, rank: int, fixed: bool = True) -> Any:
        pair = self

        class Comm:
            def allgather_bytes(self, data: bytes) -> list[bytes]:
                return pair._exchange(rank, data)

        if fixed:  # the MPI communicator's one Allgather of the calls' numbers

            def allgather_fixed(values: np.ndarray) -> np.ndarray:
                return np.stack(pair._exchange(rank, np.array(values, dtype=np.int64)))

            Comm.allgather_fixed = staticmethod(allgather_fixed)  # type: ignore[attr-defined]
        return Comm()


def _both_ranks(calls: list[dict[str, Any]], fixed: bool = True) -> list[BaseException | None]:
    """Run ``_check_calls_match`` on ranks 0 and 1 (``calls[r]``: its keyword arguments); each rank's error."""
    pair = _PairComm()
    errors: list[BaseException | None] = [None, None]

    def rank_body(rank: int) -> None:
        w = World(rank=rank, world_size=2, backend="mpi", comm=pair.for_rank(rank, fixed))
        try:
            _check_calls_match(w, **calls[rank])
        except BaseException as exc:  # noqa: BLE001  (recorded for the test to look at)
            errors[rank] = exc

    threads = [threading.Thread(target=rank_body, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return errors


def _call(what: str, tensor: ds.Tensor | None, **kwargs: Any) -> dict[str, Any]:
    return {"what": what, "tensor": tensor, **kwargs}


@pytest.mark.parametrize("fixed", [True, False])
def test_matching_calls_pass(fixed: bool) -> None:
    t = ds.ones(2, 3)
    assert _both_ranks([_call("all_reduce", t, op=ReduceOp.SUM)] * 2, fixed) == [None, None]


@pytest.mark.parametrize(
    ("rank0", "rank1", "said"),
    [
        (
            _call("broadcast", ds.ones(3), root=0, root_name="src"),
            _call("broadcast", ds.ones(5), root=0, root_name="src"),
            "rank 0 called broadcast with a (3,) float32 tensor, src=0, but rank 1 called broadcast with a (5,) "
            "float32 tensor, src=0",
        ),
        (
            _call("broadcast", ds.ones(4), root=0, root_name="src"),
            _call("broadcast", ds.ones(4, dtype=ds.float64), root=0, root_name="src"),
            "(4,) float32 tensor, src=0, but rank 1 called broadcast with a (4,) float64 tensor",
        ),
        (
            _call("broadcast", ds.ones(4), root=0, root_name="src"),
            _call("broadcast", ds.ones(4), root=1, root_name="src"),
            "src=0, but rank 1 called broadcast with a (4,) float32 tensor, src=1",
        ),
        (
            _call("all_reduce", ds.ones(3), op=ReduceOp.SUM),
            _call("all_reduce", ds.ones(3, dtype=ds.float64), op=ReduceOp.SUM),
            "rank 0 called all_reduce with a (3,) float32 tensor, op=SUM, but rank 1 called all_reduce with a (3,) "
            "float64 tensor, op=SUM",
        ),
        (
            _call("all_reduce", ds.ones(2, 3), op=ReduceOp.SUM),
            _call("all_reduce", ds.ones(3, 2), op=ReduceOp.SUM),
            "(2, 3) float32 tensor, op=SUM, but rank 1 called all_reduce with a (3, 2) float32 tensor",
        ),
        (
            _call("all_reduce", ds.ones(3), op=ReduceOp.SUM),
            _call("all_reduce", ds.ones(3), op=ReduceOp.MAX),
            "op=SUM, but rank 1 called all_reduce with a (3,) float32 tensor, op=MAX",
        ),
        (
            _call("all_reduce", ds.ones(3), op=ReduceOp.SUM),
            _call("broadcast", ds.ones(3), root=0, root_name="src"),
            "but rank 1 called broadcast with a (3,) float32 tensor, src=0",
        ),
    ],
)
@pytest.mark.parametrize("fixed", [True, False])
def test_a_mismatch_is_refused_on_every_rank_alike(
    rank0: dict[str, Any], rank1: dict[str, Any], said: str, fixed: bool
) -> None:
    errors = _both_ranks([rank0, rank1], fixed)
    messages = []
    for rank, exc in enumerate(errors):
        assert isinstance(exc, CollectiveMismatchError), (rank, exc)
        # every rank raises it: the fail-fast hook lets each rank end with its own message, no MPI_Abort
        assert raised_on_every_rank(exc)
        messages.append(str(exc))
    for rank, call in enumerate((rank0, rank1)):  # each rank names its own call first, then the same words
        assert messages[rank].startswith(f"{call['what']}: the ranks' calls do not match: ")
    assert messages[0].partition(": ")[2] == messages[1].partition(": ")[2]
    assert said in messages[0], messages[0]
    assert "nothing was sent" in messages[0] and "is there a distributed collective mismatch" in messages[0].lower()


@pytest.mark.parametrize("fixed", [True, False])
def test_arguments_one_rank_refused_are_refused_on_every_rank(fixed: bool) -> None:
    from downslope.errors import ArgumentError

    refusal = ArgumentError("gather: gather_list is given on rank 1, which is not the destination (dst=0)")
    calls = [_call("gather", ds.ones(2), root=0, root_name="dst"),
             _call("gather", ds.ones(2), root=0, root_name="dst", refusal=refusal)]  # fmt: skip
    errors = _both_ranks(calls, fixed)
    assert errors[1] is refusal and raised_on_every_rank(refusal)  # its own error, as in a world of one
    assert isinstance(errors[0], CollectiveMismatchError) and raised_on_every_rank(errors[0])
    assert str(errors[0]) == (
        "gather: rank 1 refused its arguments, so every rank refuses the call (nothing was sent): ArgumentError: "
        "gather: gather_list is given on rank 1, which is not the destination (dst=0)"
    )


@pytest.mark.parametrize("fixed", [True, False])
def test_calls_with_no_tensor_are_compared_too(fixed: bool) -> None:
    calls = [_call("barrier", None, subject=""), _call("all_gather_object", None, subject="")]
    errors = _both_ranks(calls, fixed)
    assert all(isinstance(e, CollectiveMismatchError) for e in errors), errors
    assert "rank 0 called barrier, but rank 1 called all_gather_object." in str(errors[0])
    assert _both_ranks([_call("barrier", None, subject="")] * 2, fixed) == [None, None]


def test_an_error_that_mpi_reports_on_one_rank_is_still_not_raised_on_every_rank() -> None:
    assert not raised_on_every_rank(CollectiveMismatchError("an Allreduce failed on rank 1"))


def _small_fit(callbacks: list[Any]) -> None:
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    x = np.ones((8, 3), np.float32)
    ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, x[:, :1]), epochs=1, verbose=0,
           callbacks=callbacks)  # fmt: skip


def test_ds_fit_started_by_a_launcher_warns_once_naming_dist_fit_and_the_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(launchers, "_warned_training_alone", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _small_fit([])  # a plain process: nothing to say
    assert not [w for w in caught if issubclass(w.category, IndependentCopiesWarning)]
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    log = tmp_path / "log.csv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _small_fit([CSVLogger(log)])
        _small_fit([CSVLogger(log)])
    said = [str(w.message) for w in caught if issubclass(w.category, IndependentCopiesWarning)]
    assert len(said) == 1, said  # once per process
    assert said[0].startswith("ds.fit: this process is one of 2 processes that an MPI launcher started")
    assert "independent copy" in said[0] and "downslope.distributed.fit (dist.fit)" in said[0]
    assert f"CSVLogger {str(log)!r}" in said[0] and "the last writer wins" in said[0]


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("landscape", ["landscape", "--function", "rosenbrock", "--optimizers", "sgd", "--out", "{out}"]),
        ("evaluate", ["evaluate", "{out}"]),
        ("predict", ["predict", "{out}", "--data", "{out}.csv", "--out", "{out}.preds.csv"]),
    ],
)
def test_commands_with_no_data_parallel_form_refuse_to_run_under_a_launcher(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, argv: list[str]
) -> None:
    from downslope.cli import main

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    out = tmp_path / "run"
    assert main([arg.replace("{out}", str(out)) for arg in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"downslope {command}: error: downslope {command} runs in one process only, but an MPI launcher started 2; "
        "run it without mpiexec/srun (data-parallel training is 'downslope train' under mpiexec)"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_mismatched_collectives_raise_on_every_rank_under_mpiexec(mpiexec: list[str], tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    worker = Path(__file__).with_name("mpi_worker_call_checks.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_DIST_TIMEOUT="40")
    try:
        done = subprocess.run(
            [*mpiexec, "-n", "2", sys.executable, str(worker), str(tmp_path)],
            capture_output=True, text=True, timeout=90, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec -n 2 hung for 90 s; output so far:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    cases = {
        "broadcast into a larger tensor": ("broadcast", "a (3,) float32 tensor, src=0, but rank 1 called broadcast "
                                           "with a (5,) float32 tensor", [[1.0] * 3, [2.0] * 5]),
        "broadcast into another dtype": ("broadcast", "a (4,) float32 tensor, src=0, but rank 1 called broadcast "
                                         "with a (4,) float64 tensor", [[1.0] * 4, [2.0] * 4]),
        "all_reduce of another dtype": ("all_reduce", "a (3,) float32 tensor, op=SUM, but rank 1 called all_reduce "
                                        "with a (3,) float64 tensor", [[1.0] * 3, [2.0] * 3]),
        "all_reduce of another shape": ("all_reduce", "a (2, 3) float32 tensor, op=SUM, but rank 1 called "
                                        "all_reduce with a (3, 2) float32 tensor",
                                        [[[1.0] * 3] * 2, [[2.0] * 2] * 3]),
    }  # fmt: skip
    for rank, record in enumerate(records):
        for name, (call, said, unchanged) in cases.items():
            got = record[name]
            assert got.get("raised") == "CollectiveMismatchError", (rank, name, got)
            assert got["message"].startswith(f"{call}: the ranks' calls do not match: rank 0 called {call} "), got
            assert said in got["message"], (rank, name, got["message"])
            assert got["after"] == unchanged[rank], (rank, name, got)  # nothing was sent
        assert record["matching all_reduce"] == {"returned": [3.0, 6.0]}  # the next call pairs up
