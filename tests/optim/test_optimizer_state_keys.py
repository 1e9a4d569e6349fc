"""Optimizer state dicts with PyTorch's keys after some steps: each param group's hyperparameter
names and each parameter's state names (with the options that add state switched on) are torch's,
so a checkpoint moves between the two libraries without missing or stray entries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("AdamW", {"amsgrad": True}),
    ("Adagrad", {}),
    ("Adadelta", {}),
    ("Adamax", {}),
    ("ASGD", {}),
    ("NAdam", {"decoupled_weight_decay": True}),
    ("RAdam", {}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Rprop", {}),
    ("Adafactor", {}),
    ("Muon", {}),
    ("LBFGS", {}),
]


def _state_keys(lib: Any, name: str, kwargs: dict[str, Any]) -> tuple[list[str], dict[Any, list[str]]]:
    rng = np.random.default_rng(0)
    shapes = [(3, 2)] if name == "Muon" else [(3, 2), (4,)]  # Muon takes matrices only
    params = [lib.nn.Parameter(lib.tensor(rng.standard_normal(s).astype(np.float32))) for s in shapes]
    opt = getattr(lib.optim, name)(params, **kwargs)

    def closure() -> Any:
        opt.zero_grad()
        loss = sum((p * p).sum() for p in params)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    state = opt.state_dict()
    return sorted(state["param_groups"][0]), {k: sorted(v) for k, v in state["state"].items()}


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{'-'.join(k) or 'default'}" for n, k in CASES])
def test_param_group_and_state_keys_are_torchs_after_steps(name: str, kwargs: dict[str, Any]) -> None:
    assert _state_keys(ds, name, kwargs) == _state_keys(torch, name, kwargs)


def test_sparse_adam_state_keys_are_torchs() -> None:
    def keys(lib: Any) -> tuple[list[str], dict[Any, list[str]]]:
        emb = lib.nn.Embedding(5, 2, sparse=True)
        opt = lib.optim.SparseAdam(list(emb.parameters()), lr=0.1)
        emb(lib.tensor([1, 3])).sum().backward()
        opt.step()
        state = opt.state_dict()
        return sorted(state["param_groups"][0]), {k: sorted(v) for k, v in state["state"].items()}

    assert keys(ds) == keys(torch)
