"""Packed sequences through the fused recurrent kernels: values, final states and gradients
against PyTorch for every mode, 1-2 layers, both directions, sorted or not, with and without
initial states (and the LSTM's projection, which runs step by step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn

import downslope as ds
import downslope.nn.utils.rnn as drnn
from downslope.errors import ArgumentError
from downslope.nn import _rnn_kernels
from downslope.nn._rnn_kernels import rnn_sequence
from downslope.nn.recurrent import RNNBase

INPUT, HIDDEN = 5, 6


def _results(lib, rnnu, layer, x, lengths, states, sorted_, kind, proj):
    """Padded output, final states, and the gradients of a random projection of them w.r.t. the
    input, the initial states and every parameter."""
    dtype = x.dtype
    if lib is ds:
        xt = ds.from_numpy(x).requires_grad_(True)
        st = [ds.from_numpy(s).requires_grad_(True) for s in states]
        length_t = ds.from_numpy(lengths)
    else:
        xt = torch.from_numpy(x).requires_grad_(True)
        st = [torch.from_numpy(s).requires_grad_(True) for s in states]
        length_t = torch.from_numpy(lengths)
    packed = rnnu.pack_padded_sequence(xt, length_t, batch_first=True, enforce_sorted=sorted_)
    hx = None if not st else (tuple(st) if kind == "LSTM" else st[0])
    out, hn = layer(packed, hx)
    padded, _ = rnnu.pad_packed_sequence(out, batch_first=True)
    parts = [padded] + (list(hn) if kind == "LSTM" else [hn])
    weights = np.random.default_rng(5)
    loss = 0
    values = []
    for t in parts:
        w = weights.standard_normal(tuple(t.shape)).astype(dtype)
        loss = loss + (t * (ds.from_numpy(w) if lib is ds else torch.from_numpy(w))).sum()
        values.append(np.array(t.detach().numpy()))
    loss.backward()
    grads = [np.array(xt.grad.numpy())] + [np.array(s.grad.numpy()) for s in st]
    grads += [np.array(p.grad.numpy()) for _, p in sorted(layer.named_parameters())]
    return values + grads


def _compare(kind, layers, bidirectional, sorted_, dtype, with_states, proj=0, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([7, 7, 5, 3, 1]) if sorted_ else np.array([7, 3, 7, 1, 5])
    batch = lengths.shape[0]
    x = rng.standard_normal((batch, int(lengths.max()), INPUT)).astype(dtype)
    kw = dict(num_layers=layers, bidirectional=bidirectional, batch_first=True)
    if proj:
        kw["proj_size"] = proj
    reference = getattr(torch.nn, kind)(INPUT, HIDDEN, **kw).to(getattr(torch, dtype))
    layer = getattr(ds.nn, kind)(INPUT, HIDDEN, **kw, dtype=dtype)
    layer.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in reference.state_dict().items()})
    count = layers * (2 if bidirectional else 1)
    states = []
    if with_states:
        states.append(rng.standard_normal((count, batch, proj or HIDDEN)).astype(dtype))
        if kind == "LSTM":
            states.append(rng.standard_normal((count, batch, HIDDEN)).astype(dtype))
    want = _results(torch, trnn, reference, x, lengths, states, sorted_, kind, proj)
    got = _results(ds, drnn, layer, x, lengths, states, sorted_, kind, proj)
    tol = 1e-10 if dtype == "float64" else 2e-5
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * max(1.0, float(np.abs(w).max())))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (1, True), (2, True)])
@pytest.mark.parametrize("sorted_,with_states", [(True, False), (False, True)])
def test_packed_batches_match_torch(kind, layers, bidirectional, sorted_, with_states, dtype):
    _compare(kind, layers, bidirectional, sorted_, dtype, with_states)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_layer_unidirectional_unsorted_lstm_matches_torch(dtype):
    _compare("LSTM", 2, False, False, dtype, True, seed=3)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_packed_lstm_with_a_projection_matches_torch(dtype):
    _compare("LSTM", 2, True, False, dtype, True, proj=3)


def test_relu_rnn_packed_matches_torch():
    rng = np.random.default_rng(1)
    lengths = np.array([2, 6, 4])
    x = rng.standard_normal((3, 6, INPUT))
    reference = torch.nn.RNN(INPUT, HIDDEN, nonlinearity="relu", bidirectional=True, batch_first=True).double()
    layer = ds.nn.RNN(INPUT, HIDDEN, nonlinearity="relu", bidirectional=True, batch_first=True, dtype="float64")
    layer.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in reference.state_dict().items()})
    want = _results(torch, trnn, reference, x, lengths, [], False, "RNN", 0)
    got = _results(ds, drnn, layer, x, lengths, [], False, "RNN", 0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_a_packed_batch_runs_the_fused_kernels_not_the_step_loop(kind, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the step-by-step loop ran")

    monkeypatch.setattr(RNNBase, "_run_steps", refuse)
    layer = getattr(ds.nn, kind)(3, 4, bidirectional=True)
    data = drnn.pack_padded_sequence(ds.randn(5, 2, 3), ds.tensor([5, 2]))
    out, _ = layer(data)
    assert out.data.shape == (7, 8)


def test_gradient_penalty_through_a_packed_lstm_matches_torch():
    """Double backward: the fused node's rule reruns the packed sequence with recorded steps."""
    rng = np.random.default_rng(2)
    lengths = np.array([4, 2, 3])
    x = rng.standard_normal((3, 4, INPUT))
    reference = torch.nn.LSTM(INPUT, HIDDEN, bidirectional=True, batch_first=True).double()
    layer = ds.nn.LSTM(INPUT, HIDDEN, bidirectional=True, batch_first=True, dtype="float64")
    layer.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in reference.state_dict().items()})

    def penalty(lib, rnnu, m):
        xt = (ds.from_numpy(x) if lib is ds else torch.from_numpy(x)).requires_grad_(True)
        lt = ds.from_numpy(lengths) if lib is ds else torch.from_numpy(lengths)
        out, (h, c) = m(rnnu.pack_padded_sequence(xt, lt, batch_first=True, enforce_sorted=False))
        loss = (out.data**2).sum() + (h * c).sum()
        (g,) = lib.autograd.grad(loss, [xt], create_graph=True)
        (g**2).sum().backward()
        return [p.grad.numpy() for _, p in sorted(m.named_parameters())]

    for g, w in zip(penalty(ds, drnn, layer), penalty(torch, trnn, reference)):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)


def test_active_counts_that_do_not_fit_are_refused():
    x, h0 = ds.zeros(3, 2, 2), ds.zeros(2, 4)
    w_ih, w_hh = ds.zeros(4, 2), ds.zeros(4, 4)
    with pytest.raises(ArgumentError, match="active row counts"):
        rnn_sequence("RNN_TANH", x, h0, None, w_ih, w_hh, None, None, active=np.array([2, 2]))
    with pytest.raises(ArgumentError, match="must not increase"):
        rnn_sequence("RNN_TANH", x, h0, None, w_ih, w_hh, None, None, active=np.array([1, 2, 2]))


def test_full_active_counts_are_a_plain_batch():
    assert _rnn_kernels._processing_steps(np.array([2, 2]), 2, 2, reverse=False) is None
    steps = _rnn_kernels._processing_steps(np.array([2, 1]), 2, 2, reverse=True)
    assert steps is not None and steps.tolist() == [1, 2]
