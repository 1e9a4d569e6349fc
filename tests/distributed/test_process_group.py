"""torch.distributed's core calls (init_process_group, all_reduce, broadcast, all_gather...): their
refusals and a world of one in this process, their results under ``mpiexec -n 2`` against NumPy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope.distributed import World, process_group, world
from downslope.distributed.world import _SelfComm
from downslope.errors import ArgumentError, ArgumentTypeError, UninitializedError

WORKER = Path(__file__).with_name("mpi_worker_torch.py")


@pytest.fixture
def no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setattr(process_group, "_initialized_here", False)


def test_a_world_of_one_leaves_the_tensor_as_torch_does(no_group: None) -> None:
    torch = pytest.importorskip("torch")
    dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=60))
    assert dist.is_initialized() and dist.get_backend() == "single"
    for op in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
        t = ds.tensor([1.5, -2.0])
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        np.testing.assert_array_equal(t.numpy(), [1.5, -2.0])
    assert {op.name for op in dist.ReduceOp} <= set(dir(torch.distributed.ReduceOp))
    got: list[Any] = [None]
    dist.all_gather_object(got, {"a": [1, 2]})
    assert got == [{"a": [1, 2]}]
    dist.destroy_process_group()
    assert not dist.is_initialized()
    dist.init_process_group()  # again after destroy, as torch allows
    dist.destroy_process_group()


def test_before_init_the_collectives_raise_as_torchs(no_group: None) -> None:
    for call in (
        lambda: dist.all_reduce(ds.ones(2)),
        lambda: dist.broadcast(ds.ones(2), src=0),
        lambda: dist.all_gather([ds.ones(2)], ds.ones(2)),
        lambda: dist.get_backend(),
    ):
        with pytest.raises(UninitializedError, match="Default process group has not been initialized"):
            call()


def test_a_second_init_and_foreign_worlds_are_refused(no_group: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(dist.DistributedError, match="world_size=2 was asked for, but MPI's world gives 1"):
        dist.init_process_group("gloo", world_size=2, rank=1)
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun's launch: downslope cannot join its rendezvous
    with pytest.raises(dist.DistributedError, match="launch the script with mpiexec -n W, not torchrun"):
        dist.init_process_group("nccl")
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(ArgumentError, match="unknown backend 'glo'"):
        dist.init_process_group("glo")
    dist.init_process_group("cpu:gloo,cuda:nccl")
    with pytest.raises(dist.DistributedError, match="initialize the default process group twice"):
        dist.init_process_group("gloo")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: dist.all_reduce(t, async_op=True), dist.DistributedError, "async_op=True is not supported"),
        (lambda t: dist.broadcast(t, 0, group=object()), dist.DistributedError, "subgroups are not supported"),
        (lambda t: dist.all_reduce(t, op="sum"), ArgumentTypeError, "op must be a ReduceOp"),
        (lambda t: dist.all_reduce(t, op=dist.ReduceOp.BAND), ArgumentTypeError, "needs an integer tensor"),
        (lambda t: dist.all_reduce(t.long(), op=dist.ReduceOp.AVG), ArgumentTypeError, "use ReduceOp.SUM"),
        (lambda t: dist.all_reduce(t.numpy()), ArgumentTypeError, "expected a Tensor, got ndarray"),
        (lambda t: dist.all_gather([t, t], t), ArgumentError, "list of world_size=1 tensors, got 2"),
        (lambda t: dist.all_gather([ds.zeros(3)], t), ArgumentError, r"tensor_list\[0\] is \(3,\)"),
        (lambda t: dist.broadcast(t, src=1), ArgumentError, r"root must be a rank in \[0, 1\), got 1"),
        (lambda t: dist.barrier(async_op=True), dist.DistributedError, "async_op=True is not supported"),
        (lambda t: dist.new_group([0]), dist.DistributedError, "subgroups are not supported"),
    ],
)
def test_what_cannot_be_done_says_so(no_group: None, call: Callable[[Any], Any], error: type, message: str) -> None:
    dist.init_process_group("gloo")
    with pytest.raises(error, match=message):
        call(ds.tensor([1.0, 2.0]))
    dist.barrier(group=dist.group.WORLD)  # the only group there is: accepted


class _TwoRankComm(_SelfComm):
    """Rank 0 of two whose partner contributes ``other``: the collectives computed here in one process."""

    size = 2

    def __init__(self, other: np.ndarray) -> None:
        self.other = other

    def allreduce(self, buf: np.ndarray, op: str) -> None:
        both = np.stack([buf.copy(), self.other.reshape(-1).astype(buf.dtype)])
        buf[...] = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[op](both, axis=0)


@pytest.mark.host_only  # the MPI collectives work on host arrays: what a fake second rank sends is one
def test_all_reduce_writes_into_a_strided_or_half_precision_tensor(
    no_group: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = np.array([4.0, -1.0], dtype=np.float32)
    monkeypatch.setattr(world, "_world", World(rank=0, world_size=2, backend="fake", comm=_TwoRankComm(other)))
    base = ds.tensor([[1.0, 9.0], [2.0, 9.0]])
    column = base[:, 0]  # not contiguous: reduced in a copy, written back through the view
    dist.all_reduce(column, op=dist.ReduceOp.AVG)
    np.testing.assert_array_equal(base.numpy(), [[2.5, 9.0], [0.5, 9.0]])
    half = ds.tensor([1.0, 2.0], dtype=ds.float16)
    dist.all_reduce(half, op=dist.ReduceOp.MAX)
    assert half.dtype == ds.float16
    np.testing.assert_array_equal(half.numpy(), np.array([4.0, 2.0], dtype=np.float16))
    t = ds.tensor([1.0, 2.0])
    dist.reduce(t, dst=1)  # not this rank's: left as it was
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


# ---------------------------------------------------------------------- under mpiexec


@pytest.mark.slow
def test_the_collectives_under_mpiexec_match_numpy(run_torch_worker: Callable[..., Any]) -> None:
    pytest.importorskip("torch")
    sys.path.insert(0, str(WORKER.parent))
    try:
        from mpi_worker_torch import rank_values
    finally:
        sys.path.remove(str(WORKER.parent))
    launch = run_torch_worker("torch_collectives", env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    assert launch.returncode == 0, launch.output
    values = [rank_values(0), rank_values(1)]
    results = [dict(np.load(launch.out_dir / f"rank{r}.npz")) for r in range(2)]

    def combined(key: str, op: str) -> np.ndarray:
        a, b = (v[key] for v in values)
        if key == "f16":  # combined in float32, rounded back
            a, b = a.astype(np.float32), b.astype(np.float32)
        out = {
            "SUM": lambda: a + b,
            "AVG": lambda: (a + b) / a.dtype.type(2),
            "PRODUCT": lambda: a * b,
            "MIN": lambda: np.minimum(a, b),
            "MAX": lambda: np.maximum(a, b),
            "BAND": lambda: a & b,
            "BOR": lambda: a | b,
            "BXOR": lambda: a ^ b,
        }[op]()
        return out.astype(values[0][key].dtype)

    for rank, got in enumerate(results):
        for op in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
            for key in ("f32", "f64", "f16"):
                np.testing.assert_array_equal(got[f"all_reduce/{op}/{key}"], combined(key, op), err_msg=f"{op} {key}")
        for op in ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"):
            np.testing.assert_array_equal(got[f"all_reduce/{op}/i64"], combined("i64", op), err_msg=op)
        expected_reduce = np.maximum(values[0]["f64"], values[1]["f64"]) if rank == 1 else values[rank]["f64"]
        np.testing.assert_array_equal(got["reduce/MAX/f64"], expected_reduce)
        np.testing.assert_array_equal(got["broadcast/f32"], values[1]["f32"])
        for r in range(2):
            np.testing.assert_array_equal(got[f"all_gather/{r}"], values[r]["f32"])
            assert int(got[f"all_gather_object/{r}/rank"]) == r
            np.testing.assert_array_equal(got[f"all_gather_object/{r}/values"], values[r]["i64"])
        assert int(got["broadcast_object_list/1"]) == 10
        assert (launch.out_dir / f"text{rank}.txt").read_text() == "from rank 1|mpi"
