"""Binary cross-entropy refuses an integer or boolean target, as torch does (0/1 labels meant as
class indices, or needing .float()); the probability range error is a RuntimeError as in torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")

LOSSES = {
    "bce": lambda T, x, t: T.nn.functional.binary_cross_entropy(x, t),
    "bce_module": lambda T, x, t: T.nn.BCELoss()(x, t),
    "bce_with_logits": lambda T, x, t: T.nn.functional.binary_cross_entropy_with_logits(x, t),
    "bce_with_logits_module": lambda T, x, t: T.nn.BCEWithLogitsLoss()(x, t),
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("target_dtype", ["int64", "bool"])
def test_an_integer_target_is_refused_like_torch(name: str, target_dtype: str) -> None:
    for T in (torch, ds):
        x = T.tensor([0.25, 0.75])
        t = T.tensor([1, 0], dtype=getattr(T, target_dtype))
        with pytest.raises(RuntimeError):
            LOSSES[name](T, x, t)
    with pytest.raises(ds.errors.DTypeError, match=f"Found dtype {target_dtype} but expected float32"):
        LOSSES[name](ds, ds.tensor([0.25, 0.75]), ds.tensor([1, 0], dtype=getattr(ds, target_dtype)))


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_floating_target_still_matches_torch(name: str) -> None:
    x, t = np.array([0.25, 0.75], np.float32), np.array([1.0, 0.0], np.float32)
    ours = LOSSES[name](ds, ds.tensor(x), ds.tensor(t)).item()
    theirs = LOSSES[name](torch, torch.tensor(x), torch.tensor(t)).item()
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert F.binary_cross_entropy(ds.tensor(x), [1.0, 0.0]).item() == pytest.approx(
        nn.BCELoss()(ds.tensor(x), ds.tensor(t)).item()
    )  # a list target is data, converted as before


@pytest.mark.host_only  # the range check reads the values: host arrays only
def test_probabilities_outside_zero_one_are_a_runtime_error_as_in_torch() -> None:
    for T in (torch, ds):
        with pytest.raises(RuntimeError, match="between 0 and 1|in \\[0, 1\\]"):
            T.nn.functional.binary_cross_entropy(T.tensor([1.5]), T.tensor([1.0]))
    with pytest.raises(ValueError):  # still a ValueError for code written against downslope
        F.binary_cross_entropy(ds.tensor([1.5]), ds.tensor([1.0]))
