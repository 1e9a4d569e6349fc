"""Optimizers built over a lazy module's uninitialized parameters (before its first forward, as d2l's
Trainer does): their buffers are made once the forward materialized the parameters, and the steps
match PyTorch's over the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import StateError

OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adadelta", {"lr": 1.0}),
    ("Adamax", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01}),
    ("ASGD", {"lr": 0.01}),
    ("Rprop", {"lr": 0.01}),
]


def _models() -> tuple[ds.nn.Module, torch.nn.Module]:
    # no bias before the batch norm: its gradient is rounding noise, which Adam's scaling would amplify
    net = ds.nn.Sequential(
        ds.nn.LazyConv2d(3, 3, bias=False), ds.nn.LazyBatchNorm2d(), ds.nn.ReLU(), ds.nn.Flatten(), ds.nn.LazyLinear(4)
    )
    ref = torch.nn.Sequential(
        torch.nn.LazyConv2d(3, 3, bias=False),
        torch.nn.LazyBatchNorm2d(),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.LazyLinear(4),
    )
    return net, ref


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 2, 6, 6)).astype(np.float32), rng.integers(0, 4, 5)


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_built_before_the_first_forward_steps_as_torch(name: str, kwargs: dict) -> None:
    x, y = _data()
    net, ref = _models()
    opt = getattr(ds.optim, name)(net.parameters(), **kwargs)
    if name == "Adagrad":  # torch's Adagrad makes its state at construction: it refuses lazy parameters
        opt_ref = None
    else:
        opt_ref = getattr(torch.optim, name)(ref.parameters(), **kwargs)
    assert opt.state_dict()["state"] == {}
    opt.zero_grad()  # before the first forward: nothing to forget
    with ds.no_grad():
        net(ds.tensor(x))
    with torch.no_grad():
        ref(torch.tensor(x))
    if opt_ref is None:
        opt_ref = torch.optim.Adagrad(ref.parameters(), **kwargs)
    with torch.no_grad():
        for p, q in zip(net.parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy().copy()))
    for _ in range(3):
        for o, model, lib, xs, ys in (
            (opt, net, ds, ds.tensor(x), ds.tensor(y)),
            (opt_ref, ref, torch, torch.tensor(x), torch.tensor(y)),
        ):
            o.zero_grad()
            lib.nn.functional.cross_entropy(model(xs), ys).backward()
            o.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert set(opt.state_dict()["state"]) == set(opt_ref.state_dict()["state"])


def test_state_dict_before_the_first_forward_round_trips_as_torch() -> None:
    net, ref = _models()
    opt = ds.optim.Adam(net.parameters(), lr=0.1)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=0.1)
    saved, saved_ref = opt.state_dict(), opt_ref.state_dict()
    assert saved["state"] == saved_ref["state"] == {}
    assert [g["params"] for g in saved["param_groups"]] == [g["params"] for g in saved_ref["param_groups"]]
    again = ds.optim.Adam(net.parameters(), lr=0.5)
    again.load_state_dict(saved)
    assert again.param_groups[0]["lr"] == 0.1
    assert len(again.state) == 0
    w = net[4].weight
    assert dict(again.state[w]) == {}  # a defaultdict's empty entry, as torch's
    with pytest.raises(StateError, match="uninitialized"):
        again.state[w]["step"] = 3


def test_state_saved_after_materialization_loads_into_an_optimizer_built_lazily() -> None:
    x, y = _data()
    net, _ = _models()
    opt = ds.optim.Adam(net.parameters(), lr=0.1)
    ds.nn.functional.cross_entropy(net(ds.tensor(x)), ds.tensor(y)).backward()
    opt.step()
    saved = opt.state_dict()
    net2, _ = _models()
    opt2 = ds.optim.Adam(net2.parameters(), lr=0.1)
    net2.load_state_dict(net.state_dict())  # materializes the lazy layers
    opt2.load_state_dict(saved)
    for p, q in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(opt.state[p]["exp_avg"].numpy(), opt2.state[q]["exp_avg"].numpy())


def test_parameter_group_added_with_lazy_parameters() -> None:
    lin, plain = ds.nn.LazyLinear(2), ds.nn.Linear(3, 2)
    opt = ds.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    opt.add_param_group({"params": lin.parameters(), "lr": 0.2})
    (lin(ds.ones(4, 3)).sum() + plain(ds.ones(4, 3)).sum()).backward()
    w0 = lin.weight.detach().numpy().copy()
    opt.step()
    np.testing.assert_allclose(lin.weight.detach().numpy(), w0 - 0.2 * 4.0, rtol=1e-6)
    assert lin.weight in opt.state


def test_loading_state_of_a_parameter_still_uninitialized_is_refused() -> None:
    x, y = _data()
    net, _ = _models()
    opt = ds.optim.Adam(net.parameters(), lr=0.1)
    ds.nn.functional.cross_entropy(net(ds.tensor(x)), ds.tensor(y)).backward()
    opt.step()
    fresh, _ = _models()
    with pytest.raises(StateError, match="uninitialized.*forward"):
        ds.optim.Adam(fresh.parameters(), lr=0.1).load_state_dict(opt.state_dict())


def test_lbfgs_built_over_a_lazy_layer_steps_as_torchs() -> None:
    torch = pytest.importorskip("torch")
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3) / 5
    y = np.ones((2, 2), np.float32)
    result = {}
    for lib in (torch, ds):
        model = lib.nn.LazyLinear(2)
        opt = lib.optim.LBFGS(model.parameters(), lr=0.5)  # before the first forward, as d2l's Trainer does
        model(lib.tensor(x))
        with lib.no_grad():
            model.weight.copy_(lib.tensor(np.full((2, 3), 0.1, np.float32)))
            model.bias.zero_()

        def closure():  # type: ignore[no-untyped-def]
            opt.zero_grad()  # noqa: B023
            loss = ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean()  # noqa: B023
            loss.backward()
            return loss

        for _ in range(2):
            opt.step(closure)
        result[lib.__name__] = model.weight.detach().numpy()
    np.testing.assert_allclose(result["downslope"], result["torch"], rtol=1e-5, atol=1e-6)
