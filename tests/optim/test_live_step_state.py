"""``opt.state[p]["step"]`` (and NAdam's ``mu_product``) are live, as PyTorch's 0-d tensors: an in-place
write into them (``.zero_()``, ``.add_()``, ``.fill_()``, ``.mul_()``) is what the next step reads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host

torch = pytest.importorskip("torch")

_STEPPED = [
    ("Adam", {"lr": 0.1}),
    ("AdamW", {"lr": 0.1}),
    ("NAdam", {"lr": 0.1}),
    ("RAdam", {"lr": 0.1}),
    ("Adamax", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1}),
    ("ASGD", {"lr": 0.1, "t0": 2}),
    ("Adafactor", {"lr": 0.1}),
]

_W0 = [np.linspace(-1.0, 1.5, 6).reshape(2, 3), np.array([0.5, -0.25, 2.0]), np.array([1.5])]


def _params(lib: Any) -> list[Any]:
    return [lib.nn.Parameter(lib.tensor(w, dtype=lib.float64)) for w in _W0]


def _step(lib: Any, opt: Any, ps: list[Any], skip_last: bool = False) -> None:
    opt.zero_grad()
    used = ps[:-1] if skip_last else ps
    sum(((p - 0.3) ** 4).sum() + p.sum() for p in used).backward()
    opt.step()


def _run(lib: Any, name: str, kwargs: dict[str, Any], edit: Any, keep: bool, skip_last: bool) -> list[np.ndarray]:
    ps = _params(lib)
    opt = getattr(lib.optim, name)(ps, **kwargs)
    for _ in range(3):
        _step(lib, opt, ps, skip_last)
    held = opt.state[ps[0]]["step"]  # a reference kept across a step, then written
    if keep:
        _step(lib, opt, ps, skip_last)
    edit(held if keep else opt.state[ps[0]]["step"])
    for _ in range(3):
        _step(lib, opt, ps, skip_last)
    out = [p.detach().numpy().copy() if lib is torch else to_host(p.detach().numpy()).copy() for p in ps]
    out.append(np.array([float(opt.state[p]["step"]) for p in ps[:1]]))
    return out


_EDITS = {
    "zero_": lambda s: s.zero_(),
    "add_": lambda s: s.add_(4),
    "fill_": lambda s: s.fill_(1),
}


@pytest.mark.parametrize("name, kwargs", _STEPPED)
@pytest.mark.parametrize("edit", sorted(_EDITS))
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("skip_last", [False, True])
def test_an_in_place_write_to_state_step_is_what_the_next_step_reads(name, kwargs, edit, keep, skip_last):  # type: ignore[no-untyped-def]
    if name == "Adafactor" and not hasattr(torch.optim, "Adafactor"):
        pytest.skip("this torch has no Adafactor")
    ours = _run(ds, name, kwargs, _EDITS[edit], keep, skip_last)
    theirs = _run(torch, name, kwargs, _EDITS[edit], keep, skip_last)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def _nadam(lib: Any, unused: bool, which: int) -> list[np.ndarray]:
    ps = _params(lib)
    opt = lib.optim.NAdam(ps, lr=0.1)
    for _ in range(2):
        _step(lib, opt, ps, skip_last=unused)
    opt.state[ps[which]]["mu_product"].mul_(0.5)
    for _ in range(3):
        _step(lib, opt, ps, skip_last=unused)
    out = [np.asarray(p.detach().numpy(), dtype=np.float64).copy() for p in ps]
    out.append(np.array([float(opt.state[p]["mu_product"]) for p in ps if p in opt.state]))
    return out


@pytest.mark.parametrize("unused", [False, True])
@pytest.mark.parametrize("which", [0, 1])
def test_an_in_place_write_to_nadams_mu_product_changes_that_parameter_only(unused, which):  # type: ignore[no-untyped-def]
    for a, b in zip(_nadam(ds, unused, which), _nadam(torch, unused, which)):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # mu_product is float32 in both


def test_state_step_is_a_float32_zero_dim_tensor_as_torchs():  # type: ignore[no-untyped-def]
    ps = _params(ds)
    opt = ds.optim.Adam(ps, lr=0.1)
    _step(ds, opt, ps)
    step = opt.state[ps[0]]["step"]
    assert step.shape == () and step.dtype == ds.float32 and float(step) == 1.0
    assert float(opt.state_dict()["state"][0]["step"]) == 1.0
