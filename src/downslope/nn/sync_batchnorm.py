"""``nn.SyncBatchNorm``: batch norm whose training statistics span every rank of a data-parallel job.

In training mode inside a process group of more than one rank, each channel's mean and variance are
those of the union of the ranks' batches (one Allreduce of the per-channel sum, sum of squares and
count per forward; in backward one Allreduce of the two per-channel gradient sums, PyTorch's
formula), so W ranks with batches of B normalize as one process with the batch of W*B would. In
eval mode, in a world of one, or with no process group, it is exactly :class:`BatchNorm1d`/``2d``/``3d``
(PyTorch's SyncBatchNorm falls back to ``F.batch_norm`` there too).

nn sits below ``downslope.distributed`` in the package's layers, so this module never imports it:
the collective comes through :func:`register_process_group_sum`, which ``downslope.distributed``
calls when it is imported (it must be, to join a job). The parameters' own gradients stay local, as
in PyTorch, for the data-parallel optimizer to average with the others.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .. import ops
from ..devices import like, to_host
from ..errors import ArgumentError, ArgumentTypeError, StateError
from ..tensor import Tensor, note_conv_layout, record_op
from ._arrays import scalar
from .module import Module
from .normalization import (
    _BatchNorm,
    _channel_rows,
    _check_pruned_channels,
    _norm_outputs,
    _update_running,
    _widen,
)

__all__ = ["SyncBatchNorm", "ProcessGroupSum", "register_process_group_sum", "sync_batch_norm"]

_HALF = np.dtype(np.float16)


class ProcessGroupSum(Protocol):
    """What SyncBatchNorm needs of a process group (``downslope.distributed`` provides it)."""

    def size(self, process_group: Any) -> int:
        """The number of ranks that ``process_group`` (None: the default group) spans; 1 when no
        process group has been initialised (no synchronization then, as in PyTorch)."""
        ...

    def allreduce_sum(self, buf: np.ndarray, process_group: Any) -> None:
        """Replace the host float64 array ``buf`` by its elementwise sum over the group's ranks, in place."""
        ...


_group_sum: ProcessGroupSum | None = None


def register_process_group_sum(group_sum: ProcessGroupSum | None) -> None:
    """Install the collective SyncBatchNorm synchronizes through (None removes it).

    Called by ``downslope.distributed`` when it is imported; a test may install its own.
    """
    global _group_sum
    _group_sum = group_sum


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over (N, C, ...) input whose statistics, when training in a process group of
    W > 1 ranks, are those of all the ranks' batches together (PyTorch's ``nn.SyncBatchNorm``).

    The running statistics are updated with the global mean and the unbiased global variance, so they
    are the same on every rank. Outside a multi-rank job, in eval mode, or before the process group
    is initialised it is an ordinary batch norm. Convert a model's BatchNorm layers with
    :meth:`convert_sync_batchnorm`.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> model = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
        >>> type(model[1]).__name__, model(ds.randn(8, 4)).shape
        ('SyncBatchNorm', downslope.Size([8, 3]))
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim < 2:
            raise ArgumentError(
                f"SyncBatchNorm({self.num_features}): expected at least 2-D input (N, C, ...), got shape "
                f"{tuple(input.shape)} ({input.ndim}-D input)"
            )

    def forward(self, input: Tensor) -> Tensor:
        group_sum = _group_sum
        # (eval mode and a plain process: BatchNorm's own path, with no cost added to it)
        if not self.training or group_sum is None or group_sum.size(self.process_group) <= 1:
            return super().forward(input)
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"SyncBatchNorm: expected a Tensor input, got {type(input).__name__}")
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            _check_pruned_channels(self, input, f"SyncBatchNorm({self.num_features})", self.num_features)
        momentum: Any = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.array += 1
            if self.momentum is None:  # cumulative moving average, as in PyTorch
                momentum = 1.0 / self.num_batches_tracked.array
        track = self.track_running_stats
        return sync_batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            momentum,
            self.eps,
            group_sum,
            self.process_group,
        )

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """Every BatchNorm layer of ``module`` (itself included) replaced by a SyncBatchNorm holding the
        same weight, bias, running statistics and batch count (the same tensors: ``requires_grad`` and an
        optimizer built before carry over) and the same training mode, as PyTorch's. Children are
        replaced in place; a BatchNorm given itself comes back as a new layer.

        Example:
            >>> from downslope import nn
            >>> net = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
            >>> [type(m).__name__ for m in net]
            ['Conv2d', 'SyncBatchNorm']
        """
        converted = module
        if isinstance(module, _BatchNorm):
            converted = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
                bias=module.bias is not None,
            )
            if module.affine:
                converted.weight = module.weight
                converted.bias = module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.training = module.training
            if hasattr(module, "qconfig"):
                converted.qconfig = module.qconfig
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.process_group is None else f", process_group={self.process_group!r}")


def sync_batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    momentum: Any,
    eps: float,
    group_sum: ProcessGroupSum,
    process_group: Any = None,
) -> Tensor:
    """Training-mode batch norm of ``input`` (N, C, ...) with the statistics of every rank's batch.

    Every rank of the group must call it (the same number of times, with the same C): each call runs
    one Allreduce, and its backward one more when the input needs a gradient. A rank's batch may be
    empty. The running statistics, when given, are updated in place with the global mean and the
    unbiased global variance.
    """
    x = input
    if x.array.dtype == _HALF:  # in float32, rounded once (as batch_norm does)
        out = sync_batch_norm(
            ops.astype(x, np.float32), running_mean, running_var, _widen(weight), _widen(bias), momentum, eps,
            group_sum, process_group,
        )  # fmt: skip
        return ops.astype(out, _HALF)
    d = x.array
    n_ch = d.shape[1]
    rows = _channel_rows(d)  # (C, this rank's values per channel)
    count = rows.shape[1]
    # The local sums in float64, computed around this rank's own mean (so the sum of squares loses
    # nothing to cancellation here); only the spread of the ranks' means cancels below, in float64.
    stats = np.zeros(2 * n_ch + 1, dtype=np.float64)  # host: the collective sums a host buffer (MPI)
    if count:
        local_mean = rows.mean(axis=1)
        centered = rows - local_mean[:, None]
        mean64 = to_host(local_mean).astype(np.float64)
        stats[:n_ch] = mean64 * count
        stats[n_ch : 2 * n_ch] = to_host((centered * centered).sum(axis=1)).astype(np.float64) + count * mean64 * mean64
        stats[-1] = count
    group_sum.allreduce_sum(stats, process_group)
    total = int(stats[-1])
    if total <= 1:  # every rank sees the same total: all raise here, none is left in a collective
        raise ArgumentError(
            f"SyncBatchNorm: expected more than 1 value per channel over all ranks when training, got {total} "
            f"(this rank's input has shape {tuple(x.shape)})"
        )
    g_mean = stats[:n_ch] / total
    g_var = np.maximum(stats[n_ch : 2 * n_ch] / total - g_mean * g_mean, 0.0)
    mean = like(g_mean.astype(d.dtype), d)
    var = like(g_var.astype(d.dtype), d)
    inv_std = 1.0 / np.sqrt(var + scalar(eps, d.dtype))
    xhat = (rows - mean[:, None]) * inv_std[:, None]
    out = xhat if weight is None else xhat * weight.array[:, None]
    if bias is not None:
        out = out + bias.array[:, None]
    elif weight is None:
        out = xhat.copy()  # the output must not alias the saved xhat
    if running_mean is not None and running_var is not None:
        _update_running(running_mean, running_var, mean, var, total, momentum)
    cm_shape = (n_ch, d.shape[0]) + d.shape[2:]
    parents: tuple[Tensor, ...] = (x,)
    parents += (weight,) if weight is not None else ()
    parents += (bias,) if bias is not None else ()
    saved = (xhat, inv_std, weight is not None, bias is not None, total, cm_shape, group_sum, process_group)
    # channel-major, as a convolution's output: contiguous in torch (noted so: view and stride follow torch's)
    return record_op(note_conv_layout(out.reshape(cm_shape).swapaxes(0, 1)), parents, _sync_batch_norm_vjp, saved)


def _sync_batch_norm_vjp(g, y, args, saved, needs, xp):
    xhat, inv_std, has_w, has_b, total, cm_shape, group_sum, process_group = saved
    if xp.differentiable:
        raise StateError(
            "SyncBatchNorm: backward with create_graph=True (double backward) through a synchronized batch norm "
            "is not supported; expected a first-order backward, as PyTorch's SyncBatchNorm"
        )
    g_rows = _channel_rows(g)
    gb = g_rows.sum(axis=1)
    gw = (g_rows * xhat).sum(axis=1)  # this rank's: the data-parallel optimizer averages them, as under DDP
    gx = None
    if needs[0]:  # (as PyTorch: the ranks reduce only when the input needs its gradient)
        n_ch = xhat.shape[0]
        sums = np.concatenate([to_host(gb).astype(np.float64), to_host(gw).astype(np.float64)])
        group_sum.allreduce_sum(sums, process_group)
        mean_g = like((sums[:n_ch] / total).astype(xhat.dtype), xhat)
        mean_gx = like((sums[n_ch:] / total).astype(xhat.dtype), xhat)
        a = inv_std * args[1].reshape(-1) if has_w else inv_std
        gx_rows = (g_rows - mean_g[:, None] - xhat * mean_gx[:, None]) * a[:, None]
        gx = gx_rows.reshape(cm_shape).swapaxes(0, 1)
    return _norm_outputs(gx, gw, gb, has_w, has_b, needs)


_sync_batch_norm_vjp.reads_output = False  # type: ignore[attr-defined]
