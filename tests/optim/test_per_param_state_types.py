"""Adafactor, Muon and SparseAdam keep their state_dict values as PyTorch types them: Tensors for
the moments, Adafactor's step a float32 0-d Tensor, SparseAdam's step an int; and each loads
back (its own, or PyTorch's converted with ``.numpy()``) to continue the same run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
_VALUES = [_RNG.standard_normal((4, 3)).astype(np.float32), _RNG.standard_normal(3).astype(np.float32)]


def _steps(lib: Any, name: str, params: list[Any], opt: Any, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        for p in params:
            g = rng.standard_normal(tuple(p.shape)).astype(np.float32)
            if g.ndim == 2:
                g[::2] = 0
            t = lib.tensor(g)
            p.grad = t.to_sparse(1) if (lib is torch and name == "SparseAdam") else t
        opt.step()


def _make(lib: Any, name: str) -> tuple[list[Any], Any]:
    values = _VALUES[:1] if name == "Muon" else _VALUES  # Muon takes matrices only
    params = [lib.tensor(v.copy(), requires_grad=True) for v in values]
    return params, getattr(lib.optim, name)(params, lr=0.05)


@pytest.mark.parametrize("name", ["Adafactor", "Muon", "SparseAdam"])
def test_state_dict_values_have_torchs_types(name: str) -> None:
    ours, opt = _make(ds, name)
    theirs, topt = _make(torch, name)
    _steps(ds, name, ours, opt, 2, seed=1)
    _steps(torch, name, theirs, topt, 2, seed=1)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["state"].keys() == tsd["state"].keys()
    for pos, entry in tsd["state"].items():
        assert sd["state"][pos].keys() == entry.keys()
        for key, value in entry.items():
            got = sd["state"][pos][key]
            if isinstance(value, torch.Tensor):
                assert isinstance(got, ds.Tensor), (key, type(got))
                assert (
                    got.shape == tuple(value.shape) and str(got.dtype).split(".")[-1] == str(value.dtype).split(".")[-1]
                )
                np.testing.assert_allclose(got.numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
            else:
                assert type(got) is type(value) and got == value, key
    for p, tp in zip(ours, theirs):  # .state holds the same kinds
        assert {k: type(v) is ds.Tensor for k, v in opt.state[p].items()} == {
            k: isinstance(v, torch.Tensor) for k, v in topt.state[tp].items()
        }


@pytest.mark.parametrize("name", ["Adafactor", "Muon", "SparseAdam"])
def test_its_own_and_torchs_state_dict_continue_the_run(name: str, tmp_path: Any) -> None:
    ours, opt = _make(ds, name)
    _steps(ds, name, ours, opt, 3, seed=1)
    ds.save(opt.state_dict(), tmp_path / "opt.pt")
    resumed = [ds.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ours]
    again = getattr(optim, name)(resumed, lr=0.05)
    again.load_state_dict(ds.load(tmp_path / "opt.pt"))
    _steps(ds, name, ours, opt, 3, seed=2)
    _steps(ds, name, resumed, again, 3, seed=2)
    for a, b in zip(resumed, ours):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())

    theirs, topt = _make(torch, name)
    _steps(torch, name, theirs, topt, 3, seed=1)
    converted = {
        "state": {k: {n: ds.from_numpy(v.numpy()) if isinstance(v, torch.Tensor) else v for n, v in e.items()}
                  for k, e in topt.state_dict()["state"].items()},
        "param_groups": topt.state_dict()["param_groups"],
    }  # fmt: skip
    mine = [ds.tensor(p.detach().numpy().copy(), requires_grad=True) for p in theirs]
    follow = getattr(optim, name)(mine, lr=0.05)
    follow.load_state_dict(converted)
    _steps(torch, name, theirs, topt, 3, seed=2)
    _steps(ds, name, mine, follow, 3, seed=2)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
