"""ASGD's state as PyTorch keeps it: ``eta`` and ``mu`` one 0-d number per parameter (``ax`` shaped
like the parameter), in ``opt.state`` and in ``state_dict``, with the trajectory PyTorch's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _torch_float64() -> Iterator[None]:
    # ASGD keeps eta and mu in the default dtype (float32 unless set): float64 here in both libraries, as
    # the parameters (under float32 both round them to float32: tests/optim/test_complex_params.py)
    before, ours = torch.get_default_dtype(), ds.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    ds.set_default_dtype(ds.float64)
    yield
    torch.set_default_dtype(before)
    ds.set_default_dtype(ours)


def _params(lib: Any) -> list[Any]:
    rng = np.random.default_rng(3)
    return [lib.tensor(rng.standard_normal(s), dtype=lib.float64, requires_grad=True) for s in ((3, 2), (4,), (1,))]


def _step(lib: Any, opt: Any, params: list[Any], i: int, skip: int | None = None) -> None:
    opt.zero_grad()
    loss = sum(((p - 0.3 * (k + 1)) ** 4).sum() * (1.0 + 0.1 * i) for k, p in enumerate(params) if k != skip)
    loss.backward()
    opt.step()


def _value(v: Any) -> np.ndarray:
    if isinstance(v, ds.Tensor):
        return np.asarray(to_host(v.detach().array))
    return v.detach().numpy()


def _run(lib: Any, n: int = 6, **kw: Any) -> tuple[list[Any], Any]:
    params = _params(lib)
    opt = lib.optim.ASGD(params, lr=0.05, t0=2, lambd=1e-2, **kw)
    for i in range(n):
        _step(lib, opt, params, i, skip=2 if i == 1 else None)  # the last parameter misses a step
    return params, opt


def test_state_view_and_state_dict_have_torchs_shapes_and_values() -> None:
    (ours, opt), (theirs, topt) = _run(ds), _run(torch)
    for p, tp in zip(ours, theirs):
        entry, tentry = opt.state[p], topt.state[tp]
        assert sorted(entry) == sorted(tentry)
        for key in tentry:
            assert tuple(entry[key].shape) == tuple(tentry[key].shape), key
            np.testing.assert_allclose(_value(entry[key]), _value(tentry[key]), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(_value(p), _value(tp), rtol=1e-12)
    saved, tsaved = opt.state_dict()["state"], topt.state_dict()["state"]
    for pos in tsaved:
        for key in tsaved[pos]:
            assert tuple(saved[pos][key].shape) == tuple(tsaved[pos][key].shape), key
            np.testing.assert_allclose(_value(saved[pos][key]), _value(tsaved[pos][key]), rtol=1e-12, atol=1e-15)
    # the parameter that missed a step has its own eta
    assert float(_value(opt.state[ours[2]]["eta"])) != float(_value(opt.state[ours[0]]["eta"]))


def test_state_dicts_cross_both_ways() -> None:
    """Each library's state_dict (tensors converted) resumes the other's run."""
    (ours, opt), (theirs, topt) = _run(ds, 3), _run(torch, 3)
    # downslope's state into torch
    sd = opt.state_dict()
    converted = {
        "state": {k: {n: torch.tensor(_value(v)) for n, v in e.items()} for k, e in sd["state"].items()},
        "param_groups": topt.state_dict()["param_groups"],
    }
    tparams = [torch.tensor(_value(p), requires_grad=True) for p in ours]
    topt2 = torch.optim.ASGD(tparams, lr=0.05, t0=2, lambd=1e-2)
    topt2.load_state_dict(converted)
    # torch's state into downslope
    tsd = topt.state_dict()
    params2 = [ds.tensor(_value(p), dtype=ds.float64, requires_grad=True) for p in theirs]
    opt2 = ds.optim.ASGD(params2, lr=0.05, t0=2, lambd=1e-2)
    opt2.load_state_dict(
        {
            "state": {k: {n: _value(v) for n, v in e.items()} for k, e in tsd["state"].items()},
            "param_groups": tsd["param_groups"],
        }
    )
    for i in range(3, 7):
        for lib, o, ps in ((ds, opt, ours), (torch, topt2, tparams), (torch, topt, theirs), (ds, opt2, params2)):
            _step(lib, o, ps, i)
    for a, b, c, d in zip(ours, tparams, theirs, params2):
        np.testing.assert_allclose(_value(a), _value(b), rtol=1e-12)
        np.testing.assert_allclose(_value(c), _value(d), rtol=1e-12)
    assert tuple(opt2.state[params2[0]]["eta"].shape) == ()


def test_writing_eta_and_mu_changes_the_next_step_as_in_torch() -> None:
    results = []
    for lib in (ds, torch):
        params, opt = _run(lib, 3)
        with lib.no_grad():
            opt.state[params[0]]["eta"].fill_(0.2)  # in place, into the state's own tensor
            opt.state[params[0]]["mu"].fill_(0.5)
        opt.state[params[1]]["eta"] = lib.tensor(0.01, dtype=lib.float64)  # by assignment
        for i in range(3, 5):
            _step(lib, opt, params, i)
        results.append([_value(p) for p in params] + [_value(opt.state[p]["ax"]) for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_one_number_per_parameter_in_float32_too() -> None:
    w = ds.ones(2, 3, dtype=ds.float32, requires_grad=True)
    opt = ds.optim.ASGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    eta, mu = opt.state[w]["eta"], opt.state_dict()["state"][0]["mu"]
    # torch's scalar dtype: float64 under the module's default float64 dtype, whatever the parameters'
    assert eta.shape == () and mu.shape == () and eta.dtype == ds.float64
    assert float(_value(mu)) == 1.0


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "lambd": 0.1, "alpha": 0.6, "t0": 2.0}])
def test_a_zero_size_parameter_holds_torchs_eta_and_mu(kwargs: dict[str, Any]) -> None:
    # no element holds the number of an empty parameter; PyTorch still computes it at every step
    def run(lib: Any) -> dict[str, Any]:
        w, empty = lib.ones(3, requires_grad=True), lib.zeros(0, 3, requires_grad=True)
        opt = lib.optim.ASGD([w, empty], **kwargs)
        for _ in range(5):
            w.grad, empty.grad = lib.ones(3), lib.zeros(0, 3)
            opt.step()
        return opt.state_dict()["state"][1]

    ours, theirs = run(ds), run(torch)
    for key in ("step", "eta", "mu"):
        assert float(to_host(ours[key].numpy())) == float(theirs[key]), key
    assert float(theirs["eta"]) > 0 and (float(theirs["mu"]) < 1) == ("t0" in kwargs)
