"""float16 against PyTorch: reductions and scans accumulate in float32 and round once (torch's
"opmath" rule), normalization layers compute in float32, and the layers whose compiled (numba)
kernels have no float16 take the NumPy path instead of failing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn.utils import clip_grad_norm_

torch = pytest.importorskip("torch")

THREES = np.full((2, 8192), 3.0, np.float16)  # sum of squares 73728 > float16's largest, 65504
MIXED = np.where(np.arange(8192) % 2 == 0, 200.0, 3.0).astype(np.float16)[None]  # squares fit, their sum not
TENTHS = np.full((1, 10000), 0.1, np.float16)  # a float16 running sum of 0.1 stops at 256
CANCEL = np.array([[60000.0, 60000.0, -60000.0, -60000.0, 1.5] * 3], np.float16)  # overflows half-way only
RAND = (np.random.default_rng(0).standard_normal((3, 5000)) * 4).astype(np.float16)
INPUTS = {"threes": THREES, "mixed": MIXED, "tenths": TENTHS, "cancel": CANCEL, "rand": RAND}

REDUCTIONS = {
    "sum": lambda L, t: t.sum(-1),
    "sum_all": lambda L, t: t.sum(),
    "sum_dim0": lambda L, t: t.sum(0),
    "mean": lambda L, t: t.mean(-1),
    "mean_dim0": lambda L, t: t.mean(0),
    "nansum": lambda L, t: L.nansum(t, -1),
    "prod": lambda L, t: (t[..., :40] / 2).prod(-1),
    "norm": lambda L, t: t.norm(dim=-1),
    "norm_all": lambda L, t: t.norm(),
    "norm_p1": lambda L, t: t.norm(p=1, dim=-1),
    "norm_p3": lambda L, t: t.norm(p=3, dim=-1),
    "norm_inf": lambda L, t: t.norm(p=float("inf"), dim=-1),
    "linalg_vector_norm": lambda L, t: L.linalg.vector_norm(t, dim=-1),
    "linalg_norm": lambda L, t: L.linalg.norm(t),
    "linalg_matrix_norm_1": lambda L, t: L.linalg.matrix_norm(t[..., :4000].reshape(-1, 40, 100), ord=1),
    "var": lambda L, t: t.var(-1),
    "var_biased": lambda L, t: t.var(-1, unbiased=False),
    "std": lambda L, t: t.std(-1),
    "var_mean": lambda L, t: L.var_mean(t, -1)[0],
    "logsumexp": lambda L, t: t.logsumexp(-1),
    "softmax": lambda L, t: t.softmax(-1),
    "softmax_dim0": lambda L, t: t.softmax(0),
    "log_softmax": lambda L, t: t.log_softmax(-1),
    "cumsum": lambda L, t: t.cumsum(-1),
    "cumsum_dim0": lambda L, t: t.cumsum(0),
    "cumprod": lambda L, t: (t[..., :40] / 2).cumprod(-1),
    "logcumsumexp": lambda L, t: t.logcumsumexp(-1),
}


def _close_to_torch(ours, theirs, rtol=2e-3, atol=1e-3):
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(
        np.asarray(ours.detach().cpu().numpy(), np.float32), theirs.detach().float().numpy(), rtol=rtol, atol=atol
    )


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_float16_reductions_accumulate_in_float32_as_torch(op, name):
    a = INPUTS[name]
    if op.startswith("linalg_matrix") and a.shape[-1] < 4000:
        pytest.skip("needs 4000 columns")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # torch's own overflow in the 'cancel' input
        theirs = REDUCTIONS[op](torch, torch.tensor(a))
    ours = REDUCTIONS[op](ds, ds.tensor(a, dtype=ds.float16))
    _close_to_torch(ours, theirs)


def test_float16_cumsum_of_tenths_reaches_a_thousand():
    out = ds.tensor(np.full(10000, 0.1, np.float16), dtype=ds.float16).cumsum(0)
    assert out.dtype == ds.float16
    assert float(out[-1]) == float(torch.tensor(np.full(10000, 0.1, np.float16)).cumsum(0)[-1]) == 1000.0


def test_float16_norm_of_threes_is_finite_as_torch():
    assert float(ds.tensor(THREES[0], dtype=ds.float16).norm()) == 271.5 == float(torch.tensor(THREES[0]).norm())


def test_top_p_on_half_probabilities_keeps_torch_count():
    logits = (np.random.default_rng(0).standard_normal((1, 32000)) * 0.5).astype(np.float16)
    counts = []
    for lib, t in ((torch, torch.tensor(logits)), (ds, ds.tensor(logits, dtype=ds.float16))):
        cp = lib.cumsum(lib.sort(lib.softmax(t, dim=-1), descending=True)[0], dim=-1)
        counts.append((float(cp[0, -1]), int((cp <= 0.9).sum())))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_float16_reductions_on_the_strict_device(device):
    x = ds.tensor(THREES, dtype=ds.float16, device=device)
    assert float(x.norm(dim=-1)[0].cpu()) == 271.5
    assert float(x.cumsum(-1)[0, -1].cpu()) == 24576.0
    assert float(x.sum(0)[0].cpu()) == 6.0
    assert float(x.var(-1)[0].cpu()) == 0.0


GRADIENTS = {
    "cumsum": lambda t: t.cumsum(-1),
    "cumsum_dim0": lambda t: t.cumsum(0),
    "cumprod": lambda t: (t[:, :30] / 2).cumprod(-1),
    "prod": lambda t: (t[:, :30] / 2).prod(-1),
    "softmax": lambda t: t.softmax(-1),
    "softmax_dim0": lambda t: t.softmax(0),
    "log_softmax": lambda t: t.log_softmax(-1),
    "logsumexp": lambda t: t.logsumexp(-1),
    "logcumsumexp": lambda t: t.logcumsumexp(-1),
    "norm": lambda t: t.norm(dim=-1),
    "norm_p3": lambda t: t.norm(p=3, dim=-1),
    "var": lambda t: t.var(-1),
    "std": lambda t: t.std(-1),
    "sum": lambda t: t.sum(-1),
    "mean": lambda t: t.mean(0),
}


@pytest.mark.parametrize("op", sorted(GRADIENTS))
def test_float16_gradients_match_torch(op):
    """Values against torch's float16; gradients against torch's float64 (exact up to float16's
    rounding of the inputs and weights): torch's own float16 logcumsumexp gradient is off by up to 3
    where this one is off by 0.005."""
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3, 3000)) * 4).astype(np.float16)
    t = torch.tensor(a).double().requires_grad_()
    x = ds.tensor(a, dtype=ds.float16, requires_grad=True)
    yd = GRADIENTS[op](x)
    _close_to_torch(yd, GRADIENTS[op](torch.tensor(a)), rtol=5e-3, atol=5e-3)
    yt = GRADIENTS[op](t)
    w = rng.standard_normal(tuple(yt.shape)).astype(np.float16)
    (yt * torch.tensor(w).double()).sum().backward()
    (yd * ds.tensor(w, dtype=ds.float16)).sum().backward()
    assert x.grad.dtype == ds.float16
    scale = float(t.grad.abs().max()) or 1.0
    np.testing.assert_allclose(np.float64(x.grad.numpy()), t.grad.numpy(), rtol=1e-2, atol=2e-3 * scale)


def test_float16_cumsum_double_backward_accumulates_in_float32():
    x = ds.tensor(np.full(4000, 0.1, np.float16), dtype=ds.float16, requires_grad=True)
    (g,) = ds.autograd.grad(x.cumsum(0).sum(), x, create_graph=True)
    t = torch.tensor(np.full(4000, 0.1, np.float16), requires_grad=True)
    (r,) = torch.autograd.grad(t.cumsum(0).sum(), t, create_graph=True)
    _close_to_torch(g, r)
    assert float(g[0]) == 4000.0


@pytest.mark.parametrize("norm_type", [2.0, 3.0, float("inf")])
def test_clip_grad_norm_of_half_gradients_matches_torch(norm_type):
    grads = [np.full((4096,), 5.0, np.float16), np.full((7,), -2.0, np.float16)]
    results = []
    for lib in (torch, ds):
        params = [lib.nn.Parameter(lib.zeros(g.shape).half()) for g in grads]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g) if lib is torch else ds.tensor(g, dtype=ds.float16)
        total = (
            clip_grad_norm_(params, 1.0, norm_type)
            if lib is ds
            else lib.nn.utils.clip_grad_norm_(params, 1.0, norm_type)
        )
        results.append((total, [p.grad for p in params]))
    (tn, tg), (dn, dg) = results
    _close_to_torch(dn, tn)
    assert np.isfinite(float(dn))
    for a, b in zip(dg, tg):
        _close_to_torch(a, b, rtol=1e-3, atol=0)


# ---------------------------------------------------------------------- normalization
@pytest.mark.parametrize("weight_dtype", ["float16", "float32", None])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 60.0])
def test_rms_norm_on_half_input_matches_torch_to_a_rounding(weight_dtype, scale):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((16, 256)) * scale).astype(np.float16)
    w = (rng.random(256) + 0.5).astype(np.float16)
    wt = None if weight_dtype is None else torch.tensor(w.astype(weight_dtype))
    wd = None if weight_dtype is None else ds.tensor(w.astype(weight_dtype), dtype=getattr(ds, weight_dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Mismatch dtype between input and weight"
        theirs = torch.nn.functional.rms_norm(torch.tensor(x), (256,), wt)
    ours = F.rms_norm(ds.tensor(x, dtype=ds.float16), (256,), wd)
    assert ours.dtype == ds.float16 == np.dtype(str(theirs.dtype).replace("torch.", ""))
    # one rounding, as torch: nearly every element to the bit (a float32 sum in another order may
    # move a few by one float16 step); rounding before the weight would miss a quarter of them
    np.testing.assert_allclose(np.float32(ours.numpy()), theirs.float().numpy(), rtol=2e-3)
    assert (ours.numpy() == theirs.numpy()).mean() > 0.995


def test_rms_norm_default_eps_of_half_input_is_float32_eps():
    tiny = np.full((1, 4), 1e-3, np.float16)  # mean square 1e-6: float16's eps (9.8e-4) would swamp it
    ours = F.rms_norm(ds.tensor(tiny, dtype=ds.float16), (4,))
    theirs = torch.nn.functional.rms_norm(torch.tensor(tiny), (4,))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert float(ours[0, 0]) > 0.9


def test_float32_rms_norm_module_on_half_input_gives_half_as_torch():
    x = (np.random.default_rng(3).standard_normal((4, 8)) * 3).astype(np.float16)
    m = ds.nn.RMSNorm(8)
    xd = ds.tensor(x, dtype=ds.float16, requires_grad=True)
    y = m(xd)
    assert y.dtype == ds.float16
    y.sum().backward()
    assert m.weight.grad.dtype == ds.float32 and xd.grad.dtype == ds.float16
    tm = torch.nn.RMSNorm(8)
    xt = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = tm(xt)
    r.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), r.detach().numpy())
    np.testing.assert_allclose(m.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.float32(xd.grad.numpy()), xt.grad.float().numpy(), rtol=1e-2, atol=1e-2)


def _module_pair(torch_module, ds_module):
    torch_module, ds_module = torch_module.half(), ds_module.half()
    ds_module.load_state_dict(
        {
            k: ds.tensor(v.numpy(), dtype=ds.float16 if v.dtype == torch.float16 else None)
            for k, v in torch_module.state_dict().items()
        }
    )
    return torch_module, ds_module


LAYERS = {
    "BatchNorm1d": (lambda L: L.nn.BatchNorm1d(6), (8, 6, 5)),
    "BatchNorm2d": (lambda L: L.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "LayerNorm": (lambda L: L.nn.LayerNorm(16), (4, 16)),
    "GroupNorm": (lambda L: L.nn.GroupNorm(2, 6), (4, 6, 5)),
    "InstanceNorm1d": (lambda L: L.nn.InstanceNorm1d(6, affine=True), (4, 6, 5)),
    "Conv1d": (lambda L: L.nn.Conv1d(3, 4, 3), (2, 3, 9)),
    "Conv2d": (lambda L: L.nn.Conv2d(3, 4, 3), (2, 3, 6, 6)),
    "ConvTranspose2d": (lambda L: L.nn.ConvTranspose2d(3, 4, 3), (2, 3, 5, 5)),
    "MaxPool2d": (lambda L: L.nn.MaxPool2d(2), (2, 3, 6, 6)),
    "AvgPool2d": (lambda L: L.nn.AvgPool2d(2), (2, 3, 6, 6)),
    "LSTM": (lambda L: L.nn.LSTM(4, 5, batch_first=True), (2, 6, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_half_layers_match_torch_forward_and_backward(name):
    make, shape = LAYERS[name]
    torch.manual_seed(0)
    tm, dm = _module_pair(make(torch), make(ds))
    rng = np.random.default_rng(4)
    scale = 30.0 if "Norm" in name else 1.0  # float16 squares of 30-ish values overflow their sums
    a = (rng.standard_normal(shape) * scale).astype(np.float16)
    xt, xd = torch.tensor(a, requires_grad=True), ds.tensor(a, dtype=ds.float16, requires_grad=True)
    yt, yd = tm(xt), dm(xd)
    yt, yd = (yt[0], yd[0]) if isinstance(yt, tuple) else (yt, yd)
    _close_to_torch(yd, yt, rtol=1e-2, atol=1e-2)
    w = rng.standard_normal(tuple(yt.shape)).astype(np.float16)
    (yt.float() * torch.tensor(w).float()).sum().backward()
    (yd * ds.tensor(w, dtype=ds.float16)).sum().backward()
    pairs = [(xd.grad, xt.grad)] + [(p.grad, q.grad) for p, q in zip(dm.parameters(), tm.parameters())]
    for ours, theirs in pairs:
        assert ours is not None and ours.dtype == ds.float16
        scale = float(theirs.float().abs().max()) or 1.0
        np.testing.assert_allclose(np.float32(ours.numpy()), theirs.float().numpy(), rtol=2e-2, atol=2e-2 * scale)
    if name.startswith("BatchNorm"):
        _close_to_torch(dm.running_var, tm.running_var, rtol=1e-2, atol=1e-2)
        dm.eval(), tm.eval()
        _close_to_torch(dm(xd), tm(xt), rtol=1e-2, atol=1e-2)


def test_half_embedding_backward_matches_torch():
    torch.manual_seed(0)
    tm, dm = _module_pair(torch.nn.Embedding(10, 4), ds.nn.Embedding(10, 4))
    idx = [1, 2, 2]
    dm(ds.tensor(idx, dtype=ds.int64)).sum().backward()
    tm(torch.tensor(idx)).sum().backward()
    assert dm.weight.grad.dtype == ds.float16
    np.testing.assert_array_equal(dm.weight.grad.numpy(), tm.weight.grad.numpy())


def test_half_conv2d_functional_matches_torch():
    rng = np.random.default_rng(5)
    a, w = rng.standard_normal((2, 3, 6, 6)).astype(np.float16), rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    xt, wt = torch.tensor(a, requires_grad=True), torch.tensor(w, requires_grad=True)
    xd, wd = ds.tensor(a, dtype=ds.float16, requires_grad=True), ds.tensor(w, dtype=ds.float16, requires_grad=True)
    yt, yd = torch.nn.functional.conv2d(xt, wt, padding=1), F.conv2d(xd, wd, padding=1)
    _close_to_torch(yd, yt, rtol=1e-2, atol=1e-2)
    yt.float().sum().backward()
    yd.sum().backward()
    for ours, theirs in ((xd.grad, xt.grad), (wd.grad, wt.grad)):
        assert ours.dtype == ds.float16
        np.testing.assert_allclose(np.float32(ours.numpy()), theirs.float().numpy(), rtol=1e-2, atol=5e-2)


def test_jit_kernels_decline_float16_arrays():
    from downslope.nn import _jit

    assert _jit.kernels(np.zeros(3, np.float16)) is None
    assert _jit.kernels(np.zeros(3, np.float32), np.zeros(2, np.float16)) is None


@pytest.mark.parametrize("shape", [(10000, 4), (100, 100, 4)])
def test_half_linear_bias_gradient_sums_in_float32_as_torch(shape):
    torch.manual_seed(0)
    tm, dm = _module_pair(torch.nn.Linear(4, 3), ds.nn.Linear(4, 3))
    a = np.full(shape, 0.1, np.float16)  # a float16 column sum of 10000 ones stops at 2048
    tm(torch.tensor(a)).sum().backward()
    dm(ds.tensor(a, dtype=ds.float16)).sum().backward()
    for ours, theirs in ((dm.bias.grad, tm.bias.grad), (dm.weight.grad, tm.weight.grad)):
        _close_to_torch(ours, theirs)
    assert float(dm.bias.grad[0]) == 10000.0


def test_broadcast_gradient_and_mse_loss_sum_half_values_in_float32_as_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((10000, 4)).astype(np.float16)
    b = ds.zeros(4, dtype=ds.float16, requires_grad=True)
    (ds.tensor(x, dtype=ds.float16) + b).sum().backward()
    tb = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    (torch.tensor(x) + tb).sum().backward()
    assert b.grad.dtype == ds.float16
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())  # 10000 each, not 2048
    y = (x * 3).astype(np.float16)
    ours = ds.nn.functional.mse_loss(ds.tensor(x, dtype=ds.float16), ds.tensor(y, dtype=ds.float16))
    theirs = torch.nn.functional.mse_loss(torch.tensor(x), torch.tensor(y))  # a float16 sum would overflow
    assert np.isfinite(ours.item())
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=2e-3)
