"""A float64 module fed ds.tensor(float64 NumPy data) (which is float32 by default, unlike torch's)
is told why, and how to keep float64, in linear's dtype error."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds


def test_the_message_names_the_float32_default_and_the_ways_to_keep_float64():
    x = np.random.default_rng(0).standard_normal((2, 3))
    model = ds.nn.Linear(3, 1).double()
    with pytest.raises(ds.errors.DTypeError) as info:
        model(ds.tensor(x))
    text = str(info.value)
    assert "input dtype float32 differs from weight dtype float64" in text
    assert "ds.tensor(a, dtype=ds.float64) or ds.from_numpy(a) keeps it float64" in text
    assert model(ds.tensor(x, dtype=ds.float64)).dtype == ds.float64
    assert model(ds.from_numpy(x)).dtype == ds.float64


def test_other_mismatches_do_not_get_the_hint():
    with pytest.raises(ds.errors.DTypeError) as info:
        ds.nn.Linear(3, 1)(ds.ones(2, 3, dtype=ds.float64))
    assert "from_numpy" not in str(info.value)
