"""RNN, LSTM, GRU and their cells (downslope.nn.recurrent) against PyTorch and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
from downslope import gemm
from downslope.nn import _jit, _rnn_jit
from downslope.nn import recurrent as R

torch = pytest.importorskip("torch")


@pytest.fixture(params=["numpy", "onednn", "compiled"])
def path(request, monkeypatch):
    """The float32 parity tests run on each path: NumPy alone; every matrix product on oneDNN's GEMM
    (its size thresholds lowered to 0, so that these small layers take it); and oneDNN with the
    compiled (numba) LSTM loops. A path whose extra is not installed is skipped."""
    if request.param == "numpy":
        with gemm.disabled(), _jit.disabled():
            yield request.param
        return
    if not gemm.available():
        pytest.skip("oneDNN is not installed (the onednn extra)")
    monkeypatch.setattr(gemm, "MIN_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(gemm, "STEP_MIN_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(gemm, "STEP_NARROW_MAX_MULTIPLY_ADDS", 0)  # small test batches on oneDNN too
    if request.param == "onednn":
        with _jit.disabled():
            yield request.param
        return
    if _rnn_jit.kernels(np.zeros(1, dtype=np.float32)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    yield request.param


PAIRS = {"RNN": (R.RNN, torch.nn.RNN), "LSTM": (R.LSTM, torch.nn.LSTM), "GRU": (R.GRU, torch.nn.GRU)}


def _copy_from_torch(ours, theirs) -> None:
    mine = dict(ours.named_parameters())
    assert list(mine) == [n for n, _ in theirs.named_parameters()], "parameter names/order differ from PyTorch"
    for name, p in theirs.named_parameters():
        assert mine[name].shape == tuple(p.shape), name
    # load_state_dict writes each value onto its parameter's device (the host or a device)
    ours.load_state_dict({name: p.detach().numpy() for name, p in theirs.named_parameters()})


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _run_both(kind, kwargs, x, initial, assert_close, seed=0):
    """Same weights, input and initial state in both libraries; compare outputs, final states and the
    gradients of the input, the initial state and every parameter."""
    ours_cls, theirs_cls = PAIRS[kind]
    torch.manual_seed(seed)
    theirs = theirs_cls(**kwargs)
    ours = ours_cls(**kwargs)
    _copy_from_torch(ours, theirs)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if initial is None:
        hd = ht = None
    else:
        parts_d = tuple(ds.tensor(a, requires_grad=True) for a in initial)
        parts_t = tuple(torch.tensor(a, requires_grad=True) for a in initial)
        hd, ht = (parts_d, parts_t) if kind == "LSTM" else (parts_d[0], parts_t[0])
    out_d, state_d = ours(xd, hd)
    out_t, state_t = theirs(xt, ht)
    assert out_d.shape == tuple(out_t.shape)
    assert out_d.dtype == np.float32, "float32 in, float32 out"
    assert_close(out_d.detach().numpy(), out_t.detach().numpy(), np.float32, "output")
    for a, b in zip(_as_tuple(state_d), _as_tuple(state_t)):
        assert a.shape == tuple(b.shape)
        assert_close(a.detach().numpy(), b.detach().numpy(), np.float32, "final state")
    # A loss that reaches every output: the sequence output and each final state.
    rng = np.random.default_rng(seed)
    proj = [rng.standard_normal(t.shape).astype(np.float32) for t in (out_d, *_as_tuple(state_d))]
    loss_d = sum(((t * ds.tensor(p)).sum() for t, p in zip((out_d, *_as_tuple(state_d)), proj)), ds.tensor(0.0))
    loss_t = sum((t * torch.tensor(p)).sum() for t, p in zip((out_t, *_as_tuple(state_t)), proj))
    loss_d.backward()
    loss_t.backward()
    assert xd.grad.dtype == np.float32
    assert_close(xd.grad.detach().numpy(), xt.grad.detach().numpy(), np.float32, "input gradient")
    if initial is not None:
        for a, b in zip(_as_tuple(hd), _as_tuple(ht)):
            assert_close(a.grad.detach().numpy(), b.grad.detach().numpy(), np.float32, "initial state gradient")
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(mine[name].grad.detach().numpy(), p.grad.detach().numpy(), np.float32, f"gradient of {name}")
    return ours


CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(batch_first=True, bias=False),
    dict(bidirectional=True),
    dict(num_layers=3, bidirectional=True, batch_first=True),
    dict(num_layers=2, dropout=0.5),  # dropout acts in training only: compared in eval mode below
]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layers_match_torch(assert_close, path, kind, config, with_state):
    input_size, hidden, length, batch = 3, 5, 6, 4
    kwargs = dict(input_size=input_size, hidden_size=hidden, **config)
    rng = np.random.default_rng(len(config) + 7 * with_state)
    shape = (batch, length, input_size) if config.get("batch_first") else (length, batch, input_size)
    x = rng.standard_normal(shape).astype(np.float32)
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    n_parts = 2 if kind == "LSTM" else 1
    initial = [rng.standard_normal((layers, batch, hidden)).astype(np.float32) for _ in range(n_parts)]
    if config.get("dropout"):
        # Eval mode in both: dropout off, so the outputs must agree exactly.
        ours_cls, theirs_cls = PAIRS[kind]
        theirs = theirs_cls(**kwargs).eval()
        ours = ours_cls(**kwargs).eval()
        _copy_from_torch(ours, theirs)
        out_d, _ = ours(ds.tensor(x))
        out_t, _ = theirs(torch.tensor(x))
        assert_close(out_d.detach().numpy(), out_t.detach().numpy(), np.float32, "eval output")
        return
    _run_both(kind, kwargs, x, initial if with_state else None, assert_close)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_a_batch_of_one_through_several_layers_matches_torch(assert_close, path, kind):
    # With one sample a (hidden, batch) gradient's transpose is contiguous, so a view of a pooled
    # buffer could pass for a copy: the initial state's gradient of each layer must be its own.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 1, 3)).astype(np.float32)
    initial = [rng.standard_normal((3, 1, 4)).astype(np.float32) for _ in range(2 if kind == "LSTM" else 1)]
    _run_both(kind, dict(input_size=3, hidden_size=4, num_layers=3), x, initial, assert_close)


def test_relu_rnn_matches_torch(assert_close, path):
    x = np.random.default_rng(1).standard_normal((5, 3, 4)).astype(np.float32)
    kwargs = dict(input_size=4, hidden_size=6, num_layers=2, nonlinearity="relu")
    _run_both("RNN", kwargs, x, None, assert_close)  # outputs, states and every gradient


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_unbatched_input_matches_torch(assert_close, path, kind):
    x = np.random.default_rng(2).standard_normal((7, 3)).astype(np.float32)
    _run_both(kind, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True), x, None, assert_close)


def test_dropout_between_layers_only_in_training_and_seeded():
    lstm = R.LSTM(3, 8, num_layers=2, dropout=0.5)
    x = ds.tensor(np.random.default_rng(5).standard_normal((5, 2, 3)))
    ds.manual_seed(1)
    a = lstm(x)[0].detach().numpy()
    ds.manual_seed(1)
    b = lstm(x)[0].detach().numpy()
    ds.manual_seed(2)
    c = lstm(x)[0].detach().numpy()
    lstm.eval()
    d = lstm(x)[0].detach().numpy()
    assert np.array_equal(a, b), "the same seed gives the same dropout masks"
    assert not np.allclose(a, c) and not np.allclose(a, d), "dropout changes the training output"
    # The top layer's own output is never dropped: its last-step h equals h_n of the top layer.
    lstm.train()
    out, (h_n, _) = lstm(x)
    np.testing.assert_array_equal(out.detach().numpy()[-1], h_n.detach().numpy()[-1])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_parameter_names_shapes_and_default_init(kind):
    ours_cls, theirs_cls = PAIRS[kind]
    kwargs = dict(input_size=3, hidden_size=64, num_layers=2, bidirectional=True)
    ours, theirs = ours_cls(**kwargs), theirs_cls(**kwargs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()
    ]
    bound = 1 / math.sqrt(64)
    values = np.concatenate([p.detach().numpy().ravel() for p in ours.parameters()])
    assert values.dtype == np.float32
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound  # U(-a, a) has std a / sqrt(3)
    # state_dict keys are PyTorch's, so a torch state dict loads as it is.
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(
        ours.weight_hh_l1_reverse.detach().numpy(), theirs.weight_hh_l1_reverse.detach().numpy()
    )


@pytest.mark.parametrize(
    "ours_cls, theirs_cls, kwargs",
    [
        (R.RNNCell, torch.nn.RNNCell, dict(nonlinearity="tanh")),
        (R.RNNCell, torch.nn.RNNCell, dict(nonlinearity="relu", bias=False)),
        (R.LSTMCell, torch.nn.LSTMCell, dict()),
        (R.GRUCell, torch.nn.GRUCell, dict()),
        (R.GRUCell, torch.nn.GRUCell, dict(bias=False)),
    ],
)
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(assert_close, path, ours_cls, theirs_cls, kwargs, batched):
    rng = np.random.default_rng(3)
    theirs, ours = theirs_cls(4, 6, **kwargs), ours_cls(4, 6, **kwargs)
    _copy_from_torch(ours, theirs)
    lead = (3,) if batched else ()
    x = rng.standard_normal(lead + (4,)).astype(np.float32)
    parts = [rng.standard_normal(lead + (6,)).astype(np.float32) for _ in range(2 if ours_cls is R.LSTMCell else 1)]
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    sd = tuple(ds.tensor(p, requires_grad=True) for p in parts)
    st = tuple(torch.tensor(p, requires_grad=True) for p in parts)
    # Two steps, so the second one sees a state that came out of the first.
    out_d = ours(xd, sd if len(sd) == 2 else sd[0])
    out_d = ours(xd, out_d)
    out_t = theirs(xt, st if len(st) == 2 else st[0])
    out_t = theirs(xt, out_t)
    loss_d = sum((t * t).sum() for t in _as_tuple(out_d))
    loss_t = sum((t * t).sum() for t in _as_tuple(out_t))
    for a, b in zip(_as_tuple(out_d), _as_tuple(out_t)):
        assert_close(a.detach().numpy(), b.detach().numpy(), np.float32, "cell output")
    loss_d.backward()
    loss_t.backward()
    assert_close(xd.grad.detach().numpy(), xt.grad.detach().numpy(), np.float32, "input gradient")
    for a, b in zip(sd, st):
        assert_close(a.grad.detach().numpy(), b.grad.detach().numpy(), np.float32, "state gradient")
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(mine[name].grad.detach().numpy(), p.grad.detach().numpy(), np.float32, f"gradient of {name}")
    # Without a state the cell starts from zeros, as in PyTorch.
    for a, b in zip(_as_tuple(ours(xd)), _as_tuple(theirs(xt))):
        assert_close(a.detach().numpy(), b.detach().numpy(), np.float32, "zero-state output")


def _unrolled(step, steps: int):
    """A function of (x, h0, [c0,] weights...) that runs ``step`` over ``steps`` time steps."""

    def run(x, *rest):
        n_state = 2 if step is R._lstm_step else 1
        state = tuple(rest[:n_state]) if n_state == 2 else rest[0]
        weights = rest[n_state:]
        outs = []
        for t in range(steps):
            state = step(x[t], state, *weights)
            outs.append(state[0] if isinstance(state, tuple) else state)
        return ds.stack(outs)

    return run


@pytest.mark.parametrize("step, gates", [(R._lstm_step, 4), (R._gru_step, 3)])
def test_backprop_through_time_gradcheck_float64(step, gates):
    rng = np.random.default_rng(4)
    hidden, features, batch, steps = 3, 2, 2, 4
    x = rng.standard_normal((steps, batch, features))
    states = [rng.standard_normal((batch, hidden)) for _ in range(2 if step is R._lstm_step else 1)]
    weights = [
        rng.standard_normal((gates * hidden, features)) * 0.5,
        rng.standard_normal((gates * hidden, hidden)) * 0.5,
        rng.standard_normal(gates * hidden) * 0.5,
        rng.standard_normal(gates * hidden) * 0.5,
    ]
    ds.gradcheck(_unrolled(step, steps), [x, *states, *weights])


def test_rnn_tanh_gradcheck_float64():
    rng = np.random.default_rng(5)
    step = R._step_function("RNN_TANH")
    x, h = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 3))
    w_ih, w_hh, b_ih = rng.standard_normal((3, 2)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    # No hidden-to-hidden bias (None), as with bias=False layers.
    ds.gradcheck(lambda x, h, a, b, c: _unrolled(step, 3)(x, h, a, b, c, None), [x, h, w_ih, w_hh, b_ih])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: R.LSTM(3, 5)(ds.randn(4, 2, 6)), ValueError, "expected input of shape (L, N, 3)"),
        (lambda: R.GRU(3, 5, batch_first=True)(ds.randn(2, 4)), ValueError, "unbatched (L, 3)"),
        (lambda: R.GRU(3, 5, num_layers=2)(ds.randn(4, 2, 3), ds.randn(1, 2, 5)), ValueError, "h0 of shape (2, 2, 5)"),
        (lambda: R.LSTM(3, 5)(ds.randn(4, 2, 3), ds.randn(1, 2, 5)), TypeError, "tuple (h0, c0)"),
        (lambda: R.LSTM(3, 5)(ds.randn(4, 2, 3).double()), TypeError, "does not match the parameters' dtype"),
        (lambda: R.RNN(3, 5, nonlinearity="sigmoid"), ValueError, "'tanh' or 'relu'"),
        (lambda: R.LSTM(3, 0), ValueError, "hidden_size must be an integer >= 1"),
        (lambda: R.GRU(3, 5, num_layers=2, dropout=1.5), ValueError, "dropout must be a probability"),
        (lambda: R.LSTMCell(3, 5)(ds.randn(2, 3), ds.randn(2, 5)), TypeError, "tuple (h, c)"),
        (lambda: R.GRUCell(3, 5)(ds.randn(2, 3), ds.randn(3, 5)), ValueError, "hidden state of shape (2, 5)"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, message):
    import re

    with pytest.raises(error, match=re.escape(message)):
        call()


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="does nothing"):
        R.GRU(3, 5, dropout=0.2)


def test_repr_reads_like_torch():
    assert repr(R.LSTM(10, 20, num_layers=2, batch_first=True)).startswith(
        "LSTM(10, 20, num_layers=2, batch_first=True)"
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: R.LSTM(3, 4, num_layers=2, bidirectional=True),
        lambda: R.GRU(3, 4, num_layers=2, bidirectional=True),
        lambda: R.RNN(3, 4, nonlinearity="relu"),
        lambda: R.LSTMCell(3, 4),
        lambda: R.GRUCell(3, 4),
        lambda: R.RNNCell(3, 4),
    ],
)
def test_layers_on_the_strict_device_give_the_cpu_values(make):
    """The strict stand-in refuses every host array and host conversion (like CuPy): a layer on it
    runs forward and backward in its data's namespace, with the CPU's values (it wraps NumPy) of
    the NumPy formulation (oneDNN and the compiled loops round differently; the parity tests
    compare them with PyTorch)."""
    ds.manual_seed(0)
    layer = make()
    cell = isinstance(layer, R.RNNCellBase)
    x = np.random.default_rng(6).standard_normal((2, 3) if cell else (5, 2, 3)).astype(np.float32)
    results = []
    for device in ("cpu", "strict"):
        layer.to(device)
        for p in layer.parameters():
            p.grad = None
        xd = ds.tensor(x, device=device, requires_grad=True)
        with gemm.disabled(), _jit.disabled():
            out = layer.forward(xd)  # forward itself: a test plugin may wrap Module.__call__ to move layers
            total = sum((t.sum() for t in _flat(out)), ds.tensor(0.0, device=device))
            total.backward()
        got = [t.detach() for t in _flat(out)] + [xd.grad] + [p.grad for p in layer.parameters()]
        assert all(str(t.device) == device for t in got)
        results.append([t.cpu().detach().numpy() for t in got])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def _flat(out):
    return [t for part in (out if isinstance(out, tuple) else (out,)) for t in _as_tuple(part)]


@pytest.mark.parametrize("make", [lambda: R.GRU(3, 4), lambda: R.LSTMCell(3, 4)])
def test_input_or_state_on_another_device_than_the_layer_is_a_clear_error(make):
    layer = make().to("strict")
    sequence = isinstance(layer, R.RNNBase)
    x = ds.randn(5, 2, 3) if sequence else ds.randn(2, 3)
    with pytest.raises(ds.errors.DeviceError, match="two devices, strict and cpu.*the input on cpu"):
        layer(x.cpu())
    h = ds.zeros(1, 2, 4) if sequence else ds.zeros(2, 4)
    state = h.cpu() if sequence else (h.to("strict"), h.cpu())  # the LSTMCell's c on the host
    with pytest.raises(ds.errors.DeviceError, match="two devices, strict and cpu"):
        layer(x.to("strict"), state)


@pytest.mark.parametrize("mode", ["GRU", "LSTM", "RNN"])
def test_layers_large_enough_for_the_gemm_stepper_match_torch_call_after_call(mode):
    """Sizes at which the per-step products go to oneDNN's GEMM through raw addresses (gemm.stepper):
    the GRU's input projection once read a temporary weight freed after the stepper was built, which
    gave NaN on the first call and errors of 0.1 after (batch 16, 32 inputs, 48 units)."""
    x = np.random.default_rng(0).standard_normal((16, 6, 32)).astype(np.float32)
    theirs = getattr(torch.nn, mode)(32, 48, batch_first=True)
    ours = getattr(ds.nn, mode)(32, 48, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ref = theirs(torch.from_numpy(x))[0]
    ref.square().sum().backward()
    for _ in range(3):  # a freed buffer is reused by later allocations: each call must still match
        ours.zero_grad()
        out = ours(ds.tensor(x))[0]
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
        out.square().sum().backward()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(
                p.grad.detach().numpy(), q.grad.detach().numpy(), rtol=1e-4, atol=1e-4, err_msg=name
            )


@pytest.mark.parametrize(
    "config", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True)], ids=["one-layer", "stacked-bidir"]
)
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_with_a_projection_matches_torch(config, with_state):
    rng = np.random.default_rng(5)
    theirs = torch.nn.LSTM(3, 6, proj_size=4, **config).double()
    ours = R.LSTM(3, 6, proj_size=4, **config).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())  # weight_hr_l{k}[_reverse] after the biases
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    x = rng.standard_normal((2, 5, 3) if config.get("batch_first") else (5, 2, 3))
    state = (rng.standard_normal((layers, 2, 4)), rng.standard_normal((layers, 2, 6)))
    xd, xt = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    sd = tuple(ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in state)
    st = tuple(torch.tensor(a, requires_grad=True) for a in state)
    out_d, (h_d, c_d) = ours(xd, sd if with_state else None)
    out_t, (h_t, c_t) = theirs(xt, st if with_state else None)
    assert out_d.shape == tuple(out_t.shape) and h_d.shape == tuple(h_t.shape) and c_d.shape == tuple(c_t.shape)
    (out_d.sin().sum() + 2 * h_d.sum() + 3 * c_d.sum()).backward()
    (out_t.sin().sum() + 2 * h_t.sum() + 3 * c_t.sum()).backward()
    pairs = [(out_d, out_t), (h_d, h_t), (c_d, c_t), (xd.grad, xt.grad)]
    if with_state:
        pairs += [(a.grad, b.grad) for a, b in zip(sd, st)]
    pairs += [(dict(ours.named_parameters())[n].grad, p.grad) for n, p in theirs.named_parameters()]
    for a, b in pairs:
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_lstm_projection_with_packed_input_and_unbatched_input_matches_torch():
    from downslope.nn.utils import rnn as ours_rnn

    rng = np.random.default_rng(6)
    theirs = torch.nn.LSTM(3, 5, proj_size=2, batch_first=True).double()
    ours = R.LSTM(3, 5, proj_size=2, batch_first=True).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, lengths = rng.standard_normal((3, 4, 3)), [4, 2, 3]
    packed_d = ours_rnn.pack_padded_sequence(
        ds.tensor(x, dtype=ds.float64), lengths, batch_first=True, enforce_sorted=False
    )
    packed_t = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lengths, batch_first=True, enforce_sorted=False)
    out_d, (h_d, _) = ours(packed_d)
    out_t, (h_t, _) = theirs(packed_t)
    pad_d, _ = ours_rnn.pad_packed_sequence(out_d, batch_first=True)
    pad_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True)
    np.testing.assert_allclose(pad_d.detach().numpy(), pad_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_d.detach().numpy(), h_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    out_d, _ = ours(ds.tensor(x[0], dtype=ds.float64))
    out_t, _ = theirs(torch.tensor(x[0]))
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_proj_size_is_checked_like_torch():
    with pytest.raises(ds.DownslopeError, match=r"proj_size \(5\) has to be smaller than hidden_size \(5\)"):
        R.LSTM(3, 5, proj_size=5)
    with pytest.raises(ds.DownslopeError, match=r"h0 of shape \(1, 2, 2\)"):
        R.LSTM(3, 5, proj_size=2)(ds.randn(4, 2, 3), (ds.randn(1, 2, 5), ds.randn(1, 2, 5)))


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_layers_on_an_empty_batch_are_empty_as_torch(cls: str, batch_first: bool) -> None:
    torch = pytest.importorskip("torch")
    shape = (0, 3, 4) if batch_first else (3, 0, 4)
    mine = getattr(ds.nn, cls)(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first)
    theirs = getattr(torch.nn, cls)(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = ds.randn(*shape, requires_grad=True)
    out = mine(x)
    assert out[0].shape == tuple(theirs(torch.randn(shape))[0].shape)
    out[0].sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        ("RNN", {}),
        ("GRU", {"num_layers": 2, "bidirectional": True}),
        ("LSTM", {"bias": False, "num_layers": 3}),
        ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
    ],
)
def test_flat_weights_names_and_all_weights_follow_torch(cls: str, kwargs: dict) -> None:
    torch = pytest.importorskip("torch")
    mine, theirs = getattr(ds.nn, cls)(3, 4, **kwargs), getattr(torch.nn, cls)(3, 4, **kwargs)
    assert mine._flat_weights_names == theirs._flat_weights_names
    assert [tuple(p.shape) for p in mine._flat_weights] == [tuple(p.shape) for p in theirs._flat_weights]
    assert all(p is getattr(mine, n) for p, n in zip(mine._flat_weights, mine._flat_weights_names))
    assert [[tuple(p.shape) for p in group] for group in mine.all_weights] == [
        [tuple(p.shape) for p in group] for group in theirs.all_weights
    ]
    with pytest.raises(AttributeError):
        mine._flat_weights_names = []


def test_d2l_xavier_init_through_parameters_reaches_the_weights_the_gru_runs_with() -> None:
    torch = pytest.importorskip("torch")
    mine = ds.nn.GRU(3, 4, num_layers=2, dtype=ds.float64)
    before = {n: p.detach().numpy().copy() for n, p in mine.named_parameters()}
    for name in mine._flat_weights_names:  # d2l's xavier_init_weights
        if "weight" in name:
            ds.nn.init.xavier_uniform_(mine._parameters[name])
    for name, p in mine.named_parameters():
        changed = not np.array_equal(p.detach().numpy(), before[name])
        assert changed == ("weight" in name), name
    theirs = torch.nn.GRU(3, 4, num_layers=2, dtype=torch.float64)
    with torch.no_grad():
        for name in theirs._flat_weights_names:
            getattr(theirs, name).copy_(torch.tensor(getattr(mine, name).detach().numpy()))
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    out_d, _ = mine(ds.tensor(x, dtype=ds.float64))
    out_t, _ = theirs(torch.tensor(x))
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_lstm_and_lstm_cell_take_the_state_as_a_list_as_torch_does():
    # A training loop that detaches its state with `states = [s.detach() for s in states]` passes a list.
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        lib.manual_seed(0)
        lstm = lib.nn.LSTM(4, 3, 1, batch_first=True)
        cell = lib.nn.LSTMCell(4, 3)
        if lib is torch:
            lstm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in results[0][0].items()})
            cell.load_state_dict({k: torch.tensor(v.numpy()) for k, v in results[0][1].items()})
        h = [lib.full((1, 2, 3), 0.5), lib.full((1, 2, 3), -0.25)]
        out, (hn, cn) = lstm(lib.tensor(x), h)
        h1, c1 = cell(lib.tensor(x[:, 0]), [lib.full((2, 3), 0.5), lib.full((2, 3), -0.25)])
        results.append((lstm.state_dict(), cell.state_dict(), [t.detach().numpy() for t in (out, hn, cn, h1, c1)]))
    for ours, theirs in zip(results[0][2], results[1][2]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
