"""nn.utils: clip_grad_norm_ / clip_grad_value_ against torch.nn.utils (and their properties), parameters_to_vector."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope.devices import to_host
from downslope.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)  # PyTorch's layers initialize at random: the same weights on every run


def _pair(shapes, seed=0, scale=1.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    grads = [(rng.normal(size=s) * scale).astype(np.float32) for s in shapes]
    ours = [ds.zeros(*s, requires_grad=True) for s in shapes]
    theirs = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p, t, g in zip(ours, theirs, grads):
        p.grad = ds.tensor(g)
        t.grad = torch.tensor(g)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.1, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):  # type: ignore[no-untyped-def]
    ours, theirs = _pair([(3, 4), (4,), (2, 2, 2)])
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert float(total) == pytest.approx(float(ttotal), rel=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_matches_torch():
    ours, theirs = _pair([(5, 3), (7,)], scale=3.0)
    clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.detach().numpy(), t.grad.detach().numpy())


def test_nonfinite_norm():
    ours, _ = _pair([(3,)])
    ours[0].grad.array[1] = np.inf
    with pytest.raises(RuntimeError, match="non|inf"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert math.isinf(float(clip_grad_norm_(ours, 1.0)))  # without the flag: torch's behaviour


def test_params_without_grad_are_ignored_and_bad_args_refused():
    w = ds.zeros(3, requires_grad=True)
    assert float(clip_grad_norm_([w], 1.0)) == 0.0
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([w], -1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_([w], -1.0)
    with pytest.raises(TypeError, match="Tensor"):
        clip_grad_norm_([np.zeros(3)], 1.0)


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4),
    max_norm=st.floats(1e-3, 10.0),
    scale=st.floats(1e-3, 100.0),
)
def test_clipped_norm_never_exceeds_max_and_direction_is_kept(shapes, max_norm, scale):  # type: ignore[no-untyped-def]
    ours, _ = _pair(shapes, seed=1, scale=scale)
    before = np.concatenate([p.grad.detach().numpy().ravel().astype(np.float64) for p in ours])
    total = float(clip_grad_norm_(ours, max_norm))
    after = np.concatenate([p.grad.detach().numpy().ravel().astype(np.float64) for p in ours])
    assert total == pytest.approx(np.linalg.norm(before), rel=1e-5)
    assert np.linalg.norm(after) <= max_norm * (1 + 1e-5) or total <= max_norm
    if np.linalg.norm(before) > 0:
        cos = after @ before / (np.linalg.norm(after) * np.linalg.norm(before))
        assert cos == pytest.approx(1.0, abs=1e-5)


def test_optim_and_nn_utils_share_one_clipping_rule():
    import downslope.optim

    assert downslope.optim.clip_grad_norm_ is ds.nn.utils.clip_grad_norm_
    assert downslope.optim.clip_grad_value_ is ds.nn.utils.clip_grad_value_


def test_foreach_is_accepted():
    ours, theirs = _pair([(3, 4)], seed=3, scale=5.0)
    total = clip_grad_norm_(ours, 1.0, foreach=True)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=True)
    np.testing.assert_allclose(float(total), float(ttotal), rtol=1e-6)
    clip_grad_value_(ours, 0.01, foreach=False)
    torch.nn.utils.clip_grad_value_(theirs, 0.01, foreach=False)
    np.testing.assert_allclose(ours[0].grad.detach().numpy(), theirs[0].grad.detach().numpy(), rtol=1e-6)


def test_parameters_to_vector_and_back_match_torch():
    model = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.Linear(4, 2))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    tmodel.load_state_dict({k: torch.tensor(to_host(v)) for k, v in model.state_dict().items()})
    vec = parameters_to_vector(model.parameters())
    tvec = torch.nn.utils.parameters_to_vector(tmodel.parameters())
    np.testing.assert_array_equal(vec.detach().numpy(), tvec.detach().numpy())
    (vec * vec).sum().backward()  # differentiable, as in torch
    np.testing.assert_allclose(model[0].weight.grad.detach().numpy(), 2 * model[0].weight.detach().numpy(), rtol=1e-6)
    new = np.arange(vec.numel(), dtype=np.float32)
    first = model[0].weight
    vector_to_parameters(ds.tensor(new), model.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tmodel.parameters())
    assert model[0].weight is first  # written in place: an optimizer holding it sees the new values
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), tp.detach().numpy(), err_msg=name)
    with pytest.raises(ValueError, match=r"1-D vector of 26 values.*got shape \(3,\)"):
        vector_to_parameters(ds.zeros(3), model.parameters())


@pytest.mark.parametrize(("make", "dim"), [("linear", 0), ("conv", 0), ("conv", 1), ("linear", None)])
def test_weight_norm_matches_torch(make: str, dim) -> None:  # type: ignore[no-untyped-def]
    if make == "linear":
        ours, theirs = ds.nn.Linear(3, 2), torch.nn.Linear(3, 2)
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    else:
        ours, theirs = ds.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3)
        x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ds.nn.utils.weight_norm(ours, dim=dim)
    torch.nn.utils.weight_norm(theirs, dim=dim)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for _ in range(2):  # the weight is recomputed from g and v before every forward
        out, tout = ours(ds.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
        (out**2).sum().backward()
        (tout**2).sum().backward()
        for name in ("weight_g", "weight_v"):
            np.testing.assert_allclose(
                getattr(ours, name).grad.detach().numpy(),
                getattr(theirs, name).grad.detach().numpy(),
                rtol=1e-4,
                atol=1e-5,
            )
        with torch.no_grad():
            theirs.weight_g.mul_(1.5)
        ours.weight_g.array[...] *= 1.5
    ds.nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="is not weight-normalized"):
        ds.nn.utils.remove_weight_norm(ours)


@pytest.mark.parametrize(("name", "dim"), [("bias", 0), ("bias", -1), ("weight", -1), ("weight", -2)])
def test_old_weight_norm_dims_and_1d_parameters_match_torch(name: str, dim: int) -> None:
    # a 1-D parameter with dim 0 keeps one g per element (|v|); -1 means the whole tensor, not the last dim
    theirs = torch.nn.Linear(4, 3).double()
    ours = ds.nn.Linear(4, 3, dtype="float64")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ds.nn.utils.weight_norm(ours, name=name, dim=dim)
    torch.nn.utils.weight_norm(theirs, name=name, dim=dim)
    for (k, v), tv in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert v.shape == tuple(tv.shape), k
        np.testing.assert_allclose(v.detach().numpy(), tv.detach().numpy(), rtol=1e-12, err_msg=k)
    x = np.random.default_rng(3).standard_normal((5, 4))
    out, tout = ours(ds.from_numpy(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    (out**3).sum().backward()
    (tout**3).sum().backward()
    for k in (name + "_g", name + "_v"):
        # v's gradient is exactly 0 for a 1-D dim-0 norm (w = g sign(v)); torch's is rounding noise
        ours_g, ref_g = getattr(ours, k).grad.detach().numpy(), getattr(theirs, k).grad.detach().numpy()
        np.testing.assert_allclose(ours_g, ref_g, rtol=1e-10, atol=1e-12, err_msg=k)
    with pytest.raises(IndexError, match="weight_norm: dim 1 is out of range for a parameter with 1 dim"):
        ds.nn.utils.weight_norm(ds.nn.Linear(4, 3), name="bias", dim=1)


@pytest.mark.parametrize("make", ["linear", "conv", "conv_transpose"])
def test_spectral_norm_matches_torch(make: str) -> None:
    rng = np.random.default_rng(1)
    if make == "linear":
        ours, theirs, x = ds.nn.Linear(4, 3), torch.nn.Linear(4, 3), rng.standard_normal((5, 4))
    elif make == "conv":
        ours, theirs, x = ds.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3), rng.standard_normal((2, 2, 5, 5))
    else:
        ours, theirs = ds.nn.ConvTranspose2d(2, 3, 3), torch.nn.ConvTranspose2d(2, 3, 3)
        x = rng.standard_normal((2, 2, 4, 4))
    x = x.astype(np.float32)
    ds.nn.utils.spectral_norm(ours)
    torch.nn.utils.spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})  # same u, v start
    for _ in range(3):  # each training forward runs one power iteration
        out, tout = ours(ds.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
        (out**2).sum().backward()
        (tout**2).sum().backward()
    np.testing.assert_allclose(
        ours.weight_orig.grad.detach().numpy(), theirs.weight_orig.grad.detach().numpy(), rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(ours.weight_u.detach().numpy(), theirs.weight_u.detach().numpy(), rtol=1e-4, atol=1e-6)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5
    )
    ds.nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_get_total_norm_and_clip_grads_with_norm_match_torch() -> None:
    ours, theirs = _pair([(3, 4), (5,)], seed=8, scale=3.0)
    for norm_type in (2.0, 1.0, math.inf):
        got = ds.nn.utils.get_total_norm([p.grad for p in ours], norm_type)
        want = torch.nn.utils.get_total_norm([t.grad for t in theirs], norm_type)
        np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
    total = ds.nn.utils.get_total_norm([p.grad for p in ours])
    ds.nn.utils.clip_grads_with_norm_(ours, 1.0, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 1.0, torch.nn.utils.get_total_norm([t.grad for t in theirs]))
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-6)
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        ds.nn.utils.clip_grad_norm(ours, 0.5)


@pytest.mark.parametrize("kind", ["conv", "conv_nobias", "linear", "conv_transpose"])
def test_fuse_bn_eval_matches_torch(kind: str) -> None:
    rng = np.random.default_rng(2)
    if kind.startswith("conv_t"):
        layer, t_layer = ds.nn.ConvTranspose2d(2, 3, 3), torch.nn.ConvTranspose2d(2, 3, 3)
        bn, t_bn, x = ds.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), rng.standard_normal((2, 2, 4, 4))
    elif kind.startswith("conv"):
        bias = kind == "conv"
        layer, t_layer = ds.nn.Conv2d(2, 3, 3, bias=bias), torch.nn.Conv2d(2, 3, 3, bias=bias)
        bn, t_bn, x = ds.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), rng.standard_normal((2, 2, 5, 5))
    else:
        layer, t_layer = ds.nn.Linear(4, 3), torch.nn.Linear(4, 3)
        bn, t_bn, x = ds.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3), rng.standard_normal((5, 4))
    layer.load_state_dict({k: v.detach().numpy() for k, v in t_layer.state_dict().items()})
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        t_bn.running_mean.copy_(torch.tensor(np.linspace(-1, 1, 3), dtype=torch.float32))
        t_bn.running_var.fill_(2.0)
        t_bn.weight.fill_(1.5)
        t_bn.bias.fill_(0.25)
    bn.load_state_dict({k: v.detach().numpy() for k, v in t_bn.state_dict().items()})
    device = ds.tensor(0.0).device  # where the data goes: both modules must be there before fusing
    layer.to(device).eval(), bn.to(device).eval(), t_layer.eval(), t_bn.eval()
    x = x.astype(np.float32)
    if kind == "linear":
        fused, t_fused = ds.nn.utils.fuse_linear_bn_eval(layer, bn), torch.nn.utils.fuse_linear_bn_eval(t_layer, t_bn)
    else:
        transpose = kind == "conv_transpose"
        fused = ds.nn.utils.fuse_conv_bn_eval(layer, bn, transpose=transpose)
        t_fused = torch.nn.utils.fuse_conv_bn_eval(t_layer, t_bn, transpose=transpose)
    np.testing.assert_allclose(
        fused(ds.tensor(x)).detach().numpy(), t_fused(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        fused(ds.tensor(x)).detach().numpy(), bn(layer(ds.tensor(x))).detach().numpy(), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm"])
@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_parametrizations_match_torch(kind: str, layer: str) -> None:
    from downslope.nn.utils import parametrizations, parametrize

    rng = np.random.default_rng(3)
    if layer == "linear":
        ours, theirs, x = ds.nn.Linear(4, 3), torch.nn.Linear(4, 3), rng.standard_normal((5, 4))
    else:
        ours, theirs, x = ds.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3), rng.standard_normal((2, 2, 5, 5))
    x = x.astype(np.float32)
    getattr(parametrizations, kind)(ours)
    getattr(torch.nn.utils.parametrizations, kind)(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for _ in range(3):
        out, tout = ours(ds.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
        (out**2).sum().backward()
        (tout**2).sum().backward()
    for (name, p), (_, t) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-3, atol=1e-4, err_msg=name)
    assert parametrize.is_parametrized(ours, "weight") and not parametrize.is_parametrized(ours, "bias")
    parametrize.remove_parametrizations(ours, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight")
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_functional_call_matches_torch_for_a_maml_inner_step() -> None:
    from downslope.nn.utils.stateless import functional_call

    ours = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.Tanh(), ds.nn.Linear(4, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((6, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)

    def meta_loss(lib, model, functional, X, Y):  # type: ignore[no-untyped-def]
        params = dict(model.named_parameters())
        inner = ((functional(model, params, (X,)) - Y) ** 2).mean()
        grads = lib.autograd.grad(inner, list(params.values()), create_graph=True)
        fast = {k: v - 0.1 * g for (k, v), g in zip(params.items(), grads)}
        return ((functional(model, fast, (X,)) - Y) ** 2).mean()

    got = meta_loss(ds, ours, functional_call, ds.tensor(x), ds.tensor(y))
    want = meta_loss(torch, theirs, torch.func.functional_call, torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    got.backward()
    want.backward()
    for p, t in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert isinstance(ours[0].weight, ds.nn.Parameter)  # the module is unchanged afterwards
    with pytest.warns(UserWarning, match=r"no parameters or buffers \['0.wieght'\]"):  # a typo replaces nothing
        functional_call(ours, {"0.wieght": ds.zeros(4, 3)}, (ds.tensor(x),))


def test_clip_grad_norm_on_a_device_returns_a_device_norm_with_the_cpus_values():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,), (2, 2)]]
    for norm_type in (2.0, math.inf, 1.0):
        on = {}
        for device in ("cpu", "strict"):
            params = [ds.tensor(a, device=device, requires_grad=True) for a in arrays]
            sum((p * p * 3.0).sum() for p in params).backward()
            total = clip_grad_norm_(params, 0.5, norm_type=norm_type)
            assert str(total.device) == device and total.shape == ()
            on[device] = (total.cpu().detach().numpy(), [p.grad.cpu().detach().numpy() for p in params])
        np.testing.assert_allclose(on["strict"][0], on["cpu"][0], rtol=1e-6)
        for got, want in zip(on["strict"][1], on["cpu"][1]):
            np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("norm_type", [0.0, float("-inf"), 0.5, float("inf")])
def test_total_norm_of_every_order_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    values = [[3.0, -0.5], [4.0], [0.0, 0.0]]
    mine = [ds.tensor(v, dtype=ds.float64) for v in values]
    theirs = [torch.tensor(v, dtype=torch.float64) for v in values]
    ref = torch.nn.utils.get_total_norm(theirs, norm_type)
    assert ds.nn.utils.get_total_norm(mine, norm_type).item() == pytest.approx(ref.item(), rel=1e-12)
    for t in mine + theirs:
        t.grad = t.detach().clone()
    ds.nn.utils.clip_grad_norm_(mine, 1.0, norm_type)
    torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a.grad.detach().numpy(), b.grad.detach().numpy(), rtol=1e-12)


def test_torch_module_paths_convert_parameters_and_memory_format() -> None:
    """torch.nn.utils.convert_parameters and .memory_format import as modules with torch's names; the
    weight conversion keeps values and results (downslope has one layout)."""
    import importlib

    for path in ("convert_parameters", "memory_format"):
        ours = importlib.import_module(f"downslope.nn.utils.{path}")
        theirs = importlib.import_module(f"torch.nn.utils.{path}")
        public = {n for n in dir(theirs) if not n.startswith("_") and callable(getattr(theirs, n))}
        public -= {"Iterable", "TypeVar", "annotations", "torch"}
        assert public <= set(dir(ours)), public - set(dir(ours))
    net = ds.nn.Sequential(ds.nn.Conv2d(2, 3, 3), ds.nn.ReLU(), ds.nn.ConvTranspose3d(3, 2, 1))
    before = [p.detach().numpy().copy() for p in net.parameters()]
    assert ds.nn.utils.convert_conv2d_weight_memory_format(net, ds.channels_last) is net
    assert ds.nn.utils.convert_conv3d_weight_memory_format(net, ds.channels_last_3d) is net
    for b, p in zip(before, net.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    with pytest.raises(TypeError, match="expected a memory format"):
        ds.nn.utils.convert_conv2d_weight_memory_format(net, "channels_last")
