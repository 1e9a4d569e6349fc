"""Transposed convolution against torch: values and gradients of input, weight and bias."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")

CASES_2D = [
    # (C_in, C_out, groups, kernel, stride, padding, output_padding, dilation, (H, W))
    (3, 2, 1, 4, 2, 1, 0, 1, (4, 4)),
    (4, 6, 2, 3, 2, 1, 1, 1, (5, 6)),
    (2, 4, 1, 3, 3, 2, 2, 2, (5, 3)),
    (2, 2, 1, 5, 1, 4, 0, 1, (7, 7)),
    (2, 3, 1, (2, 3), (1, 2), (0, 1), 0, 1, (3, 4)),
]


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)  # PyTorch's layers initialize at random: the same weights on every run


@pytest.mark.parametrize(("cin", "cout", "g", "k", "s", "p", "op", "d", "hw"), CASES_2D)
def test_conv_transpose2d_matches_torch(check_op: Any, cin, cout, g, k, s, p, op, d, hw) -> None:
    rng = np.random.default_rng(0)
    kk = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((2, cin, *hw)).astype(np.float32)
    w = rng.standard_normal((cin, cout // g, *kk)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    check_op(
        lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d),
        lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, s, p, op, g, d),
        [x, w, b],
    )


def test_conv_transpose1d_and_unbatched_inputs_match_torch(check_op: Any) -> None:
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 6)).astype(np.float32), rng.standard_normal((3, 4, 3)).astype(np.float32)
    check_op(
        lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
        lambda x, w: torch.nn.functional.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
        [x, w],
    )
    check_op(lambda x, w: F.conv_transpose1d(x, w), lambda x, w: torch.nn.functional.conv_transpose1d(x, w), [x[0], w])


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_transpose_modules_match_torch_after_loading_its_weights(dims: int) -> None:
    ours = getattr(nn, f"ConvTranspose{dims}d")(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    theirs = getattr(torch.nn, f"ConvTranspose{dims}d")(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert ours.weight.shape == tuple(theirs.weight.shape) and ours.bias.shape == tuple(theirs.bias.shape)
    bound = 1 / np.sqrt(3 * 3**dims)  # PyTorch's default init: fan_in = C_out / groups * prod(kernel)
    assert np.abs(ours.weight.numpy()).max() <= bound + 1e-6 and np.abs(ours.bias.numpy()).max() <= bound + 1e-6
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 4) + (5,) * dims).astype(np.float32)
    np.testing.assert_allclose(ours(ds.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


def test_conv_transpose_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(ds.ones(1, 1, 3, 3), ds.ones(1, 1, 3, 3), stride=1, output_padding=1)
    with pytest.raises(ValueError, match="input has 2 channels"):
        F.conv_transpose2d(ds.ones(1, 2, 3, 3), ds.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
