"""A recorded ``buf[index] = value`` (the buffer in the graph) writes into the buffer's own storage: its rule
reads no old values (the old buffer's gradient is the incoming one with the written part zeroed, as torch's
CopySlices), so no copy of the whole buffer is made per write, while version checks and gradients stay as
before. Gradients are compared with PyTorch in float64."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")


def _rnn_with_buffer(lib: Any, xn: np.ndarray, wn: np.ndarray, un: np.ndarray) -> tuple[Any, ...]:
    """A from-scratch RNN writing each state into a preallocated buffer and reading the previous row."""
    x = lib.tensor(xn, dtype=lib.float64)
    w = lib.tensor(wn, dtype=lib.float64, requires_grad=True)
    u = lib.tensor(un, dtype=lib.float64, requires_grad=True)
    h = lib.zeros(xn.shape[0] + 1, xn.shape[1], un.shape[0], dtype=lib.float64)
    for t in range(1, xn.shape[0] + 1):
        h[t] = lib.tanh(x[t - 1] @ w + h[t - 1].clone() @ u)
    h.pow(2).mean().backward()
    return h, w, u


def test_rnn_state_buffer_gradients_match_torch() -> None:
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((12, 3, 4))
    wn = rng.standard_normal((4, 5)) * 0.5
    un = rng.standard_normal((5, 5)) * 0.4
    hd, wd, ud = _rnn_with_buffer(ds, xn, wn, un)
    ht, wt, ut = _rnn_with_buffer(torch, xn, wn, un)
    np.testing.assert_allclose(hd.detach().numpy(), ht.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ud.grad.numpy(), ut.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "write",
    [
        "row",  # buf[i] = v
        "slice_copy",  # buf[i:i+1].copy_(v): through the view, the base's recorded write
        "fill",  # buf[i].fill_(v-dependent scalar tensor)
        "iadd",  # buf[i] += v: a read of the row, then buf[i] = row
        "advanced",  # buf[[i, i + 1]] = v
    ],
)
def test_row_writes_into_a_buffer_match_torch(write: str) -> None:
    rng = np.random.default_rng(1)
    vn = rng.standard_normal(4)
    grads = []
    for lib in (ds, torch):
        v = lib.tensor(vn, dtype=lib.float64, requires_grad=True)
        buf = lib.zeros(6, 4, dtype=lib.float64)
        buf[0] = v * 2.0
        for i in range(1, 5):
            prev = v * lib.tanh(buf[i - 1])  # (tanh saves its output, not the row: writes after are fine)
            if write == "row":
                buf[i] = prev
            elif write == "slice_copy":
                buf[i : i + 1].copy_(prev.unsqueeze(0))
            elif write == "fill":
                buf[i].fill_(prev.sum())
            elif write == "iadd":
                buf[i] += prev
            else:
                buf[[i, i + 1]] = v + buf[i - 1]
        (buf * lib.arange(24.0, dtype=lib.float64).reshape(6, 4)).sum().backward()
        grads.append((buf.detach().numpy().copy(), v.grad.numpy().copy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10)


def test_a_recorded_row_write_copies_no_buffer() -> None:
    # torch's CopySlices copies nothing of the old base: a loop of row writes into a (T, ...) buffer is
    # linear. Memory is the test: a copy of the buffer per write would allocate its 4 MB.
    v = ds.ones(64, requires_grad=True) * 2.0
    buf = ds.zeros(16384, 64)
    buf[0] = v
    tracemalloc.start()
    try:
        for i in range(1, 4):
            buf[i] = v
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < buf.array.nbytes // 8, f"a row write allocated {peak} bytes (the buffer is {buf.array.nbytes})"
    assert buf._version == 4
    np.testing.assert_array_equal(buf.detach().numpy()[:4], 2.0)


def test_a_rule_that_saved_the_buffer_still_sees_the_write() -> None:
    v = ds.ones(3, requires_grad=True)
    buf = ds.zeros(4, 3)
    buf[0] = v
    y = buf.exp()  # saves its output, a new tensor: fine
    z = buf * v  # saves buf for v's gradient
    buf[1] = v * 3.0
    with pytest.raises(StateError, match="modified by an inplace operation"):
        z.sum().backward()
    y.sum().backward()  # exp's saved output is not the buffer
    assert v.grad is not None


def test_an_overlapping_slice_write_matches_torch() -> None:
    rng = np.random.default_rng(2)
    vn = rng.standard_normal((5, 3))
    out = []
    for lib in (ds, torch):
        v = lib.tensor(vn, dtype=lib.float64, requires_grad=True)
        buf = v * 1.0
        buf[1:] = buf[:-1] * 2.0  # the value is computed from the buffer it is written into
        # a view of the buffer as the value, over the memory written (torch asks for a clone; the values and
        # gradients are those of the clone)
        buf[2:] = buf[:-2] if lib is ds else buf[:-2].clone()
        (buf * lib.arange(15.0, dtype=lib.float64).reshape(5, 3)).sum().backward()
        out.append((buf.detach().numpy().copy(), v.grad.numpy().copy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-12)
