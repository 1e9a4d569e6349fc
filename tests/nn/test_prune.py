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
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return mine, theirs


def _same(mine, theirs, name="weight"):
    assert sorted(mine.state_dict()) == sorted(theirs.state_dict())
    np.testing.assert_array_equal(
        getattr(mine, name + "_mask").detach().numpy(), getattr(theirs, name + "_mask").detach().numpy()
    )
    np.testing.assert_array_equal(getattr(mine, name).detach().numpy(), getattr(theirs, name).detach().numpy())


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
        counts.append((layer.weight_mask.detach().numpy().copy(), layer.bias_mask.detach().numpy().copy()))
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
    pruned = mine.weight_mask.detach().numpy() == 0
    assert (mine.weight.detach().numpy()[pruned] == 0).all() and (
        mine.weight_orig.grad.detach().numpy()[pruned] == 0
    ).all()
    assert prune.is_pruned(nn.Sequential(mine))
    prune.remove(mine, "weight")
    assert sorted(mine.state_dict()) == ["bias", "weight"] and isinstance(mine.weight, nn.Parameter)
    assert (mine.weight.detach().numpy()[pruned] == 0).all() and not prune.is_pruned(mine)
    with pytest.raises(ds.DownslopeError, match="no pruning"):
        prune.remove(mine, "weight")


def test_a_pruned_torch_checkpoint_loads_into_a_pruned_model():
    mine, theirs = _pair()
    tprune.l1_unstructured(theirs, "weight", amount=0.3)
    prune.identity(mine, "weight")
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(
        mine(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )


def test_structured_pruning_again_scores_the_masked_weight_and_remove_keeps_the_parameter():
    mine, theirs = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    weight = np.array([[1.0, 10.0], [2.0, 0.1], [3.0, 0.2]], dtype=np.float32)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(weight))
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
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
    before = mine.weight.detach().numpy().copy()
    opt.zero_grad()
    mine(ds.ones(1, 2)).sum().backward()
    opt.step()
    assert not np.array_equal(mine.weight.detach().numpy(), before)  # still trained by that optimizer


def _custom_methods(base, lib):
    """The same custom methods written against torch's and downslope's BasePruningMethod."""

    class FooBar(base):  # the tutorial's: every other entry of what is left
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            mask = default_mask.clone()
            mask.view(-1)[::2] = 0
            return mask

    class FirstColumn(base):  # shape-dependent: needs the full-shaped tensor
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            mask = lib.ones_like(t)
            mask[..., 0] = 0
            return mask * default_mask

    class Threshold(base):
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            return default_mask * (t.abs() > 5)

    class FirstChannel(base):  # structured: the first of the channels still alive
        PRUNING_TYPE = "structured"
        dim = 0

        def compute_mask(self, t, default_mask):
            mask = default_mask.clone()
            mask[0] = 0
            return mask

    return {"foobar": FooBar, "first_column": FirstColumn, "threshold": Threshold, "first_channel": FirstChannel}


@pytest.mark.parametrize(
    "steps",
    [
        ["foobar"],
        ["first_column"],
        ["threshold"],
        ["foobar", "foobar"],
        ["threshold", "foobar", "foobar"],
        ["first_column", "threshold"],
        ["l1", "first_column"],
        ["first_channel", "first_channel"],
        ["foobar", "first_channel"],
    ],
)
def test_custom_pruning_methods_see_what_torch_shows_them(steps):
    mine, theirs = _pair()
    ours, their_methods = _custom_methods(prune.BasePruningMethod, ds), _custom_methods(tprune.BasePruningMethod, torch)
    seen = []
    for step in steps:
        for methods, lib, module, log in ((ours, prune, mine, "ds"), (their_methods, tprune, theirs, "torch")):
            cls = lib.L1Unstructured if step == "l1" else methods[step]
            compute = cls.compute_mask

            def spy(self, t, default_mask, compute=compute, log=log):
                seen.append((log, type(t).__name__, tuple(t.shape), tuple(default_mask.shape)))
                return compute(self, t, default_mask)

            spied = type(cls.__name__, (cls,), {"compute_mask": spy})
            if step == "l1":
                spied.apply(module, "weight", amount=0.3)
            else:
                spied.apply(module, "weight")
        _same(mine, theirs)
    assert [s[1:] for s in seen if s[0] == "ds"] == [s[1:] for s in seen if s[0] == "torch"]


def test_the_first_pruning_passes_the_parameter_and_the_tutorials_foobar_matches_torch():
    shapes = []

    class Spy(prune.BasePruningMethod):
        def compute_mask(self, t, default_mask):
            shapes.append((type(t).__name__, tuple(t.shape), type(default_mask).__name__))
            return default_mask.clone()

    layer = nn.Linear(6, 4)
    Spy.apply(layer, "weight")
    assert shapes == [("Parameter", (4, 6), "Tensor")]
    foobar = _custom_methods(prune.BasePruningMethod, ds)["foobar"]
    foobar.apply(layer, "bias")
    np.testing.assert_array_equal(layer.bias_mask.detach().numpy(), [0, 1, 0, 1])


def test_pruning_hooks_live_in_forward_pre_hooks_as_in_torch():
    mine, theirs = _pair()
    for lib, module in ((prune, mine), (tprune, theirs)):
        lib.l1_unstructured(module, "weight", amount=0.2)
        first = next(iter(module._forward_pre_hooks.values()))
        assert type(first).__name__ == "L1Unstructured" and first._tensor_name == "weight"
        lib.l1_unstructured(module, "bias", amount=1)
        lib.ln_structured(module, "weight", amount=1, n=2, dim=0)
        hooks = list(module._forward_pre_hooks.values())
        # the weight's methods moved into a container registered after the bias's hook
        assert [type(h).__name__ for h in hooks] == ["L1Unstructured", "PruningContainer"]
        assert hooks[1]._tensor_name == "weight" and len(hooks[1]) == 2
        assert [type(m).__name__ for m in hooks[1]] == ["L1Unstructured", "LnStructured"]
        assert hooks[1][0] is first
        lib.random_unstructured(module, "weight", amount=0.1)
        assert len(list(module._forward_pre_hooks.values())[1]) == 3
        lib.remove(module, "weight")
        assert [h._tensor_name for h in module._forward_pre_hooks.values()] == ["bias"]
    _same(mine, theirs, "bias")
    assert prune.is_pruned(mine)
    prune.remove(mine, "bias")
    assert not prune.is_pruned(mine) and not mine._forward_pre_hooks


def test_a_failed_pruning_leaves_the_module_as_it_was():
    layer = nn.Linear(3, 2)
    with pytest.raises(ds.DownslopeError, match="amount=5"):
        prune.l1_unstructured(layer, "bias", amount=5)
    assert sorted(layer.state_dict()) == ["bias", "weight"] and not layer._forward_pre_hooks
    prune.l1_unstructured(layer, "weight", amount=2)
    with pytest.raises(IndexError, match="dim=5"):
        prune.ln_structured(layer, "weight", amount=1, n=2, dim=5)
    (hook,) = layer._forward_pre_hooks.values()  # the first pruning's hook is kept (torch loses it)
    assert isinstance(hook, prune.L1Unstructured) and int((layer.weight_mask == 0).sum()) == 2
    with pytest.raises(ValueError, match="amount"):
        prune.L1Unstructured(1.5)
    with pytest.raises(TypeError, match="amount"):
        prune.RandomUnstructured("half")


def test_prune_method_and_container_directly_match_torch():
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4) * np.array([1, -1, 1, -1], dtype=np.float32)
    mine = prune.L1Unstructured(amount=4).prune(ds.tensor(x))
    theirs = tprune.L1Unstructured(amount=4).prune(torch.tensor(x))
    np.testing.assert_array_equal(mine.detach().numpy(), theirs.detach().numpy())
    default = (np.arange(12).reshape(3, 4) % 3 != 0).astype(np.float32)
    masks = []
    for lib, mod in ((prune, ds), (tprune, torch)):
        first, second = lib.L1Unstructured(amount=2), lib.LnStructured(amount=1, n=1, dim=1)
        first._tensor_name = second._tensor_name = "w"
        container = lib.PruningContainer(first)
        container.add_pruning_method(second)
        masks.append(container.compute_mask(mod.tensor(x), mod.tensor(default)).detach().numpy())
    np.testing.assert_array_equal(masks[0], masks[1])
