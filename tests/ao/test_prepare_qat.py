"""ds.ao.quantization.prepare_qat against torch's: the same module tree (Linear/Conv2d swapped for the
ao.nn.qat twins, activation_post_process on the quantizable outputs only, qconfig propagated and a
module's own qconfig=None respected), the same state-dict keys, and the same forward values, input and
weight gradients and fake-quantize parameters over several training steps of a small model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _model(lib):
    Q, nn = lib.ao.quantization, lib.nn
    return nn.Sequential(
        Q.QuantStub(),
        nn.Conv2d(1, 2, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32, 3),
        nn.Sequential(nn.Linear(3, 2)),
        Q.DeQuantStub(),
    )


def _qconfig(lib):
    Q = lib.ao.quantization
    # torch's x86 default (version 1) uses its fused kernel (FusedMovingAvgObsFakeQuantize); version 0 has
    # the plain FakeQuantize modules that downslope's are
    return Q.get_default_qat_qconfig("x86", 0)


def _pair():
    theirs, ours = _model(torch), _model(ds)
    ours.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    for lib, m in ((torch, theirs), (ds, ours)):
        m.qconfig = _qconfig(lib)
        m[5].qconfig = None  # a module's own None keeps it (and its children) float
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notice of eager-mode quantization
        return torch.ao.quantization.prepare_qat(theirs), ds.ao.quantization.prepare_qat(ours)


def test_module_tree_and_state_dict_keys_match_torch() -> None:
    theirs, ours = _pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for t, d in zip(theirs.modules(), ours.modules()):
        assert type(d).__name__ == type(t).__name__
        assert hasattr(d, "activation_post_process") == hasattr(t, "activation_post_process")
    assert type(ours[4]) is ds.ao.nn.qat.Linear and type(ours[1]) is ds.ao.nn.qat.Conv2d
    assert type(ours[5][0]) is ds.nn.Linear  # qconfig None: not swapped


def test_forward_values_and_gradients_match_torch_over_steps() -> None:
    theirs, ours = _pair()
    rng = np.random.default_rng(0)
    t_opt = d_opt = None
    for step in range(3):
        x = (rng.standard_normal((4, 1, 4, 4)) * (step + 1)).astype(np.float32)
        tx, dx = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
        ty, dy = theirs(tx), ours(dx)
        if d_opt is None:  # after the first call, which places the model where its data is (device runs)
            t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
            d_opt = ds.optim.SGD(ours.parameters(), lr=0.1)
        np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        t_opt.zero_grad()
        d_opt.zero_grad()
        ty.backward(torch.tensor(g))
        dy.backward(ds.tensor(g))
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
        for (name, tp), dp in zip(theirs.named_parameters(), ours.parameters()):
            np.testing.assert_allclose(dp.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
        t_opt.step()
        d_opt.step()
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    for key, value in theirs_state.items():
        np.testing.assert_allclose(
            np.asarray(ours_state[key].numpy(), dtype=np.float64),
            value.double().numpy(),
            rtol=1e-5,
            atol=1e-6,
            err_msg=key,
        )


def test_prepare_qat_refuses_an_eval_model_as_torch() -> None:
    model = ds.nn.Linear(2, 2).eval()
    model.qconfig = ds.ao.quantization.get_default_qat_qconfig()
    with pytest.raises(AssertionError, match="prepare_qat only works on models in training mode"):
        ds.ao.quantization.prepare_qat(model)


def test_inplace_keeps_the_parameters_and_copy_does_not() -> None:
    model = ds.nn.Sequential(ds.nn.Linear(3, 2))
    model.qconfig = ds.ao.quantization.get_default_qat_qconfig()
    weight = model[0].weight
    copied = ds.ao.quantization.prepare_qat(model)
    assert copied[0].weight is not weight and type(model[0]) is ds.nn.Linear
    same = ds.ao.quantization.prepare_qat(model, inplace=True)
    assert same is model and same[0].weight is weight
    assert ds.quantization.prepare_qat is ds.ao.quantization.prepare_qat


def test_convert_stays_refused_with_its_reason() -> None:
    with pytest.raises(Exception, match="quantized \\(int8\\)"):
        ds.ao.quantization.convert  # noqa: B018
