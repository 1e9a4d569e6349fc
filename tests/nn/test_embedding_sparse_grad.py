"""Embedding(sparse=True)'s gradient is kept as the rows looked up and their values (no table of
zeros) until something reads it as a dense tensor; every reading gives PyTorch's gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host
from downslope.row_grads import RowGradTensor, rows_of

torch = pytest.importorskip("torch")

ROWS, DIM = 12, 3
TABLE = (np.arange(ROWS * DIM, dtype=np.float32).reshape(ROWS, DIM) - 17) / 10


def _emb(T: Any, **kw: Any) -> Any:
    emb = T.nn.Embedding(ROWS, DIM, sparse=True, **kw)
    with T.no_grad():
        emb.weight.copy_(T.tensor(TABLE))
    return emb


def _dense(grad: Any) -> np.ndarray:
    """A torch gradient (sparse or dense) or a downslope one, as a host array."""
    if isinstance(grad, torch.Tensor):
        return (grad.to_dense() if grad.is_sparse else grad).detach().numpy()
    return to_host(grad.array)


def _kept_as_rows(param: Any) -> bool:
    """Whether ``param``'s gradient is still rows + values, as it should be: on the host (a table on
    a device keeps the dense scatter)."""
    return rows_of(param.grad) is not None if type(param.array) is np.ndarray else rows_of(param.grad) is None


def _loss(T: Any, out: Any) -> Any:
    w = T.tensor(np.linspace(-1, 1, out.numel(), dtype=np.float32).reshape(out.shape))
    return (out * out * w).sum()


@pytest.mark.host_only
def test_the_gradient_is_kept_as_rows_and_reads_as_torchs() -> None:
    idx = [[3, 1, 3], [0, 11, 1]]
    emb_d, emb_t = _emb(ds), _emb(torch)
    _loss(ds, emb_d(ds.tensor(idx))).backward()
    _loss(torch, emb_t(torch.tensor(idx))).backward()
    note = rows_of(emb_d.weight.grad)
    assert note is not None  # no dense table made by the backward
    rows, values = note.coalesced()
    coalesced = emb_t.weight.grad.coalesce()
    assert rows.tolist() == coalesced.indices()[0].tolist()
    np.testing.assert_allclose(values, coalesced.values().numpy(), rtol=1e-6)
    assert emb_d.weight.grad.shape == (ROWS, DIM) and emb_d.weight.grad.dtype == np.float32
    assert rows_of(emb_d.weight.grad) is not None  # shape and dtype answer without the dense array
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)
    assert rows_of(emb_d.weight.grad) is None  # read as a dense tensor: dense from then on
    np.testing.assert_allclose((emb_d.weight.grad * 2).numpy(), 2 * _dense(emb_t.weight.grad), rtol=1e-6)
    assert not emb_d.weight.grad.is_sparse


@pytest.mark.parametrize("kw", [{"padding_idx": 1}, {"scale_grad_by_freq": True}, {"max_norm": 1.0}])
def test_padding_frequency_scaling_and_max_norm_as_torch(kw: dict[str, Any]) -> None:
    idx = [3, 1, 3, 5, 1, 1]
    emb_d, emb_t = _emb(ds, **kw), _emb(torch, **kw)
    emb_t.sparse = "scale_grad_by_freq" not in kw  # torch refuses the two together: its dense gradient then
    _loss(ds, emb_d(ds.tensor(idx))).backward()
    _loss(torch, emb_t(torch.tensor(idx))).backward()
    assert _kept_as_rows(emb_d.weight)
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6, atol=1e-7)


def test_two_backward_calls_accumulate() -> None:
    emb_d, emb_t = _emb(ds), _emb(torch)
    for idx in ([2, 4], [4, 7, 7]):
        _loss(ds, emb_d(ds.tensor(idx))).backward()
        _loss(torch, emb_t(torch.tensor(idx))).backward()
    assert _kept_as_rows(emb_d.weight)
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)
    # a third backward after the gradient was read (dense now) adds its rows into it
    _loss(ds, emb_d(ds.tensor([2]))).backward()
    _loss(torch, emb_t(torch.tensor([2]))).backward()
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)


def test_two_lookups_of_one_table_in_one_graph() -> None:
    emb_d, emb_t = _emb(ds), _emb(torch)
    for T, emb in ((ds, emb_d), (torch, emb_t)):
        a, b, c = emb(T.tensor([1, 2])), emb(T.tensor([2, 9])), emb(T.tensor([9, 9]))
        _loss(T, a * b + c).backward()
    assert _kept_as_rows(emb_d.weight)
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)


@pytest.mark.parametrize("dense_first", [True, False])
def test_weight_tying_a_dense_contribution_joins_the_rows(dense_first: bool) -> None:
    # the table also used as an output projection (tied weights), in either order of the graph
    grads = []
    for T in (ds, torch):
        emb = _emb(T)
        x = emb(T.tensor([3, 1, 3]))
        logits = T.nn.functional.linear(x, emb.weight)
        loss = _loss(T, logits) if dense_first else _loss(T, logits) + _loss(T, x)
        loss.backward()
        grads.append(_dense(emb.weight.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-5 * np.abs(grads[1]).max())


def test_a_slice_of_the_table_used_beside_the_lookup() -> None:
    # the slice's gradient (a scatter into zeros the walk owns) and the lookup's rows meet in one sum
    grads = []
    for T in (ds, torch):
        emb = _emb(T)
        _loss(T, emb(T.tensor([1, 3, 1])) * emb.weight[0] + emb.weight[2:4].sum(0)).backward()
        grads.append(_dense(emb.weight.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_a_dense_gradient_then_a_sparse_one_across_backward_calls() -> None:
    grads = []
    for T in (ds, torch):
        emb = _emb(T)
        (emb.weight * emb.weight).sum().backward()
        _loss(T, emb(T.tensor([0, 0, 5]))).backward()
        grads.append(_dense(emb.weight.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


@pytest.mark.parametrize("module_zero_grad", [True, False])
def test_zero_grad_without_none_keeps_no_rows(module_zero_grad: bool) -> None:
    emb_d, emb_t = _emb(ds), _emb(torch)
    opt_d, opt_t = ds.optim.SGD(emb_d.parameters(), lr=0.1), torch.optim.SGD(emb_t.parameters(), lr=0.1)
    for T, emb, opt in ((ds, emb_d, opt_d), (torch, emb_t, opt_t)):
        _loss(T, emb(T.tensor([1, 4]))).backward()
        (emb if module_zero_grad else opt).zero_grad(set_to_none=False)
    assert _kept_as_rows(emb_d.weight)  # emptied, no table of zeros made
    np.testing.assert_array_equal(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad))
    for T, emb in ((ds, emb_d), (torch, emb_t)):
        _loss(T, emb(T.tensor([6]))).backward()
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 0.0, -float("inf")])
def test_clip_grad_norm_gives_the_norm_of_the_gradient(norm_type: float) -> None:
    # torch's clip_grad_norm_ refuses sparse gradients: its norm of the same gradients, dense, is the reference
    emb_d, emb_t = _emb(ds), ds.nn.Linear(DIM, 2)
    lin_t = torch.nn.Linear(DIM, 2)
    with torch.no_grad():
        lin_t.weight.copy_(torch.from_numpy(emb_t.weight.detach().numpy()))
        lin_t.bias.copy_(torch.from_numpy(emb_t.bias.detach().numpy()))
    ref = _emb(torch)
    ref.sparse = False
    for T, emb, lin in ((ds, emb_d, emb_t), (torch, ref, lin_t)):
        _loss(T, lin(emb(T.tensor([3, 1, 3, 0])))).backward()
    total_d = ds.nn.utils.clip_grad_norm_([emb_d.weight, *emb_t.parameters()], 0.5, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_([ref.weight, *lin_t.parameters()], 0.5, norm_type)
    np.testing.assert_allclose(float(total_d), float(total_t), rtol=1e-5)
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(ref.weight.grad), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_dense(emb_t.weight.grad), _dense(lin_t.weight.grad), rtol=1e-5, atol=1e-7)


def test_clip_grad_value_on_rows() -> None:
    emb_d, emb_t = _emb(ds), _emb(torch)
    emb_t.sparse = False
    for T, emb in ((ds, emb_d), (torch, emb_t)):
        _loss(T, emb(T.tensor([3, 1, 3, 0]))).backward()
        T.nn.utils.clip_grad_value_(emb.parameters(), 0.3)
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)


def test_hooks_retained_grads_and_autograd_grad_see_the_dense_gradient() -> None:
    emb_d, emb_t = _emb(ds), _emb(torch)
    seen: list[np.ndarray] = []
    emb_d.weight.register_hook(lambda g: seen.append(g.numpy().copy()))
    _loss(ds, emb_d(ds.tensor([2, 2]))).backward()
    _loss(torch, emb_t(torch.tensor([2, 2]))).backward()
    np.testing.assert_allclose(seen[0], _dense(emb_t.weight.grad), rtol=1e-6)
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)
    emb_d2 = _emb(ds)
    (g,) = ds.autograd.grad(_loss(ds, emb_d2(ds.tensor([5, 2]))), [emb_d2.weight])
    emb_t2 = _emb(torch)
    (ref,) = torch.autograd.grad(_loss(torch, emb_t2(torch.tensor([5, 2]))), [emb_t2.weight])
    np.testing.assert_allclose(_dense(g), _dense(ref), rtol=1e-6)
    # a table computed from a leaf (not a leaf itself): its gradient flows on, dense
    base = ds.tensor(TABLE, requires_grad=True)
    out = ds.nn.functional.embedding(ds.tensor([1, 1]), base * 2, sparse=True)
    _loss(ds, out).backward()
    base_t = torch.tensor(TABLE, requires_grad=True)
    _loss(torch, torch.nn.functional.embedding(torch.tensor([1, 1]), base_t * 2, sparse=True)).backward()
    np.testing.assert_allclose(_dense(base.grad), _dense(base_t.grad), rtol=1e-6)


def test_anomaly_mode_and_double_backward() -> None:
    emb_d, emb_t = _emb(ds), _emb(torch)
    with ds.autograd.detect_anomaly():
        _loss(ds, emb_d(ds.tensor([4, 4, 8]))).backward()
    _loss(torch, emb_t(torch.tensor([4, 4, 8]))).backward()
    np.testing.assert_allclose(_dense(emb_d.weight.grad), _dense(emb_t.weight.grad), rtol=1e-6)
    emb = _emb(ds)
    (g,) = ds.autograd.grad(_loss(ds, emb(ds.tensor([4, 8]))), [emb.weight], create_graph=True)
    assert g.requires_grad and rows_of(g) is None  # create_graph: a recorded, dense gradient


def test_state_dict_and_checkpoints_hold_no_gradient_form(tmp_path: Any) -> None:
    emb = _emb(ds)
    _loss(ds, emb(ds.tensor([1, 2]))).backward()
    state = emb.state_dict()
    assert list(state) == ["weight"] and type(state["weight"]) is not RowGradTensor
    ds.save(state, tmp_path / "emb.pt")
    loaded = ds.load(tmp_path / "emb.pt")
    np.testing.assert_array_equal(to_host(loaded["weight"].array), TABLE)
    assert _kept_as_rows(emb.weight)


def test_embedding_bag_sparse_gradient_as_torch() -> None:
    idx, offsets = [1, 2, 4, 4, 3, 10, 1], [0, 3, 5]
    grads = []
    for T in (ds, torch):
        bag = T.nn.EmbeddingBag(ROWS, DIM, mode="mean", sparse=True)
        with T.no_grad():
            bag.weight.copy_(T.tensor(TABLE))
        _loss(T, bag(T.tensor(idx), T.tensor(offsets))).backward()
        grads.append(bag)
    assert _kept_as_rows(grads[0].weight)
    np.testing.assert_allclose(_dense(grads[0].weight.grad), _dense(grads[1].weight.grad), rtol=1e-6)
