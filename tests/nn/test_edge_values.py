"""Edge values in nn layers and losses against torch: eps=0 norm layers on constant rows, probability
range checks, NaN/inf sampling coordinates, float16 intermediates and signs of zero."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import ArgumentError, DTypeError, InvalidValueError
from downslope.nn import sampling

torch = pytest.importorskip("torch")
TF = torch.nn.functional

NAN, INF = math.nan, math.inf


def _same(expected: np.ndarray, actual: np.ndarray, atol: float = 1e-5) -> None:
    """Equal values where finite, the same NaN pattern and the same infinities."""
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------- eps = 0 on a constant row
NORMS_WITH_NAN: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("layer_norm", lambda f, m: f.layer_norm(m.full((2, 5), 2.5), (5,), eps=0.0)),
    ("rms_norm", lambda f, m: f.rms_norm(m.zeros(2, 3), (3,), eps=0.0)),
    ("group_norm", lambda f, m: f.group_norm(m.full((2, 4, 3), 1.0), 2, eps=0.0)),
    ("group_norm 4-D", lambda f, m: f.group_norm(m.full((2, 4, 3, 3), 1.0), 2, eps=0.0)),
    ("LayerNorm", lambda f, m: m.nn.LayerNorm(5, eps=0.0)(m.full((2, 5), 2.5))),
    ("instance_norm", lambda f, m: f.instance_norm(m.ones(1, 2, 3), eps=0.0)),
    ("InstanceNorm2d", lambda f, m: m.nn.InstanceNorm2d(2, eps=0.0, affine=True)(m.ones(1, 2, 3, 3))),
    ("batch_norm eval", lambda f, m: f.batch_norm(m.ones(4, 2), m.zeros(2), m.zeros(2), eps=0.0)),
]


@pytest.mark.parametrize("name,build", NORMS_WITH_NAN, ids=[n for n, _ in NORMS_WITH_NAN])
def test_norm_layers_with_eps_zero_on_a_constant_row_match_torch(jit_path: str, name: str, build: Any) -> None:
    # torch: 0/0 = NaN (instance norm: 0, its batch norm kernel takes 1/std = 0); the compiled kernels
    # raised ZeroDivisionError (numba's Python error model)
    expected = build(TF, torch).detach().numpy()
    actual = build(F, ds).detach().numpy()
    _same(expected, actual)


@pytest.mark.parametrize("shape", [(4, 2), (4, 2, 3, 3)])
def test_batch_norm_training_with_eps_zero_is_refused_as_torch(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="eps must be positive during training"):
        TF.batch_norm(torch.ones(*shape), None, None, training=True, eps=0.0)
    with pytest.raises(ArgumentError, match="eps must be positive during training, but got 0.0"):
        F.batch_norm(ds.ones(*shape), None, None, training=True, eps=0.0)


@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_eps_zero_values_and_gradients_match_torch(affine: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5))
    x[0, 1] = 2.0  # a constant plane: variance 0
    g = rng.standard_normal((2, 3, 5))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = TF.instance_norm(xt, weight=wt if affine else None, bias=bt if affine else None, eps=0.0)
    yt.backward(torch.tensor(g))
    xd = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    wd, bd = ds.tensor(w, dtype=ds.float64, requires_grad=True), ds.tensor(b, dtype=ds.float64, requires_grad=True)
    yd = F.instance_norm(xd, weight=wd if affine else None, bias=bd if affine else None, eps=0.0)
    yd.backward(ds.tensor(g, dtype=ds.float64))
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert np.all(xd.grad.numpy()[0, 1] == 0)
    if affine:
        np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bd.grad.numpy(), bt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_norm_kernels_with_eps_zero_equal_the_numpy_path() -> None:
    from downslope import jit_gate

    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 8)).astype(np.float32)
    x[2] = 1.5
    groups_in = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    groups_in[1, :2] = -0.5
    cases = [
        lambda: F.layer_norm(ds.tensor(x), (8,), eps=0.0),
        lambda: F.rms_norm(ds.tensor(x * (np.arange(6) != 2)[:, None]), (8,), eps=0.0),
        lambda: F.group_norm(ds.tensor(groups_in), 2, eps=0.0),
    ]
    for case in cases:
        compiled = case().numpy()
        with jit_gate.disabled():
            plain = case().numpy()
        np.testing.assert_allclose(compiled, plain, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.isnan(compiled).any()


# ---------------------------------------------------------------------- probability range checks
# the range checks read values: on the host only (a device would synchronise every step)
@pytest.mark.host_only
@pytest.mark.parametrize(
    "p,t",
    [([0.3, 0.6], [0.0, 255.0]), ([0.3, 0.6], [-1.0, 1.0]), ([0.3, 0.6], [0.5, NAN])],
    ids=["target 255", "target -1", "target NaN"],
)
def test_binary_cross_entropy_refuses_targets_outside_0_1_as_torch(p: list[float], t: list[float]) -> None:
    with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
        TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t))
    with pytest.raises(InvalidValueError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(ds.tensor(p), ds.tensor(t))
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
        ds.nn.BCELoss()(ds.tensor(p), ds.tensor(t))


# the range checks read values: on the host only (a device would synchronise every step)
@pytest.mark.host_only
@pytest.mark.parametrize("p", [[0.5, NAN], [0.5, 1.5], [-0.1, 0.5]])
def test_binary_cross_entropy_refuses_nan_or_out_of_range_input_as_torch(p: list[float]) -> None:
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        TF.binary_cross_entropy(torch.tensor(p), torch.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(ds.tensor(p), ds.tensor([0.0, 1.0]))


def test_binary_cross_entropy_accepts_the_ends_of_0_1() -> None:
    p, t = [0.0, 1.0, 0.25], [0.0, 1.0, 1.0]
    expected = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t)).item()
    assert F.binary_cross_entropy(ds.tensor(p), ds.tensor(t)).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("which", ["target", "input"])
def test_kl_div_refuses_integer_tensors_as_torch(which: str) -> None:
    def call(m: Any, f: Any) -> Any:
        floats, ints = m.tensor([-1.0, -2.0]), m.tensor([0, 1])
        return f.kl_div(floats, ints) if which == "target" else f.kl_div(ints, m.tensor([0.5, 0.5]))

    with pytest.raises(RuntimeError, match="Integral inputs not supported"):
        call(torch, TF)
    with pytest.raises(DTypeError, match="Integral inputs not supported"):
        call(ds, F)


# ---------------------------------------------------------------------- grid_sample at NaN / inf
def _grid_points(dims: int) -> list[list[float]]:
    points = []
    for value in (NAN, INF, -INF):
        for axis in range(dims):
            point = [0.3, -0.2, 0.1][:dims]
            point[axis] = value
            points.append(point)
    return points


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("path", ["compiled", "composite"])
def test_grid_sample_at_nan_and_infinite_coordinates_matches_torch(
    dims: int, mode: str, padding_mode: str, align_corners: bool, path: str
) -> None:
    # torch's 2-D kernel: bilinear with zeros padding blends zeros with NaN weights (NaN); a NaN
    # coordinate is clamped to pixel 0 by border / reflection. Its 3-D kernel reads 0, clamps to size - 1.
    if mode == "bicubic" and dims == 3:
        pytest.skip("bicubic takes 4-D input only")
    image = np.arange(float(3**dims), dtype=np.float32).reshape((1, 1) + (3,) * dims)
    image[..., -1] += 1  # no symmetry that could hide a wrong pixel
    for point in _grid_points(dims):
        grid = np.array(point, dtype=np.float32).reshape((1,) + (1,) * dims + (dims,))
        expected = TF.grid_sample(
            torch.tensor(image), torch.tensor(grid), mode=mode, padding_mode=padding_mode, align_corners=align_corners
        ).numpy()
        if path == "composite":
            actual = sampling._composite_grid_sample(
                ds.tensor(image), ds.tensor(grid), mode, padding_mode, align_corners
            )
        else:
            actual = F.grid_sample(
                ds.tensor(image), ds.tensor(grid), mode=mode, padding_mode=padding_mode, align_corners=align_corners
            )
        _same(expected, actual.numpy(), atol=1e-4)


# ---------------------------------------------------------------------- float16 intermediates
@pytest.mark.parametrize(
    "name,call",
    [
        ("hardswish", lambda f, m: f.hardswish(m.tensor([60000.0, 65504.0, -60000.0, 1.5], dtype=m.float16))),
        ("avg_pool1d", lambda f, m: f.avg_pool1d(m.tensor([[[60000.0, 60000.0, 1.0, 2.0]]], dtype=m.float16), 2)),
        ("avg_pool2d", lambda f, m: f.avg_pool2d(m.full((1, 1, 2, 2), 30000.0, dtype=m.float16), 2)),
        (
            "avg_pool2d padded",
            lambda f, m: f.avg_pool2d(m.full((1, 1, 3, 3), 30000.0, dtype=m.float16), 2, padding=1),
        ),
    ],
)
def test_float16_intermediates_do_not_overflow_as_torch(name: str, call: Any) -> None:
    expected = call(TF, torch).numpy()
    actual = call(F, ds).numpy()
    assert actual.dtype == np.float16
    np.testing.assert_array_equal(actual, expected)


def test_avg_pool2d_float16_gradient_keeps_its_dtype() -> None:
    x = ds.full((1, 1, 2, 2), 30000.0, dtype=ds.float16, requires_grad=True)
    F.avg_pool2d(x, 2).sum().backward()
    assert x.grad.dtype == ds.float16
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 2, 2), 0.25, np.float16))


# ---------------------------------------------------------------------- signs of zero
def test_ignored_targets_give_positive_zero_loss_as_torch() -> None:
    def losses(m: Any, f: Any) -> list[np.ndarray]:
        return [
            f.cross_entropy(m.zeros(2, 3), m.tensor([-100, -100]), reduction="none").numpy(),
            f.cross_entropy(m.zeros(3, 3), m.tensor([-100, 1, -100]), reduction="none").numpy(),
            f.nll_loss(m.zeros(2, 3), m.tensor([-100, 1]), reduction="none").numpy(),
        ]

    for expected, actual in zip(losses(torch, TF), losses(ds, F)):
        np.testing.assert_array_equal(actual, expected)
        np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))
