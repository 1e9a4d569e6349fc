"""The optional compiled path (downslope.nn._jit): off switches, and no numba import with downslope."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from downslope.nn import _jit


def test_import_downslope_does_not_import_numba():
    code = "import sys, downslope, downslope.nn; print('numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_environment_switch_and_disabled_turn_the_kernels_off(monkeypatch):
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    assert _jit.kernels() is None
    monkeypatch.delenv("DOWNSLOPE_JIT")
    with _jit.disabled():
        with _jit.disabled():
            assert _jit.kernels() is None
        assert _jit.kernels() is None
    pytest.importorskip("numba")
    assert _jit.kernels() is not None


def test_the_core_gate_and_this_one_are_one_switch(monkeypatch):
    # the gate lives in the core (downslope.jit_gate) so that core ops can use it: either module's
    # disabled() turns off both the nn kernels and the core's softmax kernels
    from downslope import jit_gate

    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)
    pytest.importorskip("numba")
    for switch in (jit_gate.disabled, _jit.disabled):
        with switch():
            assert _jit.kernels() is None and jit_gate.kernels("downslope.ops._jit_softmax") is None
            assert _jit._off  # read by the LSTM's gate (_rnn_jit)
    assert not _jit._off
    assert _jit.kernels() is not None and jit_gate.kernels("downslope.ops._jit_softmax") is not None
    with pytest.raises(AttributeError):
        _jit.no_such_name  # noqa: B018


def test_the_compiled_kernels_engage_for_host_arrays_only(monkeypatch):
    # numba compiles for host memory: a device array (here the strict stand-in) takes the NumPy-formulated path.
    from downslope.devices import strict

    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)  # CI also runs this file with the switch off

    pytest.importorskip("numba")
    host = np.zeros((2, 2), dtype=np.float32)
    assert _jit.kernels(host, None) is not None
    assert _jit.kernels(host, strict.asarray(host)) is None


def test_a_convolution_and_pooling_on_the_strict_device_match_the_host_with_the_jit_path_on():
    import downslope as ds
    from downslope.nn import functional as F

    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 16, 6, 6), (16, 16, 3, 3), (16,)))

    def net(device: str) -> ds.Tensor:  # Winograd and the one-pass 2x2 pooling on the host (with numba)
        x_, w_, b_ = (ds.tensor(a, device=device) for a in (x, w, b))
        return F.max_pool2d(F.conv2d(x_, w_, b_, padding=1), 2)

    host, device = net("cpu"), net("strict")
    assert device.device == ds.device("strict")
    np.testing.assert_allclose(device.cpu().detach().numpy(), host.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_a_depthwise_convolution_on_the_strict_device_matches_the_host_with_the_jit_path_on():
    # The direct depthwise kernels take host arrays; the strict device's arrays take im2col in their namespace.
    import downslope as ds
    from downslope.nn import functional as F

    rng = np.random.default_rng(4)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 6, 7, 7), (12, 1, 3, 3), (12,)))

    def net(device: str) -> tuple[ds.Tensor, ...]:
        x_, w_, b_ = (ds.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
        out = F.conv2d(x_, w_, b_, stride=2, padding=1, groups=6)
        out.square().sum().backward()
        return out, x_.grad, w_.grad, b_.grad

    for host, device in zip(net("cpu"), net("strict")):
        assert device.device == ds.device("strict")
        np.testing.assert_allclose(device.cpu().detach().numpy(), host.detach().numpy(), rtol=1e-4, atol=1e-5)
