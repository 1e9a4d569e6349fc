"""A built-in optimizer's ``state`` behaves as PyTorch's: empty until a step, any key storable (and
saved), the whole state assignable, the step count settable alone, tensor hyperparameters taken."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _w(lib: Any) -> Any:
    return lib.nn.Parameter(lib.tensor([1.0, -2.0], dtype=lib.float64))


def _loss(lib: Any, w: Any) -> Any:
    return (w**2 * lib.tensor([1.0, 3.0], dtype=lib.float64)).sum()


def test_state_is_empty_until_a_step() -> None:
    w, v = _w(ds), _w(ds)
    opt = ds.optim.Adam([w, v], lr=0.1)
    assert len(opt.state) == 0 and "exp_avg" not in opt.state[w] and len(opt.state[w]) == 0
    _loss(ds, w).backward()
    opt.step()
    assert sorted(opt.state[w]) == ["exp_avg", "exp_avg_sq", "step"] and len(opt.state[v]) == 0
    assert sorted(opt.state_dict()["state"]) == [0, 1] and opt.state_dict()["state"][1] == {}


def test_adagrad_has_state_when_built_as_pytorchs() -> None:
    for lib in (ds, torch):
        w = _w(lib)
        opt = lib.optim.Adagrad([w], lr=0.1, initial_accumulator_value=0.5)
        assert sorted(opt.state[w]) == ["step", "sum"] and float(opt.state[w]["step"]) == 0.0


def test_user_keys_are_stored_and_round_trip() -> None:
    w = _w(ds)
    opt = ds.optim.Adam([w], lr=0.1)
    opt.state[w]["ema"] = ds.zeros(2, dtype=ds.float64)  # before any step
    _loss(ds, w).backward()
    opt.step()
    opt.state[w]["ema"].add_(w.detach())
    opt.state[w]["note"] = "kept"
    assert sorted(opt.state[w]) == ["ema", "exp_avg", "exp_avg_sq", "note", "step"]
    saved = opt.state_dict()
    assert saved["state"][0]["note"] == "kept" and saved["state"][0]["ema"].tolist() == w.tolist()
    again = ds.optim.Adam([w], lr=0.1)
    again.load_state_dict(saved)
    assert again.state[w]["ema"].tolist() == w.tolist() and again.state[w]["note"] == "kept"
    del again.state[w]["note"]
    assert "note" not in again.state_dict()["state"][0]
    sgd = ds.optim.SGD([w], lr=0.1)
    sgd.state[w]["step"] = 3  # SGD keeps no step count: the key is the user's, as in PyTorch
    assert sgd.state_dict()["state"][0] == {"step": 3}


def test_another_optimizers_buffers_are_still_refused_on_load() -> None:
    w = _w(ds)
    opt = ds.optim.SGD([w], lr=0.1, momentum=0.9)
    saved = {"state": {0: {"step": 1, "exp_avg": np.zeros(2)}}, "param_groups": opt.state_dict()["param_groups"]}
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(saved)


def _lookahead(lib: Any) -> type:
    class Lookahead(lib.optim.Optimizer):  # timm's, imports changed only
        def __init__(self, base_optimizer: Any, alpha: float = 0.5, k: int = 6) -> None:
            self._optimizer_step_pre_hooks: Any = OrderedDict()
            self._optimizer_step_post_hooks: Any = OrderedDict()
            defaults = dict(lookahead_alpha=alpha, lookahead_k=k, lookahead_step=0)
            self._base_optimizer = base_optimizer
            self.param_groups = base_optimizer.param_groups
            self.defaults = base_optimizer.defaults
            self.defaults.update(defaults)
            self.state = defaultdict(dict)
            for name, default in defaults.items():
                for group in self._base_optimizer.param_groups:
                    group.setdefault(name, default)

        @lib.no_grad()
        def update_slow(self, group: Any) -> None:
            for fast_p in group["params"]:
                if fast_p.grad is None:
                    continue
                param_state = self._base_optimizer.state[fast_p]
                if "lookahead_slow_buff" not in param_state:
                    param_state["lookahead_slow_buff"] = lib.empty_like(fast_p)
                    param_state["lookahead_slow_buff"].copy_(fast_p)
                slow = param_state["lookahead_slow_buff"]
                slow.add_(fast_p - slow, alpha=group["lookahead_alpha"])
                fast_p.copy_(slow)

        @lib.no_grad()
        def step(self, closure: Any = None) -> Any:
            loss = self._base_optimizer.step(closure)
            for group in self._base_optimizer.param_groups:
                group["lookahead_step"] += 1
                if group["lookahead_step"] % group["lookahead_k"] == 0:
                    self.update_slow(group)
            return loss

    return Lookahead


def test_timm_lookahead_matches_torch() -> None:
    def run(lib: Any) -> tuple[list[float], list[float]]:
        w = _w(lib)
        opt = _lookahead(lib)(lib.optim.Adam([w], lr=0.1), k=2)
        assert isinstance(opt.state, defaultdict)
        for _ in range(7):
            opt.zero_grad()
            _loss(lib, w).backward()
            opt.step()
        base = opt._base_optimizer
        restored = lib.optim.Adam([w], lr=0.1)
        restored.load_state_dict(base.state_dict())
        return w.detach().tolist(), restored.state[w]["lookahead_slow_buff"].tolist()

    ours, theirs = run(ds), run(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_assigning_a_fresh_state_resets_as_pytorchs(name: str) -> None:
    def run(lib: Any) -> list[float]:
        w = _w(lib)
        kw = {"lr": 0.05, "momentum": 0.9} if name != "Adam" else {"lr": 0.05}
        opt = getattr(lib.optim, name)([w], **kw)
        out = []
        for i in range(6):
            if i == 3:
                opt.state = defaultdict(dict)  # the RL / continual-learning reset idiom
                assert len(opt.state) == 0
            opt.zero_grad()
            _loss(lib, w).backward()
            opt.step()
            out += w.detach().tolist()
        return out

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)


def test_subclass_with_its_own_step_and_state_matches_torch() -> None:
    def run(lib: Any) -> tuple[list[float], list[float]]:
        class MyAdam(lib.optim.Adam):
            @lib.no_grad()
            def step(self, closure: Any = None) -> Any:
                for g in self.param_groups:
                    for p in g["params"]:
                        st = self.state[p]
                        if len(st) == 0:
                            st["step"] = 0
                            st["m"] = lib.zeros_like(p)
                        st["m"].mul_(0.9).add_(p.grad, alpha=0.1)
                        p.add_(st["m"], alpha=-g["lr"])

        class EmaAdam(lib.optim.Adam):
            def step(self, closure: Any = None) -> Any:
                loss = super().step(closure)
                for p in self.param_groups[0]["params"]:
                    ema = self.state[p].get("ema")
                    self.state[p]["ema"] = p.detach().clone() if ema is None else ema * 0.5 + p.detach() * 0.5
                return loss

        w, v = _w(lib), _w(lib)
        a, b = MyAdam([w], lr=0.1), EmaAdam([v], lr=0.1)
        for _ in range(4):
            for opt, p in ((a, w), (b, v)):
                opt.zero_grad()
                _loss(lib, p).backward()
                opt.step()
        return w.detach().tolist() + v.detach().tolist(), b.state[v]["ema"].tolist()

    ours, theirs = run(ds), run(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
        ("Rprop", {"lr": 0.01}),
        ("ASGD", {"lr": 0.05, "t0": 1}),
        ("Adam", {"lr": 0.01}),
        ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ],
)
def test_setting_the_step_count_restarts_the_count_only(name: str, kw: dict[str, Any]) -> None:
    def run(lib: Any) -> list[float]:
        w = _w(lib)
        opt = getattr(lib.optim, name)([w], **kw)
        for i in range(4):
            opt.zero_grad()
            _loss(lib, w).backward()
            opt.step()
            if i == 1:
                opt.state[w]["step"] = lib.tensor(0.0)
        return w.detach().tolist()

    # both at the default dtype float32: ASGD's eta and mu are float32 numbers in both (float64 parameters)
    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-13)


def test_tensor_hyperparameters_are_taken() -> None:
    def run(lib: Any) -> list[float]:
        w = _w(lib)
        t = lambda x: lib.tensor(x, dtype=lib.float64)  # noqa: E731
        opt = lib.optim.Adam([w], lr=t(0.1), betas=(t(0.9), t(0.99)), weight_decay=t(0.01))
        sgd = lib.optim.SGD([_w(lib)], lr=t(0.1), momentum=t(0.9))
        assert float(sgd.param_groups[0]["momentum"]) == 0.9
        for _ in range(3):
            opt.zero_grad()
            _loss(lib, w).backward()
            opt.step()
        return w.detach().tolist()

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)
    with pytest.raises(ValueError, match="1-element"):
        ds.optim.Adam([_w(ds)], betas=(ds.ones(2), 0.9))
