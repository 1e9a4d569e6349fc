"""F.interpolate's linear family (linear, bilinear, bicubic, trilinear, antialiased) against torch with scale factors.

With a scale factor (and recompute_scale_factor not True) torch reads the source at
``(dst + 0.5) / scale_factor - 0.5``, not at ``(dst + 0.5) * in/out - 0.5``: the output size was rounded
down, so the two differ. Its linear kernels copy a dim whose size is unchanged whatever the scale
factor (bicubic does not), and its antialiased kernel skips such a dim too. A seeded fuzz over shapes,
scale factors, sizes, align_corners and recompute_scale_factor compares values and gradients in
float32 and float64.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOLERANCE = {np.float32: 3e-6, np.float64: 1e-12}  # relative to the largest magnitude


def _compare(shape: tuple, kwargs: dict, dtype: Any, seed: int = 0, grad: bool = True) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    t = torch.tensor(a, requires_grad=True)
    ref = TF.interpolate(t, **kwargs)
    x = ds.tensor(a, dtype=a.dtype, requires_grad=True)
    out = F.interpolate(x, **kwargs)
    assert out.shape == tuple(ref.shape) and out.dtype == a.dtype, (out.shape, out.dtype, ref.shape)
    tol = TOLERANCE[dtype]
    scale = max(1.0, float(ref.detach().abs().max())) if ref.numel() else 1.0
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=0, atol=tol * scale, err_msg="value")
    if not grad:
        return
    w = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    (ref * torch.tensor(w)).sum().backward()
    (out * ds.tensor(w, dtype=w.dtype)).sum().backward()
    scale = max(1.0, float(t.grad.abs().max()))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=0, atol=tol * scale, err_msg="gradient")


def _fuzz_cases(n: int, seed: int) -> list[tuple[tuple, dict]]:
    """Random configurations torch accepts, leaving out the two where torch contradicts itself (below)."""
    rng = random.Random(seed)
    cases: list[tuple[tuple, dict]] = []
    while len(cases) < n:
        spatial = rng.choice([1, 2, 3])
        mode = {1: "linear", 2: rng.choice(["bilinear", "bicubic"]), 3: "trilinear"}[spatial]
        sizes = [rng.randint(1, 9 if spatial < 3 else 6) for _ in range(spatial)]
        kwargs: dict[str, Any] = {"mode": mode}
        if rng.random() < 0.25:
            kwargs["size"] = [rng.randint(1, 12) for _ in range(spatial)]
        else:
            kwargs["scale_factor"] = [round(rng.uniform(0.2, 3.5), rng.choice([1, 2, 3])) for _ in range(spatial)]
            if rng.random() < 0.3:
                kwargs["recompute_scale_factor"] = True
        if rng.random() < 0.5:
            kwargs["align_corners"] = True
        if spatial == 2 and rng.random() < 0.35:
            kwargs["antialias"] = True
        try:
            out = TF.interpolate(torch.zeros(1, 1, *sizes), **kwargs).shape[2:]
        except RuntimeError:
            continue  # an output size of 0: refused by both (tests/nn/test_upsampling.py)
        if kwargs.get("antialias") and out[-1] == 1 and out[0] != sizes[0]:
            continue  # torch's wrong values: test_antialiased_resizing_to_a_width_of_one_resamples_every_row
        cases.append(((2, rng.choice([1, 3]), *sizes), kwargs))
    return cases


def _torch_backward_contradicts_its_forward(shape: tuple, kwargs: dict) -> bool:
    """Where torch's backward is not the derivative of its forward, with a scale factor and an unchanged
    size: antialiased, its forward copies such a dim but its backward resamples it; bicubic, its
    forward resamples an unchanged image but its backward copies the gradient
    (test_gradients_are_the_derivative_of_the_forward_where_torch_contradicts_itself)."""
    if "scale_factor" not in kwargs or kwargs.get("recompute_scale_factor"):
        return False
    factors = kwargs["scale_factor"]
    factors = factors if isinstance(factors, (list, tuple)) else [factors] * (len(shape) - 2)
    same = [int(n * f) == n for n, f in zip(shape[2:], factors)]
    if kwargs.get("antialias"):
        return any(same)
    return kwargs["mode"] == "bicubic" and all(same)


FUZZ = _fuzz_cases(250, seed=11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kwargs"), FUZZ, ids=[f"{s}{k}" for s, k in FUZZ])
def test_seeded_fuzz_matches_torch_values_and_gradients(shape: tuple, kwargs: dict, dtype: Any) -> None:
    _compare(shape, kwargs, dtype, grad=not _torch_backward_contradicts_its_forward(shape, kwargs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [((2, 3, 2), {"mode": "linear", "scale_factor": [1.26]}),
     ((2, 3, 6, 2, 1), {"mode": "trilinear", "scale_factor": [2.2, 1.4, 2.71]}),
     ((1, 2, 7), {"mode": "linear", "scale_factor": 1.37}),
     ((1, 2, 5, 6), {"mode": "bilinear", "scale_factor": (2.71, 0.63)}),
     ((1, 2, 5, 6), {"mode": "bicubic", "scale_factor": (2.71, 0.63)}),
     ((1, 1, 3, 4), {"mode": "bicubic", "scale_factor": 1.2}),
     ((1, 2, 9, 7), {"mode": "bilinear", "scale_factor": (0.45, 0.7), "antialias": True}),
     ((1, 2, 9, 7), {"mode": "bicubic", "scale_factor": (1.0, 0.55), "antialias": True}),
     ((1, 2, 4, 3), {"mode": "bilinear", "scale_factor": (1.3, 1.2), "recompute_scale_factor": True})],
)  # fmt: skip
def test_a_scale_factor_sets_the_source_coordinate_as_torch(shape: tuple, kwargs: dict, dtype: Any) -> None:
    _compare(shape, kwargs, dtype, grad=not _torch_backward_contradicts_its_forward(shape, kwargs))


def test_the_scale_factor_and_not_the_sizes_sets_the_coordinate() -> None:
    # 7 * 1.37 rounds down to 9: the factor's 1/1.37 and the sizes' 7/9 read different source points
    x = ds.arange(7.0).reshape(1, 1, 7)
    by_factor = F.interpolate(x, scale_factor=1.37, mode="linear").numpy()[0, 0]
    by_size = F.interpolate(x, size=9, mode="linear").numpy()[0, 0]
    np.testing.assert_allclose(by_factor, np.maximum((np.arange(9) + 0.5) / 1.37 - 0.5, 0), rtol=1e-6)
    assert not np.allclose(by_factor, by_size)
    again = F.interpolate(x, scale_factor=1.37, mode="linear", recompute_scale_factor=True).numpy()
    np.testing.assert_array_equal(again, by_size[None, None])


@pytest.mark.parametrize("mode", ["linear", "bilinear", "trilinear"])
def test_the_linear_modes_copy_a_dim_whose_size_is_unchanged(mode: str) -> None:
    spatial = {"linear": 1, "bilinear": 2, "trilinear": 3}[mode]
    a = np.random.default_rng(0).standard_normal((1, 2) + (2,) * spatial).astype(np.float32)
    ours = F.interpolate(ds.tensor(a), scale_factor=1.3, mode=mode)  # 2 * 1.3 rounds down to 2
    np.testing.assert_array_equal(ours.numpy(), a)
    np.testing.assert_array_equal(TF.interpolate(torch.tensor(a), scale_factor=1.3, mode=mode).numpy(), a)


def test_bicubic_resamples_a_dim_whose_size_is_unchanged_as_torch() -> None:
    a = np.random.default_rng(0).standard_normal((1, 1, 2, 2)).astype(np.float32)
    ours = F.interpolate(ds.tensor(a), scale_factor=1.26, mode="bicubic").numpy()
    assert not np.allclose(ours, a)
    np.testing.assert_allclose(ours, TF.interpolate(torch.tensor(a), scale_factor=1.26, mode="bicubic"), atol=1e-6)


def test_float32_blend_weights_are_torchs_bit_for_bit() -> None:
    # a one-hot input reads out each output pixel's weight for that source pixel
    for n_in, factor in [(7, 1.37), (5, 2.71), (11, 0.63), (9, 1.9), (13, 3.33)]:
        eye = np.eye(n_in, dtype=np.float32).reshape(n_in, 1, n_in)
        for corners in (False, True):
            kwargs = {"scale_factor": factor, "mode": "linear", "align_corners": corners}
            theirs = TF.interpolate(torch.tensor(eye), **kwargs).numpy()
            np.testing.assert_array_equal(F.interpolate(ds.tensor(eye), **kwargs).numpy(), theirs)


def test_gradients_are_the_derivative_of_the_forward_where_torch_contradicts_itself() -> None:
    # 2 * 1.29 and 2 * 1.43 round down to 2: torch's antialiased forward copies the input, but its
    # backward resamples the gradient with 1/scale_factor's filter; ours is the copy's derivative
    a = np.random.default_rng(3).standard_normal((1, 2, 2, 2))
    kwargs = {"scale_factor": (1.29, 1.43), "mode": "bilinear", "antialias": True}
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    y = F.interpolate(x, **kwargs)
    np.testing.assert_array_equal(y.detach().numpy(), TF.interpolate(torch.tensor(a), **kwargs).numpy())
    np.testing.assert_array_equal(y.detach().numpy(), a)
    w = np.random.default_rng(4).standard_normal(a.shape)
    (y * ds.tensor(w, dtype=ds.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w)
    # bicubic the other way round: torch's forward resamples an image of unchanged size, its backward
    # copies the gradient; ours is the resampling's derivative, the same as a size= resize's at 1/1.2
    kwargs = {"scale_factor": 1.2, "mode": "bicubic"}
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    y = F.interpolate(x, **kwargs)
    t = torch.tensor(a, requires_grad=True)
    np.testing.assert_allclose(y.detach().numpy(), TF.interpolate(t, **kwargs).detach().numpy(), rtol=1e-12)
    (y * ds.tensor(w, dtype=ds.float64)).sum().backward()
    # the resampling along one dim of size 2 as an (in, out) matrix: the response to each one-hot row
    # (a height of 1 resamples to itself: its four taps all read pixel 0)
    one_hot = [ds.tensor(e.reshape(1, 1, 1, 2), dtype=ds.float64) for e in np.eye(2)]
    one_dim = np.stack([F.interpolate(e, **kwargs).numpy().ravel() for e in one_hot])
    np.testing.assert_allclose(x.grad.numpy(), np.einsum("pi,qj,ncij->ncpq", one_dim, one_dim, w), rtol=1e-12)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialiased_resizing_to_a_width_of_one_resamples_every_row(mode: str) -> None:
    # torch gives every output row the first row's value here (its vertical pass on a width of 1);
    # ours equals the same resize done on the transposed input, where torch is right
    a = np.random.default_rng(5).standard_normal((1, 2, 7, 1))
    ours = F.interpolate(ds.tensor(a, dtype=ds.float64), size=(4, 1), mode=mode, antialias=True).numpy()
    ref = TF.interpolate(torch.tensor(a).transpose(2, 3), size=(1, 4), mode=mode, antialias=True)
    np.testing.assert_allclose(ours, ref.transpose(2, 3).numpy(), rtol=1e-12, atol=1e-13)
    assert not np.allclose(ours[..., 1:, :], ours[..., :1, :])


def test_second_order_gradients_flow_through_the_linear_modes() -> None:
    a = np.random.default_rng(6).standard_normal((1, 1, 3, 4))
    for kwargs in ({"mode": "bilinear", "scale_factor": 1.7}, {"mode": "bicubic", "scale_factor": (0.8, 2.3)}):
        x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
        (g,) = ds.autograd.grad((F.interpolate(x, **kwargs) ** 2).sum(), [x], create_graph=True)
        (gg,) = ds.autograd.grad(g.sum(), [x])
        t = torch.tensor(a, requires_grad=True)
        (tg,) = torch.autograd.grad((TF.interpolate(t, **kwargs) ** 2).sum(), [t], create_graph=True)
        (tgg,) = torch.autograd.grad(tg.sum(), [t])
        np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-10, atol=1e-12)


def test_scale_factors_on_the_strict_device() -> None:
    a = np.random.default_rng(7).standard_normal((1, 2, 5, 4))
    for kwargs in (
        {"mode": "bilinear", "scale_factor": (1.26, 2.2)},
        {"mode": "bicubic", "scale_factor": 1.7, "align_corners": True},
        {"mode": "bilinear", "scale_factor": (1.0, 0.6), "antialias": True},
    ):
        x = ds.tensor(a, dtype=ds.float64, device="strict", requires_grad=True)
        y = F.interpolate(x, **kwargs)
        y.sum().backward()
        assert str(y.device) == "strict" and str(x.grad.device) == "strict"
        t = torch.tensor(a, requires_grad=True)
        ref = TF.interpolate(t, **kwargs)
        ref.sum().backward()
        np.testing.assert_allclose(y.detach().cpu().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-13)
