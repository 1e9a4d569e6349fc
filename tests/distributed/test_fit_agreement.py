"""What must agree across the ranks of distributed.fit: a ReduceLROnPlateau scheduler is stepped with
the global validation loss on every rank (so 2 ranks equal one process with the double batch), and
the single-process ds.fit run by a launcher warns that each rank trains alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn
from downslope.distributed import World
from downslope.distributed.world import _SelfComm

WORKER = Path(__file__).with_name("mpi_worker_fit_agreement.py")


def _load_worker() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("mpi_worker_fit_agreement", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def two_ranks(mpiexec: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("fit_agreement")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [*mpiexec, "-n", "2", sys.executable, str(WORKER), str(out)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=out)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec -n 2 hung for 120 s; output so far:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_reduce_lr_on_plateau_steps_with_the_global_loss_on_every_rank(
    two_ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, records = two_ranks
    worker = _load_worker()
    train, validation = worker.make_data()
    model, opt, sched = worker.make_parts()
    # one process reading what the two ranks read together: each epoch's permutation in batches of 2B
    one = World(rank=0, world_size=1, backend="single", comm=_SelfComm())
    loader = dist.DistributedDataLoader(train, batch_size=2 * worker.PER_RANK_BATCH, seed=worker.ORDER_SEED, world=one)
    history = ds.fit(
        model, nn.CrossEntropyLoss(), opt, loader, validation=validation, epochs=worker.EPOCHS, scheduler=sched,
        verbose=0,
    )  # fmt: skip
    assert history["lr"][-1] < history["lr"][0]  # the plateau is reached within the run
    for rank, record in enumerate(records):
        assert record["lr history"] == pytest.approx(history["lr"], rel=1e-6), rank
        np.testing.assert_allclose(record["val_loss"], history["val_loss"], rtol=1e-4, err_msg=f"rank {rank}")
        assert record["best"] == pytest.approx(min(record["val_loss"]), rel=1e-6), rank  # a logged, global number
        assert record["best"] == pytest.approx(sched.best, rel=1e-4), rank
        assert record["bad epochs"] == sched.num_bad_epochs and record["final lr"] == pytest.approx(
            opt.param_groups[0]["lr"]
        )
        assert not any("dist.fit" in m for m in record["dist.fit warnings"]), record["dist.fit warnings"]
    reference = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for rank in range(2):
        with np.load(out / f"params{rank}.npz") as saved:
            for key, ref in reference.items():
                np.testing.assert_allclose(saved[key], ref, rtol=1e-4, atol=1e-5, err_msg=f"rank {rank} {key}")


def test_ds_fit_under_a_launcher_warns_once_that_each_rank_trains_alone(
    two_ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, records = two_ranks
    for rank, record in enumerate(records):
        alone = [m for m in record["ds.fit warnings"] if "dist.fit" in m]
        assert len(alone) == 1, (rank, record["ds.fit warnings"])
        assert "one of 2 processes" in alone[0] and "independent copy" in alone[0], alone[0]
