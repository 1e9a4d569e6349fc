"""nn.utils.prune (src/downslope/nn/utils/prune.py) against torch.nn.utils.prune: masks, state_dict keys,
repeated pruning, global pruning, training with the mask, and remove."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.nn.utils import prune

torch = pytest.importorskip("torch")
tprune = pytest.importorskip("torch.nn.utils.prune")


def _pair(shape=(6, 5)):
    rng = np.random.default_rng(0)  # distinct magnitudes: no ties for the smallest-|w| choice
    weight = (rng.permutation(np.arange(1, np.prod(shape) + 1)) * rng.choice([-1, 1], np.prod(shape))).reshape(shape)
    mine, theirs = nn.Linear(shape[1], shape[0]), torch.nn.Linear(shape[1], shape[0])
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(weight, dtype=torch.float32))
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return mine, theirs


def _same(mine, theirs, name="weight"):
    assert sorted(mine.state_dict()) == sorted(theirs.state_dict())
    np.testing.assert_array_equal(getattr(mine, name + "_mask").numpy(), getattr(theirs, name + "_mask").numpy())
    np.testing.assert_array_equal(getattr(mine, name).numpy(), getattr(theirs, name).detach().numpy())


@pytest.mark.parametrize("amount", [0, 3, 0.3, 0.5, 1.0])
def test_l1_unstructured_and_pruning_again_match_torch(amount):
    mine, theirs = _pair()
    prune.l1_unstructured(mine, "weight", amount=amount)
    tprune.l1_unstructured(theirs, "weight", amount=amount)
    _same(mine, theirs)
    prune.l1_unstructured(mine, "weight", amount=0.5)  # half of what is left
    tprune.l1_unstructured(theirs, "weight", amount=0.5)
    _same(mine, theirs)


@pytest.mark.parametrize("n, dim, amount", [(1, 0, 2), (2, 1, 0.4), ("fro", 0, 0.5), (float("inf"), 1, 1)])
def test_ln_structured_matches_torch(n, dim, amount):
    mine, theirs = _pair()
    prune.ln_structured(mine, "weight", amount=amount, n=n, dim=dim)
    tprune.ln_structured(theirs, "weight", amount=amount, n=n, dim=dim)
    _same(mine, theirs)
    prune.ln_structured(mine, "weight", amount=1, n=n, dim=dim)
    tprune.ln_structured(theirs, "weight", amount=1, n=n, dim=dim)
    _same(mine, theirs)


def test_global_unstructured_and_custom_masks_match_torch():
    (m1, t1), (m2, t2) = _pair(), _pair((4, 6))
    prune.global_unstructured([(m1, "weight"), (m2, "weight")], pruning_method=prune.L1Unstructured, amount=0.4)
    tprune.global_unstructured([(t1, "weight"), (t2, "weight")], pruning_method=tprune.L1Unstructured, amount=0.4)
    _same(m1, t1)
    _same(m2, t2)
    mask = np.random.default_rng(1).integers(0, 2, (6, 5))
    prune.custom_from_mask(m1, "bias", mask=ds.tensor(mask[:, 0]))
    tprune.custom_from_mask(t1, "bias", mask=torch.tensor(mask[:, 0]))
    _same(m1, t1, "bias")


def test_random_pruning_zeros_the_asked_share_and_is_seeded():
    counts = []
    for _ in range(2):
        ds.manual_seed(3)
        layer, _ = _pair()
        prune.random_unstructured(layer, "weight", amount=0.4)
        prune.random_structured(layer, "bias", amount=2, dim=0)
        counts.append((layer.weight_mask.numpy().copy(), layer.bias_mask.numpy().copy()))
    assert int((counts[0][0] == 0).sum()) == 12 and int((counts[0][1] == 0).sum()) == 2
    np.testing.assert_array_equal(counts[0][0], counts[1][0])


def test_training_keeps_pruned_entries_at_zero_and_remove_makes_it_permanent():
    mine, theirs = _pair()
    prune.l1_unstructured(mine, "weight", amount=0.5)
    opt = ds.optim.SGD(mine.parameters(), lr=0.1)
    x = ds.tensor(np.random.default_rng(2).standard_normal((8, 5)))
    for _ in range(3):
        opt.zero_grad()
        mine(x).pow(2).sum().backward()
        opt.step()
    pruned = mine.weight_mask.numpy() == 0
    assert (mine.weight.numpy()[pruned] == 0).all() and (mine.weight_orig.grad.numpy()[pruned] == 0).all()
    assert prune.is_pruned(nn.Sequential(mine))
    prune.remove(mine, "weight")
    assert sorted(mine.state_dict()) == ["bias", "weight"] and isinstance(mine.weight, nn.Parameter)
    assert (mine.weight.numpy()[pruned] == 0).all() and not prune.is_pruned(mine)
    with pytest.raises(ds.DownslopeError, match="no pruning"):
        prune.remove(mine, "weight")


def test_a_pruned_torch_checkpoint_loads_into_a_pruned_model():
    mine, theirs = _pair()
    tprune.l1_unstructured(theirs, "weight", amount=0.3)
    prune.identity(mine, "weight")
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(
        mine(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )


def test_structured_pruning_again_scores_the_masked_weight_and_remove_keeps_the_parameter():
    mine, theirs = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    weight = np.array([[1.0, 10.0], [2.0, 0.1], [3.0, 0.2]], dtype=np.float32)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(weight))
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    mask = np.array([[1, 0], [1, 1], [1, 1]])
    prune.custom_from_mask(mine, "weight", ds.tensor(mask))
    tprune.custom_from_mask(theirs, "weight", torch.tensor(mask))
    prune.ln_structured(mine, "weight", amount=1, n=1, dim=1)
    tprune.ln_structured(theirs, "weight", amount=1, n=1, dim=1)
    _same(mine, theirs)
    opt = ds.optim.SGD(mine.parameters(), lr=0.1)  # built after pruning: it holds weight_orig
    kept = mine.weight_orig
    prune.remove(mine, "weight")
    assert mine.weight is kept
    before = mine.weight.numpy().copy()
    opt.zero_grad()
    mine(ds.ones(1, 2)).sum().backward()
    opt.step()
    assert not np.array_equal(mine.weight.numpy(), before)  # still trained by that optimizer
