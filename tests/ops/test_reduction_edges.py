"""Edge cases of reductions against torch 2.13: cov with more correction than observations (torch
clamps the degrees of freedom at 0: inf of the numerator's sign, with a warning)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("correction", [3, 4, 7])
def test_cov_with_correction_past_the_observations_is_inf_of_the_numerators_sign_as_torch(correction) -> None:
    x = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0], [2.0, 2.0, 2.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = torch.cov(torch.tensor(x), correction=correction)
        got = ds.cov(ds.tensor(x, dtype=ds.float64), correction=correction)
    assert sum("degrees of freedom" in str(w.message) for w in caught) == 2  # one each
    assert str(got.tolist()) == str(ref.tolist())  # +inf, -inf and nan where torch has them


def test_cov_with_weights_and_too_much_correction_is_torchs() -> None:
    x = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
    w = np.array([1.0, 0.5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.cov(torch.tensor(x), correction=5, aweights=torch.tensor(w))
        got = ds.cov(ds.tensor(x, dtype=ds.float64), correction=5, aweights=ds.tensor(w, dtype=ds.float64))
    assert str(got.tolist()) == str(ref.tolist())
