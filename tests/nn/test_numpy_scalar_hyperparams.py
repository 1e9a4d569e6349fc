"""NumPy scalars as layer hyperparameters (a size read from an array or a config, a dropout from a
float32 array): taken where torch takes them, refused with the library's errors where torch refuses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
N = np.int64(2)
P = np.float32(0.1)


@pytest.mark.parametrize(
    ("name", "args", "shape"),
    [
        ("ZeroPad1d", (N,), (2, 3, 5)),
        ("ZeroPad2d", (N,), (2, 3, 4, 5)),
        ("ZeroPad3d", (np.int32(1),), (1, 2, 3, 4, 5)),
        ("ReflectionPad1d", (N,), (2, 3, 5)),
        ("ReflectionPad2d", (N,), (2, 3, 4, 5)),
        ("ReplicationPad2d", ((N, np.int16(1), 0, N),), (2, 3, 4, 5)),
        ("CircularPad1d", (N,), (2, 3, 5)),
        ("ConstantPad1d", ((N, N), 0.5), (2, 3, 5)),
        ("ConstantPad2d", (N, 1.5), (2, 3, 4, 5)),
    ],
)
def test_padding_layers_take_numpy_integers(check_op: Any, name: str, args: tuple, shape: tuple) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ours = getattr(nn, name)(*args)
    check_op(ours, getattr(torch.nn, name)(*args), [x])
    assert all(type(p) is int for p in ours.padding)  # stored as Python ints: a clean repr and state


def test_padding_layers_still_refuse_bools_and_floats() -> None:
    for bad in (True, 2.0, (1, np.float64(1.0))):
        with pytest.raises(ds.errors.ArgumentError, match="ConstantPad1d: padding must be one int or 2 of them"):
            nn.ConstantPad1d(bad, 0.0)


def test_group_norm_takes_numpy_integer_groups(check_op: Any) -> None:
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32)
    check_op(lambda x: F.group_norm(x, N), lambda x: torch.nn.functional.group_norm(x, N), [x])
    ours, theirs = nn.GroupNorm(N, 4), torch.nn.GroupNorm(N, 4)
    check_op(lambda x: ours(x), lambda x: theirs(x), [x], grad_inputs=[0])
    with pytest.raises(ds.errors.ArgumentError, match="num_groups >= 1"):
        F.group_norm(ds.tensor(x), True)


def test_attention_and_transformer_take_numpy_float_dropout() -> None:
    mha = nn.MultiheadAttention(8, 2, dropout=P)
    assert type(mha.dropout) is float and mha.dropout == pytest.approx(0.1)
    torch.nn.MultiheadAttention(8, 2, dropout=P)  # torch takes it too
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=P)
    torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=P)
    layer.eval()
    assert layer(ds.ones(3, 2, 8)).shape == (3, 2, 8)
    nn.TransformerDecoderLayer(8, 2, 16, dropout=np.float64(0.2))
    nn.Transformer(8, 2, 1, 1, 16, dropout=P)
    q = ds.ones(1, 2, 3, 4)
    assert F.scaled_dot_product_attention(q, q, q, dropout_p=np.float32(0.0)).shape == (1, 2, 3, 4)
    for bad in (True, 1.0, -0.1):
        with pytest.raises(ds.errors.ArgumentError, match="dropout must be a probability"):
            nn.MultiheadAttention(8, 2, dropout=bad)
