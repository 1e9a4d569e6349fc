"""DataLoader(drop_last=True) with fewer samples than one batch: no batch at all, as in PyTorch (a small
fold of a k-fold loop); ds.fit refuses such a loader rather than train on nothing."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("n, batch_size", [(3, 4), (1, 2), (5, 6), (4, 4), (7, 3), (3, 100)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last_gives_torch_s_length_and_batches(n, batch_size, shuffle):
    ours = ds.utils.data.DataLoader(
        ds.utils.data.TensorDataset(np.ones((n, 2), np.float32)), batch_size=batch_size, drop_last=True, shuffle=shuffle
    )
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.ones(n, 2)), batch_size=batch_size, drop_last=True, shuffle=shuffle
    )
    assert len(ours) == len(theirs)
    assert [b[0].shape for b in ours] == [tuple(b[0].shape) for b in theirs]
    assert ours.batch_size == theirs.batch_size


def test_fit_refuses_a_loader_that_gives_no_batches():
    x, y = np.zeros((3, 2), np.float32), np.zeros((3, 1), np.float32)
    empty = ds.data.DataLoader((x, y), batch_size=4, drop_last=True)
    model = nn.Linear(2, 1)
    with pytest.raises(
        ConfigError, match=r"fit\(train=\.\.\.\): the DataLoader gives no batches: 3 sample\(s\), batch_size 4"
    ):
        ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), empty, verbose=0)
    with pytest.raises(ConfigError, match=r"fit\(validation=\.\.\.\): the DataLoader gives no batches"):
        ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), validation=empty, verbose=0)
    with pytest.raises(ConfigError, match=r"evaluate: the DataLoader gives no batches.*drop_last=False"):
        ds.evaluate(model, nn.MSELoss(), empty)
