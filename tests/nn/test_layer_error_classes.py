"""Errors found at a layer's construction or forward are of torch's class too (``except RuntimeError:``
fallbacks written against torch keep catching them), and still of the class the library raised before
(a ValueError / TypeError), with its message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32)

CASES: dict[str, tuple[Any, type[BaseException]]] = {
    "BatchNorm2d(3) on 4 channels": (lambda lib, t: lib.nn.BatchNorm2d(3)(t), ValueError),
    "LayerNorm(5) on (..., 6)": (lambda lib, t: lib.nn.LayerNorm(5)(t), ValueError),
    "GroupNorm(2, 4) on 3 channels": (lambda lib, t: lib.nn.GroupNorm(2, 4)(t[:, :3]), ValueError),
    "RMSNorm(5) on (..., 6)": (lambda lib, t: lib.nn.RMSNorm(5)(t), ValueError),
    "GLU on an odd last dim": (lambda lib, t: lib.nn.GLU()(t[..., :5]), ValueError),
    "PReLU(3) on 4 channels": (lambda lib, t: lib.nn.PReLU(3)(t), ValueError),
    "ConvTranspose2d output_padding >= stride": (
        lambda lib, t: lib.nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=2)(t),
        ValueError,
    ),
    "MaxUnpool2d index out of range": (
        lambda lib, t: lib.nn.MaxUnpool2d(2)(t, lib.zeros(2, 4, 6, 6, dtype=lib.int64) + 500),
        ValueError,
    ),
    "LocalResponseNorm(0)": (lambda lib, t: lib.nn.LocalResponseNorm(0)(t), ValueError),
    "Flatten(start_dim > end_dim)": (lambda lib, t: lib.nn.Flatten(2, 1)(t), ValueError),
    "torch.flatten(start_dim > end_dim)": (lambda lib, t: lib.flatten(t, 2, 1), ValueError),
    "Flatten on a 1-D input": (lambda lib, t: lib.nn.Flatten()(t[0, 0, 0]), ValueError),
    "Conv2d padding=(1, 2, 3)": (lambda lib, t: lib.nn.Conv2d(4, 4, 3, padding=(1, 2, 3))(t), Exception),
    "ZeroPad2d((1, 2, 3))": (lambda lib, t: lib.nn.ZeroPad2d((1, 2, 3))(t), ValueError),
    "TransformerEncoderLayer(activation='swish')": (
        lambda lib, t: lib.nn.TransformerEncoderLayer(6, 2, activation="swish"),
        ValueError,
    ),
    "Hardtanh(2.0, 1.0)": (lambda lib, t: lib.nn.Hardtanh(2.0, 1.0), ValueError),
    "Embedding(5, 3, padding_idx=5)": (lambda lib, t: lib.nn.Embedding(5, 3, padding_idx=5), ValueError),
}


# the index check reads the indices' values: made on the host only (a device answers with its own error)
HOST_ONLY = {"MaxUnpool2d index out of range"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.host_only) if n in HOST_ONLY else n for n in CASES])
def test_layer_errors_are_of_torch_class_and_the_library_class(name: str) -> None:
    call, before = CASES[name]
    with pytest.raises(Exception) as theirs:
        call(torch, torch.from_numpy(X.copy()))
    with pytest.raises(ds.errors.DownslopeError) as ours:
        call(ds, ds.from_numpy(X.copy()))
    torch_class = type(theirs.value)
    assert isinstance(ours.value, torch_class), (type(ours.value).__mro__, torch_class)
    assert isinstance(ours.value, before)
