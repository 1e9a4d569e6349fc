"""``inplace=True`` on activations and dropout writes into the input, as PyTorch: aliasing that hooks
see, training steps of the architectures that use it, and the errors torch raises."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_ACTIVATIONS = [
    ("ReLU", ()),
    ("LeakyReLU", (0.1,)),
    ("ELU", ()),
    ("CELU", (0.7,)),
    ("SELU", ()),
    ("ReLU6", ()),
    ("Hardtanh", ()),
    ("Hardsigmoid", ()),
    ("Hardswish", ()),
    ("SiLU", ()),
    ("Mish", ()),
    ("Threshold", (0.1, -2.0)),
    ("RReLU", ()),
]

_FUNCTIONS = [
    ("relu", ()),
    ("leaky_relu", (0.1,)),
    ("elu", (0.5,)),
    ("celu", (0.7,)),
    ("selu", ()),
    ("relu6", ()),
    ("hardtanh", (-0.5, 0.5)),
    ("hardsigmoid", ()),
    ("hardswish", ()),
    ("silu", ()),
    ("mish", ()),
    ("threshold", (0.1, -2.0)),
    ("rrelu", (0.1, 0.3, False)),
]


def _data(*shape: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)


@pytest.mark.parametrize(("name", "args"), _ACTIVATIONS)
def test_module_inplace_aliases_and_trains_as_torch(name: str, args: tuple) -> None:
    x0, w0 = _data(4, 5), _data(6, 5, seed=1)

    def run(lib):
        lin = lib.nn.Linear(5, 6)
        lin.load_state_dict({"weight": lib.tensor(w0), "bias": lib.zeros(6)})
        act = getattr(lib.nn, name)(*args, inplace=True).eval()
        kept = {}
        lin.register_forward_hook(lambda m, i, o: kept.__setitem__("h", o))
        out = act(lin(lib.tensor(x0)))
        (out * out).sum().backward()
        return out is kept["h"], kept["h"].detach().numpy().copy(), lin.weight.grad.numpy().copy()

    (t_alias, t_h, t_g), (d_alias, d_h, d_g) = run(torch), run(ds)
    assert d_alias is t_alias is True
    np.testing.assert_allclose(d_h, t_h, rtol=1e-5, atol=1e-6)  # the hooked output shows the activation
    np.testing.assert_allclose(d_g, t_g, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "args"), _FUNCTIONS)
def test_functional_inplace_writes_into_a_plain_input(name: str, args: tuple) -> None:
    x0 = _data(3, 4)
    results = []
    for lib in (torch, ds):
        x = lib.tensor(x0)
        y = getattr(lib.nn.functional, name)(x, *args, inplace=True)
        results.append((y is x, x.numpy().copy(), getattr(x, "_version", None)))
    assert results[1][0] is results[0][0] is True
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("before", "fn"),
    [
        ("exp", "elu"),
        ("sigmoid", "relu"),
        ("tanh", "silu"),
        ("exp", "hardtanh"),
    ],
)
def test_inplace_after_an_op_that_saves_its_output_raises_as_torch(before: str, fn: str) -> None:
    for lib, error in ((torch, RuntimeError), (ds, ds.errors.StateError)):
        a = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = getattr(lib.nn.functional, fn)(getattr(lib, before)(a), inplace=True)
        with pytest.raises(error, match="modified by an inplace operation"):
            y.sum().backward()


def test_inplace_on_a_leaf_that_requires_grad_raises_as_torch() -> None:
    for lib, error in ((torch, RuntimeError), (ds, ds.errors.StateError)):
        with pytest.raises(error, match="leaf Variable that requires grad"):
            lib.nn.functional.relu(lib.ones(2, requires_grad=True), inplace=True)
        with pytest.raises(error, match="leaf Variable that requires grad"):
            lib.nn.functional.elu(lib.ones(2, requires_grad=True), inplace=True)


def _basic_block(lib):
    nn = lib.nn

    class BasicBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(3)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(3)

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(inplace=True), BasicBlock())


def _vgg_like(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d((2, 2)),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.ReLU(inplace=True),
        nn.LayerNorm(8),
        nn.LeakyReLU(0.1, inplace=True),
        nn.Linear(8, 3),
        nn.Hardtanh(-2.0, 2.0, inplace=True),
    )


class _CatAdd:
    """cat and add followed by in-place activations (their rules keep no output)."""

    def __init__(self, lib) -> None:
        self.lib = lib
        self.a = lib.nn.Linear(4, 3)
        self.b = lib.nn.Linear(4, 3)

    def parameters(self):
        return [*self.a.parameters(), *self.b.parameters()]

    def named_parameters(self):
        return [
            *(("a." + n, p) for n, p in self.a.named_parameters()),
            *(("b." + n, p) for n, p in self.b.named_parameters()),
        ]

    def __call__(self, x):
        F = self.lib.nn.functional
        h = F.relu(self.lib.cat([self.a(x), self.b(x)], 1), inplace=True)
        return F.elu(h + self.a(x).repeat(1, 2), inplace=True)


@pytest.mark.parametrize("build", [_basic_block, _vgg_like, _CatAdd], ids=["basic_block", "vgg_like", "cat_add"])
def test_training_steps_with_inplace_activations_match_torch(build) -> None:
    shape = {_basic_block: (2, 2, 5, 5), _vgg_like: (2, 2, 6, 6), _CatAdd: (5, 4)}[build]
    torch.manual_seed(0)
    t_model = build(torch)
    d_model = build(ds)
    t_params = dict(t_model.named_parameters())
    with ds.no_grad():
        for n, p in d_model.named_parameters():
            p.copy_(ds.tensor(t_params[n].detach().numpy()))
    if isinstance(d_model, ds.nn.Module):  # a first call places the model (the strict-device pass moves it then)
        with ds.no_grad():
            d_model.eval()(ds.tensor(_data(*shape)))
        d_model.train()
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.05, momentum=0.9)
    d_opt = ds.optim.SGD(d_model.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):
        x = _data(*shape, seed=10 + step)
        losses = []
        for lib, model, opt in ((torch, t_model, t_opt), (ds, d_model, d_opt)):
            opt.zero_grad()
            loss = (model(lib.tensor(x)) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
        for n, p in d_model.named_parameters():
            np.testing.assert_allclose(p.grad.numpy(), t_params[n].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=n)
            np.testing.assert_allclose(p.detach().numpy(), t_params[n].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_hooked_conv_output_shows_the_inplace_relu_as_torch() -> None:
    x0 = _data(1, 1, 4, 4)
    kept = []
    for lib in (torch, ds):
        nn = lib.nn
        f = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(inplace=True))
        f[0].load_state_dict({"weight": lib.ones(2, 1, 3, 3) * 0.1, "bias": lib.tensor([-0.3, 0.2])})
        store = {}
        f[1].register_forward_hook(lambda m, i, o, store=store: store.__setitem__("act", o.detach()))
        f(lib.tensor(x0)).sum().backward()
        kept.append(store["act"].numpy().copy())
    assert kept[0].min() == 0.0
    np.testing.assert_allclose(kept[1], kept[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "fn", ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
)
def test_dropout_inplace_after_an_activation_matches_the_out_of_place_draw(fn: str) -> None:
    # torch's masks come from another generator: the reference is downslope's out-of-place dropout
    # with the same seed (itself compared with torch's formulas in test_layers/test_functional)
    shape = {"dropout1d": (2, 3, 4), "dropout3d": (2, 3, 2, 2, 2)}.get(fn, (2, 3, 4, 4))
    x0 = _data(*shape)
    outs = []
    for inplace in (False, True):
        w = ds.tensor(x0, requires_grad=True)
        h = ds.nn.functional.silu(w * 1.5, inplace=True)  # silu keeps its input: torch allows this
        ds.manual_seed(3)
        y = getattr(ds.nn.functional, fn)(h, 0.4, True, inplace)
        assert (y is h) is inplace
        (y * y).sum().backward()
        outs.append((y.detach().numpy().copy(), w.grad.numpy().copy()))
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])
    for lib in (torch, ds):  # eval mode: the input itself, untouched
        x = lib.tensor(x0)
        assert getattr(lib.nn.functional, fn)(x, 0.4, False, True) is x


def test_dropout_inplace_after_relu_raises_as_torch() -> None:
    # relu's rule reads its output, which the dropout overwrites: torch refuses it in backward
    for lib, error in ((torch, RuntimeError), (ds, ds.errors.StateError)):
        w = lib.ones(2, 3, requires_grad=True)
        y = lib.nn.functional.dropout(lib.nn.functional.relu(w * 2.0, inplace=True), 0.5, True, True)
        with pytest.raises(error, match="modified by an inplace operation"):
            y.sum().backward()


@pytest.mark.parametrize("first", ["relu", "elu", "leaky_relu", "selu", "celu", "rrelu", "hardtanh", "silu", "mish"])
@pytest.mark.parametrize("first_inplace", [False, True])
@pytest.mark.parametrize("then", ["dropout", "relu", "hardtanh"])
def test_a_second_inplace_write_raises_exactly_where_torch_raises(first: str, first_inplace: bool, then: str) -> None:
    # torch's in-place relu/elu/leaky_relu/selu/celu/rrelu save their result (a later write is refused);
    # the others save their input; out of place, relu and elu keep their output too
    outcomes = []
    for lib in (torch, ds):
        F = lib.nn.functional
        w = lib.tensor(_data(2, 3, 4), requires_grad=True)
        h = getattr(F, first)(w * 1.5, inplace=first_inplace)
        y = F.dropout(h, 0.4, True, True) if then == "dropout" else getattr(F, then)(h, inplace=True)
        try:
            y.sum().backward()
            outcomes.append("ok")
        except (RuntimeError, ds.errors.StateError) as e:
            assert "modified by an inplace operation" in str(e)
            outcomes.append("raised")
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize(
    "name, shape",
    [("Dropout", (2, 3, 4)), ("Dropout1d", (2, 3, 4)), ("Dropout2d", (2, 3, 4, 5)), ("Dropout3d", (2, 3, 4, 5, 2)),
     ("AlphaDropout", (2, 3)), ("FeatureAlphaDropout", (2, 3, 4, 5))],
)  # fmt: skip
def test_dropout_modules_write_in_place_where_torchs_do(name, shape):
    torch_module = getattr(torch.nn, name)(0.5, inplace=True)
    ty = torch.randn(*shape, requires_grad=True) * 1
    torch_writes = torch_module(ty) is ty  # torch's alpha dropout modules ignore inplace
    y = ds.randn(*shape, requires_grad=True) * 1
    before = y.detach().clone()
    out = getattr(ds.nn, name)(0.5, inplace=True)(y)
    assert (out is y) == torch_writes
    assert ds.equal(y, before) != torch_writes
