"""Connectionist temporal classification (CTC): the forward-backward recursion over padded targets.

The recursion is a loop over time steps of short vectors, so it runs on the host whatever the
input's device: the log-probabilities and lengths are copied to the host once per call, and the
loss and its gradient are copied back to the input's device (lines marked ``# host:``). It runs in
float64 (PyTorch's float32 results differ from these by no more than from its own float64 ones),
in the compiled kernel of ``_jit_ctc`` where numba is installed, else over the whole batch at once
in NumPy, one call per time step."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import jit_gate, ops
from ...devices import device_of, to_device, to_host
from ...errors import ArgumentError, DTypeError, ShapeError
from ...tensor import Tensor, record_op, wrap_array
from ._base import (
    _check_reduction,
    _input,
    _Loss,
)

_NEG_INF = -np.inf
_FLOOR = np.finfo(np.float64).min  # a finite floor for the max-shift, so that an all -inf triple gives -inf, not NaN


def _logsumexp3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """log(exp(a) + exp(b) + exp(c)) elementwise, shifted by the max (-inf where all three are -inf)."""
    top = np.maximum(np.maximum(a, b), c)
    np.maximum(top, _FLOOR, out=top)
    total = np.exp(a - top)
    total += np.exp(b - top)
    total += np.exp(c - top)
    with np.errstate(divide="ignore"):
        out = np.log(total)
    out += top
    return out


def _ctc_batch(
    lp: np.ndarray, labels: np.ndarray, in_len: np.ndarray, tg_len: np.ndarray, blank: int
) -> tuple[np.ndarray, np.ndarray]:
    """Negative log-likelihoods (N,) of the padded label rows ``labels`` (N, L) under (T, N, C)
    float64 log-probabilities, and their gradient (T, N, C) in PyTorch's form: exp(lp) minus the
    posterior occupancy of each class, so a log_softmax before it passes the exact gradient to the
    logits; zero past each input length. The alpha/beta recursions run over the whole batch at once
    (the label sequences padded to the longest extended length 2L+1, padded states at -inf), looping
    over time only, in log space."""
    steps, batch, classes = lp.shape
    n = 2 * labels.shape[1] + 1
    ext = np.full((batch, n), blank, dtype=np.int64)  # host: the recursion runs on the host
    ext[:, 1::2] = labels
    n_b = 2 * tg_len + 1
    # skip[b, s]: state s may come from s - 2 (a label different from the one two back)
    can_skip = np.zeros((batch, n), dtype=bool)  # host: the recursion runs on the host
    can_skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    compiled = jit_gate.kernels("downslope.nn.losses._jit_ctc", lp)
    if compiled is not None:
        losses = np.empty(batch)  # host: the recursion runs on the host
        grad = np.empty_like(lp)
        compiled.ctc_batch(lp, ext, n_b, can_skip, in_len, losses, grad)
        return losses, grad
    valid = np.arange(n) < n_b[:, None]  # host: the recursion runs on the host
    rows = np.arange(batch)  # host: the recursion runs on the host
    lpe = lp[:, rows[:, None], ext]  # (T, N, S): each state's log-probability
    lpe[:, ~valid] = _NEG_INF
    skip = np.where(can_skip, 0.0, _NEG_INF)  # additive: -inf where s cannot come from s - 2
    last_step = int(in_len.max()) if batch else 0  # host: the lengths are on the host
    # alpha with two -inf columns in front (the states s - 1 and s - 2 of the first states)
    alpha = np.full((max(last_step, 1), batch, n + 2), _NEG_INF)  # host: the recursion runs on the host
    alpha[0, :, 2:4] = lpe[0, :, :2]
    for t in range(1, last_step):
        prev = alpha[t - 1]
        alpha[t, :, 2:] = _logsumexp3(prev[:, 2:], prev[:, 1:-1], prev[:, :-2] + skip)
        alpha[t, :, 2:] += lpe[t]
    # beta with two -inf columns behind, seeded at each sample's last step
    beta = np.full((last_step + 1, batch, n + 2), _NEG_INF)  # host: the recursion runs on the host
    skip_back = np.full((batch, n), _NEG_INF)  # host: the recursion runs on the host
    skip_back[:, :-2] = skip[:, 2:]
    ends = in_len - 1
    final = np.stack([n_b - 1, n_b - 2])  # the two states a path may end in (-1: none, for an empty target)
    for t in range(last_step - 1, -1, -1):
        nxt = beta[t + 1]
        beta[t, :, :n] = _logsumexp3(nxt[:, :n], nxt[:, 1 : n + 1], nxt[:, 2:] + skip_back)
        beta[t, :, :n] += lpe[t]
        starting = np.flatnonzero(ends == t)
        if starting.size:
            for s in final:
                b = starting[s[starting] >= 0]
                beta[t, b, s[b]] = lpe[t, b, s[b]]
    with np.errstate(invalid="ignore"):
        loglik = np.where(tg_len == 0, 0.0, _NEG_INF)  # no input steps: only an empty target is possible
        has = in_len > 0
        b = rows[has]
        end_alpha = alpha[ends[has], b]
        pick = np.arange(b.size)  # host: the recursion runs on the host
        loglik[has] = np.logaddexp(
            end_alpha[pick, final[0, has] + 2],
            np.where(final[1, has] >= 0, end_alpha[pick, np.maximum(final[1, has], 0) + 2], _NEG_INF),
        )
    grad = np.zeros_like(lp)
    if last_step:
        both = alpha[:last_step, :, 2:] + beta[:last_step, :, :n]  # log of the paths through (t, s), lp[t] twice
        top = both.max(axis=2, keepdims=True)
        top[~np.isfinite(top)] = 0.0
        weight = np.exp(both - top)
        onehot = np.zeros((batch, n, classes))  # host: the recursion runs on the host
        onehot[rows[:, None], np.arange(n), ext] = valid  # host: the recursion runs on the host
        occupancy = np.matmul(weight.transpose(1, 0, 2), onehot).transpose(1, 0, 2)  # (T, N, C)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # exp(log(sum over the class's states) - lp - loglik): 0 where no path uses the class
            # (a -inf log-probability included, where PyTorch's formula gives NaN)
            posterior = np.where(occupancy > 0, np.exp(np.log(occupancy) + top - lp[:last_step] - loglik[:, None]), 0.0)
        active = np.arange(last_step)[:, None] < in_len[None, :]  # host: the recursion runs on the host
        grad[:last_step] = np.where(active[:, :, None], np.exp(lp[:last_step]) - posterior, 0.0)
        # an impossible alignment (loss inf): NaN over the sample's steps, as in PyTorch, so that
        # training visibly fails (zero_infinity=True zeroes these instead)
        grad[:last_step][active & ~np.isfinite(loglik)[None, :]] = np.nan
    return -loglik, grad


def _lengths(value: Any, name: str, batch: int) -> np.ndarray:
    """Lengths given as a Tensor, array, list or tuple of integers: an int64 host vector of ``batch``
    entries."""
    raw = to_host(value.array if isinstance(value, Tensor) else value)  # host: lengths decide the loops
    if raw.dtype.kind not in "iu" and not (raw.size == 0 and isinstance(value, (list, tuple))):
        raise DTypeError(f"ctc_loss: {name} must be integral (as in PyTorch), got dtype {raw.dtype}")
    flat = raw.reshape(-1).astype(np.int64)
    if flat.shape != (batch,):
        raise ShapeError(
            f"ctc_loss: expected one {name} entry per sample, {batch} (the batch of log_probs), got {flat.size}"
        )
    return flat


def _check_range(lengths: np.ndarray, name: str, upper: int | None, what: str) -> None:
    low = np.flatnonzero(lengths < 0)
    high = np.flatnonzero(lengths > upper) if upper is not None else low[:0]
    bad = np.concatenate([low, high])
    if bad.size:
        b = int(bad.min())
        within = f"[0, {upper}] ({what})" if upper is not None else ">= 0"
        raise ShapeError(f"ctc_loss: {name} must lie in {within}; sample {b} has {name[:-1]} {int(lengths[b])}")


def _label_rows(tg: np.ndarray, tg_len: np.ndarray, batch: int) -> np.ndarray:
    """The targets as padded rows (N, max target length), after checking that they hold every label
    that ``target_lengths`` asks for (PyTorch refuses fewer, as a short row is a collate bug)."""
    shown = tg_len.tolist()  # host: the lengths are on the host
    if tg.ndim == 2:
        if tg.shape[0] != batch:
            raise ShapeError(
                f"ctc_loss: 2-D targets must have one row per sample ({batch}), got shape {tuple(tg.shape)}"
            )
        longest = int(tg_len.max()) if batch else 0
        if longest > tg.shape[1]:
            b = int(np.argmax(tg_len))
            raise ShapeError(
                f"ctc_loss: targets of shape {tuple(tg.shape)} hold at most {tg.shape[1]} labels per sample, but sample "
                f"{b} has target length {longest} (target_lengths {shown})"
            )
        return tg[:, :longest]
    if tg.ndim != 1:
        raise ShapeError(
            f"ctc_loss: expected targets of 1 (concatenated) or 2 (padded) dims, got shape {tuple(tg.shape)}"
        )
    total = int(tg_len.sum())
    if tg.shape[0] != total:
        raise ShapeError(
            f"ctc_loss: 1-D (concatenated) targets must hold sum(target_lengths) = {total} labels, got {tg.shape[0]} "
            f"(target_lengths {shown})"
        )
    longest = int(tg_len.max()) if batch else 0
    rows = np.zeros((batch, longest), dtype=np.int64)  # host: the labels are on the host
    keep = np.arange(longest) < tg_len[:, None]  # host: the labels are on the host
    rows[keep] = tg
    return rows


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
    'mean' averages each sample's loss divided by its target length, as PyTorch does. An impossible
    alignment (a target too long for its input) gives an infinite loss and NaN gradients for that
    sample, as in PyTorch, unless ``zero_infinity`` zeroes both.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> lp = ds.zeros(2, 1, 2).log_softmax(2)  # two steps, each class with probability 1/2
        >>> round(F.ctc_loss(lp, ds.tensor([[1]]), [2], [1], reduction="sum").item(), 4)  # 3 paths of prob 1/4
        0.2877
    """
    _check_reduction(reduction, "ctc_loss")
    x = _input(log_probs, "ctc_loss")
    if x.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got shape {tuple(x.shape)}")
    unbatched = x.ndim == 2
    if unbatched:
        x = ops.unsqueeze(x, 1)
    steps, batch, classes = x.shape
    in_len = _lengths(input_lengths, "input_lengths", batch)
    tg_len = _lengths(target_lengths, "target_lengths", batch)
    _check_range(in_len, "input_lengths", steps, "the time steps of log_probs")
    _check_range(tg_len, "target_lengths", None, "")
    tg = to_host(targets.array if isinstance(targets, Tensor) else targets)  # host: labels decide the paths
    labels = _label_rows(tg.astype(np.int64), tg_len, batch)
    used = labels[np.arange(labels.shape[1]) < tg_len[:, None]]  # host: the labels are on the host
    bad = np.flatnonzero((used == blank) | (used < 0) | (used >= classes))
    if bad.size:
        raise ArgumentError(
            f"ctc_loss: target labels must lie in [0, {classes}) and differ from blank={blank}, got {int(used[bad[0]])}"
        )
    lp = to_host(x.array).astype(np.float64)  # host: the recursion below runs on the host
    losses, grad = _ctc_batch(lp, labels, in_len, tg_len, blank)
    if zero_infinity:
        dead = ~np.isfinite(losses)
        losses[dead] = 0.0
        grad[:, dead] = 0.0
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
