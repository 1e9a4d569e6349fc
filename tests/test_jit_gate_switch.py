"""DOWNSLOPE_JIT is read on every kernel call, cheaply, and a change at run time is seen at once."""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
import pytest

from downslope import jit_gate


def test_the_switch_follows_the_environment_as_it_changes(monkeypatch):
    monkeypatch.delenv("DOWNSLOPE_JIT", raising=False)
    assert not jit_gate.switched_off()
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    assert jit_gate.switched_off()
    monkeypatch.setenv("DOWNSLOPE_JIT", "1")
    assert not jit_gate.switched_off()
    os.environ["DOWNSLOPE_JIT"] = "0"  # plain assignment (monkeypatch restores the variable after)
    assert jit_gate.switched_off()
    with mock.patch.dict(os.environ, {"DOWNSLOPE_JIT": "yes"}):
        assert not jit_gate.switched_off()  # only "0" switches it off, as before
    assert jit_gate.switched_off()
    del os.environ["DOWNSLOPE_JIT"]
    assert not jit_gate.switched_off()
    with jit_gate.disabled():
        assert jit_gate.switched_off()


def test_a_replaced_environment_mapping_is_still_read(monkeypatch):
    monkeypatch.setattr(os, "environ", {"DOWNSLOPE_JIT": "0"})
    assert jit_gate.switched_off()
    monkeypatch.setattr(os, "environ", {})
    assert not jit_gate.switched_off()


def test_each_kernel_call_reads_the_switch_without_os_environ_get(monkeypatch):
    # os.environ.get converts the name and the value between str and bytes on every call: the
    # gate reads os.environ's own store instead (what os.environ[...] = ... writes)
    monkeypatch.setenv("DOWNSLOPE_JIT", "1")  # restored after the test (monkeypatch reads it with get)
    pytest.importorskip("numba")  # imported first: numba reads its own settings with os.environ.get
    jit_gate.kernels("downslope.ops._jit_softmax")
    real_get, asked = os.environ.get, []

    def get(key, *default):
        asked.append(key)
        return real_get(key, *default)

    monkeypatch.setattr(os.environ, "get", get)
    assert not jit_gate.switched_off()
    assert jit_gate.kernels("downslope.ops._jit_softmax", np.zeros(2, np.float32), None) is not None
    assert jit_gate.kernels("downslope.ops._jit_softmax", np.zeros(2, np.float16)) is None
    os.environ["DOWNSLOPE_JIT"] = "0"
    assert jit_gate.switched_off() and jit_gate.kernels("downslope.ops._jit_softmax") is None
    assert asked == []
