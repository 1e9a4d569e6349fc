"""A parameter listed twice in one group (tied weights collected twice): PyTorch warns and its loop over
the group updates the parameter once per listing, on one state."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim

torch = pytest.importorskip("torch")

# SGD with momentum: PyTorch's first step makes the buffer twice from the gradient (the listings'
# buffers are read before its loop); see test_duplicate_param_groups.py
NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "RAdam", "Adamax", "Adadelta", "Rprop", "Adafactor"]


def _train(L: Any, name: str, steps: int, flat: bool | None = None, state: Any = None) -> tuple[list[float], Any]:
    w = L.nn.Parameter(L.tensor([1.0, -2.0, 0.5], dtype=L.float64))
    b = L.nn.Parameter(L.tensor([0.3], dtype=L.float64))
    extra = {} if flat is None else {"flat": flat}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        opt = getattr(L.optim, name)([w, b, w], lr=0.1, **extra)
    if state is not None:
        w.data.copy_(L.tensor(state[0], dtype=L.float64))
        b.data.copy_(L.tensor(state[1], dtype=L.float64))
        opt.load_state_dict(state[2])
    for _ in range(steps):
        opt.zero_grad()
        ((w**2).sum() * b).backward()
        opt.step()
    return w.tolist() + b.tolist(), (w.tolist(), b.tolist(), opt.state_dict())


@pytest.mark.parametrize("flat", [None, False])
@pytest.mark.parametrize("name", NAMES)
def test_duplicate_parameter_is_updated_once_per_listing_as_torch(name: str, flat: bool | None) -> None:
    ours, _ = _train(ds, name, 3, flat)
    ref, _ = _train(torch, name, 3)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["Adam", "Adafactor"])
def test_duplicate_parameter_state_dict_round_trip(name: str) -> None:
    straight, _ = _train(ds, name, 4)
    _, saved = _train(ds, name, 2)
    resumed, _ = _train(ds, name, 2, state=saved)
    np.testing.assert_allclose(resumed, straight, rtol=1e-12)


def test_duplicate_parameter_warns_torchs_words() -> None:
    w = ds.nn.Parameter(ds.ones(2))
    with pytest.warns(UserWarning) as ours:
        optim.SGD([w, w], lr=0.1)
    with pytest.warns(UserWarning) as ref:
        tw = torch.nn.Parameter(torch.ones(2))
        torch.optim.SGD([tw, tw], lr=0.1)
    assert [str(r.message) for r in ours] == [str(r.message) for r in ref]
