"""NAdam's mu_product: one number per parameter (as PyTorch), in memory and in state_dict."""

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.optim.buckets import state_slots


def _weights(lib, seed=0):
    rng = np.random.default_rng(seed)
    return [lib.nn.Parameter(lib.tensor(rng.standard_normal(s).astype(np.float32))) for s in ((3, 2), (4,))]


def _steps(opt, params, n, seed=1, only=None):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        opt.zero_grad()
        used = params if only is None else [params[i] for i in only]
        loss = sum(((p * p).sum() * float(rng.uniform(0.5, 1.5))) for p in used)
        loss.backward()
        opt.step()


def _product_arrays(opt):
    return [slot["mu_product"] for b in opt._buckets[0] for slot in state_slots(b.state) if "mu_product" in slot]


def test_mu_product_is_one_number_per_buffer_and_per_parameter_in_state_dict():
    params = _weights(ds)
    opt = optim.NAdam(params, lr=1e-2)
    _steps(opt, params, 3)
    assert [a.shape for a in _product_arrays(opt)] == [()]
    sd = opt.state_dict()
    assert all(entry["mu_product"].shape == () for entry in sd["state"].values())
    assert opt.state[params[0]]["mu_product"].shape == ()


def test_torchs_state_dict_loads_and_continues_torchs_run():
    torch = pytest.importorskip("torch")
    theirs = _weights(torch)
    topt = torch.optim.NAdam(theirs, lr=1e-2)
    _steps(topt, theirs, 3)
    sd = topt.state_dict()
    converted = {
        "state": {k: {n: v.numpy() for n, v in e.items()} for k, e in sd["state"].items()},
        "param_groups": sd["param_groups"],
    }
    ours = [ds.nn.Parameter(ds.tensor(p.detach().numpy())) for p in theirs]
    opt = optim.NAdam(ours, lr=1e-2)
    opt.load_state_dict(converted)
    _steps(topt, theirs, 2, seed=5)
    _steps(opt, ours, 2, seed=5)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    for pos in (0, 1):
        np.testing.assert_allclose(opt.state_dict()["state"][pos]["mu_product"], topt.state_dict()["state"][pos]["mu_product"].numpy(), rtol=1e-6)  # fmt: skip


def test_a_parameter_that_misses_steps_keeps_its_own_product_as_torchs(tmp_path):
    torch = pytest.importorskip("torch")
    theirs, ours = _weights(torch), _weights(ds)
    topt, opt = torch.optim.NAdam(theirs, lr=1e-2), optim.NAdam(ours, lr=1e-2)
    for lib_opt, ps in ((topt, theirs), (opt, ours)):
        _steps(lib_opt, ps, 2)
        _steps(lib_opt, ps, 2, seed=3, only=[0])  # parameter 1 has no gradient: it does not step
        _steps(lib_opt, ps, 2, seed=4)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    products = [float(opt.state_dict()["state"][i]["mu_product"]) for i in (0, 1)]
    np.testing.assert_allclose(
        products, [float(topt.state_dict()["state"][i]["mu_product"]) for i in (0, 1)], rtol=1e-6
    )
    assert products[0] != products[1]
    again = optim.NAdam(_weights(ds), lr=1e-2)  # per-parameter products survive a save and load
    ds.save(opt.state_dict(), tmp_path / "opt.ckpt")
    again.load_state_dict(ds.load(tmp_path / "opt.ckpt"))
    assert [float(again.state_dict()["state"][i]["mu_product"]) for i in (0, 1)] == products


def test_an_older_checkpoints_parameter_shaped_product_loads(tmp_path):
    params = _weights(ds)
    opt = optim.NAdam(params, lr=1e-2)
    _steps(opt, params, 3)
    sd = opt.state_dict()
    for pos, p in enumerate(params):  # what downslope wrote before: the value repeated over the parameter
        sd["state"][pos]["mu_product"] = np.full(p.shape, sd["state"][pos]["mu_product"], np.float32)
    ds.save(sd, tmp_path / "old.ckpt")
    fresh = _weights(ds)
    for a, b in zip(fresh, params):
        a.data.copy_(b.detach())
    again = optim.NAdam(fresh, lr=1e-2)
    again.load_state_dict(ds.load(tmp_path / "old.ckpt"))
    _steps(opt, params, 2, seed=9)
    _steps(again, fresh, 2, seed=9)
    for a, b in zip(fresh, params):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert [a.shape for a in _product_arrays(again)] == [()]
