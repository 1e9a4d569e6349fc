"""Module, Parameter and the containers: registration, traversal, modes, state dicts, repr."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope import nn
from downslope.devices import to_host


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(3, 2)
        self.register_buffer("steps", ds.zeros(1))

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def test_parameter_is_a_float32_tensor_that_requires_grad() -> None:
    p = nn.Parameter(np.arange(3))  # integers become floats: only floats have gradients
    assert isinstance(p, ds.Tensor)
    assert p.requires_grad and p.dtype == np.float32 and p.is_leaf
    assert nn.Parameter(np.zeros(2)).dtype == np.float32  # NumPy's float64 does not creep in
    assert nn.Parameter(ds.zeros(2, dtype="float64")).dtype == np.float64  # explicit float64 kept
    frozen = nn.Parameter(ds.zeros(2), requires_grad=False)
    assert not frozen.requires_grad


def test_parameter_shares_the_tensor_it_wraps() -> None:
    t = ds.zeros(3)
    p = nn.Parameter(t)
    p.array[0] = 5.0
    assert to_host(t.array)[0] == 5.0


def test_attribute_assignment_registers_parameters_buffers_and_children() -> None:
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert [n for n, _ in m.named_buffers()] == ["steps"]
    assert len(list(m.buffers())) == 1
    assert m.num_parameters() == 4 * 3 + 3 + 3 * 2 + 2
    assert len(list(m.parameters(recurse=False))) == 0


def test_plain_list_of_modules_stays_plain_as_in_torch_with_a_warning() -> None:
    # As in PyTorch, a plain list is not registered (code keeps teachers or EMA copies out of
    # training that way, and PyTorch checkpoints must load strictly); a warning names the wrapper.
    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [nn.Linear(2, 2), nn.Linear(2, 2)]

    m = Stack()  # the warning waits for parameters() or state_dict(): add_module may still register them
    assert type(m.layers) is list
    with pytest.warns(UserWarning, match=r"Stack.layers is a plain list of layers.*nn.ModuleList"):
        assert list(m.named_parameters()) == []
    torch = pytest.importorskip("torch")

    class TorchStack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]

    assert list(TorchStack().named_parameters()) == []


def test_plain_dict_of_modules_stays_plain_and_other_dicts_are_quiet() -> None:
    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = {"cls": nn.Linear(2, 3), "reg": nn.Linear(2, 1)}

    m = Heads()
    with pytest.warns(UserWarning, match="nn.ModuleDict"):
        assert type(m.heads) is dict and m.num_parameters() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.config = {"width": 3, "act": nn.ReLU()}  # a config that is not all layers: no warning
        m.sizes = [1, 2]
    assert type(m.config) is dict and "config" not in dict(m.named_children())


def test_assigning_the_modules_registry_replaces_it_as_in_torch() -> None:
    # learn2learn's clone_module: a shallow copy of __dict__ with a copied _modules registry
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    clone = net.__new__(type(net))
    clone.__dict__ = net.__dict__.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone._modules = clone._modules.copy()
        clone._parameters = clone._parameters.copy()
    clone._modules["0"] = nn.Linear(1, 2)
    assert list(net._modules) == ["0", "1", "2"] and clone._modules["0"] is not net._modules["0"]
    assert net(ds.ones(1, 1)).shape == (1, 1) and clone(ds.ones(1, 1)).shape == (1, 1)


def test_shared_parameters_are_listed_once() -> None:
    shared = nn.Linear(2, 2)
    m = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(m.parameters())) == 2
    assert m.num_parameters() == 6


def test_assigning_a_tensor_over_a_parameter_is_refused() -> None:
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign .torch.FloatTensor. as parameter .weight."):
        layer.weight = ds.zeros(2, 2)  # type: ignore[assignment]
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_assignment_before_super_init_gives_a_clear_error() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(ds.zeros(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_delattr_unregisters() -> None:
    m = TwoLayer()
    del m.fc2
    assert "fc2" not in dict(m.named_children())
    assert not any(n.startswith("fc2") for n, _ in m.named_parameters())


def test_train_eval_propagate_to_every_descendant() -> None:
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert m.eval() is m
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_zero_grad_set_to_none_and_in_place() -> None:
    m = TwoLayer()
    m(ds.randn(5, 4)).sum().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None for g in grads)
    m.zero_grad(set_to_none=False)
    for p, g in zip(m.parameters(), grads):
        assert p.grad is g and not p.grad.detach().numpy().any()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_gradients_accumulate_until_zero_grad() -> None:
    m = nn.Linear(3, 1)
    x = ds.randn(4, 3)
    m(x).sum().backward()
    first = m.weight.grad.detach().numpy().copy()  # type: ignore[union-attr]
    m(x).sum().backward()
    np.testing.assert_allclose(m.weight.grad.detach().numpy(), 2 * first, rtol=1e-6)  # type: ignore[union-attr]
    m.zero_grad()
    m(x).sum().backward()
    np.testing.assert_allclose(m.weight.grad.detach().numpy(), first, rtol=1e-6)  # type: ignore[union-attr]


def test_state_dict_has_parameters_and_persistent_buffers_as_detached_tensors_sharing_memory() -> None:
    m = TwoLayer()
    m.register_buffer("scratch", ds.zeros(2), persistent=False)
    sd = m.state_dict()
    assert list(sd) == ["steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(isinstance(v, ds.Tensor) and not v.requires_grad for v in sd.values())  # as torch's state_dict
    sd["fc1.weight"].copy_(ds.full((3, 4), 7.0))  # PyTorch code writes through a state_dict (EMA, surgery)
    assert (m.fc1.weight.detach().numpy() == 7.0).all()
    opt = ds.optim.SGD(m.parameters(), lr=0.5)
    sd = m.state_dict()  # taken after the optimizer is built (see the next test for before)
    snapshot = {k: v.clone() for k, v in m.state_dict().items()}  # the idiom for a snapshot works
    m(ds.randn(5, 4)).sum().backward()
    opt.step()
    assert np.array_equal(
        sd["fc2.bias"].detach().numpy(), m.fc2.bias.detach().numpy()
    )  # the shared tensor follows training
    assert not np.array_equal(snapshot["fc2.bias"].detach().numpy(), m.fc2.bias.detach().numpy())  # the clone does not
    assert m.state_dict(keep_vars=True)["fc1.weight"] is m.fc1.weight


@pytest.mark.host_only  # the strict plugin moves the model at its first call, after the aliases were taken
def test_aliases_taken_before_the_optimizer_is_built_follow_training_as_in_torch() -> None:
    # The first optimizer over a module moves its parameters into one flat buffer (one update for
    # all); a state_dict, .data, detach() or view taken before must move along, as they share the
    # parameter's storage in PyTorch.
    torch = pytest.importorskip("torch")
    results = []
    for lib in (ds, torch):
        lib.manual_seed(0)
        m = lib.nn.Linear(3, 2)
        sd, data, detached, view = m.state_dict(), m.weight.data, m.weight.detach(), m.bias.view(2, 1)
        row = m.weight[1]
        opt = lib.optim.SGD(m.parameters(), lr=0.5)
        m(lib.ones(5, 3)).sum().backward()
        opt.step()
        results.append(
            [
                bool((sd["weight"] == m.weight.detach()).all()),
                bool((data == m.weight.detach()).all()),
                bool((detached == m.weight.detach()).all()),
                bool((view.reshape(2) == m.bias.detach()).all()),
                bool((row.detach() == m.weight.detach()[1]).all()),
            ]
        )
        data[0, 0] = 42.0  # and a write through the old alias reaches the parameter
        assert float(m.weight.detach()[0, 0]) == 42.0
    assert results[0] == results[1] == [True] * 5


def test_load_state_dict_round_trip_gives_identical_outputs() -> None:
    a, b = TwoLayer(), TwoLayer()
    a.steps.array[0] = 3.0
    x = ds.randn(6, 4)
    assert not np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert to_host(b.steps.array)[0] == 3.0


def test_load_state_dict_keeps_the_same_parameter_objects() -> None:
    m = nn.Linear(2, 2)
    w = m.weight
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert m.weight is w and w.dtype == np.float32 and (w.detach().numpy() == 1).all()


def test_load_state_dict_names_missing_and_unexpected_keys() -> None:
    m = TwoLayer()
    sd = m.state_dict()
    del sd["fc1.bias"]
    sd["fc3.weight"] = np.zeros(1)
    with pytest.raises(
        KeyError, match=r'Missing key\(s\) in state_dict: "fc1.bias"\. Unexpected key\(s\) in state_dict: "fc3.weight"'
    ):
        m.load_state_dict(sd)
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["fc1.bias"] and result.unexpected_keys == ["fc3.weight"]


def test_load_state_dict_shape_mismatch_names_key_and_both_shapes_and_changes_nothing() -> None:
    m = TwoLayer()
    before = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    sd = m.state_dict()
    sd["fc1.bias"] = np.ones(3)
    sd["fc2.weight"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"'fc2.weight'.*\(3, 2\).*\(2, 3\)"):
        m.load_state_dict(sd)
    np.testing.assert_array_equal(m.fc1.bias.detach().numpy(), before["fc1.bias"])


def test_load_state_dict_accepts_pytorch_state_dicts() -> None:
    torch = pytest.importorskip("torch")
    ref = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    ours = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        ours(ds.tensor(x)).detach().numpy(), ref(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_repr_has_torchs_layout() -> None:
    text = repr(TwoLayer())
    assert text.splitlines() == [
        "TwoLayer(",
        "  (fc1): Linear(in_features=4, out_features=3, bias=True)",
        "  (act): ReLU()",
        "  (fc2): Linear(in_features=3, out_features=2, bias=True)",
        ")",
    ]


def test_apply_visits_every_module_children_first() -> None:
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    seen: list[str] = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Linear", "Sequential", "Sequential"]

    def zero_linear(mod: nn.Module) -> None:
        if isinstance(mod, nn.Linear):
            nn.init.zeros_(mod.weight)

    m.apply(zero_linear)
    assert all(not mod.weight.detach().numpy().any() for mod in m.modules() if isinstance(mod, nn.Linear))


def test_requires_grad_freezes_parameters() -> None:
    m = TwoLayer()
    m.fc1.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 8
    m(ds.randn(2, 4)).sum().backward()
    assert m.fc1.weight.grad is None and m.fc2.weight.grad is not None


def test_to_double_casts_parameters_and_buffers_in_place() -> None:
    m = TwoLayer()
    w = m.fc1.weight
    m.double()
    assert m.fc1.weight is w and w.dtype == np.float64 and m.steps.dtype == np.float64
    assert m(ds.randn(2, 4, dtype="float64")).dtype == np.float64
    ds.gradcheck(lambda x: m(x), [ds.randn(3, 4)])


def test_sequential_indexing_slicing_len_and_iteration() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert len(model) == 3
    assert isinstance(model[-1], nn.Linear) and model[-1].out_features == 2
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(IndexError, match="out of range for 3 layers"):
        model[3]
    x = ds.randn(3, 4)
    np.testing.assert_allclose(model(x).detach().numpy(), model[2](model[1](model[0](x))).detach().numpy())
    model.append(nn.Tanh())
    assert len(model) == 4


def test_sequential_from_ordered_dict_uses_names() -> None:
    from collections import OrderedDict

    model = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("out", nn.Linear(3, 1))]))
    assert list(model.state_dict()) == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]


def test_containers_refuse_non_modules() -> None:
    with pytest.raises(TypeError, match="expected Module objects, got function"):
        nn.Sequential(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got int"):
        nn.ModuleList([1])  # type: ignore[list-item]


def test_module_list_and_dict() -> None:
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    layers.append(nn.Linear(2, 1))
    layers.insert(0, nn.ReLU())
    assert [type(m).__name__ for m in layers] == ["ReLU", "Linear", "Linear", "Linear"]
    assert layers[-1].out_features == 1
    assert len(list(layers.parameters())) == 6
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 3)
    assert "b" in heads and len(heads) == 2 and list(heads) == ["a", "b"]
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    with pytest.raises(KeyError, match="keys are"):
        heads["c"]
    del heads["a"]
    assert list(heads.keys()) == ["b"]


def test_identity_and_flatten() -> None:
    x = ds.randn(2, 3, 4, 5, requires_grad=True)
    assert nn.Identity(7, foo=1)(x) is x
    y = nn.Flatten()(x)
    assert y.shape == (2, 60)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=1\): input of shape \(3,\)"):
        nn.Flatten()(ds.zeros(3))


def test_get_submodule() -> None:
    m = nn.Sequential(nn.Sequential(nn.Linear(1, 1)))
    assert isinstance(m.get_submodule("0.0"), nn.Linear)
    with pytest.raises(AttributeError, match="no submodule '1'"):
        m.get_submodule("0.1")


def test_deepcopy_gives_an_independent_model() -> None:
    """copy.deepcopy is how callbacks keep best weights; the copy must not share arrays or graph."""
    import copy

    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    m(ds.randn(4, 3)).sum().backward()
    c = copy.deepcopy(m)
    assert isinstance(c[0].weight, nn.Parameter) and c[0].weight.requires_grad
    np.testing.assert_array_equal(c[0].weight.detach().numpy(), m[0].weight.detach().numpy())
    c[0].weight.array[...] = 0
    c[1].running_mean.array[...] = 5  # type: ignore[union-attr]
    assert m[0].weight.detach().numpy().any() and not (m[1].running_mean.detach().numpy() == 5).any()  # type: ignore[union-attr]
    assert [n for n, _ in c.named_parameters()] == [n for n, _ in m.named_parameters()]
    c(ds.randn(4, 3)).sum().backward()  # the copy trains on its own


def test_module_without_forward_says_so() -> None:
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        nn.Module()(1)


def test_state_dict_round_trips_through_the_checkpoint_format(tmp_path: Any) -> None:
    """model -> state_dict -> save (arrays + JSON, no pickle) -> load -> load_state_dict -> same outputs."""
    serialization = pytest.importorskip("downslope.serialization")
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model(ds.randn(16, 4))  # a training step moves the running statistics away from their defaults
    model.eval()
    path = tmp_path / "model.ckpt"
    serialization.save(model.state_dict(), path)
    ds.manual_seed(1)
    restored = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)).eval()
    loaded = serialization.load(path)
    assert list(loaded) == list(model.state_dict())
    restored.load_state_dict(loaded)
    x = ds.randn(5, 4)
    np.testing.assert_array_equal(restored(x).detach().numpy(), model(x).detach().numpy())
    assert int(restored[1].num_batches_tracked.item()) == 1  # type: ignore[union-attr]


def test_every_layer_state_round_trips_through_the_checkpoint_format(tmp_path: Any) -> None:
    """Every layer with parameters or buffers: the same keys, dtypes and values come back from disk."""
    serialization = pytest.importorskip("downslope.serialization")
    ds.manual_seed(0)
    layers = {
        "linear": nn.Linear(3, 4),
        "conv1d": nn.Conv1d(2, 4, 3, groups=2),
        "conv2d": nn.Conv2d(2, 3, 3, bias=False),
        "bn1d": nn.BatchNorm1d(4),
        "bn2d": nn.BatchNorm2d(3, momentum=None),
        "ln": nn.LayerNorm((2, 3)),
        "emb": nn.Embedding(7, 3, padding_idx=0),
        "rnn": nn.RNN(3, 4, num_layers=2),
        "lstm": nn.LSTM(3, 4, batch_first=True, bidirectional=True),
        "gru": nn.GRU(3, 4, num_layers=2, batch_first=True),
    }
    model = nn.ModuleDict(layers)
    model["bn1d"](ds.randn(8, 4))  # move the running statistics and the int64 step counters
    model["bn2d"](ds.randn(2, 3, 4, 4))
    saved = model.state_dict()
    path = tmp_path / "layers.ds"
    serialization.save(saved, path)
    ds.manual_seed(1)
    restored = nn.ModuleDict({name: copy.deepcopy(layer) for name, layer in layers.items()})
    for t in [*restored.parameters(), *restored.buffers()]:
        t.array[...] = 0  # nothing of the original survives except through the file
    restored.load_state_dict(serialization.load(path))
    back = restored.state_dict()
    assert list(back) == list(saved)
    for key, value in saved.items():
        assert back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(to_host(back[key]), to_host(value), err_msg=key)
    assert back["bn1d.num_batches_tracked"].dtype == np.int64
    x = ds.randn(2, 5, 3)
    restored.eval()
    model.eval()
    for name in ("lstm", "gru"):
        np.testing.assert_array_equal(restored[name](x)[0].detach().numpy(), model[name](x)[0].detach().numpy())


def test_parameter_list_and_dict_register_their_parameters() -> None:
    class Steps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scales = nn.ParameterList([ds.ones(2), nn.Parameter(ds.zeros(2))])
            self.extra = nn.ParameterDict({"shift": np.zeros(2)})

    m = Steps()
    assert [n for n, _ in m.named_parameters()] == ["scales.0", "scales.1", "extra.shift"]
    assert all(isinstance(p, nn.Parameter) and p.dtype == np.float32 for p in m.parameters())
    m.scales.append(ds.ones(1))
    assert len(m.scales) == 3 and m.scales[-1].shape == (1,)
    assert "shift" in m.extra and list(m.extra.keys()) == ["shift"]
    with pytest.raises(IndexError, match="out of range for 3 parameters"):
        m.scales[3]
    with pytest.raises(KeyError, match="keys are \\['shift'\\]"):
        m.extra["scale"]


@settings(max_examples=25, deadline=None)
@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=5), seed=st.integers(0, 1000))
def test_state_dict_round_trip_property(widths: list[int], seed: int) -> None:
    """Any MLP: a fresh model loaded from another's state_dict computes the same function."""

    def build() -> nn.Sequential:
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LayerNorm(b), nn.Tanh()]
        return nn.Sequential(*layers)

    ds.manual_seed(seed)
    a = build()
    ds.manual_seed(seed + 1)
    b = build()
    b.load_state_dict(a.state_dict())
    x = ds.randn(3, widths[0])
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert b.num_parameters() == sum(w1 * w2 + w2 + 2 * w2 for w1, w2 in zip(widths, widths[1:]))


def test_to_takes_pytorchs_device_and_dtype_signatures() -> None:
    from downslope.device import device
    from downslope.errors import StateError

    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    weight = m[0].weight
    assert m.to("cpu") is m and m.to(device("cpu")) is m and m.cpu() is m
    assert m.to("cpu", ds.float64)[0].weight.dtype == np.float64
    assert m.to(dtype=ds.float32, device="cpu", non_blocking=True)[1].running_mean.dtype == np.float32
    assert m.to(ds.zeros(1, dtype=ds.float64))[1].weight.dtype == np.float64
    assert m.type(ds.float32)[0].weight.dtype == np.float32 and m.half()[0].weight.dtype == np.float16
    assert m.float()[0].weight is weight  # cast in place: an optimizer built earlier still holds it
    for move in (lambda: m.cuda(), lambda: m.to("cuda"), lambda: m.to(device("mps")), lambda: m.to(0)):
        if ds.cuda.is_available() and move is not None:
            break
        with pytest.raises(StateError, match="is not available"):
            move()
    with pytest.raises(TypeError, match="expected a floating dtype, got int64"):
        m.to(ds.int64)
    with pytest.raises(TypeError, match=r"keywords \['devic'\]"):
        m.to(devic="cpu")


def test_forward_hooks_run_in_torchs_order_and_can_replace_values() -> None:
    torch = pytest.importorskip("torch")
    calls: dict[str, list[str]] = {"ours": [], "theirs": []}

    def attach(layer: Any, log: list[str]) -> list[Any]:
        return [
            layer.register_forward_pre_hook(lambda m, args: log.append("pre") or (args[0] * 2,)),
            layer.register_forward_hook(lambda m, args, out: log.append("post") or out + 1),
            layer.register_forward_hook(lambda m, args, out: log.append("first"), prepend=True),
        ]

    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    handles = attach(ours, calls["ours"]), attach(theirs, calls["theirs"])
    x = np.array([[1.0, -2.0]], np.float32)
    np.testing.assert_allclose(ours(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    assert calls["ours"] == calls["theirs"] == ["pre", "first", "post"]
    for h in handles[0]:
        h.remove()
    with ours.register_forward_hook(lambda m, args, out: calls["ours"].append("ctx")):
        ours(ds.tensor(x))
    ours(ds.tensor(x))
    assert calls["ours"][3:] == ["ctx"]
    np.testing.assert_allclose(
        ours(ds.tensor(x)).detach().numpy(), x @ ours.weight.detach().numpy().T + ours.bias.detach().numpy(), rtol=1e-6
    )


def test_get_parameter_buffer_and_set_submodule() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert model.get_parameter("0.weight") is model[0].weight
    assert model.get_buffer("1.running_mean") is model[1].running_mean
    head = nn.Linear(3, 5)
    model.set_submodule("0", head)
    assert model[0] is head
    with pytest.raises(AttributeError, match="no parameter '0.nothing'"):
        model.get_parameter("0.nothing")


@pytest.mark.parametrize(
    ("make", "name"),
    [(lambda **kw: nn.Linear(2, 3, **kw), "weight"), (lambda **kw: nn.Conv2d(1, 2, 3, **kw), "weight"),
     (lambda **kw: nn.LSTM(2, 3, **kw), "weight_ih_l0"), (lambda **kw: nn.BatchNorm1d(3, **kw), "running_mean"),
     (lambda **kw: nn.LayerNorm(3, **kw), "weight"), (lambda **kw: nn.Embedding(4, 2, **kw), "weight"),
     (lambda **kw: nn.GRU(2, 3, **kw), "weight_hh_l0"), (lambda **kw: nn.ConvTranspose2d(1, 2, 3, **kw), "weight")],
)  # fmt: skip
def test_layers_take_torchs_device_and_dtype_keywords(make: Any, name: str) -> None:
    from downslope.errors import StateError

    assert getattr(make(device="cpu"), name).dtype == np.float32
    assert getattr(make(device=None, dtype=ds.float64), name).dtype == np.float64
    with pytest.raises(StateError, match="'cuda' is not available"):
        make(device="cuda")


def test_user_modules_keep_their_own_signature() -> None:
    class Net(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.fc = nn.Linear(2, width)

    with pytest.raises(TypeError, match="device"):
        Net(3, device="cpu")  # type: ignore[call-arg]


def test_module_methods_take_torchs_keywords() -> None:
    torch = pytest.importorskip("torch")
    shared = nn.Linear(2, 2)
    ours = nn.Sequential(shared, nn.ReLU(), shared)
    t_shared = torch.nn.Linear(2, 2)
    theirs = torch.nn.Sequential(t_shared, torch.nn.ReLU(), t_shared)
    for method in ("named_parameters", "named_modules"):
        for flag in (True, False):
            got = [n for n, _ in getattr(ours, method)(remove_duplicate=flag)]
            assert got == [n for n, _ in getattr(theirs, method)(remove_duplicate=flag)], (method, flag)
    kept = ours.state_dict(keep_vars=True)
    assert kept["0.weight"] is shared.weight and list(kept) == list(theirs.state_dict())
    target: dict = {}
    assert ours.state_dict(destination=target, prefix="model.") is target and "model.0.bias" in target
    assert ours.load_state_dict(ours.state_dict(), strict=True, assign=False).missing_keys == []


def test_buffer_assignment_registers_a_buffer_like_torch() -> None:
    torch = pytest.importorskip("torch")

    class Ours(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps = nn.Buffer(ds.zeros(()))
            self.scratch = nn.Buffer(ds.ones(2), persistent=False)

    class Theirs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps = torch.nn.Buffer(torch.zeros(()))
            self.scratch = torch.nn.Buffer(torch.ones(2), persistent=False)

    ours, theirs = Ours(), Theirs()
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["steps"]
    assert not ours.steps.requires_grad and list(ours.parameters()) == []


def test_backward_hooks_see_and_replace_gradients_like_torch() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Linear(2, 3)
    ours = nn.Linear(2, 3)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    logs: dict[str, list] = {"ours": [], "theirs": []}

    def install(layer: Any, log: list) -> None:
        layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 2,))

        def hook(m: Any, gi: tuple, go: tuple) -> Any:
            log.append((None if gi[0] is None else gi[0].detach().numpy().copy(), go[0].detach().numpy().copy()))
            return None if gi[0] is None else (gi[0] * 3,)

        layer.register_full_backward_hook(hook)

    install(ours, logs["ours"])
    install(theirs, logs["theirs"])
    x = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    dx, tx = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours(dx) ** 2).sum().backward()
    (theirs(tx) ** 2).sum().backward()
    np.testing.assert_allclose(
        dx.grad.detach().numpy(), tx.grad.detach().numpy(), rtol=1e-5
    )  # scaled by 2 (pre hook) and 3 (hook)
    np.testing.assert_allclose(ours.weight.grad.detach().numpy(), theirs.weight.grad.detach().numpy(), rtol=1e-5)
    ours(ds.tensor(x)).sum().backward()  # an input without gradient: the hook still runs, with None
    theirs(torch.tensor(x)).sum().backward()
    assert len(logs["ours"]) == len(logs["theirs"]) == 2 and logs["ours"][1][0] is None and logs["theirs"][1][0] is None
    for (gi, go), (tgi, tgo) in zip(logs["ours"], logs["theirs"]):
        np.testing.assert_allclose(go, tgo, rtol=1e-5)
        if gi is not None:
            np.testing.assert_allclose(gi, tgi, rtol=1e-5)


@pytest.mark.parametrize(
    "make",
    [lambda **kw: nn.Linear(3, 2, **kw), lambda **kw: nn.BatchNorm1d(3, **kw), lambda **kw: nn.LayerNorm(3, **kw),
     lambda **kw: nn.Embedding(4, 2, **kw), lambda **kw: nn.MultiheadAttention(4, 2, **kw)],
)  # fmt: skip
def test_layers_made_on_a_device_start_from_the_cpus_values(make: Any) -> None:
    from downslope.devices import device_of, to_host

    ds.manual_seed(0)
    cpu = make()
    ds.manual_seed(0)
    dev = make(device="strict")
    assert list(dev.state_dict()) == list(cpu.state_dict())
    for key, value in dev.state_dict().items():
        assert str(device_of(value.array)) == "strict", key
        np.testing.assert_array_equal(to_host(value.array), cpu.state_dict()[key].detach().numpy(), err_msg=key)


def test_load_state_dict_writes_onto_the_models_device_in_place() -> None:
    from downslope.devices import device_of, to_host

    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))

    source = make().to("cpu")
    source[1].running_mean.array[...] = [0.5, -1.0]
    moved = make().to("strict")
    weight = moved[0].weight
    moved.load_state_dict(source.state_dict())
    assert moved[0].weight is weight  # the same Parameter: an optimizer holding it sees the values
    for key, value in moved.state_dict().items():
        assert str(device_of(value.array)) == "strict", key
        np.testing.assert_array_equal(to_host(value.array), source.state_dict()[key].detach().numpy(), err_msg=key)
    back = make().to("cpu")
    back.load_state_dict(moved.state_dict())  # device arrays load into a model on the host
    for key, value in back.state_dict().items():
        assert type(value.array) is np.ndarray
        np.testing.assert_array_equal(value.detach().numpy(), source.state_dict()[key].detach().numpy(), err_msg=key)


def test_module_list_and_dict_deletion_pop_and_concatenation_as_in_torch():
    torch = pytest.importorskip("torch")
    ds.manual_seed(0)
    ours = nn.ModuleList([nn.Linear(1, i + 1) for i in range(4)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(1, i + 1) for i in range(4)])
    for ml in (ours, theirs):
        del ml[1]
        popped = ml.pop(0)
        ml += [type(popped)(1, 9)]
    assert [m.out_features for m in ours] == [m.out_features for m in theirs] == [3, 4, 9]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()] == ["0", "1", "2"]
    assert len(list(ours.parameters())) == 6 and len(ours + nn.ModuleList([nn.ReLU()])) == 4
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert isinstance(md.pop("a"), nn.Linear) and list(md.keys()) == ["b"] and not list(md.parameters())
    md.clear()
    assert len(md) == 0


def test_sequential_edits_like_a_list_as_in_torch() -> None:
    import torch

    def layers(lib: Any) -> list[Any]:
        return [lib.nn.Linear(2, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1)]

    ours, theirs = nn.Sequential(*layers(ds)), torch.nn.Sequential(*layers(torch))
    for seq, lib in ((ours, ds), (theirs, torch)):
        seq.insert(1, lib.nn.Tanh())
        seq.append(lib.nn.Sigmoid())
        seq.extend([lib.nn.Identity()])
        seq[0] = lib.nn.Linear(2, 3, bias=False)
        del seq[2]
        assert type(seq.pop(-1)).__name__ == "Identity"
        seq += lib.nn.Sequential(lib.nn.Flatten())
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["0.weight", "2.weight", "2.bias"]
    assert [type(m).__name__ for m in ours + nn.Sequential(nn.ReLU())][-1] == "ReLU"
    with pytest.raises(IndexError):
        ours[10] = nn.ReLU()


def test_parameter_dict_has_the_dict_methods_of_torch() -> None:
    import torch

    ours = nn.ParameterDict({"a": nn.Parameter(ds.ones(1)), "b": nn.Parameter(ds.zeros(2))})
    theirs = torch.nn.ParameterDict({"a": torch.nn.Parameter(torch.ones(1)), "b": torch.nn.Parameter(torch.zeros(2))})
    for pd, lib in ((ours, ds), (theirs, torch)):
        pd.update({"c": lib.nn.Parameter(lib.ones(3))})
        pd.setdefault("d", lib.nn.Parameter(lib.ones(4)))
        assert pd.get("zz") is None and tuple(pd.get("a").shape) == (1,)
        assert pd.pop("b").shape[0] == 2 and pd.popitem()[0] == "d"
        copied = pd.copy()
        assert copied["a"] is pd["a"]
        del pd["a"]
        assert list(reversed(pd)) == ["c"]
        merged = pd | copied
        assert list(merged.keys()) == ["c", "a"]
        pd.clear()
        assert len(pd) == 0 and list(copied.keys()) == ["a", "c"]
    assert list(ours.fromkeys(["x", "y"], nn.Parameter(ds.ones(1))).keys()) == ["x", "y"]
    with pytest.raises(KeyError, match="keys are"):
        ours.pop("missing")


def test_learn2learn_clone_module_and_update_through_the_registries_match_torch() -> None:
    torch = pytest.importorskip("torch")

    def clone_module(module: Any) -> Any:  # learn2learn's recipe, abridged
        clone = module.__new__(type(module))
        clone.__dict__ = module.__dict__.copy()
        clone._parameters = clone._parameters.copy()
        clone._buffers = clone._buffers.copy()
        clone._modules = clone._modules.copy()
        for k, p in module._parameters.items():
            if p is not None:
                clone._parameters[k] = p.clone()
        for k, m in module._modules.items():
            clone._modules[k] = clone_module(m)
        return clone

    def update_module(module: Any, lr: float) -> None:
        for k, p in list(module._parameters.items()):
            if p is not None and p.grad is not None:
                module._parameters[k] = p - lr * p.grad
        for m in module._modules.values():
            update_module(m, lr)

    results = []
    for lib in (ds, torch):
        net = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Tanh(), lib.nn.Linear(3, 1))
        with lib.no_grad():
            for i, p in enumerate(net.parameters()):
                p.copy_(lib.tensor(np.linspace(-1, 1, p.numel()).reshape(tuple(p.shape)) * (i + 1), dtype=lib.float32))
        x = lib.tensor([[0.5, -1.0], [1.5, 2.0]])
        learner = clone_module(net)
        inner = learner(x).pow(2).mean()
        grads = lib.autograd.grad(inner, list(learner.parameters()), create_graph=True)
        for p, g in zip(learner.parameters(), grads):
            p.grad = g
        update_module(learner, 0.1)
        outer = learner(x).pow(2).mean()
        outer.backward()
        results.append((outer.item(), [p.grad.detach().numpy().copy() for p in net.parameters()]))
        assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    (ours, our_grads), (theirs, their_grads) = results
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    for o, t in zip(our_grads, their_grads):
        np.testing.assert_allclose(o, t, rtol=1e-4, atol=1e-6)


def test_a_list_of_layers_registered_already_gives_no_warning() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = nn.Linear(2, 2), nn.Linear(2, 2)
            self.order = [self.l1, self.l2]  # other names for registered layers: nothing is hidden

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = Twice()
    assert len(list(m.parameters())) == 4


class _SurgeryNet(nn.Module):  # at module level: the test pickles it
    def __init__(self, lib: Any = ds) -> None:
        super().__init__()
        self.fc = lib.nn.Linear(2, 2)
        self.act = lib.nn.ReLU()

    def forward(self, x: Any) -> Any:
        return self.act(self.fc(x)) * getattr(self, "scale", 1.0)


def test_writes_into_the_registries_reach_the_attributes_as_in_torch() -> None:
    # Model surgery by registry (model._modules["fc"] = ..., weight-drop's _parameters[name] = ...):
    # PyTorch's attribute lookup goes through these dicts, so forward sees the new entries.
    import copy
    import pickle

    import torch

    def surgery(lib, m):
        m._modules["act"] = lib.nn.Identity()
        m._modules["fc"] = lib.nn.Linear(2, 3)
        m.fc._parameters["weight"] = lib.nn.Parameter(lib.ones(3, 2))
        m.fc._parameters.pop("bias")
        m.fc._parameters.setdefault("bias", lib.nn.Parameter(-lib.ones(3)))
        m._buffers.update(scale=lib.full((1,), 2.0))
        return m

    def build(lib):
        if lib is ds:
            return _SurgeryNet()

        class TorchNet(torch.nn.Module):
            forward = _SurgeryNet.forward

        net = TorchNet.__new__(TorchNet)
        torch.nn.Module.__init__(net)
        net.fc, net.act = torch.nn.Linear(2, 2), torch.nn.ReLU()
        return net

    x = np.array([[1.0, -3.0]], dtype=np.float32)
    want = surgery(torch, build(torch))(torch.tensor(x)).detach().numpy()  # [[-6, -6, -6]]: Identity, not ReLU
    ours = surgery(ds, build(ds))
    np.testing.assert_allclose(ours(ds.tensor(x)).detach().numpy(), want)
    # (a shallow copy.copy shares the registries with the original, as torch's: tests/nn/module/test_base.py)
    for copied in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        copied._modules["act"] = nn.ReLU()  # the copy's own registry: the original keeps its Identity
        assert (copied(ds.tensor(x)).detach().numpy() == 0).all()
        np.testing.assert_allclose(ours(ds.tensor(x)).detach().numpy(), want)
    del ours.fc._parameters["bias"]
    assert not hasattr(ours.fc, "bias") and [n for n, _ in ours.fc.named_parameters()] == ["weight"]
    ours._modules["forward"] = nn.ReLU()  # a method of the class stays the class's, as torch's lookup order
    assert ours.forward.__func__ is type(ours).forward


def test_a_strict_load_names_the_keys_in_torchs_words() -> None:
    # code written for torch reads these phrases (and the quoted keys) out of the message
    import torch

    messages = []
    for lib in (torch, ds):
        with pytest.raises(RuntimeError) as info:
            lib.nn.Linear(2, 2).load_state_dict({"weight": lib.zeros(2, 2), "extra": lib.zeros(1)})
        messages.append(str(info.value))
    for phrase in ('Missing key(s) in state_dict: "bias".', 'Unexpected key(s) in state_dict: "extra".'):
        assert all(phrase in m for m in messages), messages


def test_module_list_takes_one_element_integer_tensors_as_indices_as_torch() -> None:
    # HF Mixtral: `for expert_idx in expert_hit: self.experts[expert_idx]` with expert_hit of shape (k, 1)
    experts = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert experts[ds.tensor([2])] is experts[2]
    assert experts[ds.tensor(-1)] is experts[2]
    with pytest.raises(TypeError):
        experts[ds.tensor([1.0])]


@pytest.mark.parametrize("name", ["save", "save_to_buffer", "code", "graph"])
def test_scriptmodule_only_attributes_say_that_jit_script_returns_the_module(name):
    torch = pytest.importorskip("torch")
    assert not hasattr(torch.nn.Linear(2, 1), name)  # torch's Module has none of them either
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.script's note that nothing is compiled (said once)
        net = ds.jit.script(ds.nn.Sequential(ds.nn.Linear(2, 1)))
    with pytest.raises(AttributeError, match="no TorchScript.*state_dict") as info:
        getattr(net, name)
    assert info.value.name == name and info.value.obj is net
    with pytest.raises(AttributeError) as other:
        net.not_an_attribute  # noqa: B018
    assert "TorchScript" not in str(other.value)
