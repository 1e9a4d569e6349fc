"""Connectionist temporal classification (CTC): the forward-backward recursion over a padded target.

The recursion is a loop over time steps of short vectors, so it runs on the host whatever the
input's device: the log-probabilities and lengths are copied to the host once per call, and the
loss and its gradient are copied back to the input's device (lines marked ``# host:``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import ops
from ...devices import device_of, to_device, to_host
from ...errors import ArgumentError, ShapeError
from ...tensor import Tensor, record_op, wrap_array
from ._base import (
    _check_reduction,
    _input,
    _Loss,
)


def _logsumexp(*terms: np.ndarray) -> np.ndarray:
    stacked = np.stack(terms)
    top = np.max(stacked, axis=0)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(top), safe + np.log(np.sum(np.exp(stacked - safe), axis=0)), -np.inf)


def _ctc_one(lp: np.ndarray, target: np.ndarray, blank: int) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of one target under (T, C) log-probabilities, and its gradient
    (PyTorch's form: exp(lp) minus the posterior occupancy of each class, so a log_softmax before it
    passes the exact gradient to the logits)."""
    steps, classes = lp.shape
    ext = np.full(2 * len(target) + 1, blank, dtype=np.int64)  # host: the recursion runs on the host
    ext[1::2] = target
    n = len(ext)
    # skip[s]: s may come from s - 2 (a label different from the one two back)
    skip = np.zeros(n, dtype=bool)  # host: the recursion runs on the host
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full((steps, n), -np.inf)  # host: the recursion runs on the host
    pad = np.full(min(2, n), -np.inf)  # host: as long as a skip reaches back (shorter for an empty target)
    alpha[0, 0] = lp[0, ext[0]]
    if n > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, steps):
        prev = alpha[t - 1]
        one = np.concatenate([[-np.inf], prev[:-1]])
        two = np.where(skip, np.concatenate([pad, prev[:-2]]), -np.inf)
        alpha[t] = _logsumexp(prev, one, two) + lp[t, ext]
    beta = np.full((steps, n), -np.inf)  # host: the recursion runs on the host
    beta[-1, -1] = lp[-1, ext[-1]]
    if n > 1:
        beta[-1, -2] = lp[-1, ext[-2]]
    skip_back = np.zeros(n, dtype=bool)  # host: the recursion runs on the host
    skip_back[:-2] = skip[2:]
    for t in range(steps - 2, -1, -1):
        nxt = beta[t + 1]
        one = np.concatenate([nxt[1:], [-np.inf]])
        two = np.where(skip_back, np.concatenate([nxt[2:], pad]), -np.inf)
        beta[t] = _logsumexp(nxt, one, two) + lp[t, ext]
    last = alpha[-1, -2] if n > 1 else np.array(-np.inf)  # host: the recursion runs on the host
    loglik = float(_logsumexp(alpha[-1, -1], last))  # host: the recursion runs on the host
    occupancy = np.zeros((steps, classes))  # host: the recursion runs on the host
    if np.isfinite(loglik):
        with np.errstate(invalid="ignore"):
            weight = np.exp(alpha + beta - lp[:, ext] - loglik)
        for s in range(n):
            occupancy[:, ext[s]] += np.nan_to_num(weight[:, s])
    return -loglik, np.exp(lp) - occupancy


def ctc_loss(
    log_probs: Tensor,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist temporal classification loss (Graves et al., 2006) of (T, N, C) log-probabilities
    (``log_softmax`` output) against label sequences: ``targets`` (N, S) padded or 1-D concatenated.
    'mean' averages each sample's loss divided by its target length, as PyTorch does.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> lp = ds.zeros(2, 1, 2).log_softmax(2)  # two steps, each class with probability 1/2
        >>> round(F.ctc_loss(lp, ds.tensor([[1]]), [2], [1], reduction="sum").item(), 4)  # 3 paths of prob 1/4
        0.2877
    """
    _check_reduction(reduction, "ctc_loss")
    x = _input(log_probs, "ctc_loss")
    unbatched = x.ndim == 2
    if unbatched:
        x = ops.unsqueeze(x, 1)
    steps, batch, classes = x.shape
    lp = to_host(x.array).astype(np.float64)  # host: the recursion below runs on the host
    in_len = to_host(input_lengths.array if isinstance(input_lengths, Tensor) else input_lengths).reshape(-1)
    tg_len = to_host(target_lengths.array if isinstance(target_lengths, Tensor) else target_lengths).reshape(-1)
    tg = to_host(targets.array if isinstance(targets, Tensor) else targets).astype(np.int64)
    if in_len.shape != (batch,) or tg_len.shape != (batch,):
        raise ShapeError(f"ctc_loss: expected {batch} input and target lengths, got {in_len.shape} and {tg_len.shape}")
    if np.any(in_len > steps) or np.any(in_len < 0):
        shown = in_len.tolist()  # host: the lengths were copied to the host above
        raise ArgumentError(f"ctc_loss: input_lengths must lie in [0, {steps}], got {shown}")
    offsets = np.concatenate([[0], np.cumsum(tg_len)])
    losses = np.zeros(batch)  # host: the recursion runs on the host
    grad = np.zeros_like(lp)
    for b in range(batch):
        label = tg[b, : tg_len[b]] if tg.ndim == 2 else tg[offsets[b] : offsets[b + 1]]
        if np.any(label == blank) or np.any(label < 0) or np.any(label >= classes):
            raise ArgumentError(f"ctc_loss: target labels must lie in [0, {classes}) and differ from blank={blank}")
        t_b = int(in_len[b])
        nothing = np.zeros((0, classes))  # host: the recursion runs on the host
        loss, g = _ctc_one(lp[:t_b, b], label, blank) if t_b else (np.inf, nothing)
        if zero_infinity and not np.isfinite(loss):
            loss, g = 0.0, np.zeros_like(g)
        losses[b] = loss
        grad[:t_b, b] = g
    where = device_of(x.array)
    out = record_op(
        to_device(losses.astype(x.array.dtype), where), (x,), _ctc_vjp, to_device(grad.astype(x.array.dtype), where)
    )
    if reduction == "mean":
        return ops.mean(out / wrap_array(to_device(np.maximum(tg_len, 1).astype(x.array.dtype), where)))
    if reduction == "sum":
        return ops.sum(out)
    return ops.squeeze(out, 0) if unbatched else out


def _ctc_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        raise ArgumentError("ctc_loss: double backward is not supported")
    return (saved * g[None, :, None],)


class CTCLoss(_Loss):
    """See :func:`ctc_loss`; call as ``loss(log_probs, targets, input_lengths, target_lengths)``."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs: Tensor, targets: Any, input_lengths: Any, target_lengths: Any) -> Tensor:
        return ctc_loss(
            log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity
        )
