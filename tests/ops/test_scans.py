"""Running reductions (downslope.ops.scans) against PyTorch: infinities in logcumsumexp, dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

inf = float("inf")


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize(
    "values",
    [[-inf], [1.0, inf], [-inf, 1.0, 2.0], [1.0, -inf, 2.0], [1000.0, inf, 3.0], [inf, 1.0], [-inf, -inf, 0.0]],
)
def test_logcumsumexp_with_infinities_matches_torch(device, values):
    x = ds.tensor(values, dtype=ds.float64, device=device, requires_grad=True)
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y, r = ds.logcumsumexp(x, 0), torch.logcumsumexp(t, 0)
    np.testing.assert_allclose(y.detach().cpu().numpy(), r.detach().numpy())
    weights = np.arange(1.0, len(values) + 1)
    y.backward(ds.tensor(weights, dtype=ds.float64, device=device))
    r.backward(torch.tensor(weights))
    np.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy())


def test_logcumsumexp_of_a_matrix_with_infinities_matches_torch(check_op):
    a = np.array([[-inf, 0.5, 1.0], [2.0, inf, -1.0], [-inf, -inf, -inf]])
    check_op(lambda t: ds.logcumsumexp(t, 1), lambda t: torch.logcumsumexp(t, 1), [a], grad=False)
    check_op(lambda t: ds.logcumsumexp(t, 0), lambda t: torch.logcumsumexp(t, 0), [a], grad=False)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "bool"])
@pytest.mark.parametrize("asked", [None, "int8", "int16"])
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_integer_running_sums_take_int64_or_the_dtype_asked_for_like_torch(dtype, asked, name):
    data = [1, 1, 0]
    ours = getattr(ds.tensor(data, dtype=getattr(ds, dtype)), name)(0, dtype=asked and getattr(ds, asked))
    theirs = getattr(torch.tensor(data, dtype=getattr(torch, dtype)), name)(0, dtype=asked and getattr(torch, asked))
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
