"""``torch.distributed.nn``: the collectives that take part in autograd (:mod:`.functional`)."""

from . import functional
from .functional import all_gather, all_reduce, all_to_all, broadcast, gather, reduce, reduce_scatter, scatter

__all__ = [
    "functional",
    "all_gather",
    "all_reduce",
    "broadcast",
    "reduce",
    "reduce_scatter",
    "all_to_all",
    "gather",
    "scatter",
]
