"""Resuming a fit on data that changed anywhere warns (every row of array data is hashed, not 256
samples); the same data does not, and a checkpoint holding the older sampled digest is compared alike."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.data import ArrayDataset, DataLoader
from downslope.train.resume import ALL_ROWS, FINGERPRINT_SAMPLES, data_fingerprint, warn_if_other_data


def _fit(X, y, epochs, ckpt_dir, resume=None):
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optim.SGD(model.parameters(), 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.fit(
            model,
            nn.CrossEntropyLoss(),
            opt,
            (X, y),
            epochs=epochs,
            batch_size=256,
            verbose=0,
            seed=0,
            checkpoint_dir=None if resume else ckpt_dir,
            resume_from=resume,
        )
    return [str(w.message) for w in caught if "the checkpoint was trained with" in str(w.message)]


def _data(n=3000):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def test_a_change_to_one_row_between_the_samples_warns(tmp_path):
    X, y = _data()
    ckpt = tmp_path / "ck"
    assert _fit(X, y, 1, ckpt) == []
    assert _fit(X, y, 2, ckpt, resume=ckpt) == []  # the same data: no warning
    n = len(X)
    sampled = {round(i * (n - 1) / (FINGERPRINT_SAMPLES - 1)) for i in range(FINGERPRINT_SAMPLES)}
    row = next(i for i in range(n) if i not in sampled)
    changed = X.copy()
    changed[row, 3] += 1.0
    said = _fit(changed, y, 2, ckpt, resume=ckpt)
    assert len(said) == 1 and "other values" in said[0], said
    swapped = X.copy()
    swapped[[row, row + 1]] = swapped[[row + 1, row]]  # the same rows in another order
    assert len(_fit(swapped, y, 2, ckpt, resume=ckpt)) == 1


def test_the_fingerprint_covers_every_row_of_array_datasets_only():
    X, y = _data(1000)
    full = data_fingerprint(DataLoader(ArrayDataset(X, y), batch_size=10))
    assert full is not None and full["hashed"] == ALL_ROWS and full["samples"] == 1000
    assert data_fingerprint(DataLoader(ArrayDataset(X.copy(), y), batch_size=99)) == full  # blocks do not matter

    class Computed(ds.data.Dataset):
        def __len__(self):
            return 1000

        def __getitem__(self, i):
            return X[i], y[i]

    sampled = data_fingerprint(DataLoader(Computed(), batch_size=10))
    assert sampled is not None and "hashed" not in sampled


def test_a_checkpoint_with_the_older_sampled_digest_is_compared_alike():
    X, y = _data(1000)
    loader = DataLoader(ArrayDataset(X, y), batch_size=10)
    old_style = {"data": data_fingerprint(loader, every_row=False), "train_loader": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_other_data(old_style, loader, "old.ckpt")  # no false alarm
    changed = X.copy()
    changed[0] += 1  # a sampled row: the old digest sees it
    with pytest.warns(UserWarning, match="other values"):
        warn_if_other_data(old_style, DataLoader(ArrayDataset(changed, y), batch_size=10), "old.ckpt")
