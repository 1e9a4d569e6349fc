"""``func.replace_all_batch_norm_modules_``: batch norms stop tracking running statistics in place (and
then normalize with the batch's statistics in eval mode too), as torch.func's; instance norms are left."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_X = np.random.default_rng(0).standard_normal((4, 2, 5, 5))


def _run(lib: Any) -> tuple[Any, np.ndarray, list[str]]:
    model = lib.nn.Sequential(lib.nn.BatchNorm2d(2), lib.nn.InstanceNorm2d(2, track_running_stats=True)).double()
    out = lib.func.replace_all_batch_norm_modules_(model)
    model.eval()  # without running statistics, eval mode still uses the batch's
    y = model(lib.tensor(_X, dtype=lib.float64))
    return out is model, y.detach().numpy(), sorted(model.state_dict())


def test_batch_norms_stop_tracking_running_stats_as_torch() -> None:
    (same, ours, keys), (same_t, theirs, keys_t) = _run(ds), _run(torch)
    assert same and same_t
    assert keys == keys_t
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    bn = ds.func.replace_all_batch_norm_modules_(ds.nn.BatchNorm1d(3))  # the root itself
    assert bn.running_mean is None and bn.running_var is None and bn.num_batches_tracked is None
    assert not bn.track_running_stats
