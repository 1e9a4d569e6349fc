"""nn.SyncBatchNorm: in one process it is PyTorch's batch norm (values, gradients, running statistics);
convert_sync_batchnorm gives torch's structure and shares the converted layers' tensors; synchronized
over a group of ranks (here threads of one process, through a stand-in for the process group's sum) it
normalizes as one BatchNorm over the concatenated batches. The MPI run of the same comparison is in
tests/distributed/test_sync_batchnorm_mpi.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.devices import to_host
from downslope.errors import ArgumentError, StateError
from downslope.nn import sync_batchnorm

torch = pytest.importorskip("torch")


def _np(t: Any) -> np.ndarray:
    return np.asarray(to_host(t.array if isinstance(t, ds.Tensor) else t))


# ------------------------------------------------------------------ one process: PyTorch's batch norm
@pytest.mark.parametrize("shape", [(6, 3), (5, 3, 4), (4, 3, 3, 2), (3, 3, 2, 2, 2)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_in_one_process_it_is_torchs_batch_norm(shape: tuple[int, ...], momentum: float | None) -> None:
    rng = np.random.default_rng(0)
    ours, ref = nn.SyncBatchNorm(3, momentum=momentum).double(), torch.nn.SyncBatchNorm(3, momentum=momentum).double()
    with torch.no_grad():
        weight, bias = rng.standard_normal(3), rng.standard_normal(3)
        ref.weight.copy_(torch.tensor(weight))
        ref.bias.copy_(torch.tensor(bias))
    ours.weight.data = ds.tensor(weight, dtype=ds.float64)
    ours.bias.data = ds.tensor(bias, dtype=ds.float64)
    for step in range(3):  # running statistics over several steps
        x = rng.standard_normal(shape) * 2 + step
        g = rng.standard_normal(shape)
        xo, xt = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref_out = ours(xo), ref(xt)
        (out * ds.tensor(g, dtype=ds.float64)).sum().backward()
        (ref_out * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(_np(out), ref_out.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(_np(xo.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for name in ("weight", "bias"):
            np.testing.assert_allclose(
                _np(getattr(ours, name).grad), getattr(ref, name).grad.numpy(), rtol=1e-10, atol=1e-12
            )
        ours.zero_grad()
        ref.zero_grad()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(_np(getattr(ours, name)), getattr(ref, name).numpy(), rtol=1e-12, err_msg=name)
    ours.eval()
    ref.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(
        _np(ours(ds.tensor(x, dtype=ds.float64))), ref(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-12
    )


def test_it_takes_inputs_of_two_dims_or_more_only() -> None:
    with pytest.raises(ArgumentError, match=r"SyncBatchNorm\(3\): expected at least 2-D input \(N, C, \.\.\.\), got"):
        nn.SyncBatchNorm(3)(ds.ones(3))


# ------------------------------------------------------------------ convert_sync_batchnorm
def _nested(lib: Any) -> Any:
    n = lib.nn

    class Block(n.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = n.Conv2d(3, 4, 3)
            self.bn = n.BatchNorm2d(4)
            self.inner = n.Sequential(n.Flatten(), n.Linear(4 * 4 * 4, 5), n.BatchNorm1d(5, affine=False))

        def forward(self, x: Any) -> Any:
            return self.inner(self.bn(self.conv(x)))

    return n.Sequential(Block(), n.ReLU(), n.BatchNorm1d(5, momentum=None, track_running_stats=False))


def test_convert_sync_batchnorm_gives_torchs_structure_and_keeps_the_layers_tensors() -> None:
    ours, ref = _nested(ds), _nested(torch)
    ours[0].bn.weight.requires_grad_(False)
    ours[0].bn.eval()
    ours[0](ds.randn(2, 3, 6, 6))  # a step of the other layers: running statistics and counts not at their start
    before = {name: m for name, m in ours.named_modules()}
    tensors = {k: v for k, v in ours[0].bn.state_dict(keep_vars=True).items()}
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(ours)
    ref_converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(ref)
    assert converted is ours  # converted in place, as torch's
    kinds = [(name, type(m).__name__) for name, m in converted.named_modules()]
    assert kinds == [(name, type(m).__name__) for name, m in ref_converted.named_modules()]
    assert [name for name, kind in kinds if kind == "SyncBatchNorm"] == ["0.bn", "0.inner.2", "2"]
    assert list(converted.state_dict()) == list(ref_converted.state_dict())
    bn = converted[0].bn
    assert bn is not before["0.bn"] and not bn.training and converted[0].inner[2].training
    for key, value in bn.state_dict(keep_vars=True).items():
        assert value is tensors[key], key  # the same tensors (an optimizer built before keeps training them)
    assert not bn.weight.requires_grad and bn.bias.requires_grad
    for name in ("0.inner.2", "2"):
        mine, theirs = converted.get_submodule(name), ref_converted.get_submodule(name)
        for attr in ("num_features", "eps", "momentum", "affine", "track_running_stats"):
            assert getattr(mine, attr) == getattr(theirs, attr), (name, attr)


def test_convert_sync_batchnorm_of_a_batch_norm_returns_a_new_layer_with_its_process_group() -> None:
    layer = nn.BatchNorm3d(2).double()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(layer, process_group="group")
    assert type(converted) is nn.SyncBatchNorm and converted.process_group == "group"
    assert converted.running_var is layer.running_var and converted.weight.dtype == ds.float64


# ------------------------------------------------------------------ synchronized: ranks as threads
class ThreadGroup:
    """A process group whose ranks are threads of this process: each sum waits for every rank."""

    def __init__(self, ranks: int) -> None:
        self.ranks = ranks
        self.barrier = threading.Barrier(ranks, timeout=30)
        self.deposited: dict[int, np.ndarray] = {}
        self.calls = 0

    def size(self, process_group: Any) -> int:
        return self.ranks

    def allreduce_sum(self, buf: np.ndarray, process_group: Any) -> None:
        assert type(buf) is np.ndarray and buf.dtype == np.float64
        self.deposited[threading.get_ident()] = buf.copy()
        self.barrier.wait()
        total = sum(self.deposited.values())
        self.barrier.wait()  # every rank has read the deposits before any rank deposits again
        buf[...] = total
        self.calls += 1


@pytest.fixture
def threads_as_ranks() -> Iterator[Callable[[int], ThreadGroup]]:
    previous = sync_batchnorm._group_sum

    def install(ranks: int) -> ThreadGroup:
        group = ThreadGroup(ranks)
        sync_batchnorm.register_process_group_sum(group)
        return group

    yield install
    sync_batchnorm.register_process_group_sum(previous)


def _run_ranks(work: Callable[[int], Any], ranks: int) -> list[Any]:
    results: list[Any] = [None] * ranks
    errors: list[BaseException] = []

    def run(rank: int) -> None:
        try:
            results[rank] = work(rank)
        except BaseException as exc:  # noqa: BLE001 (reported by the test below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize(
    ("shapes", "momentum"),
    [([(5, 3), (7, 3)], 0.1), ([(2, 3, 4, 3), (3, 3, 4, 3)], None), ([(4, 3, 5), (0, 3, 5), (3, 3, 5)], 0.3)],
)
def test_synchronized_ranks_normalize_as_one_batch_norm_of_the_joined_batches(
    threads_as_ranks: Callable[[int], ThreadGroup], shapes: list[tuple[int, ...]], momentum: float | None
) -> None:
    """Uneven batches (an empty one too): the statistics are those of all the rows together."""
    rng = np.random.default_rng(1)
    ranks = len(shapes)
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    steps = [[(rng.standard_normal(s) * 3 + 1, rng.standard_normal(s)) for s in shapes] for _ in range(2)]
    group = threads_as_ranks(ranks)

    layers = [nn.SyncBatchNorm(3, momentum=momentum).double() for _ in range(ranks)]
    for layer in layers:
        layer.weight.data = ds.tensor(weight, dtype=ds.float64)
        layer.bias.data = ds.tensor(bias, dtype=ds.float64)

    def work(rank: int) -> list[tuple[np.ndarray, ...]]:
        seen = []
        for step in steps:
            x, g = step[rank]
            xo = ds.tensor(x, dtype=ds.float64, requires_grad=True)
            out = layers[rank](xo)
            (out * ds.tensor(g, dtype=ds.float64)).sum().backward()
            seen.append((_np(out), _np(xo.grad), _np(layers[rank].weight.grad), _np(layers[rank].bias.grad)))
            layers[rank].zero_grad()
        return seen

    results = _run_ranks(work, ranks)
    assert group.calls == ranks * 2 * 2  # per step: one sum in forward, one in backward, on every rank

    ref = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(weight))
        ref.bias.copy_(torch.tensor(bias))
    cuts = np.cumsum([s[0] for s in shapes])[:-1]
    for i, step in enumerate(steps):
        joined = np.concatenate([x for x, _ in step])
        xt = torch.tensor(joined.reshape(joined.shape[0], 3, -1) if joined.ndim > 2 else joined, requires_grad=True)
        out = ref(xt)
        (out * torch.tensor(np.concatenate([g for _, g in step]).reshape(out.shape))).sum().backward()
        want_out = np.split(out.detach().numpy().reshape(joined.shape), cuts)
        want_gx = np.split(xt.grad.numpy().reshape(joined.shape), cuts)
        for rank in range(ranks):
            got_out, got_gx, _, _ = results[rank][i]
            np.testing.assert_allclose(got_out, want_out[rank], rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(got_gx, want_gx[rank], rtol=1e-10, atol=1e-10)
        # the parameters' gradients stay each rank's own (the data-parallel optimizer sums/averages them)
        for k, grad in ((2, ref.weight.grad), (3, ref.bias.grad)):
            np.testing.assert_allclose(sum(results[r][i][k] for r in range(ranks)), grad.numpy(), rtol=1e-10)
        ref.zero_grad()
    for layer in layers:  # the same global running statistics on every rank
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(_np(getattr(layer, name)), getattr(ref, name).numpy(), rtol=1e-10, err_msg=name)


def test_synchronized_only_in_training(threads_as_ranks: Callable[[int], ThreadGroup]) -> None:
    group = threads_as_ranks(2)
    layer = nn.SyncBatchNorm(2).eval()
    ref = torch.nn.BatchNorm1d(2).eval()
    x = np.random.default_rng(2).standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(_np(layer(ds.tensor(x))), ref(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    assert group.calls == 0


def test_a_single_value_over_all_ranks_is_refused_on_every_rank(threads_as_ranks: Callable[[int], ThreadGroup]) -> None:
    threads_as_ranks(2)
    layers = [nn.SyncBatchNorm(2) for _ in range(2)]
    failures: list[str] = []

    def work(rank: int) -> None:
        try:
            layers[rank](ds.ones((1 - rank, 2)))  # one row on rank 0, none on rank 1
        except ArgumentError as exc:
            failures.append(str(exc))

    _run_ranks(work, 2)
    assert len(failures) == 2 and "expected more than 1 value per channel over all ranks" in failures[0]


def test_double_backward_through_a_synchronized_layer_is_refused(
    threads_as_ranks: Callable[[int], ThreadGroup],
) -> None:
    threads_as_ranks(2)
    layers = [nn.SyncBatchNorm(2).double() for _ in range(2)]
    failures: list[str] = []

    def work(rank: int) -> None:
        x = ds.randn(4, 2, dtype=ds.float64, requires_grad=True)
        out = layers[rank](x)
        try:
            ds.autograd.grad((out**3).sum(), x, create_graph=True)
        except StateError as exc:
            failures.append(str(exc))

    _run_ranks(work, 2)
    assert len(failures) == 2 and "double backward" in failures[0]
