"""Values written into integer (and float16) tensors by scatter, masked_fill and index_fill are
converted as torch 2.13 converts them: a number, or a 0-d tensor read as one, that does not fit is
refused (torch: "value cannot be converted to type uint8_t without overflow"), -1 into uint8 is 255;
scatter's src tensor, 0-d too, must have the tensor's dtype."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_NUMBERS = ["-2.0", "300", "-1", "-1.37", "255.9", "256.0", "-256", "float('nan')", "2.7"]
_TENSORS = [
    "L.tensor(-1.37, dtype=L.float64)", "L.tensor(-2)", "L.tensor(300)", "L.tensor(-1)", "L.tensor(-255)",
    "L.tensor(1e10)", "L.tensor(True)", "L.tensor(7, dtype=L.uint8)",
]  # fmt: skip
_OPS = [
    "L.tensor([1, 2], dtype=L.{dt}).scatter_(0, L.tensor([0]), {v})",
    "L.tensor([1, 2], dtype=L.{dt}).scatter(0, L.tensor([0]), {v})",
    "L.tensor([1, 2], dtype=L.{dt}).masked_fill(L.tensor([True, False]), {v})",
    "L.tensor([1, 2], dtype=L.{dt}).masked_fill_(L.tensor([True, False]), {v})",
    "L.tensor([1, 2], dtype=L.{dt}).index_fill(0, L.tensor([0]), {v})",
    "L.tensor([1, 2], dtype=L.{dt}).index_fill_(0, L.tensor([0]), {v})",
]


def _run(L, expr):
    try:
        return eval(expr, {"L": L}).tolist()
    except RuntimeError:
        return "refused"


def _same_as_torch(op: str, value: str, dtype: str) -> None:
    expr = op.format(dt=dtype, v=value)
    assert str(_run(ds, expr)) == str(_run(torch, expr)), expr


@pytest.mark.parametrize("dtype", ["uint8", "int8", "float16"])
@pytest.mark.parametrize("op", _OPS)
@pytest.mark.parametrize("value", _NUMBERS)
def test_filled_numbers_convert_or_refuse_as_torch(op, value, dtype) -> None:
    _same_as_torch(op, value, dtype)


@pytest.mark.host_only  # a 0-d value on a device is not read back to be checked (that would wait for it)
@pytest.mark.parametrize("dtype", ["uint8", "int8", "float16"])
@pytest.mark.parametrize("op", _OPS)
@pytest.mark.parametrize("value", _TENSORS)
def test_filled_zero_d_tensor_values_convert_or_refuse_as_torch(op, value, dtype) -> None:
    _same_as_torch(op, value, dtype)
