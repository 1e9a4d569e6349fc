"""Scratch arrays reused across steps (downslope.nn._workspace)."""

from __future__ import annotations

import numpy as np

from downslope.nn import _workspace


def test_given_arrays_are_handed_out_again_by_shape_and_dtype():
    _workspace.clear()
    a = _workspace.take((3, 5), np.float32)
    _workspace.give(a)
    assert _workspace.take((3, 5), np.float64) is not a, "another dtype gets another array"
    assert _workspace.take((5, 3), np.float32) is not a, "another shape gets another array"
    assert _workspace.take((3, 5), np.float32) is a
    assert _workspace.take((3, 5), np.float32) is not a, "an array is handed out once per give"


def test_a_lease_gives_its_array_back_when_released():
    _workspace.clear()
    a = _workspace.take((4,), np.float32)
    lease = _workspace.Lease(a)
    assert _workspace.take((4,), np.float32) is not a
    del lease
    assert _workspace.take((4,), np.float32) is a


def test_kept_arrays_are_bounded(monkeypatch):
    _workspace.clear()
    monkeypatch.setattr(_workspace, "LIMIT_BYTES", 100)
    big = _workspace.take((50,), np.float32)  # 200 bytes: over the limit, not kept
    _workspace.give(big)
    assert _workspace.take((50,), np.float32) is not big
    small = [_workspace.take((2,), np.float32) for _ in range(3)]
    _workspace.give(*small)
    kept = {id(_workspace.take((2,), np.float32)) for _ in range(3)}
    assert len(kept & {id(s) for s in small}) == _workspace.PER_SHAPE
    _workspace.clear()
