"""torch.distributed's gather/scatter/reduce_scatter/all_to_all/send/recv, the launcher queries,
distributed.nn.all_gather, cuda.set_device and the refusals (torch.distributed.elastic, torch.multiprocessing):
in a world of one here, and under ``mpiexec -n 2`` against torch's gloo on the same inputs."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope.distributed import process_group, world
from downslope.distributed.nn import functional as dist_functional
from downslope.errors import ArgumentError, ArgumentTypeError, DownslopeError, UninitializedError

WORKER = Path(__file__).with_name("mpi_worker_torch_calls.py")


@pytest.fixture
def group_of_one(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setattr(process_group, "_initialized_here", False)
    dist.init_process_group("gloo")
    yield
    dist.destroy_process_group()


def test_a_world_of_one_copies_as_torch_does(group_of_one: None) -> None:
    x = ds.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = [ds.zeros(2, 2)]
    dist.gather(x, out, dst=0)
    np.testing.assert_array_equal(out[0].numpy(), x.numpy())
    got = ds.zeros(2, 2)
    dist.scatter(got, [x], src=0)
    np.testing.assert_array_equal(got.numpy(), x.numpy())
    flat = ds.zeros(2, 2)
    dist.all_gather_into_tensor(flat, x)
    np.testing.assert_array_equal(flat.numpy(), x.numpy())
    part = ds.zeros(2, 2)
    dist.reduce_scatter_tensor(part, x)
    np.testing.assert_array_equal(part.numpy(), x.numpy())
    dist.reduce_scatter(part, [x * 2])
    np.testing.assert_array_equal(part.numpy(), 2 * x.numpy())
    moved = ds.zeros(2, 2)
    dist.all_to_all_single(moved, x)
    np.testing.assert_array_equal(moved.numpy(), x.numpy())
    dist.monitored_barrier(timeout=None)


def test_the_differentiable_all_gather_in_a_world_of_one(group_of_one: None) -> None:
    x = ds.tensor([1.0, -2.0], requires_grad=True)
    (out,) = dist_functional.all_gather(x)
    (out * out * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 6 * np.array([1.0, -2.0]))
    assert dist.nn.all_gather is dist_functional.all_gather


def test_the_refusals_say_what_to_do(group_of_one: None) -> None:
    x = ds.ones(2)
    with pytest.raises(DownslopeError, match=r"isend: .*use dist.send\(tensor, dst\)"):
        dist.isend(x, dst=0)
    with pytest.raises(DownslopeError, match=r"irecv: .*use dist.recv\(tensor, src\)"):
        dist.irecv(x, src=0)
    with pytest.raises(DownslopeError, match="gather: async_op=True is not supported"):
        dist.gather(x, [ds.zeros(2)], async_op=True)
    with pytest.raises(ArgumentError, match="send: dst=0 is this process's own rank"):
        dist.send(x, dst=0)
    with pytest.raises(ArgumentError, match=r"gather: gather_list: expected a list of world_size=1 tensors, got 2"):
        dist.gather(x, [ds.zeros(2), ds.zeros(2)])
    with pytest.raises(ArgumentError, match=r"all_gather_into_tensor: output_tensor \(3,\) must hold world_size=1"):
        dist.all_gather_into_tensor(ds.zeros(3), x)
    with pytest.raises(ArgumentError, match="input_split_sizes must be world_size=1"):
        dist.all_to_all_single(ds.zeros(2), x, input_split_sizes=[1])
    with pytest.raises(ArgumentTypeError, match="ReduceOp.AVG needs a floating tensor"):
        dist.reduce_scatter_tensor(ds.zeros(2, dtype=ds.int64), ds.zeros(2, dtype=ds.int64), op=dist.ReduceOp.AVG)


def test_before_init_they_raise_as_torchs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    for call in (
        lambda: dist.gather(ds.ones(2), [ds.zeros(2)]),
        lambda: dist.send(ds.ones(2), dst=1),
        lambda: dist.reduce_scatter_tensor(ds.ones(2), ds.ones(2)),
        lambda: dist_functional.all_gather(ds.ones(2)),
    ):
        with pytest.raises(UninitializedError, match="Default process group has not been initialized"):
            call()


def test_the_queries_answer_as_torchs(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    tdist = torch.distributed
    assert dist.is_nccl_available() is tdist.is_nccl_available() is False  # CPU torch has no NCCL either
    assert dist.is_gloo_available() is tdist.is_gloo_available() is True
    assert isinstance(dist.is_mpi_available(), bool)  # downslope's own answer: whether mpi4py is there
    for env in ({}, {"TORCHELASTIC_RUN_ID": "abc"}, {"LOCAL_RANK": "3"}):
        for name in ("TORCHELASTIC_RUN_ID", "LOCAL_RANK"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert dist.is_torchelastic_launched() == tdist.is_torchelastic_launched()
        for fallback in (None, 5):
            try:
                expected: object = tdist.get_node_local_rank(fallback_rank=fallback)
            except RuntimeError:
                expected = RuntimeError
            if expected is RuntimeError:
                with pytest.raises(DownslopeError, match="LOCAL_RANK is not in the environment"):
                    dist.get_node_local_rank(fallback_rank=fallback)
            else:
                assert dist.get_node_local_rank(fallback_rank=fallback) == expected


def test_elastic_and_multiprocessing_are_refused_naming_mpiexec() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"torch.distributed.elastic\) is not available: .*mpiexec -n W"):
        importlib.import_module("downslope.distributed.elastic")
    with pytest.raises(AttributeError, match="mpiexec -n W"):
        dist.elastic  # noqa: B018
    with pytest.raises(ModuleNotFoundError, match=r"mpiexec -n W python script.py.*DistributedDataParallel.*mp.spawn"):
        importlib.import_module("downslope.multiprocessing")


@pytest.mark.skipif(ds.cuda.is_available(), reason="checks the answer on a machine without a GPU")
def test_cuda_set_device_without_a_gpu_lets_init_distributed_mode_run() -> None:
    for index in (0, 3, "cuda:1", ds.device("cuda", 0), -1):
        ds.cuda.set_device(index)  # MAE/DeiT/DINO's init_distributed_mode: nothing to select on the CPU
    with pytest.raises(ArgumentError, match="cuda.set_device: expected a CUDA device, got 'cpu'"):
        ds.cuda.set_device("cpu")
    with pytest.raises(ArgumentTypeError, match="cuda.set_device: expected a GPU index"):
        ds.cuda.set_device(1.0)
    with pytest.raises(DownslopeError, match="cuda"):
        ds.ones(2).to("cuda")  # a script that needs the GPU is still told, where it moves a tensor there


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_ranks_give_what_torchs_gloo_gives(mpiexec: list[str], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore::FutureWarning")
    cmd = [*mpiexec, "-n", "2", sys.executable, str(WORKER), str(tmp_path), str(_free_port())]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    for rank in range(2):
        saved = np.load(tmp_path / f"rank{rank}.npz")
        theirs = sorted(k.removeprefix("torch:") for k in saved.files if k.startswith("torch:"))
        ours = sorted(k.removeprefix("ds:") for k in saved.files if k.startswith("ds:"))
        assert ours == theirs and len(ours) >= 10
        for key in ours:
            expected, got = saved[f"torch:{key}"], saved[f"ds:{key}"]
            assert got.shape == expected.shape and got.dtype == expected.dtype, key
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=f"rank {rank}: {key}")


_UNEQUAL_PARTS = """
import downslope as ds
from downslope import distributed as dist
from downslope.errors import DownslopeError
dist.init_process_group("gloo")
rank = dist.get_rank()
mine = ds.zeros(2 + rank)  # rank 1 passes one element more
for what, call in [
    ("gather", lambda: dist.gather(mine, [ds.zeros(2), ds.zeros(2)] if rank == 0 else None, dst=0)),
    ("scatter", lambda: dist.scatter(mine, [ds.ones(2), ds.ones(2)] if rank == 0 else None, src=0)),
]:
    try:
        call()
    except DownslopeError as exc:
        print(f"rank {rank} {what} refused: {exc}", flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_unequal_parts_are_refused_on_every_rank_instead_of_failing_inside_mpi(
    mpiexec: list[str], tmp_path: Path
) -> None:
    script = tmp_path / "unequal.py"
    script.write_text(_UNEQUAL_PARTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    done = subprocess.run(
        [*mpiexec, "-n", "2", sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    for what, root in (("gather", "dst"), ("scatter", "src")):  # each rank names both calls
        for rank in range(2):
            said = (
                f"rank {rank} {what} refused: {what}: the ranks' calls do not match: rank 0 called {what} with a (2,) "
                f"float32 tensor, {root}=0, but rank 1 called {what} with a (3,) float32 tensor, {root}=0"
            )
            assert said in done.stdout, done.stdout
