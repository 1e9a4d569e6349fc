"""``torch.distributions.relaxed_bernoulli``'s path to :class:`LogitRelaxedBernoulli` and :class:`RelaxedBernoulli`, so that
``from downslope.distributions.relaxed_bernoulli import LogitRelaxedBernoulli`` works where the torch import did."""

from __future__ import annotations

from .compose import LogitRelaxedBernoulli, RelaxedBernoulli

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli"]
