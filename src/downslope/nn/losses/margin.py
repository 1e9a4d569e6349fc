"""Margin, ranking and embedding losses: hinge and soft margins, multi-class/multi-label margins,
cosine embedding and triplet losses.

Composites of basic ops (their gradients come from those ops): they are rarely on a hot path. The
multi-label margin has a kernel of its own on host arrays (its composite compares every class pair)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import ops
from ...backend import namespace_of
from ...errors import ArgumentError, ArgumentTypeError, DTypeError, OutOfRangeError, ShapeError
from ...graph import is_grad_enabled
from ...ops.pointwise import link_input
from ...tensor import Tensor, record_op
from .._arrays import array_like, is_host, scalar
from ..activation import PairwiseDistance
from ._base import (
    _as_input_tensor,
    _broadcast_pair,
    _check_operand,
    _check_reduction,
    _input,
    _legacy_reduction,
    _Loss,
    _reduce,
    _reduction_arg,
    _WeightedLoss,
)


def _hinge(z: Tensor) -> Tensor:
    """max(0, z) as PyTorch builds these losses, with clamp_min: the gradient passes at z == 0 (relu's
    would not), so tied scores or a pair exactly at the margin still train."""
    return ops.clamp_min(z, 0.0)


def _same_ndim(fn: str, **tensors: Any) -> None:
    """PyTorch's check before it broadcasts the operands of a pairwise loss: one number of dims."""
    shapes = {name: tuple(getattr(t, "shape", ())) for name, t in tensors.items()}
    if len({len(shape) for shape in shapes.values()}) > 1:
        shown = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        dims = ", ".join(str(len(shape)) for shape in shapes.values())
        raise ShapeError(f"{fn}: expected operands with the same number of dimensions, got {shown} ({dims} dims)")


def _broadcast_operands(fn: str, **tensors: Tensor) -> tuple[int, ...]:
    """The shape the operands broadcast to. PyTorch broadcasts them (one anchor against N positives)
    once they have the same number of dims; it refuses other dims, and so do we."""
    _same_ndim(fn, **tensors)
    shapes = [t.shape for t in tensors.values()]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        shown = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise ShapeError(f"{fn}: expected operands whose shapes broadcast together, got {shown}") from None


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Any,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -y (x1 - x2) + margin) with y = 1 (x1 should rank higher) or -1.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.margin_ranking_loss(ds.tensor([1.0, 0.0]), ds.tensor([0.0, 1.0]), ds.tensor([1.0, 1.0]), 0.5).item()
        0.75
    """
    reduction = _reduction_arg(size_average, reduce, reduction, "margin_ranking_loss")
    x1, x2 = _input(input1, "margin_ranking_loss"), _input(input2, "margin_ranking_loss")
    _broadcast_operands("margin_ranking_loss", input1=x1, input2=x2)
    diff, y = _broadcast_pair(x1 - x2, target, "margin_ranking_loss", promote="result")
    return _reduce(_hinge(-y * diff + margin), reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Any,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1 (x usually a distance).

    PyTorch's masks exactly: the x term where y != -1 and the hinge term where y != 1, so any other
    label (a 0 of 0/1 labels) gets both."""
    reduction = _reduction_arg(size_average, reduce, reduction, "hinge_embedding_loss")
    x = _input(input, "hinge_embedding_loss")
    x, y = _broadcast_pair(x, target, "hinge_embedding_loss")
    zero = scalar(0, x.array.dtype)
    negative = ops.where(y.array != 1, _hinge(margin - x), zero)
    positive = ops.where(y.array != -1, x, zero)
    return _reduce(negative + positive, reduction)


def soft_margin_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """log(1 + exp(-y x)) elementwise, y in {1, -1} (two-class logistic loss)."""
    reduction = _reduction_arg(size_average, reduce, reduction, "soft_margin_loss")
    x = _input(input, "soft_margin_loss")
    x, y = _broadcast_pair(x, target, "soft_margin_loss")
    return _reduce(ops.softplus(-y * x), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of logits averaged over the C labels of each (N, C) sample.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.multilabel_soft_margin_loss(ds.zeros(1, 2), ds.tensor([[1.0, 0.0]])).item(), 4)
        0.6931
    """
    reduction = _reduction_arg(size_average, reduce, reduction, "multilabel_soft_margin_loss")
    x = _input(input, "multilabel_soft_margin_loss")
    x, y = _broadcast_pair(x, target, "multilabel_soft_margin_loss", promote="result")
    loss = -(y * -ops.softplus(-x) + (1.0 - y) * -ops.softplus(x))
    if weight is not None:
        loss = loss * _as_input_tensor(weight, x)
    return _reduce(ops.mean(loss, -1), reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Any,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (cosine along dim 1)."""
    reduction = _reduction_arg(size_average, reduce, reduction, "cosine_embedding_loss")
    x1, x2 = _input(input1, "cosine_embedding_loss"), _input(input2, "cosine_embedding_loss")
    shape = _broadcast_operands("cosine_embedding_loss", input1=x1, input2=x2)
    if x1.ndim not in (1, 2):
        raise ShapeError(f"cosine_embedding_loss: expected (N, D) or (D,) inputs, got shape {tuple(x1.shape)}")
    _check_operand(target, "cosine_embedding_loss", "target")
    y = _as_input_tensor(target, x1)
    if y.shape != shape[:-1]:
        raise ShapeError(
            f"cosine_embedding_loss: expected a target of shape {shape[:-1]} (one +1/-1 per row of the "
            f"inputs of shape {shape}), got {tuple(y.shape)}"
        )
    dim = x1.ndim - 1
    eps = 1e-12  # PyTorch's: keeps the norms of all-zero rows away from 0
    cos = ops.sum(x1 * x2, dim) / ops.sqrt((ops.sum(x1 * x1, dim) + eps) * (ops.sum(x2 * x2, dim) + eps))
    zero = scalar(0, x1.array.dtype)
    loss = ops.where(y.array == 1, 1.0 - cos, zero) + ops.where(y.array == -1, _hinge(cos - margin), zero)
    return _reduce(loss, reduction)


def _distance(a: Tensor, b: Tensor, p: float, eps: float) -> Tensor:
    """torch's pairwise_distance: ||a - b + eps||_p over the last dim (p = inf, -inf and 0 too)."""
    return ops.vector_norm(a - b + eps, p, -1)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-06,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin), d the p-norm distance (``swap`` uses min(d(a, n), d(p, n)))."""
    reduction = _reduction_arg(size_average, reduce, reduction, "triplet_margin_loss")
    a = _input(anchor, "triplet_margin_loss")
    pos, neg = _input(positive, "triplet_margin_loss"), _input(negative, "triplet_margin_loss")
    _broadcast_operands("triplet_margin_loss", anchor=a, positive=pos, negative=neg)
    d_pos = _distance(a, positive, p, eps)
    d_neg = _distance(a, negative, p, eps)
    if swap:
        d_neg = ops.minimum(d_neg, _distance(positive, negative, p, eps))
    return _reduce(_hinge(margin + d_pos - d_neg), reduction)


def multi_margin_loss(
    input: Tensor,
    target: Any,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge loss: for each sample, sum over classes i != y of
    max(0, margin - x[y] + x[i])**p (times weight[y]), divided by the number of classes C.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.multi_margin_loss(ds.tensor([[0.1, 0.2, 0.4, 0.8]]), ds.tensor([3])).item(), 4)
        0.325
    """
    reduction = _reduction_arg(size_average, reduce, reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ArgumentError(f"multi_margin_loss: p must be 1 or 2, got {p!r}")
    x = _input(input, "multi_margin_loss")
    unbatched = x.ndim == 1
    if unbatched:
        x = ops.unsqueeze(x, 0)
    if isinstance(target, Tensor) and target.array.dtype.kind not in "iu":  # 1.7 would be truncated to class 1
        raise DTypeError(
            f"multi_margin_loss: expected scalar type Long but found {target.array.dtype}: the target holds class "
            "indices (e.g. target.long())"
        )
    t = array_like(target, x.array).reshape(-1).astype(np.int64)
    n, c = x.shape
    # The range check reads values: on the host only (on a device it would synchronise).
    if t.shape != (n,) or (is_host(t) and t.size and (t.min() < 0 or t.max() >= c)):
        shown = t.tolist() if is_host(t) else f"shape {tuple(t.shape)}"  # host: the message shows host values only
        raise ShapeError(f"multi_margin_loss: expected {n} class indices in [0, {c}), got {shown}")
    xp = namespace_of(x.array)
    rows = xp.arange(n)
    picked = ops.unsqueeze(x[rows, t], 1)
    others = xp.ones((n, c), dtype=bool)
    others[rows, t] = False  # the target class itself does not count
    # masked before the hinge, not multiplied after it: at an infinite x[y] the target's own term is
    # inf - inf = NaN, and NaN * 0 would spread it to the loss (torch gives 0 or inf there)
    hinge = ops.relu(ops.where(others, margin - picked + x, 0.0))
    if p == 2:
        hinge = hinge * hinge
    per_class = hinge
    if weight is not None:
        per_class = per_class * array_like(weight, x.array, x.array.dtype)[t][:, None]
    loss = ops.sum(per_class, 1) / c
    if unbatched and reduction == "none":
        return ops.squeeze(loss, 0)
    return _reduce(loss, reduction)


def multilabel_margin_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-label hinge loss: ``target`` (N, C) lists each sample's classes, ended by the first -1;
    the loss sums max(0, 1 - (x[j] - x[i])) over its classes j and the other classes i, divided by C.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.multilabel_margin_loss(ds.tensor([[0.1, 0.2, 0.4, 0.8]]), ds.tensor([[3, 0, -1, 1]])).item(), 4)
        0.85
    """
    where = "multilabel_margin_loss"
    reduction = _reduction_arg(size_average, reduce, reduction, where)
    x = _input(input, where)
    if x.ndim > 2 or (x.ndim >= 1 and x.shape[-1] == 0):
        raise ShapeError(f"{where}: expected a non-empty (C,) or (N, C) input, got shape {tuple(x.shape)}")
    raw = target.array if isinstance(target, Tensor) else np.asarray(target)  # host: the caller's target data
    if raw.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{where}: the target must hold integer class indices, got dtype {raw.dtype}")
    if tuple(raw.shape) != x.shape:
        raise ShapeError(f"{where}: the target must have the input's shape {tuple(x.shape)}, got {tuple(raw.shape)}")
    unbatched = x.ndim <= 1
    if unbatched:
        x = ops.reshape(x, (1, -1) if x.ndim else (1, 1))
    t = array_like(raw, x.array, np.int64).reshape(x.shape)
    n, c = x.shape
    listed = np.cumsum(t < 0, axis=1) == 0  # each row's classes end at its first -1
    if is_host(t) and t.size:  # a value check: on a device it would synchronise
        lo, hi = int(t.min()), int(t.max())
        if lo < -1 or hi >= c:
            raise OutOfRangeError(
                f"{where}: target entries must be class indices in [0, {c}) or -1 (the end of the list), "
                f"got {lo if lo < -1 else hi}"
            )
    if is_host(x.array):
        loss = _multilabel_margin_rows(x, t, listed)
    else:  # a device's arrays: the (N, C, C) pairs as ops (the row blocks index on the host)
        # listed_times[i, k]: how often class k is listed for sample i (compared against every class, no
        # scatter). A class listed twice counts twice, as in PyTorch, which loops over the list as given.
        listed_times = ((t[:, :, None] == namespace_of(t).arange(c)) & listed[:, :, None]).sum(axis=1)
        is_target = listed_times > 0
        pairs = (listed_times[:, :, None] * ~is_target[:, None, :]).astype(x.array.dtype)  # (N, j target, i other)
        hinge = ops.relu(1.0 - (ops.unsqueeze(x, 2) - ops.unsqueeze(x, 1)))
        loss = ops.sum(hinge * pairs, (1, 2)) / c
    if unbatched and reduction == "none":
        return ops.reshape(loss, ())
    return _reduce(loss, reduction)


# Row blocks of the multi-label margin hold at most this many bytes of (rows, targets, C) hinges.
_MULTILABEL_BLOCK_BYTES = 32 << 20


def _multilabel_margin_rows(x: Tensor, t: np.ndarray, listed: np.ndarray) -> Tensor:
    """Per-sample multi-label margins of host ``x`` (N, C) in O(N * C * listed) work, a block of rows
    at a time against only the listed targets (PyTorch's loop: each listed j, repeats included, with
    every class i that is not listed). The gradient is kept as two counts per row: for each class i
    how many hinges it sits in as the other class, for each listed slot how many it sits in as j."""
    a = x.array
    n, c = a.shape
    width = int(listed.sum(axis=1).max(initial=0))  # the longest list (lists are prefixes)
    valid = listed[:, :width]
    slots = np.where(valid, t[:, :width], 0)
    is_target = np.zeros((n, c), dtype=bool)  # host: the host kernel (device inputs take the ops path)
    is_target[np.nonzero(valid)[0], slots[valid]] = True
    target_x = np.take_along_axis(a, slots, axis=1)
    loss = np.zeros(n, dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
    want_grad = x.requires_grad and is_grad_enabled()
    as_other = np.zeros((n, c), dtype=a.dtype)  # host: host kernel; filled only when a gradient will be asked for
    as_target = np.zeros((n, width), dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
    rows = max(1, _MULTILABEL_BLOCK_BYTES // max(1, width * c * a.itemsize))
    for s in range(0, n if width else 0, rows):
        b = slice(s, s + rows)
        z = 1 - target_x[b, :, None] + a[b, None, :]  # (rows, listed j, class i)
        z = np.where(valid[b, :, None] & ~is_target[b, None, :], z, 0)
        loss[b] = np.maximum(z, 0).sum(axis=(1, 2)) / c
        if want_grad:
            active = z > 0  # PyTorch's backward counts a hinge strictly above 0
            as_other[b] = active.sum(axis=1)
            as_target[b] = active.sum(axis=2)
    return record_op(loss, (x,), _multilabel_margin_vjp, (slots, as_other, as_target))


def _multilabel_margin_vjp(g, y, args, saved, needs, xp):
    slots, as_other, as_target = saved
    n, c = as_other.shape
    # d loss_n / d x[n, i] = (hinges with i as the other class - hinges with i as the target) / C; the
    # counts are piecewise constant in x (no second derivative), scattered once (targets may repeat)
    flat = (np.arange(n)[:, None] * c + slots).ravel()  # host: the host kernel (device inputs take the ops path)
    counts = as_other - np.bincount(flat, as_target.ravel(), minlength=n * c).reshape(n, c).astype(as_other.dtype)
    # linked to x under create_graph (a zero second derivative, as torch's rule keeps x in the graph)
    return (link_input(xp.expand_dims(g, 1) * xp.constant(counts / c), args[0]),)


_multilabel_margin_vjp.reads_inputs = False  # type: ignore[attr-defined]
_multilabel_margin_vjp.reads_output = False  # type: ignore[attr-defined]


@_legacy_reduction
def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """:func:`triplet_margin_loss` with any ``distance_function(a, b)`` (default: pairwise Euclidean)."""
    _check_reduction(reduction, "triplet_margin_with_distance_loss")
    _same_ndim("triplet_margin_with_distance_loss", anchor=anchor, positive=positive, negative=negative)
    dist = distance_function if distance_function is not None else (lambda a, b: _distance(a, b, 2.0, 1e-6))
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = ops.minimum(d_neg, dist(positive, negative))
    return _reduce(_hinge(margin + d_pos - d_neg), reduction)


class _PairMarginLoss(_Loss):
    """A loss of two inputs and a +1/-1 target with a ``margin`` (0 by default)."""

    def __init__(
        self, margin: float = 0.0, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = float(margin)  # host: a Python number


class MarginRankingLoss(_PairMarginLoss):
    """See :func:`margin_ranking_loss`."""

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return margin_ranking_loss(input1, input2, target, self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """See :func:`hinge_embedding_loss`."""

    def __init__(
        self, margin: float = 1.0, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = float(margin)  # host: a Python number

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """See :func:`soft_margin_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """See :func:`multilabel_soft_margin_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return multilabel_soft_margin_loss(input, target, self.weight, reduction=self.reduction)


class CosineEmbeddingLoss(_PairMarginLoss):
    """See :func:`cosine_embedding_loss`."""

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return cosine_embedding_loss(input1, input2, target, self.margin, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """See :func:`triplet_margin_loss`."""

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = float(margin)  # host: a Python number
        self.p = float(p)  # host: a Python number
        self.eps = float(eps)  # host: a Python number
        self.swap = bool(swap)  # host: a Python number

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_loss(
            anchor, positive, negative, self.margin, self.p, self.eps, self.swap, reduction=self.reduction
        )


class MultiMarginLoss(_WeightedLoss):
    """See :func:`multi_margin_loss`."""

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: Any = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.p, self.margin = p, float(margin)  # host: a Python number

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return multi_margin_loss(input, target, self.p, self.margin, self.weight, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """See :func:`multilabel_margin_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """See :func:`triplet_margin_with_distance_loss`."""

    def __init__(
        self, *, distance_function: Any = None, margin: float = 1.0, swap: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        # PyTorch's default is a PairwiseDistance module, which shows as a child in the repr
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = float(margin)  # host: a Python number
        self.swap = bool(swap)  # host: a Python number

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function, margin=self.margin,
            swap=self.swap, reduction=self.reduction,
        )  # fmt: skip
