"""F.pdist with NaN rows, inf rows and duplicate rows (zero distances): torch's distances and gradients."""

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

PS = [0.0, 0.5, 1.0, 2.0, 3.0, float("inf")]


def _rows(kind: str, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4))
    if kind == "nan":
        x[2, 1] = np.nan
    elif kind == "inf":
        x[4, 0] = np.inf
    elif kind == "duplicate":
        x[5] = x[1]
        x[6] = x[1]
    return x.astype(dtype)


@pytest.mark.host_only
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["nan", "inf", "duplicate"])
@pytest.mark.parametrize("p", PS)
def test_pdist_of_non_finite_and_repeated_rows_is_torchs(kind, p, dtype):
    x = _rows(kind, dtype)
    g = np.random.default_rng(1).standard_normal(21).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    dt = torch.nn.functional.pdist(xt, p)
    dt.backward(torch.tensor(g))
    xd = ds.tensor(x, dtype=ds.float64 if dtype == np.float64 else ds.float32, requires_grad=True)
    dd = ds.nn.functional.pdist(xd, p)
    dd.backward(ds.tensor(g, dtype=dd.dtype))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(dd.detach().numpy(), dt.detach().numpy(), rtol=tol, atol=tol, equal_nan=True)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=tol * 10, atol=tol * 10, equal_nan=True)


def test_a_nan_row_leaves_the_other_pairs_euclidean_distances_alone():
    # the Gram path centred every row on a mean made NaN by one row: every distance came out NaN
    x = np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]], dtype=np.float32)
    d = ds.nn.functional.pdist(ds.tensor(x))
    np.testing.assert_allclose(d.numpy(), [np.nan, np.sqrt(18), np.nan], equal_nan=True, rtol=1e-6)
