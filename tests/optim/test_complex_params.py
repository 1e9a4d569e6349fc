"""Optimizers on complex parameters against torch: torch's built-in optimizers step a complex parameter as
its view_as_real pair (each real and imaginary part a real parameter); those torch refuses complex for are
refused likewise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(3)
_INIT = _RNG.standard_normal((3, 4)) + 1j * _RNG.standard_normal((3, 4))
_REAL_INIT = _RNG.standard_normal(4)
_TARGET = _RNG.standard_normal((5, 4)) + 1j * _RNG.standard_normal((5, 4))
_X = _RNG.standard_normal((5, 3)) + 1j * _RNG.standard_normal((5, 3))

_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.01}),
    ("Adadelta", {"lr": 1.0, "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.05, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.05, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.05, "weight_decay": 0.1}),
    ("Rprop", {"lr": 0.05}),
]


def _train(lib: Any, name: str, kwargs: dict[str, Any], dtype: str, steps: int = 5) -> list[np.ndarray]:
    """``steps`` steps of a complex weight (and a real bias) on Re/Im of a complex least-squares loss."""
    real = "float32" if dtype == "complex64" else "float64"
    w = lib.nn.Parameter(lib.tensor(_INIT, dtype=getattr(lib, dtype)))
    b = lib.nn.Parameter(lib.tensor(_REAL_INIT, dtype=getattr(lib, real)))
    x, target = lib.tensor(_X, dtype=getattr(lib, dtype)), lib.tensor(_TARGET, dtype=getattr(lib, dtype))
    opt = getattr(lib.optim, name)([w, b], **kwargs)
    seen = []
    for _ in range(steps):
        opt.zero_grad()
        err = x @ w + b - target
        (lib.real(err * err.conj()).mean() + lib.imag(err).sum() * 0.1).backward()
        opt.step()
        seen.append(w.detach().numpy().copy())
        seen.append(b.detach().numpy().copy())
    return seen


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize(("name", "kwargs"), _CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_CASES)])
def test_complex_parameters_step_as_torchs(name: str, kwargs: dict[str, Any], dtype: str) -> None:
    # (NAdam's mu_product is float32 in both under the default dtype float32, also for complex128 parameters)
    ours, theirs = _train(ds, name, kwargs, dtype), _train(torch, name, kwargs, dtype)
    tol = {"rtol": 2e-5, "atol": 2e-6} if dtype == "complex64" else {"rtol": 1e-10, "atol": 1e-12}
    for step, (mine, want) in enumerate(zip(ours, theirs)):
        assert mine.dtype == want.dtype, step
        part = "weight" if step % 2 == 0 else "bias"
        np.testing.assert_allclose(mine, want, **tol, err_msg=f"step {step // 2} ({part})")


def test_a_complex_parameter_keeps_its_memory_and_its_views_follow() -> None:
    w = ds.nn.Parameter(ds.tensor(_INIT, dtype=ds.complex128))
    array, real_part = w.array, w.detach().real
    opt = ds.optim.Adam([w], lr=0.1)
    ds.real(w * w).sum().backward()
    opt.step()
    assert w.array is array
    np.testing.assert_array_equal(real_part.numpy(), w.detach().numpy().real)
    assert not np.allclose(w.detach().numpy(), _INIT)


@pytest.mark.parametrize("name", ["SparseAdam", "Adafactor", "Muon"])
def test_optimizers_torch_refuses_complex_for_refuse_it(name: str) -> None:
    with pytest.raises((RuntimeError, ValueError)):
        p = torch.nn.Parameter(torch.ones(2, 2, dtype=torch.complex64))
        p.grad = torch.ones(2, 2, dtype=torch.complex64)
        getattr(torch.optim, name)([p]).step()
    with pytest.raises(ArgumentTypeError, match=f"{name}: parameter 0 is complex"):
        getattr(ds.optim, name)([ds.nn.Parameter(ds.ones(2, 2, dtype=ds.complex64))])


def _state_numpy(state: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for k, v in state.items()}


@pytest.mark.parametrize(
    ("name", "kwargs"), [("Adam", {"lr": 0.05, "amsgrad": True}), ("SGD", {"lr": 0.1, "momentum": 0.9})]
)
def test_complex_state_is_complex_as_torchs_and_a_torch_state_dict_loads(name: str, kwargs: dict[str, Any]) -> None:
    def setup(lib: Any) -> tuple[Any, Any, Any]:
        w = lib.nn.Parameter(lib.tensor(_INIT, dtype=lib.complex128))
        x, target = lib.tensor(_X, dtype=lib.complex128), lib.tensor(_TARGET, dtype=lib.complex128)
        return w, getattr(lib.optim, name)([w], **kwargs), lambda: lib.real((x @ w - target).abs() ** 2).mean()

    def steps(opt: Any, loss: Any, n: int) -> None:
        for _ in range(n):
            opt.zero_grad()
            loss().backward()
            opt.step()

    w, opt, loss = setup(ds)
    tw, topt, tloss = setup(torch)
    steps(opt, loss, 2)
    steps(topt, tloss, 2)
    ours, theirs = _state_numpy(opt.state_dict()["state"][0]), _state_numpy(topt.state_dict()["state"][0])
    assert sorted(ours) == sorted(theirs)
    for key, want in theirs.items():
        assert ours[key].dtype == want.dtype, key
        np.testing.assert_allclose(ours[key], want, rtol=1e-10, atol=1e-14, err_msg=key)
    # torch's state dict (complex buffers) into a fresh downslope optimizer: the next steps agree
    w2, opt2, loss2 = setup(ds)
    with ds.no_grad():
        w2.copy_(ds.tensor(tw.detach().numpy(), dtype=ds.complex128))
    opt2.load_state_dict(
        {
            "state": {0: {k: ds.tensor(v, dtype=getattr(ds, str(v.dtype))) for k, v in theirs.items()}},
            "param_groups": [{**g, "params": [0]} for g in opt.state_dict()["param_groups"]],
        }
    )
    steps(opt2, loss2, 2)
    steps(topt, tloss, 2)
    np.testing.assert_allclose(w2.detach().numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_assigning_a_complex_state_entry_writes_its_real_pairs() -> None:
    w = ds.nn.Parameter(ds.tensor(_INIT, dtype=ds.complex128))
    opt = ds.optim.Adam([w], lr=0.1)
    ds.real(w * w).sum().backward()
    opt.step()
    opt.state[w]["exp_avg"] = ds.tensor(_INIT * 2, dtype=ds.complex128)
    np.testing.assert_array_equal(opt.state[w]["exp_avg"].numpy(), _INIT * 2)
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["exp_avg"].numpy(), _INIT * 2)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("edit", [False, True])
def test_asgd_eta_and_mu_of_a_complex_parameter_are_real_as_torchs(dtype: str, edit: bool) -> None:
    # the complex bucket holds each number in two slots; PyTorch's eta and mu are real numbers
    def run(lib: Any) -> tuple[Any, dict[str, Any]]:
        w = lib.nn.Parameter(lib.tensor(_INIT, dtype=getattr(lib, dtype)))
        opt = lib.optim.ASGD([w], lr=0.05, lambd=0.1, t0=2.0)
        for i in range(4):
            w.grad = lib.tensor(_INIT * (1 - 0.5j), dtype=getattr(lib, dtype))
            opt.step()
            if edit and i == 1:
                opt.state[w]["eta"].fill_(0.2)  # a write into the live state reaches the next step
        return w, opt.state_dict()["state"][0]

    (w, ours), (tw, theirs) = run(ds), run(torch)
    for key in ("eta", "mu"):
        mine, want = _state_numpy(ours)[key], theirs[key].numpy()
        assert mine.dtype.kind == want.dtype.kind == "f" and mine.shape == want.shape == (), key
        assert float(mine) == pytest.approx(float(want), rel=1e-7), key
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6, atol=1e-7)
