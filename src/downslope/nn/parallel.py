"""PyTorch's ``torch.nn.parallel``: ``DataParallel`` and ``DistributedDataParallel``.

``DataParallel(model)`` is what PyTorch's is on a machine without GPUs: a wrapper whose forward
calls the model (``device_ids`` is ``[]``), whose state_dict keys carry the ``module.`` prefix, and
whose ``.module`` is the model. With CUDA (CuPy), the batch is not split over several GPUs: the
model runs on its own device, the same numbers one GPU gives.

``DistributedDataParallel(model)`` is PyTorch's DDP over ``downslope.distributed``'s process group (the
MPI job: ``init_process_group`` first, under ``mpiexec -n W``): the constructor checks that every rank
holds parameters of the same shapes and broadcasts rank 0's parameters and buffers; a forward pass
broadcasts rank 0's buffers first when torch's does; a backward pass ends with every parameter's
``.grad`` averaged over the ranks (one bucketed Allreduce, run by the post-accumulate-grad hook of the
last parameter to receive its gradient); ``no_sync()`` accumulates locally. That package sits above
``nn`` and is not imported here: it installs the collectives through :func:`register_data_parallel_group`
when it is imported (as it must be, to call ``init_process_group``).

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> model = nn.parallel.DataParallel(nn.Linear(2, 3))
    >>> model(ds.ones(4, 2)).shape, model.device_ids, sorted(model.state_dict())
    (downslope.Size([4, 3]), [], ['module.bias', 'module.weight'])
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..device import cuda
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    ConfigError,
    DeviceError,
    InvalidValueError,
    StateError,
    UninitializedError,
)
from ..graph import is_grad_enabled, no_grad
from ..tensor import Tensor
from .module import Module

__all__ = ["DataParallel", "DistributedDataParallel", "DataParallelGroup", "register_data_parallel_group"]


class DataParallel(Module):
    """Wrap ``module`` as ``torch.nn.DataParallel`` does; the forward calls ``module`` on the whole
    batch (see the module docstring). ``device_ids`` is ``[]`` without a GPU, as in torch; with
    CuPy it lists the GPUs asked for (all of them by default), ``output_device`` the first, and
    the batch is still run on the module's own device.

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> ds.nn.DataParallel(layer).module is layer
        True
    """

    def __init__(
        self, module: Module, device_ids: Sequence[Any] | None = None, output_device: Any = None, dim: int = 0
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise ArgumentTypeError(f"DataParallel: expected an nn.Module, got {type(module).__name__}")
        self.module = module
        if not cuda.is_available():  # torch's CPU-only case: a plain pass-through
            self.device_ids: list[int] = []
            return
        ids = list(range(cuda.device_count())) if device_ids is None else list(device_ids)
        self.device_ids = [_index(d) for d in ids]
        self.output_device = self.device_ids[0] if output_device is None else _index(output_device)
        self.dim = dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)


def _index(d: Any) -> int:
    from ..device import device

    if isinstance(d, int) and not isinstance(d, bool):
        return d
    index = device(d).index
    return 0 if index is None else int(index)


class GradientReducer(Protocol):
    """Averages the ``.grad`` of a fixed list of parameters over the ranks (one call per backward)."""

    def reduce(self) -> None:
        """Replace every parameter's ``.grad`` by its mean over the ranks; a parameter without a gradient
        counts as zeros, and keeps ``grad=None`` when no rank has one."""
        ...


class DataParallelGroup(Protocol):
    """What DistributedDataParallel needs of a process group (``downslope.distributed`` provides it)."""

    def world(self, process_group: Any, what: str) -> tuple[int, int]:
        """``(rank, world_size)`` of ``process_group`` (None: the default group); raises when no process
        group has been initialised, naming ``what`` and the call to make first."""
        ...

    def check_same_parameters(self, named: Mapping[str, Tensor], what: str) -> None:
        """Raise on every rank unless all ranks hold tensors of the same names, shapes and dtypes (the
        message names the first difference and the ranks)."""
        ...

    def broadcast(self, tensors: Sequence[Tensor], bucket_bytes: int) -> None:
        """Rank 0's values of ``tensors`` copied into every rank's, in place."""
        ...

    def broadcast_buffers(self, module: Module, bucket_bytes: int) -> None:
        """Rank 0's buffers of ``module`` copied into every rank's, in place (before a forward pass)."""
        ...

    def gradient_reducer(self, params: Sequence[Tensor], bucket_bytes: int) -> GradientReducer:
        """The reducer that averages ``params``' gradients in buckets of ``bucket_bytes``."""
        ...


_group: DataParallelGroup | None = None


def register_data_parallel_group(group: DataParallelGroup | None) -> None:
    """Install the collectives DistributedDataParallel runs through (None removes them).

    Called by ``downslope.distributed`` when it is imported; a test may install its own.
    """
    global _group
    _group = group


_DEFAULT_BUCKET_MB = 25  # torch's bucket_cap_mb default (MiB)


def _find_tensors(obj: Any) -> Iterator[Tensor]:
    """The tensors in a forward pass's output (nested lists, tuples, dicts), as torch's DDP finds them."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _find_tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _find_tensors(item)


def _reachable(outputs: list[Tensor], wanted: Mapping[int, Tensor]) -> set[int]:
    """The ids of the ``wanted`` leaves that the recorded graph of ``outputs`` leads to."""
    seen: set[int] = set()
    found: set[int] = set()
    stack = [t for t in outputs if t.requires_grad]
    while stack:
        node = stack.pop()
        key = id(node)
        if key in seen:
            continue
        seen.add(key)
        if key in wanted:
            found.add(key)
        stack.extend(p for p in node._parents if p.requires_grad)
    return found


class _Reduction:
    """The gradient average that a synchronized forward pass expects its backward to end with: the ids of
    the parameters still to receive their gradient (None: no average expected) and whether one has."""

    __slots__ = ("reducer", "pending", "started", "names", "all_ids", "__weakref__")

    def __init__(self, reducer: GradientReducer, module: Module) -> None:
        self.reducer = reducer
        self.pending: set[int] | None = None
        self.started = False
        self.names = {id(p): name for name, p in module.named_parameters()}
        self.all_ids = frozenset(id(p) for p in module.parameters() if p.requires_grad)

    def arm(self, ids: Iterable[int]) -> None:
        self.pending, self.started = set(ids), False

    def ready(self, p: Tensor) -> None:
        pending = self.pending
        if pending is None:  # a backward not of a synchronized forward pass (no_sync, or a second one)
            return
        self.started = True
        pending.discard(id(p))
        if not pending:
            # every expected gradient is final (backward visits each leaf once): average them now, in the
            # same order on every rank, once per backward
            self.pending, self.started = None, False
            self.reducer.reduce()

    def missing(self) -> list[str]:
        """The names of the parameters the last backward did not reach (and forget that backward)."""
        names = sorted(self.names.get(k, "?") for k in self.pending or ())
        self.pending, self.started = None, False
        return names


class DistributedDataParallel(Module):
    """``torch.nn.parallel.DistributedDataParallel`` over ``downslope.distributed``'s process group.

    Build it after ``dist.init_process_group(...)`` in every rank of an ``mpiexec -n W`` job. The
    constructor is a collective (the parameters' names, shapes and dtypes are compared across the ranks,
    then rank 0's parameters, and its buffers unless ``broadcast_buffers=False``, are copied to every
    rank); so are a forward pass with gradients enabled (rank 0's buffers first, when torch's DDP sends
    them) and the backward pass of its output, at whose end every parameter's ``.grad`` is the mean over
    the ranks. ``no_sync()`` leaves the gradients local (accumulated), to be averaged by the first
    backward after a forward pass outside it. ``find_unused_parameters=True``: a parameter the output does
    not depend on counts as zeros on that rank (and keeps ``grad=None`` if it is unused on every rank);
    with the default False, a parameter that gets no gradient is an error at the next forward pass, as in
    torch. ``.module`` is the model; state_dict keys carry the ``module.`` prefix.

    CPU only: ``device_ids`` (None, ``[]`` or one entry, such as a script's ``[local_rank]``) and
    ``output_device`` are accepted and change nothing; ``dim``, ``bucket_cap_mb``, ``static_graph``,
    ``gradient_as_bucket_view`` are accepted. Not provided (refused, saying so): ``join()`` for uneven
    inputs, ``register_comm_hook``, ``mixed_precision``, ``device_mesh``, process subgroups.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist, nn
        >>> dist.init_process_group("gloo")                     # a plain process: a world of one
        >>> model = nn.parallel.DistributedDataParallel(nn.Linear(2, 1))
        >>> model(ds.ones(3, 2)).sum().backward(); model.module.weight.grad.shape, sorted(model.state_dict())
        (downslope.Size([1, 2]), ['module.bias', 'module.weight'])
        >>> dist.destroy_process_group()
    """

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool | None = None,
        init_sync: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        delay_all_reduce_named_params: Any = None,
        param_to_hook_all_reduce: Any = None,
        mixed_precision: Any = None,
        device_mesh: Any = None,
        skip_all_reduce_unused_params: bool = False,
        bucket_cap_mb_list: Any = None,
        batched_grad_copy: bool = False,
        forward_sync_buffers: bool | None = None,
    ) -> None:
        super().__init__()
        what = "DistributedDataParallel"
        if not isinstance(module, Module):
            raise ArgumentTypeError(f"{what}: expected an nn.Module, got {type(module).__name__}")
        for name, value in (
            ("mixed_precision", mixed_precision),
            ("device_mesh", device_mesh),
            ("delay_all_reduce_named_params", delay_all_reduce_named_params),
            ("param_to_hook_all_reduce", param_to_hook_all_reduce),
            ("bucket_cap_mb_list", bucket_cap_mb_list),
        ):
            if value is not None:
                raise ConfigError(
                    f"{what}: {name}= is not supported (got {value!r}); leave it None (downslope averages every "
                    "gradient in the model's dtype, over all ranks)"
                )
        group = _group
        if group is None:  # downslope.distributed, which installs it, has not been imported: no process group
            raise UninitializedError(
                f"{what}: Default process group has not been initialized, please make sure to call "
                "init_process_group (here: `from downslope import distributed as dist; dist.init_process_group()` "
                "in every rank of an `mpiexec -n W` job)"
            )
        self._rank, self._world_size = group.world(process_group, what)
        self.module = module
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:  # a RuntimeError, as torch's
            raise InvalidValueError(
                f"{what} is not needed when a module doesn't have any parameter that requires a gradient "
                f"(got {type(module).__name__} with none)"
            )
        for name, p in module.named_parameters():
            if not isinstance(p.array, np.ndarray):
                raise DeviceError(
                    f"{what}: parameter {name!r} is on {p.device}; the MPI collectives work on host tensors: "
                    "keep the model on the CPU"
                )
        ids = [] if device_ids is None else list(device_ids)
        if len(ids) > 1:
            raise ArgumentError(f"{what}: device_ids can only be None or contain a single element, got {ids}")
        # torch's value for a CPU module; a GPU script's device_ids=[local_rank] runs here on the CPU
        self.device_ids: list[int] | None = None
        self.output_device: Any = None
        self.dim = dim
        self.process_group = process_group
        if bucket_cap_mb is not None and not bucket_cap_mb > 0:
            raise ArgumentError(f"{what}: bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        mb = _DEFAULT_BUCKET_MB if bucket_cap_mb is None else bucket_cap_mb
        self.bucket_bytes_cap = max(1, int(mb * 2**20))
        self.find_unused_parameters = bool(find_unused_parameters)  # host: a Python flag
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)  # host: a Python flag
        self.static_graph = bool(static_graph)  # host: a Python flag
        if broadcast_buffers is not None:
            warnings.warn(
                "`broadcast_buffers` is deprecated. Use `forward_sync_buffers` instead. IMPORTANT: unlike "
                "`broadcast_buffers=False`, `forward_sync_buffers=False` still syncs buffers at init.",
                FutureWarning,
                stacklevel=2,
            )
        if forward_sync_buffers is not None:  # torch 2.13's replacement: buffers are always sent at init
            self.forward_sync_buffers, init_buffers = bool(forward_sync_buffers), True  # host: a Python flag
        else:
            send = True if broadcast_buffers is None else bool(broadcast_buffers)  # host: a Python flag
            self.forward_sync_buffers = init_buffers = send
        self.broadcast_buffers = self.forward_sync_buffers
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._group_ops = group
        self._params = params
        self._has_buffers = any(True for _ in module.buffers())
        if init_sync:
            checked: dict[str, Tensor] = dict(module.named_parameters())
            if init_buffers:  # broadcast below too: a buffer of another size would fail inside MPI
                checked.update((f"buffer {name}", b) for name, b in module.named_buffers())
            group.check_same_parameters(checked, f"model given to {what}")
            states: list[Tensor] = list(module.parameters())
            if init_buffers:
                states += list(module.buffers())
            with no_grad():
                group.broadcast(states, self.bucket_bytes_cap)
        self._sync = _Reduction(group.gradient_reducer(params, self.bucket_bytes_cap), module)
        ready = weakref.ref(self._sync)  # the hooks must not keep a discarded wrapper's buffers alive

        def grad_ready(p: Tensor) -> None:
            sync = ready()
            if sync is not None:
                sync.ready(p)

        self._hook_handles = [p.register_post_accumulate_grad_hook(grad_ready) for p in params]

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        sync = self._sync
        if sync.started and sync.pending:
            missing = sync.missing()
            raise StateError(
                "DistributedDataParallel: Expected to have finished reduction in the prior iteration before "
                f"starting a new one: parameter(s) {missing} received no gradient in the last backward on rank "
                f"{self._rank}, so the gradients were not averaged there. Make every parameter take part in the "
                "loss, pass find_unused_parameters=True, or freeze them (requires_grad_(False)) before wrapping "
                "the model"
            )
        synchronized = is_grad_enabled() and self.require_backward_grad_sync
        if self.require_forward_param_sync and self.forward_sync_buffers and self._has_buffers:
            with no_grad():
                self._group_ops.broadcast_buffers(self.module, self.bucket_bytes_cap)
        output = self.module(*inputs, **kwargs)
        if self.require_forward_param_sync is not synchronized:
            self.require_forward_param_sync = synchronized
        if not synchronized:
            sync.pending, sync.started = None, False
            return output
        if self.find_unused_parameters:
            used = _reachable(list(_find_tensors(output)), {id(p): p for p in self._params})
            if not used:
                # the output depends on no parameter, so no hook will run and its backward adds no gradient:
                # this rank's share (zeros, or what no_sync accumulated) is sent now, to meet the others'
                sync.pending, sync.started = None, False
                sync.reducer.reduce()
                return output
            sync.arm(used)
        else:
            sync.arm(sync.all_ids)
        return output

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Leave the gradients of the forward/backward passes run inside on each rank, accumulated in
        ``.grad``; the first backward of a forward pass outside averages them over the ranks.

        Example:
            >>> import downslope as ds
            >>> from downslope import distributed as dist, nn
            >>> dist.init_process_group()
            >>> ddp = nn.parallel.DistributedDataParallel(nn.Linear(2, 1))
            >>> with ddp.no_sync():
            ...     ddp(ds.ones(1, 2)).sum().backward()         # local only
            >>> ddp(ds.ones(1, 2)).sum().backward()             # averages both micro-batches' sum
            >>> ddp.module.bias.grad
            tensor([2.])
            >>> dist.destroy_process_group()
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def join(
        self, divide_by_initial_world_size: bool = True, enable: bool = True, throw_on_early_termination: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """torch's context for ranks with different numbers of batches: not provided. ``enable=False``
        gives a context that does nothing, as torch's; otherwise it is refused."""
        if not enable:
            return contextlib.nullcontext()
        raise ConfigError(
            "DistributedDataParallel.join(): uneven inputs across ranks are not supported; give every rank the "
            "same number of batches (DistributedSampler pads to equal shares; DataLoader(drop_last=True) then "
            "drops the same number everywhere), or call join(enable=False)"
        )

    def register_comm_hook(self, state: object, hook: Any) -> None:
        """torch's custom gradient communication: not provided (the gradients are always averaged in
        the parameters' dtype by one Allreduce per bucket); refused, naming the hook."""
        raise ConfigError(
            f"DistributedDataParallel.register_comm_hook: communication hooks are not supported (got "
            f"{getattr(hook, '__name__', hook)!r}); downslope always averages the gradients by an Allreduce in "
            "their own dtype: remove the call"
        )

    def _set_static_graph(self) -> None:
        """torch's switch to static-graph mode: accepted; nothing here depends on it."""
        self.static_graph = True
