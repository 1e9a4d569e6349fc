"""torch.distributed's queries (is_available, is_initialized, get_rank, get_world_size) against torch's
answers in a process with no process group, and after ``init()`` made one."""

from __future__ import annotations

import pytest

from downslope import distributed as dist
from downslope.distributed import World, world

torch = pytest.importorskip("torch")


def test_before_init_the_queries_answer_as_torchs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    assert dist.is_available() is torch.distributed.is_available() is True
    assert dist.is_initialized() is torch.distributed.is_initialized() is False
    for ours, theirs in (
        (dist.get_rank, torch.distributed.get_rank),
        (dist.get_world_size, torch.distributed.get_world_size),
    ):
        with pytest.raises(ValueError, match="Default process group has not been initialized") as got:
            ours()
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            theirs()
        assert isinstance(got.value, RuntimeError)  # downslope's UninitializedError is both


def test_after_init_they_read_the_world(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "_world", None)
    w = dist.init()
    assert dist.is_initialized() and (dist.get_rank(), dist.get_world_size()) == (w.rank, w.world_size) == (0, 1)
    monkeypatch.setattr(world, "_world", World(rank=2, world_size=4, backend="fake", comm=None))
    assert (dist.get_rank(), dist.get_world_size()) == (2, 4)
