"""A child module's own train(), _apply() and state_dict() run when the parent's are called, as in
PyTorch (frozen BatchNorm kept in eval, LoRA merging on eval(), a float32 cache kept through .double(),
a wrapper renaming its keys)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _frozen_bn_model(lib: Any) -> Any:
    class FrozenBN(lib.nn.BatchNorm1d):
        def train(self, mode: bool = True) -> Any:  # mmdetection's norm_eval: statistics stay frozen
            return super().train(False)

    return lib.nn.Sequential(lib.nn.Linear(3, 3), FrozenBN(3))


def test_parent_train_calls_each_childs_own_train_as_torch() -> None:
    x = np.random.RandomState(0).randn(4, 3).astype(np.float32)
    ours, theirs = _frozen_bn_model(ds), _frozen_bn_model(torch)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.train(), theirs.train()
    assert ours[1].training is theirs[1].training is False and ours[0].training is True
    np.testing.assert_allclose(ours(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5)
    np.testing.assert_array_equal(ours[1].running_mean.numpy(), theirs[1].running_mean.numpy())  # not updated


def test_a_childs_apply_override_runs_on_casts_and_moves() -> None:
    calls = []

    class KeepsCache(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = ds.nn.Linear(2, 2)
            self.cache = ds.ones(3)  # a plain attribute: only the override casts it

        def _apply(self, fn: Any, recurse: bool = True) -> Any:
            calls.append("_apply")
            self.cache = fn(self.cache)
            return super()._apply(fn, recurse)

    model = ds.nn.Sequential(KeepsCache())
    opt = ds.optim.SGD(model.parameters(), lr=0.1)
    weight = model[0].lin.weight
    model.double()
    assert calls == ["_apply"] and model[0].cache.dtype == np.float64
    assert model[0].lin.weight is weight and weight.dtype == np.float64  # the same Parameter, cast in place
    model.to("cpu").float()
    assert calls == ["_apply"] * 3 and model[0].cache.dtype == np.float32
    model[0].lin(ds.ones(1, 2)).sum().backward()
    opt.step()


def test_a_childs_state_dict_override_is_called_as_torch() -> None:
    def build(lib: Any) -> Any:
        class Renamed(lib.nn.Linear):
            def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
                out = super().state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
                out[prefix + "renamed"] = out.pop(prefix + "weight")
                return out

        return lib.nn.Sequential(lib.nn.Linear(2, 2), Renamed(2, 2))

    want = ["0.weight", "0.bias", "1.bias", "1.renamed"]
    assert list(build(ds).state_dict()) == list(build(torch).state_dict()) == want
