"""The fused LSTMCell / GRUCell steps (downslope.nn._rnn_cells): finite differences, PyTorch, double backward.

Single cell calls in float32 are compared with PyTorch in test_recurrent.py; here the fused op gets
a float64 finite-difference check of every input, a float64 loop against PyTorch (the way a
custom recurrence is written), and a double backward (``create_graph``) against PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn import recurrent as R
from downslope.nn._rnn_cells import gru_cell, lstm_cell

torch = pytest.importorskip("torch")


def _arrays(gates: int, states: int, bias: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    batch, features, hidden = 3, 2, 4
    arrays = [rng.standard_normal((batch, features))] + [rng.standard_normal((batch, hidden)) for _ in range(states)]
    arrays += [
        rng.standard_normal((gates * hidden, features)) * 0.7,
        rng.standard_normal((gates * hidden, hidden)) * 0.7,
    ]
    if bias:
        arrays += [rng.standard_normal(gates * hidden) * 0.5, rng.standard_normal(gates * hidden) * 0.5]
    return arrays


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_gradcheck_float64(bias):
    def run(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):  # type: ignore[no-untyped-def]
        return lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)

    ds.gradcheck(run, _arrays(4, 2, bias))


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_gradcheck_float64(bias):
    def run(x, h, w_ih, w_hh, b_ih=None, b_hh=None):  # type: ignore[no-untyped-def]
        return gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)

    ds.gradcheck(run, _arrays(3, 1, bias))


def _copy_from_torch(ours, theirs) -> None:  # type: ignore[no-untyped-def]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    # load_state_dict writes each value onto its parameter's device (the host or a device)
    ours.load_state_dict({name: p.detach().numpy() for name, p in theirs.named_parameters()})


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_cell_loop_float64_matches_torch(kind):
    """A cell stepped in a Python loop in float64 (as in PyTorch's time-sequence-prediction example)."""
    ours_cls, theirs_cls = (R.LSTMCell, torch.nn.LSTMCell) if kind == "LSTM" else (R.GRUCell, torch.nn.GRUCell)
    theirs = theirs_cls(3, 7).double()
    ours = ours_cls(3, 7, dtype=np.float64)
    _copy_from_torch(ours, theirs)
    x = np.random.default_rng(1).standard_normal((6, 5, 3))
    state_d: object = None
    state_t: object = None
    outs_d, outs_t = [], []
    for t in range(x.shape[0]):
        state_d = ours(ds.tensor(x[t], dtype=np.float64), state_d)
        state_t = theirs(torch.tensor(x[t]), state_t)
        outs_d.append(state_d[0] if kind == "LSTM" else state_d)
        outs_t.append(state_t[0] if kind == "LSTM" else state_t)
    assert outs_d[0].dtype == np.float64, "the zero initial state takes the input's dtype"
    weights = np.random.default_rng(2).standard_normal((x.shape[0], 5, 7))
    (ds.stack(outs_d) * ds.tensor(weights, dtype=np.float64)).sum().backward()
    (torch.stack(outs_t) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(
        ds.stack(outs_d).detach().numpy(), torch.stack(outs_t).detach().numpy(), rtol=1e-12, atol=1e-13
    )
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_double_backward_through_a_cell_matches_torch(kind):
    ours_cls, theirs_cls = (R.LSTMCell, torch.nn.LSTMCell) if kind == "LSTM" else (R.GRUCell, torch.nn.GRUCell)
    theirs = theirs_cls(3, 4).double()
    ours = ours_cls(3, 4, dtype=np.float64)
    _copy_from_torch(ours, theirs)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3))
    state = [rng.standard_normal((2, 4)) for _ in range(2 if kind == "LSTM" else 1)]
    xd, xt = ds.tensor(x, dtype=np.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    sd = tuple(ds.tensor(s, dtype=np.float64) for s in state)
    st = tuple(torch.tensor(s) for s in state)
    out_d = ours(xd, sd if kind == "LSTM" else sd[0])
    out_t = theirs(xt, st if kind == "LSTM" else st[0])
    loss_d = sum((o * o * o).sum() for o in (out_d if kind == "LSTM" else (out_d,)))
    loss_t = sum((o * o * o).sum() for o in (out_t if kind == "LSTM" else (out_t,)))
    (gx_d,) = ds.autograd.grad(loss_d, xd, create_graph=True)
    (gx_t,) = torch.autograd.grad(loss_t, xt, create_graph=True)
    np.testing.assert_allclose(gx_d.detach().numpy(), gx_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    (gx_d * gx_d).sum().backward()
    (gx_t * gx_t).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
