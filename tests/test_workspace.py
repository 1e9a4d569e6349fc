"""Scratch arrays reused across steps (downslope.workspace)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope import workspace as _workspace


@pytest.fixture(autouse=True)
def empty_workspace():
    _workspace.clear()
    yield
    _workspace.clear()


def _shares(a: np.ndarray, b: np.ndarray) -> bool:
    return np.shares_memory(a, b)


def test_a_given_block_is_handed_out_again_for_any_shape_and_dtype_that_fits():
    a = _workspace.take((4, 6), np.float32)  # 96 bytes
    _workspace.give(a)
    b = _workspace.take((12,), np.float64)  # 96 bytes: the same block, another view
    assert _shares(a, b) and b.shape == (12,) and b.dtype == np.float64 and b.flags.c_contiguous
    c = _workspace.take((4, 6), np.float32)
    assert not _shares(b, c), "a block is handed out once per give"


def test_blocks_much_larger_than_asked_are_not_used():
    big = _workspace.take((1000,), np.float32)
    _workspace.give(big)
    small = _workspace.take((10,), np.float32)
    assert not _shares(big, small)
    assert _shares(_workspace.take((600,), np.float32), big), "within twice the size: reused"


def test_a_view_gives_back_its_whole_block():
    a = _workspace.take((3, 8), np.float32)
    _workspace.give(a.T[1:])
    assert _shares(_workspace.take((3, 8), np.float32), a)


def test_a_lease_gives_its_array_back_when_released():
    a = _workspace.take((4,), np.float32)
    lease = _workspace.Lease(a)
    assert not _shares(_workspace.take((4,), np.float32), a)
    del lease
    assert _shares(_workspace.take((4,), np.float32), a)


def test_kept_blocks_are_bounded(monkeypatch):
    monkeypatch.setattr(_workspace, "LIMIT_BYTES", 100)
    big = _workspace.take((50,), np.float32)  # 200 bytes: over the limit, not kept
    _workspace.give(big)
    assert not _shares(_workspace.take((50,), np.float32), big)
    monkeypatch.setattr(_workspace, "LIMIT_BYTES", 10**6)
    monkeypatch.setattr(_workspace, "MAX_KEPT", 2)
    blocks = [_workspace.take((n,), np.float32) for n in (10, 20, 30)]
    _workspace.give(*blocks)  # only the two larger ones are kept
    assert _shares(_workspace.take((18,), np.float32), blocks[1])
    assert _shares(_workspace.take((28,), np.float32), blocks[2])
    assert not _shares(_workspace.take((10,), np.float32), blocks[0])


def test_a_lent_array_comes_back_only_when_its_last_view_is_gone():
    big = (_workspace.LEND_MIN_BYTES // 4 + 16,)
    a = _workspace.lend(big, np.float32)
    a[:] = 1.0
    view = a[8:]
    address = a.__array_interface__["data"][0]
    del a
    b = _workspace.lend(big, np.float32)  # the view still holds the first block
    assert not _shares(view, b)
    assert float(view.sum()) == view.size
    del view
    c = _workspace.lend(big, np.float32)
    assert c.__array_interface__["data"][0] == address, "the first block is lent again"
    del b, c


def test_small_lent_arrays_are_plain_arrays():
    a = _workspace.lend((3, 4), np.float64)
    assert a.shape == (3, 4) and a.dtype == np.float64 and a.flags.owndata
    z = _workspace.lend_zeros((_workspace.LEND_MIN_BYTES // 8 + 1,), np.float64)
    assert not z.any()


def test_a_device_array_gets_scratch_of_its_own_namespace_and_is_never_pooled():
    from downslope.devices import strict

    x = strict.zeros((2, 3), dtype=np.float32)
    for make in (_workspace.take, _workspace.lend, _workspace.lend_zeros):
        a = make((4, 6), np.float32, x)
        assert type(a) is strict.StrictArray and a.shape == (4, 6) and a.dtype == np.float32
        _workspace.give(a)  # ignored: the host pool keeps host blocks only
        b = _workspace.take((4, 6), np.float32)
        assert type(b) is np.ndarray
    assert type(_workspace.take((4, 6), np.float32, np.ones(2))) is np.ndarray


def test_a_finalizer_run_while_the_pool_is_locked_does_not_deadlock():
    """The garbage collector can run a lent array's finalizer (or free a Lease) inside a section that
    holds the pool's lock, when an allocation there sets it off: the finalizer must not wait for the
    lock (a conv net once hung forever this way). Its block is filed by the next caller instead."""
    import threading

    _workspace.clear()
    lent = _workspace.lend((1 << 18,), np.float32)
    lease = _workspace.Lease(_workspace.take((1 << 16,), np.float32))

    def free_both_under_the_lock():
        with _workspace._lock:  # as if the collector ran inside give()
            nonlocal lent, lease
            del lent, lease

    worker = threading.Thread(target=free_both_under_the_lock, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "a finalizer waited for the lock its own thread holds"
    assert len(_workspace._returned) == 2
    _workspace.give()  # the next caller files them
    assert not _workspace._returned
    assert len(_workspace._lent.blocks) == 1 and len(_workspace._taken.blocks) == 1


def test_take_of_an_empty_shape() -> None:
    """An empty batch asks for zero-size temporaries: no 1-byte block viewed as a wider dtype."""
    for dtype in (np.float32, np.float64, np.int64):
        a = _workspace.take((0, 3, 4), dtype)
        assert a.shape == (0, 3, 4) and a.dtype == dtype
        _workspace.give(a)
        assert all(b.nbytes for b in _workspace._taken.blocks)  # nothing empty is kept
