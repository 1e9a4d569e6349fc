"""Save mid-run (through JSON text plus an .npz of arrays, no pickle), load into fresh objects,
continue: the parameters must be bit-identical to an uninterrupted run. For every optimizer and
every scheduler."""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.optim import lr_scheduler as ls


def save(tree: Any) -> tuple[str, bytes]:
    """Split a state into JSON text and an .npz blob of its arrays."""
    arrays: dict[str, np.ndarray] = {}

    def strip(x: Any) -> Any:
        if isinstance(x, ds.Tensor):
            x = x.detach().numpy()  # what a JSON + .npz checkpoint keeps of a Tensor
        if isinstance(x, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = x
            return {"__array__": key}
        if isinstance(x, dict):
            return {str(k): strip(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [strip(v) for v in x]
        assert x is None or isinstance(x, (bool, int, float, str)), f"not JSON-able: {type(x)}"
        return x

    text = json.dumps(strip(tree))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return text, buf.getvalue()


def load(text: str, blob: bytes) -> Any:
    arrays = np.load(io.BytesIO(blob), allow_pickle=False)

    def put(x: Any) -> Any:
        if isinstance(x, dict):
            if set(x) == {"__array__"}:
                return arrays[x["__array__"]]
            return {k: put(v) for k, v in x.items()}
        if isinstance(x, list):
            return [put(v) for v in x]
        return x

    return put(json.loads(text))


def _params(values: list[np.ndarray] | None = None) -> list[ds.Tensor]:
    if values is None:
        rng = np.random.default_rng(3)
        values = [rng.normal(0, 0.5, s).astype(np.float32) for s in [(3, 6), (6,), (6, 2), (2,)]]
    return [ds.tensor(v, requires_grad=True) for v in values]


_rng = np.random.default_rng(4)
X = ds.tensor(_rng.normal(size=(16, 3)))
Y = ds.tensor(_rng.normal(size=(16, 2)))


def _loss(p: list[ds.Tensor]) -> ds.Tensor:
    return ((((X @ p[0] + p[1]).tanh() @ p[2] + p[3]) - Y) ** 2).mean()


def _train(opt: Any, sched: Any, params: list[ds.Tensor], steps: int, start: int, skip_bias: bool) -> None:
    for i in range(start, start + steps):
        opt.zero_grad()
        loss = _loss(params)
        loss.backward()
        if skip_bias and i % 3 == 0:
            params[3].grad = None  # exercise the path for parameters without a gradient
        opt.step()
        if isinstance(sched, ls.ReduceLROnPlateau):
            sched.step(1.0 + 0.1 * math.sin(i))
        elif sched is not None:
            sched.step()


OPTIMIZERS = {
    "GD": lambda p: optim.GD(p, lr=0.1),
    "SGD": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "SGD-unflat": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, flat=False),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    "RMSprop": lambda p: optim.RMSprop(p, lr=1e-2, centered=True, momentum=0.5),
    "Adadelta": lambda p: optim.Adadelta(p),
    "Rprop": lambda p: optim.Rprop(p, lr=1e-2, etas=(0.4, 1.3)),
    "ASGD": lambda p: optim.ASGD(p, lr=1e-2, t0=3),
    "Adam": lambda p: optim.Adam(p, lr=1e-2, amsgrad=True, clip_norm=0.5),
    "AdamW": lambda p: optim.AdamW([{"params": p[::2]}, {"params": p[1::2], "weight_decay": 0.0}], lr=1e-2),
    "Adamax": lambda p: optim.Adamax(p, clip_value=0.1),
    "NAdam": lambda p: optim.NAdam(p, lr=1e-2),
    "RAdam": lambda p: optim.RAdam(p, lr=1e-2, decoupled_weight_decay=True, weight_decay=0.1),
    "Lion": lambda p: optim.Lion(p, lr=0.01, weight_decay=0.1),
    "chain": lambda p: optim.Optimizer.from_transform(
        p, optim.transforms.chain(optim.transforms.scale_by_adam(), optim.transforms.scale_by_lr()), lr=1e-2
    ),
}


def _roundtrip(make_opt: Any, make_sched: Any, skip_bias: bool = False, first: int = 7, second: int = 9) -> None:
    params = _params()
    opt = make_opt(params)
    sched = make_sched(opt) if make_sched else None
    _train(opt, sched, params, first, 0, skip_bias)
    snapshot = [p.detach().numpy().copy() for p in params]
    text, blob = save({"opt": opt.state_dict(), "sched": sched.state_dict() if sched else None})
    _train(opt, sched, params, second, first, skip_bias)

    resumed = _params(snapshot)
    opt2 = make_opt(resumed)
    sched2 = make_sched(opt2) if make_sched else None
    state = load(text, blob)
    opt2.load_state_dict(state["opt"])
    if sched2 is not None:
        sched2.load_state_dict(state["sched"])
    _train(opt2, sched2, resumed, second, first, skip_bias)
    for i, (a, b) in enumerate(zip(params, resumed)):
        np.testing.assert_array_equal(
            a.detach().numpy(), b.detach().numpy(), err_msg=f"parameter {i} differs after resuming"
        )
    if sched is not None:
        assert sched.get_last_lr() == sched2.get_last_lr()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_resumes_bit_identically(name: str) -> None:
    _roundtrip(OPTIMIZERS[name], None)


@pytest.mark.parametrize("name", ["SGD", "Adam", "NAdam", "RAdam", "SGD-unflat"])
def test_resume_with_missing_gradients(name: str) -> None:
    _roundtrip(OPTIMIZERS[name], None, skip_bias=True)


SCHEDULERS = {
    "LambdaLR": lambda o: ls.LambdaLR(o, lambda e: 1.0 / (1 + e)),
    "MultiplicativeLR": lambda o: ls.MultiplicativeLR(o, lambda e: 0.95),
    "StepLR": lambda o: ls.StepLR(o, 4, 0.5),
    "MultiStepLR": lambda o: ls.MultiStepLR(o, [3, 8, 8, 12]),
    "ConstantLR": lambda o: ls.ConstantLR(o, 0.5, total_iters=9),
    "LinearLR": lambda o: ls.LinearLR(o, 0.2, total_iters=10),
    "ExponentialLR": lambda o: ls.ExponentialLR(o, 0.9),
    "PolynomialLR": lambda o: ls.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingLR": lambda o: ls.CosineAnnealingLR(o, T_max=6, eta_min=1e-3),
    "CosineAnnealingWarmRestarts": lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "CyclicLR": lambda o: ls.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="triangular2"),
    "OneCycleLR": lambda o: ls.OneCycleLR(o, max_lr=0.1, total_steps=20, three_phase=True),
    "SequentialLR": lambda o: ls.SequentialLR(o, [ls.LinearLR(o, 0.1, total_iters=5), ls.ExponentialLR(o, 0.9)], [5]),
    "ChainedScheduler": lambda o: ls.ChainedScheduler([ls.StepLR(o, 3, 0.5), ls.ExponentialLR(o, 0.95)]),
    "ReduceLROnPlateau": lambda o: ls.ReduceLROnPlateau(o, patience=1, factor=0.5),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_scheduler_resumes_bit_identically(name: str, opt_name: str) -> None:
    _roundtrip(OPTIMIZERS[opt_name], SCHEDULERS[name])


def test_lbfgs_resumes_bit_identically() -> None:
    def run(opt: Any, params: list[ds.Tensor], steps: int) -> None:
        def closure() -> ds.Tensor:
            opt.zero_grad()
            loss = _loss(params)
            loss.backward()
            return loss

        for _ in range(steps):
            opt.step(closure)

    for kwargs in [{"max_iter": 4, "history_size": 3}, {"line_search_fn": "strong_wolfe", "max_iter": 5}]:
        params = _params()
        opt = optim.LBFGS(params, **kwargs)
        run(opt, params, 2)
        snapshot = [p.detach().numpy().copy() for p in params]
        text, blob = save(opt.state_dict())
        run(opt, params, 2)
        resumed = _params(snapshot)
        opt2 = optim.LBFGS(resumed, **kwargs)
        opt2.load_state_dict(load(text, blob))
        run(opt2, resumed, 2)
        for a, b in zip(params, resumed):
            np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_refers_to_parameters_by_position() -> None:
    params = _params()
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}])
    _train(opt, None, params, 2, 0, False)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert sd["state"][3]["step"] == 2
    assert sd["state"][2]["exp_avg"].shape == (6, 2)
    # copies, not views: training on does not change a saved state
    before = sd["state"][0]["exp_avg"].clone()
    _train(opt, None, params, 1, 2, False)
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), before.numpy())


def test_load_refuses_a_mismatched_state() -> None:
    opt = optim.Adam(_params())
    sd = opt.state_dict()
    other = optim.Adam(_params()[:3])
    with pytest.raises(ValueError, match="parameters"):
        other.load_state_dict(sd)
    two_groups = optim.Adam([{"params": _params()[:2]}, {"params": _params()[2:]}])
    with pytest.raises(ValueError, match="param group"):
        two_groups.load_state_dict(sd)
    sd["state"][0] = {"step": 1, "exp_avg": np.zeros(5, np.float32)}  # no entry before the first step
    with pytest.raises(ValueError, match="elements"):
        optim.Adam(_params()).load_state_dict(sd)


LACKS = "saved param group 0 lacks {loading}'s option"
SAVED_BY = "the state was saved by {saved}, which keeps the state"


@pytest.mark.parametrize(
    ("saved", "loading", "reason"),
    [
        # Adam's state loaded into SGD would silently set SGD's lr to Adam's and drop its momentum.
        ("Adam", "SGD", LACKS),
        ("SGD", "Adam", LACKS),
        ("Adagrad", "RMSprop", LACKS),
        ("RMSprop", "Adadelta", LACKS),
        ("SGD", "LBFGS", LACKS),
        # Adam's groups hold every option Lion has (lr, betas, weight_decay...): only the saved class
        # name tells them apart; Lion would otherwise take Adam's lr and read its exp_avg as momentum.
        ("Adam", "Lion", SAVED_BY),
        ("NAdam", "RAdam", SAVED_BY),  # RAdam keeps no mu_product: the layouts differ
    ],
)
def test_load_refuses_another_optimizers_state(saved: str, loading: str, reason: str) -> None:
    params = _params()
    src = getattr(optim, saved)(params, lr=0.01)
    _train(src, None, params, 2, 0, False)
    target = getattr(optim, loading)(_params(), lr=0.5)
    before = dict(target.state_dict()["param_groups"][0])
    message = f"{loading}.load_state_dict: " + reason.format(saved=saved, loading=loading)
    with pytest.raises(ValueError, match=re.escape(message)):
        target.load_state_dict(src.state_dict())
    assert target.state_dict()["param_groups"][0] == before  # refused before changing anything


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.5),
        lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
        lambda p: optim.RMSprop(p, lr=1e-2, centered=True, momentum=0.9),
    ],
)
def test_loading_an_earlier_state_forgets_later_state(make: Any) -> None:
    """Restore the state saved before a trial run (what an lr finder does): state created during
    the trial (momentum buffers, AMSGrad's running max) must not leak into the real run."""
    params = _params()
    opt = make(params)
    start = [p.detach().numpy().copy() for p in params]
    saved = load(*save(opt.state_dict()))
    _train(opt, None, params, 5, 0, False)  # the trial
    for p, s in zip(params, start):
        p.data.copy_(ds.tensor(s))
    opt.load_state_dict(saved)
    _train(opt, None, params, 6, 0, False)
    fresh_params = _params()
    _train(make(fresh_params), None, fresh_params, 6, 0, False)
    for a, b in zip(params, fresh_params):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


# ---------------------------------------------------------------------- PyTorch's layout
_TORCH_NAMED = ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "ASGD", "NAdam", "RAdam", "RMSprop", "Rprop"]


def _weights(lib, seed=0):
    rng = np.random.default_rng(seed)
    return [lib.nn.Parameter(lib.tensor(rng.standard_normal(s).astype(np.float32))) for s in ((3, 2), (4,))]


def _steps(opt, params, n, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        opt.zero_grad()
        loss = sum(((p * p).sum() * float(rng.uniform(0.5, 1.5))) for p in params)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", _TORCH_NAMED)
def test_param_groups_carry_torchs_keys_and_state_is_empty_before_the_first_step(name):
    torch = pytest.importorskip("torch")
    lr = {"lr": 0.1} if name == "SGD" else {}
    ours = getattr(optim, name)(_weights(ds), **lr).state_dict()
    theirs = getattr(torch.optim, name)(_weights(torch), **lr).state_dict()
    assert set(ours["param_groups"][0]) == set(theirs["param_groups"][0])
    for key in ("foreach", "fused", "capturable", "differentiable", "maximize", "params"):
        assert ours["param_groups"][0].get(key, "absent") == theirs["param_groups"][0].get(key, "absent"), key
    # as PyTorch's: empty, except Adagrad's, whose sums are made when it is built
    assert set(ours["state"]) == set(theirs["state"])
    assert {"state", "param_groups"} <= set(ours)


def test_torchs_kernel_flags_are_accepted_and_kept_in_the_groups():
    torch = pytest.importorskip("torch")
    flags = {"foreach": False, "capturable": True, "differentiable": False, "fused": None}
    ours = optim.Adam(_weights(ds), **flags).param_groups[0]
    theirs = torch.optim.Adam(_weights(torch), **flags).param_groups[0]
    assert {k: ours[k] for k in flags} == {k: theirs[k] for k in flags} == flags


@pytest.mark.parametrize("name, kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.05}),
                                          ("RMSprop", {"lr": 0.01, "momentum": 0.5})])  # fmt: skip
def test_a_torch_optimizers_state_dict_resumes_the_same_run(name, kwargs):
    """PyTorch's own state_dict, its tensors read as arrays: downslope continues PyTorch's run."""
    torch = pytest.importorskip("torch")
    theirs = _weights(torch)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    _steps(topt, theirs, 3)
    sd = topt.state_dict()
    converted = {
        "state": {
            k: {n: v.detach().numpy() if hasattr(v, "numpy") else v for n, v in e.items()}
            for k, e in sd["state"].items()
        },
        "param_groups": sd["param_groups"],
    }
    ours = [ds.nn.Parameter(ds.tensor(p.detach().numpy())) for p in theirs]
    opt = getattr(optim, name)(ours, **kwargs)
    opt.load_state_dict(converted)
    _steps(topt, theirs, 2, seed=5)
    _steps(opt, ours, 2, seed=5)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"amsgrad": True})])
def test_old_and_torch_format_dicts_load_as_the_full_one(name, kwargs):
    reference = _weights(ds)
    opt = getattr(optim, name)(reference, **kwargs)
    _steps(opt, reference, 2)
    full = opt.state_dict()
    torch_format = {"state": full["state"], "param_groups": full["param_groups"]}
    old_format = {**full, "param_groups": [{k: v for k, v in g.items() if k not in ("foreach", "fused",
                                            "capturable", "differentiable")} for g in full["param_groups"]]}  # fmt: skip
    start = [p.detach().numpy().copy() for p in reference]
    _steps(opt, reference, 2, seed=7)
    for saved in (full, torch_format, old_format):
        params = [ds.nn.Parameter(ds.tensor(a)) for a in start]
        other = getattr(optim, name)(params, **kwargs)
        other.load_state_dict(saved)
        _steps(other, params, 2, seed=7)
        for a, b in zip(params, reference):
            np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_loading_a_state_saved_before_the_first_step_starts_afresh():
    params = _weights(ds)
    fresh = optim.Adam(params, lr=0.1).state_dict()
    stepped = optim.Adam(params, lr=0.1)
    _steps(stepped, params, 3)
    stepped.load_state_dict(fresh)
    start = [p.detach().numpy().copy() for p in params]
    _steps(stepped, params, 1, seed=9)
    again = [ds.nn.Parameter(ds.tensor(a)) for a in start]
    _steps(optim.Adam(again, lr=0.1), again, 1, seed=9)
    for a, b in zip(params, again):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_a_torch_format_dict_with_state_this_optimizer_does_not_keep_is_refused():
    opt = optim.SGD(_weights(ds), lr=0.1, momentum=0.9)
    saved = {
        "state": {0: {"step": 1, "exp_avg": np.zeros((3, 2), np.float32)}},
        "param_groups": opt.state_dict()["param_groups"],
    }
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(saved)


# ---------------------------------------------------------------------- opt.state, as torch code uses it
def _adam_pair(torch: Any) -> tuple[Any, Any, Any, Any]:
    w0 = np.random.default_rng(0).standard_normal(5)
    ours, theirs = ds.tensor(w0, dtype="float64", requires_grad=True), torch.tensor(w0, requires_grad=True)
    return ours, theirs, optim.AdamW([ours], lr=0.1), torch.optim.AdamW([theirs], lr=0.1)


def _adam_steps(ours: Any, theirs: Any, opt: Any, topt: Any, n: int) -> None:
    for _ in range(n):
        opt.zero_grad(), topt.zero_grad()
        (ours**3).sum().backward()
        (theirs**3).sum().backward()
        opt.step(), topt.step()


def test_state_values_are_tensors_sharing_the_optimizers_buffers_as_torch() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs, opt, topt = _adam_pair(torch)
    _adam_steps(ours, theirs, opt, topt, 2)
    assert sorted(opt.state[ours]) == sorted(topt.state[theirs]) == ["exp_avg", "exp_avg_sq", "step"]
    for key in ("exp_avg", "exp_avg_sq"):
        value = opt.state[ours][key]
        assert isinstance(value, ds.Tensor) and value.shape == ours.shape and not value.requires_grad
        np.testing.assert_allclose(value.detach().numpy(), topt.state[theirs][key].detach().numpy(), rtol=1e-12)
    assert opt.state[ours]["step"] == int(topt.state[theirs]["step"]) == 2
    snapshot = opt.state[ours]["exp_avg"].clone()  # an independent copy, as in torch
    # torch code resets moments in place: the next steps must use the reset state in both libraries
    opt.state[ours]["exp_avg"].zero_()
    topt.state[theirs]["exp_avg"].zero_()
    opt.state[ours]["exp_avg_sq"].mul_(0.5)
    topt.state[theirs]["exp_avg_sq"].mul_(0.5)
    assert (
        np.abs(snapshot.detach().numpy()).max() > 0 and np.abs(opt.state[ours]["exp_avg"].detach().numpy()).max() == 0
    )
    _adam_steps(ours, theirs, opt, topt, 2)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        opt.state[ours]["exp_avg"].detach().numpy(), topt.state[theirs]["exp_avg"].detach().numpy(), rtol=1e-12
    )


def test_state_dict_holds_host_tensor_copies_and_the_count_apart() -> None:
    w = ds.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    sd = opt.state_dict()
    entry = sd["state"][0]
    assert sorted(entry) == ["momentum_buffer"]  # PyTorch's SGD state: no step count
    assert isinstance(entry["momentum_buffer"], ds.Tensor) and type(entry["momentum_buffer"].array) is np.ndarray
    assert sd["counts"] == {0: 1}
    entry["momentum_buffer"].fill_(7.0)  # a copy: the optimizer is unchanged
    assert opt.state[w]["momentum_buffer"].tolist() == [2.0, 2.0, 2.0]
    assert "count" not in opt.state[w]


def test_a_torch_state_dict_with_bfloat16_moments_loads() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs, opt, topt = _adam_pair(torch)
    _adam_steps(ours, theirs, opt, topt, 1)
    sd = topt.state_dict()
    sd["state"][0] = {k: (v.bfloat16() if k.startswith("exp") else v) for k, v in sd["state"][0].items()}
    opt.load_state_dict(sd)
    np.testing.assert_array_equal(
        opt.state[ours]["exp_avg"].detach().numpy(), sd["state"][0]["exp_avg"].double().detach().numpy()
    )


@pytest.mark.parametrize(
    ("saved", "saved_kw", "loading", "loading_kw"),
    [
        ("Adam", {}, "AdamW", {"weight_decay": 0.1}),
        ("AdamW", {"weight_decay": 0.1}, "Adam", {}),
        ("Adam", {"amsgrad": True}, "AdamW", {"amsgrad": True}),
        ("Adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, "AdamW", {}),
        ("Adam", {}, "RAdam", {}),  # the same two moments and step: PyTorch loads them too
    ],
)
def test_load_another_class_keeping_the_same_state_as_torch(
    saved: str, saved_kw: dict[str, Any], loading: str, loading_kw: dict[str, Any]
) -> None:
    """Resuming an Adam checkpoint with AdamW (or back): the same state, so it loads, the saved groups'
    options (decoupled_weight_decay, weight_decay) replacing the new optimizer's, as in PyTorch."""
    torch = pytest.importorskip("torch")

    def run(L: Any) -> list[float]:
        p = L.nn.Parameter(L.tensor([1.0, -2.0, 0.5], dtype=L.float64))
        first = getattr(L.optim, saved)([p], lr=0.1, **saved_kw)
        for _ in range(3):
            first.zero_grad()
            (p**2).sum().backward()
            first.step()
        second = getattr(L.optim, loading)([p], lr=0.05, **loading_kw)
        second.load_state_dict(first.state_dict())
        for _ in range(3):
            second.zero_grad()
            (p**2).sum().backward()
            second.step()
        return p.tolist()

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12, atol=1e-14)
