"""A training step never makes the host wait for the device.

On a GPU every synchronisation stalls the Python thread until the device has caught up, which
turns an asynchronous queue of kernels into a lock-step. The strict stand-in (devices/strict.py)
detects what CuPy would synchronise on (``.get()``, boolean-mask indexing, nonzero...), and inside
``allow_synchronize(False)`` raises. Each test below runs whole training steps (zero_grad,
forward, loss, backward, optimizer step) of the layers, losses and optimizers a user trains
with, in that block: a stray synchronisation fails here instead of slowing a GPU run. After the
first step, no host->device copy may happen either (counted by the stand-in).

On a real GPU (``pytest -m gpu``, run by benchmarks/gpu.py) the same steps run under CuPy's own
detector, ``cupyx.allow_synchronize(False)``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.devices import strict

GPU = [pytest.mark.gpu, pytest.mark.skipif(not ds.cuda.is_available(), reason="needs CuPy and a CUDA GPU")]


@pytest.fixture(params=["strict", pytest.param("cuda", marks=GPU)])
def device(request: Any) -> str:
    return request.param


@contextlib.contextmanager
def _no_synchronisation(device: str) -> Iterator[None]:
    if device == "strict":
        with strict.allow_synchronize(False):
            yield
        return
    import cupyx  # type: ignore[import-not-found, unused-ignore]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # allow_synchronize is marked deprecated, still there
        with cupyx.allow_synchronize(False):
            yield


def _steps(model: nn.Module, make_loss: Callable[[Any], Any], opt: Any, device: str, steps: int = 3) -> None:
    """``steps`` training steps in which no synchronisation is allowed (the first one included: it
    creates the optimizer's state), and after the first no host->device copy happens either."""
    with _no_synchronisation(device):
        for step in range(steps):
            copies = strict.copies_to_device()
            opt.zero_grad()
            loss = make_loss(model)
            loss.backward()
            opt.step()
            if step:
                assert strict.copies_to_device() == copies, f"{strict.copies_to_device() - copies} host->device copies"


def _data(device: str, *shape: int, seed: int = 0) -> ds.Tensor:
    return ds.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), device=device)


def _labels(device: str, n: int, classes: int, seed: int = 1) -> ds.Tensor:
    return ds.tensor(np.random.default_rng(seed).integers(0, classes, n), device=device)


def test_the_mechanism_catches_a_boolean_mask_and_counts_reads():
    x = strict.asarray(np.array([1.0, -2.0, 3.0], np.float32))
    before = strict.synchronizations()
    with strict.allow_synchronize(False):
        y = x * 2 + 1  # elementwise work stays on the device
        with pytest.raises(strict.DeviceSynchronized, match="boolean mask"):
            y[y < 0] = 0.0
        with pytest.raises(strict.DeviceSynchronized, match="get"):
            y.get()
        with pytest.raises(strict.DeviceSynchronized, match="nonzero"):
            np.nonzero(y)
    assert strict.synchronizations() == before + 3
    x[x < 0] = 0.0  # allowed (and counted) outside the block, as on CuPy
    assert strict.synchronizations() == before + 4
    assert x.get().tolist() == [1.0, 0.0, 3.0]


OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "SGD": lambda p: optim.SGD(p, lr=0.01),
    "SGD momentum nesterov decay": lambda p: optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
    "SGD dampening": lambda p: optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.1),
    "GD": lambda p: optim.GD(p, lr=0.01),
    "Adam": lambda p: optim.Adam(p, lr=1e-3),
    "Adam amsgrad decay": lambda p: optim.Adam(p, lr=1e-3, amsgrad=True, weight_decay=1e-4),
    "AdamW": lambda p: optim.AdamW(p, lr=1e-3),
    "NAdam": lambda p: optim.NAdam(p, lr=1e-3),
    "RAdam": lambda p: optim.RAdam(p, lr=1e-3),
    "Adamax": lambda p: optim.Adamax(p, lr=1e-3),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.01),
    "Adadelta": lambda p: optim.Adadelta(p),
    "RMSprop centered momentum": lambda p: optim.RMSprop(p, lr=1e-3, centered=True, momentum=0.9),
    "Rprop": lambda p: optim.Rprop(p, lr=1e-3),
    "ASGD": lambda p: optim.ASGD(p, lr=1e-3),
    "Lion": lambda p: optim.Lion(p, lr=1e-4),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_an_mlp_trains_with_every_optimizer_without_synchronising(name, device):
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3)).to(device)
    x, y = _data(device, 32, 8), _labels(device, 32, 3)
    _steps(model, lambda m: nn.functional.cross_entropy(m(x), y), OPTIMIZERS[name](model.parameters()), device)


def test_two_parameter_groups_a_frozen_layer_and_a_schedule_do_not_synchronise(device):
    ds.manual_seed(0)
    first, second = nn.Linear(8, 16), nn.Linear(16, 1)
    model = nn.Sequential(first, nn.Tanh(), second, nn.Sigmoid()).to(device)
    second.bias.requires_grad_(False)
    opt = optim.Adam([{"params": first.parameters(), "lr": 1e-3}, {"params": [second.weight], "lr": 1e-2}])
    schedule = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = (
        _data(device, 16, 8),
        ds.tensor(np.random.default_rng(2).integers(0, 2, (16, 1)).astype(np.float32), device=device),
    )
    with _no_synchronisation(device):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.binary_cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            schedule.step()


def test_the_random_layers_draw_on_the_device(device):
    ds.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.Dropout2d(0.2),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 16),
        nn.SELU(),
        nn.AlphaDropout(0.2),
        nn.Unflatten(1, (16, 1)),
        nn.FeatureAlphaDropout(0.1),
        nn.Flatten(),
        nn.RReLU(),
        nn.Dropout(0.3),
        nn.Linear(16, 2),
    ).to(device)
    x, y = _data(device, 6, 2, 5, 5), _labels(device, 6, 2)
    _steps(model, lambda m: nn.functional.cross_entropy(m(x), y), optim.SGD(model.parameters(), lr=0.01), device)


def test_a_cnn_with_batch_norm_and_pooling_trains_without_synchronising(device):
    ds.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).to(device)
    x, y = _data(device, 8, 1, 12, 12), _labels(device, 8, 10)
    _steps(
        model,
        lambda m: nn.functional.cross_entropy(m(x), y, label_smoothing=0.1),
        optim.Adam(model.parameters()),
        device,
    )


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_a_recurrent_language_model_trains_without_synchronising(cell, device):
    ds.manual_seed(0)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(20, 8, padding_idx=0)
            self.rnn = getattr(nn, cell)(8, 12, num_layers=2, batch_first=True, bidirectional=True)
            self.head = nn.Linear(24, 20)

        def forward(self, tokens: Any) -> Any:
            out, _ = self.rnn(self.embed(tokens))
            return self.head(out)

    model = Model().to(device)
    tokens, targets = _labels(device, 4 * 6, 20).reshape(4, 6), _labels(device, 4 * 6, 20, seed=3)
    targets_with_padding = targets.clone()

    def loss(m: Any) -> Any:
        return nn.functional.cross_entropy(m(tokens).reshape(-1, 20), targets_with_padding, ignore_index=0)

    _steps(model, loss, optim.AdamW(model.parameters(), lr=1e-3), device)


def test_a_transformer_with_padding_and_causal_masks_trains_without_synchronising(device):
    ds.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.1, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2).to(device)
    x = _data(device, 3, 5, 16)
    padding = np.zeros((3, 5), dtype=bool)
    padding[1, 3:] = True
    padding[2, :] = True  # a sequence that is all padding: its rows are masked out entirely
    padding_mask = ds.tensor(padding, device=device)
    causal = nn.Transformer.generate_square_subsequent_mask(5).to(device)

    def loss(m: Any) -> Any:
        return m(x, mask=causal, src_key_padding_mask=padding_mask).square().mean()

    _steps(model, loss, optim.Adam(model.parameters()), device)


LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "mse": lambda out, t: nn.functional.mse_loss(out, t),
    "l1": lambda out, t: nn.functional.l1_loss(out, t),
    "huber": lambda out, t: nn.functional.huber_loss(out, t, delta=0.5),
    "smooth_l1": lambda out, t: nn.functional.smooth_l1_loss(out, t),
    "bce_with_logits": lambda out, t: nn.functional.binary_cross_entropy_with_logits(out, (t > 0).float()),
    "kl_div": lambda out, t: nn.functional.kl_div(out.log_softmax(-1), t.softmax(-1), reduction="batchmean"),
    "nll": lambda out, t: nn.functional.nll_loss(out.log_softmax(-1), t.argmax(-1)),
    "cross_entropy_soft": lambda out, t: nn.functional.cross_entropy(out, t.softmax(-1)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_common_losses_do_not_synchronise(name, device):
    ds.manual_seed(0)
    model = nn.Linear(6, 4).to(device)
    x, t = _data(device, 10, 6), _data(device, 10, 4, seed=5)
    _steps(model, lambda m: LOSSES[name](m(x), t), optim.SGD(model.parameters(), lr=0.01), device)


def test_assigning_a_scalar_through_a_boolean_mask_does_not_synchronise(device):
    """``t[t < 0] = 0`` is written as copyto(where=) on a device (PyTorch's masked_fill_), a full mask or
    one over the leading axes; a mask with values of its own size still synchronises, by nature."""
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    rows = np.array([True, False, True, False])
    t = ds.tensor(x, device=device)
    with _no_synchronisation(device):
        t[t < 0] = 0.0
        t[ds.tensor(rows, device=device)] = 7
        t[(t > 1,)] = ds.tensor(np.float32(-1.0), device=device)
    expected = x.copy()
    expected[expected < 0] = 0.0
    expected[rows] = 7
    expected[expected > 1] = -1.0
    np.testing.assert_array_equal(t.cpu().numpy(), expected)
    assert t._version == 3
    counts = ds.tensor(np.arange(6), device=device)
    counts[counts > 2] = 2.5  # converted to the tensor's dtype, as any assignment
    np.testing.assert_array_equal(counts.cpu().numpy(), [0, 1, 2, 2, 2, 2])


def test_a_cnn_step_on_a_device_runs_a_few_hundred_array_operations_whatever_the_batch():
    """On a GPU each array operation costs the host ~10 us, so a step's operation count bounds its speed.
    The convolution runs its batch in one chunk on a device with a strided im2col (three operations),
    and max pooling picks its winners by index: benchmarks/gpu.py's CNN step takes 206 operations at
    batch 256 (4,130 with the host's per-offset loops and 2 MiB chunks)."""
    counts = {}
    for batch in (4, 64):
        ds.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        ).to("strict")
        x, y = _data("strict", batch, 1, 28, 28), _labels("strict", batch, 10)
        opt = optim.Adam(model.parameters())
        for _ in range(2):  # the second step is counted (the first creates the optimizer's state)
            before = strict.operations()
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        counts[batch] = strict.operations() - before
    assert counts[4] == counts[64] and counts[64] <= 300, counts
