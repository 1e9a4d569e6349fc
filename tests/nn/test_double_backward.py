"""Double backward (create_graph=True) through convolution, pooling and fold/unfold, against torch:
the gradient penalty of a WGAN-GP critic differentiates the critic's input gradient again."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.nn import pooling

torch = pytest.importorskip("torch")


def _twins(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(ds.nn, name)(*args, **kwargs).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _penalty_gradients(ours: Any, theirs: Any, x: np.ndarray, dtype: Any = np.float64) -> None:
    """Differentiate sum(sin(d loss / d input)^2) in both libraries and compare the input's and every
    parameter's gradient (float64: to 1e-9; float32 against torch's float64: to 1e-4)."""
    a = ds.tensor(x, dtype=dtype, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad((ours(a * 1.5).tanh() ** 2).sum(), [a], create_graph=True)
    (g.sin() ** 2).sum().backward()
    (tg,) = torch.autograd.grad((theirs(t * 1.5).tanh() ** 2).sum(), [t], create_graph=True)
    (tg.sin() ** 2).sum().backward()
    rtol, atol = (1e-9, 1e-11) if dtype == np.float64 else (1e-4, 1e-5)
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


LAYERS = [
    ("Conv2d", (4, 6, 3), {}, (2, 4, 7, 6)),
    ("Conv2d", (4, 6, 3), dict(stride=2, padding=1), (2, 4, 7, 6)),
    ("Conv2d", (4, 6, 3), dict(padding="same", dilation=2), (2, 4, 7, 6)),
    ("Conv2d", (4, 6, (3, 2)), dict(groups=2, bias=False, stride=(2, 1), padding=2), (2, 4, 7, 6)),
    ("Conv2d", (4, 6, 3), dict(padding=1, padding_mode="reflect"), (2, 4, 7, 6)),
    ("Conv2d", (4, 6, 3), dict(padding=1, padding_mode="circular"), (2, 4, 7, 6)),
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1), (2, 4, 9)),
    ("Conv3d", (2, 3, 3), dict(padding=1, stride=2), (2, 2, 5, 4, 6)),
    ("ConvTranspose2d", (3, 4, 3), dict(stride=2, padding=1, output_padding=1), (2, 3, 5, 4)),
    ("ConvTranspose2d", (4, 4, 3), dict(groups=2, dilation=2), (2, 4, 5, 4)),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=2), (2, 3, 5)),
    ("ConvTranspose3d", (2, 3, 3), dict(stride=2), (1, 2, 3, 3, 3)),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 6)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1), (2, 3, 7, 6)),
    ("MaxPool2d", (2,), dict(ceil_mode=True), (2, 3, 7, 5)),
    ("MaxPool2d", (2,), dict(dilation=2), (2, 3, 7, 7)),
    ("MaxPool1d", (2,), {}, (2, 3, 8)),
    ("MaxPool3d", (2,), {}, (1, 2, 4, 4, 4)),
    ("AvgPool2d", (2,), {}, (2, 3, 6, 6)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 7, 6)),
    ("AvgPool2d", (2,), dict(ceil_mode=True), (2, 3, 7, 5)),
    ("AvgPool2d", (2,), dict(divisor_override=3), (2, 3, 6, 6)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1), (2, 3, 9)),
    ("AvgPool3d", (2,), {}, (1, 2, 4, 4, 4)),
    ("AdaptiveMaxPool2d", ((2, 3),), {}, (1, 2, 5, 7)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", LAYERS, ids=lambda v: str(v))
def test_second_derivatives_match_torch(name, args, kwargs, shape):
    ours, theirs = _twins(name, args, kwargs)
    _penalty_gradients(ours, theirs, np.random.default_rng(len(shape)).standard_normal(shape))


@pytest.mark.parametrize("relu", [False, True])
def test_the_compiled_2x2_max_pooling_and_its_fused_relu_have_second_derivatives(relu, monkeypatch):
    seen = []
    real = pooling._max_pool_2x2_vjp
    monkeypatch.setattr(pooling, "_max_pool_2x2_vjp", lambda *a: seen.append(a[5].differentiable) or real(*a))
    ours = ds.nn.Sequential(*([ds.nn.ReLU()] if relu else []), ds.nn.MaxPool2d(2))
    theirs = torch.nn.Sequential(*([torch.nn.ReLU()] if relu else []), torch.nn.MaxPool2d(2))
    _penalty_gradients(ours, theirs, np.random.default_rng(2).standard_normal((2, 3, 6, 6)), np.float32)
    if not seen:
        pytest.skip("numba is not installed (the jit extra): the compiled path did not run")
    assert True in seen  # the compiled path's rule ran in recording mode


def test_unfold_and_fold_are_differentiable_twice():
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 5))
    ours, theirs = ds.tensor(x, requires_grad=True, dtype=ds.float64), torch.tensor(x, requires_grad=True)
    grads = []
    for lib, t in ((ds, ours), (torch, theirs)):
        functional = lib.nn.functional
        cols = functional.unfold(t, (3, 2), padding=1, stride=(2, 1), dilation=(1, 2))
        image = functional.fold(cols * cols, (6, 5), (3, 2), padding=1, stride=(2, 1), dilation=(1, 2))
        (g,) = lib.autograd.grad((image**3).sum(), [t], create_graph=True)
        g.sin().sum().backward()
        grads.append(t.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)


@pytest.mark.host_only  # the strict plugin moves the critic at its first call, after its optimizer was built
def test_a_wgan_gp_critic_step_matches_torch():
    """The gradient penalty of a DCGAN-style critic (strided convolutions, LeakyReLU, a linear head),
    at points between real and fake images, and one Adam step on it."""
    rng = np.random.default_rng(7)
    real, fake, alpha = rng.standard_normal((4, 1, 8, 8)), rng.standard_normal((4, 1, 8, 8)), rng.random((4, 1, 1, 1))

    def critic(lib):
        nn = lib.nn
        return nn.Sequential(
            nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 8, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(8 * 2 * 2, 1),
        ).double()  # fmt: skip

    theirs = critic(torch)
    ours = critic(ds)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for lib, model in ((ds, ours), (torch, theirs)):
        opt = lib.optim.Adam(model.parameters(), lr=1e-3, betas=(0.0, 0.9))
        r, f, a = (lib.tensor(v, dtype=lib.float64) for v in (real, fake, alpha))
        mixed = (a * r + (1 - a) * f).requires_grad_(True)
        (g,) = lib.autograd.grad(model(mixed).sum(), [mixed], create_graph=True)
        penalty = ((g.reshape(4, -1).norm(2, dim=1) - 1) ** 2).mean()
        loss = model(f).mean() - model(r).mean() + 10 * penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].detach().numpy(), p.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_double_backward_through_recurrent_layers_matches_torch(mode, bidirectional):
    # a gradient penalty (or a meta-learning step) through a 2-layer recurrent layer
    torch.manual_seed(0)
    theirs = getattr(torch.nn, mode)(3, 4, num_layers=2, bidirectional=bidirectional, batch_first=True).double()
    ours = getattr(ds.nn, mode)(3, 4, num_layers=2, bidirectional=bidirectional, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.double()
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    xt, xd = torch.tensor(x, requires_grad=True), ds.tensor(x, dtype=ds.float64, requires_grad=True)
    (gt,) = torch.autograd.grad((theirs(xt)[0] ** 2).sum(), [xt], create_graph=True)
    (gd,) = ds.autograd.grad((ours(xd)[0] ** 2).sum(), [xd], create_graph=True)
    np.testing.assert_allclose(gd.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    (gt**2).sum().backward()
    (gd**2).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
