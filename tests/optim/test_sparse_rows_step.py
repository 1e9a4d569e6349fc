"""SparseAdam and plain SGD step on Embedding(sparse=True)'s gradient held as rows + values: only
the rows looked up are read and written (the dense gradient is never made), with PyTorch's numbers
after 20 steps and exactly its set of rows moved."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.row_grads import rows_of

torch = pytest.importorskip("torch")

ROWS, DIM, STEPS = 300, 4, 20


def _tables(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal((ROWS, DIM)).astype(np.float32) for _ in range(n)]


def _batches() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    return [
        (rng.integers(0, 60, 32), rng.integers(30, 90, 32), rng.standard_normal(32).astype(np.float32))
        for _ in range(STEPS)
    ]


def _train(T: Any, opt_name: str, opt_kw: dict[str, Any], emb_kw: dict[str, Any], grads_seen: list[Any]) -> list[Any]:
    """Matrix factorisation: users and items tables, MSE of their dot product; returns the tables."""
    users = T.nn.Embedding(ROWS, DIM, sparse=True, **emb_kw)
    items = T.nn.Embedding(ROWS, DIM, sparse=True, **emb_kw)
    for layer, table in zip((users, items), _tables(2)):
        with T.no_grad():
            layer.weight.copy_(T.tensor(table))
    opt = getattr(T.optim, opt_name)([users.weight, items.weight], **opt_kw)
    for k, (u, i, r) in enumerate(_batches()):
        opt.zero_grad()
        loss = ((users(T.tensor(u)) * items(T.tensor(i))).sum(-1) - T.tensor(r)).pow(2).mean()
        loss.backward()
        if k % 5 == 4:  # gradient accumulation: a second backward before the step
            (users(T.tensor(u[:3])) * 0.5).sum().backward()
        opt.step()
        if T is ds:  # held as rows on the host (a table on a device keeps the dense scatter)
            grads_seen.append(rows_of(users.weight.grad) is not None or type(users.weight.array) is not np.ndarray)
    return [users.weight.detach().numpy(), items.weight.detach().numpy()]


CASES = [
    ("SparseAdam", {"lr": 0.05}, {}),
    ("SparseAdam", {"lr": 0.05, "maximize": True}, {}),
    ("SparseAdam", {"lr": 0.05, "betas": (0.8, 0.99)}, {"padding_idx": 7}),
    ("SGD", {"lr": 0.3}, {}),
    ("SGD", {"lr": 0.3, "maximize": True}, {"padding_idx": 7}),
    ("SGD", {"lr": 0.3, "momentum": 0.9}, {}),  # momentum reaches every row: the dense step, still torch's numbers
    ("Adagrad", {"lr": 0.2}, {}),
    ("Adagrad", {"lr": 0.2, "lr_decay": 0.05, "initial_accumulator_value": 0.1, "maximize": True}, {"padding_idx": 7}),
]


@pytest.mark.parametrize(("opt_name", "opt_kw", "emb_kw"), CASES)
def test_twenty_steps_match_torch(opt_name: str, opt_kw: dict[str, Any], emb_kw: dict[str, Any]) -> None:
    seen: list[Any] = []
    ours = _train(ds, opt_name, opt_kw, emb_kw, seen)
    ref = _train(torch, opt_name, opt_kw, emb_kw, [])
    for table, a, b in zip(_tables(2), ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
        np.testing.assert_array_equal((a != table).any(axis=1), (b != table).any(axis=1))  # the same rows moved
    if "momentum" not in opt_kw:  # the rows path: the step never made the table-sized gradient
        assert all(seen)


def test_the_step_reads_no_table_sized_gradient() -> None:
    emb = ds.nn.Embedding(1000, 8, sparse=True)
    for opt in (
        ds.optim.SparseAdam(emb.parameters(), lr=0.1),
        ds.optim.SGD(emb.parameters(), lr=0.1),
        ds.optim.Adagrad(emb.parameters(), lr=0.1),
    ):
        before = emb.weight.detach().numpy().copy()
        opt.zero_grad()
        emb(ds.tensor([5, 9, 5])).sum().backward()
        opt.step()
        assert rows_of(emb.weight.grad) is not None or type(emb.weight.array) is not np.ndarray  # host: rows
        moved = np.flatnonzero((emb.weight.detach().numpy() != before).any(axis=1))
        assert moved.tolist() == [5, 9]


def test_a_densified_gradient_still_steps_as_torch() -> None:
    # the user read .grad as a dense tensor before the step (SparseAdam then falls back to the dense scan
    # plus the note of the rows looked up: a looked-up row whose gradient is zero still moves, as in torch)
    results = []
    for T in (ds, torch):
        emb = T.nn.Embedding(10, 2, sparse=True)
        with T.no_grad():
            emb.weight.copy_(T.tensor(np.arange(20, dtype=np.float32).reshape(10, 2)))
        opt = T.optim.SparseAdam(emb.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            (emb(T.tensor([1, 3])) * T.tensor([[1.0], [0.0]])).sum().backward()
            if T is ds:
                assert float(emb.weight.grad.sum()) == 2.0  # read: dense now
            opt.step()
        results.append(emb.weight.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_clipping_options_and_closures_take_the_dense_step() -> None:
    results = []
    for kw in ({}, {"clip_norm": 0.1}):
        emb = ds.nn.Embedding(10, 2, sparse=True)
        with ds.no_grad():
            emb.weight.copy_(ds.tensor(np.arange(20, dtype=np.float32).reshape(10, 2)))
        opt = ds.optim.SGD(emb.parameters(), lr=0.1, **kw)

        def closure(emb: Any = emb, opt: Any = opt) -> Any:
            opt.zero_grad()
            loss = emb(ds.tensor([1, 3, 3])).pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        results.append(emb.weight.detach().numpy())
    t = torch.nn.Embedding(10, 2, sparse=True)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(np.arange(20, dtype=np.float32).reshape(10, 2)))
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1)
    t(torch.tensor([1, 3, 3])).pow(2).sum().backward()
    t_opt.step()
    np.testing.assert_allclose(results[0], t.weight.detach().numpy(), rtol=1e-6)
    assert not np.allclose(results[1], results[0])  # clip_norm applied


def test_state_dict_after_rows_steps_matches_torch_keys_and_values() -> None:
    states = []
    for T in (ds, torch):
        emb = T.nn.Embedding(6, 2, sparse=True)
        with T.no_grad():
            emb.weight.copy_(T.tensor(np.arange(12, dtype=np.float32).reshape(6, 2)))
        opt = T.optim.SparseAdam(emb.parameters(), lr=0.1)
        for idx in ([1, 2], [2, 5]):
            opt.zero_grad()
            emb(T.tensor(idx)).pow(2).sum().backward()
            opt.step()
        states.append(opt.state_dict())
    ours, ref = states[0]["state"][0], states[1]["state"][0]
    assert int(ours["step"]) == int(ref["step"]) == 2
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(np.asarray(ours[key]), ref[key].numpy(), rtol=1e-6)


def test_adagrad_state_after_rows_steps_matches_torch() -> None:
    # a table and a dense parameter in one bucket: per-parameter step counts and sums as torch's
    states, tables = [], []
    for T in (ds, torch):
        emb = T.nn.Embedding(6, 2, sparse=True)
        bias = T.nn.Parameter(T.tensor([0.5, -0.5]))
        with T.no_grad():
            emb.weight.copy_(T.tensor(np.arange(12, dtype=np.float32).reshape(6, 2)))
        opt = T.optim.Adagrad([emb.weight, bias], lr=0.1, lr_decay=0.1)
        for k, idx in enumerate(([1, 2], [2, 5], [5])):
            opt.zero_grad()
            out = emb(T.tensor(idx)).pow(2).sum()
            if k != 1:  # the bias misses a step: its count falls behind the table's
                out = out + (bias * bias).sum()
            out.backward()
            opt.step()
        states.append(opt.state_dict()["state"])
        tables.append((emb.weight.detach().numpy(), bias.detach().numpy()))
    for i in (0, 1):
        assert float(states[0][i]["step"]) == float(states[1][i]["step"])
        np.testing.assert_allclose(np.asarray(states[0][i]["sum"]), states[1][i]["sum"].numpy(), rtol=1e-6)
        np.testing.assert_allclose(tables[0][i], tables[1][i], rtol=1e-6)
