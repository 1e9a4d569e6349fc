"""distributed.fit reads the data at a float64 model's dtype (as the one-process fit), so float64
inputs keep their digits instead of passing through float32 on the way."""

import numpy as np

import downslope.distributed as dist
from downslope import nn, optim


class _Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(1, 1).double()
        self.batches: list[np.ndarray] = []

    def forward(self, x):
        self.batches.append(x.detach().numpy().copy())
        return self.inner(x)


def test_float64_model_sees_float64_data_with_its_digits():
    x = (1.0 + 1e-12 * np.arange(32)).reshape(-1, 1)  # all 1.0 in float32
    y = 2 * x
    model = _Recorder()
    opt = optim.SGD(model.parameters(), lr=0.01)
    dist.fit(model, nn.MSELoss(), opt, (x, y), validation=(x, y), batch_size=8, epochs=1, seed=0, verbose=0)
    seen = np.concatenate(model.batches)
    assert seen.dtype == np.float64
    assert len(np.unique(seen)) == 32  # training and validation batches kept every distinct value
