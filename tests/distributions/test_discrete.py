"""discrete.py's distributions against torch.distributions: the class index checks of Categorical."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import OutOfRangeError

torch = pytest.importorskip("torch")


@pytest.mark.host_only  # the bounds are checked on host arrays only (a device would wait), as torch asserts there
@pytest.mark.parametrize("value", [-1, -2, 2])
def test_categorical_log_prob_refuses_an_out_of_range_class_as_torch(value):
    # without validation, a negative class used to wrap to the last ones (log p[-1]); torch's gather
    # refuses it
    theirs = torch.distributions.Categorical(probs=torch.tensor([0.2, 0.8]), validate_args=False)
    with pytest.raises(RuntimeError):
        theirs.log_prob(torch.tensor(value))
    ours = ds.distributions.Categorical(probs=ds.tensor([0.2, 0.8]), validate_args=False)
    with pytest.raises(OutOfRangeError, match=str(value)):
        ours.log_prob(ds.tensor(value))
    with pytest.raises(OutOfRangeError):
        ours.log_prob(ds.tensor([[0, 1], [value, 0]]))


def test_categorical_log_prob_of_valid_classes_matches_torch():
    logits = [[0.1, -0.4, 1.2], [2.0, 0.0, -1.0]]
    ours = ds.distributions.Categorical(logits=ds.tensor(logits, dtype=ds.float64)).log_prob(ds.tensor([[2, 0]]))
    theirs = torch.distributions.Categorical(logits=torch.tensor(logits, dtype=torch.float64)).log_prob(
        torch.tensor([[2, 0]])
    )
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-14)
