"""``torch.utils._pytree``'s everyday functions, which EMA and sampler utilities call on nested
containers of tensors: :func:`tree_map`, :func:`tree_flatten`, :func:`tree_unflatten`,
:func:`tree_leaves`, :func:`tree_structure`, :func:`tree_iter` and :func:`tree_map_`.

As in torch, the containers are list, tuple, namedtuple, dict, OrderedDict, defaultdict and deque (the exact
types: a subclass of dict is a leaf); dict keys keep their insertion order; everything else, None
included, is a leaf.

Example:
    >>> import downslope as ds
    >>> from downslope.utils._pytree import tree_map
    >>> tree_map(lambda t: t * 2, {"a": ds.ones(2), "b": [ds.zeros(1)]})
    {'a': tensor([2., 2.]), 'b': [tensor([0.])]}
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError

IsLeaf = Callable[[Any], bool] | None


class TreeSpec:
    """The structure of a pytree without its leaves (``torch.utils._pytree.TreeSpec``): ``type`` (None for a
    leaf), ``context`` (a dict's keys, a namedtuple's class...) and ``children_specs``."""

    __slots__ = ("type", "context", "children_specs", "num_leaves")

    def __init__(self, type: Any, context: Any, children_specs: list[TreeSpec]) -> None:  # noqa: A002
        self.type = type
        self.context = context
        self.children_specs = children_specs
        self.num_leaves: int = 1 if type is None else sum(child.num_leaves for child in children_specs)

    def is_leaf(self) -> bool:
        return self.type is None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeSpec):
            return NotImplemented
        return (self.type, self.context, self.children_specs) == (other.type, other.context, other.children_specs)

    # unhashable, as torch's (a spec holds mutable contexts: a dict's keys)
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.type is None:
            return "*"
        name = "namedtuple" if self.type is _NAMEDTUPLE else self.type.__name__
        return f"TreeSpec({name}, {self.context!r}, [{', '.join(map(repr, self.children_specs))}])"

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        """The pytree of this structure holding ``leaves`` in order."""
        values = list(leaves)
        if len(values) != self.num_leaves:
            raise ArgumentError(
                f"treespec.unflatten(leaves): `leaves` has length {len(values)} but the spec refers to a pytree "
                f"that holds {self.num_leaves} items ({self!r})"
            )
        return self._build(iter(values))

    def _build(self, leaves: Iterator[Any]) -> Any:
        if self.type is None:
            return next(leaves)
        return _NODES[self.type][1]([child._build(leaves) for child in self.children_specs], self.context)

    def flatten_up_to(self, tree: Any) -> list[Any]:
        """``tree``'s subtrees at this structure's leaves (``tree`` must have this structure down to them)."""
        out: list[Any] = []
        self._flatten_up_to(tree, out, "tree")
        return out

    def _flatten_up_to(self, tree: Any, out: list[Any], where: str) -> None:
        if self.type is None:
            out.append(tree)
            return
        kind = _kind(tree)
        if kind is not self.type:
            got = "a leaf" if kind is None else type(tree).__name__
            raise ArgumentError(f"tree_map: expected a {_type_name(self)} at {where}, got {got}")
        children, context = _NODES[kind][0](tree)
        if context != self.context or len(children) != len(self.children_specs):
            raise ArgumentError(
                f"tree_map: the {_type_name(self)} at {where} differs in keys or length: expected {self.context!r} "
                f"with {len(self.children_specs)} children, got {context!r} with {len(children)}"
            )
        for i, (child, spec) in enumerate(zip(children, self.children_specs, strict=True)):
            spec._flatten_up_to(child, out, f"{where}[{i}]")


def _type_name(spec: TreeSpec) -> str:
    return "namedtuple" if spec.type is _NAMEDTUPLE else spec.type.__name__


_NAMEDTUPLE = type("namedtuple", (), {})  # the key of every namedtuple class (its class is the context)


def _flatten_dict(d: Any) -> tuple[list[Any], Any]:
    return list(d.values()), list(d.keys())


def _flatten_defaultdict(d: Any) -> tuple[list[Any], Any]:
    return list(d.values()), [d.default_factory, list(d.keys())]


def _make_defaultdict(values: list[Any], context: Any) -> Any:
    return defaultdict(context[0], zip(context[1], values, strict=True))


_NODES: dict[Any, tuple[Callable[[Any], tuple[list[Any], Any]], Callable[[list[Any], Any], Any]]] = {
    list: (lambda x: (list(x), None), lambda values, context: values),
    tuple: (lambda x: (list(x), None), lambda values, context: tuple(values)),
    dict: (_flatten_dict, lambda values, context: dict(zip(context, values, strict=True))),
    OrderedDict: (_flatten_dict, lambda values, context: OrderedDict(zip(context, values, strict=True))),
    defaultdict: (_flatten_defaultdict, _make_defaultdict),
    deque: (lambda x: (list(x), x.maxlen), lambda values, context: deque(values, maxlen=context)),
    _NAMEDTUPLE: (lambda x: (list(x), type(x)), lambda values, context: context(*values)),
}


def _kind(node: Any) -> Any:
    kind = type(node)
    if kind in _NODES:
        return kind
    if isinstance(node, tuple) and hasattr(kind, "_fields"):
        return _NAMEDTUPLE
    return None


def _flatten(tree: Any, is_leaf: IsLeaf, leaves: list[Any]) -> TreeSpec:
    kind = None if is_leaf is not None and is_leaf(tree) else _kind(tree)
    if kind is None:
        leaves.append(tree)
        return _LEAF
    children, context = _NODES[kind][0](tree)
    return TreeSpec(kind, context, [_flatten(child, is_leaf, leaves) for child in children])


_LEAF = TreeSpec(None, None, [])


def tree_flatten(tree: Any, is_leaf: IsLeaf = None) -> tuple[list[Any], TreeSpec]:
    """The leaves of ``tree`` in order and its structure (``tree_unflatten`` puts them back)."""
    leaves: list[Any] = []
    spec = _flatten(tree, is_leaf, leaves)
    return leaves, spec


def tree_unflatten(leaves: Iterable[Any], treespec: TreeSpec) -> Any:
    """The pytree of structure ``treespec`` holding ``leaves`` in order."""
    if not isinstance(treespec, TreeSpec):
        raise ArgumentTypeError(
            f"tree_unflatten(leaves, treespec): expected `treespec` to be a TreeSpec, got {type(treespec).__name__}"
        )
    return treespec.unflatten(leaves)


def tree_leaves(tree: Any, is_leaf: IsLeaf = None) -> list[Any]:
    """The leaves of ``tree`` in order."""
    return tree_flatten(tree, is_leaf)[0]


def tree_iter(tree: Any, is_leaf: IsLeaf = None) -> Iterator[Any]:
    """The leaves of ``tree`` one by one."""
    return iter(tree_leaves(tree, is_leaf))


def tree_structure(tree: Any, is_leaf: IsLeaf = None) -> TreeSpec:
    """The structure of ``tree`` without its leaves."""
    return tree_flatten(tree, is_leaf)[1]


def tree_map(func: Callable[..., Any], tree: Any, *rests: Any, is_leaf: IsLeaf = None) -> Any:
    """A pytree of ``tree``'s structure holding ``func(leaf, *same leaf of each rest)``; each of ``rests``
    has ``tree``'s structure (down to ``tree``'s leaves)."""
    leaves, spec = tree_flatten(tree, is_leaf)
    flat_rests = [spec.flatten_up_to(rest) for rest in rests]
    return spec.unflatten(map(func, leaves, *flat_rests))


def tree_map_(func: Callable[..., Any], tree: Any, *rests: Any, is_leaf: IsLeaf = None) -> Any:
    """``func`` called on each leaf (and the same leaf of each rest) for its effect, in order; returns ``tree``."""
    leaves, spec = tree_flatten(tree, is_leaf)
    flat_rests = [spec.flatten_up_to(rest) for rest in rests]
    for args in zip(leaves, *flat_rests, strict=True):
        func(*args)
    return tree


def tree_map_only(type_or_types_or_pred: Any, /, func: Callable[..., Any], tree: Any, is_leaf: IsLeaf = None) -> Any:
    """``tree_map`` applying ``func`` only to the leaves of the given type(s), or for which the given
    predicate holds; the other leaves are kept as they are."""
    if isinstance(type_or_types_or_pred, (type, tuple)):
        types = type_or_types_or_pred

        def wanted(leaf: Any) -> bool:
            return isinstance(leaf, types)
    else:
        wanted = type_or_types_or_pred
    return tree_map(lambda leaf: func(leaf) if wanted(leaf) else leaf, tree, is_leaf=is_leaf)


__all__ = [
    "TreeSpec", "tree_flatten", "tree_iter", "tree_leaves", "tree_map", "tree_map_", "tree_map_only", "tree_structure",
    "tree_unflatten",
]  # fmt: skip
