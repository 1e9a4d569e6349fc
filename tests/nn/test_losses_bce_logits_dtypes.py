"""binary_cross_entropy_with_logits's result dtype and values where input, target and weights have
different floating dtypes, against torch (whose in-place steps on 1 - target give the target's dtype),
and multi_margin_loss's refusal of a floating target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import DTypeError

_FLOATS = ["float16", "float32", "float64"]
_RNG = np.random.default_rng(0)
_X, _Y, _W = _RNG.standard_normal(6) * 3, _RNG.random(6), _RNG.random(6) + 0.5


@pytest.mark.parametrize("extra", [None, "weight", "pos_weight"])
@pytest.mark.parametrize("target_dtype", _FLOATS)
@pytest.mark.parametrize("input_dtype", _FLOATS)
def test_bce_with_logits_dtype_and_value_are_torchs(input_dtype: str, target_dtype: str, extra: str | None) -> None:
    results = []
    for m in (torch, ds):
        x = m.tensor(_X, dtype=getattr(m, input_dtype), requires_grad=True)
        y = m.tensor(_Y, dtype=getattr(m, target_dtype))
        kw = {} if extra is None else {extra: m.tensor(_W, dtype=m.float64)}
        loss = m.nn.functional.binary_cross_entropy_with_logits(x, y, **kw)
        loss.backward()
        results.append((str(loss.dtype).replace("torch.", ""), loss.item(), str(x.grad.dtype).replace("torch.", "")))
    (t_dtype, t_value, t_grad), (d_dtype, d_value, d_grad) = results
    assert d_dtype == t_dtype and d_grad == t_grad
    # float32 pieces (log_sigmoid in the input's dtype) may differ by an ulp of float32 in a float64 result
    piece = float(max(np.finfo(input_dtype).eps, np.finfo(target_dtype).eps))  # pytest 9.2 takes Python numbers only
    assert d_value == pytest.approx(t_value, rel=4 * piece, abs=4 * piece)


def test_multi_margin_loss_refuses_a_floating_target() -> None:
    x = [[1.0, 2.0, 0.5]]
    with pytest.raises(RuntimeError, match="expected scalar type Long"):
        torch.nn.functional.multi_margin_loss(torch.tensor(x), torch.tensor([1.7]))
    with pytest.raises(DTypeError, match="expected scalar type Long"):
        ds.nn.functional.multi_margin_loss(ds.tensor(x), ds.tensor([1.7]))
