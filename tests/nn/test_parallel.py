"""Parts of a layer's work on several threads (downslope.parallel): the split, and a conv-BN-ReLU-pool
stack run that way against PyTorch."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import downslope as ds
from downslope import gemm
from downslope import parallel as _parallel
from downslope.nn import _jit

torch = pytest.importorskip("torch")


@pytest.fixture
def two_threads(monkeypatch):
    """oneDNN's GEMM on two threads, and every kernel's work split however small."""
    if not gemm.available():
        pytest.skip("oneDNN's GEMM is not installed (the onednn extra) or is switched off")
    monkeypatch.setattr(_parallel, "MIN_WORK", 0)
    threads = gemm.get_num_threads()
    gemm.set_num_threads(2)
    yield
    gemm.set_num_threads(threads or 1)


def test_parts_cover_the_range_in_order_on_two_threads_and_restore_the_gemm_threads(two_threads):
    seen = []

    def run(lo, hi):
        seen.append((lo, hi, threading.current_thread() is threading.main_thread(), gemm.get_num_threads()))
        return hi - lo

    assert _parallel.over_parts(np.zeros(1), 7, 10, run) == [3, 4]
    assert sorted(seen) == [(0, 3, True, 1), (3, 7, False, 1)]  # each part's GEMMs on one thread
    assert gemm.get_num_threads() == 2


def test_one_part_for_device_arrays_small_work_or_one_thread(monkeypatch):
    assert _parallel.over_parts([0.0], 8, 10**9, lambda lo, hi: (lo, hi)) == [(0, 8)]  # not a host array
    monkeypatch.setattr(_parallel, "MIN_WORK", 100)
    assert _parallel.parts(np.zeros(1), 8, 99) == 1
    with gemm.disabled():
        assert _parallel.parts(np.zeros(1), 8, 10**9) == 1


def test_a_failing_part_raises_after_every_part_ended(two_threads):
    ended = []

    def run(lo, hi):
        if lo == 0:
            raise RuntimeError("first part")
        ended.append(hi)

    with pytest.raises(RuntimeError, match="first part"):
        _parallel.over_parts(np.zeros(1), 4, 10, run)
    assert ended == [4]
    assert gemm.get_num_threads() == 2


@pytest.mark.parametrize("kernels", ["numpy", "jit"])
def test_conv_batchnorm_relu_pool_stack_on_two_threads_matches_torch(assert_close, two_threads, kernels):
    """Conv(3->16)-BN-ReLU-MaxPool(2)-Conv(16->16)-BN: im2col and Winograd convolutions, batch
    norm and 2x2 pooling each split over two threads; values and every gradient against torch.
    (No convolution bias: before batch norm its gradient is zero, left as rounding noise.)"""
    if kernels == "jit" and _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 10, 10)).astype(np.float32)
    torch.manual_seed(2)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1, bias=False), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 16, 3, padding=1, bias=False), torch.nn.BatchNorm2d(16),
    )  # fmt: skip
    ours = ds.nn.Sequential(
        ds.nn.Conv2d(3, 16, 3, padding=1, bias=False), ds.nn.BatchNorm2d(16), ds.nn.ReLU(), ds.nn.MaxPool2d(2),
        ds.nn.Conv2d(16, 16, 3, padding=1, bias=False), ds.nn.BatchNorm2d(16),
    )  # fmt: skip
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if kernels == "numpy":
        with _jit.disabled():
            out_d = ours(xd)
    else:
        out_d = ours(xd)
    out_t = theirs(xt)
    assert_close(out_d.detach().numpy(), out_t.detach().numpy(), np.float32, "output")
    proj = rng.standard_normal(out_t.shape).astype(np.float32)
    if kernels == "numpy":
        with _jit.disabled():
            (out_d * ds.tensor(proj)).sum().backward()
    else:
        (out_d * ds.tensor(proj)).sum().backward()
    (out_t * torch.tensor(proj)).sum().backward()
    assert_close(xd.grad.numpy(), xt.grad.numpy(), np.float32, "input gradient")
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(mine[name].grad.numpy(), p.grad.numpy(), np.float32, f"{name}.grad")


def test_relu_split_over_two_threads_equals_the_op(two_threads):
    # F.relu's pooled path runs its forward and gradient passes in parts at once; the result must be ds.relu's.
    from downslope.nn import functional as F

    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 8, 50, 57)).astype(np.float32).transpose(1, 0, 2, 3)  # strided; uneven parts
    x.flat[:3] = [0.0, np.nan, -0.0]
    g = rng.standard_normal(x.shape).astype(np.float32)
    split, plain = ds.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    y_split = F.relu(split)
    y_split.backward(ds.tensor(g))
    y_plain = ds.relu(plain)
    y_plain.backward(ds.tensor(g))
    np.testing.assert_array_equal(y_split.detach().numpy(), y_plain.detach().numpy())
    np.testing.assert_array_equal(split.grad.numpy(), plain.grad.numpy())
