"""fit's checkpoint_dir lock: held by one process while it trains, and gone when fit ends."""

from __future__ import annotations

import os

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.train.resume import LOCK_FILE, _is_the_file, hold_checkpoint_dir, release_checkpoint_dir


def test_fit_leaves_only_its_checkpoint_in_the_directory(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    model = nn.Linear(2, 1)
    for _ in range(2):  # a second fit into the same directory takes it again
        ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, x[:, :1] * 2), epochs=2,
               checkpoint_dir=tmp_path, verbose=0)  # fmt: skip
        assert sorted(os.listdir(tmp_path)) == ["last.ckpt"]


def test_a_lock_on_a_released_and_removed_lock_file_does_not_count(tmp_path):
    pytest.importorskip("fcntl")
    held = hold_checkpoint_dir(tmp_path)
    opened_before = os.open(tmp_path / LOCK_FILE, os.O_RDONLY)  # another process, just before the release
    try:
        release_checkpoint_dir(held, tmp_path)
        assert not (tmp_path / LOCK_FILE).exists()
        assert not _is_the_file(opened_before, tmp_path / LOCK_FILE)  # its lock would guard a removed file
        again = hold_checkpoint_dir(tmp_path)  # the directory is taken on a new lock file
        try:
            assert _is_the_file(again, tmp_path / LOCK_FILE)
            with pytest.raises(ds.DownslopeError, match="another process is training into this directory"):
                hold_checkpoint_dir(tmp_path)
        finally:
            release_checkpoint_dir(again, tmp_path)
    finally:
        os.close(opened_before)
