"""Run by test_fit_agreement.py under ``mpiexec -n 2``: distributed.fit with a ReduceLROnPlateau
scheduler (every rank must step it with the global validation loss), then the single-process
``ds.fit`` in the same launched job (it must warn that each rank trains alone).

Usage: mpiexec -n 2 python mpi_worker_fit_agreement.py OUT_DIR
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

PER_RANK_BATCH = 16
ORDER_SEED = 7
EPOCHS = 8


def make_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Training (192 rows) and validation (50 rows) of a 3-class problem."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(192, 10)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 1)
    xv = rng.normal(size=(50, 10)).astype(np.float32)
    yv = (xv[:, :3].sum(1) > 0).astype(np.int64) + (xv[:, 3] > 1)
    return (x, y), (xv, yv)


def make_parts() -> tuple[nn.Module, Any, Any]:
    """The model (the same on every rank), Adam and a ReduceLROnPlateau that reduces within 8 epochs."""
    ds.manual_seed(1)  # one process reduces the rate after epoch 6 (its 2nd epoch with no new best)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = optim.Adam(model.parameters(), lr=5e-2)
    return model, opt, optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.3)


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught]


def main(out: Path) -> None:
    world = dist.init()
    train, validation = make_data()
    model, opt, sched = make_parts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = dist.fit(
            model, nn.CrossEntropyLoss(), opt, train, validation=validation, batch_size=PER_RANK_BATCH,
            epochs=EPOCHS, seed=ORDER_SEED, scheduler=sched,
        )  # fmt: skip
    record: dict[str, Any] = {
        "lr history": [float(v) for v in history["lr"]],
        "val_loss": [float(v) for v in history["val_loss"]],
        "best": float(sched.best),
        "bad epochs": int(sched.num_bad_epochs),
        "final lr": float(opt.param_groups[0]["lr"]),
        "dist.fit warnings": _messages(caught),
    }
    np.savez(out / f"params{world.rank}.npz", **{k: v.detach().numpy() for k, v in model.state_dict().items()})

    alone, alone_opt, _ = make_parts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # warned once per process, not once per call
            ds.fit(alone, nn.CrossEntropyLoss(), alone_opt, train, epochs=1, batch_size=64, verbose=0)
    record["ds.fit warnings"] = _messages(caught)
    (out / f"rank{world.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
