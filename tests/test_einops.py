"""einops on downslope tensors: the functions (rearrange, repeat, reduce, pack, unpack, einsum) give
torch's values and gradients through einops' torch backend, whichever of einops and downslope is imported
first, and downslope.nn's Rearrange/Reduce/EinMix train as einops.layers.torch's do."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import downslope as ds

einops = pytest.importorskip("einops")
torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 4, 4)).astype(np.float32)
Y = RNG.normal(size=(2, 6, 3)).astype(np.float32)

# (name, function of the einops module and one or two tensors)
CASES = {
    "rearrange_split_merge": lambda e, x, y: e.rearrange(x, "b (g c) h w -> b g (h w) c", g=2),
    "rearrange_patches": lambda e, x, y: e.rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=2, p2=2),
    "rearrange_ellipsis": lambda e, x, y: e.rearrange(x, "b ... w -> w b ..."),
    "rearrange_list": lambda e, x, y: e.rearrange([x[0], x[1]], "n c h w -> c (n h) w"),
    "repeat_new_axis": lambda e, x, y: e.repeat(y, "b n d -> b r n d", r=3),
    "repeat_tile": lambda e, x, y: e.repeat(y, "b n d -> (b r) n (d k)", r=2, k=2),
    "reduce_mean": lambda e, x, y: e.reduce(x, "b c (h h2) (w w2) -> b c h w", "mean", h2=2, w2=2),
    "reduce_max": lambda e, x, y: e.reduce(x, "b c h w -> b c", "max"),
    "reduce_min": lambda e, x, y: e.reduce(x, "b c h w -> c h", "min"),
    "reduce_sum": lambda e, x, y: e.reduce(x, "b c h w -> b 1 h w", "sum"),
    "reduce_prod": lambda e, x, y: e.reduce(y, "b n d -> b d", "prod"),
    "einsum_two": lambda e, x, y: e.einsum(x, y, "b c h w, b c d -> b h w d"),
    "einsum_one": lambda e, x, y: e.einsum(y, "b n d -> b d"),
}


def _run(lib, fn, *arrays):
    tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(einops, *tensors)
    weights = np.random.default_rng(1).normal(size=tuple(out.shape)).astype(np.float32)
    (out * lib.tensor(weights)).sum().backward()
    return out.detach().numpy(), [None if t.grad is None else t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("name", list(CASES))
def test_functions_give_torchs_values_and_gradients(name):
    ours, our_grads = _run(ds, CASES[name], X, Y)
    theirs, their_grads = _run(torch, CASES[name], X, Y)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert [g is None for g in our_grads] == [g is None for g in their_grads]  # an unused input has none
    for a, b in zip(our_grads, their_grads, strict=True):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_result_is_a_downslope_tensor_in_the_graph():
    x = ds.tensor(X, requires_grad=True)
    y = einops.rearrange(x, "b c h w -> b (c h w)")
    assert isinstance(y, ds.Tensor) and y.requires_grad and y.shape == (2, 96)


def test_pack_and_unpack_give_torchs_values_and_gradients():
    z = RNG.normal(size=(2, 5)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        y, t = lib.tensor(Y, requires_grad=True), lib.tensor(z, requires_grad=True)
        packed, shapes = einops.pack([y, t], "b *")
        first, second = einops.unpack(packed * 2, shapes, "b *")
        (first.sin().sum() + (second**2).sum() + packed.cos().sum()).backward()
        results.append((packed.detach().numpy(), first.detach().numpy(), y.grad.numpy(), t.grad.numpy()))
        assert [tuple(s) for s in shapes] == [(6, 3), (5,)]
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_parse_shape_and_asnumpy():
    x = ds.tensor(X, requires_grad=True)
    assert einops.parse_shape(x, "b c _ w") == {"b": 2, "c": 6, "w": 4}
    np.testing.assert_array_equal(einops.asnumpy(x * 1), X)


def test_integer_tensors_rearrange_and_refuse_mean_as_with_torch():
    a = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(
        einops.rearrange(ds.tensor(a), "a b c -> c (a b)").numpy(),
        einops.rearrange(torch.tensor(a), "a b c -> c (a b)").numpy(),
    )
    for lib in (ds, torch):
        with pytest.raises(NotImplementedError, match="non-floating"):
            einops.reduce(lib.tensor(a), "a b c -> a", "mean")


@pytest.mark.parametrize("einops_first", [True, False])
def test_either_import_order_works_in_a_fresh_interpreter(einops_first):
    imports = ["import einops", "import downslope as ds"]
    code = "\n".join(
        [
            "import sys",
            *(imports if einops_first else imports[::-1]),
            "assert 'einops._backends' in sys.modules",
            "x = ds.ones(2, 3, requires_grad=True)",
            "y = einops.repeat(x, 'a b -> a b r', r=4)",
            "y.sum().backward()",
            "assert y.shape == (2, 3, 4) and x.grad.tolist() == [[4.0] * 3] * 2",
            "print(type(einops._backends.get_backend(x)).__name__)",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "DownslopeBackend"


def test_import_downslope_does_not_import_einops():
    code = "import sys, downslope\nprint('einops' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _model(lib, layers):
    nn = lib.nn
    return nn.Sequential(
        layers.Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=2, p2=2),
        nn.Linear(24, 8),
        layers.EinMix("b n d -> b n e", weight_shape="d e", bias_shape="e", d=8, e=5),
        nn.Tanh(),
        layers.Reduce("b n e -> b e", "max"),
        nn.Linear(5, 3),
    )


def test_layers_in_a_sequential_train_as_einops_layers_torch():
    from einops.layers import torch as torch_layers

    torch.manual_seed(0)
    theirs = _model(torch, torch_layers)
    ours = _model(ds, ds.nn)
    assert [repr(m) for m in ours][::2] == [repr(m) for m in theirs][::2]
    ours.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    target = RNG.integers(0, 3, 2)
    opt, torch_opt = ds.optim.SGD(ours.parameters(), lr=0.5), torch.optim.SGD(theirs.parameters(), lr=0.5)
    for _ in range(2):
        losses = []
        for lib, model, optimizer in ((ds, ours, opt), (torch, theirs, torch_opt)):
            optimizer.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(X)), lib.tensor(target))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for (name, ours_p), (_, theirs_p) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        np.testing.assert_allclose(
            ours_p.detach().numpy(), theirs_p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )


def test_layers_repr_and_copy_as_einops():
    import copy

    layer = ds.nn.Rearrange("b (h p) -> b h p", p=2)
    assert repr(layer) == "Rearrange('b (h p) -> b h p', p=2)"
    twin = copy.deepcopy(layer)
    np.testing.assert_array_equal(twin(ds.tensor(X[0, 0])).numpy(), layer(ds.tensor(X[0, 0])).numpy())
    with pytest.raises(einops.EinopsError):
        ds.nn.Reduce("b c -> b", "median")


def test_without_einops_downslope_imports_and_the_layers_say_what_to_install():
    code = (
        "import sys\n"
        "sys.modules['einops'] = None  # einops not installed\n"
        "import downslope as ds\n"
        "x = ds.ones(2)\n"
        "assert not hasattr(ds.nn, 'Rearrange')\n"
        "try:\n"
        "    ds.nn.Reduce\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "downslope.nn.Reduce is einops' layer and needs einops (pip install einops)"


def test_einops_torch_layer_in_a_downslope_model_names_the_replacement() -> None:
    from einops.layers.torch import Rearrange as TorchRearrange

    with pytest.raises(TypeError, match=r"downslope\.nn\.Rearrange"):
        ds.nn.Sequential(TorchRearrange("b c -> c b"))
    with pytest.raises(TypeError, match="PyTorch module"):
        ds.nn.Sequential(torch.nn.Linear(2, 2))
