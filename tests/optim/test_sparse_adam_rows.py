"""SparseAdam updates the rows nn.Embedding(sparse=True) looked up, also those whose gradient is
exactly zero, as PyTorch's does with its sparse gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host
from downslope.optim.sparse_adam import looked_up_rows

torch = pytest.importorskip("torch")

# (indices, per-lookup weight in the loss): zero weights give rows looked up with a zero gradient
BATCHES = [([0, 1, 5], [1.0, 0.0, 1.0]), ([2, 2, 3], [1.0, -1.0, 0.0]), ([4], [0.0]), ([1, 3], [1.0, 1.0])]


def _train(T: Any, set_to_none: bool, module_zero_grad: bool, maximize: bool = False) -> np.ndarray:
    emb = T.nn.Embedding(6, 3, sparse=True, padding_idx=5)
    with T.no_grad():
        emb.weight.copy_(T.tensor(np.arange(18, dtype=np.float32).reshape(6, 3) / 10))
    opt = T.optim.SparseAdam(list(emb.parameters()), lr=0.1, maximize=maximize)
    for i, (idx, w) in enumerate(BATCHES):
        (emb(T.tensor(idx)) * T.tensor(w)[:, None]).sum().backward()
        if i == 1:  # a second backward accumulated before the step
            (emb(T.tensor([0])) * 0).sum().backward()
        opt.step()
        if module_zero_grad:
            emb.zero_grad(set_to_none=set_to_none)
        else:
            opt.zero_grad(set_to_none=set_to_none)
    return emb.weight.detach().numpy()


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("module_zero_grad", [True, False])
@pytest.mark.parametrize("maximize", [False, True])
def test_rows_looked_up_with_zero_gradient_move_as_in_torch(
    set_to_none: bool, module_zero_grad: bool, maximize: bool
) -> None:
    ours = _train(ds, set_to_none, module_zero_grad, maximize)
    ref = _train(torch, set_to_none, module_zero_grad, maximize)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)


def test_the_note_gathers_backwards_and_clears_with_the_gradient() -> None:
    emb = ds.nn.Embedding(5, 2, sparse=True, padding_idx=4)
    emb(ds.tensor([1, 4])).sum().backward()
    emb(ds.tensor([[3]])).sum().backward()
    assert to_host(looked_up_rows(emb.weight)).tolist() == [False, True, False, True, False]  # padding row left out
    emb.zero_grad()
    assert "grad_rows" not in emb.weight.__dict__ and looked_up_rows(emb.weight) is None
    emb(ds.tensor([0])).sum().backward()
    assert to_host(looked_up_rows(emb.weight)).tolist() == [True, False, False, False, False]


def test_a_note_of_a_gradient_set_to_none_is_dropped() -> None:
    emb = ds.nn.Embedding(4, 2, sparse=True)
    emb(ds.tensor([1])).sum().backward()
    emb.weight.grad = None
    assert looked_up_rows(emb.weight) is None
    emb(ds.tensor([2])).sum().backward()  # a new gradient: only its own rows
    assert to_host(looked_up_rows(emb.weight)).tolist() == [False, False, True, False]


def test_dense_embeddings_note_nothing() -> None:
    emb = ds.nn.Embedding(4, 2)
    emb(ds.tensor([1, 2])).sum().backward()
    assert "grad_rows" not in emb.weight.__dict__
    opt = ds.optim.SparseAdam(emb.parameters(), lr=0.1)
    before = emb.weight.detach().numpy().copy()
    opt.step()  # the rows with a non-zero gradient, as before
    assert (emb.weight.detach().numpy() != before).any(axis=1).tolist() == [False, True, True, False]
