"""Wishart against torch.distributions.Wishart in float64: log_prob, entropy, mean, variance, mode and
their gradients in df and the matrix, for each parameterisation and with batch dims; draws (from
downslope's generator) checked by their moments; validation, expand and the singular-draw retry."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.distributions import Wishart

torch = pytest.importorskip("torch")
TW = torch.distributions.Wishart

P = 3


def _spd(rng: np.random.Generator, batch: tuple[int, ...] = (), p: int = P) -> np.ndarray:
    a = rng.normal(size=batch + (p, p))
    return a @ np.swapaxes(a, -1, -2) + p * np.eye(p)


def _pair(kind: str, df: Any, matrix: np.ndarray) -> tuple[Any, Any, list[Any], list[Any]]:
    """The same distribution in both libraries, with its leaf parameters (df and the matrix)."""
    if kind == "scale_tril":
        matrix = np.linalg.cholesky(matrix)
    ours_df = ds.tensor(np.asarray(df, np.float64), dtype=ds.float64, requires_grad=True)
    theirs_df = torch.tensor(np.asarray(df, np.float64), requires_grad=True)
    ours_m = ds.tensor(matrix, dtype=ds.float64, requires_grad=True)
    theirs_m = torch.tensor(matrix, requires_grad=True)
    ours = Wishart(ours_df, **{kind: ours_m})
    theirs = TW(theirs_df, **{kind: theirs_m})
    return ours, theirs, [ours_df, ours_m], [theirs_df, theirs_m]


def _check(out: Any, ref: Any, ours_leaves: list[Any], theirs_leaves: list[Any]) -> None:
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(7)
    weights = rng.normal(size=tuple(ref.shape))
    (out * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours_leaves, theirs_leaves):
        assert a.grad is not None and b.grad is not None
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


KINDS = ["covariance_matrix", "precision_matrix", "scale_tril"]
SHAPES = [((), ()), ((2,), ()), ((), (2,)), ((2,), (4, 1))]  # (df batch, matrix batch)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("df_batch", "m_batch"), SHAPES)
@pytest.mark.parametrize("what", ["log_prob", "entropy", "mean", "variance", "mode"])
def test_values_and_gradients_match_torch(
    kind: str, df_batch: tuple[int, ...], m_batch: tuple[int, ...], what: str
) -> None:
    rng = np.random.default_rng(0)
    df = rng.uniform(P + 1.5, P + 4, size=df_batch)
    ours, theirs, ol, tl = _pair(kind, df, _spd(rng, m_batch))
    assert ours.batch_shape == tuple(theirs.batch_shape)
    assert ours.event_shape == tuple(theirs.event_shape)
    if what == "log_prob":
        x = _spd(rng, (5,) + tuple(theirs.batch_shape))
        out, ref = ours.log_prob(ds.tensor(x, dtype=ds.float64)), theirs.log_prob(torch.tensor(x))
    elif what == "entropy":
        out, ref = ours.entropy(), theirs.entropy()
    else:
        out, ref = getattr(ours, what), getattr(theirs, what)
    assert out.shape == tuple(ref.shape)
    _check(out, ref, ol, tl)


def test_mode_is_nan_where_df_is_at_most_p_plus_one() -> None:
    df = [P + 0.5, P + 1.0, P + 2.0]
    ours = Wishart(ds.tensor(df, dtype=ds.float64), covariance_matrix=ds.eye(P, dtype=ds.float64))
    theirs = TW(torch.tensor(df, dtype=torch.float64), covariance_matrix=torch.eye(P, dtype=torch.float64))
    np.testing.assert_array_equal(ours.mode.numpy(), theirs.mode.numpy())


def test_derived_matrices_match_torch() -> None:
    rng = np.random.default_rng(1)
    cov = _spd(rng, (2,))
    ours = Wishart(ds.tensor(5.0, dtype=ds.float64), covariance_matrix=ds.tensor(cov, dtype=ds.float64))
    theirs = TW(torch.tensor(5.0, dtype=torch.float64), covariance_matrix=torch.tensor(cov))
    for name in ("scale_tril", "precision_matrix", "covariance_matrix"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(), rtol=1e-10, atol=1e-12)


def test_float32_by_default_and_number_df() -> None:
    w = Wishart(4, covariance_matrix=ds.eye(2))
    assert w.df.dtype == ds.float32 and w.mean.dtype == ds.float32
    assert w.log_prob(ds.eye(2)).dtype == ds.float32
    assert w.rsample((3,)).dtype == ds.float32


def test_rsample_moments() -> None:
    """E[X] = df Sigma and Var[X_ij] = df (Sigma_ij^2 + Sigma_ii Sigma_jj), checked on 20000 draws."""
    ds.manual_seed(0)
    rng = np.random.default_rng(2)
    cov = _spd(rng) / P
    w = Wishart(ds.tensor([5.0, 8.0], dtype=ds.float64), covariance_matrix=ds.tensor(cov, dtype=ds.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # df >= p: no singular draws, so no warning
        x = w.sample((20000,)).numpy()
    assert x.shape == (20000, 2, P, P)
    np.testing.assert_allclose(x.mean(0), w.mean.numpy(), rtol=0.05, atol=0.05)
    np.testing.assert_allclose(x.var(0), w.variance.numpy(), rtol=0.1, atol=0.1)
    np.testing.assert_allclose(x, np.swapaxes(x, -1, -2))
    assert (np.linalg.eigvalsh(x) > 0).all()


def test_rsample_is_differentiable() -> None:
    """d E[tr X] / d df = tr Sigma and d E[tr X] / d L = 2 df L (sigma = L L^T), by the pathwise gradient."""
    ds.manual_seed(3)
    df = ds.tensor(6.0, dtype=ds.float64, requires_grad=True)
    L = ds.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=ds.float64, requires_grad=True)  # noqa: N806
    x = Wishart(df, scale_tril=L).rsample((20000,))
    ops_trace = x.diagonal(0, -2, -1).sum(-1).mean()
    ops_trace.backward()
    sigma = L.detach().numpy() @ L.detach().numpy().T
    assert df.grad.item() == pytest.approx(np.trace(sigma), rel=0.05)
    np.testing.assert_allclose(np.tril(L.grad.numpy()), 2 * 6.0 * L.detach().numpy(), rtol=0.06, atol=0.1)


def test_singular_draws_are_retried_with_a_warning() -> None:
    """df just above p - 1 gives singular draws; they are redrawn (each retry can only remove some),
    with one warning, and a regular df gives neither (torch's check is inverted: it warns every call)."""
    eye = ds.eye(2, dtype=ds.float64)
    with pytest.warns(UserWarning, match="Low df values detected"):
        w = Wishart(ds.tensor(1.0 + 1e-6, dtype=ds.float64), covariance_matrix=eye)

    def singular_count(max_try_correction: int) -> int:
        ds.manual_seed(0)
        with pytest.warns(UserWarning, match="Singular sample detected."):
            x = w.rsample((200,), max_try_correction=max_try_correction)
        return int((~ds.distributions.constraints.positive_definite.check(x)).sum().item())

    assert singular_count(10) <= singular_count(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Wishart(ds.tensor(5.0, dtype=ds.float64), covariance_matrix=eye).rsample((50,))


def test_validation_errors() -> None:
    eye = ds.eye(2)
    with pytest.raises(ValueError, match=r"df greater than ndim - 1 = 1, got 0.5"):
        Wishart(0.5, covariance_matrix=eye)
    with pytest.raises(ValueError, match="exactly one of covariance_matrix"):
        Wishart(3.0, covariance_matrix=eye, scale_tril=eye)
    with pytest.raises(ValueError, match="at least two-dimensional"):
        Wishart(3.0, covariance_matrix=ds.ones(2))
    with pytest.raises(ValueError, match="PositiveDefinite"):
        Wishart(3.0, covariance_matrix=ds.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="does not broadcast"):
        Wishart(ds.tensor([3.0, 4.0, 5.0]), covariance_matrix=ds.eye(2).expand(2, 2, 2))
    w = Wishart(3.0, covariance_matrix=eye)
    with pytest.raises(ValueError, match="support"):
        w.log_prob(ds.tensor([[1.0, 0.0], [0.0, -1.0]]))
    assert w.support is ds.distributions.constraints.positive_definite
    assert repr(w.arg_constraints["df"]) == repr(
        torch.distributions.Wishart(3.0, covariance_matrix=torch.eye(2)).arg_constraints["df"]
    )


def test_expand() -> None:
    rng = np.random.default_rng(4)
    cov = _spd(rng)
    ours = Wishart(ds.tensor(5.0, dtype=ds.float64), precision_matrix=ds.tensor(cov, dtype=ds.float64)).expand((3, 2))
    theirs = TW(torch.tensor(5.0, dtype=torch.float64), precision_matrix=torch.tensor(cov)).expand((3, 2))
    assert ours.batch_shape == (3, 2)
    assert ours.precision_matrix.shape == (3, 2, P, P)
    x = _spd(rng, (3, 2))
    np.testing.assert_allclose(
        ours.log_prob(ds.tensor(x, dtype=ds.float64)).numpy(), theirs.log_prob(torch.tensor(x)).numpy(), rtol=1e-10
    )
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-10)
    assert ours.rsample((4,)).shape == (4, 3, 2, P, P)


def test_kl_between_wisharts_matches_torch() -> None:
    """torch has no closed form; its ExponentialFamily pair (the Bregman divergence) covers Wishart."""
    rng = np.random.default_rng(5)
    a, b = _spd(rng), _spd(rng)
    ours = ds.distributions.kl_divergence(
        Wishart(ds.tensor(5.0, dtype=ds.float64), covariance_matrix=ds.tensor(a, dtype=ds.float64)),
        Wishart(ds.tensor(6.5, dtype=ds.float64), covariance_matrix=ds.tensor(b, dtype=ds.float64)),
    )
    theirs = torch.distributions.kl_divergence(
        TW(torch.tensor(5.0, dtype=torch.float64), covariance_matrix=torch.tensor(a)),
        TW(torch.tensor(6.5, dtype=torch.float64), covariance_matrix=torch.tensor(b)),
    )
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)


def test_batched_kl_is_the_per_element_kl() -> None:
    """Each batch element's KL on its own (torch's generic pair would sum df's term over the batch)."""
    rng = np.random.default_rng(6)
    a, b = _spd(rng, (2,)), _spd(rng, (2,))
    df_p, df_q = [5.0, 7.0], [6.5, 4.5]
    ours = ds.distributions.kl_divergence(
        Wishart(ds.tensor(df_p, dtype=ds.float64), covariance_matrix=ds.tensor(a, dtype=ds.float64)),
        Wishart(ds.tensor(df_q, dtype=ds.float64), covariance_matrix=ds.tensor(b, dtype=ds.float64)),
    )
    each = [
        torch.distributions.kl_divergence(
            TW(torch.tensor(df_p[i], dtype=torch.float64), covariance_matrix=torch.tensor(a[i])),
            TW(torch.tensor(df_q[i], dtype=torch.float64), covariance_matrix=torch.tensor(b[i])),
        ).item()
        for i in range(2)
    ]
    np.testing.assert_allclose(ours.detach().numpy(), each, rtol=1e-9)


def test_batched_factor_with_an_unbatched_value_matches_torch():
    # an unbatched value (and precision_matrix's identity) against a batch of factors: each batch entry
    # is solved with its own factor (the solve paired them wrongly, mixing the entries' rows)
    tril = np.array([[[1.0, 0.0], [0.3, 1.2]], [[0.8, 0.0], [-0.2, 0.5]]])
    df = np.array([3.7, 4.6])
    value = np.array([[1.5, 0.2], [0.2, 0.9]])
    ours = ds.distributions.Wishart(ds.tensor(df, dtype=ds.float64), scale_tril=ds.tensor(tril, dtype=ds.float64))
    theirs = torch.distributions.Wishart(torch.tensor(df), scale_tril=torch.tensor(tril))
    np.testing.assert_allclose(ours.precision_matrix.numpy(), theirs.precision_matrix.numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        ours.log_prob(ds.tensor(value, dtype=ds.float64)).numpy(),
        theirs.log_prob(torch.tensor(value)).numpy(),
        rtol=1e-12,
    )
