"""Collectives: 2-process training equals 1-process training with the double batch; world-of-one
and simulated-peer checks of packing, scaling and the None-gradient rule."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope.distributed import DistributedError, World
from downslope.distributed.world import _SelfComm

RTOL = 1e-5  # float32


def _close(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-6 * scale, err_msg=what)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_with_batch_b_match_one_process_with_batch_2b(
    optimizer: str, two_process_results: list[dict[str, np.ndarray]], worker: ModuleType
) -> None:
    reference = worker.reference_training(optimizer, batch=2 * worker.PER_RANK_BATCH)
    for key, ref in reference.items():
        rank0 = two_process_results[0][f"{optimizer}/{key}"]
        np.testing.assert_array_equal(rank0, two_process_results[1][f"{optimizer}/{key}"], f"ranks drifted: {key}")
        assert rank0.dtype == np.float32
        _close(rank0, ref, f"{optimizer} {key}")
    # The comparison can fail: one process with batch B (not 2B) ends somewhere else.
    other = worker.reference_training(optimizer, batch=worker.PER_RANK_BATCH)
    assert any(
        not np.allclose(two_process_results[0][f"{optimizer}/{k}"], v, rtol=RTOL, atol=1e-6) for k, v in other.items()
    )


def test_small_buckets_give_the_same_result(two_process_results: list[dict[str, np.ndarray]]) -> None:
    keys = [k for k in two_process_results[0] if k.startswith("sgd/")]
    for key in keys:
        bucketed = two_process_results[0]["bucketed_" + key]
        np.testing.assert_array_equal(bucketed, two_process_results[0][key])


def test_optimizer_state_broadcast_gives_rank_1_the_moments_of_rank_0(
    two_process_results: list[dict[str, np.ndarray]],
) -> None:
    keys = [k for k in two_process_results[0] if k.startswith("optstate/")]
    assert any(k.endswith("exp_avg_sq") for k in keys), keys
    for key in keys:
        value = two_process_results[0][key]
        np.testing.assert_array_equal(two_process_results[1][key], value, key)
        if key.endswith(("exp_avg", "exp_avg_sq")):
            assert np.abs(value).sum() > 0, f"{key}: rank 0 took steps, so its moments are not zero"


def test_metrics_are_reduced_as_sum_over_count(two_process_results: list[dict[str, np.ndarray]]) -> None:
    # rank r reports a loss sum of 3(r+1) over r+2 samples: (3 + 6) / (2 + 3)
    for r in range(2):
        assert float(two_process_results[r]["metrics/loss"]) == pytest.approx(9 / 5)


# ---------------------------------------------------------------- one process, simulated peers
class _TwinComm(_SelfComm):
    """A peer that holds exactly what this rank holds: every sum doubles."""

    size = 2

    def allreduce_sum(self, buf: np.ndarray) -> None:
        buf *= 2

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, data]


class _SilentComm(_TwinComm):
    """A peer whose contribution is all zeros (it had no gradients at all)."""

    def allreduce_sum(self, buf: np.ndarray) -> None:
        pass


def _world(comm: Any) -> World:
    return World(rank=0, world_size=2, backend="fake", comm=comm)


@pytest.mark.host_only  # the gradients are packed into host buffers for MPI (DDP refuses others)
def test_identical_peer_leaves_gradients_unchanged_and_unused_params_without_grad() -> None:
    used = ds.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    unused = ds.zeros(3, requires_grad=True)
    (used * used).sum().backward()
    reducer = dist.GradientAllreducer([used, unused], world=_world(_TwinComm()))
    reducer.reduce()
    np.testing.assert_array_equal(used.grad.numpy(), [[2.0, 4.0], [6.0, 8.0]])
    assert used.grad.dtype == np.float32
    assert unused.grad is None
    assert reducer.calls == 1 and reducer.num_buckets == 1


@pytest.mark.host_only  # the gradients are packed into host buffers for MPI (DDP refuses others)
def test_zero_peer_halves_gradients() -> None:
    w = ds.tensor([1.0, -3.0], requires_grad=True)
    (w * 4.0).sum().backward()
    dist.allreduce_gradients([w], world=_world(_SilentComm()))
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_buckets_split_the_flat_buffer() -> None:
    params = [ds.zeros(10, requires_grad=True), ds.zeros(7, requires_grad=True)]
    # 17 values + 2 flags = 19 float32 in 16-byte (4-value) buckets
    assert dist.GradientAllreducer(params, world=_world(_TwinComm()), bucket_bytes=16).num_buckets == 5


def test_a_world_of_one_changes_nothing() -> None:
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    (w * 3.0).sum().backward()
    dist.allreduce_gradients([w])
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(dist.allreduce_sum([1.5, 2.0]), [1.5, 2.0])
    state = {"step": 4, "exp_avg": np.arange(3.0)}
    assert dist.broadcast_object(state) is state


def test_reducer_refuses_tensors_without_grad() -> None:
    with pytest.raises(ValueError, match="none of the given tensors requires grad"):
        dist.GradientAllreducer([ds.zeros(2)])


def test_reduce_metrics_weighs_by_count_and_refuses_zero() -> None:
    assert dist.reduce_metrics({"loss": 3.0}, 4, world=_world(_TwinComm())) == {"loss": 0.75}
    with pytest.raises(ValueError, match="total count"):
        dist.reduce_metrics({"loss": 0.0}, 0)


class _OtherMetricsComm(_TwinComm):
    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, b'["accuracy", "loss"]']


def test_reduce_metrics_refuses_different_names() -> None:
    with pytest.raises(DistributedError, match=r"rank 1 reports \['accuracy', 'loss'\]"):
        dist.reduce_metrics({"loss": 1.0}, 1, world=_world(_OtherMetricsComm()))


def test_broadcast_optimizer_state_needs_state_dict() -> None:
    with pytest.raises(TypeError, match="state_dict"):
        dist.broadcast_optimizer_state(object())


def test_bad_root_is_refused() -> None:
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\), got 1"):
        dist.broadcast_parameters([ds.zeros(1, requires_grad=True)], root=1)


# ---------------------------------------------------------------- model mismatch messages
class _PeerSignatureComm(_TwinComm):
    def __init__(self, peer: bytes) -> None:
        self.peer = peer

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, self.peer]


def test_mismatch_names_the_first_difference_and_the_ranks() -> None:
    mine = {"fc.weight": ds.zeros(4, 3), "fc.bias": ds.zeros(4)}
    peer = b'[["fc.weight", [4, 3], "float32", false], ["fc.bias", [4], "float64", false]]'
    with pytest.raises(DistributedError) as err:
        dist.check_same_model(mine, _world(_PeerSignatureComm(peer)))
    message = str(err.value)
    assert "tensor #1 is 'fc.bias' with shape (4,) float32 (frozen) on rank 0" in message
    assert "'fc.bias' with shape (4,) float64 (frozen) on rank 1" in message


def test_a_layer_frozen_on_one_rank_alone_is_a_mismatch() -> None:
    mine = {"fc.weight": ds.zeros(4, 3, requires_grad=True)}
    peer = b'[["fc.weight", [4, 3], "float32", false]]'
    with pytest.raises(
        DistributedError, match=r"'fc.weight' with shape \(4, 3\) float32 on rank 0 but .*\(frozen\) on rank 1"
    ):
        dist.check_same_model(mine, _world(_PeerSignatureComm(peer)))


def test_mismatch_in_the_number_of_tensors() -> None:
    mine = [ds.zeros(2)]
    peer = b'[["param[0]", [2], "float32", false], ["param[1]", [5], "float32", false]]'
    with pytest.raises(DistributedError, match=r"nothing \(fewer tensors\) on rank 0 but 'param\[1\]'.*1 tensors"):
        dist.check_same_model(mine, _world(_PeerSignatureComm(peer)))


def test_launched_mismatch_aborts_with_the_message(run_mpi: Any) -> None:
    launch = run_mpi("mismatch", n=2)
    assert launch.returncode != 0
    assert "the model differs across ranks" in launch.output, launch.output
    assert "'0.weight' with shape (16, 5) float32 on rank 0" in launch.output
    assert "'0.weight' with shape (17, 5) float32 on rank 1" in launch.output
