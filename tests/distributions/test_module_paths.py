"""torch.distributions' per-family module paths (``from downslope.distributions.normal import Normal``)
and ``downslope.distributions.utils``'s helpers against torch's."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import downslope as ds
import downslope.distributions as D
from downslope.distributions import utils

torch = pytest.importorskip("torch")
TD = torch.distributions

# torch modules with no downslope counterpart (biject_to/transform_to are not implemented)
MISSING = {"constraint_registry"}
TORCH_MODULES = sorted(m.name for m in pkgutil.iter_modules(TD.__path__) if m.name not in MISSING)


@pytest.mark.parametrize("name", TORCH_MODULES)
def test_every_torch_module_path_has_torchs_names(name: str) -> None:
    ours = importlib.import_module(f"downslope.distributions.{name}")
    theirs = importlib.import_module(f"torch.distributions.{name}")
    wanted = [n for n in theirs.__all__ if n != "MixtureSameFamilyConstraint"]  # not in downslope
    for attr in wanted:
        assert hasattr(ours, attr), f"downslope.distributions.{name} lacks {attr}"
        obj = getattr(ours, attr)
        if isinstance(obj, type) and attr in D.__all__:
            assert getattr(D, attr) is obj  # the same class as the package's, not a copy
    assert getattr(D, name) is ours  # ds.distributions.<module> works without an import


def test_alias_classes_compute_torchs_values() -> None:
    from downslope.distributions.bernoulli import Bernoulli
    from downslope.distributions.beta import Beta
    from downslope.distributions.categorical import Categorical
    from downslope.distributions.independent import Independent
    from downslope.distributions.normal import Normal
    from downslope.distributions.one_hot_categorical import OneHotCategorical
    from downslope.distributions.transformed_distribution import TransformedDistribution
    from downslope.distributions.transforms import ExpTransform

    f64 = {"dtype": ds.float64}
    cases = [
        (
            Normal(ds.tensor(0.5, **f64), 2.0).log_prob(ds.tensor(1.0, **f64)),
            TD.Normal(0.5, 2.0).log_prob(torch.tensor(1.0)),
        ),
        (Beta(2.0, 3.0).log_prob(ds.tensor(0.3)), TD.Beta(2.0, 3.0).log_prob(torch.tensor(0.3))),
        (Bernoulli(probs=ds.tensor(0.3)).entropy(), TD.Bernoulli(probs=torch.tensor(0.3)).entropy()),
        (
            Categorical(logits=ds.tensor([0.0, 1.0, 2.0])).log_prob(ds.tensor(2)),
            TD.Categorical(logits=torch.tensor([0.0, 1.0, 2.0])).log_prob(torch.tensor(2)),
        ),
        (
            OneHotCategorical(probs=ds.tensor([0.2, 0.8])).log_prob(ds.tensor([0.0, 1.0])),
            TD.OneHotCategorical(probs=torch.tensor([0.2, 0.8])).log_prob(torch.tensor([0.0, 1.0])),
        ),
        (
            Independent(Normal(ds.zeros(3), ds.ones(3)), 1).log_prob(ds.ones(3)),
            TD.Independent(TD.Normal(torch.zeros(3), torch.ones(3)), 1).log_prob(torch.ones(3)),
        ),
        (
            TransformedDistribution(Normal(0.0, 1.0), [ExpTransform()]).log_prob(ds.tensor(2.0)),
            TD.TransformedDistribution(TD.Normal(0.0, 1.0), [TD.ExpTransform()]).log_prob(torch.tensor(2.0)),
        ),
    ]
    for ours, theirs in cases:
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


def test_utils_helpers_match_torch() -> None:
    tu = TD.utils
    p = np.array([0.0, 0.2, 0.5, 1.0])
    for dtype, tdtype in [(ds.float32, torch.float32), (ds.float64, torch.float64)]:
        ours = utils.clamp_probs(ds.tensor(p, dtype=dtype))
        theirs = tu.clamp_probs(torch.tensor(p, dtype=tdtype))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    q = np.array([[0.1, 0.3, 0.6], [0.0, 0.5, 0.5]])
    for binary in (False, True):
        np.testing.assert_allclose(
            utils.probs_to_logits(ds.tensor(q, dtype=ds.float64), is_binary=binary).numpy(),
            tu.probs_to_logits(torch.tensor(q), is_binary=binary).numpy(),
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            utils.logits_to_probs(ds.tensor(q, dtype=ds.float64), is_binary=binary).numpy(),
            tu.logits_to_probs(torch.tensor(q), is_binary=binary).numpy(),
            rtol=1e-12,
        )
    assert utils.euler_constant == tu.euler_constant
    v = np.arange(6.0)
    np.testing.assert_array_equal(
        utils.vec_to_tril_matrix(ds.tensor(v, dtype=ds.float64)).numpy(), tu.vec_to_tril_matrix(torch.tensor(v)).numpy()
    )


def test_broadcast_all_matches_torch() -> None:
    ours = utils.broadcast_all(ds.tensor([1.0, 2.0], dtype=ds.float64), 3, ds.zeros(2, 1))
    theirs = TD.utils.broadcast_all(torch.tensor([1.0, 2.0], dtype=torch.float64), 3, torch.zeros(2, 1))
    assert isinstance(ours, tuple) and len(ours) == 3
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape) and str(a.dtype) == str(b.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    (a, b) = utils.broadcast_all(1, 2.5)
    assert a.dtype == ds.float32 and b.item() == 2.5
    ints = utils.broadcast_all(ds.tensor([1, 2]), 3)
    assert ints[1].dtype == ds.int64 and ints[1].tolist() == [3, 3]  # tensors keep their dtype, as torch's
    with pytest.raises(ValueError):
        TD.utils.broadcast_all([1, 2])
    with pytest.raises(ValueError, match="broadcast_all: expected numbers or Tensors, got list"):
        utils.broadcast_all([1, 2])
    with pytest.raises(ValueError, match="does not fit"):
        utils.broadcast_all(ds.tensor([1, 2]), 3.5)  # torch truncates it to 3


def test_lazy_property_computes_once_and_keeps_the_graph() -> None:
    calls = []

    class Holder:
        def __init__(self, x: ds.Tensor) -> None:
            self.x = x

        @utils.lazy_property
        def doubled(self) -> ds.Tensor:
            calls.append(1)
            return self.x * 2

    x = ds.tensor(3.0, requires_grad=True)
    h = Holder(x)
    with ds.no_grad():
        first = h.doubled
    assert h.doubled is first and len(calls) == 1
    first.backward()
    assert x.grad.item() == 2.0
    assert isinstance(Holder.__dict__["doubled"], utils.lazy_property)
