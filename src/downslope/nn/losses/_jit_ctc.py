"""Compiled (numba) CTC forward-backward: the alpha/beta recursions, the loss and PyTorch's gradient of
each sample in plain loops; imported only when ``jit_gate.kernels`` says the compiled path applies
(numba installed, not switched off, host arrays).

The NumPy path (``ctc._ctc_batch``) runs the same recursions over the whole batch at once, one
time step per NumPy call; here each step's few states cost no call at all. Both work in float64 and
agree to rounding (the parity tests run both against PyTorch).

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.nn.losses._jit_ctc")
    >>> if k is not None:
    ...     lp = np.log(np.full((2, 1, 2), 0.5))  # two steps, two classes of probability 1/2
    ...     ext = np.array([[0, 1, 0]])
    ...     losses, grad = np.empty(1), np.empty((2, 1, 2))
    ...     k.ctc_batch(lp, ext, np.array([3]), np.array([[False, False, False]]), np.array([2]), losses, grad)
    ...     assert round(float(losses[0]), 4) == 0.2877  # 3 paths of probability 1/4
"""

from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _lse(a, b, c):
    """log(exp(a) + exp(b) + exp(c)), -inf where all three are; the max's own term (1) and the -inf
    terms (a blank state has no skip) cost no exp."""
    if a < b:
        a, b = b, a
    if a < c:
        a, c = c, a
    if a == -np.inf:
        return a
    rest = 0.0
    if b != -np.inf:
        rest += math.exp(b - a)
    if c != -np.inf:
        rest += math.exp(c - a)
    return a + math.log1p(rest)


@_jit
def ctc_batch(lp, ext, n_b, skip, in_len, losses, grad):
    """For each sample ``b`` of the (T, N, C) float64 log-probabilities ``lp``: its extended label
    sequence ``ext[b, :n_b[b]]`` (blanks around and between the labels), ``skip[b, s]`` where state s
    may come from s - 2, and its input length. Writes the negative log-likelihood to ``losses[b]``
    (inf where no alignment exists) and PyTorch's gradient to ``grad[:, b]``: exp(lp) minus the
    posterior occupancy of each class over the first ``in_len[b]`` steps (NaN there for an infinite
    loss), zero after them."""
    steps, batch, classes = lp.shape
    ninf = -np.inf
    for b in range(batch):
        tb = in_len[b]
        n = n_b[b]
        grad[:, b, :] = 0.0
        if tb == 0:
            losses[b] = 0.0 if n == 1 else np.inf  # no steps: only the empty target has a path
            continue
        alpha = np.full((tb, n), ninf)  # host: a compiled kernel, on host arrays only
        beta = np.full((tb, n), ninf)  # host: a compiled kernel, on host arrays only
        alpha[0, 0] = lp[0, b, ext[b, 0]]
        if n > 1:
            alpha[0, 1] = lp[0, b, ext[b, 1]]
        for t in range(1, tb):
            for s in range(n):
                one = alpha[t - 1, s - 1] if s >= 1 else ninf
                two = alpha[t - 1, s - 2] if skip[b, s] else ninf
                alpha[t, s] = _lse(alpha[t - 1, s], one, two) + lp[t, b, ext[b, s]]
        beta[tb - 1, n - 1] = lp[tb - 1, b, ext[b, n - 1]]
        if n > 1:
            beta[tb - 1, n - 2] = lp[tb - 1, b, ext[b, n - 2]]
        for t in range(tb - 2, -1, -1):
            for s in range(n):
                one = beta[t + 1, s + 1] if s + 1 < n else ninf
                two = beta[t + 1, s + 2] if s + 2 < n and skip[b, s + 2] else ninf
                beta[t, s] = _lse(beta[t + 1, s], one, two) + lp[t, b, ext[b, s]]
        loglik = _lse(alpha[tb - 1, n - 1], alpha[tb - 1, n - 2] if n > 1 else ninf, ninf)
        losses[b] = -loglik
        if loglik == ninf:
            grad[:tb, b, :] = np.nan  # as PyTorch: the gradient of an impossible alignment
            continue
        for t in range(tb):
            row = grad[t, b]
            for c in range(classes):
                row[c] = math.exp(lp[t, b, c])
            for s in range(n):
                both = alpha[t, s] + beta[t, s]
                if both != ninf:  # no path through (t, s); a -inf log-probability included
                    c = ext[b, s]
                    row[c] -= math.exp(both - lp[t, b, c] - loglik)
