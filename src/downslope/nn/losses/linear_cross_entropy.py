"""PyTorch's ``linear_cross_entropy`` and ``LinearCrossEntropyLoss``: cross-entropy of ``linear(input)``
(a classifier head and its loss in one call), with torch's argument checks and K-dimensional form
(a weight of shape ``(C, d1, ..., dK, in_features)`` gives logits ``(N, C, d1, ..., dK)``).

torch computes the batch in chunks when ``options`` asks it to, to save memory; the values are those
of the reference formula, which is what is computed here (``options`` is accepted and not used)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ...errors import ArgumentError, InvalidValueError, ShapeError
from ...tensor import Tensor
from ._base import _WeightedLoss
from .classification import cross_entropy

__all__ = ["LinearCrossEntropyOptions", "linear_cross_entropy", "LinearCrossEntropyLoss"]


@dataclasses.dataclass
class LinearCrossEntropyOptions:
    """torch's chunking options of :func:`linear_cross_entropy`, taken so that code passing them runs;
    downslope computes the logits whole, which gives the same values."""

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: Any = None


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Any,
    *,
    linear_bias: Tensor | None = None,
    weight: Any = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: LinearCrossEntropyOptions | None = None,
) -> Tensor:
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)`` with torch's shapes:
    ``input`` is ``(in_features,)`` or ``(N, in_features)``; ``linear_weight`` is ``(C, in_features)``
    or ``(C, d1, ..., dK, in_features)`` (K-dimensional logits, batched input only); ``ignore_index``
    None means -100 for class indices (and may not be given with class probabilities).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.linear_cross_entropy(ds.ones(2, 3), ds.zeros(4, 3), ds.tensor([0, 1])).item(), 4)
        1.3863
    """
    from ..functional import linear

    where = "linear_cross_entropy"
    if not isinstance(input, Tensor) or not isinstance(linear_weight, Tensor):
        raise ArgumentError(f"{where}: expected Tensor input and linear_weight, got {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise ShapeError(f"{where}: expected input with dimensionality 1 or 2, got {input.ndim} (shape {input.shape})")
    if linear_weight.ndim < 2:
        raise ShapeError(f"{where}: expected linear_weight with dimensionality at least 2, got {linear_weight.shape}")
    batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise ShapeError(
            f"{where}: expected equal input and linear_weight last dimensions (in_features), got "
            f"{in_features} and {linear_weight.shape[-1]} (input {input.shape}, linear_weight {linear_weight.shape})"
        )
    classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (classes, *out_features):
        raise ShapeError(f"{where}: expected linear_bias shape {(classes, *out_features)}, got {linear_bias.shape}")
    if out_features and not batches:
        raise ShapeError(
            f"{where}: K-dimensional loss defined by linear_weight shape {linear_weight.shape} requires batched "
            f"input, (N, {in_features}), got unbatched input with shape {input.shape}"
        )
    logits_shape = (*batches, classes, *out_features)
    # torch's rule: a target of the logits' shape holds class probabilities
    if tuple(getattr(target, "shape", ())) == logits_shape and ignore_index is not None:
        raise InvalidValueError(f"{where}: ignore_index cannot be specified when target contains probabilities")
    rows = math.prod(out_features, start=classes)
    w2 = linear_weight.reshape(rows, in_features) if out_features else linear_weight
    b2 = None if linear_bias is None else (linear_bias.reshape(rows) if out_features else linear_bias)
    logits = linear(input, w2, b2).reshape(logits_shape)
    return cross_entropy(
        logits,
        target,
        weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


class LinearCrossEntropyLoss(_WeightedLoss):
    """A classifier head and its cross-entropy (see :func:`linear_cross_entropy`): ``self.linear``
    (an ``nn.Linear(in_features, C * prod(out_features), bias=bias)``, torch's flat storage) maps the
    input to logits, reshaped to ``(N, C, *out_features)``.

    Example:
        >>> import downslope as ds
        >>> loss_fn = ds.nn.LinearCrossEntropyLoss(5, 10)
        >>> loss_fn(ds.randn(4, 5), ds.tensor([0, 1, 2, 9])).shape
        ()
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: str = "mean",
        weight: Any = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: LinearCrossEntropyOptions | None = None,
    ) -> None:
        from ..layers import Linear

        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise ShapeError(
                f"LinearCrossEntropyLoss: expected weight shape {(num_classes,)}, got {tuple(weight.shape)}"
            )
        if not 0.0 <= label_smoothing <= 1.0:
            raise InvalidValueError(
                f"LinearCrossEntropyLoss: expected label_smoothing in [0, 1], got {label_smoothing}"
            )
        super().__init__(weight, None, None, reduction)
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        # one 2-D Linear (as torch stores it), reshaped in forward to (C, *out_features, in_features)
        self.linear = Linear(
            in_features, math.prod(self.out_features, start=num_classes), bias=bias, device=device, dtype=dtype
        )
        self.options = options

    def forward(self, input: Tensor, target: Any) -> Tensor:
        linear_weight = self.linear.weight.reshape((self.num_classes, *self.out_features, self.linear.in_features))
        bias = self.linear.bias
        return linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=None if bias is None else bias.reshape((self.num_classes, *self.out_features)),
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
            f"out_features={self.out_features}, bias={self.linear.bias is not None}, reduction={self.reduction}, "
            f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, options={self.options}"
        )
