"""Run by test_scheduler_optimizer.py under ``mpiexec -n 2`` (and called in-process for one rank): a
scheduler built on the inner optimizer with fit given its DistributedOptimizer, and the other way round,
trains with the scheduled rates and no warning; one built on another optimizer is refused, naming the
optimizer distributed.fit was given.

Usage: mpiexec -n 2 python mpi_worker_scheduler_optimizer.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.errors import ConfigError

EPOCHS = 3
# (what the scheduler is built on, what the fit is given): "inner" the optimizer, "wrap" a
# DistributedOptimizer around it, "other" a second optimizer of the same parameters
SAME_GROUPS = [("inner", "wrap"), ("wrap", "inner"), ("wrap", "wrap"), ("inner", "inner")]
ANOTHER = [("other", "inner"), ("other", "wrap"), ("other wrapped", "inner")]


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)


def run(built_on: str, given: str, fit: Any) -> dict[str, Any]:
    """One fit of 3 epochs with StepLR(gamma=0.5): the rates logged, the warnings, the weights (or the
    error's message)."""
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    inner = optim.SGD(model.parameters(), lr=0.1)
    other = optim.SGD(model.parameters(), lr=0.1)
    parts = {
        "inner": inner,
        "wrap": dist.DistributedOptimizer(inner),
        "other": other,
        "other wrapped": dist.DistributedOptimizer(other),
    }
    sched = optim.lr_scheduler.StepLR(parts[built_on], step_size=1, gamma=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            history = fit(
                model, nn.MSELoss(), parts[given], make_data(), batch_size=16, epochs=EPOCHS, seed=0, scheduler=sched
            )
        except ConfigError as exc:
            return {"error": str(exc)}
    return {
        "lr history": [float(v) for v in history["lr"]],
        "rate after": [float(g["lr"]) for g in inner.param_groups],
        "warnings": [str(w.message) for w in caught if "lr_scheduler" in str(w.message)],
        "weight": model.weight.detach().numpy().tolist(),
    }


def record() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for built_on, given in SAME_GROUPS + ANOTHER:
        out[f"distributed.fit {built_on} -> {given}"] = run(built_on, given, dist.fit)
    return out


def main(out: Path) -> None:
    world = dist.init()
    (out / f"rank{world.rank}.json").write_text(json.dumps(record()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
