"""Data-parallel gradient descent over MPI: W processes, each with a shard of every batch.

Each rank holds a full copy of the model. Per step, every rank computes the gradient of its own
B samples, the gradients are averaged over ranks (one Allreduce over a flat buffer), and every rank
applies the same update, so the copies stay identical. W ranks with batch B take the same steps as
one process with batch W*B. See docs/distributed.md.

    mpiexec -n 4 python train.py        # or: srun -n 4 python train.py

    from downslope import distributed as dist
    history = dist.fit(model, loss_fn, opt, (x, y), batch_size=32, epochs=10)   # ds.fit's arguments

or, by hand:

    world = dist.init()                              # rank, world_size, is_main
    dist.broadcast_parameters(model)                 # same start everywhere (checks the model first)
    loader = dist.DistributedDataLoader((x, y), batch_size=32, seed=0)
    for xb, yb in loader:
        opt.zero_grad(); loss_fn(model(xb), yb).backward()
        dist.allreduce_gradients(model)              # average .grad over ranks (before any clipping)
        opt.step()

A model with buffers (BatchNorm) also needs ``dist.sync_buffers_before_forward(model)`` to keep
rank 0's running statistics on every rank, as PyTorch's DDP does (``dist.fit`` installs it).

mpi4py is imported only under an MPI launcher (never by ``import downslope``); a plain ``python``
process is a world of one and every function here is then a no-op.

``torch.distributed``'s queries, for code that asks them before doing anything distributed:
``is_available()`` (True: this package is always there), ``is_initialized()`` (whether
:func:`init` has made the process group), and ``get_rank()`` / ``get_world_size()``, which, as
torch's, raise until it has. Its core calls run over the same MPI job (process_group.py):
``init_process_group`` (backend and rendezvous arguments accepted, not needed), ``all_reduce``,
``reduce``, ``broadcast``, ``all_gather``, ``all_gather_object``, ``broadcast_object_list``, ``barrier``,
``ReduceOp``, ``get_backend`` and ``destroy_process_group``: blocking, over every rank, on host tensors;
torch_calls.py has the rest that scripts use (gather, scatter, all_gather_into_tensor, reduce_scatter_tensor,
all_to_all_single, all_to_all, send/recv, monitored_barrier, Backend, GroupMember, the launcher and group
queries), object_calls.py the other object calls (gather_object, scatter_object_list, send_object_list,
recv_object_list), and ``distributed.nn`` the differentiable collectives (all_reduce, all_gather, broadcast...).
``nn.parallel.DistributedDataParallel`` runs over the same group (ddp.py installs its collectives into nn).
"""

from ..launchers import IndependentCopiesWarning
from . import (
    ddp,  # noqa: F401  (importing it installs the collectives nn.parallel.DistributedDataParallel uses)
    sync_batchnorm,  # noqa: F401  (importing it installs the sum nn.SyncBatchNorm synchronizes through)
)
from .agreement import check_same_config, make_parameters_identical
from .collectives import (
    DEFAULT_BUCKET_BYTES,
    GradientAllreducer,
    allreduce_gradients,
    allreduce_sum,
    broadcast_buffers,
    broadcast_object,
    broadcast_optimizer_state,
    broadcast_parameters,
    check_same_model,
    reduce_metrics,
    sync_buffers_before_forward,
)
from .object_calls import gather_object, recv_object_list, scatter_object_list, send_object_list
from .optimizer import DistributedOptimizer
from .process_group import (
    ReduceOp,
    all_gather,
    all_gather_object,
    all_reduce,
    broadcast,
    broadcast_object_list,
    destroy_process_group,
    get_backend,
    group,
    init_process_group,
    new_group,
    reduce,
)
from .sampler import DistributedDataLoader, DistributedSampler, epoch_permutation
from .torch_calls import (
    Backend,
    GroupMember,
    P2POp,
    all_gather_into_tensor,
    all_to_all,
    all_to_all_single,
    batch_isend_irecv,
    gather,
    get_global_rank,
    get_node_local_rank,
    get_process_group_ranks,
    irecv,
    is_gloo_available,
    is_mpi_available,
    is_nccl_available,
    is_torchelastic_launched,
    isend,
    monitored_barrier,
    recv,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
    send,
)
from .training import LinearScalingRule, fit, linear_scaling_factor
from .world import (
    CollectiveMismatchError,
    DisagreementError,
    DistributedError,
    UnsendableObjectError,
    World,
    barrier,
    end_job_on_error,
    get_world,
    init,
    initialized_world,
    install_fail_fast,
    is_main,
    launched_size,
    rank,
    refuse_multi_process,
    world_size,
)


def is_available() -> bool:
    """``torch.distributed.is_available()``: True, as data parallelism over MPI is always part of
    downslope (a plain process is a world of one; several processes need mpi4py and a launcher).

    Example:
        >>> from downslope import distributed as dist
        >>> dist.is_available()
        True
    """
    return True


def is_initialized() -> bool:
    """``torch.distributed.is_initialized()``: whether :func:`init` (or a function that calls it, such
    as :func:`fit`) has made this process's group.
    """
    from . import world

    return world._world is not None


def get_rank(group: object = None) -> int:
    """``torch.distributed.get_rank()``: this process's rank; raises, as torch's, before :func:`init`
    (:func:`rank` answers 0 then, making a world of one)."""
    return initialized_world("get_rank").rank


def get_world_size(group: object = None) -> int:
    """``torch.distributed.get_world_size()``: the number of processes; raises, as torch's, before
    :func:`init` (:func:`world_size` answers 1 then, making a world of one)."""
    return initialized_world("get_world_size").world_size


__all__ = [
    "is_available", "is_initialized", "get_rank", "get_world_size",
    "init", "get_world", "World", "rank", "world_size", "is_main", "barrier", "launched_size",
    "install_fail_fast", "end_job_on_error", "refuse_multi_process", "DistributedError",
    "DisagreementError", "check_same_model",
    "check_same_config", "make_parameters_identical", "broadcast_parameters",
    "broadcast_optimizer_state", "broadcast_object", "allreduce_gradients", "GradientAllreducer",
    "allreduce_sum", "reduce_metrics", "DEFAULT_BUCKET_BYTES", "DistributedSampler",
    "DistributedDataLoader", "epoch_permutation", "DistributedOptimizer", "fit", "LinearScalingRule",
    "linear_scaling_factor", "broadcast_buffers", "sync_buffers_before_forward", "ReduceOp", "group", "init_process_group", "destroy_process_group", "get_backend",
    "all_reduce", "reduce", "broadcast", "all_gather", "all_gather_object", "broadcast_object_list", "new_group",
    "gather", "scatter", "all_gather_into_tensor", "reduce_scatter_tensor", "reduce_scatter", "all_to_all_single",
    "send", "recv", "isend", "irecv", "monitored_barrier", "is_nccl_available", "is_gloo_available",
    "is_mpi_available", "is_torchelastic_launched", "get_node_local_rank", "all_to_all", "P2POp",
    "batch_isend_irecv", "Backend", "GroupMember", "get_global_rank", "get_process_group_ranks", "gather_object",
    "scatter_object_list", "send_object_list", "recv_object_list", "CollectiveMismatchError",
    "UnsendableObjectError", "IndependentCopiesWarning",
]  # fmt: skip


def __getattr__(name: str) -> object:
    # torch.distributed's submodules and names left out on purpose (torch.distributed.elastic) say why
    from .._unsupported import missing_module_attribute

    missing_module_attribute(name, "torch.distributed")
