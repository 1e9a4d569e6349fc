"""linalg.det and linalg.inv of stacks of 2x2 and 3x3 matrices (the closed forms over the whole stack):
values and gradients against torch and LAPACK, singular matrices in a stack, the double backward."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import linalg

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)


def _stack(shape: tuple[int, ...], n: int, dtype: type) -> np.ndarray:
    """Well-conditioned matrices (the identity times 3 plus noise): torch's LU and the closed forms
    agree to a few ulps of the result there."""
    return (_RNG.standard_normal((*shape, n, n)) + 3 * np.eye(n)).astype(dtype)


CASES = [((40,), 2), ((40,), 3), ((4, 5), 2), ((3, 7), 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "n"), CASES)
def test_det_and_inv_of_a_small_stack_equal_torch_values_and_gradients(shape, n, dtype) -> None:
    a_np = _stack(shape, n, dtype)
    assert linalg._small_stack(a_np)  # the closed forms' path
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for op in ("det", "inv"):
        a = ds.from_numpy(a_np.copy()).requires_grad_(True)
        t = torch.from_numpy(a_np.copy()).requires_grad_(True)
        ours, theirs = getattr(ds.linalg, op)(a), getattr(torch.linalg, op)(t)
        assert ours.dtype == a.dtype and tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(ours.detach().numpy(), getattr(np.linalg, op)(a_np), rtol=rtol, atol=rtol)
        weights = _RNG.standard_normal(tuple(theirs.shape))
        (ours * ds.tensor(weights, dtype=a.dtype)).sum().backward()
        (theirs * torch.tensor(weights, dtype=t.dtype)).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=rtol * 10, atol=rtol * 10)


def test_a_short_stack_and_other_sizes_take_lapack() -> None:
    assert not linalg._small_stack(_stack((15,), 3, np.float64))
    assert not linalg._small_stack(_stack((40,), 4, np.float64))
    assert not linalg._small_stack(_stack((40,), 3, np.float16))
    assert not linalg._small_stack(_stack((), 3, np.float64))


@pytest.mark.parametrize("n", [2, 3])
def test_singular_matrices_in_a_stack(n: int) -> None:
    """det: exactly 0, and its gradient the cofactor matrix (finite differences in float64; the same as
    LAPACK's path with its SVD formula, one matrix at a time); inv: LAPACK's error, as unstacked."""
    a_np = _stack((20,), n, np.float64)
    a_np[3] = np.arange(1, n * n + 1).reshape(n, n)
    a_np[3, -1] = a_np[3, 0] * 2.0  # the last row twice the first: singular, integer entries
    a_np[7] = 0.0  # all zeros: every cofactor 0 too
    a = ds.from_numpy(a_np.copy()).requires_grad_(True)
    d = ds.linalg.det(a)
    assert d.detach().numpy()[3] == 0.0 and d.detach().numpy()[7] == 0.0
    d.sum().backward()
    assert np.isfinite(a.grad.numpy()).all()
    for i in (3, 7, 0):
        one = ds.from_numpy(a_np[i : i + 1].copy()).requires_grad_(True)
        assert not linalg._small_stack(one.array)
        ds.linalg.det(one).sum().backward()
        np.testing.assert_allclose(a.grad.numpy()[i], one.grad.numpy()[0], rtol=1e-12, atol=1e-12)
        fd = np.zeros((n, n))
        for j in range(n):
            for k in range(n):
                step = np.zeros((n, n))
                step[j, k] = 1e-6
                fd[j, k] = (np.linalg.det(a_np[i] + step) - np.linalg.det(a_np[i] - step)) / 2e-6
        np.testing.assert_allclose(a.grad.numpy()[i], fd, rtol=1e-7, atol=1e-7)
    with pytest.raises(ds.linalg.LinAlgError, match="inv"):
        ds.linalg.inv(ds.from_numpy(a_np.copy()))


def test_double_backward_through_det_and_inv_of_a_small_stack_equals_torch() -> None:
    a_np = _stack((20,), 3, np.float64)
    results = []
    for lib in (ds, torch):
        a = lib.from_numpy(a_np.copy()).requires_grad_(True)
        (g,) = lib.autograd.grad(lib.linalg.det(a).sum() + lib.linalg.inv(a).sum(), [a], create_graph=True)
        (gg,) = lib.autograd.grad((g**2).sum(), [a])
        results.append((g.detach().numpy(), gg.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-12)
