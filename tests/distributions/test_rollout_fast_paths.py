"""The direct paths of the distributions an RL rollout calls at batch 1 (Categorical, Normal, Bernoulli,
OneHotCategorical): where no gradient is wanted (``sample``; ``log_prob`` and the constructors under
no_grad or of inputs that do not require grad) they compute on the arrays. Checked here: that they are
taken (no op of downslope.ops runs), that they give the numbers of the recorded path (bit for bit) and
of torch, that the same seed draws the same samples as the recorded algorithm did, that a gradient,
when wanted, still flows, and that validation refuses what it refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import ops
from downslope.distributions import constraints, continuous, discrete, distribution
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")
D = ds.distributions


class _NoOps:
    """A stand-in for the ``ops`` module that fails on any use but the lazy ``probs`` of ``logits``
    (a softmax or a sigmoid, made once per distribution and kept, as torch's)."""

    def __getattr__(self, name: str) -> Any:
        if name in ("softmax", "sigmoid"):
            return getattr(ops, name)
        raise AssertionError(f"ops.{name} was called on a path that needs no gradient")


def _host(t: Any) -> np.ndarray:
    return np.asarray(t.detach().numpy())


@pytest.mark.host_only  # the direct paths are taken in every namespace; the op counting is the point here
def test_rollout_calls_run_no_recorded_op(monkeypatch):
    logits, mu, std = ds.tensor([[0.3, -0.2, 0.1]]), ds.tensor([0.1, -0.4]), ds.tensor([0.5, 1.5])
    for module in (discrete, continuous, distribution):
        monkeypatch.setattr(module, "ops", _NoOps())
    with ds.no_grad():
        cat = D.Categorical(logits=logits)
        cat.log_prob(cat.sample())
        cat.log_prob(cat.sample((4,)))
        normal = D.Normal(mu, std)
        normal.log_prob(normal.sample())
        bern = D.Bernoulli(logits=ds.tensor([0.3, -0.9]))
        bern.log_prob(bern.sample((2,)))
        onehot = D.OneHotCategorical(logits=ds.tensor([0.2, 0.8]))
        onehot.sample()
    # outside no_grad too, for inputs that do not require grad
    D.Normal(mu, std).log_prob(ds.tensor([0.0, 1.0]))
    D.Categorical(logits=logits).log_prob(ds.tensor([2]))


def _old_categorical_sample(probs: Any, sample_shape: tuple[int, ...]) -> np.ndarray:
    """The draw as the recorded ops made it before the direct path (the reference for the seed)."""
    from downslope import backend

    shape = tuple(sample_shape) + tuple(probs.shape[:-1])
    with ds.no_grad():
        cumulative = ops.cumsum(ops.astype(probs.detach(), np.float64), -1)
        total = cumulative[..., -1:]
        u = ds.Tensor(backend.random_like(shape + (1,), cumulative.array, np.float64))
        index = ops.sum(ops.astype(u * total >= cumulative, np.int64), axis=-1)
        last = ops.sum(ops.astype(cumulative < total, np.int64), axis=-1)
        return _host(ops.minimum(index, ops.broadcast_to(last, index.shape)))


@pytest.mark.parametrize(
    ("probs", "sample_shape"),
    [
        ([0.2, 0.8], ()),
        ([[0.5, 0.0, 0.5], [0.0, 0.0, 1.0]], (7,)),
        ([[0.1, 0.2, 0.7]], (3, 2)),
        (np.random.default_rng(0).dirichlet(np.ones(200), size=3).tolist(), (50,)),
    ],
)
@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_categorical_sample_draws_what_the_recorded_path_drew(probs, sample_shape, dtype):
    p = ds.tensor(probs, dtype=dtype)
    ds.manual_seed(3)
    want = _old_categorical_sample(p, sample_shape)
    ds.manual_seed(3)
    got = D.Categorical(probs=p).sample(sample_shape)
    assert got.dtype == ds.int64 and tuple(got.shape) == want.shape
    np.testing.assert_array_equal(_host(got), want)


def test_categorical_of_masked_logits_never_draws_a_masked_class_and_scores_as_torch():
    logits = [[0.0, float("-inf"), 1.0], [float("-inf"), 2.0, float("-inf")]]
    d = D.Categorical(logits=ds.tensor(logits))
    draws = _host(d.sample((500,)))
    assert not (draws[:, 0] == 1).any() and (draws[:, 1] == 1).all()
    t = torch.distributions.Categorical(logits=torch.tensor(logits))
    value = [[0, 1], [2, 1]]
    np.testing.assert_allclose(_host(d.log_prob(ds.tensor(value))), t.log_prob(torch.tensor(value)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(_host(d.logits), t.logits.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_categorical_direct_and_recorded_paths_agree_bit_for_bit(dtype):
    raw = np.random.default_rng(1).normal(size=(4, 5)) * 3
    value = ds.tensor([[0, 4, 2, 1], [3, 3, 0, 4]])
    leaf = ds.tensor(raw, dtype=dtype, requires_grad=True)
    recorded = D.Categorical(logits=leaf)
    assert recorded.logits.requires_grad
    with ds.no_grad():
        direct = D.Categorical(logits=leaf)
        direct_lp = direct.log_prob(value)
    assert not direct.logits.requires_grad and not direct_lp.requires_grad
    np.testing.assert_array_equal(_host(direct.logits), _host(recorded.logits))
    recorded_lp = recorded.log_prob(value)
    assert recorded_lp.requires_grad
    np.testing.assert_array_equal(_host(direct_lp), _host(recorded_lp))
    # the gradient through the recorded path, against torch's
    recorded_lp.sum().backward()
    theirs = torch.tensor(raw, dtype=getattr(torch, str(dtype).split(".")[-1]), requires_grad=True)
    torch.distributions.Categorical(logits=theirs).log_prob(torch.tensor(value.numpy())).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_host(direct_lp), _host_torch(theirs, value), rtol=1e-5)


def _host_torch(logits: Any, value: Any) -> np.ndarray:
    with torch.no_grad():
        return torch.distributions.Categorical(logits=logits).log_prob(torch.tensor(value.numpy())).numpy()


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_normal_direct_and_recorded_log_prob_agree_and_the_gradient_flows(dtype):
    rng = np.random.default_rng(2)
    loc_np, scale_np, x_np = rng.normal(size=(3, 4)), rng.uniform(0.2, 2.0, size=(3, 4)), rng.normal(size=(2, 3, 4))
    loc = ds.tensor(loc_np, dtype=dtype, requires_grad=True)
    scale = ds.tensor(scale_np, dtype=dtype, requires_grad=True)
    x = ds.tensor(x_np, dtype=dtype)
    recorded = D.Normal(loc, scale).log_prob(x)
    with ds.no_grad():
        direct = D.Normal(loc, scale).log_prob(x)
    assert recorded.requires_grad and not direct.requires_grad
    np.testing.assert_array_equal(_host(direct), _host(recorded))
    recorded.sum().backward()
    tdtype = getattr(torch, str(dtype).split(".")[-1])
    tl = torch.tensor(loc_np, dtype=tdtype, requires_grad=True)
    ts = torch.tensor(scale_np, dtype=tdtype, requires_grad=True)
    theirs = torch.distributions.Normal(tl, ts).log_prob(torch.tensor(x_np, dtype=tdtype))
    theirs.sum().backward()
    tol = 1e-5 if dtype == ds.float32 else 1e-12
    np.testing.assert_allclose(_host(direct), theirs.detach().numpy(), rtol=tol)
    np.testing.assert_allclose(loc.grad.numpy(), tl.grad.numpy(), rtol=tol)
    np.testing.assert_allclose(scale.grad.numpy(), ts.grad.numpy(), rtol=tol)


def test_normal_samples_keep_their_draws_and_rsample_keeps_its_graph():
    loc, scale = ds.tensor([0.5, -1.0]), ds.tensor([2.0, 0.1])
    ds.manual_seed(5)
    eps = ds.randn(3, 2)
    ds.manual_seed(5)
    got = D.Normal(loc, scale).sample((3,))
    np.testing.assert_array_equal(_host(got), _host(loc + eps * scale))
    assert not got.requires_grad
    leaf = ds.tensor([0.5, -1.0], requires_grad=True)
    draw = D.Normal(leaf, scale).rsample((3,))
    assert draw.requires_grad
    draw.sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [3.0, 3.0])


def test_bernoulli_direct_paths_match_the_recorded_ones_and_torch():
    probs = ds.tensor([0.1, 0.5, 0.93])
    ds.manual_seed(4)
    u = ds.Tensor(ds.backend.random_like((6, 3), probs.array, np.float64)).astype(ds.float32)
    want = _host(u) < _host(probs)
    ds.manual_seed(4)
    got = D.Bernoulli(probs=probs).sample((6,))
    assert got.dtype == ds.float32
    np.testing.assert_array_equal(_host(got), want.astype(np.float32))
    raw = [-2.0, 0.3, 7.0]
    value = ds.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    leaf = ds.tensor(raw, requires_grad=True)
    recorded = D.Bernoulli(logits=leaf).log_prob(value)
    with ds.no_grad():
        direct = D.Bernoulli(logits=leaf).log_prob(value)
    np.testing.assert_array_equal(_host(direct), _host(recorded))
    recorded.sum().backward()
    theirs = torch.tensor(raw, requires_grad=True)
    tlp = torch.distributions.Bernoulli(logits=theirs).log_prob(torch.tensor(value.numpy()))
    tlp.sum().backward()
    np.testing.assert_allclose(_host(direct), tlp.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(leaf.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)


def test_one_hot_categorical_samples_and_scores_as_its_categorical():
    probs = ds.tensor([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    ds.manual_seed(6)
    index = _host(D.Categorical(probs=probs).sample((4,)))
    ds.manual_seed(6)
    d = D.OneHotCategorical(probs=probs)
    onehot = d.sample((4,))
    assert onehot.dtype == ds.float32
    np.testing.assert_array_equal(_host(onehot), np.eye(3, dtype=np.float32)[index])
    t = torch.distributions.OneHotCategorical(probs=torch.tensor(probs.numpy()))
    np.testing.assert_allclose(_host(d.log_prob(onehot)), t.log_prob(torch.tensor(_host(onehot))).numpy(), rtol=1e-6)


def test_validation_refuses_what_torch_refuses():
    with pytest.raises(ArgumentError, match="constraint GreaterThan"):
        D.Normal(ds.tensor([0.0, 1.0]), ds.tensor([1.0, -1.0]))
    with pytest.raises(ArgumentError, match="parameter loc"):
        D.Normal(ds.tensor([0.0, float("nan")]), ds.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="Simplex"):
        torch.distributions.Categorical(probs=torch.tensor([[-0.5, 1.5]]))
    with pytest.raises(ArgumentError, match="Simplex"):
        D.Categorical(probs=ds.tensor([[-0.5, 1.5]]))
    with pytest.raises(ArgumentError, match="parameter logits"):
        D.Categorical(logits=ds.tensor([[0.5, float("nan")]]))
    with pytest.raises(ArgumentError, match="support"):
        D.Categorical(logits=ds.zeros(1, 2)).log_prob(ds.tensor([2]))
    with pytest.raises(ArgumentError, match="support"):
        D.Bernoulli(probs=ds.tensor([0.5])).log_prob(ds.tensor([0.5]))
    with pytest.raises(ArgumentError, match="support"):
        D.Normal(0.0, 1.0).log_prob(ds.tensor(float("nan")))
    with pytest.raises(ArgumentError, match="not broadcastable"):
        D.Normal(ds.zeros(3), 1.0).log_prob(ds.zeros(2))
    # and accepts without validation, as torch
    D.Normal(ds.tensor([0.0]), ds.tensor([-1.0]), validate_args=False)
    assert float(D.Categorical(logits=ds.zeros(1, 2), validate_args=False).log_prob(ds.tensor([1]))) < 0


def test_satisfied_agrees_with_check_and_keeps_a_users_check():
    rng = np.random.default_rng(7)
    values = [
        rng.normal(size=(3, 4)),
        np.abs(rng.normal(size=(3, 4))),
        np.array([[0.2, 0.8], [0.5, 0.5]]),
        np.array([[0.2, float("nan")]]),
        np.array([0, 1, 2, 3]),
        np.array([1.0, 0.0]),
    ]
    checked = [
        constraints.real,
        constraints.positive,
        constraints.nonnegative,
        constraints.simplex,
        constraints.real_vector,
        constraints.independent(constraints.positive, 1),
        constraints.integer_interval(0, 2),
        constraints.unit_interval,
        constraints.interval(-1.0, 0.5),
        constraints.greater_than_eq(0.5),
        constraints.half_open_interval(0.0, 1.0),
        constraints.boolean,
        constraints.one_hot,
        constraints.nonnegative_integer,
        constraints.positive_integer,
    ]
    for c in checked:
        for v in values:
            for x in (v, v.astype(np.float32) if v.dtype.kind == "f" else v):
                assert constraints.satisfied(c, ds.tensor(x)) == bool(c.check(ds.tensor(x)).numpy().all()), (c, x)

    class EvenOnly(constraints.Constraint):
        def check(self, value: Any) -> Any:
            return (value % 2) == 0

    assert constraints.satisfied(EvenOnly(), ds.tensor([2, 4]))
    assert not constraints.satisfied(EvenOnly(), ds.tensor([2, 3]))
    assert not constraints.satisfied(constraints.independent(EvenOnly(), 1), ds.tensor([[2, 3]]))


def test_direct_results_inside_inference_mode_are_inference_tensors():
    with ds.inference_mode():
        d = D.Categorical(logits=ds.tensor([[0.3, 0.1]]))
        a = d.sample()
        lp = d.log_prob(a)
        x = D.Normal(ds.zeros(2), ds.ones(2)).sample()
    assert a.is_inference() and lp.is_inference() and x.is_inference()


@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_multivariate_normal_direct_log_prob_matches_the_recorded_one_and_torch(dtype):
    rng = np.random.default_rng(8)
    loc_np = rng.normal(size=3)
    a = rng.normal(size=(3, 3))
    cov_np = a @ a.T + 3 * np.eye(3)
    x_np = rng.normal(size=(5, 3))
    loc = ds.tensor(loc_np, dtype=dtype, requires_grad=True)
    cov = ds.tensor(cov_np, dtype=dtype)
    x = ds.tensor(x_np, dtype=dtype)
    recorded = D.MultivariateNormal(loc, covariance_matrix=cov).log_prob(x)
    with ds.no_grad():
        direct = D.MultivariateNormal(loc, covariance_matrix=cov).log_prob(x)
        diag = D.MultivariateNormal(loc, scale_tril=ds.diag_embed(ds.tensor([0.5, 1.0, 2.0], dtype=dtype)))
        diag_lp = diag.log_prob(x)
    assert recorded.requires_grad and not direct.requires_grad
    tol = 1e-6 if dtype == ds.float32 else 1e-14
    np.testing.assert_allclose(_host(direct), _host(recorded), rtol=tol)
    tdtype = getattr(torch, str(dtype).split(".")[-1])
    tl = torch.tensor(loc_np, dtype=tdtype)
    theirs = torch.distributions.MultivariateNormal(tl, covariance_matrix=torch.tensor(cov_np, dtype=tdtype))
    tdiag = torch.distributions.MultivariateNormal(
        tl, scale_tril=torch.diag(torch.tensor([0.5, 1.0, 2.0], dtype=tdtype))
    )
    xt = torch.tensor(x_np, dtype=tdtype)
    np.testing.assert_allclose(_host(direct), theirs.log_prob(xt).numpy(), rtol=max(tol, 1e-12) * 10)
    np.testing.assert_allclose(_host(diag_lp), tdiag.log_prob(xt).numpy(), rtol=max(tol, 1e-12) * 10)
