"""The export check compares the runtime's outputs with the model's: an infinity in the model's output
must not make the tolerance infinite (every value would then pass); non-finite entries must match
exactly (same places, same sign, NaN for NaN), the finite ones within the usual tolerance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from downslope.export.onnx.model import _float_difference, _floats_agree

INF, NAN = np.inf, np.nan


@pytest.mark.parametrize(
    ("got", "expected", "agree"),
    [
        ([INF, 1.0], [INF, 1.0004], True),
        ([INF, 5.0], [INF, 1.0], False),  # an infinity elsewhere must not hide a wrong finite value
        ([-INF, 1.0], [INF, 1.0], False),
        ([1e30, 1.0], [INF, 1.0], False),
        ([NAN, 2.0], [NAN, 2.0], True),
        ([NAN, 2.0], [INF, 2.0], False),
        ([3.0e38, 1.0], [3.0e38, 1.0], True),  # near float32's largest: no overflow in the difference
    ],
)
def test_non_finite_entries_match_exactly_and_finite_ones_within_tolerance(got, expected, agree):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy RuntimeWarning (atol: inf, overflow) reaches the user
        assert _floats_agree(np.array(got, np.float32), np.array(expected, np.float32)) is agree


def test_the_refusal_says_what_differs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _float_difference(np.array([INF, 5.0]), np.array([INF, 1.0])) == "largest difference 4"
        said = _float_difference(np.array([-INF, 1.0]), np.array([INF, 1.0]))
    assert said.startswith("1 of 2 values are inf or NaN in only one")


def test_complex_outputs_compare_too():
    e = np.array([1 + 1j, complex(INF, 0)], np.complex64)
    assert _floats_agree(e.copy(), e) and not _floats_agree(np.array([1 + 2j, complex(INF, 0)], np.complex64), e)
