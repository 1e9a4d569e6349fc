"""Model surgery that replaces or slices a layer's weights and leaves its constructor attributes as they
were (a pretrained conv1 summed to one input channel, channel pruning that slices BatchNorm's weight and
running statistics through ``.data``): the layers follow their tensors' shapes, as PyTorch's do, and
compute what PyTorch computes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.devices import to_host
from downslope.errors import ArgumentError, ShapeError

torch = pytest.importorskip("torch")


def _twins(make: Any) -> tuple[Any, Any]:
    """The same layer (or model) in both libraries, with downslope's initial values."""
    ours, ref = make(ds), make(torch)
    ref.load_state_dict({k: torch.tensor(to_host(v.array)) for k, v in ours.state_dict().items()})
    return ours, ref


def _check_both(ours: Any, ref: Any, x: np.ndarray) -> None:
    """Outputs, input gradient and parameter gradients against PyTorch."""
    xo, xt = ds.tensor(x, dtype=x.dtype, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(xo), ref(xt)
    assert out.shape == tuple(expected.shape) and out.dtype == x.dtype
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    proj = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    (out * ds.tensor(proj, dtype=x.dtype)).sum().backward()
    (expected * torch.tensor(proj)).sum().backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    theirs = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[key].grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)


def _x(*shape: int, seed: int = 0, dtype: Any = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(
    ("name", "args", "shape"),
    [
        ("Conv1d", (3, 4, 3), (2, 1, 9)),
        ("Conv2d", (3, 4, 3), (2, 1, 8, 8)),
        ("Conv2d", (3, 4, 3), (1, 6, 6)),  # unbatched
        ("Conv3d", (3, 4, 3), (2, 1, 5, 5, 5)),
    ],
)
def test_a_conv_summed_to_one_input_channel_runs_as_in_torch(name: str, args: tuple, shape: tuple) -> None:
    ours, ref = _twins(lambda lib: getattr(lib.nn, name)(*args))
    for lib, layer in ((ds, ours), (torch, ref)):
        layer.weight = lib.nn.Parameter(layer.weight.detach().sum(1, keepdim=True))  # grayscale conv1
    assert ours.in_channels == ref.in_channels == 3  # left as constructed, in both
    _check_both(ours, ref, _x(*shape))


def test_a_grouped_conv_takes_the_weights_channels_times_groups() -> None:
    ours, ref = _twins(lambda lib: lib.nn.Conv2d(4, 6, 3, groups=2, padding=1))
    for layer in (ours, ref):
        layer.weight.data = layer.weight.data[:, :1]  # 2 input channels per group -> 1
    _check_both(ours, ref, _x(2, 2, 5, 5))
    with pytest.raises(ShapeError, match=r"Conv2d\(4, 6\) \(weight of shape \(6, 1, 3, 3\) takes 2 channels\): "):
        ours(ds.randn(2, 3, 5, 5))
    with pytest.raises(ShapeError, match=r"weight \(6, 1, 3, 3\) with groups=2 expects 2"):
        ours(ds.randn(2, 4, 5, 5))  # the constructor's channel count no longer fits the weight
    with pytest.raises(RuntimeError):  # nor in torch
        ref(torch.randn(2, 4, 5, 5))


def test_the_usual_conv_error_is_unchanged() -> None:
    with pytest.raises(ShapeError, match=r"^Conv2d\(3, 8\): expected input of shape \(N, 3, H, W\) or \(3, H, W\)"):
        nn.Conv2d(3, 8, 3)(ds.randn(1, 4, 8, 8))


def _prunable(lib: Any) -> Any:
    m = lib.nn
    return m.Sequential(
        m.Conv2d(3, 6, 3),
        m.BatchNorm2d(6),
        m.ReLU(),
        m.Conv2d(6, 4, 3),
        m.GroupNorm(2, 4),
        m.ConvTranspose2d(4, 6, 2, 2),
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_channel_pruning_through_data_runs_as_in_torch(mode: str) -> None:
    # in float64: the gradient of the conv bias before GroupNorm's one-channel groups is zero up to rounding
    ours, ref = _twins(lambda lib: _prunable(lib).double())
    for lib, m in ((ds, ours), (torch, ref)):
        m.train(mode == "train")
        keep = lib.tensor([0, 2, 5])
        m[0].weight.data = m[0].weight.data[keep]
        m[0].bias.data = m[0].bias.data[keep]
        m[1].weight.data = m[1].weight.data[keep]
        m[1].bias.data = m[1].bias.data[keep]
        m[1].running_mean = m[1].running_mean[keep] + 0.5  # away from the defaults, so eval mode reads them
        m[1].running_var = m[1].running_var[keep] * 2.0
        m[3].weight.data = m[3].weight.data[:, keep]
        m[4].weight.data = m[4].weight.data[:2] * 3.0  # GroupNorm(2, 4) -> 2 channels, one per group
        m[4].bias.data = m[4].bias.data[:2] + 1.0
        m[3].weight.data = m[3].weight.data[:2]
        m[3].bias.data = m[3].bias.data[:2]
        m[5].weight.data = m[5].weight.data[:2, :3]  # ConvTranspose2d(4, 6) -> (2, 3)
        m[5].bias.data = m[5].bias.data[:3]
    _check_both(ours, ref, _x(2, 3, 8, 8, dtype=np.float64))
    if mode == "train":  # the pruned running statistics updated as torch's
        np.testing.assert_allclose(ours[1].running_mean.numpy(), ref[1].running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours[1].running_var.numpy(), ref[1].running_var.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"])
def test_batchnorm_with_replaced_parameters_and_statistics(name: str) -> None:
    shape = {"BatchNorm1d": (4, 2, 5), "BatchNorm2d": (4, 2, 3, 3), "BatchNorm3d": (4, 2, 2, 2, 2)}[name]
    ours, ref = _twins(lambda lib: getattr(lib.nn, name)(6))
    for lib, b in ((ds, ours), (torch, ref)):
        b.weight = lib.nn.Parameter(lib.ones(2) * 1.5)
        b.bias = lib.nn.Parameter(lib.zeros(2) - 0.25)
        b.running_mean, b.running_var = lib.zeros(2), lib.ones(2)
    _check_both(ours, ref, _x(*shape))
    np.testing.assert_allclose(ours.running_var.numpy(), ref.running_var.numpy(), rtol=1e-5)
    ours.eval(), ref.eval()
    _check_both(ours, ref, _x(*shape, seed=2))


def test_batchnorm_without_parameters_or_statistics_takes_any_channels() -> None:
    ours, ref = _twins(lambda lib: lib.nn.BatchNorm2d(6, affine=False, track_running_stats=False))
    _check_both(ours, ref, _x(2, 4, 3, 3))


def test_batchnorm_half_pruned_says_which_tensors_disagree() -> None:
    b = nn.BatchNorm2d(6)
    b.weight.data = b.weight.data[:3]
    b.bias.data = b.bias.data[:3]
    ref = torch.nn.BatchNorm2d(6)
    ref.weight.data, ref.bias.data = ref.weight.data[:3], ref.bias.data[:3]
    with pytest.raises(RuntimeError):  # torch refuses it too
        ref(torch.ones(2, 3, 2, 2))
    with pytest.raises(
        ArgumentError,
        match=r"BatchNorm2d\(6\): input has 3 channels in dim 1 \(shape \(2, 3, 2, 2\)\), expected one entry per "
        r"channel in each of its running_mean \(6\), running_var \(6\), weight \(3\), bias \(3\)",
    ):
        b(ds.ones(2, 3, 2, 2))
    pruned = nn.BatchNorm2d(6)
    pruned.running_mean, pruned.running_var = pruned.running_mean[:3], pruned.running_var[:3]
    pruned.weight.data, pruned.bias.data = pruned.weight.data[:3], pruned.bias.data[:3]
    with pytest.raises(
        ArgumentError,
        match=r"expected 3 \(the size of its running_mean, running_var, weight, bias; constructed with 6\)",
    ):
        pruned(ds.ones(2, 4, 2, 2))
    with pytest.raises(ArgumentError, match=r"BatchNorm2d\(6\): input has 4 channels in dim 1 .*, expected 6$"):
        nn.BatchNorm2d(6)(ds.ones(2, 4, 2, 2))  # no surgery: the message as before


def test_groupnorm_pruned_and_without_affine_as_in_torch() -> None:
    ours, ref = _twins(lambda lib: lib.nn.GroupNorm(2, 6))
    for layer in (ours, ref):
        layer.weight.data = layer.weight.data[:4] * 2.0
        layer.bias.data = layer.bias.data[:4] + 0.5
    _check_both(ours, ref, _x(2, 4, 2, 2))
    ours, ref = _twins(lambda lib: lib.nn.GroupNorm(2, 6, affine=False))
    _check_both(ours, ref, _x(2, 8, 3))
    with pytest.raises(ArgumentError, match=r"GroupNorm\(2, 6\): input has 4 channels in dim 1 .*, expected 6$"):
        nn.GroupNorm(2, 6)(ds.ones(2, 4, 3))


def test_instancenorm_follows_torch_on_a_channel_count_other_than_num_features() -> None:
    # without affine weights the count is unused: torch warns and normalizes
    ours, ref = _twins(lambda lib: lib.nn.InstanceNorm2d(6))
    with pytest.warns(UserWarning, match="does not match num_features"):
        out = ours(ds.tensor(_x(2, 4, 3, 3)))
    with pytest.warns(UserWarning):
        expected = ref(torch.tensor(_x(2, 4, 3, 3)))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    # with them, both refuse even a pruned layer
    for lib, error in ((torch, ValueError), (ds, ArgumentError)):
        layer = lib.nn.InstanceNorm2d(6, affine=True)
        layer.weight.data, layer.bias.data = layer.weight.data[:4], layer.bias.data[:4]
        with pytest.raises(error, match="num_features"):
            layer(lib.ones(2, 4, 3, 3))


def test_linear_and_embedding_follow_their_weights() -> None:
    ours, ref = _twins(lambda lib: lib.nn.Linear(4, 10))
    for lib, layer in ((ds, ours), (torch, ref)):
        layer.weight = lib.nn.Parameter(layer.weight.detach()[:, :3] * 1.0)
    _check_both(ours, ref, _x(5, 3))
    ours, ref = _twins(lambda lib: lib.nn.Embedding(10, 4))
    for layer in (ours, ref):
        layer.weight.data = layer.weight.data[:6, :2]
    np.testing.assert_allclose(
        ours(ds.tensor([1, 5])).detach().numpy(), ref(torch.tensor([1, 5])).detach().numpy(), rtol=1e-6
    )
