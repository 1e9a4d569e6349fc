"""Every scheduler against torch.optim.lr_scheduler: the same lr (and momentum) sequence for 200 steps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.optim import lr_scheduler as ours_ls

torch = pytest.importorskip("torch")
torch_ls = torch.optim.lr_scheduler

STEPS = 200


def _opts(kind="SGD", groups=1, **kwargs):  # type: ignore[no-untyped-def]
    ours_params = [{"params": [ds.zeros(2, requires_grad=True)], "lr": 0.1 * (i + 1)} for i in range(groups)]
    torch_params = [{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1 * (i + 1)} for i in range(groups)]
    return getattr(optim, kind)(ours_params, **kwargs), getattr(torch.optim, kind)(torch_params, **kwargs)


def _sequences(opt, sched, steps, metric=None):  # type: ignore[no-untyped-def]
    lrs, moms = [], []
    for i in range(steps):
        opt.step()
        if metric is None:
            sched.step()
        else:
            sched.step(metric(i))
        lrs.append(list(sched.get_last_lr()))
        g = opt.param_groups[0]
        moms.append(g["betas"][0] if "betas" in g else g.get("momentum", 0.0))
    return np.array(lrs, dtype=np.float64), np.array(moms, dtype=np.float64)


def _make(name, opt, kwargs):  # type: ignore[no-untyped-def]
    return getattr(ours_ls if isinstance(opt, optim.Optimizer) else torch_ls, name)(opt, **kwargs)


CASES = [
    ("LambdaLR", {"lr_lambda": lambda e: 0.97**e + 0.01 * (e % 7)}, {}),
    ("MultiplicativeLR", {"lr_lambda": lambda e: 0.99 if e % 3 else 1.01}, {}),
    ("StepLR", {"step_size": 30, "gamma": 0.5}, {}),
    ("StepLR", {"step_size": 7.0, "gamma": 0.5}, {}),  # a float step size, as the text classification tutorial writes
    ("MultiStepLR", {"milestones": [20, 50, 50, 120], "gamma": 0.3}, {}),
    ("ConstantLR", {"factor": 0.25, "total_iters": 40}, {}),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 0.9, "total_iters": 60}, {}),
    ("ExponentialLR", {"gamma": 0.98}, {}),
    ("PolynomialLR", {"total_iters": 150, "power": 2.0}, {}),
    ("CosineAnnealingLR", {"T_max": 30, "eta_min": 0.001}, {}),
    ("CosineAnnealingLR", {"T_max": 200}, {}),
    ("CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 2, "eta_min": 1e-4}, {}),
    ("CosineAnnealingWarmRestarts", {"T_0": 17}, {}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 15}, {"momentum": 0.9}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 10, "step_size_down": 25, "mode": "triangular2"}, {"momentum": 0.9}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 20, "mode": "exp_range", "gamma": 0.99, "cycle_momentum": False}, {}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 200}, {"momentum": 0.9}),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "total_steps": 210, "anneal_strategy": "linear", "three_phase": True}, {"momentum": 0.9, "groups": 2}),
    ("OneCycleLR", {"max_lr": 0.01, "epochs": 10, "steps_per_epoch": 20, "pct_start": 0.25, "div_factor": 10.0}, {"kind": "Adam"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs", "opt_kwargs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_same_sequence_as_torch(name, kwargs, opt_kwargs):  # type: ignore[no-untyped-def]
    opt_kwargs = dict(opt_kwargs)
    kind, groups = opt_kwargs.pop("kind", "SGD"), opt_kwargs.pop("groups", 1)
    opt, topt = _opts(kind, groups, **opt_kwargs)
    sched, tsched = _make(name, opt, kwargs), _make(name, topt, kwargs)
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    lrs, moms = _sequences(opt, sched, STEPS)
    tlrs, tmoms = _sequences(topt, tsched, STEPS)
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=0)
    np.testing.assert_allclose(moms, tmoms, rtol=1e-12, atol=0)
    assert sched.last_epoch == tsched.last_epoch


def test_sequential_and_chained_match_torch():
    for build in ("sequential", "chained"):
        opt, topt = _opts()
        pairs = []
        for o, mod in ((opt, ours_ls), (topt, torch_ls)):
            warm = mod.LinearLR(o, start_factor=0.1, total_iters=10)
            decay = mod.CosineAnnealingLR(o, T_max=90) if build == "sequential" else mod.ExponentialLR(o, gamma=0.99)
            if build == "sequential":
                s = mod.SequentialLR(o, [warm, decay, mod.StepLR(o, step_size=20, gamma=0.5)], milestones=[10, 100])
            else:
                s = mod.ChainedScheduler([warm, decay])
            pairs.append(s)
        lrs, _ = _sequences(opt, pairs[0], STEPS)
        tlrs, _ = _sequences(topt, pairs[1], STEPS)
        np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=0, err_msg=build)


def _plateau_metric(i: int) -> float:
    # improves, plateaus (tiny relative gains below the threshold), improves again, noisy plateau
    if i < 20:
        return 10.0 - 0.3 * i
    if i < 60:
        return 4.3 - 1e-6 * (i - 20)
    if i < 80:
        return 4.3 - 0.05 * (i - 60)
    return 3.3 + 0.01 * math.sin(i)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"patience": 3, "factor": 0.5, "cooldown": 2},
        {"patience": 2, "threshold": 0.01, "threshold_mode": "abs", "min_lr": 0.02},
        {"mode": "max", "patience": 4, "factor": 0.7},
    ],
)
def test_plateau_matches_torch_for_positive_metrics(kwargs):  # type: ignore[no-untyped-def]
    sign = -1.0 if kwargs.get("mode") == "max" else 1.0
    opt, topt = _opts()
    sched = ours_ls.ReduceLROnPlateau(opt, **kwargs)
    tsched = torch_ls.ReduceLROnPlateau(topt, **kwargs)
    metric = (lambda i: 1.0 / _plateau_metric(i)) if sign < 0 else _plateau_metric
    lrs, _ = _sequences(opt, sched, STEPS, metric)
    tlrs, _ = _sequences(topt, tsched, STEPS, metric)
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=0)
    assert lrs[-1, 0] < lrs[0, 0], "the test sequence should trigger reductions"


def test_plateau_negative_metric_uses_abs_best():
    """A metric that gets slightly WORSE each epoch must count as a plateau, also below zero.

    With best = -10, torch's rule best * (1 - 1e-4) = -9.999 counts -9.9995 (worse) as better
    and never reduces; the |best| rule requires a < -10.001.
    """
    opt, topt = _opts()
    sched = ours_ls.ReduceLROnPlateau(opt, patience=2)
    tsched = torch_ls.ReduceLROnPlateau(topt, patience=2)
    values = [-10.0 + 0.0001 * i for i in range(10)]  # slowly worsening
    for v in values:
        sched.step(v)
        tsched.step(v)
    assert tsched.get_last_lr() == [0.1]  # torch is fooled by the sign
    # epoch 1 sets best; every later epoch is bad, so with patience 2 the lr drops at epochs 4, 7, 10
    assert sched.get_last_lr()[0] == pytest.approx(0.1 * 0.1**3)
    # and a real improvement of a negative metric is still recognised
    opt2, _ = _opts()
    s2 = ours_ls.ReduceLROnPlateau(opt2, patience=1)
    for v in [-1.0, -2.0, -3.0, -4.0, -5.0]:
        s2.step(v)
    assert s2.get_last_lr() == [0.1] and s2.best == -5.0


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
@pytest.mark.parametrize(
    "metrics",
    [
        [1.0, math.nan, math.nan, 0.5, math.nan, 0.4, 0.3, math.nan, math.nan, math.nan],
        [math.nan, math.nan, 1.0, 0.9, math.inf, math.inf, 0.8, -math.inf, math.inf, 0.1],
        [1.0, -math.inf, -math.inf, math.nan, 2.0, math.inf, math.nan, 0.0, -math.inf, 3.0],
    ],
)
def test_plateau_counts_nan_and_inf_metrics_as_torch(mode, threshold_mode, metrics):  # type: ignore[no-untyped-def]
    # a NaN metric compares false, so torch counts the epoch as bad and goes on; infinities compare as numbers
    opt, topt = _opts()
    kwargs = {"mode": mode, "threshold_mode": threshold_mode, "patience": 1, "threshold": 0.1}
    sched = ours_ls.ReduceLROnPlateau(opt, **kwargs)
    tsched = torch_ls.ReduceLROnPlateau(topt, **kwargs)
    with pytest.warns(RuntimeWarning) as caught:
        for i, m in enumerate(metrics):
            sched.step(m)
            tsched.step(m)
            assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12), (i, m)
            assert (sched.num_bad_epochs, sched.cooldown_counter, sched.last_epoch) == (
                tsched.num_bad_epochs,
                tsched.cooldown_counter,
                tsched.last_epoch,
            ), (i, m)
            assert sched.best == tsched.best or (math.isnan(sched.best) and math.isnan(tsched.best))
    ours = [w for w in caught if "ReduceLROnPlateau" in str(w.message)]
    assert len(ours) == 1, "the NaN warning is given once per scheduler"
    assert "metric is NaN" in str(ours[0].message) and "no improvement" in str(ours[0].message)
    assert "_warned_nan" not in sched.state_dict()


def test_plateau_nan_metric_as_a_0d_tensor_warns_and_counts_as_a_bad_epoch():
    opt, topt = _opts()
    sched, tsched = ours_ls.ReduceLROnPlateau(opt, patience=0), torch_ls.ReduceLROnPlateau(topt, patience=0)
    sched.step(ds.tensor(1.0))
    tsched.step(torch.tensor(1.0))
    with pytest.warns(RuntimeWarning, match="metric is NaN"):
        sched.step(ds.tensor(float("nan")))
    tsched.step(torch.tensor(float("nan")))
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    assert sched.get_last_lr() == pytest.approx([0.01])


def test_plateau_is_a_scheduler_with_the_same_interface():
    opt, _ = _opts()
    sched = ours_ls.ReduceLROnPlateau(opt)
    assert isinstance(sched, ours_ls.LRScheduler)
    assert sched.get_last_lr() == [0.1]
    sd = json.loads(json.dumps(sched.state_dict()))
    assert sd["patience"] == 10 and sd["factor"] == 0.1 and sd["threshold"] == 1e-4 and sd["min_lrs"] == [0.0]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("StepLR", {"step_size": 0}),
        ("StepLR", {"step_size": 1.5}),
        ("CosineAnnealingLR", {"T_max": 0}),
        ("LinearLR", {"start_factor": 0.0}),
        ("ConstantLR", {"factor": 2.0}),
        ("OneCycleLR", {"max_lr": 0.1}),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.5}),
        ("CyclicLR", {"base_lr": 0.1, "max_lr": 1.0, "mode": "zigzag"}),
        ("ReduceLROnPlateau", {"factor": 1.0}),
        ("ReduceLROnPlateau", {"mode": "up"}),
        ("CosineAnnealingWarmRestarts", {"T_0": -1}),
    ],
)
def test_bad_arguments_raise(name, kwargs):  # type: ignore[no-untyped-def]
    opt, _ = _opts()
    with pytest.raises(ValueError, match=name):
        getattr(ours_ls, name)(opt, **kwargs)


def test_cycle_momentum_needs_momentum():
    opt = optim.Adagrad([ds.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="cycle_momentum"):
        ours_ls.OneCycleLR(opt, max_lr=0.1, total_steps=10)


def test_scheduler_drives_the_optimizer_step():
    """The lr a scheduler writes is the one the next optimizer step uses."""
    w = ds.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = ours_ls.StepLR(opt, step_size=1, gamma=0.5)
    for lr in [1.0, 0.5, 0.25]:
        before = w.item()
        opt.zero_grad()
        w.sum().backward()  # gradient 1
        opt.step()
        assert before - w.item() == pytest.approx(lr)
        sched.step()


def test_scheduler_refuses_a_non_optimizer_but_accepts_a_wrapper():
    with pytest.raises(TypeError, match="expected a downslope optimizer"):
        ours_ls.StepLR(object(), step_size=1)  # type: ignore[arg-type]
    inner, _ = _opts()

    class Wrapper:  # e.g. a data-parallel wrapper that exposes the inner optimizer's groups
        def __init__(self, opt):  # type: ignore[no-untyped-def]
            self.param_groups, self.defaults = opt.param_groups, opt.defaults

    sched = ours_ls.ExponentialLR(Wrapper(inner), gamma=0.5)  # type: ignore[arg-type]
    sched.step()
    assert inner.param_groups[0]["lr"] == pytest.approx(0.05)


def test_optimizer_current_lrs_follows_the_scheduler_per_group() -> None:
    a, b = ds.zeros(2, requires_grad=True), ds.zeros(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    assert opt.current_lrs() == [0.1, 1.0]
    for _ in range(3):
        opt.step()
        sched.step()
        assert opt.current_lrs() == sched.get_last_lr()
    assert opt.current_lrs() == pytest.approx([0.0125, 0.125])
    with pytest.warns(DeprecationWarning, match=r"use Optimizer.current_lrs\(\)"):
        assert opt.get_lr() == opt.current_lrs()  # the old name, kept for existing code


def test_lambda_lr_state_dict_saves_callable_objects_dict_as_torch() -> None:
    class Halve:
        def __init__(self) -> None:
            self.base = 0.5

        def __call__(self, epoch: int) -> float:
            return self.base**epoch

    for ours_cls, theirs_cls in [
        (ds.optim.lr_scheduler.LambdaLR, torch.optim.lr_scheduler.LambdaLR),
        (ds.optim.lr_scheduler.MultiplicativeLR, torch.optim.lr_scheduler.MultiplicativeLR),
    ]:
        ours_opt = ds.optim.SGD([ds.zeros(1, requires_grad=True)], lr=0.1)
        theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        ours = ours_cls(ours_opt, [Halve()])
        theirs = theirs_cls(theirs_opt, [Halve()])
        assert ours.state_dict()["lr_lambdas"] == theirs.state_dict()["lr_lambdas"] == [{"base": 0.5}]
        assert ours_cls(ours_opt, lambda e: 1.0).state_dict()["lr_lambdas"] == [None]
        state = ours.state_dict()
        state["lr_lambdas"] = [{"base": 0.25}]
        fresh_fn = Halve()
        fresh = ours_cls(ours_opt, fresh_fn)
        fresh.load_state_dict(state)
        assert fresh_fn.base == 0.25 and fresh.last_epoch == ours.last_epoch


def test_optimizers_accept_a_one_element_tensor_lr_as_torch() -> None:
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    lr = ds.tensor(0.5, dtype="float64")
    opt = ds.optim.SGD([w], lr=lr)
    assert opt.param_groups[0]["lr"] is lr  # kept as given, as PyTorch keeps it (schedulers fill_ it)
    (w * w).sum().backward()
    opt.step()
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    topt = torch.optim.SGD([tw], lr=torch.tensor(0.5))
    (tw * tw).sum().backward()
    topt.step()
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy())
    opt = ds.optim.Adam([{"params": [w], "lr": ds.tensor(0.01, dtype="float64")}])
    assert float(opt.param_groups[0]["lr"]) == 0.01
    sched = ds.optim.lr_scheduler.StepLR(ds.optim.SGD([w], lr=ds.tensor(1.0)), step_size=1, gamma=0.5)
    sched.optimizer.step()
    sched.step()
    assert [float(lr) for lr in sched.get_last_lr()] == [0.5]
    with pytest.raises(ValueError, match="1-element"):
        ds.optim.SGD([w], lr=ds.tensor([0.1, 0.2]))
