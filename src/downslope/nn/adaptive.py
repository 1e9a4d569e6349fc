"""Adaptive softmax (Grave et al., 2017) with PyTorch's ``AdaptiveLogSoftmaxWithLoss``: frequent
classes in a head softmax, rarer ones in clusters reached through the head, each cluster's input
projected down by ``div_value`` per level.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> asm = nn.AdaptiveLogSoftmaxWithLoss(32, 10, cutoffs=[4, 7])
    >>> out = asm(ds.randn(5, 32), ds.tensor([0, 3, 5, 8, 9]))
    >>> out.output.shape, asm.log_prob(ds.randn(2, 32)).shape
    (downslope.Size([5]), downslope.Size([2, 10]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import ops
from ..backend import namespace_of
from ..devices import to_host
from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor, wrap_array
from . import functional as F
from ._arrays import array_like, array_of
from .layers import Linear
from .module import Module, ModuleList, Sequential

__all__ = ["AdaptiveLogSoftmaxWithLoss"]


class _ASMoutput(NamedTuple):
    output: Tensor
    loss: Tensor


class AdaptiveLogSoftmaxWithLoss(Module):
    """``forward(input, target)`` returns ``(output, loss)``: each sample's target log-probability and
    their negated mean. ``log_prob(input)`` gives the full (N, n_classes) log-probabilities and
    ``predict(input)`` the most likely class."""

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()  # device, dtype: applied by Module's constructor wrapper once the layer is built
        cutoffs = list(cutoffs)
        if (
            not cutoffs
            or cutoffs != sorted(cutoffs)
            or min(cutoffs) <= 0
            or max(cutoffs) > n_classes - 1
            or len(set(cutoffs)) != len(cutoffs)
        ):
            raise ArgumentError(
                f"AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of unique, positive integers sorted in "
                f"increasing order, each value between 1 and n_classes - 1 = {n_classes - 1}; got {cutoffs}"
            )
        self.in_features, self.n_classes, self.div_value, self.head_bias = in_features, n_classes, div_value, head_bias
        self.cutoffs = cutoffs + [n_classes]
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False), Linear(hsz, osz, bias=False)))

    def reset_parameters(self) -> None:
        """PyTorch's: the head's and each cluster's projections redrawn as a new Linear's, in place."""
        self.head.reset_parameters()
        for cluster in self.tail:
            for layer in cluster.children():
                layer.reset_parameters()

    def forward(self, input_: Tensor, target_: Any) -> _ASMoutput:
        # Which rows go to which cluster shapes the computation, so the target is read on the host
        # (PyTorch synchronises here too); the row indices then go to the input's device.
        t = to_host(array_of(target_)).astype(np.int64)  # host: the clusters' rows
        batched = t.ndim == 1
        if t.ndim > 1 or input_.ndim != t.ndim + 1 or (batched and input_.shape[0] != t.shape[0]):
            raise ShapeError(
                f"AdaptiveLogSoftmaxWithLoss: input {tuple(input_.shape)} does not fit target shape {tuple(t.shape)}"
            )
        x = input_ if batched else ops.unsqueeze(input_, 0)
        xp = namespace_of(x.array)
        t = t.reshape(-1)
        if t.size and (t.min() < 0 or t.max() >= self.n_classes):
            raise ArgumentError(f"AdaptiveLogSoftmaxWithLoss: target values should be in [0, {self.n_classes - 1}]")
        gather = t.copy()
        output: Any = 0.0
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            in_cluster = (t >= low) & (t < high)
            if not in_cluster.any():
                continue
            gather[in_cluster] = self.shortlist_size + i
            rows_host = np.flatnonzero(in_cluster)
            rows = array_like(rows_host, x.array)
            local = F.log_softmax(self.tail[i](x[rows]), dim=1)
            picked = local[xp.arange(len(rows_host)), array_like(t[rows_host] - low, x.array)]  # this cluster's rows
            # scatter[r, j] = 1 where sample r is the cluster's j-th row: back to the batch's rows
            scatter = (xp.arange(x.shape[0])[:, None] == rows[None, :]).astype(x.array.dtype)
            output = output + ops.matmul(wrap_array(scatter), picked)
        head = F.log_softmax(self.head(x), dim=1)
        output = head[xp.arange(x.shape[0]), array_like(gather, x.array)] + output
        loss = ops.mean(-output)
        return _ASMoutput(output if batched else ops.squeeze(output, 0), loss)

    def log_prob(self, input: Tensor) -> Tensor:
        """The log-probabilities of every class, (N, n_classes)."""
        head = F.log_softmax(self.head(input), dim=-1)
        parts = [head[..., : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), dim=-1)
            parts.append(cluster + head[..., self.shortlist_size + i : self.shortlist_size + i + 1])
        return ops.cat(parts, -1)

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each sample."""
        return wrap_array(np.argmax(self.log_prob(input).array, axis=-1))
