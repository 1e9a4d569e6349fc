"""ds.svd_lowrank and ds.pca_lowrank against torch's (torch/_lowrank.py) and against linalg.svd.

The test matrices are random, so the factors are not torch's: the tests compare singular values,
reconstructions and the subspaces the vectors span, never the raw vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import ArgumentError

RNG = np.random.default_rng(7)


def _t64(x: np.ndarray) -> ds.Tensor:
    return ds.tensor(x, dtype=ds.float64)


def _projector(u: np.ndarray) -> np.ndarray:
    return u @ np.swapaxes(u, -1, -2)


@pytest.mark.parametrize("shape", [(9, 5), (5, 9), (3, 8, 6)])
def test_full_rank_q_gives_linalg_svd_values_and_the_matrix_back(shape: tuple[int, ...]) -> None:
    a = RNG.normal(size=shape)
    q = min(shape[-2:])
    ds.manual_seed(0)
    u, s, v = ds.svd_lowrank(_t64(a), q=q)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a, compute_uv=False), rtol=0, atol=1e-10)
    np.testing.assert_allclose(s.numpy(), torch.svd_lowrank(torch.tensor(a), q=q)[1].numpy(), rtol=0, atol=1e-10)
    back = u.numpy() @ (s.numpy()[..., :, None] * np.swapaxes(v.numpy(), -1, -2))
    np.testing.assert_allclose(back, a, rtol=0, atol=1e-10)
    assert u.shape == shape[:-1] + (q,) and v.shape == shape[:-2] + (shape[-1], q) and s.dtype == ds.float64


def test_pca_centres_and_matches_torch_values_and_subspaces() -> None:
    x = RNG.normal(size=(40, 6)) + 5.0
    ds.manual_seed(1)
    u, s, v = ds.pca_lowrank(_t64(x), q=6)
    tu, ts, tv = torch.pca_lowrank(torch.tensor(x), q=6)
    centred = x - x.mean(0)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(centred, compute_uv=False), rtol=0, atol=1e-10)
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(u.numpy() @ np.diag(s.numpy()) @ v.numpy().T, centred, rtol=0, atol=1e-10)
    # distinct singular values: each vector is torch's up to its sign
    np.testing.assert_allclose(np.abs(v.numpy().T @ tv.numpy()), np.eye(6), rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.abs(u.numpy().T @ tu.numpy()), np.eye(6), rtol=0, atol=1e-8)
    # center=False: the matrix as it is
    ds.manual_seed(1)
    s_raw = ds.pca_lowrank(_t64(x), q=6, center=False)[1]
    np.testing.assert_allclose(
        s_raw.numpy(), torch.pca_lowrank(torch.tensor(x), q=6, center=False)[1].numpy(), atol=1e-10
    )


def test_default_q_and_a_low_rank_matrix_span_torchs_subspaces() -> None:
    a = RNG.normal(size=(30, 3)) @ RNG.normal(size=(3, 20))  # rank 3: q = 3 finds its range exactly
    ds.manual_seed(2)
    u, s, v = ds.svd_lowrank(_t64(a), q=3, niter=0)
    tu, ts, tv = torch.svd_lowrank(torch.tensor(a), q=3, niter=0)
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=1e-10)
    np.testing.assert_allclose(_projector(u.numpy()), _projector(tu.numpy()), rtol=0, atol=1e-10)
    np.testing.assert_allclose(_projector(v.numpy()), _projector(tv.numpy()), rtol=0, atol=1e-10)
    ds.manual_seed(2)
    assert ds.pca_lowrank(_t64(a))[1].shape == tuple(torch.pca_lowrank(torch.tensor(a))[1].shape) == (6,)


def test_svd_lowrank_of_a_minus_m_is_that_of_the_difference() -> None:
    a, mean_row = RNG.normal(size=(12, 4)), RNG.normal(size=(1, 4))
    ds.manual_seed(3)
    s = ds.svd_lowrank(_t64(a), q=4, M=_t64(mean_row))[1]
    ts = torch.svd_lowrank(torch.tensor(a), q=4, M=torch.tensor(mean_row))[1]
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a - mean_row, compute_uv=False), rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(7, 4), (4, 7)])
def test_gradient_of_the_singular_values_matches_torch(shape: tuple[int, int]) -> None:
    a = RNG.normal(size=shape)
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    ds.manual_seed(4)
    s = ds.pca_lowrank(x, q=4)[1]
    (s**2 + s).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    s_t = torch.pca_lowrank(t, q=4)[1]
    (s_t**2 + s_t).sum().backward()
    assert t.grad is not None and x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_gradient_matches_finite_differences() -> None:
    a = RNG.normal(size=(6, 4))

    def values(x: ds.Tensor) -> ds.Tensor:
        ds.manual_seed(5)  # the same test matrix at every evaluation
        u, s, v = ds.svd_lowrank(x, q=3)
        return s * (u.abs().sum(0) + v.abs().sum(0))  # sign-free functions of the vectors too

    assert ds.autograd.gradcheck(values, (ds.tensor(a, dtype=ds.float64, requires_grad=True),))


def test_arguments_are_checked_as_torch_checks_them() -> None:
    x = _t64(RNG.normal(size=(5, 3)))
    with pytest.raises(ValueError):
        torch.pca_lowrank(torch.tensor(x.numpy()), q=4)
    with pytest.raises(ArgumentError, match=r"q\(=4\).*min\(m, n\)=3"):
        ds.pca_lowrank(x, q=4)
    with pytest.raises(ArgumentError, match="niter"):
        ds.pca_lowrank(x, niter=-1)
    with pytest.raises(ds.errors.ShapeError, match="at least 2 dims"):
        ds.svd_lowrank(_t64(np.ones(3)))
