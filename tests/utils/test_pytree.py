"""``downslope.utils._pytree`` against ``torch.utils._pytree``: the same leaves, in the same order, the same
structures rebuilt, and tree_map over several trees."""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque, namedtuple

import numpy as np
import pytest

import downslope as ds
from downslope.utils import _pytree as ours

torch = pytest.importorskip("torch")
theirs = pytest.importorskip("torch.utils._pytree")

Point = namedtuple("Point", "x y")


def _tree(lib):
    t = lib.tensor
    return {
        "z": Point(t([1.0]), [t([2.0, 3.0]), None]),
        "a": OrderedDict(k=t([4.0]), j=(5, "s")),
        "d": deque([t([6.0])], maxlen=3),
        "dd": defaultdict(list, q=[t([7.0])]),
        "e": [[], {}, ()],
        "sub": type("Sub", (dict,), {})(u=1),  # a dict subclass is a leaf in torch
    }


def _plain(leaf):
    return leaf.numpy().tolist() if isinstance(leaf, (ds.Tensor, torch.Tensor)) else leaf


def _same(a, b):
    # the same containers with equal leaves (tensors by their values)
    assert type(a).__name__ == type(b).__name__
    if isinstance(a, (list, tuple, deque)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif type(a) in (dict, OrderedDict, defaultdict):
        assert list(a) == list(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, dict):
        assert dict(a) == dict(b)
    else:
        assert _plain(a) == _plain(b)


def test_flatten_gives_torchs_leaves_in_torchs_order():
    leaves, spec = ours.tree_flatten(_tree(ds))
    torch_leaves, torch_spec = theirs.tree_flatten(_tree(torch))
    assert [_plain(x) for x in leaves] == [_plain(x) for x in torch_leaves]
    assert spec.num_leaves == torch_spec.num_leaves
    assert [_plain(x) for x in ours.tree_leaves(_tree(ds))] == [_plain(x) for x in theirs.tree_leaves(_tree(torch))]
    assert ours.tree_leaves(3) == theirs.tree_leaves(3) == [3]
    assert ours.tree_leaves(None) == theirs.tree_leaves(None)


def test_unflatten_rebuilds_the_containers_as_torch():
    leaves, spec = ours.tree_flatten(_tree(ds))
    torch_leaves, torch_spec = theirs.tree_flatten(_tree(torch))
    replaced = list(range(len(leaves)))
    rebuilt, torch_rebuilt = ours.tree_unflatten(replaced, spec), theirs.tree_unflatten(replaced, torch_spec)
    _same(rebuilt, torch_rebuilt)
    assert rebuilt["d"].maxlen == torch_rebuilt["d"].maxlen == 3
    assert rebuilt["dd"].default_factory is torch_rebuilt["dd"].default_factory is list
    assert ours.tree_structure(_tree(ds)) == spec
    with pytest.raises(ValueError, match="has length 1 but the spec refers to a pytree that holds"):
        ours.tree_unflatten([1], spec)


def test_tree_map_over_one_and_several_trees_matches_torch():
    doubled = ours.tree_map(lambda x: x * 2 if isinstance(x, ds.Tensor) else x, _tree(ds))
    torch_doubled = theirs.tree_map(lambda x: x * 2 if isinstance(x, torch.Tensor) else x, _tree(torch))
    _same(doubled, torch_doubled)
    # EMA-style: a tree of parameters and a tree of shadows, leaf by leaf
    params = {"w": ds.tensor([1.0, 2.0]), "b": [ds.tensor([3.0])]}
    shadow = {"w": ds.tensor([0.0, 0.0]), "b": [ds.tensor([1.0])]}
    mixed = ours.tree_map(lambda s, p: s.lerp(p, 0.5), shadow, params)
    t_params = {"w": torch.tensor([1.0, 2.0]), "b": [torch.tensor([3.0])]}
    t_shadow = {"w": torch.tensor([0.0, 0.0]), "b": [torch.tensor([1.0])]}
    _same(mixed, theirs.tree_map(lambda s, p: s.lerp(p, 0.5), t_shadow, t_params))
    # a rest's subtree below the first tree's leaf goes to func whole
    assert ours.tree_map(lambda a, b: (a, b), [1, 2], [[3], {"k": 4}]) == theirs.tree_map(
        lambda a, b: (a, b), [1, 2], [[3], {"k": 4}]
    )


def test_is_leaf_stops_the_walk_as_in_torch():
    tree = [(1, 2), [3, (4,)]]

    def is_leaf(x):
        return isinstance(x, tuple)

    assert ours.tree_leaves(tree, is_leaf=is_leaf) == theirs.tree_leaves(tree, is_leaf=is_leaf)

    def size(x):
        return len(x) if isinstance(x, tuple) else x

    assert ours.tree_map(size, tree, is_leaf=is_leaf) == theirs.tree_map(size, tree, is_leaf=is_leaf)


def test_tree_map_in_place_visits_leaves_in_order():
    seen, torch_seen = [], []
    tree = {"a": [1, 2], "b": (3,)}
    assert ours.tree_map_(seen.append, tree) is tree
    theirs.tree_map_(torch_seen.append, tree)
    assert seen == torch_seen
    assert list(ours.tree_iter(tree)) == list(theirs.tree_iter(tree))


def test_mismatched_trees_are_refused_with_where():
    with pytest.raises(ValueError, match=r"tree\[1\]"):
        ours.tree_map(lambda a, b: a, [1, {"k": 2}], [1, {"j": 2}])
    with pytest.raises(ValueError, match="expected a list"):
        ours.tree_map(lambda a, b: a, [1], (1,))
    with pytest.raises(ValueError):
        theirs.tree_map(lambda a, b: a, [1, {"k": 2}], [1, {"j": 2}])


def test_reachable_as_torchs_attribute_path():
    assert ds.utils._pytree.tree_map is ours.tree_map
    out = ds.utils._pytree.tree_map(lambda t: t * 2, {"a": ds.ones(1)})
    np.testing.assert_array_equal(out["a"].numpy(), [2.0])


def test_tree_map_only_as_torchs() -> None:
    from torch.utils import _pytree as theirs

    from downslope.utils import _pytree as ours

    tree = {"a": [1, 2.5, "x"], "b": (3, None)}
    for kind in (int, (int, float), lambda leaf: leaf == 3):
        assert ours.tree_map_only(kind, lambda v: v * 10, tree) == theirs.tree_map_only(kind, lambda v: v * 10, tree)
