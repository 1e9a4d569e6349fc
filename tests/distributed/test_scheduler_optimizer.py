"""A scheduler and the optimizer fit is given: one built on the inner optimizer with fit given its
DistributedOptimizer, or the other way round, steps the same param groups, so it is taken and trains at
the scheduled rates without a false "lr_scheduler.step() before optimizer.step()" warning; one built on
another optimizer is refused, the message naming the optimizer to build it on (the one distributed.fit
was given, not the DistributedOptimizer it makes). In one process and on 2 MPI ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim

WORKER = Path(__file__).with_name("mpi_worker_scheduler_optimizer.py")
HALVED = [0.1, 0.05, 0.025]  # StepLR(step_size=1, gamma=0.5) from 0.1 over 3 epochs


def _load_worker() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("mpi_worker_scheduler_optimizer", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(records: dict[str, Any], worker: Any) -> None:
    weights = []
    for built_on, given in worker.SAME_GROUPS:
        got = records[f"distributed.fit {built_on} -> {given}"]
        assert "error" not in got, (built_on, given, got)
        assert got["lr history"] == HALVED and got["rate after"] == [0.0125], (built_on, given)
        assert got["warnings"] == [], (built_on, given)  # the optimizer did step before the scheduler
        weights.append(got["weight"])
    assert all(w == weights[0] for w in weights)  # the same training, whichever object the scheduler holds
    described = "SGD(lr=0.1) holding 2 parameter tensors"
    expected = {
        ("other", "inner"): (f"another optimizer, {described} (an optimizer alike but not the same object)",
                             f"distributed.fit was given {described}: build the scheduler on that optimizer"),
        ("other", "wrap"): (f"another optimizer, {described}, so",
                            f"distributed.fit was given a DistributedOptimizer around {described}: build"),
        ("other wrapped", "inner"): (f"another optimizer, a DistributedOptimizer around {described}, so",
                                     f"distributed.fit was given {described}: build"),
    }  # fmt: skip
    for (built_on, given), parts in expected.items():
        message = records[f"distributed.fit {built_on} -> {given}"]["error"]
        assert message.startswith("distributed.fit: the scheduler (StepLR) steps another optimizer")
        for part in parts:
            assert part in message, message
        assert "sched = optim.lr_scheduler.StepLR(opt, ...); distributed.fit(model, loss_fn, opt" in message


def test_in_one_process() -> None:
    worker = _load_worker()
    _check(worker.record(), worker)


@pytest.mark.parametrize("built_on, given", [("inner", "wrap"), ("wrap", "inner")])
def test_ds_fit_takes_the_wrapper_and_its_optimizer_either_way_round_without_a_false_warning(built_on, given):
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    inner = optim.SGD(model.parameters(), lr=0.1)
    parts = {"inner": inner, "wrap": dist.DistributedOptimizer(inner)}
    sched = optim.lr_scheduler.StepLR(parts[built_on], step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "lr_scheduler.step() before optimizer.step()" was a false alarm here
        history = ds.fit(model, nn.MSELoss(), parts[given], _load_worker().make_data(), epochs=3, scheduler=sched)
    assert history["lr"] == HALVED and inner.param_groups[0]["lr"] == 0.0125


def test_a_scheduler_on_the_wrapper_still_warns_when_nothing_stepped() -> None:
    # the warning stays where it is true: no step of the wrapper nor of the optimizer it wraps
    model = nn.Linear(3, 1)
    sched = optim.lr_scheduler.StepLR(dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1)), 1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def test_on_two_ranks(mpiexec: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [*mpiexec, "-n", "2", sys.executable, str(WORKER), str(tmp_path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec -n 2 hung for 120 s; output so far:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    worker = _load_worker()
    for rank_records in records:
        _check(rank_records, worker)
    assert records[0] == records[1]  # the same rates, weights and messages on both ranks
