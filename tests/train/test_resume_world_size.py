"""A checkpoint of a data-parallel run (``distributed.fit`` on W processes) resumed by ``ds.fit`` in one
process: refused with the command to use, as ``distributed.fit`` on another number of processes refuses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.data import DataLoader
from downslope.distributed.world import World, _SelfComm
from downslope.errors import CheckpointError
from downslope.serialization import load, save


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((24, 3)).astype(np.float32), rng.standard_normal((24, 1)).astype(np.float32)


def _two_rank_loader_state(x: np.ndarray, y: np.ndarray) -> dict:
    # what rank 0 of a 2-process distributed.fit stores as its training loader's state
    world = World(rank=0, world_size=2, backend="fake", comm=_SelfComm())
    loader = dist.DistributedDataLoader((x, y), batch_size=4, seed=5, world=world)
    next(iter(loader))
    return loader.state_dict()


def test_a_plain_loader_refuses_a_data_parallel_state() -> None:
    x, y = _data()
    loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=5)
    with pytest.raises(CheckpointError, match="saved by 2 processes, this run has 1; resume under mpiexec -n 2"):
        loader.load_state_dict(_two_rank_loader_state(x, y))
    loader.load_state_dict(loader.state_dict())  # its own state still loads


def test_fit_in_one_process_refuses_a_two_process_checkpoint(tmp_path: Path) -> None:
    x, y = _data()
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), batch_size=4, epochs=1, seed=5,
           checkpoint_dir=tmp_path, verbose=0)  # fmt: skip
    ckpt = load(tmp_path / "last.ckpt")
    ckpt["train_loader"] = _two_rank_loader_state(x, y)
    save(ckpt, tmp_path / "two_ranks.ckpt")
    model = nn.Linear(3, 1)
    with pytest.raises(CheckpointError, match=r"two_ranks\.ckpt.*saved by 2 processes.*mpiexec -n 2"):
        ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), batch_size=4, epochs=2, seed=5,
               resume_from=tmp_path / "two_ranks.ckpt", verbose=0)  # fmt: skip
