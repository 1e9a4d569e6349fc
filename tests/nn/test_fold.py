"""unfold / fold and their modules against torch: values and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

CASES = [
    {"kernel_size": 2, "stride": 2},
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": (2, 3), "dilation": (2, 1), "stride": (1, 2), "padding": (1, 0)},
]


@pytest.mark.parametrize("kwargs", CASES)
def test_unfold_and_fold_match_torch(check_op: Any, kwargs: dict) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    check_op(lambda x: F.unfold(x, **kwargs), lambda x: TF.unfold(x, **kwargs), [x])
    check_op(lambda x: F.unfold(x, **kwargs), lambda x: TF.unfold(x, **kwargs), [x[0]])
    cols = TF.unfold(torch.tensor(x), **kwargs).numpy()
    check_op(lambda c: F.fold(c, (6, 7), **kwargs), lambda c: TF.fold(c, (6, 7), **kwargs), [cols])
    check_op(nn.Fold((6, 7), **kwargs), torch.nn.Fold((6, 7), **kwargs), [cols[0]])
    check_op(nn.Unfold(**kwargs), torch.nn.Unfold(**kwargs), [x])


def test_fold_checks_the_block_count() -> None:
    with pytest.raises(ValueError, match="does not hold 4 blocks"):
        F.fold(F.unfold(ds.ones(1, 1, 4, 4), 2, stride=2)[:, :, :3], (4, 4), 2, stride=2)
