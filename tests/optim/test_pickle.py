"""Optimizers and lr schedulers through Python's pickle (and copy), as PyTorch's pickle them: a
model, its optimizer and its scheduler pickled together load as a pair whose further training
matches the original's step for step, bit for bit."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.errors import ArgumentTypeError
from downslope.optim import lr_scheduler as ls
from downslope.optim import transforms as T

torch = pytest.importorskip("torch")


def _model() -> ds.nn.Module:
    ds.manual_seed(0)
    return ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.Tanh(), ds.nn.Linear(4, 2)).double()


def _data(i: int) -> tuple[ds.Tensor, ds.Tensor]:
    rng = np.random.default_rng(100 + i)
    return ds.tensor(rng.standard_normal((5, 3)), dtype=ds.float64), ds.tensor(
        rng.standard_normal((5, 2)), dtype=ds.float64
    )


def _loss(model: ds.nn.Module, i: int) -> ds.Tensor:
    x, y = _data(i)
    return ((model(x) - y) ** 2).mean()


def _train(model: ds.nn.Module, opt: Any, start: int, n: int, sched: Any = None) -> list[Any]:
    """``n`` steps; the parameters (and lrs) after each."""
    out = []
    for i in range(start, start + n):
        if isinstance(opt, optim.LBFGS):

            def closure(i: int = i) -> ds.Tensor:
                opt.zero_grad()
                loss = _loss(model, i)
                loss.backward()
                return loss

            opt.step(closure)
        else:
            opt.zero_grad()
            _loss(model, i).backward()
            opt.step()
        if sched is not None:
            sched.step()
        out.append([p.detach().numpy().copy() for p in model.parameters()] + [[g["lr"] for g in opt.param_groups]])
    return out


def _same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b):
        for x, y in zip(step_a, step_b):
            if isinstance(x, list):
                assert x == y
            else:
                np.testing.assert_array_equal(x, y)


def _lr_lambda(epoch: int) -> float:
    return 0.9**epoch


class PlainSGD(optim.Optimizer):
    """A subclass written PyTorch's way: its own step over param_groups and state."""

    def __init__(self, params: Any, lr: float = 0.1, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def step(self, closure: Any = None) -> Any:
        with ds.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    buf = state.get("buf")
                    buf = p.grad.clone() if buf is None else buf * group["momentum"] + p.grad
                    state["buf"] = buf
                    p.sub_(group["lr"] * buf)
        return None


class MyAdam(optim.Adam):
    """A subclass of a built-in with an attribute of its own."""

    def __init__(self, params: Any, **kw: Any) -> None:
        self.note = "kept"
        super().__init__(params, **kw)


OPTIMIZERS: dict[str, Any] = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "SGD-plain": lambda ps: optim.SGD(ps, lr=0.05),
    "GD": lambda ps: optim.GD(ps, lr=0.05),
    "Adam": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.01),
    "Adamax": lambda ps: optim.Adamax(ps, lr=0.01),
    "NAdam": lambda ps: optim.NAdam(ps, lr=0.01),
    "RAdam": lambda ps: optim.RAdam(ps, lr=0.01),
    "Lion": lambda ps: optim.Lion(ps, lr=0.001),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.05),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "Adadelta": lambda ps: optim.Adadelta(ps),
    "Rprop": lambda ps: optim.Rprop(ps, lr=0.01),
    "ASGD": lambda ps: optim.ASGD(ps, lr=0.05, t0=2),
    "LBFGS": lambda ps: optim.LBFGS(ps, lr=0.5, max_iter=4, history_size=3, line_search_fn="strong_wolfe"),
    "Adafactor": lambda ps: optim.Adafactor(ps, lr=0.01),
    "Muon": lambda ps: optim.Muon([p for p in ps if p.ndim == 2], lr=0.02),
    "SparseAdam": lambda ps: optim.SparseAdam(ps, lr=0.01),
    "PlainSGD": lambda ps: PlainSGD(ps),
    "MyAdam": lambda ps: MyAdam(ps, lr=0.01),
    "per-param": lambda ps: optim.Adam(ps, lr=0.01, flat=False),
    "groups": lambda ps: optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.003, "weight_decay": 0.0}]),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pickled_pair_trains_as_the_original(name: str) -> None:
    model = _model()
    opt = OPTIMIZERS[name](list(model.parameters()))
    _train(model, opt, 0, 3)
    model2, opt2 = pickle.loads(pickle.dumps((model, opt)))
    assert type(opt2) is type(opt)
    # the loaded optimizer holds the loaded model's parameters (copies of the original's)
    loaded = {id(p) for p in model2.parameters()}
    assert all(id(p) in loaded for g in opt2.param_groups for p in g["params"])
    assert not any(p is q for p, q in zip(model.parameters(), model2.parameters()))
    assert sorted(opt2.state_dict()["state"]) == sorted(opt.state_dict()["state"])
    _same(_train(model, opt, 3, 4), _train(model2, opt2, 3, 4))
    if name == "MyAdam":
        assert opt2.note == "kept"


def test_pickle_before_any_step_and_alone() -> None:
    model = _model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    opt2 = pickle.loads(pickle.dumps(opt))
    assert opt2.state_dict()["state"] == {}
    # pickled alone, the optimizer's parameters are its own copies, at the original's values
    for p, q in zip(model.parameters(), opt2.param_groups[0]["params"]):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
        assert p is not q
    model2 = _model()
    opt3 = optim.Adam(model2.parameters(), lr=0.01)
    model4, opt4 = pickle.loads(pickle.dumps((model2, opt3)))
    _same(_train(model2, opt3, 0, 3), _train(model4, opt4, 0, 3))


def test_replaced_data_and_missing_grad_travel() -> None:
    """A parameter whose ``.data`` was replaced since the last step, and one without a gradient."""
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    _train(model, opt, 0, 2)
    first = next(iter(model.parameters()))
    first.data = first.detach() * 0.5
    model2, opt2 = pickle.loads(pickle.dumps((model, opt)))
    _same(_train(model, opt, 2, 3), _train(model2, opt2, 2, 3))


def test_loaded_optimizer_matches_torch() -> None:
    """After the pickle round trip downslope's Adam continues as torch's does after its own."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 2))
    targets = [rng.standard_normal((3, 2)) for _ in range(6)]
    results = []
    for lib in (ds, torch):
        w = lib.tensor(w0.copy(), dtype=lib.float64, requires_grad=True)
        opt = lib.optim.Adam([w], lr=0.05, weight_decay=0.1)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        for i in range(6):
            if i == 3:
                w, opt, sched = pickle.loads(pickle.dumps((w, opt, sched)))
            opt.zero_grad()
            ((w - lib.tensor(targets[i], dtype=lib.float64)) ** 2).sum().backward()
            opt.step()
            sched.step()
        results.append((w.detach().numpy().copy(), sched.get_last_lr()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-14)
    assert results[0][1] == results[1][1]


SCHEDULERS: dict[str, Any] = {
    "StepLR": lambda o: ls.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: ls.MultiStepLR(o, milestones=[2, 5], gamma=0.5),
    "LambdaLR": lambda o: ls.LambdaLR(o, _lr_lambda),
    "MultiplicativeLR": lambda o: ls.MultiplicativeLR(o, _lr_lambda),
    "ExponentialLR": lambda o: ls.ExponentialLR(o, gamma=0.9),
    "ConstantLR": lambda o: ls.ConstantLR(o, factor=0.5, total_iters=4),
    "LinearLR": lambda o: ls.LinearLR(o, start_factor=0.2, total_iters=5),
    "PolynomialLR": lambda o: ls.PolynomialLR(o, total_iters=8, power=2.0),
    "CosineAnnealingLR": lambda o: ls.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "CyclicLR": lambda o: ls.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, mode="exp_range", gamma=0.9),
    "OneCycleLR": lambda o: ls.OneCycleLR(o, max_lr=0.1, total_steps=12, three_phase=True),
    "ReduceLROnPlateau": lambda o: ls.ReduceLROnPlateau(o, patience=0, factor=0.5),
    "SequentialLR": lambda o: ls.SequentialLR(
        o, [ls.LinearLR(o, start_factor=0.1, total_iters=3), ls.ExponentialLR(o, gamma=0.8)], milestones=[3]
    ),
    "ChainedScheduler": lambda o: ls.ChainedScheduler(
        [ls.ConstantLR(o, factor=0.5, total_iters=3), ls.ExponentialLR(o, 0.9)]
    ),
    "SWALR": lambda o: optim.swa_utils.SWALR(o, swa_lr=0.01, anneal_epochs=3),
}


class _Metric:
    """Steps ReduceLROnPlateau with a metric that stops improving."""

    def __init__(self, sched: Any) -> None:
        self.sched, self.i = sched, 0

    def step(self) -> None:
        self.i += 1
        self.sched.step(1.0 if self.i > 1 else 2.0)


def _stepper(sched: Any) -> Any:
    return _Metric(sched) if isinstance(sched, ls.ReduceLROnPlateau) else sched


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_pickled_scheduler_continues_the_lr_sequence(name: str) -> None:
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = SCHEDULERS[name](opt)
    stepper = _stepper(sched)
    _train(model, opt, 0, 3, stepper)
    model2, opt2, stepper2 = pickle.loads(pickle.dumps((model, opt, stepper)))
    sched2 = stepper2.sched if isinstance(stepper2, _Metric) else stepper2
    assert sched2.optimizer is opt2
    assert sched2.get_last_lr() == sched.get_last_lr()
    _same(_train(model, opt, 3, 6, stepper), _train(model2, opt2, 3, 6, stepper2))
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_loaded_optimizer_still_warns_for_scheduler_order() -> None:
    """The step a scheduler wraps (to warn when it is stepped first) is wrapped in the loaded optimizer too."""
    opt = optim.SGD([ds.ones(2, requires_grad=True)], lr=0.1)
    sched = ls.StepLR(opt, step_size=2)
    opt2, sched2 = pickle.loads(pickle.dumps((opt, sched)))
    assert opt2.step.__self__ is opt2
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched2.step()


def test_hooks_are_not_pickled() -> None:
    """As PyTorch's: the hooks (often lambdas) stay behind."""
    opt = optim.SGD([ds.ones(2, requires_grad=True)], lr=0.1)
    opt.register_step_post_hook(lambda o, a, k: None)
    opt2 = pickle.loads(pickle.dumps(opt))
    assert len(opt2._optimizer_step_post_hooks) == 0
    opt2.register_step_pre_hook(lambda o, a, k: None)
    opt2.step()


def test_from_transform_with_local_functions_says_why() -> None:
    w = ds.ones(2, requires_grad=True)
    opt = optim.Optimizer.from_transform([w], T.chain(T.scale_by_adam(), T.scale_by_lr()), lr=0.1)
    with pytest.raises(ArgumentTypeError, match="state_dict"):
        pickle.dumps(opt)
    # an identity transform is a module-level function: it pickles
    opt2 = pickle.loads(pickle.dumps(optim.Optimizer.from_transform([w], T.identity(), lr=0.1)))
    opt2.step()


def test_copies_behave_as_before() -> None:
    """deepcopy copies everything (hooks too) with its own buffers; copy.copy shares the state."""
    model = _model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    calls: list[int] = []
    opt.register_step_post_hook(lambda o, a, k: calls.append(1))
    _train(model, opt, 0, 2)
    model2, opt2 = copy.deepcopy((model, opt))
    assert len(opt2._optimizer_step_post_hooks) == 1
    _same(_train(model, opt, 2, 3), _train(model2, opt2, 2, 3))
    assert len(calls) == 2 + 3 + 3
    shallow = copy.copy(opt)
    assert shallow._buckets is opt._buckets and shallow.param_groups is opt.param_groups
