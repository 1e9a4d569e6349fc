"""Lazy modules and uninitialized parameters against torch: names, state_dict keys, the class they
become, loading, errors, and the values and float64 gradients once initialized."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")

# (class name, constructor args, input shape)
CASES = [
    ("LazyLinear", (3,), (2, 5)),
    ("LazyConv1d", (4, 3), (2, 3, 8)),
    ("LazyConv2d", (4, 3), (2, 3, 6, 6)),
    ("LazyConv3d", (4, 2), (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 3), (2, 6, 4, 4)),
    ("LazyConvTranspose3d", (2, 2), (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), (4, 3)),
    ("LazyBatchNorm2d", (), (4, 3, 2, 2)),
    ("LazyBatchNorm3d", (), (4, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), (4, 3, 5)),
    ("LazyInstanceNorm2d", (), (4, 3, 3, 3)),
    ("LazyInstanceNorm3d", (), (2, 3, 3, 3, 3)),
]


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("name, args, shape", CASES)
def test_lazy_module_becomes_the_plain_class_as_torch(name, args, shape):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours).startswith(type(theirs).__name__ + "(")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.has_uninitialized_params() and theirs.has_uninitialized_params()
    assert all(nn.parameter.is_lazy(p) for p in ours.parameters())
    ours.double(), theirs.double()
    x = _x(shape)
    theirs(torch.tensor(x))
    ours(ds.from_numpy(x))
    plain = type(theirs).__name__
    assert type(ours).__name__ == plain
    assert isinstance(ours, getattr(nn, plain))
    assert not ours.__dict__.get("_hooks") and not hasattr(ours, "_initialize_hook")
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert got == want
    assert all(p.dtype == np.float64 for p in ours.parameters())


@pytest.mark.parametrize("name, args, shape", CASES)
def test_values_and_float64_gradients_match_torch_after_loading_torch_weights(name, args, shape):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args).double()
    x = _x(shape)
    theirs(torch.tensor(x))  # initialize
    ours = getattr(nn, name)(*args).double()
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    assert type(ours).__name__ == name  # loading initializes the weights; the class changes at the forward
    for train in (True, False):
        theirs.train(train), ours.train(train)
        xt = torch.tensor(x * 1.5, requires_grad=True)
        xd = ds.from_numpy(x * 1.5).requires_grad_()
        yt, yd = theirs(xt), ours(xd)
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = _x(tuple(yt.shape), seed=1)
        yt.backward(torch.tensor(g))
        yd.backward(ds.from_numpy(g))
        np.testing.assert_allclose(xd.grad.detach().numpy(), xt.grad.detach().numpy(), rtol=1e-10, atol=1e-12)
        for (k, p), (tk, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert k == tk
            np.testing.assert_allclose(p.grad.detach().numpy(), tp.grad.detach().numpy(), rtol=1e-10, atol=1e-12)
            p.grad, tp.grad = None, None
        for (k, b), (_, tb) in zip(ours.named_buffers(), theirs.named_buffers()):
            np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    assert type(ours).__name__ == type(theirs).__name__


def test_seeded_lazy_linear_draws_the_plain_layers_weights():
    ds.manual_seed(3)
    lazy = nn.LazyLinear(4)
    lazy(ds.ones(2, 6))
    ds.manual_seed(3)
    plain = nn.Linear(6, 4)
    assert np.array_equal(lazy.weight.detach().numpy(), plain.weight.detach().numpy())
    assert np.array_equal(lazy.bias.detach().numpy(), plain.bias.detach().numpy())
    ds.manual_seed(3)
    conv = nn.LazyConv2d(2, 3, groups=2)
    conv(ds.ones(1, 4, 5, 5))
    ds.manual_seed(3)
    assert np.array_equal(conv.weight.detach().numpy(), nn.Conv2d(4, 2, 3, groups=2).weight.detach().numpy())


def test_uninitialized_state_dict_round_trips_and_refuses_initialized_targets():
    lazy_sd = nn.LazyLinear(3).state_dict()
    assert [repr(v) for v in lazy_sd.values()] == ["<UninitializedParameter>"] * 2
    still = nn.LazyLinear(3)
    assert still.load_state_dict(lazy_sd) == ([], [])
    assert still.has_uninitialized_params()
    with pytest.raises(RuntimeError, match="uninitialized"):
        nn.Linear(4, 3).load_state_dict(lazy_sd)
    with pytest.raises(RuntimeError):  # torch refuses too
        torch.nn.Linear(4, 3).load_state_dict(torch.nn.LazyLinear(3).state_dict())


def test_loaded_lazy_linear_checks_the_input_size_at_the_forward():
    src = nn.Linear(4, 3)
    lazy = nn.LazyLinear(3)
    lazy.load_state_dict(src.state_dict())
    assert lazy.in_features == 0 and lazy.weight.shape == (3, 4)
    with pytest.raises(RuntimeError, match="in_features"):
        lazy(ds.ones(2, 5))
    np.testing.assert_array_equal(lazy(ds.ones(2, 4)).detach().numpy(), src(ds.ones(2, 4)).detach().numpy())
    assert type(lazy) is nn.Linear and lazy.in_features == 4


def test_optimizer_over_uninitialized_parameters_steps_after_the_first_forward():
    # torch's optimizers take uninitialized parameters (d2l builds them before the first forward)
    lazy = nn.LazyLinear(3)
    opt = ds.optim.SGD(lazy.parameters(), lr=0.1)
    torch.optim.SGD(torch.nn.LazyLinear(3).parameters(), lr=0.1)  # torch accepts them too
    lazy(ds.ones(1, 2))
    before = lazy.weight.detach().numpy().copy()
    lazy(ds.ones(1, 2)).sum().backward()
    opt.step()
    np.testing.assert_allclose(lazy.weight.detach().numpy(), before - 0.1, rtol=1e-6)


def test_data_of_an_uninitialized_parameter_is_empty_and_writes_to_it_are_lost_as_torch():
    # d2l: LazyLinear(1); net.weight.data.normal_(0, 0.01); net.bias.data.fill_(0) before the first forward
    ours, theirs = nn.LazyLinear(2), torch.nn.LazyLinear(2)
    assert tuple(ours.weight.data.shape) == tuple(theirs.weight.data.shape)
    assert ours.weight.data.dtype == np.float32 and not ours.weight.data.requires_grad
    for m in (ours, theirs):
        m.weight.data.normal_(0, 0.01)
        m.bias.data.fill_(5.0)
    ds.manual_seed(7)
    ours(ds.ones(4, 3))
    ds.manual_seed(7)
    plain = nn.Linear(3, 2)  # the first forward initializes as the plain layer does: the writes are lost
    np.testing.assert_array_equal(ours.weight.detach().numpy(), plain.weight.detach().numpy())
    np.testing.assert_array_equal(ours.bias.detach().numpy(), plain.bias.detach().numpy())
    torch.manual_seed(7)
    theirs(torch.ones(4, 3))
    assert not (theirs.bias == 5.0).any() and not (ours.bias == 5.0).any().item()
    assert float(theirs.weight.detach().abs().max()) > 0.05 and float(ours.weight.abs().max()) > 0.05  # not N(0, 0.01)


def test_uninitialized_parameter_api():
    p = nn.UninitializedParameter(dtype=ds.float64)
    assert nn.parameter.UninitializedParameter is nn.UninitializedParameter
    assert repr(p) == "<UninitializedParameter>" and p.dtype == np.float64 and p.requires_grad
    assert isinstance(p, nn.Parameter)
    with pytest.raises(RuntimeError, match="shape of an uninitialized"):
        _ = p.shape
    with pytest.raises(ValueError, match="uninitialized parameter"):
        p + 1
    with pytest.raises(ValueError, match="uninitialized parameter"):
        p.numel()
    q = copy.deepcopy(p)
    assert type(q) is nn.UninitializedParameter and q.dtype == np.float64
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and p.shape == (2, 3) and p.dtype == np.float64 and p.requires_grad
    b = nn.UninitializedBuffer(persistent=False)
    assert not b.requires_grad and not b.persistent and repr(b) == "<UninitializedBuffer>"
    m = nn.Module()
    m.stats = b  # an uninitialized buffer registers as a buffer, as in torch
    assert [n for n, _ in m.named_buffers()] == ["stats"] and list(m.state_dict()) == []
    b.materialize(4, dtype=ds.float64)
    assert type(b) is ds.Tensor and b.shape == (4,) and b.dtype == np.float64


def test_conv_and_norm_input_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(ds.ones(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"):
        nn.LazyConv2d(4, 3)(ds.ones(3, 5))
    with pytest.raises(TypeError):
        nn.LazyLinear(3)([1.0, 2.0])
    with pytest.raises(RuntimeError):
        nn.LazyLinear(3)(ds.tensor(1.0))


def test_unbatched_conv_input_and_no_bias():
    conv = nn.LazyConvTranspose2d(4, 3, groups=2, bias=False)
    out = conv(ds.ones(6, 5, 5))
    assert out.shape == (4, 7, 7) and conv.weight.shape == (6, 2, 3, 3) and conv.bias is None
    lin = nn.LazyLinear(2, bias=False)
    assert list(lin.state_dict()) == ["weight"]


def test_lazy_modules_inside_a_model_and_deepcopy():
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    twin = copy.deepcopy(model)
    assert "LazyConv2d(0, 4" in repr(model)  # PyTorch's repr: 0 input channels until the first forward
    out = model(ds.randn(2, 3, 6, 6))
    assert out.shape == (2, 2)
    assert [type(m).__name__ for m in model] == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"]
    assert model[4].in_features == 64
    assert twin[0].has_uninitialized_params()  # the copy stays lazy and initializes on its own
    twin(ds.randn(1, 5, 6, 6))
    assert twin[0].in_channels == 5 and model[0].in_channels == 3


def test_dtype_keyword_and_casts_before_the_forward():
    lin = nn.LazyLinear(3, dtype=ds.float64)
    assert lin.weight.dtype == np.float64
    lin(ds.ones(1, 2, dtype=ds.float64))
    assert lin.weight.dtype == np.float64
    bn = nn.LazyBatchNorm1d().double()
    bn(ds.ones(4, 3, dtype=ds.float64))
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


@pytest.mark.filterwarnings("ignore:input's size at dim=1")
def test_instance_norm_without_weights_reads_channels_from_the_input():
    norm = nn.LazyInstanceNorm1d(affine=False, track_running_stats=False)
    theirs = torch.nn.LazyInstanceNorm1d(affine=False, track_running_stats=False)
    x = _x((2, 3, 5))
    np.testing.assert_allclose(
        norm(ds.from_numpy(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
    )
    assert type(norm) is nn.InstanceNorm1d and norm.num_features == 3  # torch keeps 0 (it never checks)
