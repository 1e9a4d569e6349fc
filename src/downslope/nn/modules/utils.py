"""PyTorch's ``torch.nn.modules.utils``: the argument helpers that layer code imports
(``from torch.nn.modules.utils import _pair``) to turn ``3`` or ``(3, 5)`` into a tuple per spatial
dim, and ``consume_prefix_in_state_dict_if_present`` (strip DataParallel's ``module.`` from keys).

Example:
    >>> from downslope.nn.modules.utils import _pair, _triple
    >>> _pair(3), _pair((3, 5)), _triple(1)
    ((3, 3), (3, 5), (1, 1, 1))
"""

from __future__ import annotations

import collections.abc
from collections.abc import Callable
from itertools import repeat
from typing import Any

from ...errors import ArgumentError

__all__ = ["consume_prefix_in_state_dict_if_present"]


def _ntuple(n: int, name: str = "parse") -> Callable[[Any], tuple[Any, ...]]:
    """A function that repeats a single value ``n`` times and passes an iterable through as a tuple
    (its length unchecked, as PyTorch's)."""

    def parse(x: Any) -> tuple[Any, ...]:
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t: tuple[Any, ...], n: int) -> tuple[Any, ...]:
    """``t`` reversed, each element repeated ``n`` times: a layer's padding as ``F.pad`` takes it.

    Example:
        >>> _reverse_repeat_tuple((1, 2), 2)
        (2, 2, 1, 1)
    """
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size: Any, defaults: list[int]) -> Any:
    """An adaptive pooling's output size with its None entries taken from ``defaults`` (the input's
    trailing sizes)."""
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ArgumentError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d for v, d in zip(out_size, defaults[-len(out_size) :])]


def consume_prefix_in_state_dict_if_present(state_dict: dict[str, Any], prefix: str) -> None:
    """Strip ``prefix`` from the keys of ``state_dict`` in place (and from its ``_metadata``), so that a
    state dict saved from a wrapped model (``module.``) loads into the bare one.

    Example:
        >>> sd = {"module.weight": 1, "bias": 2}
        >>> consume_prefix_in_state_dict_if_present(sd, "module.")
        >>> sorted(sd)
        ['bias', 'weight']
    """
    for key in list(state_dict.keys()):
        if key.startswith(prefix):
            state_dict[key[len(prefix) :]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata.keys()):
            # '' belongs to the wrapper itself; 'module' (the prefix without its dot) is the wrapped model
            if key and (key == prefix.replace(".", "") or key.startswith(prefix)):
                metadata[key[len(prefix) :]] = metadata.pop(key)
