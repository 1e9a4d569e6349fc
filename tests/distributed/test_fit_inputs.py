"""distributed.fit with several inputs (a list, a tuple, a dict of arrays, a TensorDataset(x1, x2, y)):
each rank's shard takes the same rows of every input, so 2 ranks with batch B train as one process
with batch 2B (the parameters, the logged loss and validation numbers), as for one input."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn
from downslope.distributed import World
from downslope.distributed.world import _SelfComm
from downslope.errors import ShapeError
from downslope.train.inputs import Inputs, NamedInputs

WORKER = Path(__file__).with_name("mpi_worker_sync.py")
RTOL = 1e-5


@pytest.fixture(scope="module")
def worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("downslope_mpi_worker_sync", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_process() -> World:
    return World(rank=0, world_size=1, backend="single", comm=_SelfComm())


def _reference(worker: ModuleType, form: str, batch: int) -> tuple[dict[str, np.ndarray], Any]:
    """One process reading each epoch's permutation in batches of ``batch`` (ds.fit over the loader)."""
    model, opt = worker.make_model_and_optimizer()
    train, validation = worker.fit_data(form)
    device = next(model.parameters()).device  # the batches made there, as dist.fit makes them
    loader = dist.DistributedDataLoader(
        train, batch_size=batch, seed=worker.ORDER_SEED, world=_one_process(), device=device
    )
    history = ds.fit(model, nn.MSELoss(), opt, loader, validation=validation, **worker.fit_options())
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}, history


@pytest.mark.parametrize("form", ["list", "tuple", "dict", "tensor_dataset"])
def test_in_one_process_it_is_fit(worker: ModuleType, form: str) -> None:
    model, opt = worker.make_model_and_optimizer()
    train, validation = worker.fit_data(form)
    history = dist.fit(
        model, nn.MSELoss(), opt, train, validation=validation, batch_size=worker.PER_RANK_BATCH,
        seed=worker.ORDER_SEED, **worker.fit_options(),
    )  # fmt: skip
    params, ref = _reference(worker, form, worker.PER_RANK_BATCH)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), params[key], err_msg=key)
    for key in ("loss", "val_loss", "val_mae"):
        assert history[key] == ref[key], key


def test_the_loader_gives_the_same_rows_of_every_input_grouped_as_fit_passes_them() -> None:
    ids = np.arange(10).reshape(10, 1)
    numbers = np.arange(10.0).reshape(10, 1) * 10
    for x, kind in (([ids, numbers], Inputs), ({"b": numbers, "a": ids}, NamedInputs)):
        loader = dist.DistributedDataLoader((x, np.arange(10.0)), batch_size=4, seed=1, world=_one_process())
        for xb, yb in loader:
            assert type(xb) is kind
            first, second = (xb[0], xb[1]) if kind is Inputs else (xb["a"], xb["b"])
            np.testing.assert_array_equal(second.numpy(), first.numpy() * 10)
            np.testing.assert_array_equal(yb.numpy(), first.numpy().ravel())
            assert first.dtype == ds.int64  # integer ids stay integers


def test_inputs_of_different_lengths_are_refused() -> None:
    model = nn.Linear(1, 1)
    data = ([np.zeros((4, 1)), np.zeros((5, 1))], np.zeros((4, 1)))
    with pytest.raises(ShapeError, match=r"distributed.fit\(train=...\): every input needs one row per sample"):
        dist.fit(model, nn.MSELoss(), ds.optim.SGD(model.parameters(), lr=0.1), data, epochs=1, seed=0)


@pytest.mark.slow
def test_two_ranks_match_one_process_with_the_double_batch(
    mpiexec: list[str], worker: ModuleType, tmp_path: Path
) -> None:
    worker.launch(mpiexec, "fit_inputs", tmp_path)
    ranks = [dict(np.load(tmp_path / f"fit{r}.npz")) for r in range(2)]
    for form in worker.FORMS:
        params, history = _reference(worker, form, 2 * worker.PER_RANK_BATCH)
        for key, ref in params.items():
            ours = ranks[0][f"{form}/param/{key}"]
            np.testing.assert_array_equal(ours, ranks[1][f"{form}/param/{key}"])
            np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-6 * max(1.0, np.abs(ref).max()), err_msg=key)
        # the logged numbers are global: the mean training loss, the validation over both shares (4 + 3 rows)
        for key in ("loss", "val_loss", "val_mae"):
            for r in range(2):
                np.testing.assert_allclose(ranks[r][f"{form}/history/{key}"], history[key], rtol=RTOL, err_msg=key)
