"""``torch.distributions.one_hot_categorical``'s path to :class:`OneHotCategorical` and :class:`OneHotCategoricalStraightThrough`, so that
``from downslope.distributions.one_hot_categorical import OneHotCategorical`` works where the torch import did."""

from __future__ import annotations

from .discrete import OneHotCategorical
from .more import OneHotCategoricalStraightThrough

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]
