"""nn.parallel.DistributedDataParallel over downslope.distributed's process group.

In this process: the hook logic against a fake rank 1 of 2 (one average per backward, after every gradient
is final; none under no_sync; unused parameters; the error instead of a hang), the constructor's checks
and broadcasts, and torch's own DDP (gloo, a world of one) for the wrapper's names. Under ``mpiexec -n 2``
(slow): two ranks with half a batch each train as one process on the whole batch and as PyTorch's DDP
(gloo) on the same halves, with and without no_sync accumulation; unused parameters and BatchNorm's
buffers as torch's DDP; a model built differently fails on both ranks; and a torchrun-style script with
only its imports changed trains."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn
from downslope.distributed import World, process_group, world
from downslope.distributed.world import _SelfComm
from downslope.errors import ConfigError, StateError, UninitializedError
from downslope.nn.parallel import DistributedDataParallel

HERE = Path(__file__).parent


class _RankOneOfTwo(_SelfComm):
    """Rank 1 of two whose rank 0 holds ``rank0`` (the values a broadcast brings) and sends gradients 3x
    this rank's: the average is twice this rank's gradient, wherever this rank has one."""

    size = 2
    rank = 1

    def __init__(self, rank0: float = 0.5) -> None:
        self.rank0 = rank0
        self.allreduces: list[int] = []
        self.broadcasts: list[int] = []

    def allreduce_sum(self, buf: np.ndarray) -> None:
        self.allreduces.append(buf.size)
        buf *= 4

    def bcast(self, buf: np.ndarray, root: int) -> None:
        assert root == 0
        self.broadcasts.append(buf.size)
        buf[...] = self.rank0

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, data]  # the same model on both ranks


@pytest.fixture
def no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    monkeypatch.setattr(process_group, "_initialized_here", False)


@pytest.fixture
def rank_one(monkeypatch: pytest.MonkeyPatch) -> _RankOneOfTwo:
    comm = _RankOneOfTwo()
    monkeypatch.setattr(world, "_world", World(rank=1, world_size=2, backend="fake", comm=comm))
    return comm


def _local_grads(model: nn.Module, *xs: ds.Tensor) -> dict[str, np.ndarray]:
    """The gradients one process gets from the sum of ``model(x).sum()`` over ``xs`` (no DDP)."""
    for p in model.parameters():
        p.grad = None
    for x in xs:
        (model(x) ** 2).sum().backward()
    return {name: p.grad.numpy().copy() for name, p in model.named_parameters() if p.grad is not None}


def _mlp() -> nn.Module:
    ds.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


@pytest.mark.host_only  # MPI's collectives pack host arrays
def test_one_average_per_backward_after_every_gradient_is_final(rank_one: _RankOneOfTwo) -> None:
    model = _mlp()
    ddp = DistributedDataParallel(model)
    assert rank_one.broadcasts and all(np.all(p.detach().numpy() == 0.5) for p in model.parameters())  # rank 0's
    x = ds.randn(5, 3, dtype=ds.float64)
    expected = _local_grads(model, x)
    for p in model.parameters():
        p.grad = None
    out = ddp(x)
    y = (out**2).sum() + (model[0].weight ** 2).sum() * 0  # a parameter reached twice: still one average
    y.backward()
    assert len(rank_one.allreduces) == 1
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * expected[name], rtol=1e-12, err_msg=name)


@pytest.mark.host_only
def test_no_sync_accumulates_and_the_next_backward_averages_the_sum(rank_one: _RankOneOfTwo) -> None:
    model = _mlp()
    ddp = DistributedDataParallel(model)
    x1, x2 = ds.randn(4, 3, dtype=ds.float64), ds.randn(4, 3, dtype=ds.float64)
    expected = _local_grads(model, x1, x2)
    for p in model.parameters():
        p.grad = None
    with ddp.no_sync():
        (ddp(x1) ** 2).sum().backward()
    assert rank_one.allreduces == []
    (ddp(x2) ** 2).sum().backward()
    assert len(rank_one.allreduces) == 1
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * expected[name], rtol=1e-12, err_msg=name)
    # the decision is the forward pass's, as torch's: a forward inside no_sync, its backward outside
    with ddp.no_sync():
        out = ddp(x1)
    (out**2).sum().backward()
    assert len(rank_one.allreduces) == 1


class _Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.used(x)


@pytest.mark.host_only
def test_unused_parameters_count_as_zeros_or_raise_at_the_next_forward(rank_one: _RankOneOfTwo) -> None:
    ds.manual_seed(0)
    model = _Branches().double()
    ddp = DistributedDataParallel(model, find_unused_parameters=True)
    x = ds.randn(4, 3, dtype=ds.float64)
    ddp(x).sum().backward()
    assert len(rank_one.allreduces) == 1
    assert model.unused.weight.grad is None  # no rank had one: left None, as torch's DDP
    np.testing.assert_allclose(model.used.bias.grad.numpy(), 2 * np.full(2, 4.0))
    strict = DistributedDataParallel(model)
    rank_one.allreduces.clear()
    strict(x)  # a forward pass without its backward (an evaluation with gradients on) is fine, as torch's
    strict(x).sum().backward()
    assert rank_one.allreduces == []  # 'unused' got no gradient: no average, and no waiting for it
    with pytest.raises(StateError, match=r"finished reduction in the prior iteration.*\['unused.bias', 'unused"):
        strict(x)
    strict(x)  # the error is raised once; the wrapper can be used again (with the model fixed)


@pytest.mark.host_only
def test_buffers_go_out_before_a_forward_pass_when_torchs_ddp_sends_them(rank_one: _RankOneOfTwo) -> None:
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ddp = DistributedDataParallel(model)
    np.testing.assert_array_equal(model[1].running_var.numpy(), 0.5)  # sent at construction with the parameters
    x = ds.randn(4, 2)
    sent = []
    for grad_mode, sync in ((True, True), (True, True), (False, True), (False, True), (True, False), (True, True)):
        before = len(rank_one.broadcasts)
        with ds.set_grad_enabled(grad_mode):
            if sync:
                ddp(x)
            else:
                with ddp.no_sync():
                    ddp(x)
        sent.append(len(rank_one.broadcasts) - before)
    # torch: before every forward pass that follows one run with gradients enabled and synchronized
    assert sent == [1, 1, 1, 0, 0, 0]
    DistributedDataParallel(model, forward_sync_buffers=False)(x)
    rank_one.broadcasts.clear()
    with pytest.warns(FutureWarning, match="broadcast_buffers"):
        quiet = DistributedDataParallel(model, broadcast_buffers=False)
    assert rank_one.broadcasts == [sum(p.numel() for p in model.parameters())]  # the parameters only
    quiet(x)
    quiet(x)
    assert len(rank_one.broadcasts) == 1


@pytest.mark.host_only  # DDP refuses parameters off the host (the collectives pack host arrays)
def test_refusals_say_what_to_do(no_group: None) -> None:
    with pytest.raises(UninitializedError, match="init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))
    dist.init_process_group("gloo")
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="doesn't have any parameter that requires a gradient"):
        DistributedDataParallel(frozen)
    with pytest.raises(RuntimeError, match="doesn't have any parameter that requires a gradient"):
        DistributedDataParallel(nn.ReLU())  # torch raises RuntimeError: `except RuntimeError` catches it here too
    with pytest.raises(ValueError, match="device_ids can only be None or contain a single element"):
        DistributedDataParallel(nn.Linear(2, 2), device_ids=[0, 1])
    with pytest.raises(ConfigError, match="mixed_precision"):
        DistributedDataParallel(nn.Linear(2, 2), mixed_precision=object())
    with pytest.raises(dist.DistributedError, match="subgroups"):
        DistributedDataParallel(nn.Linear(2, 2), process_group=object())
    ddp = DistributedDataParallel(nn.Linear(2, 2), device_ids=[0], output_device=0)  # a GPU script's arguments
    with pytest.raises(ConfigError, match="uneven inputs"):
        ddp.join()
    with ddp.join(enable=False):
        pass
    with pytest.raises(ConfigError, match="communication hooks are not supported"):
        ddp.register_comm_hook(None, lambda state, bucket: None)
    dist.destroy_process_group()


@pytest.mark.host_only  # DDP refuses parameters off the host (the collectives pack host arrays)
def test_names_and_attributes_are_torchs(no_group: None, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import torch.distributed as tdist

    dist.init_process_group("gloo")
    tdist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        theirs = torch.nn.parallel.DistributedDataParallel(torch.nn.Sequential(torch.nn.Linear(3, 2)))
        inner = nn.Sequential(nn.Linear(3, 2))
        ours = DistributedDataParallel(inner)
        assert ours.module is inner
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        assert ours.device_ids is theirs.device_ids is None and ours.dim == theirs.dim == 0
        assert ours.require_backward_grad_sync and theirs.require_backward_grad_sync
        for wrapper in (ours, theirs):  # no attribute forwarding to the module, as torch's
            with pytest.raises(AttributeError):
                wrapper.weight  # noqa: B018
        inner.load_state_dict({k.removeprefix("module."): v.numpy() for k, v in theirs.state_dict().items()})
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
        y, ty = ours(ds.tensor(x)), theirs(torch.tensor(x))
        y.sum().backward()
        ty.sum().backward()
        for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-6, err_msg=name)
    finally:
        tdist.destroy_process_group()
        dist.destroy_process_group()


def test_torchrun_variables_come_from_the_mpi_launcher() -> None:
    env = {"PMI_RANK": "3", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2", "RANK": "3"}
    process_group.export_torchrun_environment(env)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"]) == ("3", "4", "1", "2")
    plain: dict[str, str] = {}
    process_group.export_torchrun_environment(plain)
    assert plain == {}


def _launch(mpiexec: list[str], script: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [*mpiexec, "-n", "2", sys.executable, str(script), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} {args} hung for {timeout} s:\n{exc.stdout}\n{exc.stderr}")


def _worker(mpiexec: list[str], mode: str, out: Path) -> list[dict[str, np.ndarray]]:
    pytest.importorskip("torch")
    done = _launch(mpiexec, HERE / "mpi_worker_ddp.py", mode, str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return [dict(np.load(out / f"{mode}{r}.npz")) for r in range(2)] if mode != "mismatch" else []


@pytest.mark.slow
def test_two_half_batches_train_as_one_process_on_the_whole_batch(mpiexec: list[str], tmp_path: Path) -> None:
    ranks = _worker(mpiexec, "train", tmp_path)
    for kind in ("sgd", "adamw"):
        for rank in range(2):  # rank 1 started elsewhere: the constructor gave it rank 0's parameters
            for name in ("ddp", "acc", "torch"):
                for key in ("0.weight", "2.bias"):
                    np.testing.assert_array_equal(
                        ranks[rank][f"{kind}/{name}/init/{key}"], ranks[0][f"{kind}/{name}/init/{key}"]
                    )
        for step in range(3):
            for key in ("0.weight", "0.bias", "2.weight", "2.bias"):
                reference = ranks[0][f"{kind}/ref/{step}/{key}"]
                for name in ("ddp", "acc", "torch"):
                    ours = [ranks[r][f"{kind}/{name}/{step}/{key}"] for r in range(2)]
                    np.testing.assert_array_equal(ours[0], ours[1], err_msg=f"{kind} {name} step {step} {key}")
                    np.testing.assert_allclose(
                        ours[0], reference, rtol=1e-10, atol=1e-12, err_msg=f"{kind} {name} step {step} {key}"
                    )


@pytest.mark.slow
def test_unused_parameters_as_torchs_ddp_and_the_error_on_every_rank(mpiexec: list[str], tmp_path: Path) -> None:
    ranks = _worker(mpiexec, "unused", tmp_path)
    for rank in range(2):
        for key, ours in ranks[rank].items():
            if "/ours/" in key:
                theirs = ranks[rank][key.replace("/ours/", "/torch/")]
                np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14, err_msg=f"rank {rank} {key}")
        assert np.isnan(ranks[rank]["1/ours/c.weight"])  # unused on every rank: None, as torch's
        message = (tmp_path / f"unused_error{rank}.txt").read_text()
        assert message.startswith("StateError") and "['c.bias', 'c.weight']" in message, message


@pytest.mark.slow
def test_batchnorm_buffers_as_torchs_ddp(mpiexec: list[str], tmp_path: Path) -> None:
    ranks = _worker(mpiexec, "buffers", tmp_path)
    for rank in range(2):
        for key, ours in ranks[rank].items():
            if "/ours/" in key:
                theirs = ranks[rank][key.replace("/ours/", "/torch/")]
                np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14, err_msg=f"rank {rank} {key}")
    for key in ("running_mean", "running_var", "num_batches_tracked"):  # the first evaluation: rank 0's on both
        np.testing.assert_array_equal(ranks[1][f"2/ours/1.{key}"], ranks[0][f"2/ours/1.{key}"])


@pytest.mark.slow
def test_a_model_built_differently_fails_on_every_rank(mpiexec: list[str], tmp_path: Path) -> None:
    _worker(mpiexec, "mismatch", tmp_path)
    for rank in range(2):
        message = (tmp_path / f"mismatch{rank}.txt").read_text()
        assert "'0.weight' with shape (3, 4) float32 on rank 0 but '0.weight' with shape (4, 4)" in message
        assert message.startswith("DisagreementError")


@pytest.mark.slow
def test_a_torchrun_script_with_only_its_imports_changed_trains(mpiexec: list[str], tmp_path: Path) -> None:
    done = _launch(mpiexec, HERE / "ddp_example_train.py", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    checksums = {line.split()[0]: line.split()[-1] for line in lines if "checksum" in line}
    assert set(checksums) == {"[GPU0]", "[GPU1]"} and len(set(checksums.values())) == 1, done.stdout
    assert sum("snapshot saved" in line for line in lines) == 2  # rank 0 only, epochs 0 and 2
    for rank in range(2):
        losses = [float(line.split()[-1]) for line in lines if line.startswith(f"[GPU{rank}] Epoch")]
        assert len(losses) == 4 and losses[-1] < 0.5 * losses[0], done.stdout
    snapshot = ds.load(tmp_path / "snapshot.pt")
    assert snapshot["EPOCHS_RUN"] == 2 and sorted(snapshot["MODEL_STATE"]) == [
        "0.bias", "0.weight", "2.bias", "2.weight"
    ]  # fmt: skip


@pytest.mark.host_only  # DDP refuses parameters off the host (the collectives pack host arrays)
def test_the_docstring_examples_run_as_copied(no_group: None, examples_failing_as_copied: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        modules = ("downslope.nn.parallel", "downslope.distributed.ddp", "downslope.distributed.process_group")
        assert examples_failing_as_copied(*modules) == []


class _Shift(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(ds.zeros(4, dtype=ds.float64))

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return x + self.b  # add's rule hands the same gradient array to x and b


@pytest.mark.host_only
def test_the_average_leaves_an_input_sharing_the_gradient_array_alone(rank_one: _RankOneOfTwo) -> None:
    # the average runs inside backward, before the walk reaches x: written over b's .grad array, it
    # would reach x.grad too (GradientAllreducer(replace_grads=True) writes new arrays)
    ddp = DistributedDataParallel(_Shift())
    x = ds.tensor([1.0, -2.0, 3.0, 0.5], dtype=ds.float64, requires_grad=True)
    (ddp(x) * ds.tensor([1.0, 2.0, 3.0, 4.0], dtype=ds.float64)).sum().backward()
    np.testing.assert_array_equal(ddp.module.b.grad.numpy(), [2.0, 4.0, 6.0, 8.0])  # averaged: twice this rank's
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 3.0, 4.0])  # the input's own, never averaged
