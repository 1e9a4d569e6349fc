"""PyTorch's optimizer protocol: a subclass of ``optim.Optimizer`` written PyTorch's way (its own
``step()`` over ``param_groups`` and ``state``), and state dicts in PyTorch's format (Tensors,
``step`` as a float32 0-d tensor) that load both ways between the two libraries."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim

torch = pytest.importorskip("torch")


def _subclass(lib: Any) -> type:
    """The same momentum optimizer, written the standard PyTorch way against ``lib``."""

    class MyOpt(lib.optim.Optimizer):  # type: ignore[misc, name-defined]
        def __init__(self, params: Any, lr: float = 1e-2, mom: float = 0.9, wd: float = 0.0) -> None:
            super().__init__(params, dict(lr=lr, mom=mom, wd=wd))

        @lib.no_grad()
        def step(self, closure: Any = None) -> Any:
            loss = None
            if closure is not None:
                with lib.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    if "buf" not in st:
                        st["buf"] = lib.zeros_like(p)
                        st["step"] = lib.tensor(0.0)
                    st["step"] += 1
                    st["buf"].mul_(group["mom"]).add_(p.grad, alpha=1 - group["mom"])
                    p.mul_(1 - group["lr"] * group["wd"])
                    p.add_(st["buf"], alpha=-group["lr"])
            return loss

    return MyOpt


_RNG = np.random.default_rng(0)
_W0 = [_RNG.standard_normal((3, 4)), _RNG.standard_normal(4), _RNG.standard_normal((4, 2))]
_X = _RNG.standard_normal((8, 3))


def _params(lib: Any) -> list[Any]:
    return [lib.tensor(w.copy(), dtype=lib.float64, requires_grad=True) for w in _W0]


def _loss(lib: Any, p: list[Any]) -> Any:
    return ((lib.tensor(_X, dtype=lib.float64) @ p[0] + p[1]).tanh() @ p[2]).pow(2).mean()


def _run(lib: Any, opt: Any, p: list[Any], steps: int, skip: int | None = None) -> None:
    for i in range(steps):
        opt.zero_grad()
        _loss(lib, p).backward()
        if skip is not None and i % 2 == 0:
            p[skip].grad = None
        opt.step()


def _to_ds(tree: Any) -> Any:
    """A PyTorch state dict with its tensors converted as a user would: ``.numpy()`` into ``ds.tensor``."""
    if isinstance(tree, torch.Tensor):
        return ds.from_numpy(tree.detach().numpy())
    if isinstance(tree, dict):
        return {k: _to_ds(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_ds(v) for v in tree]
    return tree


def _close(ours: list[Any], theirs: list[Any], rtol: float = 1e-12) -> None:
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=1e-14)


# ---------------------------------------------------------------------- a subclass with its own step
def test_a_pytorch_style_subclass_follows_torch() -> None:
    ours, theirs = _params(ds), _params(torch)
    opt = _subclass(ds)([ours[0], ours[1]], lr=0.1, wd=1e-2)
    topt = _subclass(torch)([theirs[0], theirs[1]], lr=0.1, wd=1e-2)
    opt.add_param_group({"params": [ours[2]], "lr": 0.05})
    topt.add_param_group({"params": [theirs[2]], "lr": 0.05})
    assert opt.defaults == topt.defaults == {"lr": 0.1, "mom": 0.9, "wd": 1e-2}
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == [
        {k: v for k, v in g.items() if k != "params"} for g in topt.param_groups
    ]
    assert repr(opt) == repr(topt)
    _run(ds, opt, ours, 10, skip=1)
    _run(torch, topt, theirs, 10, skip=1)
    _close(ours, theirs)
    assert ours[0].array.base is None or ours[0].array.base is not ours[1].array.base  # no flat buffer
    assert type(opt.state) is type(topt.state)  # collections.defaultdict
    assert float(opt.state[ours[1]]["step"]) == float(topt.state[theirs[1]]["step"]) == 5


def test_its_state_dict_is_torchs_and_loads_both_ways() -> None:
    ours, theirs = _params(ds), _params(torch)
    opt, topt = _subclass(ds)(ours, lr=0.1), _subclass(torch)(theirs, lr=0.1)
    _run(ds, opt, ours, 3, skip=2)
    _run(torch, topt, theirs, 3, skip=2)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd.keys() == tsd.keys() and sd["param_groups"] == tsd["param_groups"]
    assert sd["state"].keys() == tsd["state"].keys() == {0, 1, 2}
    for pos in sd["state"]:
        for key, value in tsd["state"][pos].items():
            assert isinstance(sd["state"][pos][key], ds.Tensor)
            np.testing.assert_allclose(sd["state"][pos][key].numpy(), value.numpy(), rtol=1e-12)
    before = sd["state"][0]["buf"].clone()
    _run(ds, opt, ours, 1)  # a snapshot: training on changes nothing in it
    np.testing.assert_array_equal(sd["state"][0]["buf"].numpy(), before.numpy())

    # PyTorch's saved state, tensors converted, into a fresh downslope optimizer: the same run on
    resumed, fresh = _params(ds), _params(torch)
    for a, b in zip(resumed, theirs):
        a.data = ds.from_numpy(b.detach().numpy().copy())
    for a, b in zip(fresh, theirs):
        a.data = b.detach().clone()
    opt2 = _subclass(ds)(resumed, lr=0.5)
    opt2.load_state_dict(_to_ds(tsd))
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["params"] == resumed
    topt2 = _subclass(torch)(fresh, lr=0.5)
    topt2.load_state_dict(tsd)
    _run(ds, opt2, resumed, 5)
    _run(torch, topt2, fresh, 5)
    _close(resumed, fresh)

    # and downslope's own round trip through a checkpoint file, tensors cloned on load
    copy_ = _params(ds)
    for a, b in zip(copy_, resumed):
        a.data = b.detach().clone()
    saved = opt2.state_dict()
    opt3 = _subclass(ds)(copy_, lr=0.5)
    opt3.load_state_dict(saved)
    assert opt3.state[copy_[0]]["buf"] is not saved["state"][0]["buf"]
    _run(ds, opt2, resumed, 3)
    _run(ds, opt3, copy_, 3)
    _close(copy_, resumed, rtol=0)


def test_its_state_dict_round_trips_through_save_and_load(tmp_path: Any) -> None:
    p = _params(ds)
    opt = _subclass(ds)(p, lr=0.1)
    _run(ds, opt, p, 2)
    ds.save(opt.state_dict(), tmp_path / "opt.pt")
    back = ds.load(tmp_path / "opt.pt")
    q = [t.detach().clone().requires_grad_() for t in p]
    opt2 = _subclass(ds)(q, lr=0.1)
    opt2.load_state_dict(back)
    _run(ds, opt, p, 2)
    _run(ds, opt2, q, 2)
    _close(q, p, rtol=0)


def test_its_load_refuses_a_mismatched_state() -> None:
    opt = _subclass(ds)(_params(ds))
    with pytest.raises(ValueError, match="param group"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]})


def test_a_scheduler_drives_it_and_checks_the_order() -> None:
    p, tp = _params(ds), _params(torch)
    opt, topt = _subclass(ds)(p, lr=0.1), _subclass(torch)(tp, lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            _run(ds, opt, p, 1)
            _run(torch, topt, tp, 1)
            sched.step()
            tsched.step()
    assert sched.get_last_lr() == tsched.get_last_lr() == [0.025]
    _close(p, tp)
    late = _subclass(ds)(_params(ds), lr=0.1)
    sched2 = optim.lr_scheduler.StepLR(late, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched2.step()


def test_it_zeroes_grads_copies_and_takes_a_closure() -> None:
    p = _params(ds)
    opt = _subclass(ds)(p, lr=0.1)
    loss = opt.step(lambda: _loss(ds, p).backward() or _loss(ds, p))
    assert isinstance(loss, ds.Tensor) and all(t.grad is not None for t in p)
    opt.zero_grad(set_to_none=False)
    assert all(float(t.grad.abs().sum()) == 0 for t in p)
    opt.zero_grad()
    assert all(t.grad is None for t in p)
    twin = copy.deepcopy(opt)
    assert twin.state_dict()["state"].keys() == {0, 1, 2}
    opt.state = {}  # PyTorch's code assigns the whole dict (``__setstate__``)
    assert opt.state_dict()["state"] == {} and opt.state[p[0]] == {}


def test_a_fastai_style_subclass_keeping_state_on_the_parameters() -> None:
    def make(lib: Any) -> type:
        class Momentum(lib.optim.Optimizer):  # type: ignore[misc, name-defined]
            def __init__(self, params: Any, lr: float, mom: float = 0.9) -> None:
                super().__init__(params, dict(lr=lr, mom=mom))

            def step(self, closure: Any = None) -> None:
                with lib.no_grad():
                    for group in self.param_groups:
                        for p in group["params"]:
                            if not hasattr(p, "grad_avg"):
                                p.grad_avg = lib.zeros_like(p.grad)
                            p.grad_avg = p.grad_avg * group["mom"] + p.grad * (1 - group["mom"])
                            p -= group["lr"] * p.grad_avg

        return Momentum

    ours, theirs = _params(ds), _params(torch)
    opt, topt = make(ds)(ours, lr=0.1), make(torch)(theirs, lr=0.1)
    _run(ds, opt, ours, 6)
    _run(torch, topt, theirs, 6)
    _close(ours, theirs)
    np.testing.assert_allclose(ours[0].grad_avg.numpy(), theirs[0].grad_avg.numpy(), rtol=1e-12)


def test_the_base_class_without_a_step_still_explains_itself() -> None:
    with pytest.raises(TypeError, match="from_transform"):
        optim.Optimizer([ds.zeros(1, requires_grad=True)], {"lr": 0.1})

    class NoStep(optim.Optimizer):
        def __init__(self, params: Any) -> None:
            super().__init__(params, {"lr": 0.1})

    opt = NoStep([ds.zeros(1, requires_grad=True)])  # as torch's: built, only its step() refuses
    with pytest.raises(NotImplementedError, match="defines step"):
        opt.step()


def _sam_like(lib: Any) -> Any:
    # SAM's copies define first_step/second_step around a base optimizer's step(), never step()
    class SAMLike(lib.optim.Optimizer):  # type: ignore[misc]
        def __init__(self, params: Any, rho: float = 0.05) -> None:
            super().__init__(params, {"rho": rho})
            self.base = lib.optim.SGD(self.param_groups, lr=0.1)

        def first_step(self) -> None:
            with lib.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.add_(p.grad * group["rho"])

    return SAMLike


def test_a_subclass_with_only_first_and_second_steps_works_as_torchs() -> None:
    results = []
    for lib in (ds, torch):
        w = lib.nn.Parameter(lib.tensor([1.0, -2.0], dtype=lib.float64))
        opt = _sam_like(lib)([w])
        (w * w).sum().backward()
        opt.first_step()
        opt.base.step()
        results.append((w.detach().numpy().copy(), opt.state_dict()["param_groups"][0]["rho"]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    assert results[0][1] == results[1][1]


def test_assigning_a_built_in_optimizers_state_replaces_it() -> None:
    w = ds.ones(1, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    opt.state = {}  # PyTorch's reset idiom: every parameter starts afresh
    assert len(opt.state) == 0 and opt.state_dict()["state"] == {}
    with pytest.raises(TypeError, match="dict"):
        opt.state = 3


# ---------------------------------------------------------------------- built-in optimizers' state dicts
_BUILT_IN = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adamax", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01}),
    ("Adadelta", {"lr": 1.0}),
    ("Rprop", {"lr": 0.01}),
]


@pytest.mark.parametrize(("name", "kwargs"), _BUILT_IN)
def test_built_in_state_holds_torchs_keys_as_tensors(name: str, kwargs: dict[str, Any]) -> None:
    ours, theirs = _params(ds), _params(torch)
    opt, topt = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    _run(ds, opt, ours, 2)
    _run(torch, topt, theirs, 2)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["state"].keys() == tsd["state"].keys()
    for pos, entry in tsd["state"].items():
        assert sd["state"][pos].keys() == entry.keys()
        for key, value in entry.items():
            got = sd["state"][pos][key]
            assert isinstance(got, ds.Tensor) and got.shape == tuple(value.shape), key
            if key != "mu_product":  # PyTorch keeps NAdam's product in float32 whatever the parameters' dtype
                assert str(got.dtype).rsplit(".", 1)[-1] == str(value.dtype).rsplit(".", 1)[-1], key
            rtol = 1e-6 if name == "NAdam" else 1e-10  # PyTorch rounds its mu_product to float32
            np.testing.assert_allclose(got.numpy(), value.numpy(), rtol=rtol, atol=1e-14)
            got.clone()  # what a user does with PyTorch's values
    for p, tp in zip(ours, theirs):
        assert opt.state[p].keys() >= topt.state[tp].keys()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", {"lr": 0.1, "momentum": 0.9}),
        ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
        ("Adam", {"lr": 0.01}),
        ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
        ("RMSprop", {"lr": 0.01}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ],
)
def test_a_torch_state_dict_resumes_the_torch_trajectory(name: str, kwargs: dict[str, Any]) -> None:
    theirs = _params(torch)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    _run(torch, topt, theirs, 4, skip=1)
    tsd = topt.state_dict()
    ours = _params(ds)
    for a, b in zip(ours, theirs):
        a.data = ds.from_numpy(b.detach().numpy().copy())
    opt = getattr(optim, name)(ours, **kwargs)
    opt.load_state_dict(_to_ds(tsd))
    _run(torch, topt, theirs, 10, skip=1)
    _run(ds, opt, ours, 10, skip=1)
    _close(ours, theirs, rtol=1e-10)


def test_built_in_state_dict_round_trips_through_save_and_load(tmp_path: Any) -> None:
    p = _params(ds)
    opt = optim.Adam(p, lr=0.01)
    _run(ds, opt, p, 3, skip=1)
    ds.save(opt.state_dict(), tmp_path / "adam.pt")
    back = ds.load(tmp_path / "adam.pt")
    assert isinstance(back["state"][0]["exp_avg"], ds.Tensor) and back["state"][0]["step"].dtype == ds.float32
    q = [t.detach().clone().requires_grad_() for t in p]
    opt2 = optim.Adam(q, lr=0.01)
    opt2.load_state_dict(back)
    _run(ds, opt, p, 3, skip=1)
    _run(ds, opt2, q, 3, skip=1)
    _close(q, p, rtol=0)
