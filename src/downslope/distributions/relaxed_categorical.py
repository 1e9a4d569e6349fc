"""``torch.distributions.relaxed_categorical``'s path to :class:`ExpRelaxedCategorical` and :class:`RelaxedOneHotCategorical`, so that
``from downslope.distributions.relaxed_categorical import ExpRelaxedCategorical`` works where the torch import did."""

from __future__ import annotations

from .compose import ExpRelaxedCategorical, RelaxedOneHotCategorical

__all__ = ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"]
