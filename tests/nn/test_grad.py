"""downslope.nn.grad (torch.nn.grad): conv input and weight gradients against torch's, float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")

# (spatial input size, C_in, C_out, kernel, stride, padding, dilation, groups); the strided cases leave
# input rows no output reads (the transposed size needs output padding)
CASES = [
    ((9,), 2, 3, (3,), 1, 0, 1, 1),
    ((10,), 4, 6, (3,), 4, 1, 1, 2),
    ((11,), 3, 3, (2,), 3, 2, 2, 3),
    ((7, 8), 2, 4, (3, 2), (2, 3), (1, 0), (1, 2), 2),
    ((9, 6), 3, 2, (2, 3), 2, 1, 1, 1),
    ((5, 6, 7), 2, 4, (2, 3, 2), (2, 1, 3), (0, 1, 1), (1, 2, 1), 2),
]


def _operands(case: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    size, c_in, c_out, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(len(size) * 10 + c_in)
    x = rng.standard_normal((2, c_in, *size))
    w = rng.standard_normal((c_out, c_in // groups, *kernel))
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    conv = getattr(torch.nn.functional, f"conv{len(size)}d")
    out_shape = conv(torch.tensor(x), torch.tensor(w), **options).shape
    return x, w, rng.standard_normal(tuple(out_shape)), options


@pytest.mark.parametrize("case", CASES)
def test_conv_input_and_weight_gradients_match_torch(case: tuple) -> None:
    x, w, g, options = _operands(case)
    nd = len(case[0])
    ours_in = getattr(nn.grad, f"conv{nd}d_input")(
        x.shape, ds.tensor(w, dtype=ds.float64), ds.tensor(g, dtype=ds.float64), **options
    )
    ref_in = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, torch.tensor(w), torch.tensor(g), **options)
    np.testing.assert_allclose(ours_in.numpy(), ref_in.numpy(), rtol=1e-12, atol=1e-12)
    assert ours_in.dtype == np.float64 and not ours_in.requires_grad
    ours_w = getattr(nn.grad, f"conv{nd}d_weight")(
        ds.tensor(x, dtype=ds.float64), list(w.shape), ds.tensor(g, dtype=ds.float64), **options
    )
    ref_w = getattr(torch.nn.grad, f"conv{nd}d_weight")(torch.tensor(x), list(w.shape), torch.tensor(g), **options)
    np.testing.assert_allclose(ours_w.numpy(), ref_w.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [CASES[1], CASES[3]])
def test_conv_gradients_are_differentiable_in_the_other_operand(case: tuple) -> None:
    x, w, g, options = _operands(case)
    nd = len(case[0])
    r = np.random.default_rng(1).standard_normal(x.shape)
    ours_w, ref_w = ds.tensor(w, dtype=ds.float64, requires_grad=True), torch.tensor(w, requires_grad=True)
    ours_g, ref_g = ds.tensor(g, dtype=ds.float64, requires_grad=True), torch.tensor(g, requires_grad=True)
    ours = getattr(nn.grad, f"conv{nd}d_input")(x.shape, ours_w, ours_g, **options)
    ref = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, ref_w, ref_g, **options)
    (ours * ds.tensor(r, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(ours_w.grad.numpy(), ref_w.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_g.grad.numpy(), ref_g.grad.numpy(), rtol=1e-12, atol=1e-12)
    ours_x = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    with ds.no_grad():
        off = getattr(nn.grad, f"conv{nd}d_weight")(ours_x, w.shape, ds.tensor(g, dtype=ds.float64), **options)
    assert not off.requires_grad


def test_nn_grad_is_importable_as_torchs_and_checks_its_shapes() -> None:
    import downslope.nn.grad as grad_module

    assert nn.grad is grad_module and F.grad is grad_module
    with pytest.raises(ValueError, match=r"conv2d_input: grad_output has shape \(1, 1, 3, 3\).*gives \(1, 1, 2, 2\)"):
        nn.grad.conv2d_input((1, 1, 3, 3), ds.ones(1, 1, 2, 2), ds.ones(1, 1, 3, 3))
    with pytest.raises(TypeError, match="conv1d_weight: weight_size must be a sequence of ints"):
        nn.grad.conv1d_weight(ds.ones(1, 1, 3), 3, ds.ones(1, 1, 1))
