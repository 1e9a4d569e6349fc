"""PyTorch's ``linear_cross_entropy`` and ``LinearCrossEntropyLoss``: cross-entropy of ``linear(input)``
(a classifier head and its loss in one call), with torch's argument checks and K-dimensional form
(a weight of shape ``(C, d1, ..., dK, in_features)`` gives logits ``(N, C, d1, ..., dK)``).

torch computes the batch in chunks when ``options`` asks it to, to save memory; the values are those
of the reference formula, which is what is computed here (``options`` is accepted and not used)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from ...errors import ArgumentError, InvalidValueError, ShapeError
from ...tensor import Tensor
from ._base import _WeightedLoss
from .classification import cross_entropy

__all__ = ["LinearCrossEntropyOptions", "linear_cross_entropy", "LinearCrossEntropyLoss"]


_ACC_POLICIES = ("auto", "accurate", "balanced", "compact")
_ACC_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """torch's chunking options of :func:`linear_cross_entropy`, checked as torch checks them (a
    ValueError for an unknown ``acc_policy`` or ``chunking_method``, a ``batch_chunk_size`` that is
    not a positive int, an ``acc_dtype`` that is not a floating dtype; frozen, as torch's);
    downslope computes the logits whole, which gives the same values.

    Example:
        >>> import downslope as ds
        >>> ds.nn.LinearCrossEntropyOptions(batch_chunk_size=1024, chunking_method=None).batch_chunk_size
        1024
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: Any = None

    def __post_init__(self) -> None:
        if self.acc_policy not in _ACC_POLICIES:
            raise ArgumentError(
                f"LinearCrossEntropyOptions: invalid acc_policy: {self.acc_policy!r} (expected one of {_ACC_POLICIES})"
            )
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = str(self.chunking_method).partition(":")
            factor = factor if sep else "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ArgumentError(
                    f"LinearCrossEntropyOptions: invalid chunking_method: {self.chunking_method!r} (expected None, 'auto', 'aspect_ratio' "
                    "or 'aspect_ratio:N' with N >= 1)"
                )
        chunk = self.batch_chunk_size
        if not (chunk is None or (isinstance(chunk, int) and chunk > 0)):
            raise ArgumentError(
                f"LinearCrossEntropyOptions: batch_chunk_size must be positive int or None, got {chunk!r}"
            )
        if self.acc_dtype is not None and _dtype_name(self.acc_dtype) not in _ACC_DTYPES:
            raise ArgumentError(
                "LinearCrossEntropyOptions: acc_dtype must be one of {None, torch.float16, torch.bfloat16, torch.float32, torch.float64}, "
                f"got {self.acc_dtype!r}. Pass acc_dtype=None to let the op pick automatically."
            )

    def _chunk_size(self, batches: int, in_features: int, classes: int) -> None:
        """torch's check, at call time, that ``batch_chunk_size`` and ``chunking_method`` agree when both
        are given: the chunk size torch's heuristic picks from the shapes must be the one asked for."""
        method = self.chunking_method
        if self.batch_chunk_size is None or method is None or method == "auto":
            return  # torch: an explicit size switches the "auto" heuristic off
        factor = int(method.split(":", 1)[1]) if ":" in method else 1
        target = -(-batches // -(-classes // in_features))
        picked = max(1, min((1 << (target - 1).bit_length()) // factor, batches))
        if picked != self.batch_chunk_size:
            raise ArgumentError(
                f"linear_cross_entropy: batch_chunk_size (={self.batch_chunk_size}) and chunking_method ('{method}') give different "
                f"chunk sizes ({self.batch_chunk_size} vs {picked}); pass only one."
            )


def _dtype_name(dtype: Any) -> str:
    """The name of a dtype given as downslope's (NumPy's) dtype, ``ds.bfloat16`` or anything else."""
    if str(dtype).endswith("bfloat16"):
        return "bfloat16"
    try:
        return np.dtype(dtype).name
    except TypeError:
        return repr(dtype)


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
        raise ShapeError(
            f"{where}: expected input with dimensionality 1 or 2, got {input.ndim} (shape {tuple(input.shape)})"
        )
    if linear_weight.ndim < 2:
        raise ShapeError(
            f"{where}: expected linear_weight with dimensionality at least 2, got {tuple(linear_weight.shape)}"
        )
    batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise ShapeError(
            f"{where}: expected equal input and linear_weight last dimensions (in_features), got "
            f"{in_features} and {linear_weight.shape[-1]} (input {tuple(input.shape)}, linear_weight {tuple(linear_weight.shape)})"
        )
    classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (classes, *out_features):
        raise ShapeError(
            f"{where}: expected linear_bias shape {(classes, *out_features)}, got {tuple(linear_bias.shape)}"
        )
    if out_features and not batches:
        raise ShapeError(
            f"{where}: K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires batched "
            f"input, (N, {in_features}), got unbatched input with shape {tuple(input.shape)}"
        )
    logits_shape = (*batches, classes, *out_features)
    # torch's rule: a target of the logits' shape holds class probabilities
    if tuple(getattr(target, "shape", ())) == logits_shape and ignore_index is not None:
        raise InvalidValueError(f"{where}: ignore_index cannot be specified when target contains probabilities")
    if options is not None:
        _check_options(options, input, target, out_features, reduction, label_smoothing, classes)
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


def _check_options(
    options: LinearCrossEntropyOptions,
    input: Tensor,
    target: Any,
    out_features: tuple[int, ...],
    reduction: str,
    label_smoothing: float,
    classes: int,
) -> None:
    """torch's handling of ``options``: a warning where its chunked path does not apply (and the options
    are ignored), else its check that the chunk size and the chunking method agree."""
    target_dtype = getattr(getattr(target, "array", None), "dtype", None)
    if out_features or reduction not in ("mean", "sum", "none") or label_smoothing != 0.0 or target_dtype != np.int64:
        warnings.warn(
            "linear_cross_entropy: ``options`` ignored; chunked path needs reduction in {'mean','sum','none'}, "
            f"label_smoothing == 0, target.dtype == int64, out_features == (). Got reduction={reduction!r}, "
            f"label_smoothing={label_smoothing}, target.dtype={target_dtype}, out_features={tuple(out_features)}",
            UserWarning,
            stacklevel=3,
        )
        return
    options._chunk_size(input.shape[0] if input.ndim == 2 else 1, input.shape[-1], classes)


class LinearCrossEntropyLoss(_WeightedLoss):
    """A classifier head and its cross-entropy (see :func:`linear_cross_entropy`): ``self.linear``
    (an ``nn.Linear(in_features, C * prod(out_features), bias=bias)``, torch's flat storage) maps the
    input to logits, reshaped to ``(N, C, *out_features)``.

    Example:
        >>> import downslope as ds
        >>> loss_fn = ds.nn.LinearCrossEntropyLoss(5, 10)
        >>> loss_fn(ds.randn(4, 5), ds.tensor([0, 1, 2, 9])).shape
        downslope.Size([])
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
