"""The optional compiled path (downslope.nn._jit): off switches, and no numba import with downslope."""

from __future__ import annotations

import subprocess
import sys

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
