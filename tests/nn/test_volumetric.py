"""3-D layers against torch: values and gradients (input, weight, bias)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)  # PyTorch's layers initialize at random: the same weights on every run


@pytest.mark.parametrize(
    ("k", "s", "p", "d", "g"), [(3, 1, 1, 1, 1), ((2, 3, 3), (2, 1, 2), (1, 0, 1), 1, 2), (3, 2, 0, (2, 1, 1), 1)]
)
def test_conv3d_matches_torch(check_op: Any, k: Any, s: Any, p: Any, d: Any, g: int) -> None:
    rng = np.random.default_rng(0)
    kk = (k, k, k) if isinstance(k, int) else k
    x = rng.standard_normal((2, 4, 5, 6, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4 // g, *kk)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    check_op(lambda x, w, b: F.conv3d(x, w, b, s, p, d, g), lambda x, w, b: TF.conv3d(x, w, b, s, p, d, g), [x, w, b])


def test_conv3d_module_and_unbatched_input_match_torch(check_op: Any) -> None:
    ours, theirs = nn.Conv3d(2, 3, 3, padding=1), torch.nn.Conv3d(2, 3, 3, padding=1)
    bound = 1 / np.sqrt(2 * 27)
    assert np.abs(ours.weight.detach().numpy()).max() <= bound + 1e-6
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 4)).astype(np.float32)
    check_op(ours, theirs, [x])


@pytest.mark.parametrize(
    ("ours", "ref"),
    [(lambda x: F.max_pool3d(x, 2), lambda x: TF.max_pool3d(x, 2)),
     (lambda x: F.max_pool3d(x, 3, 2, 1), lambda x: TF.max_pool3d(x, 3, 2, 1)),
     (lambda x: F.avg_pool3d(x, (2, 3, 3), 2, (1, 1, 0)), lambda x: TF.avg_pool3d(x, (2, 3, 3), 2, (1, 1, 0))),
     (lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)), lambda x: TF.adaptive_avg_pool3d(x, (2, 3, 4))),
     (lambda x: F.adaptive_avg_pool3d(x, 1), lambda x: TF.adaptive_avg_pool3d(x, 1)),
     (nn.InstanceNorm3d(3, affine=True), torch.nn.InstanceNorm3d(3, affine=True)),
     (nn.ReplicationPad3d(1), torch.nn.ReplicationPad3d(1)), (nn.ZeroPad3d((1, 0, 0, 1, 2, 0)), torch.nn.ZeroPad3d((1, 0, 0, 1, 2, 0)))],
)  # fmt: skip
def test_volumetric_pooling_norm_and_padding_match_torch(check_op: Any, ours: Any, ref: Any) -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 6, 7)).astype(np.float32)
    check_op(ours, ref, [x])


@pytest.mark.parametrize(
    ("k", "s", "p", "op", "d", "g"), [(3, 2, 1, 1, 1, 1), (2, (1, 2, 3), 0, 0, 1, 2), (3, 1, 2, 0, 2, 1)]
)
def test_conv_transpose3d_matches_torch(check_op: Any, k: int, s: Any, p: int, op: int, d: int, g: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3, 4, 3)).astype(np.float32)
    w = rng.standard_normal((4, 6 // g, k, k, k)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    check_op(
        lambda x, w, b: F.conv_transpose3d(x, w, b, s, p, op, g, d),
        lambda x, w, b: TF.conv_transpose3d(x, w, b, s, p, op, g, d),
        [x, w, b],
    )
    ours, theirs = (
        nn.ConvTranspose3d(4, 6, k, s, p, op, g, dilation=d),
        torch.nn.ConvTranspose3d(4, 6, k, s, p, op, g, dilation=d),
    )
    ours.load_state_dict({key: v.detach().numpy() for key, v in theirs.state_dict().items()})
    np.testing.assert_allclose(
        ours(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5
    )
