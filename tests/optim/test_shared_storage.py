"""Parameters sharing memory (weight tying by ``.data``, a parameter viewing another) keep sharing it
once an optimizer is built, and train as PyTorch trains them: each update applied to the one storage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.optim.buckets import InPlaceBucket

torch = pytest.importorskip("torch")

W = np.random.default_rng(3).standard_normal((4, 4)) * 0.5
X = np.random.default_rng(4).standard_normal((6, 4))


@pytest.mark.parametrize("flat", [True, False])
def test_building_an_optimizer_keeps_storage_shared(flat: bool) -> None:
    a, b = ds.nn.Linear(3, 3, bias=False), ds.nn.Linear(3, 3, bias=False)
    b.weight.data = a.weight.data
    v = ds.nn.Parameter(a.weight.data[0])  # a parameter viewing another's storage, outside the optimizer
    ds.optim.SGD([a.weight, b.weight], lr=0.1, flat=flat)
    with ds.no_grad():
        a.weight.mul_(0)
    assert bool((b.weight == 0).all()) and bool((v == 0).all())


def _tied_run(lib: Any, make: Any, view: bool) -> list[np.ndarray]:
    lib.manual_seed(0)
    m = lib.nn.Sequential(lib.nn.Linear(4, 4, bias=False), lib.nn.Tanh(), lib.nn.Linear(4, 4)).double()
    with lib.no_grad():
        m[0].weight.copy_(lib.tensor(W, dtype=lib.float64))
        m[2].bias.copy_(lib.tensor(W[0], dtype=lib.float64))
    m[2].weight.data = m[0].weight.data  # old-style storage tying
    params = list(m.parameters())
    extra = lib.nn.Parameter(m[0].weight.data[1]) if view else None
    if extra is not None:
        params.append(extra)
    opt = make(lib, params)
    x = lib.tensor(X, dtype=lib.float64)
    out = []
    for _ in range(5):
        opt.zero_grad()
        loss = (m(x) ** 2).mean()
        if extra is not None:
            loss = loss + (extra**3).sum()
        loss.backward()
        opt.step()
        out.append(np.concatenate([p.detach().numpy().ravel() for p in params]).copy())
    return out


MAKERS = {
    "sgd-momentum": lambda lib, ps: lib.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "adam": lambda lib, ps: lib.optim.Adam(ps, lr=0.05, weight_decay=0.01),
    "adam-groups": lambda lib, ps: lib.optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}], lr=0.05),
    "rmsprop": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01, momentum=0.5),
}


@pytest.mark.parametrize("view", [False, True], ids=["tied", "tied+view"])
@pytest.mark.parametrize("name", list(MAKERS))
def test_tied_training_matches_torch(name: str, view: bool) -> None:
    ours = _tied_run(ds, MAKERS[name], view)
    theirs = _tied_run(torch, MAKERS[name], view)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_only_shared_parameters_leave_the_flat_buffers() -> None:
    m = ds.nn.Sequential(ds.nn.Linear(3, 3), ds.nn.Linear(3, 3))
    m[1].weight.data = m[0].weight.data
    opt = ds.optim.Adam(m.parameters(), lr=0.1)
    in_place = [b.params[0] for b in opt._buckets[0] if isinstance(b, InPlaceBucket)]
    assert [id(p) for p in in_place] == [id(m[0].weight), id(m[1].weight)]
    # a second optimizer over the same model (its parameters now view the first one's buffer) stays flat
    plain = ds.nn.Sequential(ds.nn.Linear(3, 3), ds.nn.Linear(3, 3))
    ds.optim.SGD(plain.parameters(), lr=0.1)
    second = ds.optim.Adam(plain.parameters(), lr=0.1)
    assert not any(isinstance(b, InPlaceBucket) for b in second._buckets[0])


def test_a_group_added_later_that_views_a_parameter_shares_it() -> None:
    def run(lib: Any) -> list[float]:
        w = lib.nn.Parameter(lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64))
        opt = lib.optim.SGD([w], lr=0.1, momentum=0.5)
        v = lib.nn.Parameter(w.data[1:])
        opt.add_param_group({"params": [v], "lr": 0.2})
        for _ in range(3):
            opt.zero_grad()
            ((w**2).sum() + (v**3).sum()).backward()
            opt.step()
        return [*w.detach().tolist(), *v.detach().tolist()]

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)


def test_tied_state_round_trips() -> None:
    a, b = ds.nn.Linear(2, 2, bias=False), ds.nn.Linear(2, 2, bias=False)
    b.weight.data = a.weight.data
    opt = ds.optim.Adam([a.weight, b.weight], lr=0.1)
    (a.weight.sum() + (b.weight**2).sum()).backward()
    opt.step()
    saved = opt.state_dict()
    again = ds.optim.Adam([a.weight, b.weight], lr=0.1)
    again.load_state_dict(saved)
    assert again.state_dict()["state"][1]["exp_avg"].tolist() == saved["state"][1]["exp_avg"].tolist()
    assert a.weight.array is b.weight.array
