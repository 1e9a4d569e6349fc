"""torch.jit.freeze / optimize_for_inference: the inference steps after script/trace hand the model
back (downslope has no TorchScript) and give the same outputs as torch's frozen modules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import downslope as ds


def _pair() -> tuple[torch.nn.Module, ds.nn.Module]:
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
    with torch.no_grad():  # running statistics away from (0, 1), so eval-mode BatchNorm is not the identity
        theirs[1].running_mean.uniform_(-1, 1)
        theirs[1].running_var.uniform_(0.5, 2)
    ours = ds.nn.Sequential(ds.nn.Conv2d(3, 8, 3), ds.nn.BatchNorm2d(8), ds.nn.ReLU())
    ours.load_state_dict({k: ds.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


def test_freeze_and_optimize_for_inference_return_the_model_with_torchs_outputs() -> None:
    theirs, ours = _pair()
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen_t = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(theirs.eval())))
        frozen_d = ds.jit.optimize_for_inference(ds.jit.freeze(ds.jit.script(ours.eval())))
    assert frozen_d is ours
    with torch.no_grad():
        expected = frozen_t(torch.from_numpy(x)).numpy()
    with ds.no_grad():
        got = frozen_d(ds.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_optimize_for_inference_puts_a_training_model_in_eval_as_torch_does() -> None:
    theirs, ours = _pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.optimize_for_inference(torch.jit.script(theirs.train()))  # accepted: torch calls .eval() first
        assert ds.jit.optimize_for_inference(ds.jit.script(ours.train())) is ours
    assert not ours.training and not ours[1].training


def test_freeze_refuses_a_training_model_and_a_non_module_as_torch_does() -> None:
    theirs, ours = _pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="eval mode"):
            torch.jit.freeze(torch.jit.script(theirs.train()))
        with pytest.raises(RuntimeError, match=r"eval mode.*Sequential.*training mode.*\.eval\(\)"):
            ds.jit.freeze(ours.train())
        with pytest.raises(RuntimeError, match="ScriptModule"):
            torch.jit.freeze(lambda x: x)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match=r"jit\.freeze: expected a Module.*got function"):
            ds.jit.freeze(lambda x: x)
        with pytest.raises(RuntimeError, match=r"jit\.optimize_for_inference: expected a Module.*got int"):
            ds.jit.optimize_for_inference(3)


def test_freeze_warns_once_that_the_model_runs_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds.jit, "_warned", set())
    model = ds.nn.Linear(2, 1).eval()
    with pytest.warns(UserWarning, match="freeze.*runs eagerly"):
        ds.jit.freeze(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.jit.freeze(model)
